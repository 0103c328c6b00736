"""Whether a process waits reading a given pipe: read from ``/proc``, for every language alike.

A thread asleep in a pipe read (``wchan``) whose ``read`` descriptor is that pipe (Python, bash, any blocking reader),
or asleep in ``epoll_wait`` on an epoll set that watches that pipe for input (Node's event loop). Standard library
only and nothing else imported: the Daytona backend runs this file's text inside the sandbox too
(:mod:`daytona_lsp.core.daytona.stdin`).
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import re
import termios
from collections.abc import Iterator

_EPOLL_TARGET = re.compile(r"tfd:\s*\d+\s+events:\s*(?P<events>[0-9a-f]+)\b.*\bino:(?P<ino>[0-9a-f]+)")


def descendants(pid: int) -> Iterator[int]:
    """``pid``'s descendants (not itself), from ``/proc/PID/task/TID/children``."""
    todo = [pid]
    while todo:
        parent = todo.pop()
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{parent}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{parent}/task/{tid}/children") as f:
                    for child in f.read().split():
                        todo.append(int(child))
                        yield int(child)


def _epoll_watches(pid: int, epfd: int, inode: int) -> bool:
    """Whether epoll descriptor ``epfd`` of ``pid`` watches the pipe ``inode`` for input (EPOLLIN)."""
    with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/fdinfo/{epfd}") as f:
        for line in f:
            match = _EPOLL_TARGET.match(line)
            if match and int(match["ino"], 16) == inode and int(match["events"], 16) & 1:
                return True
    return False


def waits_on(pid: int, inode: int) -> bool:
    """Whether a thread of process ``pid`` is asleep reading the pipe ``inode`` (directly or through epoll)."""
    target = f"pipe:[{inode}]"
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                wchan = f.read()
            if "pipe" not in wchan and "epoll" not in wchan:
                continue
            with open(f"/proc/{pid}/task/{tid}/syscall") as f:
                fields = f.read().split()
            fd = int(fields[1], 16)
            if "pipe" in wchan:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return True
            elif _epoll_watches(pid, fd, inode):
                return True
        except (OSError, ValueError, IndexError):
            continue
    return False


def anyone_waits(root_pid: int, inode: int) -> bool:
    """Whether a descendant of ``root_pid`` waits reading the pipe ``inode``."""
    return any(waits_on(pid, inode) for pid in descendants(root_pid))


def unread_bytes(fd: int) -> int:
    """How many bytes sit in the pipe ``fd`` (either end), not yet read (0 when that cannot be told)."""
    count = array.array("i", [0])
    with contextlib.suppress(OSError, ValueError):
        fcntl.ioctl(fd, termios.FIONREAD, count)
    return count[0]
