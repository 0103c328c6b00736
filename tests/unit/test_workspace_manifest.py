"""Scanning the workspace into a manifest and diffing it (lazy hashes, overlays, caps, bad input), on real files."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from daytona_lsp.core.workspace import Workspace

HOUR_AGO_NS = time.time_ns() - 3600 * 10**9


def tree(root: Path, files: dict[str, str | bytes], *, old: bool = True) -> Path:
    """Files as in a real workspace: written some time ago (``old``), so their mtimes are not racy."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        if old:
            os.utime(path, ns=(HOUR_AGO_NS, HOUR_AGO_NS))
    return root


def test_first_diff_adds_every_file_with_its_size_mtime_and_hash(tmp_path):
    tree(tmp_path, {"main.py": "import helper\n", "pkg/helper.py": "X = 1\n"})
    diff = Workspace(tmp_path).diff(None)
    assert (diff.added, diff.changed, diff.deleted) == (["main.py", "pkg/helper.py"], [], [])
    entry = diff.manifest.files["pkg/helper.py"]
    assert entry.size == 6 and entry.mtime_ns == HOUR_AGO_NS
    assert entry.digest == hashlib.sha256(b"X = 1\n").hexdigest()
    assert diff.read("main.py") == b"import helper\n"


def test_nothing_changed_is_an_empty_diff_decided_from_size_and_mtime_alone(tmp_path):
    tree(tmp_path, {"a.py": "one", "b.py": "two"})
    ws = Workspace(tmp_path)
    first = ws.diff(None).manifest
    # Same size, same mtime, other bytes: only a hash would notice, and an unchanged stat must not be hashed.
    tree(tmp_path, {"a.py": "uno"})
    again = ws.diff(first)
    assert again.empty
    assert again.manifest.files == first.files


def test_added_changed_and_deleted_files(tmp_path):
    tree(tmp_path, {"a.py": "a", "b.py": "b", "c/d.py": "d"})
    ws = Workspace(tmp_path)
    first = ws.diff(None).manifest
    tree(tmp_path, {"a.py": "changed", "new/e.py": "e"}, old=False)
    shutil.rmtree(tmp_path / "c")
    diff = ws.diff(first)
    assert (diff.added, diff.changed, diff.deleted) == (["new/e.py"], ["a.py"], ["c/d.py"])
    assert sorted(diff.manifest.files) == ["a.py", "b.py", "new/e.py"]


def test_a_touched_file_with_the_same_content_is_not_a_change(tmp_path):
    tree(tmp_path, {"a.py": "same"})
    ws = Workspace(tmp_path)
    first = ws.diff(None).manifest
    os.utime(tmp_path / "a.py")
    diff = ws.diff(first)
    assert diff.empty
    assert diff.manifest.files["a.py"].mtime_ns != first.files["a.py"].mtime_ns  # the new stat is remembered


def test_a_rewrite_within_the_same_timestamp_tick_is_still_seen(tmp_path):
    tree(tmp_path, {"a.py": "v1"}, old=False)
    ws = Workspace(tmp_path)
    first = ws.diff(None).manifest
    stamp = first.files["a.py"].mtime_ns
    (tmp_path / "a.py").write_text("v2")  # same size; on a coarse clock the same mtime
    os.utime(tmp_path / "a.py", ns=(stamp, stamp))
    assert ws.diff(first).changed == ["a.py"]


def test_overlays_override_the_disk_and_closing_the_document_brings_the_disk_back(tmp_path):
    tree(tmp_path, {"main.py": "import helper\n", "helper.py": "X = 1\n"})
    ws = Workspace(tmp_path)
    synced = ws.diff(None).manifest
    unsaved = {str(tmp_path / "helper.py"): "X = 2  # unsaved\n", "scratch.py": "print('new')\n"}
    diff = ws.diff(synced, unsaved)
    assert (diff.added, diff.changed) == (["scratch.py"], ["helper.py"])
    assert diff.read("helper.py") == b"X = 2  # unsaved\n"
    assert diff.manifest.files["helper.py"].digest == hashlib.sha256(b"X = 2  # unsaved\n").hexdigest()
    assert ws.diff(diff.manifest, unsaved).empty
    edited = ws.diff(diff.manifest, {"helper.py": "X = 3  # unsaved\n", "scratch.py": "print('new')\n"})
    assert edited.changed == ["helper.py"]  # same size as before: compared by hash, not by the overlay's stat
    closed = ws.diff(edited.manifest)
    assert (closed.changed, closed.deleted) == (["helper.py"], ["scratch.py"])
    assert closed.read("helper.py") == b"X = 1\n"


