"""Node's ``file:N`` + caret headers and ``at fn (file:N:C)`` stack lines."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .common import (
    _MAX_LINE,
    _MAX_STACK,
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
# javascript / typescript runtime (node, ts-node, tsx)

_JS_HEADER_RE = re.compile(r"(?P<path>\S[^\n]*?):(?P<line>\d{1,9})")
_JS_CAUSE_ELISION_RE = re.compile(r"\.\.\. \d{1,9} lines? matching cause stack trace \.\.\.")
_JS_ERROR_NAME_RE = re.compile(r"(?:Uncaught )?\[?[A-Za-z_$][\w$.]*(?:Error|Exception|Rejection)\b.*|\w*Error\b.*")


@dataclass(slots=True)
class _JsFrame:
    path: str
    line: int
    column: int  # 1-based as printed
    label: str


def _parse_js_stack_line(stripped: str) -> _JsFrame | None:
    """``at fn (path:L:C)`` / ``at path:L:C`` / ``at async fn (path:L:C)`` (stripped of indentation)."""
    body = stripped[3:]
    label = ""
    location = body
    if body.endswith(")"):
        open_at = body.find(" (")
        if open_at > 0:
            label = "at " + body[:open_at].strip()
            location = body[open_at + 2 : -1]
    parts = location.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    if len(parts[1]) > 9 or len(parts[2]) > 9:
        return None
    if label.startswith("at async "):
        label = "at " + label[len("at async ") :]
    return _JsFrame(path=parts[0], line=int(parts[1]), column=int(parts[2]), label=label)


def _utf16_to_index(text: str, utf16_column: int) -> int:
    """Character index of a UTF-16 column (V8 reports columns in UTF-16 code units)."""
    if text.isascii():
        return utf16_column
    units = 0
    for index, char in enumerate(text):
        if units >= utf16_column:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
    return len(text)


def _find_js_runtime(lines: list[str], loc: _Locator) -> list[RunError]:
    """The last uncaught error: node's ``file:N`` header (+ source + caret) and/or its ``at …`` stack."""
    n = len(lines)
    # one walk: the last header, and every stack block with its indentation (an Error's cause is indented deeper)
    header: tuple[int, str, int, tuple[int, int] | None] | None = None  # (index, path, line, caret span)
    blocks: list[tuple[int, int]] = []  # top-level stack blocks: (start, end)
    i = 0
    while i < n:
        line = lines[i]
        if len(line) > _MAX_LINE:
            i += 1
            continue
        if line[:1] in (" ", "\t") and line.lstrip().startswith("at "):
            frame_start = i
            indent = len(line) - len(line.lstrip())
            while i < n and lines[i][:1] in (" ", "\t"):
                body = lines[i].lstrip()
                if not (body.startswith("at ") or _JS_CAUSE_ELISION_RE.fullmatch(body)):
                    break
                i += 1
            if indent <= 4:
                blocks.append((frame_start, i))
            continue
        m = _JS_HEADER_RE.fullmatch(line) if line[-1:].isdigit() and line[:1] not in (" ", "\t") else None
        if m is not None and i + 2 < n:
            caret = _caret_span(lines[i + 2])
            if caret is not None and "^" in lines[i + 2]:
                header = (i, m.group("path"), int(m.group("line")), caret)
                i += 3
                continue
        i += 1

    if header is None and not blocks:
        return []
    stack_start = stack_end = -1
    if header is not None:
        # the fatal error's own stack follows its header; stacks before it were logged errors
        after = [block for block in blocks if block[0] > header[0]]
        if after:
            stack_start, stack_end = after[0]
    elif blocks:
        stack_start, stack_end = blocks[-1]

    message = _js_message(lines, header, stack_start)
    frames: list[_JsFrame] = []
    sites: list[_Site] = []  # innermost first here; reversed for _elsewhere
    if stack_start >= 0:
        for index in range(stack_start, min(stack_end, stack_start + _MAX_STACK)):
            frame = _parse_js_stack_line(lines[index].strip())
            if frame is None:
                continue
            if loc.is_user(frame.path):
                frames.append(frame)
                code_line = loc.code_line(frame.line)
                if code_line is not None:
                    sites.append(_Site(None, code_line, max(0, frame.column - 1), frame.label))
            elif (other := loc.workspace_file(frame.path)) is not None and frame.line > 0:
                sites.append(_Site(other, frame.line - 1, max(0, frame.column - 1), frame.label))
    if not sites and header is not None and (other := loc.workspace_file(header[1])) is not None and header[2] > 0:
        sites.append(_Site(other, header[2] - 1, None, ""))  # thrown at load time in another file: no stack of ours
    sites.reverse()
    elsewhere = _elsewhere(message, sites)

    located: list[tuple[int, int | None, int | None, str]] = []  # innermost first: (line, col, end, label)
    for frame in frames:
        code_line = loc.code_line(frame.line)
        if code_line is None:
            continue
        frame_column = max(0, frame.column - 1)
        text = loc.text(code_line)
        if text is not None:
            frame_column = min(_utf16_to_index(text, frame_column), len(text))
        located.append((code_line, frame_column, None, frame.label))

    if header is not None and loc.is_user(header[1]):
        header_line = loc.code_line(header[2], clamp_eof=True)
        if header_line is not None:
            caret_start, caret_end = header[3] or (0, 0)
            source = lines[header[0] + 1]
            shift = 0
            text = loc.text(header_line)
            if text is not None and source.strip() == text.strip():
                shift = (len(text) - len(text.lstrip())) - (len(source) - len(source.lstrip()))
            start, end = caret_start + shift, caret_end + shift
            if located and located[0][0] == header_line:
                # the stack's column is exact (source-mapped for TypeScript); keep the caret's width
                col = located[0][1]
                width = end - start if end - start > 1 else 0
                located[0] = (header_line, col, col + width if width and col is not None else None, located[0][3])
            else:
                # the throw site is not on the stack (SyntaxError, or a stack without user frames at the top)
                located.insert(0, (header_line, max(0, start), max(start + 1, end), ""))

    if not located:
        return [*([RunError(message=message, line=None, column=None, end_column=None)] if message else []), *elsewhere]
    first_line, column, end_column, _label = located[0]
    if end_column is None and column is not None:
        first_text = loc.text(first_line)
        if first_text is not None:
            end_column = _js_token_end(first_text, column)
    related = [Frame(line=ln, column=col, label=label) for ln, col, _end, label in reversed(located[1:])]
    return [
        RunError(
            message=message,
            line=first_line,
            column=column,
            end_column=end_column,
            related=_dedupe_frames(related, first_line) + _raised_in(sites),
        ),
        *elsewhere,
    ]


