"""Runs of files in a workspace folder (the real server, the real local sandbox): the folder's files are visible, an
open document's unsaved text wins over the disk, cwd follows ``daytona.cwd``, the run lists what it changed, errors in
imported files are diagnostics in those files, and the settings that let a run write or see secrets are the user's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lsprotocol import types
from tests.lsp.conftest import rng, start_session

LOCAL = {"outputNotifications": True, "backend": "local", "prewarm": False}
MAIN = "import helper\nimport os\n\nprint('cwd', os.getcwd())\nprint('file', __file__)\nprint(helper.greet())\n"


async def _run_ok(s: Any, uri: str, **extra: Any) -> dict[str, Any]:
    result = await s.run(uri, **extra)
    assert result["exitCode"] == 0, result["output"]
    return result


async def test_a_sibling_import_sees_the_unsaved_text_of_an_open_helper(caps: str) -> None:
    async with start_session(caps, init_options=LOCAL) as s:
        helper = s.open("app/helper.py", "def greet():\n    return 'from disk'\n")
        s.change(helper, "def greet():\n    return 'unsaved edit'\n")
        main = s.open("app/main.py", MAIN)
        result = await _run_ok(s, main)
        assert "unsaved edit" in result["output"] and "from disk" not in result["output"]
        # the program runs as its real file, in its own directory (daytona.cwd default: fileDirectory)
        app = (s.root / "app").resolve()
        assert f"cwd {app}\n" in result["output"] or f"cwd {s.root / 'app'}\n" in result["output"]
        assert f"file {s.root / 'app' / 'main.py'}" in result["output"] or f"file {app / 'main.py'}" in result["output"]
        assert (s.root / "app" / "helper.py").read_text() == "def greet():\n    return 'from disk'\n"
        # the edit undone in the editor (now equal to the disk again): the disk's text is what the run sees
        s.change(helper, "def greet():\n    return 'from disk'\n")
        assert "from disk" in (await _run_ok(s, main))["output"]


async def test_a_file_changed_on_disk_without_file_events_is_seen_by_the_next_run() -> None:
    # Neovim on Linux sends no workspace/didChangeWatchedFiles: nothing may depend on them
    async with start_session("neovim@v0.11", init_options=LOCAL) as s:
        (s.root / "data.txt").write_text("one\n")
        main = s.open("main.py", "print(open('data.txt').read().strip())\n")
        assert (await _run_ok(s, main))["output"].strip().endswith("one")
        (s.root / "data.txt").write_text("two\n")
        assert (await _run_ok(s, main))["output"].strip().endswith("two")


@pytest.mark.parametrize("mode", ["fileDirectory", "workspaceFolder"])
async def test_daytona_cwd_chooses_the_file_directory_or_the_folder_root(mode: str) -> None:
    async with start_session(init_options={**LOCAL, "cwd": mode}) as s:
        (s.root / "top.txt").write_text("at the root\n")
        (s.root / "sub").mkdir()
        (s.root / "sub" / "top.txt").write_text("next to the file\n")
        main = s.open("sub/run.py", "print(open('top.txt').read().strip())\n")
        result = await _run_ok(s, main)
        expected = "next to the file" if mode == "fileDirectory" else "at the root"
        assert expected in result["output"]


async def test_changed_files_are_in_the_result_and_in_run_finished_and_the_host_file_is_untouched(caps: str) -> None:
    async with start_session(caps, init_options=LOCAL) as s:
        (s.root / "keep.txt").write_text("original\n")
        code = "open('keep.txt', 'w').write('overwritten')\nopen('new.txt', 'w').write('x')\n"
        main = s.open("write.py", code)
        result = await _run_ok(s, main)
        assert sorted(result["changedFiles"]) == ["keep.txt", "new.txt"]
        await s.wait_until(lambda: result["runId"] in s.finished)
        assert sorted(s.finished[result["runId"]]["changedFiles"]) == ["keep.txt", "new.txt"]
        assert (s.root / "keep.txt").read_text() == "original\n" and not (s.root / "new.txt").exists()
        # a run that writes nothing lists nothing
        quiet = s.open("quiet.py", "print('nothing written')\n")
        assert "changedFiles" not in await _run_ok(s, quiet)


async def test_plain_clients_get_the_changed_files_as_a_log_line() -> None:
    async with start_session(init_options={"backend": "local", "prewarm": False}) as s:
        main = s.open("w.py", "open('out.txt', 'w').write('x')\n")
        result = await s.run(main)
        await s.wait_until(lambda: "changed files: out.txt" in s.log_text())
        assert result["changedFiles"] == ["out.txt"]


HELPER_BOOM = "def boom(x):\n    y = x + 1\n    return y / 0\n"
MAIN_BOOM = "import helper\n\n\ndef main():\n    helper.boom(3)\n\n\nmain()\n"


async def test_an_error_raised_in_an_imported_file_is_a_diagnostic_there_with_the_call_site(caps: str) -> None:
    async with start_session(caps, init_options=LOCAL) as s:
        (s.root / "helper.py").write_text(HELPER_BOOM)  # not open in the editor
        helper_uri = (s.root / "helper.py").as_uri()
        main = s.open("main.py", MAIN_BOOM)
        result = await s.run(main)
        assert result["exitCode"] == 1
        await s.wait_until(lambda: bool(s.diagnostics(helper_uri)) and bool(s.diagnostics(main)))
        [there] = s.diagnostics(helper_uri)
        assert there.source == "daytona" and "ZeroDivisionError" in there.message
        # `return y / 0`: the whole line, as the file is not open (the server reads no file on its event loop)
        assert there.range == rng(2, 0, 3, 0)
        related = [(r.location.uri, r.location.range.start.line) for r in there.related_information or []]
        assert (main, 4) in related and (main, 7) in related  # helper.boom(3), main()
        [own] = s.diagnostics(main)
        assert own.range.start.line == 4
        assert (helper_uri, 2) in [(r.location.uri, r.location.range.start.line) for r in own.related_information or []]
        # fixed and run again: the next run of main.py clears what its last run left in helper.py
        (s.root / "helper.py").write_text("def boom(x):\n    return x\n")
        cleared = asyncio.ensure_future(s.wait_until(lambda: not s.diagnostics(helper_uri)))
        assert (await s.run(main))["exitCode"] == 0
        await cleared
        assert s.diagnostics(main) == []


async def test_an_error_in_an_open_unsaved_helper_points_at_its_statement_in_the_editor_text() -> None:
    async with start_session(init_options=LOCAL) as s:
        helper = s.open("helper.py", "def boom(x):\n    return x\n")
        s.change(helper, "def boom(x):\n\n\n        return x / 0\n")  # the unsaved text raises, on its line 3
        main = s.open("main.py", MAIN_BOOM)
        assert (await s.run(main))["exitCode"] == 1
        await s.wait_until(lambda: bool(s.diagnostics(helper)))
        [there] = s.diagnostics(helper)
        assert there.range == rng(3, 8, 3, 20)


async def test_a_selection_runs_with_the_file_s_directory_and_imports() -> None:
    async with start_session(init_options=LOCAL) as s:
        s.open("pkg/helper.py", "def greet():\n    return 'hi from helper'\n")
        main = s.open("pkg/main.py", "x = 1\nimport helper\nprint(helper.greet())\n")
        result = await _run_ok(
            s, main, range={"start": {"line": 1, "character": 0}, "end": {"line": 3, "character": 0}}
        )
        assert "hi from helper" in result["output"]


async def test_workspace_folder_settings_cannot_turn_on_write_back_or_let_secrets_in() -> None:
    folder_config = {"workspace": {"writeBack": True}, "sync": {"include": [".env"]}}
    async with start_session(init_options=LOCAL) as s:
        s.client.set_configuration(folder_config, section="daytona", scope_uri=s.root.as_uri())
        s.client.set_configuration({}, section="daytona")
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={}))
        await s.wait_until(lambda: sum("Ignored daytona." in m.message for m in s.client.messages) >= 2)
        messages = [m.message for m in s.client.messages]
        assert any("Ignored daytona.workspace.writeBack" in m for m in messages)
        assert any("Ignored daytona.sync.include" in m for m in messages)
        (s.root / ".env").write_text("TOKEN=secret\n")
        main = s.open("main.py", "open('out.txt', 'w').write('x')\nprint(open('.env').read())\n")
        result = await s.run(main)
        assert "TOKEN=secret" not in result["output"]
        assert not (s.root / "out.txt").exists()  # no write-back


SIBLINGS = {
    "javascript": (
        "mod.js",
        "exports.word = () => 'from disk';\n",
        "exports.word = () => 'unsaved javascript';\n",
        "main.js",
        "console.log(require('./mod').word());\n",
    ),
    "typescript": (
        "mod.ts",
        "export const word = (): string => 'from disk';\n",
        "export const word = (): string => 'unsaved typescript';\n",
        "main.ts",
        "import { word } from './mod';\nconsole.log(word());\n",
    ),
    "bash": (
        "lib.sh",
        "word() { echo from disk; }\n",
        "word() { echo unsaved bash; }\n",
        "main.sh",
        "source ./lib.sh\nword\n",
    ),
}


@pytest.mark.parametrize("language", sorted(SIBLINGS))
async def test_js_ts_and_bash_see_an_unsaved_sibling(language: str) -> None:
    lib, disk, unsaved, main_name, main_text = SIBLINGS[language]
    async with start_session(init_options=LOCAL) as s:
        lib_uri = s.open(lib, disk, language_id=language if language != "bash" else "shellscript")
        s.change(lib_uri, unsaved)
        main = s.open(main_name, main_text, language_id=language if language != "bash" else "shellscript")
        result = await _run_ok(s, main)
        assert f"unsaved {language}" in result["output"]
        assert "from disk" not in result["output"]


THROWERS = {
    "javascript": (
        "lib/mod.js",
        "function boom(x) {\n  return x.nope.deeper;\n}\nmodule.exports = { boom };\n",
        "main.js",
        "const m = require('./lib/mod');\n\nm.boom(1);\n",
    ),
    "typescript": (
        "lib/mod.ts",
        "export function boom(x: any): number {\n  return x.nope.deeper;\n}\n",
        "main.ts",
        "import { boom } from './lib/mod';\n\nboom(1);\n",
    ),
}


@pytest.mark.parametrize("language", sorted(THROWERS))
async def test_a_js_or_ts_error_raised_in_an_imported_file_is_a_diagnostic_there(language: str) -> None:
    lib, lib_text, main_name, main_text = THROWERS[language]
    async with start_session(init_options=LOCAL) as s:
        (s.root / "lib").mkdir()
        (s.root / lib).write_text(lib_text)
        lib_uri = (s.root / lib).as_uri()
        main = s.open(main_name, main_text, language_id=language)
        assert (await s.run(main))["exitCode"] == 1
        await s.wait_until(lambda: bool(s.diagnostics(lib_uri)))
        [there] = s.diagnostics(lib_uri)
        assert there.range.start.line == 1 and "Cannot read properties of undefined" in there.message
        assert [(r.location.uri, r.location.range.start.line) for r in there.related_information or []] == [(main, 2)]


async def test_a_bash_error_in_a_sourced_file_is_a_diagnostic_there() -> None:
    async with start_session(init_options=LOCAL) as s:
        (s.root / "lib").mkdir()
        (s.root / "lib" / "util.sh").write_text("greet() { echo hi; }\nno_such_command_here\n")  # not open
        lib_uri = (s.root / "lib" / "util.sh").as_uri()
        main = s.open("main.sh", "source ./lib/util.sh\ngreet\n", language_id="shellscript")
        result = await s.run(main)
        assert "hi" in result["output"], result
        await s.wait_until(lambda: bool(s.diagnostics(lib_uri)))
        [there] = s.diagnostics(lib_uri)
        assert there.range.start.line == 1 and "no_such_command_here: command not found" in there.message
        assert s.diagnostics(main) == []


async def test_each_backend_sees_the_unsaved_helper_lists_writes_and_maps_its_errors(backend: dict[str, Any]) -> None:
    init = {**LOCAL, **backend["settings"]}
    async with start_session(init_options=init, env=backend["env"]) as s:
        helper = s.open("pkg/helper.py", "def greet():\n    return 'from disk'\n")
        s.change(helper, "def greet():\n    return 'unsaved edit'\n")
        main = s.open("pkg/main.py", "import helper\nprint(helper.greet())\nopen('out.txt', 'w').write('x')\n")
        result = await _run_ok(s, main)
        assert result["backend"] == backend["name"]
        assert "unsaved edit" in result["output"] and "from disk" not in result["output"]
        assert result["changedFiles"] == ["pkg/out.txt"] and not (s.root / "pkg" / "out.txt").exists()
        s.change(helper, "def greet():\n    return 1 / 0\n")
        assert (await s.run(main))["exitCode"] == 1
        await s.wait_until(lambda: bool(s.diagnostics(helper)))
        [there] = s.diagnostics(helper)
        assert there.range.start.line == 1 and "ZeroDivisionError" in there.message
        assert [(r.location.uri, r.location.range.start.line) for r in there.related_information or []] == [(main, 1)]
