"""The server's settings: typed, with defaults and docstrings; camelCase on the wire.

Wire shape (the ``daytona`` section of ``workspace/configuration``, the ``initializationOptions`` or
``didChangeConfiguration``'s ``settings.daytona``)::

    {
      "backend": "auto",              # auto | daytona | local
      "apiUrl": "", "target": "", "snapshot": "", "image": "",
      "envVars": {}, "resources": {"cpu": 1, "memory": 1, "disk": 3}, "labels": {},
      "autoStopInterval": 15, "autoDeleteInterval": 60,
      "timeout": 60, "languages": ["python", "javascript", "typescript", "bash"],
      "outputMode": "channel",        # channel | diagnostics | both
      "maxOutputBytes": 1048576, "prewarm": true,
      "local": {"isolation": "bubblewrap", "network": false}
    }

Nested keys may also be given dotted (``"local.network": true``), as VS Code's ``package.json`` names them
(``daytona.local.network``). An invalid value produces a warning and the default; unknown keys are ignored.
The Daytona API key is never a setting: it comes from the environment (``DAYTONA_API_KEY``) only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from daytona_lsp.core.environment import LANGUAGES
from daytona_lsp.core.output import DEFAULT_MAX_OUTPUT_BYTES

BACKENDS = ("auto", "daytona", "local")
OUTPUT_MODES = ("channel", "diagnostics", "both")
ISOLATIONS = ("bubblewrap", "none")
RESOURCE_KEYS = ("cpu", "memory", "disk", "gpu")


@dataclass(frozen=True)
class LocalSettings:
    isolation: str = "bubblewrap"
    """How the local sandbox isolates code: ``bubblewrap`` (namespaces, no host home) or ``none`` (unisolated)."""
    network: bool = False
    """Whether code in the local sandbox may use the network."""


@dataclass(frozen=True)
class Settings:
    backend: str = "auto"
    """``auto`` (Daytona when DAYTONA_API_KEY is set, else local) | ``daytona`` | ``local``."""
    api_url: str = ""
    """Daytona API URL (empty: the SDK's default or DAYTONA_API_URL)."""
    target: str = ""
    """Daytona target region (empty: the organisation's default)."""
    snapshot: str = ""
    """Daytona snapshot to create sandboxes from (exclusive with ``image``)."""
    image: str = ""
    """Container image to create sandboxes from (exclusive with ``snapshot``)."""
    env_vars: Mapping[str, str] = field(default_factory=dict)
    """Environment variables set in the sandbox."""
    resources: Mapping[str, int] = field(default_factory=dict)
    """Sandbox resources ``{cpu, memory, disk, gpu}`` (only with ``image``); empty: Daytona's defaults."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Extra labels on Daytona sandboxes (``created-by: daytona-lsp`` is always set)."""
    auto_stop_interval: int = 15
    """Minutes of inactivity after which Daytona stops the sandbox (0: never)."""
    auto_delete_interval: int = 60
    """Minutes after stopping after which Daytona deletes the sandbox (-1: never, 0: at once)."""
    timeout: float = 60.0
    """Seconds a run may take before it is killed (exit 124)."""
    languages: tuple[str, ...] = LANGUAGES
    """Languages that may run (subset of python, javascript, typescript, bash)."""
    output_mode: str = "channel"
    """Where output goes: ``channel`` (output notifications / log), ``diagnostics`` (one Information diagnostic) or ``both``."""
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    """Output kept per run; beyond it the head and tail are kept (``truncated: true``)."""
    prewarm: bool = True
    """Create the workspace's sandbox in the background when the first supported document opens."""
    local: LocalSettings = field(default_factory=LocalSettings)
    """The local (bubblewrap) backend."""

    def sandbox_spec(self) -> tuple[Any, ...]:
        """Everything that shapes a sandbox: when it changes, the next run needs a new environment."""
        return (
            self.backend,
            self.api_url,
            self.target,
            self.snapshot,
            self.image,
            tuple(sorted(self.env_vars.items())),
            tuple(sorted(self.resources.items())),
            tuple(sorted(self.labels.items())),
            self.auto_stop_interval,
            self.auto_delete_interval,
            self.timeout,
            tuple(self.languages),
            self.max_output_bytes,
            self.local,
        )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _is_str_map(v: Any) -> bool:
    return isinstance(v, Mapping) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items())


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# field name -> (check, what a valid value is, converter)
_CHECKS: dict[str, tuple[Callable[[Any], bool], str, Callable[[Any], Any]]] = {
    "backend": (lambda v: v in BACKENDS, f"one of {', '.join(BACKENDS)}", str),
    "api_url": (
        lambda v: isinstance(v, str) and (v == "" or v.startswith(("http://", "https://"))),
        "an http(s) URL or empty",
        str,
    ),
    "target": (lambda v: isinstance(v, str), "a string", str),
    "snapshot": (lambda v: isinstance(v, str), "a string", str),
    "image": (lambda v: isinstance(v, str), "a string", str),
    "env_vars": (_is_str_map, "an object of strings", dict),
    "resources": (
        lambda v: isinstance(v, Mapping) and all(k in RESOURCE_KEYS and _is_int(x) and x >= 0 for k, x in v.items()),
        f"an object with integer {', '.join(RESOURCE_KEYS)}",
        dict,
    ),
    "labels": (_is_str_map, "an object of strings", dict),
    "auto_stop_interval": (lambda v: _is_int(v) and v >= 0, "an integer ≥ 0 (minutes)", int),
    "auto_delete_interval": (lambda v: _is_int(v) and v >= -1, "an integer ≥ -1 (minutes)", int),
    "timeout": (lambda v: _is_number(v) and 1 <= v <= 24 * 3600, "a number of seconds between 1 and 86400", float),
    "languages": (
        lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(x in LANGUAGES for x in v),
        f"a non-empty list of {', '.join(LANGUAGES)}",
        lambda v: tuple(dict.fromkeys(v)),
    ),
    "output_mode": (lambda v: v in OUTPUT_MODES, f"one of {', '.join(OUTPUT_MODES)}", str),
    "max_output_bytes": (lambda v: _is_int(v) and v >= 1024, "an integer ≥ 1024", int),
    "prewarm": (lambda v: isinstance(v, bool), "true or false", bool),
}
_LOCAL_CHECKS: dict[str, tuple[Callable[[Any], bool], str, Callable[[Any], Any]]] = {
    "isolation": (lambda v: v in ISOLATIONS, f"one of {', '.join(ISOLATIONS)}", str),
    "network": (lambda v: isinstance(v, bool), "true or false", bool),
}


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"local": {"network": true}}`` and ``{"local.network": true}`` both → ``{"local.network": true}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            continue
        name = prefix + key
        if name == "local" and isinstance(value, Mapping):
            out.update(_flatten(value, "local."))
        else:
            out[name] = value
    return out


