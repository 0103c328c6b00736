"""core/seccomp.py: the deny-list, loaded by real bubblewrap (``--seccomp FD``), stops the system calls it names with
EPERM and leaves ordinary Python, Node.js and bash programs working."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence

import pytest

from daytona_lsp.core import seccomp
from daytona_lsp.core.local import find_bwrap

PROBE = r"""
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()]
def ptrace_child():
    pid = os.fork()
    if pid == 0:
        os.pause() if hasattr(os, "pause") else None
        os._exit(0)
    try:
        return call(101, 16, pid, 0, 0)  # PTRACE_ATTACH
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
print(json.dumps({
    "io_uring_setup": call(425, 1, 0),
    "io_uring_register": call(427, -1, 0, 0, 0),
    "keyctl": call(250, 0, -1, 0),
    "add_key": call(248, 0, 0, 0, 0, 0),
    "request_key": call(249, 0, 0, 0, 0),
    "ptrace_attach": ptrace_child(),
    "perf_event_open": call(298, 0, 0, -1, -1, 0),
    "bpf": call(321, 0, 0, 0),
    "userfaultfd": call(323, 0),
    "unshare_user": call(272, 0x10000000),
    "unshare_net": call(272, 0x40000000),
    "unshare_mount": call(272, 0x00020000),
    "unshare_pid": call(272, 0x20000000),
    "clone_newuser": call(56, 0x10000000 | 17, 0, 0, 0, 0),
    "setns": call(308, -1, 0),
    "mount": call(165, 0, 0, 0, 0, 0),
    "personality_norandom": call(135, 0x0040000),
    "ioctl_tiocsti": call(16, 0, 0x5412, 0),
}))
"""

if sys.platform != "linux" or shutil.which("python3") is None:
    pytest.skip("Linux with python3 only", allow_module_level=True)


def _bwrap(argv: Sequence[str], flt: seccomp.Filter | None) -> subprocess.CompletedProcess[str]:
    """``argv`` in a bubblewrap sandbox shaped like the local one (user + pid namespaces, CAP_SYS_ADMIN for the
    agent's pid namespace), with ``flt`` loaded."""
    fds: list[int] = []
    extra: list[str] = []
    if flt is not None:
        fds.append(flt.memfd())
        extra = seccomp.bwrap_args(fds[0])
    try:
        return subprocess.run(
            [
                find_bwrap(),
                "--ro-bind", "/", "/",
                "--dev", "/dev",
                "--proc", "/proc",
                "--tmpfs", "/tmp",
                "--unshare-all",
                "--unshare-user",
                "--cap-add", "CAP_SYS_ADMIN",
                "--die-with-parent",
                *extra,
                "--",
                *argv,
            ],  # fmt: skip
            pass_fds=fds,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        for fd in fds:
            os.close(fd)


def _probe(flt: seccomp.Filter | None) -> dict[str, str]:
    done = _bwrap(["python3", "-c", PROBE], flt)
    assert done.returncode == 0, done.stderr
    result: dict[str, str] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def deny_list() -> seccomp.Filter:
    flt = seccomp.build()
    assert flt is not None, f"libseccomp is part of the supported setup: {seccomp.unavailable_reason()}"
    return flt


def test_the_filter_denies_the_listed_system_calls_with_eperm(deny_list: seccomp.Filter) -> None:
    seen = _probe(deny_list)
    denied = {name: result for name, result in seen.items() if name != "unshare_pid"}
    assert all(result == "EPERM" for result in denied.values()), denied
    assert seen["unshare_pid"] == "ok"  # what the agent needs for each run's own pid namespace


def test_without_the_filter_the_same_calls_reach_the_kernel() -> None:
    # the control: in the same sandbox without the filter, the kernel answers (so the test above tests the filter)
    seen = _probe(None)
    for name in ("io_uring_setup", "keyctl", "add_key", "bpf", "unshare_user", "unshare_net"):
        assert seen[name] != "EPERM", (name, seen)


def test_a_new_pid_namespace_can_be_denied_too() -> None:
    strict = seccomp.build(allow_new_pid_namespace=False)
    assert strict is not None and not strict.allow_new_pid_namespace
    assert _probe(strict)["unshare_pid"] == "EPERM"


PYTHON = r"""
import concurrent.futures, json, multiprocessing, subprocess, sys, tempfile, threading, asyncio
def square(x):
    return x * x
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    threads = sum(pool.map(square, range(10)))
with multiprocessing.get_context("fork").Pool(2) as pool:
    processes = sum(pool.map(square, range(10)))
child = subprocess.run([sys.executable, "-c", "print('child')"], capture_output=True, text=True).stdout.strip()
with tempfile.TemporaryFile() as f:
    f.write(b"x" * 1000); f.seek(0); size = len(f.read())
loop = asyncio.run(asyncio.sleep(0, result="loop"))
print(json.dumps([threads, processes, child, size, loop]))
"""
NODE = r"""
const { Worker } = require('worker_threads');
const { execFileSync } = require('child_process');
const w = new Worker('require("worker_threads").parentPort.postMessage(6 * 7)', { eval: true });
w.on('message', (m) => {
  const out = execFileSync('sh', ['-c', 'echo sub']).toString().trim();
  require('fs').writeFileSync('/tmp/n', 'ok');
  console.log(JSON.stringify([m, out, require('fs').readFileSync('/tmp/n', 'utf8')]));
  w.terminate();
});
"""
BASH = r"""
set -euo pipefail
out=$(printf 'b\na\n' | sort | tr '\n' ' ')
( sleep 0.01 & wait )
echo "$out$(seq 3 | wc -l)" > /tmp/b && cat /tmp/b
"""


def test_ordinary_python_node_and_bash_programs_still_work(deny_list: seccomp.Filter) -> None:
    python = _bwrap(["python3", "-c", PYTHON], deny_list)
    assert python.returncode == 0 and json.loads(python.stdout) == [285, 285, "child", 1000, "loop"], python.stderr
    if shutil.which("node"):
        node = _bwrap(["node", "-e", NODE], deny_list)
        assert node.returncode == 0 and json.loads(node.stdout) == [42, "sub", "ok"], node.stderr
    bash = _bwrap(["bash", "-c", BASH], deny_list)
    assert bash.returncode == 0 and bash.stdout == "a b 3\n", bash.stderr
    tsx = os.environ.get("DAYTONA_LSP_TSX")  # scripts/setup-tsx: TypeScript through tsx (Node.js + esbuild, a Go binary)
    if tsx:
        ts = _bwrap(["bash", "-c", 'printf "const n: number = 6 * 7; console.log(n)" > /tmp/t.ts && "$0" /tmp/t.ts', tsx], deny_list)
        assert ts.returncode == 0 and ts.stdout == "42\n", ts.stderr


def test_the_program_is_generated_by_libseccomp_for_this_machine(deny_list: seccomp.Filter) -> None:
    assert len(deny_list.program) % 8 == 0 and len(deny_list.program) > 8 * len(deny_list.denied)
    assert {"io_uring_setup", "keyctl", "ptrace", "bpf", "userfaultfd"} <= set(deny_list.denied)
    assert seccomp.build() is deny_list  # compiled once per process
    assert seccomp.unavailable_reason() is None


def test_without_the_binding_there_is_no_filter_and_the_reason_says_why() -> None:
    # a Python where pyseccomp cannot be imported (as on a machine without the package)
    code = (
        "import sys; sys.modules['pyseccomp'] = None\n"
        "from daytona_lsp.core import seccomp\n"
        "print(seccomp.build() is None, seccomp.unavailable_reason())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("True the pyseccomp package is not installed"), done


I386_GETPID = r"""
import ctypes, mmap
code = bytes([0xB8, 0x14, 0, 0, 0, 0xCD, 0x80, 0xC3])  # mov eax, 20 (getpid of the i386 ABI); int 0x80; ret
page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(code)
print(ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(page)))())
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the i386 ABI exists on x86-64 only")
def test_a_system_call_of_another_abi_kills_the_process(deny_list: seccomp.Filter) -> None:
    control = _bwrap(["python3", "-c", I386_GETPID], None)
    if control.returncode != 0:
        pytest.skip(f"this kernel has no i386 emulation: {control.stderr[-200:]}")
    assert control.stdout.strip().isdigit()  # int 0x80 reaches the kernel without the filter...
    filtered = _bwrap(["python3", "-c", I386_GETPID], deny_list)
    assert filtered.returncode == 128 + 31 and filtered.stdout == ""  # ...and with it the process dies of SIGSYS
