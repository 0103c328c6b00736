"""The local sandbox's own protections, attacked from code inside a run (real bubblewrap, ``LocalCodeEnvironment``,
as the server runs: root in CI): the seccomp deny-list, the memory cgroup."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys

import pytest

from daytona_lsp.core import cgroup, seccomp
from daytona_lsp.core.local import LocalCodeEnvironment, LocalSandboxError

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap needs Linux")

SYSCALLS = r"""
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()]
print(json.dumps({
    "io_uring_setup": call(425, 1, 0),
    "keyctl": call(250, 0, -1, 0),
    "ptrace_pid1": call(101, 16, 1, 0, 0),  # PTRACE_ATTACH to the run's pid 1 (the agent's process)
    "ptrace_parent": call(101, 16, os.getppid(), 0, 0),
    "bpf": call(321, 0, 0, 0),
    "unshare_pid": call(272, 0x20000000),
    "unshare_mount": call(272, 0x00020000),
    "mount": call(165, 0, 0, 0, 0, 0),
}))
"""


async def test_a_run_cannot_use_the_denied_system_calls() -> None:
    assert seccomp.build() is not None, seccomp.unavailable_reason()
    async with LocalCodeEnvironment(timeout=30) as env:
        result = await env.run(SYSCALLS, "python")
        assert result.exit_code == 0, result.output
        seen = json.loads(result.output)
        assert seen == dict.fromkeys(seen, "EPERM"), seen
        again = await env.run("import os; print(os.getpid())", "python")  # runs still start under the filter
        assert again.exit_code == 0 and again.output.strip() == "2", again.output


async def test_without_libseccomp_runs_still_work_and_one_warning_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "pyseccomp", None)  # the binding cannot be imported
    seccomp._cached.cache_clear()
    try:
        caplog.set_level(logging.WARNING)
        for _ in range(2):
            async with LocalCodeEnvironment(timeout=30) as env:
                result = await env.run("print('fine')", "python")
                assert (result.exit_code, result.output) == (0, "fine\n")
        warnings = [r.getMessage() for r in caplog.records if "seccomp" in r.getMessage()]
        assert len(warnings) == 1, warnings
        assert "pyseccomp" in warnings[0] and "without" in warnings[0]
    finally:
        seccomp._cached.cache_clear()


MEMORY_MB = 128
MAP_SHARED_3X = f"""
import mmap
size = {3 * MEMORY_MB} * 1024 * 1024
m = mmap.mmap(-1, size, flags=mmap.MAP_SHARED)  # shared memory: RLIMIT_DATA does not count it
for i in range(0, size, 4096):
    m[i] = 1
print("survived")
"""


async def test_the_containers_total_memory_is_bounded_and_a_run_past_it_is_killed_with_a_clear_line() -> None:
    probe = cgroup.create(memory_bytes=None, max_pids=None)  # what the sandbox will get
    if probe is None:
        pytest.skip(f"no writable cgroup here: {cgroup.fallback_reason()}")
    probe.remove()
    async with LocalCodeEnvironment(timeout=60, memory_mb=MEMORY_MB) as env:
        first = await env.run("print('warm')", "python")
        assert first.exit_code == 0, first.output
        container = env.sandbox_id
        result = await env.run(MAP_SHARED_3X, "python")
        assert "survived" not in result.output
        assert result.exit_code == 137, result.output
        assert f"memory limit of {MEMORY_MB} MiB reached" in result.output
        after = await env.run("print('next')", "python")  # the container is unharmed: the next run works in it
        assert (after.exit_code, after.output) == (0, "next\n")
        assert env.sandbox_id == container


async def test_a_run_under_the_limit_gets_no_memory_note() -> None:
    async with LocalCodeEnvironment(timeout=60, memory_mb=MEMORY_MB) as env:
        result = await env.run("import os, sys; sys.stdout.flush(); os.kill(os.getpid(), 9)", "python")
        assert result.exit_code == 137 and "memory limit" not in result.output, result.output


async def test_every_writable_tmpfs_of_the_sandbox_is_size_capped() -> None:
    async with LocalCodeEnvironment(timeout=60) as env:
        result = await env.run("print(open('/proc/self/mountinfo').read())", "python")
    assert result.exit_code == 0, result.output
    tmpfs = [line for line in result.output.splitlines() if " - tmpfs " in line]
    writable = [line for line in tmpfs if line.split()[5].split(",")[0] == "rw"]
    assert {line.split()[4] for line in writable} >= {"/tmp", "/dev/shm"}, tmpfs
    for line in writable:
        assert "size=" in line.split(" - ", 1)[1], line


DISK_MB = 64
FILL = """
import errno, os, sys
def fill(path, mb):
    try:
        with open(path, "wb") as f:
            for _ in range(mb):
                f.write(b"x" * (1024 * 1024))
                f.flush()
        return "ok"
    except OSError as exc:
        return errno.errorcode[exc.errno]
