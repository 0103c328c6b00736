// When the server cannot start, VS Code shows one clear notification saying why and how to fix it.
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { VSCode } from "./harness.mjs";

let vscode;

before(async () => {
  vscode = await VSCode.start({
    name: "failure",
    files: { "hello.py": 'print("hello")\n' },
    settings: { "daytona.server.command": ["/nonexistent/bin/daytona-lsp"] },
  });
});

after(async () => {
  await vscode?.stop();
});

test("a server that cannot start gives one notification with the reason and the fix", async () => {
  await vscode.openFile("hello.py");
  const toasts = ".notifications-toasts";
  const text = await vscode.waitForText(toasts, /language server could not start/, 60_000, "the notifications");
  assert.match(text, /\/nonexistent\/bin\/daytona-lsp/);
  assert.match(text, /was not found/);
  assert.match(text, /daytona\.server\.command/);
  assert.equal(text.match(/could not start/g)?.length, 1, "exactly one notification about it");
  assert.doesNotMatch(text, /couldn't create connection/, "the language client's own pop-up is replaced by ours");
  const status = await vscode.waitForText(".part.statusbar [id$='daytona.status']", /error/, 10_000, "the status bar item");
  assert.match(status, /Daytona: error/);
  await vscode.screenshot("server-cannot-start");

  // Running now explains itself instead of failing silently.
  await vscode.command("Daytona: Run File in Sandbox");
  const after = await vscode.waitForText(toasts, /cannot run: the language server could not start/, 30_000, "the notifications");
  assert.equal(after.match(/could not start/g)?.length, 2, "one start failure and one 'cannot run', nothing more");
  await vscode.screenshot("run-without-server");
});
