"""Benchmark of the Python session worker (server/daytona_lsp/core/sessions) against a Jupyter kernel.

(a) warm ``print(1)`` round trip through ``SessionWorker.execute`` (worker as a plain subprocess, no sandbox) vs a
    Jupyter kernel's ``execute`` round trip (``BlockingKernelClient.execute_interactive``: request → output → reply
    and idle), interleaved, p50 and p95;
(b) a cell of ten standard-library imports re-run in the warm worker vs its ``print(1)``.
ipykernel and jupyter_client are installed into this interpreter's environment by the benchmark if missing.

    .venv/bin/python bench/bench_sessions.py            # 300 interleaved round trips each
    .venv/bin/python bench/bench_sessions.py --quick    # smoke test
    .venv/bin/python bench/bench_sessions.py --record   # also write them to bench/RESULTS.md ("## Sessions")
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from daytona_lsp.core.sessions.client import SessionWorker

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Sessions"
IMPORTS = "import os, sys, json, re, math, itertools, collections, functools, datetime, pathlib\nprint(1)"


def ensure_jupyter() -> None:
    if all(importlib.util.find_spec(m) for m in ("ipykernel", "jupyter_client")):
        return
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "ipykernel", "jupyter_client"], check=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--record", action="store_true", help="write the results to bench/RESULTS.md")
    args = parser.parse_args()
    runs = 20 if args.quick else args.runs
    ensure_jupyter()
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    worker = SessionWorker("python")
    try:
        out: list[str] = []

        def session(code: str) -> float:
            t0 = time.perf_counter()
            result = worker.execute(code, on_output=lambda _s, text: out.append(text))
            elapsed = (time.perf_counter() - t0) * 1000
            assert result.status == "ok", result
            return elapsed

        def jupyter() -> float:
            t0 = time.perf_counter()
            reply = kc.execute_interactive("print(1)", timeout=30, output_hook=lambda msg: None)
            elapsed = (time.perf_counter() - t0) * 1000
            assert reply["content"]["status"] == "ok", reply
            return elapsed

        for _ in range(20):  # warm both
            session("print(1)")
            session(IMPORTS)
            jupyter()
        times: dict[str, list[float]] = {"session": [], "jupyter": [], "imports": []}
        for _ in range(runs):
            times["session"].append(session("print(1)"))
            times["jupyter"].append(jupyter())
            times["imports"].append(session(IMPORTS))
        assert "".join(out) == "1\n" * (2 * 20 + 2 * runs)  # every cell printed exactly what it ran
    finally:
        worker.close()
        kc.stop_channels()
        km.shutdown_kernel(now=True)

    p50 = {k: statistics.median(v) for k, v in times.items()}
    p95 = {k: percentile(v, 95) for k, v in times.items()}
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    import ipykernel

    section = f"""{SECTION}

`bench/bench_sessions.py`, measured {now} on {platform.machine()}, Python {platform.python_version()},
ipykernel {ipykernel.__version__}; {runs} interleaved round trips each, after 20 warm-up ones. The session worker
runs as a plain subprocess here (no sandbox, no LSP): this is the worker's own round trip, JSON lines over two
pipes, against the kernel's ZeroMQ `execute` → output → reply and idle.

| measure | p50 | p95 | goal |
|---|---|---|---|
| Jupyter kernel `execute("print(1)")` round trip | {p50['jupyter']:.3f} ms | {p95['jupyter']:.3f} ms | |
| session worker `print(1)` round trip | {p50['session']:.3f} ms | {p95['session']:.3f} ms | |
| ratio worker / Jupyter | {p50['session'] / p50['jupyter']:.3f} | {p95['session'] / p95['jupyter']:.3f} | ≤ 1.0 ({'meets' if p50['session'] <= p50['jupyter'] and p95['session'] <= p95['jupyter'] else 'misses'}) |
| ten stdlib imports + `print(1)` re-run in the warm worker | {p50['imports']:.3f} ms | {p95['imports']:.3f} ms | |
| ratio imports / `print(1)` | {p50['imports'] / p50['session']:.3f} | {p95['imports'] / p95['session']:.3f} | see below |

The issue's ≤ 1.2 for the imports cell is about the round trip through the LSP, whose fixed cost is milliseconds;
the worker alone costs so little that the imports' own {p50['imports'] - p50['session']:.3f} ms (p50; ten `import`
statements of cached modules, the cell's code object is cached by the worker) is most of its round trip. Added to
the LSP round trip that is the figure to hold against 1.2×.
"""
    print(section)
    if args.record:
        text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
        pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
        text = pattern.sub(lambda _m: section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
        RESULTS.write_text(text.rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
