// End-to-end in the real VS Code UI: "Daytona: Run File with Arguments…" (shell-style splitting, the last value offered
// again) and a program that asks for a name getting it from the input box titled with its prompt.
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { VSCode } from "./harness.mjs";

const FILES = {
  "ask.py": "import sys\nname = input('name? ')\nprint('args', sys.argv[1:], 'hello', name)\n",
};

let vscode;

/** Type into the input box titled `title` and press Enter, without waiting for it to close: the program's own input
 * box may take the same widget at once (then it never shows as closed in between). */
async function submit(title, text) {
  const page = vscode.page;
  await page.locator(".quick-input-widget .quick-input-title", { hasText: title }).waitFor({ state: "visible" });
  const input = page.locator(".quick-input-widget .quick-input-box input");
  await input.fill(text);
  await input.press("Enter");
}

before(async () => {
  vscode = await VSCode.start({ name: "input", files: FILES });
});

after(async () => {
  await vscode?.stop();
});

test("Run File with Arguments passes them split as a shell would, and the program's input box answers input()", async () => {
  await vscode.openFile("ask.py");
  await vscode.waitForText(".part.statusbar [id$='daytona.status']", /Daytona \(local\): ready/, 90_000, "the status bar");
  await vscode.command("Daytona: Run File with Arguments…", { expectInput: true });
  await submit("Daytona: Run File with Arguments", `one "two words"`);
  await vscode.screenshot("asked-for-input");
  await vscode.page
    .locator(".quick-input-widget .quick-input-title", { hasText: "Daytona: name?" })
    .waitFor({ timeout: 90_000 });
  await vscode.answerInput("Daytona: name?", "Ann");
  const text = await vscode.waitForOutput(/■ \[run \S+\] exit 0/);
  assert.match(text, /name\? Ann/); // the typed line, echoed
  assert.match(text, /args \['one', 'two words'\] hello Ann/);
  await vscode.screenshot("answered");
});

test("the file's last arguments are offered again; Escape in the arguments box runs nothing", async () => {
  await vscode.command("Daytona: Run File with Arguments…", { expectInput: true });
  const page = vscode.page;
  await page.locator(".quick-input-widget .quick-input-title", { hasText: "Run File with Arguments" }).waitFor();
  const input = page.locator(".quick-input-widget .quick-input-box input");
  assert.equal(await input.inputValue(), `one "two words"`);
  await input.press("Escape");
  await page.locator(".quick-input-widget").waitFor({ state: "hidden" });
});

test("Escape in the program's input box closes its stdin (EOF)", async () => {
  await vscode.command("Daytona: Run File with Arguments…", { expectInput: true });
  await submit("Daytona: Run File with Arguments", "x");
  const page = vscode.page;
  try {
    await page
      .locator(".quick-input-widget .quick-input-title", { hasText: "Daytona: name?" })
      .waitFor({ timeout: 90_000 }); // a loaded machine: the sandbox run, then the wait seen
  } catch (error) {
    await vscode.screenshot("no-input-box");
    throw new Error(`${error.message}\nthe Daytona channel:\n${vscode.outputChannelText("Daytona")}`);
  }
  await page.locator(".quick-input-widget .quick-input-box input").press("Escape");
  const text = await vscode.waitForOutput(/■ \[run \S+\] exit 1/);
  assert.match(text, /EOFError/);
});
