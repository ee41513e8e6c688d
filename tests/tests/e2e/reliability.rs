//! Reliability of the real binary: killed mid-run, two processes on one index, hostile files.
//! Every test checks the store with SQLite itself, not through coder-lsp.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use coder_tests::{Workspace, result_names, success};

/// `PRAGMA integrity_check` on the store must say "ok".
fn assert_intact(store: &Path) {
    let db = rusqlite::Connection::open(store).expect("open store");
    let verdict: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(verdict, "ok", "{} is damaged", store.display());
}

/// The text hashes that have a committed vector (none when the kill came before the schema).
fn committed_vectors(store: &Path) -> BTreeSet<Vec<u8>> {
    let db = rusqlite::Connection::open(store).expect("open store");
    let has_table: bool = db
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'vectors'",
            [],
            |r| r.get(0),
        )
        .expect("read the schema");
    if !has_table {
        return BTreeSet::new();
    }
    let mut statement = db
        .prepare("SELECT text_hash FROM vectors")
        .expect("prepare");
    statement
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .expect("query vectors")
        .map(|r| r.expect("row"))
        .collect()
}

/// How many vectors are committed, cheaply, while a writer may be running.
fn vector_count(store: &Path) -> usize {
    if !store.exists() {
        return 0;
    }
    let Ok(db) = rusqlite::Connection::open(store) else {
        return 0;
    };
    db.query_row("SELECT count(*) FROM vectors", [], |r| r.get::<_, i64>(0))
        .map_or(0, |n| n as usize)
}

