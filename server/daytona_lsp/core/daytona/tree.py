"""A run in the synced copy of the workspace (no SDK here: pure string building and parsing).

The program runs as the real file of the synced tree — ``__file__``, ``sys.argv[0]``, ``require.main.filename`` and
``$0`` are its sandbox path — in ``spec.cwd`` under the synced root, with the root on ``PYTHONPATH`` (``import
helper`` from the folder root works from a file in a subdirectory). A selection or cell (code that is not the
synced file's content) runs from a hidden file next to it, so that it has the file's directory and search path.

What the run created or changed costs no request of its own: the command lists the tree (``find``: path, size,
mtime) before and after the program and prints, after a marker unique to the run, the lines of the second listing
that are not in the first. :class:`Trailer` takes that part off the output — also from a stream, chunk by chunk —
and :meth:`Trailer.changed` turns it into workspace-relative paths. (A file name holding a newline cannot be told
apart in the listing: such a file is not reported correctly.)
"""

from __future__ import annotations

import hashlib
import posixpath
import shlex
import uuid
from collections.abc import Mapping

from daytona_lsp.core.daytona.commands import FILE_RUNNERS, Command, package, program_lines
from daytona_lsp.core.daytona.shell import b64
from daytona_lsp.core.daytona.stdin import StdinPlan
from daytona_lsp.core.environment import RunSpec
from daytona_lsp.core.workspace import BUILTIN_IGNORED_DIRS, Entry, Rules, changed_files

_PRUNED = " -o ".join(f"-name {shlex.quote(name)}" for name in sorted(BUILTIN_IGNORED_DIRS))
_LIST = f"__dlsp_list() {{ find . \\( {_PRUNED} \\) -prune -o -type f -printf '%P\\t%s\\t%T@\\n' 2>/dev/null; }}"
"""A shell function printing the tree's files (``path<TAB>size<TAB>mtime``), skipping the built-in ignored
directories (the rest of the rules is applied to what it reports)."""
_NEW_LINES = """awk -v b="$__dlsp_before" 'BEGIN { while ((getline l < b) > 0) seen[l] } !($0 in seen)'"""
"""Prints the lines of stdin that are not in the file ``$__dlsp_before`` (three processes a run in all: two finds
and this awk; sorting both listings for ``comm`` would take three more)."""


class Trailer:
    """Separates the change listing the command prints after its marker from the program's output."""

    def __init__(self) -> None:
        self.marker = f"\x1e[daytona-lsp changes {uuid.uuid4().hex}]\n"
        self._held = ""
        self.tail: str | None = None
        """What followed the marker (None: the marker never came — the command was stopped before it)."""

    def feed(self, text: str) -> str:
        """The part of ``text`` (the next chunk of stdout) that is the program's output. A chunk that ends with the
        start of the marker is held back until the next one shows whether it is."""
        if self.tail is not None:
            self.tail += text
            return ""
        text, self._held = self._held + text, ""
        at = text.find(self.marker)
        if at >= 0:
            self.tail = text[at + len(self.marker) :]
            return text[:at]
        for keep in range(min(len(text), len(self.marker) - 1), 0, -1):
            if self.marker.startswith(text[-keep:]):
                self._held = text[-keep:]
                return text[:-keep]
        return text

    def flush(self) -> str:
        """Output held back that turned out not to be the marker (call when the stream ends)."""
        held, self._held = self._held, ""
        return held

    def split(self, text: str) -> str:
        """The program's part of a whole output (a non-streamed run)."""
        return self.feed(text) + self.flush()

    def changed(self, rules: Rules | None) -> list[str] | None:
        """Workspace-relative paths the run created or changed (outside the rules' view left out); None when the
        listing never came."""
        if self.tail is None:
            return None
        after: dict[str, object] = {}
        for line in self.tail.splitlines():
            path, sep, version = line.partition("\t")
            if sep and path and not path.startswith("/") and ".." not in path.split("/"):
                after[path] = version
        return changed_files({}, after, rules)


def tree_problem(spec: RunSpec) -> str | None:
    """Why ``spec.path`` / ``spec.cwd`` cannot name a place in the workspace (None when they can)."""
    for what, value in (("path", spec.path), ("cwd", spec.cwd)):
        if value and (value.startswith("/") or ".." in value.split("/") or "\0" in value):
            return f"The run's {what} {value!r} is not a path inside the workspace folder."
    return None


def is_synced_file(spec: RunSpec, files: Mapping[str, Entry]) -> bool:
    """Whether the code to run is exactly the synced content of ``spec.path`` (a whole-file run)."""
    if spec.path is None:
        return False
    entry = files.get(spec.path)
    data = spec.code.encode("utf-8", "surrogateescape")
    return entry is not None and entry.size == len(data) and entry.digest == hashlib.sha256(data).hexdigest()


def tree_command(
    spec: RunSpec, timeout: int, root: str, *, whole_file: bool, stdin: StdinPlan | None = None
) -> Command:
    """The command that runs ``spec`` in the synced tree at ``root`` (the sandbox path of the workspace root) and
    prints the change listing after ``command.trailer.marker``."""
    suffix, runner = FILE_RUNNERS[spec.language]
    trailer = Trailer()
    q_root = shlex.quote(root)
    lines = [
        f"__dlsp_root={q_root}",
        'mkdir -p -- "$__dlsp_root" && cd -- "$__dlsp_root" || exit 2',
        _LIST,
        "__dlsp_before=/tmp/.daytona-lsp-$$.list",
        '__dlsp_list > "$__dlsp_before"',
    ]
    if whole_file:
        assert spec.path is not None
        source_path = posixpath.join(root, spec.path)
        lines += [f"__dlsp_f={shlex.quote(source_path)}", "trap 'rm -f \"$__dlsp_before\"' EXIT"]
    else:
        directory = posixpath.join(root, posixpath.dirname(spec.path)) if spec.path else root
        source_path = posixpath.join(directory, f".daytona-lsp-{uuid.uuid4().hex[:12]}{suffix}")
        lines += [
            f"__dlsp_f={shlex.quote(source_path)}",
            'trap \'rm -f "$__dlsp_f" "$__dlsp_before"\' EXIT',
            'mkdir -p -- "${__dlsp_f%/*}"',
            f'printf %s {b64(spec.code)} | base64 -d > "$__dlsp_f"',
        ]
    if spec.language == "python":
        lines.append('export PYTHONPATH="$__dlsp_root${PYTHONPATH:+:$PYTHONPATH}"')
    lines += program_lines(spec, runner, timeout, stdin)
    lines += [
        "__dlsp_rc=$?",
        "" if whole_file else 'rm -f -- "$__dlsp_f"',
        'cd -- "$__dlsp_root" || exit $__dlsp_rc',
        f"printf %s {shlex.quote(trailer.marker)}",
        f"__dlsp_list | {_NEW_LINES}",
        "exit $__dlsp_rc",
    ]
    return package("\n".join(line for line in lines if line) + "\n", source_path, trailer=trailer)
