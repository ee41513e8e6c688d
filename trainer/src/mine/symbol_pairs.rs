//! Pairs one symbol makes on its own: its doc finds it (Text2Code), it finds its doc
//! (Code2Text), and its name in words with its signature finds its body (Hybrid).

use coder_lsp::index::fts::split_identifier;

use super::Candidate;
use super::repo::{Repo, is_callable, is_definition};
use crate::pairs::{Pair, PairSource, TaskFamily};

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
                doc,
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

#[cfg(test)]
mod tests {
    use super::*;

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
