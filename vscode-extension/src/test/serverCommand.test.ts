import { test } from "node:test";
import * as assert from "node:assert/strict";
import {
  describeStartFailure,
  findOnPath,
  formatCommandLine,
  Machine,
  resolveServerCommand,
} from "../logic/serverCommand";

function machine(overrides: Partial<Machine> & { executables?: string[] } = {}): Machine {
  const executables = new Set(overrides.executables ?? []);
  return {
    trusted: true,
    workspaceFolders: ["/ws"],
    platform: "linux",
    findOnPath: (name) => findOnPath(name, "/usr/local/bin:/usr/bin", (f) => executables.has(f), "linux"),
    isExecutable: (f) => executables.has(f),
    ...overrides,
  };
}

const none = { command: [], pythonPath: "" };

test("the command setting wins over everything else", () => {
  const cmd = resolveServerCommand(
    { command: ["/opt/bin/daytona-lsp", "--log", "debug"], pythonPath: "/usr/bin/python3" },
    machine({ executables: ["/usr/bin/daytona-lsp"] }),
  );
  assert.deepEqual(cmd, { command: "/opt/bin/daytona-lsp", args: ["--log", "debug"], source: "setting" });
});

test("blank entries in the command setting are ignored", () => {
  const cmd = resolveServerCommand({ command: ["  ", ""], pythonPath: "" }, machine({ executables: ["/usr/bin/daytona-lsp"] }));
  assert.equal(cmd.source, "path");
});

test("the python path setting runs the module", () => {
  const cmd = resolveServerCommand({ command: [], pythonPath: " /venv/bin/python " }, machine());
  assert.deepEqual(cmd, { command: "/venv/bin/python", args: ["-m", "daytona_lsp"], source: "pythonPath" });
});

test("daytona-lsp on PATH comes before the workspace venv", () => {
  const cmd = resolveServerCommand(none, machine({ executables: ["/usr/bin/daytona-lsp", "/ws/.venv/bin/daytona-lsp"] }));
  assert.deepEqual(cmd, { command: "/usr/bin/daytona-lsp", args: [], source: "path" });
});

test("the first PATH directory that has it wins", () => {
  const cmd = resolveServerCommand(
    none,
    machine({ executables: ["/usr/bin/daytona-lsp", "/usr/local/bin/daytona-lsp"] }),
  );
  assert.equal(cmd.command, "/usr/local/bin/daytona-lsp");
});

test("a trusted workspace's venv is used when PATH has no server", () => {
  const cmd = resolveServerCommand(
    none,
    machine({ workspaceFolders: ["/a", "/ws"], executables: ["/ws/.venv/bin/daytona-lsp"] }),
  );
  assert.deepEqual(cmd, { command: "/ws/.venv/bin/daytona-lsp", args: [], source: "workspace" });
});

test("an untrusted workspace's venv is never executed", () => {
  const cmd = resolveServerCommand(
    none,
    machine({ trusted: false, executables: ["/ws/.venv/bin/daytona-lsp", "/usr/bin/python3"] }),
  );
  assert.deepEqual(cmd, { command: "/usr/bin/python3", args: ["-m", "daytona_lsp"], source: "python" });
});

test("windows venvs live in Scripts with .exe", () => {
  const cmd = resolveServerCommand(
    none,
    machine({
      platform: "win32",
      workspaceFolders: ["C:\\ws"],
      findOnPath: () => undefined,
      executables: ["C:\\ws\\.venv\\Scripts\\daytona-lsp.exe"],
    }),
  );
  assert.equal(cmd.command, "C:\\ws\\.venv\\Scripts\\daytona-lsp.exe");
});

test("the last resort is python3 -m daytona_lsp even when no python is found", () => {
  const cmd = resolveServerCommand(none, machine({ executables: [] }));
  assert.deepEqual(cmd, { command: "python3", args: ["-m", "daytona_lsp"], source: "python" });
});

test("findOnPath skips empty PATH entries and handles a missing PATH", () => {
  assert.equal(findOnPath("x", undefined, () => true), undefined);
  assert.equal(findOnPath("x", "::/bin", (f) => f === "/bin/x", "linux"), "/bin/x");
});

test("command lines quote parts with spaces", () => {
  assert.equal(formatCommandLine({ command: "/my dir/python", args: ["-m", "daytona_lsp"] }), '"/my dir/python" -m daytona_lsp');
});

test("a missing executable is explained with the install hint", () => {
  const message = describeStartFailure(
    { command: "python3", args: ["-m", "daytona_lsp"], source: "python" },
    new Error("spawn python3 ENOENT"),
  );
  assert.match(message, /could not start \(python3 -m daytona_lsp\)/);
  assert.match(message, /`python3` was not found/);
  assert.match(message, /pip install daytona-lsp/);
  assert.match(message, /daytona\.server\.command/);
});

test("a missing package is explained as such", () => {
  const message = describeStartFailure(
    { command: "/venv/bin/python", args: ["-m", "daytona_lsp"], source: "pythonPath" },
    "/venv/bin/python: No module named daytona_lsp",
  );
  assert.match(message, /the `daytona_lsp` package is not installed/);
  assert.match(message, /Install the server into that interpreter/);
});

test("a broken command setting points at the setting", () => {
  const message = describeStartFailure(
    { command: "/nope", args: [], source: "setting" },
    new Error("spawn /nope ENOENT"),
  );
  assert.match(message, /Check the `daytona\.server\.command` setting/);
});
