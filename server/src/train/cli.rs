//! The trainer's command line, `coder-lsp train`: one subcommand per pipeline stage, each a thin
//! layer over the library (`mine::mine_repository`, …) that prints a summary for people or, with
//! `--json`, one JSON object for scripts. Progress goes to stderr. The server's `finetune` runs
//! `coder-lsp train fine-tune --json` as a child process.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::model::{self, DEFAULT_MODEL};
use crate::workspace::{DEFAULT_MAX_FILE_SIZE, WalkOptions};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::embed::lora::LoraConfig;
use crate::embed::{DeviceSpec, Instructions};
use crate::finetune::{FineTuneSettings, GeneratorSettings, parse_fraction};
use crate::train::finetune::{FineTuneConfig, ServedSetup, fine_tune};
use crate::train::mine::{
    self, DEFAULT_MAX_COMMITS, GeneratorOptions, MineOptions, MineProgress, PairLimits, Split,
};
use crate::train::pairs::{Pair, PairSource, TaskFamily};
use crate::train::training::{Event, TrainConfig};
use crate::trainer_protocol::{MinedCounts, Phase, SetCounts};

/// File names of the two sets in the output directory.
pub const TRAIN_FILE: &str = "train.jsonl";
pub const HELDOUT_FILE: &str = "heldout.jsonl";
/// Where mined pairs go, and where `train` reads them, when no directory is given.
pub const DEFAULT_DATA_DIR: &str = "coder-lsp-train-data";
/// Where the adapter goes when no directory is given.
pub const DEFAULT_ADAPTER_DIR: &str = "coder-lsp-train-adapter";

/// The subcommands of `coder-lsp train`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mine (query, positive) training pairs from a repository and split them by file into
    /// train.jsonl and heldout.jsonl.
    Mine(MineArgs),
    /// Fine-tune the model on mined pairs (train.jsonl, heldout.jsonl): hard negatives, LoRA
    /// training with the curriculum, evaluation; the adapter is written only if it is better.
    Train(TrainArgs),
    /// Both in one run: mine the repository into `--work`, then fine-tune; with `--json` every
    /// step reports a JSON line (what `coder-lsp fine-tune` and the editors' fineTune use).
    FineTune(FineTuneArgs),
}

/// Options of `coder-lsp train fine-tune`.
#[derive(Debug, Args)]
pub struct FineTuneArgs {
    /// The repository to learn (its git history too, when it is a git repository).
    #[arg(long)]
    pub root: PathBuf,
    /// Where the mined pairs go (train.jsonl, heldout.jsonl).
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub work: PathBuf,
    /// Where the adapter, its report and checkpoints go (an earlier adapter there moves to
    /// `previous/`).
    #[arg(long, default_value = DEFAULT_ADAPTER_DIR)]
    pub out: PathBuf,
    /// The base model: a model directory or Hugging Face id (a BERT model).
    #[arg(long = "model", env = "CODER_LSP_MODEL", default_value = DEFAULT_MODEL)]
    pub model: String,
    /// The workspace's coder-lsp index: the adapter is judged by searching a copy of it with
    /// the ranking users are served (without it, the copy is built from the files, which embeds
    /// the workspace once more).
    #[arg(long)]
    pub index_dir: Option<PathBuf>,
    #[command(flatten)]
    pub mining: MineSettings,
    #[command(flatten)]
    pub training: TrainSettings,
    /// Print one JSON object per event on stdout (`phase`, `mined`, `stage_started`, `step`
    /// with loss and eta, …), then the report.
    #[arg(long)]
    pub json: bool,
}

/// Options of `coder-lsp train train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The directory `coder-lsp train mine` wrote (train.jsonl and heldout.jsonl).
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// Where the adapter, its report and checkpoints go (an earlier adapter there moves to
    /// `previous/`). Load it with `coder-lsp --adapter DIR`.
    #[arg(long, default_value = DEFAULT_ADAPTER_DIR)]
    pub out: PathBuf,
    /// The base model: a model directory or Hugging Face id (a BERT model).
    #[arg(long = "model", env = "CODER_LSP_MODEL", default_value = DEFAULT_MODEL)]
    pub model: String,
    #[command(flatten)]
    pub training: TrainSettings,
    /// Print one JSON object per event (phase, stage, step with loss and eta) on stdout, then the
    /// report; for editors and scripts that show progress.
    #[arg(long)]
    pub json: bool,
}

