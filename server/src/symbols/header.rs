//! File headers: what a code file says about itself before its first definition.
//!
//! A grammar's query finds definitions; the text around them is not part of any symbol. Most of
//! it is rightly left out (imports, top-level statements: cutting it into windows was measured
//! to crowd out the functions that answer precise questions), but two kinds of header text are
//! often the only place a question can be answered:
//!
//! - **the file's own documentation**: Rust `//!` docs, a Python module docstring, a Go package
//!   comment, the leading `/** … */` of a JavaScript/TypeScript module ("WebSocket client for
//!   asyncio."), a Dart library's doc comment;
//! - **re-exports**: `pub use` / `pub mod` in Rust, `from … import` in a Python `__init__.py`,
//!   `export … from` in JavaScript/TypeScript, `export` and `part` in Dart: where a name defined
//!   elsewhere becomes part of this module's interface (axum's `extract/mod.rs` is where
//!   `FromRequest` is offered).
//!
//! [`file_header`] turns that text, taken from the lines before the first definition, into one
//! module symbol named after the module. License banners are not documentation and are skipped.
//! It reads the file's line table ([`Lines`]) that the symbol extraction already built, so the
//! file is not split into lines a second time.

use super::doc::{comment_lines, haddock_lines, haddock_text, python_docstring};
use super::text::{Lines, row_to_line};
use super::{Language, Symbol, SymbolKind};

/// A header with fewer doc words and no re-export is not worth a chunk of its own.
const MIN_DOC_WORDS: usize = 3;

/// The module symbol for the header of a code file at `path` (relative, `/`-separated), whose
/// line table is `lines`, taken from the lines before `first_definition` (0-based row of the
/// file's first symbol). `None` when the language has no header convention handled here or the
/// header says nothing.
pub(crate) fn file_header(
    language: Language,
    path: &str,
    lines: &Lines<'_>,
    first_definition: usize,
) -> Option<Symbol> {
    let end = first_definition.min(lines.len());
    let header = match language {
        Language::Rust => rust_header(lines, end),
        Language::Python => python_header(lines, end, is_package_init(path)),
        Language::Go => go_header(lines, end),
        Language::JavaScript | Language::TypeScript | Language::Tsx => {
            ecmascript_header(lines, end)
        }
        Language::Zig => zig_header(lines, end),
        Language::Lua => lua_header(lines, end),
        Language::Dart => dart_header(lines, end),
        Language::Haskell => haskell_header(lines, end),
        _ => return None,
    };
    header.into_symbol(path)
}

/// What a header was found to hold, with the rows it spans.
#[derive(Default)]
struct Header {
    doc: Vec<String>,
    exports: Vec<String>,
    first_row: Option<usize>,
    last_row: usize,
}

impl Header {
    fn touch(&mut self, first: usize, last: usize) {
        self.first_row = Some(self.first_row.map_or(first, |f| f.min(first)));
        self.last_row = self.last_row.max(last);
    }

    /// Doc text (markers already stripped) held by rows `first..=last`.
    fn add_doc(&mut self, first: usize, last: usize, doc: Vec<String>) {
        self.doc.extend(doc);
        self.touch(first, last);
    }

    /// The comment on rows `first..=last` (one comment per row for line comments, one block
    /// otherwise), its markers stripped as for any symbol's doc, if `documents_module` accepts
    /// its text.
    fn add_comment(
        &mut self,
        lines: &Lines<'_>,
        (first, last): (usize, usize),
        line_comments: bool,
        documents_module: impl Fn(&str) -> bool,
    ) {
        let doc: Vec<String> = if line_comments {
            (first..=last)
                .flat_map(|row| comment_lines(lines.line(row)))
                .collect()
        } else {
            comment_lines(lines.text(first, last))
        };
        if documents_module(&doc.join("\n")) {
            self.add_doc(first, last, doc);
        }
    }

    fn add_export(&mut self, first: usize, last: usize, text: &str) {
        self.exports.push(text.to_string());
        self.touch(first, last);
    }

    /// Adds the statement that starts at `row` and ends at the first row ending in `;` (a
    /// Rust `pub use`, a Zig `pub const … = @import(…)`), its lines joined; returns the row
    /// after it.
    fn add_export_statement(&mut self, lines: &Lines<'_>, row: usize, end: usize) -> usize {
        let last = statement_rows(lines, row, end, |l| l.trim_end().ends_with(';'));
        self.add_export(row, last, &joined(lines, row, last));
        last + 1
    }

