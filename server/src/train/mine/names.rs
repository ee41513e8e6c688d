//! Finding the names a piece of code calls or a piece of prose mentions.
//!
//! Deliberately lexical: the repository's name table (see `repo`) decides which of these are
//! real definitions, so a keyword or a library call found here is simply not resolved.

/// Standard-library roots of Rust paths: `std::fs::remove_file(…)` is not the repository's
/// `remove_file`, whatever the name table says.
const STD_ROOTS: &[&str] = &["std", "core", "alloc"];

/// Identifiers followed by `(` (calls, in any of our languages), each once, in order of first
/// appearance. Calls through a standard-library path are left out.
pub(crate) fn called_names(code: &str) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for (start, end) in identifiers(code) {
        if STD_ROOTS.contains(&path_root(code, start)) {
            continue;
        }
        let rest = code[end..].trim_start_matches([' ', '\t']);
        // `name(…)`, and Rust's turbofish `name::<T>(…)`.
        if (rest.starts_with('(') || rest.starts_with("::<")) && !names.contains(&&code[start..end])
        {
            names.push(&code[start..end]);
        }
    }
    names
}

/// The first segment of the `a::b::name` path that ends with the identifier at `start`
/// (the identifier itself when it is not qualified).
fn path_root(code: &str, start: usize) -> &str {
    let mut root_start = start;
    let mut before = &code[..start];
    while let Some(rest) = before.strip_suffix("::") {
        let segment = rest.len()
            - rest
                .bytes()
                .rev()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
        if segment == rest.len() {
            break;
        }
        root_start = segment;
        before = &rest[..segment];
    }
    let end = code[root_start..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(code.len(), |i| root_start + i);
    &code[root_start..end]
}

/// Names a Markdown text mentions: every identifier inside inline code and code blocks, and
/// bare words that can only be identifiers (`snake_case`, `camelCase`), each once, in order.
pub(crate) fn mentioned_names(markdown: &str) -> Vec<&str> {
    let mut found: Vec<&str> = Vec::new();
    let mut in_fence = false;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            found.extend(identifiers(line).map(|(s, e)| &line[s..e]));
            continue;
        }
        // Inline code spans are the odd-numbered pieces between backticks.
        for (i, piece) in line.split('`').enumerate() {
            if i % 2 == 1 {
                found.extend(identifiers(piece).map(|(s, e)| &piece[s..e]));
            } else {
                found.extend(
                    identifiers(piece)
                        .map(|(s, e)| &piece[s..e])
                        .filter(|word| looks_like_identifier(word)),
                );
            }
        }
    }
    let mut names: Vec<&str> = Vec::new();
    for name in found {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// A prose word that is surely an identifier: it has an inner underscore or a lower→upper
/// case change.
fn looks_like_identifier(word: &str) -> bool {
    let inner_underscore = word.trim_matches('_').contains('_');
    let camel = word
        .as_bytes()
        .windows(2)
        .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase());
    inner_underscore || camel
}

/// Byte ranges of the identifiers (`[A-Za-z_][A-Za-z0-9_]*`) of `text`.
fn identifiers(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii_alphabetic() || b == b'_' {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                // `r2d2` is one identifier, but so is `x` in `0x1f`: skip words glued to digits.
                let glued = start > 0 && bytes[start - 1].is_ascii_digit();
                if !glued {
                    return Some((start, i));
                }
            } else {
                i += 1;
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_in_order_once_each() {
        let code = "fn t() {\n    let d = parse_duration(\"1s\");\n    assert!(d.is_ok ());\n    \
                    Duration::from_secs(1);\n    parse_duration(x);\n    let v = collect::<Vec<_>>(it);\n}";
        assert_eq!(
            called_names(code),
            vec!["t", "parse_duration", "is_ok", "from_secs", "collect"]
        );
        let std_calls =
            "std::fs::remove_file(p); ::core::mem::take(x); crate::train::store::remove_file(p);";
        assert_eq!(called_names(std_calls), vec!["remove_file"]);
        assert_eq!(path_root(std_calls, 9), "std");
        assert_eq!(path_root(std_calls, 0), "std");
    }

    #[test]
    fn markdown_mentions_code_spans_blocks_and_identifier_words() {
        let md = "# Usage\nCall `parse_duration(\"1s\")` or parseDuration, not parse or Duration.\n\
                  ```rust\nlet x = format_span(d);\n```\nThe snake_case_word counts.";
        assert_eq!(
            mentioned_names(md),
            vec![
                "parse_duration",
                "parseDuration",
                "let",
                "x",
                "format_span",
                "d",
                "snake_case_word"
            ]
        );
    }
}
