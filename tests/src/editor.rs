//! Helpers for the tests that drive real editors (headless Neovim, VS Code in code-server): find
//! the editor, run a script in it with a time limit, and read what it reported.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Workspace, binary};

/// The Neovim to drive: `$CODER_LSP_NVIM`, else the one `scripts/fetch-nvim` installs into
/// coder-lsp's cache.
pub fn nvim() -> PathBuf {
    if let Some(path) = std::env::var_os("CODER_LSP_NVIM").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "CODER_LSP_NVIM={} is not a file; unset it to use the nvim that scripts/setup-tests installs",
            path.display()
        );
        return path;
    }
    let path = coder_lsp::model::cache_root().join("tools/nvim/bin/nvim");
    assert!(
        path.is_file(),
        "Neovim is not installed at {}: run scripts/setup-tests (it runs scripts/fetch-nvim), or set \
         CODER_LSP_NVIM to an nvim >= 0.11",
        path.display()
    );
    path
}

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}

/// How a bounded run ended.
pub struct Bounded {
    /// `None` when it was killed at the limit.
    pub status: Option<ExitStatus>,
    pub elapsed: Duration,
    /// stdout and stderr, interleaved.
    pub output: String,
}

impl Bounded {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// The exit status in words.
    pub fn describe(&self, limit: Duration) -> String {
        match self.status {
            Some(status) => format!("{status} after {:.1?}", self.elapsed),
            None => format!("killed at the {limit:?} limit"),
        }
    }
}

/// Runs `cmd` with stdin closed and stdout+stderr into `output_path`, killing it after `limit`.
/// Only the process itself is killed: the scripts stop what they started on every path they
/// control. (Never signal a process group through `kill -SIG -PGID`: procps-ng 4.0.2's kill
/// turns that into kill(-1), i.e. everything.)
pub fn run_bounded(cmd: &mut Command, output_path: &Path, limit: Duration) -> Bounded {
    let output_file = fs::File::create(output_path).expect("create output file");
    cmd.stdin(Stdio::null())
        .stdout(output_file.try_clone().expect("clone output file"))
        .stderr(output_file);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("start {:?}: {e}", cmd.get_program()));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Bounded {
        status,
        elapsed: start.elapsed(),
        output: fs::read_to_string(output_path).unwrap_or_default(),
    }
}

/// What one headless Neovim script run left behind.
pub struct NvimRun {
    pub run: Bounded,
    pub limit: Duration,
    /// The JSON the script wrote to `$CODER_LSP_TEST_OUT`.
    pub result: Option<Value>,
    pub lsp_log: PathBuf,
}

impl NvimRun {
    /// Everything useful for a failure message: the exit status, nvim's output, the error the
    /// script reported, the server's stderr and the end of the LSP log.
    pub fn diagnostics(&self) -> String {
        let log = fs::read_to_string(&self.lsp_log).unwrap_or_default();
        let server_stderr = tail(log.lines().filter(|l| l.contains("\"stderr\"")), 100);
        let log_tail = tail(log.lines(), 40);
        let error = self
            .result
            .as_ref()
            .and_then(|r| r["error"].as_str())
            .unwrap_or("(none)");
        format!(
            "nvim: {}\nscript error: {error}\n--- nvim output ---\n{}\n\
             --- server stderr (from {}) ---\n{}\n--- end of the LSP log ---\n{log_tail}\n\
             --- result ---\n{}",
            self.run.describe(self.limit),
            self.run.output,
            self.lsp_log.display(),
            server_stderr,
            self.result
                .as_ref()
                .map_or_else(|| "(none)".to_string(), |r| format!("{r:#}")),
        )
    }

    /// The script's result; panics with the diagnostics unless the script succeeded and
    /// reported no error.
    pub fn checked_result(&self) -> &Value {
        assert!(
            self.run.success(),
            "the Neovim script failed\n{}",
            self.diagnostics()
        );
        let result = self
            .result
            .as_ref()
            .unwrap_or_else(|| panic!("the script wrote no JSON result\n{}", self.diagnostics()));
        assert!(
            result["error"].is_null(),
            "the script reported an error\n{}",
            self.diagnostics()
        );
        result
    }
}

