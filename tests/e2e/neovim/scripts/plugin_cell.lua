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

  -- the server's "▶ Run cell" code lens on the second marker runs that cell; its output reaches the output buffer
  require('daytona_lsp.output').clear()
  vim.lsp.codelens.refresh({ bufnr = bufnr })
  H.wait(10000, function()
    return vim.iter(vim.lsp.codelens.get(bufnr)):any(function(l)
      return l.range.start.line == 3 and l.command and l.command.title == '▶ Run cell'
    end)
  end, 'a "▶ Run cell" lens on line 4')
  vim.api.nvim_win_set_cursor(0, { 4, 0 })
  finished = H.expect_event('DaytonaRunFinished')
  vim.lsp.codelens.run()
  finished(30000, 'the run started by the code lens')
  local lens_text = H.output_text()
  H.check(H.contains(lens_text, 'cell two') and not H.contains(lens_text, 'cell three'), 'the lens ran cell two: ' .. lens_text)
  H.check(H.contains(lens_text, '── ▶ run'), 'with a header')

  -- and the "Run selection" code action of a visual range, with the plugin: output in the output buffer
  require('daytona_lsp.output').clear()
  finished = H.expect_event('DaytonaRunFinished')
  vim.lsp.buf.code_action({
    apply = true,
    range = { start = { 9, 0 }, ['end'] = { 9, 18 } }, -- mark-like: the end column is the last character's
    filter = function(action)
      return action.kind == 'source.daytona.run' and action.title:match('^Run selection') ~= nil
    end,
  })
  H.eq(0, finished(30000, 'the run started by the code action').exit_code, 'code action run exit code')
  H.check(H.contains(H.output_text(), 'cell three') and H.contains(H.output_text(), 'cells.py:9'), 'the action ran line 9')
end)
