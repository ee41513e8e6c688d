//! Finding a model's files and naming the model by what it is.
//!
//! Resolution order: an explicit directory → the local model cache (filled by `scripts/setup`)
//! → the Hugging Face hub (with the `hub` feature, unless `HF_HUB_OFFLINE` is set) → an error
//! that says how to fix it. The fingerprint hashes config, tokenizer and weights, so vectors of
//! two models are never mixed.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::embed::{self, EmbedError, EmbedHandle, EmbedWorker};
use crate::index::ModelKey;

/// The model used when none is asked for: small, fast on a CPU, 384 dimensions.
pub const DEFAULT_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Bumped whenever our embedding code changes what vectors a given model produces
/// (pooling, truncation, chunk formatting), so old vectors are not reused by mistake.
const EMBEDDING_FORMAT_VERSION: &str = "coder-lsp-embedding-v1";

/// The files a model directory must hold.
const REQUIRED_FILES: &[&str] = &["config.json", "tokenizer.json", "model.safetensors"];
/// Files fetched from the hub when present; they refine how the model is used.
const OPTIONAL_FILES: &[&str] = &["sentence_bert_config.json", "1_Pooling/config.json"];

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

/// Tokens per model batch on the CPU: large enough to keep the cores busy, small enough that
/// padding stays low once inputs are sorted by length.
pub const CPU_TOKEN_BUDGET: usize = 4096;

/// A model whose worker thread is running.
#[derive(Debug)]
pub struct LoadedModel {
    pub resolved: ResolvedModel,
    pub handle: EmbedHandle,
    /// Where the model runs, for display (`cpu`).
    pub device: String,
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
}

/// Resolves `spec`, loads its weights and starts the worker thread that owns them.
pub fn load(spec: &str) -> Result<LoadedModel, ModelError> {
    let resolved = resolve(spec)?;
    let embedder = embed::load(&resolved.dir, &candle_core::Device::Cpu)?;
    let (worker, handle) = EmbedWorker::spawn(embedder, CPU_TOKEN_BUDGET)?;
    Ok(LoadedModel {
        resolved,
        handle,
        device: "cpu".to_string(),
        _worker: worker,
    })
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
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("model file {path} is malformed: {message}")]
    Malformed { path: PathBuf, message: String },
    #[error("reading model file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The root of coder-lsp's caches: `$CODER_LSP_CACHE_DIR`, else the platform cache dir.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("CODER_LSP_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("coder-lsp")
}

/// Where a hub model id is kept locally: `<cache>/models/<org>--<name>`.
pub fn local_model_dir(id: &str) -> PathBuf {
    cache_root().join("models").join(id.replace('/', "--"))
}

/// Finds the files of `spec` (a directory or a hub id) and fingerprints them.
pub fn resolve(spec: &str) -> Result<ResolvedModel, ModelError> {
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
    for file in REQUIRED_FILES {
        if !dir.join(file).is_file() {
            return Err(ModelError::Incomplete {
                dir: dir.to_path_buf(),
                missing: (*file).to_string(),
            });
        }
    }
    Ok(())
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
    let mut dir = None;
    for file in REQUIRED_FILES {
        let path = repo
            .get(file)
            .map_err(|e| not_found(format!("downloading {file} from the hub failed ({e})")))?;
        dir = path.parent().map(Path::to_path_buf);
    }
    for file in OPTIONAL_FILES {
        if let Err(e) = repo.get(file) {
            tracing::debug!("optional model file {file} not fetched: {e}");
        }
    }
    let dir = dir.ok_or_else(|| not_found("the hub returned no files".into()))?;
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
    for file in REQUIRED_FILES.iter().chain(OPTIONAL_FILES) {
        let path = dir.join(file);
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
}
