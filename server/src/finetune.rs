//! Fine-tuning a workspace's model from the server and the CLI.
//!
//! The training itself is `coder-lsp train fine-tune` (the module `train`): this very executable,
//! run again as a child process so that a crash or an out-of-memory kill there never takes the
//! language server down, and so that cancelling is simply stopping the child. Its JSON-line
//! events become [`Progress`] updates. The trainer writes its adapter into a candidate
//! directory; only a run that finished and beat the base model is installed as the root's
//! adapter (`<index dir>/adapter/`, the one it replaces kept in `adapter-previous/`). A cancelled
//! or failed run changes nothing that is in use, and its checkpoint lets the next run resume.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::embed::{DeviceSpec, Instructions};
use crate::trainer_protocol::{Phase, ReportHead, TrainerEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// The trainer's command line for `job` (after the executable): mined pairs go to `work/data`,
/// the adapter to `candidate`.
fn trainer_args(job: &FineTuneJob, work: &Path, candidate: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec![
        "train".into(),
        "fine-tune".into(),
        "--json".into(),
        "--root".into(),
        job.root.clone().into(),
        "--work".into(),
        work.join("data").into(),
        "--out".into(),
        candidate.into(),
        "--model".into(),
        job.model.clone().into(),
        "--max-file-size".into(),
        job.max_file_size.to_string().into(),
        // The adapter is judged by searching a copy of this index as users search it.
        "--index-dir".into(),
        job.index_dir.clone().into(),
        // The model trains where it serves, with the instructions it serves queries with.
        "--device".into(),
        job.device.to_string().into(),
    ];
    for instruction in job.instructions.to_args() {
        args.extend(["--instruction".into(), instruction.into()]);
    }
    for glob in &job.exclude {
        args.extend(["--exclude".into(), glob.into()]);
    }
    args.extend(job.settings.trainer_flags().into_iter().map(Into::into));
    args
}

/// The root's adapter, inside its index directory.
pub const ADAPTER_DIR: &str = "adapter";
/// Where an adapter goes when a newer one replaces it or the model is reset.
pub const PREVIOUS_ADAPTER_DIR: &str = "adapter-previous";
/// The trainer's working directory (mined pairs, the candidate adapter, checkpoints).
const WORK_DIR: &str = "fine-tune";
/// The lock file a fine-tuning run holds in its index directory ([`RunLock`]); beside the
/// working directory, which the trainer clears, not in it.
const RUN_LOCK: &str = "fine-tune.lock";

/// The fine-tuning lock of one index directory, held for the life of the value: one run per
/// workspace across processes (a language server and `coder-lsp fine-tune` would share the
/// trainer's working directory and race to install), and no reset of the adapter while a run
/// goes (the run would install its adapter after the reset, undoing it). The lock goes with
/// its holder, a crashed one included.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    /// Takes the lock of the index in `index_dir` (the directory is created when missing);
    /// `Ok(None)` while another holder (another process, or another engine of this one) has it.
    pub fn take(index_dir: &Path) -> Result<Option<RunLock>, FineTuneError> {
        let path = index_dir.join(RUN_LOCK);
        let locked =
            std::fs::create_dir_all(index_dir).and_then(|()| crate::files::lock(&path, false));
        match locked {
            Ok(file) => Ok(file.map(|file| RunLock { _file: file })),
            Err(source) => Err(FineTuneError::Lock { path, source }),
        }
    }
}

/// The adapter installed for the index in `index_dir`, if any.
pub fn installed_adapter(index_dir: &Path) -> Option<PathBuf> {
    let dir = index_dir.join(ADAPTER_DIR);
    dir.join(crate::embed::lora::ADAPTER_META)
        .is_file()
        .then_some(dir)
}

/// The adapter installed for the index in `index_dir` when it was trained for the base model
/// whose fingerprint is `base_fingerprint`. One trained for another base model (the workspace
/// was fine-tuned, then the model setting changed) cannot serve it: it is passed over with a
/// warning and the base model serves. (`engine::workspace_model`, which decides for the engine
/// and the CLI alike, asks this.)
pub fn installed_adapter_for(
    index_dir: &Path,
    base_fingerprint: &str,
) -> Result<Option<PathBuf>, crate::embed::EmbedError> {
    let Some(dir) = installed_adapter(index_dir) else {
        return Ok(None);
    };
    let meta = crate::embed::lora::AdapterMeta::read(&dir)?;
    if meta.base_fingerprint != base_fingerprint {
        tracing::warn!(
            "the fine-tuned adapter in {} was trained on another model ({}, this one is {}); the base model serves this workspace (fine-tune it again, or `coder-lsp model reset`)",
            dir.display(),
            meta.base_fingerprint,
            base_fingerprint
        );
        return Ok(None);
    }
    Ok(Some(dir))
}

