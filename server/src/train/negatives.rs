//! Hard negatives: documents the current model ranks near a query's positive but that are not
//! it. Only neighbours scoring below a fraction of the positive's score are kept, since one
//! scoring as high as the positive is likely another right answer (a false negative).

use std::collections::HashMap;

use crate::embed::lora::LoraParams;
use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::train::encode::Encoder;
use crate::train::eval::{distinct_positives, rank_positives};
use crate::train::pairs::{Pair, TaskFamily};

/// How hard negatives are chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NegativeSettings {
    /// Neighbours of the query looked at (its positive excluded).
    pub top_k: usize,
    /// Most negatives kept per pair.
    pub per_query: usize,
    /// A neighbour is kept only if it scores below `max_ratio` × the positive's score.
    pub max_ratio: f32,
    /// Most negatives per natural-language question taken from the served ranking (the results
    /// it puts above the answer: lexical false friends as well as dense neighbours), placed
    /// before the dense ones. Needs the workspace (a fine-tune of an indexed root); 0 turns it
    /// off. Reports written before it existed read as 0.
    #[serde(default)]
    pub served: usize,
}

impl Default for NegativeSettings {
    fn default() -> Self {
        Self {
            top_k: 10,
            per_query: 3,
            max_ratio: 0.95,
            served: 2,
        }
    }
}

/// Puts each pair's served confusers (`confusers`, keyed by query, file and symbol) before its
/// dense negatives, keeping at most `settings.per_query` distinct ones, none equal to the
/// positive. Returns how many pairs got at least one.
pub fn merge_served(
    pairs: &mut [Pair],
    confusers: &HashMap<(String, String, String), Vec<String>>,
    settings: &NegativeSettings,
) -> usize {
    let mut with_served = 0;
    for pair in pairs.iter_mut() {
        let key = (pair.query.clone(), pair.file.clone(), pair.symbol.clone());
        let Some(served) = confusers.get(&key).filter(|c| !c.is_empty()) else {
            continue;
        };
        let mut merged: Vec<String> = Vec::with_capacity(settings.per_query);
        for text in served.iter().take(settings.served).chain(&pair.negatives) {
            if merged.len() == settings.per_query.max(1) {
                break;
            }
            if *text != pair.positive && !merged.contains(text) {
                merged.push(text.clone());
            }
        }
        if merged.iter().any(|m| served.contains(m)) {
            with_served += 1;
        }
        pair.negatives = merged;
    }
    with_served
}

/// Fills each pair's `negatives` from the positives of the other pairs of its task family (so a
/// code query gets code negatives and a prose query prose ones), as ranked by the model (with
/// `lora`, if given). Returns each pair's 0-based rank of its own positive among its family's
/// distinct positives, which the curriculum uses to drop pairs the model already gets right.
pub fn mine_hard_negatives(
    encoder: &Encoder,
    lora: Option<&LoraParams>,
    pairs: &mut [Pair],
    settings: &NegativeSettings,
) -> Result<Vec<usize>> {
    let mut ranks = vec![0; pairs.len()];
    for family in TaskFamily::ALL {
        let members: Vec<usize> = (0..pairs.len())
            .filter(|&i| pairs[i].family == family)
            .collect();
        if members.is_empty() {
            continue;
        }
        let group: Vec<Pair> = members.iter().map(|&i| pairs[i].clone()).collect();
        let (group_ranks, scores) = rank_positives(encoder, lora, &group)?;
        let (docs, own) = distinct_positives(&group);
        for (k, &i) in members.iter().enumerate() {
            ranks[i] = group_ranks[k];
            pairs[i].negatives = choose(&scores[k], own[k], settings)
                .into_iter()
                .map(|doc| docs[doc].to_string())
                .collect();
        }
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
    use crate::train::testing::{pair, pairs, tiny_bert_dir};

    #[test]
    fn negatives_come_from_the_same_family_and_never_are_the_positive() {
        let encoder = crate::train::testing::encoder(&tiny_bert_dir(), 32);
        let mut pairs = pairs();
        pairs.push(pair(
            TaskFamily::Code2Text,
            "fn parse_url(s: &str) -> Url",
            "Parses a URL from a string.",
        ));
        let settings = NegativeSettings {
            max_ratio: 10.0,
            ..NegativeSettings::default()
        };
        let ranks = mine_hard_negatives(&encoder, None, &mut pairs, &settings).unwrap();
        assert_eq!(ranks.len(), pairs.len());
        for (i, p) in pairs.iter().enumerate() {
            let same_family: Vec<&str> = pairs
                .iter()
                .filter(|o| o.family == p.family && o.positive != p.positive)
                .map(|o| o.positive.as_str())
                .collect();
            // Every other positive of its family, as the ratio lets all through.
            assert_eq!(p.negatives.len(), same_family.len(), "pair {i}");
            for negative in &p.negatives {
                assert!(
                    same_family.contains(&negative.as_str()),
                    "pair {i}: {negative}"
                );
            }
            assert!(ranks[i] < same_family.len() + 1);
        }
        // The two code2text pairs are each other's negative.
        assert_eq!(pairs[4].negatives, [pairs[6].positive.clone()]);
    }

    #[test]
    fn keeps_near_neighbours_below_the_threshold() {
        // Positive 0.80 → limit 0.76: doc 2 (0.79) is a likely false negative; 3, 4, 1 follow.
        let scores = [0.80, 0.30, 0.79, 0.70, 0.50, 0.10];
        let settings = NegativeSettings {
            top_k: 4,
            per_query: 2,
            max_ratio: 0.95,
            served: 0,
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

    #[test]
    fn served_confusers_come_first_without_repeats_or_the_positive() {
        let pair = |query: &str, negatives: &[&str]| Pair {
            family: TaskFamily::Text2Code,
            source: crate::train::pairs::PairSource::DocComment,
            query: query.into(),
            positive: "fn answer() {}".into(),
            file: "a.rs".into(),
            symbol: "answer".into(),
            negatives: negatives.iter().map(|n| n.to_string()).collect(),
        };
        let mut pairs = vec![
            pair("read a file", &["dense 1", "dense 2", "dense 3"]),
            pair("no confusers here", &["dense 1"]),
            pair("parse a number", &["dense 1"]),
        ];
        let key = |q: &str| (q.to_string(), "a.rs".to_string(), "answer".to_string());
        let confusers = HashMap::from([
            (
                key("read a file"),
                vec!["served 1".into(), "dense 2".into(), "served 3".into()],
            ),
            (key("no confusers here"), vec![]),
            (key("parse a number"), vec!["fn answer() {}".into()]),
        ]);
        let settings = NegativeSettings::default();
        assert_eq!(settings.served, 2);
        let with_served = merge_served(&mut pairs, &confusers, &settings);
        // Two served ones at most, then the dense ones, three in all, none twice.
        assert_eq!(pairs[0].negatives, ["served 1", "dense 2", "dense 1"]);
        assert_eq!(pairs[1].negatives, ["dense 1"]);
        // A "confuser" equal to the positive is never a negative.
        assert_eq!(pairs[2].negatives, ["dense 1"]);
        assert_eq!(with_served, 1);
    }
}
