//! Finding a model's files and naming the model by what it is.
//!
//! Resolution order: an explicit directory → the local model cache (filled by `scripts/setup`)
//! → the Hugging Face hub (with the `hub` feature, unless `HF_HUB_OFFLINE` is set) → an error
//! that says how to fix it. The fingerprint hashes config, tokenizer and weights, so vectors of
//! two models are never mixed.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::embed::lora::{ADAPTER_WEIGHTS, Adapter};
use crate::embed::{
    self, DeviceError, DeviceSpec, EmbedError, EmbedHandle, EmbedOptions, EmbedWorker, Instructions,
};
use crate::model_key::{ModelKey, ServedModel};

/// The model used when none is asked for: small, fast on a CPU, 384 dimensions.
pub const DEFAULT_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Short names for the models we document, and the hub ids they stand for.
pub const ALIASES: &[(&str, &str)] = &[
    // CodeR: Qwen2.5-Coder-1.5B tuned for code retrieval, 1536 dimensions; for GPUs.
    ("bge-code-v1", "BAAI/bge-code-v1"),
    ("minilm", DEFAULT_MODEL),
];

/// Bumped whenever our embedding code changes what vectors a given model produces
/// (pooling, truncation, chunk formatting), so old vectors are not reused by mistake.
const EMBEDDING_FORMAT_VERSION: &str = "coder-lsp-embedding-v1";

/// The files a model directory must hold besides its weights (`model.safetensors`, or the
/// shards listed in `model.safetensors.index.json`).
const REQUIRED_FILES: &[&str] = &["config.json", "tokenizer.json"];
/// Files fetched from the hub when present; they refine how the model is used.
const OPTIONAL_FILES: &[&str] = &["sentence_bert_config.json", "1_Pooling/config.json"];
/// Like [`OPTIONAL_FILES`], but fingerprinted only when present: its EOS token decides what a
/// decoder embedder appends to each input.
const TOKENIZER_CONFIG: &str = "tokenizer_config.json";

/// A model whose files are all on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    /// What the user asked for (a hub id or a path), for display.
    pub name: String,
    pub dir: PathBuf,
    /// Length of the model's vectors (its hidden size), read from config.json.
    pub dimensions: usize,
    /// Hex digest naming the model's exact identity; keys stored vectors.
    pub fingerprint: String,
}

/// How to run a model: where, with which query instructions, with which adapter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelOptions {
    pub device: DeviceSpec,
    pub instructions: Instructions,
    /// A LoRA adapter directory (`adapter.safetensors` + `adapter.json`, as `coder-lsp train`
    /// writes it) merged into the model at load time.
    pub adapter: Option<PathBuf>,
}

/// A model whose worker thread is running.
#[derive(Debug)]
pub struct LoadedModel {
    pub resolved: ResolvedModel,
    pub handle: EmbedHandle,
    /// Where the model runs and in what precision, for display (`cpu f32`, `cuda:0 bf16`).
    pub device: String,
    /// The adapter merged into the weights, if any.
    pub adapter: Option<PathBuf>,
    _worker: EmbedWorker,
}

impl LoadedModel {
    /// The identity an index stores this model's vectors under.
    pub fn key(&self) -> ModelKey {
        ModelKey {
            fingerprint: self.resolved.fingerprint.clone(),
            dimensions: self.handle.info().dim,
        }
    }

    /// How an index records this model, to load it again later.
    pub fn served(&self) -> ServedModel {
        ServedModel {
            fingerprint: self.resolved.fingerprint.clone(),
            dir: self.resolved.dir.clone(),
            adapter: self.adapter.clone(),
        }
    }
}

/// Resolves `spec`, loads its weights onto the device and starts the worker thread that owns
/// them. A device this build cannot use fails before anything is read or downloaded.
pub fn load(spec: &str, options: &ModelOptions) -> Result<LoadedModel, ModelError> {
    options.device.check_compiled()?;
    let (resolved, adapter) = resolve_adapted(spec, options.adapter.as_deref())?;
    let device = options.device.open()?;
    let dtype = options.device.dtype();
    let embedder = embed::load_with(
        &resolved.dir,
        &EmbedOptions {
            device,
            dtype,
            instructions: options.instructions.clone(),
            adapter,
            bf16_tiles: true,
            int8_calibration: Some(
                crate::cache::cache_root()
                    .join("int8")
                    .join(format!("{}.json", resolved.fingerprint)),
            ),
        },
    )?;
    let architecture = embedder.info().architecture.clone();
    let (worker, handle) = EmbedWorker::spawn(embedder, options.device.token_budget())?;
    Ok(LoadedModel {
        resolved,
        handle,
        device: describe_device(options.device, dtype, &architecture),
        adapter: options.adapter.clone(),
        _worker: worker,
    })
}

