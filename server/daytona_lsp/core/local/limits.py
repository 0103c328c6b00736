"""The limits of a local sandbox: each run's resource limits (set by the agent on the run's processes) and the pids
cgroup that bounds a container's processes when the server runs as root.

:func:`confine_container` is the one place a new container is confined before its agent starts (the seam for the
memory + pids cgroup of ``core/cgroup.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_MEMORY_MB = 2048
DEFAULT_MAX_PROCESSES = 256
DEFAULT_MAX_FILE_SIZE_MB = 1024
CGROUP_HEADROOM = 5
"""Processes of a container besides a run's own: bubblewrap, its init, the agent, the run's two set-up processes."""


def limit_values(memory_mb: int, processes: int, file_mb: int, cpu_seconds: int) -> dict[str, int]:
    """The rlimits of one run, by the agent's names (``data``: writable memory, not the address space: V8 reserves
    gigabytes of that for WebAssembly)."""
    return {
        "data": memory_mb * 1024 * 1024,
        "nproc": processes,
        "fsize": file_mb * 1024 * 1024,
        "cpu": max(cpu_seconds, 1),
        "core": 0,
    }


def confine_container(pid: int, cgroup: PidsCgroup | None, *, born_inside: bool) -> str | None:
    """Confine a new container (its pid 1, still blocked by bubblewrap) before anything in it runs; the problem, if any."""
    if cgroup is None or born_inside:
        return None
    try:
        cgroup.procs_file.write_text(str(pid))  # a migration: slow (waits for an RCU grace period)
    except OSError as exc:
        return f"could not put the sandbox into its pids cgroup: {exc}"
    return None


class PidsCgroup:
    """A pids cgroup bounding the processes of one environment's containers.

    Only used when the server runs as root: the kernel exempts root-owned processes from ``RLIMIT_NPROC``, and the
    sandbox's user is mapped to the caller's uid. cgroup v1 (``pids`` hierarchy) or v2 (``pids`` controller enabled);
    when neither is writable, a warning says the process limit is not enforced.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.procs_file = path / "cgroup.procs"
        self._max = -1

    @classmethod
    def create(cls) -> PidsCgroup | None:
        for base in cls._candidates():
            cls._sweep(base)
            path = base / f"daytona-lsp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            try:
                path.mkdir()
            except OSError:
                continue
            if (path / "pids.max").exists():
                return cls(path)
            with contextlib.suppress(OSError):
                path.rmdir()
        log.warning(
            "daytona-lsp: running as root without a writable pids cgroup: the sandbox's process limit "
            "(max_processes) is not enforced; timeouts and memory limits still apply."
        )
        return None

    @staticmethod
    def _sweep(base: Path) -> None:
        """Remove empty cgroups left behind by daytona-lsp processes that no longer exist."""
        with contextlib.suppress(OSError):
            for path in base.glob("daytona-lsp-*"):
                pid = path.name.split("-")[2]
                if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                    with contextlib.suppress(OSError):
                        path.rmdir()

    @staticmethod
    def _candidates() -> list[Path]:
        found: list[Path] = []
        try:
            mounts = Path("/proc/self/mountinfo").read_text().splitlines()
            memberships = Path("/proc/self/cgroup").read_text().splitlines()
        except OSError:
            return found
        v1_path = next((line.split(":", 2)[2] for line in memberships if line.split(":")[1:2] == ["pids"]), None)
        v2_path = next((line.split(":", 2)[2] for line in memberships if line.startswith("0::")), None)
        for line in mounts:
            fields = line.split()
            if " - " not in line:
                continue
            mount_point = fields[4]
            fs_type, _, super_opts = line.split(" - ", 1)[1].split()[:3]
            if fs_type == "cgroup" and "pids" in super_opts.split(",") and v1_path is not None:
                found.append(Path(mount_point + v1_path.rstrip("/")) if v1_path != "/" else Path(mount_point))
            elif fs_type == "cgroup2" and v2_path is not None:
                base = Path(mount_point + v2_path.rstrip("/")) if v2_path != "/" else Path(mount_point)
                with contextlib.suppress(OSError):
                    if "pids" in (base / "cgroup.subtree_control").read_text().split():
                        found.append(base)
        return found

    def enter_thread(self) -> bool:
        """Move the calling thread into the cgroup (cgroup v1 only: v2 needs a threaded cgroup); whether it worked.
        Processes it starts are then born inside."""
        try:
            (self.path / "tasks").write_text(str(threading.get_native_id()))
            return True
        except OSError:
            return False

    def leave_thread(self) -> None:
        """Move the calling thread back to the cgroup it came from (so that this one can be removed)."""
        with contextlib.suppress(OSError):
            (self.path.parent / "tasks").write_text(str(threading.get_native_id()))

    def set_max(self, processes: int) -> bool:
        if processes == self._max:
            return True
        try:
            (self.path / "pids.max").write_text(str(processes))
        except OSError:
            return False
        self._max = processes
        return True

    def remove(self) -> None:
        for _ in range(3):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                with contextlib.suppress(OSError, ValueError):
                    for pid in self.procs_file.read_text().split():
                        if int(pid) != os.getpid():  # never this process (a thread of it may still be inside)
                            with contextlib.suppress(OSError):
                                os.kill(int(pid), signal.SIGKILL)
        log.warning("daytona-lsp: could not remove cgroup %s", self.path)
