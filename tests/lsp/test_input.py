"""Interactive input through the real server: ``daytona/inputRequested`` to a client that opted in, answered with
``daytona.sendInput``; EOF at once (and a note) for one that did not; clear errors for bad input."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException
from tests.lsp.conftest import start_session

from daytona_lsp.core.environment import MAX_INPUT_BYTES, STDIN_CLOSED_NOTE

INTERACTIVE = {"outputNotifications": True, "interactiveInput": True}
ASK = {
    "python": ("ask.py", "python", "name = input('name? ')\nprint('hello', name)\n"),
    "bash": ("ask.sh", "shellscript", "printf 'name? '\nread -r name\necho \"hello $name\"\n"),
    "javascript": (
        "ask.js",
        "javascript",
        "const rl = require('readline').createInterface({input: process.stdin, output: process.stdout});\n"
        "rl.question('name? ', (a) => { console.log('hello', a); rl.close(); process.stdin.destroy(); });\n",
    ),
    "typescript": (
        "ask.ts",
        "typescript",
        "import * as readline from 'readline';\n"
        "const rl = readline.createInterface({input: process.stdin, output: process.stdout});\n"
        "rl.question('name? ', (a: string) => { console.log('hello', a); rl.close(); process.stdin.destroy(); });\n",
    ),
}


def _runnable(language: str, backend: dict[str, Any]) -> None:
    if language == "typescript" and backend["name"] == "daytona":
        pytest.skip("the Daytona test server's ts-node would be fetched by npx from the network")


def _init(backend: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**backend["settings"], "prewarm": False, **extra}


@pytest.fixture(params=list(ASK))
def language(request: pytest.FixtureRequest) -> str:
    if request.param == "typescript" and not os.environ.get("DAYTONA_LSP_TSX"):
        pytest.skip("DAYTONA_LSP_TSX not set (bash scripts/setup-tsx installs tsx; scripts/test sets it)")
    return str(request.param)


async def test_a_waiting_program_asks_the_client_and_gets_the_answer_echoed(
    caps: str, language: str, backend: dict[str, Any]
) -> None:
    _runnable(language, backend)
    name, language_id, code = ASK[language]
    async with start_session(caps, init_options={**INTERACTIVE, **_init(backend)}, env=backend["env"]) as s:
        uri = s.open(name, code, language_id)
        run = asyncio.ensure_future(s.run(uri))
        await s.wait_until(lambda: bool(s.input_requests) or run.done())
        assert s.input_requests, run.result()
        request = s.input_requests[0]
        if backend["name"] == "local":
            assert request["prompt"] == "name? "
        answered = await s.command("daytona.sendInput", {"runId": request["runId"], "text": "Ann"})
        assert answered == {"runId": request["runId"], "eof": False}
        result = await asyncio.wait_for(run, 60)
        assert result["exitCode"] == 0, result["output"]
        assert "name? " in result["output"] and "hello Ann" in result["output"]
        assert result["output"].index("Ann\n") < result["output"].index("hello Ann")  # the typed line, echoed
        await s.wait_until(lambda: request["runId"] in s.finished)
        assert "Ann\n" in s.output_text(request["runId"])


async def test_eof_from_the_client_ends_the_input(caps: str, backend: dict[str, Any]) -> None:
    code = "import sys\nlines = sys.stdin.read().splitlines()\nprint('got', lines)\n"
    async with start_session(caps, init_options={**INTERACTIVE, **_init(backend)}, env=backend["env"]) as s:
        uri = s.open("cat.py", code)
        run = asyncio.ensure_future(s.run(uri))
        await s.wait_until(lambda: bool(s.input_requests) or run.done())
        run_id = s.input_requests[0]["runId"]
        await s.command("daytona.sendInput", {"runId": run_id, "text": "one"})
        await s.command("daytona.sendInput", {"runId": run_id, "text": "two", "eof": True})
        result = await asyncio.wait_for(run, 60)
        assert "got ['one', 'two']" in result["output"], result["output"]
        with pytest.raises(JsonRpcException) as info:
            await s.command("daytona.sendInput", {"runId": run_id, "text": "late"})
        assert info.value.code == -32803 and "not running" in str(info.value)


async def test_without_opting_in_the_program_reads_eof_at_once_and_is_told(
    caps: str, language: str, backend: dict[str, Any]
) -> None:
    _runnable(language, backend)
    name, language_id, code = ASK[language]
    init = {"outputNotifications": True, **_init(backend)}
    async with start_session(caps, init_options=init, env=backend["env"]) as s:
        warm = s.open("warm.py", "print('warm')\n")
        assert (await s.run(warm))["exitCode"] == 0  # the sandbox exists: what is timed is the run
        uri = s.open(name, code, language_id)
        started = time.monotonic()
        result = await s.run(uri)
        assert time.monotonic() - started < 2 + (5 if language == "typescript" else 0)  # tsx's own start-up
        assert "hello Ann" not in result["output"]
        assert STDIN_CLOSED_NOTE in result["output"], result["output"]
        assert not s.input_requests
        run_id = result["runId"]
        with pytest.raises(JsonRpcException) as info:
            await s.command("daytona.sendInput", {"runId": run_id, "text": "x"})
        assert info.value.code == -32803


@pytest.mark.parametrize(
    ("arguments", "code", "says"),
    [
        ({"runId": "999", "text": "x"}, -32803, "not running"),
        ({"runId": "1", "text": 42}, -32602, "'text' must be a string"),
        ({"runId": "1"}, -32602, "'text' must be a string"),
        ({"runId": None, "text": "x"}, -32602, "'runId'"),
        ({"runId": "1", "text": "x", "eof": "yes"}, -32602, "'eof'"),
        ({"runId": "1", "text": "x" * (MAX_INPUT_BYTES + 1)}, -32602, "KiB"),
    ],
)
async def test_bad_input_is_a_clear_error_and_the_server_goes_on(arguments: Any, code: int, says: str) -> None:
    async with start_session(init_options={**INTERACTIVE, "backend": "local", "prewarm": False}) as s:
        with pytest.raises(JsonRpcException) as info:
            await s.command("daytona.sendInput", arguments)
        assert info.value.code == code and says in str(info.value), str(info.value)
        uri = s.open("ok.py", "print('still here')\n")
        assert (await s.run(uri))["output"] == "still here\n"


async def test_a_prompt_never_carries_the_api_key() -> None:
    key = "dtn_test_key_0123456789abcdef"
    init = {**INTERACTIVE, "backend": "local", "prewarm": False}
    async with start_session(init_options=init, env={"DAYTONA_API_KEY": key}) as s:
        uri = s.open("leak.py", f"print(input('{key}? '))\n")
        run = asyncio.ensure_future(s.run(uri))
        await s.wait_until(lambda: bool(s.input_requests) or run.done())
        request = s.input_requests[0]
        assert key not in request["prompt"] and request["prompt"].endswith("? "), request
        await s.command("daytona.sendInput", {"runId": request["runId"], "text": "x"})
        result = await asyncio.wait_for(run, 60)
        assert key not in result["output"]
