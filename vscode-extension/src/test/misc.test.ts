import { test } from "node:test";
import * as assert from "node:assert/strict";
import { RunCorrelator, sameUri } from "../logic/correlate";
import { redact } from "../logic/redact";
import { serverSettings } from "../logic/settings";
import { StatusModel } from "../logic/statusModel";
import { languageTable, runArguments, serverLanguage, useServerLanguages } from "../logic/wire";

test("run arguments for a whole file carry no range", () => {
  assert.deepEqual(runArguments("file:///a.py", "python"), { uri: "file:///a.py", language: "python" });
});

test("an empty selection runs the whole file", () => {
  const empty = { start: { line: 3, character: 2 }, end: { line: 3, character: 2 } };
  assert.deepEqual(runArguments("file:///a.py", "python", empty), { uri: "file:///a.py", language: "python" });
});

test("a backwards selection is sent start-first", () => {
  const backwards = { start: { line: 5, character: 1 }, end: { line: 2, character: 0 } };
  assert.deepEqual(runArguments("file:///a.sh", "shellscript", backwards).range, {
    start: { line: 2, character: 0 },
    end: { line: 5, character: 1 },
  });
});

test("VS Code language ids map to the server's names; unknown ones are left to the server", () => {
  assert.equal(serverLanguage("shellscript"), "bash");
  assert.equal(serverLanguage("typescript"), "typescript");
  assert.equal(serverLanguage("rust"), undefined);
  assert.equal(runArguments("file:///a.rs", "rust").language, undefined);
});

test("the server's language registry replaces the built-in table; an older server's absence keeps the fallback", () => {
  // as the server sends it in capabilities.experimental (core/languages.py wire())
  const experimental = {
    daytona: {
      languages: [
        { id: "bash", languageIds: ["bash", "sh", "shell", "shellscript"], extensions: [".sh"], cellMarker: "# %%" },
        { id: "javascript", languageIds: ["javascript", "js", "javascriptreact"], extensions: [".js"] },
      ],
    },
  };
  assert.deepEqual(languageTable(experimental).javascriptreact, "javascript");
  assert.equal(languageTable(experimental).python, undefined);
  assert.equal(languageTable(undefined).python, "python");
  assert.equal(languageTable({ other: 1 }).shellscript, "bash");
  try {
    useServerLanguages(experimental);
    assert.equal(serverLanguage("javascriptreact"), "javascript");
    assert.equal(serverLanguage("toString"), undefined);
  } finally {
    useServerLanguages(undefined);
  }
  assert.equal(serverLanguage("javascriptreact"), undefined);
});

test("redaction hides every occurrence of a secret and leaves other text alone", () => {
  assert.equal(redact("key=dtn_secret123 and again dtn_secret123", ["dtn_secret123"]), "key=*** and again ***");
  assert.equal(redact("nothing here", [undefined, ""]), "nothing here");
  assert.equal(redact("a b c", ["a"]), "a b c", "very short strings are not treated as secrets");
});

test("server settings drop the extension-only keys and methods", () => {
  const section = {
    backend: "local",
    local: { network: false },
    server: { command: ["x"] },
    trace: { server: "off" },
    get: () => 1,
  };
  assert.deepEqual(serverSettings(section), { backend: "local", local: { network: false } });
  assert.deepEqual(serverSettings(undefined), {});
});

test("the status shows backend and state, and counts concurrent runs", () => {
  const model = new StatusModel();
  model.setState("starting");
  assert.match(model.view().text, /Daytona: starting/);
  model.setState("ready");
  model.backend = "local";
  assert.equal(model.view().text, "$(vm) Daytona (local): ready");
  model.runStarted(1);
  model.runStarted("2");
  assert.match(model.view().text, /running 2$/);
  model.runFinished(2);
  assert.match(model.view().text, /running 1$/);
  model.runFinished(1);
  assert.match(model.view().text, /ready$/);
  model.backend = "daytona";
  assert.equal(model.view().text, "$(cloud) Daytona (Daytona): ready");
});

test("an error state carries its reason in the tooltip and clears running runs", () => {
  const model = new StatusModel();
  model.setState("ready");
  model.runStarted(1);
  model.setState("error", "the server could not start");
  const view = model.view();
  assert.equal(view.severity, "error");
  assert.match(view.tooltip, /could not start/);
  assert.equal(model.runningCount, 0);
  model.setState("untrusted");
  assert.equal(model.view().severity, "warning");
});

test("the correlator hands each run id to the oldest request for that file", async () => {
  const correlator = new RunCorrelator();
  const a1 = correlator.expect("file:///a.py");
  const b = correlator.expect("file:///b.py");
  const a2 = correlator.expect("file:///a.py");
  assert.equal(correlator.started("file:///b.py", 1), true);
  assert.equal(correlator.started("file:///a.py", 2), true);
  assert.equal(correlator.started("file:///a.py", 3), true);
  assert.equal(correlator.started("file:///a.py", 4), false, "a run nobody waits for");
  assert.deepEqual(await Promise.all([a1.runId, b.runId, a2.runId]), ["2", "1", "3"]);
});

test("a disposed expectation gets no run id", () => {
  const correlator = new RunCorrelator();
  const a = correlator.expect("file:///a.py");
  a.dispose();
  assert.equal(correlator.started("file:///a.py", 1), false);
});

test("URIs match across escaping differences", () => {
  assert.equal(sameUri("file:///a%20b.py", "file:///a b.py"), true);
  assert.equal(sameUri("file:///a.py", "file:///b.py"), false);
  assert.equal(sameUri("file:///%E0%A4%A", "file:///x"), false);
});

test("arguments typed as one line split as a shell would, without expanding anything", async () => {
  const { splitArgs, argsKey } = await import("../logic/args");
  assert.deepEqual(splitArgs(""), []);
  assert.deepEqual(splitArgs("  a   b "), ["a", "b"]);
  assert.deepEqual(splitArgs(`'two words' "q \\"x\\"" ''  $HOME a\\ b "ü ✓"`), ["two words", 'q "x"', "", "$HOME", "a b", "ü ✓"]);
  assert.deepEqual(splitArgs(`"it's" 'it'"'"'s'`), ["it's", "it's"]);
  assert.throws(() => splitArgs("'open"), /unterminated ' quote/);
  assert.throws(() => splitArgs('"open'), /unterminated " quote/);
  assert.notEqual(argsKey("file:///a.py"), argsKey("file:///b.py"));
});

test("the status item counts the sandbox's sessions and lists them in its tooltip", () => {
  const model = new StatusModel();
  model.setState("ready");
  model.backend = "local";
  model.sessions = [{ key: "file:///ws/cells.py", language: "python", state: "idle" }];
  assert.equal(model.view().text, "$(vm) Daytona (local): ready · 1 session");
  assert.match(model.view().tooltip, /Sessions: cells\.py \(python\): idle\./);
  model.sessions.push({ key: "file:///ws/b.js", language: "javascript", state: "busy" });
  assert.match(model.view().text, /ready · 2 sessions$/);
  model.setState("stopped");
  assert.deepEqual(model.sessions, []);
});
