"""core/cgroup.py: one limit on a sandbox's total memory (swap counted) and its processes.

On this machine (as root, where a memory cgroup is writable) a process that maps three times the limit with
``MAP_SHARED`` is killed, the OOM kill is detected and the host is unharmed. The file operations of the cgroup version
this machine does not have are tested on a temporary directory laid out like that version's cgroupfs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from daytona_lsp.core import cgroup
from daytona_lsp.core.cgroup import Hierarchy, MiB, SandboxCgroup

LIMIT = 64 * MiB
MAP_SHARED_3X = f"""
import mmap, sys
sys.stdin.read(1)
m = mmap.mmap(-1, {3 * LIMIT}, flags=mmap.MAP_SHARED)
for i in range(0, {3 * LIMIT}, 4096):
    m[i] = 1
print("survived")
"""
FORKS = """
import os, sys
sys.stdin.read(1)
children, refused = [], 0
for _ in range(40):
    try:
        pid = os.fork()
    except BlockingIOError:
        refused += 1
        continue
    if pid == 0:
        import time; time.sleep(5); os._exit(0)
    children.append(pid)
print(len(children), refused)
"""

V1_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
"""
V1_CGROUP = "9:name=systemd:/\n8:pids:/user.slice\n4:memory:/process_api/abc\n0::/\n"
V2_MOUNTINFO = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
V2_CGROUP = "0::/user.slice/user-1000.slice/session-2.scope\n"


def _live() -> SandboxCgroup:
    group = cgroup.create(memory_bytes=LIMIT, max_pids=16)
    if group is None:
        pytest.skip(f"no writable cgroup here: {cgroup.fallback_reason()}")
    return group


