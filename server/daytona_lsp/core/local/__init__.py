"""The local sandbox: one long-lived bubblewrap container per environment, runs as process trees inside it.

``environment`` (LocalCodeEnvironment: settings, runs), ``sandbox`` (its host directory, cgroup, containers),
``container`` (one container seen from the host), ``run`` (one run: output, timeout, cancellation),
``agent`` (the program inside it; ``agent_syscalls``, its system calls), ``launch`` (bubblewrap, the container's command line, the runs' environment),
``limits`` (rlimits, the pids cgroup), ``runtimes`` (finding python, bash, node, TypeScript runners),
``workspace`` (the workspace folder a run sees: overlay, secrets masked, unsaved documents, changed files).
"""

from __future__ import annotations

from daytona_lsp.core.local.environment import (
    NOT_AVAILABLE_EXIT_CODE,
    SANDBOX_FAILED_EXIT_CODE,
    Isolation,
    LocalCodeEnvironment,
)
from daytona_lsp.core.local.launch import (
    SANDBOX_CODE_DIR,
    SANDBOX_UID,
    SANDBOX_USER,
    SANDBOX_WORK_DIR,
    LocalSandboxError,
    find_bwrap,
)
from daytona_lsp.core.local.limits import DEFAULT_MAX_FILE_SIZE_MB, DEFAULT_MAX_PROCESSES, DEFAULT_MEMORY_MB

__all__ = [
    "DEFAULT_MAX_FILE_SIZE_MB",
    "DEFAULT_MAX_PROCESSES",
    "DEFAULT_MEMORY_MB",
    "NOT_AVAILABLE_EXIT_CODE",
    "SANDBOX_CODE_DIR",
    "SANDBOX_FAILED_EXIT_CODE",
    "SANDBOX_UID",
    "SANDBOX_USER",
    "SANDBOX_WORK_DIR",
    "Isolation",
    "LocalCodeEnvironment",
    "LocalSandboxError",
    "find_bwrap",
]
