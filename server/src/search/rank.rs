//! The ranking stack of hybrid search: fused candidates pass through each stage in turn, and
//! every stage records what it added to a candidate's score, so a ranking can be explained.
//!
//! 1. Fusion: weighted reciprocal ranks of the dense and the lexical list ([`fuse`]).
//! 2. Kind prior: containers (impl blocks, modules) lose half a first place.
//! 3. Definitions: a symbol named like the queried identifier gains, found in the index if
//!    neither list had it.
//! 4. Path words: a file or directory named by a query word gains.
//! 5. File coherence: the best symbol of a file with several good ones gains a little.
//! 6. Path priors: tests, docs, examples, … are multiplied down unless asked for ([`priors`]).
//! 7. Member lift: a member nearly as good as the class whose chunk holds its code rises just
//!    above it; for a bare identifier, its exact definition rises above longer names.
//! 8. Selection: each further symbol of an already chosen file counts less (same-file decay).
//!
//! docs/ranking.md gives each stage's measured effect. Scores are in units of "first
//! place in every list" (1.0), so they compare across workspace folders.
//!
//! [`priors`]: super::priors

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::index::store::StoredChunk;
use crate::index::{Index, IndexError};
use crate::symbols::{Language, SymbolKind};
use crate::words::split_identifier;

use super::priors::{
    PathClass, Priors, abstract_class, classify, kind_class, superseded_version_of,
    superseded_versions,
};
use super::query::{QueryProfile, QueryShape, same_word, singular};

/// What each stage adds. The defaults are the best measured on the tuning half of the semble
/// benchmark (file-level) that leave the symbol-level quality benchmark where it was; stages
/// whose default is 0 were measured and did not pay (docs/ranking.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "snake_case")]
pub struct StackParams {
    /// Added to a symbol that defines the queried identifier (in first-place units). Off: BM25's
    /// name column already finds definitions, and the boost lifted same-named symbols in other
    /// files (`formatter` specialisations, zod's v3 and v4 `ZodType`): semble tuning 0.812 →
    /// 0.808 at 0.5.
    pub definition: f32,
    /// The share of [`StackParams::definition`] for identifiers written inside a sentence.
    pub embedded_share: f32,
    /// The lexical share of a symbol that BM25 found and the dense list did not (though it has
    /// a vector) is multiplied by this (1 = off); not for a bare identifier, which BM25 finds by
    /// name ([`discount_lexical_only`]). 0.5: quality tuning 0.709 → 0.714 (9 of 21 codebases
    /// up, none down), semble tuning 0.858 → 0.862; 0.3 gains no more.
    pub lexical_only: f32,
    /// An inherent impl block and its type declared in the same file are one result, the type
    /// ([`impls_into_types`]). On: globset (Rust) 0.641 → 0.652, nothing else moved.
    pub impls_into_types: bool,
    /// The share of the fused score that comes from the two lists' own scores (cosine spread
    /// over the dense list's span, BM25 as a share of the first's) instead of their ranks
    /// ([`fuse`]); 0 is rank fusion alone.
    pub score_fusion: f32,
    /// The dense list's share of that score-based part; the lexical list has the rest.
    pub score_dense_share: f32,
    /// Added, times the share of query words matched, when the file's name or directory
    /// matches query words. 0.6: semble tuning +0.02, quality +0.005.
    pub path_words: f32,
    /// Added to the best symbol of each file, times the file's candidate mass relative to the
    /// heaviest file's. Off: +0.03 file-level at 0.8, but −0.06 symbol-level (the heavy file's
    /// best symbol jumps over the one specific answer in a small file).
    pub file_coherence: f32,
    /// Added to [`StackParams::file_coherence`] when the query asks how something works
    /// ([`QueryShape::Mechanism`]): a mechanism is most often explained by a module as a whole.
    /// 1.5: semble tuning +0.010 (its "how …" questions: architecture 0.751 → 0.797); ungated,
    /// the same weight gains +0.038 there but costs the symbol-level benchmark.
    pub how_coherence: f32,
    /// Added to [`StackParams::file_coherence`] when the query names a subject
    /// ([`QueryShape::Topic`]: "multipart form and file upload handling"), which a module
    /// covers. 0.4: semble tuning +0.019, quality unchanged; 0.8 gains +0.003 more file-level
    /// and costs 0.003 symbol-level.
    pub topic_coherence: f32,
    /// Added to every symbol of the file whose chunks, averaged, lie nearest the query (and
    /// less, by reciprocal rank, to the next files): what a file is about as a whole. Off:
    /// +0.002 file-level, −0.001 to −0.007 symbol-level at 0.2–0.5.
    pub file_similarity: f32,
    /// Each further symbol of a file already in the results is multiplied by this (1 = off)…
    /// 0.8 after 2: semble tuning +0.017 (more files in the top 10); stronger diversity gained
    /// up to +0.03 more file-level but cost symbol-level up to 0.03 (two answers in one file).
    pub same_file_decay: f32,
    /// …once the file has this many results above it…
    pub same_file_free: u32,
    /// …unless it scores at least this share of the best result (a second strong match in one
    /// file keeps its place; 1 exempts nothing below the best).
    pub same_file_keep: f32,
    /// [`StackParams::same_file_decay`] and [`StackParams::same_file_free`] for a bare
    /// identifier ([`QueryShape::Identifier`]): a name is answered by its definition and the
    /// other files that use it, and a second member of the definition's file repeats it. 0.5
    /// after 1: semble tuning +0.004 (symbol 0.891 → 0.911), quality identifier queries
    /// 0.937 → 0.943; for every query the same setting costs the quality benchmark 0.031.
    pub identifier_decay: f32,
    pub identifier_free: u32,
    /// [`StackParams::same_file_decay`] for a command ([`QueryShape::Action`]: "parse the
    /// Range header"): one function carries a command out, and the other functions of the
    /// file that matched are its likeliest look-alikes, so they decay less and the right one
    /// stays in the list when a sibling outranks it. 0.9: quality tuning 0.758 → 0.761 (26
    /// queries up, 10 down), semble tuning unchanged; 1 (no decay) gains 0.004 but costs semble
    /// a question read as a command ("training a classifier on top of embeddings").
    pub command_decay: f32,
    /// A Rust item whose docs are a file of their own (`#[doc = include_str!("…")]`) takes
    /// this share of the best score of that file's sections when it is more than its own:
    /// rustdoc shows the file as the item's docs, and the question is about the item.
    pub included_docs: f32,
    /// A member whose score is at least this share of its container's, where the container's
    /// chunk holds the member's code, rises to just above the container
    /// ([`lift_members_over_containers`]); 0 is off. 0.8: quality tuning 0.730 → 0.735 (11
    /// queries up, 4 down; concept queries 0.673 → 0.675), semble tuning unchanged (a member and
    /// its container share a file); 0.7 and 0.9 gain less.
    pub member_lift: f32,
    /// For a bare identifier, the best symbol named exactly so rises to just above a symbol
    /// whose name only extends it (`TCompactProtocolFactory` for `TCompactProtocol`) when it
    /// scores at least this share of it ([`lift_exact_names`]); 0 is off. 0.5: quality tuning
    /// identifier queries 0.959 → 0.970 (`ErrorHandler::register` above `registerErrorHandler`;
    /// 0.8 the same), semble tuning unchanged; extending the name at either end (`$ZodType` for
    /// `ZodType`) cost zod 0.037 there, and lifting a name several files define cost fmtlib's
    /// `formatter` 0.37.
    pub exact_name_lift: f32,
    /// Path priors (see [`PathClass`]).
    pub priors: Priors,
}

impl Default for StackParams {
    fn default() -> Self {
        Self {
            definition: 0.0,
            embedded_share: 0.5,
            lexical_only: 0.5,
            impls_into_types: true,
            score_fusion: 0.5,
            score_dense_share: 0.6,
            path_words: 0.6,
            file_coherence: 0.0,
            how_coherence: 1.5,
            topic_coherence: 0.4,
            file_similarity: 0.0,
            same_file_decay: 0.8,
            same_file_free: 2,
            same_file_keep: 1.0,
            identifier_decay: 0.5,
            identifier_free: 1,
            command_decay: 0.9,
            included_docs: 1.0,
            member_lift: 0.8,
            exact_name_lift: 0.5,
            priors: Priors::default(),
        }
    }
}

impl StackParams {
    /// The score-based part of fusion these parameters ask for.
    pub(crate) fn score_fusion(&self) -> ScoreFusion {
        ScoreFusion {
            share: self.score_fusion,
            dense_share: self.score_dense_share,
        }
    }

    /// Rejects values that would turn a stage upside down.
    pub fn validate(&self) -> Result<(), String> {
        let non_negative = [
            ("definition", self.definition),
            ("embedded_share", self.embedded_share),
            ("path_words", self.path_words),
            ("file_coherence", self.file_coherence),
            ("how_coherence", self.how_coherence),
            ("topic_coherence", self.topic_coherence),
            ("file_similarity", self.file_similarity),
            ("included_docs", self.included_docs),
        ];
        for (name, value) in non_negative {
            if !(value >= 0.0 && value.is_finite()) {
                return Err(format!("{name} must be a number ≥ 0, not {value}"));
            }
        }
        for (name, value) in [
            ("score_fusion", self.score_fusion),
            ("score_dense_share", self.score_dense_share),
            ("same_file_keep", self.same_file_keep),
            ("member_lift", self.member_lift),
            ("exact_name_lift", self.exact_name_lift),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("{name} must lie in [0, 1], not {value}"));
            }
        }
        for (name, value) in [
            ("lexical_only", self.lexical_only),
            ("same_file_decay", self.same_file_decay),
            ("identifier_decay", self.identifier_decay),
            ("command_decay", self.command_decay),
        ] {
            if !(value > 0.0 && value <= 1.0) {
                return Err(format!("{name} must lie in (0, 1], not {value}"));
            }
        }
        self.priors.validate()
    }

    /// How [`select`] spreads this query's results over files.
    pub(crate) fn diversity(&self, profile: &QueryProfile) -> Diversity {
        let (decay, free) = match profile.shape {
            QueryShape::Identifier => (self.identifier_decay, self.identifier_free),
            QueryShape::Action => (self.command_decay, self.same_file_free),
            _ => (self.same_file_decay, self.same_file_free),
        };
        Diversity {
            decay,
            free,
            keep: self.same_file_keep,
        }
    }
}

/// Per-file diversity of one query's results (see [`StackParams::same_file_decay`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Diversity {
    pub decay: f32,
    pub free: u32,
    pub keep: f32,
}

/// Which stage a part of a score comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Dense,
    Lexical,
    Kind,
    Prior,
    Definition,
    PathWords,
    FileCoherence,
    FileSimilarity,
    SameFile,
    IncludedDoc,
    Member,
    /// A result after the first 30, ranked over a larger pool and scaled to stay below them.
    Extended,
}

/// One stage's contribution to a result's score; a result's parts add up to its score.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
pub struct ScorePart {
    pub stage: Stage,
    pub value: f32,
    /// What the stage saw, e.g. "rank 3 of the dense list, weight 2.5" or "test file × 0.3".
    pub detail: String,
}

/// A symbol on its way through the stack: its best window and its score so far, by part.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub chunk: StoredChunk,
    pub parts: Vec<ScorePart>,
}

impl Candidate {
    pub fn score(&self) -> f32 {
        self.parts.iter().map(|p| p.value).sum()
    }

    fn add(&mut self, stage: Stage, value: f32, detail: String) {
        self.parts.push(ScorePart {
            stage,
            value,
            detail,
        });
    }

    /// Multiplies the score so far by `factor`, recorded as one additive part.
    fn scale(&mut self, stage: Stage, factor: f32, detail: String) {
        let delta = self.score() * (factor - 1.0);
        self.add(stage, delta, detail);
    }
}

