"""Cancellation, progress, concurrency, settings, lifecycle and bad input — through the real server process."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from tests.lsp.conftest import WAIT, rng, start_session

from daytona_lsp.lsp.features.output import PROGRESS_DELAY_S

NOTIFY = {"outputNotifications": True}
LOCAL = {**NOTIFY, "backend": "local", "prewarm": False}
SLOW = "import time\nprint('started', flush=True)\ntime.sleep(120)\nprint('not reached')\n"


def _leftovers(tmp: Path) -> list[str]:
    """Local sandbox directories (``daytona-lsp-local-*``) left in the server's TMPDIR."""
    return [p.name for p in tmp.iterdir() if p.name.startswith("daytona-lsp-")]


def _started_output(s: Any, run_id: str | None = None) -> bool:
    return any("started" in o["text"] for rid, out in s.output.items() if run_id in (None, rid) for o in out)


async def test_progress_reports_begin_and_end_with_exit_code(caps: str) -> None:
    # The run waits for a line of input that is sent only once its progress has begun: a run that ended before the
    # client accepted the progress token shows none (by design), so the program must outlive the token's creation.
    async with start_session(caps, init_options={**LOCAL, "interactiveInput": True}) as s:
        uri = s.open("p.py", "input()\nprint(1)\n")
        task = asyncio.ensure_future(s.run(uri))
        await s.wait_until(lambda: bool(s.input_requests) and bool(s.client.progress_reports))
        (token,) = list(s.client.progress_reports)
        await s.wait_until(lambda: any(p.kind == "begin" for p in s.client.progress_reports[token]))
        await s.command("daytona.sendInput", {"runId": s.input_requests[0]["runId"], "text": "go"})
        result = await task
        assert token == f"daytona-run-{result['runId']}"
        await s.wait_until(lambda: any(p.kind == "end" for p in s.client.progress_reports.get(token, [])))
        kinds = [p.kind for p in s.client.progress_reports[token]]
        assert kinds[0] == "begin" and kinds[-1] == "end"
        begin = s.client.progress_reports[token][0]
        assert "p.py" in begin.title and begin.cancellable is True
        assert s.client.progress_reports[token][-1].message.startswith("exit 0 in ")


async def test_cancel_via_progress_kills_the_run(caps: str) -> None:
    async with start_session(caps, init_options=LOCAL) as s:
        uri = s.open("slow.py", SLOW)
        task = asyncio.ensure_future(s.run(uri))
        await s.wait_until(lambda: _started_output(s) and any(s.client.progress_reports))
        (token,) = list(s.client.progress_reports)
        s.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
        result = await task
        assert result["exitCode"] == 124
        assert "started" in result["output"] and "not reached" not in result["output"]
        await s.wait_until(lambda: result["runId"] in s.finished)
        await s.wait_until(lambda: s.client.progress_reports[token][-1].kind == "end")
        assert s.client.progress_reports[token][-1].message == "cancelled"
        assert s.diagnostics(uri) == []  # a cancelled run is not an error


async def test_a_run_shows_its_progress_on_the_clients_work_done_token_and_its_cancel_kills_the_run(caps: str) -> None:
    # A client that gives the request a workDoneToken gets the progress on it from the start: no create request
    # (no token of the server's own), begin before the output, and a cancel of that token ends the run.
    async with start_session(caps, init_options=LOCAL) as s:
        uri = s.open("slow.py", SLOW)
        token = "client-made-token"
        s.client.progress_reports[token] = []  # the client made it for its request
        params = types.ExecuteCommandParams(command="daytona.run", arguments=[{"uri": uri}], work_done_token=token)
        task = asyncio.ensure_future(s.client.workspace_execute_command_async(params))
        await s.wait_until(lambda: _started_output(s))
        assert [p.kind for p in s.client.progress_reports[token]][:1] == ["begin"]  # it arrived before the output
        s.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
        result = await asyncio.wait_for(task, WAIT)
        assert result["exitCode"] == 124
        assert s.client.progress_reports[token][-1].kind == "end"  # before the response
        assert s.client.progress_reports[token][-1].message == "cancelled"
        assert list(s.client.progress_reports) == [token]


