//! Mining training pairs from one repository, CodeR-style.
//!
//! [`mine_repository`] reads the repository the way the index does (`repo`), lets each miner
//! propose pairs (`symbol_pairs`, `code_pairs`, `readme_pairs`, `commit_pairs`, and `generator`
//! when an LLM endpoint is given), then filters
//! them: pairs too short to mean anything go, duplicates go, and no symbol is the positive of
//! more than [`PairLimits::max_per_symbol`] pairs. [`split::split_by_file`] then holds out whole
//! files for evaluation.

mod code_pairs;
mod commit_pairs;
mod generator;
mod names;
mod readme_pairs;
mod repo;
pub mod split;
mod symbol_pairs;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::chunk::Chunker;
use crate::workspace::{self, WalkOptions};

pub use commit_pairs::HistoryReport;
pub use generator::{GeneratorOptions, GeneratorReport};
pub use split::{Split, split_by_file};

use crate::train::pairs::{Pair, PairSource, TaskFamily};
use repo::{Repo, SymbolRef};

/// When a pair is too thin to teach anything. Words are runs of at least two letters or
/// digits, so punctuation and one-letter names do not count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairLimits {
    /// Fewest words on a natural-language side (a doc, a commit message, a README section).
    pub min_text_words: usize,
    /// Fewest words on a code side (a chunk, beyond what any chunk header says).
    pub min_code_words: usize,
    /// Most pairs with the same positive symbol, so one popular function does not dominate.
    pub max_per_symbol: usize,
    /// Largest share of the kept pairs that may be signature pairs (identifier words and a
    /// signature → the body). Their query is mostly copied from their positive, so they teach
    /// name matching, which the lexical half of the served ranking already does; unchecked they
    /// are the largest group (a third of the pairs of a typical Go or Python repository). 1.0
    /// keeps them all.
    pub max_signature_share: f64,
}

impl Default for PairLimits {
    fn default() -> Self {
        Self {
            // "Parses a duration." is three words: shorter docs ("Getter.", "TODO") say nothing.
            min_text_words: 3,
            // A chunk header alone ("function f · a.rs") is about four words; a body adds more.
            min_code_words: 8,
            max_per_symbol: 8,
            max_signature_share: 0.2,
        }
    }
}

/// How a repository is mined.
#[derive(Debug, Clone)]
pub struct MineOptions {
    /// Cuts symbols into the chunks the index embeds (the model's tokenizer and limit).
    pub chunker: Chunker,
    pub walk: WalkOptions,
    pub limits: PairLimits,
    /// Most commits of the git history read (0: the history is not mined).
    pub max_commits: usize,
    /// An LLM endpoint that writes queries for functions (`None`: no generated queries).
    pub generator: Option<GeneratorOptions>,
}

impl MineOptions {
    /// Default walk, limits and history depth for `chunker`.
    pub fn new(chunker: Chunker) -> Self {
        Self {
            chunker,
            walk: WalkOptions::default(),
            limits: PairLimits::default(),
            max_commits: DEFAULT_MAX_COMMITS,
            generator: None,
        }
    }
}

/// Commits read by default: enough history to learn the vocabulary of recent work.
pub const DEFAULT_MAX_COMMITS: usize = 500;

/// What mining found, and what it dropped.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct MineStats {
    /// Files read and symbols found in them.
    pub files: usize,
    pub symbols: usize,
    /// Files read as plain text (formats and languages without symbols here: OCaml, Haskell in a
    /// default build, YAML, …): nothing is mined from them.
    pub text_files: usize,
    /// Files left out: binary, too large, unreadable.
    pub skipped_files: usize,
    /// Pairs proposed by each source before filtering.
    pub proposed: BTreeMap<PairSource, usize>,
    /// Dropped for having too few words on one side.
    pub too_short: usize,
    /// Dropped as a repeat of an earlier pair (same query and positive).
    pub duplicates: usize,
    /// Dropped because their symbol already had `max_per_symbol` pairs.
    pub over_symbol_cap: usize,
    /// Signature pairs dropped to keep them within `max_signature_share` of the pairs.
    pub over_signature_share: usize,
    pub history: HistoryReport,
    /// What the query generator did, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator: Option<GeneratorReport>,
    /// Wall-clock time of the whole run.
    #[serde(serialize_with = "seconds")]
    pub elapsed: Duration,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// The pairs of one repository and how they were found.
#[derive(Debug, Clone, Default)]
pub struct MinedPairs {
    pub pairs: Vec<Pair>,
    pub stats: MineStats,
}

