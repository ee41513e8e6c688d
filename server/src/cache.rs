//! Where coder-lsp keeps what it can rebuild: models, indexes, hub downloads. One leaf module
//! so that the model and the index agree on it without importing each other.

use std::path::PathBuf;

/// The root of coder-lsp's caches: `$CODER_LSP_CACHE_DIR`, else the platform cache dir.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("CODER_LSP_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("coder-lsp")
}
