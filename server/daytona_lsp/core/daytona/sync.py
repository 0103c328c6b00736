"""The workspace folder's copy in a Daytona sandbox: incremental sync before a run, write-back after it.

Where: ``~/workspace/<folder name>/`` under the sandbox user's home (``<folder name>-<hash>`` when another folder
of that name already synced into the same sandbox), keeping the folder-relative layout.

Cost per run, in toolbox requests: nothing changed → **0**; files added or changed (any number) → **1**
(``fs.upload_files``, multipart); files deleted on the host → **1** more (one ``process.exec`` of ``rm -f``: the
SDK's ``fs.delete_file`` takes one path per request); the first sync into a sandbox → 1 more (its home directory).
A sandbox that is recreated (reset, deleted from outside: a new sandbox id) starts from an empty manifest.
The diff (scan, hashes, reading what is uploaded) is blocking file I/O and runs in a worker thread; syncs of one
folder into one sandbox are serialized, runs themselves are not.

Write-back (``WorkspaceView.write_back``): the files the run created or changed are downloaded in **one** request
(``fs.download_files``) and written into the host folder — never outside it, never through a symlink, each file
replaced atomically — and the manifest learns them, so the next sync does not upload them again.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import posixpath
import tempfile
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from daytona_lsp.core.daytona.commands import b64
from daytona_lsp.core.daytona.errors import RunFailed, error_result
from daytona_lsp.core.daytona.tree import Trailer
from daytona_lsp.core.environment import WorkspaceView
from daytona_lsp.core.workspace import Diff, Entry, Manifest, Overlays, Rules, Workspace

if TYPE_CHECKING:
    from daytona import AsyncSandbox

WORKSPACES_DIR = "workspace"
"""The folder under the sandbox user's home that holds the synced workspace folders."""
UPLOAD_TIMEOUT = 600
"""Seconds one upload (or write-back download) request may take."""


@dataclass(slots=True)
class Synced:
    """The result of one sync: the sandbox path of the folder's root and the view it now holds."""

    root: str
    files: dict[str, Entry]
    rules: Rules
    """The view's rules (which of the files a run changed are workspace files)."""
    note: str | None
    """One line naming what was skipped (too large, beyond the total, outside links…), or None."""


@dataclass
class FolderSync:
    """One workspace folder's copy in the sandbox of one sandbox spec."""

    host_root: str
    name: str
    """The folder's directory name under ``~/workspace`` in the sandbox."""
    workspace: Workspace | None = None
    sandbox_id: str | None = None
    root: str | None = None
    """The sandbox path of the copy (known once the sandbox's home directory is)."""
    manifest: Manifest | None = None
    _settings: tuple[object, ...] = ()
    _locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = field(default_factory=dict)

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            self._locks.clear()  # a lock of a finished loop is of no use any more
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    def _workspace(self, view: WorkspaceView) -> Workspace:
        settings = (tuple(view.include), view.max_file_bytes, view.max_total_bytes)
        if self.workspace is None or settings != self._settings:
            # what the sandbox holds stays true under new rules: the manifest is kept, the next diff corrects it
            self.workspace = Workspace(
                self.host_root,
                include=view.include,
                max_file_bytes=view.max_file_bytes,
                max_total_bytes=view.max_total_bytes,
            )
            self._settings = settings
        return self.workspace

    async def sync(self, sandbox: AsyncSandbox, view: WorkspaceView, api_key: str) -> Synced:
        """Give the sandbox what changed since the last sync (see the module docstring for the cost)."""
        async with self._lock():
            workspace = await asyncio.to_thread(self._workspace, view)  # resolves the root: file system calls
            if sandbox.id != self.sandbox_id:
                self.sandbox_id, self.root, self.manifest = sandbox.id, None, None
            try:
                if self.root is None:
                    home = await sandbox.get_user_home_dir()
                    self.root = posixpath.join(home, WORKSPACES_DIR, self.name)
                overlays: Overlays = {path: text for path, text in view.overlays.items()}
                diff = await asyncio.to_thread(workspace.diff, self.manifest, overlays)
                if not diff.empty:
                    uploads, manifest = await asyncio.to_thread(_read_changes, diff)
                    if uploads:
                        await _upload(sandbox, self.root, uploads)
                    if diff.deleted:
                        await _delete(sandbox, self.root, diff.deleted)
                    self.manifest = manifest
                else:
                    self.manifest = diff.manifest
            except RunFailed:
                raise
            except Exception as exc:
                raise RunFailed(error_result(exc, api_key=api_key)) from exc
            return Synced(self.root, dict(self.manifest.files), workspace.rules, workspace.skipped_line(diff.skipped))

    async def finish(
        self, sandbox: AsyncSandbox, synced: Synced, trailer: Trailer, view: WorkspaceView, api_key: str
    ) -> tuple[list[str], str | None]:
        """After a run in the copy: the workspace files it created or changed (from the listing its command
        printed), written back when ``view.write_back``; and a line about a write-back that failed, or None."""
        changed = await asyncio.to_thread(trailer.changed, synced.rules) or []  # the rules read .gitignore files
        if not (view.write_back and changed):
            return changed, None
        try:
            return changed, await self.write_back(sandbox, changed)
        except Exception as exc:  # noqa: BLE001 - the run happened: its result stands, the failure is a note
            return changed, "workspace: write-back failed: " + error_result(exc, api_key=api_key).output

    async def write_back(self, sandbox: AsyncSandbox, paths: list[str]) -> str | None:
        """Download ``paths`` (workspace-relative) from the sandbox's copy into the host folder in one request.
        Returns a line naming what could not be written back, or None."""
        from daytona import FileDownloadRequest

        if not paths or self.root is None:
            return None
        root = self.root
        responses = await sandbox.fs.download_files(
            [FileDownloadRequest(source=posixpath.join(root, rel)) for rel in paths], timeout=UPLOAD_TIMEOUT
        )
        contents: dict[str, bytes] = {}
        failed: list[str] = []
        for rel, response in zip(paths, responses, strict=True):
            if isinstance(response.result, bytes) and response.error is None:
                contents[rel] = response.result
            else:
                failed.append(rel)
        async with self._lock():
            written, refused = await asyncio.to_thread(write_files, self.host_root, contents)
            if self.manifest is not None and self.sandbox_id == sandbox.id:
                self.manifest = Manifest({**self.manifest.files, **written}, self.manifest.taken_ns)
        failed += refused
        if not failed:
            return None
        return f"workspace: could not write back {len(failed)} file(s): {', '.join(sorted(failed)[:3])}"


