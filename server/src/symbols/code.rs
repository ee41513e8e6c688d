//! Symbols of code files, found with tree-sitter.
//!
//! The query files in `grammars/` say what a symbol is; this module turns their matches into
//! [`Symbol`]s: it widens definitions to their decorators, attributes and `export`/`template`
//! wrappers, attaches doc comments, nests symbols to find containers, and cuts signatures.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use tree_sitter::{Node, ParseOptions, ParseState, Parser, Query, QueryCursor, StreamingIterator};

use super::doc::{
    comment_lines, elixir_doc_string, haddock_lines, haddock_text, javadoc_text, join_doc,
    python_docstring, xml_doc_text,
};
use super::header::{is_license, is_module_doc};
use super::text::{Lines, row_to_line, truncate_chars};
use super::{Language, Symbol, SymbolError, SymbolKind};

/// Signatures are for display and ranking; a declaration longer than this is cut.
const SIGNATURE_CHARS: usize = 300;

/// The tree-sitter grammar and symbol query of a language, if this build has its grammar.
pub(super) fn grammar_parts(language: Language) -> Option<(tree_sitter::Language, &'static str)> {
    match language {
        #[cfg(feature = "lang-rust")]
        Language::Rust => Some((
            super::grammars::RUST.language(),
            include_str!("../../grammars/rust.scm"),
        )),
        #[cfg(feature = "lang-python")]
        Language::Python => Some((
            super::grammars::PYTHON.language(),
            include_str!("../../grammars/python.scm"),
        )),
        #[cfg(feature = "lang-javascript")]
        Language::JavaScript => Some((
            super::grammars::JAVASCRIPT.language(),
            concat!(
                include_str!("../../grammars/javascript.scm"),
                include_str!("../../grammars/ecmascript.scm")
            ),
        )),
        #[cfg(feature = "lang-typescript")]
        Language::TypeScript => Some((
            super::grammars::TYPESCRIPT.language(),
            concat!(
                include_str!("../../grammars/typescript.scm"),
                include_str!("../../grammars/ecmascript.scm")
            ),
        )),
        #[cfg(feature = "lang-typescript")]
        Language::Tsx => Some((
            super::grammars::TSX.language(),
            concat!(
                include_str!("../../grammars/typescript.scm"),
                include_str!("../../grammars/ecmascript.scm")
            ),
        )),
        #[cfg(feature = "lang-go")]
        Language::Go => Some((
            super::grammars::GO.language(),
            include_str!("../../grammars/go.scm"),
        )),
        #[cfg(feature = "lang-java")]
        Language::Java => Some((
            super::grammars::JAVA.language(),
            include_str!("../../grammars/java.scm"),
        )),
        #[cfg(feature = "lang-c")]
        Language::C => Some((
            super::grammars::C.language(),
            include_str!("../../grammars/c.scm"),
        )),
        #[cfg(feature = "lang-cpp")]
        Language::Cpp => Some((
            super::grammars::CPP.language(),
            include_str!("../../grammars/cpp.scm"),
        )),
        #[cfg(feature = "lang-ruby")]
        Language::Ruby => Some((
            super::grammars::RUBY.language(),
            include_str!("../../grammars/ruby.scm"),
        )),
        #[cfg(feature = "lang-lua")]
        Language::Lua => Some((
            super::grammars::LUA.language(),
            include_str!("../../grammars/lua.scm"),
        )),
        #[cfg(feature = "lang-php")]
        // The PHP of `.php` files: HTML with `<?php … ?>` islands (not the PHP-only grammar).
        Language::Php => Some((
            super::grammars::PHP.language(),
            include_str!("../../grammars/php.scm"),
        )),
        #[cfg(feature = "lang-csharp")]
        Language::CSharp => Some((
            super::grammars::C_SHARP.language(),
            include_str!("../../grammars/csharp.scm"),
        )),
        #[cfg(feature = "lang-bash")]
        Language::Bash => Some((
            super::grammars::BASH.language(),
            include_str!("../../grammars/bash.scm"),
        )),
        #[cfg(feature = "lang-kotlin")]
        Language::Kotlin => Some((
            super::grammars::KOTLIN.language(),
            include_str!("../../grammars/kotlin.scm"),
        )),
        #[cfg(feature = "lang-swift")]
        Language::Swift => Some((
            super::grammars::SWIFT.language(),
            include_str!("../../grammars/swift.scm"),
        )),
        #[cfg(feature = "lang-elixir")]
        Language::Elixir => Some((
            super::grammars::ELIXIR.language(),
            include_str!("../../grammars/elixir.scm"),
        )),
        #[cfg(feature = "lang-zig")]
        Language::Zig => Some((
            super::grammars::ZIG.language(),
            include_str!("../../grammars/zig.scm"),
        )),
        #[cfg(feature = "lang-scala")]
        Language::Scala => Some((
            super::grammars::SCALA.language(),
            include_str!("../../grammars/scala.scm"),
        )),
        #[cfg(feature = "lang-dart")]
        Language::Dart => Some((
            super::grammars::DART.language(),
            include_str!("../../grammars/dart.scm"),
        )),
        #[cfg(feature = "lang-haskell")]
        Language::Haskell => Some((
            super::grammars::HASKELL.language(),
            include_str!("../../grammars/haskell.scm"),
        )),
        // Markdown, text, and code languages built without their grammar (`Language::has_grammar`).
        _ => None,
    }
}

/// A parser and compiled symbol query for one language, reused across files.
pub(crate) struct Grammar {
    language: Language,
    parser: Parser,
    query: Query,
    /// Index of the `@name` capture.
    name_capture: u32,
    /// Index of the optional `@container` capture.
    container_capture: Option<u32>,
    /// The symbol kind of each `@definition.<kind>` capture, by capture index.
    kinds: Vec<Option<SymbolKind>>,
}

/// The outcome of parsing one file.
pub(crate) struct Parsed {
    /// Sorted by (start line, end line descending).
    pub(crate) symbols: Vec<Symbol>,
    /// Whether the tree has syntax errors: a hint that the file may be in another dialect
    /// (C++ in a `.h` file).
    pub(crate) had_errors: bool,
}

/// One query match, before its context in the tree is known.
#[derive(Clone, Copy)]
struct Candidate<'t> {
    def: Node<'t>,
    name: Node<'t>,
    container: Option<Node<'t>>,
    kind: SymbolKind,
    /// Earlier patterns win when several capture the same node.
    pattern: usize,
    /// The last node of a definition the grammar sees as several (a bats `@test` block).
    end: Option<Node<'t>>,
}

/// A symbol with its byte range, before nesting decides its container and final kind.
struct Draft {
    kind: SymbolKind,
    name: String,
    /// A container named by the syntax itself (Go receiver, C++ `Foo::bar`).
    container: Option<String>,
    start_byte: usize,
    end_byte: usize,
    start_row: usize,
    end_row: usize,
    signature: String,
    doc: Option<String>,
    declaration: bool,
    pattern: usize,
}

/// A node on the walk's current path, with the number of comment/attribute siblings that
/// immediately precede it (a prefix of its parent's run, see [`walk`]).
struct Frame<'t> {
    node: Node<'t>,
    run_len: usize,
}

impl Grammar {
    /// Loads the grammar and compiles the query of a code language.
    pub(crate) fn new(language: Language) -> Result<Self, SymbolError> {
        let (ts_language, query_source) =
            grammar_parts(language).ok_or(SymbolError::NoGrammar(language))?;
        Self::with_query(language, &ts_language, query_source)
    }