def test_overlays_obey_the_rules_and_the_root(tmp_path):
    tree(tmp_path, {"a.py": "a", ".gitignore": "gen/\n"})
    outside = tmp_path.parent / "elsewhere.py"
    overlays = {".env": "TOKEN=1", "gen/x.py": "", str(outside): "x", "node_modules/m.js": "", "ok.py": "ok"}
    diff = Workspace(tmp_path).diff(None, overlays)
    assert diff.added == [".gitignore", "a.py", "ok.py"]


def test_an_overlay_keyed_by_the_real_path_of_a_symlinked_root_counts(tmp_path):
    tree(tmp_path / "real", {"helper.py": "X = 1\n"})
    os.symlink(tmp_path / "real", tmp_path / "link")
    ws = Workspace(tmp_path / "link")
    synced = ws.diff(None).manifest
    assert ws.diff(synced, {str(tmp_path / "real/helper.py"): "X = 2\n"}).changed == ["helper.py"]
    assert ws.diff(synced, {str(tmp_path / "link/helper.py"): "X = 3\n"}).changed == ["helper.py"]


def test_files_over_the_caps_are_named_in_one_line_and_the_rest_goes_on(tmp_path):
    tree(tmp_path, {"big.bin": b"x" * 2000, "a.txt": b"a" * 600, "b.txt": b"b" * 600, "c.txt": b"c" * 10})
    ws = Workspace(tmp_path, max_file_bytes=1000, max_total_bytes=1000)
    diff = ws.diff(None, {"d.txt": "d" * 1500})
    assert diff.added == ["a.txt", "c.txt"]
    line = ws.skipped_line(diff.skipped)
    assert line is not None and "\n" not in line
    assert "2 over 0.000953674 MB each: big.bin, d.txt" in line
    assert "1 beyond the 0.000953674 MB total: b.txt" in line


def test_default_caps_are_ten_and_two_hundred_megabytes(tmp_path):
    tree(tmp_path, {"big.bin": b"\0" * (10 * 1024 * 1024 + 1), "ok.bin": b"\0" * (10 * 1024 * 1024)})
    ws = Workspace(tmp_path)
    diff = ws.diff(None)
    assert diff.added == ["ok.bin"]
    assert ws.skipped_line(diff.skipped) == "workspace: skipped 1 over 10 MB each: big.bin"


def test_symlinks_out_of_the_workspace_are_not_followed(tmp_path):
    ws_root = tree(tmp_path / "ws", {"main.py": "", "lib/util.py": "u"})
    tree(tmp_path / "outside", {"secret.txt": "s", "d/f.txt": "f"})
    os.symlink(tmp_path / "outside/secret.txt", ws_root / "leak.txt")
    os.symlink(tmp_path / "outside/d", ws_root / "leakdir")
    os.symlink("../../outside", ws_root / "lib/up")
    os.symlink("lib/util.py", ws_root / "alias.py")  # inside: a file of the view
    os.symlink("lib", ws_root / "libalias")  # a directory inside: its files are in the view under lib/
    os.symlink("missing.py", ws_root / "dangling.py")
    ws = Workspace(ws_root)
    diff = ws.diff(None)
    assert diff.added == ["alias.py", "lib/util.py", "main.py"]
    assert diff.read("alias.py") == b"u"
    assert sorted(diff.skipped.outside) == ["leak.txt", "leakdir", "lib/up"]
    line = ws.skipped_line(diff.skipped)
    assert (
        line
        == "workspace: skipped 3 symlinks pointing outside the workspace: leak.txt, leakdir, lib/up; 1 unreadable: dangling.py"
    )


def test_reading_a_file_swapped_after_the_scan_does_not_leave_the_workspace_or_hang(tmp_path):
    ws_root = tree(tmp_path / "ws", {"lib.py": "l", "data.txt": "d"})
    tree(tmp_path, {"secret.txt": "s"})
    os.symlink("lib.py", ws_root / "alias.py")
    diff = Workspace(ws_root).diff(None)
    assert diff.added == ["alias.py", "data.txt", "lib.py"]
    (ws_root / "alias.py").unlink()
    os.symlink(tmp_path / "secret.txt", ws_root / "alias.py")
    with pytest.raises(PermissionError, match="alias.py: now points outside the workspace"):
        diff.read("alias.py")
    (ws_root / "data.txt").unlink()
    os.mkfifo(ws_root / "data.txt")
    with pytest.raises(OSError, match="data.txt: not a regular file"):
        diff.read("data.txt")
    assert diff.read("lib.py") == b"l"