def _read_changes(diff: Diff) -> tuple[dict[str, bytes], Manifest]:
    """The bytes to upload (added and changed files) and the manifest to keep once they are uploaded; a file that
    cannot be read now (gone, swapped for a link) is left out of both, so the next sync tries it again."""
    uploads: dict[str, bytes] = {}
    files = dict(diff.manifest.files)
    for rel in diff.added + diff.changed:
        try:
            uploads[rel] = diff.read(rel)
        except OSError:
            files.pop(rel, None)
    return uploads, replace(diff.manifest, files=files)


async def _upload(sandbox: AsyncSandbox, root: str, uploads: dict[str, bytes]) -> None:
    from daytona import FileUpload

    files = [FileUpload(source=data, destination=posixpath.join(root, rel)) for rel, data in uploads.items()]
    await sandbox.fs.upload_files(files, timeout=UPLOAD_TIMEOUT)


async def _delete(sandbox: AsyncSandbox, root: str, deleted: list[str]) -> None:
    """One request for the deleted files (per ~64 KiB of paths): they travel base64-encoded and NUL-separated, so
    any name is safe, and the command has no quotes (old daemons split it on spaces)."""
    batch: list[str] = []
    size = 0
    for rel in [*deleted, None]:
        if rel is not None:
            batch.append(posixpath.join(root, rel) + "\0")
            size += len(batch[-1])
        if batch and (rel is None or size > 64 * 1024):
            script = f"echo {b64(''.join(batch))} | base64 -d | xargs -0 rm -f --"
            response = await sandbox.process.exec(f'bash -c "{script}"', timeout=UPLOAD_TIMEOUT)
            if response.exit_code:
                raise RuntimeError(f"could not delete files in the sandbox: {response.result.strip()}")
            batch, size = [], 0


def write_files(host_root: str, contents: dict[str, bytes]) -> tuple[dict[str, Entry], list[str]]:
    """Write ``contents`` (workspace-relative path → bytes) into ``host_root``: each file replaced atomically, never
    outside the root, never through a symlink (a path with one, or with ``..``, is refused). Blocking.
    Returns the manifest entries of what was written and the refused paths."""
    real_root = os.path.realpath(host_root)
    written: dict[str, Entry] = {}
    refused: list[str] = []
    for rel, data in contents.items():
        parts = rel.split("/")
        if rel.startswith("/") or any(part in ("", ".", "..") for part in parts):
            refused.append(rel)
            continue
        target = os.path.join(real_root, *parts)
        parent = os.path.dirname(target)
        try:
            _make_dirs(real_root, parts[:-1])
            if os.path.islink(target) or os.path.realpath(parent) != parent:
                raise PermissionError(f"{rel}: a symlink is in the way")
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=".daytona-lsp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, target)
            except BaseException:
                os.unlink(tmp)
                raise
            st = os.stat(target, follow_symlinks=False)
        except OSError:
            refused.append(rel)
            continue
        written[rel] = Entry(st.st_size, st.st_mtime_ns, hashlib.sha256(data).hexdigest())
    return written, refused


def _make_dirs(real_root: str, parts: list[str]) -> None:
    path = real_root
    for part in parts:
        path = os.path.join(path, part)
        if os.path.islink(path):
            raise PermissionError(f"{path}: a symlink is in the way")
        if not os.path.isdir(path):
            os.mkdir(path)


def folder_name(host_root: str, taken: set[str]) -> str:
    """The directory name of a host folder's copy: its own name, or with a hash of its path when taken."""
    name = os.path.basename(os.path.normpath(host_root)) or "root"
    if name in taken:
        name += "-" + hashlib.sha256(host_root.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return name
