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
  /** Full path of an executable found on PATH, or undefined. */
  findOnPath(name: string): string | undefined;
  isExecutable(file: string): boolean;
}

export type CommandSource = "setting" | "pythonPath" | "path" | "workspace" | "python";

export interface ServerCommand {
  command: string;
  args: string[];
  source: CommandSource;
}

export const SERVER_EXECUTABLE = "daytona-lsp";
export const SERVER_MODULE = "daytona_lsp";

function venvExecutable(folder: string, platform: NodeJS.Platform, name: string): string {
  return platform === "win32"
    ? path.win32.join(folder, ".venv", "Scripts", `${name}.exe`)
    : path.posix.join(folder, ".venv", "bin", name);
}

/**
 * The order: the `daytona.server.command` setting, then `daytona.server.pythonPath -m daytona_lsp`, then `daytona-lsp`
 * on PATH, then a trusted workspace's `.venv`, then `python3 -m daytona_lsp` (which fails with a clear message when the
 * package is missing).
 */
export function resolveServerCommand(settings: ServerCommandSettings, machine: Machine): ServerCommand {
  const command = settings.command.map((part) => part.trim()).filter((part) => part.length > 0);
  if (command.length > 0) {
    return { command: command[0], args: command.slice(1), source: "setting" };
  }
  const python = settings.pythonPath.trim();
  if (python) {
    return { command: python, args: ["-m", SERVER_MODULE], source: "pythonPath" };
  }
  const onPath = machine.findOnPath(SERVER_EXECUTABLE);
  if (onPath) {
    return { command: onPath, args: [], source: "path" };
  }
  if (machine.trusted) {
    for (const folder of machine.workspaceFolders) {
      const candidate = venvExecutable(folder, machine.platform, SERVER_EXECUTABLE);
      if (machine.isExecutable(candidate)) {
        return { command: candidate, args: [], source: "workspace" };
      }
    }
  }
  const interpreter =
    machine.findOnPath(machine.platform === "win32" ? "python" : "python3") ?? machine.findOnPath("python") ?? "python3";
  return { command: interpreter, args: ["-m", SERVER_MODULE], source: "python" };
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
      ? "Install the server into that interpreter (`pip install daytona-lsp`) or change `daytona.server.pythonPath`."
      : "Check the `daytona.server.pythonPath` setting.";
  } else {
    fix =
      "Install the server (`pip install daytona-lsp`, so that `daytona-lsp` is on PATH), " +
      "or set `daytona.server.command` or `daytona.server.pythonPath`.";
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
