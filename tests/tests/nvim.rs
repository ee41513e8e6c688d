//! End-to-end test of the language server in a real editor: headless Neovim (installed by
//! `scripts/setup` through `scripts/fetch-nvim`) runs `tests/nvim/lsp_smoke.lua`, which starts
//! `coder-lsp serve` with `vim.lsp.config`/`vim.lsp.enable` on a copy of the sample fixture, waits
//! for the background index, and runs `semanticSearch` and `workspace/symbol`. The script writes
//! what it saw as JSON; the assertions are here.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use coder_tests::{Workspace, binary};
use serde_json::Value;

/// Neovim is killed after this long; the script's own bounds are shorter.
const NVIM_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the script waits for the index to be complete.
const INDEX_TIMEOUT_MS: u64 = 90_000;

/// The Neovim to drive: `$CODER_LSP_NVIM`, else the one `scripts/fetch-nvim` installs into
/// coder-lsp's cache.
fn nvim() -> PathBuf {
    if let Some(path) = std::env::var_os("CODER_LSP_NVIM").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "CODER_LSP_NVIM={} is not a file; unset it to use the nvim that scripts/setup installs",
            path.display()
        );
        return path;
    }
    let path = coder_lsp::model::cache_root().join("tools/nvim/bin/nvim");
    assert!(
        path.is_file(),
        "Neovim is not installed at {}: run scripts/setup (it runs scripts/fetch-nvim), or set \
         CODER_LSP_NVIM to an nvim >= 0.11",
        path.display()
    );
    path
}

/// What one headless Neovim run left behind.
struct Run {
    status: Option<ExitStatus>,
    elapsed: Duration,
    output: String,
    result: Option<Value>,
    lsp_log: PathBuf,
}

impl Run {
    /// Everything useful for a failure message: the exit status, nvim's output, the error the
    /// script reported, the server's stderr and the end of the LSP log.
    fn diagnostics(&self) -> String {
        let status = match self.status {
            Some(status) => status.to_string(),
            None => format!("killed at the {NVIM_TIMEOUT:?} limit"),
        };
        let log = fs::read_to_string(&self.lsp_log).unwrap_or_default();
        let server_stderr = tail(log.lines().filter(|l| l.contains("\"stderr\"")), 100);
        let log_tail = tail(log.lines(), 40);
        let error = self
            .result
            .as_ref()
            .and_then(|r| r["error"].as_str())
            .unwrap_or("(none)");
        format!(
            "nvim: {status} after {:.1?}\nscript error: {error}\n--- nvim output ---\n{}\n\
             --- server stderr (from {}) ---\n{}\n--- end of the LSP log ---\n{log_tail}\n\
             --- result ---\n{}",
            self.elapsed,
            self.output,
            self.lsp_log.display(),
            server_stderr,
            self.result
                .as_ref()
                .map_or_else(|| "(none)".to_string(), |r| format!("{r:#}")),
        )
    }
}

