//! RAG context: the best code for a question, packed into a token budget.
//!
//! Search hits are merged where they overlap in the same file, ranked by score, and packed
//! greedily into the budget counted with the model's tokenizer. Each chunk carries a header
//! naming its file and lines, and its text is the source as it is now (not the embedded text).

use serde::Serialize;

use crate::chunk::TokenCounter;
use crate::search::SearchHit;

/// The token budget when the caller does not give one.
pub const DEFAULT_TOKEN_BUDGET: usize = 2048;
/// The largest token budget a front end accepts.
pub const MAX_TOKEN_BUDGET: usize = 200_000;

/// One piece of packed context. Lines are 1-based and inclusive.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ContextChunk {
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    /// Header line plus the source lines.
    pub text: String,
    pub score: f32,
    pub tokens: usize,
}

/// Context that fits a budget.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PackedContext {
    pub chunks: Vec<ContextChunk>,
    pub tokens_used: usize,
}

/// The smallest remainder worth filling with a truncated chunk.
const MIN_PARTIAL_TOKENS: usize = 48;

/// Merges overlapping hits, reads their lines with `read_file` (relative path → file text)
/// and packs the best into `budget` tokens.
pub fn pack_context(
    hits: &[SearchHit],
    read_file: &mut dyn FnMut(&str) -> Option<String>,
    tokens: &impl TokenCounter,
    budget: usize,
) -> PackedContext {
    let mut packed = PackedContext::default();
    for (path, start, end, score) in merge_overlaps(hits) {
        let remaining = budget - packed.tokens_used;
        if remaining == 0 {
            break;
        }
        let Some(file) = read_file(&path) else {
            continue;
        };
        let lines: Vec<&str> = file
            .lines()
            .skip(start.saturating_sub(1) as usize)
            .take((end + 1).saturating_sub(start) as usize)
            .collect();
        if lines.is_empty() {
            continue;
        }
        // Keep as many whole lines as fit (the signature and doc come first, and matter most);
        // the header always names exactly the lines shown.
        let mut shown = lines.len();
        let (text, count) = loop {
            let last = start + shown as u32 - 1;
            let text = format!(
                "--- {path}:{start}-{last} ---\n{}\n",
                lines[..shown].join("\n")
            );
            let count = tokens.count(&text);
            if count <= remaining {
                break (text, count);
            }
            if remaining < MIN_PARTIAL_TOKENS || shown == 1 {
                break (String::new(), 0);
            }
            // Shrink in proportion to the overshoot, at least one line at a time.
            let keep = shown * remaining / count;
            shown = keep.clamp(1, shown - 1);
        };
        if count == 0 {
            continue;
        }
        let end = start + shown as u32 - 1;
        packed.tokens_used += count;
        packed.chunks.push(ContextChunk {
            path,
            start_line: start,
            end_line: end,
            text,
            score,
            tokens: count,
        });
    }
    packed
}

/// Hits merged per file where their line ranges overlap or touch, best score first.
fn merge_overlaps(hits: &[SearchHit]) -> Vec<(String, u32, u32, f32)> {
    let mut by_file: std::collections::BTreeMap<&str, Vec<(u32, u32, f32)>> = Default::default();
    for hit in hits {
        by_file.entry(hit.path.as_str()).or_default().push((
            hit.start_line,
            hit.end_line,
            hit.score,
        ));
    }
    let mut merged = Vec::new();
    for (path, mut ranges) in by_file {
        ranges.sort_by_key(|r| r.0);
        let mut current: Option<(u32, u32, f32)> = None;
        for (start, end, score) in ranges {
            current = match current {
                Some((s, e, best)) if start <= e + 1 => Some((s, e.max(end), best.max(score))),
                Some(done) => {
                    merged.push((path.to_string(), done.0, done.1, done.2));
                    Some((start, end, score))
                }
                None => Some((start, end, score)),
            };
        }
        if let Some((s, e, best)) = current {
            merged.push((path.to_string(), s, e, best));
        }
    }
    merged.sort_by(|a, b| b.3.total_cmp(&a.3));
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::tests::Words;

    fn hit(path: &str, start: u32, end: u32, score: f32) -> SearchHit {
        SearchHit {
            path: path.into(),
            name: format!("f{start}"),
            kind: crate::symbols::SymbolKind::Function,
            start_line: start,
            end_line: end,
            line: start,
            score,
            container: None,
            signature: String::new(),
            language: crate::symbols::Language::Rust,
            explain: None,
        }
    }

    fn file(n: u32) -> String {
        (1..=n)
            .map(|i| format!("line{i} a b c"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn overlapping_hits_merge_and_the_budget_holds() {
        let hits = vec![
            hit("a.rs", 1, 5, 0.9),
            hit("a.rs", 4, 8, 0.5),
            hit("b.rs", 10, 12, 0.7),
            hit("c.rs", 1, 40, 0.2),
        ];
        let mut read = |_: &str| Some(file(50));
        let packed = pack_context(&hits, &mut read, &Words, 60);
        assert!(packed.tokens_used <= 60, "{}", packed.tokens_used);
        let spans: Vec<(&str, u32, u32)> = packed
            .chunks
            .iter()
            .map(|c| (c.path.as_str(), c.start_line, c.end_line))
            .collect();
        // a.rs 1-8 (merged, 8 lines × 4 words + header 2), b.rs 10-12; c.rs does not fit.
        assert_eq!(spans, vec![("a.rs", 1, 8), ("b.rs", 10, 12)]);
        assert!(
            packed.chunks[0]
                .text
                .starts_with("--- a.rs:1-8 ---\nline1 a b c\n")
        );
        assert_eq!(
            packed.tokens_used,
            packed.chunks.iter().map(|c| c.tokens).sum::<usize>()
        );
    }

    #[test]
    fn a_large_chunk_is_cut_to_fill_the_remaining_budget() {
        let hits = vec![hit("a.rs", 1, 100, 0.9)];
        let mut read = |_: &str| Some(file(100));
        let packed = pack_context(&hits, &mut read, &Words, 100);
        assert_eq!(packed.chunks.len(), 1);
        assert!(packed.tokens_used <= 100);
        assert!(packed.chunks[0].end_line < 100);
        assert!(packed.chunks[0].end_line >= 20);
    }

    #[test]
    fn unreadable_files_are_skipped_and_tiny_budgets_give_nothing() {
        let hits = vec![hit("gone.rs", 1, 3, 0.9), hit("a.rs", 1, 3, 0.5)];
        let mut read = |p: &str| (p == "a.rs").then(|| file(3));
        let packed = pack_context(&hits, &mut read, &Words, 500);
        assert_eq!(packed.chunks.len(), 1);
        assert_eq!(packed.chunks[0].path, "a.rs");
        let packed = pack_context(&hits, &mut read, &Words, 0);
        assert!(packed.chunks.is_empty());
    }
}
