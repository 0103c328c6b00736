"""pytest-lsp harness: the real server process (``python -m daytona_lsp``, i.e. ``daytona-lsp``) driven by a test client.

``start_session(...)`` starts one server with the given client capabilities, initializationOptions, workspace
configuration and environment, and yields a :class:`Session` that records the ``daytona/*`` notifications. Nothing here
sleeps: waiting is always on a future that a notification resolves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Union

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

CLIENTS = ["visual-studio-code", "neovim@v0.11"]
SERVER_CMD = [sys.executable, "-m", "daytona_lsp"]  # the `daytona-lsp` command itself (cli.main → serve)
WAIT = 60.0  # upper bound for any single wait: a hang fails the test instead of blocking the tier


def _fix_code_action_decoding(client: LanguageClient) -> None:
    """lsprotocol 2025.0.0 decodes a CodeAction with a nested command as a Command (client side only)."""
    converter = client.protocol._converter

    def hook(obj: Any, _: Any) -> types.Command | types.CodeAction:
        if isinstance(obj.get("command"), str):
            return converter.structure(obj, types.Command)
        return converter.structure(obj, types.CodeAction)

    converter.register_structure_hook(Union[types.Command, types.CodeAction], hook)  # noqa: UP007


def _plain(value: Any) -> Any:
    """Notification params as plain dicts/lists (pygls gives unknown methods' params as namedtuple-like objects)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_asdict"):
        return [_plain(v) for v in value]
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    return value


class Session:
    """One client connected to one server process, with what the server sent."""

    def __init__(self, client: LanguageClient, root: Path) -> None:
        self.client = client
        self.root = root
        self.started: dict[str, dict[str, Any]] = {}
        self.output: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.finished: dict[str, dict[str, Any]] = {}
        self.input_requests: list[dict[str, Any]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._versions: dict[str, int] = {}
        self.init_result: types.InitializeResult | None = None

        for method, sink in (
            ("daytona/runStarted", self._on_started),
            ("daytona/output", self._on_output),
            ("daytona/runFinished", self._on_finished),
            ("daytona/inputRequested", self._on_input_requested),
        ):
            client.feature(method)(self._handler(sink))
        # pytest-lsp's own handlers record diagnostics / messages; re-check the waiters after each of them
        features = client.protocol.fm.features
        for method in (
            types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS,
            types.WINDOW_LOG_MESSAGE,
            types.WINDOW_SHOW_MESSAGE,
            types.PROGRESS,
        ):
            features[method] = self._then_check(features[method])

    def _handler(self, sink: Callable[[Any], None]) -> Callable[[Any], None]:
        def handler(params: Any) -> None:
            sink(params)

        return handler

    def _then_check(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def handler(*args: Any) -> Any:
            result = original(*args)
            self._check()
            return result

        return handler

    # ---- notifications ------------------------------------------------------------------------------------------
    def _on_started(self, params: Any) -> None:
        p = _plain(params)
        self.started[p["runId"]] = p
        self.events.append(("started", p))
        self._check()

    def _on_output(self, params: Any) -> None:
        p = _plain(params)
        self.output[p["runId"]].append(p)
        self.events.append(("output", p))
        self._check()

    def _on_finished(self, params: Any) -> None:
        p = _plain(params)
        self.finished[p["runId"]] = p
        self.events.append(("finished", p))
        self._check()

    def _on_input_requested(self, params: Any) -> None:
        p = _plain(params)
        self.input_requests.append(p)
        self.events.append(("inputRequested", p))
        self._check()

    def _check(self) -> None:
        for predicate, fut in list(self._waiters):
            if not fut.done() and predicate():
                fut.set_result(None)
                self._waiters.remove((predicate, fut))

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        """Wait (without sleeping) until ``predicate()`` holds; it is re-checked on every notification."""
        if predicate():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, fut))
        await asyncio.wait_for(fut, timeout)

    def output_text(self, run_id: str) -> str:
        return "".join(o["text"] for o in self.output.get(run_id, []))

    def log_text(self) -> str:
        return "\n".join(m.message for m in self.client.log_messages)

    def diagnostics(self, uri: str) -> list[types.Diagnostic]:
        return list(self.client.diagnostics.get(uri, []))

    # ---- documents and commands ---------------------------------------------------------------------------------
    def open(self, name: str, text: str, language_id: str = "python") -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        uri = path.as_uri()
        self._versions[uri] = 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id=language_id, version=1, text=text)
            )
        )
        return uri

    def change(self, uri: str, text: str) -> None:
        self._versions[uri] += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self._versions[uri]),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    async def command(self, command: str, *arguments: Any, timeout: float = WAIT) -> Any:
        result = await asyncio.wait_for(
            self.client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=command, arguments=list(arguments))
            ),
            timeout,
        )
        return _plain(result)

    async def run(self, uri: str, rng: types.Range | None = None, **extra: Any) -> dict[str, Any]:
        arg: dict[str, Any] = {"uri": uri, **extra}
        if rng is not None:
            arg["range"] = {
                "start": {"line": rng.start.line, "character": rng.start.character},
                "end": {"line": rng.end.line, "character": rng.end.character},
            }
        return await self.command("daytona.run", arg)

    async def code_actions(
        self, uri: str, rng: types.Range, only: list[str] | None = None
    ) -> list[types.CodeAction | types.Command]:
        result = await asyncio.wait_for(
            self.client.text_document_code_action_async(
                types.CodeActionParams(
                    text_document=types.TextDocumentIdentifier(uri=uri),
                    range=rng,
                    context=types.CodeActionContext(diagnostics=[], only=only),
                )
            ),
            WAIT,
        )
        return list(result or [])


