//! Search: a natural-language query in, ranked symbols out, as plain data.
//!
//! Three rankings share one path (CLI, LSP and engine all call [`search_filtered`]): dense
//! (nearest vectors), lexical (BM25 over code-aware tokens) and hybrid, the default, which fuses
//! the two by weighted reciprocal rank, the dense weight chosen per query by what the lexical
//! list matched. Several windows of one long symbol collapse into the best of them. README "How
//! ranking works" has the numbers.

use std::collections::HashMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::embed::{EmbedHandle, InputKind, QueryTask};
use crate::index::fts::{code_tokens, query_terms};
use crate::index::store::StoredChunk;
use crate::index::{Index, IndexError};
use crate::symbols::{Language, SymbolKind};

/// Results returned when the caller does not say.
pub const DEFAULT_TOP_K: usize = 10;

/// The `k` of reciprocal-rank fusion, `1 / (k + rank)`. Cormack et al. (2009) use 60, which
/// flattens the head of each list; with a per-query dense weight the first places deserve more,
/// and 5 to 10 measured best on the tuning codebases (README, "How ranking works").
pub const DEFAULT_RRF_K: f32 = 5.0;

/// The dense weight when the best lexical hit's name shares a word with the query: BM25 found a
/// symbol by what it is called, and its order is good evidence.
pub const NAMED_DENSE_WEIGHT: f32 = 0.5;

/// The dense weight otherwise: BM25 matched only words of bodies or paths, which is weak
/// evidence, and the dense ranking leads. Both weights were measured with the default model
/// (all-MiniLM-L6-v2) on three tuning codebases (README, "How ranking works");
/// `--dense-weight` replaces the choice with one weight for every query.
pub const UNNAMED_DENSE_WEIGHT: f32 = 2.5;

/// Candidates taken from each ranking before fusion.
const FUSION_POOL: usize = 100;

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
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranking {
    pub mode: SearchMode,
    /// See [`DEFAULT_RRF_K`]; must be positive.
    pub rrf_k: f32,
    /// How much a dense rank counts (the lexical list weighs 1); `None` chooses per query
    /// ([`dense_weight_for`]).
    pub dense_weight: Option<f32>,
}

