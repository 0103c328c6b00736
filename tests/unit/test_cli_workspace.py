"""``daytona-lsp run FILE`` shows the run its workspace folder (local backend; a real process, real bubblewrap)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.unit.test_cli import CLI, cli_env

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap needs Linux")


def run_in(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "run", *args, "--backend", "local"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=cwd,
        timeout=60,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    (root / "common.py").write_text("ROOT_VALUE = 'root'\n")
    (root / "src" / "helper.py").write_text("VALUE = 41\n")
    (root / "src" / "main.py").write_text(
        "import os, sys, helper\nsys.path.append(os.path.dirname(os.getcwd()))\nimport common\n"
        "print(helper.VALUE + 1, common.ROOT_VALUE, os.getcwd() == os.path.dirname(__file__))\n"
        "open('out.txt', 'w').write('made')\nopen('../top.txt', 'w').write('top')\n"
    )
    return root


def test_run_file_sees_its_project_runs_in_its_directory_and_names_what_it_changed(project):
    proc = run_in(project.parent, "proj/src/main.py")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "42 root True\n"
    assert proc.stderr == (
        "daytona-lsp: changed files (in the sandbox only; --write-back copies them): src/out.txt top.txt\n"
    )
    assert not (project / "src" / "out.txt").exists() and not (project / "top.txt").exists()


def test_write_back_copies_the_changed_files_into_the_folder(project):
    proc = run_in(project / "src", "main.py", "--write-back")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "daytona-lsp: changed files (written back): src/out.txt top.txt\n"
    assert (project / "src" / "out.txt").read_text() == "made" and (project / "top.txt").read_text() == "top"


def test_an_explicit_workspace_bounds_the_view_and_must_hold_the_file(project):
    (project / "src" / "solo.py").write_text(
        "import os\nprint(os.path.exists('../common.py'))\nopen('out.txt', 'w').write('x')\n"
        "open('../top.txt', 'w').write('top')\n"
    )
    narrow = run_in(project, "src/solo.py", "--workspace", "src")
    assert (narrow.returncode, narrow.stdout) == (0, "False\n"), narrow.stderr
    assert narrow.stderr.endswith("changed files (in the sandbox only; --write-back copies them): out.txt\n")
    assert "top.txt" not in narrow.stderr  # ../ is outside the workspace: written to the sandbox's own disk only
    outside = run_in(project, "common.py", "--workspace", "src")
    assert outside.returncode == 2 and outside.stdout == ""
    assert outside.stderr == f"daytona-lsp: error: common.py is not inside the workspace {project / 'src'}\n"


def test_code_on_stdin_runs_without_a_workspace_and_refuses_workspace_flags(tmp_path):
    ok = subprocess.run(
        [*CLI, "run", "-", "-l", "python", "--backend", "local"],
        input="import os\nprint(os.getcwd())\n",
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=tmp_path,
        timeout=60,
    )
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "/workspace\n", "")
    refused = run_in(tmp_path, "-", "-l", "python", "--write-back")
    assert refused.returncode == 2 and "--workspace and --write-back need a FILE" in refused.stderr
