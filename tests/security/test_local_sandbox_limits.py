"""The local sandbox's own protections, attacked from code inside a run (real bubblewrap, ``LocalCodeEnvironment``,
as the server runs: root in CI): the seccomp deny-list."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from daytona_lsp.core import seccomp
from daytona_lsp.core.local import LocalCodeEnvironment

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap needs Linux")

SYSCALLS = r"""
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()]
print(json.dumps({
    "io_uring_setup": call(425, 1, 0),
    "keyctl": call(250, 0, -1, 0),
    "ptrace_pid1": call(101, 16, 1, 0, 0),  # PTRACE_ATTACH to the run's pid 1 (the agent's process)
    "ptrace_parent": call(101, 16, os.getppid(), 0, 0),
    "bpf": call(321, 0, 0, 0),
    "unshare_pid": call(272, 0x20000000),
    "unshare_mount": call(272, 0x00020000),
    "mount": call(165, 0, 0, 0, 0, 0),
}))
"""


async def test_a_run_cannot_use_the_denied_system_calls() -> None:
    assert seccomp.build() is not None, seccomp.unavailable_reason()
    async with LocalCodeEnvironment(timeout=30) as env:
        result = await env.run(SYSCALLS, "python")
        assert result.exit_code == 0, result.output
        seen = json.loads(result.output)
        assert seen == dict.fromkeys(seen, "EPERM"), seen
        again = await env.run("import os; print(os.getpid())", "python")  # runs still start under the filter
        assert again.exit_code == 0 and again.output.strip() == "2", again.output


async def test_without_libseccomp_runs_still_work_and_one_warning_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "pyseccomp", None)  # the binding cannot be imported
    seccomp._cached.cache_clear()
    try:
        caplog.set_level(logging.WARNING)
        for _ in range(2):
            async with LocalCodeEnvironment(timeout=30) as env:
                result = await env.run("print('fine')", "python")
                assert (result.exit_code, result.output) == (0, "fine\n")
        warnings = [r.getMessage() for r in caplog.records if "seccomp" in r.getMessage()]
        assert len(warnings) == 1, warnings
        assert "pyseccomp" in warnings[0] and "without" in warnings[0]
    finally:
        seccomp._cached.cache_clear()