    fn into_symbol(self, path: &str) -> Option<Symbol> {
        let first_row = self.first_row?;
        let doc = self.doc.join("\n").trim().to_string();
        let doc_words = doc.split_whitespace().count();
        if self.exports.is_empty() && doc_words < MIN_DOC_WORDS {
            return None;
        }
        let text = self.exports.join("\n");
        let signature = doc
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .or_else(|| text.lines().next())
            .unwrap_or_default()
            .to_string();
        Some(Symbol {
            name: module_name(path),
            kind: SymbolKind::Module,
            container: None,
            start_line: row_to_line(first_row),
            end_line: row_to_line(self.last_row),
            signature,
            doc: (!doc.is_empty()).then_some(doc),
            text,
            declaration: false,
        })
    }
}

/// The module a file is: its stem, or for the files that stand for their directory (`mod.rs`,
/// `lib.rs`, `__init__.py`, `index.ts`, …) the directory's name (above a `src/`).
fn module_name(path: &str) -> String {
    let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let file = parts.pop().unwrap_or(path);
    let stem = file.split('.').next().unwrap_or(file);
    let stands_for_dir =
        matches!(stem, "mod" | "lib" | "main" | "__init__" | "index" | "doc") || file == "init.lua";
    if stands_for_dir {
        while let Some(dir) = parts.pop() {
            if dir != "src" {
                return dir.to_string();
            }
        }
    }
    if stem.is_empty() {
        file.to_string()
    } else {
        stem.to_string()
    }
}

fn is_package_init(path: &str) -> bool {
    path.rsplit('/').next() == Some("__init__.py")
}

/// Whether a comment is a license or copyright banner rather than documentation: one of its
/// first two lines says so (a module doc that mentions its license further down is still a doc).
pub(super) fn is_license(text: &str) -> bool {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(2)
        .any(|line| {
            let lower = line.to_ascii_lowercase();
            ["copyright", "license", "spdx-", "all rights reserved"]
                .iter()
                .any(|m| lower.contains(m))
        })
}

/// JSDoc/TSDoc tags that make a comment the module's own documentation. An untagged comment at
/// the top of a JavaScript file documents whatever follows (often "Module dependencies." above
/// the `require`s), so only tagged ones count.
const ECMASCRIPT_FILE_TAGS: [&str; 5] = [
    "@file",
    "@fileoverview",
    "@module",
    "@overview",
    "@packagedocumentation",
];

pub(super) fn is_module_doc(comment: &str) -> bool {
    let lower = comment.to_ascii_lowercase();
    ECMASCRIPT_FILE_TAGS.iter().any(|tag| lower.contains(tag)) && !is_license(comment)
}

/// The rows `first..=last` of a statement that starts at `first` and ends at the first row
/// satisfying `ends` (at most 200 rows, and never past `end`).
fn statement_rows(
    lines: &Lines<'_>,
    first: usize,
    end: usize,
    ends: impl Fn(&str) -> bool,
) -> usize {
    let limit = end.min(first + 200);
    (first..limit)
        .find(|&row| ends(lines.line(row)))
        .unwrap_or(first)
}

/// The last row of the run of `marker` line comments that starts at `row` (before `end`).
fn comment_run_end(lines: &Lines<'_>, row: usize, end: usize, marker: &str) -> usize {
    let mut last = row;
    while last + 1 < end && lines.line(last + 1).trim_start().starts_with(marker) {
        last += 1;
    }
    last
}

