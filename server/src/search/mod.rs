//! Search: a natural-language query in, ranked symbols out, as plain data.
//!
//! Three rankings share one path (CLI, LSP, MCP and engine all call [`search_filtered`]): dense
//! (nearest vectors), lexical (BM25 over code-aware tokens) and hybrid, the default, which fuses
//! the two by weighted reciprocal rank and passes the result through the ranking stack of
//! [`rank`] (priors, definition and path boosts, per-file diversity). Dense and lexical are the
//! stack's raw ingredients, ranked as they come. Several windows of one long symbol are one
//! result. docs/ranking.md has the numbers.

pub mod priors;
pub mod query;
mod rank;

pub use priors::{PathClass, Priors};
pub use rank::{ScorePart, StackParams, Stage};

use std::collections::HashMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::embed::{EmbedHandle, InputKind, QueryTask};
use crate::index::store::StoredChunk;
use crate::index::{Index, IndexError};
use crate::symbols::{Language, SymbolKind};
use crate::words::code_tokens;

use query::{QueryProfile, QueryShape};
use rank::{Candidate, RankedList, SymbolKey};

/// Results returned when the caller does not say.
pub const DEFAULT_TOP_K: usize = 10;

/// The `k` of reciprocal-rank fusion, `1 / (k + rank)`. Cormack et al. (2009) use 60, which
/// flattens the head of each list; with a per-query dense weight the first places deserve more,
/// and 5 to 10 measured best on the tuning codebases (docs/ranking.md).
pub const DEFAULT_RRF_K: f32 = 5.0;

/// The dense weight when the best lexical hit's name shares a word with the query: BM25 found a
/// symbol by what it is called, and its order is good evidence.
pub const NAMED_DENSE_WEIGHT: f32 = 0.5;

/// The dense weight otherwise: BM25 matched only words of bodies or paths, which is weak
/// evidence, and the dense ranking leads. Both weights were measured with the default model
/// (all-MiniLM-L6-v2) on three tuning codebases (docs/ranking.md);
/// `--dense-weight` replaces the choice with one weight for every query.
pub const UNNAMED_DENSE_WEIGHT: f32 = 2.5;

/// Candidates taken from each ranking before fusion.
const FUSION_POOL: usize = 100;

/// The longest result list ranked over the same pool as a short one (its fetch fits
/// [`FUSION_POOL`]); longer lists keep these first results in front.
const STABLE_TOP: usize = 30;

/// Which ranking answers a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Nearest embeddings only.
    Dense,
    /// BM25 over identifiers split into words, paths and doc text.
    Lexical,
    /// Weighted reciprocal-rank fusion of both.
    #[default]
    Hybrid,
}

impl SearchMode {
    pub const ALL: [SearchMode; 3] = [SearchMode::Dense, SearchMode::Lexical, SearchMode::Hybrid];

    pub fn as_str(self) -> &'static str {
        match self {
            SearchMode::Dense => "dense",
            SearchMode::Lexical => "lexical",
            SearchMode::Hybrid => "hybrid",
        }
    }
}

impl std::str::FromStr for SearchMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        SearchMode::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown search mode {s:?}: use dense, lexical or hybrid"))
    }
}

/// How results are ranked. Without a model every mode ranks lexically.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub mode: SearchMode,
    /// See [`DEFAULT_RRF_K`]; must be positive.
    pub rrf_k: f32,
    /// How much a dense rank counts (the lexical list weighs 1); `None` chooses per query
    /// ([`dense_weight_for`]).
    pub dense_weight: Option<f32>,
    /// The stages after fusion (hybrid only): priors, boosts, per-file diversity.
    pub stack: StackParams,
    /// Attach each result's score parts ([`SearchHit::explain`]).
    pub explain: bool,
}

impl Default for Ranking {
    fn default() -> Self {
        Self {
            mode: SearchMode::Hybrid,
            rrf_k: DEFAULT_RRF_K,
            dense_weight: None,
            stack: StackParams::default(),
            explain: false,
        }
    }
}

impl Ranking {
    /// A ranking with the default fusion constant.
    pub fn mode(mode: SearchMode) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }
}

