// The language client: which server to start, with which environment; restarts (queued, never raced); run requests
// with a cancellable progress notification; the daytona/* notifications fanned out to the output channel and status bar.
import * as cp from "node:child_process";
import * as fs from "node:fs";
import type { Readable } from "node:stream";
import * as vscode from "vscode";
import {
  CancellationToken,
  CloseAction,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  State,
} from "vscode-languageclient/node";
import { RunCorrelator } from "./logic/correlate";
import { redact } from "./logic/redact";
import { RestartQueue } from "./logic/restartQueue";
import { findInterpreters, findProgram } from "./discovery";
import {
  Bundle,
  describeSource,
  describeStartFailure,
  errorText,
  resolveServerCommand,
  ServerCommand,
} from "./logic/serverCommand";
import {
  COMMAND_CANCEL,
  COMMAND_RUN,
  COMMAND_SANDBOX_INFO,
  COMMAND_SEND_INPUT,
  InputRequested,
  NOTIFY_INPUT_REQUESTED,
  NOTIFY_OUTPUT,
  NOTIFY_RUN_FINISHED,
  NOTIFY_RUN_STARTED,
  RunArguments,
  RunFinished,
  RunOutput,
  RunResult,
  RunStarted,
  SandboxInfo,
  useServerLanguages,
} from "./logic/wire";
import { InputPrompter } from "./input";
import { RunOutputChannel } from "./output";
import { ApiKeyStore } from "./secrets";
import { StatusBar } from "./status";

export const CLIENT_ID = "daytona";
const DOCUMENT_SELECTOR = ["python", "shellscript", "javascript", "typescript"].flatMap((language) => [
  { scheme: "file", language },
  { scheme: "untitled", language },
]);

/** The library's own error pop-ups are replaced by ours (one clear notification); its log lines stay. */
class DaytonaLanguageClient extends LanguageClient {
  override error(message: string, data?: unknown, _showNotification?: boolean | "force"): void {
    super.error(message, data, false);
  }
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

export class DaytonaClient implements vscode.Disposable {
  private client: DaytonaLanguageClient | undefined;
  private process: cp.ChildProcess | undefined;
  private stderrTail = "";
  /** The last start failure's stderr, with the command it came from. */
  private lastWords: { key: string; tail: string } | undefined;
  private stderr: Readable | undefined;
  private readonly queue = new RestartQueue(() => this.restartNow());
  private readonly correlator = new RunCorrelator();
  private readonly input = new InputPrompter(
    (runId, text, eof) => this.execute(COMMAND_SEND_INPUT, [{ runId, text, eof }]),
    (message) => void vscode.window.showErrorMessage(message),
  );
  private readonly disposables: vscode.Disposable[] = [];
  private crashes: number[] = [];
  private disposed = false;
  private quietStart = false;
  private command: ServerCommand | undefined;

  constructor(
    private readonly output: RunOutputChannel,
    private readonly log: vscode.OutputChannel,
    private readonly status: StatusBar,
    private readonly keys: ApiKeyStore,
    private readonly bundle: Bundle | undefined,
  ) {}

  get running(): boolean {
    return this.client?.state === State.Running;
  }

  /** Start or restart the server. Requests made while a restart waits share it; never two at once. */
  restart(): Promise<void> {
    return this.queue.request();
  }

  async whenIdle(): Promise<void> {
    await this.queue.idle();
  }

