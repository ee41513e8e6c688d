//! The Model Context Protocol server (`coder-lsp mcp`): AI agents search the workspace over stdio.
//!
//! Like `lsp/`, this module only translates: a tool call becomes an [`Engine`] call and the
//! engine's plain data becomes a tool result (`tools.rs`). At start the workspace index is opened
//! in the background. When no other process holds its write lock, this process brings it up to
//! date (progress on stderr) and re-checks changed files before each query; when another process
//! holds the lock (usually the editor's language server) it serves what that process stores,
//! read-only, and takes the index over once that process ends. Tool calls wait for the index to
//! be open, never for indexing to finish. `fine_tune` and `reset_model` run the engine's
//! fine-tuning job and adapter reset, reporting to the call's progressToken; a writer then
//! follows the new model in the background, as at start.

mod tools;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ProgressToken,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{Peer, RequestContext};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use tokio::sync::watch;

use crate::engine::{Engine, EngineError, EngineSettings, RootIndex};
use crate::finetune::FineTuneSettings;
use crate::index::IndexEvent;

/// What an agent is told about this server at `initialize`.
const INSTRUCTIONS: &str = "coder-lsp searches this workspace's code by meaning. Use search_code to find \
functions, classes and sections by describing what they do (natural language or identifiers), \
find_similar for code that does the same as some lines you already know, get_context to get the \
most relevant source for a question packed into a token budget, and index_status to see whether \
the index is complete. fine_tune trains the search model on this workspace (minutes) and installs \
it only when it searches better; reset_model goes back to the base model. Paths are relative to \
the workspace root; lines are 1-based and inclusive.";

/// What a tool call brings besides its arguments: where its progress goes and its cancelling.
struct CallContext {
    /// The call's progressToken and the client to notify, when the call carries one.
    progress: Option<(ProgressToken, Peer<RoleServer>)>,
    /// Completes when the client cancels the call.
    cancelled: Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// How far the start-up got.
#[derive(Clone)]
enum Startup {
    Opening,
    Ready(Arc<RootIndex>),
    Failed(String),
}

/// The MCP server: the engine, the root it serves and how far start-up got.
#[derive(Clone)]
pub struct McpServer {
    engine: Arc<Engine>,
    /// Canonical workspace root.
    root: PathBuf,
    startup: watch::Receiver<Startup>,
    /// Held while this process updates the index, so queries never queue behind an update.
    updating: Arc<tokio::sync::Mutex<()>>,
    /// Whether this process holds the index's write lock (it may take it over later).
    writer: Arc<AtomicBool>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("root", &self.root)
            .finish()
    }
}

/// Serves MCP on stdin/stdout for the workspace at `root` (canonical) until the client closes
/// the connection.
pub async fn serve_stdio(root: PathBuf, settings: EngineSettings) -> anyhow::Result<()> {
    let engine = Engine::new(settings);
    let (started, startup) = watch::channel(Startup::Opening);
    let server = McpServer {
        engine: Arc::clone(&engine),
        root,
        startup,
        updating: Arc::default(),
        writer: Arc::default(),
    };
    tokio::spawn(server.clone().start(started));
    let service = server
        .serve(rmcp::transport::stdio_pipes())
        .await
        .map_err(|e| anyhow::anyhow!("the MCP client did not complete initialization: {e}"))?;
    let reason = service.waiting().await;
    tracing::info!("MCP session ended: {reason:?}");
    engine.flush().await;
    Ok(())
}

impl McpServer {
    /// Loads the model, opens the index and, when this process may write it, indexes the root.
    async fn start(self, started: watch::Sender<Startup>) {
        let root = self.root.display().to_string();
        if let Err(message) = self.engine.load_model().await {
            eprintln!(
                "coder-lsp mcp: the model could not be loaded ({message}); search falls back to words only. Install it with `scripts/setup` or pass --model DIR."
            );
        }
        let entry = match self.engine.add_root(&self.root).await {
            Ok(entry) => entry,
            Err(e) => {
                eprintln!("coder-lsp mcp: cannot open the index of {root}: {e}");
                started.send_replace(Startup::Failed(format!(
                    "the index of {root} could not be opened: {e}"
                )));
                return;
            }
        };
        let writer = self.engine.is_writer(&entry).await.unwrap_or(false);
        if !writer {
            eprintln!(
                "coder-lsp mcp: another coder-lsp process is updating the index of {root}; serving what it stores (read-only)"
            );
        }
        self.writer.store(writer, Ordering::Relaxed);
        // Hold the update lock before anyone can query, so the first query does not start a
        // second update while the first one runs.
        let guard = writer.then(|| self.updating.clone().try_lock_owned().ok());
        started.send_replace(Startup::Ready(Arc::clone(&entry)));
        if let Some(Some(_guard)) = guard {
            eprintln!("coder-lsp mcp: indexing {root}");
            self.update_and_follow(&entry).await;
        }
    }

