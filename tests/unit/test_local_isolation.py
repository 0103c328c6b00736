"""Isolation canaries for the local sandbox: real bubblewrap, real processes, no mocks.

Each canary also checks the opposite case where that makes sense (what is allowed really works), so that a canary
cannot pass just because the code failed for an unrelated reason.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from tests.processes import processes_with

from daytona_lsp.core.environment import TIMEOUT_EXIT_CODE
from daytona_lsp.core.local import LocalCodeEnvironment

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap needs Linux")


# -- filesystem ---------------------------------------------------------------------------------------------------


async def test_canary_in_host_home_is_unreadable(env):
    home = Path.home()
    canary = home / f".daytona-lsp-canary-{uuid.uuid4().hex}"
    canary.write_text("host secret")
    try:
        code = textwrap.dedent(f"""
            import os
            try:
                print(open({str(canary)!r}).read())
            except OSError as e:
                print("blocked", type(e).__name__)
            print("listing", os.path.exists({str(home)!r}) and os.listdir({str(home)!r}))
            print("home", os.path.expanduser("~"))
        """)
        result = await env.run(code, "python")
    finally:
        canary.unlink()
    assert result.exit_code == 0, result.output
    assert "host secret" not in result.output
    assert "blocked FileNotFoundError" in result.output
    assert canary.name not in result.output
    assert "home /workspace" in result.output


async def test_host_secrets_in_etc_are_not_mounted(env):
    result = await env.run(
        "import os; print([p for p in ('/etc/shadow', '/etc/sudoers') if os.path.exists(p)])", "python"
    )
    assert result.output == "[]\n"


async def test_writing_outside_the_work_dir_fails_or_stays_in_the_sandbox(env, tmp_path):
    outside = tmp_path / "escape.txt"
    code = textwrap.dedent(f"""
        import os
        targets = ["/escape.txt", "/usr/escape.txt", "/etc/escape.txt", "/code/escape.txt", {str(outside)!r}]
        for path in targets:
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write("x")
                print("wrote", path)
            except OSError as e:
                print("denied", path, e.errno)
        open("/workspace/inside.txt", "w").write("ok")
        open("/tmp/scratch.txt", "w").write("private")
    """)
    result = await env.run(code, "python")
    assert result.exit_code == 0, result.output
    for path in ("/escape.txt", "/usr/escape.txt", "/etc/escape.txt", "/code/escape.txt"):
        assert f"denied {path}" in result.output
    assert not outside.exists(), "nothing written by the sandbox reaches the host outside the work dir"
    assert not await asyncio.to_thread(Path("/tmp/scratch.txt").exists), "the sandbox's /tmp is private"
    assert env.work_dir is not None and (env.work_dir / "inside.txt").read_text() == "ok"


async def test_sandbox_user_has_no_capabilities_and_no_nested_namespaces(env):
    code = textwrap.dedent("""
        import os, subprocess
        caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')]
        print(os.getuid(), caps[0])
        r = subprocess.run(['unshare', '--user', 'true'], capture_output=True)
        print('unshare', r.returncode != 0)
    """)
    result = await env.run(code, "python")
    assert result.output == "1000 0000000000000000\nunshare True\n"


async def test_host_processes_are_invisible(env):
    result = await env.run("import os; print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))", "python")
    pids = json.loads(result.output)
    assert len(pids) < 5, "a fresh pid namespace holds only the sandbox's own processes"


# -- network ------------------------------------------------------------------------------------------------------


@pytest.fixture
async def loopback_server():
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.write(b"hello from host\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port, connections
    server.close()
    await server.wait_closed()


CONNECT = textwrap.dedent("""
    import socket
    try:
        s = socket.create_connection(("127.0.0.1", {port}), timeout=5)
        print("connected", s.recv(100).decode().strip())
    except OSError as e:
        print("refused", type(e).__name__)
