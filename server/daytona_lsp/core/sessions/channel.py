"""The host side of the session protocol (``protocol.py``) on the event loop: a worker's command pipe and event pipe,
whoever started it (the local agent hands them over; see ``core/local/sessions.py``), and :func:`exchange`, one
cell over any transport (the Daytona worker's too), its input included. Never blocks the loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

from ..environment import InputChannel, InputClosed, OutputStream
from .client import WorkerDied
from .protocol import Cell, ExecuteResult, execute_command, input_command, last_line, result_of

EVENT_LIMIT = 64 * 1024 * 1024
"""The longest event line taken (a worker's output events are at most 64 KiB of text; a traceback may be longer)."""


class Channel:
    """Commands go to ``cmd_w``, events come from ``evt_r`` (both owned from now on)."""

    def __init__(self, cmd_w: int, evt_r: int) -> None:
        self._cmd_w = cmd_w
        self._evt_r = evt_r
        self._reader: asyncio.StreamReader | None = None
        self._transports: list[asyncio.BaseTransport] = []
        self._writer: asyncio.StreamWriter | None = None
        self._next_id = 0
        self.closed = False

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        reader = self._reader = asyncio.StreamReader(limit=EVENT_LIMIT, loop=loop)
        events = os.fdopen(self._evt_r, "rb", buffering=0)
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), events)
        self._transports.append(transport)
        commands = os.fdopen(self._cmd_w, "wb", buffering=0)
        w_transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, commands)
        self._transports.append(w_transport)
        self._writer = asyncio.StreamWriter(w_transport, protocol, None, loop)

    async def next_event(self) -> dict[str, Any] | None:
        """The next event, ``None`` once the worker is gone (its event pipe ended)."""
        assert self._reader is not None
        try:
            line = await self._reader.readline()
        except (ValueError, asyncio.LimitOverrunError, OSError):
            return None
        if not line.endswith(b"\n"):
            return None
        try:
            event: dict[str, Any] = json.loads(line)
        except ValueError:
            return {"event": "output", "stream": "stderr", "text": line.decode("utf-8", "replace")}
        return event

    async def execute(
        self,
        cell: Cell,
        *,
        on_output: Output,
        died: Callable[[], Awaitable[str]],
        input: InputChannel | None = None,
    ) -> ExecuteResult:
        """Send one execute, pass its output on, return its result; ``died()`` says why when the worker is gone."""
        writer = self._writer
        assert writer is not None

        async def send(line: bytes) -> None:
            writer.write(line)
            await writer.drain()

        self._next_id += 1
        return await exchange(self._next_id, cell, send, self.next_event, on_output, died, input)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for transport in self._transports:
            transport.close()
        if not self._transports:
            for fd in (self._cmd_w, self._evt_r):
                with contextlib.suppress(OSError):
                    os.close(fd)


Output = Callable[[OutputStream, str], Awaitable[None]]
Send = Callable[[bytes], Awaitable[None]]


class CellInput:
    """A running cell's stdin as an :class:`~daytona_lsp.core.environment.InputSink`: what its ``InputChannel``
    is sent goes to the worker as ``input`` commands (echoed in the output first, as a terminal shows typing, when
    the channel echoes); what was sent before the cell started goes with its execute, as preset input (so the code
    never waits for input that is already on its way). It also passes the cell's output on, keeping its partial
    last line: the prompt. Commands leave one at a time, in order (a transport of separate requests keeps it)."""

    def __init__(self, command_id: int, send: Send, on_output: Output, echo: bool) -> None:
        self._id = command_id
        self._send = send
        self._on_output = on_output
        self._echo = echo
        self._sending = asyncio.Lock()
        self.started = False
        self.early = ""
        """What was sent before the cell started."""
        self.early_eof = False
        self.prompt = ""

    async def start(self, command: bytes) -> None:
        async with self._sending:
            self.started = True
            await self._send(command)
            if self.early_eof:
                await self._send(input_command(self._id, "", True))

    async def output(self, stream: OutputStream, text: str) -> None:
        self.prompt = last_line(self.prompt, text)
        await self._on_output(stream, text)

    async def write(self, text: str) -> None:
        if self._echo:
            await self.output("stdout", text)
        await self._input(text, eof=False)

    async def close(self) -> None:
        await self._input("", eof=True)

    async def _input(self, text: str, *, eof: bool) -> None:
        if not self.started:
            self.early += text
            self.early_eof = self.early_eof or eof
            return
        try:
            async with self._sending:
                await self._send(input_command(self._id, text, eof))
        except (OSError, RuntimeError) as exc:  # the worker is gone: the cell's result says so
            raise InputClosed("the session has ended") from exc


async def exchange(
    command_id: int,
    cell: Cell,
    send: Send,
    next_event: Callable[[], Awaitable[dict[str, Any] | None]],
    on_output: Output,
    died: Callable[[], Awaitable[str]],
    input: InputChannel | None = None,
) -> ExecuteResult:
    """One execute of ``cell`` over any transport: ``send`` its command (interactive when there is ``input``), pass
    the output events on until its result, and ``input`` to the cell meanwhile (``input_request`` events become its
    :meth:`~daytona_lsp.core.environment.InputChannel.input_requested` with the prompt; it is detached at the end).
    ``next_event`` gives ``None`` once the worker is gone (then :class:`WorkerDied` with ``died()``'s reason)."""
    stdin = CellInput(command_id, send, on_output, input is not None and input.echo)
    try:
        if input is not None:
            await input.attach(stdin)  # what was sent so far: preset input of the execute
        try:
            await stdin.start(execute_command(command_id, cell, early=stdin.early, interactive=input is not None))
        except (OSError, RuntimeError) as exc:
            raise WorkerDied(await died()) from exc
        while True:
            event = await next_event()
            if event is None:
                raise WorkerDied(await died())
            kind = event.get("event")
            if kind == "output":
                await stdin.output(
                    "stderr" if event.get("stream") == "stderr" else "stdout", str(event.get("text", ""))
                )
            elif kind == "input_request" and event.get("id") == command_id and input is not None and input.is_open:
                await input.input_requested(stdin.prompt)  # (after EOF was sent the code waits for it to arrive)
            elif kind == "result" and event.get("id") == command_id:
                return result_of(event)
    finally:
        if input is not None:
            input.detach()
