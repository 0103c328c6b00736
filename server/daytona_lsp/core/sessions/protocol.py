"""The session worker protocol: what a host says to a persistent interpreter and what it answers.

A worker is a persistent interpreter (``python_worker.py``, ``node_worker.js`` under ``driver.py``, ``bash`` under
``driver.py``) started once per session. It never uses its stdin for the protocol: stdin stays the user's program's.
Commands arrive on one file descriptor, events leave on another (``CMD_FD`` / ``EVENT_FD`` by default, overridable
as the worker's first two arguments), each message one line of UTF-8 JSON.

Commands (host → worker)::

    {"op": "execute", "id": 7, "code": "x = 1\\nx", "filename": "/ws/a.py", "line_offset": 12, "value_cap": 2000}

``filename`` and ``line_offset`` (the 0-based buffer line of the code's first line) make tracebacks and stack
traces name the buffer's own lines. ``value_cap`` caps the length of the returned ``value``.

Events (worker → host), in the order things happened::

    {"event": "ready", "language": "python", "pid": 123}
    {"event": "output", "stream": "stdout" | "stderr", "text": "..."}
    {"event": "result", "id": 7, "status": "ok" | "error" | "interrupted" | "exited",
     "value"?: "repr of a trailing expression", "error"?: "traceback / message", "exit_code"?: 0}

Every ``output`` event of an execute comes before its ``result`` (also output of child processes the code started
and waited for). Interrupting is SIGINT to the worker's process group: the running code stops (``KeyboardInterrupt``,
vm ``breakOnSigint``, the shell's foreground job), the result says ``interrupted`` and the state survives.
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


@dataclass(slots=True)
class ExecuteResult:
    status: Status
    value: str | None = None
    error: str | None = None
    exit_code: int | None = None


def execute_command(command_id: int, code: str, filename: str | None, line_offset: int, value_cap: int) -> bytes:
    """The line that asks a worker to run ``code``."""
    command = {
        "op": "execute",
        "id": command_id,
        "code": code,
        "filename": filename,
        "line_offset": line_offset,
        "value_cap": value_cap,
    }
    return (json.dumps(command) + "\n").encode("utf-8", "surrogatepass")


def result_of(event: dict[str, Any]) -> ExecuteResult:
    """A ``result`` event as an :class:`ExecuteResult`."""
    return ExecuteResult(
        status=event.get("status", "error"),
        value=event.get("value"),
        error=event.get("error"),
        exit_code=event.get("exit_code"),
    )
