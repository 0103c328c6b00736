"""Session workers in a local sandbox container: each one a run of the agent's (its own pid namespace, limits,
seccomp, no capabilities) that lives on, its protocol pipes handed over with the request (SCM_RIGHTS, as a run's
output pipe is) and spoken to from here on the event loop (:class:`~daytona_lsp.core.sessions.channel.Channel`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import sys
from collections.abc import Mapping
from typing import Any

from daytona_lsp.core.environment import CodeLanguage
from daytona_lsp.core.local import launch
from daytona_lsp.core.local.container import Container, ContainerGone
from daytona_lsp.core.local.launch import SANDBOX_SESSIONS_DIR, SESSIONS_DIR
from daytona_lsp.core.local.run import Run
from daytona_lsp.core.local.runtimes import Runtime
from daytona_lsp.core.sessions.channel import Channel
from daytona_lsp.core.sessions.client import WorkerDied, describe_exit
from daytona_lsp.core.sessions.pool import Write
from daytona_lsp.core.sessions.protocol import ExecuteResult

START_TIMEOUT_S = 30.0
_EXIT_WAIT_S = 5.0
_TAIL_BYTES = 2000


def worker_argv(language: CodeLanguage, runtime: Runtime, *, isolated: bool) -> list[str]:
    """The session worker's command line inside the container (the agent's Python drives bash and node)."""
    base = SANDBOX_SESSIONS_DIR if isolated else os.fspath(SESSIONS_DIR)
    if language == "python":
        return [*runtime.argv, f"{base}/python_worker.py", "3", "4"]
    if language == "bash":
        return [sys.executable, f"{base}/driver.py", "bash", "3", "4"]
    node = runtime.argv[0]
    return [sys.executable, f"{base}/driver.py", "node", node, f"{base}/node_worker.js", language, "3", "4"]


def worker_request(
    language: CodeLanguage,
    runtime: Runtime,
    *,
    work: str,
    cwd: str,
    file: str,
    extra: Mapping[str, str],
    limits: dict[str, int],
    seccomp: bytes | None,
    isolated: bool,
) -> dict[str, Any]:
    """The agent's run request (less its id) that starts a session worker: a run's environment, directory, limits
    and seccomp filter. ``work``: the work directory as the container sees it; ``cwd`` relative to it; ``file``: where
    the run's (empty) code file goes (the cells come as commands)."""
    if language == "typescript" and len(runtime.argv) > 1 and not runtime.argv[1].startswith("-"):
        extra = {**extra, "DAYTONA_LSP_TSX": runtime.argv[1]}  # the TypeScript worker finds esbuild next to tsx
    request: dict[str, Any] = {
        "op": "run",
        "argv": worker_argv(language, runtime, isolated=isolated),
        "env": launch.run_env(runtime, work, extra, host_path=None if isolated else os.environ.get("PATH", "")),
        "cwd": posixpath.join(work, cwd) if cwd else work,
        "file": file,
        "limits": limits,
    }
    if seccomp is not None:
        request["seccomp"] = seccomp
    return request


class LocalWorker:
    """A session worker running in ``container`` (a :class:`~daytona_lsp.core.sessions.pool.Worker`)."""

    def __init__(self, language: CodeLanguage, container: Container, run: Run, channel: Channel) -> None:
        self.language = language
        self.container = container
        self._run = run
        self._channel = channel
        self._tail = bytearray()
        self._killed = False
        loop = asyncio.get_running_loop()
        os.set_blocking(run.out_r, False)
        loop.add_reader(run.out_r, self._read_out)

    @classmethod
    async def start(cls, language: CodeLanguage, container: Container, request: dict[str, Any]) -> LocalWorker:
        """Start the worker ``request`` describes (an agent run request); raises WorkerDied or OSError."""
        cmd_r, cmd_w = os.pipe()
        evt_r, evt_w = os.pipe()
        try:
            run = Run.start(container, {**request, "protocol": True}, b"", None, extra_fds=(cmd_r, evt_w))
        except ContainerGone as exc:
            os.close(cmd_w)
            os.close(evt_r)
            raise OSError(str(exc)) from None
        except BaseException:
            os.close(cmd_w)
            os.close(evt_r)
            raise
        finally:
            os.close(cmd_r)
            os.close(evt_w)
        channel = Channel(cmd_w, evt_r)
        worker = cls(language, container, run, channel)
        try:
            await channel.open()
            ready = await asyncio.wait_for(channel.next_event(), START_TIMEOUT_S)
            if ready is None or ready.get("event") != "ready":
                raise WorkerDied(f"the {language} session did not start: {await worker._death()}")
        except asyncio.TimeoutError:
            await worker.kill()
            raise WorkerDied(f"the {language} session did not start within {START_TIMEOUT_S:g} s") from None
        except BaseException:
            await worker.kill()
            raise
        return worker

    @property
    def alive(self) -> bool:
        return not self._killed and self.container.alive and not self._run.ticket.exit.done()

    def _read_out(self) -> None:
        """What the worker itself wrote to its stdout/stderr (not the code's: it captures those): kept for a death
        message."""
        try:
            data = os.read(self._run.out_r, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close_out()
            return
        self._tail += data
        del self._tail[:-_TAIL_BYTES]

    def _close_out(self) -> None:
        if self._run.out_r != -1:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._run.out_r)
            os.close(self._run.out_r)
            self._run.out_r = -1

    async def _exit_code(self) -> int | None:
        try:
            return await asyncio.wait_for(asyncio.shield(self._run.ticket.exit), _EXIT_WAIT_S)
        except (asyncio.TimeoutError, ContainerGone):
            return None

    async def _death(self) -> str:
        """Why the worker is gone, as a sentence's end (its exit and its last words)."""
        code = await self._exit_code()
        if code is None:
            how = "ended" if self.container.alive else "ended with its sandbox container"
        else:
            how = describe_exit(code)
        tail = self._tail.decode("utf-8", "replace").strip()
        return f"the {self.language} session {how}; its state is lost" + (f"\n{tail}" if tail else "")

    async def execute(
        self, code: str, *, filename: str, line_offset: int, value_cap: int, on_output: Write
    ) -> ExecuteResult:
        return await self._channel.execute(
            code,
            filename=filename,
            line_offset=line_offset,
            value_cap=value_cap,
            on_output=on_output,
            died=self._death,
        )

    async def interrupt(self) -> None:
        self.container.interrupt_run(self._run.ticket.id)

    async def kill(self) -> None:
        self._killed = True
        self.container.kill_run(self._run.ticket.id)
        await self._exit_code()
        self._channel.close()
        self._close_out()
