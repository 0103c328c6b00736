"""The ``run`` command's terminal side: the program's stdin (a pipe or file passed on, a terminal fed line by line)
and its output where a terminal user expects it (stdout, stderr, a reader that went away)."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from daytona_lsp.core.environment import InputChannel

USAGE_ERROR = 2
"""Exit status for a bad command line, file or configuration."""


class CliError(Exception):
    """A problem reported as one line on stderr with ``status``."""

    def __init__(self, message: str, status: int = USAGE_ERROR) -> None:
        super().__init__(message)
        self.status = status


def program_stdin(file: str) -> str | None:
    """The CLI's stdin for the program when it is a pipe or a file; ``None`` for a terminal (see
    :func:`terminal_input`), /dev/null (EOF at once),
    a closed stdin, or when stdin held the code (``-``)."""
    from daytona_lsp.core.environment import MAX_STDIN_BYTES

    if file == "-":
        return None
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return None
    if not (stat.S_ISFIFO(mode) or stat.S_ISREG(mode)):
        return None
    data = sys.stdin.buffer.read(MAX_STDIN_BYTES + 1)
    if len(data) > MAX_STDIN_BYTES:
        raise CliError(
            f"stdin is larger than {MAX_STDIN_BYTES // 1024**2} MiB: give the program a file to read instead"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"stdin is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def terminal_input(file: str) -> InputChannel | None:
    """With a terminal as stdin, the program's input line by line as the user types it (Ctrl-D: EOF); the
    terminal echoes the typing itself. The channel is fed once the run's loop calls :func:`feed_from_terminal`."""
    from daytona_lsp.core.environment import InputChannel

    if file == "-" or not sys.stdin.isatty():
        return None
    return InputChannel(echo=False)


def feed_from_terminal(channel: InputChannel, loop: asyncio.AbstractEventLoop) -> None:
    """Read the terminal's lines in a daemon thread (a read of a terminal cannot be abandoned otherwise) and send
    each to ``channel`` on ``loop``."""

    from daytona_lsp.core.environment import InputClosed

    async def deliver(line: str) -> None:
        try:
            await (channel.send(line) if line else channel.close())
        except InputClosed:  # typed after the program ended
            pass

    sending: set[asyncio.Task[None]] = set()

    def forward(line: str) -> None:
        if channel.is_open:
            task = loop.create_task(deliver(line))
            sending.add(task)
            task.add_done_callback(sending.discard)

    def read() -> None:
        while True:
            line = sys.stdin.readline()
            try:
                loop.call_soon_threadsafe(forward, line)
            except RuntimeError:  # the loop is closed: the run is over
                return
            if not line:
                return

    threading.Thread(target=read, name="daytona-lsp-terminal-input", daemon=True).start()


PIPE_CLOSED = 128 + signal.SIGPIPE
"""Exit status when stdout was closed under the run (``| head``), as a program killed by SIGPIPE reports."""


class Output:
    """A run's output where a terminal user expects it: the program's stdout on stdout, its stderr on stderr.

    Remembers what it was given, so that what the result reports beyond it (a note or error the backend never
    streamed) can still be told. A closed stdout (``| head``) calls ``on_closed`` once, to stop the run.
    """

    def __init__(self, on_closed: Callable[[], None]) -> None:
        self.streamed: list[str] = []
        self.closed = False
        self.muted = False  # the run is being stopped (Ctrl-C): its last words (the backend's cancel note) are not told
        self._on_closed = on_closed

    def __call__(self, stream: str, text: str) -> None:
        self.streamed.append(text)
        if self.muted:
            return
        if stream == "stderr":
            write(sys.stderr, text)
        elif not self.closed and not write(sys.stdout, text):
            self.closed = True
            silence_stdout()
            self._on_closed()

    def unstreamed(self, output: str) -> str:
        """What ``output`` (the result's) holds after what was streamed."""
        streamed = "".join(self.streamed)
        return output[len(streamed) :] if output.startswith(streamed) else ""


def write(stream: TextIO, text: str) -> bool:
    """Write and flush at once (no buffering: output shows as produced); False when the reader went away."""
    try:
        stream.buffer.write(text.encode("utf-8", "replace"))
        stream.flush()
    except BrokenPipeError:
        return False
    except (OSError, ValueError):
        pass  # a stderr that cannot be written must not end the run
    return True


def silence_stdout() -> None:
    """Keep the interpreter from failing again when it flushes the closed stdout at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