def _js_token_end(text: str, column: int) -> int | None:
    """End of the identifier/token starting at ``column`` (a V8 position points at its start)."""
    if column >= len(text):
        return None
    end = column
    while end < len(text) and (text[end].isalnum() or text[end] in "_$"):
        end += 1
    return end if end > column else column + 1


def _js_message(lines: list[str], header: tuple[int, str, int, tuple[int, int] | None] | None, stack_start: int) -> str:
    if stack_start >= 0:
        # walk up from the stack over the message block (it may span lines: "Require stack:\n- /x.js")
        best = None
        index = stack_start - 1
        floor = max(-1, stack_start - 30, header[0] + 2 if header is not None else -1)
        while index > floor and lines[index].strip():
            text = lines[index].strip()
            if len(text) <= _MAX_LINE and _JS_ERROR_NAME_RE.fullmatch(text):
                best = text
            index -= 1
        if best is None and stack_start - 1 > floor:
            best = lines[stack_start - 1].strip() or None
        if best:
            return _clip(best)
    if header is not None:
        for index in range(header[0] + 3, min(len(lines), header[0] + 8)):
            text = lines[index].strip()
            if text:
                if _JS_ERROR_NAME_RE.fullmatch(text[:_MAX_LINE]):
                    return _clip(text)
                return _clip("Uncaught " + text)
    return ""
