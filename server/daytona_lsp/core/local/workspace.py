"""The workspace folder a local run sees (``RunSpec.workspace``), host side. Blocking (file system): call it off the
event loop.

The container holds the folder read-only at ``LOWER`` and a writable layer (kept for the container's lifetime) at
``LAYER``; each run mounts a fresh overlay of the two at the folder's **real absolute path** in its own mount
namespace (fresh: a file the host replaced by a rename since the last run shows its new content), then hides the two
staging directories, masks the secrets deny-list (``.env*``, ``id_rsa*``…; not what ``include`` names) and binds
the unsaved text of open documents (and the run's own code) over their files, read-only. What the run wrote stays
in the layer (:meth:`LocalWorkspace.changes`), and is copied back to the host folder only with ``write_back``.

Not searched for secrets (third-party trees, large): ``.git``, ``.venv``, ``venv``, ``node_modules`` and the caches.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import itertools
import os
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from daytona_lsp.core.environment import WorkspaceView
from daytona_lsp.core.local.runtimes import dedupe
from daytona_lsp.core.workspace import BUILTIN_IGNORED_DIRS, RACY_NS, Skipped, Workspace, changed_files, is_secret
from daytona_lsp.core.workspace.changes import differs

VIEW_DIR = "/run/daytona-lsp-workspace"
"""Inside the container: the staging directories (hidden from each run once its overlay is mounted)."""
LOWER = f"{VIEW_DIR}/lower"
LAYER = f"{VIEW_DIR}/layer"
UPPER = "upper"
"""The layer's directory holding what runs wrote (the overlay's upper directory); per-run work dirs sit beside it."""

NOT_SEARCHED = BUILTIN_IGNORED_DIRS - {"dist", "build"}
"""Directories the secrets search does not enter (their files stay visible)."""
_RESERVED = ("/proc", "/sys", "/dev", "/run", "/usr", "/etc", "/workspace", "/code", "/agent")
"""The sandbox's own directories: no workspace folder lies in them (nor is ``/`` or ``/tmp``)."""

_Key = tuple[bool, tuple[str, ...]]
"""A container's key (``sandbox.ContainerKey``: network, binds)."""


class WorkspaceProblem(ValueError):
    """The workspace folder cannot be shown to the run (the run goes on without it, saying why)."""


@dataclass(frozen=True, slots=True)
class Interpreter:
    """A workspace virtualenv's interpreter: ``python`` (the venv's ``bin/python``) and the host directories its
    base installation needs bound (none for a system Python under ``/usr``)."""

    python: str
    binds: tuple[str, ...]


@dataclass(slots=True)
class Prepared:
    """What one run is given: ``masks`` (paths to hide: deny-listed files and directories, unreadable directories),
    ``binds`` ``(path, text)`` of unsaved documents, ``line`` (what was skipped, or None)."""

    masks: list[str] = field(default_factory=list)
    binds: list[tuple[str, bytes]] = field(default_factory=list)
    line: str | None = None


@dataclass(slots=True)
class _Dir:
    mtime_ns: int
    ino: int
    trusted: bool  # not modified within RACY_NS of the listing: the same mtime means the same entries
    subdirs: list[str]
    masks: list[tuple[str, bool]]
    outside: list[str]
    bad_names: list[str]


def check_root(root: str) -> str:
    """The folder's absolute path, or :class:`WorkspaceProblem` saying why it cannot be the workspace."""
    path = os.path.abspath(root)
    if path in ("/", "/tmp") or any(path == r or path.startswith(r + "/") for r in _RESERVED):
        raise WorkspaceProblem(f"the workspace folder {path} is a system directory; running without it")
    try:
        st = os.stat(path)
    except OSError as exc:
        raise WorkspaceProblem(
            f"the workspace folder {path} cannot be read ({exc.strerror}); running without it"
        ) from None
    if not stat.S_ISDIR(st.st_mode):
        raise WorkspaceProblem(f"the workspace folder {path} is not a directory; running without it")
    return path


