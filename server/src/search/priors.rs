//! Path priors: what kind of file a result comes from (a test, documentation, an example,
//! vendored or generated code, …) and how much that lowers it, unless the query asks for it.
//! Kind priors sit beside them ([`kind_class`]): a constant or a type alias answers a question
//! in words less often than code that does something, and a function answers a description of
//! a thing ("a cache that …") less often than a type; a method declared without a body (an
//! interface's member) answers a question less often than its implementations
//! ([`abstract_class`]).
//!
//! A prior never removes a result: it multiplies its score by a factor, so a test still shows
//! when nothing better matches. The defaults carry the measurement that set them (README, "How
//! ranking works"); users override any of them (`--prior test=1`, the `priors` setting), e.g. to
//! rank tests like any other code.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::index::store::StoredChunk;
use crate::symbols::SymbolKind;

use super::query::QueryShape;

/// What a file (or a symbol within one) is, as far as ranking is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathClass {
    /// Tests: test directories, test file names of every supported language, `mod tests`.
    Test,
    /// Benchmarks: `benches/`, `*_benchmark.cc`, …
    Bench,
    /// Prose: Markdown, reStructuredText, AsciiDoc, plain text.
    Docs,
    /// Release history: CHANGELOG, HISTORY, NEWS, CHANGES.
    Changelog,
    /// Example and tutorial code: `examples/`, `docs_src/`, `demo/`.
    Example,
    /// Someone else's code kept in the tree: `vendor/`, `third_party/`.
    Vendored,
    /// Generated code: protobuf output, `*.generated.*`, amalgamated `single_include/`.
    Generated,
    /// Compatibility shims and legacy code: `compat/`, `legacy/`, and an API version kept
    /// beside a newer one (`src/v3/` when `src/v4/` is there too, see
    /// [`superseded_versions`]).
    Compat,
    /// Declaration-only files: TypeScript `.d.ts`, Python `.pyi` stubs.
    Declarations,
    /// Files that mostly re-export: Python `__init__.py`, Java `package-info.java`.
    Reexport,
    /// Build scripts and package manifests: `Makefile`, `CMakeLists.txt`, `build.sbt`,
    /// `build.gradle`, `pom.xml`, `Cargo.toml`, `package.json`, `setup.py`, `*.gemspec`, …
    /// They say how the project is built, rarely what its code does, and their few lines name
    /// the project and its parts, words every question about it shares.
    Build,
    /// A constant (`DECIMAL_REGEX = /…/`, `const MAX = 8`), for a query in words that does not
    /// name it ([`kind_class`]).
    Constant,
    /// A type alias (`type Immutable<T> = …`, `typedef`), likewise.
    Type,
    /// A function, method or macro, for a query that describes a thing ("a dictionary that
    /// maps keys to values and back", [`QueryShape::Description`]), which is most often a
    /// type.
    Callable,
    /// A class, struct, enum, trait or interface, for a command ("compare two JSON token trees
    /// for equal values", [`QueryShape::Action`]), which a function or method most often
    /// carries out.
    Class,
    /// A function or method declared without a body: an interface's or an abstract class's
    /// member, a trait method without a default, a protocol requirement ([`abstract_class`]),
    /// for a query in words. Its implementations carry out what it declares.
    Abstract,
}

