"""``textDocument/inlayHint``: a session run's value at the end of the run's last line (like Jupyter's ``Out``).

A run of a document replaces the hints of the runs whose lines it overlaps; an edit that touches a run's lines
clears its hint, an edit above them moves it. The label is at most :data:`MAX_LABEL` characters, the tooltip has the
whole value. When the hints of a document change because of a run, clients that support it get
``workspace/inlayHint/refresh``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lsprotocol import types

from daytona_lsp.core.lines import LineIndex
from daytona_lsp.lsp.runs import Run, RunOutcome

if TYPE_CHECKING:
    from daytona_lsp.lsp.server import DaytonaLanguageServer

log = logging.getLogger(__name__)

MAX_LABEL = 40
PREFIX = "= "
_SPACE = re.compile(r"\s+")


@dataclass
class ValueHint:
    first: int
    """The run's first buffer line."""
    last: int
    """The run's last buffer line (the hint goes at the end of its last non-blank line)."""
    value: str


def label(value: str) -> str:
    """The hint's text: ``= value`` on one line, cut to :data:`MAX_LABEL` characters with ``…``."""
    text = PREFIX + _SPACE.sub(" ", value).strip()
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


class ValueHints:
    """The values of a server's runs per document, for the inlay-hint request."""

    def __init__(self, server: DaytonaLanguageServer) -> None:
        self.server = server
        self.by_uri: dict[str, list[ValueHint]] = {}

    def run_finished(self, run: Run, outcome: RunOutcome) -> None:
        req = run.request
        first, last = req.first_line, req.first_line + max(req.line_count, 1) - 1
        before = self.by_uri.get(req.uri, [])
        kept = [h for h in before if h.last < first or h.first > last]
        if outcome.value is not None:
            kept.append(ValueHint(first, last, outcome.value))
        if kept or before:
            self.by_uri[req.uri] = kept
        if kept != before:
            self._refresh()

    def edited(self, params: types.DidChangeTextDocumentParams) -> None:
        """Drop the hints of runs whose lines an edit touches; move those below it by the lines it adds or removes."""
        uri = params.text_document.uri
        hints = self.by_uri.get(uri)
        if not hints:
            return
        for change in params.content_changes:
            if not isinstance(change, types.TextDocumentContentChangePartial):
                hints = []  # the whole text replaced
                break
            start, end = change.range.start.line, change.range.end.line
            delta = change.text.count("\n") + change.text.count("\r") - change.text.count("\r\n") - (end - start)
            moved = []
            for h in hints:
                if end < h.first:
                    moved.append(ValueHint(h.first + delta, h.last + delta, h.value))
                elif start > h.last:
                    moved.append(h)
            hints = moved
        self.by_uri[uri] = hints

    def forget(self, uri: str) -> None:
        self.by_uri.pop(uri, None)

    def hints(self, uri: str, rng: types.Range) -> list[types.InlayHint]:
        hints = self.by_uri.get(uri)
        doc = self.server.workspace.text_documents.get(uri)
        if not hints or doc is None:
            return []
        lines = LineIndex(doc.source)
        out = []
        for h in hints:
            line = _last_code_line(lines, h.first, h.last)
            if line is None or not rng.start.line <= line <= rng.end.line:
                continue
            character = doc.position_codec.client_num_units(lines[line])
            out.append(
                types.InlayHint(
                    position=types.Position(line, character),
                    label=label(h.value),
                    tooltip=types.MarkupContent(kind=types.MarkupKind.PlainText, value=h.value),
                    padding_left=True,
                )
            )
        return out

    def _refresh(self) -> None:
        caps = self.server.client_capabilities
        hint_caps = caps.workspace.inlay_hint if caps and caps.workspace else None
        if hint_caps and hint_caps.refresh_support:
            try:
                self.server.workspace_inlay_hint_refresh(None)
            except Exception as exc:  # a comfort: never let it break a run
                log.info("inlayHint/refresh failed: %s", exc)


def _last_code_line(lines: LineIndex, first: int, last: int) -> int | None:
    """The last line in ``first..last`` that is not blank (the last one that exists when all are)."""
    last = min(last, len(lines) - 1)
    for line in range(last, first - 1, -1):
        if lines[line].strip():
            return line
    return last if last >= first else None


def register(server: DaytonaLanguageServer, values: ValueHints) -> None:
    @server.feature(types.TEXT_DOCUMENT_INLAY_HINT, types.InlayHintOptions(resolve_provider=False))
    def on_inlay_hint(params: types.InlayHintParams) -> list[types.InlayHint]:
        return values.hints(params.text_document.uri, params.range)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def on_did_change(params: types.DidChangeTextDocumentParams) -> None:
        values.edited(params)
