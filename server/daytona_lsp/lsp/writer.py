"""The server's stdout: messages sent within a few event-loop turns of each other leave in one write.

Each write to the client's pipe wakes the client (and, on a busy machine, hands it the processor); a run sends several
messages at once — ``daytona/runFinished``, the progress end and the command's response come from three consecutive
turns of the loop — so they go out together, in order, with one wake-up instead of three. Nothing waits for a timer:
the delay is :data:`TURNS` turns of the loop (microseconds), so output still streams as it is produced.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import BinaryIO

log = logging.getLogger(__name__)

TURNS = 3
"""Loop turns from the first pending message to the write: a run's end and the response that follows it (two more)."""


class CoalescingWriter:
    """pygls' writer interface (``write``, ``close``) over a binary stream."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._broken = False

    def write(self, data: bytes) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the loop's thread: in order, at once
            with self._lock:
                self._pending.append(data)
            self.flush()
            return
        with self._lock:
            self._pending.append(data)
            first = len(self._pending) == 1
        if first:
            loop.call_soon(self._flush_after, loop, TURNS - 1)

    def _flush_after(self, loop: asyncio.AbstractEventLoop, turns: int) -> None:
        if turns > 0:
            loop.call_soon(self._flush_after, loop, turns - 1)
        else:
            self.flush()

    def flush(self) -> None:
        """Write what is pending now (also called before the process exits)."""
        with self._lock:
            data, self._pending = b"".join(self._pending), []
            if not data or self._broken:
                return
            try:
                view = memoryview(data)
                while view:
                    view = view[self._out.write(view) or 0 :]
                self._out.flush()
            except OSError as exc:  # the client is gone: its end of the pipe closed
                self._broken = True
                log.info("daytona-lsp: the client's end of stdout closed (%s)", exc)

    def close(self) -> None:
        self.flush()
        self._out.close()
