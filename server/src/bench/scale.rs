//! `coder-lsp bench scale`: a synthetic workspace of code-like files and its index, filled with
//! generated vectors instead of the model's, so an index of 200k chunks is built in minutes.
//!
//! The files are cut by the real pipeline (symbols, chunker, FTS5 rows, file states), so the
//! index is what `coder-lsp index` would have written but for the vectors: `index`, `search`,
//! `serve` and `mcp` open it as their own and find nothing to redo. Each chunk text gets a unit
//! vector derived from its hash, with the model's dimensions and fingerprint. `bench/scale.py`
//! then measures the real binary on it.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use serde::Serialize;

use crate::index::{Access, Index, IndexConfig, sync_files};
use crate::model::LoadedModel;

/// Files per directory of the generated workspace.
const FILES_PER_DIR: usize = 100;
/// Chunk texts given vectors per store transaction.
const VECTOR_BATCH: usize = 4096;

const VERBS: &[&str] = &[
    "parse",
    "encode",
    "decode",
    "load",
    "store",
    "fetch",
    "resolve",
    "validate",
    "merge",
    "split",
    "render",
    "compute",
    "schedule",
    "retry",
    "flush",
    "compress",
    "hash",
    "index",
    "sort",
    "filter",
    "collect",
    "emit",
    "watch",
    "spawn",
    "cancel",
    "lookup",
    "register",
    "migrate",
    "normalize",
    "serialize",
    "tokenize",
    "allocate",
    "release",
    "verify",
    "sign",
    "rotate",
    "throttle",
    "cache",
    "refresh",
    "notify",
];
const ADJECTIVES: &[&str] = &[
    "cached",
    "pending",
    "remote",
    "local",
    "stale",
    "active",
    "nested",
    "partial",
    "signed",
    "compressed",
    "raw",
    "default",
    "current",
    "next",
    "shared",
    "unique",
    "ordered",
    "sparse",
    "batched",
    "secure",
    "temporary",
    "primary",
    "legacy",
    "dirty",
];
const NOUNS: &[&str] = &[
    "token",
    "buffer",
    "request",
    "response",
    "session",
    "record",
    "header",
    "payload",
    "frame",
    "segment",
    "config",
    "manifest",
    "schema",
    "query",
    "cursor",
    "snapshot",
    "ledger",
    "invoice",
    "account",
    "user",
    "message",
    "queue",
    "channel",
    "socket",
    "packet",
    "digest",
    "certificate",
    "key",
    "window",
    "layout",
    "texture",
    "shader",
    "vertex",
    "graph",
    "node",
    "edge",
    "route",
    "handler",
    "worker",
    "job",
    "batch",
    "chunk",
    "symbol",
    "module",
    "crate",
    "package",
    "version",
    "license",
    "timestamp",
    "interval",
    "deadline",
    "quota",
    "metric",
    "histogram",
    "span",
    "trace",
    "event",
    "listener",
    "policy",
    "role",
    "permission",
    "tenant",
];
const TAILS: &[&str] = &[
    "and returns how many bytes were used",
    "so that callers never see a partial value",
    "when the deadline has not passed yet",
    "before it is written to disk",
    "for every tenant in the current region",
    "while holding the shared lock",
    "or reports why it could not",
    "keeping the original order",
    "without allocating on the hot path",
    "and records a metric for the dashboard",
];

/// How big a workspace to generate.
#[derive(Debug, Clone, Copy)]
pub struct ScaleSize {
    pub files: usize,
    pub functions_per_file: usize,
    pub seed: u64,
}

/// One generated source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    pub rel_path: String,
    pub text: String,
    /// Functions defined in it (one chunk each when cut).
    pub functions: usize,
}

/// A small deterministic generator (SplitMix64): the same seed gives the same workspace.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.below(words.len())]
    }
}

fn camel(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// The third-person form of a verb for a doc comment ("parse" → "Parses").
fn third_person(verb: &str) -> String {
    let verb = camel(verb);
    if verb.ends_with('h') || verb.ends_with('s') {
        format!("{verb}es")
    } else if let Some(stem) = verb.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{verb}s")
    }
}

/// One function's words: a name such as `parse_cached_token`, unique within its file.
struct Function {
    verb: &'static str,
    adjective: &'static str,
    noun: &'static str,
    other: &'static str,
    tail: &'static str,
    number: usize,
}

impl Function {
    fn new(rng: &mut Rng, number: usize) -> Self {
        Self {
            verb: rng.pick(VERBS),
            adjective: rng.pick(ADJECTIVES),
            noun: rng.pick(NOUNS),
            other: rng.pick(NOUNS),
            tail: rng.pick(TAILS),
            number,
        }
    }

    fn name(&self) -> String {
        // The number keeps names unique within a file; across files names repeat, as in real code.
        format!(
            "{}_{}_{}{}",
            self.verb,
            self.adjective,
            self.noun,
            if self.number.is_multiple_of(3) {
                String::new()
            } else {
                format!("_{}", self.number)
            }
        )
    }

