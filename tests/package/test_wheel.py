"""The built wheel installs into a fresh environment (pip in a venv, pipx) and gives a working `daytona-lsp`.

Run by the `package` tier of scripts/test after `bash scripts/package --wheel` built dist/daytona_lsp-*.whl.
Dependencies come from the package index (or pip's cache), as they would for a user.
"""

from __future__ import annotations

import email.parser
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello.py"


@pytest.fixture(scope="module")
def wheel() -> Path:
    wheels = sorted((ROOT / "dist").glob("daytona_lsp-*.whl"))
    if len(wheels) != 1:
        pytest.fail(f"expected one dist/daytona_lsp-*.whl (run `bash scripts/package --wheel`), found {wheels}")
    return wheels[0]


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """No trace of the repository's own environment: not its venv, not its sources on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not (Path(p) / "daytona-lsp").exists())
    env["HOME"] = str(tmp_path / "home")
    env["XDG_CACHE_HOME"] = str(tmp_path / "home" / ".cache")
    env["PIP_CACHE_DIR"] = os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))  # downloads once
    env.pop("DAYTONA_API_KEY", None)
    return env


def _run(argv: list[str | Path], env: dict[str, str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def _base_python() -> str:
    """An interpreter outside any venv (a venv made from a venv's python still works, but this is what users have)."""
    return str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}")


def _runs_hello(daytona_lsp: Path, env: dict[str, str], cwd: Path) -> None:
    result = _run([daytona_lsp, "run", HELLO], env, cwd, timeout=120)
    assert "Hello from Linux with Python" in result.stdout
    assert "sum: 385" in result.stdout


def test_the_wheel_carries_publishable_metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(z.read(info).decode())
        entry_points = z.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert meta["Name"] == "daytona-lsp"
    assert meta["License-Expression"] == "Apache-2.0"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert "daytona-lsp run examples/hello.py" in meta.get_payload()
    classifiers = meta.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.10" in classifiers
    assert any(c.startswith("Development Status ::") for c in classifiers)
    assert meta.get_all("Project-URL"), "the urls users follow from the index page"
    assert "daytona-lsp = daytona_lsp.cli:main" in entry_points
    assert not [n for n in names if n.startswith(("tests/", "bench/", "vscode-extension/"))]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the local sandbox (bubblewrap) needs Linux")
def test_pip_install_of_the_wheel_into_a_fresh_venv_runs_hello(wheel: Path, tmp_path: Path):
    env = _clean_env(tmp_path)
    target = tmp_path / "venv"
    _run([_base_python(), "-m", "venv", target], env, tmp_path)
    _run([target / "bin" / "python", "-m", "pip", "install", "-q", wheel], env, tmp_path)
    _runs_hello(target / "bin" / "daytona-lsp", env, tmp_path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the local sandbox (bubblewrap) needs Linux")
def test_pipx_install_of_the_wheel_runs_hello(wheel: Path, tmp_path: Path):
    env = _clean_env(tmp_path)
    tool = tmp_path / "pipx-venv"
    _run([_base_python(), "-m", "venv", tool], env, tmp_path)
    _run([tool / "bin" / "python", "-m", "pip", "install", "-q", "pipx"], env, tmp_path)
    env["PIPX_HOME"] = str(tmp_path / "pipx")
    env["PIPX_BIN_DIR"] = str(tmp_path / "bin")
    env["PIPX_DEFAULT_PYTHON"] = _base_python()
    _run([tool / "bin" / "pipx", "install", wheel], env, tmp_path)
    _runs_hello(tmp_path / "bin" / "daytona-lsp", env, tmp_path)
