//! A BERT encoder (all-MiniLM-L6-v2 and relatives) written on plain candle-core tensor ops.
//!
//! Owning the forward pass lets us tune it for CPU and, later, run a backward pass through it
//! for repository-specific fine-tuning; so every step is made of differentiable ops (LayerNorm
//! included) and activations stay 2-D `(batch*seq, hidden)` around each matmul.

use std::path::Path;

use candle_core::{D, DType, Device, Tensor};
use serde::Deserialize;

use super::bf16;
use super::int8;
use super::kernels::{self, Kernels};
use super::layers::{LayerNorm, Linear, MASK_VALUE};
use super::lora::{LoraModule, LoraParams, LoraTarget};
use super::weights::Weights;
use super::{
    EmbedError, EmbedOptions, Embedder, InputKind, ModelInfo, ModelTokenizer, TextLimits, Trainable,
};

/// Most attention-score floats computed at once (4 MB), see `BertModel::layer_forward`.
const ATTENTION_CHUNK_FLOATS: usize = 1 << 20;

/// The config.json fields a BERT encoder needs.
#[derive(Debug, Clone, Deserialize)]
struct BertConfig {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    #[serde(default = "default_hidden_act")]
    hidden_act: String,
    max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    pad_token_id: u32,
    #[serde(default = "default_position_embedding_type")]
    position_embedding_type: String,
}

fn default_hidden_act() -> String {
    "gelu".into()
}
fn default_type_vocab_size() -> usize {
    2
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_position_embedding_type() -> String {
    "absolute".into()
}

/// How token vectors become one text vector (from sentence-transformers' 1_Pooling config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pooling {
    /// Average of the non-padding tokens (MiniLM).
    Mean,
    /// The first (`[CLS]`) token.
    Cls,
}

/// A loaded BERT model with its tokenizer: the [`Embedder`] for `model_type: "bert"`.
pub struct BertEmbedder {
    info: ModelInfo,
    tokenizer: ModelTokenizer,
    model: BertModel,
    pooling: Pooling,
}

impl std::fmt::Debug for BertEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEmbedder")
            .field("info", &self.info)
            .field("layers", &self.model.layers.len())
            .field("pooling", &self.pooling)
            .finish()
    }
}

impl BertEmbedder {
    /// Loads weights, tokenizer and limits from `dir`; `config` is its parsed config.json.
    /// `options.adapter` is merged into the weights it modifies. With `options.bf16_tiles`, CPU
    /// inference runs the Linear layers on bf16 (AMX tiles or AVX512-BF16) when the CPU has them
    /// (see [`bf16`]), and those after each LayerNorm in int8 when [`int8::enabled`].
    pub fn load(
        dir: &Path,
        config: &serde_json::Value,
        options: &EmbedOptions,
    ) -> Result<Self, EmbedError> {
        let EmbedOptions {
            device,
            adapter,
            bf16_tiles,
            int8_calibration,
            ..
        } = options;
        let config = read_config(dir, config)?;
        let pooling = read_pooling(dir)?;
        let TextLimits {
            tokenizer,
            max_tokens,
        } = text_limits_of(dir, &config)?;
        let mut weights = Weights::read(
            dir,
            device,
            DType::F32,
            "embeddings.word_embeddings.weight",
            &["", "bert."],
        )?;
        weights.merge_adapter(adapter.as_ref())?;
        let model = BertModel::load(&mut weights, &config)?;
        let mut embedder = Self {
            info: ModelInfo {
                architecture: "bert".into(),
                dim: config.hidden_size,
                max_tokens,
                query_instructions: false,
            },
            tokenizer,
            model,
            pooling,
        };
        if *bf16_tiles && embedder.model.kernels == Kernels::FusedCpu {
            if int8::enabled() {
                embedder
                    .pack_int8(int8_calibration.as_deref())
                    .map_err(|e| {
                        EmbedError::load(dir, format!("packing weights for int8 matmuls: {e}"))
                    })?;
            }
            if bf16::available() {
                embedder.model.pack_tiles().map_err(|e| {
                    EmbedError::load(dir, format!("packing weights for bf16 matmuls: {e}"))
                })?;
            }
        }
        Ok(embedder)
    }

    /// Packs each layer's query/key/value and feed-forward input projections for int8 matmuls
    /// ([`int8`]), smoothed for the largest input magnitudes each channel reaches on
    /// [`int8::CALIBRATION`]: read from `cache` when it holds them for this model, else measured
    /// one text at a time through the f32 kernels (about 0.6 s for MiniLM) and written there.
    fn pack_int8(&mut self, cache: Option<&Path>) -> Result<(), EmbedError> {
        let layers = self.model.layers.len();
        let hidden = self.info.dim;
        let cached = cache.and_then(|path| Calibration::read(path, layers, hidden));
        let magnitudes = match cached {
            Some(calibration) => calibration.layers,
            None => {
                let measured = self.calibrate()?;
                if let Some(path) = cache {
                    Calibration::write(path, &measured);
                }
                measured
            }
        };
        for (layer, seen) in self.model.layers.iter_mut().zip(&magnitudes) {
            layer.qkv.pack_int8(&seen.qkv)?;
            layer.intermediate.pack_int8(&seen.intermediate)?;
        }
        Ok(())
    }

    /// Each layer's projection input magnitudes over [`int8::CALIBRATION`].
    fn calibrate(&self) -> Result<Vec<InputMagnitudes>, EmbedError> {
        let mut magnitudes = vec![InputMagnitudes::default(); self.model.layers.len()];
        for text in int8::CALIBRATION {
            let ids = self.tokenize(text, InputKind::Document)?;
            let seq = ids.len();
            let (ids, mask) = pad_batch(&[ids], seq, self.model.pad_id, self.model.device())?;
            self.model
                .forward_probed(&ids, &mask, Some(&mut magnitudes))?;
        }
        Ok(magnitudes)
    }
}

/// A model's int8 calibration as kept on disk between loads (`EmbedOptions::int8_calibration`,
/// a file named after the model's fingerprint, so other weights or another adapter never
/// read it).
#[derive(Debug, serde::Serialize, Deserialize)]
struct Calibration {
    /// [`CALIBRATION_VERSION`] when it was measured.
    version: u32,
    layers: Vec<InputMagnitudes>,
}

