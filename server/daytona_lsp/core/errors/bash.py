"""bash's ``file: line N: msg`` and dash's ``file: N: msg``."""

from __future__ import annotations

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
