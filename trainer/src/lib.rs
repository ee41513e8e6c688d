//! coder-train: adapts coder-lsp's embedding model to one repository.
//!
//! The pipeline follows CodeR's recipe at repository scale: mine (query, positive) pairs from the
//! repository itself, tagged with CodeR's task families; add hard negatives found by the current
//! model; train LoRA adapters with InfoNCE over a curriculum; keep the adapter only if it beats the
//! base model on pairs held out by file; export it beside the index for the server to load.

pub mod cli;
pub mod mine;
pub mod pairs;
