//! End-to-end tests of [`SymbolExtractor`]: one realistic fixture per code language with the
//! exact outline expected from it, plus the fallbacks (Markdown, text windows, scripts) and
//! hostile inputs (empty, broken, non-ASCII, CRLF, deeply nested, long lines).

use super::*;

/// (name, kind, container, start_line, end_line) of a symbol: the shape asserted per fixture.
type Row<'a> = (&'a str, &'a str, Option<&'a str>, u32, u32);

fn extract(language: Language, file_name: &str, source: &str) -> Vec<Symbol> {
    match SymbolExtractor::new().extract(language, file_name, source) {
        Ok(symbols) => symbols,
        Err(error) => panic!("{file_name}: {error}"),
    }
}

fn outline(symbols: &[Symbol]) -> Vec<Row<'_>> {
    symbols
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.kind.as_str(),
                s.container.as_deref(),
                s.start_line,
                s.end_line,
            )
        })
        .collect()
}

fn find<'a>(symbols: &'a [Symbol], name: &str) -> &'a Symbol {
    match symbols.iter().find(|s| s.name == name) {
        Some(symbol) => symbol,
        None => panic!("no symbol {name} in {:#?}", outline(symbols)),
    }
}

/// Checks that every symbol's text is exactly its lines of the source.
fn assert_texts_match_lines(symbols: &[Symbol], source: &str) {
    let lines: Vec<&str> = source.split('\n').collect();
    for s in symbols {
        let expected = lines[(s.start_line - 1) as usize..s.end_line as usize].join("\n");
        let expected = expected.strip_suffix('\r').unwrap_or(&expected);
        assert_eq!(s.text, expected, "text of {}", s.name);
    }
}

const RUST: &str = r#"//! Crate docs are not attached to items.

use std::fmt;

/// Maximum depth.
pub const MAX_DEPTH: usize = 8;

/// A parsed token.
///
/// Tokens are cheap to copy.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Token<'a> {
    pub text: &'a str,
}

pub enum Kind {
    Word,
    Number,
}

/// Things that can be rendered.
pub trait Render {
    /// Renders into a string.
    fn render(&self) -> String;

    fn render_twice(&self) -> String {
        self.render().repeat(2)
    }
}

impl<'a> fmt::Display for Token<'a> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.text)
    }
}

impl Token<'_> {
    /// Creates a token.
    pub fn new(text: &str) -> Token<'_> {
        fn helper() {}
        helper();
        Token { text }
    }
}

pub type Tokens<'a> = Vec<Token<'a>>;

macro_rules! token {
    ($t:expr) => {
        Token::new($t)
    };
}

mod tests {
    #[test]
    fn parses() {}
}
"#;

#[test]
fn rust_fixture() {
    let symbols = extract(Language::Rust, "lib.rs", RUST);
    let expected: Vec<Row<'_>> = vec![
        ("MAX_DEPTH", "constant", None, 6, 6),
        ("Token", "struct", None, 11, 15),
        ("Kind", "enum", None, 17, 20),
        ("Render", "trait", None, 23, 30),
        ("render", "method", Some("Render"), 25, 25),
        ("render_twice", "method", Some("Render"), 27, 29),
        ("Token", "impl", None, 32, 36),
        ("fmt", "method", Some("Token"), 33, 35),
        ("Token", "impl", None, 38, 45),
        ("new", "method", Some("Token"), 40, 44),
        ("Tokens", "type", None, 47, 47),
        ("token", "macro", None, 49, 53),
        ("tests", "module", None, 55, 58),
        ("parses", "function", Some("tests"), 56, 57),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, RUST);

    let token = &symbols[1];
    assert_eq!(
        token.doc.as_deref(),
        Some("A parsed token.\n\nTokens are cheap to copy.")
    );
    assert_eq!(
        token.signature,
        "#[derive(Debug, Clone)] #[non_exhaustive] pub struct Token<'a>"
    );
    assert!(
        token
            .text
            .starts_with("#[derive(Debug, Clone)]\n#[non_exhaustive]\npub struct")
    );
    let display = &symbols[6];
    assert_eq!(display.signature, "impl<'a> fmt::Display for Token<'a>");
    assert_eq!(display.doc, None);
    assert_eq!(
        symbols[7].signature,
        "fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result"
    );
    assert_eq!(symbols[4].signature, "fn render(&self) -> String");
    assert_eq!(symbols[4].doc.as_deref(), Some("Renders into a string."));
    assert_eq!(symbols[5].doc, None);
    assert_eq!(
        find(&symbols, "new").doc.as_deref(),
        Some("Creates a token.")
    );
    assert_eq!(
        find(&symbols, "MAX_DEPTH").signature,
        "pub const MAX_DEPTH: usize = 8"
    );
    assert_eq!(find(&symbols, "token").signature, "macro_rules! token");
    assert_eq!(symbols[12].signature, "mod tests");
    assert_eq!(symbols[13].signature, "#[test] fn parses()");
}

const PYTHON: &str = r#""""Module docstring."""
import functools

DEFAULT_TIMEOUT = 30
_private = 1


def retry(times):
    """Retry a call.

    Args:
        times: how often.
    """
    def wrap(fn):
        return fn
    return wrap


class Repository(Base):
    '''Stores rows.'''

    table = "rows"

    def __init__(self, db):
        self.db = db

    @functools.lru_cache(maxsize=None)
    @retry(3)
    def fetch(self, key: str) -> dict:
        # not a docstring
        return self.db.get(key)

    class Meta:
        ordering = ["id"]


@retry(2)
async def main() -> None:
    await Repository(None).fetch("k")
"#;

#[test]
fn python_fixture() {
    let symbols = extract(Language::Python, "repo.py", PYTHON);
    let expected: Vec<Row<'_>> = vec![
        ("DEFAULT_TIMEOUT", "constant", None, 4, 4),
        ("retry", "function", None, 8, 16),
        ("Repository", "class", None, 19, 34),
        ("__init__", "method", Some("Repository"), 24, 25),
        ("fetch", "method", Some("Repository"), 27, 31),
        ("Meta", "class", Some("Repository"), 33, 34),
        ("main", "function", None, 37, 39),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, PYTHON);

    let retry = &symbols[1];
    assert_eq!(
        retry.doc.as_deref(),
        Some("Retry a call.\n\nArgs:\n    times: how often.")
    );
    assert_eq!(retry.signature, "def retry(times)");
    assert_eq!(symbols[2].doc.as_deref(), Some("Stores rows."));
    assert_eq!(symbols[2].signature, "class Repository(Base)");
    let fetch = &symbols[4];
    assert_eq!(fetch.doc, None);
    assert_eq!(
        fetch.signature,
        "@functools.lru_cache(maxsize=None) @retry(3) def fetch(self, key: str) -> dict"
    );
    assert!(
        fetch
            .text
            .starts_with("    @functools.lru_cache(maxsize=None)\n    @retry(3)\n")
    );
    assert_eq!(symbols[6].signature, "@retry(2) async def main() -> None");
    assert_eq!(symbols[0].signature, "DEFAULT_TIMEOUT = 30");
}

const JAVASCRIPT: &str = r#"import express from "express";

export const MAX_RETRIES = 3;

/**
 * Handles a request.
 * @param {Request} req
 */
export const handler = async (req, res) => {
  res.send(await load(req.params.id));
};

// Loads a record.
function load(id) {
  const inner = () => id;
  return inner();
}

function* ids() {
  yield 1;
}

export default class Store extends Base {
  // Items by id.
  items = new Map();

  constructor() {
    super();
  }

  /** Adds an item. */
  add(item) {
    this.items.set(item.id, item);
  }

  onChange = (event) => {
    this.emit(event);
  };

  static #secret() {}
}

module.exports.legacy = function (a) {
  return a;
};

var old = function named() {};
"#;

#[test]
fn javascript_fixture() {
    let symbols = extract(Language::JavaScript, "store.js", JAVASCRIPT);
    let expected: Vec<Row<'_>> = vec![
        ("MAX_RETRIES", "constant", None, 3, 3),
        ("handler", "function", None, 9, 11),
        ("load", "function", None, 14, 17),
        ("ids", "function", None, 19, 21),
        ("Store", "class", None, 23, 41),
        ("constructor", "method", Some("Store"), 27, 29),
        ("add", "method", Some("Store"), 32, 34),
        ("onChange", "method", Some("Store"), 36, 38),
        ("#secret", "method", Some("Store"), 40, 40),
        ("legacy", "function", None, 43, 45),
        ("old", "function", None, 47, 47),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, JAVASCRIPT);

    let handler = &symbols[1];
    assert_eq!(
        handler.doc.as_deref(),
        Some("Handles a request.\n@param {Request} req")
    );
    assert_eq!(
        handler.signature,
        "export const handler = async (req, res) =>"
    );
    assert_eq!(symbols[2].doc.as_deref(), Some("Loads a record."));
    assert_eq!(symbols[2].signature, "function load(id)");
    assert_eq!(
        symbols[4].signature,
        "export default class Store extends Base"
    );
    assert_eq!(symbols[6].doc.as_deref(), Some("Adds an item."));
    assert_eq!(symbols[6].signature, "add(item)");
    assert_eq!(symbols[7].signature, "onChange = (event) =>");
    assert_eq!(symbols[9].signature, "module.exports.legacy = function (a)");
}

/// ES5 classes: a function stored on `Foo.prototype` is a method of `Foo`; one stored on any
/// other object (`app.param`, `module.exports.parse`) stays a function of its own.
const JAVASCRIPT_PROTOTYPE: &str = r#"function Route(path) {
  this.path = path;
}

/**
 * Dispatch req, res into this route.
 */
Route.prototype.dispatch = function dispatch(req, res, done) {
  done();
};

Route.prototype._handles_method = (method) => true;

app.param = function param(name, fn) {
  return this;
};

module.exports.parse = function (text) {
  return text;
};
"#;

#[test]
fn javascript_prototype_functions_are_methods_of_their_constructor() {
    let symbols = extract(Language::JavaScript, "route.js", JAVASCRIPT_PROTOTYPE);
    let expected: Vec<Row<'_>> = vec![
        ("Route", "function", None, 1, 3),
        ("dispatch", "method", Some("Route"), 8, 10),
        ("_handles_method", "method", Some("Route"), 12, 12),
        ("param", "function", None, 14, 16),
        ("parse", "function", None, 18, 20),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_eq!(
        symbols[1].doc.as_deref(),
        Some("Dispatch req, res into this route.")
    );
}

/// express writes a blank line between a JSDoc block and its definition; the block is still the
/// doc. Two blank lines, a plain `/* */` or `//` comment, a license banner, a file's own
/// `@module` doc and a `/*****` section banner are not.
const JAVASCRIPT_SPACED_DOCS: &str = r#"/**
 * Copyright (c) 2014 Someone
 * MIT Licensed
 */

function licensed() {}

/**
 * Proxy to `Router#param()`.
 *
 * @param {String|Array} name
 * @public
 */

app.param = function param(name, fn) {
  return this;
};

/**
 * Two blank lines below.
 */


function far() {}

/* A plain block comment. */

function plain() {}

// A line comment.

function lined() {}

/**
 * Helpers.
 * @module helpers
 */

function first() {}

/******************************
 * Section banner
 ******************************/

function banner() {}

/**
 * Right above.
 */
function adjacent() {}
"#;

#[test]
fn javascript_doc_block_across_one_blank_line() {
    let symbols = extract(
        Language::JavaScript,
        "application.js",
        JAVASCRIPT_SPACED_DOCS,
    );
    let docs: Vec<(&str, Option<&str>)> = symbols
        .iter()
        .map(|s| (s.name.as_str(), s.doc.as_deref()))
        .collect();
    assert_eq!(
        docs,
        vec![
            ("licensed", None),
            (
                "param",
                Some("Proxy to `Router#param()`.\n\n@param {String|Array} name\n@public")
            ),
            ("far", None),
            ("plain", None),
            ("lined", None),
            ("first", None),
            ("banner", None),
            ("adjacent", Some("Right above.")),
        ]
    );
    // The doc is not part of the definition's range.
    let param = &symbols[1];
    assert_eq!((param.start_line, param.end_line), (15, 17));
}

/// Chained assignments, as express writes its aliases: one symbol per function, named by the
/// first name, with the doc comment above the statement; an alias of a value is no symbol.
const JAVASCRIPT_CHAINED: &str = r#"/**
 * Set the Content-Type header.
 */
res.contentType =
res.type = function contentType(type) {
  return this.set('Content-Type', type);
};

req.get = req.header = (name) => this.headers[name];

a.b = c.d = e.f = function () {};

var proto = module.exports = function(options) {
  return options;
};

exports = module.exports = createApplication;
res.x = res.y = 3;
"#;

#[test]
fn javascript_chained_assignments() {
    let symbols = extract(Language::JavaScript, "response.js", JAVASCRIPT_CHAINED);
    let expected: Vec<Row<'_>> = vec![
        ("contentType", "function", None, 4, 7),
        ("get", "function", None, 9, 9),
        ("b", "function", None, 11, 11),
        ("proto", "function", None, 13, 15),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, JAVASCRIPT_CHAINED);
    assert_eq!(
        symbols[0].doc.as_deref(),
        Some("Set the Content-Type header.")
    );
    assert_eq!(
        symbols[0].signature,
        "res.contentType = res.type = function contentType(type)"
    );
}

/// A module that exports one named function (express's `middleware/query.js`) is known by the
/// function's name; an anonymous one, and a named function under another property, as before.
const JAVASCRIPT_EXPORTED_FUNCTIONS: &str = r#"/**
 * Parse the query string.
 */
module.exports = function query(options) {
  return options;
};

module.exports = function (options) {};

exports.parse = function parseQuery(text) {};
"#;

#[test]
fn javascript_a_module_exporting_a_named_function_is_known_by_its_name() {
    for language in [Language::JavaScript, Language::TypeScript] {
        let symbols = extract(language, "query.js", JAVASCRIPT_EXPORTED_FUNCTIONS);
        let expected: Vec<Row<'_>> = vec![
            ("query", "function", None, 4, 6),
            ("exports", "function", None, 8, 8),
            ("parse", "function", None, 10, 10),
        ];
        assert_eq!(outline(&symbols), expected, "{language:?}");
        assert_eq!(symbols[0].doc.as_deref(), Some("Parse the query string."));
        assert_eq!(
            symbols[0].signature,
            "module.exports = function query(options)"
        );
    }
}

const JAVASCRIPT_DEFINING_CALLS: &str = r#"/**
 * Return the remote address.
 */
defineGetter(req, 'ip', function ip() {
  return this.connection.remoteAddress;
});

defineGetter(req, 'xhr', () => {
  return true;
});

Object.defineProperty(exports, 'secure', {
  get() {
    return this.protocol === 'https';
  }
});

app.listen(3000, function () {});

describe('router', function () {
  it('routes', function named() {});
});
"#;

