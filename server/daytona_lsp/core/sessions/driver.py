"""Speaks the session protocol (``protocol.py``) for a persistent interpreter that cannot capture its own fds 1 and 2.

Standalone (standard library only), copied into the sandbox next to ``node_worker.js``::

    python3 driver.py bash CMD_FD EVENT_FD
    python3 driver.py node NODE node_worker.js javascript|typescript CMD_FD EVENT_FD

The driver starts the interpreter (the *child*) with pipes for its stdout and stderr, commands on the child's fd 3
and answers on its fd 4; stdin stays the user's. When the child answers, everything it wrote before is already in
the pipes (its writes are synchronous), so the driver forwards that output first and then the result: output of an
execute always precedes its result. A child that exits (``exit`` in bash, ``process.exit()``, killed) is started
anew and the result of the execute says so.
"""

from __future__ import annotations

import codecs
import fcntl
import json
import os
import select
import signal
import subprocess
import sys

BASH_CELL_PATH = "/dev/fd/5"
"""Where the bash loop sources each cell from: the file bash's own error messages name (``/dev/fd/5: line 3: …``), so
the ``CodeRunResult.source_path`` of a bash cell (errors map to the buffer's lines through it)."""


def shown_path(language: str, filename: str) -> str:
    """The file a session cell's error messages name: ``filename`` (the Python and Node workers compile the cell
    under it), :data:`BASH_CELL_PATH` for bash."""
    return BASH_CELL_PATH if language == "bash" else filename

BASH_LOOP = r"""
__dl_int=
trap '__dl_int=1' INT
__dl_return() { return 2; }
shopt -s extdebug
# Once interrupted, the DEBUG trap makes every further command of the cell a `return` (extdebug: status 2 in a
# sourced file or function), which unwinds the cell; the loop's own __dl_* commands still run. The cell is sourced,
# not eval'ed in a function, so its variables and `declare`s are global as at a prompt.
trap '[[ -z $__dl_int || $BASH_COMMAND == __dl_* ]] || __dl_return' DEBUG
while :; do
  __dl_int=
  IFS= read -r -d '' -u 3 __dl_cell || { [[ -n $__dl_int ]] && continue; exit 0; }
  . __DL_CELL_PATH__ 5<<<"$__dl_cell"
  __dl_st=$?
  __dl_was=${__dl_int:-0}
  __dl_int=
  printf '%s %s\n' "$__dl_st" "$__dl_was" >&4
done
""".replace("__DL_CELL_PATH__", BASH_CELL_PATH)

REPEAT_INTERRUPT = 0.25
"""Seconds between the SIGINTs a node child gets while an interrupted execute has not ended (see interrupt_child)."""


def emit(fd: int, message: dict) -> None:
    data = (json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8", "surrogateescape")
    while data:
        data = data[os.write(fd, data) :]


class Child:
    def __init__(self, argv: list[str]) -> None:
        cmd_r, self.cmd_w = os.pipe()
        self.status_r, status_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()

        def as_fds_3_and_4() -> None:  # in the forked child: first out of the way (>= 10), then onto 3 and 4
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (cmd_r, status_w)]
            for target, fd in zip((3, 4), high, strict=True):
                os.dup2(fd, target)
                os.close(fd)

        # close_fds would close 3 and 4 after preexec_fn; every other fd of ours is non-inheritable (PEP 446)
        self.proc = subprocess.Popen(argv, stdout=out_w, stderr=err_w, close_fds=False, preexec_fn=as_fds_3_and_4)
        for fd in (cmd_r, status_w, out_w, err_w):
            os.close(fd)
        self.streams = {}
        for fd, name in ((out_r, "stdout"), (err_r, "stderr")):
            os.set_blocking(fd, False)
            self.streams[fd] = (name, codecs.getincrementaldecoder("utf-8")("replace"))
        self.status = b""

    def close(self) -> None:
        for fd in (self.cmd_w, self.status_r, *self.streams):
            os.close(fd)


