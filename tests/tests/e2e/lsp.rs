//! End-to-end tests of the language server over an in-memory duplex with real JSON-RPC: the
//! real server, the real default model, a fixture repository in a temporary directory.

use std::time::{Duration, Instant};

use coder_tests::Workspace;
use coder_tests::lsp_client::LspClient;
use serde_json::{Value, json};

use coder_tests::file_uri as uri;

fn names(results: &Value) -> Vec<String> {
    results
        .as_array()
        .expect("an array of results")
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_string())
        .collect()
}

async fn start(ws: &Workspace) -> LspClient {
    let mut client = LspClient::start();
    let root = ws.root().canonicalize().expect("fixture root");
    let capabilities = json!({
        "window": {"workDoneProgress": true},
        "workspace": {"didChangeWatchedFiles": {"dynamicRegistration": true}}
    });
    let options = json!({"indexDir": ws.index_dir(), "topK": 5});
    let init = client.initialize(&root, capabilities, options).await;
    let commands = &init["capabilities"]["executeCommandProvider"]["commands"];
    for command in [
        "semanticSearch",
        "findSimilar",
        "ragContext",
        "indexStatus",
        "reindex",
    ] {
        assert!(
            commands
                .as_array()
                .expect("commands")
                .iter()
                .any(|c| c == command),
            "{init}"
        );
    }
    client
}

/// Opens `config` (the fixture's src/config.py) and adds `parse_duration` in an unsaved edit;
/// returns once the new function is found first. Returns (disk text, buffer text).
async fn add_parse_duration_unsaved(
    client: &mut LspClient,
    config: &std::path::Path,
) -> (String, String) {
    let original = std::fs::read_to_string(config).expect("read the fixture");
    client
        .notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri(config), "languageId": "python", "version": 1, "text": original}}),
        )
        .await;
    let edited = format!(
        "{original}\n\ndef parse_duration(text):\n    \"\"\"Turn strings like 5m or 2h into a number of seconds.\"\"\"\n    units = {{'s': 1, 'm': 60, 'h': 3600}}\n    return int(text[:-1]) * units[text[-1]]\n"
    );
    client
        .notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri(config), "version": 2}, "contentChanges": [{"text": edited}]}),
        )
        .await;
    search_until(client, "convert a duration like 5m into seconds", |n| {
        n.first().map(String::as_str) == Some("parse_duration")
    })
    .await;
    (original, edited)
}