    fn sentence(&self) -> String {
        format!(
            "{} the {} {} of the {} {}.",
            third_person(self.verb),
            self.adjective,
            self.noun,
            self.other,
            self.tail
        )
    }

    fn rust(&self) -> String {
        let (name, noun, other) = (self.name(), self.noun, self.other);
        let ty = camel(other);
        format!(
            "/// {sentence}\n\
             pub fn {name}({other}: &mut {ty}, limit: usize) -> Result<usize, Error> {{\n\
             \x20   let {noun}_count = {other}.len().min(limit);\n\
             \x20   if {noun}_count == 0 {{\n\
             \x20       return Err(Error::Empty(\"{adjective} {noun}\"));\n\
             \x20   }}\n\
             \x20   let mut state = {ty}State::with_capacity({noun}_count + {number});\n\
             \x20   for item in {other}.iter().take({noun}_count) {{\n\
             \x20       state.{verb}_{noun}(item)?;\n\
             \x20   }}\n\
             \x20   Ok(state.finish())\n\
             }}\n",
            sentence = self.sentence(),
            adjective = self.adjective,
            verb = self.verb,
            number = self.number,
        )
    }

    fn python(&self) -> String {
        let (name, noun, other) = (self.name(), self.noun, self.other);
        format!(
            "def {name}({other}, limit=None):\n\
             \x20   \"\"\"{sentence}\"\"\"\n\
             \x20   {noun}_count = len({other}) if limit is None else min(len({other}), limit)\n\
             \x20   if {noun}_count == 0:\n\
             \x20       raise ValueError(\"no {adjective} {noun}\")\n\
             \x20   state = {ty}State({noun}_count + {number})\n\
             \x20   for item in {other}[:{noun}_count]:\n\
             \x20       state.{verb}_{noun}(item)\n\
             \x20   return state.finish()\n",
            sentence = self.sentence(),
            adjective = self.adjective,
            verb = self.verb,
            number = self.number,
            ty = camel(other),
        )
    }
}

