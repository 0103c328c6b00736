"""What the workspace view leaves out: ``.gitignore`` files (nested ones too), built-in names, the secrets deny-list.

Precedence: built-ins, then the secrets deny-list, then ``.gitignore`` files, the deepest one with a matching pattern
deciding (as git does). A directory left out is not entered, so nothing under it comes back through a ``!`` pattern.
``include`` (relative paths or bare file names, as ``daytona.sync.include`` lists them) wins over every rule, for
exactly what it names: naming ``credentials/aws.json`` brings in that file, not the rest of ``credentials/``.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pathspec

BUILTIN_IGNORED_DIRS = frozenset(
    {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache", "dist", "build"}
)
"""Directory names never part of the view (``.git`` also as a file: git worktrees and submodules)."""

SECRET_PATTERNS = (
    ".env*",
    "*.pem",
    "*.key",
    "id_rsa*",
    "id_ed25519*",
    ".npmrc",
    ".pypirc",
    ".netrc",
    "*.p12",
    "credentials*",
)
"""File (and directory) names never synced unless ``include`` names them; matched case-insensitively."""

_SECRET = re.compile("|".join(fnmatch.translate(p) for p in SECRET_PATTERNS), re.IGNORECASE)

Verdict = Literal["ignored", "secret"]


def is_secret(name: str) -> bool:
    """Whether a bare file name is on the secrets deny-list."""
    return _SECRET.match(name) is not None


@dataclass(slots=True)
class GitIgnore:
    """One ``.gitignore`` file: its patterns apply to paths relative to its directory ``base`` ("" for the root)."""

    base: str
    spec: pathspec.GitIgnoreSpec
    decisions: dict[str, bool | None] = field(default_factory=dict)

    def check(self, rel: str, is_dir: bool) -> bool | None:
        """True: ignored, False: re-included by a ``!`` pattern, None: no pattern matches."""
        key = rel[len(self.base) + 1 :] if self.base else rel
        if is_dir:
            key += "/"
        try:
            return self.decisions[key]
        except KeyError:
            verdict = self.decisions[key] = self.spec.check_file(key).include
            return verdict


class Rules:
    """The view's rules for one workspace root. Compiled ``.gitignore`` files are cached with their decisions per
    path, so a rescan with nothing changed costs a dictionary lookup per entry."""

    def __init__(self, root: str | Path, include: Iterable[str] = ()) -> None:
        self.root = os.fspath(root)
        self.include = frozenset(p.strip().lstrip("/").removeprefix("./") for p in include if p.strip())
        self._include_dirs = frozenset(
            "/".join(parts[:i]) for p in self.include if len(parts := p.split("/")) > 1 for i in range(1, len(parts))
        )
        self._gitignores: dict[str, tuple[str, GitIgnore]] = {}

    def included(self, rel: str, name: str, is_dir: bool) -> bool:
        """Whether ``include`` names this entry (a directory: an entry lies under it)."""
        if is_dir:
            return rel in self._include_dirs
        return rel in self.include or name in self.include

    def verdict(self, rel: str, name: str, is_dir: bool, chain: list[GitIgnore]) -> Verdict | None:
        """Why the entry ``rel`` (its last component ``name``) is left out by the rules (``include`` aside), or
        None; ``chain``: the ``.gitignore`` files of its ancestors, outermost first."""
        if name == ".git" or (is_dir and name in BUILTIN_IGNORED_DIRS):
            return "ignored"
        if _SECRET.match(name):
            return "secret"
        for gitignore in reversed(chain):
            ignored = gitignore.check(rel, is_dir)
            if ignored is not None:
                return "ignored" if ignored else None
        return None

    def gitignore(self, rel_dir: str) -> GitIgnore | None:
        """The ``.gitignore`` of the directory ``rel_dir`` ("" for the root), or None. Raises OSError if unreadable.
        Read each time (it is small) and compiled again only when its text changed."""
        try:
            with open(os.path.join(self.root, rel_dir, ".gitignore"), encoding="utf-8", errors="replace") as f:
                text = f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        cached = self._gitignores.get(rel_dir)
        if cached is None or cached[0] != text:
            cached = self._gitignores[rel_dir] = (
                text,
                GitIgnore(rel_dir, pathspec.GitIgnoreSpec.from_lines(text.splitlines())),
            )
        return cached[1]

    def excludes(self, rel: str, is_dir: bool = False) -> bool:
        """Whether the path ``rel`` (relative, ``/``-separated) is outside the view: left out itself or under a
        directory that is (and not named by ``include``). For paths that did not come from a scan (open documents,
        files a run wrote); the same decision as the scan's."""
        parts = rel.split("/")
        chain: list[GitIgnore] = []
        narrow = False  # under a directory entered only for what include names in it
        for i, name in enumerate(parts):
            current = "/".join(parts[:i])
            try:
                gitignore = self.gitignore(current)
            except OSError:
                gitignore = None
            if gitignore is not None:
                chain.append(gitignore)
            current = f"{current}/{name}" if current else name
            entry_is_dir = is_dir or i < len(parts) - 1
            if narrow or self.verdict(current, name, entry_is_dir, chain) is not None:
                if not self.included(current, name, entry_is_dir):
                    return True
                narrow = True
        return False
