"""The agent inside a local sandbox container. Standard library only; run as ``python agent.pyc FD [--plain]`` (its
bytecode: ``launch.agent_bytecode``) in an empty environment (so that a Python run forked from it starts as
``python FILE`` would: site-packages included).

It speaks to the host over the SOCK_SEQPACKET socket ``FD``: one message per packet (host → agent: ``marshal``,
agent → host: JSON), file descriptors passed with the message (SCM_RIGHTS). Its imports are few and quick (they are
part of every container start). Host → agent: ``{"op": "run", "id", "argv", "env", "cwd", "file", "limits"}`` with
fds ``[output, code, stdin?]`` (and ``"seccomp"``: the run's BPF program; ``"code_dir"``, ``"parts"``: the files
the code descriptor holds one after the other; ``"workspace"``: the run's view of the workspace folder); ``{"op": "kill", "id"}``. Agent → host: ``{"ready": pid}`` once, then per run
``{"id", "exit"}`` or ``{"id", "error"}``.

A run (isolated): the agent clones B straight into new pid and mount namespaces (``clone(CLONE_NEWPID |
CLONE_NEWNS)``: B is the pid 1 of the run's own pid namespace). B mounts a fresh ``/proc`` (only the run's processes)
and a read-only tmpfs at the code file's directory holding the code, drops every capability (the bounding set is
empty since the agent's start; ambient too), keeps ``no_new_privs``, loads the run's seccomp filter (stacked on the
container's: no mounts, no namespaces), sets the run's limits, then forks C, which execs the program. When C exits,
B exits with its status and the kernel kills whatever else is left in the namespace (daemons, double forks,
``setsid``); B's exit is reported only once the namespace is empty, so "B exited" means "nothing of the run is left".
Killing B kills it all. (Where clone(2)'s number is not known here, the agent forks A, which ``unshare``s and forks
B; B dies with A: ``PR_SET_PDEATHSIG``.) Python code for the agent's own interpreter runs in C without an exec
(``"inline"``: no interpreter start-up). ``--plain`` (``isolation="none"``): no namespaces; the agent forks A, A
forks B, and C runs in a process group of its own, killed whole at the end.

A session worker (``"protocol": true``) is a run like any other (same namespaces, limits, seccomp, no capabilities)
that lives on: its two protocol pipes come last among the fds and become the program's fds 3 and 4 (``core/sessions``).
``{"op": "signal", "id", "sig"}`` interrupts it: the agent signals the run's first process (B, or A, which passes it
to B), and B (the run's pid 1) every process of the run (plain: the program's process group), as Ctrl-C reaches a
terminal's foreground job.
"""

from __future__ import annotations

import _ctypes  # not the ctypes package: its imports cost more than the rest of the agent's (see _Libc)
import _signal as signal  # not the signal module: it imports enum, slow (part of every container start)
import _socket
import atexit
import builtins
import errno
import fcntl
import gc
import io
import marshal
import os
import resource
import select
import sys

_BASE_PATH = list(sys.path[1:])
"""The interpreter's own ``sys.path`` (site-packages included), without the agent's directory."""

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 16384, 1 << 18
MS_BIND = 4096
PR_SET_PDEATHSIG, PR_SET_SECCOMP, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 22, 24, 38, 47
SECCOMP_MODE_FILTER = 2
SIGCHLD = 17
_SYS_CLONE = {"x86_64": 56, "aarch64": 220, "riscv64": 220}.get(os.uname().machine)
"""clone(2)'s number where its arguments are (flags, stack, …); elsewhere a run's namespaces come from ``unshare``."""
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LIMITS = {
    "data": resource.RLIMIT_DATA,
    "nproc": resource.RLIMIT_NPROC,
    "fsize": resource.RLIMIT_FSIZE,
    "cpu": resource.RLIMIT_CPU,
    "core": resource.RLIMIT_CORE,
}
FAILED = 125  # as the host's SANDBOX_FAILED_EXIT_CODE


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


_libc = _Libc()


