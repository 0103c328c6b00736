"""Errors raised in other files of the workspace (``import helper``): located in those files, with the call sites in
the code that was run as related frames; library frames (site-packages, node_modules, stdlib) stay out.

The outputs are real: each test runs the interpreter on files in a temporary workspace.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daytona_lsp.core.errors import Frame, find_errors


def _run(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0, done.stdout
    return done.stdout + done.stderr


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


MAIN_PY = "import helper\n\n\ndef main():\n    helper.boom(3)\n\n\nmain()\n"
HELPER_PY = "def boom(x):\n    y = x + 1\n    return y / 0\n"


def test_python_error_in_an_imported_workspace_file_is_reported_there_with_the_call_sites(tmp_path: Path) -> None:
    _write(tmp_path, {"pkg/main.py": MAIN_PY, "pkg/helper.py": HELPER_PY})
    output = _run([sys.executable, "main.py"], tmp_path / "pkg")
    source = str(tmp_path / "pkg" / "main.py")
    errors = find_errors(output, "python", source_path=source, code=MAIN_PY, workspace_root=str(tmp_path))
    assert [e.path for e in errors] == [None, str(tmp_path / "pkg" / "helper.py")]
    own, there = errors
    assert (own.line, own.message) == (4, "ZeroDivisionError: division by zero")  # the call site in main.py
    assert Frame(line=2, column=None, label="in boom", path=str(tmp_path / "pkg" / "helper.py")) in own.related
    assert (there.line, there.message) == (2, own.message)  # `return y / 0`, 0-based
    assert [(f.path, f.line) for f in there.related] == [(None, 7), (None, 4)]  # main(), helper.boom(3)
    # without the workspace root: as before, only the code that was run
    alone = find_errors(output, "python", source_path=source, code=MAIN_PY)
    assert [e.path for e in alone] == [None] and all(f.path is None for f in alone[0].related)


def test_python_library_frames_in_the_workspace_venv_and_stdlib_stay_out(tmp_path: Path) -> None:
    site = tmp_path / ".venv" / "lib" / "python3.11" / "site-packages"
    main = f"import sys\nsys.path.insert(0, {str(site)!r})\nimport json, libmod\nlibmod.fail()\n"
    _write(tmp_path, {"main.py": main, ".venv/lib/python3.11/site-packages/libmod.py": "def fail():\n    1 / 0\n"})
    output = _run([sys.executable, "main.py"], tmp_path)
    errors = find_errors(
        output, "python", source_path=str(tmp_path / "main.py"), code=main, workspace_root=str(tmp_path)
    )
    assert [(e.path, e.line) for e in errors] == [(None, 3)]
    assert all(f.path is None for f in errors[0].related)
    stdlib = "import json\njson.loads('{')\n"
    _write(tmp_path, {"main.py": stdlib})
    output = _run([sys.executable, "main.py"], tmp_path)
    errors = find_errors(
        output, "python", source_path=str(tmp_path / "main.py"), code=stdlib, workspace_root=str(tmp_path)
    )
    assert [(e.path, e.line) for e in errors] == [(None, 1)]


def test_python_error_at_import_time_of_a_sibling_module(tmp_path: Path) -> None:
    main = "print('start')\nimport broken\n"
    _write(tmp_path, {"main.py": main, "broken.py": "x = 1\nraise RuntimeError('bad config')\n"})
    output = _run([sys.executable, "main.py"], tmp_path)
    errors = find_errors(
        output, "python", source_path=str(tmp_path / "main.py"), code=main, workspace_root=str(tmp_path)
    )
    assert [(e.path, e.line, e.message) for e in errors] == [
        (None, 1, "RuntimeError: bad config"),
        (str(tmp_path / "broken.py"), 1, "RuntimeError: bad config"),
    ]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_javascript_error_in_a_required_workspace_module_skips_node_modules(tmp_path: Path) -> None:
    main = "const m = require('./lib/mod');\nconst dep = require('dep');\n\ndep.call(() => m.boom(1));\n"
    _write(
        tmp_path,
        {
            "main.js": main,
            "lib/mod.js": "function boom(x) {\n  return x.nope.deeper;\n}\nmodule.exports = { boom };\n",
            "node_modules/dep/index.js": "exports.call = (f) => f();\n",
        },
    )
    output = _run(["node", "main.js"], tmp_path)
    errors = find_errors(
        output, "javascript", source_path=str(tmp_path / "main.js"), code=main, workspace_root=str(tmp_path)
    )
    assert [(e.path, e.line) for e in errors] == [(None, 3), (str(tmp_path / "lib" / "mod.js"), 1)]
    there = errors[1]
    assert "Cannot read properties of undefined" in there.message
    assert [(f.path, f.line) for f in there.related] == [(None, 3)]  # node_modules/dep is not a call site of ours


def test_a_workspace_root_that_is_not_absolute_or_a_frame_outside_it_gives_nothing_elsewhere(tmp_path: Path) -> None:
    _write(tmp_path, {"pkg/main.py": MAIN_PY, "pkg/helper.py": HELPER_PY})
    output = _run([sys.executable, "main.py"], tmp_path / "pkg")
    source = str(tmp_path / "pkg" / "main.py")
    for root in ("relative/dir", str(tmp_path / "pkg" / "other"), ""):
        errors = find_errors(output, "python", source_path=source, code=MAIN_PY, workspace_root=root)
        assert [e.path for e in errors] == [None]


def test_bash_error_in_a_sourced_workspace_file_is_reported_there(tmp_path: Path) -> None:
    main = 'source ./lib.sh\n. "$(dirname "$0")/sub/more.sh"\necho done\nnot_a_command_in_main\n'
    _write(
        tmp_path,
        {
            "pkg/main.sh": main,
            "pkg/lib.sh": "x=1\nnot_a_command_xyz\n",
            "pkg/sub/more.sh": "\n\nfalse_cmd_abc arg\n",
        },
    )
    output = _run(["bash", str(tmp_path / "pkg" / "main.sh")], tmp_path / "pkg")
    source = str(tmp_path / "pkg" / "main.sh")
    errors = find_errors(output, "bash", source_path=source, code=main, workspace_root=str(tmp_path))
    found = {(e.path, e.line, e.message) for e in errors}
    assert found == {
        (str(tmp_path / "pkg" / "lib.sh"), 1, "not_a_command_xyz: command not found"),  # "./lib.sh: line 2:"
        (str(tmp_path / "pkg" / "sub" / "more.sh"), 2, "false_cmd_abc: command not found"),  # absolute
        (None, 3, "not_a_command_in_main: command not found"),  # the script's own
    }
    # without the workspace root: only the script's own error
    alone = find_errors(output, "bash", source_path=source, code=main)
    assert [(e.path, e.line) for e in alone] == [(None, 3)]


def test_bash_sourced_file_outside_the_workspace_or_a_function_name_gives_nothing_elsewhere(tmp_path: Path) -> None:
    outside = tmp_path / "outside.sh"
    outside.write_text("nope_cmd_q\n")
    main = f"source {outside}\nf() {{ missing_in_f; }}\nf\n"
    _write(tmp_path, {"ws/main.sh": main})
    output = _run(["bash", str(tmp_path / "ws" / "main.sh")], tmp_path / "ws")
    errors = find_errors(
        output, "bash", source_path=str(tmp_path / "ws" / "main.sh"), code=main, workspace_root=str(tmp_path / "ws")
    )
    assert all(e.path is None for e in errors), errors
    assert any(e.message == "missing_in_f: command not found" for e in errors)
