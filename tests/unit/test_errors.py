"""core.errors: run output → error locations, from REAL interpreter output.

Python, node and bash run here on small snippets (in a tmp dir); every Python interpreter found on the machine
(3.10–3.13 where installed) is exercised, plus verbatim recorded outputs of the versions that may be missing. The
TypeScript compiler formats come from recorded tsc / ts-node / tsx output (and from a live tsc when one is found).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daytona_lsp.core.errors import MAX_ERRORS, Frame, RunError, find_errors

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


# --------------------------------------------------------------------------------------------------------------------
# helpers


def _interpreters() -> list[tuple[str, tuple[int, int]]]:
    """Every distinct Python >= 3.8 we can find: this one first, then python3.X on PATH / under pyenv."""
    candidates = [sys.executable]
    for minor in range(8, 15):
        exe = shutil.which(f"python3.{minor}") or ""
        candidates.append("" if "shims" in exe else exe)  # pyenv shims are slow and point at the same pythons
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if pyenv.is_dir():
        candidates += [str(p / "bin" / "python") for p in sorted(pyenv.iterdir())]
    found: dict[tuple[int, int], str] = {}
    for exe in candidates:
        if not exe or not os.access(exe, os.X_OK):
            continue
        try:
            out = subprocess.run(
                [exe, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True, timeout=20
            ).stdout.split()
        except (OSError, subprocess.SubprocessError):
            continue
        if len(out) == 2 and (int(out[0]), int(out[1])) >= (3, 8):
            found.setdefault((int(out[0]), int(out[1])), exe)
    return [(exe, version) for version, exe in sorted(found.items())]


PYTHONS = _interpreters()
python_versions = pytest.mark.parametrize("python", PYTHONS, ids=[f"py{v[0]}.{v[1]}" for _, v in PYTHONS])


def run(cmd: list[str], cwd: Path, stdin: str | None = None) -> str:
    """Run a command; its stdout and stderr interleaved, as a backend reports them."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONSTARTUP", "NODE_OPTIONS", "FORCE_COLOR")}
    env["NO_COLOR"] = "1"
    proc = subprocess.run(
        cmd, cwd=cwd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60, env=env
    )
    return proc.stdout


def run_python(python: tuple[str, tuple[int, int]], code: str, tmp_path: Path, *, how: str = "file") -> tuple[str, str]:
    """(output, source_path) of running ``code`` as a file, from stdin or with -c."""
    exe = python[0]
    if how == "file":
        path = tmp_path / "main.py"
        path.write_text(code)
        return run([exe, str(path)], tmp_path), str(path)
    if how == "stdin":
        return run([exe, "-"], tmp_path, stdin=code), "<stdin>"
    return run([exe, "-c", code], tmp_path), "<string>"


def span(code: str, error: RunError | Frame) -> str:
    """The text of the code a location points at."""
    assert error.line is not None
    text = code.split("\n")[error.line]
    end = getattr(error, "end_column", None)
    return text[error.column : end] if error.column is not None else text


def one(errors: list[RunError]) -> RunError:
    assert len(errors) == 1, errors
    return errors[0]


# --------------------------------------------------------------------------------------------------------------------
# python, live

NESTED = """\
import json

def helper(x):
    return x["a"]["b"] + 1 / 0

def main():
    d = {"a": {"b": 2}}
    return helper(d)

main()
"""


@python_versions
@pytest.mark.parametrize("how", ["file", "stdin", "dash_c"])
def test_python_error_lands_on_innermost_user_frame_and_callers_are_related(python, how, tmp_path):
    output, source = run_python(python, NESTED, tmp_path, how=how)
    error = one(find_errors(output, "python", source_path=source, code=NESTED))
    assert error.message == "ZeroDivisionError: division by zero"
    assert error.line == 3
    assert [(f.line, f.label) for f in error.related] == [(9, "in <module>"), (7, "in main")]
    if (how == "file" and python[1] >= (3, 11)) or (how == "dash_c" and python[1] >= (3, 13)):
        assert span(NESTED, error) == "1 / 0", "the ~~^~~ marker gives the failing expression"
    else:
        assert span(NESTED, error) == 'return x["a"]["b"] + 1 / 0', "no marker: the statement without indentation"


@python_versions
def test_python_lines_are_found_without_the_code_but_columns_need_it(python, tmp_path):
    output, source = run_python(python, NESTED, tmp_path)
    error = one(find_errors(output, "python", source_path=source))
    assert (error.line, error.column, error.end_column) == (3, None, None)
    assert [f.line for f in error.related] == [9, 7]
    # and the usual file names are recognised when the backend does not say which one is the code's
    assert one(find_errors(output, "python")).line == 3


@python_versions
def test_python_syntax_error_column_comes_from_caret_under_indented_line(python, tmp_path):
    code = "def f():\n    if True:\n        x = (1 +\n        return 2\n"
    output, source = run_python(python, code, tmp_path)
    error = one(find_errors(output, "python", source_path=source, code=code))
    assert error.message.startswith("SyntaxError: ")
    if python[1] < (3, 10):
        assert error.line == 3, "the old parser reports the first token it cannot use"
    else:
        assert error.line == 2
        assert error.message == "SyntaxError: '(' was never closed"
        assert error.column == code.split("\n")[2].index("(")


@python_versions
def test_python_syntax_error_range_from_carets_on_stdin(python, tmp_path):
    code = "x = 1\nif x = 2:\n    pass\n"
    output, source = run_python(python, code, tmp_path, how="stdin")
    error = one(find_errors(output, "python", source_path=source, code=code))
    assert error.line == 1 and error.message.startswith("SyntaxError: invalid syntax")
    if python[1] >= (3, 10):
        assert span(code, error) == "x = 2"


@python_versions
@pytest.mark.parametrize(
    ("code", "line", "kind"),
    [
        ("def f():\n    x = 1\n      y = 2\n", 2, "IndentationError"),
        ("if True:\n        x = 1\n\ty = 2\n", 2, "TabError"),
        ("def f():\n    return [1,\n", 1, "SyntaxError"),
    ],
    ids=["indentation", "tabs", "unclosed-at-eof"],
)
def test_python_compile_errors_point_at_their_line(python, code, line, kind, tmp_path):
    output, source = run_python(python, code, tmp_path)
    error = one(find_errors(output, "python", source_path=source, code=code))
    assert error.message.startswith(kind + ": ")
    assert error.line == line


