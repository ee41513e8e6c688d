//! Files written whole: a reader (another process, or the next run after a crash) sees the old
//! file or the new one, never half of one. One leaf module so that every writer of such a file
//! stages it the same way.

use std::ffi::OsString;
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
}