#[test]
fn regression_20_calls_that_define_names_are_symbols() {
    for language in [Language::JavaScript, Language::TypeScript] {
        let symbols = extract(language, "request.js", JAVASCRIPT_DEFINING_CALLS);
        let expected: Vec<Row<'_>> = vec![
            ("ip", "function", None, 4, 6),
            ("xhr", "function", None, 8, 10),
            ("secure", "function", None, 12, 16),
        ];
        assert_eq!(outline(&symbols), expected, "{language}");
        assert_eq!(
            symbols[0].doc.as_deref(),
            Some("Return the remote address."),
            "{language}"
        );
        assert_texts_match_lines(&symbols, JAVASCRIPT_DEFINING_CALLS);
    }
}

const TYPESCRIPT: &str = r#"import { Request } from "express";

/** Options for the client. */
export interface ClientOptions {
  baseUrl: string;
  /** Sends a request. */
  send(req: Request): Promise<Response>;
}

export type Handler<T> = (input: T) => Promise<void>;

export enum Level {
  Debug,
  Info,
}

export namespace Util {
  export function clamp(x: number): number {
    return Math.min(1, Math.max(0, x));
  }
}

declare module "legacy-lib" {
  export function old(): void;
}

export abstract class Shape {
  abstract area(): number;

  describe(): string {
    return `area ${this.area()}`;
  }
}

@Injectable()
export class Api<T> extends Shape implements Client {
  private readonly cache = new Map<string, T>();

  constructor(private opts: ClientOptions) {
    super();
  }

  async get(path: string): Promise<T> {
    return fetch(this.opts.baseUrl + path) as T;
  }

  area(): number {
    return 0;
  }
}

export const createApi = <T,>(opts: ClientOptions): Api<T> => new Api<T>(opts);

function overloaded(a: string): void;
function overloaded(a: any): void {}
"#;

#[test]
fn typescript_fixture() {
    let symbols = extract(Language::TypeScript, "api.ts", TYPESCRIPT);
    let expected: Vec<Row<'_>> = vec![
        ("ClientOptions", "interface", None, 4, 8),
        ("send", "method", Some("ClientOptions"), 7, 7),
        ("Handler", "type", None, 10, 10),
        ("Level", "enum", None, 12, 15),
        ("Util", "module", None, 17, 21),
        ("clamp", "function", Some("Util"), 18, 20),
        ("legacy-lib", "module", None, 23, 25),
        ("Shape", "class", None, 27, 33),
        ("area", "method", Some("Shape"), 28, 28),
        ("describe", "method", Some("Shape"), 30, 32),
        ("Api", "class", None, 35, 50),
        ("constructor", "method", Some("Api"), 39, 41),
        ("get", "method", Some("Api"), 43, 45),
        ("area", "method", Some("Api"), 47, 49),
        ("createApi", "function", None, 52, 52),
        ("overloaded", "function", None, 55, 55),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, TYPESCRIPT);

    assert_eq!(symbols[0].doc.as_deref(), Some("Options for the client."));
    assert_eq!(symbols[0].signature, "export interface ClientOptions");
    assert_eq!(symbols[1].doc.as_deref(), Some("Sends a request."));
    assert_eq!(
        symbols[1].signature,
        "send(req: Request): Promise<Response>"
    );
    assert_eq!(
        symbols[2].signature,
        "export type Handler<T> = (input: T) => Promise<void>"
    );
    assert_eq!(
        symbols[10].signature,
        "@Injectable() export class Api<T> extends Shape implements Client"
    );
    assert_eq!(symbols[12].signature, "async get(path: string): Promise<T>");
}

const TSX: &str = r#"import React, { useState } from "react";

type Props = { title: string };

/** A counter button. */
export function Counter({ title }: Props) {
  const [n, setN] = useState(0);
  const onClick = () => setN(n + 1);
  return <button onClick={onClick}>{title}: {n}</button>;
}

export const Label = ({ text }: { text: string }) => (
  <span className="label">{text}</span>
);

export default class Panel extends React.Component<Props> {
  render() {
    return <div>{this.props.title}</div>;
  }
}
"#;

#[test]
fn tsx_fixture() {
    let symbols = extract(Language::Tsx, "Counter.tsx", TSX);
    let expected: Vec<Row<'_>> = vec![
        ("Props", "type", None, 3, 3),
        ("Counter", "function", None, 6, 10),
        ("Label", "function", None, 12, 14),
        ("Panel", "class", None, 16, 20),
        ("render", "method", Some("Panel"), 17, 19),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, TSX);
    assert_eq!(symbols[1].doc.as_deref(), Some("A counter button."));
    assert_eq!(
        symbols[1].signature,
        "export function Counter({ title }: Props)"
    );
    assert_eq!(
        symbols[2].signature,
        "export const Label = ({ text }: { text: string }) =>"
    );
}

const GO: &str = r#"// Package store keeps records.
package store

import "sync"

// MaxItems bounds the cache.
const MaxItems = 100

const (
	// ModeRead reads.
	ModeRead = iota
	ModeWrite
)

// Store is a concurrent map.
type Store struct {
	mu    sync.Mutex
	items map[string]Item
}

type (
	// Item is a stored value.
	Item = string
	ID   int
)

// Reader reads items.
type Reader interface {
	// Get returns an item.
	Get(id ID) (Item, bool)
}

// New creates a store.
func New() *Store {
	return &Store{items: map[string]Item{}}
}

// Get implements Reader.
func (s *Store) Get(id ID) (Item, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	item, ok := s.items[string(rune(id))]
	return item, ok
}

func (l List[T]) Len() int { return len(l) }
"#;

#[test]
fn go_fixture() {
    let symbols = extract(Language::Go, "store.go", GO);
    let expected: Vec<Row<'_>> = vec![
        ("MaxItems", "constant", None, 7, 7),
        ("ModeRead", "constant", None, 11, 11),
        ("ModeWrite", "constant", None, 12, 12),
        ("Store", "struct", None, 16, 19),
        ("Item", "type", None, 23, 23),
        ("ID", "type", None, 24, 24),
        ("Reader", "interface", None, 28, 31),
        ("Get", "method", Some("Reader"), 30, 30),
        ("New", "function", None, 34, 36),
        ("Get", "method", Some("Store"), 39, 44),
        ("Len", "method", Some("List"), 46, 46),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, GO);

    assert_eq!(
        symbols[0].doc.as_deref(),
        Some("MaxItems bounds the cache.")
    );
    assert_eq!(symbols[1].doc.as_deref(), Some("ModeRead reads."));
    assert_eq!(
        symbols[3].doc.as_deref(),
        Some("Store is a concurrent map.")
    );
    assert_eq!(symbols[3].signature, "type Store struct");
    assert_eq!(symbols[4].doc.as_deref(), Some("Item is a stored value."));
    assert_eq!(symbols[6].signature, "type Reader interface");
    assert_eq!(symbols[9].doc.as_deref(), Some("Get implements Reader."));
    assert_eq!(
        symbols[9].signature,
        "func (s *Store) Get(id ID) (Item, bool)"
    );
    assert_eq!(symbols[8].signature, "func New() *Store");
}

const RUBY: &str = r#"# frozen_string_literal: true

require "uri"

module Rack
  # Default port when none is given.
  DEFAULT_PORT = 80

  # A request: the environment
  # with helpers.
  class Request < Base
    # Wraps a Rack environment.
    def initialize(env)
      @env = env
    end

    # Whether the request is a GET.
    def get?
      method == "GET"
    end

    # Parses a request from text.
    def self.parse(text)
      new(text)
    end

    class << self
      def build!(env)
        new(env)
      end
    end
  end

  class Utils::Escape; end
end

def helper; end
"#;

#[test]
fn a_module_that_only_wraps_types_is_their_container_not_a_symbol() {
    // Liquid's files: `module Liquid` around one class. Its chunk would repeat the class.
    let wrapped = "# frozen_string_literal: true\n\nmodule Liquid\n  # Information about a loop.\n  \
                   class ForloopDrop < Drop\n    def index\n      @index + 1\n    end\n  end\n\n  \
                   # Modes.\n  module Modes\n    module Strict\n      def self.on?\n      end\n    \
                   end\n  end\nend\n";
    let symbols = extract(Language::Ruby, "liquid/forloop_drop.rb", wrapped);
    let expected: Vec<Row<'_>> = vec![
        ("ForloopDrop", "class", Some("Liquid"), 5, 9),
        ("index", "method", Some("ForloopDrop"), 6, 8),
        ("Strict", "module", Some("Modes"), 13, 16),
        ("on?", "method", Some("Strict"), 14, 15),
    ];
    assert_eq!(outline(&symbols), expected);
    // Code of its own makes a module a module: a constant, `extend self`, a function.
    for own in [
        "  VERSION = 1\n",
        "  extend self\n",
        "  def self.helper\n  end\n",
    ] {
        let source = format!("module Liquid\n{own}  class Drop\n  end\nend\n");
        let symbols = extract(Language::Ruby, "liquid.rb", &source);
        assert_eq!(symbols[0].name, "Liquid", "{own}");
        assert_eq!(symbols[0].kind, SymbolKind::Module, "{own}");
    }
    // An empty module is no wrapper either.
    let empty = extract(Language::Ruby, "e.rb", "module Empty\nend\n");
    assert_eq!(outline(&empty), vec![("Empty", "module", None, 1, 2)]);
}

#[test]
fn a_class_reopened_by_its_name_alone_around_modules_is_a_wrapper() {
    // Thor's files: `class Thor` reopened around `module Shell` / `module Terminal`.
    let reopened = "class Thor\n  module Shell\n    module Terminal\n      WIDTH = 80\n\n      \
                    def self.width\n        WIDTH\n      end\n    end\n  end\nend\n";
    let symbols = extract(Language::Ruby, "thor/shell/terminal.rb", reopened);
    let expected: Vec<Row<'_>> = vec![
        ("Terminal", "module", Some("Shell"), 3, 9),
        ("WIDTH", "constant", Some("Terminal"), 4, 4),
        ("width", "method", Some("Terminal"), 6, 8),
    ];
    assert_eq!(outline(&symbols), expected);
    // A superclass, code of its own or another language keep the class a symbol.
    for (language, path, source) in [
        (
            Language::Ruby,
            "a.rb",
            "class Thor < Base\n  module Shell\n    def self.a; end\n  end\nend\n",
        ),
        (
            Language::Ruby,
            "b.rb",
            "class Thor\n  X = 1\n  module Shell\n    def self.a; end\n  end\nend\n",
        ),
        (
            Language::Python,
            "c.py",
            "class Thor:\n    class Shell:\n        def a(self):\n            pass\n",
        ),
    ] {
        let symbols = extract(language, path, source);
        assert_eq!(symbols[0].name, "Thor", "{source}");
        assert_eq!(symbols[0].kind, SymbolKind::Class, "{source}");
    }
}

#[test]
fn ruby_fixture() {
    let symbols = extract(Language::Ruby, "request.rb", RUBY);
    let expected: Vec<Row<'_>> = vec![
        ("Rack", "module", None, 5, 35),
        ("DEFAULT_PORT", "constant", Some("Rack"), 7, 7),
        ("Request", "class", Some("Rack"), 11, 32),
        ("initialize", "method", Some("Request"), 13, 15),
        ("get?", "method", Some("Request"), 18, 20),
        ("parse", "method", Some("Request"), 23, 25),
        ("build!", "method", Some("Request"), 28, 30),
        ("Escape", "class", Some("Rack"), 34, 34),
        ("helper", "function", None, 37, 37),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, RUBY);

    let port = find(&symbols, "DEFAULT_PORT");
    assert_eq!(
        port.doc.as_deref(),
        Some("Default port when none is given.")
    );
    let request = find(&symbols, "Request");
    assert_eq!(
        request.doc.as_deref(),
        Some("A request: the environment\nwith helpers.")
    );
    assert_eq!(request.signature, "class Request < Base");
    let get = find(&symbols, "get?");
    assert_eq!(get.doc.as_deref(), Some("Whether the request is a GET."));
    assert_eq!(get.signature, "def get?");
    let parse = find(&symbols, "parse");
    assert_eq!(parse.doc.as_deref(), Some("Parses a request from text."));
    assert_eq!(parse.signature, "def self.parse(text)");
    // The first statement of a body: its comment sits before the body in the tree.
    assert_eq!(
        find(&symbols, "initialize").doc.as_deref(),
        Some("Wraps a Rack environment.")
    );
    assert_eq!(find(&symbols, "build!").doc, None);
}

const LUA: &str = r#"--- Account objects.
-- @module account
local M = {}

--- Creates an account.
---@param owner string
---@return Account
function M.new(owner)
  return setmetatable({ owner = owner, balance = 0 }, M)
end

--[[
  Deposits money.
]]
function M:deposit(amount)
  local function check(x) return x > 0 end
  if check(amount) then
    self.balance = self.balance + amount
  end
end

local function helper(x) return x end

-- Joins two strings.
M.format = function(a, b)
  return a .. b
end

local log = function(msg) print(msg) end

local handlers = {
  -- Called on attach.
  on_attach = function(client) end,
  name = "x",
}

function vim.lsp.util.trim(s) end
x = 1 -- not a doc
function global_fn() end

return M
"#;

#[test]
fn lua_fixture() {
    let symbols = extract(Language::Lua, "account.lua", LUA);
    let expected: Vec<Row<'_>> = vec![
        ("new", "function", Some("M"), 8, 10),
        ("deposit", "method", Some("M"), 15, 20),
        ("helper", "function", None, 22, 22),
        ("format", "function", Some("M"), 25, 27),
        ("log", "function", None, 29, 29),
        ("on_attach", "function", Some("handlers"), 33, 33),
        ("trim", "function", Some("util"), 37, 37),
        ("global_fn", "function", None, 39, 39),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, LUA);

    let new = find(&symbols, "new");
    assert_eq!(
        new.doc.as_deref(),
        Some("Creates an account.\n@param owner string\n@return Account")
    );
    assert_eq!(new.signature, "function M.new(owner)");
    let deposit = find(&symbols, "deposit");
    assert_eq!(deposit.doc.as_deref(), Some("Deposits money."));
    assert_eq!(deposit.signature, "function M:deposit(amount)");
    assert_eq!(
        find(&symbols, "helper").signature,
        "local function helper(x)"
    );
    let format = find(&symbols, "format");
    assert_eq!(format.doc.as_deref(), Some("Joins two strings."));
    assert_eq!(format.signature, "M.format = function(a, b)");
    assert_eq!(find(&symbols, "log").signature, "local log = function(msg)");
    let on_attach = find(&symbols, "on_attach");
    assert_eq!(on_attach.doc.as_deref(), Some("Called on attach."));
    assert_eq!(on_attach.signature, "on_attach = function(client)");
    assert_eq!(
        find(&symbols, "trim").signature,
        "function vim.lsp.util.trim(s)"
    );
    // A comment that trails code on the line above documents that code.
    assert_eq!(find(&symbols, "global_fn").doc, None);

    // A module returned as a table literal.
    let returned = "return {\n  --- Sets up.\n  setup = function(opts)\n  end,\n}\n";
    let symbols = extract(Language::Lua, "init.lua", returned);
    assert_eq!(outline(&symbols), vec![("setup", "function", None, 3, 4)]);
    assert_eq!(symbols[0].doc.as_deref(), Some("Sets up."));

    // Polyfills: a function that is the fallback of `or` is a definition too.
    let polyfills = "local unpack = table.unpack or function(t, i)\nend\n\
                     table.pack = table.pack or function(...)\nend\n\
                     local default = opts and function() end\n\
                     return {\n  setfenv = setfenv or function(f, t)\n  end,\n}\n";
    let symbols = extract(Language::Lua, "compat.lua", polyfills);
    assert_eq!(
        outline(&symbols),
        vec![
            ("unpack", "function", None, 1, 2),
            ("pack", "function", Some("table"), 3, 4),
            ("setfenv", "function", None, 7, 8),
        ]
    );
    assert_eq!(
        symbols[0].signature,
        "local unpack = table.unpack or function(t, i)"
    );
    assert_eq!(symbols[2].signature, "setfenv = setfenv or function(f, t)");
}

