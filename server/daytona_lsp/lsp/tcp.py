"""``daytona-lsp serve --tcp``: LSP over a loopback TCP socket, for one client that proves it knows the token.

Any local process can connect to a loopback port, and the server runs code (as root in CI), so a connection is served
only after its **first message** — which must be ``initialize`` — carries the server's token in
``initializationOptions.token``. The token is generated at start and printed to stderr (or read from ``--token-file``).
A connection whose first message is anything else, a wrong token, malformed or too slow (:data:`HANDSHAKE_TIMEOUT_S`)
gets one JSON-RPC error and is closed before the server sees a single request; the server keeps listening. While a
client is being served, other connections are closed at once. When the served client disconnects, every environment
is closed and the server exits.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daytona_lsp.lsp.reader import serve_stream

if TYPE_CHECKING:
    from daytona_lsp.lsp.server import DaytonaLanguageServer

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_S = 10.0
MAX_HANDSHAKE_BYTES = 1024 * 1024
TOKEN_OPTION = "token"
MIN_TOKEN_LENGTH = 16


class TcpError(ValueError):
    """A bad ``serve --tcp`` configuration (non-loopback host, unreadable or short token file)."""


def check_loopback(host: str) -> None:
    """Raise :class:`TcpError` unless every address ``host`` resolves to is a loopback address."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise TcpError(f"cannot resolve --host {host!r}: {exc}") from None
    addresses = {str(info[4][0]) for info in infos}
    if not addresses or not all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses):
        raise TcpError(f"--host {host!r} is not a loopback address: serve --tcp listens on loopback only")


def load_token(token_file: str | None) -> str:
    """The token from ``token_file`` (stripped), or a new random one."""
    if token_file is None:
        return secrets.token_urlsafe(32)
    try:
        token = Path(token_file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeError) as exc:
        raise TcpError(f"cannot read --token-file {token_file}: {exc}") from None
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise TcpError(f"the token in {token_file} must be at least {MIN_TOKEN_LENGTH} characters, without spaces")
    return token


class _Replay:
    """A stream reader that first returns the bytes already read (the handshake message), then reads on."""

    def __init__(self, reader: asyncio.StreamReader, prefix: bytes) -> None:
        self._reader = reader
        self._buffer = prefix

    async def read(self, n: int) -> bytes:
        if self._buffer:
            head, self._buffer = self._buffer[:n], self._buffer[n:]
            return head
        return await self._reader.read(n)


async def _read_message(reader: asyncio.StreamReader) -> tuple[bytes, Any]:
    """One LSP message: its raw bytes and its decoded body. Raises ``ValueError`` for anything malformed."""
    raw = b""
    length = None
    while True:
        line = await reader.readline()
        raw += line
        if not line.endswith(b"\n") or len(raw) > 8192:
            raise ValueError("bad header")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("ascii").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length is None or not 0 < length <= MAX_HANDSHAKE_BYTES:
        raise ValueError("bad Content-Length")
    body = await reader.readexactly(length)
    return raw + body, json.loads(body)


def _authorized(message: Any, token: str) -> bool:
    if not isinstance(message, dict) or message.get("method") != "initialize":
        return False
    params = message.get("params")
    options = params.get("initializationOptions") if isinstance(params, dict) else None
    given = options.get(TOKEN_OPTION) if isinstance(options, dict) else None
    return isinstance(given, str) and hmac.compare_digest(given.encode(), token.encode())


async def _refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, message: Any) -> None:
    """Answer with one error, then close (after the client closed or 2 s: closing with unread input would reset the
    connection and lose the answer)."""
    msg_id = message.get("id") if isinstance(message, dict) else None
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": msg_id,
            "error": {
                "code": -32600,
                "message": "daytona-lsp serve --tcp: the first message must be initialize with the server's token in "
                "initializationOptions.token (printed on the server's stderr, or given with --token-file)",
            },
        }
    ).encode()
    try:
        writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await asyncio.wait_for(writer.drain(), 5)
        writer.write_eof()
        await asyncio.wait_for(_discard(reader), 2)
    except (OSError, asyncio.TimeoutError, RuntimeError):
        pass
    writer.close()


async def _discard(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


async def handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: str) -> _Replay | None:
    """Read the first message; a reader that replays it when it carries the token, else ``None`` (the client was told
    why and disconnected)."""
    message: Any = None
    try:
        raw, message = await asyncio.wait_for(_read_message(reader), HANDSHAKE_TIMEOUT_S)
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, UnicodeError, OSError):
        raw = b""
    if raw and _authorized(message, token):
        return _Replay(reader, raw)
    peer = writer.get_extra_info("peername")
    log.warning("daytona-lsp: refused a TCP client without the token (%s)", peer)
    print(f"daytona-lsp: refused a TCP connection from {peer}: no valid token", file=sys.stderr, flush=True)
    await _refuse(reader, writer, message)
    return None


def serve_tcp(server: DaytonaLanguageServer, host: str, port: int, token: str, *, show_token: bool = True) -> int:
    """Serve one authenticated client on ``host:port`` (loopback); exit when it disconnects. ``show_token``: print
    the token with the listening address (a generated one; a token from a file is not echoed)."""

    async def main() -> None:
        done = asyncio.Event()
        serving = False

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal serving
            if serving or done.is_set():
                writer.close()
                return
            replay = await handshake(reader, writer, token)
            if replay is None:
                return
            if serving:  # another client was authorized while this one did its handshake
                writer.close()
                return
            serving = True
            server.protocol.set_writer(writer)  # type: ignore[arg-type]
            try:
                await serve_stream(server.protocol, replay.read)
            finally:
                await server.runs.aclose()
                done.set()

        tcp = await asyncio.start_server(connection, host, port)
        addresses = ", ".join(f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in tcp.sockets)
        shown = f": {token}" if show_token else " (from --token-file)"
        print(
            f"daytona-lsp listening on {addresses}; send the token as initializationOptions.token{shown}",
            file=sys.stderr,
            flush=True,
        )
        async with tcp:
            await done.wait()

    try:
        asyncio.run(main())
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        pass
    return 0
