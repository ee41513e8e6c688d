//! Mining a small repository made by the test: every pair type, the filters and the history.

use std::path::Path;
use std::process::Command;

use super::*;
use crate::train::pairs::{Pair, PairSource, TaskFamily};

const DURATION_RS: &str = r#"//! Durations written by people.

/// Parses a human duration such as `90s` or `5m` into seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let (number, unit) = text.split_at(text.len() - 1);
    let value: u64 = number.parse().map_err(|e| format!("bad number: {e}"))?;
    Ok(value * unit_seconds(unit)?)
}

/// Seconds in one unit of time: s, m or h.
fn unit_seconds(unit: &str) -> Result<u64, String> {
    match unit {
        "s" => Ok(1),
        "m" => Ok(60),
        "h" => Ok(3600),
        other => Err(format!("unknown unit {other}")),
    }
}

pub fn format_duration(seconds: u64) -> String {
    if seconds % 60 == 0 {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

/// Ok.
pub fn ok() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_duration_reads_minutes() {
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(format_duration(300), "5m");
    }
}
"#;

const SCHEDULE_PY: &str = r#""""Scheduling helpers."""


def next_run(last, interval):
    """Return the time of the next run after last, interval seconds later."""
    return last + interval


class Scheduler:
    """Keeps jobs and runs the ones that are due."""

    def __init__(self):
        self.jobs = []

    def add_job(self, name, interval):
        """Register a job called name that runs every interval seconds."""
        self.jobs.append((name, interval))
        return len(self.jobs)
"#;

const TEST_SCHEDULE_PY: &str = r#"from app.schedule import next_run, Scheduler


def test_next_run_adds_the_interval():
    assert next_run(10, 5) == 15


def test_scheduler_keeps_jobs():
    s = Scheduler()
    assert s.add_job("backup", 60) == 1
"#;

const README: &str = "# Demo\n\nA tiny project.\n\n## Durations\n\nUse `parse_duration` to read a duration like `90s`, and format_duration to\nprint one back in minutes or seconds; `ok` is always true.\n";

const APP_JS: &str = "// The web page.\n\nfunction scheduleBackup(when) {\n  const id = add_job('backup', when);\n  return id;\n}\n";

pub(crate) fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

pub(crate) fn git(root: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(status.status.success(), "git {args:?}: {status:?}");
}

/// The fixture repository: Rust and Python sources, tests, a README, and (with `history`) a
/// git history of four commits.
pub(crate) fn fixture(root: &Path, history: bool) {
    write(root, "src/duration.rs", DURATION_RS);
    write(root, "app/schedule.py", SCHEDULE_PY);
    write(root, "tests/test_schedule.py", TEST_SCHEDULE_PY);
    write(root, "README.md", README);
    write(root, "web/app.js", APP_JS);
    if !history {
        return;
    }
    git(root, &["init", "-q"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "Initial import"]);
    let days = DURATION_RS.replace(
        "        \"h\" => Ok(3600),\n",
        "        \"h\" => Ok(3600),\n        \"d\" => Ok(86400),\n",
    );
    write(root, "src/duration.rs", &days);
    git(
        root,
        &[
            "commit",
            "-q",
            "-am",
            "Accept days in durations: the d suffix is 86400 seconds",
        ],
    );
    // The same message twice on the same function: one pair, one duplicate.
    for (from, to) in [
        (
            "format!(\"{}m\", seconds / 60)",
            "format!(\"{}m\", seconds.div_euclid(60))",
        ),
        (
            "format!(\"{}m\", seconds.div_euclid(60))",
            "format!(\"{}m\", seconds / 60)",
        ),
    ] {
        let text = std::fs::read_to_string(root.join("src/duration.rs")).unwrap();
        assert!(text.contains(from));
        write(root, "src/duration.rs", &text.replace(from, to));
        git(
            root,
            &[
                "commit",
                "-q",
                "-am",
                "Print whole minutes without a seconds suffix",
            ],
        );
    }
}

/// Chunks as the tiny BERT cuts them: a WordPiece tokenizer and 256 tokens, as MiniLM.
pub(crate) fn chunker() -> Chunker {
    crate::embed::chunker_for_model_dir(&crate::embed::tiny_bert_dir()).unwrap()
}

fn mined(history: bool) -> (tempfile::TempDir, MinedPairs) {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), history);
    let mined = mine_repository(dir.path(), &MineOptions::new(chunker())).unwrap();
    (dir, mined)
}

