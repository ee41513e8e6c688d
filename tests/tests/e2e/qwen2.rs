//! End-to-end tests of the Qwen2 (CodeR / bge-code-v1) path through the real binary, with the
//! tiny random-weight checkpoint in `server/testdata/tiny-qwen2` standing in for the real
//! weights: random weights rank nothing well, so these tests check that the whole pipeline
//! runs, that vectors have the model's size and that they are kept apart from MiniLM's.

use std::path::PathBuf;

use coder_tests::{Workspace, result_names};

fn tiny_qwen2() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/testdata/tiny-qwen2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} is missing",
        dir.display()
    );
    dir.to_str().expect("utf-8 path").to_string()
}

fn failure(ws: &Workspace, subcommand: &str, args: &[&str]) -> String {
    let output = ws
        .command(subcommand)
        .args(args)
        .output()
        .expect("run coder-lsp");
    assert!(!output.status.success(), "{subcommand} {args:?} succeeded");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn indexes_and_searches_with_a_qwen2_model_beside_minilm() {
    let ws = Workspace::from_fixture("sample-repo");
    let minilm = ws.json("index", &[]);
    let minilm_status = ws.json("status", &[]);
    assert_eq!(minilm_status["dimensions"], 384);

    let model = tiny_qwen2();
    let indexed = ws.json("index", &["--model", &model]);
    assert_eq!(indexed["chunks"], minilm["chunks"], "{indexed}");
    assert_eq!(
        indexed["embedded"], minilm["embedded"],
        "a new model re-embeds every chunk: {indexed}"
    );
    let status = ws.json("status", &["--model", &model]);
    assert_eq!(status["dimensions"], 64, "{status}");
    assert_eq!(status["embedded_chunks"], indexed["chunks"], "{status}");
    assert_eq!(status["pending"], 0, "{status}");
    assert_ne!(status["fingerprint"], minilm_status["fingerprint"]);

    let answer = ws.json(
        "search",
        &[
            "--model",
            &model,
            "--top-k",
            "3",
            "--no-update",
            "escape html",
        ],
    );
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), 3, "{answer}");
    for hit in results {
        let score = hit["score"].as_f64().expect("score");
        assert!((-1.0..=1.0).contains(&score), "{hit}");
    }

    // A custom instruction changes the query vector, not the stored documents.
    let custom = ws.json(
        "search",
        &[
            "--model",
            &model,
            "--instruction",
            "search=Find code.",
            "--top-k",
            "3",
            "escape html",
        ],
    );
    assert_eq!(custom["results"].as_array().map(Vec::len), Some(3));
    let unchanged = ws.json("status", &["--model", &model]);
    assert_eq!(unchanged["embedded_chunks"], status["embedded_chunks"]);

    // MiniLM's vectors were kept: switching back embeds nothing and still ranks well.
    let back = ws.json("index", &[]);
    assert_eq!(back["embedded"], 0, "{back}");
    let answer = ws.json(
        "search",
        &["--top-k", "3", "escape html special characters"],
    );
    assert_eq!(result_names(&answer)[0], "escapeHtml", "{answer}");
}

#[test]
fn devices_this_build_lacks_and_bad_options_are_clear_errors() {
    let ws = Workspace::from_fixture("sample-repo");
    let stderr = failure(&ws, "index", &["--device", "tpu"]);
    assert!(stderr.contains("unknown device"), "{stderr}");
    if !coder_lsp::embed::DeviceSpec::Cuda(0).is_compiled() {
        let stderr = failure(
            &ws,
            "index",
            &["--model", &tiny_qwen2(), "--device", "cuda:0"],
        );
        assert!(stderr.contains("`cuda` feature"), "{stderr}");
    }
    if !coder_lsp::embed::DeviceSpec::Metal.is_compiled() {
        let stderr = failure(&ws, "index", &["--device", "metal"]);
        assert!(stderr.contains("`metal` feature"), "{stderr}");
    }
    let stderr = failure(&ws, "search", &["--instruction", "nope=x", "query"]);
    assert!(stderr.contains("unknown instruction task"), "{stderr}");
}

#[test]
fn the_bge_code_v1_alias_names_the_hub_model() {
    let ws = Workspace::from_fixture("sample-repo");
    // The hub is off in tests (and unreachable here), so the alias must say what it looked for.
    let stderr = failure(&ws, "index", &["--model", "bge-code-v1"]);
    assert!(stderr.contains("BAAI/bge-code-v1"), "{stderr}");
    assert!(stderr.contains("not on this machine"), "{stderr}");
}

#[test]
fn fine_tunes_a_qwen2_model_with_coders_lora_settings() {
    let ws = Workspace::sample_with_history();
    let model = tiny_qwen2();
    let base = ws.json("index", &["--model", &model]);
    let outcome = ws.json(
        "fine-tune",
        &[
            "--model",
            &model,
            "--heldout",
            "0.3",
            "--max-steps-per-stage",
            "2",
            "--batch-size",
            "4",
            "--max-tokens",
            "48",
        ],
    );
    let report = &outcome["report"];
    // Qwen2 gets CodeR's settings unless told otherwise: rank 32, alpha 64, 1e-4 → 1e-5.
    assert_eq!(report["settings"]["lora"]["rank"], 32, "{report}");
    assert_eq!(report["settings"]["lora"]["alpha"], 64.0, "{report}");
    assert_eq!(report["settings"]["learning_rate"], 1e-4, "{report}");
    assert_eq!(
        report["settings"]["cooldown_learning_rate"], 1e-5,
        "{report}"
    );
    let steps: u64 = report["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s["steps"].as_u64().expect("steps"))
        .sum();
    assert!(steps >= 2, "the model trained: {report}");
    let losses_finite = report["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .flat_map(|s| s["losses"].as_array().cloned().unwrap_or_default())
        .all(|l| l.as_f64().is_some_and(f64::is_finite));
    assert!(losses_finite, "{report}");
    assert!(outcome["heldout_queries"].as_u64() > Some(0), "{outcome}");

    let adapter = ws.index_dir().join("adapter");
    if outcome["accepted"] == true {
        // The adapter is Qwen2's, and the next index embeds everything again with it.
        let meta: serde_json::Value = serde_json::from_slice(
            &std::fs::read(adapter.join("adapter.json")).expect("adapter.json"),
        )
        .expect("json");
        assert_eq!(meta["architecture"], "qwen2", "{meta}");
        assert_eq!(meta["rank"], 32, "{meta}");
        let adapted = ws.json("index", &["--model", &model]);
        assert_eq!(adapted["embedded"], base["embedded"], "{adapted}");
    } else {
        assert!(!adapter.exists(), "a rejected adapter is not installed");
    }
}
