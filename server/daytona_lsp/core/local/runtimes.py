"""Finding each language's runtime on the host, and what of the host a sandbox must see to start it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daytona_lsp.core.environment import CodeLanguage

SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
"""Mounted (or symlinked) into every sandbox as they are on the host; runtimes under them need no bind of their own."""
EXTENSIONS: dict[str, str] = {"python": "py", "bash": "sh", "javascript": "js", "typescript": "ts"}


@dataclass(frozen=True, slots=True)
class Runtime:
    """How to start one language inside the sandbox."""

    argv: tuple[str, ...]  # the command, the code file's path is appended
    binds: tuple[str, ...]  # host directories to mount read-only at the same path
    path_dirs: tuple[str, ...] = ()  # added to PATH inside the sandbox
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Unavailable:
    message: str


_runtime_cache: dict[tuple[str, ...], Any] = {}


def under(path: str, dirs: Iterable[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def install_prefix(executable: str) -> str:
    """``/opt/node-v22/bin/node`` → ``/opt/node-v22``."""
    return os.path.dirname(os.path.dirname(os.path.realpath(executable)))


def dedupe(paths: Iterable[str]) -> tuple[str, ...]:
    """Directories to bind, without the system ones (already mounted) and without nested duplicates."""
    result: list[str] = []
    for p in sorted({os.path.realpath(p) for p in paths if p}, key=len):
        if p == "/" or under(p, ("/usr", *SYSTEM_DIRS)) or under(p, result):
            continue
        result.append(p)
    return tuple(result)


async def capture(*argv: str, timeout: float = 20.0) -> tuple[int, str]:
    """Run a short host command (runtime discovery), return ``(exit code, stdout+stderr)``."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode("utf-8", "replace")


def _which(name: str | os.PathLike[str]) -> str | None:
    found = shutil.which(os.fspath(name))
    return os.path.abspath(found) if found is not None else None


def _script_tree(found: str) -> tuple[str, str]:
    """``(script, directory to bind)`` for a node CLI like ``tsx``: the whole ``node_modules`` tree it lives in."""
    script = os.path.realpath(found)
    parts = Path(script).parts
    if "node_modules" in parts:
        i = len(parts) - 1 - parts[::-1].index("node_modules")
        return script, str(Path(*parts[: i + 1]))
    return script, os.path.dirname(script)


def _parse_node_version(text: str) -> tuple[int, int, int] | None:
    parts = text.strip().lstrip("v").split(".")
    try:
        return int(parts[0]), int(parts[1]), int(parts[2].split("-")[0])
    except (IndexError, ValueError):
        return None


async def find_runtime(
    language: CodeLanguage,
    python: str | os.PathLike[str] | None,
    node: str | os.PathLike[str] | None,
    typescript_runner: str | os.PathLike[str] | None,
) -> Runtime | Unavailable:
    if language == "python":
        return await python_runtime(python)
    if language == "bash":
        bash = shutil.which("bash")
        if bash is None:
            return Unavailable("bash is not installed on this machine (needed for bash code).")
        return Runtime(argv=(bash,), binds=dedupe([install_prefix(bash)]))
    if language == "javascript":
        return await _node_runtime(node)
    return await _typescript_runtime(node, typescript_runner)


async def python_runtime(python: str | os.PathLike[str] | None) -> Runtime | Unavailable:
    exe: str | None
    if python is None:
        exe = sys.executable
        prefixes = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    else:
        found = _which(python)
        if found is None:
            return Unavailable(f"Python interpreter {os.fspath(python)!r} not found.")
        key = ("python", found)
        if key not in _runtime_cache:
            # ask the interpreter itself: a launcher or shim (pyenv, a wrapper script) names the real executable
            query = "import json, sys; print(json.dumps([sys.executable, sys.prefix, sys.base_prefix]))"
            reported: list[str] = []
            try:
                code, out = await capture(found, "-c", query)
                if code == 0:
                    reported = [str(p) for p in json.loads(out.strip().splitlines()[-1])]
            except (OSError, ValueError, IndexError, asyncio.TimeoutError) as exc:
                code, out = 1, str(exc)
            if code != 0 or not reported or not reported[0]:
                return Unavailable(f"Python interpreter {found!r} does not start: {out.strip()[-500:]}")
            _runtime_cache[key] = reported
        exe, *prefixes = _runtime_cache[key]
    assert exe is not None
    binds = dedupe([*prefixes, os.path.dirname(exe), install_prefix(exe)])
    return Runtime(argv=(exe,), binds=binds, env=_PYTHON_ENV)


_PYTHON_ENV = (("PYTHONUNBUFFERED", "1"), ("PYTHONDONTWRITEBYTECODE", "1"))


def venv_runtime(python: str) -> Runtime:
    """A workspace virtualenv's interpreter (its path inside the sandbox; the container binds its base)."""
    return Runtime(argv=(python,), binds=(), env=_PYTHON_ENV)


async def node_info(node: str | os.PathLike[str] | None) -> tuple[str, tuple[int, int, int]] | Unavailable:
    name = os.fspath(node) if node is not None else "node"
    exe = _which(name)
    if exe is None:
        return Unavailable(
            f"Node.js ({name!r}) was not found: install Node.js to run javascript/typescript "
            "(or configure the node binary)."
        )
    key = ("node", exe)
    if key not in _runtime_cache:
        code, out = await capture(exe, "--version")
        version = _parse_node_version(out) if code == 0 else None
        if version is None:
            return Unavailable(f"Node.js {exe!r} does not start: {out.strip()[-500:]}")
        _runtime_cache[key] = version
    return exe, _runtime_cache[key]


async def _node_runtime(node: str | os.PathLike[str] | None) -> Runtime | Unavailable:
    info = await node_info(node)
    if isinstance(info, Unavailable):
        return info
    exe, version = info
    argv: list[str] = [exe]
    if (20, 10, 0) <= version < (22, 7, 0):
        argv.append("--experimental-detect-module")  # `import` in a .js file works as in newer Node
    return Runtime(argv=tuple(argv), binds=dedupe([install_prefix(exe)]), path_dirs=(os.path.dirname(exe),))


async def _typescript_runtime(
    node: str | os.PathLike[str] | None, runner: str | os.PathLike[str] | None
) -> Runtime | Unavailable:
    info = await node_info(node)
    if isinstance(info, Unavailable):
        return info
    exe, version = info
    binds = [install_prefix(exe)]
    candidates = [os.fspath(runner)] if runner is not None else ["tsx", "ts-node"]
    for candidate in candidates:
        found = _which(candidate)
        if found is None:
            continue
        script, tree = _script_tree(found)
        binds.append(tree)
        return Runtime(argv=(exe, script), binds=dedupe(binds), path_dirs=(os.path.dirname(exe),))
    if runner is not None:
        return Unavailable(f"TypeScript runner {os.fspath(runner)!r} not found.")
    if version >= (22, 6, 0):
        argv = [exe, "--experimental-strip-types", "--disable-warning=ExperimentalWarning"]
        return Runtime(argv=tuple(argv), binds=dedupe(binds), path_dirs=(os.path.dirname(exe),))
    return Unavailable(
        "TypeScript needs tsx or ts-node, or Node.js >= 22.6 (which strips types itself); "
        f"found Node.js v{'.'.join(map(str, version))} and neither tsx nor ts-node on PATH. "
        "Install one, e.g. `npm install --global tsx`, or upgrade Node.js."
    )
