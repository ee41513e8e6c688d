//! LoRA adapters: low-rank updates `ΔW = (alpha/r)·B·A` to a model's attention projections.
//!
//! Training keeps `A` and `B` as [`Var`]s and adds `ΔW` to the frozen weights inside the autograd
//! graph ([`LoraParams`]); an exported adapter is a directory with `adapter.safetensors` (the
//! factors, named after the matrix they modify) and `adapter.json` ([`AdapterMeta`]). Loading a
//! model with an adapter merges `ΔW` into the weights once ([`Adapter`]), so inference with an
//! adapter costs exactly what it costs without one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use super::EmbedError;

/// The factors of an adapter directory.
pub const ADAPTER_WEIGHTS: &str = "adapter.safetensors";
/// The metadata of an adapter directory.
pub const ADAPTER_META: &str = "adapter.json";
/// Bumped when the adapter files change meaning.
pub const ADAPTER_FORMAT_VERSION: u32 = 1;

/// Which attention projection an adapter modifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoraTarget {
    Query,
    Key,
    Value,
    /// The projection after attention (BERT's `attention.output.dense`, Qwen2's `o_proj`).
    AttentionOutput,
}

impl LoraTarget {
    pub const ALL: [LoraTarget; 4] = [
        LoraTarget::Query,
        LoraTarget::Key,
        LoraTarget::Value,
        LoraTarget::AttentionOutput,
    ];
}

/// Rank, scaling and targets of the adapters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// Inner dimension `r` of `B·A`.
    pub rank: usize,
    /// `ΔW` is scaled by `alpha / rank`.
    pub alpha: f64,
    pub targets: Vec<LoraTarget>,
}

impl Default for LoraConfig {
    /// Rank 8, alpha 16 on all four projections: small enough for MiniLM on a CPU.
    fn default() -> Self {
        Self {
            rank: 8,
            alpha: 16.0,
            targets: LoraTarget::ALL.to_vec(),
        }
    }
}

impl LoraConfig {
    /// The defaults for a model of `architecture` (`model_type`): CodeR's rank 32, alpha 64 for
    /// Qwen2 (a GPU-sized model), else [`LoraConfig::default`].
    pub fn for_architecture(architecture: &str) -> Self {
        match architecture {
            "qwen2" => Self {
                rank: 32,
                alpha: 64.0,
                ..Self::default()
            },
            _ => Self::default(),
        }
    }

    /// The factor `alpha / rank` applied to `B·A`.
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }

    /// Rejects settings no adapter can have.
    pub fn validate(&self) -> Result<(), String> {
        if self.rank == 0 {
            return Err("LoRA rank must be at least 1".into());
        }
        if !self.alpha.is_finite() || self.alpha <= 0.0 {
            return Err(format!("LoRA alpha must be positive, got {}", self.alpha));
        }
        if self.targets.is_empty() {
            return Err("LoRA needs at least one target module".into());
        }
        Ok(())
    }
}

/// A weight matrix an adapter can modify: its checkpoint name without `.weight`
/// (`encoder.layer.0.attention.self.query`) and its `(outputs, inputs)` shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoraModule {
    pub name: String,
    pub target: LoraTarget,
    pub inputs: usize,
    pub outputs: usize,
}

/// A small seeded generator (SplitMix64): the same seed gives the same adapter initialisation
/// and, in the trainer, the same batch order on every machine.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_f64() * n as f64) as usize % n.max(1)
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Trainable adapters: `A` `(r, inputs)` starts small and random, `B` `(outputs, r)` at zero,
/// so a fresh adapter leaves the model unchanged.
#[derive(Debug)]
pub struct LoraParams {
    config: LoraConfig,
    factors: Vec<(LoraModule, Var, Var)>,
    /// Deltas are computed outside the autograd graph ([`Self::detached`]).
    detached: bool,
}

