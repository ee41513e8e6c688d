//! coder-lsp's extensions of the protocol, typed once: the `workspace/executeCommand` commands
//! ([`Command`]) with their arguments ([`Request`]) and results (the `…Result` types, in the
//! protocol's camelCase), and `coder/context`'s parameters. The handler matches on [`Request`],
//! so a command cannot be advertised without being handled, and a test checks the README's
//! command list against [`Command::ALL`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_lsp_server::ls_types::{Position, Range, Uri};

use crate::engine::{EngineStatus, RootedHit};
use crate::finetune::FineTuneOutcome;
use crate::search::{ScorePart, SearchMode};
use crate::symbols::SymbolKind;

use super::protocol::{lsp_range, uri_of};

/// The answer of `indexStatus`: the engine's status in the protocol's camelCase, with the first
/// folder's index directory as `indexDir` (editors show it).
pub fn index_status_result(status: &EngineStatus) -> Result<Value, String> {
    let mut value = camel_case_keys(serde_json::to_value(status).map_err(|e| e.to_string())?);
    if let Some(first) = status.roots.first() {
        value["indexDir"] = Value::from(first.index_dir.to_string_lossy().into_owned());
    }
    Ok(value)
}

/// Renames every object key from snake_case to camelCase, at any depth (values stay as they are).
fn camel_case_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (crate::words::camel_case(&key), camel_case_keys(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(camel_case_keys).collect()),
        other => other,
    }
}

/// A command of `workspace/executeCommand`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    SemanticSearch,
    FindSimilar,
    RagContext,
    IndexStatus,
    Reindex,
    FineTune,
    ResetModel,
}

impl Command {
    /// Every command, as advertised in `executeCommandProvider`.
    pub const ALL: [Command; 7] = [
        Command::SemanticSearch,
        Command::FindSimilar,
        Command::RagContext,
        Command::IndexStatus,
        Command::Reindex,
        Command::FineTune,
        Command::ResetModel,
    ];

    /// The name clients send.
    pub fn name(self) -> &'static str {
        match self {
            Command::SemanticSearch => "semanticSearch",
            Command::FindSimilar => "findSimilar",
            Command::RagContext => "ragContext",
            Command::IndexStatus => "indexStatus",
            Command::Reindex => "reindex",
            Command::FineTune => "fineTune",
            Command::ResetModel => "resetModel",
        }
    }

    pub fn parse(name: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The names, for capabilities and error messages.
    pub fn names() -> Vec<String> {
        Command::ALL.map(|c| c.name().to_string()).to_vec()
    }
}

/// A command with its arguments, parsed.
#[derive(Debug)]
pub enum Request {
    SemanticSearch(SearchArgs),
    FindSimilar(SimilarArgs),
    RagContext(ContextArgs),
    IndexStatus,
    Reindex,
    FineTune(ModelArgs),
    ResetModel(ModelArgs),
}

impl Request {
    /// Parses `command` and its first argument (absent: `null`). Errors name the command and
    /// say what is wrong, for an `InvalidParams` reply.
    pub fn parse(command: &str, argument: Value) -> Result<Request, String> {
        let command = Command::parse(command).ok_or_else(|| {
            format!(
                "unknown command {command:?}; coder-lsp knows {}",
                Command::names().join(", ")
            )
        })?;
        let invalid = |e: String| format!("invalid arguments for {}: {e}", command.name());
        Ok(match command {
            Command::SemanticSearch => {
                Request::SemanticSearch(parse_args(argument).map_err(invalid)?)
            }
            Command::FindSimilar => Request::FindSimilar(parse_args(argument).map_err(invalid)?),
            Command::RagContext => Request::RagContext(parse_args(argument).map_err(invalid)?),
            Command::IndexStatus => Request::IndexStatus,
            Command::Reindex => Request::Reindex,
            Command::FineTune => Request::FineTune(ModelArgs::parse(argument).map_err(invalid)?),
            Command::ResetModel => {
                Request::ResetModel(ModelArgs::parse(argument).map_err(invalid)?)
            }
        })
    }
}

/// Reads command arguments (the first element of `arguments`), with serde's message on error.
fn parse_args<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, String> {
    if value.is_null() {
        return Err("an argument object is required".into());
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// Arguments of `semanticSearch`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchArgs {
    pub query: String,
    pub top_k: Option<usize>,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub kinds: Vec<String>,
    /// `dense`, `lexical` or `hybrid` (the default).
    pub mode: Option<SearchMode>,
    /// Attach each result's score parts (`explain`).
    #[serde(default)]
    pub explain: bool,
}

/// Arguments of `findSimilar`: a range, or a position inside the symbol to compare.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimilarArgs {
    pub uri: Uri,
    pub range: Option<Range>,
    pub position: Option<Position>,
    pub top_k: Option<usize>,
}

/// Arguments of `fineTune` and `resetModel`: the workspace folder (default: the first) and,
/// for `fineTune`, training settings over the `fineTune` initialization options.
#[derive(Debug, Default)]
pub struct ModelArgs {
    pub root: Option<Uri>,
    pub settings: crate::finetune::FineTuneSettings,
}

