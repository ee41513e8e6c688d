//! The tree-sitter grammars compiled into this build.
//!
//! `build.rs` compiles each grammar's `parser.c` with its large parse tables left uninitialised
//! and embeds the tables as a zlib stream (see its header); a [`Grammar`] inflates them into
//! place the first time its language is asked for. That keeps about 27 MB of tables (mostly
//! zeros) out of the binary at the cost of a few milliseconds per language per process and the
//! memory of the languages actually used. A grammar the build could not compress is linked as
//! its crate ships it and behaves the same.

// The FFI with the grammars' C code: their entry points, and filling their tables.
#![allow(unsafe_code)]

use std::io::Read;
use std::sync::OnceLock;

use flate2::read::ZlibDecoder;
use tree_sitter_language::LanguageFn;

include!(concat!(env!("OUT_DIR"), "/grammars.rs"));

/// A grammar: its language function and, when compressed, the tables to put in place first.
pub(crate) struct Grammar {
    language: LanguageFn,
    tables: Option<Tables>,
}

/// The compressed tables of one grammar and where they go.
struct Tables {
    /// zlib stream of all tables, one after another.
    stream: &'static [u8],
    /// Each table's size in bytes, in stream order.
    sizes: &'static [usize],
    /// The address of table `index` (in stream order) in the grammar's C code.
    address: unsafe extern "C" fn(index: usize) -> *mut u8,
    name: &'static str,
    filled: OnceLock<()>,
}

impl Grammar {
    /// A grammar whose tables `build.rs` compressed.
    #[allow(dead_code, reason = "unused where the build compressed no grammar")]
    const fn compact(
        stream: &'static [u8],
        sizes: &'static [usize],
        address: unsafe extern "C" fn(usize) -> *mut u8,
        language: LanguageFn,
        name: &'static str,
    ) -> Self {
        Self {
            language,
            tables: Some(Tables {
                stream,
                sizes,
                address,
                name,
                filled: OnceLock::new(),
            }),
        }
    }

    /// A grammar linked as its crate ships it.
    #[allow(
        dead_code,
        reason = "used where the build could not compress a grammar"
    )]
    const fn linked(language: LanguageFn) -> Self {
        Self {
            language,
            tables: None,
        }
    }

    /// The tree-sitter language, its tables in place.
    pub(crate) fn language(&self) -> tree_sitter::Language {
        if let Some(tables) = &self.tables {
            tables.filled.get_or_init(|| tables.fill());
        }
        self.language.into()
    }

    /// Whether this grammar's tables were compressed by the build.
    #[cfg(test)]
    pub(crate) fn is_compact(&self) -> bool {
        self.tables.is_some()
    }
}

impl Tables {
    /// Inflates the stream into the tables. Runs once per grammar and process, before any
    /// `tree_sitter::Language` of the grammar exists, so nothing reads the tables meanwhile.
    ///
    /// The stream is part of this binary and checked (zlib's checksum, the sizes): a failure
    /// means a damaged executable, which no caller could work around.
    fn fill(&self) {
        let mut stream = ZlibDecoder::new(self.stream);
        for (index, &size) in self.sizes.iter().enumerate() {
            // SAFETY: the accessor returns the address of a static array of the grammar's C
            // code, or null for an index it does not know.
            let address = unsafe { (self.address)(index) };
            assert!(
                !address.is_null(),
                "the {} grammar has no table {index}: this coder-lsp binary is damaged",
                self.name
            );
            // SAFETY: the array is `size` bytes long (build.rs asserts it in C with
            // `_Static_assert`), lives for the whole process, and nothing else reads or writes it
            // until `fill` returns: the grammar's language is handed out only after (`OnceLock`).
            let table = unsafe { std::slice::from_raw_parts_mut(address, size) };
            if let Err(err) = stream.read_exact(table) {
                panic!(
                    "the {} grammar's tables do not inflate ({err}): this coder-lsp binary is damaged",
                    self.name
                );
            }
        }
        let mut rest = [0u8; 1];
        let trailing = stream.read(&mut rest);
        assert!(
            matches!(trailing, Ok(0)),
            "the {} grammar's tables are longer than expected: this coder-lsp binary is damaged",
            self.name
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every grammar of this build, beside the language its crate ships (`ALL`, from
    /// build.rs).
    fn pairs() -> Vec<(&'static str, &'static Grammar, tree_sitter::Language)> {
        ALL.iter()
            .map(|&(name, grammar, shipped)| (name, grammar, shipped.into()))
            .collect()
    }

    /// A native build compresses every grammar (the build prints why where it cannot; set
    /// `CODER_LSP_FULL_GRAMMARS` to build without on purpose).
    #[test]
    fn every_grammar_is_compressed_in_a_native_build() {
        if option_env!("CODER_LSP_FULL_GRAMMARS").is_some_and(|v| !v.is_empty() && v != "0") {
            return;
        }
        for (name, grammar, _) in pairs() {
            assert!(grammar.is_compact(), "{name} was linked uncompressed");
        }
    }

    /// The inflated tables are the crate's: every state's transitions and valid symbols agree.
    #[test]
    fn inflated_tables_match_the_grammar_crates() {
        for (name, grammar, shipped) in pairs() {
            let ours = grammar.language();
            assert_eq!(ours.name(), shipped.name());
            assert_eq!(ours.abi_version(), shipped.abi_version(), "{name}");
            assert_eq!(ours.node_kind_count(), shipped.node_kind_count(), "{name}");
            assert_eq!(
                ours.parse_state_count(),
                shipped.parse_state_count(),
                "{name}"
            );
            let symbols = u16::try_from(ours.node_kind_count()).expect("symbol ids fit u16");
            let states = u16::try_from(ours.parse_state_count()).expect("state ids fit u16");
            for state in 0..states {
                for symbol in 0..symbols {
                    assert_eq!(
                        ours.next_state(state, symbol),
                        shipped.next_state(state, symbol),
                        "{name}: state {state}, symbol {symbol}"
                    );
                }
                let valid = |language: &tree_sitter::Language| -> Vec<u16> {
                    language
                        .lookahead_iterator(state)
                        .map(|lookahead| lookahead.collect())
                        .unwrap_or_default()
                };
                assert_eq!(valid(&ours), valid(&shipped), "{name}: state {state}");
            }
        }
    }

    /// Parsing with the inflated tables (lexer modes, primary states, actions) gives the trees
    /// the crates' own languages give, errors included.
    #[test]
    fn inflated_grammars_parse_like_the_grammar_crates() {
        let sources = [
            "fn main() { let x = vec![1, 2]; }\nclass A { def f(self): return {'a': [1]} }",
            "function f(a, b) { return a < b ? `x${a}` : null; } <div>{x}</div>",
            "#include <stdio.h>\nint main(void) { printf(\"%d\", 1); }\n",
            "defmodule A do\n  def f(x), do: x <> \"s\"\nend\n<?php echo $x; ?>\n",
            "local t = { a = 1 }\nfor i = 1, 10 do print(i) end\n$x = @(1) # comment\n",
            "object Main extends App { val xs = List(1, 2).map(_ + 1) }\n",
        ];
        for (name, grammar, shipped) in pairs() {
            let ours = grammar.language();
            for source in sources {
                let tree = |language: &tree_sitter::Language| {
                    let mut parser = tree_sitter::Parser::new();
                    parser.set_language(language).expect("compatible grammar");
                    parser
                        .parse(source, None)
                        .map(|tree| tree.root_node().to_sexp())
                };
                assert_eq!(
                    tree(&ours),
                    tree(&shipped),
                    "{name} parses {source:?} differently"
                );
            }
        }
    }
}
