//! A Qwen2 decoder used as an embedder (CodeR / BAAI/bge-code-v1 and other last-token models),
//! written on candle-core tensor ops plus candle-nn's fused RMSNorm, RoPE and softmax.
//!
//! candle-transformers' `qwen2::Model` does not fit: it keeps a KV cache, and with a mask its
//! attention becomes bidirectional, while bge-code-v1 is causal. Here every batch is one
//! stateless pass: inputs are padded on the LEFT so that the last position of every row is its
//! last real token (the EOS we append), the mask is causal plus padding, and the vector is that
//! last token's final hidden state, L2-normalised. Queries carry a task instruction.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use super::bf16;
use super::layers::{Linear, MASK_VALUE, Ops, rope_tables};
use super::lora::{LoraModule, LoraParams, LoraTarget};
use super::weights::Weights;
use super::{
    EmbedError, EmbedOptions, Embedder, InputKind, Instructions, ModelInfo, ModelTokenizer,
    TextLimits, Trainable,
};

/// Longest input when sentence_bert_config.json does not say: code chunks are functions, and
/// Qwen2's 32k-position table would otherwise turn whole files into one vector.
const DEFAULT_MAX_TOKENS: usize = 1024;

/// The config.json fields a Qwen2 embedder needs.
#[derive(Debug, Clone, Deserialize)]
struct Qwen2Config {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    /// Grouped-query attention: fewer key/value heads than query heads (same when absent).
    num_key_value_heads: Option<usize>,
    max_position_embeddings: usize,
    #[serde(default = "default_rms_norm_eps")]
    rms_norm_eps: f64,
    /// Older configs (bge-code-v1) write the RoPE base here...
    rope_theta: Option<f64>,
    /// ...newer transformers versions write it here.
    rope_parameters: Option<RopeParameters>,
    rope_scaling: Option<serde_json::Value>,
    #[serde(default = "default_hidden_act")]
    hidden_act: String,
    #[serde(default)]
    use_sliding_window: bool,
    sliding_window: Option<usize>,
    /// Read for completeness: an embedder never uses the output head, tied or not.
    #[serde(default)]
    #[allow(dead_code)]
    tie_word_embeddings: bool,
    eos_token_id: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
struct RopeParameters {
    rope_theta: Option<f64>,
    rope_type: Option<String>,
}

fn default_rms_norm_eps() -> f64 {
    1e-6
}
fn default_hidden_act() -> String {
    "silu".into()
}

impl Qwen2Config {
    fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    fn rope_theta(&self) -> f64 {
        self.rope_theta
            .or_else(|| self.rope_parameters.as_ref().and_then(|p| p.rope_theta))
            .unwrap_or(10_000.0)
    }

    fn check(&self) -> Result<(), String> {
        let heads = self.num_attention_heads;
        if self.hidden_size == 0 || heads == 0 || self.kv_heads() == 0 {
            return Err("hidden_size and the head counts must be positive".into());
        }
        if !self.hidden_size.is_multiple_of(heads) || !self.head_dim().is_multiple_of(2) {
            return Err(format!(
                "hidden_size {} does not split into {heads} heads of an even size",
                self.hidden_size
            ));
        }
        if !heads.is_multiple_of(self.kv_heads()) {
            return Err(format!(
                "num_attention_heads {heads} is not a multiple of num_key_value_heads {}",
                self.kv_heads()
            ));
        }
        if self.hidden_act != "silu" {
            return Err(format!(
                "hidden_act `{}` is not supported (only `silu`)",
                self.hidden_act
            ));
        }
        let scaled = match (&self.rope_scaling, &self.rope_parameters) {
            (Some(v), _) if !v.is_null() => true,
            (_, Some(p)) => p.rope_type.as_deref().is_some_and(|t| t != "default"),
            _ => false,
        };
        if scaled {
            return Err("RoPE scaling is not supported".into());
        }
        if self.max_position_embeddings == 0 {
            return Err("max_position_embeddings must be positive".into());
        }
        Ok(())
    }
}

/// A loaded Qwen2 model with its tokenizer: the [`Embedder`] for `model_type: "qwen2"`.
pub struct Qwen2Embedder {
    info: ModelInfo,
    tokenizer: ModelTokenizer,
    model: Qwen2Model,
    eos_id: u32,
    instructions: Instructions,
}

impl std::fmt::Debug for Qwen2Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qwen2Embedder")
            .field("info", &self.info)
            .field("layers", &self.model.layers.len())
            .field("dtype", &self.model.dtype)
            .field("eos_id", &self.eos_id)
            .finish()
    }
}

