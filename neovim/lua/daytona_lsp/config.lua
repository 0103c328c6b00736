-- Options of require('daytona_lsp').setup(): defaults, validation, merging.
-- Invalid values are reported (one message naming the option) and replaced by the default; they never raise.
local M = {}

M.defaults = {
  -- How to start the server. Any list accepted by vim.lsp.config's `cmd`.
  cmd = { 'daytona-lsp' },
  -- Buffers the server attaches to.
  filetypes = { 'python', 'sh', 'bash', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact' },
  root_markers = { '.git', 'pyproject.toml', 'package.json', 'setup.py' },
  -- Server settings (camelCase, as on the wire): backend = 'auto'|'daytona'|'local', timeout, outputMode, ...
  -- Sent as initializationOptions and as the `daytona` section of workspace/configuration.
  settings = {},
  output = {
    -- 'split' (below), 'vsplit' (right), 'float' or 'none' (never opened automatically; :DaytonaOutput still works)
    mode = 'split',
    -- Height of a split, width of a vsplit (lines / columns).
    size = 12,
    -- Open the output window when a run starts.
    open_on_run = true,
    -- Move the cursor into the output window when it opens.
    focus = false,
    -- Oldest lines are dropped beyond this many lines.
    max_lines = 10000,
    -- Float geometry: fractions of the editor size.
    float = { width = 0.8, height = 0.6, border = 'rounded' },
  },
  -- Show a session run's value (else the last output line) as virtual text at the end of the range that ran.
  virtual_text = true,
  -- Progress of runs: 'echo' (message area), 'notify' (vim.notify) or false (statusline only: require('daytona_lsp').status()).
  progress = 'echo',
}

local enums = {
  ['output.mode'] = { 'split', 'vsplit', 'float', 'none' },
  progress = { 'echo', 'notify', false },
}

local function is_list_of_strings(v)
  if type(v) ~= 'table' or not vim.islist(v) or #v == 0 then
    return false
  end
  for _, s in ipairs(v) do
    if type(s) ~= 'string' or s == '' then
      return false
    end
  end
  return true
end

local checks = {
  cmd = function(v)
    return (is_list_of_strings(v) or type(v) == 'function'), 'a non-empty list of strings (or a function)'
  end,
  filetypes = function(v)
    return is_list_of_strings(v), 'a non-empty list of filetype names'
  end,
  root_markers = function(v)
    return type(v) == 'table' and vim.islist(v), 'a list of file names'
  end,
  settings = function(v)
    return type(v) == 'table' and (next(v) == nil or not vim.islist(v)), 'a table of server settings'
  end,
  ['output.mode'] = function(v)
    return vim.list_contains(enums['output.mode'], v), "one of 'split', 'vsplit', 'float', 'none'"
  end,
  ['output.size'] = function(v)
    return type(v) == 'number' and v >= 1 and v == math.floor(v), 'a positive whole number'
  end,
  ['output.open_on_run'] = function(v)
    return type(v) == 'boolean', 'true or false'
  end,
  ['output.focus'] = function(v)
    return type(v) == 'boolean', 'true or false'
  end,
  ['output.max_lines'] = function(v)
    return type(v) == 'number' and v >= 10, 'a number >= 10'
  end,
  ['output.float'] = function(v)
    return type(v) == 'table', 'a table {width, height, border}'
  end,
  virtual_text = function(v)
    return type(v) == 'boolean', 'true or false'
  end,
  progress = function(v)
    return vim.list_contains(enums.progress, v), "'echo', 'notify' or false"
  end,
}

local function get(tbl, dotted)
  local cur = tbl
  for part in dotted:gmatch('[^.]+') do
    if type(cur) ~= 'table' then
      return nil
    end
    cur = cur[part]
  end
  return cur
end

local function set(tbl, dotted, value)
  local parts = vim.split(dotted, '.', { plain = true })
  local cur = tbl
  for i = 1, #parts - 1 do
    cur = cur[parts[i]]
  end
  cur[parts[#parts]] = value
end

--- Merge user options over the defaults. Returns the options and a list of problems (strings).
---@param user table|nil
---@return table opts, string[] problems
function M.resolve(user)
  local problems = {}
  if user ~= nil and type(user) ~= 'table' then
    table.insert(problems, ('setup() expects a table of options, got %s'):format(type(user)))
    user = nil
  end
  user = user or {}
  local known = {}
  for k in pairs(M.defaults) do
    known[k] = true
  end
  for k in pairs(user) do
    if not known[k] then
      table.insert(problems, ('unknown option %q (ignored)'):format(tostring(k)))
    end
  end
  if user.output ~= nil and type(user.output) ~= 'table' then
    table.insert(problems, ('option output must be a table, got %s (default used)'):format(type(user.output)))
    user = vim.deepcopy(user)
    user.output = nil
  end
  local opts = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), user)
  -- lists replace, they are not merged element-wise
  for _, k in ipairs({ 'cmd', 'filetypes', 'root_markers' }) do
    if user[k] ~= nil then
      opts[k] = user[k]
    end
  end
  if user.progress == false then
    opts.progress = false
  end
  for key, check in pairs(checks) do
    local value = get(opts, key)
    local ok, expected = check(value)
    if not ok then
      table.insert(problems, ('option %s must be %s, got %s (default used)'):format(key, expected, vim.inspect(value)))
      set(opts, key, vim.deepcopy(get(M.defaults, key)))
    end
  end
  table.sort(problems)
  return opts, problems
end

return M
