//! Shared helpers for coder-lsp's end-to-end tests: find the real binary, copy a fixture
//! repository into a temporary directory, and run commands against it with an isolated index.

pub mod editor;
pub mod lsp_client;
pub mod mcp_client;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `coder-lsp` binary built in the same target directory as the running test, or the one
/// `CODER_LSP_TEST_BINARY` names (for a target directory shared by several checkouts, where the
/// last build of any of them wins).
pub fn binary() -> PathBuf {
    built_binary("coder-lsp", "CODER_LSP_TEST_BINARY")
}

/// The `coder-train` binary, found like [`binary`] (or named by `CODER_TRAIN_TEST_BINARY`).
pub fn trainer_binary() -> PathBuf {
    built_binary("coder-train", "CODER_TRAIN_TEST_BINARY")
}

/// A binary of this workspace: `env_var` when set, else `name` beside the test's profile dir.
fn built_binary(name: &str, env_var: &str) -> PathBuf {
    if let Some(bin) = std::env::var_os(env_var) {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let bin = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build --workspace` (scripts/test does)",
        bin.display()
    );
    bin
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