def rng(sl: int, sc: int, el: int, ec: int) -> types.Range:
    return types.Range(start=types.Position(line=sl, character=sc), end=types.Position(line=el, character=ec))


@contextlib.asynccontextmanager
async def start_session(
    capabilities: str | types.ClientCapabilities = "visual-studio-code",
    *,
    init_options: dict[str, Any] | None = None,
    configuration: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    folders: bool = True,
    subfolders: tuple[str, ...] = (),
    shutdown: bool = True,
) -> AsyncIterator[Session]:
    """A fresh server process and an initialized client session in a temporary workspace folder
    (or in several: ``subfolders`` of it, each a workspace folder). ``capabilities``: a pytest-lsp client name or
    the capabilities themselves."""
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("DAYTONA_")}
    tsx = os.environ.get("DAYTONA_LSP_TSX")  # scripts/setup-tsx: lets the local sandbox run TypeScript on Node < 22.6
    if tsx:
        server_env["PATH"] = os.path.dirname(tsx) + os.pathsep + server_env.get("PATH", "")
    server_env.update(env or {})
    config = ClientServerConfig(server_command=SERVER_CMD, server_env=server_env, client_factory=make_test_lsp_client)
    client = await config.start()
    assert isinstance(client, LanguageClient)
    _fix_code_action_decoding(client)
    if configuration is not None:
        client.set_configuration(configuration, section="daytona")
    with tempfile.TemporaryDirectory(prefix="daytona-lsp-test-") as tmp:
        root = Path(tmp)
        session = Session(client, root)
        workspace = [types.WorkspaceFolder(uri=(root / sub).as_uri(), name=sub) for sub in subfolders] or [
            types.WorkspaceFolder(uri=root.as_uri(), name="ws")
        ]
        for sub in subfolders:
            (root / sub).mkdir()
        params = types.InitializeParams(
            capabilities=client_capabilities(capabilities) if isinstance(capabilities, str) else capabilities,
            root_uri=root.as_uri() if folders else None,
            workspace_folders=workspace if folders else None,
            initialization_options=init_options,
        )
        clean = False
        try:
            session.init_result = await asyncio.wait_for(client.initialize_session(params), WAIT)
            yield session
            if shutdown:
                await asyncio.wait_for(client.shutdown_session(), WAIT)
                clean = True
        finally:
            await _stop(client, clean)


async def _stop(client: LanguageClient, clean: bool) -> None:
    """Stop the client; after a failure (or ``shutdown=False``) close the server's stdin like a dying client would,
    and kill it if it does not exit in time, so that a failing test never hangs the tier."""
    process = client._server
    if process is not None and process.returncode is None and not clean:
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
    await client.stop()


@pytest.fixture(params=CLIENTS)
def caps(request: pytest.FixtureRequest) -> str:
    """Each scenario once with VS Code's and once with Neovim's client capabilities."""
    return str(request.param)


@pytest.fixture(params=["local", "daytona"])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The backend to test against: the real local sandbox, or the Daytona SDK talking to the Daytona test server.

    Yields ``{"name", "settings", "env", "server"}``: initialization settings and server-process environment.
    """
    if request.param == "local":
        return {"name": "local", "settings": {"backend": "local"}, "env": {}, "server": None}
    server = request.getfixturevalue("daytona_server")
    return {
        "name": "daytona",
        "settings": {"backend": "daytona", "apiUrl": server.api_url},
        "env": {"DAYTONA_API_KEY": server.api_key, "DAYTONA_API_URL": server.api_url},
        "server": server,
    }
