-- :DaytonaRunCell runs the `# %%` cell under the cursor; an error in it maps to the buffer line.
local H = dofile(vim.env.DAYTONA_LSP_TEST_DIR .. '/harness.lua')
H.setup_runtime()

H.run('plugin_cell', function()
  H.setup_plugin()
  local bufnr = H.open(
    'cells.py',
    table.concat({
      '# %% setup', -- 1
      'print("cell one")', -- 2
      '', -- 3
      '# %% second', -- 4
      'print("cell two")', -- 5
      'raise ValueError("in cell two")', -- 6
      '', -- 7
      '# %% third', -- 8
      'print("cell three")', -- 9
    }, '\n')
  )
  vim.api.nvim_win_set_cursor(0, { 5, 0 })
  local finished = H.expect_event('DaytonaRunFinished')
  vim.cmd('DaytonaRunCell')
  finished(30000, 'the cell run to finish')
  local text = H.output_text()
  H.check(H.contains(text, 'cell two'), 'the cell ran')
  H.check(not H.contains(text, 'cell one') and not H.contains(text, 'cell three'), 'only the cell under the cursor ran')
  H.wait(5000, function()
    return #H.daytona_diagnostics(bufnr) > 0
  end, 'a diagnostic for the cell')
  H.eq(5, H.daytona_diagnostics(bufnr)[1].lnum, 'diagnostic on buffer line 6')

  -- the last cell, cursor on its marker
  vim.api.nvim_win_set_cursor(0, { 8, 0 })
  finished = H.expect_event('DaytonaRunFinished')
  vim.cmd('DaytonaRunCell')
  H.eq(0, finished(30000, 'the third cell').exit_code, 'third cell exit code')
  H.check(H.contains(H.output_text(), 'cell three'), 'the third cell ran')
  H.wait(5000, function()
    return #H.daytona_diagnostics(bufnr) == 0
  end, 'the next run of the document to clear the diagnostics')
end)
