// What the "Daytona" output channel shows: a header per run, the streamed chunks, a footer. Pure; writes through `write`.
import { fileURLToPath } from "node:url";
import * as path from "node:path";
import { RunFinished, RunOutput, RunResult, RunStarted, runKey, Range } from "./wire";

const BACKEND_LABELS: Record<string, string> = { daytona: "Daytona sandbox", local: "local sandbox" };

export function backendLabel(backend: string | null | undefined): string {
  if (!backend) return "sandbox";
  return BACKEND_LABELS[backend] ?? backend;
}

/** A file URI as a short path: relative to the workspace folder that holds it, else the full path. */
export function displayPath(uri: string, workspaceFolders: readonly string[]): string {
  let file: string;
  try {
    file = uri.startsWith("file:") ? fileURLToPath(uri) : uri;
  } catch {
    return uri;
  }
  for (const folder of workspaceFolders) {
    const relative = path.relative(folder, file);
    if (relative && !relative.startsWith("..") && !path.isAbsolute(relative)) return relative;
  }
  return file;
}

function rangeSuffix(range: Range | null | undefined): string {
  if (!range) return "";
  const first = range.start.line + 1;
  // A selection ending at column 0 does not include that line.
  const last = range.end.character === 0 && range.end.line > range.start.line ? range.end.line : range.end.line + 1;
  return first === last ? `:${first}` : `:${first}-${last}`;
}

export function formatDuration(ms: number | null | undefined): string | undefined {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return undefined;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return `${minutes} min ${seconds} s`;
}

export function formatHeader(started: RunStarted, workspaceFolders: readonly string[], at: Date): string {
  const parts = [`${displayPath(started.uri, workspaceFolders)}${rangeSuffix(started.range)}`];
  if (started.language) parts.push(started.language);
  parts.push(backendLabel(started.backend));
  parts.push(at.toTimeString().slice(0, 8));
  return `▶ [run ${started.runId}] ${parts.join(" · ")}`;
}

export function formatFooter(finished: RunFinished): string {
  const parts = [finished.exitCode === 0 ? "exit 0" : `exit ${finished.exitCode} (failed)`];
  const duration = formatDuration(finished.durationMs);
  if (duration) parts.push(duration);
  if (finished.truncated) parts.push("output truncated (daytona.maxOutputBytes)");
  return `■ [run ${finished.runId}] ${parts.join(" · ")}`;
}

/** The one line naming the workspace files a run created or changed (at most `limit` of them by name). */
export function formatChangedFiles(files: readonly string[], limit = 10): string {
  const more = files.length > limit ? ` and ${files.length - limit} more` : "";
  return `  changed files: ${files.slice(0, limit).join(", ")}${more}`;
}

interface RunState {
  started: RunStarted;
  finished: boolean;
}

/**
 * Keeps the channel readable when runs overlap: chunks of a run other than the last one that wrote get a
 * `[run N]` marker line first, and a footer always starts on a new line.
 */
export class RunLog {
  private readonly runs = new Map<string, RunState>();
  /** Every run this log has shown (newest last, bounded), so a result never repeats what notifications showed. */
  private readonly seen = new Set<string>();
  private atLineStart = true;
  private lastWriter: string | undefined;

  constructor(
    private readonly write: (text: string) => void,
    private readonly workspaceFolders: () => readonly string[] = () => [],
    private readonly now: () => Date = () => new Date(),
  ) {}

  get activeRuns(): number {
    let count = 0;
    for (const run of this.runs.values()) if (!run.finished) count++;
    return count;
  }

  has(runId: string | number): boolean {
    return this.seen.has(runKey(runId));
  }

  started(started: RunStarted): void {
    const key = runKey(started.runId);
    this.runs.set(key, { started, finished: false });
    this.seen.add(key);
    if (this.seen.size > 1000) this.seen.delete(this.seen.values().next().value as string);
    this.emit(`${formatHeader(started, this.workspaceFolders(), this.now())}\n`, key);
  }

  output(chunk: RunOutput): void {
    if (!chunk.text) return;
    const key = runKey(chunk.runId);
    if (this.lastWriter !== key && this.activeRuns > 1 && this.runs.has(key)) {
      this.emit(`${this.atLineStart ? "" : "\n"}··· [run ${chunk.runId}]\n`, key);
    }
    this.emit(chunk.text, key);
  }

  finished(finished: RunFinished): void {
    const key = runKey(finished.runId);
    const run = this.runs.get(key);
    if (run) run.finished = true;
    if (finished.value !== undefined) this.emit(`${this.atLineStart ? "" : "\n"}Out: ${finished.value}\n`, key);
    const changed = finished.changedFiles?.length ? `${formatChangedFiles(finished.changedFiles)}\n` : "";
    this.emit(`${this.atLineStart ? "" : "\n"}${formatFooter(finished)}\n${changed}\n`, key);
    this.runs.delete(key);
  }

  /** The server stopped: runs still open will never finish (footers say so), and run ids start again. */
  serverStopped(): void {
    for (const [key, run] of this.runs) {
      if (!run.finished) {
        this.emit(`${this.atLineStart ? "" : "\n"}■ [run ${run.started.runId}] interrupted: the language server stopped\n\n`, key);
      }
    }
    this.runs.clear();
    this.seen.clear();
  }

  /** For a run whose notifications never arrived (a server without `outputNotifications`): show it from its result. */
  result(args: { uri: string; language?: string; range?: Range }, result: RunResult): void {
    if (this.has(result.runId)) return;
    this.started({ runId: result.runId, uri: args.uri, range: args.range, language: args.language, backend: result.backend });
    this.output({ runId: result.runId, stream: "stdout", text: result.output });
    this.finished({
      runId: result.runId,
      exitCode: result.exitCode,
      durationMs: result.durationMs,
      truncated: result.truncated,
      changedFiles: result.changedFiles,
      value: result.value,
    });
  }

  private emit(text: string, writer: string): void {
    if (!text) return;
    this.write(text);
    this.atLineStart = text.endsWith("\n");
    this.lastWriter = writer;
  }
}