impl LoraParams {
    /// Adapters on the `modules` whose target `config` names, initialised from `seed` (`A`
    /// uniform in ±1/√inputs, as PEFT does).
    pub fn new(
        modules: &[LoraModule],
        config: &LoraConfig,
        seed: u64,
        device: &Device,
    ) -> candle_core::Result<Self> {
        config.validate().map_err(candle_core::Error::Msg)?;
        let mut rng = SeededRng::new(seed);
        let mut factors = Vec::new();
        for module in modules
            .iter()
            .filter(|m| config.targets.contains(&m.target))
        {
            let bound = 1.0 / (module.inputs as f64).sqrt();
            let values: Vec<f32> = (0..config.rank * module.inputs)
                .map(|_| ((rng.next_f64() * 2.0 - 1.0) * bound) as f32)
                .collect();
            let a = Var::from_tensor(&Tensor::from_vec(
                values,
                (config.rank, module.inputs),
                device,
            )?)?;
            let b = Var::zeros((module.outputs, config.rank), DType::F32, device)?;
            factors.push((module.clone(), a, b));
        }
        if factors.is_empty() {
            return Err(candle_core::Error::Msg(
                "no module of this model matches the LoRA targets".into(),
            ));
        }
        Ok(Self {
            config: config.clone(),
            factors,
            detached: false,
        })
    }

    /// The same factors (shared: an optimiser step shows in both) whose deltas stay outside the
    /// autograd graph, for forward passes that need no gradient: they then keep no activations
    /// for a backward pass and compute exactly what the tracked ones compute.
    pub fn detached(&self) -> Self {
        Self {
            config: self.config.clone(),
            factors: self.factors.clone(),
            detached: true,
        }
    }

    pub fn config(&self) -> &LoraConfig {
        &self.config
    }

    /// Every trainable tensor, for an optimiser.
    pub fn vars(&self) -> Vec<Var> {
        self.factors
            .iter()
            .flat_map(|(_, a, b)| [a.clone(), b.clone()])
            .collect()
    }

    /// `(alpha/r)·B·A` for the matrix `module`, in the autograd graph; `None` when it has no
    /// adapter.
    pub fn delta(&self, module: &str) -> candle_core::Result<Option<Tensor>> {
        let Some((_, a, b)) = self.factors.iter().find(|(m, _, _)| m.name == module) else {
            return Ok(None);
        };
        let (a, b) = if self.detached {
            (a.as_tensor().detach(), b.as_tensor().detach())
        } else {
            (a.as_tensor().clone(), b.as_tensor().clone())
        };
        Ok(Some((b.matmul(&a)? * self.config.scale())?))
    }

    /// The same factors with their update multiplied by `weight` (alpha scaled by it): at 0.5
    /// the model lies halfway between the base weights and the trained ones. Interpolating
    /// this way keeps most of what fine-tuning learned while giving back part of what it
    /// unlearned (Wortsman et al., "Robust fine-tuning of zero-shot models", 2022); the
    /// fine-tune exports adapters weighted so.
    pub fn weighted(&self, weight: f64) -> candle_core::Result<Self> {
        let config = LoraConfig {
            alpha: self.config.alpha * weight,
            ..self.config.clone()
        };
        config.validate().map_err(candle_core::Error::Msg)?;
        Ok(Self {
            config,
            factors: self.factors.clone(),
            detached: self.detached,
        })
    }

    /// The factors as the adapter file names them: `<module>.lora_a`, `<module>.lora_b`.
    pub fn named_tensors(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (module, a, b) in &self.factors {
            out.insert(format!("{}.lora_a", module.name), a.as_tensor().clone());
            out.insert(format!("{}.lora_b", module.name), b.as_tensor().clone());
        }
        out
    }

