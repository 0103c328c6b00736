"""``python -m daytona_lsp.lsp``: serve LSP on stdio."""

import sys

from daytona_lsp.lsp.server import serve

if __name__ == "__main__":
    sys.exit(serve())
