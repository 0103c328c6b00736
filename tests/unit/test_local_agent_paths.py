"""The agent's two ways of giving a run its namespaces, both with real bubblewrap: cloning the run's pid 1 straight
into them (where the agent knows clone(2)'s number: x86-64, arm64, riscv64) and, elsewhere, forking a process that
``unshare``s and forks it. The second runs here from the same agent source with the clone number unknown."""

from __future__ import annotations

import asyncio
import marshal
import sys
import uuid
from collections.abc import AsyncIterator

import pytest
from tests.processes import processes_with

from daytona_lsp.core.local import LocalCodeEnvironment, launch

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap needs Linux")


@pytest.fixture(params=["clone", "unshare"])
async def path_env(request: pytest.FixtureRequest) -> AsyncIterator:
    if request.param == "unshare":
        request.getfixturevalue("agent_without_clone")
    env = LocalCodeEnvironment(timeout=20)
    try:
        yield env
    finally:
        await env.aclose()


async def test_a_run_is_alone_in_its_pid_namespace_and_takes_its_daemons_along(path_env) -> None:
    marker = f"daytona-lsp-daemon-{uuid.uuid4().hex}"
    code = f"(setsid sh -c 'sleep 1000; echo {marker}' </dev/null >/dev/null 2>&1 &)\necho $$\n"
    result = await path_env.run(code, "bash")
    assert (result.exit_code, result.output) == (0, "2\n")  # the run's own pid namespace: its pid 1 set it up
    assert processes_with(marker) == [], "the daemon died with the run's pid namespace"


async def test_a_cancelled_run_dies_whole_and_the_next_one_runs(path_env) -> None:
    started = asyncio.Event()

    def seen(_stream: str, text: str) -> None:
        if "ready" in text:
            started.set()

    task = asyncio.ensure_future(
        path_env.run("import time\nprint('ready', flush=True)\ntime.sleep(60)\n", "python", on_output=seen)
    )
    await started.wait()
    task.cancel()
    cancelled = await task
    assert cancelled.exit_code == 124, cancelled.output
    after = await path_env.run("print('next')", "python")
    assert (after.exit_code, after.output) == (0, "next\n")


def test_the_agents_bytecode_names_each_module_as_the_container_has_it() -> None:
    files = launch.agent_bytecode()
    assert sorted(files) == sorted(f"{path.stem}.pyc" for path in launch.AGENT_MODULES)
    for name, pyc in files.items():
        code = marshal.loads(pyc[16:])
        assert code.co_filename == f"{launch.SANDBOX_AGENT_DIR}/{name[:-1]}"  # tracebacks: the file and its lines
