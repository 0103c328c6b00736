"""What a run changed in the workspace (``changedFiles``), from the sandbox's view before and after the run."""

from __future__ import annotations

import filecmp
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from daytona_lsp.core.workspace.rules import Rules

_ABSENT = object()


def changed_files(before: Mapping[str, object], after: Mapping[str, object], rules: Rules | None = None) -> list[str]:
    """The paths the run created or changed, sorted: keys of ``after`` missing from ``before`` or mapped to another
    value. Values are whatever identifies a version (a digest, ``(size, mtime_ns)``, an :class:`Entry`): Daytona
    passes two listings of the sandbox's copy, a copying backend two :meth:`Workspace.scan` results' ``files``.
    With ``rules``, paths outside the view (``__pycache__/``, ignored files) are left out."""
    return sorted(
        rel
        for rel, version in after.items()
        if before.get(rel, _ABSENT) != version and (rules is None or not rules.excludes(rel))
    )


def overlay_changes(upper: str | Path, lower: str | Path, rules: Rules | None = None) -> list[str]:
    """The paths a run created or changed, from the upper (writable) directory of an overlay mounted over the
    workspace ``lower``: its regular files and symlinks, except whiteouts (deletions) and files copied up without a
    change of content (opened for writing, ``chmod``). With ``rules``, paths outside the view are left out.
    Unreadable parts of ``upper`` are skipped."""
    upper, lower = os.fspath(upper), os.fspath(lower)
    found: list[str] = []
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            with os.scandir(os.path.join(upper, rel_dir)) as it:
                entries = list(it)
        except OSError:
            continue
        for de in entries:
            rel = f"{rel_dir}/{de.name}" if rel_dir else de.name
            try:
                st = de.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if rules is None or not rules.excludes(rel, is_dir=True):
                    stack.append(rel)
            elif (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)) and differs(de.path, os.path.join(lower, rel)):
                if rules is None or not rules.excludes(rel):
                    found.append(rel)
    return sorted(found)


def differs(new: str, old: str) -> bool:
    """Whether the file (or symlink) ``new`` differs from ``old`` (missing counts as different)."""
    try:
        if os.path.islink(new) or os.path.islink(old):
            return not (os.path.islink(new) and os.path.islink(old) and os.readlink(new) == os.readlink(old))
        return not filecmp.cmp(new, old, shallow=False)
    except OSError:  # no such file below: created by the run
        return True