async def test_a_run_shorter_than_the_progress_delay_costs_no_progress_round_trip(caps: str) -> None:
    # Without a client token, the server creates one only once a run has lasted PROGRESS_DELAY_S: a warm print(1)
    # (a few ms) sends no window/workDoneProgress/create and no begin/end. A run that took longer (a loaded machine)
    # may show progress; then it is a whole begin … end.
    async with start_session(caps, init_options=LOCAL) as s:
        uri = s.open("quick.py", "print(1)\n")
        for _ in range(3):  # the first starts the sandbox (it may last long enough to show progress)
            started = time.monotonic()
            result = await s.run(uri)
            took = time.monotonic() - started  # at least the server's time from the request to the response
            assert result["exitCode"] == 0
            token = f"daytona-run-{result['runId']}"
            if took < PROGRESS_DELAY_S:
                assert token not in s.client.progress_reports
            else:  # progress, if any, is whole (a create whose run ended meanwhile: no begin)
                kinds = [p.kind for p in s.client.progress_reports.get(token, [])]
                assert kinds == [] or (kinds[0] == "begin" and kinds[-1] == "end")


async def test_cancel_request_kills_the_run(caps: str) -> None:
    async with start_session(caps, init_options=LOCAL) as s:
        uri = s.open("slow.py", SLOW)
        params = types.ExecuteCommandParams(command="daytona.run", arguments=[{"uri": uri}])
        pending = asyncio.ensure_future(
            s.client.protocol.send_request_async(types.WORKSPACE_EXECUTE_COMMAND, params, msg_id="run-to-cancel")
        )
        await s.wait_until(lambda: _started_output(s))
        (run_id,) = s.started
        s.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="run-to-cancel"))
        with pytest.raises(JsonRpcException):
            await asyncio.wait_for(pending, WAIT)
        await s.wait_until(lambda: run_id in s.finished)
        assert s.finished[run_id]["exitCode"] == 124
        assert "not reached" not in s.output_text(run_id)


async def test_cancel_without_id_cancels_every_run(caps: str) -> None:
    async with start_session(caps, init_options=LOCAL) as s:
        a = s.open("a.py", SLOW)
        b = s.open("b.py", SLOW)
        runs = [asyncio.ensure_future(s.run(a)), asyncio.ensure_future(s.run(b))]
        await s.wait_until(lambda: sum(1 for rid in s.started if _started_output(s, rid)) == 2)
        cancelled = (await s.command("daytona.cancel"))["cancelled"]
        assert sorted(cancelled) == sorted(s.started)
        results = await asyncio.gather(*runs)
        assert [r["exitCode"] for r in results] == [124, 124]
        assert (await s.command("daytona.cancel", {"runId": "no-such-run"}))["cancelled"] == []


async def test_runs_proceed_concurrently_and_requests_are_answered_meanwhile(caps: str) -> None:
    waiter = (
        "import os, time\nprint('waiting', flush=True)\n"
        "while not os.path.exists('/tmp/b-was-here'):\n    time.sleep(0.01)\nprint('A saw B')\n"
    )  # /tmp: the container's own, shared by its runs (a workspace folder's view is each run's own as of its start)
    async with start_session(caps, init_options=LOCAL) as s:
        a = s.open("a.py", waiter)
        b = s.open("b.py", "open('/tmp/b-was-here', 'w').close()\nprint('B done')\n")
        run_a = asyncio.ensure_future(s.run(a))
        await s.wait_until(lambda: any("waiting" in o["text"] for out in s.output.values() for o in out))
        # the server answers while A runs
        actions = await asyncio.wait_for(s.code_actions(a, rng(0, 0, 0, 0)), 5)
        assert len(actions) == 1
        info = await asyncio.wait_for(s.command("daytona.sandboxInfo", {"uri": a}), 5)
        assert info["backend"] == "local" and info["state"] == "running"
        result_b = await s.run(b)
        result_a = await run_a
        assert result_b["exitCode"] == 0 and result_a["exitCode"] == 0
        assert "A saw B" in result_a["output"]
        assert result_a["runId"] != result_b["runId"]


async def test_same_document_runs_concurrently(caps: str) -> None:
    async with start_session(caps, init_options=LOCAL) as s:
        uri = s.open("same.py", "print('x')\n")
        results = await asyncio.gather(*(s.run(uri) for _ in range(3)))
        assert [r["output"] for r in results] == ["x\n"] * 3
        assert len({r["runId"] for r in results}) == 3


