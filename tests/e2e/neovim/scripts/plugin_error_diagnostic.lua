-- A runtime error becomes a "daytona" diagnostic on the line that raised; the footer and virtual text show the failure.
local H = dofile(vim.env.DAYTONA_LSP_TEST_DIR .. '/harness.lua')
H.setup_runtime()

H.run('plugin_error_diagnostic', function()
  local dl = H.setup_plugin()
  local bufnr = H.open(
    'boom.py',
    table.concat({
      'def divide(a, b):',
      '    return a / b',
      '',
      'print("before")',
      'divide(1, 0)',
      'print("never")',
    }, '\n')
  )
  local finished = H.expect_event('DaytonaRunFinished')
  vim.cmd('DaytonaRun')
  local data = finished(30000, 'the failing run to finish')
  H.check(data.exit_code ~= 0, 'non-zero exit code, got ' .. tostring(data.exit_code))
  H.wait(5000, function()
    return #H.daytona_diagnostics(bufnr) > 0
  end, 'a daytona diagnostic')
  local diags = H.daytona_diagnostics(bufnr)
  local rows = vim.tbl_map(function(d)
    return d.lnum
  end, diags)
  -- the innermost frame (line 2) raised; the call site (line 5) may be marked too, but nothing else
  H.check(vim.list_contains(rows, 1), 'a diagnostic on line 2 (return a / b): ' .. vim.inspect(rows))
  for _, row in ipairs(rows) do
    H.check(row == 1 or row == 4, 'diagnostic only on lines of the traceback, got row ' .. row)
  end
  local err = vim.iter(diags):find(function(d)
    return d.lnum == 1
  end)
  H.eq(vim.diagnostic.severity.ERROR, err.severity, 'severity')
  H.check(H.contains(err.message, 'ZeroDivisionError'), 'message names the exception: ' .. err.message)
  local text = H.output_text()
  H.check(H.contains(text, 'before') and not H.contains(text, 'never'), 'output stops at the error')
  H.check(
    vim.iter(require('daytona_lsp.output').lines()):any(function(l)
      return l:match('^── ✘ exit [1-9]')
    end),
    'failure footer'
  )
  local marks = vim.api.nvim_buf_get_extmarks(bufnr, dl.vt_ns, 0, -1, { details = true })
  H.check(H.contains(marks[1][4].virt_text[1][1], 'ZeroDivisionError'), 'virtual text shows the error line')

  -- fixing the code and running again clears the diagnostics
  vim.api.nvim_buf_set_lines(bufnr, 4, 5, false, { 'divide(1, 2)' })
  finished = H.expect_event('DaytonaRunFinished')
  vim.cmd('DaytonaRun')
  H.eq(0, finished(30000, 'the fixed run').exit_code, 'fixed run exit code')
  H.wait(5000, function()
    return #H.daytona_diagnostics(bufnr) == 0
  end, 'the diagnostics to clear')
end)
