-- :DaytonaRun streams the buffer's output into the output buffer between a header and a footer, sets the virtual text,
-- and reports progress through LspProgress.
local H = dofile(vim.env.DAYTONA_LSP_TEST_DIR .. '/harness.lua')
H.setup_runtime()

H.run('plugin_run_buffer', function()
  local dl = H.setup_plugin()
  local progress = {}
  vim.api.nvim_create_autocmd('LspProgress', {
    callback = function(ev)
      table.insert(progress, { kind = ev.data.params.value.kind, status = dl.status() })
    end,
  })
  local bufnr = H.open(
    'hello.py',
    table.concat({
      'import sys',
      'print("hello from the sandbox")',
      'print("to stderr", file=sys.stderr)',
      'print(6 * 7)',
      '',
    }, '\n')
  )
  local finished = H.expect_event('DaytonaRunFinished')
  vim.cmd('DaytonaRun')
  local data = finished(30000, 'the run of hello.py to finish')
  H.eq(0, data.exit_code, 'exit code')

  local text = H.output_text()
  H.check(H.contains(text, 'hello from the sandbox'), 'stdout arrived in the output buffer')
  H.check(H.contains(text, 'to stderr'), 'stderr arrived in the output buffer')
  H.check(H.contains(text, '42'), 'the last line arrived')
  local lines = require('daytona_lsp.output').lines()
  H.check(lines[1]:match('^── ▶ run %S+ · hello%.py · python · local'), 'header names run, file, language, backend: ' .. lines[1])
  H.check(
    vim.iter(lines):any(function(l)
      return l:match('^── ✔ exit 0 · [%d.]+ s ──$') ~= nil
    end),
    'footer with exit 0 and the duration'
  )
  H.check(require('daytona_lsp.output').is_open(), 'the output window opened on run')
  H.eq(bufnr, vim.api.nvim_get_current_buf(), 'the cursor stayed in the code window')

  -- virtual text: the last output line at the end of the file (last non-blank line)
  local marks = vim.api.nvim_buf_get_extmarks(bufnr, dl.vt_ns, 0, -1, { details = true })
  H.eq(1, #marks, 'one virtual text mark')
  H.eq(3, marks[1][2], 'virtual text row (0-based) = last code line')
  H.check(H.contains(marks[1][4].virt_text[1][1], '42'), 'virtual text shows the last output line')
  H.eq({}, H.daytona_diagnostics(bufnr), 'no diagnostics for a clean run')

  -- progress: begin … end arrived through LspProgress, and status() showed the run while it lasted
  H.wait(5000, function()
    return vim.iter(progress):any(function(p)
      return p.kind == 'end'
    end)
  end, 'the progress end report')
  H.eq('begin', progress[1].kind, 'first progress report')
  H.check(H.contains(progress[1].status, 'hello.py'), 'status() during the run names the file: ' .. progress[1].status)
  H.eq('', dl.status(), 'status() is empty when idle')

  -- a second run: new header, its own footer, the virtual text is replaced (not added)
  vim.api.nvim_buf_set_lines(bufnr, 3, 4, false, { 'print("second")' })
  finished = H.expect_event('DaytonaRunFinished')
  vim.cmd('DaytonaRun')
  finished(30000, 'the second run to finish')
  marks = vim.api.nvim_buf_get_extmarks(bufnr, dl.vt_ns, 0, -1, { details = true })
  H.eq(1, #marks, 'still one virtual text mark')
  H.check(H.contains(marks[1][4].virt_text[1][1], 'second'), 'virtual text shows the edited run output (no stale text)')
  local headers = vim.iter(require('daytona_lsp.output').lines()):filter(function(l)
    return l:match('^── ▶ run')
  end):totable()
  H.eq(2, #headers, 'two run headers')

  -- :DaytonaInfo reports the backend
  local info
  dl.info(function(err, result)
    info = { err = err, result = result }
  end)
  H.wait(10000, function()
    return info
  end, ':DaytonaInfo answer')
  H.eq(nil, info.err, 'sandboxInfo error')
  H.eq('local', info.result.backend, 'backend of sandboxInfo')
  H.check(
    vim.iter(H.notifications):any(function(n)
      return H.contains(n.msg, 'backend local')
    end),
    'DaytonaInfo tells the backend'
  )

  -- :DaytonaReset throws the sandbox away; the next run still works (in a fresh one)
  local reset
  dl.reset(function(err, result)
    reset = { err = err, result = result }
  end)
  H.wait(15000, function()
    return reset
  end, ':DaytonaReset answer')
  H.eq(nil, reset.err, 'resetSandbox error')
  finished = H.expect_event('DaytonaRunFinished')
  vim.cmd('DaytonaRun')
  H.eq(0, finished(30000, 'the run after the reset').exit_code, 'exit code after reset')
end)
