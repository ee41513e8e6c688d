//! Embeddings: the `Embedder` trait, one file per model architecture, and the worker thread
//! that owns the model.
//!
//! Callers never touch a model directly: they send texts to an [`EmbedHandle`]; the
//! [`worker::EmbedWorker`] thread tokenizes, sorts by length, forms batches bounded by a token
//! budget, runs the model and replies on oneshot channels. Nothing here runs on tokio.

pub mod bert;
pub(crate) mod bf16;
pub(crate) mod blas;
pub mod device;
pub mod instruct;
pub(crate) mod int8;
pub(crate) mod kernels;
mod layers;
pub mod lora;
pub mod qwen2;
mod strips;
pub mod tokenizer;
mod weights;
pub mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

pub use device::{DeviceError, DeviceSpec};
pub use instruct::{Instructions, QueryTask};
pub use tokenizer::{ModelTokenizer, chunker, chunker_for_model_dir};
pub use worker::{EmbedHandle, EmbedStats, EmbedWorker};

/// Whether a text is a search query (and what it looks for) or a document to be found.
/// Models with instructions (CodeR) prefix queries; BERT-style models treat both alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// What a user searches with: a question, or code when looking for similar code.
    Query(QueryTask),
    /// Code or text that searches should find.
    Document,
}

/// How to load a model: where it runs, in what precision, with which query instructions.
#[derive(Debug, Clone)]
pub struct EmbedOptions {
    pub device: Device,
    /// Precision of weights and activations (f32 on the CPU, f16/bf16 on GPUs).
    pub dtype: DType,
    /// Used only by instruction-tuned models.
    pub instructions: Instructions,
    /// A LoRA adapter merged into the weights at load time.
    pub adapter: Option<lora::Adapter>,
    /// CPU inference may run the Linear layers (and attention) in bf16 where the CPU has AMX
    /// tiles or AVX512-BF16 ([`bf16`]); false keeps every matmul in f32.
    pub bf16_tiles: bool,
    /// Where a BERT model's int8 calibration ([`int8`]) is kept between loads: a file named
    /// after the model's fingerprint. `None` measures it at every load that runs int8.
    pub int8_calibration: Option<PathBuf>,
}

impl EmbedOptions {
    /// f32 with the default instructions on `device`.
    pub fn new(device: &Device) -> Self {
        Self {
            device: device.clone(),
            dtype: DType::F32,
            instructions: Instructions::default(),
            adapter: None,
            bf16_tiles: true,
            int8_calibration: None,
        }
    }

    /// Like [`EmbedOptions::new`], with every matmul in f32 even where bf16 ones exist: for
    /// comparisons against reference outputs that must agree to f32 precision.
    pub fn exact(device: &Device) -> Self {
        Self {
            bf16_tiles: false,
            ..Self::new(device)
        }
    }
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
    /// Whether queries are embedded with an instruction (so a query differs from the same
    /// text embedded as a document).
    pub query_instructions: bool,
}

/// Errors from loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model directory is missing, incomplete or holds something this code cannot run.
    #[error("model directory {dir}: {message}")]
    Load { dir: PathBuf, message: String },
    /// The tokenizer rejected an input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A tensor operation failed while running the model.
    #[error("model compute: {0}")]
    Compute(#[from] candle_core::Error),
    /// A LoRA adapter directory is missing, malformed or does not fit the model.
    #[error("adapter {dir}: {message}")]
    Adapter { dir: PathBuf, message: String },
    /// The worker thread could not be started.
    #[error("cannot start the embedding worker thread: {0}")]
    Spawn(std::io::Error),
    /// The worker thread has shut down (or died); no more requests can be served.
    #[error("the embedding worker has stopped")]
    WorkerGone,
}

impl EmbedError {
    fn load(dir: &Path, message: impl Into<String>) -> Self {
        Self::Load {
            dir: dir.to_path_buf(),
            message: message.into(),
        }
    }

