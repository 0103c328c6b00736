-- daytona_lsp: run the buffer, the selected lines or the `# %%` cell in a Daytona (or isolated local) sandbox through the
-- daytona-lsp language server, and show the streamed output in a scratch buffer.
--
--   require('daytona_lsp').setup({ settings = { backend = 'auto' } })
--
-- The server does the work (diagnostics, code actions, code lenses come natively through vim.lsp); this plugin adds the
-- commands, the output buffer, virtual text and progress.
local M = {}

local api = vim.api

M.name = 'daytona_lsp'

local output = require('daytona_lsp.output')
local cells = require('daytona_lsp.cells')
local config = require('daytona_lsp.config')
local work_done_tokens = 0

---@type table options in effect (defaults until setup() is called)
M.options = vim.deepcopy(config.defaults)
M.did_setup = false

M.vt_ns = api.nvim_create_namespace('daytona_lsp.virtual_text')
-- the lines of the run a virtual text belongs to (an edit of them clears it, as VS Code's inlay hint is cleared)
local span_ns = api.nvim_create_namespace('daytona_lsp.virtual_text_span')
local watched = {} -- buffers whose edits are watched for that

local function clear_virtual_text(bufnr)
  api.nvim_buf_clear_namespace(bufnr, M.vt_ns, 0, -1)
  api.nvim_buf_clear_namespace(bufnr, span_ns, 0, -1)
end

--- Clear the buffer's virtual text once a line of the code it reports on changes.
local function watch_edits(bufnr)
  if watched[bufnr] then
    return
  end
  watched[bufnr] = true
  api.nvim_buf_attach(bufnr, false, {
    on_lines = function(_, buf, _, first, _, last_new)
      local span = api.nvim_buf_get_extmarks(buf, span_ns, 0, -1, { details = true })[1]
      if span and first <= span[4].end_row and math.max(last_new, first + 1) > span[2] then
        vim.schedule(function() -- not while the buffer is being changed
          if api.nvim_buf_is_valid(buf) then
            clear_virtual_text(buf)
          end
        end)
      end
    end,
    on_detach = function(_, buf)
      watched[buf] = nil
    end,
  })
end

--- State of the runs this editor knows about, by run id (string).
---@class daytona_lsp.Run
---@field id string
---@field bufnr integer?
---@field uri string
---@field range table? LSP range of the code that ran (nil: whole document)
---@field language string?
---@field backend string?
---@field started_at number (vim.uv.hrtime)
---@field finished boolean
---@field exit_code integer?
---@field duration_ms integer?
---@field truncated boolean?
---@field tail string last non-empty output line
---@field partial string output after the last newline
---@type table<string, daytona_lsp.Run>
M.runs = {}
--- Progress reports of the server, by token: {title, message, percentage}
M.progress = {}

-- A message-area line that never causes a hit-enter prompt (cut to the space the command line has).
local function echo(text, hl)
  local room = math.max(10, (vim.v.echospace or vim.o.columns) - 1)
  if vim.fn.strdisplaywidth(text) > room then
    text = vim.fn.strcharpart(text, 0, room - 1) .. '…'
  end
  api.nvim_echo({ { text, hl or 'None' } }, false, {})
end

local function notify(msg, level)
  vim.notify('daytona_lsp: ' .. msg, level or vim.log.levels.INFO)
end

M.check_version = require('daytona_lsp.version').check

-- Neovim filetype → language name of the server, for a server that does not list its languages
M.fallback_languages = {
  python = 'python',
  sh = 'bash',
  bash = 'bash',
  javascript = 'javascript',
  javascriptreact = 'javascript',
  typescript = 'typescript',
  typescriptreact = 'typescript',
}

--- Filetype (LSP languageId) → server language, from the registry the server sends in its initialize result
--- (`capabilities.experimental.daytona.languages`); the fallback table when the server lists none.
---@param experimental any
---@return table<string, string>
function M.language_table(experimental)
  local daytona = type(experimental) == 'table' and experimental.daytona or nil
  local listed = type(daytona) == 'table' and daytona.languages or nil
  if type(listed) ~= 'table' then
    return M.fallback_languages
  end
  local table_ = {}
  for _, entry in ipairs(listed) do
    if type(entry) == 'table' and type(entry.id) == 'string' and type(entry.languageIds) == 'table' then
      for _, id in ipairs(entry.languageIds) do
        table_[id] = entry.id
      end
    end
  end
  return table_
end

---@param bufnr integer
---@return string?
function M.language(bufnr)
  local client = M.client(bufnr)
  local caps = client and client.server_capabilities or nil
  return M.language_table(caps and caps.experimental)[vim.bo[bufnr].filetype]
end

--- The daytona_lsp client attached to a buffer (or any running one when the buffer has none).
---@param bufnr? integer
---@return vim.lsp.Client?
function M.client(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local attached = vim.lsp.get_clients({ name = M.name, bufnr = bufnr })
  if attached[1] then
    return attached[1]
  end
  return nil
end

local function any_client()
  return vim.lsp.get_clients({ name = M.name })[1]
end

local function require_client(bufnr)
  local client = M.client(bufnr)
  if client then
    return client
  end
  local ft = vim.bo[bufnr].filetype
  if any_client() then
    notify(('the server is not attached to this buffer (filetype %q). Open a file of a configured filetype: %s'):format(
      ft,
      table.concat(M.options.filetypes, ', ')
    ), vim.log.levels.ERROR)
  elseif not M.did_setup then
    notify(
      "no daytona_lsp server is running for this buffer. Call require('daytona_lsp').setup() (or vim.lsp.enable('daytona_lsp')) first.",
      vim.log.levels.ERROR
    )
  else
    notify(('the server is not running for this buffer (filetype %q). See :checkhealth daytona_lsp.'):format(ft), vim.log.levels.ERROR)
  end
  return nil
end

-- ---------------------------------------------------------------------------------------------------------------------
-- Ranges

--- LSP range covering whole lines first..last (1-based, inclusive) of a buffer.
---@param bufnr integer
---@param first integer
---@param last integer
---@param encoding? string position encoding of the client
---@return table
function M.line_range(bufnr, first, last, encoding)
  local count = api.nvim_buf_line_count(bufnr)
  first = math.max(1, math.min(first, count))
  last = math.max(first, math.min(last, count))
  local line = api.nvim_buf_get_lines(bufnr, last - 1, last, false)[1] or ''
  local character = #line
  if encoding == 'utf-16' or encoding == 'utf-32' or encoding == nil then
    character = vim.str_utfindex(line, encoding or 'utf-16', #line, false)
  end
  return { start = { line = first - 1, character = 0 }, ['end'] = { line = last - 1, character = character } }
end

local function range_label(range)
  if not range then
    return ''
  end
  local first, last = range.start.line + 1, range['end'].line + 1
  if range['end'].character == 0 and last > first then
    last = last - 1
  end
  return first == last and (':' .. first) or (':%d-%d'):format(first, last)
end

-- ---------------------------------------------------------------------------------------------------------------------
-- Output and virtual text

local function fire(pattern, data)
  api.nvim_exec_autocmds('User', { pattern = pattern, modeline = false, data = data })
end

local function header(run)
  local name = run.bufnr and api.nvim_buf_is_valid(run.bufnr) and api.nvim_buf_get_name(run.bufnr) or vim.uri_to_fname(run.uri)
  name = vim.fn.fnamemodify(name, ':~:.')
  local parts = { ('▶ run %s'):format(run.id), name .. range_label(run.range) }
  if run.language then
    table.insert(parts, run.language)
  end
  if run.backend then
    table.insert(parts, run.backend)
  end
  table.insert(parts, os.date('%H:%M:%S'))
  return '── ' .. table.concat(parts, ' · ') .. ' ──'
end

local function footer(run)
  local ok = run.exit_code == 0
  local parts = { (ok and '✔' or '✘') .. ' exit ' .. tostring(run.exit_code) }
  if run.duration_ms then
    table.insert(parts, ('%.2f s'):format(run.duration_ms / 1000))
  end
  if run.truncated then
    table.insert(parts, 'output truncated')
  end
  if run.cancelled then
    table.insert(parts, 'cancelled')
  end
  return '── ' .. table.concat(parts, ' · ') .. ' ──', ok and 'DaytonaFooterOk' or 'DaytonaFooterError'
end

--- The one line naming the workspace files a run created or changed (the first ten by name), or nil.
local function changed_files_line(files)
  if type(files) ~= 'table' or #files == 0 then
    return nil
  end
  local shown = {}
  for i = 1, math.min(#files, 10) do
    shown[i] = tostring(files[i])
  end
  local more = #files > 10 and (' and %d more'):format(#files - 10) or ''
  return 'changed files: ' .. table.concat(shown, ', ') .. more
end

local function track_tail(run, text)
  local combined = run.partial .. text:gsub('\r\n', '\n')
  for line in combined:gmatch('([^\n]*)\n') do
    local clean = vim.trim(line:gsub('\27%[[%d;?]*[A-Za-z]', ''))
    if clean ~= '' then
      run.tail = clean
    end
  end
  run.partial = combined:match('[^\n]*$') or ''
  local rest = vim.trim(run.partial)
  if rest ~= '' then
    run.tail = rest
  end
end

local function set_virtual_text(run)
  if not M.options.virtual_text then
    return
  end
  local bufnr = run.bufnr
  if not (bufnr and api.nvim_buf_is_valid(bufnr)) then
    return
  end
  local count = api.nvim_buf_line_count(bufnr)
  local line = count - 1
  if run.range then
    line = run.range['end'].line
    if run.range['end'].character == 0 and line > run.range.start.line then
      line = line - 1
    end
    -- the last line of the range that is not blank (a cell ends where the next marker starts)
    local first = run.range.start.line
    local lines = api.nvim_buf_get_lines(bufnr, first, math.min(line + 1, count), false)
    for i = #lines, 1, -1 do
      if lines[i]:match('%S') then
        line = first + i - 1
        break
      end
    end
  else
    -- whole file: the last line that is not blank
    local lines = api.nvim_buf_get_lines(bufnr, 0, -1, false)
    for i = #lines, 1, -1 do
      if lines[i]:match('%S') then
        line = i - 1
        break
      end
    end
  end
  line = math.max(0, math.min(line, count - 1))
  -- a session run's value (like Jupyter's Out), else the last output line
  local text = run.value and ('= ' .. run.value:gsub('%s+', ' ')) or run.tail ~= '' and run.tail
    or ('exit ' .. tostring(run.exit_code))
  if #text > 120 then
    text = text:sub(1, 117) .. '…'
  end
  local hl = run.exit_code == 0 and 'DaytonaVirtualText' or 'DaytonaVirtualTextError'
  api.nvim_buf_set_extmark(bufnr, M.vt_ns, line, 0, {
    virt_text = { { '  → ' .. text, hl } },
    virt_text_pos = 'eol',
    hl_mode = 'combine',
  })
  local first, last = 0, count - 1 -- a whole file's run: any edit of it
  if run.range then
    first, last = math.min(run.range.start.line, line), line
  end
  api.nvim_buf_set_extmark(bufnr, span_ns, first, 0, { end_row = last, end_col = 0, end_right_gravity = true })
  watch_edits(bufnr)
end

local function new_run(id, fields)
  local run = M.runs[id]
  if not run then
    run = { id = id, started_at = vim.uv.hrtime(), finished = false, tail = '', partial = '', output_chars = 0 }
    M.runs[id] = run
  end
  for k, v in pairs(fields) do
    run[k] = v
  end
  return run
end

local function start_run(run)
  if run.header_written then
    return
  end
  run.header_written = true
  if run.bufnr and api.nvim_buf_is_valid(run.bufnr) then
    clear_virtual_text(run.bufnr)
  end
  local opts = M.options.output
  if opts.open_on_run and opts.mode ~= 'none' then
    output.open()
  end
  output.append_lines({ header(run) }, 'DaytonaHeader')
  fire('DaytonaRunStarted', { run_id = run.id, uri = run.uri, range = run.range, bufnr = run.bufnr })
end

-- Finished runs kept for reference (M.runs); older ones are forgotten.
M.keep_finished = 100

local function prune()
  local finished = {}
  for id, run in pairs(M.runs) do
    if run.finished then
      table.insert(finished, { id = id, t = run.started_at })
    end
  end
  if #finished <= M.keep_finished then
    return
  end
  table.sort(finished, function(a, b)
    return a.t < b.t
  end)
  for i = 1, #finished - M.keep_finished do
    M.runs[finished[i].id] = nil
  end
end

local function finish_run(run)
  if run.finished then
    return
  end
  run.finished = true
  prune()
  local line, hl = footer(run)
  if run.value then
    output.append_lines(vim.split('Out: ' .. run.value, '\n', { plain = true }), 'DaytonaValue')
  end
  local changed = changed_files_line(run.changed_files)
  output.append_lines(changed and { line, changed, '' } or { line, '' }, hl)
  set_virtual_text(run)
  local message = ('run %s finished: exit %s'):format(run.id, tostring(run.exit_code))
  if run.duration_ms then
    message = message .. (' in %.2f s'):format(run.duration_ms / 1000)
  end
  if M.options.progress == 'notify' then
    notify(message, run.exit_code == 0 and vim.log.levels.INFO or vim.log.levels.WARN)
  elseif M.options.progress == 'echo' then
    echo('daytona_lsp: ' .. message, run.exit_code == 0 and 'None' or 'WarningMsg')
  end
  vim.cmd.redrawstatus({ bang = true, mods = { emsg_silent = true } })
  fire('DaytonaRunFinished', {
    run_id = run.id,
    exit_code = run.exit_code,
    duration_ms = run.duration_ms,
    truncated = run.truncated,
    changed_files = run.changed_files,
    value = run.value,
    bufnr = run.bufnr,
  })
end

local function buf_for_uri(uri)
  local ok, bufnr = pcall(vim.uri_to_bufnr, uri)
  return ok and bufnr or nil
end

-- Notification handlers (registered for the client by setup()).
M.handlers = {}

M.handlers['daytona/runStarted'] = function(_, params)
  if type(params) ~= 'table' or params.runId == nil then
    return
  end
  local id = tostring(params.runId)
  local run = new_run(id, {
    uri = params.uri,
    range = params.range ~= vim.NIL and params.range or nil,
    language = params.language ~= vim.NIL and params.language or nil,
    backend = params.backend ~= vim.NIL and params.backend or nil,
  })
  run.bufnr = run.bufnr or (params.uri and buf_for_uri(params.uri))
  start_run(run)
end

M.handlers['daytona/output'] = function(_, params)
  if type(params) ~= 'table' or params.runId == nil or type(params.text) ~= 'string' then
    return
  end
  local id = tostring(params.runId)
  local run = M.runs[id] or new_run(id, {})
  run.streamed = true
  run.output_chars = run.output_chars + #params.text
  track_tail(run, params.text)
  output.append_chunk(id, params.text, params.stream)
  fire('DaytonaOutput', { run_id = id, stream = params.stream, text = params.text })
end

M.handlers['daytona/inputRequested'] = function(_, params, ctx)
  require('daytona_lsp.input').request(ctx.client_id, params)
end

M.handlers['daytona/runFinished'] = function(_, params)
  if type(params) ~= 'table' or params.runId == nil then
    return
  end
  local id = tostring(params.runId)
  local run = M.runs[id] or new_run(id, {})
  run.exit_code = params.exitCode
  run.duration_ms = params.durationMs ~= vim.NIL and params.durationMs or nil
  run.truncated = params.truncated == true
  run.changed_files = params.changedFiles
  run.value = type(params.value) == 'string' and params.value or nil
  start_run(run)
  finish_run(run)
end

-- ---------------------------------------------------------------------------------------------------------------------
-- Commands

--- Run code of a buffer in the sandbox.
---@param opts? {bufnr?: integer, line1?: integer, line2?: integer, range?: table, args?: string[], on_done?: fun(err: table?, result: table?)}
---   line1/line2: 1-based inclusive lines (nil: the whole buffer); range: an LSP range instead of lines; args: the
---   program's arguments.
---@return boolean sent
function M.run(opts)
  opts = opts or {}
  local bufnr = opts.bufnr or api.nvim_get_current_buf()
  if bufnr == 0 then
    bufnr = api.nvim_get_current_buf()
  end
  local client = require_client(bufnr)
  if not client then
    return false
  end
  local args = { uri = vim.uri_from_bufnr(bufnr) }
  if opts.range then
    args.range = opts.range
  elseif opts.line1 then
    args.range = M.line_range(bufnr, opts.line1, opts.line2 or opts.line1, client.offset_encoding)
  end
  args.language = M.language(bufnr)
  if opts.args and #opts.args > 0 then
    args.args = opts.args
  end
  local pending = { bufnr = bufnr, uri = args.uri, range = args.range, language = args.language }
  -- The run sees the unsaved text of every open document of the folder: send the edits of all of them that are still
  -- being debounced (a request flushes only its own buffer's), as Neovim does before its own requests.
  local tracking_ok, changetracking = pcall(require, 'vim.lsp._changetracking')
  if tracking_ok and type(changetracking.flush) == 'function' then
    pcall(changetracking.flush, client)
  end
  -- A token of our own for the request: the server reports the run's progress on it from the start (without one it
  -- starts progress of its own only once a run lasts; LspProgress fires for either).
  work_done_tokens = work_done_tokens + 1
  local params = { command = 'daytona.run', arguments = { args }, workDoneToken = 'daytona-nvim-' .. work_done_tokens }
  local ok = client:request('workspace/executeCommand', params, function(err, result)
    if err then
      local message = type(err) == 'table' and (err.message or vim.inspect(err)) or tostring(err)
      output.append_lines({ '── ✘ run failed: ' .. message .. ' ──', '' }, 'DaytonaFooterError')
      notify('run failed: ' .. message, vim.log.levels.ERROR)
      fire('DaytonaRunFinished', { error = message, bufnr = bufnr })
    elseif type(result) == 'table' and result.runId ~= nil then
      local id = tostring(result.runId)
      local run = new_run(id, {})
      run.bufnr = run.bufnr or bufnr
      run.uri = run.uri or pending.uri
      run.range = run.range or pending.range
      run.language = run.language or pending.language
      run.backend = run.backend or (result.backend ~= vim.NIL and result.backend or nil)
      if not run.finished then
        run.exit_code = result.exitCode
        run.duration_ms = result.durationMs ~= vim.NIL and result.durationMs or nil
        run.truncated = result.truncated == true
        run.changed_files = run.changed_files or result.changedFiles
        start_run(run)
        if not run.streamed and type(result.output) == 'string' and result.output ~= '' then
          -- the server did not stream (a client without outputNotifications): show the whole output now
          track_tail(run, result.output)
          output.append_chunk(id, result.output)
        end
        finish_run(run)
      end
    end
    if opts.on_done then
      opts.on_done(err, result)
    end
  end, bufnr)
  if not ok then
    notify('could not send the run request: the server has stopped. See :LspLog.', vim.log.levels.ERROR)
    return false
  end
  if M.options.output.open_on_run and M.options.output.mode ~= 'none' then
    output.open()
  end
  return true
end

--- Run the `# %%` / `// %%` cell under the cursor.
---@param bufnr? integer
---@param lnum? integer 1-based line (default: the cursor's)
function M.run_cell(bufnr, lnum)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  lnum = lnum or api.nvim_win_get_cursor(0)[1]
  local first, last = cells.find(api.nvim_buf_get_lines(bufnr, 0, -1, false), lnum)
  return M.run({ bufnr = bufnr, line1 = first, line2 = last })
end

local function exec(bufnr, command, arguments, callback)
  local client = require_client(bufnr)
  if not client then
    return false
  end
  local ok = client:request('workspace/executeCommand', { command = command, arguments = arguments }, function(err, result)
    if err then
      notify(('%s failed: %s'):format(command, err.message or vim.inspect(err)), vim.log.levels.ERROR)
    end
    if callback then
      callback(err, result)
    end
  end, bufnr)
  return ok
end

-- The buffer a command without a file of its own is about: the current one when the server is attached to it (its
-- workspace), else any buffer of a running daytona_lsp client (e.g. when the cursor is in the output window).
local function target_buf()
  local current = api.nvim_get_current_buf()
  if M.client(current) then
    return current
  end
  local client = any_client()
  if client then
    return vim.lsp.get_buffers_by_client_id(client.id)[1] or current
  end
  return current
end

--- Cancel runs: the one with `run_id`, or every run of the server when nil.
---@param run_id? string
function M.cancel(run_id, callback)
  local bufnr = target_buf()
  -- (an empty Lua table would be sent as a JSON array)
  local arg = run_id and { runId = tostring(run_id) } or vim.empty_dict()
  return exec(bufnr, 'daytona.cancel', { arg }, function(err, result)
    if not err then
      local cancelled = type(result) == 'table' and type(result.cancelled) == 'table' and result.cancelled or {}
      for _, id in ipairs(cancelled) do
        local run = M.runs[tostring(id)]
        if run then
          run.cancelled = true
        end
      end
      if #cancelled == 0 then
        notify(run_id and ('run %s is not in progress'):format(run_id) or 'no run in progress to cancel')
      elseif M.options.progress then
        notify(('cancelling run %s'):format(table.concat(vim.tbl_map(tostring, cancelled), ', ')))
      end
    end
    if callback then
      callback(err, result)
    end
  end)
end

--- Throw the sandbox away; the next run gets a fresh one.
function M.reset(callback)
  local bufnr = target_buf()
  return exec(bufnr, 'daytona.resetSandbox', { { uri = vim.uri_from_bufnr(bufnr) } }, function(err, result)
    if not err then
      notify('sandbox reset; the next run starts a fresh one')
    end
    if callback then
      callback(err, result)
    end
  end)
end

--- Restart the session of the current buffer (`all`: every session): its state is gone, the next cell starts fresh.
---@param all? boolean
function M.restart_session(all, callback)
  local bufnr = target_buf()
  local arg = all and vim.empty_dict() or { uri = vim.uri_from_bufnr(bufnr) }
  return exec(bufnr, 'daytona.restartSession', { arg }, function(err, result)
    if not err then
      local n = type(result) == 'table' and tonumber(result.restarted) or 0
      local what = all and 'every session' or vim.fn.fnamemodify(api.nvim_buf_get_name(bufnr), ':~:.')
      local message = ('session restarted: %s (%d ended); the next cell starts with a fresh state'):format(what, n)
      output.append_lines({ '↻ ' .. message, '' }, 'DaytonaHeader')
      notify(message)
    end
    if callback then
      callback(err, result)
    end
  end)
end

--- Show which sandbox the server uses.
function M.info(callback)
  local bufnr = target_buf()
  return exec(bufnr, 'daytona.sandboxInfo', { { uri = vim.uri_from_bufnr(bufnr) } }, function(err, result)
    if not err and type(result) == 'table' then
      local parts = { 'backend ' .. tostring(result.backend) }
      if result.sandboxId and result.sandboxId ~= vim.NIL then
        table.insert(parts, 'sandbox ' .. tostring(result.sandboxId))
      end
      table.insert(parts, 'state ' .. tostring(result.state))
      local running = 0
      for _, run in pairs(M.runs) do
        if not run.finished then
          running = running + 1
        end
      end
      table.insert(parts, running .. ' run(s) in progress')
      local sessions = type(result.sessions) == 'table' and result.sessions or {}
      local lines = { table.concat(parts, ', ') }
      table.insert(lines, #sessions == 0 and 'no sessions' or (#sessions .. ' session(s):'))
      for _, s in ipairs(sessions) do
        local name = vim.fn.fnamemodify(vim.uri_to_fname(s.key), ':~:.')
        table.insert(lines, ('  %s (%s): %s'):format(name, tostring(s.language), tostring(s.state)))
      end
      notify(table.concat(lines, '\n'))
    end
    if callback then
      callback(err, result)
    end
  end)
end

function M.toggle_output()
  output.toggle()
end

--- Runs in progress.
---@return daytona_lsp.Run[]
function M.active_runs()
  local list = {}
  for _, run in pairs(M.runs) do
    if not run.finished then
      table.insert(list, run)
    end
  end
  table.sort(list, function(a, b)
    return a.started_at < b.started_at
  end)
  return list
end

--- A statusline component: the progress of the current runs ('' when idle).
---@return string
function M.status()
  local parts = {}
  for _, value in pairs(M.progress) do
    local text = value.title or 'Running'
    if value.message and value.message ~= '' then
      text = text .. ': ' .. value.message
    end
    if value.percentage then
      text = text .. (' (%d%%)'):format(value.percentage)
    end
    table.insert(parts, text)
  end
  if #parts == 0 then
    local n = #M.active_runs()
    if n > 0 then
      return ('daytona: %d run%s'):format(n, n == 1 and '' or 's')
    end
    return ''
  end
  table.sort(parts)
  return 'daytona: ' .. table.concat(parts, ' | ')
end

local function on_progress(ev)
  local data = ev.data or {}
  local client = data.client_id and vim.lsp.get_client_by_id(data.client_id)
  if not client or client.name ~= M.name then
    return
  end
  local params = data.params or {}
  local value = params.value
  if type(value) ~= 'table' or params.token == nil then
    return
  end
  local token = tostring(params.token)
  if value.kind == 'end' then
    M.progress[token] = nil
  else
    local previous = M.progress[token] or {}
    M.progress[token] = {
      title = value.title or previous.title,
      message = value.message or previous.message,
      percentage = value.percentage or previous.percentage,
    }
    if M.options.progress == 'echo' then
      echo(M.status())
    elseif M.options.progress == 'notify' and value.kind == 'begin' then
      notify(M.status())
    end
  end
  vim.cmd.redrawstatus({ bang = true, mods = { emsg_silent = true } })
end

-- ---------------------------------------------------------------------------------------------------------------------
-- Setup

--- The vim.lsp.config table setup() registers (exposed for users who want to start the server their own way).
---@return vim.lsp.Config
function M.lsp_config()
  local o = M.options
  local init_options = vim.deepcopy(o.settings)
  init_options.outputNotifications = true
  init_options.interactiveInput = true -- daytona/inputRequested → vim.ui.input (daytona_lsp.input)
  return {
    cmd = o.cmd,
    filetypes = o.filetypes,
    root_markers = o.root_markers,
    init_options = init_options,
    -- an empty Lua table would go out as a JSON list: the server expects an object
    settings = { daytona = next(o.settings) and vim.deepcopy(o.settings) or vim.empty_dict() },
    handlers = M.handlers,
  }
end

--- Register the server with vim.lsp.config, enable it, and configure the output buffer.
---@param opts? table see lua/daytona_lsp/config.lua for every option
---@return boolean ok
function M.setup(opts)
  local ok, message = M.check_version()
  if not ok then
    vim.notify(message, vim.log.levels.ERROR)
    return false
  end
  local resolved, problems = config.resolve(opts)
  for _, problem in ipairs(problems) do
    notify(problem, vim.log.levels.WARN)
  end
  M.options = resolved
  output.configure(resolved.output)
  vim.lsp.config(M.name, M.lsp_config())
  vim.lsp.enable(M.name)
  local group = api.nvim_create_augroup('daytona_lsp', { clear = true })
  api.nvim_create_autocmd('LspProgress', { group = group, callback = on_progress })
  api.nvim_create_autocmd('LspDetach', {
    group = group,
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if not (client and client.name == M.name) then
        return
      end
      vim.schedule(function()
        if #vim.lsp.get_clients({ name = M.name }) > 0 then
          return
        end
        -- the server went away: the runs in progress will never finish
        for _, run in pairs(M.runs) do
          if not run.finished then
            run.finished = true
            output.append_lines({ ('── ✘ run %s: the server stopped ──'):format(run.id), '' }, 'DaytonaFooterError')
          end
        end
        M.progress = {}
      end)
    end,
  })
  M.did_setup = true
  return true
end

return M
