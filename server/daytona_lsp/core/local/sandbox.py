"""The host side of one environment's sandbox: its private directory (work directory, ``/etc`` files, container
logs; as root a bounded tmpfs), its cgroup (total memory + swap, processes), its seccomp filters,
and its containers (one per network setting and set of runtimes; usually exactly one). Nothing here knows about
runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daytona_lsp.core import cgroup, seccomp
from daytona_lsp.core.cgroup import SandboxCgroup
from daytona_lsp.core.local import launch, limits
from daytona_lsp.core.local import workspace as workspace_view
from daytona_lsp.core.local.container import Container

log = logging.getLogger(__name__)

ContainerKey = tuple[bool, tuple[str, ...]]
"""What makes containers differ: (network, the host directories bound into it); and the workspace folder shown."""
CLOSED_MESSAGE = "This local sandbox environment is closed."
_swept = False
_warned_no_seccomp = False


class Sandbox:
    def __init__(self, owner: object, *, bwrap: str | None, given_work_dir: Path | None, disk_mb: int) -> None:
        """``bwrap`` None: unisolated (``isolation="none"``). Nothing is left behind once ``owner`` is gone.

        ``disk_mb``: the size of the bounded store (isolated, as root: see :func:`launch.make_root`)."""
        self._owner = weakref.ref(owner)
        self.bwrap = bwrap
        self.given_work_dir = given_work_dir
        self.disk_mb: int | None = disk_mb if bwrap is not None and os.geteuid() == 0 else None
        """The bounded store's size, where there is one."""
        self.root: Path | None = None
        self.cgroup: SandboxCgroup | None = None
        self.container_filter: seccomp.Filter | None = None
        """Loaded by bubblewrap into the container (allows the agent's per-run namespaces and mounts)."""
        self.run_filter: bytes | None = None
        """The strict filter each run loads on top (its BPF program)."""
        self.closed = False
        self.last: Container | None = None
        self._lock = asyncio.Lock()
        self._containers: dict[tuple[ContainerKey, str | None], Container] = {}
        self._scratch: dict[Container, Path] = {}  # each container's /tmp and /dev/shm in the bounded store
        self._layers: dict[Container, Path] = {}  # each workspace container's writable layer
        self._starting: dict[tuple[ContainerKey, str | None], asyncio.Future[Container]] = {}
        self._live: list[Container] = []  # what the finalizer kills (shared with it)
        self._finalizer: weakref.finalize | None = None
        self._logs = 0

    @property
    def isolated(self) -> bool:
        return self.bwrap is not None

    @property
    def work_dir(self) -> Path | None:
        """The host directory mounted at ``/workspace`` (``None`` before the first use)."""
        if self.given_work_dir is not None:
            return self.given_work_dir
        return self.root / "work" if self.root is not None else None

    @property
    def starting(self) -> bool:
        return bool(self._starting)

    async def ensure_root(self) -> Path:
        if self.root is not None:
            return self.root
        async with self._lock:
            if self.root is None:
                global _swept
                if not _swept:  # once per process: what a server that died (SIGKILL) left
                    _swept = True
                    removed = await asyncio.to_thread(launch.sweep_stale_roots)
                    if removed:
                        log.info("daytona-lsp: removed %d stale local sandbox directories", len(removed))
                # at the same time, in two threads (part of a first run's wait): the directory (and the filters),
                # and the container's total memory and its processes (root's are exempt from RLIMIT_NPROC, even
                # mapped into a user namespace) bounded by a cgroup where one is writable
                made_root, made_group = await asyncio.gather(
                    asyncio.to_thread(_make_root, self.given_work_dir, self.disk_mb, self.isolated),
                    asyncio.to_thread(_make_cgroup, self.isolated),
                    return_exceptions=True,
                )
                if isinstance(made_root, BaseException) or isinstance(made_group, BaseException):
                    await asyncio.to_thread(_undo, made_root, made_group)
                    raise made_root if isinstance(made_root, BaseException) else made_group  # type: ignore[misc]
                if self.closed:  # closed meanwhile (aclose found nothing to remove yet)
                    await asyncio.to_thread(_undo, made_root, made_group)
                    raise OSError(CLOSED_MESSAGE)
                root, (self.container_filter, self.run_filter) = made_root
                self.cgroup = made_group
                owner = self._owner()
                if owner is not None:  # an environment never closed still leaves nothing behind (gc, exit)
                    self._finalizer = weakref.finalize(owner, _remove_leftovers, root, self._live, self.cgroup)
                self.root = root
        return self.root

    async def container(self, key: ContainerKey, folder: str | None = None) -> tuple[Container, bool]:
        """The live container for ``key`` (showing the workspace ``folder``, if any), started if there is none (one
        start at a time); whether it replaces one that had ended on its own (killed from outside)."""
        await self.ensure_root()
        slot = (key, folder)
        container = self._containers.get(slot)
        if container is not None and container.alive:
            return container, False
        if container is not None:
            log.warning("daytona-lsp: the local sandbox container %s had stopped; starting a new one", container.id)
            del self._containers[slot]
            await self._close([container])
        starting = self._starting.get(slot)
        if starting is None:
            starting = asyncio.ensure_future(self._start(key, folder))
            self._starting[slot] = starting
            starting.add_done_callback(lambda _: self._starting.pop(slot, None))
        return await asyncio.shield(starting), container is not None

    async def _start(self, key: ContainerKey, folder: str | None) -> Container:
        root = await self.ensure_root()
        network, binds = key
        work_dir = self.work_dir
        assert work_dir is not None
        self._logs += 1
        bwrap = self.bwrap

        scratch = None
        if self.disk_mb is not None:
            scratch = root / f"container-{self._logs}"
            for name in ("tmp", "shm"):
                (scratch / name).mkdir(0o1777, parents=True)
        layer = await asyncio.to_thread(workspace_view.make_layer, root) if folder and bwrap is not None else None
        seccomp_fd = self.container_filter.memfd() if self.container_filter is not None else None

        def argv(control_fd: int, info_fd: int, block_fd: int) -> list[str]:
            agent = launch.agent_argv(sys.executable, root, control_fd, isolated=bwrap is not None)
            if bwrap is None:
                return agent
            head = launch.container_argv(
                bwrap,
                root,
                work_dir,
                binds,
                network=network,
                info_fd=info_fd,
                block_fd=block_fd,
                seccomp_fd=seccomp_fd,
                scratch=scratch,
                workspace=(folder, layer) if folder and layer is not None else None,
            )
            return [*head, *agent]

        group = self.cgroup
        try:
            container = await Container.start(
                argv,
                isolated=self.isolated,
                log_path=root / f"container-{self._logs}.log",
                confine=lambda pid, parent: limits.confine_container(pid, parent, group),
                confine_blocks=group is not None,
                cwd=None if self.isolated else str(work_dir),
                extra_fds=() if seccomp_fd is None else (seccomp_fd,),
            )
        except BaseException:
            if scratch is not None:
                await asyncio.to_thread(shutil.rmtree, scratch, True)
            if layer is not None:
                await asyncio.to_thread(workspace_view.remove_tree, layer)
            raise
        finally:
            if seccomp_fd is not None:
                os.close(seccomp_fd)
        if self.closed:
            await container.close()
            raise OSError(CLOSED_MESSAGE)
        self._containers[(key, folder)] = container
        self._live.append(container)
        if scratch is not None:
            self._scratch[container] = scratch
        if layer is not None:
            self._layers[container] = layer
        self.last = container
        return container

    async def close_containers(self) -> None:
        containers = list(self._containers.values())
        self._containers.clear()
        for future in list(self._starting.values()):
            with contextlib.suppress(BaseException):
                containers.append(await asyncio.shield(future))
        self._containers.clear()
        await self._close(containers)

    async def _close(self, containers: Sequence[Container]) -> None:
        await asyncio.gather(*(c.close() for c in containers), return_exceptions=True)
        for c in containers:
            with contextlib.suppress(ValueError):
                self._live.remove(c)
            scratch = self._scratch.pop(c, None)
            if scratch is not None:
                await asyncio.to_thread(shutil.rmtree, scratch, True)
            layer = self._layers.pop(c, None)
            if layer is not None:
                await asyncio.to_thread(workspace_view.remove_tree, layer)

    def layer(self, container: Container) -> Path | None:
        """The container's writable layer over the workspace folder (None: it shows none)."""
        return self._layers.get(container)

    def disk_note(self) -> str:
        """The line a run adds when it left the bounded store full, else ``""``."""
        if self.disk_mb is None or self.root is None:
            return ""
        return launch.disk_full_note(self.root, self.disk_mb)

    def start_problem(self, exc: OSError) -> str:
        """What to tell the user when a container did not start."""
        if str(exc) == CLOSED_MESSAGE:
            return CLOSED_MESSAGE
        if self.bwrap is None:
            return f"Could not start the local runner: {exc}"
        return launch.start_problem(self.bwrap, str(exc) or type(exc).__name__)

    async def empty_work_dir(self) -> None:
        work_dir = self.work_dir
        if self.given_work_dir is None and work_dir is not None and work_dir.exists():
            await asyncio.to_thread(shutil.rmtree, work_dir, True)
            work_dir.mkdir()

    async def aclose(self) -> None:
        """Tear the containers down, remove the private directory and the cgroup. Idempotent."""
        self.closed = True
        await self.close_containers()
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            await asyncio.to_thread(finalizer)
        self.root = None
        self.cgroup = None


