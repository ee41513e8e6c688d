//! Which files are indexed, and as what.
//!
//! Detection is by file name and extension only: it runs on every path of the workspace walk,
//! so it must be cheap and must not read the file. Generated files that are pure noise for
//! search (lock files, minified bundles) are rejected here.

use std::fmt;
use std::path::Path;

use super::{Language, SymbolKind};

/// Lock files and other machine-written manifests: large, unsearchable, and churned by tools.
const IGNORED_FILE_NAMES: &[&str] = &[
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "bun.lock",
    "bun.lockb",
    "cargo.lock",
    "poetry.lock",
    "pipfile.lock",
    "uv.lock",
    "pdm.lock",
    "composer.lock",
    "gemfile.lock",
    "podfile.lock",
    "flake.lock",
    "go.sum",
    "mix.lock",
    "pubspec.lock",
    "packages.lock.json",
    "deno.lock",
];

/// Files without a telling extension that are still worth indexing as text.
const TEXT_FILE_NAMES: &[&str] = &[
    "makefile",
    "gnumakefile",
    "dockerfile",
    "containerfile",
    "cmakelists.txt",
    "jenkinsfile",
    "vagrantfile",
    "gemfile",
    "rakefile",
    "podfile",
    "procfile",
    "justfile",
    "brewfile",
    "readme",
    "changelog",
    "contributing",
    "install",
    "hacking",
];

/// Text formats and languages without a grammar in this build: indexed as line windows.
#[rustfmt::skip]
const TEXT_EXTENSIONS: &[&str] = &[
    // prose and markup
    "txt", "text", "rst", "adoc", "asciidoc", "org", "tex", "html", "htm", "xml", "xsd", "xsl",
    // configuration and data
    "toml", "yaml", "yml", "json", "jsonc", "json5", "ini", "cfg", "conf", "properties",
    "tf", "tfvars", "hcl", "nix", "cue", "dhall",
    // build files
    "cmake", "gradle", "mk", "make", "bazel", "bzl", "sbt", "dockerfile",
    // shells and scripts
    "zsh", "fish", "ps1", "psm1", "bat", "cmd", "awk", "sed",
    // interface definitions and queries
    "sql", "proto", "thrift", "graphql", "gql", "prisma", "scm",
    // styles and templates
    "css", "scss", "sass", "less", "vue", "svelte", "astro", "hbs", "j2", "jinja", "erb",
    // other programming languages
    "fs", "fsx", "vb",
    "r", "jl", "erl", "hrl", "lhs", "ml", "mli", "clj", "cljs", "cljc", "edn",
    "pl", "pm", "groovy", "elm", "nim", "cr", "d", "m", "mm", "sol", "vim", "el",
    "lisp", "rkt", "tcl", "asm", "s", "f90", "cu", "cuh", "glsl", "hlsl", "wgsl", "metal",
];

impl Language {
    /// Every language and format, code languages first.
    pub const ALL: [Language; 23] = [
        Language::Rust,
        Language::Python,
        Language::JavaScript,
        Language::TypeScript,
        Language::Tsx,
        Language::Go,
        Language::Java,
        Language::C,
        Language::Cpp,
        Language::Ruby,
        Language::Lua,
        Language::Php,
        Language::CSharp,
        Language::Bash,
        Language::Kotlin,
        Language::Swift,
        Language::Elixir,
        Language::Zig,
        Language::Scala,
        Language::Dart,
        Language::Haskell,
        Language::Markdown,
        Language::Text,
    ];

