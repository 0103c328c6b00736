"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from daytona_lsp.core.local import LocalCodeEnvironment


@pytest.fixture
async def env():
    """A local sandbox environment (real bubblewrap), closed after the test."""
    environment = LocalCodeEnvironment(timeout=20)
    yield environment
    await environment.aclose()
