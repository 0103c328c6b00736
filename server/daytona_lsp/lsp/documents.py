"""From a synced document (and maybe a range) to the code to run: language, text, and where its lines are."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from daytona_lsp.core import languages
from daytona_lsp.core.languages import LANGUAGES, CodeLanguage
from daytona_lsp.core.lines import LineIndex


class BadRequest(ValueError):
    """The client asked for something impossible; the message says what, for the user."""


def language_of(language_id: str | None, uri: str) -> CodeLanguage | None:
    """The language of a document: from its file extension when it names one, else from the client's languageId."""
    lang = languages.for_document(language_id, uri)
    return lang.id if lang else None


def choose_language(language_id: str | None, override: Any, uri: str) -> CodeLanguage:
    supported = ", ".join(LANGUAGES)
    if override is not None:
        lang = languages.by_name(str(override))
        if lang is None:
            why = languages.refusal(str(override))
            raise BadRequest(f"Unsupported language {override!r}{': ' + why if why else ''}; supported: {supported}")
        return lang.id
    language = language_of(language_id, uri)
    if language is None:
        why = languages.refusal(language_id)
        what = language_id or "plain text"
        raise BadRequest(f"Cannot run a {what!r} document{': ' + why if why else ''}; supported: {supported}")
    return language


@dataclass(frozen=True)
class Snippet:
    code: str
    first_line: int
    column_offsets: tuple[int, ...]
    line_count: int


def parse_range(value: Any) -> tuple[int, int, int, int]:
    """An LSP range object → (start line, start char, end line, end char); BadRequest when malformed."""
    try:
        start, end = value["start"], value["end"]
        nums = (start["line"], start["character"], end["line"], end["character"])
    except (TypeError, KeyError):
        raise BadRequest(
            "range must be {start: {line, character}, end: {line, character}}, got " + repr(value)[:80]
        ) from None
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in nums):
        raise BadRequest("range positions must be non-negative integers, got " + repr(value)[:80])
    if (nums[2], nums[3]) < (nums[0], nums[1]):
        raise BadRequest("range end is before its start")
    return nums


def snippet(lines: Sequence[str], rng: tuple[int, int, int, int] | None) -> Snippet:
    """The code of the whole document (``rng`` None) or of a range (already in code points), dedented.

    ``lines`` are the document's lines without line endings (a :class:`LineIndex` reads only the range's lines).
    Columns reported for the code map back by adding ``column_offsets[line]`` (none: 0); lines by adding
    ``first_line``.
    """
    if rng is None:
        if isinstance(lines, LineIndex):  # the text as it is: no split and join of a large document
            code = lines.text
        else:
            code = "\n".join(lines)
        if code and not code.endswith("\n"):
            code += "\n"
        return Snippet(code, 0, (), len(lines))
    sl, sc, el, ec = rng
    n = len(lines)
    # a range may end at (n, 0): just past the last line
    if sl > n or el > n or (sl == n and sc > 0) or (el == n and ec > 0):
        raise BadRequest(f"range {sl + 1}:{sc + 1}-{el + 1}:{ec + 1} is outside the document ({n} lines)")
    if sl == n:
        return Snippet("", sl, (), 0)
    sc = min(sc, len(lines[sl]))
    if el == n:
        el, ec = n - 1, len(lines[n - 1])
    ec = min(ec, len(lines[el]))
    if sl == el:
        picked = [lines[sl][sc:ec]]
    else:
        picked = [lines[sl][sc:], *lines[sl + 1 : el], lines[el][:ec]]
        if picked[-1] == "" and ec == 0:
            picked.pop()  # selection of whole lines ends at column 0 of the next line
    raw = "\n".join(picked) + "\n"
    dedented = textwrap.dedent(raw)
    d_lines = dedented.split("\n")
    offsets = []
    for i, (orig, new) in enumerate(zip(picked, d_lines, strict=False)):
        removed = len(orig) - len(new) if new.strip() else 0
        offsets.append(removed + (sc if i == 0 else 0))
    return Snippet(dedented, sl, tuple(offsets), len(picked))


def cells(lines: Iterable[str], language: CodeLanguage) -> list[tuple[int, int]]:
    """``(marker line, end line exclusive)`` for each cell marker (``# %%`` / ``// %%``)."""
    marker = languages.get(language).cell_marker
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith(marker)]
    total = len(list(lines)) if not isinstance(lines, list) else len(lines)
    return [(s, starts[k + 1] if k + 1 < len(starts) else total) for k, s in enumerate(starts)]


def workspace_key(uri: str, folders: Iterable[str], root: str | None) -> str:
    """The workspace folder (URI) a document belongs to: the longest folder prefix, else the root, else ``""``."""
    best = ""
    for folder in folders:
        prefix = folder.rstrip("/") + "/"
        if uri.startswith(prefix) and len(prefix) > len(best):
            best = folder
    if best:
        return best.rstrip("/")
    if root and uri.startswith(root.rstrip("/") + "/"):
        return root.rstrip("/")
    return ""


def range_wire(sl: int, sc: int, el: int, ec: int) -> Mapping[str, Any]:
    return {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}