/// `cpu f32`, `cuda:0 bf16`; `cpu f32 · bf16 matmuls on AMX` (or `on AVX512-BF16`) when the
/// CPU's Linear layers run in bf16 ([`embed::bf16`]), and `· int8 after LayerNorms on
/// AVX512-VNNI` (or `on AMX-INT8`, `on AVX-VNNI`, `on AVX2`) when a BERT model's projections after each
/// LayerNorm run in int8 ([`embed::int8`]).
fn describe_device(device: DeviceSpec, dtype: candle_core::DType, architecture: &str) -> String {
    let mut description = format!("{device} {}", dtype.as_str());
    if device == DeviceSpec::Cpu && dtype == candle_core::DType::F32 {
        if let Some(backend) = embed::bf16::backend() {
            description.push_str(&format!(" · bf16 matmuls on {}", backend.name()));
        }
        if architecture == "bert"
            && let Some(kernel) = embed::int8::kernel()
        {
            description.push_str(&format!(" · int8 after LayerNorms on {}", kernel.name()));
        }
    }
    description
}

/// [`resolve`] with an optional adapter directory: the adapter is read and checked against
/// the model, and the fingerprint becomes the adapted model's.
pub fn resolve_adapted(
    spec: &str,
    adapter: Option<&Path>,
) -> Result<(ResolvedModel, Option<Adapter>), ModelError> {
    let mut resolved = resolve(spec)?;
    let Some(dir) = adapter else {
        return Ok((resolved, None));
    };
    let adapter = Adapter::read(dir)?;
    resolved.fingerprint = adapted_fingerprint(&resolved.fingerprint, &adapter)?;
    Ok((resolved, Some(adapter)))
}

/// The fingerprint of base model `base` with `adapter` merged in: the base fingerprint and the
/// adapter's factors hashed together, so vectors of the base and the adapted model are never
/// mixed. An adapter trained on another model is refused.
pub fn adapted_fingerprint(base: &str, adapter: &Adapter) -> Result<String, ModelError> {
    if adapter.meta.base_fingerprint != base {
        return Err(ModelError::AdapterMismatch {
            dir: adapter.dir.clone(),
            expected: adapter.meta.base_fingerprint.clone(),
            found: base.to_string(),
        });
    }
    let path = adapter.dir.join(ADAPTER_WEIGHTS);
    let bytes = fs::read(&path).map_err(|source| ModelError::Io { path, source })?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(base.as_bytes());
    hasher.update(b"\0lora\0");
    // The scale changes the merged weights as much as the factors do.
    hasher.update(&adapter.meta.alpha.to_le_bytes());
    hasher.update(&(adapter.meta.rank as u64).to_le_bytes());
    hasher.update(&bytes);
    Ok(hasher.finalize().to_hex()[..16].to_string())
}

/// Errors finding or identifying a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "model directory {dir} is not usable: {missing} is missing (a model directory needs config.json, tokenizer.json and model.safetensors)"
    )]
    Incomplete { dir: PathBuf, missing: String },
    #[error(
        "model {name:?} is not on this machine (looked in {cache}) and {why}. Run `scripts/setup` to install the default model, or pass `--model DIR` with a directory holding config.json, tokenizer.json and model.safetensors"
    )]
    NotFound {
        name: String,
        cache: PathBuf,
        why: String,
    },
    #[error(
        "adapter {dir} was trained on another model (fingerprint {expected}, this model is {found}); train it again for this model or load it with the model it was made for"
    )]
    AdapterMismatch {
        dir: PathBuf,
        expected: String,
        found: String,
    },
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("model file {path} is malformed: {message}")]
    Malformed { path: PathBuf, message: String },
    #[error("reading model file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub use crate::cache::cache_root;

/// Where a hub model id is kept locally: `<cache>/models/<org>--<name>`.
pub fn local_model_dir(id: &str) -> PathBuf {
    cache_root().join("models").join(id.replace('/', "--"))
}

/// The hub id an alias stands for, or `spec` itself.
pub fn expand_alias(spec: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == spec)
        .map_or(spec, |(_, id)| id)
}