@python_versions
def test_python_chained_exception_reports_the_last_and_skips_library_frames(python, tmp_path):
    code = 'import json\ndef parse(s):\n    try:\n        return json.loads(s)\n    except ValueError as e:\n        raise RuntimeError("bad config") from e\n\nparse("{")\n'
    output, source = run_python(python, code, tmp_path)
    assert "The above exception was the direct cause" in output
    error = one(find_errors(output, "python", source_path=source, code=code))
    assert error.message == "RuntimeError: bad config"
    assert error.line == 5 and span(code, error).startswith("raise RuntimeError")
    assert [(f.line, f.label) for f in error.related] == [(7, "in <module>")]


@python_versions
def test_python_error_inside_library_lands_on_the_user_call(python, tmp_path):
    code = 'import json\n\ndef load():\n    return json.loads("{")\n\nload()\n'
    output, source = run_python(python, code, tmp_path)
    assert "json" + os.sep + "decoder.py" in output
    error = one(find_errors(output, "python", source_path=source, code=code))
    assert error.message.startswith("json.decoder.JSONDecodeError: Expecting property name")
    assert error.line == 3
    assert [f.line for f in error.related] == [5]


@python_versions
def test_python_recursion_keeps_one_related_frame_per_line(python, tmp_path):
    code = "def f(n):\n    return f(n + 1)\n\nf(0)\n"
    output, source = run_python(python, code, tmp_path)
    assert "[Previous line repeated" in output
    error = one(find_errors(output, "python", source_path=source, code=code))
    assert error.message.startswith("RecursionError: maximum recursion depth exceeded")
    assert error.line == 1
    assert [f.line for f in error.related] == [3]


GROUP_CODE = """\
def g():
    raise ValueError("a")
def f():
    errs = []
    try:
        g()
    except ValueError as e:
        errs.append(e)
    raise ExceptionGroup("many", errs + [TypeError("b")])
f()
"""


@python_versions
def test_python_exception_group_reports_the_group_where_it_was_raised(python, tmp_path):
    if python[1] < (3, 11):
        pytest.skip("exception groups are Python 3.11+")
    code = GROUP_CODE
    output, source = run_python(python, code, tmp_path)
    assert output.count("Traceback (most recent call last)") == 2, "the group's and a member's"
    error = one(find_errors(output, "python", source_path=source, code=code))
    assert error.message == "ExceptionGroup: many (2 sub-exceptions)"
    assert error.line == 8 and [f.line for f in error.related] == [9]


@python_versions
def test_python_columns_count_characters_not_bytes(python, tmp_path):
    code = 's = "héllo wörld → ✓"; n = s + 1\n'
    output, source = run_python(python, code, tmp_path)
    error = one(find_errors(output, "python", source_path=source, code=code))
    assert error.line == 0
    assert span(code, error) == ("s + 1" if python[1] >= (3, 11) else code.strip())


def test_python_line_offset_maps_back_and_drops_the_backends_wrapper(tmp_path):
    user = "def f(x):\n    return 1 / x\n"
    prelude = "import sys\nsys.setrecursionlimit(100)\n"
    epilogue = "\nf(0)\n"  # the backend's own call after the code: lines past line_count are not the user's
    output, source = run_python(PYTHONS[0], prelude + user + epilogue, tmp_path)
    error = one(find_errors(output, "python", source_path=source, line_offset=2, line_count=2, code=user))
    assert error.line == 1 and span(user, error) in ("1 / x", "return 1 / x")
    assert error.related == (), "the backend's frames (outside the code) are not the user's"


def test_python_line_count_drops_locations_outside_the_code(tmp_path):
    code = "a = 1\nb = 2\nraise ValueError('late')\n"
    output, source = run_python(PYTHONS[0], code, tmp_path)
    assert one(find_errors(output, "python", source_path=source, line_count=3)).line == 2
    error = one(find_errors(output, "python", source_path=source, line_count=2))
    assert (error.message, error.line) == ("ValueError: late", None)


def test_python_frames_of_another_file_are_not_the_users(tmp_path):
    (tmp_path / "helper.py").write_text("def boom():\n    raise KeyError('k')\n")
    code = "import helper\n\nhelper.boom()\n"
    output, source = run_python(PYTHONS[0], code, tmp_path)
    error = one(find_errors(output, "python", source_path=source, code=code))
    assert error.message == "KeyError: 'k'" and error.line == 2


def test_python_output_after_a_traceback_does_not_hide_it(tmp_path):
    code = "import atexit\natexit.register(lambda: print('bye'))\nprint('partial', end='')\nraise SystemError('x')\n"
    output, source = run_python(PYTHONS[0], code, tmp_path)
    assert "partialTraceback" in output and output.rstrip().endswith("bye")
    error = one(find_errors(output, "python", source_path=source, code=code))
    assert (error.message, error.line) == ("SystemError: x", 3)


def test_clean_python_output_has_no_errors(tmp_path):
    output, source = run_python(PYTHONS[0], "for i in range(3):\n    print('line', i)\n", tmp_path)
    assert find_errors(output, "python", source_path=source) == []


def test_python_error_without_location_keeps_the_last_error_line(tmp_path):
    code = "import sys\nprint('working')\nsys.exit('fatal: config file missing')\n"
    output, source = run_python(PYTHONS[0], code, tmp_path)
    error = one(find_errors(output, "python", source_path=source))
    assert error == RunError("fatal: config file missing", None, None, None, ())


# --------------------------------------------------------------------------------------------------------------------
# python, recorded (versions that may not be installed where the tests run)

PY313_NESTED = """\
Traceback (most recent call last):
  File "/tmp/d/rt.py", line 9, in <module>
    main()
    ~~~~^^
  File "/tmp/d/rt.py", line 7, in main
    return helper(d)
  File "/tmp/d/rt.py", line 3, in helper
    return x["a"]["b"] + 1 / 0
                         ~~^~~
ZeroDivisionError: division by zero
"""
RT_CODE = 'import json\ndef helper(x):\n    return x["a"]["b"] + 1 / 0\n\ndef main():\n    d = {"a": {"b": 2}}\n    return helper(d)\n\nmain()\n'


