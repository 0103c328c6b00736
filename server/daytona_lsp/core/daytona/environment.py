"""``DaytonaCodeEnvironment``: run code in a Daytona cloud sandbox through the Daytona SDK.

The SDK (slow to import) is imported inside the functions that need it, never at module import time.

One run is one toolbox request in every language. Python without an output callback uses the daemon's own
``code-run`` (code on stdin of ``python3 -u -``, exactly the cost of a bare SDK ``code_run``); the other languages
use ``process.exec`` with the command of :mod:`.commands`. With an ``on_output`` callback the same command runs as a
session command whose logs stream (:mod:`.runner`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from daytona_lsp.core.daytona.commands import build_command
from daytona_lsp.core.daytona.errors import RunFailed, error_result, never_reached
from daytona_lsp.core.daytona.runner import Runner
from daytona_lsp.core.daytona.sandboxes import SandboxPool, Slot
from daytona_lsp.core.daytona.sdk import ensure_sdk
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
from daytona_lsp.core.environment import (
    LANGUAGES,
    CodeEnvironment,
    CodeLanguage,
    CodeRunResult,
    OutputCallback,
    RunContext,
    RunSpec,
    SandboxInfo,
    Variable,
    elapsed_ms,
    emit,
    not_enabled_result,
    resolve_variable,
)
from daytona_lsp.core.output import DEFAULT_MAX_OUTPUT_BYTES


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
        self._languages: tuple[CodeLanguage, ...] = tuple(dict.fromkeys(languages))
        self._labels = labels
        self._auto_stop_interval = auto_stop_interval
        self._auto_delete_interval = auto_delete_interval
        self._pool = SandboxPool(
            create_timeout=create_timeout, create_retries=create_retries, retry_backoff=retry_backoff
        )
        self._runner = Runner(timeout=timeout, max_output_bytes=max_output_bytes)
        self._last_slot: Slot | None = None

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
        """``{"backend", "sandboxId"?, "state"}`` for the editor's sandbox-info command."""
        slot = self._last_slot
        if self._pool.closed:
            return {"backend": BACKEND, "state": "closed"}
        if slot is None or slot.sandbox is None:
            return {"backend": BACKEND, "state": "none"}
        state = slot.sandbox.state
        return {"backend": BACKEND, "sandboxId": slot.sandbox.id, "state": str(getattr(state, "value", state))}

    async def run(
        self,
        code: str,
        language: CodeLanguage,
        *,
        context: RunContext | None = None,
        on_output: OutputCallback | None = None,
    ) -> CodeRunResult:
        started = time.monotonic()
        if language not in self._languages:
            result = not_enabled_result(language, self._languages)
            result.backend = BACKEND
            return result
        api_key: str | None = None
        try:
            if not isinstance(code, str):
                raise ValueError("code must be a string")
            if self._pool.closed:
                raise ValueError("this Daytona environment is closed")
            await ensure_sdk()
            spec = self._resolve(context)
            api_key = spec.api_key
            result = await self._run_in_slot(self._slot_for(spec), code, language, on_output)
        except asyncio.CancelledError:
            raise
        except RunFailed as failed:
            result = failed.result
        except Exception as exc:  # noqa: BLE001 - nothing escapes run: every problem is a result
            result = error_result(exc, api_key=api_key)
        result.duration_ms = elapsed_ms(started)
        result.backend = BACKEND
        return result

    async def execute(
        self, spec: RunSpec, on_output: OutputCallback | None = None, *, context: RunContext | None = None
    ) -> CodeRunResult:
        """Run ``spec``. Arguments, preset stdin, a working directory and per-run variables are not supported yet."""
        given = (("cwd", spec.cwd), ("args", spec.args), ("stdin", spec.stdin), ("env", spec.env))
        unsupported = [name for name, value in given if value]
        if unsupported:
            result = CodeRunResult(
                output=f"The Daytona backend does not support {', '.join(unsupported)} for a run yet.\n", exit_code=2
            )
            result.backend = BACKEND
            await emit(on_output, "stdout", result.output)
            return result
        return await self.run(spec.code, spec.language, context=context, on_output=on_output)

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
        """Delete every sandbox of this environment; the next run creates a fresh one."""
        for slot in list(self._pool.slots.values()):
            self._pool.bind(slot)
            async with slot.lock:
                await self._pool.discard(slot, delete=True)

    async def aclose(self) -> None:
        """Delete the sandboxes and close the clients. Idempotent; waits for a creation in progress and deletes
        what it produces."""
        self._pool.closed = True
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
    async def _run_in_slot(
        self, slot: Slot, code: str, language: CodeLanguage, on_output: OutputCallback | None
    ) -> CodeRunResult:
        command = build_command(code, language, self._timeout)
        recovered = False
        while True:
            sandbox, generation = await self._pool.ensure(slot)
            try:
                if on_output is None and language == "python":
                    result = await self._runner.code_run(sandbox, code, slot.spec.api_key)
                elif on_output is None:
                    result = await self._runner.exec(sandbox, command, slot.spec.api_key)
                else:
                    result = await self._runner.stream(slot, sandbox, generation, command, on_output, slot.spec.api_key)
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
            return result
