"""A mount namespace of the server's own (as root), so that what it mounts dies with it.

As root the local sandbox mounts each environment's bounded store (a tmpfs). In the host's mount namespace such a
mount outlives a server killed with SIGKILL (and keeps its directory from being removed: EBUSY). In a namespace of
the server's own — mounts of the host propagate into it, none out of it — the kernel drops the mounts with the last
process in it: the server and its containers (``--die-with-parent``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading

log = logging.getLogger(__name__)

_CLONE_NEWNS = 0x00020000
_MS_REC, _MS_SLAVE = 0x4000, 0x80000


def own_mount_namespace() -> bool:
    """Move this process (as root, still single-threaded) into a mount namespace of its own; whether it did.

    Call it first thing: a thread that exists already stays behind in the host's namespace (and so would its mounts).
    """
    if os.geteuid() != 0 or threading.active_count() > 1:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNS) != 0:
        log.info("daytona-lsp: no mount namespace of its own: %s", os.strerror(ctypes.get_errno()))
        return False
    # a copy of a shared mount would still send our mounts to the host: receive only
    if libc.mount(b"none", b"/", None, _MS_REC | _MS_SLAVE, None) != 0:
        log.warning("daytona-lsp: cannot keep mounts from the host: %s", os.strerror(ctypes.get_errno()))
    return True