def test_names_that_are_not_utf8_are_reported_and_the_scan_goes_on(tmp_path):
    tree(tmp_path, {"good.py": "g"})
    with open(os.path.join(os.fsencode(tmp_path), b"bad\xff.py"), "wb") as f:
        f.write(b"x")
    os.mkdir(os.path.join(os.fsencode(tmp_path), b"dir\xfe"))
    ws = Workspace(tmp_path)
    diff = ws.diff(None)
    assert diff.added == ["good.py"]
    assert sorted(diff.skipped.bad_names) == ["bad\\xff.py", "dir\\xfe"]
    assert ws.skipped_line(diff.skipped) == "workspace: skipped 2 names not valid UTF-8: bad\\xff.py, dir\\xfe"


def test_a_fifo_in_the_workspace_is_not_read(tmp_path):
    tree(tmp_path, {"a.py": "a"})
    os.mkfifo(tmp_path / "pipe")
    result = []
    worker = threading.Thread(target=lambda: result.append(Workspace(tmp_path).diff(None)), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert result and result[0].added == ["a.py"]


def scan_while_a_directory_is_unreadable(base: str) -> dict:
    """Diff, make ``locked/`` unreadable, diff again (as a user that permissions apply to)."""
    ws = Workspace(base)
    first = ws.diff(None)
    os.chmod(os.path.join(base, "locked"), 0)
    try:
        second = ws.diff(first.manifest)
    finally:
        os.chmod(os.path.join(base, "locked"), 0o755)
    return {
        "first": first.added,
        "added": second.added,
        "deleted": second.deleted,
        "kept": sorted(second.manifest.files),
        "line": ws.skipped_line(second.skipped),
    }


def test_an_unreadable_directory_is_reported_its_files_kept_and_the_scan_goes_on():
    base = Path(tempfile.mkdtemp())
    try:
        tree(base, {"a.py": "a", "locked/inner.py": "s", "z/b.py": "b"})
        base.chmod(0o755)
        if os.geteuid() != 0:
            result = scan_while_a_directory_is_unreadable(str(base))
        else:  # root reads everything: run the scan as an unprivileged user owning the tree
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("root without setpriv(1) cannot drop privileges for this test")
            for path in [base, *base.rglob("*")]:
                os.chown(path, 65534, 65534)
            drop = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c"]
            load = f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import {Path(__file__).stem} as t"
            # the checkout (and its venv) must be readable by that user: a clone in a 0700 directory is not
            reachable = subprocess.run([*drop, load], capture_output=True, text=True, timeout=60, cwd=base)
            if reachable.returncode != 0:
                pytest.skip(f"uid 65534 cannot load this test from its checkout: {reachable.stderr.strip()[-200:]}")
            code = f"{load}; print(json.dumps(t.scan_while_a_directory_is_unreadable(sys.argv[1])))"
            done = subprocess.run([*drop, code, str(base)], capture_output=True, text=True, timeout=60, cwd=base)
            assert done.returncode == 0, done.stderr
            result = json.loads(done.stdout)
        assert result["first"] == ["a.py", "locked/inner.py", "z/b.py"]
        assert result["line"] == "workspace: skipped 1 unreadable: locked/"
        assert result["added"] == result["deleted"] == []
        assert result["kept"] == ["a.py", "locked/inner.py", "z/b.py"]  # the sandbox keeps what it had
    finally:
        shutil.rmtree(base)


def test_a_workspace_root_that_cannot_be_read_is_named_and_loses_nothing(tmp_path):
    tree(tmp_path / "ws", {"a.py": "a"})
    ws = Workspace(tmp_path / "ws")
    synced = ws.diff(None).manifest
    shutil.rmtree(tmp_path / "ws")
    diff = ws.diff(synced)
    assert diff.empty and sorted(diff.manifest.files) == ["a.py"]
    assert ws.skipped_line(diff.skipped) == f"workspace: skipped 1 unreadable: {tmp_path / 'ws'}/"
