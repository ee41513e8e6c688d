//! The repository as the miners see it: every indexed file's symbols with the exact chunk text
//! coder-lsp embeds for each, and a name table to resolve identifiers to their definitions.
//!
//! The walk, the symbols and the chunk text all come from coder-lsp itself, so a positive is
//! byte for byte what the index stores for that symbol (its first window, for a long symbol).

use std::collections::HashMap;
use std::path::Path;

use crate::chunk::{Chunker, chunks_for_file};
use crate::symbols::{Language, Symbol, SymbolExtractor, SymbolKind};
use crate::workspace::{self, WalkOptions, WorkspaceFile};

/// One symbol with the texts the miners pair up.
#[derive(Debug, Clone)]
pub(crate) struct MinedSymbol {
    pub symbol: Symbol,
    /// What the index embeds for this symbol (its first chunk).
    pub chunk: String,
    /// The chunk the index would embed if the symbol had no doc comment or docstring: the
    /// positive for a doc query, which must not contain its own answer. `None` when the symbol
    /// has no doc, or when the doc could not be cut out of its text cleanly.
    pub chunk_without_doc: Option<String>,
    /// A test function (by the conventions of its language and file).
    pub is_test: bool,
}

/// One walked file and its symbols.
#[derive(Debug)]
pub(crate) struct RepoFile {
    pub rel_path: String,
    pub language: Language,
    pub symbols: Vec<MinedSymbol>,
}

/// Where a symbol lives: file index, symbol index.
pub(crate) type SymbolRef = (usize, usize);

/// Every indexed file of the repository, read once.
#[derive(Debug, Default)]
pub(crate) struct Repo {
    pub files: Vec<RepoFile>,
    /// Definition names → the symbols defining them (tests, impls and sections excluded).
    names: HashMap<String, Vec<SymbolRef>>,
    /// Files the walk left out (binary, too large, unreadable) or whose symbols failed.
    pub skipped_files: usize,
}