    /// A copy for a second caller hit by the same failure (the wrapped errors are not `Clone`).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Self::Load { dir, message } => Self::Load {
                dir: dir.clone(),
                message: message.clone(),
            },
            Self::Adapter { dir, message } => Self::Adapter {
                dir: dir.clone(),
                message: message.clone(),
            },
            Self::Tokenizer(message) => Self::Tokenizer(message.clone()),
            Self::Compute(e) => Self::Compute(candle_core::Error::Msg(e.to_string())),
            Self::Spawn(e) => Self::Spawn(std::io::Error::new(e.kind(), e.to_string())),
            Self::WorkerGone => Self::WorkerGone,
        }
    }
}

/// A text embedding model. Implementations own their weights; one thread calls them.
pub trait Embedder: Send {
    /// What the model is and how long its inputs may be.
    fn info(&self) -> &ModelInfo;
    /// The tokenizer the model was trained with (padding and truncation disabled).
    fn tokenizer(&self) -> &ModelTokenizer;
    /// Token ids for one input, special tokens included, truncated to `info().max_tokens`.
    fn tokenize(&self, text: &str, kind: InputKind) -> Result<Vec<u32>, EmbedError>;
    /// L2-normalised vectors for a batch of tokenized inputs (of any lengths), in order.
    fn embed_tokens(&mut self, batch: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Loads the model in `model_dir` (a Hugging Face / sentence-transformers layout), choosing the
/// implementation from `model_type` in config.json.
///
/// Every problem with the directory (missing or malformed files, unsupported architecture,
/// wrong tensor shapes) comes back as [`EmbedError::Load`] naming the file at fault.
pub fn load(model_dir: &Path, device: &Device) -> Result<Box<dyn Embedder>, EmbedError> {
    load_with(model_dir, &EmbedOptions::new(device))
}

/// Like [`load`], with a device, precision and instructions of the caller's choosing.
pub fn load_with(
    model_dir: &Path,
    options: &EmbedOptions,
) -> Result<Box<dyn Embedder>, EmbedError> {
    let (architecture, config) = read_architecture(model_dir)?;
    if let Some(adapter) = &options.adapter
        && adapter.meta.architecture != architecture.name()
    {
        return Err(EmbedError::Adapter {
            dir: adapter.dir.clone(),
            message: format!(
                "was made for a `{}` model, {} is `{}`",
                adapter.meta.architecture,
                model_dir.display(),
                architecture.name()
            ),
        });
    }
    match architecture {
        Architecture::Bert => Ok(Box::new(bert::BertEmbedder::load(
            model_dir, &config, options,
        )?)),
        Architecture::Qwen2 => Ok(Box::new(qwen2::Qwen2Embedder::load(
            model_dir, &config, options,
        )?)),
    }
}

/// What a model needs to know to cut text the way it will be embedded.
#[derive(Debug, Clone)]
pub struct TextLimits {
    pub tokenizer: ModelTokenizer,
    /// Most tokens one input may have, special tokens included (as [`ModelInfo::max_tokens`]).
    pub max_tokens: usize,
}

/// The tokenizer and input limit of the model in `model_dir`, read without loading its weights:
/// enough to chunk text exactly as [`load_with`]'s embedder would (used by the trainer to mine
/// chunk texts without reading gigabytes of weights).
pub fn read_text_limits(model_dir: &Path) -> Result<TextLimits, EmbedError> {
    let (architecture, config) = read_architecture(model_dir)?;
    match architecture {
        Architecture::Bert => bert::text_limits(model_dir, &config),
        Architecture::Qwen2 => qwen2::text_limits(model_dir, &config),
    }
}

/// `model_type` of the model in `model_dir` (`bert`, `qwen2`), read from its config.json.
pub fn architecture_of(model_dir: &Path) -> Result<&'static str, EmbedError> {
    read_architecture(model_dir).map(|(architecture, _)| architecture.name())
}

/// The model families this crate can run.
enum Architecture {
    Bert,
    Qwen2,
}

impl Architecture {
    /// As config.json's `model_type` spells it.
    fn name(&self) -> &'static str {
        match self {
            Architecture::Bert => "bert",
            Architecture::Qwen2 => "qwen2",
        }
    }
}

