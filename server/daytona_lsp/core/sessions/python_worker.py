"""A persistent Python interpreter speaking the session protocol (see ``protocol.py``).

Standalone on purpose (standard library only, imports nothing of daytona_lsp): it is copied into the sandbox and run
as ``python3 python_worker.py [CMD_FD EVENT_FD]``. Commands are read from CMD_FD, events written to EVENT_FD. The
worker's own fds 1 and 2 are replaced by pipes it reads itself, so output of the code — also of C extensions and of
child processes it waits for — becomes ``output`` events that all precede the ``result``.

During a cell ``sys.stdin`` is the cell's own input (:class:`_CellStdin`: its preset, then ``input`` commands read
from CMD_FD while the code waits, as a text stream over a buffered raw stream, so ``input()``, ``readline``,
``read``, iteration and ``sys.stdin.buffer`` behave as on a pipe; it has no ``fileno()``). The worker's real fd 0
is not the cells' input: ``os.read(0)`` and child processes read whatever the host gave the worker (``/dev/null``).
"""

from __future__ import annotations

import ast
import codecs
import io
import json
import linecache
import os
import select
import signal
import sys
import threading
import traceback
import types

_emit_lock = threading.Lock()
_drain_lock = threading.Lock()
_events = -1


def emit(message: dict) -> None:
    data = (json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8", "surrogateescape")
    with _emit_lock:
        view = memoryview(data)
        while view:
            view = view[os.write(_events, view) :]


class _Capture:
    """fds 1 and 2 become pipes; a thread turns what arrives into output events, :meth:`drain` flushes the rest."""

    def __init__(self) -> None:
        self.streams: dict[int, tuple[str, codecs.IncrementalDecoder]] = {}
        for fd, name in ((1, "stdout"), (2, "stderr")):
            r, w = os.pipe()
            os.dup2(w, fd)
            os.close(w)
            os.set_blocking(r, False)
            self.streams[r] = (name, codecs.getincrementaldecoder("utf-8")("replace"))
        sys.stdout, sys.stderr = (
            # as `python -u`: unbuffered, so output streams as it is produced
            io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), "utf-8", "backslashreplace", write_through=True)
            for fd in (1, 2)
        )
        threading.Thread(target=self._pump, name="output", daemon=True).start()

    def _read(self, fd: int) -> bool:
        """Forward what ``fd`` holds now; False when it is empty. Call with ``_drain_lock`` held."""
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return False
        name, decoder = self.streams[fd]
        text = decoder.decode(data)
        if text:
            emit({"event": "output", "stream": name, "text": text})
        return bool(data)

    def _pump(self) -> None:
        poller = select.poll()
        for fd in self.streams:
            poller.register(fd, select.POLLIN)
        while True:
            for fd, _ in poller.poll():
                with _drain_lock:
                    self._read(fd)

    def drain(self) -> None:
        """Everything written to fds 1 and 2 so far is emitted when this returns."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        with _drain_lock:
            for fd in self.streams:
                while self._read(fd):
                    pass


class _Interrupts:
    """SIGINT raises KeyboardInterrupt only while code runs; between executes it is ignored."""

    def __init__(self) -> None:
        self.running = False
        signal.signal(signal.SIGINT, self._handler)

    def _handler(self, signum, frame) -> None:
        if self.running:
            raise KeyboardInterrupt


class _Commands:
    """The command descriptor, read a line at a time. While a cell waits for input the worker reads it from inside
    the cell's code: what is not that cell's input is kept for the main loop (stray input is dropped)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lines: list[bytearray] = []
        self.held: list[dict] = []
        self._partial = bytearray()
        self.ended = False

    def _fill(self, block: bool) -> bool:
        """Read what the host sent (waiting for it when ``block``); False when nothing came (or the host is gone)."""
        if self.ended or (not block and not select.select([self.fd], [], [], 0)[0]):
            return False
        chunk = os.read(self.fd, 1 << 20)  # a SIGINT while the code waits here raises KeyboardInterrupt (PEP 475)
        if not chunk:
            self.ended = True
            return False
        self._partial += chunk
        if b"\n" in chunk:  # (a long line, a large preset, is split once it is whole)
            *lines, rest = self._partial.split(b"\n")
            self._partial = bytearray(rest)
            self.lines += [line for line in lines if line.strip()]
        return True

    def _parse(self) -> dict:
        line = self.lines.pop(0)
        try:
            command = json.loads(line)
        except ValueError as e:
            return {"op": "bad", "error": f"bad command: {e}"}
        return command if isinstance(command, dict) else {"op": "bad", "error": "bad command: not an object"}

    def next(self) -> dict | None:
        """The next command for the main loop (``None``: the host is gone)."""
        while not self.held and not self.lines:
            if not self._fill(block=True):
                return None
        return self.held.pop(0) if self.held else self._parse()

    def input_for(self, cell: object, block: bool) -> dict | None:
        """The next ``input`` command of cell ``cell`` (``None``: none yet without ``block``, or the host is gone)."""
        while True:
            while self.lines:
                command = self._parse()
                if command.get("op") == "input":
                    if command.get("id") == cell:
                        return command
                else:
                    self.held.append(command)
            if not self._fill(block):
                return None


