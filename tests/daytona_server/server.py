# ruff: noqa: ASYNC230, ASYNC240  (test infrastructure: small local files in a temp directory)
"""A Daytona-API-compatible HTTP server for tests: the unmodified Daytona SDK talks to it on 127.0.0.1.

It implements the control plane (sandbox create/get/list/start/stop/delete, toolbox-proxy-url) and the toolbox
(process execute, code-run, sessions with streamed logs, files) as described in ``shared/daytona-wire.md``. Code
really runs: every fake sandbox is a temporary work directory on this machine and commands run there with
``subprocess`` (no isolation: this is test infrastructure, not a product feature).

It counts requests per endpoint (``counts["POST /process/code-run"]``…) and injects faults on demand.
The server runs in its own thread with its own event loop, so tests of any kind (sync, async, other processes)
can use it; every public method is safe to call from the test's thread.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import MultipartWriter, web

API_PREFIX = "/api"
TOOLBOX_PREFIX = "/toolbox"
STDOUT_MARKER = b"\x01\x01\x01"
STDERR_MARKER = b"\x02\x02\x02"
ARTIFACT_PREFIX = "dtn_artifact_k39fd2:"
JS_PREFIX = "process.argv.splice(1, 1);\n"
DEFAULT_API_KEY = "test-daytona-key-not-secret"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _legacy_split(command: str) -> list[str]:
    """How old daemons split ``/process/execute`` commands: on spaces, honouring '…' and "…", no escapes."""
    words: list[str] = []
    current: list[str] = []
    quote: str | None = None
    has_word = False
    for ch in command:
        if quote:
            if ch == quote:
                quote = None
            else:
                current.append(ch)
        elif ch in "'\"":
            quote = ch
            has_word = True
        elif ch == " ":
            if current or has_word:
                words.append("".join(current))
                current, has_word = [], False
        else:
            current.append(ch)
    if current or has_word:
        words.append("".join(current))
    return words


@dataclass
class FakeCommand:
    id: str
    command: str
    exit_code: int | None = None
    chunks: list[tuple[str, bytes]] = field(default_factory=list)
    proc: asyncio.subprocess.Process | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def stream(self, name: str) -> str:
        return b"".join(data for s, data in self.chunks if s == name).decode("utf-8", "replace")

    def output(self) -> str:
        return b"".join(data for _, data in self.chunks).decode("utf-8", "replace")


@dataclass
class FakeSession:
    id: str
    commands: dict[str, FakeCommand] = field(default_factory=dict)


@dataclass
class FakeSandbox:
    id: str
    name: str
    workdir: str
    env: dict[str, str]
    labels: dict[str, str]
    snapshot: str | None
    build_info: dict[str, Any] | None
    cpu: int
    memory: int
    disk: int
    target: str
    auto_stop_interval: int | None
    auto_delete_interval: int | None
    state: str = "started"
    created_at: str = field(default_factory=_now)
    sessions: dict[str, FakeSession] = field(default_factory=dict)
    processes: set[asyncio.subprocess.Process] = field(default_factory=set)
    deleted: bool = False
    request: dict[str, Any] = field(default_factory=dict)


class Fault:
    """A fault armed for the next ``times`` matching requests."""

    def __init__(self, kind: str, times: int, **params: Any) -> None:
        self.kind = kind
        self.times = times
        self.params = params


class DaytonaTestServer:
    """The fake Daytona API. Start with :meth:`start` (background thread) or ``async with`` in a loop of your own."""

    def __init__(self, *, api_key: str = DEFAULT_API_KEY, host: str = "127.0.0.1", port: int = 0) -> None:
        self.api_key = api_key
        self.host = host
        self.port = port
        self.counts: collections.Counter[str] = collections.Counter()
        self.sandboxes: dict[str, FakeSandbox] = {}
        self.deleted_ids: list[str] = []
        self.created_requests: list[dict[str, Any]] = []
        self.legacy_exec = False
        """Run ``/process/execute`` like old daemons: split the command on spaces (quotes honoured) and exec it."""
        self.exec_shell = "bash"
        self._faults: dict[str, list[Fault]] = collections.defaultdict(list)
        self._flags: dict[int, set[str]] = {}
        self._procs: set[asyncio.subprocess.Process] = set()
        self._lock = threading.Lock()
        self._root = tempfile.mkdtemp(prefix="daytona-test-server-")
        # `python3` in the fake sandboxes is this interpreter (a version-manager shim would cost ~100 ms a run)
        self._bin = os.path.join(self._root, ".bin")
        os.makedirs(self._bin)
        os.symlink(sys.executable, os.path.join(self._bin, "python3"))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._release: asyncio.Event | None = None
        self._held = 0
        self._held_changed: threading.Condition = threading.Condition()

    # ------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def toolbox_url(self) -> str:
        return self.base_url + TOOLBOX_PREFIX

    def start(self) -> DaytonaTestServer:
        """Serve from a background thread; returns once the port is bound."""
        ready = threading.Event()
        error: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._astart())
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                error.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._astop())
            loop.close()

        self._thread = threading.Thread(target=main, name="daytona-test-server", daemon=True)
        self._thread.start()
        ready.wait()
        if error:
            raise error[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._thread = None
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> DaytonaTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _astart(self) -> None:
        self._release = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._middleware])
        self._routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def _astop(self) -> None:
        if self._release is not None:
            self._release.set()
        for proc in self._procs:
            if proc.returncode is None:
                self._kill(proc)
        if self._procs:
            await asyncio.wait([asyncio.ensure_future(proc.wait()) for proc in self._procs], timeout=10)
        if self._runner is not None:
            await self._runner.cleanup()
        current = asyncio.current_task()
        rest = [task for task in asyncio.all_tasks() if task is not current]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` (a coroutine function or plain function) in the server's loop and return its result."""
        assert self._loop is not None

        async def invoke() -> Any:
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout=30)

    # ------------------------------------------------------------------ fault injection (any thread)
    def fail_create(self, status: int = 429, times: int = 1, message: str = "injected failure") -> None:
        """The next ``times`` ``POST /sandbox`` answer ``status``."""
        self._arm("create", Fault("status", times, status=status, message=message))

    def drop_create(self, times: int = 1) -> None:
        """The next ``times`` ``POST /sandbox`` close the connection without an answer."""
        self._arm("create", Fault("drop", times))

    def hold_create(self, times: int = 1) -> None:
        """The next ``times`` ``POST /sandbox`` wait until :meth:`release` (slow creation, no sleeping)."""
        self._arm("create", Fault("hold", times))

    def fail_toolbox(self, status: int = 500, times: int = 1, message: str = "injected toolbox failure") -> None:
        self._arm("toolbox", Fault("status", times, status=status, message=message))

    def drop_toolbox(self, times: int = 1) -> None:
        """The next ``times`` toolbox requests lose their connection before any answer (the code does not run)."""
        self._arm("toolbox", Fault("drop", times))

    def drop_toolbox_after_start(self, times: int = 1) -> None:
        """The next ``times`` toolbox execute/code-run requests start the code, then drop the connection."""
        self._arm("toolbox", Fault("drop_after_start", times))

    def hold_toolbox(self, times: int = 1) -> None:
        """The next ``times`` toolbox requests never answer until :meth:`release` or the client gives up."""
        self._arm("toolbox", Fault("hold", times))

    def timeout_toolbox(self, times: int = 1) -> None:
        """The next ``times`` toolbox requests answer 408 at once, as the daemon does when a command times out."""
        self._arm("toolbox", Fault("status", times, status=408, message="request timed out", code="REQUEST_TIMEOUT"))

    def omit_exit_code(self, times: int = 1) -> None:
        """The next ``times`` execute/code-run answers carry no exit code (as a broken daemon might)."""
        self._arm("toolbox", Fault("omit_exit_code", times))

    def release(self) -> None:
        """Let every held request go on."""
        assert self._loop is not None

        def go() -> None:
            assert self._release is not None
            self._release.set()
            self._release = asyncio.Event()

        self._loop.call_soon_threadsafe(go)

    def wait_held(self, n: int = 1, timeout: float = 30) -> None:
        """Block until ``n`` requests are being held (for tests that race something against a held request)."""
        with self._held_changed:
            if not self._held_changed.wait_for(lambda: self._held >= n, timeout=timeout):
                raise TimeoutError(f"{n} held request(s) expected, {self._held} seen")

    def stop_sandbox(self, sandbox_id: str) -> None:
        """Put a sandbox in state ``stopped`` (as Daytona's auto-stop does): its processes die, toolbox refuses."""

        def go() -> None:
            sandbox = self.sandboxes[sandbox_id]
            self._kill_all(sandbox)
            sandbox.sessions.clear()
            sandbox.state = "stopped"

        self.call(go)

    def forget_sandbox(self, sandbox_id: str) -> None:
        """Delete a sandbox behind the client's back: from now on every request about it answers 404."""

        def go() -> None:
            sandbox = self.sandboxes.pop(sandbox_id)
            self._kill_all(sandbox)
            sandbox.deleted = True
            shutil.rmtree(sandbox.workdir, ignore_errors=True)

        self.call(go)

    def toolbox_requests(self) -> int:
        return sum(n for key, n in self.counts.items() if " /toolbox" in key)

    def count(self, key: str) -> int:
        return self.counts.get(key, 0)

    def _arm(self, where: str, fault: Fault) -> None:
        with self._lock:
            self._faults[where].append(fault)

    def _take(self, where: str) -> Fault | None:
        with self._lock:
            faults = self._faults[where]
            if not faults:
                return None
            fault = faults[0]
            fault.times -= 1
            if fault.times <= 0:
                faults.pop(0)
            return fault

    async def _hold(self) -> None:
        assert self._release is not None
        release = self._release
        with self._held_changed:
            self._held += 1
            self._held_changed.notify_all()
        try:
            await release.wait()
        finally:
            with self._held_changed:
                self._held -= 1
                self._held_changed.notify_all()

    # ------------------------------------------------------------------ routing
    def _routes(self, app: web.Application) -> None:
        a, t = API_PREFIX, TOOLBOX_PREFIX + "/{sid}"
        r = app.router
        r.add_route("*", a + "/socket.io/", self.socket_io)
        r.add_post(a + "/sandbox", self.create_sandbox)
        r.add_get(a + "/sandbox", self.list_sandboxes)
        r.add_get(a + "/sandbox/{id}", self.get_sandbox)
        r.add_delete(a + "/sandbox/{id}", self.delete_sandbox)
        r.add_post(a + "/sandbox/{id}/start", self.start_sandbox)
        r.add_post(a + "/sandbox/{id}/stop", self.stop_sandbox_route)
        r.add_get(a + "/sandbox/{id}/toolbox-proxy-url", self.toolbox_proxy_url)
        r.add_get(a + "/config", self.config)
        r.add_post(t + "/process/execute", self.execute)
        r.add_post(t + "/process/code-run", self.code_run)
        r.add_post(t + "/process/session", self.create_session)
        r.add_get(t + "/process/session", self.list_sessions)
        r.add_get(t + "/process/session/{session}", self.get_session)
        r.add_delete(t + "/process/session/{session}", self.delete_session)
        r.add_post(t + "/process/session/{session}/exec", self.session_exec)
        r.add_get(t + "/process/session/{session}/command/{cmd}", self.get_command)
        r.add_get(t + "/process/session/{session}/command/{cmd}/logs", self.command_logs)
        r.add_post(t + "/process/session/{session}/command/{cmd}/terminate", self.terminate_command)
        r.add_post(t + "/process/session/{session}/command/{cmd}/input", self.command_input)
        r.add_get(t + "/work-dir", self.work_dir)
        r.add_get(t + "/user-home-dir", self.work_dir)
        r.add_get(t + "/files", self.list_files)
        r.add_delete(t + "/files", self.delete_file)
        r.add_post(t + "/files/bulk-upload", self.upload_files)
        r.add_post(t + "/files/bulk-download", self.download_files)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        resource = request.match_info.route.resource
        canonical = resource.canonical if resource is not None else request.path
        if canonical.startswith(API_PREFIX):
            key = canonical[len(API_PREFIX) :]
        elif canonical.startswith(TOOLBOX_PREFIX + "/{sid}"):
            key = TOOLBOX_PREFIX + canonical[len(TOOLBOX_PREFIX + "/{sid}") :]
        else:
            key = canonical
        with self._lock:
            self.counts[f"{request.method} {key}"] += 1
        if key != "/socket.io/" and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._api_error(401, "Invalid credentials")
        if key.startswith(TOOLBOX_PREFIX):
            sandbox = self.sandboxes.get(request.match_info["sid"])
            if sandbox is None:
                return self._daemon_error(request, 404, "sandbox not found", "SANDBOX_NOT_FOUND")
            if sandbox.state != "started":
                return self._daemon_error(request, 409, f"sandbox {sandbox.id} is not running", "SANDBOX_NOT_RUNNING")
            fault = self._take("toolbox")
            if fault is not None:
                if fault.kind == "status":
                    return self._daemon_error(
                        request, fault.params["status"], fault.params["message"], fault.params.get("code", "INJECTED")
                    )
                if fault.kind == "drop":
                    return self._drop(request)
                if fault.kind == "hold":
                    await self._hold()
                if fault.kind in ("drop_after_start", "omit_exit_code"):
                    self._flags.setdefault(id(request), set()).add(fault.kind)
        try:
            return await handler(request)
        finally:
            self._flags.pop(id(request), None)

    def _flag(self, request: web.Request, name: str) -> bool:
        return name in self._flags.get(id(request), ())

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError

    @staticmethod
    def _api_error(status: int, message: str) -> web.Response:
        reason = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}.get(
            status, "Error"
        )
        return web.json_response({"statusCode": status, "message": message, "error": reason}, status=status)

    @staticmethod
    def _daemon_error(request: web.Request, status: int, message: str, code: str) -> web.Response:
        body = {
            "message": message,
            "statusCode": status,
            "code": code,
            "source": "DAYTONA_DAEMON",
            "path": request.path,
            "method": request.method,
            "timestamp": _now(),
        }
        return web.json_response(body, status=status)

    # ------------------------------------------------------------------ control plane
    def _dto(self, s: FakeSandbox, *, state: str | None = None) -> dict[str, Any]:
        return {
            "id": s.id,
            "organizationId": "org-test",
            "name": s.name,
            "snapshot": s.snapshot,
            "user": "daytona",
            "env": s.env,
            "labels": s.labels,
            "public": False,
            "networkBlockAll": False,
            "kvm": False,
            "target": s.target,
            "cpu": s.cpu,
            "gpu": 0,
            "memory": s.memory,
            "disk": s.disk,
            "state": state or s.state,
            "desiredState": "started" if s.state == "started" else "stopped",
            "autoStopInterval": s.auto_stop_interval,
            "autoDeleteInterval": s.auto_delete_interval,
            "createdAt": s.created_at,
            "updatedAt": _now(),
            "buildInfo": s.build_info,
            "toolboxProxyUrl": self.toolbox_url,
        }

    def _sandbox_or_404(self, request: web.Request) -> FakeSandbox | web.Response:
        key = request.match_info["id"]
        sandbox = self.sandboxes.get(key) or next((s for s in self.sandboxes.values() if s.name == key), None)
        if sandbox is None:
            return self._api_error(404, f"Sandbox with ID or name {key} not found")
        return sandbox

    async def socket_io(self, request: web.Request) -> web.Response:
        # The SDK's Socket.IO connection is optional; a fast refusal keeps it from slowing anything down.
        return web.Response(status=404, text="no socket.io here")

    async def config(self, request: web.Request) -> web.Response:
        return web.json_response({"analyticsApiUrl": None})

    async def create_sandbox(self, request: web.Request) -> web.StreamResponse:
        fault = self._take("create")
        if fault is not None:
            if fault.kind == "status":
                return self._api_error(fault.params["status"], fault.params["message"])
            if fault.kind == "drop":
                return self._drop(request)
            if fault.kind == "hold":
                await self._hold()
        body = await request.json()
        self.created_requests.append(body)
        sid = str(uuid.uuid4())
        workdir = os.path.join(self._root, sid)
        os.makedirs(workdir)

        def as_int(name: str, default: int) -> int:
            value = body.get(name)
            return value if isinstance(value, int) else default

        sandbox = FakeSandbox(
            id=sid,
            name=body.get("name") or sid,
            workdir=workdir,
            env=dict(body.get("env") or {}),
            labels=dict(body.get("labels") or {}),
            snapshot=body.get("snapshot"),
            build_info=self._build_info(body.get("buildInfo")),
            cpu=as_int("cpu", 1),
            memory=as_int("memory", 1),
            disk=as_int("disk", 3),
            target=body.get("target") or "us",
            auto_stop_interval=body.get("autoStopInterval"),
            auto_delete_interval=body.get("autoDeleteInterval"),
            request=body,
        )
        self.sandboxes[sid] = sandbox
        return web.json_response(self._dto(sandbox))

    @staticmethod
    def _build_info(requested: Any) -> dict[str, Any] | None:
        if not isinstance(requested, dict):
            return None
        now = _now()
        content = requested.get("dockerfileContent") or ""
        return {
            "dockerfileContent": content,
            "contextHashes": requested.get("contextHashes") or [],
            "createdAt": now,
            "updatedAt": now,
            "snapshotRef": "sha256:" + uuid.uuid5(uuid.NAMESPACE_OID, content).hex,
        }

    async def list_sandboxes(self, request: web.Request) -> web.Response:
        wanted: dict[str, str] = json.loads(request.query.get("labels") or "{}")
        items = [self._dto(s) for s in self.sandboxes.values() if all(s.labels.get(k) == v for k, v in wanted.items())]
        return web.json_response({"items": items, "nextCursor": None})

    async def get_sandbox(self, request: web.Request) -> web.Response:
        sandbox = self._sandbox_or_404(request)
        if isinstance(sandbox, web.Response):
            return sandbox
        return web.json_response(self._dto(sandbox))

    async def delete_sandbox(self, request: web.Request) -> web.Response:
        sandbox = self._sandbox_or_404(request)
        if isinstance(sandbox, web.Response):
            return sandbox
        self._kill_all(sandbox)
        del self.sandboxes[sandbox.id]
        sandbox.deleted = True
        self.deleted_ids.append(sandbox.id)
        shutil.rmtree(sandbox.workdir, ignore_errors=True)
        return web.json_response(self._dto(sandbox, state="destroyed"))

    async def start_sandbox(self, request: web.Request) -> web.Response:
        sandbox = self._sandbox_or_404(request)
        if isinstance(sandbox, web.Response):
            return sandbox
        sandbox.state = "started"
        return web.json_response(self._dto(sandbox))

    async def stop_sandbox_route(self, request: web.Request) -> web.Response:
        sandbox = self._sandbox_or_404(request)
        if isinstance(sandbox, web.Response):
            return sandbox
        self._kill_all(sandbox)
        sandbox.sessions.clear()
        sandbox.state = "stopped"
        return web.json_response(self._dto(sandbox))

    async def toolbox_proxy_url(self, request: web.Request) -> web.Response:
        sandbox = self._sandbox_or_404(request)
        if isinstance(sandbox, web.Response):
            return sandbox
        return web.json_response({"url": self.toolbox_url})

    # ------------------------------------------------------------------ processes
    def _env(self, sandbox: FakeSandbox, extra: dict[str, str] | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DAYTONA_", "PYTEST_"))}
        env["HOME"] = sandbox.workdir
        env["PATH"] = self._bin + os.pathsep + env.get("PATH", os.defpath)
        env.update(sandbox.env)
        env.update(extra or {})
        return env

    async def _spawn(
        self,
        sandbox: FakeSandbox,
        argv: list[str],
        *,
        cwd: str | None,
        env: dict[str, str] | None,
        split: bool,
        stdin: int = asyncio.subprocess.DEVNULL,
    ) -> asyncio.subprocess.Process:
        workdir = sandbox.workdir
        if cwd:
            workdir = cwd if os.path.isabs(cwd) else os.path.join(sandbox.workdir, cwd)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=workdir,
            env=self._env(sandbox, env),
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE if split else asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        sandbox.processes.add(proc)
        self._procs.add(proc)
        return proc

    @staticmethod
    def _kill(proc: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def _kill_all(self, sandbox: FakeSandbox) -> None:
        for proc in list(sandbox.processes):
            self._kill(proc)
        sandbox.processes.clear()

    async def _run_combined(
        self, request: web.Request, sandbox: FakeSandbox, argv: list[str], *, cwd: str | None, env: Any, timeout: Any
    ) -> tuple[int, bytes] | web.StreamResponse:
        """Run to completion with stdout+stderr in one buffer; a timeout kills the process group → 408."""
        try:
            proc = await self._spawn(sandbox, argv, cwd=cwd, env=env, split=False)
        except OSError as exc:
            return 200, f"failed to start: {exc}".encode()
        if self._flag(request, "drop_after_start"):
            # the code runs to the end, then the answer is lost: the client cannot know whether it ran
            await proc.communicate()
            sandbox.processes.discard(proc)
            return self._drop(request)
        try:
            if isinstance(timeout, int) and timeout > 0:
                out, _ = await asyncio.wait_for(proc.communicate(), timeout)
            else:
                out, _ = await proc.communicate()
        except asyncio.TimeoutError:
            self._kill(proc)
            await proc.wait()
            return self._daemon_error(request, 408, "command execution timeout", "PROCESS_EXECUTION_TIMEOUT")
        except asyncio.CancelledError:
            # client went away: like the daemon's request context, the process dies with it
            self._kill(proc)
            raise
        finally:
            sandbox.processes.discard(proc)
        assert proc.returncode is not None
        return proc.returncode, out

    async def execute(self, request: web.Request) -> web.StreamResponse:
        sandbox = self.sandboxes[request.match_info["sid"]]
        body = await request.json()
        command = body.get("command")
        if not isinstance(command, str) or not command.strip():
            return self._daemon_error(request, 400, "command is required", "BAD_REQUEST")
        argv = _legacy_split(command) if self.legacy_exec else [self.exec_shell, "-c", command]
        ran = await self._run_combined(
            request, sandbox, argv, cwd=body.get("cwd"), env=body.get("envs"), timeout=body.get("timeout")
        )
        if isinstance(ran, web.StreamResponse):
            return ran
        code, out = ran
        if self._flag(request, "omit_exit_code"):
            return web.json_response({"result": out.decode("utf-8", "replace")})
        return web.json_response({"exitCode": code, "result": out.decode("utf-8", "replace")})

    async def code_run(self, request: web.Request) -> web.StreamResponse:
        sandbox = self.sandboxes[request.match_info["sid"]]
        body = await request.json()
        code, language = body.get("code"), body.get("language")
        if not isinstance(code, str):
            return self._daemon_error(request, 400, "code is required", "BAD_REQUEST")
        argv_extra = " ".join(_shell_quote(a) for a in body.get("argv") or [])
        if language == "python":
            b64 = base64.b64encode(code.encode()).decode()
            shell = f"printf '%s' '{b64}' | base64 -d | python3 -u - {argv_extra}"
        elif language == "javascript":
            b64 = base64.b64encode((JS_PREFIX + code).encode()).decode()
            shell = f"printf '%s' '{b64}' | base64 -d | node - {argv_extra}"
        elif language == "typescript":
            b64 = base64.b64encode((JS_PREFIX + code).encode()).decode()
            path = f"/tmp/dtn_{uuid.uuid4().hex[:8]}.ts"
            shell = (
                f"printf '%s' '{b64}' | base64 -d > {path}; npx ts-node -T {path} {argv_extra}; "
                f"rc=$?; rm -f {path}; exit $rc"
            )
        else:
            return self._daemon_error(request, 400, f"unsupported language: {language}", "BAD_REQUEST")
        ran = await self._run_combined(
            request, sandbox, ["sh", "-c", shell], cwd=None, env=body.get("envs"), timeout=body.get("timeout")
        )
        if isinstance(ran, web.StreamResponse):
            return ran
        exit_code, out = ran
        charts: list[Any] = []
        lines = []
        for line in out.decode("utf-8", "replace").splitlines(keepends=True):
            if line.startswith(ARTIFACT_PREFIX):
                with contextlib.suppress(ValueError):
                    artifact = json.loads(line[len(ARTIFACT_PREFIX) :])
                    if artifact.get("type") == "chart":
                        charts.append(artifact.get("value"))
                continue
            lines.append(line)
        if self._flag(request, "omit_exit_code"):
            return web.json_response({"result": "".join(lines), "artifacts": {"charts": charts}})
        return web.json_response({"exitCode": exit_code, "result": "".join(lines), "artifacts": {"charts": charts}})

    # ------------------------------------------------------------------ sessions
    def _session(self, request: web.Request) -> tuple[FakeSandbox, FakeSession | None]:
        sandbox = self.sandboxes[request.match_info["sid"]]
        return sandbox, sandbox.sessions.get(request.match_info["session"])

    async def create_session(self, request: web.Request) -> web.Response:
        sandbox = self.sandboxes[request.match_info["sid"]]
        body = await request.json()
        sid = body.get("sessionId")
        if not isinstance(sid, str) or not sid:
            return self._daemon_error(request, 400, "sessionId is required", "BAD_REQUEST")
        if sid in sandbox.sessions:
            return self._daemon_error(request, 409, f"session {sid} already exists", "CONFLICT")
        sandbox.sessions[sid] = FakeSession(sid)
        return web.Response(status=201)

    def _session_json(self, session: FakeSession) -> dict[str, Any]:
        return {
            "sessionId": session.id,
            "commands": [
                {"id": c.id, "command": c.command, "exitCode": c.exit_code} for c in session.commands.values()
            ],
        }

    async def list_sessions(self, request: web.Request) -> web.Response:
        sandbox = self.sandboxes[request.match_info["sid"]]
        return web.json_response([self._session_json(s) for s in sandbox.sessions.values()])

    async def get_session(self, request: web.Request) -> web.Response:
        _, session = self._session(request)
        if session is None:
            return self._daemon_error(request, 404, "session not found", "SESSION_NOT_FOUND")
        return web.json_response(self._session_json(session))

    async def delete_session(self, request: web.Request) -> web.Response:
        sandbox, session = self._session(request)
        if session is None:
            return self._daemon_error(request, 404, "session not found", "SESSION_NOT_FOUND")
        for command in session.commands.values():
            if command.proc is not None:
                self._kill(command.proc)
        del sandbox.sessions[session.id]
        return web.Response(status=204)

    async def _pump(self, sandbox: FakeSandbox, command: FakeCommand) -> None:
        proc = command.proc
        assert proc is not None and proc.stdout is not None and proc.stderr is not None

        async def read(stream: asyncio.StreamReader, name: str) -> None:
            while True:
                data = await stream.read(65536)
                if not data:
                    return
                command.chunks.append((name, data))
                command.changed.set()

        try:
            await asyncio.gather(read(proc.stdout, "stdout"), read(proc.stderr, "stderr"))
            rc = await proc.wait()
        finally:
            sandbox.processes.discard(proc)
        # killed by a signal → like a shell: 128 + signal
        command.exit_code = rc if rc >= 0 else 128 - rc
        command.done.set()
        command.changed.set()

    async def session_exec(self, request: web.Request) -> web.StreamResponse:
        sandbox, session = self._session(request)
        if session is None:
            return self._daemon_error(request, 404, "session not found", "SESSION_NOT_FOUND")
        body = await request.json()
        command_text = body.get("command")
        if not isinstance(command_text, str) or not command_text.strip():
            return self._daemon_error(request, 400, "command is required", "BAD_REQUEST")
        command = FakeCommand(id=str(uuid.uuid4()), command=command_text)
        argv = [self.exec_shell, "-c", command_text]
        # as the daemon: a session command's stdin is a pipe that send_session_command_input writes to
        command.proc = await self._spawn(sandbox, argv, cwd=None, env=None, split=True, stdin=asyncio.subprocess.PIPE)
        session.commands[command.id] = command
        pump = asyncio.ensure_future(self._pump(sandbox, command))
        if self._flag(request, "drop_after_start"):
            return self._drop(request)
        if body.get("runAsync") or body.get("async"):
            return web.json_response({"cmdId": command.id}, status=202)
        await asyncio.shield(pump)
        return web.json_response(
            {
                "cmdId": command.id,
                "exitCode": command.exit_code,
                "output": command.output(),
                "stdout": command.stream("stdout"),
                "stderr": command.stream("stderr"),
            }
        )

    def _command(self, request: web.Request) -> FakeCommand | web.Response:
        _, session = self._session(request)
        if session is None:
            return self._daemon_error(request, 404, "session not found", "SESSION_NOT_FOUND")
        command = session.commands.get(request.match_info["cmd"])
        if command is None:
            return self._daemon_error(request, 404, "command not found", "COMMAND_NOT_FOUND")
        return command

    async def get_command(self, request: web.Request) -> web.Response:
        command = self._command(request)
        if isinstance(command, web.Response):
            return command
        return web.json_response({"id": command.id, "command": command.command, "exitCode": command.exit_code})

    async def command_input(self, request: web.Request) -> web.Response:
        command = self._command(request)
        if isinstance(command, web.Response):
            return command
        data = (await request.json()).get("data")
        if not isinstance(data, str):
            return self._daemon_error(request, 400, "data is required", "BAD_REQUEST")
        proc = command.proc
        if proc is None or proc.stdin is None or command.done.is_set():
            return self._daemon_error(request, 409, "command is not running", "COMMAND_NOT_RUNNING")
        try:
            proc.stdin.write(data.encode())
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            return self._daemon_error(request, 409, "command is not running", "COMMAND_NOT_RUNNING")
        return web.Response(status=204)

    async def terminate_command(self, request: web.Request) -> web.Response:
        command = self._command(request)
        if isinstance(command, web.Response):
            return command
        if command.proc is not None:
            self._kill(command.proc)
        return web.Response(status=204)

    async def command_logs(self, request: web.Request) -> web.StreamResponse:
        command = self._command(request)
        if isinstance(command, web.Response):
            return command
        if request.query.get("follow") != "true":
            return web.json_response(
                {"output": command.output(), "stdout": command.stream("stdout"), "stderr": command.stream("stderr")}
            )
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sent = 0
        current: str | None = None
        try:
            while True:
                command.changed.clear()
                while sent < len(command.chunks):
                    name, data = command.chunks[sent]
                    sent += 1
                    if name != current:
                        data = (STDOUT_MARKER if name == "stdout" else STDERR_MARKER) + data
                        current = name
                    await ws.send_bytes(data)
                if command.done.is_set() and sent >= len(command.chunks):
                    break
                await command.changed.wait()
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        await ws.close(code=1000)
        return ws

    # ------------------------------------------------------------------ files
    def _path(self, sandbox: FakeSandbox, path: str) -> str:
        return path if os.path.isabs(path) else os.path.join(sandbox.workdir, path)

    async def work_dir(self, request: web.Request) -> web.Response:
        return web.json_response({"dir": self.sandboxes[request.match_info["sid"]].workdir})

    async def list_files(self, request: web.Request) -> web.Response:
        sandbox = self.sandboxes[request.match_info["sid"]]
        path = self._path(sandbox, request.query.get("path", ""))
        if not os.path.isdir(path):
            return self._daemon_error(request, 404, f"directory not found: {path}", "FILE_NOT_FOUND")
        items = []
        for entry in os.scandir(path):
            st = entry.stat(follow_symlinks=False)
            items.append(
                {
                    "name": entry.name,
                    "isDir": entry.is_dir(),
                    "size": st.st_size,
                    "mode": oct(st.st_mode),
                    "modTime": datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat(),
                    "permissions": oct(st.st_mode & 0o777),
                    "owner": "daytona",
                    "group": "daytona",
                }
            )
        return web.json_response(items)

    async def delete_file(self, request: web.Request) -> web.Response:
        sandbox = self.sandboxes[request.match_info["sid"]]
        path = self._path(sandbox, request.query.get("path", ""))
        if not os.path.lexists(path):
            return self._daemon_error(request, 404, f"file not found: {path}", "FILE_NOT_FOUND")
        if os.path.isdir(path) and not os.path.islink(path):
            if request.query.get("recursive") == "true":
                shutil.rmtree(path)
            else:
                try:
                    os.rmdir(path)
                except OSError as exc:
                    return self._daemon_error(request, 400, str(exc), "BAD_REQUEST")
        else:
            os.unlink(path)
        return web.Response(status=204)

    async def upload_files(self, request: web.Request) -> web.Response:
        sandbox = self.sandboxes[request.match_info["sid"]]
        reader = await request.multipart()
        paths: dict[str, str] = {}
        contents: dict[str, bytes] = {}
        while True:
            part = await reader.next()
            if part is None:
                break
            name = getattr(part, "name", None) or ""
            match = re.fullmatch(r"files\[(\d+)\]\.(path|file)", name)
            if not match:
                continue
            data = await part.read()  # type: ignore[union-attr]
            if match.group(2) == "path":
                paths[match.group(1)] = data.decode()
            else:
                contents[match.group(1)] = bytes(data)
        for index, path in paths.items():
            target = self._path(sandbox, path)
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(contents.get(index, b""))
        return web.Response(status=200)

    async def download_files(self, request: web.Request) -> web.StreamResponse:
        sandbox = self.sandboxes[request.match_info["sid"]]
        body = await request.json()
        with MultipartWriter("form-data") as writer:
            for path in body.get("paths") or []:
                target = self._path(sandbox, path)
                if os.path.isfile(target):
                    with open(target, "rb") as fh:
                        part = writer.append(fh.read(), {"Content-Type": "application/octet-stream"})
                    part.set_content_disposition("form-data", quote_fields=False, name="file", filename=path)
                else:
                    error = {"message": f"file not found: {path}", "statusCode": 404, "code": "FILE_NOT_FOUND"}
                    part = writer.append_json(error)
                    part.set_content_disposition("form-data", quote_fields=False, name="error", filename=path)
        response = web.Response(status=200, body=writer)
        return response

    # ------------------------------------------------------------------ helpers for tests
    def sandbox_ids(self) -> list[str]:
        return list(self.sandboxes)

    def only_sandbox(self) -> FakeSandbox:
        (sandbox,) = self.sandboxes.values()
        return sandbox

    def running_processes(self) -> Iterator[int]:
        for sandbox in list(self.sandboxes.values()):
            for proc in list(sandbox.processes):
                if proc.returncode is None:
                    yield proc.pid


def _shell_quote(arg: str) -> str:
    return "'" + str(arg).replace("'", "'\\''") + "'"