    /// Detects how a file should be indexed from its name; `None` means "do not index".
    pub fn from_path(path: &Path) -> Option<Language> {
        let file_name = path.file_name()?.to_str()?;
        let lower = file_name.to_ascii_lowercase();
        if IGNORED_FILE_NAMES.contains(&lower.as_str()) {
            return None;
        }
        if lower.ends_with(".min.js") || lower.ends_with(".min.css") || lower.ends_with(".lock") {
            return None;
        }
        if TEXT_FILE_NAMES.contains(&lower.as_str()) || lower.starts_with("dockerfile.") {
            return Some(Language::Text);
        }
        let (_, ext) = file_name.rsplit_once('.')?;
        // Unix tradition: `.C` and `.H` are C++, lower-case `.c`/`.h` are C.
        if ext == "C" || ext == "H" {
            return Some(Language::Cpp);
        }
        let ext = ext.to_ascii_lowercase();
        let language = match ext.as_str() {
            "rs" => Language::Rust,
            "py" | "pyi" => Language::Python,
            "js" | "mjs" | "cjs" | "jsx" => Language::JavaScript,
            "ts" | "mts" | "cts" => Language::TypeScript,
            "tsx" => Language::Tsx,
            "go" => Language::Go,
            "java" => Language::Java,
            "c" | "h" => Language::C,
            "cc" | "cpp" | "cxx" | "c++" | "hpp" | "hh" | "hxx" | "h++" | "ipp" | "tpp" => {
                Language::Cpp
            }
            "rb" | "rake" | "gemspec" | "ru" => Language::Ruby,
            "lua" | "rockspec" => Language::Lua,
            "php" | "phtml" => Language::Php,
            "cs" | "csx" => Language::CSharp,
            "sh" | "bash" | "bats" => Language::Bash,
            "kt" | "kts" => Language::Kotlin,
            "swift" => Language::Swift,
            "ex" | "exs" => Language::Elixir,
            "zig" => Language::Zig,
            "scala" | "sc" => Language::Scala,
            "dart" => Language::Dart,
            "hs" => Language::Haskell,
            "md" | "markdown" | "mdx" => Language::Markdown,
            other if TEXT_EXTENSIONS.contains(&other) => Language::Text,
            _ => return None,
        };
        Some(language)
    }

