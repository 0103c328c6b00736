"""``DaytonaCodeEnvironment``: run code in a Daytona cloud sandbox through the Daytona SDK.

The SDK (slow to import) is imported inside the functions that need it, never at module import time.

One run is one toolbox request in every language. Python without an output callback uses the daemon's own
``code-run`` (code on stdin of ``python3 -u -``, exactly the cost of a bare SDK ``code_run``). The other languages
use ``process.exec`` with the code base64-encoded inside ``sh -c "printf %s <b64> | base64 -d | node -"`` (bash and
TypeScript: ``bash -c "source <(echo <b64> | base64 -d)"``): no quotes, ``$`` or escapes inside, so it works on
daemons that run commands through a shell (current) and on those that split the command on spaces (older).
With an ``on_output`` callback the same command runs as a session command whose logs stream over a WebSocket
(sessions are pooled per sandbox: exec, log stream and exit code, three requests a run).
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
    elapsed_ms,
    emit,
    not_enabled_result,
    resolve_variable,
)
from daytona_lsp.core.output import DEFAULT_MAX_OUTPUT_BYTES, OutputBuffer

if TYPE_CHECKING:
    from daytona import AsyncDaytona, AsyncSandbox

log = logging.getLogger(__name__)

BACKEND = "daytona"
CREATED_BY_LABEL = "created-by"
CREATED_BY_VALUE = "daytona-lsp"
DEFAULT_API_URL = "https://app.daytona.io/api"
DEFAULT_AUTO_STOP_MINUTES = 15
DEFAULT_AUTO_DELETE_MINUTES = 60
DEFAULT_CREATE_TIMEOUT = 120.0
MAX_INLINE_COMMAND = 120_000
"""Longest command sent inline (a single exec argument is limited to 128 KiB on Linux); longer code is uploaded."""
_GRACE_SECONDS = 5
"""The daemon's own timeout and the client's wait are this much longer than the run's, so ours fires first."""
_RETRYABLE_CREATE_STATUS = {429, 500, 502, 503, 504}


class MissingCredentialsError(ValueError):
    """No Daytona API key: neither passed in nor in ``DAYTONA_API_KEY``."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message or "No Daytona API key: set DAYTONA_API_KEY (or pass api_key) to use Daytona sandboxes."
        )


@dataclass(frozen=True)
class DaytonaResources:
    """CPU cores, memory (GiB) and disk (GiB) of a sandbox built from an image."""

    cpu: int | None = None
    memory: int | None = None
    disk: int | None = None


@dataclass(frozen=True)
class _Spec:
    """Everything that shapes a sandbox, resolved for one run. Equal specs share a sandbox."""

    api_key: str = field(repr=False)
    api_url: str
    target: str | None
    snapshot: str | None
    image: str | None
    env_vars: tuple[tuple[str, str], ...]
    resources: DaytonaResources | None
    labels: tuple[tuple[str, str], ...]
    auto_stop_interval: int
    auto_delete_interval: int


@dataclass
class _Slot:
    spec: _Spec
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    client: AsyncDaytona | None = None
    sandbox: AsyncSandbox | None = None
    generation: int = 0
    creating: asyncio.Future[tuple[AsyncSandbox, int]] | None = None
    idle_sessions: list[str] = field(default_factory=list)
    session_generation: int = -1
    loop: asyncio.AbstractEventLoop | None = None
    adopt_id: str | None = None
    """A sandbox made under another event loop, to be picked up again by this loop's client."""


@dataclass(frozen=True)
class _Command:
    command: str
    source_path: str | None
    line_offset: int = 0
    upload: tuple[str, bytes] | None = None


class _RunFailed(Exception):
    """A run that ended in an error result (carries it)."""

    def __init__(self, result: CodeRunResult) -> None:
        super().__init__(result.output)
        self.result = result


# --------------------------------------------------------------------------- cleanup at interpreter exit
_live_lock = threading.Lock()
_live: dict[tuple[str, str, str | None, str], None] = {}
_atexit_registered = False


def _track(spec: _Spec, sandbox_id: str) -> None:
    global _atexit_registered
    with _live_lock:
        _live[(spec.api_key, spec.api_url, spec.target, sandbox_id)] = None
        if not _atexit_registered:
            atexit.register(_cleanup_at_exit)
            _atexit_registered = True


