"""``workspace/executeCommand``: daytona.run, daytona.cancel, daytona.resetSandbox, daytona.restartSession,
daytona.sandboxInfo.

pygls 2 passes a command's arguments positionally; each command takes at most one object. Wrong shapes are answered
with InvalidParams and a message that says what was expected.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from daytona_lsp.core.environment import MAX_STDIN_BYTES
from daytona_lsp.core.lines import LineIndex
from daytona_lsp.core.secrets import api_key
from daytona_lsp.lsp import documents, workspace
from daytona_lsp.lsp.documents import BadRequest
from daytona_lsp.lsp.runs import RunError, RunRequest
from daytona_lsp.lsp.settings import Settings

if TYPE_CHECKING:
    from daytona_lsp.lsp.server import DaytonaLanguageServer

log = logging.getLogger(__name__)

RUN = "daytona.run"
CANCEL = "daytona.cancel"
RESET_SANDBOX = "daytona.resetSandbox"
RESTART_SESSION = "daytona.restartSession"
SANDBOX_INFO = "daytona.sandboxInfo"
COMMANDS = (RUN, CANCEL, RESET_SANDBOX, RESTART_SESSION, SANDBOX_INFO)

REQUEST_FAILED = -32803


def _invalid(message: str) -> JsonRpcInvalidParams:
    return JsonRpcInvalidParams(message=message)


def _failed(message: str) -> JsonRpcException:
    return JsonRpcException(message=message, code=REQUEST_FAILED)


def one_object(command: str, args: tuple[Any, ...], *, required: bool, usage: str) -> Mapping[str, Any]:
    """The single object argument of a command."""
    if not args or (len(args) == 1 and args[0] is None and not required):
        if required:
            raise _invalid(f"{command} needs one argument {usage}")
        return {}
    if len(args) > 1:
        raise _invalid(f"{command} takes one argument {usage}, got {len(args)}")
    value = args[0]
    if not isinstance(value, Mapping):
        raise _invalid(f"{command} takes one argument {usage}, got {type(value).__name__}")
    return value


def _uri(command: str, params: Mapping[str, Any], *, required: bool) -> str | None:
    uri = params.get("uri")
    if uri is None and not required:
        return None
    if not isinstance(uri, str) or not uri:
        raise _invalid(f"{command}: 'uri' must be a document URI string")
    return uri


def _program_args(params: Mapping[str, Any]) -> tuple[str, ...]:
    args = params.get("args")
    if args is None:
        return ()
    if not isinstance(args, (list, tuple)) or not all(isinstance(a, str) for a in args):
        raise _invalid(f"{RUN}: 'args' must be a list of strings (the program's arguments)")
    if any("\x00" in a for a in args):
        raise _invalid(f"{RUN}: an argument contains a NUL character")
    return tuple(args)


def _program_stdin(params: Mapping[str, Any]) -> str | None:
    stdin = params.get("stdin")
    if stdin is None:
        return None
    if not isinstance(stdin, str):
        raise _invalid(f"{RUN}: 'stdin' must be a string (the program's input)")
    size = len(stdin.encode("utf-8", "surrogatepass"))
    if size > MAX_STDIN_BYTES:
        raise _invalid(
            f"{RUN}: 'stdin' is {size} bytes, more than the {MAX_STDIN_BYTES // 1024**2} MiB a run takes: "
            "give the program a file to read instead"
        )
    return stdin


def _session_key(params: Mapping[str, Any], mode: str, uri: str, ranged: bool) -> str | None:
    """The session a run uses (the document's URI) or None for a fresh process: the run's ``session`` (true/false)
    when given, else the ``daytona.session`` setting (``cells``: ranges only, ``document``: every run, ``none``)."""
    session = params.get("session")
    if session is not None and not isinstance(session, bool):
        raise _invalid(f"{RUN}: 'session' must be true or false")
    if session is None:
        session = mode == "document" or (mode == "cells" and ranged)
    return uri if session else None


Answer = dict[str, Any] | Awaitable[dict[str, Any]]
"""What a command handler returns: its result, or what to await for it (a request waits without a task of its own
when it can be answered at once)."""


async def _awaited(answer: Answer) -> dict[str, Any]:
    return await answer if inspect.isawaitable(answer) else answer


def run_command(server: DaytonaLanguageServer, params: Mapping[str, Any]) -> Answer:
    """``daytona.run``: checked and started in the turn the request arrives when nothing needs waiting for (the
    settings are there, the document lies outside every folder), else once the settings or its placement are."""
    uri = _uri(RUN, params, required=True)
    assert uri is not None
    if not server.settings_ready.is_set():

        async def when_ready() -> dict[str, Any]:
            settings = await server.current_settings(uri)
            return await _awaited(_run(server, params, uri, server.workspace_of(uri), settings))

        return when_ready()
    folder = server.workspace_of(uri)
    return _run(server, params, uri, folder, server.settings_for(folder))


def _run(
    server: DaytonaLanguageServer, params: Mapping[str, Any], uri: str, folder: str, settings: Settings
) -> Answer:
    program_args, program_stdin = _program_args(params), _program_stdin(params)
    detach = params.get("detach")  # true: answer {runId, backend} at once (see run_arguments); null: as if absent
    if detach is not None and not isinstance(detach, bool):
        raise _invalid(f"{RUN}: 'detach' must be true or false")
    doc = server.workspace.text_documents.get(uri)
    if doc is None:
        raise _invalid(f"{RUN}: unknown document {uri}: open it in the editor first")
    try:
        language = documents.choose_language(doc.language_id, params.get("language"), uri)
        if language not in settings.languages:
            raise BadRequest(f"{language} is not enabled (setting daytona.languages: {', '.join(settings.languages)})")
        raw_range = params.get("range")
        rng = None
        lines = LineIndex(doc.source)  # only the lines a range covers are looked at
        if raw_range is not None:
            sl, sc, el, ec = documents.parse_range(raw_range)
            # client units (UTF-16 by default) → code points
            if sl < len(lines) and el < len(lines):
                client = types.Range(types.Position(sl, sc), types.Position(el, ec))
                server_range = doc.position_codec.range_from_client_units(lines, client)
                sl, sc = server_range.start.line, server_range.start.character
                el, ec = server_range.end.line, server_range.end.character
            rng = (sl, sc, el, ec)
        snip = documents.snippet(lines, rng)
    except BadRequest as exc:
        raise _invalid(f"{RUN}: {exc}") from None
    session = _session_key(params, settings.session, uri, rng is not None)
    if not snip.code.strip():
        what = "selection" if rng is not None else "document"
        raise _invalid(f"{RUN}: nothing to run: the {what} is empty")
    if settings.backend == "daytona" and not api_key():
        message = "daytona.backend is 'daytona' but DAYTONA_API_KEY is not set in the language server's environment"
        server.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=message))
        raise _failed(message)
    request = RunRequest(
        uri=uri,
        code=snip.code,
        language=language,
        workspace=folder,
        settings=settings,
        first_line=snip.first_line,
        column_offsets=snip.column_offsets,
        range=documents.range_wire(*documents.parse_range(raw_range)) if raw_range is not None else None,
        line_count=snip.line_count,
        request_id=None if detach else server.protocol.msg_id,
        args=program_args,
        stdin=program_stdin,
        interactive=server.interactive_input,
        session=session,
        work_done_token=None if detach else server.work_done_token,  # a detached run outlives its request
    )
    if not workspace.has_place(folder, uri):  # outside every folder: nothing to place
        return _start(server, request, bool(detach))
    texts = {u: d.source for u, d in server.workspace.text_documents.items()}  # as they are now, before any await

    async def placed() -> dict[str, Any]:
        request.placement = await asyncio.to_thread(workspace.place, folder, uri, texts, settings)
        return await _awaited(_start(server, request, bool(detach)))

    return placed()


def _start(server: DaytonaLanguageServer, request: RunRequest, detach: bool) -> Answer:
    try:
        run = server.runs.start(request)
    except RunError as exc:
        raise _failed(f"{RUN}: {exc}") from None
    if detach:
        return {"runId": run.id, "backend": run.backend}
    task = run.task
    assert task is not None

    async def result() -> dict[str, Any]:
        # (the run's reporter answers the request as soon as the run ends; this is what pygls would send otherwise)
        return (await asyncio.shield(task)).wire()  # a $/cancelRequest answers at once; its hook ends the run

    return result()


def run_arguments(server: DaytonaLanguageServer, uri: str, rng: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``daytona.run`` argument a code action or lens carries.

    Clients that opted in to ``daytona/*`` notifications (the VS Code and Neovim plugins) wait for the result on
    purpose. For the others the run is started with ``detach: true``: the request returns ``{runId}`` at once (eglot
    and lsp-mode give up on a request after 10 s, lsp-mode by cancelling it) and the result arrives as log lines, a
    ``window/showMessage`` summary and diagnostics. (``true``, not ``wait: false``: lsp-mode sends a ``false`` it
    received back as ``null``.)
    """
    args: dict[str, Any] = {"uri": uri}
    if rng is not None:
        args["range"] = rng
    if not server.output_notifications:
        args["detach"] = True
    return args


def register(server: DaytonaLanguageServer) -> None:
    @server.command(RUN)
    def daytona_run(*args: Any) -> Answer:
        params = one_object(
            RUN, args, required=True, usage="{uri, range?, language?, args?, stdin?, session?, detach?}"
        )
        return run_command(server, params)

    @server.command(CANCEL)
    def daytona_cancel(*args: Any) -> dict[str, Any]:
        params = one_object(CANCEL, args, required=False, usage="{runId?}")
        run_id = params.get("runId")
        if run_id is None:
            return {"cancelled": server.runs.cancel_all()}
        if isinstance(run_id, bool) or not isinstance(run_id, (str, int)):
            raise _invalid(f"{CANCEL}: 'runId' must be a string")
        return {"cancelled": [str(run_id)] if server.runs.cancel(str(run_id)) else []}

    @server.command(RESET_SANDBOX)
    def daytona_reset(*args: Any) -> Awaitable[dict[str, Any]]:
        params = one_object(RESET_SANDBOX, args, required=False, usage="{uri?}")
        uri = _uri(RESET_SANDBOX, params, required=False)
        closing = server.runs.reset(server.workspace_of(uri) if uri else None)  # now: a run after it gets a new sandbox

        async def closed() -> dict[str, Any]:
            return {"closed": await closing}

        return closed()

    @server.command(RESTART_SESSION)
    async def daytona_restart_session(*args: Any) -> dict[str, Any]:
        params = one_object(RESTART_SESSION, args, required=False, usage="{uri?}")
        uri = _uri(RESTART_SESSION, params, required=False)
        try:
            restarted = await server.runs.restart_session(server.workspace_of(uri) if uri else None, uri)
        except RunError as exc:
            raise _failed(f"{RESTART_SESSION}: {exc}") from None
        return {"restarted": restarted}

    @server.command(SANDBOX_INFO)
    def daytona_sandbox_info(*args: Any) -> dict[str, Any]:
        params = one_object(SANDBOX_INFO, args, required=False, usage="{uri?}")
        uri = _uri(SANDBOX_INFO, params, required=False)
        workspace = server.workspace_of(uri) if uri else ""
        if not uri and workspace not in server.runs.slots and len(server.runs.slots) == 1:
            workspace = next(iter(server.runs.slots))
        settings = server.settings_for(workspace)
        return server.runs.info(workspace, settings)
