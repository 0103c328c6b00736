"""Text carried inside a sandbox's shell command lines: base64, so no quotes, ``$`` or escapes need care."""

from __future__ import annotations

import base64


def b64(text: str) -> str:
    """``text`` (lone surrogates kept, as they came from a file name or a buffer) as base64 for ``base64 -d``."""
    return base64.b64encode(text.encode("utf-8", "surrogateescape")).decode("ascii")
