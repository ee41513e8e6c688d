-- End-to-end test of the Neovim plugin (extensions/nvim) in a real headless Neovim (>= 0.11),
-- run by tests/tests/e2e/nvim_plugin.rs:
--
--   nvim --headless --clean -u NONE -i NONE -l tests/nvim/plugin_e2e.lua
--
-- It loads the plugin from the repository the way a plugin manager does (runtimepath + its
-- plugin/ file), calls require('coder_lsp').setup(), opens src/retry.rs of a copied fixture,
-- waits for the index (LspProgress), then runs the plugin's commands — :CoderSearch (quickfix
-- and vim.ui.select), :CoderSimilar on a range, :CoderContext, :CoderStatus, :CoderReindex,
-- :CoderFineTune and :checkhealth coder — and writes what each produced as one JSON object to
-- $CODER_LSP_TEST_OUT. The Rust test asserts on it. Errors and timeouts go into `error`.
--
-- Environment: CODER_LSP_TEST_BIN, CODER_LSP_TEST_ROOT, CODER_LSP_TEST_INDEX_DIR,
-- CODER_LSP_TEST_OUT (as for lsp_smoke.lua), CODER_LSP_TEST_PLUGIN (extensions/nvim).

local result = {
  progress = {},
  statusline = {},
  messages = {},
}
local out_path = os.getenv('CODER_LSP_TEST_OUT')

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

local function wait_for(what, timeout_ms, cond)
  if not vim.wait(timeout_ms, cond, 50) then
    fail(('timed out after %d ms waiting for %s'):format(timeout_ms, what))
  end
end

--- The first message notified after `from` (an index into result.messages) that contains
--- `needle`, waiting for it.
local function wait_message(what, from, needle, timeout_ms)
  local found
  wait_for(what, timeout_ms or 30000, function()
    for i = from + 1, #result.messages do
      if result.messages[i].message:find(needle, 1, true) then
        found = result.messages[i]
        return true
      end
    end
    return false
  end)
  return found
end

