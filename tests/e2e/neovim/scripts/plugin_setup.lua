-- setup() on an old Neovim gives its message instead of a Lua error, and setup() with no server settings (lazy.nvim's
-- `opts = {}`) sends the server an object, so the server has nothing to warn about.
local H = dofile(vim.env.DAYTONA_LSP_TEST_DIR .. '/harness.lua')

-- What Neovim 0.8 lacks, taken away while the plugin loads and sets up: vim.version is a plain function there (no
-- .cmp), and vim.lsp.config / vim.lsp.enable, vim.islist, vim.list_contains, vim.iter and vim.uv do not exist.
local function as_neovim_0_8(body)
  local saved = {
    version = vim.version,
    islist = vim.islist,
    list_contains = vim.list_contains,
    iter = vim.iter,
    uv = vim.uv,
    config = vim.lsp.config,
    enable = vim.lsp.enable,
  }
  vim.version = function()
    return { api_level = 10, major = 0, minor = 8, patch = 3 }
  end
  vim.islist, vim.list_contains, vim.iter, vim.uv = nil, nil, nil, nil
  vim.lsp.config, vim.lsp.enable = nil, nil
  local ok, err = pcall(body)
  vim.version, vim.islist, vim.list_contains, vim.iter, vim.uv = saved.version, saved.islist, saved.list_contains, saved.iter, saved.uv
  vim.lsp.config, vim.lsp.enable = saved.config, saved.enable
  if not ok then
    error(err, 0)
  end
end

H.run('plugin_setup', function()
  vim.cmd('filetype on')
  vim.opt.runtimepath:prepend(H.plugin_dir)

  as_neovim_0_8(function()
    vim.cmd.runtime('plugin/daytona_lsp.lua') -- startup: a message, no commands
    H.check(vim.fn.exists(':DaytonaRun') == 0, 'no commands on an old Neovim')
    H.check(H.contains(H.messages(), 'needs Neovim >= 0.11'), 'startup says why: ' .. H.messages())
    local ok, result = pcall(function()
      return require('daytona_lsp').setup({})
    end)
    H.check(ok, 'setup() raises no Lua error on an old Neovim: ' .. tostring(result))
    H.eq(false, result, 'setup() returns false')
  end)
  local refused = H.notifications[#H.notifications]
  H.check(refused and refused.level == vim.log.levels.ERROR, 'setup() notifies an error: ' .. vim.inspect(H.notifications))
  H.check(H.contains(refused.msg, '>= 0.11') and H.contains(refused.msg, '0.8.3'), 'the message names both versions: ' .. refused.msg)
  H.check(H.contains(refused.msg, 'vim.lsp.start'), 'the message names the way out: ' .. refused.msg)

  -- this Neovim: setup() with no server settings at all
  H.notifications = {}
  vim.cmd('messages clear')
  package.loaded['daytona_lsp'] = nil
  vim.g.loaded_daytona_lsp = nil
  vim.cmd.runtime('plugin/daytona_lsp.lua')
  local dl = require('daytona_lsp')
  H.check(dl.setup({ cmd = H.cmd }), 'setup() without settings returns true')
  H.open('opts.py', 'print(6 * 7)\n')
  local finished = H.expect_event('DaytonaRunFinished')
  vim.cmd('DaytonaRun') -- answered after the server read its settings (initialize, then workspace/configuration)
  H.eq(0, finished(30000, 'the run to finish').exit_code, 'exit code')
  H.check(H.contains(H.output_text(), '42'), 'the run printed 42')
  local warnings = vim.tbl_filter(function(n)
    return n.level == vim.log.levels.WARN or n.level == vim.log.levels.ERROR
  end, H.notifications)
  H.eq({}, warnings, 'no warning or error after setup({})')
  H.check(not H.contains(H.messages(), 'daytona settings'), 'the server had nothing to say about its settings: ' .. H.messages())
end)
