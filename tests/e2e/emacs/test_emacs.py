"""The Emacs tier: real Emacs (Debian's emacs-nox) in batch mode with eglot and with lsp-mode, each with its default
settings, against the real server (default settings: the local sandbox).

Each client: runs a file from the code action and sees ``42`` in the echo area; gets a runtime error of a ``.sh`` file
(opened in a server that started for ``.py``) as a flymake diagnostic on the line that failed, with Emacs reading the
server's answer only after the run has ended (as on a busy machine: the answer and the run's whole result in one read,
which Debian's lsp-mode and Emacs 28's jsonrpc mishandle without the README's fixes); runs a 15 s program from
the code action without a "Timed out" (both clients give up on a request after 10 s). The elisp scripts in
``scripts/`` assert on what Emacs shows and exit non-zero on the first failure. Setup: ``bash scripts/setup-emacs``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SCRIPTS = Path(__file__).resolve().parent / "scripts"
BIN = Path(sys.executable).parent
PROJECT = {
    "answer.py": "print(6 * 7)\n",
    "fails.sh": "echo one\necho two\nno_such_command_xyz\n",
    "slow.py": "import time\nprint('begun', flush=True)\ntime.sleep(15)\nprint('slept 15 s')\n",
}


@pytest.mark.parametrize("client", ["eglot", "lsp-mode"])
def test_emacs_client_runs_files_shows_output_and_diagnostics_and_survives_a_long_run(
    client: str, tmp_path: Path
) -> None:
    emacs = shutil.which("emacs")
    if emacs is None:
        pytest.fail("emacs not found: run bash scripts/setup-emacs (Debian emacs-nox, elpa-eglot, elpa-lsp-mode)")
    project = tmp_path / "project"
    project.mkdir()
    (project / ".git").mkdir()  # a project root, as a checkout has
    for name, text in PROJECT.items():
        (project / name).write_text(text, encoding="utf-8")
    for name in ("home", "tmp"):
        (tmp_path / name).mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAYTONA_", "EMACS", "XDG_"))}
    env.update(
        HOME=str(tmp_path / "home"),
        TMPDIR=str(tmp_path / "tmp"),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        DAYTONA_TEST_DIR=str(project),
        DAYTONA_LSP_COMMAND=str(BIN / "daytona-lsp"),  # what a user puts in eglot-server-programs / lsp-mode
        DAYTONA_LSP_LOG_LEVEL=os.environ.get("DAYTONA_LSP_LOG_LEVEL", "INFO"),  # the server's log, shown on failure
    )
    proc = subprocess.Popen(
        [emacs, "--batch", "-L", str(SCRIPTS), "-l", str(SCRIPTS / f"run-{client}.el")],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=100)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"{client} did not finish within 100 s\n{output}")
    finally:
        try:  # Emacs and the server it started share the session: end them all
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert proc.returncode == 0, f"{client} failed (exit {proc.returncode})\n{output}"
    assert output.count("ok: ") == 8, output


@pytest.mark.parametrize("client", ["eglot", "lsp-mode"])
def test_the_client_fix_the_tier_applies_is_the_one_the_readme_gives(client: str) -> None:
    """The scripts apply the README's fix for their client's lost-message bug, verbatim (what users are told to add)."""
    paragraphs = (SCRIPTS / f"run-{client}.el").read_text(encoding="utf-8").split("\n\n")
    fix = next(p for p in paragraphs if p.startswith(";; the README's fix"))
    code = "\n".join(line for line in fix.splitlines() if not line.startswith(";;"))
    readme = (SCRIPTS.parents[3] / "README.md").read_text(encoding="utf-8")
    assert f"```elisp\n{code}\n```" in readme
