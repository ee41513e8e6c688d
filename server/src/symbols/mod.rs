//! Symbols: what a source file is made of, as far as search is concerned.
//!
//! Code files are parsed with tree-sitter; the query files in `grammars/<language>.scm` decide
//! what counts as a symbol. Other text files (Markdown, TOML, YAML, shell, …) are split into
//! windows so they stay searchable. [`SymbolExtractor`] is the entry point; it keeps one parser
//! and compiled query per language, so one extractor should be reused across files (one per
//! thread).

mod code;
mod doc;
#[cfg(grammars)]
mod grammars;
mod header;
mod language;
// The extraction fixtures need every grammar; a build without some has its own test below.
#[cfg(all(test, feature = "all-languages"))]
mod tests;
mod text;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Duration;

use code::Grammar;
pub use doc::rust_doc_includes;
use text::Lines;

/// A language (or text format) that coder-lsp knows how to split into symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Go,
    Java,
    C,
    Cpp,
    Ruby,
    Lua,
    Php,
    CSharp,
    Bash,
    Kotlin,
    Swift,
    Elixir,
    Zig,
    Scala,
    Dart,
    Haskell,
    Markdown,
    /// Any other text format worth indexing (TOML, YAML, shell, …), split into line windows.
    Text,
}

/// What a symbol is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SymbolKind {
    Function,
    Method,
    Class,
    Struct,
    Enum,
    Trait,
    Interface,
    Impl,
    /// A singleton object whose members are called through it (a Scala `object`): a namespace
    /// of functions, ranked like an impl block.
    Object,
    Module,
    Type,
    Constant,
    Macro,
    /// A Markdown section or a window of a text file.
    Section,
}

/// One symbol of a file. Lines are 1-based and inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    pub kind: SymbolKind,
    /// The symbol this one sits in (class, impl, module, trait), if any.
    pub container: Option<String>,
    pub start_line: u32,
    pub end_line: u32,
    /// The declaration line(s) up to the body (e.g. `fn parse(input: &str) -> Result<Ast>`).
    pub signature: String,
    /// The doc comment or docstring, with comment markers stripped.
    pub doc: Option<String>,
    /// The symbol's full source text (signature and body; the doc comment is not repeated here).
    pub text: String,
    /// A function or method declared here without a body, as the syntax tree says: an
    /// interface's or abstract class's member, a trait method without a default, a protocol
    /// requirement; in Python and Ruby, a method that only raises `NotImplementedError` or a
    /// Python `@abstractmethod`. Its implementations are elsewhere (the ranking's `abstract`
    /// prior reads this).
    pub declaration: bool,
}

/// Why a file could not be split into symbols. Bad syntax is not one of them: tree-sitter
/// recovers, and a file with errors yields what could be recognised.
#[derive(Debug, thiserror::Error)]
pub enum SymbolError {
    /// Markdown and text are not parsed with tree-sitter, nor is a language this build has no
    /// grammar for (an internal misuse: extraction reads those as text).
    #[error("no tree-sitter grammar for {0}")]
    NoGrammar(Language),
    /// The grammar does not fit the linked tree-sitter runtime (a build problem).
    #[error("cannot load the {language} grammar: {message}")]
    Grammar { language: Language, message: String },
    /// A query in `grammars/` does not compile against its grammar (a bug in the query file).
    #[error("invalid symbol query for {language}: {message}")]
    Query { language: Language, message: String },
    /// tree-sitter returned no tree.
    #[error("tree-sitter could not parse {file}")]
    Parse { file: String },
}

/// Splits files into symbols. Keeps a parser and a compiled query per code language, created
/// the first time a file of that language is seen; reuse one extractor for many files (it is
/// `Send`, so one per worker thread).
pub struct SymbolExtractor {
    grammars: HashMap<Language, Grammar>,
    parse_budget: Duration,
}

impl Default for SymbolExtractor {
    fn default() -> Self {
        SymbolExtractor {
            grammars: HashMap::new(),
            parse_budget: DEFAULT_PARSE_BUDGET,
        }
    }
}

/// Longest time one file may take to parse before it is indexed as text instead: a
/// pathological file must not stall indexing of a whole workspace.
pub const DEFAULT_PARSE_BUDGET: Duration = Duration::from_secs(5);