async def test_invalid_settings_warn_and_fall_back_to_defaults(caps: str) -> None:
    init = {**LOCAL, "timeout": -5, "outputMode": "loud", "local": {"network": "yes"}}
    async with start_session(caps, init_options=init) as s:
        uri = s.open("w.py", "print('still runs')\n")
        result = await s.run(uri)
        assert result["exitCode"] == 0 and result["output"] == "still runs\n"
        warnings = [m.message for m in s.client.messages if m.type == types.MessageType.Warning]
        for key in ("timeout=-5", "outputMode='loud'", "local.network='yes'"):
            assert any(key in w for w in warnings), (key, warnings)


async def test_workspace_configuration_applies_and_a_change_uses_a_new_sandbox(
    caps: str, tmp_path: Path, daytona_server: Any
) -> None:
    env = {"DAYTONA_API_KEY": daytona_server.api_key, "DAYTONA_API_URL": daytona_server.api_url}
    config = {"backend": "daytona", "apiUrl": daytona_server.api_url, "prewarm": False, "envVars": {"GREETING": "one"}}
    async with start_session(caps, init_options=NOTIFY, configuration=config, env=env) as s:
        uri = s.open("env.sh", "echo $GREETING\n", language_id="shellscript")
        first = await s.run(uri)
        assert first["output"] == "one\n" and first["backend"] == "daytona"
        info = await s.command("daytona.sandboxInfo", {"uri": uri})
        assert info["backend"] == "daytona" and info["sandboxId"] in daytona_server.sandboxes

        s.client.set_configuration({**config, "envVars": {"GREETING": "two"}}, section="daytona")
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        second = await s.run(uri)
        assert second["output"] == "two\n"
        new_info = await s.command("daytona.sandboxInfo", {"uri": uri})
        assert new_info["sandboxId"] != info["sandboxId"]
        assert info["sandboxId"] in daytona_server.deleted_ids  # the old sandbox was closed
        assert daytona_server.count("POST /sandbox") == 2


async def test_shutdown_leaves_no_sandbox(caps: str, backend: dict[str, Any], tmp_path: Path) -> None:
    env = {**backend["env"], "TMPDIR": str(tmp_path)}
    async with start_session(caps, init_options={**NOTIFY, **backend["settings"]}, env=env) as s:
        uri = s.open("x.py", "print(1)\n")
        assert (await s.run(uri))["exitCode"] == 0
        if backend["name"] == "local":
            assert _leftovers(tmp_path)
    # shutdown_session has returned: the server exited
    if backend["name"] == "local":
        assert _leftovers(tmp_path) == []
    else:
        server = backend["server"]
        assert server.count("POST /sandbox") >= 1
        assert server.sandboxes == {} and len(server.deleted_ids) == server.count("POST /sandbox")


async def test_client_dying_without_shutdown_leaves_nothing_behind(backend: dict[str, Any], tmp_path: Path) -> None:
    env = {**backend["env"], "TMPDIR": str(tmp_path)}
    async with start_session(init_options={**NOTIFY, **backend["settings"]}, env=env, shutdown=False) as s:
        uri = s.open("x.py", SLOW)
        task = asyncio.ensure_future(s.run(uri))
        await s.wait_until(lambda: _started_output(s))
        process = s.client._server
        assert process is not None and process.stdin is not None
        process.stdin.close()  # the editor died
        assert await asyncio.wait_for(process.wait(), WAIT) == 0
        task.cancel()
    if backend["name"] == "local":
        assert _leftovers(tmp_path) == []
    else:
        server = backend["server"]
        assert server.count("POST /sandbox") >= 1
        assert server.sandboxes == {} and len(server.deleted_ids) == server.count("POST /sandbox")


async def test_prewarm_creates_the_sandbox_when_a_document_opens(daytona_server: Any) -> None:
    env = {"DAYTONA_API_KEY": daytona_server.api_key, "DAYTONA_API_URL": daytona_server.api_url}
    async with start_session(init_options={**NOTIFY, "apiUrl": daytona_server.api_url}, env=env) as s:
        daytona_server.hold_create(1)
        uri = s.open("warm.py", "print('warm')\n")
        await asyncio.to_thread(daytona_server.wait_held, 1, WAIT)  # creation started on didOpen, before any run
        info = await s.command("daytona.sandboxInfo", {"uri": uri})
        assert info == {"backend": "daytona", "state": "creating"}
        daytona_server.release()
        result = await s.run(uri)
        assert result["output"] == "warm\n"
        assert daytona_server.count("POST /sandbox") == 1  # the run used the prewarmed sandbox


