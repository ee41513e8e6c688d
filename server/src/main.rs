//! The `coder-lsp` binary: parse the command line, set up logging to stderr, hand over.

use clap::Parser;

fn main() -> std::process::ExitCode {
    coder_lsp::memory::reuse_large_buffers();
    let cli = coder_lsp::cli::Cli::parse();
    coder_lsp::cli::init_logging();
    match coder_lsp::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", coder_lsp::cli::error_line(&err));
            std::process::ExitCode::FAILURE
        }
    }
}