/// What makes two chunks the same symbol (windows of one symbol share all of it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SymbolKey {
    path: String,
    name: String,
    kind: SymbolKind,
    container: Option<String>,
    signature: String,
}

impl SymbolKey {
    pub fn of(chunk: &StoredChunk) -> Self {
        Self {
            path: chunk.path.clone(),
            name: chunk.name.clone(),
            kind: chunk.kind,
            container: chunk.container.clone(),
            signature: chunk.signature.clone(),
        }
    }
}

/// One ranked list entering fusion: symbols best first, its weight and its name, and each
/// symbol's own score in that list (cosine similarity, BM25 relevance; empty when unknown).
pub(crate) struct RankedList<'a> {
    pub stage: Stage,
    pub chunks: &'a [StoredChunk],
    pub scores: &'a [f32],
    pub weight: f32,
}

impl RankedList<'_> {
    /// Each symbol's score on a scale of the list: a dense list's cosines stretched over their
    /// span (first 1, last 0: a query's cosines crowd into a narrow band whose place says little),
    /// a lexical list's BM25 relevance as a share of the first's (BM25 has a natural zero).
    fn scaled_scores(&self) -> Vec<f32> {
        let (Some(&first), Some(&last)) = (self.scores.first(), self.scores.last()) else {
            return Vec::new();
        };
        match self.stage {
            Stage::Dense => {
                let span = first - last;
                self.scores
                    .iter()
                    .map(|s| if span > 0.0 { (s - last) / span } else { 1.0 })
                    .collect()
            }
            _ => self
                .scores
                .iter()
                .map(|s| {
                    if first > 0.0 {
                        (s / first).max(0.0)
                    } else {
                        1.0
                    }
                })
                .collect(),
        }
    }
}

/// How much of the fused score comes from the lists' own scores rather than their ranks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ScoreFusion {
    /// The share of the score-based fusion in the fused score (0: ranks only).
    pub share: f32,
    /// Within it, the dense list's share; the lexical list has the rest.
    pub dense_share: f32,
}

#[cfg(test)]
impl ScoreFusion {
    pub const OFF: ScoreFusion = ScoreFusion {
        share: 0.0,
        dense_share: 0.5,
    };
}

/// Weighted reciprocal-rank fusion: each list adds `weight / (k + rank)` (rank from 1) to a
/// symbol; the sum is divided by that of a symbol first in every list, so 1.0 is the best
/// possible. With `by_score`, that is blended with a fusion of the lists' own scores (each list's
/// [`RankedList::scaled_scores`], the dense list taking `dense_share` of it), which keeps what
/// ranks throw away: how far ahead a first place is. The kind prior ([`kind_prior`]: half a first
/// place less for impl blocks, Scala objects and, for a command, Ruby modules; `shape` is the
/// query's) is applied here too, in the same units. Ties keep the order of first appearance,
/// earlier lists first.
pub(crate) fn fuse(
    lists: &[RankedList<'_>],
    rrf_k: f32,
    by_score: &ScoreFusion,
    shape: QueryShape,
) -> Vec<Candidate> {
    let best: f32 = lists.iter().map(|l| l.weight).sum::<f32>() / (rrf_k + 1.0);
    let norm = if best > 0.0 { best } else { 1.0 };
    let blend = by_score.share.clamp(0.0, 1.0);
    let list_share = |list: &RankedList<'_>| -> f32 {
        if lists.len() < 2 {
            1.0
        } else if list.stage == Stage::Dense {
            by_score.dense_share
        } else {
            1.0 - by_score.dense_share
        }
    };
    let mut order: Vec<Candidate> = Vec::new();
    let mut slot: HashMap<SymbolKey, usize> = HashMap::new();
    for list in lists {
        let scaled = if blend > 0.0 {
            list.scaled_scores()
        } else {
            Vec::new()
        };
        for (rank, chunk) in list.chunks.iter().enumerate() {
            let by_rank = list.weight / (rrf_k + rank as f32 + 1.0) / norm;
            let mut share = by_rank;
            let mut detail = format!(
                "rank {} of {}, weight {}",
                rank + 1,
                list.chunks.len(),
                list.weight
            );
            if let (Some(scaled), Some(own)) = (scaled.get(rank), list.scores.get(rank)) {
                share = (1.0 - blend) * by_rank + blend * list_share(list) * scaled;
                detail.push_str(&format!(
                    ", score {own:.3} ({scaled:.2} of the list's scale)"
                ));
            }
            let key = SymbolKey::of(chunk);
            let i = *slot.entry(key).or_insert_with(|| {
                order.push(Candidate {
                    chunk: chunk.clone(),
                    parts: Vec::new(),
                });
                order.len() - 1
            });
            order[i].add(list.stage, share, detail);
        }
    }
    for candidate in &mut order {
        let prior = kind_prior(candidate.chunk.kind, candidate.chunk.language, shape);
        if prior != 0.0 {
            let kind = candidate.chunk.kind;
            // Half a first place of a weight-1 list in rank units, half of the lexical list's
            // first place in score units.
            let by_rank = prior / (rrf_k + 1.0) / norm;
            let by_scores = prior * (1.0 - by_score.dense_share);
            candidate.add(
                Stage::Kind,
                (1.0 - blend) * by_rank + blend * by_scores,
                format!("{kind}: its members are results of their own"),
            );
        }
    }
    // Parts were added list by list; show them in a fixed order.
    sort_stable(&mut order);
    order
}

/// Whether `chunk` is an impl block that adds methods to one type of its own crate, not a trait
/// implementation: Rust `impl Glob { … }` (not `impl Display for Glob`), a Swift `extension Glob`
/// that declares no conformance (not `extension Glob: Codable`).
fn is_inherent_impl(chunk: &StoredChunk) -> bool {
    if chunk.kind != SymbolKind::Impl {
        return false;
    }
    match chunk.language {
        Language::Rust => !chunk.signature.contains(" for "),
        Language::Swift => {
            let head = chunk.signature.split('{').next().unwrap_or("");
            !head.contains(':')
        }
        _ => false,
    }
}

/// The type of one file that an inherent impl block belongs to: the type declaration of the same
/// name and container among `file` (the chunks of the impl's file).
fn type_of_impl<'a>(chunk: &StoredChunk, file: &'a [StoredChunk]) -> Option<&'a StoredChunk> {
    file.iter()
        .find(|c| is_type_kind(c.kind) && c.name == chunk.name && c.container == chunk.container)
}

/// Makes each inherent impl block one result with its type when the type is declared in the same
/// file: Rust's `struct LiteralStrategy` and `impl LiteralStrategy { … }` are one thing to a reader,
/// and a question about what the type does is answered by the impl's code more often than by the
/// fields. The impl's score (its kind prior included) goes to the type when it is the higher of the
/// two; the result is the type's declaration. `type_of` finds the type of an impl block.
/// globset (Rust): nDCG@10 0.641 → 0.652 (the targets are the types' declarations).
fn impls_into_types<E>(
    candidates: Vec<Candidate>,
    mut type_of: impl FnMut(&StoredChunk) -> Result<Option<StoredChunk>, E>,
) -> Result<Vec<Candidate>, E> {
    let mut out: Vec<Candidate> = Vec::with_capacity(candidates.len());
    let mut slot: HashMap<SymbolKey, usize> = HashMap::new();
    for mut candidate in candidates {
        let mut converted = false;
        if is_inherent_impl(&candidate.chunk)
            && let Some(ty) = type_of(&candidate.chunk)?
        {
            converted = true;
            let lines = format!(
                "scored by its impl block, lines {}-{}",
                candidate.chunk.start_line, candidate.chunk.end_line
            );
            candidate.chunk = ty;
            candidate.add(Stage::Kind, 0.0, lines);
        }
        let key = SymbolKey::of(&candidate.chunk);
        match slot.get(&key) {
            Some(&i) => {
                if candidate.score() > out[i].score() {
                    // The type's own entry has its best window; keep that.
                    if converted {
                        candidate.chunk = out[i].chunk.clone();
                    }
                    out[i] = candidate;
                }
            }
            None => {
                slot.insert(key, out.len());
                out.push(candidate);
            }
        }
    }
    sort_stable(&mut out);
    Ok(out)
}

/// [`impls_into_types`] over the index: each impl's type is looked up among the chunks of its
/// file (read once per file and query), and only a type the caller's filter accepts takes it.
fn merge_impls_into_types(
    candidates: &mut Vec<Candidate>,
    index: &Index,
    accepts: &dyn Fn(&StoredChunk) -> bool,
) -> Result<(), IndexError> {
    let mut files: HashMap<String, Vec<StoredChunk>> = HashMap::new();
    *candidates = impls_into_types(std::mem::take(candidates), |chunk| {
        let file = match files.entry(chunk.path.clone()) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::hash_map::Entry::Vacant(new) => {
                new.insert(index.chunks_in_file(&chunk.path)?)
            }
        };
        Ok::<_, IndexError>(type_of_impl(chunk, file).filter(|ty| accepts(ty)).cloned())
    })?;
    Ok(())
}

/// Lowers the lexical share of each symbol that only BM25 found: one with a vector that is not
/// among the query's nearest by meaning (the dense list) matched words the embedding does not
/// relate to the question, as incidental body words do. A bare identifier is exempt: BM25 finds
/// it by name, which the embedding often ranks low. Chunks still waiting for their vector are
/// exempt too, so partial answers during indexing keep their lexical order.
pub(crate) fn discount_lexical_only(
    candidates: &mut [Candidate],
    dense: &[StoredChunk],
    profile: &QueryProfile,
    factor: f32,
    has_vector: impl Fn(i64) -> bool,
) {
    if factor >= 1.0 || dense.is_empty() || profile.shape == QueryShape::Identifier {
        return;
    }
    let nearest: HashSet<SymbolKey> = dense.iter().map(SymbolKey::of).collect();
    for candidate in candidates {
        if nearest.contains(&SymbolKey::of(&candidate.chunk)) || !has_vector(candidate.chunk.id) {
            continue;
        }
        let lexical: f32 = candidate
            .parts
            .iter()
            .filter(|part| part.stage == Stage::Lexical)
            .map(|part| part.value)
            .sum();
        if lexical > 0.0 {
            candidate.add(
                Stage::Lexical,
                lexical * (factor - 1.0),
                format!(
                    "not among the {} nearest by meaning: × {factor}",
                    dense.len()
                ),
            );
        }
    }
}

/// Half a first place less for an `impl` block: its chunk only repeats the start of members
/// that are chunks of their own, so it is rarely the answer. Measured: +0.04 nDCG@10 on the Rust
/// tuning codebase of `bench/quality`, no change on the Python one. Modules were demoted alike
/// until a file's header (its docs and re-exports) became a module chunk: a module is now what
/// a file says about itself, and demoting it cost 0.006 on the semble tuning half. A Scala
/// `object` is the same bag of its members' starts (`object Merge` above `Merge.merge`): as an
/// impl it moved json4s of `bench/quality` from 0.412 to 0.478.
///
/// A Ruby `module` is a mixin or a namespace around methods that are chunks of their own
/// (thor's `module Terminal` is its `terminal_width` and three helpers): for a command ("swap
/// accented characters for ascii lookalikes") it is demoted like an impl, as a method answers
/// that; for a subject it may be the answer itself (liquid's `ParserSwitching` for "lenient
/// versus strict markup parsing"), so other shapes leave it alone. Measured on i18n of
/// `bench/quality`: 0.646 → 0.668, no other tuning codebase moved. Elixir's modules, the unit
/// its code is written in, are not: demoting them for commands cost earmark-parser 0.021.
pub fn kind_prior(kind: SymbolKind, language: Language, shape: QueryShape) -> f32 {
    let bag_of_members = match kind {
        SymbolKind::Impl | SymbolKind::Object => true,
        SymbolKind::Module => language == Language::Ruby && shape == QueryShape::Action,
        _ => false,
    };
    if bag_of_members { -0.5 } else { 0.0 }
}

