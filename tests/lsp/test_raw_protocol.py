"""The server's stdio as bytes, read as a minimal client reads them: a request whose params do not fit its method is
answered (InvalidParams), not dropped, and the server goes on; a run's request is answered exactly once, after the
run's notifications; a run sent in one write after a reset or a configuration change sees what they did."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from tests.lsp.test_reader import frame

WAIT = 30


@contextlib.asynccontextmanager
async def _server() -> AsyncIterator[tuple[asyncio.StreamWriter, asyncio.StreamReader]]:
    """The server's stdin and stdout; at the end it must shut down and exit with 0 (else it is killed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAYTONA_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "daytona_lsp",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        yield proc.stdin, proc.stdout
        proc.stdin.write(_request(99, "shutdown", None))
        await _answer(proc.stdout, 99)
        proc.stdin.write(_notification("exit", None))
        assert await asyncio.wait_for(proc.wait(), WAIT) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _read(stdout: asyncio.StreamReader) -> dict[str, Any]:
    length = 0
    while (line := await stdout.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return dict(json.loads(await stdout.readexactly(length)))


async def _answers(
    stdout: asyncio.StreamReader, ids: set[int], on_request: Callable[[dict[str, Any]], None] = lambda message: None
) -> dict[int, dict[str, Any]]:
    """The answers to ``ids`` (in whatever order they come), skipping notifications; the server's own requests go
    to ``on_request``."""
    found: dict[int, dict[str, Any]] = {}
    while len(found) < len(ids):
        message = await asyncio.wait_for(_read(stdout), WAIT)
        if "method" not in message and message.get("id") in ids:
            found[message["id"]] = message
        elif "method" in message and "id" in message:
            on_request(message)
    return found


async def _answer(stdout: asyncio.StreamReader, msg_id: int) -> dict[str, Any]:
    return (await _answers(stdout, {msg_id}))[msg_id]


async def _initialize(
    stdin: asyncio.StreamWriter, stdout: asyncio.StreamReader, options: dict[str, Any], capabilities: Any = None
) -> None:
    params = {"processId": None, "rootUri": None, "capabilities": capabilities or {}, "initializationOptions": options}
    stdin.write(_request(1, "initialize", params))
    assert "capabilities" in (await _answer(stdout, 1))["result"]
    stdin.write(_notification("initialized", {}))


def _notification(method: str, params: Any) -> bytes:
    return frame(json.dumps({"jsonrpc": "2.0", "method": method, "params": params}).encode())


def _request(msg_id: int, method: str, params: Any) -> bytes:
    return frame(json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}).encode())


def _response(msg_id: Any, result: Any) -> bytes:
    return frame(json.dumps({"jsonrpc": "2.0", "id": msg_id, "result": result}).encode())


async def test_a_request_that_does_not_fit_is_answered_and_the_server_goes_on() -> None:
    async with _server() as (stdin, stdout):
        await _initialize(stdin, stdout, {})
        # params that do not fit (no command), then a body that is not JSON, then a good request
        stdin.write(_request(2, "workspace/executeCommand", {"arguments": []}))
        stdin.write(frame(b"{not json"))
        stdin.write(_request(3, "workspace/executeCommand", {"command": "daytona.sandboxInfo"}))
        error = (await _answer(stdout, 2))["error"]
        assert error["code"] == -32602 and "workspace/executeCommand" in error["message"], error
        assert (await _answer(stdout, 3))["result"]["backend"] == "local"


async def test_a_run_is_answered_once_after_its_notifications() -> None:
    async with _server() as (stdin, stdout):
        await _initialize(stdin, stdout, {"backend": "local", "prewarm": False, "outputNotifications": True})
        uri = "file:///raw/once.py"
        item = {"uri": uri, "languageId": "python", "version": 1, "text": "print('hi')\nraise SystemExit(3)\n"}
        stdin.write(_notification("textDocument/didOpen", {"textDocument": item}))
        run = {"command": "daytona.run", "arguments": [{"uri": uri}]}
        for msg_id in (2, 3):  # a warm run too: the one answered in the turn its result is known
            stdin.write(_request(msg_id, "workspace/executeCommand", run))
            seen: list[str] = []
            while True:
                message = await asyncio.wait_for(_read(stdout), WAIT)
                seen.append(message.get("method") or f"answer {message.get('id')}")
                if message.get("id") == msg_id and "method" not in message:
                    assert message["result"]["exitCode"] == 3 and message["result"]["output"] == "hi\n", message
                    break
            assert seen.index("daytona/runStarted") < seen.index("daytona/output") < seen.index("daytona/runFinished")
            assert "textDocument/publishDiagnostics" in seen, seen  # exit 3: a diagnostic, before the answer
        # a reset and a run in one write: the run goes to a new sandbox (the reset does not cancel it)
        reset = {"command": "daytona.resetSandbox", "arguments": [{"uri": uri}]}
        stdin.write(_request(10, "workspace/executeCommand", reset) + _request(11, "workspace/executeCommand", run))
        answers = await _answers(stdout, {10, 11})
        assert answers[10]["result"] == {"closed": 1}
        assert answers[11]["result"]["exitCode"] == 3, answers[11]
        # one more request: had any run been answered twice, that answer would come before this one's
        stdin.write(_request(4, "workspace/executeCommand", {"command": "daytona.sandboxInfo"}))
        assert (await asyncio.wait_for(_read(stdout), WAIT)).get("id") == 4


async def test_a_run_sent_with_a_configuration_change_uses_the_new_settings() -> None:
    # both in one write: the run is started in the turn its request arrives, which must not be before the change
    greeting = "one"

    async with _server() as (stdin, stdout):

        def configuration(message: dict[str, Any]) -> None:
            assert message["method"] == "workspace/configuration", message
            settings = {"backend": "local", "prewarm": False, "envVars": {"GREETING": greeting}}
            stdin.write(_response(message["id"], [settings] * len(message["params"]["items"])))

        await _initialize(stdin, stdout, {}, {"workspace": {"configuration": True}})
        uri = "file:///raw/env.sh"
        item = {"uri": uri, "languageId": "shellscript", "version": 1, "text": "echo $GREETING\n"}
        stdin.write(_notification("textDocument/didOpen", {"textDocument": item}))
        run = {"command": "daytona.run", "arguments": [{"uri": uri}]}
        stdin.write(_request(2, "workspace/executeCommand", run))
        assert (await _answers(stdout, {2}, configuration))[2]["result"]["output"] == "one\n"
        greeting = "two"
        change = _notification("workspace/didChangeConfiguration", {"settings": None})
        stdin.write(change + _request(3, "workspace/executeCommand", run))
        assert (await _answers(stdout, {3}, configuration))[3]["result"]["output"] == "two\n"
