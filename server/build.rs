//! Build script: the tree-sitter grammars with their parse tables compressed.
//!
//! Each `lang-*` feature brings a grammar crate whose `parser.c` holds the parse tables as
//! initialised read-only arrays: about 29 MB of the binary with every grammar, mostly zeros.
//! For each enabled grammar this script
//!
//! 1. compiles the crate's `parser.c` (with its `scanner.c`) into a small program for the machine
//!    running the build and runs it, which writes the bytes of the large tables;
//! 2. compresses those bytes (zlib) into `OUT_DIR`, to be embedded with `include_bytes!`;
//! 3. compiles a copy of `parser.c` in which the same tables are declared without initialiser
//!    (zero-filled memory at run time, no bytes in the file), with an accessor that returns each
//!    table's address, and its entry point renamed so it cannot meet the crate's own;
//! 4. writes `grammars.rs`, one `Grammar` static per grammar, for `symbols::grammars`, which
//!    inflates a grammar's tables into place the first time its language is used (and, for its
//!    tests, `ALL`: each grammar beside the language its crate ships).
//!
//! The external scanner still comes from the grammar crate. Where a step cannot run (no native
//! compiler that can run its output, a target of another byte order, `cargo metadata`
//! unavailable, a `parser.c` of an unexpected shape), that grammar is linked as its crate ships it:
//! the same parser, only larger, and the build prints a warning. `CODER_LSP_FULL_GRAMMARS=1`
//! asks for that on purpose.

use std::collections::HashMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One grammar: the feature that enables it, the crate and folder holding its `parser.c`, its
/// C name (`tree_sitter_<name>`), and the crate's own `LanguageFn`.
struct Spec {
    feature: &'static str,
    krate: &'static str,
    dir: &'static str,
    name: &'static str,
    linked: &'static str,
}

const fn spec(
    feature: &'static str,
    krate: &'static str,
    dir: &'static str,
    name: &'static str,
    linked: &'static str,
) -> Spec {
    Spec {
        feature,
        krate,
        dir,
        name,
        linked,
    }
}

#[rustfmt::skip]
const GRAMMARS: &[Spec] = &[
    spec("rust", "tree-sitter-rust", "src", "rust", "tree_sitter_rust::LANGUAGE"),
    spec("python", "tree-sitter-python", "src", "python", "tree_sitter_python::LANGUAGE"),
    spec("javascript", "tree-sitter-javascript", "src", "javascript", "tree_sitter_javascript::LANGUAGE"),
    spec("typescript", "tree-sitter-typescript", "typescript/src", "typescript", "tree_sitter_typescript::LANGUAGE_TYPESCRIPT"),
    spec("typescript", "tree-sitter-typescript", "tsx/src", "tsx", "tree_sitter_typescript::LANGUAGE_TSX"),
    spec("go", "tree-sitter-go", "src", "go", "tree_sitter_go::LANGUAGE"),
    spec("java", "tree-sitter-java", "src", "java", "tree_sitter_java::LANGUAGE"),
    spec("c", "tree-sitter-c", "src", "c", "tree_sitter_c::LANGUAGE"),
    spec("cpp", "tree-sitter-cpp", "src", "cpp", "tree_sitter_cpp::LANGUAGE"),
    spec("ruby", "tree-sitter-ruby", "src", "ruby", "tree_sitter_ruby::LANGUAGE"),
    spec("lua", "tree-sitter-lua", "src", "lua", "tree_sitter_lua::LANGUAGE"),
    spec("php", "tree-sitter-php", "php/src", "php", "tree_sitter_php::LANGUAGE_PHP"),
    spec("csharp", "tree-sitter-c-sharp", "src", "c_sharp", "tree_sitter_c_sharp::LANGUAGE"),
    spec("bash", "tree-sitter-bash", "src", "bash", "tree_sitter_bash::LANGUAGE"),
    spec("kotlin", "tree-sitter-kotlin-ng", "src", "kotlin", "tree_sitter_kotlin_ng::LANGUAGE"),
    spec("swift", "tree-sitter-swift", "src", "swift", "tree_sitter_swift::LANGUAGE"),
    spec("elixir", "tree-sitter-elixir", "src", "elixir", "tree_sitter_elixir::LANGUAGE"),
    spec("zig", "tree-sitter-zig", "src", "zig", "tree_sitter_zig::LANGUAGE"),
    spec("scala", "tree-sitter-scala", "src", "scala", "tree_sitter_scala::LANGUAGE"),
    spec("dart", "tree-sitter-dart", "src", "dart", "tree_sitter_dart::LANGUAGE"),
    spec("haskell", "tree-sitter-haskell", "src", "haskell", "tree_sitter_haskell::LANGUAGE"),
];

