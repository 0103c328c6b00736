"""RunService: run ids, concurrent runs, cancellation, output cap and one environment per workspace.

No LSP types here: the server attaches a :class:`RunObserver` that turns run events into notifications, progress and
diagnostics. Blocking work (building an environment) runs in a thread; runs are asyncio tasks, so the server keeps
answering requests while code runs, and several runs (also of one document) proceed at once.

The records it keeps (:class:`Run`, :class:`RunRequest`, :class:`RunOutcome`…) are declared in
:mod:`daytona_lsp.lsp.run_records`, the environments it builds and holds in :mod:`daytona_lsp.lsp.environments`; all
are importable from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Coroutine
from typing import Any

from daytona_lsp.core.environment import CodeEnvironment, CodeRunResult, InputChannel, InputClosed, RunSpec
from daytona_lsp.core.output import OutputBuffer, utf8_head
from daytona_lsp.core.secrets import redact
from daytona_lsp.lsp.environments import (
    EnvironmentFactory,
    EnvironmentSlot,
    close_env,
    default_environment_factory,
    first_line,
    note_sandbox,
    reported_info,
    resolve_backend,
)
from daytona_lsp.lsp.run_records import (
    InputRequestedHandler,
    NullObserver,
    Run,
    RunError,
    RunObserver,
    RunOutcome,
    RunRequest,
)
from daytona_lsp.lsp.settings import Settings

log = logging.getLogger(__name__)

CANCELLED_EXIT_CODE = 124


class RunService:
    def __init__(self, factory: EnvironmentFactory | None = None, observer: RunObserver | None = None) -> None:
        self.factory = factory or default_environment_factory
        self.observer: RunObserver = observer or NullObserver()
        self.on_input_requested: InputRequestedHandler = lambda run, prompt: None
        self.runs: dict[str, Run] = {}
        self.slots: dict[str, EnvironmentSlot] = {}
        self._retired: set[EnvironmentSlot] = set()
        self._ids = itertools.count(1)
        self._closing = False
        self._background: set[asyncio.Task[Any]] = set()
        self._session_closes: dict[str, asyncio.Task[None]] = {}
        """session key → the task ending that closed document's sessions"""

    # ---- environments -------------------------------------------------------------------------------------------
    def _slot(self, workspace: str, settings: Settings) -> EnvironmentSlot:
        if self._closing:
            raise RunError("The server is shutting down")
        slot = self._slot_for(workspace, settings)
        if slot is not None and not slot.error:
            return slot
        slot = self.slots.get(workspace)
        spec = settings.sandbox_spec()
        if slot is not None and (slot.spec != spec or slot.error):
            self._retire(slot)
            slot = None
        if slot is None:
            loop = asyncio.get_running_loop()
            ready: asyncio.Future[CodeEnvironment] = loop.create_future()
            slot = EnvironmentSlot(workspace, spec, resolve_backend(settings), ready)
            self.slots[workspace] = slot
            self._spawn(self._build(slot, settings))
        slot.settings = settings
        return slot

    def _slot_for(self, workspace: str, settings: Settings) -> EnvironmentSlot | None:
        """The workspace's slot when a run last found it with this very settings object (so its spec, not compared
        again, is the same)."""
        slot = self.slots.get(workspace)
        return slot if slot is not None and slot.settings is settings else None

    async def _build(self, slot: EnvironmentSlot, settings: Settings) -> None:
        try:
            env = await asyncio.to_thread(self.factory, settings)
        except Exception as exc:  # bad settings, missing credentials…: the message says why
            slot.error = redact(str(exc) or type(exc).__name__)
            log.warning("Could not create the %s environment: %s", slot.backend, slot.error)
            if not slot.ready.done():
                slot.ready.set_exception(RunError(slot.error))
                slot.ready.exception()  # retrieved: no "never retrieved" warning
            return
        if slot.ready.done():  # cancelled while building: close what we built
            await close_env(env)
            return
        slot.ready.set_result(env)
        if slot.retired and slot.active == 0:
            self._close_slot(slot)

    def _retire(self, slot: EnvironmentSlot) -> None:
        """Forget ``slot`` for new runs; close it once its runs are done."""
        if self.slots.get(slot.workspace) is slot:
            del self.slots[slot.workspace]
        slot.retired = True
        self._retired.add(slot)
        if slot.active == 0:
            self._close_slot(slot)

    def _close_slot(self, slot: EnvironmentSlot) -> None:
        if slot.close_task is None:
            slot.close_task = self._spawn(self._close(slot))

    async def _close(self, slot: EnvironmentSlot) -> None:
        if not slot.ready.done():
            with contextlib.suppress(BaseException):
                await asyncio.shield(slot.ready)
        if slot.ready.done() and not slot.ready.cancelled() and slot.ready.exception() is None:
            await close_env(slot.ready.result())
        slot.closed = True
        self._retired.discard(slot)

    async def environment(
        self, workspace: str, settings: Settings, *, hold: bool = False
    ) -> tuple[EnvironmentSlot, CodeEnvironment]:
        """The workspace's environment for ``settings`` (built when needed). ``hold``: count the caller as a run of
        it from the start, so that a settings change while it is being built cannot close it under the caller (the
        caller then lowers ``slot.active`` when done)."""
        slot = self._slot(workspace, settings)
        if hold:
            slot.active += 1
        try:
            env = await asyncio.shield(slot.ready)
        except BaseException as exc:
            if hold:
                self._release(slot)
            if isinstance(exc, RunError) or not isinstance(exc, Exception):
                raise
            raise RunError(redact(str(exc))) from None
        return slot, env

    def _release(self, slot: EnvironmentSlot) -> None:
        slot.active -= 1
        if slot.retired and slot.active == 0:
            self._close_slot(slot)

    async def prewarm(self, workspace: str, settings: Settings) -> None:
        """Create the workspace's environment (and its sandbox) in the background; errors only go to the log."""
        try:
            slot, env = await self.environment(workspace, settings)
        except RunError as exc:
            log.info("Prewarm failed: %s", exc)
            return
        if slot.prewarming:
            return
        slot.prewarming = True
        try:
            await env.prewarm()
            slot.sandbox_error = None
        except Exception as exc:
            slot.sandbox_error = first_line(redact(str(exc)))
            log.info("Prewarm failed: %s", slot.sandbox_error)
        finally:
            slot.prewarming = False

    def prewarm_in_background(self, workspace: str, settings: Settings) -> None:
        if self._closing or workspace in self.slots and self.slots[workspace].spec == settings.sandbox_spec():
            return
        self._spawn(self.prewarm(workspace, settings))

    def settings_changed(self, workspace: str, settings: Settings) -> asyncio.Task[None] | None:
        """Retire the workspace's environment when its sandbox spec changed; the task closing it when it was idle."""
        slot = self.slots.get(workspace)
        if slot is not None and slot.spec != settings.sandbox_spec():
            self._retire(slot)
            return slot.close_task
        return None

    def reset(self, workspace: str | None = None) -> Coroutine[Any, Any, int]:
        """Cancel the runs of ``workspace`` (None: all) and forget its environments now (a run started after this
        gets a new one); what it returns closes them and says how many there were."""
        slots = [s for k, s in list(self.slots.items()) if workspace is None or k == workspace]
        for run in list(self.runs.values()):
            if workspace is None or run.request.workspace == workspace:
                self.cancel(run.id)
        for slot in slots:
            self._retire(slot)
        runs = [r for r in self.runs.values() if workspace is None or r.request.workspace == workspace]

        async def closed() -> int:
            await self._wait_runs(runs)
            tasks = [s.close_task for s in slots if s.close_task is not None]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            return len(slots)

        return closed()

    # ---- sessions -----------------------------------------------------------------------------------------------
    def _ready_envs(self, workspace: str | None) -> list[CodeEnvironment]:
        """The built environments of ``workspace`` (None: of every workspace)."""
        return [
            env
            for key, slot in list(self.slots.items())
            if (workspace is None or key == workspace) and (env := slot.built()) is not None
        ]

    async def restart_session(self, workspace: str | None, key: str | None) -> int:
        """End the session ``key`` (None: every session) in ``workspace``'s sandbox (None: every workspace's); the
        next run with that key starts a fresh one. Returns how many sessions were ended."""
        restarted = 0
        for env in self._ready_envs(workspace):
            try:
                restarted += await env.restart_session(key)
            except Exception as exc:
                raise RunError(f"restarting the session failed: {redact(str(exc))}") from None
        return restarted

    def close_session(self, workspace: str, key: str) -> None:
        """The document ``key`` was closed: end its sessions in the background (errors only go to the log). A run
        with that key that starts meanwhile waits for it, so it never gets the closed document's state."""
        envs = self._ready_envs(workspace)
        if not envs:
            return

        async def close() -> None:
            for env in envs:
                try:
                    await env.close_session(key)
                except Exception as exc:
                    log.info("Closing the session of %s failed: %s", key, redact(str(exc)))

        task = self._session_closes[key] = self._spawn(close())
        task.add_done_callback(lambda t: self._session_closes.pop(key) if self._session_closes.get(key) is t else None)

    def info(self, workspace: str, settings: Settings) -> dict[str, Any]:
        slot = self.slots.get(workspace)
        if slot is None:
            return {"backend": resolve_backend(settings), "state": "none"}
        out: dict[str, Any] = {"backend": slot.backend, "state": slot.state()}
        env = slot.built()
        reported = reported_info(env) if env is not None else None
        if reported is not None and reported.get("sessions"):
            out["sessions"] = reported["sessions"]
        if out["state"] == "ready":
            if reported is not None and reported.get("state") not in (None, "none"):
                out.update({k: v for k, v in reported.items() if k in ("sandboxId", "state")})
        sandbox_id = out.get("sandboxId") or slot.sandbox_id()
        if sandbox_id:
            out["sandboxId"] = sandbox_id
        if slot.error or slot.sandbox_error:
            out["error"] = slot.error or slot.sandbox_error
        return out

    # ---- runs ---------------------------------------------------------------------------------------------------
    def start(self, request: RunRequest) -> Run:
        if self._closing:
            raise RunError("The server is shutting down")
        slot = self._slot_for(request.workspace, request.settings)
        backend = slot.backend if slot is not None else resolve_backend(request.settings)
        run = Run(id=str(next(self._ids)), request=request, backend=backend)
        if request.interactive:

            def input_requested(prompt: str) -> None:
                self._report_started(run)
                self.on_input_requested(run, prompt)

            run.input = InputChannel(input_requested)
        self.runs[run.id] = run
        run.task = asyncio.create_task(self._execute(run), name=f"daytona-run-{run.id}")
        return run

    async def _execute(self, run: Run) -> RunOutcome:
        req = run.request
        buffer = OutputBuffer(req.settings.max_output_bytes)
        slot: EnvironmentSlot | None = None
        result: CodeRunResult
        cancelled = False
        note = ""
        asyncio.get_running_loop().call_soon(self._report_started, run)
        try:
            slot, env = await self.environment(req.workspace, req.settings, hold=True)
            run.backend = slot.backend
            closing = self._session_closes.get(req.session) if req.session else None
            if closing is not None:
                await asyncio.shield(closing)

            async def on_output(stream: str, text: str) -> None:
                self._report_started(run)
                text = redact(text)
                buffer.write(text)
                # stream everything up to the cap (the buffer keeps only its head and tail: the end sends the rest)
                part = utf8_head(text.encode("utf-8", "surrogateescape"), buffer.max_bytes - run.streamed_bytes)
                if part:
                    run.streamed_bytes += len(part)
                    streamed = part.decode("utf-8", "surrogateescape")
                    try:
                        await self.observer.run_output(run, stream, streamed)
                    except Exception:
                        log.exception("Output observer failed")

            place = req.placement
            spec = RunSpec(
                code=req.code,
                language=req.language,
                args=req.args,
                stdin=req.stdin,
                input=run.input,
                path=place.path if place else None,
                cwd=place.cwd if place else None,
                workspace=place.view if place else None,
                session=req.session,
            )
            result = await env.execute(spec, on_output)
            if run.cancel_requested:
                cancelled = True
            else:
                note_sandbox(slot, env, result)
        except asyncio.CancelledError:
            cancelled = True
            text = buffer.text()
            note = ("" if not text or text.endswith("\n") else "\n") + "[daytona-lsp: run cancelled]\n"
            result = CodeRunResult(
                output=text + note,
                exit_code=CANCELLED_EXIT_CODE,
                truncated=buffer.truncated,
            )
        except RunError as exc:
            result = CodeRunResult(output=f"daytona-lsp: {exc}\n", exit_code=1)
        except Exception as exc:  # a backend broke its contract; never let it kill the server
            log.exception("Run %s failed", run.id)
            result = CodeRunResult(output=f"daytona-lsp: run failed: {redact(str(exc))}\n", exit_code=1)
        finally:
            if slot is not None:
                self._release(slot)
        outcome = RunOutcome(
            run_id=run.id,
            exit_code=result.exit_code,
            output=redact(result.output),
            truncated=bool(result.truncated or buffer.truncated),
            duration_ms=run.elapsed_ms() if result.duration_ms is None else result.duration_ms,
            backend=result.backend or run.backend,
            cancelled=cancelled,
            source_path=result.source_path,
            line_offset=result.line_offset,
            changed_files=list(result.changed_files),
            workspace_root=result.workspace_root,
            value=None if cancelled or result.value is None else redact(result.value),
        )
        if buffer.total_bytes == 0:
            rest = outcome.output  # a backend that did not stream: the channel still gets the output
        else:
            # what streaming did not carry (past the cap: a marker and the tail), and the note of a cancelled run
            rest = buffer.text_from(run.streamed_bytes) + note
        self._report_started(run)
        if rest:
            with contextlib.suppress(Exception):
                await self.observer.run_output(run, "stdout", rest)
        self.runs.pop(run.id, None)
        if run.input is not None:
            run.input.detach()  # whatever the backend did: no input is taken for a finished run
        try:
            self.observer.run_finished(run, outcome)
        except Exception:
            log.exception("Finish observer failed")
        return outcome

    def _report_started(self, run: Run) -> None:
        """Tell the observer a run started, once: when it first waits (a warm local sandbox: once the agent has it,
        so what the observer does overlaps the run), or before its first output or its end, whichever is first."""
        if run.reported:
            return
        run.reported = True
        try:
            self.observer.run_started(run)
        except Exception:
            log.exception("Start observer failed")

    async def send_input(self, run_id: str, text: str, eof: bool = False) -> None:
        """Feed a line (``text``; none when it is ``""`` and ``eof``) to a running interactive run's program, then
        EOF when ``eof``. Raises :class:`RunError` (unknown, finished or not interactive run, stdin closed) or
        ``ValueError`` (over the size cap)."""
        run = self.runs.get(run_id)
        if run is None or run.done:
            raise RunError(f"run {run_id} is not running (it finished, or there never was one)")
        if run.input is None:
            raise RunError(
                f"run {run_id} takes no input: the client did not opt in (initializationOptions.interactiveInput)"
            )
        try:
            if text or not eof:
                await run.input.send(text)
            if eof:
                await run.input.close()
        except InputClosed as exc:
            raise RunError(f"run {run_id} takes no more input: {exc}") from None

    def cancel(self, run_id: str) -> bool:
        run = self.runs.get(run_id)
        if run is None or run.task is None or run.task.done():
            return False
        run.cancel_requested = True
        run.task.cancel()
        return True

    def cancel_all(self) -> list[str]:
        return [run_id for run_id in list(self.runs) if self.cancel(run_id)]

    def cancel_request(self, request_id: Any) -> bool:
        """$/cancelRequest for the request that started a run."""
        for run in list(self.runs.values()):
            if run.request.request_id is not None and run.request.request_id == request_id:
                return self.cancel(run.id)
        return False

    async def _wait_runs(self, runs: list[Run]) -> None:
        tasks = [r.task for r in runs if r.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # ---- lifecycle ----------------------------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def aclose(self) -> None:
        """Cancel every run and close every environment (idempotent)."""
        self._closing = True
        self.cancel_all()
        await self._wait_runs(list(self.runs.values()))
        for slot in list(self.slots.values()):
            self._retire(slot)
        for slot in list(self._retired):
            self._close_slot(slot)
        # closing runs alongside a prewarm still creating a sandbox: the core deletes one created after close
        pending = [t for t in list(self._background) if not t.done()]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
