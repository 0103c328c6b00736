"""What shapes a Daytona sandbox: the backend's constants, its configuration types and the resolved spec."""

from __future__ import annotations

from dataclasses import dataclass, field

from daytona_lsp.core import secrets

BACKEND = "daytona"
CREATED_BY_LABEL = "created-by"
CREATED_BY_VALUE = "daytona-lsp"
DEFAULT_API_URL = "https://app.daytona.io/api"
DEFAULT_AUTO_STOP_MINUTES = 15
DEFAULT_AUTO_DELETE_MINUTES = 60
DEFAULT_CREATE_TIMEOUT = 60.0
MAX_INLINE_COMMAND = 120_000
"""Longest command sent inline (a single exec argument is limited to 128 KiB on Linux); longer code is uploaded."""
GRACE_SECONDS = 5
"""The daemon's own timeout and the client's wait are this much longer than the run's, so ours fires first."""
RETRYABLE_CREATE_STATUS = {429, 500, 502, 503, 504}


class MissingCredentialsError(ValueError):
    """No Daytona API key: neither passed in nor in ``DAYTONA_API_KEY``."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message or "No Daytona API key: set DAYTONA_API_KEY (or pass api_key) to use Daytona sandboxes."
        )


@dataclass(frozen=True)
class DaytonaResources:
    """CPU cores, memory (GiB) and disk (GiB) of a sandbox built from an image."""

    cpu: int | None = None
    memory: int | None = None
    disk: int | None = None


@dataclass(frozen=True)
class Spec:
    """Everything that shapes a sandbox, resolved for one run. Equal specs share a sandbox."""

    api_key: str = field(repr=False)
    api_url: str
    target: str | None
    snapshot: str | None
    image: str | None
    env_vars: tuple[tuple[str, str], ...]
    resources: DaytonaResources | None
    labels: tuple[tuple[str, str], ...]
    auto_stop_interval: int
    auto_delete_interval: int


def api_key_from(explicit: str | None) -> str:
    """The API key (:func:`daytona_lsp.core.secrets.api_key`), or :class:`MissingCredentialsError`."""
    key = secrets.api_key(explicit)
    if not key:
        raise MissingCredentialsError()
    return key
