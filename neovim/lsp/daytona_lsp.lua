-- Neovim 0.11 picks this file up for vim.lsp.config('daytona_lsp'): with neovim/ on the runtimepath,
-- vim.lsp.enable('daytona_lsp') alone starts a plain client. require('daytona_lsp').setup() adds streamed output.
local defaults = require('daytona_lsp.config').defaults
return {
  cmd = defaults.cmd,
  filetypes = defaults.filetypes,
  root_markers = defaults.root_markers,
}
