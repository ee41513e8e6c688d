//! The language server: LSP requests in, engine calls out, LSP responses back.
//!
//! This is the only module that knows LSP types. It validates `initializationOptions`, starts
//! background indexing with `$/progress`, keeps the index fresh from buffers and file events,
//! and answers `workspace/executeCommand` (semanticSearch, findSimilar, ragContext,
//! indexStatus, reindex), `workspace/symbol`, `textDocument/hover` and `coder/context`.
//! A panic inside a handler becomes an error reply; the server keeps running.

pub mod config;
pub mod ext;
mod progress;
mod protocol;
mod transport;

pub use transport::serve;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::FutureExt;
use serde_json::Value;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, ClientSocket, LanguageServer, LspService};

use crate::context::{DEFAULT_TOKEN_BUDGET, MAX_TOKEN_BUDGET};
use crate::engine::{Engine, EngineError, RootedHit};
use crate::index::IndexError;
use crate::search::{Ranking, SearchFilter};
use config::Config;
use ext::{
    Command, ContextArgs, ContextChunkResult, ContextResult, FineTuneResult, HitResult, ModelArgs,
    ReindexResult, Request, ResetResult, SearchArgs, SimilarArgs,
};
use protocol::{lsp_range, path_of, symbol_kind, uri_of};

/// How long typing must pause before an unsaved buffer is re-indexed.
const CHANGE_DEBOUNCE: Duration = Duration::from_millis(300);
/// Most related symbols shown in a hover.
const HOVER_RELATED: usize = 3;
/// Hover text is kept under this many characters.
const HOVER_MAX_CHARS: usize = 1500;

/// The language server handed to tower-lsp: a thin owner of the shared state, so background
/// tasks can hold the state beyond a handler's `&self`.
pub struct Backend {
    state: Arc<ServerState>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

/// The server state shared by all handlers and background tasks.
pub struct ServerState {
    client: Client,
    config: OnceLock<Config>,
    engine: OnceLock<Arc<Engine>>,
    /// Folders from `initialize`, indexed once `initialized` arrives.
    initial_roots: Mutex<Vec<PathBuf>>,
    /// Latest change number per open file, so only the last of a burst of edits is indexed.
    changes: Mutex<HashMap<PathBuf, u64>>,
    change_counter: AtomicU64,
    progress_supported: AtomicBool,
    dynamic_watch_supported: AtomicBool,
    /// The `notify` watcher used when the client cannot watch files for us.
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
    progress_counter: AtomicU64,
    /// How to cancel the fine-tuning run in progress (the engine runs one at a time): its
    /// progress token and its stop.
    fine_tuning: Mutex<Option<FineTuneCancel>>,
}

struct FineTuneCancel {
    token: Option<ProgressToken>,
    stop: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState").finish_non_exhaustive()
    }
}

/// Builds the LSP service (used by `serve_stdio` and by tests over an in-memory duplex).
pub fn service() -> (LspService<Backend>, ClientSocket) {
    LspService::build(|client| Backend {
        state: Arc::new(ServerState {
            client,
            config: OnceLock::new(),
            engine: OnceLock::new(),
            initial_roots: Mutex::new(Vec::new()),
            changes: Mutex::new(HashMap::new()),
            change_counter: AtomicU64::new(0),
            progress_supported: AtomicBool::new(false),
            dynamic_watch_supported: AtomicBool::new(false),
            watcher: Mutex::new(None),
            progress_counter: AtomicU64::new(0),
            fine_tuning: Mutex::new(None),
        }),
    })
    .custom_method("coder/context", Backend::context_request)
    .custom_method("window/workDoneProgress/cancel", Backend::cancel_progress)
    .finish()
}

/// Serves LSP over stdin/stdout until the client exits.
pub async fn serve_stdio() {
    serve(tokio::io::stdin(), tokio::io::stdout()).await;
}

fn invalid_params(message: impl Into<String>) -> Error {
    Error {
        code: ErrorCode::InvalidParams,
        message: message.into().into(),
        data: None,
    }
}

