//! Text → code pairs from the git history: a commit message finds the symbols the commit
//! changed.
//!
//! Runs the `git` CLI (`git log -p --unified=0` for messages and changed lines, one
//! `git cat-file --batch` for the files as they were after each commit). Which symbols a commit
//! changed is decided on the file at that commit; the positive is the symbol's chunk today, so
//! symbols since deleted or renamed yield nothing. Without git, outside a repository or with an
//! empty history this source is skipped, never an error.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::symbols::{Symbol, SymbolExtractor, SymbolKind};

use super::Candidate;
use super::repo::{Repo, SymbolRef};
use crate::train::pairs::{PairSource, TaskFamily};

/// A commit that changed more symbols than this is a sweep (a rename, a reformat) whose
/// message describes none of them in particular: it yields no pairs.
const MAX_SYMBOLS_PER_COMMIT: usize = 6;
/// A commit touching more files than this is skipped for the same reason, before any file is read.
const MAX_FILES_PER_COMMIT: usize = 12;
/// Trailers that say who, not what.
const TRAILERS: &[&str] = &[
    "signed-off-by:",
    "co-authored-by:",
    "reviewed-by:",
    "acked-by:",
    "change-id:",
];

/// How the history was read.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HistoryReport {
    /// Commits whose messages and diffs were read.
    pub commits: usize,
    /// Why the history was not read (no git, not a repository, …); `None` when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// One commit of `git log`: its message and the changed line ranges (1-based, inclusive, in
/// the new version) of each file.
#[derive(Debug, Default, PartialEq)]
struct Commit {
    hash: String,
    message: String,
    changes: Vec<(String, Vec<(u32, u32)>)>,
}

/// Commit message → changed symbol pairs from the last `max_commits` commits touching `root`.
pub(crate) fn mine(
    root: &Path,
    repo: &Repo,
    max_commits: usize,
    out: &mut Vec<Candidate>,
) -> HistoryReport {
    if max_commits == 0 {
        return skipped("disabled");
    }
    let prefix = match git(root, &["rev-parse", "--show-prefix"]) {
        Ok(prefix) => prefix.trim().to_string(),
        Err(why) => return skipped(&why),
    };
    let log = match git(
        root,
        &[
            "log",
            "--no-merges",
            &format!("--max-count={max_commits}"),
            "--format=%x00%H%x00%B%x00",
            "-p",
            "--unified=0",
            "--no-color",
            "--no-ext-diff",
            "--relative",
            "--",
            ".",
        ],
    ) {
        Ok(log) => log,
        Err(why) => return skipped(&why),
    };
    let commits = parse_log(&log);
    let mut blobs = match BlobReader::start(root) {
        Ok(blobs) => blobs,
        Err(why) => return skipped(&why),
    };
    let current = current_symbols(repo);
    let mut extractor = SymbolExtractor::new();
    for commit in &commits {
        let message = clean_message(&commit.message);
        if message.is_empty() || commit.changes.len() > MAX_FILES_PER_COMMIT {
            continue;
        }
        let mut changed: Vec<SymbolRef> = Vec::new();
        for (path, ranges) in &commit.changes {
            let Some(file) = repo.file_index(path) else {
                continue;
            };
            let language = repo.files[file].language;
            if !language.has_grammar() {
                continue;
            }
            let Some(source) = blobs.read(&format!("{}:{prefix}{path}", commit.hash)) else {
                continue;
            };
            let name = path.rsplit('/').next().unwrap_or(path);
            let Ok(then) = extractor.extract(language, name, &source) else {
                continue;
            };
            for symbol in innermost_touched(&then, ranges) {
                let key = (
                    path.as_str(),
                    symbol.name.as_str(),
                    symbol.container.as_deref(),
                    symbol.kind,
                );
                if let Some(Some(target)) = current.get(&key)
                    && !changed.contains(target)
                {
                    changed.push(*target);
                }
            }
        }
        if changed.len() > MAX_SYMBOLS_PER_COMMIT {
            continue;
        }
        for target in changed {
            out.push(Candidate::to_chunk(
                repo,
                target,
                TaskFamily::Text2Code,
                PairSource::Commit,
                &message,
            ));
        }
    }
    drop(blobs);
    HistoryReport {
        commits: commits.len(),
        skipped: None,
    }
}

fn skipped(why: &str) -> HistoryReport {
    tracing::info!("git history not mined: {why}");
    HistoryReport {
        commits: 0,
        skipped: Some(why.to_string()),
    }
}

/// Today's code symbols by (file, name, container, kind); `None` marks a key two symbols share.
type SymbolKey<'a> = (&'a str, &'a str, Option<&'a str>, SymbolKind);

fn current_symbols(repo: &Repo) -> HashMap<SymbolKey<'_>, Option<SymbolRef>> {
    let mut map = HashMap::new();
    for (target, file, mined) in repo.symbols() {
        if !super::repo::is_definition(mined) {
            continue;
        }
        let s = &mined.symbol;
        let key = (
            file.rel_path.as_str(),
            s.name.as_str(),
            s.container.as_deref(),
            s.kind,
        );
        map.entry(key)
            .and_modify(|slot| *slot = None)
            .or_insert(Some(target));
    }
    map
}

/// The symbols whose lines a change touched, without those that merely contain another
/// touched symbol (a changed method, not its whole class).
fn innermost_touched<'s>(symbols: &'s [Symbol], ranges: &[(u32, u32)]) -> Vec<&'s Symbol> {
    let touched: Vec<&Symbol> = symbols
        .iter()
        .filter(|s| s.kind != SymbolKind::Section)
        .filter(|s| {
            ranges
                .iter()
                .any(|&(a, b)| a <= s.end_line && s.start_line <= b)
        })
        .collect();
    touched
        .iter()
        .filter(|outer| {
            !touched.iter().any(|inner| {
                !std::ptr::eq(**outer, *inner)
                    && outer.start_line <= inner.start_line
                    && inner.end_line <= outer.end_line
                    && (outer.start_line, outer.end_line) != (inner.start_line, inner.end_line)
            })
        })
        .copied()
        .collect()
}