    /// Sets up a grammar with the given query source (tests use broken queries).
    fn with_query(
        language: Language,
        ts_language: &tree_sitter::Language,
        query_source: &str,
    ) -> Result<Self, SymbolError> {
        let mut parser = Parser::new();
        parser
            .set_language(ts_language)
            .map_err(|error| SymbolError::Grammar {
                language,
                message: error.to_string(),
            })?;
        let query_error = |message: String| SymbolError::Query { language, message };
        let query = Query::new(ts_language, query_source)
            .map_err(|error| query_error(error.to_string()))?;

        let mut name_capture = None;
        let mut container_capture = None;
        let mut kinds = Vec::with_capacity(query.capture_names().len());
        for (index, &capture) in query.capture_names().iter().enumerate() {
            let index =
                u32::try_from(index).map_err(|_| query_error("too many captures".into()))?;
            let mut kind = None;
            if capture == "name" {
                name_capture = Some(index);
            } else if capture == "container" {
                container_capture = Some(index);
            } else if let Some(suffix) = capture.strip_prefix("definition.") {
                kind = Some(
                    SymbolKind::parse(suffix)
                        .ok_or_else(|| query_error(format!("unknown kind in @{capture}")))?,
                );
            } else if !capture.starts_with('_') {
                return Err(query_error(format!("unknown capture @{capture}")));
            }
            kinds.push(kind);
        }
        let name_capture = name_capture.ok_or_else(|| query_error("no @name capture".into()))?;
        Ok(Grammar {
            language,
            parser,
            query,
            name_capture,
            container_capture,
            kinds,
        })
    }

    /// The symbols of one file, given as its line table (built once per file by the caller,
    /// which shares it with the header scan); `None` when parsing took longer than `budget` and
    /// was abandoned. Syntax errors are not errors: tree-sitter recovers and whatever it
    /// recognised is returned.
    pub(crate) fn extract(
        &mut self,
        file_name: &str,
        lines: &Lines<'_>,
        budget: Duration,
    ) -> Result<Option<Parsed>, SymbolError> {
        let source = lines.source();
        let started = Instant::now();
        let mut out_of_time = false;
        let mut progress = |_: &ParseState| {
            if started.elapsed() > budget {
                out_of_time = true;
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let bytes = source.as_bytes();
        let tree = self.parser.parse_with_options(
            &mut |offset, _| bytes.get(offset..).unwrap_or_default(),
            None,
            Some(ParseOptions::new().progress_callback(&mut progress)),
        );
        let Some(tree) = tree else {
            // A cancelled parser resumes the old parse on the next call unless reset.
            self.parser.reset();
            if out_of_time {
                tracing::warn!(
                    file = file_name,
                    ?budget,
                    "parse took too long; indexing as text"
                );
                return Ok(None);
            }
            return Err(SymbolError::Parse {
                file: file_name.to_string(),
            });
        };
        let root = tree.root_node();
        let had_errors = root.has_error();

        let mut candidates: HashMap<usize, Candidate<'_>> = HashMap::new();
        let mut cursor = QueryCursor::new();
        let mut matches = cursor.matches(&self.query, root, source.as_bytes());
        while let Some(found) = matches.next() {
            let mut def = None;
            let mut name = None;
            let mut container = None;
            for capture in found.captures() {
                if capture.index == self.name_capture {
                    name = Some(capture.node);
                } else if Some(capture.index) == self.container_capture {
                    container = Some(capture.node);
                } else if let Some(Some(kind)) = self.kinds.get(capture.index as usize) {
                    def = Some((capture.node, *kind));
                }
            }
            let (Some((def, kind)), Some(name)) = (def, name) else {
                continue;
            };
            let candidate = Candidate {
                def,
                name,
                container,
                kind,
                pattern: found.pattern_index,
                end: None,
            };
            candidates
                .entry(def.id())
                .and_modify(|existing| {
                    if candidate.pattern < existing.pattern {
                        *existing = candidate;
                    }
                })
                .or_insert(candidate);
        }
        if self.language == Language::Elixir {
            merge_elixir_clauses(root, source, &mut candidates);
        }
        if self.language == Language::Haskell {
            merge_haskell_equations(root, source, &mut candidates);
        }
        if self.language == Language::Bash {
            for (test, end) in bats_test_ends(root, source) {
                if let Some(candidate) = candidates.get_mut(&test) {
                    candidate.end = Some(end);
                }
            }
        }
        if candidates.is_empty() {
            return Ok(Some(Parsed {
                symbols: Vec::new(),
                had_errors,
            }));
        }

        let language = self.language;
        let mut drafts = Vec::with_capacity(candidates.len());
        walk(root, language, |path, runs| {
            let Some(frame) = path.last() else { return };
            if let Some(candidate) = candidates.get(&frame.node.id()) {
                drafts.push(draft(language, source, lines, candidate, path, runs));
            }
        });
        Ok(Some(Parsed {
            symbols: assemble(language, drafts, lines),
            had_errors,
        }))
    }
}

/// Whether a node is a comment: any grammar's `*comment*` node, or a Haskell `haddock` one.
fn is_comment(node: Node<'_>) -> bool {
    node.kind().contains("comment") || node.kind() == "haddock"
}

/// Whether a node is a comment, or (in Rust) an attribute, or (in Elixir) a module attribute
/// (`@doc`, `@spec`); runs of these before a definition hold its doc comment and belong to its
/// range.
fn is_run_node(language: Language, node: Node<'_>) -> bool {
    is_comment(node)
        || (language == Language::Rust && node.kind() == "attribute_item")
        || (language == Language::Elixir && is_elixir_attribute(node))
}

/// An Elixir module attribute: `@name value`.
fn is_elixir_attribute(node: Node<'_>) -> bool {
    node.kind() == "unary_operator" && node.child(0).is_some_and(|op| op.kind() == "@")
}

/// The name and value of an Elixir module attribute (`@doc "…"` → `doc`, the string); `None`
/// for anything else.
fn elixir_attribute<'s, 't>(
    source: &'s str,
    node: Node<'t>,
) -> Option<(&'s str, Option<Node<'t>>)> {
    if !is_elixir_attribute(node) {
        return None;
    }
    let operand = node.child_by_field_name("operand")?;
    match operand.kind() {
        // `@doc "…"`, `@spec f(t) :: t`
        "call" => {
            let name = node_text(source, operand.child_by_field_name("target")?);
            let value = operand
                .named_children(&mut operand.walk())
                .find(|child| child.kind() == "arguments")
                .and_then(|arguments| arguments.named_child(0));
            Some((name, value))
        }
        // `@impl` alone
        "identifier" => Some((node_text(source, operand), None)),
        _ => None,
    }
}

/// The keyword of an Elixir definition call (`def`, `defmodule`, `test`).
fn elixir_keyword<'s>(source: &'s str, def: Node<'_>) -> &'s str {
    def.child_by_field_name("target")
        .map_or("", |target| node_text(source, target))
}

/// Elixir: the clauses of one function are separate `def`s one after another (`def f(0)`, `def
/// f(n)`), often with an `@impl true` or a comment between them. The first clause becomes the
/// symbol and spans them all, with the first clause's doc and signature; the others are no
/// symbols of their own.
fn merge_elixir_clauses<'t>(
    root: Node<'t>,
    source: &str,
    candidates: &mut HashMap<usize, Candidate<'t>>,
) {
    // The key of a clause: its keyword and name (`def`/`defp` clauses of one name and arity
    // cannot mix; different arities of one name, side by side, read as one function too).
    let key = |candidate: &Candidate<'t>| -> Option<String> {
        if !matches!(candidate.kind, SymbolKind::Function | SymbolKind::Macro) {
            return None;
        }
        let keyword = elixir_keyword(source, candidate.def);
        // ExUnit tests are named by their string: equal names are separate tests.
        if keyword == "test" {
            return None;
        }
        Some(format!("{keyword} {}", node_text(source, candidate.name)))
    };
    let between = |node: Node<'_>| {
        node.kind().contains("comment")
            || elixir_attribute(source, node).is_some_and(|(name, _)| name == "impl")
    };
    merge_clauses(root, candidates, key, between);
}

