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
import contextlib
import hashlib
import os
import posixpath
import stat
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from daytona_lsp.core.daytona.errors import RunFailed, error_result
from daytona_lsp.core.daytona.shell import b64
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
    files: Mapping[str, Entry]
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
                manifest = diff.manifest
                if not diff.empty:
                    uploads, manifest = await asyncio.to_thread(_read_changes, diff)
                    if uploads:
                        await _upload(sandbox, self.root, uploads)
                    if diff.deleted:
                        await _delete(sandbox, self.root, diff.deleted)
            except Exception as exc:  # the manifest stays as it was: the next sync sends these changes again
                raise RunFailed(error_result(exc, api_key=api_key)) from exc
            self.manifest = manifest
            return Synced(self.root, manifest.files, workspace.rules, workspace.skipped_line(diff.skipped))

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
    outside the root, never through a symlink (a path with one, or with ``..``, is refused). The directories are
    walked by descriptor (``O_NOFOLLOW``), so a directory swapped for a link meanwhile is refused too. Blocking.
    Returns the manifest entries of what was written and the refused paths."""
    written: dict[str, Entry] = {}
    refused: list[str] = []
    root_fd = os.open(host_root, _DIR_FLAGS)
    try:
        for rel, data in contents.items():
            parts = rel.split("/")
            if rel.startswith("/") or any(part in ("", ".", "..") for part in parts):
                refused.append(rel)
                continue
            try:
                st = _write_at(root_fd, parts, data)
            except OSError:  # ELOOP / ENOTDIR: a symlink in the way; or the disk's own errors
                refused.append(rel)
                continue
            written[rel] = Entry(st.st_size, st.st_mtime_ns, hashlib.sha256(data).hexdigest())
    finally:
        os.close(root_fd)
    return written, refused


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0)


def _write_at(root_fd: int, parts: list[str], data: bytes) -> os.stat_result:
    dir_fd = os.dup(root_fd)
    try:
        for part in parts[:-1]:
            try:
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
            except FileNotFoundError:
                os.mkdir(part, dir_fd=dir_fd)
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        name = parts[-1]
        mode = _lstat_at(dir_fd, name)
        if stat.S_ISLNK(mode):
            raise PermissionError(f"{name}: a symlink is in the way")
        tmp = f".daytona-lsp-{uuid.uuid4().hex[:12]}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as f:
                if stat.S_ISREG(mode):
                    os.fchmod(f.fileno(), stat.S_IMODE(mode))  # a replaced file keeps its mode (an executable…)
                f.write(data)
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)  # replaces a link itself, never its target
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    finally:
        os.close(dir_fd)


def _lstat_at(dir_fd: int, name: str) -> int:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return 0


def folder_name(host_root: str, taken: set[str]) -> str:
    """The directory name of a host folder's copy: its own name, or with a hash of its path when taken."""
    name = os.path.basename(os.path.normpath(host_root)) or "root"
    if name in taken:
        name += "-" + hashlib.sha256(host_root.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return name