impl Default for Ranking {
    fn default() -> Self {
        Self {
            mode: SearchMode::Hybrid,
            rrf_k: DEFAULT_RRF_K,
            dense_weight: None,
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

/// One search result. Lines are 1-based and inclusive.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SearchHit {
    /// Relative to the workspace root, with forward slashes.
    pub path: String,
    pub name: String,
    pub kind: String,
    pub start_line: u32,
    pub end_line: u32,
    /// Higher is better. Dense: cosine similarity in [-1, 1]; lexical: the reciprocal of the
    /// BM25 rank; hybrid: the fused score as a share of first place in every list. Only
    /// comparable within one mode.
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub signature: String,
    pub language: String,
}

impl SearchHit {
    fn from_chunk(chunk: StoredChunk, score: f32) -> Self {
        Self {
            path: chunk.path,
            name: chunk.name,
            kind: chunk.kind.as_str().to_string(),
            start_line: chunk.start_line,
            end_line: chunk.end_line,
            score,
            container: chunk.container,
            signature: chunk.signature,
            language: chunk.language,
        }
    }
}

/// Restricts results to some paths, languages or kinds. Empty parts accept everything.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    paths: Option<GlobSet>,
    languages: Vec<String>,
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
            .map(|l| {
                Language::parse_name(l)
                    .map(|l| l.name().to_string())
                    .ok_or_else(|| format!("unknown language {l:?}"))
            })
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
    let fetch = if filter.is_empty() {
        top_k * 3 + 10
    } else {
        top_k * 20 + 50
    };
    let ranked = |candidates: Vec<(StoredChunk, f32)>, keep: usize| {
        let mut candidates = candidates;
        candidates.retain(|(chunk, _)| filter.accepts(chunk));
        collapse_windows(candidates, keep)
    };
    match (embedder, ranking.mode) {
        (None, _) | (Some(_), SearchMode::Lexical) => {
            Ok(ranked(index.lexical(query, fetch)?, top_k))
        }
        (Some(embedder), SearchMode::Dense) => {
            Ok(ranked(index.query(embedder, query, task, fetch)?, top_k))
        }
        (Some(embedder), SearchMode::Hybrid) => {
            let pool = fetch.max(FUSION_POOL);
            let dense = ranked(index.query(embedder, query, task, pool)?, pool);
            let lexical = ranked(index.lexical(query, pool)?, pool);
            let weight = ranking
                .dense_weight
                .unwrap_or_else(|| dense_weight_for(&lexical, &query_terms(query)));
            Ok(fuse(
                &[(dense, weight), (lexical, 1.0)],
                ranking.rrf_k,
                top_k,
            ))
        }
    }
}

/// The dense weight for one query given its lexical list and its [`query_terms`]: whether the
/// first lexical hit's name, whole or split into words, shares a word with the query.
pub fn dense_weight_for(lexical: &[SearchHit], terms: &[String]) -> f32 {
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

/// Weighted reciprocal-rank fusion: each `(list, weight)` adds `weight / (k + rank)` (rank from 1)
/// to a symbol's score; [`kind_prior`], in first places, adds `/ (k + 1)`. Ties keep the order of
/// first appearance, earlier lists first. The hit kept for a symbol is the one of the first list
/// that has it. Scores are a share of the best possible, so 1 for a symbol first in every list:
/// the per-query weights differ between roots of one workspace, whose hits are merged by score.
pub fn fuse(lists: &[(Vec<SearchHit>, f32)], rrf_k: f32, top_k: usize) -> Vec<SearchHit> {
    let best: f32 = lists.iter().map(|(_, weight)| weight).sum::<f32>() / (rrf_k + 1.0);
    let mut order: Vec<(SearchHit, f32)> = Vec::new();
    let mut slot: HashMap<HitKey, usize> = HashMap::new();
    for (list, weight) in lists {
        for (rank, hit) in list.iter().enumerate() {
            let share = weight / (rrf_k + rank as f32 + 1.0);
            let key = HitKey::of(hit);
            match slot.get(&key) {
                Some(&i) => order[i].1 += share,
                None => {
                    slot.insert(key, order.len());
                    let prior = kind_prior(&hit.kind) / (rrf_k + 1.0);
                    order.push((hit.clone(), share + prior));
                }
            }
        }
    }
    // A stable sort keeps first appearance among equal scores.
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    order
        .into_iter()
        .take(top_k)
        .map(|(mut hit, score)| {
            hit.score = if best > 0.0 { score / best } else { score };
            hit
        })
        .collect()
}

/// Half a first place less for an `impl` block or a module: its chunk is only the first window of
/// a container whose members are chunks of their own, so it repeats them and is rarely the
/// answer (a question names the type or the method). Measured: +0.04 nDCG@10 on the Rust tuning
/// codebase, no change on the Python one; favouring functions instead lost.
pub fn kind_prior(kind: &str) -> f32 {
    if kind == SymbolKind::Impl.as_str() || kind == SymbolKind::Module.as_str() {
        -0.5
    } else {
        0.0
    }
}

/// What makes two hits the same symbol (windows of one symbol share all of it).
#[derive(Debug, PartialEq, Eq, Hash)]
struct HitKey {
    path: String,
    name: String,
    kind: String,
    container: Option<String>,
    signature: String,
}

impl HitKey {
    fn of(hit: &SearchHit) -> Self {
        Self {
            path: hit.path.clone(),
            name: hit.name.clone(),
            kind: hit.kind.clone(),
            container: hit.container.clone(),
            signature: hit.signature.clone(),
        }
    }
}

/// Code elsewhere that is similar to lines `start_line..=end_line` of `path` (code → code):
/// the stored vector of the chunk covering those lines when there is one, else `text`
/// embedded as a document. Instruction-tuned models (CodeR) embed `text` as a "find similar
/// code" query instead: their stored document vectors are not what they search with. The code
/// itself and anything overlapping it are left out.
pub fn similar(
    index: &Index,
    embedder: &EmbedHandle,
    path: &str,
    start_line: u32,
    end_line: u32,
    text: &str,
    top_k: usize,
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
    Ok(collapse_windows(candidates, top_k))
}

/// Keeps the best-scoring window of each symbol, in score order, at most `top_k`.
fn collapse_windows(candidates: Vec<(StoredChunk, f32)>, top_k: usize) -> Vec<SearchHit> {
    let mut ranked = candidates;
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut seen = std::collections::HashSet::new();
    let mut hits = Vec::with_capacity(top_k);
    for (chunk, score) in ranked {
        let key = (
            chunk.path.clone(),
            chunk.name.clone(),
            chunk.kind,
            chunk.container.clone(),
            chunk.signature.clone(),
        );
        if !seen.insert(key) {
            continue;
        }
        hits.push(SearchHit::from_chunk(chunk, score));
        if hits.len() == top_k {
            break;
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(id: i64, name: &str, start: u32) -> StoredChunk {
        StoredChunk {
            id,
            path: "src/a.rs".into(),
            language: "rust".into(),
            name: name.into(),
            kind: SymbolKind::Function,
            container: None,
            start_line: start,
            end_line: start + 9,
            signature: format!("fn {name}()"),
            text: String::new(),
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

    fn hit(name: &str) -> SearchHit {
        SearchHit::from_chunk(chunk(0, name, 1), 0.0)
    }

    fn names(hits: &[SearchHit]) -> Vec<&str> {
        hits.iter().map(|h| h.name.as_str()).collect()
    }

    #[test]
    fn fusion_adds_reciprocal_ranks() {
        let dense = vec![hit("a"), hit("b"), hit("c")];
        let lexical = vec![hit("c"), hit("d"), hit("a")];
        let fused = fuse(&[(dense, 1.0), (lexical, 1.0)], 60.0, 10);
        // a: 1/61 + 1/63, c: 1/63 + 1/61 (tie, a came first), b: 1/62, d: 1/62; as a share of
        // first place in both, 2/61.
        assert_eq!(names(&fused), vec!["a", "c", "b", "d"]);
        let expected = (1.0 / 61.0 + 1.0 / 63.0) / (2.0 / 61.0);
        assert!(
            (fused[0].score - expected).abs() < 1e-6,
            "{}",
            fused[0].score
        );
        // Found by both beats first place in one list.
        let fused = fuse(
            &[
                (vec![hit("x"), hit("y")], 1.0),
                (vec![hit("z"), hit("y")], 1.0),
            ],
            60.0,
            2,
        );
        assert_eq!(names(&fused), vec!["y", "x"]);
        // A lighter list: its first place loses to the other's.
        let fused = fuse(
            &[(vec![hit("dense")], 0.5), (vec![hit("lexical")], 1.0)],
            60.0,
            2,
        );
        assert_eq!(names(&fused), vec!["lexical", "dense"]);
        assert!((fused[1].score - 0.5 / 1.5).abs() < 1e-6);
    }

    #[test]
    fn a_small_k_favours_first_places() {
        // "top" is first in one list; "both" is third in both: 2/(k+3) > 1/(k+1) iff k > 1.
        let lists = [
            (vec![hit("top"), hit("x"), hit("both")], 1.0),
            (vec![hit("y"), hit("z"), hit("both")], 1.0),
        ];
        assert_eq!(names(&fuse(&lists, 60.0, 1)), vec!["both"]);
        assert_eq!(names(&fuse(&lists, 0.5, 1)), vec!["top"]);
        assert!(fuse(&lists, 60.0, 0).is_empty());
    }

    #[test]
    fn the_dense_weight_follows_what_the_lexical_list_matched() {
        let terms = query_terms("where is the retry delay computed");
        // The first lexical hit is named by a query word (whole or split): BM25 is trusted.
        let named = [hit("backoff_delay"), hit("other")];
        assert_eq!(dense_weight_for(&named, &terms), NAMED_DENSE_WEIGHT);
        assert_eq!(
            dense_weight_for(&[hit("RetryPolicy")], &terms),
            NAMED_DENSE_WEIGHT
        );
        assert_eq!(
            dense_weight_for(&[hit("retry")], &query_terms("retry")),
            NAMED_DENSE_WEIGHT
        );
        // Only a later hit is named, or none is, or nothing matched: the dense list leads.
        let unnamed = [hit("schedule"), hit("backoff_delay")];
        assert_eq!(dense_weight_for(&unnamed, &terms), UNNAMED_DENSE_WEIGHT);
        assert_eq!(dense_weight_for(&[], &terms), UNNAMED_DENSE_WEIGHT);
        // A stop word the query dropped ("is") does not count as a shared word.
        assert_eq!(
            dense_weight_for(&[hit("is_valid")], &query_terms("where is it")),
            NAMED_DENSE_WEIGHT,
            "a query made only of stop words keeps them"
        );
        assert_eq!(
            dense_weight_for(&[hit("is_valid")], &terms),
            UNNAMED_DENSE_WEIGHT
        );
    }

    #[test]
    fn fused_scores_compare_across_weights() {
        // First in both lists scores 1 whatever the weights, so the hits of two roots searched
        // with different per-query weights merge fairly.
        for weight in [NAMED_DENSE_WEIGHT, UNNAMED_DENSE_WEIGHT] {
            let lists = [(vec![hit("a")], weight), (vec![hit("a")], 1.0)];
            let fused = fuse(&lists, DEFAULT_RRF_K, 1);
            assert!((fused[0].score - 1.0).abs() < 1e-6, "{weight}");
        }
        // First in a heavy dense list only stays below first in both lists under light weights.
        let both = fuse(
            &[(vec![hit("c")], NAMED_DENSE_WEIGHT), (vec![hit("c")], 1.0)],
            DEFAULT_RRF_K,
            1,
        );
        let dense_only_share = fuse(
            &[
                (vec![hit("b")], UNNAMED_DENSE_WEIGHT),
                (vec![hit("other")], 1.0),
            ],
            DEFAULT_RRF_K,
            2,
        );
        assert_eq!(names(&dense_only_share), vec!["b", "other"]);
        assert!(dense_only_share[0].score < both[0].score);
        assert!(fuse(&[], DEFAULT_RRF_K, 1).is_empty());
    }

    #[test]
    fn the_per_query_weight_decides_between_two_first_places() {
        // Each list puts a different symbol first; the weight picks which one wins.
        let lists = |weight| {
            [
                (vec![hit("from_dense"), hit("x")], weight),
                (vec![hit("from_lexical"), hit("y")], 1.0),
            ]
        };
        let k = DEFAULT_RRF_K;
        assert_eq!(
            names(&fuse(&lists(NAMED_DENSE_WEIGHT), k, 1)),
            vec!["from_lexical"]
        );
        assert_eq!(
            names(&fuse(&lists(UNNAMED_DENSE_WEIGHT), k, 1)),
            vec!["from_dense"]
        );
        // Found second by both still beats either first place under the weight for a named
        // lexical hit: (0.5 + 1) / (k + 2) > 1 / (k + 1) for k = 5.
        let both = [
            (vec![hit("a"), hit("both")], NAMED_DENSE_WEIGHT),
            (vec![hit("b"), hit("both")], 1.0),
        ];
        assert_eq!(names(&fuse(&both, k, 1)), vec!["both"]);
    }

    #[test]
    fn containers_rank_below_their_members() {
        let mut block = hit("Parser");
        block.kind = "impl".into();
        // The impl block is first in one list, the method second in both.
        let lists = [
            (vec![block, hit("parse")], 1.0),
            (vec![hit("other"), hit("parse")], 1.0),
        ];
        assert_eq!(
            names(&fuse(&lists, 60.0, 3)),
            vec!["parse", "other", "Parser"]
        );
        assert_eq!(kind_prior("module"), -0.5);
        assert_eq!(kind_prior("function"), 0.0);
        assert_eq!(kind_prior("class"), 0.0);
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
        let hits = collapse_windows(
            vec![
                (chunk(1, "big", 1), 0.4),
                (chunk(2, "big", 11), 0.7),
                (chunk(3, "small", 30), 0.5),
                (chunk(4, "other", 50), 0.1),
            ],
            2,
        );
        let got: Vec<(&str, u32)> = hits
            .iter()
            .map(|h| (h.name.as_str(), h.start_line))
            .collect();
        assert_eq!(got, vec![("big", 11), ("small", 30)]);
        assert!((hits[0].score - 0.7).abs() < 1e-6);
    }
}
