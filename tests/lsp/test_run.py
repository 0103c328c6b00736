"""Running files and selections through the real server, with each client's capabilities and each backend."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from tests.lsp.conftest import rng, start_session

NOTIFY = {"outputNotifications": True}


def _init(backend: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**NOTIFY, **backend["settings"], "prewarm": False, **extra}


async def test_code_actions_offer_run_file_and_selection(caps: str) -> None:
    async with start_session(caps, init_options={**NOTIFY, "backend": "local"}) as s:
        uri = s.open("a.py", "x = 1\nprint(x)\n")
        actions = await s.code_actions(uri, rng(0, 0, 0, 0))
        assert [a.title for a in actions] == ["Run file in local sandbox"]
        action = actions[0]
        assert isinstance(action, types.CodeAction)
        assert action.kind == "source.daytona.run"
        assert action.command is not None and action.command.command == "daytona.run"
        assert list(action.command.arguments or []) == [{"uri": uri}]

        actions = await s.code_actions(uri, rng(1, 0, 1, 8))
        titles = [a.title for a in actions]
        assert titles == ["Run file in local sandbox", "Run selection in local sandbox"]
        selection = actions[1]
        assert isinstance(selection, types.CodeAction) and selection.command is not None
        (arg,) = selection.command.arguments or []
        assert arg["range"] == {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 8}}


async def test_code_actions_say_daytona_with_a_key(caps: str) -> None:
    async with start_session(caps, init_options={**NOTIFY, "prewarm": False}, env={"DAYTONA_API_KEY": "k-123"}) as s:
        uri = s.open("a.py", "print(1)\n")
        actions = await s.code_actions(uri, rng(0, 0, 0, 5))
        assert [a.title for a in actions] == ["Run file in Daytona sandbox", "Run selection in Daytona sandbox"]


async def test_code_actions_absent_for_unsupported_filtered_or_disabled(caps: str) -> None:
    init = {**NOTIFY, "backend": "local", "languages": ["python"]}
    async with start_session(caps, init_options=init) as s:
        text_uri = s.open("notes.txt", "hello\n", language_id="plaintext")
        assert await s.code_actions(text_uri, rng(0, 0, 0, 3)) == []
        js_uri = s.open("a.js", "console.log(1)\n", language_id="javascript")
        assert await s.code_actions(js_uri, rng(0, 0, 0, 3)) == []  # javascript disabled by settings
        py_uri = s.open("a.py", "print(1)\n")
        assert await s.code_actions(py_uri, rng(0, 0, 0, 0), only=["quickfix"]) == []
        assert len(await s.code_actions(py_uri, rng(0, 0, 0, 0), only=["source"])) == 1
        empty_uri = s.open("empty.py", "")
        assert await s.code_actions(empty_uri, rng(0, 0, 0, 0)) == []


async def test_code_lenses_mark_file_and_cells(caps: str) -> None:
    async with start_session(caps, init_options={**NOTIFY, "backend": "local"}) as s:
        text = "import os\n# %% first\nprint(1)\n\n# %% second\nprint(2)\n"
        uri = s.open("cells.py", text)
        lenses = await s.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
        assert lenses is not None
        got = [(lens.range.start.line, lens.command.title) for lens in lenses if lens.command]
        assert got == [(0, "▶ Run file"), (1, "▶ Run cell"), (4, "▶ Run cell")]
        cell = lenses[1].command
        assert cell is not None
        (arg,) = cell.arguments or []
        assert arg["range"]["start"] == {"line": 1, "character": 0}
        assert arg["range"]["end"] == {"line": 4, "character": 0}
        result = await s.command(cell.command, arg)
        assert result["exitCode"] == 0 and result["output"] == "1\n"

        js = s.open("cells.ts", "// %% a\nconsole.log(1)\n", language_id="typescript")
        lenses = await s.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=js))
        )
        assert [lens.command.title for lens in lenses or [] if lens.command] == ["▶ Run file", "▶ Run cell"]


async def test_run_file_streams_output_and_returns_result(caps: str, backend: dict[str, Any]) -> None:
    async with start_session(caps, init_options=_init(backend), env=backend["env"]) as s:
        uri = s.open("hello.py", "import sys\nprint('out')\nprint('err', file=sys.stderr)\n")
        result = await s.run(uri)
        assert result["exitCode"] == 0
        assert "out\n" in result["output"] and "err\n" in result["output"]
        assert result["truncated"] is False
        assert isinstance(result["durationMs"], int) and result["durationMs"] >= 0
        assert result["backend"] == backend["name"]
        run_id = result["runId"]
        await s.wait_until(lambda: run_id in s.finished)
        assert s.started[run_id]["uri"] == uri
        assert s.started[run_id]["language"] == "python"
        assert s.started[run_id]["backend"] == backend["name"]
        assert s.started[run_id]["range"] is None
        assert "out\n" in s.output_text(run_id)
        streams = {o["stream"] for o in s.output[run_id]}
        assert streams <= {"stdout", "stderr"}
        assert s.finished[run_id]["exitCode"] == 0
        assert s.finished[run_id]["truncated"] is False
        kinds = [kind for kind, p in s.events if p["runId"] == run_id]
        assert kinds[0] == "started" and kinds[-1] == "finished"
        assert s.diagnostics(uri) == []


async def test_unsaved_edits_run(caps: str) -> None:
    async with start_session(caps, init_options={**NOTIFY, "backend": "local", "prewarm": False}) as s:
        uri = s.open("edit.py", "print('saved')\n")
        s.change(uri, "print('unsaved')\n")
        result = await s.run(uri)
        assert result["output"] == "unsaved\n"


SELECTION_CASES = [
    # (file, languageId, text, selection, buffer line of the error)
    # an indented selection inside a function: dedented, the error still on buffer line 3
    ("sel.py", "python", "def f():\n    a = 1\n    b = 0\n    print(a / b)\n", (1, 0, 4, 0), 3),
    ("sel.js", "javascript", "// js\nfunction f() {}\nconst a = 1;\nnull.x;\n", (2, 0, 4, 0), 3),
    ("sel.sh", "shellscript", "echo start\necho one\nnot_a_command_xyz\necho two\n", (1, 0, 4, 0), 2),
    ("sel.ts", "typescript", "// ts\nconst n: number = 1;\nconst o: any = null;\no.x;\n", (1, 0, 4, 0), 3),
]
NO_TYPESCRIPT = re.compile(r"needs tsx|ts-node|tsx: not found")
TSX = "DAYTONA_LSP_TSX"


async def test_selection_error_maps_to_buffer_line(caps: str, backend: dict[str, Any]) -> None:
    """For each language, a selection's error lands on the right buffer line (one server for all four)."""
    async with start_session(caps, init_options=_init(backend), env=backend["env"]) as s:
        for name, language_id, text, sel, error_line in SELECTION_CASES:
            if language_id == "typescript" and backend["name"] == "daytona":
                continue  # the test server's ts-node would be fetched by npx from the network
            uri = s.open(name, text, language_id=language_id)
            result = await s.run(uri, rng(*sel))
            if language_id == "typescript" and NO_TYPESCRIPT.search(result["output"]) and not os.environ.get(TSX):
                continue  # no TypeScript runtime on this machine and no tsx given (scripts/test provides one)
            if language_id != "shellscript":  # bash goes on after a failed command: exit 0, the error is a warning
                assert result["exitCode"] != 0, (name, result["output"])
            await s.wait_until(lambda uri=uri: bool(s.diagnostics(uri)))
            diags = s.diagnostics(uri)
            expected = types.DiagnosticSeverity.Error if result["exitCode"] else types.DiagnosticSeverity.Warning
            errors = [d for d in diags if d.severity == expected]
            assert errors, (name, diags)
            assert all(d.source == "daytona" for d in diags)
            assert errors[0].range.start.line == error_line, (name, errors[0], result["output"])


