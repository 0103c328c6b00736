-- :checkhealth daytona_lsp reports version, server command, backend and the API key's presence, never its value.
local H = dofile(vim.env.DAYTONA_LSP_TEST_DIR .. '/harness.lua')
H.setup_runtime()

H.run('plugin_health', function()
  H.setup_plugin()
  H.open('h.py', 'print(1)\n')
  -- a key in Neovim's environment only (the server started without one, so nothing reaches Daytona)
  local secret = 'dtn_test_secret_value_1234567890'
  vim.env.DAYTONA_API_KEY = secret
  vim.cmd('checkhealth daytona_lsp')
  local report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  H.check(not H.contains(report, secret), 'the API key value never appears in the report')
  H.check(not H.contains(report, 'dtn_test'), 'no part of the key appears')
  for _, needle in ipairs({ 'Neovim 0.11', 'server command', 'server version: daytona-lsp', 'daytona-lsp', 'Daytona API key: present', 'backend: local', 'server running' }) do
    H.check(H.contains(report, needle), 'report mentions ' .. needle .. ':\n' .. report)
  end
  H.check(not report:match('ERROR'), 'no error in the report:\n' .. report)

  vim.env.DAYTONA_API_KEY = nil
  vim.cmd('bwipeout')
  vim.cmd('checkhealth daytona_lsp')
  report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  H.check(H.contains(report, 'Daytona API key: not set'), 'missing key reported:\n' .. report)

  -- a server that is not installed: the advice is what works (the wheel), not the unpublished `pip install daytona-lsp`
  vim.lsp.config(require('daytona_lsp').name, { cmd = { 'daytona-lsp-not-installed' } })
  vim.cmd('bwipeout')
  vim.cmd('checkhealth daytona_lsp')
  report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  H.check(H.contains(report, 'pipx install dist/daytona_lsp-*.whl'), 'install advice names the wheel:\n' .. report)
  H.check(not H.contains(report, 'pip install daytona-lsp'), 'no advice that fails:\n' .. report)
end)