/// Changes whenever what calibration measures changes ([`int8::CALIBRATION`]'s texts, or how
/// they are run): a file of another version is measured again.
const CALIBRATION_VERSION: u32 = 1;

impl Calibration {
    /// The calibration at `path`, when it is one of this version for `layers` layers of
    /// `hidden` channels with finite, non-negative magnitudes; `None` otherwise (missing,
    /// unreadable, another version or shape: measured again).
    fn read(path: &Path, layers: usize, hidden: usize) -> Option<Self> {
        let text = std::fs::read_to_string(path).ok()?;
        let calibration: Self = match serde_json::from_str(&text) {
            Ok(calibration) => calibration,
            Err(e) => {
                tracing::warn!(
                    "{}: not an int8 calibration ({e}); measuring again",
                    path.display()
                );
                return None;
            }
        };
        let valid = calibration.version == CALIBRATION_VERSION
            && calibration.layers.len() == layers
            && calibration.layers.iter().all(|layer| {
                [&layer.qkv, &layer.intermediate].iter().all(|channels| {
                    channels.len() == hidden && channels.iter().all(|m| m.is_finite() && *m >= 0.0)
                })
            });
        valid.then_some(calibration)
    }

    /// Keeps `layers` at `path` (written beside it, then renamed, so a reader never sees half a
    /// file); a failure is logged, not fatal: the next load measures again.
    fn write(path: &Path, layers: &[InputMagnitudes]) {
        let calibration = Self {
            version: CALIBRATION_VERSION,
            layers: layers.to_vec(),
        };
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| serde_json::to_vec(&calibration).map_err(std::io::Error::other))
            .and_then(|json| crate::files::replace(path, &json));
        if let Err(e) = written {
            tracing::warn!("keeping the int8 calibration in {}: {e}", path.display());
        }
    }
}

/// Per input channel, the largest |activation| seen at the input of one layer's query/key/value
/// projection and of its feed-forward input (int8 calibration).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, Deserialize)]
struct InputMagnitudes {
    qkv: Vec<f32>,
    intermediate: Vec<f32>,
}

/// Raises `into`'s channel maxima to those of the rows of `x` `(rows, channels)`.
fn observe(into: &mut Vec<f32>, x: &Tensor) -> candle_core::Result<()> {
    let seen = x.abs()?.max(0)?.to_vec1::<f32>()?;
    if into.is_empty() {
        *into = seen;
    } else {
        for (max, value) in into.iter_mut().zip(seen) {
            *max = max.max(value);
        }
    }
    Ok(())
}

impl Embedder for BertEmbedder {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenizer(&self) -> &ModelTokenizer {
        &self.tokenizer
    }

    fn tokenize(&self, text: &str, kind: InputKind) -> Result<Vec<u32>, EmbedError> {
        self.tokenize_within(text, kind, self.info.max_tokens)
    }

    fn embed_tokens(&mut self, batch: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let vocab = self.model.word_embeddings.dim(0)?;
        super::check_token_batch(batch, self.model.max_positions, vocab)?;
        let seq = batch.iter().map(Vec::len).max().unwrap_or(0);
        let (ids, mask) = pad_batch(batch, seq, self.model.pad_id, self.model.device())?;
        let hidden = self.model.forward(&ids, &mask)?;
        let pooled = pool(&hidden, &mask, self.pooling)?;
        Ok(super::l2_normalize(&pooled)?.to_vec2::<f32>()?)
    }
}

/// Fine-tuning: the same forward pass with LoRA updates added to the attention weights.
impl Trainable for BertEmbedder {
    /// Named as in the checkpoint.
    fn lora_modules(&self) -> Vec<LoraModule> {
        let hidden = self.info.dim;
        (0..self.model.layers.len())
            .flat_map(|layer| {
                LoraTarget::ALL.map(|target| LoraModule {
                    name: lora_module_name(layer, target),
                    target,
                    inputs: hidden,
                    outputs: hidden,
                })
            })
            .collect()
    }

    fn forward_train(
        &self,
        lora: Option<&LoraParams>,
        batch: &[Vec<u32>],
    ) -> Result<Tensor, EmbedError> {
        let vocab = self.model.word_embeddings.dim(0)?;
        super::check_training_batch(batch, self.model.max_positions, vocab)?;
        let seq = batch.iter().map(Vec::len).max().unwrap_or(0);
        let (ids, mask) = pad_batch(batch, seq, self.model.pad_id, self.model.device())?;
        let adapted;
        let model = match lora {
            Some(lora) => {
                adapted = self.model.with_lora(lora)?;
                &adapted
            }
            None => &self.model,
        };
        let hidden = model.forward(&ids, &mask)?;
        let pooled = pool(&hidden, &mask, self.pooling)?;
        Ok(super::l2_normalize(&pooled)?)
    }

    fn tokenize_within(
        &self,
        text: &str,
        _kind: InputKind,
        max_tokens: usize,
    ) -> Result<Vec<u32>, EmbedError> {
        // BERT sentence models embed queries and documents alike.
        self.tokenizer
            .encode_truncated(text, max_tokens.min(self.info.max_tokens))
    }
}

/// The checkpoint name (without `.weight`) of layer `layer`'s `target` projection.
fn lora_module_name(layer: usize, target: LoraTarget) -> String {
    let what = match target {
        LoraTarget::Query => "attention.self.query",
        LoraTarget::Key => "attention.self.key",
        LoraTarget::Value => "attention.self.value",
        LoraTarget::AttentionOutput => "attention.output.dense",
    };
    format!("encoder.layer.{layer}.{what}")
}

/// Right-pads every input to `seq` tokens: ids `(batch, seq)` u32 and mask `(batch, seq)` f32
/// (1 for real tokens, 0 for padding).
fn pad_batch(
    batch: &[Vec<u32>],
    seq: usize,
    pad_id: u32,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let mut ids = Vec::with_capacity(batch.len() * seq);
    let mut mask = Vec::with_capacity(batch.len() * seq);
    for input in batch {
        ids.extend_from_slice(input);
        ids.resize(ids.len() + seq - input.len(), pad_id);
        mask.extend(std::iter::repeat_n(1f32, input.len()));
        mask.resize(mask.len() + seq - input.len(), 0.0);
    }
    Ok((
        Tensor::from_vec(ids, (batch.len(), seq), device)?,
        Tensor::from_vec(mask, (batch.len(), seq), device)?,
    ))
}

