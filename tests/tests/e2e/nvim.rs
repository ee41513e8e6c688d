//! End-to-end test of the language server in a real editor: headless Neovim (installed by
//! `scripts/setup-tests` through `scripts/fetch-nvim`) runs `tests/nvim/lsp_smoke.lua`, which starts
//! `coder-lsp serve` with `vim.lsp.config`/`vim.lsp.enable` on a copy of the sample fixture, waits
//! for the background index, and runs `semanticSearch` and `workspace/symbol`. The script writes
//! what it saw as JSON; the assertions are here.

use std::path::Path;
use std::time::Duration;

use coder_tests::Workspace;
use coder_tests::editor::{NvimRun, line_of, list, run_nvim_script, uri_path};
use serde_json::Value;

/// Neovim is killed after this long; the script's own bounds are shorter.
const NVIM_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the script waits for the index to be complete.
const INDEX_TIMEOUT_MS: u64 = 90_000;

/// Runs `tests/nvim/lsp_smoke.lua` in headless Neovim against `ws`.
fn run_smoke(ws: &Workspace) -> NvimRun {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("nvim/lsp_smoke.lua");
    run_nvim_script(
        ws,
        &script,
        &[(
            "CODER_LSP_TEST_INDEX_TIMEOUT_MS",
            INDEX_TIMEOUT_MS.to_string(),
        )],
        NVIM_TIMEOUT,
    )
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
    eprintln!("nvim finished in {:.1?}", run.run.elapsed);
    let result = run.checked_result();

    let root = ws.root().canonicalize().expect("canonical workspace root");
    let check = |ok: bool, what: &str| assert!(ok, "{what}\n{diagnostics}");

    // The client attached at the fixture root, and the server advertised what we use.
    check(
        result["client"]["root_dir"]
            .as_str()
            .map(std::path::PathBuf::from)
            == Some(root.clone()),
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
