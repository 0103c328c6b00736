"""Benchmark of sessions against a Jupyter kernel (results: bench/RESULTS.md, section "Sessions").

(a) warm ``print(1)`` cell through the language server in a local Python session — ``daytona.run`` of a ``# %%``
    cell's range, request → response, as an editor sees it (real server process, local bubblewrap sandbox) — vs a
    Jupyter kernel's ``execute`` round trip (``BlockingKernelClient.execute_interactive``: request → output → reply
    and idle), interleaved, p50 and p95. Goal ≤ 1.0× (p50 and p95).
(b) a cell of ten standard-library imports re-run in the warm session through the LSP vs its ``print(1)``. Goal ≤ 1.2×.
(c) for reference, the Python session worker alone (``SessionWorker.execute``, a plain subprocess: no sandbox, no LSP).

ipykernel and jupyter_client are installed by the benchmark into a venv of its own
(``${DAYTONA_LSP_CACHE:-~/.cache/daytona-lsp}/bench-jupyter``, made once); the kernel and its client run there, in a
helper process that times each round trip itself and is driven line by line over a pipe (so the runs interleave).

    .venv/bin/python bench/bench_sessions.py            # 300 interleaved round trips each
    .venv/bin/python bench/bench_sessions.py --quick    # smoke test
    .venv/bin/python bench/bench_sessions.py --record   # also write them to bench/RESULTS.md ("## Sessions")
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from daytona_lsp.core.sessions.client import SessionWorker

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Sessions"
IMPORTS = "import os, sys, json, re, math, itertools, collections, functools, datetime, pathlib\nprint(1)"
SERVER = [sys.executable, "-m", "daytona_lsp"]
CACHE = Path(os.environ.get("DAYTONA_LSP_CACHE") or Path.home() / ".cache" / "daytona-lsp")
JUPYTER_VENV = CACHE / "bench-jupyter"

# Runs in the Jupyter venv: one kernel, one client; each "go" line → one execute round trip, its time in ms.
JUPYTER_HELPER = """
import sys, time
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name="python3")
try:
    out = []
    hook = lambda msg: out.append(msg["content"].get("text", "")) if msg["msg_type"] == "stream" else None
    print("ready", flush=True)
    runs = 0
    for line in sys.stdin:
        runs += 1
        t0 = time.perf_counter()
        reply = kc.execute_interactive("print(1)", timeout=30, output_hook=hook)
        elapsed = (time.perf_counter() - t0) * 1000
        assert reply["content"]["status"] == "ok", reply
        print(elapsed, flush=True)
    assert "".join(out) == "1\\n" * runs, out  # (a stream message may carry part of a line)
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
"""


def jupyter_python() -> Path:
    """The Jupyter venv's interpreter (the venv is made, and ipykernel + jupyter_client installed, when missing)."""
    python = JUPYTER_VENV / "bin" / "python"
    probe = [str(python), "-c", "import ipykernel, jupyter_client"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(JUPYTER_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "ipykernel", "jupyter_client"], check=True)
    subprocess.run([str(python), "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"], check=True)
    return python


