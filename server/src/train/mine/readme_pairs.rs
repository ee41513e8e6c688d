//! Text → code pairs from the repository's prose: a README or other Markdown section finds the
//! symbols it names. Only compound names count (`parse_duration`, `RetryPolicy`): a one-word
//! name in prose is too often just a word.

use crate::symbols::{Language, SymbolKind};
use crate::words::split_identifier;

use super::Candidate;
use super::names::mentioned_names;
use super::repo::{Repo, SymbolRef};
use crate::train::pairs::{PairSource, TaskFamily};

/// A section naming more symbols than this is a list or reference table, not a description of
/// any one of them: it yields no pairs.
const MAX_NAMED_PER_SECTION: usize = 8;
/// Most pairs one section yields (the symbols it names first).
const MAX_PAIRS_PER_SECTION: usize = 4;

/// Section → named symbol pairs for every Markdown section.
pub(crate) fn mine(repo: &Repo, out: &mut Vec<Candidate>) {
    for file in repo
        .files
        .iter()
        .filter(|f| f.language == Language::Markdown)
    {
        for section in &file.symbols {
            if section.symbol.kind != SymbolKind::Section {
                continue;
            }
            let mut named: Vec<SymbolRef> = Vec::new();
            for name in mentioned_names(&section.symbol.text) {
                // `query` or `text` in prose is a word before it is a method; `parse_query`
                // or `QueryParser` is a name.
                if split_identifier(name).len() < 2 {
                    continue;
                }
                if let Some(target) = repo.unique_definition(name)
                    && !named.contains(&target)
                {
                    named.push(target);
                }
            }
            if named.len() > MAX_NAMED_PER_SECTION {
                continue;
            }
            let query = section.symbol.text.trim();
            for target in named.into_iter().take(MAX_PAIRS_PER_SECTION) {
                out.push(Candidate::to_chunk(
                    repo,
                    target,
                    TaskFamily::Text2Code,
                    PairSource::Readme,
                    query,
                ));
            }
        }
    }
}
