"""What a run sees of the workspace: its root, ignore rules and secrets deny-list, a manifest, diffs with unsaved
text on top, and what a run changed. Backend-independent and blocking (file system): call it off the event loop.
Paths in the view are relative to the root and ``/``-separated.

Root (:mod:`.root`)
    ``find_root(file, explicit=None) -> Path`` — ``explicit`` wins; else the nearest ancestor holding ``.git``,
    ``pyproject.toml`` or ``package.json``; else the file's directory.

Rules (:mod:`.rules`)
    ``Rules(root, include=())`` — built-ins (:data:`BUILTIN_IGNORED_DIRS`), the secrets deny-list
    (:data:`SECRET_PATTERNS`), nested ``.gitignore`` files (``!``, ``dir/``, ``/anchored``, ``**``, through
    ``pathspec``). ``include`` entries (relative paths or bare file names) win over every rule, for exactly the
    files they name (``credentials/aws.json`` brings in that file, not the rest of ``credentials/``).
    ``rules.excludes(rel, is_dir=False)`` for paths that did not come from a scan.

Manifest and diff (:mod:`.manifest`)
    ``ws = Workspace(root, include=(), max_file_bytes=10 MB, max_total_bytes=200 MB)`` — keep one per sandbox.
    ``ws.scan(overlays=None) -> Scan`` — ``files`` (path → ``Entry(size, mtime_ns, digest=None)``), ``skipped``.
    ``ws.diff(previous: Manifest | None, overlays=None) -> Diff`` — ``added``, ``changed``, ``deleted``, ``empty``,
    ``read(rel) -> bytes`` (the overlay's bytes for an open document, else the disk's), ``manifest`` (keep it once
    the sandbox has the changes; a recreated sandbox starts from ``None``), ``skipped``.
    Hashes (SHA-256) are computed only for files whose size or mtime changed (or that changed within
    :data:`RACY_NS` of the previous diff); a changed mtime with the same hash is not a change.
    ``overlays``: open documents' text keyed by path (absolute, or relative to the root); the rules and caps apply
    to them too, and an overlaid file is compared by the overlay's hash.
    ``ws.skipped_line(diff.skipped)`` — one line naming files over a cap, symlinks pointing outside the root (not
    followed), names that are not valid UTF-8 and unreadable entries; None when there are none. The scan goes on.
    Deny-listed secrets are in ``skipped.secrets`` but not in the line.
    ``ws.open(rel)`` — what ``Diff.read`` uses: checks again that the file resolves inside the root and is a regular
    file (a link or FIFO swapped in after the scan raises OSError instead of leaking or hanging).

    A sync (Daytona) keeps ``manifest`` per sandbox::

        diff = await asyncio.to_thread(ws.diff, manifest, overlays)
        if not diff.empty:  # zero requests otherwise
            upload({p: diff.read(p) for p in diff.added + diff.changed}); remove(diff.deleted)
            manifest = diff.manifest
        line = ws.skipped_line(diff.skipped)  # show it in the run's output when not None

What a run changed (:mod:`.changes`)
    ``changed_files(before, after, rules=None) -> list[str]`` — two listings of the sandbox's copy (path → any
    version value: digest, ``(size, mtime_ns)``, ``Entry``), e.g. Daytona's listing before and after a run.
    ``overlay_changes(upper, lower, rules=None) -> list[str]`` — the writable upper directory of an overlay over
    the workspace (the local backend); whiteouts and copy-ups without a change of content are not changes.
"""

from daytona_lsp.core.workspace.changes import changed_files, overlay_changes
from daytona_lsp.core.workspace.manifest import (
    MAX_FILE_BYTES,
    MAX_TOTAL_BYTES,
    RACY_NS,
    Diff,
    Entry,
    Manifest,
    Overlays,
    Scan,
    Skipped,
    Workspace,
)
from daytona_lsp.core.workspace.root import ROOT_MARKERS, find_root
from daytona_lsp.core.workspace.rules import BUILTIN_IGNORED_DIRS, SECRET_PATTERNS, Rules, is_secret

__all__ = [
    "BUILTIN_IGNORED_DIRS",
    "MAX_FILE_BYTES",
    "MAX_TOTAL_BYTES",
    "RACY_NS",
    "ROOT_MARKERS",
    "SECRET_PATTERNS",
    "Diff",
    "Entry",
    "Manifest",
    "Overlays",
    "Rules",
    "Scan",
    "Skipped",
    "Workspace",
    "changed_files",
    "find_root",
    "is_secret",
    "overlay_changes",
]
