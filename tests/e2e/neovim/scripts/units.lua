-- Pure parts of the plugin, in a real Neovim but without a server: cells, options, version check, output assembly.
local H = dofile(vim.env.DAYTONA_LSP_TEST_DIR .. '/harness.lua')
H.setup_runtime()

H.run('units', function()
  local cells = require('daytona_lsp.cells')
  local lines = {
    'import os', -- 1: before the first marker: cell 0
    '# %% first', -- 2
    'x = 1', -- 3
    '', -- 4 (trailing blank: not part of the range)
    '  #%%', -- 5: indented, no space
    'y = 2', -- 6
    '// %% js style', -- 7
    'z = 3', -- 8
  }
  H.eq({ 1, 1 }, { cells.find(lines, 1) }, 'cell before the first marker')
  H.eq({ 2, 3 }, { cells.find(lines, 3) }, 'cell of line 3 (trailing blank left out)')
  H.eq({ 2, 3 }, { cells.find(lines, 2) }, 'cursor on the marker belongs to its cell')
  H.eq({ 5, 6 }, { cells.find(lines, 6) }, 'indented #%% marker')
  H.eq({ 7, 8 }, { cells.find(lines, 8) }, '// %% marker, last cell runs to the end')
  H.eq({ 1, 2 }, { cells.find({ 'a', 'b' }, 99) }, 'no markers: the whole file; cursor clamped')
  H.check(not cells.is_marker('x = "# %%"'), 'a %% inside code is not a marker')

  -- options: defaults, merging, invalid values reported and replaced
  local config = require('daytona_lsp.config')
  local opts, problems = config.resolve(nil)
  H.eq({}, problems, 'problems of the defaults')
  H.eq('split', opts.output.mode, 'default output mode')
  opts, problems = config.resolve({ output = { mode = 'float' }, cmd = { '/x/daytona-lsp', '--stdio' } })
  H.eq({}, problems, 'problems of valid options')
  H.eq('float', opts.output.mode, 'output.mode set')
  H.eq(12, opts.output.size, 'output.size kept from the defaults when output is partly given')
  H.eq({ '/x/daytona-lsp', '--stdio' }, opts.cmd, 'cmd replaced, not merged')
  opts, problems = config.resolve({ output = { mode = 'sideways', size = -3 }, progress = 'loud', bogus = 1, cmd = {} })
  H.eq('split', opts.output.mode, 'invalid output.mode falls back')
  H.eq(12, opts.output.size, 'invalid output.size falls back')
  H.eq('echo', opts.progress, 'invalid progress falls back')
  H.eq({ 'daytona-lsp' }, opts.cmd, 'empty cmd falls back')
  local all = table.concat(problems, '\n')
  for _, needle in ipairs({ 'output.mode', 'output.size', 'progress', 'unknown option "bogus"', 'cmd' }) do
    H.check(H.contains(all, needle), 'problem list names ' .. needle .. ': ' .. all)
  end
  opts, problems = config.resolve('nonsense')
  H.check(#problems == 1 and H.contains(problems[1], 'expects a table'), 'a non-table is reported: ' .. vim.inspect(problems))
  opts = config.resolve({ progress = false })
  H.eq(false, opts.progress, 'progress = false is kept')

  -- lsp/daytona_lsp.lua on the runtimepath: vim.lsp.config knows the server before setup()
  H.eq({ 'daytona-lsp' }, vim.lsp.config.daytona_lsp.cmd, 'cmd from lsp/daytona_lsp.lua')
  H.check(vim.list_contains(vim.lsp.config.daytona_lsp.filetypes, 'python'), 'filetypes from lsp/daytona_lsp.lua')

  -- setup() with bad options warns (naming the option) and still works
  local dl = require('daytona_lsp')
  H.check(dl.setup({ output = { mode = 'sideways' } }), 'setup with a bad option returns true')
  H.check(
    vim.iter(H.notifications):any(function(n)
      return H.contains(n.msg, 'output.mode') and n.level == vim.log.levels.WARN
    end),
    'a warning names output.mode'
  )
  H.eq('split', dl.options.output.mode, 'the default replaced the bad value')
  H.check(vim.lsp.config.daytona_lsp.init_options.outputNotifications == true, 'setup asks for output notifications')

  -- version check message for old Neovims (the same check plugin/ runs at startup)
  local ok, message = dl.check_version({ major = 0, minor = 10, patch = 4 })
  H.check(not ok, '0.10.4 is refused')
  H.check(H.contains(message, '>= 0.11') and H.contains(message, '0.10.4'), 'message names both versions: ' .. message)
  H.check(dl.check_version({ major = 0, minor = 11, patch = 0 }), '0.11.0 is accepted')
  H.check(dl.check_version(), 'this Neovim is accepted')

  -- commands exist from plugin/ and say what is missing without a server
  for _, name in ipairs({ 'DaytonaRun', 'DaytonaRunCell', 'DaytonaCancel', 'DaytonaReset', 'DaytonaOutput', 'DaytonaInfo' }) do
    H.check(vim.fn.exists(':' .. name) == 2, ':' .. name .. ' exists')
  end
  vim.cmd.enew()
  pcall(vim.cmd, 'DaytonaRun') -- an ERROR notification inside a command is an error message
  H.check(
    vim.iter(H.notifications):any(function(n)
      return H.contains(n.msg, 'not running') or H.contains(n.msg, 'not attached')
    end),
    ':DaytonaRun without a server says so: ' .. vim.inspect(H.notifications)
  )
  pcall(vim.cmd, 'DaytonaOutput bogus')
  H.check(H.notifications[#H.notifications].level == vim.log.levels.ERROR, 'a bad :DaytonaOutput argument is an error')

  -- output assembly: partial lines continue, other runs start a new line, ANSI codes and CRs are cleaned
  local output = require('daytona_lsp.output')
  output.clear()
  output.append_lines({ 'HEADER' }, 'DaytonaHeader')
  output.append_chunk('1', 'hel')
  output.append_chunk('1', 'lo\nwor')
  output.append_chunk('2', 'other\n')
  output.append_chunk('1', 'ld\n\n')
  output.append_chunk('1', '\27[31mred\27[0m\r\n')
  output.append_chunk('1', '10%\r50%\r100%\n')
  H.eq({ 'HEADER', 'hello', 'wor', 'other', 'ld', '', 'red', '100%' }, output.lines(), 'assembled output lines')
  H.check(vim.bo[output.buf()].filetype == 'daytona_output', 'output filetype')
  H.check(vim.bo[output.buf()].buftype == 'nofile' and not vim.bo[output.buf()].modifiable, 'output is a read-only scratch buffer')

  -- the window: toggle opens and closes it, float mode opens a float
  H.check(not output.is_open(), 'output window closed at first')
  vim.cmd('DaytonaOutput')
  H.check(output.is_open(), ':DaytonaOutput opens the window')
  vim.cmd('DaytonaOutput')
  H.check(not output.is_open(), ':DaytonaOutput again closes it')
  output.configure(config.resolve({ output = { mode = 'float' } }).output)
  local win = output.open()
  H.check(vim.api.nvim_win_get_config(win).relative == 'editor', 'float mode opens a floating window')
  output.close()
  output.configure(config.resolve({ output = { mode = 'vsplit', size = 30 } }).output)
  win = output.open()
  H.eq(30, vim.api.nvim_win_get_width(win), 'vsplit width')
  output.close()
  vim.cmd('DaytonaOutput clear')
  H.eq({}, output.lines(), 'cleared output')
  local range = dl.line_range(vim.api.nvim_get_current_buf(), 1, 1, 'utf-16')
  H.eq({ start = { line = 0, character = 0 }, ['end'] = { line = 0, character = 0 } }, range, 'range of an empty line')
  vim.api.nvim_buf_set_lines(0, 0, -1, false, { 'a', 'é€x' })
  H.eq(3, dl.line_range(0, 1, 2, 'utf-16')['end'].character, 'utf-16 end column')
  H.eq(6, dl.line_range(0, 1, 2, 'utf-8')['end'].character, 'utf-8 end column')

  -- languages: the server's registry (initialize result) replaces the built-in table; none listed: the fallback
  local experimental = {
    daytona = {
      languages = {
        { id = 'bash', languageIds = { 'bash', 'sh', 'shell' }, extensions = { '.sh' }, cellMarker = '# %%' },
        { id = 'javascript', languageIds = { 'javascript', 'js', 'javascriptreact' } },
      },
    },
  }
  H.eq('bash', dl.language_table(experimental).sh, 'sh from the server registry')
  H.eq('javascript', dl.language_table(experimental).js, 'js from the server registry')
  H.eq(nil, dl.language_table(experimental).python, 'a language the server does not list')
  H.eq('python', dl.language_table(nil).python, 'an older server: the fallback table')
  H.eq('typescript', dl.language_table({ other = true }).typescriptreact, 'no daytona entry: the fallback table')
end)
