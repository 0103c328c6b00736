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

import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from . import languages
from .languages import CodeLanguage
from .lines import LineIndex

__all__ = ["Frame", "RunError", "find_errors", "MAX_ERRORS"]

MAX_ERRORS = 100
"""At most this many :class:`RunError` values per run (a loop printing one error per iteration stays readable)."""

_MAX_RELATED = 50
_MAX_STACK = 200  # stack lines looked at per error (node prints 10 unless told otherwise)
_MAX_MESSAGE = 500
_MAX_LINE = 4000  # longer output lines are looked at only through their first _MAX_LINE characters


@dataclass(frozen=True, slots=True)
class Frame:
    """One location in the user's code."""

    line: int
    """0-based line in the code that was run (after subtracting ``line_offset``)."""
    column: int | None
    """0-based column (characters of the code line); None when unknown."""
    label: str
    """Short text for relatedInformation: ``"in main"``, ``"at foo"``, or ``""``."""


@dataclass(frozen=True, slots=True)
class RunError:
    """One error of a run, located in the user's code when possible."""

    message: str
    """``"ZeroDivisionError: division by zero"``, ``"TS2322: Type 'string' is not assignable…"``…"""
    line: int | None
    """0-based line of the innermost frame in the user's code; None when no location was found."""
    column: int | None
    end_column: int | None
    """Exclusive end column on ``line`` when known (a caret range ``^^^^``, a tsc ``~~~`` underline…)."""
    related: tuple[Frame, ...] = ()
    """The other frames in the user's code, outermost first."""


# --------------------------------------------------------------------------------------------------------------------
# shared helpers

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_STDIN_NAME_RE = re.compile(r"(?:<stdin>|<string>|<input>|<module>|\[stdin\]|\[eval\d*\](?:\.ts)?|/dev/stdin|-)")
_LIBRARY_MARKERS = (
    "site-packages",
    "dist-packages",
    "node_modules",
    "/lib/python",
    "/lib64/python",
    "/usr/lib/",
    "/usr/local/lib/",
    "<frozen ",
    "<__array_function__",
    "<anonymous>",
    "]-wrapper",  # node's "[stdin]-wrapper" / "[eval]-wrapper"
    "/etc/",
    "/usr/share/",
)
_LIBRARY_PREFIXES = ("node:", "internal/", "native ", "evalmachine.", "<frozen")


def _strip_ansi(text: str) -> str:
    return _ANSI_RE.sub("", text) if "\x1b" in text else text


def _split_lines(text: str) -> list[str]:
    # Only \n, \r\n and \r break lines (str.splitlines would also split on form feeds, \x1c… that tools print raw).
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


def _clip(message: str) -> str:
    message = message.strip()
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 1] + "…"


def _normalize_path(path: str) -> str:
    path = path.strip()
    if path.startswith("file://"):
        path = path[len("file://") :]
    return posixpath.normpath(path) if path else path


def _relative_tail(path: str) -> str:
    """A path without its leading "/", "./" and "../" parts: what two spellings of one file have in common."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    while parts and parts[0] == "..":
        parts.pop(0)
    return "/".join(parts)


def _is_stdin_name(path: str) -> bool:
    return _STDIN_NAME_RE.fullmatch(posixpath.basename(path) or path) is not None


def _looks_like_library(path: str) -> bool:
    if path.startswith(_LIBRARY_PREFIXES):
        return True
    return any(marker in path for marker in _LIBRARY_MARKERS)


class _Locator:
    """Decides which reported paths are the user's code and maps reported (1-based) lines to code lines."""

    def __init__(
        self, source_path: str | None, line_offset: int, line_count: int | None, code_lines: LineIndex | None
    ) -> None:
        self.source = _normalize_path(source_path) if source_path else None
        self.line_offset = max(0, int(line_offset))
        self.line_count = line_count if line_count is None or line_count >= 0 else 0
        self.code_lines = code_lines
        self._cache: dict[str, bool] = {}

    def is_user(self, path: str) -> bool:
        cached = self._cache.get(path)
        if cached is None:
            cached = self._cache[path] = self._is_user(path)
        return cached

    def _is_user(self, raw: str) -> bool:
        path = _normalize_path(raw)
        if not path or len(path) > 1000:
            return False
        if self.source is None:
            return _is_stdin_name(path) or not _looks_like_library(path)
        if path == self.source:
            return True
        if _is_stdin_name(path) and _is_stdin_name(self.source):
            return True
        # one of them relative (tsc prints paths relative to its working directory, "../tmp/x.ts"): compare the tails
        if not path.startswith("/") or not self.source.startswith("/"):
            a, b = _relative_tail(path), _relative_tail(self.source)
            if not a or not b:
                return False
            return a == b or a.endswith("/" + b) or b.endswith("/" + a)
        return False

    def code_line(self, reported: int, *, clamp_eof: bool = False) -> int | None:
        """0-based code line for a 1-based reported line; None when it falls outside the user's code."""
        line = reported - 1 - self.line_offset
        if line < 0:
            return None
        if self.line_count is not None and line >= self.line_count:
            # "unexpected end of file" errors point one line past the end: show them on the last line
            if clamp_eof and line == self.line_count and self.line_count > 0:
                return self.line_count - 1
            return None
        return line

    def text(self, line: int) -> str | None:
        return None if self.code_lines is None else self.code_lines.get(line)

    def statement_span(self, line: int) -> tuple[int | None, int | None]:
        """Columns of a code line's content without its indentation (when the code is known)."""
        text = self.text(line)
        if text is None or not text.strip():
            return None, None
        return len(text) - len(text.lstrip()), len(text.rstrip())