class LocalWorkspace:
    """One workspace folder of one environment: the secrets search (cached per directory, so a run in an unchanged
    2,000-file workspace costs a ``stat`` per directory), the unsaved documents, the virtualenv, what runs changed."""

    def __init__(self, root: str) -> None:
        self.root = check_root(root)
        self.real = os.path.realpath(self.root)
        self._dirs: dict[str, _Dir] = {}
        self._ws: dict[tuple[str, ...], Workspace] = {}

    def _view(self, include: tuple[str, ...]) -> Workspace:
        ws = self._ws.get(include)
        if ws is None:
            ws = self._ws[include] = Workspace(self.root, include=include)
        return ws

    # -- per run ----------------------------------------------------------------------------------------------------

    def prepare(self, view: WorkspaceView, own_file: str | None) -> Prepared:
        """The masks and unsaved documents for a run of ``own_file`` (workspace-relative, or None)."""
        ws = self._view(tuple(view.include))
        skipped = Skipped()
        prepared = Prepared()
        for d in self._search(skipped):
            prepared.masks += [path for path, is_dir in d.masks if not _named(ws, path, self.root, is_dir)]
        for key, text in view.overlays.items():
            rel = ws.relative(key)
            if rel is None or rel == own_file or _hidden(ws, rel):
                continue
            data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
            if len(data) > view.max_file_bytes:
                skipped.too_large.append(rel)
                continue
            prepared.binds.append((f"{self.root}/{rel}", data))
        if own_file is not None:
            own = f"{self.root}/{own_file}"
            prepared.masks = [m for m in prepared.masks if m != own]
        prepared.line = skipped.line(view.max_file_bytes, view.max_total_bytes)
        return prepared

    def _search(self, skipped: Skipped) -> list[_Dir]:
        """Every searched directory's findings (listing again only those whose mtime changed)."""
        found: list[_Dir] = []
        seen: set[str] = set()
        stack = [""]
        while stack:
            rel_dir = stack.pop()
            seen.add(rel_dir)
            path = os.path.join(self.root, rel_dir)
            try:
                st = os.stat(path)
                cached = self._dirs.get(rel_dir)
                if cached is None or not cached.trusted or (cached.mtime_ns, cached.ino) != (st.st_mtime_ns, st.st_ino):
                    cached = self._dirs[rel_dir] = self._list(rel_dir, path, st)
            except OSError as exc:
                if not rel_dir:
                    raise WorkspaceProblem(
                        f"the workspace folder {self.root} cannot be read ({exc.strerror}); running without it"
                    ) from None
                self._dirs.pop(rel_dir, None)
                # the run cannot list it either, but could make it listable (its own, in the layer): hidden whole
                skipped.unreadable.append(rel_dir + "/")
                found.append(_Dir(0, 0, False, [], [(f"{self.root}/{rel_dir}", True)], [], []))
                continue
            found.append(cached)
            skipped.outside += cached.outside
            skipped.bad_names += cached.bad_names
            stack += cached.subdirs
        for gone in [d for d in self._dirs if d not in seen]:
            del self._dirs[gone]
        return found

    def _list(self, rel_dir: str, path: str, st: os.stat_result) -> _Dir:
        started = time.time_ns()
        d = _Dir(st.st_mtime_ns, st.st_ino, st.st_mtime_ns < started - RACY_NS, [], [], [], [])
        prefix = rel_dir + "/" if rel_dir else ""
        with os.scandir(path) as it:
            for de in it:
                rel = prefix + de.name
                try:
                    de.name.encode("utf-8")
                except UnicodeEncodeError:
                    d.bad_names.append(os.fsencode(rel).decode("utf-8", "backslashreplace"))
                    if is_secret(de.name):  # still the name it has in the sandbox
                        d.masks.append((f"{self.root}/{rel}", de.is_dir(follow_symlinks=False)))
                    continue
                if de.is_symlink():
                    target = os.path.realpath(de.path)
                    if target != self.real and not target.startswith(self.real + os.sep):
                        d.outside.append(rel)  # not mounted in the sandbox: the link leads nowhere there
                    elif is_secret(de.name) or is_secret(os.path.basename(target)):
                        # the mount lands on what the link points to: mask it at its own path
                        inside = self.root + target[len(self.real) :]
                        d.masks.append((inside, os.path.isdir(target)))
                    continue
                is_dir = de.is_dir(follow_symlinks=False)
                if is_secret(de.name):
                    d.masks.append((f"{self.root}/{rel}", is_dir))
                elif is_dir and de.name not in NOT_SEARCHED:
                    d.subdirs.append(rel)
        return d

    # -- the project's interpreter ----------------------------------------------------------------------------------

    def interpreter(self) -> Interpreter | WorkspaceProblem | None:
        """The workspace's virtualenv (``.venv`` or ``venv`` with a ``pyvenv.cfg``), or None when there is none.

        Never run on the host (the folder may be untrusted): its base installation comes from ``pyvenv.cfg`` and
        the ``bin/python`` link, and is bound only when it looks like a Python installation."""
        for name in (".venv", "venv"):
            venv = os.path.join(self.root, name)
            cfg = os.path.join(venv, "pyvenv.cfg")
            python = os.path.join(venv, "bin", "python")
            if not (os.path.isfile(cfg) and os.path.lexists(python)):
                continue
            parser = configparser.ConfigParser()
            try:
                with open(cfg, encoding="utf-8", errors="replace") as f:
                    parser.read_string("[venv]\n" + f.read(64 * 1024))
            except (OSError, configparser.Error) as exc:
                return WorkspaceProblem(f"{name}/pyvenv.cfg cannot be read ({exc}): using the system Python")
            home = parser.get("venv", "home", fallback="").strip()
            exe = os.path.realpath(python)
            if exe.startswith(self.real + os.sep):  # a copy, not a link (venv --copies): its base is `home`
                exe = os.path.join(home, os.path.basename(exe)) if home else ""
            prefix = _python_prefix(exe)
            if prefix is None:
                return WorkspaceProblem(
                    f"{name}: its base interpreter ({exe or home or 'unknown'}) is not a Python installation "
                    "this sandbox can show: using the system Python"
                )
            binds = () if prefix.startswith("/usr/") or prefix == "/usr" else (prefix,)
            return Interpreter(f"{self.root}/{name}/bin/python", binds)
        return None

    # -- after a run --------------------------------------------------------------------------------------------------

    @staticmethod
    def listing(layer: Path) -> dict[str, tuple[int, int, int]]:
        """The writable layer's files now: path → (size, mtime_ns, inode)."""
        upper = layer / UPPER
        found: dict[str, tuple[int, int, int]] = {}
        stack = [""]
        while stack:
            rel_dir = stack.pop()
            with contextlib.suppress(OSError), os.scandir(os.path.join(upper, rel_dir)) as it:
                for de in it:
                    rel = f"{rel_dir}/{de.name}" if rel_dir else de.name
                    with contextlib.suppress(OSError):
                        st = de.stat(follow_symlinks=False)
                        if stat.S_ISDIR(st.st_mode):
                            stack.append(rel)
                        elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                            found[rel] = (st.st_size, st.st_mtime_ns, st.st_ino)
        return found

    def changes(
        self, layer: Path, before: dict[str, tuple[int, int, int]], view: WorkspaceView, own: set[str]
    ) -> list[str]:
        """The workspace files this run created or changed (their content now differs from the host folder's),
        without the ``own`` placeholders made for bound documents; names that are not UTF-8 are left out."""
        rules = self._view(tuple(view.include)).rules
        upper = layer / UPPER
        result = []
        for rel in changed_files(before, self.listing(layer), rules):
            if rel in own or not _utf8(rel):
                continue
            if differs(str(upper / rel), os.path.join(self.root, rel)):
                result.append(rel)
        return result

    def write_back(self, layer: Path, paths: list[str]) -> str | None:
        """Copy ``paths`` from the layer to the host folder, never outside it (a path through a symlink that leaves
        the folder, or onto a symlink, is refused). Deleted files are not deleted on the host. Returns a line naming
        what was not copied, or None."""
        refused: list[str] = []
        for rel in paths:
            dst = os.path.join(self.root, rel)
            parent = os.path.realpath(os.path.dirname(dst))
            try:
                if parent != self.real and not parent.startswith(self.real + os.sep):
                    raise PermissionError("outside the workspace")
                with open_in_layer(layer, rel, os.O_RDONLY | os.O_NONBLOCK) as src:
                    st = os.fstat(src.fileno())
                    if not stat.S_ISREG(st.st_mode):
                        raise PermissionError("not a regular file")
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, st.st_mode & 0o777)
                    with os.fdopen(fd, "wb") as out:
                        shutil.copyfileobj(src, out)
            except OSError:
                refused.append(rel)
        if not refused:
            return None
        return (
            f"workspace: not written back (outside the folder, through a symlink or not a file): {', '.join(refused)}"
        )


