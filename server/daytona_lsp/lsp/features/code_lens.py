"""``textDocument/codeLens``: "▶ Run file" on line 0 and "▶ Run cell" above each ``# %%`` / ``// %%`` marker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from daytona_lsp.lsp import documents
from daytona_lsp.lsp.features.commands import RUN, run_arguments

if TYPE_CHECKING:
    from daytona_lsp.lsp.server import DaytonaLanguageServer

RUN_FILE = "▶ Run file"
RUN_CELL = "▶ Run cell"


def code_lenses(server: DaytonaLanguageServer, params: types.CodeLensParams) -> list[types.CodeLens] | None:
    uri = params.text_document.uri
    doc = server.workspace.text_documents.get(uri)
    if doc is None:
        return None
    language = documents.language_of(doc.language_id, uri)
    if language is None or language not in server.settings_of_uri(uri).languages:
        return None
    lines = doc.source.splitlines()
    line0 = types.Range(types.Position(0, 0), types.Position(0, 0))
    lenses = [
        types.CodeLens(
            range=line0, command=types.Command(title=RUN_FILE, command=RUN, arguments=[run_arguments(server, uri)])
        )
    ]
    for start, end in documents.cells(lines, language):
        end_pos = (end, 0) if end < len(lines) else (len(lines) - 1, len(lines[-1]))
        rng = documents.range_wire(start, 0, *end_pos)
        lenses.append(
            types.CodeLens(
                range=types.Range(types.Position(start, 0), types.Position(start, len(lines[start]))),
                command=types.Command(title=RUN_CELL, command=RUN, arguments=[run_arguments(server, uri, rng)]),
            )
        )
    return lenses


def register(server: DaytonaLanguageServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_CODE_LENS, types.CodeLensOptions(resolve_provider=False))
    def on_code_lens(params: types.CodeLensParams) -> list[types.CodeLens] | None:
        return code_lenses(server, params)
