//! The `coder-train` binary: parse the command line, set up logging to stderr, hand over.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Training allocates even more short-lived activations than inference.
    coder_lsp::memory::reuse_large_buffers();
    let cli = coder_train::cli::Cli::parse();
    // stdout carries the summary (JSON with --json); logs and progress go to stderr.
    coder_lsp::cli::init_logging();
    match coder_train::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
