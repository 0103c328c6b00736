"""Daytona-API-compatible test server (test infrastructure, not a product feature)."""

from tests.daytona_server.server import DEFAULT_API_KEY, DaytonaTestServer

__all__ = ["DEFAULT_API_KEY", "DaytonaTestServer"]