/// How to train (shared by `train` and `fine-tune`): the settings any client may choose (one
/// type with the server's, so `coder-lsp fine-tune` and the editors pass exactly these) and the
/// trainer's own.
#[derive(Debug, Clone, Args)]
pub struct TrainSettings {
    #[command(flatten)]
    pub shared: FineTuneSettings,
    /// LoRA rank [default: 8 for BERT models, 32 (CodeR's) for Qwen2]
    #[arg(long)]
    pub rank: Option<usize>,
    /// LoRA alpha; the update is scaled by alpha / rank [default: 16 for BERT models, 64 for
    /// Qwen2]
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Where to train: cpu, cuda[:N] or metal (GPUs need a build with the `cuda` or `metal`
    /// feature). Weights stay in f32 everywhere, so evaluation before and after is exact.
    #[arg(long, default_value_t = DeviceSpec::Cpu)]
    pub device: DeviceSpec,
    /// A query instruction for instruction-tuned models (Qwen2), as TASK=TEXT with TASK one of
    /// search, similar, docs; train with the instructions the model will be used with
    /// (repeatable).
    #[arg(long = "instruction", value_name = "TASK=TEXT")]
    pub instructions: Vec<String>,
}

impl TrainSettings {
    /// Where to train and with which query instructions.
    fn setup(&self) -> Result<Setup> {
        Ok(Setup {
            adapter_weight: self
                .shared
                .adapter_weight
                .unwrap_or(crate::train::finetune::DEFAULT_ADAPTER_WEIGHT),
            significance: self
                .shared
                .significance
                .unwrap_or(crate::train::finetune::DEFAULT_SIGNIFICANCE),
            device: self.device,
            instructions: Instructions::from_args(&self.instructions)
                .map_err(anyhow::Error::msg)?,
        })
    }

    /// The training configuration for `model` (a model setting, as `--model` takes): these
    /// settings over the defaults of the model's architecture.
    fn config(&self, model: &str) -> Result<TrainConfig> {
        let resolved = model::resolve(model).with_context(|| format!("finding model {model:?}"))?;
        let architecture = crate::embed::architecture_of(&resolved.dir)?;
        self.config_for(architecture)
    }

    /// The seed of the training and of the train/held-out split.
    fn seed(&self) -> u64 {
        self.shared.seed.unwrap_or(TrainConfig::default().seed)
    }

