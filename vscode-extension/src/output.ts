// The two output channels: "Daytona" shows runs (header, streamed chunks, footer); "Daytona Server" is the one log.
import * as vscode from "vscode";
import { redact } from "./logic/redact";
import { RunLog } from "./logic/runLog";

export const OUTPUT_CHANNEL_NAME = "Daytona";
export const LOG_CHANNEL_NAME = "Daytona Server";

export class RunOutputChannel implements vscode.Disposable {
  readonly channel: vscode.OutputChannel;
  readonly log: RunLog;

  constructor(secrets: () => Iterable<string | undefined>) {
    this.channel = vscode.window.createOutputChannel(OUTPUT_CHANNEL_NAME);
    this.log = new RunLog(
      (text) => this.channel.append(redact(text, secrets())),
      () => (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
    );
  }

  /** Bring the channel into view without taking the focus from the editor. */
  reveal(): void {
    this.channel.show(true);
  }

  dispose(): void {
    this.channel.dispose();
  }
}

/**
 * The server log: an OutputChannel that redacts secrets before anything reaches the screen. vscode-languageclient
 * writes the server's stderr and its own messages here.
 */
export function createLogChannel(secrets: () => Iterable<string | undefined>): vscode.OutputChannel {
  const inner = vscode.window.createOutputChannel(LOG_CHANNEL_NAME);
  const clean = (text: string) => redact(text, secrets());
  return {
    get name() {
      return inner.name;
    },
    append: (value: string) => inner.append(clean(value)),
    appendLine: (value: string) => inner.appendLine(clean(value)),
    replace: (value: string) => inner.replace(clean(value)),
    clear: () => inner.clear(),
    show: (a?: unknown, b?: boolean) => {
      if (typeof a === "boolean" || a === undefined) inner.show(a);
      else inner.show(a as vscode.ViewColumn, b);
    },
    hide: () => inner.hide(),
    dispose: () => inner.dispose(),
  } as vscode.OutputChannel;
}
