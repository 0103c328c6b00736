"""What a Daytona run takes and gives back, through the real SDK against the Daytona test server: a RunSpec's
arguments, stdin, directory and environment; error results and notes that reach ``on_output``; a run that waits for
its sandbox at most its timeout; cancellation that comes back as a result."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
from tests.daytona_server import DaytonaTestServer
from tests.daytona_server.plugin import DaytonaEnvFactory

from daytona_lsp.core import RunSpec
from daytona_lsp.core.daytona import DaytonaCodeEnvironment
from daytona_lsp.core.environment import STDIN_CLOSED_NOTE, CodeLanguage
from daytona_lsp.core.errors import find_errors

Chunks = list[tuple[str, str]]
AWKWARD_ARGS = ("a b", "", 'it\'s "quoted"', "ünïcødé ✓", "$HOME `id` $(id)", "--flag=1", "new\nline", "\\", "*")


async def execute(env: DaytonaCodeEnvironment, spec: RunSpec, *, stream: bool = True) -> tuple[Any, Chunks]:
    chunks: Chunks = []
    on_output = (lambda s, t: chunks.append((s, t))) if stream else None
    result = await asyncio.wait_for(env.execute(spec, on_output), 60)
    return result, chunks


def streamed(chunks: Chunks) -> str:
    return "".join(text for _, text in chunks)


# ---------------------------------------------------------------- RunSpec
ARGV_PROGRAMS: dict[CodeLanguage, str] = {
    "python": "import json, sys\nprint(json.dumps(sys.argv[1:]))",
    "javascript": "console.log(JSON.stringify(process.argv.slice(2)))",
    "bash": 'printf \'%s\\0\' "$@" | python3 -c "import json,sys; print(json.dumps(sys.stdin.read().split(chr(0))[:-1]))"',
}


@pytest.mark.parametrize("stream", [True, False], ids=["streaming", "exec"])
@pytest.mark.parametrize("language", list(ARGV_PROGRAMS))
async def test_arguments_reach_the_program_exactly(
    make_daytona_env: DaytonaEnvFactory, language: CodeLanguage, stream: bool
) -> None:
    env = make_daytona_env()
    result, _ = await execute(env, RunSpec(ARGV_PROGRAMS[language], language, args=AWKWARD_ARGS), stream=stream)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == list(AWKWARD_ARGS)


@pytest.mark.parametrize(
    ("language", "code", "line"),
    [("python", "import sys\n\nprint(sys.argv[1])\n1 / 0\n", 3), ("javascript", "const a = 1;\n\nnull.boom;\n", 2)],
)
async def test_errors_of_a_run_with_arguments_map_to_the_codes_lines(
    make_daytona_env: DaytonaEnvFactory, language: CodeLanguage, code: str, line: int
) -> None:
    env = make_daytona_env()
    result, _ = await execute(env, RunSpec(code, language, args=("arg",)))
    assert result.exit_code == 1 and result.source_path and result.source_path in result.output
    errors = find_errors(
        result.output, language, source_path=result.source_path, line_offset=result.line_offset, code=code
    )
    assert [e.line for e in errors] == [line]


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("python", "print(input() + '|' + input())\nimport sys\nprint(repr(sys.stdin.read()))"),
        ("javascript", "const t = require('fs').readFileSync(0, 'utf8').split('\\n'); console.log(t[0] + '|' + t[1])"),
        ("bash", 'read a; read b; echo "$a|$b"'),
    ],
)
async def test_preset_stdin_is_the_programs_input(
    make_daytona_env: DaytonaEnvFactory, language: CodeLanguage, code: str
) -> None:
    env = make_daytona_env()
    result, chunks = await execute(env, RunSpec(code, language, stdin="first line\nsecond ✓\n"))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("first line|second ✓\n")
    assert streamed(chunks) == result.output


@pytest.mark.parametrize(
    ("language", "code", "expected"),
    [
        ("python", "try:\n    input()\nexcept EOFError:\n    print('EOF')", "EOF\n"),
        ("bash", "read a || echo EOF", "EOF\n"),
        ("javascript", "console.log(require('fs').readFileSync(0, 'utf8') === '' ? 'EOF' : 'data')", "EOF\n"),
    ],
)
@pytest.mark.parametrize("stream", [True, False], ids=["streaming", "exec"])
async def test_without_stdin_a_program_reads_eof_at_once(
    make_daytona_env: DaytonaEnvFactory, language: CodeLanguage, code: str, expected: str, stream: bool
) -> None:
    env = make_daytona_env()
    result, _ = await execute(env, RunSpec(code, language, args=("x",)), stream=stream)
    assert (result.exit_code, result.output) == (0, f"{expected}{STDIN_CLOSED_NOTE}\n")
    assert result.duration_ms is not None and result.duration_ms < 15_000  # EOF, not the run's 20 s timeout


async def test_large_stdin_and_arguments_are_uploaded_not_inlined(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    data = "ü" * 150_000
    code = "import sys\ndata = sys.stdin.read()\nprint(len(data), set(data), sys.argv[1:])"
    result, _ = await execute(env, RunSpec(code, "python", stdin=data, args=("a b",)))
    assert (result.exit_code, result.output) == (0, "150000 {'ü'} ['a b']\n")
    assert daytona_server.count("POST /toolbox/files/bulk-upload") == 1


async def test_working_directory_and_environment_of_a_run(make_daytona_env: DaytonaEnvFactory) -> None:
    env = make_daytona_env()
    await execute(env, RunSpec("mkdir -p 'sub dir/inner'", "bash"))
    code = "import os\nprint(os.getcwd().endswith('/sub dir/inner'), repr(os.environ['GREETING']), repr(os.environ['EMPTY']))"
    spec = RunSpec(code, "python", cwd="sub dir/inner", env={"GREETING": "hi 'there' $USER", "EMPTY": ""})
    result, _ = await execute(env, spec)
    assert (result.exit_code, result.output) == (0, "True \"hi 'there' $USER\" ''\n")
    missing, chunks = await execute(env, RunSpec("print(1)", "python", cwd="no/such/dir"))
    assert missing.exit_code == 2 and "no/such/dir" in missing.output
    assert streamed(chunks) == missing.output


async def test_a_spec_the_sandbox_cannot_take_is_refused_before_anything_is_created(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    bad_name, chunks = await execute(env, RunSpec("print(1)", "python", env={"NOT-A-NAME": "x"}))
    assert bad_name.exit_code == 2 and "'NOT-A-NAME'" in bad_name.output
    assert chunks == [("stderr", bad_name.output)]
    nul, _ = await execute(env, RunSpec("print(1)", "python", args=("a\0b",)))
    assert nul.exit_code == 2 and "NUL" in nul.output
    assert daytona_server.count("POST /sandbox") == 0


# ---------------------------------------------------------------- errors and notes reach on_output
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


FAULTS = ["401", "500 after the retries", "unreachable API", "dropped toolbox connection", "not enabled"]


@pytest.mark.parametrize("fault", FAULTS)
async def test_error_results_reach_on_output(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer, fault: str
) -> None:
    if fault == "401":
        env = make_daytona_env(api_key="dtn_wrong-key-1234")
    elif fault == "500 after the retries":
        env = make_daytona_env(create_retries=1)
        daytona_server.fail_create(500, times=5, message="the API is down")
    elif fault == "unreachable API":
        env = make_daytona_env(api_url=f"http://127.0.0.1:{_closed_port()}/api", create_retries=0)
    elif fault == "not enabled":
        env = make_daytona_env(languages=("bash",))
    else:
        env = make_daytona_env()
        await execute(env, RunSpec("pass", "python"))
        daytona_server.drop_toolbox(times=3)
    result, chunks = await execute(env, RunSpec("print(1)", "python"))
    assert result.exit_code in (1, 2) and result.output.strip() and result.output.endswith("\n")
    assert streamed(chunks) == result.output
    assert chunks[-1][0] == "stderr"
    assert daytona_server.api_key not in result.output


async def test_info_tells_a_failed_creation_and_one_in_progress(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env(api_key="dtn_wrong-key-1234")
    assert env.info()["state"] == "none"
    await execute(env, RunSpec("print(1)", "python"))
    assert env.info() == {"backend": "daytona", "state": "error"}
    good = make_daytona_env()
    daytona_server.hold_create()
    prewarm = asyncio.create_task(good.prewarm())
    await asyncio.to_thread(daytona_server.wait_held)
    assert good.info()["state"] == "creating"
    daytona_server.release()
    await prewarm
    assert good.info()["state"] == "started" and good.sandbox_id


async def test_a_timeout_note_reaches_on_output(make_daytona_env: DaytonaEnvFactory) -> None:
    env = make_daytona_env(timeout=1)
    result, chunks = await execute(env, RunSpec("import time\nprint('tick', flush=True)\ntime.sleep(30)", "python"))
    assert result.exit_code == 124 and "timed out" in result.output
    assert streamed(chunks) == result.output
    assert result.output.startswith("tick\n") and chunks[0][0] == "stdout"
    assert chunks[-1][0] == "stderr" and "timed out" in chunks[-1][1]


# ---------------------------------------------------------------- waiting for the sandbox
async def test_a_run_waits_for_its_sandbox_at_most_the_creation_timeout_and_says_so(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env(timeout=20, create_timeout=1)
    daytona_server.hold_create()
    result, chunks = await execute(env, RunSpec("print(1)", "python"))
    assert result.exit_code == 124
    assert (
        result.output == "Daytona sandbox creation did not finish within 1 s (create_timeout); the code did not run.\n"
    )
    assert streamed(chunks) == result.output
    assert result.duration_ms is not None and result.duration_ms < 15_000  # not the run's 20 s, nor forever
    daytona_server.release()
    second, _ = await execute(env, RunSpec("print(2)", "python"))
    assert (second.exit_code, second.output) == (0, "2\n")


async def test_cancelled_run_without_streaming_is_a_result(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    await execute(env, RunSpec("pass", "python"), stream=False)
    daytona_server.hold_toolbox()
    run = asyncio.create_task(env.execute(RunSpec("print(1)", "python")))
    await asyncio.to_thread(daytona_server.wait_held)
    run.cancel()
    result = await run
    daytona_server.release()
    assert result.exit_code == 124 and "cancelled" in result.output and not run.cancelled()
