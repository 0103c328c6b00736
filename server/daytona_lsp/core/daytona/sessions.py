"""Session workers in a Daytona sandbox: the same workers as the local sandbox's (``core/sessions``), uploaded once per
sandbox and started as a long-running command of a Daytona session (``process.execute_session_command``, async).

The protocol's fds: the command's stdin becomes the worker's fd 3 (commands, sent with
``process.send_session_command_input``), its stdout its fd 4 (events, read from the command's log stream), and
the worker's own stdin is ``/dev/null`` (a cell's input travels on the protocol: its preset with the execute,
interactive input as ``input`` commands, each one more ``send_session_command_input``). The worker leads a process group of its
own (it makes one at start): interrupting is SIGINT to that group, killing SIGKILL to it (each one ``process.exec`` call).
One run costs one toolbox request (its command); events arrive on the log stream opened when the worker started.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import shlex
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from daytona_lsp.core.daytona.errors import error_result
from daytona_lsp.core.environment import CodeLanguage, InputChannel
from daytona_lsp.core.sessions.channel import EVENT_LIMIT, exchange
from daytona_lsp.core.sessions.client import DRIVER, NODE_WORKER, PYTHON_WORKER, WorkerDied, describe_exit
from daytona_lsp.core.sessions.pool import Write
from daytona_lsp.core.sessions.protocol import Cell, ExecuteResult

if TYPE_CHECKING:
    from daytona import AsyncSandbox

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0
_FILES = (PYTHON_WORKER, DRIVER, NODE_WORKER, DRIVER.parent.parent / "stdin_wait.py")  # driver.py imports stdin_wait
_DIGEST = hashlib.sha256(b"".join(f.read_bytes() for f in _FILES)).hexdigest()[:16]
WORKER_DIR = f"/tmp/daytona-lsp-sessions-{_DIGEST}"
"""Where the workers are uploaded (named after their content: sandboxes and versions never mix them up)."""


def worker_command(language: CodeLanguage, cwd: str | None, env: Mapping[str, str] | None = None) -> str:
    """The session command starting a worker in ``cwd`` with ``env`` added to its environment."""
    d = WORKER_DIR
    if language == "python":
        argv = ["python3", f"{d}/python_worker.py", "3", "4"]
    elif language == "bash":
        argv = ["python3", f"{d}/driver.py", "bash", "3", "4"]
    else:
        argv = ["python3", f"{d}/driver.py", "node", "node", f"{d}/node_worker.js", language, "3", "4"]
    go = f"cd {shlex.quote(cwd)} && " if cwd else ""
    if env:
        argv = ["env", *(f"{name}={value}" for name, value in env.items()), *argv]
    return f"{go}exec {shlex.join(argv)} 3<&0 4>&1 0</dev/null"


class DaytonaWorker:
    """A session worker running in a Daytona sandbox (a :class:`~daytona_lsp.core.sessions.pool.Worker`)."""

    def __init__(self, sandbox: AsyncSandbox, language: CodeLanguage, api_key: str) -> None:
        self.sandbox = sandbox
        self.language = language
        self._api_key = api_key
        self._session_id = f"daytona-lsp-session-{uuid.uuid4().hex}"
        self._cmd_id = ""
        self._pid = 0
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._partial = ""
        self._stderr = ""
        self._logs: asyncio.Task[None] | None = None
        self._next_id = 0
        self._ended = False

    @classmethod
    async def start(
        cls,
        sandbox: AsyncSandbox,
        language: CodeLanguage,
        api_key: str,
        *,
        cwd: str | None,
        uploaded: set[str],
        env: Mapping[str, str] | None = None,
    ) -> DaytonaWorker:
        """Upload the workers (once per sandbox: ``uploaded`` holds the sandbox ids), start one; raises WorkerDied."""
        from daytona import FileUpload, SessionExecuteRequest

        worker = cls(sandbox, language, api_key)
        process = sandbox.process
        try:
            try:
                if sandbox.id not in uploaded:
                    files = [FileUpload(source=f.read_bytes(), destination=f"{WORKER_DIR}/{f.name}") for f in _FILES]
                    await sandbox.fs.upload_files(files)
                    uploaded.add(sandbox.id)
                await process.create_session(worker._session_id)
                command = worker_command(language, cwd, env)
                request = SessionExecuteRequest(command=command, run_async=True, suppress_input_echo=True)
                worker._cmd_id = (await process.execute_session_command(worker._session_id, request)).cmd_id
            except Exception as exc:
                raise WorkerDied(f"the {language} session could not start: {worker._readable(exc)}") from None
            worker._logs = asyncio.ensure_future(worker._follow())
            try:
                ready = await asyncio.wait_for(worker._events.get(), START_TIMEOUT_S)
            except asyncio.TimeoutError:
                ready = None
            if ready is None or ready.get("event") != "ready":
                raise WorkerDied(f"the {language} session did not start: {await worker._death()}")
            worker._pid = int(ready.get("pid") or 0)
            return worker
        except BaseException:  # cancelled too: nothing of it is left running
            uploaded.discard(sandbox.id)  # the workers may be what is missing (a sandbox's /tmp wiped): again next time
            await worker.kill()
            raise

    def _readable(self, exc: BaseException) -> str:
        return error_result(exc, api_key=self._api_key).output.strip()

    async def _follow(self) -> None:
        """The command's log stream for as long as the worker lives: stdout is events, stderr its own last words."""

        async def on_stdout(text: str) -> None:
            self._partial += text
            *lines, self._partial = self._partial.split("\n")
            if len(self._partial) > EVENT_LIMIT:
                self._partial = ""
            for line in filter(str.strip, lines):
                try:
                    self._events.put_nowait(json.loads(line))
                except ValueError:
                    self._events.put_nowait({"event": "output", "stream": "stderr", "text": line + "\n"})

        async def on_stderr(text: str) -> None:
            self._stderr = (self._stderr + text)[-2000:]

        try:
            await self.sandbox.process.get_session_command_logs_async(
                self._session_id, self._cmd_id, on_stdout, on_stderr
            )
        except Exception as exc:  # noqa: BLE001 - the stream broke: the worker is unreachable from now on
            log.info("daytona-lsp: a session's log stream ended: %s", type(exc).__name__)
        finally:
            self._ended = True
            self._events.put_nowait(None)

    @property
    def alive(self) -> bool:
        return not self._ended

    async def _death(self) -> str:
        code = None
        with contextlib.suppress(Exception):
            if self._cmd_id:
                code = (await self.sandbox.process.get_session_command(self._session_id, self._cmd_id)).exit_code
        how = "ended" if code is None else describe_exit(code)
        tail = self._stderr.strip()
        return f"the {self.language} session {how}; its state is lost" + (f"\n{tail}" if tail else "")

    async def execute(self, cell: Cell, *, on_output: Write, input: InputChannel | None = None) -> ExecuteResult:
        async def send(line: bytes) -> None:
            try:
                await self.sandbox.process.send_session_command_input(self._session_id, self._cmd_id, line.decode())
            except Exception as exc:
                raise OSError(f"the {self.language} session is unreachable: {self._readable(exc)}") from None

        async def next_event() -> dict[str, Any] | None:
            event = await self._events.get()
            if event is None:
                self._events.put_nowait(None)  # for whoever asks next
            return event

        self._next_id += 1
        return await exchange(self._next_id, cell, send, next_event, on_output, self._death, input)

    async def _signal(self, name: str) -> None:
        if self._pid > 0:
            await self.sandbox.process.exec(f"kill -{name} -- -{self._pid}")

    async def interrupt(self) -> None:
        await self._signal("INT")

    async def kill(self) -> None:
        """Kill the worker's process group and delete its session (which ends its command)."""
        with contextlib.suppress(Exception):
            await self._signal("KILL")
        with contextlib.suppress(Exception):
            await self.sandbox.process.delete_session(self._session_id)
        if self._logs is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._logs), 5)
            self._logs.cancel()
        self._ended = True
