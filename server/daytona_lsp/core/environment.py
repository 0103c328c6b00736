"""The environment API every backend implements. No editor knowledge here: never import pygls or lsprotocol."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypedDict, TypeVar, runtime_checkable

from daytona_lsp.core.languages import LANGUAGES as LANGUAGES  # declared in the one language registry
from daytona_lsp.core.languages import CodeLanguage as CodeLanguage

OutputStream = Literal["stdout", "stderr"]
OutputCallback = Callable[[OutputStream, str], "Awaitable[None] | None"]
"""Receives ``(stream, text)`` chunks while the code runs. May be sync or async."""

log = logging.getLogger(__name__)

TIMEOUT_EXIT_CODE = 124
"""Exit code of a run that hit its timeout or was cancelled (as coreutils ``timeout``)."""


@dataclass(slots=True)
class CodeRunResult:
    """What one run produced.

    ``output`` is stdout and stderr interleaved as produced (capped: see ``truncated``).
    ``source_path`` is the file name the code had inside the sandbox as tracebacks show it (``<stdin>``,
    ``/tmp/…/main.py``…) and ``line_offset`` how many lines the backend put before the user's code, so that
    :mod:`daytona_lsp.core.errors` can map reported lines back to the code's own lines.
    """

    output: str
    exit_code: int
    truncated: bool = False
    duration_ms: int | None = None
    source_path: str | None = None
    line_offset: int = 0
    backend: str | None = None
    changed_files: list[str] = field(default_factory=list)
    """Workspace-relative paths (``/``-separated) of the workspace files the run created or changed in the sandbox's
    copy (empty without :attr:`RunSpec.workspace`)."""
    value: str | None = None
    """A session run's trailing expression value (``repr``, capped); ``None`` otherwise."""
    workspace_root: str | None = None
    """Where the run saw :attr:`WorkspaceView.root`: the path of the workspace folder inside the sandbox (Daytona: the
    synced copy, ``~/workspace/<folder name>``), so that paths under it in tracebacks map back to the user's files
    (``None`` without a workspace)."""


class RunContext(Protocol):
    """Anything with a ``variables`` mapping (an agent's conversation context, the LSP's workspace settings…)."""

    @property
    def variables(self) -> Mapping[str, Any]: ...


@dataclass(slots=True)
class SimpleContext:
    """The simplest :class:`RunContext`."""

    variables: Mapping[str, Any] = field(default_factory=dict)


_MISSING: Any = object()
T = TypeVar("T")


class Variable:
    """A deferred parameter, resolved from ``context.variables[name]`` on every run.

    >>> Variable("api_key").resolve(SimpleContext({"api_key": "k"}))
    'k'
    """

    __slots__ = ("name", "default", "default_factory")

    def __init__(self, name: str, *, default: Any = _MISSING, default_factory: Callable[[], Any] | None = None) -> None:
        if default is not _MISSING and default_factory is not None:
            raise ValueError("Specify either `default` or `default_factory`, not both.")
        self.name = name
        self.default = default
        self.default_factory = default_factory

    def resolve(self, context: RunContext | None) -> Any:
        variables: Mapping[str, Any] = getattr(context, "variables", None) or {}
        if self.name in variables:
            return variables[self.name]
        if self.default is not _MISSING:
            return self.default
        if self.default_factory is not None:
            return self.default_factory()
        raise KeyError(f"Context variable {self.name!r} not found and no default provided")

    def __repr__(self) -> str:
        return f"Variable({self.name!r})"


def resolve_variable(value: T | Variable, context: RunContext | None) -> T:
    """``value`` itself, or what a :class:`Variable` resolves to in ``context``."""
    return value.resolve(context) if isinstance(value, Variable) else value


async def emit(on_output: OutputCallback | None, stream: OutputStream, text: str) -> None:
    """Call an output callback that may be sync or async; a failing callback never breaks the run."""
    if on_output is None or not text:
        return
    try:
        result = on_output(stream, text)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("daytona-lsp: output callback failed")


def not_enabled_result(language: str, available: tuple[str, ...]) -> CodeRunResult:
    """The result for a language the environment does not accept (exit 2, nothing created)."""
    return CodeRunResult(output=f"Language {language!r} is not enabled. Available: {list(available)}", exit_code=2)


def elapsed_ms(start: float) -> int:
    return int((time.monotonic() - start) * 1000)


MAX_STDIN_BYTES = 16 * 1024 * 1024
"""The largest preset stdin (UTF-8) a run takes, from any caller (CLI, ``daytona.run``)."""


