-- coder-lsp for Neovim 0.11+: `setup()` configures the language server through
-- `vim.lsp.config('coder_lsp', ...)` (defaults in lsp/coder_lsp.lua) and enables it; the user
-- commands ask the server's `workspace/executeCommand` commands and show the answers in the
-- quickfix list, `vim.ui.select` or a scratch buffer. Indexing progress arrives as standard
-- `LspProgress` events. See `:help coder-lsp`.

local M = {}

local NAME = 'coder_lsp'

---@class coder_lsp.Options
---@field cmd? string[] Command that starts the server (default `{ 'coder-lsp', 'serve' }`).
---@field server_path? string Path of the coder-lsp binary (used when `cmd` is not given).
---@field init_options? table initializationOptions: model, device, indexDir, exclude, topK, maxFileSize, hover, fineTune.
---@field root_markers? string[] Files or folders that mark a workspace root.
---@field picker? 'quickfix'|'select' Where :CoderSearch and :CoderSimilar put results.
---@field open_quickfix? boolean Open the quickfix window after a search (default true).
---@field context_tokens? integer Token budget of :CoderContext (default 2048).
---@field progress? boolean Echo indexing progress in the command line (default true).
---@field enable? boolean Call `vim.lsp.enable('coder_lsp')` in setup (default true).

---@type coder_lsp.Options
local defaults = {
  picker = 'quickfix',
  open_quickfix = true,
  context_tokens = 2048,
  progress = true,
  enable = true,
}

---@type coder_lsp.Options
M.options = vim.deepcopy(defaults)

local INIT_OPTIONS = {
  model = 'string',
  device = 'string',
  indexDir = 'string',
  exclude = 'table',
  topK = 'number',
  maxFileSize = 'number',
  hover = 'boolean',
  fineTune = 'table',
}

