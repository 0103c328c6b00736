"""The session worker protocol: what a host says to a persistent interpreter and what it answers.

A worker is a persistent interpreter (``python_worker.py``, ``node_worker.js`` under ``driver.py``, ``bash`` under
``driver.py``) started once per session. Its own stdin is neither the protocol nor the cells' input (``/dev/null``, or whatever
its host gave it: a child process a cell starts reads that, not the cell's input).
Commands arrive on one file descriptor, events leave on another (``CMD_FD`` / ``EVENT_FD`` by default, overridable
as the worker's first two arguments), each message one line of UTF-8 JSON.

Commands (host → worker)::

    {"op": "execute", "id": 7, "code": "x = 1\\nx", "filename": "/ws/a.py", "line_offset": 12, "value_cap": 2000,
     "args": ["a", "b"], "stdin": "", "interactive": false}
    {"op": "input", "id": 7, "text": "Ada\\n", "eof": false}

``filename`` and ``line_offset`` (the 0-based buffer line of the code's first line) make tracebacks and stack
traces name the buffer's own lines. ``value_cap`` caps the length of the returned ``value``. ``args`` (default
``[]``) are the cell's program arguments, as a fresh run of the file gets them: Python's ``sys.argv[1:]``, Node's
``process.argv.slice(2)``, bash's ``"$@"`` (every cell sets them anew).

Input travels on the protocol (as Jupyter's ``input_request``), never on the worker's real fd 0: each cell has a
stdin of its own (Python: ``sys.stdin``, a text stream reading through the protocol). ``stdin`` is its preset input (default ``""``); after it the code reads EOF unless
``interactive`` (default ``false``) is true: then it waits for ``input`` commands. An ``input`` command gives cell
``id`` more text (``""`` allowed) and, with ``eof``, ends its input; one for a cell that is not running (finished,
unknown) is ignored silently, and input that arrives before the code reads is kept for it. EOF in one cell never
leaks into the next; input left unread when a cell ends is dropped. A worker ignores an ``input`` command between
cells.

Events (worker → host), in the order things happened::

    {"event": "ready", "language": "python", "pid": 123}
    {"event": "output", "stream": "stdout" | "stderr", "text": "..."}
    {"event": "input_request", "id": 7}
    {"event": "result", "id": 7, "status": "ok" | "error" | "interrupted" | "exited",
     "value"?: "repr of a trailing expression", "error"?: "traceback / message", "exit_code"?: 0,
     "stdin_closed"?: true}

``input_request``: the code wants to read stdin, its preset is used up, ``interactive`` is true and EOF was not
sent; once per wait (again after input arrived, was consumed and the code waits again). Every ``output`` event the
cell produced before it is emitted before it (the host takes the prompt from the output's partial last line).
``stdin_closed``: the code wanted to read with nothing left while ``interactive`` was false (it read EOF; the host
ends the output with :data:`~daytona_lsp.core.environment.STDIN_CLOSED_NOTE`, as for a fresh run).

Every ``output`` event of an execute comes before its ``result`` (also output of child processes the code started
and waited for). Interrupting is SIGINT to the worker's process group: the running code stops (``KeyboardInterrupt``,
vm ``breakOnSigint``, the shell's foreground job), the result says ``interrupted`` and the state survives
(also while the code waits for input).
``exited`` means the code called ``exit()``/``sys.exit()``/``process.exit()``/``exit``; the worker lives on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, get_args

CMD_FD = 3
EVENT_FD = 4

Status = Literal["ok", "error", "interrupted", "exited"]
STATUSES: tuple[Status, ...] = get_args(Status)

DEFAULT_VALUE_CAP = 2000
"""Characters of a trailing expression's value a worker returns unless told otherwise."""
PROMPT_CHARS = 1024
"""The longest prompt a host takes from a cell's output (the end of its partial last line)."""


@dataclass(frozen=True, slots=True)
class Cell:
    """What one execute runs: the code, the file and line its text comes from, its arguments and preset input
    (``stdin``: ``None`` when none was given — then code that reads gets EOF and the output says so)."""

    code: str
    filename: str | None = None
    line_offset: int = 0
    value_cap: int = DEFAULT_VALUE_CAP
    args: tuple[str, ...] = ()
    stdin: str | None = None


@dataclass(slots=True)
class ExecuteResult:
    status: Status
    value: str | None = None
    error: str | None = None
    exit_code: int | None = None
    stdin_closed: bool = False
    """The code read EOF because no (more) input was given and none could come (not interactive)."""


def execute_command(command_id: int, cell: Cell, *, early: str = "", interactive: bool = False) -> bytes:
    """The line that asks a worker to run ``cell`` (``early``: input sent before it started, after its preset;
    ``interactive``: more may come)."""
    command = {
        "op": "execute",
        "id": command_id,
        "code": cell.code,
        "filename": cell.filename,
        "line_offset": cell.line_offset,
        "value_cap": cell.value_cap,
        "args": list(cell.args),
        "stdin": (cell.stdin or "") + early,
        "interactive": interactive,
    }
    return _line(command)


def input_command(command_id: int, text: str, eof: bool = False) -> bytes:
    """The line that gives cell ``command_id`` more input (``eof``: and ends it)."""
    return _line({"op": "input", "id": command_id, "text": text, "eof": eof})


def _line(command: dict[str, Any]) -> bytes:
    return (json.dumps(command) + "\n").encode("utf-8", "surrogatepass")


def result_of(event: dict[str, Any]) -> ExecuteResult:
    """A ``result`` event as an :class:`ExecuteResult`."""
    return ExecuteResult(
        status=event.get("status", "error"),
        value=event.get("value"),
        error=event.get("error"),
        exit_code=event.get("exit_code"),
        stdin_closed=event.get("stdin_closed") is True,
    )


def last_line(partial: str, text: str) -> str:
    """The partial last line of a cell's output (the prompt of an ``input_request``) once ``text`` follows
    ``partial`` (at most its last :data:`PROMPT_CHARS`)."""
    _, newline, tail = text.rpartition("\n")
    return (tail if newline else partial + tail)[-PROMPT_CHARS:]
