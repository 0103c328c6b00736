"""One sandbox's cgroup: a limit on its *total* memory with swap counted, a process limit, OOM detection.

- **cgroup v2** (one unified hierarchy): ``memory.max`` = the limit, ``memory.swap.max`` = 0 (so memory + swap is the
  limit), ``pids.max``; an OOM kill shows as ``oom_kill`` in ``memory.events``; ``cgroup.kill`` kills everything.
  The controllers must be enabled for children of the server's own cgroup (``cgroup.subtree_control``); when they are
  not, enabling them is tried (it works where the server's cgroup is delegated to it and holds no processes).
- **cgroup v1** (one hierarchy per controller): a group in the ``memory`` hierarchy with ``memory.limit_in_bytes`` and
  ``memory.memsw.limit_in_bytes`` (memory + swap) both the limit (memsw only where swap accounting is on), and one in
  the ``pids`` hierarchy with ``pids.max``; an OOM kill shows as ``oom_kill`` in ``memory.oom_control`` (older
  kernels: ``memory.failcnt`` / ``memory.memsw.failcnt``).

Memory charged to the group includes the shared memory and tmpfs pages its processes touch (``MAP_SHARED``,
``/dev/shm``, a tmpfs ``/tmp``), so "total" really is total. Groups are named ``daytona-lsp-<server pid>-<random>``
under the server's own cgroup; :func:`create` first removes the groups of servers that no longer exist (killing what
is left in them).

Where no cgroup is writable (not root, no delegation), :func:`create` returns ``None`` and :func:`fallback_reason`
says what then bounds memory: the per-process ``RLIMIT_DATA`` (which shared mappings escape) and the ``size=`` of the
sandbox's tmpfs mounts, which do not bound the total over many processes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

PREFIX = "daytona-lsp"
MiB = 1024 * 1024
Version = Literal[1, 2]
CONTROLLERS = ("memory", "pids")


class CgroupError(OSError):
    """A cgroup operation failed (its message names the file)."""


@dataclass(frozen=True)
class Hierarchy:
    """Where this process's sandboxes' cgroups go: v2 ``{"unified": dir}``, v1 ``{"memory": dir, "pids": dir}``."""

    version: Version
    bases: dict[str, Path]


def discover(mountinfo: str, membership: str) -> list[Hierarchy]:
    """The hierarchies a process with this ``/proc/self/mountinfo`` and ``/proc/self/cgroup`` could use, best first
    (v2 when it is the mounted one with the controllers, then v1 with both controllers). Pure: reads no files."""
    v1_paths: dict[str, str] = {}
    v2_path = None
    for line in membership.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2_path = parts[2]
        for controller in parts[1].split(","):
            v1_paths[controller] = parts[2]
    v1: dict[str, Path] = {}
    v2: Path | None = None
    for line in mountinfo.splitlines():
        if " - " not in line:
            continue
        fields = line.split(" - ", 1)[0].split()
        fs_type, _source, super_opts = (line.split(" - ", 1)[1].split() + ["", ""])[:3]
        mount_point, root = fields[4], fields[3]
        if fs_type == "cgroup2" and v2_path is not None:
            v2 = _join(mount_point, root, v2_path)
        elif fs_type == "cgroup":
            for controller in CONTROLLERS:
                if controller in super_opts.split(",") and controller in v1_paths:
                    v1[controller] = _join(mount_point, root, v1_paths[controller])
    found = []
    if v2 is not None:
        found.append(Hierarchy(2, {"unified": v2}))
    if set(v1) == set(CONTROLLERS):
        found.append(Hierarchy(1, v1))
    return found


def _join(mount_point: str, mount_root: str, path: str) -> Path:
    """The directory of cgroup ``path`` where the hierarchy's ``mount_root`` is mounted at ``mount_point``."""
    relative = path
    if mount_root != "/" and (path == mount_root or path.startswith(mount_root.rstrip("/") + "/")):
        relative = path[len(mount_root) :]
    return Path(mount_point) / relative.lstrip("/")


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise CgroupError(exc.errno, f"cannot write {value!r} to {path}: {exc.strerror}") from None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _keyed(text: str) -> dict[str, int]:
    """``memory.events`` / ``memory.oom_control`` style ``key value`` lines."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = int(value)
    return out


class SandboxCgroup:
    """The cgroup(s) of one sandbox. Create with :func:`create` (or :meth:`create_in` for a given hierarchy)."""

    def __init__(self, hierarchy: Hierarchy, dirs: dict[str, Path], memory_bytes: int | None) -> None:
        self.hierarchy = hierarchy
        self.dirs = dirs
        """controller → its directory (v2: ``unified``)."""
        self.memory_bytes = memory_bytes

    @property
    def version(self) -> Version:
        return self.hierarchy.version

    def _dir(self, controller: str) -> Path:
        return self.dirs["unified"] if self.version == 2 else self.dirs[controller]

    # ---- creation -----------------------------------------------------------------------------------------------
    @classmethod
    def create_in(cls, hierarchy: Hierarchy, *, memory_bytes: int | None, max_pids: int | None) -> SandboxCgroup:
        """A new group in ``hierarchy`` with these limits. Raises :class:`CgroupError` (nothing left behind)."""
        name = f"{PREFIX}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        made: dict[str, Path] = {}
        try:
            if hierarchy.version == 2:
                base = hierarchy.bases["unified"]
                _enable_controllers(base)
                made["unified"] = base / name
                made["unified"].mkdir()
            else:
                for controller in CONTROLLERS:
                    made[controller] = hierarchy.bases[controller] / name
                    made[controller].mkdir()
        except OSError as exc:
            for path in made.values():
                with contextlib.suppress(OSError):
                    path.rmdir()
            raise CgroupError(exc.errno, f"cannot create a cgroup: {exc}") from None
        group = cls(hierarchy, made, None)
        try:
            group._set_limits(memory_bytes, max_pids)
        except CgroupError:
            group.remove()
            raise
        return group

    def _set_limits(self, memory_bytes: int | None, max_pids: int | None) -> None:
        if max_pids is not None:
            self.set_max_pids(max_pids)
        if memory_bytes is not None:
            self._write_memory(memory_bytes)

    def set_memory_bytes(self, memory_bytes: int) -> None:
        """Change the limit on memory + swap (raises :class:`CgroupError`, e.g. below what the group uses)."""
        if memory_bytes != self.memory_bytes:
            self._write_memory(memory_bytes)

    def _write_memory(self, memory_bytes: int) -> None:
        mem = self._dir("memory")
        if self.version == 2:
            _write(mem / "memory.max", str(memory_bytes))
            if (mem / "memory.swap.max").exists():  # absent without swap accounting: no swap to count then
                _write(mem / "memory.swap.max", "0")
        else:
            files = ["memory.limit_in_bytes"]
            if (mem / "memory.memsw.limit_in_bytes").exists():  # swap accounting on: bound memory + swap together
                files.append("memory.memsw.limit_in_bytes")
            raising = self.memory_bytes is not None and memory_bytes > self.memory_bytes
            for name in reversed(files) if raising else files:  # memsw may never be below the memory limit
                _write(mem / name, str(memory_bytes))
            with contextlib.suppress(CgroupError):
                _write(mem / "memory.swappiness", "0")
        self.memory_bytes = memory_bytes

    # ---- membership ---------------------------------------------------------------------------------------------
    def add_pid(self, pid: int) -> None:
        """Move process ``pid`` (and, from then on, its children) into the group."""
        for path in self.dirs.values():
            _write(path / "cgroup.procs", str(pid))

    def count_process(self, pid: int) -> None:
        """cgroup v1: count process ``pid`` (not its children started before) against the process limit only, never
        the memory limit (the OOM killer would then count it among the group's processes). v2 has one group for
        both: nothing. Raises :class:`CgroupError`."""
        if self.version == 1:
            _write(self.dirs["pids"] / "cgroup.procs", str(pid))

    def pass_through(self) -> None:
        """cgroup v1: move the calling thread into the pids group and out again, ahead of a container's confinement.
        Migrations take a global lock whose first taking after a pause waits for an RCU grace period (5-15 ms on a
        busy machine), every later one within a grace period of the last is quick (0.05 ms): started before the
        container is, this one waits for that grace period instead of the container's confinement. Blocking: call it
        from a thread of its own. v2: nothing."""
        if self.version == 1 and self.enter_thread():
            self.leave_thread()

    def enter_thread(self) -> bool:
        """cgroup v1: move the calling thread into the *pids* group, so the processes it starts are born inside it
        (bounded from their first fork); whether it worked. Never the memory group: the OOM killer would then count
        the server among the group's processes. Processes it starts still need :meth:`add_pid` for the memory limit
        (start them blocked, e.g. bubblewrap's ``--block-fd``). v2 cannot do this (it needs a threaded cgroup)."""
        if self.version == 2:
            return False
        try:
            _write(self.dirs["pids"] / "tasks", str(threading.get_native_id()))
            return True
        except CgroupError:
            return False

    def leave_thread(self) -> None:
        """Move the calling thread back to the pids hierarchy's base group."""
        if self.version == 1:
            with contextlib.suppress(CgroupError, KeyError):
                _write(self.dirs["pids"].parent / "tasks", str(threading.get_native_id()))

    def pids(self) -> list[int]:
        """The processes in the group — never this one (a thread of it may be in the pids group)."""
        seen: dict[int, None] = {}
        for path in self.dirs.values():
            for line in _read(path / "cgroup.procs").split():
                if line.isdigit() and int(line) != os.getpid():
                    seen[int(line)] = None
        return list(seen)

    def set_max_pids(self, processes: int) -> None:
        """Change the process limit (raises :class:`CgroupError`)."""
        _write(self._dir("pids") / "pids.max", str(processes))

    # ---- memory -------------------------------------------------------------------------------------------------
    def oom_kills(self) -> int:
        """How many processes of the group the kernel killed for exceeding its memory limit."""
        mem = self._dir("memory")
        if self.version == 2:
            return _keyed(_read(mem / "memory.events")).get("oom_kill", 0)
        control = _keyed(_read(mem / "memory.oom_control"))
        if "oom_kill" in control:
            return control["oom_kill"]
        # kernels before 4.13: a failed charge at the limit is the best sign there is
        failed = [_read(mem / name).strip() for name in ("memory.failcnt", "memory.memsw.failcnt")]
        return 1 if any(f.isdigit() and int(f) > 0 for f in failed) else 0

    def memory_peak(self) -> int | None:
        """The most memory the group has used (bytes), where the kernel says."""
        mem = self._dir("memory")
        names = (
            ("memory.peak",) if self.version == 2 else ("memory.memsw.max_usage_in_bytes", "memory.max_usage_in_bytes")
        )
        for name in names:
            text = _read(mem / name).strip()
            if text.isdigit():
                return int(text)
        return None

    def limit_message(self) -> str:
        """The line a run prints when :meth:`oom_kills` went up during it."""
        size = f"{self.memory_bytes // MiB} MiB" if self.memory_bytes else "the sandbox's"
        return f"memory limit of {size} reached: the sandbox's process was killed (memory + swap of all its processes)"

    # ---- teardown -----------------------------------------------------------------------------------------------
    def kill_all(self) -> None:
        """SIGKILL every process in the group (v2: ``cgroup.kill`` where the kernel has it)."""
        if self.version == 2 and (self.dirs["unified"] / "cgroup.kill").exists():  # v2: the server is never inside
            with contextlib.suppress(CgroupError):
                _write(self.dirs["unified"] / "cgroup.kill", "1")
                return
        for _ in range(10):  # processes may fork while being killed: repeat until none is left
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)

    def remove(self, timeout: float = 5.0) -> bool:
        """Kill what is left and remove the group; whether it is gone (a group is removable once its processes
        have exited, which takes a moment after SIGKILL). Blocking: call it from a worker thread."""
        self.kill_all()
        deadline = time.monotonic() + timeout
        remaining = dict(self.dirs)
        while remaining:
            for key, path in list(remaining.items()):
                try:
                    path.rmdir()
                    del remaining[key]
                except FileNotFoundError:
                    del remaining[key]
                except OSError:
                    pass
            if not remaining or time.monotonic() > deadline:
                break
            self.kill_all()
            time.sleep(0.01)  # the kernel reaps the killed processes asynchronously: poll the removal briefly
        return not remaining


def _enable_controllers(base: Path) -> None:
    """cgroup v2: make sure ``memory`` and ``pids`` are available to children of ``base``."""
    enabled = _read(base / "cgroup.subtree_control").split()
    missing = [c for c in CONTROLLERS if c not in enabled]
    if missing:
        _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))


