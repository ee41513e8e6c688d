//! Search: a natural-language query in, ranked symbols out, as plain data.
//!
//! Dense retrieval over the vector index; several windows of one long symbol collapse into the
//! best of them. Lexical ranking and fusion build on the same result type.

use serde::Serialize;

use crate::embed::EmbedHandle;
use crate::index::store::StoredChunk;
use crate::index::{Index, IndexError};

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

/// The `top_k` best symbols for `query`.
pub fn search(
    index: &Index,
    embedder: &EmbedHandle,
    query: &str,
    top_k: usize,
) -> Result<Vec<SearchHit>, IndexError> {
    let query = query.trim();
    if query.is_empty() || top_k == 0 {
        return Ok(Vec::new());
    }
    // Fetch extra candidates: windows of one symbol are merged below.
    let candidates = index.query(embedder, query, top_k * 3 + 10)?;
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
    use crate::symbols::SymbolKind;

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
