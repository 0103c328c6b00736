// The status bar item: backend and state; clicking it shows the "Daytona" output.
import * as vscode from "vscode";
import { ServerState, StatusModel } from "./logic/statusModel";
import { SessionInfo } from "./logic/wire";

export class StatusBar implements vscode.Disposable {
  readonly model = new StatusModel();
  private readonly item: vscode.StatusBarItem;

  constructor() {
    this.item = vscode.window.createStatusBarItem("daytona.status", vscode.StatusBarAlignment.Left, 10);
    this.item.name = "Daytona";
    this.render();
    this.item.show();
  }

  setState(state: ServerState, detail?: string): void {
    this.model.setState(state, detail);
    this.render();
  }

  setBackend(backend: string | undefined | null): void {
    if (backend) {
      this.model.backend = backend;
      this.render();
    }
  }

  runStarted(runId: string | number, backend?: string | null): void {
    if (backend) this.model.backend = backend;
    this.model.runStarted(runId);
    this.render();
  }

  setSessions(sessions: SessionInfo[] | undefined): void {
    this.model.sessions = sessions ?? [];
    this.render();
  }

  runFinished(runId: string | number): void {
    this.model.runFinished(runId);
    this.render();
  }

  private render(): void {
    const view = this.model.view();
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    // an error is explained in the server's log; otherwise the click shows the runs' output
    this.item.command =
      view.severity === "error"
        ? { command: "daytona.showOutput", title: "Show Output", arguments: ["server"] }
        : "daytona.showOutput";
    this.item.backgroundColor =
      view.severity === "error"
        ? new vscode.ThemeColor("statusBarItem.errorBackground")
        : view.severity === "warning"
          ? new vscode.ThemeColor("statusBarItem.warningBackground")
          : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
