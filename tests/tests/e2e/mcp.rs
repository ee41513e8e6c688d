//! End-to-end tests of the MCP server: the real `coder-lsp mcp` binary driven over stdio with
//! real MCP JSON-RPC (newline-delimited), the real default model, a fixture repository in a
//! temporary directory, and, in one test, the real language server on the same workspace.

use std::time::{Duration, Instant};

use coder_tests::Workspace;
use coder_tests::lsp_client::LspClient;
use coder_tests::mcp_client::{McpClient, text_of};
use serde_json::{Value, json};

fn start(ws: &Workspace, log: &str) -> McpClient {
    McpClient::spawn(
        &coder_tests::binary(),
        &ws.root(),
        &ws.index_dir(),
        &ws.dir.path().join(log),
    )
}

fn names(result: &Value) -> Vec<String> {
    result["structuredContent"]["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {result}"))
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_string())
        .collect()
}

/// Polls index_status until the index holds files and nothing is pending or running.
async fn wait_indexed(client: &mut McpClient) -> Value {
    wait_status(client, |_| true).await
}

/// Polls index_status until the index holds files, nothing is pending or running and `done`
/// holds for the status.
async fn wait_status(client: &mut McpClient, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let status = client.tool("index_status", json!({})).await;
        let s = &status["structuredContent"];
        if s["indexing"] == false && s["files"].as_u64() > Some(0) && s["pending"] == 0 && done(s) {
            return s.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "indexing did not finish: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Calls search_code until `done` holds for the result names (or a minute passes).
async fn search_until(
    client: &mut McpClient,
    query: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let started = Instant::now();
    loop {
        let found = names(&client.tool("search_code", json!({"query": query})).await);
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

fn assert_tool_error(result: &Value, expected: &str) {
    assert_eq!(result["isError"], true, "{result}");
    let text = text_of(result);
    assert!(text.contains(expected), "{text:?} lacks {expected:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_uses_every_tool_over_stdio() {
    let ws = Workspace::from_fixture("sample-repo");
    let mut client = start(&ws, "mcp.log");

    let init = client.initialize().await;
    assert_eq!(init["serverInfo"]["name"], "coder-lsp", "{init}");
    assert_eq!(init["protocolVersion"], "2025-06-18", "{init}");
    assert!(init["capabilities"]["tools"].is_object(), "{init}");
    assert!(
        init["instructions"]
            .as_str()
            .unwrap()
            .contains("search_code")
    );

    // tools/list: six tools, each with input and output schemas whose fields are described;
    // the four that read the index say so.
    let list = client.call("tools/list", json!({})).await;
    let tools = list["tools"].as_array().expect("tools");
    let listed: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        listed,
        [
            "search_code",
            "find_similar",
            "get_context",
            "index_status",
            "fine_tune",
            "reset_model"
        ]
    );
    for tool in tools {
        assert!(tool["description"].as_str().unwrap().len() > 40, "{tool}");
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
        assert!(tool["outputSchema"].is_object(), "{tool}");
        let reads = !matches!(tool["name"].as_str(), Some("fine_tune" | "reset_model"));
        assert_eq!(tool["annotations"]["readOnlyHint"], reads, "{tool}");
        for (field, schema) in tool["inputSchema"]["properties"].as_object().unwrap() {
            assert!(
                schema["description"].as_str().is_some_and(|d| d.len() > 10),
                "{field} of {tool}"
            );
        }
    }
    assert_eq!(tools[0]["inputSchema"]["required"], json!(["query"]));
    assert_eq!(
        tools[1]["inputSchema"]["required"],
        json!(["path", "start_line"])
    );

    // This process owns the index: it indexes the workspace by itself.
    let status = wait_indexed(&mut client).await;
    assert_eq!(status["files"], 6, "{status}");
    assert_eq!(status["read_only"], false, "{status}");
    assert_eq!(status["model_state"], "ready", "{status}");
    let root = ws.root().canonicalize().unwrap();
    assert_eq!(status["root"], root.to_string_lossy().as_ref());

    // search_code: the expected function near the top, with path, lines and preview.
    let found = client
        .tool(
            "search_code",
            json!({"query": "how long to wait before retrying a failed request", "top_k": 5}),
        )
        .await;
    assert_eq!(found["isError"], false, "{found}");
    let results = found["structuredContent"]["results"].as_array().unwrap();
    assert!(results.len() <= 5);
    let hit = results
        .iter()
        .take(3)
        .find(|r| r["name"] == "backoff_delay")
        .unwrap_or_else(|| panic!("backoff_delay not in the top 3: {found}"));
    assert_eq!(hit["path"], "src/retry.rs");
    assert_eq!(hit["start_line"], 6);
    assert_eq!(hit["end_line"], 9);
    assert_eq!(hit["kind"], "function");
    assert_eq!(
        hit["absolute_path"],
        root.join("src/retry.rs").to_string_lossy().as_ref()
    );
    assert!(
        hit["preview"]
            .as_str()
            .unwrap()
            .contains("fn backoff_delay")
    );
    assert!(text_of(&found).contains("src/retry.rs:6-9 function backoff_delay"));
    // Filters.
    let python = client
        .tool(
            "search_code",
            json!({"query": "retry after failure", "languages": ["python"]}),
        )
        .await;
    let python = python["structuredContent"]["results"].as_array().unwrap();
    assert!(!python.is_empty());
    for r in python {
        assert!(r["path"].as_str().unwrap().ends_with(".py"), "{r}");
    }

    // find_similar: from one line, the whole symbol is compared; never the code itself.
    let similar = client
        .tool(
            "find_similar",
            json!({"path": "src/retry.rs", "start_line": 7}),
        )
        .await;
    assert_eq!(similar["isError"], false, "{similar}");
    let compared = &similar["structuredContent"]["compared"];
    assert_eq!(
        compared,
        &json!({"path": "src/retry.rs", "start_line": 6, "end_line": 9})
    );
    let results = similar["structuredContent"]["results"].as_array().unwrap();
    assert!(!results.is_empty(), "{similar}");
    for r in results {
        let overlaps = r["path"] == "src/retry.rs"
            && r["start_line"].as_u64().unwrap() <= 9
            && r["end_line"].as_u64().unwrap() >= 6;
        assert!(!overlaps, "the compared code itself came back: {r}");
    }
    // An absolute path works as well.
    let absolute = client
        .tool(
            "find_similar",
            json!({"path": root.join("src/retry.rs"), "start_line": 6, "end_line": 9, "top_k": 2}),
        )
        .await;
    assert_eq!(
        absolute["structuredContent"]["results"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{absolute}"
    );

    // get_context: packed source with headers, within the budget.
    for budget in [120, 2048] {
        let context = client
            .tool(
                "get_context",
                json!({"query": "exponential backoff between retries", "token_budget": budget}),
            )
            .await;
        assert_eq!(context["isError"], false, "{context}");
        let s = &context["structuredContent"];
        let used = s["tokens_used"].as_u64().unwrap();
        assert!(used > 0 && used <= budget, "{budget}: {s}");
        let pieces = s["pieces"].as_array().unwrap();
        let sum: u64 = pieces.iter().map(|p| p["tokens"].as_u64().unwrap()).sum();
        assert_eq!(sum, used);
        let text = text_of(&context);
        for p in pieces {
            let header = format!(
                "--- {}:{}-{} ---",
                p["path"].as_str().unwrap(),
                p["start_line"],
                p["end_line"]
            );
            assert!(text.contains(&header), "{header} missing from {text}");
        }
        if budget == 2048 {
            assert!(text.contains("fn backoff_delay"), "{text}");
            assert!(pieces.len() > 1, "a larger budget holds more: {s}");
        }
    }

    // A file the agent writes is searchable at its next query (this server owns the index).
    std::fs::write(
        root.join("src/durations.py"),
        "def parse_duration(text):\n    \"\"\"Turn strings like 5m or 2h into a number of seconds.\"\"\"\n    units = {'s': 1, 'm': 60, 'h': 3600}\n    return int(text[:-1]) * units[text[-1]]\n",
    )
    .unwrap();
    let found = client
        .tool(
            "search_code",
            json!({"query": "convert a duration like 5m into seconds", "top_k": 3}),
        )
        .await;
    assert_eq!(names(&found)[0], "parse_duration", "{found}");

    // Mistakes get errors the agent can act on, and the server keeps serving.
    let unknown = client
        .request("tools/call", json!({"name": "grep_code", "arguments": {}}))
        .await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("search_code"),
        "{unknown}"
    );
    assert_tool_error(
        &client.tool("search_code", json!({})).await,
        "missing field `query`",
    );
    assert_tool_error(
        &client
            .tool("search_code", json!({"query": "x", "top_k": "ten"}))
            .await,
        "invalid type",
    );
    assert_tool_error(
        &client
            .tool("search_code", json!({"query": "x", "topK": 3}))
            .await,
        "unknown field `topK`",
    );
    assert_tool_error(
        &client
            .tool(
                "search_code",
                json!({"query": "x", "languages": ["klingon"]}),
            )
            .await,
        "unknown language",
    );
    std::fs::write(ws.dir.path().join("outside.rs"), "fn outside() {}\n").unwrap();
    assert_tool_error(
        &client
            .tool(
                "find_similar",
                json!({"path": "../outside.rs", "start_line": 1}),
            )
            .await,
        "outside the workspace",
    );
    assert_tool_error(
        &client
            .tool(
                "find_similar",
                json!({"path": "src/nothing_here.rs", "start_line": 1}),
            )
            .await,
        "cannot open src/nothing_here.rs",
    );
    assert_tool_error(
        &client
            .tool(
                "find_similar",
                json!({"path": "src/retry.rs", "start_line": 9999}),
            )
            .await,
        "past the end",
    );
    assert_tool_error(
        &client
            .tool("get_context", json!({"query": "x", "token_budget": 0}))
            .await,
        "token_budget must be between 1",
    );
    // Not JSON at all: dropped (there is no id to answer). JSON that is not a JSON-RPC message,
    // or a call whose params are not an object: an error reply each (rmcp answers those with
    // -32600 Invalid Request and no id). The server keeps serving.
    client.send_raw("this is { not json").await;
    client.send_raw(r#"{"hello": "world"}"#).await;
    client
        .send_raw(
            r#"{"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": "search_code"}"#,
        )
        .await;
    let pong = client.call("ping", json!({})).await;
    assert_eq!(pong, json!({}));
    let errors: Vec<Value> = client
        .others()
        .into_iter()
        .filter(|m| m["error"]["code"].is_i64())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().all(|m| m["error"]["code"] == -32600),
        "{errors:?}"
    );
    let again = client
        .tool("search_code", json!({"query": "exponential backoff delay"}))
        .await;
    assert_eq!(names(&again)[0], "backoff_delay");
    assert!(client.is_running());

    // Closing stdin ends the session cleanly.
    assert!(client.close().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_and_the_language_server_share_one_workspace_index() {
    let ws = Workspace::from_fixture("sample-repo");
    let root = ws.root().canonicalize().unwrap();
    let uri = coder_tests::file_uri;

    // The editor's language server starts first and takes the write lock.
    let mut lsp = LspClient::spawn(&coder_tests::binary(), &ws.dir.path().join("lsp.log"));
    lsp.call(
        "initialize",
        json!({
            "processId": null,
            "rootUri": uri(&root),
            "workspaceFolders": [{"uri": uri(&root), "name": "repo"}],
            "capabilities": {},
            "initializationOptions": {"indexDir": ws.index_dir()}
        }),
    )
    .await;
    lsp.notify("initialized", json!({})).await;
    let started = Instant::now();
    loop {
        let status = lsp.command("indexStatus", Value::Null).await;
        if status["indexing"] == false && status["files"] == 6 && status["pending"] == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The MCP server finds the same index and serves it read-only.
    let mut mcp = start(&ws, "mcp.log");
    mcp.initialize().await;
    let status = mcp.tool("index_status", json!({})).await;
    let s = &status["structuredContent"];
    assert_eq!(s["read_only"], true, "{status}");
    assert_eq!(s["files"], 6, "{status}");
    assert_eq!(s["pending"], 0, "{status}");
    assert!(
        s["notes"][0].as_str().unwrap().contains("another process"),
        "{status}"
    );
    assert!(text_of(&status).contains("read-only"));
    let found = mcp
        .tool(
            "search_code",
            json!({"query": "how long to wait before retrying a failed request"}),
        )
        .await;
    assert!(
        names(&found).iter().take(3).any(|n| n == "backoff_delay"),
        "{found}"
    );
    let context = mcp
        .tool(
            "get_context",
            json!({"query": "exponential backoff", "token_budget": 300}),
        )
        .await;
    assert!(
        context["structuredContent"]["tokens_used"]
            .as_u64()
            .unwrap()
            <= 300
    );
    let similar = mcp
        .tool(
            "find_similar",
            json!({"path": "src/retry.rs", "start_line": 6}),
        )
        .await;
    assert_eq!(similar["isError"], false, "{similar}");

    // An unsaved edit in the editor: the language server indexes it, the MCP server sees it.
    let config = root.join("src/config.py");
    let original = std::fs::read_to_string(&config).unwrap();
    lsp.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri(&config), "languageId": "python", "version": 1, "text": original}}),
    )
    .await;
    let edited = format!(
        "{original}\n\ndef parse_duration(text):\n    \"\"\"Turn strings like 5m or 2h into a number of seconds.\"\"\"\n    units = {{'s': 1, 'm': 60, 'h': 3600}}\n    return int(text[:-1]) * units[text[-1]]\n"
    );
    lsp.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri(&config), "version": 2}, "contentChanges": [{"text": edited}]}),
    )
    .await;
    search_until(&mut mcp, "convert a duration like 5m into seconds", |n| {
        n.first().map(String::as_str) == Some("parse_duration")
    })
    .await;

    // The language server still answers from the index it shares.
    let lsp_results = lsp
        .command(
            "semanticSearch",
            json!({"query": "exponential backoff delay"}),
        )
        .await;
    assert_eq!(lsp_results[0]["name"], "backoff_delay", "{lsp_results}");

    // The editor goes away: the MCP server takes the index over and keeps it up to date.
    drop(lsp);
    std::fs::write(
        root.join("src/geometry.py"),
        "def polygon_area(points):\n    \"\"\"Area of a simple polygon with the shoelace formula.\"\"\"\n    total = 0\n    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1]):\n        total += x1 * y2 - x2 * y1\n    return abs(total) / 2\n",
    )
    .unwrap();
    search_until(&mut mcp, "area of a polygon from its corner points", |n| {
        n.first().map(String::as_str) == Some("polygon_area")
    })
    .await;
    let status = mcp.tool("index_status", json!({})).await;
    let s = &status["structuredContent"];
    assert_eq!(s["read_only"], false, "{status}");
    assert_eq!(s["files"], 7, "{status}");
    assert_eq!(s["notes"], json!([]), "{status}");
    // The unsaved edit is gone with the editor: the disk content is indexed again.
    let found = mcp
        .tool(
            "search_code",
            json!({"query": "convert a duration like 5m into seconds"}),
        )
        .await;
    assert!(
        !names(&found).contains(&"parse_duration".to_string()),
        "{found}"
    );

    // The index is intact for any other reader after the session ends.
    let index_dir = s["index_dir"].as_str().unwrap().to_string();
    assert!(mcp.close().await.success());
    let output = std::process::Command::new(coder_tests::binary())
        .args(["status", "--json", "--root"])
        .arg(&root)
        .arg("--index-dir")
        .arg(&index_dir)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let status: Value = serde_json::from_str(coder_tests::success(&output).trim()).unwrap();
    assert_eq!(status["files"], 7, "{status}");
    assert_eq!(status["pending"], 0, "{status}");
}

