"""The workspace folder in the local sandbox (RunSpec.workspace): real bubblewrap, real temp folders, four languages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daytona_lsp.core import RunSpec
from daytona_lsp.core.environment import WorkspaceView
from daytona_lsp.core.errors import find_errors
from daytona_lsp.core.local import LocalCodeEnvironment
from daytona_lsp.core.local.workspace import VIEW_DIR

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap needs Linux")

TSX = os.environ.get("DAYTONA_LSP_TSX")


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def spec(root: Path, path: str, code: str | None = None, **kw: object) -> RunSpec:
    """A run of ``root/path`` (its text on disk unless ``code``) in the file's directory, as the LSP sends it."""
    language = {"py": "python", "js": "javascript", "ts": "typescript", "sh": "bash"}[path.rsplit(".", 1)[1]]
    view = WorkspaceView(
        root=str(root),
        overlays=kw.pop("overlays", {}),  # type: ignore[arg-type]
        include=kw.pop("include", ()),  # type: ignore[arg-type]
        write_back=bool(kw.pop("write_back", False)),
    )
    text = code if code is not None else (root / path).read_text()
    cwd = str(kw.pop("cwd", os.path.dirname(path)))
    return RunSpec(code=text, language=language, path=path, cwd=cwd, workspace=view, **kw)  # type: ignore[arg-type]


async def test_python_imports_siblings_and_root_modules_reads_data_and_runs_as_its_real_path(env, tmp_path):
    root = write(
        tmp_path / "proj",
        {
            "pyproject.toml": "",
            "app/helper.py": "VALUE = 41\n",
            "app/data.csv": "a,b\n",
            "app/main.py": "import sys, os, helper\n"
            "print(helper.VALUE + 1, __file__, sys.argv[0], os.getcwd(), sys.argv[1:])\n"
            "print(open('data.csv').read().strip())\n"
            "raise ValueError('boom')\n",
        },
    )
    result = await env.execute(spec(root, "app/main.py", args=("x",)))
    main = f"{root}/app/main.py"
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"42 {main} {main} {root}/app ['x']\na,b\n"), result.output
    assert f'File "{main}", line 4, in <module>' in result.output
    assert "agent.py" not in result.output  # the traceback starts at the user's code, as python's
    assert result.source_path == main and result.line_offset == 0
    assert result.changed_files == []


async def test_cell_run_keeps_the_files_directory_path_and_exact_line_mapping(env, tmp_path):
    root = write(tmp_path / "proj", {"helper.py": "def f():\n    return 1 / 0\n", "nb.py": "# whole file\n"})
    cell = "import helper\nx = 1\nhelper.f()\n"  # the LSP sends a cell's code with the file's path
    result = await env.execute(spec(root, "nb.py", code=cell))
    assert result.exit_code == 1
    errors = find_errors(
        result.output, "python", source_path=result.source_path, line_offset=result.line_offset, code=cell
    )
    assert [(e.line, e.message) for e in errors] == [(2, "ZeroDivisionError: division by zero")], result.output
    assert f'File "{root}/helper.py", line 2, in f' in result.output


async def test_javascript_requires_siblings_and_project_packages_as_its_real_path(env, tmp_path):
    root = write(
        tmp_path / "proj",
        {
            "package.json": "{}",
            "node_modules/leftpad/index.js": "module.exports = (s, n) => s.padStart(n, '.');\n",
            "src/mod.js": "exports.v = 41;\n",
            "src/main.js": "const { v } = require('./mod');\nconst pad = require('leftpad');\n"
            "const fs = require('fs');\n"
            "console.log(pad(String(v + 1), 4), require.main.filename, __filename, process.cwd());\n"
            "console.log(fs.readFileSync('mod.js', 'utf8').trim());\n",
        },
    )
    result = await env.execute(spec(root, "src/main.js"))
    main = f"{root}/src/main.js"
    assert (result.exit_code, result.output) == (0, f"..42 {main} {main} {root}/src\nexports.v = 41;\n"), result.output


@pytest.mark.skipif(
    not TSX, reason="DAYTONA_LSP_TSX not set (bash scripts/setup-tsx installs tsx; scripts/test sets it)"
)
async def test_typescript_imports_a_sibling_module(tmp_path):
    root = write(
        tmp_path / "proj",
        {
            "package.json": "{}",
            "mod.ts": "export const v: number = 41;\n",
            "main.ts": "import { v } from './mod.ts';\nconsole.log(v + 1, process.cwd());\n",
        },
    )
    env = LocalCodeEnvironment(timeout=30, typescript_runner=TSX)
    try:
        result = await env.execute(spec(root, "main.ts"))
    finally:
        await env.aclose()
    assert (result.exit_code, result.output) == (0, f"42 {root}\n"), result.output
    assert result.source_path == f"{root}/main.ts"