/// A command's typed result ([`ext`]) as the JSON of its reply.
fn reply(result: impl serde::Serialize) -> Result<Value> {
    serde_json::to_value(result).map_err(|e| Error {
        code: ErrorCode::InternalError,
        message: format!("encoding the result: {e}").into(),
        data: None,
    })
}

fn engine_error(e: EngineError) -> Error {
    let code = match e {
        EngineError::OutsideWorkspace(_) => ErrorCode::InvalidParams,
        EngineError::FineTuneRunning
        | EngineError::FineTuneElsewhere(_)
        | EngineError::NotIndexed { .. } => ErrorCode::ServerError(-32001),
        EngineError::FineTune(crate::finetune::FineTuneError::Cancelled) => {
            ErrorCode::RequestCancelled
        }
        _ => ErrorCode::InternalError,
    };
    Error {
        code,
        message: e.to_string().into(),
        data: None,
    }
}

/// Runs a handler so that a panic inside it becomes an error reply.
async fn guarded<T>(name: &str, handler: impl Future<Output = Result<T>>) -> Result<T> {
    match AssertUnwindSafe(handler).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!("{name} panicked: {what}");
            Err(Error {
                code: ErrorCode::InternalError,
                message: format!("coder-lsp hit an internal error in {name}: {what}").into(),
                data: None,
            })
        }
    }
}

impl ServerState {
    fn engine(&self) -> Result<&Arc<Engine>> {
        self.engine.get().ok_or_else(|| Error {
            code: ErrorCode::ServerError(-32002),
            message: "the server is not initialized".into(),
            data: None,
        })
    }

    fn config(&self) -> Option<&Config> {
        self.config.get()
    }

    fn top_k(&self, asked: Option<usize>) -> usize {
        asked
            .unwrap_or_else(|| self.config().map_or(10, |c| c.top_k))
            .clamp(1, 200)
    }

