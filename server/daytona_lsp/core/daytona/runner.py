"""One run's toolbox requests: the daemon's code-run, a plain exec, or a session command whose logs stream over a
WebSocket (sessions pooled per sandbox: exec, log stream and exit code, three requests a run)."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from typing import TYPE_CHECKING

from daytona_lsp.core.daytona.commands import Command
from daytona_lsp.core.daytona.errors import (
    RunFailed,
    daytona_error_type,
    error_result,
    readable_api_exception,
    status_of,
)
from daytona_lsp.core.daytona.sandboxes import Slot
from daytona_lsp.core.daytona.stdin import STDIN_CLOSED, MarkerFilter, SessionInput, StdinPlan
from daytona_lsp.core.environment import (
    STDIN_CLOSED_NOTE,
    TIMEOUT_EXIT_CODE,
    CodeRunResult,
    InputChannel,
    OutputCallback,
    OutputStream,
    emit,
)
from daytona_lsp.core.output import OutputBuffer

if TYPE_CHECKING:
    from daytona import AsyncSandbox

log = logging.getLogger(__name__)

GRACE_SECONDS = 5
"""The daemon's own timeout and the client's wait are this much longer than the run's, so ours fires first."""


CANCELLED_NOTE = "Run cancelled: the command in the sandbox was stopped."


def with_note(output: str, note: str | None) -> str:
    """``output`` followed by a note of daytona-lsp's own on a line of its own."""
    if not note:
        return output
    return output + ("" if not output or output.endswith("\n") else "\n") + note + "\n"


def uncancel() -> None:
    """A cancellation turned into a result: tell the task (Python >= 3.11), so that it is not seen as cancelling."""
    task_uncancel = getattr(asyncio.current_task(), "uncancel", None)  # Task.uncancel is new in Python 3.11
    if task_uncancel is not None:
        task_uncancel()


