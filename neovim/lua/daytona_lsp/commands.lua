-- User commands. Defined by plugin/daytona_lsp.lua at startup; they work with any attached daytona_lsp client
-- (the plugin's setup() or a plain vim.lsp.config), and say clearly what is missing when there is none.
local M = {}

local function dl()
  return require('daytona_lsp')
end

M.commands = {
  DaytonaRun = {
    function(cmd)
      -- ARG...: the program's arguments, remembered for the buffer (a later :DaytonaRun reuses them; ! forgets them)
      if cmd.bang then
        vim.b.daytona_args = nil
      elseif #cmd.fargs > 0 then
        vim.b.daytona_args = cmd.fargs
      end
      local args = vim.b.daytona_args
      if cmd.range > 0 then
        dl().run({ line1 = cmd.line1, line2 = cmd.line2, args = args })
      else
        dl().run({ args = args })
      end
    end,
    {
      range = true,
      bang = true,
      nargs = '*',
      desc = 'Daytona: run the buffer (or the selected lines) in the sandbox [with ARG..., remembered per buffer]',
    },
  },
  DaytonaRunCell = {
    function()
      dl().run_cell()
    end,
    { desc = 'Daytona: run the # %% cell under the cursor in the sandbox' },
  },
  DaytonaCancel = {
    function(cmd)
      dl().cancel(cmd.args ~= '' and cmd.args or nil)
    end,
    { nargs = '?', desc = 'Daytona: cancel the runs in progress (or the run with the given id)' },
  },
  DaytonaReset = {
    function()
      dl().reset()
    end,
    { desc = 'Daytona: throw the sandbox away; the next run gets a fresh one' },
  },
  DaytonaRestart = {
    function(cmd)
      dl().restart_session(cmd.bang)
    end,
    { bang = true, desc = "Daytona: restart the buffer's session (with !: every session); its state is gone" },
  },
  DaytonaOutput = {
    function(cmd)
      local output = require('daytona_lsp.output')
      local action = cmd.args ~= '' and cmd.args or 'toggle'
      if action == 'toggle' then
        output.toggle()
      elseif action == 'open' then
        output.open()
      elseif action == 'close' then
        output.close()
      elseif action == 'clear' then
        output.clear()
      else
        vim.notify(
          ('daytona_lsp: unknown :DaytonaOutput argument %q (use toggle, open, close or clear)'):format(action),
          vim.log.levels.ERROR
        )
      end
    end,
    {
      nargs = '?',
      complete = function()
        return { 'toggle', 'open', 'close', 'clear' }
      end,
      desc = 'Daytona: toggle (open, close, clear) the output window',
    },
  },
  DaytonaInfo = {
    function()
      dl().info()
    end,
    { desc = 'Daytona: show the backend and sandbox the server uses' },
  },
}

function M.create()
  for name, def in pairs(M.commands) do
    vim.api.nvim_create_user_command(name, def[1], def[2])
  end
end

return M