/// The tables moved out of the file (the accessor numbers them in file order). Together they are
/// nearly all of a grammar's read-only data; the rest (names, metadata, lexers) stays as it is.
const TABLES: &[&str] = &[
    "ts_parse_table",
    "ts_small_parse_table",
    "ts_small_parse_table_map",
    "ts_parse_actions",
    "ts_lex_modes",
    "ts_primary_state_ids",
];

/// How long `cargo metadata` may take before the build gives up on compressing.
const METADATA_TIMEOUT: Duration = Duration::from_secs(120);

type BuildResult<T> = Result<T, String>;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CODER_LSP_FULL_GRAMMARS");
    // `cfg(grammars)`: this build has at least one grammar (`symbols::grammars` exists).
    println!("cargo::rustc-check-cfg=cfg(grammars)");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let enabled: Vec<&Spec> = GRAMMARS
        .iter()
        .filter(|spec| env::var_os(feature_var(spec.feature)).is_some())
        .collect();
    if !enabled.is_empty() {
        println!("cargo::rustc-cfg=grammars");
    }

    let mut generated = String::from(
        "// Generated by build.rs: one `Grammar` per grammar compiled into this build.\n",
    );
    // The source folder of each grammar crate, or why there is none (then nothing is compressed).
    let sources = match compression_blocker() {
        _ if enabled.is_empty() => Ok(HashMap::new()),
        Some(why) => Err(why),
        None => crate_dirs(&enabled),
    };
    if let Err(why) = &sources {
        println!("cargo::warning=grammar tables are not compressed: {why}");
    }
    let sources = sources.unwrap_or_default();
    // Grammars are independent: compress them on as many threads as cargo gives this script.
    let jobs = env::var("NUM_JOBS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, enabled.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<BuildResult<String>>>> =
        enabled.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(spec) = enabled.get(index) else {
                        break;
                    };
                    let result = match sources.get(spec.krate) {
                        Some(root) => compact(spec, &root.join(spec.dir), &out),
                        None => Err(format!("cargo metadata does not list {}", spec.krate)),
                    };
                    if let Ok(mut slot) = results[index].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    // Each grammar beside the language its crate ships, for the tests that compare them.
    let mut pairs = String::from(
        "\n#[cfg(test)]\npub(crate) static ALL: &[(&str, &Grammar, LanguageFn)] = &[\n",
    );
    for (spec, result) in enabled.iter().zip(results) {
        let _ = writeln!(
            pairs,
            "    (\"{}\", &{}, {}),",
            spec.name,
            static_name(spec),
            spec.linked
        );
        match result.into_inner().ok().flatten() {
            Some(Ok(code)) => generated.push_str(&code),
            Some(Err(why)) => {
                // One warning for all grammars when nothing could be compressed (said above).
                if !sources.is_empty() {
                    println!(
                        "cargo::warning=the {} grammar's tables are not compressed: {why}",
                        spec.name
                    );
                }
                generated.push_str(&linked(spec));
            }
            None => generated.push_str(&linked(spec)),
        }
    }
    pairs.push_str("];\n");
    generated.push_str(&pairs);
    fs::write(out.join("grammars.rs"), generated).expect("write OUT_DIR/grammars.rs");
}

fn feature_var(feature: &str) -> String {
    format!("CARGO_FEATURE_LANG_{}", feature.to_ascii_uppercase())
}

fn static_name(spec: &Spec) -> String {
    spec.name.to_ascii_uppercase()
}