/// Haskell: a function is its type signature, then its equations, each a node of its own
/// (`feed (Fail t ctxs msg) d = …`, `feed (Partial k) d = …`), often with pragmas (`{-# INLINE
/// feed #-}`), comments or CPP lines between them. The first (the signature, when there is one)
/// becomes the symbol and spans them all; the others are no symbols of their own.
fn merge_haskell_equations<'t>(
    root: Node<'t>,
    source: &str,
    candidates: &mut HashMap<usize, Candidate<'t>>,
) {
    let key = |candidate: &Candidate<'t>| -> Option<String> {
        matches!(candidate.def.kind(), "signature" | "function" | "bind")
            .then(|| haskell_name(node_text(source, candidate.name)).to_string())
    };
    let between = |node: Node<'_>| matches!(node.kind(), "comment" | "pragma" | "cpp");
    merge_clauses(root, candidates, key, between);
}

/// A Haskell name as a signature writes it and as an equation defines it: `(<?>)` in a
/// signature and `<?>` in `p <?> msg = …`, `` `plus` `` in ``a `plus` b = …``.
fn haskell_name(raw: &str) -> &str {
    let name = raw.trim();
    let name = name
        .strip_prefix('(')
        .and_then(|inner| inner.strip_suffix(')'))
        .unwrap_or(name);
    name.trim_matches('`').trim()
}

/// The type a Haskell instance is for, from its type patterns: `(Parser i)` → `Parser`,
/// `ByteString` → `ByteString`; a list or tuple type (`[a]`, `(a, b)`) as written.
fn haskell_type_head(patterns: &str) -> String {
    let text = patterns.trim();
    let inner = text
        .strip_prefix('(')
        .and_then(|inner| inner.strip_suffix(')'))
        .unwrap_or(text)
        .trim();
    if inner.starts_with('[') || inner.contains(',') {
        return text.to_string();
    }
    inner.split_whitespace().next().unwrap_or(inner).to_string()
}

/// Merges runs of sibling candidates with equal keys into their first, which then ends where
/// the last one does; nodes for which `between` holds may separate them. One pass over the
/// tree.
fn merge_clauses<'t>(
    root: Node<'t>,
    candidates: &mut HashMap<usize, Candidate<'t>>,
    key: impl Fn(&Candidate<'t>) -> Option<String>,
    between: impl Fn(Node<'t>) -> bool,
) {
    /// A run being read: its first clause, key and last clause, and the clauses after the
    /// first.
    struct Run<'t> {
        first: usize,
        key: String,
        last: Node<'t>,
        rest: Vec<usize>,
    }
    let mut merged: Vec<Run<'t>> = Vec::new();
    let mut stack = vec![root];
    while let Some(parent) = stack.pop() {
        let mut open: Option<Run<'t>> = None;
        let mut cursor = parent.walk();
        for child in parent.named_children(&mut cursor) {
            if child.named_child_count() > 0 {
                stack.push(child);
            }
            if let Some(clause) = candidates.get(&child.id()).and_then(&key) {
                match open.as_mut() {
                    Some(run) if run.key == clause => {
                        run.last = child;
                        run.rest.push(child.id());
                    }
                    _ => {
                        merged.extend(open.take().filter(|run| !run.rest.is_empty()));
                        open = Some(Run {
                            first: child.id(),
                            key: clause,
                            last: child,
                            rest: Vec::new(),
                        });
                    }
                }
            } else if !between(child) {
                merged.extend(open.take().filter(|run| !run.rest.is_empty()));
            }
        }
        merged.extend(open.filter(|run| !run.rest.is_empty()));
    }
    for run in merged {
        for id in run.rest {
            candidates.remove(&id);
        }
        if let Some(candidate) = candidates.get_mut(&run.first) {
            candidate.end = Some(run.last);
        }
    }
}

/// The doc of an Elixir module, protocol or implementation: the `@moduledoc` in its body
/// (`@moduledoc false` hides it: no doc).
fn elixir_moduledoc(source: &str, def: Node<'_>) -> Option<Option<String>> {
    let mut cursor = def.walk();
    let body = def
        .named_children(&mut cursor)
        .find(|child| child.kind() == "do_block")?;
    let mut cursor = body.walk();
    body.named_children(&mut cursor)
        .find_map(|child| match elixir_attribute(source, child) {
            Some(("moduledoc", value)) => {
                Some(value.and_then(|value| elixir_doc_string(node_text(source, value))))
            }
            _ => None,
        })
}

/// Depth-first walk over the whole tree that calls `visit` on every node with the path from
/// the root and, for each node on the path, the run of comment/attribute siblings among its
/// children seen so far. Linear in the size of the tree: `Node::parent` and
/// `Node::prev_sibling` search from the root, which would make per-symbol lookups quadratic on
/// files with thousands of definitions.
fn walk<'t>(
    root: Node<'t>,
    language: Language,
    mut visit: impl FnMut(&[Frame<'t>], &[Vec<Node<'t>>]),
) {
    let mut cursor = root.walk();
    let mut path = vec![Frame {
        node: root,
        run_len: 0,
    }];
    // runs[d]: the comments/attributes among path[d]'s children since its last other named
    // child. Only ever appended to or cleared, so a frame's `run_len` prefix stays valid while
    // the frame is on the path.
    let mut runs: Vec<Vec<Node<'t>>> = Vec::new();
    loop {
        visit(&path, &runs);
        if cursor.goto_first_child() {
            runs.push(Vec::new());
            path.push(Frame {
                node: cursor.node(),
                run_len: 0,
            });
            continue;
        }
        loop {
            let Some(done) = path.pop() else { return };
            let Some(run) = runs.last_mut() else { return };
            if is_run_node(language, done.node) {
                run.push(done.node);
            } else if done.node.is_named() {
                run.clear();
            }
            if cursor.goto_next_sibling() {
                path.push(Frame {
                    node: cursor.node(),
                    run_len: run.len(),
                });
                break;
            }
            if !cursor.goto_parent() {
                return;
            }
            runs.pop();
        }
    }
}

/// bats test blocks, `@test "name" { … }`: the grammar sees an `@test` command, then the body's
/// lines and the closing `}` as top-level commands of their own. Maps each `@test` command (by
/// node id) to the `}` command that closes it, or to the last node before the next test when it
/// is never closed. One pass over the file's top-level nodes.
fn bats_test_ends<'t>(root: Node<'t>, source: &str) -> HashMap<usize, Node<'t>> {
    let mut ends = HashMap::new();
    // The test being read, and its last node so far.
    let mut open: Option<(Node<'t>, Node<'t>)> = None;
    let mut cursor = root.walk();
    for node in root.named_children(&mut cursor) {
        let command = match node.kind() {
            "command" => node
                .child_by_field_name("name")
                .map(|name| node_text(source, name)),
            _ => None,
        };
        if command == Some("@test") {
            if let Some((test, last)) = open.take() {
                ends.insert(test.id(), last);
            }
            open = Some((node, node));
            continue;
        }
        let Some((test, last)) = open.as_mut() else {
            continue;
        };
        if command == Some("}") {
            ends.insert(test.id(), node);
            open = None;
        } else if !is_comment(node) {
            *last = node;
        }
    }
    if let Some((test, last)) = open {
        ends.insert(test.id(), last);
    }
    ends
}

/// Whether `parent` only dresses up `child` (`export`, decorators, `template <…>`, a lone Go
/// `type` spec): the symbol then spans the parent, and its doc comment precedes the parent.
fn wraps(language: Language, parent: Node<'_>, child: Node<'_>) -> bool {
    use Language::*;
    match (language, parent.kind()) {
        (JavaScript | TypeScript | Tsx, "export_statement") => true,
        (TypeScript | Tsx, "ambient_declaration") => true,
        // `namespace Foo {…}` is an expression statement in the TypeScript grammar.
        (TypeScript | Tsx, "expression_statement") => parent.start_byte() == child.start_byte(),
        (Python, "decorated_definition") => true,
        // A class member: its doc comment is a sibling of the `member_declaration`.
        (Dart, "member_declaration") => true,
        (Cpp, "template_declaration") => true,
        (C | Cpp, "type_definition") => parent
            .child_by_field_name("type")
            .is_some_and(|ty| ty.id() == child.id()),
        (Go, "type_declaration" | "const_declaration") => {
            let mut cursor = parent.walk();
            parent
                .named_children(&mut cursor)
                .filter(|node| !node.kind().contains("comment"))
                .nth(1)
                .is_none()
        }
        _ => false,
    }
}