/// One search result: a symbol. Lines are 1-based and inclusive.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SearchHit {
    /// Relative to the workspace root, with forward slashes.
    pub path: String,
    pub name: String,
    pub kind: SymbolKind,
    /// The whole symbol, every window of a long one included.
    pub start_line: u32,
    pub end_line: u32,
    /// Where the best-matching part starts: `start_line` unless the symbol is long enough to be
    /// embedded in windows and a later one matched best.
    pub line: u32,
    /// Higher is better. Dense: cosine similarity in [-1, 1]; lexical: the reciprocal of the
    /// BM25 rank; hybrid: in units of a symbol first in every list (the sum of
    /// [`SearchHit::explain`]'s parts). Only comparable within one mode.
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub signature: String,
    pub language: Language,
    /// How the score was made, stage by stage (hybrid, when [`Ranking::explain`] asks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Vec<ScorePart>>,
}

impl SearchHit {
    /// A hit for one stored chunk, as it is (no widening to the whole symbol).
    pub fn from_chunk(chunk: StoredChunk, score: f32) -> Self {
        Self {
            path: chunk.path,
            name: chunk.name,
            kind: chunk.kind,
            start_line: chunk.start_line,
            end_line: chunk.end_line,
            line: chunk.start_line,
            score,
            container: chunk.container,
            signature: chunk.signature,
            language: chunk.language,
            explain: None,
        }
    }

    fn from_candidate(candidate: Candidate, explain: bool) -> Self {
        let score = candidate.score();
        let mut hit = Self::from_chunk(candidate.chunk, score);
        if explain {
            hit.explain = Some(candidate.parts);
        }
        hit
    }
}

/// Restricts results to some paths, languages or kinds. Empty parts accept everything.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    paths: Option<GlobSet>,
    languages: Vec<Language>,
    kinds: Vec<SymbolKind>,
}

impl SearchFilter {
    /// Builds a filter from user input: path globs (relative to the root, `**` allowed),
    /// language names and kind names. Unknown languages or kinds are errors, not silent misses.
    pub fn new(paths: &[String], languages: &[String], kinds: &[String]) -> Result<Self, String> {
        let paths = if paths.is_empty() {
            None
        } else {
            let mut builder = GlobSetBuilder::new();
            for pattern in paths {
                let glob = Glob::new(pattern.trim_start_matches("./"))
                    .map_err(|e| format!("invalid path glob {pattern:?}: {e}"))?;
                builder.add(glob);
            }
            Some(builder.build().map_err(|e| e.to_string())?)
        };
        let languages = languages
            .iter()
            .map(|l| Language::parse_name(l).ok_or_else(|| format!("unknown language {l:?}")))
            .collect::<Result<_, _>>()?;
        let kinds = kinds
            .iter()
            .map(|k| SymbolKind::parse(k).ok_or_else(|| format!("unknown kind {k:?}")))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            paths,
            languages,
            kinds,
        })
    }

    fn is_empty(&self) -> bool {
        self.paths.is_none() && self.languages.is_empty() && self.kinds.is_empty()
    }

    fn accepts(&self, chunk: &StoredChunk) -> bool {
        self.paths.as_ref().is_none_or(|p| p.is_match(&chunk.path))
            && (self.languages.is_empty() || self.languages.contains(&chunk.language))
            && (self.kinds.is_empty() || self.kinds.contains(&chunk.kind))
    }
}

/// The `top_k` best symbols for `query`, ranked the default (hybrid) way.
pub fn search(
    index: &Index,
    embedder: &EmbedHandle,
    query: &str,
    top_k: usize,
) -> Result<Vec<SearchHit>, IndexError> {
    search_filtered(
        index,
        Some(embedder),
        query,
        top_k,
        &SearchFilter::default(),
        &Ranking::default(),
    )
}

/// Like [`search`], with a filter and a ranking; without a model (`embedder` is `None`) the
/// ranking is lexical whatever the mode, so results keep coming while a model is missing.
pub fn search_filtered(
    index: &Index,
    embedder: Option<&EmbedHandle>,
    query: &str,
    top_k: usize,
    filter: &SearchFilter,
    ranking: &Ranking,
) -> Result<Vec<SearchHit>, IndexError> {
    search_task(
        index,
        embedder,
        query,
        QueryTask::CodeSearch,
        top_k,
        filter,
        ranking,
    )
}

