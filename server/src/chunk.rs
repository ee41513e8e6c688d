//! Chunks: the text that is embedded for each symbol.
//!
//! [`chunk_text`] is the one place that decides what a chunk says (a header naming the symbol,
//! its doc and body); retrieval tuning changes it there, by measurement (docs/ranking.md).
//! Text is fitted to the model's token limit with the model's own tokenizer. A symbol too long for one chunk is split into windows
//! that repeat its header; a container whose members are chunks of their own (a class, an impl)
//! keeps only its first window, so its members are not embedded twice.

use std::sync::Arc;

use crate::symbols::{Language, Symbol, SymbolKind};
use crate::words::split_identifier;

/// Names the format [`chunk_text`] writes. Bumped whenever what a chunk says changes, or which
/// symbols a file is cut into (a query in `grammars/`): an index written with another format
/// cuts every file again on its next update, and embeds only the texts it has no vector for.
/// 3: JavaScript/TypeScript calls that define names (`defineGetter(req, 'ip', function ip…)`).
/// 4: Ruby symbols (classes, modules, methods, constants) and `#` comments as doc text.
/// 5: Lua symbols (functions and methods of tables) and `--` comments as doc text; PHP symbols
/// (functions, classes, interfaces, traits, enums, methods, constants).
/// 6: a module symbol for a code file's header (its own docs and re-exports: Rust, Python, Go,
/// JavaScript/TypeScript).
/// 7: C# symbols (namespaces, types, methods, constructors, properties, constants) with XML doc
/// comments as plain text; Bash functions and bats tests with `#` comments as doc text.
/// 8: Kotlin symbols (classes, objects, interfaces, enums, functions, extension functions in
/// their receiver type, constructors, accessor properties, constants, type aliases) with KDoc.
/// 9: Swift symbols (classes, structs, enums, actors, protocols, extensions as impls, functions,
/// initializers, subscripts, computed properties, constants, type aliases, macros) with `///`
/// and `/** */` docs.
/// 10: Elixir symbols (modules, protocols, implementations, structs, functions with their
/// clauses merged, macros, guards, ExUnit tests) with `@moduledoc`/`@doc` strings as doc text.
/// 11: Zig symbols (structs, enums, unions, error sets, generic types, functions, methods,
/// constants, `test` blocks) with `///` docs, and a Zig file's `//!` header.
/// 12: Scala symbols (classes, traits, objects, enums, functions, function-valued members, type
/// aliases) with Scaladoc; a Scala member's header says its container's first doc line.
/// 13: a Scala 3 extension method is a method of its receiver's type.
/// 14: a Rust file header keeps `#![doc = include_str!("…")]`, the file its module docs are in.
/// 15: a Lua file's LDoc module comment is its header module; `--[[--` opens a doc block; a
/// module or namespace that only wraps types is their container, not a symbol.
/// 16: a Lua function that is the fallback of `or` (`M.f = M.f or function`) is a symbol.
/// 17: `module.exports = function query(…)` is the symbol `query`, not `exports`.
/// 18: Dart symbols (classes, mixins as traits, extensions as impls, enums, functions, methods,
/// getters, setters, operators, constructors with a body, constants, typedefs) with `///` docs.
/// 19: a Ruby class reopened by its name alone around other types (`class Thor` around
/// `module Actions`) is their container, not a symbol.
/// 20: a Dart library's doc comment and its `export`/`part` directives are its header module.
/// 21: a `/** */` block one blank line above a definition is its doc (JSDoc in express's style;
/// not a `/*****` banner).
/// 22: `Foo.prototype.bar = function …` is the method `bar` in `Foo`.
/// 23: a `/** */` doc block's HTML and Javadoc inline tags are plain text (`<p>` goes,
/// `{@code x}` is `x`).
/// 24: in those, a one-letter element right after a name is a type parameter (`Builder<S>`), not an
/// HTML tag.
/// 25: a chunk records whether its symbol is a function declared without a body (the syntax
/// tree's word for it, which the ranking's `abstract` prior reads).
/// 26: so is a Python or Ruby method that only raises `NotImplementedError`, and a Python
/// `@abstractmethod`.
/// 27: Haskell symbols (a type signature with its equations, classes as traits with their
/// method signatures, instances as impls, data types, newtypes, type synonyms and families) with
/// Haddock docs (markup removed), and the module header's Haddock and export list.
pub const CHUNK_FORMAT: &str = "27";

