"""SDK exceptions → results: readable messages without the API key, and which failures may be retried."""

from __future__ import annotations

import asyncio

from daytona_lsp.core.daytona.spec import BACKEND, MissingCredentialsError
from daytona_lsp.core.environment import TIMEOUT_EXIT_CODE, CodeRunResult
from daytona_lsp.core.secrets import redact

RETRYABLE_CREATE_STATUS = {429, 500, 502, 503, 504}


class RunFailed(Exception):
    """A run that ended in an error result (carries it)."""

    def __init__(self, result: CodeRunResult) -> None:
        super().__init__(result.output)
        self.result = result


def error_result(exc: BaseException, *, api_key: str | None, output: str = "") -> CodeRunResult:
    """The seed's result mapping, extended to every exception the SDK lets through."""
    from daytona import DaytonaError, DaytonaRateLimitError, DaytonaTimeoutError

    detail = redact(str(exc) or type(exc).__name__, api_key)
    prefix = output if not output or output.endswith("\n") else output + "\n"
    if isinstance(exc, DaytonaTimeoutError) or isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return CodeRunResult(prefix + f"Execution timed out: {detail}", TIMEOUT_EXIT_CODE, backend=BACKEND)
    if isinstance(exc, DaytonaRateLimitError) or getattr(exc, "status", None) == 429:
        return CodeRunResult(prefix + f"Daytona rate limit exceeded: {detail}", 1, backend=BACKEND)
    if isinstance(exc, DaytonaError):
        return CodeRunResult(prefix + f"Daytona error: {detail}", 1, backend=BACKEND)
    if isinstance(exc, MissingCredentialsError | KeyError | ValueError):
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else detail
        return CodeRunResult(
            prefix + f"Daytona configuration error: {redact(str(message), api_key)}", 1, backend=BACKEND
        )
    return CodeRunResult(prefix + f"Daytona error: {type(exc).__name__}: {detail}", 1, backend=BACKEND)


def daytona_error_type() -> type[Exception]:
    from daytona import DaytonaError

    return DaytonaError


def readable_api_exception(exc: BaseException, status: int) -> Exception:
    """The SDK's code-run raises the generated client's raw ``ApiException``: turn it into the SDK's own error type
    for that status, with the daemon's message instead of a dump of headers."""
    from daytona import DaytonaError, DaytonaRateLimitError

    message = ""
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            import json

            parsed = json.loads(body)
            message = str(parsed.get("message") or parsed.get("error") or "") if isinstance(parsed, dict) else ""
        except ValueError:
            message = body[:500]
    reason = getattr(exc, "reason", None) or ""
    text = f"Failed to run code: HTTP {status}" + (f" {reason}" if reason else "") + (f": {message}" if message else "")
    error: DaytonaError = (DaytonaRateLimitError if status == 429 else DaytonaError)(text, status_code=status)
    return error


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def never_reached(exc: BaseException) -> bool:
    """True when the request provably did not run anything: the proxy/daemon answered with a refusal, or the
    connection was never established."""
    import aiohttp

    cause: BaseException | None = exc
    for _ in range(20):  # the cause chain, bounded in case of a cycle
        if cause is None:
            break
        if isinstance(cause, aiohttp.ClientConnectorError):
            return True
        cause = cause.__cause__ or cause.__context__
    status = status_of(exc)
    return status in {400, 401, 403, 404, 409, 410, 502, 503}


def is_timeout(exc: BaseException | None) -> bool:
    """A timeout of the SDK's (a create that exceeded its timeout…) or of asyncio."""
    from daytona import DaytonaConnectionError, DaytonaTimeoutError

    if isinstance(exc, DaytonaConnectionError):
        return False  # a connection that timed out is a connection problem, reported as such
    return isinstance(exc, DaytonaTimeoutError | TimeoutError | asyncio.TimeoutError)


def is_retryable_create(exc: BaseException) -> bool:
    from daytona import DaytonaConnectionError, DaytonaTimeoutError

    if isinstance(exc, DaytonaTimeoutError) and not isinstance(exc, DaytonaConnectionError):
        return False  # the whole create timed out: retrying would double the wait
    if isinstance(exc, DaytonaConnectionError):
        return True
    return status_of(exc) in RETRYABLE_CREATE_STATUS


def sanitized(exc: Exception, key: str) -> Exception:
    from daytona import DaytonaError

    message = redact(str(exc), key)
    if isinstance(exc, DaytonaError):
        return type(exc)(message) if message != str(exc) else exc
    return DaytonaError(f"{type(exc).__name__}: {message}")
