"""``textDocument/codeAction``: "Run file in … sandbox" always, "Run selection in … sandbox" for a non-empty range."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lsprotocol import types

from daytona_lsp.lsp import documents
from daytona_lsp.lsp.features.commands import RUN, run_arguments

if TYPE_CHECKING:
    from daytona_lsp.lsp.server import DaytonaLanguageServer

RUN_KIND = "source.daytona.run"


def _wanted(only: Sequence[str] | None) -> bool:
    """Whether a client's ``context.only`` filter admits our kind (a kind admits its sub-kinds)."""
    if not only:
        return True
    return any(RUN_KIND == k or RUN_KIND.startswith(k + ".") for k in only)


def code_actions(server: DaytonaLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
    uri = params.text_document.uri
    doc = server.workspace.text_documents.get(uri)
    if doc is None or not _wanted(params.context.only):
        return None
    language = documents.language_of(doc.language_id, uri)
    settings = server.settings_of_uri(uri)
    if language is None or language not in settings.languages or not doc.source.strip():
        return None
    where = server.backend_label(settings)
    actions = [
        types.CodeAction(
            title=f"Run file in {where}",
            kind=RUN_KIND,
            command=types.Command(title=f"Run file in {where}", command=RUN, arguments=[run_arguments(server, uri)]),
        )
    ]
    r = params.range
    if (r.start.line, r.start.character) != (r.end.line, r.end.character):
        rng = documents.range_wire(r.start.line, r.start.character, r.end.line, r.end.character)
        actions.append(
            types.CodeAction(
                title=f"Run selection in {where}",
                kind=RUN_KIND,
                command=types.Command(
                    title=f"Run selection in {where}", command=RUN, arguments=[run_arguments(server, uri, rng)]
                ),
            )
        )
    return actions


def register(server: DaytonaLanguageServer) -> None:
    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[RUN_KIND], resolve_provider=False),
    )
    def on_code_action(params: types.CodeActionParams) -> list[types.CodeAction] | None:
        return code_actions(server, params)