  private async restartNow(): Promise<void> {
    const requested = Date.now();
    await this.stopNow();
    if (this.disposed) return;
    if (!vscode.workspace.isTrusted) {
      this.status.setState("untrusted");
      this.log.appendLine("Workspace not trusted: the language server is not started until you trust it.");
      return;
    }
    this.status.setState("starting");
    const settings = vscode.workspace.getConfiguration("daytona");
    const resolved = await resolveServerCommand(
      {
        command: settings.get<string[]>("server.command", []) ?? [],
        pythonPath: settings.get<string>("server.pythonPath", "") ?? "",
      },
      {
        trusted: vscode.workspace.isTrusted,
        workspaceFolders: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
        platform: process.platform,
        findOnPath: (name) => findProgram(name, isExecutable),
        isExecutable,
        bundle: this.bundle,
        interpreters: () => findInterpreters(isExecutable),
      },
    );
    if (this.disposed) return;
    if ("missing" in resolved) {
      this.command = undefined;
      this.fail(resolved.missing);
      return;
    }
    const command = resolved;
    this.command = command;
    const apiKey = await this.keys.get();
    const env: NodeJS.ProcessEnv = { ...process.env };
    if (apiKey) env.DAYTONA_API_KEY = apiKey;
    this.log.appendLine(
      `${describeSource(command)}; API key: ${
        apiKey ? "from VS Code's secret storage" : env.DAYTONA_API_KEY ? "from the environment" : "none (local sandbox)"
      }`,
    );

    const client = new DaytonaLanguageClient(
      CLIENT_ID,
      "Daytona",
      () => this.spawn(command, env),
      this.clientOptions(),
    );
    this.client = client;
    this.disposables.push(
      client.onNotification(NOTIFY_RUN_STARTED, (p: RunStarted) => this.onRunStarted(p)),
      client.onNotification(NOTIFY_OUTPUT, (p: RunOutput) => this.output.log.output(p)),
      client.onNotification(NOTIFY_RUN_FINISHED, (p: RunFinished) => this.onRunFinished(p)),
      client.onNotification(NOTIFY_INPUT_REQUESTED, (p: InputRequested) => this.input.request(p)),
      client.onDidChangeState((e) => {
        if (this.client !== client) return;
        if (e.newState === State.Running) this.status.setState("ready");
        else if (e.newState === State.Starting) this.status.setState("starting");
      }),
    );
    let failure: unknown;
    try {
      await client.start();
      // the library resolves start() even when the server died during initialize (e.g. "No module named daytona_lsp")
      if (client.state !== State.Running) failure = new Error("the server exited during initialization");
    } catch (error) {
      failure = error;
    }
    if (failure !== undefined) {
      if (this.client !== client) return;
      await this.stderrRead(); // its last lines say why
      const tail = this.lastStderrLines().join("\n");
      // in the log as the server wrote them (the client library forwards stderr only once it has attached to it,
      // which a server failing at once can beat)
      if (tail) this.log.appendLine(`Server's last words: ${redact(tail, [this.keys.known])}`);
      const message = describeStartFailure(command, this.failureReason(failure));
      await this.stopNow();
      this.fail(message);
      return;
    }
    this.crashes = [];
    useServerLanguages(client.initializeResult?.capabilities.experimental);
    this.status.setState("ready");
    this.log.appendLine(`Server ready ${Date.now() - requested} ms after the (re)start was requested.`);
    void this.refreshSandboxInfo();
  }

  private failureReason(error: unknown): string {
    const tail = this.lastStderrLines().join(" ").trim();
    const text = errorText(error);
    if (/ENOENT/.test(text)) return text;
    const key = this.command ? [this.command.command, ...this.command.args].join("\0") : "";
    if (tail) {
      this.lastWords = { key, tail };
      return tail;
    }
    // A server that dies at once may take its stderr with it (the client library destroys the streams when its
    // first write fails: "write EPIPE"): the same command's last words of a moment ago say why.
    return this.lastWords?.key === key ? this.lastWords.tail : text;
  }

  /** The server's last three lines of stderr (what it said before it failed or stopped). */
  private lastStderrLines(): string[] {
    return this.stderrTail.trim().split("\n").slice(-3);
  }

  private fail(message: string): void {
    const clean = redact(message, [this.keys.known]);
    this.status.setState("error", clean);
    this.log.appendLine(clean);
    if (this.quietStart) return; // the caller explains it in its own message
    void vscode.window.showErrorMessage(clean, "Show Output", "Open Settings").then((choice) => {
      if (choice === "Open Settings") {
        void vscode.commands.executeCommand("workbench.action.openSettings", "daytona.server");
      } else if (choice === "Show Output") {
        this.showLog();
      }
    });
  }