impl PathClass {
    pub const ALL: [PathClass; 16] = [
        PathClass::Test,
        PathClass::Bench,
        PathClass::Docs,
        PathClass::Changelog,
        PathClass::Example,
        PathClass::Vendored,
        PathClass::Generated,
        PathClass::Compat,
        PathClass::Declarations,
        PathClass::Reexport,
        PathClass::Build,
        PathClass::Constant,
        PathClass::Type,
        PathClass::Callable,
        PathClass::Class,
        PathClass::Abstract,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PathClass::Test => "test",
            PathClass::Bench => "bench",
            PathClass::Docs => "docs",
            PathClass::Changelog => "changelog",
            PathClass::Example => "example",
            PathClass::Vendored => "vendored",
            PathClass::Generated => "generated",
            PathClass::Compat => "compat",
            PathClass::Declarations => "declarations",
            PathClass::Reexport => "reexport",
            PathClass::Build => "build",
            PathClass::Constant => "constant",
            PathClass::Type => "type",
            PathClass::Callable => "callable",
            PathClass::Class => "class",
            PathClass::Abstract => "abstract",
        }
    }

    /// Parses [`PathClass::as_str`] (case-insensitive), plus plurals (`tests`, `examples`,
    /// `classes`).
    pub fn parse(name: &str) -> Option<PathClass> {
        let name = name.trim().to_ascii_lowercase();
        let singular = name.strip_suffix('s').unwrap_or(&name);
        let sibilant = name.strip_suffix("es").unwrap_or(&name);
        PathClass::ALL.into_iter().find(|class| {
            let known = class.as_str();
            known == name || known == singular || known == sibilant
        })
    }

    /// The factor used when the user does not set one. Measured on the tuning half of the semble
    /// benchmark (docs/ranking.md): all priors at these factors took file-level
    /// nDCG@10 from 0.698 to 0.757 and left the symbol-level quality benchmark unchanged (0.790
    /// → 0.791); 0.2 or 0.5 for all of them scored 0.802 and 0.792 with the full stack.
    pub fn default_factor(self) -> f32 {
        match self {
            PathClass::Test
            | PathClass::Bench
            | PathClass::Docs
            | PathClass::Example
            | PathClass::Vendored
            | PathClass::Generated
            | PathClass::Compat
            | PathClass::Build => 0.3,
            PathClass::Changelog => 0.2,
            // Still real declarations of the API, only thinner than the code.
            PathClass::Declarations => 0.7,
            // `__init__.py` often holds real code beside its imports.
            PathClass::Reexport => 0.5,
            // Measured on both benchmarks (docs/ranking.md, "Constants and type aliases"):
            // one-line constants took top places from the functions that use them on a matching
            // word (`TABLE_PIPE_CHECK` above `is_simple_table?`), type aliases from the code
            // they describe. `bench/quality` 0.722 → 0.728 (21 codebases, none lower), semble
            // tuning 0.858 unchanged; 0.5 for constants gained no more symbol-level and cost
            // Go's enum-like constants file-level (gin's "error types" in errors.go).
            PathClass::Constant | PathClass::Type => 0.7,
            // Measured on 19 descriptions among `bench/quality`'s queries (0.673 → 0.804; all
            // 503 queries 0.728 → 0.733, none lower) and run once on 42 descriptions written
            // for it by a helper before any run, half of them answered by functions: 0.343 →
            // 0.388 (0.405 once "a function that …" was exempted, a second look).
            PathClass::Callable => 0.6,
            // Measured on `bench/quality`'s tuning codebases (docs/ranking.md, "Types for
            // commands"): 0.747 → 0.749 (21 queries up, 6 down; newtonsoft-json's
            // `JTokenEqualityComparer` class no longer above the method that compares), semble
            // tuning unchanged; 0.7 gained as much on the tuning codebases but took the original
            // 256 queries below 0.82 (globset's strategies are structs that match).
            PathClass::Class => 0.85,
            // Measured on `bench/quality`'s tuning codebases (docs/ranking.md, "Declarations
            // without a body"): 0.761 → 0.762 (6 queries up, 1 down: newtonsoft-json's
            // abstract `JContainer.MergeItem` no longer above `Merge`, hawtdispatch's interface
            // `DispatchQueue.executeAfter` below the `after` that does it; the loss is a
            // `Future` interface's `await`, the one answer that is a declaration), semble tuning
            // unchanged but one query up; 0.5 lost more of that one query.
            PathClass::Abstract => 0.7,
        }
    }

    /// Query words that ask for this kind of file: with one of them in the query, the prior
    /// does not apply ("the test for the router", "changelog of 2.0").
    fn asked_by(self) -> &'static [&'static str] {
        match self {
            PathClass::Test => &[
                "test", "tests", "tested", "testing", "unittest", "spec", "specs", "fixture",
                "fixtures",
            ],
            PathClass::Bench => &["bench", "benches", "benchmark", "benchmarks"],
            PathClass::Docs => &[
                "doc",
                "docs",
                "documentation",
                "documented",
                "readme",
                "guide",
                "tutorial",
            ],
            PathClass::Changelog => &["changelog", "history", "release", "releases", "news"],
            PathClass::Example => &["example", "examples", "demo", "demos", "sample", "samples"],
            PathClass::Vendored => &["vendor", "vendored", "third"],
            PathClass::Generated => &["generated", "protobuf"],
            PathClass::Compat => &[
                "compat",
                "compatibility",
                "legacy",
                "deprecated",
                "polyfill",
                "shim",
            ],
            PathClass::Declarations => &["declaration", "declarations", "stub", "stubs"],
            PathClass::Reexport => &["export", "exports", "reexport", "reexports"],
            // Not "build" or "package": commands use them as plain words ("build the list of
            // locales", "the package's version").
            PathClass::Build => &[
                "makefile",
                "makefiles",
                "manifest",
                "dependency",
                "dependencies",
                "cmake",
                "gradle",
                "sbt",
                "maven",
                "pom",
                "cargo",
                "npm",
                "gemspec",
                "gemfile",
                "rakefile",
                "setuptools",
                "pyproject",
            ],
            PathClass::Constant => &["constant", "constants", "const", "consts"],
            PathClass::Type => &["type", "types", "typedef", "alias", "aliases"],
            PathClass::Callable => &[
                "function",
                "functions",
                "method",
                "methods",
                "helper",
                "helpers",
                "routine",
                "routines",
                "procedure",
                "procedures",
                "callback",
                "callbacks",
                "macro",
                "macros",
                "lambda",
                "lambdas",
                "closure",
                "closures",
            ],
            PathClass::Class => &[
                "class",
                "classes",
                "struct",
                "structs",
                "enum",
                "enums",
                "enumeration",
                "trait",
                "traits",
                "interface",
                "interfaces",
                "type",
                "types",
            ],
            PathClass::Abstract => &[
                "abstract",
                "interface",
                "interfaces",
                "protocol",
                "protocols",
                "contract",
                "contracts",
                "declaration",
                "declarations",
                "declared",
                "prototype",
                "prototypes",
                "signature",
                "signatures",
            ],
        }
    }

    /// Whether a query with these (lower-case) words asks for this kind of file.
    pub fn asked_for(self, query_words: &[String]) -> bool {
        let asked = self.asked_by();
        query_words.iter().any(|w| asked.contains(&w.as_str()))
    }
}