/// Why no grammar can be compressed in this build, if something stops all of them.
fn compression_blocker() -> Option<String> {
    if env::var("CODER_LSP_FULL_GRAMMARS").is_ok_and(|v| !v.is_empty() && v != "0") {
        return Some("CODER_LSP_FULL_GRAMMARS is set".to_string());
    }
    let host = env::var("HOST").unwrap_or_default();
    let target = env::var("TARGET").unwrap_or_default();
    if target.starts_with("wasm") {
        return Some(format!("the target {target} is WebAssembly"));
    }
    let host_endian = if cfg!(target_endian = "little") {
        "little"
    } else {
        "big"
    };
    let target_endian = env::var("CARGO_CFG_TARGET_ENDIAN").unwrap_or_default();
    if target_endian != host_endian {
        return Some(format!(
            "the target {target} is {target_endian}-endian and the host {host} is not"
        ));
    }
    None
}

/// The source folder of each enabled grammar crate, from `cargo metadata` on this package.
fn crate_dirs(enabled: &[&Spec]) -> BuildResult<HashMap<String, PathBuf>> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?;
    let target = env::var("TARGET").map_err(|e| e.to_string())?;
    let mut features: Vec<String> = enabled
        .iter()
        .map(|spec| format!("lang-{}", spec.feature))
        .collect();
    features.dedup();
    let mut child = Command::new(cargo)
        .current_dir(&manifest_dir)
        .args(["metadata", "--format-version", "1", "--offline", "--locked"])
        .args(["--filter-platform", &target, "--no-default-features"])
        .args(["--features", &features.join(",")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    // Read the output on threads so a large answer cannot fill the pipe while we wait.
    let mut stdout = child.stdout.take().ok_or("cargo metadata: no stdout")?;
    let mut stderr = child.stderr.take().ok_or("cargo metadata: no stderr")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).map(|_| text)
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() > METADATA_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "cargo metadata took longer than {} s",
                METADATA_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = reader
        .join()
        .map_err(|_| "cargo metadata: reader panicked")?
        .map_err(|e| format!("cargo metadata: {e}"))?;
    let errors = err_reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!(
            "cargo metadata failed ({status}): {}",
            errors.lines().last().unwrap_or("")
        ));
    }
    let metadata: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("cargo metadata: {e}"))?;
    let mut dirs = HashMap::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let (Some(name), Some(manifest)) =
            (package["name"].as_str(), package["manifest_path"].as_str())
        else {
            continue;
        };
        if enabled.iter().any(|spec| spec.krate == name)
            && let Some(dir) = Path::new(manifest).parent()
        {
            // A second version of a grammar crate in the graph would make the choice ambiguous.
            if dirs.insert(name.to_string(), dir.to_path_buf()).is_some() {
                return Err(format!("two versions of {name} in the dependency graph"));
            }
        }
    }
    Ok(dirs)
}

/// The `Grammar` static of a grammar linked as its crate ships it.
fn linked(spec: &Spec) -> String {
    format!(
        "\nuse {krate} as _;\npub(crate) static {upper}: Grammar = Grammar::linked({linked});\n",
        krate = spec.krate.replace('-', "_"),
        upper = static_name(spec),
        linked = spec.linked,
    )
}

/// A table of `parser.c`: where its declaration starts and ends (lines), its element type, and
/// the array dimensions as written.
struct Declaration {
    name: &'static str,
    first: usize,
    last: usize,
    element: String,
    dims: String,
}

fn find_declarations(lines: &[&str]) -> BuildResult<Vec<Declaration>> {
    let mut found = Vec::new();
    for name in TABLES {
        let marker = format!(" {name}[");
        let Some(first) = lines.iter().position(|line| {
            line.starts_with("static const ") && line.contains(&marker) && line.ends_with("= {")
        }) else {
            continue;
        };
        let line = lines[first];
        let (head, rest) = line.split_once(&marker).ok_or("unreachable")?;
        let element = head["static const ".len()..].to_string();
        let dims = format!("[{}", rest.trim_end_matches("= {").trim_end());
        let last = lines[first..]
            .iter()
            .position(|line| *line == "};")
            .map(|offset| first + offset)
            .ok_or_else(|| format!("{name} has no closing line"))?;
        if element.contains(['*', '(']) || !dims.ends_with(']') {
            return Err(format!("{name} is declared in an unexpected way: {line}"));
        }
        found.push(Declaration {
            name,
            first,
            last,
            element,
            dims,
        });
    }
    found.sort_by_key(|d| d.first);
    if !found.iter().any(|d| d.name == "ts_parse_table") {
        return Err("no ts_parse_table in parser.c".to_string());
    }
    Ok(found)
}