const PHP: &str = r#"<html><body>
<?php
declare(strict_types=1);

namespace App\Models;

use Foo\Bar;

/**
 * Greets someone.
 *
 * @param string $name who
 */
function greet(string $name): string
{
    return "Hi $name";
}

/** A user of the app. */
#[Entity]
final class User extends Model implements JsonSerializable
{
    /** Table name. */
    public const TABLE = 'users', OTHER = 2;
    private ?string $email = null;

    /**
     * Creates a user.
     */
    public function __construct(private string $name) {}

    // Finds one.
    public static function find(int $id): ?static
    {
        $f = function ($x) { return $x; };
        return null;
    }
}

interface Shape
{
    public function area(): float;
}

trait HasName
{
    abstract public function name(): string;
}

enum Suit: string
{
    case Hearts = 'H';

    public function color(): string { return 'Red'; }
}
?>
<p><?= greet("x") ?></p>
"#;

#[test]
fn php_fixture() {
    let symbols = extract(Language::Php, "User.php", PHP);
    let expected: Vec<Row<'_>> = vec![
        ("greet", "function", None, 14, 17),
        ("User", "class", None, 20, 38),
        ("TABLE", "constant", Some("User"), 24, 24),
        ("__construct", "method", Some("User"), 30, 30),
        ("find", "method", Some("User"), 33, 37),
        ("Shape", "interface", None, 40, 43),
        ("area", "method", Some("Shape"), 42, 42),
        ("HasName", "trait", None, 45, 48),
        ("name", "method", Some("HasName"), 47, 47),
        ("Suit", "enum", None, 50, 55),
        ("color", "method", Some("Suit"), 54, 54),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, PHP);

    let greet = find(&symbols, "greet");
    assert_eq!(
        greet.doc.as_deref(),
        Some("Greets someone.\n\n@param string $name who")
    );
    assert_eq!(greet.signature, "function greet(string $name): string");
    let user = find(&symbols, "User");
    assert_eq!(user.doc.as_deref(), Some("A user of the app."));
    assert_eq!(
        user.signature,
        "#[Entity] final class User extends Model implements JsonSerializable"
    );
    let table = find(&symbols, "TABLE");
    assert_eq!(table.doc.as_deref(), Some("Table name."));
    assert_eq!(table.signature, "public const TABLE = 'users', OTHER = 2");
    let construct = find(&symbols, "__construct");
    assert_eq!(construct.doc.as_deref(), Some("Creates a user."));
    assert_eq!(
        construct.signature,
        "public function __construct(private string $name)"
    );
    let find_one = find(&symbols, "find");
    assert_eq!(find_one.doc.as_deref(), Some("Finds one."));
    assert_eq!(
        find_one.signature,
        "public static function find(int $id): ?static"
    );
    assert_eq!(
        find(&symbols, "area").signature,
        "public function area(): float"
    );
    assert_eq!(find(&symbols, "Suit").signature, "enum Suit: string");

    // A braced namespace holds what it declares.
    let braced = "<?php\nnamespace App {\n    const VERSION = '1';\n    function boot() {}\n}\n";
    let symbols = extract(Language::Php, "boot.php", braced);
    assert_eq!(
        outline(&symbols),
        vec![
            ("App", "module", None, 2, 5),
            ("VERSION", "constant", Some("App"), 3, 3),
            ("boot", "function", Some("App"), 4, 4),
        ]
    );
}

const CSHARP: &str = r#"using System;
using System.Collections.Generic;

namespace Bank.Accounts
{
    /// <summary>
    /// A bank account, owned by <see cref="Owner"/>.
    /// </summary>
    /// <remarks>Not thread-safe.</remarks>
    [Serializable]
    [DebuggerDisplay("{Owner}")]
    public sealed class Account : IAccount
    {
        /// <summary>The most one deposit may add.</summary>
        public const decimal Limit = 10_000m, Floor = 0m;

        private decimal balance;

        /// <summary>Opens an account for <paramref name="owner"/>.</summary>
        public Account(string owner)
        {
            Owner = owner;
        }

        /// <summary>The owner's name.</summary>
        public string Owner { get; private set; }

        public decimal Balance => balance;

        /// <summary>Deposits money.</summary>
        /// <param name="amount">How much, at most <see cref="Limit"/>.</param>
        /// <returns>The new balance.</returns>
        /// <exception cref="ArgumentOutOfRangeException">Above the limit.</exception>
        [MethodImpl(MethodImplOptions.Synchronized)]
        public decimal Deposit(decimal amount)
        {
            if (amount > Limit) throw new ArgumentOutOfRangeException(nameof(amount));
            return balance += amount;
        }

        public IEnumerable<T> History<T>(int last) where T : Entry
        {
            yield break;
        }

        // Snapshots for the audit log.
        public class Snapshot
        {
            internal void Write() { }
        }
    }

    /// <summary>Called on every change.</summary>
    public delegate void ChangedHandler(object sender, EventArgs e);

    public interface IAccount
    {
        decimal Deposit(decimal amount);
        string Owner { get; }
    }

    public record Entry(DateTime At, decimal Amount)
    {
        public bool IsCredit => Amount > 0;
    }

    public readonly record struct Money(decimal Amount, string Currency);

    public struct Range { public int Low, High; }

    /// <summary>Kinds of account.</summary>
    public enum Kind
    {
        Checking,
        Savings,
    }
}
"#;

#[test]
fn csharp_fixture() {
    let symbols = extract(Language::CSharp, "Account.cs", CSHARP);
    let expected: Vec<Row<'_>> = vec![
        ("Bank.Accounts", "module", None, 4, 77),
        ("Account", "class", Some("Bank.Accounts"), 10, 51),
        ("Limit", "constant", Some("Account"), 15, 15),
        ("Account", "method", Some("Account"), 20, 23),
        ("Owner", "method", Some("Account"), 26, 26),
        ("Balance", "method", Some("Account"), 28, 28),
        ("Deposit", "method", Some("Account"), 34, 39),
        ("History", "method", Some("Account"), 41, 44),
        ("Snapshot", "class", Some("Account"), 47, 50),
        ("Write", "method", Some("Snapshot"), 49, 49),
        ("ChangedHandler", "type", Some("Bank.Accounts"), 54, 54),
        ("IAccount", "interface", Some("Bank.Accounts"), 56, 60),
        ("Deposit", "method", Some("IAccount"), 58, 58),
        ("Owner", "method", Some("IAccount"), 59, 59),
        ("Entry", "class", Some("Bank.Accounts"), 62, 65),
        ("IsCredit", "method", Some("Entry"), 64, 64),
        ("Money", "struct", Some("Bank.Accounts"), 67, 67),
        ("Range", "struct", Some("Bank.Accounts"), 69, 69),
        ("Kind", "enum", Some("Bank.Accounts"), 72, 76),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, CSHARP);

    assert_eq!(symbols[0].signature, "namespace Bank.Accounts");
    let account = &symbols[1];
    assert_eq!(
        account.doc.as_deref(),
        Some("A bank account, owned by Owner.\nNot thread-safe.")
    );
    // Attributes are part of the declaration.
    assert_eq!(
        account.signature,
        "[Serializable] [DebuggerDisplay(\"{Owner}\")] public sealed class Account : IAccount"
    );
    assert_eq!(
        symbols[2].doc.as_deref(),
        Some("The most one deposit may add.")
    );
    assert_eq!(
        symbols[2].signature,
        "public const decimal Limit = 10_000m, Floor = 0m"
    );
    assert_eq!(
        symbols[3].doc.as_deref(),
        Some("Opens an account for owner.")
    );
    assert_eq!(symbols[3].signature, "public Account(string owner)");
    assert_eq!(symbols[4].doc.as_deref(), Some("The owner's name."));
    assert_eq!(symbols[4].signature, "public string Owner");
    assert_eq!(symbols[5].signature, "public decimal Balance");
    let deposit = &symbols[6];
    assert_eq!(
        deposit.doc.as_deref(),
        Some(
            "Deposits money.\namount: How much, at most Limit.\nReturns: The new balance.\n\
             ArgumentOutOfRangeException: Above the limit."
        )
    );
    assert_eq!(
        deposit.signature,
        "[MethodImpl(MethodImplOptions.Synchronized)] public decimal Deposit(decimal amount)"
    );
    assert_eq!(
        symbols[7].signature,
        "public IEnumerable<T> History<T>(int last) where T : Entry"
    );
    // A plain `//` comment above a definition is its doc too, as in the other C-like languages.
    assert_eq!(
        symbols[8].doc.as_deref(),
        Some("Snapshots for the audit log.")
    );
    assert_eq!(symbols[10].doc.as_deref(), Some("Called on every change."));
    assert_eq!(
        symbols[10].signature,
        "public delegate void ChangedHandler(object sender, EventArgs e)"
    );
    assert_eq!(symbols[12].signature, "decimal Deposit(decimal amount)");
    assert_eq!(symbols[13].signature, "string Owner");
    assert_eq!(
        symbols[14].signature,
        "public record Entry(DateTime At, decimal Amount)"
    );
    assert_eq!(
        symbols[16].signature,
        "public readonly record struct Money(decimal Amount, string Currency)"
    );
    assert_eq!(symbols[18].doc.as_deref(), Some("Kinds of account."));

    // A file-scoped namespace holds the rest of its file. One that holds only a class is its
    // container, not a symbol of its own (its chunk would repeat the class).
    let file_scoped = "namespace Bank.Ledger;\n\n/// Records entries.\npublic static class Ledger\n{\n    public static void Add<T>(T entry) where T : class\n    {\n        int Local() => 1;\n    }\n}\n";
    let symbols = extract(Language::CSharp, "Ledger.cs", file_scoped);
    assert_eq!(
        outline(&symbols),
        vec![
            ("Ledger", "class", Some("Bank.Ledger"), 4, 10),
            ("Add", "method", Some("Ledger"), 6, 9),
        ]
    );
    assert_eq!(symbols[0].doc.as_deref(), Some("Records entries."));
    assert_texts_match_lines(&symbols, file_scoped);
    let with_using = file_scoped.replace("\n\n///", "\nusing System;\n///");
    let symbols = extract(Language::CSharp, "Ledger.cs", &with_using);
    assert_eq!(outline(&symbols)[0], ("Bank.Ledger", "module", None, 1, 10));
    assert_eq!(symbols[0].signature, "namespace Bank.Ledger");

    // A top-level program (C# 9) has no definitions: it stays searchable as windows.
    let program = "using System;\n\nConsole.WriteLine(\"hi\");\n";
    let symbols = extract(Language::CSharp, "Program.cs", program);
    assert_eq!(
        outline(&symbols),
        vec![("Program.cs", "section", None, 1, 3)]
    );
}

const BASH: &str = r#"#!/usr/bin/env bash
# Installs the tool into a prefix.
set -euo pipefail

# Prints a message to stderr.
# Usage: log LEVEL MESSAGE...
log() {
  local level=$1; shift
  printf '[%s] %s\n' "$level" "$*" >&2
}

function die {
  log error "$@"
  exit 1
}

## Copies the binary; cleans up on failure.
function install_binary() {
  local prefix=$1
  cleanup() { rm -f "$prefix/bin/tool.tmp"; }
  trap cleanup ERR
  cp tool "$prefix/bin/tool.tmp" && mv "$prefix/bin/tool.tmp" "$prefix/bin/tool"
}

x=1 # not a doc
lib::parse-args() (
  getopts "p:" opt
)

main() {
  install_binary "${PREFIX:-/usr/local}"
}

main "$@"
"#;

#[test]
fn bash_fixture() {
    let symbols = extract(Language::Bash, "install.sh", BASH);
    let expected: Vec<Row<'_>> = vec![
        ("log", "function", None, 7, 10),
        ("die", "function", None, 12, 15),
        ("install_binary", "function", None, 18, 23),
        ("lib::parse-args", "function", None, 26, 28),
        ("main", "function", None, 30, 32),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, BASH);

    let log = find(&symbols, "log");
    assert_eq!(
        log.doc.as_deref(),
        Some("Prints a message to stderr.\nUsage: log LEVEL MESSAGE...")
    );
    assert_eq!(log.signature, "log()");
    assert_eq!(find(&symbols, "die").doc, None);
    assert_eq!(find(&symbols, "die").signature, "function die");
    let install = find(&symbols, "install_binary");
    assert_eq!(
        install.doc.as_deref(),
        Some("Copies the binary; cleans up on failure.")
    );
    assert_eq!(install.signature, "function install_binary()");
    // A comment trailing code on the line above documents that code.
    assert_eq!(find(&symbols, "lib::parse-args").doc, None);
    assert_eq!(
        find(&symbols, "lib::parse-args").signature,
        "lib::parse-args()"
    );

    // A shebang is not a doc, even right above a function.
    let symbols = extract(Language::Bash, "run.sh", "#!/bin/sh\nrun() { :; }\n");
    assert_eq!(outline(&symbols), vec![("run", "function", None, 2, 2)]);
    assert_eq!(symbols[0].doc, None);
}

const BATS: &str = r#"#!/usr/bin/env bats

load test_helper

setup() {
  PREFIX="$BATS_TEST_TMPDIR"
}

# The happy path.
@test "install copies the binary" {
  run ./install.sh
  [ "$status" -eq 0 ]
  { echo a; echo b; } > out
  cat <<EOT
}
EOT
}

@test 'fails without a prefix' { run env -u PREFIX ./install.sh; [ "$status" -ne 0 ]; }

@test "never closed" {
  run true
"#;

#[test]
fn bats_tests_are_functions_named_by_their_string() {
    let symbols = extract(Language::Bash, "install.bats", BATS);
    let expected: Vec<Row<'_>> = vec![
        ("setup", "function", None, 5, 7),
        ("install copies the binary", "function", None, 10, 17),
        ("fails without a prefix", "function", None, 19, 19),
        ("never closed", "function", None, 21, 22),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, BATS);
    let test = find(&symbols, "install copies the binary");
    assert_eq!(test.doc.as_deref(), Some("The happy path."));
    assert_eq!(test.signature, "@test \"install copies the binary\"");
}

