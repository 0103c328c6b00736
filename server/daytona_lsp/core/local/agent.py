"""The agent inside a local sandbox container. Standard library only; run as ``python agent.pyc FD [--plain]`` (its
bytecode: ``launch.agent_bytecode``) with only ``PATH`` and ``HOME`` in its environment (so that a Python run forked
from it starts as ``python FILE`` would: site-packages included). Its system calls (through ``_ctypes``: mounts,
capabilities, seccomp, clone, rlimits) are in ``agent_syscalls.py``, whose bytecode lies beside its own.

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

import _signal as signal  # not the signal module: it imports enum, slow (part of every container start)
import _socket
import atexit
import builtins
import gc
import io
import marshal
import os
import select
import sys


def _load(name: str) -> object:
    """The agent's module ``name`` from its bytecode beside this one's (``launch.agent_bytecode``), run as an import
    would, without the import system's search of ``sys.path`` (part of every container start) and out of
    ``sys.modules`` (a run's own module of that name imports)."""
    module = type(sys)(name)
    with open(f"{os.path.dirname(__file__)}/{name}.pyc", "rb") as f:
        exec(marshal.loads(f.read()[16:]), module.__dict__)  # (16: the header)
    return module


TYPE_CHECKING = False  # (the typing module is slow to import)
if TYPE_CHECKING:
    from daytona_lsp.core.local import agent_syscalls as syscalls
else:
    syscalls = _load("agent_syscalls")

_BASE_PATH = list(sys.path[1:])
"""The interpreter's own ``sys.path`` (site-packages included), without the agent's directory."""

FAILED = 125  # as the host's SANDBOX_FAILED_EXIT_CODE


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
    high: list[int] = []
    if _protocol_fds:
        import fcntl  # (here, not at the agent's start: only a session worker needs it)

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


def _run_init(req: dict, out_fd: int, code_fd: int, stdin_fd: int, isolated: bool) -> int:
    """B: the run's pid 1 (or, plain, the run's process group leader's parent). Returns the exit code."""
    file_path = req["file"]
    code_dir = req.get("code_dir") or os.path.dirname(file_path)
    parts = req.get("parts") or [[os.path.basename(file_path), os.fstat(code_fd).st_size]]
    if isolated:
        if not _protocol_fds:  # (a session's B passes SIGINT on to the run's processes instead)
            # as pid 1 with the default action, the run's processes cannot kill it by a signal (Python handles SIGINT)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        syscalls.mount_private_proc()
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")  # at the sandbox's memory limit, the kernel kills the run's processes, never the agent
        size = os.fstat(code_fd).st_size + 4096 * len(parts)
        syscalls.mount_tmpfs(code_dir, size + 65536)
    _write_parts(code_fd, code_dir, parts)
    if isolated:
        syscalls.remount_read_only(code_dir)
        if req.get("workspace"):
            for note in syscalls.mount_workspace(req["workspace"], code_dir):
                _report(out_fd, note)
        syscalls.drop_capabilities()
        if req.get("seccomp"):
            syscalls.load_seccomp(req["seccomp"])
    syscalls.set_limits(req["limits"])
    pid = syscalls.fork()
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
        syscalls.set_death_signal(signal.SIGKILL)
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
            syscalls.unshare(syscalls.RUN_NAMESPACES)
        alive_r, alive_w = os.pipe()  # A holds the write end: EOF means A is gone
        pid = syscalls.fork()
        if pid == 0:
            try:
                os.close(alive_w)
                if not isolated:
                    signal.signal(signal.SIGTERM, _die_with_group)
                syscalls.set_death_signal(signal.SIGKILL if isolated else signal.SIGTERM)
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
        clone = self.isolated and syscalls.SYS_CLONE is not None
        try:
            pid = syscalls.clone(syscalls.RUN_NAMESPACES) if clone else syscalls.fork()
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


def _warm_up() -> None:
    """Once, here: the compiler's lazy set-up (its AST types, about 2 ms), which every inline Python run would
    otherwise pay again in its own fork."""
    exec(compile("pass\n", "<warm-up>", "exec"), {})


def main() -> None:
    sock = _socket.socket(fileno=int(sys.argv[1]))
    isolated = "--plain" not in sys.argv[2:]
    if isolated:
        syscalls.forbid_user_namespaces()
        syscalls.empty_bounding_set()
    Agent(sock, isolated).serve()


if __name__ == "__main__":
    main()