MAX_INPUT_BYTES = 1024 * 1024
"""The largest piece of interactive input (UTF-8) one :meth:`InputChannel.send` takes."""

STDIN_CLOSED_NOTE = "stdin is closed (no input was given)"
"""The note of a run whose program read its stdin when no input was given (it read EOF)."""

InputRequestedCallback = Callable[[str], "Awaitable[None] | None"]
"""Receives the prompt (the partial last output line, ``""`` if none) when the program waits for input."""


class InputClosed(Exception):
    """Input for a run that takes no more: it finished, or its stdin was closed (EOF sent)."""


class InputSink(Protocol):
    """A backend's end of an :class:`InputChannel`: where the program's stdin goes."""

    async def write(self, text: str) -> None: ...

    async def close(self) -> None: ...


class InputChannel:
    """A running program's stdin fed as the caller goes (:attr:`RunSpec.input`).

    The caller: :meth:`send` a line (a newline is added unless ``text`` ends with one, as Daytona's daemon does),
    :meth:`close` (EOF); ``on_input_requested(prompt)`` is called when the program waits for input (it blocks
    reading its stdin with nothing to read; ``prompt`` is the partial last output line). Input sent before the
    program starts is kept for it. What is sent is echoed in the run's output, as a terminal shows it (unless
    ``echo=False``).
    The backend: :meth:`attach` its sink once the program runs, :meth:`detach` when the run ended,
    :meth:`input_requested` when it sees the program wait.
    """

    def __init__(self, on_input_requested: InputRequestedCallback | None = None, *, echo: bool = True) -> None:
        self.on_input_requested = on_input_requested
        self.echo = echo
        """Echo what is sent in the run's output (off where a terminal echoes the typing itself)."""
        self._sink: InputSink | None = None
        self._pending: list[str] = []
        self._eof = False
        self._ended = False

    @property
    def is_open(self) -> bool:
        """Whether :meth:`send` takes input (the run has not ended and EOF was not sent)."""
        return not (self._eof or self._ended)

    async def send(self, text: str) -> None:
        """Feed one line to the program. Raises :class:`InputClosed` or ``ValueError`` (over the size cap)."""
        if not self.is_open:
            raise InputClosed("the run has ended" if self._ended else "the run's stdin was closed")
        if len(text.encode("utf-8", "surrogatepass")) > MAX_INPUT_BYTES:
            raise ValueError(f"input larger than {MAX_INPUT_BYTES} bytes")
        line = text if text.endswith("\n") else text + "\n"
        if self._sink is None:
            self._pending.append(line)
        else:
            await self._sink.write(line)

    async def close(self) -> None:
        """End the program's input (it reads EOF); idempotent."""
        if self._eof:
            return
        self._eof = True
        if self._sink is not None and not self._ended:
            await self._sink.close()

    async def attach(self, sink: InputSink) -> None:
        """Backend: the program runs; hand it what was sent so far (and EOF, if that was sent)."""
        while self._pending:
            await sink.write(self._pending.pop(0))
        self._sink = sink
        if self._eof:
            await sink.close()

    def detach(self) -> None:
        """Backend: the run has ended; input for it is refused from now on."""
        self._ended = True
        self._sink = None

    async def input_requested(self, prompt: str) -> None:
        """Backend: the program waits for input. A failing callback never breaks the run."""
        if self.on_input_requested is None:
            return
        try:
            result = self.on_input_requested(prompt)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("daytona-lsp: input-requested callback failed")


MAX_FILE_BYTES = 10 * 1024 * 1024
"""Default cap on one workspace file a run sees (larger ones are skipped and named)."""
MAX_TOTAL_BYTES = 200 * 1024 * 1024
"""Default cap on all the workspace files a run sees together."""


@dataclass(frozen=True, slots=True)
class WorkspaceView:
    """The workspace folder a run sees (see :mod:`daytona_lsp.core.workspace`).

    ``root`` is the folder's absolute host path. ``overlays``: open documents' unsaved text keyed by path (absolute,
    or relative to ``root``) — what the run sees for those files instead of the disk copy. ``include`` names files the
    ignore rules or the secrets deny-list would leave out. The caps bound what is made visible (Daytona: uploaded).
    ``write_back``: copy what the run created or changed back to the host folder (off by default).
    """

    root: str
    overlays: Mapping[str, str] = field(default_factory=dict)
    include: tuple[str, ...] = ()
    max_file_bytes: int = MAX_FILE_BYTES
    max_total_bytes: int = MAX_TOTAL_BYTES
    write_back: bool = False


