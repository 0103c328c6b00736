"""The server's settings, each declared once: default, type, bounds, scope and doc line in one :func:`setting` field.

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
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from daytona_lsp.core.environment import LANGUAGES, MAX_FILE_BYTES, MAX_TOTAL_BYTES
from daytona_lsp.core.output import DEFAULT_MAX_OUTPUT_BYTES

BACKENDS = ("auto", "daytona", "local")
OUTPUT_MODES = ("channel", "diagnostics", "both")
ISOLATIONS = ("bubblewrap", "none")
SESSION_MODES = ("cells", "document", "none")
RESOURCE_KEYS = ("cpu", "memory", "disk", "gpu")
CWD_MODES = ("fileDirectory", "workspaceFolder")
MAX_OUTPUT_BYTES = 16 * 1024 * 1024
"""Output the server keeps per run at most (the server holds it in memory)."""
KEY_DESTINATION = "where your Daytona API key is sent"
ISOLATION = "how isolated code runs on this machine"
INTERPRETER = "which program of this machine is started (outside the sandbox, to find its installation) to run code"
WRITES = "whether runs may change the files of your workspace"
SECRETS = "which of your secret files a run may see (and Daytona receive)"

T = TypeVar("T")


@dataclass(frozen=True)
class Spec:
    """Everything about one setting but its name and default (those are the field's)."""

    doc: str
    """One line of Markdown (README table, package.json ``markdownDescription``)."""
    choices: tuple[str, ...] = ()
    """Allowed values of a string, or of an array's items."""
    minimum: int | float | None = None
    maximum: int | float | None = None
    """Bounds of a number (of each value, for an object of numbers); out of them → clamped with a warning."""
    user_only: str = ""
    """Non-empty: honoured only from user-level sources; says what the setting decides (why)."""
    check: Callable[[Any], bool] | None = None
    """An extra validity check beyond type and choices."""
    expected: str = ""
    """What a valid value is, when ``check`` needs saying."""


def setting(default: T, doc: str, **spec: Any) -> T:
    """A settings field: its default plus its :class:`Spec` (the one declaration of the setting)."""
    meta = {"spec": Spec(doc, **spec)}
    if isinstance(default, dict):
        return cast(T, field(default_factory=lambda: dict(default), metadata=meta))
    return cast(T, field(default=default, metadata=meta))


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _api_url_ok(value: str) -> bool:
    if value == "":
        return True
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    if not parts.hostname:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and _loopback(parts.hostname))


def _str_map(value: Mapping[Any, Any]) -> bool:
    return all(isinstance(k, str) and isinstance(x, str) for k, x in value.items())


def _resources_ok(value: Mapping[Any, Any]) -> bool:
    return all(k in RESOURCE_KEYS and _is_int(x) for k, x in value.items())


def _relative_paths(value: Any) -> bool:
    """Workspace-relative ``/`` paths or bare file names: no absolute path, no ``..``, no empty part."""
    return all(
        isinstance(x, str) and x and "\x00" not in x and not x.startswith("/") and ".." not in x.split("/")
        for x in value
    )


@dataclass(frozen=True)
class LocalSettings:
    isolation: str = setting(
        "bubblewrap",
        "`bubblewrap` (namespaces, no host home) or `none` (UNISOLATED: code runs on this machine as you, with a "
        "warning).",
        choices=ISOLATIONS,
        user_only=ISOLATION,
    )
    network: bool = setting(
        False, "Whether code in the local sandbox may use the network (`true`: a warning).", user_only=ISOLATION
    )
    memory_mb: int = setting(
        2048,
        "MiB of memory + swap for all of the local sandbox's processes together, its files in `/tmp`, `/dev/shm` "
        "and (as root) `/workspace` included; a run past it is killed (`memory limit of N MiB reached`).",
        minimum=64,
        maximum=262144,
    )
    disk_mb: int = setting(
        1024,
        "MiB the local sandbox may write in total (`/workspace`, `/tmp`, `/dev/shm`; as root), kept off the disk; "
        "past it writes fail with ENOSPC. Keep it below `memoryMb` (the files are held in memory).",
        minimum=16,
        maximum=262144,
    )
    max_concurrent_runs: int = setting(
        16,
        "Runs at once in the local sandbox; more wait for a free slot (their output says so).",
        minimum=1,
        maximum=256,
    )

    python_path: str = setting(
        "",
        "The Python interpreter for python runs in the local sandbox (empty: the workspace's `.venv` / `venv` when "
        "there is one, else the server's own); its installation is visible read-only in the sandbox.",
        user_only=INTERPRETER,
    )

    def environment_options(self) -> dict[str, Any]:
        """The ``LocalCodeEnvironment`` keyword arguments these settings give (same names; ``python_path`` is its
        ``python``, None when empty)."""
        options = dataclasses.asdict(self)
        options["python"] = options.pop("python_path") or None
        return options


