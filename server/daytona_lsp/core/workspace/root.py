"""The workspace root a file belongs to (the CLI's rule; editors send their workspace folders instead)."""

from __future__ import annotations

from pathlib import Path

ROOT_MARKERS = (".git", "pyproject.toml", "package.json")
"""A directory holding one of these is a project root."""


def find_root(file: str | Path, explicit: str | Path | None = None) -> Path:
    """The workspace root for ``file``: ``explicit`` when given, else the nearest ancestor of the file holding one of
    :data:`ROOT_MARKERS`, else the file's own directory. Paths are made absolute; nothing is required to exist except
    for the marker checks (a missing directory simply holds no marker)."""
    if explicit is not None:
        return Path(explicit).expanduser().absolute()
    start = Path(file).expanduser().absolute()
    directory = start if start.is_dir() else start.parent
    for candidate in (directory, *directory.parents):
        if any((candidate / marker).exists() for marker in ROOT_MARKERS):
            return candidate
    return directory
