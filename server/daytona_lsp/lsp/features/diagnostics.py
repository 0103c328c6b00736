"""A run's errors (and, with ``outputMode`` diagnostics/both, its output) as diagnostics on the buffer's lines, and
errors raised in other files of the workspace (``import helper``) as diagnostics in those files (open or not), with
``relatedInformation`` at the call sites in the file that was run.

A run clears the diagnostics of the runs of the same document that finished before it started (also those it left in
other files); runs that overlap each other keep each other's diagnostics.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from daytona_lsp.core.lines import LineIndex
from daytona_lsp.lsp.runs import Run, RunOutcome
from daytona_lsp.lsp.workspace import PathMap

if TYPE_CHECKING:
    from daytona_lsp.lsp.server import DaytonaLanguageServer

log = logging.getLogger(__name__)

SOURCE = "daytona"
MAX_OUTPUT_DIAGNOSTIC_CHARS = 4000
_NOISE = re.compile(r"^(Node\.js v\d|\s+at |\[daytona-lsp|… \[daytona-lsp)")


def last_error_line(output: str) -> str:
    """The line of the output that best says what went wrong (usually the last meaningful one)."""
    for line in reversed(output.splitlines()):
        text = line.strip()
        if text and not _NOISE.match(line):
            return text[:300]
    return ""


Published = dict[str, list[types.Diagnostic]]
"""Document URI → the diagnostics one run gives it."""


class DiagnosticsPublisher:
    def __init__(self, server: DaytonaLanguageServer) -> None:
        self.server = server
        # uri of the document that was run -> run id -> diagnostics by uri (None while the run is still going)
        self.by_uri: dict[str, dict[str, Published | None]] = {}
        self._published: dict[str, bool] = {}
        """uri → whether the client currently shows diagnostics of ours"""

    def run_started(self, run: Run) -> None:
        runs = self.by_uri.setdefault(run.request.uri, {})
        touched = {run.request.uri}
        for run_id in [k for k, v in runs.items() if v is not None]:
            touched.update(runs.pop(run_id) or ())
        runs[run.id] = None
        for uri in touched:
            self._publish(uri)

    def run_finished(self, run: Run, outcome: RunOutcome) -> None:
        runs = self.by_uri.setdefault(run.request.uri, {})
        if run.id not in runs:
            return  # superseded
        try:
            published = self.diagnostics_for(run, outcome)
        except Exception:
            log.exception("Could not compute diagnostics for run %s", run.id)
            published = {}
        runs[run.id] = published
        for uri in {run.request.uri, *published}:
            self._publish(uri)

    def _publish(self, uri: str) -> None:
        items = [d for runs in self.by_uri.values() for ds in runs.values() if ds for d in ds.get(uri, ())]
        if not items and not self._published.get(uri):
            return  # nothing shown, nothing to show
        self._published[uri] = bool(items)
        self.server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=items))

    # ---- mapping ------------------------------------------------------------------------------------------------
    def _doc_lines(self, uri: str) -> LineIndex | None:
        """An open document's lines as they are now, read only where a diagnostic points (not split per run); None
        for a document that is not open (pygls would read it from disk, on the event loop)."""
        doc = self.server.workspace.text_documents.get(uri)
        try:
            return LineIndex(doc.source) if doc is not None else None
        except Exception:
            return None

    def _position(self, uri: str, lines: LineIndex | None, line: int, column: int) -> types.Position:
        if lines is not None:
            line = max(line, 0)
            text = lines.get(line)
            if text is None:  # the document got shorter since the run started: its last line
                line = max(len(lines) - 1, 0)
                text = lines.get(line) or ""
            column = max(0, min(column, len(text)))
            try:
                doc = self.server.workspace.get_text_document(uri)
                return doc.position_codec.position_to_client_units(lines, types.Position(line, column))
            except Exception:
                pass
        return types.Position(line=max(line, 0), character=max(column, 0))

    def _line_end(self, lines: LineIndex | None, line: int) -> int:
        text = lines.get(line) if lines is not None else None
        return len(text) if text is not None else 0

    def _file_range(self, uri: str, line: int) -> types.Range:
        """A line of another file: its statement when the file is open, else the whole line (no disk read here)."""
        lines = self._doc_lines(uri)
        text = lines.get(line) if lines is not None else None
        if text is None:
            return types.Range(types.Position(line, 0), types.Position(line + 1, 0))
        start = len(text) - len(text.lstrip())
        end = max(len(text.rstrip()), start)
        return types.Range(self._position(uri, lines, line, start), self._position(uri, lines, line, end))

    def diagnostics_for(self, run: Run, outcome: RunOutcome) -> Published:
        req = run.request
        uri = req.uri
        out: list[types.Diagnostic] = []
        published: Published = {uri: out}
        paths = PathMap.of_run(req.placement, outcome.workspace_root, outcome.source_path)
        errors = [] if outcome.cancelled else self._find_errors(run, outcome, paths)
        output_shown = req.settings.output_mode in ("diagnostics", "both") and outcome.output.strip()
        if not errors and not output_shown and (outcome.cancelled or outcome.exit_code == 0):
            return published  # (most runs: nothing below would look at the document)
        lines = self._doc_lines(uri)

        def buffer_pos(code_line: int, code_col: int | None) -> tuple[int, int]:
            col = code_col or 0
            if 0 <= code_line < len(req.column_offsets):
                col += req.column_offsets[code_line]
            return req.first_line + code_line, col

        def rng(code_line: int, col: int | None, end_col: int | None) -> types.Range:
            bl, bc = buffer_pos(code_line, col)
            if col is None:
                text = lines.get(bl) if lines is not None else None
                start_c = len(text) - len(text.lstrip()) if text is not None else 0
                end = self._line_end(lines, bl)
            else:
                start_c = bc
                end = buffer_pos(code_line, end_col)[1] if end_col is not None and end_col > col else bc + 1
                end = min(end, max(self._line_end(lines, bl), bc)) if lines is not None else end
            return types.Range(self._position(uri, lines, bl, start_c), self._position(uri, lines, bl, end))

        if not outcome.cancelled:
            # errors of a run that still succeeded (bash goes on after a failed command) are warnings
            failed = outcome.exit_code != 0
            severity = types.DiagnosticSeverity.Error if failed else types.DiagnosticSeverity.Warning

            def location(frame: Any) -> types.Location | None:
                """A frame in the code that was run (``path`` None) or in another workspace file."""
                if frame.path is None:
                    ok = 0 <= frame.line < max(req.line_count, 1)
                    return types.Location(uri=uri, range=rng(frame.line, frame.column, None)) if ok else None
                target = paths.uri(frame.path) if paths is not None else None
                return types.Location(uri=target, range=self._file_range(target, frame.line)) if target else None

            def related_of(err: Any) -> list[types.DiagnosticRelatedInformation] | None:
                found = [(f, location(f)) for f in err.related]
                return [
                    types.DiagnosticRelatedInformation(location=where, message=f.label or "called from here")
                    for f, where in found
                    if where is not None
                ] or None

            for err in errors:
                target = paths.uri(err.path) if err.path is not None and paths is not None else None
                if target is not None and err.line is not None and target != uri:
                    published.setdefault(target, []).append(
                        types.Diagnostic(
                            range=self._file_range(target, err.line),
                            message=err.message,
                            severity=severity,
                            source=SOURCE,
                            code=outcome.exit_code,
                            related_information=related_of(err),
                        )
                    )
            located = [
                e
                for e in errors
                if e.path is None and e.line is not None and 0 <= e.line < max(req.line_count, e.line + 1)
            ]
            for err in located:
                out.append(
                    types.Diagnostic(
                        range=rng(err.line, err.column, err.end_column),
                        message=err.message,
                        severity=severity,
                        source=SOURCE,
                        code=outcome.exit_code,
                        related_information=related_of(err),
                    )
                )
            if failed and not located:
                unlocated = next((e.message for e in errors if e.message), "") or last_error_line(outcome.output)
                message = f"exit {outcome.exit_code}" + (f": {unlocated}" if unlocated else "")
                out.append(
                    types.Diagnostic(
                        range=rng(0, None, None),  # the first line
                        message=message,
                        severity=types.DiagnosticSeverity.Error,
                        source=SOURCE,
                        code=outcome.exit_code,
                    )
                )
        if output_shown:
            text = outcome.output
            if len(text) > MAX_OUTPUT_DIAGNOSTIC_CHARS:
                text = text[: MAX_OUTPUT_DIAGNOSTIC_CHARS // 2] + "\n…\n" + text[-MAX_OUTPUT_DIAGNOSTIC_CHARS // 2 :]
            out.append(
                types.Diagnostic(
                    range=rng(0, None, None),  # the first line
                    message=text.rstrip("\n"),
                    severity=types.DiagnosticSeverity.Information,
                    source=SOURCE,
                )
            )
        return published

    def _find_errors(self, run: Run, outcome: RunOutcome, paths: PathMap | None) -> list[Any]:
        try:
            from daytona_lsp.core.errors import find_errors

            return list(
                find_errors(
                    outcome.output,
                    run.request.language,
                    source_path=outcome.source_path,
                    line_offset=outcome.line_offset,
                    line_count=run.request.line_count,
                    code=run.request.code,
                    workspace_root=paths.sandbox_root if paths is not None else None,
                )
            )
        except Exception:
            log.exception("Could not parse the errors of run %s", run.id)
            return []
