//! Workspace walking: which files of a root are indexed, and reading them safely.
//!
//! The walk honours `.gitignore`, `.ignore` and the project file `.coderignore` (also outside a
//! git repository), never follows a symlink out of the root, and keeps only files whose language
//! `symbols` knows. Reading a file rejects binary, huge and minified content with a reason instead
//! of failing: one bad file never stops an index run.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use globset::{Glob, GlobSet, GlobSetBuilder};
use ignore::WalkBuilder;

use crate::symbols::Language;

/// Files larger than this are skipped unless configured otherwise.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1024 * 1024;
/// Lines longer than this that hold at least half of a file's bytes mark it as minified or
/// generated. One long line in hand-written code (a regular expression, a table) does not:
/// league/commonmark's `UrlAutolinkParser.php` holds a 1,821-character pattern.
pub const MINIFIED_LINE_LENGTH: usize = 1000;
/// The project-level ignore file, in `.gitignore` syntax.
pub const IGNORE_FILE_NAME: &str = ".coderignore";
/// Directories that are never worth indexing, even without an ignore file.
const ALWAYS_EXCLUDED_DIRS: &[&str] = &["node_modules", "__pycache__", ".git", ".hg", ".svn"];

/// How a workspace is walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkOptions {
    pub max_file_size: u64,
    /// Extra glob patterns (relative to the root, `.gitignore`-like) that are excluded.
    pub exclude: Vec<String>,
    /// A directory inside the root that must never be indexed (e.g. the index itself).
    pub skip_dir: Option<PathBuf>,
}

impl Default for WalkOptions {
    fn default() -> Self {
        Self {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            exclude: Vec::new(),
            skip_dir: None,
        }
    }
}

/// A candidate file found by the walk (not read yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceFile {
    /// Path relative to the root with forward slashes: the key everything is stored under.
    pub rel_path: String,
    pub abs_path: PathBuf,
    pub language: Language,
    pub size: u64,
    /// Modification time in nanoseconds since the epoch (0 when the platform has none).
    pub mtime_ns: i64,
}

/// Why a file is left out of the index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error("binary file (contains NUL bytes)")]
    Binary,
    #[error("larger than the {limit}-byte limit ({size} bytes)")]
    TooLarge { size: u64, limit: u64 },
    #[error(
        "minified or generated (lines longer than {MINIFIED_LINE_LENGTH} characters hold most of it)"
    )]
    Minified,
    #[error("cannot be read: {0}")]
    Unreadable(String),
}

/// A file the walk saw but will not index, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    pub rel_path: String,
    pub reason: SkipReason,
}

/// What one walk found.
#[derive(Debug, Default)]
pub struct WalkReport {
    pub files: Vec<WorkspaceFile>,
    pub skipped: Vec<SkippedFile>,
}

/// Errors that stop a walk before it starts.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("workspace root {path} does not exist or is not a directory")]
    MissingRoot { path: PathBuf },
    #[error("cannot resolve workspace root {path}: {source}")]
    Canonicalize {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid exclude pattern {pattern:?}: {message}")]
    BadPattern { pattern: String, message: String },
}

/// Resolves a user-given root to its canonical absolute form.
pub fn canonical_root(path: &Path) -> Result<PathBuf, WorkspaceError> {
    if !path.is_dir() {
        return Err(WorkspaceError::MissingRoot {
            path: path.to_path_buf(),
        });
    }
    fs::canonicalize(path).map_err(|source| WorkspaceError::Canonicalize {
        path: path.to_path_buf(),
        source,
    })
}

