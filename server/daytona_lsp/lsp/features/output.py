"""Run events → the client: ``daytona/*`` notifications (opted-in clients) or log lines and a summary (plain clients),
work-done progress, and diagnostics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from daytona_lsp.lsp.features import diagnostics, inlay_hints
from daytona_lsp.lsp.runs import Run, RunOutcome
from daytona_lsp.lsp.settings import run_flags

if TYPE_CHECKING:
    from daytona_lsp.lsp.server import DaytonaLanguageServer

log = logging.getLogger(__name__)

RUN_STARTED = "daytona/runStarted"
OUTPUT = "daytona/output"
RUN_FINISHED = "daytona/runFinished"
RUN_FINISHED_KEYS = ("runId", "exitCode", "durationMs", "truncated", "changedFiles", "value")
"""What of the command's result ``daytona/runFinished`` carries (not the output: it was streamed)."""
PROGRESS_DELAY_S = 0.25
"""A run the client gave no ``workDoneToken`` gets progress of the server's own once it lasts this long: a run of a few
milliseconds (most, in a warm sandbox) costs no ``window/workDoneProgress/create`` round trip and no begin/end, and
shows no progress that would flash by before anyone could click its Cancel (editors delay theirs likewise)."""
PROGRESS_INTERVAL_S = 1.0
SUMMARY_LINES = 5
SUMMARY_WIDTH = 200
CHANGED_FILES_SHOWN = 10


def _name(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1] or uri


def summary(run: Run, outcome: RunOutcome) -> tuple[types.MessageType, str]:
    """The one-line result: ``exit 0 in 412 ms`` or the last error line."""
    where = _name(run.request.uri)
    if outcome.cancelled:
        return types.MessageType.Warning, f"{where}: run cancelled after {outcome.duration_ms} ms"
    if outcome.exit_code == 0:
        return types.MessageType.Info, f"{where}: exit 0 in {outcome.duration_ms} ms"
    line = diagnostics.last_error_line(outcome.output)
    text = f"{where}: exit {outcome.exit_code} in {outcome.duration_ms} ms"
    return types.MessageType.Error, f"{text}: {line}" if line else text


def last_lines(output: str, count: int = SUMMARY_LINES, width: int = SUMMARY_WIDTH) -> list[str]:
    """The last ``count`` non-empty lines of ``output`` (each cut to ``width`` characters), oldest first."""
    found: list[str] = []
    end = len(output)
    while end > 0 and len(found) < count:
        start = output.rfind("\n", 0, end) + 1
        line = output[start:end].rstrip("\r")
        if line.strip():
            found.append(line if len(line) <= width else line[: width - 1] + "…")
        end = start - 1
    return found[::-1]


def changed_files_line(files: list[str], limit: int = CHANGED_FILES_SHOWN) -> str:
    """The one output line naming the workspace files a run created or changed (the sandbox's copy)."""
    shown = ", ".join(files[:limit])
    more = f" and {len(files) - limit} more" if len(files) > limit else ""
    return f"changed files: {shown}{more}"


def plain_summary(run: Run, outcome: RunOutcome) -> tuple[types.MessageType, str]:
    """What a plain client shows (``window/showMessage``): the one-line result, then the output's last lines."""
    kind, message = summary(run, outcome)
    tail = last_lines(outcome.output)
    return kind, "\n".join([message, *tail])


