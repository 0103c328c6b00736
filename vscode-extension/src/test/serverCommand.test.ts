import { test } from "node:test";
import * as assert from "node:assert/strict";
import {
  Bundle,
  bundleVersions,
  describeSource,
  describeStartFailure,
  findOnPath,
  formatCommandLine,
  Interpreter,
  Machine,
  resolveServerCommand,
} from "../logic/serverCommand";

function machine(
  overrides: Partial<Machine> & { executables?: string[]; pythons?: Interpreter[] } = {},
): Machine & { asked: number } {
  const executables = new Set(overrides.executables ?? []);
  const m = {
    asked: 0,
    trusted: true,
    workspaceFolders: ["/ws"],
    platform: "linux" as NodeJS.Platform,
    findOnPath: (name: string) => findOnPath(name, "/usr/local/bin:/usr/bin", (f) => executables.has(f), "linux"),
    isExecutable: (f: string) => executables.has(f),
    bundle: BUNDLE as Bundle | undefined,
    interpreters: async () => {
      m.asked += 1;
      return overrides.pythons ?? [{ path: "/usr/bin/python3", version: "3.11", origin: "PATH" }];
    },
    ...overrides,
  };
  return m;
}

const BUNDLE: Bundle = {
  launcher: "/ext/bundled/tool/launch.py",
  versions: ["3.10", "3.11", "3.12", "3.13", "3.14"],
  pycache: "/storage/pycache-0.1.0",
  version: "0.1.0",
};
const none = { command: [], pythonPath: "" };
const BUNDLED = { command: "/usr/bin/python3", args: ["-I", BUNDLE.launcher, BUNDLE.pycache], source: "bundled" };

test("the command setting wins over everything else", async () => {
  const cmd = await resolveServerCommand(
    { command: ["/opt/bin/daytona-lsp", "--log", "debug"], pythonPath: "/usr/bin/python3" },
    machine({ executables: ["/usr/bin/daytona-lsp", "/ws/.venv/bin/daytona-lsp"] }),
  );
  assert.deepEqual(cmd, { command: "/opt/bin/daytona-lsp", args: ["--log", "debug"], source: "setting" });
});

test("blank entries in the command setting are ignored", async () => {
  const cmd = await resolveServerCommand({ command: ["  ", ""], pythonPath: "" }, machine());
  assert.deepEqual(cmd, BUNDLED);
});

test("the python path setting runs the module, before the workspace venv", async () => {
  const cmd = await resolveServerCommand(
    { command: [], pythonPath: " /venv/bin/python " },
    machine({ executables: ["/ws/.venv/bin/daytona-lsp"] }),
  );
  assert.deepEqual(cmd, { command: "/venv/bin/python", args: ["-m", "daytona_lsp"], source: "pythonPath" });
});

test("a trusted workspace's venv comes before the bundled server, without asking for interpreters", async () => {
  const m = machine({ workspaceFolders: ["/a", "/ws"], executables: ["/ws/.venv/bin/daytona-lsp", "/usr/bin/daytona-lsp"] });
  const cmd = await resolveServerCommand(none, m);
  assert.deepEqual(cmd, { command: "/ws/.venv/bin/daytona-lsp", args: [], source: "workspace" });
  assert.equal(m.asked, 0);
});

test("the bundled server comes before daytona-lsp on PATH", async () => {
  const cmd = await resolveServerCommand(none, machine({ executables: ["/usr/bin/daytona-lsp"] }));
  assert.deepEqual(cmd, BUNDLED);
});

test("an untrusted workspace's venv is never executed", async () => {
  const cmd = await resolveServerCommand(none, machine({ trusted: false, executables: ["/ws/.venv/bin/daytona-lsp"] }));
  assert.deepEqual(cmd, BUNDLED);
});

