//! Any bytes, as any language: symbol extraction and chunking must not panic, and every chunk
//! must stay inside the file and under the token limit.
#![no_main]

use coder_lsp::chunk::{TokenCounter, chunks_for_file};
use coder_lsp::symbols::{Language, SymbolExtractor};
use libfuzzer_sys::fuzz_target;

/// Whitespace-separated words as tokens: cheap, and enough to exercise the window logic.
struct Words;

impl TokenCounter for Words {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn truncate<'a>(&self, text: &'a str, max: usize) -> &'a str {
        let mut seen = 0;
        let mut in_word = false;
        for (i, c) in text.char_indices() {
            if c.is_whitespace() {
                in_word = false;
            } else if !in_word {
                in_word = true;
                seen += 1;
                if seen > max {
                    return &text[..i];
                }
            }
        }
        text
    }

    fn fingerprint(&self) -> &str {
        "fuzz-words"
    }

    fn special_tokens(&self) -> usize {
        0
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let language = Language::ALL[usize::from(selector) % Language::ALL.len()];
    let source = String::from_utf8_lossy(rest);
    let lines = u32::try_from(source.lines().count().max(1)).unwrap_or(u32::MAX);
    let mut extractor = SymbolExtractor::new();
    let Ok(symbols) = extractor.extract_file(language, "src/fuzz/mod.src", &source) else {
        return;
    };
    for symbol in &symbols {
        assert!(symbol.start_line >= 1 && symbol.start_line <= symbol.end_line);
        assert!(symbol.end_line <= lines.saturating_add(1), "{symbol:?} past the end ({lines} lines)");
    }
    let max_tokens = 16 + usize::from(selector % 64);
    for chunk in chunks_for_file("fuzz.src", language, &symbols, &Words, max_tokens) {
        assert!(chunk.start_line <= chunk.end_line);
        assert!(Words.count(&chunk.text) <= max_tokens + 64, "oversized chunk");
    }
});