impl Qwen2Embedder {
    /// Loads weights, tokenizer and limits from `dir`; `config` is its parsed config.json.
    pub fn load(
        dir: &Path,
        config: &serde_json::Value,
        options: &EmbedOptions,
    ) -> Result<Self, EmbedError> {
        let config = read_config(dir, config)?;
        let TextLimits {
            tokenizer,
            max_tokens,
        } = text_limits_of(dir, &config)?;
        let eos_id = read_eos_id(dir, &config, &tokenizer)?;
        if eos_id as usize >= config.vocab_size {
            return Err(EmbedError::load(
                dir,
                format!("EOS token id {eos_id} is outside the vocabulary"),
            ));
        }
        let mut weights = Weights::read(
            dir,
            &options.device,
            options.dtype,
            "embed_tokens.weight",
            &["", "model."],
        )?;
        weights.merge_adapter(options.adapter.as_ref())?;
        let mut model = Qwen2Model::load(&mut weights, &config, max_tokens, options.dtype)?;
        if options.bf16_tiles
            && options.dtype == DType::F32
            && options.device.is_cpu()
            && bf16::available()
        {
            for layer in &mut model.layers {
                for linear in [
                    &mut layer.qkv,
                    &mut layer.o_proj,
                    &mut layer.gate_up,
                    &mut layer.down_proj,
                ] {
                    linear.pack().map_err(|e| {
                        EmbedError::load(dir, format!("packing weights for bf16 matmuls: {e}"))
                    })?;
                }
            }
        }
        Ok(Self {
            info: ModelInfo {
                architecture: "qwen2".into(),
                dim: config.hidden_size,
                max_tokens,
                query_instructions: true,
            },
            tokenizer,
            model,
            eos_id,
            instructions: options.instructions.clone(),
        })
    }

    /// The text the model embeds for `text` of `kind`.
    fn format(&self, text: &str, kind: InputKind) -> String {
        match kind {
            InputKind::Query(task) => self.instructions.format_query(task, text),
            InputKind::Document => text.to_string(),
        }
    }
}

impl Embedder for Qwen2Embedder {
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
        let vocab = self.model.embed_tokens.dim(0)?;
        super::check_token_batch(batch, self.model.max_positions, vocab)?;
        let last = self.model.forward_last_token(batch, self.eos_id, None)?;
        Ok(super::l2_normalize(&last.to_dtype(DType::F32)?)?.to_vec2::<f32>()?)
    }
}

/// Fine-tuning: LoRA on the attention projections, as CodeR trains bge-code-v1.
impl Trainable for Qwen2Embedder {
    fn lora_modules(&self) -> Vec<LoraModule> {
        let model = &self.model;
        let hidden = self.info.dim;
        let kv_size = model.kv_heads * model.head_dim;
        (0..model.layers.len())
            .flat_map(|layer| {
                LoraTarget::ALL.map(|target| LoraModule {
                    name: lora_module_name(layer, target),
                    target,
                    inputs: hidden,
                    outputs: match target {
                        LoraTarget::Key | LoraTarget::Value => kv_size,
                        LoraTarget::Query | LoraTarget::AttentionOutput => hidden,
                    },
                })
            })
            .collect()
    }

    fn forward_train(
        &self,
        lora: Option<&LoraParams>,
        batch: &[Vec<u32>],
    ) -> Result<Tensor, EmbedError> {
        let vocab = self.model.embed_tokens.dim(0)?;
        super::check_training_batch(batch, self.model.max_positions, vocab)?;
        let last = self.model.forward_last_token(batch, self.eos_id, lora)?;
        Ok(super::l2_normalize(&last.to_dtype(DType::F32)?)?)
    }

    fn tokenize_within(
        &self,
        text: &str,
        kind: InputKind,
        max_tokens: usize,
    ) -> Result<Vec<u32>, EmbedError> {
        // The tokenizer leaves room for the EOS (`with_appended_token`).
        let mut ids = self.tokenizer.encode_truncated(
            &self.format(text, kind),
            max_tokens.min(self.info.max_tokens),
        )?;
        ids.push(self.eos_id);
        Ok(ids)
    }
}

