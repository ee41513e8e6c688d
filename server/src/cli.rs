//! The command line: `index`, `search` and `status` over the engine; `serve` (LSP) and `mcp`
//! hand over to their servers, `train` to the trainer (which `fine-tune` runs as a child).
//!
//! Results go to stdout (one JSON object per answer with `--json`); progress and logs go to
//! stderr: indicatif bars on a terminal, plain lines otherwise.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, CommandFactory, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use std::sync::Arc;

use crate::embed::{DeviceSpec, Instructions};
use crate::engine::{
    Engine, EngineError, EngineSettings, OneShot, RootIndex, RootReport, UpdatePart,
};
use crate::index::{IndexConfig, IndexEvent};
use crate::model::{self, DEFAULT_MODEL, ModelOptions};
use crate::search::{
    DEFAULT_RRF_K, DEFAULT_TOP_K, Priors, Ranking, SearchFilter, SearchHit, SearchMode, StackParams,
};
use crate::symbols::Language;
use crate::workspace::DEFAULT_MAX_FILE_SIZE;

/// Semantic code search for your workspace.
#[derive(Debug, Parser)]
#[command(name = "coder-lsp", version, long_version = long_version(), about, long_about = None)]
pub struct Cli {
    /// With no command, coder-lsp serves the Language Server Protocol on stdin/stdout.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--version`: the version, then what this build brings: the default model and the optional
/// parts compiled in. (clap builds it for every run, so it only reads constants.)
fn long_version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let features: Vec<&str> = [
            ("lsp", cfg!(feature = "lsp")),
            ("mcp", cfg!(feature = "mcp")),
            ("hub", cfg!(feature = "hub")),
            ("cuda", cfg!(feature = "cuda")),
            ("metal", cfg!(feature = "metal")),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
        let languages: Vec<&str> = Language::ALL
            .into_iter()
            .filter(|l| l.has_grammar() && *l != Language::Tsx)
            .map(Language::name)
            .collect();
        let (opt_in, without): (Vec<Language>, Vec<Language>) = Language::without_grammar()
            .into_iter()
            .filter(|l| *l != Language::Tsx)
            .partition(|l| l.opt_in());
        let names = |languages: Vec<Language>| -> Vec<&str> {
            languages.into_iter().map(Language::name).collect()
        };
        let (opt_in, without) = (names(opt_in), names(without));
        format!(
            "{}\ndefault model: {DEFAULT_MODEL}\nfeatures: {}\nsymbols in: {}{}{}",
            env!("CARGO_PKG_VERSION"),
            if features.is_empty() {
                "none".to_string()
            } else {
                features.join(", ")
            },
            if languages.is_empty() {
                "none".to_string()
            } else {
                languages.join(", ")
            },
            if without.is_empty() {
                String::new()
            } else {
                format!("\nbuilt without (read as text): {}", without.join(", "))
            },
            if opt_in.is_empty() {
                String::new()
            } else {
                format!(
                    "\nread as text unless built with their opt-in feature: {}",
                    opt_in
                        .iter()
                        .map(|name| format!("{name} (lang-{name})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        )
    })
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Language Server Protocol on stdin/stdout (what editors start).
    Serve,
    /// Build or update the index of a workspace.
    Index {
        #[command(flatten)]
        workspace: WorkspaceArgs,
        /// Print one JSON object with what the run did.
        #[arg(long)]
        json: bool,
    },
    /// Search the workspace in plain language (updates the index first).
    Search {
        #[command(flatten)]
        workspace: WorkspaceArgs,
        /// How many results to show.
        #[arg(long, short = 'k', default_value_t = DEFAULT_TOP_K)]
        top_k: usize,
        /// Print one JSON object per query.
        #[arg(long)]
        json: bool,
        /// Read queries from standard input, one per line, answering each as it arrives.
        #[arg(long, conflicts_with = "query")]
        stdin: bool,
        /// Answer from the index as it is, without updating it first.
        #[arg(long)]
        no_update: bool,
        #[command(flatten)]
        ranking: RankingArgs,
        /// What you are looking for, e.g. "where are retries scheduled after a timeout".
        #[arg(required_unless_present = "stdin")]
        query: Option<String>,
    },
    /// Serve the Model Context Protocol on stdin/stdout, for AI agents (search, similar code,
    /// context, index status).
    Mcp(McpArgs),
    /// Show what the index holds.
    Status {
        #[command(flatten)]
        workspace: WorkspaceArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Fine-tune the model on the workspace (runs `coder-lsp train` as a child process); an
    /// adapter that beats the current model on held-out pairs is installed beside the index and
    /// used from then on.
    FineTune {
        #[command(flatten)]
        workspace: WorkspaceArgs,
        #[command(flatten)]
        settings: crate::finetune::FineTuneSettings,
        /// Print the outcome as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// The trainer (run by fine-tune as a child process; for experts): mine training pairs from a
    /// repository, train an adapter on them, or both in one run.
    #[command(subcommand)]
    Train(crate::train::cli::Command),
    /// The workspace's model: which one serves it, or go back to the base model.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Measure the embedder, the matmul peak and vector-index recall, or build a synthetic index at
    /// scale (`bench/run` and `bench/scale.py` drive these).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print a completion script for a shell, e.g. `coder-lsp completions bash >
    /// ~/.local/share/bash-completion/completions/coder-lsp`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// `coder-lsp model …`.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Stop using the workspace's fine-tuned adapter (it is kept in `adapter-previous/` in the
    /// index directory); the base model serves the workspace again.
    Reset {
        #[command(flatten)]
        workspace: WorkspaceArgs,
    },
}

/// The measurements of `coder-lsp bench`; each prints one JSON object.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Embedding throughput, padding waste and FLOP share on snippets from a JSON-lines file.
    Embed {
        /// One snippet per line: a JSON string, or an object with a `text` field.
        #[arg(long)]
        snippets: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
        /// Snippets per request to the model worker (indexing sends 256).
        #[arg(long, default_value_t = 256)]
        request_size: usize,
        /// Skip measuring the matmul peak (and so the FLOP share).
        #[arg(long)]
        no_matmul: bool,
        /// Also write the vectors, in the snippets' order, to this file as little-endian f32s
        /// (to compare them with another engine's).
        #[arg(long)]
        vectors: Option<PathBuf>,
    },
    /// The best f32 matmul FLOP/s candle reaches on this CPU.
    Matmul {
        /// Seconds to spend on each matrix shape.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
    },
    /// HNSW top-k recall against exact search over an index's stored vectors.
    Recall {
        /// The index directory (as given to `index --index-dir`).
        #[arg(long)]
        index_dir: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
        /// How many stored vectors to use as queries.
        #[arg(long, default_value_t = 1000)]
        queries: usize,
        #[arg(long, short = 'k', default_value_t = 10)]
        top_k: usize,
    },
    /// Write a synthetic workspace of code-like files and build its index with vectors made
    /// from each chunk's hash instead of the model (minutes for 200k chunks); `bench/scale.py`
    /// then measures `index`, `search` and the language server on it.
    Scale {
        /// A new or empty directory: the workspace goes to DIR/workspace, its index under
        /// DIR/indexes (the language server's `indexDir`).
        #[arg(long)]
        dir: PathBuf,
        /// How many files to write.
        #[arg(long, default_value_t = 20_000, value_parser = parse_count)]
        files: usize,
        /// Functions per file (one chunk each).
        #[arg(long, default_value_t = 10, value_parser = parse_count)]
        functions_per_file: usize,
        /// The same seed writes the same workspace.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The model whose tokenizer cuts the files and whose fingerprint and dimensions the
        /// generated vectors take (it embeds nothing).
        #[command(flatten)]
        model: ModelArgs,
    },
}

/// A count of at least 1.
fn parse_count(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{value}` is not a whole number of at least 1")),
    }
}

/// How `search` ranks results.
#[derive(Debug, Args)]
pub struct RankingArgs {
    /// dense (embeddings), lexical (BM25 over code-aware words) or hybrid (both fused).
    #[arg(long, default_value = "hybrid", value_parser = parse_mode)]
    pub mode: SearchMode,
    /// The k of reciprocal-rank fusion, 1/(k + rank); smaller lets first places count more.
    #[arg(long, default_value_t = DEFAULT_RRF_K, value_parser = parse_positive)]
    pub rrf_k: f32,
    /// How much a dense rank counts in hybrid mode against a lexical rank (which counts 1), for
    /// every query. By default it is chosen per query: 0.5 when the best lexical hit's name shares
    /// a word with the query, else 2.5.
    #[arg(long, value_parser = parse_positive)]
    pub dense_weight: Option<f32>,
    /// Change a path prior of hybrid ranking, as CLASS=FACTOR between 0 and 1 (repeatable):
    /// `--prior test=1` ranks tests like other code. Classes: test, bench, docs, changelog,
    /// example, vendored, generated, compat, declarations, reexport, build, constant, type, callable, class,
    /// abstract.
    #[arg(long = "prior", value_name = "CLASS=FACTOR")]
    pub priors: Vec<String>,
    /// Every parameter of the hybrid ranking stack as JSON (inline or `@FILE`), for tuning; see
    /// docs/ranking.md. `--prior` applies on top.
    #[arg(long, value_name = "JSON")]
    pub ranking_params: Option<String>,
    /// Show how each result's score was made (dense and lexical ranks, priors, boosts).
    #[arg(long)]
    pub explain: bool,
}

impl RankingArgs {
    fn ranking(&self) -> Result<Ranking> {
        let mut stack = match &self.ranking_params {
            None => StackParams::default(),
            Some(spec) => {
                let text = match spec.strip_prefix('@') {
                    Some(file) => std::fs::read_to_string(file)
                        .with_context(|| format!("reading --ranking-params file {file}"))?,
                    None => spec.clone(),
                };
                serde_json::from_str(&text).context("--ranking-params is not valid")?
            }
        };
        apply_priors(&mut stack.priors, &self.priors)?;
        stack
            .validate()
            .map_err(|e| anyhow::anyhow!("--ranking-params: {e}"))?;
        Ok(Ranking {
            mode: self.mode,
            rrf_k: self.rrf_k,
            dense_weight: self.dense_weight,
            stack,
            explain: self.explain,
        })
    }
}

/// The `--prior CLASS=FACTOR` flags over the default priors.
#[cfg(feature = "mcp")]
fn parse_priors(args: &[String]) -> Result<Priors> {
    let mut priors = Priors::default();
    apply_priors(&mut priors, args)?;
    Ok(priors)
}

fn apply_priors(priors: &mut Priors, args: &[String]) -> Result<()> {
    for arg in args {
        priors
            .set_from_arg(arg)
            .map_err(|e| anyhow::anyhow!("--prior: {e}"))?;
    }
    Ok(())
}

fn parse_mode(s: &str) -> Result<SearchMode, String> {
    s.parse()
}

fn parse_positive(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(k) if k.is_finite() && k > 0.0 => Ok(k),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

/// Which files of a workspace are indexed (every command that walks one takes these).
#[derive(Debug, Args)]
pub struct WalkArgs {
    /// Extra paths or globs to leave out (like .gitignore lines); repeatable.
    #[arg(long = "exclude", value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Files larger than this many bytes are skipped.
    #[arg(long, default_value_t = DEFAULT_MAX_FILE_SIZE)]
    pub max_file_size: u64,
}

/// Options shared by every command that works on a workspace.
#[derive(Debug, Args)]
pub struct WorkspaceArgs {
    /// The workspace root.
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// Where the index is kept (default: a directory per workspace in the user cache).
    #[arg(long, env = "CODER_LSP_INDEX_DIR")]
    pub index_dir: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub walk: WalkArgs,
}

/// Options of `coder-lsp mcp`. The index is found the way the language server finds it, so both
/// share one index per workspace.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// The workspace root.
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// Base directory for indexes, like the language server's `indexDir` option: the root's
    /// index is a subdirectory named by a hash of its path (default: the user cache).
    #[arg(long)]
    pub index_dir: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub walk: WalkArgs,
    /// Change a path prior of the ranking, as CLASS=FACTOR (repeatable; see `search --help`).
    #[arg(long = "prior", value_name = "CLASS=FACTOR")]
    pub priors: Vec<String>,
}

impl ModelArgs {
    fn model_options(&self) -> Result<ModelOptions> {
        let instructions =
            Instructions::from_args(&self.instructions).map_err(anyhow::Error::msg)?;
        Ok(ModelOptions {
            device: self.device,
            instructions,
            adapter: self.adapter.clone(),
        })
    }
}

/// Which model embeds, where it runs and how queries are phrased for it (every command that
/// loads a model takes these).
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// A model directory, Hugging Face model id, or `bge-code-v1` (CodeR, for GPUs).
    #[arg(long = "model", env = "CODER_LSP_MODEL", default_value = DEFAULT_MODEL)]
    pub spec: String,
    /// Where the model runs: cpu, cuda, cuda:N or metal (GPUs need a build with that feature).
    #[arg(long, env = "CODER_LSP_DEVICE", default_value = "cpu")]
    pub device: DeviceSpec,
    /// A query instruction for instruction-tuned models, as TASK=TEXT with TASK one of
    /// search, similar, docs; repeatable.
    #[arg(long = "instruction", value_name = "TASK=TEXT")]
    pub instructions: Vec<String>,
    /// A LoRA adapter directory trained for this model (`coder-lsp train`), merged in at load
    /// time.
    #[arg(long, env = "CODER_LSP_ADAPTER", value_name = "DIR")]
    pub adapter: Option<PathBuf>,
}

impl WorkspaceArgs {
    /// The engine of a one-shot run on this workspace (ranking with `priors`) and the
    /// workspace's index. The root is checked before the model options are read, so a missing
    /// root is the error reported first.
    fn engine(&self, priors: Priors) -> Result<(Arc<Engine>, IndexConfig)> {
        let (mut settings, config) = self.index_config(priors)?;
        settings.model_options = self.model.model_options()?;
        Ok((Engine::once(settings), config))
    }

    /// The engine's settings from these flags, but for the model options, and the workspace's
    /// index.
    fn index_config(&self, priors: Priors) -> Result<(EngineSettings, IndexConfig)> {
        let settings = EngineSettings {
            model: self.model.spec.clone(),
            model_options: ModelOptions::default(),
            // `--index-dir` names the index itself, given to `root_config`.
            index_dir: None,
            exclude: self.walk.exclude.clone(),
            max_file_size: self.walk.max_file_size,
            priors,
        };
        let config = settings.root_config(&self.root, self.index_dir.as_deref())?;
        Ok((settings, config))
    }
}

/// Sends logs to stderr (stdout belongs to results and protocols), at the level `CODER_LSP_LOG`
/// sets (`warn` by default); coloured on a terminal. Every binary of the workspace starts with it.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CODER_LSP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// An error and its causes on one line, outermost first, as `{:#}` writes them, except that a
/// cause whose text its outer message already quotes (`"{path}: {source}"` messages of errors
/// that also name that `source` as their cause) is not written a second time.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        None | Some(Command::Serve) => serve(),
        Some(command) => run_command(command),
    }
}

#[cfg(feature = "lsp")]
fn serve() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(crate::lsp::serve_stdio());
    // Background tasks may still wait on the model thread; do not wait for them on exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    Ok(())
}

#[cfg(not(feature = "lsp"))]
fn serve() -> Result<()> {
    bail!("this build of coder-lsp has no language server (feature `lsp`)")
}

#[cfg(feature = "mcp")]
fn run_mcp(args: McpArgs) -> Result<()> {
    let root = crate::workspace::canonical_root(&args.root)?;
    let model_options = args.model.model_options()?;
    let settings = crate::engine::EngineSettings {
        model: args.model.spec,
        model_options,
        index_dir: args.index_dir,
        exclude: args.walk.exclude,
        max_file_size: args.walk.max_file_size,
        priors: parse_priors(&args.priors)?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(crate::mcp::serve_stdio(root, settings));
    // Background indexing may still wait on the model thread; do not wait for it on exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    result
}

#[cfg(not(feature = "mcp"))]
fn run_mcp(_: McpArgs) -> Result<()> {
    bail!("this build of coder-lsp has no MCP server (feature `mcp`)")
}

fn run_command(command: Command) -> Result<()> {
    match command {
        Command::Serve => serve(),
        Command::Index { workspace, json } => run_index(&workspace, json),
        Command::Search {
            workspace,
            top_k,
            json,
            stdin,
            no_update,
            ranking,
            query,
        } => run_search(
            &workspace,
            SearchOptions {
                top_k,
                json,
                stdin,
                no_update,
                ranking: ranking.ranking()?,
            },
            query,
        ),
        Command::Status { workspace, json } => run_status(&workspace, json),
        Command::Mcp(args) => run_mcp(args),
        Command::FineTune {
            workspace,
            settings,
            json,
        } => run_fine_tune(&workspace, settings, json),
        Command::Train(command) => crate::train::cli::run(command),
        Command::Model(ModelCommand::Reset { workspace }) => run_model_reset(&workspace),
        Command::Bench(command) => run_bench(command),
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "coder-lsp", &mut out);
            out.flush()?;
            Ok(())
        }
    }
}

fn run_bench(command: BenchCommand) -> Result<()> {
    use crate::bench;
    let value = match command {
        BenchCommand::Embed {
            snippets,
            model,
            request_size,
            no_matmul,
            vectors,
        } => {
            let snippets = bench::read_snippets(&snippets)?;
            let matmul = if no_matmul {
                None
            } else {
                eprintln!("bench: measuring the matmul peak");
                Some(bench::matmul_peak(std::time::Duration::from_secs(2))?)
            };
            eprintln!("bench: embedding {} snippets", snippets.len());
            let options = model.model_options()?;
            serde_json::to_value(bench::embed_throughput(
                &model.spec,
                &options,
                &snippets,
                request_size,
                matmul,
                vectors.as_deref(),
            )?)?
        }
        BenchCommand::Matmul { seconds } => {
            if !(seconds.is_finite() && seconds > 0.0) {
                bail!("--seconds must be a positive number");
            }
            serde_json::to_value(bench::matmul_peak(std::time::Duration::from_secs_f64(
                seconds,
            ))?)?
        }
        BenchCommand::Recall {
            index_dir,
            model,
            queries,
            top_k,
        } => {
            let store = bench::store_path(&index_dir);
            if !store.is_file() {
                bail!(
                    "no index in {} (run `coder-lsp index` first)",
                    index_dir.display()
                );
            }
            let resolved = model::resolve(&model.spec)
                .with_context(|| format!("resolving model {}", model.spec))?;
            serde_json::to_value(bench::hnsw_recall(
                &store,
                &resolved.fingerprint,
                queries,
                top_k,
            )?)?
        }
        BenchCommand::Scale {
            dir,
            files,
            functions_per_file,
            seed,
            model,
        } => {
            let options = model.model_options()?;
            let loaded = model::load(&model.spec, &options)
                .with_context(|| format!("loading model {}", model.spec))?;
            eprintln!(
                "bench: writing {files} files of {functions_per_file} functions to {} and indexing them with generated vectors",
                dir.display()
            );
            let size = bench::scale::ScaleSize {
                files,
                functions_per_file,
                seed,
            };
            serde_json::to_value(bench::scale::build(&dir, &size, &loaded)?)?
        }
    };
    println!("{value}");
    Ok(())
}

/// Drives the engine synchronously: a one-shot command waits for each of its steps.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run_index(args: &WorkspaceArgs, json: bool) -> Result<()> {
    let (engine, config) = args.engine(Priors::default())?;
    let model = engine.load_served(&config.dir)?;
    let model_name = model.resolved.name.clone();
    let root = engine.open_once(config, OneShot::Update, Some(model))?;
    report_notes(&root.notes());
    let runtime = runtime()?;
    let stats = with_progress(|progress| runtime.block_on(engine.index_root(&root, progress)))?;
    // Not `status()`: its counts read every chunk again, seconds on a large index.
    let index_dir = root.index_dir();
    if json {
        let mut value = serde_json::to_value(&stats)?;
        value["index_dir"] = json!(index_dir);
        value["model"] = json!(model_name);
        println!("{value}");
    } else {
        println!(
            "indexed {} files, {} chunks in {:.1}s: {} changed, {} removed, {} skipped; {} embedded, {} reused from cache{}",
            stats.files,
            stats.chunks,
            stats.seconds,
            stats.changed,
            stats.removed,
            stats.skipped,
            stats.embedded,
            stats.reused,
            if stats.pending > 0 {
                format!(", {} still pending", stats.pending)
            } else {
                String::new()
            }
        );
        println!("index: {}", index_dir.display());
    }
    Ok(())
}

/// The flags of `search` other than the workspace and the query.
struct SearchOptions {
    top_k: usize,
    json: bool,
    stdin: bool,
    no_update: bool,
    ranking: Ranking,
}

fn run_search(args: &WorkspaceArgs, options: SearchOptions, query: Option<String>) -> Result<()> {
    let SearchOptions {
        top_k,
        json,
        stdin,
        no_update,
        ranking,
    } = options;
    // One query (not `--stdin`) must say something before any indexing starts.
    let query = match (stdin, query) {
        (true, _) => None,
        (false, Some(query)) if !query.trim().is_empty() => Some(query),
        (false, _) => bail!(
            "the query is empty: say what you are looking for, e.g. `coder-lsp search \"parse the config file\"`"
        ),
    };
    let (engine, config) = args.engine(ranking.stack.priors.clone())?;
    // Lexical ranking needs no model: without one, answer from the index as it is.
    let model = match engine.load_served(&config.dir) {
        Ok(model) => Some(model),
        Err(e) if ranking.mode == SearchMode::Lexical => {
            eprintln!(
                "note: {}\nnote: answering lexically from the index as it is (it cannot be updated without the model)",
                error_line(&anyhow::Error::from(e))
            );
            None
        }
        Err(e) => {
            return Err(anyhow::Error::from(e).context(
                "no model to rank with (`--mode lexical` answers from the existing index without one)",
            ));
        }
    };
    let has_model = model.is_some();
    let run = if no_update {
        OneShot::Read
    } else {
        OneShot::Search
    };
    let root = engine.open_once(config, run, model)?;
    report_notes(&root.notes());
    let runtime = runtime()?;
    // Chunks still without a vector when the one query is answered (a cold index): the model
    // embeds them after the answer, so the first answer does not wait minutes.
    let mut partial: Option<Partial> = None;
    if has_model && runtime.block_on(engine.is_writer(&root))? {
        if stdin {
            with_progress(|progress| runtime.block_on(engine.index_root(&root, progress)))?;
        } else {
            let synced = with_progress(|progress| {
                runtime.block_on(engine.update_root(&root, UpdatePart::Files, progress))
            })?;
            if synced.pending > EMBED_BEFORE_ANSWER {
                partial = Some(Partial {
                    pending: synced.pending,
                    chunks: synced.chunks,
                });
            } else {
                embed_rest(&runtime, &engine, &root)?;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let mut answer = |query: &str| -> Result<()> {
        let hits: Vec<SearchHit> = runtime
            .block_on(engine.search(query, top_k, SearchFilter::default(), ranking.clone()))?
            .into_iter()
            .map(|rooted| rooted.hit)
            .collect();
        print_hits(&mut out, query, &hits, json, partial.as_ref())?;
        out.flush()?;
        Ok(())
    };
    if let (Some(&Partial { pending, chunks }), Some(query)) = (partial.as_ref(), query.as_deref())
    {
        answer(query)?;
        eprintln!(
            "note: a partial answer: {pending} of {chunks} chunks have no vector yet and were ranked by their words only.\n\
             note: embedding them now, so later searches rank every chunk by meaning (Ctrl-C stops; what is embedded is kept)"
        );
        let started = std::time::Instant::now();
        let embedded = embed_rest(&runtime, &engine, &root)?;
        eprintln!(
            "note: embedded {embedded} chunks in {:.0}s; the index is complete",
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    if stdin {
        for line in std::io::stdin().lock().lines() {
            let line = line.context("reading a query from standard input")?;
            if line.trim().is_empty() {
                continue;
            }
            answer(&line)?;
        }
        Ok(())
    } else {
        answer(query.as_deref().unwrap_or_default())
    }
}

/// Chunks the model embeds in about five seconds on a 2-core CPU: a search waits for this many
/// pending chunks, and answers first (flagged partial) when there are more.
const EMBED_BEFORE_ANSWER: u64 = 256;

/// How much of the index a partial answer could not rank by meaning.
struct Partial {
    pending: u64,
    chunks: u64,
}

fn print_hits(
    out: &mut impl Write,
    query: &str,
    hits: &[SearchHit],
    json: bool,
    partial: Option<&Partial>,
) -> Result<()> {
    if json {
        let mut value = json!({ "query": query, "results": hits });
        if let Some(p) = partial {
            value["partial"] = json!({ "pending": p.pending, "chunks": p.chunks });
        }
        writeln!(out, "{value}")?;
        return Ok(());
    }
    if let Some(p) = partial {
        writeln!(
            out,
            "(partial: {} of {} chunks not embedded yet, ranked by their words)",
            p.pending, p.chunks
        )?;
    }
    if hits.is_empty() {
        writeln!(out, "no results for {query:?}")?;
    }
    for hit in hits {
        let container = hit
            .container
            .as_deref()
            .map(|c| format!("  (in {c})"))
            .unwrap_or_default();
        writeln!(
            out,
            "{:.3}  {}:{}-{}  {} {}{}",
            hit.score, hit.path, hit.start_line, hit.end_line, hit.kind, hit.name, container
        )?;
        for part in hit.explain.iter().flatten() {
            let stage = serde_json::to_value(part.stage)?;
            let stage = stage.as_str().unwrap_or_default();
            writeln!(
                out,
                "       {:+.3}  {stage:<14} {}",
                part.value, part.detail
            )?;
        }
    }
    Ok(())
}

fn run_status(args: &WorkspaceArgs, json: bool) -> Result<()> {
    let (engine, config) = args.engine(Priors::default())?;
    let RootReport {
        status,
        model: resolved,
        adapter,
    } = engine.inspect_once(config)?;
    if json {
        let mut value = serde_json::to_value(&status)?;
        value["model"] = json!(resolved.name);
        value["model_dir"] = json!(resolved.dir);
        value["adapter"] = json!(adapter);
        println!("{value}");
    } else {
        println!("root:        {}", status.root.display());
        println!("index dir:   {}", status.index_dir.display());
        println!("files:       {}", status.files);
        println!("chunks:      {}", status.chunks);
        println!(
            "embedded:    {} chunks ({} vectors), {} pending",
            status.embedded_chunks, status.vectors, status.pending
        );
        println!(
            "model:       {} ({})",
            resolved.name,
            resolved.dir.display()
        );
        if let Some(adapter) = &adapter {
            println!("adapter:     {}", adapter.display());
        }
        println!("fingerprint: {}", status.fingerprint);
        println!(
            "size:        {:.1} MiB store, {:.1} MiB vectors",
            status.store_bytes as f64 / 1048576.0,
            status.vector_bytes as f64 / 1048576.0
        );
    }
    report_notes(&status.notes);
    Ok(())
}

fn run_fine_tune(
    args: &WorkspaceArgs,
    settings: crate::finetune::FineTuneSettings,
    json: bool,
) -> Result<()> {
    use crate::finetune;
    let (engine, config) = args.engine(Priors::default())?;
    // The command line has no fine-tune defaults of its own: the flags are the settings.
    let run = engine.start_fine_tune(
        &config.root,
        &config.dir,
        &finetune::FineTuneSettings::default(),
        &settings,
    )?;
    let (bar, terminal) = stderr_bar("fine-tune [{bar:30}] {pos:>3}% {msg}");
    bar.set_length(100);
    let outcome = runtime()?.block_on(run.run(
        |progress| {
            if terminal {
                bar.set_position(u64::from(progress.percentage));
                bar.set_message(progress.message);
            } else {
                eprintln!(
                    "fine-tune {:>3}%: {}",
                    progress.percentage, progress.message
                );
            }
        },
        // Ctrl-C interrupts the trainer with this process (one process group); the adapter is
        // installed only after a finished run, so the model in use stays as it was.
        std::future::pending::<()>(),
    ));
    bar.finish_and_clear();
    let outcome = outcome?;
    if json {
        println!("{}", serde_json::to_value(&outcome)?);
    } else {
        println!("{}", outcome.message);
        if let Some(dir) = &outcome.adapter {
            println!(
                "adapter installed in {}; `coder-lsp index` re-embeds the workspace with it (a running language server switches on its next reindex)",
                dir.display()
            );
        }
    }
    Ok(())
}

fn run_model_reset(args: &WorkspaceArgs) -> Result<()> {
    // Only the workspace and its index matter here, not the model options.
    let (settings, config) = args.index_config(Priors::default())?;
    if Engine::once(settings).retire_adapter(&config.dir)? {
        println!(
            "the workspace's adapter was moved to {}; the base model serves {} again (its vectors are kept, so nothing is re-embedded that was embedded with it before)",
            config
                .dir
                .join(crate::finetune::PREVIOUS_ADAPTER_DIR)
                .display(),
            config.root.display()
        );
    } else {
        println!(
            "{} has no fine-tuned adapter; it uses the base model",
            config.root.display()
        );
    }
    Ok(())
}

fn report_notes(notes: &[String]) {
    for note in notes {
        eprintln!("note: {note}");
    }
}

/// A progress bar drawn with `template` on stderr when it is a terminal (else hidden), and
/// whether it is one.
fn stderr_bar(template: &str) -> (ProgressBar, bool) {
    let terminal = std::io::stderr().is_terminal();
    let bar = ProgressBar::hidden();
    if terminal {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
    }
    (bar, terminal)
}

/// The second half of an update after its files ([`UpdatePart::Files`]), with a progress bar:
/// embeds the chunk texts still without a vector. Returns how many were embedded.
fn embed_rest(
    runtime: &tokio::runtime::Runtime,
    engine: &Arc<Engine>,
    root: &Arc<RootIndex>,
) -> Result<usize> {
    let stats = with_progress(|progress| {
        runtime.block_on(engine.update_root(root, UpdatePart::Vectors, progress))
    })?;
    Ok(stats.embedded)
}

/// Runs an indexing step with a progress bar on a terminal, or a line every few seconds in logs.
fn with_progress<T>(
    step: impl FnOnce(Box<dyn FnMut(IndexEvent) + Send>) -> Result<T, EngineError>,
) -> Result<T> {
    let (bar, terminal) = stderr_bar("{prefix:>9} [{bar:30}] {pos}/{len} {msg}");
    let shown = bar.clone();
    let mut last_plain = std::time::Instant::now();
    let report = move |event: IndexEvent| match event {
        IndexEvent::Scanned { files } => {
            if !terminal {
                eprintln!("scanning: {files} files");
            }
        }
        IndexEvent::Parsing { done, total } | IndexEvent::Embedding { done, total } => {
            let phase = if matches!(event, IndexEvent::Parsing { .. }) {
                "parsing"
            } else {
                "embedding"
            };
            if terminal {
                shown.set_prefix(phase);
                shown.set_length(total as u64);
                shown.set_position(done as u64);
            } else if done == total || last_plain.elapsed().as_secs() >= 5 {
                // Plain output (logs, CI) gets a line every few seconds, not a flood.
                if total > 0 {
                    eprintln!("{phase}: {done}/{total}");
                }
                last_plain = std::time::Instant::now();
            }
        }
        IndexEvent::Finished => shown.finish_and_clear(),
    };
    let result = step(Box::new(report));
    bar.finish_and_clear();
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::IndexError;

    #[test]
    fn a_quoted_cause_is_written_once() {
        let io = || std::io::Error::from(std::io::ErrorKind::AlreadyExists);
        let text = io().to_string();
        let quoted = anyhow::Error::from(IndexError::Io {
            path: PathBuf::from("/tmp/index"),
            source: io(),
        });
        assert_eq!(error_line(&quoted), format!("/tmp/index: {text}"));
        // A context over it adds its own words in front, still with the cause once.
        let wrapped = quoted.context("opening the index");
        assert_eq!(
            error_line(&wrapped),
            format!("opening the index: /tmp/index: {text}")
        );
        // A cause the message does not quote is written after it, as `{:#}` would.
        let plain = anyhow::Error::from(io()).context("reading settings");
        assert_eq!(error_line(&plain), format!("reading settings: {text}"));
        assert_eq!(error_line(&plain), format!("{plain:#}"));
    }
}
