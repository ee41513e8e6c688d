//! coder-lsp's extensions of the protocol, typed once: the `workspace/executeCommand` commands
//! ([`Command`]) with their arguments ([`Request`]), and `coder/context`'s parameters. The
//! handler matches on [`Request`], so a command cannot be advertised without being handled, and
//! a test checks the README's command list against [`Command::ALL`].

use serde::Deserialize;
use serde_json::Value;
use tower_lsp_server::ls_types::{Position, Range, Uri};

use crate::engine::EngineStatus;
use crate::search::SearchMode;

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