impl SymbolExtractor {
    /// An extractor with nothing loaded yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The parser and query of a code language, set up on first use.
    fn grammar(&mut self, language: Language) -> Result<&mut Grammar, SymbolError> {
        Ok(match self.grammars.entry(language) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(Grammar::new(language)?),
        })
    }

    /// Sets how long one file may take to parse (default [`DEFAULT_PARSE_BUDGET`]); files that
    /// take longer are split into text windows.
    pub fn with_parse_budget(mut self, budget: Duration) -> Self {
        self.parse_budget = budget;
        self
    }

    /// The symbols of one file, sorted by (start line, end line descending).
    ///
    /// `file_name` names text windows and Markdown preambles. Code without any definition (a
    /// script of top-level statements) is returned as text windows so it stays searchable.
    pub fn extract(
        &mut self,
        language: Language,
        file_name: &str,
        source: &str,
    ) -> Result<Vec<Symbol>, SymbolError> {
        match language {
            Language::Markdown => Ok(text::markdown_sections(file_name, source)),
            Language::Text => Ok(text::text_windows(file_name, source)),
            _ => self.extract_code(language, file_name, &Lines::new(source)),
        }
    }

    /// [`Self::extract`] for a code language, given the file's line table: the one table the
    /// tree-sitter extraction, the text windows and [`Self::extract_file`]'s header scan share.
    fn extract_code(
        &mut self,
        language: Language,
        file_name: &str,
        lines: &Lines<'_>,
    ) -> Result<Vec<Symbol>, SymbolError> {
        if !language.has_grammar() {
            // Built without this language's grammar (its `lang-*` feature was off).
            return Ok(text::windows(file_name, lines));
        }
        let budget = self.parse_budget;
        let mut parsed = self.grammar(language)?.extract(file_name, lines, budget)?;
        // `.h` is C by convention, yet many headers are C++: when C does not parse cleanly, C++
        // (nearly a superset) gets a chance, and the richer outline wins.
        if language == Language::C
            && Language::Cpp.has_grammar()
            && let Some(c) = &parsed
            && c.had_errors
            && let Some(cpp) = self
                .grammar(Language::Cpp)?
                .extract(file_name, lines, budget)?
            && cpp.symbols.len() > c.symbols.len()
        {
            parsed = Some(cpp);
        }
        match parsed {
            Some(parsed) if !parsed.symbols.is_empty() => Ok(parsed.symbols),
            _ => Ok(text::windows(file_name, lines)),
        }
    }

    /// The symbols of the file at `rel_path` (relative, `/`-separated): [`Self::extract`]'s,
    /// preceded by a module symbol for the file's header (its own documentation and its
    /// re-exports, see `header.rs`) where the file has one.
    pub fn extract_file(
        &mut self,
        language: Language,
        rel_path: &str,
        source: &str,
    ) -> Result<Vec<Symbol>, SymbolError> {
        let file_name = rel_path.rsplit('/').next().unwrap_or(rel_path);
        if matches!(language, Language::Markdown | Language::Text) {
            return self.extract(language, file_name, source);
        }
        let lines = Lines::new(source);
        let mut symbols = self.extract_code(language, file_name, &lines)?;
        let parsed = symbols
            .first()
            .is_some_and(|first| first.kind != SymbolKind::Section);
        if parsed {
            let first_row = symbols
                .iter()
                .map(|s| s.start_line.saturating_sub(1) as usize)
                .min()
                .unwrap_or(0);
            if let Some(module) = header::file_header(language, rel_path, &lines, first_row) {
                symbols.insert(0, module);
            }
        }
        Ok(symbols)
    }
}

#[cfg(all(test, not(feature = "all-languages")))]
mod without_grammars {
    use super::*;

    #[test]
    fn a_language_built_without_its_grammar_is_read_as_text_windows() {
        let without = Language::without_grammar();
        assert!(!without.is_empty());
        let source = "def greet(name)\n  puts name\nend\n".repeat(30);
        let mut extractor = SymbolExtractor::new();
        for language in without {
            let symbols = extractor
                .extract_file(language, "lib/greet.x", &source)
                .unwrap();
            assert!(!symbols.is_empty(), "{language}");
            assert!(
                symbols.iter().all(|s| s.kind == SymbolKind::Section),
                "{language}: {symbols:?}"
            );
        }
    }
}
