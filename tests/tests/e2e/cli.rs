//! End-to-end tests of the `coder-lsp` command line: the real binary, the real default model
//! (installed by `scripts/setup`), a fixture repository copied into a temporary directory.

use std::fs;

use coder_tests::{Workspace, binary, result_names, success, write_adapter};

fn search(ws: &Workspace, query: &str) -> serde_json::Value {
    ws.json("search", &["--top-k", "5", query])
}

#[test]
fn plain_english_queries_find_the_expected_function() {
    let ws = Workspace::from_fixture("sample-repo");
    let stats = ws.json("index", &[]);
    assert_eq!(stats["files"], 6, "{stats}");
    assert!(stats["chunks"].as_u64().unwrap() >= 12, "{stats}");
    assert_eq!(
        stats["embedded"].as_u64(),
        stats["chunks"]
            .as_u64()
            .map(|c| c.min(stats["embedded"].as_u64().unwrap()))
    );
    assert_eq!(stats["removed"], 0);
    assert!(stats["seconds"].as_f64().is_some());
    assert!(stats["reused"].is_u64());

    let cases = [
        (
            "how long to wait before retrying a failed request",
            "backoff_delay",
        ),
        (
            "read the settings file and fill in default values",
            "load_settings",
        ),
        (
            "check that an email address is well formed",
            "ValidateEmail",
        ),
        (
            "wait until the user stops typing before calling a function",
            "debounce",
        ),
        (
            "environment variables override configuration values",
            "env_override",
        ),
    ];
    for (query, expected) in cases {
        let answer = search(&ws, query);
        assert_eq!(answer["query"], query);
        let names = result_names(&answer);
        assert!(
            names.iter().take(3).any(|n| n == expected),
            "{expected} not in the top 3 for {query:?}: {names:?}"
        );
    }
}

#[test]
fn search_json_has_the_documented_shape() {
    let ws = Workspace::from_fixture("sample-repo");
    let answer = search(&ws, "exponential backoff delay");
    let first = &answer["results"][0];
    assert_eq!(first["name"], "backoff_delay");
    assert_eq!(first["path"], "src/retry.rs");
    assert_eq!(first["kind"], "function");
    assert_eq!(first["start_line"], 6);
    assert_eq!(first["end_line"], 9);
    // Hybrid scores are in units of a symbol first in every list, boosts added (not capped at 1).
    let score = first["score"].as_f64().unwrap();
    assert!(score > 0.0 && score.is_finite(), "{score}");
    // Scores are sorted best first.
    let scores: Vec<f64> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
}

#[test]
fn ignored_binary_and_minified_files_are_never_indexed() {
    let ws = Workspace::from_fixture("sample-repo");
    ws.json("index", &[]);
    for query in [
        "generated output",
        "function a return 1",
        "PNG image header",
    ] {
        let answer = ws.json("search", &["--top-k", "20", query]);
        for result in answer["results"].as_array().unwrap() {
            let path = result["path"].as_str().unwrap();
            assert!(
                !matches!(
                    path,
                    "build/generated.rs" | "web/vendor.min.js" | "src/logo.rs"
                ),
                "{path} should have been skipped"
            );
        }
    }
}

#[test]
fn changing_one_function_re_embeds_exactly_its_chunk() {
    let ws = Workspace::from_fixture("sample-repo");
    let first = ws.json("index", &[]);
    assert!(first["embedded"].as_u64().unwrap() > 0);

    let again = ws.json("index", &[]);
    assert_eq!(
        (again["changed"].as_u64(), again["embedded"].as_u64()),
        (Some(0), Some(0)),
        "{again}"
    );

    let path = ws.root().join("server/users.go");
    let source = fs::read_to_string(&path).unwrap();
    fs::write(&path, source.replace("Welcome back, ", "Hello again, ")).unwrap();
    let after = ws.json("index", &[]);
    assert_eq!(after["changed"], 1, "{after}");
    assert_eq!(after["embedded"], 1, "only Greeting changed: {after}");
    assert_eq!(after["files"], first["files"]);
    assert_eq!(after["chunks"], first["chunks"]);

    // Reverting costs nothing: the old text is still in the embedding cache.
    fs::write(&path, source).unwrap();
    let reverted = ws.json("index", &[]);
    assert_eq!(reverted["embedded"], 0, "{reverted}");
    assert_eq!(
        reverted["reused"], 3,
        "User, ValidateEmail and Greeting: {reverted}"
    );

    let status = ws.json("status", &[]);
    assert_eq!(status["chunks"], first["chunks"]);
    assert_eq!(status["embedded_chunks"], first["chunks"]);
    assert_eq!(status["pending"], 0);
    assert_eq!(status["index_dir"], ws.index_dir().to_str().unwrap());
    assert_eq!(status["fingerprint"].as_str().unwrap().len(), 16);
}

#[test]
fn a_deleted_file_disappears_from_results() {
    let ws = Workspace::from_fixture("sample-repo");
    ws.json("index", &[]);
    assert!(
        result_names(&search(&ws, "validate an email address"))
            .contains(&"ValidateEmail".to_string())
    );
    fs::remove_file(ws.root().join("server/users.go")).unwrap();
    let stats = ws.json("index", &[]);
    assert_eq!(stats["removed"], 1, "{stats}");
    let answer = ws.json("search", &["--top-k", "50", "validate an email address"]);
    for result in answer["results"].as_array().unwrap() {
        assert_ne!(result["path"], "server/users.go");
    }
}

