// The server's wire interface (see shared design "Wire interface"): command arguments, results and notifications.

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export interface RunArguments {
  uri: string;
  range?: Range;
  language?: string;
  args?: string[];
}

export interface RunResult {
  runId: string | number;
  exitCode: number;
  output: string;
  truncated: boolean;
  durationMs: number | null;
  backend: string;
  changedFiles?: string[];
  /** A session run's trailing value (like Jupyter's Out). */
  value?: string;
}

export interface RunStarted {
  runId: string | number;
  uri: string;
  range?: Range | null;
  language?: string | null;
  backend?: string | null;
}

export interface RunOutput {
  runId: string | number;
  stream: string;
  text: string;
}

export interface RunFinished {
  runId: string | number;
  exitCode: number;
  durationMs?: number | null;
  truncated?: boolean;
  /** Workspace files (folder-relative) the run created or changed in the sandbox's copy. */
  changedFiles?: string[];
  /** A session run's trailing value (like Jupyter's Out). */
  value?: string;
}

export interface InputRequested {
  runId: string | number;
  prompt: string;
}

export interface SandboxInfo {
  backend: string;
  sandboxId?: string | null;
  state: string;
  error?: string;
  sessions?: SessionInfo[];
}

/** A persistent session of the sandbox: one per document (key: its URI) and language. */
export interface SessionInfo {
  key: string;
  language: string;
  state: string;
}

export const COMMAND_RUN = "daytona.run";
export const COMMAND_CANCEL = "daytona.cancel";
export const COMMAND_RESET = "daytona.resetSandbox";
export const COMMAND_SANDBOX_INFO = "daytona.sandboxInfo";
export const COMMAND_SEND_INPUT = "daytona.sendInput";
export const COMMAND_RESTART_SESSION = "daytona.restartSession";
export const NOTIFY_RUN_STARTED = "daytona/runStarted";
export const NOTIFY_OUTPUT = "daytona/output";
export const NOTIFY_RUN_FINISHED = "daytona/runFinished";
export const NOTIFY_INPUT_REQUESTED = "daytona/inputRequested";

/** One entry of the server's language registry (`initialize` result `capabilities.experimental.daytona.languages`). */
export interface ServerLanguage {
  id: string;
  languageIds: string[];
  extensions?: string[];
  cellMarker?: string;
}

/** For a server that does not list its languages: VS Code language ids → the server's language names. */
export const FALLBACK_LANGUAGE_IDS: Readonly<Record<string, string>> = {
  python: "python",
  shellscript: "bash",
  javascript: "javascript",
  typescript: "typescript",
};

/** Language id → server language, from the server's `capabilities.experimental` (the fallback when it lists none). */
export function languageTable(experimental: unknown): Record<string, string> {
  const listed = (experimental as { daytona?: { languages?: unknown } } | null | undefined)?.daytona?.languages;
  if (!Array.isArray(listed)) return { ...FALLBACK_LANGUAGE_IDS };
  const table: Record<string, string> = {};
  for (const entry of listed as ServerLanguage[]) {
    if (typeof entry?.id !== "string" || !Array.isArray(entry.languageIds)) continue;
    for (const languageId of entry.languageIds) table[languageId] = entry.id;
  }
  return table;
}

let languages: Record<string, string> = { ...FALLBACK_LANGUAGE_IDS };

/** Use the languages the running server lists (call with its initialize result's `capabilities.experimental`). */
export function useServerLanguages(experimental: unknown): void {
  languages = languageTable(experimental);
}

/** The server's language for a VS Code language id; others are left for the server to decide (or refuse). */
export function serverLanguage(languageId: string | undefined): string | undefined {
  return languageId && Object.prototype.hasOwnProperty.call(languages, languageId) ? languages[languageId] : undefined;
}

function isEmpty(range: Range): boolean {
  return range.start.line === range.end.line && range.start.character === range.end.character;
}

/** `daytona.run`'s argument for a document and (optionally) a selection; an empty selection means the whole file. */
export function runArguments(uri: string, languageId?: string, selection?: Range): RunArguments {
  const args: RunArguments = { uri };
  if (selection && !isEmpty(selection)) {
    // VS Code selections may run backwards (anchor after active); the server wants start <= end.
    const [start, end] = comparePositions(selection.start, selection.end) <= 0
      ? [selection.start, selection.end]
      : [selection.end, selection.start];
    args.range = { start: { ...start }, end: { ...end } };
  }
  const language = serverLanguage(languageId);
  if (language) args.language = language;
  return args;
}

export function comparePositions(a: Position, b: Position): number {
  return a.line !== b.line ? a.line - b.line : a.character - b.character;
}

/** A runId as a map key (the server may send numbers or strings). */
export function runKey(runId: string | number): string {
  return String(runId);
}
