"""Looking at host processes from a test: which run, and waiting (on pidfds, never polling) until some are gone."""

from __future__ import annotations

import os
import select


def processes_with(marker: str) -> list[int]:
    """Host pids (not this process) whose command line contains ``marker`` (zombies have none)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def wait_gone(pids: list[int], timeout: float = 15) -> list[int]:
    """Wait until every one of ``pids`` has exited; the ones still there after ``timeout`` seconds."""
    fds = {}
    for pid in pids:
        try:
            fds[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            continue
    try:
        pending = dict(fds)
        while pending:
            ready, _, _ = select.select(list(pending), [], [], timeout)
            if not ready:
                break
            for fd in ready:
                pending.pop(fd)
        return sorted(pending.values())
    finally:
        for fd in fds:
            os.close(fd)
