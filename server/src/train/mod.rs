//! The trainer (`coder-lsp train`): adapts coder-lsp's embedding model to one repository.
//!
//! It runs in a process of its own: the server's `finetune` starts this very executable with
//! `train fine-tune` as a child, so that a crash or an out-of-memory kill in training never
//! takes the language server down. Nothing here is used by the server in-process.
//!
//! The pipeline follows CodeR's recipe at repository scale: mine (query, positive) pairs from the
//! repository itself, tagged with CodeR's task families; add hard negatives found by the current
//! model; train LoRA adapters with InfoNCE over a curriculum; keep the adapter only if it beats the
//! base model on pairs held out by file; export it beside the index for the server to load.

pub mod cli;
pub mod encode;
pub mod eval;
pub mod finetune;
pub mod mine;
pub mod negatives;
pub mod pairs;
pub mod served;
pub mod training;

pub use finetune::{FineTuneConfig, FineTuneReport, fine_tune};

/// Tiny hand-made pairs and the tiny random-weight BERT and Qwen2 of `testdata/`, for tests:
/// training, mining and evaluation are mechanics that need a model, not MiniLM's judgement.
#[cfg(test)]
pub(crate) mod testing {
    pub(crate) use crate::embed::{tiny_bert_dir, tiny_qwen2_dir};
    use crate::train::pairs::{Pair, PairSource, TaskFamily};

    /// The model in `dir` on the CPU with the default instructions, inputs cut to `max_tokens`.
    pub fn encoder(dir: &std::path::Path, max_tokens: usize) -> crate::train::encode::Encoder {
        crate::train::encode::Encoder::load(
            dir,
            max_tokens,
            &candle_core::Device::Cpu,
            &crate::embed::Instructions::default(),
        )
        .unwrap_or_else(|e| panic!("loading {}: {e:#}", dir.display()))
    }

    pub fn pair(family: TaskFamily, query: &str, positive: &str) -> Pair {
        Pair {
            family,
            source: PairSource::DocComment,
            query: query.into(),
            positive: positive.into(),
            file: "src/lib.rs".into(),
            symbol: positive.split('(').next().unwrap_or(positive).into(),
            negatives: Vec::new(),
        }
    }

    /// Six pairs, covering all four task families.
    pub fn pairs() -> Vec<Pair> {
        use TaskFamily::*;
        vec![
            pair(
                Text2Code,
                "read the settings file from disk",
                "fn load_config(path: &Path) -> Config { parse(read(path)) }",
            ),
            pair(
                Text2Code,
                "add two numbers",
                "fn add(a: i32, b: i32) -> i32 { a + b }",
            ),
            pair(
                Hybrid,
                "open socket connect",
                "fn connect(addr: &str) -> TcpStream { TcpStream::connect(addr).unwrap() }",
            ),
            pair(
                Code2Code,
                "assert_eq!(reverse(\"ab\"), \"ba\");",
                "fn reverse(s: &str) -> String { s.chars().rev().collect() }",
            ),
            pair(
                Code2Text,
                "fn checksum(data: &[u8]) -> u32",
                "Computes a CRC32 checksum of the bytes.",
            ),
            pair(
                Code2Code,
                "let total = sum_all(&values);",
                "fn sum_all(v: &[i64]) -> i64 { v.iter().sum() }",
            ),
        ]
    }
}
