"""``daytona-lsp run FILE`` with a terminal as stdin: the program gets the lines as they are typed (Ctrl-D: EOF),
not an EOF at once; the terminal's own echo is the only one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from tests.unit.test_cli import CLI, ROOT, cli_env

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap needs Linux")


def run_on_a_terminal(tmp_path, code: str, typed: bytes) -> subprocess.CompletedProcess[bytes]:
    script = tmp_path / "prog.py"
    script.write_text(code)
    master, slave = os.openpty()
    try:
        os.write(master, typed)  # the terminal holds what is typed until the CLI reads it, a line at a time
        return subprocess.run(
            [*CLI, "run", str(script), "--timeout", "30"],
            stdin=slave,
            capture_output=True,
            env=cli_env(),
            cwd=ROOT,
            timeout=60,
        )
    finally:
        os.close(slave)
        os.close(master)


def test_a_terminal_feeds_the_program_line_by_line(tmp_path):
    proc = run_on_a_terminal(tmp_path, "name = input('name? ')\nprint('hello', name)\n", b"Ann\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"name? hello Ann\n"  # no second echo of the typed line: the terminal shows it
    assert b"stdin is closed" not in proc.stderr


def test_ctrl_d_on_the_terminal_is_the_programs_eof(tmp_path):
    proc = run_on_a_terminal(tmp_path, "import sys\nprint(repr(sys.stdin.read()))\n", b"a\nb\n\x04")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"'a\\nb\\n'\n"
