//! End-to-end tests of fine-tuning from the editor and the terminal: the `fineTune` and
//! `resetModel` commands of the real language server (the real binary, which runs itself as
//! `coder-lsp train` in a child process), `coder-lsp fine-tune` and `coder-lsp model reset`, and
//! the switch to an adapter in the background while the current vectors keep answering.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coder_tests::lsp_client::LspClient;
use coder_tests::{Workspace, file_uri as uri, write_adapter};
use serde_json::{Value, json};

/// Settings that keep a training run to a few steps.
const QUICK: &[(&str, &str)] = &[
    ("heldout", "0.3"),
    ("maxStepsPerStage", "1"),
    ("batchSize", "4"),
    ("maxTokens", "48"),
    // A handful of held-out queries cannot show a gain beyond chance; install any gain, so
    // that a run can exercise the install.
    ("significance", "1"),
];

fn quick_settings() -> Value {
    let mut settings = serde_json::Map::new();
    for (key, value) in QUICK {
        let number: Value = serde_json::from_str(value).expect("a number");
        settings.insert((*key).to_string(), number);
    }
    Value::Object(settings)
}

async fn initialize(client: &mut LspClient, ws: &Workspace, options: Value) -> PathBuf {
    let root = ws.root().canonicalize().expect("fixture root");
    let mut init_options = json!({"indexDir": ws.index_dir()});
    if let (Some(into), Some(from)) = (init_options.as_object_mut(), options.as_object()) {
        into.extend(from.clone());
    }
    let capabilities = json!({"window": {"workDoneProgress": true}});
    let init = client.initialize(&root, capabilities, init_options).await;
    let commands = init["capabilities"]["executeCommandProvider"]["commands"].to_string();
    assert!(
        commands.contains("\"fineTune\"") && commands.contains("\"resetModel\""),
        "{init}"
    );
    root
}

