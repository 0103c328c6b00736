"""The Daytona test server behaves like the real API and daemon where our code depends on it (daytona-wire.md §6),
driven by the unmodified SDK; and the CLI helpers ``list_sandboxes`` / ``delete_sandboxes`` against it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.daytona_server import DaytonaTestServer
from tests.daytona_server.server import _legacy_split

from daytona_lsp.core.daytona import (
    DaytonaCodeEnvironment,
    MissingCredentialsError,
    delete_sandboxes,
    list_sandboxes,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def sdk(daytona_server: DaytonaTestServer) -> AsyncIterator[object]:
    from daytona import AsyncDaytona, DaytonaConfig

    client = AsyncDaytona(DaytonaConfig(api_key=daytona_server.api_key, api_url=daytona_server.api_url))
    try:
        yield client
    finally:
        await client.close()


async def test_code_run_python_reads_code_from_stdin_like_the_daemon(sdk, daytona_server: DaytonaTestServer) -> None:
    sandbox = await sdk.create()
    response = await sandbox.process.code_run("print('hi')\ntry:\n    input()\nexcept EOFError:\n    print('eof')\n1/0")
    assert response.exit_code == 1
    assert response.result.startswith("hi\neof\n")
    assert 'File "<stdin>", line 6' in response.result


async def test_code_run_javascript_is_shifted_by_one_line(daytona_server: DaytonaTestServer) -> None:
    from daytona import AsyncDaytona, CreateSandboxFromSnapshotParams, DaytonaConfig

    async with AsyncDaytona(DaytonaConfig(api_key=daytona_server.api_key, api_url=daytona_server.api_url)) as client:
        sandbox = await client.create(CreateSandboxFromSnapshotParams(language="javascript"))
        response = await sandbox.process.code_run("console.log('x');\nnull.y;\n")
    assert response.exit_code == 1
    assert "[stdin]:3" in response.result


async def test_code_run_timeout_answers_408_without_output(sdk, daytona_server: DaytonaTestServer) -> None:
    from daytona_toolbox_api_client_async.exceptions import ApiException

    sandbox = await sdk.create()
    with pytest.raises(ApiException) as caught:
        await sandbox.process.code_run("import time\nprint('lost', flush=True)\ntime.sleep(30)", timeout=1)
    assert caught.value.status == 408
    assert "lost" not in (caught.value.body or "")
    assert list(daytona_server.running_processes()) == []


async def test_execute_combines_streams_and_reports_exit_code(sdk, daytona_server: DaytonaTestServer) -> None:
    sandbox = await sdk.create()
    response = await sandbox.process.exec("echo out; echo err >&2; exit 4")
    assert (response.exit_code, response.result) == (4, "out\nerr\n")


def test_legacy_daemons_split_on_spaces_honouring_quotes_without_escapes() -> None:
    assert _legacy_split("bash -c \"echo a b\" 'x y' z") == ["bash", "-c", "echo a b", "x y", "z"]
    assert _legacy_split('echo "a\\" b') == ["echo", "a\\", "b"]
    assert _legacy_split('echo ""') == ["echo", ""]


async def test_legacy_exec_does_not_use_a_shell(sdk, daytona_server: DaytonaTestServer) -> None:
    daytona_server.legacy_exec = True
    sandbox = await sdk.create()
    response = await sandbox.process.exec("echo $HOME | cat")
    assert response.result == "$HOME | cat\n"


async def test_session_logs_stream_stdout_and_stderr_apart(sdk, daytona_server: DaytonaTestServer) -> None:
    from daytona import SessionExecuteRequest

    sandbox = await sdk.create()
    await sandbox.process.create_session("s")
    command = await sandbox.process.execute_session_command(
        "s", SessionExecuteRequest(command="echo a; echo b >&2; echo c", run_async=True)
    )
    out: list[str] = []
    err: list[str] = []
    await sandbox.process.get_session_command_logs_async("s", command.cmd_id, out.append, err.append)
    assert ("".join(out), "".join(err)) == ("a\nc\n", "b\n")
    finished = await sandbox.process.get_session_command("s", command.cmd_id)
    assert finished.exit_code == 0
    logs = await sandbox.process.get_session_command_logs("s", command.cmd_id)
    assert (logs.stdout, logs.stderr) == ("a\nc\n", "b\n")
    await sandbox.process.delete_session("s")
    assert daytona_server.only_sandbox().sessions == {}


async def test_files_upload_list_download_delete(sdk, daytona_server: DaytonaTestServer) -> None:
    sandbox = await sdk.create()
    await sandbox.fs.upload_file(b"content", "dir/file.txt")
    assert [f.name for f in await sandbox.fs.list_files("dir")] == ["file.txt"]
    assert await sandbox.fs.download_file("dir/file.txt") == b"content"
    await sandbox.fs.delete_file("dir/file.txt")
    assert await sandbox.fs.list_files("dir") == []


async def test_wrong_api_key_is_refused(daytona_server: DaytonaTestServer) -> None:
    from daytona import AsyncDaytona, DaytonaAuthenticationError, DaytonaConfig

    async with AsyncDaytona(DaytonaConfig(api_key="wrong", api_url=daytona_server.api_url)) as client:
        with pytest.raises(DaytonaAuthenticationError):
            await client.create()


async def test_counts_and_faults_are_per_endpoint(sdk, daytona_server: DaytonaTestServer) -> None:
    from daytona import DaytonaNotFoundError, DaytonaRateLimitError

    daytona_server.fail_create(429)
    with pytest.raises(DaytonaRateLimitError):
        await sdk.create()
    sandbox = await sdk.create()
    assert daytona_server.count("POST /sandbox") == 2
    daytona_server.forget_sandbox(sandbox.id)
    with pytest.raises(DaytonaNotFoundError):
        await sdk.get(sandbox.id)


def test_runs_as_a_standalone_process_printing_its_url() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.daytona_server", "--port", "0"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/api")
        import urllib.request

        request = urllib.request.Request(
            url + "/sandbox", headers={"Authorization": "Bearer test-daytona-key-not-secret"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200 and b'"items": []' in response.read()
        proc.stdin.close()  # closing stdin stops it
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- CLI helpers
async def test_list_and_clean_touch_only_sandboxes_we_created(sdk, daytona_server: DaytonaTestServer) -> None:
    foreign = await sdk.create()
    env = DaytonaCodeEnvironment(api_key=daytona_server.api_key, api_url=daytona_server.api_url, labels={"p": "x"})
    try:
        assert (await env.run("pass", "python")).exit_code == 0
        ours = env.sandbox_id
        listed = await list_sandboxes(api_key=daytona_server.api_key, api_url=daytona_server.api_url)
        assert [item["id"] for item in listed] == [ours]
        assert listed[0]["state"] == "started" and listed[0]["labels"]["p"] == "x" and listed[0]["created"]
        assert set(listed[0]) == {"id", "name", "state", "labels", "created"}

        # an id that is not ours is left alone
        with pytest.raises(ValueError, match="Not sandboxes created by daytona-lsp"):
            await delete_sandboxes([ours, foreign.id], api_key=daytona_server.api_key, api_url=daytona_server.api_url)
        assert foreign.id in daytona_server.sandboxes and ours in daytona_server.sandboxes

        deleted = await delete_sandboxes([ours], api_key=daytona_server.api_key, api_url=daytona_server.api_url)
        assert deleted == [ours]
        assert list(daytona_server.sandboxes) == [foreign.id]
    finally:
        await env.aclose()


async def test_helpers_read_the_key_and_url_from_the_environment(
    daytona_server: DaytonaTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAYTONA_API_KEY", daytona_server.api_key)
    monkeypatch.setenv("DAYTONA_API_URL", daytona_server.api_url)
    assert await list_sandboxes() == []
    assert await delete_sandboxes() == []


async def test_helpers_without_a_key_raise_missing_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAYTONA_API_KEY", raising=False)
    with pytest.raises(MissingCredentialsError, match="DAYTONA_API_KEY"):
        await list_sandboxes(api_url="http://127.0.0.1:9/api")
    with pytest.raises(MissingCredentialsError):
        await delete_sandboxes(api_url="http://127.0.0.1:9/api")


async def test_helper_errors_never_contain_the_key(daytona_server: DaytonaTestServer) -> None:
    from daytona import DaytonaError

    secret = "dtn_" + "0123456789abcdef" * 3
    with pytest.raises(DaytonaError) as caught:
        await list_sandboxes(api_key=secret, api_url=daytona_server.api_url)
    assert secret not in str(caught.value) and secret not in repr(caught.value)


async def test_unreachable_api_is_a_clear_error(daytona_server: DaytonaTestServer) -> None:
    env = DaytonaCodeEnvironment(api_key="k", api_url="http://127.0.0.1:9/api", retry_backoff=0.01, create_retries=1)
    try:
        result = await asyncio.wait_for(env.run("print(1)", "python"), 60)
    finally:
        await env.aclose()
    assert result.exit_code == 1 and result.output.startswith("Daytona error")


async def test_held_toolbox_request_times_out_on_the_client(sdk, daytona_server: DaytonaTestServer) -> None:
    from daytona import DaytonaTimeoutError

    sandbox = await sdk.create()
    await sandbox.process.create_session("s")
    daytona_server.hold_toolbox()
    with pytest.raises(DaytonaTimeoutError):
        await sandbox.process.get_session("s", request_timeout=1)
    daytona_server.release()
    assert (await sandbox.process.get_session("s")).session_id == "s"


async def test_dropped_toolbox_connection_is_a_connection_error(sdk, daytona_server: DaytonaTestServer) -> None:
    from daytona import DaytonaError

    sandbox = await sdk.create()
    daytona_server.drop_toolbox()
    with pytest.raises(DaytonaError):
        await sandbox.process.exec("echo never")
    assert (await sandbox.process.exec("echo next")).result == "next\n"


async def test_clean_without_ids_deletes_every_sandbox_we_created(daytona_server: DaytonaTestServer) -> None:
    envs = [
        DaytonaCodeEnvironment(api_key=daytona_server.api_key, api_url=daytona_server.api_url, labels={"n": str(i)})
        for i in range(2)
    ]
    try:
        for env in envs:
            assert (await env.run("pass", "python")).exit_code == 0
        deleted = await delete_sandboxes(api_key=daytona_server.api_key, api_url=daytona_server.api_url)
        assert sorted(deleted) == sorted(env.sandbox_id for env in envs)
        assert daytona_server.sandboxes == {}
    finally:
        for env in envs:
            await env.aclose()