async def test_bash_sources_a_sibling_script_and_sees_its_real_path_as_dollar0(env, tmp_path):
    root = write(
        tmp_path / "proj",
        {"scripts/lib.sh": 'greet() { echo "hi $1"; }\n', "scripts/run.sh": 'source ./lib.sh\ngreet "$0"\npwd\n'},
    )
    result = await env.execute(spec(root, "scripts/run.sh"))
    assert (result.exit_code, result.output) == (0, f"hi {root}/scripts/run.sh\n{root}/scripts\n"), result.output


async def test_unsaved_text_of_an_open_helper_is_what_the_run_sees_and_the_disk_copy_shows_again_without_it(
    env, tmp_path
):
    root = write(tmp_path / "proj", {"helper.py": "VALUE = 1\n", "lib.js": "exports.v = 1;\n"})
    py = "import helper\nprint(helper.VALUE)\n"
    js = "console.log(require('./lib').v)\n"
    unsaved = await env.execute(spec(root, "main.py", code=py, overlays={str(root / "helper.py"): "VALUE = 2\n"}))
    unsaved_js = await env.execute(spec(root, "main.js", code=js, overlays={"lib.js": "exports.v = 2;\n"}))
    saved = await env.execute(spec(root, "main.py", code=py))
    assert (unsaved.output, unsaved_js.output, saved.output) == ("2\n", "2\n", "1\n")
    new_file = await env.execute(  # an open document never saved: at its path for the run, not on the host
        spec(root, "main.py", code="import fresh\nprint(fresh.X)\n", overlays={"fresh.py": "X = 'new'\n"})
    )
    assert (new_file.exit_code, new_file.output, new_file.changed_files) == (0, "new\n", [])
    assert not (root / "fresh.py").exists() and not (root / "main.py").exists()
    closed = await env.execute(spec(root, "main.py", code="import os\nprint(os.path.exists('fresh.py'))\n"))
    assert closed.output == "False\n"  # the document closed unsaved: the file is gone again


async def test_a_file_the_host_replaces_by_a_rename_shows_its_new_content_to_the_next_run(env, tmp_path):
    root = write(tmp_path / "proj", {"data.txt": "v1\n"})
    code = "print(open('data.txt').read().strip())\n"
    first = await env.execute(spec(root, "main.py", code=code))
    (root / "data.tmp").write_text("v2\n")
    os.replace(root / "data.tmp", root / "data.txt")  # as editors save
    second = await env.execute(spec(root, "main.py", code=code))
    assert (first.output, second.output) == ("v1\n", "v2\n")


async def test_writes_stay_in_the_sandbox_for_its_lifetime_and_each_run_lists_what_it_changed(env, tmp_path):
    root = write(tmp_path / "proj", {"data.txt": "original\n", "keep.txt": "k\n", ".gitignore": "cache/\n"})
    write_run = (
        "import os\nopen('data.txt', 'w').write('changed\\n')\nos.makedirs('out', exist_ok=True)\n"
        "open('out/new.txt', 'w').write('new')\nos.remove('keep.txt')\nos.makedirs('cache', exist_ok=True)\n"
        "open('cache/x', 'w').write('ignored')\nopen('data.txt', 'a').close()\n"
    )
    first = await env.execute(spec(root, "main.py", code=write_run))
    assert first.exit_code == 0, first.output
    assert first.changed_files == ["data.txt", "out/new.txt"]  # deletions and ignored paths are not changes
    assert (root / "data.txt").read_text() == "original\n" and (root / "keep.txt").exists()
    assert not (root / "out").exists() and not (root / "main.py").exists()
    read_run = "import os\nprint(open('data.txt').read().strip(), os.path.exists('keep.txt'))\n"
    second = await env.execute(spec(root, "main.py", code=read_run))
    assert (second.output, second.changed_files) == ("changed False\n", [])  # the sandbox keeps its copy
    assert env.work_dir is not None  # each run's overlay work directory is gone with the run, the layer stays
    assert [p.name for p in env.work_dir.parent.glob("layer-*/*")] == ["upper"]
    await env.reset()
    fresh = await env.execute(spec(root, "main.py", code=read_run))
    assert fresh.output == "original True\n"  # a new sandbox starts from the host folder again


