"""Sessions in a workspace folder, on both backends for real (local: bubblewrap with the workspace view, the worker
cloned straight into its namespaces by the agent; Daytona: the unmodified SDK against tests/daytona_server with the
folder synced): a document's session sees the folder as a fresh run of the file does — its directory, its siblings,
its real path — and an interrupted cell keeps the state."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daytona_lsp.core import CodeEnvironment, RunSpec
from daytona_lsp.core.environment import TIMEOUT_EXIT_CODE, CodeLanguage, CodeRunResult, WorkspaceView
from daytona_lsp.core.errors import find_errors
from daytona_lsp.core.local import LocalCodeEnvironment

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap needs Linux")


@pytest.fixture(params=["local", "daytona"])
async def senv(request: pytest.FixtureRequest) -> AsyncIterator[CodeEnvironment]:
    if request.param == "daytona":
        from daytona_lsp.core.daytona import DaytonaCodeEnvironment

        server = request.getfixturevalue("daytona_server")
        env: CodeEnvironment = DaytonaCodeEnvironment(
            api_key=server.api_key, api_url=server.api_url, retry_backoff=0.01, timeout=20
        )
    else:
        env = LocalCodeEnvironment(timeout=20)
    yield env
    await env.aclose()


FOREVER = "import time\nprint('started', flush=True)\nwhile True:\n    time.sleep(0.05)"


async def _cancel_once_started(env: CodeEnvironment, spec: RunSpec) -> CodeRunResult:
    """Run ``spec``; once it has printed (it runs), cancel it — never on a timer."""
    started = asyncio.Event()
    task = asyncio.ensure_future(env.execute(spec, lambda s, t: started.set()))
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    return await task


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def cell(root: Path, path: str, code: str, language: CodeLanguage, **kw: object) -> RunSpec:
    """A cell of ``root/path`` run in the document's session, in the file's directory (as the LSP sends it)."""
    view = WorkspaceView(root=str(root), overlays=kw.pop("overlays", {}))  # type: ignore[arg-type]
    return RunSpec(
        code=code,
        language=language,
        path=path,
        cwd=str(kw.pop("cwd", os.path.dirname(path))),
        workspace=view,
        session=(root / path).as_uri(),
        **kw,  # type: ignore[arg-type]
    )


async def test_a_python_session_cell_imports_a_sibling_module_as_the_file_would(senv: CodeEnvironment, tmp_path: Path):
    root = write(
        tmp_path / "proj",
        {"app/helper.py": "VALUE = 41\n", "app/data.txt": "data\n", "app/nb.py": "", "app/nb2.py": ""},
    )
    first = await senv.execute(cell(root, "app/nb.py", "import os, helper\nx = helper.VALUE + 1\nx", "python"))
    assert (first.exit_code, first.value) == (0, "42"), first.output
    seen = await senv.execute(
        cell(root, "app/nb.py", "import sys\n(open('data.txt').read(), os.path.basename(os.getcwd()), x)", "python")
    )
    assert seen.value == "('data\\n', 'app', 42)", seen.output
    where = await senv.execute(
        cell(root, "app/nb.py", "(__file__, sys.path[0], 'DAYTONA_LSP_SESSION_FILE' in os.environ)", "python")
    )
    assert where.exit_code == 0 and where.value is not None, where.output
    file, path0, leaked = eval(where.value)  # noqa: S307 - the repr of two strings and a bool
    assert not leaked
    assert file == seen.source_path and file.endswith("/app/nb.py") and path0 == os.path.dirname(file)
    if isinstance(senv, LocalCodeEnvironment):
        assert file == f"{root}/app/nb.py"  # the folder at its real path
    # in the folder's root: modules still come from the file's directory, as with `python app/nb2.py`
    code = "import os, helper\n(helper.VALUE, os.path.basename(os.getcwd()))"
    from_root = await senv.execute(cell(root, "app/nb2.py", code, "python", cwd=""))
    assert (from_root.exit_code, from_root.value) == (0, "(41, 'proj')"), from_root.output


async def test_a_python_session_error_in_a_cell_maps_to_the_buffer_line(senv: CodeEnvironment, tmp_path: Path):
    root = write(tmp_path / "proj", {"helper.py": "def f():\n    return 1 / 0\n", "nb.py": ""})
    code = "import helper\ny = 1\nhelper.f()\n"
    result = await senv.execute(cell(root, "nb.py", code, "python"))
    assert result.exit_code == 1, result.output
    errors = find_errors(
        result.output, "python", source_path=result.source_path, line_offset=result.line_offset, code=code
    )
    assert [(e.line, e.message) for e in errors] == [(2, "ZeroDivisionError: division by zero")], result.output


async def test_a_javascript_session_cell_requires_a_sibling_module(senv: CodeEnvironment, tmp_path: Path):
    if shutil.which("node") is None:
        pytest.skip("needs Node.js")
    root = write(tmp_path / "proj", {"src/mod.js": "exports.greet = () => 'hi from mod';\n", "src/nb.js": ""})
    first = await senv.execute(cell(root, "src/nb.js", "const m = require('./mod');\nm.greet()", "javascript"))
    assert (first.exit_code, first.value) == (0, "'hi from mod'"), first.output
    again = await senv.execute(
        cell(root, "src/nb.js", "[m.greet().length, require('path').basename(__dirname)]", "javascript")
    )
    assert (again.exit_code, again.value) == (0, "[ 11, 'src' ]"), again.output


async def test_a_bash_session_cell_sources_a_sibling_in_the_files_directory(senv: CodeEnvironment, tmp_path: Path):
    root = write(tmp_path / "proj", {"scripts/lib.sh": 'greet() { echo "hi $1"; }\n', "scripts/nb.sh": ""})
    first = await senv.execute(cell(root, "scripts/nb.sh", "source ./lib.sh", "bash"))
    assert first.exit_code == 0, first.output
    result = await senv.execute(
        cell(root, "scripts/nb.sh", 'greet you; basename "$PWD"; env | grep -c DAYTONA_LSP', "bash")
    )
    assert result.output.splitlines() == ["hi you", "scripts", "0"], result.output


async def test_unsaved_text_of_a_sibling_is_what_the_session_imports(senv: CodeEnvironment, tmp_path: Path):
    root = write(tmp_path / "proj", {"helper.py": "VALUE = 'saved'\n", "nb.py": ""})
    overlays = {"helper.py": "VALUE = 'unsaved'\n"}
    result = await senv.execute(cell(root, "nb.py", "import helper\nhelper.VALUE", "python", overlays=overlays))
    assert (result.exit_code, result.value) == (0, "'unsaved'"), result.output


async def test_later_cells_see_files_saved_after_the_session_started(senv: CodeEnvironment, tmp_path: Path):
    root = write(tmp_path / "proj", {"a.py": "V = 1\n", "nb.py": ""})
    assert (await senv.execute(cell(root, "nb.py", "import a\na.V", "python"))).value == "1"
    write(root, {"a.py": "V = 2\n", "new.py": "W = 3\n"})
    # (locally the directory seen through the overlay may keep its time: Python's import cache needs telling, README)
    later = await senv.execute(
        cell(
            root,
            "nb.py",
            "import importlib\nimportlib.invalidate_caches()\nimport new\n(open('a.py').read(), new.W)",
            "python",
        )
    )
    assert (later.exit_code, later.value) == (0, "('V = 2\\n', 3)"), later.output
    if not isinstance(senv, LocalCodeEnvironment):  # Daytona syncs before every cell: newer unsaved text too
        unsaved = await senv.execute(cell(root, "nb.py", "open('b.py').read()", "python", overlays={"b.py": "B"}))
        assert unsaved.value == "'B'", unsaved.output


async def test_a_cancelled_session_cell_in_a_workspace_keeps_the_state(senv: CodeEnvironment, tmp_path: Path):
    root = write(tmp_path / "proj", {"helper.py": "BASE = 40\n", "nb.py": ""})
    await senv.execute(cell(root, "nb.py", "import helper\nx = helper.BASE + 2", "python"))
    stopped = await _cancel_once_started(senv, cell(root, "nb.py", FOREVER, "python"))
    assert stopped.exit_code == TIMEOUT_EXIT_CODE and "the session keeps its state" in stopped.output, stopped.output
    after = await senv.execute(cell(root, "nb.py", "x", "python"))
    assert (after.exit_code, after.value) == (0, "42"), after.output
    assert "fresh session" not in after.output


async def test_a_cancelled_session_cell_keeps_the_state_where_the_agent_forks_a_first(
    tmp_path: Path, agent_without_clone: None
):
    """Where clone(2)'s number is not known the agent forks A, which makes the run's namespaces and forks B: the
    interrupt goes agent → A → B → the cell's processes."""
    env = LocalCodeEnvironment(timeout=20)
    try:
        root = write(tmp_path / "proj", {"nb.py": ""})
        await env.execute(cell(root, "nb.py", "x = 42", "python"))
        stopped = await _cancel_once_started(env, cell(root, "nb.py", FOREVER, "python"))
        assert stopped.exit_code == TIMEOUT_EXIT_CODE and "keeps its state" in stopped.output, stopped.output
        after = await env.execute(cell(root, "nb.py", "x", "python"))
        assert (after.exit_code, after.value) == (0, "42"), after.output
    finally:
        await env.aclose()


async def test_without_isolation_a_session_runs_in_the_folder_itself_as_the_file(tmp_path: Path):
    """isolation="none": as a fresh run, the worker runs in the workspace folder (no view), as the file."""
    root = write(tmp_path / "proj", {"app/helper.py": "VALUE = 41\n", "app/nb.py": ""})
    async with LocalCodeEnvironment(isolation="none", timeout=20) as env:
        code = "import os, helper\n(helper.VALUE + 1, os.getcwd(), __file__)"
        result = await env.execute(cell(root, "app/nb.py", code, "python"))
    assert (result.exit_code, result.value) == (0, repr((42, f"{root}/app", f"{root}/app/nb.py"))), result.output
    assert result.source_path == f"{root}/app/nb.py"
