-- :checkhealth daytona_lsp
local M = {}

local health = vim.health

-- The API key comes from the server's environment only (never a setting); report its presence, never its value.
local function key_present()
  local key = vim.env.DAYTONA_API_KEY
  if key and key ~= '' then
    return true, 'environment variable DAYTONA_API_KEY'
  end
  return false
end

function M.check()
  local dl = require('daytona_lsp')

  health.start('Neovim')
  local ok, message = dl.check_version()
  local v = vim.version()
  if ok then
    health.ok(('Neovim %d.%d.%d'):format(v.major, v.minor, v.patch))
  else
    health.error(message)
  end

  health.start('Server')
  if not dl.did_setup then
    if vim.lsp.config and vim.lsp.config[dl.name] and vim.lsp.config[dl.name].cmd then
      health.info("configured with vim.lsp.config('daytona_lsp') (plain LSP, without the plugin's setup())")
    else
      health.warn("setup() was not called", { "Call require('daytona_lsp').setup({...}) in your config" })
    end
  end
  local cfg = (vim.lsp.config and vim.lsp.config[dl.name]) or {}
  local cmd = cfg.cmd or dl.options.cmd
  if type(cmd) == 'function' then
    health.info('server command: a function (not checked)')
  elseif type(cmd) == 'table' and cmd[1] then
    local exe = vim.fn.exepath(cmd[1])
    if exe ~= '' then
      health.ok(('server command: %s (%s)'):format(table.concat(cmd, ' '), exe))
      if vim.fs.basename(cmd[1]):match('^daytona%-lsp') then
        local ok_run, done = pcall(function()
          return vim.system({ exe, '--version' }, { text = true }):wait(10000)
        end)
        local version = ok_run and done and done.code == 0 and vim.trim(done.stdout or '') or ''
        if version ~= '' then
          health.ok('server version: ' .. version)
        else
          health.warn(('%s --version failed: the installation may be broken'):format(exe), {
            'Reinstall the server: in a clone, bash scripts/package --wheel && pipx install --force dist/daytona_lsp-*.whl',
          })
        end
      end
    else
      health.error(('server command %q not found'):format(cmd[1]), {
        'Install the server (not on PyPI yet): in a clone, bash scripts/package --wheel && pipx install dist/daytona_lsp-*.whl',
        "Or point setup({ cmd = { '/path/to/daytona-lsp' } }) at it",
      })
    end
  else
    health.error('no server command configured')
  end

  local settings = (cfg.settings and cfg.settings.daytona) or dl.options.settings or {}
  local backend = settings.backend or 'auto'
  local has_key, where = key_present()
  if backend == 'auto' then
    health.info(('backend: auto → %s'):format(has_key and 'daytona (API key found)' or 'local (no API key)'))
  else
    health.info('backend: ' .. tostring(backend))
  end
  if has_key then
    health.ok('Daytona API key: present (from ' .. where .. ')')
  elseif backend == 'daytona' then
    health.error('Daytona API key: missing, but backend is daytona', { 'Set DAYTONA_API_KEY in the environment' })
  else
    health.info('Daytona API key: not set (runs use the isolated local sandbox)')
  end

  local clients = vim.lsp.get_clients({ name = dl.name })
  if #clients == 0 then
    health.info('server: not running (it starts when a file of a configured filetype is opened)')
  else
    for _, client in ipairs(clients) do
      local info = client.server_info or {}
      health.ok(
        ('server running: client %d, %s %s, root %s'):format(
          client.id,
          info.name or dl.name,
          info.version or '',
          client.root_dir or '(none)'
        )
      )
    end
  end

  health.start('Output')
  local out = dl.options.output
  health.info(('output window: %s (size %d), open on run: %s'):format(out.mode, out.size, tostring(out.open_on_run)))
  health.info('virtual text: ' .. tostring(dl.options.virtual_text) .. ', progress: ' .. tostring(dl.options.progress))
end

return M