const KOTLIN: &str = r#"package com.example.bank

import kotlin.math.max

/**
 * A bank account.
 *
 * @property owner who owns it.
 */
@Serializable
data class Account(
    val owner: String,
    private var balance: Long = 0,
) : Holder, Comparable<Account> {
    /** Deposits [amount], at most [LIMIT]. */
    @Synchronized
    override fun deposit(amount: Long): Long {
        balance += max(amount, 0)
        return balance
    }

    /** Whether nothing is left. */
    val isEmpty: Boolean
        get() = balance == 0L

    val history = mutableListOf<Long>()

    constructor(owner: String, initial: Int) : this(owner, initial.toLong())

    companion object {
        /** The most one deposit may add. */
        const val LIMIT = 10_000L

        fun open(owner: String) = Account(owner)
    }

    // Snapshots for the audit log.
    inner class Snapshot {
        fun write() {}
    }
}

interface Holder {
    fun deposit(amount: Long): Long
}

enum class Kind(val code: Int) {
    CHECKING(1),
    SAVINGS(2);

    fun label(): String = name.lowercase()
}

object Registry {
    private val accounts = mutableListOf<Account>()

    fun register(account: Account) {
        fun local() {}
        accounts += account
    }
}

sealed interface Event

typealias Handler = (Event) -> Unit

/** The second element, or [default]. */
fun <T> List<T>.secondOr(default: T): T = getOrNull(1) ?: default

fun String?.orBlank(): String = this ?: ""

suspend fun `deposits are summed`() {}

val topLevel = 1
"#;

#[test]
fn kotlin_fixture() {
    let symbols = extract(Language::Kotlin, "Account.kt", KOTLIN);
    let expected: Vec<Row<'_>> = vec![
        ("Account", "class", None, 10, 41),
        ("deposit", "method", Some("Account"), 16, 20),
        ("isEmpty", "method", Some("Account"), 23, 24),
        ("constructor", "method", Some("Account"), 28, 28),
        // A companion object's members are called through the class.
        ("LIMIT", "constant", Some("Account"), 32, 32),
        ("open", "method", Some("Account"), 34, 34),
        ("Snapshot", "class", Some("Account"), 38, 40),
        ("write", "method", Some("Snapshot"), 39, 39),
        ("Holder", "interface", None, 43, 45),
        ("deposit", "method", Some("Holder"), 44, 44),
        ("Kind", "enum", None, 47, 52),
        ("label", "method", Some("Kind"), 51, 51),
        ("Registry", "class", None, 54, 61),
        ("register", "method", Some("Registry"), 57, 60),
        ("Event", "interface", None, 63, 63),
        ("Handler", "type", None, 65, 65),
        // Extension functions sit in their receiver type.
        ("secondOr", "method", Some("List"), 68, 68),
        ("orBlank", "method", Some("String"), 70, 70),
        ("deposits are summed", "function", None, 72, 72),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, KOTLIN);

    let account = find(&symbols, "Account");
    assert_eq!(
        account.doc.as_deref(),
        Some("A bank account.\n\n@property owner who owns it.")
    );
    // Annotations are part of the declaration; the primary constructor is signature.
    assert_eq!(
        account.signature,
        "@Serializable data class Account( val owner: String, private var balance: Long = 0, ) \
         : Holder, Comparable<Account>"
    );
    let deposit = &symbols[1];
    assert_eq!(
        deposit.doc.as_deref(),
        Some("Deposits [amount], at most [LIMIT].")
    );
    assert_eq!(
        deposit.signature,
        "@Synchronized override fun deposit(amount: Long): Long"
    );
    assert_eq!(symbols[2].doc.as_deref(), Some("Whether nothing is left."));
    assert_eq!(symbols[2].signature, "val isEmpty: Boolean");
    assert_eq!(
        symbols[3].signature,
        "constructor(owner: String, initial: Int) : this(owner, initial.toLong())"
    );
    assert_eq!(
        symbols[4].doc.as_deref(),
        Some("The most one deposit may add.")
    );
    assert_eq!(symbols[4].signature, "const val LIMIT = 10_000L");
    assert_eq!(symbols[5].signature, "fun open(owner: String)");
    assert_eq!(
        symbols[6].doc.as_deref(),
        Some("Snapshots for the audit log.")
    );
    assert_eq!(symbols[6].signature, "inner class Snapshot");
    // Without a body the whole declaration is the signature.
    assert_eq!(symbols[9].signature, "fun deposit(amount: Long): Long");
    assert_eq!(symbols[10].signature, "enum class Kind(val code: Int)");
    assert_eq!(symbols[11].signature, "fun label(): String");
    assert_eq!(symbols[14].signature, "sealed interface Event");
    assert_eq!(symbols[15].signature, "typealias Handler = (Event) -> Unit");
    assert_eq!(
        symbols[16].doc.as_deref(),
        Some("The second element, or [default].")
    );
    assert_eq!(
        symbols[16].signature,
        "fun <T> List<T>.secondOr(default: T): T"
    );
    assert_eq!(symbols[17].signature, "fun String?.orBlank(): String");
    assert_eq!(symbols[18].signature, "suspend fun `deposits are summed`()");

    // Annotations above a multi-line declaration without a body stay in its signature.
    let abstract_fun = "abstract class Store {\n    @Throws(IOException::class)\n    abstract fun read(\n        key: String,\n    ): ByteArray\n}\n";
    let symbols = extract(Language::Kotlin, "Store.kt", abstract_fun);
    assert_eq!(
        outline(&symbols),
        vec![
            ("Store", "class", None, 1, 6),
            ("read", "method", Some("Store"), 2, 5),
        ]
    );
    assert_eq!(
        symbols[1].signature,
        "@Throws(IOException::class) abstract fun read( key: String, ): ByteArray"
    );

    // Extension properties sit in their receiver type; an interface's properties are its API.
    let properties = "/** Hex of the hash code. */\ninternal expect val Any.hexAddress: String\n\nval String?.size: Int\n    get() = this?.length ?: 0\n\ninterface Job {\n    /** Whether it runs. */\n    val isActive: Boolean\n}\n";
    let symbols = extract(Language::Kotlin, "Job.kt", properties);
    assert_eq!(
        outline(&symbols),
        vec![
            ("hexAddress", "method", Some("Any"), 2, 2),
            ("size", "method", Some("String"), 4, 5),
            ("Job", "interface", None, 7, 10),
            ("isActive", "method", Some("Job"), 9, 9),
        ]
    );
    assert_eq!(symbols[0].doc.as_deref(), Some("Hex of the hash code."));
    assert_eq!(
        symbols[0].signature,
        "internal expect val Any.hexAddress: String"
    );
    assert_eq!(symbols[1].signature, "val String?.size: Int");
    assert_eq!(symbols[3].doc.as_deref(), Some("Whether it runs."));
    assert_eq!(symbols[3].signature, "val isActive: Boolean");

    // A build script of calls has no definitions: it stays searchable as windows.
    let script =
        "plugins {\n    kotlin(\"jvm\")\n}\n\ndependencies {\n    implementation(libs.okio)\n}\n";
    let symbols = extract(Language::Kotlin, "build.gradle.kts", script);
    assert_eq!(
        outline(&symbols),
        vec![("build.gradle.kts", "section", None, 1, 7)]
    );
}

const SWIFT: &str = r#"import Foundation

/// A bank account.
///
/// - Parameter owner: who owns it.
@MainActor
public final class Account: Holder {
    /// The most one deposit may add.
    public static let limit = 10_000

    private var balance: Int = 0

    public let owner: String

    /// Whether nothing is left.
    var isEmpty: Bool {
        balance == 0
    }

    /** Opens an account. */
    public init?(owner: String) {
        self.owner = owner
    }

    deinit {}

    // MARK: - Money

    /// Deposits money.
    /// - Returns: the new balance.
    @discardableResult
    public func deposit(_ amount: Int) throws -> Int {
        balance += amount
        return balance
    }

    subscript(index: Int) -> Int { balance }

    static func + (lhs: Account, rhs: Account) -> Int { 0 }

    // Snapshots for the audit log.
    struct Snapshot {
        func write() {}
    }
}

protocol Holder: AnyObject {
    associatedtype Item
    /// Who owns it.
    var owner: String { get }
    func deposit(_ amount: Int) throws -> Int
}

enum Kind: String, CaseIterable {
    case checking, savings
    func label() -> String { rawValue }
}

extension Account: Equatable where Self: AnyObject {
    func `default`() -> Account { self }
}

actor Ledger {
    func add(_ entry: Int) async {}
}

typealias Handler = (Int) -> Void

func largest<T: Comparable>(_ items: [T]) -> T? where T: Hashable {
    items.max()
}

let version = "1.0"
var counter = 0
"#;

#[test]
fn swift_fixture() {
    let symbols = extract(Language::Swift, "Account.swift", SWIFT);
    let expected: Vec<Row<'_>> = vec![
        ("Account", "class", None, 6, 45),
        ("limit", "constant", Some("Account"), 9, 9),
        ("isEmpty", "method", Some("Account"), 16, 18),
        ("init", "method", Some("Account"), 21, 23),
        ("deposit", "method", Some("Account"), 31, 35),
        ("subscript", "method", Some("Account"), 37, 37),
        ("Snapshot", "struct", Some("Account"), 42, 44),
        ("write", "method", Some("Snapshot"), 43, 43),
        ("Holder", "interface", None, 47, 52),
        ("owner", "method", Some("Holder"), 50, 50),
        ("deposit", "method", Some("Holder"), 51, 51),
        ("Kind", "enum", None, 54, 57),
        ("label", "method", Some("Kind"), 56, 56),
        // An extension is an impl of the type it extends.
        ("Account", "impl", None, 59, 61),
        ("default", "method", Some("Account"), 60, 60),
        ("Ledger", "class", None, 63, 65),
        ("add", "method", Some("Ledger"), 64, 64),
        ("Handler", "type", None, 67, 67),
        ("largest", "function", None, 69, 71),
        ("version", "constant", None, 73, 73),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, SWIFT);

    let account = &symbols[0];
    assert_eq!(
        account.doc.as_deref(),
        Some("A bank account.\n\n- Parameter owner: who owns it.")
    );
    // Attributes are part of the declaration.
    assert_eq!(
        account.signature,
        "@MainActor public final class Account: Holder"
    );
    assert_eq!(
        symbols[1].doc.as_deref(),
        Some("The most one deposit may add.")
    );
    assert_eq!(symbols[1].signature, "public static let limit = 10_000");
    assert_eq!(symbols[2].doc.as_deref(), Some("Whether nothing is left."));
    assert_eq!(symbols[2].signature, "var isEmpty: Bool");
    assert_eq!(symbols[3].doc.as_deref(), Some("Opens an account."));
    assert_eq!(symbols[3].signature, "public init?(owner: String)");
    let deposit = &symbols[4];
    assert_eq!(
        deposit.doc.as_deref(),
        Some("Deposits money.\n- Returns: the new balance.")
    );
    assert_eq!(
        deposit.signature,
        "@discardableResult public func deposit(_ amount: Int) throws -> Int"
    );
    assert_eq!(symbols[5].signature, "subscript(index: Int) -> Int");
    assert_eq!(
        symbols[6].doc.as_deref(),
        Some("Snapshots for the audit log.")
    );
    assert_eq!(symbols[6].signature, "struct Snapshot");
    assert_eq!(symbols[8].signature, "protocol Holder: AnyObject");
    assert_eq!(symbols[9].doc.as_deref(), Some("Who owns it."));
    // Requirements have no body: the whole declaration is the signature.
    assert_eq!(symbols[9].signature, "var owner: String { get }");
    assert_eq!(
        symbols[10].signature,
        "func deposit(_ amount: Int) throws -> Int"
    );
    assert_eq!(symbols[11].signature, "enum Kind: String, CaseIterable");
    assert_eq!(
        symbols[13].signature,
        "extension Account: Equatable where Self: AnyObject"
    );
    assert_eq!(symbols[14].signature, "func `default`() -> Account");
    assert_eq!(symbols[15].signature, "actor Ledger");
    assert_eq!(symbols[16].signature, "func add(_ entry: Int) async");
    assert_eq!(symbols[17].signature, "typealias Handler = (Int) -> Void");
    assert_eq!(
        symbols[18].signature,
        "func largest<T: Comparable>(_ items: [T]) -> T? where T: Hashable"
    );
    assert_eq!(symbols[19].signature, "let version = \"1.0\"");

    // A `// MARK:` line heads a section: it is no one's doc, nor are the comments above it.
    let marked = "struct Store {\n    /// Loads.\n    // MARK: - Loading\n    func load() {}\n}\n\n/// Macros are symbols too.\n@freestanding(expression)\npublic macro stringify<T>(_ value: T) -> (T, String) = #externalMacro(module: \"M\", type: \"S\")\n";
    let symbols = extract(Language::Swift, "Store.swift", marked);
    assert_eq!(
        outline(&symbols),
        vec![
            ("Store", "struct", None, 1, 5),
            ("load", "method", Some("Store"), 4, 4),
            ("stringify", "macro", None, 8, 9),
        ]
    );
    assert_eq!(symbols[1].doc, None);
    assert_eq!(symbols[2].doc.as_deref(), Some("Macros are symbols too."));

    // A package manifest is its `package` constant.
    let manifest = "// swift-tools-version:5.9\nimport PackageDescription\n\nlet package = Package(\n    name: \"Bank\"\n)\n";
    let symbols = extract(Language::Swift, "Package.swift", manifest);
    assert_eq!(outline(&symbols), vec![("package", "constant", None, 4, 6)]);
}

const ELIXIR: &str = r#"defmodule Bank.Account do
  @moduledoc """
  Accounts hold money.

  Use `open/1` to start one.
  """

  defstruct [:owner, balance: 0]

  @typedoc "An account."
  @type t :: %__MODULE__{}

  @doc "Opens an account."
  @doc since: "1.2.0"
  @spec open(String.t()) :: t
  def open(owner) when is_binary(owner) do
    %__MODULE__{owner: owner}
  end

  @doc """
  Deposits money.

      iex> deposit(acc, 5)
  """
  def deposit(acc, 0), do: acc

  def deposit(acc, amount) do
    %{acc | balance: acc.balance + amount}
  end

  # Whether nothing is left.
  def empty?(%__MODULE__{balance: balance}), do: balance == 0

  @doc false
  def close!(acc), do: acc

  defp check(acc), do: acc

  @doc ~S"""
  Guards a positive amount.
  """
  defguard is_positive(amount) when amount > 0

  defmacro audit(expr) do
    quote do
      def audited, do: unquote(expr)
    end
  end

  defdelegate fetch(acc, key), to: Map

  def zero, do: 0

  defmodule Ledger do
    @moduledoc false
    @impl true
    def handle_call(:get, _from, state), do: {:reply, state, state}
    @impl true
    def handle_call(:clear, _from, _state), do: {:reply, :ok, []}
  end
