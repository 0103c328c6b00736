"""Scan a workspace into a manifest and diff it against the previous one, with open documents' unsaved text on top."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from daytona_lsp.core.environment import MAX_FILE_BYTES, MAX_TOTAL_BYTES
from daytona_lsp.core.workspace.rules import GitIgnore, Rules

OVERLAY_MTIME = -1
"""``mtime_ns`` of an entry whose content came from an open document: it never matches a file on disk, so the next
diff compares that file's hash again."""

RACY_NS = 2_000_000_000
"""A file modified this close before the previous diff may have changed again within the same timestamp tick (as
git's "racily clean" entries): its hash is checked again even though size and mtime match."""

Overlays = Mapping["str | Path", "str | bytes"]
"""Open documents' current text keyed by path (absolute, or relative to the root); ``str`` is encoded as UTF-8."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One file of the view: ``digest`` is the SHA-256 (hex) of its content, None until a diff computed it."""

    size: int
    mtime_ns: int
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    """What the sandbox was last given: relative ``/``-separated path → :class:`Entry` (digests filled in)."""

    files: Mapping[str, Entry] = field(default_factory=dict)
    taken_ns: int = 0


def _show(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


@dataclass(slots=True)
class Skipped:
    """What the scan left out besides ignored files, by reason. ``secrets`` (deny-listed names) are not in
    :meth:`line`: leaving them out is the normal case."""

    too_large: list[str] = field(default_factory=list)
    over_total: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    bad_names: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)

    def line(self, max_file_bytes: int = MAX_FILE_BYTES, max_total_bytes: int = MAX_TOTAL_BYTES) -> str | None:
        """One line naming what was skipped and why, or None when nothing was."""
        parts = [
            f"{len(names)} {what}: {_show(sorted(names))}"
            for names, what in (
                (self.too_large, f"over {max_file_bytes / 1048576:g} MB each"),
                (self.over_total, f"beyond the {max_total_bytes / 1048576:g} MB total"),
                (self.outside, "symlinks pointing outside the workspace"),
                (self.bad_names, "names not valid UTF-8"),
                (self.unreadable, "unreadable"),
            )
            if names
        ]
        return "workspace: skipped " + "; ".join(parts) if parts else None


@dataclass(slots=True)
class Scan:
    """The view now: path → :class:`Entry` (stat only; overlaid files carry their digest), within the caps."""

    files: dict[str, Entry]
    skipped: Skipped
    overlays: dict[str, bytes]
    total_bytes: int


@dataclass(slots=True)
class Diff:
    """What changed since ``previous``: paths added, changed (content differs) and deleted; ``manifest`` is the view
    now, to keep for the next diff once the sandbox has been given the changes."""

    added: list[str]
    changed: list[str]
    deleted: list[str]
    manifest: Manifest
    skipped: Skipped
    overlays: dict[str, bytes]
    workspace: Workspace

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.deleted)

    def read(self, rel: str) -> bytes:
        """The bytes to give the sandbox for ``rel``: the open document's text, else the file on disk. Raises
        OSError if the file is gone or is no longer a regular file inside the root (swapped since the scan)."""
        overlay = self.overlays.get(rel)
        if overlay is not None:
            return overlay
        with self.workspace.open(rel) as f:
            return f.read()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _valid_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes come back as lone surrogates (PEP 383)
        return False
    return True


