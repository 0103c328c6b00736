-- The output buffer: one scratch buffer (filetype `daytona_output`) that receives every run's streamed chunks as they
-- arrive, between a header and a footer per run. Shown in a split, a vsplit or a float (option output.mode).
local M = {}

local api = vim.api

M.name = 'daytona://output'
M.ns = api.nvim_create_namespace('daytona_lsp.output')

---@type table
local opts = require('daytona_lsp.config').defaults.output

---@class daytona_lsp.OutputState
local state = {
  buf = nil, ---@type integer?
  empty = true, -- the buffer holds only its initial empty line
  writer = nil, -- run id whose chunk wrote the last line
  open_line = false, -- the last line is an unfinished output line of `writer`
}

local function set_hl_defaults()
  api.nvim_set_hl(0, 'DaytonaHeader', { link = 'Title', default = true })
  api.nvim_set_hl(0, 'DaytonaFooterOk', { link = 'DiagnosticOk', default = true })
  api.nvim_set_hl(0, 'DaytonaFooterError', { link = 'DiagnosticError', default = true })
  api.nvim_set_hl(0, 'DaytonaStderr', { link = 'DiagnosticWarn', default = true })
  api.nvim_set_hl(0, 'DaytonaVirtualText', { link = 'Comment', default = true })
  api.nvim_set_hl(0, 'DaytonaValue', { link = 'Special', default = true })
  api.nvim_set_hl(0, 'DaytonaVirtualTextError', { link = 'DiagnosticVirtualTextError', default = true })
end

function M.configure(output_opts)
  opts = output_opts
  set_hl_defaults()
end

--- The output buffer, created on first use.
---@return integer
function M.buf()
  if state.buf and api.nvim_buf_is_valid(state.buf) then
    return state.buf
  end
  set_hl_defaults()
  local existing = vim.fn.bufnr(M.name)
  local buf = existing ~= -1 and existing or api.nvim_create_buf(false, true)
  if existing == -1 then
    api.nvim_buf_set_name(buf, M.name)
  end
  vim.bo[buf].buftype = 'nofile'
  vim.bo[buf].bufhidden = 'hide'
  vim.bo[buf].swapfile = false
  vim.bo[buf].undolevels = -1
  vim.bo[buf].modifiable = false
  vim.bo[buf].filetype = 'daytona_output'
  vim.keymap.set('n', 'q', '<cmd>close<cr>', { buffer = buf, desc = 'Close the Daytona output window' })
  state.buf = buf
  state.empty = true
  state.writer = nil
  state.open_line = false
  return buf
end

--- Windows of the current tab page that show the output buffer.
---@return integer[]
local function windows()
  local buf = state.buf
  if not (buf and api.nvim_buf_is_valid(buf)) then
    return {}
  end
  local wins = {}
  for _, win in ipairs(api.nvim_tabpage_list_wins(0)) do
    if api.nvim_win_get_buf(win) == buf then
      table.insert(wins, win)
    end
  end
  return wins
end

function M.is_open()
  return #windows() > 0
end

local function scroll_to_end()
  local buf = state.buf
  local last = api.nvim_buf_line_count(buf)
  local current = api.nvim_get_current_win()
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    if win ~= current then
      api.nvim_win_set_cursor(win, { last, 0 })
    end
  end
end

--- Open the output window (if it is not open in this tab page). Returns its window id.
---@param focus? boolean move the cursor into it (default: option output.focus)
---@return integer
function M.open(focus)
  local buf = M.buf()
  local wins = windows()
  if #wins > 0 then
    if focus then
      api.nvim_set_current_win(wins[1])
    end
    return wins[1]
  end
  if focus == nil then
    focus = opts.focus
  end
  local previous = api.nvim_get_current_win()
  local win
  if opts.mode == 'float' then
    local f = opts.float or {}
    local columns, lines = vim.o.columns, vim.o.lines
    local width = math.max(20, math.floor(columns * (f.width or 0.8)))
    local height = math.max(5, math.floor((lines - 2) * (f.height or 0.6)))
    win = api.nvim_open_win(buf, focus, {
      relative = 'editor',
      width = math.min(width, columns),
      height = math.min(height, math.max(1, lines - 2)),
      row = math.max(0, math.floor((lines - 2 - height) / 2)),
      col = math.max(0, math.floor((columns - width) / 2)),
      border = f.border or 'rounded',
      title = ' Daytona output ',
      title_pos = 'center',
      style = 'minimal',
    })
  else
    local vertical = opts.mode == 'vsplit'
    win = api.nvim_open_win(buf, focus, {
      split = vertical and 'right' or 'below',
      win = -1, -- a top-level split: botright / far right
      width = vertical and opts.size or nil,
      height = (not vertical) and opts.size or nil,
    })
  end
  vim.wo[win].wrap = true
  vim.wo[win].number = false
  vim.wo[win].relativenumber = false
  vim.wo[win].spell = false
  vim.wo[win].winfixheight = opts.mode == 'split'
  vim.wo[win].winfixwidth = opts.mode == 'vsplit'
  api.nvim_win_set_cursor(win, { api.nvim_buf_line_count(buf), 0 })
  if not focus and api.nvim_win_is_valid(previous) then
    api.nvim_set_current_win(previous)
  end
  return win
