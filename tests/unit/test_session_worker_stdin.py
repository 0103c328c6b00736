"""A session cell's stdin in the Node and bash workers (``node_worker.js`` and bash under ``driver.py``), run for real
as plain subprocesses and spoken to in the raw protocol (``protocol.py``): preset input, interactive input
(``input_request`` / ``input``), EOF at once with ``stdin_closed``, a stdin of its own per cell, interrupts while the
code waits, input for a cell that has ended."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from daytona_lsp.core.sessions.client import worker_argv

EVENT_TIMEOUT_S = 30.0
"""The longest wait for one event (a safety net: every wait here ends with the event it waits for)."""

NODE_ASK = (
    "const readline = require('readline');\n"
    "const rl = readline.createInterface({ input: process.stdin, output: process.stdout });\n"
    "rl.question('name? ', (name: TYPE) => { console.log('hello ' + name); rl.close(); });\n"
)
ASK = {
    "javascript": NODE_ASK.replace(": TYPE", ""),
    "typescript": NODE_ASK.replace("TYPE", "string"),
    "bash": "printf 'name? '\nread -r name\necho \"hello $name\"\n",
}
"""Prints ``name? ``, reads one line, greets it, reads no more."""
READ_ALL = {
    "javascript": (
        "const lines = [];\n"
        "for await (const line of require('readline').createInterface({ input: process.stdin })) lines.push(line);\n"
        "console.log('lines ' + lines.join(','));\n"
    ),
    "typescript": (
        "const lines: string[] = [];\n"
        "for await (const line of require('readline').createInterface({ input: process.stdin })) lines.push(line);\n"
        "console.log('lines ' + lines.join(','));\n"
    ),
    "bash": 'echo "lines $(cat | paste -sd,)"\n',
}
"""Reads every line until EOF and prints them, comma-separated."""
DEFINE = {"javascript": "var kept = 41;\n", "typescript": "var kept: number = 41;\n", "bash": "kept=41\n"}
SHOW = {
    "javascript": "console.log('kept ' + kept)\n",
    "typescript": "console.log('kept ' + kept)\n",
    "bash": "echo kept $kept\n",
}
LANGUAGES = ["javascript", "typescript", "bash"]


class RawWorker:
    """A worker started as ``client.py`` starts one (fds 3 and 4 pipes, a session of its own), its events read by a
    thread into a queue."""

    def __init__(self, language: str) -> None:
        cmd_r, cmd_w = os.pipe()
        evt_r, evt_w = os.pipe()
        self.proc = subprocess.Popen(
            [*worker_argv(language), str(cmd_r), str(evt_w)],  # type: ignore[arg-type]
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=(cmd_r, evt_w),
            start_new_session=True,
        )
        os.close(cmd_r)
        os.close(evt_w)
        self.commands = os.fdopen(cmd_w, "wb", buffering=0)
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, args=(os.fdopen(evt_r, "rb"),), daemon=True).start()
        assert self.next()["event"] == "ready"

    def _read(self, events: Any) -> None:
        with events:
            for line in events:
                self.events.put(json.loads(line))
        self.events.put(None)

    def next(self) -> dict[str, Any]:
        event = self.events.get(timeout=EVENT_TIMEOUT_S)
        assert event is not None, "the worker closed its event channel"
        return event

    def send(self, *commands: dict[str, Any]) -> None:
        """All in one write (the worker sees them together)."""
        self.commands.write(b"".join((json.dumps(c) + "\n").encode() for c in commands))

    def until(self, kind: str, cell: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The events up to the first ``kind`` event of ``cell``, and that event."""
        before = []
        while True:
            event = self.next()
            if event["event"] == kind and event.get("id") == cell:
                return before, event
            before.append(event)

    def run(self, cell: int, code: str, *, stdin: str = "", interactive: bool = False) -> tuple[str, dict[str, Any]]:
        """One cell to its end: its stdout and its result (it must not ask for input)."""
        self.send(execute(cell, code, stdin=stdin, interactive=interactive))
        before, result = self.until("result", cell)
        assert [e for e in before if e["event"] != "output"] == [], before
        return stdout(before), result

    def interrupt(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)

    def close(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.commands.close()


def execute(cell: int, code: str, *, stdin: str = "", interactive: bool = False) -> dict[str, Any]:
    return {
        "op": "execute",
        "id": cell,
        "code": code,
        "filename": "/tmp/cell",
        "line_offset": 0,
        "value_cap": 2000,
        "stdin": stdin,
        "interactive": interactive,
    }


def give(cell: int, text: str, eof: bool = False) -> dict[str, Any]:
    return {"op": "input", "id": cell, "text": text, "eof": eof}


def stdout(events: list[dict[str, Any]]) -> str:
    return "".join(e["text"] for e in events if e["event"] == "output" and e["stream"] == "stdout")


def start(language: str) -> RawWorker:
    if language != "bash" and shutil.which("node") is None:
        pytest.skip("needs Node.js")
    if language == "typescript" and not os.environ.get("DAYTONA_LSP_TSX"):
        pytest.skip("TypeScript sessions need esbuild: DAYTONA_LSP_TSX=$(bash scripts/setup-tsx)")
    return RawWorker(language)


@pytest.fixture(params=LANGUAGES)
def language(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def worker(language: str) -> Iterator[RawWorker]:
    w = start(language)
    yield w
    w.close()


@pytest.fixture
def node() -> Iterator[RawWorker]:
    w = start("javascript")
    yield w
    w.close()


@pytest.fixture
def bash() -> Iterator[RawWorker]:
    w = start("bash")
    yield w
    w.close()


def test_preset_stdin_is_read_and_no_more_is_asked_for(worker: RawWorker, language: str):
    out, result = worker.run(1, ASK[language], stdin="Ann\nBob\n")
    assert (result["status"], "hello Ann" in out, "Bob" in out) == ("ok", True, False), (out, result)
    assert "stdin_closed" not in result  # the code read one line of the preset and stopped


def test_interactive_input_is_asked_for_after_the_prompt_and_reaches_the_code(worker: RawWorker, language: str):
    worker.send(execute(1, ASK[language], interactive=True))
    before, _ = worker.until("input_request", 1)
    assert stdout(before).endswith("name? "), before
    worker.send(give(1, "Ann\n"))
    after, result = worker.until("result", 1)
    assert [e for e in after if e["event"] == "input_request"] == []
    assert "hello Ann" in stdout(after) and result["status"] == "ok" and "stdin_closed" not in result


def test_without_input_the_code_reads_eof_at_once_and_the_result_says_so(worker: RawWorker, language: str):
    worker.run(1, DEFINE[language])  # the first cell starts TypeScript's transpiler: not what is timed
    started = time.monotonic()
    out, result = worker.run(2, ASK[language])
    assert time.monotonic() - started < 2, "EOF at once"
    assert out.startswith("name? ") and "hello Ann" not in out, out
    assert result.get("stdin_closed") is True, result


def test_eof_in_one_cell_does_not_leak_into_the_next(worker: RawWorker, language: str):
    out, result = worker.run(1, READ_ALL[language], stdin="one\ntwo\n")
    assert ("lines one,two" in out, result.get("stdin_closed")) == (True, True), (out, result)
    out, result = worker.run(2, ASK[language], stdin="Zed\n")
    assert "hello Zed" in out and "stdin_closed" not in result, (out, result)


def test_input_left_unread_by_a_cell_is_not_read_by_the_next(worker: RawWorker, language: str):
    out, _ = worker.run(1, ASK[language], stdin="Ann\nleft over\n")
    assert "hello Ann" in out
    out, result = worker.run(2, READ_ALL[language])
    assert "left over" not in out and result.get("stdin_closed") is True, (out, result)


def test_an_interrupt_while_the_code_waits_for_input_ends_the_cell_and_keeps_the_state(
    worker: RawWorker, language: str
):
    assert worker.run(1, DEFINE[language])[1]["status"] == "ok"
    worker.send(execute(2, ASK[language], interactive=True))
    worker.until("input_request", 2)
    worker.interrupt()
    after, result = worker.until("result", 2)
    assert result["status"] == "interrupted" and "hello" not in stdout(after), (after, result)
    out, result = worker.run(3, SHOW[language])
    assert (out, result["status"]) == ("kept 41\n", "ok")


def test_input_for_a_cell_that_has_ended_is_ignored(worker: RawWorker, language: str):
    worker.run(1, ASK[language], stdin="Ann\n")
    worker.send(give(1, "late\n"), give(1, "", eof=True), give(99, "unknown\n"))
    out, result = worker.run(2, ASK[language], stdin="Zed\n")  # no event of the late input before its output
    assert "hello Zed" in out and "late" not in out and result["status"] == "ok", (out, result)


def test_input_sent_before_the_code_reads_is_kept_for_it(worker: RawWorker, language: str):
    worker.send(execute(1, ASK[language], interactive=True), give(1, "Early\n"))
    before, result = worker.until("result", 1)
    assert [e for e in before if e["event"] != "output"] == [], before  # no wait: the input was there
    assert "hello Early" in stdout(before) and result["status"] == "ok"


def test_input_and_eof_sent_before_the_code_reads_are_kept_for_it(worker: RawWorker, language: str):
    worker.send(execute(1, READ_ALL[language], interactive=True), give(1, "a\nb\n", eof=True))
    before, result = worker.until("result", 1)
    assert [e for e in before if e["event"] != "output"] == [], before
    assert "lines a,b" in stdout(before) and "stdin_closed" not in result, (before, result)


def test_input_sent_with_the_execute_is_kept_for_it_cell_after_cell(worker: RawWorker, language: str):
    """The Node worker runs under driver.py, which passes on the commands of one read in one write: apart, the code
    could read before its input came and ask for it (about one cell in six did on 2 cores; in a fresh worker, as in
    the two tests above, rarely)."""
    for cell in range(1, 61):
        eof = cell % 2 == 0
        code, text, greeting = (READ_ALL, "a\nb\n", "lines a,b") if eof else (ASK, "Early\n", "hello Early")
        worker.send(execute(cell, code[language], interactive=True), give(cell, text, eof=eof))
        before, result = worker.until("result", cell)
        assert [e for e in before if e["event"] != "output"] == [], (cell, before)
        assert greeting in stdout(before) and result["status"] == "ok", (cell, before, result)


def test_input_line_by_line_then_eof_reaches_code_reading_until_eof(worker: RawWorker, language: str):
    worker.send(execute(1, READ_ALL[language], interactive=True))
    worker.until("input_request", 1)
    worker.send(give(1, "a\n"))
    worker.until("input_request", 1)  # once again, after the line was taken
    worker.send(give(1, "b\nc"), give(1, "", eof=True))
    after, result = worker.until("result", 1)
    assert "lines a,b,c" in stdout(after) and "stdin_closed" not in result, (after, result)


def test_bash_cat_echoes_each_interactive_line_then_ends_at_eof(bash: RawWorker):
    bash.send(execute(1, "cat\necho done\n", interactive=True))
    for line in ("first\n", "second\n"):
        bash.until("input_request", 1)
        bash.send(give(1, line))
        assert bash.next() == {"event": "output", "stream": "stdout", "text": line}
    bash.until("input_request", 1)
    bash.send(give(1, "", eof=True))
    after, result = bash.until("result", 1)
    assert (stdout(after), result["status"], "stdin_closed" in result) == ("done\n", "ok", False)


def test_bash_child_processes_read_the_cells_stdin(bash: RawWorker):
    code = "read -r first\necho \"first $first\"\npython3 -c 'import sys; print(sys.stdin.read().upper())'\n"
    out, result = bash.run(1, code, stdin="one\ntwo\nthree\n")
    assert out == "first one\nTWO\nTHREE\n\n" and result.get("stdin_closed") is True, (out, result)


def test_bash_a_preset_larger_than_a_pipe_never_blocks_the_session(bash: RawWorker):
    big = "x" * 300_000 + "\n"
    out, result = bash.run(1, "wc -c\n", stdin=big)
    assert out.strip() == "300001" and result["status"] == "ok"
    out, result = bash.run(2, "echo unread\n", stdin=big)  # never read: the driver goes on regardless
    assert out == "unread\n" and result["status"] == "ok"
    assert bash.run(3, "wc -c\n", stdin="abc")[0].strip() == "3"


def test_node_stdin_data_listeners_and_read_file_sync_read_the_preset(node: RawWorker):
    code = "process.stdin.on('data', (d) => console.log('data ' + d)).on('end', () => console.log('end'));\n"
    out, result = node.run(1, code, stdin="xyz")
    assert out == "data xyz\nend\n" and result["status"] == "ok", (out, result)
    out, result = node.run(2, "require('fs').readFileSync(0, 'utf8').toUpperCase()\n", stdin="abc")
    assert (result.get("value"), "stdin_closed" in result) == ("'ABC'", False), result
    out, result = node.run(3, "require('fs').readFileSync('/dev/stdin').length\n")
    assert (result.get("value"), result.get("stdin_closed")) == ("0", True), result


def test_node_a_readline_left_open_keeps_the_cell_going_until_eof(node: RawWorker):
    code = (
        "const rl = require('readline').createInterface({ input: process.stdin });\n"
        "rl.on('line', (line) => console.log('got ' + line));\n"
        "rl.on('close', () => console.log('closed'));\n"
    )
    node.send(execute(1, code, interactive=True))
    node.until("input_request", 1)
    node.send(give(1, "one\n"))
    before, _ = node.until("input_request", 1)  # the cell goes on: a `node` process would, reading its stdin
    assert stdout(before) == "got one\n"
    node.send(give(1, "", eof=True))
    after, result = node.until("result", 1)
    assert (stdout(after), result["status"]) == ("closed\n", "ok")


def test_node_process_exit_in_an_input_handler_ends_the_cell(node: RawWorker):
    code = "require('readline').createInterface({ input: process.stdin }).on('line', (l) => process.exit(3));\n"
    node.send(execute(1, code, interactive=True))
    node.until("input_request", 1)
    node.send(give(1, "q\n"))
    _, result = node.until("result", 1)
    assert (result["status"], result.get("exit_code")) == ("exited", 3)
    assert node.run(2, "1 + 1\n")[1].get("value") == "2"
