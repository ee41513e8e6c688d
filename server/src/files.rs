//! Files written whole: a reader (another process, or the next run after a crash) sees the old
//! file or the new one, never half of one. One leaf module so that every writer of such a file
//! stages it the same way. And lock files: what lets one process at a time do a thing to an
//! index directory (write the index, fine-tune it), taken the same way everywhere.

use std::ffi::OsString;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

/// Writes `bytes` to a staging file beside `path` (named for this process, so two processes
/// writing the same file do not share one) and renames it over `path`. On failure the staging
/// file is removed and `path` is left as it was.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let staged = staging_path(path);
    let result = std::fs::write(&staged, bytes).and_then(|()| std::fs::rename(&staged, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    result
}

/// Takes the advisory lock of the file at `path` (created empty when missing; its content is
/// never read), held until the returned file is dropped or the process ends, a crash included,
/// so a stale lock cannot outlive its holder. `Ok(None)` when another holder has it and `wait`
/// is false; with `wait` this blocks until it is free, after a warning that says why nothing
/// happens yet. Locks are per open file, so two openings in one process exclude each other too.
pub fn lock(path: &Path, wait: bool) -> std::io::Result<Option<File>> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) if wait => {
            tracing::warn!(
                "waiting for another coder-lsp process to release {}",
                path.display()
            );
            file.lock()?;
            Ok(Some(file))
        }
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

fn staging_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(format!(".{}.partial", std::process::id()));
    PathBuf::from(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn replaces_a_file_and_leaves_no_staging_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("data.json");
        replace(&path, b"old").unwrap();
        replace(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("data.json");
        replace(&path, b"old").unwrap();
        // A directory in the staging file's place makes the write fail.
        std::fs::create_dir(staging_path(&path)).unwrap();
        assert!(replace(&path, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        // And a write under a missing directory is an error, not a panic.
        assert!(replace(&tmp.path().join("missing").join("x"), b"x").is_err());
    }

    #[test]
    fn a_lock_excludes_a_second_holder_until_it_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("lock");
        let held = lock(&path, false).unwrap().expect("free at first");
        assert!(lock(&path, false).unwrap().is_none(), "held by the first");
        drop(held);
        let again = lock(&path, true).unwrap();
        assert!(again.is_some(), "free once dropped");
        assert!(lock(&tmp.path().join("missing").join("lock"), false).is_err());
    }
}