/// Training settings a client may choose; unset ones take the trainer's defaults. One type for
/// every front end: the flags of `coder-lsp fine-tune` and of `coder-lsp train fine-tune`/`train`
/// (which flattens it), the language server's `fineTune` settings and command arguments, and
/// what the server passes to the trainer ([`FineTuneSettings::trainer_flags`]).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clap::Args)]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FineTuneSettings {
    /// Fraction of the mined pairs held out to judge the adapter, by whole files (0 to 1)
    /// [default: 0.15]
    #[arg(long, value_parser = parse_fraction)]
    pub heldout: Option<f64>,
    /// Caps the steps of each curriculum stage (quick runs).
    #[arg(long)]
    pub max_steps_per_stage: Option<usize>,
    /// Caps the steps of the whole run, each stage keeping its share (about 4.5 s a step on a
    /// 2-core CPU); 0 trains on every pair [default: 200]
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Pairs per training step [default: 8]
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Sequences embedded with an autograd graph at once: a step with more embeds its batch
    /// without one first and then re-embeds it in sub-batches this size (a gradient cache: the
    /// same gradients, less memory, a second forward pass) [default: 4]
    #[arg(long)]
    pub sub_batch_size: Option<usize>,
    /// Learning rate of the warm-up and mixed stages; the cool-down uses a tenth of it
    /// [default: 5e-4 for BERT models, 1e-4 (CodeR's) for Qwen2]
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Passes over each stage's pairs [default: 1]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Training inputs are cut to this many tokens [default: 128]
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Seed of the train/held-out split and of the training [default: 42]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Train one stage on all pairs instead of CodeR's three-stage curriculum.
    #[serde(default)]
    #[arg(long)]
    pub no_curriculum: bool,
    /// InfoNCE temperature τ [default: 0.05 for BERT models (MiniLM's own), 0.02 (CodeR's) for
    /// Qwen2]
    #[arg(long)]
    pub temperature: Option<f64>,
    /// The adapter is installed only when a paired sign-flip test puts the chance that its
    /// held-out gain is luck at or below this; 1 installs any gain [default: 0.05]
    #[arg(long, value_parser = parse_weight)]
    pub significance: Option<f64>,
    /// Weight of the trained update in the installed adapter, in (0, 1]: 0.5 lies halfway
    /// between the base model and the trained one, which kept more of the base model's skill
    /// on hand-written queries; 1 keeps the trained update whole [default: 0.5]
    #[arg(long, value_parser = parse_weight)]
    pub adapter_weight: Option<f64>,
    /// A local language model that writes training queries (`--generator URL`, with
    /// `--generator-model` and `--generator-limit` optional beside it).
    #[command(flatten)]
    #[serde(default)]
    pub generator: Option<GeneratorSettings>,
}

/// The `model` sent to a query generator when none is named.
pub const DEFAULT_GENERATOR_MODEL: &str = "default";
/// Most functions a query generator is asked about when no limit is given.
pub const DEFAULT_GENERATOR_LIMIT: usize = 200;

/// A language model that writes the search query a developer would type for each function, as
/// CodeR synthesises its training queries: an OpenAI-compatible chat-completions endpoint on
/// this machine or network (llama.cpp's `llama-server`, Ollama, vLLM, …). Mined pairs are built
/// either way; these are added to them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, clap::Args)]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
// clap: absent unless one of its flags is given, and then `--generator` must be too.
#[group(requires = "generator")]
pub struct GeneratorSettings {
    /// An OpenAI-compatible chat-completions endpoint, plain http:// (e.g.
    /// http://127.0.0.1:8080/v1), that writes a search query for each function; optional
    #[arg(
        id = "generator",
        long = "generator",
        value_name = "URL",
        required = false
    )]
    pub url: String,
    /// The `model` field sent to the generator [default: default]
    #[arg(id = "generator_model", long = "generator-model", value_name = "NAME")]
    pub model: Option<String>,
    /// Most functions the generator is asked about, one request each [default: 200]
    #[arg(id = "generator_limit", long = "generator-limit", value_name = "N")]
    pub limit: Option<usize>,
}