/// The EOS appended to every input: `eos_token` of tokenizer_config.json (what the reference
/// implementation uses), else `eos_token_id` of config.json.
/// The tokenizer and input limit of a Qwen2 model, without its weights.
pub(crate) fn text_limits(
    dir: &Path,
    config: &serde_json::Value,
) -> Result<TextLimits, EmbedError> {
    text_limits_of(dir, &read_config(dir, config)?)
}

fn read_config(dir: &Path, config: &serde_json::Value) -> Result<Qwen2Config, EmbedError> {
    let config = Qwen2Config::deserialize(config)
        .map_err(|e| EmbedError::load(dir, format!("config.json: {e}")))?;
    config
        .check()
        .map_err(|e| EmbedError::load(dir, format!("config.json: {e}")))?;
    Ok(config)
}

fn text_limits_of(dir: &Path, config: &Qwen2Config) -> Result<TextLimits, EmbedError> {
    let mut max_tokens = super::sentence_transformers_max_len(dir)?
        .unwrap_or(DEFAULT_MAX_TOKENS)
        .min(config.max_position_embeddings);
    if config.use_sliding_window
        && let Some(window) = config.sliding_window
    {
        // Inputs within the window attend fully, so the sliding window never applies.
        max_tokens = max_tokens.min(window.max(2));
    }
    Ok(TextLimits {
        // The EOS token appended to every input is one more special token.
        tokenizer: super::read_tokenizer(dir)?.with_appended_token(),
        max_tokens,
    })
}

fn read_eos_id(
    dir: &Path,
    config: &Qwen2Config,
    tokenizer: &ModelTokenizer,
) -> Result<u32, EmbedError> {
    const FILE: &str = "tokenizer_config.json";
    if dir.join(FILE).is_file() {
        let tokenizer_config = super::read_json(dir, FILE)?;
        let token = match tokenizer_config.get("eos_token") {
            Some(serde_json::Value::String(s)) => Some(s.as_str()),
            Some(serde_json::Value::Object(o)) => {
                o.get("content").and_then(serde_json::Value::as_str)
            }
            _ => None,
        };
        if let Some(token) = token {
            return tokenizer.token_to_id(token).ok_or_else(|| {
                EmbedError::load(
                    dir,
                    format!("{FILE}: eos_token {token:?} is not in tokenizer.json"),
                )
            });
        }
    }
    let id = match &config.eos_token_id {
        Some(serde_json::Value::Array(ids)) => ids.first().and_then(serde_json::Value::as_u64),
        Some(value) => value.as_u64(),
        None => None,
    };
    id.and_then(|id| u32::try_from(id).ok()).ok_or_else(|| {
        EmbedError::load(
            dir,
            "no EOS token: neither tokenizer_config.json `eos_token` nor config.json `eos_token_id`",
        )
    })
}

/// One decoder layer: pre-norm attention and pre-norm SwiGLU feed-forward, each residual.
struct Layer {
    input_norm: Tensor,
    /// Query, key and value projections fused into one matmul (rows: q, then k, then v).
    qkv: Linear,
    o_proj: Linear,
    post_attention_norm: Tensor,
    /// Gate and up projections fused (rows: gate, then up).
    gate_up: Linear,
    down_proj: Linear,
}

impl Layer {
    /// Layer `index` with `lora`'s updates added to its attention weights (the fused QKV
    /// weight gets the query, key and value updates in its three row blocks).
    fn with_lora(
        &self,
        index: usize,
        lora: &LoraParams,
        sizes: [usize; 3],
    ) -> candle_core::Result<Self> {
        let blocks = [LoraTarget::Query, LoraTarget::Key, LoraTarget::Value]
            .into_iter()
            .map(|target| lora.delta(&lora_module_name(index, target)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            input_norm: self.input_norm.clone(),
            qkv: self.qkv.plus_blocks(blocks, &sizes)?,
            o_proj: self
                .o_proj
                .plus(lora.delta(&lora_module_name(index, LoraTarget::AttentionOutput))?)?,
            post_attention_norm: self.post_attention_norm.clone(),
            gate_up: self.gate_up.plus(None)?,
            down_proj: self.down_proj.plus(None)?,
        })
    }
}

/// The name (without `.weight`) under which checkpoints and adapters know layer `layer`'s
/// `target` projection; the `model.` prefix some checkpoints add is left out, as weight
/// lookups add it themselves.
fn lora_module_name(layer: usize, target: LoraTarget) -> String {
    let what = match target {
        LoraTarget::Query => "q_proj",
        LoraTarget::Key => "k_proj",
        LoraTarget::Value => "v_proj",
        LoraTarget::AttentionOutput => "o_proj",
    };
    format!("layers.{layer}.self_attn.{what}")
}