    /// Writes `adapter.safetensors` and `adapter.json` into `dir` (created if needed). `meta`'s
    /// rank, alpha and targets are taken from these adapters.
    pub fn save(&self, dir: &Path, meta: &AdapterMeta) -> Result<(), EmbedError> {
        let fail = |message: String| EmbedError::Adapter {
            dir: dir.to_path_buf(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(format!("cannot create ({e})")))?;
        let mut meta = meta.clone();
        meta.format_version = ADAPTER_FORMAT_VERSION;
        meta.rank = self.config.rank;
        meta.alpha = self.config.alpha;
        meta.target_modules = self.config.targets.clone();
        // Write beside, then rename: a reader never sees half a file.
        let weights = dir.join(ADAPTER_WEIGHTS);
        let partial = dir.join(format!("{ADAPTER_WEIGHTS}.partial"));
        candle_core::safetensors::save(&self.named_tensors(), &partial)
            .map_err(|e| fail(format!("{ADAPTER_WEIGHTS}: cannot write ({e})")))?;
        std::fs::rename(&partial, &weights)
            .map_err(|e| fail(format!("{ADAPTER_WEIGHTS}: cannot write ({e})")))?;
        let json = serde_json::to_string_pretty(&meta)
            .map_err(|e| fail(format!("{ADAPTER_META}: {e}")))?;
        std::fs::write(dir.join(ADAPTER_META), json + "\n")
            .map_err(|e| fail(format!("{ADAPTER_META}: cannot write ({e})")))
    }

    /// Sets the factors to those saved in `dir` (resuming a run); the adapter there must have
    /// been made for the same modules and rank.
    pub fn restore(&self, dir: &Path) -> Result<(), EmbedError> {
        let adapter = Adapter::read(dir)?;
        let fail = |message: String| EmbedError::Adapter {
            dir: dir.to_path_buf(),
            message,
        };
        if adapter.factors.len() != self.factors.len() {
            return Err(fail(format!(
                "has {} adapted matrices, this run trains {}",
                adapter.factors.len(),
                self.factors.len()
            )));
        }
        for (module, a, b) in &self.factors {
            let Some((_, saved_a, saved_b)) = adapter
                .factors
                .iter()
                .find(|(name, _, _)| *name == module.name)
            else {
                return Err(fail(format!("has no factors for {}", module.name)));
            };
            if saved_a.dims() != a.dims() || saved_b.dims() != b.dims() {
                return Err(fail(format!("{}: factor shapes differ", module.name)));
            }
            a.set(saved_a)?;
            b.set(saved_b)?;
        }
        Ok(())
    }
}

/// `adapter.json`: what an adapter was made from and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterMeta {
    pub format_version: u32,
    /// The fingerprint of the model the adapter was trained on; loading it onto another model
    /// is refused.
    pub base_fingerprint: String,
    /// `model_type` of the base model (`bert`).
    pub architecture: String,
    pub rank: usize,
    pub alpha: f64,
    pub target_modules: Vec<LoraTarget>,
    /// Training settings, for the record.
    #[serde(default)]
    pub training: serde_json::Value,
    /// Evaluation results, for the record.
    #[serde(default)]
    pub metrics: serde_json::Value,
}

impl AdapterMeta {
    /// Metadata for an adapter of `base_fingerprint`; rank, alpha and targets are filled in by
    /// [`LoraParams::save`].
    pub fn new(base_fingerprint: &str, architecture: &str) -> Self {
        Self {
            format_version: ADAPTER_FORMAT_VERSION,
            base_fingerprint: base_fingerprint.to_string(),
            architecture: architecture.to_string(),
            rank: 0,
            alpha: 0.0,
            target_modules: Vec::new(),
            training: serde_json::Value::Null,
            metrics: serde_json::Value::Null,
        }
    }