def wire_keys() -> dict[str, str]:
    """camelCase wire key → field path (``local.network`` → ``local.network``; ``apiUrl`` → ``api_url``)."""
    keys = {_camel(f): f for f in _CHECKS}
    keys.update({f"local.{_camel(f)}": f"local.{f}" for f in _LOCAL_CHECKS})
    return keys


def parse_settings(
    data: Any,
    warn: Callable[[str], None] | None = None,
    base: Settings | None = None,
) -> Settings:
    """Settings from wire data layered over ``base`` (defaults when None). Invalid values → ``warn`` + the base value."""
    base = base or Settings()
    if data is None:
        return base
    if not isinstance(data, Mapping):
        if warn:
            warn(f"daytona settings must be an object, got {type(data).__name__}; using the defaults")
        return base
    flat = _flatten(data)
    keys = wire_keys()
    changes: dict[str, Any] = {}
    local_changes: dict[str, Any] = {}
    for wire, value in flat.items():
        path = keys.get(wire)
        if path is None or value is None:
            continue  # unknown keys (other tools' settings, future ones) and explicit nulls keep the base
        if path.startswith("local."):
            name = path[len("local.") :]
            check, expected, convert = _LOCAL_CHECKS[name]
            target, current = local_changes, getattr(base.local, name)
        else:
            name = path
            check, expected, convert = _CHECKS[name]
            target, current = changes, getattr(base, name)
        try:
            ok = bool(check(value))
        except Exception:
            ok = False
        if ok:
            target[name] = convert(value)
        elif warn:
            warn(f"Invalid daytona setting {wire}={_show(value)}: expected {expected}; using {_show(current)}")
    if local_changes:
        changes["local"] = dataclasses.replace(base.local, **local_changes)
    settings = dataclasses.replace(base, **changes) if changes else base
    if settings.snapshot and settings.image:
        if warn:
            warn("Invalid daytona settings: snapshot and image are exclusive; ignoring image")
        settings = dataclasses.replace(settings, image="", resources={})
    if settings.resources and not settings.image:
        if warn:
            warn("daytona setting resources applies only with image; ignoring resources")
        settings = dataclasses.replace(settings, resources={})
    return settings


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def to_wire(settings: Settings) -> dict[str, Any]:
    """The settings as flat camelCase wire keys (``local.*`` dotted)."""
    out: dict[str, Any] = {}
    for wire, path in wire_keys().items():
        if path.startswith("local."):
            value = getattr(settings.local, path[len("local.") :])
        else:
            value = getattr(settings, path)
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        out[wire] = value
    return out


def default_settings_wire() -> dict[str, Any]:
    """camelCase keys → default values; the VS Code ``package.json`` ``daytona.*`` settings must match these."""
    return to_wire(Settings())


def settings_docs() -> dict[str, str]:
    """camelCase keys → the field's docstring (for README tables and package.json descriptions)."""
    import ast
    import inspect

    docs: dict[str, str] = {}
    for cls, prefix in ((Settings, ""), (LocalSettings, "local.")):
        tree = ast.parse(inspect.getsource(cls))
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, nxt in zip(body, body[1:], strict=False):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id != "local":
                if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
                    docs[prefix + _camel(node.target.id)] = str(nxt.value.value)
    return docs
