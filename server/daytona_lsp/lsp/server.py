"""The language server: :func:`create_server` is the one place it is built; :func:`serve` runs it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import inspect
import json
import logging
import os
import signal
import stat
import sys
from collections.abc import Coroutine, Generator
from typing import Any, TypeGuard

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcInvalidRequest
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import JsonRPCProtocol
from pygls.protocol.language_server import lsp_method

from daytona_lsp import __version__ as VERSION
from daytona_lsp.core import languages
from daytona_lsp.lsp import documents, reader
from daytona_lsp.lsp.runs import EnvironmentFactory, RunService, resolve_backend
from daytona_lsp.lsp.settings import Settings, parse_settings, risk_warnings
from daytona_lsp.lsp.writer import CoalescingWriter

log = logging.getLogger(__name__)

_WORK_DONE_TOKEN: contextvars.ContextVar[str | int | None] = contextvars.ContextVar("work_done_token", default=None)


class DaytonaProtocol(LanguageServerProtocol):
    """pygls' protocol plus one hook: ``$/cancelRequest`` of a ``daytona.run`` request kills the run.

    (pygls cancels the request's future, but an ``executeCommand`` handler runs as a separate task.)
    """

    _server: DaytonaLanguageServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._answered: set[Any] = set()
        """Ids of requests :meth:`answer` answered while their handler still ran."""

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        super()._handle_cancel_notification(msg_id)
        runs = getattr(self._server, "runs", None)
        if runs is not None:
            runs.cancel_request(msg_id)

    def notify(self, method: str, params: Any = None, *, hold: bool = True) -> None:
        """A notification may wait a few milliseconds for an answer's company (see :mod:`daytona_lsp.lsp.writer`);
        ``hold=False``: it leaves on the next loop turn."""
        writer = self.writer
        with writer.holding(hold) if isinstance(writer, CoalescingWriter) else contextlib.nullcontext():
            if isinstance(params, dict) and self.get_message_type(method) is None:  # ours (daytona/*): plain JSON
                self._send_json({"jsonrpc": JsonRPCProtocol.VERSION, "method": method, "params": params})
            else:
                super().notify(method, params)

    def answer(self, msg_id: Any, result: dict[str, Any]) -> None:
        """Answer a request that is still waiting before its handler returns (a run's result, in the turn it is
        known, with the notifications written before it); the handler's own result is then not sent again."""
        future = self._request_futures.get(msg_id)
        if future is None or future.done():  # answered already (cancelled), or never a request
            return
        self._send_response(msg_id, result)
        self._answered.add(msg_id)

    def _send_json(self, message: dict[str, Any]) -> None:
        """A message of plain JSON (ours: no lsprotocol object to unstructure, no log line of its body)."""
        if self.writer is None:
            return
        body = json.dumps(message, default=self._serialize_message).encode()
        written = self.writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        if inspect.isawaitable(written):  # (a websocket's)
            asyncio.ensure_future(written)

    def _send_response(self, msg_id: Any, result: Any = None, error: Any = None) -> None:
        if msg_id in self._answered:
            self._answered.discard(msg_id)
            return
        if error is None and isinstance(result, dict):  # a command's: plain JSON, no message object to unstructure
            self._result_types.pop(msg_id, None)
            self._send_json({"jsonrpc": JsonRPCProtocol.VERSION, "id": msg_id, "result": result})
        else:
            super()._send_response(msg_id, result, error)

    def receive(self, body: bytes) -> None:
        """One message body from the client (:mod:`daytona_lsp.lsp.reader`): decoded, structured, handled. A
        request whose params do not fit its method is answered with InvalidParams (pygls would drop it unanswered);
        anything else that fails is logged and reported as pygls does."""
        data: Any = None
        try:
            data = json.loads(body)
            self.handle_message(_command_request(data) or self.structure_message(data))
        except JsonRpcInvalidParams as exc:
            log.warning("Unable to handle message: %s", exc)
            if isinstance(data, dict) and "id" in data and "method" in data:
                error = JsonRpcInvalidParams(message=f"{data['method']}: the params do not fit the method")
                self._send_response(data["id"], None, error.to_response_error())
            else:
                self._server._report_server_error(exc, JsonRpcException)
        except Exception as exc:
            log.exception("Unable to handle message")
            self._server._report_server_error(exc, JsonRpcException)

    def handle_message(self, message: Any) -> None:
        """A request (a method and an id) is handled here as pygls would, without its ``isinstance`` checks against
        runtime Protocols (about 10 µs each); anything else by pygls."""
        if not (hasattr(message, "id") and hasattr(message, "method")) or message.jsonrpc != JsonRPCProtocol.VERSION:
            super().handle_message(message)
            return
        if self._shutdown and message.method != types.EXIT:
            # pygls would drop it without an answer (a client then waits forever): refuse it
            error = JsonRpcInvalidRequest(message=f"{message.method}: the server is shut down")
            self._send_response(message.id, None, error.to_response_error())
            return
        if isinstance(self.writer, CoalescingWriter):
            self.writer.request_arrived()  # what its handling notifies soon leaves with its answer
        contextvars.copy_context().run(self._handle_request, message.id, message.method, message.params)

    def _handle_request(self, msg_id: Any, method_name: str, params: Any) -> None:
        """``workspace/executeCommand`` calls the command's handler here, in the turn the request arrives (pygls'
        dispatch runs a generator that starts a task, and runs ``typing.get_type_hints`` of the handler): a
        result is answered at once, an awaitable in a task of its own. Every command of ours takes its arguments as
        they came (``*args``); the request's ``workDoneToken`` is :attr:`DaytonaLanguageServer.work_done_token`
        there. Any other request as pygls handles it."""
        if method_name != types.WORKSPACE_EXECUTE_COMMAND:
            super()._handle_request(msg_id, method_name, params)
            return
        self._ctx_msg_id.set(msg_id)
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()  # how pygls answers a plain handler
        done.add_done_callback(functools.partial(self._send_handler_result, msg_id=msg_id))
        try:
            handler = self.fm.commands.get(params.command)
            if handler is None:
                raise JsonRpcInvalidParams.of(ValueError(f"Command name {params.command!r} is not defined"))
            _WORK_DONE_TOKEN.set(params.work_done_token)
            result = handler(*(params.arguments or ()))
        except Exception as exc:
            done.set_exception(exc)
            return
        if not inspect.isawaitable(result):
            done.set_result(result)
            return
        task = asyncio.ensure_future(result)
        self._request_futures[msg_id] = task  # type: ignore[assignment]  # (pygls keeps its own tasks there too)
        task.add_done_callback(functools.partial(self._send_handler_result, msg_id=msg_id))

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams) -> Generator[Any, Any, types.InitializeResult]:
        result: types.InitializeResult = yield from super().lsp_initialize(params)
        # the language registry, so that clients need no tables of their own
        result.capabilities.experimental = {"daytona": {"languages": languages.wire()}}
        return result

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> Generator[Any, Any, None]:
        uri = params.text_document.uri
        if uri not in self.workspace.text_documents:
            log.info("didChange for %s, which was never opened: ignored", uri)
            return None
        yield from super().lsp_text_document__did_change(params)
        return None