/// The `index`th file of a workspace (files are independent of one another, so they can be
/// generated in any order): one in four is Python, the rest Rust.
pub fn generate_file(size: &ScaleSize, index: usize) -> GeneratedFile {
    let mut rng = Rng::new(size.seed ^ (index as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    let python = index % 4 == 3;
    let dir = index / FILES_PER_DIR;
    let stem = format!("{}_{}_{index}", rng.pick(ADJECTIVES), rng.pick(NOUNS));
    let rel_path = if python {
        format!("pkg_{dir:04}/lib/{stem}.py")
    } else {
        format!("pkg_{dir:04}/src/{stem}.rs")
    };
    let mut text = String::new();
    for number in 0..size.functions_per_file {
        let function = Function::new(&mut rng, number);
        if number > 0 {
            text.push('\n');
        }
        text.push_str(&if python {
            function.python()
        } else {
            function.rust()
        });
    }
    GeneratedFile {
        rel_path,
        text,
        functions: size.functions_per_file,
    }
}

/// A unit vector of `dimensions` derived from a chunk text's hash (no model involved): the same
/// text always gets the same vector.
pub fn vector_for(text_hash: &[u8; 32], dimensions: usize) -> Vec<f32> {
    let mut reader = blake3::Hasher::new_keyed(text_hash).finalize_xof();
    let mut bytes = vec![0u8; dimensions * 2];
    reader.fill(&mut bytes);
    let mut vector: Vec<f32> = bytes
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    for x in &mut vector {
        *x /= norm;
    }
    vector
}

/// What `bench scale` built.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleReport {
    pub root: PathBuf,
    pub index_dir: PathBuf,
    /// The base directory to give the language server (`indexDir`) so it finds this index.
    pub index_base: PathBuf,
    pub files: u64,
    pub chunks: u64,
    pub vectors: u64,
    pub dimensions: usize,
    pub source_bytes: u64,
    pub write_seconds: f64,
    /// Walking, reading, cutting and storing every file (what `index` does but for the model).
    pub cut_seconds: f64,
    /// Generating vectors and adding them to the store and the HNSW graph, then saving it.
    pub vector_seconds: f64,
    pub store_bytes: u64,
    pub vector_bytes: u64,
}

/// Writes the workspace under `dir/workspace` and its index under `dir/indexes/<hash of root>`
/// (where the language server looks for it with `indexDir` set to `dir/indexes`).
pub fn build(dir: &Path, size: &ScaleSize, model: &LoadedModel) -> Result<ScaleReport> {
    if size.files == 0 || size.functions_per_file == 0 {
        bail!("--files and --functions-per-file must be at least 1");
    }
    let root = dir.join("workspace");
    let index_base = dir.join("indexes");
    for path in [&root, &index_base] {
        if path.exists() {
            bail!(
                "{} exists already: give `bench scale` a new or empty directory",
                path.display()
            );
        }
    }
    let started = Instant::now();
    let written: Vec<Result<u64>> = (0..size.files)
        .into_par_iter()
        .map(|i| {
            let file = generate_file(size, i);
            let path = root.join(&file.rel_path);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            fs::write(&path, &file.text).with_context(|| format!("writing {}", path.display()))?;
            Ok(file.text.len() as u64)
        })
        .collect();
    let mut source_bytes = 0;
    for bytes in written {
        source_bytes += bytes?;
    }
    let write_seconds = started.elapsed().as_secs_f64();

    let root = fs::canonicalize(&root).with_context(|| format!("resolving {}", root.display()))?;
    fs::create_dir_all(&index_base)
        .with_context(|| format!("creating {}", index_base.display()))?;
    let index_base = fs::canonicalize(&index_base)?;
    let index_dir = index_base.join(IndexConfig::dir_name(&root));
    let config = IndexConfig {
        root: root.clone(),
        dir: index_dir.clone(),
        walk: crate::workspace::WalkOptions {
            skip_dir: Some(index_base.clone()),
            ..crate::workspace::WalkOptions::default()
        },
    };
    let key = model.key();
    let mut index = Index::open(config, Some(key.clone()), Access::WriteWait)?;

    let started = Instant::now();
    let cut = sync_files(
        &RefCell::new(&mut index),
        &model.handle,
        &mut |_| {},
        &AtomicBool::new(false),
    )?;
    let cut_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut after = None;
    loop {
        let pending = index.pending_texts(after.as_ref(), VECTOR_BATCH)?;
        let Some(&(last, _)) = pending.last() else {
            break;
        };
        after = Some(last);
        let vectors: Vec<([u8; 32], Vec<f32>)> = pending
            .par_iter()
            .map(|(hash, _)| (*hash, vector_for(hash, key.dimensions)))
            .collect();
        index.store_vectors(&vectors)?;
    }
    index.flush()?;
    let vector_seconds = started.elapsed().as_secs_f64();
    let status = index.status()?;
    Ok(ScaleReport {
        root,
        index_dir,
        index_base,
        files: cut.files,
        chunks: status.chunks,
        vectors: status.vectors,
        dimensions: key.dimensions,
        source_bytes,
        write_seconds,
        cut_seconds,
        vector_seconds,
        store_bytes: status.store_bytes,
        vector_bytes: status.vector_bytes,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_files_and_another_seed_other_ones() {
        let size = ScaleSize {
            files: 8,
            functions_per_file: 5,
            seed: 7,
        };
        let a: Vec<_> = (0..8).map(|i| generate_file(&size, i)).collect();
        let b: Vec<_> = (0..8).map(|i| generate_file(&size, i)).collect();
        assert_eq!(a, b);
        let other = ScaleSize { seed: 8, ..size };
        assert_ne!(a[0].text, generate_file(&other, 0).text);
        let paths: std::collections::HashSet<_> = a.iter().map(|f| &f.rel_path).collect();
        assert_eq!(paths.len(), 8, "every file has its own path");
        assert_eq!(a.iter().filter(|f| f.rel_path.ends_with(".py")).count(), 2);
    }

    #[test]
    fn each_file_defines_the_functions_asked_for_with_docs() {
        let size = ScaleSize {
            files: 4,
            functions_per_file: 6,
            seed: 1,
        };
        for i in 0..4 {
            let file = generate_file(&size, i);
            let defs = file
                .text
                .lines()
                .filter(|l| l.starts_with("pub fn ") || l.starts_with("def "))
                .count();
            assert_eq!((defs, file.functions), (6, 6), "{}", file.rel_path);
            let docs = file
                .text
                .lines()
                .filter(|l| l.starts_with("/// ") || l.trim_start().starts_with("\"\"\""))
                .count();
            assert_eq!(docs, 6, "{}", file.text);
        }
    }

    #[test]
    fn generated_vectors_are_unit_length_and_follow_the_text() {
        let a = vector_for(&[1; 32], 384);
        assert_eq!(a.len(), 384);
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        assert_eq!(a, vector_for(&[1; 32], 384));
        assert_ne!(a, vector_for(&[2; 32], 384));
    }

    #[test]
    fn a_small_workspace_is_cut_into_one_chunk_per_function_with_a_vector_each() {
        let model = crate::model::load(
            &crate::embed::tiny_qwen2_dir().to_string_lossy(),
            &crate::model::ModelOptions::default(),
        )
        .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let size = ScaleSize {
            files: 12,
            functions_per_file: 4,
            seed: 3,
        };
        let report = build(tmp.path(), &size, &model).unwrap();
        assert_eq!((report.files, report.chunks, report.vectors), (12, 48, 48));
        assert!(report.vector_bytes > 0 && report.store_bytes > 0);
        // Built again into the same directory: refused, nothing overwritten.
        let err = build(tmp.path(), &size, &model).unwrap_err();
        assert!(err.to_string().contains("exists already"), "{err}");
    }
}
