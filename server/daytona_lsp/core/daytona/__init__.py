"""The Daytona backend: run code in Daytona cloud sandboxes through the Daytona SDK.

Modules, one job each: :mod:`.spec` (constants, configuration types), :mod:`.commands` (the shell command of a run),
:mod:`.errors` (SDK exceptions → results), :mod:`.sandboxes` (SDK client, creation, recovery, deletion),
:mod:`.runner` (code-run, exec, streamed session commands), :mod:`.sync` (the workspace folder's copy in the sandbox:
incremental upload, deletions, write-back), :mod:`.tree` (a run in that copy and its changed-files listing),
:mod:`.cleanup` (exit cleanup, ``sandboxes list|clean``),
:mod:`.environment` (:class:`DaytonaCodeEnvironment`). Importing this package never imports the SDK.
"""

from daytona_lsp.core.daytona.cleanup import delete_sandboxes, list_sandboxes
from daytona_lsp.core.daytona.environment import DaytonaCodeEnvironment
from daytona_lsp.core.daytona.spec import (
    BACKEND,
    CREATED_BY_LABEL,
    CREATED_BY_VALUE,
    DEFAULT_API_URL,
    DaytonaResources,
    MissingCredentialsError,
)

__all__ = [
    "BACKEND",
    "CREATED_BY_LABEL",
    "CREATED_BY_VALUE",
    "DEFAULT_API_URL",
    "DaytonaCodeEnvironment",
    "DaytonaResources",
    "MissingCredentialsError",
    "delete_sandboxes",
    "list_sandboxes",
]