class _CellStdin(io.RawIOBase):
    """One cell's stdin: its preset, then (``interactive``) what ``input`` commands bring, each wait announced by an
    ``input_request`` once the output so far is out; EOF at the end of the preset otherwise (``closed_read``)."""

    name = "<stdin>"

    def __init__(self, worker: Worker, cell: object, preset: str, interactive: bool) -> None:
        super().__init__()
        self._worker = worker
        self._cell = cell
        self._pending = bytearray(preset.encode("utf-8", "surrogateescape"))
        self._interactive = self._more = interactive
        self._ended = False
        self._lock = threading.Lock()
        self.closed_read = False
        """The code read with nothing left and no more to come (not interactive): the host says stdin is closed."""

    def readable(self) -> bool:
        return True

    def finish(self) -> None:
        """The cell has ended: whatever still holds this stream reads EOF (unread input is dropped)."""
        self._more = False
        self._ended = True
        self._pending.clear()

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        with self._lock:
            while not self._pending:
                if not self._more:
                    self.closed_read = self.closed_read or not (self._interactive or self._ended)
                    return 0
                commands = self._worker.commands
                command = commands.input_for(self._cell, block=False)
                if command is None and not commands.ended:
                    self._worker.capture.drain()  # the prompt (all output so far) precedes the request
                    emit({"event": "input_request", "id": self._cell})
                    command = commands.input_for(self._cell, block=True)
                if command is None:  # the host is gone
                    self._more = False
                    continue
                self._pending += str(command.get("text") or "").encode("utf-8", "surrogateescape")
                if command.get("eof"):
                    self._more = False
            n = min(len(b), len(self._pending))
            b[:n] = self._pending[:n]
            del self._pending[:n]
            return n


