//! Retrieval quality on held-out pairs: each query is ranked against every distinct held-out
//! positive, and nDCG@10 and MRR@10 are averaged over the queries (one relevant document each).

use std::collections::HashMap;

use crate::embed::InputKind;
use crate::embed::lora::{LoraParams, SeededRng};
use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::train::encode::{Encoder, dot};
use crate::train::pairs::Pair;

/// Ranks past this one count for nothing.
pub const CUTOFF: usize = 10;

/// Mean retrieval metrics over a set of queries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetrievalMetrics {
    pub ndcg_at_10: f64,
    pub mrr_at_10: f64,
    pub queries: usize,
}

/// nDCG@10 of one query whose relevant document is at 0-based `rank` (one relevant document,
/// so the ideal DCG is 1).
pub fn ndcg_of(rank: usize) -> f64 {
    if rank < CUTOFF {
        1.0 / ((rank + 2) as f64).log2()
    } else {
        0.0
    }
}

impl RetrievalMetrics {
    /// Metrics from the 0-based rank of each query's relevant document.
    pub fn from_ranks(ranks: &[usize]) -> Self {
        let queries = ranks.len();
        if queries == 0 {
            return Self {
                ndcg_at_10: 0.0,
                mrr_at_10: 0.0,
                queries,
            };
        }
        let (mut ndcg, mut mrr) = (0.0, 0.0);
        for &rank in ranks.iter().filter(|&&r| r < CUTOFF) {
            ndcg += ndcg_of(rank);
            mrr += 1.0 / (rank + 1) as f64;
        }
        Self {
            ndcg_at_10: ndcg / queries as f64,
            mrr_at_10: mrr / queries as f64,
            queries,
        }
    }
}

/// 0-based rank of document `relevant` among `scores`: how many others score strictly higher.
pub fn rank_of(scores: &[f32], relevant: usize) -> usize {
    let target = scores[relevant];
    scores
        .iter()
        .enumerate()
        .filter(|&(i, &s)| i != relevant && s > target)
        .count()
}

/// The distinct positives of `pairs` and, for each pair, the index of its own.
pub fn distinct_positives(pairs: &[Pair]) -> (Vec<&str>, Vec<usize>) {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut docs = Vec::new();
    let own = pairs
        .iter()
        .map(|p| {
            *index.entry(p.positive.as_str()).or_insert_with(|| {
                docs.push(p.positive.as_str());
                docs.len() - 1
            })
        })
        .collect();
    (docs, own)
}

/// For each pair, the rank of its positive among all distinct positives of `pairs`, and the
/// score matrix's rows (query × document) for callers that need more.
pub fn rank_positives(
    encoder: &Encoder,
    lora: Option<&LoraParams>,
    pairs: &[Pair],
) -> Result<(Vec<usize>, Vec<Vec<f32>>)> {
    let (docs, own) = distinct_positives(pairs);
    let queries: Vec<(&str, InputKind)> = pairs
        .iter()
        .map(|p| (p.query.as_str(), p.family.query_kind()))
        .collect();
    let docs: Vec<(&str, InputKind)> = docs.iter().map(|&d| (d, InputKind::Document)).collect();
    let query_vectors = encoder.embed(lora, &queries)?;
    let doc_vectors = encoder.embed(lora, &docs)?;
    let scores: Vec<Vec<f32>> = query_vectors
        .iter()
        .map(|q| doc_vectors.iter().map(|d| dot(q, d)).collect())
        .collect();
    let ranks = scores
        .iter()
        .zip(&own)
        .map(|(row, &relevant)| rank_of(row, relevant))
        .collect();
    Ok((ranks, scores))
}

/// nDCG@10 and MRR@10 of the model (with `lora`, if given) on `pairs`.
pub fn evaluate(
    encoder: &Encoder,
    lora: Option<&LoraParams>,
    pairs: &[Pair],
) -> Result<RetrievalMetrics> {
    let (ranks, _) = rank_positives(encoder, lora, pairs)?;
    Ok(RetrievalMetrics::from_ranks(&ranks))
}

/// Random sign patterns drawn by [`p_value_of_gain`].
const SIGN_FLIPS: usize = 10_000;

/// How likely a gain in mean nDCG@10 at least as large as that from `before` to `after` (each
/// query's 0-based rank under either model, same queries in the same order) arises by chance:
/// the one-sided p-value of a paired sign-flip test, in which each query's difference is
/// equally likely to have gone either way when the models are equally good. Seeded, so a run
/// repeats its verdict. 1 when there is no gain.
pub fn p_value_of_gain(before: &[usize], after: &[usize], seed: u64) -> f64 {
    let differences: Vec<f64> = before
        .iter()
        .zip(after)
        .map(|(&b, &a)| ndcg_of(a) - ndcg_of(b))
        .collect();
    p_value_of_differences(&differences, seed)
}