/// A commit message without trailers and surrounding blank lines.
fn clean_message(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .filter(|line| {
            let lower = line.trim().to_lowercase();
            !TRAILERS.iter().any(|t| lower.starts_with(t))
        })
        .collect();
    lines.join("\n").trim().to_string()
}

/// Parses `git log --format=%x00%H%x00%B%x00 -p --unified=0` output.
fn parse_log(log: &str) -> Vec<Commit> {
    let mut commits = Vec::new();
    let mut fields = log.split('\0');
    // Text before the first NUL is empty.
    fields.next();
    while let (Some(hash), Some(message), Some(diff)) =
        (fields.next(), fields.next(), fields.next())
    {
        commits.push(Commit {
            hash: hash.trim().to_string(),
            message: message.to_string(),
            changes: parse_diff(diff),
        });
    }
    commits
}

/// Changed line ranges per file of a `--unified=0` patch, in the new version of each file.
/// Deleted files are left out; a pure deletion touches the line it happened after.
fn parse_diff(diff: &str) -> Vec<(String, Vec<(u32, u32)>)> {
    let mut files: Vec<(String, Vec<(u32, u32)>)> = Vec::new();
    let mut current: Option<usize> = None;
    // `+++ ` names a file only right after `--- `; elsewhere it is an added line.
    let mut after_old_name = false;
    for line in diff.lines() {
        if after_old_name && let Some(path) = line.strip_prefix("+++ ") {
            current = path.strip_prefix("b/").map(|path| {
                files.push((path.to_string(), Vec::new()));
                files.len() - 1
            });
        } else if let Some(hunk) = line.strip_prefix("@@ ")
            && let Some(index) = current
            && let Some(range) = new_range(hunk)
        {
            files[index].1.push(range);
        }
        after_old_name = line.starts_with("--- ");
    }
    files.retain(|(_, ranges)| !ranges.is_empty());
    files
}

/// `-a,b +c,d @@ …` → the new lines `c..=c+d-1` (`c..=c` for a deletion, `d` = 0).
fn new_range(hunk: &str) -> Option<(u32, u32)> {
    let new = hunk.split_whitespace().find(|part| part.starts_with('+'))?;
    let new = new.strip_prefix('+')?;
    let (start, count) = match new.split_once(',') {
        Some((start, count)) => (start.parse::<u32>().ok()?, count.parse::<u32>().ok()?),
        None => (new.parse::<u32>().ok()?, 1),
    };
    let start = start.max(1);
    Some((start, start + count.saturating_sub(1)))
}

/// Runs `git -C root ARGS` and returns its stdout, or why it could not.
fn git(root: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["-c", "core.quotepath=off", "-c", "log.showSignature=false"])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("git cannot be run ({e})"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().next().unwrap_or("no message").trim();
        return Err(format!("git {} failed: {first}", args[0]));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// One `git cat-file --batch` process answering "what was this file at that commit".
struct BlobReader {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl BlobReader {
    fn start(root: &Path) -> Result<Self, String> {
        let mut child = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("git cat-file cannot be run ({e})"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("git cat-file has no pipes".into());
        };
        Ok(Self {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
        })
    }

    /// The text of `rev:path`; `None` when it does not exist, is not a blob or is not text.
    fn read(&mut self, object: &str) -> Option<String> {
        if object.contains('\n') {
            return None;
        }
        let stdin = self.stdin.as_mut()?;
        writeln!(stdin, "{object}").ok()?;
        stdin.flush().ok()?;
        let mut header = String::new();
        self.stdout.read_line(&mut header).ok()?;
        // `<oid> blob <size>`, or `<object> missing`.
        let mut parts = header.split_whitespace();
        let (_, kind, size) = (parts.next()?, parts.next()?, parts.next()?);
        let size: usize = size.parse().ok()?;
        let mut bytes = vec![0; size + 1];
        self.stdout.read_exact(&mut bytes).ok()?;
        bytes.pop();
        if kind != "blob" || bytes.contains(&0) {
            return None;
        }
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
}

impl Drop for BlobReader {
    fn drop(&mut self) {
        // Closing stdin ends the batch; wait so no zombie is left behind.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_and_diff_parsing() {
        let log = "\0abc\0Fix parsing\n\nSigned-off-by: A <a@b>\n\0\n\ndiff --git a/src/a.rs b/src/a.rs\n\
                   --- a/src/a.rs\n+++ b/src/a.rs\n@@ -3,0 +4,2 @@ fn x\n+a\n+b\n@@ -10 +12 @@\n-c\n+d\n\
                   diff --git a/gone.rs b/gone.rs\n--- a/gone.rs\n+++ /dev/null\n@@ -1,3 +0,0 @@\n-x\n\
                   \0def\0Second\0\n";
        let commits = parse_log(log);
        assert_eq!(commits.len(), 2);
        assert_eq!(commits[0].hash, "abc");
        assert_eq!(clean_message(&commits[0].message), "Fix parsing");
        assert_eq!(
            commits[0].changes,
            vec![("src/a.rs".to_string(), vec![(4, 5), (12, 12)])]
        );
        assert_eq!(commits[1].message, "Second");
        assert!(commits[1].changes.is_empty());
        assert_eq!(new_range("-5,2 +4,0 @@"), Some((4, 4)));
        assert_eq!(new_range("-1 +0,0 @@"), Some((1, 1)));
    }
}