class Worker:
    def __init__(self, commands: _Commands) -> None:
        self.commands = commands
        self.script = ""
        """The document's file (``sys.argv[0]`` of every cell), ``""`` without one."""
        self.main = types.ModuleType("__main__")
        self.main.__dict__["__builtins__"] = __builtins__
        sys.modules["__main__"] = self.main
        self.capture = _Capture()
        self.interrupts = _Interrupts()
        self.sources: dict[str, list[str]] = {}
        self.compiled: dict[tuple[str, str, int], tuple[types.CodeType, types.CodeType | None]] = {}

    def _remember_source(self, filename: str, code: str, line_offset: int) -> None:
        """linecache shows the buffer's lines (not the file on disk, which may differ from the unsaved buffer)."""
        lines = self.sources.setdefault(filename, [])
        cell = code.splitlines(keepends=True)
        if cell and not cell[-1].endswith("\n"):
            cell[-1] += "\n"
        if len(lines) < line_offset + len(cell):
            lines.extend("\n" for _ in range(line_offset + len(cell) - len(lines)))
        lines[line_offset : line_offset + len(cell)] = cell
        linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)

    def _compile(self, code: str, filename: str, offset: int) -> tuple[types.CodeType, types.CodeType | None]:
        """The cell's statements and its trailing expression (if any), compiled; a re-run cell is not compiled again."""
        key = (code, filename, offset)
        compiled = self.compiled.get(key)
        if compiled is None:
            tree = ast.parse("\n" * offset + code, filename, "exec")  # line numbers are the buffer's
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            assert last is None or isinstance(last, ast.Expr)
            compiled = (
                compile(tree, filename, "exec"),
                None if last is None else compile(ast.Expression(last.value), filename, "eval"),
            )
            if len(self.compiled) >= 256:
                self.compiled.pop(next(iter(self.compiled)))
            self.compiled[key] = compiled
        return compiled

    def execute(self, command: dict) -> dict:
        code = command["code"]
        filename = command.get("filename") or "<cell>"
        offset = int(command.get("line_offset") or 0)
        cap = int(command.get("value_cap") or 2000)
        result: dict = {"event": "result", "id": command.get("id"), "status": "ok"}
        sys.argv = [self.script, *map(str, command.get("args") or ())]  # as `python FILE ARG...` sets them
        stdin = _CellStdin(self, command.get("id"), str(command.get("stdin") or ""), command.get("interactive") is True)
        sys.stdin = io.TextIOWrapper(io.BufferedReader(stdin), "utf-8", "surrogateescape")
        try:
            self.interrupts.running = True
            try:
                self._remember_source(filename, code, offset)
                body, last = self._compile(code, filename, offset)
                namespace = self.main.__dict__
                exec(body, namespace)
                if last is not None:
                    value = eval(last, namespace)
                    if value is not None:
                        namespace["_"] = value
                        text = repr(value)
                        result["value"] = text if len(text) <= cap else text[: max(cap - 1, 0)] + "…"
            finally:
                self.interrupts.running = False
        except KeyboardInterrupt:
            result["status"] = "interrupted"
            result["error"] = self._format(sys.exc_info())
        except SystemExit as e:
            result["status"] = "exited"
            if e.code is None or isinstance(e.code, int):
                result["exit_code"] = e.code or 0
            else:
                result["exit_code"] = 1
                result["error"] = str(e.code)
        except SyntaxError as e:
            result["status"] = "error"
            result["error"] = "".join(traceback.format_exception_only(type(e), e))
        except BaseException:
            result["status"] = "error"
            result["error"] = self._format(sys.exc_info())
        stdin.finish()
        sys.stdin = sys.__stdin__
        if stdin.closed_read:
            result["stdin_closed"] = True
        self.capture.drain()
        return result

    @staticmethod
    def _format(info) -> str:
        """The traceback without this worker's own frames (its exec, its SIGINT handler)."""
        etype, value, tb = info
        shown = traceback.TracebackException(etype, value, tb)
        shown.stack = traceback.StackSummary.from_list([f for f in shown.stack if f.filename != __file__])
        return "".join(shown.format())


def _lead_a_process_group() -> None:
    """Interrupts go to the worker's process group: make it one of its own (a session leader already is)."""
    try:
        os.setpgid(0, 0)
    except OSError:
        pass


def main(argv: list[str]) -> int:
    global _events
    cmd_fd, _events = (int(argv[1]), int(argv[2])) if len(argv) > 2 else (3, 4)
    os.set_inheritable(_events, False)
    os.set_inheritable(cmd_fd, False)
    _lead_a_process_group()
    script = os.environ.pop("DAYTONA_LSP_SESSION_FILE", "")  # client.SESSION_FILE_ENV: the document's file
    sys.argv = [script]
    # as `python FILE` (a document's session) or `python -c`: where imports of the user's modules come from
    sys.path[0] = os.path.dirname(script) if script else os.getcwd()
    worker = Worker(_Commands(cmd_fd))
    worker.script = script
    if script:
        worker.main.__dict__["__file__"] = script
    emit({"event": "ready", "language": "python", "pid": os.getpid()})
    while True:
        command = worker.commands.next()
        if command is None:
            return 0
        op = command.get("op")
        if op == "execute":
            emit(worker.execute(command))
        elif op == "bad":
            emit({"event": "result", "id": None, "status": "error", "error": command["error"]})
        elif op != "input":  # input for a cell that has ended: dropped
            emit({"event": "result", "id": command.get("id"), "status": "error", "error": "unknown op"})


if __name__ == "__main__":
    sys.exit(main(sys.argv))
