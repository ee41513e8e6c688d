//! The MCP tools: their argument and result types (whose JSON schemas agents read), how
//! arguments are checked, and how engine results become tool results. Four read the index;
//! `fine_tune` and `reset_model` change the workspace's model (the server runs them, `mod.rs`).
//!
//! Each result has a short text an agent can read directly (`content`) and the same data as
//! JSON (`structuredContent`, described by the tool's `outputSchema`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rmcp::handler::server::tool::{schema_for_input, schema_for_output};
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::context::{DEFAULT_TOKEN_BUDGET, MAX_TOKEN_BUDGET};
use crate::engine::{Engine, EngineError, RootIndex, RootedHit};
use crate::finetune::{FineTuneError, FineTuneOutcome, FineTuneSettings};
use crate::search::{DEFAULT_TOP_K, Ranking, ScorePart, SearchFilter};
use crate::symbols::{Language, SymbolKind};

/// The most results one call returns.
const MAX_TOP_K: usize = 50;
/// Characters of a symbol's signature shown as its preview.
const PREVIEW_CHARS: usize = 200;

/// The tools this server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ToolName {
    SearchCode,
    FindSimilar,
    GetContext,
    IndexStatus,
    FineTune,
    ResetModel,
}

impl ToolName {
    pub(super) const ALL: [ToolName; 6] = [
        ToolName::SearchCode,
        ToolName::FindSimilar,
        ToolName::GetContext,
        ToolName::IndexStatus,
        ToolName::FineTune,
        ToolName::ResetModel,
    ];

    pub(super) fn as_str(self) -> &'static str {
        match self {
            ToolName::SearchCode => "search_code",
            ToolName::FindSimilar => "find_similar",
            ToolName::GetContext => "get_context",
            ToolName::IndexStatus => "index_status",
            ToolName::FineTune => "fine_tune",
            ToolName::ResetModel => "reset_model",
        }
    }

    /// What the tool does to the workspace, for clients that ask before calling.
    fn annotations(self) -> ToolAnnotations {
        let changes_model = matches!(self, ToolName::FineTune | ToolName::ResetModel);
        ToolAnnotations::new()
            .read_only(!changes_model)
            // The adapter replaced or reset is kept in adapter-previous/.
            .destructive(false)
            .idempotent(self != ToolName::FineTune)
            .open_world(false)
    }

    pub(super) fn parse(name: &str) -> Option<ToolName> {
        ToolName::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// Find code in this workspace by what it does.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchCodeArgs {
    /// What you are looking for, in plain language or with identifiers, e.g. "where are retries
    /// scheduled after a timeout" or "parse_config error handling".
    pub query: String,
    /// How many results to return, best first (1 to 50; default 10).
    #[serde(default)]
    #[schemars(range(min = 1, max = 50))]
    pub top_k: Option<usize>,
    /// Only code in files matching these globs, relative to the workspace root, e.g. ["src/**",
    /// "**/*.py"]. Default: every file.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Only code in these languages (names listed below). Default: every language.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Only these kinds of symbols (names listed below). Default: every kind.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Also return how each result's score was made (dense and lexical ranks, priors such as
    /// "test file", boosts such as "defines the queried name"). Default: false.
    #[serde(default)]
    pub explain: bool,
}

/// Find code elsewhere in the workspace that does something similar to some lines of a file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FindSimilarArgs {
    /// The file holding the code to compare, relative to the workspace root (e.g. "src/retry.rs")
    /// or absolute.
    pub path: String,
    /// The first line of the code (1-based).
    #[schemars(range(min = 1))]
    pub start_line: u32,
    /// The last line of the code (1-based, inclusive). Leave it out to compare the whole symbol
    /// (function, method, class, ...) that contains start_line.
    #[serde(default)]
    pub end_line: Option<u32>,
    /// How many results to return, best first (1 to 50; default 10).
    #[serde(default)]
    #[schemars(range(min = 1, max = 50))]
    pub top_k: Option<usize>,
}

