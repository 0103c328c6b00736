"""The server's input: LSP base-protocol framing (headers, ``Content-Length``, a JSON body) → the protocol.

Replaces pygls' reading loop (``pygls.io_.run_async``), which reads a header line at a time through a coroutine, decodes
every JSON object through an ``object_hook`` and wakes a task per message: here a stdin pipe's data is framed in the
loop's own read callback and each message handed on in the same turn (:func:`serve_pipe`); other inputs (a file, a
socket after the TCP handshake) are read by :func:`serve_stream`. Either way :meth:`Framer.feed` frames and
``receive`` (the protocol's: decode, structure, handle) takes each body.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 8192
"""A header block longer than this (no blank line) is not LSP: it is dropped up to the next line."""


class Framer:
    """Splits a byte stream into message bodies."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The bodies completed by ``data``, in order."""
        buf = self._buffer
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    log.warning("daytona-lsp: input without an LSP header dropped (%d bytes)", len(buf))
                    del buf[: buf.rfind(b"\n") + 1 or len(buf)]
                return
            length = content_length(bytes(buf[:end]))
            if length is None:
                log.warning("daytona-lsp: a message without a valid Content-Length header dropped")
                del buf[: end + 4]
                continue
            start = end + 4
            if len(buf) < start + length:
                return
            body = bytes(buf[start : start + length])
            del buf[: start + length]
            yield body


def content_length(header: bytes) -> int | None:
    """The ``Content-Length`` of a header block (any case; other headers ignored), or None."""
    for line in header.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"content-length":
            value = value.strip()
            return int(value) if value.isdigit() else None
    return None


class Receiver(Protocol):
    def receive(self, body: bytes) -> None:
        """Decode and handle one message body (never raises but ``SystemExit``: the ``exit`` notification)."""
        ...


class _PipeProtocol(asyncio.Protocol):
    def __init__(self, receiver: Receiver, done: asyncio.Future[Any]) -> None:
        self._receiver = receiver
        self._done = done
        self._framer = Framer()

    def data_received(self, data: bytes) -> None:
        if self._done.done():
            return
        try:
            for body in self._framer.feed(data):
                self._receiver.receive(body)
        except SystemExit as exc:  # `exit`: whatever came with it is not handled
            self._done.set_result(exc)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            self._done.set_result(None)


async def serve_pipe(receiver: Receiver, pipe: Any) -> None:
    """Hand each message read from ``pipe`` (a pipe or socket) to ``receiver`` until it closes; raises the
    ``SystemExit`` of an ``exit`` notification."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[SystemExit | None] = loop.create_future()
    transport, _ = await loop.connect_read_pipe(lambda: _PipeProtocol(receiver, done), pipe)
    try:
        ended = await done
    finally:
        transport.close()
    if ended is not None:
        raise ended


async def serve_stream(receiver: Receiver, read: Callable[[int], Any]) -> None:
    """The same from an awaitable ``read(n)`` (b"" at the end)."""
    framer = Framer()
    while data := await read(65536):
        for body in framer.feed(data):
            receiver.receive(body)