def _check(result: int, what: str) -> None:
    if result != 0:
        err = _ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str, target: str, fstype: str, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(os.fsencode(source), os.fsencode(target), fstype.encode(), flags, data.encode() or None),
        f"mount {target}",
    )


def _empty_bounding_set() -> None:
    """Every capability out of the bounding set: done once by the agent (which never execs), inherited by every run."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "drop capability bounding set")


def _drop_capabilities() -> None:
    """Every capability gone (effective, permitted, inheritable, ambient; the bounding set is already empty);
    no_new_privs kept."""
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (0x20080522).to_bytes(4, sys.byteorder) + bytes(4)  # _LINUX_CAPABILITY_VERSION_3, this thread
    _check(_libc.capset(header, bytes(24)), "capset")  # 2 x (effective, permitted, inheritable): all empty


def _load_seccomp(program: bytes) -> None:
    """Install a seccomp BPF program (``struct sock_filter[]``) on this process and its future children."""
    buffer = (_Char * len(program)).from_buffer_copy(program)
    pointer = _ctypes.sizeof(_Long)  # struct sock_fprog: unsigned short len, (padding), struct sock_filter *filter
    fprog = (len(program) // 8).to_bytes(2, sys.byteorder) + bytes(pointer - 2)
    fprog += _ctypes.addressof(buffer).to_bytes(pointer, sys.byteorder)
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, fprog, 0, 0), "seccomp")


_NO_PROCESS_LEFT = "no process left in the sandbox (its process limit is reached)"


def _fork() -> int:
    """``os.fork``; at the sandbox's process limit an error that says so."""
    try:
        return os.fork()
    except BlockingIOError as exc:
        raise OSError(exc.errno, _NO_PROCESS_LEFT) from None


def _clone(flags: int) -> int:
    """A fork into new namespaces (``flags``): clone(2) without a stack of its own, so the child goes on from here as
    after ``os.fork``, but without the interpreter's after-fork hooks. Only for a child that runs the agent's own code
    and ends with ``os._exit`` (the agent has no threads and no fork handlers)."""
    assert _SYS_CLONE is not None
    arg = _Long
    pid = _libc.syscall(arg(_SYS_CLONE), arg(flags | SIGCHLD), arg(0), arg(0), arg(0), arg(0))
    if pid == -1:
        err = _ctypes.get_errno()
        raise OSError(err, _NO_PROCESS_LEFT if err == errno.EAGAIN else f"clone: {os.strerror(err)}")
    return pid


def _set_limits(limits: dict[str, int]) -> None:
    for name, value in limits.items():
        which = _LIMITS[name]
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))


_err_fd = -1
"""In a run's processes: the pipe of the program's stderr when the host asked for it apart (else stderr shares the
output pipe with stdout, in the exact order written)."""


_protocol_fds: list[int] = []
"""In a session worker's processes: its command and event pipes (fds 3 and 4 of the program)."""
_forward_to: int | None = None
"""Where a session run's process passes on a SIGINT: A to B's pid, B to -1 (its namespace) or -C (plain: C's group)."""


def _forward_sigint(signum: int, frame: object) -> None:
    if _forward_to is not None:
        try:
            if _forward_to < -1:
                os.killpg(-_forward_to, signal.SIGINT)
            else:
                os.kill(_forward_to, signal.SIGINT)
        except OSError:
            pass


def _wire_stdio(out_fd: int, stdin_fd: int) -> None:
    """stdin, stdout and stderr of the run's program (and a session's protocol pipes as 3 and 4), and no other
    descriptor of the agent's."""
    os.dup2(stdin_fd, 0)
    os.dup2(out_fd, 1)
    os.dup2(_err_fd if _err_fd != -1 else out_fd, 2)
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in _protocol_fds]  # out of the way of 3 and 4 first
    for target, fd in enumerate(high, 3):
        os.dup2(fd, target)
    os.closerange(3 + len(high), 1 << 16)


