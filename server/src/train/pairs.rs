//! The training example every stage of the pipeline passes along.

use crate::embed::{InputKind, QueryTask};
use serde::{Deserialize, Serialize};

/// CodeR's four task families: what the query is and what it retrieves. Serialized as
/// [`TaskFamily::as_str`] says (`text2code`, not serde's `text2_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskFamily {
    /// Natural language → code (a doc comment, a commit message, a README section → symbol).
    #[serde(rename = "text2code")]
    Text2Code,
    /// Code → natural language (a symbol → its documentation).
    #[serde(rename = "code2text")]
    Code2Text,
    /// Code → code (a test → the function under test, a call site → its callee).
    #[serde(rename = "code2code")]
    Code2Code,
    /// Mixed text and code on the query side (identifier words plus a signature → the body).
    Hybrid,
}

impl TaskFamily {
    pub const ALL: [TaskFamily; 4] = [
        TaskFamily::Text2Code,
        TaskFamily::Code2Text,
        TaskFamily::Code2Code,
        TaskFamily::Hybrid,
    ];

    /// What the family's queries look for, which picks the instruction models like CodeR
    /// prefix them with: code for text and hybrid queries, similar code for code, and the
    /// documentation for code → text.
    pub fn query_task(self) -> QueryTask {
        match self {
            TaskFamily::Text2Code | TaskFamily::Hybrid => QueryTask::CodeSearch,
            TaskFamily::Code2Code => QueryTask::SimilarCode,
            TaskFamily::Code2Text => QueryTask::CodeToDocs,
        }
    }

    /// How the family's queries are embedded.
    pub fn query_kind(self) -> InputKind {
        InputKind::Query(self.query_task())
    }

    /// The name used in JSON and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskFamily::Text2Code => "text2code",
            TaskFamily::Code2Text => "code2text",
            TaskFamily::Code2Code => "code2code",
            TaskFamily::Hybrid => "hybrid",
        }
    }

    /// Whether the query side is natural language (the curriculum's text-heavy warm-up).
    pub fn is_text_query(self) -> bool {
        matches!(self, TaskFamily::Text2Code | TaskFamily::Hybrid)
    }
}

/// Where in the repository a pair was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairSource {
    /// A doc comment or docstring → its symbol, with the doc removed from the positive.
    DocComment,
    /// A README/Markdown section → a symbol it names.
    Readme,
    /// A test → the function it exercises.
    Test,
    /// A commit message → a symbol the commit changed.
    Commit,
    /// A call site → the callee.
    CallSite,
    /// Identifier words and the signature → the body.
    Signature,
    /// A symbol → its documentation.
    SymbolDoc,
    /// A query written by an LLM endpoint (`--generator`).
    Generator,
}

impl PairSource {
    pub const ALL: [PairSource; 8] = [
        PairSource::DocComment,
        PairSource::Readme,
        PairSource::Test,
        PairSource::Commit,
        PairSource::CallSite,
        PairSource::Signature,
        PairSource::SymbolDoc,
        PairSource::Generator,
    ];

    /// The name used in JSON and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PairSource::DocComment => "doc_comment",
            PairSource::Readme => "readme",
            PairSource::Test => "test",
            PairSource::Commit => "commit",
            PairSource::CallSite => "call_site",
            PairSource::Signature => "signature",
            PairSource::SymbolDoc => "symbol_doc",
            PairSource::Generator => "generator",
        }
    }
}

/// One training or evaluation example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub family: TaskFamily,
    pub source: PairSource,
    /// The text embedded as a query (with the search instruction, for models that take one).
    pub query: String,
    /// The text embedded as a document: the relevant chunk.
    pub positive: String,
    /// The positive's file, relative to the repository root; train and held-out sets are split
    /// by this, so no file contributes to both.
    pub file: String,
    /// The positive's symbol name, for reports.
    pub symbol: String,
    /// Documents that look relevant but are not (filled by hard-negative mining).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub negatives: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_are_the_report_names() {
        for family in TaskFamily::ALL {
            let json = serde_json::to_string(&family).unwrap();
            assert_eq!(json, format!("\"{}\"", family.as_str()));
            assert_eq!(serde_json::from_str::<TaskFamily>(&json).unwrap(), family);
        }
        for source in PairSource::ALL {
            let json = serde_json::to_string(&source).unwrap();
            assert_eq!(json, format!("\"{}\"", source.as_str()));
        }
    }
}
