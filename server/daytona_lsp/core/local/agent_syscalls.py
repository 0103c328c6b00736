"""The system-call layer of the sandbox's agent (``agent.py``): C functions through ``_ctypes``, the mounts, the
capabilities, seccomp, clone(2), the rlimits, and a run's view of the workspace. Standard library only, as the agent;
shipped beside it as bytecode (``/agent/agent_syscalls.pyc``, see ``launch.agent_bytecode``) and imported from there."""

import _ctypes  # not the ctypes package: its imports cost more than the rest of the agent's (see _Libc)
import errno
import os
import resource
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
RUN_NAMESPACES = CLONE_NEWPID | CLONE_NEWNS
"""A run's own namespaces (its pid 1 is B: see ``agent.py``)."""
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 16384, 1 << 18
MS_BIND = 4096
PR_SET_PDEATHSIG, PR_SET_SECCOMP, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 22, 24, 38, 47
SECCOMP_MODE_FILTER = 2
SIGCHLD = 17
SYS_CLONE = {"x86_64": 56, "aarch64": 220, "riscv64": 220}.get(os.uname().machine)
"""clone(2)'s number where its arguments are (flags, stack, …); elsewhere a run's namespaces come from ``unshare``."""
PR_CAP_AMBIENT_CLEAR_ALL = 4
LIMITS = {
    "data": resource.RLIMIT_DATA,
    "nproc": resource.RLIMIT_NPROC,
    "fsize": resource.RLIMIT_FSIZE,
    "cpu": resource.RLIMIT_CPU,
    "core": resource.RLIMIT_CORE,
}


class _Int(_ctypes._SimpleCData):
    _type_ = "i"


class _Long(_ctypes._SimpleCData):
    _type_ = "l"


class _Char(_ctypes._SimpleCData):
    _type_ = "c"


class _Function(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = _Int


class _Libc:
    """The C library's functions (int result, errno kept), as ``ctypes.CDLL(None, use_errno=True)`` gives them, on
    ``_ctypes`` alone: importing the ``ctypes`` package (struct, its endian and type tables) took about 2.5 ms of
    every container's start. Arguments: ints (C ``int``), ``bytes`` (a pointer to their data), ``None`` (NULL)."""

    _handle = _ctypes.dlopen(None, os.RTLD_LOCAL)  # type: ignore[arg-type]  # None: the program itself

    def __getattr__(self, name: str) -> _Function:
        function = _Function((name, self))  # type: ignore[arg-type]  # any object with a _handle
        setattr(self, name, function)
        return function


libc = _Libc()


def check(result: int, what: str) -> None:
    if result != 0:
        err = _ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str, target: str, fstype: str, flags: int, data: str = "") -> None:
    check(
        libc.mount(os.fsencode(source), os.fsencode(target), fstype.encode(), flags, data.encode() or None),
        f"mount {target}",
    )


def empty_bounding_set() -> None:
    """Every capability out of the bounding set: done once by the agent (which never execs), inherited by every run."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "drop capability bounding set")


def drop_capabilities() -> None:
    """Every capability gone (effective, permitted, inheritable, ambient; the bounding set is already empty);
    no_new_privs kept."""
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (0x20080522).to_bytes(4, sys.byteorder) + bytes(4)  # _LINUX_CAPABILITY_VERSION_3, this thread
    check(libc.capset(header, bytes(24)), "capset")  # 2 x (effective, permitted, inheritable): all empty


def load_seccomp(program: bytes) -> None:
    """Install a seccomp BPF program (``struct sock_filter[]``) on this process and its future children."""
    buffer = (_Char * len(program)).from_buffer_copy(program)
    pointer = _ctypes.sizeof(_Long)  # struct sock_fprog: unsigned short len, (padding), struct sock_filter *filter
    fprog = (len(program) // 8).to_bytes(2, sys.byteorder) + bytes(pointer - 2)
    fprog += _ctypes.addressof(buffer).to_bytes(pointer, sys.byteorder)
    check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, fprog, 0, 0), "seccomp")


NO_PROCESS_LEFT = "no process left in the sandbox (its process limit is reached)"


def fork() -> int:
    """``os.fork``; at the sandbox's process limit an error that says so."""
    try:
        return os.fork()
    except BlockingIOError as exc:
        raise OSError(exc.errno, NO_PROCESS_LEFT) from None


