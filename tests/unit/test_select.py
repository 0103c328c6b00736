"""Backend selection: auto | daytona | local, and language detection from file names."""

from __future__ import annotations

import subprocess
import sys

import pytest

from daytona_lsp.core.local import LocalCodeEnvironment
from daytona_lsp.core.select import create_environment, language_for_path, resolve_backend


@pytest.fixture(autouse=True)
def no_key_in_env(monkeypatch):
    monkeypatch.delenv("DAYTONA_API_KEY", raising=False)


def test_auto_is_local_without_any_key():
    assert resolve_backend("auto") == "local"
    assert resolve_backend("auto", api_key="") == "local"


def test_auto_is_daytona_with_a_key_argument_or_env(monkeypatch):
    assert resolve_backend("auto", api_key="k") == "daytona"
    monkeypatch.setenv("DAYTONA_API_KEY", "from-env")
    assert resolve_backend("auto") == "daytona"


def test_explicit_backends_are_kept():
    assert resolve_backend("local", api_key="k") == "local"
    assert resolve_backend("daytona") == "daytona"


def test_unknown_backend_is_a_value_error_listing_the_choices():
    with pytest.raises(ValueError, match="auto, daytona, local"):
        resolve_backend("docker")


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("a.py", "python"),
        ("/x/y/B.PY", "python"),
        ("run.sh", "bash"),
        ("run.bash", "bash"),
        ("a.js", "javascript"),
        ("a.mjs", "javascript"),
        ("a.cjs", "javascript"),
        ("a.ts", "typescript"),
        ("a.mts", "typescript"),
        ("a.cts", "typescript"),
        ("README.md", None),
        ("Makefile", None),
        ("archive.py.bak", None),
    ],
)
def test_language_for_path(path, language):
    assert language_for_path(path) == language


async def test_create_local_environment_passes_common_and_local_options():
    env = create_environment(
        "auto", timeout=7, languages=("python",), max_output_bytes=4096, local={"memory_mb": 512, "network": None}
    )
    try:
        assert isinstance(env, LocalCodeEnvironment)
        assert env.supported_languages == ("python",)
        result = await env.run("print('x' * 10000)", "python")
        assert result.truncated and len(result.output.encode()) < 4096 + 200
        assert result.backend == "local"
    finally:
        await env.aclose()


def test_local_options_are_checked_by_name():
    with pytest.raises(ValueError, match="Unknown local option"):
        create_environment("local", local={"memroy_mb": 1})
    with pytest.raises(ValueError, match="must not repeat"):
        create_environment("local", local={"timeout": 3})


def test_daytona_without_key_is_a_clear_missing_credentials_error():
    from daytona_lsp.core.daytona import MissingCredentialsError

    with pytest.raises(MissingCredentialsError) as info:
        create_environment("daytona")
    assert "DAYTONA_API_KEY" in str(info.value)


async def test_daytona_with_key_builds_a_daytona_environment_without_contacting_it():
    from daytona_lsp.core.daytona import DaytonaCodeEnvironment

    env = create_environment("auto", api_key="secret-key", daytona={"api_url": "http://127.0.0.1:9/api"})
    try:
        assert isinstance(env, DaytonaCodeEnvironment)
    finally:
        await env.aclose()


def test_importing_select_does_not_import_the_sdk_or_pygls():
    code = (
        "import sys, daytona_lsp.core.select as s; s.resolve_backend('auto');"
        "print(sorted(m for m in ('daytona', 'daytona_lsp.core.daytona', 'pygls', 'lsprotocol') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