#[test]
fn search_updates_the_index_first() {
    let ws = Workspace::from_fixture("sample-repo");
    ws.json("index", &[]);
    fs::write(
        ws.root().join("src/checksum.py"),
        "def crc32_of_file(path):\n    \"\"\"Compute the CRC-32 checksum of a file's bytes.\"\"\"\n    import zlib\n    with open(path, 'rb') as f:\n        return zlib.crc32(f.read())\n",
    )
    .unwrap();
    let names = result_names(&search(&ws, "checksum of a file's contents"));
    assert_eq!(
        names.first().map(String::as_str),
        Some("crc32_of_file"),
        "{names:?}"
    );
}

#[test]
fn stdin_answers_one_json_line_per_query() {
    let ws = Workspace::from_fixture("sample-repo");
    let (stdout, _) = search_stdin(
        &ws,
        &[],
        "escape html special characters\n\nwelcome message after login\n",
    );
    let answers = json_lines(&stdout);
    assert_eq!(answers.len(), 2, "blank lines are skipped: {stdout}");
    assert_eq!(answers[0]["query"], "escape html special characters");
    assert_eq!(result_names(&answers[0])[0], "escapeHtml");
    assert_eq!(result_names(&answers[1])[0], "Greeting");
}

/// `search --stdin --json --top-k 3` with `args` and `queries` on its standard input: its stdout
/// (after asserting it succeeded) and stderr.
fn search_stdin(ws: &Workspace, args: &[&str], queries: &str) -> (String, String) {
    use std::io::Write;
    let mut child = ws
        .command("search")
        .args(args)
        .args(["--stdin", "--json", "--top-k", "3"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start coder-lsp search --stdin");
    child
        .stdin
        .take()
        .expect("a piped stdin")
        .write_all(queries.as_bytes())
        .expect("write the queries");
    let output = child.wait_with_output().expect("wait for coder-lsp");
    let stdout = success(&output);
    (stdout, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// One JSON value per line.
fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn a_different_model_never_reuses_another_models_vectors() {
    let ws = Workspace::from_fixture("sample-repo");
    let first = ws.json("index", &[]);
    let status = ws.json("status", &[]);
    let model_dir = std::path::PathBuf::from(status["model_dir"].as_str().unwrap());

    // Same weights, different settings: a different model as far as vectors are concerned.
    let other = ws.dir.path().join("other-model");
    fs::create_dir_all(&other).unwrap();
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::os::unix::fs::symlink(model_dir.join(file), other.join(file)).unwrap();
    }
    fs::write(
        other.join("sentence_bert_config.json"),
        r#"{"max_seq_length": 128}"#,
    )
    .unwrap();
    let other = other.to_str().unwrap();
    let switched = ws.json("index", &["--model", other]);
    // No file changed, but the token limit did: every file is cut again for it, and a symbol
    // longer than 128 tokens becomes two chunks (it used to be embedded cut short).
    assert_eq!(switched["changed"], first["files"], "{switched}");
    assert!(
        switched["chunks"].as_u64() > first["chunks"].as_u64(),
        "{switched}"
    );
    assert_eq!(
        switched["embedded"], switched["chunks"],
        "everything is re-embedded: {switched}"
    );
    let other_status = ws.json("status", &["--model", other]);
    assert_ne!(other_status["fingerprint"], status["fingerprint"]);
    assert_eq!(other_status["embedded_chunks"], switched["chunks"]);

    // Switching back cuts the same chunks again and finds the first model's vectors intact.
    let back = ws.json("index", &[]);
    assert_eq!(back["changed"], first["files"], "{back}");
    assert_eq!(back["chunks"], first["chunks"], "{back}");
    assert_eq!(back["embedded"], 0, "{back}");
}

#[test]
fn a_missing_root_is_a_clear_error() {
    let ws = Workspace::from_fixture("sample-repo");
    let output = std::process::Command::new(coder_tests::binary())
        .args(["index", "--root"])
        .arg(ws.dir.path().join("nope"))
        .arg("--index-dir")
        .arg(ws.index_dir())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_index_dir_that_is_a_file_is_named_with_its_error_once() {
    let ws = Workspace::from_fixture("sample-repo");
    let file = ws.dir.path().join("not-a-directory");
    std::fs::write(&file, "keep me").unwrap();
    let output = std::process::Command::new(coder_tests::binary())
        .args(["index", "--root"])
        .arg(ws.dir.path())
        .arg("--index-dir")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The path, then the system's reason once (it used to follow twice).
    assert!(stderr.contains(&*file.to_string_lossy()), "{stderr}");
    assert_eq!(stderr.matches("(os error").count(), 1, "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

#[test]
fn a_missing_or_malformed_model_is_a_clear_error_and_loses_nothing() {
    let ws = Workspace::from_fixture("sample-repo");
    let indexed = ws.json("index", &[]);

    let missing = ws
        .command("search")
        .args(["--model", "/no/such/model", "retry"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("config.json is missing"), "{stderr}");

    let broken = ws.dir.path().join("broken-model");
    fs::create_dir_all(&broken).unwrap();
    fs::write(broken.join("config.json"), "{ not json").unwrap();
    fs::write(broken.join("tokenizer.json"), "{}").unwrap();
    fs::write(broken.join("model.safetensors"), "tiny").unwrap();
    let output = ws
        .command("index")
        .args(["--model", broken.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("config.json"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The index built with the good model is untouched.
    let status = ws.json("status", &[]);
    assert_eq!(status["chunks"], indexed["chunks"]);
    assert_eq!(status["embedded_chunks"], indexed["chunks"]);
}

#[test]
fn a_corrupt_vector_file_is_rebuilt_from_the_store() {
    let ws = Workspace::from_fixture("sample-repo");
    ws.json("index", &[]);
    let vector_files: Vec<_> = fs::read_dir(ws.index_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "usearch"))
        .collect();
    assert_eq!(vector_files.len(), 1);
    fs::write(&vector_files[0], b"garbage, not an index").unwrap();
    let names = result_names(&ws.json(
        "search",
        &["--no-update", "--top-k", "3", "exponential backoff delay"],
    ));
    assert_eq!(names[0], "backoff_delay");
    // And a deleted one, too.
    fs::remove_file(&vector_files[0]).unwrap();
    let names = result_names(&ws.json("search", &["--top-k", "3", "exponential backoff delay"]));
    assert_eq!(names[0], "backoff_delay");
    assert!(
        vector_files[0].is_file(),
        "the writer saves a fresh vector file"
    );
}

#[test]
fn a_corrupt_store_is_moved_aside_and_the_index_rebuilt() {
    let ws = Workspace::from_fixture("sample-repo");
    let first = ws.json("index", &[]);
    let store = ws.index_dir().join("store.sqlite");
    for side in ["store.sqlite-wal", "store.sqlite-shm"] {
        let _ = fs::remove_file(ws.index_dir().join(side));
    }
    fs::write(&store, b"definitely not sqlite".repeat(100)).unwrap();
    let output = ws.command("index").arg("--json").output().unwrap();
    let stdout = success(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("moved to"), "{stderr}");
    let stats: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(stats["chunks"], first["chunks"]);
}

#[test]
fn text_output_is_readable() {
    let ws = Workspace::from_fixture("sample-repo");
    let output = ws
        .command("search")
        .args(["--top-k", "2", "exponential backoff delay"])
        .output()
        .unwrap();
    let stdout = success(&output);
    let first = stdout.lines().next().unwrap();
    assert!(
        first.contains("src/retry.rs:6-9  function backoff_delay"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 2);
    // Progress and notes never reach stdout.
    assert!(!stdout.contains("embedding"));
}

/// The top result of `search --mode MODE` (the index is built once by the caller).
fn top_in_mode(ws: &Workspace, mode: &str, query: &str) -> Vec<String> {
    let answer = ws.json(
        "search",
        &["--no-update", "--mode", mode, "--top-k", "5", query],
    );
    result_names(&answer)
}

#[test]
fn hybrid_ranks_both_an_exact_identifier_and_a_paraphrase_first() {
    let ws = Workspace::from_fixture("sample-repo");
    ws.json("index", &[]);
    // Lexical-only: a rare identifier from the body of `backoff_delay`.
    let identifier = "saturating_pow";
    // Semantic-only: no word of it appears anywhere in the fixture.
    let paraphrase = "is this mail syntactically valid";
    let lexical = top_in_mode(&ws, "lexical", identifier);
    assert_eq!(
        lexical.first().map(String::as_str),
        Some("backoff_delay"),
        "{lexical:?}"
    );
    assert!(
        top_in_mode(&ws, "lexical", paraphrase).is_empty(),
        "the paraphrase shares no word with the code"
    );
    let dense = top_in_mode(&ws, "dense", paraphrase);
    assert_eq!(
        dense.first().map(String::as_str),
        Some("ValidateEmail"),
        "{dense:?}"
    );
    for (query, expected) in [(identifier, "backoff_delay"), (paraphrase, "ValidateEmail")] {
        let hybrid = top_in_mode(&ws, "hybrid", query);
        assert_eq!(
            hybrid.first().map(String::as_str),
            Some(expected),
            "{query}: {hybrid:?}"
        );
    }
    // Hybrid is the default.
    let default = result_names(&ws.json("search", &["--no-update", paraphrase]));
    assert_eq!(default.first().map(String::as_str), Some("ValidateEmail"));
}

#[test]
fn lexical_search_works_without_the_model_and_bad_modes_are_refused() {
    let ws = Workspace::from_fixture("sample-repo");
    ws.json("index", &[]);
    let missing = ws.dir.path().join("no-such-model");
    let missing = missing.to_str().unwrap();
    let run = |args: &[&str]| ws.command("search").args(args).output().unwrap();

    let output = run(&[
        "--model",
        missing,
        "--mode",
        "lexical",
        "--json",
        "SettingsCache",
    ]);
    let answer: serde_json::Value = serde_json::from_str(success(&output).trim()).unwrap();
    assert_eq!(result_names(&answer)[0], "SettingsCache");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("answering lexically"), "{stderr}");

    // Dense and hybrid ranking need the model: a clear error that points at lexical mode.
    for (args, hint) in [
        (
            vec!["--model", missing, "--mode", "dense", "x"],
            "--mode lexical",
        ),
        (vec!["--model", missing, "x"], "--mode lexical"),
        (vec!["--mode", "fuzzy", "x"], "dense, lexical or hybrid"),
        (vec!["--rrf-k", "0", "x"], "not a positive number"),
        (vec!["--dense-weight=-1", "x"], "not a positive number"),
    ] {
        let output = run(&args);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(hint), "{args:?}: {stderr}");
    }
}

#[test]
fn an_adapter_is_another_model_and_one_for_another_base_is_refused() {
    let ws = Workspace::from_fixture("sample-repo");
    let first = ws.json("index", &[]);
    let status = ws.json("status", &[]);
    let model_dir = std::path::PathBuf::from(status["model_dir"].as_str().unwrap());
    let base = status["fingerprint"].as_str().unwrap();

    let adapter = ws.dir.path().join("adapter");
    write_adapter(&adapter, &model_dir, base);
    let adapter_arg = adapter.to_str().unwrap();
    let adapted = ws.json("index", &["--adapter", adapter_arg]);
    assert_eq!(adapted["changed"], 0, "{adapted}");
    assert_eq!(adapted["embedded"], first["embedded"], "{adapted}");
    let adapted_status = ws.json("status", &["--adapter", adapter_arg]);
    assert_ne!(adapted_status["fingerprint"], status["fingerprint"]);
    let found = ws.json(
        "search",
        &["--adapter", adapter_arg, "escape html special characters"],
    );
    assert_eq!(result_names(&found)[0], "escapeHtml");

    write_adapter(&adapter, &model_dir, "0123456789abcdef");
    let output = ws
        .command("search")
        .args(["--adapter", adapter_arg, "escape html"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("trained on another model"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A test that exercises `backoff_delay` and says as much in its name and body: it matches the
/// question as well as the implementation does.
const RETRY_TEST_RS: &str = r#"use sample::retry::backoff_delay;
use std::time::Duration;

/// How long to wait before retrying a failed request: the delay doubles every attempt.
#[test]
fn wait_before_retrying_a_failed_request_doubles() {
    let base = Duration::from_millis(100);
    let max = Duration::from_secs(30);
    assert_eq!(backoff_delay(0, base, max), base);
    assert_eq!(backoff_delay(1, base, max), base * 2);
    assert_eq!(backoff_delay(20, base, max), max);
}
"#;

fn result_paths(answer: &serde_json::Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["path"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn regression_20_the_implementation_ranks_above_its_test() {
    let ws = Workspace::from_fixture("sample-repo");
    fs::create_dir_all(ws.root().join("tests")).unwrap();
    fs::write(ws.root().join("tests/retry_test.rs"), RETRY_TEST_RS).unwrap();
    let query = "how long to wait before retrying a failed request";
    let answer = ws.json("search", &["--top-k", "5", query]);
    let paths = result_paths(&answer);
    let names = result_names(&answer);
    let implementation = paths.iter().position(|p| p == "src/retry.rs");
    let test = paths.iter().position(|p| p == "tests/retry_test.rs");
    assert_eq!(
        names.first().map(String::as_str),
        Some("backoff_delay"),
        "{names:?}"
    );
    assert!(
        test.is_none_or(|t| implementation.is_some_and(|i| i < t)),
        "{paths:?}"
    );
    // The test is demoted, not dropped, and asking for tests lifts the prior.
    let asked = ws.json(
        "search",
        &[
            "--top-k",
            "5",
            "the test that checks the wait before retrying",
        ],
    );
    assert!(
        result_paths(&asked)
            .iter()
            .any(|p| p == "tests/retry_test.rs"),
        "{asked}"
    );
    // With the prior turned off the test competes on its words alone and wins here: the
    // prior is what keeps it below the implementation.
    let unranked = ws.json(
        "search",
        &["--top-k", "5", "--prior", "test=1", "--no-update", query],
    );
    assert_eq!(
        result_paths(&unranked)[0],
        "tests/retry_test.rs",
        "{unranked}"
    );
}

#[test]
fn regression_20_a_long_symbol_is_one_result_spanning_its_windows() {
    let ws = Workspace::from_fixture("sample-repo");
    // One function far longer than the model's 256 tokens: several windows.
    let mut body = String::from(
        "/// Renders the monthly invoice report.\npub fn render_invoice_report(rows: &[Row]) -> String {\n    let mut out = String::new();\n",
    );
    for i in 0..60 {
        body.push_str(&format!(
            "    out.push_str(&format!(\"line {i}: {{}} {{}}\\n\", rows[{i}].customer, rows[{i}].amount));\n"
        ));
    }
    body.push_str(
        "    out.push_str(\"currency conversion with exchange rates at the end\");\n    out\n}\n",
    );
    fs::write(ws.root().join("src/report.rs"), &body).unwrap();
    let last_line = body.lines().count() as u64;
    let stats = ws.json("index", &[]);
    assert!(stats["chunks"].as_u64().unwrap() > 0, "{stats}");
    // The store is the truth: count the function's windows there.
    let chunks_of_report = rusqlite::Connection::open(ws.index_dir().join("store.sqlite"))
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM chunks WHERE name = 'render_invoice_report'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap();
    assert!(chunks_of_report >= 3, "{chunks_of_report} windows");
    let answer = ws.json(
        "search",
        &[
            "--top-k",
            "10",
            "--no-update",
            "invoice report lines with customer amounts",
        ],
    );
    let hits: Vec<&serde_json::Value> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == "render_invoice_report")
        .collect();
    assert_eq!(hits.len(), 1, "{answer}");
    let hit = hits[0];
    assert_eq!(hit["start_line"], 2, "{hit}");
    assert_eq!(hit["end_line"], last_line, "{hit}");
    let line = hit["line"].as_u64().unwrap();
    assert!((2..=last_line).contains(&line), "{hit}");
}

#[test]
fn regression_20_an_impl_block_is_one_result_with_its_type() {
    let ws = Workspace::from_fixture("sample-repo");
    let query = "keep running an operation, sleeping between failures";
    let of_retry_policy = |params: &str| -> Vec<serde_json::Value> {
        let answer = ws.json(
            "search",
            &[
                "--top-k",
                "30",
                "--explain",
                "--ranking-params",
                params,
                query,
            ],
        );
        answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"] == "RetryPolicy")
            .cloned()
            .collect()
    };
    // `struct RetryPolicy` and `impl RetryPolicy { fn run … }` (src/retry.rs) are one result:
    // the struct, with the better of the two scores.
    let merged = of_retry_policy("{}");
    assert_eq!(merged.len(), 1, "{merged:?}");
    assert_eq!(merged[0]["kind"], "struct", "{merged:?}");
    assert_eq!(merged[0]["start_line"], 12, "{merged:?}");
    // The stage can be turned off: then the impl block is a result of its own.
    let apart = of_retry_policy(r#"{"impls_into_types": false}"#);
    assert!(apart.iter().any(|r| r["kind"] == "impl"), "{apart:?}");
}

#[test]
fn regression_20_explain_adds_up_to_the_score() {
    let ws = Workspace::from_fixture("sample-repo");
    let answer = ws.json(
        "search",
        &[
            "--top-k",
            "6",
            "--explain",
            "read the settings file and fill in defaults",
        ],
    );
    let results = answer["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for result in results {
        let parts = result["explain"].as_array().expect("explain parts");
        let sum: f64 = parts.iter().map(|p| p["value"].as_f64().unwrap()).sum();
        let score = result["score"].as_f64().unwrap();
        assert!((sum - score).abs() < 1e-4, "{sum} != {score}: {result}");
        for part in parts {
            assert!(
                part["stage"].is_string() && part["detail"].is_string(),
                "{part}"
            );
        }
        assert!(
            parts
                .iter()
                .any(|p| p["stage"] == "dense" || p["stage"] == "lexical"),
            "{result}"
        );
    }
    // Without --explain the field is absent.
    let plain = ws.json("search", &["--no-update", "read the settings file"]);
    assert!(plain["results"][0].get("explain").is_none());
    // The text output lists the parts under each result.
    let output = ws
        .command("search")
        .args([
            "--no-update",
            "--explain",
            "-k",
            "1",
            "read the settings file",
        ])
        .output()
        .unwrap();
    let text = success(&output);
    assert!(text.contains("dense") || text.contains("lexical"), "{text}");
}

/// Whether a result's `--explain` parts hold one of `stage` whose detail mentions `detail`.
fn explains(result: &serde_json::Value, stage: &str, detail: &str) -> bool {
    result["explain"]
        .as_array()
        .expect("explain parts")
        .iter()
        .any(|p| p["stage"] == stage && p["detail"].as_str().is_some_and(|d| d.contains(detail)))
}

#[test]
fn regression_20_a_bare_name_finds_its_exact_definition_before_longer_names() {
    let ws = Workspace::from_fixture("sample-repo");
    // A small factory class whose name starts like the queried one, and the class itself,
    // longer: by words and meaning the factory matches the name as well or better.
    fs::write(
        ws.root().join("src/compact.py"),
        "class CompactProtocolFactory:\n    \"\"\"Makes CompactProtocol instances for a transport.\"\"\"\n\n    def get_protocol(self, transport):\n        return CompactProtocol(transport)\n\n\nclass CompactProtocol:\n    \"\"\"Writes integers as variable-length zigzag varints and field ids as deltas.\"\"\"\n\n    def __init__(self, transport):\n        self.transport = transport\n        self.last_field = 0\n\n    def write_varint(self, n):\n        while n > 0x7F:\n            self.transport.write(bytes([(n & 0x7F) | 0x80]))\n            n >>= 7\n        self.transport.write(bytes([n]))\n\n    def write_field_begin(self, field_id, kind):\n        delta = field_id - self.last_field\n        self.transport.write(bytes([(delta << 4) | kind]))\n        self.last_field = field_id\n",
    )
    .unwrap();
    let answer = ws.json("search", &["--top-k", "3", "--explain", "CompactProtocol"]);
    let first = &answer["results"][0];
    assert_eq!(first["name"], "CompactProtocol", "{answer}");
    assert!(explains(first, "definition", "exactly"), "{first}");
    // Turned off, the factory's side wins.
    let off = ws.json(
        "search",
        &[
            "--top-k",
            "3",
            "--no-update",
            "--ranking-params",
            r#"{"exact_name_lift": 0}"#,
            "CompactProtocol",
        ],
    );
    assert_ne!(result_names(&off)[0], "CompactProtocol", "{off}");
}

#[test]
fn regression_20_a_member_rises_above_the_class_whose_chunk_holds_it() {
    let ws = Workspace::from_fixture("sample-repo");
    // The class's docstring says what `read_all` does; `read_all` has no docstring. The class's
    // one chunk holds the method's code, so it matches first unless the member is lifted.
    fs::write(
        ws.root().join("src/transport.py"),
        "class Transport:\n    \"\"\"A channel to a remote peer that keeps reading until every requested byte arrives.\"\"\"\n\n    def __init__(self, sock):\n        self.sock = sock\n\n    def read_all(self, buffer, length):\n        got = 0\n        while got < length:\n            chunk = self.sock.recv_into(memoryview(buffer)[got:], length - got)\n            if chunk == 0:\n                raise EOFError(\"peer closed before the requested bytes arrived\")\n            got += chunk\n        return got\n\n    def close(self):\n        self.sock.close()\n",
    )
    .unwrap();
    let query = "keep reading until the requested number of bytes arrive";
    // The query is a command, for which a class also yields to code (the `class` prior): that
    // alone puts `read_all` first here, so it is turned off to see the lift.
    let answer = ws.json(
        "search",
        &["--top-k", "5", "--explain", "--prior", "class=1", query],
    );
    let first = &answer["results"][0];
    assert_eq!(first["name"], "read_all", "{answer}");
    assert!(explains(first, "member", "Transport"), "{first}");
    // The class stays, right below its member.
    assert_eq!(result_names(&answer)[1], "Transport", "{answer}");
    // Without the member lift (`member_lift` 0): with the class prior off too, the class is
    // first; with the class prior on, that prior alone puts the method first.
    let without_lift = |prior: &str| {
        ws.json(
            "search",
            &[
                "--top-k",
                "5",
                "--no-update",
                "--explain",
                "--ranking-params",
                r#"{"member_lift": 0}"#,
                "--prior",
                prior,
                query,
            ],
        )
    };
    let off = without_lift("class=1");
    assert_eq!(result_names(&off)[..2], ["Transport", "read_all"], "{off}");
    let by_prior = without_lift("class=0.85");
    assert_eq!(result_names(&by_prior)[0], "read_all", "{by_prior}");
    let class = by_prior["results"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "Transport"))
        .expect("the class is still a result");
    assert!(explains(class, "prior", "class"), "{class}");
}

#[test]
fn regression_20_a_jsdoc_block_above_a_blank_line_is_its_functions_doc() {
    let ws = Workspace::from_fixture("sample-repo");
    // express's layout: each JSDoc block, a blank line, then the function it documents. The
    // doc's words appear nowhere else, so BM25 finds the function only through its doc.
    fs::write(
        ws.root().join("web/params.js"),
        "/**\n * Register a trigger that fires whenever a named placeholder shows up in a path.\n *\n * @param {String} name\n * @public\n */\n\napp.param = function param(name, fn) {\n  this.callbacks[name] = fn;\n  return this;\n};\n\n/**\n * Copyright (c) 2014 Someone\n * MIT Licensed\n */\n\nfunction total() {\n  return 1;\n}\n",
    )
    .unwrap();
    ws.json("index", &[]);
    let found = top_in_mode(&ws, "lexical", "trigger fires whenever placeholder");
    assert_eq!(
        found.first().map(String::as_str),
        Some("param"),
        "{found:?}"
    );
    // A license banner above a blank line documents nothing.
    assert!(
        top_in_mode(&ws, "lexical", "copyright someone")
            .iter()
            .all(|name| name != "total"),
        "the banner's words must not reach the function below it"
    );
}

#[test]
fn regression_20_asking_for_more_results_keeps_the_first_ones() {
    let ws = Workspace::from_fixture("sample-repo");
    // Enough look-alike functions that the fusion pool (100 per list) is full: 12 topics × 4
    // files × 8 functions, each with a docstring.
    let topics = [
        "cache", "retry", "parse", "token", "queue", "route", "config", "stream", "buffer",
        "socket", "timer", "header",
    ];
    let verbs = [
        "load", "store", "check", "build", "reset", "flush", "merge", "split",
    ];
    for topic in topics {
        fs::create_dir_all(ws.root().join(format!("lib/{topic}"))).unwrap();
        for file in 0..4 {
            let mut code = String::new();
            for (n, verb) in verbs.iter().enumerate() {
                code.push_str(&format!(
                    "def {verb}_{topic}_{file}(value):\n    \"\"\"{verb} the {topic} entry number {file} and report how the {topic} {verb} went.\"\"\"\n    return value.{verb}({n})\n\n\n"
                ));
            }
            fs::write(
                ws.root().join(format!("lib/{topic}/{topic}_{file}.py")),
                code,
            )
            .unwrap();
        }
    }
    ws.json("index", &[]);
    let first = |query: &str, top_k: usize| -> Vec<String> {
        let answer = ws.json(
            "search",
            &["--no-update", "--top-k", &top_k.to_string(), query],
        );
        answer["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|hit| {
                format!(
                    "{}:{} {}",
                    hit["path"].as_str().unwrap_or_default(),
                    hit["start_line"],
                    hit["name"].as_str().unwrap_or_default()
                )
            })
            .collect()
    };
    for query in [
        "how does the cache get flushed",
        "reset the retry timer",
        "merge two buffers",
    ] {
        let ten = first(query, 10);
        assert_eq!(ten.len(), 10, "{query}: {ten:?}");
        for more in [31, 60] {
            let longer = first(query, more);
            assert_eq!(longer.len(), more, "{query}: {longer:?}");
            assert_eq!(longer[..10], ten[..], "{query}: top {more}");
            // Scores never rise down the list, so results merged by score with another
            // workspace folder's keep this order.
            let answer = ws.json(
                "search",
                &["--no-update", "--top-k", &more.to_string(), query],
            );
            let scores: Vec<f64> = answer["results"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|hit| hit["score"].as_f64())
                .collect();
            assert!(
                scores.windows(2).all(|pair| pair[0] >= pair[1]),
                "{query}: {scores:?}"
            );
            // Still one result per symbol.
            let mut unique = longer.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), more, "{query}: {longer:?}");
        }
    }
}

#[test]
fn regression_20_javadoc_markup_is_not_doc_text() {
    let ws = Workspace::from_fixture("sample-repo");
    // Javadoc's HTML and inline tags are markup: `{@link Door}` names the door, not a link, and
    // `<pre>` and `{@code}` are no words of the doc. A method whose doc really speaks of links and
    // code is found by those words; the one whose doc only carries the markup is not.
    fs::write(
        ws.root().join("src/Gate.java"),
        "package demo;\n\npublic class Gate {\n    /**\n     * Lets a visitor through the {@link Door}, see {@linkplain #admit(int) admission}.\n     *\n     * <p>For example:\n     * <pre>{@code gate.pass(7);}</pre>\n     */\n    public void pass(int visitor) {\n        door.open(visitor);\n    }\n\n    /** Follows a symbolic link and reads the source code it points at. */\n    public String resolve(String path) {\n        return files.read(path);\n    }\n}\n",
    )
    .unwrap();
    ws.json("index", &[]);
    for query in ["link", "code", "pre"] {
        let found = top_in_mode(&ws, "lexical", query);
        assert!(
            found.iter().all(|name| name != "pass"),
            "{query}: {found:?}"
        );
    }
    let found = top_in_mode(&ws, "lexical", "symbolic link source code");
    assert_eq!(
        found.first().map(String::as_str),
        Some("resolve"),
        "{found:?}"
    );
    // The markup's words are gone, the doc's own words and the names it refers to stay.
    let found = top_in_mode(&ws, "lexical", "visitor door admission");
    assert_eq!(found.first().map(String::as_str), Some("pass"), "{found:?}");
}

#[test]
fn regression_20_an_item_whose_docs_are_a_markdown_file_is_found_by_them() {
    let ws = Workspace::from_fixture("sample-repo");
    fs::create_dir_all(ws.root().join("src/docs")).unwrap();
    fs::write(
        ws.root().join("src/docs/quarantine.md"),
        "# Quarantine\n\nMoves a suspicious upload into the holding area, where a virus scanner \
         inspects it before anyone can download it.\n",
    )
    .unwrap();
    fs::write(
        ws.root().join("src/uploads.rs"),
        "#[doc = include_str!(\"docs/quarantine.md\")]\npub fn hold(id: u64) -> Result<(), Error> {\n    STORE.move_to(id, Area::Holding)\n}\n",
    )
    .unwrap();
    let query = "where does a suspicious upload wait for the virus scanner";
    let answer = ws.json("search", &["--top-k", "10", "--explain", query]);
    let first = &answer["results"][0];
    assert_eq!(first["name"], "hold", "{answer}");
    assert!(
        explains(first, "included_doc", "src/docs/quarantine.md"),
        "{first}"
    );
    // The Markdown itself stays a result (with the docs prior), below the function it documents.
    assert!(
        result_paths(&answer).contains(&"src/docs/quarantine.md".to_string()),
        "{answer}"
    );
    // Turned off, the function scores by its own text alone.
    let off = ws.json(
        "search",
        &[
            "--top-k",
            "10",
            "--no-update",
            "--explain",
            "--ranking-params",
            r#"{"included_docs": 0}"#,
            query,
        ],
    );
    let results = off["results"].as_array().unwrap();
    assert!(
        results.iter().all(|r| r["explain"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["stage"] != "included_doc")),
        "{off}"
    );
    let hold = results.iter().find(|r| r["name"] == "hold").unwrap();
    assert!(
        hold["score"].as_f64().unwrap() < first["score"].as_f64().unwrap(),
        "{hold} {first}"
    );
}

#[test]
fn bad_ranking_settings_are_refused_with_a_reason() {
    let ws = Workspace::from_fixture("sample-repo");
    for (args, expected) in [
        (vec!["--prior", "tests=3"], "between 0 and 1"),
        (vec!["--prior", "gizmo=1"], "unknown prior"),
        (
            vec!["--ranking-params", "{\"same_file_decay\": 0}"],
            "same_file_decay",
        ),
        (
            vec!["--ranking-params", "{\"no_such\": 1}"],
            "unknown field",
        ),
        (
            vec!["--ranking-params", "@/nonexistent/params.json"],
            "reading --ranking-params",
        ),
    ] {
        let output = ws
            .command("search")
            .args(&args)
            .arg("anything")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn regression_22_an_installed_adapter_for_another_model_is_passed_over_by_the_cli() {
    // Fine-tuned with MiniLM, then searched with another model: the language server and MCP
    // fall back to the base model with a warning, and so must every CLI command (it failed with
    // "adapter … was trained on another model").
    let ws = Workspace::from_fixture("sample-repo");
    ws.json("index", &[]);
    let status = ws.json("status", &[]);
    let model_dir = std::path::PathBuf::from(status["model_dir"].as_str().unwrap());
    write_adapter(
        &ws.index_dir().join("adapter"),
        &model_dir,
        status["fingerprint"].as_str().unwrap(),
    );
    let with_adapter = ws.json("status", &[]);
    assert!(with_adapter["adapter"].is_string(), "{with_adapter}");

    let qwen =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/testdata/tiny-qwen2");
    let qwen = qwen.to_str().unwrap();
    let passed_over = |subcommand: &str, stderr: &str| {
        assert!(
            stderr.contains("trained on another model")
                && stderr.contains("the base model serves this workspace"),
            "{subcommand}: {stderr}"
        );
    };
    for subcommand in ["index", "search", "status"] {
        let mut command = ws.command(subcommand);
        command.args(["--model", qwen, "--json"]);
        if subcommand == "search" {
            command.arg("escape html");
        }
        let output = command.output().unwrap();
        let stdout = success(&output);
        passed_over(subcommand, &String::from_utf8_lossy(&output.stderr));
        let value: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        match subcommand {
            // The base model served: it is the one named, with no adapter.
            "index" => assert_eq!(value["model"], qwen, "{value}"),
            "status" => {
                assert_eq!(value["model"], qwen, "{value}");
                assert!(value["adapter"].is_null(), "{value}");
            }
            // An answer in the usual form, nothing added to it.
            _ => {
                let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
                assert_eq!(keys, ["query", "results"], "{value}");
                assert!(!result_names(&value).is_empty(), "{value}");
            }
        }
    }
    // The benchmarks' way: queries on stdin, one JSON line each.
    let (stdout, stderr) = search_stdin(
        &ws,
        &["--model", qwen],
        "escape html\nwelcome message after login\n",
    );
    passed_over("search --stdin", &stderr);
    let answers = json_lines(&stdout);
    assert_eq!(answers.len(), 2, "{stdout}");
    assert!(
        answers.iter().all(|a| !result_names(a).is_empty()),
        "{stdout}"
    );
    // The adapter is still there for the model it was made for.
    let back = ws.json("status", &[]);
    assert!(back["adapter"].is_string(), "{back}");
}

#[test]
fn version_names_the_default_model_and_the_compiled_features() {
    let output = std::process::Command::new(binary())
        .arg("--version")
        .output()
        .expect("run coder-lsp --version");
    let text = success(&output);
    assert!(text.starts_with("coder-lsp "), "{text}");
    assert!(
        text.contains("default model: sentence-transformers/all-MiniLM-L6-v2"),
        "{text}"
    );
    assert!(text.contains("features: lsp, mcp, hub"), "{text}");
    assert!(
        text.contains("\nsymbols in: rust, python, javascript, typescript, go, java, c, cpp, ruby"),
        "{text}"
    );
    assert!(!text.contains("built without"), "{text}");
    // Haskell's grammar is opt-in: a default build says how to get its symbols.
    assert!(
        text.contains(
            "\nread as text unless built with their opt-in feature: haskell (lang-haskell)"
        ),
        "{text}"
    );
}

/// A first search on a cold index answers before the model has embedded every chunk (lexical
/// ranking for what has no vector yet), says so, then embeds the rest: the next search is whole.
#[test]
fn regression_23_a_cold_search_answers_first_then_embeds_the_rest() {
    let ws = Workspace::from_fixture("sample-repo");
    let generated = ws.add_generated_modules(30, 12);
    assert!(generated > 256, "enough chunks to answer before embedding");
    let output = ws
        .command("search")
        .args([
            "--json",
            "--top-k",
            "5",
            "delay before the next retry attempt",
        ])
        .output()
        .expect("run search");
    let stdout = success(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON answer");
    let pending = first["partial"]["pending"]
        .as_u64()
        .expect("flagged partial");
    let chunks = first["partial"]["chunks"].as_u64().expect("chunk count");
    assert!(pending > 256 && pending <= chunks, "{first}");
    // Words alone still find the function.
    assert!(
        result_names(&first).contains(&"backoff_delay".to_string()),
        "{first}"
    );
    assert!(stderr.contains("a partial answer"), "{stderr}");
    assert!(stderr.contains("the index is complete"), "{stderr}");

    // Everything was embedded after the answer: the next search is whole and ranks by meaning.
    let status = ws.json("status", &[]);
    assert_eq!(status["pending"], 0, "{status}");
    let second = search(&ws, "delay before the next retry attempt");
    assert!(second.get("partial").is_none(), "{second}");
    assert_eq!(result_names(&second)[0], "backoff_delay", "{second}");
}

#[test]
fn bench_scale_builds_an_index_that_index_search_and_status_use_as_their_own() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("scale");
    let run = |args: &[&str]| {
        std::process::Command::new(binary())
            .args(["bench", "scale", "--dir"])
            .arg(&dir)
            .args(args)
            .env("HF_HUB_OFFLINE", "1")
            .env_remove("CODER_LSP_MODEL")
            .env_remove("CODER_LSP_ADAPTER")
            .output()
            .expect("run coder-lsp bench scale")
    };
    let built: serde_json::Value = serde_json::from_str(
        success(&run(&[
            "--files",
            "24",
            "--functions-per-file",
            "3",
            "--seed",
            "5",
        ]))
        .trim(),
    )
    .unwrap();
    assert_eq!(
        (&built["files"], &built["chunks"], &built["vectors"]),
        (&24.into(), &72.into(), &72.into()),
        "{built}"
    );
    assert_eq!(built["dimensions"], 384, "the default model's");
    let root = built["root"].as_str().unwrap().to_string();
    let index_dir = built["index_dir"].as_str().unwrap().to_string();
    let cli = |args: &[&str]| -> serde_json::Value {
        let output = std::process::Command::new(binary())
            .args(args)
            .args(["--root", &root, "--index-dir", &index_dir, "--json"])
            .env("HF_HUB_OFFLINE", "1")
            .env_remove("CODER_LSP_MODEL")
            .env_remove("CODER_LSP_ADAPTER")
            .output()
            .expect("run coder-lsp");
        serde_json::from_str(success(&output).trim()).unwrap()
    };

    // The real `index` finds nothing to cut or embed: the index is complete as built.
    let stats = cli(&["index"]);
    assert_eq!(
        (&stats["changed"], &stats["embedded"], &stats["chunks"]),
        (&0.into(), &0.into(), &72.into()),
        "{stats}"
    );
    let status = cli(&["status"]);
    assert_eq!(
        (&status["pending"], &status["vectors"]),
        (&0.into(), &72.into())
    );

    // A generated function is found by its name, through hybrid search.
    let file = walk_files(std::path::Path::new(&root))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "rs"))
        .unwrap();
    let text = fs::read_to_string(&file).unwrap();
    let name = text
        .lines()
        .find_map(|l| l.strip_prefix("pub fn "))
        .and_then(|l| l.split('(').next())
        .unwrap()
        .to_string();
    let answer = cli(&[
        "search",
        "--no-update",
        "--top-k",
        "5",
        &name.replace('_', " "),
    ]);
    assert!(
        result_names(&answer).contains(&name),
        "{name} not found: {answer}"
    );

    // Bad arguments and a used directory are refused with a reason.
    let zero = run(&["--files", "0"]);
    assert_eq!(zero.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&zero.stderr).contains("at least 1"));
    let again = run(&["--files", "2"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
}

/// Every file under `dir`, sorted.
fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read a generated directory") {
            let path = entry.expect("a generated entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn completion_scripts_load_in_a_real_shell() {
    let script = |shell: &str| {
        let output = std::process::Command::new(coder_tests::binary())
            .args(["completions", shell])
            .output()
            .unwrap();
        coder_tests::success(&output)
    };
    let bash = script("bash");
    // Every subcommand is offered, the newest included.
    for subcommand in ["search", "fine-tune", "completions", "mcp"] {
        assert!(bash.contains(subcommand), "{subcommand} missing");
    }
    // bash sources it and registers the completion function for the binary's name.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coder-lsp.bash");
    std::fs::write(&path, &bash).unwrap();
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p coder-lsp",
            path.display()
        ))
        .output()
        .unwrap();
    let registered = coder_tests::success(&output);
    assert!(registered.contains("coder-lsp"), "{registered}");
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        assert!(script(shell).contains("fine-tune"), "{shell}");
    }
    // An unknown shell is refused with the list of known ones.
    let output = std::process::Command::new(coder_tests::binary())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("possible values"), "{stderr}");
}
