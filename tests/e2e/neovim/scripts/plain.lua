-- The README's plain vim.lsp.config snippet, no plugin: code actions (file and selection) through
-- vim.lsp.buf.code_action, native diagnostics, the plain-client output fallback (logMessage lines + showMessage summary),
-- code lenses, and the commands through client:exec_cmd (run, cancel).
local H = dofile(vim.env.DAYTONA_LSP_TEST_DIR .. '/harness.lua')
H.setup_runtime()

-- observe what the server sends a plain client (the default handlers still run)
local logged, shown = {}, {}
local default_log = vim.lsp.handlers['window/logMessage']
vim.lsp.handlers['window/logMessage'] = function(err, params, ctx)
  table.insert(logged, params.message)
  return default_log(err, params, ctx)
end
local default_show = vim.lsp.handlers['window/showMessage']
vim.lsp.handlers['window/showMessage'] = function(err, params, ctx)
  table.insert(shown, params)
  return default_show(err, params, ctx)
end

-- the run summaries among the shown messages (a server may show other things too)
local function summaries()
  return vim.tbl_filter(function(m)
    return H.contains(m.message, 'plain.py:')
  end, shown)
end

local function logged_text()
  return table.concat(logged, '\n')
end

H.run('plain', function()
  H.check(package.loaded['daytona_lsp'] == nil and vim.fn.exists(':DaytonaRun') == 0, 'the plugin is not loaded')
  local f = assert(io.open(assert(os.getenv('DAYTONA_LSP_SNIPPET')), 'r'))
  local snippet = f:read('*a')
  f:close()
  assert(load(snippet, 'README snippet'))()

  local bufnr, client = H.open(
    'plain.py',
    table.concat({
      'print("plain hello")', -- 1
      'if True:', -- 2
      '    a = 1', -- 3
      '    print("in selection", a)', -- 4
      '    b = a + missing', -- 5
      '    print("after")', -- 6
      '1 / 0', -- 7
    }, '\n')
  )
  H.check(client.config.init_options == nil or not client.config.init_options.outputNotifications, 'a plain client')

  -- 1. "Run file" through the code action, applied without a menu
  H.wait(5000, function()
    return vim.lsp.get_clients({ bufnr = bufnr, method = 'textDocument/codeAction' })[1]
  end, 'code action support')
  vim.lsp.buf.code_action({
    apply = true,
    filter = function(action)
      return action.kind == 'source.daytona.run' and action.title:match('^Run file in .*sandbox') ~= nil
    end,
  })
  H.wait(30000, function()
    return #summaries() > 0
  end, 'the showMessage summary of the file run')
  local summary = summaries()[1]
  H.check(H.contains(summary.message, 'exit 1'), 'summary: ' .. summary.message)
  H.eq(1, summary.type, 'summary of a failed run is an Error message')
  H.check(H.contains(H.messages(), 'plain.py: exit 1'), 'the summary is in :messages or was notified')
  H.check(H.contains(logged_text(), 'plain hello'), 'output lines arrived as window/logMessage: ' .. logged_text())
  H.wait(5000, function()
    return #H.daytona_diagnostics(bufnr) > 0
  end, 'a diagnostic for the file run')
  local rows = vim.tbl_map(function(d)
    return d.lnum
  end, H.daytona_diagnostics(bufnr))
  -- the file stops at line 5 (NameError: missing) before reaching 1 / 0
  H.eq({ 4 }, rows, 'diagnostic rows of the file run')

  -- 2. "Run selection" for lines 3-6 (indented block): only those lines run, the error maps to line 5
  shown, logged = {}, {}
  local last = vim.api.nvim_buf_get_lines(bufnr, 5, 6, false)[1]
  vim.lsp.buf.code_action({
    apply = true,
    range = { start = { 3, 0 }, ['end'] = { 6, #last - 1 } }, -- mark-like: the end column is the last character's
    filter = function(action)
      return action.kind == 'source.daytona.run' and action.title:match('^Run selection in .*sandbox') ~= nil
    end,
  })
  H.wait(30000, function()
    return #summaries() > 0
  end, 'the showMessage summary of the selection run')
  H.check(H.contains(logged_text(), 'in selection 1'), 'the selection ran: ' .. logged_text())
  H.check(not H.contains(logged_text(), 'plain hello'), 'line 1 did not run')
  H.wait(5000, function()
    local d = H.daytona_diagnostics(bufnr)
    return #d > 0 and H.contains(d[1].message, 'NameError')
  end, 'the NameError diagnostic of the selection')
  H.eq(4, H.daytona_diagnostics(bufnr)[1].lnum, 'selection error row (0-based) = buffer line 5')

  -- 3. code lenses
  vim.lsp.codelens.refresh({ bufnr = bufnr })
  H.wait(10000, function()
    return #vim.lsp.codelens.get(bufnr) > 0
  end, 'code lenses')
  local titles = vim.tbl_map(function(l)
    return l.command and l.command.title or ''
  end, vim.lsp.codelens.get(bufnr))
  H.check(vim.list_contains(titles, '▶ Run file'), 'a "▶ Run file" lens: ' .. vim.inspect(titles))

  -- 4. the command through client:exec_cmd returns the result
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, { 'print("via exec_cmd")' })
  local result
  client:exec_cmd({ title = 'run', command = 'daytona.run', arguments = { { uri = vim.uri_from_bufnr(bufnr) } } }, { bufnr = bufnr }, function(err, res)
    result = { err = err, res = res }
  end)
  H.wait(30000, function()
    return result
  end, 'the daytona.run result')
  H.eq(nil, result.err, 'daytona.run error')
  H.eq(0, result.res.exitCode, 'exitCode')
  H.check(H.contains(result.res.output, 'via exec_cmd'), 'output of the edited buffer (changes synced before the run)')
  H.eq('local', result.res.backend, 'backend')
  H.check(type(result.res.runId) == 'string' and type(result.res.durationMs) == 'number', 'runId and durationMs')
  H.wait(5000, function()
    return #H.daytona_diagnostics(bufnr) == 0
  end, 'the clean run to clear the diagnostics')

  -- 5. cancel a long run through exec_cmd
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, { 'import time', 'print("long started", flush=True)', 'time.sleep(300)' })
  logged, result = {}, nil
  client:exec_cmd({ title = 'run', command = 'daytona.run', arguments = { { uri = vim.uri_from_bufnr(bufnr) } } }, { bufnr = bufnr }, function(err, res)
    result = { err = err, res = res }
  end)
  H.wait(30000, function()
    return H.contains(logged_text(), 'long started')
  end, 'the long run to print its first line')
  local cancelled
  client:exec_cmd({ title = 'cancel', command = 'daytona.cancel', arguments = { vim.empty_dict() } }, { bufnr = bufnr }, function(err, res)
    cancelled = { err = err, res = res }
  end)
  H.wait(10000, function()
    return result
  end, 'the cancelled run to return')
  H.eq(nil, cancelled.err, 'cancel error')
  H.eq(1, #cancelled.res.cancelled, 'one run cancelled')
  H.eq(124, result.res.exitCode, 'exit code of the cancelled run')
  H.wait(5000, function()
    return vim.iter(summaries()):any(function(m)
      return H.contains(m.message, 'cancelled')
    end)
  end, 'a summary saying the run was cancelled')
end)
