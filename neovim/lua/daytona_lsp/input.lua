-- Interactive input: each daytona/inputRequested asks with vim.ui.input (prompted with the program's prompt) and
-- answers with daytona.sendInput; a dismissed prompt (<Esc>) closes the program's stdin (EOF). One prompt per run at
-- a time.
local M = {}

M.asking = {}

--- Handle a daytona/inputRequested notification of client `client_id`.
---@param client_id integer
---@param params {runId: string|integer, prompt: string}
function M.request(client_id, params)
  if type(params) ~= 'table' or params.runId == nil then
    return
  end
  local id = tostring(params.runId)
  if M.asking[id] then
    return
  end
  local client = vim.lsp.get_client_by_id(client_id)
  if not client then
    return
  end
  M.asking[id] = true
  local prompt = type(params.prompt) == 'string' and params.prompt ~= '' and params.prompt
    or ('run %s waits for input: '):format(id)
  vim.schedule(function()
    vim.ui.input({ prompt = prompt }, function(text)
      M.asking[id] = nil
      local arguments = { runId = params.runId, text = text or '', eof = text == nil }
      client:request('workspace/executeCommand', { command = 'daytona.sendInput', arguments = { arguments } }, function(err)
        if err then
          vim.notify('daytona_lsp: input not sent: ' .. (err.message or vim.inspect(err)), vim.log.levels.WARN)
        end
      end)
    end)
  end)
end

return M