/// One vector per input from token vectors `(batch*seq, hidden)` and the mask `(batch, seq)`.
fn pool(hidden: &Tensor, mask: &Tensor, pooling: Pooling) -> candle_core::Result<Tensor> {
    let (batch, seq) = mask.dims2()?;
    let hidden = hidden.reshape((batch, seq, ()))?;
    match pooling {
        Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1),
        Pooling::Mean => {
            let mask = mask.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            // `embed_tokens` rejects empty inputs, so no count is 0.
            let counts = mask.sum(1)?;
            summed.broadcast_div(&counts)
        }
    }
}

/// The tokenizer and input limit of a BERT model, without its weights.
pub(crate) fn text_limits(
    dir: &Path,
    config: &serde_json::Value,
) -> Result<TextLimits, EmbedError> {
    text_limits_of(dir, &read_config(dir, config)?)
}

fn read_config(dir: &Path, config: &serde_json::Value) -> Result<BertConfig, EmbedError> {
    let config = BertConfig::deserialize(config)
        .map_err(|e| EmbedError::load(dir, format!("config.json: {e}")))?;
    check_config(dir, &config)?;
    Ok(config)
}

fn text_limits_of(dir: &Path, config: &BertConfig) -> Result<TextLimits, EmbedError> {
    let max_tokens = super::sentence_transformers_max_len(dir)?
        .unwrap_or(config.max_position_embeddings)
        // Inputs longer than the position table cannot be run at all.
        .min(config.max_position_embeddings);
    Ok(TextLimits {
        tokenizer: super::read_tokenizer(dir)?,
        max_tokens,
    })
}

fn check_config(dir: &Path, c: &BertConfig) -> Result<(), EmbedError> {
    let problem = if c.hidden_size == 0 || c.num_attention_heads == 0 {
        Some("hidden_size and num_attention_heads must be positive".to_string())
    } else if !c.hidden_size.is_multiple_of(c.num_attention_heads) {
        Some(format!(
            "hidden_size {} is not a multiple of num_attention_heads {}",
            c.hidden_size, c.num_attention_heads
        ))
    } else if c.hidden_act != "gelu" {
        Some(format!(
            "hidden_act `{}` is not supported (only `gelu`)",
            c.hidden_act
        ))
    } else if c.position_embedding_type != "absolute" {
        Some(format!(
            "position_embedding_type `{}` is not supported (only `absolute`)",
            c.position_embedding_type
        ))
    } else if c.type_vocab_size == 0 || c.max_position_embeddings == 0 {
        Some("type_vocab_size and max_position_embeddings must be positive".to_string())
    } else {
        None
    };
    match problem {
        Some(p) => Err(EmbedError::load(dir, format!("config.json: {p}"))),
        None => Ok(()),
    }
}

/// Pooling from `1_Pooling/config.json`; mean when the file is absent (plain BERT checkpoints).
fn read_pooling(dir: &Path) -> Result<Pooling, EmbedError> {
    const FILE: &str = "1_Pooling/config.json";
    if !dir.join(FILE).exists() {
        return Ok(Pooling::Mean);
    }
    let config = super::read_json(dir, FILE)?;
    let flag = |name: &str| config.get(name).and_then(serde_json::Value::as_bool) == Some(true);
    let others = [
        "pooling_mode_max_tokens",
        "pooling_mode_mean_sqrt_len_tokens",
        "pooling_mode_weightedmean_tokens",
        "pooling_mode_lasttoken",
    ];
    if let Some(other) = others.iter().find(|name| flag(name)) {
        return Err(EmbedError::load(
            dir,
            format!("{FILE}: {other} is not supported"),
        ));
    }
    match (
        flag("pooling_mode_mean_tokens"),
        flag("pooling_mode_cls_token"),
    ) {
        (true, false) => Ok(Pooling::Mean),
        (false, true) => Ok(Pooling::Cls),
        _ => Err(EmbedError::load(
            dir,
            format!("{FILE}: exactly one of mean or CLS pooling must be enabled"),
        )),
    }
}

/// BERT's layers out of the checkpoint (names with or without a `bert.` prefix).
impl Weights {
    fn linear(&mut self, name: &str, inputs: usize, outputs: usize) -> Result<Linear, EmbedError> {
        Ok(Linear::new(
            self.take(&format!("{name}.weight"), &[], &[outputs, inputs])?,
            Some(self.take(&format!("{name}.bias"), &[], &[outputs])?),
        ))
    }

    fn layer_norm(&mut self, name: &str, size: usize, eps: f64) -> Result<LayerNorm, EmbedError> {
        // Old TF-converted checkpoints call the parameters gamma and beta.
        Ok(LayerNorm {
            gamma: self.take(
                &format!("{name}.weight"),
                &[&format!("{name}.gamma")],
                &[size],
            )?,
            beta: self.take(&format!("{name}.bias"), &[&format!("{name}.beta")], &[size])?,
            eps,
        })
    }
}

/// One transformer layer: self-attention then feed-forward, each with residual + LayerNorm.
#[derive(Clone)]
struct Layer {
    /// Query, key and value projections fused into one `(3*hidden, hidden)` matmul.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
    /// For [`Kernels::FusedCpu`]: `attention_out`'s bias with `attention_norm`'s gamma and beta,
    /// `(3, hidden)`, and the same for `output` and `output_norm`.
    attention_params: Tensor,
    output_params: Tensor,
}

impl Layer {
    fn linears_mut(&mut self) -> [&mut Linear; 4] {
        [
            &mut self.qkv,
            &mut self.attention_out,
            &mut self.intermediate,
            &mut self.output,
        ]
    }
}

/// The query, key and value projections as one Linear (rows: q, then k, then v).
fn fuse_qkv(parts: [&Linear; 3]) -> candle_core::Result<Linear> {
    let weights = [parts[0].dense()?, parts[1].dense()?, parts[2].dense()?];
    let biases = [parts[0].bias()?, parts[1].bias()?, parts[2].bias()?];
    Ok(Linear::new(
        Tensor::cat(&weights, 0)?,
        Some(Tensor::cat(&biases, 0)?),
    ))
}

/// `(3, hidden)`: a Linear's bias, then the following LayerNorm's gamma and beta.
fn norm_params(linear: &Linear, norm: &LayerNorm) -> candle_core::Result<Tensor> {
    Tensor::stack(&[linear.bias()?, &norm.gamma, &norm.beta], 0)
}