async def test_reset_sandbox_closes_and_forgets_it(daytona_server: Any) -> None:
    env = {"DAYTONA_API_KEY": daytona_server.api_key, "DAYTONA_API_URL": daytona_server.api_url}
    init = {**NOTIFY, "apiUrl": daytona_server.api_url, "prewarm": False}
    async with start_session(init_options=init, env=env) as s:
        uri = s.open("r.py", "print(1)\n")
        await s.run(uri)
        (first,) = daytona_server.sandboxes
        assert (await s.command("daytona.resetSandbox"))["closed"] == 1
        assert first in daytona_server.deleted_ids
        assert (await s.command("daytona.sandboxInfo"))["state"] == "none"
        await s.run(uri)
        assert daytona_server.count("POST /sandbox") == 2


BAD_RUN_ARGUMENTS = [
    ([], "needs one argument"),
    (["file:///x.py"], "takes one argument"),
    ([{"uri": 5}], "'uri' must be"),
    ([{"uri": "file:///never/opened.py"}], "unknown document"),
    ([{"uri": "OPEN", "range": {"start": {"line": 0}}}], "range must be"),
    ([{"uri": "OPEN", "range": {"start": {"line": 9, "character": 0}, "end": {"line": 9, "character": 1}}}], "outside"),
    ([{"uri": "OPEN", "range": {"start": {"line": 1, "character": 0}, "end": {"line": 0, "character": 0}}}], "before"),
    (
        [{"uri": "OPEN", "range": {"start": {"line": -1, "character": 0}, "end": {"line": 0, "character": 0}}}],
        "non-negative",
    ),
    ([{"uri": "OPEN", "language": "cobol"}], "Unsupported language"),
    ([{"uri": "OPEN"}, {"uri": "OPEN"}], "takes one argument"),
]


async def test_bad_run_arguments_get_invalid_params() -> None:
    async with start_session(init_options=LOCAL) as s:
        uri = s.open("ok.py", "print(1)\nprint(2)\n")
        for arguments, expected in BAD_RUN_ARGUMENTS:
            args = [{**a, "uri": uri} if isinstance(a, dict) and a.get("uri") == "OPEN" else a for a in arguments]
            with pytest.raises(JsonRpcException) as info:
                await s.command("daytona.run", *args)
            assert info.value.code == -32602, arguments
            assert expected in info.value.message, (arguments, info.value.message)
        # the server is still fine
        assert (await s.run(uri))["output"] == "1\n2\n"


async def test_bad_documents_get_clear_errors(caps: str) -> None:
    async with start_session(caps, init_options=LOCAL) as s:
        empty = s.open("empty.py", "\n\n")
        with pytest.raises(JsonRpcException, match="nothing to run"):
            await s.command("daytona.run", {"uri": empty})
        text = s.open("notes.txt", "hello", language_id="plaintext")
        with pytest.raises(JsonRpcException, match="Cannot run a 'plaintext' document"):
            await s.command("daytona.run", {"uri": text})
        # an explicit language makes it runnable
        assert (await s.command("daytona.run", {"uri": text, "language": "bash"}))["exitCode"] == 127
        for command, arg in (("daytona.cancel", {"runId": []}), ("daytona.sandboxInfo", "x")):
            with pytest.raises(JsonRpcException) as info:
                await s.command(command, arg)
            assert info.value.code == -32602


async def test_backend_daytona_without_a_key_is_a_clear_error() -> None:
    async with start_session(init_options={**NOTIFY, "backend": "daytona", "prewarm": True}) as s:
        uri = s.open("k.py", "print(1)\n")
        with pytest.raises(JsonRpcException, match="DAYTONA_API_KEY is not set"):
            await s.run(uri)
        assert any("DAYTONA_API_KEY" in m.message for m in s.client.messages if m.type == types.MessageType.Error)