/// One unit of embedding and retrieval. Lines are 1-based and inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub name: String,
    pub kind: SymbolKind,
    pub container: Option<String>,
    pub start_line: u32,
    pub end_line: u32,
    pub signature: String,
    /// Exactly what is embedded.
    pub text: String,
    /// blake3 of `text`: the key of the embedding cache.
    pub text_hash: [u8; 32],
    /// The symbol is a function or method declared without a body ([`Symbol::declaration`]).
    pub declaration: bool,
}

/// Counts and cuts text in model tokens (special tokens excluded). The model's tokenizer
/// implements it (`embed`); the chunker only needs this much of it.
pub trait TokenCounter: Send + Sync {
    fn count(&self, text: &str) -> usize;
    /// The longest prefix of `text` with at most `max` tokens.
    fn truncate<'a>(&self, text: &'a str, max: usize) -> &'a str;
    /// Identifies the tokenizer: text cut by two counters with one fingerprint is cut alike.
    fn fingerprint(&self) -> &str;
    /// Tokens the model adds to every input (`[CLS]`, `[SEP]`, an end-of-sequence token).
    fn special_tokens(&self) -> usize;
}

/// Everything needed to cut a file's symbols into chunks for one model.
#[derive(Clone)]
pub struct Chunker {
    pub tokenizer: Arc<dyn TokenCounter>,
    /// Content tokens per chunk: the model's limit less its special tokens.
    pub max_tokens: usize,
}

impl std::fmt::Debug for Chunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunker")
            .field("tokenizer", &self.tokenizer.fingerprint())
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

impl Chunker {
    /// A chunker for a model that takes at most `model_max_tokens` tokens per input.
    pub fn new(tokenizer: Arc<dyn TokenCounter>, model_max_tokens: usize) -> Self {
        let max_tokens = model_max_tokens.saturating_sub(tokenizer.special_tokens());
        Self {
            tokenizer,
            max_tokens,
        }
    }

    /// Identifies how this chunker cuts text (the chunk format, the tokenizer, the token limit
    /// and the code languages this build reads as text for want of their grammar): an index
    /// whose chunks were cut by another must cut every file again.
    pub fn id(&self) -> String {
        let mut id = format!(
            "{CHUNK_FORMAT}:{}:{}",
            self.tokenizer.fingerprint(),
            self.max_tokens
        );
        let without = Language::without_grammar();
        if !without.is_empty() {
            let names: Vec<&str> = without.iter().map(|l| l.name()).collect();
            id.push_str(":without-");
            id.push_str(&names.join("-"));
        }
        id
    }
}

/// The parts a chunk's text is made of.
#[derive(Debug, Clone, Copy)]
pub struct ChunkParts<'a> {
    pub path: &'a str,
    pub name: &'a str,
    pub kind: SymbolKind,
    pub container: Option<&'a str>,
    /// The first line of the container's doc, said after its name (Scala, see
    /// [`container_doc`]).
    pub container_doc: Option<&'a str>,
    pub signature: &'a str,
    pub doc: Option<&'a str>,
    pub body: &'a str,
    /// A later window of a long symbol: the header names the symbol again, the doc is left out.
    pub continued: bool,
}