def _exec_program(req: dict, out_fd: int, stdin_fd: int) -> None:
    """In C: wire stdio and exec. Never returns."""
    try:
        _wire_stdio(out_fd, stdin_fd)
        for signum in (signal.SIGPIPE, signal.SIGXFSZ):  # ignored by Python: a program starts with the defaults
            signal.signal(signum, signal.SIG_DFL)
        os.chdir(req["cwd"])
        os.execve(req["argv"][0], req["argv"], req["env"])
    except BaseException as exc:  # noqa: BLE001 - report and die, never return into the agent
        _report(2, f"could not start {req['argv'][0]}: {exc}")
    os._exit(FAILED)


def _run_python_inline(req: dict, out_fd: int, stdin_fd: int) -> None:
    """In C, for Python code on the agent's own interpreter: run it in this forked, already started interpreter
    (no interpreter start-up per run) as ``python FILE ARGS`` would. Never returns."""
    code = 1
    try:
        _wire_stdio(out_fd, stdin_fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        env = req["env"]
        os.environ.clear()
        os.environ.update(env)
        os.chdir(req["cwd"])
        file_path = req["file"]
        sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
        sys.stdin = io.TextIOWrapper(
            io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8", errors="surrogateescape"
        )
        # as in a terminal: stdout flushed at each line end (a print() is one write, so the lines of concurrent runs
        # never come apart), stderr at once; input() and flush=True flush a partial line
        sys.stdout = _text_out(1, "surrogateescape", line_buffering=True)
        sys.stderr = _text_out(2, "backslashreplace", write_through=True)
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr  # type: ignore[misc]
        extra = [p for p in env.get("PYTHONPATH", "").split(":") if p]
        sys.path[:] = [os.path.dirname(file_path), *extra, *_BASE_PATH]
        sys.argv[:] = [file_path, *req["argv"][2:]]
        main = type(sys)("__main__")  # types.ModuleType: the types module costs 0.3 ms of each start
        main.__dict__.update({"__file__": file_path, "__cached__": None, "__builtins__": builtins})
        sys.modules["__main__"] = main
        with open(file_path, "rb") as f:
            source = f.read()
        try:
            exec(compile(source, file_path, "exec"), main.__dict__)
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc)
        except KeyboardInterrupt:
            code = 128 + signal.SIGINT
        except BaseException as exc:
            tb = exc.__traceback__
            tb = tb.tb_next if tb is not None else None  # without this frame, as python (3.11 prints exc's own)
            sys.excepthook(type(exc), exc.with_traceback(tb), tb)
            code = 1
        code = _finish(code)
    except BaseException as exc:  # noqa: BLE001 - report and die, never return into the agent
        _report(2, f"could not run the code: {exc!r}")
    os._exit(code)


def _text_out(fd: int, errors: str, *, write_through: bool = False, line_buffering: bool = False) -> io.TextIOWrapper:
    raw = io.FileIO(fd, "w", closefd=False)
    buffer: io.RawIOBase | io.BufferedWriter = raw if write_through else io.BufferedWriter(raw)
    return io.TextIOWrapper(
        buffer,  # type: ignore[arg-type]
        encoding="utf-8",
        errors=errors,
        write_through=write_through,
        line_buffering=line_buffering,
    )


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _finish(code: int) -> int:
    """What the interpreter does at exit: wait for threads, run atexit handlers, flush."""
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException:
        sys.excepthook(*sys.exc_info())
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - a closed pipe, a closed stream
            code = code or 120
    return code


def _report(fd: int, text: str) -> None:
    try:
        os.write(fd, f"daytona-lsp: {text}\n".encode())
    except OSError:
        pass


_group = 0
"""Plain runs: the process group of the run's program (killed whole at the end)."""


def _die_with_group(signum: int, frame: object) -> None:
    """Plain runs: A was killed (``PR_SET_PDEATHSIG`` sends SIGTERM): take the program's process group along."""
    if _group:
        try:
            os.killpg(_group, signal.SIGKILL)
        except OSError:
            pass
    os._exit(128 + signal.SIGKILL)