async def test_api_key_never_appears_in_what_the_server_sends(daytona_server: Any) -> None:
    key = daytona_server.api_key
    env = {"DAYTONA_API_KEY": key, "DAYTONA_API_URL": daytona_server.api_url}
    init = {**NOTIFY, "apiUrl": daytona_server.api_url, "prewarm": False, "timeout": "x"}
    async with start_session(init_options=init, env=env) as s:
        uri = s.open("leak.sh", "echo $DAYTONA_API_KEY; echo done\n", language_id="shellscript")
        daytona_server.fail_create(status=401, times=10, message=f"bad key {key}")
        failed = await s.run(uri)
        assert failed["exitCode"] != 0
        seen = [failed["output"], *(m.message for m in s.client.messages), s.log_text()]
        seen += [str(p) for _, p in s.events]
        assert not any(key in text for text in seen)


STRAY_WRITE = """
import os
pid = os.getppid()
while pid > 1 and b"daytona_lsp" not in open(f"/proc/{pid}/cmdline", "rb").read():
    pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
fd = os.open(f"/proc/{pid}/fd/1", os.O_WRONLY)
os.write(fd, b"Content-Length: 5\\r\\n\\r\\nhello")
print("wrote to the server's fd 1")
"""


async def test_stray_writes_to_the_servers_stdout_do_not_corrupt_the_protocol(caps: str) -> None:
    # unisolated code writes to the server process's own fd 1: that must not be the protocol stream
    init = {**LOCAL, "local": {"isolation": "none"}}
    async with start_session(caps, init_options=init) as s:
        uri = s.open("o.py", STRAY_WRITE)
        result = await s.run(uri)
        assert result["output"] == "wrote to the server's fd 1\n", result["output"]
        assert (await s.code_actions(uri, rng(0, 0, 0, 0)))[0].title.startswith("Run file")
        assert (await s.run(uri))["exitCode"] == 0


def test_server_module_imports_no_daytona_sdk() -> None:
    import subprocess
    import sys

    code = (
        "import sys, daytona_lsp.cli, daytona_lsp.lsp.server; server = daytona_lsp.lsp.server.create_server(); "
        "print('daytona' in sys.modules, 'aiohttp' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.split() == ["False", "False"]


async def test_tcp_mode_serves_one_client_and_cleans_up(tmp_path: Path) -> None:
    import re
    import sys

    from pygls.lsp.client import LanguageClient

    env = {k: v for k, v in os.environ.items() if not k.startswith("DAYTONA_")}
    env["TMPDIR"] = str(tmp_path)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "daytona_lsp",
        "serve",
        "--tcp",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stderr is not None
        line = (await asyncio.wait_for(process.stderr.readline(), WAIT)).decode()
        found = re.search(r"listening on 127\.0\.0\.1:(\d+);.*token: (\S+)", line)
        assert found, line
        port, token = int(found.group(1)), found.group(2)
        client = LanguageClient("tcp-test", "0")
        await client.start_tcp("127.0.0.1", port)
        await client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(), initialization_options={**LOCAL, "token": token}
            )
        )
        client.initialized(types.InitializedParams())
        uri = (tmp_path / "t.py").as_uri()
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text="print(7)\n")
            )
        )
        result = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="daytona.run", arguments=[{"uri": uri}])
        )
        assert result["exitCode"] == 0 and result["output"] == "7\n"
        assert _leftovers(tmp_path)
        client.protocol.writer.close()  # the client goes away without shutdown
        assert await asyncio.wait_for(process.wait(), WAIT) == 0
        assert _leftovers(tmp_path) == []
        await client.stop()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_api_key_is_redacted_even_from_the_codes_own_output(caps: str) -> None:
    key = "dtn_secret_key_1234567890"
    init = {**LOCAL, "envVars": {"LEAK": key}}
    async with start_session(caps, init_options=init, env={"DAYTONA_API_KEY": key}) as s:
        uri = s.open("leak.sh", "echo key=$LEAK\n", language_id="shellscript")
        result = await s.run(uri)
        await s.wait_until(lambda: result["runId"] in s.finished)
        assert result["output"] == "key=***\n"
        assert key not in s.output_text(result["runId"])


async def test_sigterm_closes_every_environment(tmp_path: Path) -> None:
    import signal

    async with start_session(init_options=LOCAL, env={"TMPDIR": str(tmp_path)}, shutdown=False) as s:
        uri = s.open("x.py", SLOW)
        task = asyncio.ensure_future(s.run(uri))
        await s.wait_until(lambda: _started_output(s))
        assert _leftovers(tmp_path)
        process = s.client._server
        assert process is not None
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), WAIT) == 0
        task.cancel()
    assert _leftovers(tmp_path) == []


