"""pytest plugin: the ``daytona_server`` fixture (a fresh fake Daytona per test) and helpers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.daytona_server.server import DaytonaTestServer


@pytest.fixture
def daytona_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[DaytonaTestServer]:
    """A running :class:`DaytonaTestServer` on 127.0.0.1 with ``.api_url``, ``.api_key``, ``.counts``,
    ``.sandboxes`` and fault injection. ``DAYTONA_*`` variables of the caller's environment are removed so a test
    can never reach a real account by accident."""
    for name in (
        "DAYTONA_API_KEY",
        "DAYTONA_JWT_TOKEN",
        "DAYTONA_API_URL",
        "DAYTONA_TARGET",
        "DAYTONA_ORGANIZATION_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    server = DaytonaTestServer().start()
    try:
        yield server
    finally:
        server.stop()