def _dedupe_frames(frames: Iterable[Frame], error_line: int) -> tuple[Frame, ...]:
    """One related frame per line (the outermost), none on the error's own line (recursion)."""
    out: list[Frame] = []
    seen: set[int] = {error_line}
    for frame in frames:
        if frame.line not in seen:
            seen.add(frame.line)
            out.append(frame)
    if len(out) > _MAX_RELATED:
        half = _MAX_RELATED // 2
        out = out[:half] + out[-half:]
    return tuple(out)


def _finish(errors: list[RunError]) -> list[RunError]:
    out: list[RunError] = []
    seen: set[tuple[str, int | None, int | None]] = set()
    for error in errors:
        key = (error.message, error.line, error.column)
        if key in seen:
            continue
        seen.add(key)
        out.append(error)
        if len(out) >= MAX_ERRORS:
            break
    return out


_ERROR_WORDS = (
    "error",
    "exception",
    "exit",
    "interrupt",
    "fatal",
    "panic",
    "fail",
    "traceback",
    "uncaught",
    "not found",
    "no such file",
    "denied",
    "segmentation fault",
    "killed",
    "aborted",
    "unbound variable",
    "cannot find module",
)
_ERROR_WORDS_RE = re.compile("|".join(re.escape(word) for word in _ERROR_WORDS))
_ERRORISH_RE = re.compile(
    r"\b[A-Z][A-Za-z0-9_]*(?:Error|Exception|Exit|Interrupt)\b"
    r"|\b(?:[Ee]rror|ERROR|[Ff]atal|FATAL|[Pp]anic|PANIC|FAILED|[Ff]ailed|Traceback|Uncaught)\b"
    r"|command not found|[Nn]o such file or directory|[Pp]ermission denied|[Ss]egmentation fault"
    r"|\bKilled\b|\bAborted\b|unbound variable|[Cc]annot find module|[Nn]ot found$"
)
_NOT_ERRORISH_RE = re.compile(r"\s*(?:at |File \"|\^|~|Node\.js v\d|\(Use `node --trace)")


def _last_error_line(lines: list[str]) -> str | None:
    for line in reversed(lines):
        text = line[:_MAX_LINE].strip()
        if not text:
            continue
        if not _ERROR_WORDS_RE.search(text.lower()) or _NOT_ERRORISH_RE.match(text):
            continue
        if _ERRORISH_RE.search(text):
            return _clip(text)
    return None


def _caret_span(marker: str) -> tuple[int, int] | None:
    """(start, end) of the ``^``/``~`` characters of a marker line, or None when the line is not one."""
    stripped = marker.rstrip()
    if not stripped:
        return None
    start = len(stripped) - len(stripped.lstrip())
    body = stripped[start:]
    if not body or body.strip("^~") != "":
        return None
    return start, len(stripped)


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
    for frame in block.frames:
        if not frame.user:
            continue
        is_syntax = frame is block.frames[-1] and not frame.label
        code_line = loc.code_line(frame.line, clamp_eof=is_syntax)
        if code_line is not None:
            located.append((frame, code_line))
    if not located:
        return [RunError(message=message, line=None, column=None, end_column=None)]
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
            related=_dedupe_frames(related, inner_line),
        )
    ]


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
    if stack_start >= 0:
        for index in range(stack_start, min(stack_end, stack_start + _MAX_STACK)):
            frame = _parse_js_stack_line(lines[index].strip())
            if frame is not None and loc.is_user(frame.path):
                frames.append(frame)

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
        return [RunError(message=message, line=None, column=None, end_column=None)] if message else []
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
            related=_dedupe_frames(related, first_line),
        )
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


