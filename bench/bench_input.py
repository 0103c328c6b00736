"""Keystroke-to-program latency of interactive input (results: bench/RESULTS.md, section "Interactive input").

The time from sending a line to the program's own echo of it (``got:<line>``) arriving as output, for a Python
program that echoes each line of its stdin:

1. local sandbox, through the language server: ``daytona.sendInput`` → the ``daytona/output`` notification. Goal
   p50 ≤ 5 ms.
2. local sandbox, core: ``InputChannel.send`` → the output callback (what the server adds is the difference).
3. Daytona backend (the unmodified SDK against the project's Daytona test server on 127.0.0.1), core: goal
   ≤ 1 round trip + 20 ms, the round trip measured alongside (an SDK toolbox request, ``get_work_dir``).

Each also for the same program as a **session cell** (``RunSpec.session``; through the LSP ``session: true``): the
line travels as an ``input`` command of the session protocol to the worker, the echo back as an ``output`` event.

    .venv/bin/python bench/bench_input.py [--lines N] [--quick] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_lsp import SERVER, open_doc, start, stop  # noqa: E402
from bench_sessions import percentile  # noqa: E402
from daytona_lsp.core.environment import InputChannel, RunSpec  # noqa: E402
from results import record  # noqa: E402

ECHO = "import sys\nfor line in sys.stdin:\n    print('got:' + line, end='', flush=True)\n"
SESSION = "file:///bench/echo.py"
SECTION = "## Interactive input"


class Echoes:
    """Output text as it arrives; waits for ``got:<n>``."""

    def __init__(self) -> None:
        self.text = ""
        self.changed = asyncio.Event()

    def add(self, text: str) -> None:
        self.text += text
        self.changed.set()

    async def wait_for(self, needle: str) -> None:
        while needle not in self.text:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 30)


_LINE_IDS = itertools.count()


async def measure(
    send: Callable[[str], Awaitable[Any]], echoes: Echoes, lines: int, asked: asyncio.Event | None = None
) -> tuple[list[float], list[float]]:
    """Per line, the time from sending it to the program's echo; with ``asked``, also the time from that echo to
    the next "waiting for input" (``asked`` set)."""
    echoed: list[float] = []
    waited: list[float] = []
    for _ in range(lines):
        line = f"k{next(_LINE_IDS)}"
        if asked is not None:
            asked.clear()
        t0 = time.perf_counter()
        await send(line)
        await echoes.wait_for(f"got:{line}\n")
        t1 = time.perf_counter()
        echoed.append((t1 - t0) * 1000)
        if asked is not None:
            await asyncio.wait_for(asked.wait(), 30)
            waited.append((time.perf_counter() - t1) * 1000)
    return echoed, waited


async def core_latency(env: Any, lines: int, session: str | None = None) -> tuple[list[float], list[float]]:
    """Send → echo, and echo → the next wait seen, per line, through ``env`` (a core environment); ``session``:
    as a cell of that session."""
    echoes = Echoes()
    asked = asyncio.Event()
    channel = InputChannel(lambda prompt: asked.set())
    spec = RunSpec(ECHO, "python", input=channel, session=session)
    run = asyncio.ensure_future(env.execute(spec, lambda s, t: echoes.add(t)))
    await asyncio.wait_for(asked.wait(), 60)
    try:
        return await measure(channel.send, echoes, lines, asked)
    finally:
        await channel.close()
        await asyncio.wait_for(run, 60)


async def bench_local_core(lines: int, session: str | None = None) -> tuple[list[float], list[float]]:
    from daytona_lsp.core.local import LocalCodeEnvironment

    env = LocalCodeEnvironment(timeout=300)
    try:
        await core_latency(env, 5, session)  # warm: the container (and the session's worker) exists
        return await core_latency(env, lines, session)
    finally:
        await env.aclose()


async def bench_local_lsp(lines: int, session: bool = False) -> list[float]:
    from lsprotocol import types

    client, _ = await start(SERVER, {"outputNotifications": True, "interactiveInput": True, "backend": "local"})
    echoes = Echoes()
    asked: asyncio.Queue[str] = asyncio.Queue()
    # (bench_lsp's client decodes daytona/* params as plain JSON, as the editors do)
    client.feature("daytona/output")(lambda params: echoes.add(params["text"]))
    client.feature("daytona/inputRequested")(lambda params: asked.put_nowait(str(params["runId"])))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            uri = Path(tmp, "echo.py").as_uri()
            open_doc(client, uri, ECHO)
            run = asyncio.ensure_future(
                client.workspace_execute_command_async(
                    types.ExecuteCommandParams(command="daytona.run", arguments=[{"uri": uri, "session": session}])
                )
            )
            run_id = await asyncio.wait_for(asked.get(), 60)

            async def send(text: str, eof: bool = False) -> Any:
                arguments = [{"runId": run_id, "text": text, "eof": eof}]
                return await client.workspace_execute_command_async(
                    types.ExecuteCommandParams(command="daytona.sendInput", arguments=arguments)
                )

            await measure(send, echoes, 5)  # warm
            result, _ = await measure(send, echoes, lines)
            await send("", eof=True)
            await asyncio.wait_for(run, 60)
            return result
    finally:
        await stop(client)


async def bench_daytona_core(lines: int) -> tuple[list[float], list[float], list[float]]:
    """Fresh run and session cell latencies, and the toolbox round trips."""
    from tests.daytona_server import DaytonaTestServer

    from daytona_lsp.core.daytona import DaytonaCodeEnvironment

    for name in ("DAYTONA_API_KEY", "DAYTONA_JWT_TOKEN", "DAYTONA_API_URL", "DAYTONA_TARGET"):
        os.environ.pop(name, None)
    server = DaytonaTestServer().start()
    env = DaytonaCodeEnvironment(api_key=server.api_key, api_url=server.api_url, timeout=300)
    try:
        await core_latency(env, 5)  # warm: the sandbox exists, the SDK is imported
        latencies, _ = await core_latency(env, lines)
        await core_latency(env, 5, SESSION)  # warm: the session's worker runs
        cells, _ = await core_latency(env, lines, SESSION)
        from daytona import AsyncDaytona, DaytonaConfig

        async with AsyncDaytona(DaytonaConfig(api_key=server.api_key, api_url=server.api_url)) as daytona:
            assert env.sandbox_id is not None
            sandbox = await daytona.get(env.sandbox_id)
            trips = []
            for _ in range(max(20, lines // 2)):
                t0 = time.perf_counter()
                await sandbox.get_work_dir()
                trips.append((time.perf_counter() - t0) * 1000)
        return latencies, cells, trips
    finally:
        await env.aclose()
        server.stop()


def row(name: str, values: list[float], goal: str, ok: bool) -> str:
    return f"| {name} | {statistics.median(values):.2f} | {percentile(values, 95):.2f} | {goal} | {'met' if ok else 'MISSED'} |"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--write", action="store_true", help="replace the section in bench/RESULTS.md")
    args = parser.parse_args()
    lines = 20 if args.quick else args.lines
    local, detection = await bench_local_core(lines)
    local_cell, cell_detection = await bench_local_core(lines, SESSION)
    lsp = await bench_local_lsp(lines)
    lsp_cell = await bench_local_lsp(lines, session=True)
    daytona, daytona_cell, trips = await bench_daytona_core(lines)
    trip = statistics.median(trips)
    round_trip_goal = f"p50 ≤ 1 round trip ({trip:.2f} ms) + 20 ms"
    table = [
        "| path | p50 ms | p95 ms | goal | |",
        "|---|---|---|---|---|",
        row("local, LSP (`daytona.sendInput` → `daytona/output`)", lsp, "p50 ≤ 5 ms", statistics.median(lsp) <= 5),
        row("local, core (`InputChannel.send` → output callback)", local, "—", True),
        row("local: the program's echo → its next wait seen (`on_input_requested`)", detection, "—", True),
        row(
            "Daytona test server, core (`send_session_command_input`)",
            daytona,
            round_trip_goal,
            statistics.median(daytona) <= trip + 20,
        ),
        row(
            "session cell, local, LSP (`daytona.sendInput` → `daytona/output`)",
            lsp_cell,
            "p50 ≤ 5 ms",
            statistics.median(lsp_cell) <= 5,
        ),
        row("session cell, local, core (`InputChannel.send` → output callback)", local_cell, "—", True),
        row("session cell, local: the echo → its next `input_request` seen", cell_detection, "—", True),
        row(
            "session cell, Daytona test server, core (an `input` command per line)",
            daytona_cell,
            round_trip_goal,
            statistics.median(daytona_cell) <= trip + 20,
        ),
    ]
    section = "\n".join(
        [
            SECTION,
            "",
            f"`bench/bench_input.py` ({lines} lines each, after 5 warm-up lines), {datetime.date.today()}, "
            f"{platform.machine()}, {os.cpu_count()} cores shared with other work, Python {platform.python_version()}. "
            "The time from sending a line to the program's `got:<line>` echo arriving as output.",
            "",
            *table,
            "",
            "Local: the line is written to the run's stdin pipe at once (the wait watcher is not on this path); a "
            "wait is seen by polling /proc while the output is idle (2 ms at first, doubling to 50 ms). "
            "Daytona: one `POST …/command/{cmd}/input` per line, then the program's output comes back over the "
            "log WebSocket (a real daemon adds its network round trip and sends output a line at a time). "
            "Session cells: the line is an `input` command of the session protocol (local: the worker's command "
            "pipe; Daytona: one `send_session_command_input` to the worker's command), the echo an `output` event; "
            "the worker itself says when the cell waits again (`input_request`, right after the echo: no polling). "
            "Through the LSP a cell's line takes longer than a fresh run's although the core path is as fast: each "
            "line's `daytona/inputRequested` leaves right after the echo, within the next line's measured span, "
            "where a fresh run's comes ~5 ms later (with it left out, an experiment not kept: 2.09 ms for a cell's "
            "line against 1.79 ms for a fresh run's in the same process).",
        ]
    )
    print(section)
    if args.write:
        record(section)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