/// Get the most relevant source code for a question, packed into a token budget.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct GetContextArgs {
    /// The question or task the context is for, e.g. "how are failed requests retried".
    pub query: String,
    /// The most tokens (counted with the embedding model's tokenizer) the context may use (1 to
    /// 200000; default 2048).
    #[serde(default)]
    #[schemars(range(min = 1, max = 200_000))]
    pub token_budget: Option<usize>,
}

/// Report how complete the index is.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct IndexStatusArgs {}

/// Go back to the base model.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ResetModelArgs {}

/// One piece of code found.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct CodeHit {
    /// The file, relative to the workspace root, with forward slashes.
    pub path: String,
    /// The file's absolute path.
    pub absolute_path: String,
    /// The symbol's name.
    pub name: String,
    /// What it is: function, method, class, struct, section, ...
    pub kind: String,
    /// The enclosing symbol (class, impl, module), if any.
    pub container: Option<String>,
    /// The language of the file.
    pub language: String,
    /// First line (1-based).
    pub start_line: u32,
    /// Last line (1-based, inclusive).
    pub end_line: u32,
    /// Where the best-matching part of a long symbol starts (1-based); start_line otherwise.
    pub line: u32,
    /// Relevance; higher is better. Only comparable within one answer.
    pub score: f32,
    /// The symbol's signature (its first line or so).
    pub preview: String,
    /// How the score was made, part by part (the parts add up to it); only when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Vec<ScorePart>>,
}

impl From<&RootedHit> for CodeHit {
    fn from(hit: &RootedHit) -> Self {
        Self {
            path: hit.hit.path.clone(),
            absolute_path: hit.abs_path().to_string_lossy().into_owned(),
            name: hit.hit.name.clone(),
            kind: hit.hit.kind.to_string(),
            container: hit.hit.container.clone(),
            language: hit.hit.language.to_string(),
            start_line: hit.hit.start_line,
            end_line: hit.hit.end_line,
            line: hit.hit.line,
            score: hit.hit.score,
            preview: hit.hit.signature.chars().take(PREVIEW_CHARS).collect(),
            explain: hit.hit.explain.clone(),
        }
    }
}

/// The answer of search_code.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct SearchOutput {
    /// The results, best first.
    pub results: Vec<CodeHit>,
    /// Set when the answer may be incomplete (the index is still being built).
    pub note: Option<String>,
}

/// Lines of one file.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct LineRange {
    /// The file, relative to the workspace root.
    pub path: String,
    /// First line (1-based).
    pub start_line: u32,
    /// Last line (1-based, inclusive).
    pub end_line: u32,
}

/// The answer of find_similar.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct SimilarOutput {
    /// The code that was compared (the whole symbol when end_line was left out).
    pub compared: LineRange,
    /// Similar code elsewhere, best first (the compared code and anything overlapping it are
    /// left out).
    pub results: Vec<CodeHit>,
    /// Set when the answer may be incomplete (the index is still being built).
    pub note: Option<String>,
}

/// One piece of packed context.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct ContextPiece {
    /// The file, relative to the workspace root.
    pub path: String,
    /// First line shown (1-based).
    pub start_line: u32,
    /// Last line shown (1-based, inclusive).
    pub end_line: u32,
    /// Relevance; higher is better.
    pub score: f32,
    /// Tokens this piece uses, its header line included.
    pub tokens: usize,
}

/// The answer of get_context (the packed source itself is the text content).
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct ContextOutput {
    /// The budget asked for.
    pub token_budget: usize,
    /// Tokens used by all pieces together (never more than token_budget).
    pub tokens_used: usize,
    /// The pieces in the order they appear in the text, most relevant first.
    pub pieces: Vec<ContextPiece>,
    /// Set when the answer may be incomplete (the index is still being built).
    pub note: Option<String>,
}

