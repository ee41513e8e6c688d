-- Installs the Neovim plugin the plain way, as doc/coder-lsp.txt says (a link in a 'packpath'
-- folder, then :packadd), in a real headless Neovim, and checks that it works without a plugin
-- manager: the commands exist, setup() with no options finds `coder-lsp` on PATH, and the
-- server attaches to a file of the project. Run by tests/tests/e2e/nvim_plugin.rs; writes one JSON
-- object to $CODER_LSP_TEST_OUT.
--
-- Environment: CODER_LSP_TEST_ROOT, CODER_LSP_TEST_INDEX_DIR, CODER_LSP_TEST_OUT,
-- CODER_LSP_TEST_PLUGIN (extensions/nvim), CODER_LSP_TEST_PACK (an empty folder for the pack),
-- and PATH with the folder of the coder-lsp binary first.

local result = {}
local out_path = os.getenv('CODER_LSP_TEST_OUT')

local ok, err = pcall(function()
  local pack = os.getenv('CODER_LSP_TEST_PACK')
  local opt = pack .. '/pack/coder/opt'
  vim.fn.mkdir(opt, 'p')
  assert(vim.uv.fs_symlink(os.getenv('CODER_LSP_TEST_PLUGIN'), opt .. '/coder-lsp'))
  vim.opt.packpath:prepend(pack)

  result.commands_before_packadd = vim.fn.exists(':CoderSearch') == 2
  vim.cmd.packadd('coder-lsp')
  result.commands_after_packadd = vim.fn.exists(':CoderSearch') == 2

  -- No server_path, no cmd: the binary is found on PATH.
  require('coder_lsp').setup({
    init_options = { indexDir = os.getenv('CODER_LSP_TEST_INDEX_DIR') },
    -- The fixture copy is not a git repository.
    root_markers = { '.gitignore' },
  })
  vim.cmd('filetype on')
  vim.cmd.edit(vim.uv.fs_realpath(os.getenv('CODER_LSP_TEST_ROOT')) .. '/src/retry.rs')
  local attached = vim.wait(60000, function()
    local clients = vim.lsp.get_clients({ name = 'coder_lsp', bufnr = 0 })
    return #clients > 0 and clients[1].initialized
  end, 50)
  result.attached = attached
  local client = vim.lsp.get_clients({ name = 'coder_lsp' })[1]
  result.cmd = client and client.config.cmd or nil
  result.server_name = client and client.server_info and client.server_info.name or nil
  if client then
    client:stop(true)
    vim.wait(5000, function()
      return client:is_stopped()
    end, 50)
  end
end)

if not ok then
  result.error = tostring(err)
end
local file = assert(io.open(out_path, 'w'))
file:write(vim.json.encode(result))
file:close()
vim.cmd('qall!')