async def test_python_error_column_points_at_the_failing_expression_in_a_dedented_selection(caps: str) -> None:
    """The server hands the run's code to core.errors, so Python's ~~^~~ markers give the exact buffer columns."""
    text = "def f():\n    a = 1\n    b = 0\n    print(a / b)\n"
    async with start_session(caps, init_options={**NOTIFY, "backend": "local", "prewarm": False}) as s:
        uri = s.open("col.py", text)
        result = await s.run(uri, rng(1, 0, 4, 0))
        assert result["exitCode"] == 1
        await s.wait_until(lambda: bool(s.diagnostics(uri)))
        (diag,) = s.diagnostics(uri)
        start, end = diag.range.start, diag.range.end
        # the sandbox runs the server's own Python: 3.11+ marks `a / b` (buffer columns 10-15)
        expected = (10, 15) if sys.version_info >= (3, 11) else (4, 16)
        assert (start.line, start.character, end.line, end.character) == (3, expected[0], 3, expected[1]), diag


async def test_python_traceback_frames_become_related_information(caps: str) -> None:
    text = "def inner():\n    return 1 / 0\n\ndef outer():\n    return inner()\n\nouter()\n"
    async with start_session(caps, init_options={**NOTIFY, "backend": "local", "prewarm": False}) as s:
        uri = s.open("frames.py", text)
        result = await s.run(uri)
        assert result["exitCode"] == 1
        await s.wait_until(lambda: bool(s.diagnostics(uri)))
        (diag,) = s.diagnostics(uri)
        assert diag.range.start.line == 1
        assert "ZeroDivisionError" in diag.message
        related = {r.location.range.start.line for r in diag.related_information or []}
        assert {4, 6} <= related