/// The answer of index_status.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct StatusOutput {
    /// The workspace root served.
    pub root: String,
    /// Where its index is kept.
    pub index_dir: String,
    /// True when another coder-lsp process (e.g. the editor's language server) updates the index
    /// and this server only reads it.
    pub read_only: bool,
    /// True while an update of the index runs.
    pub indexing: bool,
    /// Files indexed.
    pub files: u64,
    /// Code chunks (symbols) indexed.
    pub chunks: u64,
    /// Chunks that have an embedding (searchable by meaning).
    pub embedded: u64,
    /// Chunks still waiting for an embedding.
    pub pending: u64,
    /// The embedding model.
    pub model: String,
    /// loading, ready, or failed with the reason.
    pub model_state: String,
    /// Warnings about the index (another process writing it, a store rebuilt).
    pub notes: Vec<String>,
    /// The last error met while indexing, if any.
    pub last_error: Option<String>,
    /// The workspace's fine-tuned adapter merged into the model whose vectors serve it, if any.
    pub adapter: Option<String>,
}

/// The answer of fine_tune: the gate's decision with its figures.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct FineTuneOutput {
    #[serde(flatten)]
    pub outcome: FineTuneOutcome,
    /// True when this server now re-embeds the workspace with the installed adapter, in the
    /// background (searches keep using the current vectors until it is done; index_status
    /// shows it); false when nothing was installed, or when another coder-lsp process writes
    /// the index (it switches at its next reindex).
    pub reembedding: bool,
}

/// The answer of reset_model.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct ResetOutput {
    /// The workspace root.
    pub root: String,
    /// Whether the workspace had a fine-tuned adapter (now kept in adapter-previous/ of its
    /// index directory).
    pub had_adapter: bool,
    /// True when this server now goes back to the base model's vectors in the background.
    pub reembedding: bool,
}

/// A checked tool call.
#[derive(Debug)]
pub(super) enum Request {
    Search(SearchCodeArgs),
    Similar(FindSimilarArgs),
    Context(GetContextArgs),
    Status,
    /// Training settings over the trainer's defaults.
    FineTune(FineTuneSettings),
    ResetModel,
}

impl Request {
    /// Parses and checks the arguments of a call; the error says what is wrong and what is
    /// expected, for the agent to fix its call.
    pub(super) fn parse(tool: ToolName, arguments: Value) -> Result<Request, String> {
        let name = tool.as_str();
        let request = match tool {
            ToolName::SearchCode => {
                let args: SearchCodeArgs = arguments_of(name, arguments)?;
                require_text(name, "query", &args.query)?;
                check_top_k(name, args.top_k)?;
                Request::Search(args)
            }
            ToolName::FindSimilar => {
                let args: FindSimilarArgs = arguments_of(name, arguments)?;
                require_text(name, "path", &args.path)?;
                if args.start_line == 0 {
                    return Err(format!(
                        "{name}: start_line is 1-based; the first line is 1"
                    ));
                }
                if let Some(end) = args.end_line
                    && end < args.start_line
                {
                    return Err(format!(
                        "{name}: end_line ({end}) is before start_line ({})",
                        args.start_line
                    ));
                }
                check_top_k(name, args.top_k)?;
                Request::Similar(args)
            }
            ToolName::GetContext => {
                let args: GetContextArgs = arguments_of(name, arguments)?;
                require_text(name, "query", &args.query)?;
                if let Some(budget) = args.token_budget
                    && !(1..=MAX_TOKEN_BUDGET).contains(&budget)
                {
                    return Err(format!(
                        "{name}: token_budget must be between 1 and {MAX_TOKEN_BUDGET}, not {budget}"
                    ));
                }
                Request::Context(args)
            }
            ToolName::IndexStatus => {
                let IndexStatusArgs {} = arguments_of(name, arguments)?;
                Request::Status
            }
            ToolName::FineTune => Request::FineTune(fine_tune_settings(name, arguments)?),
            ToolName::ResetModel => {
                let ResetModelArgs {} = arguments_of(name, arguments)?;
                Request::ResetModel
            }
        };
        Ok(request)
    }

    /// Whether answering reads the index (and so should see the latest files first).
    pub(super) fn reads_index(&self) -> bool {
        !matches!(
            self,
            Request::Status | Request::FineTune(_) | Request::ResetModel
        )
    }
}

