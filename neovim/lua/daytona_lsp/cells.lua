-- `# %%` / `// %%` cells: pure functions over a list of lines (no editor state), so they are easy to test.
local M = {}

--- True when the line starts a cell: `# %%`, `// %%` (optionally indented, anything may follow, e.g. `# %% [markdown]`).
---@param line string
---@return boolean
function M.is_marker(line)
  return line:match('^%s*#%s*%%%%') ~= nil or line:match('^%s*//%s*%%%%') ~= nil
end

--- The cell that holds `lnum` (1-based): the lines from its marker (or the top of the file) to the line before the next
--- marker (or the end of the file). Trailing blank lines are left out so that the end of the range sits on code.
---@param lines string[]
---@param lnum integer 1-based cursor line
---@return integer first, integer last 1-based, inclusive
function M.find(lines, lnum)
  local n = #lines
  if n == 0 then
    return 1, 1
  end
  lnum = math.max(1, math.min(lnum, n))
  local first = 1
  for i = lnum, 1, -1 do
    if M.is_marker(lines[i]) then
      first = i
      break
    end
  end
  local last = n
  for i = lnum + 1, n do
    if M.is_marker(lines[i]) then
      last = i - 1
      break
    end
  end
  while last > first and lines[last]:match('^%s*$') do
    last = last - 1
  end
  return first, last
end

return M
