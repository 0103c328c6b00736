"""The run service's environments (no LSP types): building one from settings (:func:`default_environment_factory`,
in a worker thread) and the slot that holds one workspace's environment for one sandbox spec
(:class:`EnvironmentSlot`), with what the service asks the environment about its sandbox."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daytona_lsp.core.environment import CodeEnvironment, CodeRunResult
from daytona_lsp.core.secrets import api_key, redact
from daytona_lsp.lsp.settings import Settings

log = logging.getLogger(__name__)

EnvironmentFactory = Callable[[Settings], CodeEnvironment]
"""Builds an environment from settings. Called in a worker thread (it may import the Daytona SDK)."""


def resolve_backend(settings: Settings) -> str:
    """``daytona`` or ``local`` for these settings (``auto``: Daytona when an API key is set)."""
    from daytona_lsp.core.select import resolve_backend as core_resolve

    try:
        return core_resolve(settings.backend, api_key())
    except Exception:
        return settings.backend if settings.backend != "auto" else "local"


def default_environment_factory(settings: Settings) -> CodeEnvironment:
    """The real backends, through :func:`daytona_lsp.core.select.create_environment`."""
    from daytona_lsp.core.select import create_environment

    backend = resolve_backend(settings)
    daytona: dict[str, Any] = {}
    local: dict[str, Any] = {}
    if backend == "daytona":
        # the SDK takes over a second to import: do it here, in a worker thread, not on the event loop
        from daytona_lsp.core.daytona.sdk import load_sdk

        load_sdk()

        from daytona_lsp.core.daytona import DaytonaResources

        daytona = {
            "api_url": settings.api_url or None,
            "target": settings.target or None,
            "snapshot": settings.snapshot or None,
            "image": settings.image or None,
            "env_vars": dict(settings.env_vars) or None,
            "resources": DaytonaResources(**settings.resources) if settings.resources else None,
            "labels": dict(settings.labels) or None,
            "auto_stop_interval": settings.auto_stop_interval,
            "auto_delete_interval": settings.auto_delete_interval,
        }
    else:
        local = {**settings.local.environment_options(), "env_vars": dict(settings.env_vars) or None}
    return create_environment(
        backend,
        api_key=api_key(),
        timeout=max(1, math.ceil(settings.timeout)) if backend == "daytona" else settings.timeout,
        languages=tuple(settings.languages),  # type: ignore[arg-type]
        max_output_bytes=settings.max_output_bytes,
        daytona={k: v for k, v in daytona.items() if v is not None},
        local={k: v for k, v in local.items() if v is not None},
    )


@dataclass(eq=False)
class EnvironmentSlot:
    """One workspace's environment for one sandbox spec."""

    workspace: str
    spec: tuple[Any, ...]
    backend: str
    ready: asyncio.Future[CodeEnvironment]
    active: int = 0
    retired: bool = False
    closed: bool = False
    prewarming: bool = False
    error: str | None = None
    """Why the environment could not be built."""
    sandbox_error: str | None = None
    """Why the last attempt to create its sandbox failed (a run or prewarm), until one succeeds."""
    close_task: asyncio.Task[None] | None = None
    settings: Settings | None = None
    """The settings a run last found this slot with (the same object again: the same spec, not compared)."""

    def state(self) -> str:
        if self.closed:
            return "closed"
        if self.error or (self.sandbox_error and not self.active):
            return "error"
        if not self.ready.done() or self.prewarming:
            return "creating"
        return "running" if self.active else "ready"

    def built(self) -> CodeEnvironment | None:
        """The environment once it is built (None while building, or when building failed)."""
        if not self.ready.done() or self.ready.cancelled() or self.ready.exception() is not None:
            return None
        return self.ready.result()

    def sandbox_id(self) -> str | None:
        env = self.built()
        return env.sandbox_id if env is not None else None


async def close_env(env: CodeEnvironment) -> None:
    try:
        await env.aclose()
    except Exception as exc:
        log.warning("Closing an environment failed: %s", redact(str(exc)))


def reported_info(env: CodeEnvironment) -> dict[str, Any] | None:
    """What the environment says about its sandbox (``{"state", "sandboxId"?}``), None when it cannot say."""
    try:
        return dict(env.info())
    except Exception as exc:
        log.info("info() failed: %s", redact(str(exc)))
        return None


def note_sandbox(slot: EnvironmentSlot, env: CodeEnvironment, result: CodeRunResult) -> None:
    """After a run: a failed run that left no sandbox behind could not create it (401, quota…); remember why."""
    if result.exit_code == 0 and slot.sandbox_error is None:
        return  # (most runs: nothing to remember, nothing to forget)
    reported = reported_info(env)
    if reported is None:
        return
    state = reported.get("state")
    if state == "error" or (state in (None, "none") and result.exit_code != 0):
        slot.sandbox_error = first_line(redact(result.output)) or f"exit {result.exit_code}"
    elif state not in (None, "none"):
        slot.sandbox_error = None


def first_line(text: str) -> str:
    return next((line.strip()[:300] for line in text.splitlines() if line.strip()), "")
