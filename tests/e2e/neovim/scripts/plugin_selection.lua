-- :'<,'>DaytonaRun runs only the selected lines (indented: dedented by the server) and maps the error to buffer lines.
local H = dofile(vim.env.DAYTONA_LSP_TEST_DIR .. '/harness.lua')
H.setup_runtime()

H.run('plugin_selection', function()
  H.setup_plugin()
  local bufnr = H.open(
    'sel.py',
    table.concat({
      'print("line 1 must not run")', -- 1
      'if True:', -- 2
      '    x = 10', -- 3
      '    print("selected", x)', -- 4
      '    y = x + undefined_name', -- 5
      '    print("not reached")', -- 6
      'print("line 7 must not run")', -- 7
    }, '\n')
  )
  -- a real visual selection of lines 3-6, then the command on it
  vim.cmd('normal! 3GVjjj')
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes('<Esc>', true, false, true), 'nx', false)
  H.eq({ 3, 6 }, { vim.fn.line("'<"), vim.fn.line("'>") }, 'visual marks')
  local finished = H.expect_event('DaytonaRunFinished')
  vim.cmd("'<,'>DaytonaRun")
  local data = finished(30000, 'the selection run to finish')
  H.check(data.exit_code ~= 0, 'the selection fails (NameError)')
  local text = H.output_text()
  H.check(H.contains(text, 'selected 10'), 'the selected print ran')
  H.check(not H.contains(text, 'must not run'), 'lines outside the selection did not run')
  H.check(H.contains(text, 'sel.py:3-6'), 'the header names the selected lines')
  H.wait(5000, function()
    return #H.daytona_diagnostics(bufnr) > 0
  end, 'a diagnostic for the selection')
  local diags = H.daytona_diagnostics(bufnr)
  H.eq(4, diags[1].lnum, 'diagnostic row (0-based) of buffer line 5')
  H.check(H.contains(diags[1].message, 'NameError'), 'NameError message: ' .. diags[1].message)
  H.check(diags[1].col >= 4, 'the column is past the indentation, got ' .. diags[1].col)
  local dl = require('daytona_lsp')
  local marks = vim.api.nvim_buf_get_extmarks(bufnr, dl.vt_ns, 0, -1, { details = true })
  H.eq(5, marks[1][2], 'virtual text at the end of the selection (line 6)')
end)
