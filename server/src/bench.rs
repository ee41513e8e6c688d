//! `coder-lsp bench`: the measurements behind `bench/RESULTS.md`.
//!
//! Nothing here is asserted in tests as a speed; the runner (`bench/run`) compares ratios taken in
//! one run on one machine. Three measurements live in the binary because they need its internals:
//!
//! - `embed`: our embedder's throughput on given snippets, its padding waste, and the FLOP/s it
//!   reaches as a share of this machine's matmul peak (measured here, with the same candle
//!   kernels, just before);
//! - `matmul`: that peak on its own;
//! - `recall`: HNSW top-10 recall against exact search over an index's real vectors, with the
//!   settings the index uses.
//!
//! `scale` ([`scale`]) builds a large synthetic workspace and its index for `bench/scale.py`.

pub mod scale;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::embed::{EmbedStats, InputKind};
use crate::index::store::IndexStore;
use crate::index::vectors::{SearchMethod, VectorIndex};
use crate::model::{self, ModelOptions};

/// Floating-point operations a transformer embedder spends, from its config.json.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FlopModel {
    /// Per computed (padded) token: every Linear layer, 2 FLOPs per multiply-add.
    pub per_token: f64,
    /// Per (query token, key token) pair of one sequence: attention scores and their use on
    /// the values, over all layers.
    pub per_token_pair: f64,
}

impl FlopModel {
    /// Reads the sizes of a BERT or Qwen2 model from its parsed config.json.
    pub fn from_config(config: &serde_json::Value) -> Result<Self> {
        let get = |name: &str| {
            config
                .get(name)
                .and_then(serde_json::Value::as_u64)
                .map(|v| v as f64)
                .with_context(|| format!("config.json has no integer `{name}`"))
        };
        let hidden = get("hidden_size")?;
        let layers = get("num_hidden_layers")?;
        let intermediate = get("intermediate_size")?;
        let heads = get("num_attention_heads")?;
        let architecture = config
            .get("model_type")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let per_layer = match architecture {
            // q, k, v and output projections, then up and down.
            "bert" => 4.0 * hidden * hidden + 2.0 * hidden * intermediate,
            // Grouped-query attention: k and v project to fewer heads; gate, up and down.
            "qwen2" => {
                let kv_heads = get("num_key_value_heads").unwrap_or(heads);
                let kv = hidden / heads * kv_heads;
                2.0 * hidden * hidden + 2.0 * hidden * kv + 3.0 * hidden * intermediate
            }
            other => bail!("no FLOP model for architecture `{other}`"),
        };
        Ok(Self {
            per_token: 2.0 * layers * per_layer,
            // QKᵀ and the weighted sum of V: hidden multiply-adds each, per pair and layer.
            per_token_pair: 2.0 * 2.0 * layers * hidden,
        })
    }

    /// FLOPs of the batches summarised by `stats`.
    pub fn flops(&self, stats: &EmbedStats) -> f64 {
        self.per_token * stats.padded_tokens as f64
            + self.per_token_pair * stats.padded_token_pairs as f64
    }
}

/// The matmul peak: the best FLOP/s reached on f32 matrix products shaped like the embedder's
/// (a batch of token rows times a weight matrix) and on large square products, by candle's own
/// matmul and by the system BLAS when one is loaded.
#[derive(Debug, Clone, Serialize)]
pub struct MatmulReport {
    pub threads: usize,
    /// (m, k, n, GFLOP/s) for each shape tried, with candle's matmul.
    pub shapes: Vec<(usize, usize, usize, f64)>,
    /// The system BLAS in use (`embed::blas`), if any.
    pub blas: Option<String>,
    /// The same shapes through the system BLAS.
    pub blas_shapes: Vec<(usize, usize, usize, f64)>,
    /// The same shapes in bf16 (`embed::bf16`) on each backend the CPU has (AMX tiles,
    /// AVX512-BF16), whether or not this process chose it.
    pub bf16: Vec<Bf16Shapes>,
    /// The best of all the paths embedding may take here (f32, the system BLAS, the bf16
    /// backend in use).
    pub peak_gflops: f64,
}