/// Like [`search_filtered`] for a query of another task (code looking for similar code, or for
/// its docs), which instruction-tuned models embed with that task's instruction.
pub fn search_task(
    index: &Index,
    embedder: Option<&EmbedHandle>,
    query: &str,
    task: QueryTask,
    top_k: usize,
    filter: &SearchFilter,
    ranking: &Ranking,
) -> Result<Vec<SearchHit>, IndexError> {
    let query = query.trim();
    if query.is_empty() || top_k == 0 {
        return Ok(Vec::new());
    }
    // Fetch extra candidates: windows of one symbol are merged and filters drop some.
    let fetch_for = |top_k: usize| {
        if filter.is_empty() {
            top_k * 3 + 10
        } else {
            top_k * 20 + 50
        }
    };
    let fetch = fetch_for(top_k);
    let accepts = |chunk: &StoredChunk| filter.accepts(chunk);
    let kept = |candidates: Vec<(StoredChunk, f32)>| {
        let mut candidates = candidates;
        candidates.retain(|(chunk, _)| accepts(chunk));
        collapse_windows(candidates)
    };
    let raw = |ranked: Vec<(StoredChunk, f32)>| -> Result<Vec<SearchHit>, IndexError> {
        let hits: Vec<SearchHit> = ranked
            .into_iter()
            .take(top_k)
            .map(|(chunk, score)| SearchHit::from_chunk(chunk, score))
            .collect();
        whole_symbols(index, hits)
    };
    match (embedder, ranking.mode) {
        // Shown as reciprocal ranks: BM25 magnitudes compare chunks of one query only.
        (Some(_), SearchMode::Lexical) => raw(kept(index.lexical(query, fetch)?)
            .into_iter()
            .enumerate()
            .map(|(rank, (chunk, _))| (chunk, 1.0 / (rank + 1) as f32))
            .collect()),
        (Some(embedder), SearchMode::Dense) => {
            raw(kept(index.query(embedder, query, task, fetch)?))
        }
        // Hybrid, or any mode without a model: the stack over the lists there are.
        (embedder, _) => {
            let profile = QueryProfile::new(query);
            let query_vector = match embedder {
                Some(embedder) => embedder
                    .embed_blocking(vec![query.to_string()], InputKind::Query(task))?
                    .pop(),
                None => None,
            };
            // The whole stack over the lists' first `pool` candidates, best `take` chosen.
            let ranked = |pool: usize, take: usize| -> Result<Vec<Candidate>, IndexError> {
                let (dense, dense_scores): (Vec<StoredChunk>, Vec<f32>) = match &query_vector {
                    Some(vector) => kept(index.nearest(vector, pool)?),
                    None => Vec::new(),
                }
                .into_iter()
                .unzip();
                let (lexical, lexical_scores): (Vec<StoredChunk>, Vec<f32>) =
                    kept(index.lexical(query, pool)?).into_iter().unzip();
                let mut lists = Vec::with_capacity(2);
                if embedder.is_some() {
                    let weight = ranking
                        .dense_weight
                        .unwrap_or_else(|| dense_weight_for(&lexical, &profile));
                    lists.push(RankedList {
                        stage: Stage::Dense,
                        chunks: &dense,
                        scores: &dense_scores,
                        weight,
                    });
                }
                lists.push(RankedList {
                    stage: Stage::Lexical,
                    chunks: &lexical,
                    scores: &lexical_scores,
                    weight: 1.0,
                });
                let mut candidates = rank::fuse(
                    &lists,
                    ranking.rrf_k,
                    &ranking.stack.score_fusion(),
                    profile.shape,
                );
                rank::discount_lexical_only(
                    &mut candidates,
                    &dense,
                    &profile,
                    ranking.stack.lexical_only,
                    |id| index.has_vector(id),
                );
                rank::apply_stack(
                    &mut candidates,
                    &profile,
                    query_vector.as_deref(),
                    &ranking.stack,
                    index,
                    &accepts,
                )?;
                Ok(rank::select(
                    candidates,
                    take,
                    &ranking.stack.diversity(&profile),
                ))
            };
            // The stack's scores depend on how many candidates it sees (each list's span, a
            // file's share of the matches), so every list of up to STABLE_TOP results is ranked
            // over the same pool, and a longer one keeps those first results in front: asking for
            // more never reorders the first answers.
            let stable_pool = fetch_for(STABLE_TOP).max(FUSION_POOL);
            let mut chosen = ranked(stable_pool, top_k.min(STABLE_TOP))?;
            if top_k > STABLE_TOP {
                let first: std::collections::HashSet<SymbolKey> =
                    chosen.iter().map(|c| SymbolKey::of(&c.chunk)).collect();
                let rest: Vec<Candidate> = ranked(fetch.max(stable_pool), top_k)?
                    .into_iter()
                    .filter(|c| !first.contains(&SymbolKey::of(&c.chunk)))
                    .take(top_k - first.len())
                    .collect();
                chosen.extend(rank::below(
                    rest,
                    chosen.last().map(Candidate::score),
                    STABLE_TOP,
                ));
            }
            let hits = chosen
                .into_iter()
                .map(|c| SearchHit::from_candidate(c, ranking.explain))
                .collect();
            whole_symbols(index, hits)
        }
    }
}

