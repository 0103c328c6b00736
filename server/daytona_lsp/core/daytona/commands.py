"""The shell command one run sends to the sandbox's toolbox (no SDK here: pure string building).

The code travels base64-encoded inside ``sh -c "printf %s <b64> | base64 -d | node -"`` (bash and TypeScript:
``bash -c "source <(echo <b64> | base64 -d)"``): no quotes, ``$`` or escapes inside, so it works on daemons that
run commands through a shell (current) and on those that split the command on spaces (older).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass

from daytona_lsp.core.environment import CodeLanguage

MAX_INLINE_COMMAND = 120_000
"""Longest command sent inline (a single exec argument is limited to 128 KiB on Linux); longer code is uploaded."""


@dataclass(frozen=True)
class Command:
    command: str
    source_path: str | None
    line_offset: int = 0
    upload: tuple[str, bytes] | None = None


def build_command(code: str, language: CodeLanguage, timeout: int) -> Command:
    """The one shell command that runs ``code``; see the module docstring for why it looks like this.

    Inside ``bash -c "…"`` there are no quotes, ``$``, backslashes or backticks: a shell (current daemons) and a
    plain split on spaces (older daemons) hand bash the same string. ``timeout`` (when the sandbox has it) ends the
    code at the run's timeout so that the output printed so far comes back with exit 124; the daemon's own timeout,
    a little later, is only a backstop (it answers 408 and drops the output).
    """
    b64 = base64.b64encode(code.encode("utf-8", "surrogateescape")).decode("ascii")
    if language in ("python", "javascript"):
        # code on stdin, as Daytona's own code-run does (tracebacks say <stdin> / [stdin] with the code's lines)
        runner = "python3 -u -" if language == "python" else "node -"
        source_path = "<stdin>" if language == "python" else "[stdin]"
        command = (
            f'sh -c "printf %s {b64} | base64 -d | {{ if command -v timeout >/dev/null; '
            f'then exec timeout -k 2 {timeout} {runner}; else exec {runner}; fi; }}"'
        )
        script = f"printf %s {b64} | base64 -d | {{ {LIMITED.format(timeout=timeout)} {runner}; }}\n"
        if len(command) <= MAX_INLINE_COMMAND:
            return Command(command, source_path)
    else:
        # bash runs a file (code of any size; its stdin stays the run's), TypeScript goes through ts-node -T on a
        # file as Daytona's own code-run does; the file is removed when the run ends
        suffix, runner = (".sh", "bash") if language == "bash" else (".ts", "npx ts-node -T")
        source_path = f"/tmp/daytona-lsp-{uuid.uuid4().hex[:12]}{suffix}"
        body = (
            f"__dlsp_f={source_path}\n"
            "trap 'rm -f \"$__dlsp_f\"' EXIT\n"
            f'printf %s {b64} | base64 -d > "$__dlsp_f"\n'
            f'{LIMITED.format(timeout=timeout)} {runner} "$__dlsp_f"\n'
        )
        script = body
        encoded = base64.b64encode(script.encode("utf-8")).decode("ascii")
        command = f'bash -c "source <(echo {encoded} | base64 -d)"'
        if len(command) <= MAX_INLINE_COMMAND:
            return Command(command, source_path)
    # Too long for one argument: upload the script (it deletes itself first), then run it.
    path = f"/tmp/daytona-lsp-{uuid.uuid4().hex[:12]}.sh"
    script = f"rm -f {path}\n" + script
    return Command(f"bash {path}", source_path, upload=(path, script.encode("utf-8")))


LIMITED = "$(command -v timeout >/dev/null && echo timeout -k 2 {timeout})"
"""Expands to a ``timeout`` prefix when the sandbox has the tool, to nothing otherwise."""
