"""LocalCodeEnvironment: running each language in the real bubblewrap sandbox (no mocks)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
from pathlib import Path

import pytest

from daytona_lsp.core import CodeEnvironment, RunSpec, SimpleContext, Variable
from daytona_lsp.core.local import (
    SANDBOX_FAILED_EXIT_CODE,
    LocalCodeEnvironment,
    LocalSandboxError,
)
from daytona_lsp.core.local.runtimes import node_info

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap needs Linux")


async def test_python_runs_and_reports_sandbox_source_path(env):
    result = await env.run("import sys\nprint('hello', sys.version_info[0])\n", "python")
    assert result.exit_code == 0
    assert result.output == "hello 3\n"
    assert result.backend == "local"
    assert result.source_path == "/code/main.py"
    assert result.line_offset == 0
    assert result.truncated is False
    assert result.duration_ms is not None and result.duration_ms >= 0


async def test_python_traceback_names_the_source_path_and_user_line(env):
    result = await env.run("x = 1\ny = 2\nraise ValueError('boom')\n", "python")
    assert result.exit_code == 1
    assert f'File "{result.source_path}", line 3' in result.output
    assert "ValueError: boom" in result.output


async def test_exit_status_is_the_codes_own(env):
    assert (await env.run("import sys; sys.exit(7)", "python")).exit_code == 7
    assert (await env.run("exit 42", "bash")).exit_code == 42


async def test_bash_runs_with_bash_features(env):
    result = await env.run('declare -a xs=(a b c)\necho "${#xs[@]} ${xs[1]}"\n', "bash")
    assert (result.exit_code, result.output) == (0, "3 b\n")
    assert result.source_path == "/code/main.sh"


async def test_javascript_runs_with_node_and_stack_names_source_path(env):
    ok = await env.run("console.log(6 * 7)", "javascript")
    assert (ok.exit_code, ok.output) == (0, "42\n")
    failed = await env.run("const a = 1;\nnope();\n", "javascript")
    assert failed.exit_code == 1
    assert f"{failed.source_path}:2" in failed.output
    assert "ReferenceError: nope is not defined" in failed.output


async def test_javascript_accepts_es_module_syntax(env):
    result = await env.run("import { sep } from 'node:path';\nconsole.log(sep);\n", "javascript")
    assert (result.exit_code, result.output) == (0, "/\n")


async def test_typescript_without_a_runner_says_what_to_install(env, monkeypatch):
    node_version = await node_info(None)
    if isinstance(node_version, tuple) and node_version[1] >= (22, 6, 0):
        pytest.skip("this Node.js strips types itself")
    node = shutil.which("node")
    if node is None:
        pytest.skip("no Node.js")
    node_dir = str(Path(node).parent)
    if shutil.which("tsx", path=node_dir) or shutil.which("ts-node", path=node_dir):
        pytest.skip("a TypeScript runner sits next to node")
    monkeypatch.setenv("PATH", node_dir)  # no tsx / ts-node on PATH
    chunks: list[str] = []
    result = await env.run(
        "const x: number = 1\nconsole.log(x)\n", "typescript", on_output=lambda s, t: chunks.append(t)
    )
    assert result.exit_code == 2
    assert "tsx" in result.output and "npm install" in result.output and "22.6" in result.output
    assert "".join(chunks) == result.output, "the message reaches the output callback too"
    assert await env.language_problem("typescript") == result.output


async def test_a_configured_typescript_runner_that_is_missing_is_named(env):
    env2 = LocalCodeEnvironment(typescript_runner="/nonexistent/tsx")
    try:
        result = await env2.run("let x: number = 1", "typescript")
    finally:
        await env2.aclose()
    assert result.exit_code == 2 and "/nonexistent/tsx" in result.output


async def test_language_not_enabled_gives_exit_2_and_lists_available():
    env = LocalCodeEnvironment(languages=("python",))
    try:
        result = await env.run("echo hi", "bash")
        assert result.exit_code == 2
        assert "'bash'" in result.output and "['python']" in result.output
        assert env.work_dir is None, "nothing was created for a refused run"
    finally:
        await env.aclose()


async def test_python_stdout_streams_whole_lines_as_a_terminal_does(env):
    # print("B", i) is one write of "B 0\n" (line-buffered stdout), not four: the lines of two concurrent runs, shown
    # in one output view, never come apart (an unbuffered stdout wrote "B", " ", "0", "\n" separately)
    chunks: list[str] = []
    result = await env.run(
        "for i in range(300):\n    print('B', i)\nprint('partial', end='', flush=True)\n",
        "python",
        on_output=lambda stream, text: chunks.append(text),
    )
    assert result.exit_code == 0
    assert "".join(chunks) == result.output
    assert all(chunk.endswith("\n") for chunk in chunks[:-1]), chunks[:10]
    assert chunks[-1].endswith("partial")


async def test_separate_stderr_streams_the_programs_stderr_and_the_notes_as_stderr():
    env = LocalCodeEnvironment(timeout=2)
    chunks: list[tuple[str, str]] = []
    try:
        spec = RunSpec(code="echo out; echo err >&2; sleep 30\n", language="bash", separate_stderr=True)
        result = await env.execute(spec, lambda stream, text: chunks.append((stream, text)))
    finally:
        await env.aclose()
    assert result.exit_code == 124
    assert "".join(t for s, t in chunks if s == "stdout") == "out\n"
    err = "".join(t for s, t in chunks if s == "stderr")
    assert err.startswith("err\n") and "timed out" in err


async def test_stdout_and_stderr_are_interleaved_as_produced(env):
    code = "import sys\nfor i in range(5):\n    print('out', i)\n    print('err', i, file=sys.stderr)\n"
    result = await env.run(code, "python")
    expected = "".join(f"out {i}\nerr {i}\n" for i in range(5))
    assert result.output == expected


async def test_output_streams_while_the_code_runs(env):
    started = asyncio.Event()
    chunks: list[str] = []

    def on_output(stream: str, text: str) -> None:
        assert stream == "stdout"
        chunks.append(text)
        if "waiting" in "".join(chunks):
            started.set()

    # the code waits for a file that the test only creates after it has seen the first output
    code = "import os, time\nprint('waiting', flush=True)\nwhile not os.path.exists('go'):\n    time.sleep(0.01)\nprint('done')\n"
    task = asyncio.create_task(env.run(code, "python", on_output=on_output))
    await asyncio.wait_for(started.wait(), 15)
    assert not task.done()
    assert env.work_dir is not None
    (env.work_dir / "go").write_text("")
    result = await asyncio.wait_for(task, 15)
    assert result.output == "waiting\ndone\n"
    assert "".join(chunks) == result.output


async def test_async_output_callback_is_awaited(env):
    seen: list[str] = []

    async def on_output(stream: str, text: str) -> None:
        await asyncio.sleep(0)
        seen.append(text)

    result = await env.run("echo a; echo b", "bash", on_output=on_output)
    assert "".join(seen) == result.output == "a\nb\n"


async def test_a_failing_output_callback_does_not_break_the_run(env, caplog):
    def on_output(stream: str, text: str) -> None:
        raise RuntimeError("callback bug")

    with caplog.at_level(logging.ERROR):
        result = await env.run("echo still-runs", "bash", on_output=on_output)
    assert (result.exit_code, result.output) == (0, "still-runs\n")
    assert "callback" in caplog.text


async def test_invalid_utf8_output_is_replaced_not_fatal(env):
    result = await env.run("import sys; sys.stdout.buffer.write(b'a\\xffb\\n')", "python")
    assert result.exit_code == 0
    assert result.output == "a\ufffdb\n"


async def test_work_dir_persists_between_runs_and_is_removed_by_aclose():
    env = LocalCodeEnvironment()
    first = await env.run("with open('state.txt', 'w') as f: f.write('kept')", "python")
    assert first.exit_code == 0
    work_dir = env.work_dir
    assert work_dir is not None and (work_dir / "state.txt").read_text() == "kept"
    second = await env.run("cat state.txt; pwd; echo $HOME", "bash")
    assert second.output == "kept/workspace\n/workspace\n"
    await env.aclose()
    assert not work_dir.exists()
    await env.aclose()  # idempotent


async def test_python_imports_modules_written_to_the_work_dir(env):
    await env.run("open('helper.py', 'w').write('VALUE = 41')", "python")
    result = await env.run("import helper\nprint(helper.VALUE + 1)", "python")
    assert (result.exit_code, result.output) == (0, "42\n")


@pytest.mark.parametrize("isolation", ["bubblewrap", "none"])
async def test_python_imports_its_own_module_named_as_one_of_the_agents(isolation):
    env = LocalCodeEnvironment(timeout=20, isolation=isolation)
    try:
        await env.run("open('agent_syscalls.py', 'w').write('VALUE = 41')", "python")
        result = await env.run("import agent_syscalls\nprint(agent_syscalls.VALUE + 1)", "python")
    finally:
        await env.aclose()
    assert (result.exit_code, result.output) == (0, "42\n")


async def test_given_work_dir_is_used_and_kept(tmp_path):
    (tmp_path / "input.txt").write_text("from host")
    env = LocalCodeEnvironment(work_dir=tmp_path)
    result = await env.run("cat input.txt; echo out > output.txt", "bash")
    await env.aclose()
    assert result.output == "from host"
    assert (tmp_path / "output.txt").read_text() == "out\n"


async def test_code_files_do_not_litter_the_work_dir(env):
    await env.run("print(1)", "python")
    assert env.work_dir is not None and list(env.work_dir.iterdir()) == []


async def test_runs_after_aclose_get_a_clear_result():
    env = LocalCodeEnvironment()
    await env.aclose()
    result = await env.run("print(1)", "python")
    assert result.exit_code != 0 and "closed" in result.output


async def test_host_environment_is_not_passed_but_env_vars_are(env, monkeypatch):
    monkeypatch.setenv("HOST_SECRET_FOR_TEST", "s3cret")
    env2 = LocalCodeEnvironment(env_vars={"GREETING": "hi"})
    try:
        result = await env2.run('echo "${HOST_SECRET_FOR_TEST:-unset} $GREETING $USER"', "bash")
    finally:
        await env2.aclose()
    assert result.output == "unset hi sandbox\n"


async def test_variables_are_resolved_from_the_context_on_every_run():
    env = LocalCodeEnvironment(env_vars=Variable("env", default={}), timeout=Variable("timeout", default=20))
    try:
        a = await env.run("echo ${WHO:-nobody}", "bash", context=SimpleContext({"env": {"WHO": "alice"}}))
        b = await env.run("echo ${WHO:-nobody}", "bash", context=SimpleContext({"env": {"WHO": "bob"}}))
        c = await env.run("echo ${WHO:-nobody}", "bash")
        assert [a.output, b.output, c.output] == ["alice\n", "bob\n", "nobody\n"]
        with pytest.raises(KeyError, match="'missing'"):
            await LocalCodeEnvironment(network=Variable("missing")).run("true", "bash")
    finally:
        await env.aclose()


async def test_concurrent_runs_share_the_work_dir_but_not_processes(env):
    code = "import os, time\nopen(f'ran-{os.getpid()}', 'w')\nprint(os.getpid())\n"
    results = await asyncio.gather(*(env.run(code, "python") for _ in range(4)))
    assert all(r.exit_code == 0 for r in results)
    assert env.work_dir is not None and len(list(env.work_dir.iterdir())) >= 1


async def test_sandbox_is_a_code_environment_and_works_as_async_context_manager():
    async with LocalCodeEnvironment() as env:
        assert isinstance(env, CodeEnvironment)
        assert env.supported_languages == ("python", "bash", "javascript", "typescript")
        await env.run("true", "bash")
        work_dir = env.work_dir
    assert work_dir is not None and not work_dir.exists()


def test_bad_arguments_are_rejected_clearly():
    with pytest.raises(ValueError, match="timeout"):
        LocalCodeEnvironment(timeout=0)
    with pytest.raises(ValueError, match="isolation"):
        LocalCodeEnvironment(isolation="docker")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ruby"):
        LocalCodeEnvironment(languages=("python", "ruby"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_processes"):
        LocalCodeEnvironment(max_processes=0)
    with pytest.raises(ValueError, match="max_output_bytes"):
        LocalCodeEnvironment(max_output_bytes=1)


def test_missing_bubblewrap_is_a_clear_error_naming_the_opt_out():
    with pytest.raises(LocalSandboxError) as info:
        LocalCodeEnvironment(bwrap="/nonexistent/bwrap")
    assert "/nonexistent/bwrap" in str(info.value) and 'isolation="none"' in str(info.value)


async def test_bubblewrap_that_cannot_start_sandboxes_is_reported_not_bypassed(tmp_path):
    # /bin/false stands in for a bwrap that fails, as it does where user namespaces are disabled
    env = LocalCodeEnvironment(bwrap="false")
    try:
        with pytest.raises(LocalSandboxError, match='isolation="none"'):
            await env.prepare()
        result = await env.run(f"open({str(tmp_path / 'ran')!r}, 'w')", "python")
    finally:
        await env.aclose()
    assert result.exit_code == SANDBOX_FAILED_EXIT_CODE
    assert "cannot start" in result.output and 'isolation="none"' in result.output
    assert not (tmp_path / "ran").exists(), "the code never ran unisolated"


async def test_isolation_none_runs_unisolated_with_a_warning(caplog, tmp_path):
    with caplog.at_level(logging.WARNING):
        env = LocalCodeEnvironment(isolation="none")
    assert "WITHOUT isolation" in caplog.text
    try:
        marker = tmp_path / "host-visible"
        result = await env.run(f"open({str(marker)!r}, 'w').write('x'); import os; print(os.getcwd())", "python")
    finally:
        work_dir = env.work_dir
        await env.aclose()
    assert result.exit_code == 0
    assert marker.exists(), "unisolated code sees the host"
    assert result.output == f"{work_dir}\n"
    assert result.source_path is not None and result.source_path.endswith("main.py")


async def test_an_environment_that_is_never_closed_leaves_nothing_behind():
    import gc

    env = LocalCodeEnvironment()
    await env.run("true", "bash")
    work_dir = env.work_dir
    assert work_dir is not None and work_dir.exists()
    del env
    gc.collect()
    assert not work_dir.exists()


async def test_an_environment_closed_while_it_prewarms_leaves_nothing_behind(tmp_path, monkeypatch):
    import tempfile

    from daytona_lsp.core import cgroup

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the environment's directory is made
    groups_before = _cgroups_of_this_process(cgroup)
    env = LocalCodeEnvironment(timeout=20)
    prewarm = asyncio.ensure_future(env.prewarm())
    await asyncio.sleep(0)  # it has begun: its directory and its cgroup are being made
    await env.aclose()
    with pytest.raises(LocalSandboxError, match="closed"):
        await prewarm
    assert list(tmp_path.iterdir()) == []
    assert _cgroups_of_this_process(cgroup) == groups_before


def _cgroups_of_this_process(cgroup) -> set[Path]:
    """The sandbox cgroups this process has (none where no cgroup is writable)."""
    mountinfo, membership = Path("/proc/self/mountinfo").read_text(), Path("/proc/self/cgroup").read_text()
    return {
        path
        for hierarchy in cgroup.discover(mountinfo, membership)
        for base in hierarchy.bases.values()
        for path in base.glob(f"{cgroup.PREFIX}-{os.getpid()}-*")
    }


async def test_prepare_checks_the_sandbox_and_refuses_after_close():
    env = LocalCodeEnvironment()
    await env.prepare()
    assert env.work_dir is not None and env.work_dir.is_dir()
    await env.aclose()
    with pytest.raises(LocalSandboxError, match="closed"):
        await env.prepare()


async def test_isolation_none_timeout_kills_the_process_group(tmp_path):
    env = LocalCodeEnvironment(isolation="none", timeout=1)
    marker = tmp_path / "survivor"
    try:
        # the background job would write the marker after the run ended, if it survived
        code = f"sh -c 'echo background-up; sleep 30; touch {marker}' &\nsleep 100\n"
        result = await env.run(code, "bash")
    finally:
        await env.aclose()
    assert result.exit_code == 124 and result.output.startswith("background-up\n")
    # the group was killed: no process is left that could still create the marker
    assert not any(str(marker).encode() in cmdline for cmdline in _command_lines())


def _command_lines() -> list[bytes]:
    lines = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    lines.append(f.read())
            except OSError:
                pass
    return lines


async def test_a_configured_python_launcher_is_resolved_to_its_interpreter(tmp_path):
    # a wrapper script, like pyenv's shims: the sandbox runs the interpreter it names, not the script
    launcher = tmp_path / "my-python"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    launcher.chmod(0o755)
    env = LocalCodeEnvironment(python=str(launcher))
    try:
        result = await env.run("import sys; print(sys.version_info[0], sys.executable)", "python")
    finally:
        await env.aclose()
    assert result.exit_code == 0, result.output
    assert result.output == f"3 {sys.executable}\n"


async def test_a_missing_configured_interpreter_is_named():
    env = LocalCodeEnvironment(python="/nonexistent/python3", node="/nonexistent/node")
    try:
        py = await env.run("print(1)", "python")
        js = await env.run("console.log(1)", "javascript")
    finally:
        await env.aclose()
    assert py.exit_code == 2 and "/nonexistent/python3" in py.output
    assert js.exit_code == 2 and "/nonexistent/node" in js.output and "Node.js" in js.output


TSX = os.environ.get("DAYTONA_LSP_TSX")


@pytest.mark.skipif(
    not TSX, reason="DAYTONA_LSP_TSX not set (bash scripts/setup-tsx installs tsx; scripts/test sets it)"
)
async def test_typescript_runs_through_tsx_found_on_path(monkeypatch):
    assert TSX is not None
    node = shutil.which("node")
    assert node is not None
    monkeypatch.setenv("PATH", f"{Path(TSX).parent}:{Path(node).parent}")
    env = LocalCodeEnvironment()
    try:
        ok = await env.run("interface P { n: number }\nconst p: P = { n: 41 }\nconsole.log(p.n + 1)\n", "typescript")
        failed = await env.run(
            "const a: number = 1\nfunction f(): void {\n  throw new Error('boom')\n}\nf()\n", "typescript"
        )
    finally:
        await env.aclose()
    assert (ok.exit_code, ok.output) == (0, "42\n"), ok.output
    assert ok.source_path == "/code/main.ts"
    assert failed.exit_code == 1
    assert "Error: boom" in failed.output and "/code/main.ts:3:" in failed.output
