// A server that starts and dies at once (a Python without the daytona_lsp package): the status item turns to error with
// the reason instead of "ready", the notification's "Show Output" opens the server's log, and a run says why it cannot.
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { VSCode } from "./harness.mjs";

const STATUS = ".part.statusbar [id$='daytona.status']";
let vscode;

before(async () => {
  vscode = await VSCode.start({
    name: "nopackage",
    files: { "hello.py": 'print("hello")\n' },
    settings: { "daytona.server.pythonPath": "/usr/bin/python3" }, // Debian's Python: no daytona_lsp in it
  });
});

after(async () => {
  await vscode?.stop();
});

test("a Python without the package: the status item says error with the reason, and Show Output shows the log", async () => {
  await vscode.openFile("hello.py");
  const status = await vscode.waitForText(STATUS, /Daytona: error/, 60_000, "the status bar item");
  assert.doesNotMatch(status, /ready/);
  const tooltip = await vscode.page.locator(STATUS).first().evaluate((el) => el.getAttribute("aria-label") ?? "");
  assert.match(tooltip, /error/);
  const toast = vscode.page.locator(".notifications-toasts .notification-toast", { hasText: "could not start" });
  await toast.waitFor({ state: "visible" });
  assert.match(await toast.innerText(), /the `daytona_lsp` package is not installed/);
  await toast.locator("a.monaco-button", { hasText: "Show Output" }).click();
  await vscode.waitForText(".part.panel .monaco-editor .view-lines", /No module named daytona_lsp/, 30_000, "the server log");
  assert.match(vscode.outputChannelText("Daytona Server"), /^Server: the `daytona\.server\.pythonPath` setting \(\/usr\/bin\/python3 -m daytona_lsp\)/);
  await vscode.screenshot("no-package-status-error");

  // A run explains itself, with the same reason.
  await vscode.command("Daytona: Run File in Sandbox");
  const runToast = vscode.page.locator(".notifications-toasts .notification-toast", { hasText: "cannot run" });
  await runToast.waitFor({ state: "visible", timeout: 30_000 });
  const text = await runToast.innerText();
  assert.match(text, /cannot run: the language server could not start .*the `daytona_lsp` package is not installed/s);
  assert.match(text, /Show Output/);
  assert.match(await vscode.textOf(STATUS), /Daytona: error/);
});
