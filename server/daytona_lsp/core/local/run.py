"""One run inside a container, seen from the host: hand it to the agent, stream its output, end it (exit, timeout,
cancellation) and make sure none of its processes is left."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from daytona_lsp.core.environment import TIMEOUT_EXIT_CODE, OutputCallback, OutputStream, emit
from daytona_lsp.core.local.container import Container, ContainerGone, Ticket
from daytona_lsp.core.output import OutputBuffer

log = logging.getLogger(__name__)

SANDBOX_FAILED_EXIT_CODE = 125
"""Exit code of a run whose sandbox could not be started (the code never ran)."""
CANCELLED_MESSAGE = "Run cancelled: the sandbox's processes were killed."
_READ_CHUNK = 256 * 1024
_DRAIN_AFTER_EXIT_S = 5.0


def uncancel() -> None:
    """A cancellation turned into a result: tell the task (Python >= 3.11) so that it is not seen as cancelling."""
    task = asyncio.current_task()
    if task is not None and sys.version_info >= (3, 11):
        task.uncancel()


def memfd_with(data: bytes, name: str) -> int:
    """An anonymous in-memory file holding ``data``, positioned at its start (the code, preset stdin)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


class Run:
    """A run the agent has started: how it ended, or why it was killed."""

    def __init__(self, container: Container, ticket: Ticket, out_r: int) -> None:
        self.container = container
        self.ticket = ticket
        self.out_r = out_r
        self.err_r = -1  # the program's stderr apart (``separate_stderr``), else it shares ``out_r``
        self.kill_reason = ""
        self.gone = False
        self.exit_code = SANDBOX_FAILED_EXIT_CODE

    @classmethod
    def start(
        cls,
        container: Container,
        request: dict[str, Any],
        code: bytes,
        stdin: bytes | None,
        extra_fds: Sequence[int] = (),
    ) -> Run:
        """Hand ``request`` to the agent with the output pipe, the code and the preset stdin (``None``: /dev/null),
        a pipe of its own for the program's stderr when ``request["separate_stderr"]``, then ``extra_fds`` (a
        session's protocol pipes; the agent gets copies, the caller closes its own).

        Raises ``OSError`` or :class:`ContainerGone` when it cannot."""
        fds: list[int] = []
        out_r = err_r = -1
        try:
            out_r, out_w = os.pipe()
            fds.append(out_w)
            fds.append(memfd_with(code, "code"))
            if stdin is not None:
                fds.append(memfd_with(stdin, "stdin"))
            if request.get("separate_stderr"):
                err_r, err_w = os.pipe()
                fds.append(err_w)
            run = cls(container, container.submit(request, [*fds, *extra_fds]), out_r)
            run.err_r = err_r
            return run
        except BaseException:
            for fd in (out_r, err_r):
                if fd != -1:
                    os.close(fd)
            raise
        finally:
            for fd in fds:
                os.close(fd)

    def kill(self, reason: str) -> None:
        if not self.kill_reason:
            self.kill_reason = reason
        self.container.kill_run(self.ticket.id)

    async def supervise(
        self, buffer: OutputBuffer, on_output: OutputCallback | None, timeout: float
    ) -> tuple[int, str]:
        """Wait for the run to end (or time out, or be cancelled); ``(exit code, note)``. Leaves no process behind."""
        pumps = [_pump(self.out_r, buffer, on_output, "stdout")]  # each owns its pipe now
        if self.err_r != -1:
            pumps.append(_pump(self.err_r, buffer, on_output, "stderr"))
        pump = asyncio.ensure_future(asyncio.gather(*pumps))
        cancelled = False
        try:
            done, _ = await asyncio.wait({self.ticket.exit}, timeout=timeout)
            if not done:
                self.kill(f"Execution timed out after {timeout:g} s: the sandbox's processes were killed.")
        except asyncio.CancelledError:
            cancelled = True
            self.kill(CANCELLED_MESSAGE)
        with contextlib.suppress(asyncio.CancelledError):
            await self._wait_exit()
        # the pipe closes once every process of the run is gone; a bounded time for what is still buffered
        with contextlib.suppress(asyncio.CancelledError):
            _, pending = await asyncio.wait({pump}, timeout=_DRAIN_AFTER_EXIT_S)
            if pending:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pump
        if cancelled:
            uncancel()
        if pump.done() and not pump.cancelled() and pump.exception() is not None:
            log.error("daytona-lsp: reading the run's output failed: %r", pump.exception())
        if self.kill_reason:
            return TIMEOUT_EXIT_CODE, self.kill_reason
        if self.gone:
            return SANDBOX_FAILED_EXIT_CODE, "The sandbox container ended while the code ran (killed from outside?)."
        if self.ticket.error:
            return SANDBOX_FAILED_EXIT_CODE, f"The local sandbox could not start the run: {self.ticket.error}."
        return self.exit_code, ""

    async def _wait_exit(self) -> None:
        """The agent's word that the run's namespace is empty; a container that does not give it is killed."""
        try:
            self.exit_code = await asyncio.wait_for(asyncio.shield(self.ticket.exit), _DRAIN_AFTER_EXIT_S * 2)
        except ContainerGone:
            self.gone = True
        except asyncio.TimeoutError:
            log.error("daytona-lsp: a run's processes did not end: killing sandbox container %s", self.container.id)
            await self.container.close()
            self.gone = True


async def stream(
    buffer: OutputBuffer, on_output: OutputCallback | None, text: str, kind: OutputStream = "stdout"
) -> None:
    """Add ``text`` to the output, streaming what fits in the head (as ``kind``)."""
    await emit(on_output, kind, buffer.write(text))


async def finish_output(
    buffer: OutputBuffer, on_output: OutputCallback | None, note: str, notes: OutputStream = "stdout"
) -> None:
    """Add the closing ``note`` (a line of its own, streamed as ``notes``) and stream what was not streamed: it then
    adds up to the output."""
    if note:
        # a line of its own, so a terminal's prompt (or the next run's header) starts on a new line
        tail = note + "\n" if buffer.total_bytes == 0 or buffer.text().endswith("\n") else "\n" + note + "\n"
        await stream(buffer, on_output, tail, notes)
    rest = buffer.unstreamed_text()
    if rest:
        await emit(on_output, "stdout", rest)


async def _pump(fd: int, buffer: OutputBuffer, on_output: OutputCallback | None, kind: OutputStream) -> None:
    """Read the run's output pipe ``fd`` to its end (and close it) into ``buffer``."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_READ_CHUNK, loop=loop)
    pipe = os.fdopen(fd, "rb", buffering=0)
    try:
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), pipe)
    except BaseException:
        pipe.close()
        raise
    try:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while True:
            chunk = await reader.read(_READ_CHUNK)
            if not chunk:
                break
            await stream(buffer, on_output, decoder.decode(chunk), kind)
        await stream(buffer, on_output, decoder.decode(b"", final=True), kind)
    finally:
        transport.close()


def kill_all(runs: Sequence[Run], reason: str) -> None:
    for run in runs:
        run.kill(reason)
