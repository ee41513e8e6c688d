//! Query instructions for instruction-tuned embedders (CodeR / bge-code-v1).
//!
//! Such a model embeds a query as `<instruct>{instruction}\n<query>{query}` and a document as it
//! is; the instruction says what kind of document the query should find. Each search task has
//! its own instruction, configurable by the user, with the defaults below. Models without
//! instructions (MiniLM) ignore all of this.

use std::fmt;

/// What a query is looking for; picks the instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryTask {
    /// Natural language → code (semantic search, RAG context).
    CodeSearch,
    /// Code → similar code (find similar, related-code hover).
    SimilarCode,
    /// Code → the prose that documents it (Markdown and text files).
    CodeToDocs,
}

impl QueryTask {
    pub const ALL: [QueryTask; 3] = [Self::CodeSearch, Self::SimilarCode, Self::CodeToDocs];

    /// The name users write in settings and flags (`search`, `similar`, `docs`).
    pub fn name(self) -> &'static str {
        match self {
            Self::CodeSearch => "search",
            Self::SimilarCode => "similar",
            Self::CodeToDocs => "docs",
        }
    }

    /// The task called `name` (see [`QueryTask::name`]).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name.trim())
    }

    /// The instruction used when the user configured none.
    pub fn default_instruction(self) -> &'static str {
        match self {
            Self::CodeSearch => {
                "Given a question in text, retrieve relevant code that answers the question."
            }
            Self::SimilarCode => {
                "Given a piece of code, retrieve code that is semantically similar to it."
            }
            Self::CodeToDocs => {
                "Given a piece of code, retrieve the documentation that explains what it does."
            }
        }
    }
}

impl fmt::Display for QueryTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The instruction for each [`QueryTask`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instructions {
    /// Indexed like [`QueryTask::ALL`].
    texts: [String; 3],
}

impl Default for Instructions {
    fn default() -> Self {
        Self {
            texts: QueryTask::ALL.map(|t| t.default_instruction().to_string()),
        }
    }
}

impl Instructions {
    /// The instruction for `task`.
    pub fn get(&self, task: QueryTask) -> &str {
        &self.texts[Self::slot(task)]
    }

    /// Replaces the instruction for `task`; an empty text is refused (the model was trained
    /// with an instruction on every query).
    pub fn set(&mut self, task: QueryTask, text: &str) -> Result<(), String> {
        let text = text.trim();
        if text.is_empty() {
            return Err(format!("the `{task}` instruction must not be empty"));
        }
        self.texts[Self::slot(task)] = text.to_string();
        Ok(())
    }

    /// Applies `TASK=TEXT` (as given on the command line).
    pub fn set_from_arg(&mut self, arg: &str) -> Result<(), String> {
        let (name, text) = arg
            .split_once('=')
            .ok_or_else(|| format!("instruction {arg:?} is not TASK=TEXT"))?;
        let task = QueryTask::parse(name).ok_or_else(|| {
            format!(
                "unknown instruction task {name:?}; tasks: {}",
                QueryTask::ALL.map(QueryTask::name).join(", ")
            )
        })?;
        self.set(task, text)
    }

    /// The defaults with each `TASK=TEXT` of `args` applied, as `--instruction` flags give them.
    pub fn from_args(args: &[String]) -> Result<Self, String> {
        let mut instructions = Self::default();
        for arg in args {
            instructions
                .set_from_arg(arg)
                .map_err(|e| format!("--instruction: {e}"))?;
        }
        Ok(instructions)
    }

    /// `TASK=TEXT` for every instruction that differs from its default, as
    /// [`Instructions::set_from_arg`] reads them back (to hand them to another process).
    pub fn to_args(&self) -> Vec<String> {
        QueryTask::ALL
            .into_iter()
            .filter(|&task| self.get(task) != task.default_instruction())
            .map(|task| format!("{task}={}", self.get(task)))
            .collect()
    }

    /// The text an instruction-tuned model embeds for `query`.
    pub fn format_query(&self, task: QueryTask, query: &str) -> String {
        format!("<instruct>{}\n<query>{query}", self.get(task))
    }

    fn slot(task: QueryTask) -> usize {
        match task {
            QueryTask::CodeSearch => 0,
            QueryTask::SimilarCode => 1,
            QueryTask::CodeToDocs => 2,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn queries_carry_the_task_instruction() {
        let instructions = Instructions::default();
        assert_eq!(
            instructions.format_query(QueryTask::CodeSearch, "parse a port"),
            "<instruct>Given a question in text, retrieve relevant code that answers the \
             question.\n<query>parse a port"
        );
        let similar = instructions.format_query(QueryTask::SimilarCode, "fn f() {}");
        assert!(
            similar.starts_with("<instruct>Given a piece of code, retrieve code"),
            "{similar}"
        );
        assert!(similar.ends_with("\n<query>fn f() {}"), "{similar}");
    }

    #[test]
    fn instructions_are_configurable_per_task() {
        let mut instructions = Instructions::default();
        instructions
            .set_from_arg("docs=Find the docs for this code.")
            .unwrap();
        assert_eq!(
            instructions.format_query(QueryTask::CodeToDocs, "x"),
            "<instruct>Find the docs for this code.\n<query>x"
        );
        // The others keep their defaults.
        assert_eq!(
            instructions.get(QueryTask::CodeSearch),
            QueryTask::CodeSearch.default_instruction()
        );
        // Handed to another process (the trainer) as flags, only what differs.
        assert_eq!(
            instructions.to_args(),
            ["docs=Find the docs for this code."]
        );
        let again = Instructions::from_args(&instructions.to_args()).unwrap();
        assert_eq!(again, instructions);
        let err = Instructions::from_args(&["nope".into()]).unwrap_err();
        assert!(err.starts_with("--instruction: "), "{err}");
        assert!(Instructions::default().to_args().is_empty());
        for (bad, needle) in [
            ("search", "TASK=TEXT"),
            ("find=x", "unknown instruction task"),
            ("similar=  ", "must not be empty"),
        ] {
            let err = instructions.set_from_arg(bad).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
        for task in QueryTask::ALL {
            assert_eq!(QueryTask::parse(task.name()), Some(task));
        }
    }
}