def _wait_exit_code(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
        except InterruptedError:
            continue


def _write_parts(code_fd: int, code_dir: str, parts: list) -> None:
    """The code file, and the texts the run's workspace binds (one after the other in ``code_fd``)."""
    with os.fdopen(code_fd, "rb", closefd=True) as src:
        for name, size in parts:
            path = os.path.join(code_dir, name)
            with open(path, "wb") as dst:
                while size > 0:
                    chunk = src.read(min(size, 1 << 20))
                    if not chunk:
                        break
                    dst.write(chunk)
                    size -= len(chunk)
            os.chmod(path, 0o644)


def _mount_workspace(ws: dict, code_dir: str, out_fd: int) -> None:
    """In B, before it drops its capabilities (see ``core/local/workspace.py``): a fresh overlay of the workspace
    at its real path, the staging directories hidden, the secrets masked, the bound files over their paths."""
    root, view = ws["root"], ws["view"]
    work = f"{view}/layer/{ws['work']}"
    os.mkdir(work, 0o700)
    options = f"lowerdir={view}/lower,upperdir={view}/layer/upper,workdir={work},userxattr"
    try:
        _mount("overlay", root, "overlay", MS_NOSUID | MS_NODEV, options)
    except OSError as exc:  # no overlayfs in user namespaces here (Linux < 5.11): the folder read-only
        _mount(f"{view}/lower", root, "", MS_BIND | MS_REC)
        _mount("none", root, "", MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        _report(out_fd, f"the workspace is read-only in this sandbox (no writable overlay here: {reason})")
    _mount("tmpfs", view, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=0755")
    empty = os.path.join(code_dir, ws["empty"])
    for path in ws["masks"]:  # a mount that fails fails the run rather than show a secret
        try:
            mode = os.lstat(path).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue  # deleted (on the host, or by an earlier run in the layer)
        if (mode & 0o170000) == 0o040000:
            _mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=0755")
        elif (mode & 0o170000) != 0o120000:  # a link an earlier run made leads to what it made
            _bind_ro(empty, path)
    for name, target in ws["binds"]:
        try:
            if not os.path.lexists(target):  # a new, unsaved file: a placeholder in the layer to mount on
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o644))
            _bind_ro(os.path.join(code_dir, name), target)
        except OSError as exc:
            if name == ws["own"]:
                raise
            _report(out_fd, f"the unsaved text of {target} is not shown to the run: {exc.strerror}")


def _bind_ro(source: str, target: str) -> None:
    _mount(source, target, "", MS_BIND)
    _mount("none", target, "", MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _run_init(req: dict, out_fd: int, code_fd: int, stdin_fd: int, isolated: bool) -> int:
    """B: the run's pid 1 (or, plain, the run's process group leader's parent). Returns the exit code."""
    file_path = req["file"]
    code_dir = req.get("code_dir") or os.path.dirname(file_path)
    parts = req.get("parts") or [[os.path.basename(file_path), os.fstat(code_fd).st_size]]
    if isolated:
        if not _protocol_fds:  # (a session's B passes SIGINT on to the run's processes instead)
            # as pid 1 with the default action, the run's processes cannot kill it by a signal (Python handles SIGINT)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        _mount("none", "/", "", MS_REC | MS_PRIVATE)
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")  # at the sandbox's memory limit, the kernel kills the run's processes, never the agent
        size = os.fstat(code_fd).st_size + 4096 * len(parts)
        _mount("tmpfs", code_dir, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size + 65536},mode=0755")
    _write_parts(code_fd, code_dir, parts)
    if isolated:
        _mount("tmpfs", code_dir, "", MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        if req.get("workspace"):
            _mount_workspace(req["workspace"], code_dir, out_fd)
        _drop_capabilities()
        if req.get("seccomp"):
            _load_seccomp(req["seccomp"])
    _set_limits(req["limits"])
    pid = _fork()
    if pid == 0:
        if not isolated:
            os.setpgid(0, 0)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if _protocol_fds:
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # exec keeps no handler; the worker sets its own
        if req.get("inline"):
            _run_python_inline(req, out_fd, stdin_fd)
        _exec_program(req, out_fd, stdin_fd)
    if not isolated:
        global _group
        _group = pid
        try:
            os.setpgid(pid, pid)  # here too: the group exists before a kill can come
        except OSError:
            pass
    if _protocol_fds:
        global _forward_to
        _forward_to = -1 if isolated else -pid
        for fd in _protocol_fds:
            os.close(fd)  # the worker's alone: its events end (EOF) when it does
    os.close(out_fd)
    os.close(stdin_fd)
    if _err_fd != -1:
        os.close(_err_fd)
    code = _wait_exit_code(pid)
    if not isolated:
        try:
            os.killpg(pid, signal.SIGKILL)  # stray background processes of the run
        except OSError:
            pass
    return code


def _run_fds(req: dict, fds: list[int]) -> tuple[int, int]:
    """The run's code and stdin descriptors (``/dev/null`` without stdin); its stderr pipe, if any, to ``_err_fd``;
    a session's protocol pipes (the last two) to ``_protocol_fds``. ``fds[0]`` is the output pipe."""
    global _err_fd
    if req.get("protocol"):
        signal.signal(signal.SIGINT, _forward_sigint)  # _forward_to is None until B's child exists: ignored till then
        _protocol_fds[:] = fds[-2:]
        del fds[-2:]
    if req.get("separate_stderr"):
        _err_fd = fds.pop()  # the last descriptor, after the optional stdin
    return fds[1], fds[2] if len(fds) > 2 else os.open("/dev/null", os.O_RDONLY)


def _run_b(req: dict, fds: list[int]) -> None:
    """B, cloned by the agent into the run's namespaces (their pid 1). Never returns."""
    out_fd = fds[0]
    try:
        code_fd, stdin_fd = _run_fds(req, fds)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os._exit(_run_init(req, out_fd, code_fd, stdin_fd, True))
    except BaseException as exc:  # noqa: BLE001
        _report(out_fd, f"could not set up the run: {exc}")
    os._exit(FAILED)


def _run_a(req: dict, fds: list[int], isolated: bool) -> None:
    """A: in the agent's namespaces; makes the run's namespaces (isolated) and waits for B. Never returns."""
    global _forward_to
    code = FAILED
    out_fd = fds[0]
    try:
        code_fd, stdin_fd = _run_fds(req, fds)
        if isolated:
            _check(_libc.unshare(CLONE_NEWPID | CLONE_NEWNS), "unshare")
        alive_r, alive_w = os.pipe()  # A holds the write end: EOF means A is gone
        pid = _fork()
        if pid == 0:
            try:
                os.close(alive_w)
                if not isolated:
                    signal.signal(signal.SIGTERM, _die_with_group)
                _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL if isolated else signal.SIGTERM, 0, 0, 0)
                os.set_blocking(alive_r, False)
                try:
                    if os.read(alive_r, 1) == b"":  # A died before the line above: nothing would kill this run
                        os._exit(FAILED)
                except BlockingIOError:
                    pass
                os.close(alive_r)
                os._exit(_run_init(req, out_fd, code_fd, stdin_fd, isolated))
            except BaseException as exc:  # noqa: BLE001
                _report(out_fd, f"could not set up the run: {exc}")
                os._exit(FAILED)
        _forward_to = pid
        os.close(alive_r)
        os.close(out_fd)
        os.close(code_fd)
        os.close(stdin_fd)
        if _err_fd != -1:
            os.close(_err_fd)
        for fd in _protocol_fds:
            os.close(fd)
        code = _wait_exit_code(pid)
    except BaseException as exc:  # noqa: BLE001
        _report(out_fd, f"could not set up the run: {exc}")
    os._exit(code)


class Agent:
    def __init__(self, sock: _socket.socket, isolated: bool) -> None:
        self.sock = sock
        self.isolated = isolated
        self.poll = select.poll()
        self.runs: dict[int, tuple[str, int]] = {}  # pidfd -> (run id, pid of the run's first process, B or A)
        self.by_id: dict[str, int] = {}

    def send(self, text: str) -> None:
        """One message to the host: JSON, written by hand (run ids are digits; the json module is slow to import)."""
        self.sock.sendall(text.encode())

    def start(self, req: dict, fds: list[int]) -> None:
        run_id = "".join(c for c in str(req["id"]) if c.isdigit())
        if len(fds) < 2:
            for fd in fds:
                os.close(fd)
            self.send(f'{{"id": "{run_id}", "exit": {FAILED}, "error": "run request without its descriptors"}}')
            return
        clone = self.isolated and _SYS_CLONE is not None
        try:
            pid = _clone(CLONE_NEWPID | CLONE_NEWNS) if clone else _fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            self.send(f'{{"id": "{run_id}", "exit": {FAILED}, "error": "{exc.strerror}"}}')
            return
        if pid == 0:
            try:
                self.sock.close()
                if clone:
                    _run_b(req, fds)
                _run_a(req, fds, self.isolated)
            finally:
                os._exit(FAILED)
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        self.runs[pidfd] = (run_id, pid)
        self.by_id[run_id] = pid
        self.poll.register(pidfd, select.POLLIN)

    def kill(self, run_id: str) -> None:
        pid = self.by_id.get(run_id)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)  # B (or A, and B by PDEATHSIG): the namespace dies with B
            except ProcessLookupError:
                pass

    def send_signal(self, run_id: str, signum: int) -> None:
        pid = self.by_id.get(run_id)
        if pid is not None and signum == signal.SIGINT:
            try:
                os.kill(pid, signum)  # B (in the fallback A) passes it on to the run's processes
            except ProcessLookupError:
                pass

    def finished(self, pidfd: int) -> None:
        self.poll.unregister(pidfd)
        os.close(pidfd)
        run_id, pid = self.runs.pop(pidfd)
        self.by_id.pop(run_id, None)
        self.send(f'{{"id": "{run_id}", "exit": {_wait_exit_code(pid)}}}')

    def receive(self) -> bool:
        """One request from the host (``marshal``: the host is the only writer of this socket)."""
        msg, ancdata, _, _ = self.sock.recvmsg(1 << 20, _socket.CMSG_SPACE(16 * 4))
        fds: list[int] = []
        for level, kind, data in ancdata:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                fds += [int.from_bytes(data[i : i + 4], sys.byteorder, signed=True) for i in range(0, len(data) - 3, 4)]
        if not msg:
            return False
        req = marshal.loads(msg)
        if req.get("op") == "run":
            self.start(req, fds)
        elif req.get("op") == "kill":
            self.kill(str(req.get("id")))
        elif req.get("op") == "signal":
            self.send_signal(str(req.get("id")), int(req.get("sig", 0)))
        return True

    def serve(self) -> None:
        self.poll.register(self.sock.fileno(), select.POLLIN)
        self.send(f'{{"ready": {os.getpid()}}}')
        # after "ready": the host prepares its first run meanwhile (which waits in the socket until this is done)
        _warm_up()
        gc.freeze()  # forks of the agent (every run) then do not copy its objects' pages when they collect garbage
        while True:
            for fd, _ in self.poll.poll():
                if fd == self.sock.fileno():
                    if not self.receive():
                        return  # the host is gone: so is the container
                else:
                    self.finished(fd)


def _forbid_user_namespaces() -> None:
    """No process of the container may create a user namespace (what bubblewrap's ``--disable-userns`` does; that
    option nests the sandbox in a second user namespace, and a run could then not mount its own ``/proc``). The
    agent's own ``/proc/sys`` is read-only: it writes the limit through a fresh ``/proc`` in a mount namespace of its
    own, which runs inherit (each then mounts its own ``/proc`` again)."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    _mount("none", "/", "", MS_REC | MS_PRIVATE)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0")


def _warm_up() -> None:
    """Once, here: the compiler's lazy set-up (its AST types, about 2 ms), which every inline Python run would
    otherwise pay again in its own fork."""
    exec(compile("pass\n", "<warm-up>", "exec"), {})


def main() -> None:
    sock = _socket.socket(fileno=int(sys.argv[1]))
    isolated = "--plain" not in sys.argv[2:]
    if isolated:
        _forbid_user_namespaces()
        _empty_bounding_set()
    Agent(sock, isolated).serve()


if __name__ == "__main__":
    main()