def test_python313_markers_give_columns_of_every_frame():
    error = one(find_errors(PY313_NESTED, "python", source_path="/tmp/d/rt.py", code=RT_CODE))
    assert (error.line, span(RT_CODE, error)) == (2, "1 / 0")
    assert error.related == (Frame(8, 0, "in <module>"), Frame(6, 4, "in main"))


PY313_MULTILINE = """\
Traceback (most recent call last):
  File "/tmp/d/ml2.py", line 2, in <module>
    y = (d["a"]
         ~~~~~~
         ["b"])
         ^^^^^
TypeError: 'NoneType' object is not subscriptable
"""


def test_python313_multiline_expression_marks_its_first_line():
    code = 'd = {"a": None}\ny = (d["a"]\n     ["b"])\n'
    error = one(find_errors(PY313_MULTILINE, "python", source_path="/tmp/d/ml2.py", code=code))
    assert (error.line, span(code, error)) == (1, 'd["a"]')


PY313_GROUP_COLOR = (  # FORCE_COLOR=1 python3.13 - < code
    '  + Exception Group Traceback (most recent call last):\n  |   File \x1b[35m"<stdin>"\x1b[0m, line \x1b[35m10\x1b[0m, '
    'in \x1b[35m<module>\x1b[0m\n  |   File \x1b[35m"<stdin>"\x1b[0m, line \x1b[35m9\x1b[0m, in \x1b[35mf\x1b[0m\n  | '
    "\x1b[1;35mExceptionGroup\x1b[0m: \x1b[35mmany (2 sub-exceptions)\x1b[0m\n  +-+---------------- 1 ----------------\n"
    '    | Traceback (most recent call last):\n    |   File "<stdin>", line 6, in f\n    |   File "<stdin>", line 2, '
    "in g\n    | ValueError: a\n    +---------------- 2 ----------------\n    | TypeError: b\n"
    "    +------------------------------------\n"
)


def test_python_colored_exception_group_from_stdin_ignores_member_tracebacks():
    error = one(find_errors(PY313_GROUP_COLOR, "python", source_path="<stdin>", line_count=10))
    assert (error.message, error.line, [(f.line, f.label) for f in error.related]) == (
        "ExceptionGroup: many (2 sub-exceptions)",
        8,
        [(9, "in <module>")],
    )


IPYTHON_CELL = """\
---------------------------------------------------------------------------
JSONDecodeError                           Traceback (most recent call last)
Cell In[1], line 6
      3     return json.loads(s)
      5 x = 1
----> 6 f("{")

Cell In[1], line 3, in f(s)
      2 def f(s):
----> 3     return json.loads(s)

File ~/.pyenv/versions/3.11.7/lib/python3.11/json/__init__.py:346, in loads(s, cls, object_hook, parse_float, parse_int, parse_constant, object_pairs_hook, **kw)
    343 if (cls is None and object_hook is None and
--> 346     return _default_decoder.decode(s)

JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)
"""