/// Lists the indexable files under `root` (which must be canonical, see [`canonical_root`]).
/// Files that are too large are reported as skipped here, without being opened.
pub fn walk(root: &Path, options: &WalkOptions) -> Result<WalkReport, WorkspaceError> {
    let excludes = build_excludes(&options.exclude)?;
    let mut report = WalkReport::default();
    let walk_root = root.to_path_buf();
    let skip_dir = options.skip_dir.clone();
    let walker = WalkBuilder::new(root)
        .hidden(true)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(true)
        .ignore(true)
        // A fixture or a fresh checkout without `.git` should still honour its .gitignore.
        .require_git(false)
        .add_custom_ignore_filename(IGNORE_FILE_NAME)
        .follow_links(true)
        .filter_entry(move |entry| {
            if entry.depth() == 0 {
                return true;
            }
            let name = entry.file_name().to_string_lossy();
            if entry.file_type().is_some_and(|t| t.is_dir())
                && ALWAYS_EXCLUDED_DIRS.contains(&name.as_ref())
            {
                return false;
            }
            if skip_dir
                .as_deref()
                .is_some_and(|d| entry.path().starts_with(d))
            {
                return false;
            }
            // Links are followed only while they resolve inside the root.
            if entry.path_is_symlink() {
                return fs::canonicalize(entry.path())
                    .map(|target| target.starts_with(&walk_root))
                    .unwrap_or(false);
            }
            true
        })
        .build();

    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                // Loops, permission errors and vanished files: log and go on.
                tracing::warn!("walk: {err}");
                continue;
            }
        };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        let rel_path = rel_path_string(rel);
        if excludes.is_match(&rel_path) {
            continue;
        }
        let Some(language) = Language::from_path(entry.path()) else {
            continue;
        };
        let metadata = match entry.metadata() {
            Ok(m) => m,
            Err(err) => {
                report.skipped.push(SkippedFile {
                    rel_path,
                    reason: SkipReason::Unreadable(err.to_string()),
                });
                continue;
            }
        };
        if metadata.len() > options.max_file_size {
            report.skipped.push(SkippedFile {
                rel_path,
                reason: SkipReason::TooLarge {
                    size: metadata.len(),
                    limit: options.max_file_size,
                },
            });
            continue;
        }
        let mtime_ns = mtime_ns(&metadata);
        report.files.push(WorkspaceFile {
            rel_path,
            abs_path: entry.path().to_path_buf(),
            language,
            size: metadata.len(),
            mtime_ns,
        });
    }
    report.files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Ok(report)
}