async def test_write_back_copies_changed_files_to_the_host_but_never_deletes_or_leaves_the_folder(env, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = write(tmp_path / "proj", {"data.txt": "original\n", "gone.txt": "stays on the host\n"})
    (root / "escape").symlink_to(outside)
    code = (
        "import os\nopen('data.txt', 'w').write('changed\\n')\nos.makedirs('out/deep')\n"
        "open('out/deep/new.txt', 'w').write('new')\nos.remove('gone.txt')\n"
        "os.remove('escape')\nos.mkdir('escape')\nopen('escape/planted.txt', 'w').write('x')\n"  # the host's is a link out
    )
    result = await env.execute(spec(root, "main.py", code=code, write_back=True))
    assert result.exit_code == 0, result.output
    assert result.changed_files == ["data.txt", "escape/planted.txt", "out/deep/new.txt"]
    assert result.output.endswith(
        "workspace: not written back (outside the folder, through a symlink or not a file): escape/planted.txt\n"
    )
    assert (root / "data.txt").read_text() == "changed\n"
    assert (root / "out/deep/new.txt").read_text() == "new"
    assert (root / "gone.txt").read_text() == "stays on the host\n"
    assert list(outside.iterdir()) == []


async def test_secrets_are_unreadable_unless_include_names_them(env, tmp_path):
    root = write(
        tmp_path / "proj",
        {
            ".env": "API_KEY=secret-env\n",
            ".env.local": "secret-local\n",
            "deploy/id_rsa": "secret-key\n",
            "credentials/aws.json": "secret-aws\n",
            "certs/server.pem": "secret-pem\n",
            "config.txt": "visible\n",
        },
    )
    (root / "notes.txt").symlink_to(root / "deploy" / "id_rsa")
    code = (
        "import os\n"
        "for p in ('.env', '.env.local', 'deploy/id_rsa', 'credentials/aws.json', 'certs/server.pem', 'notes.txt',"
        " 'config.txt'):\n"
        "    try:\n        print(p, repr(open(p).read()))\n    except OSError as e:\n        print(p, type(e).__name__)\n"
        "print(sorted(os.listdir('credentials')))\n"
    )
    hidden = await env.execute(spec(root, "main.py", code=code))
    assert "secret" not in hidden.output, hidden.output
    assert "config.txt 'visible\\n'" in hidden.output and "[]\n" in hidden.output
    staging = await env.execute(spec(root, "main.py", code=f"import os\nprint(os.listdir({VIEW_DIR!r}))\n"))
    assert staging.output == "[]\n"  # the folder's read-only copy and the writable layer are out of reach
    for name in (".env", "deploy/id_rsa", "notes.txt"):  # the name stays, the content is gone
        assert f"{name} ''" in hidden.output
    named = await env.execute(spec(root, "main.py", code=code, include=(".env",)))
    assert "'.env' 'API_KEY=secret-env\\n'" in named.output.replace(".env '", "'.env' '")
    assert "secret-key" not in named.output and "secret-local" not in named.output
    (root / "later").mkdir()
    (root / "later" / "id_ed25519").write_text("secret-new\n")  # made after the first runs: hidden too
    later = await env.execute(spec(root, "main.py", code="print(repr(open('later/id_ed25519').read()))\n"))
    assert later.output == "''\n"


async def test_a_symlink_out_of_the_workspace_is_not_followed_and_named_in_one_line(env, tmp_path):
    outside = tmp_path / "private"
    write(outside, {"token.txt": "host-only\n"})
    root = write(tmp_path / "proj", {"ok.txt": "ok\n"})
    (root / "link.txt").symlink_to(outside / "token.txt")
    (root / "linkdir").symlink_to(outside)
    code = (
        "for p in ('link.txt', 'linkdir/token.txt', 'ok.txt'):\n"
        "    try:\n        print(p, open(p).read().strip())\n    except OSError as e:\n        print(p, type(e).__name__)\n"
    )
    result = await env.execute(spec(root, "main.py", code=code))
    assert "host-only" not in result.output, result.output
    assert "ok.txt ok\n" in result.output
    assert "link.txt FileNotFoundError" in result.output
    lines = [line for line in result.output.splitlines() if "symlinks pointing outside the workspace" in line]
    assert len(lines) == 1 and "link.txt" in lines[0] and "linkdir" in lines[0]


async def test_a_name_that_is_not_utf8_is_named_and_the_run_goes_on(env, tmp_path):
    root = write(tmp_path / "proj", {"ok.txt": "ok\n"})
    (root / os.fsdecode(b"caf\xe9.txt")).write_text("latin-1 name\n")
    result = await env.execute(spec(root, "main.py", code="print(open('ok.txt').read().strip())\n"))
    assert result.exit_code == 0 and result.output.endswith("ok\n"), result.output
    assert "names not valid UTF-8: caf\\xe9.txt" in result.output


async def test_a_system_directory_as_the_workspace_folder_runs_without_it_saying_why(env):
    result = await env.execute(RunSpec(code="print(1)\n", language="python", workspace=WorkspaceView("/usr")))
    assert (result.exit_code, result.output) == (
        0,
        "[daytona-lsp: the workspace folder /usr is a system directory; running without it]\n1\n",
    )


async def test_a_workspace_folder_that_does_not_exist_runs_without_it_saying_why(env, tmp_path):
    missing = tmp_path / "nowhere"
    result = await env.execute(RunSpec(code="print(1)\n", language="python", workspace=WorkspaceView(str(missing))))
    assert result.exit_code == 0
    assert (
        result.output
        == f"[daytona-lsp: the workspace folder {missing} cannot be read (No such file or directory); running without it]\n1\n"
    )


@pytest.fixture
def venv_project(tmp_path):
    """A project with a virtualenv (made from this interpreter, without pip) holding a module of its own."""
    root = write(tmp_path / "proj", {"pyproject.toml": ""})
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / ".venv")], check=True)
    site = next((root / ".venv" / "lib").glob("python3*/site-packages"))
    (site / "projpkg.py").write_text("NAME = 'from the venv'\n")
    return root