#[derive(Clone)]
struct BertModel {
    word_embeddings: Tensor,
    /// Position embeddings plus the token-type-0 embedding, added once at load time since every
    /// input here is a single segment.
    position_type_embeddings: Tensor,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    pad_id: u32,
    max_positions: usize,
    layer_norm_eps: f64,
    kernels: Kernels,
}

impl BertModel {
    fn load(w: &mut Weights, c: &BertConfig) -> Result<Self, EmbedError> {
        let h = c.hidden_size;
        let word_embeddings =
            w.take("embeddings.word_embeddings.weight", &[], &[c.vocab_size, h])?;
        let positions = w.take(
            "embeddings.position_embeddings.weight",
            &[],
            &[c.max_position_embeddings, h],
        )?;
        let token_types = w.take(
            "embeddings.token_type_embeddings.weight",
            &[],
            &[c.type_vocab_size, h],
        )?;
        let position_type_embeddings = token_types
            .narrow(0, 0, 1)
            .and_then(|t0| positions.broadcast_add(&t0))
            .map_err(|e| EmbedError::load(&w.dir, format!("embeddings: {e}")))?;
        let embedding_norm = w.layer_norm("embeddings.LayerNorm", h, c.layer_norm_eps)?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let q = w.linear(&format!("{p}.attention.self.query"), h, h)?;
            let k = w.linear(&format!("{p}.attention.self.key"), h, h)?;
            let v = w.linear(&format!("{p}.attention.self.value"), h, h)?;
            let qkv = fuse_qkv([&q, &k, &v])
                .map_err(|e| EmbedError::load(&w.dir, format!("{p}.attention.self: {e}")))?;
            let attention_out = w.linear(&format!("{p}.attention.output.dense"), h, h)?;
            let attention_norm = w.layer_norm(
                &format!("{p}.attention.output.LayerNorm"),
                h,
                c.layer_norm_eps,
            )?;
            // Read in checkpoint order, so a wrong shape is reported at its first tensor.
            let intermediate =
                w.linear(&format!("{p}.intermediate.dense"), h, c.intermediate_size)?;
            let output = w.linear(&format!("{p}.output.dense"), c.intermediate_size, h)?;
            let output_norm =
                w.layer_norm(&format!("{p}.output.LayerNorm"), h, c.layer_norm_eps)?;
            let params = |linear: &Linear, norm: &LayerNorm| {
                norm_params(linear, norm).map_err(|e| EmbedError::load(&w.dir, format!("{p}: {e}")))
            };
            layers.push(Layer {
                qkv,
                attention_params: params(&attention_out, &attention_norm)?,
                output_params: params(&output, &output_norm)?,
                attention_out,
                attention_norm,
                intermediate,
                output,
                output_norm,
            });
        }
        let kernels = if word_embeddings.device().is_cpu() {
            Kernels::FusedCpu
        } else {
            Kernels::Elementary
        };
        Ok(Self {
            word_embeddings,
            position_type_embeddings,
            embedding_norm,
            layers,
            heads: c.num_attention_heads,
            head_dim: h / c.num_attention_heads,
            pad_id: c.pad_token_id,
            max_positions: c.max_position_embeddings,
            layer_norm_eps: c.layer_norm_eps,
            kernels,
        })
    }

    fn device(&self) -> &Device {
        self.word_embeddings.device()
    }

    /// Packs every Linear weight for bf16 matmuls (CPU inference).
    fn pack_tiles(&mut self) -> candle_core::Result<()> {
        for layer in &mut self.layers {
            for linear in layer.linears_mut() {
                linear.pack()?;
            }
        }
        Ok(())
    }

    /// A copy whose attention weights carry `lora`'s updates (`W + ΔW`, computed in the graph;
    /// the fused QKV weight gets the query, key and value updates in its three row blocks).
    fn with_lora(&self, lora: &LoraParams) -> candle_core::Result<Self> {
        let mut model = self.clone();
        // Training needs a backward pass, which only the elementary ops have.
        model.kernels = Kernels::Elementary;
        for (i, layer) in model.layers.iter_mut().enumerate() {
            // A packed weight has no backward pass: gradients would stop there unnoticed.
            for linear in layer.linears_mut() {
                linear.dense()?;
            }
            let hidden = layer.attention_out.dense()?.dim(0)?;
            let blocks = [LoraTarget::Query, LoraTarget::Key, LoraTarget::Value]
                .into_iter()
                .map(|target| lora.delta(&lora_module_name(i, target)))
                .collect::<candle_core::Result<Vec<_>>>()?;
            layer.qkv = layer.qkv.plus_blocks(blocks, &[hidden; 3])?;
            let delta = lora.delta(&lora_module_name(i, LoraTarget::AttentionOutput))?;
            layer.attention_out = layer.attention_out.plus(delta)?;
        }
        Ok(model)
    }

    /// Token vectors `(batch*seq, hidden)` for ids `(batch, seq)` and mask `(batch, seq)`.
    fn forward(&self, input_ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_probed(input_ids, mask, None)
    }

    /// [`BertModel::forward`], recording each layer's projection inputs into `probe` (one
    /// entry per layer) when given.
    fn forward_probed(
        &self,
        input_ids: &Tensor,
        mask: &Tensor,
        mut probe: Option<&mut [InputMagnitudes]>,
    ) -> candle_core::Result<Tensor> {
        let (batch, seq) = input_ids.dims2()?;
        let hidden = self.word_embeddings.dim(1)?;
        let words = self
            .word_embeddings
            .embedding(&input_ids.flatten_all()?)?
            .reshape((batch, seq, hidden))?;
        let positions = self.position_type_embeddings.narrow(0, 0, seq)?;
        let embedded = words
            .broadcast_add(&positions)?
            .reshape((batch * seq, hidden))?;
        let mut x = self.embedding_norm.forward(&embedded)?;

        // (batch, seq): 0 for real keys, MASK_VALUE for padding keys. Batches of equal lengths
        // (sorted batching makes them common) skip the addition altogether.
        let has_padding = mask.min_all()?.to_scalar::<f32>()? < 1.0;
        let attention_bias = if has_padding {
            Some(mask.affine(-f64::from(MASK_VALUE), f64::from(MASK_VALUE))?)
        } else {
            None
        };
        // In bf16, attention runs per sequence over its real tokens: their counts (the
        // mask is ones then zeros, as `pad_batch` makes it). The bf16 path packs every Linear
        // layer; int8 without a bf16 backend packs only those after each LayerNorm, and
        // attention then stays f32.
        let lengths = if self
            .layers
            .first()
            .is_some_and(|l| l.attention_out.is_packed())
        {
            prefix_lengths(mask)?
        } else {
            None
        };
        for (i, layer) in self.layers.iter().enumerate() {
            let mut seen = probe.as_deref_mut().and_then(|probe| probe.get_mut(i));
            if let Some(seen) = seen.as_deref_mut() {
                observe(&mut seen.qkv, &x)?;
            }
            x = match &lengths {
                Some(lengths) => self.layer_forward_tiles(layer, &x, lengths)?,
                None => {
                    let shape = (batch, seq);
                    self.layer_forward(layer, &x, attention_bias.as_ref(), shape, seen)?
                }
            };
        }
        Ok(x)
    }

    /// One layer in bf16: [`bf16::attention`] over the real tokens of each sequence, then
    /// the fused CPU kernels around the Linear layers.
    fn layer_forward_tiles(
        &self,
        layer: &Layer,
        x: &Tensor,
        lengths: &[usize],
    ) -> candle_core::Result<Tensor> {
        let scale = 1.0 / (self.head_dim as f32).sqrt();
        let qkv = layer.qkv.forward_no_bias(x)?;
        let context = bf16::attention(&qkv, layer.qkv.bias()?, lengths, self.heads, scale)?;
        self.feed_forward(layer, &context, x, None)
    }

    /// The fused CPU tail of a layer: attention output + residual + LayerNorm, then the
    /// feed-forward block with its residual + LayerNorm.
    fn feed_forward(
        &self,
        layer: &Layer,
        context: &Tensor,
        x: &Tensor,
        probe: Option<&mut InputMagnitudes>,
    ) -> candle_core::Result<Tensor> {
        let eps = self.layer_norm_eps;
        // Each kernel below writes over the fresh output of the Linear before it.
        let attended = kernels::residual_layer_norm(
            layer.attention_out.forward_no_bias(context)?,
            x,
            &layer.attention_params,
            eps,
        )?;
        match probe {
            Some(probe) => observe(&mut probe.intermediate, &attended)?,
            None => {
                let fused = super::layers::packed_feed_forward(
                    &attended,
                    &layer.intermediate,
                    &layer.output,
                    &layer.output_params,
                    eps,
                )?;
                if let Some(out) = fused {
                    return Ok(out);
                }
            }
        }
        let intermediate = kernels::bias_gelu(
            layer.intermediate.forward_no_bias(&attended)?,
            layer.intermediate.bias()?,
        )?;
        kernels::residual_layer_norm(
            layer.output.forward_no_bias(&intermediate)?,
            &attended,
            &layer.output_params,
            eps,
        )
    }

    /// One layer on `x` `(batch*seq, hidden)`; `attention_bias` is `(batch, seq)`. `probe`
    /// records the feed-forward input ([`BertModel::forward_probed`]).
    fn layer_forward(
        &self,
        layer: &Layer,
        x: &Tensor,
        attention_bias: Option<&Tensor>,
        (batch, seq): (usize, usize),
        probe: Option<&mut InputMagnitudes>,
    ) -> candle_core::Result<Tensor> {
        let (heads, head_dim) = (self.heads, self.head_dim);
        let hidden = heads * head_dim;
        let fused = self.kernels == Kernels::FusedCpu;

        // One copy puts Q, K and V into (3, batch, heads, seq, head_dim) order.
        let qkv = if fused {
            layer
                .qkv
                .forward_no_bias(x)?
                .broadcast_add(layer.qkv.bias()?)?
        } else {
            layer.qkv.forward(x)?
        };
        let qkv = qkv
            .reshape((batch, seq, 3, heads, head_dim))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()?;
        let scale = 1.0 / (head_dim as f64).sqrt();
        // The fused softmax applies the scale itself.
        let q = if fused {
            qkv.get(0)?
        } else {
            (qkv.get(0)? * scale)?
        };
        let k = qkv.get(1)?;
        let v = qkv.get(2)?;

        // Scores grow with seq²: a few sequences at a time keeps them in cache and keeps a big
        // batch of long inputs from allocating hundreds of MB at once.
        let per_sequence = heads * seq * seq;
        let chunk = (ATTENTION_CHUNK_FLOATS / per_sequence).clamp(1, batch);
        let mut parts = Vec::with_capacity(batch.div_ceil(chunk));
        for start in (0..batch).step_by(chunk) {
            let len = chunk.min(batch - start);
            let q = q.narrow(0, start, len)?;
            let k = k.narrow(0, start, len)?;
            let v = v.narrow(0, start, len)?;
            let scores = q.matmul(&k.t()?)?;
            let bias = attention_bias
                .map(|bias| bias.narrow(0, start, len))
                .transpose()?;
            let probs = if fused {
                kernels::scaled_masked_softmax(&scores, bias.as_ref(), scale)?
            } else {
                let scores = match &bias {
                    Some(bias) => scores.broadcast_add(&bias.reshape((len, 1, 1, seq))?)?,
                    None => scores,
                };
                softmax_last_dim(&scores)?
            };
            parts.push(
                probs
                    .matmul(&v)?
                    .transpose(1, 2)?
                    .reshape((len * seq, hidden))?,
            );
        }
        let context = if parts.len() == 1 {
            parts.swap_remove(0)
        } else {
            Tensor::cat(&parts, 0)?
        };

        if fused {
            return self.feed_forward(layer, &context, x, probe);
        }
        let attended = layer
            .attention_norm
            .forward(&(layer.attention_out.forward(&context)? + x)?)?;
        if let Some(probe) = probe {
            observe(&mut probe.intermediate, &attended)?;
        }
        let intermediate = layer.intermediate.forward(&attended)?.gelu_erf()?;
        layer
            .output_norm
            .forward(&(layer.output.forward(&intermediate)? + attended)?)
    }
}

