//! Words of code and of queries: identifiers kept whole and split into words, and the words a
//! question carries. Shared by the chunker, the lexical index (FTS5), ranking and the trainer.
//!
//! `parseHttpRequest_v2` is indexed as `parsehttprequest_v2 parse http request v 2`, so both an
//! identifier search and a plain-words search find it. Queries go through the same function and
//! then lose the words that carry no meaning in a question about code ([`query_terms`]).

/// Rewrites `text` into lower-case tokens: each identifier whole, then its parts.
pub fn code_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        if word.is_empty() {
            continue;
        }
        push_token(&mut out, word);
        let parts = split_identifier(word);
        if parts.len() > 1 {
            for part in parts {
                push_token(&mut out, part);
            }
        }
    }
    out
}

/// The words of a query worth matching: [`code_tokens`] less stop words, each once. A query made
/// only of stop words keeps them, so "the" still finds something rather than nothing.
pub fn query_terms(query: &str) -> Vec<String> {
    let tokens = code_tokens(query);
    let mut all: Vec<&str> = Vec::new();
    for token in tokens.split_whitespace() {
        if !all.contains(&token) {
            all.push(token);
        }
    }
    let kept: Vec<&str> = all.iter().copied().filter(|t| !is_stop_word(t)).collect();
    let chosen = if kept.is_empty() { all } else { kept };
    chosen.into_iter().map(str::to_string).collect()
}

/// English function words and question words: they appear in queries ("where is the code that
/// ...") but say nothing about which code. Words that are also common identifiers in code
/// (`get`, `set`, `new`, `self`, `type`, `from`, `in`) are deliberately not here.
fn is_stop_word(token: &str) -> bool {
    STOP_WORDS.binary_search(&token).is_ok()
}

/// Sorted, for [`is_stop_word`].
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "all",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "been",
    "being",
    "by",
    "can",
    "code",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "done",
    "for",
    "function",
    "gets",
    "happens",
    "has",
    "have",
    "how",
    "i",
    "if",
    "implemented",
    "into",
    "is",
    "it",
    "its",
    "method",
    "of",
    "on",
    "one",
    "or",
    "our",
    "should",
    "so",
    "some",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "to",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "who",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
];

fn push_token(out: &mut String, token: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.extend(token.chars().flat_map(char::to_lowercase));
}

/// Splits an identifier at underscores, lower→upper case changes, the end of an acronym
/// (`HTTPServer` → `HTTP`, `Server`) and letter↔digit changes.
pub fn split_identifier(word: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    for piece in word.split('_').filter(|p| !p.is_empty()) {
        let chars: Vec<(usize, char)> = piece.char_indices().collect();
        let mut start = 0;
        for i in 1..chars.len() {
            let (idx, c) = chars[i];
            let prev = chars[i - 1].1;
            let next = chars.get(i + 1).map(|&(_, n)| n);
            let boundary = (prev.is_lowercase() && c.is_uppercase())
                || (prev.is_alphabetic() && c.is_ascii_digit())
                || (prev.is_ascii_digit() && c.is_alphabetic())
                || (prev.is_uppercase()
                    && c.is_uppercase()
                    && next.is_some_and(char::is_lowercase));
            if boundary {
                parts.push(&piece[start..idx]);
                start = idx;
            }
        }
        parts.push(&piece[start..]);
    }
    parts
}

/// `max_steps_per_stage` → `maxStepsPerStage`: a snake_case name in the camelCase of protocols
/// that name their fields so (LSP).
pub fn camel_case(snake: &str) -> String {
    let mut camel = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                camel.extend(c.to_uppercase());
                upper = false;
            }
            c => camel.push(c),
        }
    }
    camel
}

/// `maxStepsPerStage` → `max_steps_per_stage`: a camelCase name in snake_case (MCP's tools).
pub fn snake_case(camel: &str) -> String {
    split_identifier(camel)
        .iter()
        .map(|part| part.to_lowercase())
        .collect::<Vec<_>>()
        .join("_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_change_case_both_ways() {
        for (snake, camel) in [
            ("max_steps_per_stage", "maxStepsPerStage"),
            ("heldout", "heldout"),
            ("model_state", "modelState"),
        ] {
            assert_eq!(camel_case(snake), camel);
            assert_eq!(snake_case(camel), snake);
        }
    }

    #[test]
    fn splits_camel_snake_acronyms_and_digits() {
        assert_eq!(
            split_identifier("parseHttpRequest"),
            vec!["parse", "Http", "Request"]
        );
        assert_eq!(split_identifier("HTTPServer"), vec!["HTTP", "Server"]);
        assert_eq!(
            split_identifier("snake_case_name"),
            vec!["snake", "case", "name"]
        );
        assert_eq!(split_identifier("utf8Decode"), vec!["utf", "8", "Decode"]);
        assert_eq!(split_identifier("__init__"), vec!["init"]);
        assert_eq!(split_identifier("x"), vec!["x"]);
    }

    #[test]
    fn code_tokens_keeps_whole_and_parts() {
        assert_eq!(
            code_tokens("fn parseHttpRequest_v2(x)"),
            "fn parsehttprequest_v2 parse http request v 2 x"
        );
        assert_eq!(code_tokens("Größe ändern"), "größe ändern");
        assert_eq!(code_tokens("  --  "), "");
        // PHP: `$` and `->` are not part of names, namespaces split at `\`.
        assert_eq!(
            code_tokens("$userName->save(App\\Models\\User::class)"),
            "username user name save app models user class"
        );
    }

    #[test]
    fn stop_words_are_sorted_for_binary_search() {
        // `is_stop_word` relies on the order; a word added out of place would silently miss.
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
        for word in ["a", "where", "your", "the", "how"] {
            assert!(is_stop_word(word), "{word}");
        }
        for word in ["get", "set", "new", "self", "type", "from", "retry"] {
            assert!(!is_stop_word(word), "{word}");
        }
    }

    #[test]
    fn query_terms_drop_stop_words_and_repeats() {
        assert_eq!(
            query_terms("Where is the HTTP request parsed?"),
            vec!["http", "request", "parsed"]
        );
        assert_eq!(
            query_terms("parse_request parse"),
            vec!["parse_request", "parse", "request"]
        );
        // Only stop words: keep them rather than match nothing.
        assert_eq!(query_terms("what is it"), vec!["what", "is", "it"]);
        assert!(query_terms(" ?! ").is_empty());
    }
}
