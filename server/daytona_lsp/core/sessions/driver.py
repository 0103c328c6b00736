"""Speaks the session protocol (``protocol.py``) for a persistent interpreter that cannot capture its own fds 1 and 2.

Standalone (standard library, and ``stdin_wait.py`` found next to this file or in its parent directory), copied into
the sandbox next to ``node_worker.js``::

    python3 driver.py bash CMD_FD EVENT_FD
    python3 driver.py node NODE node_worker.js javascript|typescript CMD_FD EVENT_FD

The driver starts the interpreter (the *child*) with pipes for its stdout and stderr, commands on the child's fd 3
and answers on its fd 4; the child's own stdin is the driver's. When the child answers, everything it wrote before is
already in the pipes (its writes are synchronous), so the driver forwards that output first and then the answer:
output of an execute always precedes its result (and its ``input_request`` events). A child that exits (``exit`` in
bash, ``process.exit()``, killed) is started anew and the result of the execute says so. No write to a pipe ever
blocks the driver (:class:`Outbox`).

A cell's stdin. Node: the protocol's ``input`` commands go on to the node child, which feeds the cell's
``process.stdin`` itself (``node_worker.js``); the commands of one read go on in one write, so that input sent with
its execute is there when the cell starts (sent apart, the code could read first and ask for it). bash: each cell
reads a pipe of the driver's of its own (:class:`CellStdin`), which the loop opens as ``/proc/DRIVER/fd/N`` for the
sourced cell (so a process of the cell that reads it shows ``pipe:[inode]`` in ``/proc``, what :mod:`stdin_wait`
looks for) and says so on fd 4 (a line ``o``); the driver then closes its read end, and EOF comes when it closes the
write end. The preset is written first.
While the cell runs and its output is idle, the driver looks (2 ms, doubling to 50 ms) for a process of the cell
asleep reading that pipe with nothing in it: not interactive, it closes the pipe (EOF, and the result says
``stdin_closed``); interactive, it says ``input_request`` once (again after more input came).
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
import time

if __name__ == "__main__":  # (the host imports this module for shown_path: it needs none of this)
    # stdin_wait.py is next to this file on Daytona, in its parent directory in the source tree and locally (/agent)
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from stdin_wait import anyone_waits, unread_bytes

BASH_CELL_PATH = "/dev/fd/5"
"""Where the bash loop sources each cell from: the file bash's own error messages name (``/dev/fd/5: line 3: …``), so
the ``CodeRunResult.source_path`` of a bash cell (errors map to the buffer's lines through it)."""


def shown_path(language: str, filename: str) -> str:
    """The file a session cell's error messages name: ``filename`` (the Python and Node workers compile the cell
    under it), :data:`BASH_CELL_PATH` for bash."""
    return BASH_CELL_PATH if language == "bash" else filename


# Each cell arrives on fd 3 as "STDIN_PATH\nSET_ARGS\nCODE\0": the cell is sourced with that path as its stdin,
# after SET_ARGS (`set -- $'\x61' …`: its arguments, every byte hex-escaped) gave it its "$@".
BASH_LOOP = r"""
__dl_int=
trap '__dl_int=1' INT
__dl_return() { return 2; }
__dl_opened() { printf 'o\n' >&4; }
shopt -s extdebug
# Once interrupted, the DEBUG trap makes every further command of the cell a `return` (extdebug: status 2 in a
# sourced file or function), which unwinds the cell; the loop's own __dl_* commands still run. The cell is sourced,
# not eval'ed in a function, so its variables and `declare`s are global as at a prompt.
trap '[[ -z $__dl_int || $BASH_COMMAND == __dl_* ]] || __dl_return' DEBUG
while :; do
  __dl_int=
  IFS= read -r -d '' -u 3 __dl_cell || { [[ -n $__dl_int ]] && continue; exit 0; }
  __dl_in=${__dl_cell%%$'\n'*}
  __dl_cell=${__dl_cell#*$'\n'}
  eval "${__dl_cell%%$'\n'*}"
  { __dl_opened; . __DL_CELL_PATH__ 5<<<"${__dl_cell#*$'\n'}"; } <"$__dl_in"
  __dl_st=$?
  __dl_was=${__dl_int:-0}
  __dl_int=
  printf '%s %s\n' "$__dl_st" "$__dl_was" >&4
done
""".replace("__DL_CELL_PATH__", BASH_CELL_PATH)

REPEAT_INTERRUPT = 0.25
"""Seconds between the SIGINTs a node child gets while an interrupted execute has not ended (see interrupt_child)."""
FIRST_POLL_S = 0.002
MAX_POLL_S = 0.05
"""How often a bash cell's stdin is looked at while its output is idle: first after 2 ms, doubling up to 50 ms."""


def set_args(args: object) -> str:
    """The bash command giving a cell its arguments (``"$@"``): each one ``$'\\xNN…'``, so no character of it is
    special (a newline, a quote, a ``$``); NUL, which no argument can hold, is dropped."""
    words = ["set", "--"]
    for arg in args if isinstance(args, list) else []:
        data = str(arg).encode("utf-8", "surrogateescape").replace(b"\0", b"")
        words.append("$'" + "".join(f"\\x{byte:02x}" for byte in data) + "'")
    return " ".join(words)


def emit(fd: int, message: dict) -> None:
    data = (json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8", "surrogateescape")
    while data:
        data = data[os.write(fd, data) :]


class Outbox:
    """A pipe's write end that never blocks the driver: what does not fit now is written once the pipe takes it
    (:meth:`flush` when ``select`` says it is writable); dropped once the reader is gone."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.data = bytearray()
        os.set_blocking(fd, False)

    def write(self, data: bytes) -> None:
        self.queue(data)
        self.flush()

    def queue(self, data: bytes) -> None:
        """Written with what is queued with it, at the next :meth:`flush`."""
        self.data += data

    def flush(self) -> None:
        try:
            while self.data:
                del self.data[: os.write(self.fd, self.data)]
        except BlockingIOError:
            pass
        except OSError:  # the reader is gone (the child exited, the cell closed its stdin)
            self.data.clear()

    def close(self) -> None:
        if self.fd != -1:
            os.close(self.fd)
            self.fd = -1
            self.data.clear()


class CellStdin:
    """A bash cell's stdin: a pipe, the preset in it first. The read end is the driver's until bash has opened it
    (:meth:`opened`: its ``/proc`` path exists as long as that); closing the write end is the cell's EOF."""

    def __init__(self, command: dict) -> None:
        self.id = command.get("id")
        self.interactive = command.get("interactive") is True
        read_fd, write_fd = os.pipe()
        self.read_fd = read_fd
        self.path = f"/proc/{os.getpid()}/fd/{read_fd}"
        self.inode = os.fstat(write_fd).st_ino
        self.pipe = Outbox(write_fd)
        self.eof = False
        """EOF was sent: the pipe closes once what is in it is written."""
        self.requested = False
        """An input_request was sent for the present wait (no input since)."""
        self.closed_read = False
        self.pipe.write(str(command.get("stdin") or "").encode("utf-8", "surrogateescape"))

    @property
    def watched(self) -> bool:
        """Whether a wait of the cell's code is to be looked for now."""
        return self.read_fd == -1 and self.pipe.fd != -1 and not self.requested

    def opened(self) -> None:
        if self.read_fd != -1:
            os.close(self.read_fd)
            self.read_fd = -1

    def feed(self, text: str, eof: bool) -> None:
        if self.pipe.fd == -1 or self.eof:
            return
        self.pipe.write(text.encode("utf-8", "surrogateescape"))
        self.requested = False
        self.eof = eof
        self.flushed()

    def end(self) -> None:
        """EOF now: what was not written yet is dropped (the read end stays until bash has opened it)."""
        self.pipe.data.clear()
        self.eof = True
        self.flushed()

    def flushed(self) -> None:
        if self.eof and not self.pipe.data:
            self.pipe.close()

    def waits(self) -> bool:
        """Whether a process of the cell is asleep reading the pipe with nothing in it."""
        if self.pipe.data or unread_bytes(self.pipe.fd) > 0:
            return False
        return anyone_waits(os.getpid(), self.inode)

    def close(self) -> None:
        self.opened()
        self.pipe.close()


class Child:
    def __init__(self, argv: list[str]) -> None:
        cmd_r, cmd_w = os.pipe()
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
        self.commands = Outbox(cmd_w)
        self.streams = {}
        for fd, name in ((out_r, "stdout"), (err_r, "stderr")):
            os.set_blocking(fd, False)
            self.streams[fd] = (name, codecs.getincrementaldecoder("utf-8")("replace"))
        self.status = b""

    def close(self) -> None:
        self.commands.close()
        for fd in (self.status_r, *self.streams):
            os.close(fd)


class Driver:
    def __init__(self, mode: str, rest: list[str], cmd_fd: int, event_fd: int) -> None:
        self.mode = mode
        self.argv = ["bash", "--norc", "--noprofile", "-c", BASH_LOOP, "bash"] if mode == "bash" else rest
        self.language = "bash" if mode == "bash" else rest[-1]
        self.cmd_fd, self.event_fd = cmd_fd, event_fd
        self.pending: dict | None = None
        self.cell: CellStdin | None = None
        self.poll_at, self.poll_interval = 0.0, FIRST_POLL_S
        self.interrupting, self.interrupt_at = False, 0.0
        self.sigint = False
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
            self.activity()
        return bool(data)

    def drain(self) -> None:
        for fd in self.child.streams:
            while self.forward_output(fd):
                pass

    def activity(self) -> None:
        """Output or input: the cell's stdin is looked at again once the output has been idle a moment."""
        self.poll_interval = FIRST_POLL_S
        self.poll_at = time.monotonic() + FIRST_POLL_S

    def send(self, command: dict) -> None:
        op = command.get("op")
        if op == "input":
            if self.pending is None or command.get("id") != self.pending.get("id"):
                return  # for a cell that is not running: ignored
            if self.cell is not None:
                self.cell.feed(str(command.get("text") or ""), command.get("eof") is True)
                self.activity()
            elif self.mode != "bash":
                self.child.commands.queue((json.dumps(command) + "\n").encode())
            return
        if op != "execute":
            emit(self.event_fd, {"event": "result", "id": command.get("id"), "status": "error", "error": "unknown op"})
            return
        self.pending = command
        if self.mode == "bash":
            if self.cell is not None:  # (the host sends one execute at a time)
                self.cell.close()
            self.cell = CellStdin(command)
            code = command["code"].replace("\0", "")
            data = f"{self.cell.path}\n{set_args(command.get('args'))}\n{code}".encode("utf-8", "surrogateescape") + b"\0"
        else:
            data = (json.dumps(command) + "\n").encode()
        self.child.commands.queue(data)

    def interrupt_child(self) -> None:
        """Tell the node child on its command pipe too, and keep pressing Ctrl-C (every REPEAT_INTERRUPT seconds)
        until the execute ends: vm's SIGINT watchdog and Node's SIGINT listener hand the signal over between them
        around each cell, and a signal landing in that handover is lost."""
        if self.pending is not None:
            self.interrupting = True
            self.interrupt_at = time.monotonic() + REPEAT_INTERRUPT
            self.child.commands.write(b'{"op": "interrupt"}\n')

    def on_interrupt(self) -> None:
        """The worker's process group got a SIGINT. bash's ``read`` runs the INT trap and reads on: the cell's stdin
        is closed, so that a cell waiting for input ends (the trap unwinds the rest of it)."""
        self.sigint = False
        if self.cell is not None:
            self.cell.end()
        elif self.mode != "bash":
            self.interrupt_child()

    def on_status(self) -> None:
        data = os.read(self.child.status_r, 65536)
        if not data:
            return self.on_child_exit()
        self.child.status += data
        *lines, self.child.status = self.child.status.split(b"\n")
        self.drain()
        for line in lines:
            if self.mode == "bash":
                self.on_bash_line(line)
                continue
            event = json.loads(line)
            if event.get("event") != "input_request":
                self.pending = None
                self.interrupting = False
            emit(self.event_fd, event)

    def on_bash_line(self, line: bytes) -> None:
        if line == b"o":  # bash has opened the cell's stdin
            if self.cell is not None:
                self.cell.opened()
                self.activity()
            return
        command, self.pending = self.pending, None
        self.interrupting = False
        code, interrupted = (int(x) for x in line.split())
        status = "interrupted" if interrupted else "ok" if code == 0 else "error"
        code = 130 if interrupted else code  # as a shell reports a command stopped by SIGINT
        result = {"event": "result", "id": command and command.get("id"), "status": status, "exit_code": code}
        if self.cell is not None:
            if self.cell.closed_read:
                result["stdin_closed"] = True
            self.cell.close()
            self.cell = None
        emit(self.event_fd, result)

    def look_at_stdin(self) -> None:
        """A poll of the bash cell's stdin (its output has been idle): a wait is EOF or an input_request."""
        cell = self.cell
        assert cell is not None
        if not cell.waits():
            self.poll_interval = min(self.poll_interval * 2, MAX_POLL_S)
            self.poll_at = time.monotonic() + self.poll_interval
        elif not cell.interactive:
            cell.closed_read = True
            cell.end()
        else:
            self.drain()  # the prompt, all output so far, goes first
            cell.requested = True
            emit(self.event_fd, {"event": "input_request", "id": cell.id})

    def on_child_exit(self) -> None:
        self.drain()
        code = self.child.proc.wait()
        self.child.close()
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        self.interrupting = False
        if self.cell is not None:
            self.cell.close()
            self.cell = None
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

    def timeout(self) -> float | None:
        """How long select may wait: until the next look at a bash cell's stdin, or the next repeated interrupt."""
        due = [self.poll_at] if self.cell is not None and self.cell.watched else []
        due += [self.interrupt_at] if self.interrupting else []
        return max(min(due) - time.monotonic(), 0.0) if due else None

    def on_due(self) -> None:
        """What is due now: a look at the bash cell's stdin, a repeated interrupt."""
        now = time.monotonic()
        if self.cell is not None and self.cell.watched and now >= self.poll_at:
            self.look_at_stdin()
        if self.interrupting and self.pending is not None and now >= self.interrupt_at:
            os.kill(self.child.proc.pid, signal.SIGINT)
            self.interrupt_child()

    def run(self) -> int:
        if self.mode != "bash":
            self.read_ready()
        emit(self.event_fd, {"event": "ready", "language": self.language, "pid": os.getpid()})
        buffered = b""
        while True:
            fds = [self.cmd_fd, self.child.status_r, *self.child.streams, self.wakeup]
            outboxes = [box for box in (self.child.commands, self.cell and self.cell.pipe) if box and box.data]
            ready, writable, _ = select.select(fds, [box.fd for box in outboxes], [], self.timeout())
            for box in outboxes:
                if box.fd in writable:
                    box.flush()
            if self.cell is not None:
                self.cell.flushed()
            self.on_due()
            for fd in ready:
                if fd == self.wakeup:  # a signal arrived: select again, now with the interrupt's timeout
                    os.read(self.wakeup, 512)
                    if self.sigint:
                        self.on_interrupt()
                elif fd == self.cmd_fd:
                    chunk = os.read(self.cmd_fd, 65536)
                    if not chunk:
                        self.child.proc.kill()
                        return 0
                    buffered += chunk
                    *lines, buffered = buffered.split(b"\n")
                    for line in filter(bytes.strip, lines):
                        self.send(json.loads(line))
                    self.child.commands.flush()  # in one write: input sent with an execute is there when it starts
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
    def on_sigint(signum: int, frame: object) -> None:  # the loop acts on it (a write here could split another)
        driver.sigint = True

    signal.signal(signal.SIGINT, on_sigint)
    return driver.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