impl Repo {
    /// Walks `root` (canonical) the way the index does and chunks every file with `chunker`.
    /// `progress` hears (files done, files in all) now and then.
    pub fn read(
        root: &Path,
        walk: &WalkOptions,
        chunker: &Chunker,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self, workspace::WorkspaceError> {
        let report = workspace::walk(root, walk)?;
        let mut repo = Repo {
            skipped_files: report.skipped.len(),
            ..Repo::default()
        };
        let mut extractor = SymbolExtractor::new();
        let total = report.files.len();
        for (done, file) in report.files.iter().enumerate() {
            if done % 200 == 0 {
                progress(done, total);
            }
            match read_file(file, walk.max_file_size, &mut extractor, chunker) {
                Some(read) => repo.files.push(read),
                None => repo.skipped_files += 1,
            }
        }
        progress(total, total);
        repo.index_names();
        Ok(repo)
    }

    fn index_names(&mut self) {
        self.names.clear();
        for (f, file) in self.files.iter().enumerate() {
            for (s, mined) in file.symbols.iter().enumerate() {
                if is_definition(mined) {
                    self.names
                        .entry(mined.symbol.name.clone())
                        .or_default()
                        .push((f, s));
                }
            }
        }
    }

    /// The one definition named `name` in code that `language` can call (Rust → Rust,
    /// TypeScript → JavaScript or TypeScript, …), when exactly one exists there.
    pub fn unique_definition_for(&self, name: &str, language: Language) -> Option<SymbolRef> {
        let family = language_family(language);
        let mut found = self
            .names
            .get(name)?
            .iter()
            .filter(|(f, _)| language_family(self.files[*f].language) == family);
        match (found.next(), found.next()) {
            (Some(&only), None) => Some(only),
            _ => None,
        }
    }

    pub fn symbol(&self, (f, s): SymbolRef) -> &MinedSymbol {
        &self.files[f].symbols[s]
    }

    /// The one definition named `name`, when exactly one exists: a name defined twice cannot
    /// say which one a mention means.
    pub fn unique_definition(&self, name: &str) -> Option<SymbolRef> {
        match self.names.get(name).map(Vec::as_slice) {
            Some(&[only]) => Some(only),
            _ => None,
        }
    }

    /// Every symbol with its reference.
    pub fn symbols(&self) -> impl Iterator<Item = (SymbolRef, &RepoFile, &MinedSymbol)> {
        self.files.iter().enumerate().flat_map(|(f, file)| {
            file.symbols
                .iter()
                .enumerate()
                .map(move |(s, mined)| ((f, s), file, mined))
        })
    }

    /// The file at `rel_path`, if the walk indexed it.
    pub fn file_index(&self, rel_path: &str) -> Option<usize> {
        self.files
            .binary_search_by(|f| f.rel_path.as_str().cmp(rel_path))
            .ok()
    }

    pub fn symbol_count(&self) -> usize {
        self.files.iter().map(|f| f.symbols.len()).sum()
    }
}

/// A symbol other code can name and a search should find: code, not a test, not a container
/// that only repeats a type's name (`impl Foo`), not a module.
pub(crate) fn is_definition(mined: &MinedSymbol) -> bool {
    !mined.is_test
        && !matches!(
            mined.symbol.kind,
            SymbolKind::Section | SymbolKind::Impl | SymbolKind::Object | SymbolKind::Module
        )
}

/// Languages whose code can call each other's functions by name share a family.
fn language_family(language: Language) -> Language {
    match language {
        Language::TypeScript | Language::Tsx => Language::JavaScript,
        Language::Cpp => Language::C,
        other => other,
    }
}

/// Functions and methods: the symbols that call others and have bodies.
pub(crate) fn is_callable(kind: SymbolKind) -> bool {
    matches!(kind, SymbolKind::Function | SymbolKind::Method)
}

fn read_file(
    file: &WorkspaceFile,
    max_file_size: u64,
    extractor: &mut SymbolExtractor,
    chunker: &Chunker,
) -> Option<RepoFile> {
    let text = match workspace::read_text(&file.abs_path, max_file_size) {
        Ok(text) => text,
        Err(reason) => {
            tracing::info!("skipping {}: {reason}", file.rel_path);
            return None;
        }
    };
    let file_name = file.rel_path.rsplit('/').next().unwrap_or(&file.rel_path);
    let symbols = match extractor.extract(file.language, file_name, &text) {
        Ok(symbols) => symbols,
        Err(err) => {
            tracing::warn!("skipping {}: {err}", file.rel_path);
            return None;
        }
    };
    Some(RepoFile {
        symbols: mine_symbols(&file.rel_path, file.language, symbols, chunker),
        rel_path: file.rel_path.clone(),
        language: file.language,
    })
}

/// Pairs each symbol of a file with its chunk text, with and without its doc.
pub(crate) fn mine_symbols(
    rel_path: &str,
    language: Language,
    symbols: Vec<Symbol>,
    chunker: &Chunker,
) -> Vec<MinedSymbol> {
    let chunks = chunks_for_file(
        rel_path,
        language,
        &symbols,
        chunker.tokenizer.as_ref(),
        chunker.max_tokens,
    );
    // The same file with every doc cut out: chunking depends on the neighbours (a container
    // whose members have chunks of their own is cut short), so the whole file is chunked again.
    let undocumented: Vec<Option<Symbol>> =
        symbols.iter().map(|s| without_doc(language, s)).collect();
    let any_doc = symbols.iter().any(|s| s.doc.is_some());
    let bare: Vec<Symbol> = symbols
        .iter()
        .zip(&undocumented)
        .map(|(s, u)| {
            u.clone().unwrap_or_else(|| Symbol {
                doc: None,
                ..s.clone()
            })
        })
        .collect();
    let bare_chunks = if any_doc {
        chunks_for_file(
            rel_path,
            language,
            &bare,
            chunker.tokenizer.as_ref(),
            chunker.max_tokens,
        )
    } else {
        Vec::new()
    };
    let test_file = is_test_file(rel_path);
    symbols
        .into_iter()
        .zip(undocumented)
        .filter_map(|(symbol, undocumented)| {
            let chunk = first_chunk(&chunks, &symbol)?;
            let chunk_without_doc = undocumented
                .filter(|_| symbol.doc.is_some())
                .and_then(|_| first_chunk(&bare_chunks, &symbol))
                .filter(|bare| !leaks_doc(bare, symbol.doc.as_deref().unwrap_or_default()));
            let is_test = is_test_symbol(language, test_file, &symbol);
            Some(MinedSymbol {
                chunk,
                chunk_without_doc,
                is_test,
                symbol,
            })
        })
        .collect()
}

/// The chunk (the first window, for a long symbol) that `chunks_for_file` made for `symbol`.
fn first_chunk(chunks: &[crate::chunk::Chunk], symbol: &Symbol) -> Option<String> {
    chunks
        .iter()
        .find(|c| {
            c.start_line == symbol.start_line && c.name == symbol.name && c.kind == symbol.kind
        })
        .map(|c| c.text.clone())
}

/// Whether a doc-free positive still gives its doc away: its first line (when long enough to
/// be telling) appears in the text.
fn leaks_doc(text: &str, doc: &str) -> bool {
    doc.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .is_some_and(|line| line.len() >= 12 && text.contains(line))
}

/// The symbol as it would read without its doc; `None` when the doc is part of the text in a
/// way that cannot be cut out safely. Comment docs sit outside the symbol's text; a Python
/// docstring is the first statement of the body and is removed from it.
fn without_doc(language: Language, symbol: &Symbol) -> Option<Symbol> {
    symbol.doc.as_ref()?;
    let text = if language == Language::Python {
        strip_docstring(&symbol.text)?
    } else {
        symbol.text.clone()
    };
    Some(Symbol {
        doc: None,
        text,
        ..symbol.clone()
    })
}

/// Removes the docstring (the first string literal statement after the `def`/`class` line)
/// from a Python symbol's text. `None` when it sits on the declaration line itself or its end
/// cannot be found.
pub(crate) fn strip_docstring(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let header = lines.iter().position(|l| {
        l.trim_start().starts_with("def ")
            || l.trim_start().starts_with("async def ")
            || l.trim_start().starts_with("class ")
    })?;
    let (open, quote, after) = lines
        .iter()
        .enumerate()
        .skip(header + 1)
        .find_map(|(i, line)| string_opener(line.trim_start()).map(|(q, rest)| (i, q, rest)))?;
    let close = if let Some(end) = after.find(quote) {
        // Opened and closed on one line; nothing but whitespace may follow.
        after[end + quote.len()..]
            .trim()
            .is_empty()
            .then_some(open)?
    } else if quote.len() == 3 {
        (open + 1..lines.len()).find(|&i| lines[i].contains(quote))?
    } else {
        return None;
    };
    let mut kept: Vec<&str> = Vec::with_capacity(lines.len());
    kept.extend(&lines[..open]);
    kept.extend(&lines[close + 1..]);
    Some(kept.join("\n"))
}

/// When `line` starts with a string literal (`"""`, `'''`, `"`, `'`, with `r`/`u` prefixes):
/// its quote and the text after it.
fn string_opener(line: &str) -> Option<(&'static str, &str)> {
    let unprefixed = line.trim_start_matches(['r', 'R', 'u', 'U']);
    if unprefixed.len() + 2 < line.len() {
        return None;
    }
    ["\"\"\"", "'''", "\"", "'"]
        .into_iter()
        .find_map(|q| unprefixed.strip_prefix(q).map(|rest| (q, rest)))
}

/// Test files by path convention: `tests/`, `test/`, `__tests__/`, `tests.*` (a Rust test
/// module), `*_test.*`, `*.test.*`, `*.spec.*`, `test_*.py`.
pub(crate) fn is_test_file(rel_path: &str) -> bool {
    let name = rel_path.rsplit('/').next().unwrap_or(rel_path);
    let stem = name.split('.').next().unwrap_or(name);
    stem == "tests"
        || rel_path
            .split('/')
            .rev()
            .skip(1)
            .any(|dir| matches!(dir, "tests" | "test" | "__tests__" | "spec"))
        || stem.ends_with("_test")
        || stem.starts_with("test_")
        || name.contains(".test.")
        || name.contains(".spec.")
}

/// Whether a symbol is a test: Rust `#[test]` functions and the functions of a `mod test(s)` or a
/// test file (helpers included: they are not what the tests test);
/// Python `test_*` functions and methods of `Test*` classes; Go `Test*` functions in `_test.go`;
/// Java `@Test` methods; functions of JavaScript/TypeScript test files.
fn is_test_symbol(language: Language, test_file: bool, symbol: &Symbol) -> bool {
    if !is_callable(symbol.kind) {
        return false;
    }
    let name = symbol.name.as_str();
    let container = symbol.container.as_deref().unwrap_or_default();
    match language {
        Language::Rust => {
            test_file
                || container == "tests"
                || container == "test"
                || symbol
                    .text
                    .lines()
                    .take_while(|l| l.trim_start().starts_with("#["))
                    .any(|l| l.contains("test]") || l.contains("::test"))
        }
        Language::Python => name.starts_with("test_") || container.starts_with("Test"),
        Language::Go => test_file && name.starts_with("Test"),
        Language::Java => symbol.text.lines().take(4).any(|l| l.trim() == "@Test"),
        Language::JavaScript | Language::TypeScript | Language::Tsx => test_file,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docstrings_are_cut_out_of_python_text() {
        let text =
            "def f(a,\n      b):\n    \"\"\"Adds.\n\n    More.\n    \"\"\"\n    return a + b";
        assert_eq!(
            strip_docstring(text).as_deref(),
            Some("def f(a,\n      b):\n    return a + b")
        );
        let one = "@cache\ndef g():\n    r'''Raw one-liner.'''\n    pass";
        assert_eq!(
            strip_docstring(one).as_deref(),
            Some("@cache\ndef g():\n    pass")
        );
        let class = "class C:\n    'Single quoted.'\n    x = 1";
        assert_eq!(
            strip_docstring(class).as_deref(),
            Some("class C:\n    x = 1")
        );
        // On the declaration line itself there is nothing to cut safely.
        assert_eq!(strip_docstring("def h(): \"\"\"Doc.\"\"\""), None);
        // Unterminated: leave it alone.
        assert_eq!(
            strip_docstring("def k():\n    \"\"\"Never ends\n    pass"),
            None
        );
    }

    #[test]
    fn test_files_by_convention() {
        for path in [
            "tests/cli.rs",
            "pkg/test/util.py",
            "web/__tests__/a.js",
            "x/y_test.go",
            "test_parse.py",
            "src/app.test.ts",
            "src/app.spec.js",
            "src/symbols/tests.rs",
        ] {
            assert!(is_test_file(path), "{path}");
        }
        for path in ["src/lib.rs", "src/testing.rs", "contest/a.py", "latest.js"] {
            assert!(!is_test_file(path), "{path}");
        }
    }
}
