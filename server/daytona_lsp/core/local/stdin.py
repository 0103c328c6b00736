"""A local run's stdin when it is not a preset: a pipe the host writes to as input arrives, and a watcher that sees
the program wait for input.

Waiting is read from the kernel, for every language alike: while the run's output is idle, the host looks at the
container's processes (its own ``/proc``: they are its descendants) for a thread asleep reading this pipe —
``wchan`` a pipe read and the ``read`` syscall's descriptor this pipe (Python, bash, any blocking reader) — or asleep
in ``epoll_wait`` on an epoll set that watches this pipe for input (Node's event loop). Only the run's own pipe
counts, so concurrent runs in one container never see each other's waits.

With an :class:`~daytona_lsp.core.environment.InputChannel` the wait is reported with the prompt (the partial last
output line); without one the host closes the pipe at the first wait, so the program reads EOF at once, and the run's
output says so (:data:`~daytona_lsp.core.environment.STDIN_CLOSED_NOTE`). A program that never reads gets no note.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from daytona_lsp.core.environment import STDIN_CLOSED_NOTE, InputChannel, OutputCallback, emit
from daytona_lsp.core.output import OutputBuffer
from daytona_lsp.core.stdin_wait import anyone_waits, unread_bytes

log = logging.getLogger(__name__)

_FIRST_POLL_S = 0.01
"""The first look after the output went idle (then backing off). A run that ends sooner (most, in a warm container)
costs no look at all (each is a thread hop and a walk of its processes in ``/proc``): a warm ``print(1)`` took 2.5 ms
of the host's CPU per run at 2 ms, 1.4 ms at 10 ms (300 interleaved runs each, same wall time); a program waiting for
input is seen 8 ms later."""
_MAX_POLL_S = 0.05


class StdinPipe:
    """The run's stdin as a pipe: hand :attr:`read_fd` to the agent, then :meth:`serve` until the run ends."""

    def __init__(self, channel: InputChannel | None, preset: bytes | None) -> None:
        self.channel = channel
        self.preset = preset
        self.read_fd, self._write_fd = os.pipe()
        os.set_inheritable(self.read_fd, False)
        self.inode = os.fstat(self._write_fd).st_ino
        self.read_eof = False
        """Whether the program read its stdin with no input given (it was closed for it: the note)."""
        self._transport: asyncio.WriteTransport | None = None
        self._buffer: OutputBuffer | None = None
        self._on_output: OutputCallback | None = None
        self._sent = asyncio.Event()
        self._output_fds: list[int] = []

    @property
    def note(self) -> str:
        return STDIN_CLOSED_NOTE if self.read_eof else ""

    def handed_over(self) -> None:
        """The agent has its copy of the read end (ours is closed, so EOF comes when we close the write end)."""
        if self.read_fd != -1:
            os.close(self.read_fd)
            self.read_fd = -1

    def watch_output(self, *fds: int) -> None:
        """Take copies of the run's output pipes (``-1``: none), to tell whether output is still on its way when the
        program waits (call it before the run's output is read, which closes the originals)."""
        self._output_fds += [os.dup(fd) for fd in fds if fd != -1]

    async def serve(self, buffer: OutputBuffer, on_output: OutputCallback | None, root_pid: int) -> None:
        """Feed and watch the program's stdin until cancelled (when the run has ended)."""
        loop = asyncio.get_running_loop()
        pipe = os.fdopen(self._write_fd, "wb", buffering=0)
        self._write_fd = -1
        self._transport, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, pipe)
        self._buffer, self._on_output = buffer, on_output
        if self.preset:
            self._transport.write(self.preset)
        try:
            if self.channel is not None:
                await self.channel.attach(self)
            await self._watch(buffer, root_pid)
            await loop.create_future()  # stdin is closed; the run goes on until it ends (this is cancelled then)
        finally:
            if self.channel is not None:
                self.channel.detach()
            if not self._transport.is_closing():  # a closing one ends by itself (written out, or the reader gone)
                self._transport.abort()

    # -- the InputSink the channel writes to ----------------------------------------------------------------------

    async def write(self, text: str) -> None:
        assert self._buffer is not None and self._transport is not None
        if self.channel is not None and self.channel.echo:
            await emit(self._on_output, "stdout", self._buffer.write(text))  # the echo, as a terminal shows it
        if not self._transport.is_closing():
            self._transport.write(text.encode("utf-8", "surrogatepass"))
        self._sent.set()

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()  # once what is buffered is written: EOF
        self._sent.set()

    # -- seeing the program wait ----------------------------------------------------------------------------------

    async def _watch(self, buffer: OutputBuffer, root_pid: int) -> None:
        """Poll (backing off) while the output is idle; report each wait once (again after input or output)."""
        assert self._transport is not None
        interval, seen = _FIRST_POLL_S, buffer.total_bytes
        while not self._transport.is_closing():
            await asyncio.sleep(interval)
            if buffer.total_bytes != seen or self._sent.is_set():
                seen, interval = buffer.total_bytes, _FIRST_POLL_S
                self._sent.clear()
                continue
            if self._unread():
                continue  # the program has input it has not taken yet: not waiting
            try:
                waiting = await asyncio.to_thread(anyone_waits, root_pid, self.inode)
            except Exception:  # never break the run: no more watching (without input: EOF at once, no note)
                log.exception("daytona-lsp: watching the run's stdin failed")
                if self.channel is None:
                    self._transport.close()
                return
            if not waiting:
                interval = min(interval * 2, _MAX_POLL_S)
                continue
            if self.channel is None:
                self.read_eof = True
                self._transport.close()
                return
            if await self._output_in_flight(buffer, seen):
                continue  # the prompt is still on its way into the output: the wait is reported once it is there
            await self.channel.input_requested(buffer.partial_line())
            await self._input_or_output(buffer, seen)

    async def _output_in_flight(self, buffer: OutputBuffer, seen: int) -> bool:
        """Whether output the program wrote before it began to wait has not reached ``buffer`` yet: still in a pipe,
        or read from it by the output reader, whose next step (already scheduled) writes it into the buffer."""
        if any(unread_bytes(fd) > 0 for fd in self._output_fds):
            return True
        await asyncio.sleep(0)  # a yield, not a wait: the reader's scheduled step runs first
        return buffer.total_bytes != seen

    def _unread(self) -> bool:
        """Whether input is still on its way: in the pipe or in the transport's buffer."""
        assert self._transport is not None
        if self._transport.get_write_buffer_size():
            return True
        pipe = self._transport.get_extra_info("pipe")
        return pipe is not None and not pipe.closed and unread_bytes(pipe.fileno()) > 0

    async def _input_or_output(self, buffer: OutputBuffer, seen: int) -> None:
        """Until input is sent, the program writes or the pipe closes (a wait is reported once)."""
        assert self._transport is not None
        while buffer.total_bytes == seen and not self._transport.is_closing():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._sent.wait(), _MAX_POLL_S)
                return

    def discard(self) -> None:
        """Close what is still ours (the run never started, or it has ended and :meth:`serve` was stopped)."""
        for fd in (self.read_fd, self._write_fd, *self._output_fds):
            if fd != -1:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.read_fd = self._write_fd = -1
        self._output_fds.clear()


async def stop_feeding(task: asyncio.Future[None]) -> None:
    """End :meth:`StdinPipe.serve` (the run has ended); idempotent."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
