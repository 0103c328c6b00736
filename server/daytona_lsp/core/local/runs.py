"""A fresh run in a local sandbox container (:func:`run_fresh`; a session's cell goes to its worker instead:
``sessions.run_session``) and what both paths share: :class:`Attempt` (one run's start, as
``LocalCodeEnvironment`` worked it out), :class:`RunSettings` (the environment's settings a run resolves) and the
results made on the way."""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from daytona_lsp.core.cgroup import MiB
from daytona_lsp.core.environment import (
    CodeRunResult,
    OutputCallback,
    OutputStream,
    RunContext,
    RunSpec,
    Variable,
    elapsed_ms,
    resolve_variable,
)
from daytona_lsp.core.local import launch, limits
from daytona_lsp.core.local.container import Container, ContainerGone
from daytona_lsp.core.local.launch import SANDBOX_CODE_DIR, SANDBOX_WORK_DIR
from daytona_lsp.core.local.run import SANDBOX_FAILED_EXIT_CODE, Run, finish_output
from daytona_lsp.core.local.runtimes import Runtime
from daytona_lsp.core.local.sandbox import Sandbox
from daytona_lsp.core.local.stdin import StdinPipe, stop_feeding
from daytona_lsp.core.local.workspace import RunView
from daytona_lsp.core.output import OutputBuffer

OOM_KILLED_EXIT_CODE = 128 + 9
"""A run killed by SIGKILL: with an OOM kill in the sandbox's cgroup meanwhile, by the memory limit."""


@dataclass(frozen=True)
class RunSettings:
    """The environment's settings that each run resolves from its context (each may be a ``Variable``)."""

    env_vars: Mapping[str, str] | Variable | None
    memory_mb: int | Variable
    max_processes: int | Variable
    max_file_size_mb: int | Variable
    cpu_seconds: int | Variable | None

    def extra(self, spec: RunSpec, context: RunContext | None) -> dict[str, str]:
        """The run's environment variables beside the runtime's: the configured ones, then the spec's."""
        configured: Mapping[str, str] | None = resolve_variable(self.env_vars, context)
        return {**(configured or {}), **spec.env}

    def limit_values(self, context: RunContext | None, timeout: float) -> dict[str, int]:
        """The run's rlimits (``limits.limit_values``); the CPU time defaults to the timeout."""
        memory_mb = int(resolve_variable(self.memory_mb, context))
        processes = int(resolve_variable(self.max_processes, context))
        file_mb = int(resolve_variable(self.max_file_size_mb, context))
        cpu = resolve_variable(self.cpu_seconds, context)
        for name, value in (("memory_mb", memory_mb), ("max_processes", processes), ("max_file_size_mb", file_mb)):
            limits.check_positive(name, value)
        return limits.limit_values(memory_mb, processes, file_mb, int(cpu) if cpu is not None else int(timeout) + 1)


@dataclass(frozen=True)
class Attempt:
    """One run's start in ``container``, as the environment prepared it: its runtime, its code file's name, its
    directory (``cwd``, relative) and its view of the workspace (isolated runs in a workspace)."""

    container: Container
    spec: RunSpec
    runtime: Runtime
    file_name: str
    cwd: str
    view: RunView | None
    timeout: float
    context: RunContext | None
    buffer: OutputBuffer
    on_output: OutputCallback | None