    /// Reads and checks `dir/adapter.json`.
    pub fn read(dir: &Path) -> Result<Self, EmbedError> {
        let fail = |message: String| EmbedError::Adapter {
            dir: dir.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(dir.join(ADAPTER_META))
            .map_err(|e| fail(format!("{ADAPTER_META}: cannot read ({e})")))?;
        let meta: Self = serde_json::from_str(&text)
            .map_err(|e| fail(format!("{ADAPTER_META}: invalid ({e})")))?;
        if meta.format_version != ADAPTER_FORMAT_VERSION {
            return Err(fail(format!(
                "{ADAPTER_META}: format version {} is not supported (this build reads {ADAPTER_FORMAT_VERSION})",
                meta.format_version
            )));
        }
        LoraConfig {
            rank: meta.rank,
            alpha: meta.alpha,
            targets: meta.target_modules.clone(),
        }
        .validate()
        .map_err(|e| fail(format!("{ADAPTER_META}: {e}")))?;
        Ok(meta)
    }
}

/// An adapter read from disk, to be merged into a model's weights at load time.
#[derive(Debug, Clone)]
pub struct Adapter {
    pub dir: PathBuf,
    pub meta: AdapterMeta,
    /// `(module, A, B)` in f32 on the CPU, sorted by module name.
    factors: Vec<(String, Tensor, Tensor)>,
}

impl Adapter {
    /// Reads `dir/adapter.json` and `dir/adapter.safetensors`, checking that every matrix has
    /// both factors with the rank the metadata states.
    pub fn read(dir: &Path) -> Result<Self, EmbedError> {
        let meta = AdapterMeta::read(dir)?;
        let fail = |message: String| EmbedError::Adapter {
            dir: dir.to_path_buf(),
            message,
        };
        let bytes = std::fs::read(dir.join(ADAPTER_WEIGHTS))
            .map_err(|e| fail(format!("{ADAPTER_WEIGHTS}: cannot read ({e})")))?;
        let mut tensors =
            candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| {
                fail(format!(
                    "{ADAPTER_WEIGHTS}: not a valid safetensors file ({e})"
                ))
            })?;
        let mut modules: Vec<String> = tensors
            .keys()
            .filter_map(|k| k.strip_suffix(".lora_a").map(str::to_string))
            .collect();
        modules.sort();
        let mut factors = Vec::with_capacity(modules.len());
        for module in modules {
            let a = tensors.remove(&format!("{module}.lora_a"));
            let b = tensors.remove(&format!("{module}.lora_b"));
            let (Some(a), Some(b)) = (a, b) else {
                return Err(fail(format!(
                    "{ADAPTER_WEIGHTS}: {module} has lora_a but no lora_b"
                )));
            };
            let rank_ok = a.dims().len() == 2
                && b.dims().len() == 2
                && a.dims()[0] == meta.rank
                && b.dims()[1] == meta.rank;
            if !rank_ok {
                return Err(fail(format!(
                    "{ADAPTER_WEIGHTS}: {module}: factors of shape {:?} and {:?} do not have rank {}",
                    a.dims(),
                    b.dims(),
                    meta.rank
                )));
            }
            let f32 = |t: Tensor| {
                t.to_dtype(DType::F32)
                    .map_err(|e| fail(format!("{ADAPTER_WEIGHTS}: {module}: {e}")))
            };
            factors.push((module.clone(), f32(a)?, f32(b)?));
        }
        if let Some(extra) = tensors.keys().next() {
            return Err(fail(format!(
                "{ADAPTER_WEIGHTS}: unexpected tensor `{extra}` (expected <module>.lora_a / .lora_b pairs)"
            )));
        }
        if factors.is_empty() {
            return Err(fail(format!("{ADAPTER_WEIGHTS}: holds no factors")));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            meta,
            factors,
        })
    }

    /// Names of the matrices this adapter modifies (without `.weight`).
    pub fn modules(&self) -> impl Iterator<Item = &str> {
        self.factors.iter().map(|(name, _, _)| name.as_str())
    }

    /// `weight + (alpha/r)·B·A` for `module`'s weight `(outputs, inputs)`, in the weight's
    /// dtype and on its device; `None` when the adapter does not touch `module`.
    pub fn merge_into(&self, module: &str, weight: &Tensor) -> Result<Option<Tensor>, EmbedError> {
        let Some((_, a, b)) = self.factors.iter().find(|(name, _, _)| name == module) else {
            return Ok(None);
        };
        let fail = |message: String| EmbedError::Adapter {
            dir: self.dir.clone(),
            message: format!("{module}: {message}"),
        };
        let (outputs, inputs) = weight.dims2().map_err(|e| fail(e.to_string()))?;
        if b.dims()[0] != outputs || a.dims()[1] != inputs {
            return Err(fail(format!(
                "factors {:?}·{:?} do not fit the model's ({outputs}, {inputs}) weight",
                b.dims(),
                a.dims()
            )));
        }
        let scale = self.meta.alpha / self.meta.rank as f64;
        let merged = (|| {
            let delta = (b.matmul(a)? * scale)?.to_device(weight.device())?;
            (weight.to_dtype(DType::F32)? + delta)?.to_dtype(weight.dtype())
        })()
        .map_err(|e| fail(e.to_string()))?;
        Ok(Some(merged))
    }
}