--- Checks `init_options` and drops empty values. Returns nil when nothing is left: an empty Lua
--- table would be sent as a JSON array, which the server refuses.
---@param init_options table|nil
---@return table|nil
local function clean_init_options(init_options)
  if init_options == nil then
    return nil
  end
  local cleaned = {}
  for key, value in pairs(init_options) do
    local expected = INIT_OPTIONS[key]
    if expected == nil then
      error(
        ('coder-lsp: unknown init_options.%s (known: %s)'):format(
          key,
          table.concat(vim.tbl_keys(INIT_OPTIONS), ', ')
        ),
        0
      )
    end
    if type(value) ~= expected then
      error(('coder-lsp: init_options.%s must be a %s, got %s'):format(key, expected, type(value)), 0)
    end
    if not (value == '' or (expected == 'table' and #value == 0)) then
      cleaned[key] = value
    end
  end
  return next(cleaned) and cleaned or nil
end

--- Configures the server and (unless `enable = false`) enables it. Safe to call again.
---@param opts? coder_lsp.Options
function M.setup(opts)
  opts = opts or {}
  vim.validate('opts', opts, 'table')
  vim.validate('cmd', opts.cmd, 'table', true)
  vim.validate('server_path', opts.server_path, 'string', true)
  vim.validate('init_options', opts.init_options, 'table', true)
  vim.validate('root_markers', opts.root_markers, 'table', true)
  vim.validate('picker', opts.picker, function(p)
    return p == nil or p == 'quickfix' or p == 'select'
  end, "'quickfix' or 'select'")
  vim.validate('context_tokens', opts.context_tokens, 'number', true)

  M.options = vim.tbl_deep_extend('force', vim.deepcopy(defaults), opts)

  local config = {}
  if opts.cmd then
    config.cmd = opts.cmd
  elseif opts.server_path then
    config.cmd = { vim.fs.normalize(opts.server_path), 'serve' }
  end
  config.init_options = clean_init_options(opts.init_options)
  if opts.root_markers then
    config.root_markers = opts.root_markers
  end
  vim.lsp.config(NAME, config)

  M.create_commands()
  M.watch_progress()
  if M.options.enable then
    vim.lsp.enable(NAME)
  end
end

---@param message string
---@param level? integer
local function notify(message, level)
  vim.notify(message, level or vim.log.levels.INFO, { title = 'coder-lsp' })
end

--- The coder-lsp client for `bufnr` (else any running coder-lsp client).
---@param bufnr? integer
---@return vim.lsp.Client|nil
function M.client(bufnr)
  local clients = vim.lsp.get_clients({ name = NAME, bufnr = bufnr or 0 })
  if #clients == 0 then
    clients = vim.lsp.get_clients({ name = NAME })
  end
  return clients[1]
end

local function not_running()
  notify(
    'coder-lsp is not running: open a file inside a project (a folder with .git or .coderignore) '
      .. "after require('coder_lsp').setup() or vim.lsp.enable('coder_lsp'); :checkhealth coder says more",
    vim.log.levels.ERROR
  )
end

local request_counter = 0

--- Sends `workspace/executeCommand`; calls `on_result(result, client)` on success, reports an
--- error otherwise (with the server's message).
---@param command string
---@param argument table|nil
---@param on_result fun(result: any, client: vim.lsp.Client)
---@param opts? { bufnr?: integer, progress?: boolean }
function M.execute(command, argument, on_result, opts)
  opts = opts or {}
  local bufnr = opts.bufnr or vim.api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if client == nil then
    not_running()
    return
  end
  local params = { command = command, arguments = argument == nil and {} or { argument } }
  if opts.progress then
    request_counter = request_counter + 1
    params.workDoneToken = ('coder-lsp/nvim/%s/%d'):format(command, request_counter)
  end
  client:request('workspace/executeCommand', params, function(err, result)
    if err then
      local advertised = vim.tbl_get(client.server_capabilities or {}, 'executeCommandProvider', 'commands')
        or {}
      local note = vim.list_contains(advertised, command) and ''
        or (' (this coder-lsp server does not list %s in executeCommandProvider)'):format(command)
      notify(('coder-lsp: %s failed: %s%s'):format(command, err.message, note), vim.log.levels.ERROR)
      return
    end
    on_result(result, client)
  end, bufnr)
end

---@param value any
---@return any
local function present(value)
  if value == vim.NIL then
    return nil
  end
  return value
end

--- A quickfix item for a search hit.
---@param hit table
---@return vim.quickfix.entry
function M.hit_item(hit)
  local preview = (present(hit.preview) or ''):gsub('%s+', ' ')
  local container = present(hit.containerName)
  return {
    filename = vim.uri_to_fname(hit.uri),
    lnum = hit.range.start.line + 1,
    -- The server's ranges end at column 0 of the line after the symbol.
    end_lnum = math.max(hit.range['end'].line, hit.range.start.line + 1),
    col = 1,
    text = ('%s (%s%s) %s'):format(hit.name, hit.kind, container and (' in ' .. container) or '', preview),
    user_data = { score = hit.score },
  }
end

--- Shows hits in the quickfix list (or `vim.ui.select`).
---@param hits table[]
---@param title string
---@param picker 'quickfix'|'select'
---@param client vim.lsp.Client
local function show_hits(hits, title, picker, client)
  if #hits == 0 then
    notify(('%s: nothing found'):format(title))
    return
  end
  if picker == 'select' then
    vim.ui.select(hits, {
      prompt = title,
      format_item = function(hit)
        local item = M.hit_item(hit)
        return ('%s  %s:%d'):format(hit.name, vim.fn.fnamemodify(item.filename, ':~:.'), item.lnum)
      end,
    }, function(hit)
      if hit then
        vim.lsp.util.show_document(
          { uri = hit.uri, range = { start = hit.range.start, ['end'] = hit.range.start } },
          client.offset_encoding,
          { focus = true }
        )
      end
    end)
    return
  end
  vim.fn.setqflist({}, ' ', { title = title, items = vim.tbl_map(M.hit_item, hits) })
  if M.options.open_quickfix then
    vim.cmd('botright copen')
  end
end

--- Searches the workspace in plain language.
---@param query string
---@param opts? { picker?: 'quickfix'|'select' }
function M.search(query, opts)
  opts = opts or {}
  query = vim.trim(query or '')
  if query == '' then
    notify('coder-lsp: :CoderSearch needs a query, e.g. :CoderSearch retry after a timeout', vim.log.levels.WARN)
    return
  end
  M.execute('semanticSearch', { query = query }, function(hits, client)
    show_hits(hits or {}, 'coder-lsp: ' .. query, opts.picker or M.options.picker, client)
  end)
end

--- Finds code like lines `first`..`last` (1-based) of the current buffer, or like the symbol at
--- the cursor when no range is given.
---@param first? integer
---@param last? integer
---@param opts? { picker?: 'quickfix'|'select' }
function M.similar(first, last, opts)
  opts = opts or {}
  local bufnr = vim.api.nvim_get_current_buf()
  local uri = vim.uri_from_bufnr(bufnr)
  local argument, what
  if first and last then
    local last_line = vim.api.nvim_buf_get_lines(bufnr, last - 1, last, false)[1] or ''
    argument = {
      uri = uri,
      range = {
        start = { line = first - 1, character = 0 },
        ['end'] = { line = last - 1, character = #last_line },
      },
    }
    what = ('%s:%d-%d'):format(vim.fn.expand('%:~:.'), first, last)
  else
    local cursor = vim.api.nvim_win_get_cursor(0)
    argument = { uri = uri, position = { line = cursor[1] - 1, character = cursor[2] } }
    what = ('the symbol at %s:%d'):format(vim.fn.expand('%:~:.'), cursor[1])
  end
  M.execute('findSimilar', argument, function(hits, client)
    show_hits(hits or {}, 'coder-lsp: similar to ' .. what, opts.picker or M.options.picker, client)
  end, { bufnr = bufnr })
end

--- Opens a scratch buffer with the code that best answers `query`, packed into the token budget
--- (what you would paste into a prompt).
---@param query string
function M.context(query)
  query = vim.trim(query or '')
  if query == '' then
    notify('coder-lsp: :CoderContext needs a query', vim.log.levels.WARN)
    return
  end
  M.execute('ragContext', { query = query, tokenBudget = M.options.context_tokens }, function(result)
    local lines = {
      ('# coder-lsp context for: %s (%d tokens)'):format(query, result.tokensUsed or 0),
      '',
    }
    for _, chunk in ipairs(result.chunks or {}) do
      vim.list_extend(lines, vim.split((chunk.text:gsub('\n+$', '')), '\n', { plain = true }))
      table.insert(lines, '')
    end
    vim.cmd('botright new')
    local bufnr = vim.api.nvim_get_current_buf()
    vim.bo[bufnr].buftype = 'nofile'
    vim.bo[bufnr].bufhidden = 'wipe'
    vim.bo[bufnr].swapfile = false
    vim.api.nvim_buf_set_name(bufnr, ('coder-lsp://context/%d'):format(bufnr))
    vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, lines)
    vim.bo[bufnr].modifiable = false
    vim.bo[bufnr].filetype = 'markdown'
  end)
end

--- The last index status the server reported (`indexStatus`), per client id.
---@type table<integer, table>
M.last_status = {}

--- One-paragraph summary of an `indexStatus` answer.
---@param status table
---@return string
function M.format_status(status)
  local lines = {
    ('coder-lsp index %s: %d files, %d chunks, %d embedded, %d pending'):format(
      status.indexing and 'indexing' or 'up to date',
      status.files or 0,
      status.chunks or 0,
      status.embedded or 0,
      status.pending or 0
    ),
    ('model %s (%s%s)'):format(
      status.model,
      status.modelState,
      (present(status.device) or '') ~= '' and (' on ' .. status.device) or ''
    ),
  }
  if present(status.indexDir) then
    table.insert(lines, 'index in ' .. status.indexDir)
  end
  if present(status.lastError) then
    table.insert(lines, 'last error: ' .. status.lastError)
  end
  return table.concat(lines, '\n')
end

--- Shows the server's index status.
function M.status()
  M.execute('indexStatus', nil, function(status, client)
    M.last_status[client.id] = status
    notify(M.format_status(status))
  end)
end

--- Walks every workspace folder again in the background (progress arrives as LspProgress).
function M.reindex()
  M.execute('reindex', nil, function()
    notify('coder-lsp: reindexing in the background')
  end)
end

--- Asks the server to fine-tune the model on the current workspace. A failed run answers with
--- an error, which is shown as it is.
function M.fine_tune()
  local client = M.client()
  local root = client and client.root_dir
  M.execute('fineTune', root and { root = vim.uri_from_fname(root) } or nil, function(result)
    local message = type(result) == 'table' and present(result.message) or 'done'
    notify('coder-lsp: fine-tuning finished: ' .. tostring(message))
  end, { progress = true })
end

--- Progress of the indexing runs in flight, by token.
---@type table<string|integer, { title?: string, message?: string, percentage?: integer }>
local runs = {}

--- A short status for a statusline: "coder-lsp 45%" while indexing, else "".
---@return string
function M.statusline()
  for _, run in pairs(runs) do
    return ('coder-lsp %s'):format(run.percentage and (run.percentage .. '%') or '…')
  end
  return ''
end

local progress_group

--- Follows coder-lsp's `$/progress` (as `LspProgress` events): keeps `statusline()` current and,
--- with `progress = true`, echoes it in the command line.
function M.watch_progress()
  progress_group = vim.api.nvim_create_augroup('coder_lsp_progress', { clear = true })
  vim.api.nvim_create_autocmd('LspProgress', {
    group = progress_group,
    callback = function(event)
      local client = vim.lsp.get_client_by_id(event.data.client_id)
      if client == nil or client.name ~= NAME then
        return
      end
      local params = event.data.params or {}
      local value = params.value or {}
      local token = params.token
      local run = runs[token] or {}
      if value.kind == 'end' then
        runs[token] = nil
      else
        run.title = value.title or run.title
        run.message = value.message or run.message
        run.percentage = value.percentage or run.percentage
        runs[token] = run
      end
      if M.options.progress then
        local text = value.kind == 'end'
            and ('coder-lsp: %s: %s'):format(run.title or 'done', value.message or 'done')
          or ('coder-lsp: %s %s%s'):format(
            run.title or '',
            run.percentage and (run.percentage .. '% ') or '',
            run.message or ''
          )
        vim.api.nvim_echo({ { text } }, false, {})
      end
      vim.cmd.redrawstatus()
    end,
  })
end

--- Defines the user commands (idempotent).
function M.create_commands()
  local command = vim.api.nvim_create_user_command
  command('CoderSearch', function(args)
    local picker = args.bang and 'select' or nil
    if args.args ~= '' then
      M.search(args.args, { picker = picker })
    else
      vim.ui.input({ prompt = 'coder-lsp search: ' }, function(query)
        if query then
          M.search(query, { picker = picker })
        end
      end)
    end
  end, { nargs = '*', bang = true, desc = 'coder-lsp: search the workspace in plain language' })
  command('CoderSimilar', function(args)
    local picker = args.bang and 'select' or nil
    if args.range > 0 then
      M.similar(args.line1, args.line2, { picker = picker })
    else
      M.similar(nil, nil, { picker = picker })
    end
  end, { range = true, bang = true, desc = 'coder-lsp: find code like the selection or the symbol at the cursor' })
  command('CoderContext', function(args)
    if args.args ~= '' then
      M.context(args.args)
    else
      vim.ui.input({ prompt = 'coder-lsp context for: ' }, function(query)
        if query then
          M.context(query)
        end
      end)
    end
  end, { nargs = '*', desc = 'coder-lsp: the code that answers a question, in a scratch buffer' })
  command('CoderStatus', M.status, { desc = 'coder-lsp: index status' })
  command('CoderReindex', M.reindex, { desc = 'coder-lsp: index the workspace again' })
  command('CoderFineTune', M.fine_tune, { desc = 'coder-lsp: fine-tune the model on this workspace' })
end

return M