    /// The stable lower-case name, as stored in the index and accepted by [`Language::parse_name`].
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "javascript",
            Language::TypeScript => "typescript",
            Language::Tsx => "tsx",
            Language::Go => "go",
            Language::Java => "java",
            Language::C => "c",
            Language::Cpp => "cpp",
            Language::Ruby => "ruby",
            Language::Lua => "lua",
            Language::Php => "php",
            Language::CSharp => "csharp",
            Language::Bash => "bash",
            Language::Kotlin => "kotlin",
            Language::Swift => "swift",
            Language::Elixir => "elixir",
            Language::Zig => "zig",
            Language::Scala => "scala",
            Language::Dart => "dart",
            Language::Haskell => "haskell",
            Language::Markdown => "markdown",
            Language::Text => "text",
        }
    }

    /// Parses a name from [`Language::name`] (case-insensitive), plus the usual short aliases
    /// people type on a command line (`rs`, `py`, `js`, `ts`, `c++`, `md`, …).
    pub fn parse_name(name: &str) -> Option<Language> {
        let language = match name.trim().to_ascii_lowercase().as_str() {
            "rust" | "rs" => Language::Rust,
            "python" | "py" => Language::Python,
            "javascript" | "js" | "jsx" => Language::JavaScript,
            "typescript" | "ts" => Language::TypeScript,
            "tsx" => Language::Tsx,
            "go" | "golang" => Language::Go,
            "java" => Language::Java,
            "c" => Language::C,
            "cpp" | "c++" | "cxx" => Language::Cpp,
            "ruby" | "rb" => Language::Ruby,
            "lua" => Language::Lua,
            "php" => Language::Php,
            "csharp" | "c#" | "cs" => Language::CSharp,
            "bash" | "sh" | "shell" => Language::Bash,
            "kotlin" | "kt" => Language::Kotlin,
            "swift" => Language::Swift,
            "elixir" | "ex" => Language::Elixir,
            "zig" => Language::Zig,
            "scala" => Language::Scala,
            "dart" => Language::Dart,
            "haskell" | "hs" => Language::Haskell,
            "markdown" | "md" => Language::Markdown,
            "text" | "txt" => Language::Text,
            _ => return None,
        };
        Some(language)
    }

    /// Whether this build cuts files of this language into plain line windows: text formats, and
    /// code languages built without their grammar (Haskell in a default build).
    pub fn read_as_text(self) -> bool {
        self == Language::Text || (self.feature().is_some() && !self.has_grammar())
    }

    /// Whether files of this language are parsed with tree-sitter in this build (as opposed to
    /// being split into Markdown sections or line windows): a code language whose grammar's
    /// Cargo feature ([`Language::feature`]) was off is read as text windows.
    pub fn has_grammar(self) -> bool {
        super::code::grammar_parts(self).is_some()
    }

    /// The Cargo feature that compiles this language's grammar in (`lang-rust`, …); `None` for
    /// Markdown and text, which need none.
    pub fn feature(self) -> Option<&'static str> {
        Some(match self {
            Language::Rust => "lang-rust",
            Language::Python => "lang-python",
            Language::JavaScript => "lang-javascript",
            Language::TypeScript | Language::Tsx => "lang-typescript",
            Language::Go => "lang-go",
            Language::Java => "lang-java",
            Language::C => "lang-c",
            Language::Cpp => "lang-cpp",
            Language::Ruby => "lang-ruby",
            Language::Lua => "lang-lua",
            Language::Php => "lang-php",
            Language::CSharp => "lang-csharp",
            Language::Bash => "lang-bash",
            Language::Kotlin => "lang-kotlin",
            Language::Swift => "lang-swift",
            Language::Elixir => "lang-elixir",
            Language::Zig => "lang-zig",
            Language::Scala => "lang-scala",
            Language::Dart => "lang-dart",
            Language::Haskell => "lang-haskell",
            Language::Markdown | Language::Text => return None,
        })
    }

    /// Whether this language's grammar is left out of a default build (`all-languages`) and
    /// compiled in only on request (its `lang-*` feature): Haskell, whose symbols ranked below its
    /// text windows with the default model (`bench/quality/RESULTS.md`, "Haskell").
    pub fn opt_in(self) -> bool {
        self == Language::Haskell
    }

    /// The code languages this build was compiled without (their grammars' features were off),
    /// in [`Language::ALL`] order; in a default build, the [opt-in](Language::opt_in) ones.
    pub fn without_grammar() -> Vec<Language> {
        Language::ALL
            .into_iter()
            .filter(|l| l.feature().is_some() && !l.has_grammar())
            .collect()
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// On the wire (search results, JSON output) a language is its [`Language::name`].
impl serde::Serialize for Language {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// On the wire a kind is its [`SymbolKind::as_str`].
impl serde::Serialize for SymbolKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl SymbolKind {
    /// Every kind, in declaration order.
    pub const ALL: [SymbolKind; 14] = [
        SymbolKind::Function,
        SymbolKind::Method,
        SymbolKind::Class,
        SymbolKind::Struct,
        SymbolKind::Enum,
        SymbolKind::Trait,
        SymbolKind::Interface,
        SymbolKind::Impl,
        SymbolKind::Object,
        SymbolKind::Module,
        SymbolKind::Type,
        SymbolKind::Constant,
        SymbolKind::Macro,
        SymbolKind::Section,
    ];

    /// The stable lower-case name, as stored in the index and used in query files
    /// (`@definition.<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            SymbolKind::Function => "function",
            SymbolKind::Method => "method",
            SymbolKind::Class => "class",
            SymbolKind::Struct => "struct",
            SymbolKind::Enum => "enum",
            SymbolKind::Trait => "trait",
            SymbolKind::Interface => "interface",
            SymbolKind::Impl => "impl",
            SymbolKind::Object => "object",
            SymbolKind::Module => "module",
            SymbolKind::Type => "type",
            SymbolKind::Constant => "constant",
            SymbolKind::Macro => "macro",
            SymbolKind::Section => "section",
        }
    }

    /// Parses a name from [`SymbolKind::as_str`] (case-insensitive).
    pub fn parse(name: &str) -> Option<SymbolKind> {
        let name = name.trim();
        SymbolKind::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(name))
    }

    /// Kinds that other symbols can sit in; their name becomes the `container` of what they hold.
    pub fn is_container(self) -> bool {
        matches!(
            self,
            SymbolKind::Class
                | SymbolKind::Struct
                | SymbolKind::Enum
                | SymbolKind::Trait
                | SymbolKind::Interface
                | SymbolKind::Impl
                | SymbolKind::Object
                | SymbolKind::Module
        )
    }
}