impl GeneratorSettings {
    /// The `model` sent with each request.
    pub fn model(&self) -> &str {
        self.model.as_deref().unwrap_or(DEFAULT_GENERATOR_MODEL)
    }

    /// Most functions asked about.
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_GENERATOR_LIMIT)
    }

    /// The settings as `coder-lsp train mine`/`fine-tune` flags.
    pub fn trainer_flags(&self) -> Vec<String> {
        let mut flags = vec!["--generator".to_string(), self.url.clone()];
        if let Some(model) = &self.model {
            flags.extend(["--generator-model".to_string(), model.clone()]);
        }
        if let Some(limit) = self.limit {
            flags.extend(["--generator-limit".to_string(), limit.to_string()]);
        }
        flags
    }
}

/// A fraction in [0, 1] (a flag's value parser).
pub fn parse_fraction(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not between 0 and 1"))
    }
}

/// A fraction above 0 and at most 1 (an adapter weight, a significance level).
pub fn parse_weight(text: &str) -> Result<f64, String> {
    match parse_fraction(text)? {
        0.0 => Err("0 is not allowed here; give a number above 0 and at most 1".into()),
        weight => Ok(weight),
    }
}

impl FineTuneSettings {
    /// Settings given in `over` win over these.
    pub fn merged(&self, over: &Self) -> Self {
        Self {
            heldout: over.heldout.or(self.heldout),
            max_steps_per_stage: over.max_steps_per_stage.or(self.max_steps_per_stage),
            max_steps: over.max_steps.or(self.max_steps),
            batch_size: over.batch_size.or(self.batch_size),
            sub_batch_size: over.sub_batch_size.or(self.sub_batch_size),
            learning_rate: over.learning_rate.or(self.learning_rate),
            epochs: over.epochs.or(self.epochs),
            max_tokens: over.max_tokens.or(self.max_tokens),
            seed: over.seed.or(self.seed),
            no_curriculum: over.no_curriculum || self.no_curriculum,
            temperature: over.temperature.or(self.temperature),
            significance: over.significance.or(self.significance),
            adapter_weight: over.adapter_weight.or(self.adapter_weight),
            generator: over.generator.clone().or_else(|| self.generator.clone()),
        }
    }

    /// The settings as `coder-lsp train fine-tune` flags (the trainer's tests parse them back).
    pub fn trainer_flags(&self) -> Vec<String> {
        let mut args = Vec::new();
        let mut push = |flag: &str, value: Option<String>| {
            if let Some(value) = value {
                args.push(flag.to_string());
                args.push(value);
            }
        };
        push("--heldout", self.heldout.map(|f| f.to_string()));
        push(
            "--max-steps-per-stage",
            self.max_steps_per_stage.map(|n| n.to_string()),
        );
        push("--max-steps", self.max_steps.map(|n| n.to_string()));
        push("--batch-size", self.batch_size.map(|n| n.to_string()));
        push(
            "--sub-batch-size",
            self.sub_batch_size.map(|n| n.to_string()),
        );
        push("--learning-rate", self.learning_rate.map(|n| n.to_string()));
        push("--epochs", self.epochs.map(|n| n.to_string()));
        push("--max-tokens", self.max_tokens.map(|n| n.to_string()));
        push("--seed", self.seed.map(|n| n.to_string()));
        push("--temperature", self.temperature.map(|t| t.to_string()));
        push("--significance", self.significance.map(|p| p.to_string()));
        push(
            "--adapter-weight",
            self.adapter_weight.map(|w| w.to_string()),
        );
        if self.no_curriculum {
            args.push("--no-curriculum".into());
        }
        if let Some(generator) = &self.generator {
            args.extend(generator.trainer_flags());
        }
        args
    }
}

/// What to fine-tune.
#[derive(Debug, Clone)]
pub struct FineTuneJob {
    pub root: PathBuf,
    /// The root's index directory (the adapter and the trainer's work go there).
    pub index_dir: PathBuf,
    /// The base model (directory, hub id or alias), as the index uses it.
    pub model: String,
    pub exclude: Vec<String>,
    pub max_file_size: u64,
    pub settings: FineTuneSettings,
    /// Where the model runs: the trainer uses it too.
    pub device: DeviceSpec,
    /// The query instructions the model is served with, so the adapter learns with them.
    pub instructions: Instructions,
}