/// The number of leading ones in each row of a `(batch, seq)` 0/1 mask; `None` when some row
/// is not ones followed by zeros.
fn prefix_lengths(mask: &Tensor) -> candle_core::Result<Option<Vec<usize>>> {
    let mut lengths = Vec::new();
    for row in mask.to_vec2::<f32>()? {
        let len = row.iter().take_while(|&&m| m == 1.0).count();
        if row[len..].iter().any(|&m| m != 0.0) {
            return Ok(None);
        }
        lengths.push(len);
    }
    Ok(Some(lengths))
}

/// Softmax over the last dimension from elementary (differentiable) ops, shifted by the row
/// maximum so large scores cannot overflow.
fn softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    let shifted = x.broadcast_sub(&x.max_keepdim(D::Minus1)?)?;
    let exp = shifted.exp()?;
    exp.broadcast_div(&exp.sum_keepdim(D::Minus1)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::embed::{EmbedOptions, cosine, max_diff, test_model_dir, tiny_bert_dir};

    /// Texts and the vectors a Python implementation gave for them.
    struct Reference {
        texts: Vec<String>,
        vectors: Vec<Vec<f32>>,
    }

    /// MiniLM's vectors from sentence-transformers (`scripts/make_reference_vectors.py`).
    fn reference() -> Reference {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/minilm_reference.json");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut texts = Vec::new();
        let mut vectors = Vec::new();
        for snippet in json["snippets"].as_array().unwrap() {
            texts.push(snippet["text"].as_str().unwrap().to_string());
            vectors.push(
                snippet["vector"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
                    .collect(),
            );
        }
        assert!(texts.len() >= 8, "fixture has too few snippets");
        Reference { texts, vectors }
    }

    /// The model with every matmul in f32, to compare against PyTorch exactly.
    fn model() -> Box<dyn Embedder> {
        crate::embed::load_with(&test_model_dir(), &EmbedOptions::exact(&Device::Cpu)).unwrap()
    }

    fn check_against_reference(reference: &Reference, ours: &[Vec<f32>], how: &str) {
        assert_eq!(ours.len(), reference.vectors.len());
        let mut worst = f64::MAX;
        let mut worst_diff = 0f32;
        for ((text, expected), got) in reference.texts.iter().zip(&reference.vectors).zip(ours) {
            for (e, g) in expected.iter().zip(got) {
                worst_diff = worst_diff.max((e - g).abs());
            }
            assert_eq!(got.len(), expected.len());
            let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "{how}: norm {norm}");
            let cos = cosine(expected, got);
            let head: String = text.chars().take(40).collect();
            assert!(cos >= 0.999, "{how}: cosine {cos:.6} for {head:?}");
            worst = worst.min(cos);
        }
        eprintln!(
            "{how}: worst cosine vs the reference = 1 - {:.1e}, largest component \
             difference {worst_diff:.1e}",
            1.0 - worst
        );
        // The f32 path matches PyTorch to ~2e-7 per component. Cosine alone would not notice a
        // changed op such as tanh-approximated GELU (MiniLM: 1 - 1.6e-6, components off by
        // 3e-4), so an approximation has to relax this bound on purpose.
        assert!(
            worst_diff < 1e-5,
            "{how}: a component differs by {worst_diff:.1e} from the reference"
        );
    }

    // The MiniLM tests check the real model against sentence-transformers: its trained weights,
    // which no random checkpoint stands in for, and its own tokenizer. The bf16 and int8 bars
    // are about the vectors users get.

    #[test]
    fn matches_sentence_transformers_in_one_padded_batch() {
        let reference = reference();
        let mut model = model();
        let tokens: Vec<Vec<u32>> = reference
            .texts
            .iter()
            .map(|t| model.tokenize(t, InputKind::Document).unwrap())
            .collect();
        // The fixture must exercise both padding and truncation.
        let lengths: Vec<usize> = tokens.iter().map(Vec::len).collect();
        assert!(lengths.contains(&256), "no truncated snippet: {lengths:?}");
        assert!(
            lengths.iter().any(|&n| n < 64),
            "no short snippet: {lengths:?}"
        );
        let ours = model.embed_tokens(&tokens).unwrap();
        check_against_reference(&reference, &ours, "one batch");
    }

    /// The reference snippets embedded in one batch by the model as `embed::load` serves it (with
    /// the CPU paths this process chose).
    struct Served {
        model: Box<dyn Embedder>,
        tokens: Vec<Vec<u32>>,
        vectors: Vec<Vec<f32>>,
        /// The worst cosine to sentence-transformers' vectors.
        worst: f64,
    }

    fn embed_reference_as_served() -> Served {
        let reference = reference();
        let mut model = crate::embed::load(&test_model_dir(), &Device::Cpu).unwrap();
        let tokens: Vec<Vec<u32>> = reference
            .texts
            .iter()
            .map(|t| model.tokenize(t, InputKind::Document).unwrap())
            .collect();
        let ours = model.embed_tokens(&tokens).unwrap();
        let worst = crate::embed::worst_cosine(reference.vectors.iter().map(Vec::as_slice), &ours);
        Served {
            model,
            tokens,
            vectors: ours,
            worst,
        }
    }

    /// The bf16 backend a bf16 test measures, asked for even where f32 is faster; `None` (said
    /// on stderr) where there is none, or where int8 matmuls are on in this process (`cargo
    /// test` runs tests as threads of one process, and the int8 test may have asked for them).
    fn bf16_alone() -> Option<bf16::Backend> {
        bf16::prefer_bf16_in_tests();
        int8::keep_int8_off_in_tests();
        let Some(backend) = bf16::backend() else {
            eprintln!("no bf16 backend in use here (embed::bf16::backend): only f32");
            return None;
        };
        if int8::enabled() {
            eprintln!("int8 matmuls are on in this process: bf16 alone cannot be measured");
            return None;
        }
        Some(backend)
    }

    #[test]
    fn bf16_matmuls_stay_close_to_sentence_transformers() {
        let Some(backend) = bf16_alone() else {
            return;
        };
        let Served {
            tokens,
            vectors: ours,
            worst,
            ..
        } = embed_reference_as_served();
        eprintln!(
            "bf16 ({}): worst cosine vs sentence-transformers = 1 - {:.1e}",
            backend.name(),
            1.0 - worst
        );
        assert!(worst > 0.9995, "bf16 ({backend:?}): cosine {worst:.6}");
        // And it really ran in bf16: the f32 path agrees to 1e-5 per component, this not.
        let exact = model().embed_tokens(&tokens).unwrap();
        let diff = max_diff(&exact, &ours);
        assert!(diff > 1e-5, "bf16 vectors equal the f32 ones ({diff:.1e})");
    }

    #[test]
    fn int8_matmuls_hold_the_cosine_bar() {
        bf16::prefer_bf16_in_tests();
        int8::prefer_int8_in_tests();
        let kernel = int8::kernel();
        if !(matches!(kernel, Some(int8::Kernel::Amx | int8::Kernel::Vnni)) && bf16::available()) {
            eprintln!(
                "no AMX-INT8 or AVX512-VNNI, or no bf16 backend here: the int8 path cannot run"
            );
            return;
        }
        int8_holds_the_cosine_bar();
    }

    /// The int8 path of a CPU with AVX2 alone (AVX512-VNNI, AVX-VNNI and bf16 turned off here).
    #[test]
    fn int8_on_avx2_alone_holds_the_cosine_bar() {
        int8_alone_holds_the_cosine_bar(int8::prefer_avx2_alone_in_tests, int8::Kernel::Avx2);
    }

    /// The int8 path of a CPU with AVX-VNNI but no AVX-512 (AVX512-VNNI and bf16 turned off
    /// here).
    #[test]
    fn int8_on_avx_vnni_alone_holds_the_cosine_bar() {
        int8_alone_holds_the_cosine_bar(
            int8::prefer_avx_vnni_alone_in_tests,
            int8::Kernel::AvxVnni,
        );
    }

    /// The int8 path of a CPU whose best int8 kernel is `kernel` and that has no bf16 backend
    /// (`prefer` turns the others off): int8 products on `kernel`, the sinks and every other
    /// matmul in f32.
    fn int8_alone_holds_the_cosine_bar(prefer: fn(), kernel: int8::Kernel) {
        prefer();
        if int8::kernel() != Some(kernel) || bf16::available() {
            eprintln!(
                "no {}, or another int8 or bf16 path asked for in this process",
                kernel.name()
            );
            return;
        }
        int8_holds_the_cosine_bar();
    }

    /// The reference snippets as served in int8 hold cosine 0.999 to sentence-transformers.
    fn int8_holds_the_cosine_bar() {
        let Served {
            model: mut quantized,
            tokens,
            vectors: ours,
            worst,
        } = embed_reference_as_served();
        eprintln!(
            "int8: worst cosine vs sentence-transformers = 1 - {:.1e}",
            1.0 - worst
        );
        assert!(worst >= 0.999, "int8: cosine {worst:.6}");
        // And it really ran in int8: bf16 alone stays within 1 - 3e-5 of these vectors.
        assert!(
            1.0 - worst > 1e-4,
            "int8 vectors as close as bf16 ones: 1 - {:.1e}",
            1.0 - worst
        );
        // One at a time (no padding) gives the same vectors: quantization is per token.
        for (tokens, batched) in tokens.iter().zip(&ours).take(3) {
            let alone = quantized
                .embed_tokens(std::slice::from_ref(tokens))
                .unwrap();
            assert!(cosine(&alone[0], batched) > 0.99999);
        }
    }

    #[test]
    fn int8_calibration_is_kept_and_measured_again_when_unusable() {
        bf16::prefer_bf16_in_tests();
        int8::prefer_int8_in_tests();
        if !(int8::enabled() && bf16::available()) {
            eprintln!("no AVX512-VNNI or no bf16 backend here: the int8 path cannot run");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("int8").join("fingerprint.json");
        let dir = tiny_bert_dir();
        let config = crate::embed::read_json(&dir, "config.json").unwrap();
        let options = EmbedOptions {
            int8_calibration: Some(path.clone()),
            ..EmbedOptions::new(&Device::Cpu)
        };
        let mut first = BertEmbedder::load(&dir, &config, &options).unwrap();
        let (layers, hidden) = (first.model.layers.len(), first.info.dim);
        // What the first load measured (through the f32 path) is what it kept.
        let kept = Calibration::read(&path, layers, hidden).expect("the calibration was kept");
        assert_eq!(kept.layers, tiny_model(false).calibrate().unwrap());
        // A later load reads it and packs the same weights.
        let tokens = vec![
            first
                .tokenize("fn parse_port(s: &str) -> u16", InputKind::Document)
                .unwrap(),
        ];
        let mut second = BertEmbedder::load(&dir, &config, &options).unwrap();
        assert_eq!(
            first.embed_tokens(&tokens).unwrap(),
            second.embed_tokens(&tokens).unwrap()
        );
        // A damaged file or one of another shape is measured again and replaced.
        for damaged in [
            "{\"version\": 1, \"lay".to_string(),
            serde_json::to_string(&Calibration {
                version: CALIBRATION_VERSION,
                layers: kept.layers[..1].to_vec(),
            })
            .unwrap(),
            serde_json::to_string(&Calibration {
                version: CALIBRATION_VERSION + 1,
                layers: kept.layers.clone(),
            })
            .unwrap(),
        ] {
            std::fs::write(&path, &damaged).unwrap();
            assert!(
                Calibration::read(&path, layers, hidden).is_none(),
                "{damaged}"
            );
            BertEmbedder::load(&dir, &config, &options).unwrap();
            let again = Calibration::read(&path, layers, hidden).expect("measured again");
            assert_eq!(again.layers, kept.layers);
        }
        // A cache that cannot be written costs the measurement, not the load.
        let blocked = EmbedOptions {
            int8_calibration: Some(tmp.path().join("a-file").join("below.json")),
            ..EmbedOptions::new(&Device::Cpu)
        };
        std::fs::write(tmp.path().join("a-file"), "").unwrap();
        BertEmbedder::load(&dir, &config, &blocked).unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers,
            ["fingerprint.json"],
            "staged files are renamed or removed"
        );
    }

    #[test]
    fn matches_sentence_transformers_one_at_a_time() {
        let reference = reference();
        let mut model = model();
        let ours: Vec<Vec<f32>> = reference
            .texts
            .iter()
            .map(|t| {
                let tokens = model
                    .tokenize(t, InputKind::Query(crate::embed::QueryTask::CodeSearch))
                    .unwrap();
                model.embed_tokens(&[tokens]).unwrap().remove(0)
            })
            .collect();
        check_against_reference(&reference, &ours, "one at a time");
    }

    // The tiny BERT tests check our forward pass against transformers on every path without
    // MiniLM: random weights, but MiniLM's architecture, kind of tokenizer and pooling.

    /// The tiny BERT's reference from transformers (`scripts/make_tiny_bert.py`): the texts with
    /// their vectors alone, the token ids the tokenizer cut them into, and the vectors of all
    /// of them in one right-padded batch.
    struct TinyReference {
        alone: Reference,
        ids: Vec<Vec<u32>>,
        batched: Reference,
    }

    fn tiny_reference() -> TinyReference {
        let text = std::fs::read_to_string(tiny_bert_dir().join("reference.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let inputs = json["inputs"].as_array().unwrap();
        let field = |name: &str| -> Vec<serde_json::Value> {
            inputs.iter().map(|input| input[name].clone()).collect()
        };
        let texts: Vec<String> = field("text")
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        let vectors = |name: &str| -> Vec<Vec<f32>> {
            field(name)
                .into_iter()
                .map(|v| serde_json::from_value(v).unwrap())
                .collect()
        };
        TinyReference {
            alone: Reference {
                texts: texts.clone(),
                vectors: vectors("vector"),
            },
            ids: field("ids")
                .into_iter()
                .map(|ids| serde_json::from_value(ids).unwrap())
                .collect(),
            batched: Reference {
                texts,
                vectors: vectors("batched_vector"),
            },
        }
    }

    /// The tiny BERT as `BertEmbedder::load` makes it, packed for bf16 matmuls or not.
    fn tiny_model(bf16_tiles: bool) -> BertEmbedder {
        let dir = tiny_bert_dir();
        let config = crate::embed::read_json(&dir, "config.json").unwrap();
        let options = EmbedOptions {
            bf16_tiles,
            ..EmbedOptions::new(&Device::Cpu)
        };
        BertEmbedder::load(&dir, &config, &options).unwrap()
    }

    #[test]
    fn tiny_bert_cuts_texts_as_the_reference_tokenizer() {
        let reference = tiny_reference();
        let model = tiny_model(false);
        assert_eq!(model.info().max_tokens, 256, "sentence_bert_config.json");
        let ids: Vec<Vec<u32>> = reference
            .alone
            .texts
            .iter()
            .map(|t| model.tokenize(t, InputKind::Document).unwrap())
            .collect();
        assert_eq!(ids, reference.ids);
        // The fixture has a truncated input and unknown words.
        assert!(reference.ids.iter().any(|ids| ids.len() == 256));
        let unknown = model.tokenizer().token_to_id("[UNK]").unwrap();
        assert!(reference.ids.iter().flatten().any(|&id| id == unknown));
    }

    #[test]
    fn tiny_bert_matches_transformers_one_at_a_time() {
        let reference = tiny_reference();
        let mut model = tiny_model(false);
        let ours: Vec<Vec<f32>> = reference
            .ids
            .iter()
            .map(|ids| {
                let mut vectors = model.embed_tokens(std::slice::from_ref(ids)).unwrap();
                vectors.remove(0)
            })
            .collect();
        check_against_reference(&reference.alone, &ours, "tiny BERT, alone");
    }

    /// The fused CPU kernels (the default) and the elementary ops (training, GPUs) each against
    /// the padded batch, which is long enough for attention to run in more than one chunk.
    #[test]
    fn tiny_bert_matches_transformers_in_one_padded_batch_on_both_kernels() {
        let reference = tiny_reference();
        let mut model = tiny_model(false);
        assert_eq!(model.model.kernels, Kernels::FusedCpu, "the CPU default");
        let seq = reference.ids.iter().map(Vec::len).max().unwrap();
        let scores = reference.ids.len() * model.model.heads * seq * seq;
        assert!(scores > ATTENTION_CHUNK_FLOATS, "attention in one chunk");

        let fused = model.embed_tokens(&reference.ids).unwrap();
        check_against_reference(&reference.batched, &fused, "tiny BERT, fused kernels");
        model.model.kernels = Kernels::Elementary;
        let elementary = model.embed_tokens(&reference.ids).unwrap();
        check_against_reference(&reference.batched, &elementary, "tiny BERT, elementary ops");
    }

    /// Random weights are harder on bf16 than trained ones: 1 - 4.5e-5 here against MiniLM's
    /// 1 - 2.2e-5 (AVX512-BF16).
    #[test]
    fn tiny_bert_bf16_matmuls_stay_close_to_transformers() {
        let Some(backend) = bf16_alone() else {
            return;
        };
        let reference = tiny_reference();
        let mut tiled = tiny_model(true);
        assert!(tiled.model.layers[0].qkv.is_packed(), "packed for bf16");
        let ours = tiled.embed_tokens(&reference.ids).unwrap();
        let expected = &reference.batched.vectors;
        let worst = crate::embed::worst_cosine(expected.iter().map(Vec::as_slice), &ours);
        eprintln!(
            "tiny BERT, bf16 ({}): worst cosine vs transformers = 1 - {:.1e}",
            backend.name(),
            1.0 - worst
        );
        assert!(worst > 0.9995, "bf16 ({backend:?}): cosine {worst:.6}");
        let diff = max_diff(expected, &ours);
        assert!(diff > 1e-5, "bf16 vectors equal the f32 ones ({diff:.1e})");
        // Attention runs over each sequence's real tokens: padding changes nothing here either.
        for (ids, batched) in reference.ids.iter().zip(&ours) {
            let alone = tiled.embed_tokens(std::slice::from_ref(ids)).unwrap();
            assert!(cosine(&alone[0], batched) > 0.99999);
        }
    }

    #[test]
    fn padding_does_not_change_vectors() {
        let mut model = tiny_model(false);
        let short = model
            .tokenize("fn add(a: i32) -> i32", InputKind::Document)
            .unwrap();
        let long = model
            .tokenize(&"let x = compute(y, z);\n".repeat(20), InputKind::Document)
            .unwrap();
        let alone = model.embed_tokens(std::slice::from_ref(&short)).unwrap();
        let padded = model.embed_tokens(&[long, short]).unwrap();
        assert!(cosine(&alone[0], &padded[1]) > 0.99999);
        assert!(model.embed_tokens(&[]).unwrap().is_empty());
    }
}
