// Interactive input: an input box for each daytona/inputRequested (titled with the program's prompt); Enter sends the
// line, Escape sends EOF. One box per run at a time; a run that finishes takes its box away.
import * as vscode from "vscode";
import { InputRequested } from "./logic/wire";

export type SendInput = (runId: string | number, text: string, eof: boolean) => Promise<unknown>;

export class InputPrompter implements vscode.Disposable {
  private readonly boxes = new Map<string, vscode.InputBox>();

  constructor(
    private readonly send: SendInput,
    private readonly report: (message: string) => void,
  ) {}

  request(p: InputRequested): void {
    const key = String(p.runId);
    if (this.boxes.has(key)) return; // the box for this run is still open
    const box = vscode.window.createInputBox();
    const prompt = p.prompt.trim();
    box.title = prompt ? `Daytona: ${prompt}` : `Daytona: run ${key} waits for input`;
    box.prompt = "Enter sends the line to the program; Escape closes its input (EOF).";
    box.ignoreFocusOut = true;
    let answered = false;
    const answer = (text: string, eof: boolean) => {
      if (answered) return;
      answered = true;
      this.close(key);
      this.send(p.runId, text, eof).catch((error: unknown) => this.report(`Daytona: input not sent: ${String(error)}`));
    };
    box.onDidAccept(() => answer(box.value, false));
    box.onDidHide(() => {
      if (this.boxes.get(key) === box) answer("", true); // Escape (not our own close after the run ended)
      box.dispose();
    });
    this.boxes.set(key, box);
    box.show();
  }

  /** The run ended: its box goes, without sending anything. */
  finished(runId: string | number): void {
    this.close(String(runId));
  }

  private close(key: string): void {
    const box = this.boxes.get(key);
    this.boxes.delete(key);
    box?.hide();
  }

  dispose(): void {
    for (const key of [...this.boxes.keys()]) this.close(key);
  }
}