/// The stages after fusion: definitions, path words, file coherence, then path priors.
/// `accepts` is the caller's filter, applied to symbols brought in from the index.
pub(crate) fn apply_stack(
    candidates: &mut Vec<Candidate>,
    profile: &QueryProfile,
    query_vector: Option<&[f32]>,
    params: &StackParams,
    index: &Index,
    accepts: &dyn Fn(&StoredChunk) -> bool,
) -> Result<(), IndexError> {
    if params.impls_into_types {
        merge_impls_into_types(candidates, index, accepts)?;
    }
    if params.included_docs > 0.0 {
        lift_doc_includers(candidates, params.included_docs, index, accepts)?;
    }
    if params.definition > 0.0 {
        boost_definitions(candidates, profile, params, index, accepts)?;
    }
    if params.path_words > 0.0 {
        boost_path_words(candidates, profile, params.path_words);
    }
    let coherence = coherence_weight(params, profile);
    if coherence > 0.0 {
        boost_file_coherence(candidates, coherence);
    }
    if params.file_similarity > 0.0
        && let Some(vector) = query_vector
    {
        boost_file_similarity(candidates, vector, index, params.file_similarity)?;
    }
    // The workspace's file names are read only when the query seems to ask for tests.
    let file_words = if profile.asking_words(PathClass::Test).is_empty() {
        HashSet::new()
    } else {
        code_file_words(&index.file_paths()?)
    };
    // Last, so a prior scales everything a result earned (a test that defines the queried
    // name is still a test).
    apply_priors_knowing(candidates, profile, &params.priors, &file_words);
    lift_members_over_containers(candidates, params.member_lift);
    lift_exact_names(candidates, profile, params.exact_name_lift);
    Ok(())
}

/// For a bare identifier query: the best-scoring symbol named exactly like it (case and all)
/// rises to just above the best symbol whose name (or whose container's name) starts with it
/// and goes on, when that one ranks higher and the exact one scores at least `share` of it. The
/// query named one thing; `TCompactProtocolFactory` only starts like it. Only where one file
/// defines the name; applied after the member lift, whose lifted members it counts. 0 turns it
/// off.
fn lift_exact_names(candidates: &mut [Candidate], profile: &QueryProfile, share: f32) {
    if share <= 0.0 {
        return;
    }
    let Some(identifier) = &profile.identifier else {
        return;
    };
    let wanted = identifier.name.trim_end_matches(['?', '!']);
    if wanted.is_empty() {
        return;
    }
    let scores: Vec<f32> = candidates.iter().map(Candidate::score).collect();
    let is_exact = |c: &StoredChunk| c.name.trim_end_matches(['?', '!']) == wanted;
    let extends = |name: &str| name.len() > wanted.len() && name.starts_with(wanted);
    // What a longer name holds (`get_protocol` in `CompactProtocolFactory`) counts as it does.
    let is_longer =
        |c: &StoredChunk| extends(&c.name) || c.container.as_deref().is_some_and(extends);
    let best = |keep: &dyn Fn(&StoredChunk) -> bool| {
        candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.chunk.kind != SymbolKind::Section && keep(&c.chunk))
            .max_by(|a, b| scores[a.0].total_cmp(&scores[b.0]))
            .map(|(i, _)| i)
    };
    let (Some(exact), Some(longer)) = (best(&is_exact), best(&is_longer)) else {
        return;
    };
    // A name defined in several files (C++ `formatter` specialisations) does not say which.
    let file = &candidates[exact].chunk.path;
    if candidates
        .iter()
        .any(|c| c.chunk.kind != SymbolKind::Section && is_exact(&c.chunk) && &c.chunk.path != file)
    {
        return;
    }
    let (own, above) = (scores[exact], scores[longer]);
    if above > own && own >= share * above {
        let other = &candidates[longer].chunk;
        let what = match &other.container {
            Some(container) if !extends(&other.name) => format!("{} in {container}", other.name),
            _ => other.name.clone(),
        };
        candidates[exact].add(
            Stage::Definition,
            lift_above(own, above),
            format!("named {wanted} exactly, above {what}, whose name only starts so"),
        );
    }
}

/// A class, impl or module whose chunk holds the code of one of its members matched partly by
/// that code: where the member itself scores at least `share` of the container, the member is
/// the more precise answer and rises to just above the container (the container stays, below
/// it). The member chosen is the best-scoring one; each container lifts at most one. A share
/// of 0 turns it off.
fn lift_members_over_containers(candidates: &mut [Candidate], share: f32) {
    if share <= 0.0 {
        return;
    }
    let scores: Vec<f32> = candidates.iter().map(Candidate::score).collect();
    let mut lifts: Vec<(usize, f32, String)> = Vec::new();
    for (c, container) in candidates.iter().enumerate() {
        let outer = &container.chunk;
        if !outer.kind.is_container() {
            continue;
        }
        // Squeezed only for a container with a member among the candidates.
        let text = std::cell::OnceCell::new();
        let best = candidates
            .iter()
            .enumerate()
            .filter(|(m, member)| {
                let inner = &member.chunk;
                *m != c
                    && inner.path == outer.path
                    && inner.container.as_deref() == Some(outer.name.as_str())
                    && outer.start_line <= inner.start_line
                    && inner.end_line <= outer.end_line
                    && scores[*m] < scores[c]
                    && scores[*m] >= share * scores[c]
                    && holds_code_of(text.get_or_init(|| squeeze(&outer.text)), inner)
            })
            .max_by(|a, b| scores[a.0].total_cmp(&scores[b.0]));
        if let Some((m, _)) = best {
            lifts.push((
                m,
                lift_above(scores[m], scores[c]),
                format!(
                    "its {} {} holds its code and matched as much",
                    outer.kind, outer.name
                ),
            ));
        }
    }
    for (m, raise, detail) in lifts {
        // A member lifted by two containers (nested) keeps the larger lift.
        let already = candidates[m]
            .parts
            .iter()
            .find(|p| p.stage == Stage::Member)
            .map(|p| p.value);
        if already.is_none_or(|v| v < raise) {
            candidates[m].parts.retain(|p| p.stage != Stage::Member);
            candidates[m].add(Stage::Member, raise, detail);
        }
    }
}

/// What a result scoring `own` gains to land just above one scoring `above` (by a thousandth
/// of that score: the two keep their scores' meaning, only their order changes).
fn lift_above(own: f32, above: f32) -> f32 {
    above - own + 0.001 * above.abs().max(1e-3)
}

/// Whether the container's chunk text (whitespace removed, [`squeeze`]) holds the member's
/// declaration (its signature, spaces aside: signatures are stored with whitespace collapsed):
/// only the first window of a long container is embedded, and members past it did not add to
/// its score.
fn holds_code_of(squeezed_container_text: &str, member: &StoredChunk) -> bool {
    let signature = squeeze(&member.signature);
    !signature.is_empty() && squeezed_container_text.contains(&signature)
}

fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The words of the names of the workspace's own code files (their stems, split like
/// identifiers, lower case): files no path class demotes.
fn code_file_words(paths: &[String]) -> HashSet<String> {
    let mut words = HashSet::new();
    for path in paths {
        if classify(path, SymbolKind::Section, "", None).is_empty() {
            words.extend(file_name_words(path));
        }
    }
    words
}

#[cfg(test)]
fn apply_priors(candidates: &mut [Candidate], profile: &QueryProfile, priors: &Priors) {
    apply_priors_knowing(candidates, profile, priors, &HashSet::new());
}

/// The path and kind priors. `file_words` are [`code_file_words`] of the workspace, read only
/// for a query asking for tests (empty otherwise).
fn apply_priors_knowing(
    candidates: &mut [Candidate],
    profile: &QueryProfile,
    priors: &Priors,
    file_words: &HashSet<String>,
) {
    let superseded = superseded_versions(candidates.iter().map(|c| c.chunk.path.as_str()));
    // Each candidate's path classes, read once: the test-framework rule looks at all of them
    // before any prior is applied.
    let path_classes: Vec<Vec<PathClass>> = candidates
        .iter()
        .map(|c| {
            let chunk = &c.chunk;
            classify(
                &chunk.path,
                chunk.kind,
                &chunk.name,
                chunk.container.as_deref(),
            )
        })
        .collect();
    let tests_are_the_subject =
        tests_are_the_subject(candidates, &path_classes, profile, file_words);
    for (candidate, mut classes) in candidates.iter_mut().zip(path_classes) {
        let chunk = &candidate.chunk;
        // An older API version beside a newer one is compatibility code, unless the query
        // names that version ("v3 error types").
        if let Some(version) = superseded_version_of(&chunk.path, &superseded)
            && !classes.contains(&PathClass::Compat)
            && !profile.names_word(version)
        {
            classes.push(PathClass::Compat);
        }
        // Most kinds have no kind prior: the name is only read for those that do.
        for class in [
            kind_class(chunk.kind, profile.shape),
            abstract_class(chunk, profile.shape),
        ]
        .into_iter()
        .flatten()
        {
            if !profile.names_identifier(&chunk.name) {
                classes.push(class);
            }
        }
        for class in classes {
            if profile.asks_for(class) && !(class == PathClass::Test && tests_are_the_subject) {
                continue;
            }
            let factor = priors.factor(class);
            if factor < 1.0 {
                candidate.scale(Stage::Prior, factor, format!("{class} × {factor}"));
            }
        }
    }
}

/// Whether the words with which the query seems to ask for tests ("test", "spec", …) are words
/// of the workspace's own code: the names of candidates outside tests, of their files, or of the
/// workspace's code files (`file_words`, [`code_file_words`]) use every one of them. In a test
/// framework "the test" is what its code handles (bats's `bats_should_retry_test` and
/// `test_functions.bash`, busted's `getTestFiles`), not a request for its test suite, so the
/// test prior stays. `path_classes` holds each candidate's [`classify`] result, in the same
/// order.
fn tests_are_the_subject(
    candidates: &[Candidate],
    path_classes: &[Vec<PathClass>],
    profile: &QueryProfile,
    file_words: &HashSet<String>,
) -> bool {
    let asking = profile.asking_words(PathClass::Test);
    if asking.is_empty() {
        return false;
    }
    let mut code_words: HashSet<String> = HashSet::new();
    for (candidate, classes) in candidates.iter().zip(path_classes) {
        let chunk = &candidate.chunk;
        if !classes.contains(&PathClass::Test) {
            code_words.extend(
                split_identifier(&chunk.name)
                    .into_iter()
                    .map(|w| w.to_lowercase()),
            );
            // Its file's name too: bats's `skip` lives in `test_functions.bash`.
            code_words.extend(file_name_words(&chunk.path));
        }
    }
    asking.iter().all(|word| {
        [*word, singular(word)]
            .iter()
            .any(|w| code_words.contains(*w) || file_words.contains(*w))
    })
}

