"""Sandboxes that outlive their environment: deleted at interpreter exit, and listed or cleaned by the CLI
(``daytona-lsp sandboxes list|clean``: only those labelled ``created-by: daytona-lsp``)."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from daytona_lsp.core.daytona.errors import sanitized
from daytona_lsp.core.daytona.spec import CREATED_BY_LABEL, CREATED_BY_VALUE, DEFAULT_API_URL, Spec, api_key_from
from daytona_lsp.core.secrets import redact

if TYPE_CHECKING:
    from daytona import AsyncDaytona, AsyncSandbox

log = logging.getLogger(__name__)

_live_lock = threading.Lock()
_live: dict[tuple[str, str, str | None, str], None] = {}
_atexit_registered = False


def track(spec: Spec, sandbox_id: str) -> None:
    global _atexit_registered
    with _live_lock:
        _live[(spec.api_key, spec.api_url, spec.target, sandbox_id)] = None
        if not _atexit_registered:
            atexit.register(_cleanup_at_exit)
            _atexit_registered = True


def untrack(spec: Spec, sandbox_id: str) -> None:
    with _live_lock:
        _live.pop((spec.api_key, spec.api_url, spec.target, sandbox_id), None)


def _cleanup_at_exit() -> None:
    """Delete sandboxes nobody closed.

    By now the program's event loop is gone and the interpreter refuses new executor work (aiohttp's resolver
    needs it), so this speaks plain HTTP with the standard library: ``DELETE {api_url}/sandbox/{id}``.
    """
    with _live_lock:
        pending = list(_live)
        _live.clear()
    for api_key, api_url, _target, sandbox_id in pending:
        _delete_now(api_key, api_url, sandbox_id)


def _delete_now(api_key: str, api_url: str, sandbox_id: str, timeout: float = 10) -> bool:
    import urllib.error
    import urllib.parse
    import urllib.request

    request = urllib.request.Request(
        f"{api_url}/sandbox/{urllib.parse.quote(sandbox_id, safe='')}",
        method="DELETE",
        headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json", "X-Daytona-Source": "daytona-lsp"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the configured API URL
            response.read()
        return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return True
        log.warning("daytona-lsp: could not delete sandbox %s at exit: HTTP %s", sandbox_id, exc.code)
    except Exception as exc:  # noqa: BLE001 - best effort at exit
        log.warning("daytona-lsp: could not delete sandbox %s at exit: %s", sandbox_id, redact(str(exc), api_key))
    return False


# --------------------------------------------------------------------------- CLI helpers (sandboxes list|clean)
def _helper_client(api_key: str | None, api_url: str | None, target: str | None) -> tuple[AsyncDaytona, str]:
    from daytona import AsyncDaytona, DaytonaConfig

    key = api_key_from(api_key)
    url = api_url or os.environ.get("DAYTONA_API_URL") or DEFAULT_API_URL
    return AsyncDaytona(DaytonaConfig(api_key=key, api_url=url, target=target or os.environ.get("DAYTONA_TARGET"))), key


@contextlib.asynccontextmanager
async def _ours(
    api_key: str | None, api_url: str | None, target: str | None
) -> AsyncIterator[tuple[list[AsyncSandbox], str]]:
    """The sandboxes labelled ``created-by: daytona-lsp`` and the key that listed them; the client closes after."""
    from daytona import ListSandboxesQuery

    client, key = _helper_client(api_key, api_url, target)
    try:
        found = []
        try:
            async for sandbox in client.list(ListSandboxesQuery(labels={CREATED_BY_LABEL: CREATED_BY_VALUE})):
                if (sandbox.labels or {}).get(CREATED_BY_LABEL) == CREATED_BY_VALUE:
                    found.append(sandbox)
        except Exception as exc:
            raise sanitized(exc, key) from None
        yield found, key
    finally:
        await client.close()


async def list_sandboxes(
    *, api_key: str | None = None, api_url: str | None = None, target: str | None = None
) -> list[dict[str, Any]]:
    """The sandboxes daytona-lsp created (label ``created-by: daytona-lsp``): id, name, state, labels, created.

    Raises :class:`MissingCredentialsError` without an API key, ``daytona.DaytonaError`` when the API fails
    (its message never contains the key)."""
    async with _ours(api_key, api_url, target) as (sandboxes, _):
        return [
            {
                "id": s.id,
                "name": s.name,
                "state": str(getattr(s.state, "value", s.state)) if s.state is not None else None,
                "labels": dict(s.labels or {}),
                "created": s.created_at,
            }
            for s in sandboxes
        ]


async def delete_sandboxes(
    ids: Sequence[str] | None = None,
    *,
    api_key: str | None = None,
    api_url: str | None = None,
    target: str | None = None,
) -> list[str]:
    """Delete the sandboxes daytona-lsp created (all of them, or those of ``ids``: ids or names); return the deleted
    ids. Sandboxes without the ``created-by: daytona-lsp`` label are never deleted: naming one (or an unknown id)
    raises ``ValueError`` before anything is deleted."""
    async with _ours(api_key, api_url, target) as (sandboxes, key):
        wanted = set(ids) if ids is not None else None
        if wanted:
            known = {s.id for s in sandboxes} | {s.name for s in sandboxes}
            strangers = sorted(wanted - known)
            if strangers:
                raise ValueError(
                    f"Not sandboxes created by daytona-lsp (nothing deleted): {', '.join(strangers)}. "
                    "`daytona-lsp sandboxes list` shows the ones it created."
                )
        deleted = []
        for sandbox in sandboxes:
            if wanted is not None and sandbox.id not in wanted and sandbox.name not in wanted:
                continue
            try:
                await sandbox.delete(timeout=60)
            except Exception as exc:
                raise sanitized(exc, key) from None
            deleted.append(sandbox.id)
        return deleted
