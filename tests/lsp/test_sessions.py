"""Sessions through the real server: cells of a document share a persistent interpreter (the document's session), the
trailing value comes back in the result, in ``daytona/runFinished`` and as an inlay hint; restart, interrupt, per-run
override and the ``daytona.session`` setting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import client_capabilities
from tests.lsp.conftest import WAIT, Session, rng, start_session
from tests.unit.test_backend_sessions import _node_strips_types

from daytona_lsp.core.environment import STDIN_CLOSED_NOTE

NOTIFY = {"outputNotifications": True}
LOCAL = {**NOTIFY, "backend": "local", "prewarm": False}

# per language: file name, languageId, cell 1 (defines), cell 2 (uses; its trailing value or last output is "42")
CELLS = {
    "python": ("cells.py", "python", "# %% one\nx = 20\n", "# %% two\nx + 22\n"),
    "javascript": ("cells.js", "javascript", "// %% one\nlet x = 20\n", "// %% two\nx + 22\n"),
    "typescript": ("cells.ts", "typescript", "// %% one\nlet x: number = 20\n", "// %% two\nx + 22\n"),
    "bash": ("cells.sh", "shellscript", "# %% one\nX=42\n", "# %% two\necho $X\n"),
}


def _init(backend: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**NOTIFY, **backend["settings"], "prewarm": False, **extra}


def _cell(text: str, index: int) -> types.Range:
    """The range of cell ``index`` (0-based) of ``text``: from its marker to the next marker (or the end)."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if "%%" in line]
    end = starts[index + 1] if index + 1 < len(starts) else len(lines)
    return rng(starts[index], 0, end, 0)


async def _hints(s: Session, uri: str) -> list[types.InlayHint]:
    result = await asyncio.wait_for(
        s.client.text_document_inlay_hint_async(
            types.InlayHintParams(text_document=types.TextDocumentIdentifier(uri=uri), range=rng(0, 0, 10_000, 0))
        ),
        WAIT,
    )
    return list(result or [])


def _tooltip(hint: types.InlayHint) -> str:
    tooltip = hint.tooltip
    return tooltip.value if isinstance(tooltip, types.MarkupContent) else str(tooltip)


@pytest.mark.parametrize("language", list(CELLS))
async def test_a_cell_uses_what_an_earlier_cell_defined(backend: dict[str, Any], language: str) -> None:
    if language == "typescript" and backend["name"] == "daytona" and not _node_strips_types():
        # the test server's sandboxes see no DAYTONA_LSP_TSX (tsx's esbuild), so TypeScript needs a Node that strips types
        pytest.skip("TypeScript sessions in the Daytona test server need Node.js >= 22.13")
    name, language_id, one, two = CELLS[language]
    text = one + two
    async with start_session(init_options=_init(backend), env=backend["env"]) as s:
        uri = s.open(name, text, language_id)
        first = await s.run(uri, _cell(text, 0))
        assert first["exitCode"] == 0, first["output"]
        second = await s.run(uri, _cell(text, 1))
        assert second["exitCode"] == 0, second["output"]
        shown = second.get("value") or second["output"]
        assert "42" in shown, second
        if language != "bash":
            assert second["value"] == "42"
            await s.wait_until(lambda: second["runId"] in s.finished)
            assert s.finished[second["runId"]]["value"] == "42"


def _hint_refresh(caps: str, supported: bool) -> types.ClientCapabilities:
    """A client's capabilities with ``workspace.inlayHint.refreshSupport`` set to ``supported``."""
    capabilities = client_capabilities(caps)
    workspace = capabilities.workspace or types.WorkspaceClientCapabilities()
    workspace.inlay_hint = types.InlayHintWorkspaceClientCapabilities(refresh_support=supported)
    capabilities.workspace = workspace
    return capabilities


