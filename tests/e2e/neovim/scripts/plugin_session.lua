-- Two cells run in order share the buffer's session: the second sees what the first defined, and its value is
-- virtual text at the end of its last line and `Out:` in the output buffer; :DaytonaInfo lists the session,
-- :DaytonaRestart clears its state.
local H = dofile(vim.env.DAYTONA_LSP_TEST_DIR .. '/harness.lua')
H.setup_runtime()

local function virtual_text(bufnr)
  local ns = require('daytona_lsp').vt_ns
  local out = {}
  for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })) do
    local chunks = mark[4].virt_text or {}
    out[#out + 1] = { line = mark[2], text = chunks[1] and chunks[1][1] or '' }
  end
  return out
end

H.run('plugin_session', function()
  H.setup_plugin()
  local bufnr = H.open(
    'session.py',
    table.concat({
      '# %% one', -- 1
      'answer = 41', -- 2
      '', -- 3
      '# %% two', -- 4
      'answer + 1', -- 5
      '', -- 6
    }, '\n')
  )
  for _, line in ipairs({ 2, 5 }) do
    vim.api.nvim_win_set_cursor(0, { line, 0 })
    local finished = H.expect_event('DaytonaRunFinished')
    vim.cmd('DaytonaRunCell')
    local data = finished(30000, 'the cell on line ' .. line)
    H.eq(0, data.exit_code, 'exit code of the cell on line ' .. line .. ': ' .. H.output_text())
    if line == 5 then
      H.eq('42', data.value, 'the second cell saw the first one’s variable')
    end
  end
  local marks = virtual_text(bufnr)
  H.eq(1, #marks, 'one virtual text')
  H.eq(4, marks[1].line, 'at the end of the second cell’s last line (5)')
  H.check(H.contains(marks[1].text, '= 42'), 'the value as virtual text: ' .. marks[1].text)
  H.check(H.contains(H.output_text(), 'Out: 42'), 'Out: in the output buffer')

  -- an edit of another cell keeps the value; an edit of its own cell clears it (the text no longer says what ran)
  vim.api.nvim_buf_set_lines(bufnr, 1, 2, false, { 'answer = 40' })
  local flushed = false -- the plugin clears in a scheduled callback: one scheduled after it runs after it
  vim.schedule(function()
    flushed = true
  end)
  H.wait(5000, function()
    return flushed
  end, 'the scheduled callbacks')
  H.eq(1, #virtual_text(bufnr), 'an edit of the first cell keeps the second cell’s value')
  vim.api.nvim_buf_set_lines(bufnr, 4, 5, false, { 'answer + 2' })
  H.wait(5000, function()
    return #virtual_text(bufnr) == 0
  end, 'the value cleared by an edit of its cell')
  vim.api.nvim_buf_set_lines(bufnr, 1, 2, false, { 'answer = 41' })
  vim.api.nvim_buf_set_lines(bufnr, 4, 5, false, { 'answer + 1' })
  vim.api.nvim_win_set_cursor(0, { 5, 0 })

  local info
  require('daytona_lsp').info(function(err, result)
    info = err or result
  end)
  H.wait(10000, function()
    return info ~= nil
  end, ':DaytonaInfo')
  H.eq(1, #(info.sessions or {}), 'one session in sandboxInfo')
  H.eq(vim.uri_from_bufnr(bufnr), info.sessions[1].key, 'the buffer’s session')
  local shown = table.concat(vim.tbl_map(function(n)
    return n.msg
  end, H.notifications), '\n')
  H.check(H.contains(shown, '1 session(s):') and H.contains(shown, 'session.py (python): idle'), ':DaytonaInfo: ' .. shown)

  local restarted
  require('daytona_lsp').restart_session(false, function(err, result)
    restarted = err or result
  end)
  H.wait(10000, function()
    return restarted ~= nil
  end, ':DaytonaRestart')
  H.eq(1, restarted.restarted, 'one session ended')
  H.check(H.contains(H.output_text(), 'session restarted'), 'the output says the session was restarted')
  local finished = H.expect_event('DaytonaRunFinished')
  vim.cmd('DaytonaRunCell') -- the second cell again: the state is gone
  H.check(finished(30000, 'the cell after the restart').exit_code ~= 0, 'NameError after the restart')
  H.check(H.contains(H.output_text(), 'NameError'), 'NameError in the output')
end)