/// Finds the files of `spec` (a directory, a hub id or an alias from [`ALIASES`]) and
/// fingerprints them. A directory of the alias's name wins over the alias.
pub fn resolve(spec: &str) -> Result<ResolvedModel, ModelError> {
    let spec = if Path::new(spec).is_dir() {
        spec
    } else {
        expand_alias(spec)
    };
    let as_path = Path::new(spec);
    let looks_like_path = spec.starts_with('.')
        || spec.starts_with('~')
        || as_path.is_absolute()
        || as_path.is_dir()
        || spec.matches('/').count() > 1;
    let dir = if looks_like_path {
        check_complete(as_path)?;
        as_path.to_path_buf()
    } else {
        let local = local_model_dir(spec);
        if check_complete(&local).is_ok() {
            local
        } else {
            download(spec)?
        }
    };
    let fingerprint = fingerprint(&dir)?;
    let dimensions = read_dimensions(&dir)?;
    Ok(ResolvedModel {
        name: spec.to_string(),
        dir,
        dimensions,
        fingerprint,
    })
}

/// The vector length of a model: its `hidden_size` (BERT and decoder embedders alike).
fn read_dimensions(dir: &Path) -> Result<usize, ModelError> {
    let path = dir.join("config.json");
    let text = fs::read_to_string(&path).map_err(|source| ModelError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("hidden_size").and_then(serde_json::Value::as_u64))
        .map(|d| d as usize)
        .ok_or_else(|| ModelError::Malformed {
            path,
            message: "no numeric hidden_size".into(),
        })
}

fn check_complete(dir: &Path) -> Result<(), ModelError> {
    let missing = |file: &str| ModelError::Incomplete {
        dir: dir.to_path_buf(),
        missing: file.to_string(),
    };
    for file in REQUIRED_FILES {
        if !dir.join(file).is_file() {
            return Err(missing(file));
        }
    }
    // A missing directory has no index file either: it reports model.safetensors missing.
    let weights = embed::weight_files(dir).map_err(|_| missing("model.safetensors.index.json"))?;
    match weights.iter().find(|f| !dir.join(f).is_file()) {
        Some(file) => Err(missing(file)),
        None => Ok(()),
    }
}

/// Every file whose bytes decide the vectors: config, tokenizer, weights, pooling settings.
/// (In this order, which older fingerprints depend on.)
fn fingerprinted_files(dir: &Path) -> Result<Vec<String>, ModelError> {
    let mut files: Vec<String> = REQUIRED_FILES.iter().map(|f| (*f).to_string()).collect();
    files.extend(embed::weight_files(dir)?);
    files.extend(OPTIONAL_FILES.iter().map(|f| (*f).to_string()));
    if dir.join(TOKENIZER_CONFIG).is_file() {
        files.push(TOKENIZER_CONFIG.to_string());
    }
    Ok(files)
}

#[cfg(feature = "hub")]
fn download(id: &str) -> Result<PathBuf, ModelError> {
    let not_found = |why: String| ModelError::NotFound {
        name: id.to_string(),
        cache: local_model_dir(id),
        why,
    };
    if std::env::var_os("HF_HUB_OFFLINE").is_some_and(|v| v != "0" && !v.is_empty()) {
        return Err(not_found("HF_HUB_OFFLINE is set".into()));
    }
    tracing::info!("downloading model {id} from the Hugging Face hub");
    let api = hf_hub::api::sync::ApiBuilder::new()
        .with_cache_dir(cache_root().join("hub"))
        .with_progress(false)
        .build()
        .map_err(|e| not_found(format!("the hub client could not start ({e})")))?;
    let repo = api.model(id.to_string());
    let get = |file: &str| {
        repo.get(file)
            .map_err(|e| not_found(format!("downloading {file} from the hub failed ({e})")))
    };
    let mut dir = None;
    for file in REQUIRED_FILES {
        dir = get(file)?.parent().map(Path::to_path_buf);
    }
    let dir = dir.ok_or_else(|| not_found("the hub returned no files".into()))?;
    // Big checkpoints come in shards named by an index file.
    if repo.get("model.safetensors").is_err() {
        get("model.safetensors.index.json")?;
        for shard in embed::weight_files(&dir)? {
            get(&shard)?;
        }
    }
    for file in OPTIONAL_FILES.iter().chain([&TOKENIZER_CONFIG]) {
        if let Err(e) = repo.get(file) {
            tracing::debug!("optional model file {file} not fetched: {e}");
        }
    }
    check_complete(&dir)?;
    Ok(dir)
}

#[cfg(not(feature = "hub"))]
fn download(id: &str) -> Result<PathBuf, ModelError> {
    Err(ModelError::NotFound {
        name: id.to_string(),
        cache: local_model_dir(id),
        why: "this build has no hub support (feature `hub`)".into(),
    })
}