    fn config_for(&self, architecture: &str) -> Result<TrainConfig> {
        let defaults = TrainConfig::for_architecture(architecture);
        let FineTuneSettings {
            heldout: _,
            max_steps_per_stage,
            max_steps,
            batch_size,
            sub_batch_size,
            learning_rate,
            epochs,
            max_tokens,
            seed: _,
            no_curriculum,
            temperature,
            significance: _,
            adapter_weight: _,
            generator: _,
        } = self.shared;
        let batch_size = batch_size.unwrap_or(defaults.batch_size);
        let sub_batch_size = sub_batch_size.unwrap_or(defaults.sub_batch_size);
        let max_tokens = max_tokens.unwrap_or(defaults.max_tokens);
        let epochs = epochs.unwrap_or(defaults.epochs);
        let max_steps = max_steps.unwrap_or(crate::train::training::DEFAULT_MAX_STEPS);
        if batch_size < 2 {
            bail!("--batch-size must be at least 2 (in-batch negatives need company)");
        }
        if sub_batch_size == 0 {
            bail!("--sub-batch-size must be at least 1");
        }
        let rank = self.rank.unwrap_or(defaults.lora.rank);
        if rank == 0 || max_tokens < 8 || epochs == 0 {
            bail!("--rank, --epochs must be positive and --max-tokens at least 8");
        }
        let learning_rate = learning_rate.unwrap_or(defaults.learning_rate);
        if !(learning_rate.is_finite() && learning_rate > 0.0) {
            bail!("--learning-rate must be a positive number");
        }
        let temperature = temperature.unwrap_or(defaults.temperature);
        if !(temperature.is_finite() && temperature > 0.0) {
            bail!("--temperature must be a positive number");
        }
        let alpha = self.alpha.unwrap_or(defaults.lora.alpha);
        if !(alpha.is_finite() && alpha > 0.0) {
            bail!("--alpha must be a positive number");
        }
        Ok(TrainConfig {
            lora: LoraConfig {
                rank,
                alpha,
                ..defaults.lora.clone()
            },
            seed: self.seed(),
            batch_size,
            sub_batch_size,
            max_tokens,
            epochs,
            max_steps_per_stage,
            max_steps: (max_steps > 0).then_some(max_steps),
            learning_rate,
            cooldown_learning_rate: learning_rate / 10.0,
            temperature,
            curriculum: !no_curriculum,
            ..defaults
        })
    }
}

/// Where a run trains and the instructions its queries carry (not part of the training
/// configuration a checkpoint records).
struct Setup {
    adapter_weight: f64,
    significance: f64,
    device: DeviceSpec,
    instructions: Instructions,
}

/// Options of `coder-lsp train mine`.
#[derive(Debug, Args)]
pub struct MineArgs {
    /// The repository to mine (its git history too, when it is a git repository).
    #[arg(long)]
    pub root: PathBuf,
    /// Where train.jsonl and heldout.jsonl are written (created if missing).
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub out: PathBuf,
    /// Seed of the train/held-out split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// A local language model that writes queries too (`fine-tune` takes it with its
    /// settings).
    #[command(flatten)]
    pub generator: Option<GeneratorSettings>,
    /// Fraction of the pairs held out for evaluation, by whole files (0 to 1).
    #[arg(long, default_value_t = DEFAULT_HELDOUT, value_parser = parse_fraction)]
    pub heldout: f64,
    /// The model whose chunks the positives are: a model directory or Hugging Face id (its
    /// tokenizer and token limit decide how long symbols are cut).
    #[arg(long = "model", env = "CODER_LSP_MODEL", default_value = DEFAULT_MODEL)]
    pub model: String,
    #[command(flatten)]
    pub mining: MineSettings,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The share of mined pairs held out to judge the adapter when none is given.
pub const DEFAULT_HELDOUT: f64 = 0.15;

/// How to mine (shared by `mine` and `fine-tune`; the held-out share and the seed, which
/// `fine-tune` takes with its training settings, are `mine`'s own flags).
#[derive(Debug, Clone, Args)]
pub struct MineSettings {
    /// Most commits of the git history read; 0 skips the history.
    #[arg(long, default_value_t = DEFAULT_MAX_COMMITS)]
    pub max_commits: usize,
    /// Most pairs whose positive is the same symbol.
    #[arg(long, default_value_t = PairLimits::default().max_per_symbol)]
    pub max_per_symbol: usize,
    /// Extra paths or globs to leave out (like .gitignore lines); repeatable.
    #[arg(long = "exclude", value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Files larger than this many bytes are skipped.
    #[arg(long, default_value_t = DEFAULT_MAX_FILE_SIZE)]
    pub max_file_size: u64,
}

/// Runs a parsed `coder-lsp train` command.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Mine(args) => run_mine(&args),
        Command::Train(args) => run_train(&args),
        Command::FineTune(args) => run_fine_tune(&args),
    }
}

/// Why mining found too little: most often a repository in languages read as plain text.
fn too_few_pairs_reason(stats: &mine::MineStats) -> String {
    const NEEDS: &str =
        "fine-tuning needs documented functions, tests or a git history to learn from";
    if stats.files > 0 && stats.text_files * 2 > stats.files {
        format!(
            "{} of its {} files are read as plain text (a language without symbols here, such as \
             OCaml, or Haskell in a default build, or data and config files), and nothing is mined from those; {NEEDS}",
            stats.text_files, stats.files
        )
    } else {
        NEEDS.to_string()
    }
}

/// Reads one [`Pair`] per line.
pub fn read_jsonl(path: &Path) -> Result<Vec<Pair>> {
    let text = fs::read_to_string(path).with_context(|| {
        format!(
            "reading {} (run `coder-lsp train mine` first)",
            path.display()
        )
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a training pair", path.display(), n + 1))
        })
        .collect()
}

fn run_train(args: &TrainArgs) -> Result<()> {
    if args.training.shared.heldout.is_some() {
        bail!(
            "--heldout splits mined pairs, so it belongs to `mine` and `fine-tune`; `train` uses the split already in {}",
            args.data.display()
        );
    }
    if args.training.shared.generator.is_some() {
        bail!(
            "--generator writes queries while mining, so it belongs to `mine` and `fine-tune`; `train` reads the pairs already in {}",
            args.data.display()
        );
    }
    let train = read_jsonl(&args.data.join(TRAIN_FILE))?;
    let heldout = read_jsonl(&args.data.join(HELDOUT_FILE))?;
    let config = args.training.config(&args.model)?;
    train_and_report(
        &args.model,
        config,
        args.training.setup()?,
        None,
        &args.out,
        train,
        heldout,
        args.json,
    )
}

