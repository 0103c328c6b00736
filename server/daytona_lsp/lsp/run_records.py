"""The records of a run (no LSP types): what the server asks for (:class:`RunRequest`), the run while it goes
(:class:`Run`), what it came to (:class:`RunOutcome`), who is told (:class:`RunObserver`). The service that runs them:
:mod:`daytona_lsp.lsp.runs`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from daytona_lsp.core.environment import CodeLanguage, InputChannel
from daytona_lsp.lsp.settings import Settings
from daytona_lsp.lsp.workspace import Placement


class RunError(Exception):
    """A run could not start (no environment could be built…). The message is safe to show."""


@dataclass
class RunRequest:
    """What to run and where its lines are in the buffer."""

    uri: str
    code: str
    language: CodeLanguage
    workspace: str
    settings: Settings
    first_line: int = 0
    """Buffer line of the code's line 0."""
    column_offsets: tuple[int, ...] = ()
    """Per code line, how many characters precede it in the buffer (selection start, removed indentation)."""
    range: Mapping[str, Any] | None = None
    """The LSP range that was run (None: the whole document)."""
    line_count: int = 0
    request_id: Any = None
    """JSON-RPC id of the request that started the run (for $/cancelRequest)."""
    args: tuple[str, ...] = ()
    """The program's arguments (its argv after the file name), exactly."""
    stdin: str | None = None
    """Preset input for the program (None: it reads EOF at once, unless ``interactive``)."""
    placement: Placement | None = None
    """The document's workspace folder as the run sees it, its path and cwd there (None: outside every folder)."""
    interactive: bool = False
    """The client answers ``daytona/inputRequested`` (``initializationOptions.interactiveInput``): the program's
    stdin stays open for :meth:`RunService.send_input` after the preset."""
    session: str | None = None
    """The key of the persistent session to run in (the document's URI), None: a fresh process."""
    work_done_token: str | int | None = None
    """The ``workDoneToken`` the client gave the request: the run's progress is reported on it (None: the server
    creates a token of its own once the run lasts)."""


@dataclass
class RunOutcome:
    run_id: str
    exit_code: int
    output: str
    truncated: bool
    duration_ms: int
    backend: str
    cancelled: bool = False
    source_path: str | None = None
    line_offset: int = 0
    changed_files: list[str] = field(default_factory=list)
    workspace_root: str | None = None
    """The workspace folder's path in the sandbox, when the backend says (see CodeRunResult.workspace_root)."""
    value: str | None = None
    """A session run's trailing value (``repr``, capped by the backend)."""

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "runId": self.run_id,
            "exitCode": self.exit_code,
            "output": self.output,
            "truncated": self.truncated,
            "durationMs": self.duration_ms,
            "backend": self.backend,
        }
        if self.changed_files:
            out["changedFiles"] = list(self.changed_files)
        if self.value is not None:
            out["value"] = self.value
        return out


@dataclass(eq=False)
class Run:
    id: str
    request: RunRequest
    backend: str
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task[RunOutcome] | None = None
    cancel_requested: bool = False
    streamed_bytes: int = 0
    """How much of the output (UTF-8 bytes, at most the cap) went to the observer while running."""
    data: dict[str, Any] = field(default_factory=dict)
    """Scratch space for observers (progress token…)."""
    input: InputChannel | None = None
    """The program's stdin, for an interactive run."""
    reported: bool = False
    """The observer was told it started."""

    @property
    def done(self) -> bool:
        return self.task is not None and self.task.done()

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)


class RunObserver(Protocol):
    def run_started(self, run: Run) -> None: ...

    async def run_output(self, run: Run, stream: str, text: str) -> None: ...

    def run_finished(self, run: Run, outcome: RunOutcome) -> None: ...


class NullObserver:
    """Observes nothing (a service without an observer)."""

    def run_started(self, run: Run) -> None:
        pass

    async def run_output(self, run: Run, stream: str, text: str) -> None:
        pass

    def run_finished(self, run: Run, outcome: RunOutcome) -> None:
        pass


InputRequestedHandler = Callable[[Run, str], None]
"""Told (run, prompt) when an interactive run's program waits for input."""
