"""Language-server benchmarks (results: bench/RESULTS.md, section "Language server").

1. Time from spawning the server to the ``initialize`` result: daytona-lsp vs a bare pygls server (same run,
   interleaved). Goal ≤ 1.2×.
2. ``daytona.run`` of ``print(1)`` through LSP (warm server, local backend) vs ``LocalCodeEnvironment.run``
   directly with an output callback, as the server streams (interleaved). Goal ≤ 1.10×. The client is a minimal
   JSON-RPC one (``jsonrpc_client.py``, as an editor's); pygls' heavier client is measured beside it. Also the round
   trip of a command that runs nothing (``daytona.sandboxInfo``): what any request costs.
3. ``textDocument/codeAction`` latency while a 5 s run streams output (a line every 5 ms). Goal p95 ≤ 50 ms.

    .venv/bin/python bench/bench_lsp.py [--quick] [--write]

``--write`` replaces the "## Language server" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cattrs import Converter
from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.protocol import JsonRPCNotification, default_converter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jsonrpc_client import MinimalClient  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
SERVER = [sys.executable, "-m", "daytona_lsp.lsp"]
BARE = [
    sys.executable,
    "-c",
    "from pygls.lsp.server import LanguageServer\nLanguageServer('bare', '0').start_io()\n",
]
CAPS = types.ClientCapabilities(
    window=types.WindowClientCapabilities(work_done_progress=True),
    workspace=types.WorkspaceClientCapabilities(configuration=True),
)


def plain_notifications(converter: Converter) -> None:
    """Decode the params of notifications lsprotocol has no type for (``daytona/*``) as plain JSON, as the editors
    do: pygls' default turns each into a namedtuple of a class it builds per message (about 0.25 ms a message here),
    a cost of this measuring client, not of the server."""
    converter.register_structure_hook(JsonRPCNotification, lambda obj, cls: cls(**obj))


CONVERTER = default_converter()
"""One converter for every client of the benchmark: a fresh pygls client builds its decoders on first use (for our
``initialize`` result, which has more capabilities than the bare server's, tens of ms of this client's time)."""
plain_notifications(CONVERTER)


async def start(cmd: list[str], init_options: Any = None) -> tuple[LanguageClient, float]:
    client = LanguageClient("bench", "0", converter_factory=lambda: CONVERTER)

    @client.feature(types.WORKSPACE_CONFIGURATION)
    def configuration(params: types.ConfigurationParams) -> list[Any]:
        return [None for _ in params.items]

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def create(params: types.WorkDoneProgressCreateParams) -> None:
        return None

    t0 = time.perf_counter()
    await client.start_io(*cmd)
    await client.initialize_async(
        types.InitializeParams(capabilities=CAPS, root_uri=None, initialization_options=init_options)
    )
    elapsed = time.perf_counter() - t0
    client.initialized(types.InitializedParams())
    return client, elapsed


async def stop(client: LanguageClient) -> None:
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()


def open_doc(client: LanguageClient, uri: str, text: str) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
    )


async def run(client: LanguageClient, uri: str) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="daytona.run", arguments=[{"uri": uri}])
    )


@contextlib.contextmanager
def bytecode_cache() -> Iterator[None]:
    """Servers spawned inside read and write their bytecode in a private cache, as installed servers do (pip
    compiles a package when it installs it; the VS Code extension gives its bundled server a pycache directory).
    Without it (``PYTHONDONTWRITEBYTECODE``, as in this repository's shells) daytona-lsp's own modules would be
    compiled from source at every start, and pygls' installed ones not."""
    saved = {k: os.environ.get(k) for k in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    with tempfile.TemporaryDirectory(prefix="daytona-lsp-bench-pycache-") as cache:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = cache
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


async def bench_initialize(n: int) -> dict[str, float]:
    ours: list[float] = []
    bare: list[float] = []
    with bytecode_cache():
        for cmd in (SERVER, BARE):  # untimed: fills the cache
            client, _ = await start(cmd)
            await stop(client)
        for _ in range(n):
            for cmd, sink in ((SERVER, ours), (BARE, bare)):
                client, elapsed = await start(cmd)
                sink.append(elapsed)
                await stop(client)
    return {"ours": statistics.median(ours), "bare": statistics.median(bare)}


async def bench_run(n: int, client_kind: str) -> dict[str, Any]:
    """``print(1)``: the core's run against ``daytona.run`` through one server, from the minimal client (as an
    editor's; also the round trip of a command that runs nothing) or from pygls' client, interleaved (each round in a
    different order)."""
    from daytona_lsp.core.local import LocalCodeEnvironment

    options = {"backend": "local", "prewarm": False, "outputNotifications": True}
    uri = "file:///bench/print1.py"
    if client_kind == "minimal":
        minimal = MinimalClient()
        await minimal.start(SERVER)
        await minimal.initialize(options)
        minimal.open(uri, "print(1)\n")

        async def lsp() -> Any:
            return await minimal.command("daytona.run", {"uri": uri})

        async def stop_client() -> None:
            await minimal.stop()

        async def floor() -> None:  # a command that runs nothing: the request's round trip through client and server
            await minimal.command("daytona.sandboxInfo", {"uri": uri})

        extra = [("floor", floor)]
    else:
        client, _ = await start(SERVER, options)
        open_doc(client, uri, "print(1)\n")

        async def lsp() -> Any:
            return await run(client, uri)

        async def stop_client() -> None:
            await stop(client)

        extra = []

    env = LocalCodeEnvironment()
    times: dict[str, list[float]] = {"core": [], "lsp": [], "floor": []}

    def ignore(stream: str, text: str) -> None:  # the LSP streams output, so the core run streams too
        pass

    async def core() -> None:
        res = await env.run("print(1)\n", "python", on_output=ignore)
        assert res.exit_code == 0, res

    async def through_lsp() -> None:
        result = await lsp()
        assert result["exitCode"] == 0, result

    sides = [("core", core), ("lsp", through_lsp), *extra]
    try:
        for _, side in sides:  # warm-up: environments built, sandboxes probed
            await side()
        for i in range(n):
            for name, side in sides[i % len(sides) :] + sides[: i % len(sides)]:
                t0 = time.perf_counter()
                await side()
                times[name].append(time.perf_counter() - t0)
    finally:
        await env.aclose()
        await stop_client()
    out: dict[str, Any] = {name: statistics.median(values) for name, values in times.items() if values}
    out.update({f"{name}_iqr": iqr(values) for name, values in times.items() if values})
    return out


def iqr(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4) if len(values) >= 4 else [min(values), 0.0, max(values)]
    return f"IQR {q[0] * 1000:.1f}–{q[2] * 1000:.1f}"


async def bench_code_action_latency(seconds: float) -> dict[str, float]:
    client, _ = await start(SERVER, {"backend": "local", "prewarm": False, "outputNotifications": True})
    chunks = 0

    @client.feature("daytona/output")
    def on_output(params: Any) -> None:
        nonlocal chunks
        chunks += 1

    uri = "file:///bench/stream.py"
    code = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    print('x' * 80, flush=True)\n    time.sleep(0.005)\n"
    open_doc(client, uri, code)
    params = types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(types.Position(0, 0), types.Position(1, 0)),
        context=types.CodeActionContext(diagnostics=[]),
    )
    latencies: list[float] = []
    try:
        await run(client, uri)  # warm-up
        chunks = 0
        running = asyncio.ensure_future(run(client, uri))
        while chunks == 0:  # noqa: ASYNC110 - a benchmark loop, not a test
            await asyncio.sleep(0.01)
        while not running.done():
            t0 = time.perf_counter()
            await client.text_document_code_action_async(params)
            latencies.append(time.perf_counter() - t0)
            await asyncio.sleep(0.02)
        await running
    finally:
        await stop(client)
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
    return {"p95": p95, "median": statistics.median(latencies), "n": len(latencies), "chunks": chunks}


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def verdict(ok: bool) -> str:
    return "meets" if ok else "misses"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--write", action="store_true", help="write the results into bench/RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    n_init, n_run, stream_s = (3, 5, 2.0) if args.quick else (9, 100, 5.0)

    from daytona_lsp.lsp.features.output import PROGRESS_DELAY_S
    from daytona_lsp.lsp.writer import HOLD_S

    init = await bench_initialize(n_init)
    runs = await bench_run(n_run, "minimal")
    pygls_runs = await bench_run(n_run, "pygls")
    actions = await bench_code_action_latency(stream_s)
    init_ratio = init["ours"] / init["bare"]
    run_ratio = runs["lsp"] / runs["core"]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = f"""## Language server

`bench/bench_lsp.py` (local backend), measured {now} on {platform.machine()}, Python {platform.python_version()},
load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.
Spawn-to-`initialize` is dominated by importing pygls and lsprotocol, which both servers pay; daytona-lsp keeps the
Daytona SDK off that path. Both servers start from bytecode (a private cache, as an installed server has), and the
measuring client shares one decoder set across its connections. A run through LSP adds a JSON-RPC round trip, the
run bookkeeping and the `daytona/*` notifications to the core's own run: a constant cost, so the ratio depends on how
long the core's run takes (a few milliseconds in the warm local container). Each write to the client's pipe wakes
it, which on this shared 2-core machine takes the processor from the server: notifications sent within {HOLD_S * 1000:.0f} ms of a
request wait for its response, so a short run's output, `runFinished` and result leave in one write (`runStarted` leaves as soon as the sandbox has the run), and a run shorter
than {PROGRESS_DELAY_S} s costs no work-done progress (no `window/workDoneProgress/create` round trip, no begin/end) unless the
request carries the client's own `workDoneToken`. Runs are measured from a minimal JSON-RPC client
(`bench/jsonrpc_client.py`: framing and plain `json`, as an editor's client parses a message and hands it on) and,
for comparison, from pygls' Python client, which also builds an lsprotocol object of every message (its own cost,
a few hundred microseconds a round trip here); it decodes `daytona/*` as plain JSON, as the editors do.

| measure | value | goal |
|---|---|---|
| spawn → `initialize` result, bare pygls server (median of {n_init}) | {ms(init["bare"])} | |
| spawn → `initialize` result, daytona-lsp (median of {n_init}) | {ms(init["ours"])} | |
| ratio daytona-lsp / bare | {init_ratio:.3f} | ≤ 1.2 ({verdict(init_ratio <= 1.2)}) |
| `LocalCodeEnvironment.run("print(1)", on_output=…)` (median of {n_run}) | {ms(runs["core"])} ({runs["core_iqr"]}) | |
| `daytona.run` of `print(1)` through LSP, minimal client (median of {n_run}) | {ms(runs["lsp"])} ({runs["lsp_iqr"]}) | |
| ratio LSP / core | {run_ratio:.3f} | ≤ 1.10 ({verdict(run_ratio <= 1.10)}) |
| `daytona.sandboxInfo` round trip, minimal client (runs nothing; median of {n_run}) | {ms(runs["floor"])} ({runs["floor_iqr"]}) | |
| (core + that round trip) / core: the ratio's floor | {(runs["core"] + runs["floor"]) / runs["core"]:.3f} | |
| from pygls' client instead: `daytona.run` / the core's run (medians of {n_run}, interleaved) | {ms(pygls_runs["lsp"])} / {ms(pygls_runs["core"])} | |
| ratio LSP / core with pygls' client | {pygls_runs["lsp"] / pygls_runs["core"]:.3f} | |
| `codeAction` latency while a {stream_s:.0f} s run streams ({actions["chunks"]} chunks), p95 of {actions["n"]} | {ms(actions["p95"])} | ≤ 50 ms ({verdict(actions["p95"] <= 0.05)}) |
| same, median | {ms(actions["median"])} | |
"""
    print(section)
    if args.write:
        write_section(section)
    return 0


def write_section(section: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    head = "## Language server"
    if head in text:
        start = text.index(head)
        nxt = text.find("\n## ", start + len(head))
        text = text[:start] + section.rstrip("\n") + ("\n" + text[nxt:] if nxt != -1 else "\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