fn find<'a>(pairs: &'a [Pair], source: PairSource, symbol: &str) -> Vec<&'a Pair> {
    pairs
        .iter()
        .filter(|p| p.source == source && p.symbol == symbol)
        .collect()
}

#[test]
fn doc_comment_finds_its_symbol_without_the_doc_in_the_positive() {
    let (_dir, mined) = mined(false);
    let pairs = find(&mined.pairs, PairSource::DocComment, "parse_duration");
    assert_eq!(pairs.len(), 1, "{:#?}", mined.pairs);
    let pair = pairs[0];
    assert_eq!(pair.family, TaskFamily::Text2Code);
    assert_eq!(
        pair.query,
        "Parses a human duration such as 90s or 5m into seconds"
    );
    assert_eq!(pair.file, "src/duration.rs");
    assert!(
        pair.positive
            .starts_with("function parse_duration (parse duration) · src/duration.rs\npub fn parse_duration(text: &str)"),
        "{}",
        pair.positive
    );
    assert!(!pair.positive.contains("Parses a human duration"));
    // Python: the docstring is part of the body and is cut out of it.
    let python = find(&mined.pairs, PairSource::DocComment, "next_run");
    assert_eq!(python.len(), 1);
    assert!(
        python[0]
            .query
            .starts_with("Return the time of the next run")
    );
    assert!(!python[0].positive.contains("Return the time"));
    assert!(python[0].positive.contains("return last + interval"));
}

#[test]
fn symbol_finds_its_doc() {
    let (_dir, mined) = mined(false);
    let pairs = find(&mined.pairs, PairSource::SymbolDoc, "add_job");
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].family, TaskFamily::Code2Text);
    assert_eq!(
        pairs[0].positive,
        "Register a job called name that runs every interval seconds."
    );
    assert!(
        pairs[0]
            .query
            .contains("self.jobs.append((name, interval))")
    );
    assert!(!pairs[0].query.contains("Register a job"));
}

#[test]
fn signature_words_find_the_body_as_the_index_embeds_it() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), false);
    // Every signature pair, not only the share the defaults keep.
    let mut options = MineOptions::new(chunker());
    options.limits.max_signature_share = 1.0;
    let mined = mine_repository(dir.path(), &options).unwrap();
    let pairs = find(&mined.pairs, PairSource::Signature, "unit_seconds");
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].family, TaskFamily::Hybrid);
    assert_eq!(
        pairs[0].query,
        "unit seconds: fn unit_seconds(unit: &str) -> Result<u64, String>"
    );
    // The positive is exactly the chunk the index stores, doc included.
    let mut extractor = crate::symbols::SymbolExtractor::new();
    let source = std::fs::read_to_string(dir.path().join("src/duration.rs")).unwrap();
    let symbols = extractor
        .extract(crate::symbols::Language::Rust, "duration.rs", &source)
        .unwrap();
    let chunker = chunker();
    let chunks = crate::chunk::chunks_for_file(
        "src/duration.rs",
        crate::symbols::Language::Rust,
        &symbols,
        chunker.tokenizer.as_ref(),
        chunker.max_tokens,
    );
    let chunk = chunks.iter().find(|c| c.name == "unit_seconds").unwrap();
    assert_eq!(pairs[0].positive, chunk.text);
    assert!(chunk.text.contains("Seconds in one unit of time"));
}

