// Which command starts the language server. Pure: everything it needs to know about the machine is passed in.
import * as path from "node:path";

export interface ServerCommandSettings {
  /** `daytona.server.command`: the full command line (program and arguments); wins over everything. */
  command: readonly string[];
  /** `daytona.server.pythonPath`: an interpreter that has the `daytona_lsp` package (`python -m daytona_lsp`). */
  pythonPath: string;
}

export interface Machine {
  /** Whether the workspace is trusted: an untrusted workspace's own `.venv` is never executed. */
  trusted: boolean;
  workspaceFolders: readonly string[];
  platform: NodeJS.Platform;
  /** Full path of an executable found on PATH (and the usual install directories), or undefined. */
  findOnPath(name: string): string | undefined;
  isExecutable(file: string): boolean;
  /** The server bundled in this extension, if the package carries one. */
  bundle?: Bundle;
  /** Interpreters that could run the bundled server, best first (asked only when it comes to the bundle). */
  interpreters(): Promise<Interpreter[]>;
}

export interface Bundle {
  /** bundled/tool/launch.py */
  launcher: string;
  /** The CPython versions it has packages for ("3.10", ...), from the names of bundled/libs' directories. */
  versions: readonly string[];
  /** Where Python may write bytecode (the extension's global storage, per extension version). */
  pycache: string;
  /** The extension's version (= the bundled server's). */
  version: string;
}

export interface Interpreter {
  path: string;
  /** "3.11"; undefined when it did not start. */
  version: string | undefined;
  /** Where it was found, for the log: "the Python extension's interpreter", "PATH". */
  origin: string;
}

export type CommandSource = "setting" | "pythonPath" | "workspace" | "bundled" | "path";

export interface ServerCommand {
  command: string;
  args: string[];
  source: CommandSource;
}

/** No server could be found: what to install or set. */
export interface ServerMissing {
  missing: string;
}

export const SERVER_EXECUTABLE = "daytona-lsp";
export const SERVER_MODULE = "daytona_lsp";
/** How to install the server without the extension, until it is published (one wording for every message). */
export const INSTALL_HINT = "`pipx install dist/daytona_lsp-*.whl` after `bash scripts/package --wheel` in a clone";
const SOURCES: Record<CommandSource, string> = {
  setting: "the `daytona.server.command` setting",
  pythonPath: "the `daytona.server.pythonPath` setting",
  workspace: "the workspace's .venv",
  bundled: "the server bundled with the extension",
  path: "`daytona-lsp` on PATH",
};

/** What the Output channel's first line says about the server that was chosen. */
export function describeSource(cmd: ServerCommand): string {
  return `Server: ${SOURCES[cmd.source]} (${formatCommandLine(cmd)})`;
}

/** The CPython versions bundled/libs has packages for, from its directory names ("cp310+cp311", "cp312"). */
export function bundleVersions(dirNames: readonly string[]): string[] {
  const versions = new Set<string>();
  for (const name of dirNames) {
    for (const part of name.split("+")) {
      const m = /^cp(\d)(\d+)$/.exec(part);
      if (m) versions.add(`${m[1]}.${m[2]}`);
    }
  }
  return [...versions].sort((a, b) => Number(a.split(".")[1]) - Number(b.split(".")[1]));
}

function venvExecutable(folder: string, platform: NodeJS.Platform, name: string): string {
  return platform === "win32"
    ? path.win32.join(folder, ".venv", "Scripts", `${name}.exe`)
    : path.posix.join(folder, ".venv", "bin", name);
}

/**
 * The order: the `daytona.server.command` setting, then `daytona.server.pythonPath -m daytona_lsp`, then a trusted
 * workspace's `.venv`, then the bundled server with the first interpreter whose version it has packages for, then
 * `daytona-lsp` on PATH. Nothing found: what to install.
 */