# --------------------------------------------------------------------------------------------------------------------
# bash

_BASH_RE = re.compile(r"(?P<prefix>[^:\n]{1,300}): (?:-c: )?line (?P<line>\d{1,9}): (?P<msg>.*)")
_DASH_RE = re.compile(r"(?P<prefix>[^:\n]{1,300}): (?P<line>\d{1,9}): (?P<msg>.*)")
_FUNCTION_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_:-]{0,200}")
_SHELL_NAMES = frozenset({"bash", "sh", "dash", "-bash", "rbash"})


def _find_bash(lines: list[str], loc: _Locator) -> list[RunError]:
    errors: list[RunError] = []
    seen_bash: set[tuple[str, int]] = set()
    seen_lines: set[str] = set()
    for line in lines:
        if len(line) > _MAX_LINE or ": " not in line or line in seen_lines:
            continue
        seen_lines.add(line)
        m = _BASH_RE.fullmatch(line)
        dash = False
        if m is None:
            m = _DASH_RE.fullmatch(line)
            dash = m is not None
        if m is None:
            continue
        prefix = m.group("prefix")
        if dash:
            # dash's "file: N: msg" is only trusted for the script itself or the shell's own name
            if prefix not in _SHELL_NAMES and not (loc.source and loc.is_user(prefix)):
                continue
        elif not (prefix in _SHELL_NAMES or loc.is_user(prefix) or _FUNCTION_NAME_RE.fullmatch(prefix)):
            continue  # "main: line 6:" is the function main of the script; "other.sh: line 2:" another script
        message = m.group("msg").strip()
        code_line = loc.code_line(int(m.group("line")), clamp_eof=True)
        if code_line is None:
            continue
        if message.startswith("`") and message.endswith("'") and errors and errors[-1].line == code_line:
            continue  # bash echoes the offending line after "syntax error near unexpected token"
        column, end_column = loc.statement_span(code_line)
        if (message, code_line) not in seen_bash:
            seen_bash.add((message, code_line))
            errors.append(RunError(message=_clip(message), line=code_line, column=column, end_column=end_column))
            if len(errors) >= MAX_ERRORS:
                break
    return errors


def _find_typescript(lines: list[str], loc: _Locator) -> list[RunError]:
    compile_errors, elsewhere = _find_ts_compile(lines, loc)
    runtime = _find_js_runtime(lines, loc)
    # an unlocated runtime error next to compile errors is ts-node's "TSError: ⨯ Unable to compile": drop it
    errors = compile_errors + [e for e in runtime if e.line is not None or not compile_errors]
    if elsewhere and not any(e.line is not None for e in errors):
        errors = [RunError(message=elsewhere[0], line=None, column=None, end_column=None)]
    return errors


_PARSERS: dict[str, Callable[[list[str], _Locator], list[RunError]]] = {
    "python": _find_python,
    "javascript": _find_js_runtime,
    "typescript": _find_typescript,
    "bash": _find_bash,
}
"""The parsers a :class:`~daytona_lsp.core.languages.Language` entry names in ``error_parser``."""


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
) -> list[RunError]:
    """The errors a run's ``output`` reports, located in the code that was run where possible.

    ``source_path``: the code's file name as the interpreter reports it (``<stdin>``, ``/tmp/x/main.py``…);
    None recognises the usual ones. ``line_offset``: lines the backend put before the code. ``line_count``: the
    code's line count; locations outside it are dropped. ``code``: the code itself (optional) — with it, columns
    account for the indentation that tracebacks strip, and lines without a column marker get the span of the
    statement. Columns count characters of the code line.

    Clean output gives ``[]``; an error without a location gives one :class:`RunError` with ``line=None``. Never
    raises, whatever the input.
    """
    try:
        return _find_errors(output, language, source_path, line_offset, line_count, code)
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
) -> list[RunError]:
    if not isinstance(output, str) or not output:
        return []
    code_lines = LineIndex(code) if isinstance(code, str) else None  # lines looked up only where errors point
    if line_count is None and code_lines is not None:
        line_count = max(len(code_lines), 1)
    loc = _Locator(source_path if isinstance(source_path, str) else None, line_offset, line_count, code_lines)
    lines = _split_lines(_strip_ansi(output))

    entry = languages.by_name(language) if isinstance(language, str) else None
    errors = _PARSERS[entry.error_parser](lines, loc) if entry is not None else []

    if any(e.line is not None for e in errors):
        return _finish(errors)
    if errors:
        return _finish(errors[-1:])
    fallback = _last_error_line(lines)
    return [RunError(message=fallback, line=None, column=None, end_column=None)] if fallback else []