end

defprotocol Bank.Size do
  @moduledoc "Sizes of things."
  @doc "The size."
  def size(data)
end

defimpl Bank.Size, for: Bank.Account do
  def size(_account), do: 1
end

defmodule Bank.InsufficientFunds do
  defexception message: "insufficient funds"
end
"#;

#[test]
fn elixir_fixture() {
    let symbols = extract(Language::Elixir, "lib/bank/account.ex", ELIXIR);
    let expected: Vec<Row<'_>> = vec![
        // A dotted module name is its last part in the rest.
        ("Account", "module", Some("Bank"), 1, 61),
        // `defstruct` defines the struct of its module.
        ("Account", "struct", Some("Bank"), 8, 8),
        // `@doc since:` is metadata; `@spec` opens the range.
        ("open", "function", Some("Account"), 15, 18),
        // Adjacent clauses of one function are one symbol.
        ("deposit", "function", Some("Account"), 25, 29),
        ("empty?", "function", Some("Account"), 32, 32),
        ("close!", "function", Some("Account"), 35, 35),
        ("check", "function", Some("Account"), 37, 37),
        ("is_positive", "macro", Some("Account"), 42, 42),
        // The `def` it quotes is the macro's text, no symbol.
        ("audit", "macro", Some("Account"), 44, 48),
        ("fetch", "function", Some("Account"), 50, 50),
        ("zero", "function", Some("Account"), 52, 52),
        ("Ledger", "module", Some("Account"), 54, 60),
        // Clauses with `@impl true` between them are one function too.
        ("handle_call", "function", Some("Ledger"), 56, 59),
        ("Size", "interface", Some("Bank"), 63, 67),
        ("size", "method", Some("Size"), 66, 66),
        // `defimpl Proto, for: Type` is an impl of the type.
        ("Account", "impl", Some("Bank"), 69, 71),
        ("size", "method", Some("Account"), 70, 70),
        ("InsufficientFunds", "module", Some("Bank"), 73, 75),
        ("InsufficientFunds", "struct", Some("Bank"), 74, 74),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, ELIXIR);

    assert_eq!(
        symbols[0].doc.as_deref(),
        Some("Accounts hold money.\n\nUse `open/1` to start one.")
    );
    assert_eq!(symbols[0].signature, "defmodule Bank.Account");
    assert_eq!(symbols[1].signature, "defstruct [:owner, balance: 0]");
    let open = &symbols[2];
    assert_eq!(open.doc.as_deref(), Some("Opens an account."));
    assert_eq!(
        open.signature,
        "@spec open(String.t()) :: t def open(owner) when is_binary(owner)"
    );
    let deposit = &symbols[3];
    // Heredocs lose their indentation, an example keeps its own.
    assert_eq!(
        deposit.doc.as_deref(),
        Some("Deposits money.\n\n    iex> deposit(acc, 5)")
    );
    // A one-line clause's signature ends before `do:`.
    assert_eq!(deposit.signature, "def deposit(acc, 0)");
    assert!(deposit.text.contains("acc.balance + amount"));
    // `#` lines above are the doc when there is no `@doc`; `@doc false` hides a function.
    assert_eq!(symbols[4].doc.as_deref(), Some("Whether nothing is left."));
    assert_eq!(symbols[5].doc, None);
    assert_eq!(symbols[6].signature, "defp check(acc)");
    assert_eq!(symbols[7].doc.as_deref(), Some("Guards a positive amount."));
    assert_eq!(
        symbols[7].signature,
        "defguard is_positive(amount) when amount > 0"
    );
    assert_eq!(symbols[8].signature, "defmacro audit(expr)");
    assert_eq!(symbols[9].signature, "defdelegate fetch(acc, key), to: Map");
    assert_eq!(symbols[10].signature, "def zero");
    // `@moduledoc false` hides a module.
    assert_eq!(symbols[11].doc, None);
    assert_eq!(
        symbols[12].signature,
        "@impl true def handle_call(:get, _from, state)"
    );
    assert_eq!(symbols[13].doc.as_deref(), Some("Sizes of things."));
    assert_eq!(symbols[14].doc.as_deref(), Some("The size."));
    assert_eq!(symbols[14].signature, "def size(data)");
    assert_eq!(
        symbols[15].signature,
        "defimpl Bank.Size, for: Bank.Account"
    );

    // ExUnit: tests are functions named by their string; `describe` is no symbol.
    let test = r#"defmodule Bank.AccountTest do
  use ExUnit.Case, async: true

  describe "deposit/2" do
    @tag :slow
    test "adds money" do
      assert 1 == 1
    end

    test "adds money" do
      assert 2 == 2
    end
  end

  defp account, do: %{}
end
"#;
    let symbols = extract(Language::Elixir, "test/bank/account_test.exs", test);
    assert_eq!(
        outline(&symbols),
        vec![
            ("AccountTest", "module", Some("Bank"), 1, 16),
            ("adds money", "function", Some("AccountTest"), 5, 8),
            ("adds money", "function", Some("AccountTest"), 10, 12),
            ("account", "function", Some("AccountTest"), 15, 15),
        ]
    );
    assert_texts_match_lines(&symbols, test);

    // A script without definitions stays windows.
    let script = "Mix.install([:jason])\n\nIO.puts(\"hello\")\n";
    let symbols = extract(Language::Elixir, "run.exs", script);
    assert_eq!(outline(&symbols), vec![("run.exs", "section", None, 1, 3)]);
}

const ZIG: &str = r#"//! A bounded queue of jobs for the scheduler.
//! Jobs run in the order they were pushed.

const std = @import("std");
const Allocator = std.mem.Allocator;

/// Largest number of jobs a queue holds.
pub const max_jobs: usize = 64;

/// Why a queue refused a job.
pub const QueueError = error{ Full, Closed };

/// A job's priority.
pub const Priority = enum(u8) {
    low,
    high,

    /// Whether jobs of this priority may preempt others.
    pub fn preempts(self: Priority) bool {
        return self == .high;
    }
};

/// A first-in, first-out queue of jobs.
///
/// Not thread-safe.
pub const Queue = struct {
    const Self = @This();

    jobs: [max_jobs]u32 = undefined,
    len: usize = 0,
    closed: bool = false,

    /// Appends a job, or fails when the queue is full.
    pub fn push(self: *Self, job: u32) QueueError!void {
        if (self.closed) return error.Closed;
        if (self.len == max_jobs) return error.Full;
        self.jobs[self.len] = job;
        self.len += 1;
    }

    // Internal: callers use `pop`.
    fn shift(self: *Self) void {
        std.mem.copyForwards(u32, self.jobs[0 .. self.len - 1], self.jobs[1..self.len]);
        self.len -= 1;
    }

    pub fn pop(self: *Self) ?u32 {
        if (self.len == 0) return null;
        const job = self.jobs[0];
        self.shift();
        return job;
    }
};

/// A queue that owns its storage.
pub fn Pool(comptime T: type) type {
    return struct {
        items: []T,
        allocator: Allocator,

        pub fn deinit(self: @This()) void {
            self.allocator.free(self.items);
        }
    };
}

export fn queue_len(queue: *const Queue) usize {
    return queue.len;
}

extern "c" fn sched_yield() c_int;

test "pop returns the pushed job" {
    var queue = Queue{};
    try queue.push(7);
    try std.testing.expectEqual(@as(?u32, 7), queue.pop());
}

test Priority {
    try std.testing.expect(Priority.high.preempts());
}
"#;

#[test]
fn zig_fixture() {
    let mut extractor = SymbolExtractor::new();
    let symbols = match extractor.extract_file(Language::Zig, "src/queue.zig", ZIG) {
        Ok(symbols) => symbols,
        Err(error) => panic!("{error}"),
    };
    let expected: Vec<Row<'_>> = vec![
        // The `//!` lines are the file's header.
        ("queue", "module", None, 1, 2),
        // Imports, `@This()` and aliases are no symbols; other constants are.
        ("max_jobs", "constant", None, 8, 8),
        // An error set is an enum.
        ("QueueError", "enum", None, 11, 11),
        ("Priority", "enum", None, 14, 22),
        ("preempts", "method", Some("Priority"), 19, 21),
        // `const Queue = struct { … };` is the struct `Queue`; its functions are methods.
        ("Queue", "struct", None, 27, 54),
        ("push", "method", Some("Queue"), 35, 40),
        ("shift", "method", Some("Queue"), 43, 46),
        ("pop", "method", Some("Queue"), 48, 53),
        // A function that returns a struct is that generic type.
        ("Pool", "struct", None, 57, 66),
        ("deinit", "method", Some("Pool"), 62, 64),
        ("queue_len", "function", None, 68, 70),
        ("sched_yield", "function", None, 72, 72),
        // Tests are named by their string, or by the declaration they test, in `test`.
        (
            "pop returns the pushed job",
            "function",
            Some("test"),
            74,
            78,
        ),
        ("Priority", "function", Some("test"), 80, 82),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols[1..], ZIG);

    assert_eq!(
        symbols[0].doc.as_deref(),
        Some("A bounded queue of jobs for the scheduler.\nJobs run in the order they were pushed.")
    );
    let find_in = |name: &str, container: Option<&str>| match symbols
        .iter()
        .find(|s| s.name == name && s.container.as_deref() == container)
    {
        Some(symbol) => symbol,
        None => panic!("no {name} in {container:?}"),
    };
    assert_eq!(
        find_in("max_jobs", None).doc.as_deref(),
        Some("Largest number of jobs a queue holds.")
    );
    assert_eq!(
        find_in("max_jobs", None).signature,
        "pub const max_jobs: usize = 64"
    );
    assert_eq!(
        find_in("QueueError", None).signature,
        "pub const QueueError = error{ Full, Closed }"
    );
    assert_eq!(
        find_in("Priority", None).signature,
        "pub const Priority = enum(u8)"
    );
    assert_eq!(
        find_in("preempts", Some("Priority")).doc.as_deref(),
        Some("Whether jobs of this priority may preempt others.")
    );
    let queue = find_in("Queue", None);
    assert_eq!(
        queue.doc.as_deref(),
        Some("A first-in, first-out queue of jobs.\n\nNot thread-safe.")
    );
    assert_eq!(queue.signature, "pub const Queue = struct");
    let push = find_in("push", Some("Queue"));
    assert_eq!(
        push.doc.as_deref(),
        Some("Appends a job, or fails when the queue is full.")
    );
    assert_eq!(
        push.signature,
        "pub fn push(self: *Self, job: u32) QueueError!void"
    );
    // A plain `//` comment is a note, not a doc.
    assert_eq!(find_in("shift", Some("Queue")).doc, None);
    assert_eq!(find_in("pop", Some("Queue")).doc, None);
    let pool = find_in("Pool", None);
    assert_eq!(pool.doc.as_deref(), Some("A queue that owns its storage."));
    assert_eq!(pool.signature, "pub fn Pool(comptime T: type) type");
    assert_eq!(
        find_in("queue_len", None).signature,
        "export fn queue_len(queue: *const Queue) usize"
    );
    assert_eq!(
        find_in("sched_yield", None).signature,
        "extern \"c\" fn sched_yield() c_int"
    );
    assert_eq!(
        find_in("pop returns the pushed job", Some("test")).signature,
        "test \"pop returns the pushed job\""
    );
    assert_eq!(find_in("Priority", Some("test")).signature, "test Priority");

    // A file of imports and a nameless test only stays windows.
    let root =
        "const std = @import(\"std\");\n\ntest {\n    std.testing.refAllDecls(@This());\n}\n";
    let symbols = extract(Language::Zig, "root.zig", root);
    assert_eq!(outline(&symbols), vec![("root.zig", "section", None, 1, 5)]);
}

const SCALA: &str = r##"package org.example.json

import scala.annotation.tailrec

/** A difference between two values.
 * @param changed what changed
 */
case class Diff(changed: JValue, added: JValue) {
  def map(f: JValue => JValue): Diff =
    Diff(f(changed), f(added))
}

/** Functions to merge two documents. */
object Merge {
  /** Return the merged value. */
  @tailrec
  def merge(a: JValue, b: JValue): JValue = (a, b) match {
    case (x, JNothing) => x
    case (_, y) => y
  }

  private[json] def mergeFields(vs: List[JField]): List[JField] = vs

  implicit val ordering: Ordering[JField] =
    new Ordering[JField] {
      def compare(a: JField, b: JField) = a._1 compare b._1
    }

  val limit = 10
}

trait Parser[J] {
  // Characters of the input.
  def at(i: Int): Char
  val parseAll: String => J = s => parse(s, 0)
}

case object Empty extends JValue

sealed abstract class JValue

type Field = (String, JValue)

enum Color:
  case Red, Green

  def hex: String = "#ff0000"

class Renderer(width: Int):
  /** Renders one value. */
  def render(v: JValue): String =
    v.toString

  // The indentation of nested values.
  def indent: Int = 2

extension (s: String)
  def words: List[String] = s.split(" ").toList

given Ordering[Color] with
  def compare(a: Color, b: Color) = 0

package object json {
  def parse(s: String): JValue = ???
}
"##;

#[test]
fn scala_fixture() {
    let symbols = extract(Language::Scala, "Merge.scala", SCALA);
    let expected: Vec<Row<'_>> = vec![
        ("Diff", "class", None, 8, 11),
        ("map", "method", Some("Diff"), 9, 10),
        // An object is a namespace: its functions are called through it.
        ("Merge", "object", None, 14, 30),
        ("merge", "method", Some("Merge"), 16, 20),
        ("mergeFields", "method", Some("Merge"), 22, 22),
        // A member holding an anonymous class or a function is code; a plain value is not.
        ("ordering", "method", Some("Merge"), 24, 27),
        ("Parser", "trait", None, 32, 36),
        ("at", "method", Some("Parser"), 34, 34),
        ("parseAll", "method", Some("Parser"), 35, 35),
        // A case object is a value of its own.
        ("Empty", "class", None, 38, 38),
        ("JValue", "class", None, 40, 40),
        ("Field", "type", None, 42, 42),
        // Scala 3: indented bodies end before the comment (at their own column) above
        // the next definition.
        ("Color", "enum", None, 44, 47),
        ("hex", "method", Some("Color"), 47, 47),
        ("Renderer", "class", None, 49, 55),
        ("render", "method", Some("Renderer"), 51, 52),
        ("indent", "method", Some("Renderer"), 55, 55),
        // A Scala 3 extension method sits in its receiver's type.
        ("words", "method", Some("String"), 58, 58),
        ("compare", "function", None, 61, 61),
        ("json", "module", None, 63, 65),
        ("parse", "function", Some("json"), 64, 64),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, SCALA);

    let diff = find(&symbols, "Diff");
    assert_eq!(
        diff.doc.as_deref(),
        Some("A difference between two values.\n@param changed what changed")
    );
    // A class's parameters and parents are its signature.
    assert_eq!(
        diff.signature,
        "case class Diff(changed: JValue, added: JValue)"
    );
    assert_eq!(
        find(&symbols, "Merge").doc.as_deref(),
        Some("Functions to merge two documents.")
    );
    let merge = find(&symbols, "merge");
    assert_eq!(merge.doc.as_deref(), Some("Return the merged value."));
    // Annotations belong to the definition; the `=` leads to the body.
    assert_eq!(
        merge.signature,
        "@tailrec def merge(a: JValue, b: JValue): JValue"
    );
    assert_eq!(
        find(&symbols, "mergeFields").signature,
        "private[json] def mergeFields(vs: List[JField]): List[JField]"
    );
    assert_eq!(
        find(&symbols, "ordering").signature,
        "implicit val ordering: Ordering[JField]"
    );
    // An abstract member is all declaration; a `//` comment above is its doc.
    let at = find(&symbols, "at");
    assert_eq!(at.signature, "def at(i: Int): Char");
    assert_eq!(at.doc.as_deref(), Some("Characters of the input."));
    assert_eq!(
        find(&symbols, "Empty").signature,
        "case object Empty extends JValue"
    );
    assert_eq!(
        find(&symbols, "Renderer").signature,
        "class Renderer(width: Int)"
    );
    let render = find(&symbols, "render");
    assert_eq!(render.doc.as_deref(), Some("Renders one value."));
    assert_eq!(render.signature, "def render(v: JValue): String");
    assert_eq!(
        find(&symbols, "indent").doc.as_deref(),
        Some("The indentation of nested values.")
    );
}