struct Qwen2Model {
    embed_tokens: Tensor,
    layers: Vec<Layer>,
    final_norm: Tensor,
    /// RoPE tables `(max_positions, head_dim/2)` in the model's precision.
    cos: Tensor,
    sin: Tensor,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    eps: f32,
    max_positions: usize,
    dtype: DType,
}

impl Qwen2Model {
    fn load(
        w: &mut Weights,
        c: &Qwen2Config,
        max_positions: usize,
        dtype: DType,
    ) -> Result<Self, EmbedError> {
        let (h, head_dim, kv) = (c.hidden_size, c.head_dim(), c.kv_heads());
        let kv_size = kv * head_dim;
        let embed_tokens = w.take("embed_tokens.weight", &[], &[c.vocab_size, h])?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let p = format!("layers.{i}");
            let dir = w.dir.clone();
            let fuse = |parts: &[Tensor], what: &str| {
                Tensor::cat(parts, 0)
                    .map_err(|e| EmbedError::load(&dir, format!("{p}.{what}: {e}")))
            };
            let mut qkv_weights = Vec::with_capacity(3);
            let mut qkv_biases = Vec::with_capacity(3);
            for (name, size) in [("q_proj", h), ("k_proj", kv_size), ("v_proj", kv_size)] {
                let name = format!("{p}.self_attn.{name}");
                qkv_weights.push(w.take(&format!("{name}.weight"), &[], &[size, h])?);
                // Qwen2 has q/k/v biases; a checkpoint without them is treated as zero bias.
                qkv_biases.push(match w.take_optional(&format!("{name}.bias"), &[size])? {
                    Some(b) => b,
                    None => Tensor::zeros(size, dtype, embed_tokens.device())?,
                });
            }
            let qkv = Linear::new(
                fuse(&qkv_weights, "self_attn")?,
                Some(fuse(&qkv_biases, "self_attn")?),
            );
            let gate = w.take(
                &format!("{p}.mlp.gate_proj.weight"),
                &[],
                &[c.intermediate_size, h],
            )?;
            let up = w.take(
                &format!("{p}.mlp.up_proj.weight"),
                &[],
                &[c.intermediate_size, h],
            )?;
            layers.push(Layer {
                input_norm: w.take(&format!("{p}.input_layernorm.weight"), &[], &[h])?,
                qkv,
                o_proj: Linear::new(
                    w.take(&format!("{p}.self_attn.o_proj.weight"), &[], &[h, h])?,
                    None,
                ),
                post_attention_norm: w.take(
                    &format!("{p}.post_attention_layernorm.weight"),
                    &[],
                    &[h],
                )?,
                gate_up: Linear::new(fuse(&[gate, up], "mlp")?, None),
                down_proj: Linear::new(
                    w.take(
                        &format!("{p}.mlp.down_proj.weight"),
                        &[],
                        &[h, c.intermediate_size],
                    )?,
                    None,
                ),
            });
        }
        let final_norm = w.take("norm.weight", &[], &[h])?;
        let (cos, sin) = rope_tables(
            c.rope_theta(),
            head_dim,
            max_positions,
            embed_tokens.device(),
        )
        .and_then(|(cos, sin)| Ok((cos.to_dtype(dtype)?, sin.to_dtype(dtype)?)))
        .map_err(|e| EmbedError::load(&w.dir, format!("RoPE tables: {e}")))?;
        Ok(Self {
            embed_tokens,
            layers,
            final_norm,
            cos,
            sin,
            heads: c.num_attention_heads,
            kv_heads: kv,
            head_dim,
            eps: c.rms_norm_eps as f32,
            max_positions,
            dtype,
        })
    }

    fn device(&self) -> &Device {
        self.embed_tokens.device()
    }

    /// Final hidden state `(batch, hidden)` of each input's last token. With `lora`, its
    /// updates are added to the attention weights and every op is differentiable (candle's
    /// fused RMSNorm and RoPE have no backward pass), for training.
    fn forward_last_token(
        &self,
        batch: &[Vec<u32>],
        pad_id: u32,
        lora: Option<&LoraParams>,
    ) -> candle_core::Result<Tensor> {
        let (b, t) = (batch.len(), batch.iter().map(Vec::len).max().unwrap_or(0));
        let hidden = self.embed_tokens.dim(1)?;
        let (ids, bias) = left_pad(batch, t, pad_id, self.device())?;
        let mut x = self.embed_tokens.embedding(&ids.flatten_all()?)?;
        // Positions count from the first column for every row, as transformers does; RoPE
        // depends only on the distance between two tokens, so left padding shifts nothing.
        let cos = self.cos.narrow(0, 0, t)?;
        let sin = self.sin.narrow(0, 0, t)?;
        let ops = Ops {
            differentiable: lora.is_some(),
            eps: self.eps,
        };
        let kv_size = self.kv_heads * self.head_dim;
        let sizes = [self.heads * self.head_dim, kv_size, kv_size];
        for (i, layer) in self.layers.iter().enumerate() {
            let adapted;
            let layer = match lora {
                Some(lora) => {
                    adapted = layer.with_lora(i, lora, sizes)?;
                    &adapted
                }
                None => layer,
            };
            x = self.layer_forward(layer, ops, &x, &bias, &cos, &sin, b, t)?;
        }
        // Left padding puts every row's last real token in the last column.
        let last = x
            .reshape((b, t, hidden))?
            .narrow(1, t - 1, 1)?
            .squeeze(1)?
            .contiguous()?;
        ops.rms_norm(&last, &self.final_norm)
    }

    #[allow(clippy::too_many_arguments)]
    fn layer_forward(
        &self,
        layer: &Layer,
        ops: Ops,
        x: &Tensor,
        bias: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        b: usize,
        t: usize,
    ) -> candle_core::Result<Tensor> {
        let (heads, kv_heads, d) = (self.heads, self.kv_heads, self.head_dim);
        let normed = ops.rms_norm(x, &layer.input_norm)?;
        let qkv = layer.qkv.forward(&normed)?;
        let split = |start: usize, n: usize| -> candle_core::Result<Tensor> {
            qkv.narrow(1, start * d, n * d)?
                .reshape((b, t, n, d))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = ops.rope(&split(0, heads)?, cos, sin)?;
        let k = ops.rope(&split(heads, kv_heads)?, cos, sin)?;
        let v = split(heads + kv_heads, kv_heads)?;
        let (k, v) = (
            repeat_kv(&k, heads / kv_heads)?,
            repeat_kv(&v, heads / kv_heads)?,
        );

        let scale = 1.0 / (d as f64).sqrt();
        // Scores and softmax in f32: half precision cannot hold the mask value, and the sums of
        // long rows lose too much in it.
        let scores = (q.matmul(&k.t()?)? * scale)?
            .to_dtype(DType::F32)?
            .broadcast_add(bias)?;
        let probs = ops.softmax(&scores)?.to_dtype(self.dtype)?;
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b * t, heads * d))?;
        let x = (layer.o_proj.forward(&context)? + x)?;

        let normed = ops.rms_norm(&x, &layer.post_attention_norm)?;
        let gate_up = layer.gate_up.forward(&normed)?;
        let width = gate_up.dim(1)? / 2;
        let activated =
            (gate_up.narrow(1, 0, width)?.silu()? * gate_up.narrow(1, width, width)?)?;
        layer.down_proj.forward(&activated)? + x
    }
}

