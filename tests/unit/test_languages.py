"""The language registry and the on-demand line index (core, no editor)."""

from __future__ import annotations

import random

import pytest

from daytona_lsp.core import errors, languages
from daytona_lsp.core.environment import LANGUAGES
from daytona_lsp.core.lines import LineIndex
from daytona_lsp.core.select import language_for_path


def test_every_language_has_one_entry_with_a_parser_and_a_cell_marker() -> None:
    assert tuple(lang.id for lang in languages.REGISTRY) == LANGUAGES == languages.LANGUAGES
    for lang in languages.REGISTRY:
        assert lang.error_parser in errors._PARSERS
        assert lang.cell_marker in ("# %%", "// %%")
        assert lang.extensions and all(ext.startswith(".") for ext in lang.extensions)
    assert [languages.get(x).snippet_extension for x in LANGUAGES] == ["py", "sh", "js", "ts"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("js", "javascript"),
        ("JavaScriptReact", "javascript"),
        ("ts", "typescript"),
        ("typescriptreact", "typescript"),
        ("sh", "bash"),
        ("shell", "bash"),
        ("shellscript", "bash"),
        ("bash", "bash"),
        ("python", "python"),
        ("zsh", None),
        ("markdown", None),
        ("", None),
        (None, None),
    ],
)
def test_editor_language_ids_name_languages(name: str | None, expected: str | None) -> None:
    lang = languages.by_name(name)
    assert (lang.id if lang else None) == expected


def test_zsh_is_refused_with_a_reason_and_others_have_none() -> None:
    assert "not run as bash" in (languages.refusal("zsh") or "")
    assert languages.refusal("python") is None


def test_the_extension_decides_over_a_stale_language_id() -> None:
    assert languages.for_document("python", "file:///w/run.sh").id == "bash"  # type: ignore[union-attr]
    assert languages.for_document("js", "file:///w/script").id == "javascript"  # type: ignore[union-attr]
    assert languages.for_document("plaintext", "file:///w/notes.txt") is None
    assert language_for_path("a/b.MJS") == "javascript" and language_for_path("x.tsx") == "typescript"
    assert language_for_path("README") is None


def test_wire_lists_ids_aliases_extensions_and_markers() -> None:
    wire = {entry["id"]: entry for entry in languages.wire()}
    assert wire["bash"]["languageIds"][:3] == ["bash", "sh", "shell"]
    assert wire["python"]["extensions"][0] == ".py" and wire["javascript"]["cellMarker"] == "// %%"


@pytest.mark.parametrize(
    "text",
    ["", "\n", "a", "a\n", "a\nb", "a\n\nb\n", "x\r\ny\rz\n", "\n\n\n", "é\n€😀\nlast"],
)
def test_line_index_matches_the_lsp_lines_of_a_text(text: str) -> None:
    expected = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if expected and expected[-1] == "":
        expected.pop()
    index = LineIndex(text)
    assert len(index) == len(expected)
    assert [index[i] for i in range(len(expected))] == expected
    assert index.get(len(expected)) is None and index.get(-1) is None
    with pytest.raises(IndexError):
        index[len(expected) + 3]


def test_line_index_finds_lines_of_a_large_text_in_any_order() -> None:
    lines = [f"line {i} " + "x" * (i % 97) for i in range(60_000)]
    index = LineIndex("\n".join(lines) + "\n")
    order = list(range(len(lines)))
    random.Random(4).shuffle(order)
    for i in order[:2000] + [0, len(lines) - 1]:
        assert index[i] == lines[i]
    assert index.get(len(lines)) is None
