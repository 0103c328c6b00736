"""The ``daytona-lsp`` command.

``daytona-lsp``                      serve the language server on stdio (same as ``daytona-lsp serve``)
``daytona-lsp serve --tcp``          serve it on loopback TCP, for a client with the token (``--host``, ``--port``,
                                     ``--token-file``; see :mod:`daytona_lsp.lsp.tcp`)
``daytona-lsp run FILE|- [-- ARG…]`` run a file (or stdin) in a sandbox; output streamed; exit status = the code's
``daytona-lsp sandboxes list|clean`` the Daytona sandboxes this tool created

Errors are one line on stderr and a non-zero exit status. Imports stay light: neither the Daytona SDK nor pygls is
loaded unless the command needs it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn, cast

from daytona_lsp import __version__
from daytona_lsp.cli_io import (
    PIPE_CLOSED,
    CliError,
    Output,
    feed_from_terminal,
    program_stdin,
    terminal_input,
)

if TYPE_CHECKING:
    from daytona_lsp.core.environment import CodeLanguage, RunSpec

PROG = "daytona-lsp"
SANDBOX_ERROR = 125
"""Exit status when the sandbox cannot start (the code never ran)."""
INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # one clear line instead of argparse's usage + message
        raise CliError(f"{message} (see `{self.prog} --help`)")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


_BYTE_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3}


def _byte_count(text: str) -> int:
    number, scale = text.strip(), 1
    if number[-1:].upper() in _BYTE_UNITS:
        number, scale = number[:-1], _BYTE_UNITS[number[-1].upper()]
    try:
        value = int(number) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of bytes: {text!r} (e.g. 4194304 or 4M)") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2 bytes, not {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from daytona_lsp.core.environment import LANGUAGES
    from daytona_lsp.core.output import DEFAULT_MAX_OUTPUT_BYTES

    parser = _Parser(
        prog=PROG,
        description="Run code from any LSP editor in a Daytona sandbox (with DAYTONA_API_KEY) or an isolated local "
        "sandbox. Without a command, serves the language server on stdio.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    serve = sub.add_parser("serve", help="serve the language server (stdio unless --tcp)")
    serve.add_argument(
        "--tcp",
        action="store_true",
        help="listen on loopback TCP instead of stdio; the client's initialize must carry the token in "
        "initializationOptions.token",
    )
    serve.add_argument("--host", default="127.0.0.1", help="TCP host, a loopback address (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=2087, help="TCP port (default 2087)")
    serve.add_argument(
        "--token-file", metavar="FILE", help="TCP: read the token from FILE (default: a new one, printed to stderr)"
    )

    run = sub.add_parser(
        "run",
        help="run a file (or - for stdin) in a sandbox",
        description="Run FILE (or stdin with -) in a sandbox: the program's stdout is streamed to stdout and its "
        "stderr to stderr as produced; this tool's own notes and errors go to stderr. The exit status is the code's "
        "(124 on timeout, 130 when interrupted). Arguments after -- go to the program; stdin, when it is a pipe or a "
        "file, is read whole and given to the program; a terminal gives it the lines as they are typed (Ctrl-D: "
        "EOF). The backend is Daytona when DAYTONA_API_KEY is set, else the "
        "isolated local sandbox (bubblewrap).",
    )
    run.add_argument("file", metavar="FILE", help="the file to run, or - to read the code from stdin")
    run.add_argument("args", nargs="*", metavar="ARG", help="the program's arguments, after -- (run x.py -- a 'b c')")
    run.add_argument("--language", "-l", choices=LANGUAGES, help="the language (default: from the file extension)")
    run.add_argument("--backend", "-b", choices=("auto", "daytona", "local"), default="auto", help="default: auto")
    run.add_argument(
        "--timeout",
        "-t",
        type=_positive_float,
        default=60.0,
        help="seconds (default 60); creating a Daytona sandbox gets the same time",
    )
    run.add_argument(
        "--max-output-bytes",
        type=_byte_count,
        default=DEFAULT_MAX_OUTPUT_BYTES,
        metavar="N",
        help=f"keep at most N bytes of output, head and tail (K/M/G suffixes; default {DEFAULT_MAX_OUTPUT_BYTES // 1024**2}M)",
    )
    _daytona_flags(run)
    run.add_argument(
        "--isolation",
        choices=("bubblewrap", "none"),
        default=os.environ.get("DAYTONA_LSP_ISOLATION") or "bubblewrap",
        help="local backend: 'none' runs the code unisolated (default: $DAYTONA_LSP_ISOLATION or bubblewrap)",
    )
    run.add_argument("--network", action="store_true", help="local backend: allow network access")
    run.add_argument(
        "--workspace",
        "-w",
        metavar="DIR",
        help="the folder the run sees (default: the nearest ancestor of FILE holding .git, pyproject.toml or "
        "package.json, else FILE's directory); the program runs in FILE's directory as FILE itself",
    )
    run.add_argument(
        "--write-back",
        action="store_true",
        help="copy the files the run created or changed back into the workspace folder (never deletes)",
    )

    boxes = sub.add_parser("sandboxes", help="list or delete the Daytona sandboxes daytona-lsp created")
    boxes_sub = boxes.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    boxes_sub.required = True
    lst = boxes_sub.add_parser("list", help="list them")
    _daytona_flags(lst)
    clean = boxes_sub.add_parser("clean", help="delete them (all, or the given ids)")
    clean.add_argument("ids", nargs="*", metavar="ID", help="only these sandboxes")
    _daytona_flags(clean)
    return parser


def _daytona_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-url", default=None, help="Daytona API URL (default: $DAYTONA_API_URL or the SDK's)")
    parser.add_argument("--target", default=None, help="Daytona target region (default: $DAYTONA_TARGET)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``daytona-lsp`` console script; returns the exit status."""
    if argv is None and os.geteuid() == 0:  # a process of its own (not a caller's: tests call main(argv))
        from daytona_lsp.core.local.mountns import own_mount_namespace

        own_mount_namespace()  # the local sandbox's mounts die with this process, even killed with SIGKILL
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        # the program's arguments are everything after the first `--` of `run` (argparse would give them to FILE's
        # chunk of positionals when options come between)
        program_args: list[str] = []
        if "run" in args_list and "--" in args_list[args_list.index("run") :]:
            cut = args_list.index("--", args_list.index("run"))
            args_list, program_args = args_list[:cut], args_list[cut + 1 :]
        args = build_parser().parse_args(args_list)
        if args.command in (None, "serve"):
            return _serve(
                getattr(args, "tcp", False),
                getattr(args, "host", "127.0.0.1"),
                getattr(args, "port", 2087),
                getattr(args, "token_file", None),
            )
        if args.command == "run":
            if args.args:
                raise CliError(
                    f"unexpected argument {args.args[0]!r}: the program's arguments go after -- (FILE -- ARG...)"
                )
            args.args = program_args
            return _run_command(args)
        return _sandboxes_command(args)
    except CliError as exc:
        _error(str(exc))
        return exc.status
    except KeyboardInterrupt:
        _error("interrupted")
        return INTERRUPTED


