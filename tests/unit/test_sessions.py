"""Session workers, run for real as plain subprocesses (no sandbox): state survives between executes, values come
back, interrupts keep state, exits are survived, a killed worker is reported."""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import Iterator

import pytest

from daytona_lsp.core.sessions.client import SessionWorker, WorkerDied
from daytona_lsp.core.sessions.protocol import input_command


class Recorder:
    def __init__(self) -> None:
        self.chunks: list[tuple[str, str]] = []
        self.started = threading.Event()

    def __call__(self, stream: str, text: str) -> None:
        self.chunks.append((stream, text))
        self.started.set()

    def text(self, stream: str = "stdout") -> str:
        return "".join(t for s, t in self.chunks if s == stream)


def interrupt_when_output(worker: SessionWorker, recorder: Recorder) -> threading.Thread:
    """Interrupts once the cell has shown it runs (its first output), never on a timer."""

    def wait_then_interrupt() -> None:
        if recorder.started.wait(30):
            worker.interrupt()

    thread = threading.Thread(target=wait_then_interrupt, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def python() -> Iterator[SessionWorker]:
    with SessionWorker("python") as worker:
        yield worker


needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")


@pytest.fixture(params=["javascript", "typescript"])
def node(request: pytest.FixtureRequest) -> Iterator[SessionWorker]:
    if shutil.which("node") is None:
        pytest.skip("needs Node.js")
    if request.param == "typescript" and not os.environ.get("DAYTONA_LSP_TSX"):
        pytest.skip("TypeScript sessions need esbuild: DAYTONA_LSP_TSX=$(bash scripts/setup-tsx)")
    with SessionWorker(request.param) as worker:
        yield worker


@pytest.fixture
def bash() -> Iterator[SessionWorker]:
    with SessionWorker("bash") as worker:
        yield worker


# ---- Python ------------------------------------------------------------------------------------------------------


def test_python_definitions_survive_and_trailing_expression_is_the_value(python: SessionWorker) -> None:
    out = Recorder()
    first = python.execute("import math\ndef area(r):\n    return math.pi * r * r\nx = 2\nprint('defined')", on_output=out)
    assert (first.status, first.value, out.text()) == ("ok", None, "defined\n")
    second = python.execute("round(area(x), 2)")
    assert (second.status, second.value) == ("ok", "12.57")
    assert python.execute("_ * 2").value == "25.14"  # `_` is the last value, as in Jupyter


def test_python_value_is_capped(python: SessionWorker) -> None:
    result = python.execute("'a' * 10000", value_cap=50)
    assert result.value is not None and len(result.value) == 50 and result.value.endswith("…")


def test_python_output_streams_in_order_before_the_result_also_from_child_processes(python: SessionWorker) -> None:
    out = Recorder()
    code = "import os, sys\nprint('one')\nos.system('echo two; echo err >&2')\nsys.stderr.write('three\\n')"
    assert python.execute(code, on_output=out).status == "ok"
    assert out.text() == "one\ntwo\n"
    assert out.text("stderr") == "err\nthree\n"


def test_python_traceback_names_the_buffer_lines(python: SessionWorker) -> None:
    python.execute("def boom():\n    raise ValueError('bad')", filename="/ws/cells.py", line_offset=20)
    result = python.execute("x = 1\nboom()", filename="/ws/cells.py", line_offset=40)
    assert result.status == "error" and result.error is not None
    assert 'File "/ws/cells.py", line 42, in <module>' in result.error
    assert 'File "/ws/cells.py", line 22, in boom' in result.error
    assert "raise ValueError('bad')" in result.error  # the buffer's text, not the file on disk
    assert "python_worker" not in result.error
    syntax = python.execute("x = (", filename="/ws/cells.py", line_offset=7)
    assert syntax.status == "error" and syntax.error is not None and "line 8" in syntax.error


def test_python_exit_is_a_result_and_the_worker_lives_on(python: SessionWorker) -> None:
    python.execute("kept = 'yes'")
    assert (python.execute("import sys\nsys.exit(3)").status, python.execute("exit(3)").exit_code) == ("exited", 3)
    assert python.execute("raise SystemExit('bye')").error == "bye"
    assert python.execute("kept").value == "'yes'"


def test_python_interrupt_stops_the_cell_and_keeps_state(python: SessionWorker) -> None:
    python.execute("before = 41")
    out = Recorder()
    interrupt_when_output(python, out)
    result = python.execute("import time\nprint('running', flush=True)\nwhile True:\n    time.sleep(0.01)", on_output=out)
    assert result.status == "interrupted" and "KeyboardInterrupt" in (result.error or "")
    assert python.execute("before + 1").value == "42"


def test_python_cells_read_their_own_input_and_fd_0_stays_the_workers() -> None:
    r, w = os.pipe()
    os.write(w, b"typed\n")
    os.close(w)
    with SessionWorker("python", stdin=r) as worker:
        os.close(r)
        assert worker.execute("input()", stdin="preset\n").value == "'preset'"
        assert worker.execute("import os\nos.read(0, 100)").value == "b'typed\\n'"
        result = worker.execute("input()")
        assert (result.status, result.stdin_closed) == ("error", True) and "EOFError" in (result.error or "")


def test_python_cell_input_behaves_as_a_pipe(python: SessionWorker) -> None:
    code = "import sys\n(input('Name? '), sys.stdin.readline(), [line for line in sys.stdin])"
    result = python.execute(code, stdin="Ada\nline 2\nline 3\nlast")
    assert result.value == "('Ada', 'line 2\\n', ['line 3\\n', 'last'])"
    assert python.execute("sys.stdin.buffer.read()", stdin="bytes").value == "b'bytes'"
    assert "UnsupportedOperation" in (python.execute("sys.stdin.fileno()").error or "")


def test_python_cell_takes_a_large_preset_whole(python: SessionWorker) -> None:
    preset = "line of input\n" * 600_000  # 8.4 MB: one command line much longer than a pipe holds
    code = "import sys\ndata = sys.stdin.read()\n(len(data), data == 'line of input\\n' * 600_000)"
    assert python.execute(code, stdin=preset).value == f"({len(preset)}, True)"


def test_python_asks_for_input_after_its_prompt_and_each_wait_once(python: SessionWorker) -> None:
    prompts: list[str] = []

    def answer(prompt: str) -> str | None:
        prompts.append(prompt)
        return None if len(prompts) == 3 else f"answer {len(prompts)}\n"

    code = "import sys\na = input('Name? ')\nprint('got', a)\nb = input('Age? ')\n(a, b, sys.stdin.read())"
    result = python.execute(code, stdin="", answer=answer)
    assert (result.value, result.stdin_closed) == ("('answer 1', 'answer 2', '')", False)
    assert prompts == ["Name? ", "Age? ", "Age? "]  # (this client does not echo the answers)


def test_python_ignores_input_for_a_cell_that_is_not_running(python: SessionWorker) -> None:
    python.execute("1")
    python._send(input_command(python._next_id, "late\n"))  # for the cell that has ended: dropped, no event
    python._send(input_command(99, "stray\n"))  # for no cell at all
    asked: list[str] = []
    result = python.execute("input('> ')", answer=lambda prompt: asked.append(prompt) or "mine\n")
    assert (result.value, asked) == ("'mine'", ["> "])


def test_python_interrupt_while_waiting_for_input_keeps_the_state(python: SessionWorker) -> None:
    python.execute("kept = 'yes'")
    asked: list[str] = []

    def interrupt(prompt: str) -> str:
        if not asked:
            python.interrupt()
        asked.append(prompt)
        return ""  # more input, none of it a line: the code goes on waiting until the interrupt comes

    result = python.execute("input('wait: ')", answer=interrupt)
    assert result.status == "interrupted" and "KeyboardInterrupt" in (result.error or "")
    assert python.execute("kept").value == "'yes'"
    assert python.execute("input()", stdin="fresh\n").value == "'fresh'"  # the next cell has its own stdin


def test_killed_worker_is_reported_clearly(python: SessionWorker) -> None:
    python.execute("x = 1")
    os.kill(python.pid, signal.SIGKILL)
    with pytest.raises(WorkerDied, match="python session worker was killed by SIGKILL; its state is lost"):
        python.execute("x")
    with pytest.raises(WorkerDied):  # and keeps saying so
        python.execute("x")
    assert not python.alive


def test_os_exit_in_a_cell_is_reported_as_the_worker_dying(python: SessionWorker) -> None:
    with pytest.raises(WorkerDied, match="exited with status 7"):
        python.execute("import os\nos._exit(7)")


# ---- JavaScript / TypeScript ---------------------------------------------------------------------------------------


def test_node_lexical_declarations_survive_and_can_be_redeclared(node: SessionWorker) -> None:
    cell = "let x = 40\nconst y = 2\nclass Box { constructor(v) { this.v = v } }\nfunction twice(n) { return 2 * n }"
    assert node.execute(cell).status == "ok"
    assert node.execute("new Box(x + y).v").value == "42"
    again = node.execute(cell)  # re-running a cell that declares them does not fail
    assert again.status == "ok", again.error
    assert node.execute("twice(x)").value == "80"


def test_node_top_level_await_and_its_declarations(node: SessionWorker) -> None:
    result = node.execute("const r = await new Promise((ok) => setTimeout(() => ok(21), 10))\nr * 2")
    assert (result.status, result.value) == ("ok", "42"), result.error
    assert node.execute("let r2 = await Promise.resolve(r + 1)\nr2").value == "22"
    assert node.execute("r + r2").value == "43"


def test_node_output_precedes_the_result_also_from_child_processes(node: SessionWorker) -> None:
    out = Recorder()
    code = "console.log('a'); console.error('e'); require('child_process').execSync('echo b', {stdio: 'inherit'})"
    assert node.execute(code, on_output=out).status == "ok"
    assert (out.text(), out.text("stderr")) == ("a\nb\n", "e\n")


def test_node_errors_name_the_buffer_lines(node: SessionWorker) -> None:
    result = node.execute("\n\nnull.boom", filename="/ws/cells.js", line_offset=10)
    assert result.status == "error" and "/ws/cells.js:13" in (result.error or "")


@pytest.mark.parametrize(
    "cell", ["console.log('go'); while (true) {}", "console.log('go'); await new Promise(() => {})"], ids=["busy", "awaiting"]
)
def test_node_interrupt_stops_the_cell_and_keeps_state(node: SessionWorker, cell: str) -> None:
    node.execute("let kept = 41")
    out = Recorder()
    interrupt_when_output(node, out)
    assert node.execute(cell, on_output=out).status == "interrupted"
    assert node.execute("kept + 1").value == "42"


def test_node_process_exit_is_a_result_and_state_survives(node: SessionWorker) -> None:
    node.execute("var kept = 'yes'")
    result = node.execute("process.exit(5)")
    assert (result.status, result.exit_code) == ("exited", 5)
    assert node.execute("kept").value == "'yes'"


def test_typescript_is_transpiled_per_cell() -> None:
    if shutil.which("node") is None or not os.environ.get("DAYTONA_LSP_TSX"):
        pytest.skip("TypeScript sessions need Node.js and esbuild (DAYTONA_LSP_TSX)")
    with SessionWorker("typescript") as ts:
        assert ts.execute("interface P { n: number }\nconst p: P = { n: 41 }").status == "ok"
        assert ts.execute("(p.n as number) + 1").value == "42"


# ---- bash ----------------------------------------------------------------------------------------------------------


def test_bash_variables_functions_cwd_and_env_survive(bash: SessionWorker, tmp_path) -> None:
    assert bash.execute(f"x=5; cd {tmp_path}; greet() {{ echo hi $1; }}; export SHARED=7; declare -i n=2").status == "ok"
    out = Recorder()
    result = bash.execute("greet $x; pwd; sh -c 'echo $SHARED'; echo $((n * 2))", on_output=out)
    assert (result.status, result.exit_code) == ("ok", 0)
    assert out.text() == f"hi 5\n{tmp_path}\n7\n4\n"


def test_bash_exit_status_of_each_execute(bash: SessionWorker) -> None:
    out = Recorder()
    result = bash.execute("echo err >&2; false", on_output=out)
    assert (result.status, result.exit_code, out.text("stderr")) == ("error", 1, "err\n")
    assert bash.execute("true").exit_code == 0


def test_bash_interrupt_stops_the_cell_and_the_shell_lives_on(bash: SessionWorker) -> None:
    bash.execute("kept=41")
    out = Recorder()
    interrupt_when_output(bash, out)
    result = bash.execute("echo go; while true; do sleep 1; done; echo after", on_output=out)
    assert (result.status, result.exit_code) == ("interrupted", 130)
    assert "after" not in out.text()
    out = Recorder()
    bash.execute("echo $((kept + 1))", on_output=out)
    assert out.text() == "42\n"


def test_bash_exit_starts_a_fresh_shell_and_says_so(bash: SessionWorker) -> None:
    bash.execute("gone=1")
    result = bash.execute("exit 4")
    assert (result.status, result.exit_code) == ("exited", 4)
    assert "fresh one was started" in (result.error or "")
    out = Recorder()
    assert bash.execute("echo [${gone:-none}]", on_output=out).status == "ok"
    assert out.text() == "[none]\n"
