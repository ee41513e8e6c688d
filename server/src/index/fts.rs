//! Code-aware text for the FTS5 table: identifiers are kept whole and also split into words.
//!
//! `parseHttpRequest_v2` is indexed as `parsehttprequest_v2 parse http request v2`, so both an
//! identifier search and a plain-words search find it. Queries are normalised the same way.

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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
