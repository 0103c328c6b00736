"""The server's settings, each declared once: default, type, bounds, scope and doc line in one :func:`setting` field
of :class:`Settings` (or of one of its groups: ``local``, ``workspace``, ``sync``).

How they are read from the wire, checked and turned into the README table and the VS Code ``package.json`` settings:
:mod:`daytona_lsp.lsp.settings` (importers take :class:`Settings` from there too).
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
    return all(k in RESOURCE_KEYS and is_int(x) for k, x in value.items())


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


def is_int(v: Any) -> bool:
    """An integer, not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)