impl fmt::Display for SymbolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(path: &str) -> Option<Language> {
        Language::from_path(Path::new(path))
    }

    #[test]
    fn code_extensions() {
        assert_eq!(detect("src/main.rs"), Some(Language::Rust));
        assert_eq!(detect("pkg/mod.py"), Some(Language::Python));
        assert_eq!(detect("typings/x.pyi"), Some(Language::Python));
        assert_eq!(detect("a.js"), Some(Language::JavaScript));
        assert_eq!(detect("a.mjs"), Some(Language::JavaScript));
        assert_eq!(detect("a.cjs"), Some(Language::JavaScript));
        assert_eq!(detect("App.jsx"), Some(Language::JavaScript));
        assert_eq!(detect("a.ts"), Some(Language::TypeScript));
        assert_eq!(detect("a.mts"), Some(Language::TypeScript));
        assert_eq!(detect("a.cts"), Some(Language::TypeScript));
        assert_eq!(detect("types.d.ts"), Some(Language::TypeScript));
        assert_eq!(detect("App.tsx"), Some(Language::Tsx));
        assert_eq!(detect("main.go"), Some(Language::Go));
        assert_eq!(detect("Main.java"), Some(Language::Java));
        assert_eq!(detect("x.c"), Some(Language::C));
        assert_eq!(detect("x.h"), Some(Language::C));
        for ext in ["cc", "cpp", "cxx", "c++", "hpp", "hh", "hxx", "h++"] {
            assert_eq!(detect(&format!("x.{ext}")), Some(Language::Cpp), "{ext}");
        }
        assert_eq!(detect("legacy.C"), Some(Language::Cpp));
        assert_eq!(detect("LOUD.RS"), Some(Language::Rust));
        for name in [
            "lib/rack/request.rb",
            "tasks/release.rake",
            "rack.gemspec",
            "config.ru",
        ] {
            assert_eq!(detect(name), Some(Language::Ruby), "{name}");
        }
        for name in ["lua/telescope/init.lua", "busted-2.2.0-1.rockspec"] {
            assert_eq!(detect(name), Some(Language::Lua), "{name}");
        }
        for name in ["src/Http/Request.php", "views/layout.phtml"] {
            assert_eq!(detect(name), Some(Language::Php), "{name}");
        }
        for name in ["src/Newtonsoft.Json/JsonConvert.cs", "build.csx"] {
            assert_eq!(detect(name), Some(Language::CSharp), "{name}");
        }
        for name in [
            "scripts/install.sh",
            "lib/bash-completion.bash",
            "test/run.bats",
        ] {
            assert_eq!(detect(name), Some(Language::Bash), "{name}");
        }
        for name in ["src/main/kotlin/okio/Buffer.kt", "build.gradle.kts"] {
            assert_eq!(detect(name), Some(Language::Kotlin), "{name}");
        }
        for name in ["Sources/Alamofire/Session.swift", "Package.swift"] {
            assert_eq!(detect(name), Some(Language::Swift), "{name}");
        }
        for name in ["lib/plug/conn.ex", "test/plug/conn_test.exs", "mix.exs"] {
            assert_eq!(detect(name), Some(Language::Elixir), "{name}");
        }
        for name in ["lib/std/json/static.zig", "build.zig"] {
            assert_eq!(detect(name), Some(Language::Zig), "{name}");
        }
        for name in [
            "src/main/scala/jawn/Parser.scala",
            "project/Build.scala",
            "fetch.sc",
        ] {
            assert_eq!(detect(name), Some(Language::Scala), "{name}");
        }
        for name in [
            "src/Data/Attoparsec/Combinator.hs",
            "app/Main.hs",
            "Setup.hs",
        ] {
            assert_eq!(detect(name), Some(Language::Haskell), "{name}");
        }
    }

    #[test]
    fn markdown_and_text() {
        assert_eq!(detect("README.md"), Some(Language::Markdown));
        assert_eq!(detect("docs/guide.markdown"), Some(Language::Markdown));
        assert_eq!(detect("page.mdx"), Some(Language::Markdown));
        for name in [
            "notes.txt",
            "index.rst",
            "Cargo.toml",
            "ci.yml",
            "ci.yaml",
            "tsconfig.json",
            "setup.cfg",
            "prompt.zsh",
            "schema.sql",
            "index.html",
            "style.scss",
            "api.proto",
            // Literate Haskell is prose with code in it: text.
            "Main.lhs",
            "analysis.R",
            "Makefile",
            "Dockerfile",
            "Dockerfile.dev",
            "CMakeLists.txt",
            "README",
        ] {
            assert_eq!(detect(name), Some(Language::Text), "{name}");
        }
    }

    #[test]
    fn rejected_files() {
        for name in [
            "package-lock.json",
            "web/yarn.lock",
            "Cargo.lock",
            "poetry.lock",
            "pnpm-lock.yaml",
            "go.sum",
            "dist/app.min.js",
            "logo.png",
            "archive.tar.gz",
            "binary",
            "LICENSE",
            ".gitignore",
            "",
        ] {
            assert_eq!(detect(name), None, "{name}");
        }
    }

    #[test]
    fn names_round_trip() {
        for language in Language::ALL {
            assert_eq!(Language::parse_name(language.name()), Some(language));
            assert_eq!(language.to_string(), language.name());
        }
        assert_eq!(Language::parse_name("C++"), Some(Language::Cpp));
        assert_eq!(Language::parse_name("RS"), Some(Language::Rust));
        assert_eq!(Language::parse_name("C#"), Some(Language::CSharp));
        assert_eq!(Language::parse_name("kt"), Some(Language::Kotlin));
        assert_eq!(Language::parse_name("cobol"), None);
        assert_eq!(Language::Tsx.name(), "tsx");
        assert_eq!(Language::Go.has_grammar(), cfg!(feature = "lang-go"));
        assert_eq!(Language::Ruby.has_grammar(), cfg!(feature = "lang-ruby"));
        assert_eq!(
            Language::Tsx.has_grammar(),
            cfg!(feature = "lang-typescript")
        );
        assert!(!Language::Markdown.has_grammar());
        assert_eq!(Language::Tsx.feature(), Some("lang-typescript"));
        assert_eq!(Language::Text.feature(), None);
        // A default build parses every code language it knows but the opt-in ones.
        if cfg!(feature = "all-languages") {
            assert!(Language::without_grammar().iter().all(|l| l.opt_in()));
        } else {
            assert!(Language::without_grammar().iter().any(|l| !l.opt_in()));
        }
        assert_eq!(
            Language::Haskell.has_grammar(),
            cfg!(feature = "lang-haskell")
        );
        assert_eq!(
            Language::Haskell.read_as_text(),
            !cfg!(feature = "lang-haskell")
        );
        assert!(Language::Text.read_as_text());
        assert!(!Language::Markdown.read_as_text());
    }

    #[test]
    fn kinds_round_trip() {
        for kind in SymbolKind::ALL {
            assert_eq!(SymbolKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(SymbolKind::parse("Function"), Some(SymbolKind::Function));
        assert_eq!(SymbolKind::Impl.as_str(), "impl");
        assert_eq!(SymbolKind::Section.as_str(), "section");
        assert_eq!(SymbolKind::parse("variable"), None);
        assert!(SymbolKind::Impl.is_container());
        assert!(!SymbolKind::Function.is_container());
    }
}