async def run_fresh(
    attempt: Attempt, sandbox: Sandbox, settings: RunSettings, next_id: Callable[[], str], active: dict[str, Run]
) -> CodeRunResult:
    """Run ``attempt`` as a process tree of its own in its container (listed in ``active`` while it runs); raises
    ``ContainerGone`` when the container ended before the run could start in it."""
    container, spec, runtime, file_name = attempt.container, attempt.spec, attempt.runtime, attempt.file_name
    cwd, view, timeout, context = attempt.cwd, attempt.view, attempt.timeout, attempt.context
    buffer, on_output = attempt.buffer, attempt.on_output
    start = time.monotonic()
    root = await sandbox.ensure_root()
    work_dir = sandbox.work_dir
    assert work_dir is not None
    run_id = next_id()
    isolated = sandbox.isolated
    extra = settings.extra(spec, context)
    run_dir = root / "runs" / run_id
    if isolated:
        source_path = f"{SANDBOX_CODE_DIR}/{file_name}"
        env = launch.run_env(runtime, SANDBOX_WORK_DIR, extra)
        directory = posixpath.join(SANDBOX_WORK_DIR, cwd) if cwd else SANDBOX_WORK_DIR
        if view is not None:
            source_path, directory = view.file or source_path, view.cwd
            env["PWD"] = directory
    else:
        source_path = str(run_dir / file_name)
        env = launch.run_env(runtime, str(work_dir), extra, host_path=os.environ.get("PATH", ""))
        directory = str(work_dir / cwd) if cwd else str(work_dir)
        if spec.workspace is not None:  # unisolated: in the folder itself (its writes are real)
            directory = posixpath.join(posixpath.normpath(spec.workspace.root), cwd)
    try:
        values = settings.limit_values(context, timeout)
        if any("\x00" in s for s in (*env, *env.values(), *spec.args)):
            raise ValueError("embedded null byte in an environment variable or argument")
        if not isolated:
            run_dir.mkdir()
        group, oom_kills = sandbox.cgroup if isolated else None, 0
        if group is not None:
            limits.set_cgroup_limits(group, values["data"] // MiB, values["nproc"], len(active) + 1)
            oom_kills = group.oom_kills()
        request = {
            "op": "run",
            "id": run_id,
            "argv": [*runtime.argv, source_path, *spec.args],
            "env": env,
            "cwd": directory,
            "file": source_path,
            "limits": values,
            "inline": runtime.argv == (sys.executable,),  # the agent's interpreter: run in a fork of it
            "separate_stderr": spec.separate_stderr,
        }
        if isolated and sandbox.run_filter is not None:
            request["seccomp"] = sandbox.run_filter
        stdin = spec.stdin.encode("utf-8", "surrogatepass") if spec.stdin is not None else None
        pipe = StdinPipe(spec.input, stdin) if spec.input is not None or stdin is None else None
        try:
            code = spec.code.encode("utf-8", "surrogatepass")
            if view is not None:
                fields, code = view.request(run_id, code, SANDBOX_CODE_DIR)
                request.update(fields)
                await asyncio.to_thread(view.started, sandbox.layer(container))
            if pipe is None:
                run = Run.start(container, request, code, stdin)
            else:
                run = Run.start(container, request, code, None, pipe.read_fd)
                pipe.handed_over()  # the agent has its copy of the read end
        except BaseException:
            if pipe is not None:
                pipe.discard()
            raise
    except ContainerGone:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    except (OSError, UnicodeError, ValueError) as exc:
        shutil.rmtree(run_dir, ignore_errors=True)
        return plain_result(f"Could not start the run: {exc}", SANDBOX_FAILED_EXIT_CODE, start)
    active[run_id] = run
    if pipe is not None:
        pipe.watch_output(run.out_r, run.err_r)
    feeding = asyncio.ensure_future(pipe.serve(buffer, on_output, container.pid1)) if pipe is not None else None
    try:
        exit_code, note = await run.supervise(buffer, on_output, timeout)
        if group is not None and exit_code == OOM_KILLED_EXIT_CODE and group.oom_kills() > oom_kills:
            note = group.limit_message()
        changed, line = await asyncio.to_thread(view.finished, run_id) if view is not None else ([], None)
        note = "\n".join(filter(None, (note, sandbox.disk_note(), line)))
    finally:
        if feeding is not None:
            await stop_feeding(feeding)
        if pipe is not None:
            pipe.discard()
        active.pop(run_id, None)
        if group is not None:
            with contextlib.suppress(OSError):  # the set-up processes of the runs still going
                limits.set_cgroup_limits(group, values["data"] // MiB, values["nproc"], len(active))
        if not isolated:
            shutil.rmtree(run_dir, ignore_errors=True)
    if pipe is not None:
        note = "\n".join(filter(None, (pipe.note, note)))
    await finish_output(buffer, on_output, note, notes_stream(spec))
    done = buffered_result(buffer, exit_code, start, source_path)
    done.changed_files = changed
    return done


def relative(path: str | None, what: str) -> str:
    """A workspace-relative path, normalised; ``ValueError`` for one that leaves the workspace."""
    if not path:
        return ""
    norm = posixpath.normpath(path.replace("\\", "/"))
    if norm.startswith("/") or norm == ".." or norm.startswith("../") or "\x00" in norm:
        raise ValueError(f"the run's {what} {path!r} is not inside the workspace")
    return "" if norm == "." else norm


def plain_result(output: str, exit_code: int, start: float) -> CodeRunResult:
    return CodeRunResult(output=output, exit_code=exit_code, duration_ms=elapsed_ms(start), backend="local")


def notes_stream(spec: RunSpec) -> OutputStream:
    """How this run's own notes (timeout, limits, waiting…) are streamed: as stderr when the program's is apart."""
    return "stderr" if spec.separate_stderr else "stdout"


async def early(
    message: str, exit_code: int, start: float, buffer: OutputBuffer, on_output: OutputCallback | None
) -> CodeRunResult:
    """A result made before the code started: after notes already streamed (waiting for a slot…), one more line."""
    if buffer.total_bytes == 0:
        return plain_result(message, exit_code, start)
    await finish_output(buffer, on_output, message)
    return buffered_result(buffer, exit_code, start, None)


def buffered_result(buffer: OutputBuffer, exit_code: int, start: float, source_path: str | None) -> CodeRunResult:
    return CodeRunResult(
        output=buffer.text(),
        exit_code=exit_code,
        truncated=buffer.truncated,
        duration_ms=elapsed_ms(start),
        source_path=source_path,
        line_offset=0,
        backend="local",
    )