/// Compresses one grammar; returns its generated Rust.
fn compact(spec: &Spec, src: &Path, out: &Path) -> BuildResult<String> {
    let parser = src.join("parser.c");
    let scanner = src.join("scanner.c");
    println!("cargo::rerun-if-changed={}", parser.display());
    let text = fs::read_to_string(&parser).map_err(|e| format!("{}: {e}", parser.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let declarations = find_declarations(&lines)?;
    let work = out.join(format!("grammar-{}", spec.name));
    fs::create_dir_all(&work).map_err(|e| e.to_string())?;

    // 1. The table bytes, from the original parser compiled for this machine.
    let sizes = dump_tables(
        spec,
        &parser,
        scanner.exists().then_some(&scanner),
        &declarations,
        &work,
    )?;
    let raw = fs::read(work.join("tables.bin")).map_err(|e| e.to_string())?;
    let expected: usize = sizes.iter().map(|(bytes, _)| bytes).sum();
    if raw.len() != expected {
        return Err(format!(
            "the table dump holds {} bytes, its index says {expected}",
            raw.len()
        ));
    }

    // 2. Compressed, to be embedded.
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&raw).map_err(|e| e.to_string())?;
    let compressed = encoder.finish().map_err(|e| e.to_string())?;
    let blob = work.join("tables.zlib");
    fs::write(&blob, &compressed).map_err(|e| e.to_string())?;

    // 3. The parser without the tables' bytes.
    let mut stripped = String::with_capacity(text.len() / 4);
    let mut next = 0;
    for (declaration, (bytes, count)) in declarations.iter().zip(&sizes) {
        for line in &lines[next..declaration.first] {
            stripped.push_str(line);
            stripped.push('\n');
        }
        let dims = if declaration.dims == "[]" {
            format!("[{count}]")
        } else {
            declaration.dims.clone()
        };
        let _ = writeln!(
            stripped,
            "static {} {}{dims};\n_Static_assert(sizeof({}) == {bytes}, \"{} differs from its dump\");",
            declaration.element, declaration.name, declaration.name, declaration.name
        );
        next = declaration.last + 1;
    }
    for line in &lines[next..] {
        stripped.push_str(line);
        stripped.push('\n');
    }
    let _ = writeln!(
        stripped,
        "\nvoid *coder_lsp_tables_{}(size_t index) {{\n  switch (index) {{",
        spec.name
    );
    for (index, declaration) in declarations.iter().enumerate() {
        let _ = writeln!(
            stripped,
            "    case {index}: return (void *){};",
            declaration.name
        );
    }
    stripped.push_str("    default: return 0;\n  }\n}\n");
    let copy = work.join("parser.c");
    fs::write(&copy, stripped).map_err(|e| e.to_string())?;

    let mut build = cc::Build::new();
    build
        .std("c11")
        .include(src)
        .file(&copy)
        .define(
            &format!("tree_sitter_{}", spec.name),
            Some(format!("coder_lsp_tree_sitter_{}", spec.name).as_str()),
        )
        .flag_if_supported("-Wno-unused");
    if env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|e| e == "msvc") {
        build.flag("-utf-8");
    }
    build
        .try_compile(&format!("coder_lsp_grammar_{}", spec.name))
        .map_err(|e| format!("compiling the table-less parser: {e}"))?;

    // 4. The Rust side.
    let sizes_list: Vec<String> = sizes.iter().map(|(bytes, _)| bytes.to_string()).collect();
    Ok(format!(
        r#"
use {krate} as _; // its external scanner
unsafe extern "C" {{
    fn coder_lsp_tree_sitter_{name}() -> *const ();
    fn coder_lsp_tables_{name}(index: usize) -> *mut u8;
}}
pub(crate) static {upper}: Grammar = Grammar::compact(
    include_bytes!({blob:?}),
    &[{sizes}],
    coder_lsp_tables_{name},
    // SAFETY: the function is the grammar's entry point, compiled from its parser.c.
    unsafe {{ LanguageFn::from_raw(coder_lsp_tree_sitter_{name}) }},
    "{name}",
);
"#,
        krate = spec.krate.replace('-', "_"),
        name = spec.name,
        upper = static_name(spec),
        blob = blob.display().to_string(),
        sizes = sizes_list.join(", "),
    ))
}