#[test]
fn a_comment_ending_a_body_stays_in_it_unless_it_is_no_deeper_than_the_definition() {
    // Scala 3: the body's own last comment is indented deeper and stays; the one at the
    // definitions' column documents the next definition.
    let scala = "class Cache:\n  def get(k: Int): Int =\n    k + 1\n    // cached forever\n\n  // Drops every entry.\n  def clear(): Unit =\n    ()\n";
    let symbols = extract(Language::Scala, "Cache.scala", scala);
    let get = find(&symbols, "get");
    assert_eq!((get.start_line, get.end_line), (2, 4));
    assert!(get.text.ends_with("// cached forever"), "{:?}", get.text);
    let clear = find(&symbols, "clear");
    assert_eq!(clear.doc.as_deref(), Some("Drops every entry."));
    assert_eq!((clear.start_line, clear.end_line), (7, 8));
    // Python: a method's closing comment is part of it, as it was.
    let python = "class Pool:\n    def close(self):\n        self.open = False\n        # Subclasses may override this.\n\n    def size(self):\n        return 0\n";
    let symbols = extract(Language::Python, "pool.py", python);
    let close = find(&symbols, "close");
    assert_eq!((close.start_line, close.end_line), (2, 4));
    assert_eq!(find(&symbols, "size").doc, None);
}

const JAVA: &str = r#"package com.example;

import java.util.List;

/**
 * A user repository.
 */
@Repository
public class UserRepository implements Repo<User> {
    private final Db db;

    /** Creates the repository. */
    public UserRepository(Db db) {
        this.db = db;
    }

    // Finds a user.
    @Override
    public Optional<User> find(long id) throws SQLException {
        return db.query(id);
    }

    static class Cache {
        void clear() {}
    }

    enum Mode { READ, WRITE; boolean writes() { return this == WRITE; } }
}

interface Repo<T> {
    Optional<T> find(long id) throws SQLException;
}

record Point(int x, int y) {
    Point {
        if (x < 0) throw new IllegalArgumentException();
    }
}

@interface Audited {}
"#;

#[test]
fn java_fixture() {
    let symbols = extract(Language::Java, "UserRepository.java", JAVA);
    let expected: Vec<Row<'_>> = vec![
        ("UserRepository", "class", None, 8, 28),
        ("UserRepository", "method", Some("UserRepository"), 13, 15),
        ("find", "method", Some("UserRepository"), 18, 21),
        ("Cache", "class", Some("UserRepository"), 23, 25),
        ("clear", "method", Some("Cache"), 24, 24),
        ("Mode", "enum", Some("UserRepository"), 27, 27),
        ("writes", "method", Some("Mode"), 27, 27),
        ("Repo", "interface", None, 30, 32),
        ("find", "method", Some("Repo"), 31, 31),
        ("Point", "class", None, 34, 38),
        ("Point", "method", Some("Point"), 35, 37),
        ("Audited", "interface", None, 40, 40),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, JAVA);

    assert_eq!(symbols[0].doc.as_deref(), Some("A user repository."));
    assert_eq!(
        symbols[0].signature,
        "@Repository public class UserRepository implements Repo<User>"
    );
    assert_eq!(symbols[1].doc.as_deref(), Some("Creates the repository."));
    assert_eq!(symbols[2].doc.as_deref(), Some("Finds a user."));
    assert_eq!(
        symbols[2].signature,
        "@Override public Optional<User> find(long id) throws SQLException"
    );
    assert_eq!(
        symbols[8].signature,
        "Optional<T> find(long id) throws SQLException"
    );
}

const C: &str = r#"#include <stdio.h>

#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define LIMIT 10

/* A point in the plane. */
struct point {
    int x;
    int y;
};

typedef struct {
    char *name;
} user_t;

enum color { RED, GREEN };

int prototype_only(int x);

/**
 * Adds two numbers.
 */
static int add(int a, int b)
{
    return a + b;
}

int x = 1; // trailing comment
char *dup_name(const user_t *user) {
    return user->name;
}

#ifdef DEBUG
void debug_log(const char *msg) { puts(msg); }
#endif

union value { int i; float f; };
"#;

#[test]
fn c_fixture() {
    let symbols = extract(Language::C, "point.c", C);
    let expected: Vec<Row<'_>> = vec![
        ("MAX", "macro", None, 3, 3),
        ("point", "struct", None, 7, 10),
        ("user_t", "struct", None, 12, 14),
        ("color", "enum", None, 16, 16),
        ("add", "function", None, 23, 26),
        ("dup_name", "function", None, 29, 31),
        ("debug_log", "function", None, 34, 34),
        ("value", "struct", None, 37, 37),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, C);

    assert_eq!(
        symbols[0].signature,
        "#define MAX(a, b) ((a) > (b) ? (a) : (b))"
    );
    assert_eq!(symbols[1].doc.as_deref(), Some("A point in the plane."));
    assert_eq!(symbols[1].signature, "struct point");
    assert_eq!(symbols[2].signature, "typedef struct");
    assert_eq!(symbols[4].doc.as_deref(), Some("Adds two numbers."));
    assert_eq!(symbols[4].signature, "static int add(int a, int b)");
    assert_eq!(symbols[5].doc, None);
    assert_eq!(symbols[5].signature, "char *dup_name(const user_t *user)");
}

const CPP: &str = r#"#include <string>

namespace geo {

/// A 2D shape.
class Shape {
public:
    virtual ~Shape() = default;
    virtual double area() const = 0;
    std::string name() const { return "shape"; }
};

struct Circle : Shape {
    double r;
    double area() const override;
};

// Area of a circle.
double Circle::area() const {
    return 3.14159 * r * r;
}

template <typename T>
T clamp(T v, T lo, T hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

using Real = double;

enum class Unit { Meter, Foot };

}  // namespace geo

Circle& operator<<(Circle& c, double r) { c.r = r; return c; }

int main() {
    geo::Circle c;
    return 0;
}
"#;

#[test]
fn cpp_fixture() {
    let symbols = extract(Language::Cpp, "shape.cpp", CPP);
    let expected: Vec<Row<'_>> = vec![
        ("geo", "module", None, 3, 32),
        ("Shape", "class", Some("geo"), 6, 11),
        ("name", "method", Some("Shape"), 10, 10),
        ("Circle", "struct", Some("geo"), 13, 16),
        ("area", "method", Some("Circle"), 19, 21),
        ("clamp", "function", Some("geo"), 23, 26),
        ("Real", "type", Some("geo"), 28, 28),
        ("Unit", "enum", Some("geo"), 30, 30),
        ("operator<<", "function", None, 34, 34),
        ("main", "function", None, 36, 39),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, CPP);

    assert_eq!(symbols[1].doc.as_deref(), Some("A 2D shape."));
    assert_eq!(symbols[1].signature, "class Shape");
    assert_eq!(symbols[4].doc.as_deref(), Some("Area of a circle."));
    assert_eq!(symbols[4].signature, "double Circle::area() const");
    assert_eq!(
        symbols[5].signature,
        "template <typename T> T clamp(T v, T lo, T hi)"
    );
    assert_eq!(symbols[0].signature, "namespace geo");
}

#[test]
fn markdown_through_the_extractor() {
    let source = "Preamble.\n\n# Title\n\nText.\n\n## Part\n\nMore.\n";
    let symbols = extract(Language::Markdown, "doc.md", source);
    let expected: Vec<Row<'_>> = vec![
        ("doc.md", "section", None, 1, 1),
        ("Title", "section", None, 3, 5),
        ("Part", "section", Some("Title"), 7, 9),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_eq!(symbols[2].text, "## Part\n\nMore.");
}

#[test]
fn extract_file_adds_the_file_header_as_a_module_before_the_definitions() {
    let source = "//! Routing of requests to handlers.\n\npub use self::route::Route;\nmod route;\n\n\
                  /// Adds a route.\npub fn add(path: &str) {}\n";
    let mut extractor = SymbolExtractor::new();
    let symbols = match extractor.extract_file(Language::Rust, "src/routing/mod.rs", source) {
        Ok(symbols) => symbols,
        Err(error) => panic!("{error}"),
    };
    assert_eq!(
        outline(&symbols),
        vec![
            ("routing", "module", None, 1, 4),
            ("add", "function", None, 7, 7),
        ]
    );
    assert_eq!(
        symbols[0].doc.as_deref(),
        Some("Routing of requests to handlers.")
    );
    assert_eq!(symbols[0].text, "pub use self::route::Route;\nmod route;");
    // `extract` alone (the trainer's miner, the fuzz target) is unchanged.
    let plain = extract(Language::Rust, "mod.rs", source);
    assert_eq!(outline(&plain), vec![("add", "function", None, 7, 7)]);
    // A file without definitions is windows, and a window already holds its header.
    let script = "\"\"\"A script that does things, in words.\"\"\"\nprint('hi')\n";
    let symbols = match extractor.extract_file(Language::Python, "tools/run.py", script) {
        Ok(symbols) => symbols,
        Err(error) => panic!("{error}"),
    };
    assert_eq!(outline(&symbols), vec![("run.py", "section", None, 1, 2)]);
}

#[test]
fn text_through_the_extractor() {
    let source = "[package]\nname = \"x\"\n";
    let symbols = extract(Language::Text, "Cargo.toml", source);
    assert_eq!(
        outline(&symbols),
        vec![("Cargo.toml", "section", None, 1, 2)]
    );
    assert_eq!(symbols[0].signature, "[package]");
    assert_eq!(symbols[0].text, "[package]\nname = \"x\"");
}

#[test]
fn empty_files_have_no_symbols() {
    let mut extractor = SymbolExtractor::new();
    for language in Language::ALL {
        for source in ["", "\n\n", "   \r\n"] {
            let symbols = extractor.extract(language, "empty", source);
            assert_eq!(symbols.ok(), Some(Vec::new()), "{language} {source:?}");
        }
    }
}

#[test]
fn scripts_without_definitions_fall_back_to_windows() {
    let source = "import sys\n\nfor arg in sys.argv:\n    print(arg)\n";
    let symbols = extract(Language::Python, "run.py", source);
    assert_eq!(outline(&symbols), vec![("run.py", "section", None, 1, 4)]);
    assert_eq!(symbols[0].signature, "import sys");
    assert_eq!(symbols[0].text, source.trim_end());

    // A shell script without functions (the sample repository's `cleanup.sh`).
    let sh = "#!/bin/sh\n# Remove temporary files older than a week.\nfind /tmp/sample -type f -mtime +7 -delete\n";
    let symbols = extract(Language::Bash, "cleanup.sh", sh);
    assert_eq!(
        outline(&symbols),
        vec![("cleanup.sh", "section", None, 1, 3)]
    );

    let js = "console.log('hi');\n";
    let symbols = extract(Language::JavaScript, "hi.js", js);
    assert_eq!(outline(&symbols), vec![("hi.js", "section", None, 1, 1)]);
}

#[test]
fn syntax_errors_keep_what_parses() {
    let source = "fn good() -> u32 {\n    1\n}\n\nfn broken( {\n    let = ;\n\nstruct After {\n    x: u32,\n}\n";
    let symbols = extract(Language::Rust, "broken.rs", source);
    // The broken function is lost; what surrounds it is intact.
    let expected: Vec<Row<'_>> = vec![
        ("good", "function", None, 1, 3),
        ("After", "struct", None, 8, 10),
    ];
    assert_eq!(outline(&symbols), expected);

    let python = "def ok():\n    pass\n\ndef bad(:\n    return\n\nclass Fine:\n    pass\n";
    let symbols = extract(Language::Python, "bad.py", python);
    let expected: Vec<Row<'_>> = vec![
        ("ok", "function", None, 1, 2),
        ("bad", "function", None, 4, 5),
        ("Fine", "class", None, 7, 8),
    ];
    assert_eq!(outline(&symbols), expected);
}

#[test]
fn non_ascii_and_crlf() {
    let source = "/// Grüße, 世界 🌍\r\nfn grüß(名前: &str) -> String {\r\n    format!(\"¡hola {名前}!\")\r\n}\r\n\r\n/// Zweite\r\nstruct Ärger;\r\n";
    let symbols = extract(Language::Rust, "ü.rs", source);
    let expected: Vec<Row<'_>> = vec![
        ("grüß", "function", None, 2, 4),
        ("Ärger", "struct", None, 7, 7),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_eq!(symbols[0].doc.as_deref(), Some("Grüße, 世界 🌍"));
    assert_eq!(symbols[0].signature, "fn grüß(名前: &str) -> String");
    assert_eq!(
        symbols[0].text,
        "fn grüß(名前: &str) -> String {\r\n    format!(\"¡hola {名前}!\")\r\n}"
    );
    assert_eq!(symbols[1].doc.as_deref(), Some("Zweite"));
    assert_eq!(symbols[1].signature, "struct Ärger");
    assert_eq!(symbols[1].text, "struct Ärger;");

    let python = "class Café:\r\n    \"\"\"Ça va.\r\n\r\n    Très bien.\r\n    \"\"\"\r\n    def naïve(self):\r\n        return 'é'\r\n";
    let symbols = extract(Language::Python, "café.py", python);
    let expected: Vec<Row<'_>> = vec![
        ("Café", "class", None, 1, 7),
        ("naïve", "method", Some("Café"), 6, 7),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_eq!(symbols[0].doc.as_deref(), Some("Ça va.\n\nTrès bien."));
}

