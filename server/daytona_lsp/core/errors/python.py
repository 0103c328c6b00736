"""Python tracebacks, SyntaxError carets and IPython ``Cell In[N]`` tracebacks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .common import (
    _MAX_LINE,
    Frame,
    RunError,
    _caret_span,
    _clip,
    _dedupe_frames,
    _elsewhere,
    _Locator,
    _raised_in,
    _Site,
)

# --------------------------------------------------------------------------------------------------------------------
# python

_PY_FILE_RE = re.compile(r'(?P<indent>[ ]*)File "(?P<path>[^"\n]*)", line (?P<line>\d{1,9})(?:, in (?P<fn>.*))?')
_PY_IPY_CELL_RE = re.compile(
    r"(?:Cell In\s?\[\d+\]|Input In\s?\[\d+\]|<ipython-input-[^>]*>)(?:, line (?P<line>\d{1,9}))?(?:,? in (?P<fn>.*))?"
)
_PY_IPY_FILE_RE = re.compile(r"File (?P<path>\S.*?):(?P<line>\d{1,9})(?:, in (?P<fn>.*))?")
_PY_IPY_ARROW_RE = re.compile(r"-*> ?(?P<line>\d{1,9}) ")
_PY_EXC_RE = re.compile(r"(?P<name>[A-Za-z_][\w.]*)(?::(?: .*)?)?")
_PY_IPY_HEADER_RE = re.compile(r"(?P<name>[A-Za-z_][\w.]*)\s+Traceback \(most recent call last\)")


@dataclass(slots=True)
class _PyFrame:
    path: str
    line: int
    label: str
    indent: int
    user: bool
    source: str | None = None
    marker: str | None = None
    ipython: bool = False


@dataclass(slots=True)
class _PyBlock:
    frames: list[_PyFrame] = field(default_factory=list)
    message: str | None = None
    ipython_name: str | None = None


def _python_blocks(lines: list[str], loc: _Locator) -> list[_PyBlock]:
    blocks: list[_PyBlock] = []
    current: _PyBlock | None = None
    last: _PyFrame | None = None
    skipping_group_members = False

    for raw in lines:
        line = raw if len(raw) <= _MAX_LINE else raw[:_MAX_LINE]
        stripped = line.strip()
        # exception groups (3.11+): "  + Exception Group Traceback", "  |   File …", "  +-+---- 1 ----"
        if stripped[:1] in ("+", "|"):
            if stripped.startswith("+-"):
                skipping_group_members = True  # the member exceptions follow: the group itself is reported
                continue
            if skipping_group_members:
                continue
            if stripped.startswith("| ") or stripped == "|":
                line = stripped[2:]
                stripped = line.strip()
            elif stripped.startswith("+ Exception Group Traceback"):
                stripped = stripped[2:]
        else:
            skipping_group_members = False

        if stripped.endswith(
            ("Traceback (most recent call last):", "Exception Group Traceback (most recent call last):")
        ):
            current, last = _PyBlock(), None
            blocks.append(current)
            continue
        header = _PY_IPY_HEADER_RE.fullmatch(stripped) if "Traceback (most recent" in stripped else None
        if header is not None:
            current, last = _PyBlock(ipython_name=header.group("name")), None
            blocks.append(current)
            continue

        m = _PY_FILE_RE.fullmatch(line.rstrip()) if 'File "' in line else None
        if m is not None:
            if current is None or current.message is not None:
                # a SyntaxError reported without a traceback: "  File "x.py", line 2" + source + caret
                current = _PyBlock()
                blocks.append(current)
            path = m.group("path")
            fn = m.group("fn")
            last = _PyFrame(
                path=path,
                line=int(m.group("line")),
                label=f"in {fn.strip()}" if fn else "",
                indent=len(m.group("indent")),
                user=loc.is_user(path),
            )
            current.frames.append(last)
            continue

        if current is not None and current.message is None and current.ipython_name is not None:
            cell = _PY_IPY_CELL_RE.fullmatch(stripped)
            ipy_file = None if cell else _PY_IPY_FILE_RE.fullmatch(stripped)
            if cell is not None or ipy_file is not None:
                found = cell if cell is not None else ipy_file
                assert found is not None
                fn_text = (found.group("fn") or "").strip()
                if fn_text.endswith(")") and "(" in fn_text:
                    fn_text = fn_text[: fn_text.index("(")]  # "f(s)" → "f"
                path = "<stdin>" if cell is not None else found.group("path")
                last = _PyFrame(
                    path=path,
                    line=int(found.group("line") or 0),
                    label=f"in {fn_text}" if fn_text else "",
                    indent=0,
                    user=cell is not None or loc.is_user(path),
                    ipython=True,
                )
                current.frames.append(last)
                continue
            arrow = _PY_IPY_ARROW_RE.match(stripped)
            if arrow is not None and last is not None and last.ipython:
                if last.line == 0:  # old IPython: "<ipython-input-1-…> in <module>" + "----> 6 f()"
                    last.line = int(arrow.group("line"))
                continue

        if current is None or current.message is not None:
            continue
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if last is not None and indent > last.indent and not last.ipython:
            if stripped.startswith("[Previous line repeated"):
                continue
            if last.source is None:
                last.source = line
            elif last.marker is None and _caret_span(line) is not None:
                last.marker = line
            continue
        if indent == 0 and (current.frames or current.ipython_name) and _PY_EXC_RE.fullmatch(stripped):
            current.message = _clip(stripped)
            last = None
    return [b for b in blocks if b.message is not None]


def _python_columns(frame: _PyFrame, line: int, loc: _Locator) -> tuple[int | None, int | None]:
    code = loc.text(line)
    if code is None:
        return None, None
    if frame.source is None or frame.ipython:
        return loc.statement_span(line)
    echo_indent = frame.indent + 2
    shown = frame.source[echo_indent:] if len(frame.source) >= echo_indent else frame.source.lstrip()
    if shown.strip() != code.strip():
        return loc.statement_span(line)  # the echoed line is not this code line (edited file, other mapping)
    if frame.marker is None:
        return loc.statement_span(line)
    span = _caret_span(frame.marker)
    if span is None:
        return loc.statement_span(line)
    shift = (len(code) - len(code.lstrip())) - (len(shown) - len(shown.lstrip()))
    start = span[0] - echo_indent + shift
    end = span[1] - echo_indent + shift
    content_end = len(code.rstrip())
    if start < 0 or start > content_end:
        return loc.statement_span(line)
    return start, max(start + 1, min(end, max(content_end, start + 1)))


def _last_traceback_start(lines: list[str]) -> int:
    """Index of the last top-level traceback header (member tracebacks of a group start with "|"), or 0."""
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if "Traceback (most recent call last)" in line and not line.lstrip().startswith("|"):
            return index
    return 0


def _find_python(lines: list[str], loc: _Locator) -> list[RunError]:
    # only the last exception is reported: start at its header (large outputs are mostly the program's own prints)
    blocks = _python_blocks(lines[_last_traceback_start(lines) :], loc)
    if not blocks:
        return []
    block = blocks[-1]
    message = block.message or ""
    if block.ipython_name and not message.startswith(block.ipython_name):
        message = f"{block.ipython_name}: {message}"
    located: list[tuple[_PyFrame, int]] = []
    sites: list[_Site] = []  # the user's frames, in the code that was run and in other workspace files
    for frame in block.frames:
        if not frame.user:
            other = loc.workspace_file(frame.path) if not frame.ipython else None
            if other is not None and frame.line > 0:
                sites.append(_Site(other, frame.line - 1, None, frame.label))
            continue
        is_syntax = frame is block.frames[-1] and not frame.label
        code_line = loc.code_line(frame.line, clamp_eof=is_syntax)
        if code_line is not None:
            located.append((frame, code_line))
            sites.append(_Site(None, code_line, _python_columns(frame, code_line, loc)[0], frame.label))
    elsewhere = _elsewhere(message, sites)
    if not located:
        return [RunError(message=message, line=None, column=None, end_column=None), *elsewhere]
    inner, inner_line = located[-1]
    column, end_column = _python_columns(inner, inner_line, loc)
    outer: dict[int, _PyFrame] = {}
    for frame, code_line in located[:-1]:
        if code_line != inner_line and code_line not in outer:
            outer[code_line] = frame
    related = [Frame(line=ln, column=_python_columns(f, ln, loc)[0], label=f.label) for ln, f in outer.items()]
    return [
        RunError(
            message=message,
            line=inner_line,
            column=column,
            end_column=end_column,
            related=_dedupe_frames(related, inner_line) + _raised_in(sites),
        ),
        *elsewhere,
    ]
