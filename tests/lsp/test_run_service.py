"""RunService in-process, with the real local backend: what happens between a run's start and its environment."""

from __future__ import annotations

import asyncio
import threading

from daytona_lsp.lsp.runs import Run, RunOutcome, RunRequest, RunService, default_environment_factory
from daytona_lsp.lsp.settings import Settings


class _Started:
    """A RunObserver that lets the test wait until a run has started (and so awaits its environment)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    def run_started(self, run: Run) -> None:
        self.started.set()

    async def run_output(self, run: Run, stream: str, text: str) -> None:
        pass

    def run_finished(self, run: Run, outcome: RunOutcome) -> None:
        pass


async def test_a_settings_change_while_the_environment_is_built_does_not_close_it_under_the_run() -> None:
    gate = threading.Event()

    def slow_factory(settings: Settings):  # the real local environment, built when the test says so
        gate.wait(30)
        return default_environment_factory(settings)

    observer = _Started()
    service = RunService(slow_factory, observer)
    before = Settings(backend="local", prewarm=False, timeout=30)
    after = Settings(backend="local", prewarm=False, timeout=30, env_vars={"CHANGED": "1"})
    assert before.sandbox_spec() != after.sandbox_spec()
    try:
        run = service.start(
            RunRequest(
                uri="file:///w/a.py", code="print(6 * 7)\n", language="python", workspace="file:///w", settings=before
            )
        )
        await asyncio.wait_for(observer.started.wait(), 30)
        closing = service.settings_changed("file:///w", after)  # the workspace's settings change meanwhile
        gate.set()
        assert run.task is not None
        outcome = await asyncio.wait_for(run.task, 60)
        assert outcome.exit_code == 0, outcome.output
        assert outcome.output == "42\n"
        if closing is not None:
            await asyncio.wait_for(closing, 30)  # and the retired environment is closed once the run is done
    finally:
        gate.set()
        await service.aclose()
