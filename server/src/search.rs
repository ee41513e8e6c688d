//! Search: a natural-language query in, ranked symbols out, as plain data.
//!
//! Dense retrieval over the vector index; several windows of one long symbol collapse into the
//! best of them. Lexical ranking and fusion build on the same result type.

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Serialize;

use crate::embed::{EmbedHandle, InputKind, QueryTask};
use crate::index::store::StoredChunk;
use crate::index::{Index, IndexError};
use crate::symbols::{Language, SymbolKind};

/// Results returned when the caller does not say.
pub const DEFAULT_TOP_K: usize = 10;

/// One search result. Lines are 1-based and inclusive.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SearchHit {
    /// Relative to the workspace root, with forward slashes.
    pub path: String,
    pub name: String,
    pub kind: String,
    pub start_line: u32,
    pub end_line: u32,
    /// Cosine similarity between query and chunk, in [-1, 1].
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

/// The `top_k` best symbols for `query`.
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
    )
}

/// Like [`search`], with a filter; without a model (`embedder` is `None`) the ranking is
/// lexical (BM25 over the FTS5 table), so results keep coming while a model is missing.
pub fn search_filtered(
    index: &Index,
    embedder: Option<&EmbedHandle>,
    query: &str,
    top_k: usize,
    filter: &SearchFilter,
) -> Result<Vec<SearchHit>, IndexError> {
    search_task(index, embedder, query, QueryTask::CodeSearch, top_k, filter)
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
    let mut candidates = match embedder {
        Some(embedder) => index.query(embedder, query, task, fetch)?,
        None => index.lexical(query, fetch)?,
    };
    candidates.retain(|(chunk, _)| filter.accepts(chunk));
    Ok(collapse_windows(candidates, top_k))
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