fn run_fine_tune(args: &FineTuneArgs) -> Result<()> {
    let config = args.training.config(&args.model)?;
    let setup = args.training.setup()?;
    let json = args.json;
    if json {
        print_event(&Event::Phase { phase: Phase::Mine })?;
    } else {
        eprintln!("mine…");
    }
    let (summary, split) = mine_split(
        &args.root,
        &args.work,
        &args.model,
        &args.mining,
        args.training.shared.generator.as_ref(),
        args.training.shared.heldout.unwrap_or(DEFAULT_HELDOUT),
        args.training.seed(),
    )?;
    if json {
        print_event(&Event::Mined {
            summary: summary.counts(),
        })?;
    } else {
        eprint!("{}", summary.human());
    }
    if split.train.is_empty() || split.heldout.is_empty() {
        bail!(
            "{} gave too few training pairs ({} to train on, {} held out): {}",
            args.root.display(),
            split.train.len(),
            split.heldout.len(),
            too_few_pairs_reason(&summary.stats)
        );
    }
    // Never walk the workspace's own index if it sits inside the workspace.
    let skip_dir = args
        .index_dir
        .as_ref()
        .and_then(|dir| std::fs::canonicalize(dir).ok());
    let served = ServedSetup {
        root: args.root.clone(),
        walk: WalkOptions {
            max_file_size: args.mining.max_file_size,
            exclude: args.mining.exclude.clone(),
            skip_dir,
        },
        workspace_index: args.index_dir.clone(),
        model: args.model.clone(),
    };
    train_and_report(
        &args.model,
        config,
        setup,
        Some(served),
        &args.out,
        split.train,
        split.heldout,
        json,
    )
}

/// Fine-tunes `model` on the pairs and prints progress and the report (JSON lines with `json`);
/// with `served`, the adapter is judged by searching that workspace.
#[allow(clippy::too_many_arguments)]
fn train_and_report(
    model: &str,
    train_config: TrainConfig,
    setup: Setup,
    served: Option<ServedSetup>,
    out: &Path,
    train: Vec<Pair>,
    heldout: Vec<Pair>,
    json: bool,
) -> Result<()> {
    let resolved = model::resolve(model).with_context(|| format!("resolving model {model}"))?;
    let mut config = FineTuneConfig::new(&resolved.dir, out);
    config.train = train_config;
    config.device = setup.device;
    config.instructions = setup.instructions;
    config.adapter_weight = setup.adapter_weight;
    config.significance = setup.significance;
    config.served = served;
    eprintln!(
        "coder-lsp train: {} training and {} held-out pairs, model {}",
        train.len(),
        heldout.len(),
        resolved.name
    );
    let report = fine_tune(&config, train, heldout, |event| {
        if json {
            if let Err(e) = print_event(event) {
                tracing::warn!("writing a progress event: {e}");
            }
        } else {
            eprintln!("{}", describe(event));
        }
        ControlFlow::Continue(())
    })?;
    if json {
        print_event(&Event::Report {
            report: serde_json::to_value(&report)?,
        })?;
    } else {
        println!(
            "held-out pairs: nDCG@10 {:.3} → {:.3}, MRR@10 {:.3} → {:.3} ({} queries)",
            report.before.ndcg_at_10,
            report.after.ndcg_at_10,
            report.before.mrr_at_10,
            report.after.mrr_at_10,
            report.after.queries
        );
        match &report.adapter_dir {
            Some(dir) => println!(
                "adapter written to {} (use it: coder-lsp --adapter {}): {}",
                dir.display(),
                dir.display(),
                report.decision
            ),
            None => println!("no adapter written: {}", report.decision),
        }
    }
    Ok(())
}

/// One line of the trainer protocol on stdout.
fn print_event(event: &Event) -> Result<()> {
    println!("{}", serde_json::to_string(event)?);
    Ok(())
}

