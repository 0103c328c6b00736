"""Interactive stdin on the Daytona backend, through the unmodified SDK against the Daytona test server: session
commands run async, input by ``send_session_command_input``, the in-sandbox helper's wait signals taken out of the
output; EOF at once (and the note) without input. The code never travels on the program's stdin."""

from __future__ import annotations

import asyncio
import shutil
import time

import pytest
from tests.daytona_server import DaytonaTestServer
from tests.daytona_server.plugin import DaytonaEnvFactory
from tests.unit.test_local_stdin import ASK as ALL_ASK

from daytona_lsp.core import RunSpec
from daytona_lsp.core.daytona.stdin import STDIN_CLOSED, WAITING, MarkerFilter
from daytona_lsp.core.environment import STDIN_CLOSED_NOTE, InputChannel, InputClosed

ASK = {language: ALL_ASK[language] for language in ("python", "bash", "javascript")}  # the test server has no tsx


@pytest.fixture(params=list(ASK))
def language(request: pytest.FixtureRequest) -> str:
    if request.param == "javascript" and shutil.which("node") is None:
        pytest.skip("no Node.js")
    return str(request.param)


def _chunks() -> tuple[list[tuple[str, str]], object]:
    chunks: list[tuple[str, str]] = []
    return chunks, lambda stream, text: chunks.append((stream, text))


async def test_interactive_input_reaches_the_program_and_is_echoed(
    make_daytona_env: DaytonaEnvFactory, language: str
) -> None:
    env = make_daytona_env()
    prompts: list[str] = []
    answers = iter(["Ann", "more"])

    async def answer(prompt: str) -> None:
        prompts.append(prompt)
        text = next(answers, None)
        await (channel.close() if text is None else channel.send(text))

    channel = InputChannel(answer)
    chunks, on_output = _chunks()
    result = await asyncio.wait_for(env.execute(RunSpec(ASK[language], language, input=channel), on_output), 60)
    assert result.exit_code == 0, result.output
    assert prompts[0] == "name? " and len(prompts) == 3, prompts
    out = result.output
    assert out.index("name? Ann\n") < out.index("hello Ann") < out.index("more\n") < out.index("rest")
    assert "more" in out.split("rest", 1)[1]
    assert "daytona-lsp-" not in out and STDIN_CLOSED_NOTE not in out  # no helper line, no EOF token
    assert "".join(t for _, t in chunks) == out
    with pytest.raises(InputClosed):
        await channel.send("late")


async def test_without_input_the_program_reads_eof_at_once_and_is_told(
    make_daytona_env: DaytonaEnvFactory, language: str
) -> None:
    env = make_daytona_env()
    chunks, on_output = _chunks()
    started = time.monotonic()
    result = await asyncio.wait_for(env.execute(RunSpec(ASK[language], language), on_output), 60)
    assert time.monotonic() - started < 2 + 3  # the first run creates the sandbox
    assert result.output.startswith("name? ") and STDIN_CLOSED_NOTE in result.output, result.output
    assert "hello Ann" not in result.output


async def test_a_program_that_never_reads_gets_no_note(make_daytona_env: DaytonaEnvFactory) -> None:
    env = make_daytona_env()
    _, on_output = _chunks()
    result = await asyncio.wait_for(env.execute(RunSpec("print('hi')\n", "python"), on_output), 60)
    assert (result.exit_code, result.output) == (0, "hi\n")


async def test_preset_stdin_then_interactive_input(make_daytona_env: DaytonaEnvFactory) -> None:
    env = make_daytona_env()

    async def answer(prompt: str) -> None:
        await channel.send("typed")
        await channel.close()

    channel = InputChannel(answer)
    code = "import sys\nprint(repr(sys.stdin.read()))\n"
    _, on_output = _chunks()
    result = await asyncio.wait_for(
        env.execute(RunSpec(code, "python", stdin="preset\n", input=channel), on_output), 60
    )
    assert result.output.endswith("'preset\\ntyped\\n'\n"), result.output


async def test_input_goes_through_the_sdk_session_input_endpoint(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()

    async def answer(prompt: str) -> None:
        await channel.send("x")

    channel = InputChannel(answer)
    result = await asyncio.wait_for(env.execute(RunSpec("print(input())\n", "python", input=channel)), 60)
    assert result.output == "x\nx\n"
    assert daytona_server.count("POST /toolbox/process/session/{session}/command/{cmd}/input") == 1


def test_the_marker_filter_takes_out_whole_and_split_marker_lines() -> None:
    f = MarkerFilter("daytona-lsp-abc")
    assert f.feed("err\ndaytona-lsp-abc:waiting\nmore") == ("err\nmore", [WAITING])
    assert f.feed("x daytona-lsp-a") == ("x ", [])
    assert f.feed("bc:stdin-closed\ntail daytona-lsp-zzz\n") == ("tail daytona-lsp-zzz\n", [STDIN_CLOSED])
    assert f.feed("ends with d") == ("ends with ", [])
    assert f.flush() == "d"