/// Hashes everything that decides the vectors a model produces.
pub fn fingerprint(dir: &Path) -> Result<String, ModelError> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(EMBEDDING_FORMAT_VERSION.as_bytes());
    for file in fingerprinted_files(dir)? {
        let path = dir.join(&file);
        if !path.is_file() {
            hasher.update(b"\0absent\0");
            continue;
        }
        hasher.update(file.as_bytes());
        let mut reader = fs::File::open(&path).map_err(|source| ModelError::Io {
            path: path.clone(),
            source,
        })?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader.read(&mut buf).map_err(|source| ModelError::Io {
                path: path.clone(),
                source,
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    Ok(hasher.finalize().to_hex()[..16].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_model(dir: &Path, weights: &[u8]) {
        fs::write(
            dir.join("config.json"),
            b"{\"model_type\":\"bert\",\"hidden_size\":8}",
        )
        .unwrap();
        fs::write(dir.join("tokenizer.json"), b"{}").unwrap();
        fs::write(dir.join("model.safetensors"), weights).unwrap();
    }

    #[test]
    fn fingerprint_changes_with_weights_and_config() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        fake_model(a.path(), b"weights-1");
        fake_model(b.path(), b"weights-1");
        let fa = fingerprint(a.path()).unwrap();
        assert_eq!(
            fa,
            fingerprint(b.path()).unwrap(),
            "same files, same fingerprint"
        );
        fake_model(b.path(), b"weights-2");
        assert_ne!(fa, fingerprint(b.path()).unwrap());
        fake_model(b.path(), b"weights-1");
        fs::write(
            b.path().join("sentence_bert_config.json"),
            b"{\"max_seq_length\":128}",
        )
        .unwrap();
        assert_ne!(fa, fingerprint(b.path()).unwrap());
    }

    #[test]
    fn explicit_directory_must_be_complete() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("config.json"), b"{}").unwrap();
        let err = resolve(dir.path().to_str().unwrap()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("tokenizer.json is missing"), "{msg}");
        fake_model(dir.path(), b"w");
        let model = resolve(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(model.dir, dir.path());
        assert_eq!(model.fingerprint.len(), 16);
    }

    #[test]
    fn missing_directory_names_the_fix() {
        let err = resolve("/no/such/model/dir").unwrap_err();
        assert!(err.to_string().contains("config.json is missing"), "{err}");
    }

    #[test]
    fn adapter_changes_vectors_and_fingerprint_and_must_fit_the_base() {
        use crate::embed::InputKind;
        use crate::embed::lora::{AdapterMeta, random_lora};
        let model_dir = crate::embed::tiny_bert_dir();
        let spec = model_dir.to_str().unwrap();
        let base = load(spec, &ModelOptions::default()).unwrap();
        let trainable = crate::embed::load_trainable(
            &model_dir,
            &candle_core::Device::Cpu,
            &Default::default(),
        )
        .unwrap();
        let lora = random_lora(&trainable.lora_modules(), 1);
        let adapter = tempfile::tempdir().unwrap();
        let meta = AdapterMeta::new(&base.resolved.fingerprint, "bert");
        lora.save(adapter.path(), &meta).unwrap();

        let options = ModelOptions {
            adapter: Some(adapter.path().to_path_buf()),
            ..ModelOptions::default()
        };
        let adapted = load(spec, &options).unwrap();
        assert_ne!(adapted.resolved.fingerprint, base.resolved.fingerprint);
        assert_eq!(adapted.resolved.fingerprint.len(), 16);
        let text = vec!["fn parse_config(path: &Path) -> Config".to_string()];
        let a = base
            .handle
            .embed_blocking(text.clone(), InputKind::Document)
            .unwrap();
        let b = adapted
            .handle
            .embed_blocking(text, InputKind::Document)
            .unwrap();
        assert!(crate::embed::cosine(&a[0], &b[0]) < 0.9999);

        // The same adapter bytes give the same fingerprint; other factors another one.
        assert_eq!(
            load(spec, &options).unwrap().resolved.fingerprint,
            adapted.resolved.fingerprint
        );
        random_lora(&trainable.lora_modules(), 2)
            .save(adapter.path(), &meta)
            .unwrap();
        assert_ne!(
            load(spec, &options).unwrap().resolved.fingerprint,
            adapted.resolved.fingerprint
        );

        lora.save(
            adapter.path(),
            &AdapterMeta::new("0123456789abcdef", "bert"),
        )
        .unwrap();
        let err = load(spec, &options).unwrap_err();
        assert!(matches!(err, ModelError::AdapterMismatch { .. }), "{err}");
        assert!(
            err.to_string().contains("trained on another model"),
            "{err}"
        );
    }
}