class Jupyter:
    """The helper process: :meth:`round_trip` → one kernel ``execute("print(1)")``, as the helper timed it (ms)."""

    def __init__(self) -> None:
        python = jupyter_python()
        self.process = subprocess.Popen(
            [str(python), "-c", JUPYTER_HELPER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "ready"
        version = [str(python), "-c", "import ipykernel; print(ipykernel.__version__)"]
        self.version = subprocess.run(version, capture_output=True, text=True, check=True).stdout.strip()

    def round_trip(self) -> float:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        if self.process.wait(30) != 0:
            raise RuntimeError(f"the Jupyter helper failed (exit {self.process.returncode})")


class LspSession:
    """A real ``daytona-lsp`` (local backend) with one document whose ``# %%`` cell holds the code to run."""

    def __init__(self, root: Path) -> None:
        self.client = LanguageClient("bench-sessions", "0")
        for method in ("daytona/runStarted", "daytona/output", "daytona/runFinished"):  # sent as to an editor
            self.client.feature(method)(lambda _params: None)
        self.uri = (root / "cell.py").as_uri()
        self.version = 0

    async def start(self) -> None:
        await self.client.start_io(*SERVER)
        await self.client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                initialization_options={"backend": "local", "prewarm": True, "outputNotifications": True},
            )
        )
        self.client.initialized(types.InitializedParams())
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=self.uri, language_id="python", version=0, text="")
            )
        )

    async def run(self, code: str) -> float:
        """Put ``code`` in the document's cell (one didChange) and run the cell: the request → response time (ms)."""
        text = f"# %%\n{code}\n"
        self.version += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
        lines = text.count("\n")
        arg = {"uri": self.uri, "range": {"start": {"line": 0, "character": 0}, "end": {"line": lines, "character": 0}}}
        t0 = time.perf_counter()
        result = await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="daytona.run", arguments=[arg])
        )
        elapsed = (time.perf_counter() - t0) * 1000
        assert result["exitCode"] == 0 and result["output"] == "1\n", result
        return elapsed

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(runs: int, warmup: int) -> tuple[dict[str, list[float]], str]:
    jupyter = Jupyter()
    worker = SessionWorker("python")
    out: list[str] = []

    def worker_run(code: str) -> float:
        t0 = time.perf_counter()
        result = worker.execute(code, on_output=lambda _s, text: out.append(text))
        elapsed = (time.perf_counter() - t0) * 1000
        assert result.status == "ok", result
        return elapsed

    times: dict[str, list[float]] = {k: [] for k in ("jupyter", "lsp", "lsp_imports", "worker", "worker_imports")}
    with tempfile.TemporaryDirectory(prefix="bench-sessions-") as tmp:
        lsp = LspSession(Path(tmp))
        await lsp.start()
        try:
            steps: list[tuple[str, Callable[[], Any]]] = [
                ("jupyter", jupyter.round_trip),
                ("lsp", lambda: lsp.run("print(1)")),
                ("lsp_imports", lambda: lsp.run(IMPORTS)),
                ("worker", lambda: worker_run("print(1)")),
                ("worker_imports", lambda: worker_run(IMPORTS)),
            ]
            for i in range(warmup + runs):
                order = steps if i % 2 else steps[::-1]  # alternate which goes first
                for name, step in order:
                    value = step()
                    if asyncio.iscoroutine(value):
                        value = await value
                    if i >= warmup:
                        times[name].append(value)
        finally:
            await lsp.stop()
            worker.close()
            jupyter.close()
    assert "".join(out) == "1\n" * (2 * (warmup + runs))  # every worker cell printed exactly what it ran
    return times, jupyter.version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--record", action="store_true", help="write the results to bench/RESULTS.md")
    args = parser.parse_args()
    runs, warmup = (20, 5) if args.quick else (args.runs, 20)
    times, ipykernel_version = asyncio.run(measure(runs, warmup))

    p50 = {k: statistics.median(v) for k, v in times.items()}
    p95 = {k: percentile(v, 95) for k, v in times.items()}

    def verdict(a: str, b: str, goal: float) -> str:
        return "meets" if p50[a] <= goal * p50[b] and p95[a] <= goal * p95[b] else "misses"

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = f"""{SECTION}

`bench/bench_sessions.py`, measured {now} on {platform.machine()} ({os.cpu_count()} cores, shared), Python
{platform.python_version()}, ipykernel {ipykernel_version} (in the benchmark's own venv); {runs} interleaved round trips
each, after {warmup} warm-up ones. LSP: a real `daytona-lsp` (local bubblewrap sandbox), `daytona.run` of a `# %%`
cell's range (the document's session, setting `daytona.session: cells`), request → response as the editor sees it.
Jupyter: `execute_interactive("print(1)")` → output → reply and idle. Worker: the Python session worker alone (a
plain subprocess, JSON lines over two pipes; no sandbox, no LSP).

| measure | p50 | p95 | goal |
|---|---|---|---|
| Jupyter kernel `execute("print(1)")` round trip | {p50["jupyter"]:.3f} ms | {p95["jupyter"]:.3f} ms | |
| LSP: `print(1)` cell in the warm session | {p50["lsp"]:.3f} ms | {p95["lsp"]:.3f} ms | |
| ratio LSP / Jupyter | {p50["lsp"] / p50["jupyter"]:.3f} | {p95["lsp"] / p95["jupyter"]:.3f} | ≤ 1.0 ({verdict("lsp", "jupyter", 1.0)}) |
| LSP: ten stdlib imports + `print(1)` re-run | {p50["lsp_imports"]:.3f} ms | {p95["lsp_imports"]:.3f} ms | |
| ratio imports / `print(1)` (LSP) | {p50["lsp_imports"] / p50["lsp"]:.3f} | {p95["lsp_imports"] / p95["lsp"]:.3f} | ≤ 1.2 ({verdict("lsp_imports", "lsp", 1.2)}) |
| worker alone: `print(1)` | {p50["worker"]:.3f} ms | {p95["worker"]:.3f} ms | |
| worker alone: ten stdlib imports + `print(1)` | {p50["worker_imports"]:.3f} ms | {p95["worker_imports"]:.3f} ms | |
"""
    print(section)
    if args.record:
        text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
        pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
        text = (
            pattern.sub(lambda _m: section + "\n", text)
            if pattern.search(text)
            else text.rstrip("\n") + "\n\n" + section
        )
        RESULTS.write_text(text.rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