async def test_the_workspace_virtualenv_is_the_interpreter_and_the_output_says_so(env, venv_project):
    root = venv_project
    code = "import sys, projpkg\nprint(sys.prefix, projpkg.NAME)\n"
    result = await env.execute(spec(root, "main.py", code=code))
    assert result.exit_code == 0, result.output
    venv_python = f"{root}/.venv/bin/python"
    assert result.output == (
        f"[daytona-lsp: python: {venv_python} (the workspace's virtualenv)]\n{root}/.venv from the venv\n"
    )


async def test_an_unsaved_document_over_the_size_cap_is_named_and_the_disk_copy_is_used(env, tmp_path):
    root = write(tmp_path / "proj", {"big.py": "X = 'disk'\n"})
    view = WorkspaceView(str(root), overlays={"big.py": "X = 'unsaved'\n" + "#" * 2**20}, max_file_bytes=2**20)
    run = RunSpec(code="import big\nprint(big.X)\n", language="python", path="main.py", cwd="", workspace=view)
    result = await env.execute(run)
    assert result.exit_code == 0
    assert result.output == "[daytona-lsp: workspace: skipped 1 over 1 MB each: big.py]\ndisk\n"


async def test_prewarm_starts_the_container_that_shows_the_environments_workspace_folder(tmp_path):
    root = write(tmp_path / "proj", {"helper.py": "X = 1\n"})
    env = LocalCodeEnvironment(timeout=20, workspace_folder=root)
    try:
        await env.prewarm()
        warm = env.sandbox_id
        result = await env.execute(spec(root, "main.py", code="import helper\nprint(helper.X)\n"))
        assert (result.output, env.sandbox_id) == ("1\n", warm)  # the run found its container started
    finally:
        await env.aclose()


async def test_without_a_writable_layer_the_folder_is_read_only_for_the_run_which_says_so(env, tmp_path):
    code = "open('data.txt', 'w').write('changed')\n"
    root = write(tmp_path / "proj", {"data.txt": "original\n", "main.py": code})
    assert (await env.execute(spec(root, "main.py"))).exit_code == 0
    assert env.work_dir is not None
    for upper in env.work_dir.parent.glob("layer-*/upper"):  # the overlay cannot be mounted any more
        shutil.rmtree(upper)
    result = await env.execute(spec(root, "main.py"))
    assert result.exit_code == 1
    assert result.output.startswith(
        "daytona-lsp: the workspace is read-only in this sandbox (no writable overlay here: No such file or directory)\n"
    ), result.output
    assert "OSError: [Errno 30] Read-only file system: 'data.txt'" in result.output
    assert (root / "data.txt").read_text() == "original\n" and result.changed_files == []


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("w.py", "open('data.txt', 'w').write('py')\n"),
        ("w.js", "require('fs').writeFileSync('data.txt', 'js');\n"),
        ("w.sh", "printf sh > data.txt\n"),
    ],
)
async def test_each_language_writes_to_the_sandbox_copy_only(env, tmp_path, path, code):
    root = write(tmp_path / "proj", {"data.txt": "original\n"})
    result = await env.execute(spec(root, path, code=code))
    assert (result.exit_code, result.changed_files) == (0, ["data.txt"]), result.output
    assert (root / "data.txt").read_text() == "original\n"
