-- The Neovim version the plugin needs, and the check. Loaded by plugin/ at startup on any Neovim, so it uses only what
-- every Neovim has: vim.version() (a function before 0.9, a callable table since) and plain Lua.
local M = {}

M.min = { 0, 11, 0 }

--- Whether a Neovim version is recent enough. Returns ok and, when not, the message to show.
---@param v? table vim.version() result (default: this Neovim)
---@return boolean ok, string? message
function M.check(v)
  v = v or vim.version()
  local have = { v.major or v[1] or 0, v.minor or v[2] or 0, v.patch or v[3] or 0 }
  for i = 1, 3 do
    if have[i] ~= M.min[i] then
      if have[i] > M.min[i] then
        break
      end
      return false,
        ('daytona_lsp needs Neovim >= %d.%d (vim.lsp.config / vim.lsp.enable); this is %d.%d.%d. Upgrade Neovim, or start the server yourself with vim.lsp.start() (see docs/neovim.md).'):format(
          M.min[1],
          M.min[2],
          have[1],
          have[2],
          have[3]
        )
    end
  end
  return true
end

return M
