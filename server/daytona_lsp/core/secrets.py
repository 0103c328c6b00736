"""The one place that knows where the Daytona credentials come from and how to keep them out of text.

The API key is read from the environment only (``DAYTONA_API_KEY``), never from settings. :func:`redact` removes
every secret of ours from text that leaves the process (logs, messages, errors, run output): the exact string and the
forms code can trivially turn it into — base64 (standard and URL-safe, at any position in a longer encoded text),
URL-encoding and hex.
"""

from __future__ import annotations

import base64
import os
import urllib.parse
from collections.abc import Callable
from functools import lru_cache

API_KEY_ENV = "DAYTONA_API_KEY"
JWT_ENV = "DAYTONA_JWT_TOKEN"
SECRET_ENVS = (API_KEY_ENV, JWT_ENV)
"""Environment variables whose values are secrets (redacted wherever they appear)."""

MASK = "***"
_MIN_SECRET = 4
"""Shorter values are not treated as secrets (replacing them would garble ordinary text)."""
_MIN_FRAGMENT = 8
"""Shortest encoded fragment worth replacing (shorter ones would match unrelated text)."""


def api_key(explicit: str | None = None) -> str | None:
    """The Daytona API key: ``explicit`` when given, else ``DAYTONA_API_KEY`` from the environment, else ``None``."""
    return explicit or os.environ.get(API_KEY_ENV) or None


def redact(text: str, *extra: str | None) -> str:
    """``text`` with every form of every secret replaced by ``***``: those of :data:`SECRET_ENVS` and ``extra``."""
    secrets = [s for s in (*extra, *(os.environ.get(name) for name in SECRET_ENVS)) if s and len(s) >= _MIN_SECRET]
    if not secrets or not text:
        return text
    for secret in dict.fromkeys(secrets):
        for form in _forms(secret):
            if form in text:
                text = text.replace(form, MASK)
    return text


@lru_cache(maxsize=16)
def _forms(secret: str) -> tuple[str, ...]:
    """The strings that reveal ``secret``, longest first (so a longer form is replaced before a part of it)."""
    raw = secret.encode("utf-8", "surrogateescape")
    forms = {
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret, safe=""),
        raw.hex(),
        raw.hex().upper(),
    }
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        forms.update(_base64_fragments(raw, encode))
    return tuple(sorted((f for f in forms if len(f) >= min(_MIN_FRAGMENT, len(secret))), key=len, reverse=True))


def _base64_fragments(raw: bytes, encode: Callable[[bytes], bytes]) -> set[str]:
    """The base64 characters that are the same wherever ``raw`` sits in longer encoded data: for each of the three
    alignments, those that carry only ``raw``'s bits (the first and last may mix in a neighbour's)."""
    fragments = set()
    for shift in range(3):
        encoded = encode(b"\0" * shift + raw).decode("ascii")
        first = -(-8 * shift // 6)  # the first character with no bit of the prefix
        end = 8 * (shift + len(raw)) // 6  # past the last character made of raw's bits only
        fragments.add(encoded[first:end])
    return fragments
