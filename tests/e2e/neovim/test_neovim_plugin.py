"""The plugin (neovim/) in a real headless Neovim against the real server, local sandbox."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_run_streams_output_into_output_buffer_with_virtual_text_and_progress(run_lua):
    assert "PASS" in run_lua("plugin_run_buffer.lua").stdout


def test_runtime_error_becomes_diagnostic_on_raising_line(run_lua):
    assert "PASS" in run_lua("plugin_error_diagnostic.lua").stdout


def test_visual_selection_runs_only_selected_lines_and_maps_error_line(run_lua):
    assert "PASS" in run_lua("plugin_selection.lua").stdout


def test_run_cell_runs_cell_under_cursor_and_maps_error_line(run_lua):
    assert "PASS" in run_lua("plugin_cell.lua").stdout


def test_long_run_is_cancelled_promptly(run_lua):
    assert "PASS" in run_lua("plugin_cancel.lua").stdout


def test_checkhealth_reports_key_presence_never_its_value(run_lua):
    assert "PASS" in run_lua("plugin_health.lua").stdout


def test_filetypes_map_to_languages_and_concurrent_runs_keep_their_output_apart(run_lua):
    assert "PASS" in run_lua("plugin_languages.lua").stdout


def test_setup_without_settings_warns_nothing_and_old_neovim_gets_a_message(run_lua):
    assert "PASS" in run_lua("plugin_setup.lua").stdout


def test_a_file_importing_an_unsaved_sibling_sees_its_buffer_text_and_errors_land_in_the_sibling(run_lua):
    assert "PASS" in run_lua("plugin_workspace.lua").stdout


def test_run_with_arguments_and_an_answered_input_prompt(run_lua):
    assert "PASS" in run_lua("plugin_input.lua").stdout


def test_two_cells_share_the_session_and_the_value_is_virtual_text(run_lua):
    assert "PASS" in run_lua("plugin_session.lua").stdout