/// The row of a node's last character: nodes that swallow their line's `\n` end at column 0
/// of the next row, which is not part of the symbol.
fn last_row(node: Node<'_>) -> usize {
    let end = node.end_position();
    if end.column == 0 && end.row > node.start_position().row {
        end.row - 1
    } else {
        end.row
    }
}

fn node_text<'s>(source: &'s str, node: Node<'_>) -> &'s str {
    source.get(node.byte_range()).unwrap_or("")
}

/// Works out range, name, container, signature and doc of one match from its place in the tree.
fn draft(
    language: Language,
    source: &str,
    lines: &Lines<'_>,
    candidate: &Candidate<'_>,
    path: &[Frame<'_>],
    runs: &[Vec<Node<'_>>],
) -> Draft {
    let def = candidate.def;
    let mut outer = path.len().saturating_sub(1);
    while outer > 0 && wraps(language, path[outer - 1].node, path[outer].node) {
        outer -= 1;
    }
    let outer_node = path.get(outer).map_or(def, |frame| frame.node);
    // A file-scoped C# namespace (`namespace Foo;`) holds the rest of its file.
    let end_node = match outer.checked_sub(1).and_then(|parent| path.get(parent)) {
        Some(parent) if def.kind() == "file_scoped_namespace_declaration" => parent.node,
        _ => candidate.end.unwrap_or(outer_node),
    };
    // An indented body may end where the next definition starts (Scala 3, and Scala 2's `=`
    // body on the lines below): the comments at the end of it that are not indented deeper than
    // this definition are the next one's docs, not part of this one.
    let end_node = outdented_tail(end_node, outer_node.start_position().column).0;
    let run_before = |depth: usize| -> &[Node<'_>] {
        match (depth.checked_sub(1), path.get(depth)) {
            (Some(parent), Some(frame)) => runs
                .get(parent)
                .and_then(|run| run.get(..frame.run_len))
                .unwrap_or(&[]),
            _ => &[],
        }
    };
    let mut before = run_before(outer);
    // Ruby: a body starts at its first statement, so the comment above that statement is a
    // child of the class or module, just before the body.
    if language == Language::Ruby
        && before.is_empty()
        && outer > 0
        && path[outer - 1].node.kind() == "body_statement"
        && path[outer - 1].node.start_byte() == outer_node.start_byte()
    {
        before = run_before(outer - 1);
    }
    // Haskell: a file's or class's first declaration starts the node that holds them all
    // (`declarations`, `class_declarations`), so its Haddock comment precedes that node: a
    // sibling of it, or the last node of the imports before it.
    let mut anchor = outer_node;
    if language == Language::Haskell && before.is_empty() {
        let mut depth = outer;
        while depth > 0
            && path[depth - 1].node.kind().ends_with("declarations")
            && path[depth - 1].node.start_byte() == anchor.start_byte()
        {
            depth -= 1;
            anchor = path[depth].node;
            before = run_before(depth);
            if !before.is_empty() {
                break;
            }
        }
    }
    // For the same reason as Ruby's, the comments right above a definition may be the last
    // nodes of the body before it rather than its siblings.
    let trailing;
    if before.is_empty() {
        let column = outer_node.start_position().column;
        trailing = anchor
            .prev_named_sibling()
            .map(|previous| outdented_tail(previous, column).1)
            .unwrap_or_default();
        before = &trailing;
    }

    let mut start_byte = outer_node.start_byte();
    let mut start_row = outer_node.start_position().row;
    let mut doc_comments = Vec::new();
    let doc = match language {
        Language::Rust => {
            // Outer attributes belong to the item; doc comments may sit above or between them.
            for &node in before.iter().rev() {
                if node.kind() == "attribute_item" {
                    start_byte = node.start_byte();
                    start_row = node.start_position().row;
                } else if is_rust_outer_doc(node_text(source, node)) {
                    doc_comments.push(node);
                } else {
                    break;
                }
            }
            doc_comments.reverse();
            comments_doc(source, &doc_comments)
        }
        Language::Python => docstring(source, def),
        Language::Elixir => {
            // The `@doc` above a function, with its `@spec`, `@impl` and `@deprecated` below it
            // in the range (the doc string is not); `@doc false` hides it. A module's doc is
            // its `@moduledoc`. Without either, the `#` lines right above.
            let mut attribute_doc = None;
            let mut next_row = start_row;
            for &node in before.iter().rev() {
                match elixir_attribute(source, node) {
                    // `@doc since: "1.2"` is metadata, not the doc: the doc is above it.
                    Some(("doc", Some(value))) if value.kind() == "keywords" => {
                        doc_comments.clear();
                        next_row = node.start_position().row;
                    }
                    Some(("doc", value)) => {
                        attribute_doc = Some(
                            value.and_then(|value| elixir_doc_string(node_text(source, value))),
                        );
                        break;
                    }
                    Some(("spec" | "impl" | "deprecated" | "tag" | "dialyzer", _)) => {
                        // Comments between these lie inside the range.
                        doc_comments.clear();
                        start_byte = node.start_byte();
                        start_row = node.start_position().row;
                        next_row = start_row;
                    }
                    Some(_) => break,
                    None => {
                        if last_row(node) + 1 < next_row || !starts_line(lines, node) {
                            break;
                        }
                        doc_comments.push(node);
                        next_row = node.start_position().row;
                    }
                }
            }
            let module = matches!(
                elixir_keyword(source, def),
                "defmodule" | "defprotocol" | "defimpl"
            );
            let attribute_doc = match attribute_doc {
                None if module => elixir_moduledoc(source, def),
                found => found,
            };
            match attribute_doc {
                Some(doc) => {
                    doc_comments.clear();
                    doc
                }
                None => {
                    doc_comments.reverse();
                    comments_doc(source, &doc_comments)
                }
            }
        }
        _ => {
            let mut next_row = start_row;
            for (i, &node) in before.iter().rev().enumerate() {
                // JSDoc written the way express writes it: a `/** */` block, one blank line,
                // then the definition. Only the comment nearest the definition, and never a
                // license banner or a file's own doc.
                let spaced_doc = i == 0
                    && last_row(node) + 2 >= next_row
                    && is_spaced_doc_block(node_text(source, node));
                let adjacent = last_row(node) + 1 >= next_row || spaced_doc;
                // A `#!` shebang says how to run the file, not what a definition does.
                let shebang = node_text(source, node).starts_with("#!");
                // A Swift `// MARK: - Section` line heads a group of declarations, not the next.
                let mark =
                    language == Language::Swift && node_text(source, node).starts_with("// MARK:");
                // Zig: `///` documents the next declaration; `//!` documents the file
                // (header.rs), and a plain `//` comment above a declaration is a note.
                let zig_note = language == Language::Zig && !is_zig_doc(node_text(source, node));
                // Dart: `///` and `/** */` are doc comments (the grammar's
                // `documentation_comment`); a `//` or `/* */` comment is a note.
                let dart_note = language == Language::Dart && node.kind() == "comment";
                // Haskell: a Haddock `-- |` or `{-| -}` comment documents the next
                // declaration; `-- ^` the one before it, and a plain `--` comment is a note.
                let haskell_note =
                    language == Language::Haskell && !is_haddock_before(source, node);
                if !adjacent
                    || !starts_line(lines, node)
                    || shebang
                    || mark
                    || zig_note
                    || dart_note
                    || haskell_note
                {
                    break;
                }
                doc_comments.push(node);
                next_row = node.start_position().row;
            }
            doc_comments.reverse();
            let doc = if language == Language::Haskell {
                join_doc(
                    doc_comments
                        .iter()
                        .flat_map(|&node| haddock_lines(node_text(source, node)))
                        .collect(),
                )
                .map(|doc| haddock_text(&doc))
            } else {
                comments_doc(source, &doc_comments)
            };
            let xml = language == Language::CSharp
                && doc_comments
                    .iter()
                    .any(|&node| node_text(source, node).starts_with("///"));
            // A `/** */` block holds Javadoc's HTML and inline tags (Java, Scala, Kotlin, PHP,
            // JSDoc, Doxygen); C#'s are XML.
            let block = doc_comments
                .iter()
                .any(|&node| is_doc_block(node_text(source, node)));
            if xml {
                doc.and_then(|doc| xml_doc_text(&doc))
            } else if block {
                doc.and_then(|doc| javadoc_text(&doc))
            } else {
                doc
            }
        }
    };

    let (name, syntax_container, promoted) =
        clean_name(language, candidate.kind, node_text(source, candidate.name));
    let container = candidate
        .container
        .map(|node| type_name(&collapse_whitespace(node_text(source, node))))
        .or(syntax_container);
    let kind = if promoted && candidate.kind == SymbolKind::Function {
        SymbolKind::Method
    } else {
        candidate.kind
    };
    // Doc comments between attributes lie inside the range but are not declaration text.
    let skipped: Vec<(usize, usize)> = doc_comments
        .iter()
        .filter(|node| node.start_byte() > start_byte)
        .map(|node| (node.start_byte(), node.end_byte()))
        .collect();
    let body = body_of(language, source, candidate);
    let signature = signature(language, source, start_byte, candidate, body, &skipped);
    let parent = path.len().checked_sub(2).map(|parent| path[parent].node);
    let declaration = declared_without_body(language, source, kind, candidate, parent, body);

    Draft {
        kind,
        name,
        container,
        start_byte,
        end_byte: end_node.end_byte(),
        start_row,
        end_row: last_row(end_node).max(start_row),
        signature,
        doc,
        declaration,
        pattern: candidate.pattern,
    }
}

/// A `/** … */` doc block that still documents the definition below it across one blank line
/// (JSDoc in express's style, which almost all of its doc blocks follow). A license banner, a
/// file's own doc (`@file`, `@module`) above the first definition, or a `/*****` section banner
/// (Jackson's "Life-cycle" separators) does not.
fn is_spaced_doc_block(comment: &str) -> bool {
    is_doc_block(comment) && !is_license(comment) && !is_module_doc(comment)
}

/// A `/** … */` doc block: not the empty `/**/`, nor a `/*****` banner.
fn is_doc_block(comment: &str) -> bool {
    comment.starts_with("/**") && !comment.starts_with("/***") && comment != "/**/"
}

/// `///` and `/** */` document the next item; `//!`, `/*!` document the enclosing one, and
/// `////` or `/***` are ordinary comments by rustdoc's rules.
fn is_rust_outer_doc(comment: &str) -> bool {
    (comment.starts_with("///") && !comment.starts_with("////")) || is_doc_block(comment)
}

/// A Haddock comment that documents the declaration after it: `-- |` or `{-|` (the grammar's
/// `haddock` nodes also hold `-- ^`, which documents the one before).
fn is_haddock_before(source: &str, node: Node<'_>) -> bool {
    let text = node_text(source, node);
    let marker = text
        .strip_prefix("{-")
        .or_else(|| text.strip_prefix("--"))
        .map(|rest| rest.trim_start_matches('-').trim_start());
    node.kind() == "haddock" && marker.is_some_and(|rest| rest.starts_with('|'))
}

/// A Zig doc comment line: `///`, but not a `////` divider.
fn is_zig_doc(comment: &str) -> bool {
    comment.starts_with("///") && !comment.starts_with("////")
}

/// Whether only whitespace precedes a node on its first line: a comment trailing code on the
/// line above a definition documents that code, not the definition.
fn starts_line(lines: &Lines<'_>, node: Node<'_>) -> bool {
    let start = node.start_position();
    lines
        .line(start.row)
        .get(..start.column)
        // trim_end stops at the first non-blank byte from the end: O(1) even on minified lines.
        .is_some_and(|prefix| prefix.trim_end().is_empty())
}

fn comments_doc(source: &str, comments: &[Node<'_>]) -> Option<String> {
    join_doc(
        comments
            .iter()
            .flat_map(|&node| comment_lines(node_text(source, node)))
            .collect(),
    )
}

/// A Python docstring: a string literal as the first statement of the body.
fn docstring(source: &str, def: Node<'_>) -> Option<String> {
    let body = def.child_by_field_name("body")?;
    let mut cursor = body.walk();
    let first = body
        .named_children(&mut cursor)
        .find(|node| node.kind() != "comment")?;
    if first.kind() != "expression_statement" {
        return None;
    }
    let literal = first.named_child(0)?;
    if literal.kind() != "string" || first.named_child_count() != 1 {
        return None;
    }
    python_docstring(node_text(source, literal))
}

/// The node whose start ends the signature: the body of a function, class, impl, …
fn find_body<'t>(def: Node<'t>, name: Node<'t>) -> Option<Node<'t>> {
    if let Some(body) = def.child_by_field_name("body") {
        return Some(body);
    }
    if def.kind() == "property_declaration" {
        // C#: `{ get; set; }` or `=> value` follows the name.
        return def
            .child_by_field_name("accessors")
            .or_else(|| def.child_by_field_name("value"));
    }
    let mut inner = match def.kind() {
        // `const f = (…) => {…}`: the function is the value of the declarator that holds the
        // name (there may be several: `const a = 1, f = () => {…}`).
        "lexical_declaration" | "variable_declaration" => {
            let mut cursor = def.walk();
            let declarator = def.named_children(&mut cursor).find(|node| {
                node.kind() == "variable_declarator"
                    && node.start_byte() <= name.start_byte()
                    && name.end_byte() <= node.end_byte()
            })?;
            declarator.child_by_field_name("value")?
        }
        "field_definition" | "public_field_definition" => def.child_by_field_name("value")?,
        "expression_statement" => def.named_child(0)?.child_by_field_name("right")?,
        "type_definition" => def.child_by_field_name("type")?,
        _ => return None,
    };
    // A chained assignment (`a.x = a.y = function () {…}`): the function is the last right side.
    while inner.kind() == "assignment_expression" {
        inner = inner.child_by_field_name("right")?;
    }
    inner.child_by_field_name("body")
}

/// Where a Kotlin declaration's body starts: the body of a class, object or function (`{ … }`
/// or `= expression`), a property's first accessor, a secondary constructor's block. The
/// grammar gives these no field names.
fn kotlin_body(def: Node<'_>) -> Option<Node<'_>> {
    let mut cursor = def.walk();
    def.named_children(&mut cursor).find(|child| {
        matches!(
            child.kind(),
            "class_body" | "enum_class_body" | "function_body" | "block" | "getter" | "setter"
        )
    })
}

/// Where a Scala definition's body starts: the body of a class, object, trait or `def`
/// (after its `=`), or the value of a `val`.
fn scala_body(def: Node<'_>) -> Option<Node<'_>> {
    def.child_by_field_name("body")
        .or_else(|| def.child_by_field_name("value"))
}

/// Splits the end of a node whose first line starts at `column`: the comments that end it, at
/// any depth, without being indented deeper than `column` (in source order: they belong to
/// what follows), and the last node before them, which ends what is left (a comment indented
/// deeper is kept, as the body's own).
fn outdented_tail(node: Node<'_>, column: usize) -> (Node<'_>, Vec<Node<'_>>) {
    let mut levels = Vec::new();
    let mut node = node;
    loop {
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
        let kept = children
            .iter()
            .rposition(|child| !is_comment(*child) || child.start_position().column > column);
        levels.push(children[kept.map_or(0, |last| last + 1)..].to_vec());
        match kept.map(|last| children[last]) {
            Some(child) if !is_comment(child) => node = child,
            Some(comment) => {
                node = comment;
                break;
            }
            None => break,
        }
    }
    // A deeper level's comments come first in the source.
    (node, levels.into_iter().rev().flatten().collect())
}

/// Where a Swift declaration's body starts: the body of a type or function, or the `{ … }` of a
/// computed property or subscript.
fn swift_body(def: Node<'_>) -> Option<Node<'_>> {
    if let Some(body) = def
        .child_by_field_name("body")
        .or_else(|| def.child_by_field_name("computed_value"))
    {
        return Some(body);
    }
    let mut cursor = def.walk();
    def.named_children(&mut cursor)
        .find(|child| child.kind() == "computed_property")
}

/// Where an Elixir definition's body starts: its `do … end` block, or the `do:` keyword of a
/// one-line `def f(x), do: x`.
fn elixir_body<'t>(source: &str, def: Node<'t>) -> Option<Node<'t>> {
    let mut cursor = def.walk();
    for child in def.named_children(&mut cursor) {
        if child.kind() == "do_block" {
            return Some(child);
        }
        if child.kind() == "arguments" {
            let mut inner = child.walk();
            let keywords = child
                .named_children(&mut inner)
                .find(|node| node.kind() == "keywords");
            let starts_with_do = keywords
                .and_then(|keywords| keywords.named_child(0))
                .and_then(|pair| pair.child_by_field_name("key"))
                .is_some_and(|key| node_text(source, key).starts_with("do:"));
            if starts_with_do {
                return keywords;
            }
        }
    }
    None
}

/// Where a Haskell declaration's body starts: an equation's first `= …` or guard, a class's or
/// instance's declarations after `where`. A type signature is all declaration.
fn haskell_body(def: Node<'_>) -> Option<Node<'_>> {
    match def.kind() {
        "function" | "bind" => def.child_by_field_name("match"),
        "class" | "instance" => def.child_by_field_name("declarations"),
        _ => None,
    }
}

/// The parameter list of a Lua function, where its signature ends (a body may be empty, or on
/// the same line): `function M.f(a)`, `local f = function(a)`, `f = function(a)` in a table.
fn lua_parameters(def: Node<'_>) -> Option<Node<'_>> {
    let function = match def.kind() {
        "function_declaration" => def,
        "variable_declaration" => lua_function_value(def.named_child(0)?)?,
        "assignment_statement" => lua_function_value(def)?,
        "field" => lua_function(def.child_by_field_name("value")?)?,
        _ => return None,
    };
    function.child_by_field_name("parameters")
}

/// The function a value is: itself, or the fallback of a polyfill (`f or function(…) … end`).
fn lua_function(value: Node<'_>) -> Option<Node<'_>> {
    match value.kind() {
        "function_definition" => Some(value),
        "binary_expression" => value
            .child_by_field_name("right")
            .filter(|right| right.kind() == "function_definition"),
        _ => None,
    }
}

/// The function stored by a Lua assignment: the first value of its expression list.
fn lua_function_value(assignment: Node<'_>) -> Option<Node<'_>> {
    let mut cursor = assignment.walk();
    let values = assignment
        .named_children(&mut cursor)
        .find(|node| node.kind() == "expression_list")?;
    lua_function(values.named_child(0)?)
}

/// The node a definition's body starts with, as each language's grammar has it.
fn body_of<'t>(language: Language, source: &str, candidate: &Candidate<'t>) -> Option<Node<'t>> {
    let def = candidate.def;
    match language {
        Language::Kotlin => kotlin_body(def),
        Language::Swift => swift_body(def),
        Language::Elixir => elixir_body(source, def),
        Language::Scala => scala_body(def),
        Language::Haskell => haskell_body(def),
        _ => find_body(def, candidate.name),
    }
}

/// Whether a function or method is declared without a body ([`Symbol::declaration`]): its
/// `body` ([`body_of`]) is missing, in the languages that have such declarations; in Python and
/// Ruby, whose methods always have one, it only raises `NotImplementedError`. JavaScript, Lua,
/// Bash, Elixir and Zig functions always have a body, and C's and C++'s prototypes, pure
/// virtual and deleted members are not symbols (the grammar queries take definitions only). A
/// Haskell class method is declared by its type signature alone when the class (`parent`) gives
/// no default equation.
fn declared_without_body(
    language: Language,
    source: &str,
    kind: SymbolKind,
    candidate: &Candidate<'_>,
    parent: Option<Node<'_>>,
    body: Option<Node<'_>>,
) -> bool {
    if !matches!(kind, SymbolKind::Function | SymbolKind::Method) {
        return false;
    }
    let def = candidate.def;
    match language {
        Language::Haskell => {
            candidate.end.is_none()
                && parent.is_some_and(|class| haskell_method_without_default(source, class, def))
        }
        Language::Python | Language::Ruby => only_raises_not_implemented(language, source, def),
        Language::Java
        | Language::CSharp
        | Language::Php
        | Language::TypeScript
        | Language::Tsx
        | Language::Rust
        | Language::Dart
        | Language::Go
        | Language::Kotlin
        | Language::Swift
        | Language::Scala => body.is_none(),
        _ => false,
    }
}

/// A Haskell class method's type signature for which the class gives no default equation: each
/// instance defines it.
/// `class` is the declaration's parent node.
fn haskell_method_without_default(source: &str, class: Node<'_>, def: Node<'_>) -> bool {
    if class.kind() != "class_declarations" || def.kind() != "signature" {
        return false;
    }
    // `a, b :: t` declares both; each may have its default.
    let mut cursor = def.walk();
    let declared: Vec<&str> = match def.child_by_field_name("names") {
        Some(names) => names
            .named_children(&mut cursor)
            .map(|name| haskell_name(node_text(source, name)))
            .collect(),
        None => def
            .child_by_field_name("name")
            .map(|name| haskell_name(node_text(source, name)))
            .into_iter()
            .collect(),
    };
    let mut cursor = class.walk();
    let defaults: Vec<&str> = class
        .named_children(&mut cursor)
        .filter(|member| matches!(member.kind(), "function" | "bind"))
        .filter_map(|member| {
            member
                .child_by_field_name("name")
                .or_else(|| {
                    member
                        .named_child(0)
                        .filter(|infix| infix.kind() == "infix")
                        .and_then(|infix| infix.child_by_field_name("operator"))
                })
                .map(|name| haskell_name(node_text(source, name)))
        })
        .collect();
    declared.iter().all(|name| !defaults.contains(name))
}

/// A Python or Ruby method left for subclasses to implement: its body (after a docstring)
/// only raises `NotImplementedError`, or it is a Python `@abstractmethod`.
fn only_raises_not_implemented(language: Language, source: &str, def: Node<'_>) -> bool {
    if language == Language::Python
        && let Some(parent) = def.parent().filter(|p| p.kind() == "decorated_definition")
    {
        let mut cursor = parent.walk();
        let abstract_method = parent
            .named_children(&mut cursor)
            .filter(|child| child.kind() == "decorator")
            .any(|decorator| node_text(source, decorator).contains("abstractmethod"));
        if abstract_method {
            return true;
        }
    }
    let Some(body) = def.child_by_field_name("body") else {
        return false;
    };
    let mut cursor = body.walk();
    let mut statements: Vec<Node<'_>> = body
        .named_children(&mut cursor)
        .filter(|node| !node.kind().contains("comment"))
        .collect();
    let docstring = statements.first().is_some_and(|first| {
        language == Language::Python
            && first.kind() == "expression_statement"
            && first.named_child_count() == 1
            && first
                .named_child(0)
                .is_some_and(|value| value.kind() == "string")
    });
    if docstring {
        statements.remove(0);
    }
    match statements.as_slice() {
        [only] => {
            let text = node_text(source, *only);
            text.starts_with("raise") && text.contains("NotImplementedError")
        }
        _ => false,
    }
}

/// The declaration text from the symbol's start to its body (or the end of the definition's
/// first line when it has none), whitespace collapsed.
fn signature(
    language: Language,
    source: &str,
    start_byte: usize,
    candidate: &Candidate<'_>,
    body: Option<Node<'_>>,
    skipped: &[(usize, usize)],
) -> String {
    let def = candidate.def;
    let lua_end = match language {
        Language::Lua => lua_parameters(def).map(|parameters| parameters.end_byte()),
        _ => None,
    };
    let end_byte = match (lua_end, body) {
        (Some(end), _) => end,
        (None, Some(body)) if body.start_byte() > def.start_byte() => body.start_byte(),
        // A Kotlin, Swift or Scala declaration without a body (`data class P(val x: Int)`, an
        // abstract `fun` or `def`, a protocol requirement) is all declaration, and its
        // annotations or attributes may stand on lines of their own.
        _ if matches!(
            language,
            Language::Kotlin | Language::Swift | Language::Scala
        ) =>
        {
            def.end_byte()
        }
        // A Haskell type signature (on its own, or the one in a `foreign import`) is all
        // declaration, often over several lines.
        _ if language == Language::Haskell
            && matches!(def.kind(), "signature" | "foreign_import") =>
        {
            def.end_byte()
        }
        _ => {
            let text = node_text(source, def);
            def.start_byte() + text.find('\n').unwrap_or(text.len())
        }
    };
    // Comments inside the declaration (`def f():  # note`) are not part of the signature.
    let mut skipped = skipped.to_vec();
    let mut cursor = def.walk();
    skipped.extend(
        def.children(&mut cursor)
            .filter(|child| is_comment(*child))
            .map(|child| (child.start_byte(), child.end_byte())),
    );
    if language == Language::Haskell {
        // The `-- ^` Haddock of each argument inside a type signature.
        nested_comments(def, end_byte, &mut skipped);
    }
    skipped.sort_unstable();
    // Only the start survives truncation; bound the work on absurd declarations.
    let mut end_byte = end_byte.min(start_byte.saturating_add(SIGNATURE_CHARS * 16));
    while !source.is_char_boundary(end_byte) {
        end_byte -= 1;
    }
    let mut text = String::new();
    let mut from = start_byte;
    for &(skip_start, skip_end) in &skipped {
        if skip_start >= from && skip_start < end_byte {
            text.push_str(source.get(from..skip_start).unwrap_or(""));
            text.push(' ');
            from = skip_end;
        }
    }
    text.push_str(source.get(from..end_byte).unwrap_or(""));

    let collapsed = collapse_whitespace(&text);
    let mut signature = collapsed.as_str();
    // Body openers and statement terminators are punctuation, not declaration.
    signature = signature
        .strip_suffix(['{', ';'])
        .unwrap_or(signature)
        .trim_end();
    if language == Language::Elixir {
        // `def f(x), do: …`: the comma leads to the body.
        signature = signature.strip_suffix(',').unwrap_or(signature).trim_end();
    }
    if language == Language::Python {
        signature = signature.strip_suffix(':').unwrap_or(signature).trim_end();
    }
    if language == Language::Haskell {
        // `class Chunk c where`, `f x =`: the keyword and the `=` lead to the body.
        for opener in [" where", " ="] {
            signature = signature.strip_suffix(opener).unwrap_or(signature);
        }
    }
    if language == Language::Scala {
        // `def f(x: Int): Int =` and Scala 3's `class C:` lead to the body.
        signature = signature
            .strip_suffix(['=', ':'])
            .unwrap_or(signature)
            .trim_end();
    }
    truncate_chars(signature, SIGNATURE_CHARS).to_string()
}

/// Adds the byte ranges of the comments inside `node` (below its children) that start before
/// `end_byte`.
fn nested_comments(node: Node<'_>, end_byte: usize, out: &mut Vec<(usize, usize)>) {
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        if child.start_byte() >= end_byte {
            break;
        }
        if is_comment(child) {
            out.push((child.start_byte(), child.end_byte()));
        } else if child.child_count() > 0 {
            nested_comments(child, end_byte, out);
        }
    }
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits at `::` outside of template arguments: `a::Foo<b::C>::bar` → `a`, `Foo<b::C>`, `bar`.
fn split_qualified(name: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' | b'(' | b'[' => depth += 1,
            b'>' | b')' | b']' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => {
                parts.push(&name[start..i]);
                start = i + 2;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(&name[start..]);
    parts
}

/// A type as a container name: `&mut a::Foo<T>` → `Foo`, `*List[T]` → `List`.
fn type_name(text: &str) -> String {
    let mut text = text.trim();
    loop {
        let mut stripped = text.trim_start_matches(['&', '*']);
        if stripped.starts_with('\'') {
            // A lifetime: `&'a Foo`.
            stripped = stripped
                .split_once(char::is_whitespace)
                .map_or("", |(_, rest)| rest);
        }
        let stripped = stripped
            .trim_start_matches("mut ")
            .trim_start_matches("dyn ")
            .trim_start_matches("const ")
            .trim_start();
        if stripped == text {
            break;
        }
        text = stripped;
    }
    let last = split_qualified(text).last().copied().unwrap_or(text);
    strip_type_arguments(last).to_string()
}

/// `Foo<T>` → `Foo`, `List[T]` → `List`; operators (`operator<`) and types that start with a
/// bracket (`[T]`) are left alone.
fn strip_type_arguments(name: &str) -> &str {
    if name.starts_with("operator") {
        return name;
    }
    match name.find(['<', '[']) {
        Some(cut) if cut > 0 => name[..cut].trim_end(),
        _ => name,
    }
}

/// The display name of a symbol, plus a container spelled out in the name itself
/// (`Foo::bar` in C++) and whether that makes a function a method.
fn clean_name(language: Language, kind: SymbolKind, raw: &str) -> (String, Option<String>, bool) {
    let name = collapse_whitespace(raw);
    match (language, kind) {
        // `defmodule Plug.Conn.Adapter`: `Adapter` in `Plug.Conn`, as `Plug.Conn.Adapter` is
        // queried. An ExUnit test is named by its string.
        (Language::Elixir, _) => {
            if name.starts_with('"') {
                return (name.trim_matches('"').to_string(), None, false);
            }
            match name.rsplit_once('.') {
                Some((scope, last)) if !scope.is_empty() && !last.is_empty() => {
                    (last.to_string(), Some(scope.to_string()), false)
                }
                _ => (name, None, false),
            }
        }
        // `instance Monad (Parser i)` is `Parser`'s; an operator is named without its parentheses.
        (Language::Haskell, SymbolKind::Impl) => (haskell_type_head(&name), None, false),
        (Language::Haskell, _) => (haskell_name(&name).to_string(), None, false),
        (_, SymbolKind::Impl) => (type_name(&name), None, false),
        (Language::TypeScript | Language::Tsx, SymbolKind::Module) => {
            (name.trim_matches(['"', '\'', '`']).to_string(), None, false)
        }
        // A bats test is named by its string.
        (Language::Bash, _) => (name.trim_matches(['"', '\'']).to_string(), None, false),
        // Kotlin and Swift names may be quoted in backticks, Kotlin test names especially:
        // ``fun `deposits money`()``, ``case `default` ``.
        (Language::Kotlin | Language::Swift, _) => {
            (name.trim_matches('`').to_string(), None, false)
        }
        (Language::Cpp, _) => {
            let parts = split_qualified(&name);
            match parts.as_slice() {
                [.., scope, last] if !scope.is_empty() => {
                    let container = strip_type_arguments(scope).to_string();
                    (last.to_string(), Some(container), true)
                }
                [.., last] => (last.to_string(), None, false),
                [] => (name.clone(), None, false),
            }
        }
        _ => (name, None, false),
    }
}

/// Deduplicates drafts, nests them by range, and turns them into symbols. A definition inside
/// a function is left out: its text is already part of the function, and local helpers are
/// not what people search for by name.
fn assemble(language: Language, mut drafts: Vec<Draft>, lines: &Lines<'_>) -> Vec<Symbol> {
    drafts.sort_by_key(|d| (d.start_byte, Reverse(d.end_byte), d.pattern));
    drafts.dedup_by_key(|d| (d.start_byte, d.end_byte));

    struct Open {
        start: usize,
        end: usize,
        kind: SymbolKind,
        name: String,
        kept: bool,
        /// The index of its symbol in `symbols`, if kept.
        index: Option<usize>,
    }
    let mut open: Vec<Open> = Vec::new();
    let mut symbols = Vec::with_capacity(drafts.len());
    // Per symbol: the index of the symbol it is nested in.
    let mut parents: Vec<Option<usize>> = Vec::with_capacity(drafts.len());
    for draft in drafts {
        while open.last().is_some_and(|parent| {
            !(parent.start <= draft.start_byte && draft.end_byte <= parent.end)
        }) {
            open.pop();
        }
        let parent = open.last();
        let kept = parent.is_none_or(|parent| parent.kept && parent.kind.is_container());
        let mut kind = draft.kind;
        if kept {
            if kind == SymbolKind::Function
                && parent.is_some_and(|parent| parent.kind != SymbolKind::Module)
            {
                kind = SymbolKind::Method;
            }
            let container = draft
                .container
                .or_else(|| parent.map(|parent| parent.name.clone()));
            parents.push(parent.and_then(|parent| parent.index));
            symbols.push(Symbol {
                name: draft.name.clone(),
                kind,
                container,
                start_line: row_to_line(draft.start_row),
                end_line: row_to_line(draft.end_row),
                signature: draft.signature,
                doc: draft.doc,
                text: lines.text(draft.start_row, draft.end_row).to_string(),
                declaration: draft.declaration,
            });
        }
        open.push(Open {
            start: draft.start_byte,
            end: draft.end_byte,
            kind,
            name: draft.name,
            kept,
            index: kept.then(|| symbols.len() - 1),
        });
    }
    let wrappers = namespace_wrappers(language, &symbols, &parents, lines);
    let mut symbols: Vec<Symbol> = symbols
        .into_iter()
        .zip(wrappers)
        .filter_map(|(symbol, wrapper)| (!wrapper).then_some(symbol))
        .collect();
    symbols.sort_by_key(|s| (s.start_line, Reverse(s.end_line)));
    symbols
}

/// The modules and namespaces that only wrap other types: `module Liquid` around the one class
/// of each of Liquid's files, Ruby's `class Thor` reopened around `module Actions`, `namespace
/// Foo { class Bar … }` in C#, C++ and PHP. Their chunk would repeat the types they hold, line
/// for line, and outrank them (a query about `ForloopDrop` found `module Liquid` first); they
/// stay the container of what they hold. A module with functions or code of its own (constants,
/// `extend self`, `using` lines) is a module. Returns whether each of `symbols` is a wrapper;
/// `parents` holds the index of each one's parent.
fn namespace_wrappers(
    language: Language,
    symbols: &[Symbol],
    parents: &[Option<usize>],
    lines: &Lines<'_>,
) -> Vec<bool> {
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, parent) in parents.iter().enumerate() {
        if let Some(parent) = parent {
            children.entry(*parent).or_default().push(i);
        }
    }
    let mut wrappers = vec![false; symbols.len()];
    for (i, symbol) in symbols.iter().enumerate() {
        if !(symbol.kind == SymbolKind::Module || is_ruby_class_reopening(language, symbol)) {
            continue;
        }
        let Some(held) = children.get(&i) else {
            continue;
        };
        // Elixir's `defstruct`/`defexception` is a struct named after its module: the module
        // is that struct's definition, not a wrapper.
        if !held
            .iter()
            .all(|&c| symbols[c].kind.is_container() && symbols[c].name != symbol.name)
        {
            continue;
        }
        // Lines are 1-based (a line's row is `line - 1`); the module's own first and last
        // lines are its header and its end.
        let covered = |line: u32| {
            held.iter()
                .any(|&c| symbols[c].start_line <= line && line <= symbols[c].end_line)
        };
        let own_code = (symbol.start_line + 1..symbol.end_line)
            .filter(|&line| !covered(line))
            .any(|line| !is_punctuation_or_comment(lines.line(line as usize - 1)));
        wrappers[i] = !own_code;
    }
    wrappers
}

/// A Ruby class opened by its name alone, `class Thor` in each of Thor's files around `module
/// Actions`: Ruby's way to add to a namespace that is a class. A superclass makes it a
/// definition. Elsewhere a class that only holds types (Java's, Python's) is the one place it
/// is defined, and stays a symbol.
fn is_ruby_class_reopening(language: Language, symbol: &Symbol) -> bool {
    language == Language::Ruby
        && symbol.kind == SymbolKind::Class
        && symbol
            .signature
            .trim()
            .strip_prefix("class ")
            .is_some_and(|name| name.trim() == symbol.name)
}

/// A line that holds no code of its own: blank, a comment line of any of the languages, or
/// only braces, `end` or semicolons.
fn is_punctuation_or_comment(line: &str) -> bool {
    let trimmed = line.trim();
    const COMMENTS: [&str; 6] = ["#", "//", "/*", "*", "--", "=begin"];
    trimmed.is_empty()
        || COMMENTS.iter().any(|c| trimmed.starts_with(c))
        || trimmed == "end"
        || trimmed == "=end"
        || trimmed.chars().all(|c| matches!(c, '{' | '}' | ';' | ' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_compiles() {
        for language in Language::ALL.into_iter().filter(|l| l.has_grammar()) {
            if let Err(error) = Grammar::new(language) {
                panic!("{language}: {error}");
            }
        }
        assert!(matches!(
            Grammar::new(Language::Markdown),
            Err(SymbolError::NoGrammar(Language::Markdown))
        ));
    }

    #[cfg(feature = "lang-rust")]
    #[test]
    fn broken_queries_are_errors() {
        let rust = super::super::grammars::RUST.language();
        for (query, message) in [
            ("(function_item name: (identifier) @name", "syntax"),
            ("(no_such_node) @definition.function", "node type"),
            (
                "(function_item name: (identifier) @name) @definition.gadget",
                "unknown kind",
            ),
            (
                "(function_item name: (identifier) @label) @definition.function",
                "no @name",
            ),
            (
                "(function_item name: (identifier) @name) @whatever",
                "unknown capture",
            ),
        ] {
            match Grammar::with_query(Language::Rust, &rust, query) {
                Err(SymbolError::Query { language, .. }) => assert_eq!(language, Language::Rust),
                Err(other) => panic!("{message}: wrong error {other}"),
                Ok(_) => panic!("{message}: accepted"),
            }
        }
    }

    #[test]
    fn qualified_names() {
        assert_eq!(
            split_qualified("a::Foo<b::C>::bar"),
            vec!["a", "Foo<b::C>", "bar"]
        );
        assert_eq!(split_qualified("plain"), vec!["plain"]);
        assert_eq!(type_name("&'a mut crate::x::Foo<T>"), "Foo");
        assert_eq!(type_name("*List[T]"), "List");
        assert_eq!(type_name("[T]"), "[T]");
        assert_eq!(
            clean_name(Language::Cpp, SymbolKind::Function, "Foo<T>::operator<"),
            ("operator<".to_string(), Some("Foo".to_string()), true)
        );
        assert_eq!(
            clean_name(Language::Cpp, SymbolKind::Function, "::global"),
            ("global".to_string(), None, false)
        );
        assert_eq!(
            clean_name(Language::TypeScript, SymbolKind::Module, "\"express\""),
            ("express".to_string(), None, false)
        );
    }
}