/// A file's modification time in nanoseconds since the epoch (0 when the platform has none).
pub fn mtime_ns(metadata: &fs::Metadata) -> i64 {
    metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Whether the file behind `file` still has the size and modification time it was walked with.
pub fn is_unchanged(file: &WorkspaceFile) -> bool {
    fs::metadata(&file.abs_path)
        .is_ok_and(|m| m.len() == file.size && mtime_ns(&m) == file.mtime_ns)
}

/// Decides whether one file (e.g. reported by a file watcher) belongs in the index, by the same
/// rules as [`walk`]: inside the root (symlinks resolved), not hidden or ignored, a known
/// language, within the size limit. `Ok(None)` means it does not (any more).
pub fn walk_one(
    root: &Path,
    path: &Path,
    options: &WalkOptions,
) -> Result<Option<WorkspaceFile>, WorkspaceError> {
    let Ok(rel) = path.strip_prefix(root) else {
        return Ok(None);
    };
    let rel_path = rel_path_string(rel);
    let hidden_or_excluded = rel.components().any(|c| {
        let name = c.as_os_str().to_string_lossy();
        name.starts_with('.') || ALWAYS_EXCLUDED_DIRS.contains(&name.as_ref())
    });
    if hidden_or_excluded
        || build_excludes(&options.exclude)?.is_match(&rel_path)
        || options
            .skip_dir
            .as_deref()
            .is_some_and(|d| path.starts_with(d))
        || is_ignored(root, rel)
    {
        return Ok(None);
    }
    let Some(language) = Language::from_path(path) else {
        return Ok(None);
    };
    let Ok(metadata) = fs::metadata(path) else {
        return Ok(None);
    };
    let inside = fs::canonicalize(path).is_ok_and(|p| p.starts_with(root));
    if !metadata.is_file() || !inside || metadata.len() > options.max_file_size {
        return Ok(None);
    }
    let mtime_ns = mtime_ns(&metadata);
    Ok(Some(WorkspaceFile {
        rel_path,
        abs_path: path.to_path_buf(),
        language,
        size: metadata.len(),
        mtime_ns,
    }))
}

/// Whether the ignore files between `root` and the file (`.gitignore`, `.ignore`,
/// `.coderignore`) exclude `rel`. The deepest file that has an opinion wins, as in a walk.
fn is_ignored(root: &Path, rel: &Path) -> bool {
    let mut verdict = false;
    let mut dir = root.to_path_buf();
    let parents: Vec<_> = rel
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    for depth in 0..=parents.len() {
        if depth > 0 {
            dir.push(parents[depth - 1]);
        }
        let mut builder = ignore::gitignore::GitignoreBuilder::new(&dir);
        for name in [".gitignore", ".ignore", IGNORE_FILE_NAME] {
            let file = dir.join(name);
            if file.is_file() {
                let _ = builder.add(file);
            }
        }
        let Ok(matcher) = builder.build() else {
            continue;
        };
        let Ok(below) = root.join(rel).strip_prefix(&dir).map(Path::to_path_buf) else {
            continue;
        };
        match matcher.matched_path_or_any_parents(&below, false) {
            ignore::Match::Ignore(_) => verdict = true,
            ignore::Match::Whitelist(_) => verdict = false,
            ignore::Match::None => {}
        }
    }
    verdict
}

/// Reads a file as text, rejecting binary, oversized and minified content.
/// Invalid UTF-8 is decoded lossily: a Latin-1 comment should not hide the code around it.
pub fn read_text(path: &Path, max_file_size: u64) -> Result<String, SkipReason> {
    let file = fs::File::open(path).map_err(|e| SkipReason::Unreadable(e.to_string()))?;
    let mut bytes = Vec::new();
    // Read one byte past the limit so a file that grew since the walk is still caught.
    file.take(max_file_size + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| SkipReason::Unreadable(e.to_string()))?;
    if bytes.len() as u64 > max_file_size {
        let size = fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
        return Err(SkipReason::TooLarge {
            size,
            limit: max_file_size,
        });
    }
    check_text(&bytes)?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    })
}

/// Binary and minified checks on raw bytes.
pub fn check_text(bytes: &[u8]) -> Result<(), SkipReason> {
    if bytes.contains(&0) {
        return Err(SkipReason::Binary);
    }
    let long_bytes: usize = bytes
        .split(|&b| b == b'\n')
        .filter(|line| line.len() > MINIFIED_LINE_LENGTH && char_count(line) > MINIFIED_LINE_LENGTH)
        .map(<[u8]>::len)
        .sum();
    if long_bytes > 0 && long_bytes * 2 >= bytes.len() {
        return Err(SkipReason::Minified);
    }
    Ok(())
}

/// blake3 of a file's content, the identity used to notice changes.
pub fn content_hash(text: &str) -> [u8; 32] {
    *blake3::hash(text.as_bytes()).as_bytes()
}

fn char_count(line: &[u8]) -> usize {
    // Count UTF-8 leading bytes, so multi-byte text is measured in characters.
    line.iter().filter(|&&b| (b & 0xC0) != 0x80).count()
}

