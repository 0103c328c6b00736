"""Benchmarks of the isolated local sandbox (LocalCodeEnvironment).

(a) ``print(1)`` through ``LocalCodeEnvironment.run`` vs the raw spawn of the very same bubblewrap sandbox and
    interpreter (``subprocess.run`` of the bwrap command line the environment builds, without the environment's
    limits wrapper, output streaming or pid-namespace teardown wait). Runs are interleaved so both sides share the
    machine's noise; the ratio of the medians is the overhead of the environment (goal <= 1.10).
(c) Peak memory (RSS) of a fresh host process while a run floods 200 MB of output (capped at 1 MiB).

    .venv/bin/python bench/bench_local.py               # print the results (60 interleaved runs each)
    .venv/bin/python bench/bench_local.py --quick       # a few runs only (smoke test)
    .venv/bin/python bench/bench_local.py --record      # also write them to bench/RESULTS.md ("## Local backend")
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from daytona_lsp.core.local import SANDBOX_WORK_DIR, LocalCodeEnvironment, _memfd_with, _Runtime

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Local backend"


async def bench_spawn(runs: int) -> dict[str, float]:
    env = LocalCodeEnvironment(timeout=60)
    await env.prepare()
    runtime = await env._runtime("python", None)
    assert isinstance(runtime, _Runtime), runtime
    work_dir = env.work_dir
    assert work_dir is not None
    sandbox_env = env._sandbox_env(runtime, None, SANDBOX_WORK_DIR)

    def raw() -> float:
        """The same sandbox, spawned directly: the code file via a memfd as the environment does."""
        t = time.perf_counter()
        code_fd = _memfd_with(b"print(1)\n", "main.py")
        argv = [*env._bwrap_argv(runtime, code_fd, "main.py", work_dir, False, sandbox_env), *runtime.argv]
        out = subprocess.run(
            [*argv, "/code/main.py"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={},
            check=True,
            pass_fds=(code_fd,),
        ).stdout
        os.close(code_fd)
        elapsed = time.perf_counter() - t
        assert out == b"1\n", out
        return elapsed

    async def core() -> float:
        t = time.perf_counter()
        result = await env.run("print(1)\n", "python")
        elapsed = time.perf_counter() - t
        assert (result.exit_code, result.output) == (0, "1\n"), result
        return elapsed

    for _ in range(3):  # warm-up: page cache, runtime discovery
        raw()
        await core()
    raw_times: list[float] = []
    core_times: list[float] = []
    for i in range(runs):
        if i % 2:
            raw_times.append(raw())
            core_times.append(await core())
        else:
            core_times.append(await core())
            raw_times.append(raw())
    await env.aclose()
    raw_med, core_med = statistics.median(raw_times), statistics.median(core_times)
    return {
        "runs": runs,
        "raw_median_ms": raw_med * 1000,
        "core_median_ms": core_med * 1000,
        "ratio": core_med / raw_med,
        "raw_min_ms": min(raw_times) * 1000,
        "core_min_ms": min(core_times) * 1000,
    }


FLOOD = textwrap.dedent("""
    import asyncio, json, resource, time
    from daytona_lsp.core.local import LocalCodeEnvironment

    CODE = (
        "import sys\\n"
        "chunk = ('y' * 1023 + '\\\\n') * 1024\\n"
        "for _ in range({mb}):\\n"
        "    sys.stdout.write(chunk)\\n"
    )

    async def main():
        env = LocalCodeEnvironment(timeout=300)
        await env.run("print(1)", "python")  # warm
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        r = await env.run(CODE, "python", on_output=lambda s, x: None)
        elapsed = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        await env.aclose()
        print(json.dumps({{"exit": r.exit_code, "truncated": r.truncated, "output_chars": len(r.output),
                          "base_rss_mb": base / 1024, "peak_rss_mb": peak / 1024, "seconds": elapsed}}))

    asyncio.run(main())
""")


def bench_flood(mb: int) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", FLOOD.format(mb=mb)], capture_output=True, text=True, check=True, timeout=600
    )
    info = json.loads(proc.stdout)
    info["mb"] = mb
    info["growth_mb"] = info["peak_rss_mb"] - info["base_rss_mb"]
    info["throughput_mb_s"] = mb / info["seconds"]
    return info


def markdown(spawn: dict[str, float], flood: dict[str, float]) -> str:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meets = "meets" if spawn["ratio"] <= 1.10 else "misses"
    return textwrap.dedent(f"""\
        {SECTION}

        `bench/bench_local.py`, measured {when} on {platform.machine()}, Python {platform.python_version()},
        {"as root (so with the pids cgroup)" if _is_root() else "as a regular user"}.

        (a) `print(1)`, {spawn["runs"]} interleaved runs each: `LocalCodeEnvironment.run` against `subprocess.run` of the
        very same bwrap command line (same namespaces, mounts, memfd code file and interpreter). The environment adds
        confining the sandbox's pid 1 before the code starts (`prlimit(2)`; the pids cgroup when root), output
        streaming through the cap, and waiting for the sandbox's pid namespace to be gone. Each of those is a wake-up of the host process: on this shared 2-core machine, with
        other test suites running, repeated measurements of the ratio ranged from about 1.01 (quiet) to 1.2 (busy);
        the fastest runs show the floor.

        | measure | value | goal |
        |---|---|---|
        | raw bubblewrap + interpreter spawn (median) | {spawn["raw_median_ms"]:.1f} ms | |
        | `LocalCodeEnvironment.run` (median) | {spawn["core_median_ms"]:.1f} ms | |
        | ratio core / raw (medians) | {spawn["ratio"]:.3f} | ≤ 1.10 ({meets}) |
        | fastest run, raw / core | {spawn["raw_min_ms"]:.1f} / {spawn["core_min_ms"]:.1f} ms | |

        (c) A run writing {flood["mb"]} MB to stdout, in a fresh host process, output capped at 1 MiB:

        | measure | value |
        |---|---|
        | host peak RSS before / after the run | {flood["base_rss_mb"]:.1f} / {flood["peak_rss_mb"]:.1f} MB |
        | growth during the flood | {flood["growth_mb"]:.1f} MB |
        | result | exit {flood["exit"]}, truncated={flood["truncated"]}, {flood["output_chars"]} characters kept |
        | time, throughput | {flood["seconds"]:.2f} s, {flood["throughput_mb_s"]:.0f} MB/s |
        """)


def _is_root() -> bool:
    import os

    return os.geteuid() == 0


def record(section: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    text = re.sub(rf"([^\n])\n({re.escape(SECTION)}\n)", r"\1\n\n\2", text)  # a blank line before the heading
    RESULTS.write_text(text.rstrip("\n") + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few runs, 20 MB flood (smoke test)")
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--record", action="store_true", help="write the results to bench/RESULTS.md")
    args = parser.parse_args()
    runs = 6 if args.quick else args.runs
    spawn = asyncio.run(bench_spawn(runs))
    flood = bench_flood(20 if args.quick else 200)
    section = markdown(spawn, flood)
    print(section)
    if args.record:
        record(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
