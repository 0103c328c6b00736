"""The shell command one run sends to the sandbox's toolbox (no SDK here: pure string building).

The code travels base64-encoded inside ``sh -c "printf %s <b64> | base64 -d | node -"`` (bash and TypeScript:
``bash -c "source <(echo <b64> | base64 -d)"``): no quotes, ``$`` or escapes inside, so it works on daemons that
run commands through a shell (current) and on those that split the command on spaces (older).
"""

from __future__ import annotations

import re
import shlex
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from daytona_lsp.core.daytona.shell import b64
from daytona_lsp.core.daytona.stdin import StdinPlan
from daytona_lsp.core.environment import CodeLanguage, RunSpec

if TYPE_CHECKING:
    from daytona_lsp.core.daytona.tree import Trailer

MAX_INLINE_COMMAND = 120_000
"""Longest command sent inline (a single exec argument is limited to 128 KiB on Linux); longer code is uploaded."""


@dataclass(frozen=True)
class Command:
    command: str
    source_path: str | None
    line_offset: int = 0
    upload: tuple[str, bytes] | None = None
    trailer: Trailer | None = None
    """Set when the command prints a change listing after the program's output (:mod:`.tree`)."""


def build_command(spec: RunSpec, timeout: int, stdin: StdinPlan | None = None) -> Command:
    """The one shell command that runs ``spec``; see the module docstring for why it looks like this.

    Inside ``bash -c "…"`` there are no quotes, ``$``, backslashes or backticks: a shell (current daemons) and a
    plain split on spaces (older daemons) hand bash the same string. ``timeout`` (when the sandbox has it) ends the
    code at the run's timeout so that the output printed so far comes back with exit 124; the daemon's own timeout,
    a little later, is only a backstop (it answers 408 and drops the output). The program's stdin is the preset
    ``spec.stdin`` or nothing (EOF at once), never the code; with a ``stdin`` plan it is fed under the helper of
    :mod:`daytona_lsp.core.daytona.stdin` (interactive input, EOF at the first read, the wait announced).
    """
    code_b64 = b64(spec.code)
    limited = LIMITED.format(timeout=timeout)
    if spec.language in ("python", "javascript") and is_plain(spec) and stdin is None:
        # code on stdin, as Daytona's own code-run does (tracebacks say <stdin> / [stdin] with the code's lines)
        runner = "python3 -u -" if spec.language == "python" else "node -"
        source_path = "<stdin>" if spec.language == "python" else "[stdin]"
        command = (
            f'sh -c "printf %s {code_b64} | base64 -d | {{ if command -v timeout >/dev/null; '
            f'then exec timeout -k 2 {timeout} {runner}; else exec {runner}; fi; }}"'
        )
        script = f"printf %s {code_b64} | base64 -d | {{ {limited} {runner}; }}\n"
        if len(command) <= MAX_INLINE_COMMAND:
            return Command(command, source_path)
    else:
        # a file (code of any size) run with the spec's arguments, environment, directory and stdin; TypeScript goes
        # through ts-node -T as Daytona's own code-run does; the file is removed when the run ends
        suffix, runner = FILE_RUNNERS[spec.language]
        tag = uuid.uuid4().hex[:12]
        source_path = f"/tmp/daytona-lsp-{tag}{suffix}"
        lines = [
            f"__dlsp_f={source_path}",
            "trap 'rm -f \"$__dlsp_f\"' EXIT",
            f'printf %s {code_b64} | base64 -d > "$__dlsp_f"',
        ]
        return package("\n".join(lines + program_lines(spec, runner, timeout, stdin, tag)) + "\n", source_path)
    return _uploaded(script, source_path)


def program_lines(
    spec: RunSpec, runner: str, timeout: int, stdin: StdinPlan | None = None, tag: str | None = None
) -> list[str]:
    """The script lines that run the file ``$__dlsp_f`` with ``runner``: the spec's environment, directory,
    arguments and stdin (with a ``stdin`` plan: fed by :mod:`daytona_lsp.core.daytona.stdin`), ended at ``timeout``."""
    lines = [f"export {name}={shlex.quote(value)}" for name, value in spec.env.items()]
    if spec.cwd:
        lines.append(f"cd -- {shlex.quote(spec.cwd)} || exit 2")
    argv = "".join(" " + shlex.quote(arg) for arg in spec.args)
    limited = LIMITED.format(timeout=timeout)
    program = f'{limited} {runner} "$__dlsp_f"{argv}'
    if stdin is not None:
        lines += stdin.script(limited, f'{runner} "$__dlsp_f"{argv}', spec.stdin, tag or uuid.uuid4().hex[:12])
    elif spec.stdin is None:
        lines.append(f"{program} </dev/null")
    else:
        lines.append(f"printf %s {b64(spec.stdin)} | base64 -d | {program}")
    return lines


def package(script: str, source_path: str | None, *, trailer: Trailer | None = None) -> Command:
    """The command that runs a bash ``script``: inline (base64, no quotes) when it fits in one argument."""
    command = f'bash -c "source <(echo {b64(script)} | base64 -d)"'
    if len(command) <= MAX_INLINE_COMMAND:
        return Command(command, source_path, trailer=trailer)
    return _uploaded(script, source_path, trailer)


def _uploaded(script: str, source_path: str | None, trailer: Trailer | None = None) -> Command:
    """Too long for one argument: upload the script (it deletes itself first), then run it."""
    path = f"/tmp/daytona-lsp-{uuid.uuid4().hex[:12]}.sh"
    script = f"rm -f {path}\n" + script
    return Command(f"bash {path}", source_path, upload=(path, script.encode("utf-8")), trailer=trailer)


def is_plain(spec: RunSpec) -> bool:
    """A snippet with no arguments, stdin, directory or environment of its own (the daemon's code-run can run it)."""
    return not (spec.args or spec.stdin is not None or spec.cwd or spec.env)


def spec_problem(spec: RunSpec) -> str | None:
    """Why the sandbox cannot run ``spec`` as given (``None`` when it can)."""
    bad = [name for name in spec.env if not _ENV_NAME.fullmatch(name)]
    if bad:
        return f"Invalid environment variable name(s) for the run: {', '.join(map(repr, bad))}"
    texts = [("an argument", arg) for arg in spec.args] + [("an environment value", v) for v in spec.env.values()]
    texts += [("the working directory", spec.cwd or "")]
    for what, text in texts:
        if "\0" in text:
            return f"{what[0].upper()}{what[1:]} contains a NUL character, which a program cannot receive."
    return None


FILE_RUNNERS: dict[CodeLanguage, tuple[str, str]] = {
    "python": (".py", "python3 -u"),
    "javascript": (".js", "node"),
    "bash": (".sh", "bash"),
    "typescript": (".ts", "npx ts-node -T"),
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


LIMITED = "$(command -v timeout >/dev/null && echo timeout -k 2 {timeout})"
"""Expands to a ``timeout`` prefix when the sandbox has the tool, to nothing otherwise."""
