//! coder-lsp: semantic code search over a workspace.
//!
//! The engine is plain Rust data in, plain Rust data out: `workspace` walks the files, `symbols`
//! turns source into symbols, `chunk` turns symbols into the text that is embedded, `embed` owns
//! the model on its own thread, `index` keeps the SQLite store and the vector index in step, and
//! `search` answers queries. The CLI (`cli`), the language server (`lsp`) and the MCP server
//! (`mcp`) drive the engine.

pub mod bench;
pub mod chunk;
pub mod cli;
pub mod context;
pub mod embed;
pub mod engine;
pub mod finetune;
pub mod index;
#[cfg(feature = "lsp")]
pub mod lsp;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod memory;
pub mod model;
pub mod search;
pub mod symbols;
pub mod words;
pub mod workspace;