impl ModelArgs {
    /// Reads `{root?, …settings}` (absent or `null`: all defaults); unknown fields are errors.
    pub fn parse(value: Value) -> Result<Self, String> {
        let mut fields = match value {
            Value::Null => return Ok(Self::default()),
            Value::Object(fields) => fields,
            _ => return Err("the argument must be an object".into()),
        };
        let root = match fields.remove("root") {
            None | Some(Value::Null) => None,
            Some(root) => Some(serde_json::from_value(root).map_err(|e| format!("root: {e}"))?),
        };
        let settings = serde_json::from_value(Value::Object(fields)).map_err(|e| e.to_string())?;
        Ok(Self { root, settings })
    }
}

/// Arguments of `ragContext` and `coder/context`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextArgs {
    pub query: String,
    #[allow(dead_code)]
    pub uri: Option<Uri>,
    #[allow(dead_code)]
    pub position: Option<Position>,
    pub token_budget: Option<usize>,
}

/// One result of `semanticSearch` and `findSimilar`: a whole symbol.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HitResult {
    pub uri: Uri,
    /// The whole symbol, every window of a long one included.
    pub range: Range,
    /// Where the best-matching part starts (0-based), inside `range`.
    pub line: u32,
    pub name: String,
    pub kind: SymbolKind,
    pub container_name: Option<String>,
    pub score: f32,
    /// The symbol's signature, at most 200 characters.
    pub preview: String,
    /// Relative to its workspace folder, with forward slashes.
    pub path: String,
    /// The score's parts, when the request asked to `explain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Vec<ScorePart>>,
}

impl HitResult {
    /// `None` for a path that has no `file://` URI.
    pub fn new(hit: &RootedHit) -> Option<Self> {
        Some(Self {
            uri: uri_of(&hit.abs_path())?,
            range: lsp_range(hit.hit.start_line, hit.hit.end_line),
            line: hit.hit.line.saturating_sub(1),
            name: hit.hit.name.clone(),
            kind: hit.hit.kind,
            container_name: hit.hit.container.clone(),
            score: hit.hit.score,
            preview: hit.hit.signature.chars().take(200).collect(),
            path: hit.hit.path.clone(),
            explain: hit.hit.explain.clone(),
        })
    }
}

/// The answer of `ragContext` and `coder/context`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextResult {
    pub chunks: Vec<ContextChunkResult>,
    /// The model's tokens of every chunk, within the request's `tokenBudget`.
    pub tokens_used: usize,
}

/// One piece of code of a [`ContextResult`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextChunkResult {
    pub uri: Uri,
    pub range: Range,
    /// A header line (path and symbol), then the source lines.
    pub text: String,
    pub score: f32,
    pub tokens: usize,
}

/// The answer of `reindex`.
#[derive(Debug, Serialize)]
pub struct ReindexResult {
    /// Always true: every folder's update runs in the background, reported by `$/progress`.
    pub started: bool,
}

/// The answer of `fineTune`: the gate's decision with its figures.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FineTuneResult {
    /// Whether the adapter beat the current model and was installed.
    pub accepted: bool,
    /// The installed adapter's directory (when accepted).
    pub adapter: Option<PathBuf>,
    /// nDCG@10 of the current model and of the adapter on the held-out mined pairs.
    pub ndcg_before: f64,
    pub ndcg_after: f64,
    pub heldout_queries: u64,
    /// The ranking users are served, on held-out questions over the whole workspace: nDCG@10
    /// before and after (null when not measured).
    pub served_before: Option<f64>,
    pub served_after: Option<f64>,
    pub served_queries: u64,
    /// The decision in one line, and what happens next.
    pub message: String,
    /// True when the server now re-embeds the folder with the installed adapter.
    pub reembedding: bool,
    /// The trainer's full report (settings, stages, losses, evaluations), as it wrote it.
    pub report: Value,
}

impl FineTuneResult {
    /// The outcome, with `message` for the one-line summary.
    pub fn new(outcome: FineTuneOutcome, message: String) -> Self {
        Self {
            accepted: outcome.accepted,
            adapter: outcome.adapter,
            ndcg_before: outcome.ndcg_before,
            ndcg_after: outcome.ndcg_after,
            heldout_queries: outcome.heldout_queries,
            served_before: outcome.served_before,
            served_after: outcome.served_after,
            served_queries: outcome.served_queries,
            message,
            reembedding: outcome.accepted,
            report: outcome.report,
        }
    }
}

/// The answer of `resetModel`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResetResult {
    /// Whether the folder had a fine-tuned adapter (now in `adapter-previous/` of its index).
    pub had_adapter: bool,
    /// The workspace folder.
    pub root: PathBuf,
}

