//! Code → code pairs from the repository's call graph: a test finds the function it tests, a
//! caller finds its callee.
//!
//! Calls are found lexically (`name(`) and resolved through the repository's name table, so
//! only callees defined in the repository, in the caller's language, under a unique name count.

use super::Candidate;
use super::names::called_names;
use super::repo::{Repo, SymbolRef, is_callable};
use crate::train::pairs::{PairSource, TaskFamily};

/// Most functions one test is paired with: the ones named after the test, else the first ones
/// it calls.
const MAX_TESTED_PER_TEST: usize = 3;
/// Most callees one caller is paired with (in order of first call).
const MAX_CALLEES_PER_CALLER: usize = 4;

/// Test → function under test and caller → callee pairs.
pub(crate) fn mine(repo: &Repo, out: &mut Vec<Candidate>) {
    for (me, file, mined) in repo.symbols() {
        if !is_callable(mined.symbol.kind) {
            continue;
        }
        // A test's own name is a call in `fn test_x()`; its first line is the declaration.
        let callees: Vec<(SymbolRef, &str)> = called_names(&mined.symbol.text)
            .into_iter()
            .filter(|name| *name != mined.symbol.name)
            .filter_map(|name| Some((repo.unique_definition_for(name, file.language)?, name)))
            .filter(|(target, _)| *target != me && is_callable(repo.symbol(*target).symbol.kind))
            .collect();
        let (source, chosen) = if mined.is_test {
            (
                PairSource::Test,
                tested_functions(&mined.symbol.name, &callees),
            )
        } else {
            let mut chosen: Vec<SymbolRef> = callees.iter().map(|(t, _)| *t).collect();
            chosen.truncate(MAX_CALLEES_PER_CALLER);
            (PairSource::CallSite, chosen)
        };
        for target in chosen {
            out.push(Candidate::to_chunk(
                repo,
                target,
                TaskFamily::Code2Code,
                source,
                &mined.chunk,
            ));
        }
    }
}

/// The functions a test exercises: those whose name is part of the test's name
/// (`test_parse_duration_rejects_junk` tests `parse_duration`); when none is, the first few it
/// calls.
fn tested_functions(test_name: &str, callees: &[(SymbolRef, &str)]) -> Vec<SymbolRef> {
    let lowered = test_name.to_lowercase();
    let named: Vec<SymbolRef> = callees
        .iter()
        .filter(|(_, name)| name.len() >= 3 && lowered.contains(&name.to_lowercase()))
        .map(|(t, _)| *t)
        .collect();
    let mut chosen = if named.is_empty() {
        callees.iter().map(|(t, _)| *t).collect()
    } else {
        named
    };
    chosen.truncate(MAX_TESTED_PER_TEST);
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_is_paired_with_what_it_is_named_after() {
        let callees = [
            ((0, 1), "setup"),
            ((0, 2), "parse_duration"),
            ((0, 3), "helper"),
        ];
        assert_eq!(
            tested_functions("test_parse_duration_rejects_junk", &callees),
            vec![(0, 2)]
        );
        assert_eq!(
            tested_functions("it_works", &callees),
            vec![(0, 1), (0, 2), (0, 3)]
        );
    }
}