/// The dense weight for one query given its lexical list and its [`QueryProfile`]: whether the
/// first lexical hit's name, whole or split into words, shares a word with the query's terms. A
/// description of a thing ([`QueryShape::Description`]: "a cache that forgets …") paraphrases
/// what it looks for instead of naming it, so a word it shares with a name is incidental and
/// the dense list always leads (bench/quality descriptions 0.443 → 0.532).
pub fn dense_weight_for(lexical: &[StoredChunk], profile: &QueryProfile) -> f32 {
    if profile.shape == QueryShape::Description {
        return UNNAMED_DENSE_WEIGHT;
    }
    let terms = &profile.terms;
    let named = lexical.first().is_some_and(|top| {
        code_tokens(&top.name)
            .split_whitespace()
            .any(|word| terms.iter().any(|term| term == word))
    });
    if named {
        NAMED_DENSE_WEIGHT
    } else {
        UNNAMED_DENSE_WEIGHT
    }
}

/// Code elsewhere that is similar to lines `start_line..=end_line` of `path` (code → code):
/// the stored vector of the chunk covering those lines when there is one, else `text`
/// embedded as a document. Instruction-tuned models (CodeR) embed `text` as a "find similar
/// code" query instead: their stored document vectors are not what they search with. The code
/// itself and anything overlapping it are left out. Cosine scores are multiplied by the path
/// `priors` (similar code in a test ranks below similar code elsewhere).
#[allow(clippy::too_many_arguments)]
pub fn similar(
    index: &Index,
    embedder: &EmbedHandle,
    path: &str,
    start_line: u32,
    end_line: u32,
    text: &str,
    top_k: usize,
    priors: &Priors,
) -> Result<Vec<SearchHit>, IndexError> {
    let own = index
        .chunks_in_file(path)?
        .into_iter()
        .filter(|c| c.start_line <= start_line && c.end_line >= end_line)
        .min_by_key(|c| c.end_line - c.start_line);
    let instructed = embedder.info().query_instructions;
    let stored = match &own {
        Some(chunk) if !instructed => index.vector_of(chunk.id)?,
        _ => None,
    };
    let kind = if instructed {
        InputKind::Query(QueryTask::SimilarCode)
    } else {
        InputKind::Document
    };
    let vector = match stored {
        Some(v) => v,
        None => {
            if text.trim().is_empty() {
                return Ok(Vec::new());
            }
            let tokenizer = embedder.tokenizer();
            let max = embedder.info().max_tokens;
            let cut = tokenizer.truncate(text, max).unwrap_or(text).to_string();
            match embedder.embed_blocking(vec![cut], kind)?.pop() {
                Some(v) => v,
                None => return Ok(Vec::new()),
            }
        }
    };
    let (from, to) = own.as_ref().map_or((start_line, end_line), |c| {
        (c.start_line.min(start_line), c.end_line.max(end_line))
    });
    let mut candidates = index.nearest(&vector, top_k * 3 + 10)?;
    candidates.retain(|(c, _)| !(c.path == path && c.start_line <= to && c.end_line >= from));
    // Similar code in a test or an example is worth less than in the code itself.
    for (chunk, score) in &mut candidates {
        let classes = priors::classify(
            &chunk.path,
            chunk.kind,
            &chunk.name,
            chunk.container.as_deref(),
        );
        for class in classes {
            *score *= priors.factor(class);
        }
    }
    let hits = collapse_windows(candidates)
        .into_iter()
        .take(top_k)
        .map(|(chunk, score)| SearchHit::from_chunk(chunk, score))
        .collect();
    whole_symbols(index, hits)
}