test("the bundled server runs with the first interpreter of a bundled version, isolated (-I)", async () => {
  const cmd = await resolveServerCommand(
    none,
    machine({
      pythons: [
        { path: "/venv39/bin/python", version: "3.9", origin: "the Python extension's interpreter" },
        { path: "/broken/python3", version: undefined, origin: "PATH" },
        { path: "/usr/bin/python3", version: "3.12", origin: "PATH" },
        { path: "/usr/bin/python", version: "3.13", origin: "PATH" },
      ],
    }),
  );
  assert.deepEqual(cmd, { ...BUNDLED, command: "/usr/bin/python3" });
});

test("without a usable interpreter, daytona-lsp on PATH is used (the first PATH directory that has it)", async () => {
  const cmd = await resolveServerCommand(
    none,
    machine({
      executables: ["/usr/bin/daytona-lsp", "/usr/local/bin/daytona-lsp"],
      pythons: [{ path: "/usr/bin/python3", version: "3.9", origin: "PATH" }],
    }),
  );
  assert.deepEqual(cmd, { command: "/usr/local/bin/daytona-lsp", args: [], source: "path" });
});

test("nothing found: the message names the Python versions needed and what was found", async () => {
  const cmd = await resolveServerCommand(none, machine({ pythons: [{ path: "/usr/bin/python3", version: "3.9", origin: "PATH" }] }));
  assert.ok("missing" in cmd);
  assert.match(cmd.missing, /needs Python 3\.10–3\.14 \(found \/usr\/bin\/python3 3\.9\)/);
  assert.match(cmd.missing, /sudo apt install python3/);
  assert.match(cmd.missing, /daytona\.server\.pythonPath/);
});

test("no interpreter at all is said so", async () => {
  const cmd = await resolveServerCommand(none, machine({ pythons: [] }));
  assert.ok("missing" in cmd);
  assert.match(cmd.missing, /none found/);
});

test("a package without a bundle and no server on PATH says what to install", async () => {
  const m = machine({ bundle: undefined });
  const cmd = await resolveServerCommand(none, m);
  assert.ok("missing" in cmd);
  assert.match(cmd.missing, /daytona-lsp-linux-x64\.vsix/);
  assert.match(cmd.missing, /pipx install dist\/daytona_lsp-\*\.whl/);
  assert.doesNotMatch(cmd.missing, /pip install daytona-lsp/);
  assert.equal(m.asked, 0);
});

test("windows venvs live in Scripts with .exe", async () => {
  const cmd = await resolveServerCommand(
    none,
    machine({
      platform: "win32",
      workspaceFolders: ["C:\\ws"],
      findOnPath: () => undefined,
      executables: ["C:\\ws\\.venv\\Scripts\\daytona-lsp.exe"],
    }),
  );
  assert.ok("command" in cmd);
  assert.equal(cmd.command, "C:\\ws\\.venv\\Scripts\\daytona-lsp.exe");
});

test("the bundled versions are read from bundled/libs' directory names", () => {
  assert.deepEqual(bundleVersions(["cp310+cp311+cp312", "cp312", "cp311+cp312", "cp310", ".pure", "cp314"]), [
    "3.10",
    "3.11",
    "3.12",
    "3.14",
  ]);
  assert.deepEqual(bundleVersions([]), []);
});

test("the log's first line names which server was used", () => {
  assert.equal(
    describeSource({ command: "/usr/bin/python3", args: ["-I", "/e/launch.py", "/s"], source: "bundled" }),
    "Server: the server bundled with the extension (/usr/bin/python3 -I /e/launch.py /s)",
  );
  assert.match(describeSource({ command: "/bin/daytona-lsp", args: [], source: "path" }), /^Server: `daytona-lsp` on PATH/);
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
    { command: "/usr/bin/daytona-lsp", args: [], source: "path" },
    new Error("spawn /usr/bin/daytona-lsp ENOENT"),
  );
  assert.match(message, /could not start \(\/usr\/bin\/daytona-lsp\)/);
  assert.match(message, /`\/usr\/bin\/daytona-lsp` was not found/);
  assert.match(message, /pipx install dist\/daytona_lsp-\*\.whl/);
  assert.doesNotMatch(message, /pip install daytona-lsp/);
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
