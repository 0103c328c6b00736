"""pytest plugin: the ``daytona_server`` fixture (a fresh fake Daytona per test) and ``make_daytona_env``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.daytona_server.server import DaytonaTestServer

if TYPE_CHECKING:
    from daytona_lsp.core.daytona import DaytonaCodeEnvironment

DaytonaEnvFactory = Callable[..., "DaytonaCodeEnvironment"]


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


@pytest.fixture
async def make_daytona_env(daytona_server: DaytonaTestServer) -> AsyncIterator[DaytonaEnvFactory]:
    """Builds ``DaytonaCodeEnvironment``s pointed at ``daytona_server`` (keyword arguments override the defaults:
    timeout 20 s, fast retries) and closes them after the test."""
    from daytona_lsp.core.daytona import DaytonaCodeEnvironment

    made: list[DaytonaCodeEnvironment] = []

    def make(**kwargs: Any) -> DaytonaCodeEnvironment:
        kwargs.setdefault("api_key", daytona_server.api_key)
        kwargs.setdefault("api_url", daytona_server.api_url)
        kwargs.setdefault("timeout", 20)
        kwargs.setdefault("retry_backoff", 0.01)
        env = DaytonaCodeEnvironment(**kwargs)
        made.append(env)
        return env

    yield make
    for env in made:
        await env.aclose()