/// Reads config.json and the architecture it names (`model_type`).
fn read_architecture(model_dir: &Path) -> Result<(Architecture, serde_json::Value), EmbedError> {
    if !model_dir.is_dir() {
        return Err(EmbedError::load(
            model_dir,
            "does not exist or is not a directory",
        ));
    }
    let config = read_json(model_dir, "config.json")?;
    let model_type = config
        .get("model_type")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| EmbedError::load(model_dir, "config.json: no `model_type` string"))?;
    let architecture = match model_type {
        "bert" => Architecture::Bert,
        "qwen2" => Architecture::Qwen2,
        other => {
            return Err(EmbedError::load(
                model_dir,
                format!(
                    "config.json: unsupported architecture `{other}` (model_type); supported: bert, qwen2"
                ),
            ));
        }
    };
    Ok((architecture, config))
}

/// A model the trainer can fine-tune: loaded in f32 without an adapter, with a forward pass
/// that adds LoRA updates to the frozen weights inside the autograd graph.
pub trait Trainable: Embedder {
    /// The matrices a LoRA adapter can modify, named as adapter files and
    /// [`lora::Adapter`] merging name them.
    fn lora_modules(&self) -> Vec<lora::LoraModule>;
    /// Unit vectors `(batch, dim)` with `lora`'s updates added to the weights, kept in the
    /// autograd graph so that a loss over them trains the adapters. Without `lora` these are
    /// [`Embedder::embed_tokens`]' vectors as a tensor.
    fn forward_train(
        &self,
        lora: Option<&lora::LoraParams>,
        batch: &[Vec<u32>],
    ) -> Result<Tensor, EmbedError>;
    /// Like [`Embedder::tokenize`], cut to `max_tokens` (at most `info().max_tokens`) tokens,
    /// special tokens included: training works on shorter inputs than inference.
    fn tokenize_within(
        &self,
        text: &str,
        kind: InputKind,
        max_tokens: usize,
    ) -> Result<Vec<u32>, EmbedError>;
}

/// The model in `model_dir` for fine-tuning ([`Trainable`]): BERT or Qwen2, in f32 throughout
/// (no bf16 matmuls) so that evaluation before and after training is exact, with the query
/// `instructions` the adapter will be used with.
pub fn load_trainable(
    model_dir: &Path,
    device: &Device,
    instructions: &Instructions,
) -> Result<Box<dyn Trainable>, EmbedError> {
    let (architecture, config) = read_architecture(model_dir)?;
    let options = EmbedOptions {
        instructions: instructions.clone(),
        ..EmbedOptions::exact(device)
    };
    match architecture {
        Architecture::Bert => Ok(Box::new(bert::BertEmbedder::load(
            model_dir, &config, &options,
        )?)),
        Architecture::Qwen2 => Ok(Box::new(qwen2::Qwen2Embedder::load(
            model_dir, &config, &options,
        )?)),
    }
}

/// The model's `tokenizer.json`.
fn read_tokenizer(dir: &Path) -> Result<ModelTokenizer, EmbedError> {
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Err(EmbedError::load(dir, "tokenizer.json: file not found"));
    }
    ModelTokenizer::from_file(&path)
}

/// Parses `dir/name` as JSON, reporting which file could not be read or parsed.
fn read_json(dir: &Path, name: &str) -> Result<serde_json::Value, EmbedError> {
    let text = std::fs::read_to_string(dir.join(name))
        .map_err(|e| EmbedError::load(dir, format!("{name}: cannot read ({e})")))?;
    serde_json::from_str(&text)
        .map_err(|e| EmbedError::load(dir, format!("{name}: invalid JSON ({e})")))
}