/// [`MatmulReport`]'s shapes on one bf16 backend.
#[derive(Debug, Clone, Serialize)]
pub struct Bf16Shapes {
    pub backend: &'static str,
    /// Whether this process's matmuls run on it ([`crate::embed::bf16::backend`]).
    pub in_use: bool,
    /// (m, k, n, GFLOP/s) for each shape.
    pub shapes: Vec<(usize, usize, usize, f64)>,
}

/// Measures [`MatmulReport`] on the CPU, running each shape for about `per_shape`.
pub fn matmul_peak(per_shape: Duration) -> Result<MatmulReport> {
    let device = Device::Cpu;
    let shapes = [
        (4096, 384, 1152),
        (4096, 384, 1536),
        (4096, 1536, 384),
        (1024, 1024, 1024),
        (2048, 2048, 2048),
    ];
    let blas = crate::embed::blas::system();
    let mut results = Vec::new();
    let mut blas_results = Vec::new();
    let backends = crate::embed::bf16::Backend::supported();
    let mut bf16: Vec<Bf16Shapes> = backends
        .iter()
        .map(|&backend| Bf16Shapes {
            backend: backend.name(),
            in_use: crate::embed::bf16::backend() == Some(backend),
            shapes: Vec::new(),
        })
        .collect();
    for (m, k, n) in shapes {
        let a = Tensor::randn(0f32, 1.0, (m, k), &device)?;
        // (n, k) like a Linear weight: the product is a · wᵀ.
        let w = Tensor::randn(0f32, 1.0, (n, k), &device)?;
        let gflops = |product: &dyn Fn() -> candle_core::Result<Tensor>| -> Result<f64> {
            // One untimed product warms caches and the thread pool.
            product()?;
            let started = Instant::now();
            let mut runs = 0u32;
            while runs < 3 || started.elapsed() < per_shape {
                product()?.dims2()?;
                runs += 1;
            }
            let seconds = started.elapsed().as_secs_f64();
            Ok(2.0 * (m * k * n) as f64 * f64::from(runs) / seconds / 1e9)
        };
        results.push((m, k, n, gflops(&|| a.matmul(&w.t()?))?));
        if blas.is_some() {
            blas_results.push((
                m,
                k,
                n,
                gflops(&|| crate::embed::blas::linear_no_bias(&a, &w))?,
            ));
        }
        if !backends.is_empty() {
            // Packed once, as a model's weights are at load time.
            let packed = crate::embed::bf16::PackedWeight::from_tensor(&w)?;
            let values = a.flatten_all()?.to_vec1::<f32>()?;
            for (&backend, report) in backends.iter().zip(&mut bf16) {
                let product = || {
                    let out = packed.x_wt_on(backend, &values, m)?;
                    Tensor::from_vec(out, (m, n), &device)
                };
                report.shapes.push((m, k, n, gflops(&product)?));
            }
        }
    }
    let peak_gflops = results
        .iter()
        .chain(&blas_results)
        .chain(bf16.iter().filter(|b| b.in_use).flat_map(|b| &b.shapes))
        .map(|r| r.3)
        .fold(0.0, f64::max);
    Ok(MatmulReport {
        threads: candle_core::utils::get_num_threads(),
        shapes: results,
        blas: blas.map(|b| b.name.clone()),
        blas_shapes: blas_results,
        bf16,
        peak_gflops,
    })
}

