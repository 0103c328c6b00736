// The status bar item's model: which backend, and what the server is doing. Pure.
import { SessionInfo } from "./wire";

export type ServerState = "starting" | "ready" | "stopped" | "error" | "untrusted";

export interface StatusView {
  text: string;
  tooltip: string;
  severity: "normal" | "warning" | "error";
}

export class StatusModel {
  state: ServerState = "stopped";
  backend: string | undefined;
  detail: string | undefined;
  /** The sandbox's sessions (from daytona.sandboxInfo). */
  sessions: SessionInfo[] = [];
  private readonly running = new Set<string>();

  setState(state: ServerState, detail?: string): void {
    this.state = state;
    this.detail = detail;
    if (state !== "ready") {
      this.running.clear();
      this.sessions = [];
    }
  }

  runStarted(runId: string | number): void {
    this.running.add(String(runId));
  }

  runFinished(runId: string | number): void {
    this.running.delete(String(runId));
  }

  get runningCount(): number {
    return this.running.size;
  }

  view(): StatusView {
    const backend = backendName(this.backend);
    const icon = this.backend === "daytona" ? "$(cloud)" : this.backend === "local" ? "$(vm)" : "$(beaker)";
    const label = `Daytona${backend ? ` (${backend})` : ""}`;
    const click = "Click to show the Daytona output.";
    switch (this.state) {
      case "starting":
        return { text: `$(sync~spin) ${label}: starting`, tooltip: `The Daytona language server is starting. ${click}`, severity: "normal" };
      case "ready": {
        const n = this.running.size;
        if (n > 0) {
          return {
            text: `$(loading~spin) ${label}: running ${n}`,
            tooltip: `${n} run${n === 1 ? "" : "s"} in progress. ${click}`,
            severity: "normal",
          };
        }
        return {
          text: `${icon} ${label}: ready${sessionsText(this.sessions)}`,
          tooltip: `Runs go to ${sandboxText(this.backend)}.${sessionsTooltip(this.sessions)} ${click}`,
          severity: "normal",
        };
      }
      case "error":
        return {
          text: `$(error) ${label}: error`,
          tooltip: `${this.detail ?? "The language server stopped."} Click to show the server's output.`,
          severity: "error",
        };
      case "untrusted":
        return {
          text: "$(shield) Daytona: untrusted",
          tooltip: "Running code is disabled until you trust this workspace.",
          severity: "warning",
        };
      case "stopped":
      default:
        return { text: `$(debug-stop) ${label}: stopped`, tooltip: `The Daytona language server is not running. ${click}`, severity: "warning" };
    }
  }
}

export function backendName(backend: string | undefined): string | undefined {
  if (!backend) return undefined;
  if (backend === "daytona") return "Daytona";
  if (backend === "local") return "local";
  return backend;
}

function sessionsText(sessions: SessionInfo[]): string {
  const n = sessions.length;
  return n === 0 ? "" : ` · ${n} session${n === 1 ? "" : "s"}`;
}

function sessionsTooltip(sessions: SessionInfo[]): string {
  if (sessions.length === 0) return "";
  const lines = sessions.map((s) => `${s.key.split("/").pop() || s.key} (${s.language}): ${s.state}`);
  return ` Sessions: ${lines.join("; ")}.`;
}

function sandboxText(backend: string | undefined): string {
  if (backend === "daytona") return "a Daytona cloud sandbox";
  if (backend === "local") return "an isolated local sandbox";
  return "a sandbox";
}
