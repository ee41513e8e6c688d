-- `:checkhealth coder` (or `:checkhealth coder_lsp`): Neovim's version, the server binary, the
-- configuration, the model in the cache, and what running servers report.

local M = {}

local DEFAULT_MODEL = 'sentence-transformers/all-MiniLM-L6-v2'

--- coder-lsp's cache folder, as the server computes it.
---@return string
local function cache_root()
  local dir = os.getenv('CODER_LSP_CACHE_DIR')
  if dir and dir ~= '' then
    return dir
  end
  local xdg = os.getenv('XDG_CACHE_HOME')
  local base = (xdg and xdg ~= '') and xdg or vim.fs.joinpath(vim.uv.os_homedir() or '~', '.cache')
  return vim.fs.joinpath(base, 'coder-lsp')
end

---@param dir string
---@return string[] missing model files
local function missing_model_files(dir)
  local missing = {}
  for _, file in ipairs({ 'config.json', 'tokenizer.json', 'model.safetensors' }) do
    if vim.uv.fs_stat(vim.fs.joinpath(dir, file)) == nil then
      table.insert(missing, file)
    end
  end
  return missing
end

local function check_model(model)
  local health = vim.health
  local looks_like_path = model:sub(1, 1) == '/' or model:sub(1, 1) == '.' or model:sub(1, 1) == '~'
  if looks_like_path then
    local dir = vim.fs.normalize(model)
    local missing = missing_model_files(dir)
    if #missing == 0 then
      health.ok('model directory ' .. dir)
    else
      health.error(
        ('model directory %s lacks %s'):format(dir, table.concat(missing, ', ')),
        { 'init_options.model must name a folder with config.json, tokenizer.json and model.safetensors' }
      )
    end
    return
  end
  local dir = vim.fs.joinpath(cache_root(), 'models', (model:gsub('/', '--')))
  local missing = missing_model_files(dir)
  if #missing == 0 then
    health.ok(('model %s is in the cache (%s)'):format(model, dir))
  else
    health.warn(
      ('model %s is not in the cache (%s)'):format(model, dir),
      {
        'Without it the server downloads it from the Hugging Face hub if it can; otherwise search matches words only.',
        'Install the default model with the repository\'s scripts/setup, or set init_options.model to a model folder.',
      }
    )
  end
end

function M.check()
  local health = vim.health
  health.start('coder-lsp')

  if vim.fn.has('nvim-0.11') == 1 then
    health.ok('Neovim ' .. tostring(vim.version()))
  else
    health.error('Neovim 0.11 or newer is required (vim.lsp.config / vim.lsp.enable)')
    return
  end

  local config = vim.lsp.config.coder_lsp
  if config == nil then
    health.error(
      'no coder_lsp configuration',
      { 'Add extensions/nvim (the folder with lsp/coder_lsp.lua) to runtimepath with your plugin manager.' }
    )
    return
  end

  local cmd = config.cmd
  if type(cmd) ~= 'table' or type(cmd[1]) ~= 'string' then
    health.info('the server is started by a function; its binary is not checked')
  elseif vim.fn.executable(cmd[1]) ~= 1 then
    health.error(('the server binary %s is not an executable on PATH'):format(cmd[1]), {
      'Build it with `cargo build --release -p coder-lsp` and put target/release on PATH,',
      "or pass server_path = '/path/to/coder-lsp' to require('coder_lsp').setup().",
    })
  else
    local path = vim.fn.exepath(cmd[1])
    local version = vim.system({ path, '--version' }, { text = true }):wait(5000)
    if version.code == 0 then
      health.ok(('server: %s (%s)'):format(path, vim.trim(version.stdout or '')))
    else
      health.error(
        ('%s --version failed (exit %s): %s'):format(path, tostring(version.code), vim.trim(version.stderr or ''))
      )
    end
  end

  if vim.lsp.is_enabled('coder_lsp') then
    health.ok('enabled (vim.lsp.enable)')
  else
    health.warn("not enabled", { "Call require('coder_lsp').setup() or vim.lsp.enable('coder_lsp')." })
  end

  local init_options = config.init_options or {}
  check_model(init_options.model or DEFAULT_MODEL)

  local clients = vim.lsp.get_clients({ name = 'coder_lsp' })
  if #clients == 0 then
    health.info('no coder-lsp server is running (it starts when you open a file inside a project)')
  end
  for _, client in ipairs(clients) do
    local response = client:request_sync('workspace/executeCommand', { command = 'indexStatus', arguments = {} }, 5000)
    if response == nil or response.err then
      health.warn(
        ('server for %s did not answer indexStatus: %s'):format(
          client.root_dir or '?',
          response and response.err and response.err.message or 'timeout'
        )
      )
    else
      local status = response.result
      local summary = require('coder_lsp').format_status(status):gsub('\n', '; ')
      if tostring(status.modelState):match('^failed') then
        health.warn(('server for %s: %s'):format(client.root_dir or '?', summary))
      else
        health.ok(('server for %s: %s'):format(client.root_dir or '?', summary))
      end
    end
  end
end

return M