    /// Brings the index up to date, then lets the workspace's fine-tuned adapter, if one is
    /// installed (or none, after a reset), take over once its vectors are computed. For a
    /// writer holding the update lock.
    async fn update_and_follow(&self, entry: &Arc<RootIndex>) {
        let root = self.root.display();
        match self.engine.index_root(entry, stderr_progress()).await {
            Ok(stats) => {
                eprintln!(
                    "coder-lsp mcp: indexed {} files, {} chunks in {:.1}s ({} changed, {} embedded)",
                    stats.files, stats.chunks, stats.seconds, stats.changed, stats.embedded
                );
                match self.engine.follow_adapter(entry, stderr_progress()).await {
                    Ok(true) => eprintln!("coder-lsp mcp: {}", self.now_serving().await),
                    Ok(false) => {}
                    Err(e) => eprintln!("coder-lsp mcp: switching models failed: {e}"),
                }
            }
            Err(e) => eprintln!("coder-lsp mcp: indexing {root} stopped: {e}"),
        }
    }

    /// After the workspace's model changed (an adapter installed or reset): a writer follows
    /// it in the background, after any update running now. Returns whether it does.
    fn follow_in_background(&self, entry: &Arc<RootIndex>) -> bool {
        if !self.writer.load(Ordering::Relaxed) {
            return false;
        }
        let (this, entry) = (self.clone(), Arc::clone(entry));
        tokio::spawn(async move {
            let _guard = this.updating.lock().await;
            this.update_and_follow(&entry).await;
        });
        true
    }

    /// fine_tune: the engine's fine-tuning run for the root, its progress sent to the call's
    /// progressToken, stopped when the call is cancelled.
    async fn fine_tune(
        &self,
        entry: &Arc<RootIndex>,
        settings: FineTuneSettings,
        context: CallContext,
    ) -> Result<CallToolResult, String> {
        let tool = tools::ToolName::FineTune.as_str();
        let run = self
            .engine
            .start_fine_tune_root(entry, &FineTuneSettings::default(), &settings)
            .await
            .map_err(|e| tools::engine_message(tool, e))?;
        eprintln!(
            "coder-lsp mcp: fine-tuning the model on {}",
            self.root.display()
        );
        let CallContext {
            progress,
            cancelled,
        } = context;
        let (mut updates, outcome) = run.run_reporting(cancelled);
        let forward = async {
            while let Some(update) = updates.recv().await {
                if let Some((token, peer)) = &progress {
                    let notification =
                        ProgressNotificationParam::new(token.clone(), f64::from(update.percentage))
                            .with_total(100.0)
                            .with_message(update.message);
                    if let Err(e) = peer.notify_progress(notification).await {
                        tracing::debug!("sending progress: {e}");
                    }
                }
            }
        };
        // Every progress notification goes out before the answer.
        let (outcome, ()) = tokio::join!(outcome, forward);
        // A cancelled call gets no answer (rmcp drops it, as MCP asks): the log says why.
        let outcome = outcome.map_err(|e| {
            let message = tools::engine_message(tool, e);
            eprintln!("coder-lsp mcp: {message}");
            message
        })?;
        eprintln!("coder-lsp mcp: {}", outcome.message);
        let reembedding = outcome.accepted && self.follow_in_background(entry);
        tools::fine_tuned(outcome, reembedding)
    }

    /// reset_model: the engine puts the root's adapter aside; a writer then goes back to the
    /// base model's vectors in the background.
    async fn reset_model(&self, entry: &Arc<RootIndex>) -> Result<CallToolResult, String> {
        let tool = tools::ToolName::ResetModel.as_str();
        let (engine, index_dir) = (Arc::clone(&self.engine), entry.index_dir().to_path_buf());
        let had_adapter = tokio::task::spawn_blocking(move || engine.retire_adapter(&index_dir))
            .await
            .map_err(|e| format!("{tool} failed: {e}"))?
            .map_err(|e| tools::engine_message(tool, e))?;
        let reembedding = had_adapter && self.follow_in_background(entry);
        tools::reset(&entry.root, had_adapter, reembedding)
    }

    /// Which model serves the root after a switch, for the log.
    async fn now_serving(&self) -> String {
        let adapter = self
            .engine
            .status()
            .await
            .ok()
            .and_then(|s| s.roots.into_iter().next())
            .and_then(|r| r.adapter);
        match adapter {
            Some(dir) => format!(
                "now using the workspace's fine-tuned model ({})",
                dir.display()
            ),
            None => format!("now using {}", self.engine.settings().model),
        }
    }

