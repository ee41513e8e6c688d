//! End-to-end test of the Neovim plugin (`extensions/nvim`) in a real headless Neovim: the
//! plugin is loaded from the repository, `require('coder_lsp').setup()` starts the real server on
//! a copy of the sample fixture, and `tests/nvim/plugin_e2e.lua` runs every user command and
//! `:checkhealth coder`. The script writes what each produced as JSON; the assertions are here.

use std::path::Path;
use std::time::Duration;

use coder_tests::Workspace;
use coder_tests::editor::{line_of, list, repo_root, run_nvim_script};
use serde_json::Value;

/// Neovim is killed after this long; the script's own waits are shorter.
const NVIM_TIMEOUT: Duration = Duration::from_secs(240);

/// The strings of a JSON list.
fn strings(value: &Value) -> Vec<String> {
    list(value)
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

#[test]
fn nvim_plugin_commands_search_similar_context_status_reindex_and_health() {
    let ws = Workspace::from_fixture("sample-repo");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("nvim/plugin_e2e.lua");
    let plugin = repo_root().join("extensions/nvim");
    let run = run_nvim_script(
        &ws,
        &script,
        &[("CODER_LSP_TEST_PLUGIN", plugin.display().to_string())],
        NVIM_TIMEOUT,
    );
    let diagnostics = run.diagnostics();
    eprintln!("nvim finished in {:.1?}", run.run.elapsed);
    let result = run.checked_result();
    let check = |ok: bool, what: &str| assert!(ok, "{what}\n{diagnostics}");

    let root = ws.root().canonicalize().expect("canonical workspace root");
    let backoff_line = line_of(&root.join("src/retry.rs"), "pub fn backoff_delay") + 1;

    check(
        result["commands_before_setup"] == true,
        "plugin/coder_lsp.lua did not define :CoderSearch",
    );
    check(
        result["root_dir"].as_str() == root.to_str(),
        "the client's root_dir is not the workspace root",
    );

    // Indexing progress arrived as LspProgress, and the statusline helper followed it.
    let progress = list(&result["progress"]);
    let kinds: Vec<&str> = progress
        .iter()
        .filter(|p| p["client"] == "coder_lsp")
        .filter_map(|p| p["kind"].as_str())
        .collect();
    check(
        kinds.first() == Some(&"begin") && kinds.contains(&"end"),
        "no LspProgress begin … end from coder_lsp",
    );
    check(
        strings(&result["statusline"])
            .iter()
            .any(|s| s.starts_with("coder-lsp ") && s.ends_with('%')),
        "statusline() never showed a percentage while indexing",
    );

    // :CoderSearch filled the quickfix list (topK 5) and opened it.
    let search = &result["search"];
    let items = list(&search["items"]);
    check(
        !items.is_empty() && items.len() <= 5,
        "the quickfix list does not hold 1–5 results for topK 5",
    );
    check(
        search["window_open"] == true,
        "the quickfix window is not open",
    );
    check(
        items.iter().take(3).any(|i| {
            i["file"] == "src/retry.rs"
                && i["lnum"].as_u64() == Some(backoff_line)
                && i["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("backoff_delay (function)"))
        }),
        "backoff_delay (src/retry.rs, its first line) is not in the top 3 of the quickfix list",
    );

    // :CoderSimilar on backoff_delay's lines: results, none of them the range itself.
    let range = list(&result["similar_range"]);
    let (first, last) = (
        range[0].as_u64().unwrap_or(0),
        range[1].as_u64().unwrap_or(0),
    );
    check(
        first == backoff_line,
        "the similar range does not start at backoff_delay",
    );
    let similar = &result["similar"];
    check(
        similar["title"] == format!("coder-lsp: similar to src/retry.rs:{first}-{last}").as_str(),
        "the quickfix title does not name the range",
    );
    let similar_items = list(&similar["items"]);
    check(!similar_items.is_empty(), ":CoderSimilar found nothing");
    for item in &similar_items {
        let (lnum, end) = (
            item["lnum"].as_u64().unwrap_or(0),
            item["end_lnum"].as_u64().unwrap_or(0),
        );
        check(
            !(item["file"] == "src/retry.rs" && lnum <= last && end >= first),
            &format!(":CoderSimilar returned code overlapping the range itself: {item}"),
        );
        check(
            item["file"]
                .as_str()
                .is_some_and(|f| root.join(f).is_file()),
            &format!(":CoderSimilar returned a file outside the workspace: {item}"),
        );
    }

    // :CoderSearch! offered the results to vim.ui.select; choosing one jumped to it.
    let select = &result["select"];
    check(
        strings(&select["offered"]["items"])
            .contains(&format!("backoff_delay  src/retry.rs:{backoff_line}")),
        "vim.ui.select was not offered backoff_delay with its location",
    );
    check(
        select["file"] == "src/retry.rs" && select["line"].as_u64() == Some(backoff_line),
        "choosing backoff_delay did not jump to its first line",
    );

    // :CoderContext opened a read-only scratch buffer with the packed code.
    let context = &result["context"];
    let lines = strings(&context["lines"]);
    check(
        context["buftype"] == "nofile" && context["modifiable"] == false,
        "the context buffer is not a read-only scratch buffer",
    );
    check(
        lines.first().is_some_and(|l| {
            l.starts_with("# coder-lsp context for: how long to wait before retrying")
        }),
        "the context buffer has no heading",
    );
    let header = format!("--- src/retry.rs:{backoff_line}-");
    check(
        lines.iter().any(|l| l.starts_with(&header))
            && lines.iter().any(|l| l.contains("pub fn backoff_delay")),
        "the context does not include backoff_delay with its header",
    );

    // :CoderStatus and :CoderReindex told the user; the reindex ran with progress.
    let status = result["status_message"].as_str().unwrap_or_default();
    check(
        status.starts_with("coder-lsp index up to date: 6 files")
            && status.contains("all-MiniLM-L6-v2 (ready"),
        ":CoderStatus did not report the complete index and the model",
    );
    check(
        result["reindex_message"] == "coder-lsp: reindexing in the background",
        ":CoderReindex did not confirm",
    );
    check(
        list(&result["reindex_progress"])
            .iter()
            .any(|p| p["kind"] == "end"),
        "the reindex run reported no progress end",
    );

    // :CoderFineTune runs a real (short) fine-tune and shows its outcome.
    let fine_tune = result["fine_tune_message"]["message"]
        .as_str()
        .unwrap_or_default();
    check(
        strings(&result["server_commands"]).contains(&"fineTune".to_string()),
        "the server does not list fineTune",
    );
    check(
        fine_tune.starts_with("coder-lsp: fine-tuning finished: held-out nDCG@10"),
        ":CoderFineTune did not report the outcome of the run",
    );

    // :checkhealth coder: version, binary, enabled, model, and the running server.
    let health = strings(&result["health"]).join("\n");
    for needle in [
        "OK Neovim 0.1",
        "OK server: ",
        "OK enabled",
        "OK model sentence-transformers/all-MiniLM-L6-v2 is in the cache",
        "coder-lsp index up to date: 6 files",
    ] {
        check(
            health.contains(needle),
            &format!(":checkhealth coder lacks {needle:?}:\n{health}"),
        );
    }
    check(
        !health.contains("ERROR"),
        &format!(":checkhealth coder reports an error:\n{health}"),
    );
}

/// The plain install of doc/coder-lsp.txt: a link in a 'packpath' folder, `:packadd`, and
/// `setup()` without a path finds `coder-lsp` on PATH.
#[test]
fn nvim_plugin_installs_with_packadd_and_finds_the_server_on_path() {
    let ws = Workspace::from_fixture("sample-repo");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("nvim/packadd.lua");
    let bin_dir = coder_tests::binary()
        .parent()
        .expect("the binary has a folder")
        .to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let run = run_nvim_script(
        &ws,
        &script,
        &[
            (
                "CODER_LSP_TEST_PLUGIN",
                repo_root().join("extensions/nvim").display().to_string(),
            ),
            (
                "CODER_LSP_TEST_PACK",
                ws.dir.path().join("pack").display().to_string(),
            ),
            ("PATH", path.to_string_lossy().into_owned()),
        ],
        Duration::from_secs(120),
    );
    let diagnostics = run.diagnostics();
    let result = run.checked_result();
    let check = |ok: bool, what: &str| assert!(ok, "{what}\n{diagnostics}");
    check(
        result["commands_before_packadd"] == false && result["commands_after_packadd"] == true,
        ":packadd coder-lsp did not define the commands",
    );
    check(
        result["attached"] == true,
        "the server did not attach to src/retry.rs",
    );
    check(
        list(&result["cmd"]) == vec![Value::from("coder-lsp"), Value::from("serve")],
        "the client did not start `coder-lsp serve` from PATH",
    );
    check(
        result["server_name"] == "coder-lsp",
        "the server that answered is not coder-lsp",
    );
}
