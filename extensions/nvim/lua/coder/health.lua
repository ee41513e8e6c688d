-- `:checkhealth coder` runs the same checks as `:checkhealth coder_lsp`.
return require('coder_lsp.health')
