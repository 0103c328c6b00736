"""The workspace view's root rule, built-in ignores, secrets deny-list and .gitignore files, on real directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daytona_lsp.core.workspace import Workspace, find_root


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def view(root: Path, **kwargs) -> list[str]:
    return sorted(Workspace(root, **kwargs).scan().files)


@pytest.mark.parametrize("marker", [".git", "pyproject.toml", "package.json"])
def test_root_is_the_nearest_ancestor_with_a_marker(tmp_path, marker):
    tree(tmp_path, {f"proj/{marker}": "", "proj/src/pkg/mod.py": "", "proj/src/pkg/.git-not": ""})
    assert find_root(tmp_path / "proj/src/pkg/mod.py") == tmp_path / "proj"


def test_root_prefers_the_nearest_marker_and_takes_a_git_file(tmp_path):
    tree(tmp_path, {"outer/.git": "gitdir: elsewhere", "outer/inner/package.json": "{}", "outer/inner/a.js": ""})
    assert find_root(tmp_path / "outer/inner/a.js") == tmp_path / "outer/inner"


def test_root_without_markers_is_the_files_directory_and_explicit_wins(tmp_path):
    tree(tmp_path, {"a/b/c.py": ""})
    assert find_root(tmp_path / "a/b/c.py") == tmp_path / "a/b"
    assert find_root(tmp_path / "a/b/c.py", explicit=tmp_path / "a") == tmp_path / "a"
    assert find_root(tmp_path / "a/b") == tmp_path / "a/b"


def test_builtin_directories_are_left_out_but_files_of_those_names_stay(tmp_path):
    dirs = [".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache", "dist", "build"]
    tree(
        tmp_path, {f"{d}/x.py": "" for d in dirs} | {"sub/node_modules/m/index.js": "", "build.sh": "", "pkg/build": ""}
    )
    (tmp_path / "sub/.git").write_text("gitdir: /elsewhere")  # a worktree's .git file
    assert view(tmp_path) == ["build.sh", "pkg/build"]


@pytest.mark.parametrize(
    "name",
    [".env", ".env.local", "key.pem", "server.key", "id_rsa", "id_rsa.pub", "id_ed25519", ".npmrc", ".pypirc",
     ".netrc", "cert.p12", "credentials", "credentials.json", "ID_RSA", "Prod.PEM"],
)  # fmt: skip
def test_secret_names_are_never_in_the_view(tmp_path, name):
    tree(tmp_path, {name: "secret", f"deep/er/{name}": "secret", "main.py": ""})
    assert view(tmp_path) == ["main.py"]


def test_a_secret_comes_in_only_when_include_names_it(tmp_path):
    tree(tmp_path, {".env": "A=1", "conf/.env": "B=2", "conf/id_rsa": "k", "credentials/aws.json": "{}"})
    assert view(tmp_path) == []
    assert view(tmp_path, include=[".env"]) == [".env", "conf/.env"]
    assert view(tmp_path, include=["./conf/id_rsa"]) == ["conf/id_rsa"]
    assert view(tmp_path, include=["credentials/aws.json"]) == ["credentials/aws.json"]


def test_include_brings_in_exactly_what_it_names_not_its_neighbours(tmp_path):
    tree(tmp_path, {"credentials/aws.json": "{}", "credentials/gcp.json": "{}", "build/keep.py": "", "build/x.py": ""})
    tree(tmp_path, {"build/deep/also.py": "", "main.py": ""})
    include = ["credentials/aws.json", "build/keep.py"]
    assert view(tmp_path, include=include) == ["build/keep.py", "credentials/aws.json", "main.py"]
    rules = Workspace(tmp_path, include=include).rules
    assert not rules.excludes("credentials/aws.json") and not rules.excludes("build/keep.py")
    assert (
        rules.excludes("credentials/gcp.json") and rules.excludes("build/x.py") and rules.excludes("build/deep/also.py")
    )


def test_a_link_with_an_innocent_name_to_a_secret_stays_out(tmp_path):
    tree(tmp_path, {".env": "TOKEN=x", "main.py": ""})
    os.symlink(".env", tmp_path / "notes.txt")
    assert view(tmp_path) == ["main.py"]


def test_gitignore_negation_directory_only_anchored_and_double_star(tmp_path):
    tree(
        tmp_path,
        {
            ".gitignore": "*.log\n!keep.log\nout/\n/top.txt\na/**/b.txt\n",
            "x.log": "", "keep.log": "", "sub/y.log": "",
            "out/o.py": "", "sub/out/o.py": "", "sub/out.py": "",
            "top.txt": "", "sub/top.txt": "",
            "a/b.txt": "", "a/x/y/b.txt": "", "a/x/c.txt": "",
        },
    )  # fmt: skip
    (tmp_path / "data").mkdir()
    (tmp_path / "data/out").write_text("a file named out is not a directory")
    assert view(tmp_path) == [".gitignore", "a/x/c.txt", "data/out", "keep.log", "sub/out.py", "sub/top.txt"]


def test_nested_gitignore_is_relative_to_its_directory_and_overrides_the_parent(tmp_path):
    tree(
        tmp_path,
        {
            ".gitignore": "*.csv\n",
            "data/.gitignore": "!wanted.csv\n/local.txt\n",
            "data/wanted.csv": "", "data/other.csv": "", "data/local.txt": "", "data/sub/local.txt": "",
            "other/local.txt": "",
        },
    )  # fmt: skip
    assert view(tmp_path) == [
        ".gitignore",
        "data/.gitignore",
        "data/sub/local.txt",
        "data/wanted.csv",
        "other/local.txt",
    ]


def test_an_edited_gitignore_applies_to_the_next_scan(tmp_path):
    tree(tmp_path, {".gitignore": "*.tmp\n", "a.tmp": "", "b.txt": ""})
    ws = Workspace(tmp_path)
    assert sorted(ws.scan().files) == [".gitignore", "b.txt"]
    stamp = (tmp_path / ".gitignore").stat().st_mtime_ns
    (tmp_path / ".gitignore").write_text("*.txt\n")  # same size, and on a coarse clock the same mtime
    os.utime(tmp_path / ".gitignore", ns=(stamp, stamp))
    assert sorted(ws.scan().files) == [".gitignore", "a.tmp"]


def test_excludes_judges_paths_that_did_not_come_from_a_scan(tmp_path):
    tree(tmp_path, {".gitignore": "gen/\n", "src/.gitignore": "*.out\n"})
    rules = Workspace(tmp_path).rules
    assert rules.excludes("__pycache__/m.cpython-311.pyc")
    assert rules.excludes("src/pkg/__pycache__/m.pyc")
    assert rules.excludes("gen/x.py") and rules.excludes("src/a.out") and rules.excludes("deep/.env")
    assert not rules.excludes("src/a.py") and not rules.excludes("new/dir/file.txt") and not rules.excludes("a.out")


def test_excludes_and_the_scan_make_the_same_decision_for_every_file(tmp_path):
    tree(
        tmp_path,
        {
            ".gitignore": "*.log\n!keep.log\nout/\n/top.txt\na/**/b.txt\n",
            "a/.gitignore": "!x/y/b.txt\n*.csv\n", "a/x/y/b.txt": "", "a/b.txt": "", "a/d.csv": "", "a/x/e.csv": "",
            "x.log": "", "keep.log": "", "out/o.py": "", "sub/out/o.py": "", "top.txt": "", "sub/top.txt": "",
            ".env": "", "conf/id_rsa": "", "conf/app.toml": "", "dist/pkg.whl": "", "src/__pycache__/m.pyc": "",
            "credentials/aws.json": "", "credentials/gcp.json": "",
        },
    )  # fmt: skip
    expected = [".gitignore", "a/.gitignore", "a/x/y/b.txt", "conf/app.toml", "keep.log", "sub/top.txt"]
    assert view(tmp_path) == expected  # the nested !x/y/b.txt overrides the root's a/**/b.txt
    for include in ([], ["conf/id_rsa", "credentials/gcp.json", ".env", "out/o.py"]):
        ws = Workspace(tmp_path, include=include)
        every = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
        assert sorted(ws.scan().files) == [p for p in every if not ws.rules.excludes(p)], include
