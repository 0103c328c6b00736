"""Error locations from a run's output: tracebacks, stack traces and compiler errors → lines of the user's code.

Pure functions, no editor knowledge: :func:`find_errors` turns the text a run printed into :class:`RunError` values
whose lines (0-based) and columns (0-based, in characters of the code line) point into the code that was run. The
language server shifts them by a selection's first line and turns them into diagnostics.

Recognised formats (real interpreter output, see ``tests/unit/test_errors.py``):

* python — ``Traceback (most recent call last):`` blocks (3.8–3.13, incl. ``^^^^``/``~~~^^^`` position markers,
  exception groups, chained exceptions: the last one is reported), ``SyntaxError``/``IndentationError``/``TabError``
  with their ``File "…", line N`` + caret lines, and IPython/Jupyter ``Cell In[N], line M`` tracebacks.
* javascript — node's ``file:N`` + source + caret header and ``    at fn (file:N:C)`` stack lines.
* typescript — tsc's ``file(l,c): error TSxxxx: msg`` and ``file:l:c - error TSxxxx: msg`` (pretty) lines, esbuild's
  ``file:l:c: ERROR: msg`` (tsx), and runtime stacks as for javascript (ts-node, tsx, node type stripping).
* bash — ``file: line N: msg`` (``bash: line N:`` for stdin, ``bash: -c: line N:``, ``fn: line N:`` inside functions)
  and dash's ``file: N: msg``.

Everything is linear in the size of the output and never raises: unknown text gives ``[]`` or one location-less
:class:`RunError` carrying the last error-looking line.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import languages
from ..languages import CodeLanguage
from ..lines import LineIndex
from .bash import _find_bash
from .common import (
    _ERROR_WORDS_RE,
    MAX_ERRORS,
    Frame,
    RunError,
    _finish,
    _last_error_line,
    _Locator,
    _split_lines,
    _strip_ansi,
)
from .javascript import _find_js_runtime
from .python import _find_python
from .typescript import _find_typescript

__all__ = ["Frame", "RunError", "find_errors", "MAX_ERRORS"]


_PARSERS: dict[str, Callable[[list[str], _Locator], list[RunError]]] = {
    "python": _find_python,
    "javascript": _find_js_runtime,
    "typescript": _find_typescript,
    "bash": _find_bash,
}
"""The parsers a :class:`~daytona_lsp.core.languages.Language` entry names in ``error_parser``."""

_CAN_FIND: dict[str, Callable[[str], bool]] = {
    "python": lambda text: 'File "' in text or "Traceback (most recent" in text,  # every block starts at one
    "bash": lambda text: ": " in text,  # in both of its line formats
    "javascript": lambda text: "at " in text or "^" in text,  # a stack line, or a header's caret line
    "typescript": lambda text: "at " in text or "^" in text,  # as javascript; compile errors say "error"/"ERROR"
}
"""For each parser: False when it finds nothing in a (plain) text — every error it reports needs what is checked
here, or an error word (:data:`_ERROR_WORDS_RE`, looked for too) — so that most runs, which print no error, cost no
parsing. A parser without an entry always runs."""


# --------------------------------------------------------------------------------------------------------------------
# entry point


def find_errors(
    output: str,
    language: CodeLanguage,
    *,
    source_path: str | None = None,
    line_offset: int = 0,
    line_count: int | None = None,
    code: str | None = None,
    workspace_root: str | None = None,
) -> list[RunError]:
    """The errors a run's ``output`` reports, located in the code that was run where possible.

    ``source_path``: the code's file name as the interpreter reports it (``<stdin>``, ``/tmp/x/main.py``…);
    None recognises the usual ones. ``line_offset``: lines the backend put before the code. ``line_count``: the
    code's line count; locations outside it are dropped. ``code``: the code itself (optional) — with it, columns
    account for the indentation that tracebacks strip, and lines without a column marker get the span of the
    statement. Columns count characters of the code line. ``workspace_root``: the sandbox's path of the workspace
    folder — frames in its other files (library code such as ``site-packages`` and
    ``node_modules`` excluded) become related frames with a ``path``, and an error raised in one of them is also
    reported there (:attr:`RunError.path`, that file's line; bash: errors in the files a script sourced).

    Clean output gives ``[]``; an error without a location gives one :class:`RunError` with ``line=None``. Never
    raises, whatever the input.
    """
    try:
        return _find_errors(output, language, source_path, line_offset, line_count, code, workspace_root)
    except Exception:  # pragma: no cover - a parser bug must not break a run; the raw output is still shown
        fallback = _last_error_line(_split_lines(_strip_ansi(output))) if isinstance(output, str) else None
        return [RunError(message=fallback, line=None, column=None, end_column=None)] if fallback else []


def _find_errors(
    output: str,
    language: str,
    source_path: str | None,
    line_offset: int,
    line_count: int | None,
    code: str | None,
    workspace_root: str | None = None,
) -> list[RunError]:
    if not isinstance(output, str) or not output:
        return []
    entry = languages.by_name(language) if isinstance(language, str) else None
    text = _strip_ansi(output)
    can_find = _CAN_FIND.get(entry.error_parser, lambda text: True) if entry is not None else None
    if (can_find is None or not can_find(text)) and not _ERROR_WORDS_RE.search(text.lower()):
        return []  # neither the parser nor the fallback below would find anything
    code_lines = LineIndex(code) if isinstance(code, str) else None  # lines looked up only where errors point
    if line_count is None and code_lines is not None:
        line_count = max(len(code_lines), 1)
    source = source_path if isinstance(source_path, str) else None
    loc = _Locator(
        source, line_offset, line_count, code_lines, workspace_root if isinstance(workspace_root, str) else None
    )
    lines = _split_lines(text)
    errors = _PARSERS[entry.error_parser](lines, loc) if entry is not None else []

    if any(e.line is not None for e in errors):
        return _finish(errors)
    if errors:
        return _finish(errors[-1:])
    fallback = _last_error_line(lines)
    return [RunError(message=fallback, line=None, column=None, end_column=None)] if fallback else []