@pytest.mark.parametrize("refresh", [True, False], ids=["refresh-support", "no-refresh-support"])
async def test_the_value_is_an_inlay_hint_at_the_end_of_the_run_until_its_cell_is_edited(
    caps: str, refresh: bool
) -> None:
    text = "# %% one\nx = 'a' * 100\n\n# %% two\nlen(x)\n"
    async with start_session(_hint_refresh(caps, refresh), init_options=LOCAL) as s:
        refreshes: list[None] = []

        @s.client.feature(types.WORKSPACE_INLAY_HINT_REFRESH)
        def on_refresh(params: None) -> None:
            refreshes.append(params)

        uri = s.open("hints.py", text)
        assert await _hints(s, uri) == []
        one = await s.run(uri, _cell(text, 0))
        assert one["exitCode"] == 0 and "value" not in one  # an assignment has no value
        two = await s.run(uri, _cell(text, 1))
        assert two["value"] == "100"
        (hint,) = await _hints(s, uri)
        assert hint.position == types.Position(4, len("len(x)"))
        assert hint.label == "= 100" and _tooltip(hint) == "100"
        # the refresh request went out before the run's response (a client that did not announce support gets none)
        assert len(refreshes) == (1 if refresh else 0)

        x = await s.run(uri, rng(1, 0, 1, 1))  # the selection `x`: a long value, cut in the label
        assert x["value"] == repr("a" * 100)
        hints = sorted(await _hints(s, uri), key=lambda h: h.position.line)
        assert [h.position for h in hints] == [types.Position(1, len("x = 'a' * 100")), types.Position(4, 6)]
        assert isinstance(hints[0].label, str) and len(hints[0].label) == 40 and hints[0].label.endswith("…")
        assert _tooltip(hints[0]) == repr("a" * 100)

        # a line added above cell two moves its hint; an edit inside cell one clears that one
        s.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[
                    types.TextDocumentContentChangePartial(range=rng(2, 0, 2, 0), text="y = 1\n"),
                    types.TextDocumentContentChangePartial(range=rng(1, 0, 1, 1), text="z"),
                ],
            )
        )
        (moved,) = await _hints(s, uri)
        assert moved.position == types.Position(5, 6) and moved.label == "= 100"


async def test_restart_session_clears_the_state(backend: dict[str, Any]) -> None:
    text = "# %% one\nx = 1\n# %% two\nx\n"
    async with start_session(init_options=_init(backend), env=backend["env"]) as s:
        uri = s.open("restart.py", text)
        assert (await s.run(uri, _cell(text, 0)))["exitCode"] == 0
        info = await s.command("daytona.sandboxInfo", {"uri": uri})
        assert [(x["key"], x["language"]) for x in info["sessions"]] == [(uri, "python")]
        assert (await s.command("daytona.restartSession", {"uri": uri}))["restarted"] == 1
        after = await s.run(uri, _cell(text, 1))
        assert after["exitCode"] != 0 and "NameError" in after["output"]
        # no uri: every session
        assert (await s.command("daytona.restartSession"))["restarted"] == 1
        with pytest.raises(JsonRpcException, match="'uri' must be a document URI string"):
            await s.command("daytona.restartSession", {"uri": 3})


async def test_interrupting_a_cell_keeps_the_session_state(backend: dict[str, Any]) -> None:
    text = (
        "# %% one\nx = 41\n# %% two\nimport time\nprint('sleeping', flush=True)\ntime.sleep(600)\n# %% three\nx + 1\n"
    )
    async with start_session(init_options=_init(backend), env=backend["env"]) as s:
        uri = s.open("interrupt.py", text)
        assert (await s.run(uri, _cell(text, 0)))["exitCode"] == 0
        slow = asyncio.ensure_future(s.run(uri, _cell(text, 1)))
        await s.wait_until(lambda: any("sleeping" in s.output_text(r) for r in s.started))
        (run_id,) = [r for r in s.started if "sleeping" in s.output_text(r)]
        assert (await s.command("daytona.cancel", {"runId": run_id}))["cancelled"] == [run_id]
        interrupted = await slow
        assert interrupted["exitCode"] != 0
        after = await s.run(uri, _cell(text, 2))
        assert after["value"] == "42", after["output"]


async def test_session_false_runs_fresh_and_session_true_runs_a_file_in_the_session() -> None:
    text = "# %% one\nx = 5\n# %% two\nx\n"
    async with start_session(init_options=LOCAL) as s:
        uri = s.open("override.py", text)
        assert (await s.run(uri, _cell(text, 0)))["exitCode"] == 0
        fresh = await s.run(uri, _cell(text, 1), session=False)
        assert "NameError" in fresh["output"] and "value" not in fresh
        in_session = await s.run(uri, _cell(text, 1))
        assert in_session["value"] == "5"
        # whole-file runs start fresh with the default setting ("cells")
        other = s.open("file.py", "print(x)\n")
        assert "NameError" in (await s.run(other))["output"]
        # ... unless the run asks for the session, which then has what the file defined
        s.change(other, "y = 7\n")
        assert (await s.run(other, session=True))["exitCode"] == 0
        s.change(other, "y * 6\n")
        assert (await s.run(other, rng(0, 0, 1, 0)))["value"] == "42"
        with pytest.raises(JsonRpcException, match="'session' must be true or false"):
            await s.run(uri, session="yes")