class Driver:
    def __init__(self, mode: str, rest: list[str], cmd_fd: int, event_fd: int) -> None:
        self.mode = mode
        self.argv = ["bash", "--norc", "--noprofile", "-c", BASH_LOOP, "bash"] if mode == "bash" else rest
        self.language = "bash" if mode == "bash" else rest[-1]
        self.cmd_fd, self.event_fd = cmd_fd, event_fd
        self.pending: dict | None = None
        self.interrupting = False
        self.wakeup, wakeup_w = os.pipe()
        for fd in (self.wakeup, wakeup_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(wakeup_w)
        self.child = Child(self.argv)

    def forward_output(self, fd: int) -> bool:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return False
        name, decoder = self.child.streams[fd]
        text = decoder.decode(data)
        if text:
            emit(self.event_fd, {"event": "output", "stream": name, "text": text})
        return bool(data)

    def drain(self) -> None:
        for fd in self.child.streams:
            while self.forward_output(fd):
                pass

    def send(self, command: dict) -> None:
        if command.get("op") != "execute":
            emit(self.event_fd, {"event": "result", "id": command.get("id"), "status": "error", "error": "unknown op"})
            return
        self.pending = command
        if self.mode == "bash":
            data = command["code"].replace("\0", "").encode("utf-8", "surrogateescape") + b"\0"
        else:
            data = (json.dumps(command) + "\n").encode()
        try:
            os.write(self.child.cmd_w, data)
        except BrokenPipeError:
            pass  # the child is gone: its status pipe reports it

    def interrupt_child(self) -> None:
        """Tell the node child on its command pipe too, and keep pressing Ctrl-C (every REPEAT_INTERRUPT seconds)
        until the execute ends: vm's SIGINT watchdog and Node's SIGINT listener hand the signal over between them
        around each cell, and a signal landing in that handover is lost."""
        if self.pending is not None:
            self.interrupting = True
            try:
                os.write(self.child.cmd_w, b'{"op": "interrupt"}\n')
            except OSError:
                pass

    def on_status(self) -> None:
        data = os.read(self.child.status_r, 65536)
        if not data:
            return self.on_child_exit()
        self.child.status += data
        *lines, self.child.status = self.child.status.split(b"\n")
        self.drain()
        for line in lines:
            command, self.pending = self.pending, None
            self.interrupting = False
            if self.mode == "bash":
                code, interrupted = (int(x) for x in line.split())
                status = "interrupted" if interrupted else "ok" if code == 0 else "error"
                code = 130 if interrupted else code  # as a shell reports a command stopped by SIGINT
                emit(
                    self.event_fd,
                    {"event": "result", "id": command and command.get("id"), "status": status, "exit_code": code},
                )
            else:
                emit(self.event_fd, json.loads(line))

    def on_child_exit(self) -> None:
        self.drain()
        code = self.child.proc.wait()
        self.child.close()
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        self.interrupting = False
        if self.pending is not None:
            emit(
                self.event_fd,
                {
                    "event": "result",
                    "id": self.pending.get("id"),
                    "status": "exited",
                    "exit_code": code,
                    "error": f"the {self.language} session {how}; a fresh one was started (earlier definitions are gone)",
                },
            )
            self.pending = None
        self.child = Child(self.argv)
        if self.mode != "bash":
            self.read_ready()

    def read_ready(self) -> None:
        """A node child says it is ready before the first command."""
        line = b""
        while not line.endswith(b"\n"):
            chunk = os.read(self.child.status_r, 1)
            if not chunk:
                raise SystemExit(f"the {self.language} worker did not start")
            line += chunk

    def run(self) -> int:
        if self.mode != "bash":
            self.read_ready()
        emit(self.event_fd, {"event": "ready", "language": self.language, "pid": os.getpid()})
        buffered = b""
        while True:
            fds = [self.cmd_fd, self.child.status_r, *self.child.streams, self.wakeup]
            ready = select.select(fds, [], [], REPEAT_INTERRUPT if self.interrupting else None)[0]
            if not ready and self.interrupting and self.pending is not None:
                os.kill(self.child.proc.pid, signal.SIGINT)
                self.interrupt_child()
            for fd in ready:
                if fd == self.wakeup:  # a signal arrived: select again, now with the interrupt's timeout
                    os.read(self.wakeup, 512)
                elif fd == self.cmd_fd:
                    chunk = os.read(self.cmd_fd, 65536)
                    if not chunk:
                        self.child.proc.kill()
                        return 0
                    buffered += chunk
                    *lines, buffered = buffered.split(b"\n")
                    for line in filter(bytes.strip, lines):
                        self.send(json.loads(line))
                elif fd == self.child.status_r:
                    self.on_status()
                    break  # the child may be a new one: select again
                else:
                    self.forward_output(fd)


def main(argv: list[str]) -> int:
    mode, rest, cmd_fd, event_fd = argv[1], argv[2:-2], int(argv[-2]), int(argv[-1])
    for fd in (cmd_fd, event_fd):
        os.set_inheritable(fd, False)
    try:
        os.setpgid(0, 0)  # interrupts go to the worker's process group: one of its own (a session leader has one)
    except OSError:
        pass
    driver = Driver(mode, rest, cmd_fd, event_fd)

    # Interrupts are for the child (the host signals the whole process group); a handler, unlike SIG_IGN, is not
    # inherited by the child. Node's own SIGINT handling races with vm's watchdog and sometimes loses a signal that
    # lands while an async cell starts, so a node child is also told on its command pipe.
    def on_sigint(signum: int, frame: object) -> None:
        if driver.mode == "node":
            driver.interrupt_child()

    signal.signal(signal.SIGINT, on_sigint)
    return driver.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
