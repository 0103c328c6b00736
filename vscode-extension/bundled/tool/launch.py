"""Starts the language server bundled in the extension with the Python the extension found.

The packages are in ../libs, each directory named after the CPython versions that use it: cp310+cp311+... holds what
they share, cp312 what only 3.12 needs (see scripts/package). Run as `python -I launch.py [PYCACHE_DIR]`: -I keeps the user's site-packages and PYTHON*
variables out; compiled bytecode goes to PYCACHE_DIR (the extension's global storage), never into the extension.
"""

import os
import sys

if len(sys.argv) > 1:
    sys.pycache_prefix = sys.argv.pop(1)
libs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "libs")
abi = f"cp{sys.version_info[0]}{sys.version_info[1]}"
dirs = sorted(os.listdir(libs), key=len)  # the version's own directory first
mine = [os.path.join(libs, d) for d in dirs if abi in d.split("+")]
if not mine:
    have = sorted({v[2] + "." + v[3:] for d in dirs for v in d.split("+")})
    sys.exit(f"daytona-lsp: the bundled server has no packages for Python {sys.version.split()[0]} (it has {', '.join(have)})")
sys.path[:0] = mine

from daytona_lsp.cli import main  # noqa: E402

sys.exit(main())