/// Keeps the best-scoring window of each symbol, in score order.
fn collapse_windows(candidates: Vec<(StoredChunk, f32)>) -> Vec<(StoredChunk, f32)> {
    let mut ranked = candidates;
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut seen = std::collections::HashSet::new();
    ranked.retain(|(chunk, _)| seen.insert(SymbolKey::of(chunk)));
    ranked
}

/// Widens each hit from its best window to the whole symbol: the adjacent windows of the same
/// symbol in the store. `line` keeps pointing at the best window.
fn whole_symbols(index: &Index, hits: Vec<SearchHit>) -> Result<Vec<SearchHit>, IndexError> {
    let mut files: HashMap<String, Vec<(u32, u32, String)>> = HashMap::new();
    let mut out = Vec::with_capacity(hits.len());
    for mut hit in hits {
        if !files.contains_key(&hit.path) {
            let windows = index
                .chunks_in_file(&hit.path)?
                .into_iter()
                .map(|c| {
                    (
                        c.start_line,
                        c.end_line,
                        window_key(
                            &c.name,
                            c.kind.as_str(),
                            c.container.as_deref(),
                            &c.signature,
                        ),
                    )
                })
                .collect();
            files.insert(hit.path.clone(), windows);
        }
        let key = window_key(
            &hit.name,
            hit.kind.as_str(),
            hit.container.as_deref(),
            &hit.signature,
        );
        let windows: Vec<(u32, u32)> = files[&hit.path]
            .iter()
            .filter(|w| w.2 == key)
            .map(|w| (w.0, w.1))
            .collect();
        let (start, end) = symbol_extent(&windows, hit.start_line, hit.end_line);
        hit.start_line = start;
        hit.end_line = end;
        out.push(hit);
    }
    Ok(out)
}

fn window_key(name: &str, kind: &str, container: Option<&str>, signature: &str) -> String {
    format!(
        "{kind}\u{0}{name}\u{0}{}\u{0}{signature}",
        container.unwrap_or("")
    )
}