""")


async def test_connecting_to_a_host_loopback_port_fails(env, loopback_server):
    port, connections = loopback_server
    result = await env.run(CONNECT.format(port=port), "python")
    assert result.output.startswith("refused"), result.output
    assert connections == []


async def test_network_opt_in_does_reach_the_host(loopback_server):
    port, connections = loopback_server
    env = LocalCodeEnvironment(network=True)
    try:
        result = await env.run(CONNECT.format(port=port), "python")
    finally:
        await env.aclose()
    assert result.output == "connected hello from host\n"
    assert connections == [1]


# -- limits and process lifetime ----------------------------------------------------------------------------------


async def test_infinite_loop_ends_at_the_timeout_with_output_so_far():
    env = LocalCodeEnvironment(timeout=1)
    try:
        started = time.monotonic()
        result = await env.run("print('before the loop', flush=True)\nwhile True:\n    pass\n", "python")
        elapsed = time.monotonic() - started
    finally:
        await env.aclose()
    assert result.exit_code == TIMEOUT_EXIT_CODE
    assert result.output.startswith("before the loop\n")
    assert "timed out after 1 s" in result.output
    assert result.output.endswith("killed.\n"), "the note is a line of its own"
    assert 0.9 < elapsed < 10


async def test_background_child_does_not_survive_the_run(env):
    marker = f"daytona-lsp-bg-{uuid.uuid4().hex}"
    result = await env.run(f"sh -c 'sleep 1000; echo {marker}' >/dev/null 2>&1 &\necho started $!\n", "bash")
    assert result.exit_code == 0 and result.output.startswith("started")
    assert processes_with(marker) == []


async def test_timeout_kills_the_whole_process_tree(env):
    marker = f"daytona-lsp-tree-{uuid.uuid4().hex}"
    env2 = LocalCodeEnvironment(timeout=1)
    try:
        code = f"sh -c 'sleep 1000; echo {marker}' &\nsh -c 'sleep 1000; echo {marker}' &\necho up\nwait\n"
        result = await env2.run(code, "bash")
    finally:
        await env2.aclose()
    assert result.exit_code == TIMEOUT_EXIT_CODE and result.output.startswith("up\n")
    assert processes_with(marker) == []


async def test_cancellation_kills_the_tree_and_returns_124_with_output_so_far(env):
    marker = f"daytona-lsp-cancel-{uuid.uuid4().hex}"
    ready = asyncio.Event()

    seen: list[str] = []

    def on_output(stream: str, text: str) -> None:
        seen.append(text)
        if "ready" in "".join(seen):
            ready.set()

    code = f"sh -c 'echo ready; sleep 1000; echo {marker}' &\nwait\n"
    task = asyncio.create_task(env.run(code, "bash", on_output=on_output))
    await asyncio.wait_for(ready.wait(), 15)
    assert processes_with(marker) != [], "the child is running before the cancellation"
    task.cancel()
    result = await asyncio.wait_for(task, 15)
    assert result.exit_code == TIMEOUT_EXIT_CODE
    assert result.output.startswith("ready\n") and "cancelled" in result.output
    assert processes_with(marker) == []


async def test_aclose_kills_running_code(tmp_path):
    env = LocalCodeEnvironment(timeout=60)
    ready = asyncio.Event()
    task = asyncio.create_task(
        env.run("echo ready; sleep 1000", "bash", on_output=lambda s, t: ready.set() if "ready" in t else None)
    )
    await asyncio.wait_for(ready.wait(), 15)
    await asyncio.wait_for(env.aclose(), 15)
    result = await asyncio.wait_for(task, 15)
    assert result.exit_code == TIMEOUT_EXIT_CODE


async def test_fork_bomb_is_bounded_by_the_process_limit():
    env = LocalCodeEnvironment(timeout=20, max_processes=32)
    code = textwrap.dedent("""
        import os, signal
        n = 0
        try:
            while n < 10000:
                pid = os.fork()
                if pid == 0:
                    signal.pause()
                    os._exit(0)
                n += 1
        except OSError as e:
            print("fork failed after", n, e.errno)
    """)
    try:
        result = await env.run(code, "python")
    finally:
        await env.aclose()
    assert result.output.startswith("fork failed after"), result.output
    assert int(result.output.split()[3]) < 32


async def test_classic_bash_fork_bomb_ends_and_leaves_nothing_behind():
    marker = f"daytona-lsp-bomb-{uuid.uuid4().hex}"
    env = LocalCodeEnvironment(timeout=3, max_processes=64)
    try:
        started = time.monotonic()
        # exec -a names every process of the bomb (forks keep their command line), to look for survivors
        # the main process stays (as an editor's long run would) until the timeout kills the tree
        result = await env.run(f"exec -a {marker} bash -c 'bomb() {{ bomb | bomb & }}; bomb; sleep 60'", "bash")
        elapsed = time.monotonic() - started
    finally:
        await env.aclose()
    assert elapsed < 15
    assert result.exit_code == TIMEOUT_EXIT_CODE
    assert "fork" in result.output and "Resource temporarily unavailable" in result.output, result.output[-500:]
    assert processes_with(marker) == []


async def test_memory_limit_stops_a_runaway_allocation():
    env = LocalCodeEnvironment(memory_mb=256)
    try:
        result = await env.run("x = bytearray(1024 * 1024 * 1024)\nprint('allocated')", "python")
    finally:
        await env.aclose()
    assert result.exit_code != 0 and "MemoryError" in result.output


async def test_file_size_limit_stops_a_huge_write():
    env = LocalCodeEnvironment(max_file_size_mb=1)
    try:
        code = "with open('big', 'wb') as f:\n    f.write(b'x' * (4 * 1024 * 1024))\nprint('wrote')\n"
        result = await env.run(code, "python")
        size = (env.work_dir / "big").stat().st_size if env.work_dir else -1
    finally:
        await env.aclose()
    assert "wrote" not in result.output
    assert size <= 1024 * 1024


def test_output_flood_is_capped_with_head_tail_and_bounded_memory():
    # a fresh process, so that its peak RSS measures only this run
    script = textwrap.dedent("""
        import asyncio, json, resource
        from daytona_lsp.core.local import LocalCodeEnvironment

        async def main():
            env = LocalCodeEnvironment(timeout=120, max_output_bytes=1024 * 1024)
            streamed = [0]
            def on_output(stream, text):
                streamed[0] += len(text)
            code = (
                "import sys\\n"
                "sys.stdout.write('FIRST LINE\\\\n')\\n"
                "block = 'y' * 1023 + '\\\\n'\\n"
                "chunk = block * 1024\\n"
                "for _ in range(200):\\n"
                "    sys.stdout.write(chunk)\\n"
                "sys.stdout.write('LAST LINE\\\\n')\\n"
            )
            base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            r = await env.run(code, "python", on_output=on_output)
            await env.aclose()
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(json.dumps({"exit": r.exit_code, "truncated": r.truncated, "len": len(r.output),
                              "head": r.output[:11], "tail": r.output[-10:], "marker": "truncated" in r.output,
                              "streamed": streamed[0], "base_kb": base, "peak_kb": peak}))

        asyncio.run(main())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["exit"] == 0
    assert info["truncated"] is True and info["marker"] is True
    assert info["head"] == "FIRST LINE\n" and info["tail"] == "LAST LINE\n"
    assert info["len"] < 1024 * 1024 + 200
    assert info["streamed"] == info["len"], "what was streamed adds up to the result's output"
    grew_mb = (info["peak_kb"] - info["base_kb"]) / 1024
    assert grew_mb < 40, f"host memory grew by {grew_mb:.0f} MB for 200 MB of output"


async def test_cancelling_at_any_point_leaves_no_process_and_gives_a_result(env):
    marker = f"daytona-lsp-anycancel-{uuid.uuid4().hex}"
    code = f"sh -c 'sleep 1000; echo {marker}' &\nwait\n"
    # the moment of the cancellation moves from before the spawn, through bubblewrap's set-up, to the running code
    # (the delays choose that moment; nothing here waits for a condition by sleeping)
    for delay_ms in (0, 1, 2, 3, 5, 8, 12, 20, 35, 60, 100):
        task = asyncio.create_task(env.run(code, "bash"))
        await asyncio.sleep(0)
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        task.cancel()
        result = await asyncio.wait_for(task, 20)
        assert result.exit_code == TIMEOUT_EXIT_CODE, result
        assert "cancelled" in result.output
    assert processes_with(marker) == []
    # the environment is still usable afterwards
    assert (await env.run("echo fine", "bash")).output == "fine\n"


async def test_an_environment_variable_with_a_nul_byte_is_a_clear_result():
    env = LocalCodeEnvironment(env_vars={"BAD": "a\x00b"})
    try:
        result = await env.run("echo hi", "bash")
    finally:
        await env.aclose()
    assert result.exit_code == 125 and "null byte" in result.output