async def test_error_without_location_lands_on_first_run_line(caps: str) -> None:
    async with start_session(caps, init_options={**NOTIFY, "backend": "local", "prewarm": False}) as s:
        uri = s.open("exit.py", "print('a')\nprint('b')\nimport sys\nsys.exit(3)\n")
        result = await s.run(uri, rng(2, 0, 4, 0))
        assert result["exitCode"] == 3
        await s.wait_until(lambda: bool(s.diagnostics(uri)))
        (diag,) = s.diagnostics(uri)
        assert diag.range.start.line == 2
        assert "exit 3" in diag.message


async def test_next_run_clears_diagnostics(caps: str) -> None:
    async with start_session(caps, init_options={**NOTIFY, "backend": "local", "prewarm": False}) as s:
        uri = s.open("fix.py", "1 / 0\n")
        await s.run(uri)
        await s.wait_until(lambda: bool(s.diagnostics(uri)))
        s.change(uri, "print('fixed')\n")
        result = await s.run(uri)
        assert result["exitCode"] == 0
        await s.wait_until(lambda: s.diagnostics(uri) == [])


async def test_output_mode_diagnostics_adds_an_information_diagnostic(caps: str) -> None:
    init = {**NOTIFY, "backend": "local", "prewarm": False, "outputMode": "diagnostics"}
    async with start_session(caps, init_options=init) as s:
        uri = s.open("out.py", "print('shown as diagnostic')\n")
        result = await s.run(uri)
        assert result["exitCode"] == 0
        await s.wait_until(lambda: bool(s.diagnostics(uri)))
        (diag,) = s.diagnostics(uri)
        assert diag.severity == types.DiagnosticSeverity.Information
        assert "shown as diagnostic" in diag.message
        assert s.output_text(result["runId"]) == ""  # not also in the channel


async def test_streamed_output_arrives_before_the_run_ends(caps: str) -> None:
    code = "import time\nprint('first', flush=True)\ntime.sleep(30)\nprint('never')\n"
    async with start_session(caps, init_options={**NOTIFY, "backend": "local", "prewarm": False}) as s:
        uri = s.open("stream.py", code)
        task = asyncio.ensure_future(s.run(uri))
        await s.wait_until(lambda: any("first" in o["text"] for out in s.output.values() for o in out))
        assert not task.done()
        (run_id,) = s.started
        assert run_id not in s.finished
        assert (await s.command("daytona.cancel", {"runId": run_id}))["cancelled"] == [run_id]
        result = await task
        assert result["exitCode"] == 124
        assert "first" in result["output"] and "never" not in result["output"]