/// Polls indexStatus until nothing is running and `done` holds for the (only) root's status.
async fn wait_root(client: &mut LspClient, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let status = client.command("indexStatus", Value::Null).await;
        let root = &status["roots"][0];
        if status["indexing"] == false
            && status["files"].as_u64() > Some(0)
            && root["pending"] == 0
            && done(root)
        {
            return root.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the root did not settle: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `$/progress` notifications for `token` once its `end` has arrived (it may come just
/// after the response).
async fn finished_progress(client: &LspClient, token: &str) -> Vec<(String, String, Option<u64>)> {
    let started = Instant::now();
    loop {
        let progress = progress_of(client, token);
        if progress.iter().any(|(kind, _, _)| kind == "end")
            || started.elapsed() > Duration::from_secs(10)
        {
            return progress;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `$/progress` notifications for `token`, as (kind, message, percentage).
fn progress_of(client: &LspClient, token: &str) -> Vec<(String, String, Option<u64>)> {
    client
        .notifications()
        .iter()
        .filter(|n| n["method"] == "$/progress" && n["params"]["token"] == token)
        .map(|n| {
            let value = &n["params"]["value"];
            (
                value["kind"].as_str().unwrap_or("").to_string(),
                value["message"]
                    .as_str()
                    .or(value["title"].as_str())
                    .unwrap_or("")
                    .to_string(),
                value["percentage"].as_u64(),
            )
        })
        .collect()
}

fn fine_tune_request(root: &Path, token: &str, extra: Value) -> Value {
    let mut argument = json!({"root": uri(root)});
    if let (Some(into), Some(from)) = (argument.as_object_mut(), extra.as_object()) {
        into.extend(from.clone());
    }
    json!({"command": "fineTune", "arguments": [argument], "workDoneToken": token})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installed_adapter_is_followed_in_the_background_and_reset_goes_back() {
    let ws = Workspace::from_fixture("sample-repo");
    let mut client = LspClient::start();
    let root = initialize(&mut client, &ws, json!({})).await;
    let base = wait_root(&mut client, |_| true).await;
    assert_eq!(base["adapter"], Value::Null, "{base}");
    let base_fingerprint = base["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string();
    let index_dir = PathBuf::from(base["indexDir"].as_str().expect("indexDir"));

    // An adapter appears beside the index (as `coder-lsp fine-tune` installs it); a reindex
    // follows it: the adapted model's vectors are computed, then served.
    let model = coder_lsp::model::resolve(coder_lsp::model::DEFAULT_MODEL).expect("the model");
    let adapter = index_dir.join("adapter");
    write_adapter(&adapter, &model.dir, &base_fingerprint);
    client.command("reindex", Value::Null).await;
    let adapted = wait_root(&mut client, |r| r["fingerprint"] != base["fingerprint"]).await;
    assert_eq!(adapted["adapter"], json!(adapter), "{adapted}");
    assert_eq!(adapted["embedded"], base["embedded"], "{adapted}");
    let hits = client
        .command(
            "semanticSearch",
            json!({"query": "escape html special characters"}),
        )
        .await;
    assert_eq!(hits[0]["name"], "escapeHtml", "{hits}");

    // Back to the base model: the adapter is kept aside, the base vectors serve again.
    let reset = client
        .command("resetModel", json!({"root": uri(&root)}))
        .await;
    assert_eq!(reset["hadAdapter"], true, "{reset}");
    let back = wait_root(&mut client, |r| r["fingerprint"] == base["fingerprint"]).await;
    assert_eq!(back["adapter"], Value::Null, "{back}");
    assert!(!adapter.exists());
    assert!(index_dir.join("adapter-previous/adapter.json").is_file());
    let again = client.command("resetModel", Value::Null).await;
    assert_eq!(again["hadAdapter"], false, "{again}");

    // A folder that is not open, and a misspelt setting, are refused clearly.
    let outside = client
        .request(
            "workspace/executeCommand",
            json!({"command": "resetModel", "arguments": [{"root": "file:///nowhere"}]}),
        )
        .await;
    assert!(
        outside["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not inside any workspace folder")),
        "{outside}"
    );
    let misspelt = client
        .request(
            "workspace/executeCommand",
            fine_tune_request(&root, "t", json!({"maxStep": 1})),
        )
        .await;
    assert!(
        misspelt["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown field `maxStep`")),
        "{misspelt}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fine_tune_reports_progress_and_installs_only_a_better_adapter() {
    let ws = Workspace::sample_with_history();
    let log = ws.dir.path().join("server.log");
    let mut client = LspClient::spawn(&coder_tests::binary(), &log);
    let root = initialize(&mut client, &ws, json!({"fineTune": quick_settings()})).await;
    let base = wait_root(&mut client, |_| true).await;
    let index_dir = PathBuf::from(base["indexDir"].as_str().expect("indexDir"));

    let response = client
        .request(
            "workspace/executeCommand",
            fine_tune_request(&root, "ft-1", json!({})),
        )
        .await;
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let result = response
        .get("result")
        .unwrap_or_else(|| panic!("fineTune failed: {response}\n{}", log_text()));
    let progress = finished_progress(&client, "ft-1").await;
    let kinds: Vec<&str> = progress.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"begin"), "{progress:?}");
    assert_eq!(kinds.last(), Some(&"end"), "{progress:?}");
    assert!(
        progress
            .iter()
            .any(|(_, m, _)| m.starts_with("mined ") && m.contains("held out")),
        "{progress:?}"
    );
    assert!(
        progress
            .iter()
            .any(|(_, m, _)| m.contains("· step ") && m.contains("loss")),
        "{progress:?}"
    );
    let percentages: Vec<u64> = progress.iter().filter_map(|(_, _, p)| *p).collect();
    assert!(
        percentages.windows(2).all(|w| w[0] <= w[1]),
        "{percentages:?}"
    );
    assert!(result["heldoutQueries"].as_u64() > Some(0), "{result}");
    assert!(result["ndcgBefore"].as_f64().is_some(), "{result}");
    assert!(
        !index_dir.join("fine-tune").exists(),
        "a finished run cleans its work"
    );

    if result["accepted"] == true {
        assert!(index_dir.join("adapter/adapter.json").is_file(), "{result}");
        let adapted = wait_root(&mut client, |r| r["fingerprint"] != base["fingerprint"]).await;
        assert_eq!(adapted["adapter"], json!(index_dir.join("adapter")));
    } else {
        assert!(!index_dir.join("adapter").exists(), "{result}");
        assert!(
            result["message"]
                .as_str()
                .is_some_and(|m| m.contains("stays in use")),
            "{result}"
        );
        let same = wait_root(&mut client, |_| true).await;
        assert_eq!(same["fingerprint"], base["fingerprint"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_fine_tune_keeps_the_current_model() {
    let ws = Workspace::sample_with_history();
    let log = ws.dir.path().join("server.log");
    let mut client = LspClient::spawn(&coder_tests::binary(), &log);
    // Enough steps that the run is still going when the cancel arrives.
    let root = initialize(&mut client, &ws, json!({})).await;
    let base = wait_root(&mut client, |_| true).await;
    let index_dir = PathBuf::from(base["indexDir"].as_str().expect("indexDir"));

    let pending = client
        .send_request(
            "workspace/executeCommand",
            fine_tune_request(&root, "ft-cancel", json!({"heldout": 0.3})),
        )
        .await;
    let started = Instant::now();
    while !progress_of(&client, "ft-cancel")
        .iter()
        .any(|(kind, _, _)| kind == "report")
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no progress: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A second run is refused while one is going.
    let second = client
        .request(
            "workspace/executeCommand",
            fine_tune_request(&root, "ft-2", json!({})),
        )
        .await;
    assert!(
        second["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("already in progress")),
        "{second}"
    );
    client
        .notify(
            "window/workDoneProgress/cancel",
            json!({"token": "ft-cancel"}),
        )
        .await;
    let response = tokio::time::timeout(Duration::from_secs(30), pending)
        .await
        .expect("the cancelled run answers promptly")
        .expect("a response");
    assert_eq!(response["error"]["code"], -32800, "{response}");
    assert!(
        response["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("model in use is unchanged")),
        "{response}"
    );
    let progress = finished_progress(&client, "ft-cancel").await;
    assert_eq!(
        progress.last().map(|(k, _, _)| k.as_str()),
        Some("end"),
        "{progress:?}"
    );
    assert!(!index_dir.join("adapter").exists());
    let after = wait_root(&mut client, |_| true).await;
    assert_eq!(after["fingerprint"], base["fingerprint"]);
    assert_eq!(after["adapter"], Value::Null);
}

/// The trainer runs in a child process (`coder-lsp train`): when it fails, the client gets its
/// error and the server stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_trainer_reports_its_error_and_the_server_stays_up() {
    let ws = Workspace::from_fixture("sample-repo");
    let log = ws.dir.path().join("server.log");
    let mut client = LspClient::spawn(&coder_tests::binary(), &log);
    let root = initialize(&mut client, &ws, json!({})).await;
    let base = wait_root(&mut client, |_| true).await;
    // A setting only the trainer refuses (in-batch negatives need a batch of two).
    let response = client
        .request(
            "workspace/executeCommand",
            fine_tune_request(&root, "ft", json!({"batchSize": 1})),
        )
        .await;
    let message = response["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("fine-tuning failed: --batch-size must be at least 2"),
        "{response}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // The server is still up, with the model it had.
    let after = wait_root(&mut client, |_| true).await;
    assert_eq!(after["fingerprint"], base["fingerprint"]);
    assert_eq!(after["adapter"], Value::Null);
}

/// A local chat-completions endpoint for `--generator`: answers every request with a query and
/// hands back the requests it saw once `expected` came or `wait` passed.
fn fake_generator(
    expected: usize,
    wait: Duration,
) -> (String, std::thread::JoinHandle<Vec<Value>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}/v1", listener.local_addr().expect("address"));
    let handle = std::thread::spawn(move || {
        let deadline = Instant::now() + wait;
        let mut seen = Vec::new();
        while seen.len() < expected && Instant::now() < deadline {
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            };
            stream.set_nonblocking(false).expect("blocking");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("header");
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().expect("length");
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("body");
            seen.push(serde_json::from_slice(&body).expect("a JSON request"));
            let answer = json!({"choices": [{"message": {"role": "assistant",
                "content": "read the port and host from a settings file"}}]})
            .to_string();
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            )
            .expect("answer");
        }
        seen
    });
    (url, handle)
}

/// `coder-lsp fine-tune --generator` reaches the trainer: the endpoint is asked for a query
/// about each function, up to the limit, with the function's code.
#[test]
fn the_cli_passes_a_query_generator_to_the_trainer() {
    let ws = Workspace::sample_with_history();
    ws.json("index", &[]);
    let (url, server) = fake_generator(2, Duration::from_secs(120));
    let outcome = ws.json(
        "fine-tune",
        &[
            "--generator",
            &url,
            "--generator-model",
            "local-model",
            "--generator-limit",
            "2",
            "--heldout",
            "0.3",
            "--max-steps-per-stage",
            "1",
            "--batch-size",
            "4",
            "--max-tokens",
            "48",
        ],
    );
    assert!(outcome["heldout_queries"].as_u64().is_some(), "{outcome}");
    let seen = server.join().expect("the fake generator");
    assert_eq!(seen.len(), 2, "one request per function, up to the limit");
    for request in &seen {
        assert_eq!(request["model"], "local-model");
        let code = request["messages"][1]["content"].as_str().unwrap_or("");
        assert!(!code.trim().is_empty(), "{request}");
    }
}

#[test]
fn the_cli_fine_tunes_installs_and_resets() {
    let ws = Workspace::sample_with_history();
    let base = ws.json("index", &[]);
    assert!(base["embedded"].as_u64() > Some(0), "{base}");
    let mut args: Vec<String> = Vec::new();
    for (key, value) in QUICK {
        let flag: String = key
            .chars()
            .flat_map(|c| {
                if c.is_ascii_uppercase() {
                    vec!['-', c.to_ascii_lowercase()]
                } else {
                    vec![c]
                }
            })
            .collect();
        args.push(format!("--{flag}"));
        args.push((*value).to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = ws.json("fine-tune", &args);
    assert!(outcome["heldout_queries"].as_u64() > Some(0), "{outcome}");
    let adapter = ws.index_dir().join("adapter");
    if outcome["accepted"] == true {
        assert_eq!(outcome["adapter"], json!(adapter));
    } else {
        assert!(!adapter.exists(), "{outcome}");
        assert_eq!(ws.json("status", &[])["adapter"], Value::Null);
        // Install one as an accepted run would, to follow it through the other commands.
        let status = ws.json("status", &[]);
        let model_dir = PathBuf::from(status["model_dir"].as_str().expect("model_dir"));
        write_adapter(
            &adapter,
            &model_dir,
            status["fingerprint"].as_str().expect("fp"),
        );
    }
    // Every command now uses the installed adapter: another model, so everything is embedded
    // again for it.
    let status = ws.json("status", &[]);
    assert_eq!(status["adapter"], json!(adapter), "{status}");
    let adapted = ws.json("index", &[]);
    assert_eq!(adapted["embedded"], base["embedded"], "{adapted}");
    let reset = std::process::Command::new(coder_tests::binary())
        .args(["model", "reset", "--root"])
        .arg(ws.root())
        .arg("--index-dir")
        .arg(ws.index_dir())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("run model reset");
    let text = coder_tests::success(&reset);
    assert!(
        text.contains("base model"),
        "model reset explains itself: {text}"
    );
    assert_eq!(ws.json("status", &[])["adapter"], Value::Null);
    let again = ws.json("index", &[]);
    assert_eq!(again["embedded"], 0, "base vectors were kept: {again}");
}

/// `coder-lsp fine-tune` with an adapter chosen explicitly fails before anything runs, with the
/// engine's refusal that every front end shows, and `coder-lsp model reset` (through the engine)
/// says when there is no adapter to put aside.
#[test]
fn the_cli_refuses_an_explicit_adapter_and_reset_says_when_there_is_none() {
    let ws = Workspace::from_fixture("sample-repo");
    let output = ws
        .command("fine-tune")
        .args(["--adapter", "/nowhere/adapter"])
        .output()
        .expect("run fine-tune");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "the adapter /nowhere/adapter was chosen explicitly; leave out --adapter (CODER_LSP_ADAPTER) to fine-tune per workspace"
        ),
        "{stderr}"
    );
    assert!(!ws.index_dir().join("fine-tune").exists());
    let reset = std::process::Command::new(coder_tests::binary())
        .args(["model", "reset", "--root"])
        .arg(ws.root())
        .arg("--index-dir")
        .arg(ws.index_dir())
        .output()
        .expect("run model reset");
    let text = coder_tests::success(&reset);
    assert!(text.contains("has no fine-tuned adapter"), "{text}");
}

/// A fine-tuning run in another process (a language server's, say) holds its index directory's
/// lock: `coder-lsp model reset` and `coder-lsp fine-tune` on that workspace are refused with a
/// message that says so, and the installed adapter stays where it is; once the lock is free the
/// reset goes through.
#[test]
fn the_cli_sees_a_fine_tuning_run_of_another_process() {
    let ws = Workspace::from_fixture("sample-repo");
    ws.json("index", &[]);
    let adapter = ws.index_dir().join("adapter");
    std::fs::create_dir_all(&adapter).expect("adapter dir");
    // What the engine's run holds (`finetune::RunLock`), taken here as another process would.
    let lock = std::fs::File::create(ws.index_dir().join("fine-tune.lock")).expect("lock file");
    lock.lock().expect("take the lock");
    let reset = || {
        std::process::Command::new(coder_tests::binary())
            .args(["model", "reset", "--root"])
            .arg(ws.root())
            .arg("--index-dir")
            .arg(ws.index_dir())
            .output()
            .expect("run model reset")
    };
    let refused = [
        reset(),
        ws.command("fine-tune").output().expect("run fine-tune"),
    ];
    for output in refused {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("another coder-lsp process is fine-tuning the workspace"),
            "{stderr}"
        );
    }
    assert!(adapter.is_dir(), "the adapter was not touched");
    drop(lock);
    let text = coder_tests::success(&reset());
    assert!(text.contains("base model"), "{text}");
    assert!(!adapter.exists());
}

/// Writes an adapter whose factors are all random: it scrambles every embedding.
fn write_scrambled_adapter(dir: &std::path::Path, model_dir: &std::path::Path, fingerprint: &str) {
    use coder_lsp::embed::lora::{AdapterMeta, LoraConfig, LoraParams};
    let device = candle_core::Device::Cpu;
    let model = coder_lsp::embed::load_trainable(model_dir, &device, &Default::default())
        .expect("load the model");
    let lora = LoraParams::new(&model.lora_modules(), &LoraConfig::default(), 7, &device)
        .expect("make adapters");
    for var in lora.vars() {
        let noise = candle_core::Tensor::randn(0f32, 1.0, var.shape(), &device).expect("noise");
        var.set(&noise).expect("set factors");
    }
    lora.save(dir, &AdapterMeta::new(fingerprint, "bert"))
        .expect("write the adapter");
}

#[test]
fn regression_21_the_served_gate_searches_a_leak_free_copy_exactly_as_search_does() {
    use coder_lsp::index::store::IndexStore;
    use coder_lsp::model::{DEFAULT_MODEL, ModelOptions, local_model_dir};
    use coder_lsp::train::pairs::PairSource;
    use coder_lsp::train::served::{ServedEval, ServedQuery, judge};
    use coder_lsp::workspace::WalkOptions;

    let ws = Workspace::sample_with_history();
    ws.json("index", &[]);
    let model_dir = local_model_dir(DEFAULT_MODEL);
    let chunker = coder_lsp::embed::chunker_for_model_dir(&model_dir).expect("chunker");
    let mined = coder_lsp::train::mine::mine_repository(
        &ws.root(),
        &coder_lsp::train::mine::MineOptions::new(chunker),
    )
    .expect("mine the sample");
    let queries = ServedQuery::from_heldout(&mined.pairs);
    let docs: Vec<&ServedQuery> = queries
        .iter()
        .filter(|q| q.source == PairSource::DocComment)
        .collect();
    assert!(docs.len() >= 3, "{queries:?}");

    let dir = ws.dir.path().join("served-eval");
    let eval = ServedEval::prepare(
        &ws.root(),
        WalkOptions::default(),
        Some(&ws.index_dir()),
        &dir,
        DEFAULT_MODEL,
        ModelOptions::default(),
        queries.clone(),
    )
    .expect("prepare the evaluation copy");
    assert!(
        eval.leaks_removed >= docs.len().min(3),
        "{}",
        eval.leaks_removed
    );

    // Leakage: the workspace's chunk holds the doc the question was cut from; the copy's does
    // not, for the vectors and for BM25 alike.
    let (workspace, _) = IndexStore::open(&ws.index_dir().join("store.sqlite")).unwrap();
    let (copy, _) = IndexStore::open(&dir.join("store.sqlite")).unwrap();
    let text_of = |store: &IndexStore, q: &ServedQuery| {
        store
            .chunks_in_file(&q.file)
            .unwrap()
            .into_iter()
            .filter(|c| c.name == q.symbol)
            .min_by_key(|c| c.start_line)
            .map(|c| c.text)
            .unwrap_or_default()
    };
    for q in &docs {
        let (original, evaluated) = (text_of(&workspace, q), text_of(&copy, q));
        assert_eq!(Some(&evaluated), q.leak_free.as_ref(), "{q:?}");
        // Words of the question that only the doc held are gone from the evaluated chunk.
        let only_in_doc: Vec<&str> = q
            .query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 3 && original.contains(w) && !evaluated.contains(w))
            .collect();
        assert!(!only_in_doc.is_empty(), "{q:?}\n{original}");
    }
    drop((workspace, copy));

    // The gate's numbers are those of a separate `coder-lsp search` on the same copy.
    let scores = eval.measure(None).expect("measure the base model");
    let input: String = queries.iter().map(|q| format!("{}\n", q.query)).collect();
    let mut child = std::process::Command::new(coder_tests::binary())
        .args([
            "search",
            "--no-update",
            "--json",
            "--stdin",
            "-k",
            "10",
            "--root",
        ])
        .arg(ws.root())
        .arg("--index-dir")
        .arg(&dir)
        .env("HF_HUB_OFFLINE", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run coder-lsp search");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = coder_tests::success(&output);
    let answers: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), queries.len());
    for ((q, answer), score) in queries.iter().zip(&answers).zip(&scores) {
        let rank = answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .position(|h| h["path"] == q.file.as_str() && h["name"] == q.symbol.as_str());
        let expected = rank.map_or(0.0, |r| 1.0 / ((r + 2) as f64).log2());
        assert!(
            (expected - score).abs() < 1e-9,
            "{q:?}: {expected} != {score}"
        );
    }

    // Hard negatives from the served ranking: what the same search shows before a question's
    // answer (never a symbol named like the answer), best first, at most two.
    let confusers = eval.confusers(2).expect("mine the confusers");
    assert_eq!(confusers.len(), queries.len());
    let mut with_confusers = 0;
    for ((q, answer), found) in queries.iter().zip(&answers).zip(&confusers) {
        let hits = answer["results"].as_array().unwrap();
        let Some(rank) = hits
            .iter()
            .position(|h| h["path"] == q.file.as_str() && h["name"] == q.symbol.as_str())
        else {
            continue;
        };
        let before: Vec<&str> = hits[..rank]
            .iter()
            .map(|h| h["name"].as_str().unwrap())
            .filter(|name| *name != q.symbol)
            .collect();
        assert!(found.len() <= before.len().min(2), "{q:?}: {found:?}");
        assert_eq!(found.is_empty(), before.is_empty(), "{q:?}: {found:?}");
        for (text, name) in found.iter().zip(&before) {
            assert!(text.contains(name), "{q:?}: {name} not in {text}");
        }
        with_confusers += usize::from(!found.is_empty());
    }
    assert!(
        with_confusers > 0,
        "no question had a confuser: {confusers:?}"
    );

    // An adapter that scrambles the embeddings answers worse and is refused.
    let scrambled = ws.dir.path().join("scrambled");
    let fingerprint = coder_lsp::model::fingerprint(&model_dir).unwrap();
    write_scrambled_adapter(&scrambled, &model_dir, &fingerprint);
    let worse = eval
        .measure(Some(&scrambled))
        .expect("measure the scrambled adapter");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(mean(&worse) < mean(&scores), "{worse:?} vs {scores:?}");
    let judged = judge(&eval.queries, &scores, &[(1, worse)], 0.05, 1);
    assert!(!judged.accepted, "{}", judged.decision);
    assert!(
        judged.decision.contains("not better"),
        "{}",
        judged.decision
    );
}