class Workspace:
    """The sandbox's view of one workspace root: rules, caps, :meth:`scan` and :meth:`diff`. Keep one per sandbox;
    it caches compiled ``.gitignore`` files between scans. Blocking (file system): call it off the event loop."""

    def __init__(
        self,
        root: str | Path,
        *,
        include: Iterable[str] = (),
        max_file_bytes: int = MAX_FILE_BYTES,
        max_total_bytes: int = MAX_TOTAL_BYTES,
    ) -> None:
        self.root = Path(root).absolute()
        self._root = os.fspath(self.root)
        self._real = os.path.realpath(self._root)
        self.rules = Rules(self.root, include)
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes

    def open(self, rel: str) -> BinaryIO:
        """Open the view's file ``rel`` for reading, checking again what the scan checked: it resolves inside the
        root and is a regular file (opened without blocking, so a FIFO swapped in cannot hang the caller)."""
        target = os.path.realpath(os.path.join(self._root, rel))
        if not target.startswith(self._real + os.sep):
            raise PermissionError(f"{rel}: now points outside the workspace")
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
        f = os.fdopen(fd, "rb")
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            f.close()
            raise OSError(f"{rel}: not a regular file")
        return f

    def _digest_file(self, rel: str) -> str:
        h = hashlib.sha256()
        with self.open(rel) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return h.hexdigest()

    def skipped_line(self, skipped: Skipped) -> str | None:
        return skipped.line(self.max_file_bytes, self.max_total_bytes)

    def relative(self, path: str | Path) -> str | None:
        """``path`` (absolute, or relative to the root) as a view path, or None when it lies outside the root.
        An absolute path may also go through the root's real path (editors may resolve symlinks)."""
        for base in (self._root, self._real):
            try:
                rel = os.path.relpath(os.path.join(self._root, path), base)
            except ValueError:  # Windows: another drive
                continue
            if rel != "." and rel != os.pardir and not rel.startswith(os.pardir + os.sep):
                return rel.replace(os.sep, "/")
        return None

    def scan(self, overlays: Overlays | None = None) -> Scan:
        """Walk the root (never following symlinks out of it), apply the rules, overlay open documents, apply caps."""
        files: dict[str, Entry] = {}
        skipped = Skipped()
        self._walk(files, skipped)
        kept_overlays: dict[str, bytes] = {}
        for key, text in (overlays or {}).items():
            rel = self.relative(key)
            if rel is None or self.rules.excludes(rel):
                continue
            data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
            kept_overlays[rel] = data
            files[rel] = Entry(len(data), OVERLAY_MTIME, _digest(data))
        total = 0
        for rel in sorted(files):
            size = files[rel].size
            if size > self.max_file_bytes:
                skipped.too_large.append(rel)
            elif total + size > self.max_total_bytes:
                skipped.over_total.append(rel)
            else:
                total += size
                continue
            del files[rel]
            kept_overlays.pop(rel, None)
        return Scan(files, skipped, kept_overlays, total)

    def _walk(self, files: dict[str, Entry], skipped: Skipped) -> None:
        rules = self.rules
        stack: list[tuple[str, list[GitIgnore], bool]] = [("", [], False)]  # narrow: see Rules.excludes
        while stack:
            rel_dir, chain, narrow = stack.pop()
            try:
                with os.scandir(os.path.join(self._root, rel_dir)) as it:
                    entries = list(it)
                gitignore = rules.gitignore(rel_dir)
            except OSError:
                skipped.unreadable.append(rel_dir + "/" if rel_dir else self._root + os.sep)  # the root: by its path
                continue
            if gitignore is not None:
                chain = [*chain, gitignore]
            prefix = rel_dir + "/" if rel_dir else ""
            for de in entries:
                name = de.name
                rel = prefix + name
                if not _valid_name(name):
                    skipped.bad_names.append(os.fsencode(rel).decode("utf-8", "backslashreplace"))
                    continue
                try:
                    if de.is_symlink():
                        self._link(de.path, rel, files, skipped)
                        continue
                    is_dir = de.is_dir(follow_symlinks=False)
                    verdict = "ignored" if narrow else rules.verdict(rel, name, is_dir, chain)
                    if verdict is not None and not rules.included(rel, name, is_dir):
                        if verdict == "secret":
                            skipped.secrets.append(rel)
                        continue
                    if is_dir:
                        stack.append((rel, chain, verdict is not None))
                        continue
                    st = de.stat(follow_symlinks=False)
                except OSError:
                    skipped.unreadable.append(rel)
                    continue
                if stat.S_ISREG(st.st_mode):  # sockets, FIFOs and devices are not files to sync (nor to read)
                    files[rel] = Entry(st.st_size, st.st_mtime_ns)

    def _link(self, path: str, rel: str, files: dict[str, Entry], skipped: Skipped) -> None:
        """A symlink is a file of the view when it resolves to a regular file inside the root that the rules keep
        (a link named ``notes.txt`` to ``.env`` stays out). Links to directories are not entered: the target is in
        the view under its own path, and no cycle can form."""
        target = os.path.realpath(path)
        if target != self._real and not target.startswith(self._real + os.sep):
            skipped.outside.append(rel)
            return
        target_rel = os.path.relpath(target, self._real).replace(os.sep, "/")
        try:
            st = os.stat(target)
        except OSError:
            skipped.unreadable.append(rel)
            return
        if not stat.S_ISREG(st.st_mode) or self.rules.excludes(target_rel) or self.rules.excludes(rel):
            return
        files[rel] = Entry(st.st_size, st.st_mtime_ns)

    def diff(self, previous: Manifest | None = None, overlays: Overlays | None = None) -> Diff:
        """Scan and compare with ``previous`` (None: an empty sandbox). A file whose size and mtime match keeps its
        previous digest unread; any other file is hashed, and counts as changed only if its hash differs."""
        previous = previous or Manifest()
        started = time.time_ns()
        now = self.scan(overlays)
        racy_before = previous.taken_ns - RACY_NS
        result: dict[str, Entry] = {}
        added: list[str] = []
        changed: list[str] = []
        for rel, entry in now.files.items():
            old = previous.files.get(rel)
            if (
                entry.digest is None
                and old is not None
                and old.digest is not None
                and old.size == entry.size
                and old.mtime_ns == entry.mtime_ns
                and old.mtime_ns < racy_before
            ):
                result[rel] = old
                continue
            if entry.digest is None:
                try:
                    entry = Entry(entry.size, entry.mtime_ns, self._digest_file(rel))
                except OSError:
                    now.skipped.unreadable.append(rel)
                    if old is not None:
                        result[rel] = old  # the sandbox keeps what it has
                    continue
            result[rel] = entry
            if old is None:
                added.append(rel)
            elif old.digest != entry.digest:
                changed.append(rel)
        root_unread = self._root + os.sep
        unread = tuple("" if d == root_unread else d for d in now.skipped.unreadable if d.endswith(("/", os.sep)))
        deleted = []
        for rel, old in previous.files.items():
            if rel in result:
                continue
            if rel.startswith(unread):  # under a directory that could not be read: the sandbox keeps its copy
                result[rel] = old
            else:
                deleted.append(rel)
        deleted.sort()
        manifest = Manifest(result, started)
        return Diff(sorted(added), sorted(changed), deleted, manifest, now.skipped, now.overlays, self)