async def test_plain_client_gets_log_lines_and_a_summary(caps: str) -> None:
    async with start_session(caps, init_options={"backend": "local", "prewarm": False}) as s:
        uri = s.open("plain.py", "print('line one')\nprint('line two')\n")
        result = await s.run(uri)
        assert result["exitCode"] == 0
        await s.wait_until(lambda: any("exit 0 in" in m.message for m in s.client.messages))
        logs = s.log_text()
        assert "line one" in logs and "line two" in logs
        assert s.started == {} and s.output == {}
        summary = next(m for m in s.client.messages if "exit 0 in" in m.message)
        assert summary.type == types.MessageType.Info
        assert summary.message.splitlines() == [
            f"plain.py: exit 0 in {result['durationMs']} ms",
            "line one",
            "line two",
        ]

        bad = s.open("bad.py", "raise ValueError('boom')\n")
        await s.run(bad)
        await s.wait_until(lambda: any("ValueError: boom" in m.message for m in s.client.messages))
        error = next(m for m in s.client.messages if "ValueError: boom" in m.message)
        assert error.type == types.MessageType.Error


async def test_capped_output_streams_head_marker_and_tail(caps: str) -> None:
    init = {**NOTIFY, "backend": "local", "prewarm": False, "maxOutputBytes": 4096}
    async with start_session(caps, init_options=init) as s:
        uri = s.open("big.py", "for i in range(20000):\n    print(f'line {i}')\nprint('THE END')\n")
        result = await s.run(uri)
        await s.wait_until(lambda: result["runId"] in s.finished)
        assert result["truncated"] is True and s.finished[result["runId"]]["truncated"] is True
        assert result["output"].startswith("line 0\n") and result["output"].endswith("THE END\n")
        assert "truncated" in result["output"]
        assert len(result["output"].encode()) < 4096 + 200
        streamed = s.output_text(result["runId"])
        assert streamed.startswith("line 0\n") and streamed.endswith("THE END\n")
        assert "truncated" in streamed
        assert streamed.startswith(result["output"][:4000])  # everything up to the cap, then the marker and tail
        assert len(streamed.encode()) < 4096 * 3 // 2 + 200


AWKWARD_ARGS = ["two words", "", 'quote\'s "x"', "ünïcödé ✓", "--flag=1", "$HOME", "a\\b"]


async def test_run_passes_args_and_preset_stdin_exactly(caps: str, backend: dict[str, Any]) -> None:
    async with start_session(caps, init_options=_init(backend), env=backend["env"]) as s:
        uri = s.open("argv.py", "import json, sys\nprint(json.dumps(sys.argv[1:]))\nprint('got', input())\n")
        result = await s.run(uri, args=AWKWARD_ARGS, stdin="forty-two\n")
        assert result["exitCode"] == 0, result["output"]
        first, second = result["output"].splitlines()[:2]
        assert json.loads(first) == AWKWARD_ARGS
        assert second == "got forty-two"


async def test_run_without_stdin_reads_eof_at_once(caps: str, backend: dict[str, Any]) -> None:
    async with start_session(caps, init_options=_init(backend), env=backend["env"]) as s:
        uri = s.open("ask.py", "try:\n    input('name? ')\nexcept EOFError:\n    print('EOF')\n")
        result = await s.run(uri)
        assert result["exitCode"] == 0, result["output"]
        assert "name? EOF\n" in result["output"]  # the note that stdin is closed: tests/lsp/test_input.py


@pytest.mark.parametrize(
    "extra",
    [{"args": "a b"}, {"args": ["ok", 3]}, {"args": ["nul\x00"]}, {"stdin": 42}, {"stdin": ["x"]}],
)
async def test_run_refuses_bad_args_and_stdin_clearly(extra: dict[str, Any]) -> None:
    async with start_session(init_options={**NOTIFY, "backend": "local", "prewarm": False}) as s:
        uri = s.open("a.py", "print(1)\n")
        with pytest.raises(JsonRpcException) as info:
            await s.run(uri, **extra)
        assert info.value.code == -32602
        assert ("'args'" in str(info.value)) or ("'stdin'" in str(info.value)) or ("NUL" in str(info.value))