/// How many times the crash test kills the indexer: a few in CI, more from
/// `scripts/crash-test` (CODER_LSP_CRASH_KILLS=12).
fn kills() -> usize {
    std::env::var("CODER_LSP_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

#[test]
fn killing_the_indexer_at_any_moment_loses_no_committed_work() {
    let ws = Workspace::from_fixture("sample-repo");
    ws.add_generated_modules(60, 12);
    let store = ws.index_dir().join("store.sqlite");
    let mut kept = BTreeSet::new();
    let mut interrupted_mid_embedding = false;
    for kill in 0..kills() {
        let mut child = ws
            .command("index")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the indexer");
        if kill < 2 {
            // Early: during start-up, walking and parsing.
            std::thread::sleep(Duration::from_millis(150 + 450 * kill as u64));
        } else {
            // Later: once this run has committed vectors of its own, at a varying moment after.
            let started = Instant::now();
            while vector_count(&store) <= kept.len() && child.try_wait().ok().flatten().is_none() {
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "the indexer committed nothing"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis((kill as u64 * 97) % 400));
        }
        let finished = child.try_wait().expect("poll the indexer").is_some();
        child.kill().ok(); // SIGKILL: no destructor, no flush, no cleanup runs
        child.wait().expect("reap the indexer");
        if !store.exists() {
            continue;
        }
        assert_intact(&store);
        let now = committed_vectors(&store);
        assert!(
            kept.is_subset(&now),
            "kill {kill} lost {} committed vectors",
            kept.difference(&now).count()
        );
        if !finished && !now.is_empty() {
            interrupted_mid_embedding = true;
        }
        kept = now;
    }
    assert!(
        interrupted_mid_embedding,
        "no kill landed while vectors were being written; the test proves nothing"
    );

    // The next run finishes the job and embeds only what was never committed.
    let stats = ws.json("index", &[]);
    assert_intact(&store);
    let all = committed_vectors(&store);
    assert!(kept.is_subset(&all));
    assert_eq!(
        stats["embedded"].as_u64(),
        Some((all.len() - kept.len()) as u64),
        "{stats}"
    );
    assert_eq!(stats["pending"], 0, "{stats}");
    let again = ws.json("index", &[]);
    assert_eq!(
        again["embedded"], 0,
        "a finished index embeds nothing: {again}"
    );
    let names = result_names(&ws.json("search", &["--top-k", "3", "exponential backoff delay"]));
    assert_eq!(names[0], "backoff_delay");
}

#[test]
fn two_processes_on_one_index_one_writes_the_others_read_or_wait() {
    let ws = Workspace::from_fixture("sample-repo");
    ws.add_generated_modules(60, 12);
    let store = ws.index_dir().join("store.sqlite");
    let writer = ws
        .command("index")
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the writer");
    // Wait until the writer holds the index and has committed something.
    let started = Instant::now();
    while vector_count(&store) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the writer never committed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A second writer waits for the first, saying so.
    let second = ws
        .command("index")
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a second indexer");
    // Readers are served from what is committed, while the writer goes on.
    for _ in 0..3 {
        let answer = ws.json("search", &["--top-k", "5", "step of a pipeline"]);
        assert!(answer["results"].is_array(), "{answer}");
        let status = ws.json("status", &[]);
        assert!(status["files"].as_u64() > Some(0), "{status}");
    }

    let output = writer.wait_with_output().expect("writer finishes");
    let stdout = success(&output);
    let stats: serde_json::Value = serde_json::from_str(stdout.trim()).expect("stats JSON");
    assert_eq!(stats["pending"], 0, "{stats}");
    // The waiting writer then finds everything done: it embeds nothing again.
    let output = second.wait_with_output().expect("second indexer finishes");
    let stdout = success(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("waiting for another coder-lsp process"),
        "{stderr}"
    );
    let stats: serde_json::Value = serde_json::from_str(stdout.trim()).expect("stats JSON");
    assert_eq!(stats["embedded"], 0, "{stats}");
    assert_intact(&store);
    let names = result_names(&ws.json("search", &["--top-k", "3", "exponential backoff delay"]));
    assert_eq!(names[0], "backoff_delay");
}

#[cfg(unix)]
#[test]
fn hostile_files_are_skipped_or_indexed_and_never_stop_the_run() {
    use std::os::unix::fs::symlink;

    let ws = Workspace::from_fixture("sample-repo");
    let root = ws.root();
    let hostile = root.join("hostile");
    std::fs::create_dir_all(&hostile).unwrap();
    // Invalid UTF-8 in an otherwise fine source file: indexed with replacement characters.
    std::fs::write(
        hostile.join("latin1.py"),
        b"def caf\xe9_menu_prices():\n    \"\"\"Prices of the caf\xe9 menu.\"\"\"\n    return [3, 4]\n",
    )
    .unwrap();
    // NUL bytes: binary, skipped.
    std::fs::write(hostile.join("blob.rs"), b"fn a() {}\0\0\0\x01\x02fn b() {}").unwrap();
    // A 10 MB single-line minified file: skipped before it is read whole.
    std::fs::write(
        hostile.join("bundle.min.js"),
        "var a=1;".repeat(10 * 1024 * 1024 / 8),
    )
    .unwrap();
    // Deeply nested code (one level a line, so it is not taken for minified): parsed without
    // blowing the stack.
    let depth = 20_000;
    std::fs::write(
        hostile.join("nested.rs"),
        format!(
            "fn deeply_nested_blocks() -> i32 {{\n{}1{}\n}}\n",
            "{\n".repeat(depth),
            "}\n".repeat(depth)
        ),
    )
    .unwrap();
    std::fs::write(
        hostile.join("nested.py"),
        format!(
            "def deeply_nested_parentheses():\n    return {}1{}\n",
            "(\n".repeat(depth),
            ")\n".repeat(depth)
        ),
    )
    .unwrap();
    std::fs::write(
        hostile.join("nested.js"),
        format!(
            "function deeplyNestedArrays() {{ return {}1{}; }}\n",
            "[\n".repeat(depth),
            "]\n".repeat(depth)
        ),
    )
    .unwrap();
    // A symlink loop, and a link to a file outside the root that must never be read.
    symlink("..", hostile.join("loop")).unwrap();
    let outside = ws.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(
        outside.join("secret.py"),
        "def zanzibar_credentials():\n    return 'hunter2'\n",
    )
    .unwrap();
    symlink(outside.join("secret.py"), hostile.join("secret.py")).unwrap();
    symlink(&outside, hostile.join("outside_dir")).unwrap();
    // A named pipe: opening it for reading would block forever.
    let fifo = std::process::Command::new("mkfifo")
        .arg(hostile.join("pipe.py"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());

    let output = ws
        .command("index")
        .arg("--json")
        .output()
        .expect("run the indexer");
    let stdout = success(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let stats: serde_json::Value = serde_json::from_str(stdout.trim()).expect("stats JSON");
    assert_eq!(stats["pending"], 0, "{stats}");
    assert!(stats["skipped"].as_u64() >= Some(2), "{stats}");
    assert_intact(&ws.index_dir().join("store.sqlite"));

    let db = rusqlite::Connection::open(ws.index_dir().join("store.sqlite")).unwrap();
    let indexed: BTreeSet<String> = db
        .prepare("SELECT path FROM files")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    for present in [
        "hostile/latin1.py",
        "hostile/nested.rs",
        "hostile/nested.py",
        "hostile/nested.js",
    ] {
        assert!(indexed.contains(present), "{present} missing: {indexed:?}");
    }
    for absent in [
        "hostile/blob.rs",
        "hostile/bundle.min.js",
        "hostile/secret.py",
        "hostile/pipe.py",
    ] {
        assert!(!indexed.contains(absent), "{absent} was indexed");
    }
    assert!(
        indexed
            .iter()
            .all(|p| !p.starts_with("hostile/loop/") && !p.starts_with("hostile/outside_dir/")),
        "{indexed:?}"
    );
    let secret = ws.json("search", &["--top-k", "20", "zanzibar credentials"]);
    assert!(
        !result_names(&secret).contains(&"zanzibar_credentials".to_string()),
        "{secret}"
    );
    let names = result_names(&ws.json("search", &["--top-k", "3", "exponential backoff delay"]));
    assert_eq!(names[0], "backoff_delay");
    let nested = result_names(&ws.json("search", &["--top-k", "5", "deeply nested blocks"]));
    assert!(
        nested.contains(&"deeply_nested_blocks".to_string()),
        "{nested:?}"
    );
}
