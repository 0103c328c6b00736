// Matches a `daytona.run` request with the `daytona/runStarted` notification of the run it started (same URI, in order),
// so that cancelling the request's progress notification cancels the right run.
import { runKey } from "./wire";

interface Pending {
  uri: string;
  resolve(runId: string): void;
}

export class RunCorrelator {
  private readonly pending: Pending[] = [];

  /** Register before sending the request; the promise resolves with the run id once its runStarted arrives. */
  expect(uri: string): { runId: Promise<string>; dispose(): void } {
    let entry!: Pending;
    const runId = new Promise<string>((resolve) => {
      entry = { uri, resolve };
    });
    this.pending.push(entry);
    return {
      runId,
      dispose: () => {
        const i = this.pending.indexOf(entry);
        if (i >= 0) this.pending.splice(i, 1);
      },
    };
  }

  /** Returns true when the run belonged to a pending request. */
  started(uri: string, runId: string | number): boolean {
    const i = this.pending.findIndex((p) => sameUri(p.uri, uri));
    if (i < 0) return false;
    const [entry] = this.pending.splice(i, 1);
    entry.resolve(runKey(runId));
    return true;
  }
}

/** file:///a%20b and file:///a b are the same file; VS Code and servers disagree on escaping. */
export function sameUri(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return decodeURIComponent(a) === decodeURIComponent(b);
  } catch {
    return false;
  }
}
