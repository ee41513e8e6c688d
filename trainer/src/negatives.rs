//! Hard negatives: documents the current model ranks near a query's positive but that are not
//! it. Only neighbours scoring below a fraction of the positive's score are kept, since one
//! scoring as high as the positive is likely another right answer (a false negative).

use anyhow::Result;
use coder_lsp::embed::lora::LoraParams;
use serde::{Deserialize, Serialize};

use crate::encode::Encoder;
use crate::eval::{distinct_positives, rank_positives};
use crate::pairs::Pair;

/// How hard negatives are chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NegativeSettings {
    /// Neighbours of the query looked at (its positive excluded).
    pub top_k: usize,
    /// Most negatives kept per pair.
    pub per_query: usize,
    /// A neighbour is kept only if it scores below `max_ratio` × the positive's score.
    pub max_ratio: f32,
}

impl Default for NegativeSettings {
    fn default() -> Self {
        Self {
            top_k: 10,
            per_query: 3,
            max_ratio: 0.95,
        }
    }
}

/// Fills each pair's `negatives` from the other pairs' positives, as ranked by the model (with
/// `lora`, if given). Returns each pair's 0-based rank of its own positive among all distinct
/// positives, which the curriculum uses to drop pairs the model already gets right.
pub fn mine_hard_negatives(
    encoder: &Encoder,
    lora: Option<&LoraParams>,
    pairs: &mut [Pair],
    settings: &NegativeSettings,
) -> Result<Vec<usize>> {
    let (ranks, scores) = rank_positives(encoder, lora, pairs)?;
    let (docs, own) = distinct_positives(pairs);
    let docs: Vec<String> = docs.into_iter().map(str::to_string).collect();
    for ((pair, row), &positive) in pairs.iter_mut().zip(&scores).zip(&own) {
        pair.negatives = choose(row, positive, settings)
            .into_iter()
            .map(|doc| docs[doc].clone())
            .collect();
    }
    Ok(ranks)
}

/// The documents of `scores` (one query's row) to use as its negatives.
fn choose(scores: &[f32], positive: usize, settings: &NegativeSettings) -> Vec<usize> {
    let limit = settings.max_ratio * scores[positive];
    let mut neighbours: Vec<usize> = (0..scores.len()).filter(|&d| d != positive).collect();
    neighbours.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    neighbours
        .into_iter()
        .take(settings.top_k)
        .filter(|&d| scores[d] < limit)
        .take(settings.per_query)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keeps_near_neighbours_below_the_threshold() {
        // Positive 0.80 → limit 0.76: doc 2 (0.79) is a likely false negative; 3, 4, 1 follow.
        let scores = [0.80, 0.30, 0.79, 0.70, 0.50, 0.10];
        let settings = NegativeSettings {
            top_k: 4,
            per_query: 2,
            max_ratio: 0.95,
        };
        assert_eq!(choose(&scores, 0, &settings), [3, 4]);
        let wide = NegativeSettings {
            per_query: 10,
            ..settings.clone()
        };
        // top_k = 4 looks at 2, 3, 4, 1 only; 5 is never reached.
        assert_eq!(choose(&scores, 0, &wide), [3, 4, 1]);
        // A weak positive (0.50, limit 0.475): of the top 4 (0, 2, 3, 1) only 1 is below.
        assert_eq!(choose(&scores, 4, &settings), [1]);
    }
}