/// fine_tune's arguments: the training settings every front end takes ([`FineTuneSettings`],
/// one type), named in snake_case as every argument here is.
fn fine_tune_settings(name: &str, arguments: Value) -> Result<FineTuneSettings, String> {
    let Value::Object(fields) = arguments else {
        return Err(format!("invalid arguments for {name}: expected an object"));
    };
    let schema = fine_tune_schema();
    let known = schema.get("properties").and_then(Value::as_object);
    let mut settings = serde_json::Map::new();
    for (field, value) in fields {
        if !known.is_some_and(|k| k.contains_key(&field)) {
            let expected = known
                .map(|k| k.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            return Err(format!(
                "invalid arguments for {name}: unknown field `{field}`; the settings are {expected}"
            ));
        }
        settings.insert(crate::words::camel_case(&field), value);
    }
    serde_json::from_value(Value::Object(settings))
        .map_err(|e| format!("invalid arguments for {name}: {e}"))
}

/// The schema of [`FineTuneSettings`] with its properties in snake_case.
fn fine_tune_schema() -> JsonObject {
    let mut schema = input_schema::<FineTuneSettings>();
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        *properties = std::mem::take(properties)
            .into_iter()
            .map(|(name, property)| (crate::words::snake_case(&name), property))
            .collect();
    }
    schema
}

fn arguments_of<T: DeserializeOwned + JsonSchema + 'static>(
    name: &str,
    arguments: Value,
) -> Result<T, String> {
    serde_json::from_value(arguments).map_err(|e| {
        let expected = schema_for_input::<T>()
            .ok()
            .and_then(|s| s.get("properties").map(Value::to_string))
            .unwrap_or_default();
        format!("invalid arguments for {name}: {e}. Expected an object with these properties: {expected}")
    })
}

fn require_text(tool: &str, field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{tool}: {field} must not be empty"));
    }
    Ok(())
}

fn check_top_k(tool: &str, top_k: Option<usize>) -> Result<(), String> {
    match top_k {
        Some(k) if !(1..=MAX_TOP_K).contains(&k) => Err(format!(
            "{tool}: top_k must be between 1 and {MAX_TOP_K}, not {k}"
        )),
        _ => Ok(()),
    }
}

/// The tool definitions listed by `tools/list`.
pub(super) fn definitions() -> Vec<Tool> {
    let languages = Language::ALL.map(|l| l.name()).join(", ");
    let kinds = SymbolKind::ALL.map(|k| k.as_str()).join(", ");
    let mut search = input_schema::<SearchCodeArgs>();
    describe_list(&mut search, "languages", "Languages", &languages);
    describe_list(&mut search, "kinds", "Kinds", &kinds);
    vec![
        tool(
            ToolName::SearchCode,
            "Search code by meaning",
            "Find functions, methods, classes and sections in this workspace by describing what \
             they do, in plain language or with identifiers. Returns ranked symbols with file path, \
             line range and signature; read the lines you need afterwards. Optional filters: path \
             globs, languages, symbol kinds.",
            search,
            schema_for_output::<SearchOutput>(),
        ),
        tool(
            ToolName::FindSimilar,
            "Find similar code",
            "Find code elsewhere in the workspace that does something similar to the given lines \
             (or to the whole function/class containing start_line): duplicates, other \
             implementations of the same idea, code to keep consistent with a change.",
            input_schema::<FindSimilarArgs>(),
            schema_for_output::<SimilarOutput>(),
        ),
        tool(
            ToolName::GetContext,
            "Get code context for a question",
            "Get the most relevant source code for a question or task as text, packed into a token \
             budget: overlapping pieces are merged, each piece is headed `--- path:first-last ---` \
             and shows the lines as they are on disk now.",
            input_schema::<GetContextArgs>(),
            schema_for_output::<ContextOutput>(),
        ),
        tool(
            ToolName::IndexStatus,
            "Index status",
            "Report how complete the code index is: files, chunks, embeddings still pending, \
             whether indexing runs, whether another coder-lsp process owns the index, and the \
             model.",
            input_schema::<IndexStatusArgs>(),
            schema_for_output::<StatusOutput>(),
        ),
        tool(
            ToolName::FineTune,
            "Fine-tune the embedding model on this workspace",
            "Fine-tune the search model on this workspace: mine (question, code) pairs from its \
             docs, tests and git history, train a LoRA adapter in a child process (minutes on a \
             CPU), and install it only when it answers held-out questions better than the current \
             model; the answer has the figures either way. Progress goes out as \
             notifications/progress when the call carries a progressToken; cancelling the call \
             stops the training and keeps the current model. Every setting is optional (the \
             trainer's defaults otherwise). One run at a time; the index must be complete.",
            fine_tune_schema(),
            schema_for_output::<FineTuneOutput>(),
        ),
        tool(
            ToolName::ResetModel,
            "Reset the workspace's model",
            "Stop using the workspace's fine-tuned adapter: it is moved aside (adapter-previous/ \
             in the index directory) and the base model serves searches again.",
            input_schema::<ResetModelArgs>(),
            schema_for_output::<ResetOutput>(),
        ),
    ]
}

