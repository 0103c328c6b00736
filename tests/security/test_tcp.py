"""``daytona-lsp serve --tcp``: loopback only, and no request is served to a client without the token."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

SERVE = [sys.executable, "-m", "daytona_lsp", "serve", "--tcp", "--port", "0"]
WAIT = 30.0


class Server:
    def __init__(self, process: asyncio.subprocess.Process, port: int, token: str | None, banner: str) -> None:
        self.process, self.port, self.token, self.banner = process, port, token, banner


@contextlib.asynccontextmanager
async def serving(*extra: str) -> AsyncIterator[Server]:
    process = await asyncio.create_subprocess_exec(
        *SERVE, *extra, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        assert process.stderr is not None
        banner = (await asyncio.wait_for(process.stderr.readline(), WAIT)).decode()
        found = re.search(r"listening on 127\.0\.0\.1:(\d+);.*token(?:: (\S+))?", banner)
        assert found, banner
        yield Server(process, int(found.group(1)), found.group(2), banner)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


def _frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


async def _read(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    length = None
    while True:
        try:
            line = await asyncio.wait_for(reader.readline(), WAIT)
        except ConnectionError:
            return None
        if not line:
            return None
        if line == b"\r\n":
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    assert length is not None
    result: dict[str, Any] = json.loads(await asyncio.wait_for(reader.readexactly(length), WAIT))
    return result


def _initialize(token: str | None = None, msg_id: int = 1) -> dict[str, Any]:
    options: dict[str, Any] = {"backend": "local", "prewarm": False}
    if token is not None:
        options["token"] = token
    params = {"processId": None, "rootUri": None, "capabilities": {}, "initializationOptions": options}
    return {"jsonrpc": "2.0", "id": msg_id, "method": "initialize", "params": params}


async def _exchange(port: int, *messages: dict[str, Any]) -> list[dict[str, Any]]:
    """Send the messages, then read until the server closes the connection or answers every request."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    with contextlib.suppress(ConnectionError):  # a refused client may find the connection closed while it writes
        for message in messages:
            writer.write(_frame(message))
        await writer.drain()
    replies = []
    wanted = sum(1 for m in messages if "id" in m)
    while len([r for r in replies if "id" in r]) < wanted:
        reply = await _read(reader)
        if reply is None:
            break
        replies.append(reply)
    writer.close()
    return replies


def _did_open(marker: Path) -> dict[str, Any]:
    code = f"open({str(marker)!r}, 'w').write('ran')"
    uri = (marker.parent / "m.py").as_uri()
    return {
        "jsonrpc": "2.0",
        "method": "textDocument/didOpen",
        "params": {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": code}},
    }


async def test_a_client_without_the_token_is_refused_before_any_request_is_served(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    run = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "workspace/executeCommand",
        "params": {"command": "daytona.run", "arguments": [{"uri": (tmp_path / "m.py").as_uri()}]},
    }
    async with serving() as server:
        assert server.token and len(server.token) >= 32
        # no token, a wrong token, a request before initialize: each gets one error and is disconnected
        for first in (_initialize(), _initialize("x" * 43), run):
            replies = await _exchange(server.port, first, _did_open(marker), run)
            assert len(replies) == 1 and "error" in replies[0] and "token" in replies[0]["error"]["message"], replies
        # garbage and an early disconnect are refused too
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        await writer.drain()
        assert "error" in ((await _read(reader)) or {})
        writer.close()
        # ...and the server still serves the client that has the token
        assert server.process.returncode is None
        replies = await _exchange(server.port, _initialize(server.token))
        assert "capabilities" in replies[0]["result"], replies
    assert not marker.exists()


async def test_a_token_file_is_used_and_not_echoed(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("a-token-of-the-users-choice-123\n")
    async with serving("--token-file", str(token_file)) as server:
        assert server.token is None and "a-token-of" not in server.banner
        assert "error" in (await _exchange(server.port, _initialize()))[0]
        replies = await _exchange(server.port, _initialize("a-token-of-the-users-choice-123"))
        assert "capabilities" in replies[0]["result"]


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_tcp_listens_on_loopback_only(host: str) -> None:
    done = subprocess.run([*SERVE, "--host", host], capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 2 and "not a loopback address" in done.stderr


def test_a_short_token_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("short")
    done = subprocess.run([*SERVE, "--token-file", str(tmp_path / "t")], capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 2 and "at least 16 characters" in done.stderr
