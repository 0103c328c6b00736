"""tsc's and esbuild's compile errors, and TypeScript runtime stacks (as for javascript)."""

from __future__ import annotations

import re

from .common import _MAX_LINE, _MAX_RELATED, MAX_ERRORS, Frame, RunError, _caret_span, _clip, _Locator
from .javascript import _find_js_runtime, _js_token_end

# --------------------------------------------------------------------------------------------------------------------
# typescript compile errors

_TSC_PAREN_RE = re.compile(
    r"(?P<path>[^\s(][^()\n]*)\((?P<line>\d{1,9}),(?P<col>\d{1,9})\): error (?P<code>TS\d+): (?P<msg>.*)"
)
_TSC_PRETTY_RE = re.compile(
    r"(?P<path>[^\s:][^\n]*?):(?P<line>\d{1,9}):(?P<col>\d{1,9}) - error (?P<code>TS\d+): (?P<msg>.*)"
)
_ESBUILD_RE = re.compile(
    r"(?:✘ \[ERROR\] )?(?P<path>[^\s:][^\n]*?):(?P<line>\d{1,9}):(?P<col>\d{1,9}): ERROR: (?P<msg>.*)"
)
_TSC_GENERAL_RE = re.compile(r"error (?P<code>TS\d+): (?P<msg>.*)")
_TSC_EXCERPT_RE = re.compile(r"(?P<num>\d{1,9}) (?P<text>.*)")
_TSC_RELATED_RE = re.compile(r"(?P<path>[^\s:][^\n]*?):(?P<line>\d{1,9}):(?P<col>\d{1,9})")


def _find_ts_compile(lines: list[str], loc: _Locator) -> tuple[list[RunError], list[str]]:
    """tsc / ts-node / esbuild compile errors in the user's code, and the messages of those elsewhere."""
    errors: list[RunError] = []
    elsewhere: list[str] = []
    seen: set[tuple[str, int, int]] = set()
    n = len(lines)
    seen_lines: set[str] = set()
    for i, line in enumerate(lines):
        if len(line) > _MAX_LINE or ("error" not in line and "ERROR" not in line) or line in seen_lines:
            continue
        seen_lines.add(line)
        text = line.strip()
        zero_based = False
        m = _TSC_PAREN_RE.fullmatch(text)
        pretty = False
        if m is None:
            m = _TSC_PRETTY_RE.fullmatch(text)
            pretty = m is not None
        if m is None:
            m = _ESBUILD_RE.fullmatch(text)
            zero_based = m is not None
        if m is None:
            general = _TSC_GENERAL_RE.fullmatch(text)  # "error TS5109: Option …" (configuration, no file)
            if general is not None:
                elsewhere.append(_clip(f"{general.group('code')}: {general.group('msg')}"))
            continue
        groups = m.groupdict()
        message = f"{groups['code']}: {groups['msg']}" if groups.get("code") else groups["msg"]
        # tsc's message chain continues on lines indented by two spaces ("  The types of 'x' are incompatible…")
        j = i + 1
        while not zero_based and j < n and j - i <= 10 and lines[j].startswith("  ") and len(lines[j]) <= _MAX_LINE:
            continued = lines[j].strip()
            if not continued or continued.startswith("at ") or _TSC_RELATED_RE.fullmatch(continued):
                break
            message += "\n" + lines[j][2:].rstrip()
            j += 1
        message = _clip(message)
        if not loc.is_user(groups["path"]):
            elsewhere.append(message)
            continue
        code_line = loc.code_line(int(groups["line"]), clamp_eof=True)
        if code_line is None:
            elsewhere.append(message)
            continue
        column = int(groups["col"]) - (0 if zero_based else 1)
        column = max(0, column)
        end_column = None
        related: tuple[Frame, ...] = ()
        if pretty:
            end_column, related = _tsc_pretty_details(lines, j, int(groups["line"]), column, loc)
        if end_column is None:
            text_line = loc.text(code_line)
            if text_line is not None:
                column = min(column, len(text_line))
                end_column = _js_token_end(text_line, column)
        error = RunError(message=message, line=code_line, column=column, end_column=end_column, related=related)
        if (message, code_line, column) not in seen:
            seen.add((message, code_line, column))
            errors.append(error)
            if len(errors) >= MAX_ERRORS:
                break
    return errors, elsewhere


def _tsc_pretty_details(
    lines: list[str], start: int, reported: int, column: int, loc: _Locator
) -> tuple[int | None, tuple[Frame, ...]]:
    """What tsc --pretty prints under an error: the ``N <source>`` excerpt with its ``~~~`` underline (→ the end
    column) and related locations (``  file:l:c`` + excerpt + ``    'b' is declared here.``)."""
    end_column: int | None = None
    related: list[Frame] = []
    n = len(lines)
    j = start
    limit = min(n, start + 40)
    while j < limit:
        line = lines[j]
        if len(line) > _MAX_LINE or _TSC_PRETTY_RE.fullmatch(line.strip()) or line.startswith("Found "):
            break  # the next error, or the summary
        excerpt = _TSC_EXCERPT_RE.fullmatch(line)
        if excerpt is not None and end_column is None and not related and j + 1 < n:
            if int(excerpt.group("num")) == reported and lines[j + 1].strip("~ ") == "":
                gutter = len(excerpt.group("num")) + 1
                span = _caret_span(lines[j + 1])
                if span is not None and span[0] - gutter == column and span[1] > span[0]:
                    end_column = span[1] - gutter
            j += 2
            continue
        where = _TSC_RELATED_RE.fullmatch(line.strip()) if line.startswith("  ") else None
        if where is not None:
            label = ""
            for k in range(j + 1, min(n, j + 4)):
                candidate = lines[k].strip()
                if candidate and not _TSC_EXCERPT_RE.fullmatch(candidate) and candidate.strip("~ "):
                    label = candidate
                    break
            rel_line = loc.code_line(int(where.group("line"))) if loc.is_user(where.group("path")) else None
            if rel_line is not None:
                related.append(Frame(line=rel_line, column=max(0, int(where.group("col")) - 1), label=_clip(label)))
        j += 1
    return end_column, tuple(related[:_MAX_RELATED])


def _find_typescript(lines: list[str], loc: _Locator) -> list[RunError]:
    compile_errors, elsewhere = _find_ts_compile(lines, loc)
    runtime = _find_js_runtime(lines, loc)
    # an unlocated runtime error next to compile errors is ts-node's "TSError: ⨯ Unable to compile": drop it
    errors = compile_errors + [e for e in runtime if e.line is not None or not compile_errors]
    if elsewhere and not any(e.line is not None for e in errors):
        errors = [RunError(message=elsewhere[0], line=None, column=None, end_column=None)]
    return errors
