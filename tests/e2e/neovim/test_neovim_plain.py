"""The README's plain ``vim.lsp.config`` snippet (no plugin) in a real headless Neovim against the real server."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_plain_snippet_gives_code_actions_diagnostics_fallback_output_and_exec_cmd(run_lua, tmp_path, plain_snippet):
    snippet = tmp_path / "snippet.lua"
    snippet.write_text(plain_snippet, encoding="utf-8")
    result = run_lua("plain.lua", env={"DAYTONA_LSP_PLUGIN": "", "DAYTONA_LSP_SNIPPET": str(snippet)})
    assert "PASS plain" in result.stdout


def test_neovim_0_8_snippet_with_vim_lsp_start_gives_the_same(run_lua, tmp_path, legacy_snippet):
    # run in Neovim 0.11: the snippet uses only what 0.8 has (vim.lsp.start, vim.fs.find, vim.fs.dirname)
    snippet = tmp_path / "snippet.lua"
    snippet.write_text(legacy_snippet, encoding="utf-8")
    result = run_lua("plain.lua", env={"DAYTONA_LSP_PLUGIN": "", "DAYTONA_LSP_SNIPPET": str(snippet)})
    assert "PASS plain" in result.stdout