/// What gets embedded for a symbol (or one window of it). The header reads like a sentence a
/// query could match: `method to_regex_with (to regex with) in Tokens · src/glob.rs`. Spelling
/// the name out as words lets a general-language model see "regex" in `to_regex_with`.
pub fn chunk_text(parts: &ChunkParts<'_>) -> String {
    let mut text = String::with_capacity(parts.body.len() + 128);
    text.push_str(parts.kind.as_str());
    text.push(' ');
    text.push_str(parts.name);
    let words = identifier_words(parts.name);
    if !words.is_empty() {
        text.push_str(" (");
        text.push_str(&words);
        text.push(')');
    }
    if let Some(container) = parts.container {
        text.push_str(" in ");
        text.push_str(container);
        if let Some(doc) = parts.container_doc {
            text.push_str(" (");
            text.push_str(doc);
            text.push(')');
        }
    }
    text.push_str(" · ");
    text.push_str(parts.path);
    if parts.continued {
        text.push_str(" · ");
        text.push_str(parts.signature);
    }
    text.push('\n');
    if !parts.continued
        && let Some(doc) = parts.doc
    {
        text.push_str(doc.trim());
        text.push('\n');
    }
    text.push_str(parts.body.trim_end());
    text
}

/// `to_regex_with` → `to regex with`; empty when the identifier is a single word already.
fn identifier_words(name: &str) -> String {
    let parts = split_identifier(name);
    if parts.len() < 2 {
        return String::new();
    }
    parts.join(" ").to_lowercase()
}

/// The first line of the doc of the container that holds `symbols[index]`, for Scala only:
/// Scala 2 has no functions outside an object, class or trait, so the object's doc is what a
/// module's doc is elsewhere (`object Merge`'s "Function to merge two JSONs." for
/// `Merge.merge`, whose own doc is an example). Measured on `bench/quality`'s json4s: 0.478 →
/// 0.519. Said for every language it moved the tuning codebases from 0.797 to 0.793 (a Python
/// class's docstring is not its methods' purpose), so only Scala has it.
fn container_doc(language: Language, symbols: &[Symbol], index: usize) -> Option<&str> {
    if language != Language::Scala {
        return None;
    }
    let symbol = symbols.get(index)?;
    let container = symbol.container.as_deref()?;
    // Symbols are sorted by start line, then end line descending: the nearest earlier symbol
    // that spans this one is its container (unless the syntax named another: an extension
    // method's receiver type).
    symbols[..index]
        .iter()
        .rev()
        .find(|outer| {
            outer.kind.is_container()
                && outer.name == container
                && outer.start_line <= symbol.start_line
                && symbol.end_line <= outer.end_line
                && (outer.start_line, outer.end_line) != (symbol.start_line, symbol.end_line)
        })
        .and_then(|outer| outer.doc.as_deref())
        .and_then(|doc| doc.lines().map(str::trim).find(|line| has_words(line)))
        .map(|line| match line.char_indices().nth(160) {
            Some((cut, _)) => &line[..cut],
            None => line,
        })
}

/// Whether a doc line says something outside its HTML tags (Scaladoc's `<p>` alone does not).
fn has_words(line: &str) -> bool {
    let mut in_tag = false;
    line.chars().any(|c| match c {
        '<' => {
            in_tag = true;
            false
        }
        '>' => {
            in_tag = false;
            false
        }
        _ => !in_tag && c.is_alphanumeric(),
    })
}

/// Turns a file's symbols into chunks that fit `max_tokens` content tokens each.
pub fn chunks_for_file(
    path: &str,
    language: Language,
    symbols: &[Symbol],
    tokens: &dyn TokenCounter,
    max_tokens: usize,
) -> Vec<Chunk> {
    let max_tokens = max_tokens.max(16);
    let mut chunks = Vec::new();
    for (i, symbol) in symbols.iter().enumerate() {
        let has_members = symbols.iter().enumerate().any(|(j, other)| {
            j != i
                && other.start_line >= symbol.start_line
                && other.end_line <= symbol.end_line
                && (other.start_line, other.end_line) != (symbol.start_line, symbol.end_line)
        });
        let parts = ChunkParts {
            path,
            name: &symbol.name,
            kind: symbol.kind,
            container: symbol.container.as_deref(),
            container_doc: container_doc(language, symbols, i),
            signature: &symbol.signature,
            doc: symbol.doc.as_deref(),
            body: &symbol.text,
            continued: false,
        };
        let whole = chunk_text(&parts);
        // A container is one chunk (its members are chunks of their own), and so is a module:
        // what is worth embedding of it is its head (a file header's docs and re-exports).
        if has_members || symbol.kind == SymbolKind::Module {
            let text = tokens.truncate(&whole, max_tokens).to_string();
            chunks.push(make_chunk(symbol, symbol.start_line, symbol.end_line, text));
            continue;
        }
        if tokens.count(&whole) <= max_tokens {
            // It fits: truncating would only tokenize it a second time.
            chunks.push(make_chunk(
                symbol,
                symbol.start_line,
                symbol.end_line,
                whole,
            ));
            continue;
        }
        split_into_windows(symbol, parts, tokens, max_tokens, &mut chunks);
    }
    chunks
}