print(fill("/tmp/a", 40), fill("/workspace/b", 40), fill("/dev/shm/c", 8))
"""


async def test_everything_the_sandbox_writes_has_one_bounded_total_off_the_host_disk() -> None:
    if os.geteuid() != 0:
        pytest.skip("the bounded store needs root (the README states the fallback)")
    async with LocalCodeEnvironment(timeout=60, disk_mb=DISK_MB) as env:
        result = await env.run(FILL, "python")
        assert result.exit_code == 0, result.output
        assert result.output.split()[:2] == ["ok", "ENOSPC"], result.output
        assert f"disk limit of {DISK_MB} MiB" in result.output, result.output
        assert env.work_dir is not None
        on_host = os.statvfs(env.work_dir)
        assert on_host.f_blocks * on_host.f_frsize <= (DISK_MB + 1) * 1024 * 1024  # not the host's disk
        assert (env.work_dir / "b").stat().st_size < DISK_MB * 1024 * 1024
        again = await env.run("import os; os.remove('/tmp/a'); os.remove('b'); print('room')", "python")
        assert (again.exit_code, again.output) == (0, "room\n")


async def test_a_setuid_file_written_in_the_sandbox_is_not_setuid_on_the_host() -> None:
    if os.geteuid() != 0:
        pytest.skip("as root only: a user's sandbox writes the user's own files")
    async with LocalCodeEnvironment(timeout=60) as env:
        result = await env.run("cp /usr/bin/id ./id && chmod 4755 ./id && ./id -u", "bash")
        assert (result.exit_code, result.output) == (0, "1000\n"), result.output
        assert env.work_dir is not None
        copy = env.work_dir / "id"
        assert os.statvfs(copy).f_flag & os.ST_NOSUID, "the host sees it on a nosuid mount only"
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(copy), "-u"]
        shown = await asyncio.to_thread(subprocess.run, nobody, capture_output=True, text=True, check=False)
        assert shown.stdout.strip() == "65534", "the copy does not make an unprivileged host user root"


async def test_a_hundred_concurrent_runs_all_run_the_rest_wait_for_a_free_slot() -> None:
    async with LocalCodeEnvironment(timeout=120) as env:
        code = "import time; time.sleep(0.3); print('done')"
        results = await asyncio.gather(*(env.run(code, "python") for _ in range(100)))
    failed = [r for r in results if r.exit_code != 0 or not r.output.endswith("done\n")]
    assert not failed, failed[:3]
    waited = [r for r in results if "waiting for a free slot" in r.output]
    assert 100 - 16 <= len(waited) < 100, len(waited)  # max_concurrent_runs (16) at once, the rest queued


BOMB = """
import os, time
while True:
    try:
        if os.fork() == 0:
            time.sleep(8)
            os._exit(0)
    except OSError:
        break
print("full", flush=True)
time.sleep(8)
"""


async def test_a_run_that_finds_no_process_left_is_exit_125_with_a_clear_line_and_the_sandbox_survives() -> None:
    if os.geteuid() != 0:
        pytest.skip("as root the container's process limit is its pids cgroup")
    async with LocalCodeEnvironment(timeout=60, max_processes=32, max_concurrent_runs=4) as env:
        full = asyncio.Event()

        def seen(_stream: str, text: str) -> None:
            if "full" in text:
                full.set()

        bomb = asyncio.ensure_future(env.run(BOMB, "python", on_output=seen))
        await full.wait()  # the bomb holds every process the container may have
        victim = await env.run("print('never')", "python")
        assert victim.exit_code == 125, victim.output
        assert "process limit" in victim.output and "never" not in victim.output, victim.output
        bomb.cancel()
        await bomb
        after = await env.run("print('alive')", "python")
        assert (after.exit_code, after.output) == (0, "alive\n"), after.output


async def test_the_servers_local_settings_shape_the_sandbox() -> None:
    from daytona_lsp.lsp.runs import default_environment_factory
    from daytona_lsp.lsp.settings import parse_settings

    settings = parse_settings({"backend": "local", "local": {"diskMb": 48, "maxConcurrentRuns": 2, "memoryMb": 512}})
    env = await asyncio.to_thread(default_environment_factory, settings)
    try:
        code = "import time; time.sleep(0.2); print(open('/proc/self/mountinfo').read())"
        results = await asyncio.gather(*(env.run(code, "python") for _ in range(3)))
    finally:
        await env.aclose()
    assert all(r.exit_code == 0 for r in results), results
    assert sum("waiting for a free slot" in r.output for r in results) == 1
    if os.geteuid() == 0:
        workspace = next(line for line in results[0].output.splitlines() if line.split()[4] == "/workspace")
        assert "size=49152k" in workspace, workspace


def _own_cgroups() -> set[str]:
    """The names of this process's sandbox cgroups, in every hierarchy."""
    found: set[str] = set()
    for hierarchy in cgroup.discover(open("/proc/self/mountinfo").read(), open("/proc/self/cgroup").read()):
        for base in hierarchy.bases.values():
            found |= {p.name for p in base.glob(f"{cgroup.PREFIX}-{os.getpid()}-*")}
    return found


async def test_a_sandbox_whose_directory_cannot_be_made_leaves_no_cgroup_and_starts_once_it_can(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("as root only: a user's server has no writable cgroup here")
    before = _own_cgroups()
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "missing"))  # TMPDIR points nowhere
    async with LocalCodeEnvironment(timeout=60) as env:
        failed = await env.run("print(1)", "python")
        assert failed.exit_code == 125 and "missing" in failed.output, failed.output
        assert _own_cgroups() == before, "the cgroup made meanwhile is removed again"
        with pytest.raises(LocalSandboxError, match="missing"):
            await env.prewarm()
        assert _own_cgroups() == before
        monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
        result = await env.run("print(1)", "python")
        assert (result.exit_code, result.output) == (0, "1\n")


COUNT_FORKS = """
import os, signal, time
children = []
while True:
    try:
        pid = os.fork()
    except BlockingIOError:
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    children.append(pid)
print(1 + len(children))
for pid in children:
    os.kill(pid, signal.SIGKILL)
"""


async def test_a_run_may_have_exactly_max_processes_processes() -> None:
    if os.geteuid() != 0:
        pytest.skip("as root the container's process limit is its pids cgroup")
    async with LocalCodeEnvironment(timeout=60, max_processes=5) as env:
        result = await env.run(COUNT_FORKS, "python")
        assert (result.exit_code, result.output) == (0, "5\n"), "the program and four children, not one less"
