"""A Daytona run sees the workspace folder (issue 9): the folder is synced into the sandbox through the unmodified SDK
against the Daytona test server — only what changed, in one upload request, none when nothing did; secrets never
leave the machine; unsaved text wins over the disk; the program runs as its real synced file; what it wrote is
listed (and written back on request) without touching the user's files otherwise."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from tests.daytona_server import DaytonaTestServer
from tests.daytona_server.plugin import DaytonaEnvFactory

from daytona_lsp.core import RunSpec
from daytona_lsp.core.daytona import DaytonaCodeEnvironment
from daytona_lsp.core.daytona.sync import write_files
from daytona_lsp.core.daytona.tree import Trailer
from daytona_lsp.core.environment import CodeLanguage, CodeRunResult, WorkspaceView
from daytona_lsp.core.errors import find_errors

UPLOAD = "POST /toolbox/files/bulk-upload"

SIBLINGS: dict[CodeLanguage, tuple[str, str, str]] = {
    # language: (main file, its code, the sibling it uses and that sibling's code after "|")
    "python": (
        "main.py",
        "import helper\nprint(helper.greet())\n",
        "helper.py|def greet():\n    return 'hi from helper'\n",
    ),
    "javascript": (
        "main.js",
        "const m = require('./mod');\nconsole.log(m.greet());\n",
        "mod.js|exports.greet = () => 'hi from helper';\n",
    ),
    "typescript": (
        "main.ts",
        "import { greet } from './mod';\nconsole.log(greet());\n",
        "mod.ts|export function greet(): string { return 'hi from helper'; }\n",
    ),
    "bash": ("main.sh", "source ./lib.sh\ngreet\n", "lib.sh|greet() { echo 'hi from helper'; }\n"),
}


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


async def run(
    env: DaytonaCodeEnvironment,
    root: Path,
    path: str | None,
    *,
    code: str | None = None,
    stream: bool = True,
    **kw: Any,
) -> tuple[CodeRunResult, str]:
    """Run ``path`` (its text on disk unless ``code``) with the folder ``root``; returns the result and what streamed."""
    view_keys = ("overlays", "include", "max_file_bytes", "max_total_bytes", "write_back")
    view = WorkspaceView(root=str(root), **{k: kw.pop(k) for k in view_keys if k in kw})
    if code is None:
        assert path is not None
        code = (root / path).read_text()
    language: CodeLanguage = kw.pop("language", "python")
    cwd = kw.pop("cwd", os.path.dirname(path) if path else None) or None
    chunks: list[str] = []
    on_output = (lambda _stream, text: chunks.append(text)) if stream else None
    spec = RunSpec(code, language, path=path, cwd=cwd, workspace=view, **kw)
    result = await asyncio.wait_for(env.execute(spec, on_output), 60)
    return result, "".join(chunks)


def sandbox_copy(server: DaytonaTestServer, result: CodeRunResult) -> Path:
    assert result.workspace_root is not None
    path = Path(result.workspace_root)
    assert path.is_relative_to(server.only_sandbox().workdir)  # under the sandbox user's home
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    return root


@pytest.mark.parametrize("stream", [True, False], ids=["streaming", "exec"])
@pytest.mark.parametrize("language", list(SIBLINGS))
async def test_a_file_uses_its_sibling_in_the_synced_folder(
    make_daytona_env: DaytonaEnvFactory,
    daytona_server: DaytonaTestServer,
    project: Path,
    language: CodeLanguage,
    stream: bool,
) -> None:
    if language == "typescript" and not daytona_server.runs_typescript:
        pytest.skip("TypeScript needs tsx in the test server: DAYTONA_LSP_TSX=$(bash scripts/setup-tsx)")
    main, code, sibling = SIBLINGS[language]
    sibling_name, sibling_code = sibling.split("|")
    write(project, {f"src/{main}": code, f"src/{sibling_name}": sibling_code})
    result, streamed = await run(make_daytona_env(), project, f"src/{main}", language=language, stream=stream)
    assert (result.exit_code, result.output) == (0, "hi from helper\n"), result.output
    if stream:
        assert streamed == result.output  # the change listing never reaches the stream
    copy = sandbox_copy(daytona_server, result)
    assert copy.name == "proj" and copy.parent.name == "workspace"
    assert result.source_path == str(copy / "src" / main)
    assert result.changed_files == []


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("python", "import os, sys\nprint(__file__, sys.argv[0], os.getcwd(), sep='\\n')\n"),
        ("javascript", "console.log(__filename); console.log(require.main.filename); console.log(process.cwd());\n"),
        ("bash", 'echo "$0"; pwd\n'),
    ],
)
async def test_the_program_sees_its_real_synced_path_and_directory(
    make_daytona_env: DaytonaEnvFactory,
    daytona_server: DaytonaTestServer,
    project: Path,
    language: CodeLanguage,
    code: str,
) -> None:
    name = {"python": "app/main.py", "javascript": "app/main.js", "bash": "app/main.sh"}[language]
    write(project, {name: code})
    result, _ = await run(make_daytona_env(), project, name, language=language)
    assert result.exit_code == 0, result.output
    copy = sandbox_copy(daytona_server, result)
    file, directory = str(copy / name), str(copy / "app")
    lines = result.output.splitlines()
    assert lines[-1] == directory
    assert set(lines[:-1]) == {file}


async def test_python_imports_from_the_folder_root_and_reads_a_data_file_from_its_directory(
    make_daytona_env: DaytonaEnvFactory, project: Path
) -> None:
    write(
        project,
        {
            "util.py": "TOTAL = 'sum'\n",
            "pkg/data.csv": "a,b\n1,2\n",
            "pkg/main.py": "import util\nprint(util.TOTAL, open('data.csv').read().split()[1])\n",
        },
    )
    result, _ = await run(make_daytona_env(), project, "pkg/main.py")
    assert (result.exit_code, result.output) == (0, "sum 1,2\n"), result.output


async def test_unsaved_text_of_the_file_and_of_a_helper_is_what_runs(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer, project: Path
) -> None:
    write(project, {"helper.py": "X = 'saved'\n", "main.py": "print('old main')\n"})
    unsaved_main = "import helper\nprint('new main', helper.X)\n"
    overlays = {str(project / "helper.py"): "X = 'unsaved'\n", "main.py": unsaved_main}
    result, _ = await run(make_daytona_env(), project, "main.py", code=unsaved_main, overlays=overlays)
    assert (result.exit_code, result.output) == (0, "new main unsaved\n"), result.output
    assert (project / "helper.py").read_text() == "X = 'saved'\n"
    assert result.source_path == str(sandbox_copy(daytona_server, result) / "main.py")  # the file itself ran


async def test_a_selection_runs_beside_its_file_with_its_own_line_numbers(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer, project: Path
) -> None:
    write(
        project,
        {"lib/helper.py": "X = 1\n", "lib/main.py": "import helper\nprint(helper.X)\n# %%\nprint(helper.X + 1)\n"},
    )
    selection = "import helper\nprint(helper.X + 1)\n1 / 0\n"
    result, _ = await run(make_daytona_env(), project, "lib/main.py", code=selection)
    assert result.exit_code == 1
    assert result.output.startswith("2\n")
    copy = sandbox_copy(daytona_server, result)
    assert result.source_path is not None and Path(result.source_path).parent == copy / "lib"
    errors = find_errors(
        result.output, "python", source_path=result.source_path, line_offset=result.line_offset, code=selection
    )
    assert [e.line for e in errors] == [2]  # 0-based: the selection's own third line
    assert sorted(p.name for p in (copy / "lib").iterdir()) == ["helper.py", "main.py"]  # the selection's file is gone


async def test_an_error_in_a_helper_names_the_helpers_synced_path_and_line(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer, project: Path
) -> None:
    write(
        project, {"helper.py": "def boom():\n    raise ValueError('x')\n", "main.py": "import helper\nhelper.boom()\n"}
    )
    result, _ = await run(make_daytona_env(), project, "main.py")
    assert result.exit_code == 1
    helper = str(sandbox_copy(daytona_server, result) / "helper.py")
    assert f'File "{helper}", line 2' in result.output


async def test_a_write_is_listed_in_changed_files_and_leaves_the_host_untouched(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer, project: Path
) -> None:
    code = "open('notes.txt', 'w').write('from the run')\nimport os\nos.makedirs('out', exist_ok=True)\nopen('out/r.txt', 'w').write('r')\nimport helper\n"
    write(project, {"notes.txt": "mine\n", "helper.py": "", "main.py": code})
    result, streamed = await run(make_daytona_env(), project, "main.py")
    assert result.exit_code == 0, result.output
    assert result.changed_files == ["notes.txt", "out/r.txt"]  # __pycache__ (ignored) is not listed
    assert (result.output, streamed) == ("", "")
    assert (project / "notes.txt").read_text() == "mine\n" and not (project / "out").exists()
    assert (sandbox_copy(daytona_server, result) / "notes.txt").read_text() == "from the run"


async def test_write_back_downloads_the_changed_files_in_one_request_and_does_not_upload_them_again(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer, project: Path
) -> None:
    code = "import os\nos.makedirs('out', exist_ok=True)\nopen('out/r.txt', 'w').write('result')\nopen('a.txt', 'a').write('+run')\nopen('ü.txt', 'w').write('ü')\n"
    write(project, {"a.txt": "host", "main.py": code})
    env = make_daytona_env()
    result, _ = await run(env, project, "main.py", write_back=True)
    assert result.changed_files == ["a.txt", "out/r.txt", "ü.txt"], result.output
    assert (project / "out" / "r.txt").read_text() == "result" and (project / "ü.txt").read_text() == "ü"
    assert (project / "a.txt").read_text() == "host+run"
    assert len(daytona_server.downloads) == 1
    uploads = daytona_server.count(UPLOAD)
    result, _ = await run(env, project, "main.py", code="print('again')\n")
    assert result.output == "again\n"
    assert daytona_server.count(UPLOAD) == uploads  # what came back is what the sandbox has


async def test_secrets_never_reach_the_server_unless_included(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer, project: Path
) -> None:
    write(
        project,
        {
            ".env": "TOKEN=1\n",
            "id_rsa": "KEY\n",
            "keys/server.pem": "PEM\n",
            "config.json": "{}\n",
            ".gitignore": "build.log\n",
            "build.log": "x\n",
            "node_modules/x/index.js": "",
            "main.py": "import os\nprint(sorted(os.listdir('.')))\n",
        },
    )
    env = make_daytona_env()
    result, _ = await run(env, project, "main.py")
    assert result.output == "['.gitignore', 'config.json', 'main.py']\n", result.output
    assert daytona_server.uploaded_names().isdisjoint({".env", "id_rsa", "server.pem", "build.log", "index.js"})
    result, _ = await run(env, project, "main.py", include=(".env",))
    assert result.output == "['.env', '.gitignore', 'config.json', 'main.py']\n"
    assert daytona_server.uploads[-1] == [str(sandbox_copy(daytona_server, result) / ".env")]
    assert "id_rsa" not in daytona_server.uploaded_names()


async def test_files_over_a_cap_are_named_in_one_line_and_the_run_goes_on(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer, project: Path
) -> None:
    write(project, {"big.bin": b"x" * 2048, "main.py": "import os\nprint(os.path.exists('big.bin'))\n"})
    result, streamed = await run(make_daytona_env(), project, "main.py", max_file_bytes=1024)
    assert result.exit_code == 0
    first, rest = result.output.split("\n", 1)
    assert first.startswith("workspace: skipped 1 over") and "big.bin" in first
    assert rest == "False\n"
    assert streamed == result.output
    assert "big.bin" not in daytona_server.uploaded_names()


async def test_only_changes_are_uploaded_in_one_request_and_nothing_when_nothing_changed(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer, project: Path
) -> None:
    write(project, {f"m{i}.py": f"V = {i}\n" for i in range(20)} | {"main.py": "import m3\nprint(m3.V)\n"})
    env = make_daytona_env()
    await run(env, project, "main.py")
    assert len(daytona_server.uploads) == 1 and len(daytona_server.uploads[0]) == 21
    toolbox = daytona_server.toolbox_requests()
    result, _ = await run(env, project, "main.py", stream=False)
    assert result.output == "3\n"
    assert len(daytona_server.uploads) == 1  # nothing changed: no upload
    assert daytona_server.toolbox_requests() - toolbox == 1  # the run's own request only
    (project / "m3.py").write_text("V = 'three'\n")
    result, _ = await run(env, project, "main.py")
    assert result.output == "three\n"
    assert len(daytona_server.uploads) == 2 and [os.path.basename(p) for p in daytona_server.uploads[1]] == ["m3.py"]


async def test_a_deleted_file_is_deleted_in_the_sandbox(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer, project: Path
) -> None:
    write(
        project,
        {
            "old.py": "",
            "sub/gone.txt": "x",
            "main.py": "import os\nprint(os.path.exists('old.py'), os.path.exists('sub/gone.txt'))\n",
        },
    )
    env = make_daytona_env()
    result, _ = await run(env, project, "main.py")
    assert result.output == "True True\n"
    (project / "old.py").unlink()
    (project / "sub" / "gone.txt").unlink()
    executes = daytona_server.count("POST /toolbox/process/execute")
    result, _ = await run(env, project, "main.py", stream=False)
    assert result.output == "False False\n"
    assert daytona_server.count("POST /toolbox/process/execute") - executes == 2  # the deletion + the run
    assert len(daytona_server.uploads) == 1


@pytest.mark.parametrize("how", ["reset", "deleted from outside"])
async def test_a_recreated_sandbox_gets_the_whole_folder_again(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer, project: Path, how: str
) -> None:
    write(project, {"helper.py": "X = 5\n", "main.py": "import helper\nprint(helper.X)\n"})
    env = make_daytona_env()
    await run(env, project, "main.py")
    first = env.sandbox_id
    assert first is not None
    if how == "reset":
        await env.reset()
    else:
        daytona_server.forget_sandbox(first)
    result, _ = await run(env, project, "main.py")
    assert (result.exit_code, result.output) == (0, "5\n"), result.output
    assert env.sandbox_id != first
    assert len(daytona_server.uploads) == 2 and len(daytona_server.uploads[1]) == 2


async def test_a_path_outside_the_folder_is_refused_with_a_clear_result(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer, project: Path
) -> None:
    result, _ = await run(make_daytona_env(), project, "../x.py", code="print(1)\n")
    assert result.exit_code == 2 and "not a path inside the workspace folder" in result.output
    assert daytona_server.toolbox_requests() == 0


def test_the_change_listing_is_found_when_the_marker_is_split_across_chunks() -> None:
    trailer = Trailer()
    text = "out\x1e1\n" + trailer.marker + "a.txt\t1\t2.0\n../x\t1\t1\n/abs\t1\t1\nb/c.txt\t3\t4.5\n"
    passed = "".join(trailer.feed(text[i : i + 3]) for i in range(0, len(text), 3)) + trailer.flush()
    assert passed == "out\x1e1\n"
    assert trailer.changed(None) == ["a.txt", "b/c.txt"]
    assert Trailer().changed(None) is None  # no listing (the command was stopped): unknown, not "nothing"


def test_write_back_never_writes_outside_the_folder_or_through_a_symlink(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    (root / "file-link").symlink_to(outside / "target.txt")
    (root / "run.sh").write_text("old")
    (root / "run.sh").chmod(0o750)
    written, refused = write_files(
        str(root),
        {
            "ok/new.txt": b"1",
            "../escape.txt": b"2",
            "link/x.txt": b"3",
            "file-link": b"4",
            "/etc/x": b"5",
            "run.sh": b"new",
        },
    )
    assert sorted(written) == ["ok/new.txt", "run.sh"] and (root / "ok" / "new.txt").read_bytes() == b"1"
    assert (root / "run.sh").read_bytes() == b"new" and (root / "run.sh").stat().st_mode & 0o777 == 0o750
    assert sorted(p.name for p in root.iterdir()) == ["file-link", "link", "ok", "run.sh"]  # no temporary left
    assert sorted(refused) == ["../escape.txt", "/etc/x", "file-link", "link/x.txt"]
    assert list(outside.iterdir()) == [] and not (tmp_path / "escape.txt").exists()


async def test_a_run_in_an_empty_folder_lists_what_it_created(
    make_daytona_env: DaytonaEnvFactory, project: Path
) -> None:
    result, _ = await run(make_daytona_env(), project, None, code="open('made.txt', 'w').write('x')\n", stream=False)
    assert (result.exit_code, result.output, result.changed_files) == (0, "", ["made.txt"])


async def test_concurrent_first_runs_upload_the_folder_once(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer, project: Path
) -> None:
    write(project, {"helper.py": "X = 7\n", "main.py": "import helper\nprint(helper.X)\n"})
    env = make_daytona_env()
    results = await asyncio.gather(*(run(env, project, "main.py") for _ in range(3)))
    assert [r.output for r, _ in results] == ["7\n"] * 3
    assert len(daytona_server.uploads) == 1


async def test_a_failed_upload_is_a_clear_result_and_the_next_run_uploads_again(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer, project: Path
) -> None:
    write(project, {"helper.py": "X = 1\n", "main.py": "import helper\nprint(helper.X)\n"})
    env = make_daytona_env()
    await run(env, project, "main.py")
    (project / "helper.py").write_text("X = 2\n")
    daytona_server.fail_toolbox(500, message="disk full")
    result, _ = await run(env, project, "main.py")
    assert result.exit_code == 1 and "disk full" in result.output and daytona_server.api_key not in result.output
    result, _ = await run(env, project, "main.py")
    assert (result.exit_code, result.output) == (0, "2\n")
    assert [os.path.basename(p) for p in daytona_server.uploads[-1]] == ["helper.py"]


async def test_the_test_server_takes_the_sdks_bulk_upload_and_download_as_sent(
    daytona_server: DaytonaTestServer,
) -> None:
    from daytona import AsyncDaytona, DaytonaConfig, FileDownloadRequest, FileUpload

    async with AsyncDaytona(DaytonaConfig(api_key=daytona_server.api_key, api_url=daytona_server.api_url)) as client:
        sandbox = await client.create()
        home = await sandbox.get_user_home_dir()
        paths = [f"{home}/w/a b.txt", f"{home}/w/sub/ü.bin"]
        await sandbox.fs.upload_files([FileUpload(b"one", paths[0]), FileUpload(b"\x00\xff", paths[1])])
        got = await sandbox.fs.download_files([FileDownloadRequest(p) for p in [*paths, f"{home}/w/missing"]])
    assert daytona_server.uploads == [paths] and daytona_server.downloads == [[*paths, f"{home}/w/missing"]]
    assert [r.result for r in got[:2]] == [b"one", b"\x00\xff"]
    assert got[2].result is None and got[2].error
