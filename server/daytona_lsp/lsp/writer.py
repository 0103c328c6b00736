"""The server's stdout: a response or request leaves at once; a notification written within :data:`HOLD_S` of a
client's request that is not yet answered waits for that answer (at most until then), any other leaves on the next loop
turn (with whatever else that turn writes); whatever is pending leaves together, in order, in one write.

Each write to the client's pipe wakes the client (and, on a busy machine, hands it the processor). A run sends
``daytona/runStarted`` once the sandbox has the run, not held (the client reads it while the run goes on), then its
output, ``daytona/runFinished`` (and progress) and the command's response: held, the notifications of a run that lasts
a few milliseconds (most runs in a warm sandbox) leave with the response, one wake-up instead of three. Output of a run
that lasts longer, and of a program answering the user's input (its ``daytona.sendInput`` is answered at once), is not
held: it shows as it is produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import threading

log = logging.getLogger(__name__)

HOLD_S = 0.01
"""How long after a request arrived a notification waits for its answer (below a display frame: nobody sees it)."""


class CoalescingWriter:
    """pygls' writer interface (``write``, ``close``) over a binary stream; :meth:`holding` marks notifications."""

    def __init__(self, out: io.RawIOBase) -> None:
        self._out = out
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._broken = False
        self._hold = False
        self._wait_answer = True
        self._timer: asyncio.TimerHandle | None = None
        self._soon = False
        """A flush is scheduled for the next loop turn."""
        self._hold_until = 0.0
        """Loop time until which notifications wait for the answer to the request that arrived last."""

    def request_arrived(self) -> None:
        """A client's request arrived: notifications written in the next :data:`HOLD_S` wait for its answer."""
        with contextlib.suppress(RuntimeError):  # (off the loop: nothing is held)
            self._hold_until = asyncio.get_running_loop().time() + HOLD_S

    def holding(self, answer: bool = True) -> CoalescingWriter:
        """``with writer.holding():`` what is written inside is a notification: it may wait for an answer (the
        protocol sends its notifications inside); with ``answer=False`` it leaves on the next loop turn."""
        self._wait_answer = answer
        return self

    def __enter__(self) -> None:
        self._hold = True

    def __exit__(self, *exc: object) -> None:
        self._hold = False
        self._wait_answer = True

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
        if not self._hold:  # an answer (or a request): it leaves now, and what waited for it with it
            self._hold_until = 0.0
            self.flush()
            return
        if self._soon:
            return
        if not self._wait_answer or loop.time() >= self._hold_until:
            self._soon = True
            loop.call_soon(self.flush)  # with whatever else this turn writes
        elif self._timer is None:
            self._timer = loop.call_at(self._hold_until, self.flush)

    def flush(self) -> None:
        """Write what is pending now (also called before the process exits)."""
        with self._lock:
            data, self._pending = b"".join(self._pending), []
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._soon = False
            if not data or self._broken:
                return
            try:
                view = memoryview(data)
                while view:
                    view = view[self._out.write(view) or 0 :]
                self._out.flush()
            except (OSError, ValueError) as exc:  # the client is gone (its end of the pipe closed), or we closed
                self._broken = True
                log.info("daytona-lsp: the client's end of stdout closed (%s)", exc)

    def close(self) -> None:
        self.flush()
        self._out.close()
