"""Host side of a session: start a worker as a subprocess and speak the protocol (``protocol.py``) to it.

Blocking by design (the caller runs it in a thread, never on an event loop): :meth:`SessionWorker.execute` sends one
command and reads events until its result; :meth:`SessionWorker.interrupt` may be called from another thread.
The local agent and the Daytona backend start the same worker files inside their sandboxes; this client is what
they (and the tests) use to talk to one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ..environment import CodeLanguage, OutputStream
from .protocol import DEFAULT_VALUE_CAP, Cell, ExecuteResult, execute_command, input_command, last_line, result_of

HERE = Path(__file__).resolve().parent
PYTHON_WORKER = HERE / "python_worker.py"
DRIVER = HERE / "driver.py"
NODE_WORKER = HERE / "node_worker.js"
SESSION_FILE_ENV = "DAYTONA_LSP_SESSION_FILE"
"""The environment variable naming the document a Python or Node worker runs the cells of (a file's real path, as a
fresh run of it sees it: ``__file__``, ``sys.path[0]``, ``require``); the worker removes it before any code runs."""


class WorkerDied(RuntimeError):
    """The worker process is gone (killed, crashed, ``os._exit``); its state is lost and a new one must be started."""


def worker_argv(language: CodeLanguage, *, python: str = sys.executable, node: str = "node") -> list[str]:
    """The command line that starts a worker for ``language`` (its files are those next to this module)."""
    if language == "python":
        return [python, os.fspath(PYTHON_WORKER)]
    if language == "bash":
        return [python, os.fspath(DRIVER), "bash"]
    return [python, os.fspath(DRIVER), "node", node, os.fspath(NODE_WORKER), language]


def describe_exit(code: int | None) -> str:
    """How a worker ended, from its exit status (negative, or a shell's 128 + N: killed by signal N)."""
    if code is None:
        return "closed its event channel"
    signum = -code if code < 0 else code - 128 if code > 128 else 0
    if signum:
        try:
            return f"was killed by {signal.Signals(signum).name}"
        except ValueError:
            return f"was killed by signal {signum}"
    return f"exited with status {code}"


class SessionWorker:
    """One running worker. ``argv`` is from :func:`worker_argv`; ``stdin`` is the worker's own fd 0 (what child
    processes of a Python cell read; a cell's input is :meth:`execute`'s ``stdin`` / ``answer``)."""

    def __init__(
        self,
        language: CodeLanguage,
        argv: Sequence[str] | None = None,
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        stdin: int | IO[Any] | None = subprocess.DEVNULL,
    ) -> None:
        self.language = language
        cmd_r, cmd_w = os.pipe()
        evt_r, evt_w = os.pipe()
        self._stderr = tempfile.TemporaryFile()
        try:
            self._proc = subprocess.Popen(
                [*(argv or worker_argv(language)), str(cmd_r), str(evt_w)],
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                pass_fds=(cmd_r, evt_w),
                start_new_session=True,  # interrupt and kill reach the whole tree, as Ctrl-C in a terminal
            )
        finally:
            os.close(cmd_r)
            os.close(evt_w)
        self._commands = os.fdopen(cmd_w, "wb", buffering=0)
        self._events = os.fdopen(evt_r, "rb")
        self._lock = threading.Lock()
        self._next_id = 0
        self._dead: str | None = None
        ready = self._read_event()
        if ready.get("event") != "ready":
            raise WorkerDied(f"the {language} session worker did not start: {ready}")
        self.pid: int = self._proc.pid

    @property
    def alive(self) -> bool:
        return self._dead is None and self._proc.poll() is None

    def _died(self) -> WorkerDied:
        if self._dead is None:
            try:
                code = self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
            self._stderr.seek(0)
            tail = self._stderr.read()[-2000:].decode("utf-8", "replace").strip()
            self._dead = f"the {self.language} session worker {describe_exit(code)}; its state is lost" + (
                f"\n{tail}" if tail else ""
            )
        return WorkerDied(self._dead)

    def _read_event(self) -> dict[str, Any]:
        line = self._events.readline()
        if not line.endswith(b"\n"):
            raise self._died()
        event: dict[str, Any] = json.loads(line)
        return event

    def execute(
        self,
        code: str,
        *,
        filename: str | None = None,
        line_offset: int = 0,
        value_cap: int = DEFAULT_VALUE_CAP,
        on_output: Callable[[OutputStream, str], object] | None = None,
        args: Sequence[str] = (),
        stdin: str = "",
        answer: Callable[[str], str | None] | None = None,
    ) -> ExecuteResult:
        """Run ``code`` in the session; output goes to ``on_output`` as produced. ``args``: its program arguments
        (``sys.argv[1:]``…); ``stdin``: the cell's preset
        input; ``answer(prompt)``: called when the code waits for more (the prompt is the partial last output line),
        returns the input to send (``None``: EOF); without it the code reads EOF after the preset. Raises
        :class:`WorkerDied`."""
        with self._lock:
            if self._dead is not None:
                raise WorkerDied(self._dead)
            self._next_id += 1
            command_id = self._next_id
            partial = ""
            cell = Cell(code, filename, line_offset, value_cap, tuple(args), stdin)
            self._send(execute_command(command_id, cell, interactive=answer is not None))
            while True:
                event = self._read_event()
                kind = event.get("event")
                if kind == "output":
                    partial = last_line(partial, event["text"])
                    if on_output is not None:
                        on_output(event["stream"], event["text"])
                elif kind == "input_request" and event.get("id") == command_id and answer is not None:
                    text = answer(partial)
                    self._send(input_command(command_id, text or "", eof=text is None))
                elif kind == "result" and event.get("id") == command_id:
                    return result_of(event)

    def _send(self, line: bytes) -> None:
        try:
            self._commands.write(line)
        except BrokenPipeError:
            raise self._died() from None

    def interrupt(self) -> None:
        """SIGINT to the worker's process group: the running code stops, the state survives."""
        self._signal(signal.SIGINT)

    def _signal(self, signum: int) -> None:
        if self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, signum)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        """Kill the worker and everything it started."""
        self._signal(signal.SIGKILL)
        self._proc.wait()
        for stream in (self._commands, self._events, self._stderr):
            stream.close()

    def __enter__(self) -> SessionWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