def clone(flags: int) -> int:
    """A fork into new namespaces (``flags``): clone(2) without a stack of its own, so the child goes on from here as
    after ``os.fork``, but without the interpreter's after-fork hooks. Only for a child that runs the agent's own code
    and ends with ``os._exit`` (the agent has no threads and no fork handlers)."""
    assert SYS_CLONE is not None
    arg = _Long
    pid = libc.syscall(arg(SYS_CLONE), arg(flags | SIGCHLD), arg(0), arg(0), arg(0), arg(0))
    if pid == -1:
        err = _ctypes.get_errno()
        raise OSError(err, NO_PROCESS_LEFT if err == errno.EAGAIN else f"clone: {os.strerror(err)}")
    return pid


def set_limits(limits: dict[str, int]) -> None:
    for name, value in limits.items():
        which = LIMITS[name]
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))


def mount_workspace(ws: dict, code_dir: str) -> list[str]:
    """In B, before it drops its capabilities (see ``core/local/workspace.py``): a fresh overlay of the workspace
    at its real path, the staging directories hidden, the secrets masked, the bound files over their paths.
    Returns the notes for the run's output (what it sees less than asked)."""
    notes = []
    root, view = ws["root"], ws["view"]
    work = f"{view}/layer/{ws['work']}"
    os.mkdir(work, 0o700)
    options = f"lowerdir={view}/lower,upperdir={view}/layer/upper,workdir={work},userxattr"
    try:
        mount("overlay", root, "overlay", MS_NOSUID | MS_NODEV, options)
    except OSError as exc:  # no overlayfs in user namespaces here (Linux < 5.11): the folder read-only
        mount(f"{view}/lower", root, "", MS_BIND | MS_REC)
        mount("none", root, "", MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        notes.append(f"the workspace is read-only in this sandbox (no writable overlay here: {reason})")
    mount("tmpfs", view, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=0755")
    empty = os.path.join(code_dir, ws["empty"])
    for path in ws["masks"]:  # a mount that fails fails the run rather than show a secret
        try:
            mode = os.lstat(path).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue  # deleted (on the host, or by an earlier run in the layer)
        if (mode & 0o170000) == 0o040000:
            mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=0755")
        elif (mode & 0o170000) != 0o120000:  # a link an earlier run made leads to what it made
            bind_ro(empty, path)
    for name, target in ws["binds"]:
        try:
            if not os.path.lexists(target):  # a new, unsaved file: a placeholder in the layer to mount on
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o644))
            bind_ro(os.path.join(code_dir, name), target)
        except OSError as exc:
            if name == ws["own"]:
                raise
            notes.append(f"the unsaved text of {target} is not shown to the run: {exc.strerror}")
    return notes


def unshare(flags: int) -> None:
    check(libc.unshare(flags), "unshare")


def set_death_signal(signum: int) -> None:
    """``signum`` to this process when its parent dies."""
    libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)


def mount_private_proc() -> None:
    """A ``/proc`` of this process's pid namespace, in a mount namespace whose mounts no longer propagate."""
    mount("none", "/", "", MS_REC | MS_PRIVATE)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def mount_tmpfs(path: str, size: int) -> None:
    mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=0755")


def remount_read_only(path: str) -> None:
    mount("tmpfs", path, "", MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def bind_ro(source: str, target: str) -> None:
    mount(source, target, "", MS_BIND)
    mount("none", target, "", MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def forbid_user_namespaces() -> None:
    """No process of the container may create a user namespace (what bubblewrap's ``--disable-userns`` does; that
    option nests the sandbox in a second user namespace, and a run could then not mount its own ``/proc``). The
    agent's own ``/proc/sys`` is read-only: it writes the limit through a fresh ``/proc`` in a mount namespace of its
    own, which runs inherit (each then mounts its own ``/proc`` again)."""
    unshare(CLONE_NEWNS)
    mount_private_proc()
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0")
