//! Measures fine-tuning on real code: step time, peak memory and held-out nDCG before/after.
//!
//! `cargo run --release -p coder-lsp --example measure_training -- SRC_DIR MODEL_DIR OUT_DIR
//! [STEPS_PER_STAGE] [--no-curriculum] [--batch=N] [--negatives=N]`
//!
//! Pairs come from the Rust doc comments under SRC_DIR with a deliberately simple reader (a
//! `///` block followed by `fn`): doc → function (Text2Code) and signature → doc (Code2Text).
//! It stands in for the real miner so the training side can be measured on its own; every
//! fifth file is held out.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use coder_lsp::train::pairs::{Pair, PairSource, TaskFamily};
use coder_lsp::train::training::Event;
use coder_lsp::train::{FineTuneConfig, fine_tune};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let option = |name: &str| -> Result<Option<usize>> {
        let prefix = format!("--{name}=");
        args.iter()
            .find_map(|a| a.strip_prefix(&prefix))
            .map(|v| v.parse().with_context(|| format!("--{name}")))
            .transpose()
    };
    let [src, model, out, rest @ ..] = positional.as_slice() else {
        anyhow::bail!(
            "usage: measure_training SRC_DIR MODEL_DIR OUT_DIR [STEPS_PER_STAGE] [--no-curriculum]"
        );
    };
    let steps: usize = rest.first().map_or(Ok(30), |s| s.parse())?;
    let mut files = Vec::new();
    rust_files(Path::new(src.as_str()), &mut files)?;
    files.sort();
    let (mut train, mut heldout) = (Vec::new(), Vec::new());
    for (i, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let name = file
            .strip_prefix(src.as_str())
            .unwrap_or(file)
            .display()
            .to_string();
        let pairs = doc_pairs(&text, &name);
        if i % 5 == 4 {
            heldout.extend(
                pairs
                    .into_iter()
                    .filter(|p| p.family == TaskFamily::Text2Code),
            );
        } else {
            train.extend(pairs);
        }
    }
    eprintln!(
        "{} train pairs, {} held-out pairs from {} files",
        train.len(),
        heldout.len(),
        files.len()
    );

    let mut config = FineTuneConfig::new(Path::new(model.as_str()), Path::new(out.as_str()));
    config.train.max_steps_per_stage = Some(steps);
    config.train.curriculum = !args.iter().any(|a| a == "--no-curriculum");
    if let Some(batch) = option("batch")? {
        config.train.batch_size = batch;
    }
    if let Some(negatives) = option("negatives")? {
        config.train.negatives_per_pair = negatives;
    }
    let report = fine_tune(&config, train, heldout, |event| {
        if let Event::Step {
            step,
            total_steps,
            loss,
            eta_seconds,
            ..
        } = event
        {
            if step % 5 == 0 || step == total_steps {
                eprintln!("step {step}/{total_steps} loss {loss:.4} eta {eta_seconds:.0}s");
            }
        } else {
            eprintln!("{}", serde_json::to_string(event).unwrap_or_default());
        }
        ControlFlow::Continue(())
    })?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status
        .lines()
        .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
    {
        println!("{line}");
    }
    Ok(())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// `///` blocks directly above a `fn`: (doc → signature and body) and (signature → doc).
fn doc_pairs(text: &str, file: &str) -> Vec<Pair> {
    let lines: Vec<&str> = text.lines().collect();
    let mut pairs = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start = i;
        while i < lines.len() && lines[i].trim_start().starts_with("///") {
            i += 1;
        }
        if i == start {
            i += 1;
            continue;
        }
        // Attributes may sit between the doc and the item.
        let mut item = i;
        while item < lines.len() && lines[item].trim_start().starts_with("#[") {
            item += 1;
        }
        let Some(signature) = lines.get(item).map(|l| l.trim()) else {
            break;
        };
        let Some(name) = fn_name(signature) else {
            continue;
        };
        let doc: Vec<&str> = lines[start..i]
            .iter()
            .map(|l| l.trim_start().trim_start_matches("///").trim())
            .take_while(|l| !l.starts_with("# ") && !l.starts_with("```"))
            .filter(|l| !l.is_empty())
            .collect();
        let doc = doc.join(" ");
        if doc.split_whitespace().count() < 4 {
            continue;
        }
        let body: Vec<&str> = lines[item..lines.len().min(item + 20)].to_vec();
        let pair = |family, source, query: &str, positive: &str| Pair {
            family,
            source,
            query: query.to_string(),
            positive: positive.to_string(),
            file: file.to_string(),
            symbol: name.to_string(),
            negatives: Vec::new(),
        };
        pairs.push(pair(
            TaskFamily::Text2Code,
            PairSource::DocComment,
            &doc,
            &body.join("\n"),
        ));
        pairs.push(pair(
            TaskFamily::Code2Text,
            PairSource::SymbolDoc,
            signature,
            &doc,
        ));
    }
    pairs
}

fn fn_name(line: &str) -> Option<&str> {
    let at = line.find("fn ")?;
    let before = &line[..at];
    if !before
        .split_whitespace()
        .all(|w| ["pub", "pub(crate)", "const", "async", "unsafe", "extern"].contains(&w))
    {
        return None;
    }
    let rest = &line[at + 3..];
    let end = rest.find(|c: char| !c.is_alphanumeric() && c != '_')?;
    (end > 0).then(|| &rest[..end])
}