#[test]
fn tests_find_the_functions_they_test() {
    let (_dir, mined) = mined(false);
    let rust = find(&mined.pairs, PairSource::Test, "parse_duration");
    assert_eq!(rust.len(), 1, "{:#?}", mined.pairs);
    assert_eq!(rust[0].family, TaskFamily::Code2Code);
    assert!(rust[0].query.contains("fn parse_duration_reads_minutes()"));
    // Named after parse_duration: format_duration, also called, is not "under test".
    assert!(find(&mined.pairs, PairSource::Test, "format_duration").is_empty());
    let python = find(&mined.pairs, PairSource::Test, "next_run");
    assert_eq!(python.len(), 1);
    assert!(
        python[0]
            .query
            .contains("def test_next_run_adds_the_interval")
    );
    assert_eq!(python[0].file, "app/schedule.py");
    // Not named after anything it calls: its repository callees are under test.
    let jobs = find(&mined.pairs, PairSource::Test, "add_job");
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].query.contains("def test_scheduler_keeps_jobs"));
}

#[test]
fn call_sites_find_their_callees() {
    let (_dir, mined) = mined(false);
    let pairs = find(&mined.pairs, PairSource::CallSite, "unit_seconds");
    assert_eq!(pairs.len(), 1);
    assert!(pairs[0].query.contains("pub fn parse_duration"));
    assert!(pairs[0].positive.contains("fn unit_seconds"));
    // Tests are paired as tests, not as call sites; calls into the standard library resolve
    // to nothing.
    assert!(
        mined
            .pairs
            .iter()
            .filter(|p| p.source == PairSource::CallSite)
            .all(|p| !p.query.contains("#[test]"))
    );
    assert!(find(&mined.pairs, PairSource::CallSite, "parse").is_empty());
    // JavaScript calling `add_job` does not call the Python method of that name.
    assert!(
        mined
            .pairs
            .iter()
            .all(|p| !(p.source == PairSource::CallSite && p.query.contains("scheduleBackup")))
    );
}

#[test]
fn readme_sections_find_the_symbols_they_name() {
    let (_dir, mined) = mined(false);
    let named: Vec<&str> = mined
        .pairs
        .iter()
        .filter(|p| p.source == PairSource::Readme)
        .map(|p| p.symbol.as_str())
        .collect();
    // `ok` names a function too, but a one-word name in prose is taken for a word.
    assert_eq!(named, vec!["parse_duration", "format_duration"]);
    let pair = &find(&mined.pairs, PairSource::Readme, "parse_duration")[0];
    assert!(pair.query.starts_with("## Durations"));
    assert_eq!(pair.family, TaskFamily::Text2Code);
}

#[test]
fn commits_find_the_symbols_they_changed_and_repeats_are_dropped() {
    let (_dir, mined) = mined(true);
    assert_eq!(mined.stats.history.commits, 4);
    assert_eq!(mined.stats.history.skipped, None);
    let commits: Vec<(&str, &str)> = mined
        .pairs
        .iter()
        .filter(|p| p.source == PairSource::Commit)
        .map(|p| (p.query.as_str(), p.symbol.as_str()))
        .collect();
    assert_eq!(
        commits,
        vec![
            (
                "Print whole minutes without a seconds suffix",
                "format_duration"
            ),
            (
                "Accept days in durations: the d suffix is 86400 seconds",
                "unit_seconds"
            ),
        ]
    );
    // The initial import changed every symbol: a sweep, not a description of any of them.
    assert!(mined.stats.duplicates >= 1);
    let positive = &find(&mined.pairs, PairSource::Commit, "unit_seconds")[0].positive;
    assert!(
        positive.contains("\"d\" => Ok(86400)"),
        "today's chunk: {positive}"
    );
}

#[test]
fn without_git_the_history_is_skipped_not_an_error() {
    let (_dir, mined) = mined(false);
    assert_eq!(mined.stats.history.commits, 0);
    assert!(mined.stats.history.skipped.is_some());
    assert_eq!(mined.by_source()[&PairSource::Commit], 0);
    assert!(!mined.pairs.is_empty());
}

