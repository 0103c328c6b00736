"""Pure parts of the LSP layer: settings parsing and the code a range selects (no server process)."""

from __future__ import annotations

import pytest

from daytona_lsp.lsp import documents
from daytona_lsp.lsp.settings import Settings, default_settings_wire, parse_settings, settings_docs


def test_default_settings_wire_lists_every_setting_in_camel_case() -> None:
    wire = default_settings_wire()
    assert wire == {
        "backend": "auto",
        "apiUrl": "",
        "target": "",
        "snapshot": "",
        "image": "",
        "envVars": {},
        "resources": {},
        "labels": {},
        "autoStopInterval": 15,
        "autoDeleteInterval": 60,
        "timeout": 60.0,
        "languages": ["python", "bash", "javascript", "typescript"],
        "outputMode": "channel",
        "maxOutputBytes": 1024 * 1024,
        "prewarm": True,
        "local.isolation": "bubblewrap",
        "local.network": False,
    }
    assert set(settings_docs()) == set(wire)  # every setting is documented
    assert "apiKey" not in wire  # the key never travels in settings


def test_valid_settings_parse_nested_or_dotted() -> None:
    warnings: list[str] = []
    s = parse_settings(
        {
            "backend": "daytona",
            "apiUrl": "https://example.test/api",
            "image": "python:3.12",
            "resources": {"cpu": 2, "memory": 4},
            "envVars": {"A": "1"},
            "timeout": 5,
            "languages": ["python", "python", "bash"],
            "outputMode": "both",
            "local": {"network": True},
            "local.isolation": "none",
            "somethingElse": 1,
        },
        warnings.append,
    )
    assert warnings == []
    assert s.backend == "daytona" and s.api_url == "https://example.test/api"
    assert s.resources == {"cpu": 2, "memory": 4} and s.env_vars == {"A": "1"}
    assert s.timeout == 5.0 and s.languages == ("python", "bash") and s.output_mode == "both"
    assert s.local.network is True and s.local.isolation == "none"


@pytest.mark.parametrize(
    ("data", "field", "fragment"),
    [
        ({"backend": "cloud"}, "backend", "backend='cloud'"),
        ({"timeout": 0}, "timeout", "timeout=0"),
        ({"timeout": True}, "timeout", "timeout=True"),
        ({"languages": ["cobol"]}, "languages", "languages=['cobol']"),
        ({"languages": []}, "languages", "languages=[]"),
        ({"maxOutputBytes": "big"}, "max_output_bytes", "maxOutputBytes='big'"),
        ({"envVars": {"A": 1}}, "env_vars", "envVars={'A': 1}"),
        ({"apiUrl": "ftp://x"}, "api_url", "apiUrl='ftp://x'"),
        ({"prewarm": "yes"}, "prewarm", "prewarm='yes'"),
        ({"autoStopInterval": -1}, "auto_stop_interval", "autoStopInterval=-1"),
    ],
)
def test_invalid_setting_warns_and_keeps_the_default(data: dict, field: str, fragment: str) -> None:
    warnings: list[str] = []
    s = parse_settings(data, warnings.append)
    assert getattr(s, field) == getattr(Settings(), field)
    assert len(warnings) == 1 and fragment in warnings[0] and "using" in warnings[0]


def test_snapshot_and_image_are_exclusive_and_resources_need_an_image() -> None:
    warnings: list[str] = []
    s = parse_settings({"snapshot": "snap", "image": "img", "resources": {"cpu": 1}}, warnings.append)
    assert (s.snapshot, s.image, s.resources) == ("snap", "", {})
    assert any("exclusive" in w for w in warnings)


def test_settings_layer_over_a_base_and_non_objects_are_rejected() -> None:
    base = parse_settings({"backend": "local", "timeout": 9})
    assert parse_settings({"timeout": 3}, base=base).backend == "local"
    warnings: list[str] = []
    assert parse_settings(["not", "an", "object"], warnings.append, base) is base
    assert warnings and "must be an object" in warnings[0]


def test_sandbox_spec_changes_only_with_sandbox_shaping_settings() -> None:
    a = parse_settings({"envVars": {"A": "1"}})
    assert a.sandbox_spec() == parse_settings({"envVars": {"A": "1"}, "outputMode": "both"}).sandbox_spec()
    assert a.sandbox_spec() != parse_settings({"envVars": {"A": "2"}}).sandbox_spec()


def test_selection_is_dedented_and_maps_back() -> None:
    lines = ["def f():", "    if x:", "        y = 1", "    return 2"]
    snip = documents.snippet(lines, (1, 0, 4, 0))
    assert snip.code == "if x:\n    y = 1\nreturn 2\n"
    assert snip.first_line == 1 and snip.line_count == 3
    assert snip.column_offsets == (4, 4, 4)


def test_partial_line_selection_keeps_its_start_column() -> None:
    snip = documents.snippet(["x = 1; print(x)"], (0, 7, 0, 15))
    assert snip.code == "print(x)\n" and snip.column_offsets == (7,)


@pytest.mark.parametrize(
    ("rng", "message"),
    [((5, 0, 5, 1), "outside"), ((0, 0, 3, 2), "outside")],
)
def test_range_outside_the_document_is_rejected(rng: tuple[int, int, int, int], message: str) -> None:
    with pytest.raises(documents.BadRequest, match=message):
        documents.snippet(["a", "b"], rng)


def test_range_to_the_end_of_the_document_is_fine() -> None:
    assert documents.snippet(["a", "b"], (1, 0, 2, 0)).code == "b\n"


def test_language_ids_and_cells() -> None:
    assert [documents.language_of(x, "untitled:1") for x in ("typescriptreact", "shellscript", "sh", "markdown")] == [
        "typescript",
        "bash",
        "bash",
        None,
    ]
    assert documents.cells(["# %% a", "x", "  # %% b", "y"], "python") == [(0, 2), (2, 4)]
    assert documents.cells(["// %%", "x"], "javascript") == [(0, 2)]


def test_workspace_key_is_the_longest_folder() -> None:
    folders = ["file:///w", "file:///w/inner"]
    assert documents.workspace_key("file:///w/inner/a.py", folders, None) == "file:///w/inner"
    assert documents.workspace_key("file:///w/a.py", folders, None) == "file:///w"
    assert documents.workspace_key("file:///elsewhere/a.py", folders, None) == ""