/// Symbols named like a queried identifier gain `params.definition` (times the identifier's
/// weight); when the query qualifies it (`Base` in `Sinatra::Base`) a symbol whose container or
/// file matches the qualifier gains the whole, others half. Definitions neither list found are
/// brought in from the index.
fn boost_definitions(
    candidates: &mut Vec<Candidate>,
    profile: &QueryProfile,
    params: &StackParams,
    index: &Index,
    accepts: &dyn Fn(&StoredChunk) -> bool,
) -> Result<(), IndexError> {
    for (name, qualifier, weight) in profile.wanted_definitions(params.embedded_share) {
        let mut known: std::collections::HashSet<SymbolKey> =
            candidates.iter().map(|c| SymbolKey::of(&c.chunk)).collect();
        for chunk in index.symbols_named(name, MAX_DEFINITIONS)? {
            if accepts(&chunk) && known.insert(SymbolKey::of(&chunk)) {
                candidates.push(Candidate {
                    chunk,
                    parts: Vec::new(),
                });
            }
        }
        // Exact case wins (`Engine` the type, not `engine()`); other cases count only when
        // nothing has the exact one.
        let bare = name.trim_end_matches(['?', '!']);
        let matches = |chunk: &StoredChunk, exact: bool| {
            let own = chunk.name.trim_end_matches(['?', '!']);
            chunk.kind != SymbolKind::Section
                && if exact {
                    own == bare
                } else {
                    own.eq_ignore_ascii_case(bare)
                }
        };
        let exact = candidates.iter().any(|c| matches(&c.chunk, true));
        // A name defined in many files says less about each: the boost is shared out.
        let files = candidates
            .iter()
            .filter(|c| matches(&c.chunk, exact))
            .map(|c| c.chunk.path.as_str())
            .collect::<std::collections::HashSet<&str>>()
            .len();
        let spread = (files.max(1) as f32).sqrt();
        // `Engine` asks for the type: where one is defined, a method `Engine()` counts little.
        let wants_type = bare.chars().next().is_some_and(char::is_uppercase)
            && candidates
                .iter()
                .any(|c| matches(&c.chunk, exact) && is_type_kind(c.chunk.kind));
        for candidate in candidates.iter_mut() {
            let chunk = &candidate.chunk;
            if !matches(chunk, exact) {
                continue;
            }
            let qualified = qualifier.is_some_and(|q| qualifier_matches(q, chunk));
            let mut share = match qualifier {
                Some(_) if !qualified => 0.5,
                _ => 1.0,
            };
            if wants_type && !is_type_kind(chunk.kind) {
                share *= 0.25;
            }
            let value = params.definition * weight * share / spread;
            let mut detail = match qualifier {
                Some(q) if qualified => format!("defines {q}::{name}"),
                _ => format!("defines {name}"),
            };
            if spread > 1.0 {
                detail.push_str(&format!(", as do {} other files", files - 1));
            }
            candidate.add(Stage::Definition, value, detail);
        }
    }
    Ok(())
}

/// A doc file that Rust items include (`#[doc = include_str!("../docs/routing/nest.md")]`) is
/// what rustdoc shows as their docs. Each such item (brought in from the index when neither
/// list found it) rises to `weight` × the best score among the candidate sections of that
/// file, when that is more than its own score; the sections keep their place (and their docs
/// prior).
fn lift_doc_includers(
    candidates: &mut Vec<Candidate>,
    weight: f32,
    index: &Index,
    accepts: &dyn Fn(&StoredChunk) -> bool,
) -> Result<(), IndexError> {
    let included = index.included_docs()?;
    if included.is_empty() {
        return Ok(());
    }
    // The best score of each included file among the candidates.
    let mut best: HashMap<String, f32> = HashMap::new();
    for candidate in candidates.iter() {
        if included.contains_key(&candidate.chunk.path) {
            let score = candidate.score();
            let entry = best.entry(candidate.chunk.path.clone()).or_insert(score);
            *entry = entry.max(score);
        }
    }
    // Each including chunk, with the best doc score it is owed and the doc file it comes from.
    let mut owed: HashMap<i64, (f32, &str)> = HashMap::new();
    for (doc_path, score) in &best {
        for &id in included.get(doc_path).into_iter().flatten() {
            let entry = owed.entry(id).or_insert((*score, doc_path.as_str()));
            keep_best_doc(entry, *score, doc_path);
        }
    }
    if owed.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<i64> = owed.keys().copied().collect();
    ids.sort_unstable();
    let mut slot: HashMap<SymbolKey, usize> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| (SymbolKey::of(&c.chunk), i))
        .collect();
    // Several windows of one symbol may include the file: the symbol is lifted once.
    let mut lifted: HashMap<usize, (f32, &str)> = HashMap::new();
    for chunk in index.chunks_by_ids(&ids)? {
        if !accepts(&chunk) {
            continue;
        }
        let Some(&(score, doc_path)) = owed.get(&chunk.id) else {
            continue;
        };
        let i = *slot.entry(SymbolKey::of(&chunk)).or_insert_with(|| {
            candidates.push(Candidate {
                chunk,
                parts: Vec::new(),
            });
            candidates.len() - 1
        });
        let entry = lifted.entry(i).or_insert((score, doc_path));
        keep_best_doc(entry, score, doc_path);
    }
    for (i, (score, doc_path)) in lifted {
        let target = weight * score;
        let own = candidates[i].score();
        if target > own {
            candidates[i].add(
                Stage::IncludedDoc,
                target - own,
                format!("its docs are {doc_path}"),
            );
        }
    }
    Ok(())
}

/// Keeps in `best` the higher doc score; a tie goes to the first doc path, so the explanation
/// does not depend on hash order.
fn keep_best_doc<'a>(best: &mut (f32, &'a str), score: f32, doc_path: &'a str) {
    if (score, std::cmp::Reverse(doc_path)) > (best.0, std::cmp::Reverse(best.1)) {
        *best = (score, doc_path);
    }
}

/// Kinds that define a type, which a capitalised identifier most likely names.
fn is_type_kind(kind: SymbolKind) -> bool {
    matches!(
        kind,
        SymbolKind::Class
            | SymbolKind::Struct
            | SymbolKind::Enum
            | SymbolKind::Trait
            | SymbolKind::Interface
            | SymbolKind::Type
            | SymbolKind::Module
    )
}

/// Definitions of one name brought in from the index at most (overloads, one per file).
const MAX_DEFINITIONS: usize = 20;

fn qualifier_matches(qualifier: &str, chunk: &StoredChunk) -> bool {
    let q = qualifier.trim_start_matches('$').to_ascii_lowercase();
    if chunk
        .container
        .as_deref()
        .is_some_and(|c| c.to_ascii_lowercase() == q || c.to_ascii_lowercase().ends_with(&q))
    {
        return true;
    }
    let stem = file_stem(&chunk.path).to_ascii_lowercase().replace('_', "");
    stem == q.replace('_', "")
}

fn file_stem(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split('.').next().unwrap_or(file)
}

/// The words of a file's name without its extension, split like identifiers, lower case
/// (`lib/test_functions.bash` gives `test functions`).
fn file_name_words(path: &str) -> impl Iterator<Item = String> + '_ {
    split_identifier(file_stem(path))
        .into_iter()
        .map(|w| w.to_lowercase())
}

/// The words of a file's name and of its directory: `src/http_client/RetryPolicy.java` gives
/// `retrypolicy retry policy http_client http client`.
fn path_words(path: &str) -> Vec<String> {
    let mut parts: Vec<&str> = path.rsplit('/').take(2).collect();
    if let Some(file) = parts.first_mut() {
        *file = file_stem(file);
    }
    let mut words = Vec::new();
    for part in parts {
        let whole = part.to_lowercase();
        for word in std::iter::once(whole.as_str())
            .chain(
                split_identifier(part)
                    .into_iter()
                    .map(|w| w.trim_matches('-')),
            )
            .flat_map(|w| w.split('-'))
        {
            let word = word.to_lowercase();
            if word.chars().count() >= 3 && !words.contains(&word) {
                words.push(word);
            }
        }
    }
    words
}

/// Files whose name or directory shares words with the query gain `weight` × the share of the
/// query's content words they match.
fn boost_path_words(candidates: &mut [Candidate], profile: &QueryProfile, weight: f32) {
    if profile.words.is_empty() {
        return;
    }
    let mut cache: HashMap<String, Option<(f32, String)>> = HashMap::new();
    for candidate in candidates.iter_mut() {
        let path = candidate.chunk.path.clone();
        let found = cache
            .entry(path.clone())
            .or_insert_with(|| path_match(&path, &profile.words))
            .clone();
        if let Some((share, names)) = found {
            candidate.add(
                Stage::PathWords,
                weight * share,
                format!("path names {names}"),
            );
        }
    }
}

/// How well a file's name and directory match the query's words: the share of query words
/// they contain, weighed by how much of the file name those words cover (`request.rb` matches
/// "Request" better than `bad_request.rb`). `None` when nothing matches.
fn path_match(path: &str, query_words: &[String]) -> Option<(f32, String)> {
    let words = path_words(path);
    let stem_words = path_words(file_stem(path.rsplit('/').next().unwrap_or(path)));
    let mut hit: Vec<&str> = Vec::new();
    let matched = query_words
        .iter()
        .filter(|q| {
            let found = words.iter().find(|w| same_word(q, w));
            if let Some(w) = found
                && !hit.contains(&w.as_str())
            {
                hit.push(w);
            }
            found.is_some()
        })
        .count();
    if matched == 0 {
        return None;
    }
    // The stem's words besides the whole stem (`bad_request` → bad, request).
    let parts: Vec<&String> = stem_words
        .iter()
        .skip(usize::from(stem_words.len() > 1))
        .collect();
    let covered = parts
        .iter()
        .filter(|w| query_words.iter().any(|q| same_word(q, w)))
        .count();
    let cover = if parts.is_empty() {
        0.0
    } else {
        covered as f32 / parts.len() as f32
    };
    let share = matched as f32 / query_words.len() as f32 * (0.5 + 0.5 * cover);
    Some((share, hit.join(", ")))
}

/// How much file coherence the query gets: [`StackParams::file_coherence`], more when it asks
/// how something works or names a subject.
fn coherence_weight(params: &StackParams, profile: &QueryProfile) -> f32 {
    params.file_coherence
        + match profile.shape {
            QueryShape::Mechanism => params.how_coherence,
            QueryShape::Topic => params.topic_coherence,
            QueryShape::Identifier
            | QueryShape::Action
            | QueryShape::Description
            | QueryShape::Other => 0.0,
        }
}

/// The best symbol of each file gains `weight` × (the file's summed candidate scores / the
/// largest such sum): a file with several good matches is more likely the answer.
fn boost_file_coherence(candidates: &mut [Candidate], weight: f32) {
    let mut mass: HashMap<&str, (f32, usize)> = HashMap::new();
    for (i, candidate) in candidates.iter().enumerate() {
        let score = candidate.score().max(0.0);
        let entry = mass
            .entry(candidate.chunk.path.as_str())
            .or_insert((0.0, i));
        entry.0 += score;
        if score > candidates[entry.1].score() {
            entry.1 = i;
        }
    }
    let heaviest = mass.values().map(|m| m.0).fold(0.0f32, f32::max);
    if heaviest <= 0.0 {
        return;
    }
    let best: Vec<(usize, f32)> = mass.values().map(|&(sum, i)| (i, sum / heaviest)).collect();
    for (i, share) in best {
        if share > 0.0 {
            candidates[i].add(
                Stage::FileCoherence,
                weight * share,
                format!(
                    "its file holds {:.0}% of the heaviest file's matches",
                    share * 100.0
                ),
            );
        }
    }
}

/// Candidate files whose centroid is compared with the query, best first by their best symbol.
const SIMILARITY_FILES: usize = 30;

/// Every symbol of the files whose mean chunk vector lies nearest the query gains `weight`
/// × `(k + 1) / (k + rank)` of its file (k = 5): a file about the question as a whole (a
/// WebSocket client module for "WebSocket client implementation") is likely the answer even
/// when no single symbol says it all. Only the best [`SIMILARITY_FILES`] files take part.
fn boost_file_similarity(
    candidates: &mut [Candidate],
    query: &[f32],
    index: &Index,
    weight: f32,
) -> Result<(), IndexError> {
    let mut files: Vec<(String, f32)> = Vec::new();
    let mut order: Vec<&Candidate> = candidates.iter().collect();
    order.sort_by(|a, b| b.score().total_cmp(&a.score()));
    for candidate in order {
        if files.len() == SIMILARITY_FILES {
            break;
        }
        if files.iter().any(|(p, _)| *p == candidate.chunk.path) {
            continue;
        }
        let vectors = index.vectors_in_file(&candidate.chunk.path)?;
        if let Some(similarity) = centroid_similarity(query, &vectors) {
            files.push((candidate.chunk.path.clone(), similarity));
        }
    }
    files.sort_by(|a, b| b.1.total_cmp(&a.1));
    const K: f32 = 5.0;
    for candidate in candidates.iter_mut() {
        if let Some(rank) = files.iter().position(|(p, _)| *p == candidate.chunk.path) {
            let value = weight * (K + 1.0) / (K + rank as f32 + 1.0);
            let similarity = files[rank].1;
            candidate.add(
                Stage::FileSimilarity,
                value,
                format!(
                    "file rank {} by its mean vector (cosine {similarity:.2})",
                    rank + 1
                ),
            );
        }
    }
    Ok(())
}