fn tool(
    name: ToolName,
    title: &str,
    description: &'static str,
    input: JsonObject,
    output: Arc<JsonObject>,
) -> Tool {
    Tool::new(name.as_str(), description, Arc::new(input))
        .with_title(title)
        .with_raw_output_schema(output)
        .with_annotations(name.annotations())
}

fn input_schema<T: JsonSchema + 'static>() -> JsonObject {
    // Every argument type here is a struct, whose schema is an object; some clients expect
    // `properties` even when a tool takes no arguments.
    let mut schema = schema_for_input::<T>()
        .map(|s| s.as_ref().clone())
        .unwrap_or_else(|_| JsonObject::from_iter([("type".to_string(), json!("object"))]));
    schema.entry("properties").or_insert_with(|| json!({}));
    schema
}

/// Appends the accepted names to the description of a list property.
fn describe_list(schema: &mut JsonObject, property: &str, label: &str, names: &str) {
    if let Some(Value::Object(field)) = schema
        .get_mut("properties")
        .and_then(|p| p.get_mut(property))
    {
        let before = field
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .replace(" (names listed below)", "");
        field.insert(
            "description".into(),
            json!(format!("{before} {label}: {names}.")),
        );
    }
}

/// Answers a checked request from the engine.
pub(super) async fn answer(
    engine: &Arc<Engine>,
    root: &RootIndex,
    request: Request,
) -> Result<CallToolResult, String> {
    let note = engine.is_indexing().then(|| {
        "the index is still being built, so results may be incomplete; index_status shows progress"
            .to_string()
    });
    match request {
        Request::Search(args) => {
            let filter = SearchFilter::new(&args.paths, &args.languages, &args.kinds)
                .map_err(|e| format!("search_code: {e}"))?;
            let top_k = args.top_k.unwrap_or(DEFAULT_TOP_K);
            let ranking = Ranking {
                explain: args.explain,
                ..Ranking::default()
            };
            let hits = engine
                .search(&args.query, top_k, filter, ranking)
                .await
                .map_err(|e| engine_message("search_code", e))?;
            let results: Vec<CodeHit> = hits.iter().map(CodeHit::from).collect();
            let text = hits_text(&results, note.as_deref());
            structured(text, &SearchOutput { results, note })
        }
        Request::Similar(args) => {
            let path = resolve_in_root(&root.root, &args.path).await?;
            let text = engine
                .read_file(&path)
                .await
                .ok_or_else(|| format!("find_similar: {} cannot be read as text", args.path))?;
            let lines = text.lines().count() as u32;
            if args.start_line > lines {
                return Err(format!(
                    "find_similar: start_line {} is past the end of {} ({lines} lines)",
                    args.start_line, args.path
                ));
            }
            let (start, end) = match args.end_line {
                Some(end) => (args.start_line, end.min(lines)),
                None => engine
                    .symbol_at(&path, args.start_line)
                    .await
                    .map_err(|e| engine_message("find_similar", e))?
                    .map_or((args.start_line, args.start_line), |(s, e, _)| (s, e)),
            };
            let top_k = args.top_k.unwrap_or(DEFAULT_TOP_K);
            let hits = engine
                .similar(&path, start, end, top_k)
                .await
                .map_err(|e| engine_message("find_similar", e))?;
            let results: Vec<CodeHit> = hits.iter().map(CodeHit::from).collect();
            let compared = LineRange {
                path: relative(&root.root, &path),
                start_line: start,
                end_line: end,
            };
            let text = format!(
                "similar to {}:{}-{}\n{}",
                compared.path,
                start,
                end,
                hits_text(&results, note.as_deref())
            );
            structured(
                text,
                &SimilarOutput {
                    compared,
                    results,
                    note,
                },
            )
        }
        Request::Context(args) => {
            let budget = args.token_budget.unwrap_or(DEFAULT_TOKEN_BUDGET);
            let packed = engine
                .context(&args.query, budget)
                .await
                .map_err(|e| engine_message("get_context", e))?;
            let mut text = String::new();
            let mut pieces = Vec::new();
            let mut used = 0;
            for (_, context) in packed {
                used += context.tokens_used;
                for chunk in context.chunks {
                    text.push_str(&chunk.text);
                    pieces.push(ContextPiece {
                        path: chunk.path,
                        start_line: chunk.start_line,
                        end_line: chunk.end_line,
                        score: chunk.score,
                        tokens: chunk.tokens,
                    });
                }
            }
            if pieces.is_empty() {
                text = format!("no indexed code that matches the query fits in {budget} tokens\n");
            }
            if let Some(note) = &note {
                let _ = writeln!(text, "note: {note}");
            }
            structured(
                text,
                &ContextOutput {
                    token_budget: budget,
                    tokens_used: used,
                    pieces,
                    note,
                },
            )
        }
        // The server runs these (progress, cancelling, switching models afterwards).
        Request::FineTune(_) | Request::ResetModel => {
            Err("internal error: a model tool reached the index tools".into())
        }
        Request::Status => {
            let status = engine
                .status()
                .await
                .map_err(|e| engine_message("index_status", e))?;
            let own = status.roots.iter().find(|r| r.root == root.root);
            let output = StatusOutput {
                root: root.root.to_string_lossy().into_owned(),
                index_dir: own
                    .map_or_else(String::new, |r| r.index_dir.to_string_lossy().into_owned()),
                read_only: own.is_some_and(|r| r.read_only),
                indexing: status.indexing,
                files: status.files,
                chunks: status.chunks,
                embedded: status.embedded,
                pending: status.pending,
                model: status.model,
                model_state: status.model_state,
                notes: own.map(|r| r.notes.clone()).unwrap_or_default(),
                last_error: status.last_error,
                adapter: own
                    .and_then(|r| r.adapter.as_ref())
                    .map(|a| a.to_string_lossy().into_owned()),
            };
            let text = format!(
                "{}: {} files, {} chunks, {} embedded, {} pending; {}{}; model {} ({})",
                output.root,
                output.files,
                output.chunks,
                output.embedded,
                output.pending,
                if output.indexing {
                    "indexing"
                } else {
                    "not indexing"
                },
                if output.read_only {
                    ", read-only (another coder-lsp process updates the index)"
                } else {
                    ""
                },
                output.model,
                output.model_state,
            );
            structured(text, &output)
        }
    }
}