#[cfg(test)]
mod tests {
    #[test]
    fn index_status_is_camel_case_on_the_wire_with_the_first_index_dir() {
        let root = |name: &str| crate::engine::RootStatus {
            root: format!("/ws/{name}").into(),
            index_dir: format!("/idx/{name}").into(),
            files: 2,
            chunks: 5,
            embedded: 5,
            pending: 0,
            read_only: true,
            notes: vec!["a_note stays as it is".into()],
            fingerprint: "f".into(),
            adapter: None,
        };
        let status = EngineStatus {
            indexing: false,
            files: 4,
            chunks: 10,
            embedded: 10,
            pending: 0,
            model: "m".into(),
            model_state: "ready".into(),
            device: "cpu".into(),
            fingerprint: Some("f".into()),
            roots: vec![root("a"), root("b")],
            last_error: None,
        };
        let wire = index_status_result(&status).unwrap();
        assert_eq!(wire["modelState"], "ready");
        assert_eq!(wire["indexDir"], "/idx/a");
        assert_eq!(wire["roots"][1]["readOnly"], true);
        assert_eq!(wire["roots"][1]["indexDir"], "/idx/b");
        assert_eq!(wire["roots"][0]["notes"][0], "a_note stays as it is");
        assert!(wire.get("model_state").is_none());
    }

    use super::*;
    use serde_json::json;

    /// The keys of a serialized result, sorted.
    fn keys(value: impl Serialize) -> Vec<String> {
        let value = serde_json::to_value(value).unwrap();
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    /// The results' wire shape is what editors read (the VS Code extension, the Neovim plugin,
    /// the README's command table): camelCase, every field present.
    #[test]
    fn results_keep_their_wire_shape() {
        let hit = RootedHit {
            root: "/ws".into(),
            hit: crate::search::SearchHit {
                path: "src/a.rs".into(),
                name: "run".into(),
                kind: SymbolKind::Function,
                start_line: 3,
                end_line: 9,
                line: 5,
                score: 0.5,
                container: None,
                signature: "x".repeat(300),
                language: crate::symbols::Language::Rust,
                explain: None,
            },
        };
        let result = HitResult::new(&hit).unwrap();
        assert_eq!((result.range.start.line, result.range.end.line), (2, 9));
        assert_eq!((result.line, result.preview.len()), (4, 200));
        let wire = serde_json::to_value(&result).unwrap();
        assert_eq!(wire["uri"], "file:///ws/src/a.rs");
        assert_eq!(
            wire["kind"],
            serde_json::to_value(SymbolKind::Function).unwrap()
        );
        assert_eq!(
            keys(&result),
            [
                "containerName",
                "kind",
                "line",
                "name",
                "path",
                "preview",
                "range",
                "score",
                "uri"
            ],
            "no explain unless asked"
        );
        let outcome = FineTuneOutcome {
            accepted: true,
            adapter: Some("/idx/adapter".into()),
            ndcg_before: 0.3,
            ndcg_after: 0.4,
            heldout_queries: 10,
            served_before: Some(0.5),
            served_after: None,
            served_queries: 8,
            message: "the trainer's line".into(),
            report: json!({"stages": []}),
        };
        let fine_tune = serde_json::to_value(FineTuneResult::new(outcome, "shown".into())).unwrap();
        assert_eq!(fine_tune["message"], "shown");
        assert_eq!(fine_tune["reembedding"], true);
        assert_eq!(fine_tune["servedAfter"], Value::Null);
        assert_eq!(fine_tune["report"], json!({"stages": []}));
        assert_eq!(
            keys(&fine_tune),
            [
                "accepted",
                "adapter",
                "heldoutQueries",
                "message",
                "ndcgAfter",
                "ndcgBefore",
                "reembedding",
                "report",
                "servedAfter",
                "servedBefore",
                "servedQueries"
            ]
        );
        let reset = ResetResult {
            had_adapter: true,
            root: "/ws".into(),
        };
        assert_eq!(keys(&reset), ["hadAdapter", "root"]);
        assert_eq!(keys(ContextResult::default()), ["chunks", "tokensUsed"]);
        assert_eq!(keys(ReindexResult { started: true }), ["started"]);
    }

    #[test]
    fn commands_parse_with_their_arguments_and_say_what_is_wrong() {
        for command in Command::ALL {
            assert_eq!(Command::parse(command.name()), Some(command));
        }
        assert!(matches!(
            Request::parse("semanticSearch", json!({"query": "retry", "explain": true})),
            Ok(Request::SemanticSearch(SearchArgs { explain: true, .. }))
        ));
        assert!(matches!(
            Request::parse("reindex", Value::Null),
            Ok(Request::Reindex)
        ));
        let missing = Request::parse("semanticSearch", Value::Null).unwrap_err();
        assert!(
            missing.contains("semanticSearch") && missing.contains("required"),
            "{missing}"
        );
        let bad = Request::parse("findSimilar", json!({"uri": 3})).unwrap_err();
        assert!(
            bad.starts_with("invalid arguments for findSimilar"),
            "{bad}"
        );
        let unknown = Request::parse("frobnicate", Value::Null).unwrap_err();
        assert!(unknown.contains("fineTune"), "{unknown}");
    }

    #[test]
    fn the_docs_list_every_command() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for page in ["README.md", "docs/lsp.md"] {
            let text = std::fs::read_to_string(root.join(page)).expect(page);
            for command in Command::ALL {
                assert!(
                    text.contains(&format!("`{}`", command.name())),
                    "{page} does not name the {} command",
                    command.name()
                );
            }
        }
    }
}
