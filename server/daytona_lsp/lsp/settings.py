"""The server's settings on the wire: parsed and checked against their declarations (each setting declared once —
default, type, bounds, scope and doc line in one field — in :mod:`daytona_lsp.lsp.settings_fields`).

Wire shape (the ``daytona`` section of ``workspace/configuration``, the ``initializationOptions`` or
``didChangeConfiguration``'s ``settings.daytona``): camelCase keys, ``local.*`` nested or dotted
(``{"local": {"network": true}}`` or ``{"local.network": true}``, as VS Code's ``package.json`` names them).

- An invalid value produces a warning and keeps the base value; unknown keys are ignored.
- A number out of its bounds produces a warning and is clamped to them.
- A *user-only* setting (it decides where the API key goes, or how isolated code runs) is honoured only from user-level
  sources: ``initializationOptions``, the client's pushed settings, ``workspace/configuration`` without a scope (user
  settings), the environment. A workspace folder's value (``workspace/configuration`` with a ``scopeUri``) is refused
  with a warning. VS Code's ``package.json`` declares them ``scope: "machine"`` and ``restrictedConfigurations``.

The README settings table and the VS Code ``package.json`` settings are derived from these declarations (and checked
against them by tests). The Daytona API key is never a setting: it comes from the environment (``DAYTONA_API_KEY``) only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from daytona_lsp.lsp.settings_fields import Settings, Spec, is_int


@dataclass(frozen=True)
class Declared:
    """One setting as the wire sees it."""

    key: str
    """camelCase wire key, ``local.*`` dotted."""
    path: tuple[str, ...]
    """Field names from :class:`Settings` (``("local", "network")``)."""
    default: Any
    spec: Spec

    @property
    def kind(self) -> str:
        """The JSON type: boolean | integer | number | string | array | object."""
        return _kind(self.default)


def _kind(value: Any) -> str:
    for python_type, name in (
        (bool, "boolean"),
        (int, "integer"),
        (float, "number"),
        (str, "string"),
        ((tuple, list), "array"),
        (Mapping, "object"),
    ):
        if isinstance(value, python_type):  # type: ignore[arg-type]
            return name
    raise TypeError(f"no JSON type for {value!r}")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _declare(cls: type, prefix: tuple[str, ...] = ()) -> list[Declared]:
    out: list[Declared] = []
    for f in dataclasses.fields(cls):
        if "spec" in f.metadata:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc,operator]
            path = (*prefix, f.name)
            out.append(Declared(".".join(_camel(p) for p in path), path, default, f.metadata["spec"]))
        else:  # a nested group (``local``)
            out.extend(_declare(type(f.default_factory()), (*prefix, f.name)))  # type: ignore[operator]
    return out


SETTINGS: tuple[Declared, ...] = tuple(_declare(Settings))
"""Every setting, in declaration order."""
BY_KEY: dict[str, Declared] = {d.key: d for d in SETTINGS}


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return is_int(value)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, (list, tuple))
    return isinstance(value, Mapping)


def expected(d: Declared) -> str:
    """What a valid value of ``d`` is, in words."""
    spec = d.spec
    if spec.expected:
        return spec.expected
    if d.kind == "array" and spec.choices:
        return f"a non-empty list of {', '.join(spec.choices)}"
    if spec.choices:
        return f"one of {', '.join(spec.choices)}"
    return {"boolean": "true or false", "integer": "an integer", "number": "a number", "string": "a string"}[d.kind]


def _valid(d: Declared, value: Any) -> bool:
    if not _type_ok(d.kind, value):
        return False
    choices = d.spec.choices
    if d.kind == "array" and not all(isinstance(x, str) for x in value):
        return False
    if d.kind == "array" and choices and (not value or any(x not in choices for x in value)):
        return False
    if d.kind == "string" and choices and value not in choices:
        return False
    return d.spec.check is None or bool(d.spec.check(value))


def _clamp(d: Declared, value: Any) -> Any:
    lo, hi = d.spec.minimum, d.spec.maximum
    if lo is None and hi is None:
        return value
    if isinstance(value, Mapping):
        return {k: _clamp(d, v) for k, v in value.items()}
    if lo is not None and value < lo:
        return type(value)(lo)
    if hi is not None and value > hi:
        return type(value)(hi)
    return value


def _convert(d: Declared, value: Any) -> Any:
    if d.kind == "array":
        return tuple(dict.fromkeys(value))
    if d.kind == "object":
        return dict(value)
    if d.kind == "number":
        return float(value)
    return value


def bounds_text(d: Declared) -> str:
    """``1 … 86400`` (or ``≥ 0``, ``≤ 10``; empty without bounds)."""
    lo, hi = d.spec.minimum, d.spec.maximum
    if lo is not None and hi is not None:
        return f"{lo} … {hi}"
    if lo is not None:
        return f"≥ {lo}"
    return f"≤ {hi}" if hi is not None else ""


GROUPS = frozenset(d.key.split(".")[0] for d in SETTINGS if "." in d.key)
"""The nested groups (``local``, ``sync``, ``workspace``)."""


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"local": {"network": true}}`` and ``{"local.network": true}`` both → ``{"local.network": true}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            continue
        name = prefix + key
        if name in GROUPS and isinstance(value, Mapping):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _get(settings: Settings, path: tuple[str, ...]) -> Any:
    value: Any = settings
    for name in path:
        value = getattr(value, name)
    return value


def _replace(settings: Settings, changes: Mapping[tuple[str, ...], Any]) -> Settings:
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, value in changes.items():
        if len(path) == 1:
            top[path[0]] = value
        else:
            nested.setdefault(path[0], {})[path[1]] = value
    for name, values in nested.items():
        top[name] = dataclasses.replace(getattr(settings, name), **values)
    return dataclasses.replace(settings, **top) if top else settings


def parse_settings(
    data: Any,
    warn: Callable[[str], None] | None = None,
    base: Settings | None = None,
    *,
    folder: str | None = None,
) -> Settings:
    """Settings from wire data layered over ``base`` (defaults when None).

    Invalid values → ``warn`` + the base value; numbers out of bounds → ``warn`` + clamped. ``folder``: the data is a
    workspace folder's settings (that URI); user-only settings in it that differ from ``base`` are refused with a warning.
    """
    base = base or Settings()
    say = warn or (lambda _message: None)
    if data is None:
        return base
    if not isinstance(data, Mapping):
        say(f"daytona settings must be an object, got {type(data).__name__}; using the defaults")
        return base
    changes: dict[tuple[str, ...], Any] = {}
    for wire, value in _flatten(data).items():
        d = BY_KEY.get(wire)
        if d is None or value is None:
            continue  # unknown keys (other tools' settings, future ones) and explicit nulls keep the base
        current = _get(base, d.path)
        try:
            ok = _valid(d, value)
        except Exception:
            ok = False
        if not ok:
            say(f"Invalid daytona setting {wire}={_show(value)}: expected {expected(d)}; using {_show(current)}")
            continue
        new = _convert(d, _clamp(d, value))
        if new != _convert(d, value):
            say(f"daytona setting {wire}={_show(value)} is out of bounds ({bounds_text(d)}); using {_show(new)}")
        if folder is not None and d.spec.user_only and new != current:
            say(
                f"Ignored daytona.{wire} from the settings of workspace folder {folder}: it decides "
                f"{d.spec.user_only}, so only user settings may set it; using {_show(current)}"
            )
            continue
        changes[d.path] = new
    settings = _replace(base, changes)
    if settings.snapshot and settings.image:
        say("Invalid daytona settings: snapshot and image are exclusive; ignoring image")
        settings = dataclasses.replace(settings, image="", resources={})
    if settings.resources and not settings.image:
        say("daytona setting resources applies only with image; ignoring resources")
        settings = dataclasses.replace(settings, resources={})
    return settings


def risk_warnings(settings: Settings) -> list[str]:
    """Warnings for settings in effect that weaken the local sandbox (shown once by the server)."""
    out = []
    if settings.local.isolation == "none":
        out.append(
            'daytona.local.isolation is "none": local runs are UNISOLATED — code runs on this machine as the '
            "server's user and can read and change its files."
        )
    if settings.local.network:
        out.append("daytona.local.network is true: code in the local sandbox can use the network (network on).")
    return out


def run_flags(settings: Settings) -> list[str]:
    """What a local run's header says about weakened isolation: ``UNISOLATED``, ``network on``."""
    flags = []
    if settings.local.isolation == "none":
        flags.append("UNISOLATED")
    if settings.local.network:
        flags.append("network on")
    return flags


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _wire_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


