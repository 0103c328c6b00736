"""DaytonaCodeEnvironment through the real Daytona SDK against the Daytona-API-compatible test server (no mocks)."""

from __future__ import annotations

import asyncio
import base64
import re
import sys
import urllib.parse
from pathlib import Path

import pytest
from tests.daytona_server import DaytonaTestServer
from tests.daytona_server.plugin import DaytonaEnvFactory

from daytona_lsp.core import SimpleContext, Variable
from daytona_lsp.core.daytona import (
    DaytonaCodeEnvironment,
    DaytonaResources,
    MissingCredentialsError,
)

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- construction (the seed's validation)
def test_snapshot_and_image_together_are_rejected() -> None:
    with pytest.raises(ValueError, match="snapshot"):
        DaytonaCodeEnvironment(api_key="k", snapshot="s", image="python:3.12")


def test_timeout_below_one_second_is_rejected() -> None:
    with pytest.raises(ValueError, match="timeout"):
        DaytonaCodeEnvironment(api_key="k", timeout=0)


def test_resources_without_image_are_rejected() -> None:
    with pytest.raises(ValueError, match="resources"):
        DaytonaCodeEnvironment(api_key="k", resources=DaytonaResources(cpu=2))


def test_variables_defer_validation_to_the_run() -> None:
    env = DaytonaCodeEnvironment(api_key="k", snapshot=Variable("snapshot"), image=Variable("image"))
    assert env.supported_languages == ("python", "bash", "javascript", "typescript")


# ---------------------------------------------------------------- lazy creation, reuse, languages
async def test_language_not_enabled_lists_available_and_creates_nothing(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env(languages=("python", "javascript"))
    result = await env.run("echo hi", "bash")
    assert result.exit_code == 2
    assert "'bash'" in result.output and "python" in result.output and "javascript" in result.output
    assert daytona_server.count("POST /sandbox") == 0


async def test_sandbox_is_created_on_first_run_and_reused(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    assert daytona_server.count("POST /sandbox") == 0
    first = await env.run("print(6 * 7)", "python")
    second = await env.run("echo again", "bash")
    assert (first.exit_code, first.output, first.backend) == (0, "42\n", "daytona")
    assert (second.exit_code, second.output) == (0, "again\n")
    assert daytona_server.count("POST /sandbox") == 1
    assert env.sandbox_id == daytona_server.only_sandbox().id


async def test_concurrent_first_runs_share_one_sandbox(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    results = await asyncio.gather(*(env.run(f"print({i})", "python") for i in range(4)))
    assert [r.output for r in results] == ["0\n", "1\n", "2\n", "3\n"]
    assert daytona_server.count("POST /sandbox") == 1


@pytest.mark.parametrize(
    ("language", "code", "expected"),
    [
        ("python", "import sys\nprint('out')\nprint('err', file=sys.stderr)", "out\nerr\n"),
        ("bash", 'x="it\'s $((40 + 2))"\necho "$x"', "it's 42\n"),
        ("javascript", "const s = `a'b\"c`;\nconsole.log(s, 1 + 1)", "a'b\"c 2\n"),
    ],
)
async def test_each_run_is_one_toolbox_request(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer, language: str, code: str, expected: str
) -> None:
    env = make_daytona_env()
    await env.run("pass", "python")  # the sandbox exists
    before = daytona_server.toolbox_requests()
    result = await env.run(code, language)  # type: ignore[arg-type]
    assert (result.exit_code, result.output) == (0, expected)
    assert daytona_server.toolbox_requests() - before == 1
    # python without streaming is the daemon's code-run; the others one execute
    endpoint = "POST /toolbox/process/code-run" if language == "python" else "POST /toolbox/process/execute"
    assert daytona_server.count(endpoint) == (2 if language == "python" else 1)


async def test_wrapping_works_on_daemons_that_do_not_use_a_shell(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    daytona_server.legacy_exec = True
    env = make_daytona_env()
    code = 'const name = "wörld";\nconsole.log(`hello ${name} $HOME \\\\ "q" \'s\'`)'
    result = await env.run(code, "javascript")
    assert result.exit_code == 0, result.output
    assert result.output == "hello wörld $HOME \\ \"q\" 's'\n"
    streamed = await env.run("print('streamed $HOME')", "python", on_output=lambda s, t: None)
    assert streamed.output == "streamed $HOME\n"
    bash = await env.run("echo \"$((2 ** 10))\" 'single'", "bash")
    assert (bash.exit_code, bash.output) == (0, "1024 single\n")


async def test_exit_code_and_python_traceback_lines_map_to_the_code(make_daytona_env: DaytonaEnvFactory) -> None:
    env = make_daytona_env()
    result = await env.run("x = 1\ny = 0\nprint(x / y)\n", "python")
    assert result.exit_code == 1
    assert result.source_path == "<stdin>" and result.line_offset == 0
    line = int(re.findall(r'File "<stdin>", line (\d+)', result.output)[-1]) - result.line_offset
    assert line == 3
    assert "ZeroDivisionError" in result.output


async def test_javascript_stack_lines_map_to_the_code(make_daytona_env: DaytonaEnvFactory) -> None:
    env = make_daytona_env()
    result = await env.run("const a = 1;\n\nnull.boom;\n", "javascript")
    assert result.exit_code == 1
    assert result.source_path == "[stdin]"
    line = int(re.search(r"\[stdin\]:(\d+)", result.output).group(1)) - result.line_offset  # type: ignore[union-attr]
    assert line == 3


async def test_bash_errors_name_the_script_and_line(make_daytona_env: DaytonaEnvFactory) -> None:
    env = make_daytona_env()
    result = await env.run("true\nno-such-command-xyz\nexit 7", "bash")
    assert result.exit_code == 7
    assert f"{result.source_path}: line 2: no-such-command-xyz" in result.output


async def test_code_larger_than_one_argument_is_uploaded_and_leaves_no_file(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    code = "data='" + "x" * 300_000 + "'\necho ${#data}\n"
    result = await env.run(code, "bash")
    assert (result.exit_code, result.output) == (0, "300000\n")
    assert daytona_server.count("POST /toolbox/files/bulk-upload") == 1
    assert daytona_server.count("POST /toolbox/process/execute") == 1
    streamed = await env.run("x = '" + "y" * 300_000 + "'\nprint(len(x))", "python", on_output=lambda s, t: None)
    assert streamed.output == "300000\n"
    assert daytona_server.count("POST /toolbox/files/bulk-upload") == 2
    assert await asyncio.to_thread(lambda: list(Path("/tmp").glob("daytona-lsp-*.sh"))) == []


async def test_missing_exit_code_is_never_success(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    await env.run("pass", "python")
    daytona_server.omit_exit_code()
    result = await env.run("print('fine')", "python")
    assert result.exit_code != 0
    assert "fine" in result.output and "no exit code" in result.output


# ---------------------------------------------------------------- variables and specs
async def test_variables_are_resolved_per_run_and_each_spec_gets_its_own_sandbox(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env(image=Variable("image", default="python:3.12-slim"), env_vars=Variable("env", default={}))
    a = SimpleContext({"env": {"WHO": "a"}})
    b = SimpleContext({"env": {"WHO": "b"}, "image": "python:3.13"})
    outputs = [(await env.run("echo $WHO", "bash", context=ctx)).output for ctx in (a, b, a)]
    assert outputs == ["a\n", "b\n", "a\n"]
    assert daytona_server.count("POST /sandbox") == 2
    dockerfiles = [req["buildInfo"]["dockerfileContent"] for req in daytona_server.created_requests]
    assert dockerfiles == ["FROM python:3.12-slim\n", "FROM python:3.13\n"]


async def test_api_key_from_a_variable(make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer) -> None:
    env = make_daytona_env(api_key=Variable("daytona_api_key"))
    result = await env.run("print('ok')", "python", context=SimpleContext({"daytona_api_key": daytona_server.api_key}))
    assert (result.exit_code, result.output) == (0, "ok\n")


async def test_missing_variable_is_a_clear_error_result(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env(snapshot=Variable("snapshot"))
    result = await env.run("print(1)", "python")
    assert result.exit_code == 1
    assert "Context variable 'snapshot' not found and no default provided" in result.output
    assert daytona_server.count("POST /sandbox") == 0


async def test_missing_api_key_is_a_clear_error_result(
    daytona_server: DaytonaTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAYTONA_API_KEY", raising=False)
    env = DaytonaCodeEnvironment(api_url=daytona_server.api_url)
    result = await env.run("print(1)", "python")
    await env.aclose()
    assert result.exit_code == 1 and "DAYTONA_API_KEY" in result.output
    assert daytona_server.count("POST /sandbox") == 0


async def test_api_key_from_the_environment(daytona_server: DaytonaTestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAYTONA_API_KEY", daytona_server.api_key)
    monkeypatch.setenv("DAYTONA_API_URL", daytona_server.api_url)
    env = DaytonaCodeEnvironment()
    try:
        result = await env.run("print('env')", "python")
    finally:
        await env.aclose()
    assert (result.exit_code, result.output) == (0, "env\n")


async def test_sandbox_carries_labels_intervals_and_env(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env(labels={"project": "demo"}, env_vars={"GREETING": "hi there"})
    result = await env.run("import os; print(os.environ['GREETING'])", "python")
    assert result.output == "hi there\n"
    request = daytona_server.created_requests[0]
    assert request["labels"]["created-by"] == "daytona-lsp" and request["labels"]["project"] == "demo"
    assert (request["autoStopInterval"], request["autoDeleteInterval"]) == (15, 60)

    custom = make_daytona_env(auto_stop_interval=5, auto_delete_interval=0, labels={"created-by": "someone-else"})
    await custom.run("pass", "python")
    request = daytona_server.created_requests[1]
    assert (request["autoStopInterval"], request["autoDeleteInterval"]) == (5, 0)
    assert request["labels"]["created-by"] == "daytona-lsp"


async def test_image_with_resources(make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer) -> None:
    env = make_daytona_env(image="python:3.12", resources=DaytonaResources(cpu=2, memory=4, disk=8))
    assert (await env.run("pass", "python")).exit_code == 0
    request = daytona_server.created_requests[0]
    assert (request["cpu"], request["memory"], request["disk"]) == (2, 4, 8)


# ---------------------------------------------------------------- timeouts
async def test_timeout_stops_the_code_and_keeps_partial_output(make_daytona_env: DaytonaEnvFactory) -> None:
    env = make_daytona_env(timeout=2)  # room for a slow interpreter start on a busy machine
    result = await env.run("console.log('before');\nsetInterval(() => {}, 1000);", "javascript")
    assert result.exit_code == 124
    assert result.output.startswith("before\n")
    assert "timed out" in result.output


async def test_python_timeout_without_streaming_is_124(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env(timeout=1)
    result = await env.run("import time\nprint('lost')\nwhile True: time.sleep(0.05)", "python")
    # the daemon's code-run answers a timeout with 408 and no output: the output is lost, the exit code is not
    assert result.exit_code == 124 and result.output.startswith("Execution timed out")
    assert list(daytona_server.running_processes()) == []


async def test_daemon_timeout_answer_maps_to_124(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    await env.run("pass", "python")
    daytona_server.timeout_toolbox()
    result = await env.run("print(1)", "python")
    assert result.exit_code == 124 and "timed out" in result.output


async def test_toolbox_error_becomes_a_result(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    await env.run("pass", "python")
    daytona_server.fail_toolbox(500, message="daemon exploded")
    result = await env.run("print(1)", "python")
    assert result.exit_code == 1
    assert result.output.startswith("Daytona error: ") and "daemon exploded" in result.output


# ---------------------------------------------------------------- streaming
async def test_output_streams_while_the_code_runs(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env(timeout=20)
    await env.run("pass", "python")
    go = Path(daytona_server.only_sandbox().workdir, "go")
    chunks: list[tuple[str, str]] = []

    def on_output(stream: str, text: str) -> None:
        chunks.append((stream, text))
        if "ready" in text:
            go.touch()  # the code only finishes once we have seen its first line

    code = "import os, sys, time\nprint('ready', flush=True)\nwhile not os.path.exists('go'): time.sleep(0.01)\nprint('oops', file=sys.stderr)\nsys.exit(3)"
    result = await env.run(code, "python", on_output=on_output)
    assert result.exit_code == 3
    assert result.output == "ready\noops\n"
    assert "".join(text for stream, text in chunks if stream == "stderr") == "oops\n"
    assert "".join(text for stream, text in chunks if stream == "stdout") == "ready\n"
    assert list(daytona_server.running_processes()) == []


async def test_streaming_runs_reuse_an_idle_session_and_concurrent_ones_get_their_own(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    quiet = lambda stream, text: None  # noqa: E731
    for i in range(3):
        assert (await env.run(f"print({i})", "python", on_output=quiet)).output == f"{i}\n"
    assert daytona_server.count("POST /toolbox/process/session") == 1
    assert daytona_server.count("DELETE /toolbox/process/session/{session}") == 0
    before = daytona_server.toolbox_requests()
    await env.run("print('steady')", "python", on_output=quiet)
    assert daytona_server.toolbox_requests() - before == 3  # exec, log stream, exit code

    go = Path(daytona_server.only_sandbox().workdir, "go")
    ready = [asyncio.Event(), asyncio.Event()]

    async def both_running() -> None:
        await asyncio.gather(*(event.wait() for event in ready))
        await asyncio.to_thread(go.touch)

    waiter = asyncio.create_task(both_running())
    code = "import os, time\nprint('up', flush=True)\nwhile not os.path.exists('go'): time.sleep(0.01)"
    results = await asyncio.gather(
        *(env.run(code, "python", on_output=lambda s, t, e=event: e.set()) for event in ready)
    )
    await waiter
    assert [r.exit_code for r in results] == [0, 0]
    assert daytona_server.count("POST /toolbox/process/session") == 2


async def test_pooled_session_lost_with_a_restart_is_replaced(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    quiet = lambda stream, text: None  # noqa: E731
    await env.run("pass", "python", on_output=quiet)
    assert env.sandbox_id is not None
    daytona_server.stop_sandbox(env.sandbox_id)
    result = await env.run("print('again')", "python", on_output=quiet)
    assert (result.exit_code, result.output) == (0, "again\n")
    assert daytona_server.count("POST /sandbox/{id}/start") == 1


async def test_pooled_session_that_vanished_is_replaced_once(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    quiet = lambda stream, text: None  # noqa: E731
    await env.run("pass", "python", on_output=quiet)
    daytona_server.call(lambda: daytona_server.only_sandbox().sessions.clear())
    result = await env.run("print('replaced')", "python", on_output=quiet)
    assert (result.exit_code, result.output) == (0, "replaced\n")
    assert daytona_server.count("POST /toolbox/process/session") == 2
    assert daytona_server.count("POST /toolbox/process/session/{session}/exec") == 3


async def test_async_output_callback_is_awaited(make_daytona_env: DaytonaEnvFactory) -> None:
    env = make_daytona_env()
    seen: list[str] = []

    async def on_output(stream: str, text: str) -> None:
        await asyncio.sleep(0)
        seen.append(text)

    result = await env.run("echo one; echo two", "bash", on_output=on_output)
    assert result.exit_code == 0 and "".join(seen) == "one\ntwo\n"


async def test_streaming_timeout_keeps_partial_output_and_kills_the_code(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env(timeout=2)  # room for a slow interpreter start on a busy machine
    chunks: list[str] = []
    result = await env.run(
        "import time\nprint('partial', flush=True)\nwhile True: time.sleep(0.05)",
        "python",
        on_output=lambda stream, text: chunks.append(text),
    )
    assert result.exit_code == 124
    assert result.output.startswith("partial\n") and "timed out" in result.output
    assert "".join(chunks).startswith("partial\n")
    assert list(daytona_server.running_processes()) == []


# ---------------------------------------------------------------- output cap
async def test_output_is_capped_with_head_and_tail(make_daytona_env: DaytonaEnvFactory) -> None:
    env = make_daytona_env(max_output_bytes=2000)
    result = await env.run("print('HEAD'); print('x' * 100_000); print('TAIL')", "python")
    assert result.exit_code == 0 and result.truncated
    assert result.output.startswith("HEAD") and result.output.rstrip().endswith("TAIL")
    assert "truncated" in result.output and len(result.output.encode()) < 2200


async def test_streamed_output_is_capped_too_and_adds_up_to_the_result(make_daytona_env: DaytonaEnvFactory) -> None:
    env = make_daytona_env(max_output_bytes=2000)
    streamed: list[str] = []
    result = await env.run("for i in range(20000): print(i)", "python", on_output=lambda s, t: streamed.append(t))
    assert result.truncated and result.output.rstrip().endswith("19999")
    assert "".join(streamed) == result.output  # the head while it runs, then the marker and the tail
    assert len(result.output.encode()) < 2200


# ---------------------------------------------------------------- lifecycle faults
async def test_stopped_sandbox_is_started_again(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    await env.run("pass", "python")
    sandbox_id = env.sandbox_id
    assert sandbox_id is not None
    daytona_server.stop_sandbox(sandbox_id)
    result = await env.run("print('back')", "python")
    assert (result.exit_code, result.output) == (0, "back\n")
    assert daytona_server.count("POST /sandbox/{id}/start") == 1
    assert daytona_server.count("POST /sandbox") == 1 and env.sandbox_id == sandbox_id


async def test_stopped_sandbox_is_started_again_when_streaming(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    await env.run("pass", "python")
    assert env.sandbox_id is not None
    daytona_server.stop_sandbox(env.sandbox_id)
    result = await env.run("print('back')", "python", on_output=lambda s, t: None)
    assert (result.exit_code, result.output) == (0, "back\n")
    assert daytona_server.count("POST /sandbox/{id}/start") == 1


async def test_deleted_sandbox_is_recreated_once_and_the_run_retried(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    await env.run("pass", "python")
    old = env.sandbox_id
    assert old is not None
    daytona_server.forget_sandbox(old)
    result = await env.run("print('fresh')", "python")
    assert (result.exit_code, result.output) == (0, "fresh\n")
    assert daytona_server.count("POST /sandbox") == 2 and env.sandbox_id != old


async def test_run_that_may_have_started_is_not_retried(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    await env.run("pass", "python")
    workdir = daytona_server.only_sandbox().workdir
    daytona_server.drop_toolbox_after_start()
    result = await env.run("open('ran.txt', 'a').write('x')", "python")
    assert result.exit_code == 1 and result.output.startswith("Daytona error")
    assert daytona_server.count("POST /toolbox/process/code-run") == 2  # the warm-up and this one: no retry
    assert daytona_server.count("POST /sandbox") == 1
    again = await env.run("print(open('ran.txt').read())", "python")
    assert again.output == "x\n" and daytona_server.only_sandbox().workdir == workdir


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_creation_is_retried_on_rate_limit_and_server_errors(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer, status: int
) -> None:
    env = make_daytona_env()
    daytona_server.fail_create(status, times=2)
    result = await env.run("print('made it')", "python")
    assert (result.exit_code, result.output) == (0, "made it\n")
    assert daytona_server.count("POST /sandbox") == 3


async def test_creation_is_retried_after_a_dropped_connection(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    daytona_server.drop_create()
    result = await env.run("print('ok')", "python")
    assert (result.exit_code, result.output) == (0, "ok\n")
    assert daytona_server.count("POST /sandbox") == 2


async def test_creation_retries_are_bounded_and_leak_no_client(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env(create_retries=2)
    daytona_server.fail_create(429, times=100, message="slow down")
    result = await env.run("print(1)", "python")
    assert result.exit_code == 1
    assert result.output.startswith("Daytona rate limit exceeded: ") and "slow down" in result.output
    assert daytona_server.count("POST /sandbox") == 3
    assert all(slot.client is None for slot in env._pool.slots.values())


async def test_creation_is_not_retried_on_client_errors(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    daytona_server.fail_create(400, message="bad snapshot")
    result = await env.run("print(1)", "python")
    assert result.exit_code == 1 and "bad snapshot" in result.output
    assert daytona_server.count("POST /sandbox") == 1


async def test_aclose_during_creation_deletes_the_new_sandbox(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    daytona_server.hold_create()
    run = asyncio.create_task(env.run("print(1)", "python"))
    await asyncio.to_thread(daytona_server.wait_held)
    close = asyncio.create_task(env.aclose())
    await asyncio.sleep(0)  # let aclose start: it must wait for the creation, not race it
    daytona_server.release()
    result = await run
    await close
    assert result.exit_code == 1 and "closed" in result.output
    assert daytona_server.sandboxes == {} and len(daytona_server.deleted_ids) == 1


async def test_aclose_is_idempotent_and_runs_after_it_fail_cleanly(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    async with make_daytona_env() as env:
        assert (await env.run("pass", "python")).exit_code == 0
    await env.aclose()
    assert len(daytona_server.deleted_ids) == 1 and daytona_server.sandboxes == {}
    after = await env.run("print(1)", "python")
    assert after.exit_code == 1 and "closed" in after.output
    assert daytona_server.count("POST /sandbox") == 1


async def test_reset_deletes_the_sandbox_and_the_next_run_makes_a_new_one(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    await env.run("pass", "python")
    first = env.sandbox_id
    await env.reset()
    assert daytona_server.sandboxes == {} and env.info() == {"backend": "daytona", "state": "none"}
    await env.run("pass", "python")
    assert env.sandbox_id not in (None, first)
    assert env.info()["state"] == "started"


# ---------------------------------------------------------------- secrets
async def test_api_key_never_appears_in_results_or_logs(
    daytona_server: DaytonaTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "dtn_" + "s3cr3t" * 6
    env = DaytonaCodeEnvironment(api_key=secret, api_url=daytona_server.api_url, retry_backoff=0.01)
    caplog.set_level("DEBUG")
    try:
        denied = await env.run("print(1)", "python")
    finally:
        await env.aclose()
    assert denied.exit_code == 1 and "Daytona error" in denied.output
    assert secret not in denied.output and secret not in repr(denied)
    assert secret not in caplog.text
    assert secret not in repr(env._pool.slots)


async def test_encoded_api_key_in_an_error_is_redacted(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    await env.run("pass", "python")
    key = daytona_server.api_key.encode()
    encodings = [base64.b64encode(b"Bearer " + key).decode(), key.hex(), urllib.parse.quote("k=" + key.decode())]
    daytona_server.fail_toolbox(500, message="echo " + " ".join(encodings))
    result = await env.run("print(1)", "python")
    assert result.exit_code == 1 and result.output.startswith("Daytona error: ") and "echo" in result.output
    for encoded in encodings:
        assert encoded not in result.output
    assert key.hex() not in result.output and daytona_server.api_key not in result.output


async def test_cleanup_at_interpreter_exit_deletes_the_sandbox(
    daytona_server: DaytonaTestServer, tmp_path: Path
) -> None:
    script = tmp_path / "child.py"
    script.write_text(
        "import asyncio, sys\n"
        "from daytona_lsp.core.daytona import DaytonaCodeEnvironment\n"
        "env = DaytonaCodeEnvironment(api_key=sys.argv[1], api_url=sys.argv[2])\n"
        "result = asyncio.run(env.run('print(123)', 'python'))\n"
        "print(result.output, end='')\n"
        "sys.exit(result.exit_code)\n"  # no aclose
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        daytona_server.api_key,
        daytona_server.api_url,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert out == b"123\n"
    assert daytona_server.count("POST /sandbox") == 1
    assert daytona_server.count("DELETE /sandbox/{id}") == 1
    assert daytona_server.sandboxes == {}


def test_missing_credentials_error_is_a_value_error() -> None:
    assert issubclass(MissingCredentialsError, ValueError)
    assert "DAYTONA_API_KEY" in str(MissingCredentialsError())


# ---------------------------------------------------------------- cancellation
async def test_cancelled_streaming_run_ends_its_session_and_comes_back_as_a_result(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    started = asyncio.Event()
    streamed: list[str] = []

    def on_output(stream: str, text: str) -> None:
        streamed.append(text)
        if "started" in text:
            started.set()

    run = asyncio.create_task(
        env.run(
            "import time\nprint('started', flush=True)\nwhile True: time.sleep(0.05)", "python", on_output=on_output
        )
    )
    await started.wait()
    run.cancel()
    result = await run  # a result, as the local backend gives: never a CancelledError
    assert result.exit_code == 124
    assert result.output == "started\nRun cancelled: the command in the sandbox was stopped.\n"
    assert "".join(streamed) == result.output
    assert not run.cancelled()
    assert daytona_server.count("DELETE /toolbox/process/session/{session}") == 1
    assert daytona_server.only_sandbox().sessions == {}


async def test_run_cancelled_during_creation_leaves_the_sandbox_for_the_next_run(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    daytona_server.hold_create()
    first = asyncio.create_task(env.run("print(1)", "python"))
    await asyncio.to_thread(daytona_server.wait_held)
    first.cancel()
    cancelled = await first
    assert (cancelled.exit_code, cancelled.output) == (124, "Run cancelled before the code started.\n")
    daytona_server.release()
    second = await env.run("print(2)", "python")
    assert (second.exit_code, second.output) == (0, "2\n")
    assert daytona_server.count("POST /sandbox") == 1


async def test_aclose_after_a_cancelled_creation_still_deletes_the_sandbox(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    daytona_server.hold_create()
    first = asyncio.create_task(env.run("print(1)", "python"))
    await asyncio.to_thread(daytona_server.wait_held)
    first.cancel()
    assert (await first).exit_code == 124
    close = asyncio.create_task(env.aclose())
    await asyncio.sleep(0)
    daytona_server.release()
    await close
    assert daytona_server.count("POST /sandbox") == 1
    assert daytona_server.sandboxes == {} and len(daytona_server.deleted_ids) == 1


async def test_prewarm_creates_the_sandbox_without_running_anything(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    await env.prewarm()
    assert daytona_server.count("POST /sandbox") == 1 and daytona_server.toolbox_requests() == 0
    assert env.info()["sandboxId"] == daytona_server.only_sandbox().id
    result = await env.run("print('warm')", "python")
    assert result.output == "warm\n" and daytona_server.count("POST /sandbox") == 1


async def test_prewarm_failure_is_a_readable_error(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env(create_retries=0)
    daytona_server.fail_create(400, message="no such snapshot")
    with pytest.raises(RuntimeError, match="no such snapshot"):
        await env.prewarm()


async def test_dropped_connection_is_an_error_result_without_retry(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    await env.run("pass", "python")
    daytona_server.drop_toolbox()
    result = await env.run("print(1)", "python")
    assert result.exit_code == 1 and result.output.startswith("Daytona error")
    assert daytona_server.count("POST /toolbox/process/code-run") == 2


def test_one_environment_serves_several_event_loops(daytona_server: DaytonaTestServer) -> None:
    env = DaytonaCodeEnvironment(api_key=daytona_server.api_key, api_url=daytona_server.api_url)
    first = asyncio.run(env.run("print(1)", "python"))
    sandbox_id = env.sandbox_id
    second = asyncio.run(env.run("print(2)", "python"))
    third = asyncio.run(env.run("print(3)", "python", on_output=lambda s, t: None))
    assert [r.output for r in (first, second, third)] == ["1\n", "2\n", "3\n"]
    assert env.sandbox_id == sandbox_id and daytona_server.count("POST /sandbox") == 1
    asyncio.run(env.aclose())
    assert daytona_server.deleted_ids == [sandbox_id] and daytona_server.sandboxes == {}


async def test_unanswered_code_run_ends_as_a_timeout_result(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env(timeout=1)
    await env.run("pass", "python")
    daytona_server.hold_toolbox()  # the daemon never answers: the SDK's client-side timeout (builtin TimeoutError)
    try:
        result = await env.run("print(1)", "python")
    finally:
        daytona_server.release()
    assert result.exit_code == 124 and result.output.startswith("Execution timed out")


async def test_raw_code_run_errors_are_readable(
    make_daytona_env: DaytonaEnvFactory, daytona_server: DaytonaTestServer
) -> None:
    env = make_daytona_env()
    await env.run("pass", "python")
    daytona_server.fail_toolbox(429, message="too many runs")
    limited = await env.run("print(1)", "python")
    assert limited.exit_code == 1
    assert (
        limited.output == "Daytona rate limit exceeded: Failed to run code: HTTP 429 Too Many Requests: too many runs\n"
    )
