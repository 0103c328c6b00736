"""The Daytona SDK's import (about 900 modules, over a second) never stalls the event loop.

Measured in a fresh interpreter (the SDK must not be imported yet) against the Daytona test server: a loop-lag probe
runs while the first run creates its sandbox, and an audit hook records every module imported on the loop's thread.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.daytona_server import DaytonaTestServer

ROOT = Path(__file__).resolve().parents[2]
MAX_LAG_MS = 50

CHILD = r"""
import asyncio, json, sys, threading, time

from daytona_lsp.core.daytona import DaytonaCodeEnvironment

assert "daytona._async.daytona" not in sys.modules
loop_imports = []
watching = False


def hook(event, args):
    if event == "import" and watching and threading.current_thread() is threading.main_thread():
        loop_imports.append(args[0])


sys.addaudithook(hook)


async def probe(lags, stop):
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.002)
        lags.append(time.perf_counter() - started - 0.002)


async def main():
    global watching
    env = DaytonaCodeEnvironment(api_key=sys.argv[1], api_url=sys.argv[2])
    lags, stop = [], asyncio.Event()
    task = asyncio.create_task(probe(lags, stop))
    await asyncio.sleep(0.02)
    lags.clear()
    watching = True
    result = await env.run("print(1)", "python")
    watching = False
    stop.set()
    await task
    await env.aclose()
    print(json.dumps({"output": result.output, "exit_code": result.exit_code, "max_lag_ms": max(lags) * 1000,
                      "loop_imports": loop_imports}))


asyncio.run(main())
"""


def test_first_sandbox_creation_never_blocks_the_event_loop_for_the_sdk_import(
    daytona_server: DaytonaTestServer,
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, daytona_server.api_key, daytona_server.api_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["output"], report["exit_code"]) == ("1\n", 0)
    imported_on_loop = sorted({m for m in report["loop_imports"] if m.split(".")[0] not in sys.stdlib_module_names})
    assert imported_on_loop == []
    assert report["max_lag_ms"] < MAX_LAG_MS, f"the event loop stalled {report['max_lag_ms']:.0f} ms"
