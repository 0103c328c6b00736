"""Server benchmark: the cost of a run grows with what the run reports, not with the document's size.

A ~10 MB Python document (comment lines, then one statement) runs through ``daytona.run`` (warm server, local
backend, a client with VS Code-like capabilities) and, interleaved, through ``LocalCodeEnvironment.run`` with the same
code (the core's own cost: writing 10 MB into the sandbox, Python reading it). Two cases: a clean run (``print(1)``
last) and a failing one (``raise`` on the last line, so the diagnostic points at the document's end). The LSP's share
is the difference of the medians; before the change (issue 13 item 7) it was about 84 ms per run of re-splitting the
document for diagnostics.

    .venv/bin/python bench/bench_server.py [--quick] [--write]

``--write`` replaces the "## Server: run cost and document size" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import platform
import re
import statistics
import sys
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Server: run cost and document size"
SERVER = [sys.executable, "-m", "daytona_lsp.lsp"]
CAPS = types.ClientCapabilities(window=types.WindowClientCapabilities(work_done_progress=True))
PADDING = "# " + "padding " * 8 + "\n"  # 66 characters


def document(megabytes: float, last: str) -> str:
    return PADDING * int(megabytes * 1e6 / len(PADDING)) + last + "\n"


async def start() -> LanguageClient:
    client = LanguageClient("bench", "0")

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def create(params: types.WorkDoneProgressCreateParams) -> None:
        return None

    await client.start_io(*SERVER)
    options = {"backend": "local", "prewarm": False, "outputNotifications": True}
    await client.initialize_async(types.InitializeParams(capabilities=CAPS, initialization_options=options))
    client.initialized(types.InitializedParams())
    return client


async def bench(megabytes: float, n: int) -> dict[str, dict[str, float]]:
    from daytona_lsp.core.local import LocalCodeEnvironment

    client = await start()
    env = LocalCodeEnvironment()
    out: dict[str, dict[str, float]] = {}
    try:
        for case, last, exit_code in (("clean", "print(1)", 0), ("error", "raise ValueError('end')", 1)):
            code = document(megabytes, last)
            uri = f"file:///bench/{case}.py"
            client.text_document_did_open(
                types.DidOpenTextDocumentParams(
                    text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=code)
                )
            )
            params = types.ExecuteCommandParams(command="daytona.run", arguments=[{"uri": uri}])
            lsp: list[float] = []
            core: list[float] = []
            await client.workspace_execute_command_async(params)  # warm-up
            await env.run(code, "python")
            for _ in range(n):
                t0 = time.perf_counter()
                result = await client.workspace_execute_command_async(params)
                lsp.append(time.perf_counter() - t0)
                assert result["exitCode"] == exit_code, result
                t0 = time.perf_counter()
                res = await env.run(code, "python", on_output=lambda stream, text: None)
                core.append(time.perf_counter() - t0)
                assert res.exit_code == exit_code, res
            out[case] = {"lsp": statistics.median(lsp), "core": statistics.median(core), "mb": len(code) / 1e6}
    finally:
        await env.aclose()
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
    return out


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--write", action="store_true", help="write the results into bench/RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    n = 3 if args.quick else 15
    results = await bench(10, n)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = "\n".join(
        f"| {case} ({r['mb']:.1f} MB document) | {ms(r['core'])} | {ms(r['lsp'])} | {ms(r['lsp'] - r['core'])} |"
        for case, r in results.items()
    )
    section = f"""{SECTION}

`bench/bench_server.py`, measured {now} on {platform.machine()}, Python {platform.python_version()}; medians of {n}
interleaved runs. The core column is `LocalCodeEnvironment.run` of the same code; the LSP's share is what the server
adds (JSON-RPC, bookkeeping, notifications, diagnostics). Before issue 13 item 7 a 10 MB document cost about 84 ms
more per run (the document split into lines several times for diagnostics); lines are now looked up where a
diagnostic points.

| run | core | through LSP | LSP's share |
|---|---|---|---|
{rows}
"""
    print(section)
    if args.write:
        text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
        pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
        text = pattern.sub(section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
