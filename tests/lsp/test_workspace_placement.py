"""Where a run sits in its workspace folder (lsp/workspace.py, no server process): which documents are overlays, the
file's path and cwd, and which sandbox paths map back to the user's files."""

from __future__ import annotations

from pathlib import Path

from daytona_lsp.lsp.settings import parse_settings
from daytona_lsp.lsp.workspace import PathMap, has_place, place


def test_only_open_documents_under_the_folder_whose_text_differs_from_disk_are_overlays(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "main.py").write_text("print(1)\n")
    (root / "same.py").write_text("x = 1\n")
    (root / "edited.py").write_text("x = 1\n")
    (tmp_path / "outside.py").write_text("y = 1\n")
    docs = {
        (root / "pkg" / "main.py").as_uri(): "print(1)\n",
        (root / "same.py").as_uri(): "x = 1\n",
        (root / "edited.py").as_uri(): "x = 2\n",  # same size, other bytes
        (root / "new.py").as_uri(): "created in the editor\n",  # not on disk yet
        (tmp_path / "outside.py").as_uri(): "y = 2\n",
        "untitled:Untitled-1": "z = 1\n",
    }
    placed = place(root.as_uri(), (root / "pkg" / "main.py").as_uri(), docs, parse_settings({}))
    assert placed is not None
    assert (placed.path, placed.cwd, placed.view.root) == ("pkg/main.py", "pkg", str(root))
    assert dict(placed.view.overlays) == {"edited.py": "x = 2\n", "new.py": "created in the editor\n"}
    at_root = place(root.as_uri(), (root / "pkg" / "main.py").as_uri(), {}, parse_settings({"cwd": "workspaceFolder"}))
    assert at_root is not None and at_root.cwd == "."


def test_settings_reach_the_view_and_documents_outside_a_folder_get_none(tmp_path: Path) -> None:
    settings = parse_settings(
        {"workspace.writeBack": True, "sync": {"include": [".env"], "maxFileBytes": 5, "maxTotalBytes": 50}}
    )
    placed = place(tmp_path.as_uri(), (tmp_path / "a.py").as_uri(), {}, settings)
    assert placed is not None
    view = placed.view
    assert (view.write_back, view.include, view.max_file_bytes, view.max_total_bytes) == (True, (".env",), 5, 50)
    assert (placed.path, placed.cwd) == ("a.py", ".")
    assert has_place(tmp_path.as_uri(), (tmp_path / "a.py").as_uri())
    unplaced = [
        ("", (tmp_path / "a.py").as_uri()),  # no workspace folder
        (tmp_path.as_uri(), "untitled:Untitled-1"),
        ((tmp_path / "sub").as_uri(), (tmp_path / "a.py").as_uri()),
        (tmp_path.as_uri(), tmp_path.as_uri() + "/../escape.py"),
    ]
    for folder, uri in unplaced:  # the server asks has_place first (on the loop), place only then (in a thread)
        assert place(folder, uri, {}, settings) is None
        assert not has_place(folder, uri)


def test_sandbox_paths_map_to_the_folder_s_files_and_nothing_outside_it(tmp_path: Path) -> None:
    placed = place(tmp_path.as_uri(), (tmp_path / "pkg" / "main.py").as_uri(), {}, parse_settings({}))
    local = PathMap.of_run(placed, None, str(tmp_path / "pkg" / "main.py"))  # the local sandbox: the real path
    assert local is not None and local.sandbox_root == str(tmp_path)
    assert local.uri(str(tmp_path / "lib" / "helper.py")) == (tmp_path / "lib" / "helper.py").as_uri()
    daytona = PathMap.of_run(placed, "/home/daytona/workspace/ws", "/tmp/daytona-lsp-1.py")
    assert daytona is not None
    assert daytona.uri("/home/daytona/workspace/ws/helper.py") == (tmp_path / "helper.py").as_uri()
    for outside in ("/home/daytona/workspace/ws", "/home/daytona/workspace/ws/../other/x.py", "/etc/passwd"):
        assert daytona.uri(outside) is None
    assert PathMap.of_run(placed, None, "/code/main.py") is None  # the file ran elsewhere: nothing to map
    assert PathMap.of_run(None, "/home/daytona/workspace/ws", None) is None
