"""scripts/test checks its arguments before it installs or runs anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("tiers", [["unitt"], ["lint", "unitt"], ["UNIT"]])
def test_unknown_tier_fails_with_a_clear_message(tiers):
    proc = subprocess.run(["bash", "scripts/test", *tiers], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stdout == "", "nothing ran"
    assert proc.stderr == "scripts/test: unknown tier 'unitt' (tiers: lint unit lsp security package neovim emacs vscode)\n".replace(
        "unitt", tiers[-1]
    )
