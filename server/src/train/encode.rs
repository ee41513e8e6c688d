//! The model as training and evaluation see it: coder-lsp's BERT or Qwen2 model in f32, inputs
//! cut to a token limit (queries with their task's instruction, for models that take one), and
//! texts embedded in length-sorted batches.

use std::path::Path;

use crate::embed::lora::{LoraModule, LoraParams};
use crate::embed::{InputKind, Instructions, Trainable, load_trainable};
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};

/// Texts embedded at once outside training (evaluation, hard negatives).
const EMBED_BATCH: usize = 16;

/// A model ready for training, with the token limit every input is cut to.
pub struct Encoder {
    model: Box<dyn Trainable>,
    max_tokens: usize,
    device: Device,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("model", self.model.info())
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

impl Encoder {
    /// Loads the model in `model_dir` onto `device`, its queries to carry `instructions`
    /// (for models that take them); inputs are cut to `max_tokens` (and never beyond the
    /// model's own limit).
    pub fn load(
        model_dir: &Path,
        max_tokens: usize,
        device: &Device,
        instructions: &Instructions,
    ) -> Result<Self> {
        anyhow::ensure!(max_tokens >= 2, "max_tokens must be at least 2");
        let model = load_trainable(model_dir, device, instructions)
            .with_context(|| format!("loading {} for training", model_dir.display()))?;
        let max_tokens = max_tokens.min(model.info().max_tokens);
        Ok(Self {
            model,
            max_tokens,
            device: device.clone(),
        })
    }

    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Where the model runs; adapters to train belong there too.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// `model_type` of the model (`bert`, `qwen2`), as adapters record it.
    pub fn architecture(&self) -> &str {
        &self.model.info().architecture
    }

    /// The matrices LoRA can adapt.
    pub fn lora_modules(&self) -> Vec<LoraModule> {
        self.model.lora_modules()
    }

    /// Token ids of `text` embedded as `kind`, special tokens included, cut to the limit.
    pub fn tokens(&self, text: &str, kind: InputKind) -> Result<Vec<u32>> {
        let mut ids = self.model.tokenize_within(text, kind, self.max_tokens)?;
        if ids.is_empty() {
            // An input must have a token for pooling; BERT tokenizers always add [CLS]/[SEP]
            // and Qwen2 gets an EOS, so this only guards against odd tokenizers.
            anyhow::bail!("the tokenizer produced no tokens for {text:?}");
        }
        ids.truncate(self.max_tokens);
        Ok(ids)
    }

    /// Vectors `(batch, dim)` in the autograd graph (see `BertEmbedder::forward_train`).
    pub fn forward(&self, lora: Option<&LoraParams>, batch: &[Vec<u32>]) -> Result<Tensor> {
        Ok(self.model.forward_train(lora, batch)?)
    }

    /// Unit vectors for `texts` embedded as their kinds, in order, computed in length-sorted
    /// batches.
    pub fn embed(
        &self,
        lora: Option<&LoraParams>,
        texts: &[(&str, InputKind)],
    ) -> Result<Vec<Vec<f32>>> {
        let tokens = texts
            .iter()
            .map(|&(text, kind)| self.tokens(text, kind))
            .collect::<Result<Vec<_>>>()?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| tokens[i].len());
        // Outside the autograd graph: no gradient is needed, and a graph would keep every
        // activation of the batch alive until its vectors are read.
        let lora = lora.map(LoraParams::detached);
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(EMBED_BATCH) {
            let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| tokens[i].clone()).collect();
            let vectors = self.forward(lora.as_ref(), &batch)?.to_vec2::<f32>()?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::train::pairs::TaskFamily;
    use crate::train::testing::{tiny_bert_dir, tiny_qwen2_dir};

    #[test]
    fn queries_carry_their_familys_instruction_only_for_models_that_take_one() {
        let text = "fn parse(input: &str) -> Config";
        let qwen2 = crate::train::testing::encoder(&tiny_qwen2_dir(), 64);
        assert_eq!(qwen2.architecture(), "qwen2");
        let document = qwen2.tokens(text, InputKind::Document).unwrap();
        let kinds = TaskFamily::ALL.map(|family| qwen2.tokens(text, family.query_kind()).unwrap());
        for (family, query) in TaskFamily::ALL.iter().zip(&kinds) {
            assert!(
                query.len() > document.len(),
                "{family:?}: a Qwen2 query has an instruction in front"
            );
            assert_eq!(
                query.last(),
                document.last(),
                "{family:?}: the EOS stays last"
            );
        }
        // text2code and hybrid search for code; code2code looks for similar code; code2text
        // for documentation: three different instructions.
        assert_eq!(kinds[0], kinds[3]);
        assert_ne!(kinds[0], kinds[1]);
        assert_ne!(kinds[0], kinds[2]);
        assert_ne!(kinds[1], kinds[2]);
        // Every input is cut to the limit, the EOS kept last.
        let long = "word ".repeat(200);
        let cut = qwen2.tokens(&long, InputKind::Document).unwrap();
        assert_eq!(cut.len(), 64);
        assert_eq!(cut.last(), document.last());

        let bert = crate::train::testing::encoder(&tiny_bert_dir(), 32);
        assert_eq!(bert.architecture(), "bert");
        assert_eq!(
            bert.tokens(text, TaskFamily::Text2Code.query_kind())
                .unwrap(),
            bert.tokens(text, InputKind::Document).unwrap(),
            "BERT embeds queries and documents alike"
        );
    }
}