def _error(message: str) -> None:
    from daytona_lsp.core.secrets import redact

    line = redact(" ".join(str(message).split()))  # exactly one line, never a secret (in any encoding)
    try:
        sys.stderr.write(f"{PROG}: error: {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


# -- serve ----------------------------------------------------------------------------------------------------------


def _serve(tcp: bool, host: str, port: int, token_file: str | None) -> int:
    from daytona_lsp.lsp.server import serve
    from daytona_lsp.lsp.tcp import TcpError

    try:
        status = serve(tcp=tcp, host=host, port=port, token_file=token_file)
    except TcpError as exc:
        raise CliError(str(exc)) from None
    return status if isinstance(status, int) else 0


# -- run --------------------------------------------------------------------------------------------------------------


def _read_code(file: str, language: str | None) -> tuple[str, CodeLanguage]:
    from daytona_lsp.core.languages import language_for_path

    if file == "-":
        if language is None:
            raise CliError("reading code from stdin (-) needs --language")
        data = sys.stdin.buffer.read()
        name = "<stdin>"
    else:
        name = file
        try:
            with open(file, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise CliError(f"{file}: no such file") from None
        except IsADirectoryError:
            raise CliError(f"{file}: is a directory, not a file") from None
        except OSError as exc:
            raise CliError(f"{file}: cannot read: {exc.strerror or exc}") from None
        if language is None:
            language = language_for_path(file)
            if language is None:
                raise CliError(
                    f"{file}: unknown language for this file extension; "
                    "use --language python|bash|javascript|typescript"
                )
    try:
        code = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CliError(f"{name}: not valid UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    if "\x00" in code:
        raise CliError(f"{name}: contains NUL bytes; is it a binary file?")
    return code, cast("CodeLanguage", language)  # argparse's choices or the registry checked it


def _keep_sigint_ours() -> None:
    """The Daytona SDK's socket.io client (engineio) puts a SIGINT handler on the running loop when it connects,
    which cancels every task and stops the loop (a ``CancelledError`` traceback instead of "interrupted"). engineio
    installs it once per process: mark it installed so that Ctrl-C stays the CLI's."""
    try:
        import engineio.async_client  # type: ignore[import-untyped]
    except ImportError:  # an SDK without the socket.io client
        return
    engineio.async_client.async_signal_handler_set = True


def _run_command(args: argparse.Namespace) -> int:
    from daytona_lsp.core.environment import RunSpec
    from daytona_lsp.core.select import resolve_backend

    code, language = _read_code(args.file, args.language)
    backend = resolve_backend(args.backend)
    spec = RunSpec(
        code=code,
        language=language,
        args=tuple(args.args),
        stdin=program_stdin(args.file),
        separate_stderr=True,
        input=terminal_input(args.file),
        **_workspace_fields(args),
    )
    if backend == "daytona":
        _keep_sigint_ours()
    return asyncio.run(_run_async(args, backend, spec))


async def _run_async(args: argparse.Namespace, backend: str, spec: RunSpec) -> int:
    from daytona_lsp.core.select import create_environment

    common: dict[str, Any] = {"timeout": args.timeout, "max_output_bytes": args.max_output_bytes}
    try:
        if backend == "local":
            folder = spec.workspace.root if spec.workspace is not None else None
            env: Any = create_environment(
                "local",
                **common,
                local={"isolation": args.isolation, "network": args.network, "workspace_folder": folder},
            )
        else:
            env = create_environment(
                "daytona",
                **common,
                daytona={"api_url": args.api_url, "target": args.target, "create_timeout": args.timeout},
            )
    except ValueError as exc:  # includes MissingCredentialsError
        raise CliError(str(exc)) from None
    except RuntimeError as exc:  # LocalSandboxError: no bubblewrap
        raise CliError(str(exc), SANDBOX_ERROR) from None

    stopped_by: int | None = None  # INTERRUPTED or PIPE_CLOSED once the run is being stopped
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def stop(status: int) -> None:
        nonlocal stopped_by
        if stopped_by is None:
            stopped_by = status
            output.muted = True
            if task is not None:
                task.cancel()

    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop, INTERRUPTED)
            handled.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    output = Output(on_closed=lambda: stop(PIPE_CLOSED))
    if spec.input is not None:
        feed_from_terminal(spec.input, loop)
    result = None
    try:
        if backend == "local":
            from daytona_lsp.core.local import LocalSandboxError

            try:
                await env.prepare()
            except LocalSandboxError as exc:
                raise CliError(str(exc), SANDBOX_ERROR) from None
            problem = await env.language_problem(spec.language)
            if problem is not None:
                raise CliError(problem)
        result = await env.execute(spec, output)
    except asyncio.CancelledError:
        if stopped_by is None:
            raise
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        try:
            await env.aclose()
        except Exception as exc:
            _error(f"closing the sandbox failed: {exc}")
    if stopped_by == PIPE_CLOSED:
        return PIPE_CLOSED  # quietly, as `yes | head -1`
    if stopped_by is not None:
        _error("interrupted")
        return INTERRUPTED
    assert result is not None
    rest = output.unstreamed(result.output)
    if result.truncated:
        output("stdout", rest)  # the kept tail of the program's output, after the truncation marker
    elif rest.strip():
        _error(rest)  # a note or error the backend did not stream (timeout, API error, dropped connection…)
    if result.output and not result.output.endswith("\n") and not output.closed and sys.stdout.isatty():
        output("stdout", "\n")
    if result.changed_files:
        done = "written back" if args.write_back else "in the sandbox only; --write-back copies them"
        _note(f"changed files ({done}): {' '.join(result.changed_files)}")
    return result.exit_code if 0 <= result.exit_code <= 255 else 1


def _workspace_fields(args: argparse.Namespace) -> dict[str, Any]:
    """``path``, ``cwd`` and ``workspace`` of the run of FILE (none for code on stdin)."""
    from daytona_lsp.core.environment import WorkspaceView
    from daytona_lsp.core.workspace import find_root

    if args.file == "-":
        if args.workspace is not None or args.write_back:
            raise CliError("--workspace and --write-back need a FILE (not - for stdin)")
        return {}
    file = os.path.abspath(args.file)
    root = find_root(file, args.workspace)
    if not root.is_dir():
        raise CliError(f"--workspace {args.workspace}: not a directory")
    rel = os.path.relpath(file, root)
    if rel.startswith(os.pardir + os.sep):
        raise CliError(f"{args.file} is not inside the workspace {root}")
    path = rel.replace(os.sep, "/")
    return {
        "path": path,
        "cwd": os.path.dirname(path),
        "workspace": WorkspaceView(root=str(root), write_back=args.write_back),
    }


def _note(message: str) -> None:
    """One line of this tool's own on stderr."""
    try:
        sys.stderr.write(f"{PROG}: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


# -- sandboxes ------------------------------------------------------------------------------------------------------


def _sandboxes_command(args: argparse.Namespace) -> int:
    return asyncio.run(_sandboxes_async(args))


async def _sandboxes_async(args: argparse.Namespace) -> int:
    from daytona_lsp.core import daytona as dt

    if not os.environ.get("DAYTONA_API_KEY"):  # before loading the SDK (slow to import)
        raise CliError("No Daytona API key: set DAYTONA_API_KEY to list or clean the sandboxes daytona-lsp created.")
    conn = {"api_key": None, "api_url": args.api_url, "target": args.target}
    try:
        if args.action == "list":
            boxes = await dt.list_sandboxes(**conn)
            if not boxes:
                print("No sandboxes created by daytona-lsp.")
                return 0
            rows = [("ID", "STATE", "CREATED", "LABELS")]
            for b in boxes:
                labels = ",".join(f"{k}={v}" for k, v in sorted((b.get("labels") or {}).items()))
                rows.append((str(b.get("id", "")), str(b.get("state", "")), str(b.get("created", "")), labels))
            widths = [max(len(r[i]) for r in rows) for i in range(3)]
            for r in rows:
                print("  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=False)) + "  " + r[3])
            return 0
        deleted = await dt.delete_sandboxes(args.ids or None, **conn)
        print(f"Deleted {len(deleted)} sandbox(es)" + (": " + " ".join(deleted) if deleted else "."))
        return 0
    except ValueError as exc:  # MissingCredentialsError, bad ids
        raise CliError(str(exc)) from None
    except Exception as exc:
        raise CliError(f"Daytona request failed: {type(exc).__name__}: {exc}", 1) from None


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