class _LayerFile(io.FileIO):
    dir_fd: int = -1

    def close(self) -> None:
        super().close()
        if self.dir_fd != -1:
            os.close(self.dir_fd)
            self.dir_fd = -1


def open_in_layer(layer: Path, rel: str, flags: int) -> _LayerFile:
    """Open the layer's file ``rel`` without following a symlink in any part of its path (a run may have made a
    directory of the layer a link to anywhere on the host). ``dir_fd``: its directory, open until the file closes."""
    dir_fd = os.open(layer / UPPER, os.O_RDONLY | os.O_DIRECTORY)
    try:
        *dirs, name = rel.split("/")
        for part in dirs:
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        fd = os.open(name, flags | os.O_NOFOLLOW, dir_fd=dir_fd)
    except BaseException:
        os.close(dir_fd)
        raise
    f = _LayerFile(fd, "rb")
    f.dir_fd = dir_fd
    return f


def make_layer(base: Path) -> Path:
    """A new writable layer under ``base`` (the sandbox's private directory)."""
    for n in itertools.count(1):
        layer = base / f"layer-{n}"
        with contextlib.suppress(FileExistsError):
            layer.mkdir(0o700)
            (layer / UPPER).mkdir(0o755)
            return layer
    raise AssertionError("unreachable")


