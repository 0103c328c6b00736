"""Sessions on both backends, for real: the local sandbox (bubblewrap; the worker is a run of the agent's, with a
run's isolation) and Daytona (the unmodified SDK against tests/daytona_server; the worker is a session command).
A run with ``RunSpec.session`` runs in a persistent worker: definitions survive, values come back, interrupts keep
state, a cell that ignores them is killed and the next run starts fresh (and says so)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable

import pytest

from daytona_lsp.core import CodeEnvironment, RunSpec
from daytona_lsp.core.environment import STDIN_CLOSED_NOTE, TIMEOUT_EXIT_CODE, CodeLanguage, InputChannel
from daytona_lsp.core.local import LocalCodeEnvironment

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap needs Linux")
Make = Callable[..., CodeEnvironment]

DOC = "file:///work/notebook"
LANGS: list[CodeLanguage] = ["python", "bash", "javascript", "typescript"]
# per language: define, use (its output or value), a cell that never returns, one that ignores interrupts
DEFINE = {
    "python": "x = 41\ndef inc(v):\n    return v + 1\nprint('defined')",
    "bash": "x=41\ninc() { echo $(( $1 + 1 )); }\necho defined",
    "javascript": "let x = 41;\nfunction inc(v) { return v + 1; }\nconsole.log('defined');",
    "typescript": "let x: number = 41;\nfunction inc(v: number): number { return v + 1; }\nconsole.log('defined');",
}
USE = {"python": "inc(x)", "bash": "inc $x", "javascript": "inc(x)", "typescript": "inc(x)"}
FOREVER = {
    "python": "import time\nprint('started', flush=True)\nwhile True:\n    time.sleep(0.05)",
    "bash": "echo started; while :; do sleep 0.05; done",
    "javascript": "console.log('started'); while (true) {}",
    "typescript": "console.log('started'); while (true) {}",
}


NODE_LINES = (
    "const lines{T} = [];\n"
    "for await (const line of require('readline').createInterface({ input: process.stdin })) lines.push(line);\n"
)
# per language: read two lines, then the rest to EOF; print them as `got A B rest=C|D`
READ = {
    "python": (
        "import sys\na = input()\nb = input()\nrest = sys.stdin.read()\n"
        "print('got', a, b, 'rest=' + '|'.join(rest.splitlines()))"
    ),
    "bash": 'read -r a\nread -r b\necho "got $a $b rest=$(paste -sd"|")"',
    "javascript": NODE_LINES.replace("{T}", "")
    + "console.log('got', lines[0], lines[1], 'rest=' + lines.slice(2).join('|'));",
    "typescript": NODE_LINES.replace("{T}", ": string[]")
    + "console.log('got', lines[0], lines[1], 'rest=' + lines.slice(2).join('|'));",
}
NODE_ASK = (
    "const rl = require('readline').createInterface({ input: process.stdin, output: process.stdout });\n"
    "rl.question('Name? ', (name{T}) => { console.log('hello ' + name); rl.close(); });"
)
# per language: prompt `Name? ` (no newline), read one line, greet it
ASK = {
    "python": "name = input('Name? ')\nprint('hello ' + name)",
    "bash": 'printf "Name? "\nread -r name\necho "hello $name"',
    "javascript": NODE_ASK.replace("{T}", ""),
    "typescript": NODE_ASK.replace("{T}", ": string"),
}


def _node_strips_types() -> bool:
    node = shutil.which("node")
    if node is None:
        return False
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip().lstrip("v")
    return tuple(int(p) for p in version.split(".")[:2]) >= (22, 13)


def needs(language: CodeLanguage, env: CodeEnvironment | None = None) -> None:
    if language in ("javascript", "typescript") and shutil.which("node") is None:
        pytest.skip("needs Node.js")
    if language != "typescript" or _node_strips_types():
        return
    if not isinstance(env, LocalCodeEnvironment):  # the test server's sandboxes see no DAYTONA_* variable
        pytest.skip("TypeScript sessions in the Daytona test server need Node.js >= 22.13")
    if not os.environ.get("DAYTONA_LSP_TSX"):
        pytest.skip("TypeScript sessions on this Node need esbuild: DAYTONA_LSP_TSX=$(bash scripts/setup-tsx)")


@pytest.fixture(params=["local", "daytona"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Make]:
    """Builds environments of the backend under test (closed after the test)."""
    made: list[CodeEnvironment] = []
    if request.param == "daytona":
        from daytona_lsp.core.daytona import DaytonaCodeEnvironment

        server = request.getfixturevalue("daytona_server")

        def build(**kw: object) -> CodeEnvironment:
            return DaytonaCodeEnvironment(api_key=server.api_key, api_url=server.api_url, retry_backoff=0.01, **kw)  # type: ignore[arg-type]
    else:

        def build(**kw: object) -> CodeEnvironment:
            tsx = os.environ.get("DAYTONA_LSP_TSX")  # the tests' tsx as the TypeScript runner, when set
            return LocalCodeEnvironment(typescript_runner=tsx, **kw)  # type: ignore[arg-type]

    def tracked(**kw: object) -> CodeEnvironment:
        made.append(build(**kw))
        return made[-1]

    yield tracked
    for env in made:
        await env.aclose()


@pytest.fixture
def senv(make: Make) -> CodeEnvironment:
    return make(timeout=20)


def cell(code: str, language: CodeLanguage, key: str = DOC, **kw: object) -> RunSpec:
    return RunSpec(code=code, language=language, session=key, **kw)  # type: ignore[arg-type]


def shown(result: object) -> str:
    """What a use cell showed: its value (python, node) or its output (bash)."""
    value = getattr(result, "value", None)
    return value if value is not None else getattr(result, "output", "").strip()


async def run_until_output(env: CodeEnvironment, spec: RunSpec, then: object) -> object:
    """Run ``spec``; once it has printed (it runs), cancel it — never on a timer."""
    started = asyncio.Event()
    task = asyncio.ensure_future(env.execute(spec, lambda s, t: started.set()))
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    return await task


@pytest.mark.parametrize("language", LANGS)
async def test_definitions_of_one_run_are_used_by_the_next(senv: CodeEnvironment, language: CodeLanguage):
    needs(language, senv)
    first = await senv.execute(cell(DEFINE[language], language))
    assert (first.exit_code, first.output.strip()) == (0, "defined"), first.output
    second = await senv.execute(cell(USE[language], language))
    assert (second.exit_code, shown(second)) == (0, "42"), second.output
    assert {"key": DOC, "language": language, "state": "idle"} in senv.info()["sessions"]


async def test_a_run_without_session_is_fresh_and_sessions_are_per_key(senv: CodeEnvironment):
    await senv.execute(cell("x = 1", "python"))
    fresh = await senv.execute(RunSpec(code="print(x)", language="python"))
    assert fresh.exit_code == 1 and "NameError" in fresh.output
    other = await senv.execute(cell("x", "python", key="file:///other"))
    assert other.exit_code == 1 and "NameError" in other.output
    assert (await senv.execute(cell("x", "python"))).value == "1"


async def test_python_trailing_value_is_the_repr_and_output_streams(senv: CodeEnvironment):
    chunks: list[tuple[str, str]] = []
    result = await senv.execute(cell("print('a')\n{'k': [1, 2]}", "python"), lambda s, t: chunks.append((s, t)))
    assert (result.exit_code, result.output, result.value) == (0, "a\n", "{'k': [1, 2]}")
    assert "".join(t for _, t in chunks) == result.output
    assert (await senv.execute(cell("None", "python"))).value is None


async def test_python_error_names_the_cell_line(senv: CodeEnvironment):
    result = await senv.execute(cell("a = 1\nraise ValueError('boom')", "python", path="nb.py"))
    assert result.exit_code == 1
    assert f'File "{result.source_path}", line 2' in result.output and "ValueError: boom" in result.output


@pytest.mark.parametrize("language", LANGS)
async def test_restart_clears_the_session(senv: CodeEnvironment, language: CodeLanguage):
    needs(language, senv)
    await senv.execute(cell(DEFINE[language], language))
    assert await senv.restart_session(DOC) == 1
    assert "sessions" not in senv.info()
    again = await senv.execute(cell(USE[language], language))
    assert shown(again) != "42"


@pytest.mark.parametrize("language", LANGS)
async def test_interrupt_keeps_the_state(senv: CodeEnvironment, language: CodeLanguage):
    needs(language, senv)
    await senv.execute(cell(DEFINE[language], language))
    stopped = await run_until_output(senv, cell(FOREVER[language], language), None)
    assert stopped.exit_code == TIMEOUT_EXIT_CODE  # type: ignore[attr-defined]
    assert "the session keeps its state" in stopped.output  # type: ignore[attr-defined]
    after = await senv.execute(cell(USE[language], language))
    assert (after.exit_code, shown(after)) == (0, "42"), after.output


@pytest.mark.parametrize("language", LANGS)
async def test_a_cell_that_never_returns_times_out_and_the_next_run_works(make: Make, language: CodeLanguage):
    env = make(timeout=3)
    needs(language, env)
    await env.execute(cell(DEFINE[language], language))
    result = await env.execute(cell(FOREVER[language], language))
    assert result.exit_code == TIMEOUT_EXIT_CODE
    assert "started" in result.output and "Execution timed out after 3 s" in result.output
    after = await env.execute(cell(USE[language], language))
    assert (after.exit_code, shown(after)) == (0, "42"), after.output


async def test_code_that_ignores_the_interrupt_is_killed_and_the_next_run_is_fresh(make: Make):
    env = make(timeout=2)
    env._sessions.grace = 0.5
    await env.execute(cell("x = 1", "python"))
    stubborn = (
        "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('on', flush=True)\ntime.sleep(60)"
    )
    result = await env.execute(cell(stubborn, "python"))
    assert result.exit_code == TIMEOUT_EXIT_CODE
    assert "ignored the interrupt" in result.output and "the next run starts a fresh one" in result.output
    after = await env.execute(cell("print('ok')\nx", "python"))
    assert "this run started a fresh session" in after.output and "NameError" in after.output


async def test_javascript_cells_redeclaring_let_and_const_run_again(senv: CodeEnvironment):
    needs("javascript")
    code = "let n = 1;\nconst k = 2;\nclass C {}\nn + k"
    assert (await senv.execute(cell(code, "javascript"))).value == "3"
    again = await senv.execute(cell(code, "javascript"))
    assert (again.exit_code, again.value) == (0, "3"), again.output
    awaited = await senv.execute(cell("await new Promise((r) => setTimeout(() => r(n * 10), 10))", "javascript"))
    assert awaited.value == "10", awaited.output


async def test_bash_keeps_cwd_functions_and_exports(senv: CodeEnvironment):
    await senv.execute(cell("mkdir -p sub && cd sub && export V=ok && f() { echo f$1; }", "bash"))
    result = await senv.execute(cell('pwd; echo "$V"; f 1', "bash"))
    cwd, *rest = result.output.splitlines()
    assert cwd.endswith("/sub") and rest == ["ok", "f1"], result.output


@pytest.mark.parametrize(
    ("language", "define", "leave", "use"),
    [
        ("python", "x = 5", "exit(3)", "x"),
        ("javascript", "let x = 5;", "process.exit(3)", "x"),
    ],
)
async def test_exit_is_survived_with_the_state(
    senv: CodeEnvironment, language: CodeLanguage, define: str, leave: str, use: str
):
    needs(language, senv)
    await senv.execute(cell(define, language))
    exited = await senv.execute(cell(leave, language))
    assert exited.exit_code == 3 and "the session lives on" in exited.output, exited.output
    assert (await senv.execute(cell(use, language))).value == "5"


async def test_exit_in_bash_is_survived_by_a_fresh_shell_that_says_so(senv: CodeEnvironment):
    exited = await senv.execute(cell("X=1; exit 4", "bash"))
    assert exited.exit_code == 4 and "a fresh one was started" in exited.output, exited.output
    after = await senv.execute(cell('echo "ok${X}"', "bash"))
    assert (after.exit_code, after.output) == (0, "ok\n")


async def test_a_killed_interpreter_is_a_clear_result_and_the_next_run_is_fresh(senv: CodeEnvironment):
    await senv.execute(cell("x = 1", "python"))
    died = await senv.execute(cell("import os\nos._exit(3)", "python"))
    assert died.exit_code == 125 and "exited with status 3" in died.output and "fresh" in died.output
    killed = await senv.execute(cell("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "python"))
    assert "killed by SIGKILL" in killed.output
    after = await senv.execute(cell("x", "python"))
    assert "this run started a fresh session" in after.output and "NameError" in after.output
    assert (await senv.execute(cell("x = 2\nx", "python"))).value == "2"


async def test_flooding_output_is_capped(make: Make):
    env = make(timeout=20, max_output_bytes=10_000)
    result = await env.execute(cell("for i in range(200000):\n    print('line', i)\n'done'", "python"))
    assert result.exit_code == 0 and result.truncated and result.value == "'done'"
    assert len(result.output) < 12_000 and result.output.rstrip().endswith("line 199999")


async def test_a_local_session_is_isolated_as_a_run_is(senv: CodeEnvironment):
    if not isinstance(senv, LocalCodeEnvironment):
        pytest.skip("the local sandbox's isolation")
    code = (
        "import os\n"
        "caps = [l for l in open('/proc/self/status') if l.startswith(('CapEff', 'CapBnd', 'NoNewPrivs'))]\n"
        "pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "escapes = [libc.unshare(0x10000000), libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)]  # NEWUSER, a mount\n"
        "(os.getuid(), caps, pids, escapes)"
    )
    result = await senv.execute(cell(code, "python"))
    uid, caps, pids, escapes = eval(result.value or "")  # noqa: S307 - the repr of a tuple of ints and strings
    assert escapes == [-1, -1]  # no namespace, no mount: the run's seccomp filter and no capabilities
    assert uid == 1000
    assert sorted(c.split()[1] for c in caps) == ["0000000000000000", "0000000000000000", "1"]
    assert pids == [1, 2]  # its own pid namespace: the run's pid 1 and the worker, nothing of the agent's


async def test_close_session_and_reset_end_the_sessions(senv: CodeEnvironment):
    await senv.execute(cell("x = 1", "python"))
    await senv.execute(cell("x = 1", "python", key="file:///b"))
    await senv.close_session(DOC)
    assert [s["key"] for s in senv.info()["sessions"]] == ["file:///b"]
    await senv.reset()
    assert "sessions" not in senv.info()
    assert "NameError" in (await senv.execute(cell("x", "python", key="file:///b"))).output


async def test_restart_during_a_cell_ends_it_with_a_clear_result(senv: CodeEnvironment):
    started = asyncio.Event()
    task = asyncio.ensure_future(senv.execute(cell(FOREVER["python"], "python"), lambda s, t: started.set()))
    await asyncio.wait_for(started.wait(), 30)
    assert senv.info()["sessions"] == [{"key": DOC, "language": "python", "state": "busy"}]
    assert await senv.restart_session() == 1
    result = await task
    assert result.exit_code == 125 and "it was restarted" in result.output


async def test_cells_of_one_session_run_one_after_another(senv: CodeEnvironment):
    running = asyncio.Event()
    code = "import time\nprint('go', flush=True)\ntime.sleep(0.5)\nx = 'first'"
    first = asyncio.ensure_future(senv.execute(cell(code, "python"), lambda s, t: running.set()))
    await asyncio.wait_for(running.wait(), 60)
    assert senv.info()["sessions"] == [{"key": DOC, "language": "python", "state": "busy"}]
    assert (await senv.execute(cell("x", "python"))).value == "'first'"  # it waited for the cell before it
    assert (await first).exit_code == 0


async def test_sessions_work_without_isolation_too():
    """isolation="none" (the explicit opt-out): the worker runs on the host, interrupts reach its process group."""
    async with LocalCodeEnvironment(isolation="none", timeout=2) as env:
        await env.execute(cell("x = 41", "python"))
        stopped = await env.execute(cell(FOREVER["python"], "python"))
        assert "the session keeps its state" in stopped.output, stopped.output
        assert (await env.execute(cell("x + 1", "python"))).value == "42"
        await env.execute(cell("n=1", "bash"))
        assert (await env.execute(cell("echo $((n + 1))", "bash"))).output == "2\n"
    assert oct(os.stat(os.devnull).st_mode & 0o777) == "0o666"


async def test_daytona_workers_removed_from_the_sandbox_are_uploaded_again(make: Make):
    env = make(timeout=20)
    if isinstance(env, LocalCodeEnvironment):
        pytest.skip("Daytona uploads its workers")
    from daytona_lsp.core.daytona.sessions import WORKER_DIR

    await env.execute(cell("x = 1", "python"))
    await env.execute(RunSpec(code=f"rm -rf {WORKER_DIR}", language="bash"))
    await env.restart_session()
    failed = await env.execute(cell("x = 2", "python"))
    assert failed.exit_code == 125 and "Could not start the python session" in failed.output
    assert (await env.execute(cell("x = 3\nx", "python"))).value == "3"


# ---- a cell's stdin (preset, interactive, none), as a fresh run's -------------------------------------------------


def answering(*answers: str | None) -> tuple[InputChannel, list[str]]:
    """An input channel answering each wait with the next of ``answers`` (``None``: EOF), and the prompts it saw."""
    prompts: list[str] = []
    left = list(answers)

    async def answer(prompt: str) -> None:
        prompts.append(prompt)
        text = left.pop(0) if left else None
        await (channel.close() if text is None else channel.send(text))

    channel = InputChannel(answer)
    return channel, prompts


@pytest.mark.parametrize("language", LANGS)
async def test_a_cell_reads_its_preset_stdin(senv: CodeEnvironment, language: CodeLanguage):
    needs(language, senv)
    result = await senv.execute(cell(READ[language], language, stdin="Ann\nBob\nc\nd\n"))
    assert (result.exit_code, result.output) == (0, "got Ann Bob rest=c|d\n"), result.output


@pytest.mark.parametrize("language", LANGS)
async def test_a_cell_asks_for_input_with_its_prompt_and_shows_the_answer(
    senv: CodeEnvironment, language: CodeLanguage
):
    needs(language, senv)
    channel, prompts = answering("Ada")
    result = await senv.execute(cell(ASK[language], language, input=channel))
    assert result.exit_code == 0, result.output
    assert prompts == ["Name? "]
    assert result.output == "Name? Ada\nhello Ada\n"  # the answer echoed after its prompt
    assert STDIN_CLOSED_NOTE not in result.output


@pytest.mark.parametrize("language", LANGS)
async def test_a_cell_without_input_reads_eof_at_once_and_says_so(senv: CodeEnvironment, language: CodeLanguage):
    needs(language, senv)
    await senv.execute(cell(DEFINE[language], language))  # the worker is up: what is timed is the cell
    start = asyncio.get_running_loop().time()
    result = await senv.execute(cell(READ[language], language))
    assert asyncio.get_running_loop().time() - start < 2
    assert result.output.rstrip().endswith(STDIN_CLOSED_NOTE), result.output
    no_read = await senv.execute(cell(USE[language], language))
    assert STDIN_CLOSED_NOTE not in no_read.output  # only a cell that read gets the note


@pytest.mark.parametrize("language", LANGS)
async def test_eof_in_one_cell_does_not_reach_the_next(senv: CodeEnvironment, language: CodeLanguage):
    needs(language, senv)
    channel, _ = answering(None)  # EOF at the first wait
    first = await senv.execute(cell(READ[language], language, input=channel))
    assert STDIN_CLOSED_NOTE not in first.output  # EOF was the user's: no note
    second = await senv.execute(cell(READ[language], language, stdin="x\ny\nz\n"))
    assert (second.exit_code, second.output) == (0, "got x y rest=z\n"), second.output


@pytest.mark.parametrize("language", LANGS)
async def test_the_state_survives_a_cell_that_waited_for_input(senv: CodeEnvironment, language: CodeLanguage):
    needs(language, senv)
    await senv.execute(cell(DEFINE[language], language))
    channel, prompts = answering("Ada")
    asked = await senv.execute(cell(ASK[language], language, input=channel))
    assert (asked.exit_code, prompts) == (0, ["Name? "]), asked.output
    after = await senv.execute(cell(USE[language], language))
    assert (after.exit_code, shown(after)) == (0, "42"), after.output


@pytest.mark.parametrize("language", LANGS)
async def test_a_timeout_while_waiting_for_input_interrupts_and_keeps_the_state(make: Make, language: CodeLanguage):
    env = make(timeout=2)
    needs(language, env)
    await env.execute(cell(DEFINE[language], language))
    asked = asyncio.Event()
    result = await env.execute(cell(ASK[language], language, input=InputChannel(lambda prompt: asked.set())))
    assert asked.is_set() and result.exit_code == TIMEOUT_EXIT_CODE, result.output
    assert "the code was interrupted; the session keeps its state" in result.output
    after = await env.execute(cell(USE[language], language))
    assert (after.exit_code, shown(after)) == (0, "42"), after.output


async def test_input_sent_before_the_cell_reads_is_kept_for_it(senv: CodeEnvironment):
    channel, prompts = answering()
    await channel.send("early")
    result = await senv.execute(cell("import sys\nsys.stdin.readline()", "python", input=channel))
    assert (result.value, prompts) == ("'early\\n'", []), result.output


# ---- a cell's arguments, as a fresh run's argv -----------------------------------------------------------------

ARGV = {
    "python": "import json, sys\nprint(json.dumps(sys.argv[1:]))",
    "bash": 'printf "%s\\n" "$#"; for a in "$@"; do printf "[%s]" "$a"; done; echo',
    "javascript": "console.log(JSON.stringify(process.argv.slice(2)))",
    "typescript": "console.log(JSON.stringify(process.argv.slice(2)))",
}
AWKWARD = ("a b", "", "it's", 'say "hi"', "$HOME", "é ☃", "line\nbreak", "--flag")


def _shown_args(language: CodeLanguage, output: str) -> list[str]:
    if language != "bash":
        return json.loads(output)
    count, _, rest = output.partition("\n")
    args = rest[1:-2].split("][") if rest.strip() else []
    assert int(count) == len(args), output
    return args


@pytest.mark.parametrize("language", LANGS)
async def test_a_cell_gets_its_arguments_exactly_and_the_next_cell_its_own(
    senv: CodeEnvironment, language: CodeLanguage
):
    needs(language, senv)
    first = await senv.execute(cell(ARGV[language], language, args=AWKWARD))
    assert first.exit_code == 0, first.output
    assert _shown_args(language, first.output) == list(AWKWARD)
    second = await senv.execute(cell(ARGV[language], language))  # none: none (not the previous cell's)
    assert _shown_args(language, second.output) == [], second.output
