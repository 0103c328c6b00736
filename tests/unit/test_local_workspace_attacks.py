"""Code in the local sandbox attacking its view of the workspace folder: every attempt must fail and lose nothing."""

from __future__ import annotations

import json
import sys

import pytest
from tests.unit.test_local_workspace import spec, write

from daytona_lsp.core.local.workspace import LocalWorkspace, make_layer

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap needs Linux")

ATTACKS = r"""
import ctypes, errno, json, os, shutil
libc = ctypes.CDLL(None, use_errno=True)
def attempt(fn):
    try:
        fn()
        return "done"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
def umount():
    if libc.umount2(b".env", 2) != 0:
        raise OSError(ctypes.get_errno(), "umount2")
def remount():
    if libc.mount(b"none", b".env", None, 32 | 4096, None) != 0:  # MS_REMOUNT | MS_BIND, writable
        raise OSError(ctypes.get_errno(), "mount")
results = {
    "umount": attempt(umount),
    "remount": attempt(remount),
    "write": attempt(lambda: open(".env", "w").write("x")),
    "chmod": attempt(lambda: os.chmod(".env", 0o777)),
    "rename": attempt(lambda: os.rename(".env", "moved")),
    "unlink": attempt(lambda: os.unlink(".env")),
    "link": attempt(lambda: os.link(".env", "hard")),
    "rmtree": attempt(lambda: shutil.rmtree("deploy")),
    "staging": attempt(lambda: os.listdir("/run/daytona-lsp-workspace/lower")),
    "self_root": open("/proc/self/root" + os.getcwd() + "/.env").read(),
    "env": open(".env").read(),
    "key": open("deploy/id_rsa").read(),
}
os.symlink("/run/daytona-lsp-workspace/lower/.env", "planted")
os.symlink("/etc/hostname", "out.txt")
print(json.dumps(results))
"""


async def test_code_cannot_unmask_move_or_reach_the_secrets_nor_plant_links_for_later_runs(env, tmp_path):
    root = write(tmp_path / "proj", {".env": "API_KEY=secret\n", "deploy/id_rsa": "secret-key\n"})
    result = await env.execute(spec(root, "main.py", code=ATTACKS, write_back=True))
    assert result.exit_code == 0, result.output
    found = json.loads(result.output.splitlines()[0])
    assert found.pop("env") == found.pop("key") == found.pop("self_root") == ""
    assert found["umount"] in ("EPERM", "EINVAL") and found["remount"] in ("EPERM", "EACCES")
    assert found["write"] == found["chmod"] == "EROFS"
    assert found["rename"] == found["unlink"] == found["rmtree"] == "EBUSY" and found["link"] == "EXDEV"
    assert found["staging"] == "ENOENT"
    # links the run made: listed, never written back (not regular files)
    assert result.changed_files == ["out.txt", "planted"]
    assert "not written back (outside the folder, through a symlink or not a file): out.txt, planted" in result.output
    assert not (root / "out.txt").exists() and not (root / "planted").exists()
    later = await env.execute(spec(root, "main.py", code="print(repr(open('planted').read()))\n"))
    assert later.exit_code == 1 and "FileNotFoundError" in later.output  # the staging copy is out of every run's reach
    assert (root / ".env").read_text() == "API_KEY=secret\n" and (root / "deploy" / "id_rsa").exists()


def test_write_back_never_reads_through_a_directory_of_the_layer_a_run_turned_into_a_link(tmp_path):
    # what a run beside another can do between that run's end and its write-back: swap a directory for a link
    host_secret = write(tmp_path / "host", {"shadow": "host-only\n"})
    root = write(tmp_path / "proj", {"keep.txt": "k\n"})
    layer = make_layer(tmp_path)
    (layer / "upper" / "d").symlink_to(host_secret)
    (layer / "upper" / "fine.txt").write_text("ok\n")
    line = LocalWorkspace(str(root)).write_back(layer, ["d/shadow", "fine.txt"])
    assert line == "workspace: not written back (outside the folder, through a symlink or not a file): d/shadow"
    assert not (root / "d").exists() and (root / "fine.txt").read_text() == "ok\n"
