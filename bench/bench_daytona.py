"""Benchmark (b): a Daytona run through the core vs a bare SDK ``code_run``, both against the test server.

    .venv/bin/python bench/bench_daytona.py [--runs 40] [--write bench/RESULTS.md]

Both sides run ``print(1)`` in the same kind of fake sandbox in the same process, interleaved run by run so that
machine noise hits both alike. Prints the median of each, the ratio core/bare (goal ≤ 1.05) and the toolbox
requests per core run (goal 1). Takes well under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "server"))

from tests.daytona_server import DaytonaTestServer  # noqa: E402

from daytona_lsp.core.daytona import DaytonaCodeEnvironment  # noqa: E402

HEADING = "## Daytona backend"


async def measure(server: DaytonaTestServer, runs: int) -> dict[str, float]:
    from daytona import AsyncDaytona, DaytonaConfig

    client = AsyncDaytona(DaytonaConfig(api_key=server.api_key, api_url=server.api_url))
    env = DaytonaCodeEnvironment(api_key=server.api_key, api_url=server.api_url)
    try:
        sandbox = await client.create()
        for _ in range(3):  # warm-up: sandbox creation, connection pools, page cache
            assert (await sandbox.process.code_run("print(1)")).result == "1\n"
            assert (await env.run("print(1)", "python")).output == "1\n"
        bare: list[float] = []
        core: list[float] = []
        toolbox_before = server.toolbox_requests()
        core_requests = 0
        for i in range(runs):
            for side in ("bare", "core") if i % 2 == 0 else ("core", "bare"):
                start = time.perf_counter()
                if side == "bare":
                    response = await sandbox.process.code_run("print(1)")
                    bare.append(time.perf_counter() - start)
                    assert response.exit_code == 0 and response.result == "1\n"
                else:
                    before = server.toolbox_requests()
                    result = await env.run("print(1)", "python")
                    core.append(time.perf_counter() - start)
                    core_requests += server.toolbox_requests() - before
                    assert result.exit_code == 0 and result.output == "1\n", result
        assert server.toolbox_requests() - toolbox_before == core_requests + runs
        # streaming (what the editor uses): session command + log WebSocket + exit code
        streamed: list[float] = []
        before = server.toolbox_requests()
        for _ in range(runs // 2):
            start = time.perf_counter()
            result = await env.run("print(1)", "python", on_output=lambda stream, text: None)
            streamed.append(time.perf_counter() - start)
            assert result.exit_code == 0 and result.output == "1\n", result
        stream_requests = (server.toolbox_requests() - before) / (runs // 2)
    finally:
        await env.aclose()
        await client.close()
    bare_ms, core_ms = statistics.median(bare) * 1000, statistics.median(core) * 1000
    return {
        "runs": runs,
        "bare_ms": bare_ms,
        "core_ms": core_ms,
        "ratio": core_ms / bare_ms,
        "bare_min_ms": min(bare) * 1000,
        "core_min_ms": min(core) * 1000,
        "requests_per_run": core_requests / runs,
        "stream_ms": statistics.median(streamed) * 1000,
        "stream_requests": stream_requests,
    }


def report(figures: dict[str, Any]) -> str:
    ok_ratio = "meets" if figures["ratio"] <= 1.05 else "MISSES"
    ok_req = "meets" if figures["requests_per_run"] <= 1 else "MISSES"
    return (
        f"{HEADING}\n\n"
        f"`bench/bench_daytona.py` — `print(1)`, rounds of {int(figures['runs'])} interleaved runs each, against the test server\n"
        f"(tests/daytona_server: real processes on this machine), measured "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} on {platform.machine()}, "
        f"Python {platform.python_version()}. A Python run without an output callback is one `code-run` request,\n"
        "as the bare SDK call; what is left is the core's own work (resolving the spec, result mapping, output cap).\n"
        "The streaming run is what the editor and the CLI use. On a busy 2-core machine medians move by several\n"
        "per cent between rounds; interleaving makes both sides share the noise.\n\n"
        "| measure | value | goal |\n|---|---|---|\n"
        f"| bare SDK `sandbox.process.code_run` (median) | {figures['bare_ms']:.1f} ms | |\n"
        f"| `DaytonaCodeEnvironment.run` (median) | {figures['core_ms']:.1f} ms | |\n"
        f"| ratio core / bare (medians; median of rounds {figures['all_ratios']}) | {figures['ratio']:.3f} "
        f"| ≤ 1.05 ({ok_ratio}) |\n"
        f"| fastest run, bare / core | {figures['bare_min_ms']:.1f} / {figures['core_min_ms']:.1f} ms "
        f"(ratio {figures['core_min_ms'] / figures['bare_min_ms']:.3f}) | |\n"
        f"| toolbox requests per run | {figures['requests_per_run']:.2f} | 1 ({ok_req}) |\n"
        f"| streaming run (`on_output`, as the editor runs code), median | {figures['stream_ms']:.1f} ms, "
        f"{figures['stream_requests']:.2f} toolbox requests (exec, log WebSocket, exit code; the session is "
        "reused) | |\n"
    )


def write_section(path: Path, section: str, heading: str = HEADING) -> None:
    """Replace (or append) only the section under ``heading`` of the shared RESULTS.md."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    start = text.find(heading)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    path.write_text(text.rstrip("\n") + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3, help="independent rounds; the median round is reported")
    parser.add_argument("--write", type=Path, help="update this file's '## Daytona backend' section")
    args = parser.parse_args()
    rounds = []
    with DaytonaTestServer() as server:
        for _ in range(max(1, args.repeat)):
            rounds.append(asyncio.run(measure(server, args.runs)))
    rounds.sort(key=lambda f: f["ratio"])
    figures = dict(rounds[len(rounds) // 2])
    figures["all_ratios"] = ", ".join(f"{f['ratio']:.3f}" for f in rounds)  # type: ignore[assignment]
    section = report(figures)
    print(section)
    if args.write:
        write_section(args.write, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