/// One line of progress for people.
fn describe(event: &Event) -> String {
    match event {
        Event::Phase { phase } => format!("{}…", phase.describe()),
        Event::Resumed {
            completed_stages,
            step,
        } => format!("resuming after stage {completed_stages} (step {step})"),
        Event::StageStarted {
            stage,
            index,
            stages,
            pairs,
            steps,
        } => format!("stage {index}/{stages} {stage:?}: {pairs} pairs, {steps} steps"),
        Event::Step {
            step,
            total_steps,
            loss,
            eta_seconds,
            ..
        } => format!("step {step}/{total_steps}: loss {loss:.4}, about {eta_seconds:.0} s left"),
        Event::StageFinished {
            stage,
            mean_loss,
            seconds,
        } => format!("{stage:?} done: mean loss {mean_loss:.4} in {seconds:.1} s"),
        Event::Mined { summary } => format!(
            "mined {} pairs ({} to train on, {} held out)",
            summary.pairs, summary.train.pairs, summary.heldout.pairs
        ),
        Event::Report { .. } => "report written".to_string(),
    }
}

fn run_mine(args: &MineArgs) -> Result<()> {
    let (summary, _) = mine_split(
        &args.root,
        &args.out,
        &args.model,
        &args.mining,
        args.generator.as_ref(),
        args.heldout,
        args.seed,
    )?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print!("{}", summary.human());
    }
    Ok(())
}

/// Mines `root`, splits the pairs by file and writes both sets to `out`.
fn mine_split(
    root: &Path,
    out: &Path,
    model: &str,
    settings: &MineSettings,
    generator: Option<&GeneratorSettings>,
    heldout: f64,
    seed: u64,
) -> Result<(Summary, Split)> {
    if !root.exists() {
        bail!("repository root {} does not exist", root.display());
    }
    if !root.is_dir() {
        bail!("repository root {} is not a directory", root.display());
    }
    let resolved = model::resolve(model).with_context(|| format!("finding model {model:?}"))?;
    let chunker = crate::embed::chunker_for_model_dir(&resolved.dir)
        .with_context(|| format!("reading the tokenizer of {}", resolved.dir.display()))?;
    let options = MineOptions {
        chunker,
        walk: WalkOptions {
            max_file_size: settings.max_file_size,
            exclude: settings.exclude.clone(),
            skip_dir: fs::canonicalize(out).ok(),
        },
        limits: PairLimits {
            max_per_symbol: settings.max_per_symbol.max(1),
            ..PairLimits::default()
        },
        max_commits: settings.max_commits,
        generator: generator.map(|g| GeneratorOptions {
            url: g.url.clone(),
            model: g.model().to_string(),
            max_symbols: g.limit(),
        }),
    };
    let mut reporter = ProgressReporter::default();
    let mined = mine::mine_repository_with_progress(root, &options, &mut |p| {
        reporter.report(p);
    })
    .with_context(|| format!("mining {}", root.display()))?;
    let by_family = mined.by_family();
    let by_source = mined.by_source();
    let pairs = mined.pairs.len();
    let split = mine::split_by_file(mined.pairs, heldout, seed);
    fs::create_dir_all(out)
        .with_context(|| format!("creating output directory {}", out.display()))?;
    let train_path = out.join(TRAIN_FILE);
    let heldout_path = out.join(HELDOUT_FILE);
    write_jsonl(&train_path, &split.train)?;
    write_jsonl(&heldout_path, &split.heldout)?;
    let summary = Summary {
        pairs,
        by_family,
        by_source,
        stats: mined.stats,
        train: SetSummary::new(&split.train, &train_path),
        heldout: SetSummary::new(&split.heldout, &heldout_path),
    };
    Ok((summary, split))
}

