"""The SDK client and the sandboxes it makes: one :class:`Slot` per sandbox spec, created lazily (with bounded
retries), adopted again under a new event loop, recovered after a stop or a deletion, and deleted on reset/close."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from daytona_lsp.core.daytona.cleanup import track, untrack
from daytona_lsp.core.daytona.errors import is_retryable_create
from daytona_lsp.core.daytona.spec import Spec
from daytona_lsp.core.secrets import redact

if TYPE_CHECKING:
    from daytona import AsyncDaytona, AsyncSandbox

log = logging.getLogger(__name__)


def _new_client(spec: Spec) -> AsyncDaytona:
    from daytona import AsyncDaytona, DaytonaConfig

    return AsyncDaytona(DaytonaConfig(api_key=spec.api_key, api_url=spec.api_url, target=spec.target))


@dataclass
class Slot:
    """One sandbox spec's client, sandbox and pooled sessions, bound to one event loop."""

    spec: Spec
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    client: AsyncDaytona | None = None
    sandbox: AsyncSandbox | None = None
    generation: int = 0
    creating: asyncio.Future[tuple[AsyncSandbox, int]] | None = None
    idle_sessions: list[str] = field(default_factory=list)
    session_generation: int = -1
    loop: asyncio.AbstractEventLoop | None = None
    adopt_id: str | None = None
    """A sandbox made under another event loop, to be picked up again by this loop's client."""
    failed: bool = False
    """The last attempt to create the sandbox failed (until one succeeds)."""


