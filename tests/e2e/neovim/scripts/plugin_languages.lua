-- Filetypes map to the server's languages (sh → bash, javascript), `// %%` cells work, and two runs at once each get
-- their own header, output and footer.
local H = dofile(vim.env.DAYTONA_LSP_TEST_DIR .. '/harness.lua')
H.setup_runtime()

local function finished_run(pattern_text)
  return H.expect_event('DaytonaRunFinished', function(d)
    local run = require('daytona_lsp').runs[d.run_id]
    return run ~= nil and run.uri ~= nil and H.contains(run.uri, pattern_text)
  end)
end

H.run('plugin_languages', function()
  local dl = H.setup_plugin()
  -- bash (filetype sh): an unknown command is a diagnostic on its line
  local sh = H.open('script.sh', table.concat({ '#!/bin/bash', 'echo "from bash $((6 * 7))"', 'no_such_command_xyz' }, '\n'))
  H.eq('sh', vim.bo[sh].filetype, 'filetype of script.sh')
  local done = finished_run('script.sh')
  vim.cmd('DaytonaRun')
  H.eq(127, done(30000, 'the bash run').exit_code, 'exit code of bash with an unknown command')
  H.check(H.contains(H.output_text(), 'from bash 42'), 'bash output')
  H.check(H.contains(H.output_text(), '· bash ·'), 'header names bash')
  H.wait(5000, function()
    return #H.daytona_diagnostics(sh) > 0
  end, 'the bash diagnostic')
  H.eq(2, H.daytona_diagnostics(sh)[1].lnum, 'bash error row (0-based) = line 3')

  -- javascript with // %% cells
  local js = H.open(
    'cells.js',
    table.concat({
      '// %% one', -- 1
      'console.log("js cell one")', -- 2
      '// %% two', -- 3
      'console.log("js cell two")', -- 4
      'null.boom', -- 5
    }, '\n')
  )
  vim.api.nvim_win_set_cursor(0, { 4, 0 })
  done = finished_run('cells.js')
  vim.cmd('DaytonaRunCell')
  H.check(done(30000, 'the js cell run').exit_code ~= 0, 'the js cell fails')
  H.check(H.contains(H.output_text(), 'js cell two') and not H.contains(H.output_text(), 'js cell one'), 'only cell two ran')
  H.wait(5000, function()
    return #H.daytona_diagnostics(js) > 0
  end, 'the js diagnostic')
  H.eq(4, H.daytona_diagnostics(js)[1].lnum, 'js error row (0-based) = line 5')

  -- two runs at once: both finish, each with its own header and footer, output not mixed into one line
  require('daytona_lsp.output').clear()
  local a = H.open('a.py', 'for i in range(3):\n    print("A", i, flush=True)\n')
  local b = H.open('b.py', 'for i in range(3):\n    print("B", i, flush=True)\n')
  local ids = {}
  vim.api.nvim_create_autocmd('User', {
    pattern = 'DaytonaRunFinished',
    callback = function(ev)
      ids[#ids + 1] = ev.data.run_id
    end,
  })
  H.check(dl.run({ bufnr = a }) and dl.run({ bufnr = b }), 'both runs sent')
  H.wait(30000, function()
    return #ids == 2
  end, 'both concurrent runs to finish')
  local lines = require('daytona_lsp.output').lines()
  local count = { header = 0, footer = 0 }
  for _, l in ipairs(lines) do
    if l:match('^── ▶ run') then
      count.header = count.header + 1
    elseif l:match('^── ✔ exit 0') then
      count.footer = count.footer + 1
    end
  end
  H.eq({ header = 2, footer = 2 }, count, 'headers and footers of the two runs')
  for _, want in ipairs({ 'A 0', 'A 1', 'A 2', 'B 0', 'B 1', 'B 2' }) do
    H.check(vim.list_contains(lines, want), 'a line of its own: ' .. want)
  end
  H.check(#dl.active_runs() == 0, 'no run left in progress')
end)