/// The text of rows `first..=last`, each trimmed, joined by single spaces where a statement was
/// broken over lines (`pub use a::{\n b,\n c };` reads `pub use a::{ b, c };`).
fn joined(lines: &Lines<'_>, first: usize, last: usize) -> String {
    (first..=last)
        .map(|row| lines.line(row).trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn rust_header(lines: &Lines<'_>, end: usize) -> Header {
    let mut header = Header::default();
    let mut row = 0;
    while row < end {
        let line = lines.line(row);
        let trimmed = line.trim_start();
        if trimmed.starts_with("//!") {
            header.add_comment(lines, (row, row), true, |_| true);
            row += 1;
            continue;
        }
        if trimmed.starts_with("/*!") {
            // A block inner doc: up to its `*/`.
            let last = statement_rows(lines, row, end, |l| l.contains("*/"));
            header.add_comment(lines, (row, last), false, |_| true);
            row = last + 1;
            continue;
        }
        // `#![doc = include_str!("../docs/extract.md")]`: the module's docs are another file,
        // which the ranking links to this header (`lift_doc_includers` in `search/rank.rs`).
        if trimmed.starts_with("#![") && trimmed.contains("include_str!") {
            let last = statement_rows(lines, row, end, |l| l.trim_end().ends_with(']'));
            header.add_export(row, last, &joined(lines, row, last));
            row = last + 1;
            continue;
        }
        // Only top-level items: an indented line belongs to something else.
        let top_level = !line.starts_with([' ', '\t']);
        let item = strip_rust_visibility(trimmed);
        let reexport = top_level
            && trimmed.starts_with("pub")
            && (item.starts_with("use ") || item.starts_with("mod "));
        let private_mod = top_level && trimmed.starts_with("mod ") && trimmed.ends_with(';');
        if reexport || private_mod {
            row = header.add_export_statement(lines, row, end);
            continue;
        }
        row += 1;
    }
    header
}

/// Zig: the file's `//!` doc comments, and the `pub const X = @import("x.zig")…;` lines that
/// make another file's declarations part of this one's interface (`std/json.zig`).
fn zig_header(lines: &Lines<'_>, end: usize) -> Header {
    let mut header = Header::default();
    let mut row = 0;
    while row < end {
        let line = lines.line(row);
        if line.trim_start().starts_with("//!") {
            header.add_comment(lines, (row, row), true, |doc| !is_license(doc));
        } else if line.starts_with("pub const ") && line.contains("@import(") {
            row = header.add_export_statement(lines, row, end);
            continue;
        }
        row += 1;
    }
    header
}

/// Dart: the library's doc comment, the `///` lines (or a `/** */` block) right above its
/// `library` directive (annotations between them allowed), as Effective Dart places it; and the
/// `export '…';` and `part '…';` directives that make other files part of this library's
/// interface (`lib/thrift.dart` is thirty `part` lines). A `part of` directive is the other side
/// of `part` and says nothing about this file.
fn dart_header(lines: &Lines<'_>, end: usize) -> Header {
    let mut header = Header::default();
    // The doc comment waiting for the `library` directive it belongs to.
    let mut pending: Option<(usize, usize, bool)> = None;
    let mut row = 0;
    while row < end {
        let line = lines.line(row);
        let trimmed = line.trim_start();
        if trimmed.starts_with("///") {
            let last = comment_run_end(lines, row, end, "///");
            pending = Some((row, last, true));
            row = last + 1;
            continue;
        }
        if trimmed.starts_with("/**") {
            let last = statement_rows(lines, row, end, |l| l.contains("*/"));
            pending = Some((row, last, false));
            row = last + 1;
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('@') {
            row += 1;
            continue;
        }
        if is_dart_library_directive(trimmed) {
            if let Some((first, last, line_comments)) = pending {
                header.add_comment(lines, (first, last), line_comments, |doc| !is_license(doc));
            }
        } else if !line.starts_with([' ', '\t'])
            && (trimmed.starts_with("export ")
                || trimmed.starts_with("part '")
                || trimmed.starts_with("part \""))
        {
            pending = None;
            row = header.add_export_statement(lines, row, end);
            continue;
        }
        pending = None;
        row += 1;
    }
    header
}

/// Haskell: the Haddock comment above the `module` line (its `Module :`, `Copyright :`, …
/// fields left out, a `Description :` kept as text) and the module's export list, up to its
/// `where`: the names the module offers, with the section headings (`-- * Combinators`) that
/// group them. Pragmas, CPP lines and other comments may come first.
fn haskell_header(lines: &Lines<'_>, end: usize) -> Header {
    let mut header = Header::default();
    // The Haddock comment waiting for the `module` line it documents.
    let mut pending: Option<(usize, usize)> = None;
    let mut row = 0;
    while row < end {
        let trimmed = lines.line(row).trim_start();
        let block = trimmed.starts_with("{-");
        if block || trimmed.starts_with("--") {
            let marker = trimmed
                .trim_start_matches(['{', '-'])
                .trim_start()
                .starts_with('|');
            // A Haddock comment runs to the end of its block or of its `--` lines; a pragma
            // (`{-# LANGUAGE … #-}`), a `-----` banner or a plain comment between it and the
            // `module` line leaves it in place.
            let last = match (block, marker) {
                (true, _) => statement_rows(lines, row, end, |l| l.contains("-}")),
                (false, true) => comment_run_end(lines, row, end, "--"),
                (false, false) => row,
            };
            if marker {
                pending = Some((row, last));
            }
            row = last + 1;
            continue;
        }
        if trimmed.starts_with("module ") || trimmed == "module" {
            if let Some((first, last)) = pending {
                let doc = without_haddock_fields(haddock_lines(lines.text(first, last)))
                    .iter()
                    .map(|line| haddock_text(line))
                    .collect();
                header.add_doc(first, last, doc);
            }
            let last = statement_rows(lines, row, end, |l| {
                l.split_whitespace().any(|word| word == "where")
            });
            if last > row || lines.line(row).contains('(') {
                header.add_export(row, last, lines.text(row, last).trim());
            }
            break;
        }
        row += 1;
    }
    header
}

/// A Haddock module header's fields (`Module : Data.Foo`, `Copyright : …`, `Maintainer : …`)
/// are not documentation, and neither are their continuation lines; a `Description :` field's
/// value is.
fn without_haddock_fields(doc: Vec<String>) -> Vec<String> {
    const FIELDS: [&str; 6] = [
        "module",
        "copyright",
        "license",
        "maintainer",
        "stability",
        "portability",
    ];
    let mut out = Vec::with_capacity(doc.len());
    let mut in_field = false;
    for line in doc {
        let field = line.split_once(':').and_then(|(key, value)| {
            let key = key.trim().to_ascii_lowercase();
            (!key.is_empty() && !key.contains(' ') && !line.starts_with(' '))
                .then_some((key, value))
        });
        match field {
            Some((key, _)) if FIELDS.contains(&key.as_str()) => in_field = true,
            Some((key, value)) if key == "description" => {
                in_field = false;
                out.push(value.trim().to_string());
            }
            _ if in_field && line.starts_with(' ') => {}
            _ => {
                in_field = false;
                out.push(line);
            }
        }
    }
    out
}

/// `library thrift;` or an unnamed `library;`.
fn is_dart_library_directive(trimmed: &str) -> bool {
    trimmed
        .strip_prefix("library")
        .is_some_and(|rest| rest.starts_with([' ', ';', '\t']))
}

/// LDoc tags that make a Lua comment the module's documentation wherever it stands.
const LDOC_MODULE_TAGS: [&str; 4] = ["@module", "@classmod", "@submodule", "@script"];

/// Lua: the module comment of LDoc and LuaLS, the file's first comment (`--- OrderedMap, a map
/// which preserves ordering. … @classmod pl.OrderedMap`, or a `--[[-- … ]]` block). It must open
/// with `---`/`--[[--` or carry a module tag, and a comment that runs into the first definition
/// with no blank line documents that definition instead, unless it is tagged.
fn lua_header(lines: &Lines<'_>, end: usize) -> Header {
    let mut header = Header::default();
    let Some(first) = (0..end).find(|&row| {
        let trimmed = lines.line(row).trim();
        !(trimmed.is_empty() || row == 0 && trimmed.starts_with("#!"))
    }) else {
        return header;
    };
    let opening = lines.line(first).trim_start();
    if !opening.starts_with("--") {
        return header;
    }
    let block = opening.starts_with("--[[") || opening.starts_with("--[=");
    let last = if block {
        statement_rows(lines, first, end, |l| l.contains("]]") || l.contains("]="))
    } else {
        comment_run_end(lines, first, end, "--")
    };
    let ldoc = opening.starts_with("---") || opening.starts_with("--[[--");
    let runs_into_definition = last + 1 >= end;
    header.add_comment(lines, (first, last), !block, |doc| {
        let tagged = LDOC_MODULE_TAGS.iter().any(|tag| doc.contains(tag));
        !is_license(doc) && (tagged || ldoc && !runs_into_definition)
    });
    header
}

/// `pub(crate) use x` → `use x`; `pub use x` → `use x`.
fn strip_rust_visibility(item: &str) -> &str {
    let Some(rest) = item.strip_prefix("pub") else {
        return item;
    };
    let rest = if rest.starts_with('(') {
        rest.find(')').map_or(rest, |i| &rest[i + 1..])
    } else {
        rest
    };
    rest.trim_start()
}

fn python_header(lines: &Lines<'_>, end: usize, package_init: bool) -> Header {
    let mut header = Header::default();
    let mut row = 0;
    let mut seen_code = false;
    while row < end {
        let trimmed = lines.line(row).trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            row += 1;
            continue;
        }
        if !seen_code && let Some((quote, rest)) = docstring_start(trimmed) {
            // The module docstring: the file's first statement, up to its closing quotes.
            let last = if rest.contains(quote) {
                row
            } else {
                statement_rows(lines, row + 1, end, |l| l.contains(quote)).max(row)
            };
            if let Some(doc) = python_docstring(lines.text(row, last))
                && !is_license(&doc)
            {
                header.add_doc(row, last, doc.lines().map(str::to_string).collect());
            }
            seen_code = true;
            row = last + 1;
            continue;
        }
        seen_code = true;
        let top_level = !lines.line(row).starts_with([' ', '\t']);
        let exported = trimmed.starts_with("from ") && trimmed.contains(" import ")
            || trimmed.starts_with("__all__");
        if package_init && top_level && exported {
            let opens = trimmed.matches(['(', '[']).count();
            let closes = trimmed.matches([')', ']']).count();
            let last = if opens > closes {
                statement_rows(lines, row + 1, end, |l| l.contains([')', ']'])).max(row)
            } else {
                row
            };
            header.add_export(row, last, &joined(lines, row, last));
            row = last + 1;
            continue;
        }
        row += 1;
    }
    header
}

/// A docstring's quotes and the text after them, if `line` opens one (with any string prefix).
fn docstring_start(line: &str) -> Option<(&'static str, &str)> {
    let unprefixed = line.trim_start_matches(['r', 'R', 'u', 'U']);
    for quote in ["\"\"\"", "'''"] {
        if let Some(rest) = unprefixed.strip_prefix(quote) {
            return Some((quote, rest));
        }
    }
    None
}

fn go_header(lines: &Lines<'_>, end: usize) -> Header {
    let mut header = Header::default();
    let Some(package_row) = (0..end).find(|&r| lines.line(r).starts_with("package ")) else {
        return header;
    };
    // The package comment: the `//` lines right above the package clause.
    let mut first = package_row;
    while first > 0 {
        let previous = lines.line(first - 1).trim_start();
        if previous.starts_with("//") && !previous.starts_with("//go:") {
            first -= 1;
        } else {
            break;
        }
    }
    if first < package_row {
        header.add_comment(lines, (first, package_row - 1), true, |doc| {
            !is_license(doc)
        });
    }
    header
}

fn ecmascript_header(lines: &Lines<'_>, end: usize) -> Header {
    let mut header = Header::default();
    let mut row = 0;
    let mut seen_code = false;
    while row < end {
        let line = lines.line(row);
        let trimmed = line.trim();
        if !seen_code && trimmed.starts_with("/*") {
            // A block comment before any code: the module's doc unless it is a license.
            let last = statement_rows(lines, row, end, |l| l.contains("*/"));
            header.add_comment(lines, (row, last), false, is_module_doc);
            row = last + 1;
            continue;
        }
        if !seen_code && trimmed.starts_with("//") {
            let last = comment_run_end(lines, row, end, "//");
            header.add_comment(lines, (row, last), true, is_module_doc);
            row = last + 1;
            continue;
        }
        if trimmed.is_empty()
            || trimmed.starts_with("#!")
            || trimmed.trim_end_matches(';') == "'use strict'"
            || trimmed.trim_end_matches(';') == "\"use strict\""
        {
            row += 1;
            continue;
        }
        seen_code = true;
        let top_level = !line.starts_with([' ', '\t']);
        let reexport_form = ["export *", "export {", "export type {", "export type *"]
            .iter()
            .any(|p| trimmed.starts_with(p));
        if top_level && reexport_form {
            let last = statement_rows(lines, row, end, |l| {
                l.contains(" from ") || l.contains('}') || l.trim_start().starts_with("from ")
            });
            let statement = joined(lines, row, last);
            if statement.contains(" from ") || statement.starts_with("export *") {
                header.add_export(row, last, &statement);
                row = last + 1;
                continue;
            }
        }
        row += 1;
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`super::file_header`] of a source, its line table built here.
    fn file_header(
        language: Language,
        path: &str,
        source: &str,
        first_definition: usize,
    ) -> Option<Symbol> {
        super::file_header(language, path, &Lines::new(source), first_definition)
    }

    fn header(language: Language, path: &str, source: &str) -> Option<Symbol> {
        file_header(language, path, source, usize::MAX)
    }

    #[test]
    fn rust_docs_and_reexports_become_a_module_named_after_the_directory() {
        let source = "//! Types and traits for extracting data from requests.\n\
                      //!\n\
                      //! More words here.\n\
                      #![doc = include_str!(\"../docs/extract.md\")]\n\
                      use http::HeaderMap;\n\
                      pub mod path;\n\
                      mod state;\n\
                      #[doc(inline)]\n\
                      pub use axum_core::extract::{\n    FromRequest, FromRequestParts,\n};\n\
                      pub(crate) use self::state::State;\n\
                      fn private() {\n    pub use nothing::Here;\n}\n";
        let symbol = header(Language::Rust, "axum/src/extract/mod.rs", source).unwrap();
        assert_eq!(symbol.name, "extract");
        assert_eq!(symbol.kind, SymbolKind::Module);
        assert_eq!(symbol.start_line, 1);
        assert_eq!(symbol.end_line, 12);
        assert_eq!(
            symbol.signature,
            "Types and traits for extracting data from requests."
        );
        assert!(symbol.doc.as_deref().unwrap().contains("More words here."));
        // The file that holds the module's docs is named, for search to link it.
        assert_eq!(
            symbol.text,
            "#![doc = include_str!(\"../docs/extract.md\")]\npub mod path;\nmod state;\n\
             pub use axum_core::extract::{ FromRequest, FromRequestParts, };\n\
             pub(crate) use self::state::State;"
        );
        assert!(
            !symbol.text.contains("HeaderMap"),
            "private imports are not exports"
        );
        assert!(!symbol.text.contains("Here"), "only top-level items");
    }

    #[test]
    fn a_rust_module_whose_docs_are_another_file_has_a_header() {
        let source =
            "#![doc = include_str!(\"../README.md\")]\n#![deny(missing_docs)]\nfn f() {}\n";
        let symbol = file_header(Language::Rust, "src/lib.rs", source, 2).unwrap();
        assert_eq!(symbol.text, "#![doc = include_str!(\"../README.md\")]");
        assert_eq!((symbol.start_line, symbol.end_line), (1, 1));
        assert_eq!(
            crate::symbols::rust_doc_includes("src/lib.rs", &symbol.text),
            vec!["README.md"]
        );
    }

    #[test]
    fn only_lines_before_the_first_definition_count() {
        let source = "//! Crate docs, three words.\nfn first() {}\npub use late::Name;\n";
        let symbol = file_header(Language::Rust, "src/lib.rs", source, 1).unwrap();
        assert_eq!(symbol.name, "lib");
        assert_eq!((symbol.start_line, symbol.end_line), (1, 1));
        assert!(symbol.text.is_empty());
    }

    #[test]
    fn python_module_docstring_and_package_exports() {
        let source = "# comment\n\"\"\"WebSocket client for asyncio.\n\n    Second line.\n\"\"\"\n\
                      import asyncio\nfrom .client import (\n    ClientSession,\n    request,\n)\n\
                      __all__ = [\"ClientSession\"]\n";
        let module = header(Language::Python, "aiohttp/client_ws.py", source).unwrap();
        assert_eq!(module.name, "client_ws");
        assert_eq!(module.signature, "WebSocket client for asyncio.");
        assert_eq!(
            module.doc.as_deref(),
            Some("WebSocket client for asyncio.\n\nSecond line.")
        );
        assert!(
            module.text.is_empty(),
            "a plain module's imports are not exports"
        );

        let package = header(Language::Python, "aiohttp/__init__.py", source).unwrap();
        assert_eq!(package.name, "aiohttp");
        assert_eq!(
            package.text,
            "from .client import ( ClientSession, request, )\n__all__ = [\"ClientSession\"]"
        );
        assert_eq!((package.start_line, package.end_line), (2, 11));
    }

    #[test]
    fn a_docstring_after_code_is_not_the_module_doc() {
        let source = "import os\n\"\"\"Not the module's docstring at all.\"\"\"\n";
        assert!(header(Language::Python, "a.py", source).is_none());
    }

    #[test]
    fn go_package_comment_but_not_a_license() {
        let source = "// Copyright 2020 The Authors. All rights reserved.\n\n\
                      // Package chi is a small, idiomatic and composable router.\n\
                      //go:build linux\npackage chi\n";
        // `//go:build` interrupts the comment: nothing is directly above `package`.
        assert!(header(Language::Go, "chi.go", source).is_none());
        let source = "// Copyright 2020 The Authors.\n\n\
                      // Package chi is a small, idiomatic and composable router.\npackage chi\n";
        let symbol = header(Language::Go, "chi.go", source).unwrap();
        assert_eq!(symbol.name, "chi");
        assert_eq!(symbol.start_line, 3);
        assert_eq!(
            symbol.signature,
            "Package chi is a small, idiomatic and composable router."
        );
        let license = "// Copyright 2020 The Authors.\n// Use of this source is governed by a license.\npackage chi\n";
        assert!(header(Language::Go, "x.go", license).is_none());
    }

    #[test]
    fn ecmascript_module_doc_and_reexports() {
        let source = "/*!\n * express\n * MIT Licensed\n */\n'use strict';\n\
                      /**\n * @file Module dependencies and the router.\n */\n\
                      export { parse, type Options } from './parse';\nexport * from \"./core\";\n\
                      export {\n  a,\n  b,\n} from './ab';\nexport const local = 1;\n";
        let symbol = header(Language::TypeScript, "src/index.ts", source).unwrap();
        assert_eq!(symbol.name, "index");
        assert_eq!(
            symbol.doc.as_deref(),
            Some("@file Module dependencies and the router.")
        );
        assert_eq!(
            symbol.text,
            "export { parse, type Options } from './parse';\nexport * from \"./core\";\n\
             export { a, b, } from './ab';"
        );
        assert_eq!((symbol.start_line, symbol.end_line), (6, 14));
    }

    #[test]
    fn an_untagged_javascript_comment_documents_what_follows_not_the_module() {
        let source = "'use strict';\n/**\n * Module dependencies.\n * @private\n */\n\n\
                      var accepts = require('accepts');\n";
        assert!(header(Language::JavaScript, "lib/request.js", source).is_none());
    }

    #[test]
    fn rust_block_inner_docs_and_docs_that_mention_a_license() {
        let source = "/*!\nThe globset crate matches many globs at once.\n\n\
                      Dual-licensed under MIT or the UNLICENSE.\n*/\n#![deny(missing_docs)]\n";
        let symbol = header(Language::Rust, "src/lib.rs", source).unwrap();
        assert_eq!(
            symbol.signature,
            "The globset crate matches many globs at once."
        );
        assert!(symbol.doc.as_deref().unwrap().contains("Dual-licensed"));
        assert_eq!((symbol.start_line, symbol.end_line), (1, 5));
        let source = "\"\"\"\nRequests HTTP Library\n~~~~\n\n:copyright: (c) 2017.\n:license: Apache 2.0.\n\"\"\"\n";
        let symbol = header(Language::Python, "requests/__init__.py", source).unwrap();
        assert_eq!(symbol.signature, "Requests HTTP Library");
        assert_eq!(symbol.name, "requests");
    }

    #[test]
    fn lua_module_comment_of_ldoc() {
        let source = "--- OrderedMap, a map which preserves ordering.\n\
                      --\n\
                      -- Derived from `pl.Map`.\n\
                      -- @classmod pl.OrderedMap\n\
                      \n\
                      local Map = require 'pl.Map'\n\
                      local OrderedMap = class(Map)\n\
                      \n\
                      --- construct an OrderedMap.\n\
                      function OrderedMap:_init(t)\n\
                      end\n";
        let symbol = file_header(Language::Lua, "pl/OrderedMap.lua", source, 9).unwrap();
        assert_module(
            &symbol,
            "OrderedMap",
            (1, 4),
            "OrderedMap, a map which preserves ordering.",
        );
        assert!(
            symbol
                .doc
                .as_deref()
                .unwrap()
                .contains("@classmod pl.OrderedMap")
        );
        // A directory's `init.lua` is that directory's module.
        let init = "#!/usr/bin/env lua\n--[[-- Penlight: the batteries. ]]\nlocal M = {}\n";
        let symbol = header(Language::Lua, "lua/pl/init.lua", init).unwrap();
        assert_eq!(symbol.name, "pl");
        assert_eq!(symbol.doc.as_deref(), Some("Penlight: the batteries."));
    }

    /// A header module: its name, line range and signature (the doc's first line).
    fn assert_module(symbol: &Symbol, name: &str, lines: (u32, u32), signature: &str) {
        assert_eq!(symbol.name, name);
        assert_eq!(symbol.kind, SymbolKind::Module);
        assert_eq!((symbol.start_line, symbol.end_line), lines);
        assert_eq!(symbol.signature, signature);
    }

    #[test]
    fn dart_library_doc_exports_and_parts() {
        let source = "// Copyright (c) 2024, the authors. Use of this source code is governed by a BSD license.\n\
                      \n\
                      /// Reading and writing FlexBuffers, a schemaless binary format.\n\
                      ///\n\
                      /// See the guide for its wire format.\n\
                      @Deprecated('use flat_buffers')\n\
                      library flex_buffers;\n\
                      \n\
                      import 'dart:typed_data';\n\
                      export 'src/builder.dart' show Builder;\n\
                      export 'src/reference.dart'\n    show Reference, ValueType;\n\
                      part 'src/types.dart';\n\
                      \n\
                      class Reference {}\n";
        let symbol = file_header(Language::Dart, "lib/flex_buffers.dart", source, 14).unwrap();
        assert_module(
            &symbol,
            "flex_buffers",
            (3, 13),
            "Reading and writing FlexBuffers, a schemaless binary format.",
        );
        assert_eq!(
            symbol.text,
            "export 'src/builder.dart' show Builder;\n\
             export 'src/reference.dart' show Reference, ValueType;\n\
             part 'src/types.dart';"
        );
        // A license above the directive is no doc; parts alone still make a header.
        let thrift = "/// Licensed to the Apache Software Foundation (ASF) under one\n\
                      /// or more contributor license agreements.\n\
                      library thrift;\n\
                      part 'src/t_base.dart';\n\
                      class TBase {}\n";
        let symbol = file_header(Language::Dart, "lib/thrift.dart", thrift, 4).unwrap();
        assert_eq!(symbol.doc, None);
        assert_eq!(symbol.text, "part 'src/t_base.dart';");
        // A doc comment that is not above `library` documents the declaration below it, and a
        // `part of` file has no header.
        let class_doc = "/// A cache that forgets its oldest entry.\nclass Lru {}\n";
        assert!(file_header(Language::Dart, "lru.dart", class_doc, 1).is_none());
        let part_of = "part of 'thrift.dart';\n\nclass TError {}\n";
        assert!(file_header(Language::Dart, "src/t_error.dart", part_of, 2).is_none());
    }

    #[test]
    fn lua_comment_above_the_first_function_is_its_own() {
        // Untagged and touching the first definition: that function's doc, not the file's.
        let source = "--- Adds two numbers together.\nlocal function add(a, b)\nend\n";
        assert!(file_header(Language::Lua, "add.lua", source, 1).is_none());
        // The same comment with a module tag is the module's all the same.
        let tagged = "--- Arithmetic helpers.\n-- @module add\nlocal function add(a, b)\nend\n";
        assert!(file_header(Language::Lua, "add.lua", tagged, 2).is_some());
        // A plain `--` comment, or a license banner, is no module doc.
        let plain = "-- Some notes on this file and more words.\n\nlocal x = 1\n";
        assert!(header(Language::Lua, "notes.lua", plain).is_none());
        let license = "--- Copyright (c) 2020 Someone. MIT licensed.\n\nlocal x = 1\n";
        assert!(header(Language::Lua, "l.lua", license).is_none());
    }

    #[test]
    fn zig_file_docs_and_imported_declarations() {
        let source = "//! JSON parsing and stringification.\n\
                      //!\n\
                      //! See `Scanner` for the tokenizer.\n\
                      const std = @import(\"std\");\n\
                      pub const Scanner = @import(\"json/Scanner.zig\");\n\
                      pub const parseFromSlice = @import(\"json/static.zig\")\n    .parseFromSlice;\n\
                      const testing = @import(\"std\").testing;\n\
                      pub fn validate() void {}\n";
        let symbol = file_header(Language::Zig, "lib/std/json.zig", source, 8).unwrap();
        assert_eq!(symbol.name, "json");
        assert_eq!((symbol.start_line, symbol.end_line), (1, 7));
        assert_eq!(symbol.signature, "JSON parsing and stringification.");
        assert_eq!(
            symbol.doc.as_deref(),
            Some("JSON parsing and stringification.\n\nSee `Scanner` for the tokenizer.")
        );
        assert_eq!(
            symbol.text,
            "pub const Scanner = @import(\"json/Scanner.zig\");\n\
             pub const parseFromSlice = @import(\"json/static.zig\") .parseFromSlice;"
        );
        // A plain `//` comment is no file doc.
        assert!(header(Language::Zig, "a.zig", "// Not the docs of this file.\n").is_none());
    }

    #[test]
    fn nothing_to_say_is_no_symbol() {
        assert!(header(Language::Rust, "a.rs", "use std::fmt;\n").is_none());
        assert!(header(Language::Rust, "a.rs", "//! Tiny.\n").is_none());
        assert!(
            header(
                Language::Java,
                "A.java",
                "/** Docs of a class, many words. */\n"
            )
            .is_none()
        );
        assert!(header(Language::Python, "a.py", "").is_none());
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for language in [
            Language::Rust,
            Language::Python,
            Language::Go,
            Language::JavaScript,
            Language::Zig,
        ] {
            for source in [
                "\"\"\"",
                "'''\n",
                "/*",
                "pub use a::{\n",
                "from x import (\n",
                "export {\n",
                "pub const x = @import(\n",
                "//!\u{0}\u{FEFF}é",
                "package",
            ] {
                let _ = header(language, "é/mod.rs", source);
            }
        }
    }
}