/// Key/value heads repeated for grouped-query attention: `(b, kv, t, d)` → `(b, kv*n, t, d)`,
/// each head `n` times in a row (query head `i` reads key/value head `i / n`).
fn repeat_kv(x: &Tensor, n: usize) -> candle_core::Result<Tensor> {
    if n == 1 {
        return Ok(x.clone());
    }
    let (b, kv, t, d) = x.dims4()?;
    x.unsqueeze(2)?
        .expand((b, kv, n, t, d))?
        .reshape((b, kv * n, t, d))
}

/// Ids `(batch, seq)` padded on the left with `pad_id`, and the attention bias
/// `(batch, 1, seq, seq)` in f32: 0 where query `i` may see key `j` (`j <= i` and `j` is a real
/// token), [`MASK_VALUE`] elsewhere.
fn left_pad(
    batch: &[Vec<u32>],
    seq: usize,
    pad_id: u32,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let mut ids = Vec::with_capacity(batch.len() * seq);
    let mut padding = Vec::with_capacity(batch.len() * seq);
    for input in batch {
        let pad = seq - input.len();
        ids.extend(std::iter::repeat_n(pad_id, pad));
        ids.extend_from_slice(input);
        padding.extend(std::iter::repeat_n(MASK_VALUE, pad));
        padding.extend(std::iter::repeat_n(0f32, input.len()));
    }
    let causal: Vec<f32> = (0..seq)
        .flat_map(|i| (0..seq).map(move |j| if j <= i { 0.0 } else { MASK_VALUE }))
        .collect();
    let causal = Tensor::from_vec(causal, (1, 1, seq, seq), device)?;
    let padding = Tensor::from_vec(padding, (batch.len(), 1, 1, seq), device)?;
    Ok((
        Tensor::from_vec(ids, (batch.len(), seq), device)?,
        causal.broadcast_add(&padding)?,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::embed::{QueryTask, cosine, load, load_with, tiny_qwen2_dir};

    struct ReferenceInput {
        kind: InputKind,
        text: String,
        formatted: String,
        ids: Vec<u32>,
        vector: Vec<f32>,
        batched_vector: Vec<f32>,
    }

    fn reference() -> (String, Vec<ReferenceInput>) {
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(tiny_qwen2_dir().join("reference.json")).unwrap(),
        )
        .unwrap();
        let floats = |v: &serde_json::Value| -> Vec<f32> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        };
        let inputs = json["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| ReferenceInput {
                kind: match i["kind"].as_str().unwrap() {
                    "query" => InputKind::Query(QueryTask::CodeSearch),
                    _ => InputKind::Document,
                },
                text: i["text"].as_str().unwrap().to_string(),
                formatted: i["formatted"].as_str().unwrap().to_string(),
                ids: i["ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap() as u32)
                    .collect(),
                vector: floats(&i["vector"]),
                batched_vector: floats(&i["batched_vector"]),
            })
            .collect();
        (json["instruction"].as_str().unwrap().to_string(), inputs)
    }

    /// The tiny model with every matmul in f32, to compare against transformers exactly.
    fn model() -> Box<dyn Embedder> {
        load_with(&tiny_qwen2_dir(), &EmbedOptions::exact(&Device::Cpu)).unwrap()
    }

    #[test]
    fn config_decides_the_architecture() {
        let model = model();
        assert_eq!(
            model.info(),
            &ModelInfo {
                architecture: "qwen2".into(),
                dim: 64,
                max_tokens: 512,
                query_instructions: true,
            }
        );
        // The EOS the embedder appends counts as a special token, so chunks leave room for it.
        assert_eq!(model.tokenizer().special_tokens_count(), 1);
    }

    #[test]
    fn tokenizes_like_the_reference_with_instruction_and_eos() {
        let (instruction, inputs) = reference();
        assert_eq!(instruction, QueryTask::CodeSearch.default_instruction());
        let model = model();
        for input in &inputs {
            let ids = model.tokenize(&input.text, input.kind).unwrap();
            assert_eq!(ids, input.ids, "{:?}", input.formatted);
            assert_eq!(ids.last(), Some(&0), "EOS (id 0) is appended");
        }
        // Documents carry no instruction; MiniLM-style models would not either.
        let doc = model.tokenize("gcd", InputKind::Document).unwrap();
        let query = model
            .tokenize("gcd", InputKind::Query(QueryTask::CodeSearch))
            .unwrap();
        assert!(query.len() > doc.len() + 10);
    }

    #[test]
    fn truncation_keeps_room_for_the_eos() {
        let model = model();
        let ids = model
            .tokenize(&"let x = compute(y);\n".repeat(400), InputKind::Document)
            .unwrap();
        assert_eq!(ids.len(), model.info().max_tokens);
        assert_eq!(ids.last(), Some(&0));
    }

    fn check(
        inputs: &[ReferenceInput],
        ours: &[Vec<f32>],
        expected: impl Fn(&ReferenceInput) -> &[f32],
        how: &str,
    ) {
        let mut worst = f64::MAX;
        for (input, got) in inputs.iter().zip(ours) {
            assert_eq!(got.len(), 64);
            let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "{how}: norm {norm}");
            let cos = cosine(expected(input), got);
            assert!(cos > 0.9999, "{how}: cosine {cos:.6} for {:?}", input.text);
            worst = worst.min(cos);
        }
        eprintln!(
            "{how}: worst cosine vs transformers = 1 - {:.1e}",
            1.0 - worst
        );
    }

    #[test]
    fn matches_transformers_one_at_a_time() {
        let (_, inputs) = reference();
        let mut model = model();
        let ours: Vec<Vec<f32>> = inputs
            .iter()
            .map(|i| {
                model
                    .embed_tokens(std::slice::from_ref(&i.ids))
                    .unwrap()
                    .remove(0)
            })
            .collect();
        check(&inputs, &ours, |i| &i.vector, "one at a time");
    }

    #[test]
    fn matches_transformers_in_one_left_padded_batch() {
        let (_, inputs) = reference();
        let lengths: std::collections::BTreeSet<usize> =
            inputs.iter().map(|i| i.ids.len()).collect();
        assert!(
            lengths.len() > 2,
            "the fixture must mix lengths: {lengths:?}"
        );
        let mut model = model();
        let batch: Vec<Vec<u32>> = inputs.iter().map(|i| i.ids.clone()).collect();
        let ours = model.embed_tokens(&batch).unwrap();
        check(&inputs, &ours, |i| &i.batched_vector, "one batch");
        check(&inputs, &ours, |i| &i.vector, "one batch vs alone");
    }

    #[test]
    fn bf16_matmuls_stay_close_to_transformers() {
        crate::embed::bf16::prefer_bf16_in_tests();
        let Some(backend) = crate::embed::bf16::backend() else {
            eprintln!("no bf16 backend in use here (embed::bf16::backend): only f32");
            return;
        };
        let (_, inputs) = reference();
        let mut model = load(&tiny_qwen2_dir(), &Device::Cpu).unwrap();
        let batch: Vec<Vec<u32>> = inputs.iter().map(|i| i.ids.clone()).collect();
        let ours = model.embed_tokens(&batch).unwrap();
        let exact =
            crate::embed::worst_cosine(inputs.iter().map(|i| i.batched_vector.as_slice()), &ours);
        eprintln!(
            "bf16 ({}): worst cosine vs transformers = 1 - {:.1e}",
            backend.name(),
            1.0 - exact
        );
        // Random tiny weights are harder on bf16 than trained ones (MiniLM: 1 - 1e-5).
        assert!(exact > 0.999, "bf16 ({backend:?}): cosine {exact:.6}");
    }

    #[test]
    fn padding_does_not_change_vectors() {
        let mut model = model();
        let short = model
            .tokenize("fn add(a: i32) -> i32", InputKind::Document)
            .unwrap();
        let long = model
            .tokenize(&"let x = compute(y, z);\n".repeat(20), InputKind::Document)
            .unwrap();
        let alone = model.embed_tokens(std::slice::from_ref(&short)).unwrap();
        let padded = model
            .embed_tokens(&[long.clone(), short.clone(), long])
            .unwrap();
        assert!(cosine(&alone[0], &padded[1]) > 0.99999);
        // Without the padding mask the short input would read the pad tokens and change.
        assert!(cosine(&padded[0], &padded[1]) < 0.999);
    }

    #[test]
    fn the_mask_is_causal_and_hides_padding() {
        let (_, bias) = left_pad(&[vec![5, 6, 7], vec![8]], 3, 0, &Device::Cpu).unwrap();
        let bias = bias.squeeze(1).unwrap().to_vec3::<f32>().unwrap();
        let visible = |row: &Vec<f32>| -> Vec<bool> { row.iter().map(|&v| v == 0.0).collect() };
        // The full row: causal only.
        assert_eq!(visible(&bias[0][0]), [true, false, false]);
        assert_eq!(visible(&bias[0][2]), [true, true, true]);
        // The short row, padded on the left: its one token sees only itself.
        assert_eq!(visible(&bias[1][2]), [false, false, true]);
        assert!(bias[1][0].iter().all(|v| v.is_finite()));
    }

    #[test]
    fn weights_with_a_model_prefix_load_too() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
            std::fs::copy(tiny_qwen2_dir().join(name), dir.path().join(name)).unwrap();
        }
        let tensors = candle_core::safetensors::load(
            tiny_qwen2_dir().join("model.safetensors"),
            &Device::Cpu,
        )
        .unwrap();
        let prefixed: std::collections::HashMap<String, Tensor> = tensors
            .into_iter()
            .map(|(name, t)| (format!("model.{name}"), t))
            .collect();
        candle_core::safetensors::save(&prefixed, dir.path().join("model.safetensors")).unwrap();
        let mut ours = load_with(dir.path(), &EmbedOptions::exact(&Device::Cpu)).unwrap();
        let mut theirs = model();
        let ids = theirs
            .tokenize("fn main() {}", InputKind::Document)
            .unwrap();
        let a = ours.embed_tokens(std::slice::from_ref(&ids)).unwrap();
        let b = theirs.embed_tokens(&[ids]).unwrap();
        assert!(cosine(&a[0], &b[0]) > 0.999999);
    }

    #[test]
    fn configured_instructions_change_queries_only() {
        let mut options = EmbedOptions::new(&Device::Cpu);
        options
            .instructions
            .set(QueryTask::CodeSearch, "Find code.")
            .unwrap();
        let custom = load_with(&tiny_qwen2_dir(), &options).unwrap();
        let default = model();
        let expected = custom
            .tokenizer()
            .encode("<instruct>Find code.\n<query>gcd", false)
            .unwrap();
        let got = custom
            .tokenize("gcd", InputKind::Query(QueryTask::CodeSearch))
            .unwrap();
        assert_eq!(got[..got.len() - 1], expected[..]);
        assert_eq!(
            custom.tokenize("gcd", InputKind::Document).unwrap(),
            default.tokenize("gcd", InputKind::Document).unwrap()
        );
        assert_ne!(
            default
                .tokenize("gcd", InputKind::Query(QueryTask::SimilarCode))
                .unwrap(),
            default
                .tokenize("gcd", InputKind::Query(QueryTask::CodeSearch))
                .unwrap()
        );
    }

    #[test]
    fn half_precision_stays_close_to_f32() {
        // What a GPU runs (bf16/f16), checked on the CPU so the cast points are tested here.
        let (_, inputs) = reference();
        let mut options = EmbedOptions::new(&Device::Cpu);
        options.dtype = DType::F16;
        let mut half = load_with(&tiny_qwen2_dir(), &options).unwrap();
        let batch: Vec<Vec<u32>> = inputs.iter().map(|i| i.ids.clone()).collect();
        let ours = half.embed_tokens(&batch).unwrap();
        for (input, got) in inputs.iter().zip(&ours) {
            let cos = cosine(&input.vector, got);
            assert!(cos > 0.99, "f16 cosine {cos:.4} for {:?}", input.text);
        }
    }

    #[test]
    fn bad_configs_are_load_errors() {
        let base: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(tiny_qwen2_dir().join("config.json")).unwrap(),
        )
        .unwrap();
        for (field, value, needle) in [
            (
                "num_key_value_heads",
                serde_json::json!(3),
                "num_key_value_heads",
            ),
            ("hidden_act", serde_json::json!("gelu"), "hidden_act"),
            (
                "rope_scaling",
                serde_json::json!({"type": "yarn", "factor": 4.0}),
                "RoPE scaling",
            ),
            ("intermediate_size", serde_json::json!(256), "mlp.gate_proj"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            for name in [
                "tokenizer.json",
                "tokenizer_config.json",
                "model.safetensors",
            ] {
                std::fs::copy(tiny_qwen2_dir().join(name), dir.path().join(name)).unwrap();
            }
            let mut config = base.clone();
            config[field] = value;
            std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
            let err = match load(dir.path(), &Device::Cpu) {
                Ok(_) => panic!("{field}: loaded but should not"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(needle), "{field}: {err}");
        }
    }

    /// Throughput on this machine, tiny Qwen2 against MiniLM in the same run (a ratio, as our
    /// benchmarks report): `cargo nextest run -p coder-lsp --run-ignored only qwen2_throughput`.
    #[test]
    #[ignore = "a benchmark: run it on purpose"]
    fn qwen2_throughput() {
        let texts: Vec<String> = (0..256)
            .map(|i| format!("fn handler_{i}(request: &Request) -> Response {{\n    let id = request.id + {i};\n    respond(id, \"ok\")\n}}"))
            .collect();
        let measure = |mut model: Box<dyn Embedder>| -> f64 {
            let tokens: Vec<Vec<u32>> = texts
                .iter()
                .map(|t| model.tokenize(t, InputKind::Document).unwrap())
                .collect();
            let count: usize = tokens.iter().map(Vec::len).sum();
            let start = std::time::Instant::now();
            for batch in tokens.chunks(64) {
                model.embed_tokens(batch).unwrap();
            }
            count as f64 / start.elapsed().as_secs_f64()
        };
        let qwen = measure(model());
        let minilm = measure(load(&crate::embed::test_model_dir(), &Device::Cpu).unwrap());
        eprintln!(
            "CPU tokens/s: tiny qwen2 {qwen:.0}, MiniLM {minilm:.0} (ratio {:.2})",
            qwen / minilm
        );
    }
}