/// Writes one JSON object per line, through a temporary file so a reader never sees half a set.
pub fn write_jsonl(path: &Path, pairs: &[Pair]) -> Result<()> {
    let tmp = path.with_extension("jsonl.tmp");
    let write = || -> std::io::Result<()> {
        let mut out = BufWriter::new(fs::File::create(&tmp)?);
        for pair in pairs {
            serde_json::to_writer(&mut out, pair)?;
            out.write_all(b"\n")?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().with_context(|| format!("writing {}", path.display()))
}

/// Progress lines on stderr: a line per stage, and file counts while reading.
#[derive(Default)]
struct ProgressReporter {
    last_done: usize,
}

impl ProgressReporter {
    fn report(&mut self, progress: MineProgress) {
        match progress {
            MineProgress::Reading { done, total } => {
                // The first call (0 done) and the last are always shown, and every 1000 files.
                if done == 0 || done == total || done >= self.last_done + 1000 {
                    eprintln!("reading files: {done}/{total}");
                    self.last_done = done;
                }
            }
            MineProgress::History => eprintln!("reading the git history"),
            MineProgress::Generating => eprintln!("asking the query generator"),
            MineProgress::Filtering { proposed } => {
                eprintln!("filtering {proposed} proposed pairs");
            }
        }
    }
}

/// What `coder-lsp train mine` reports.
#[derive(Debug, serde::Serialize)]
struct Summary {
    pairs: usize,
    by_family: BTreeMap<TaskFamily, usize>,
    by_source: BTreeMap<PairSource, usize>,
    stats: mine::MineStats,
    train: SetSummary,
    heldout: SetSummary,
}

#[derive(Debug, serde::Serialize)]
struct SetSummary {
    pairs: usize,
    files: usize,
    path: PathBuf,
}

impl Summary {
    /// What the `mined` event carries.
    fn counts(&self) -> MinedCounts {
        let names = |counts: Vec<(String, usize)>| counts.into_iter().collect();
        MinedCounts {
            pairs: self.pairs,
            by_family: names(
                self.by_family
                    .iter()
                    .map(|(f, n)| (f.as_str().to_string(), *n))
                    .collect(),
            ),
            by_source: names(
                self.by_source
                    .iter()
                    .map(|(s, n)| (s.as_str().to_string(), *n))
                    .collect(),
            ),
            train: SetCounts {
                pairs: self.train.pairs,
                files: self.train.files,
            },
            heldout: SetCounts {
                pairs: self.heldout.pairs,
                files: self.heldout.files,
            },
        }
    }
}

impl SetSummary {
    fn new(pairs: &[Pair], path: &Path) -> Self {
        Self {
            pairs: pairs.len(),
            files: Split::file_count(pairs),
            path: path.to_path_buf(),
        }
    }
}

impl Summary {
    fn human(&self) -> String {
        let stats = &self.stats;
        let join = |counts: Vec<(&str, usize)>| {
            counts
                .into_iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect::<Vec<_>>()
                .join(" · ")
        };
        let families = join(
            self.by_family
                .iter()
                .map(|(f, n)| (f.as_str(), *n))
                .collect(),
        );
        let sources = join(
            self.by_source
                .iter()
                .map(|(s, n)| (s.as_str(), *n))
                .collect(),
        );
        let history = match &stats.history.skipped {
            Some(why) => format!("not read ({why})"),
            None => format!("{} commits read", stats.history.commits),
        };
        let generator = match &stats.generator {
            None => String::new(),
            Some(g) => match &g.error {
                Some(error) => format!("  generator: {} queries, then {error}\n", g.queries),
                None => format!("  generator: {} queries\n", g.queries),
            },
        };
        format!(
            "mined {} pairs from {} files ({} symbols; {} files plain text) in {:.1} s\n\
             \x20 by family: {families}\n\
             \x20 by source: {sources}\n\
             \x20 git history: {history}\n\
             {generator}\
             \x20 dropped: {} too short, {} duplicates, {} over the per-symbol cap, {} signature \
             pairs over their share\n\
             \x20 train: {} pairs from {} files → {}\n\
             \x20 held out: {} pairs from {} files → {}\n",
            self.pairs,
            stats.files,
            stats.symbols,
            stats.text_files,
            stats.elapsed.as_secs_f64(),
            stats.too_short,
            stats.duplicates,
            stats.over_symbol_cap,
            stats.over_signature_share,
            self.train.pairs,
            self.train.files,
            self.train.path.display(),
            self.heldout.pairs,
            self.heldout.files,
            self.heldout.path.display(),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The server starts `coder-lsp train fine-tune` with its settings as flags: every setting must
    /// be a flag this command line takes, landing in the field it means.
    #[test]
    fn the_servers_fine_tune_settings_are_flags_of_fine_tune() {
        let sent = crate::finetune::FineTuneSettings {
            heldout: Some(0.2),
            max_steps_per_stage: Some(3),
            max_steps: Some(7),
            batch_size: Some(4),
            sub_batch_size: Some(5),
            learning_rate: Some(1e-3),
            epochs: Some(2),
            max_tokens: Some(64),
            seed: Some(9),
            no_curriculum: true,
            temperature: Some(0.07),
            significance: Some(0.2),
            adapter_weight: Some(0.75),
            generator: Some(GeneratorSettings {
                url: "http://127.0.0.1:8080/v1".into(),
                model: Some("smollm2".into()),
                limit: Some(50),
            }),
        };
        let mut argv = vec!["fine-tune".to_string(), "--root".into(), "/r".into()];
        argv.extend(sent.trainer_flags());
        let args = fine_tune_args(argv);
        // One type on both sides: what the server sends is what the trainer reads.
        assert_eq!(args.training.shared, sent);
        let config = args.training.config_for("bert").unwrap();
        assert_eq!(
            (
                config.max_steps_per_stage,
                config.max_steps,
                config.batch_size
            ),
            (Some(3), Some(7), 4)
        );
        assert_eq!(
            (config.sub_batch_size, config.epochs, config.max_tokens),
            (5, 2, 64)
        );
        assert_eq!(
            (config.seed, config.learning_rate, config.temperature),
            (9, 1e-3, 0.07)
        );
        assert!(!config.curriculum);
        let setup = args.training.setup().unwrap();
        assert_eq!((setup.significance, setup.adapter_weight), (0.2, 0.75));
    }

    /// Unset settings take the trainer's defaults, and the help of each flag states them.
    #[test]
    fn unset_settings_take_the_defaults_the_help_states() {
        let args = fine_tune_args(["fine-tune", "--root", "/r"]);
        let config = args.training.config_for("bert").unwrap();
        let defaults = TrainConfig::default();
        assert_eq!(config.seed, defaults.seed);
        assert_eq!(
            config.max_steps,
            Some(crate::train::training::DEFAULT_MAX_STEPS)
        );
        let setup = args.training.setup().unwrap();
        assert_eq!(
            setup.significance,
            crate::train::finetune::DEFAULT_SIGNIFICANCE
        );
        assert_eq!(
            setup.adapter_weight,
            crate::train::finetune::DEFAULT_ADAPTER_WEIGHT
        );
        let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
        let fine_tune = command
            .find_subcommand_mut("train")
            .and_then(|train| train.find_subcommand_mut("fine-tune"))
            .unwrap();
        let help = |flag: &str| {
            fine_tune
                .get_arguments()
                .find(|a| a.get_long() == Some(flag))
                .and_then(|a| a.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default()
        };
        let stated = [
            ("heldout", DEFAULT_HELDOUT.to_string()),
            (
                "max-steps",
                crate::train::training::DEFAULT_MAX_STEPS.to_string(),
            ),
            ("batch-size", defaults.batch_size.to_string()),
            ("sub-batch-size", defaults.sub_batch_size.to_string()),
            ("epochs", defaults.epochs.to_string()),
            ("max-tokens", defaults.max_tokens.to_string()),
            ("seed", defaults.seed.to_string()),
            (
                "significance",
                crate::train::finetune::DEFAULT_SIGNIFICANCE.to_string(),
            ),
            (
                "adapter-weight",
                crate::train::finetune::DEFAULT_ADAPTER_WEIGHT.to_string(),
            ),
        ];
        for (flag, value) in stated {
            assert!(
                help(flag).contains(&format!("[default: {value}]")),
                "--{flag}: {:?} does not state its default {value}",
                help(flag)
            );
        }
        let bert = TrainConfig::for_architecture("bert");
        let qwen = TrainConfig::for_architecture("qwen2");
        assert!(help("learning-rate").contains(&format!(
            "{:e} for BERT models, {:e}",
            bert.learning_rate, qwen.learning_rate
        )));
        assert!(help("temperature").contains(&format!(
            "{} for BERT models (MiniLM's own), {}",
            bert.temperature, qwen.temperature
        )));
    }

    #[test]
    fn train_refuses_a_held_out_share() {
        let args = match parse(["train", "--heldout", "0.2"]) {
            Command::Train(args) => args,
            other => panic!("parsed as {other:?}"),
        };
        let err = run_train(&args).unwrap_err().to_string();
        assert!(err.contains("belongs to `mine` and `fine-tune`"), "{err}");
        let args = match parse(["train", "--generator", "http://h:1/v1"]) {
            Command::Train(args) => args,
            other => panic!("parsed as {other:?}"),
        };
        let err = run_train(&args).unwrap_err().to_string();
        assert!(
            err.contains("--generator writes queries while mining"),
            "{err}"
        );
    }

    #[test]
    fn a_generator_is_all_or_nothing_with_defaults_for_its_model_and_limit() {
        assert_eq!(
            fine_tune_args(["fine-tune", "--root", "/r"])
                .training
                .shared
                .generator,
            None
        );
        let mine = match parse(["mine", "--root", "/r", "--generator", "http://h:1/v1"]) {
            Command::Mine(args) => args,
            other => panic!("parsed as {other:?}"),
        };
        assert_eq!(
            mine.generator,
            Some(GeneratorSettings {
                url: "http://h:1/v1".into(),
                model: None,
                limit: None,
            })
        );
        let without_url = try_parse(["fine-tune", "--root", "/r", "--generator-model", "qwen"]);
        assert!(
            without_url.is_err(),
            "--generator-model alone must be refused"
        );
    }

    /// `coder-lsp train ARGS…` parsed by the binary's own command line.
    fn try_parse(
        args: impl IntoIterator<Item = impl Into<std::ffi::OsString>>,
    ) -> Result<Command, clap::Error> {
        use clap::Parser;
        let argv = ["coder-lsp", "train"]
            .map(std::ffi::OsString::from)
            .into_iter()
            .chain(args.into_iter().map(Into::into));
        match crate::cli::Cli::try_parse_from(argv)?.command {
            Some(crate::cli::Command::Train(command)) => Ok(command),
            other => panic!("parsed as {other:?}"),
        }
    }

    fn parse(args: impl IntoIterator<Item = impl Into<std::ffi::OsString>>) -> Command {
        try_parse(args).unwrap()
    }

    fn fine_tune_args(
        args: impl IntoIterator<Item = impl Into<std::ffi::OsString>>,
    ) -> FineTuneArgs {
        match parse(args) {
            Command::FineTune(args) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    fn settings(flags: &[&str]) -> TrainSettings {
        let mut argv = vec!["train"];
        argv.extend_from_slice(flags);
        match parse(argv) {
            Command::Train(args) => args.training,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn lora_and_learning_rate_default_by_architecture_and_flags_override_them() {
        let bert = settings(&[]).config_for("bert").unwrap();
        assert_eq!((bert.lora.rank, bert.lora.alpha), (8, 16.0));
        assert_eq!(
            (bert.learning_rate, bert.cooldown_learning_rate),
            (5e-4, 5e-5)
        );
        let qwen2 = settings(&[]).config_for("qwen2").unwrap();
        assert_eq!((qwen2.lora.rank, qwen2.lora.alpha), (32, 64.0));
        assert_eq!(qwen2.learning_rate, 1e-4);
        assert!((qwen2.cooldown_learning_rate - 1e-5).abs() < 1e-12);

        assert_eq!((bert.temperature, qwen2.temperature), (0.05, 0.02));
        let chosen = settings(&[
            "--rank",
            "4",
            "--alpha",
            "8",
            "--learning-rate",
            "2e-3",
            "--temperature",
            "0.05",
        ])
        .config_for("qwen2")
        .unwrap();
        assert_eq!((chosen.lora.rank, chosen.lora.alpha), (4, 8.0));
        assert_eq!(chosen.temperature, 0.05);
        assert_eq!(chosen.learning_rate, 2e-3);
        for bad in [
            &["--rank", "0"][..],
            &["--alpha=-1"],
            &["--learning-rate", "0"],
            &["--temperature", "0"],
        ] {
            assert!(settings(bad).config_for("bert").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn adapter_weight_and_significance_default_and_must_be_in_zero_to_one() {
        assert_eq!(settings(&[]).setup().unwrap().adapter_weight, 0.5);
        let whole = settings(&["--adapter-weight", "1"]).setup().unwrap();
        assert_eq!(whole.adapter_weight, 1.0);
        assert_eq!(settings(&[]).setup().unwrap().significance, 0.05);
        let any_gain = settings(&["--significance", "1"]).setup().unwrap();
        assert_eq!(any_gain.significance, 1.0);
        for flag in ["adapter-weight", "significance"] {
            for bad in ["0", "1.5", "-0.2", "half"] {
                let arg = format!("--{flag}={bad}");
                let error = try_parse(["train", arg.as_str()]).unwrap_err().to_string();
                assert!(error.contains(flag), "{bad}: {error}");
            }
        }
    }
}