async def test_shutdown_while_the_prewarm_is_creating_leaves_no_sandbox(daytona_server: Any) -> None:
    env = {"DAYTONA_API_KEY": daytona_server.api_key, "DAYTONA_API_URL": daytona_server.api_url}
    async with start_session(init_options={**NOTIFY, "apiUrl": daytona_server.api_url}, env=env, shutdown=False) as s:
        daytona_server.hold_create(1)
        s.open("warm.py", "print(1)\n")
        await asyncio.to_thread(daytona_server.wait_held, 1, WAIT)
        shutdown = asyncio.ensure_future(s.client.shutdown_async(None))
        daytona_server.release()  # the sandbox appears while (or after) the server shuts down
        await asyncio.wait_for(shutdown, WAIT)
        s.client.exit(None)
        process = s.client._server
        assert process is not None
        await asyncio.wait_for(process.wait(), WAIT)
    assert daytona_server.count("POST /sandbox") == 1
    assert daytona_server.sandboxes == {} and len(daytona_server.deleted_ids) == 1


async def test_each_workspace_folder_has_its_settings_and_its_sandbox(caps: str, tmp_path: Path) -> None:
    async with start_session(
        caps, init_options=LOCAL, subfolders=("alpha", "beta"), env={"TMPDIR": str(tmp_path)}
    ) as s:
        for name in ("alpha", "beta"):
            s.client.set_configuration(
                {"envVars": {"WHO": name}}, section="daytona", scope_uri=(s.root / name).as_uri()
            )
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        a = s.open("alpha/a.sh", "echo $WHO; touch mark-a; ls\n", language_id="shellscript")
        b = s.open("beta/b.sh", "echo $WHO; ls\n", language_id="shellscript")
        # each runs in its own folder (its files visible), in a sandbox of its own: no mark-a in beta's
        assert (await s.run(a))["output"] == "alpha\na.sh\nmark-a\n"
        assert (await s.run(b))["output"] == "beta\nb.sh\n"
        assert len(_leftovers(tmp_path)) == 2
        assert (await s.command("daytona.sandboxInfo", {"uri": a}))["state"] == "ready"
        assert (await s.command("daytona.resetSandbox", {"uri": a}))["closed"] == 1
        assert (await s.command("daytona.sandboxInfo", {"uri": a}))["state"] == "none"
        assert (await s.command("daytona.sandboxInfo", {"uri": b}))["state"] == "ready"
        assert len(_leftovers(tmp_path)) == 1


@pytest.mark.parametrize("stdin_kind", ["devnull", "file"])
def test_stdin_that_is_not_a_pipe_still_works(stdin_kind: str, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}})
    source = tmp_path / "in.lsp"
    source.write_bytes(f"Content-Length: {len(body)}\r\n\r\n{body}".encode() if stdin_kind == "file" else b"")
    with open(os.devnull if stdin_kind == "devnull" else source, "rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "daytona_lsp"], stdin=stdin, capture_output=True, timeout=WAIT, check=False
        )
    assert done.returncode == 0, done.stderr
    if stdin_kind == "file":
        assert b'"capabilities"' in done.stdout and b'"executeCommandProvider"' in done.stdout
    else:
        assert done.stdout == b""


async def test_disabling_a_language_refreshes_lenses_and_removes_actions() -> None:
    async with start_session("visual-studio-code", init_options=LOCAL, configuration={"languages": ["python"]}) as s:
        refreshes: list[asyncio.Future[None]] = [asyncio.get_running_loop().create_future() for _ in range(2)]

        @s.client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
        def on_refresh(params: None) -> None:
            next(f for f in refreshes if not f.done()).set_result(None)

        # the workspace configuration ({"languages": ["python"]}) differs from the initialization options: one refresh
        await asyncio.wait_for(refreshes[0], WAIT)
        uri = s.open("a.py", "print(1)\n")
        assert len(await s.code_actions(uri, rng(0, 0, 0, 0))) == 1
        s.client.set_configuration({"languages": ["bash"]}, section="daytona")
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        await asyncio.wait_for(refreshes[1], WAIT)
        assert await s.code_actions(uri, rng(0, 0, 0, 0)) == []
        lenses = await s.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
        assert not lenses
        with pytest.raises(JsonRpcException, match="not enabled"):
            await s.run(uri)
