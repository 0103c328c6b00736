-- Test harness for the real-Neovim tests: waits on predicates (never fixed sleeps), fails with a clear message and the
-- evidence (messages, output buffer, diagnostics, LSP log tail), exits with os.exit(code).
local H = {}

H.cmd = vim.json.decode((assert(os.getenv('DAYTONA_LSP_CMD'), 'DAYTONA_LSP_CMD not set')))
H.plugin_dir = os.getenv('DAYTONA_LSP_PLUGIN')
H.workspace = assert(os.getenv('DAYTONA_LSP_WORKSPACE'), 'DAYTONA_LSP_WORKSPACE not set')
-- Every wait is bounded; a slow machine gets a larger factor through the environment.
H.factor = tonumber(os.getenv('DAYTONA_LSP_TIMEOUT_FACTOR') or '1') or 1

H.notifications = {}
local original_notify = vim.notify
vim.notify = function(msg, level, opts)
  table.insert(H.notifications, { msg = tostring(msg), level = level })
  io.stderr:write(('[notify %s] %s\n'):format(tostring(level), tostring(msg)))
  return original_notify(msg, level, opts)
end

function H.log(...)
  local parts = {}
  for i = 1, select('#', ...) do
    local v = select(i, ...)
    parts[i] = type(v) == 'string' and v or vim.inspect(v)
  end
  io.stderr:write(table.concat(parts, ' ') .. '\n')
end

function H.fail(msg)
  error('ASSERTION: ' .. msg, 2)
end

function H.check(cond, msg)
  if not cond then
    error('ASSERTION: ' .. msg, 2)
  end
end

function H.eq(expected, actual, what)
  if not vim.deep_equal(expected, actual) then
    error(('ASSERTION: %s: expected %s, got %s'):format(what, vim.inspect(expected), vim.inspect(actual)), 2)
  end
end

--- Wait until `predicate()` is truthy (processing events meanwhile); fail naming `what` after `ms`.
function H.wait(ms, predicate, what)
  local ok = vim.wait(math.floor(ms * H.factor), function()
    return predicate() and true or false
  end, 10)
  if not ok then
    error(('ASSERTION: timed out after %d ms waiting for: %s'):format(ms * H.factor, what), 2)
  end
end

function H.setup_runtime()
  vim.cmd('filetype on')
  if H.plugin_dir and H.plugin_dir ~= '' then
    vim.opt.runtimepath:prepend(H.plugin_dir)
    vim.cmd.runtime('plugin/daytona_lsp.lua')
  end
  vim.lsp.log.set_level('info')
end

--- The plugin's setup() with the test's server command and the local backend, plus `extra` options.
function H.setup_plugin(extra)
  local dl = require('daytona_lsp')
  local opts = vim.tbl_deep_extend('force', { cmd = H.cmd, settings = { backend = 'local' } }, extra or {})
  assert(dl.setup(opts), 'setup() returned false')
  return dl
end

--- Wait for the next User event `pattern` matching `pred(data)` (register before triggering: call the returned function).
function H.expect_event(pattern, pred)
  local seen = {}
  vim.api.nvim_create_autocmd('User', {
    pattern = pattern,
    callback = function(ev)
      if not pred or pred(ev.data) then
        table.insert(seen, ev.data)
      end
    end,
  })
  return function(ms, what)
    H.wait(ms, function()
      return seen[1]
    end, what or ('User ' .. pattern))
    return seen[1]
  end
end

--- Write a file into the workspace and return its path.
function H.write(name, text)
  local path = H.workspace .. '/' .. name
  vim.fn.mkdir(vim.fs.dirname(path), 'p')
  local f = assert(io.open(path, 'w'))
  f:write(text)
  f:close()
  return path
end

--- Edit a file and wait until the daytona_lsp client is attached to it.
function H.open(name, text)
  local path = H.write(name, text)
  vim.cmd.edit(vim.fn.fnameescape(path))
  local bufnr = vim.api.nvim_get_current_buf()
  H.wait(15000, function()
    return vim.lsp.get_clients({ name = 'daytona_lsp', bufnr = bufnr })[1]
  end, 'the daytona_lsp client to attach to ' .. name)
  return bufnr, vim.lsp.get_clients({ name = 'daytona_lsp', bufnr = bufnr })[1]
end

--- Diagnostics of the server ("daytona" source) in a buffer.
function H.daytona_diagnostics(bufnr)
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    if d.source == 'daytona' then
      table.insert(out, d)
    end
  end
  return out
end

function H.output_text()
  local ok, output = pcall(require, 'daytona_lsp.output')
  if not ok then
    return ''
  end
  return table.concat(output.lines(), '\n')
end

--- Messages shown with a history entry (:messages), e.g. window/showMessage.
function H.messages()
  return vim.fn.execute('messages')
end

function H.contains(haystack, needle)
  return haystack:find(needle, 1, true) ~= nil
end

local function evidence()
  local lines = { '--- evidence ---' }
  table.insert(lines, ':messages:\n' .. H.messages())
  local text = H.output_text()
  if text ~= '' then
    table.insert(lines, 'output buffer:\n' .. text)
  end
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    local diags = vim.diagnostic.get(buf)
    if #diags > 0 then
      table.insert(lines, ('diagnostics of %s: %s'):format(vim.api.nvim_buf_get_name(buf), vim.inspect(diags)))
    end
  end
  local log = vim.lsp.log.get_filename()
  local f = io.open(log, 'r')
  if f then
    local content = f:read('*a')
    f:close()
    table.insert(lines, 'LSP log tail (' .. log .. '):\n' .. content:sub(-6000))
  end
  return table.concat(lines, '\n')
end

local function stop_clients()
  local clients = vim.lsp.get_clients()
  for _, client in ipairs(clients) do
    client:stop()
  end
  vim.wait(3000, function()
    for _, client in ipairs(clients) do
      if not client:is_stopped() then
        return false
      end
    end
    return true
  end, 10)
  for _, client in ipairs(clients) do
    if not client:is_stopped() then
      client:stop(true)
    end
  end
end

--- Run the test body; exit 0 on success, 1 with the failure and the evidence on stderr.
function H.run(name, body)
  local ok, err = xpcall(body, debug.traceback)
  if ok then
    stop_clients()
    io.stdout:write('PASS ' .. name .. '\n')
    io.stdout:flush()
    os.exit(0)
  end
  io.stderr:write('FAIL ' .. name .. ': ' .. tostring(err) .. '\n' .. evidence() .. '\n')
  io.stderr:flush()
  stop_clients()
  os.exit(1)
end

return H
