"""The language registry on the wire, language ids of real editors, and what outside testing found in the server:
streaming up to the cap, progress before the response, code actions that do not hold a request open, shutdown,
stray didChange, a failed sandbox create in sandboxInfo."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from tests.lsp.conftest import WAIT, Session, rng, start_session

from daytona_lsp.core import languages

NOTIFY = {"outputNotifications": True}
LOCAL = {"backend": "local", "prewarm": False}


def _record_order(s: Session) -> list[tuple[str, Any]]:
    """Every message from the server, in the order the client handled it: ("response", id) or (method, params)."""
    order: list[tuple[str, Any]] = []
    protocol = s.client.protocol
    original = protocol.handle_message

    def handle(message: Any) -> None:
        method = getattr(message, "method", None)
        order.append((method, getattr(message, "params", None)) if method else ("response", message.id))
        original(message)

    protocol.handle_message = handle  # type: ignore[method-assign]
    return order


async def test_initialize_result_lists_the_language_registry() -> None:
    async with start_session(init_options=LOCAL) as s:
        result = s.init_result
        assert result is not None
        experimental = result.capabilities.experimental
        assert experimental["daytona"]["languages"] == languages.wire()
        by_id = {entry["id"]: entry for entry in experimental["daytona"]["languages"]}
        assert set(by_id) == {"python", "bash", "javascript", "typescript"}
        assert "js" in by_id["javascript"]["languageIds"] and ".mjs" in by_id["javascript"]["extensions"]
        assert by_id["typescript"]["cellMarker"] == "// %%"


@pytest.mark.parametrize(
    ("name", "language_id", "code"),
    [
        ("a.js", "js", "console.log(6 * 7)\n"),
        ("b.jsx", "javascriptreact", "console.log(6 * 7)\n"),
        ("c.sh", "sh", "echo $((6 * 7))\n"),
        ("d.sh", "shell", "echo $((6 * 7))\n"),
        ("e.sh", "bash", "echo $((6 * 7))\n"),
        ("script", "js", "console.log(6 * 7)\n"),  # no extension: the client's id decides
        ("f.sh", "python", "echo $((6 * 7))\n"),  # eglot: one id per server; the .sh extension wins
        ("g.py", "shellscript", "print(6 * 7)\n"),
    ],
)
async def test_editor_language_ids_and_extensions_pick_the_language(name: str, language_id: str, code: str) -> None:
    async with start_session(init_options={**NOTIFY, **LOCAL}) as s:
        uri = s.open(name, code, language_id=language_id)
        actions = await s.code_actions(uri, rng(0, 0, 0, 0))
        assert [a.title for a in actions] == ["Run file in local sandbox"]
        result = await s.run(uri)
        assert result["exitCode"] == 0, result["output"]
        assert result["output"] == "42\n"


async def test_zsh_is_refused_with_a_reason() -> None:
    async with start_session(init_options={**NOTIFY, **LOCAL}) as s:
        uri = s.open("x.zsh", "echo ${(U)name}\n", language_id="zsh")
        assert await s.code_actions(uri, rng(0, 0, 0, 0)) == []
        with pytest.raises(JsonRpcException, match="zsh scripts are not run as bash"):
            await s.run(uri)
        ok = s.open("y.py", "print(1)\n")
        with pytest.raises(JsonRpcException, match="zsh"):
            await s.run(ok, language="zsh")


async def test_streaming_carries_everything_up_to_the_cap() -> None:
    # between half the cap and the cap: nothing is truncated, so daytona/output must carry all of it
    init = {**NOTIFY, **LOCAL, "maxOutputBytes": 8192}
    async with start_session(init_options=init) as s:
        uri = s.open("mid.py", "for i in range(600):\n    print(f'{i:09d}')\nprint('END')\n")
        result = await s.run(uri)
        await s.wait_until(lambda: result["runId"] in s.finished)
        assert result["truncated"] is False
        assert len(result["output"].encode()) > 4096
        assert s.output_text(result["runId"]) == result["output"]


async def test_progress_ends_before_the_response(caps: str) -> None:
    async with start_session(caps, init_options={**NOTIFY, **LOCAL}) as s:
        order = _record_order(s)
        uri = s.open("p.py", "import time\ntime.sleep(3)\nprint('slept')\n")
        result = await s.run(uri)
        assert result["exitCode"] == 0
        token = f"daytona-run-{result['runId']}"
        assert [p.kind for p in s.client.progress_reports[token]][:1] == ["begin"]
        ends = [
            i for i, (m, p) in enumerate(order) if m == types.PROGRESS and p.token == token and p.value["kind"] == "end"
        ]
        responses = [i for i, (m, _) in enumerate(order) if m == "response"]
        assert ends, "no progress end arrived before the response"
        assert ends[0] < responses[-1]


async def test_code_actions_of_plain_clients_start_the_run_and_answer_at_once(caps: str) -> None:
    async with start_session(caps, init_options=LOCAL) as s:
        uri = s.open("long.py", "import time\nprint('begun', flush=True)\ntime.sleep(3)\nprint(6 * 7)\n")
        (action,) = await s.code_actions(uri, rng(0, 0, 0, 0))
        assert isinstance(action, types.CodeAction) and action.command is not None
        (arg,) = action.command.arguments or []
        assert arg == {"uri": uri, "detach": True}
        answer = await s.command(action.command.command, arg)
        assert set(answer) == {"runId", "backend"}
        assert not any("exit 0 in" in m.message for m in s.client.messages)  # answered while the program sleeps
        await s.wait_until(lambda: any("exit 0 in" in m.message for m in s.client.messages))
        summary = next(m for m in s.client.messages if "exit 0 in" in m.message)
        assert summary.message.splitlines()[1:] == ["begun", "42"]  # the output's last lines


async def test_code_actions_of_notification_clients_wait_for_the_result() -> None:
    async with start_session(init_options={**NOTIFY, **LOCAL}) as s:
        uri = s.open("w.py", "print(6 * 7)\n")
        (action,) = await s.code_actions(uri, rng(0, 0, 0, 0))
        assert isinstance(action, types.CodeAction) and action.command is not None
        assert list(action.command.arguments or []) == [{"uri": uri}]
        result = await s.command(action.command.command, *action.command.arguments)
        assert result["exitCode"] == 0 and result["output"] == "42\n"


async def test_detach_must_be_a_boolean() -> None:
    async with start_session(init_options={**NOTIFY, **LOCAL}) as s:
        uri = s.open("w.py", "print(1)\n")
        with pytest.raises(JsonRpcException, match="'detach' must be true or false"):
            await s.run(uri, detach="no")
        assert (await s.run(uri, detach=None))["exitCode"] == 0  # null: as if absent (the full result)


async def test_requests_after_shutdown_get_invalid_request() -> None:
    async with start_session(init_options={**NOTIFY, **LOCAL}, shutdown=False) as s:
        uri = s.open("a.py", "print(1)\n")
        await asyncio.wait_for(s.client.shutdown_async(None), WAIT)
        with pytest.raises(JsonRpcException) as info:
            await s.run(uri, timeout=10)
        assert info.value.code == types.ErrorCodes.InvalidRequest
        assert "shut down" in str(info.value)
        s.client.exit(None)


async def test_did_change_of_an_unknown_document_is_ignored() -> None:
    async with start_session(init_options={**NOTIFY, **LOCAL}) as s:
        ghost = (s.root / "never-opened.py").as_uri()
        s.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=ghost, version=2),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text="x = 1\n")],
            )
        )
        uri = s.open("a.py", "print(1)\n")
        result = await s.run(uri)  # answered after the didChange: whatever it caused has arrived
        assert result["exitCode"] == 0
        assert not [m.message for m in s.client.messages if m.type == types.MessageType.Error]


async def test_sandbox_info_reports_a_failed_create(daytona_server: Any) -> None:
    key = daytona_server.api_key
    env = {"DAYTONA_API_KEY": key, "DAYTONA_API_URL": daytona_server.api_url}
    init = {**NOTIFY, "backend": "daytona", "apiUrl": daytona_server.api_url, "prewarm": False}
    async with start_session(init_options=init, env=env) as s:
        uri = s.open("a.py", "print(1)\n")
        daytona_server.fail_create(status=401, times=10, message="unauthorized")
        failed = await s.run(uri)
        assert failed["exitCode"] != 0
        info = await s.command("daytona.sandboxInfo", {"uri": uri})
        assert info["state"] == "error", info
        assert info["error"] and key not in info["error"]