export async function resolveServerCommand(
  settings: ServerCommandSettings,
  machine: Machine,
): Promise<ServerCommand | ServerMissing> {
  const command = settings.command.map((part) => part.trim()).filter((part) => part.length > 0);
  if (command.length > 0) {
    return { command: command[0], args: command.slice(1), source: "setting" };
  }
  const python = settings.pythonPath.trim();
  if (python) {
    return { command: python, args: ["-m", SERVER_MODULE], source: "pythonPath" };
  }
  if (machine.trusted) {
    for (const folder of machine.workspaceFolders) {
      const candidate = venvExecutable(folder, machine.platform, SERVER_EXECUTABLE);
      if (machine.isExecutable(candidate)) {
        return { command: candidate, args: [], source: "workspace" };
      }
    }
  }
  let tried: Interpreter[] = [];
  const bundle = machine.bundle;
  if (bundle && bundle.versions.length > 0) {
    tried = await machine.interpreters();
    const usable = tried.find((i) => i.version !== undefined && bundle.versions.includes(i.version));
    if (usable) {
      return { command: usable.path, args: ["-I", bundle.launcher, bundle.pycache], source: "bundled" };
    }
  }
  const onPath = machine.findOnPath(SERVER_EXECUTABLE);
  if (onPath) {
    return { command: onPath, args: [], source: "path" };
  }
  return { missing: describeMissing(bundle, tried) };
}

function describeMissing(bundle: Bundle | undefined, tried: readonly Interpreter[]): string {
  const settings = "or set `daytona.server.pythonPath` (a Python that has daytona-lsp) or `daytona.server.command`";
  if (!bundle || bundle.versions.length === 0) {
    return (
      "Daytona: no language server found: this package of the extension does not carry one and `daytona-lsp` is not " +
      `on PATH. Install the platform package (daytona-lsp-linux-x64.vsix), or the server (${INSTALL_HINT}), ${settings}.`
    );
  }
  const range = `${bundle.versions[0]}–${bundle.versions[bundle.versions.length - 1]}`;
  const seen = tried.length
    ? ` (found ${tried.map((i) => `${i.path}${i.version ? ` ${i.version}` : " (does not start)"}`).join(", ")})`
    : " (none found: neither the Python extension's interpreter nor python3/python on PATH)";
  return (
    `Daytona: the bundled language server needs Python ${range}${seen}. Install Python 3 (e.g. \`sudo apt install ` +
    `python3\`) or select one with the Python extension, ${settings}.`
  );
}

/** The command line as a user would type it (for messages and the log). */
export function formatCommandLine(cmd: Pick<ServerCommand, "command" | "args">): string {
  return [cmd.command, ...cmd.args].map((part) => (/[\s"']/.test(part) ? JSON.stringify(part) : part)).join(" ");
}

/** Search PATH like a shell would. `isExecutable` is injected so tests need no real files. */
export function findOnPath(
  name: string,
  pathVariable: string | undefined,
  isExecutable: (file: string) => boolean,
  platform: NodeJS.Platform = process.platform,
): string | undefined {
  if (!pathVariable) return undefined;
  const separator = platform === "win32" ? ";" : ":";
  const extensions = platform === "win32" ? [".exe", ".cmd", ".bat", ""] : [""];
  const join = platform === "win32" ? path.win32.join : path.posix.join;
  for (const dir of pathVariable.split(separator)) {
    if (!dir) continue;
    for (const ext of extensions) {
      const candidate = join(dir, name + ext);
      if (isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

/** One clear sentence on why the server did not start and how to fix it. */
export function describeStartFailure(cmd: ServerCommand, error: unknown): string {
  const reason = errorText(error);
  const line = formatCommandLine(cmd);
  const notFound = /ENOENT|not found|No such file/i.test(reason);
  const noModule = /No module named/i.test(reason);
  let fix: string;
  if (cmd.source === "setting") {
    fix = "Check the `daytona.server.command` setting.";
  } else if (cmd.source === "pythonPath") {
    fix = noModule || !notFound
      ? "Install the server into that interpreter (`<python> -m pip install dist/daytona_lsp-*.whl`, see the README) " +
        "or change `daytona.server.pythonPath`."
      : "Check the `daytona.server.pythonPath` setting.";
  } else if (cmd.source === "bundled") {
    fix = "Set `daytona.server.pythonPath` to another Python 3.10 or newer, or `daytona.server.command`.";
  } else {
    fix = `Reinstall the server (${INSTALL_HINT}), or set \`daytona.server.command\` or \`daytona.server.pythonPath\`.`;
  }
  const what = notFound ? `\`${cmd.command}\` was not found` : noModule ? "the `daytona_lsp` package is not installed" : reason;
  return `Daytona: the language server could not start (${line}): ${what}. ${fix}`;
}

export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === "string") return error;
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}