#[test]
fn hostile_inputs_do_not_panic() {
    let mut extractor = SymbolExtractor::new();
    let deep_js = format!(
        "function f() {{ return {}1{}; }}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let deep_rust = format!("fn f() {{ {} }}", "{".repeat(3000));
    let long_line = format!(
        "const x = \"{}\";\nfunction g() {{}}\n",
        "é".repeat(100_000)
    );
    let long_signature = format!("def f({}):\n    pass\n", "a, ".repeat(1000));
    let deep_ruby = format!("{}def f; end", "module M\nclass C\n".repeat(1500));
    let deep_lua = format!(
        "local t = {}\n{}",
        "{ f = function() ".repeat(1500),
        "function M.f() if x then ".repeat(1500)
    );
    let deep_php = format!(
        "<?php\n{}{}",
        "namespace A { class B { function f() { ".repeat(500),
        "if ($x) { ".repeat(3000)
    );
    let invalid_php =
        String::from_utf8_lossy(b"<?php function \xff\xfe() {} /** \xc3 class ?> <?php");
    let invalid_lua =
        String::from_utf8_lossy(b"function M.\xff\xfe(a) end\n--[==[ \xc3 never closed");
    let deep_bash = format!(
        "{}{}",
        "f() { if x; then ".repeat(1000),
        "@test \"t\" { ( ".repeat(1000)
    );
    let invalid_bash =
        String::from_utf8_lossy(b"f\xff() { echo \xfe; }\n@test \"\xc3\n# \xff\n<<EOF\n");
    let deep_csharp = format!(
        "namespace A {{ {}{}",
        "class B { void F() { ".repeat(500),
        "if (x) { ".repeat(3000)
    );
    let invalid_csharp = String::from_utf8_lossy(
        b"/// <summary \xff\xfe\n[Attr(\xc3]\npublic class \xff { void M(\xfe) => ; }",
    );
    let deep_kotlin = format!(
        "{}{}",
        "class A { fun f() { ".repeat(500),
        "if (x) { listOf({ ".repeat(1500)
    );
    let invalid_kotlin = String::from_utf8_lossy(
        b"/** \xff\xfe\n@Ann(\xc3)\nclass \xff { fun `\xfe`(\xc3) = ; }\n\"\"\"never closed",
    );
    let deep_swift = format!(
        "{}{}",
        "struct A { func f() { ".repeat(500),
        "if x { [{ ".repeat(1500)
    );
    let invalid_swift = String::from_utf8_lossy(
        b"/// \xff\xfe\n@attr(\xc3)\nclass \xff { func `\xfe`(\xc3) -> { }\n\"\"\"never closed",
    );
    let deep_elixir = format!(
        "{}{}",
        "defmodule A do def f(x) do ".repeat(500),
        "case x do y -> [%{a: fn -> ".repeat(1500)
    );
    let invalid_elixir = String::from_utf8_lossy(
        b"defmodule \xff do\n@doc ~S\"\"\"\xfe\ndef \xc3(x), do:\n@moduledoc \"never closed",
    );
    let deep_zig = format!(
        "{}{}",
        "const A = struct { fn f() void { ".repeat(500),
        "if (x) { while (y) |z| { .{ ".repeat(1500)
    );
    let invalid_zig = String::from_utf8_lossy(
        b"//! \xff\xfe\n/// \xc3\npub const \xff = struct { fn \xfe(\xc3) !void {\ntest \"\xff never closed",
    );
    let deep_dart = format!(
        "{}{}",
        "class A { void f() { ".repeat(500),
        "if (x) { for (final y in z) { (".repeat(1500)
    );
    let invalid_dart = String::from_utf8_lossy(
        b"/// \xff\xfe\nclass \xff extends \xc3 {\n  factory \xfe.(\xc3) {\n  @\xff\n  int get",
    );
    let deep_haskell = format!(
        "{}{}",
        "f x = let y = case x of\n  Just z -> do\n    ".repeat(500),
        "(\\a -> [b | b <- (".repeat(1500)
    );
    let invalid_haskell = String::from_utf8_lossy(
        b"-- | \xff\xfe\nmodule \xc3 where\nclass \xff a where\n  \xfe :: a ->\ninstance {-| \xc3",
    );
    let deep_scala = format!(
        "{}{}",
        "object A { class B { def f = { ".repeat(500),
        "if (x) { y match { case _ => (".repeat(1500)
    );
    let invalid_scala = String::from_utf8_lossy(
        b"/** \xff\xfe\n */\nobject \xc3 {\n  def \xff(x: \xfe) =\n    new \xc3 {\n  \"never closed",
    );
    let cases = [
        (Language::JavaScript, deep_js.as_str()),
        (Language::Rust, deep_rust.as_str()),
        (Language::JavaScript, long_line.as_str()),
        (Language::Python, long_signature.as_str()),
        (
            Language::Cpp,
            "template <class T> class { ::: } }}} ;; \u{0}",
        ),
        (Language::Go, "func (*) () {\nfunc"),
        (Language::Ruby, deep_ruby.as_str()),
        (
            Language::Ruby,
            "def \u{0} end end end\n=begin\nnever closed",
        ),
        (Language::Lua, deep_lua.as_str()),
        (Language::Lua, &invalid_lua),
        (Language::Lua, "function M:() end end end local function"),
        (Language::Php, deep_php.as_str()),
        (Language::Php, &invalid_php),
        (Language::Php, "<?php class { function ( } } enum : { case"),
        (Language::CSharp, deep_csharp.as_str()),
        (Language::Bash, deep_bash.as_str()),
        (Language::Bash, &invalid_bash),
        (
            Language::Bash,
            "@test\n@test {\n}\n}\nfunction { () } @test \"\" }",
        ),
        (Language::CSharp, &invalid_csharp),
        (
            Language::CSharp,
            "namespace ; namespace A; record struct ( { get; } /// <see cref=\"",
        ),
        (Language::Kotlin, deep_kotlin.as_str()),
        (Language::Kotlin, &invalid_kotlin),
        (
            Language::Kotlin,
            "companion object { constructor( } enum class : fun .() val get() = `",
        ),
        (Language::Swift, deep_swift.as_str()),
        (Language::Swift, &invalid_swift),
        (
            Language::Swift,
            "extension { init?( } subscript -> protocol : var { get set macro #",
        ),
        (Language::Elixir, deep_elixir.as_str()),
        (Language::Elixir, &invalid_elixir),
        (
            Language::Elixir,
            "def def def, do: defmodule do @doc @doc since: defimpl , for: defstruct end end",
        ),
        (Language::Zig, deep_zig.as_str()),
        (Language::Zig, &invalid_zig),
        (
            Language::Zig,
            "pub const = struct { test { fn ( } const E = error{ , union(enum) opaque extern \"c\" fn",
        ),
        (Language::Scala, deep_scala.as_str()),
        (Language::Scala, &invalid_scala),
        (
            Language::Scala,
            "enum E:\n  case\ngiven with\nextension ()\nobject:\n  def = \ntrait [ val : => class",
        ),
        (Language::Dart, deep_dart.as_str()),
        (Language::Dart, &invalid_dart),
        (
            Language::Dart,
            "mixin on extension type ( { factory . ; operator [] get set typedef = Function( /**",
        ),
        (Language::Haskell, deep_haskell.as_str()),
        (Language::Haskell, &invalid_haskell),
        (
            Language::Haskell,
            "module (\nclass => where\n  :: ->\ninstance (Monad where\n  x = {-# INLINE\nf `g` = | |",
        ),
        (Language::C, "/* unterminated"),
        (Language::Markdown, "```\n# in fence forever"),
        (Language::Text, "\u{feff}\r\r\r"),
    ];
    for (language, source) in cases {
        assert!(
            extractor.extract(language, "x", source).is_ok(),
            "{language}"
        );
    }
    let symbols = extractor
        .extract(Language::Python, "long.py", &long_signature)
        .unwrap_or_default();
    assert_eq!(symbols.len(), 1);
    assert_eq!(symbols[0].signature.chars().count(), 300);
    let symbols = extractor
        .extract(Language::JavaScript, "long.js", &long_line)
        .unwrap_or_default();
    assert_eq!(outline(&symbols), vec![("g", "function", None, 2, 2)]);
}

#[test]
fn extractor_is_send_and_reusable() {
    fn assert_send<T: Send>() {}
    assert_send::<SymbolExtractor>();
    let mut extractor = SymbolExtractor::default();
    for _ in 0..3 {
        let symbols = extractor.extract(Language::Go, "a.go", "package a\nfunc A() {}\n");
        assert_eq!(symbols.map(|s| s.len()).ok(), Some(1));
    }
}

#[test]
fn many_definitions() {
    let mut source = String::from("package big\n");
    for i in 0..5000 {
        source.push_str(&format!(
            "// F{i} adds {i}.\nfunc F{i}(x int) int {{\n\treturn x + {i}\n}}\n\n"
        ));
    }
    let symbols = extract(Language::Go, "big.go", &source);
    assert_eq!(symbols.len(), 5000);
    let last = &symbols[4999];
    assert_eq!(
        (last.name.as_str(), last.start_line, last.end_line),
        ("F4999", 5 * 4999 + 3, 5 * 4999 + 5)
    );
    assert_eq!(last.doc.as_deref(), Some("F4999 adds 4999."));
}

#[test]
fn parse_budget_falls_back_to_windows() {
    let source: String = (0..2000)
        .map(|i| format!("fn f{i}() {{ let x = {i}; }}\n"))
        .collect();
    let mut extractor = SymbolExtractor::new().with_parse_budget(std::time::Duration::ZERO);
    let symbols = extractor.extract(Language::Rust, "slow.rs", &source);
    let symbols = symbols.unwrap_or_default();
    assert_eq!(symbols.len(), 50);
    assert!(
        symbols
            .iter()
            .all(|s| s.kind == SymbolKind::Section && s.name == "slow.rs")
    );
    // The abandoned parse must not leak into the next file.
    let mut extractor = extractor.with_parse_budget(DEFAULT_PARSE_BUDGET);
    let symbols = extractor
        .extract(Language::Rust, "a.rs", "fn a() {}\n")
        .unwrap_or_default();
    assert_eq!(outline(&symbols), vec![("a", "function", None, 1, 1)]);
}

#[test]
fn cpp_headers_named_h_fall_back_to_cpp() {
    let header =
        "#pragma once\nnamespace x {\nclass Foo {\npublic:\n  int bar() { return 1; }\n};\n}\n";
    let symbols = extract(Language::C, "foo.h", header);
    // `namespace x` only wraps `Foo`: it is `Foo`'s container, not a symbol.
    let expected: Vec<Row<'_>> = vec![
        ("Foo", "class", Some("x"), 3, 6),
        ("bar", "method", Some("Foo"), 5, 5),
    ];
    assert_eq!(outline(&symbols), expected);

    // Clean C is never re-parsed, even where C++ would read it differently.
    let c = "int new(int class) { return class; }\n";
    assert_eq!(
        outline(&extract(Language::C, "old.c", c)),
        vec![("new", "function", None, 1, 1)]
    );
}

#[test]
fn declarations_with_several_declarators() {
    let source = "const a = 1, b = () => {\n  return a;\n};\n";
    let symbols = extract(Language::JavaScript, "b.js", source);
    assert_eq!(outline(&symbols), vec![("b", "function", None, 1, 3)]);
    assert_eq!(symbols[0].signature, "const a = 1, b = () =>");
}

const DART: &str = r#"/// Buffers written bytes.
library buffer;

import 'dart:typed_data';

/// The default capacity.
const int defaultCapacity = 1024;

/// A growable byte buffer.
///
/// Grows by doubling.
class ByteBuffer extends Object with Observable implements Sink {
  /// The bytes so far.
  final Uint8List _bytes;
  int _length = 0;
  static const int maxSize = 1 << 30;

  /// Creates an empty buffer.
  ByteBuffer([int capacity = defaultCapacity]) : _bytes = Uint8List(capacity);

  /// Creates a buffer holding [list].
  factory ByteBuffer.fromList(List<int> list) {
    final buffer = ByteBuffer(list.length);
    buffer.addAll(list);
    return buffer;
  }

  /// The number of bytes written.
  int get length => _length;

  set length(int value) {
    _length = value;
  }

  /// Appends one byte.
  @override
  void add(int byte) {
    _bytes[_length++] = byte;
  }

  // Not a doc comment.
  void addAll(List<int> bytes) {
    for (final b in bytes) {
      add(b);
    }
  }

  int operator [](int index) => _bytes[index];
}

/// Notifies listeners.
mixin Observable {
  void notify();
}

/// Reads varints.
extension VarintReading on ByteBuffer {
  /// Reads a varint at [offset].
  int readVarint(int offset) {
    return 0;
  }
}

enum Mode { read, write }

/// A transformation of bytes.
typedef Transform = Uint8List Function(Uint8List input);

/// Copies [source] into a new list.
List<int> copyBytes(List<int> source) {
  return List.of(source);
}

/** A two-way channel. */
abstract class Transport {
  /// Opens the transport.
  Future open();
  bool get isOpen;
}

class Holder {
  final answer = 42;
  static final cache = <String, int>{};
}
"#;

#[test]
fn dart_fixture() {
    let symbols = extract(Language::Dart, "lib/src/byte_buffer.dart", DART);
    let expected: Vec<Row<'_>> = vec![
        // Top-level `const`/`final` values are constants; `library` and imports are no symbols.
        ("defaultCapacity", "constant", None, 7, 7),
        ("ByteBuffer", "class", None, 12, 49),
        // Fields are left in the class's text, `static const`/`static final` values are not.
        ("maxSize", "constant", Some("ByteBuffer"), 16, 16),
        // A constructor without a body is left out; a named one with a body is its second part.
        ("fromList", "method", Some("ByteBuffer"), 22, 26),
        // Getters, setters, annotated methods and operators are methods.
        ("length", "method", Some("ByteBuffer"), 29, 29),
        ("length", "method", Some("ByteBuffer"), 31, 33),
        ("add", "method", Some("ByteBuffer"), 36, 39),
        ("addAll", "method", Some("ByteBuffer"), 42, 46),
        ("[]", "method", Some("ByteBuffer"), 48, 48),
        // A mixin is a trait; an extension an impl of its own name, holding its methods.
        ("Observable", "trait", None, 52, 54),
        ("notify", "method", Some("Observable"), 53, 53),
        ("VarintReading", "impl", None, 57, 62),
        ("readVarint", "method", Some("VarintReading"), 59, 61),
        ("Mode", "enum", None, 64, 64),
        ("Transform", "type", None, 67, 67),
        ("copyBytes", "function", None, 70, 72),
        // An abstract class's members without a body are its API.
        ("Transport", "class", None, 75, 79),
        ("open", "method", Some("Transport"), 77, 77),
        ("isOpen", "method", Some("Transport"), 78, 78),
        ("Holder", "class", None, 81, 84),
        ("cache", "constant", Some("Holder"), 83, 83),
    ];
    assert_eq!(outline(&symbols), expected);
    assert_texts_match_lines(&symbols, DART);

    let doc = |name: &str| find(&symbols, name).doc.clone();
    assert_eq!(
        doc("ByteBuffer").as_deref(),
        Some("A growable byte buffer.\n\nGrows by doubling.")
    );
    // A member's `///` doc sits above its annotations, outside the member's own node.
    assert_eq!(doc("add").as_deref(), Some("Appends one byte."));
    assert_eq!(
        doc("fromList").as_deref(),
        Some("Creates a buffer holding [list].")
    );
    assert_eq!(
        doc("readVarint").as_deref(),
        Some("Reads a varint at [offset].")
    );
    assert_eq!(doc("Transport").as_deref(), Some("A two-way channel."));
    // A `//` comment is a note, not documentation.
    assert_eq!(doc("addAll"), None);
    assert_eq!(
        find(&symbols, "fromList").signature,
        "factory ByteBuffer.fromList(List<int> list)"
    );
    assert_eq!(
        find(&symbols, "add").signature,
        "@override void add(int byte)"
    );
    assert_eq!(
        find(&symbols, "VarintReading").signature,
        "extension VarintReading on ByteBuffer"
    );
}