/// A progress update: a line for people and a percentage.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub message: String,
    pub percentage: u32,
}

/// How a finished run went: the gate's decision with its figures (the command line's `--json`
/// output, field for field, and MCP's `fine_tune` answer).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
pub struct FineTuneOutcome {
    /// Whether the adapter beat the current model and was installed.
    pub accepted: bool,
    /// The installed adapter's directory (when accepted).
    pub adapter: Option<PathBuf>,
    /// nDCG@10 of the current model on the held-out pairs.
    pub ndcg_before: f64,
    /// nDCG@10 of the trained adapter on the held-out pairs.
    pub ndcg_after: f64,
    /// How many held-out pairs were measured.
    pub heldout_queries: u64,
    /// The ranking users are served, on held-out questions searched over the whole workspace:
    /// nDCG@10 with the current model (null when not measured).
    pub served_before: Option<f64>,
    /// The same with the adapter (null when not measured).
    pub served_after: Option<f64>,
    /// How many held-out questions the served ranking was measured on.
    pub served_queries: u64,
    /// The decision in one line: the figures and why the adapter was or was not installed.
    pub message: String,
    /// The trainer's full report (settings, stages, losses, evaluations).
    pub report: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum FineTuneError {
    #[error(
        "fine-tuning runs this program again as `coder-lsp train`, but the path of its executable could not be found (on Linux it is read from /proc/self/exe): {0}"
    )]
    NoExecutable(std::io::Error),
    #[error("could not start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("fine-tuning failed: {0}")]
    Trainer(String),
    #[error("fine-tuning was cancelled; the model in use is unchanged")]
    Cancelled,
    #[error("installing the adapter in {path}: {source}")]
    Install {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("taking the fine-tuning lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The trainer: this executable (`coder-lsp train`), so always the same version as the server.
/// On Linux it is started through `/proc/self/exe`, which is this process's binary even when the
/// file was replaced since (a `cargo install` while the server runs leaves the path pointing at
/// the new binary, or at nothing while it is being written). Returns what to start and the
/// executable's path, for messages.
fn trainer_program() -> Result<(PathBuf, PathBuf), FineTuneError> {
    let exe = std::env::current_exe().map_err(FineTuneError::NoExecutable)?;
    let own = Path::new("/proc/self/exe");
    if cfg!(target_os = "linux") && own.exists() {
        return Ok((own.to_path_buf(), exe));
    }
    Ok((exe.clone(), exe))
}

/// Runs the trainer for `job`, reporting progress, until it ends or `cancel` completes (the
/// child is then killed and [`FineTuneError::Cancelled`] returned). An accepted adapter is
/// installed as the root's adapter before this returns. The trainer is the running executable
/// with `train fine-tune …`, so only the `coder-lsp` binary (not a program that links the
/// library) can fine-tune.
pub async fn run(
    job: &FineTuneJob,
    mut on_progress: impl FnMut(Progress),
    cancel: impl std::future::Future<Output = ()>,
) -> Result<FineTuneOutcome, FineTuneError> {
    let (program, exe) = trainer_program()?;
    let work = job.index_dir.join(WORK_DIR);
    let candidate = work.join("candidate");
    let mut command = tokio::process::Command::new(&program);
    command
        .args(trainer_args(job, &work, &candidate))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Dropping the request (the client cancelled it) stops the training too.
        .kill_on_drop(true);
    tracing::info!("fine-tuning {}: {:?}", job.root.display(), command.as_std());
    let mut child = command.spawn().map_err(|source| FineTuneError::Spawn {
        program: exe.display().to_string(),
        source,
    })?;
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(FineTuneError::Trainer(
            "its output could not be read".into(),
        ));
    };
    // stderr is drained as it comes (a full pipe would stall the trainer); its tail explains
    // a failure.
    let stderr_tail = tokio::spawn(async move {
        let mut text = String::new();
        let mut buf = vec![0u8; 8192];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if text.len() > 64 * 1024 {
                text.drain(..text.len() - 32 * 1024);
            }
        }
        text
    });
    let mut tracker = Tracker::default();
    let mut lines = BufReader::new(stdout).lines();
    let mut report = None;
    tokio::pin!(cancel);
    loop {
        tokio::select! {
            () = &mut cancel => {
                if let Err(e) = child.kill().await {
                    tracing::warn!("stopping the trainer: {e}");
                }
                return Err(FineTuneError::Cancelled);
            }
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    match serde_json::from_str::<TrainerEvent>(&line) {
                        Ok(TrainerEvent::Report { report: whole }) => report = Some(whole),
                        Ok(event) => {
                            if let Some(progress) = tracker.update(&event) {
                                on_progress(progress);
                            }
                        }
                        // Not a protocol line (or an event of a newer trainer): kept for the log.
                        Err(e) => tracing::debug!("trainer: {line} ({e})"),
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
    let status = tokio::select! {
        () = &mut cancel => {
            if let Err(e) = child.kill().await {
                tracing::warn!("stopping the trainer: {e}");
            }
            return Err(FineTuneError::Cancelled);
        }
        status = child.wait() => status,
    }
    .map_err(|e| FineTuneError::Trainer(e.to_string()))?;
    let stderr_text = stderr_tail.await.unwrap_or_default();
    let report = match (status.success(), report) {
        (true, Some(report)) => report,
        _ => {
            let reason = stderr_text
                .lines()
                .rev()
                .find(|l| l.starts_with("error:"))
                .or_else(|| stderr_text.lines().rev().find(|l| !l.trim().is_empty()))
                .unwrap_or("the trainer ended without a report")
                .trim_start_matches("error: ")
                .to_string();
            return Err(FineTuneError::Trainer(format!("{reason} ({status})")));
        }
    };
    let outcome = finish(&job.index_dir, &candidate, report)?;
    // The run is complete: its data and checkpoint would only make a later run skip work.
    if let Err(e) = std::fs::remove_dir_all(&work) {
        tracing::debug!("removing {}: {e}", work.display());
    }
    Ok(outcome)
}

/// Reads the report and installs an accepted adapter.
fn finish(
    index_dir: &Path,
    candidate: &Path,
    report: Value,
) -> Result<FineTuneOutcome, FineTuneError> {
    let head: ReportHead = serde_json::from_value(report.clone()).map_err(|e| {
        FineTuneError::Trainer(format!("the trainer's report is not understood: {e}"))
    })?;
    let accepted = head.accepted;
    let ndcg_before = head.before.ndcg_at_10;
    let ndcg_after = head.after.ndcg_at_10;
    let heldout_queries = head.after.queries as u64;
    let adapter = if accepted {
        Some(install(index_dir, candidate)?)
    } else {
        None
    };
    let served_before = head.served.as_ref().map(|s| s.before);
    let served_after = head.served.as_ref().and_then(|s| s.after);
    let served_queries = head.served.as_ref().map_or(0, |s| s.queries as u64);
    // Always the held-out figures first (editors and scripts read them), then why.
    let measured =
        format!("held-out nDCG@10 {ndcg_before:.3} → {ndcg_after:.3} on {heldout_queries} queries");
    let message = match Some(head.decision.as_str()).filter(|d| !d.is_empty()) {
        // The trainer says why (served-mode gate, or the held-out pairs alone).
        Some(decision) if accepted => format!("{measured}; installed: {decision}"),
        Some(decision) => format!("{measured}; {decision}; the current model stays in use"),
        // A trainer from before decisions were reported.
        None => match (accepted, head.p_value) {
            (true, _) => measured,
            (false, Some(p)) if ndcg_after > ndcg_before => format!(
                "{measured}: a gain this small is likely luck (p = {p:.2}, above {}), so the current model stays in use",
                head.significance.unwrap_or(0.0)
            ),
            (false, _) => {
                format!("{measured}: not better than the current model, which stays in use")
            }
        },
    };
    Ok(FineTuneOutcome {
        accepted,
        adapter,
        ndcg_before,
        ndcg_after,
        heldout_queries,
        served_before,
        served_after,
        served_queries,
        message,
        report,
    })
}

/// Moves the adapter files from `candidate` to `<index_dir>/adapter/`, the adapter there to
/// `adapter-previous/`. Returns the installed adapter's directory.
pub fn install(index_dir: &Path, candidate: &Path) -> Result<PathBuf, FineTuneError> {
    let target = index_dir.join(ADAPTER_DIR);
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FineTuneError::Install { path, source }
    };
    // Assembled beside the target, then renamed into place in one step.
    let staging = index_dir.join(format!("{ADAPTER_DIR}.new"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(fail(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(fail(&staging))?;
    for entry in std::fs::read_dir(candidate).map_err(fail(candidate))? {
        let entry = entry.map_err(fail(candidate))?;
        if entry.file_type().map_err(fail(candidate))?.is_file() {
            std::fs::rename(entry.path(), staging.join(entry.file_name()))
                .map_err(fail(&entry.path()))?;
        }
    }
    retire(index_dir)?;
    std::fs::rename(&staging, &target).map_err(fail(&target))?;
    Ok(target)
}

/// Moves the root's adapter (if any) to `adapter-previous/`, replacing an older one there, so
/// the base model is used again. Returns whether there was an adapter.
pub fn retire(index_dir: &Path) -> Result<bool, FineTuneError> {
    let current = index_dir.join(ADAPTER_DIR);
    if !current.exists() {
        return Ok(false);
    }
    let previous = index_dir.join(PREVIOUS_ADAPTER_DIR);
    if previous.exists() {
        std::fs::remove_dir_all(&previous).map_err(|source| FineTuneError::Install {
            path: previous.clone(),
            source,
        })?;
    }
    std::fs::rename(&current, &previous).map_err(|source| FineTuneError::Install {
        path: current.clone(),
        source,
    })?;
    Ok(true)
}

/// Turns trainer events into progress: mining 0–5%, preparing 5–10%, training steps 10–90%,
/// the final evaluation 90–100%.
#[derive(Debug, Default)]
struct Tracker {
    stage: String,
    /// Pairs of the current stage (a stage without any is skipped).
    stage_pairs: u64,
    percentage: u32,
}

impl Tracker {
    fn update(&mut self, event: &TrainerEvent) -> Option<Progress> {
        let (message, percentage) = match event {
            TrainerEvent::Phase { phase } => {
                let percentage = match phase {
                    Phase::Mine => 0,
                    Phase::Load | Phase::Negatives | Phase::EvaluateBase => 5,
                    Phase::Train => 10,
                    Phase::EvaluateAdapter => 90,
                    Phase::EvaluateServed => 92,
                    Phase::Export | Phase::Report => 95,
                };
                (phase.describe().to_string(), percentage)
            }
            TrainerEvent::Mined { summary } => (
                format!(
                    "mined {} pairs ({} to train on, {} held out)",
                    summary.pairs, summary.train.pairs, summary.heldout.pairs
                ),
                5,
            ),
            TrainerEvent::Resumed {
                completed_stages, ..
            } => (
                format!("resuming after stage {completed_stages} of an interrupted run"),
                self.percentage,
            ),
            TrainerEvent::StageStarted {
                stage,
                index,
                stages,
                pairs,
                ..
            } => {
                let name = serde_json::to_value(stage)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                self.stage = format!("stage {index}/{stages} ({name})");
                self.stage_pairs = *pairs as u64;
                let what = if *pairs == 0 {
                    "skipped, no pairs left for it".to_string()
                } else {
                    format!("{pairs} pairs")
                };
                (format!("{}: {what}", self.stage), self.percentage)
            }
            TrainerEvent::Step {
                step,
                total_steps,
                loss,
                eta_seconds,
                ..
            } => {
                let total = (*total_steps).max(1);
                let left = if *eta_seconds >= 90.0 {
                    format!("about {:.0} min left", eta_seconds / 60.0)
                } else {
                    format!("about {eta_seconds:.0} s left")
                };
                (
                    format!(
                        "{} · step {step}/{total} · loss {loss:.3} · {left}",
                        self.stage
                    ),
                    10 + (80 * (*step).min(total) / total) as u32,
                )
            }
            // A skipped stage was reported when it started.
            TrainerEvent::StageFinished { .. } if self.stage_pairs == 0 => return None,
            TrainerEvent::StageFinished { mean_loss, .. } => (
                format!("{} done, mean loss {mean_loss:.3}", self.stage),
                self.percentage,
            ),
            TrainerEvent::Report { .. } => return None,
        };
        // Percentages never go back.
        self.percentage = self.percentage.max(percentage).min(100);
        Some(Progress {
            message,
            percentage: self.percentage,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn trainer_events_become_monotonic_progress() {
        let mut tracker = Tracker::default();
        let events = [
            json!({"event": "phase", "phase": "mine"}),
            json!({"event": "mined", "summary": {"pairs": 40, "by_family": {}, "by_source": {},
                "train": {"pairs": 30, "files": 3}, "heldout": {"pairs": 10, "files": 1}}}),
            json!({"event": "phase", "phase": "negatives"}),
            json!({"event": "phase", "phase": "evaluate_base"}),
            json!({"event": "phase", "phase": "train"}),
            json!({"event": "stage_started", "stage": "text_warmup", "index": 1, "stages": 3, "pairs": 12, "steps": 2}),
            json!({"event": "step", "stage": "text_warmup", "step": 1, "total_steps": 4, "loss": 1.25, "eta_seconds": 150.0}),
            json!({"event": "stage_finished", "stage": "text_warmup", "mean_loss": 1.2, "seconds": 3.0}),
            json!({"event": "step", "stage": "mixed", "step": 4, "total_steps": 4, "loss": 0.5, "eta_seconds": 0.0}),
            json!({"event": "stage_started", "stage": "code_cooldown", "index": 3, "stages": 3, "pairs": 0, "steps": 0}),
            json!({"event": "stage_finished", "stage": "code_cooldown", "mean_loss": 0.0, "seconds": 0.0}),
            json!({"event": "phase", "phase": "evaluate_adapter"}),
            json!({"event": "phase", "phase": "report"}),
        ];
        // What the trainer writes, read as the server reads it.
        let events: Vec<TrainerEvent> = events
            .into_iter()
            .map(|e| serde_json::from_value(e).unwrap())
            .collect();
        assert!(
            serde_json::from_value::<TrainerEvent>(json!({"event": "something_new"})).is_err(),
            "an unknown event is not mistaken for a known one"
        );
        let progress: Vec<Progress> = events.iter().filter_map(|e| tracker.update(e)).collect();
        assert_eq!(
            progress.len(),
            12,
            "unknown events and a skipped stage's end are not shown"
        );
        let percentages: Vec<u32> = progress.iter().map(|p| p.percentage).collect();
        assert_eq!(percentages, [0, 5, 5, 5, 10, 10, 30, 30, 90, 90, 90, 95]);
        assert!(
            progress[11].message.contains("not kept"),
            "a rejected run says so: {:?}",
            progress[11]
        );
        assert_eq!(
            progress[9].message,
            "stage 3/3 (code_cooldown): skipped, no pairs left for it"
        );
        assert_eq!(
            progress[1].message,
            "mined 40 pairs (30 to train on, 10 held out)"
        );
        assert_eq!(
            progress[6].message,
            "stage 1/3 (text_warmup) · step 1/4 · loss 1.250 · about 2 min left"
        );
        assert!(
            progress[10].message.contains("held-out"),
            "{:?}",
            progress[10]
        );
    }

    #[test]
    fn settings_become_trainer_flags_and_requests_override_defaults() {
        let defaults: FineTuneSettings =
            serde_json::from_value(json!({"batchSize": 8, "epochs": 2})).unwrap();
        let asked: FineTuneSettings = serde_json::from_value(
            json!({"maxStepsPerStage": 1, "epochs": 1, "adapterWeight": 0.75}),
        )
        .unwrap();
        let merged = defaults.merged(&asked);
        assert_eq!(
            merged.trainer_flags(),
            [
                "--max-steps-per-stage",
                "1",
                "--batch-size",
                "8",
                "--epochs",
                "1",
                "--adapter-weight",
                "0.75"
            ]
        );
        assert!(
            serde_json::from_value::<FineTuneSettings>(json!({"batchsize": 8})).is_err(),
            "a misspelt setting is an error, not silently ignored"
        );

        // A generator set in the defaults goes along, its model and limit defaulted; one in the
        // request replaces it whole.
        let with_generator: FineTuneSettings =
            serde_json::from_value(json!({"generator": {"url": "http://127.0.0.1:8080/v1"}}))
                .unwrap();
        assert_eq!(
            with_generator.merged(&asked).trainer_flags()[6..],
            ["--generator", "http://127.0.0.1:8080/v1"]
        );
        let generator = with_generator.generator.as_ref().unwrap();
        assert_eq!(
            (generator.model(), generator.limit()),
            (DEFAULT_GENERATOR_MODEL, DEFAULT_GENERATOR_LIMIT)
        );
        let other: FineTuneSettings = serde_json::from_value(
            json!({"generator": {"url": "http://gpu:8000/v1", "model": "qwen", "limit": 5}}),
        )
        .unwrap();
        assert_eq!(
            with_generator.merged(&other).generator.unwrap().limit(),
            5,
            "the request's generator wins"
        );
        assert!(
            serde_json::from_value::<FineTuneSettings>(json!({"generator": {"model": "x"}}))
                .is_err(),
            "a generator needs its url"
        );

        // The whole command line: the server's device and changed instructions go along.
        let job = FineTuneJob {
            root: "/ws".into(),
            index_dir: "/ws/.index".into(),
            model: "/models/bge".into(),
            exclude: vec!["vendor/**".into()],
            max_file_size: 1000,
            settings: merged,
            device: DeviceSpec::Cuda(1),
            instructions: Instructions::from_args(&["similar=Find code like this.".into()])
                .unwrap(),
        };
        let args: Vec<String> = trainer_args(&job, Path::new("/w"), Path::new("/w/c"))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args.join(" "),
            "train fine-tune --json --root /ws --work /w/data --out /w/c --model /models/bge \
             --max-file-size 1000 --index-dir /ws/.index --device cuda:1 \
             --instruction similar=Find code like this. \
             --exclude vendor/** --max-steps-per-stage 1 --batch-size 8 --epochs 1 \
             --adapter-weight 0.75"
        );
    }

    #[test]
    fn a_rejected_run_says_whether_it_was_worse_or_only_luckily_better() {
        let dir = tempfile::tempdir().unwrap();
        let report = |after: f64, p: f64| {
            json!({"accepted": false, "p_value": p, "significance": 0.05,
                   "before": {"ndcg_at_10": 0.4}, "after": {"ndcg_at_10": after, "queries": 30}})
        };
        let lucky = finish(dir.path(), dir.path(), report(0.41, 0.31)).unwrap();
        assert!(!lucky.accepted);
        assert!(
            lucky.message.contains("likely luck (p = 0.31, above 0.05)"),
            "{}",
            lucky.message
        );
        let worse = finish(dir.path(), dir.path(), report(0.38, 1.0)).unwrap();
        assert!(
            worse
                .message
                .ends_with("not better than the current model, which stays in use"),
            "{}",
            worse.message
        );
        assert!(
            worse
                .message
                .starts_with("held-out nDCG@10 0.400 → 0.380 on 30 queries")
        );
        assert!(!dir.path().join(ADAPTER_DIR).exists(), "nothing installed");

        // The served-mode gate's decision is the message, and its figures are the outcome's.
        let served = json!({"accepted": false, "p_value": 0.01, "significance": 0.05,
            "before": {"ndcg_at_10": 0.3}, "after": {"ndcg_at_10": 0.45, "queries": 30},
            "served": {"before": 0.61, "after": 0.58, "queries": 40},
            "decision": "40 held-out questions searched over the whole workspace (hybrid): nDCG@10 0.610 → 0.580: not better than the current model"});
        let judged = finish(dir.path(), dir.path(), served).unwrap();
        assert!(!judged.accepted);
        assert_eq!(judged.served_before, Some(0.61));
        assert_eq!(judged.served_after, Some(0.58));
        assert_eq!(judged.served_queries, 40);
        assert!(
            judged
                .message
                .starts_with("held-out nDCG@10 0.300 → 0.450 on 30 queries; 40 held-out questions"),
            "{}",
            judged.message
        );
        assert!(
            judged
                .message
                .ends_with("not better than the current model; the current model stays in use"),
            "{}",
            judged.message
        );
    }

    #[test]
    fn install_keeps_the_previous_adapter_and_retire_goes_back_to_none() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path();
        let write_candidate = |tag: &str| {
            let candidate = index.join("candidate");
            std::fs::create_dir_all(candidate.join("checkpoint")).unwrap();
            std::fs::write(candidate.join("adapter.json"), tag).unwrap();
            std::fs::write(candidate.join("adapter.safetensors"), tag).unwrap();
            candidate
        };
        assert!(installed_adapter(index).is_none());
        let first = install(index, &write_candidate("one")).unwrap();
        assert_eq!(installed_adapter(index), Some(first.clone()));
        assert!(
            !first.join("checkpoint").exists(),
            "only files are installed"
        );
        install(index, &write_candidate("two")).unwrap();
        let read = |p: PathBuf| std::fs::read_to_string(p.join("adapter.json")).unwrap();
        assert_eq!(read(index.join(ADAPTER_DIR)), "two");
        assert_eq!(read(index.join(PREVIOUS_ADAPTER_DIR)), "one");
        assert!(retire(index).unwrap());
        assert!(installed_adapter(index).is_none());
        assert_eq!(read(index.join(PREVIOUS_ADAPTER_DIR)), "two");
        assert!(!retire(index).unwrap(), "nothing left to retire");
    }
}