#[test]
fn short_docs_are_dropped() {
    let (_dir, mined) = mined(false);
    assert!(find(&mined.pairs, PairSource::DocComment, "ok").is_empty());
    assert!(mined.stats.too_short >= 1);
    // Nothing kept is under the thresholds.
    let limits = PairLimits::default();
    assert!(mined.pairs.iter().all(|p| long_enough(p, &limits)));
}

#[test]
fn missing_root_is_an_error() {
    let err =
        mine_repository(Path::new("/no/such/repo"), &MineOptions::new(chunker())).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

fn candidate(target: SymbolRef, source: PairSource, query: &str) -> Candidate {
    Candidate {
        target,
        pair: Pair {
            family: TaskFamily::Text2Code,
            source,
            query: query.to_string(),
            positive: format!(
                "function target_{} · a.rs\nfn target() {{ body of the target function }}",
                target.1
            ),
            file: "a.rs".into(),
            symbol: format!("target_{}", target.1),
            negatives: Vec::new(),
        },
    }
}

#[test]
fn filter_dedups_and_caps_per_symbol_taking_sources_in_turn() {
    let limits = PairLimits {
        max_per_symbol: 3,
        ..PairLimits::default()
    };
    let mut stats = MineStats::default();
    let candidates = vec![
        candidate((0, 0), PairSource::Commit, "first commit message here"),
        candidate((0, 0), PairSource::Commit, "second commit message here"),
        candidate((0, 0), PairSource::Commit, "third commit message here"),
        candidate((0, 0), PairSource::Commit, "second  commit message\nhere"),
        candidate((0, 0), PairSource::Readme, "a readme section about it"),
        candidate((0, 1), PairSource::Readme, "a readme section about it"),
        candidate((0, 1), PairSource::Readme, "too short"),
    ];
    let kept = filter(candidates, &limits, &mut stats);
    let summary: Vec<(&str, &str)> = kept
        .iter()
        .map(|p| (p.symbol.as_str(), p.query.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("target_0", "first commit message here"),
            ("target_0", "second commit message here"),
            ("target_0", "a readme section about it"),
            ("target_1", "a readme section about it"),
        ]
    );
    assert_eq!(
        (stats.duplicates, stats.over_symbol_cap, stats.too_short),
        (1, 1, 1)
    );
}

#[test]
fn signature_pairs_are_cut_to_their_share_keeping_symbols_without_other_pairs() {
    let limits = PairLimits {
        max_signature_share: 0.25,
        ..PairLimits::default()
    };
    let mut stats = MineStats::default();
    let mut candidates = Vec::new();
    // Symbols 0..6 have a signature pair each; symbols 0..3 also have a doc pair.
    for s in 0..6 {
        candidates.push(candidate(
            (0, s),
            PairSource::Signature,
            &format!("signature words of symbol {s}"),
        ));
    }
    for s in 0..3 {
        candidates.push(candidate(
            (0, s),
            PairSource::DocComment,
            &format!("documentation sentence for symbol {s}"),
        ));
    }
    let kept = filter(candidates, &limits, &mut stats);
    // 3 other pairs allow 1 signature pair (1 / 4 = 25%): one of a symbol with nothing else.
    let signatures: Vec<&str> = kept
        .iter()
        .filter(|p| p.source == PairSource::Signature)
        .map(|p| p.symbol.as_str())
        .collect();
    assert_eq!(signatures, vec!["target_3"]);
    assert_eq!(kept.len(), 4);
    assert_eq!(stats.over_signature_share, 5);

    // A share of 1.0 keeps them all.
    let mut stats = MineStats::default();
    let all = PairLimits {
        max_signature_share: 1.0,
        ..PairLimits::default()
    };
    let candidates = (0..6)
        .map(|s| {
            candidate(
                (0, s),
                PairSource::Signature,
                &format!("signature words of symbol {s}"),
            )
        })
        .collect();
    assert_eq!(filter(candidates, &all, &mut stats).len(), 6);
    assert_eq!(stats.over_signature_share, 0);
}