/// Adapters on every module with `B` set to small random values too, so that unlike a fresh
/// adapter they change the model (a trained adapter's state).
#[cfg(test)]
pub(crate) fn random_lora(modules: &[LoraModule], seed: u64) -> LoraParams {
    let lora = LoraParams::new(modules, &LoraConfig::default(), seed, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut rng = SeededRng::new(seed ^ 0xB);
    for (_, _, b) in &lora.factors {
        let values: Vec<f32> = (0..b.elem_count())
            .map(|_| (rng.next_f64() as f32 - 0.5) * 0.05)
            .collect();
        let t = Tensor::from_vec(values, b.dims(), &Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        b.set(&t).unwrap_or_else(|e| panic!("{e}"));
    }
    lora
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::embed::{
        EmbedOptions, Embedder, InputKind, max_diff, tiny_bert_dir, tiny_qwen2_dir,
    };

    const TEXTS: [&str; 3] = [
        "parse a configuration file",
        "fn parse_config(path: &Path) -> Result<Config>",
        "def add(a, b): return a + b",
    ];

    fn tokens(model: &dyn Embedder) -> Vec<Vec<u32>> {
        TEXTS
            .iter()
            .map(|t| model.tokenize(t, InputKind::Document).unwrap())
            .collect()
    }

    /// A loss that depends on every vector: the similarity of the first text to the others.
    fn loss_of(vectors: &Tensor) -> Tensor {
        let first = vectors.narrow(0, 0, 1).unwrap();
        let rest = vectors.narrow(0, 1, 2).unwrap();
        first.matmul(&rest.t().unwrap()).unwrap().sum_all().unwrap()
    }

    fn largest_gradients(lora: &LoraParams, loss: &Tensor) -> Vec<(String, f32, f32)> {
        let grads = loss.backward().unwrap();
        lora.factors
            .iter()
            .map(|(module, a, b)| {
                let size = |v: &Var| {
                    grads
                        .get(v.as_tensor())
                        .map(|g| {
                            g.abs()
                                .unwrap()
                                .max_all()
                                .unwrap()
                                .to_scalar::<f32>()
                                .unwrap()
                        })
                        .unwrap_or(0.0)
                };
                (module.name.clone(), size(a), size(b))
            })
            .collect()
    }

    /// The tiny random BERT and Qwen2, each with how many matrices LoRA can adapt.
    fn trainable_models() -> [(PathBuf, usize); 2] {
        // 2 layers × 4 projections each.
        [(tiny_bert_dir(), 8), (tiny_qwen2_dir(), 8)]
    }

    #[test]
    fn every_lora_factor_gets_a_gradient() {
        for (dir, count) in trainable_models() {
            let model =
                crate::embed::load_trainable(&dir, &Device::Cpu, &Default::default()).unwrap();
            let modules = model.lora_modules();
            assert_eq!(modules.len(), count, "{}", dir.display());
            let batch = tokens(&*model);

            // A fresh adapter (B = 0): B gets gradients, A cannot yet (∂L/∂A = Bᵀ·…).
            let fresh = LoraParams::new(&modules, &LoraConfig::default(), 7, &Device::Cpu).unwrap();
            let loss = loss_of(&model.forward_train(Some(&fresh), &batch).unwrap());
            for (name, _, b) in largest_gradients(&fresh, &loss) {
                assert!(b > 0.0, "{name}.lora_b has a zero gradient");
            }

            // Once B moved, every factor of every module gets one.
            let trained = random_lora(&modules, 7);
            let loss = loss_of(&model.forward_train(Some(&trained), &batch).unwrap());
            for (name, a, b) in largest_gradients(&trained, &loss) {
                assert!(a > 0.0 && b > 0.0, "{name}: gradients A {a}, B {b}");
            }
        }
    }

    #[test]
    fn fresh_adapter_leaves_vectors_unchanged_and_forward_train_matches_inference() {
        for (dir, _) in trainable_models() {
            let mut model =
                crate::embed::load_trainable(&dir, &Device::Cpu, &Default::default()).unwrap();
            let batch = tokens(&*model);
            let plain = model.embed_tokens(&batch).unwrap();
            let fresh = LoraParams::new(
                &model.lora_modules(),
                &LoraConfig::default(),
                1,
                &Device::Cpu,
            )
            .unwrap();
            // With an adapter the forward pass takes the differentiable ops, which compute the
            // same function as the fused ones.
            for lora in [None, Some(&fresh)] {
                let train = model.forward_train(lora, &batch).unwrap();
                let diff = max_diff(&plain, &train.to_vec2::<f32>().unwrap());
                assert!(diff < 1e-5, "{}: differs by {diff}", dir.display());
            }
        }
    }

    #[test]
    fn a_detached_adapter_computes_the_same_vectors_without_a_graph() {
        for (dir, _) in trainable_models() {
            let model =
                crate::embed::load_trainable(&dir, &Device::Cpu, &Default::default()).unwrap();
            let batch = tokens(&*model);
            let lora = random_lora(&model.lora_modules(), 4);
            let tracked = model.forward_train(Some(&lora), &batch).unwrap();
            let detached = model.forward_train(Some(&lora.detached()), &batch).unwrap();
            assert!(tracked.track_op(), "{}: in the graph", dir.display());
            assert!(!detached.track_op(), "{}: no graph", dir.display());
            assert_eq!(
                tracked.to_vec2::<f32>().unwrap(),
                detached.to_vec2::<f32>().unwrap(),
                "{}",
                dir.display()
            );
        }
    }

    #[test]
    fn a_weighted_adapter_scales_the_update_and_saves_its_alpha() {
        let model =
            crate::embed::load_trainable(&tiny_bert_dir(), &Device::Cpu, &Default::default())
                .unwrap();
        let lora = random_lora(&model.lora_modules(), 5);
        let half = lora.weighted(0.5).unwrap();
        assert_eq!(half.config().alpha, lora.config().alpha / 2.0);
        let module = &model.lora_modules()[0].name;
        let full = lora.delta(module).unwrap().unwrap();
        let halved = half.delta(module).unwrap().unwrap();
        let diff = ((full * 0.5).unwrap() - halved)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-7, "differs by {diff}");
        // What is saved carries the weighted alpha, so the server merges the same update.
        let dir = tempfile::tempdir().unwrap();
        half.save(dir.path(), &AdapterMeta::new("fp", "bert"))
            .unwrap();
        assert_eq!(AdapterMeta::read(dir.path()).unwrap().alpha, 8.0);
        assert!(lora.weighted(0.0).is_err(), "a zero weight is no adapter");
    }

    #[test]
    fn merged_adapter_matches_the_unmerged_forward() {
        for (dir, count) in trainable_models() {
            let model =
                crate::embed::load_trainable(&dir, &Device::Cpu, &Default::default()).unwrap();
            let batch = tokens(&*model);
            let lora = random_lora(&model.lora_modules(), 3);
            let unmerged = model
                .forward_train(Some(&lora), &batch)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();

            let adapter_dir = tempfile::tempdir().unwrap();
            let architecture = model.info().architecture.clone();
            lora.save(
                adapter_dir.path(),
                &AdapterMeta::new("base-fp", &architecture),
            )
            .unwrap();
            let adapter = Adapter::read(adapter_dir.path()).unwrap();
            assert_eq!(adapter.meta.rank, 8);
            assert_eq!(adapter.modules().count(), count);
            let mut options = EmbedOptions::exact(&Device::Cpu);
            options.adapter = Some(adapter);
            let mut merged_model = crate::embed::load_with(&dir, &options).unwrap();
            let merged = merged_model.embed_tokens(&batch).unwrap();
            let diff = max_diff(&unmerged, &merged);
            assert!(
                diff < 1e-5,
                "{architecture}: merged and unmerged differ by {diff}"
            );

            let exact = EmbedOptions::exact(&Device::Cpu);
            let mut base = crate::embed::load_with(&dir, &exact).unwrap();
            let changed = max_diff(&base.embed_tokens(&batch).unwrap(), &merged);
            assert!(
                changed > 1e-3,
                "{architecture}: the adapter changed vectors by only {changed}"
            );
        }
    }

    #[test]
    fn restore_brings_back_saved_factors() {
        let model =
            crate::embed::load_trainable(&tiny_bert_dir(), &Device::Cpu, &Default::default())
                .unwrap();
        let saved = random_lora(&model.lora_modules(), 5);
        let dir = tempfile::tempdir().unwrap();
        saved
            .save(dir.path(), &AdapterMeta::new("fp", "bert"))
            .unwrap();
        let other = LoraParams::new(
            &model.lora_modules(),
            &LoraConfig::default(),
            9,
            &Device::Cpu,
        )
        .unwrap();
        other.restore(dir.path()).unwrap();
        for (name, tensor) in saved.named_tensors() {
            let restored = &other.named_tensors()[&name];
            let diff = (restored - &tensor)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap();
            assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0, "{name}");
        }
        let small = LoraParams::new(
            &model.lora_modules(),
            &LoraConfig {
                rank: 4,
                ..LoraConfig::default()
            },
            9,
            &Device::Cpu,
        )
        .unwrap();
        assert!(small.restore(dir.path()).is_err());
    }

    #[test]
    fn qwen2_adapters_merge_too() {
        let modules: Vec<LoraModule> = (0..2)
            .flat_map(|layer| {
                [
                    ("q_proj", LoraTarget::Query, 64),
                    ("k_proj", LoraTarget::Key, 32),
                    ("v_proj", LoraTarget::Value, 32),
                    ("o_proj", LoraTarget::AttentionOutput, 64),
                ]
                .map(|(name, target, outputs)| LoraModule {
                    name: format!("layers.{layer}.self_attn.{name}"),
                    target,
                    inputs: 64,
                    outputs,
                })
            })
            .collect();
        let lora = random_lora(&modules, 11);
        let dir = tempfile::tempdir().unwrap();
        lora.save(dir.path(), &AdapterMeta::new("fp", "qwen2"))
            .unwrap();
        let mut base = crate::embed::load(&tiny_qwen2_dir(), &Device::Cpu).unwrap();
        let mut options = EmbedOptions::new(&Device::Cpu);
        options.adapter = Some(Adapter::read(dir.path()).unwrap());
        let mut adapted = crate::embed::load_with(&tiny_qwen2_dir(), &options).unwrap();
        let ids = vec![vec![5, 17, 42, 0]];
        let changed = max_diff(
            &base.embed_tokens(&ids).unwrap(),
            &adapted.embed_tokens(&ids).unwrap(),
        );
        assert!(changed > 1e-4, "changed by {changed}");

        // A BERT adapter on Qwen2 is refused, naming the problem.
        let bert_dir = tempfile::tempdir().unwrap();
        lora.save(bert_dir.path(), &AdapterMeta::new("fp", "bert"))
            .unwrap();
        options.adapter = Some(Adapter::read(bert_dir.path()).unwrap());
        let err = crate::embed::load_with(&tiny_qwen2_dir(), &options)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("`bert` model"), "{err}");
    }

    #[test]
    fn malformed_adapters_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = Adapter::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("adapter.json: cannot read"), "{err}");
        let mut meta = AdapterMeta::new("fp", "bert");
        meta.rank = 8;
        meta.alpha = 16.0;
        meta.target_modules = vec![LoraTarget::Query];
        meta.format_version = 99;
        std::fs::write(
            dir.path().join(ADAPTER_META),
            serde_json::to_string(&meta).unwrap(),
        )
        .unwrap();
        let err = Adapter::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("format version 99"), "{err}");
        meta.format_version = ADAPTER_FORMAT_VERSION;
        std::fs::write(
            dir.path().join(ADAPTER_META),
            serde_json::to_string(&meta).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join(ADAPTER_WEIGHTS), b"junk").unwrap();
        let err = Adapter::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a valid safetensors"), "{err}");
    }

    #[test]
    fn seeded_rng_is_reproducible() {
        let mut a = SeededRng::new(42);
        let mut b = SeededRng::new(42);
        let mut items: Vec<u32> = (0..20).collect();
        let mut same = items.clone();
        a.shuffle(&mut items);
        b.shuffle(&mut same);
        assert_eq!(items, same);
        assert_ne!(items, (0..20).collect::<Vec<u32>>());
    }
}
