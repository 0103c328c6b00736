-- daytona_lsp: commands are available at startup; require('daytona_lsp').setup({...}) starts the server.
if vim.g.loaded_daytona_lsp then
  return
end
vim.g.loaded_daytona_lsp = true

local ok, message = require('daytona_lsp.version').check()
if not ok then
  vim.api.nvim_echo({ { message .. ' The plugin is disabled.', 'ErrorMsg' } }, true, {})
  return
end

require('daytona_lsp.commands').create()