def test_python_ipython_cell_traceback_from_a_stateful_session():
    code = 'import json\ndef f(s):\n    return json.loads(s)\n\nx = 1\nf("{")\n'
    error = one(find_errors(IPYTHON_CELL, "python", code=code))
    assert (
        error.message == "JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    )
    assert (error.line, span(code, error)) == (2, "return json.loads(s)")
    assert [f.line for f in error.related] == [5]


IPYTHON_COLORED = (  # IPython 9, colors on, as a Jupyter kernel sends it
    "\x1b[31m---------------------------------------------------------------------------\x1b[39m\n\x1b[31mZeroDivisionError"
    "\x1b[39m                         Traceback (most recent call last)\n\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[1]"
    "\x1b[39m\x1b[32m, line 3\x1b[39m\n\x1b[32m      1\x1b[39m \x1b[38;5;28;01mdef\x1b[39;00m\x1b[38;5;250m \x1b[39m\x1b[34mg"
    "\x1b[39m():\n\x1b[32m      2\x1b[39m     \x1b[38;5;28;01mreturn\x1b[39;00m \x1b[32m1\x1b[39m/\x1b[32m0\x1b[39m\n\x1b[32m----> "
    "\x1b[39m\x1b[32m3\x1b[39m \x1b[30;43mg\x1b[39;49m\x1b[30;43m(\x1b[39;49m\x1b[30;43m)\x1b[39;49m\n\n\x1b[36mCell\x1b[39m"
    "\x1b[36m \x1b[39m\x1b[32mIn[1]\x1b[39m\x1b[32m, line 2\x1b[39m, in \x1b[36mg\x1b[39m\x1b[34m()\x1b[39m\n\x1b[32m      1"
    "\x1b[39m \x1b[38;5;28;01mdef\x1b[39;00m\x1b[38;5;250m \x1b[39m\x1b[34mg\x1b[39m():\n\x1b[32m----> \x1b[39m\x1b[32m2\x1b[39m"
    "     \x1b[38;5;28;01mreturn\x1b[39;00m \x1b[30;43m1\x1b[39;49m\x1b[30;43m/\x1b[39;49m\x1b[30;43m0\x1b[39;49m\n\n\x1b[31m"
    "ZeroDivisionError\x1b[39m: division by zero\n"
)

IPYTHON7_CELL = """\
---------------------------------------------------------------------------
ZeroDivisionError                         Traceback (most recent call last)
<ipython-input-1-9e1622b385b6> in <module>
      1 def g():
      2     return 1/0
----> 3 g()

<ipython-input-1-9e1622b385b6> in g()
      1 def g():
----> 2     return 1/0

ZeroDivisionError: division by zero
"""


@pytest.mark.parametrize("output", [IPYTHON_COLORED, IPYTHON7_CELL], ids=["ipython9-colored", "ipython7"])
def test_python_ipython_formats_old_and_colored(output):
    code = "def g():\n    return 1/0\ng()\n"
    error = one(find_errors(output, "python", code=code))
    assert (error.message, error.line, span(code, error)) == ("ZeroDivisionError: division by zero", 1, "return 1/0")
    assert [f.line for f in error.related] == [2]


# --------------------------------------------------------------------------------------------------------------------
# javascript (node), live

JS_NESTED = "function helper(x) {\n  return x.y.z;\n}\nfunction main() {\n  return helper({});\n}\nmain();\n"


def run_node(code: str, tmp_path: Path, *, how: str = "file", name: str = "main.js") -> tuple[str, str]:
    assert NODE is not None
    if how == "file":
        path = tmp_path / name
        path.write_text(code)
        return run([NODE, str(path)], tmp_path), str(path)
    if how == "stdin":
        return run([NODE, "-"], tmp_path, stdin=code), "[stdin]"
    return run([NODE, "-e", code], tmp_path), "[eval]"


@needs_node
@pytest.mark.parametrize("how", ["file", "stdin", "eval"])
def test_node_error_lands_on_throwing_line_and_callers_are_related(how, tmp_path):
    output, source = run_node(JS_NESTED, tmp_path, how=how)
    assert "node:internal" in output
    error = one(find_errors(output, "javascript", source_path=source, code=JS_NESTED))
    assert error.message == "TypeError: Cannot read properties of undefined (reading 'z')"
    assert (error.line, span(JS_NESTED, error)) == (1, "z")
    assert [(f.line, f.column) for f in error.related] == [(6, 0), (4, 9)]
    assert error.related[1].label == "at main"
    assert one(find_errors(output, "javascript")).line == 1, "[stdin]/[eval]/paths recognised without source_path"


@needs_node
@pytest.mark.parametrize("how", ["file", "stdin"])
def test_node_syntax_error_uses_the_caret_header(how, tmp_path):
    code = "const x = 1;\nlet y = (1 +;\n"
    output, source = run_node(code, tmp_path, how=how)
    error = one(find_errors(output, "javascript", source_path=source, code=code))
    assert error.message == "SyntaxError: Unexpected token ';'"
    assert (error.line, span(code, error)) == (1, ";")


@needs_node
def test_node_async_stack_keeps_the_awaiting_caller(tmp_path):
    code = 'async function load() {\n  await null;\n  throw new Error("boom");\n}\nasync function main() {\n  await load();\n}\nmain();\n'
    output, source = run_node(code, tmp_path)
    error = one(find_errors(output, "javascript", source_path=source, code=code))
    assert (error.message, error.line, span(code, error)) == ("Error: boom", 2, "new")
    assert [(f.line, f.label) for f in error.related] == [(5, "at main")]


@needs_node
def test_node_esm_file_urls_are_the_users_code(tmp_path):
    code = "const o = null;\nexport function f() { return o.k; }\nf();\n"
    output, source = run_node(code, tmp_path, name="main.mjs")
    assert "file://" in output
    error = one(find_errors(output, "javascript", source_path=source, code=code))
    assert (error.line, span(code, error)) == (1, "k")
    assert [f.line for f in error.related] == [2]


@needs_node
def test_node_thrown_non_error_is_located_by_its_header(tmp_path):
    code = 'console.log("hi");\nthrow "plain string";\n'
    output, source = run_node(code, tmp_path)
    error = one(find_errors(output, "javascript", source_path=source, code=code))
    assert (error.message, error.line, error.column) == ("Uncaught plain string", 1, 0)


@needs_node
def test_node_error_raised_in_node_internals_lands_on_users_require(tmp_path):
    code = "// load it\nrequire('surely-not-installed-pkg');\n"
    output, source = run_node(code, tmp_path)
    error = one(find_errors(output, "javascript", source_path=source, code=code))
    assert error.message == "Error: Cannot find module 'surely-not-installed-pkg'"
    assert error.line == 1


@needs_node
def test_node_unhandled_rejection_without_user_frames_has_no_location(tmp_path):
    output, source = run_node('Promise.reject("nope");\n', tmp_path)
    error = one(find_errors(output, "javascript", source_path=source, line_count=1))
    assert error.line is None
    assert "UnhandledPromiseRejection" in error.message and 'reason "nope"' in error.message


@needs_node
def test_node_columns_are_characters_even_after_astral_symbols(tmp_path):
    code = 'const s = "😀😀"; const n = null; n.prop;\n'
    output, source = run_node(code, tmp_path)
    error = one(find_errors(output, "javascript", source_path=source, code=code))
    assert span(code, error) == "prop", "V8 counts UTF-16 units; columns here are characters"


@needs_node
def test_node_error_with_cause_reports_the_outer_error_not_its_cause(tmp_path):
    code = 'function inner() {\n  throw new Error("inner");\n}\ntry {\n  inner();\n} catch (e) {\n  throw new Error("outer", { cause: e });\n}\n'
    output, source = run_node(code, tmp_path)
    assert "[cause]: Error: inner" in output
    error = one(find_errors(output, "javascript", source_path=source, code=code))
    assert (error.message, error.line) == ("Error: outer", 6)


@needs_node
def test_node_logged_error_before_the_crash_is_not_the_crash(tmp_path):
    code = 'const e = new Error("logged");\nconsole.error(e);\nnull.x;\n'
    output, source = run_node(code, tmp_path)
    error = one(find_errors(output, "javascript", source_path=source, code=code))
    assert (error.message, error.line, span(code, error)) == (
        "TypeError: Cannot read properties of null (reading 'x')",
        2,
        "x",
    )


@needs_node
def test_node_error_in_a_callback_without_header_is_located_by_its_stack(tmp_path):
    code = 'setTimeout(() => {\n  JSON.parse("{");\n}, 0);\n'
    output, source = run_node(code, tmp_path)
    error = one(find_errors(output, "javascript", source_path=source, code=code))
    assert error.message.startswith("SyntaxError: ") and "JSON" in error.message
    assert (error.line, span(code, error)) == (1, "parse")


@needs_node
def test_clean_node_output_has_no_errors(tmp_path):
    output, source = run_node("console.log('value:', 42);\n", tmp_path)
    assert find_errors(output, "javascript", source_path=source) == []


# --------------------------------------------------------------------------------------------------------------------
# typescript: recorded output of tsc 5.9 / ts-node 10.9 / tsx 4 on node 20 (they are not installed where tests run)

TS_CODE = 'const x: number = "hello";\nfunction f(a: string): number {\n  return a.length;\n}\nf(42);\n'

TSC_PLAIN = """\
t1.ts(1,7): error TS2322: Type 'string' is not assignable to type 'number'.
t1.ts(5,3): error TS2345: Argument of type 'number' is not assignable to parameter of type 'string'.
"""

TSC_PRETTY = (
    "\x1b[96mt1.ts\x1b[0m:\x1b[93m1\x1b[0m:\x1b[93m7\x1b[0m - \x1b[91merror\x1b[0m\x1b[90m TS2322: \x1b[0mType 'string'"
    " is not assignable to type 'number'.\n\n\x1b[7m1\x1b[0m const x: number = \"hello\";\n\x1b[7m \x1b[0m \x1b[91m      ~"
    "\x1b[0m\n\n\x1b[96mt1.ts\x1b[0m:\x1b[93m5\x1b[0m:\x1b[93m3\x1b[0m - \x1b[91merror\x1b[0m\x1b[90m TS2345: \x1b[0m"
    "Argument of type 'number' is not assignable to parameter of type 'string'.\n\n\x1b[7m5\x1b[0m f(42);\n\x1b[7m "
    "\x1b[0m \x1b[91m  ~~\x1b[0m\n\n\nFound 2 errors in the same file, starting at: t1.ts\x1b[90m:1\x1b[0m\n\n"
)

TS_NODE_COMPILE = """\
/tmp/tsn/node_modules/ts-node/src/index.ts:859
    return new TSError(diagnosticText, diagnosticCodes, diagnostics);
           ^
TSError: ⨯ Unable to compile TypeScript:
t1.ts(1,7): error TS2322: Type 'string' is not assignable to type 'number'.
t1.ts(5,3): error TS2345: Argument of type 'number' is not assignable to parameter of type 'string'.

    at createTSError (/tmp/tsn/node_modules/ts-node/src/index.ts:859:12)
    at reportTSError (/tmp/tsn/node_modules/ts-node/src/index.ts:863:19)
    at getOutput (/tmp/tsn/node_modules/ts-node/src/index.ts:1077:36)
    at Object.compile (/tmp/tsn/node_modules/ts-node/src/index.ts:1433:41)
    at Module.m._compile (/tmp/tsn/node_modules/ts-node/src/index.ts:1617:30)
    at Module._extensions..js (node:internal/modules/cjs/loader:1623:10)
    at Object.require.extensions.<computed> [as .ts] (/tmp/tsn/node_modules/ts-node/src/index.ts:1621:12)
    at Module.load (node:internal/modules/cjs/loader:1266:32)
    at Function.Module._load (node:internal/modules/cjs/loader:1091:12)
    at Function.executeUserEntryPoint [as runMain] (node:internal/modules/run_main:164:12) {
  diagnosticCodes: [ 2322, 2345 ]
}
"""

TS_NODE_EVAL_COMPILE = """\
[eval].ts(1,7): error TS2322: Type 'string' is not assignable to type 'number'.
[eval].ts(5,3): error TS2345: Argument of type 'number' is not assignable to parameter of type 'string'.

"""


@pytest.mark.parametrize(
    ("output", "source"),
    [
        (TSC_PLAIN, "/tmp/tsw/t1.ts"),
        (TSC_PRETTY, "/tmp/tsw/t1.ts"),
        (TS_NODE_COMPILE, "/tmp/tsw/t1.ts"),
        (TS_NODE_COMPILE, None),
        (TS_NODE_EVAL_COMPILE, "[eval].ts"),
        (TS_NODE_EVAL_COMPILE, None),
    ],
    ids=["tsc", "tsc-pretty", "ts-node", "ts-node-nopath", "ts-node-eval", "ts-node-eval-nopath"],
)
def test_typescript_compile_errors_each_become_an_error(output, source):
    errors = find_errors(output, "typescript", source_path=source, code=TS_CODE)
    assert [(e.message.split(":")[0], e.line, span(TS_CODE, e)) for e in errors] == [
        ("TS2322", 0, "x"),
        ("TS2345", 4, "42"),
    ]
    assert errors[0].message == "TS2322: Type 'string' is not assignable to type 'number'."


@pytest.mark.parametrize("in_ts_node", [False, True])
def test_typescript_compile_errors_in_other_files_are_not_the_users(in_ts_node):
    output = "node_modules/@types/foo/index.d.ts(3,1): error TS1128: Declaration or statement expected.\n"
    if in_ts_node:
        output = TS_NODE_COMPILE.replace(TS_NODE_COMPILE.split("\n")[4] + "\n", output).replace(
            TS_NODE_COMPILE.split("\n")[5] + "\n", ""
        )
        assert "TSError" in output and "t1.ts" not in output
    error = one(find_errors(output, "typescript", source_path="/work/main.ts", line_count=5))
    assert (error.message, error.line) == ("TS1128: Declaration or statement expected.", None)


TS_RELATED_CODE = (
    "interface A { a: number; b: string }\nconst v: A = { a: 1 } as { a: number };\n"
    'function f(x: { deep: { k: number } }) {}\nf({ deep: { k: "s" } });\n'
)
TSC_PRETTY_RELATED = (
    "\x1b[96mm.ts\x1b[0m:\x1b[93m2\x1b[0m:\x1b[93m7\x1b[0m - \x1b[91merror\x1b[0m\x1b[90m TS2741: \x1b[0mProperty 'b' is "
    "missing in type '{ a: number; }' but required in type 'A'.\n\n\x1b[7m2\x1b[0m const v: A = { a: 1 } as { a: number "
    "};\n\x1b[7m \x1b[0m \x1b[91m      ~\x1b[0m\n\n  \x1b[96mm.ts\x1b[0m:\x1b[93m1\x1b[0m:\x1b[93m26\x1b[0m\n    \x1b[7m1"
    "\x1b[0m interface A { a: number; b: string }\n    \x1b[7m \x1b[0m \x1b[96m                         ~\x1b[0m\n    'b' is"
    " declared here.\n\n\x1b[96mm.ts\x1b[0m:\x1b[93m4\x1b[0m:\x1b[93m13\x1b[0m - \x1b[91merror\x1b[0m\x1b[90m TS2322: "
    "\x1b[0mType 'string' is not assignable to type 'number'.\n\n\x1b[7m4\x1b[0m f({ deep: { k: \"s\" } });\n\x1b[7m "
    "\x1b[0m \x1b[91m            ~\x1b[0m\n\n  \x1b[96mm.ts\x1b[0m:\x1b[93m3\x1b[0m:\x1b[93m25\x1b[0m\n    \x1b[7m3\x1b[0m "
    "function f(x: { deep: { k: number } }) {}\n    \x1b[7m \x1b[0m \x1b[96m                        ~\x1b[0m\n    The "
    "expected type comes from property 'k' which is declared here on type '{ k: number; }'\n\n\nFound 2 errors in the "
    "same file, starting at: m.ts\x1b[90m:2\x1b[0m\n\n"
)


def test_typescript_pretty_related_locations_become_related_frames():
    errors = find_errors(TSC_PRETTY_RELATED, "typescript", source_path="m.ts", code=TS_RELATED_CODE)
    assert [(e.message.split(":")[0], e.line, span(TS_RELATED_CODE, e)) for e in errors] == [
        ("TS2741", 1, "v"),
        ("TS2322", 3, "k"),
    ]
    assert errors[0].related == (Frame(0, 25, "'b' is declared here."),)
    assert errors[1].related == (
        Frame(2, 24, "The expected type comes from property 'k' which is declared here on type '{ k: number; }'"),
    )


TSC_CHAIN = """\
n.ts(2,7): error TS2322: Type '{ x: { y: string; }; }' is not assignable to type 'P'.
  The types of 'x.y' are incompatible between these types.
    Type 'string' is not assignable to type 'number'.
"""


def test_typescript_message_chain_is_kept_in_the_message():
    error = one(find_errors(TSC_CHAIN, "typescript", source_path="/w/n.ts", line_count=2))
    assert error.message == (
        "TS2322: Type '{ x: { y: string; }; }' is not assignable to type 'P'.\n"
        "The types of 'x.y' are incompatible between these types.\n"
        "  Type 'string' is not assignable to type 'number'."
    )
    assert (error.line, error.column) == (1, 6)


TS_NODE_T_OUTSIDE_CWD = """\
/tmp/tsn/node_modules/ts-node/src/index.ts:859
    return new TSError(diagnosticText, diagnosticCodes, diagnostics);
           ^
TSError: ⨯ Unable to compile TypeScript:
../tmp/dlsp-abc.ts(1,13): error TS1109: Expression expected.
error TS5109: Option 'moduleResolution' must be set to 'NodeNext' (or left unspecified) when option 'module' is set to 'NodeNext'.

    at createTSError (/tmp/tsn/node_modules/ts-node/src/index.ts:859:12)
    at reportTSError (/tmp/tsn/node_modules/ts-node/src/index.ts:863:19)
    at /tmp/tsn/node_modules/ts-node/src/index.ts:1379:34
    at Object.compile (/tmp/tsn/node_modules/ts-node/src/index.ts:1451:13)
    at Module.m._compile (/tmp/tsn/node_modules/ts-node/src/index.ts:1617:30)
    at Module._extensions..js (node:internal/modules/cjs/loader:1623:10)
    at Object.require.extensions.<computed> [as .ts] (/tmp/tsn/node_modules/ts-node/src/index.ts:1621:12)
    at Module.load (node:internal/modules/cjs/loader:1266:32)
    at Function.Module._load (node:internal/modules/cjs/loader:1091:12)
    at Function.executeUserEntryPoint [as runMain] (node:internal/modules/run_main:164:12) {
  diagnosticCodes: [ 1109, 5109 ]
}
"""


def test_typescript_error_path_relative_to_another_directory_is_still_the_code():
    code = "let y = (1 +;\n"
    error = one(find_errors(TS_NODE_T_OUTSIDE_CWD, "typescript", source_path="/tmp/dlsp-abc.ts", code=code))
    assert (error.message, error.line, span(code, error)) == ("TS1109: Expression expected.", 0, ";")


def test_typescript_configuration_error_without_file_is_the_message():
    output = TS_NODE_T_OUTSIDE_CWD.replace("../tmp/dlsp-abc.ts(1,13): error TS1109: Expression expected.\n", "")
    error = one(find_errors(output, "typescript", source_path="/tmp/dlsp-abc.ts", line_count=1))
    assert error.line is None
    assert error.message.startswith("TS5109: Option 'moduleResolution' must be set")


TS_NODE_EVAL_RUNTIME = """\
/tmp/tsw/[eval].ts:4
  return q.missing.name;
                   ^
/tmp/tsw/[eval].ts:4
    return q.missing.name;
                     ^

TypeError: Cannot read properties of undefined (reading 'name')
    at greet (/tmp/tsw/[eval].ts:4:20)
    at /tmp/tsw/[eval].ts:6:1
    at Script.runInThisContext (node:vm:137:12)
    at runInContext (/tmp/tsn/node_modules/ts-node/src/repl.ts:673:19)
    at Object.execCommand (/tmp/tsn/node_modules/ts-node/src/repl.ts:639:28)
    at /tmp/tsn/node_modules/ts-node/src/repl.ts:661:47
    at Array.reduce (<anonymous>)
    at appendCompileAndEvalInput (/tmp/tsn/node_modules/ts-node/src/repl.ts:661:23)
    at Object.evalCode (/tmp/tsn/node_modules/ts-node/src/repl.ts:205:20)
    at evalAndExitOnTsError (/tmp/tsn/node_modules/ts-node/src/bin.ts:780:26)
"""

TSX_RUNTIME = """\
/tmp/tsn/t2.ts:4
  return q.missing.name;
                   ^


TypeError: Cannot read properties of undefined (reading 'name')
    at greet (/tmp/tsn/t2.ts:4:20)
    at <anonymous> (/tmp/tsn/t2.ts:6:1)
    at Object.<anonymous> (/tmp/tsn/t2.ts:6:20)
    at Module._compile (node:internal/modules/cjs/loader:1521:14)
    at Object.transformer (/tmp/tsn/node_modules/tsx/dist/register-B1c7OH6V.cjs:22:2188)
    at Module.load (node:internal/modules/cjs/loader:1266:32)
    at Module._load (node:internal/modules/cjs/loader:1091:12)
    at cjsLoader (node:internal/modules/esm/translators:298:15)
    at ModuleWrap.<anonymous> (node:internal/modules/esm/translators:240:7)
    at ModuleJob.run (node:internal/modules/esm/module_job:325:25)

Node.js v20.20.2
"""

TS_RUNTIME_CODE = 'interface P { name: string }\nfunction greet(p: P): string {\n  const q = p as any;\n  return q.missing.name;\n}\ngreet({ name: "a" });\n'


@pytest.mark.parametrize(
    ("output", "source"),
    [(TS_NODE_EVAL_RUNTIME, "/tmp/tsw/[eval].ts"), (TS_NODE_EVAL_RUNTIME, None), (TSX_RUNTIME, "/tmp/tsn/t2.ts")],
    ids=["ts-node-eval", "ts-node-eval-nopath", "tsx"],
)
def test_typescript_runtime_stack_maps_to_the_ts_source(output, source):
    error = one(find_errors(output, "typescript", source_path=source, code=TS_RUNTIME_CODE))
    assert error.message == "TypeError: Cannot read properties of undefined (reading 'name')"
    assert (error.line, span(TS_RUNTIME_CODE, error)) == (3, "name")
    assert [f.line for f in error.related] == [5]


TSX_ESBUILD = """\
node:internal/modules/run_main:123
    triggerUncaughtException(
    ^

Error: Transform failed with 1 error:
/tmp/tsn/t3.ts:1:12: ERROR: Unexpected ";"
    at failureErrorWithLog (/tmp/tsn/node_modules/esbuild/lib/main.js:1752:15)
    at /tmp/tsn/node_modules/esbuild/lib/main.js:1019:50
    at Socket.emit (node:events:524:28) {
  name: 'TransformError'
}

Node.js v20.20.2
"""


def test_typescript_esbuild_error_of_tsx_is_located():
    code = "let y = (1 +;\n"
    error = one(find_errors(TSX_ESBUILD, "typescript", source_path="/tmp/tsn/t3.ts", code=code))
    assert (error.message, error.line, span(code, error)) == ('Unexpected ";"', 0, ";")


def _find_tsc() -> str | None:
    root = Path(__file__).resolve().parents[2]
    for candidate in (root / "vscode-extension" / "node_modules" / ".bin" / "tsc", shutil.which("tsc")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


def test_typescript_live_tsc_output_when_a_compiler_is_at_hand(tmp_path):
    tsc = _find_tsc()
    if tsc is None:
        pytest.skip("no tsc here (the recorded samples above cover the formats)")
    (tmp_path / "main.ts").write_text(TS_CODE)
    output = run([tsc, "--noEmit", "--pretty", "false", "main.ts"], tmp_path)
    errors = find_errors(output, "typescript", source_path=str(tmp_path / "main.ts"), code=TS_CODE)
    assert [(e.line, span(TS_CODE, e)) for e in errors] == [(0, "x"), (4, "42")], output


# --------------------------------------------------------------------------------------------------------------------
# bash, live

BASH_CODE = """\
echo start
foo_not_a_cmd
x=$(( 1 / 0 ))
f() {
  undefined_in_fn arg
}
f
ls /nonexistent_dir_for_test
echo ${x:?unset var}
"""


@pytest.mark.parametrize("how", ["file", "stdin", "dash_c"])
def test_bash_reports_every_located_error_in_order(how, tmp_path):
    script = tmp_path / "main.sh"
    script.write_text(BASH_CODE)
    if how == "file":
        output, source = run(["bash", str(script)], tmp_path), str(script)
    elif how == "stdin":
        output, source = run(["bash"], tmp_path, stdin=BASH_CODE), None
    else:
        output, source = run(["bash", "-c", BASH_CODE], tmp_path), None
    errors = find_errors(output, "bash", source_path=source, code=BASH_CODE)
    assert [(e.line, e.message) for e in errors] == [
        (1, "foo_not_a_cmd: command not found"),
        (2, '1 / 0 : division by 0 (error token is "0 ")'),
        (4, "undefined_in_fn: command not found"),
        (8, "x: unset var"),
    ], output
    assert span(BASH_CODE, errors[2]) == "undefined_in_fn arg", "the command without its indentation"


@pytest.mark.parametrize("how", ["file", "dash_c"])
def test_bash_syntax_error_is_one_error_not_two(how, tmp_path):
    code = "echo ok\nif true; then\n  echo x\nfi fi\n"
    script = tmp_path / "main.sh"
    script.write_text(code)
    cmd = ["bash", str(script)] if how == "file" else ["bash", "-c", code]
    output = run(cmd, tmp_path)
    assert "`fi fi'" in output, "bash echoes the line"
    error = one(find_errors(output, "bash", source_path=str(script), code=code))
    assert (error.message, error.line) == ("syntax error near unexpected token `fi'", 3)


def test_bash_unexpected_end_of_file_lands_on_the_last_line(tmp_path):
    code = "echo hi\nif true; then\n"
    script = tmp_path / "main.sh"
    script.write_text(code)
    output = run(["bash", str(script)], tmp_path)
    error = one(find_errors(output, "bash", source_path=str(script), code=code))
    assert (error.message, error.line) == ("syntax error: unexpected end of file", 1)


def test_bash_unbound_variable_and_line_offset(tmp_path):
    user = 'echo "$UNDEFINED_VAR"\n'
    script = tmp_path / "main.sh"
    script.write_text("set -u\n# prelude\n" + user)
    output = run(["bash", str(script)], tmp_path)
    error = one(find_errors(output, "bash", source_path=str(script), line_offset=2, code=user))
    assert (error.message, error.line) == ("UNDEFINED_VAR: unbound variable", 0)


@pytest.mark.skipif(shutil.which("dash") is None, reason="dash is not installed")
def test_dash_errors_are_located_too(tmp_path):
    script = tmp_path / "main.sh"
    script.write_text(BASH_CODE)
    output = run(["dash", str(script)], tmp_path)
    errors = find_errors(output, "bash", source_path=str(script), code=BASH_CODE)
    assert [e.line for e in errors][:2] == [1, 2]


def test_bash_error_of_a_command_without_line_has_no_location(tmp_path):
    output = run(["bash", "-c", "echo doing\nls /nonexistent_dir_for_test"], tmp_path)
    error = one(find_errors(output, "bash"))
    assert error.line is None and "No such file or directory" in error.message


def test_bash_other_scripts_errors_are_not_the_users(tmp_path):
    (tmp_path / "other.sh").write_text("echo a\nnope_cmd_here\n")
    script = tmp_path / "main.sh"
    script.write_text("bash other.sh\n")
    output = run(["bash", str(script)], tmp_path)
    assert "other.sh: line 2" in output
    error = one(find_errors(output, "bash", source_path=str(script), line_count=1))
    assert error.line is None


def test_clean_bash_output_has_no_errors(tmp_path):
    assert find_errors(run(["bash", "-c", "echo a; echo b"], tmp_path), "bash") == []


def test_many_repeated_errors_are_capped():
    output = "".join(f"bash: line {i % 7 + 1}: cmd{i}: command not found\n" for i in range(5000))
    errors = find_errors(output, "bash", line_count=7)
    assert len(errors) == MAX_ERRORS
    assert all(e.line is not None and 0 <= e.line < 7 for e in errors)


# --------------------------------------------------------------------------------------------------------------------
# never raise, stay linear

FRAGMENTS = [
    "Traceback (most recent call last):\n",
    '  File "<stdin>", line 3, in <module>\n',
    '  File "/x.py", line 99999999999999999999\n',
    "    x = (1 +\n",
    "        ^^^^^\n",
    "    ~~~^^^\n",
    "ZeroDivisionError: division by zero\n",
    "  + Exception Group Traceback (most recent call last):\n",
    "  | ValueError: a\n",
    "  +-+---- 1 ----\n",
    "[stdin]:2\n",
    "/tmp/x.js:",
    "    at f ([stdin]:1:2)\n",
    "    at (((((:1:\n",
    "    at x (y (z:1:1)\n",
    "t.ts(1,",
    "t.ts(3,4): error TS1: m\n",
    "a.ts:1:2 - error TS9: x\n",
    "bash: line 0: x\n",
    "bash: -c: line 4: `fi'\n",
    "main: line -3: y\n",
    "sh: 2: z\n",
    "Cell In[1], line 0\n",
    "----> 99 x\n",
    "\x1b[31m",
    "\x1b]8;;",
    "\r\n",
    "\r",
    "\x00\xff\ud800",
    "é😀",
    ":",
    "(",
    " ",
    "\n",
    "^",
    "9" * 30,
]


@pytest.mark.parametrize("language", ["python", "javascript", "typescript", "bash"])
def test_random_output_never_raises_and_locations_stay_in_the_code(language):
    rng = random.Random(f"errors-{language}")
    code = "a = 1\n    b = 2\n\tc = (3 +\n"
    for _ in range(1500):
        pieces = [rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 25))]
        if rng.random() < 0.3:
            pieces.append("".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 80))))
        output = "".join(pieces)
        source = rng.choice([None, "<stdin>", "[stdin]", "/x.py", "t.ts", "", "((("])
        offset = rng.choice([0, 1, 5, -3])
        count = rng.choice([None, 0, 3, 10])
        for errors in (
            find_errors(output, language, source_path=source, line_offset=offset, line_count=count, code=code),
            find_errors(output, language, source_path=source, line_offset=offset, line_count=count),
        ):
            assert isinstance(errors, list) and len(errors) <= MAX_ERRORS
            for error in errors:
                assert isinstance(error, RunError) and isinstance(error.message, str)
                if error.line is not None:
                    assert error.line >= 0
                    assert count is None or error.line < count
                for frame in error.related:
                    assert frame.line >= 0 and (count is None or frame.line < count)


