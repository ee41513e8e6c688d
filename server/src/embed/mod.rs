//! Embeddings: the `Embedder` trait, one file per model architecture, and the worker thread
//! that owns the model.
//!
//! Callers never touch a model directly: they send texts to an [`EmbedHandle`]; the
//! [`worker::EmbedWorker`] thread tokenizes, sorts by length, forms batches bounded by a token
//! budget, runs the model and replies on oneshot channels. Nothing here runs on tokio.

pub mod bert;
pub mod tokenizer;
pub mod worker;

use std::path::PathBuf;

pub use tokenizer::ModelTokenizer;

/// Whether a text is a search query or a document (code) to be found.
/// Models with instructions (CodeR) prefix queries; BERT-style models treat both alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Query,
    Document,
}

/// Facts about a loaded model that the rest of the engine needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// Architecture as written in config.json (`bert`, `qwen2`, …).
    pub architecture: String,
    /// Length of each output vector.
    pub dim: usize,
    /// Most tokens one input may have, special tokens included.
    pub max_tokens: usize,
}

/// Errors from loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("model directory {dir}: {message}")]
    Load { dir: PathBuf, message: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("model compute: {0}")]
    Compute(#[from] candle_core::Error),
    #[error("the embedding worker has stopped")]
    WorkerGone,
}

/// A text embedding model. Implementations own their weights; one thread calls them.
pub trait Embedder: Send {
    fn info(&self) -> &ModelInfo;
    /// Token ids for one input, special tokens included, truncated to `info().max_tokens`.
    fn tokenize(&self, text: &str, kind: InputKind) -> Result<Vec<u32>, EmbedError>;
    /// L2-normalised vectors for a batch of tokenized inputs (of any lengths), in order.
    fn embed_tokens(&mut self, batch: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// The MiniLM model directory used by tests: `$CODER_LSP_CACHE_DIR` (or the user cache dir
/// plus `coder-lsp`), then `models/sentence-transformers--all-MiniLM-L6-v2`. Panics with setup
/// instructions when it is missing, so a machine without the model fails loudly.
#[cfg(test)]
pub(crate) fn test_model_dir() -> PathBuf {
    let cache = std::env::var_os("CODER_LSP_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("coder-lsp")))
        .expect("no cache directory: set CODER_LSP_CACHE_DIR");
    let dir = cache.join("models/sentence-transformers--all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file() && dir.join("tokenizer.json").is_file(),
        "test model not found in {}: run `scripts/setup` to download it",
        dir.display()
    );
    dir
}
