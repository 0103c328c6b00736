-- A long run streams its first line, then :DaytonaCancel stops it quickly; the footer says so.
local H = dofile(vim.env.DAYTONA_LSP_TEST_DIR .. '/harness.lua')
H.setup_runtime()

H.run('plugin_cancel', function()
  local dl = H.setup_plugin({ output = { mode = 'float' } })
  H.open(
    'long.py',
    table.concat({
      'import time',
      'print("started", flush=True)',
      'time.sleep(300)',
      'print("finished")',
    }, '\n')
  )
  local got_output = H.expect_event('DaytonaOutput', function(d)
    return H.contains(d.text, 'started')
  end)
  local finished = H.expect_event('DaytonaRunFinished')
  vim.cmd('DaytonaRun')
  got_output(30000, 'the first line of the long run (streamed before the run ends)')
  H.check(H.contains(H.output_text(), 'started'), 'the streamed line is in the output buffer already')
  H.eq(1, #dl.active_runs(), 'one run in progress')
  H.check(vim.api.nvim_win_get_config(vim.fn.bufwinid('daytona://output')).relative == 'editor', 'output in a float')
  -- cancel from inside the output window (no server attached there: the command finds the client anyway)
  vim.api.nvim_set_current_win(vim.fn.bufwinid('daytona://output'))
  local t0 = vim.uv.hrtime()
  vim.cmd('DaytonaCancel')
  local data = finished(10000, 'the cancelled run to finish')
  local ms = (vim.uv.hrtime() - t0) / 1e6
  H.check(ms < 10000, 'cancel took ' .. ms .. ' ms')
  H.eq(124, data.exit_code, 'exit code of a cancelled run')
  H.check(not H.contains(H.output_text(), 'finished'), 'the run did not go on')
  H.check(
    vim.iter(require('daytona_lsp.output').lines()):any(function(l)
      return l:match('^── ✘ exit 124 .*cancelled')
    end),
    'footer says cancelled'
  )
  H.eq(0, #dl.active_runs(), 'no run in progress')
  -- cancelling again: nothing to cancel, said clearly
  local answered = false
  dl.cancel(nil, function()
    answered = true
  end)
  H.wait(5000, function()
    return answered
  end, 'the second cancel to be answered')
  H.check(H.contains(H.notifications[#H.notifications].msg, 'no run in progress'), 'nothing to cancel is said')

  -- the server dies during a run: the run is closed in the output buffer, not left "in progress" forever
  vim.cmd.wincmd('p')
  got_output = H.expect_event('DaytonaOutput', function(d)
    return H.contains(d.text, 'started')
  end)
  H.check(dl.run({ bufnr = vim.fn.bufnr('long.py') }), 'second long run sent')
  got_output(30000, 'the second long run to start')
  H.eq(1, #dl.active_runs(), 'one run in progress again')
  -- SIGKILL: no chance for a goodbye (runFinished) from the server
  local children = vim.api.nvim_get_proc_children(vim.fn.getpid())
  H.check(#children >= 1, 'the server is a child of Neovim')
  for _, pid in ipairs(children) do
    vim.uv.kill(pid, 'sigkill')
  end
  H.wait(10000, function()
    return #dl.active_runs() == 0
  end, 'the run to be closed after the server stopped')
  H.check(H.contains(H.output_text(), 'the server stopped'), 'the output buffer says the server stopped')
  H.eq('', dl.status(), 'status() is idle again')
end)
