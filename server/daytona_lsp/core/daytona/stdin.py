"""A Daytona run's stdin when it is not just a preset: interactive input through the session command's own stdin
(``send_session_command_input``), and the same "waiting for input" / "stdin is closed" signals as the local sandbox.

The daemon gives a session command a stdin pipe that stays open (``runAsync``) and no way to close it, and sends its
output to the log a line at a time. So the run's script starts the program under a small helper in the sandbox
(:mod:`.stdin_helper`, with the text of :mod:`daytona_lsp.core.stdin_wait`): it relays the command's stdin to the
program until a per-run EOF token line, and announces on stderr, as lines of a per-run mark, when the program waits
on its stdin. :class:`MarkerFilter` takes those lines out of the output; :class:`SessionInput` is the channel's sink.
The code never travels on the program's stdin: it is a file. Without ``python3`` in the sandbox the program reads
the command's stdin directly (interactive) or ``/dev/null`` (no input), without the signals.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from daytona_lsp.core.daytona.shell import b64
from daytona_lsp.core.environment import InputClosed, RunSpec

if TYPE_CHECKING:
    from daytona import AsyncSandbox

log = logging.getLogger(__name__)

WAITING = "waiting"
STDIN_CLOSED = "stdin-closed"
_IMPORT_LINE = re.compile(r"^from daytona_lsp\.core\.stdin_wait import .*$", re.MULTILINE)


@dataclass(frozen=True)
class StdinPlan:
    """How one run's program gets its stdin under the helper."""

    mark: str
    eof_token: str
    interactive: bool

    @classmethod
    def for_spec(cls, spec: RunSpec) -> StdinPlan | None:
        """Interactive with an input channel; ``closed`` (EOF at the first read, announced) with no input at all;
        ``None`` with a preset only (the program reads it from a plain pipe)."""
        if spec.input is None and spec.stdin is not None:
            return None
        return cls(
            mark=f"daytona-lsp-{secrets.token_hex(8)}",
            eof_token=f"daytona-lsp-eof-{secrets.token_hex(16)}",
            interactive=spec.input is not None,
        )

    def script(self, limited: str, program: str, preset: str | None, tag: str) -> list[str]:
        """Shell lines that run ``program`` (shell words; ``limited``: the timeout prefix) with its stdin planned so."""
        helper = f"/tmp/daytona-lsp-{tag}-stdin.py"
        preset_file = f"/tmp/daytona-lsp-{tag}-stdin.txt" if preset is not None else "-"
        lines = [f"printf %s {b64(helper_source())} | base64 -d > {helper}"]  # it removes itself
        if preset is not None:
            lines.append(f"printf %s {b64(preset)} | base64 -d > {preset_file}")
        mode = "interactive" if self.interactive else "closed"
        return [
            *lines,
            "if command -v python3 >/dev/null; then",
            f"  {limited} python3 {helper} {self.mark} {self.eof_token} {preset_file} {mode} -- {program}",
            "else",
            f"  rm -f {helper} {preset_file}",
            f"  {limited} {program}" + ("" if self.interactive else " </dev/null"),
            "fi",
        ]


@functools.cache
def helper_source() -> str:
    """The helper's text as the sandbox runs it: the wait detection, then the helper without its import of it."""
    here = Path(__file__).resolve().parent
    wait = (here.parent / "stdin_wait.py").read_text(encoding="utf-8")
    helper = _IMPORT_LINE.sub("", (here / "stdin_helper.py").read_text(encoding="utf-8"))
    return wait + "\n" + helper


class MarkerFilter:
    """Takes the helper's ``MARK:event`` lines out of the run's stderr, holding back a tail that may be the start
    of one until the next chunk."""

    def __init__(self, mark: str) -> None:
        self.mark = mark
        self._markers = {f"{mark}:{event}\n": event for event in (WAITING, STDIN_CLOSED)}
        self._held = ""

    def feed(self, text: str) -> tuple[str, list[str]]:
        text = self._held + text
        self._held = ""
        events: list[str] = []
        while self.mark in text:
            start = text.index(self.mark)
            marker = next((m for m in self._markers if text.startswith(m, start)), None)
            if marker is None:
                if any(m.startswith(text[start:]) for m in self._markers):  # a marker cut in two
                    self._held = text[start:]
                    return text[:start], events
                break
            events.append(self._markers[marker])
            text = text[:start] + text[start + len(marker) :]
        for cut in range(min(len(text), max(map(len, self._markers))), 0, -1):
            if any(m.startswith(text[-cut:]) for m in self._markers):
                self._held = text[-cut:]
                return text[:-cut], events
        return text, events

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


class SessionInput:
    """The :class:`~daytona_lsp.core.environment.InputSink` of a session command: each line goes to
    ``send_session_command_input`` (after its echo in the output, unless ``echo`` is ``None``); closing sends the
    plan's EOF token."""

    def __init__(
        self,
        sandbox: AsyncSandbox,
        session_id: str,
        cmd_id: str,
        plan: StdinPlan,
        echo: Callable[[str], Awaitable[None]] | None,
    ) -> None:
        self.sandbox, self.session_id, self.cmd_id = sandbox, session_id, cmd_id
        self.plan = plan
        self.echo = echo

    async def _send(self, data: str) -> None:
        try:
            await self.sandbox.process.send_session_command_input(self.session_id, self.cmd_id, data)
        except Exception as exc:  # 404/410: the command has ended
            log.info("sending input failed: %s", type(exc).__name__)
            raise InputClosed("the program has ended") from None

    async def write(self, text: str) -> None:
        if self.echo is not None:
            await self.echo(text)
        await self._send(text)

    async def close(self) -> None:
        await self._send(self.plan.eof_token + "\n")
