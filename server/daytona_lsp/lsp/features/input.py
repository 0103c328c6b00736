"""Interactive input: ``daytona/inputRequested {runId, prompt}`` to clients that opted in
(``initializationOptions.interactiveInput: true``) when a running program waits for input, and the command
``daytona.sendInput {runId, text, eof?}`` that answers (a command, so any client can send it).

``text`` is one line (a newline is added unless it ends with one); ``eof: true`` closes the program's stdin after
it (``text`` may then be omitted). What is sent is echoed in the run's output by the backend. Bad arguments are
InvalidParams; input for an unknown or finished run, or for a run that takes none, is a request failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from daytona_lsp.core.environment import MAX_INPUT_BYTES
from daytona_lsp.core.secrets import redact
from daytona_lsp.lsp.features.commands import REQUEST_FAILED, one_object
from daytona_lsp.lsp.runs import Run, RunError

if TYPE_CHECKING:
    from daytona_lsp.lsp.server import DaytonaLanguageServer

SEND_INPUT = "daytona.sendInput"
INPUT_REQUESTED = "daytona/inputRequested"
CLIENT_OPTION = "interactiveInput"
"""The ``initializationOptions`` key a client sets to ``true`` to be asked for input."""


def opted_in(options: Mapping[str, Any] | None) -> bool:
    return bool(options and options.get(CLIENT_OPTION) is True)


def _arguments(params: Mapping[str, Any]) -> tuple[str, str, bool]:
    run_id = params.get("runId")
    if isinstance(run_id, bool) or not isinstance(run_id, (str, int)):
        raise JsonRpcInvalidParams(message=f"{SEND_INPUT}: 'runId' must be a string (the run's id)")
    eof = params.get("eof", False)
    if eof is None:
        eof = False
    if not isinstance(eof, bool):
        raise JsonRpcInvalidParams(message=f"{SEND_INPUT}: 'eof' must be true or false")
    text = params.get("text")
    if text is None and eof:
        text = ""
    if not isinstance(text, str):
        raise JsonRpcInvalidParams(message=f"{SEND_INPUT}: 'text' must be a string (one line of input)")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_INPUT_BYTES:
        raise JsonRpcInvalidParams(
            message=f"{SEND_INPUT}: 'text' is {size} bytes, more than the {MAX_INPUT_BYTES // 1024} KiB one input takes"
        )
    return str(run_id), text, eof


def register(server: DaytonaLanguageServer) -> None:
    def input_requested(run: Run, prompt: str) -> None:
        server.protocol.notify(INPUT_REQUESTED, {"runId": run.id, "prompt": redact(prompt)})

    server.runs.on_input_requested = input_requested

    @server.command(SEND_INPUT)
    async def daytona_send_input(*args: Any) -> dict[str, Any]:
        params = one_object(SEND_INPUT, args, required=True, usage="{runId, text, eof?}")
        run_id, text, eof = _arguments(params)
        try:
            await server.runs.send_input(run_id, text, eof)
        except RunError as exc:
            raise JsonRpcException(message=f"{SEND_INPUT}: {exc}", code=REQUEST_FAILED) from None
        return {"runId": run_id, "eof": eof}
