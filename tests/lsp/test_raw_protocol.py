"""The server's stdio as bytes, read as a minimal client reads them: a request whose params do not fit its method is
answered (InvalidParams), not dropped, and the server goes on; a run's request is answered exactly once, after the
run's notifications."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from tests.lsp.test_reader import frame

WAIT = 30


async def _server() -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAYTONA_")}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "daytona_lsp",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )


async def _read(stdout: asyncio.StreamReader) -> dict[str, Any]:
    length = 0
    while (line := await stdout.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return dict(json.loads(await stdout.readexactly(length)))


async def _answer(stdout: asyncio.StreamReader, msg_id: int) -> dict[str, Any]:
    while True:
        message = await asyncio.wait_for(_read(stdout), WAIT)
        if message.get("id") == msg_id and "method" not in message:
            return message


async def _answers(stdout: asyncio.StreamReader, ids: set[int]) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    while len(found) < len(ids):
        message = await asyncio.wait_for(_read(stdout), WAIT)
        if message.get("id") in ids and "method" not in message:
            found[message["id"]] = message
    return found


async def _initialize(proc: asyncio.subprocess.Process, options: dict[str, Any]) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    params = {"processId": None, "rootUri": None, "capabilities": {}, "initializationOptions": options}
    proc.stdin.write(_request(1, "initialize", params))
    assert "capabilities" in (await _answer(proc.stdout, 1))["result"]
    proc.stdin.write(_notification("initialized", {}))


def _notification(method: str, params: Any) -> bytes:
    return frame(json.dumps({"jsonrpc": "2.0", "method": method, "params": params}).encode())


def _request(msg_id: int, method: str, params: Any) -> bytes:
    return frame(json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}).encode())


async def test_a_request_that_does_not_fit_is_answered_and_the_server_goes_on() -> None:
    proc = await _server()
    assert proc.stdin is not None and proc.stdout is not None
    try:
        await _initialize(proc, {})
        # params that do not fit (no command), then a body that is not JSON, then a good request
        proc.stdin.write(_request(2, "workspace/executeCommand", {"arguments": []}))
        proc.stdin.write(frame(b"{not json"))
        proc.stdin.write(_request(3, "workspace/executeCommand", {"command": "daytona.sandboxInfo"}))
        error = (await _answer(proc.stdout, 2))["error"]
        assert error["code"] == -32602 and "workspace/executeCommand" in error["message"], error
        assert (await _answer(proc.stdout, 3))["result"]["backend"] == "local"
        proc.stdin.write(_request(4, "shutdown", None))
        await _answer(proc.stdout, 4)
        proc.stdin.write(frame(json.dumps({"jsonrpc": "2.0", "method": "exit"}).encode()))
        assert await asyncio.wait_for(proc.wait(), WAIT) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_run_is_answered_once_after_its_notifications() -> None:
    proc = await _server()
    assert proc.stdin is not None and proc.stdout is not None
    try:
        await _initialize(proc, {"backend": "local", "prewarm": False, "outputNotifications": True})
        uri = "file:///raw/once.py"
        item = {"uri": uri, "languageId": "python", "version": 1, "text": "print('hi')\nraise SystemExit(3)\n"}
        proc.stdin.write(_notification("textDocument/didOpen", {"textDocument": item}))
        run = {"command": "daytona.run", "arguments": [{"uri": uri}]}
        for msg_id in (2, 3):  # a warm run too: the one answered in the turn its result is known
            proc.stdin.write(_request(msg_id, "workspace/executeCommand", run))
            seen: list[str] = []
            while True:
                message = await asyncio.wait_for(_read(proc.stdout), WAIT)
                seen.append(message.get("method") or f"answer {message.get('id')}")
                if message.get("id") == msg_id and "method" not in message:
                    assert message["result"]["exitCode"] == 3 and message["result"]["output"] == "hi\n", message
                    break
            assert seen.index("daytona/runStarted") < seen.index("daytona/output") < seen.index("daytona/runFinished")
            assert "textDocument/publishDiagnostics" in seen, seen  # exit 3: a diagnostic, before the answer
        # a reset and a run in one write: the run goes to a new sandbox (the reset does not cancel it)
        reset = {"command": "daytona.resetSandbox", "arguments": [{"uri": uri}]}
        proc.stdin.write(_request(10, "workspace/executeCommand", reset) + _request(11, "workspace/executeCommand", run))
        answers = await _answers(proc.stdout, {10, 11})  # (in either order)
        assert answers[10]["result"] == {"closed": 1}
        assert answers[11]["result"]["exitCode"] == 3, answers[11]
        # one more request: had any run been answered twice, that answer would come before this one's
        proc.stdin.write(_request(4, "workspace/executeCommand", {"command": "daytona.sandboxInfo"}))
        assert (await asyncio.wait_for(_read(proc.stdout), WAIT)).get("id") == 4
        proc.stdin.write(_request(5, "shutdown", None))
        await _answer(proc.stdout, 5)
        proc.stdin.write(_notification("exit", None))
        assert await asyncio.wait_for(proc.wait(), WAIT) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_run_sent_with_a_configuration_change_uses_the_new_settings() -> None:
    # both in one write: the run is started in the turn its request arrives, which must not be before the change
    proc = await _server()
    assert proc.stdin is not None and proc.stdout is not None
    greeting = "one"

    async def answer_until(msg_id: int) -> dict[str, Any]:
        """Read until the answer to ``msg_id``, answering the server's workspace/configuration requests."""
        assert proc.stdin is not None and proc.stdout is not None
        while True:
            message = await asyncio.wait_for(_read(proc.stdout), WAIT)
            if message.get("method") == "workspace/configuration":
                items = message["params"]["items"]
                result = [{"backend": "local", "prewarm": False, "envVars": {"GREETING": greeting}}] * len(items)
                proc.stdin.write(frame(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode()))
            elif message.get("id") == msg_id and "method" not in message:
                return message

    try:
        caps = {"workspace": {"configuration": True}}
        params = {"processId": None, "rootUri": None, "capabilities": caps, "initializationOptions": {}}
        proc.stdin.write(_request(1, "initialize", params))
        await answer_until(1)
        proc.stdin.write(_notification("initialized", {}))
        uri = "file:///raw/env.sh"
        item = {"uri": uri, "languageId": "shellscript", "version": 1, "text": "echo $GREETING\n"}
        proc.stdin.write(_notification("textDocument/didOpen", {"textDocument": item}))
        run = {"command": "daytona.run", "arguments": [{"uri": uri}]}
        proc.stdin.write(_request(2, "workspace/executeCommand", run))
        assert (await answer_until(2))["result"]["output"] == "one\n"
        greeting = "two"
        change = _notification("workspace/didChangeConfiguration", {"settings": None})
        proc.stdin.write(change + _request(3, "workspace/executeCommand", run))
        assert (await answer_until(3))["result"]["output"] == "two\n"
        proc.stdin.write(_request(4, "shutdown", None))
        await answer_until(4)
        proc.stdin.write(_notification("exit", None))
        assert await asyncio.wait_for(proc.wait(), WAIT) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