local function relative(root, file)
  file = vim.fs.normalize(vim.uv.fs_realpath(file) or file)
  if vim.startswith(file, root .. '/') then
    return file:sub(#root + 2)
  end
  return file
end

--- The quickfix list as plain data (paths relative to the root).
local function quickfix(root)
  local list = vim.fn.getqflist({ title = 1, items = 1, winid = 1 })
  local items = {}
  for _, item in ipairs(list.items) do
    table.insert(items, {
      file = relative(root, vim.api.nvim_buf_get_name(item.bufnr)),
      lnum = item.lnum,
      end_lnum = item.end_lnum,
      text = item.text,
    })
  end
  return { title = list.title, items = items, window_open = list.winid ~= 0 }
end

local function main()
  local bin = getenv('CODER_LSP_TEST_BIN')
  local root = vim.fs.normalize(vim.uv.fs_realpath(getenv('CODER_LSP_TEST_ROOT')) or '')
  local index_dir = getenv('CODER_LSP_TEST_INDEX_DIR')
  local plugin = vim.fs.normalize(getenv('CODER_LSP_TEST_PLUGIN'))
  result.root = root

  local notify = vim.notify
  vim.notify = function(msg, level, opts) ---@diagnostic disable-line: duplicate-set-field
    table.insert(result.messages, { level = level, message = tostring(msg) })
    return notify(msg, level, opts)
  end

  -- Load the plugin as a plugin manager would.
  vim.opt.runtimepath:prepend(plugin)
  vim.cmd.runtime('plugin/coder_lsp.lua')
  local coder = require('coder_lsp')
  result.commands_before_setup = vim.fn.exists(':CoderSearch') == 2

  vim.lsp.log.set_level(vim.log.levels.DEBUG)
  coder.setup({
    server_path = bin,
    init_options = {
      indexDir = index_dir,
      topK = 5,
      -- A few training steps: the run is real, only short.
      fineTune = { heldout = 0.3, maxStepsPerStage = 1, batchSize = 4, maxTokens = 48 },
    },
    -- The fixture copy is not a git repository.
    root_markers = { '.gitignore' },
  })
  -- Registered after setup(), so the plugin's own handler has run when this one samples it.
  vim.api.nvim_create_autocmd('LspProgress', {
    callback = function(event)
      local client = vim.lsp.get_client_by_id(event.data.client_id)
      local value = event.data.params and event.data.params.value or {}
      table.insert(result.progress, {
        client = client and client.name,
        kind = value.kind,
        title = value.title,
        message = value.message,
        percentage = value.percentage,
      })
      table.insert(result.statusline, coder.statusline())
    end,
  })

  vim.cmd('filetype on')
  vim.cmd.edit(vim.fn.fnameescape(root .. '/src/retry.rs'))
  local bufnr = vim.api.nvim_get_current_buf()
  local client
  wait_for('the coder_lsp client to attach', 20000, function()
    client = vim.lsp.get_clients({ bufnr = bufnr, name = 'coder_lsp' })[1]
    return client ~= nil and client.initialized
  end)
  result.root_dir = client.root_dir

  -- The index is complete when the server says so (asked through the plugin).
  local deadline = vim.uv.now() + 90000
  while true do
    local status
    coder.execute('indexStatus', nil, function(s)
      status = s
    end, { bufnr = bufnr })
    wait_for('an indexStatus answer', 30000, function()
      return status ~= nil
    end)
    if status.indexing == false and status.pending == 0 and (status.files or 0) > 0 then
      break
    end
    if vim.uv.now() > deadline then
      fail('indexing did not finish: ' .. vim.json.encode(status))
    end
    vim.wait(200)
  end

  -- :CoderSearch → quickfix.
  local query = 'how long to wait before retrying a failed request'
  vim.cmd('CoderSearch ' .. query)
  wait_for(':CoderSearch results in the quickfix list', 30000, function()
    return vim.fn.getqflist({ title = 1 }).title == 'coder-lsp: ' .. query
  end)
  result.search = quickfix(root)

  -- :CoderSimilar on the lines of backoff_delay.
  vim.cmd('wincmd p')
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  local first, last
  for i, line in ipairs(lines) do
    if not first and line:find('pub fn backoff_delay', 1, true) then
      first = i
    elseif first and not last and line == '}' then
      last = i
    end
  end
  if not (first and last) then
    fail('backoff_delay not found in src/retry.rs')
  end
  result.similar_range = { first, last }
  vim.cmd(('%d,%dCoderSimilar'):format(first, last))
  wait_for(':CoderSimilar results in the quickfix list', 30000, function()
    return vim.startswith(vim.fn.getqflist({ title = 1 }).title, 'coder-lsp: similar to ')
  end)
  result.similar = quickfix(root)

  -- :CoderSearch! → vim.ui.select; choosing backoff_delay jumps there.
  vim.cmd('wincmd p')
  vim.cmd.edit(vim.fn.fnameescape(root .. '/README.md'))
  local offered
  vim.ui.select = function(items, opts, on_choice) ---@diagnostic disable-line: duplicate-set-field
    offered = { prompt = opts.prompt, items = vim.tbl_map(opts.format_item, items) }
    for _, item in ipairs(items) do
      if item.name == 'backoff_delay' then
        return on_choice(item)
      end
    end
    on_choice(nil)
  end
  vim.cmd('CoderSearch! ' .. query)
  wait_for('vim.ui.select to be offered the results', 30000, function()
    return offered ~= nil
  end)
  wait_for('the jump to the chosen result', 5000, function()
    return vim.api.nvim_buf_get_name(0):find('retry.rs', 1, true) ~= nil
  end)
  result.select = {
    offered = offered,
    file = relative(root, vim.api.nvim_buf_get_name(0)),
    line = vim.api.nvim_win_get_cursor(0)[1],
  }

  -- :CoderContext → a scratch buffer.
  vim.cmd('CoderContext ' .. query)
  wait_for('the context buffer', 30000, function()
    return vim.api.nvim_buf_get_name(0):find('coder-lsp://context/', 1, true) ~= nil
  end)
  result.context = {
    buftype = vim.bo.buftype,
    filetype = vim.bo.filetype,
    modifiable = vim.bo.modifiable,
    lines = vim.api.nvim_buf_get_lines(0, 0, -1, false),
  }
  vim.cmd('close')

  -- :CoderStatus → a notification.
  local mark = #result.messages
  vim.cmd('CoderStatus')
  result.status_message = wait_message(':CoderStatus', mark, 'coder-lsp index').message

  -- :CoderReindex → a notification, then a fresh indexing run (LspProgress begin … end).
  mark = #result.messages
  local progress_mark = #result.progress
  vim.cmd('CoderReindex')
  result.reindex_message = wait_message(':CoderReindex', mark, 'reindexing').message
  wait_for('the reindex run to end', 60000, function()
    for i = progress_mark + 1, #result.progress do
      if result.progress[i].kind == 'end' then
        return true
      end
    end
    return false
  end)
  result.reindex_progress = vim.list_slice(result.progress, progress_mark + 1)

  -- :CoderFineTune → a real (short) training run; its outcome is shown to the user.
  mark = #result.messages
  vim.cmd('CoderFineTune')
  wait_for(':CoderFineTune to report', 180000, function()
    return #result.messages > mark
  end)
  result.fine_tune_message = result.messages[mark + 1]
  result.server_commands = client.server_capabilities.executeCommandProvider.commands

  -- :checkhealth coder → the report buffer.
  vim.cmd('checkhealth coder')
  result.health = vim.api.nvim_buf_get_lines(0, 0, -1, false)

  client:stop()
  wait_for('the server to exit', 10000, function()
    return client:is_stopped()
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
if out_path and out_path ~= '' then
  local file = assert(io.open(out_path, 'w'))
  file:write(vim.json.encode(result))
  file:close()
end
if not ok then
  io.stderr:write('plugin_e2e.lua: ' .. err .. '\n')
  for _, c in ipairs(vim.lsp.get_clients()) do
    pcall(c.rpc.terminate)
  end
  vim.wait(3000, function()
    return #vim.lsp.get_clients() == 0
  end, 50)
  vim.cmd('cquit 1')
end
vim.cmd('qall!')