def _make_root(
    given_work_dir: Path | None, disk_mb: int | None, isolated: bool
) -> tuple[Path, tuple[seccomp.Filter | None, bytes | None]]:
    """The private directory and (isolated) the seccomp filters."""
    return launch.make_root(given_work_dir, disk_mb), _filters() if isolated else (None, None)


def _make_cgroup(isolated: bool) -> SandboxCgroup | None:
    """(Isolated) a cgroup for the sandbox where one is writable, and (v1) a thread that takes the migration lock's
    slow first step now, while the container is prepared (:meth:`SandboxCgroup.pass_through`)."""
    group = cgroup.create(memory_bytes=None, max_pids=None) if isolated else None
    if group is not None and group.version == 1:
        threading.Thread(target=group.pass_through, name="daytona-lsp-cgroup", daemon=True).start()
    return group


def _undo(made_root: Any, made_group: Any) -> None:
    """One of ``ensure_root``'s two jobs failed: remove what the other made."""
    if not isinstance(made_root, BaseException):
        launch.remove_root(made_root[0])
    if isinstance(made_group, SandboxCgroup):
        made_group.remove()


def _filters() -> tuple[seccomp.Filter | None, bytes | None]:
    """The container's and the runs' seccomp filters (compiled once per process); a warning, once, without them."""
    global _warned_no_seccomp
    container, run = seccomp.build(allow_mounts=True), seccomp.build(allow_new_pid_namespace=False)
    if container is None or run is None:
        if not _warned_no_seccomp:
            _warned_no_seccomp = True
            log.warning(
                "daytona-lsp: the local sandbox runs without its seccomp filter (%s): io_uring, keyctl, ptrace, bpf "
                "and the other denied system calls stay available to the code (namespaces, dropped capabilities and "
                "the limits still apply).",
                seccomp.unavailable_reason(),
            )
        return None, None
    return container, run.program


def _remove_leftovers(root: Path, live: Sequence[Container], group: SandboxCgroup | None) -> None:
    for container in live:
        container.kill()
    launch.remove_root(root)
    if group is not None:
        group.remove()
