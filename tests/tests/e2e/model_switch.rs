//! Switching a workspace to another base model through the real engine (what the language
//! server and the MCP server run): the model that served the index before keeps answering
//! while the new one, which cuts files into other chunks (the tiny Qwen2 checkpoint against
//! MiniLM), embeds every file in the background; then the new chunks and vectors take over
//! at once, and switching back reuses what was embedded before.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use coder_lsp::engine::{Engine, EngineSettings, RootStatus};
use coder_lsp::index::IndexEvent;
use coder_lsp::model::{DEFAULT_MODEL, ModelOptions};
use coder_lsp::search::{Ranking, SearchFilter};
use coder_tests::{Workspace, write_adapter};

fn tiny_qwen2() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/testdata/tiny-qwen2");
    dir.to_str().expect("utf-8 path").to_string()
}

async fn engine(ws: &Workspace, model: &str) -> Arc<Engine> {
    let engine = Engine::new(EngineSettings {
        model: model.to_string(),
        model_options: ModelOptions::default(),
        index_dir: Some(ws.index_dir()),
        exclude: Vec::new(),
        max_file_size: 1 << 20,
        priors: Default::default(),
    });
    engine.load_model().await.expect("the model loads");
    engine
}

async fn root_status(engine: &Arc<Engine>) -> RootStatus {
    let mut status = engine.status().await.expect("status");
    assert_eq!(status.roots.len(), 1);
    status.roots.remove(0)
}

async fn top_name(engine: &Arc<Engine>, query: &str) -> String {
    let hits = engine
        .search(query, 3, SearchFilter::default(), Ranking::default())
        .await
        .expect("search");
    hits.first().map(|h| h.hit.name.clone()).unwrap_or_default()
}

/// Embedding totals reported while a switch ran.
fn recorder() -> (
    Arc<Mutex<Vec<usize>>>,
    impl FnMut(IndexEvent) + Send + 'static,
) {
    let totals = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&totals);
    let progress = move |event| {
        if let IndexEvent::Embedding { total, .. } = event {
            sink.lock().expect("lock").push(total);
        }
    };
    (totals, progress)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_model_serves_until_a_new_model_has_embedded_the_workspace() {
    let ws = Workspace::from_fixture("sample-repo");

    // A workspace indexed with MiniLM.
    let minilm = engine(&ws, DEFAULT_MODEL).await;
    let root = minilm.add_root(&ws.root()).await.expect("add root");
    let indexed = minilm.index_root(&root, |_| {}).await.expect("index");
    assert!(indexed.chunks > 0 && indexed.pending == 0, "{indexed:?}");
    let minilm_status = root_status(&minilm).await;
    minilm.flush().await;
    drop((root, minilm));
    // An adapter fine-tuned for MiniLM cannot serve Qwen2: it is passed over, not an error.
    let model_dir = coder_lsp::model::resolve(DEFAULT_MODEL)
        .expect("MiniLM")
        .dir;
    let adapter = minilm_status.index_dir.join("adapter");
    write_adapter(&adapter, &model_dir, &minilm_status.fingerprint);

    // The server restarts with the Qwen2 model: MiniLM still serves the folder, with every
    // vector, and answers as MiniLM does (random Qwen2 weights rank nothing well).
    let qwen = engine(&ws, &tiny_qwen2()).await;
    let root = qwen.add_root(&ws.root()).await.expect("add root");
    let before = root_status(&qwen).await;
    assert_eq!(before.fingerprint, minilm_status.fingerprint);
    assert!(
        before
            .notes
            .iter()
            .any(|n| n.contains("serves this folder until")),
        "{before:?}"
    );
    let refreshed = qwen.index_root(&root, |_| {}).await.expect("update");
    assert_eq!((refreshed.changed, refreshed.embedded), (0, 0));
    assert_eq!(
        top_name(&qwen, "escape html special characters").await,
        "escapeHtml"
    );

    // In the background, Qwen2 cuts and embeds every file, then takes over at once.
    let (totals, progress) = recorder();
    assert!(qwen.follow_adapter(&root, progress).await.expect("switch"));
    assert_eq!(
        totals.lock().expect("lock").last().copied(),
        Some(indexed.chunks as usize),
        "every chunk text is new to Qwen2"
    );
    let after = root_status(&qwen).await;
    assert_ne!(after.fingerprint, minilm_status.fingerprint);
    assert_eq!(after.adapter, None);
    assert_eq!(
        (after.pending, after.embedded),
        (0, after.chunks),
        "{after:?}"
    );
    assert!(after.notes.is_empty(), "{after:?}");
    assert!(
        !qwen.follow_adapter(&root, |_| {}).await.expect("no switch"),
        "already there"
    );
    qwen.flush().await;
    drop((root, qwen));
    std::fs::remove_dir_all(&adapter).expect("remove the adapter");

    // Restarted with Qwen2 again, it serves at once; back to MiniLM, whose vectors are all
    // still cached: the switch embeds nothing.
    let qwen = engine(&ws, &tiny_qwen2()).await;
    let root = qwen.add_root(&ws.root()).await.expect("add root");
    assert_eq!(root_status(&qwen).await.fingerprint, after.fingerprint);
    drop((root, qwen));
    let minilm = engine(&ws, DEFAULT_MODEL).await;
    let root = minilm.add_root(&ws.root()).await.expect("add root");
    assert_eq!(root_status(&minilm).await.fingerprint, after.fingerprint);
    let (totals, progress) = recorder();
    assert!(
        minilm
            .follow_adapter(&root, progress)
            .await
            .expect("switch")
    );
    assert_eq!(totals.lock().expect("lock").last().copied(), Some(0));
    let back = root_status(&minilm).await;
    assert_eq!(back.fingerprint, minilm_status.fingerprint);
    assert_eq!((back.chunks, back.pending), (minilm_status.chunks, 0));
    assert_eq!(
        top_name(&minilm, "escape html special characters").await,
        "escapeHtml"
    );
}
