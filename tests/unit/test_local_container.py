"""The local sandbox's long-lived container: runs as process trees inside it, its lifecycle (real bubblewrap)."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from tests.processes import processes_with, wait_gone

from daytona_lsp.core import RunSpec

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap needs Linux")


async def test_a_runs_leftover_daemon_is_gone_when_the_run_ends_while_the_container_lives_on(env):
    marker = f"daytona-lsp-daemon-{uuid.uuid4().hex}"
    # a daemon as they are made: double fork, setsid, stdio closed
    code = f"(setsid sh -c 'sleep 1000; echo {marker}' </dev/null >/dev/null 2>&1 &) ; echo started\n"
    first = await env.run(code, "bash")
    assert (first.exit_code, first.output) == (0, "started\n")
    container = env.sandbox_id
    assert container is not None
    assert processes_with(marker) == [], "the daemon died with the run's pid namespace"
    second = await env.run("echo still here", "bash")
    assert second.output == "still here\n"
    assert env.sandbox_id == container, "the container lived on"
    assert env.info() == {"backend": "local", "state": "ready", "sandboxId": container}


async def test_two_concurrent_runs_share_one_container_with_process_trees_of_their_own(env):
    # each run waits for the other's file: they can only both finish if they really run at the same time
    code = textwrap.dedent("""
        import os, sys, time
        me, other = sys.argv[1], sys.argv[2]
        open(me, "w").close()
        deadline = time.monotonic() + 15
        while not os.path.exists(other) and time.monotonic() < deadline:
            time.sleep(0.01)
        print(os.path.exists(other), sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
    """)
    await env.prewarm()
    container = env.sandbox_id
    a, b = await asyncio.gather(
        env.execute(RunSpec(code=code, language="python", args=("a.flag", "b.flag"))),
        env.execute(RunSpec(code=code, language="python", args=("b.flag", "a.flag"))),
    )
    assert (a.exit_code, b.exit_code) == (0, 0), (a.output, b.output)
    assert a.output.startswith("True") and b.output.startswith("True")
    # each sees only its own processes: its pid 1 and itself
    assert a.output.split(" ", 1)[1] == b.output.split(" ", 1)[1] == "[1, 2]\n"
    assert env.sandbox_id == container


async def test_a_container_killed_from_outside_is_recreated_by_the_next_run_which_says_so(env):
    await env.run("true", "bash")
    before = env.sandbox_id
    work_dir = env.work_dir
    assert before is not None and work_dir is not None
    container = processes_with(f"{work_dir}\x00/workspace")  # bubblewrap's command line binds the work directory
    assert container, "the container's bubblewrap is running"
    for pid in container:
        os.kill(pid, signal.SIGKILL)
    assert wait_gone(container) == []
    result = await env.run("echo ok", "bash")
    assert result.exit_code == 0
    assert result.output.startswith("[daytona-lsp: the sandbox container had stopped") and result.output.endswith(
        "ok\n"
    )
    assert env.sandbox_id not in (None, before)
    assert (await env.run("echo again", "bash")).output == "again\n", "the note comes once"


SERVER = textwrap.dedent("""
    import asyncio, sys
    from daytona_lsp.core.local import LocalCodeEnvironment

    async def main():
        env = LocalCodeEnvironment()
        result = await env.run("echo up", "bash")
        print(result.output.strip(), env.work_dir.parent, flush=True)
        await asyncio.sleep(1000)

    asyncio.run(main())
""")


def test_sigkill_of_the_server_leaves_no_container_and_the_next_start_sweeps_its_directory():
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        up, root = server.stdout.readline().split()
        assert up == "up" and Path(root).is_dir()
        container = processes_with(root)
        assert container, "the server's container is running"
    finally:
        server.kill()
        server.wait()
    assert wait_gone(container) == [], "nothing of the container outlives the server"
    assert Path(root).is_dir(), "nobody cleaned up after the killed server"
    nxt = subprocess.run(
        [sys.executable, "-c", SERVER.replace("await asyncio.sleep(1000)", "await env.aclose()")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert nxt.stdout.startswith("up "), nxt.stderr
    assert not Path(root).exists(), "the next start swept the stale directory"


async def test_arguments_and_preset_stdin_reach_the_program(env):
    code = "import sys\nprint(sys.argv[1:])\nprint(repr(sys.stdin.read()))\n"
    result = await env.execute(RunSpec(code=code, language="python", args=("a b", "-c"), stdin="line 1\nline 2\n"))
    assert (result.exit_code, result.output) == (0, "['a b', '-c']\n'line 1\\nline 2\\n'\n")
    shell = await env.execute(RunSpec(code='echo "$#:$1"; cat; echo end', language="bash", args=("x y",)))
    no_stdin = "1:x y\nend\nstdin is closed (no input was given)\n"  # EOF at once, and the note (cat read it)
    assert (shell.exit_code, shell.output) == (0, no_stdin), "no stdin: the program reads EOF at once"


async def test_python_runs_as_python_file_would(env):
    code = textwrap.dedent("""
        import sys, os
        print(sys.argv[0], __name__, __file__, sys.path[0], os.getcwd(), sys.flags.no_site)
        print(sorted({"ctypes", "json", "enum", "types"} & set(sys.modules)))  # what python FILE has not imported
        raise SystemExit(3)
    """)
    result = await env.run(code, "python")
    assert (result.exit_code, result.output) == (3, "/code/main.py __main__ /code/main.py /code /workspace 0\n[]\n")


async def test_python_has_the_path_and_site_set_up_of_a_python_started_in_the_sandbox(env):
    """A Python run is a fork of the agent's interpreter: its sys.path (after the file's directory), site-packages,
    user site and import hooks (.pth files) are those of this interpreter started in the sandbox."""
    probe = (
        "import sys, site\n"
        "print(sys.path[1:], site.ENABLE_USER_SITE, site.USER_SITE, [type(f).__name__ for f in sys.meta_path])\n"
        "print(sys.prefix, callable(exit), callable(help), 'sitecustomize' in sys.modules)\n"
    )
    forked = await env.run(probe, "python")
    python = f'PYTHONPATH="$PWD" {shlex.quote(sys.executable)}'  # as a Python run's environment has it
    started = await env.run(f"{python} -c {shlex.quote(probe)}", "bash")
    assert forked.exit_code == 0 and "site-packages" in forked.output, forked.output
    assert forked.output == started.output


async def test_cwd_and_file_name_come_from_the_spec_and_may_not_leave_the_workspace(env):
    await env.run("mkdir -p sub/dir", "bash")
    spec = RunSpec(code="import os; print(os.getcwd(), __file__)", language="python", path="pkg/tool.py", cwd="sub")
    result = await env.execute(spec)
    assert result.output == "/workspace/sub /code/tool.py\n" and result.source_path == "/code/tool.py"
    bad = await env.execute(RunSpec(code="print(1)", language="python", cwd="../.."))
    assert bad.exit_code == 2 and "not inside the workspace" in bad.output


async def test_reset_gives_a_fresh_container_and_an_empty_work_dir(env):
    await env.run("echo x > kept.txt", "bash")
    before = env.sandbox_id
    await env.reset()
    assert env.info()["state"] == "none"
    result = await env.run("ls", "bash")
    assert (result.exit_code, result.output) == (0, "")
    assert env.sandbox_id not in (None, before)


async def test_a_run_holds_no_descriptor_but_its_stdio_even_beside_another_run(env):
    started = asyncio.Event()
    other = asyncio.create_task(
        env.run("echo up; sleep 30", "bash", on_output=lambda s, t: started.set() if "up" in t else None)
    )
    try:
        await asyncio.wait_for(started.wait(), 15)
        shell = await env.run("ls /proc/self/fd | tr '\\n' ' '", "bash")
        python = await env.run("import os; print(sorted(os.listdir('/proc/self/fd')))", "python")
    finally:
        other.cancel()
        await other
    assert shell.output == "0 1 2 3 ", "ls's own directory descriptor, nothing of the agent's"
    assert python.output == "['0', '1', '2', '3']\n"


async def test_the_runs_pid_1_survives_its_signals_and_programs_start_with_default_signal_actions(env):
    # SIGINT to pid 1 (the agent's process that holds the run's namespace) is ignored, as for any init
    code = "kill -INT 1; kill -TERM 1; grep -E '^Sig(Ign|Cgt)' /proc/self/status; echo alive"
    result = await env.run(code, "bash")
    assert result.exit_code == 0, result.output
    assert result.output.endswith("alive\n")
    ignored = int(result.output.split("SigIgn:")[1].split()[0], 16)
    assert ignored & (1 << (13 - 1)) == 0, "SIGPIPE is not ignored by a program that starts"
    assert ignored & (1 << (25 - 1)) == 0, "nor is SIGXFSZ"
    python = await env.run(
        "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)", "python"
    )
    assert python.output == "True\n"


async def test_a_runs_processes_have_no_capability_at_all_and_no_new_privs(env):
    # the agent keeps CAP_SYS_ADMIN inside the container to make the run's namespaces; the run keeps nothing
    fields = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs")
    shell = await env.run("grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status", "bash")
    python = await env.run(
        f"print(''.join(l for l in open('/proc/self/status') if l.startswith({fields!r})))", "python"
    )
    for result in (shell, python):
        values = dict(line.split(":\t") for line in result.output.strip().splitlines())
        assert values == {**{f: "0000000000000000" for f in fields[:-1]}, "NoNewPrivs": "1"}, result.output


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root server mounts a bounded store (and may mount one here)")
def test_a_dead_servers_bounded_store_mounted_under_another_tmpdir_is_swept(tmp_path: Path) -> None:
    """A root server killed with SIGKILL leaves its tmpfs mounted wherever its TMPDIR was; the next start anywhere
    unmounts and removes it (it once stayed mounted for good when the next server used another TMPDIR)."""
    from daytona_lsp.core.local import launch

    dead = subprocess.Popen(["true"])  # a pid that has just ended
    dead.wait()
    other = tmp_path / "other tmp"  # a space: mountinfo escapes it
    stale = other / f"{launch.ROOT_PREFIX}{dead.pid}-test"
    stale.mkdir(parents=True)
    launch._mount_tmpfs(stale, 1)
    (stale / "left").write_text("x")
    try:
        assert stale in launch._mounted_roots()
        removed = launch.sweep_stale_roots(str(tmp_path / "empty"))
        assert stale in removed
        assert stale not in launch._mounted_roots() and not stale.exists()
    finally:
        launch.remove_root(stale)