class Runner:
    """Runs commands in a sandbox with one timeout and one output cap."""

    def __init__(self, *, timeout: int, max_output_bytes: int) -> None:
        self.timeout = timeout
        self.max_output_bytes = max_output_bytes

    @property
    def timeout_note(self) -> str:
        return f"Execution timed out: the code ran longer than {self.timeout} s and was stopped"

    @property
    def detached_note(self) -> str:
        return (
            f"Run cancelled (without streaming, the code in the sandbox runs on until its timeout of {self.timeout} s)."
        )

    def _verdict(self, exit_code: int | None, started: float) -> tuple[int, str | None]:
        """The run's exit code and the note that explains it (``None``: the program's own exit code)."""
        if exit_code is None:
            return 1, "[daytona-lsp: the sandbox reported no exit code]"
        if exit_code in (124, 137) and time.monotonic() - started >= self.timeout:
            return TIMEOUT_EXIT_CODE, self.timeout_note
        return exit_code, None

    def _finish(self, buffer: OutputBuffer, exit_code: int | None, started: float, first: str = "") -> CodeRunResult:
        exit_code, note = self._verdict(exit_code, started)
        note = "\n".join(filter(None, (first, note)))
        return CodeRunResult(with_note(buffer.text(), note), exit_code, truncated=buffer.truncated)

    async def _upload(self, sandbox: AsyncSandbox, command: Command, api_key: str) -> None:
        if command.upload is not None:
            path, data = command.upload
            try:
                await sandbox.fs.upload_file(data, path)
            except Exception as exc:
                raise RunFailed(error_result(exc, api_key=api_key)) from exc

    async def code_run(self, sandbox: AsyncSandbox, code: str, api_key: str) -> CodeRunResult:
        """Python without streaming: the daemon's own code-run (code on stdin of ``python3 -u -``), exactly what a
        bare SDK ``code_run`` costs. Its timeout answer (408) carries no output; streaming runs keep it."""
        started = time.monotonic()
        try:
            response = await sandbox.process.code_run(code, timeout=self.timeout)
        except asyncio.CancelledError:
            uncancel()
            return CodeRunResult(with_note("", self.detached_note), TIMEOUT_EXIT_CODE)
        except Exception as exc:
            status = status_of(exc)
            if status == 408 or isinstance(exc, TimeoutError | asyncio.TimeoutError):
                result = CodeRunResult(self.timeout_note, TIMEOUT_EXIT_CODE)
            elif status is not None and not isinstance(exc, daytona_error_type()):
                result = error_result(readable_api_exception(exc, status), api_key=api_key)
            else:
                result = error_result(exc, api_key=api_key)
            raise RunFailed(result) from exc
        buffer = OutputBuffer(self.max_output_bytes)
        buffer.write(response.result or "")
        return self._finish(buffer, response.exit_code, started)

    async def exec(
        self, sandbox: AsyncSandbox, command: Command, api_key: str, stdin: StdinPlan | None = None
    ) -> CodeRunResult:
        await self._upload(sandbox, command, api_key)
        started = time.monotonic()
        try:
            response = await sandbox.process.exec(command.command, timeout=self.timeout + GRACE_SECONDS)
        except asyncio.CancelledError:
            uncancel()
            return CodeRunResult(with_note("", self.detached_note), TIMEOUT_EXIT_CODE)
        except Exception as exc:
            result = error_result(exc, api_key=api_key)
            if result.exit_code == TIMEOUT_EXIT_CODE:
                result.output = self.timeout_note
            raise RunFailed(result) from exc
        output, note = response.result or "", ""
        if command.trailer is not None:  # the change listing after the program's output
            output = command.trailer.split(output)
        if stdin is not None:  # the helper's lines, in the combined output
            markers = MarkerFilter(stdin.mark)
            output, events = markers.feed(output)
            output += markers.flush()
            note = STDIN_CLOSED_NOTE if STDIN_CLOSED in events else ""
        buffer = OutputBuffer(self.max_output_bytes)
        buffer.write(output)
        return self._finish(buffer, response.exit_code, started, note)

    async def stream(
        self,
        slot: Slot,
        sandbox: AsyncSandbox,
        generation: int,
        command: Command,
        on_output: OutputCallback,
        api_key: str,
        stdin: StdinPlan | None = None,
        channel: InputChannel | None = None,
    ) -> CodeRunResult:
        """Run ``command`` as a session command, its logs streamed. With a ``stdin`` plan, the helper's lines are
        taken out of stderr: a wait is told to ``channel`` (with the prompt), a closing becomes the note."""
        from daytona import SessionExecuteRequest

        await self._upload(sandbox, command, api_key)
        buffer = OutputBuffer(self.max_output_bytes)
        markers = MarkerFilter(stdin.mark) if stdin is not None else None
        read_eof = False

        async def forward(stream: OutputStream, text: str) -> None:
            shown = buffer.write(text)
            await emit(on_output, stream, shown)

        trailer = command.trailer

        async def on_stdout(text: str) -> None:
            await forward("stdout", trailer.feed(text) if trailer is not None else text)

        async def on_stderr(text: str) -> None:
            nonlocal read_eof
            if markers is not None:
                text, events = markers.feed(text)
                await forward("stderr", text)
                for event in events:
                    if event == STDIN_CLOSED:
                        read_eof = True
                    elif channel is not None:
                        await channel.input_requested(buffer.partial_line())
                return
            await forward("stderr", text)

        process = sandbox.process
        session_id, reused = await self._take_session(slot, sandbox, generation, api_key)
        # the helper echoes nothing itself; input is echoed by SessionInput (so the EOF token never shows)
        request = SessionExecuteRequest(command=command.command, run_async=True, suppress_input_echo=stdin is not None)
        clean = False
        started = time.monotonic()
        note: str | None = None
        try:
            try:
                response = await process.execute_session_command(session_id, request)
            except Exception as exc:
                if not (reused and status_of(exc) in (404, 410)):
                    raise RunFailed(error_result(exc, api_key=api_key)) from exc
                # the pooled session died (e.g. the sandbox restarted): a fresh one, once
                session_id, _ = await self._take_session(slot, sandbox, generation, api_key, fresh=True)
                try:
                    response = await process.execute_session_command(session_id, request)
                except Exception as exc2:
                    raise RunFailed(error_result(exc2, api_key=api_key)) from exc2
            cmd_id = response.cmd_id
            if channel is not None and stdin is not None:
                echo = functools.partial(forward, "stdout") if channel.echo else None
                await channel.attach(SessionInput(sandbox, session_id, cmd_id, stdin, echo))
            try:
                await asyncio.wait_for(
                    process.get_session_command_logs_async(session_id, cmd_id, on_stdout, on_stderr),
                    self.timeout + GRACE_SECONDS,
                )
            except (asyncio.TimeoutError, TimeoutError):
                exit_code, note = TIMEOUT_EXIT_CODE, self.timeout_note
            except Exception as exc:
                # the code did start: keep what it printed, never retry
                raise RunFailed(error_result(exc, api_key=api_key, output=buffer.text())) from None
            else:
                if trailer is not None:
                    await forward("stdout", trailer.flush())
                reported = await self._command_exit_code(sandbox, session_id, cmd_id)
                clean = reported is not None
                exit_code, note = self._verdict(reported, started)
        except asyncio.CancelledError:
            uncancel()
            exit_code, note = TIMEOUT_EXIT_CODE, CANCELLED_NOTE
        finally:
            if channel is not None:
                channel.detach()
            if clean and slot.session_generation == generation and slot.sandbox is sandbox:
                slot.idle_sessions.append(session_id)  # finished cleanly: the next streaming run reuses it
            else:
                # deleting the session kills whatever the command left running
                await asyncio.shield(self._delete_session(sandbox, session_id))
        if markers is not None:
            await forward("stderr", markers.flush())
        if read_eof:
            note = "\n".join(filter(None, (STDIN_CLOSED_NOTE, note)))
        await emit(on_output, "stdout", buffer.unstreamed_text())  # the tail of a truncated output
        return CodeRunResult(with_note(buffer.text(), note), exit_code, truncated=buffer.truncated)

    async def _take_session(
        self, slot: Slot, sandbox: AsyncSandbox, generation: int, api_key: str, *, fresh: bool = False
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
            raise RunFailed(error_result(exc, api_key=api_key)) from exc
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