/// How likely a total at least as large as the sum of `differences` (per query, after minus
/// before) is when each difference's sign is a coin flip: the paired sign-flip test, seeded,
/// [`SIGN_FLIPS`] draws. 1 when the sum is not positive.
pub fn p_value_of_differences(differences: &[f64], seed: u64) -> f64 {
    let differences: Vec<f64> = differences.iter().copied().filter(|d| *d != 0.0).collect();
    let observed: f64 = differences.iter().sum();
    if observed <= 0.0 {
        return 1.0;
    }
    let mut rng = SeededRng::new(seed ^ 0x51_6E_F1_1B);
    let mut as_large = 0usize;
    for _ in 0..SIGN_FLIPS {
        let flipped: f64 = differences
            .iter()
            .map(|&d| if rng.next_u64() & 1 == 0 { d } else { -d })
            .sum();
        // A tolerance for sums that are equal but add up in another order.
        if flipped >= observed - 1e-9 {
            as_large += 1;
        }
    }
    (as_large + 1) as f64 / (SIGN_FLIPS + 1) as f64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::train::pairs::{PairSource, TaskFamily};

    #[test]
    fn metrics_of_a_hand_built_ranking() {
        // Ranks 0, 1, 3 and one past the cutoff.
        let m = RetrievalMetrics::from_ranks(&[0, 1, 3, 12]);
        let ndcg = (1.0 + 1.0 / 3f64.log2() + 1.0 / 5f64.log2() + 0.0) / 4.0;
        let mrr = (1.0 + 0.5 + 0.25 + 0.0) / 4.0;
        assert!((m.ndcg_at_10 - ndcg).abs() < 1e-12, "{m:?}");
        assert!((m.mrr_at_10 - mrr).abs() < 1e-12, "{m:?}");
        assert_eq!(m.queries, 4);
        // (1 + 0.6309 + 0.4307 + 0) / 4
        assert!((m.ndcg_at_10 - 0.5154).abs() < 1e-4, "{m:?}");
        assert!((m.mrr_at_10 - 0.4375).abs() < 1e-12, "{m:?}");
        assert_eq!(RetrievalMetrics::from_ranks(&[0, 0]).ndcg_at_10, 1.0);
        assert_eq!(RetrievalMetrics::from_ranks(&[]).mrr_at_10, 0.0);
        // Rank 9 counts, rank 10 does not.
        assert!(RetrievalMetrics::from_ranks(&[9]).mrr_at_10 > 0.0);
        assert_eq!(RetrievalMetrics::from_ranks(&[10]).mrr_at_10, 0.0);
    }

    #[test]
    fn chance_gains_have_large_p_values_and_steady_ones_small() {
        // Nothing changed, or things got worse: no gain to explain.
        assert_eq!(p_value_of_gain(&[0, 3, 12], &[0, 3, 12], 1), 1.0);
        assert_eq!(p_value_of_gain(&[0, 1], &[2, 4], 1), 1.0);
        // One query of forty moved up, one moved down a little less: chance.
        let mut before = vec![2; 40];
        let mut after = before.clone();
        after[0] = 0;
        before[1] = 1;
        after[1] = 2;
        let p = p_value_of_gain(&before, &after, 7);
        assert!(p > 0.3, "{p}");
        // Thirty of forty queries moved up a place, none down: no coincidence.
        let before = vec![3; 40];
        let after: Vec<usize> = (0..40).map(|i| if i < 30 { 2 } else { 3 }).collect();
        let p = p_value_of_gain(&before, &after, 7);
        assert!(p < 0.001, "{p}");
        // Seeded: the same inputs give the same verdict.
        let mixed_after: Vec<usize> = (0..40).map(|i| i % 5).collect();
        let mixed_before: Vec<usize> = (0..40).map(|i| (i * 7) % 6).collect();
        assert_eq!(
            p_value_of_gain(&mixed_before, &mixed_after, 3),
            p_value_of_gain(&mixed_before, &mixed_after, 3)
        );
    }

    #[test]
    fn rank_counts_strictly_better_documents() {
        let scores = [0.2, 0.9, 0.5, 0.5, 0.1];
        assert_eq!(rank_of(&scores, 1), 0);
        assert_eq!(rank_of(&scores, 2), 1);
        assert_eq!(rank_of(&scores, 3), 1);
        assert_eq!(rank_of(&scores, 4), 4);
    }

    #[test]
    fn shared_positives_are_one_document() {
        let pair = |q: &str, p: &str| Pair {
            family: TaskFamily::Text2Code,
            source: PairSource::DocComment,
            query: q.into(),
            positive: p.into(),
            file: "a.rs".into(),
            symbol: "f".into(),
            negatives: Vec::new(),
        };
        let pairs = [pair("a", "x"), pair("b", "y"), pair("c", "x")];
        let (docs, own) = distinct_positives(&pairs);
        assert_eq!(docs, ["x", "y"]);
        assert_eq!(own, [0, 1, 0]);
    }
}
