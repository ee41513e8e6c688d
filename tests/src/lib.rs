//! Shared helpers for coder-lsp's end-to-end tests: find the real binary, copy a fixture
//! repository into a temporary directory, and run commands against it with an isolated index.

pub mod editor;
pub mod lsp_client;
pub mod mcp_client;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `path` as a `file://` URI, as editors send it (the fixtures' paths need no escaping).
pub fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// The `coder-lsp` binary built in the same target directory as the running test, or the one
/// `CODER_LSP_TEST_BINARY` names (for a target directory shared by several checkouts, where the
/// last build of any of them wins).
pub fn binary() -> PathBuf {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(find_binary).clone()
}

fn find_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("CODER_LSP_TEST_BINARY") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/coder-lsp
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let bin = profile_dir.join(format!("coder-lsp{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build --workspace` (scripts/test does)",
        bin.display()
    );
    // `cargo test -p coder-tests` (or nextest) rebuilds the library these tests link, not the
    // binary they run: a binary older than the server's sources tests yesterday's code.
    let built = modified(&bin).expect("the binary's modification time");
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server");
    if let Some((newest, path)) = newest_file(&sources)
        && newest > built
    {
        panic!(
            "{} is older than {}: build it with `cargo build --workspace` (scripts/test does), \
             or name another with CODER_LSP_TEST_BINARY",
            bin.display(),
            path.display()
        );
    }
    bin
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The most recently modified source under `dir`'s `src/` and `grammars/` (`.rs`, `.scm`) and its
/// `Cargo.toml`: what the binary is built from (an editor's swap file is not).
fn newest_file(dir: &Path) -> Option<(std::time::SystemTime, PathBuf)> {
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    let mut pending = vec![
        dir.join("src"),
        dir.join("grammars"),
        dir.join("Cargo.toml"),
    ];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.flatten().map(|e| e.path()));
            }
        } else if path
            .extension()
            .is_some_and(|ext| ext == "rs" || ext == "scm" || ext == "toml")
            && let Some(time) = modified(&path)
            && newest.as_ref().is_none_or(|(t, _)| time > *t)
        {
            newest = Some((time, path));
        }
    }
    newest
}

/// `coder-lsp train`, the trainer: the same binary with its `train` subcommand, as the server
/// runs it to fine-tune.
pub fn trainer() -> Command {
    let mut command = Command::new(binary());
    command.arg("train");
    command
}

/// The fixture repositories shipped with the tests.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Copies a directory tree (files and folders only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy target");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("fixture entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// A fixture copied into a temporary workspace, with its own index directory.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    /// Copies fixture `name` into a fresh temporary directory.
    pub fn from_fixture(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_tree(&fixture(name), &dir.path().join("repo"));
        Self { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    pub fn index_dir(&self) -> PathBuf {
        self.dir.path().join("index")
    }

    /// The sample repository with a Python test file and a git history of two commits, the
    /// second changing `backoff_delay` only: material for every kind of training pair.
    pub fn sample_with_history() -> Self {
        const TEST_CONFIG_PY: &str = "from src.config import load_settings\n\n\ndef test_load_settings_fills_defaults(tmp_path):\n    path = tmp_path / \"settings.json\"\n    path.write_text(\"{}\")\n    assert load_settings(str(path))[\"port\"] == 8080\n";
        let ws = Self::from_fixture("sample-repo");
        let root = ws.root();
        std::fs::create_dir_all(root.join("tests")).expect("create tests/");
        std::fs::write(root.join("tests/test_config.py"), TEST_CONFIG_PY).expect("write a test");
        git(&root, &["init", "-q"]);
        git(&root, &["add", "."]);
        git(&root, &["commit", "-q", "-m", "Import the sample service"]);
        let retry = root.join("src/retry.rs");
        let text = std::fs::read_to_string(&retry).expect("read retry.rs");
        let changed = text.replace(
            "    let factor = 2u32.saturating_pow(attempt);",
            "    let factor = 2u32.saturating_pow(attempt.min(16));",
        );
        assert_ne!(text, changed);
        std::fs::write(&retry, changed).expect("write retry.rs");
        git(
            &root,
            &[
                "commit",
                "-q",
                "-am",
                "Cap the retry backoff exponent so huge attempt counts cannot overflow",
            ],
        );
        ws
    }

    /// Adds `modules` generated Python files of `functions` small documented functions each,
    /// so that indexing takes long enough to be interrupted. Returns how many functions were
    /// added.
    pub fn add_generated_modules(&self, modules: usize, functions: usize) -> usize {
        for i in 0..modules {
            let body: String = (0..functions)
                .map(|j| {
                    format!(
                        "def helper_{i}_{j}(value):\n    \"\"\"Step {j} of pipeline {i}.\"\"\"\n    return value * {j} + {i}\n\n"
                    )
                })
                .collect();
            std::fs::write(self.root().join(format!("src/pipeline_{i}.py")), body)
                .expect("write generated module");
        }
        modules * functions
    }

    /// A `coder-lsp` command with `--root` and `--index-dir` set for this workspace; the hub is
    /// never contacted.
    pub fn command(&self, subcommand: &str) -> Command {
        let mut cmd = Command::new(binary());
        cmd.arg(subcommand)
            .arg("--root")
            .arg(self.root())
            .arg("--index-dir")
            .arg(self.index_dir())
            .env("HF_HUB_OFFLINE", "1")
            .env_remove("CODER_LSP_MODEL")
            .env_remove("CODER_LSP_ADAPTER")
            .env_remove("CODER_LSP_INDEX_DIR");
        cmd
    }

    /// Runs a command that must succeed and returns its stdout parsed as one JSON value.
    pub fn json(&self, subcommand: &str, args: &[&str]) -> serde_json::Value {
        let output = self
            .command(subcommand)
            .args(args)
            .arg("--json")
            .output()
            .expect("run coder-lsp");
        let stdout = success(&output);
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}):\n{stdout}"))
    }
}

/// Runs git in `root` with a fixed identity and no signing.
pub fn git(root: &Path, args: &[&str]) {
    let output = Command::new("git")
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
        .expect("run git");
    assert!(output.status.success(), "git {args:?}: {output:?}");
}

/// Writes an adapter for the model in `model_dir` as `coder-lsp train` does, with fresh factors
/// (B = 0: the vectors stay the same, the fingerprint does not).
pub fn write_adapter(dir: &Path, model_dir: &Path, base_fingerprint: &str) {
    use coder_lsp::embed::lora::{AdapterMeta, LoraConfig, LoraParams};
    let device = candle_core::Device::Cpu;
    let model = coder_lsp::embed::load_trainable(model_dir, &device, &Default::default())
        .expect("load the model");
    let lora = LoraParams::new(&model.lora_modules(), &LoraConfig::default(), 1, &device)
        .expect("make adapters");
    lora.save(dir, &AdapterMeta::new(base_fingerprint, "bert"))
        .expect("write the adapter");
}

/// Asserts a command succeeded and returns its stdout.
pub fn success(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "coder-lsp failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Names of the results of one `search --json` answer, best first.
pub fn result_names(answer: &serde_json::Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .expect("results array")
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_string())
        .collect()
}
