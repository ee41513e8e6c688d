-- coder-lsp for Neovim: the user commands (:CoderSearch, :CoderSimilar, :CoderContext,
-- :CoderStatus, :CoderReindex, :CoderFineTune). The server itself is configured by
-- lsp/coder_lsp.lua and started by `vim.lsp.enable('coder_lsp')` or
-- `require('coder_lsp').setup()`. See `:help coder-lsp`.

if vim.g.loaded_coder_lsp then
  return
end
vim.g.loaded_coder_lsp = true

if vim.fn.has('nvim-0.11') ~= 1 then
  vim.notify('coder-lsp needs Neovim 0.11 or newer', vim.log.levels.ERROR)
  return
end

require('coder_lsp').create_commands()
require('coder_lsp').watch_progress()