@pytest.mark.parametrize("language", ["python", "javascript", "typescript", "bash"])
def test_the_quick_look_before_parsing_hides_no_error(language, monkeypatch):
    # what find_errors answers for recorded and random outputs is what it answers when every parser always runs
    import daytona_lsp.core.errors as errors_module

    rng = random.Random(f"quick-{language}")
    samples = [v for v in globals().values() if isinstance(v, str)]
    samples += ["".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 12))) for _ in range(1500)]
    code = "a = 1\n    b = 2\n\tc = (3 +\n"
    quick = [find_errors(out, language, line_count=3, code=code) for out in samples]
    monkeypatch.setattr(errors_module, "_CAN_FIND", dict.fromkeys(errors_module._CAN_FIND, lambda text: True))
    assert quick == [find_errors(out, language, line_count=3, code=code) for out in samples]


def test_errors_module_keeps_editor_and_sdk_imports_away():
    probe = "import sys, daytona_lsp.core.errors; print(sorted(m for m in ('pygls', 'lsprotocol', 'daytona') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "[]"


def test_nonsense_arguments_give_no_errors_instead_of_raising():
    assert find_errors("", "python") == []
    assert find_errors(None, "python") == []  # type: ignore[arg-type]
    assert find_errors(b"Traceback", "python") == []  # type: ignore[arg-type]
    assert find_errors("Error: x\n", "cobol") == [RunError("Error: x", None, None, None, ())]  # type: ignore[arg-type]