    /// Indexes one root in the background with `$/progress` reporting.
    fn spawn_indexing(self: &Arc<Self>, root: PathBuf) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let Ok(engine) = this.engine().cloned() else {
                return;
            };
            let entry = match engine.add_root(&root).await {
                Ok(entry) => entry,
                Err(e) => {
                    this.client
                        .show_message(
                            MessageType::ERROR,
                            format!("coder-lsp cannot index {}: {e}", root.display()),
                        )
                        .await;
                    return;
                }
            };
            this.watch_root(&entry.root, true);
            let number = this.progress_counter.fetch_add(1, Ordering::Relaxed);
            let reporter = progress::start(
                &this.client,
                this.progress_supported.load(Ordering::Relaxed),
                number,
                &root,
            )
            .await;
            let sink = reporter.sink();
            let mut result = engine.index_root(&entry, move |event| sink(event)).await;
            // A fine-tuned adapter installed (or retired) since the root's model was chosen is
            // followed now: its vectors are computed while the current ones keep serving.
            let mut switched = false;
            if result.is_ok() {
                let sink = reporter.sink();
                match engine
                    .follow_adapter(&entry, move |event| sink(event))
                    .await
                {
                    Ok(changed) => switched = changed,
                    Err(e) => result = Err(e),
                }
            }
            match &result {
                Ok(stats) => {
                    let model = if switched {
                        "; the new model is in use"
                    } else {
                        ""
                    };
                    reporter
                        .finish(format!(
                            "{} files, {} chunks ({} embedded){model}",
                            stats.files, stats.chunks, stats.embedded
                        ))
                        .await;
                }
                Err(EngineError::Index(IndexError::Cancelled)) => {
                    reporter
                        .finish("cancelled; run `reindex` to finish".into())
                        .await;
                }
                Err(EngineError::NoModel(_)) => {
                    reporter
                        .finish("no model: lexical search only".into())
                        .await
                }
                Err(e) => {
                    reporter.finish(format!("failed: {e}")).await;
                    this.client
                        .log_message(
                            MessageType::WARNING,
                            format!("coder-lsp: indexing {} stopped: {e}", root.display()),
                        )
                        .await;
                }
            }
        });
    }

    async fn register_watchers(self: &Arc<Self>) {
        if self.dynamic_watch_supported.load(Ordering::Relaxed) {
            let options = DidChangeWatchedFilesRegistrationOptions {
                watchers: vec![FileSystemWatcher {
                    glob_pattern: GlobPattern::String("**/*".into()),
                    kind: None,
                }],
            };
            let registration = Registration {
                id: "coder-lsp-watch".into(),
                method: "workspace/didChangeWatchedFiles".into(),
                register_options: serde_json::to_value(options).ok(),
            };
            if self
                .client
                .register_capability(vec![registration])
                .await
                .is_ok()
            {
                return;
            }
        }
        self.start_notify_watcher();
    }

    /// Watches the roots ourselves when the client cannot, so changes made outside the editor
    /// (`git checkout`, generators) reach the index.
    fn start_notify_watcher(self: &Arc<Self>) {
        use notify::Watcher;
        let Ok(engine) = self.engine().cloned() else {
            return;
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                for path in event.paths {
                    let _ = tx.send(path);
                }
            }
        });
        let mut watcher = match watcher {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!("file watching is unavailable: {e}");
                return;
            }
        };
        for root in engine.roots() {
            if let Err(e) = watcher.watch(&root.root, notify::RecursiveMode::Recursive) {
                tracing::warn!("cannot watch {}: {e}", root.root.display());
            }
        }
        // Roots added later are watched as they arrive (see `watch_root`).
        *self.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(watcher);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                // Let a burst (a checkout) settle, then sync each path once.
                tokio::time::sleep(CHANGE_DEBOUNCE).await;
                let mut paths = vec![first];
                while let Ok(p) = rx.try_recv() {
                    paths.push(p);
                }
                paths.sort();
                paths.dedup();
                for path in paths {
                    if path.is_dir() {
                        continue;
                    }
                    if let Err(e) = engine.sync_disk(&path).await {
                        tracing::debug!("watch: {}: {e}", path.display());
                    }
                }
            }
        });
    }

    /// Starts or stops watching a root with our own watcher, when we use one.
    fn watch_root(&self, root: &std::path::Path, watch: bool) {
        use notify::Watcher;
        let mut guard = self.watcher.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(watcher) = guard.as_mut() {
            let result = if watch {
                watcher.watch(root, notify::RecursiveMode::Recursive)
            } else {
                watcher.unwatch(root)
            };
            if let Err(e) = result {
                tracing::warn!("watching {}: {e}", root.display());
            }
        }
    }

    async fn semantic_search(&self, args: SearchArgs) -> Result<Vec<HitResult>> {
        let filter =
            SearchFilter::new(&args.paths, &args.languages, &args.kinds).map_err(invalid_params)?;
        let hits = self
            .engine()?
            .search(
                &args.query,
                self.top_k(args.top_k),
                filter,
                Ranking {
                    explain: args.explain,
                    ..Ranking::mode(args.mode.unwrap_or_default())
                },
            )
            .await
            .map_err(engine_error)?;
        Ok(hits.iter().filter_map(HitResult::new).collect())
    }

    async fn find_similar(&self, args: SimilarArgs) -> Result<Vec<HitResult>> {
        let path = path_of(&args.uri).ok_or_else(|| invalid_params("uri must be a file:// URI"))?;
        let (start, end) = match (args.range, args.position) {
            (Some(range), _) => (
                range.start.line + 1,
                range.end.line.max(range.start.line) + 1,
            ),
            (None, Some(position)) => {
                let engine = self.engine()?;
                match engine
                    .symbol_at(&path, position.line + 1)
                    .await
                    .map_err(engine_error)?
                {
                    Some((start, end, _)) => (start, end),
                    None => (position.line + 1, position.line + 1),
                }
            }
            (None, None) => return Err(invalid_params("findSimilar needs `range` or `position`")),
        };
        let hits = self
            .engine()?
            .similar(&path, start, end, self.top_k(args.top_k))
            .await
            .map_err(engine_error)?;
        Ok(hits.iter().filter_map(HitResult::new).collect())
    }

    async fn rag_context(&self, args: ContextArgs) -> Result<ContextResult> {
        let budget = args.token_budget.unwrap_or(DEFAULT_TOKEN_BUDGET);
        if budget == 0 || budget > MAX_TOKEN_BUDGET {
            return Err(invalid_params(format!(
                "tokenBudget must be between 1 and {MAX_TOKEN_BUDGET}"
            )));
        }
        let packed = self
            .engine()?
            .context(&args.query, budget)
            .await
            .map_err(engine_error)?;
        let mut result = ContextResult::default();
        for (root, context) in packed {
            result.tokens_used += context.tokens_used;
            for chunk in context.chunks {
                let Some(uri) = uri_of(&root.join(&chunk.path)) else {
                    continue;
                };
                result.chunks.push(ContextChunkResult {
                    uri,
                    range: lsp_range(chunk.start_line, chunk.end_line),
                    text: chunk.text,
                    score: chunk.score,
                    tokens: chunk.tokens,
                });
            }
        }
        Ok(result)
    }

    /// The root a `fineTune`/`resetModel` request names (default: the first folder).
    fn model_root(&self, args: &ModelArgs) -> Result<Arc<crate::engine::RootIndex>> {
        let path = match &args.root {
            Some(uri) => {
                Some(path_of(uri).ok_or_else(|| invalid_params("root must be a file:// URI"))?)
            }
            None => None,
        };
        self.engine()?
            .root_entry(path.as_deref())
            .map_err(engine_error)
    }

    /// `fineTune`: trains an adapter for one folder with `coder-lsp train` (a child process),
    /// reporting on the request's `workDoneToken`; a cancel (of the request or of the
    /// progress) stops it and keeps the current model. An accepted adapter is then followed in
    /// the background like an indexing run.
    async fn fine_tune(
        self: &Arc<Self>,
        args: ModelArgs,
        token: Option<ProgressToken>,
    ) -> Result<FineTuneResult> {
        let engine = Arc::clone(self.engine()?);
        let root = self.model_root(&args)?;
        let defaults = self
            .config()
            .map(|c| c.fine_tune.clone())
            .unwrap_or_default();
        let run = engine
            .start_fine_tune_root(&root, &defaults, &args.settings)
            .await
            .map_err(engine_error)?;
        // The engine runs one fine-tuning at a time, so this is the only one to cancel.
        let stop = Arc::new(tokio::sync::Notify::new());
        *self.fine_tuning.lock().unwrap_or_else(|e| e.into_inner()) = Some(FineTuneCancel {
            token: token.clone(),
            stop: Arc::clone(&stop),
        });
        // Cleared however this ends, a dropped (cancelled) request included.
        struct Clear<'a>(&'a Mutex<Option<FineTuneCancel>>);
        impl Drop for Clear<'_> {
            fn drop(&mut self) {
                *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
        }
        let _clear = Clear(&self.fine_tuning);
        let name = root.root.file_name().map_or_else(
            || root.root.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let progress = match token {
            Some(token) => Some(
                self.client
                    .progress(token, format!("Fine-tuning the model on {name}"))
                    .with_percentage(0)
                    .with_cancel_button()
                    .begin()
                    .await,
            ),
            None => None,
        };
        let (mut updates, run) = run.run_reporting(async move { stop.notified().await });
        let forward = async {
            while let Some(update) = updates.recv().await {
                if let Some(progress) = &progress {
                    progress
                        .report_with_message(update.message, update.percentage, None)
                        .await;
                }
            }
        };
        let (result, ()) = tokio::join!(run, forward);
        let summary = match &result {
            Ok(outcome) if outcome.accepted => format!(
                "{}; the fine-tuned model is in use once the workspace is re-embedded",
                outcome.message
            ),
            Ok(outcome) => outcome.message.clone(),
            Err(e) => e.to_string(),
        };
        if let Some(progress) = progress {
            progress.finish_with_message(summary.clone()).await;
        }
        let outcome = result.map_err(engine_error)?;
        if outcome.accepted {
            self.spawn_indexing(root.root.clone());
        }
        Ok(FineTuneResult::new(outcome, summary))
    }

    /// `resetModel`: the folder goes back to the base model (its adapter kept in
    /// `adapter-previous/`); the switch runs in the background like an indexing run.
    fn reset_model(self: &Arc<Self>, args: ModelArgs) -> Result<ResetResult> {
        let root = self.model_root(&args)?;
        let had = self
            .engine()?
            .retire_adapter(root.index_dir())
            .map_err(engine_error)?;
        self.spawn_indexing(root.root.clone());
        Ok(ResetResult {
            had_adapter: had,
            root: root.root.clone(),
        })
    }

    async fn index_status(&self) -> Result<Value> {
        let status = self.engine()?.status().await.map_err(engine_error)?;
        ext::index_status_result(&status).map_err(invalid_params)
    }

    /// Indexes an unsaved buffer once typing pauses: only the last of a burst of edits runs.
    fn schedule_buffer_sync(self: &Arc<Self>, path: PathBuf, text: String) {
        self.buffer_sync(path, text, CHANGE_DEBOUNCE);
    }

    /// Indexes a buffer's text after `delay`, unless a newer change to the same file arrives
    /// meanwhile. A save uses no delay: the text has settled, and any debounced edit still
    /// waiting is superseded by it.
    fn buffer_sync(self: &Arc<Self>, path: PathBuf, text: String, delay: Duration) {
        let number = self.change_counter.fetch_add(1, Ordering::Relaxed) + 1;
        self.changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.clone(), number);
        let this = Arc::clone(self);
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let latest = this
                .changes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&path)
                .copied();
            if latest != Some(number) {
                return;
            }
            let Ok(engine) = this.engine() else {
                return;
            };
            if let Err(e) = engine.sync_buffer(&path, text).await {
                tracing::debug!("indexing buffer {}: {e}", path.display());
            }
        });
    }

    async fn related_hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        if !self.config().is_some_and(|c| c.hover) {
            return Ok(None);
        }
        let position = params.text_document_position_params.position;
        let Some(path) = path_of(&params.text_document_position_params.text_document.uri) else {
            return Ok(None);
        };
        let engine = self.engine()?;
        let Some(text) = engine.read_file(&path).await else {
            return Ok(None);
        };
        if !protocol::on_identifier(&text, position) {
            return Ok(None);
        }
        let Some((start, end, name)) = engine
            .symbol_at(&path, position.line + 1)
            .await
            .map_err(engine_error)?
        else {
            return Ok(None);
        };
        let related = match engine.similar(&path, start, end, HOVER_RELATED).await {
            Ok(hits) => hits,
            Err(EngineError::NoModel(_)) => return Ok(None),
            Err(e) => return Err(engine_error(e)),
        };
        if related.is_empty() {
            return Ok(None);
        }
        let markdown = protocol::related_markdown(&name, &related, HOVER_MAX_CHARS);
        Ok(Some(Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: markdown,
            }),
            range: None,
        }))
    }
}