impl MinedPairs {
    /// Pair counts per task family (every family present, zero or not).
    pub fn by_family(&self) -> BTreeMap<TaskFamily, usize> {
        count_by(&self.pairs, |p| p.family, TaskFamily::ALL)
    }

    /// Pair counts per source (every source present, zero or not).
    pub fn by_source(&self) -> BTreeMap<PairSource, usize> {
        count_by(&self.pairs, |p| p.source, PairSource::ALL)
    }
}

/// Counts pairs by a key, starting every key in `all` at zero.
pub fn count_by<K: Ord + Copy, const N: usize>(
    pairs: &[Pair],
    key: impl Fn(&Pair) -> K,
    all: [K; N],
) -> BTreeMap<K, usize> {
    let mut counts: BTreeMap<K, usize> = all.into_iter().map(|k| (k, 0)).collect();
    for pair in pairs {
        *counts.entry(key(pair)).or_default() += 1;
    }
    counts
}

/// Why a repository could not be mined at all (a file that cannot be read is skipped, never
/// an error).
#[derive(Debug, thiserror::Error)]
pub enum MineError {
    #[error(transparent)]
    Workspace(#[from] workspace::WorkspaceError),
    #[error("cannot read the repository root {path}: {source}")]
    UnreadableRoot {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where a long mining run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MineProgress {
    /// Files read and chunked so far, of all files.
    Reading { done: usize, total: usize },
    /// Reading the git history.
    History,
    /// Asking the query generator (`--generator`) for queries.
    Generating,
    /// Filtering and deduplicating the proposed pairs.
    Filtering { proposed: usize },
}

/// A proposed pair and the symbol it is about (for the per-symbol cap).
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub target: SymbolRef,
    pub pair: Pair,
}

impl Candidate {
    /// A pair whose positive is `target`'s chunk, as the index embeds it.
    fn to_chunk(
        repo: &Repo,
        target: SymbolRef,
        family: TaskFamily,
        source: PairSource,
        query: &str,
    ) -> Self {
        let symbol = repo.symbol(target);
        Candidate {
            target,
            pair: Pair {
                family,
                source,
                query: query.to_string(),
                positive: symbol.chunk.clone(),
                file: repo.files[target.0].rel_path.clone(),
                symbol: symbol.symbol.name.clone(),
                negatives: Vec::new(),
            },
        }
    }
}

/// Mines (query, positive) pairs from the repository at `root`. Deterministic: the same
/// repository and options give the same pairs in the same order.
pub fn mine_repository(root: &Path, options: &MineOptions) -> Result<MinedPairs, MineError> {
    mine_repository_with_progress(root, options, &mut |_| {})
}

/// [`mine_repository`], reporting progress along the way.
pub fn mine_repository_with_progress(
    root: &Path,
    options: &MineOptions,
    progress: &mut dyn FnMut(MineProgress),
) -> Result<MinedPairs, MineError> {
    let started = Instant::now();
    let root = workspace::canonical_root(root)?;
    // A root we may not list would otherwise look like an empty repository.
    std::fs::read_dir(&root).map_err(|source| MineError::UnreadableRoot {
        path: root.clone(),
        source,
    })?;
    let repo = Repo::read(
        &root,
        &options.walk,
        &options.chunker,
        &mut |done, total| {
            progress(MineProgress::Reading { done, total });
        },
    )?;
    let mut candidates = Vec::new();
    symbol_pairs::mine(&repo, &mut candidates);
    code_pairs::mine(&repo, &mut candidates);
    readme_pairs::mine(&repo, &mut candidates);
    progress(MineProgress::History);
    let history = commit_pairs::mine(&root, &repo, options.max_commits, &mut candidates);
    let generator = options.generator.as_ref().map(|generator| {
        progress(MineProgress::Generating);
        generator::mine(&repo, generator, &mut candidates)
    });
    progress(MineProgress::Filtering {
        proposed: candidates.len(),
    });
    let mut stats = MineStats {
        files: repo.files.len(),
        symbols: repo.symbol_count(),
        text_files: repo
            .files
            .iter()
            .filter(|f| f.language.read_as_text())
            .count(),
        skipped_files: repo.skipped_files,
        proposed: PairSource::ALL
            .into_iter()
            .map(|source| {
                let n = candidates
                    .iter()
                    .filter(|c| c.pair.source == source)
                    .count();
                (source, n)
            })
            .collect(),
        history,
        generator,
        ..MineStats::default()
    };
    let pairs = filter(candidates, &options.limits, &mut stats);
    stats.elapsed = started.elapsed();
    Ok(MinedPairs { pairs, stats })
}

/// Drops short pairs and duplicates, then caps pairs per symbol: when a symbol has too many,
/// its sources take turns (a doc pair, a test pair, a call pair, …) so variety survives.
/// Last, signature pairs are cut to their share of what is left.
fn filter(candidates: Vec<Candidate>, limits: &PairLimits, stats: &mut MineStats) -> Vec<Pair> {
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut kept: Vec<Candidate> = Vec::new();
    for candidate in candidates {
        let pair = &candidate.pair;
        if !long_enough(pair, limits) {
            stats.too_short += 1;
            continue;
        }
        let key = (normalize(&pair.query), normalize(&pair.positive));
        if key.0 == key.1 || !seen.insert(key) {
            stats.duplicates += 1;
            continue;
        }
        kept.push(candidate);
    }
    let mut per_symbol: HashMap<SymbolRef, Vec<usize>> = HashMap::new();
    for (i, candidate) in kept.iter().enumerate() {
        per_symbol.entry(candidate.target).or_default().push(i);
    }
    let mut keep = vec![true; kept.len()];
    for indices in per_symbol.values() {
        if indices.len() <= limits.max_per_symbol {
            continue;
        }
        // The n-th pair of each source ranks before the (n+1)-th of any source.
        let mut turn: HashMap<PairSource, usize> = HashMap::new();
        let mut ranked: Vec<(usize, PairSource, usize)> = indices
            .iter()
            .map(|&i| {
                let source = kept[i].pair.source;
                let n = turn.entry(source).or_default();
                *n += 1;
                (*n, source, i)
            })
            .collect();
        ranked.sort();
        for &(_, _, i) in &ranked[limits.max_per_symbol..] {
            keep[i] = false;
            stats.over_symbol_cap += 1;
        }
    }
    cap_signature_share(&kept, limits.max_signature_share, &mut keep, stats);
    kept.into_iter()
        .zip(keep)
        .filter(|(_, keep)| *keep)
        .map(|(c, _)| c.pair)
        .collect()
}

/// Drops signature pairs beyond `share` of the kept pairs. The symbols with the fewest pairs of
/// other sources keep theirs: for them the signature pair is most of what there is to learn.
fn cap_signature_share(kept: &[Candidate], share: f64, keep: &mut [bool], stats: &mut MineStats) {
    if !(0.0..1.0).contains(&share) {
        return;
    }
    let is_signature = |i: usize| kept[i].pair.source == PairSource::Signature;
    let alive: Vec<usize> = (0..kept.len()).filter(|&i| keep[i]).collect();
    let signatures: Vec<usize> = alive.iter().copied().filter(|&i| is_signature(i)).collect();
    let others = alive.len() - signatures.len();
    // signatures / (signatures + others) ≤ share
    let allowed = ((share / (1.0 - share)) * others as f64).floor() as usize;
    if signatures.len() <= allowed {
        return;
    }
    let mut other_pairs: HashMap<SymbolRef, usize> = HashMap::new();
    for &i in alive.iter().filter(|&&i| !is_signature(i)) {
        *other_pairs.entry(kept[i].target).or_default() += 1;
    }
    let mut ranked = signatures;
    ranked.sort_by_key(|&i| (other_pairs.get(&kept[i].target).copied().unwrap_or(0), i));
    for &i in &ranked[allowed..] {
        keep[i] = false;
        stats.over_signature_share += 1;
    }
}

/// Whether both sides of a pair have enough words for their kind (text or code).
fn long_enough(pair: &Pair, limits: &PairLimits) -> bool {
    let (query_is_text, positive_is_text) = match pair.family {
        TaskFamily::Text2Code => (true, false),
        TaskFamily::Code2Text => (false, true),
        TaskFamily::Code2Code => (false, false),
        // Words and a signature: short by nature, judged as text.
        TaskFamily::Hybrid => (true, false),
    };
    let enough = |text: &str, is_text: bool| {
        let min = if is_text {
            limits.min_text_words
        } else {
            limits.min_code_words
        };
        word_count(text) >= min
    };
    enough(&pair.query, query_is_text) && enough(&pair.positive, positive_is_text)
}

/// Runs of two or more letters or digits.
fn word_count(text: &str) -> usize {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .count()
}

/// Whitespace-insensitive form of a text, for spotting duplicates.
fn normalize(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
