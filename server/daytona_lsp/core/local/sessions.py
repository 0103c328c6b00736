"""Session workers in a local sandbox container: each one a run of the agent's (its own pid namespace, limits,
seccomp, no capabilities) that lives on, its protocol pipes handed over with the request (SCM_RIGHTS, as a run's
output pipe is) and spoken to from here on the event loop (:class:`~daytona_lsp.core.sessions.channel.Channel`).
:func:`run_session` is the session path of ``LocalCodeEnvironment``: a cell run in its session's worker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from daytona_lsp.core.environment import CodeLanguage, CodeRunResult, InputChannel, OutputStream
from daytona_lsp.core.local import launch
from daytona_lsp.core.local.container import Container, ContainerGone
from daytona_lsp.core.local.launch import SANDBOX_CODE_DIR, SANDBOX_SESSIONS_DIR, SANDBOX_WORK_DIR, SESSIONS_DIR
from daytona_lsp.core.local.run import Run, finish_output, stream
from daytona_lsp.core.local.runs import Attempt, RunSettings, buffered_result, notes_stream, relative
from daytona_lsp.core.local.runtimes import Runtime
from daytona_lsp.core.local.sandbox import Sandbox
from daytona_lsp.core.local.workspace import remove_tree
from daytona_lsp.core.sessions.channel import Channel
from daytona_lsp.core.sessions.client import SESSION_FILE_ENV, WorkerDied, describe_exit
from daytona_lsp.core.sessions.driver import shown_path
from daytona_lsp.core.sessions.pool import SessionPool, Write, cell_of
from daytona_lsp.core.sessions.protocol import Cell, ExecuteResult

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

    def __init__(
        self, language: CodeLanguage, container: Container, run: Run, channel: Channel, overlay_work: Path | None
    ) -> None:
        self.language = language
        self.container = container
        self._run = run
        self._channel = channel
        self._overlay_work = overlay_work
        self._tail = bytearray()
        self._killed = False
        loop = asyncio.get_running_loop()
        os.set_blocking(run.out_r, False)
        loop.add_reader(run.out_r, self._read_out)

    @classmethod
    async def start(
        cls,
        language: CodeLanguage,
        container: Container,
        request: dict[str, Any],
        code: bytes,
        *,
        overlay_work: Path | None = None,
    ) -> LocalWorker:
        """Start the worker ``request`` describes (an agent run request, ``code``: what its code descriptor holds);
        raises WorkerDied or OSError. ``overlay_work``: the overlay work directory its workspace view makes in the
        container's layer (removed when it ends)."""
        cmd_r, cmd_w = os.pipe()
        evt_r, evt_w = os.pipe()
        try:
            run = Run.start(container, {**request, "protocol": True}, code, None, extra_fds=(cmd_r, evt_w))
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
        worker = cls(language, container, run, channel, overlay_work)
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

    async def execute(self, cell: Cell, *, on_output: Write, input: InputChannel | None = None) -> ExecuteResult:
        return await self._channel.execute(cell, on_output=on_output, died=self._death, input=input)

    async def interrupt(self) -> None:
        self.container.interrupt_run(self._run.ticket.id)

    async def kill(self) -> None:
        self._killed = True
        self.container.kill_run(self._run.ticket.id)
        await self._exit_code()
        self._channel.close()
        self._close_out()
        if self._overlay_work is not None:  # the worker's overlay is unmounted: its namespace is gone
            work, self._overlay_work = self._overlay_work, None
            await asyncio.to_thread(remove_tree, work)


async def run_session(
    attempt: Attempt, sandbox: Sandbox, settings: RunSettings, next_id: Callable[[], str], sessions: SessionPool
) -> CodeRunResult:
    """Run ``attempt`` in its session's worker (started in its container on first use). In a workspace the worker
    starts as a fresh run of the file would: in the view of the folder (``attempt.view``, its unsaved documents as of
    the worker's start), in the run's directory, with the file's real path."""
    container, spec, runtime, file_name = attempt.container, attempt.spec, attempt.runtime, attempt.file_name
    cwd, view, timeout, context = attempt.cwd, attempt.view, attempt.timeout, attempt.context
    buffer, on_output = attempt.buffer, attempt.on_output
    assert spec.session is not None
    start = time.monotonic()
    isolated = sandbox.isolated
    root = await sandbox.ensure_root()
    extra = settings.extra(spec, context)
    limits = settings.limit_values(context, timeout)
    if settings.cpu_seconds is None:
        del limits["cpu"]  # a session lives on: the per-run default (the timeout) would end it; cells time out
    path = relative(spec.path, "file")
    folder = view.workspace.root if view is not None else None
    if folder is None and spec.workspace is not None and not isolated:  # in the folder itself, as a fresh run
        folder = posixpath.normpath(spec.workspace.root)
    if folder is not None:  # (an absolute directory: worker_request joins it to nothing)
        cwd = view.cwd if view is not None else posixpath.join(folder, cwd)
    source_path = f"{SANDBOX_CODE_DIR}/{file_name}"
    if folder is not None and path:
        source_path = posixpath.join(folder, path)
        if spec.language != "bash":
            extra[SESSION_FILE_ENV] = source_path
    request = worker_request(
        spec.language,
        runtime,
        work=SANDBOX_WORK_DIR if isolated else str(sandbox.work_dir),
        cwd=cwd,
        file=f"{SANDBOX_CODE_DIR}/session" if isolated else str(root / "runs" / "session"),
        extra=extra,
        limits=limits,
        seccomp=sandbox.run_filter if isolated else None,
        isolated=isolated,
    )
    if view is not None:
        request["env"]["PWD"] = cwd

    async def start_worker() -> LocalWorker:
        run_id = next_id()
        if view is None:
            return await LocalWorker.start(spec.language, container, {**request, "id": run_id}, b"")
        fields, code = view.request(run_id, b"", SANDBOX_CODE_DIR)
        layer = sandbox.layer(container)
        return await LocalWorker.start(
            spec.language,
            container,
            {**request, **fields, "id": run_id},
            code,
            overlay_work=layer / f"w{run_id}" if layer is not None else None,
        )

    async def write(kind: OutputStream, text: str) -> None:
        await stream(buffer, on_output, text, kind if spec.separate_stderr else "stdout")

    outcome = await sessions.run(
        spec.session,
        spec.language,
        cell_of(spec, source_path),
        start=start_worker,
        write=write,
        timeout=timeout,
        scope=container,
        input=spec.input,
    )
    await finish_output(buffer, on_output, outcome.note, notes_stream(spec))
    result = buffered_result(buffer, outcome.exit_code, start, shown_path(spec.language, source_path))
    result.value = outcome.value
    return result
