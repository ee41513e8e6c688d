//! The end-to-end tests, one module per area, in one test binary (each binary links the whole
//! of coder-lsp, so one binary instead of eleven saves most of their link time). Run one area
//! with `cargo nextest run -p coder-tests cli::`.

mod cli;
mod fine_tune;
mod lsp;
mod mcp;
mod model_switch;
mod nvim;
mod nvim_plugin;
mod qwen2;
mod reliability;
mod trainer_mine;
mod vscode;