fn rel_path_string(rel: &Path) -> String {
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

fn build_excludes(patterns: &[String]) -> Result<GlobSet, WorkspaceError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let trimmed = pattern.trim().trim_start_matches('/');
        let bad = |e: globset::Error| WorkspaceError::BadPattern {
            pattern: pattern.clone(),
            message: e.to_string(),
        };
        // `dir` or `dir/` excludes everything below it; `*.rs` matches at any depth.
        let base = trimmed.trim_end_matches('/');
        let anywhere = if base.contains('/') {
            base.to_string()
        } else {
            format!("**/{base}")
        };
        builder.add(Glob::new(&anywhere).map_err(bad)?);
        builder.add(Glob::new(&format!("{anywhere}/**")).map_err(bad)?);
    }
    builder.build().map_err(|e| WorkspaceError::BadPattern {
        pattern: patterns.join(", "),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, content: &[u8]) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn walked(root: &Path, options: &WalkOptions) -> Vec<String> {
        let root = canonical_root(root).unwrap();
        walk(&root, options)
            .unwrap()
            .files
            .into_iter()
            .map(|f| f.rel_path)
            .collect()
    }

    #[test]
    fn honours_gitignore_ignore_and_coderignore_without_git() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "src/main.rs", b"fn main() {}\n");
        write(root, "src/generated.rs", b"fn generated() {}\n");
        write(root, "build/out.rs", b"fn out() {}\n");
        write(root, "vendor/lib.py", b"def f():\n    pass\n");
        write(root, "notes.md", b"# Notes\n");
        write(root, "node_modules/pkg/index.js", b"function x() {}\n");
        write(root, ".hidden/secret.rs", b"fn secret() {}\n");
        write(root, "image.png", b"\x89PNG");
        write(root, ".gitignore", b"build/\n");
        write(root, ".ignore", b"vendor/\n");
        write(root, ".coderignore", b"src/generated.rs\n");
        assert_eq!(
            walked(root, &WalkOptions::default()),
            vec!["notes.md", "src/main.rs"]
        );
    }

    #[test]
    fn walk_one_agrees_with_walk() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "src/main.rs", b"fn main() {}\n");
        write(root, "src/gen/out.rs", b"fn out() {}\n");
        write(root, "src/gen/keep.rs", b"fn keep() {}\n");
        write(root, "src/.cache/x.rs", b"fn x() {}\n");
        write(root, "node_modules/a/index.js", b"function a() {}\n");
        write(root, "notes.bin", b"data");
        write(root, ".gitignore", b"/src/gen/\n");
        write(root, "src/.coderignore", b"!gen/keep.rs\n");
        let root = canonical_root(root).unwrap();
        let options = WalkOptions::default();
        let one = |rel: &str| {
            walk_one(&root, &root.join(rel), &options)
                .unwrap()
                .map(|f| f.rel_path)
        };
        assert_eq!(one("src/main.rs").as_deref(), Some("src/main.rs"));
        assert_eq!(one("src/gen/out.rs"), None);
        assert_eq!(one("src/.cache/x.rs"), None);
        assert_eq!(one("node_modules/a/index.js"), None);
        assert_eq!(one("notes.bin"), None);
        assert_eq!(one("src/missing.rs"), None);
        assert_eq!(
            walk_one(&root, Path::new("/etc/passwd"), &options).unwrap(),
            None
        );
        let walked: Vec<String> = walk(&root, &options)
            .unwrap()
            .files
            .into_iter()
            .map(|f| f.rel_path)
            .collect();
        assert_eq!(walked, vec!["src/main.rs"]);
    }

    #[test]
    fn extra_excludes_match_directories_and_globs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "src/a.rs", b"fn a() {}\n");
        write(root, "src/deep/b_test.rs", b"fn b() {}\n");
        write(root, "docs/guide.md", b"# Guide\n");
        let options = WalkOptions {
            exclude: vec!["docs/".into(), "*_test.rs".into()],
            ..WalkOptions::default()
        };
        assert_eq!(walked(root, &options), vec!["src/a.rs"]);
        let bad = WalkOptions {
            exclude: vec!["src/[".into()],
            ..WalkOptions::default()
        };
        let root = canonical_root(root).unwrap();
        assert!(matches!(
            walk(&root, &bad),
            Err(WorkspaceError::BadPattern { .. })
        ));
    }

    #[test]
    fn size_limit_is_reported_as_skipped() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "big.rs", &vec![b'a'; 2048]);
        write(dir.path(), "small.rs", b"fn s() {}\n");
        let root = canonical_root(dir.path()).unwrap();
        let report = walk(
            &root,
            &WalkOptions {
                max_file_size: 1024,
                ..WalkOptions::default()
            },
        )
        .unwrap();
        assert_eq!(report.files.len(), 1);
        assert_eq!(
            report.skipped,
            vec![SkippedFile {
                rel_path: "big.rs".into(),
                reason: SkipReason::TooLarge {
                    size: 2048,
                    limit: 1024
                }
            }]
        );
    }

    #[cfg(unix)]
    #[test]
    fn regression_symlinks_never_leave_the_root() {
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "secret.rs", b"fn secret() {}\n");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "src/lib.rs", b"fn lib() {}\n");
        std::os::unix::fs::symlink(outside.path(), root.join("escape")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.rs"), root.join("leak.rs")).unwrap();
        std::os::unix::fs::symlink(root.join("src"), root.join("alias")).unwrap();
        // A loop back to the root must not hang the walk.
        std::os::unix::fs::symlink(root, root.join("src/loop")).unwrap();
        assert_eq!(
            walked(root, &WalkOptions::default()),
            vec!["alias/lib.rs", "src/lib.rs"]
        );
    }

    #[test]
    fn read_text_rejects_binary_minified_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "bin.rs", b"fn x() {}\0\0");
        let mut minified = b"var a=1;".repeat(200);
        minified.push(b'\n');
        write(root, "min.js", &minified);
        write(root, "latin1.py", b"# caf\xe9\ndef f():\n    pass\n");
        let long_unicode = "é".repeat(900);
        write(root, "wide.md", format!("# T\n{long_unicode}\n").as_bytes());
        assert_eq!(
            read_text(&root.join("bin.rs"), DEFAULT_MAX_FILE_SIZE),
            Err(SkipReason::Binary)
        );
        assert_eq!(
            read_text(&root.join("min.js"), DEFAULT_MAX_FILE_SIZE),
            Err(SkipReason::Minified)
        );
        // 900 two-byte characters is 1800 bytes but still a normal line.
        assert!(read_text(&root.join("wide.md"), DEFAULT_MAX_FILE_SIZE).is_ok());
        // One long pattern in a hand-written file is no minification; a bundle whose long lines
        // hold most of it is, whatever short lines surround them.
        let pattern = format!("/x{}/", "[a-z]".repeat(300));
        let code = format!(
            "<?php\n{}\nconst P = '{pattern}';\n",
            "function f() {}\n".repeat(120)
        );
        write(root, "Parser.php", code.as_bytes());
        assert!(read_text(&root.join("Parser.php"), DEFAULT_MAX_FILE_SIZE).is_ok());
        let bundle = format!(
            "// header\n{}\n{}\n",
            "var a=1;".repeat(400),
            "f();\n".repeat(50)
        );
        write(root, "bundle.js", bundle.as_bytes());
        assert_eq!(
            read_text(&root.join("bundle.js"), DEFAULT_MAX_FILE_SIZE),
            Err(SkipReason::Minified)
        );
        let text = read_text(&root.join("latin1.py"), DEFAULT_MAX_FILE_SIZE).unwrap();
        assert!(text.contains("def f():"));
        assert!(matches!(
            read_text(&root.join("missing.rs"), DEFAULT_MAX_FILE_SIZE),
            Err(SkipReason::Unreadable(_))
        ));
    }

    #[test]
    fn a_directory_in_place_of_a_file_is_unreadable_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_text(dir.path(), DEFAULT_MAX_FILE_SIZE),
            Err(SkipReason::Unreadable(_))
        ));
    }

    #[test]
    fn missing_root_is_a_clear_error() {
        let err = canonical_root(Path::new("/definitely/not/here")).unwrap_err();
        assert!(err.to_string().contains("does not exist"));
    }
}
