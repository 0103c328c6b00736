import { test } from "node:test";
import * as assert from "node:assert/strict";
import {
  backendLabel,
  displayPath,
  formatChangedFiles,
  formatDuration,
  formatFooter,
  formatHeader,
  RunLog,
} from "../logic/runLog";

const at = new Date(2026, 0, 2, 3, 4, 5);

function makeLog() {
  const written: string[] = [];
  const log = new RunLog((t) => written.push(t), () => ["/ws"], () => at);
  return { log, text: () => written.join("") };
}

test("the header names the file relative to the workspace, language, backend and time", () => {
  const header = formatHeader(
    { runId: 7, uri: "file:///ws/src/hello%20world.py", language: "python", backend: "local" },
    ["/ws"],
    at,
  );
  assert.equal(header, "▶ [run 7] src/hello world.py · python · local sandbox · 03:04:05");
});

test("the header shows a selection's lines 1-based, excluding a last line selected up to column 0", () => {
  const range = { start: { line: 2, character: 0 }, end: { line: 5, character: 0 } };
  assert.match(formatHeader({ runId: 1, uri: "file:///ws/a.py", range }, ["/ws"], at), /a\.py:3-5 ·/);
  const one = { start: { line: 2, character: 4 }, end: { line: 2, character: 9 } };
  assert.match(formatHeader({ runId: 1, uri: "file:///ws/a.py", range: one }, ["/ws"], at), /a\.py:3 ·/);
});

test("files outside every workspace folder show their full path", () => {
  assert.equal(displayPath("file:///tmp/x.py", ["/ws"]), "/tmp/x.py");
  assert.equal(displayPath("untitled:Untitled-1", ["/ws"]), "untitled:Untitled-1");
});

test("the footer shows exit code, duration and truncation", () => {
  assert.equal(formatFooter({ runId: 3, exitCode: 0, durationMs: 1234 }), "■ [run 3] exit 0 · 1.23 s");
  assert.equal(
    formatFooter({ runId: 3, exitCode: 1, durationMs: 40, truncated: true }),
    "■ [run 3] exit 1 (failed) · 40 ms · output truncated (daytona.maxOutputBytes)",
  );
  assert.equal(formatFooter({ runId: 3, exitCode: 124, durationMs: null }), "■ [run 3] exit 124 (failed)");
});

test("the files a run changed are one line after its footer, the first ten by name", () => {
  const written: string[] = [];
  const log = new RunLog((text) => written.push(text));
  log.started({ runId: 4, uri: "file:///ws/a.py", backend: "local" });
  log.finished({ runId: 4, exitCode: 0, durationMs: 5, changedFiles: ["out.txt", "data/x.csv"] });
  assert.match(written.join(""), /■ \[run 4\] exit 0 · 5 ms\n {2}changed files: out\.txt, data\/x\.csv\n\n$/);
  const many = Array.from({ length: 12 }, (_, i) => `f${i}`);
  assert.equal(formatChangedFiles(many), "  changed files: f0, f1, f2, f3, f4, f5, f6, f7, f8, f9 and 2 more");
  log.started({ runId: 5, uri: "file:///ws/a.py", backend: "local" });
  log.finished({ runId: 5, exitCode: 0, durationMs: 5, changedFiles: [] });
  assert.doesNotMatch(written.slice(-1)[0], /changed files/);
});

test("durations read naturally", () => {
  assert.equal(formatDuration(999.6), "1000 ms");
  assert.equal(formatDuration(61_500), "1 min 2 s");
  assert.equal(formatDuration(undefined), undefined);
  assert.equal(formatDuration(Number.NaN), undefined);
});

test("backend labels", () => {
  assert.equal(backendLabel("daytona"), "Daytona sandbox");
  assert.equal(backendLabel("local"), "local sandbox");
  assert.equal(backendLabel(undefined), "sandbox");
});