class RunReporter:
    """The :class:`~daytona_lsp.lsp.runs.RunObserver` of the language server."""

    def __init__(self, server: DaytonaLanguageServer) -> None:
        self.server = server
        self.diagnostics = diagnostics.DiagnosticsPublisher(server)
        self.values = inlay_hints.ValueHints(server)
        self._partial: dict[str, str] = {}

    def _channel(self, run: Run) -> bool:
        return run.request.settings.output_mode in ("channel", "both")

    # ---- RunObserver --------------------------------------------------------------------------------------------
    def run_started(self, run: Run) -> None:
        req = run.request
        self.diagnostics.run_started(run)
        flags = run_flags(req.settings) if run.backend == "local" else []
        if self.server.output_notifications:
            # not held for the answer: the sandbox has the run already (see RunService), the client reads this meanwhile
            self.server.protocol.notify(
                RUN_STARTED,
                {
                    "runId": run.id,
                    "uri": req.uri,
                    "range": req.range,
                    "language": req.language,
                    "backend": run.backend,
                },
                hold=False,
            )
            if flags and self._channel(run):  # editors print the header themselves: the warning is the run's first line
                text = f"⚠ {' · '.join(flags)}: this run is not fully isolated (daytona.local settings)\n"
                self.server.protocol.notify(OUTPUT, {"runId": run.id, "stream": "stderr", "text": text}, hold=False)
        elif self._channel(run):
            what = "selection" if req.range is not None else "file"
            where = ", ".join([f"{run.backend} sandbox", *flags])
            self._log(f"▶ run {run.id}: {_name(req.uri)} ({what}, {req.language}, {where})")
        self._start_progress(run)

    async def run_output(self, run: Run, stream: str, text: str) -> None:
        if not self._channel(run):
            return
        if self.server.output_notifications:
            self.server.protocol.notify(OUTPUT, {"runId": run.id, "stream": stream, "text": text})
            return
        # plain clients: whole lines as window/logMessage
        pending = self._partial.get(run.id, "") + text
        *lines, rest = pending.split("\n")
        self._partial[run.id] = rest
        for line in lines:
            self._log(line)

    def run_finished(self, run: Run, outcome: RunOutcome) -> None:
        """Diagnostics, the end of the output (or the summary), the end of progress, then the answer to the request
        that waits for the run: all in the turn the result is known (one write, for a short run)."""
        self.diagnostics.run_finished(run, outcome)
        self.values.run_finished(run, outcome)
        rest = self._partial.pop(run.id, "")
        wire = outcome.wire()
        if self.server.output_notifications:
            self.server.protocol.notify(RUN_FINISHED, {k: wire[k] for k in RUN_FINISHED_KEYS if k in wire})
        else:
            if rest and self._channel(run):
                self._log(rest)
            if outcome.value is not None and self._channel(run):
                self._log(f"Out: {outcome.value}")
            kind, message = summary(run, outcome)
            if self._channel(run):
                self._log(f"■ run {run.id}: {message}")
                if outcome.changed_files:
                    self._log(changed_files_line(outcome.changed_files))
            kind, message = plain_summary(run, outcome)
            self.server.window_show_message(types.ShowMessageParams(type=kind, message=message))
        self._end_progress(run, outcome)
        if run.request.request_id is not None:
            self.server.protocol.answer(run.request.request_id, wire)

    def _log(self, line: str) -> None:
        self.server.window_log_message(types.LogMessageParams(type=types.MessageType.Log, message=line))

    # ---- progress -----------------------------------------------------------------------------------------------
    def _start_progress(self, run: Run) -> None:
        token = run.request.work_done_token
        if token is not None:  # the client made the token for this request: it shows the progress from the start
            self._track(run, token)
            self._begin(run, token)
            run.data["progress"] = asyncio.ensure_future(self._quietly(run, self._report(run, token)))
        elif self.server.supports_progress():  # a timer, not a task: most runs end before it fires
            run.data["progress_timer"] = asyncio.get_running_loop().call_later(
                PROGRESS_DELAY_S,
                lambda: run.data.update(progress=asyncio.ensure_future(self._quietly(run, self._progress(run)))),
            )

    def _track(self, run: Run, token: str | int) -> None:
        run.data["progress_token"] = token
        self.server.progress_tokens[str(token)] = run.id  # before the client knows the token: a cancel always finds it

    async def _quietly(self, run: Run, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception as exc:  # progress is a comfort: never let it break a run
            log.info("Progress for run %s failed: %s", run.id, exc)

    async def _progress(self, run: Run) -> None:
        """Server-initiated progress, once the run has lasted :data:`PROGRESS_DELAY_S` (until then, nothing)."""
        token = f"daytona-run-{run.id}"
        self._track(run, token)
        try:
            await asyncio.wait_for(self.server.work_done_progress.create_async(token), 5)
        except Exception as exc:  # the client refused or never answered: run without progress
            log.info("No progress for run %s: %s", run.id, exc)
            self._untrack(run)
            return
        self._begin(run, token)  # (a run that ended meanwhile cancelled this task: no begin after its end)
        await self._report(run, token)

    def _begin(self, run: Run, token: str | int) -> None:
        title = f"Running {_name(run.request.uri)} in {run.backend} sandbox"
        self.server.work_done_progress.begin(
            token, types.WorkDoneProgressBegin(title=title, cancellable=True, message="starting")
        )
        run.data["progress_begun"] = True

    async def _report(self, run: Run, token: str | int) -> None:
        while True:  # until _end_progress cancels this task
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            self.server.work_done_progress.report(
                token, types.WorkDoneProgressReport(message=f"{run.elapsed_ms() / 1000:.0f} s")
            )

    def _untrack(self, run: Run) -> str | int | None:
        token = run.data.pop("progress_token", None)
        if token is not None:
            self.server.progress_tokens.pop(str(token), None)
            self.server.work_done_progress.tokens.pop(token, None)
        return token

    def _end_progress(self, run: Run, outcome: RunOutcome) -> None:
        """End the run's progress now: before the command's response (lsp-mode drops a later end)."""
        timer = run.data.pop("progress_timer", None)
        if isinstance(timer, asyncio.TimerHandle):
            timer.cancel()
        task = run.data.pop("progress", None)
        if isinstance(task, asyncio.Task):
            task.cancel()  # no create, begin or report of it follows the end
        begun = run.data.pop("progress_begun", False)
        token = self._untrack(run)
        if token is None or not begun:
            return
        message = "cancelled" if outcome.cancelled else f"exit {outcome.exit_code} in {outcome.duration_ms} ms"
        with contextlib.suppress(Exception):
            self.server.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))
