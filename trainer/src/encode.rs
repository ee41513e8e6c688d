//! The model as training and evaluation see it: MiniLM-style BERT from coder-lsp, inputs cut to
//! a token limit, and texts embedded in length-sorted batches.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use coder_lsp::embed::bert::BertEmbedder;
use coder_lsp::embed::lora::{LoraModule, LoraParams};
use coder_lsp::embed::{Embedder, load_trainable};

/// Texts embedded at once outside training (evaluation, hard negatives).
const EMBED_BATCH: usize = 16;

/// A BERT model ready for training, with the token limit every input is cut to.
pub struct Encoder {
    model: BertEmbedder,
    max_tokens: usize,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("model", &self.model)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

impl Encoder {
    /// Loads the BERT model in `model_dir` onto the CPU; inputs are cut to `max_tokens`
    /// (and never beyond the model's own limit).
    pub fn load(model_dir: &Path, max_tokens: usize) -> Result<Self> {
        anyhow::ensure!(max_tokens >= 2, "max_tokens must be at least 2");
        let model = load_trainable(model_dir, &Device::Cpu)
            .with_context(|| format!("loading {} for training", model_dir.display()))?;
        let max_tokens = max_tokens.min(model.info().max_tokens);
        Ok(Self { model, max_tokens })
    }

    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The matrices LoRA can adapt.
    pub fn lora_modules(&self) -> Vec<LoraModule> {
        self.model.lora_modules()
    }

    /// Token ids of `text`, special tokens included, cut to the limit.
    pub fn tokens(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self
            .model
            .tokenizer()
            .encode_truncated(text, self.max_tokens)?;
        if ids.is_empty() {
            // An input must have a token for pooling; BERT tokenizers always add [CLS]/[SEP],
            // so this only guards against odd tokenizers.
            anyhow::bail!("the tokenizer produced no tokens for {text:?}");
        }
        ids.truncate(self.max_tokens);
        Ok(ids)
    }

    /// Vectors `(batch, dim)` in the autograd graph (see `BertEmbedder::forward_train`).
    pub fn forward(&self, lora: Option<&LoraParams>, batch: &[Vec<u32>]) -> Result<Tensor> {
        Ok(self.model.forward_train(lora, batch)?)
    }

    /// Unit vectors for `texts`, in order, computed in length-sorted batches.
    pub fn embed(&self, lora: Option<&LoraParams>, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let tokens = texts
            .iter()
            .map(|t| self.tokens(t))
            .collect::<Result<Vec<_>>>()?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| tokens[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(EMBED_BATCH) {
            let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| tokens[i].clone()).collect();
            let vectors = self.forward(lora, &batch)?.detach().to_vec2::<f32>()?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}

/// Dot product (cosine for unit vectors).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
