"""Where a document's run sits in its workspace folder, and the way back from sandbox paths to the user's files.

:func:`place` gives a run of a document inside a workspace folder its :class:`~daytona_lsp.core.environment.
WorkspaceView` (the folder, the unsaved text of the open documents under it, the settings' include list, caps and
write-back), the file's folder-relative path and the directory to run in (``daytona.cwd``). Documents outside every
folder, untitled ones and other URI schemes get none (the run sees only its code, as before). Disk changes need no
file events (Neovim on Linux sends none): the backends look at the folder itself on every run.

:class:`PathMap` turns a path the sandbox reported (a traceback through ``helper.py``) into the URI of the user's file.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pygls.uris import from_fs_path, to_fs_path

from daytona_lsp.core.environment import WorkspaceView
from daytona_lsp.lsp.settings import Settings


@dataclass(frozen=True)
class Placement:
    view: WorkspaceView
    path: str
    """The document's path relative to ``view.root`` (``/``-separated)."""
    cwd: str
    """The directory to run in, relative to ``view.root`` (``.``: the root)."""


def _fs_path(uri: str) -> Path | None:
    if not uri.startswith("file:"):
        return None
    path = to_fs_path(uri)
    return Path(path) if path and os.path.isabs(path) else None


def _relative(path: Path, root: Path) -> str | None:
    """``path`` relative to ``root`` (``/``-separated), None when it is not inside it (lexically)."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return None
    text = rel.as_posix()
    return None if text in ("", ".") or text.startswith("../") else text


def _differs_from_disk(path: Path, text: str) -> bool:
    """Whether the editor's text is not what the disk holds (a missing or unreadable file: it differs)."""
    data = text.encode("utf-8", "surrogateescape")
    try:
        if path.stat().st_size != len(data):
            return True
        with path.open("rb") as f:
            return f.read(len(data) + 1) != data
    except OSError:
        return True


def _inside(folder_uri: str, uri: str) -> tuple[Path, str] | None:
    """The folder's path and the document's path relative to it; None when it is not a file inside the folder."""
    root = _fs_path(folder_uri) if folder_uri else None
    file = _fs_path(uri) if root is not None else None
    if root is None or file is None:
        return None
    path = _relative(file, root)
    return (root, path) if path is not None else None


def has_place(folder_uri: str, uri: str) -> bool:
    """Whether :func:`place` would place ``uri`` in ``folder_uri`` (no disk access: call it on the event loop)."""
    return _inside(folder_uri, uri) is not None


def place(folder_uri: str, uri: str, open_documents: Mapping[str, str], settings: Settings) -> Placement | None:
    """The run's place in ``folder_uri`` for document ``uri``; None when it is not a file inside that folder.

    ``open_documents``: URI → current editor text of every open document; those under the folder whose text is not
    what the disk holds become overlays (the run's own document included: code importing it sees the editor's text).
    Blocking (it compares open documents with the disk): call it in a worker thread.
    """
    inside = _inside(folder_uri, uri)
    if inside is None:
        return None
    root, path = inside
    overlays: dict[str, str] = {}
    for doc_uri, text in open_documents.items():
        doc_path = _fs_path(doc_uri)
        rel = _relative(doc_path, root) if doc_path is not None else None
        if rel is not None and doc_path is not None and _differs_from_disk(doc_path, text):
            overlays[rel] = text
    cwd = (posixpath.dirname(path) or ".") if settings.cwd == "fileDirectory" else "."
    view = WorkspaceView(
        root=str(root),
        overlays=overlays,
        include=tuple(settings.sync.include),
        max_file_bytes=settings.sync.max_file_bytes,
        max_total_bytes=settings.sync.max_total_bytes,
        write_back=settings.workspace.write_back,
    )
    return Placement(view, path, cwd)


@dataclass(frozen=True)
class PathMap:
    """Sandbox paths of one run's workspace → URIs of the user's files."""

    sandbox_root: str
    """The workspace folder's path in the sandbox (local: the real path; Daytona: the synced copy)."""
    host_root: str

    @classmethod
    def of_run(cls, placement: Placement | None, workspace_root: str | None, source_path: str | None) -> PathMap | None:
        """From where the backend says the folder was (``workspace_root``), else from where the run's file was
        (``source_path`` = the sandbox root + the file's folder-relative path: the local sandbox's real path)."""
        if placement is None:
            return None
        if workspace_root and workspace_root.startswith("/"):
            return cls(posixpath.normpath(workspace_root), placement.view.root)
        if not source_path:
            return None
        source = posixpath.normpath(source_path)
        suffix = "/" + placement.path
        if not source.endswith(suffix) or not source.startswith("/"):
            return None
        return cls(source[: -len(suffix)] or "/", placement.view.root)

    def uri(self, sandbox_path: str) -> str | None:
        """The user's file for a path under the sandbox root; None for anything else (never a path outside)."""
        root = self.sandbox_root.rstrip("/") + "/"
        path = posixpath.normpath(sandbox_path)
        if not path.startswith(root):
            return None
        rel = path[len(root) :]
        if not rel or rel == ".." or rel.startswith("../") or "\x00" in rel:
            return None
        return from_fs_path(os.path.join(self.host_root, *rel.split("/")))