  /** The server's log (the Output channel that says which server was used and why it stopped). */
  showLog(): void {
    this.log.show(true);
  }

  /** Resolves when the server's stderr has been read to its end (or after 3 s, if the process lingers). */
  private stderrRead(): Promise<void> {
    const stderr = this.stderr;
    if (!stderr || stderr.readableEnded || stderr.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 3000);
      stderr.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private spawn(command: ServerCommand, env: NodeJS.ProcessEnv): Promise<cp.ChildProcess> {
    this.stderrTail = "";
    const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    return new Promise((resolve, reject) => {
      const child = cp.spawn(command.command, command.args, { env, cwd, stdio: "pipe" });
      child.once("error", reject);
      child.once("spawn", () => {
        child.removeListener("error", reject);
        child.on("error", (error) => this.log.appendLine(`Server process error: ${errorText(error)}`));
        this.process = child;
        this.stderr = child.stderr ?? undefined;
        child.stderr?.on("data", (data: Buffer) => {
          this.stderrTail = (this.stderrTail + data.toString("utf8")).slice(-2000);
        });
        child.once("exit", (code, signal) => {
          if (this.process === child) this.process = undefined;
          this.log.appendLine(`Server process exited (${signal ?? `code ${code}`}).`);
        });
        resolve(child);
      });
    });
  }

  private clientOptions(): LanguageClientOptions {
    return {
      documentSelector: DOCUMENT_SELECTOR,
      outputChannel: this.log,
      traceOutputChannel: this.log,
      revealOutputChannelOn: 4 /* never */,
      initializationOptions: { outputNotifications: true, interactiveInput: true },
      synchronize: { configurationSection: "daytona" },
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue, handled: true }),
        closed: () => this.onClosed(),
      },
      middleware: {
        executeCommand: (command, args, next) =>
          command === COMMAND_RUN && args.length > 0 ? this.runWithProgress(args[0] as RunArguments) : next(command, args),
      },
    };
  }

  private onClosed(): { action: CloseAction; handled: boolean } {
    const client = this.client;
    if (!client || client.state === State.Starting) {
      return { action: CloseAction.DoNotRestart, handled: true }; // the start failure is reported by restartNow
    }
    const now = Date.now();
    this.crashes = [...this.crashes.filter((t) => now - t < 180_000), now];
    const tail = this.lastStderrLines().join(" ").trim();
    if (this.crashes.length <= 3) {
      this.log.appendLine(`The language server stopped${tail ? `: ${tail}` : ""}; restarting it.`);
      this.status.setState("starting");
      return { action: CloseAction.Restart, handled: true };
    }
    this.fail(
      `Daytona: the language server stopped ${this.crashes.length} times in 3 minutes and will not be restarted` +
        `${tail ? ` (${tail})` : ""}. Run "Daytona: Restart Server" after fixing the cause.`,
    );
    return { action: CloseAction.DoNotRestart, handled: true };
  }

  private onRunStarted(p: RunStarted): void {
    this.correlator.started(p.uri, p.runId);
    this.status.runStarted(p.runId, p.backend);
    this.output.log.started(p);
    this.output.reveal();
  }

  private onRunFinished(p: RunFinished): void {
    this.input.finished(p.runId);
    this.status.runFinished(p.runId);
    this.output.log.finished(p);
    void this.refreshSandboxInfo(); // the run may have started a session
  }

  async refreshSandboxInfo(): Promise<void> {
    try {
      const info = (await this.client?.sendRequest(ExecuteCommandRequest.type, {
        command: COMMAND_SANDBOX_INFO,
        arguments: [],
      })) as SandboxInfo | undefined;
      this.status.setBackend(info?.backend);
      this.status.setSessions(info?.sessions);
    } catch (error) {
      this.log.appendLine(`daytona.sandboxInfo failed: ${errorText(error)}`);
    }
  }

  /** Ask the server to run; shows a cancellable progress notification; returns the result (undefined if cancelled). */
  async runWithProgress(args: RunArguments): Promise<RunResult | undefined> {
    const client = await this.readyClient();
    if (!client) return undefined;
    const name = vscode.workspace.asRelativePath(vscode.Uri.parse(args.uri), false);
    const what = args.range ? `selection of ${name}` : name;
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Daytona: running ${what}`, cancellable: true },
      async (_progress, token) => {
        const expected = this.correlator.expect(args.uri);
        const onCancel = token.onCancellationRequested(() => {
          void expected.runId.then((runId) => this.cancel(runId));
        });
        try {
          const result = (await client.sendRequest(
            ExecuteCommandRequest.type,
            { command: COMMAND_RUN, arguments: [args] },
            token as CancellationToken,
          )) as RunResult | null;
          if (!result) return undefined;
          this.output.log.result(args, result);
          this.status.setBackend(result.backend);
          return result;
        } catch (error) {
          if (token.isCancellationRequested) {
            this.log.appendLine(`Run of ${what} cancelled.`);
            return undefined;
          }
          const message = redact(errorText(error), [this.keys.known]);
          void vscode.window.showErrorMessage(`Daytona: could not run ${what}: ${message}`);
          return undefined;
        } finally {
          onCancel.dispose();
          expected.dispose();
        }
      },
    );
  }

  /** Cancel one run, or every run without an id. */
  async cancel(runId?: string | number): Promise<void> {
    if (!this.client || !this.running) return;
    await this.client.sendRequest(ExecuteCommandRequest.type, {
      command: COMMAND_CANCEL,
      arguments: runId === undefined ? [{}] : [{ runId }],
    });
  }

  /** Execute a server command (daytona.resetSandbox, daytona.sandboxInfo…). */
  async execute<T>(command: string, args: unknown[] = []): Promise<T | undefined> {
    const client = await this.readyClient();
    if (!client) return undefined;
    return (await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args })) as T;
  }

  /** The running client; waits for a pending (re)start; explains why there is none. */
  private async readyClient(): Promise<LanguageClient | undefined> {
    if (!vscode.workspace.isTrusted) {
      void vscode.window.showWarningMessage(
        "Daytona: running code is disabled in an untrusted workspace. Trust the workspace to run it in a sandbox.",
        "Manage Workspace Trust",
      ).then((choice) => {
        if (choice) void vscode.commands.executeCommand("workbench.trust.manage");
      });
      return undefined;
    }
    await this.queue.idle();
    if (!this.client || !this.running) {
      if (!this.client) {
        // Try once more (the user may have installed the server since); the message below says why if it fails.
        this.quietStart = true;
        try {
          await this.restart();
        } finally {
          this.quietStart = false;
        }
      }
      if (!this.client || !this.running) {
        const detail = (this.status.model.detail ?? "the language server is not running").replace(/^Daytona: /, "");
        void vscode.window.showErrorMessage(`Daytona: cannot run: ${detail}`, "Show Output", "Restart Server").then((choice) => {
          if (choice === "Show Output") this.showLog();
          else if (choice) void vscode.commands.executeCommand("daytona.restartServer");
        });
        return undefined;
      }
    }
    return this.client;
  }

  private async stopNow(): Promise<void> {
    const client = this.client;
    const child = this.process;
    this.client = undefined;
    for (const d of this.disposables.splice(0)) d.dispose();
    if (client) {
      try {
        if (client.needsStop()) await client.stop(2000);
      } catch (error) {
        this.log.appendLine(`Stopping the server: ${errorText(error)}`);
      }
      try {
        await client.dispose(1000);
      } catch {
        // already stopped
      }
    }
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 3000));
      if ((await Promise.race([exited, timer])) === "timeout") child.kill("SIGKILL");
    }
    this.process = undefined;
    this.output.log.serverStopped();
    if (this.command) this.status.setState("stopped");
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    this.input.dispose();
    await this.queue.idle();
    await this.stopNow();
  }
}
