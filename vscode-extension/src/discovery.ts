// What the machine offers to start the server with: the bundle this package carries (if any), and the Pythons that
// could run it, best first: the Python extension's selected interpreter (when that
// extension is installed), then python3 / python on PATH and in the usual directories — VS Code's server may give the
// extension host a login shell's PATH, which on Debian has lost an activated venv's bin. Each is asked its version.
import * as cp from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as vscode from "vscode";
import { Bundle, bundleVersions, findOnPath, Interpreter } from "./logic/serverCommand";

/**
 * The server in bundled/ (a platform package has one, the plain package none). Bytecode goes to the global storage, in
 * a directory per extension version; older versions' directories are removed, so an update leaves nothing behind.
 */
export function findBundle(context: vscode.ExtensionContext): Bundle | undefined {
  const root = path.join(context.extensionPath, "bundled");
  let dirs: string[];
  try {
    dirs = fs.readdirSync(path.join(root, "libs"));
  } catch {
    return undefined;
  }
  const version = String((context.extension.packageJSON as { version?: string }).version ?? "0");
  const storage = context.globalStorageUri.fsPath;
  const pycache = path.join(storage, `pycache-${version}`);
  try {
    for (const old of fs.readdirSync(storage)) {
      if (old.startsWith("pycache-") && old !== path.basename(pycache)) {
        fs.rmSync(path.join(storage, old), { recursive: true, force: true });
      }
    }
  } catch {
    // no global storage yet
  }
  return { launcher: path.join(root, "tool", "launch.py"), versions: bundleVersions(dirs), pycache, version };
}

/** Directories searched after PATH, so that finding a program does not depend on the shell VS Code came from. */
export function searchPath(): string {
  const extra = process.platform === "win32" ? [] : [path.join(os.homedir(), ".local", "bin"), "/usr/local/bin", "/usr/bin", "/bin"];
  return [process.env.PATH ?? "", ...extra].filter(Boolean).join(path.delimiter);
}

export function findProgram(name: string, isExecutable: (file: string) => boolean): string | undefined {
  return findOnPath(name, searchPath(), isExecutable);
}

/** "3.11", or undefined when the interpreter does not start in 10 s. */
function pythonVersion(python: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    cp.execFile(python, ["-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], { timeout: 10_000 }, (error, stdout) =>
      resolve(error ? undefined : /^(\d+\.\d+)\s*$/.exec(stdout)?.[1]),
    );
  });
}

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): { path: string };
    resolveEnvironment(env: { path: string }): Promise<{ executable: { uri?: vscode.Uri } } | undefined>;
  };
}

async function selectedInterpreter(): Promise<string | undefined> {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>("ms-python.python");
  if (!extension) return undefined;
  try {
    const api = extension.isActive ? extension.exports : await extension.activate();
    const environments = api?.environments;
    if (!environments) return undefined;
    const active = environments.getActiveEnvironmentPath(vscode.workspace.workspaceFolders?.[0]?.uri);
    const resolved = await environments.resolveEnvironment(active);
    return resolved?.executable.uri?.fsPath ?? active.path;
  } catch {
    return undefined; // the Python extension failed: fall back to PATH
  }
}

export async function findInterpreters(isExecutable: (file: string) => boolean): Promise<Interpreter[]> {
  const candidates: { path: string; origin: string }[] = [];
  const selected = await selectedInterpreter();
  if (selected) candidates.push({ path: selected, origin: "the Python extension's interpreter" });
  for (const name of process.platform === "win32" ? ["python"] : ["python3", "python"]) {
    const found = findProgram(name, isExecutable);
    if (found && !candidates.some((c) => c.path === found)) candidates.push({ path: found, origin: "PATH" });
  }
  return Promise.all(candidates.map(async (c) => ({ ...c, version: await pythonVersion(c.path) })));
}