class SandboxPool:
    """The slots of one environment and how their sandboxes are made, kept and removed."""

    def __init__(self, *, create_timeout: float, create_retries: int, retry_backoff: float) -> None:
        self._create_timeout = create_timeout
        self._create_retries = create_retries
        self._retry_backoff = retry_backoff
        self.slots: dict[Spec, Slot] = {}
        self.closed = False
        self.abandoned: list[AsyncDaytona] = []

    def slot_for(self, spec: Spec) -> Slot:
        slot = self.slots.get(spec)
        if slot is None:
            slot = self.slots[spec] = Slot(spec)
        return slot

    async def _client(self, slot: Slot) -> AsyncDaytona:
        if slot.client is None:
            # in a worker thread: the constructor blocks (it loads CA certificates for two SSL contexts, ~50-150 ms);
            # the SDK makes its HTTP session and Socket.IO connection later, on the loop, at the first request
            slot.client = await asyncio.to_thread(_new_client, slot.spec)
        return slot.client

    def bind(self, slot: Slot) -> None:
        """Make the slot usable from the running event loop. The SDK client (its HTTP session), the lock and the
        sandbox object belong to the loop they were made in: after ``asyncio.run`` ends, a later run in a new loop
        gets a new client and picks the same sandbox up again by id."""
        loop = asyncio.get_running_loop()
        if slot.loop is loop:
            return
        if slot.loop is not None:
            if slot.sandbox is not None:
                slot.adopt_id = slot.sandbox.id
            slot.sandbox = None
            if slot.client is not None:
                self.abandoned.append(slot.client)
            slot.client = None
            slot.creating = None
            slot.idle_sessions.clear()
            slot.lock = asyncio.Lock()
        slot.loop = loop

    async def close_abandoned(self) -> None:
        """Close clients left behind by a finished event loop. Their loop is gone, so this mostly marks them
        closed (so they are not reported as leaked); any error is irrelevant."""
        while self.abandoned:
            client = self.abandoned.pop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 5)

    async def ensure(self, slot: Slot) -> tuple[AsyncSandbox, int]:
        self.bind(slot)
        if self.abandoned:
            await self.close_abandoned()
        sandbox = slot.sandbox
        if sandbox is not None:
            return sandbox, slot.generation
        # Creation runs as its own task: a run cancelled while waiting does not waste (or leak) the sandbox,
        # the next run gets it, and aclose waits for it.
        if slot.creating is None or slot.creating.done():
            slot.creating = asyncio.ensure_future(self._create_locked(slot))
            slot.creating.add_done_callback(lambda f: f.cancelled() or f.exception())
        return await asyncio.shield(slot.creating)

    async def _create_locked(self, slot: Slot) -> tuple[AsyncSandbox, int]:
        async with slot.lock:
            if slot.sandbox is None and slot.adopt_id is not None:
                await self._adopt(slot)
            if slot.sandbox is None:
                if self.closed:
                    raise ValueError("this Daytona environment is closed")
                try:
                    await self._create(slot)
                except Exception:
                    slot.failed = True
                    raise
            slot.failed = False
            assert slot.sandbox is not None
            return slot.sandbox, slot.generation

    def _create_params(self, spec: Spec) -> Any:
        from daytona import CreateSandboxFromImageParams, CreateSandboxFromSnapshotParams, Resources

        common: dict[str, Any] = {
            "language": "python",
            "env_vars": dict(spec.env_vars),
            "labels": dict(spec.labels),
            "auto_stop_interval": spec.auto_stop_interval,
            "auto_delete_interval": spec.auto_delete_interval,
        }
        if spec.image:
            resources = None
            if spec.resources is not None:
                r = spec.resources
                resources = Resources(cpu=r.cpu, memory=r.memory, disk=r.disk)
            return CreateSandboxFromImageParams(image=spec.image, resources=resources, **common)
        return CreateSandboxFromSnapshotParams(snapshot=spec.snapshot, **common)

    async def _create(self, slot: Slot) -> None:
        """Create the slot's sandbox (lock held), retrying 429/5xx/connection errors with bounded backoff."""
        spec = slot.spec
        client = await self._client(slot)
        attempt = 0
        try:
            while True:
                try:
                    sandbox = await client.create(self._create_params(spec), timeout=self._create_timeout)
                    break
                except Exception as exc:
                    leaked = getattr(exc, "sandbox_id", None)
                    if leaked:
                        await self._delete_id(client, leaked, spec.api_key)
                    if attempt >= self._create_retries or not is_retryable_create(exc):
                        raise
                    delay = min(self._retry_backoff * (2**attempt), 10.0) * (0.5 + random.random() / 2)
                    attempt += 1
                    log.info(
                        "Daytona sandbox creation failed (%s); retry %d in %.1f s", type(exc).__name__, attempt, delay
                    )
                    await asyncio.sleep(delay)
        except BaseException:
            # a failed creation leaks no client
            slot.client = None
            with contextlib.suppress(Exception):
                await client.close()
            raise
        track(spec, sandbox.id)
        slot.sandbox = sandbox
        slot.generation += 1
        if self.closed:  # closed while we were creating: nothing may outlive aclose
            await self.discard(slot, delete=True)
            raise ValueError("this Daytona environment was closed while its sandbox was being created")

    async def _adopt(self, slot: Slot) -> None:
        """Pick up the sandbox made under another event loop (lock held); forget it when it is gone."""
        from daytona import DaytonaNotFoundError, SandboxState

        sandbox_id, slot.adopt_id = slot.adopt_id, None
        assert sandbox_id is not None
        client = await self._client(slot)
        try:
            sandbox = await client.get(sandbox_id)
        except DaytonaNotFoundError:
            untrack(slot.spec, sandbox_id)
            return
        if sandbox.state in (SandboxState.DESTROYED, SandboxState.DESTROYING):
            untrack(slot.spec, sandbox_id)
            return
        slot.sandbox = sandbox
        slot.generation += 1
        if sandbox.state != SandboxState.STARTED:
            await sandbox.start(timeout=self._create_timeout)

    async def _delete_id(self, client: AsyncDaytona, sandbox_id: str, api_key: str) -> bool:
        """Delete a sandbox known by id only; True when it is gone."""
        from daytona import DaytonaNotFoundError

        try:
            await client.delete(await client.get(sandbox_id), timeout=30)
        except DaytonaNotFoundError:
            return True
        except Exception as exc:  # noqa: BLE001 - best effort
            log.warning("could not delete Daytona sandbox %s: %s", sandbox_id, redact(str(exc), api_key))
            return False
        return True

    async def discard(self, slot: Slot, *, delete: bool) -> None:
        """Forget (and optionally delete) the slot's sandbox and close its client. Lock held by the caller.
        A sandbox that could not be deleted stays on the list the interpreter-exit cleanup deletes."""
        from daytona import DaytonaNotFoundError

        sandbox, client, adopt_id = slot.sandbox, slot.client, slot.adopt_id
        slot.sandbox, slot.client, slot.adopt_id = None, None, None
        slot.idle_sessions.clear()
        spec = slot.spec
        if sandbox is not None:
            gone = not delete
            if delete:
                try:
                    await sandbox.delete(timeout=30)
                    gone = True
                except DaytonaNotFoundError:
                    gone = True
                except Exception as exc:  # noqa: BLE001 - unreachable: the exit cleanup tries again
                    log.info("Daytona sandbox %s not deleted: %s", sandbox.id, redact(str(exc), spec.api_key))
            if gone:
                untrack(spec, sandbox.id)
        if adopt_id is not None and delete:
            if client is None:
                client = await self._client(slot)
                slot.client = None
            if await self._delete_id(client, adopt_id, spec.api_key):
                untrack(spec, adopt_id)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    async def recover(self, slot: Slot, generation: int) -> bool:
        """After a refused toolbox request: start a stopped sandbox, or forget a deleted one so it is recreated.
        True when the run should be retried (it provably never started)."""
        from daytona import DaytonaNotFoundError, SandboxState

        async with slot.lock:
            if slot.generation != generation or slot.sandbox is None:
                return True  # someone else already recovered it
            sandbox = slot.sandbox
            try:
                await sandbox.refresh_data()
            except DaytonaNotFoundError:
                log.info("Daytona sandbox %s is gone; creating a new one", sandbox.id)
                untrack(slot.spec, sandbox.id)
                slot.sandbox = None
                await self._create(slot)
                return True
            state = sandbox.state
            if state == SandboxState.STARTED:
                return False
            if state in (
                SandboxState.DESTROYED,
                SandboxState.DESTROYING,
                SandboxState.ERROR,
                SandboxState.BUILD_FAILED,
            ):
                log.info("Daytona sandbox %s is %s; creating a new one", sandbox.id, state)
                await self.discard(slot, delete=state != SandboxState.DESTROYED)
                await self._create(slot)
                return True
            log.info("Daytona sandbox %s is %s; starting it", sandbox.id, state)
            if state in (SandboxState.STOPPING, SandboxState.ARCHIVING):
                await sandbox.wait_for_sandbox_stop(timeout=self._create_timeout)
            await sandbox.start(timeout=self._create_timeout)
            slot.generation += 1
            return True