/// The safetensors files holding a model's weights: `model.safetensors`, or the shards named
/// by `model.safetensors.index.json` (large checkpoints are split).
pub fn weight_files(dir: &Path) -> Result<Vec<String>, EmbedError> {
    const SINGLE: &str = "model.safetensors";
    const INDEX: &str = "model.safetensors.index.json";
    if dir.join(SINGLE).is_file() || !dir.join(INDEX).is_file() {
        return Ok(vec![SINGLE.to_string()]);
    }
    let index = read_json(dir, INDEX)?;
    let map = index
        .get("weight_map")
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| EmbedError::load(dir, format!("{INDEX}: no `weight_map` object")))?;
    let mut files: Vec<String> = Vec::new();
    for file in map.values() {
        let file = file
            .as_str()
            .filter(|f| !f.contains('/') && !f.contains('\\') && f.ends_with(".safetensors"))
            .ok_or_else(|| EmbedError::load(dir, format!("{INDEX}: bad shard name {file}")))?;
        if !files.iter().any(|f| f == file) {
            files.push(file.to_string());
        }
    }
    if files.is_empty() {
        return Err(EmbedError::load(dir, format!("{INDEX}: names no shards")));
    }
    files.sort();
    Ok(files)
}

/// Every tensor of the model's safetensors file(s), on `device` in their stored precision.
fn read_safetensors(dir: &Path, device: &Device) -> Result<HashMap<String, Tensor>, EmbedError> {
    let mut tensors = HashMap::new();
    for file in weight_files(dir)? {
        // Read rather than mmap: mmap needs `unsafe` (denied in this workspace) and reading
        // costs little next to the time a model spends running.
        let bytes = std::fs::read(dir.join(&file))
            .map_err(|e| EmbedError::load(dir, format!("{file}: cannot read ({e})")))?;
        let part = candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| {
            EmbedError::load(dir, format!("{file}: not a valid safetensors file ({e})"))
        })?;
        tensors.extend(part);
    }
    Ok(tensors)
}

/// [`check_token_batch`] for a training step, which must have inputs.
fn check_training_batch(
    batch: &[Vec<u32>],
    max_positions: usize,
    vocab: usize,
) -> Result<(), EmbedError> {
    if batch.is_empty() {
        return Err(EmbedError::Tokenizer(
            "an empty batch has no vectors".into(),
        ));
    }
    check_token_batch(batch, max_positions, vocab)
}

/// Rejects inputs a model cannot run (empty, too long, ids outside the vocabulary) with a
/// message, rather than letting candle fail deep inside or pooling divide by zero.
fn check_token_batch(
    batch: &[Vec<u32>],
    max_positions: usize,
    vocab: usize,
) -> Result<(), EmbedError> {
    for ids in batch {
        if ids.is_empty() {
            return Err(EmbedError::Tokenizer(
                "an input has no tokens at all".into(),
            ));
        }
        if ids.len() > max_positions {
            return Err(EmbedError::Tokenizer(format!(
                "input of {} tokens is longer than the model's {max_positions} positions",
                ids.len(),
            )));
        }
        if let Some(id) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(EmbedError::Tokenizer(format!(
                "token id {id} is outside the vocabulary of {vocab}"
            )));
        }
    }
    Ok(())
}

/// Scales each row to unit length (rows of zeros stay zero, as in torch's `normalize`).
fn l2_normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
    x.broadcast_div(&norm)
}

/// The input limit sentence-transformers applies (`max_seq_length` in
/// sentence_bert_config.json), if the directory has one. It is usually below the position
/// table size (256 vs 512 for MiniLM) and is what the reference vectors were made with.
fn sentence_transformers_max_len(dir: &Path) -> Result<Option<usize>, EmbedError> {
    const FILE: &str = "sentence_bert_config.json";
    if !dir.join(FILE).exists() {
        return Ok(None);
    }
    let config = read_json(dir, FILE)?;
    match config.get("max_seq_length") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n > 0)
            .map(Some)
            .ok_or_else(|| {
                EmbedError::load(
                    dir,
                    format!("{FILE}: max_seq_length must be a positive integer, got {value}"),
                )
            }),
    }
}