def _command_request(data: Any) -> types.ExecuteCommandRequest | None:
    """A well-formed ``workspace/executeCommand`` request built without cattrs (which costs tens of microseconds a
    message when the processor's caches went cold meanwhile, as they do while a run waits for its sandbox); None for
    anything else (structured by pygls, which also rejects what does not fit)."""
    if type(data) is not dict or data.get("method") != types.WORKSPACE_EXECUTE_COMMAND:
        return None
    params, msg_id = data.get("params"), data.get("id")
    if data.get("jsonrpc") != JsonRPCProtocol.VERSION or type(params) is not dict or not _is_id(msg_id):
        return None
    command, arguments, token = params.get("command"), params.get("arguments"), params.get("workDoneToken")
    if type(command) is not str or not (arguments is None or type(arguments) is list):
        return None
    if not (token is None or _is_id(token)):
        return None
    return types.ExecuteCommandRequest(
        id=msg_id, params=types.ExecuteCommandParams(command=command, arguments=arguments, work_done_token=token)
    )


def _is_id(value: Any) -> TypeGuard[int | str]:
    """A JSON-RPC id or progress token: a string or an integer (not a boolean)."""
    return isinstance(value, (int, str)) and not isinstance(value, bool)


class DaytonaLanguageServer(LanguageServer):
    """State shared by the features: settings per workspace folder, the RunService, client options."""

    protocol: DaytonaProtocol

    def __init__(self, factory: EnvironmentFactory | None = None) -> None:
        super().__init__(
            "daytona-lsp",
            VERSION,
            protocol_cls=DaytonaProtocol,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
        )
        self.runs = RunService(factory)
        self.output_notifications = False
        self.interactive_input = False
        """The client answers ``daytona/inputRequested`` (``initializationOptions.interactiveInput``)."""
        self.base_settings = Settings()
        self.client_settings: dict[str, Any] | None = None
        """The ``daytona`` settings object a client pushed with didChangeConfiguration (no pull support)."""
        self.folder_settings: dict[str, Settings] = {}
        self.settings_ready = asyncio.Event()
        self._warned: set[str] = set()
        self._warned_once: set[str] = set()
        self.progress_tokens: dict[str, str] = {}
        """work-done progress token → run id"""
        self._background: set[asyncio.Task[None]] = set()

    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in a task of its own (kept until it ends; a failure goes to the log)."""
        task = asyncio.ensure_future(work)
        self._background.add(task)

        def done(task: asyncio.Task[None]) -> None:
            self._background.discard(task)
            if not task.cancelled() and task.exception() is not None:
                log.error("Background work failed", exc_info=task.exception())

        task.add_done_callback(done)

    # ---- settings -----------------------------------------------------------------------------------------------
    def warn(self, message: str) -> None:
        """A ``window/showMessage`` warning (each distinct message once per settings update)."""
        if message in self._warned:
            return
        self._warned.add(message)
        log.warning("%s", message)
        self.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=message))

    def warn_once(self, message: str) -> None:
        """A ``window/showMessage`` warning shown once per server."""
        if message not in self._warned_once:
            self._warned_once.add(message)
            self.warn(message)

    def folders(self) -> list[str]:
        try:
            return [f.uri for f in self.workspace.folders.values()]
        except RuntimeError:
            return []

    def workspace_of(self, uri: str) -> str:
        try:
            root = self.workspace.root_uri
        except RuntimeError:
            root = None
        return documents.workspace_key(uri, self.folders(), root)

    def settings_for(self, workspace: str) -> Settings:
        if workspace in self.folder_settings:
            return self.folder_settings[workspace]
        return self.folder_settings.get("", self.base_settings)

    def settings_of_uri(self, uri: str) -> Settings:
        return self.settings_for(self.workspace_of(uri))

    def backend_label(self, settings: Settings) -> str:
        return "Daytona sandbox" if resolve_backend(settings) == "daytona" else "local sandbox"

    @property
    def work_done_token(self) -> str | int | None:
        """The ``workDoneToken`` of the ``workspace/executeCommand`` request being handled (None: it has none)."""
        return _WORK_DONE_TOKEN.get()

    def supports_progress(self) -> bool:
        caps = self.client_capabilities
        return bool(caps and caps.window and caps.window.work_done_progress)

    def supports_configuration(self) -> bool:
        caps = self.client_capabilities
        return bool(caps and caps.workspace and caps.workspace.configuration)

    def _supports_lens_refresh(self) -> bool:
        caps = self.client_capabilities
        lens = caps.workspace.code_lens if caps and caps.workspace else None
        return bool(lens and lens.refresh_support)

    async def refresh_settings(self) -> None:
        """Pull the ``daytona`` section per workspace folder (when the client can) and apply it; runs waiting for
        settings go on when it ends, whatever happened."""
        try:
            await self._pull_settings()
        finally:
            self.settings_ready.set()

    async def _pull_settings(self) -> None:
        self._warned.clear()
        base = self.base_settings
        if self.client_settings is not None:
            base = parse_settings(self.client_settings, self.warn, base)
        new: dict[str, Settings] = {"": base}
        folders = self.folders()
        if self.supports_configuration():
            scopes: list[str | None] = [None, *folders]
            items = [types.ConfigurationItem(scope_uri=s, section="daytona") for s in scopes]
            try:
                results = await asyncio.wait_for(
                    self.workspace_configuration_async(types.ConfigurationParams(items=items)), 10
                )
            except Exception as exc:
                log.warning("workspace/configuration failed: %s", exc)
                results = []
            for i, scope in enumerate(scopes):
                data = results[i] if i < len(results) else None
                if scope is None:
                    new[""] = base = parse_settings(data, self.warn, base)
                else:
                    new[scope.rstrip("/")] = parse_settings(data, self.warn, base, folder=scope)
        else:
            for folder in folders:
                new[folder.rstrip("/")] = base
        before = {k: self.settings_for(k).languages for k in new}
        self.folder_settings = new
        for settings in new.values():
            if resolve_backend(settings) == "local":
                for message in risk_warnings(settings):
                    self.warn_once(message)
        if before != {k: v.languages for k, v in new.items()} and self._supports_lens_refresh():
            self.workspace_code_lens_refresh(None)  # lenses and actions depend on daytona.languages
        closing = [self.runs.settings_changed(key, self.settings_for(key)) for key in list(self.runs.slots)]
        # an idle sandbox whose spec changed is gone before the next run starts (never two per workspace)
        pending = [task for task in closing if task is not None]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def current_settings(self, uri: str) -> Settings:
        if not self.settings_ready.is_set():
            try:
                await asyncio.wait_for(self.settings_ready.wait(), 10)
            except asyncio.TimeoutError:
                log.warning("No settings from the client yet; using the initialization options")
        return self.settings_of_uri(uri)


def create_server(factory: EnvironmentFactory | None = None) -> DaytonaLanguageServer:
    """Build the server with every feature registered. ``factory`` builds environments (default: the real backends)."""
    from daytona_lsp.lsp.features import code_actions, code_lens, commands, inlay_hints, input, lifecycle, output

    server = DaytonaLanguageServer(factory)
    reporter = output.RunReporter(server)
    server.runs.observer = reporter
    lifecycle.register(server, reporter.values)
    inlay_hints.register(server, reporter.values)
    code_actions.register(server)
    code_lens.register(server)
    commands.register(server)
    input.register(server)
    return server


def _configure_logging() -> None:
    level = os.environ.get("DAYTONA_LSP_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(
        stream=sys.stderr, level=getattr(logging, level, logging.WARNING), format="%(levelname)s %(name)s: %(message)s"
    )


def serve(tcp: bool = False, host: str = "127.0.0.1", port: int = 2087, token_file: str | None = None) -> int:
    """Serve LSP on stdio (or loopback TCP with a token: :mod:`daytona_lsp.lsp.tcp`). Every environment is closed when
    the client goes away, with or without shutdown. Raises :class:`~daytona_lsp.lsp.tcp.TcpError` for a bad TCP setup."""
    _configure_logging()
    if tcp:
        from daytona_lsp.lsp import tcp as tcp_mode

        tcp_mode.check_loopback(host)
        token = tcp_mode.load_token(token_file)
        return tcp_mode.serve_tcp(create_server(), host, port, token, show_token=token_file is None)
    return _serve_stdio(create_server())


def _serve_stdio(server: DaytonaLanguageServer) -> int:
    # The protocol owns the real stdout; anything else that writes to fd 1 (a child process, a stray print) goes to stderr.
    proto_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr

    writer = CoalescingWriter(proto_out)
    server.protocol.set_writer(writer)
    terminated = False

    async def read_stdin() -> None:
        """Messages from stdin: a pipe's read in the loop's own callback; anything else (a file…) in a thread."""
        try:
            mode = os.fstat(sys.stdin.fileno()).st_mode
        except OSError:
            mode = 0
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            await reader.serve_pipe(server.protocol, sys.stdin.buffer)
        else:
            loop = asyncio.get_running_loop()
            await reader.serve_stream(
                server.protocol, lambda n: loop.run_in_executor(server.thread_pool, os.read, sys.stdin.fileno(), n)
            )

    async def main() -> None:
        nonlocal terminated
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def on_signal() -> None:
            nonlocal terminated
            terminated = True
            if task is not None:
                task.cancel()

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            try:
                loop.add_signal_handler(sig, on_signal)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        try:
            await read_stdin()
        except asyncio.CancelledError:
            pass
        finally:
            # stdin closed (client died), a signal, or exit: leave nothing behind
            await server.runs.aclose()

    code = 0
    try:
        asyncio.run(main())
    except SystemExit as exc:  # the `exit` notification
        code = exc.code if isinstance(exc.code, int) else 0
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    writer.flush()  # what the last turns of the loop sent (and notifications still held)
    if terminated or not sys.stdin.closed:
        # the stdin reader thread may still block on a read: do not wait for it
        logging.shutdown()
        os._exit(code)
    server.shutdown()
    return code