def _untrack(spec: _Spec, sandbox_id: str) -> None:
    with _live_lock:
        _live.pop((spec.api_key, spec.api_url, spec.target, sandbox_id), None)


def _cleanup_at_exit() -> None:
    """Delete sandboxes nobody closed.

    By now the program's event loop is gone and the interpreter refuses new executor work (aiohttp's resolver
    needs it), so this speaks plain HTTP with the standard library: ``DELETE {api_url}/sandbox/{id}``.
    """
    with _live_lock:
        pending = list(_live)
        _live.clear()
    for api_key, api_url, _target, sandbox_id in pending:
        _delete_now(api_key, api_url, sandbox_id)


def _delete_now(api_key: str, api_url: str, sandbox_id: str, timeout: float = 10) -> bool:
    import urllib.error
    import urllib.parse
    import urllib.request

    request = urllib.request.Request(
        f"{api_url}/sandbox/{urllib.parse.quote(sandbox_id, safe='')}",
        method="DELETE",
        headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json", "X-Daytona-Source": "daytona-lsp"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the configured API URL
            response.read()
        return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return True
        log.warning("daytona-lsp: could not delete sandbox %s at exit: HTTP %s", sandbox_id, exc.code)
    except Exception as exc:  # noqa: BLE001 - best effort at exit
        log.warning("daytona-lsp: could not delete sandbox %s at exit: %s", sandbox_id, _scrub(str(exc), api_key))
    return False


# --------------------------------------------------------------------------- helpers
def _scrub(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _api_key_from(api_key: str | None) -> str:
    key = api_key or os.environ.get("DAYTONA_API_KEY")
    if not key:
        raise MissingCredentialsError()
    return key


def _build_command(code: str, language: CodeLanguage, timeout: int) -> _Command:
    """The one shell command that runs ``code``; see the module docstring for why it looks like this.

    Inside ``bash -c "…"`` there are no quotes, ``$``, backslashes or backticks: a shell (current daemons) and a
    plain split on spaces (older daemons) hand bash the same string. ``timeout`` (when the sandbox has it) ends the
    code at the run's timeout so that the output printed so far comes back with exit 124; the daemon's own timeout,
    a little later, is only a backstop (it answers 408 and drops the output).
    """
    b64 = base64.b64encode(code.encode("utf-8", "surrogateescape")).decode("ascii")
    if language in ("python", "javascript"):
        # code on stdin, as Daytona's own code-run does (tracebacks say <stdin> / [stdin] with the code's lines)
        runner = "python3 -u -" if language == "python" else "node -"
        source_path = "<stdin>" if language == "python" else "[stdin]"
        command = (
            f'sh -c "printf %s {b64} | base64 -d | {{ if command -v timeout >/dev/null; '
            f'then exec timeout -k 2 {timeout} {runner}; else exec {runner}; fi; }}"'
        )
        script = f"printf %s {b64} | base64 -d | {{ {_LIMITED.format(timeout=timeout)} {runner}; }}\n"
        if len(command) <= MAX_INLINE_COMMAND:
            return _Command(command, source_path)
    else:
        # bash runs a file (code of any size; its stdin stays the run's), TypeScript goes through ts-node -T on a
        # file as Daytona's own code-run does; the file is removed when the run ends
        suffix, runner = (".sh", "bash") if language == "bash" else (".ts", "npx ts-node -T")
        source_path = f"/tmp/daytona-lsp-{uuid.uuid4().hex[:12]}{suffix}"
        body = (
            f"__dlsp_f={source_path}\n"
            "trap 'rm -f \"$__dlsp_f\"' EXIT\n"
            f'printf %s {b64} | base64 -d > "$__dlsp_f"\n'
            f'{_LIMITED.format(timeout=timeout)} {runner} "$__dlsp_f"\n'
        )
        script = body
        encoded = base64.b64encode(script.encode("utf-8")).decode("ascii")
        command = f'bash -c "source <(echo {encoded} | base64 -d)"'
        if len(command) <= MAX_INLINE_COMMAND:
            return _Command(command, source_path)
    # Too long for one argument: upload the script (it deletes itself first), then run it.
    path = f"/tmp/daytona-lsp-{uuid.uuid4().hex[:12]}.sh"
    script = f"rm -f {path}\n" + script
    return _Command(f"bash {path}", source_path, upload=(path, script.encode("utf-8")))


_LIMITED = "$(command -v timeout >/dev/null && echo timeout -k 2 {timeout})"
"""Expands to a ``timeout`` prefix when the sandbox has the tool, to nothing otherwise."""


def _error_result(exc: BaseException, *, api_key: str | None, output: str = "") -> CodeRunResult:
    """The seed's result mapping, extended to every exception the SDK lets through."""
    from daytona import DaytonaError, DaytonaRateLimitError, DaytonaTimeoutError

    detail = _scrub(str(exc) or type(exc).__name__, api_key)
    prefix = output if not output or output.endswith("\n") else output + "\n"
    if isinstance(exc, DaytonaTimeoutError) or isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return CodeRunResult(prefix + f"Execution timed out: {detail}", TIMEOUT_EXIT_CODE, backend=BACKEND)
    if isinstance(exc, DaytonaRateLimitError) or getattr(exc, "status", None) == 429:
        return CodeRunResult(prefix + f"Daytona rate limit exceeded: {detail}", 1, backend=BACKEND)
    if isinstance(exc, DaytonaError):
        return CodeRunResult(prefix + f"Daytona error: {detail}", 1, backend=BACKEND)
    if isinstance(exc, MissingCredentialsError | KeyError | ValueError):
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else detail
        return CodeRunResult(
            prefix + f"Daytona configuration error: {_scrub(str(message), api_key)}", 1, backend=BACKEND
        )
    return CodeRunResult(prefix + f"Daytona error: {type(exc).__name__}: {detail}", 1, backend=BACKEND)


def _daytona_error_type() -> type[Exception]:
    from daytona import DaytonaError

    return DaytonaError


def _readable_api_exception(exc: BaseException, status: int) -> Exception:
    """The SDK's code-run raises the generated client's raw ``ApiException``: turn it into the SDK's own error type
    for that status, with the daemon's message instead of a dump of headers."""
    from daytona import DaytonaError, DaytonaRateLimitError

    message = ""
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            import json

            parsed = json.loads(body)
            message = str(parsed.get("message") or parsed.get("error") or "") if isinstance(parsed, dict) else ""
        except ValueError:
            message = body[:500]
    reason = getattr(exc, "reason", None) or ""
    text = f"Failed to run code: HTTP {status}" + (f" {reason}" if reason else "") + (f": {message}" if message else "")
    error: DaytonaError = (DaytonaRateLimitError if status == 429 else DaytonaError)(text, status_code=status)
    return error


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def _never_reached(exc: BaseException) -> bool:
    """True when the request provably did not run anything: the proxy/daemon answered with a refusal, or the
    connection was never established."""
    import aiohttp

    cause: BaseException | None = exc
    for _ in range(20):  # the cause chain, bounded in case of a cycle
        if cause is None:
            break
        if isinstance(cause, aiohttp.ClientConnectorError):
            return True
        cause = cause.__cause__ or cause.__context__
    status = _status_of(exc)
    return status in {400, 401, 403, 404, 409, 410, 502, 503}


def _is_retryable_create(exc: BaseException) -> bool:
    from daytona import DaytonaConnectionError, DaytonaTimeoutError

    if isinstance(exc, DaytonaTimeoutError) and not isinstance(exc, DaytonaConnectionError):
        return False  # the whole create timed out: retrying would double the wait
    if isinstance(exc, DaytonaConnectionError):
        return True
    return _status_of(exc) in _RETRYABLE_CREATE_STATUS


# --------------------------------------------------------------------------- the environment
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
        self._max_output_bytes = max_output_bytes
        self._create_timeout = create_timeout
        self._create_retries = create_retries
        self._retry_backoff = retry_backoff
        self._slots: dict[_Spec, _Slot] = {}
        self._closed = False
        self._last_slot: _Slot | None = None
        self._abandoned: list[AsyncDaytona] = []

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
        if self._closed:
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
            if self._closed:
                raise ValueError("this Daytona environment is closed")
            spec = self._resolve(context)
            api_key = spec.api_key
            result = await self._run_in_slot(self._slot_for(spec), code, language, on_output)
        except asyncio.CancelledError:
            raise
        except _RunFailed as failed:
            result = failed.result
        except Exception as exc:  # noqa: BLE001 - nothing escapes run: every problem is a result
            result = _error_result(exc, api_key=api_key)
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
        if self._closed:
            return
        api_key: str | None = None
        try:
            spec = self._resolve(context)
            api_key = spec.api_key
            await self._ensure_sandbox(self._slot_for(spec))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise RuntimeError(_error_result(exc, api_key=api_key).output) from None

    async def reset(self) -> None:
        """Delete every sandbox of this environment; the next run creates a fresh one."""
        for slot in list(self._slots.values()):
            self._bind(slot)
            async with slot.lock:
                await self._discard(slot, delete=True)

    async def aclose(self) -> None:
        """Delete the sandboxes and close the clients. Idempotent; waits for a creation in progress and deletes
        what it produces."""
        self._closed = True
        slots = list(self._slots.values())
        self._slots.clear()
        for slot in slots:
            self._bind(slot)
            async with slot.lock:
                await self._discard(slot, delete=True)
        await self._close_abandoned()

    # ------------------------------------------------------------------ resolution
    def _resolve(self, context: RunContext | None) -> _Spec:
        def get(value: Any) -> Any:
            return resolve_variable(value, context)

        api_key = _api_key_from(get(self._api_key))
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
        return _Spec(
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

    def _slot_for(self, spec: _Spec) -> _Slot:
        slot = self._slots.get(spec)
        if slot is None:
            slot = self._slots[spec] = _Slot(spec)
        self._last_slot = slot
        return slot

    # ------------------------------------------------------------------ sandbox lifecycle
    def _client(self, slot: _Slot) -> AsyncDaytona:
        if slot.client is None:
            from daytona import AsyncDaytona, DaytonaConfig

            spec = slot.spec
            slot.client = AsyncDaytona(DaytonaConfig(api_key=spec.api_key, api_url=spec.api_url, target=spec.target))
        return slot.client

    def _bind(self, slot: _Slot) -> None:
        """Make the slot usable from the running event loop. The SDK client (its HTTP session), the lock and the
        sandbox object belong to the loop they were made in: after ``asyncio.run`` ends, a later run in a new loop
        gets a new client and picks the same sandbox up again by id."""
        loop = asyncio.get_running_loop()
        if slot.loop is loop:
            return
        if slot.loop is not None:
            if slot.sandbox is not None:
                slot.adopt_id = slot.sandbox.id
            slot.sandbox = None
            if slot.client is not None:
                self._abandoned.append(slot.client)
            slot.client = None
            slot.creating = None
            slot.idle_sessions.clear()
            slot.lock = asyncio.Lock()
        slot.loop = loop

    async def _close_abandoned(self) -> None:
        """Close clients left behind by a finished event loop. Their loop is gone, so this mostly marks them
        closed (so they are not reported as leaked); any error is irrelevant."""
        while self._abandoned:
            client = self._abandoned.pop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 5)

    async def _ensure_sandbox(self, slot: _Slot) -> tuple[AsyncSandbox, int]:
        self._bind(slot)
        if self._abandoned:
            await self._close_abandoned()
        sandbox = slot.sandbox
        if sandbox is not None:
            return sandbox, slot.generation
        # Creation runs as its own task: a run cancelled while waiting does not waste (or leak) the sandbox,
        # the next run gets it, and aclose waits for it.
        if slot.creating is None or slot.creating.done():
            slot.creating = asyncio.ensure_future(self._create_locked(slot))
            slot.creating.add_done_callback(lambda f: f.cancelled() or f.exception())
        return await asyncio.shield(slot.creating)

    async def _create_locked(self, slot: _Slot) -> tuple[AsyncSandbox, int]:
        async with slot.lock:
            if slot.sandbox is None and slot.adopt_id is not None:
                await self._adopt(slot)
            if slot.sandbox is None:
                if self._closed:
                    raise ValueError("this Daytona environment is closed")
                await self._create(slot)
            assert slot.sandbox is not None
            return slot.sandbox, slot.generation

    def _create_params(self, spec: _Spec) -> Any:
        from daytona import CreateSandboxFromImageParams, CreateSandboxFromSnapshotParams, Resources

        common: dict[str, Any] = {
            "language": "python",
            "env_vars": dict(spec.env_vars),
            "labels": dict(spec.labels),
            "auto_stop_interval": spec.auto_stop_interval,
            "auto_delete_interval": spec.auto_delete_interval,
        }
        if spec.image:
            resources = None
            if spec.resources is not None:
                r = spec.resources
                resources = Resources(cpu=r.cpu, memory=r.memory, disk=r.disk)
            return CreateSandboxFromImageParams(image=spec.image, resources=resources, **common)
        return CreateSandboxFromSnapshotParams(snapshot=spec.snapshot, **common)

    async def _create(self, slot: _Slot) -> None:
        """Create the slot's sandbox (lock held), retrying 429/5xx/connection errors with bounded backoff."""
        spec = slot.spec
        client = self._client(slot)
        attempt = 0
        try:
            while True:
                try:
                    sandbox = await client.create(self._create_params(spec), timeout=self._create_timeout)
                    break
                except Exception as exc:
                    leaked = getattr(exc, "sandbox_id", None)
                    if leaked:
                        await self._delete_id(client, leaked, spec.api_key)
                    if attempt >= self._create_retries or not _is_retryable_create(exc):
                        raise
                    delay = min(self._retry_backoff * (2**attempt), 10.0) * (0.5 + random.random() / 2)
                    attempt += 1
                    log.info(
                        "Daytona sandbox creation failed (%s); retry %d in %.1f s", type(exc).__name__, attempt, delay
                    )
                    await asyncio.sleep(delay)
        except BaseException:
            # a failed creation leaks no client
            slot.client = None
            with contextlib.suppress(Exception):
                await client.close()
            raise
        _track(spec, sandbox.id)
        slot.sandbox = sandbox
        slot.generation += 1
        if self._closed:  # closed while we were creating: nothing may outlive aclose
            await self._discard(slot, delete=True)
            raise ValueError("this Daytona environment was closed while its sandbox was being created")

    async def _adopt(self, slot: _Slot) -> None:
        """Pick up the sandbox made under another event loop (lock held); forget it when it is gone."""
        from daytona import DaytonaNotFoundError, SandboxState

        sandbox_id, slot.adopt_id = slot.adopt_id, None
        assert sandbox_id is not None
        client = self._client(slot)
        try:
            sandbox = await client.get(sandbox_id)
        except DaytonaNotFoundError:
            _untrack(slot.spec, sandbox_id)
            return
        if sandbox.state in (SandboxState.DESTROYED, SandboxState.DESTROYING):
            _untrack(slot.spec, sandbox_id)
            return
        slot.sandbox = sandbox
        slot.generation += 1
        if sandbox.state != SandboxState.STARTED:
            await sandbox.start(timeout=self._create_timeout)

    async def _delete_id(self, client: AsyncDaytona, sandbox_id: str, api_key: str) -> bool:
        """Delete a sandbox known by id only; True when it is gone."""
        from daytona import DaytonaNotFoundError

        try:
            await client.delete(await client.get(sandbox_id), timeout=30)
        except DaytonaNotFoundError:
            return True
        except Exception as exc:  # noqa: BLE001 - best effort
            log.warning("could not delete Daytona sandbox %s: %s", sandbox_id, _scrub(str(exc), api_key))
            return False
        return True

    async def _discard(self, slot: _Slot, *, delete: bool) -> None:
        """Forget (and optionally delete) the slot's sandbox and close its client. Lock held by the caller.
        A sandbox that could not be deleted stays on the list the interpreter-exit cleanup deletes."""
        from daytona import DaytonaNotFoundError

        sandbox, client, adopt_id = slot.sandbox, slot.client, slot.adopt_id
        slot.sandbox, slot.client, slot.adopt_id = None, None, None
        slot.idle_sessions.clear()
        spec = slot.spec
        if sandbox is not None:
            gone = not delete
            if delete:
                try:
                    await sandbox.delete(timeout=30)
                    gone = True
                except DaytonaNotFoundError:
                    gone = True
                except Exception as exc:  # noqa: BLE001 - unreachable: the exit cleanup tries again
                    log.info("Daytona sandbox %s not deleted: %s", sandbox.id, _scrub(str(exc), spec.api_key))
            if gone:
                _untrack(spec, sandbox.id)
        if adopt_id is not None and delete:
            if client is None:
                client = self._client(slot)
                slot.client = None
            if await self._delete_id(client, adopt_id, spec.api_key):
                _untrack(spec, adopt_id)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    async def _recover(self, slot: _Slot, generation: int) -> bool:
        """After a refused toolbox request: start a stopped sandbox, or forget a deleted one so it is recreated.
        True when the run should be retried (it provably never started)."""
        from daytona import DaytonaNotFoundError, SandboxState

        async with slot.lock:
            if slot.generation != generation or slot.sandbox is None:
                return True  # someone else already recovered it
            sandbox = slot.sandbox
            try:
                await sandbox.refresh_data()
            except DaytonaNotFoundError:
                log.info("Daytona sandbox %s is gone; creating a new one", sandbox.id)
                _untrack(slot.spec, sandbox.id)
                slot.sandbox = None
                await self._create(slot)
                return True
            state = sandbox.state
            if state == SandboxState.STARTED:
                return False
            if state in (
                SandboxState.DESTROYED,
                SandboxState.DESTROYING,
                SandboxState.ERROR,
                SandboxState.BUILD_FAILED,
            ):
                log.info("Daytona sandbox %s is %s; creating a new one", sandbox.id, state)
                await self._discard(slot, delete=state != SandboxState.DESTROYED)
                await self._create(slot)
                return True
            log.info("Daytona sandbox %s is %s; starting it", sandbox.id, state)
            if state in (SandboxState.STOPPING, SandboxState.ARCHIVING):
                await sandbox.wait_for_sandbox_stop(timeout=self._create_timeout)
            await sandbox.start(timeout=self._create_timeout)
            slot.generation += 1
            return True

    # ------------------------------------------------------------------ running
    async def _run_in_slot(
        self, slot: _Slot, code: str, language: CodeLanguage, on_output: OutputCallback | None
    ) -> CodeRunResult:
        command = _build_command(code, language, self._timeout)
        recovered = False
        while True:
            sandbox, generation = await self._ensure_sandbox(slot)
            try:
                if on_output is None and language == "python":
                    result = await self._code_run(sandbox, code, slot.spec.api_key)
                elif on_output is None:
                    result = await self._exec(sandbox, command, slot.spec.api_key)
                else:
                    result = await self._stream(slot, sandbox, generation, command, on_output, slot.spec.api_key)
            except _RunFailed as failed:
                cause = failed.__cause__
                if recovered or cause is None or not _never_reached(cause):
                    raise
                recovered = True
                if not await self._recover(slot, generation):
                    raise
                continue
            result.source_path = command.source_path
            result.line_offset = command.line_offset
            return result

    def _finish(self, buffer: OutputBuffer, exit_code: int | None, started: float) -> CodeRunResult:
        if exit_code is None:
            buffer.write("\n[daytona-lsp: the sandbox reported no exit code]\n")
            exit_code = 1
        elif exit_code in (124, 137) and time.monotonic() - started >= self._timeout:
            buffer.write(f"\nExecution timed out: the code ran longer than {self._timeout} s and was stopped\n")
            exit_code = TIMEOUT_EXIT_CODE
        return CodeRunResult(buffer.text(), exit_code, truncated=buffer.truncated)

    async def _upload(self, sandbox: AsyncSandbox, command: _Command, api_key: str) -> None:
        if command.upload is not None:
            path, data = command.upload
            try:
                await sandbox.fs.upload_file(data, path)
            except Exception as exc:
                raise _RunFailed(_error_result(exc, api_key=api_key)) from exc

    async def _code_run(self, sandbox: AsyncSandbox, code: str, api_key: str) -> CodeRunResult:
        """Python without streaming: the daemon's own code-run (code on stdin of ``python3 -u -``), exactly what a
        bare SDK ``code_run`` costs. Its timeout answer (408) carries no output; streaming runs keep it."""
        started = time.monotonic()
        try:
            response = await sandbox.process.code_run(code, timeout=self._timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            status = _status_of(exc)
            if status == 408 or isinstance(exc, TimeoutError | asyncio.TimeoutError):
                result = CodeRunResult(
                    f"Execution timed out: the code ran longer than {self._timeout} s and was stopped",
                    TIMEOUT_EXIT_CODE,
                )
            elif status is not None and not isinstance(exc, _daytona_error_type()):
                result = _error_result(_readable_api_exception(exc, status), api_key=api_key)
            else:
                result = _error_result(exc, api_key=api_key)
            raise _RunFailed(result) from exc
        buffer = OutputBuffer(self._max_output_bytes)
        buffer.write(response.result or "")
        return self._finish(buffer, response.exit_code, started)

    async def _exec(self, sandbox: AsyncSandbox, command: _Command, api_key: str) -> CodeRunResult:
        await self._upload(sandbox, command, api_key)
        started = time.monotonic()
        try:
            response = await sandbox.process.exec(command.command, timeout=self._timeout + _GRACE_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            result = _error_result(exc, api_key=api_key)
            if result.exit_code == TIMEOUT_EXIT_CODE:
                result.output = f"Execution timed out: the code ran longer than {self._timeout} s and was stopped"
            raise _RunFailed(result) from exc
        buffer = OutputBuffer(self._max_output_bytes)
        buffer.write(response.result or "")
        return self._finish(buffer, response.exit_code, started)

    async def _stream(
        self,
        slot: _Slot,
        sandbox: AsyncSandbox,
        generation: int,
        command: _Command,
        on_output: OutputCallback,
        api_key: str,
    ) -> CodeRunResult:
        from daytona import SessionExecuteRequest

        await self._upload(sandbox, command, api_key)
        buffer = OutputBuffer(self._max_output_bytes)

        async def forward(stream: OutputStream, text: str) -> None:
            shown = buffer.write(text)
            await emit(on_output, stream, shown)

        async def on_stdout(text: str) -> None:
            await forward("stdout", text)

        async def on_stderr(text: str) -> None:
            await forward("stderr", text)

        process = sandbox.process
        session_id, reused = await self._take_session(slot, sandbox, generation, api_key)
        request = SessionExecuteRequest(command=command.command, run_async=True)
        clean = False
        started = time.monotonic()
        try:
            try:
                response = await process.execute_session_command(session_id, request)
            except Exception as exc:
                if not (reused and _status_of(exc) in (404, 410)):
                    raise _RunFailed(_error_result(exc, api_key=api_key)) from exc
                # the pooled session died (e.g. the sandbox restarted): a fresh one, once
                session_id, _ = await self._take_session(slot, sandbox, generation, api_key, fresh=True)
                try:
                    response = await process.execute_session_command(session_id, request)
                except Exception as exc2:
                    raise _RunFailed(_error_result(exc2, api_key=api_key)) from exc2
            cmd_id = response.cmd_id
            try:
                await asyncio.wait_for(
                    process.get_session_command_logs_async(session_id, cmd_id, on_stdout, on_stderr),
                    self._timeout + _GRACE_SECONDS,
                )
            except (asyncio.TimeoutError, TimeoutError):
                buffer.write(f"\nExecution timed out: the code ran longer than {self._timeout} s and was stopped\n")
                return CodeRunResult(buffer.text(), TIMEOUT_EXIT_CODE, truncated=buffer.truncated)
            except Exception as exc:
                # the code did start: keep what it printed, never retry
                raise _RunFailed(_error_result(exc, api_key=api_key, output=buffer.text())) from None
            exit_code = await self._command_exit_code(sandbox, session_id, cmd_id)
            clean = exit_code is not None
            return self._finish(buffer, exit_code, started)
        finally:
            if clean and slot.session_generation == generation and slot.sandbox is sandbox:
                slot.idle_sessions.append(session_id)  # finished cleanly: the next streaming run reuses it
            else:
                # deleting the session kills whatever the command left running
                await asyncio.shield(self._delete_session(sandbox, session_id))

    async def _take_session(
        self, slot: _Slot, sandbox: AsyncSandbox, generation: int, api_key: str, *, fresh: bool = False
    ) -> tuple[str, bool]:
        """An idle session of this sandbox, or a new one. Each running command has a session of its own
        (a session runs its commands one after another), so concurrent runs stay concurrent."""
        if slot.session_generation != generation or fresh:
            slot.idle_sessions.clear()
            slot.session_generation = generation
        if slot.idle_sessions:
            return slot.idle_sessions.pop(), True
        session_id = f"daytona-lsp-{uuid.uuid4().hex}"
        try:
            await sandbox.process.create_session(session_id)
        except Exception as exc:
            raise _RunFailed(_error_result(exc, api_key=api_key)) from exc
        return session_id, False

    async def _command_exit_code(self, sandbox: AsyncSandbox, session_id: str, cmd_id: str) -> int | None:
        """The exit code, which some daemons record a moment after the log stream ends (bounded wait)."""
        delay = 0.02
        deadline = time.monotonic() + 5
        while True:
            try:
                command = await sandbox.process.get_session_command(session_id, cmd_id)
            except Exception as exc:  # noqa: BLE001 - unknown exit code is reported, never success
                log.info("could not read the exit code: %s", type(exc).__name__)
                return None
            if command.exit_code is not None or time.monotonic() >= deadline:
                return command.exit_code
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def _delete_session(self, sandbox: AsyncSandbox, session_id: str) -> None:
        try:
            await sandbox.process.delete_session(session_id)
        except Exception as exc:  # noqa: BLE001 - the sandbox may be gone already
            log.info("could not delete session %s: %s", session_id, type(exc).__name__)


# --------------------------------------------------------------------------- CLI helpers (sandboxes list|clean)
def _helper_client(api_key: str | None, api_url: str | None, target: str | None) -> tuple[AsyncDaytona, str]:
    from daytona import AsyncDaytona, DaytonaConfig

    key = _api_key_from(api_key)
    url = api_url or os.environ.get("DAYTONA_API_URL") or DEFAULT_API_URL
    return AsyncDaytona(DaytonaConfig(api_key=key, api_url=url, target=target or os.environ.get("DAYTONA_TARGET"))), key


async def _ours(client: AsyncDaytona) -> list[AsyncSandbox]:
    from daytona import ListSandboxesQuery

    found = []
    async for sandbox in client.list(ListSandboxesQuery(labels={CREATED_BY_LABEL: CREATED_BY_VALUE})):
        if (sandbox.labels or {}).get(CREATED_BY_LABEL) == CREATED_BY_VALUE:
            found.append(sandbox)
    return found


async def list_sandboxes(
    *, api_key: str | None = None, api_url: str | None = None, target: str | None = None
) -> list[dict[str, Any]]:
    """The sandboxes daytona-lsp created (label ``created-by: daytona-lsp``): id, name, state, labels, created.

    Raises :class:`MissingCredentialsError` without an API key, ``daytona.DaytonaError`` when the API fails
    (its message never contains the key)."""
    client, key = _helper_client(api_key, api_url, target)
    try:
        try:
            sandboxes = await _ours(client)
        except Exception as exc:
            raise _sanitized(exc, key) from None
        return [
            {
                "id": s.id,
                "name": s.name,
                "state": str(getattr(s.state, "value", s.state)) if s.state is not None else None,
                "labels": dict(s.labels or {}),
                "created": s.created_at,
            }
            for s in sandboxes
        ]
    finally:
        await client.close()


async def delete_sandboxes(
    ids: Sequence[str] | None = None,
    *,
    api_key: str | None = None,
    api_url: str | None = None,
    target: str | None = None,
) -> list[str]:
    """Delete the sandboxes daytona-lsp created (all of them, or those of ``ids``: ids or names); return the deleted
    ids. Sandboxes without the ``created-by: daytona-lsp`` label are never deleted: naming one (or an unknown id)
    raises ``ValueError`` before anything is deleted."""
    client, key = _helper_client(api_key, api_url, target)
    try:
        try:
            sandboxes = await _ours(client)
        except Exception as exc:
            raise _sanitized(exc, key) from None
        wanted = set(ids) if ids is not None else None
        if wanted:
            known = {s.id for s in sandboxes} | {s.name for s in sandboxes}
            strangers = sorted(wanted - known)
            if strangers:
                raise ValueError(
                    f"Not sandboxes created by daytona-lsp (nothing deleted): {', '.join(strangers)}. "
                    "`daytona-lsp sandboxes list` shows the ones it created."
                )
        deleted = []
        for sandbox in sandboxes:
            if wanted is not None and sandbox.id not in wanted and sandbox.name not in wanted:
                continue
            try:
                await sandbox.delete(timeout=60)
            except Exception as exc:
                raise _sanitized(exc, key) from None
            deleted.append(sandbox.id)
        return deleted
    finally:
        await client.close()


def _sanitized(exc: Exception, key: str) -> Exception:
    from daytona import DaytonaError

    message = _scrub(str(exc), key)
    if isinstance(exc, DaytonaError):
        return type(exc)(message) if message != str(exc) else exc
    return DaytonaError(f"{type(exc).__name__}: {message}")
