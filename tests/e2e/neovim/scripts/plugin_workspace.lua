-- A file that imports an unsaved sibling: the run sees the buffer's text, not the disk's; what the run writes is
-- listed under the footer and the user's files stay as they were; an error raised in the sibling is a diagnostic in
-- the sibling's buffer. Nothing here sends file events (Neovim on Linux watches no files).
local H = dofile(vim.env.DAYTONA_LSP_TEST_DIR .. '/harness.lua')
H.setup_runtime()

local function read(path)
  local f = assert(io.open(path, 'r'))
  local text = f:read('*a')
  f:close()
  return text
end

H.run('plugin_workspace', function()
  H.setup_plugin()
  local helper_disk = 'def greet():\n    return "from disk"\n'
  local helper = H.open('app/helper.py', helper_disk)
  vim.api.nvim_buf_set_lines(helper, 0, -1, false, { 'def greet():', '    return "unsaved edit"' })
  H.check(vim.bo[helper].modified, 'the helper buffer is modified and not written')
  local main = H.open(
    'app/main.py',
    table.concat({
      'import helper',
      'print("says", helper.greet())',
      'open("result.txt", "w").write(helper.greet())',
    }, '\n')
  )
  local finished = H.expect_event('DaytonaRunFinished')
  vim.cmd('DaytonaRun')
  local data = finished(60000, 'the run of main.py')
  H.eq(0, data.exit_code, 'exit code (output: ' .. H.output_text() .. ')')
  local text = H.output_text()
  H.check(H.contains(text, 'says unsaved edit'), 'the unsaved helper text was imported: ' .. text)
  H.check(not H.contains(text, 'from disk'), 'the stale disk copy was not imported')
  H.check(H.contains(text, 'changed files: app/result.txt'), 'the changed files line: ' .. text)
  H.eq(helper_disk, read(H.workspace .. '/app/helper.py'), 'helper.py on disk')
  H.eq(0, vim.fn.filereadable(H.workspace .. '/app/result.txt'), 'result.txt not written into the workspace')

  -- the unsaved helper now raises: the diagnostic is in the helper's buffer, on the raising line
  vim.api.nvim_buf_set_lines(helper, 0, -1, false, { 'def greet():', '', '    return 1 / 0' })
  finished = H.expect_event('DaytonaRunFinished', function(d)
    return d.exit_code ~= 0
  end)
  vim.api.nvim_set_current_buf(main)
  vim.cmd('DaytonaRun')
  finished(60000, 'the failing run')
  H.wait(10000, function()
    return #H.daytona_diagnostics(helper) > 0
  end, 'a daytona diagnostic in helper.py')
  local diag = H.daytona_diagnostics(helper)[1]
  H.eq(2, diag.lnum, 'diagnostic line in helper.py (0-based)')
  H.check(H.contains(diag.message, 'ZeroDivisionError'), 'message: ' .. diag.message)
end)