/// The answer of fine_tune.
pub(super) fn fine_tuned(
    outcome: FineTuneOutcome,
    reembedding: bool,
) -> Result<CallToolResult, String> {
    let next = match (&outcome.adapter, reembedding) {
        (Some(dir), true) => format!(
            "\nadapter installed in {}; this server now re-embeds the workspace with it in the background (searches use the current vectors until it is done)",
            dir.display()
        ),
        (Some(dir), false) => format!(
            "\nadapter installed in {}; the coder-lsp process that writes the index switches to it at its next reindex",
            dir.display()
        ),
        (None, _) => String::new(),
    };
    let text = format!("{}{next}", outcome.message);
    structured(
        text,
        &FineTuneOutput {
            outcome,
            reembedding,
        },
    )
}

/// The answer of reset_model.
pub(super) fn reset(
    root: &Path,
    had_adapter: bool,
    reembedding: bool,
) -> Result<CallToolResult, String> {
    let text = if had_adapter {
        format!(
            "the fine-tuned adapter of {} was moved to adapter-previous/ in its index directory; the base model serves it again",
            root.display()
        )
    } else {
        format!(
            "{} has no fine-tuned adapter; it uses the base model",
            root.display()
        )
    };
    structured(
        text,
        &ResetOutput {
            root: root.to_string_lossy().into_owned(),
            had_adapter,
            reembedding,
        },
    )
}