/// Polls indexStatus until the first indexing run is complete.
async fn wait_indexed(client: &mut LspClient) -> Value {
    let started = Instant::now();
    loop {
        let status = client.command("indexStatus", Value::Null).await;
        if status["indexing"] == false
            && status["files"].as_u64() > Some(0)
            && status["pending"] == 0
        {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "indexing did not finish: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_server_answers_every_feature_end_to_end() {
    let ws = Workspace::from_fixture("sample-repo");
    let root = ws.root().canonicalize().unwrap();
    let mut client = start(&ws).await;
    let status = wait_indexed(&mut client).await;
    assert_eq!(status["files"], 6, "{status}");
    assert_eq!(status["modelState"], "ready");

    // Progress: begin and end were reported on a token the server created.
    let notes = client.notifications();
    let progress: Vec<&Value> = notes
        .iter()
        .filter(|n| n["method"] == "$/progress")
        .collect();
    assert!(
        progress
            .iter()
            .any(|n| n["params"]["value"]["kind"] == "begin"),
        "{notes:?}"
    );
    assert!(
        progress
            .iter()
            .any(|n| n["params"]["value"]["kind"] == "end"),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n["method"] == "window/workDoneProgress/create")
    );
    assert!(
        notes
            .iter()
            .any(|n| n["method"] == "client/registerCapability")
    );

    // semanticSearch.
    let results = client
        .command(
            "semanticSearch",
            json!({"query": "how long to wait before retrying a failed request"}),
        )
        .await;
    assert!(
        names(&results).iter().take(3).any(|n| n == "backoff_delay"),
        "{results}"
    );
    let first = &results[0];
    assert!(first["uri"].as_str().unwrap().starts_with("file://"));
    assert!(first["range"]["start"]["line"].is_u64());
    assert!(first["preview"].is_string());
    // Filters.
    let only_python = client
        .command(
            "semanticSearch",
            json!({"query": "retry after failure", "languages": ["python"]}),
        )
        .await;
    for r in only_python.as_array().unwrap() {
        assert!(r["uri"].as_str().unwrap().ends_with(".py"), "{r}");
    }

    // Ranking modes: lexical matches words only, so a paraphrase finds nothing there.
    let lexical = client
        .command(
            "semanticSearch",
            json!({"query": "saturating_pow", "mode": "lexical"}),
        )
        .await;
    assert_eq!(
        names(&lexical).first().map(String::as_str),
        Some("backoff_delay"),
        "{lexical}"
    );
    let paraphrase = "is this mail syntactically valid";
    let nothing = client
        .command(
            "semanticSearch",
            json!({"query": paraphrase, "mode": "lexical"}),
        )
        .await;
    assert!(names(&nothing).is_empty(), "{nothing}");
    let hybrid = client
        .command(
            "semanticSearch",
            json!({"query": paraphrase, "mode": "hybrid"}),
        )
        .await;
    assert_eq!(
        names(&hybrid).first().map(String::as_str),
        Some("ValidateEmail"),
        "{hybrid}"
    );

    // An unsaved edit becomes searchable without a save.
    let config = root.join("src/config.py");
    let (original, edited) = add_parse_duration_unsaved(&mut client, &config).await;
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        original,
        "the file on disk is untouched"
    );

    // didSave carries the saved text (a formatter may have changed it): it is indexed at once.
    let saved = format!(
        "{edited}\n\ndef parse_size(text):\n    \"\"\"Turn strings like 10KB or 3MB into a number of bytes.\"\"\"\n    units = {{'KB': 1024, 'MB': 1024 ** 2}}\n    return int(text[:-2]) * units[text[-2:]]\n"
    );
    std::fs::write(&config, &saved).unwrap();
    client
        .notify(
            "textDocument/didSave",
            json!({"textDocument": {"uri": uri(&config)}, "text": saved}),
        )
        .await;
    search_until(&mut client, "convert a size like 10KB into bytes", |n| {
        n.first().map(String::as_str) == Some("parse_size")
    })
    .await;
    // Closing the saved file keeps what is on disk: the saved functions stay.
    client
        .notify(
            "textDocument/didClose",
            json!({"textDocument": {"uri": uri(&config)}}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    search_until(&mut client, "convert a size like 10KB into bytes", |n| {
        n.first().map(String::as_str) == Some("parse_size")
    })
    .await;

    // findSimilar: code elsewhere, never the code itself.
    let retry = root.join("src/retry.rs");
    let similar = client
        .command(
            "findSimilar",
            json!({"uri": uri(&retry), "position": {"line": 6, "character": 10}}),
        )
        .await;
    assert!(!similar.as_array().unwrap().is_empty());
    for r in similar.as_array().unwrap() {
        let same_file = r["uri"] == uri(&retry);
        let start = r["range"]["start"]["line"].as_u64().unwrap();
        let end = r["range"]["end"]["line"].as_u64().unwrap();
        assert!(
            !(same_file && start <= 8 && end >= 5),
            "overlaps the code itself: {r}"
        );
    }

    // Hover: related code on a symbol, nothing on whitespace.
    let hover = client
        .call(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri(&retry)}, "position": {"line": 5, "character": 10}}),
        )
        .await;
    let markdown = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(markdown.contains("Related code"), "{hover}");
    assert!(markdown.len() <= 1500);
    let blank = client
        .call(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri(&retry)}, "position": {"line": 4, "character": 0}}),
        )
        .await;
    assert!(blank.is_null(), "{blank}");

    // workspace/symbol: questions are semantic, single tokens fuzzy.
    let symbols = client
        .call(
            "workspace/symbol",
            json!({"query": "wait before retrying a failed request"}),
        )
        .await;
    assert!(
        names(&symbols).iter().take(3).any(|n| n == "backoff_delay"),
        "{symbols}"
    );
    let fuzzy = client
        .call("workspace/symbol", json!({"query": "ValEm"}))
        .await;
    assert_eq!(
        names(&fuzzy).first().map(String::as_str),
        Some("ValidateEmail"),
        "{fuzzy}"
    );
    assert!(
        fuzzy[0]["location"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("server/users.go")
    );

    // ragContext and coder/context: packed under the budget, counted in model tokens.
    let model = coder_lsp::model::resolve(coder_lsp::model::DEFAULT_MODEL).unwrap();
    let tokenizer =
        coder_lsp::embed::ModelTokenizer::from_file(&model.dir.join("tokenizer.json")).unwrap();
    for budget in [60usize, 400] {
        let context = client
            .command(
                "ragContext",
                json!({"query": "load settings from a file", "tokenBudget": budget}),
            )
            .await;
        let used = context["tokensUsed"].as_u64().unwrap() as usize;
        assert!(used <= budget && used > 0, "{context}");
        let chunks = context["chunks"].as_array().unwrap();
        let counted: usize = chunks
            .iter()
            .map(|c| tokenizer.count_tokens(c["text"].as_str().unwrap()).unwrap())
            .sum();
        assert_eq!(counted, used, "tokensUsed is the model's own count");
        assert!(
            chunks[0]["text"]
                .as_str()
                .unwrap()
                .starts_with("--- src/config.py:"),
            "{context}"
        );
    }
    let request = client
        .call(
            "coder/context",
            json!({"query": "validate an email address", "tokenBudget": 200}),
        )
        .await;
    assert!(
        request["chunks"][0]["text"]
            .as_str()
            .unwrap()
            .contains("ValidateEmail"),
        "{request}"
    );

    // Errors: unknown command, malformed arguments, the server stays up.
    let unknown = client
        .request(
            "workspace/executeCommand",
            json!({"command": "makeCoffee", "arguments": []}),
        )
        .await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("semanticSearch")
    );
    let malformed = client
        .request(
            "workspace/executeCommand",
            json!({"command": "semanticSearch", "arguments": [{"query": 5}]}),
        )
        .await;
    assert_eq!(malformed["error"]["code"], -32602, "{malformed}");
    let bad_budget = client
        .request("coder/context", json!({"query": "x", "tokenBudget": 0}))
        .await;
    assert_eq!(bad_budget["error"]["code"], -32602, "{bad_budget}");
    client.send_raw("{ this is not json").await;
    client
        .send_raw(r#"{"jsonrpc": "2.0", "id": 99, "method": 42}"#)
        .await;
    let still_up = client.command("indexStatus", Value::Null).await;
    assert_eq!(still_up["files"], 6);

    // $/cancelRequest: a request cancelled in the same breath is answered RequestCancelled
    // (or, if it won the race, with its result); either way the server keeps serving.
    let mut cancelled = 0;
    for _ in 0..20 {
        let response = client
            .request_then_cancel(
                "workspace/executeCommand",
                json!({"command": "semanticSearch", "arguments": [{"query": "parse a duration"}]}),
            )
            .await;
        match response["error"]["code"].as_i64() {
            Some(-32800) => cancelled += 1,
            Some(other) => panic!("unexpected error {other}: {response}"),
            None => assert!(response["result"].is_array(), "{response}"),
        }
    }
    assert!(cancelled > 0, "no request was ever cancelled");
    let after_cancel = client.command("indexStatus", Value::Null).await;
    assert_eq!(after_cancel["files"], 6);

    let shutdown = client.request("shutdown", Value::Null).await;
    assert!(shutdown["error"].is_null(), "{shutdown}");
    client.notify("exit", Value::Null).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_initialization_options_are_rejected_with_a_reason() {
    let mut client = LspClient::start();
    let response = client
        .request(
            "initialize",
            json!({"processId": null, "capabilities": {}, "initializationOptions": {"topK": -3}}),
        )
        .await;
    assert_eq!(response["error"]["code"], -32602, "{response}");
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("topK")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_model_is_explained_once_and_search_stays_lexical() {
    let ws = Workspace::from_fixture("sample-repo");
    let root = ws.root().canonicalize().unwrap();
    // Build the index with the real model first, through the CLI, where the server will look.
    let base = ws.dir.path().join("lsp-index");
    let dir = base.join(coder_lsp::index::IndexConfig::dir_name(&root));
    coder_tests::success(
        &std::process::Command::new(coder_tests::binary())
            .arg("index")
            .arg("--root")
            .arg(&root)
            .arg("--index-dir")
            .arg(&dir)
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap(),
    );
    let mut client = LspClient::start();
    let options = json!({"model": "/no/such/model", "indexDir": base});
    client.initialize(&root, json!({}), options).await;
    let started = Instant::now();
    let message = loop {
        if let Some(m) = client
            .notifications()
            .into_iter()
            .find(|n| n["method"] == "window/showMessage")
        {
            break m;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no showMessage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let text = message["params"]["message"].as_str().unwrap();
    assert!(
        text.contains("scripts/setup") && text.contains("model"),
        "{text}"
    );
    let status = client.command("indexStatus", Value::Null).await;
    assert!(
        status["modelState"].as_str().unwrap().starts_with("failed"),
        "{status}"
    );
    assert!(status["lastError"].is_string());
    // Lexical search still answers from the stored index.
    search_until(&mut client, "backoff delay", |n| {
        n.first().map(String::as_str) == Some("backoff_delay")
    })
    .await;
    let shown = client
        .notifications()
        .iter()
        .filter(|n| n["method"] == "window/showMessage")
        .count();
    assert_eq!(shown, 1, "explained once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_lsp_on_stdio_and_survives_malformed_input() {
    let ws = Workspace::from_fixture("sample-repo");
    let root = ws.root().canonicalize().unwrap();
    let mut client = LspClient::spawn(&coder_tests::binary(), &ws.dir.path().join("server.log"));
    client
        .call(
            "initialize",
            json!({
                "processId": null,
                "rootUri": uri(&root),
                "capabilities": {},
                "initializationOptions": {"indexDir": ws.index_dir()}
            }),
        )
        .await;
    client.notify("initialized", json!({})).await;
    client.send_raw("{ this is not json").await;
    client
        .send_raw(r#"{"jsonrpc": "2.0", "id": 99, "method": 42}"#)
        .await;
    client
        .send_raw(&format!("[{}]", "1,".repeat(1000) + "1"))
        .await;
    wait_indexed(&mut client).await;
    let results = client
        .command(
            "semanticSearch",
            json!({"query": "check that an email address is well formed"}),
        )
        .await;
    assert!(
        names(&results).iter().take(3).any(|n| n == "ValidateEmail"),
        "{results}"
    );
    let codes: Vec<i64> = client
        .notifications()
        .into_iter()
        .filter_map(|m| m["error"]["code"].as_i64())
        .collect();
    assert_eq!(
        codes,
        vec![-32700, -32600],
        "one error reply per unreadable message"
    );
    let shutdown = client.request("shutdown", Value::Null).await;
    assert!(shutdown["error"].is_null(), "{shutdown}");
    client.notify("exit", Value::Null).await;
}

/// Polls `semanticSearch` until `done` accepts the result names (bounded).
async fn search_until(
    client: &mut LspClient,
    query: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let started = Instant::now();
    loop {
        let results = client
            .command("semanticSearch", json!({"query": query, "topK": 10}))
            .await;
        let found = names(&results);
        if done(&found) {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "gave up on {query:?}: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_come_and_go_and_changes_outside_the_editor_are_seen() {
    let ws = Workspace::from_fixture("sample-repo");
    let root = ws.root().canonicalize().unwrap();
    let other = ws.dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        other.join("geometry.py"),
        "def polygon_area(points):\n    \"\"\"Area of a simple polygon with the shoelace formula.\"\"\"\n    total = 0\n    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1]):\n        total += x1 * y2 - x2 * y1\n    return abs(total) / 2\n",
    )
    .unwrap();
    let other = other.canonicalize().unwrap();
    // No dynamic registration: the server watches the roots itself.
    let mut client = LspClient::spawn(&coder_tests::binary(), &ws.dir.path().join("server.log"));
    let options = json!({"indexDir": ws.index_dir()});
    client.initialize(&root, json!({}), options).await;
    wait_indexed(&mut client).await;

    // A second folder is added, indexed and searched; removed, it is gone from results.
    client
        .notify(
            "workspace/didChangeWorkspaceFolders",
            json!({"event": {"added": [{"uri": uri(&other), "name": "other"}], "removed": []}}),
        )
        .await;
    search_until(&mut client, "area of a polygon", |n| {
        n.first().map(String::as_str) == Some("polygon_area")
    })
    .await;
    let status = client.command("indexStatus", Value::Null).await;
    assert_eq!(status["roots"].as_array().unwrap().len(), 2, "{status}");
    client
        .notify(
            "workspace/didChangeWorkspaceFolders",
            json!({"event": {"added": [], "removed": [{"uri": uri(&other), "name": "other"}]}}),
        )
        .await;
    search_until(&mut client, "area of a polygon", |n| {
        !n.iter().any(|x| x == "polygon_area")
    })
    .await;

    // A file written outside the editor (a checkout, a generator) becomes searchable.
    std::fs::write(
        root.join("src/slug.py"),
        "def slugify(title):\n    \"\"\"Make a URL-friendly slug from an article title.\"\"\"\n    return '-'.join(title.lower().split())\n",
    )
    .unwrap();
    search_until(&mut client, "turn a title into a url slug", |n| {
        n.first().map(String::as_str) == Some("slugify")
    })
    .await;
    // And a deleted one disappears.
    std::fs::remove_file(root.join("src/slug.py")).unwrap();
    search_until(&mut client, "turn a title into a url slug", |n| {
        !n.iter().any(|x| x == "slugify")
    })
    .await;

    let shutdown = client.request("shutdown", Value::Null).await;
    assert!(shutdown["error"].is_null(), "{shutdown}");
    client.notify("exit", Value::Null).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexing_can_be_cancelled_and_closing_a_buffer_restores_the_disk_content() {
    let ws = Workspace::from_fixture("sample-repo");
    let root = ws.root().canonicalize().unwrap();
    // Enough extra code that indexing is still running when the cancel arrives.
    ws.add_generated_modules(60, 12);
    let mut client = LspClient::spawn(&coder_tests::binary(), &ws.dir.path().join("server.log"));
    let capabilities = json!({"window": {"workDoneProgress": true}});
    let options = json!({"indexDir": ws.index_dir()});
    client.initialize(&root, capabilities, options).await;
    let started = Instant::now();
    let token = loop {
        let begin = client
            .notifications()
            .into_iter()
            .find(|n| n["method"] == "$/progress" && n["params"]["value"]["kind"] == "begin");
        if let Some(begin) = begin {
            break begin["params"]["token"].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no progress begin"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    client
        .notify("window/workDoneProgress/cancel", json!({"token": token}))
        .await;
    let end = loop {
        let end = client
            .notifications()
            .into_iter()
            .find(|n| n["method"] == "$/progress" && n["params"]["value"]["kind"] == "end");
        if let Some(end) = end {
            break end;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no progress end"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        end["params"]["value"]["message"]
            .as_str()
            .unwrap()
            .contains("cancelled"),
        "{end}"
    );
    let status = client.command("indexStatus", Value::Null).await;
    assert_eq!(status["indexing"], false, "{status}");
    assert!(
        status["pending"].as_u64().unwrap() > 0 || status["files"].as_u64().unwrap() < 66,
        "stopped early: {status}"
    );

    // `reindex` finishes the job, keeping what was already done.
    client.command("reindex", Value::Null).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = wait_indexed(&mut client).await;
    assert_eq!(status["files"], 66, "{status}");

    // A function that exists only in an open buffer is found; closing the buffer forgets it.
    let config = root.join("src/config.py");
    let original = std::fs::read_to_string(&config).unwrap();
    client
        .notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri(&config), "languageId": "python", "version": 1,
                   "text": format!("{original}\n\ndef rotate_api_keys(store):\n    \"\"\"Replace every API key in the store with a fresh random one.\"\"\"\n    return store\n")}}),
        )
        .await;
    search_until(
        &mut client,
        "replace api keys with fresh random ones",
        |n| n.first().map(String::as_str) == Some("rotate_api_keys"),
    )
    .await;
    client
        .notify(
            "textDocument/didClose",
            json!({"textDocument": {"uri": uri(&config)}}),
        )
        .await;
    search_until(
        &mut client,
        "replace api keys with fresh random ones",
        |n| !n.iter().any(|x| x == "rotate_api_keys"),
    )
    .await;

    let shutdown = client.request("shutdown", Value::Null).await;
    assert!(shutdown["error"].is_null(), "{shutdown}");
    client.notify("exit", Value::Null).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_started_as_a_reader_takes_the_index_over_when_the_writer_ends() {
    let ws = Workspace::from_fixture("sample-repo");
    ws.add_generated_modules(30, 12);
    let root = ws.root().canonicalize().unwrap();
    // A terminal `coder-lsp index` writes the index the language server will use.
    let index_dir = ws
        .index_dir()
        .join(coder_lsp::index::IndexConfig::dir_name(&root));
    let store = index_dir.join("store.sqlite");
    let writer = std::process::Command::new(coder_tests::binary())
        .args(["index", "--root"])
        .arg(&root)
        .arg("--index-dir")
        .arg(&index_dir)
        .env("HF_HUB_OFFLINE", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !store.exists() {
        assert!(started.elapsed() < Duration::from_secs(60), "no store");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut client = start(&ws).await;
    let started = Instant::now();
    let status = loop {
        let status = client.command("indexStatus", Value::Null).await;
        if status["roots"][0].is_object() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["roots"][0]["readOnly"], true, "{status}");
    let finished = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        writer.wait()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(finished.success(), "the terminal indexer failed");

    // An edit after the writer ended: the server takes the index over and indexes it.
    let config = root.join("src/config.py");
    add_parse_duration_unsaved(&mut client, &config).await;
    let status = client.command("indexStatus", Value::Null).await;
    assert_eq!(status["roots"][0]["readOnly"], false, "{status}");
    assert_eq!(status["pending"], 0, "{status}");
}

/// Scala files are split into symbols: `workspace/symbol` answers with a Scala object as an LSP
/// Object and its method in it, and hover knows the method under the cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scala_objects_and_their_methods_are_symbols() {
    let ws = Workspace::from_fixture("sample-repo");
    let scala = ws.root().join("src/Merge.scala");
    std::fs::write(
        &scala,
        "package sample\n\n/** Functions to merge two JSON documents. */\nobject Merge {\n  /** Returns the fields of both objects, the second's winning. */\n  def merge(a: Map[String, Int], b: Map[String, Int]): Map[String, Int] =\n    a ++ b\n}\n",
    )
    .expect("write the Scala file");
    let mut client = start(&ws).await;
    wait_indexed(&mut client).await;

    let symbols = client
        .call("workspace/symbol", json!({"query": "Merge"}))
        .await;
    let find = |name: &str| -> Value {
        symbols
            .as_array()
            .expect("an array of symbols")
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {symbols}"))
    };
    let object = find("Merge");
    // SymbolKind.Object
    assert_eq!(object["kind"], 19, "{object}");
    assert!(
        object["location"]["uri"]
            .as_str()
            .expect("uri")
            .ends_with("src/Merge.scala")
    );
    let method = find("merge");
    // SymbolKind.Method, in its object
    assert_eq!(method["kind"], 6, "{method}");
    assert_eq!(method["containerName"], "Merge", "{method}");
    assert_eq!(method["location"]["range"]["start"]["line"], 5, "{method}");

    let text = std::fs::read_to_string(&scala).expect("read back");
    client
        .notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri(&scala), "languageId": "scala", "version": 1, "text": text}}),
        )
        .await;
    let hover = client
        .call(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri(&scala)}, "position": {"line": 5, "character": 7}}),
        )
        .await;
    // Hover knows the method under the cursor and shows code related to it.
    let shown = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(shown.contains("(like `merge`)"), "{hover}");
}