/// Cosine between `query` and the mean of `vectors` (None without vectors).
fn centroid_similarity(query: &[f32], vectors: &[Vec<f32>]) -> Option<f32> {
    let first = vectors.first()?;
    let mut mean = vec![0.0f32; first.len()];
    for v in vectors {
        for (m, x) in mean.iter_mut().zip(v) {
            *m += x;
        }
    }
    let dot: f32 = mean.iter().zip(query).map(|(a, b)| a * b).sum();
    let norm_m = mean.iter().map(|x| x * x).sum::<f32>().sqrt();
    let norm_q = query.iter().map(|x| x * x).sum::<f32>().sqrt();
    (norm_m > 0.0 && norm_q > 0.0).then(|| dot / (norm_m * norm_q))
}

/// Stage 7: picks the `top_k` best, greedily; once a file has `free` results, each further
/// symbol of it is multiplied by `decay` once more (1 keeps the plain score order).
pub(crate) fn select(
    candidates: Vec<Candidate>,
    top_k: usize,
    diversity: &Diversity,
) -> Vec<Candidate> {
    let Diversity { decay, free, keep } = *diversity;
    let mut pool = candidates;
    sort_stable(&mut pool);
    if decay >= 1.0 {
        pool.truncate(top_k);
        return pool;
    }
    let kept_above = pool.first().map_or(f32::INFINITY, |c| c.score() * keep);
    let exempt = |raw: f32| keep < 1.0 && raw >= kept_above;
    let mut chosen: Vec<Candidate> = Vec::with_capacity(top_k);
    let mut per_file: HashMap<String, i32> = HashMap::new();
    while chosen.len() < top_k && !pool.is_empty() {
        // The best score after decay; ties go to the earlier (higher raw score) candidate.
        let mut best: Option<(usize, f32)> = None;
        for (i, candidate) in pool.iter().enumerate() {
            let raw = candidate.score();
            // Sorted by raw score and decay only lowers: nothing further can win.
            if best.is_some_and(|(_, b)| raw <= b) {
                break;
            }
            let seen = per_file.get(&candidate.chunk.path).copied().unwrap_or(0);
            let score = if exempt(raw) {
                raw
            } else {
                raw * decay.powi((seen - free as i32 + 1).max(0))
            };
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((i, score));
            }
        }
        let Some((i, _)) = best else { break };
        let mut candidate = pool.remove(i);
        let seen = per_file.entry(candidate.chunk.path.clone()).or_insert(0);
        let excess = (*seen - free as i32 + 1).max(0);
        if excess > 0 && !exempt(candidate.score()) {
            let factor = decay.powi(excess);
            candidate.scale(
                Stage::SameFile,
                factor,
                format!("{} result(s) of this file above, × {factor:.2}", *seen),
            );
        }
        *seen += 1;
        chosen.push(candidate);
    }
    chosen
}

/// `rest` (results ranked after the first `after`, over a larger pool), in its order, scaled by
/// one factor so that none scores above `floor`, the last of the results before it: merged by
/// score with another workspace folder's results, the first results keep their places.
pub(crate) fn below(rest: Vec<Candidate>, floor: Option<f32>, after: usize) -> Vec<Candidate> {
    let top = rest.iter().map(Candidate::score).fold(f32::MIN, f32::max);
    let factor = match floor {
        Some(floor) if top > floor && top > 0.0 => (floor / top).max(0.0),
        _ => return rest,
    };
    rest.into_iter()
        .map(|mut candidate| {
            candidate.scale(
                Stage::Extended,
                factor,
                format!("ranked after the first {after} over a larger pool, × {factor:.2}"),
            );
            candidate
        })
        .collect()
}

