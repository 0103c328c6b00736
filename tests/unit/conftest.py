"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daytona_lsp.core.local import LocalCodeEnvironment, launch

_KNOWN_CLONE = 'SYS_CLONE = {"x86_64": 56'


@pytest.fixture
async def env():
    """A local sandbox environment (real bubblewrap), closed after the test."""
    environment = LocalCodeEnvironment(timeout=20)
    yield environment
    await environment.aclose()


@pytest.fixture
def agent_without_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The agent as it is built where clone(2)'s number is not known (its sources with the number taken out): it forks
    A, which ``unshare``s the run's namespaces and forks B. For the environments made while the fixture lasts."""
    (module,) = [path for path in launch.AGENT_MODULES if _KNOWN_CLONE in path.read_text()]
    patched = tmp_path / module.name
    number = _KNOWN_CLONE[len("SYS_CLONE = ") :]
    patched.write_text(module.read_text().replace(_KNOWN_CLONE, f"SYS_CLONE = None and {number}", 1))
    monkeypatch.setattr(launch, "AGENT_MODULES", tuple(patched if p == module else p for p in launch.AGENT_MODULES))
    launch.agent_bytecode.cache_clear()
    yield
    monkeypatch.undo()
    launch.agent_bytecode.cache_clear()
