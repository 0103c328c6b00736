"""The plugin's own logic in a real Neovim, without a server (fast)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_plugin_cells_options_output_buffer_and_commands_behave(run_lua):
    result = run_lua("units.lua")
    assert "PASS units" in result.stdout