impl Backend {
    /// `coder/context`: the same as the `ragContext` command, as a request.
    async fn context_request(&self, params: Value) -> Result<Value> {
        guarded("coder/context", async {
            let args: ContextArgs = serde_json::from_value(params)
                .map_err(|e| invalid_params(format!("invalid coder/context params: {e}")))?;
            reply(self.state.rag_context(args).await?)
        })
        .await
    }

    /// `window/workDoneProgress/cancel`: stops indexing (what is done is kept) or the
    /// fine-tuning run the token belongs to.
    async fn cancel_progress(&self, params: WorkDoneProgressCancelParams) {
        if let Some(run) = self
            .state
            .fine_tuning
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            && run.token.as_ref() == Some(&params.token)
        {
            run.stop.notify_one();
            return;
        }
        if progress::is_ours(&params.token)
            && let Ok(engine) = self.state.engine()
        {
            engine.cancel_indexing();
        }
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let config =
            Config::from_options(params.initialization_options.clone()).map_err(invalid_params)?;
        let capabilities = &params.capabilities;
        self.state.progress_supported.store(
            capabilities
                .window
                .as_ref()
                .and_then(|w| w.work_done_progress)
                .unwrap_or(false),
            Ordering::Relaxed,
        );
        self.state.dynamic_watch_supported.store(
            capabilities
                .workspace
                .as_ref()
                .and_then(|w| w.did_change_watched_files.as_ref())
                .and_then(|d| d.dynamic_registration)
                .unwrap_or(false),
            Ordering::Relaxed,
        );
        let mut roots: Vec<PathBuf> = params
            .workspace_folders
            .unwrap_or_default()
            .iter()
            .filter_map(|f| path_of(&f.uri))
            .collect();
        #[allow(deprecated)]
        if roots.is_empty()
            && let Some(root) = params.root_uri.as_ref().and_then(path_of)
        {
            roots.push(root);
        }
        *self
            .state
            .initial_roots
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = roots;
        let hover = config.hover;
        let _ = self.state.engine.set(Engine::new(config.engine.clone()));
        let _ = self.state.config.set(config);
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Options(
                    TextDocumentSyncOptions {
                        open_close: Some(true),
                        change: Some(TextDocumentSyncKind::FULL),
                        save: Some(TextDocumentSyncSaveOptions::SaveOptions(SaveOptions {
                            include_text: Some(true),
                        })),
                        ..TextDocumentSyncOptions::default()
                    },
                )),
                hover_provider: hover.then_some(HoverProviderCapability::Simple(true)),
                workspace_symbol_provider: Some(OneOf::Left(true)),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: Command::names(),
                    work_done_progress_options: WorkDoneProgressOptions::default(),
                }),
                workspace: Some(WorkspaceServerCapabilities {
                    workspace_folders: Some(WorkspaceFoldersServerCapabilities {
                        supported: Some(true),
                        change_notifications: Some(OneOf::Left(true)),
                    }),
                    file_operations: None,
                }),
                ..ServerCapabilities::default()
            },
            server_info: Some(ServerInfo {
                name: "coder-lsp".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        let Some(this) = Some(Arc::clone(&self.state)) else {
            return;
        };
        tokio::spawn(async move {
            let backend = this;
            let Ok(engine) = backend.engine().cloned() else {
                return;
            };
            if let Err(message) = engine.load_model().await {
                backend
                    .client
                    .show_message(
                        MessageType::ERROR,
                        format!(
                            "coder-lsp could not load its model ({message}). Search works on words only until it can; install the default model with `scripts/setup` (or `coder-lsp model fetch`), or set initializationOptions.model to a model directory."
                        ),
                    )
                    .await;
            }
            let roots = backend
                .initial_roots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            backend.register_watchers().await;
            for root in roots {
                backend.spawn_indexing(root);
            }
        });
    }

    async fn shutdown(&self) -> Result<()> {
        if let Ok(engine) = self.state.engine() {
            engine.flush().await;
        }
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        if let (Some(this), Some(path)) = (
            Some(Arc::clone(&self.state)),
            path_of(&params.text_document.uri),
        ) {
            this.schedule_buffer_sync(path, params.text_document.text);
        }
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        // Full sync: the last change carries the whole text.
        let Some(change) = params.content_changes.into_iter().last() else {
            return;
        };
        if let (Some(this), Some(path)) = (
            Some(Arc::clone(&self.state)),
            path_of(&params.text_document.uri),
        ) {
            this.schedule_buffer_sync(path, change.text);
        }
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        let Some(path) = path_of(&params.text_document.uri) else {
            return;
        };
        // We ask for the saved text; a client that leaves it out gets the disk content, which
        // is what it just wrote.
        let text = match params.text {
            Some(text) => Some(text),
            None => match self.state.engine() {
                Ok(engine) => engine.read_disk(&path).await,
                Err(_) => None,
            },
        };
        if let Some(text) = text {
            self.state.buffer_sync(path, text, Duration::ZERO);
        }
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let Some(path) = path_of(&params.text_document.uri) else {
            return;
        };
        self.state
            .changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&path);
        if let Ok(engine) = self.state.engine().cloned() {
            tokio::spawn(async move {
                if let Err(e) = engine.close_buffer(&path).await {
                    tracing::debug!("closing {}: {e}", path.display());
                }
            });
        }
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        let Ok(engine) = self.state.engine().cloned() else {
            return;
        };
        tokio::spawn(async move {
            for change in params.changes {
                if let Some(path) = path_of(&change.uri)
                    && let Err(e) = engine.sync_disk(&path).await
                {
                    tracing::debug!("watched file {}: {e}", path.display());
                }
            }
        });
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        let Some(this) = Some(Arc::clone(&self.state)) else {
            return;
        };
        if let Ok(engine) = self.state.engine() {
            for removed in &params.event.removed {
                if let Some(path) = path_of(&removed.uri) {
                    engine.remove_root(&path);
                    self.state.watch_root(&path, false);
                }
            }
        }
        for added in &params.event.added {
            if let Some(path) = path_of(&added.uri) {
                this.spawn_indexing(path);
            }
        }
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        let command = params.command.clone();
        guarded(&command, async {
            let first = params.arguments.into_iter().next().unwrap_or(Value::Null);
            let value = match Request::parse(&params.command, first).map_err(invalid_params)? {
                Request::SemanticSearch(args) => reply(self.state.semantic_search(args).await?)?,
                Request::FindSimilar(args) => reply(self.state.find_similar(args).await?)?,
                Request::RagContext(args) => reply(self.state.rag_context(args).await?)?,
                Request::IndexStatus => self.state.index_status().await?,
                Request::Reindex => {
                    for root in self.state.engine()?.roots() {
                        self.state.spawn_indexing(root.root.clone());
                    }
                    reply(ReindexResult { started: true })?
                }
                Request::FineTune(args) => {
                    let token = params.work_done_progress_params.work_done_token.clone();
                    reply(self.state.fine_tune(args, token).await?)?
                }
                Request::ResetModel(args) => reply(self.state.reset_model(args)?)?,
            };
            Ok(Some(value))
        })
        .await
    }

    async fn symbol(
        &self,
        params: WorkspaceSymbolParams,
    ) -> Result<Option<WorkspaceSymbolResponse>> {
        guarded("workspace/symbol", async {
            let query = params.query.trim();
            if query.is_empty() {
                return Ok(Some(WorkspaceSymbolResponse::Nested(Vec::new())));
            }
            let engine = self.state.engine()?;
            let top_k = self.state.top_k(None);
            // Two or more words read as a question; one token as a name.
            let hits: Vec<RootedHit> = if query.split_whitespace().count() >= 2 {
                engine
                    .search(query, top_k, SearchFilter::default(), Ranking::default())
                    .await
            } else {
                engine.symbols_by_name(query, top_k.max(50)).await
            }
            .map_err(engine_error)?;
            let symbols = hits
                .iter()
                .filter_map(|h| {
                    Some(WorkspaceSymbol {
                        name: h.hit.name.clone(),
                        kind: symbol_kind(h.hit.kind),
                        tags: None,
                        container_name: h.hit.container.clone(),
                        location: OneOf::Left(Location {
                            uri: uri_of(&h.abs_path())?,
                            range: protocol::lsp_range(h.hit.start_line, h.hit.end_line),
                        }),
                        data: None,
                    })
                })
                .collect();
            Ok(Some(WorkspaceSymbolResponse::Nested(symbols)))
        })
        .await
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        guarded("textDocument/hover", self.state.related_hover(params)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_becomes_an_internal_error_reply() {
        let answer: Result<()> = guarded("semanticSearch", async {
            panic!("index row 7 has no vector");
        })
        .await;
        let error = answer.expect_err("a panic is an error reply");
        assert_eq!(error.code, ErrorCode::InternalError);
        assert!(error.message.contains("semanticSearch"), "{error:?}");
        assert!(error.message.contains("index row 7 has no vector"));

        let formatted: Result<()> = guarded("hover", async {
            let row = 7;
            panic!("row {row} is gone");
        })
        .await;
        assert!(
            formatted
                .expect_err("error")
                .message
                .contains("row 7 is gone")
        );

        let opaque: Result<()> = guarded("hover", async {
            std::panic::panic_any(42_u8);
        })
        .await;
        assert!(opaque.expect_err("error").message.contains("unknown panic"));
    }

    #[tokio::test]
    async fn a_handler_that_does_not_panic_is_passed_through() {
        assert_eq!(guarded("x", async { Ok(5) }).await.ok(), Some(5));
        let error = guarded::<()>("x", async { Err(invalid_params("no")) })
            .await
            .expect_err("error");
        assert_eq!(error.code, ErrorCode::InvalidParams);
    }
}