#[test]
fn functions_declared_without_a_body_are_marked_in_every_language() {
    use Language::*;
    /// A fixture file and, for some of its symbols, whether each is declared without a body.
    type Case<'a> = (Language, &'a str, &'a str, &'a [(&'a str, bool)]);
    let cases: &[Case<'_>] = &[
        (
            Java,
            "Queue.java",
            "interface Queue {\n    void executeAfter(long delay, TimeUnit unit, Task task);\n    default void run() {\n        task.run();\n    }\n}\n\
             abstract class Connector {\n    protected abstract void connect(\n        SocketAddress localAddress) throws Exception;\n    void close() { }\n}\n",
            &[
                ("executeAfter", true),
                ("run", false),
                ("connect", true),
                ("close", false),
            ],
        ),
        (
            Php,
            "Logger.php",
            "<?php\ninterface HandlerInterface\n{\n    /** Handles a record. */\n    public function handle(LogRecord $record): bool;\n}\n\
             abstract class Logger\n{\n    abstract protected function write(array $record): void;\n    public function close(): void\n    {\n        $this->reset();\n    }\n}\n",
            &[("handle", true), ("write", true), ("close", false)],
        ),
        (
            CSharp,
            "JToken.cs",
            "interface IXmlDocument\n{\n    IXmlNode CreateComment(string? text);\n}\n\
             abstract class JToken\n{\n    public abstract JToken CloneToken();\n    public string Path() { return \"\"; }\n    public string Name() => \"x\";\n}\n",
            &[
                ("CreateComment", true),
                ("CloneToken", true),
                ("Path", false),
                ("Name", false),
            ],
        ),
        (
            TypeScript,
            "schema.ts",
            "export interface Schema<T> {\n  parse(data: unknown): T;\n}\n\
             export abstract class Base {\n  abstract check(x: number): boolean;\n  run(): void {\n    this.check(1);\n  }\n}\n\
             export function pick(x: string): string;\nexport function pick(x: any) {\n  return x;\n}\n",
            &[("parse", true), ("check", true), ("run", false)],
        ),
        (
            C,
            "uv.c",
            "int uv_loop_init(uv_loop_t* loop);\n\nint uv_run(uv_loop_t* loop) {\n  return 0;\n}\n",
            &[("uv_run", false)],
        ),
        (
            Cpp,
            "sink.cc",
            "class Sink {\n public:\n  virtual void Send(const LogEntry& entry) = 0;\n  int level() const { return level_; }\n};\n",
            &[("level", false)],
        ),
        (
            Rust,
            "visit.rs",
            "trait Visitor {\n    fn visit_str(&mut self, value: &str) -> Result<(), Error>;\n    fn visit_bool(&mut self, v: bool) -> Result<(), Error> {\n        Ok(())\n    }\n}\n",
            &[("visit_str", true), ("visit_bool", false)],
        ),
        (
            Dart,
            "transport.dart",
            "abstract class TTransport {\n  Future<int> read(Uint8List buffer, int offset, int length);\n  Future close() async {\n    await flush();\n  }\n  int get length => 0;\n}\n",
            &[("read", true), ("close", false)],
        ),
        (
            Go,
            "mux.go",
            "package chi\n\ntype Router interface {\n\tUse(middlewares ...func(http.Handler) http.Handler)\n}\n\n\
             func (mx *Mux) Handle(pattern string) {\n}\n",
            &[("Use", true), ("Handle", false)],
        ),
        (
            Kotlin,
            "Job.kt",
            "interface Job {\n    public fun cancel(cause: CancellationException? = null)\n    public fun start(): Boolean {\n        return true\n    }\n}\n\
             class Deferred {\n    fun getCompleted(): T = getCompletedInternal() as T\n}\n",
            &[("cancel", true), ("start", false), ("getCompleted", false)],
        ),
        (
            Swift,
            "Bridge.swift",
            "protocol CAPBridgeProtocol {\n    func getWebView() -> WKWebView?\n}\n\
             class Bridge {\n    func reload() {\n        webView.reload()\n    }\n}\n",
            &[("getWebView", true), ("reload", false)],
        ),
        (
            Scala,
            "Formats.scala",
            "trait Formats {\n  def dateFormat: DateFormat\n  def map(f: JValue => JValue): Diff = Diff(f(changed), added, deleted)\n}\n",
            &[("dateFormat", true), ("map", false)],
        ),
        // C and C++ prototypes, pure virtual and deleted members are not symbols at all (above);
        // languages whose functions always have a body, however little it does.
        // Python and Ruby: a method that only raises `NotImplementedError`, or an
        // `@abstractmethod`, is left for subclasses; any other body is code.
        (
            Python,
            "base.py",
            concat!(
                "class BaseAdapter:\n",
                "    def send(self, request):\n",
                "        \"\"\"Sends a request.\"\"\"\n",
                "        # subclasses do\n",
                "        raise NotImplementedError\n\n",
                "    @abstractmethod\n",
                "    def close(self): ...\n\n",
                "    def flush(self):\n",
                "        pass\n\n",
                "    def get(self):\n",
                "        if self.ready:\n",
                "            return 1\n",
                "        raise NotImplementedError()\n",
            ),
            &[
                ("send", true),
                ("close", true),
                ("flush", false),
                ("get", false),
            ],
        ),
        (
            Ruby,
            "drop.rb",
            "class Drop\n  def liquid_method_missing(method); end\n\n  def store(key, value)\n    raise NotImplementedError\n  end\n\n  def lookup(key)\n    @store[key] || raise(NotImplementedError)\n  end\nend\n",
            &[
                ("liquid_method_missing", false),
                ("store", true),
                ("lookup", false),
            ],
        ),
        (
            JavaScript,
            "response.js",
            "res.send = function send(body) {\n  return this.end(body);\n};\n",
            &[("send", false)],
        ),
    ];
    for &(language, file, source, expected) in cases {
        let symbols = extract(language, file, source);
        for &(name, declaration) in expected {
            let symbol = find(&symbols, name);
            assert_eq!(
                symbol.declaration, declaration,
                "{language:?} {name}: {:#?}",
                symbol
            );
        }
        // Types are never marked, body or not.
        for symbol in &symbols {
            if !matches!(symbol.kind, SymbolKind::Function | SymbolKind::Method) {
                assert!(!symbol.declaration, "{language:?}: {symbol:#?}");
            }
        }
    }
}

#[cfg(feature = "lang-haskell")]
const HASKELL: &str = r#"{-# LANGUAGE BangPatterns #-}
-----------------------------------------------------------------------------
-- |
-- Module      :  Data.Scan.Buffer
-- Copyright   :  The authors 2026
-- License     :  BSD3
-- Maintainer  :  someone@example.com
--
-- Growable input buffers for incremental parsers.
-----------------------------------------------------------------------------
module Data.Scan.Buffer
    (
    -- * Buffers
      Buffer
    , append
    , (<+>)
    ) where

import Data.Word (Word8)

-- | A buffer: bytes in use and spare capacity.
data Buffer = Buffer
    { bufBytes :: ![Word8]   -- ^ the bytes held
    , bufSpare :: !Int       -- ^ room left before a copy
    }

-- | The position of a parse in its input.
newtype Pos = Pos { fromPos :: Int }

type Bytes = [Word8]

-- | Things input can be read from.
class Monoid c => Chunk c where
  -- | The element type of the chunk.
  type Elem c
  -- | Whether the chunk holds nothing.
  nullChunk :: c -> Bool
  lengthChunk :: c -> Int
  -- | Appends two chunks.
  appendChunk :: c -> c -> c
  appendChunk = mappend
  emptyChunk :: c
  lengthChunk = length . toList

instance Chunk Buffer where
  type Elem Buffer = Word8
  nullChunk = null . bufBytes
  {-# INLINE nullChunk #-}
  emptyChunk = Buffer [] 0

-- | Adds bytes to the end of a buffer,
-- copying into a larger one when it is full.
append :: Buffer
       -> Bytes   -- ^ the new bytes
       -> Buffer
append (Buffer bs 0) new = Buffer (bs ++ new) (length bs)
-- the common case: room is left
append (Buffer bs n) new
  | length new <= n = Buffer (bs ++ new) (n - length new)
  | otherwise = grow
  where grow = Buffer (bs ++ new) 0
{-# INLINE append #-}

-- a note, not documentation
(<+>) :: Buffer -> Buffer -> Buffer
a <+> b = append a (bufBytes b)
infixr 5 <+>

{-| Leaves the buffer as it was. -}
unchanged :: Buffer -> Buffer
unchanged = id

size b = length (bufBytes b)

foreign import ccall unsafe "string.h memchr" memchr :: Ptr Word8 -> CInt -> IO (Ptr Word8)
"#;

#[cfg(feature = "lang-haskell")]
#[test]
fn haskell_fixture() {
    let mut extractor = SymbolExtractor::new();
    let symbols =
        match extractor.extract_file(Language::Haskell, "src/Data/Scan/Buffer.hs", HASKELL) {
            Ok(symbols) => symbols,
            Err(error) => panic!("{error}"),
        };
    let expected: Vec<Row<'_>> = vec![
        // The module header: its Haddock (from `-- |`, not the banner) and export list.
        ("Buffer", "module", None, 3, 17),
        ("Buffer", "struct", None, 22, 25),
        ("Pos", "struct", None, 28, 28),
        ("Bytes", "type", None, 30, 30),
        // A type class is a trait; its signatures are methods, each with the default equation
        // right after it.
        ("Chunk", "trait", None, 33, 43),
        ("Elem", "type", Some("Chunk"), 35, 35),
        ("nullChunk", "method", Some("Chunk"), 37, 37),
        ("lengthChunk", "method", Some("Chunk"), 38, 38),
        ("appendChunk", "method", Some("Chunk"), 40, 41),
        ("emptyChunk", "method", Some("Chunk"), 42, 42),
        // A default further down the class is a method of its own.
        ("lengthChunk", "method", Some("Chunk"), 43, 43),
        // An instance is an impl named after the type it is for.
        ("Buffer", "impl", None, 45, 49),
        ("nullChunk", "method", Some("Buffer"), 47, 47),
        ("emptyChunk", "method", Some("Buffer"), 49, 49),
        // A signature and its equations, with the comment between them and the `where`.
        ("append", "function", None, 53, 61),
        ("<+>", "function", None, 65, 66),
        ("unchanged", "function", None, 70, 71),
        // Without a signature, the equation alone.
        ("size", "function", None, 73, 73),
        ("memchr", "function", None, 75, 75),
    ];
    assert_eq!(outline(&symbols), expected);
    // The module symbol's text is its export list; every other symbol's is its lines.
    assert_texts_match_lines(&symbols[1..], HASKELL);

    let module = &symbols[0];
    // The header's fields are not documentation.
    assert_eq!(
        module.doc.as_deref(),
        Some("Growable input buffers for incremental parsers.")
    );
    assert!(module.text.contains("-- * Buffers") && module.text.contains(", (<+>)"));

    let symbol = |name: &str, kind: &str| match symbols
        .iter()
        .find(|s| s.name == name && s.kind.as_str() == kind)
    {
        Some(symbol) => symbol,
        None => panic!("no {kind} {name}"),
    };
    let doc = |name: &str, kind: &str| symbol(name, kind).doc.clone();
    // The Haddock above the first declaration, which the grammar places in the imports.
    assert_eq!(
        doc("Buffer", "struct").as_deref(),
        Some("A buffer: bytes in use and spare capacity.")
    );
    assert_eq!(
        doc("append", "function").as_deref(),
        Some("Adds bytes to the end of a buffer,\ncopying into a larger one when it is full.")
    );
    // The first member of a class: its Haddock is outside the class's declarations.
    assert_eq!(
        doc("Elem", "type").as_deref(),
        Some("The element type of the chunk.")
    );
    assert_eq!(
        doc("Chunk", "trait").as_deref(),
        Some("Things input can be read from.")
    );
    assert_eq!(
        doc("unchanged", "function").as_deref(),
        Some("Leaves the buffer as it was.")
    );
    // A plain `--` comment is a note.
    assert_eq!(doc("<+>", "function"), None);
    assert_eq!(doc("Bytes", "type"), None);

    // A multi-line signature, without its arguments' `-- ^` docs; an operator keeps its
    // parentheses there but not in its name.
    assert_eq!(
        symbol("append", "function").signature,
        "append :: Buffer -> Bytes -> Buffer"
    );
    assert_eq!(
        symbol("<+>", "function").signature,
        "(<+>) :: Buffer -> Buffer -> Buffer"
    );
    assert_eq!(
        symbol("Chunk", "trait").signature,
        "class Monoid c => Chunk c"
    );
    assert_eq!(symbol("Buffer", "impl").signature, "instance Chunk Buffer");
    assert_eq!(symbol("size", "function").signature, "size b");

    // A class method without a default equation is declared without a body; one whose
    // default comes further down the class is not, nor are the instance's definitions.
    let declared: Vec<(&str, Option<&str>)> = symbols
        .iter()
        .filter(|s| s.declaration)
        .map(|s| (s.name.as_str(), s.container.as_deref()))
        .collect();
    assert_eq!(
        declared,
        vec![("nullChunk", Some("Chunk")), ("emptyChunk", Some("Chunk"))]
    );
}

#[cfg(feature = "lang-haskell")]
#[test]
fn haddock_documents_the_first_declaration_of_a_module_without_imports() {
    let source = "module Levenshtein where\n\n-- | The edit distance of two strings.\neditDistance :: String -> String -> Int\neditDistance a b = 0\n";
    let symbols = extract(Language::Haskell, "Levenshtein.hs", source);
    assert_eq!(
        outline(&symbols),
        vec![("editDistance", "function", None, 4, 5)]
    );
    assert_eq!(
        symbols[0].doc.as_deref(),
        Some("The edit distance of two strings.")
    );
}
