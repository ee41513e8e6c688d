-- End-to-end smoke test of coder-lsp in a real Neovim (>= 0.11), run headless by
-- tests/tests/e2e/nvim.rs:
--
--   nvim --headless --clean -u NONE -i NONE -l tests/nvim/lsp_smoke.lua
--
-- It registers the server with vim.lsp.config/vim.lsp.enable, opens src/retry.rs of a copied
-- fixture so that the client attaches, waits (bounded) until the background index is complete,
-- runs semanticSearch and workspace/symbol, shuts the server down, and writes everything it saw
-- as one JSON object to $CODER_LSP_TEST_OUT. The Rust test asserts on that JSON. Any error or
-- timeout is written there too (field `error`) and the script exits non-zero.
--
-- Environment:
--   CODER_LSP_TEST_BIN        the coder-lsp binary (started as `<bin> serve`)
--   CODER_LSP_TEST_ROOT       the workspace root (a copy of tests/fixtures/sample-repo)
--   CODER_LSP_TEST_INDEX_DIR  initializationOptions.indexDir (never the user's cache)
--   CODER_LSP_TEST_OUT        where the JSON result goes
--   CODER_LSP_TEST_INDEX_TIMEOUT_MS  how long indexing may take (default 120000)

local result = {
  nvim_version = tostring(vim.version()),
  log_path = vim.lsp.get_log_path(),
  progress = {},
  messages = {},
  status_polls = 0,
  searches = {},
}
local out_path = os.getenv('CODER_LSP_TEST_OUT')

local function write_result()
  if not out_path or out_path == '' then
    return
  end
  local file = assert(io.open(out_path, 'w'))
  file:write(vim.json.encode(result))
  file:close()
end

-- Raised by fail(); anything else that reaches the top is an unexpected Lua error.
local Failure = {}

local function fail(message)
  error(setmetatable({ message = message }, Failure), 0)
end

local function getenv(name)
  local value = os.getenv(name)
  if value == nil or value == '' then
    fail('environment variable ' .. name .. ' is not set')
  end
  return value
end

-- Waits until cond() returns true, at most timeout_ms; fails with `what` on timeout.
local function wait_for(what, timeout_ms, cond, interval)
  local ok, reason = vim.wait(timeout_ms, cond, interval or 50)
  if not ok then
    fail(
      string.format(
        'timed out after %d ms waiting for %s (vim.wait: %s)',
        timeout_ms,
        what,
        tostring(reason)
      )
    )
  end
end

local REQUEST_TIMEOUT_MS = 30000

-- One request, bounded; fails on an error response or a timeout.
local function request(client, method, params, bufnr)
  local response, err = client:request_sync(method, params, REQUEST_TIMEOUT_MS, bufnr)
  if response == nil then
    fail(string.format('%s %s: no response (%s)', method, vim.json.encode(params), tostring(err)))
  end
  if response.err then
    fail(
      string.format(
        '%s %s: error response %s',
        method,
        vim.json.encode(params),
        vim.json.encode({
          code = response.err.code,
          message = response.err.message,
          data = response.err.data,
        })
      )
    )
  end
  return response.result
end

local function execute_command(client, command, arguments, bufnr)
  return request(
    client,
    'workspace/executeCommand',
    { command = command, arguments = arguments },
    bufnr
  )
end

local function main()
  local bin = getenv('CODER_LSP_TEST_BIN')
  local root = vim.fs.normalize(vim.uv.fs_realpath(getenv('CODER_LSP_TEST_ROOT')) or '')
  local index_dir = getenv('CODER_LSP_TEST_INDEX_DIR')
  local index_timeout = tonumber(os.getenv('CODER_LSP_TEST_INDEX_TIMEOUT_MS') or '') or 120000
  if root == '' or vim.fn.isdirectory(root) == 0 then
    fail('CODER_LSP_TEST_ROOT is not a directory: ' .. tostring(os.getenv('CODER_LSP_TEST_ROOT')))
  end
  if vim.fn.executable(bin) ~= 1 then
    fail('CODER_LSP_TEST_BIN is not an executable file: ' .. bin)
  end
  result.root = root

  -- Keep what Neovim tells the user (e.g. "Client quit with exit code ..."): it goes into the
  -- result as well as to stderr.
  local notify = vim.notify
  vim.notify = function(msg, level, opts) ---@diagnostic disable-line: duplicate-set-field
    table.insert(result.messages, { level = level, message = tostring(msg) })
    return notify(msg, level, opts)
  end

  -- Full rpc traffic in the log, and the server's stderr (logged by the client at ERROR).
  vim.lsp.log.set_level(vim.log.levels.DEBUG)

  vim.api.nvim_create_autocmd('LspProgress', {
    callback = function(event)
      local value = event.data and event.data.params and event.data.params.value or {}
      table.insert(result.progress, {
        token = event.data and event.data.params and event.data.params.token,
        kind = value.kind,
        title = value.title,
        message = value.message,
        percentage = value.percentage,
      })
    end,
  })

  vim.lsp.config('coder_lsp', {
    cmd = { bin, 'serve' },
    filetypes = { 'rust', 'python', 'go', 'javascript', 'typescript', 'markdown' },
    root_markers = { '.git', '.gitignore' },
    init_options = { indexDir = index_dir, topK = 10 },
    on_exit = function(code, signal)
      result.server_exit = { code = code, signal = signal }
    end,
  })
  vim.lsp.enable('coder_lsp')

  -- -u NONE leaves filetype detection off; vim.lsp.enable attaches on FileType.
  vim.cmd('filetype on')
  vim.cmd.edit(vim.fn.fnameescape(root .. '/src/retry.rs'))
  local bufnr = vim.api.nvim_get_current_buf()
  if vim.bo[bufnr].filetype ~= 'rust' then
    fail('src/retry.rs got filetype ' .. vim.inspect(vim.bo[bufnr].filetype) .. ', not rust')
  end

  local client
  wait_for('the coder_lsp client to attach to src/retry.rs', 20000, function()
    client = vim.lsp.get_clients({ bufnr = bufnr, name = 'coder_lsp' })[1]
    if client == nil and result.server_exit then
      fail('the server exited before the client attached: ' .. vim.inspect(result.server_exit))
    end
    return client ~= nil and client.initialized
  end)

  local caps = client.server_capabilities or {}
  result.client = {
    root_dir = client.root_dir,
    workspace_folders = client.workspace_folders,
    server_info = client.server_info,
    capabilities = {
      executeCommandProvider = caps.executeCommandProvider,
      workspaceSymbolProvider = caps.workspaceSymbolProvider,
      hoverProvider = caps.hoverProvider,
    },
  }
  local commands = type(caps.executeCommandProvider) == 'table'
      and caps.executeCommandProvider.commands
    or {}
  for _, command in ipairs({ 'indexStatus', 'semanticSearch' }) do
    if not vim.list_contains(commands, command) then
      fail(
        'the server does not advertise command '
          .. command
          .. ' in executeCommandProvider: '
          .. vim.inspect(caps.executeCommandProvider)
      )
    end
  end

  -- Poll indexStatus every 200 ms until the background index is complete. (A plain loop: the
  -- request itself waits, and vim.wait should not nest.)
  local deadline = (vim.uv.hrtime() / 1e6) + index_timeout
  while true do
    if result.server_exit then
      fail('the server exited while indexing: ' .. vim.inspect(result.server_exit))
    end
    local status = execute_command(client, 'indexStatus', nil, bufnr)
    result.status_polls = result.status_polls + 1
    result.status = status
    if
      type(status) == 'table'
      and status.indexing == false
      and status.pending == 0
      and (tonumber(status.files) or 0) > 0
    then
      break
    end
    if (vim.uv.hrtime() / 1e6) >= deadline then
      fail(
        string.format(
          'indexing did not finish within %d ms; last indexStatus: %s',
          index_timeout,
          vim.json.encode(status)
        )
      )
    end
    vim.wait(200)
  end

  for _, query in ipairs({
    'how long to wait before retrying a failed request',
    'check that an email address is well formed',
  }) do
    local found = execute_command(client, 'semanticSearch', { { query = query, topK = 5 } }, bufnr)
    table.insert(result.searches, { query = query, results = found })
  end

  local symbol_query = 'how long to wait before retrying a failed request'
  result.workspace_symbol = {
    query = symbol_query,
    results = request(client, 'workspace/symbol', { query = symbol_query }, bufnr),
  }

  -- Hover over the call of backoff_delay in RetryPolicy::run: whatever the server shows, it
  -- must answer without an error.
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  for row, text in ipairs(lines) do
    local col = text:find('backoff_delay(attempt', 1, true)
    if col then
      result.hover = request(client, 'textDocument/hover', {
        textDocument = { uri = vim.uri_from_bufnr(bufnr) },
        position = { line = row - 1, character = col - 1 },
      }, bufnr)
      break
    end
  end

  -- A clean shutdown: shutdown request, exit notification, then the process must go away.
  client:stop()
  wait_for('the server to exit after shutdown/exit', 10000, function()
    return result.server_exit ~= nil
  end)
end

local ok, err = xpcall(main, function(e)
  if getmetatable(e) == Failure then
    return e.message
  end
  return debug.traceback(tostring(e), 2)
end)
if not ok then
  result.error = err
end
write_result()
if not ok then
  io.stderr:write('lsp_smoke.lua: ' .. err .. '\n')
  -- Don't leave the server behind when bailing out: SIGTERM, then wait a little for it.
  local clients = vim.lsp.get_clients()
  for _, c in ipairs(clients) do
    pcall(c.rpc.terminate)
  end
  vim.wait(3000, function()
    return result.server_exit ~= nil or #clients == 0
  end, 50)
  vim.cmd('cquit 1')
end
vim.cmd('qall!')
