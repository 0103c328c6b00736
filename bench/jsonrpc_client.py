"""A minimal LSP client for benchmarks: JSON-RPC framing over the server's stdio, plain ``json``, nothing else.

An editor's client (VS Code's ``vscode-jsonrpc`` in Node, Neovim's ``vim.lsp.rpc`` in Lua) parses a message and hands
it on; pygls' Python client also builds and validates an lsprotocol object of every message (cattrs), which costs a
few hundred microseconds a round trip on this machine — the measuring client's cost, not the server's. This one
answers the server's requests (``workspace/configuration``: no settings; anything else: null) and counts
notifications.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


class MinimalClient:
    def __init__(self) -> None:
        self.notifications = 0
        self._next_id = 0
        self._waiting: dict[int, asyncio.Future[Any]] = {}

    async def start(self, cmd: list[str]) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        self._reader = asyncio.ensure_future(self._read())

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        body = json.dumps(message).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    def notify(self, method: str, params: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    async def request(self, method: str, params: Any) -> Any:
        """The result (an error response raises RuntimeError)."""
        self._next_id += 1
        future = self._waiting[self._next_id] = asyncio.get_running_loop().create_future()
        self._send({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        message = await future
        if "error" in message:
            raise RuntimeError(f"{method}: {message['error']}")
        return message.get("result")

    async def command(self, command: str, argument: dict[str, Any]) -> Any:
        return await self.request("workspace/executeCommand", {"command": command, "arguments": [argument]})

    async def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            length = 0
            while (line := await stream.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if not line:
                return
            message = json.loads(await stream.readexactly(length))
            if "method" not in message:
                self._waiting.pop(message["id"]).set_result(message)
            elif "id" in message:  # the server's request
                items = (message.get("params") or {}).get("items", [])
                result = [None] * len(items) if message["method"] == "workspace/configuration" else None
                self._send({"jsonrpc": "2.0", "id": message["id"], "result": result})
            else:
                self.notifications += 1

    async def initialize(self, init_options: Any) -> Any:
        caps = {"window": {"workDoneProgress": True}, "workspace": {"configuration": True}}
        result = await self.request(
            "initialize",
            {"processId": None, "rootUri": None, "capabilities": caps, "initializationOptions": init_options},
        )
        self.notify("initialized", {})
        return result

    def open(self, uri: str, text: str, language_id: str = "python") -> None:
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": language_id, "version": 1, "text": text}},
        )

    async def stop(self) -> None:
        await self.request("shutdown", None)
        self.notify("exit", None)
        await self.proc.wait()
        self._reader.cancel()