impl fmt::Display for PathClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The factor of each class; classes not named keep [`PathClass::default_factor`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Priors {
    overrides: BTreeMap<PathClass, f32>,
}

impl Priors {
    /// The factor a result of `class` is multiplied by.
    pub fn factor(&self, class: PathClass) -> f32 {
        self.overrides
            .get(&class)
            .copied()
            .unwrap_or_else(|| class.default_factor())
    }

    /// Sets one factor; it must lie in [0, 1] (a prior lowers, it never promotes: 1 turns it
    /// off).
    pub fn set(&mut self, class: PathClass, factor: f32) -> Result<(), String> {
        if !(0.0..=1.0).contains(&factor) {
            return Err(format!(
                "the prior for {class} must lie between 0 and 1 (1 turns it off), not {factor}"
            ));
        }
        self.overrides.insert(class, factor);
        Ok(())
    }

    /// Parses `CLASS=FACTOR` (`test=1`, `docs=0.5`), as the CLI's `--prior` takes it.
    pub fn set_from_arg(&mut self, arg: &str) -> Result<(), String> {
        let (name, value) = arg
            .split_once('=')
            .ok_or_else(|| format!("expected CLASS=FACTOR (e.g. test=1), got {arg:?}"))?;
        let class = PathClass::parse(name).ok_or_else(|| {
            let known: Vec<&str> = PathClass::ALL.iter().map(|c| c.as_str()).collect();
            format!("unknown prior {name:?}: use one of {}", known.join(", "))
        })?;
        let factor: f32 = value
            .trim()
            .parse()
            .map_err(|_| format!("the factor in {arg:?} is not a number"))?;
        self.set(class, factor)
    }

    /// Checks factors that arrived from a settings file (the serde path skips [`Priors::set`]).
    pub fn validate(&self) -> Result<(), String> {
        let mut checked = Priors::default();
        for (&class, &factor) in &self.overrides {
            checked.set(class, factor)?;
        }
        Ok(())
    }
}

/// The prior of a function or method declared without a body (an interface's or abstract
/// class's member, a trait method without a default, a protocol requirement: the symbol
/// extractor marks it, [`StoredChunk::declaration`]) for a query of this shape:
/// [`PathClass::Abstract`] for a query in words, none for a bare identifier, and the caller
/// leaves it out for a query that names the symbol by all its words.
pub fn abstract_class(chunk: &StoredChunk, shape: QueryShape) -> Option<PathClass> {
    (shape != QueryShape::Identifier && chunk.declaration).then_some(PathClass::Abstract)
}

/// The kind prior of a symbol of this kind for a query of this shape, if any: constants and
/// type aliases for a query in words, functions and methods for a description of a thing,
/// classes, structs, enums, traits and interfaces for a command. None
/// for a bare identifier, and the caller leaves it out for a query that names the symbol by all
/// its words (`DRAFT_STATE symbol` asks for the constant).
/// Apart from [`classify`] because it is about what a symbol is, not where it lives: code → code
/// search ([`crate::search::similar`]) does not apply it.
pub fn kind_class(kind: SymbolKind, shape: QueryShape) -> Option<PathClass> {
    match kind {
        _ if shape == QueryShape::Identifier => None,
        SymbolKind::Constant => Some(PathClass::Constant),
        SymbolKind::Type => Some(PathClass::Type),
        SymbolKind::Function | SymbolKind::Method | SymbolKind::Macro
            if shape == QueryShape::Description =>
        {
            Some(PathClass::Callable)
        }
        SymbolKind::Class
        | SymbolKind::Struct
        | SymbolKind::Enum
        | SymbolKind::Trait
        | SymbolKind::Interface
            if shape == QueryShape::Action =>
        {
            Some(PathClass::Class)
        }
        _ => None,
    }
}

/// The classes a result at `path` (relative, forward slashes) belongs to. `container` and
/// `kind` catch tests that live beside the code (Rust's `mod tests`).
pub fn classify(
    path: &str,
    kind: SymbolKind,
    name: &str,
    container: Option<&str>,
) -> Vec<PathClass> {
    let mut classes = Vec::new();
    let (dirs, file) = match path.rsplit_once('/') {
        Some((dirs, file)) => (dirs, file),
        None => ("", path),
    };
    // Gradle and Kotlin Multiplatform name test source sets in camel case (`src/commonTest/`,
    // `src/jvmTest/`, `src/androidUnitTest/`), and Xcode names test targets after the app or
    // package (`AlamofireTests/`, `AppUITests/`).
    let test_source_set = dirs.split('/').any(|d| {
        let set = d
            .strip_suffix("UITests")
            .or_else(|| d.strip_suffix("Tests"))
            .or_else(|| d.strip_suffix("Test"));
        set.and_then(|set| set.chars().last())
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    let dirs: Vec<String> = dirs
        .split('/')
        .filter(|d| !d.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let in_dir = |names: &[&str]| dirs.iter().any(|d| names.contains(&d.as_str()));
    let (stem, ext) = match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, ext.to_ascii_lowercase()),
        _ => (file, String::new()),
    };
    let lower_stem = stem.to_ascii_lowercase();
    let lower_file = file.to_ascii_lowercase();

    let test_symbol = matches!(container, Some(c) if c == "tests" || c == "test")
        || (kind == SymbolKind::Module && (name == "tests" || name == "test"));
    // .NET test projects are folders named after the project they test: `Foo.Tests/`,
    // `Foo.UnitTests/`, and their files need not be named as tests (`TestObjects/Person.cs`).
    let test_project = dirs.iter().any(|d| {
        d.rsplit_once('.')
            .is_some_and(|(_, last)| TEST_PROJECT_SUFFIXES.contains(&last))
    });
    if test_symbol
        || in_dir(TEST_DIRS)
        || test_project
        || test_source_set
        || (named_tests(&ext) && is_test_file(stem, &lower_stem, &lower_file))
    {
        classes.push(PathClass::Test);
    }
    if in_dir(&["bench", "benches", "benchmark", "benchmarks"])
        || lower_stem.ends_with("_bench")
        || lower_stem.ends_with("_benchmark")
        || lower_stem.ends_with("_benchmarks")
        || stem.ends_with("Benchmark")
        || stem.ends_with("Benchmarks")
    {
        classes.push(PathClass::Bench);
    }
    let build = BUILD_FILES.contains(&lower_file.as_str())
        || BUILD_EXTENSIONS.contains(&ext.as_str())
        || lower_file.ends_with(".gradle.kts");
    // `CMakeLists.txt` is a build script, not prose.
    let prose = !build
        && matches!(
            ext.as_str(),
            "md" | "markdown" | "mdx" | "rst" | "adoc" | "asciidoc" | "txt"
        );
    let history = matches!(
        lower_stem.as_str(),
        "changelog"
            | "changes"
            | "history"
            | "news"
            | "releases"
            | "release-notes"
            | "release_notes"
    );
    if history {
        classes.push(PathClass::Changelog);
    } else if prose {
        classes.push(PathClass::Docs);
    }
    if in_dir(&[
        "example",
        "examples",
        "_examples",
        "demo",
        "demos",
        "sample",
        "samples",
        "docs_src",
        "cookbook",
    ]) || (!prose && in_dir(&["doc", "docs"]))
    {
        classes.push(PathClass::Example);
    }
    if in_dir(&[
        "vendor",
        "vendored",
        "third_party",
        "third-party",
        "thirdparty",
        "external",
        "extern",
    ]) {
        classes.push(PathClass::Vendored);
    }
    if in_dir(&["generated", "__generated__", "single_include"])
        || GENERATED_SUFFIXES.iter().any(|s| lower_file.ends_with(s))
        || lower_file.contains(".generated.")
        || lower_stem.ends_with("_generated")
        || lower_file.starts_with("zz_generated")
    {
        classes.push(PathClass::Generated);
    }
    if in_dir(&["compat", "_compat", "legacy", "polyfills"]) {
        classes.push(PathClass::Compat);
    }
    if lower_file.ends_with(".d.ts")
        || lower_file.ends_with(".d.mts")
        || lower_file.ends_with(".d.cts")
        || ext == "pyi"
    {
        classes.push(PathClass::Declarations);
    }
    if lower_file == "__init__.py" || lower_file == "package-info.java" {
        classes.push(PathClass::Reexport);
    }
    if build {
        classes.push(PathClass::Build);
    }
    classes
}

/// Build scripts and package manifests by their whole name, lower-cased.
const BUILD_FILES: &[&str] = &[
    "makefile",
    "gnumakefile",
    "cmakelists.txt",
    "meson.build",
    "build.xml",
    "pom.xml",
    "build.zig",
    "build.zig.zon",
    "cargo.toml",
    "go.mod",
    "package.json",
    "composer.json",
    "pubspec.yaml",
    "package.swift",
    "podfile",
    "gemfile",
    "rakefile",
    "mix.exs",
    "setup.py",
    "setup.cfg",
    "pyproject.toml",
    "stack.yaml",
    "directory.build.props",
    "build",
    "build.bazel",
    "workspace",
    "workspace.bazel",
];

/// Extensions only build scripts and manifests have.
const BUILD_EXTENSIONS: &[&str] = &[
    "sbt", "gradle", "cmake", "mk", "gemspec", "podspec", "cabal", "rockspec", "csproj", "fsproj",
    "vbproj", "bzl",
];

/// Whether files with this extension are tests by their name (`test_x.py`, `x_test.go`). Shell
/// scripts are not: shell test suites are `.bats` files or scripts under a test directory, and a
/// shell library or program named after tests is code (bats's own `lib/bats-core/test_functions.bash`
/// and `libexec/bats-core/bats-exec-test` are the framework, not its tests).
fn named_tests(ext: &str) -> bool {
    !matches!(ext, "" | "sh" | "bash" | "zsh" | "ksh")
}

/// Directories whose files are tests or test support.
const TEST_DIRS: &[&str] = &[
    "t",
    "test",
    "tests",
    "testing",
    "testdata",
    "test_data",
    "testutil",
    "testutils",
    "test_suite",
    "test-suite",
    "__tests__",
    "__mocks__",
    "spec",
    "specs",
    "e2e",
    "testfixtures",
];

/// The last dotted part of a .NET test project's folder, lower-cased (`Foo.Tests`).
const TEST_PROJECT_SUFFIXES: &[&str] = &[
    "test",
    "tests",
    "unittests",
    "integrationtests",
    "functionaltests",
    "specs",
    "testing",
];

const GENERATED_SUFFIXES: &[&str] = &[
    ".pb.go",
    ".pb.h",
    ".pb.cc",
    "_pb2.py",
    "_pb2_grpc.py",
    ".g.dart",
    ".freezed.dart",
    ".designer.cs",
];

/// Test file names of the languages coder-lsp indexes or is likely to meet: `test_x.py`,
/// `x_test.go`, `x.test.ts`, `x.spec.js`, `x_spec.rb`, `XTest.java`, `XTests.cs`, `XSpec.scala`,
/// `x.bats`, `conftest.py`, `test_helper.rb`, …
fn is_test_file(stem: &str, lower_stem: &str, lower_file: &str) -> bool {
    const LOWER_PREFIXES: &[&str] = &["test_", "tests_", "test-"];
    const LOWER_SUFFIXES: &[&str] = &[
        "_test", "_tests", "-test", "-tests", ".test", ".tests", "_spec", "-spec", ".spec",
        "_specs", ".e2e",
    ];
    // Upper-camel suffixes are checked case-sensitively: `LatestTest` is a test, `Contest` is not.
    const CAMEL_SUFFIXES: &[&str] = &["Test", "Tests", "Spec", "Specs", "Suite", "IT"];
    const NAMES: &[&str] = &[
        "test",
        "tests",
        "conftest",
        "test_helper",
        "test_helpers",
        "spec_helper",
        "testutil",
        "testutils",
        "testing_utils",
    ];
    if NAMES.contains(&lower_stem) {
        return true;
    }
    // Snapshots, and bats test files (`install.bats`).
    if lower_file.ends_with(".snap") || lower_file.ends_with(".bats") {
        return true;
    }
    LOWER_PREFIXES.iter().any(|p| lower_stem.starts_with(p))
        || LOWER_SUFFIXES.iter().any(|s| lower_stem.ends_with(s))
        || CAMEL_SUFFIXES.iter().any(|s| {
            stem.len() > s.len()
                && stem.ends_with(s)
                && stem[..stem.len() - s.len()]
                    .chars()
                    .last()
                    .is_some_and(char::is_alphanumeric)
                && stem.chars().next().is_some_and(char::is_uppercase)
        })
}

/// The version number of a directory named like an API version: `v3` → 3.
fn version_dir(name: &str) -> Option<u32> {
    let digits = name.strip_prefix('v').or_else(|| name.strip_prefix('V'))?;
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Directories of an older API version kept beside a newer one: `src/v3` when `src/v4` is
/// among `paths` too (zod 4 ships its version 3 for compatibility, and a question about zod
/// means the current one). Returned as path prefixes ending in `/`. A version alone (`api/v1`
/// with no `v2`) is current. Read from the paths a search found, so an old version is demoted
/// only where the new one competes with it.
pub fn superseded_versions<'a>(paths: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    // Parent directory → the version directories found under it.
    let mut versions: BTreeMap<&str, Vec<(u32, &str)>> = BTreeMap::new();
    for path in paths {
        let mut start = 0;
        for (i, _) in path.match_indices('/') {
            let name = &path[start..i];
            if let Some(n) = version_dir(name) {
                let parent = &path[..start];
                let found = versions.entry(parent).or_default();
                if !found.iter().any(|&(m, _)| m == n) {
                    found.push((n, &path[..=i]));
                }
            }
            start = i + 1;
        }
    }
    let mut out = Vec::new();
    for found in versions.values() {
        let newest = found.iter().map(|&(n, _)| n).max().unwrap_or(0);
        out.extend(
            found
                .iter()
                .filter(|&&(n, _)| n < newest)
                .map(|&(_, prefix)| prefix.to_string()),
        );
    }
    out
}

/// The superseded version directory (`v3`) that holds `path`, if any.
pub fn superseded_version_of<'a>(path: &str, superseded: &'a [String]) -> Option<&'a str> {
    superseded
        .iter()
        .find(|prefix| path.starts_with(prefix.as_str()))
        .map(|prefix| {
            let dir = prefix.trim_end_matches('/');
            dir.rsplit_once('/').map_or(dir, |(_, last)| last)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::symbols::Language;

    /// A method chunk as the index stores it: a header line, then the code.
    /// A method chunk, declared without a body or not.
    fn method(declaration: bool) -> StoredChunk {
        StoredChunk {
            id: 0,
            path: "src/Queue.java".into(),
            language: Language::Java,
            name: "run".into(),
            kind: SymbolKind::Method,
            container: Some("Queue".into()),
            start_line: 10,
            end_line: 10,
            signature: "void run(Task task)".into(),
            text: String::new(),
            declaration,
        }
    }

    #[test]
    fn a_declaration_without_a_body_is_abstract_for_a_query_in_words() {
        // Which symbols are declarations is the symbol extractor's to say (its test
        // `functions_declared_without_a_body_are_marked_in_every_language`); the prior reads it.
        let declaration = method(true);
        assert_eq!(
            abstract_class(&declaration, QueryShape::Action),
            Some(PathClass::Abstract)
        );
        assert_eq!(abstract_class(&declaration, QueryShape::Identifier), None);
        assert_eq!(abstract_class(&method(false), QueryShape::Action), None);
        assert!(PathClass::Abstract.asked_for(&["interface".to_string()]));
        assert_eq!(PathClass::parse("abstract"), Some(PathClass::Abstract));
        assert_eq!(Priors::default().factor(PathClass::Abstract), 0.7);
    }

    #[test]
    fn an_older_version_beside_a_newer_one_is_superseded() {
        let paths = [
            "packages/zod/src/v3/types.ts",
            "packages/zod/src/v4/core/schemas.ts",
            "packages/zod/src/v4/classic/schemas.ts",
            "api/v1/handlers.go",
            "lib/v2ray/config.go",
            "docs/v1/intro.md",
            "docs/v10/intro.md",
        ];
        let superseded = superseded_versions(paths);
        assert_eq!(superseded, vec!["docs/v1/", "packages/zod/src/v3/"]);
        assert_eq!(
            superseded_version_of("packages/zod/src/v3/errors.ts", &superseded),
            Some("v3")
        );
        assert_eq!(
            superseded_version_of("packages/zod/src/v4/core/errors.ts", &superseded),
            None
        );
        // A version with no newer sibling is the current one.
        assert_eq!(
            superseded_version_of("api/v1/handlers.go", &superseded),
            None
        );
        assert_eq!(version_dir("v2ray"), None);
        assert_eq!(version_dir("v"), None);
        assert!(superseded_versions(["src/v3/a.ts", "src/v3/b.ts"]).is_empty());
    }

    fn classes(path: &str) -> Vec<PathClass> {
        classify(path, SymbolKind::Function, "f", None)
    }

    #[test]
    fn test_files_of_every_language_are_tests() {
        for path in [
            "tests/cli.rs",
            "src/__tests__/a.ts",
            "pkg/router_test.go",
            "test_sessions.py",
            "tests/conftest.py",
            "lib/router.test.js",
            "src/app.spec.tsx",
            "spec/rack/request_spec.rb",
            "src/test/java/com/google/gson/GsonTest.java",
            "Tests/RouterTests.swift",
            "core/src/test/scala/cats/MonadSuite.scala",
            "absl/strings/str_cat_test.cc",
            "lua/telescope/finders_spec.lua",
            // busted: `*_spec.lua` files and their helpers under `spec/`
            "spec/busted/core_spec.lua",
            "spec/helpers/init.lua",
            // PHPUnit: `*Test.php` files, under `tests/`
            "tests/Unit/UserTest.php",
            "src/Symfony/Component/Yaml/Tests/ParserTest.php",
            "tests/bootstrap.php",
            "src/MessagePack.Tests/FormatterTests.cs",
            // .NET: `*Tests.cs`, `*Test.cs`, and whole test projects (`Foo.Tests/`)
            "Tests/AccountTest.cs",
            "Src/Newtonsoft.Json.Tests/TestObjects/Person.cs",
            "src/Serilog.UnitTests/Support/Some.cs",
            // Bash: bats files, scripts and helpers under `test/`, `tests/` or `t/`
            "install.bats",
            "test/helpers/assert.bash",
            "t/run_test.sh",
            "tests/test_install.sh",
            // Kotlin: `*Test.kt`, `*Tests.kt`, `src/test/`, and Gradle's test source sets
            "okio/src/jvmTest/kotlin/okio/BufferTest.kt",
            "src/main/kotlin/AccountTests.kt",
            "src/test/kotlin/okio/util.kt",
            "okio/src/commonTest/kotlin/okio/util.kt",
            "app/src/androidUnitTest/kotlin/Fakes.kt",
            "src/integrationTest/kotlin/Fixtures.kt",
            "src/testFixtures/kotlin/Accounts.kt",
            // Swift: `*Tests.swift`, SwiftPM's `Tests/`, Xcode test targets
            "Sources/Bank/AccountTests.swift",
            "Tests/BankTests/Fixtures.swift",
            "BankAppTests/Helpers.swift",
            "BankAppUITests/Launch.swift",
            // Elixir: ExUnit's `test/**/*_test.exs`, its helper and support modules
            "test/bank/account_test.exs",
            "test/test_helper.exs",
            "test/support/conn_case.ex",
            "apps/bank/test/bank_test.exs",
            // Zig: `*_test.zig` beside the code, `test/` and `tests/` trees
            "lib/std/json/scanner_test.zig",
            "test/behavior/align.zig",
            "tests/parse.zig",
            // Dart: `test/**/*_test.dart` (package:test)
            "test/transport/t_framed_transport_test.dart",
            "packages/core/test/flex_builder_test.dart",
            // Haskell: hspec's `test/**/*Spec.hs`, tasty's and QuickCheck's `tests/` trees, the
            // `test-suite` directory some packages name after their Cabal stanza
            "test/Text/Megaparsec/CharSpec.hs",
            "tests/QC/ByteString.hs",
            "test-suite/Options/ParserTest.hs",
        ] {
            assert!(classes(path).contains(&PathClass::Test), "{path}");
        }
        for path in [
            "src/contest.rs",
            "lib/latest.js",
            "src/Contest.java",
            "src/attestation.py",
            "src/testing_tools_are_not_here/x.rs",
            "lua/plenary/inspect.lua",
            "src/Illuminate/Support/Contest.php",
            "src/Attestation.php",
            "Src/Newtonsoft.Json/Linq/JToken.cs",
            "src/Contests.Api/Contest.cs",
            "src/Latest.cs",
            "scripts/run-tests-in-ci.sh",
            "src/main/kotlin/Contest.kt",
            "okio/src/commonMain/kotlin/okio/Latest.kt",
            "src/main/kotlin/latest/Attest.kt",
            "src/main/kotlin/ABTest/Split.kt",
            "Sources/Bank/Contest.swift",
            "Sources/Contests/Latest.swift",
            "lib/bank/contest.ex",
            "lib/plug/test_helpers_are_not_here/attest.ex",
            "apps/bank/lib/bank/latest.ex",
            "lib/std/json/scanner.zig",
            "src/contest.zig",
            "lib/std/testing.zig",
        ] {
            assert!(!classes(path).contains(&PathClass::Test), "{path}");
        }
        // Rust unit tests live beside the code.
        assert!(
            classify(
                "src/walk.rs",
                SymbolKind::Function,
                "skips_binary",
                Some("tests")
            )
            .contains(&PathClass::Test)
        );
        assert!(
            classify("src/walk.rs", SymbolKind::Module, "tests", None).contains(&PathClass::Test)
        );
        // Zig `test "…"` blocks live beside the code too, in the `test` container.
        assert!(
            classify(
                "lib/std/json/scanner.zig",
                SymbolKind::Function,
                "skip whitespace",
                Some("test")
            )
            .contains(&PathClass::Test)
        );
        assert!(
            !classify(
                "lib/std/json/scanner.zig",
                SymbolKind::Method,
                "skipWhitespace",
                Some("Scanner")
            )
            .contains(&PathClass::Test)
        );
    }

    #[test]
    fn docs_changelogs_examples_and_the_rest() {
        assert_eq!(classes("README.md"), vec![PathClass::Docs]);
        assert_eq!(classes("History.md"), vec![PathClass::Changelog]);
        assert_eq!(classes("CHANGELOG"), vec![PathClass::Changelog]);
        assert_eq!(
            classes("docs_src/tutorial/app.py"),
            vec![PathClass::Example]
        );
        assert_eq!(classes("docs/guide.md"), vec![PathClass::Docs]);
        assert_eq!(classes("examples/hello/main.go"), vec![PathClass::Example]);
        assert_eq!(
            classes("third_party/zlib/inflate.c"),
            vec![PathClass::Vendored]
        );
        assert_eq!(
            classes("single_include/nlohmann/json.hpp"),
            vec![PathClass::Generated]
        );
        assert_eq!(classes("api/v1/service.pb.go"), vec![PathClass::Generated]);
        // flatc's output, in every language it writes (`monster_generated.dart`, `.h`, `.rs`).
        assert_eq!(
            classes("lib/monster_my_game_generated.dart"),
            vec![PathClass::Generated]
        );
        assert_eq!(
            classes("include/schema_generated.h"),
            vec![PathClass::Generated]
        );
        assert_eq!(
            classes("lib/models/user.g.dart"),
            vec![PathClass::Generated]
        );
        assert_eq!(classes("src/_compat.py"), Vec::<PathClass>::new());
        assert_eq!(classes("src/compat/py2.py"), vec![PathClass::Compat]);
        assert_eq!(classes("types/index.d.ts"), vec![PathClass::Declarations]);
        assert_eq!(classes("pkg/__init__.py"), vec![PathClass::Reexport]);
        assert_eq!(classes("benches/parse.rs"), vec![PathClass::Bench]);
        // Haskell's criterion benchmarks (attoparsec's `benchmarks/Sets.hs`).
        assert_eq!(classes("benchmarks/Sets.hs"), vec![PathClass::Bench]);
        assert!(classes("src/router.rs").is_empty());
        assert!(classes("lib/express.js").is_empty());
    }

    #[test]
    fn a_shell_script_is_a_test_by_its_directory_not_its_name() {
        // bats's framework: its library and programs are named after tests.
        for path in [
            "lib/bats-core/test_functions.bash",
            "libexec/bats-core/bats-exec-test",
            "bin/run-tests",
            "scripts/test_env.sh",
        ] {
            assert!(classes(path).is_empty(), "{path}");
        }
        // Other languages keep their naming conventions.
        assert_eq!(classes("lib/test_functions.py"), vec![PathClass::Test]);
        assert_eq!(classes("pkg/functions_test.go"), vec![PathClass::Test]);
    }

    #[test]
    fn build_scripts_and_manifests_of_every_ecosystem_are_build_files() {
        for path in [
            "support/json4s/build.sbt",
            "project/plugins.sbt",
            "app/build.gradle",
            "app/build.gradle.kts",
            "settings.gradle.kts",
            "pom.xml",
            "Makefile",
            "src/GNUmakefile",
            "CMakeLists.txt",
            "cmake/FindFoo.cmake",
            "rules.mk",
            "meson.build",
            "Cargo.toml",
            "serde_derive/Cargo.toml",
            "go.mod",
            "package.json",
            "composer.json",
            "setup.py",
            "pyproject.toml",
            "Gemfile",
            "Rakefile",
            "hashie.gemspec",
            "mix.exs",
            "Package.swift",
            "pubspec.yaml",
            "megaparsec.cabal",
            "penlight-1.14.0-1.rockspec",
            "src/Newtonsoft.Json/Newtonsoft.Json.csproj",
            "BUILD.bazel",
            "build.zig",
        ] {
            assert_eq!(classes(path), vec![PathClass::Build], "{path}");
        }
        // Code that only shares a word with them is code.
        for path in [
            "lib/build.rb",
            "src/build/mod.rs",
            "src/package.rs",
            "lib/makefile_parser.py",
            "builder.go",
            "src/setup.ts",
        ] {
            assert!(classes(path).is_empty(), "{path}");
        }
        // A package's own tests stay tests, and a test fixture that is a manifest is both.
        assert_eq!(
            classes("tests/fixtures/package.json"),
            vec![PathClass::Test, PathClass::Build]
        );
    }

    #[test]
    fn a_query_can_ask_for_a_class() {
        let words = |q: &str| -> Vec<String> { q.split_whitespace().map(str::to_string).collect() };
        assert!(PathClass::Test.asked_for(&words("the tests for the router")));
        assert!(PathClass::Changelog.asked_for(&words("changelog of version 2")));
        assert!(!PathClass::Test.asked_for(&words("where is the router")));
        assert!(PathClass::Example.asked_for(&words("an example of middleware")));
        assert!(PathClass::Build.asked_for(&words("where are the dependencies declared")));
        assert!(PathClass::Build.asked_for(&words("the gradle build")));
        // "build" and "package" are words commands use: they do not ask for build files.
        assert!(!PathClass::Build.asked_for(&words("build the list of locales to try")));
        assert!(!PathClass::Build.asked_for(&words("the package version string")));
    }

    #[test]
    fn factors_default_and_can_be_overridden() {
        let mut priors = Priors::default();
        assert_eq!(
            priors.factor(PathClass::Test),
            PathClass::Test.default_factor()
        );
        priors.set_from_arg("tests=1").unwrap();
        assert_eq!(priors.factor(PathClass::Test), 1.0);
        priors.set_from_arg("Docs = 0.5").unwrap();
        assert_eq!(priors.factor(PathClass::Docs), 0.5);
        let mut kinds = Priors::default();
        kinds.set_from_arg("constants=1").unwrap();
        assert_eq!(kinds.factor(PathClass::Constant), 1.0);
        assert_eq!(kinds.factor(PathClass::Callable), 0.6);
        let sentence = QueryShape::Action;
        assert_eq!(
            kind_class(SymbolKind::Type, sentence),
            Some(PathClass::Type)
        );
        assert_eq!(kind_class(SymbolKind::Type, QueryShape::Identifier), None);
        assert_eq!(kind_class(SymbolKind::Function, sentence), None);
        assert_eq!(
            kind_class(SymbolKind::Function, QueryShape::Description),
            Some(PathClass::Callable)
        );
        // A command is carried out by a function or a method: types yield to them, for it only.
        for kind in [
            SymbolKind::Class,
            SymbolKind::Struct,
            SymbolKind::Enum,
            SymbolKind::Trait,
            SymbolKind::Interface,
        ] {
            assert_eq!(kind_class(kind, QueryShape::Action), Some(PathClass::Class));
            assert_eq!(kind_class(kind, QueryShape::Description), None);
            assert_eq!(kind_class(kind, QueryShape::Topic), None);
            assert_eq!(kind_class(kind, QueryShape::Identifier), None);
        }
        assert_eq!(kind_class(SymbolKind::Method, QueryShape::Action), None);
        assert_eq!(kind_class(SymbolKind::Impl, QueryShape::Action), None);
        assert_eq!(priors.factor(PathClass::Class), 0.85);
        assert_eq!(PathClass::parse("classes"), Some(PathClass::Class));
        assert_eq!(PathClass::parse("Class"), Some(PathClass::Class));
        assert!(PathClass::Class.asked_for(&["enum".to_string(), "of".to_string()]));
        assert!(
            priors
                .set_from_arg("docs=2")
                .unwrap_err()
                .contains("between 0 and 1")
        );
        assert!(
            priors
                .set_from_arg("gizmo=1")
                .unwrap_err()
                .contains("unknown prior")
        );
        assert!(
            priors
                .set_from_arg("test")
                .unwrap_err()
                .contains("CLASS=FACTOR")
        );
        assert!(
            priors
                .set_from_arg("test=x")
                .unwrap_err()
                .contains("not a number")
        );
        let parsed: Priors = serde_json::from_str(r#"{"test": 1.0, "docs": 0.5}"#).unwrap();
        assert_eq!(parsed, priors);
        let bad: Priors = serde_json::from_str(r#"{"test": 3.0}"#).unwrap();
        assert!(bad.validate().is_err());
        for class in PathClass::ALL {
            assert_eq!(PathClass::parse(class.as_str()), Some(class));
            let f = class.default_factor();
            assert!(f > 0.0 && f <= 1.0);
        }
    }
}