/// What `bench embed` measured.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedReport {
    pub model: String,
    pub device: String,
    /// The system BLAS the Linear layers ran on, if any (`embed::blas`).
    pub blas: Option<String>,
    pub snippets: usize,
    pub seconds: f64,
    pub snippets_per_second: f64,
    /// Real tokens (special tokens included, padding excluded) per second.
    pub tokens_per_second: f64,
    pub real_tokens: u64,
    pub padded_tokens: u64,
    pub batches: u64,
    /// Share of computed tokens that were padding.
    pub padding_waste: f64,
    /// FLOPs the model computed (padding included) per second.
    pub achieved_gflops: f64,
    pub matmul: Option<MatmulReport>,
    /// `achieved_gflops / matmul.peak_gflops`.
    pub flop_share: Option<f64>,
}

/// Reads snippets: a JSON-lines file of strings (or of objects with a `text` field).
pub fn read_snippets(path: &Path) -> Result<Vec<String>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut snippets = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), n + 1))?;
        let text = match &value {
            serde_json::Value::String(s) => s.clone(),
            other => other
                .get("text")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .with_context(|| {
                    format!(
                        "{}:{}: expected a string or an object with `text`",
                        path.display(),
                        n + 1
                    )
                })?,
        };
        snippets.push(text);
    }
    if snippets.is_empty() {
        bail!("{}: no snippets", path.display());
    }
    Ok(snippets)
}