/// The MiniLM model directory, for the few tests that check MiniLM itself (its vectors, its
/// speed, its judgement); every other test takes [`tiny_bert_dir`]. `$CODER_LSP_CACHE_DIR` (or
/// the user cache dir plus `coder-lsp`), then `models/sentence-transformers--all-MiniLM-L6-v2`.
/// Panics with setup instructions when it is missing, so a machine without the model fails
/// loudly.
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

/// The tiny random-weight BERT sentence model made by `scripts/make_tiny_bert.py`, laid out like
/// MiniLM's directory: for every test that needs a BERT model but not MiniLM's judgement.
#[cfg(test)]
pub(crate) fn tiny_bert_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tiny-bert")
}

/// The tiny random-weight Qwen2 checkpoint made by `scripts/make_tiny_qwen2.py`.
#[cfg(test)]
pub(crate) fn tiny_qwen2_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tiny-qwen2")
}

/// Cosine similarity in f64, for comparing vectors in tests.
#[cfg(test)]
pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// The largest difference between corresponding components of two lists of vectors.
#[cfg(test)]
pub(crate) fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len(), "as many vectors on both sides");
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The lowest cosine between corresponding vectors of `expected` and `got`.
#[cfg(test)]
pub(crate) fn worst_cosine<'a>(expected: impl Iterator<Item = &'a [f32]>, got: &[Vec<f32>]) -> f64 {
    let mut n = 0;
    let worst = expected
        .zip(got)
        .map(|(e, g)| {
            n += 1;
            cosine(e, g)
        })
        .fold(f64::MAX, f64::min);
    assert_eq!(n, got.len(), "as many vectors as expected");
    worst
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn load_err(dir: &Path) -> String {
        match load(dir, &Device::Cpu) {
            Ok(_) => panic!("{} loaded but should not", dir.display()),
            Err(EmbedError::Load { message, .. }) => message,
            Err(other) => panic!("expected a load error, got {other}"),
        }
    }

    /// A copy of the tiny BERT with some files replaced or removed.
    fn broken_copy(edit: impl FnOnce(&Path)) -> tempfile::TempDir {
        let src = tiny_bert_dir();
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "config.json",
            "tokenizer.json",
            "sentence_bert_config.json",
            "model.safetensors",
        ] {
            std::fs::copy(src.join(name), dir.path().join(name)).unwrap();
        }
        edit(dir.path());
        dir
    }

    #[test]
    fn loads_a_bert_with_sentence_transformers_limit() {
        let model = load(&tiny_bert_dir(), &Device::Cpu).unwrap();
        assert_eq!(
            model.info(),
            &ModelInfo {
                architecture: "bert".into(),
                dim: 32,
                max_tokens: 256,
                query_instructions: false,
            }
        );
        assert_eq!(model.tokenizer().special_tokens_count(), 2);
    }

    #[test]
    fn text_limits_without_weights_match_the_loaded_models() {
        for dir in [tiny_bert_dir(), tiny_qwen2_dir()] {
            let model = load(&dir, &Device::Cpu).unwrap();
            let limits = read_text_limits(&dir).unwrap();
            assert_eq!(
                limits.max_tokens,
                model.info().max_tokens,
                "{}",
                dir.display()
            );
            assert_eq!(
                limits.tokenizer.special_tokens_count(),
                model.tokenizer().special_tokens_count(),
                "{}",
                dir.display()
            );
        }
        // The weights are not needed at all.
        let no_weights =
            broken_copy(|d| std::fs::remove_file(d.join("model.safetensors")).unwrap());
        assert_eq!(read_text_limits(no_weights.path()).unwrap().max_tokens, 256);
    }

    #[test]
    fn max_tokens_falls_back_to_position_table() {
        let dir =
            broken_copy(|d| std::fs::remove_file(d.join("sentence_bert_config.json")).unwrap());
        let model = load(dir.path(), &Device::Cpu).unwrap();
        assert_eq!(model.info().max_tokens, 512);
    }

    #[test]
    fn missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let message = load_err(&dir.path().join("nope"));
        assert!(message.contains("not a directory"), "{message}");
    }

    #[test]
    fn missing_or_malformed_config() {
        let dir = broken_copy(|d| std::fs::remove_file(d.join("config.json")).unwrap());
        let message = load_err(dir.path());
        assert!(message.contains("config.json: cannot read"), "{message}");

        let dir = broken_copy(|d| std::fs::write(d.join("config.json"), "{ not json").unwrap());
        let message = load_err(dir.path());
        assert!(message.contains("config.json: invalid JSON"), "{message}");

        let dir = broken_copy(|d| {
            std::fs::write(d.join("config.json"), r#"{"model_type": "bert"}"#).unwrap()
        });
        let message = load_err(dir.path());
        assert!(message.contains("config.json"), "{message}");
    }

    #[test]
    fn unsupported_architecture() {
        let dir = broken_copy(|d| {
            std::fs::write(d.join("config.json"), r#"{"model_type": "gpt2"}"#).unwrap()
        });
        let message = load_err(dir.path());
        assert!(
            message.contains("unsupported architecture `gpt2`") && message.contains("bert, qwen2"),
            "{message}"
        );
    }

    #[test]
    fn missing_tokenizer() {
        let dir = broken_copy(|d| std::fs::remove_file(d.join("tokenizer.json")).unwrap());
        let message = load_err(dir.path());
        assert!(message.contains("tokenizer.json"), "{message}");
    }

    #[test]
    fn malformed_sentence_bert_config() {
        let dir = broken_copy(|d| {
            std::fs::write(
                d.join("sentence_bert_config.json"),
                r#"{"max_seq_length": "long"}"#,
            )
            .unwrap()
        });
        let message = load_err(dir.path());
        assert!(message.contains("sentence_bert_config.json"), "{message}");
    }

    #[test]
    fn missing_or_truncated_weights() {
        let dir = broken_copy(|d| std::fs::remove_file(d.join("model.safetensors")).unwrap());
        let message = load_err(dir.path());
        assert!(message.contains("model.safetensors"), "{message}");

        let dir = broken_copy(|d| {
            let path = d.join("model.safetensors");
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        });
        let message = load_err(dir.path());
        assert!(message.contains("model.safetensors"), "{message}");

        let dir = broken_copy(|d| std::fs::write(d.join("model.safetensors"), b"").unwrap());
        let message = load_err(dir.path());
        assert!(message.contains("model.safetensors"), "{message}");
    }

    #[test]
    fn wrong_tensor_shapes() {
        // A config that promises a bigger model than the weights hold.
        let dir = broken_copy(|d| {
            let path = d.join("config.json");
            let mut config: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            config["intermediate_size"] = 2048.into();
            std::fs::write(&path, config.to_string()).unwrap();
        });
        let message = load_err(dir.path());
        assert!(
            message.contains("model.safetensors") && message.contains("intermediate.dense"),
            "{message}"
        );
    }

    #[test]
    fn bad_token_batches_are_errors_not_panics() {
        // BERT ([CLS] … [SEP]) and Qwen2 (… EOS), both with 512 positions.
        for (dir, valid) in [(tiny_bert_dir(), [2, 3]), (tiny_qwen2_dir(), [1, 0])] {
            let mut model = load(&dir, &Device::Cpu).unwrap();
            for batch in [
                vec![valid.to_vec(), vec![]],
                vec![vec![valid[0], 999_999, valid[1]]],
                vec![vec![valid[0]; 513]],
            ] {
                let err = model.embed_tokens(&batch).unwrap_err();
                assert!(matches!(err, EmbedError::Tokenizer(_)), "{err}");
            }
            // The model still works afterwards.
            assert_eq!(model.embed_tokens(&[valid.to_vec()]).unwrap().len(), 1);
            assert!(model.embed_tokens(&[]).unwrap().is_empty());
        }
    }
}