LARGE_OUTPUTS = {
    "python-frames": '  File "/x.py", line 1, in f\n    f()\n    ^^^\n' * 120_000 + "RecursionError: deep\n",
    "node-stack": "    at f ([stdin]:1:2)\n" * 250_000,
    "one-line-colons": "a:" * 2_600_000,
    "one-line-parens": "at (" * 1_300_000,
    "one-line-file": 'File "' + "x" * 5_000_000,
    "bash-lines": "bash: line 1: nope: command not found\n" * 130_000,
    "tsc-lines": "t.ts(1,1): error TS1: no\n" * 200_000,
    "random-bytes": random.Random(7).randbytes(5_000_000).decode("latin-1"),
}


@pytest.mark.parametrize("name", sorted(LARGE_OUTPUTS))
def test_five_megabytes_of_output_parse_quickly(name):
    output = LARGE_OUTPUTS[name]
    assert len(output) >= 4_900_000
    for language in ("python", "javascript", "typescript", "bash"):
        start = time.perf_counter()
        find_errors(output, language, line_count=3)
        elapsed = time.perf_counter() - start
        print(f"{name} {language}: {len(output) / 1e6:.1f} MB in {elapsed * 1000:.0f} ms")
        assert elapsed < 10, "linear time: about a second per 5 MB here; 10 s is the generous bound for slow CI"