def sweep(hierarchy: Hierarchy) -> int:
    """Remove the groups of daytona-lsp processes that no longer exist (killing what is left in them); how many."""
    removed = 0
    by_name: dict[str, dict[str, Path]] = {}
    for key, base in hierarchy.bases.items():
        with contextlib.suppress(OSError):
            for path in base.glob(f"{PREFIX}-*"):
                owner = path.name.split("-")[2] if path.name.count("-") >= 3 else ""
                if owner.isdigit() and not Path(f"/proc/{owner}").exists() and path.is_dir():
                    by_name.setdefault(path.name, {})[key] = path
    for dirs in by_name.values():
        if SandboxCgroup(hierarchy, dirs, None).remove(timeout=1.0):
            removed += 1
    return removed


_fallback: str | None = None


def create(*, memory_bytes: int | None, max_pids: int | None) -> SandboxCgroup | None:
    """A cgroup for one sandbox in the first usable hierarchy of this process (stale groups swept first), or
    ``None`` (then :func:`fallback_reason` says why and what bounds memory instead; it is logged once)."""
    global _fallback
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
        membership = Path("/proc/self/cgroup").read_text()
    except OSError as exc:
        hierarchies, errors = [], [f"/proc is unreadable ({exc})"]
    else:
        hierarchies, errors = discover(mountinfo, membership), []
    for hierarchy in hierarchies:
        sweep(hierarchy)
        try:
            return SandboxCgroup.create_in(hierarchy, memory_bytes=memory_bytes, max_pids=max_pids)
        except CgroupError as exc:
            errors.append(f"cgroup v{hierarchy.version}: {exc}")
    reason = "; ".join(errors) or "no cgroup hierarchy with the memory and pids controllers is mounted"
    if _fallback != reason:
        _fallback = reason
        log.warning("daytona-lsp: no writable cgroup for the sandbox (%s). %s", reason, FALLBACK)
    return None


FALLBACK = (
    "Without one, memory is bounded per process only (RLIMIT_DATA, which MAP_SHARED mappings escape) and by the size= "
    "of the sandbox's tmpfs mounts, not in total; the process count by RLIMIT_NPROC (which root is exempt from)."
)


def fallback_reason() -> str | None:
    """Why the last :func:`create` returned ``None`` (``None`` if it never did)."""
    return _fallback