/// Embeds `snippets` as documents with the model `spec`, the way indexing does (one request per
/// `request_size` snippets, the worker batching them), after a short untimed warm-up.
pub fn embed_throughput(
    spec: &str,
    options: &ModelOptions,
    snippets: &[String],
    request_size: usize,
    matmul: Option<MatmulReport>,
    vectors: Option<&Path>,
) -> Result<EmbedReport> {
    let loaded = model::load(spec, options).with_context(|| format!("loading model {spec}"))?;
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(loaded.resolved.dir.join("config.json"))
            .context("reading the model's config.json")?,
    )
    .context("parsing the model's config.json")?;
    let flop_model = FlopModel::from_config(&config)?;
    let handle = &loaded.handle;

    let warm_up: Vec<String> = snippets.iter().take(16).cloned().collect();
    handle.embed_blocking(warm_up, InputKind::Document)?;

    let before = handle.stats();
    let started = Instant::now();
    let mut kept = Vec::new();
    for request in snippets.chunks(request_size.max(1)) {
        let embedded = handle.embed_blocking(request.to_vec(), InputKind::Document)?;
        if vectors.is_some() {
            kept.extend(embedded);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let stats = handle.stats().since(&before);
    if let Some(path) = vectors {
        write_vectors(path, &kept)?;
    }

    let achieved_gflops = flop_model.flops(&stats) / seconds / 1e9;
    let flop_share = matmul.as_ref().map(|m| achieved_gflops / m.peak_gflops);
    Ok(EmbedReport {
        model: loaded.resolved.name.clone(),
        device: loaded.device.clone(),
        blas: crate::embed::blas::system().map(|b| b.name.clone()),
        snippets: snippets.len(),
        seconds,
        snippets_per_second: snippets.len() as f64 / seconds,
        tokens_per_second: stats.real_tokens as f64 / seconds,
        real_tokens: stats.real_tokens,
        padded_tokens: stats.padded_tokens,
        batches: stats.batches,
        padding_waste: stats.padding_waste(),
        achieved_gflops,
        matmul,
        flop_share,
    })
}

/// Writes vectors one after the other as little-endian f32s (what `bench embed --vectors` gives
/// and `bench/perf.py`'s reference files hold), whole ([`crate::files::replace`]).
fn write_vectors(path: &Path, vectors: &[Vec<f32>]) -> Result<()> {
    let bytes: Vec<u8> = vectors
        .iter()
        .flatten()
        .flat_map(|value| value.to_le_bytes())
        .collect();
    crate::files::replace(path, &bytes)
        .with_context(|| format!("writing the vectors to {}", path.display()))
}

/// What `bench recall` measured.
#[derive(Debug, Clone, Serialize)]
pub struct RecallReport {
    pub vectors: usize,
    pub dimensions: usize,
    pub queries: usize,
    pub k: usize,
    /// Mean share of the exact top-k that HNSW found.
    pub recall: f64,
    pub hnsw_ms_p50: f64,
    pub hnsw_ms_p99: f64,
    pub exact_ms_p50: f64,
    pub exact_ms_p99: f64,
    /// Seconds to build the HNSW graph.
    pub build_seconds: f64,
}

/// HNSW recall@`k` against exact search over the vectors `store` holds for `fingerprint`, with
/// `queries` of those vectors (evenly spread) as queries.
pub fn hnsw_recall(
    store_path: &Path,
    fingerprint: &str,
    queries: usize,
    k: usize,
) -> Result<RecallReport> {
    let (store, _) = IndexStore::open_as(store_path, false)
        .with_context(|| format!("opening {}", store_path.display()))?;
    let mut vectors: Vec<(i64, Vec<f32>)> = Vec::new();
    store.for_each_vector(fingerprint, |id, v| {
        vectors.push((id, v));
        Ok(())
    })?;
    let Some(dimensions) = vectors.first().map(|(_, v)| v.len()) else {
        bail!(
            "{} holds no vectors of model {fingerprint}",
            store_path.display()
        );
    };
    let started = Instant::now();
    // Built in memory only; nothing is saved at this path.
    let mut index = VectorIndex::new(&store_path.with_extension("recall.usearch"), dimensions)?;
    for (id, v) in &vectors {
        index.upsert(*id, v)?;
    }
    let build_seconds = started.elapsed().as_secs_f64();

    let step = (vectors.len() / queries.max(1)).max(1);
    let mut found = 0usize;
    let mut wanted = 0usize;
    let (mut hnsw_ms, mut exact_ms) = (Vec::new(), Vec::new());
    for (_, query) in vectors.iter().step_by(step).take(queries) {
        let t = Instant::now();
        let exact = index.search_with(query, k, SearchMethod::Exact)?;
        exact_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let approximate = index.search_with(query, k, SearchMethod::Hnsw)?;
        hnsw_ms.push(t.elapsed().as_secs_f64() * 1e3);
        wanted += exact.len();
        found += exact
            .iter()
            .filter(|(id, _)| approximate.iter().any(|(other, _)| other == id))
            .count();
    }
    let asked = hnsw_ms.len();
    Ok(RecallReport {
        vectors: vectors.len(),
        dimensions,
        queries: asked,
        k,
        recall: found as f64 / wanted.max(1) as f64,
        hnsw_ms_p50: percentile(&mut hnsw_ms, 0.50),
        hnsw_ms_p99: percentile(&mut hnsw_ms, 0.99),
        exact_ms_p50: percentile(&mut exact_ms, 0.50),
        exact_ms_p99: percentile(&mut exact_ms, 0.99),
        build_seconds,
    })
}

/// The `q` quantile (nearest rank) of `values`; 0 for none.
pub fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// The store of the index in `index_dir`.
pub fn store_path(index_dir: &Path) -> PathBuf {
    index_dir.join("store.sqlite")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn minilm_flops_match_its_size() {
        let config = serde_json::json!({
            "model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6,
            "intermediate_size": 1536, "num_attention_heads": 12
        });
        let model = FlopModel::from_config(&config).unwrap();
        // 6 layers × (4·384² + 2·384·1536) multiply-adds = 10.6 M, so 21.2 MFLOP per token.
        assert_eq!(
            model.per_token,
            2.0 * 6.0 * (4.0 * 384.0 * 384.0 + 2.0 * 384.0 * 1536.0)
        );
        assert_eq!(model.per_token_pair, 4.0 * 6.0 * 384.0);
        let stats = EmbedStats {
            inputs: 2,
            batches: 1,
            real_tokens: 15,
            padded_tokens: 20,
            padded_token_pairs: 200,
        };
        assert_eq!(
            model.flops(&stats),
            model.per_token * 20.0 + model.per_token_pair * 200.0
        );
    }

    #[test]
    fn qwen2_counts_grouped_kv_heads() {
        let config = serde_json::json!({
            "model_type": "qwen2", "hidden_size": 64, "num_hidden_layers": 2,
            "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2
        });
        let model = FlopModel::from_config(&config).unwrap();
        let per_layer = 2.0 * 64.0 * 64.0 + 2.0 * 64.0 * 32.0 + 3.0 * 64.0 * 128.0;
        assert_eq!(model.per_token, 2.0 * 2.0 * per_layer);
        let unknown = serde_json::json!({"model_type": "t5", "hidden_size": 1,
            "num_hidden_layers": 1, "intermediate_size": 1, "num_attention_heads": 1});
        assert!(FlopModel::from_config(&unknown).is_err());
        assert!(FlopModel::from_config(&serde_json::json!({})).is_err());
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut values, 0.5), 50.0);
        assert_eq!(percentile(&mut values, 0.99), 99.0);
        assert_eq!(percentile(&mut [3.0], 0.99), 3.0);
        assert_eq!(percentile(&mut [], 0.5), 0.0);
    }

    #[test]
    fn snippets_are_strings_or_objects_with_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, "\"fn a() {}\"\n\n{\"text\": \"def b(): pass\"}\n").unwrap();
        assert_eq!(
            read_snippets(&path).unwrap(),
            vec!["fn a() {}", "def b(): pass"]
        );
        std::fs::write(&path, "{\"code\": 1}\n").unwrap();
        let err = format!("{:#}", read_snippets(&path).unwrap_err());
        assert!(err.contains("s.jsonl:1"), "{err}");
        std::fs::write(&path, "\n").unwrap();
        assert!(read_snippets(&path).is_err());
        assert!(read_snippets(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn recall_is_measured_over_stored_vectors() {
        use crate::chunk::Chunk;
        use crate::index::store::FileRecord;
        use crate::symbols::SymbolKind;

        let dir = tempfile::tempdir().unwrap();
        let store_file = dir.path().join("store.sqlite");
        let (mut store, _) = IndexStore::open_as(&store_file, true).unwrap();
        // 400 unit vectors in 16 dimensions from a fixed pseudo-random sequence.
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let mut chunks = Vec::new();
        let mut vectors = Vec::new();
        for i in 0..400 {
            let text = format!("fn f{i}() {{}}");
            let hash = *blake3::hash(text.as_bytes()).as_bytes();
            let v: Vec<f32> = (0..16).map(|_| next()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            vectors.push((hash, v.iter().map(|x| x / norm).collect::<Vec<f32>>()));
            chunks.push(Chunk {
                name: format!("f{i}"),
                kind: SymbolKind::Function,
                container: None,
                start_line: 1,
                end_line: 1,
                signature: format!("fn f{i}()"),
                text,
                text_hash: hash,
                declaration: false,
            });
        }
        let record = FileRecord {
            path: "a.rs",
            hash: [1; 32],
            size: 1,
            mtime_ns: 1,
            language: "rust",
        };
        store.replace_file(&record, &chunks, "model-a").unwrap();
        store.insert_vectors("model-a", &vectors).unwrap();
        drop(store);

        let report = hnsw_recall(&store_file, "model-a", 50, 10).unwrap();
        assert_eq!((report.vectors, report.dimensions), (400, 16));
        assert_eq!((report.queries, report.k), (50, 10));
        // A graph this small is searched almost exhaustively: recall is (close to) perfect.
        assert!(report.recall > 0.95, "{report:?}");
        assert!(report.recall <= 1.0);

        // Another model's vectors are not there: an error that names it.
        let err = hnsw_recall(&store_file, "model-b", 10, 10).unwrap_err();
        assert!(err.to_string().contains("model-b"), "{err}");
    }
}
