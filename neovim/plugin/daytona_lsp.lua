-- daytona_lsp: commands are available at startup; require('daytona_lsp').setup({...}) starts the server.
if vim.g.loaded_daytona_lsp then
  return
end
vim.g.loaded_daytona_lsp = true

if vim.fn.has('nvim-0.11') == 0 then
  local v = vim.version and vim.version() or { major = 0, minor = 0, patch = 0 }
  vim.api.nvim_echo({
    {
      ('daytona_lsp needs Neovim >= 0.11 (vim.lsp.config / vim.lsp.enable); this is %d.%d.%d. The plugin is disabled.'):format(
        v.major,
        v.minor,
        v.patch
      ),
      'ErrorMsg',
    },
  }, true, {})
  return
end

require('daytona_lsp.commands').create()