test("chunks are written as they arrive between header and footer", () => {
  const { log, text } = makeLog();
  log.started({ runId: 1, uri: "file:///ws/a.py", language: "python", backend: "local" });
  log.output({ runId: 1, stream: "stdout", text: "hel" });
  log.output({ runId: 1, stream: "stdout", text: "lo\n" });
  log.output({ runId: 1, stream: "stderr", text: "oops" });
  log.finished({ runId: 1, exitCode: 1, durationMs: 5 });
  assert.equal(
    text(),
    "▶ [run 1] a.py · python · local sandbox · 03:04:05\nhello\noops\n■ [run 1] exit 1 (failed) · 5 ms\n\n",
  );
  assert.equal(log.activeRuns, 0);
});

test("overlapping runs get a marker when the writer changes", () => {
  const { log, text } = makeLog();
  log.started({ runId: 1, uri: "file:///ws/a.py" });
  log.started({ runId: 2, uri: "file:///ws/b.py" });
  log.output({ runId: 1, stream: "stdout", text: "from a" });
  log.output({ runId: 1, stream: "stdout", text: " still a\n" });
  log.output({ runId: 2, stream: "stdout", text: "from b\n" });
  const out = text();
  assert.match(out, /··· \[run 1\]\nfrom a still a\n··· \[run 2\]\nfrom b\n/);
  assert.equal(out.match(/··· \[run 1\]/g)?.length, 1);
});

test("a single run never gets markers", () => {
  const { log, text } = makeLog();
  log.started({ runId: 1, uri: "file:///ws/a.py" });
  log.output({ runId: 1, stream: "stdout", text: "x\n" });
  log.output({ runId: 1, stream: "stderr", text: "y\n" });
  assert.doesNotMatch(text(), /···/);
});

test("a result shows the run when no notifications came, and is ignored when they did", () => {
  const { log, text } = makeLog();
  const result = { runId: 9, exitCode: 0, output: "42\n", truncated: false, durationMs: 12, backend: "local" };
  log.result({ uri: "file:///ws/a.py", language: "python" }, result);
  assert.equal(text(), "▶ [run 9] a.py · python · local sandbox · 03:04:05\n42\n■ [run 9] exit 0 · 12 ms\n\n");

  const second = makeLog();
  second.log.started({ runId: 10, uri: "file:///ws/a.py" });
  second.log.output({ runId: 10, stream: "stdout", text: "42\n" });
  second.log.finished({ runId: 10, exitCode: 0, durationMs: 12 });
  const before = second.text();
  second.log.result({ uri: "file:///ws/a.py" }, { ...result, runId: 10 });
  assert.equal(second.text(), before);
});

test("string and number run ids are the same run", () => {
  const { log } = makeLog();
  log.started({ runId: "5", uri: "file:///ws/a.py" });
  assert.equal(log.has(5), true);
});

test("when the server stops, open runs get an 'interrupted' footer and run ids may be reused", () => {
  const { log, text } = makeLog();
  log.started({ runId: 1, uri: "file:///ws/a.py" });
  log.output({ runId: 1, stream: "stdout", text: "partial" });
  log.serverStopped();
  assert.match(text(), /partial\n■ \[run 1\] interrupted: the language server stopped\n\n$/);
  assert.equal(log.activeRuns, 0);
  assert.equal(log.has(1), false);
  const before = text();
  log.result({ uri: "file:///ws/b.py" }, { runId: 1, exitCode: 0, output: "new\n", truncated: false, durationMs: 1, backend: "local" });
  assert.match(text().slice(before.length), /▶ \[run 1\] b\.py[\s\S]*new\n■ \[run 1\] exit 0/);
});

test("a server stop with no open runs writes nothing", () => {
  const { log, text } = makeLog();
  log.serverStopped();
  assert.equal(text(), "");
});

test("a session run's value is shown before the footer, like Jupyter's Out", () => {
  const { log, text } = makeLog();
  log.started({ runId: 4, uri: "file:///ws/a.py", language: "python", backend: "local" });
  log.output({ runId: 4, stream: "stdout", text: "printed" });
  log.finished({ runId: 4, exitCode: 0, durationMs: 5, value: "42" });
  assert.match(text(), /printed\nOut: 42\n■ \[run 4\] exit 0 · 5 ms\n/);
  const plain = makeLog();
  plain.log.finished({ runId: 5, exitCode: 0, durationMs: 5 });
  assert.doesNotMatch(plain.text(), /Out:/);
});