    /// Waits until the index is open.
    async fn ready(&self) -> Result<Arc<RootIndex>, String> {
        let mut startup = self.startup.clone();
        let state = startup
            .wait_for(|s| !matches!(s, Startup::Opening))
            .await
            .map_err(|_| "coder-lsp stopped while opening the index".to_string())?
            .clone();
        match state {
            Startup::Ready(root) => Ok(root),
            Startup::Failed(message) => Err(message),
            Startup::Opening => Err("the index is not open yet".into()),
        }
    }

    /// Before a query: when this process writes the index, picks up files changed on disk since
    /// the last look (an incremental walk: only changed files are read and embedded). Skipped
    /// while an update is running; the query is then answered from what is indexed so far.
    /// A reader takes the index over first when the process that wrote it has ended.
    async fn refresh(&self, root: &Arc<RootIndex>) {
        let Ok(_guard) = self.updating.try_lock() else {
            return;
        };
        if !self.writer.load(Ordering::Relaxed) {
            match self.engine.try_become_writer(root).await {
                Ok(true) => {
                    eprintln!(
                        "coder-lsp mcp: the other process let go of the index of {}; this server keeps it up to date from now on",
                        self.root.display()
                    );
                    self.writer.store(true, Ordering::Relaxed);
                }
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!("taking over the index failed: {e}");
                    return;
                }
            }
        }
        match self.engine.index_root(root, |_| {}).await {
            Ok(stats) if stats.changed + stats.removed > 0 => tracing::info!(
                "picked up {} changed and {} removed files",
                stats.changed,
                stats.removed
            ),
            Ok(_) | Err(EngineError::NoModel(_)) => {}
            Err(e) => tracing::warn!("updating the index before a query failed: {e}"),
        }
    }

    /// Runs one tool call; every failure the caller can act on becomes a tool error.
    async fn call(
        self,
        name: String,
        arguments: serde_json::Value,
        context: CallContext,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(tool) = tools::ToolName::parse(&name) else {
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown tool {name:?}; this server has {}",
                    tools::ToolName::ALL.map(|t| t.as_str()).join(", ")
                ),
                None,
            ));
        };
        let request = match tools::Request::parse(tool, arguments) {
            Ok(request) => request,
            Err(message) => return Ok(tool_error(message)),
        };
        let root = match self.ready().await {
            Ok(root) => root,
            Err(message) => return Ok(tool_error(message)),
        };
        if request.reads_index() {
            self.refresh(&root).await;
        }
        let answer = match request {
            tools::Request::FineTune(settings) => self.fine_tune(&root, settings, context).await,
            tools::Request::ResetModel => self.reset_model(&root).await,
            request => tools::answer(&self.engine, &root, request).await,
        };
        Ok(match answer {
            Ok(result) => result,
            Err(message) => tool_error(message),
        })
    }
}

fn tool_error(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

/// Index progress as plain lines on stderr (what MCP clients keep in their server log): one
/// line per phase change and at most one every two seconds within a phase.
fn stderr_progress() -> impl FnMut(IndexEvent) + Send + 'static {
    let mut last: Option<(&'static str, Instant)> = None;
    move |event| {
        let (phase, done, total) = match event {
            IndexEvent::Scanned { files } => {
                eprintln!("coder-lsp mcp: {files} files in the workspace");
                return;
            }
            IndexEvent::Parsing { done, total } => ("parsing", done, total),
            IndexEvent::Embedding { done, total } => ("embedding", done, total),
            IndexEvent::Finished => return,
        };
        let due = match last {
            Some((p, at)) => p != phase || at.elapsed().as_secs() >= 2 || done == total,
            None => true,
        };
        if due && total > 0 {
            eprintln!("coder-lsp mcp: {phase} {done}/{total}");
            last = Some((phase, Instant::now()));
        }
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("coder-lsp", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::definitions()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::definitions().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        let arguments = serde_json::Value::Object(request.arguments.unwrap_or_default());
        let cancel = context.ct.clone();
        let call = CallContext {
            progress: context
                .meta
                .get_progress_token()
                .map(|token| (token, context.peer.clone())),
            cancelled: Box::pin(async move { cancel.cancelled().await }),
        };
        // A panic inside a tool becomes an error for that call; the server keeps serving.
        let task = tokio::spawn(self.clone().call(name.clone(), arguments, call));
        match task.await {
            Ok(result) => result.map(CallToolResponse::from),
            Err(e) => {
                tracing::error!("tool {name} failed: {e}");
                Ok(tool_error(format!("coder-lsp hit an internal error in {name}: {e}")).into())
            }
        }
    }
}
