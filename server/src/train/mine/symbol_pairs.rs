//! Pairs one symbol makes on its own: its doc finds it (Text2Code), it finds its doc
//! (Code2Text), and its name in words with its signature finds its body (Hybrid).

use crate::words::split_identifier;

use super::Candidate;
use super::repo::{Repo, is_callable, is_definition};
use crate::train::pairs::{Pair, PairSource, TaskFamily};

/// Doc → symbol, symbol → doc and signature → body pairs for every documented or callable
/// definition.
pub(crate) fn mine(repo: &Repo, out: &mut Vec<Candidate>) {
    for (target, file, mined) in repo.symbols() {
        if !is_definition(mined) {
            continue;
        }
        let symbol = &mined.symbol;
        let pair = |family, source, query: &str, positive: &str| Candidate {
            target,
            pair: Pair {
                family,
                source,
                query: query.to_string(),
                positive: positive.to_string(),
                file: file.rel_path.clone(),
                symbol: symbol.name.clone(),
                negatives: Vec::new(),
            },
        };
        if let (Some(doc), Some(bare)) = (symbol.doc.as_deref(), &mined.chunk_without_doc) {
            let doc = doc.trim();
            out.push(pair(
                TaskFamily::Text2Code,
                PairSource::DocComment,
                &doc_summary(doc),
                bare,
            ));
            out.push(pair(
                TaskFamily::Code2Text,
                PairSource::SymbolDoc,
                bare,
                doc,
            ));
        }
        if is_callable(symbol.kind) && symbol.text.lines().count() >= 3 {
            let query = signature_query(&symbol.name, &symbol.signature);
            out.push(pair(
                TaskFamily::Hybrid,
                PairSource::Signature,
                &query,
                &mined.chunk,
            ));
        }
    }
}

/// `parse duration: fn parse_duration(text: &str) -> Result<Duration>`: the name spelled out
/// in words, as a user would type it, then the declaration.
fn signature_query(name: &str, signature: &str) -> String {
    let words = split_identifier(name).join(" ").to_lowercase();
    let signature = signature.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("{words}: {signature}")
}

/// A doc comment as a search query reads: the first sentence of its first paragraph, on one
/// line, without the closing full stop, and with markup reduced to its text (`` `x` ``, reST
/// roles such as :class:`Request <Request>`, Markdown links). What follows the summary
/// (parameters, examples, caveats) is not what people type when they search: on the quality
/// benchmark, training on summaries moved hand-written queries more than training on whole docs.
pub(crate) fn doc_summary(doc: &str) -> String {
    let paragraph: Vec<&str> = doc
        .lines()
        .map(str::trim)
        .skip_while(|line| line.is_empty())
        .take_while(|line| !line.is_empty())
        .collect();
    let text = plain_text(&paragraph.join(" "));
    let mut summary = Vec::new();
    for word in text.split_whitespace() {
        summary.push(word);
        if ends_sentence(word) {
            break;
        }
    }
    summary.join(" ").trim_end_matches('.').to_string()
}

/// Whether `word` closes a sentence: it ends with `.`, `!` or `?` and is no abbreviation.
fn ends_sentence(word: &str) -> bool {
    const ABBREVIATIONS: &[&str] = &["e.g.", "i.e.", "etc.", "vs.", "cf.", "approx.", "incl."];
    let bare = word
        .trim_start_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    word.ends_with(['.', '!', '?']) && !ABBREVIATIONS.contains(&bare.as_str())
}

/// `text` without backticks, reST roles reduced to their content and Markdown links to their
/// label.
fn plain_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let markup = match c {
            ':' => rest_role(rest),
            '[' => markdown_link(rest),
            _ => None,
        };
        if let Some((content, after)) = markup {
            out.push_str(content);
            rest = after;
            continue;
        }
        if c != '`' {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `:role:`content <target>`` (or `:py:class:`~content``) at the start of `s`: the content,
/// and what follows.
fn rest_role(s: &str) -> Option<(&str, &str)> {
    let tick = s.find('`')?;
    let role = &s[..tick];
    let name = role.strip_prefix(':')?.strip_suffix(':')?;
    let valid = name.split(':').all(|part| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    if !valid {
        return None;
    }
    let body = &s[tick + 1..];
    let close = body.find('`')?;
    let content = body[..close].trim_start_matches('~');
    let content = content.split(" <").next().unwrap_or(content).trim();
    Some((content, &body[close + 1..]))
}

/// `[label](target)` at the start of `s`: the label, and what follows.
fn markdown_link(s: &str) -> Option<(&str, &str)> {
    let close = s.find(']')?;
    let after = s[close + 1..].strip_prefix('(')?;
    let end = after.find(')')?;
    Some((&s[1..close], &after[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_summaries_keep_the_first_sentence_as_plain_text() {
        let cases = [
            (
                "Parses a human duration such as `90s` or `5m` into seconds.",
                "Parses a human duration such as 90s or 5m into seconds",
            ),
            (
                "\n  Constructs a :class:`Request <Request>`, prepares it and sends it.\n  Returns :class:`Response <Response>` object.\n\n  :param method: method for the new request.",
                "Constructs a Request, prepares it and sends it",
            ),
            (
                "The URL scheme (e.g. http or https) is missing. Check the URL.",
                "The URL scheme (e.g. http or https) is missing",
            ),
            (
                "Matches paths against [globs](https://example.com/glob) with\n`Glob::compile_matcher`!\nMore.",
                "Matches paths against globs with Glob::compile_matcher!",
            ),
            (
                "Returns: the value of :py:meth:`~Session.get` or `None`",
                "Returns: the value of Session.get or None",
            ),
            ("Version 1.2 of the format.", "Version 1.2 of the format"),
        ];
        for (doc, summary) in cases {
            assert_eq!(doc_summary(doc), summary, "{doc:?}");
        }
    }

    #[test]
    fn signature_queries_spell_the_name() {
        assert_eq!(
            signature_query(
                "parseHttpRequest",
                "fn parseHttpRequest(\n    raw: &[u8],\n)"
            ),
            "parse http request: fn parseHttpRequest( raw: &[u8], )"
        );
    }
}