fn split_into_windows(
    symbol: &Symbol,
    parts: ChunkParts<'_>,
    tokens: &dyn TokenCounter,
    max_tokens: usize,
    out: &mut Vec<Chunk>,
) {
    let lines: Vec<&str> = symbol.text.lines().collect();
    // Token counts add up line by line closely enough to plan windows; each window is
    // truncated afterwards as a guarantee.
    let line_tokens: Vec<usize> = lines.iter().map(|l| tokens.count(l) + 1).collect();
    let mut start = 0;
    while start < lines.len() {
        let continued = start > 0;
        let header = chunk_text(&ChunkParts {
            body: "",
            continued,
            ..parts
        });
        let budget = max_tokens.saturating_sub(tokens.count(&header)).max(8);
        let mut end = start;
        let mut used = 0;
        while end < lines.len() && (end == start || used + line_tokens[end] <= budget) {
            used += line_tokens[end];
            end += 1;
        }
        let body = lines[start..end].join("\n");
        if !body.trim().is_empty() {
            let text = chunk_text(&ChunkParts {
                body: &body,
                continued,
                ..parts
            });
            let text = tokens.truncate(&text, max_tokens).to_string();
            let first = symbol.start_line + start as u32;
            let last = symbol.start_line + end as u32 - 1;
            out.push(make_chunk(symbol, first, last, text));
        }
        start = end;
    }
}