fn structured(text: String, value: &impl Serialize) -> Result<CallToolResult, String> {
    let value = serde_json::to_value(value).map_err(|e| format!("internal error: {e}"))?;
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    Ok(result)
}

/// A numbered list of hits, two lines each.
fn hits_text(results: &[CodeHit], note: Option<&str>) -> String {
    let mut text = String::new();
    if results.is_empty() {
        text.push_str("no results\n");
    }
    for (n, hit) in results.iter().enumerate() {
        let container = hit
            .container
            .as_deref()
            .map(|c| format!(" in {c}"))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "{}. {}:{}-{} {} {}{} (score {:.3})\n   {}",
            n + 1,
            hit.path,
            hit.start_line,
            hit.end_line,
            hit.kind,
            hit.name,
            container,
            hit.score,
            hit.preview.lines().next().unwrap_or_default()
        );
    }
    if let Some(note) = note {
        let _ = writeln!(text, "note: {note}");
    }
    text
}

pub(super) fn engine_message(tool: &str, e: EngineError) -> String {
    match e {
        EngineError::NoModel(why) => format!(
            "{tool} needs the embedding model, which is not loaded: {why}. search_code still answers by words."
        ),
        EngineError::OutsideWorkspace(path) => format!(
            "{tool}: {} is not inside the workspace served by this server",
            path.display()
        ),
        EngineError::NotIndexed { .. } => format!("{tool}: {e}; index_status shows how far it is"),
        EngineError::FineTuneRunning
        | EngineError::FineTuneElsewhere(_)
        | EngineError::ExplicitAdapter(_)
        | EngineError::FineTune(FineTuneError::Cancelled) => format!("{tool}: {e}"),
        other => format!("{tool} failed: {other}"),
    }
}

