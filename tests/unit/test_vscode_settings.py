"""The VS Code extension's `daytona.*` settings mirror the server's settings: same names, same defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from daytona_lsp.lsp.settings import (
    default_settings_wire,
    package_json_properties,
    parse_settings,
    settings_docs,
    user_only_keys,
)

PACKAGE_JSON = Path(__file__).resolve().parents[2] / "vscode-extension" / "package.json"
EXTENSION_ONLY = ("daytona.server.", "daytona.trace.")
"""Settings only the extension reads (how to start the server, LSP tracing); the server ignores them."""


def _properties() -> dict[str, dict[str, Any]]:
    package = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))
    props: dict[str, dict[str, Any]] = package["contributes"]["configuration"]["properties"]
    return props


def _server_properties() -> dict[str, dict[str, Any]]:
    return {
        name.removeprefix("daytona."): spec
        for name, spec in _properties().items()
        if name.startswith("daytona.") and not name.startswith(EXTENSION_ONLY)
    }


def test_package_json_declares_every_server_setting_and_no_other() -> None:
    assert sorted(_server_properties()) == sorted(default_settings_wire())


@pytest.mark.parametrize("key", sorted(default_settings_wire()))
def test_package_json_default_equals_server_default(key: str) -> None:
    spec = _server_properties()[key]
    assert "default" in spec, f"daytona.{key} has no default"
    assert spec["default"] == default_settings_wire()[key]


@pytest.mark.parametrize("key", sorted(default_settings_wire()))
def test_package_json_type_accepts_the_default(key: str) -> None:
    spec = _server_properties()[key]
    default = spec["default"]
    python_type = {
        "boolean": bool,
        "integer": int,
        "number": (int, float),
        "string": str,
        "array": list,
        "object": dict,
    }[spec["type"]]
    assert isinstance(default, python_type)
    if spec["type"] in ("integer", "number"):
        assert not isinstance(default, bool)
    if "enum" in spec:
        assert default in spec["enum"]


def test_package_json_enums_are_values_the_server_accepts() -> None:
    warnings: list[str] = []
    for key, spec in _server_properties().items():
        values = spec.get("enum") or spec.get("items", {}).get("enum") or []
        for value in values:
            wire = {key: [value] if spec["type"] == "array" else value}
            parse_settings(wire, warnings.append)
    assert warnings == []


def test_package_json_defaults_parse_without_warnings_as_vscode_sends_them() -> None:
    # VS Code's getConfiguration("daytona") nests dotted names: daytona.local.network → {"local": {"network": …}}.
    nested: dict[str, Any] = {}
    for key, spec in _server_properties().items():
        node = nested
        *parents, leaf = key.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = spec["default"]
    # ...plus the extension-only keys, which the server must ignore without a warning.
    nested["server"] = {"command": [], "pythonPath": ""}
    nested["trace"] = {"server": "off"}
    warnings: list[str] = []
    settings = parse_settings(nested, warnings.append)
    assert warnings == []
    assert settings == parse_settings({})


def test_every_server_setting_is_documented_in_package_json() -> None:
    docs = settings_docs()
    for key, spec in _server_properties().items():
        assert spec.get("markdownDescription") or spec.get("description"), f"daytona.{key} has no description"
        assert key in docs


def test_extension_only_settings_do_not_clash_with_server_settings() -> None:
    extension_only = [name for name in _properties() if name.startswith(EXTENSION_ONLY)]
    assert extension_only, "the server command settings are missing"
    for name in extension_only:
        assert name.removeprefix("daytona.").split(".")[0] not in {k.split(".")[0] for k in default_settings_wire()}


def test_api_key_is_not_a_setting() -> None:
    assert not [name for name in _properties() if "key" in name.lower() or "token" in name.lower()]


@pytest.mark.parametrize("name", sorted(package_json_properties()))
def test_package_json_setting_is_the_declared_one(name: str) -> None:
    # type, default, doc line, enum, bounds and scope ("machine" for user-only settings) come from one declaration
    declared = package_json_properties()[name]
    actual = _properties()[name]
    assert {k: actual.get(k) for k in declared} == declared


def test_user_only_settings_are_restricted_in_untrusted_workspaces() -> None:
    package = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))
    restricted = package["capabilities"]["untrustedWorkspaces"]["restrictedConfigurations"]
    assert user_only_keys() and all(f"daytona.{key}" in restricted for key in user_only_keys())


def test_no_palette_command_has_the_name_of_a_server_command() -> None:
    """vscode-languageclient registers each of the server's executeCommand commands as a VS Code command; an extension
    command of the same name makes the client's start fail ("command 'daytona.…' already exists")."""
    from daytona_lsp.lsp.features.commands import COMMANDS

    package = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))
    palette = {c["command"] for c in package["contributes"]["commands"]}
    assert palette.isdisjoint(COMMANDS), palette & set(COMMANDS)
