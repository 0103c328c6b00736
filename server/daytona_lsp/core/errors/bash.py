"""bash's ``file: line N: msg`` and dash's ``file: N: msg``; with a workspace, also bash's errors in the files the
script sourced (``source ./lib.sh`` → ``./lib.sh: line 3: …``, a path relative to the run's directory, which is the
script's own by default)."""

from __future__ import annotations

import posixpath
import re

from .common import _MAX_LINE, MAX_ERRORS, RunError, _clip, _Locator

# --------------------------------------------------------------------------------------------------------------------
# bash

_BASH_RE = re.compile(r"(?P<prefix>[^:\n]{1,300}): (?:-c: )?line (?P<line>\d{1,9}): (?P<msg>.*)")
_DASH_RE = re.compile(r"(?P<prefix>[^:\n]{1,300}): (?P<line>\d{1,9}): (?P<msg>.*)")
_FUNCTION_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_:-]{0,200}")
_SHELL_NAMES = frozenset({"bash", "sh", "dash", "-bash", "rbash"})


def _find_bash(lines: list[str], loc: _Locator) -> list[RunError]:
    errors: list[RunError] = []
    seen_bash: set[tuple[str, int]] = set()
    seen_sourced: set[tuple[str, str]] = set()
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
            # "main: line 6:" is the function main of the script; "other.sh: line 2:" another script, reported there
            # when it is a file of the workspace
            sourced = _sourced_file(prefix, loc)
            message = m.group("msg").strip()
            if sourced is not None and (message, sourced) not in seen_sourced:
                seen_sourced.add((message, sourced))
                line_there = int(m.group("line")) - 1
                errors.append(RunError(_clip(message), line=line_there, column=None, end_column=None, path=sourced))
            continue
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


def _sourced_file(prefix: str, loc: _Locator) -> str | None:
    """The workspace file a bash error's prefix names (relative: to the script's directory), or None."""
    if "/" not in prefix and not prefix.endswith((".sh", ".bash")):
        return None  # "foo: line 2:" is a function of the script, not a file
    if not prefix.startswith("/") and loc.source is not None and loc.source.startswith("/"):
        prefix = posixpath.join(posixpath.dirname(loc.source), prefix)
    return loc.workspace_file(prefix)
