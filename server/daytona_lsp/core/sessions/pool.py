"""The sessions of one sandbox, whatever hosts their workers: one persistent worker per (key, language), started on
first use, reused after; one cell at a time in each; timeouts and cancellation interrupt (state kept), a cell that
ignores the interrupt is killed after a grace period (the next run starts a fresh session and says so).

A backend supplies how to start a worker (a :class:`Worker`: the local agent's, a Daytona session command's) and how
output is written; everything else about sessions is decided here, once for every backend.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..environment import (
    STDIN_CLOSED_NOTE,
    TIMEOUT_EXIT_CODE,
    CodeLanguage,
    InputChannel,
    OutputStream,
    RunSpec,
    SessionInfo,
    SessionState,
)
from .client import WorkerDied
from .protocol import Cell, ExecuteResult

log = logging.getLogger(__name__)

INTERRUPT_GRACE_S = 3.0
"""How long interrupted code may take to stop before its session is killed."""
SESSION_FAILED_EXIT_CODE = 125
"""Exit code of a session run whose worker could not start or died (the code's effect is unknown)."""
INTERRUPTED_EXIT_CODE = 130
"""Exit code of a cell stopped by SIGINT that the host did not send (as a shell reports it)."""

Write = Callable[[OutputStream, str], Awaitable[None]]
"""Where a session run's output goes: ``(stream, text)``; ``"stderr"`` for the worker's error reports."""


class Worker(Protocol):
    """One running session worker, hosted by a backend. ``execute`` raises :class:`WorkerDied` once it is gone."""

    @property
    def alive(self) -> bool: ...

    async def execute(self, cell: Cell, *, on_output: Write, input: InputChannel | None = None) -> ExecuteResult:
        """Run one cell: ``input`` gives more input after its preset as the code asks (without: EOF after the
        preset); it is detached when the cell ends."""
        ...

    async def interrupt(self) -> None:
        """SIGINT to the running code (its processes); the state survives."""
        ...

    async def kill(self) -> None:
        """End the worker and everything it started (idempotent); a running ``execute`` raises WorkerDied."""
        ...


@dataclass(slots=True)
class Outcome:
    """How a session run ended: the run's exit code, a closing note for the output (``""``: none), the value."""

    exit_code: int
    note: str = ""
    value: str | None = None


@dataclass(eq=False)
class _Session:
    key: str
    language: CodeLanguage
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    worker: Worker | None = None
    scope: object = None
    """What the worker runs in (the backend's sandbox): a worker of another scope is replaced."""
    state: SessionState = "idle"
    ended: str = ""
    """Why the last worker ended unasked (said by the next run, which starts a fresh one)."""
    ending: str = ""
    """Why the host is ending the worker now (restart, close), for the result of the cell it interrupts."""


def cell_of(spec: RunSpec, filename: str) -> Cell:
    """The cell a session run of ``spec`` is (its code shown as ``filename``)."""
    return Cell(spec.code, filename=filename, args=tuple(spec.args), stdin=spec.stdin)


class SessionPool:
    def __init__(self, *, grace: float = INTERRUPT_GRACE_S) -> None:
        self.grace = grace
        self._sessions: dict[tuple[str, CodeLanguage], _Session] = {}

    def info(self) -> list[SessionInfo]:
        """The live (or starting) sessions."""
        return [
            {"key": s.key, "language": s.language, "state": s.state}
            for s in self._sessions.values()
            if s.state != "idle" or (s.worker is not None and s.worker.alive)
        ]

    async def run(
        self,
        key: str,
        language: CodeLanguage,
        cell: Cell,
        *,
        start: Callable[[], Awaitable[Worker]],
        write: Write,
        timeout: float,
        scope: object = None,
        input: InputChannel | None = None,
    ) -> Outcome:
        """Run ``cell`` in the session (key, language), starting its worker with ``start`` when there is none (or
        its worker runs in another ``scope``: the sandbox was replaced). ``cell.stdin`` / ``input``: the cell's
        input, as a fresh run's (:attr:`~daytona_lsp.core.environment.RunSpec.stdin` / ``input``; with neither, code
        that reads gets EOF and the output says stdin is closed). Never raises but
        :class:`asyncio.CancelledError` while waiting for the session (a cell running in it)."""
        session = self._sessions.get((key, language))
        if session is None:
            session = self._sessions[(key, language)] = _Session(key, language)
        async with session.lock:
            worker = session.worker
            if worker is not None and session.scope is not scope:
                await _kill(worker)
                worker = session.worker = None
            if worker is not None and not worker.alive:  # it ended between runs (a thread of it called os._exit…)
                session.ended = session.ended or f"the previous {language} session ended"
                await _kill(worker)
            if worker is None or not worker.alive:
                session.state = "starting"
                try:
                    worker = session.worker = await start()
                    session.scope = scope
                except (OSError, WorkerDied) as exc:
                    return Outcome(SESSION_FAILED_EXIT_CODE, f"Could not start the {language} session: {exc}")
                finally:
                    session.state = "idle"
                if session.ended:
                    await write("stderr", f"[daytona-lsp: {session.ended}; this run started a fresh session]\n")
                    session.ended = ""
            session.state = "busy"
            try:
                return await self._execute(session, worker, cell, input, write, timeout)
            finally:
                session.state = "idle"
                session.ending = ""

    async def _execute(
        self,
        session: _Session,
        worker: Worker,
        cell: Cell,
        input: InputChannel | None,
        write: Write,
        timeout: float,
    ) -> Outcome:
        task = asyncio.ensure_future(worker.execute(cell, on_output=write, input=input))
        reason = ""
        cancelled = False
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                reason = f"Execution timed out after {timeout:g} s"
        except asyncio.CancelledError:
            cancelled = True
            reason = "Run cancelled"
        killed = False
        if reason:
            await _settle(worker.interrupt(), self.grace)
            if not await _settle(task, self.grace):
                killed = True
                await _settle(_kill(worker), self.grace)
                await _settle(task, self.grace)
        if cancelled:
            _uncancel()
        if not task.done():  # a worker that does not answer after its kill: forget it
            task.cancel()
            session.worker = None
            return Outcome(TIMEOUT_EXIT_CODE, f"{reason}: the session did not end; the next run starts a fresh one.")
        try:
            result = task.result()
        except WorkerDied as exc:
            session.worker = None
            await _kill(worker)  # whatever of it is left (its pipes)
            if killed:
                what = f"{reason}: the code ignored the interrupt for {self.grace:g} s, so the session was killed"
                session.ended = "the previous session was killed (it ignored an interrupt)"
                return Outcome(TIMEOUT_EXIT_CODE, f"{what}; the next run starts a fresh one.")
            if session.ending:
                return Outcome(SESSION_FAILED_EXIT_CODE, f"The session was ended: {session.ending}.")
            session.ended = f"the previous {session.language} session ended"
            return Outcome(SESSION_FAILED_EXIT_CODE, f"{_sentence(str(exc))}; the next run starts a fresh session.")
        except Exception as exc:  # a broken worker: never the caller's problem
            log.exception("daytona-lsp: a session run failed")
            await _kill(worker)
            session.worker = None
            session.ended = "the previous session failed"
            return Outcome(SESSION_FAILED_EXIT_CODE, f"The session failed ({exc}); the next run starts a fresh one.")
        outcome = await _outcome(result, reason, write)
        if result.stdin_closed and cell.stdin is None:  # as a fresh run's: it read EOF as no input was given
            outcome.note = "\n".join(filter(None, (STDIN_CLOSED_NOTE, outcome.note)))
        return outcome

    async def restart(self, key: str | None = None) -> int:
        """End the workers of ``key`` (``None``: all); how many were running. Their next run starts fresh."""
        workers: list[Worker] = []
        running = 0
        for session in [s for s in self._sessions.values() if key is None or s.key == key]:
            worker, session.worker, session.ended = session.worker, None, ""
            if worker is not None:
                running += worker.alive
                session.ending = "it was restarted"
                workers.append(worker)
        await asyncio.gather(*map(_kill, workers))  # at once: a remote kill takes a round trip or two
        return running

    async def close(self, key: str | None = None) -> int:
        """As :meth:`restart`, and forget the sessions (their document was closed, or the sandbox is going)."""
        ended = await self.restart(key)
        for k in [k for k in self._sessions if key is None or k[0] == key]:
            del self._sessions[k]
        return ended


async def _outcome(result: ExecuteResult, reason: str, write: Write) -> Outcome:
    if result.error:
        await write("stderr", result.error if result.error.endswith("\n") else result.error + "\n")
    if result.status == "ok":
        return Outcome(0, value=result.value)
    if result.status == "error":
        return Outcome(1)
    if result.status == "interrupted":
        if reason:
            return Outcome(TIMEOUT_EXIT_CODE, f"{reason}: the code was interrupted; the session keeps its state.")
        return Outcome(INTERRUPTED_EXIT_CODE)
    code = result.exit_code if result.exit_code is not None else 0
    note = "" if result.error else f"The code exited with status {code}; the session lives on."
    return Outcome(code, note)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


async def _settle(work: Awaitable[object], timeout: float) -> bool:
    """Wait (bounded) for ``work`` even when the awaiting task is cancelled meanwhile (an interrupt, a kill: what
    ends a cell must not be cut short); whether it is done. Its failure is logged, never raised."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not task.done():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        try:
            await asyncio.wait({task}, timeout=remaining)
        except asyncio.CancelledError:
            _uncancel()
    if not task.cancelled() and task.exception() is not None and not isinstance(task.exception(), WorkerDied):
        log.warning("daytona-lsp: ending a session cell: %r", task.exception())
    return True


async def _kill(worker: Worker) -> None:
    try:
        await worker.kill()
    except Exception:
        log.exception("daytona-lsp: killing a session worker failed")


def _uncancel() -> None:
    """A cancellation turned into a result: tell the task (Python >= 3.11), so that it is not seen as cancelling."""
    task = asyncio.current_task()
    if task is not None and sys.version_info >= (3, 11):
        task.uncancel()