def remove_tree(path: Path) -> None:
    """Remove a layer or a run's overlay work directory (whose ``work`` subdirectory the kernel leaves mode 0), once
    nothing of the sandbox can write there. Never follows a symlink a run made."""
    for dirpath, dirnames, _ in os.walk(path):
        for name in dirnames:
            child = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):
                if stat.S_ISDIR(os.lstat(child).st_mode):
                    os.chmod(child, 0o700)
    shutil.rmtree(path, ignore_errors=True)


def _python_prefix(exe: str) -> str | None:
    """The installation prefix of the interpreter ``exe`` (``/opt/py/bin/python3.12`` → ``/opt/py``) when it is
    one: an executable named python… next to ``lib/python3.*/os.py``."""
    if not exe or not os.path.basename(exe).startswith("python") or not os.access(exe, os.X_OK):
        return None
    prefix = os.path.dirname(os.path.dirname(exe))
    with contextlib.suppress(OSError):
        for lib in os.listdir(os.path.join(prefix, "lib")):
            if lib.startswith("python3") and os.path.isfile(os.path.join(prefix, "lib", lib, "os.py")):
                return prefix
    return None


def _named(ws: Workspace, path: str, root: str, is_dir: bool) -> bool:
    """Whether ``include`` names this deny-listed path (then it stays visible)."""
    rel = path[len(root) + 1 :]
    return ws.rules.included(rel, os.path.basename(rel), is_dir)


def _hidden(ws: Workspace, rel: str) -> bool:
    """Whether an open document stays out of a local run: only the secrets deny-list hides files locally (ignored
    trees such as ``node_modules`` stay visible)."""
    return any(is_secret(part) for part in rel.split("/")) and not ws.rules.included(rel, rel.rsplit("/", 1)[-1], False)


