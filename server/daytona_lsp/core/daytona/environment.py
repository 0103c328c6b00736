"""``DaytonaCodeEnvironment``: run code in a Daytona cloud sandbox through the Daytona SDK.

The SDK (slow to import) is never imported at module import time: :func:`.sdk.ensure_sdk` loads all of it in a
worker thread before a run or a prewarm first touches it.

One run is one toolbox request in every language. Python without an output callback uses the daemon's own
``code-run`` (code on stdin of ``python3 -u -``, exactly the cost of a bare SDK ``code_run``); the other languages
use ``process.exec`` with the command of :mod:`.commands`. With an ``on_output`` callback the same command runs as a
session command whose logs stream (:mod:`.runner`). A run with a workspace folder (``RunSpec.workspace``) first
syncs the folder into the sandbox (:mod:`.sync`: no request when nothing changed) and runs there (:mod:`.tree`).
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from daytona_lsp.core.daytona.commands import build_command, is_plain, spec_problem
from daytona_lsp.core.daytona.errors import RunFailed, error_result, is_timeout, never_reached
from daytona_lsp.core.daytona.runner import Runner, uncancel, with_note
from daytona_lsp.core.daytona.sandboxes import SandboxPool, Slot
from daytona_lsp.core.daytona.sdk import ensure_sdk
from daytona_lsp.core.daytona.sessions import DaytonaWorker
from daytona_lsp.core.daytona.spec import (
    BACKEND,
    CREATED_BY_LABEL,
    CREATED_BY_VALUE,
    DEFAULT_API_URL,
    DEFAULT_AUTO_DELETE_MINUTES,
    DEFAULT_AUTO_STOP_MINUTES,
    DEFAULT_CREATE_TIMEOUT,
    DaytonaResources,
    Spec,
    api_key_from,
)
from daytona_lsp.core.daytona.stdin import StdinPlan
from daytona_lsp.core.daytona.sync import FolderSync, Synced, folder_name
from daytona_lsp.core.daytona.tree import is_synced_file, tree_command, tree_problem
from daytona_lsp.core.environment import (
    LANGUAGES,
    TIMEOUT_EXIT_CODE,
    CodeEnvironment,
    CodeLanguage,
    CodeRunResult,
    OutputCallback,
    OutputStream,
    RunContext,
    RunSpec,
    SandboxInfo,
    Variable,
    WorkspaceView,
    elapsed_ms,
    emit,
    not_enabled_result,
    resolve_variable,
)
from daytona_lsp.core.output import DEFAULT_MAX_OUTPUT_BYTES, OutputBuffer
from daytona_lsp.core.sessions.client import SESSION_FILE_ENV
from daytona_lsp.core.sessions.driver import shown_path
from daytona_lsp.core.sessions.pool import SessionPool, cell_of

if TYPE_CHECKING:
    from daytona import AsyncSandbox


class DaytonaCodeEnvironment(CodeEnvironment):
    """Runs code in Daytona sandboxes, created lazily on the first run and reused.

    Every sandbox-shaping parameter may be a :class:`Variable`, resolved from ``context.variables`` on every run;
    runs whose resolved parameters differ get different sandboxes. ``api_key``, ``api_url`` and ``target`` fall back
    to ``DAYTONA_API_KEY``, ``DAYTONA_API_URL`` and ``DAYTONA_TARGET``.
    """

    def __init__(
        self,
        *,
        api_key: str | Variable | None = None,
        api_url: str | Variable | None = None,
        target: str | Variable | None = None,
        snapshot: str | Variable | None = None,
        image: str | Variable | None = None,
        env_vars: Mapping[str, str] | Variable | None = None,
        resources: DaytonaResources | Variable | None = None,
        timeout: int = 60,
        languages: Sequence[CodeLanguage] = LANGUAGES,
        labels: Mapping[str, str] | Variable | None = None,
        auto_stop_interval: int | Variable = DEFAULT_AUTO_STOP_MINUTES,
        auto_delete_interval: int | Variable = DEFAULT_AUTO_DELETE_MINUTES,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        create_timeout: float = DEFAULT_CREATE_TIMEOUT,
        create_retries: int = 3,
        retry_backoff: float = 1.0,
    ) -> None:
        if snapshot and image and not isinstance(snapshot, Variable) and not isinstance(image, Variable):
            raise ValueError("Specify either `snapshot` or `image`, not both.")
        if resources is not None and not isinstance(resources, Variable) and image is None:
            raise ValueError("`resources` can only be set together with `image`.")
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
            raise ValueError("`timeout` must be an integer number of seconds >= 1.")
        unknown = [lang for lang in languages if lang not in LANGUAGES]
        if unknown:
            raise ValueError(f"Unknown language(s) {unknown}; supported: {list(LANGUAGES)}")
        if max_output_bytes < 2:
            raise ValueError("`max_output_bytes` must be >= 2.")
        if create_timeout <= 0 or create_retries < 0 or retry_backoff < 0:
            raise ValueError("`create_timeout` must be > 0, `create_retries` and `retry_backoff` >= 0.")
        self._api_key = api_key
        self._api_url = api_url
        self._target = target
        self._snapshot = snapshot
        self._image = image
        self._env_vars = env_vars
        self._resources = resources
        self._timeout = timeout
        self._create_timeout = create_timeout
        self._languages: tuple[CodeLanguage, ...] = tuple(dict.fromkeys(languages))
        self._labels = labels
        self._auto_stop_interval = auto_stop_interval
        self._auto_delete_interval = auto_delete_interval
        self._pool = SandboxPool(
            create_timeout=create_timeout, create_retries=create_retries, retry_backoff=retry_backoff
        )
        self._runner = Runner(timeout=timeout, max_output_bytes=max_output_bytes)
        self._last_slot: Slot | None = None
        self._folders: dict[tuple[Spec, str], FolderSync] = {}
        self._sessions = SessionPool()
        self._uploaded: set[str] = set()  # sandboxes that have the session workers

    # ------------------------------------------------------------------ public API
    @property
    def supported_languages(self) -> tuple[CodeLanguage, ...]:
        return self._languages

    @property
    def timeout(self) -> int:
        return self._timeout

    @property
    def sandbox_id(self) -> str | None:
        """The id of the sandbox the last run used (``None`` before the first run or after a reset)."""
        slot = self._last_slot
        return slot.sandbox.id if slot is not None and slot.sandbox is not None else None

    def info(self) -> SandboxInfo:
        """``{"backend", "sandboxId"?, "state"}`` for the editor's sandbox-info command: ``none``, ``creating``,
        ``error`` (the last creation failed), or the sandbox's own Daytona state (``started``, ``stopped``…)."""
        slot = self._last_slot
        if self._pool.closed:
            return {"backend": BACKEND, "state": "closed"}
        info: SandboxInfo
        if slot is None or slot.sandbox is None:
            if slot is not None and slot.creating is not None and not slot.creating.done():
                info = {"backend": BACKEND, "state": "creating"}
            else:
                info = {"backend": BACKEND, "state": "error" if slot is not None and slot.failed else "none"}
        else:
            state = slot.sandbox.state
            info = {"backend": BACKEND, "sandboxId": slot.sandbox.id, "state": str(getattr(state, "value", state))}
        if sessions := self._sessions.info():
            info["sessions"] = sessions
        return info

    async def restart_session(self, key: str | None = None) -> int:
        return await self._sessions.restart(key)

    async def close_session(self, key: str) -> None:
        await self._sessions.close(key)

    async def execute(
        self, spec: RunSpec, on_output: OutputCallback | None = None, *, context: RunContext | None = None
    ) -> CodeRunResult:
        """Run ``spec`` (its arguments, stdin, directory and environment included). What reaches ``on_output``
        adds up to the result's output: the program's output as it comes, then daytona-lsp's own notes and errors
        (timeout, cancellation, a sandbox that could not be created…) on ``stderr``."""
        started = time.monotonic()
        streamed = 0

        async def counted(stream: OutputStream, text: str) -> None:
            nonlocal streamed
            streamed += len(text)
            await emit(on_output, stream, text)

        result = await self._execute(spec, counted if on_output is not None else None, context)
        result.duration_ms = elapsed_ms(started)
        result.backend = BACKEND
        await emit(on_output, "stderr", result.output[streamed:])
        return result

    async def _execute(
        self, spec: RunSpec, on_output: OutputCallback | None, context: RunContext | None
    ) -> CodeRunResult:
        if spec.language not in self._languages:
            return _ending_a_line(not_enabled_result(spec.language, self._languages))
        api_key: str | None = None
        try:
            if not isinstance(spec.code, str):
                raise ValueError("code must be a string")
            problem = spec_problem(spec) or (tree_problem(spec) if spec.workspace is not None else None)
            if problem is not None:
                return _ending_a_line(CodeRunResult(problem, 2))
            if self._pool.closed:
                raise ValueError("this Daytona environment is closed")
            await ensure_sdk()
            sandbox_spec = self._resolve(context)
            api_key = sandbox_spec.api_key
            return await self._run_in_slot(self._slot_for(sandbox_spec), spec, on_output)
        except asyncio.CancelledError:
            uncancel()
            return _ending_a_line(CodeRunResult("Run cancelled before the code started.", TIMEOUT_EXIT_CODE))
        except RunFailed as failed:
            return _ending_a_line(failed.result)
        except Exception as exc:  # noqa: BLE001 - nothing escapes run: every problem is a result
            return _ending_a_line(error_result(exc, api_key=api_key))

    async def prewarm(self, *, context: RunContext | None = None) -> None:
        """Create the sandbox a run with ``context`` would use, without running anything (no toolbox request).

        Raises ``RuntimeError`` with a readable message (never containing the API key) when that fails."""
        if self._pool.closed:
            return
        api_key: str | None = None
        try:
            await ensure_sdk()
            spec = self._resolve(context)
            api_key = spec.api_key
            await self._pool.ensure(self._slot_for(spec))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise RuntimeError(error_result(exc, api_key=api_key).output) from None

    async def reset(self) -> None:
        """Delete every sandbox of this environment (and its sessions); the next run creates a fresh one."""
        await self._sessions.close()
        for slot in list(self._pool.slots.values()):
            self._pool.bind(slot)
            async with slot.lock:
                await self._pool.discard(slot, delete=True)

    async def aclose(self) -> None:
        """Delete the sandboxes and close the clients. Idempotent; waits for a creation in progress and deletes
        what it produces."""
        self._pool.closed = True
        await self._sessions.close()
        slots = list(self._pool.slots.values())
        self._pool.slots.clear()
        for slot in slots:
            self._pool.bind(slot)
            async with slot.lock:
                await self._pool.discard(slot, delete=True)
        await self._pool.close_abandoned()

    # ------------------------------------------------------------------ resolution
    def _resolve(self, context: RunContext | None) -> Spec:
        def get(value: Any) -> Any:
            return resolve_variable(value, context)

        api_key = api_key_from(get(self._api_key))
        api_url = get(self._api_url) or os.environ.get("DAYTONA_API_URL") or DEFAULT_API_URL
        target = get(self._target) or os.environ.get("DAYTONA_TARGET") or None
        snapshot, image = get(self._snapshot), get(self._image)
        if snapshot and image:
            raise ValueError("Specify either `snapshot` or `image`, not both.")
        resources = get(self._resources)
        if resources is not None and not image:
            raise ValueError("`resources` can only be set together with `image`.")
        if resources is not None and not isinstance(resources, DaytonaResources):
            raise ValueError("`resources` must be a DaytonaResources")
        env_vars = dict(get(self._env_vars) or {})
        labels = {str(k): str(v) for k, v in dict(get(self._labels) or {}).items()}
        labels[CREATED_BY_LABEL] = CREATED_BY_VALUE
        auto_stop, auto_delete = get(self._auto_stop_interval), get(self._auto_delete_interval)
        for name, value in (("auto_stop_interval", auto_stop), ("auto_delete_interval", auto_delete)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"`{name}` must be an integer number of minutes")
        return Spec(
            api_key=str(api_key),
            api_url=str(api_url).rstrip("/"),
            target=str(target) if target else None,
            snapshot=str(snapshot) if snapshot else None,
            image=str(image) if image else None,
            env_vars=tuple(sorted((str(k), str(v)) for k, v in env_vars.items())),
            resources=resources,
            labels=tuple(sorted(labels.items())),
            auto_stop_interval=auto_stop,
            auto_delete_interval=auto_delete,
        )

    def _slot_for(self, spec: Spec) -> Slot:
        slot = self._last_slot = self._pool.slot_for(spec)
        return slot

    # ------------------------------------------------------------------ sandbox lifecycle
    # ------------------------------------------------------------------ running
    async def _run_in_slot(self, slot: Slot, spec: RunSpec, on_output: OutputCallback | None) -> CodeRunResult:
        """Run ``spec`` in the slot's sandbox; the workspace's skipped-files line (streamed before the program's
        output) starts the result's output, whatever the result."""
        shown: list[str] = []
        try:
            if spec.session is not None:
                result = await self._run_session(slot, spec.session, spec, on_output, shown)
            else:
                result = await self._attempt(slot, spec, on_output, shown)
        except asyncio.CancelledError:
            uncancel()
            cancelled = CodeRunResult("".join(shown) + "Run cancelled before the code started.", TIMEOUT_EXIT_CODE)
            raise RunFailed(cancelled) from None
        except RunFailed as failed:
            failed.result.output = "".join(shown) + failed.result.output
            raise
        result.output = "".join(shown) + result.output
        return result

    async def _attempt(
        self, slot: Slot, spec: RunSpec, on_output: OutputCallback | None, shown: list[str]
    ) -> CodeRunResult:
        if spec.input is not None and on_output is None:
            on_output = _discard  # interactive input needs the session command (the streaming path)
        # a plain snippet that is not streamed keeps its code on the interpreter's stdin, as Daytona's own code-run
        # (EOF after the code, no note)
        code_on_stdin = on_output is None and is_plain(spec) and spec.workspace is None
        stdin = None if code_on_stdin else StdinPlan.for_spec(spec)
        recovered = False
        while True:
            sandbox, generation = await self._wait_for_sandbox(slot)
            folder: FolderSync | None = None
            synced: Synced | None = None
            try:
                if spec.workspace is None:
                    command = build_command(spec, self._timeout, stdin)
                else:
                    folder, synced = await self._sync(slot, sandbox, spec.workspace, on_output, shown)
                    whole_file = await asyncio.to_thread(is_synced_file, spec, synced.files)  # hashes the code
                    command = tree_command(spec, self._timeout, synced.root, whole_file=whole_file, stdin=stdin)
                if on_output is None and spec.language == "python" and is_plain(spec) and folder is None:
                    result = await self._runner.code_run(sandbox, spec.code, slot.spec.api_key)
                elif on_output is None:
                    result = await self._runner.exec(sandbox, command, slot.spec.api_key, stdin)
                else:
                    result = await self._runner.stream(
                        slot, sandbox, generation, command, on_output, slot.spec.api_key, stdin, spec.input
                    )
            except RunFailed as failed:
                cause = failed.__cause__
                if recovered or cause is None or not never_reached(cause):
                    raise
                recovered = True
                if not await self._pool.recover(slot, generation):
                    raise
                continue
            result.source_path = command.source_path
            result.line_offset = command.line_offset
            if folder is not None and synced is not None and command.trailer is not None:
                assert spec.workspace is not None
                result.workspace_root = synced.root
                result.changed_files, note = await folder.finish(
                    sandbox, synced, command.trailer, spec.workspace, slot.spec.api_key
                )
                result.output = with_note(result.output, note)
            return result

    async def _sync(
        self,
        slot: Slot,
        sandbox: AsyncSandbox,
        view: WorkspaceView,
        on_output: OutputCallback | None,
        shown: list[str],
    ) -> tuple[FolderSync, Synced]:
        """Sync the folder of ``view`` into ``sandbox``; its skipped-files line is streamed once (kept in ``shown``)."""
        folder = self._folder(slot.spec, view)
        synced = await folder.sync(sandbox, view, slot.spec.api_key)
        if synced.note and not shown:
            shown.append(synced.note + "\n")
            await emit(on_output, "stderr", shown[0])
        return folder, synced

    def _folder(self, spec: Spec, view: WorkspaceView) -> FolderSync:
        """The copy of the folder ``view.root`` in the sandbox of ``spec`` (one per folder and sandbox spec)."""
        key = (spec, view.root)
        folder = self._folders.get(key)
        if folder is None:
            taken = {f.name for (s, _), f in self._folders.items() if s == spec}
            folder = self._folders[key] = FolderSync(view.root, folder_name(view.root, taken))
        return folder

    async def _run_session(
        self, slot: Slot, key: str, spec: RunSpec, on_output: OutputCallback | None, shown: list[str]
    ) -> CodeRunResult:
        """Run ``spec`` in its session's worker (started in the slot's sandbox on first use: see ``sessions.py``).
        In a workspace the folder is synced before every cell (as before a fresh run) and the worker starts in the
        synced folder, as a fresh run of the file would: in its directory, with the file's path there."""
        sandbox, _ = await self._wait_for_sandbox(slot)
        buffer = OutputBuffer(self._runner.max_output_bytes)
        cwd, env, root = spec.cwd, dict[str, str](), None
        source_path = f"/tmp/daytona-lsp-session/{os.path.basename(spec.path or '') or 'cell'}"
        if spec.workspace is not None:
            _, synced = await self._sync(slot, sandbox, spec.workspace, on_output, shown)
            root = synced.root
            cwd = posixpath.join(root, spec.cwd or "")
            if spec.path:
                source_path = posixpath.join(root, spec.path)
                if spec.language != "bash":
                    env[SESSION_FILE_ENV] = source_path
            if spec.language == "python":
                env["PYTHONPATH"] = root  # as a fresh run's (tree.py)

        async def write(stream: OutputStream, text: str) -> None:
            await emit(on_output, stream, buffer.write(text))

        async def start() -> DaytonaWorker:
            return await DaytonaWorker.start(
                sandbox, spec.language, slot.spec.api_key, cwd=cwd, uploaded=self._uploaded, env=env
            )

        outcome = await self._sessions.run(
            key,
            spec.language,
            cell_of(spec, source_path),
            start=start,
            write=write,
            timeout=self._timeout,
            scope=sandbox,
            input=spec.input,
        )
        await emit(on_output, "stdout", buffer.unstreamed_text())
        output = with_note(buffer.text(), outcome.note)
        result = CodeRunResult(
            output,
            outcome.exit_code,
            truncated=buffer.truncated,
            source_path=shown_path(spec.language, source_path),
            value=outcome.value,
        )
        result.workspace_root = root
        return result

    async def _wait_for_sandbox(self, slot: Slot) -> tuple[AsyncSandbox, int]:
        """The slot's sandbox, waiting for its creation at most ``create_timeout`` in all (retries included); the run's
        own timeout starts when its code does. A creation still going on then serves the next run."""
        waiting = asyncio.ensure_future(self._pool.ensure(slot))
        try:
            done, _ = await asyncio.wait({waiting}, timeout=self._create_timeout)
        finally:
            if not waiting.done():
                waiting.cancel()
        if done and not is_timeout(waiting.exception()):
            return waiting.result()
        raise RunFailed(
            CodeRunResult(
                f"Daytona sandbox creation did not finish within {self._create_timeout:g} s (create_timeout); "
                "the code did not run.",
                TIMEOUT_EXIT_CODE,
            )
        )


def _ending_a_line(result: CodeRunResult) -> CodeRunResult:
    """A result daytona-lsp made (an error, a note) ends its line, so that what follows starts on a new one."""
    if result.output and not result.output.endswith("\n"):
        result.output += "\n"
    return result


def _discard(stream: OutputStream, text: str) -> None:
    """An output callback that keeps nothing (the result has the output)."""
