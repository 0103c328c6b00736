"""One local sandbox container, seen from the host: a bubblewrap process with the agent inside, and the control
socket to it (SOCK_SEQPACKET: one JSON message per packet, file descriptors passed along; see ``agent.py``).

Starting: bubblewrap reports the container's pid 1 (``--info-fd``) and waits (``--block-fd``) until the container is
confined (:func:`~daytona_lsp.core.local.limits.confine_container`); then the agent says it is ready. The container
lives until :meth:`Container.close`, the server's death (``--die-with-parent``; the agent also ends when the control
socket closes) or a kill from outside, which :attr:`Container.alive` shows at once (the control socket closes).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import json
import logging
import marshal
import os
import signal
import socket
import subprocess
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
_GONE_TIMEOUT_S = 5.0


class ContainerGone(Exception):
    """The container ended while a run was in it (killed from outside, or closed)."""


@dataclass(eq=False)
class Ticket:
    """One run inside the container: ``exit`` resolves to the exit code the agent reports."""

    id: str
    exit: asyncio.Future[int]
    error: str = ""


@dataclass(eq=False)
class Container:
    id: str
    process: subprocess.Popen[bytes]
    sock: socket.socket
    log_path: Path
    pid1: int = -1
    """Host pid of the container's pid 1 (isolated); killing it ends everything in the container."""
    tickets: dict[str, Ticket] = field(default_factory=dict)
    alive: bool = True
    _pidfd: int = -1
    _buffer: list[dict[str, Any]] = field(default_factory=list)
    _waiter: asyncio.Future[None] | None = None

    # -- starting -------------------------------------------------------------------------------------------------

    @classmethod
    async def start(
        cls,
        argv: Callable[[int, int, int], list[str]],
        *,
        isolated: bool,
        log_path: Path,
        confine: Callable[[int, int], str | None],
        confine_blocks: bool,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        extra_fds: Sequence[int] = (),
    ) -> Container:
        """Start a container; ``argv(control_fd, info_fd, block_fd)`` gives its command line; ``extra_fds`` are
        inherited too (the caller closes them). ``confine(pid1, bubblewrap's pid)`` confines it (in a worker thread
        when ``confine_blocks``).

        Raises ``OSError`` (with bubblewrap's last words) when it cannot start."""
        loop = asyncio.get_running_loop()
        host, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        info_r, info_w = os.pipe() if isolated else (-1, -1)
        block_r, block_w = os.pipe() if isolated else (-1, -1)
        pass_fds = [fd for fd in (child.fileno(), info_w, block_r, *extra_fds) if fd != -1]
        command = argv(child.fileno(), info_w, block_r)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)

        def spawn() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                env=dict(env or {}),
                cwd=cwd,
                start_new_session=True,
                pass_fds=pass_fds,
            )

        try:
            # on the loop's thread (a vfork: as quick as a hand-over to a thread would be), which bubblewrap dies
            # with (--die-with-parent: the parent is the thread)
            process = spawn()
        except BaseException:
            for fd in (info_r, info_w, block_r, block_w):
                if fd != -1:
                    os.close(fd)
            host.close()
            raise
        finally:
            os.close(log_fd)
            child.close()
        container = cls(id=f"local-{uuid.uuid4().hex[:12]}", process=process, sock=host, log_path=log_path)
        try:
            if isolated:
                os.close(info_w)
                os.close(block_r)
                info_w = block_r = -1
                await container._confine_pid1(info_r, block_w, confine, confine_blocks)
            else:
                container.pid1 = process.pid
            host.setblocking(False)
            loop.add_reader(host, container._readable)
            ready = await asyncio.wait_for(container._next_message(), START_TIMEOUT_S)
            if "ready" not in ready:
                raise OSError(f"unexpected first message from the sandbox agent: {ready}")
        except BaseException as exc:
            await container.close()
            if isinstance(exc, (OSError, asyncio.TimeoutError, ContainerGone)):
                raise OSError(container.last_words() or str(exc) or type(exc).__name__) from None
            raise
        finally:
            for fd in (info_r, info_w, block_r, block_w):
                if fd != -1:
                    with contextlib.suppress(OSError):
                        os.close(fd)
        return container

    async def _confine_pid1(
        self, info_r: int, block_w: int, confine: Callable[[int, int], str | None], blocks: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        text = await _read_async(info_r)
        try:
            pid = json.loads(text)["child-pid"]
        except (ValueError, KeyError, TypeError):
            raise OSError("bubblewrap did not start the sandbox") from None
        self.pid1 = int(pid)
        with contextlib.suppress(OSError):
            self._pidfd = os.pidfd_open(self.pid1)
        parent = self.process.pid
        problem = await loop.run_in_executor(None, confine, self.pid1, parent) if blocks else confine(self.pid1, parent)
        if problem is not None:
            raise OSError(problem)
        os.write(block_w, b"x")  # go: the agent starts

    def last_words(self) -> str:
        """The last line bubblewrap or the agent wrote (why a container did not start)."""
        with contextlib.suppress(OSError):
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
            if lines:
                return lines[-1][-500:]
        code = self.process.poll()
        return f"exit status {code}" if code is not None else ""

    # -- messages -------------------------------------------------------------------------------------------------

    def _readable(self) -> None:
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._gone()
                return
            try:
                message = json.loads(data)
            except ValueError:
                log.error("daytona-lsp: unreadable message from the sandbox agent: %r", data[:200])
                continue
            ticket = self.tickets.get(str(message.get("id")))
            if ticket is not None:
                self.tickets.pop(ticket.id)
                if not ticket.exit.done():
                    ticket.error = str(message.get("error") or "")
                    ticket.exit.set_result(int(message.get("exit", 125)))
            else:
                self._buffer.append(message)
                if self._waiter is not None and not self._waiter.done():
                    self._waiter.set_result(None)

    async def _next_message(self) -> dict[str, Any]:
        while not self._buffer:
            if not self.alive:
                raise ContainerGone("the sandbox agent ended")
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._buffer.pop(0)

    def _gone(self) -> None:
        if not self.alive:
            return
        self.alive = False
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.sock)
        for ticket in self.tickets.values():
            if not ticket.exit.done():
                ticket.exit.set_exception(ContainerGone("the sandbox container ended"))
                ticket.exit.exception()  # retrieved: the run may have stopped waiting
        self.tickets.clear()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def submit(self, request: dict[str, Any], fds: Sequence[int]) -> Ticket:
        """Start a run; the agent gets its own copies of ``fds`` (the caller closes its own)."""
        if not self.alive:
            raise ContainerGone("the sandbox container ended")
        run_id = str(request["id"])
        ticket = Ticket(run_id, asyncio.get_running_loop().create_future())
        data = marshal.dumps(request)
        try:
            self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        except BlockingIOError:
            raise OSError("the sandbox agent is not taking requests") from None
        except OSError as exc:
            self._gone()
            raise ContainerGone(f"the sandbox container ended ({exc})") from None
        self.tickets[run_id] = ticket
        return ticket

    def kill_run(self, run_id: str) -> None:
        """Kill a run's whole process tree (the agent kills the run's namespace)."""
        if self.alive:
            with contextlib.suppress(OSError):
                self.sock.send(marshal.dumps({"op": "kill", "id": run_id}))

    def interrupt_run(self, run_id: str) -> None:
        """SIGINT to every process of a run (a session worker's running code; see ``agent.py``)."""
        if self.alive:
            with contextlib.suppress(OSError):
                self.sock.send(marshal.dumps({"op": "signal", "id": run_id, "sig": int(signal.SIGINT)}))

    # -- ending ---------------------------------------------------------------------------------------------------

    def kill(self) -> None:
        """Kill everything in the container at once."""
        if self._pidfd != -1:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)  # pid 1 dies: the whole container dies
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, signal.SIGKILL)

    async def close(self) -> None:
        """Kill the container and wait (bounded) until none of its processes is left. Idempotent."""
        self.kill()
        self._gone()
        with contextlib.suppress(OSError):
            self.sock.close()
        loop = asyncio.get_running_loop()
        for fd_owner in ("process", "pid1"):
            try:
                if fd_owner == "process":
                    await asyncio.wait_for(_wait_pid(loop, self.process), _GONE_TIMEOUT_S)
                elif self._pidfd != -1:
                    await asyncio.wait_for(_wait_fd(loop, self._pidfd), _GONE_TIMEOUT_S)
            except asyncio.TimeoutError:
                log.error("daytona-lsp: a sandbox container did not exit after SIGKILL")
        if self._pidfd != -1:
            os.close(self._pidfd)
            self._pidfd = -1


async def _read_async(fd: int) -> bytes:
    """bubblewrap's ``--info-fd`` JSON (complete), or what came before EOF."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    done: asyncio.Future[bytes] = loop.create_future()

    def readable() -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            chunks.append(data)
            try:
                json.loads(b"".join(chunks))
            except ValueError:
                return  # partial JSON: wait for the rest
        if not done.done():
            done.set_result(b"".join(chunks))

    loop.add_reader(fd, readable)
    try:
        return await asyncio.wait_for(done, START_TIMEOUT_S)
    finally:
        loop.remove_reader(fd)


async def _wait_fd(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


async def _wait_pid(loop: asyncio.AbstractEventLoop, process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        pidfd = os.pidfd_open(process.pid)
    except OSError:
        await asyncio.to_thread(process.wait)
        return
    try:
        await _wait_fd(loop, pidfd)
    finally:
        os.close(pidfd)
    process.wait()
