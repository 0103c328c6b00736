"""The limits of a local sandbox: each run's resource limits (set by the agent on the run's processes) and the
cgroup (``core/cgroup.py``) that bounds a container's total memory + swap and its processes.

:func:`confine_container` is the one place a new container is confined before its agent starts.
"""

from __future__ import annotations

from typing import Any

from daytona_lsp.core.cgroup import MiB, SandboxCgroup
from daytona_lsp.core.environment import Variable

DEFAULT_MEMORY_MB = 2048
"""The container's total memory + swap where a memory cgroup is writable (and every process's RLIMIT_DATA)."""
DEFAULT_MAX_PROCESSES = 256
DEFAULT_MAX_FILE_SIZE_MB = 1024
DEFAULT_DISK_MB = 1024
"""Everything a sandbox can write, together (as root: a tmpfs, so it also counts in the memory total)."""
DEFAULT_MAX_CONCURRENT_RUNS = 16
CONTAINER_PROCESSES = 3
"""Processes of a container besides its runs': bubblewrap, its init, the agent."""
RUN_SETUP_PROCESSES = 1
"""A run's own processes besides its program's: B in ``agent.py``, which sets it up (where the agent cannot clone B
straight into the run's namespaces, A comes on top and counts in the program's share)."""


def check_timeout(timeout: Any) -> None:
    """``ValueError`` unless ``timeout`` is a positive number of seconds (or a ``Variable``, resolved per run)."""
    if isinstance(timeout, Variable):
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")


def check_positive(name: str, value: Any) -> None:
    """``ValueError`` unless the limit ``name`` is a positive integer (or a ``Variable``, resolved per run)."""
    if isinstance(value, Variable):
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


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


def confine_container(pid: int, parent: int, group: SandboxCgroup | None) -> str | None:
    """Confine a new container (its pid 1, still blocked by bubblewrap, and ``parent``, bubblewrap's own process)
    before anything in it runs: into the sandbox's memory and pids cgroup (a migration, can be slow: call it from a
    worker thread); the problem, if any."""
    if group is None:
        return None
    try:
        group.add_pid(pid)
        group.count_process(parent)  # one of CONTAINER_PROCESSES
    except OSError as exc:
        return f"could not put the sandbox into its cgroup: {exc}"
    return None


def set_cgroup_limits(group: SandboxCgroup, memory_mb: int, processes: int, runs: int) -> None:
    """The container's total memory (+ swap) and its process count: the programs of its ``runs`` (those going now)
    share ``processes``, each run's set-up processes come on top, so a run's set-up never finds the limit reached by
    the others (raises ``OSError``)."""
    group.set_memory_bytes(memory_mb * MiB)
    group.set_max_pids(processes + CONTAINER_PROCESSES + RUN_SETUP_PROCESSES * runs)