/// The canonical path of a file given relative to `root` or absolute; it must exist and be
/// inside the root.
async fn resolve_in_root(root: &Path, given: &str) -> Result<PathBuf, String> {
    let joined = root.join(given);
    let canonical = tokio::task::spawn_blocking(move || std::fs::canonicalize(&joined))
        .await
        .map_err(|e| format!("internal error: {e}"))?
        .map_err(|e| format!("find_similar: cannot open {given}: {e}"))?;
    if !canonical.starts_with(root) {
        return Err(format!(
            "find_similar: {given} is outside the workspace root {}",
            root.display()
        ));
    }
    if !canonical.is_file() {
        return Err(format!("find_similar: {given} is not a file"));
    }
    Ok(canonical)
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_a_schema_with_described_properties() {
        let tools = definitions();
        assert_eq!(tools.len(), ToolName::ALL.len());
        for tool in &tools {
            assert!(ToolName::parse(&tool.name).is_some());
            assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
            assert!(tool.output_schema.is_some(), "{}", tool.name);
            let properties = tool.input_schema["properties"].as_object().unwrap();
            for (name, property) in properties {
                let description = property["description"].as_str().unwrap_or_default();
                assert!(
                    description.len() > 10,
                    "{}.{name} has no description",
                    tool.name
                );
            }
        }
        let search = &tools[0].input_schema;
        assert_eq!(search["required"], json!(["query"]));
        let languages = search["properties"]["languages"]["description"]
            .as_str()
            .unwrap();
        assert!(languages.contains("python") && !languages.contains("listed below"));
        assert!(
            search["properties"]["kinds"]["description"]
                .as_str()
                .unwrap()
                .contains("function")
        );
    }

    #[test]
    fn fine_tune_takes_every_setting_in_snake_case_and_changes_the_model() {
        let tools = definitions();
        let fine_tune = tools.iter().find(|t| t.name == "fine_tune").unwrap();
        let properties = fine_tune.input_schema["properties"].as_object().unwrap();
        for name in [
            "max_steps",
            "max_steps_per_stage",
            "adapter_weight",
            "generator",
        ] {
            assert!(properties.contains_key(name), "{name}: {properties:?}");
        }
        assert!(properties.keys().all(|k| !k.contains(char::is_uppercase)));
        assert!(
            properties["max_steps"]["description"]
                .as_str()
                .unwrap()
                .contains("[default: 200]")
        );
        for tool in &tools {
            let read_only = tool.annotations.as_ref().unwrap().read_only_hint;
            let changes_model = tool.name == "fine_tune" || tool.name == "reset_model";
            assert_eq!(read_only, Some(!changes_model), "{}", tool.name);
        }

        let Request::FineTune(settings) = Request::parse(
            ToolName::FineTune,
            json!({"max_steps_per_stage": 1, "significance": 1, "no_curriculum": true,
                   "generator": {"url": "http://127.0.0.1:8080/v1"}}),
        )
        .unwrap() else {
            panic!("not a fine_tune request");
        };
        assert_eq!(settings.max_steps_per_stage, Some(1));
        assert_eq!(settings.significance, Some(1.0));
        assert!(settings.no_curriculum);
        assert_eq!(settings.generator.unwrap().url, "http://127.0.0.1:8080/v1");
        assert!(matches!(
            Request::parse(ToolName::FineTune, json!({})).unwrap(),
            Request::FineTune(s) if s == FineTuneSettings::default()
        ));
        let err = |args| Request::parse(ToolName::FineTune, args).unwrap_err();
        let camel = err(json!({"maxSteps": 3}));
        assert!(
            camel.contains("unknown field `maxSteps`") && camel.contains("max_steps"),
            "{camel}"
        );
        assert!(err(json!({"max_steps": "many"})).contains("invalid type"));
        assert!(
            Request::parse(ToolName::ResetModel, json!({"root": "/x"}))
                .unwrap_err()
                .contains("unknown field")
        );
    }

    #[test]
    fn the_docs_list_every_tool() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for page in ["README.md", "docs/mcp.md"] {
            let text = std::fs::read_to_string(root.join(page)).unwrap();
            for tool in ToolName::ALL {
                assert!(
                    text.contains(&format!("`{}`", tool.as_str())),
                    "{page} does not name the {} tool",
                    tool.as_str()
                );
            }
        }
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        let err = |tool, args| Request::parse(tool, args).unwrap_err();
        assert!(err(ToolName::SearchCode, json!({})).contains("missing field `query`"));
        assert!(err(ToolName::SearchCode, json!({"query": " "})).contains("must not be empty"));
        let typo = err(ToolName::SearchCode, json!({"query": "x", "topK": 3}));
        assert!(
            typo.contains("unknown field `topK`") && typo.contains("top_k"),
            "{typo}"
        );
        assert!(err(ToolName::SearchCode, json!({"query": "x", "top_k": 0})).contains("between"));
        assert!(
            err(
                ToolName::FindSimilar,
                json!({"path": "a.rs", "start_line": 0})
            )
            .contains("1-based")
        );
        assert!(
            err(
                ToolName::FindSimilar,
                json!({"path": "a.rs", "start_line": 5, "end_line": 2})
            )
            .contains("before start_line")
        );
        assert!(
            err(
                ToolName::GetContext,
                json!({"query": "x", "token_budget": 0})
            )
            .contains("token_budget")
        );
        assert!(err(ToolName::IndexStatus, json!({"verbose": true})).contains("unknown field"));
        assert!(matches!(
            Request::parse(ToolName::IndexStatus, json!({})).unwrap(),
            Request::Status
        ));
    }
}
