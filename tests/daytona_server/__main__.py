"""Run the Daytona test server as a process: ``python -m tests.daytona_server --port 0``.

Prints one line with the API URL (``http://127.0.0.1:PORT/api``) on stdout once it listens, then serves until
stdin closes or it gets SIGTERM/SIGINT. Point the SDK (or the language server) at it with ``DAYTONA_API_URL`` and
``DAYTONA_API_KEY`` (``--api-key``, default the server's test key).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from tests.daytona_server.server import DEFAULT_API_KEY, DaytonaTestServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.daytona_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--legacy-exec", action="store_true", help="split /process/execute commands like old daemons")
    parser.add_argument("--no-stdin", action="store_true", help="do not stop when stdin closes")
    args = parser.parse_args(argv)
    server = DaytonaTestServer(api_key=args.api_key, host=args.host, port=args.port)
    server.legacy_exec = args.legacy_exec
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(server.api_url, flush=True)
    if not args.no_stdin:

        def watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
