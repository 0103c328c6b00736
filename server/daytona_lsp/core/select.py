"""Settings → environment: pick the backend (``auto | daytona | local``) and build it.

``auto`` means Daytona when an API key is configured (or ``DAYTONA_API_KEY`` is set), else the isolated local sandbox.
Nothing here imports the Daytona SDK: :mod:`daytona_lsp.core.daytona` is imported only when a Daytona environment is
actually built.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

from daytona_lsp.core import secrets
from daytona_lsp.core.environment import LANGUAGES, CodeEnvironment, CodeLanguage
from daytona_lsp.core.languages import language_for_path as language_for_path  # re-exported (older callers)
from daytona_lsp.core.output import DEFAULT_MAX_OUTPUT_BYTES

Backend = Literal["auto", "daytona", "local"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)
ResolvedBackend = Literal["daytona", "local"]



def resolve_backend(backend: str, api_key: str | None = None) -> ResolvedBackend:
    """``"daytona"`` or ``"local"``: ``auto`` is Daytona iff ``api_key`` is given or ``DAYTONA_API_KEY`` is set.

    An explicit ``"daytona"`` stays Daytona even without a key (building it then fails with a clear error).
    """
    if backend == "auto":
        return "daytona" if secrets.api_key(api_key) else "local"
    if backend == "daytona":
        return "daytona"
    if backend == "local":
        return "local"
    raise ValueError(f"Unknown backend {backend!r}; expected one of: {', '.join(BACKENDS)}")


def create_environment(
    backend: str = "auto",
    *,
    api_key: str | None = None,
    timeout: float = 60,
    languages: Sequence[CodeLanguage] = LANGUAGES,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    daytona: Mapping[str, Any] | None = None,
    local: Mapping[str, Any] | None = None,
) -> CodeEnvironment:
    """Build the environment for ``backend`` (``auto | daytona | local``).

    ``daytona`` / ``local`` hold extra keyword arguments for :class:`~daytona_lsp.core.daytona.DaytonaCodeEnvironment`
    (``api_url``, ``target``, ``snapshot``, ``image``, ``labels``…) and
    :class:`~daytona_lsp.core.local.LocalCodeEnvironment` (``isolation``, ``network``, ``python``…); only the chosen
    backend's are used. ``None`` values in them mean "the default".

    Raises ``ValueError`` for an unknown backend or bad arguments, ``MissingCredentialsError`` (a ``ValueError``) for
    ``backend="daytona"`` without an API key, :class:`~daytona_lsp.core.local.LocalSandboxError` when the local sandbox
    has no bubblewrap (its message names the ``isolation="none"`` opt-out).
    """
    chosen = resolve_backend(backend, api_key)
    common: dict[str, Any] = {"timeout": timeout, "languages": tuple(languages), "max_output_bytes": max_output_bytes}
    if chosen == "local":
        from daytona_lsp.core.local import LocalCodeEnvironment

        return LocalCodeEnvironment(**common, **_extra(LocalCodeEnvironment, local, common, "local"))

    from daytona_lsp.core.daytona import DaytonaCodeEnvironment, MissingCredentialsError

    key = secrets.api_key(api_key)
    if not key:
        raise MissingCredentialsError(
            f"The Daytona backend needs an API key: set {secrets.API_KEY_ENV} (or configure the key), "
            'or use backend "local" for the isolated local sandbox.'
        )
    # Daytona counts whole seconds (at least 1)
    common["timeout"] = max(1, math.ceil(timeout)) if isinstance(timeout, (int, float)) else timeout
    return DaytonaCodeEnvironment(api_key=key, **common, **_extra(DaytonaCodeEnvironment, daytona, common, "daytona"))


def _extra(cls: type, options: Mapping[str, Any] | None, common: Mapping[str, Any], name: str) -> dict[str, Any]:
    extra = {str(k): v for k, v in (options or {}).items() if v is not None}
    clash = sorted(set(extra) & (set(common) | {"api_key"}))
    if clash:
        raise ValueError(f"{name} options must not repeat {clash}: pass them as create_environment() arguments")
    params = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(extra) - set(params))
        if unknown:
            known = sorted(k for k in params if k not in common and k != "api_key")
            raise ValueError(f"Unknown {name} option(s) {unknown}; known: {known}")
    return extra
