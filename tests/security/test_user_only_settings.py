"""Settings that decide where the API key goes or how isolated code runs are honoured only from user-level sources.

Each test drives the real server (pytest-lsp) with a client whose *folder* settings (``workspace/configuration`` with a
``scopeUri``) try what a hostile repository's ``.vscode/settings.json`` would.
"""

from __future__ import annotations

import tempfile
from typing import Any

from lsprotocol import types
from tests.daytona_server.server import DaytonaTestServer
from tests.lsp.conftest import start_session

NOTIFY = {"outputNotifications": True}


def _warnings(s: Any) -> list[str]:
    return [m.message for m in s.client.messages if m.type == types.MessageType.Warning]


async def test_a_folder_api_url_never_receives_the_api_key(daytona_server: DaytonaTestServer) -> None:
    with DaytonaTestServer() as attacker:
        env = {"DAYTONA_API_KEY": daytona_server.api_key}
        user = {"backend": "daytona", "apiUrl": daytona_server.api_url}
        async with start_session(init_options={**NOTIFY, **user}, configuration=user, env=env) as s:
            folder = s.root.as_uri()
            s.client.set_configuration(
                {"apiUrl": attacker.api_url, "target": "evil", "prewarm": True}, section="daytona", scope_uri=folder
            )
            s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
            await s.wait_until(lambda: any("Ignored daytona.apiUrl" in w for w in _warnings(s)))
            uri = s.open("main.py", "print('hello')\n")  # opening a file prewarms: the first place a key could go
            result = await s.run(uri)
            assert result["exitCode"] == 0 and result["output"] == "hello\n"
            assert daytona_server.count("POST /sandbox") == 1
            assert any("Ignored daytona.target" in w for w in _warnings(s))
            assert folder in next(w for w in _warnings(s) if "Ignored daytona.apiUrl" in w)
        assert sum(attacker.counts.values()) == 0  # not one request (so no Authorization header) reached it


async def test_a_user_api_url_over_plain_http_to_another_host_is_refused_with_a_warning() -> None:
    init = {**NOTIFY, "backend": "local", "apiUrl": "http://daytona.example.test/api"}
    async with start_session(init_options=init) as s:
        await s.wait_until(lambda: any("apiUrl" in w and "loopback" in w for w in _warnings(s)))


async def test_folder_settings_cannot_switch_isolation_off_or_the_network_on() -> None:
    user = {"backend": "local", "prewarm": False}
    async with start_session(init_options={**NOTIFY, **user}, configuration=user) as s:
        s.client.set_configuration(
            {"local": {"isolation": "none", "network": True}}, section="daytona", scope_uri=s.root.as_uri()
        )
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        await s.wait_until(lambda: any("Ignored daytona.local.network" in w for w in _warnings(s)))
        assert any("Ignored daytona.local.isolation" in w for w in _warnings(s))
        with tempfile.NamedTemporaryFile(prefix="host-only-") as host_file:
            uri = s.open("where.py", f"import os\nprint(os.path.exists({host_file.name!r}))\n")
            result = await s.run(uri)
        assert result["exitCode"] == 0 and result["output"] == "False\n"  # still inside the sandbox
        assert not any("UNISOLATED" in o["text"] for o in s.output[result["runId"]])


async def test_unisolated_runs_from_user_settings_warn_once_and_every_header_says_so(caps: str) -> None:
    init = {"backend": "local", "prewarm": False, "local": {"isolation": "none", "network": True}}
    async with start_session(caps, init_options=init, configuration=init) as s:
        await s.wait_until(lambda: any("UNISOLATED" in w for w in _warnings(s)))
        uri = s.open("u.py", "print(1)\n")
        for _ in range(2):
            assert (await s.run(uri))["exitCode"] == 0
        s.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        assert (await s.run(uri))["exitCode"] == 0  # the run waits for the refreshed settings
        headers = [line for line in s.log_text().splitlines() if line.startswith("▶ run")]
        assert len(headers) == 3 and all("UNISOLATED" in h and "network on" in h for h in headers), headers
        assert len([w for w in _warnings(s) if "UNISOLATED" in w]) == 1
        assert len([w for w in _warnings(s) if "network on" in w]) == 1


async def test_unisolated_runs_tell_editors_with_output_notifications_in_the_runs_first_line() -> None:
    init = {**NOTIFY, "backend": "local", "prewarm": False, "local": {"isolation": "none"}}
    async with start_session(init_options=init) as s:
        result = await s.run(s.open("n.py", "print(2)\n"))
        first = s.output[result["runId"]][0]
        assert first["stream"] == "stderr" and "UNISOLATED" in first["text"]
        assert result["output"] == "2\n"  # the warning is not part of what the code printed


async def test_an_unisolated_run_does_not_inherit_the_servers_environment() -> None:
    init = {"backend": "local", "prewarm": False, "local": {"isolation": "none"}}
    secret = "s3cr3t-value-of-the-server"
    async with start_session(init_options=init, env={"SERVER_ONLY_SECRET": secret}) as s:
        code = "import os\nprint(sorted(k for k, v in os.environ.items() if 's3cr3t' in v or k == 'SERVER_ONLY_SECRET'))\n"
        result = await s.run(s.open("env.py", code))
        assert result["exitCode"] == 0 and result["output"] == "[]\n"


async def test_size_and_time_settings_beyond_their_bounds_are_clamped_with_a_warning() -> None:
    init = {**NOTIFY, "backend": "local", "prewarm": False, "maxOutputBytes": 10**30, "timeout": 10**12}
    async with start_session(init_options=init, configuration={"maxOutputBytes": 10}) as s:
        await s.wait_until(lambda: any("maxOutputBytes=10 " in w for w in _warnings(s)))
        assert any("maxOutputBytes=1000000000000000000000000000000 is out of bounds" in w for w in _warnings(s))
        assert any("timeout=1000000000000 is out of bounds" in w and "using 86400.0" in w for w in _warnings(s))
        result = await s.run(s.open("big.py", "print('x' * 5000)\n"))
        assert result["truncated"] is True and len(result["output"].encode()) <= 1024 + 200  # clamped to 1024
