"""Shared parts of the error parsers: the result types, output clean-up, where a path points (:class:`_Locator`)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..lines import LineIndex

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
    """0-based line in the code that was run (after subtracting ``line_offset``), or in the file ``path``."""
    column: int | None
    """0-based column (characters of the code line); None when unknown."""
    label: str
    """Short text for relatedInformation: ``"in main"``, ``"at foo"``, or ``""``."""
    path: str | None = None
    """None: the code that was run; else another workspace file, as the sandbox reported it (normalised)."""


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
    path: str | None = None
    """None: the error is in the code that was run; else in this other workspace file (as the sandbox reported it,
    normalised; ``line`` is then that file's 0-based line and ``column`` None)."""


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
        self,
        source_path: str | None,
        line_offset: int,
        line_count: int | None,
        code_lines: LineIndex | None,
        workspace_root: str | None = None,
    ) -> None:
        self.source = _normalize_path(source_path) if source_path else None
        root = _normalize_path(workspace_root) if workspace_root else ""
        self.workspace_prefix = root.rstrip("/") + "/" if root.startswith("/") else None
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

    def workspace_file(self, raw: str) -> str | None:
        """The normalised path of a workspace file other than the code that was run (library code excluded), or None."""
        if self.workspace_prefix is None:
            return None
        path = _normalize_path(raw)
        if not path.startswith(self.workspace_prefix) or len(path) > 1000 or self.is_user(raw):
            return None
        return None if _looks_like_library(path[len(self.workspace_prefix) - 1 :]) else path

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


@dataclass(frozen=True, slots=True)
class _Site:
    """One frame of a stack that is the user's: in the code that was run (``path`` None) or in a workspace file."""

    path: str | None
    line: int
    """0-based: a code line (``path`` None) or the file's line."""
    column: int | None
    label: str


def _elsewhere(message: str, sites: list[_Site]) -> list[RunError]:
    """``sites`` outermost first. When the innermost is in another workspace file: the error there, with the other
    sites (the call sites in the code that was run first of all) as related frames; else nothing."""
    if not sites or sites[-1].path is None:
        return []
    inner = sites[-1]
    related: list[Frame] = []
    seen = {(inner.path, inner.line)}
    for site in sites[:-1]:
        if (site.path, site.line) not in seen:
            seen.add((site.path, site.line))
            related.append(Frame(line=site.line, column=site.column, label=site.label, path=site.path))
    if len(related) > _MAX_RELATED:
        related = related[: _MAX_RELATED // 2] + related[-_MAX_RELATED // 2 :]
    error = RunError(message, line=inner.line, column=None, end_column=None, related=tuple(related), path=inner.path)
    return [error]


def _raised_in(sites: list[_Site]) -> tuple[Frame, ...]:
    """Where in another workspace file an error was raised (a related frame for the run's own diagnostic), if it was."""
    if not sites or sites[-1].path is None:
        return ()
    inner = sites[-1]
    return (Frame(line=inner.line, column=None, label=inner.label or "raised here", path=inner.path),)


def _finish(errors: list[RunError]) -> list[RunError]:
    out: list[RunError] = []
    seen: set[tuple[str, str | None, int | None, int | None]] = set()
    for error in errors:
        key = (error.message, error.path, error.line, error.column)
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