def to_wire(settings: Settings) -> dict[str, Any]:
    """The settings as flat camelCase wire keys (``local.*`` dotted)."""
    return {d.key: _wire_value(_get(settings, d.path)) for d in SETTINGS}


def default_settings_wire() -> dict[str, Any]:
    """camelCase keys → default values; the VS Code ``package.json`` ``daytona.*`` settings must match these."""
    return to_wire(Settings())


def settings_docs() -> dict[str, str]:
    """camelCase keys → the setting's doc line (for README tables and package.json descriptions)."""
    return {d.key: d.spec.doc for d in SETTINGS}


def user_only_keys() -> list[str]:
    """The settings honoured only from user-level sources."""
    return [d.key for d in SETTINGS if d.spec.user_only]


def package_json_properties() -> dict[str, dict[str, Any]]:
    """The VS Code ``contributes.configuration.properties`` the declarations imply (checked against package.json)."""
    props: dict[str, dict[str, Any]] = {}
    for d in SETTINGS:
        prop: dict[str, Any] = {"type": d.kind, "default": _wire_value(d.default), "markdownDescription": d.spec.doc}
        if d.kind == "string" and d.spec.choices:
            prop["enum"] = list(d.spec.choices)
        if d.kind == "array":
            prop["items"] = {"type": "string", **({"enum": list(d.spec.choices)} if d.spec.choices else {})}
        for bound in ("minimum", "maximum"):
            value = getattr(d.spec, bound)
            if value is not None and d.kind != "object":
                prop[bound] = value
        prop["scope"] = "machine" if d.spec.user_only else "resource"
        props[f"daytona.{d.key}"] = prop
    return props


def markdown_table() -> str:
    """The README's settings table."""
    import json

    rows = ["| setting | default | bounds | meaning |", "|---|---|---|---|"]
    for d in SETTINGS:
        doc = d.spec.doc + (" **User settings only.**" if d.spec.user_only else "")
        bounds = bounds_text(d)
        default = json.dumps(_wire_value(d.default), ensure_ascii=False)
        rows.append(f"| `daytona.{d.key}` | `{default}` | {bounds} | {doc} |")
    return "\n".join(rows) + "\n"
