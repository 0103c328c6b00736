"""Pure parts of the LSP layer: settings parsing and the code a range selects (no server process)."""

from __future__ import annotations

import pytest

from daytona_lsp.lsp import documents
from daytona_lsp.lsp.settings import (
    SETTINGS,
    Settings,
    default_settings_wire,
    parse_settings,
    settings_docs,
    user_only_keys,
)


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
        "session": "cells",
        "prewarm": True,
        "cwd": "fileDirectory",
        "workspace.writeBack": False,
        "sync.include": [],
        "sync.maxFileBytes": 10 * 1024 * 1024,
        "sync.maxTotalBytes": 200 * 1024 * 1024,
        "local.isolation": "bubblewrap",
        "local.network": False,
        "local.memoryMb": 2048,
        "local.diskMb": 1024,
        "local.maxConcurrentRuns": 16,
        "local.pythonPath": "",
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
        ({"timeout": True}, "timeout", "timeout=True"),
        ({"languages": ["cobol"]}, "languages", "languages=['cobol']"),
        ({"languages": []}, "languages", "languages=[]"),
        ({"maxOutputBytes": "big"}, "max_output_bytes", "maxOutputBytes='big'"),
        ({"envVars": {"A": 1}}, "env_vars", "envVars={'A': 1}"),
        ({"apiUrl": "ftp://x"}, "api_url", "apiUrl='ftp://x'"),
        ({"prewarm": "yes"}, "prewarm", "prewarm='yes'"),
        ({"apiUrl": "http://example.test"}, "api_url", "apiUrl='http://example.test'"),
        ({"apiUrl": "http://localhost.example.test"}, "api_url", "apiUrl='http://localhost.example.test'"),
    ],
)
def test_invalid_setting_warns_and_keeps_the_default(data: dict, field: str, fragment: str) -> None:
    warnings: list[str] = []
    s = parse_settings(data, warnings.append)
    assert getattr(s, field) == getattr(Settings(), field)
    assert len(warnings) == 1 and fragment in warnings[0] and "using" in warnings[0]


@pytest.mark.parametrize(
    ("data", "field", "clamped"),
    [
        ({"maxOutputBytes": 10**30}, "max_output_bytes", 16 * 1024 * 1024),
        ({"maxOutputBytes": 10}, "max_output_bytes", 1024),
        ({"timeout": 0}, "timeout", 1.0),
        ({"timeout": 10**9}, "timeout", 86400.0),
        ({"autoStopInterval": -1}, "auto_stop_interval", 0),
        ({"autoDeleteInterval": 10**12}, "auto_delete_interval", 43200),
        ({"image": "img", "resources": {"cpu": 10**6}}, "resources", {"cpu": 1024}),
    ],
)
def test_size_and_time_settings_out_of_bounds_warn_and_are_clamped(data: dict, field: str, clamped: object) -> None:
    warnings: list[str] = []
    s = parse_settings(data, warnings.append)
    assert getattr(s, field) == clamped
    assert len(warnings) == 1 and "out of bounds" in warnings[0] and f"using {clamped!r}" in warnings[0]


def test_every_number_setting_has_an_upper_bound() -> None:
    for d in SETTINGS:
        if d.kind in ("integer", "number") or d.key == "resources":
            assert d.spec.maximum is not None, d.key


def test_http_api_url_is_accepted_for_loopback_hosts_only() -> None:
    for url in ("http://127.0.0.1:3000/api", "http://localhost:8080", "http://[::1]:9/api", "https://app.daytona.io/api"):
        warnings: list[str] = []
        assert parse_settings({"apiUrl": url}, warnings.append).api_url == url
        assert warnings == []


USER_ONLY_VALUES = {
    "apiUrl": "https://elsewhere.test",
    "target": "eu",
    "local.isolation": "none",
    "local.network": True,
    "workspace.writeBack": True,
    "sync.include": [".env"],
    "local.pythonPath": "./.venv/bin/python",
}


@pytest.mark.parametrize("key", sorted(USER_ONLY_VALUES))
def test_user_only_settings_from_a_folder_are_refused_with_a_warning(key: str) -> None:
    value = USER_ONLY_VALUES[key]
    user = parse_settings({"timeout": 5})
    warnings: list[str] = []
    s = parse_settings({key: value, "timeout": 7}, warnings.append, user, folder="file:///w")
    assert s == parse_settings({"timeout": 7}, base=user)  # the rest of the folder's settings apply
    assert len(warnings) == 1 and f"Ignored daytona.{key}" in warnings[0] and "file:///w" in warnings[0]
    # the same value from a user-level source is honoured, and a folder repeating the user's value is no warning
    from_user = parse_settings({key: value})
    assert from_user != Settings()
    assert parse_settings({key: value}, warnings.append, from_user, folder="file:///w") == from_user
    assert len(warnings) == 1
    assert key in user_only_keys()


def test_every_user_only_setting_is_tested_as_refused_from_a_folder() -> None:
    assert sorted(user_only_keys()) == sorted(USER_ONLY_VALUES)


def test_workspace_settings_nest_like_local_and_sync_include_takes_only_relative_paths() -> None:
    warnings: list[str] = []
    s = parse_settings({"cwd": "workspaceFolder", "sync": {"include": ["a/.env", "id_rsa"], "maxFileBytes": 5}})
    assert (s.cwd, s.sync.include, s.sync.max_file_bytes) == ("workspaceFolder", ("a/.env", "id_rsa"), 5)
    for bad in (["/etc/passwd"], ["../.env"], ["a/../../b"], [""], [3], "notalist"):
        assert parse_settings({"sync.include": bad}, warnings.append).sync.include == ()
    assert len(warnings) == 6 and all("workspace-relative" in w or "expected" in w for w in warnings)
    assert parse_settings({"cwd": "elsewhere"}, warnings.append).cwd == "fileDirectory"


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