def _start_inside(group: SandboxCgroup, code: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    group.add_pid(child.pid)
    return child


def test_a_process_mapping_three_times_the_limit_is_killed_and_the_oom_is_detected() -> None:
    group = _live()
    try:
        assert group.oom_kills() == 0
        child = _start_inside(group, MAP_SHARED_3X)
        assert group.pids() == [child.pid]
        out, _ = child.communicate("go", timeout=120)
        assert child.returncode == -9 and "survived" not in out
        assert group.oom_kills() >= 1
        assert group.limit_message().startswith("memory limit of 64 MiB reached")
        peak = group.memory_peak()
        assert peak is not None and peak <= LIMIT  # the host never gave the group more than the limit
    finally:
        assert group.remove()
    assert not any(path.exists() for path in group.dirs.values())


def test_the_process_limit_refuses_forks_beyond_it() -> None:
    group = _live()
    try:
        child = _start_inside(group, FORKS)
        out, err = child.communicate("go", timeout=120)
        made, refused = map(int, out.split())
        assert made < 16 and refused > 0, (out, err)
    finally:
        assert group.remove()  # also kills the sleeping children


def test_a_thread_in_the_group_starts_processes_inside_and_killing_them_spares_the_server() -> None:
    group = _live()
    if group.version != 1:
        pytest.skip("threads enter a cgroup only on v1")
    try:
        assert group.enter_thread()
        try:
            child = subprocess.Popen(["sleep", "60"])  # born inside the pids group
            group.add_pid(child.pid)  # and moved into the memory group
            assert group.pids() == [child.pid]  # this process (its thread is inside too) is never listed...
            group.kill_all()  # ...nor killed
        finally:
            group.leave_thread()
        assert child.wait(timeout=30) == -9
    finally:
        assert group.remove()


def test_a_pass_through_leaves_the_thread_where_it_was_and_the_group_as_empty_and_removable() -> None:
    group = _live()
    try:
        own = f"/proc/self/task/{threading.get_native_id()}/cgroup"
        before = Path(own).read_text()
        group.pass_through()  # (v2: nothing)
        assert Path(own).read_text() == before
        members = group.dirs["pids"] / "tasks" if group.version == 1 else group.dirs["unified"] / "cgroup.procs"
        assert members.read_text() == ""
    finally:
        assert group.remove()


def test_groups_of_servers_that_no_longer_exist_are_swept() -> None:
    probe = subprocess.Popen(["true"])
    probe.wait()  # a pid that no longer exists: the "server" that left the stale groups
    group = _live()
    try:
        stale = [base / f"{cgroup.PREFIX}-{probe.pid}-deadbeef" for base in group.hierarchy.bases.values()]
        for path in stale:
            path.mkdir()
        assert cgroup.sweep(group.hierarchy) >= 1
        assert not any(path.exists() for path in stale)
        assert all(path.exists() for path in group.dirs.values())  # a live server's group is left alone
    finally:
        group.remove()


# ---- discovery and the file operations of both versions (temporary directories) ---------------------------------


def test_discover_finds_v1_memory_and_pids_under_the_processes_own_groups() -> None:
    (found,) = cgroup.discover(V1_MOUNTINFO, V1_CGROUP)
    assert found.version == 1
    assert found.bases == {
        "memory": Path("/sys/fs/cgroup/memory/process_api/abc"),
        "pids": Path("/sys/fs/cgroup/pids/user.slice"),
    }


def test_discover_finds_the_v2_group_and_prefers_it() -> None:
    (found,) = cgroup.discover(V2_MOUNTINFO, V2_CGROUP)
    assert found == Hierarchy(2, {"unified": Path("/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope")})
    both = cgroup.discover(V1_MOUNTINFO + V2_MOUNTINFO.replace("/sys/fs/cgroup ", "/sys/fs/cgroup/unified "), V1_CGROUP)
    assert [h.version for h in both] == [2, 1]
    assert cgroup.discover("", "") == []


def test_v2_file_operations(tmp_path: Path) -> None:
    base = tmp_path / "v2"
    base.mkdir()
    (base / "cgroup.subtree_control").write_text("cpu\n")
    group = SandboxCgroup.create_in(Hierarchy(2, {"unified": base}), memory_bytes=LIMIT, max_pids=32)
    (d,) = group.dirs.values()
    assert d.parent == base and d.name.startswith(f"{cgroup.PREFIX}-{os.getpid()}-")
    assert (base / "cgroup.subtree_control").read_text() == "+memory +pids"  # enabled for children
    assert (d / "memory.max").read_text() == str(LIMIT) and (d / "pids.max").read_text() == "32"
    (d / "memory.swap.max").write_text("max")
    group._set_limits(LIMIT, None)
    assert (d / "memory.swap.max").read_text() == "0"  # memory + swap together is the limit
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 2\n")
    assert group.oom_kills() == 2
    (d / "memory.peak").write_text(f"{LIMIT}\n")
    assert group.memory_peak() == LIMIT
    group.add_pid(4242)
    assert (d / "cgroup.procs").read_text() == "4242"
    assert not group.enter_thread()  # v2 needs a threaded cgroup for that
    (d / "cgroup.kill").write_text("")
    group.kill_all()
    assert (d / "cgroup.kill").read_text() == "1"


def test_v1_file_operations(tmp_path: Path) -> None:
    bases = {c: tmp_path / c for c in cgroup.CONTROLLERS}
    for path in bases.values():
        path.mkdir()
    group = SandboxCgroup.create_in(Hierarchy(1, bases), memory_bytes=LIMIT, max_pids=8)
    mem, pids = group.dirs["memory"], group.dirs["pids"]
    assert mem.parent == bases["memory"] and pids.parent == bases["pids"] and mem.name == pids.name
    assert (mem / "memory.limit_in_bytes").read_text() == str(LIMIT)
    assert not (mem / "memory.memsw.limit_in_bytes").exists()  # no swap accounting: nothing to write
    (mem / "memory.memsw.limit_in_bytes").write_text("9223372036854771712")
    group._set_limits(LIMIT, 8)
    assert (mem / "memory.memsw.limit_in_bytes").read_text() == str(LIMIT)  # memory + swap
    assert (pids / "pids.max").read_text() == "8"
    (mem / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    assert group.oom_kills() == 3
    (mem / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\n")  # kernels before 4.13
    (mem / "memory.failcnt").write_text("0\n")
    (mem / "memory.memsw.failcnt").write_text("5\n")
    assert group.oom_kills() == 1
    group.add_pid(777)
    assert (mem / "cgroup.procs").read_text() == "777" and (pids / "cgroup.procs").read_text() == "777"
    assert group.pids() == [777]
    assert group.enter_thread()
    assert (pids / "tasks").read_text() == str(threading.get_native_id())
    assert not (mem / "tasks").exists()  # never the memory group: the OOM killer would count the server in it
    group.set_max_pids(99)
    assert (pids / "pids.max").read_text() == "99"


def test_a_failed_limit_leaves_no_group_behind(tmp_path: Path) -> None:
    bases = {c: tmp_path / c for c in cgroup.CONTROLLERS}
    bases["memory"].mkdir()  # the pids hierarchy is missing
    with pytest.raises(cgroup.CgroupError):
        SandboxCgroup.create_in(Hierarchy(1, bases), memory_bytes=LIMIT, max_pids=8)
    assert list(bases["memory"].iterdir()) == []
