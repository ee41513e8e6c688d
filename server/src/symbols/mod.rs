//! Symbols: what a source file is made of, as far as search is concerned.
//!
//! Code files are parsed with tree-sitter; the query files in `grammars/<language>.scm` decide
//! what counts as a symbol. Other text files (Markdown, TOML, YAML, shell, …) are split into
//! windows so they stay searchable.

mod language;
mod text;

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
}