@dataclass(frozen=True)
class WorkspaceSettings:
    write_back: bool = setting(
        False,
        "Copy the workspace files a run created or changed (in the sandbox's copy) back into the workspace folder; "
        "off: your files are never written (the run result lists them as `changedFiles`).",
        user_only=WRITES,
    )


@dataclass(frozen=True)
class SyncSettings:
    include: tuple[str, ...] = setting(
        (),
        "Workspace files a run sees although an ignore rule or the secrets deny-list (`.env*`, `*.pem`, `*.key`, "
        "`id_rsa*`…) leaves them out: workspace-relative paths or file names.",
        user_only=SECRETS,
        check=_relative_paths,
        expected="a list of workspace-relative paths or file names",
    )
    max_file_bytes: int = setting(
        MAX_FILE_BYTES,
        "Largest workspace file a run sees (Daytona: uploads); larger ones are skipped and named in one output line.",
        minimum=1,
        maximum=1024**3,
    )
    max_total_bytes: int = setting(
        MAX_TOTAL_BYTES,
        "Workspace bytes a run sees in total (Daytona: uploads); past it files are skipped and named in one line.",
        minimum=1,
        maximum=16 * 1024**3,
    )


@dataclass(frozen=True)
class Settings:
    backend: str = setting(
        "auto", "`auto` (Daytona when DAYTONA_API_KEY is set, else local), `daytona` or `local`.", choices=BACKENDS
    )
    api_url: str = setting(
        "",
        "Daytona API URL (empty: the SDK's default or DAYTONA_API_URL); `https://`, or `http://` for loopback hosts.",
        user_only=KEY_DESTINATION,
        check=_api_url_ok,
        expected="an https:// URL, an http:// URL of a loopback host, or empty",
    )
    target: str = setting("", "Daytona target region (empty: the organisation's default).", user_only=KEY_DESTINATION)
    snapshot: str = setting("", "Daytona snapshot to create sandboxes from (exclusive with `image`).")
    image: str = setting("", "Container image to create sandboxes from (exclusive with `snapshot`).")
    env_vars: Mapping[str, str] = setting(
        {}, "Environment variables set in the sandbox.", check=_str_map, expected="an object of strings"
    )
    resources: Mapping[str, int] = setting(
        {},
        "Daytona sandbox resources `{cpu, memory, disk, gpu}` (only with `image`); empty: Daytona's defaults.",
        minimum=0,
        maximum=1024,
        check=_resources_ok,
        expected=f"an object with integer {', '.join(RESOURCE_KEYS)}",
    )
    labels: Mapping[str, str] = setting(
        {},
        "Extra labels on Daytona sandboxes (`created-by: daytona-lsp` is always set).",
        check=_str_map,
        expected="an object of strings",
    )
    auto_stop_interval: int = setting(
        15, "Minutes of inactivity after which Daytona stops the sandbox (0: never).", minimum=0, maximum=43200
    )
    auto_delete_interval: int = setting(
        60,
        "Minutes after stopping after which Daytona deletes the sandbox (-1: never, 0: at once).",
        minimum=-1,
        maximum=43200,
    )
    timeout: float = setting(60.0, "Seconds a run may take before it is killed (exit 124).", minimum=1, maximum=86400)
    languages: tuple[str, ...] = setting(
        LANGUAGES, "Languages that may run (subset of python, javascript, typescript, bash).", choices=LANGUAGES
    )
    output_mode: str = setting(
        "channel",
        "Where output goes: `channel` (output notifications / log), `diagnostics` (one Information diagnostic) or "
        "`both`.",
        choices=OUTPUT_MODES,
    )
    max_output_bytes: int = setting(
        DEFAULT_MAX_OUTPUT_BYTES,
        "Output kept per run; beyond it the head and tail are kept (`truncated: true`).",
        minimum=1024,
        maximum=MAX_OUTPUT_BYTES,
    )
    session: str = setting(
        "cells",
        "Which runs keep state in the document's session (a persistent interpreter): `cells` (`# %%` cells and "
        "selections; whole-file runs start fresh), `document` (whole-file runs too) or `none` (every run fresh).",
        choices=SESSION_MODES,
    )
    prewarm: bool = setting(
        True, "Create the workspace's sandbox in the background when the first supported document opens."
    )
    cwd: str = setting(
        "fileDirectory",
        "Where a file of a workspace folder runs: `fileDirectory` (its own directory) or `workspaceFolder` (the "
        "folder's root).",
        choices=CWD_MODES,
    )
    workspace: WorkspaceSettings = field(default_factory=WorkspaceSettings)
    """What runs may do to the workspace folder."""
    sync: SyncSettings = field(default_factory=SyncSettings)
    """Which workspace files a run sees."""
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


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return _is_int(value)
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