/// Compiles and runs a program that writes the tables' bytes to `work/tables.bin`; returns each
/// table's size in bytes and its number of elements (first dimension).
fn dump_tables(
    spec: &Spec,
    parser: &Path,
    scanner: Option<&PathBuf>,
    declarations: &[Declaration],
    work: &Path,
) -> BuildResult<Vec<(usize, usize)>> {
    let mut program = format!(
        "#include {:?}\n#include <stdio.h>\n\nint main(int argc, char **argv) {{\n  FILE *out;\n  if (argc < 2) return 2;\n  out = fopen(argv[1], \"wb\");\n  if (!out) return 3;\n",
        parser.display().to_string()
    );
    for declaration in declarations {
        let name = declaration.name;
        let _ = writeln!(
            program,
            "  if (fwrite({name}, 1, sizeof({name}), out) != sizeof({name})) return 4;\n  printf(\"%zu %zu\\n\", sizeof({name}), sizeof({name}) / sizeof({name}[0]));"
        );
    }
    program.push_str("  return fclose(out) == 0 ? 0 : 5;\n}\n");
    let source = work.join("dump.c");
    fs::write(&source, program).map_err(|e| e.to_string())?;

    let host = env::var("HOST").map_err(|e| e.to_string())?;
    let compiler = cc::Build::new()
        .cargo_metadata(false)
        .opt_level(0)
        .debug(false)
        .host(&host)
        .target(&host)
        .std("c11")
        .try_get_compiler()
        .map_err(|e| format!("no C compiler for {host}: {e}"))?;
    let exe = work.join(if host.contains("windows") {
        "dump.exe"
    } else {
        "dump"
    });
    let mut command = compiler.to_command();
    let include = parser.parent().ok_or("parser.c has no folder")?;
    if compiler.is_like_msvc() {
        command.arg(format!("/I{}", include.display()));
    } else {
        command.arg(format!("-I{}", include.display()));
    }
    command.current_dir(work).arg(&source);
    if let Some(scanner) = scanner {
        command.arg(scanner);
    }
    if compiler.is_like_msvc() {
        command.arg(format!("/Fe:{}", exe.display()));
    } else {
        command.arg("-o").arg(&exe);
    }
    let built = command
        .output()
        .map_err(|e| format!("running the host C compiler: {e}"))?;
    if !built.status.success() {
        return Err(format!(
            "the table dump for {} did not compile: {}",
            spec.name,
            String::from_utf8_lossy(&built.stderr)
                .lines()
                .find(|l| l.contains("error"))
                .unwrap_or("")
        ));
    }
    let ran = Command::new(&exe)
        .arg(work.join("tables.bin"))
        .output()
        .map_err(|e| format!("running the table dump: {e}"))?;
    if !ran.status.success() {
        return Err(format!("the table dump failed ({})", ran.status));
    }
    let index = String::from_utf8_lossy(&ran.stdout);
    let sizes: Vec<(usize, usize)> = index
        .lines()
        .map(|line| {
            let mut numbers = line.split(' ').map(str::parse::<usize>);
            match (numbers.next(), numbers.next()) {
                (Some(Ok(bytes)), Some(Ok(count))) => Ok((bytes, count)),
                _ => Err(format!("unexpected line from the table dump: {line}")),
            }
        })
        .collect::<BuildResult<_>>()?;
    if sizes.len() != declarations.len() {
        return Err("the table dump listed the wrong number of tables".to_string());
    }
    Ok(sizes)
}
