"""core.secrets: the one API-key lookup and the redaction of every trivial encoding of a secret."""

from __future__ import annotations

import base64
import urllib.parse

import pytest

from daytona_lsp.core import secrets

KEY = "dtn_5f3c9a0b7e214d8c9a6b3f1e0d2c4b6a"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in secrets.SECRET_ENVS:
        monkeypatch.delenv(name, raising=False)


def test_api_key_comes_from_the_argument_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert secrets.api_key() is None
    monkeypatch.setenv("DAYTONA_API_KEY", "from-env")
    assert secrets.api_key() == "from-env"
    assert secrets.api_key("given") == "given"
    monkeypatch.setenv("DAYTONA_API_KEY", "")
    assert secrets.api_key() is None


@pytest.mark.parametrize("prefix", [b"", b"a", b"ab", b"DAYTONA_API_KEY=", b"PATH=/usr/bin\0DAYTONA_API_KEY="])
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode], ids=["base64", "urlsafe"])
def test_base64_of_the_key_is_redacted_wherever_it_sits_in_the_encoded_text(prefix: bytes, encode: object) -> None:
    assert callable(encode)
    encoded = encode(prefix + KEY.encode() + b"\0HOME=/root\0").decode()
    redacted = secrets.redact(encoded, KEY)
    before, after = redacted.split("***")
    assert encoded.startswith(before) and encoded.endswith(after)
    removed = len(encoded) - len(before) - len(after)
    assert removed >= (len(KEY) - 2) * 4 // 3  # every character made of the key's bits alone


@pytest.mark.parametrize(
    "form",
    [
        KEY,
        KEY.encode().hex(),
        KEY.encode().hex().upper(),
        urllib.parse.quote("dtn/+= " + KEY, safe=""),
        urllib.parse.quote_plus(KEY + " &?"),
    ],
    ids=["exact", "hex", "HEX", "url-encoded", "form-encoded"],
)
def test_every_form_of_the_key_is_redacted(form: str) -> None:
    text = f"before {form} after"
    redacted = secrets.redact(text, KEY)
    assert redacted.startswith("before ") and redacted.endswith(" after")
    assert KEY not in redacted and KEY.encode().hex() not in redacted.lower()
    assert "***" in redacted


def test_secrets_from_the_environment_are_redacted_without_being_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAYTONA_API_KEY", KEY)
    monkeypatch.setenv("DAYTONA_JWT_TOKEN", "eyJhbGciOiJIUzI1NiJ9.payload.signature")
    text = f"key={base64.b64encode(KEY.encode()).decode()} jwt=eyJhbGciOiJIUzI1NiJ9.payload.signature"
    assert secrets.redact(text) == "key=*** jwt=***"


def test_ordinary_text_and_short_values_are_left_alone() -> None:
    text = 'Traceback (most recent call last):\n  File "<stdin>", line 1\nZGF5dG9uYQ== 616263\n'
    assert secrets.redact(text, KEY) == text
    assert secrets.redact("abc abc", "abc") == "abc abc"  # too short to be a secret
    assert secrets.redact("", KEY) == ""
    assert secrets.redact(text, None, "") == text
