-- Default configuration of the coder-lsp language server for `vim.lsp.enable('coder_lsp')`
-- (Neovim 0.11+). `require('coder_lsp').setup(opts)` layers the user's options over it with
-- `vim.lsp.config('coder_lsp', ...)`; see `:help coder-lsp`.

---@type vim.lsp.Config
return {
  cmd = { 'coder-lsp', 'serve' },
  -- No `filetypes`: coder-lsp indexes every text file of the workspace, and answers for any
  -- buffer (unsaved edits are indexed too).
  root_markers = { '.coderignore', '.git', '.hg', '.jj' },
  -- Without a workspace there is nothing to index.
  workspace_required = true,
}