def _utf8(rel: str) -> bool:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(slots=True)
class RunView:
    """One isolated run's view of the workspace, from its request to what it changed (see :func:`run_view`)."""

    workspace: LocalWorkspace
    view: WorkspaceView
    file: str | None
    """The run's own file at its real path (None: a snippet, run from ``/code``)."""
    cwd: str
    interpreter: Interpreter | None
    prepared: Prepared
    notes: list[str]
    layer: Path | None = None
    before: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def request(self, run_id: str, code: bytes, code_dir: str) -> tuple[dict[str, object], bytes]:
        """The run request's workspace fields, and what its code descriptor holds (the code, then the texts)."""
        names = ["code", *(f"b{i}" for i in range(len(self.prepared.binds))), "empty"]
        datas = [code, *(data for _, data in self.prepared.binds), b""]
        binds = [[name, target] for name, (target, _) in zip(names[1:], self.prepared.binds, strict=False)]
        if self.file is not None:
            binds.insert(0, ["code", self.file])
        fields: dict[str, object] = {
            "code_dir": code_dir,
            "parts": [[name, len(data)] for name, data in zip(names, datas, strict=True)],
            "workspace": {
                "root": self.workspace.root,
                "view": VIEW_DIR,
                "work": f"w{run_id}",
                "masks": self.prepared.masks,
                "binds": binds,
                "own": "code" if self.file is not None else None,
                "empty": "empty",
            },
        }
        return fields, b"".join(datas)

    def started(self, layer: Path | None) -> None:
        """Before the run: what the layer holds (blocking)."""
        self.layer = layer
        if layer is not None:
            self.before = self.workspace.listing(layer)

    def finished(self, run_id: str) -> tuple[list[str], str | None]:
        """After the run (blocking): the workspace files it created or changed, copied back with ``write_back``,
        and a line about what was not copied back (or None). Removes the run's overlay work directory."""
        if self.layer is None:
            return [], None
        remove_tree(self.layer / f"w{run_id}")
        root = self.workspace.root
        own = {target[len(root) + 1 :] for target, _ in self.prepared.binds}
        if self.file is not None:
            own.add(self.file[len(root) + 1 :])
        changed = self.workspace.changes(self.layer, self.before, self.view, own)
        for rel in own - self.before.keys():  # the run's overlay is gone: its placeholders go too
            if os.path.lexists(os.path.join(root, rel)):
                continue
            with contextlib.suppress(OSError), open_in_layer(self.layer, rel, os.O_RDONLY | os.O_NONBLOCK) as f:
                st = os.fstat(f.fileno())
                if stat.S_ISREG(st.st_mode) and st.st_size == 0:
                    os.unlink(os.path.basename(rel), dir_fd=f.dir_fd)
        line = self.workspace.write_back(self.layer, changed) if self.view.write_back and changed else None
        return changed, line


def container_for(key: _Key, view: RunView | None) -> tuple[_Key, str | None]:
    """The container a run with ``view`` goes to: ``key`` with its virtualenv's base bound, and the folder shown."""
    if view is None:
        return key, None
    network, binds = key
    if view.interpreter is not None and view.interpreter.binds:
        binds = dedupe([*binds, *view.interpreter.binds])
    return (network, binds), view.workspace.root


def run_view(
    cache: dict[str, LocalWorkspace], view: WorkspaceView, path: str, cwd: str, *, want_python: bool
) -> RunView | WorkspaceProblem:
    """Prepare a run of the workspace-relative ``path`` ("" for a snippet) in ``cwd`` (blocking). ``cache``: the
    environment's workspaces by folder (their secrets search is cached)."""
    try:
        workspace = cache.get(os.path.abspath(view.root))
        if workspace is None:
            workspace = LocalWorkspace(view.root)
            cache[workspace.root] = workspace
        notes: list[str] = []
        interpreter = workspace.interpreter() if want_python else None
        if isinstance(interpreter, WorkspaceProblem):
            notes.append(str(interpreter))
            interpreter = None
        prepared = workspace.prepare(view, path or None)
    except WorkspaceProblem as exc:
        return exc
    if prepared.line is not None:
        notes.append(prepared.line)
    file = f"{workspace.root}/{path}" if path else None
    return RunView(
        workspace, view, file, f"{workspace.root}/{cwd}" if cwd else workspace.root, interpreter, prepared, notes
    )