/// The last `n` of `lines`, each cut to 600 characters (the debug log has very long ones).
fn tail<'a>(lines: impl Iterator<Item = &'a str>, n: usize) -> String {
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

/// Runs `tests/nvim/lsp_smoke.lua` in headless Neovim against `ws`, bounded by `NVIM_TIMEOUT`.
fn run_smoke(ws: &Workspace) -> Run {
    let scratch = ws.dir.path().join("nvim");
    let state = scratch.join("state");
    fs::create_dir_all(&state).expect("create nvim state dir");
    let out_path = scratch.join("result.json");
    let output_path = scratch.join("output.txt");
    let output_file = fs::File::create(&output_path).expect("create nvim output file");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("nvim/lsp_smoke.lua");

    let mut cmd = Command::new(nvim());
    cmd.args(["--headless", "--clean", "-u", "NONE", "-i", "NONE", "-l"])
        .arg(&script)
        .current_dir(ws.root())
        .stdin(Stdio::null())
        .stdout(output_file.try_clone().expect("clone output file"))
        .stderr(output_file)
        .env("CODER_LSP_TEST_BIN", binary())
        .env("CODER_LSP_TEST_ROOT", ws.root())
        .env("CODER_LSP_TEST_INDEX_DIR", ws.index_dir())
        .env("CODER_LSP_TEST_OUT", &out_path)
        .env(
            "CODER_LSP_TEST_INDEX_TIMEOUT_MS",
            INDEX_TIMEOUT_MS.to_string(),
        )
        // Neovim's own files (the LSP log included) stay in the scratch dir.
        .env("XDG_STATE_HOME", &state)
        .env("XDG_CONFIG_HOME", scratch.join("config"))
        .env("XDG_DATA_HOME", scratch.join("data"))
        // Inherited by the server: the model comes from the cache, never from a hub.
        .env("HF_HUB_OFFLINE", "1")
        .env("CODER_LSP_LOG", "info")
        .env_remove("CODER_LSP_MODEL")
        .env_remove("CODER_LSP_INDEX_DIR");

    let start = Instant::now();
    let mut child = cmd.spawn().expect("start nvim");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for nvim") {
            break Some(status);
        }
        if start.elapsed() > NVIM_TIMEOUT {
            // Only nvim itself: the server sees its stdin close and must exit on its own (the
            // script stops it on every path it controls). Never signal a process group through
            // `kill -SIG -PGID`: procps-ng 4.0.2's kill turns that into kill(-1), i.e. everything.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let elapsed = start.elapsed();

    let result = fs::read_to_string(&out_path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    Run {
        status,
        elapsed,
        output: fs::read_to_string(&output_path).unwrap_or_default(),
        result,
        lsp_log: state.join("nvim/lsp.log"),
    }
}

/// The path of a `file://` URI (percent-escapes decoded).
fn uri_path(uri: &str) -> PathBuf {
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
fn list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Object(map) if map.is_empty() => Vec::new(),
        other => panic!("expected a list, got {other}"),
    }
}

/// The 0-based line of the first line of `file` that contains `needle`.
fn line_of(file: &Path, needle: &str) -> u64 {
    let text = fs::read_to_string(file).expect("read fixture file");
    let index = text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {}", file.display()));
    u64::try_from(index).expect("line number fits")
}

/// Checks one located hit: its URI is the expected file of the workspace, and its range (0-based
/// LSP lines) covers `line`. Returns what is wrong.
fn check_location(
    root: &Path,
    uri: &Value,
    range: Option<&Value>,
    file: &str,
    line: u64,
) -> Result<(), String> {
    let uri = uri.as_str().ok_or(format!("uri is not a string: {uri}"))?;
    let path = uri_path(uri);
    if !path.starts_with(root) {
        return Err(format!(
            "{uri} is not inside the workspace {}",
            root.display()
        ));
    }
    if path != root.join(file) {
        return Err(format!("{uri} is not {file}"));
    }
    if let Some(range) = range {
        let start = range["start"]["line"].as_u64();
        let end = range["end"]["line"].as_u64();
        if !start.zip(end).is_some_and(|(s, e)| s <= line && line <= e) {
            return Err(format!(
                "range {range} of {file} does not cover 0-based line {line}"
            ));
        }
    }
    Ok(())
}

#[test]
fn nvim_finds_code_by_meaning_through_the_language_server() {
    let ws = Workspace::from_fixture("sample-repo");
    let run = run_smoke(&ws);
    let diagnostics = run.diagnostics();
    eprintln!("nvim finished in {:.1?}", run.elapsed);

    assert!(
        run.status.is_some_and(|s| s.success()),
        "the Neovim script failed\n{diagnostics}"
    );
    let result = run
        .result
        .as_ref()
        .unwrap_or_else(|| panic!("the script wrote no JSON result\n{diagnostics}"));
    assert!(
        result["error"].is_null(),
        "the script reported an error\n{diagnostics}"
    );

    let root = ws.root().canonicalize().expect("canonical workspace root");
    let check = |ok: bool, what: &str| assert!(ok, "{what}\n{diagnostics}");

    // The client attached at the fixture root, and the server advertised what we use.
    check(
        result["client"]["root_dir"].as_str().map(PathBuf::from) == Some(root.clone()),
        "the client's root_dir is not the workspace root",
    );
    let caps = &result["client"]["capabilities"];
    check(
        caps["workspaceSymbolProvider"].as_bool() == Some(true)
            || caps["workspaceSymbolProvider"].is_object(),
        "no workspaceSymbolProvider",
    );

    // Background indexing reported progress and finished with the whole fixture.
    let progress = list(&result["progress"]);
    for kind in ["begin", "end"] {
        check(
            progress.iter().any(|p| p["kind"] == kind),
            &format!("no $/progress {kind}"),
        );
    }
    let status = &result["status"];
    check(status["indexing"] == false, "indexStatus.indexing");
    check(status["pending"] == 0, "indexStatus.pending");
    check(status["files"] == 6, "indexStatus.files is not 6");
    check(
        status["chunks"].as_u64().is_some_and(|c| c >= 12),
        "indexStatus.chunks < 12",
    );
    check(
        status["embedded"].as_u64() == status["chunks"].as_u64(),
        "indexStatus.embedded != chunks",
    );
    check(
        status["model"].as_str().is_some_and(|m| !m.is_empty()),
        "indexStatus.model is empty",
    );

    // semanticSearch: the expected symbol in the top 3, at the right place.
    let expectations = [
        (
            "how long to wait before retrying a failed request",
            "backoff_delay",
            "src/retry.rs",
            "pub fn backoff_delay",
        ),
        (
            "check that an email address is well formed",
            "ValidateEmail",
            "server/users.go",
            "func ValidateEmail",
        ),
    ];
    let searches = list(&result["searches"]);
    check(searches.len() == expectations.len(), "searches missing");
    for (search, (query, name, file, needle)) in searches.iter().zip(expectations) {
        check(search["query"] == query, "searches out of order");
        let hits = list(&search["results"]);
        check(
            !hits.is_empty() && hits.len() <= 5,
            &format!("{query:?}: {} results for topK 5", hits.len()),
        );
        for hit in &hits {
            check(
                hit["score"].is_number() && hit["name"].is_string(),
                &format!("{query:?}: result without score or name: {hit}"),
            );
        }
        let names: Vec<&str> = hits.iter().filter_map(|h| h["name"].as_str()).collect();
        let hit = hits
            .iter()
            .take(3)
            .find(|h| h["name"] == name)
            .unwrap_or_else(|| {
                panic!("{name} not in the top 3 for {query:?}: {names:?}\n{diagnostics}")
            });
        if let Err(wrong) = check_location(
            &root,
            &hit["uri"],
            Some(&hit["range"]),
            file,
            line_of(&root.join(file), needle),
        ) {
            panic!("semanticSearch {query:?}: {wrong}\n{diagnostics}");
        }
    }

    // workspace/symbol with a sentence is answered semantically.
    let symbols = &result["workspace_symbol"];
    let symbols = list(&symbols["results"]);
    let names: Vec<&str> = symbols.iter().filter_map(|s| s["name"].as_str()).collect();
    let symbol = symbols
        .iter()
        .take(3)
        .find(|s| s["name"] == "backoff_delay")
        .unwrap_or_else(|| {
            panic!("backoff_delay not in the top 3 of workspace/symbol: {names:?}\n{diagnostics}")
        });
    let location = &symbol["location"];
    let range = location.get("range");
    if let Err(wrong) = check_location(
        &root,
        &location["uri"],
        range,
        "src/retry.rs",
        line_of(&root.join("src/retry.rs"), "pub fn backoff_delay"),
    ) {
        panic!("workspace/symbol: {wrong}\n{diagnostics}");
    }

    // Hover over a call answered (the script fails on an error response); what it shows is the
    // server's business, but it is LSP-shaped.
    check(
        result["hover"].is_null() || !result["hover"]["contents"].is_null(),
        "hover without contents",
    );

    // shutdown + exit: the server went away cleanly.
    check(
        result["server_exit"]["code"] == 0,
        "the server did not exit with code 0 after shutdown/exit",
    );
}