@dataclass(frozen=True, slots=True)
class RunSpec:
    """What one run is: the same for every backend.

    ``path`` is the file's workspace-relative path (``None`` for a snippet or an untitled buffer), ``cwd`` the
    workspace-relative directory to run in (``None``: the sandbox's work directory), ``args`` the program's arguments,
    ``stdin`` preset input, ``input`` interactive input after it (:class:`InputChannel`); with neither the program
    reads EOF at once (and its output ends with :data:`STDIN_CLOSED_NOTE` when it did read), ``env`` extra environment variables for
    this run only. ``workspace``: the folder the run sees (``None``: none, only the code); with it the program runs
    as the file at its real path (``root/path``: ``__file__``, ``sys.argv[0]``, ``$0``). ``session``: the key of a
    persistent interpreter to run in (e.g. the document's URI; the backend keys it by key + language), ``None``: a
    fresh process. ``separate_stderr``:
    stream the program's stderr (and the backend's own notes) as ``"stderr"`` — a terminal's view; otherwise a backend
    may merge stderr into stdout to keep the exact order of the two (the local sandbox does: one pipe).
    """

    code: str
    language: CodeLanguage
    path: str | None = None
    cwd: str | None = None
    args: tuple[str, ...] = ()
    stdin: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    workspace: WorkspaceView | None = None
    session: str | None = None
    separate_stderr: bool = False
    input: InputChannel | None = field(default=None, compare=False)


SessionState = Literal["idle", "busy", "starting"]


class SessionInfo(TypedDict):
    """One persistent session of a sandbox: its key (:attr:`RunSpec.session`), language and state."""

    key: str
    language: CodeLanguage
    state: SessionState


class _SandboxInfoBase(TypedDict):
    backend: str
    state: str


class SandboxInfo(_SandboxInfoBase, total=False):
    """What ``daytona.sandboxInfo`` reports of an environment's sandbox (``sandboxId`` once there is one).

    ``state``: ``none`` (no sandbox yet), ``creating``, ``ready``, ``running``, ``closed``, or the backend's own word
    (Daytona's sandbox states: ``started``, ``stopped``…)."""

    sandboxId: str
    sessions: list[SessionInfo]


@runtime_checkable
class CodeEnvironment(Protocol):
    """Runs code in a sandbox: the one interface the LSP layer (and any other caller) knows backends by.

    ``execute`` (and the seed's ``run``, a thin call of it) never raise for problems of the code or the sandbox:
    they come back as a result with a non-zero exit code and a readable ``output``. Cancelling the awaiting task ends
    the run (exit 124, output so far).
    """

    @property
    def supported_languages(self) -> tuple[CodeLanguage, ...]: ...

    @property
    def sandbox_id(self) -> str | None:
        """The id of the sandbox runs use now (``None`` while there is none)."""
        ...

    def info(self) -> SandboxInfo:
        """Backend, state and sandbox id (and ``sessions``: the live sessions, when there are any), for the editor's sandbox-info command
        (cheap, never blocks)."""
        ...

    async def execute(
        self, spec: RunSpec, on_output: OutputCallback | None = None, *, context: RunContext | None = None
    ) -> CodeRunResult:
        """Run ``spec``, streaming output to ``on_output`` (what is streamed adds up to ``result.output``)."""
        ...

    async def run(
        self,
        code: str,
        language: CodeLanguage,
        *,
        context: RunContext | None = None,
        on_output: OutputCallback | None = None,
    ) -> CodeRunResult:
        """The seed's API: run a snippet (no file path, args or stdin)."""
        return await self.execute(RunSpec(code=code, language=language), on_output, context=context)

    async def restart_session(self, key: str | None = None) -> int:
        """End the sessions of ``key`` (every language; ``None``: all sessions); returns how many were ended. The
        next run with that key starts a fresh one."""
        ...

    async def close_session(self, key: str) -> None:
        """End the sessions of ``key`` for good (its document was closed)."""
        ...

    async def prewarm(self, *, context: RunContext | None = None) -> None:
        """Create the sandbox a run would use now, so the first run starts sooner. Raises when it cannot."""
        ...

    async def reset(self) -> None:
        """Tear the sandbox down (its processes and files); the next run gets a fresh one."""
        ...

    async def aclose(self) -> None:
        """Tear everything down; idempotent. Runs after it get a clear result."""
        ...

    async def __aenter__(self) -> CodeEnvironment:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
