"""The program's stdin inside a Daytona sandbox: run there (after the text of :mod:`daytona_lsp.core.stdin_wait`) as
``python3 helper.py MARK EOF_TOKEN PRESET_FILE MODE -- PROGRAM ARG...``. Standard library only.

The program's stdin is a pipe of the helper's. ``PRESET_FILE`` (or ``-``) is written to it first. MODE
``interactive``: the lines of the helper's own stdin (the session command's, fed by ``send_session_command_input``)
follow, until the line ``EOF_TOKEN`` closes the pipe (the daemon has no way to close a command's stdin). MODE
``closed``: nothing follows; the pipe is closed the moment the program waits on it. A wait is announced on stderr as
a line ``MARK:waiting`` (once per input), a closing as ``MARK:stdin-closed``; the host takes those lines out of the
output. The helper exits with the program's exit code; the program dies with it.
"""

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

from daytona_lsp.core.stdin_wait import anyone_waits, unread_bytes  # inlined: the sandbox gets that module's text

_PR_SET_PDEATHSIG = 1
_FIRST_POLL_S = 0.002
_MAX_POLL_S = 0.05


class _Stdin:
    def __init__(self) -> None:
        read_fd, self.fd = os.pipe()
        self.read_fd = read_fd
        self.inode = os.fstat(self.fd).st_ino
        self.fed = 0
        self.lock = threading.Lock()

    def feed(self, data: bytes) -> None:
        with self.lock:
            if self.fd == -1:
                return
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view) :]
            except OSError:  # the program closed its stdin
                pass
            self.fed += 1

    def close(self) -> None:
        with self.lock:
            if self.fd != -1:
                os.close(self.fd)
                self.fd = -1


def _announce(mark: str, what: str) -> None:
    sys.stderr.write(f"{mark}:{what}\n")
    sys.stderr.flush()


def _relay(stdin: _Stdin, eof_token: bytes) -> None:
    for line in sys.stdin.buffer:
        if line.rstrip(b"\r\n") == eof_token:
            break
        stdin.feed(line)
    stdin.close()


def _watch(stdin: _Stdin, process: subprocess.Popen, mark: str, interactive: bool) -> None:
    interval, reported = _FIRST_POLL_S, -1
    while process.poll() is None and stdin.fd != -1:
        time.sleep(interval)
        fed = stdin.fed
        fd = stdin.fd
        if fd == -1 or unread_bytes(fd) > 0 or not anyone_waits(os.getpid(), stdin.inode):
            interval = min(interval * 2, _MAX_POLL_S)
            continue
        if not interactive:
            _announce(mark, "stdin-closed")  # first: once the pipe closes the program may end, and the helper too
            stdin.close()
            return
        if reported != fed:
            reported = fed
            _announce(mark, "waiting")
        interval = _FIRST_POLL_S


def main(argv: list) -> int:
    os.unlink(argv[0])
    mark, eof_token, preset, mode = argv[1:5]
    program = argv[6:]
    stdin = _Stdin()
    libc = ctypes.CDLL(None)
    process = subprocess.Popen(
        program,
        stdin=stdin.read_fd,
        preexec_fn=lambda: libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0),
    )
    os.close(stdin.read_fd)
    if preset != "-":
        with open(preset, "rb") as f:
            stdin.feed(f.read())
        os.unlink(preset)
    interactive = mode == "interactive"
    if interactive:
        threading.Thread(target=_relay, args=(stdin, eof_token.encode()), daemon=True).start()
    threading.Thread(target=_watch, args=(stdin, process, mark, interactive), daemon=True).start()
    code = process.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    exit_code = main(sys.argv)
    sys.stderr.flush()
    os._exit(exit_code)  # not sys.exit: the relay thread may sit in a read of stdin, which blocks a normal shutdown