@pytest.mark.parametrize(
    ("mode", "file_in_session", "cell_in_session"), [("document", True, True), ("none", False, False)]
)
async def test_the_session_setting_decides_which_runs_keep_state(
    mode: str, file_in_session: bool, cell_in_session: bool
) -> None:
    async with start_session(init_options={**LOCAL, "session": mode}) as s:
        uri = s.open("mode.py", "v = 3\n")
        assert (await s.run(uri))["exitCode"] == 0
        s.change(uri, "v\n")
        whole = await s.run(uri)
        assert ("NameError" not in whole["output"]) is file_in_session, whole
        cell = await s.run(uri, rng(0, 0, 1, 0))
        assert (cell.get("value") == "3") is (file_in_session and cell_in_session), cell


async def test_closing_the_document_ends_its_session() -> None:
    text = "# %% one\nx = 1\n# %% two\nx\n"
    async with start_session(init_options=LOCAL) as s:
        uri = s.open("closed.py", text)
        assert (await s.run(uri, _cell(text, 0)))["exitCode"] == 0
        assert [x["key"] for x in (await s.command("daytona.sandboxInfo", {"uri": uri}))["sessions"]] == [uri]
        s.client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
        uri = s.open("closed.py", text)  # opened again: a fresh session
        after = await s.run(uri, _cell(text, 1))
        assert "NameError" in after["output"] and "value" not in after


async def test_a_plain_client_sees_the_value_as_an_out_line_of_the_log() -> None:
    text = "# %% one\nx = 6\n# %% two\nx * 7\n"
    async with start_session("neovim@v0.11", init_options={"backend": "local", "prewarm": False}) as s:
        uri = s.open("plain.py", text)
        for index in (0, 1):
            result = await s.run(uri, _cell(text, index))
            await s.wait_until(lambda r=result["runId"]: f"■ run {r}: " in s.log_text())
        assert result["value"] == "42"
        *_, out, summary = s.log_text().splitlines()
        assert out == "Out: 42" and summary.startswith(f"■ run {result['runId']}: plain.py: exit 0 in ")


ASKING = "# %% one\nkept = 'yes'\n# %% ask\nname = input('Name? ')\nprint('hello', name)\n# %% three\nkept\n"


async def test_a_cell_asks_the_client_for_input_and_gets_the_answer(backend: dict[str, Any]) -> None:
    init = _init(backend, interactiveInput=True)
    async with start_session(init_options=init, env=backend["env"]) as s:
        uri = s.open("ask_cells.py", ASKING)
        assert (await s.run(uri, _cell(ASKING, 0)))["exitCode"] == 0
        run = asyncio.ensure_future(s.run(uri, _cell(ASKING, 1)))
        await s.wait_until(lambda: bool(s.input_requests) or run.done())
        assert s.input_requests, run.result()
        request = s.input_requests[0]
        assert request["prompt"] == "Name? "
        await s.command("daytona.sendInput", {"runId": request["runId"], "text": "Ann"})
        result = await asyncio.wait_for(run, WAIT)
        assert (result["exitCode"], result["output"]) == (0, "Name? Ann\nhello Ann\n"), result
        assert (await s.run(uri, _cell(ASKING, 2)))["value"] == "'yes'"  # the session kept its state


async def test_a_cell_of_a_client_that_did_not_opt_in_reads_eof_and_is_told(backend: dict[str, Any]) -> None:
    async with start_session(init_options=_init(backend), env=backend["env"]) as s:
        uri = s.open("ask_cells.py", ASKING)
        result = await s.run(uri, _cell(ASKING, 1))
        assert result["exitCode"] == 1 and "EOFError" in result["output"], result
        assert result["output"].rstrip().endswith(STDIN_CLOSED_NOTE) and not s.input_requests
        preset = await s.run(uri, _cell(ASKING, 1), stdin="Bo\n")
        assert (preset["exitCode"], preset["output"]) == (0, "Name? hello Bo\n"), preset
