// In an untrusted workspace (Restricted Mode) nothing runs and no server starts, and the user is told why.
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { VSCode } from "./harness.mjs";

let vscode;

before(async () => {
  vscode = await VSCode.start({ name: "untrusted", trusted: false, files: { "hello.py": 'print("must not run")\n' } });
});

after(async () => {
  await vscode?.stop();
});

test("an untrusted workspace gets a clear message instead of a run, and no server process", async () => {
  await vscode.openFile("hello.py");
  await vscode.waitForText(".part.statusbar [id$='daytona.status']", /Daytona: untrusted/, 60_000, "the status bar item");
  await vscode.command("Daytona: Run File in Sandbox");
  const text = await vscode.waitForText(
    ".notifications-toasts",
    /running code is disabled in an untrusted workspace/,
    30_000,
    "the notifications",
  );
  assert.match(text, /Manage Workspace Trust/);
  assert.deepEqual(vscode.serverProcesses(), [], "no language server was started");
  assert.doesNotMatch(await vscode.textOf(".part.panel"), /must not run/);
  await vscode.screenshot("untrusted");
});
