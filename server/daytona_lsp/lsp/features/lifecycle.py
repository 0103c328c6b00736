"""initialize / initialized / configuration / didOpen (prewarm) / didClose (its session ends) / progress cancel /
shutdown / exit."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from daytona_lsp.lsp import documents
from daytona_lsp.lsp.features import input
from daytona_lsp.lsp.settings import parse_settings

if TYPE_CHECKING:
    from daytona_lsp.lsp.features.inlay_hints import ValueHints
    from daytona_lsp.lsp.server import DaytonaLanguageServer

log = logging.getLogger(__name__)

_CLIENT_OPTIONS = {"outputNotifications", input.CLIENT_OPTION}


def initialization_settings(options: Any) -> Mapping[str, Any] | None:
    """The settings part of ``initializationOptions``: its ``daytona`` / ``settings`` object, or the options themselves."""
    if not isinstance(options, Mapping):
        return None
    for key in ("daytona", "settings"):
        nested = options.get(key)
        if isinstance(nested, Mapping):
            if isinstance(nested.get("daytona"), Mapping):
                nested = nested["daytona"]
            return nested
    return {k: v for k, v in options.items() if k not in _CLIENT_OPTIONS}


def register(server: DaytonaLanguageServer, values: ValueHints) -> None:
    @server.feature(types.INITIALIZE)
    def on_initialize(params: types.InitializeParams) -> None:
        options = params.initialization_options
        if options is not None and not isinstance(options, Mapping):
            server.warn("initializationOptions must be an object; ignoring them")
            options = None
        server.output_notifications = bool(options and options.get("outputNotifications") is True)
        server.interactive_input = input.opted_in(options)
        server.base_settings = parse_settings(initialization_settings(options), server.warn)
        server.folder_settings = {"": server.base_settings}
        if not server.supports_configuration():
            server.settings_ready.set()  # nothing to pull: the initialization options are the settings

    @server.feature(types.INITIALIZED)
    async def on_initialized(params: types.InitializedParams) -> None:
        await server.refresh_settings()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def on_did_change_configuration(params: types.DidChangeConfigurationParams) -> None:
        # in the turn it arrives (a run is started in the turn its request arrives): runs from now on wait for the
        # new settings (refresh_settings lets them go on when it ends)
        server.settings_ready.clear()
        settings = params.settings
        if isinstance(settings, Mapping) and isinstance(settings.get("daytona"), Mapping):
            server.client_settings = dict(settings["daytona"])

        async def refresh() -> None:
            await server.refresh_settings()
            prewarm_open_documents(server)

        server.in_background(refresh())

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def on_did_change_folders(params: types.DidChangeWorkspaceFoldersParams) -> None:
        server.settings_ready.clear()  # (as for a configuration change) runs from now on wait for the new folders
        removed = [folder.uri.rstrip("/") for folder in params.event.removed]

        async def apply() -> None:
            for folder in removed:
                await server.runs.reset(folder)
            await server.refresh_settings()

        server.in_background(apply())

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def on_did_open(params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        if documents.language_of(doc.language_id, doc.uri) is None:
            return
        settings = await server.current_settings(doc.uri)
        maybe_prewarm(server, doc.uri, doc.language_id, settings)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def on_did_close(params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        values.forget(uri)
        server.runs.close_session(server.workspace_of(uri), uri)

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def on_progress_cancel(params: types.WorkDoneProgressCancelParams) -> None:
        run_id = server.progress_tokens.get(str(params.token))
        if run_id is not None:
            server.runs.cancel(run_id)

    @server.feature(types.SHUTDOWN)
    async def on_shutdown(params: Any = None) -> None:
        await server.runs.aclose()

    @server.feature(types.EXIT)
    async def on_exit(params: Any = None) -> None:
        await server.runs.aclose()


def maybe_prewarm(server: DaytonaLanguageServer, uri: str, language_id: str, settings: Any) -> None:
    language = documents.language_of(language_id, uri)
    if not settings.prewarm or language is None or language not in settings.languages:
        return
    from daytona_lsp.core.secrets import api_key

    if settings.backend == "daytona" and not api_key():
        return  # the first run says what is missing
    server.runs.prewarm_in_background(server.workspace_of(uri), settings)


def prewarm_open_documents(server: DaytonaLanguageServer) -> None:
    for doc in list(server.workspace.text_documents.values()):
        maybe_prewarm(server, doc.uri, doc.language_id or "", server.settings_of_uri(doc.uri))