/// Best score first; equal scores keep their order.
fn sort_stable(candidates: &mut [Candidate]) {
    candidates.sort_by(|a, b| b.score().total_cmp(&a.score()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::PathClass;

    fn chunk(path: &str, name: &str) -> StoredChunk {
        StoredChunk {
            id: 0,
            path: path.into(),
            language: crate::symbols::Language::Rust,
            name: name.into(),
            kind: SymbolKind::Function,
            container: None,
            start_line: 1,
            end_line: 10,
            signature: format!("fn {name}()"),
            text: String::new(),
            declaration: false,
        }
    }

    #[test]
    fn a_symbol_only_bm25_found_keeps_a_share_of_its_lexical_score() {
        let named = |name: &str, id: i64| StoredChunk {
            id,
            ..chunk("a.rs", name)
        };
        let dense = vec![named("parse", 1), named("lex", 2)];
        let lexical = vec![
            named("unrelated", 3),
            named("parse", 1),
            named("pending", 4),
        ];
        let lists = [
            RankedList {
                stage: Stage::Dense,
                chunks: &dense,
                scores: &[],
                weight: 2.5,
            },
            RankedList {
                stage: Stage::Lexical,
                chunks: &lexical,
                scores: &[],
                weight: 1.0,
            },
        ];
        let scores = |query: &str, factor: f32| -> HashMap<String, f32> {
            let mut candidates = fuse(&lists, 5.0, &ScoreFusion::OFF, QueryShape::Other);
            // Chunk 4 waits for its vector.
            discount_lexical_only(
                &mut candidates,
                &dense,
                &QueryProfile::new(query),
                factor,
                |id| id != 4,
            );
            candidates
                .iter()
                .map(|c| (c.chunk.name.clone(), c.score()))
                .collect()
        };
        let before = scores("where is the input parsed", 1.0);
        let after = scores("where is the input parsed", 0.5);
        assert!((after["unrelated"] - before["unrelated"] * 0.5).abs() < 1e-6);
        for kept in ["parse", "lex", "pending"] {
            assert_eq!(after[kept], before[kept], "{kept}");
        }
        // A bare identifier is found by name: nothing changes.
        assert_eq!(scores("unrelated", 0.5), scores("unrelated", 1.0));
    }

    fn decay(decay: f32, free: u32) -> Diversity {
        Diversity {
            decay,
            free,
            keep: 1.0,
        }
    }

    fn names(candidates: &[Candidate]) -> Vec<&str> {
        candidates.iter().map(|c| c.chunk.name.as_str()).collect()
    }

    fn adds_up(candidate: &Candidate) {
        let sum: f32 = candidate.parts.iter().map(|p| p.value).sum();
        assert!((sum - candidate.score()).abs() < 1e-6);
    }

    #[test]
    fn fusion_is_a_share_of_first_place_everywhere() {
        let dense = [chunk("a.rs", "a"), chunk("a.rs", "b")];
        let lexical = [chunk("a.rs", "b"), chunk("a.rs", "c")];
        let lists = [
            RankedList {
                stage: Stage::Dense,
                chunks: &dense,
                scores: &[],
                weight: 1.0,
            },
            RankedList {
                stage: Stage::Lexical,
                chunks: &lexical,
                scores: &[],
                weight: 1.0,
            },
        ];
        let fused = fuse(&lists, 60.0, &ScoreFusion::OFF, QueryShape::Other);
        // b: 1/62 + 1/61 beats a: 1/61.
        assert_eq!(names(&fused), vec!["b", "a", "c"]);
        let expected = (1.0 / 62.0 + 1.0 / 61.0) / (2.0 / 61.0);
        assert!((fused[0].score() - expected).abs() < 1e-6);
        assert_eq!(fused[0].parts.len(), 2);
        let first_everywhere = fuse(&lists[..1], 60.0, &ScoreFusion::OFF, QueryShape::Other);
        assert!((first_everywhere[0].score() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn list_scores_are_scaled_per_list() {
        let dense = [chunk("a.rs", "a"), chunk("a.rs", "b"), chunk("a.rs", "c")];
        let list = |stage, scores: &'static [f32]| RankedList {
            stage,
            chunks: &dense,
            scores,
            weight: 1.0,
        };
        let close = |got: Vec<f32>, want: &[f32]| {
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-6, "{got:?} != {want:?}");
            }
        };
        // Cosines over their span; BM25 as a share of the first.
        close(
            list(Stage::Dense, &[0.8, 0.6, 0.4]).scaled_scores(),
            &[1.0, 0.5, 0.0],
        );
        close(
            list(Stage::Lexical, &[10.0, 5.0, 2.5]).scaled_scores(),
            &[1.0, 0.5, 0.25],
        );
        assert_eq!(
            list(Stage::Dense, &[0.7, 0.7]).scaled_scores(),
            vec![1.0, 1.0]
        );
        assert!(list(Stage::Lexical, &[]).scaled_scores().is_empty());
    }

    #[test]
    fn score_fusion_keeps_how_far_ahead_a_first_place_is() {
        // By rank, a and b tie (each is first in one list and second in the other), and a
        // comes first by appearance. By score, b is nearly as close as a by meaning (0.60
        // against 0.61) while a has a tenth of b's BM25 relevance: b is the better match.
        let dense = [chunk("a.rs", "a"), chunk("a.rs", "b"), chunk("a.rs", "c")];
        let lexical = [chunk("a.rs", "b"), chunk("a.rs", "a")];
        let lists = [
            RankedList {
                stage: Stage::Dense,
                chunks: &dense,
                scores: &[0.61, 0.60, 0.20],
                weight: 1.0,
            },
            RankedList {
                stage: Stage::Lexical,
                chunks: &lexical,
                scores: &[10.0, 1.0],
                weight: 1.0,
            },
        ];
        let by_rank = fuse(&lists, 5.0, &ScoreFusion::OFF, QueryShape::Other);
        assert_eq!(names(&by_rank), vec!["a", "b", "c"]);
        let by_score = ScoreFusion {
            share: 1.0,
            dense_share: 0.5,
        };
        let fused = fuse(&lists, 5.0, &by_score, QueryShape::Other);
        assert_eq!(names(&fused), vec!["b", "a", "c"]);
        // b: half of 0.4 / 0.41 of the dense span plus half of the lexical first place.
        let expected = 0.5 * (0.40 / 0.41) + 0.5;
        assert!(
            (fused[0].score() - expected).abs() < 1e-5,
            "{}",
            fused[0].score()
        );
        adds_up(&fused[0]);
        assert!(
            fused[0].parts[0].detail.contains("score 0.600"),
            "{:?}",
            fused[0].parts
        );
        // Halfway, each part is the mean of the two.
        let half = fuse(
            &lists,
            5.0,
            &ScoreFusion {
                share: 0.5,
                dense_share: 0.5,
            },
            QueryShape::Other,
        );
        let b = half.iter().find(|c| c.chunk.name == "b").unwrap();
        let by_rank_b = by_rank.iter().find(|c| c.chunk.name == "b").unwrap();
        assert!((b.score() - (0.5 * by_rank_b.score() + 0.5 * expected)).abs() < 1e-5);
    }

    #[test]
    fn the_kind_prior_is_half_a_lexical_first_place_in_score_fusion() {
        let mut imp = chunk("a.rs", "Glob");
        imp.kind = SymbolKind::Impl;
        let lexical = [imp];
        let lists = [RankedList {
            stage: Stage::Lexical,
            chunks: &lexical,
            scores: &[3.0],
            weight: 1.0,
        }];
        let fusion = ScoreFusion {
            share: 1.0,
            dense_share: 0.6,
        };
        let fused = fuse(&lists, 5.0, &fusion, QueryShape::Other);
        let kind: f32 = fused[0]
            .parts
            .iter()
            .filter(|p| p.stage == Stage::Kind)
            .map(|p| p.value)
            .sum();
        assert!((kind + 0.5 * 0.4).abs() < 1e-6, "{kind}");
    }

    /// Fuses lists of names (all in one file) and returns names with scores, best first.
    fn fused(lists: &[(&[&str], f32)], rrf_k: f32, top_k: usize) -> Vec<(String, f32)> {
        let chunks: Vec<Vec<StoredChunk>> = lists
            .iter()
            .map(|(names, _)| names.iter().map(|n| chunk("a.rs", n)).collect())
            .collect();
        let ranked: Vec<RankedList<'_>> = chunks
            .iter()
            .zip(lists)
            .map(|(chunks, (_, weight))| RankedList {
                stage: Stage::Lexical,
                chunks,
                scores: &[],
                weight: *weight,
            })
            .collect();
        select(
            fuse(&ranked, rrf_k, &ScoreFusion::OFF, QueryShape::Other),
            top_k,
            &decay(1.0, 1),
        )
        .into_iter()
        .map(|c| (c.chunk.name.clone(), c.score()))
        .collect()
    }

    fn order(fused: &[(String, f32)]) -> Vec<&str> {
        fused.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn fusion_adds_reciprocal_ranks_and_keeps_ties_in_order() {
        let f = fused(
            &[(&["a", "b", "c"], 1.0), (&["c", "d", "a"], 1.0)],
            60.0,
            10,
        );
        // a: 1/61 + 1/63, c: 1/63 + 1/61 (tie, a came first), b: 1/62, d: 1/62.
        assert_eq!(order(&f), vec!["a", "c", "b", "d"]);
        let expected = (1.0 / 61.0 + 1.0 / 63.0) / (2.0 / 61.0);
        assert!((f[0].1 - expected).abs() < 1e-6, "{}", f[0].1);
        // Found by both beats first place in one list.
        let f = fused(&[(&["x", "y"], 1.0), (&["z", "y"], 1.0)], 60.0, 2);
        assert_eq!(order(&f), vec!["y", "x"]);
        // A lighter list: its first place loses to the other's.
        let f = fused(&[(&["dense"], 0.5), (&["lexical"], 1.0)], 60.0, 2);
        assert_eq!(order(&f), vec!["lexical", "dense"]);
        assert!((f[1].1 - 0.5 / 1.5).abs() < 1e-6);
    }

    #[test]
    fn a_small_k_favours_first_places() {
        // "top" is first in one list; "both" is third in both: 2/(k+3) > 1/(k+1) iff k > 1.
        let lists: [(&[&str], f32); 2] = [(&["top", "x", "both"], 1.0), (&["y", "z", "both"], 1.0)];
        assert_eq!(order(&fused(&lists, 60.0, 1)), vec!["both"]);
        assert_eq!(order(&fused(&lists, 0.5, 1)), vec!["top"]);
        assert!(fused(&lists, 60.0, 0).is_empty());
    }

    #[test]
    fn the_per_query_weight_decides_between_two_first_places() {
        use crate::search::{NAMED_DENSE_WEIGHT, UNNAMED_DENSE_WEIGHT};
        let k = crate::search::DEFAULT_RRF_K;
        let lists = |w: f32| -> [(&'static [&'static str], f32); 2] {
            [(&["from_dense", "x"], w), (&["from_lexical", "y"], 1.0)]
        };
        assert_eq!(
            order(&fused(&lists(NAMED_DENSE_WEIGHT), k, 1)),
            vec!["from_lexical"]
        );
        assert_eq!(
            order(&fused(&lists(UNNAMED_DENSE_WEIGHT), k, 1)),
            vec!["from_dense"]
        );
        // First in every list scores 1 whatever the weights, so roots searched with different
        // per-query weights merge fairly.
        for w in [NAMED_DENSE_WEIGHT, UNNAMED_DENSE_WEIGHT] {
            let f = fused(&[(&["a"], w), (&["a"], 1.0)], k, 1);
            assert!((f[0].1 - 1.0).abs() < 1e-6);
        }
        // Second in both beats either first place under the named weight at k = 5.
        let both: [(&[&str], f32); 2] =
            [(&["a", "both"], NAMED_DENSE_WEIGHT), (&["b", "both"], 1.0)];
        assert_eq!(order(&fused(&both, k, 1)), vec!["both"]);
    }

    #[test]
    fn containers_lose_half_a_first_place() {
        let mut block = chunk("a.rs", "Parser");
        block.kind = SymbolKind::Impl;
        let dense = [block, chunk("a.rs", "parse")];
        let fused = fuse(
            &[RankedList {
                stage: Stage::Dense,
                chunks: &dense,
                scores: &[],
                weight: 1.0,
            }],
            5.0,
            &ScoreFusion::OFF,
            QueryShape::Other,
        );
        assert_eq!(names(&fused), vec!["parse", "Parser"]);
        assert!(fused[1].parts.iter().any(|p| p.stage == Stage::Kind));
        let prior = |kind, language| kind_prior(kind, language, QueryShape::Other);
        assert_eq!(prior(SymbolKind::Impl, Language::Rust), -0.5);
        assert_eq!(prior(SymbolKind::Object, Language::Scala), -0.5);
        // A module chunk is its head (a file's docs and re-exports), not a repeat of members.
        assert_eq!(prior(SymbolKind::Module, Language::Rust), 0.0);
        assert_eq!(prior(SymbolKind::Class, Language::Ruby), 0.0);
    }

    #[test]
    fn a_ruby_module_is_demoted_for_a_command_only() {
        let mut module = chunk("terminal.rb", "Terminal");
        module.kind = SymbolKind::Module;
        module.language = Language::Ruby;
        let mut method = chunk("terminal.rb", "terminal_width");
        method.kind = SymbolKind::Method;
        method.language = Language::Ruby;
        let dense = [module, method];
        let lists = [RankedList {
            stage: Stage::Dense,
            chunks: &dense,
            scores: &[],
            weight: 1.0,
        }];
        // "work out the terminal's width": the method answers a command.
        let fused = fuse(&lists, 5.0, &ScoreFusion::OFF, QueryShape::Action);
        assert_eq!(names(&fused), vec!["terminal_width", "Terminal"]);
        assert!(fused[1].parts.iter().any(|p| p.stage == Stage::Kind));
        // "terminal size detection": a subject the module may answer keeps its place.
        for shape in [
            QueryShape::Topic,
            QueryShape::Description,
            QueryShape::Other,
        ] {
            let fused = fuse(&lists, 5.0, &ScoreFusion::OFF, shape);
            assert_eq!(
                names(&fused),
                vec!["Terminal", "terminal_width"],
                "{shape:?}"
            );
        }
        // Other languages' modules are what a file says about itself, or the unit Elixir code
        // is written in: never demoted.
        for language in [Language::Rust, Language::Python, Language::Elixir] {
            assert_eq!(
                kind_prior(SymbolKind::Module, language, QueryShape::Action),
                0.0
            );
        }
        assert_eq!(
            kind_prior(SymbolKind::Class, Language::Ruby, QueryShape::Action),
            0.0
        );
    }

    fn candidate(path: &str, name: &str, score: f32) -> Candidate {
        let mut c = Candidate {
            chunk: chunk(path, name),
            parts: Vec::new(),
        };
        c.add(Stage::Dense, score, String::new());
        c
    }

    fn of_kind(mut candidate: Candidate, kind: SymbolKind) -> Candidate {
        candidate.chunk.kind = kind;
        candidate
    }

    #[test]
    fn results_after_the_stable_ones_score_below_them_in_their_order() {
        let tail = |scores: &[f32]| -> Vec<Candidate> {
            scores
                .iter()
                .enumerate()
                .map(|(i, &score)| candidate("src/a.rs", &format!("f{i}"), score))
                .collect()
        };
        let scaled = below(tail(&[0.8, 0.6, 0.2]), Some(0.4), 30);
        let scores: Vec<f32> = scaled.iter().map(Candidate::score).collect();
        assert!((scores[0] - 0.4).abs() < 1e-6, "{scores:?}");
        assert!((scores[1] - 0.3).abs() < 1e-6, "{scores:?}");
        assert!((scores[2] - 0.1).abs() < 1e-6, "{scores:?}");
        // The scaling is explained, and the parts still add up to the score.
        assert_eq!(
            scaled[0].parts.last().map(|p| p.stage),
            Some(Stage::Extended)
        );
        // Already below, or nothing before it: unchanged.
        let kept = below(tail(&[0.3, 0.2]), Some(0.4), 30);
        assert!(kept.iter().all(|c| c.parts.len() == 1));
        assert_eq!(below(tail(&[0.3]), None, 30)[0].parts.len(), 1);
    }

    #[test]
    fn priors_lower_tests_unless_asked_for() {
        let mut demoted = Priors::default();
        demoted.set(PathClass::Test, 0.3).unwrap();
        let mut found = vec![
            candidate("tests/walk.rs", "skips_binary", 1.0),
            candidate("src/walk.rs", "read_text", 0.8),
        ];
        apply_priors(
            &mut found,
            &QueryProfile::new("where are binary files skipped"),
            &demoted,
        );
        let ranked = select(found, 2, &decay(1.0, 1));
        assert_eq!(names(&ranked), vec!["read_text", "skips_binary"]);
        let test = &ranked[1];
        adds_up(test);
        assert!((test.score() - 0.3).abs() < 1e-6);
        assert!(
            test.parts
                .iter()
                .any(|p| p.stage == Stage::Prior && p.detail.contains("test"))
        );

        let mut asked = vec![
            candidate("tests/walk.rs", "skips_binary", 1.0),
            candidate("src/walk.rs", "read_text", 0.8),
        ];
        apply_priors(
            &mut asked,
            &QueryProfile::new("the test that binary files are skipped"),
            &demoted,
        );
        assert_eq!(
            names(&select(asked, 2, &decay(1.0, 1))),
            vec!["skips_binary", "read_text"]
        );

        let mut off = vec![
            candidate("tests/walk.rs", "skips_binary", 1.0),
            candidate("src/walk.rs", "read_text", 0.8),
        ];
        demoted.set(PathClass::Test, 1.0).unwrap();
        apply_priors(
            &mut off,
            &QueryProfile::new("binary files skipped"),
            &demoted,
        );
        assert_eq!(
            names(&select(off, 2, &decay(1.0, 1))),
            vec!["skips_binary", "read_text"]
        );
    }

    #[test]
    fn in_a_test_framework_a_test_is_the_subject_not_a_request_for_tests() {
        let mut demoted = Priors::default();
        demoted.set(PathClass::Test, 0.3).unwrap();
        // The names in order after the priors: a test (1.0) and the framework's code (0.8).
        let ranked = |test: (&str, &str), code: (&str, &str), query: &str| {
            let mut found = vec![
                candidate(test.0, test.1, 1.0),
                candidate(code.0, code.1, 0.8),
            ];
            let profile = QueryProfile::new(query);
            assert!(profile.asks_for(PathClass::Test), "{query}");
            apply_priors(&mut found, &profile, &demoted);
            let order: Vec<String> = names(&select(found, 2, &decay(1.0, 1)))
                .into_iter()
                .map(String::from)
                .collect();
            order
        };
        // bats: its own code handles tests (`bats_should_retry_test`), so "a failed test" in a
        // query is what the code is about, and its test suite stays demoted.
        assert_eq!(
            ranked(
                ("test/retry.bats", "retries_a_failed_test"),
                (
                    "lib/bats-core/test_functions.bash",
                    "bats_should_retry_test"
                ),
                "should a failed test be run again",
            ),
            vec!["bats_should_retry_test", "retries_a_failed_test"]
        );
        // A file named so is enough: bats's `skip` lives in `test_functions.bash`.
        assert_eq!(
            ranked(
                ("test/fixtures/skip-in-teardown.bats", "teardown"),
                ("lib/bats-core/test_functions.bash", "skip"),
                "skip the rest of a test or of its teardown",
            ),
            vec!["skip", "teardown"]
        );
        // Where no code outside the tests is named so, the same word asks for the tests
        // (`priors_lower_tests_unless_asked_for`, "the test that binary files are skipped").
    }

    #[test]
    fn the_workspace_file_names_say_when_tests_are_the_subject() {
        let mut demoted = Priors::default();
        demoted.set(PathClass::Test, 0.3).unwrap();
        let query = "pick a locking tool for running tests in parallel";
        let ranked = |file_words: &HashSet<String>| {
            let mut found = vec![
                candidate("test/parallel.bats", "setup", 1.0),
                candidate("lib/bats-core/semaphore.bash", "bats_semaphore_setup", 0.7),
            ];
            let profile = QueryProfile::new(query);
            apply_priors_knowing(&mut found, &profile, &demoted, file_words);
            names(&select(found, 2, &decay(1.0, 1)))
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        // No candidate outside the tests is named with "test": the query asks for tests.
        assert_eq!(
            ranked(&HashSet::new()),
            vec!["setup", "bats_semaphore_setup"]
        );
        // The workspace's own code has a file named so (bats's `test_functions.bash`, not among
        // the candidates): tests are what it handles, and its test suite stays demoted.
        let workspace = code_file_words(&[
            "lib/bats-core/test_functions.bash".to_string(),
            "lib/bats-core/semaphore.bash".to_string(),
            "test/parallel.bats".to_string(),
        ]);
        assert_eq!(ranked(&workspace), vec!["bats_semaphore_setup", "setup"]);
    }

    #[test]
    fn only_the_workspace_own_code_files_lend_their_names() {
        let words = code_file_words(&[
            "lib/bats-core/test_functions.bash".to_string(),
            "docs/writing-tests.md".to_string(),
            "test/fixtures/spec_helper.rb".to_string(),
            "src/HttpClient.java".to_string(),
        ]);
        for word in ["test", "functions", "http", "client"] {
            assert!(words.contains(word), "{word}: {words:?}");
        }
        // Docs and tests are not the workspace's own code.
        for word in ["writing", "tests", "spec", "helper"] {
            assert!(!words.contains(word), "{word}: {words:?}");
        }
    }

    #[test]
    fn constants_and_type_aliases_yield_to_code_unless_the_query_names_them() {
        let found = || {
            vec![
                of_kind(
                    candidate("lib/utils.rb", "DECIMAL_REGEX", 0.8),
                    SymbolKind::Constant,
                ),
                of_kind(
                    candidate("src/types.ts", "Immutable", 0.95),
                    SymbolKind::Type,
                ),
                candidate("lib/utils.rb", "to_number", 0.6),
            ]
        };
        let ranked = |query: &str, priors: &Priors| {
            let mut candidates = found();
            apply_priors(&mut candidates, &QueryProfile::new(query), priors);
            candidates.iter().for_each(adds_up);
            let chosen = select(candidates, 3, &decay(1.0, 3));
            names(&chosen)
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let defaults = Priors::default();
        // 0.95 × 0.7 = 0.665 stays above the function's 0.6; 0.8 × 0.7 = 0.56 falls below.
        assert_eq!(
            ranked("convert a value to an exact decimal number", &defaults),
            vec!["Immutable", "to_number", "DECIMAL_REGEX"]
        );
        // A bare identifier, a sentence naming the constant, or one asking for constants keeps
        // the constant above the function.
        for query in [
            "DECIMAL_REGEX",
            "where is DECIMAL_REGEX used",
            "the decimal regex constant",
        ] {
            let order = ranked(query, &defaults);
            let at = |name: &str| order.iter().position(|n| n == name);
            assert!(at("DECIMAL_REGEX") < at("to_number"), "{query}: {order:?}");
        }
        let mut off = Priors::default();
        off.set(PathClass::Constant, 1.0).unwrap();
        off.set(PathClass::Type, 1.0).unwrap();
        assert_eq!(
            ranked("convert a value to an exact decimal number", &off),
            vec!["Immutable", "DECIMAL_REGEX", "to_number"]
        );
    }

    #[test]
    fn an_implementation_ranks_above_the_interface_member_it_implements() {
        let found = || {
            let mut declared = of_kind(
                candidate("src/DispatchQueue.java", "executeAfter", 1.0),
                SymbolKind::Method,
            );
            // The symbol extractor marks the interface's member (see its tests).
            declared.chunk.declaration = true;
            let implemented = of_kind(
                candidate("src/SerialDispatchQueue.java", "executeAfter", 0.8),
                SymbolKind::Method,
            );
            vec![declared, implemented]
        };
        let ranked = |query: &str, priors: &Priors| {
            let mut candidates = found();
            apply_priors(&mut candidates, &QueryProfile::new(query), priors);
            candidates.iter().for_each(adds_up);
            let chosen = select(candidates, 2, &decay(1.0, 2));
            names(&chosen)
                .iter()
                .zip(&chosen)
                .map(|(name, c)| format!("{name} {}", c.chunk.path))
                .collect::<Vec<_>>()
        };
        let implementation_first = vec![
            "executeAfter src/SerialDispatchQueue.java",
            "executeAfter src/DispatchQueue.java",
        ];
        let declaration_first: Vec<&str> = implementation_first.iter().rev().copied().collect();
        // 1.0 × 0.7 = 0.7 falls below the implementation's 0.8.
        let defaults = Priors::default();
        assert_eq!(
            ranked("run a task on a queue after a delay", &defaults),
            implementation_first
        );
        // A bare identifier, a query naming it, or one asking for the interface keeps it.
        for query in [
            "executeAfter",
            "the interface for running a task after a delay",
        ] {
            assert_eq!(ranked(query, &defaults), declaration_first, "{query}");
        }
        let mut off = Priors::default();
        off.set(PathClass::Abstract, 1.0).unwrap();
        assert_eq!(
            ranked("run a task on a queue after a delay", &off),
            declaration_first
        );
    }

    #[test]
    fn a_description_of_a_thing_prefers_types_to_functions_unless_it_asks_for_one() {
        let found = || {
            vec![
                of_kind(candidate("lib/lru.rb", "evict", 1.0), SymbolKind::Method),
                of_kind(candidate("lib/lru.rb", "LRUCache", 0.7), SymbolKind::Class),
            ]
        };
        let first = |query: &str| {
            let mut candidates = found();
            apply_priors(
                &mut candidates,
                &QueryProfile::new(query),
                &Priors::default(),
            );
            candidates.iter().for_each(adds_up);
            select(candidates, 2, &decay(1.0, 2))[0].chunk.name.clone()
        };
        assert_eq!(
            first("a bounded store that evicts the oldest entry"),
            "LRUCache"
        );
        assert_eq!(first("evict the oldest entry of a bounded store"), "evict");
        assert_eq!(first("a function that evicts the oldest entry"), "evict");
    }

    #[test]
    fn an_older_api_version_beside_a_newer_one_is_compat_code() {
        let found = || {
            vec![
                candidate("src/v3/errors.ts", "ZodError", 1.0),
                candidate("src/v4/core/errors.ts", "$ZodError", 0.8),
            ]
        };
        let mut current = found();
        apply_priors(
            &mut current,
            &QueryProfile::new("error structure and issue formatting"),
            &Priors::default(),
        );
        let ranked = select(current, 2, &decay(1.0, 1));
        assert_eq!(names(&ranked), vec!["$ZodError", "ZodError"]);
        adds_up(&ranked[1]);
        assert!(
            ranked[1]
                .parts
                .iter()
                .any(|p| p.stage == Stage::Prior && p.detail.contains("compat"))
        );

        // Naming the version, or asking for compatibility code, lifts the prior.
        for query in ["v3 error types", "the compatibility error types"] {
            let mut asked = found();
            apply_priors(&mut asked, &QueryProfile::new(query), &Priors::default());
            assert_eq!(
                names(&select(asked, 2, &decay(1.0, 1))),
                vec!["ZodError", "$ZodError"],
                "{query}"
            );
        }

        // Without the newer version among the results, the old one is not demoted.
        let mut alone = vec![
            candidate("src/v3/errors.ts", "ZodError", 1.0),
            candidate("src/errors.ts", "Issue", 0.8),
        ];
        apply_priors(
            &mut alone,
            &QueryProfile::new("error structure"),
            &Priors::default(),
        );
        assert_eq!(
            names(&select(alone, 2, &decay(1.0, 1))),
            vec!["ZodError", "Issue"]
        );
    }

    #[test]
    fn path_words_favour_files_named_by_the_query() {
        let mut found = vec![
            candidate("src/util.rs", "helper", 0.5),
            candidate("src/retry/backoff.rs", "delay", 0.4),
        ];
        boost_path_words(
            &mut found,
            &QueryProfile::new("how is the backoff delay computed"),
            0.6,
        );
        let ranked = select(found, 2, &decay(1.0, 1));
        assert_eq!(names(&ranked), vec!["delay", "helper"]);
        adds_up(&ranked[0]);
        let part = ranked[0]
            .parts
            .iter()
            .find(|p| p.stage == Stage::PathWords)
            .unwrap();
        assert!(part.detail.contains("backoff"), "{}", part.detail);
        assert_eq!(
            path_words("src/http_client/RetryPolicy.java"),
            vec![
                "retrypolicy",
                "retry",
                "policy",
                "http_client",
                "http",
                "client"
            ]
        );
    }

    #[test]
    fn the_same_file_decays_in_selection() {
        let found = vec![
            candidate("a.rs", "a1", 1.0),
            candidate("a.rs", "a2", 0.9),
            candidate("a.rs", "a3", 0.8),
            candidate("b.rs", "b1", 0.6),
        ];
        let ranked = select(found.clone(), 4, &decay(0.5, 1));
        // a2: 0.45 < b1: 0.6; a3: 0.8 × 0.25 = 0.2.
        assert_eq!(names(&ranked), vec!["a1", "b1", "a2", "a3"]);
        for c in &ranked {
            adds_up(c);
        }
        assert!((ranked[3].score() - 0.2).abs() < 1e-6);
        assert_eq!(
            names(&select(found.clone(), 4, &decay(1.0, 1))),
            vec!["a1", "a2", "a3", "b1"]
        );
        assert_eq!(
            names(&select(found.clone(), 2, &decay(0.5, 1))),
            vec!["a1", "b1"]
        );
        // Two results of a file come free; the third decays once.
        assert_eq!(
            names(&select(found, 4, &decay(0.5, 2))),
            vec!["a1", "a2", "b1", "a3"]
        );
    }

    #[test]
    fn each_query_shape_spreads_its_results_as_its_answers_lie() {
        let params = StackParams::default();
        // A bare identifier: its definition, then other files that use it. A command: the third
        // function of the file that matched (0.8 × 0.9 = 0.72) stays above another file's weaker
        // match (0.66), where every other sentence's decay (0.8 × 0.8 = 0.64) lets that one in.
        let found = || {
            vec![
                candidate("filters.rb", "escape", 1.0),
                candidate("filters.rb", "url_encode", 0.95),
                candidate("filters.rb", "escape_once", 0.8),
                candidate("utils.rb", "to_s", 0.66),
            ]
        };
        let cases = [
            (
                "escape",
                (params.identifier_decay, params.identifier_free),
                vec!["escape", "to_s", "url_encode"],
            ),
            (
                "escape html without double-encoding",
                (params.command_decay, params.same_file_free),
                vec!["escape", "url_encode", "escape_once"],
            ),
            (
                "how html escaping works",
                (params.same_file_decay, params.same_file_free),
                vec!["escape", "url_encode", "to_s"],
            ),
            (
                "html escaping of output",
                (params.same_file_decay, params.same_file_free),
                vec!["escape", "url_encode", "to_s"],
            ),
        ];
        for (query, expected, order) in cases {
            let diversity = params.diversity(&QueryProfile::new(query));
            assert_eq!((diversity.decay, diversity.free), expected, "{query}");
            assert_eq!(names(&select(found(), 3, &diversity)), order, "{query}");
        }
        for (bad, name) in [
            (
                StackParams {
                    identifier_decay: 1.5,
                    ..StackParams::default()
                },
                "identifier_decay",
            ),
            (
                StackParams {
                    command_decay: 0.0,
                    ..StackParams::default()
                },
                "command_decay",
            ),
        ] {
            assert!(bad.validate().unwrap_err().contains(name));
        }
    }

    #[test]
    fn how_questions_and_subjects_get_their_own_coherence() {
        let params = StackParams {
            file_coherence: 0.1,
            how_coherence: 0.5,
            topic_coherence: 0.3,
            ..StackParams::default()
        };
        let how = QueryProfile::new("how does the router match a route");
        let topic = QueryProfile::new("route matching and parameter extraction");
        let command = QueryProfile::new("match a route in the router");
        assert!((coherence_weight(&params, &how) - 0.6).abs() < 1e-6);
        assert!((coherence_weight(&params, &topic) - 0.4).abs() < 1e-6);
        assert!((coherence_weight(&params, &command) - 0.1).abs() < 1e-6);
        let off = StackParams {
            how_coherence: 0.0,
            topic_coherence: 0.0,
            ..StackParams::default()
        };
        assert_eq!(coherence_weight(&off, &how), 0.0);
        assert_eq!(coherence_weight(&off, &topic), 0.0);
    }

    #[test]
    fn coherence_lifts_the_best_of_a_busy_file() {
        let mut found = vec![
            candidate("lone.rs", "lone", 0.5),
            candidate("busy.rs", "b1", 0.45),
            candidate("busy.rs", "b2", 0.4),
            candidate("busy.rs", "b3", 0.4),
        ];
        boost_file_coherence(&mut found, 0.2);
        let ranked = select(found, 4, &decay(1.0, 1));
        assert_eq!(ranked[0].chunk.name, "b1");
        adds_up(&ranked[0]);
    }

    #[test]
    fn a_member_whose_container_holds_its_code_rises_above_it() {
        let class = |score: f32| {
            let mut c = of_kind(
                candidate("lib/transport.dart", "TTransport", score),
                SymbolKind::Class,
            );
            c.chunk.start_line = 20;
            c.chunk.end_line = 70;
            c.chunk.text = "class TTransport · lib/transport.dart\nabstract class TTransport {\n  \
                Future<int> readAll(Uint8List buffer,\n      int offset) async {\n"
                .into();
            c
        };
        let member = |name: &str, signature: &str, score: f32| {
            let mut m = of_kind(
                candidate("lib/transport.dart", name, score),
                SymbolKind::Method,
            );
            m.chunk.container = Some("TTransport".into());
            m.chunk.start_line = 41;
            m.chunk.end_line = 55;
            m.chunk.signature = signature.into();
            m
        };
        let ranked = |found: Vec<Candidate>, share: f32| {
            let mut found = found;
            lift_members_over_containers(&mut found, share);
            found.iter().for_each(adds_up);
            let chosen = select(found, 3, &decay(1.0, 3));
            names(&chosen)
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let readall = "Future<int> readAll(Uint8List buffer, int offset) async";
        // 0.9 of the class's score: the member the class's chunk holds rises above it.
        assert_eq!(
            ranked(vec![class(1.0), member("readAll", readall, 0.9)], 0.8),
            vec!["readAll", "TTransport"]
        );
        // Too far below, or off: the order stays.
        assert_eq!(
            ranked(vec![class(1.0), member("readAll", readall, 0.7)], 0.8),
            vec!["TTransport", "readAll"]
        );
        assert_eq!(
            ranked(vec![class(1.0), member("readAll", readall, 0.9)], 0.0),
            vec!["TTransport", "readAll"]
        );
        // A member past the container's first window did not make its score.
        assert_eq!(
            ranked(
                vec![class(1.0), member("close", "Future close()", 0.9)],
                0.8
            ),
            vec!["TTransport", "close"]
        );
        // Only the class's own members: a method of the same name elsewhere stays below.
        let mut other = member("readAll", readall, 0.9);
        other.chunk.container = Some("TSocket".into());
        assert_eq!(
            ranked(vec![class(1.0), other], 0.8),
            vec!["TTransport", "readAll"]
        );
    }

    #[test]
    fn a_bare_identifier_prefers_its_exact_name_to_a_longer_one() {
        let ranked = |query: &str, found: &[(&str, f32)], share: f32| {
            let mut found: Vec<Candidate> = found
                .iter()
                .map(|(name, score)| {
                    of_kind(
                        candidate("lib/t_compact_protocol.dart", name, *score),
                        SymbolKind::Class,
                    )
                })
                .collect();
            lift_exact_names(&mut found, &QueryProfile::new(query), share);
            found.iter().for_each(adds_up);
            let chosen = select(found, 2, &decay(1.0, 2));
            names(&chosen)
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let factory = [("TCompactProtocolFactory", 1.0), ("TCompactProtocol", 0.6)];
        assert_eq!(
            ranked("TCompactProtocol", &factory, 0.5),
            vec!["TCompactProtocol", "TCompactProtocolFactory"]
        );
        // Too far below, off, or a sentence: the order stays.
        let far = [("TCompactProtocolFactory", 1.0), ("TCompactProtocol", 0.4)];
        assert_eq!(
            ranked("TCompactProtocol", &far, 0.5),
            vec!["TCompactProtocolFactory", "TCompactProtocol"]
        );
        assert_eq!(
            ranked("TCompactProtocol", &factory, 0.0),
            vec!["TCompactProtocolFactory", "TCompactProtocol"]
        );
        assert_eq!(
            ranked("how does TCompactProtocol write a field", &factory, 0.5),
            vec!["TCompactProtocolFactory", "TCompactProtocol"]
        );
        // A name that only contains it elsewhere than at its start is another thing
        // (zod 4's core `$ZodType` for `ZodType`).
        let zod = [("$ZodType", 1.0), ("ZodType", 0.9)];
        assert_eq!(ranked("ZodType", &zod, 0.5), vec!["$ZodType", "ZodType"]);
        // A name defined in two files does not say which one is meant.
        let mut found = vec![
            candidate("include/fmt/format.h", "formatter_base", 1.0),
            candidate("include/fmt/chrono.h", "formatter", 0.9),
            candidate("include/fmt/ranges.h", "formatter", 0.8),
        ];
        lift_exact_names(&mut found, &QueryProfile::new("formatter"), 0.5);
        assert!(
            found.iter().all(|c| c.parts.len() == 1),
            "{:?}",
            names(&found)
        );
    }

    #[test]
    fn params_are_checked() {
        assert!(StackParams::default().validate().is_ok());
        let defaults = StackParams::default;
        for (bad, name) in [
            (
                StackParams {
                    same_file_decay: 0.0,
                    ..defaults()
                },
                "same_file_decay",
            ),
            (
                StackParams {
                    definition: -1.0,
                    ..defaults()
                },
                "definition",
            ),
            (
                StackParams {
                    member_lift: 1.5,
                    ..defaults()
                },
                "member_lift",
            ),
            (
                StackParams {
                    exact_name_lift: -0.5,
                    ..defaults()
                },
                "exact_name_lift",
            ),
        ] {
            assert!(bad.validate().unwrap_err().contains(name), "{name}");
        }
        let parsed: StackParams =
            serde_json::from_str(r#"{"definition": 1.5, "priors": {"test": 1}}"#).unwrap();
        assert_eq!(parsed.definition, 1.5);
        assert_eq!(parsed.priors.factor(PathClass::Test), 1.0);
        assert!(serde_json::from_str::<StackParams>(r#"{"definitoin": 1}"#).is_err());
    }

    /// `name`'s chunk of kind `kind` at `lines`, with `signature`.
    fn declared(
        name: &str,
        kind: SymbolKind,
        lines: (u32, u32),
        signature: &str,
        score: f32,
    ) -> Candidate {
        let mut c = of_kind(candidate("lib.rs", name, score), kind);
        (c.chunk.start_line, c.chunk.end_line) = lines;
        c.chunk.signature = signature.into();
        c
    }

    /// The file `lib.rs` of the impl tests: `struct Literal` (lines 1-2) and its impl block.
    fn literal_file() -> Vec<StoredChunk> {
        vec![
            declared("Literal", SymbolKind::Struct, (1, 2), "struct Literal", 0.0).chunk,
            declared("Literal", SymbolKind::Impl, (4, 20), "impl Literal", 0.0).chunk,
        ]
    }

    fn merged(candidates: Vec<Candidate>) -> Vec<Candidate> {
        let file = literal_file();
        impls_into_types(candidates, |chunk| {
            Ok::<_, ()>(type_of_impl(chunk, &file).cloned())
        })
        .unwrap()
    }

    #[test]
    fn an_inherent_impl_is_one_result_with_its_type() {
        let found = vec![
            declared("Literal", SymbolKind::Impl, (4, 20), "impl Literal", 0.9),
            candidate("lib.rs", "parse", 0.5),
            declared("Literal", SymbolKind::Struct, (1, 2), "struct Literal", 0.3),
        ];
        let ranked = merged(found);
        assert_eq!(names(&ranked), vec!["Literal", "parse"]);
        let literal = &ranked[0];
        assert_eq!(literal.chunk.kind, SymbolKind::Struct);
        assert_eq!((literal.chunk.start_line, literal.chunk.end_line), (1, 2));
        assert!(
            (literal.score() - 0.9).abs() < 1e-6,
            "the impl's score, the higher"
        );
        assert!(
            literal
                .parts
                .iter()
                .any(|p| p.detail.contains("impl block, lines 4-20"))
        );
        adds_up(literal);

        // The type scoring higher than its impl keeps its own score.
        let ranked = merged(vec![
            declared("Literal", SymbolKind::Struct, (1, 2), "struct Literal", 0.8),
            declared("Literal", SymbolKind::Impl, (4, 20), "impl Literal", 0.2),
        ]);
        assert_eq!(ranked.len(), 1);
        assert!((ranked[0].score() - 0.8).abs() < 1e-6);
        assert_eq!(ranked[0].chunk.kind, SymbolKind::Struct);
    }

    #[test]
    fn trait_impls_and_impls_of_types_declared_elsewhere_stay_results_of_their_own() {
        let found = vec![
            declared(
                "Literal",
                SymbolKind::Impl,
                (22, 26),
                "impl std::fmt::Display for Literal",
                0.9,
            ),
            declared("Glob", SymbolKind::Impl, (30, 40), "impl Glob", 0.7),
        ];
        let ranked = merged(found);
        assert_eq!(names(&ranked), vec!["Literal", "Glob"]);
        assert!(ranked.iter().all(|c| c.chunk.kind == SymbolKind::Impl));

        // A Swift extension declaring a conformance is a trait impl; a bare one is inherent.
        let swift = |signature: &str| {
            let mut c = declared("Literal", SymbolKind::Impl, (4, 20), signature, 0.9);
            c.chunk.language = Language::Swift;
            c
        };
        assert!(!is_inherent_impl(
            &swift("extension Literal: Codable").chunk
        ));
        assert!(is_inherent_impl(&swift("extension Literal").chunk));
        let mut python = declared("Literal", SymbolKind::Impl, (4, 20), "impl Literal", 0.9);
        python.chunk.language = Language::Python;
        assert!(!is_inherent_impl(&python.chunk));
    }
}