/// Runs the Lua `script` in headless Neovim (`nvim --headless --clean -u NONE -i NONE -l`) in
/// the workspace `ws`, bounded by `limit`. The script gets the server binary, the workspace, an
/// index directory of its own and an output path in `CODER_LSP_TEST_*` variables, plus `env`;
/// Neovim's own files (the LSP log included) stay in a scratch folder.
pub fn run_nvim_script(
    ws: &Workspace,
    script: &Path,
    env: &[(&str, String)],
    limit: Duration,
) -> NvimRun {
    let stem = script
        .file_stem()
        .map_or_else(|| "nvim".into(), |s| s.to_string_lossy().into_owned());
    let scratch = ws.dir.path().join(format!("nvim-{stem}"));
    let state = scratch.join("state");
    fs::create_dir_all(&state).expect("create nvim state dir");
    let out_path = scratch.join("result.json");

    let mut cmd = Command::new(nvim());
    cmd.args(["--headless", "--clean", "-u", "NONE", "-i", "NONE", "-l"])
        .arg(script)
        .current_dir(ws.root())
        .env("CODER_LSP_TEST_BIN", binary())
        .env("CODER_LSP_TEST_ROOT", ws.root())
        .env("CODER_LSP_TEST_INDEX_DIR", ws.index_dir())
        .env("CODER_LSP_TEST_OUT", &out_path)
        .env("XDG_STATE_HOME", &state)
        .env("XDG_CONFIG_HOME", scratch.join("config"))
        .env("XDG_DATA_HOME", scratch.join("data"))
        // Inherited by the server: the model comes from the cache, never from a hub.
        .env("HF_HUB_OFFLINE", "1")
        .env("CODER_LSP_LOG", "info")
        .env_remove("CODER_LSP_MODEL")
        .env_remove("CODER_LSP_INDEX_DIR");
    for (name, value) in env {
        cmd.env(name, value);
    }
    let run = run_bounded(&mut cmd, &scratch.join("output.txt"), limit);
    NvimRun {
        run,
        limit,
        result: read_json(&out_path),
        lsp_log: state.join("nvim/lsp.log"),
    }
}

/// The JSON a script wrote to `path`, if any.
pub fn read_json(path: &Path) -> Option<Value> {
    fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
}

/// The last `n` of `lines`, each cut to 600 characters (debug logs have very long ones).
pub fn tail<'a>(lines: impl Iterator<Item = &'a str>, n: usize) -> String {
    let lines: Vec<&str> = lines.collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|line| match line.char_indices().nth(600) {
            Some((cut, _)) => format!("{} …", &line[..cut]),
            None => (*line).to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The path of a `file://` URI (percent-escapes decoded).
pub fn uri_path(uri: &str) -> PathBuf {
    let rest = uri
        .strip_prefix("file://")
        .unwrap_or_else(|| panic!("not a file URI: {uri}"));
    let bytes = rest.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| {
            std::str::from_utf8(h)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        });
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    PathBuf::from(String::from_utf8(decoded).expect("URI path is UTF-8"))
}

/// A JSON list (Neovim encodes an empty list as `{}`).
pub fn list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Object(map) if map.is_empty() => Vec::new(),
        Value::Null => Vec::new(),
        other => panic!("expected a list, got {other}"),
    }
}

/// The 0-based line of the first line of `file` that contains `needle`.
pub fn line_of(file: &Path, needle: &str) -> u64 {
    let text = fs::read_to_string(file).expect("read fixture file");
    let index = text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {}", file.display()));
    u64::try_from(index).expect("line number fits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_paths_are_decoded() {
        assert_eq!(
            uri_path("file:///tmp/a%20b/%C3%BC.rs"),
            PathBuf::from("/tmp/a b/ü.rs")
        );
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc".lines(), 2), "b\nc");
    }
}