end

--- Close every window of this tab page that shows the output buffer.
function M.close()
  for _, win in ipairs(windows()) do
    if #api.nvim_tabpage_list_wins(0) > 1 then
      api.nvim_win_close(win, true)
    else
      -- the last window of the tab: switch it to an alternate buffer rather than failing
      vim.cmd('bprevious')
    end
  end
end

function M.toggle()
  if M.is_open() then
    M.close()
  else
    M.open()
  end
end

--- Remove everything from the output buffer.
function M.clear()
  local buf = M.buf()
  vim.bo[buf].modifiable = true
  api.nvim_buf_set_lines(buf, 0, -1, false, {})
  vim.bo[buf].modifiable = false
  api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
  state.empty = true
  state.writer = nil
  state.open_line = false
end

local function trim(buf)
  local count = api.nvim_buf_line_count(buf)
  local excess = count - (opts.max_lines or 10000)
  if excess > 0 then
    api.nvim_buf_set_lines(buf, 0, excess, false, {})
  end
end

--- Append whole lines (a header, a footer, a note), highlighted with `hl`.
---@param lines string[]
---@param hl? string
function M.append_lines(lines, hl)
  local buf = M.buf()
  vim.bo[buf].modifiable = true
  local first
  if state.empty then
    api.nvim_buf_set_lines(buf, 0, -1, false, lines)
    first = 0
    state.empty = false
  else
    first = api.nvim_buf_line_count(buf)
    api.nvim_buf_set_lines(buf, -1, -1, false, lines)
  end
  if hl then
    for i = 0, #lines - 1 do
      api.nvim_buf_set_extmark(buf, M.ns, first + i, 0, { line_hl_group = hl })
    end
  end
  state.writer = nil
  state.open_line = false
  trim(buf)
  vim.bo[buf].modifiable = false
  scroll_to_end()
end

local function clean(text)
  -- terminal colour / cursor sequences mean nothing in a buffer
  text = text:gsub('\27%[[%d;?]*[A-Za-z]', '')
  text = text:gsub('\r\n', '\n')
  return text
end

--- Append a streamed chunk of run `run_id`. Chunks may end in the middle of a line: the next chunk of the same run
--- continues that line. A chunk of another run starts on a new line.
---@param run_id string|integer
---@param text string
---@param stream? string 'stdout' | 'stderr'
function M.append_chunk(run_id, text, stream)
  if text == nil or text == '' then
    return
  end
  local buf = M.buf()
  local parts = vim.split(clean(text), '\n', { plain = true })
  for i, part in ipairs(parts) do
    -- a bare carriage return (progress bars) rewrites the line: keep what comes after the last one
    parts[i] = part:match('[^\r]*$')
  end
  vim.bo[buf].modifiable = true
  local new = {}
  local continue_line = state.open_line and state.writer == run_id and not state.empty
  local start = 1
  if continue_line then
    local last = api.nvim_buf_line_count(buf)
    local line = api.nvim_buf_get_lines(buf, last - 1, last, false)[1] or ''
    api.nvim_buf_set_lines(buf, last - 1, last, false, { line .. parts[1] })
    start = 2
  end
  for i = start, #parts do
    table.insert(new, parts[i])
  end
  local ends_with_newline = #parts > 1 and parts[#parts] == ''
  if ends_with_newline and #new > 0 then
    table.remove(new)
  end
  local first
  if #new > 0 then
    if state.empty then
      api.nvim_buf_set_lines(buf, 0, -1, false, new)
      first = 0
      state.empty = false
    else
      first = api.nvim_buf_line_count(buf)
      api.nvim_buf_set_lines(buf, -1, -1, false, new)
    end
    if stream == 'stderr' then
      for i = 0, #new - 1 do
        api.nvim_buf_set_extmark(buf, M.ns, first + i, 0, { line_hl_group = 'DaytonaStderr' })
      end
    end
  end
  state.writer = run_id
  state.open_line = not ends_with_newline
  trim(buf)
  vim.bo[buf].modifiable = false
  scroll_to_end()
end

--- All lines of the output buffer (for tests and integrations).
---@return string[]
function M.lines()
  local buf = M.buf()
  if state.empty then
    return {}
  end
  return api.nvim_buf_get_lines(buf, 0, -1, false)
end

return M
