"""The environment core: run code in a sandbox. No editor knowledge (never imports pygls or lsprotocol).

Importing this package must stay fast: the Daytona SDK (over a second to import) is loaded on first use only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from daytona_lsp.core.environment import (
    LANGUAGES,
    CodeEnvironment,
    CodeLanguage,
    CodeRunResult,
    OutputCallback,
    RunContext,
    RunSpec,
    SandboxInfo,
    SimpleContext,
    Variable,
)

if TYPE_CHECKING:
    from daytona_lsp.core.daytona import DaytonaCodeEnvironment, DaytonaResources
    from daytona_lsp.core.local import LocalCodeEnvironment

__all__ = [
    "LANGUAGES",
    "CodeEnvironment",
    "CodeLanguage",
    "CodeRunResult",
    "DaytonaCodeEnvironment",
    "DaytonaResources",
    "LocalCodeEnvironment",
    "OutputCallback",
    "RunContext",
    "RunSpec",
    "SandboxInfo",
    "SimpleContext",
    "Variable",
]

_LAZY = {
    "DaytonaCodeEnvironment": "daytona_lsp.core.daytona",
    "DaytonaResources": "daytona_lsp.core.daytona",
    "LocalCodeEnvironment": "daytona_lsp.core.local",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
