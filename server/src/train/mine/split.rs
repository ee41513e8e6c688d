//! Holding out whole files: train and evaluation pairs never share a positive's file, so a
//! fine-tuned model cannot score on held-out pairs by remembering a file it trained on.
//!
//! Files are ordered by a seeded hash of their path and taken into the held-out set until it
//! holds the requested fraction of the pairs; the same pairs and seed always give the same split.

use std::collections::{BTreeMap, HashSet};

use crate::train::pairs::Pair;

/// Pairs split into training and held-out sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    pub train: Vec<Pair>,
    pub heldout: Vec<Pair>,
}

impl Split {
    /// Distinct positive files of a set of pairs.
    pub fn file_count(pairs: &[Pair]) -> usize {
        pairs
            .iter()
            .map(|p| p.file.as_str())
            .collect::<HashSet<_>>()
            .len()
    }
}

/// Splits `pairs` by their positive's file, holding out about `fraction` (0..=1) of the pairs.
/// Unless `fraction` is 1, at least one file stays in training.
pub fn split_by_file(pairs: Vec<Pair>, fraction: f64, seed: u64) -> Split {
    let fraction = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut per_file: BTreeMap<&str, usize> = BTreeMap::new();
    for pair in &pairs {
        *per_file.entry(pair.file.as_str()).or_default() += 1;
    }
    let mut files: Vec<(&str, usize)> = per_file.into_iter().collect();
    files.sort_by_key(|(file, _)| (file_rank(seed, file), *file));
    // Rounded, so 15% of 10 pairs is 2 and 15% of 2 pairs is 0.
    let target = (fraction * pairs.len() as f64).round() as usize;
    let keep_one = fraction < 1.0;
    let mut heldout_files: HashSet<String> = HashSet::new();
    let mut held = 0;
    for (i, (file, count)) in files.iter().enumerate() {
        let last = i + 1 == files.len();
        if held >= target || (keep_one && last) {
            break;
        }
        // Taking a big file that overshoots by more than it helps is left for a smaller one.
        if held + count > target && (held + count - target) > (target - held) && held > 0 {
            continue;
        }
        heldout_files.insert((*file).to_string());
        held += count;
    }
    let (heldout, train) = pairs
        .into_iter()
        .partition(|p| heldout_files.contains(&p.file));
    Split { train, heldout }
}

/// A file's place in the seeded order.
fn file_rank(seed: u64, file: &str) -> [u8; 8] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&seed.to_le_bytes());
    hasher.update(file.as_bytes());
    let mut rank = [0; 8];
    rank.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    rank
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::pairs::{PairSource, TaskFamily};

    fn pairs(files: usize, per_file: usize) -> Vec<Pair> {
        (0..files)
            .flat_map(|f| {
                (0..per_file).map(move |i| Pair {
                    family: TaskFamily::Text2Code,
                    source: PairSource::DocComment,
                    query: format!("query {f} {i}"),
                    positive: format!("positive {f} {i}"),
                    file: format!("src/file_{f}.rs"),
                    symbol: format!("s{i}"),
                    negatives: Vec::new(),
                })
            })
            .collect()
    }

    #[test]
    fn no_file_is_in_both_sets_and_the_fraction_is_close() {
        for seed in 0..20 {
            let split = split_by_file(pairs(40, 5), 0.2, seed);
            let train: HashSet<&str> = split.train.iter().map(|p| p.file.as_str()).collect();
            let held: HashSet<&str> = split.heldout.iter().map(|p| p.file.as_str()).collect();
            assert!(train.is_disjoint(&held), "seed {seed}");
            assert_eq!(split.train.len() + split.heldout.len(), 200);
            assert_eq!(split.heldout.len(), 40, "seed {seed}");
        }
    }

    #[test]
    fn the_seed_decides_and_repeats() {
        let a = split_by_file(pairs(30, 3), 0.15, 7);
        let b = split_by_file(pairs(30, 3), 0.15, 7);
        let c = split_by_file(pairs(30, 3), 0.15, 8);
        assert_eq!(a, b);
        assert_ne!(a.heldout, c.heldout);
    }

    #[test]
    fn edges_keep_training_data() {
        let one_file = split_by_file(pairs(1, 10), 0.5, 0);
        assert_eq!((one_file.train.len(), one_file.heldout.len()), (10, 0));
        let none = split_by_file(pairs(5, 2), 0.0, 0);
        assert!(none.heldout.is_empty());
        let all = split_by_file(pairs(5, 2), 1.0, 0);
        assert!(all.train.is_empty());
        let nan = split_by_file(pairs(5, 2), f64::NAN, 0);
        assert!(nan.heldout.is_empty());
    }
}