/// The run of adjacent `windows` of one symbol that contains `start..=end`: windows follow each
/// other line by line, so the symbol grows while a window starts right after it or right
/// before it ends.
fn symbol_extent(windows: &[(u32, u32)], start: u32, end: u32) -> (u32, u32) {
    let (mut from, mut to) = (start, end);
    while let Some(w) = windows.iter().find(|w| w.1 + 1 == from) {
        from = w.0;
    }
    while let Some(w) = windows.iter().find(|w| w.0 == to + 1) {
        to = w.1;
    }
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(id: i64, name: &str, start: u32) -> StoredChunk {
        StoredChunk {
            id,
            path: "src/a.rs".into(),
            language: Language::Rust,
            name: name.into(),
            kind: SymbolKind::Function,
            container: None,
            start_line: start,
            end_line: start + 9,
            signature: format!("fn {name}()"),
            text: String::new(),
            declaration: false,
        }
    }

    #[test]
    fn filters_match_paths_languages_and_kinds() {
        let filter =
            SearchFilter::new(&["src/**".into()], &["Rust".into()], &["function".into()]).unwrap();
        assert!(filter.accepts(&chunk(1, "a", 1)));
        let mut other = chunk(2, "b", 1);
        other.path = "tests/a.rs".into();
        assert!(!filter.accepts(&other));
        let mut method = chunk(3, "c", 1);
        method.kind = SymbolKind::Method;
        assert!(!filter.accepts(&method));
        assert!(SearchFilter::new(&[], &["klingon".into()], &[]).is_err());
        assert!(SearchFilter::new(&[], &[], &["gizmo".into()]).is_err());
        assert!(SearchFilter::new(&["src/[".into()], &[], &[]).is_err());
        assert!(SearchFilter::default().accepts(&other));
    }

    #[test]
    fn a_hit_goes_on_the_wire_with_the_stored_kind_and_language_names() {
        let mut stored = chunk(1, "parse", 3);
        stored.kind = SymbolKind::Trait;
        stored.language = Language::Cpp;
        let hit = serde_json::to_value(SearchHit::from_chunk(stored, 0.5)).unwrap();
        assert_eq!(hit["kind"], "trait");
        assert_eq!(hit["language"], "cpp");
        // What the wire says parses back to the same values.
        assert_eq!(SymbolKind::parse("trait"), Some(SymbolKind::Trait));
        assert_eq!(Language::parse_name("cpp"), Some(Language::Cpp));
    }

    #[test]
    fn the_dense_weight_follows_what_the_lexical_list_matched() {
        let named = |name: &str| chunk(0, name, 1);
        let query = QueryProfile::new("where is the retry delay computed");
        // The first lexical hit is named by a query word (whole or split): BM25 is trusted.
        let first_named = [named("backoff_delay"), named("other")];
        assert_eq!(dense_weight_for(&first_named, &query), NAMED_DENSE_WEIGHT);
        assert_eq!(
            dense_weight_for(&[named("RetryPolicy")], &query),
            NAMED_DENSE_WEIGHT
        );
        let retry = QueryProfile::new("retry");
        assert_eq!(
            dense_weight_for(&[named("retry")], &retry),
            NAMED_DENSE_WEIGHT
        );
        // Only a later hit is named, or none is, or nothing matched: the dense list leads.
        let later = [named("schedule"), named("backoff_delay")];
        assert_eq!(dense_weight_for(&later, &query), UNNAMED_DENSE_WEIGHT);
        assert_eq!(dense_weight_for(&[], &query), UNNAMED_DENSE_WEIGHT);
        // A stop word the query dropped ("is") does not count as a shared word.
        let only_stop_words = QueryProfile::new("where is it");
        assert_eq!(
            dense_weight_for(&[named("is_valid")], &only_stop_words),
            NAMED_DENSE_WEIGHT,
            "a query made only of stop words keeps them"
        );
        assert_eq!(
            dense_weight_for(&[named("is_valid")], &query),
            UNNAMED_DENSE_WEIGHT
        );
        // A description paraphrases: the dense list leads even when a name shares its words.
        let description = QueryProfile::new("a policy that spaces out each retry");
        assert_eq!(
            dense_weight_for(&[named("RetryPolicy")], &description),
            UNNAMED_DENSE_WEIGHT
        );
    }

    #[test]
    fn modes_parse_by_name() {
        for mode in SearchMode::ALL {
            assert_eq!(mode.as_str().parse::<SearchMode>(), Ok(mode));
        }
        assert_eq!(" Hybrid ".parse::<SearchMode>(), Ok(SearchMode::Hybrid));
        assert!(
            "fuzzy"
                .parse::<SearchMode>()
                .unwrap_err()
                .contains("dense, lexical or hybrid")
        );
        assert_eq!(Ranking::default().mode, SearchMode::Hybrid);
        assert_eq!(Ranking::default().rrf_k, DEFAULT_RRF_K);
        assert_eq!(Ranking::default().dense_weight, None);
    }

    #[test]
    fn windows_of_one_symbol_collapse_to_the_best() {
        let kept = collapse_windows(vec![
            (chunk(1, "big", 1), 0.4),
            (chunk(2, "big", 11), 0.7),
            (chunk(3, "small", 30), 0.5),
            (chunk(4, "other", 50), 0.1),
        ]);
        let got: Vec<(&str, u32)> = kept
            .iter()
            .map(|(c, _)| (c.name.as_str(), c.start_line))
            .collect();
        assert_eq!(got, vec![("big", 11), ("small", 30), ("other", 50)]);
        assert!((kept[0].1 - 0.7).abs() < 1e-6);
    }

    #[test]
    fn a_window_widens_to_its_whole_symbol() {
        let windows = [(10, 19), (20, 29), (30, 35), (50, 60)];
        assert_eq!(symbol_extent(&windows, 20, 29), (10, 35));
        assert_eq!(symbol_extent(&windows, 10, 19), (10, 35));
        assert_eq!(symbol_extent(&windows, 50, 60), (50, 60));
        assert_eq!(symbol_extent(&[], 5, 9), (5, 9));
    }
}