fn make_chunk(symbol: &Symbol, start_line: u32, end_line: u32, text: String) -> Chunk {
    Chunk {
        name: symbol.name.clone(),
        kind: symbol.kind,
        container: symbol.container.clone(),
        start_line,
        end_line,
        signature: symbol.signature.clone(),
        text_hash: *blake3::hash(text.as_bytes()).as_bytes(),
        text,
        declaration: symbol.declaration,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One token per whitespace-separated word: predictable, and enough to test the planning.
    pub(crate) struct Words;
    impl TokenCounter for Words {
        fn count(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
        fn truncate<'a>(&self, text: &'a str, max: usize) -> &'a str {
            let mut seen = 0;
            for (i, c) in text.char_indices() {
                if !c.is_whitespace() && (i == 0 || text[..i].ends_with(char::is_whitespace)) {
                    seen += 1;
                    if seen > max {
                        return text[..i].trim_end();
                    }
                }
            }
            text
        }
        fn fingerprint(&self) -> &str {
            "words"
        }
        fn special_tokens(&self) -> usize {
            0
        }
    }

    fn symbol(name: &str, start: u32, end: u32, text: &str) -> Symbol {
        Symbol {
            name: name.into(),
            kind: SymbolKind::Function,
            container: Some("Parser".into()),
            start_line: start,
            end_line: end,
            signature: format!("fn {name}()"),
            doc: Some("Parses things.".into()),
            declaration: false,
            text: text.into(),
        }
    }

    #[test]
    fn chunk_text_has_path_container_doc_and_body() {
        let parts = ChunkParts {
            path: "src/parse.rs",
            name: "parse",
            kind: SymbolKind::Method,
            container: Some("Parser"),
            container_doc: None,
            signature: "fn parse()",
            doc: Some("Parses things.\n"),
            body: "fn parse() {\n    run();\n}\n",
            continued: false,
        };
        assert_eq!(
            chunk_text(&parts),
            "method parse in Parser · src/parse.rs\nParses things.\nfn parse() {\n    run();\n}"
        );
        let later = ChunkParts {
            continued: true,
            body: "    more();",
            ..parts
        };
        assert_eq!(
            chunk_text(&later),
            "method parse in Parser · src/parse.rs · fn parse()\n    more();"
        );
    }

    #[test]
    fn the_header_spells_a_compound_name_as_words() {
        let parts = ChunkParts {
            path: "glob.rs",
            name: "to_regex_with",
            kind: SymbolKind::Function,
            container: None,
            container_doc: None,
            signature: "fn to_regex_with()",
            doc: None,
            body: "fn to_regex_with() {}",
            continued: false,
        };
        assert_eq!(
            chunk_text(&parts),
            "function to_regex_with (to regex with) · glob.rs\nfn to_regex_with() {}"
        );
        assert_eq!(identifier_words("GlobSetBuilder"), "glob set builder");
        assert_eq!(identifier_words("__init__"), "");
    }

    #[test]
    fn short_symbol_is_one_chunk_with_its_range() {
        let s = symbol("parse", 10, 12, "fn parse() {\n    run();\n}");
        let chunks = chunks_for_file("a.rs", Language::Rust, &[s], &Words, 100);
        assert_eq!(chunks.len(), 1);
        assert_eq!((chunks[0].start_line, chunks[0].end_line), (10, 12));
        assert_eq!(
            chunks[0].text_hash,
            *blake3::hash(chunks[0].text.as_bytes()).as_bytes()
        );
    }

    #[test]
    fn long_symbol_splits_into_windows_that_repeat_the_header() {
        let body: Vec<String> = (0..30).map(|i| format!("let v{i} = a + b;")).collect();
        let text = format!("fn big() {{\n{}\n}}", body.join("\n"));
        let s = symbol("big", 100, 131, &text);
        let chunks = chunks_for_file("a.rs", Language::Rust, &[s], &Words, 40);
        assert!(chunks.len() > 3, "{} windows", chunks.len());
        assert_eq!(chunks[0].start_line, 100);
        assert_eq!(chunks.last().unwrap().end_line, 131);
        for pair in chunks.windows(2) {
            assert_eq!(
                pair[1].start_line,
                pair[0].end_line + 1,
                "windows tile the symbol"
            );
        }
        for chunk in &chunks {
            assert!(Words.count(&chunk.text) <= 40);
            assert!(chunk.text.starts_with("function big in Parser · a.rs"));
        }
        assert!(
            chunks[1]
                .text
                .starts_with("function big in Parser · a.rs · fn big()\n")
        );
        assert!(chunks[0].text.contains("Parses things."));
        assert!(!chunks[1].text.contains("Parses things."));
    }

    #[test]
    fn container_keeps_one_truncated_chunk_and_members_get_their_own() {
        let methods: Vec<String> = (0..20)
            .map(|i| format!("    fn m{i}(&self) {{ work(); }}"))
            .collect();
        let class = Symbol {
            name: "Parser".into(),
            kind: SymbolKind::Impl,
            container: None,
            start_line: 1,
            end_line: 22,
            signature: "impl Parser".into(),
            doc: None,
            declaration: false,
            text: format!("impl Parser {{\n{}\n}}", methods.join("\n")),
        };
        let member = symbol("m0", 2, 2, "fn m0(&self) { work(); }");
        let chunks = chunks_for_file("a.rs", Language::Rust, &[class, member], &Words, 30);
        assert_eq!(chunks.len(), 2);
        assert_eq!((chunks[0].start_line, chunks[0].end_line), (1, 22));
        assert!(Words.count(&chunks[0].text) <= 30);
        assert_eq!(chunks[1].name, "m0");
    }

    #[test]
    fn doc_lines_with_words() {
        assert!(!has_words("<p>"));
        assert!(!has_words("</p> <br/>"));
        assert!(!has_words("* --"));
        assert!(has_words("<b>Merges</b> two values"));
        assert!(has_words("x < y"));
    }

    #[test]
    fn a_scala_member_says_its_containers_first_doc_line() {
        let object = Symbol {
            name: "Merge".into(),
            kind: SymbolKind::Object,
            container: None,
            start_line: 1,
            end_line: 6,
            signature: "object Merge".into(),
            doc: Some("<p>\nFunction to merge two JSONs.\nSecond line.".into()),
            declaration: false,
            text: "object Merge {\n  def merge(a: J, b: J): J = a\n}".into(),
        };
        let mut member = symbol("merge", 4, 5, "def merge(a: J, b: J): J = a");
        member.kind = SymbolKind::Method;
        member.container = Some("Merge".into());
        member.doc = Some("Return merged JSON.".into());
        let symbols = [object, member];
        let chunks = chunks_for_file("Merge.scala", Language::Scala, &symbols, &Words, 100);
        assert_eq!(chunks.len(), 2);
        assert!(
            chunks[1].text.starts_with(
                "method merge in Merge (Function to merge two JSONs.) · Merge.scala\n"
            ),
            "{}",
            chunks[1].text
        );
        // The container's own chunk, and every other language, say no such line.
        assert!(chunks[0].text.starts_with("object Merge · Merge.scala\n"));
        // A container named by the syntax (an extension method's receiver type) has no doc here.
        let mut extension = symbols.clone();
        extension[1].container = Some("String".into());
        let chunks = chunks_for_file("Merge.scala", Language::Scala, &extension, &Words, 100);
        assert!(
            chunks[1]
                .text
                .starts_with("method merge in String · Merge.scala\n")
        );
        let rust = chunks_for_file("merge.rs", Language::Rust, &symbols, &Words, 100);
        assert!(
            rust[1]
                .text
                .starts_with("method merge in Merge · merge.rs\n")
        );
    }

    #[test]
    fn a_module_is_one_chunk_even_without_members() {
        // A file header's text is docs and re-exports, not its lines: windows would misplace
        // them, and its head is what identifies the module.
        let exports: Vec<String> = (0..40).map(|i| format!("pub use m{i}::Item{i};")).collect();
        let module = Symbol {
            name: "extract".into(),
            kind: SymbolKind::Module,
            container: None,
            start_line: 1,
            end_line: 60,
            signature: "Types for extracting data.".into(),
            doc: Some("Types for extracting data.".into()),
            declaration: false,
            text: exports.join("\n"),
        };
        let chunks = chunks_for_file("extract/mod.rs", Language::Rust, &[module], &Words, 30);
        assert_eq!(chunks.len(), 1);
        assert_eq!((chunks[0].start_line, chunks[0].end_line), (1, 60));
        assert!(
            chunks[0]
                .text
                .starts_with("module extract · extract/mod.rs\nTypes for")
        );
        assert!(Words.count(&chunks[0].text) <= 30);
    }

    #[test]
    fn the_chunker_id_names_the_languages_read_as_text_for_want_of_a_grammar() {
        let id = Chunker::new(Arc::new(Words), 100).id();
        assert!(id.starts_with(&format!("{CHUNK_FORMAT}:words:100")), "{id}");
        if cfg!(feature = "all-languages") && Language::without_grammar().is_empty() {
            // A build with every grammar keeps the id indexes were written with.
            assert_eq!(id, format!("{CHUNK_FORMAT}:words:100"));
        } else {
            let (_, named) = id.split_once(":without-").expect("the missing languages");
            let named: Vec<&str> = named.split('-').collect();
            for language in Language::without_grammar() {
                assert!(named.contains(&language.name()), "{id}");
            }
        }
    }

    #[test]
    fn a_single_overlong_line_is_truncated_not_dropped() {
        let line = "word ".repeat(500);
        let s = symbol("wide", 1, 1, &line);
        let chunks = chunks_for_file("a.rs", Language::Rust, &[s], &Words, 50);
        assert_eq!(chunks.len(), 1);
        assert!(Words.count(&chunks[0].text) <= 50);
    }
}
