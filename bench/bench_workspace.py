"""Benchmarks of the workspace view (daytona_lsp.core.workspace), on generated trees in a temporary directory.

(1) The check for changes when nothing changed (``Workspace.diff`` against the previous manifest) on a 2,000-file
    workspace: what a run costs when the client sends no file events (Neovim on Linux). Goal: <= 20 ms (median).
    The tree has a ``.gitignore``, nested directories, and ignored ``node_modules`` / ``__pycache__`` directories;
    its files are dated an hour back, as a workspace's files are (files changed within ``RACY_NS`` of the previous
    check are hashed again, by design).
(2) A cold scan (a new ``Workspace``, no previous manifest, every file hashed) of a 1,000-file / 10 MB tree; the
    files are in the page cache (written just before), so this is the view's own cost, not the disk's.
(3) ``--local``: a local sandbox run (``print(1)`` as ``main.py`` of the folder, real bubblewrap) in the 2,000-file
    workspace vs in an empty one, interleaved in one environment (one container each). Goal: <= 1.10x (medians).

    .venv/bin/python bench/bench_workspace.py            # print the results
    .venv/bin/python bench/bench_workspace.py --record   # also write them to bench/RESULTS.md ("## Workspace view")
    .venv/bin/python bench/bench_workspace.py --local [--record]   # (3) ("## Workspace: local runs")
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from daytona_lsp.core.workspace import Workspace
from results import record

HEADING = "## Workspace view"


def generate(root: Path, files: int, size: int) -> None:
    """``files`` files of ``size`` bytes in 20 files per directory, two levels deep, plus ignored directories."""
    an_hour_ago = time.time_ns() - 3600 * 10**9
    root.mkdir()
    (root / ".gitignore").write_text("*.log\n/out/\n")
    os.utime(root / ".gitignore", ns=(an_hour_ago, an_hour_ago))
    for i in range(files):
        path = root / f"pkg{i // 400}" / f"mod{i // 20}" / f"file{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"# file {i}\n".encode().ljust(size, b"x"))
        os.utime(path, ns=(an_hour_ago, an_hour_ago))
    for ignored in ("node_modules/lib", "pkg0/__pycache__", "out"):
        (root / ignored).mkdir(parents=True, exist_ok=True)
        for i in range(50):
            (root / ignored / f"ignored{i}.js").write_text("x")


def timings(fn, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def summary(ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=10)
    return f"{statistics.median(ms):.2f} ms (min {min(ms):.2f}, p10 {q[0]:.2f}, p90 {q[-1]:.2f}, max {max(ms):.2f})"


def bench(rounds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        warm_root, cold_root = Path(tmp, "warm"), Path(tmp, "cold")
        generate(warm_root, 2000, 200)
        generate(cold_root, 1000, 10 * 1024)
        ws = Workspace(warm_root)
        manifest = ws.diff(None).manifest
        assert len(manifest.files) == 2001, len(manifest.files)
        results: list = []
        check = timings(lambda: results.append(ws.diff(manifest)), rounds)
        assert all(d.empty for d in results)
        fresh = timings(lambda: Workspace(warm_root).diff(manifest), rounds)
        cold = timings(lambda: Workspace(cold_root).diff(None), max(5, rounds // 5))
        cold_bytes = sum(e.size for e in Workspace(cold_root).diff(None).manifest.files.values())
    return {"check": check, "fresh": fresh, "cold": cold, "cold_bytes": cold_bytes}


def markdown(r: dict) -> str:
    check = statistics.median(r["check"])
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{HEADING}\n\n"
        f"`bench/bench_workspace.py`, measured {when} on {platform.machine()}, Python {platform.python_version()}, "
        f"{len(r['check'])} rounds (the cold scan {len(r['cold'])}). Generated trees in a temporary directory; "
        "a shared 2-core machine, so the spread is shown.\n\n"
        "| measure | value | goal |\n|---|---|---|\n"
        f"| check for changes, 2,000 files, nothing changed (`Workspace.diff`, kept `Workspace`) | {summary(r['check'])} "
        f"| ≤ 20 ms ({'meets' if check <= 20 else 'misses'}) |\n"
        f"| the same with a new `Workspace` (`.gitignore` compiled again, no decision cache) | {summary(r['fresh'])} | |\n"
        f"| cold scan + hash, 1,000 files / {r['cold_bytes'] / 1e6:.1f} MB, no previous manifest | {summary(r['cold'])} | |\n"
    )


LOCAL_HEADING = "## Workspace: local runs"


def local_trees(tmp: Path) -> tuple[Path, Path]:
    """The 2,000-file workspace (with two secrets, its folders dated an hour back as a project's are) and an empty
    one."""
    full, empty = tmp / "full", tmp / "empty"
    generate(full, 2000, 200)
    for name in (".env", "pkg1/id_rsa"):  # secrets to mask, as a project has
        (full / name).write_text("secret\n")
    an_hour_ago = time.time_ns() - 3600 * 10**9
    for directory in [full, *(p for p in full.rglob("*") if p.is_dir())]:
        os.utime(directory, ns=(an_hour_ago, an_hour_ago))
    empty.mkdir()
    return full, empty


async def bench_local(rounds: int) -> dict[str, list[float]]:
    from daytona_lsp.core import RunSpec
    from daytona_lsp.core.environment import WorkspaceView
    from daytona_lsp.core.local import LocalCodeEnvironment

    with tempfile.TemporaryDirectory() as tmp:
        full, empty = local_trees(Path(tmp))
        env = LocalCodeEnvironment(timeout=30)
        specs = {
            name: RunSpec(
                code="print(1)\n", language="python", path="main.py", cwd="", workspace=WorkspaceView(str(root))
            )
            for name, root in (("full", full), ("empty", empty))
        }
        specs["none"] = RunSpec(code="print(1)\n", language="python")
        ms: dict[str, list[float]] = {name: [] for name in specs}
        try:
            for spec in specs.values():  # containers started, caches warm
                first = await env.execute(spec)
                assert first.output == "1\n", first.output
            for _ in range(rounds):
                for name, spec in specs.items():
                    start = time.perf_counter()
                    result = await env.execute(spec)
                    ms[name].append((time.perf_counter() - start) * 1000)
                    assert result.output == "1\n", result.output
        finally:
            await env.aclose()
        from daytona_lsp.core.local.workspace import run_view

        cache: dict = {}
        for name, root in (("prepare full", full), ("prepare empty", empty)):  # the host's share, in its thread
            view = WorkspaceView(str(root))
            run_view(cache, view, "main.py", "", want_python=True)
            ms[name] = timings(lambda v=view: run_view(cache, v, "main.py", "", want_python=True), rounds * 4)
    return ms


def local_markdown(ms: dict[str, list[float]]) -> str:
    ratio = statistics.median(ms["full"]) / statistics.median(ms["empty"])
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{LOCAL_HEADING}\n\n"
        f"`bench/bench_workspace.py --local`, measured {when} on {platform.machine()}, Python "
        f"{platform.python_version()}, {len(ms['full'])} interleaved rounds: `print(1)` run as `main.py` of a workspace "
        "folder in the local sandbox (real bubblewrap; each run mounts its own overlay of the folder, masks the "
        "secrets, binds the code over its file, lists what it changed). A shared 2-core machine (load average "
        f"{os.getloadavg()[0]:.1f} at the end), so the spread is shown.\n\n"
        "| run | time | goal |\n|---|---|---|\n"
        f"| in a 2,000-file workspace (two secrets masked) | {summary(ms['full'])} | |\n"
        f"| in an empty workspace | {summary(ms['empty'])} | |\n"
        f"| ratio of the medians | {ratio:.2f}x | ≤ 1.10x ({'meets' if ratio <= 1.10 else 'misses'}) |\n"
        f"| without a workspace (for scale) | {summary(ms['none'])} | |\n"
        f"| the host's preparation of a run (secrets search, cached per directory; virtualenv), 2,000 files "
        f"| {summary(ms['prepare full'])} | |\n"
        f"| the same, empty workspace | {summary(ms['prepare empty'])} | |\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--record", action="store_true", help="write the results to bench/RESULTS.md")
    parser.add_argument("--local", action="store_true", help="(3): local sandbox runs in a workspace")
    args = parser.parse_args()
    if args.local:
        import asyncio

        section = local_markdown(asyncio.run(bench_local(args.rounds)))
    else:
        section = markdown(bench(args.rounds))
    print(section)
    if args.record:
        record(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