/// `notifications/progress` sent for `token`, as (progress, message).
fn progress_of(client: &McpClient, token: &str) -> Vec<(f64, String)> {
    client
        .others()
        .iter()
        .filter(|m| {
            m["method"] == "notifications/progress" && m["params"]["progressToken"] == token
        })
        .map(|m| {
            let params = &m["params"];
            assert_eq!(params["total"], 100.0, "{m}");
            (
                params["progress"].as_f64().expect("progress"),
                params["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// fine_tune and reset_model over MCP run the engine's fine-tuning job (the trainer in a child
/// process) and adapter reset, as the language server and the command line do: progress for
/// the call's progressToken, one run at a time, cancelling, the adapter installed beside the
/// index and followed, then put aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_fine_tunes_the_model_and_resets_it() {
    let ws = Workspace::sample_with_history();
    let log = ws.dir.path().join("mcp.log");
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut client = start(&ws, "mcp.log");
    client.initialize().await;
    let base = wait_indexed(&mut client).await;
    assert_eq!(base["adapter"], Value::Null, "{base}");
    let index_dir = std::path::PathBuf::from(base["index_dir"].as_str().expect("index_dir"));
    let adapter = index_dir.join("adapter");
    assert_tool_error(
        &client.tool("fine_tune", json!({"maxSteps": 1})).await,
        "unknown field `maxSteps`",
    );

    // A long run: a second one is refused while it goes, and cancelling stops it.
    let (id, pending) = client
        .send_request(
            "tools/call",
            json!({"name": "fine_tune", "arguments": {"heldout": 0.3},
                   "_meta": {"progressToken": "ft-cancel"}}),
        )
        .await;
    let started = Instant::now();
    while progress_of(&client, "ft-cancel").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no progress: {}",
            log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_tool_error(
        &client.tool("fine_tune", json!({})).await,
        "already in progress",
    );
    client
        .notify("notifications/cancelled", json!({"requestId": id}))
        .await;
    // A cancelled request gets no answer (MCP); the server log says the trainer stopped, and
    // the next run may start.
    let started = Instant::now();
    while !log_text()
        .contains("fine_tune: fine-tuning was cancelled; the model in use is unchanged")
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the cancelled run did not stop: {}",
            log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(pending);
    assert!(!adapter.exists());

    // A quick run, with any gain installed.
    let quick = json!({"heldout": 0.3, "max_steps_per_stage": 1, "batch_size": 4,
                       "max_tokens": 48, "significance": 1});
    let result = client
        .call(
            "tools/call",
            json!({"name": "fine_tune", "arguments": quick, "_meta": {"progressToken": "ft"}}),
        )
        .await;
    assert_eq!(result["isError"], false, "{result}\n{}", log_text());
    let outcome = &result["structuredContent"];
    assert!(outcome["heldout_queries"].as_u64() > Some(0), "{outcome}");
    assert!(outcome["ndcg_before"].as_f64().is_some(), "{outcome}");
    assert!(text_of(&result).starts_with("held-out nDCG@10"), "{result}");
    let progress = progress_of(&client, "ft");
    assert!(
        progress.iter().any(|(_, m)| m.starts_with("mined ")),
        "{progress:?}"
    );
    assert!(
        progress.windows(2).all(|w| w[0].0 <= w[1].0),
        "{progress:?}"
    );
    assert!(
        !index_dir.join("fine-tune").exists(),
        "a finished run cleans its work"
    );
    if outcome["accepted"] == true {
        assert_eq!(outcome["adapter"], json!(adapter), "{outcome}");
        assert_eq!(outcome["reembedding"], true, "{outcome}");
        // This server writes the index: it follows the adapter in the background.
        wait_status(&mut client, |s| s["adapter"] == json!(adapter)).await;
    } else {
        assert_eq!(outcome["reembedding"], false, "{outcome}");
        assert!(!adapter.exists(), "{outcome}");
        // Install one as an accepted run would, for the reset to put aside.
        let model = coder_lsp::model::resolve(coder_lsp::model::DEFAULT_MODEL).expect("the model");
        coder_tests::write_adapter(&adapter, &model.dir, &model.fingerprint);
    }
    assert!(adapter.join("adapter.json").is_file());

    // reset_model: the adapter goes aside and the base model serves again.
    let reset = client.tool("reset_model", json!({})).await;
    assert_eq!(reset["isError"], false, "{reset}");
    assert_eq!(reset["structuredContent"]["had_adapter"], true, "{reset}");
    assert_eq!(reset["structuredContent"]["reembedding"], true, "{reset}");
    assert!(!adapter.exists());
    assert!(index_dir.join("adapter-previous/adapter.json").is_file());
    wait_status(&mut client, |s| s["adapter"].is_null()).await;
    let again = client.tool("reset_model", json!({})).await;
    assert_eq!(again["structuredContent"]["had_adapter"], false, "{again}");
    assert!(
        text_of(&again).contains("has no fine-tuned adapter"),
        "{again}"
    );
    assert!(client.is_running());
}

#[test]
fn a_missing_root_is_refused_before_serving() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(coder_tests::binary())
        .args(["mcp", "--root"])
        .arg(dir.path().join("no-such-dir"))
        .env("HF_HUB_OFFLINE", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "stdout belongs to the protocol");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-such-dir"), "{stderr}");
}
