//! End-to-end tests of `coder-lsp train mine` and `coder-lsp train train`: the real binary on the
//! sample fixture given a test file and a small git history, checked against the index the real
//! `coder-lsp` builds.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use coder_tests::{Workspace, success, trainer};

fn fixture() -> Workspace {
    Workspace::sample_with_history()
}

fn mine(ws: &Workspace, out: &Path, extra: &[&str]) -> std::process::Output {
    trainer()
        .arg("mine")
        .arg("--root")
        .arg(ws.root())
        .arg("--out")
        .arg(out)
        .args(extra)
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("CODER_LSP_MODEL")
        .output()
        .expect("run coder-lsp train")
}

fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON pair per line"))
        .collect()
}

#[test]
fn mine_writes_split_jsonl_and_a_summary() {
    let ws = fixture();
    let out = ws.dir.path().join("pairs");
    let output = mine(&ws, &out, &["--json", "--seed", "3", "--heldout", "0.3"]);
    let summary: serde_json::Value =
        serde_json::from_str(success(&output).trim()).expect("one JSON summary");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("reading files"),
        "progress on stderr"
    );

    let train = read_jsonl(&out.join("train.jsonl"));
    let heldout = read_jsonl(&out.join("heldout.jsonl"));
    let pairs: Vec<&serde_json::Value> = train.iter().chain(&heldout).collect();
    assert_eq!(
        summary["pairs"].as_u64(),
        Some(pairs.len() as u64),
        "{summary}"
    );
    assert_eq!(summary["train"]["pairs"].as_u64(), Some(train.len() as u64));
    assert_eq!(
        summary["heldout"]["pairs"].as_u64(),
        Some(heldout.len() as u64)
    );
    assert!(!train.is_empty() && !heldout.is_empty(), "{summary}");
    assert_eq!(summary["stats"]["history"]["commits"], 2, "{summary}");

    // Counts per family and per source add up to the pairs written.
    for key in ["by_family", "by_source"] {
        let total: u64 = summary[key]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(total, pairs.len() as u64, "{key}: {summary}");
    }
    for family in ["text2code", "code2text", "code2code", "hybrid"] {
        assert!(
            summary["by_family"][family].as_u64().unwrap() > 0,
            "{family}: {summary}"
        );
    }

    // No file on both sides of the split.
    let files = |set: &[serde_json::Value]| -> HashSet<String> {
        set.iter()
            .map(|p| p["file"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(files(&train).is_disjoint(&files(&heldout)));
    // Ignored and minified files contribute nothing.
    assert!(pairs.iter().all(|p| {
        let file = p["file"].as_str().unwrap();
        !file.starts_with("build/") && !file.ends_with(".min.js")
    }));

    let find = |source: &str, symbol: &str| {
        pairs
            .iter()
            .find(|p| p["source"] == source && p["symbol"] == symbol)
            .unwrap_or_else(|| panic!("no {source} pair for {symbol}: {summary}"))
    };
    let doc = find("doc_comment", "backoff_delay");
    assert_eq!(doc["family"], "text2code");
    assert!(
        !doc["positive"]
            .as_str()
            .unwrap()
            .contains("doubles every time")
    );
    let commit = find("commit", "backoff_delay");
    assert_eq!(
        commit["query"],
        "Cap the retry backoff exponent so huge attempt counts cannot overflow"
    );
    let test = find("test", "load_settings");
    assert!(
        test["query"]
            .as_str()
            .unwrap()
            .contains("def test_load_settings_fills_defaults")
    );
    find("call_site", "load_settings");

    // Positives for code are exactly what the index stores and embeds.
    ws.json("index", &[]);
    let db = rusqlite::Connection::open(ws.index_dir().join("store.sqlite")).expect("open store");
    let mut statement = db.prepare("SELECT text FROM chunks").unwrap();
    let chunks: HashSet<String> = statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for pair in &pairs {
        if ["signature", "readme", "test", "call_site", "commit"]
            .contains(&pair["source"].as_str().unwrap())
        {
            assert!(
                chunks.contains(pair["positive"].as_str().unwrap()),
                "not an indexed chunk: {pair}"
            );
        }
    }

    // The same seed gives the same files; the human summary names families and sources.
    let again = ws.dir.path().join("again");
    let output = mine(&ws, &again, &["--seed", "3", "--heldout", "0.3"]);
    let text = success(&output);
    assert!(text.contains("by family: text2code"), "{text}");
    assert!(text.contains("git history: 2 commits read"), "{text}");
    for name in ["train.jsonl", "heldout.jsonl"] {
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(again.join(name)).unwrap(),
            "{name} differs between two runs with one seed"
        );
    }
}

#[test]
fn mine_without_git_skips_history_and_bad_input_is_a_clear_error() {
    let ws = Workspace::from_fixture("sample-repo");
    let out = ws.dir.path().join("pairs");
    let output = mine(&ws, &out, &["--json"]);
    let summary: serde_json::Value = serde_json::from_str(success(&output).trim()).unwrap();
    assert_eq!(summary["by_source"]["commit"], 0, "{summary}");
    assert!(
        summary["stats"]["history"]["skipped"].is_string(),
        "{summary}"
    );
    assert!(summary["pairs"].as_u64().unwrap() > 0);

    let missing = trainer()
        .args(["mine", "--root", "/definitely/not/here", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("/definitely/not/here") && stderr.contains("does not exist"),
        "{stderr}"
    );

    let file_root = trainer()
        .arg("mine")
        .arg("--root")
        .arg(ws.root().join("README.md"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!file_root.status.success());
    assert!(
        String::from_utf8_lossy(&file_root.stderr).contains("is not a directory"),
        "{file_root:?}"
    );

    let bad_fraction = mine(&ws, &out, &["--heldout", "1.5"]);
    assert!(!bad_fraction.status.success());
    assert!(
        String::from_utf8_lossy(&bad_fraction.stderr).contains("not between 0 and 1"),
        "{bad_fraction:?}"
    );
}

/// A repository in a language read as plain text (here Haskell) mines nothing; fine-tuning says
/// so instead of only asking for documented functions.
#[test]
fn fine_tuning_a_plain_text_language_says_why_nothing_was_mined() {
    let ws = Workspace::from_fixture("sample-repo");
    let root = ws.root();
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    for i in 0..6 {
        std::fs::write(
            root.join(format!("src/Codec{i}.hs")),
            format!(
                "module Codec{i} (encode) where\n\n-- | Encodes values of kind {i} as JSON text.\nencode :: Int -> String\nencode value = show value\n"
            ),
        )
        .unwrap();
    }
    let output = ws.command("fine-tune").output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("6 of its 6 files are read as plain text") && stderr.contains("Haskell"),
        "{stderr}"
    );
}

/// `coder-lsp train train` on what `mine` wrote, with tiny settings: JSON-line events, a report,
/// and an adapter that `coder-lsp --adapter` loads if (and only if) it beat the base model.
#[test]
fn train_reports_events_and_writes_an_adapter_only_when_better() {
    let ws = fixture();
    let data = ws.dir.path().join("pairs");
    success(&mine(&ws, &data, &["--heldout", "0.3"]));
    let out = ws.dir.path().join("adapter");
    let output = trainer()
        .args(["train", "--json", "--batch-size", "4", "--max-tokens", "48"])
        .args(["--max-steps-per-stage", "1", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let text = success(&output);
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"phase"), "{kinds:?}");
    assert!(kinds.contains(&"stage_started"), "{kinds:?}");
    let steps: Vec<&serde_json::Value> = events.iter().filter(|e| e["event"] == "step").collect();
    assert!(!steps.is_empty(), "{kinds:?}");
    assert!(
        steps
            .iter()
            .all(|s| s["loss"].as_f64().unwrap().is_finite())
    );
    assert_eq!(kinds.last(), Some(&"report"), "the report comes last");
    let report = &events.last().unwrap()["report"];
    assert!(out.join("fine-tune-report.json").is_file());
    if report["accepted"] == true {
        assert!(out.join("adapter.json").is_file() && out.join("adapter.safetensors").is_file());
        // The server loads it as another model.
        let status = Command::new(coder_tests::binary())
            .args(["status", "--json", "--root"])
            .arg(ws.root())
            .arg("--index-dir")
            .arg(ws.dir.path().join("index"))
            .arg("--adapter")
            .arg(&out)
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap();
        success(&status);
    } else {
        assert!(
            !out.join("adapter.json").exists(),
            "a worse adapter was written"
        );
    }

    // No mined data: a clear error that says what to run.
    let missing = trainer()
        .args(["train", "--data"])
        .arg(ws.dir.path().join("nothing"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("coder-lsp train mine"),
        "{missing:?}"
    );
}
