//! The engine as a long-running service: several workspace roots, one model, unsaved buffers.
//!
//! The language server and MCP hold one `Engine`; the command line drives one for a single run
//! ([`Engine::open_once`]: the root opened with the model that serves it, its adapter merged in,
//! and the index taken as the run needs it). Every method that indexes or searches is async
//! and runs its blocking work (SQLite, parsing, waiting on the model thread) with
//! `spawn_blocking`, so the tokio runtime never computes; the one-shot openers are blocking and
//! run off any runtime. Each root's index sits behind a mutex that indexing takes only for
//! short steps, so queries are answered while it runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use crate::context::{PackedContext, pack_context};
use crate::embed::lora::Adapter;
use crate::embed::{EmbedError, QueryTask};
use crate::finetune;
use crate::index::{
    Access, Index, IndexAccess, IndexConfig, IndexError, IndexEvent, IndexStatus, ModelKey,
    UpdateStats, chunker_for, embed_pending, embed_pending_for, embed_pending_in_file,
    stage_chunks, sync_files, update_shared,
};
use crate::model::{self, LoadedModel, ModelError, ModelOptions, ResolvedModel};
use crate::search::{Priors, Ranking, SearchFilter, SearchHit, SearchMode, search_task, similar};
use crate::symbols::Language;
use crate::workspace::{self, WalkOptions};

/// Settings the engine runs with (validated by the front end).
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Model directory, hub id or alias.
    pub model: String,
    /// Device and query instructions for the model.
    pub model_options: ModelOptions,
    /// Base directory for indexes (each root gets a subdirectory); `None` = the user cache.
    pub index_dir: Option<PathBuf>,
    pub exclude: Vec<String>,
    pub max_file_size: u64,
    /// Path priors of hybrid ranking (the defaults unless the user changed some).
    pub priors: Priors,
}

impl EngineSettings {
    /// The index of the workspace folder at `path`: in `index_dir` when one is given (the
    /// command line's `--index-dir`), else a directory of its own under the configured base
    /// directory, else in the user cache. The walk leaves out the index's own directory when it
    /// sits inside the folder.
    pub fn root_config(
        &self,
        path: &Path,
        index_dir: Option<&Path>,
    ) -> Result<IndexConfig, EngineError> {
        let root = workspace::canonical_root(path).map_err(IndexError::from)?;
        let dir = match (index_dir, &self.index_dir) {
            (Some(dir), _) => dir.to_path_buf(),
            (None, Some(base)) => base.join(IndexConfig::dir_name(&root)),
            (None, None) => IndexConfig::default_dir(&root),
        };
        let skip_dir = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::canonicalize(&dir))
            .ok();
        Ok(IndexConfig {
            root,
            dir,
            walk: WalkOptions {
                max_file_size: self.max_file_size,
                exclude: self.exclude.clone(),
                skip_dir,
            },
        })
    }
}

/// Errors of engine operations, as text a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("{0} is not inside any workspace folder")]
    OutsideWorkspace(PathBuf),
    #[error("no model is loaded: {0}")]
    NoModel(String),
    /// The configured model could not be found (asked only when a workspace has an adapter).
    #[error("resolving model {spec}")]
    ResolveModel {
        spec: String,
        #[source]
        source: ModelError,
    },
    /// The model that serves a root could not be loaded for a one-shot run.
    #[error("loading model {spec}")]
    LoadModel {
        spec: String,
        #[source]
        source: ModelError,
    },
    /// Fine-tuning asked of an engine that serves an adapter chosen explicitly: the one
    /// refusal every front end shows ([`Engine::start_fine_tune`]).
    #[error(
        "fine-tuning trains an adapter for the base model, but the adapter {} was chosen explicitly; leave out --adapter (CODER_LSP_ADAPTER) to fine-tune per workspace",
        .0.display()
    )]
    ExplicitAdapter(PathBuf),
    /// Fine-tuning or a model reset asked while this engine runs a fine-tuning
    /// ([`Engine::start_fine_tune`], [`Engine::retire_adapter`]).
    #[error("a fine-tuning run is already in progress; wait for it or cancel it")]
    FineTuneRunning,
    /// Another process (a language server, MCP, `coder-lsp fine-tune`) is fine-tuning the
    /// workspace whose index is in this directory ([`finetune::RunLock`]).
    #[error(
        "another coder-lsp process is fine-tuning the workspace whose index is in {}; wait for it to finish or cancel it there",
        .0.display()
    )]
    FineTuneElsewhere(PathBuf),
    /// Fine-tuning asked of a served root whose index is not complete yet
    /// ([`Engine::start_fine_tune_root`]).
    #[error(
        "{} has no complete index yet ({files} files, {pending} chunks waiting for their vectors); fine-tuning judges the adapter by searching a copy of the index, so start it once indexing has finished",
        .root.display()
    )]
    NotIndexed {
        root: PathBuf,
        files: u64,
        pending: u64,
    },
    #[error(transparent)]
    FineTune(#[from] finetune::FineTuneError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The state of the model.
#[derive(Debug, Clone)]
enum ModelState {
    /// A one-shot engine ([`Engine::once`]) loads no model of its own: a run loads the model
    /// that serves its root ([`Engine::load_served`]), or only resolves the configured one.
    OneShot,
    Loading,
    Ready(Arc<LoadedModel>),
    Failed(String),
}

/// One workspace root and its index.
pub struct RootIndex {
    pub root: PathBuf,
    /// Where the index lives (the fine-tuned adapter too).
    index_dir: PathBuf,
    index: Mutex<Index>,
    /// This root's own model, when it differs from the engine's: the base model with the
    /// root's fine-tuned adapter merged in, or the model that served the root before the
    /// engine's model changed, until the new one has a vector for every chunk. Changed only
    /// while holding `index`, together with the vectors the index serves, so a query never
    /// mixes two models.
    own: RwLock<Option<Arc<LoadedModel>>>,
    /// Serialises model switches of this root.
    switching: tokio::sync::Mutex<()>,
    /// Cancels the running update of this root.
    cancel: AtomicBool,
    /// Serialises updates of this root (a full walk and single-file syncs).
    updating: tokio::sync::Mutex<()>,
}

impl RootIndex {
    fn own_model(&self) -> Option<Arc<LoadedModel>> {
        self.own.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Where the root's index lives.
    pub fn index_dir(&self) -> &Path {
        &self.index_dir
    }

    /// What opening the index found worth saying (another process writes it, a damaged store
    /// was moved aside).
    pub fn notes(&self) -> Vec<String> {
        self.index.with(|i| i.notes().to_vec())
    }
}

/// What a one-shot run (the command line) does with a root's index, which decides how
/// [`Engine::open_once`] takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneShot {
    /// Bring it up to date, waiting while another process writes it (`index`).
    Update,
    /// Bring it up to date unless another process writes it, then answer from it; without a
    /// model, answer from it as it is (`search`).
    Search,
    /// Answer from it as it is (`search --no-update`).
    Read,
}

impl OneShot {
    /// How the index is taken, with or without a model to update it with.
    fn access(self, has_model: bool) -> Access {
        match self {
            OneShot::Update => Access::WriteWait,
            OneShot::Search if has_model => Access::WriteOrRead,
            OneShot::Search | OneShot::Read => Access::ReadOnly,
        }
    }
}

/// Which part of an update [`Engine::update_root`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdatePart {
    /// All of it: the index follows the disk and every chunk gets its vector.
    All,
    /// The files only: changed ones cut again, removed ones dropped, nothing embedded, so a
    /// query can be answered by words before a cold index is embedded; `pending` says how many
    /// chunk texts wait for [`UpdatePart::Vectors`].
    Files,
    /// The vectors only: the chunk texts still without one are embedded (only `embedded` is
    /// counted).
    Vectors,
}

/// What a root's index holds, for the model that serves it ([`Engine::inspect_once`]).
#[derive(Debug, Clone)]
pub struct RootReport {
    pub status: IndexStatus,
    /// The model that serves the root (its fingerprint the adapted one when an adapter serves).
    pub model: ResolvedModel,
    /// The adapter merged into it: the configured one, or the workspace's fine-tuned one.
    pub adapter: Option<PathBuf>,
}

impl std::fmt::Debug for RootIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootIndex")
            .field("root", &self.root)
            .finish()
    }
}

/// A search hit with the root it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct RootedHit {
    pub root: PathBuf,
    pub hit: SearchHit,
}

impl RootedHit {
    /// Absolute path of the hit's file.
    pub fn abs_path(&self) -> PathBuf {
        self.root.join(&self.hit.path)
    }
}

/// A snapshot of the engine (the protocol layers put it on the wire in their own form and
/// casing).
#[derive(Debug, Clone, Serialize)]
pub struct EngineStatus {
    pub indexing: bool,
    pub files: u64,
    pub chunks: u64,
    pub embedded: u64,
    pub pending: u64,
    pub model: String,
    pub model_state: String,
    pub device: String,
    pub fingerprint: Option<String>,
    pub roots: Vec<RootStatus>,
    pub last_error: Option<String>,
}

/// Per-root part of [`EngineStatus`].
#[derive(Debug, Clone, Serialize)]
pub struct RootStatus {
    pub root: PathBuf,
    pub index_dir: PathBuf,
    pub files: u64,
    pub chunks: u64,
    pub embedded: u64,
    pub pending: u64,
    pub read_only: bool,
    pub notes: Vec<String>,
    /// The fingerprint of the model whose vectors serve this root.
    pub fingerprint: String,
    /// The fine-tuned adapter merged into this root's model, if any.
    pub adapter: Option<PathBuf>,
}

/// The shared engine.
pub struct Engine {
    settings: EngineSettings,
    model: RwLock<ModelState>,
    roots: RwLock<Vec<Arc<RootIndex>>>,
    /// Unsaved editor buffers by absolute path: they win over the disk while open.
    buffers: Mutex<HashMap<PathBuf, String>>,
    indexing: AtomicUsize,
    last_error: Mutex<Option<String>>,
    /// Set while a fine-tuning run of this engine is going ([`FineTuneRun`]): one at a time.
    fine_tuning: Arc<AtomicBool>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("settings", &self.settings)
            .finish()
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("a background task failed: {e}")))?
}

impl Engine {
    /// A long-running engine (the language server, MCP), whose model [`Engine::load_model`]
    /// loads.
    pub fn new(settings: EngineSettings) -> Arc<Self> {
        Self::with_state(settings, ModelState::Loading)
    }

    /// An engine for one run of the command line: it loads no model of its own, only the one
    /// that serves the run's root ([`Engine::load_served`], [`Engine::open_once`]).
    pub fn once(settings: EngineSettings) -> Arc<Self> {
        Self::with_state(settings, ModelState::OneShot)
    }

    fn with_state(settings: EngineSettings, state: ModelState) -> Arc<Self> {
        Arc::new(Self {
            settings,
            model: RwLock::new(state),
            roots: RwLock::new(Vec::new()),
            buffers: Mutex::new(HashMap::new()),
            indexing: AtomicUsize::new(0),
            last_error: Mutex::new(None),
            fine_tuning: Arc::default(),
        })
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Loads the model (resolution, weights, worker thread). On failure the engine keeps
    /// serving lexical results; the error is returned for the front end to show once.
    pub async fn load_model(self: &Arc<Self>) -> Result<(), String> {
        let spec = self.settings.model.clone();
        let options = self.settings.model_options.clone();
        let loaded = tokio::task::spawn_blocking(move || model::load(&spec, &options))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        let mut state = self.model.write().unwrap_or_else(|e| e.into_inner());
        match loaded {
            Ok(model) => {
                *state = ModelState::Ready(Arc::new(model));
                Ok(())
            }
            Err(message) => {
                *state = ModelState::Failed(message.clone());
                self.set_error(&message);
                Err(message)
            }
        }
    }

    fn model(&self) -> Option<Arc<LoadedModel>> {
        match &*self.model.read().unwrap_or_else(|e| e.into_inner()) {
            ModelState::Ready(model) => Some(Arc::clone(model)),
            _ => None,
        }
    }

    fn require_model(&self) -> Result<Arc<LoadedModel>, EngineError> {
        match &*self.model.read().unwrap_or_else(|e| e.into_inner()) {
            ModelState::Ready(model) => Ok(Arc::clone(model)),
            ModelState::OneShot => Err(EngineError::NoModel(
                "this run loaded no model for the root".into(),
            )),
            ModelState::Loading => Err(EngineError::NoModel("the model is still loading".into())),
            ModelState::Failed(why) => Err(EngineError::NoModel(why.clone())),
        }
    }

    /// The model that serves `root`: its own (fine-tuned, or the previous one while the
    /// engine's catches up), else the engine's.
    fn model_of(&self, root: &RootIndex) -> Option<Arc<LoadedModel>> {
        root.own_model().or_else(|| self.model())
    }

    /// [`Engine::model_of`], or why there is none.
    fn model_for(&self, root: &RootIndex) -> Result<Arc<LoadedModel>, EngineError> {
        root.own_model().map_or_else(|| self.require_model(), Ok)
    }

    /// The model `root` should use ([`workspace_model`]): its installed adapter merged into
    /// `base` (loaded when it is not `current` already), else `base`. Blocking (reads the
    /// adapter).
    fn wanted_model(
        &self,
        root: &RootIndex,
        base: Arc<LoadedModel>,
        current: Arc<LoadedModel>,
    ) -> Result<(Arc<LoadedModel>, bool), EngineError> {
        let wanted = workspace_model(&self.settings.model_options, &root.index_dir, || {
            Ok::<_, ModelError>(base.resolved.fingerprint.clone())
        })
        .map_err(|e| EngineError::Internal(e.to_string()))?;
        let Some(dir) = &wanted.installed else {
            return Ok((base, false));
        };
        let adapter = Adapter::read(dir).map_err(|e| EngineError::Internal(e.to_string()))?;
        let fingerprint = model::adapted_fingerprint(&base.resolved.fingerprint, &adapter)
            .map_err(|e| EngineError::NoModel(e.to_string()))?;
        if current.resolved.fingerprint == fingerprint {
            return Ok((current, true));
        }
        let loaded = model::load(&self.settings.model, &wanted.options)
            .map_err(|e| EngineError::NoModel(e.to_string()))?;
        Ok((Arc::new(loaded), true))
    }

    /// Makes `root` use the adapter installed in its index directory (or the base model when
    /// there is none, e.g. after a reset, or after the engine's model changed), if it does not
    /// already. The new model's vectors are computed in the background while the current ones
    /// keep answering queries; the switch happens once every chunk has one (`progress` sees
    /// the embedding). Returns whether the model changed.
    pub async fn follow_adapter(
        self: &Arc<Self>,
        root: &Arc<RootIndex>,
        progress: impl FnMut(IndexEvent) + Send + 'static,
    ) -> Result<bool, EngineError> {
        let _switching = root.switching.lock().await;
        let base = self.require_model()?;
        let current = self.model_for(root)?;
        let (engine, task_root, task_current) =
            (Arc::clone(self), Arc::clone(root), Arc::clone(&current));
        let (target, adapted) =
            blocking(move || engine.wanted_model(&task_root, base, task_current)).await?;
        if target.resolved.fingerprint == current.resolved.fingerprint {
            return Ok(false);
        }
        tracing::info!(
            "{}: switching to {}{} ({})",
            root.root.display(),
            target.resolved.name,
            if adapted {
                " with the folder's fine-tuned adapter"
            } else {
                ""
            },
            target.resolved.fingerprint
        );
        root.cancel.store(false, Ordering::Relaxed);
        self.indexing.fetch_add(1, Ordering::Relaxed);
        let result = self
            .switch_root_model(root, target, adapted, progress)
            .await;
        self.indexing.fetch_sub(1, Ordering::Relaxed);
        if let Err(e) = &result
            && !matches!(e, EngineError::Index(IndexError::Cancelled))
        {
            self.set_error(&e.to_string());
        }
        result.map(|()| true)
    }

    async fn switch_root_model(
        self: &Arc<Self>,
        root: &Arc<RootIndex>,
        target: Arc<LoadedModel>,
        adapted: bool,
        progress: impl FnMut(IndexEvent) + Send + 'static,
    ) -> Result<(), EngineError> {
        let (task_root, task_target) = (Arc::clone(root), Arc::clone(&target));
        let same_chunks = blocking(move || {
            let stored = task_root.index.with(|i| i.chunker_id())?;
            Ok(stored == Some(chunker_for(&task_target.handle).id()))
        })
        .await?;
        if !same_chunks {
            return self
                .switch_root_chunks(root, target, adapted, progress)
                .await;
        }
        // Most of the embedding happens while the root is still served (and updated) with its
        // current model; what changed meanwhile is caught up while updates wait.
        let catch_up = |mut progress: Box<dyn FnMut(IndexEvent) + Send>| {
            let (root, target) = (Arc::clone(root), Arc::clone(&target));
            blocking(move || {
                embed_pending_for(
                    &root.index,
                    &target.handle,
                    Some(&target.resolved.fingerprint),
                    &mut progress,
                    &root.cancel,
                )?;
                Ok(())
            })
        };
        catch_up(Box::new(progress)).await?;
        let _updating = root.updating.lock().await;
        catch_up(Box::new(|_| {})).await?;
        let root = Arc::clone(root);
        blocking(move || {
            root.index.with(|i| -> Result<(), EngineError> {
                i.switch_model(target.key())?;
                i.flush()?;
                i.record_served(&target.served())?;
                *root.own.write().unwrap_or_else(|e| e.into_inner()) = adapted.then_some(target);
                Ok(())
            })
        })
        .await
    }

    /// [`Engine::switch_root_model`] to a model that cuts files into other chunks (another
    /// tokenizer or token limit): its chunks are cut and embedded beside the served ones
    /// ([`stage_chunks`]), then installed at once; files changed meanwhile are then updated
    /// with the new model.
    async fn switch_root_chunks(
        self: &Arc<Self>,
        root: &Arc<RootIndex>,
        target: Arc<LoadedModel>,
        adapted: bool,
        progress: impl FnMut(IndexEvent) + Send + 'static,
    ) -> Result<(), EngineError> {
        let (task_root, task_target) = (Arc::clone(root), Arc::clone(&target));
        let mut progress = progress;
        let staged = blocking(move || {
            Ok(stage_chunks(
                &task_root.index,
                &chunker_for(&task_target.handle),
                &task_target.handle,
                &task_target.resolved.fingerprint,
                &mut progress,
                &task_root.cancel,
            )?)
        })
        .await?;
        let updating = root.updating.lock().await;
        let (task_root, task_target) = (Arc::clone(root), Arc::clone(&target));
        let result = blocking(move || {
            let started = std::time::Instant::now();
            let adopted = task_root.index.with(|i| -> Result<usize, EngineError> {
                let adopted = i.adopt_staged(task_target.key(), staged)?;
                *task_root.own.write().unwrap_or_else(|e| e.into_inner()) =
                    adapted.then(|| Arc::clone(&task_target));
                Ok(adopted)
            })?;
            // The time queries waited: the store's chunks replaced and the vectors loaded.
            tracing::info!(
                "{}: {adopted} files now cut for {} ({} ms to switch)",
                task_root.root.display(),
                task_target.resolved.fingerprint,
                started.elapsed().as_millis()
            );
            // What changed since it was staged, with the new model.
            update_shared(
                &task_root.index,
                &task_target.handle,
                &mut |_| {},
                &task_root.cancel,
            )?;
            task_root
                .index
                .with(|i| i.record_served(&task_target.served()))?;
            Ok(())
        })
        .await;
        drop(updating);
        if result.is_ok() {
            self.reapply_buffers(root).await;
        }
        result
    }

    fn set_error(&self, message: &str) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(message.to_string());
    }

    /// The roots currently served.
    pub fn roots(&self) -> Vec<Arc<RootIndex>> {
        self.roots.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Opens the index of a workspace folder (without indexing it yet).
    pub async fn add_root(self: &Arc<Self>, path: &Path) -> Result<Arc<RootIndex>, EngineError> {
        if let Some(existing) = self.roots().into_iter().find(|r| r.root == path) {
            return Ok(existing);
        }
        let config = self.settings.root_config(path, None)?;
        let (root, index_dir) = (config.root.clone(), config.dir.clone());
        let engine = Arc::clone(self);
        let (index, own) = blocking(move || {
            let mut index = Index::open(config, None, Access::WriteOrRead)?;
            let Some(base) = engine.model() else {
                return Ok((index, None));
            };
            let own = engine.previous_model(&index, &base);
            index.switch_model(own.as_ref().unwrap_or(&base).key())?;
            Ok((index, own))
        })
        .await?;
        Ok(self.insert_root(root, index_dir, index, own))
    }

    /// Serves `index`, the index of `root` kept in `index_dir`, with `own` as the root's own
    /// model ([`RootIndex::own`]).
    fn insert_root(
        &self,
        root: PathBuf,
        index_dir: PathBuf,
        index: Index,
        own: Option<Arc<LoadedModel>>,
    ) -> Arc<RootIndex> {
        let entry = Arc::new(RootIndex {
            root,
            index_dir,
            index: Mutex::new(index),
            own: RwLock::new(own),
            switching: tokio::sync::Mutex::new(()),
            cancel: AtomicBool::new(false),
            updating: tokio::sync::Mutex::new(()),
        });
        self.roots
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::clone(&entry));
        entry
    }

    /// Which model and adapter serve the workspace whose index is in `index_dir`
    /// ([`workspace_model`] with this engine's settings; the base model is resolved only when
    /// an adapter is installed there). Blocking.
    fn served(&self, index_dir: &Path) -> Result<WorkspaceModel, EngineError> {
        workspace_model(&self.settings.model_options, index_dir, || {
            self.resolve_base().map(|resolved| resolved.fingerprint)
        })
    }

    /// The configured model, found (a path, the cache, or the hub) without loading it. Blocking.
    fn resolve_base(&self) -> Result<ResolvedModel, EngineError> {
        let spec = &self.settings.model;
        model::resolve(spec).map_err(|source| EngineError::ResolveModel {
            spec: spec.clone(),
            source,
        })
    }

    /// The directory of the base model, which fine-tuning trains an adapter for: the loaded
    /// model's, or for a one-shot engine the configured model resolved (blocking then) — not
    /// the workspace's adapted model, which is a root's own.
    fn base_model_dir(&self) -> Result<PathBuf, EngineError> {
        let one_shot = matches!(
            *self.model.read().unwrap_or_else(|e| e.into_inner()),
            ModelState::OneShot
        );
        if one_shot {
            return Ok(self.resolve_base()?.dir);
        }
        Ok(self.require_model()?.resolved.dir.clone())
    }

    /// For a one-shot run: loads the model that serves the workspace whose index is in
    /// `index_dir` ([`workspace_model`]), its adapter merged in at once, so the root is embedded
    /// only with the model that serves it (a long-running engine loads the base model and
    /// follows the workspace's adapter in the background, [`Engine::follow_adapter`]). Blocking.
    pub fn load_served(&self, index_dir: &Path) -> Result<LoadedModel, EngineError> {
        let served = self.served(index_dir)?;
        model::load(&self.settings.model, &served.options).map_err(|source| {
            EngineError::LoadModel {
                spec: self.settings.model.clone(),
                source,
            }
        })
    }

    /// For a one-shot run: opens the root of `config` ([`Engine::root_config`]) served by
    /// `model` (from [`Engine::load_served`]; `None` when none could be loaded: the index is then
    /// only read, and searched by words), taking its index as `run` needs it. There is no
    /// previous model to keep serving and no adapter to follow, unlike [`Engine::add_root`]:
    /// `model` serves the root from the start. Blocking.
    pub fn open_once(
        self: &Arc<Self>,
        config: IndexConfig,
        run: OneShot,
        model: Option<LoadedModel>,
    ) -> Result<Arc<RootIndex>, EngineError> {
        let (root, index_dir) = (config.root.clone(), config.dir.clone());
        let access = run.access(model.is_some());
        let index = Index::open(config, model.as_ref().map(LoadedModel::key), access)?;
        let model = model.map(Arc::new);
        // The workspace's fine-tuned adapter is the root's own model, as after
        // `follow_adapter`; the base model it was merged into is not loaded on its own.
        let own = model
            .clone()
            .filter(|m| m.adapter != self.settings.model_options.adapter);
        if own.is_none()
            && let Some(model) = model
        {
            *self.model.write().unwrap_or_else(|e| e.into_inner()) = ModelState::Ready(model);
        }
        Ok(self.insert_root(root, index_dir, index, own))
    }

    /// For a one-shot look at the index of `config` (`status`): what it holds for the vectors
    /// of the model that serves the root ([`workspace_model`]), read without loading the
    /// model's weights. Blocking.
    pub fn inspect_once(&self, config: IndexConfig) -> Result<RootReport, EngineError> {
        let served = self.served(&config.dir)?;
        let adapter = served.options.adapter;
        let (model, _) = model::resolve_adapted(&self.settings.model, adapter.as_deref())?;
        let key = ModelKey {
            fingerprint: model.fingerprint.clone(),
            dimensions: model.dimensions,
        };
        let index = Index::open(config, Some(key), Access::ReadOnly)?;
        Ok(RootReport {
            status: index.status()?,
            model,
            adapter,
        })
    }

    /// The served folder `path` (canonicalised), or the first one when `None`.
    pub fn root_entry(&self, path: Option<&Path>) -> Result<Arc<RootIndex>, EngineError> {
        let roots = self.roots();
        let found = match path {
            None => roots.first().cloned(),
            Some(path) => {
                let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
                roots
                    .into_iter()
                    .find(|r| r.root == path || r.root == canonical)
            }
        };
        found.ok_or_else(|| match path {
            Some(path) => EngineError::OutsideWorkspace(path.to_path_buf()),
            None => EngineError::Internal("no workspace folder is open".into()),
        })
    }

    /// The model that last served `index` completely ([`Index::record_served`]), loaded again,
    /// when it is not `base`: it keeps answering while `base` catches up in the background
    /// ([`Engine::follow_adapter`]), instead of a model with vectors for only part of the
    /// chunks. `None` (and `base` serves at once) when this process only reads the index, or
    /// the previous model is gone or changed. Blocking (loads weights).
    fn previous_model(&self, index: &Index, base: &LoadedModel) -> Option<Arc<LoadedModel>> {
        if !index.is_writable() {
            return None;
        }
        let served = match index.served_model() {
            Ok(Some(served)) if served.fingerprint != base.resolved.fingerprint => served,
            Ok(_) => return None,
            Err(e) => {
                tracing::warn!("reading the index's previous model: {e}");
                return None;
            }
        };
        if !served.dir.is_dir() {
            tracing::info!(
                "the model that served this index before ({}) is gone; {} serves it as it catches up",
                served.dir.display(),
                base.resolved.name
            );
            return None;
        }
        let options = ModelOptions {
            adapter: served.adapter.clone(),
            ..self.settings.model_options.clone()
        };
        match model::load(&served.dir.to_string_lossy(), &options) {
            Ok(loaded) if loaded.resolved.fingerprint == served.fingerprint => {
                tracing::info!(
                    "{} keeps serving this index until {} has embedded it",
                    served.dir.display(),
                    base.resolved.name
                );
                Some(Arc::new(loaded))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::info!(
                    "the model that served this index before ({}) cannot be loaded: {e}",
                    served.dir.display()
                );
                None
            }
        }
    }

    /// What the trainer needs to fine-tune the base model on the workspace folder `root`
    /// (its index, where the adapter goes, in `index_dir`), with the settings `asked` for over
    /// the front end's `defaults`, for [`Engine::start_fine_tune`] and
    /// [`Engine::start_fine_tune_root`]: an engine serving an adapter chosen explicitly refuses
    /// ([`EngineError::ExplicitAdapter`]); a long-running engine needs its model loaded, a
    /// one-shot one ([`Engine::once`]) resolves it (blocking).
    fn fine_tune_job(
        &self,
        root: &Path,
        index_dir: &Path,
        defaults: &finetune::FineTuneSettings,
        asked: &finetune::FineTuneSettings,
    ) -> Result<finetune::FineTuneJob, EngineError> {
        if let Some(adapter) = &self.settings.model_options.adapter {
            return Err(EngineError::ExplicitAdapter(adapter.clone()));
        }
        Ok(finetune::FineTuneJob {
            root: root.to_path_buf(),
            index_dir: index_dir.to_path_buf(),
            // The resolved directory: the trainer must not look the model up again.
            model: self.base_model_dir()?.display().to_string(),
            exclude: self.settings.exclude.clone(),
            max_file_size: self.settings.max_file_size,
            settings: defaults.merged(asked),
            device: self.settings.model_options.device,
            instructions: self.settings.model_options.instructions.clone(),
        })
    }

    /// Starts fine-tuning the base model on the workspace folder `root` (its index in
    /// `index_dir`): the job of `fine_tune_job`, refused while another run of this
    /// engine is going ([`EngineError::FineTuneRunning`]). Every front end fine-tunes through
    /// here and [`FineTuneRun::run`]; the run holds the engine's one slot until it is dropped.
    /// Blocking for a one-shot engine (it resolves the model).
    pub fn start_fine_tune(
        &self,
        root: &Path,
        index_dir: &Path,
        defaults: &finetune::FineTuneSettings,
        asked: &finetune::FineTuneSettings,
    ) -> Result<FineTuneRun, EngineError> {
        let job = self.fine_tune_job(root, index_dir, defaults, asked)?;
        self.claim_fine_tune(job)
    }

    /// [`Engine::start_fine_tune`] for a root this long-running engine serves (the language
    /// server, MCP), refused while its index holds no files yet or chunks still wait for their
    /// vectors ([`EngineError::NotIndexed`]): the trainer judges the adapter on a copy of it.
    pub async fn start_fine_tune_root(
        &self,
        root: &Arc<RootIndex>,
        defaults: &finetune::FineTuneSettings,
        asked: &finetune::FineTuneSettings,
    ) -> Result<FineTuneRun, EngineError> {
        let job = self.fine_tune_job(&root.root, &root.index_dir, defaults, asked)?;
        let task_root = Arc::clone(root);
        let status = blocking(move || Ok(task_root.index.with(|i| i.status())?)).await?;
        if status.files == 0 || status.pending > 0 {
            return Err(EngineError::NotIndexed {
                root: root.root.clone(),
                files: status.files,
                pending: status.pending,
            });
        }
        self.claim_fine_tune(job)
    }

    fn claim_fine_tune(&self, job: finetune::FineTuneJob) -> Result<FineTuneRun, EngineError> {
        if self
            .fine_tuning
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(EngineError::FineTuneRunning);
        }
        // From here the slot is freed on every return.
        let slot = RunSlot(Arc::clone(&self.fine_tuning));
        let lock = finetune::RunLock::take(&job.index_dir)?
            .ok_or_else(|| EngineError::FineTuneElsewhere(job.index_dir.clone()))?;
        Ok(FineTuneRun {
            job,
            _lock: lock,
            _slot: slot,
        })
    }

    /// Puts the fine-tuned adapter of the workspace whose index is in `index_dir` aside (kept
    /// in `adapter-previous/`), so the base model serves it again (a long-running engine after
    /// [`Engine::follow_adapter`], a one-shot run from its next opening). Returns whether there
    /// was one. Refused while a fine-tuning runs, in this engine
    /// ([`EngineError::FineTuneRunning`]) or in another process
    /// ([`EngineError::FineTuneElsewhere`]): the run would install its adapter after the
    /// reset, undoing it.
    pub fn retire_adapter(&self, index_dir: &Path) -> Result<bool, EngineError> {
        if self.fine_tuning.load(Ordering::SeqCst) {
            return Err(EngineError::FineTuneRunning);
        }
        if !index_dir.is_dir() {
            // Nothing was indexed there, so nothing was fine-tuned either.
            return Ok(false);
        }
        // Held while the adapter moves, so no run starts meanwhile.
        let _lock = finetune::RunLock::take(index_dir)?
            .ok_or_else(|| EngineError::FineTuneElsewhere(index_dir.to_path_buf()))?;
        Ok(finetune::retire(index_dir)?)
    }

    /// Stops serving a workspace folder (its index stays on disk).
    pub fn remove_root(&self, path: &Path) {
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut roots = self.roots.write().unwrap_or_else(|e| e.into_inner());
        roots.retain(|r| {
            let keep = r.root != path && r.root != canonical;
            if !keep {
                r.cancel.store(true, Ordering::Relaxed);
            }
            keep
        });
    }

    /// Cancels every running update.
    pub fn cancel_indexing(&self) {
        for root in self.roots() {
            root.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Whether any root is being indexed.
    pub fn is_indexing(&self) -> bool {
        self.indexing.load(Ordering::Relaxed) > 0
    }

    /// Brings one root up to date; `progress` receives events from a blocking thread.
    pub async fn index_root(
        self: &Arc<Self>,
        root: &Arc<RootIndex>,
        progress: impl FnMut(IndexEvent) + Send + 'static,
    ) -> Result<UpdateStats, EngineError> {
        self.update_root(root, UpdatePart::All, progress).await
    }

    /// Brings `part` of one root up to date with the model that serves it, as the root's one
    /// update at a time: it counts as indexing, a failure other than cancelling is kept as the
    /// last error, and open buffers are applied again after it. Once every chunk has its
    /// vector, the model is recorded as the one that served the index.
    pub async fn update_root(
        self: &Arc<Self>,
        root: &Arc<RootIndex>,
        part: UpdatePart,
        progress: impl FnMut(IndexEvent) + Send + 'static,
    ) -> Result<UpdateStats, EngineError> {
        // A read-only index (another process writes it) is refused by the update itself.
        let updating = root.updating.lock().await;
        let model = self.model_for(root)?;
        root.cancel.store(false, Ordering::Relaxed);
        self.indexing.fetch_add(1, Ordering::Relaxed);
        let task_root = Arc::clone(root);
        let mut progress = progress;
        let result = blocking(move || {
            let (index, embedder, cancel) = (&task_root.index, &model.handle, &task_root.cancel);
            let stats = match part {
                UpdatePart::All => update_shared(index, embedder, &mut progress, cancel)?,
                UpdatePart::Files => {
                    return Ok(sync_files(index, embedder, &mut progress, cancel)?);
                }
                UpdatePart::Vectors => {
                    let embedded = embed_pending(index, embedder, &mut progress, cancel)?;
                    index.with(|i| i.flush())?;
                    UpdateStats {
                        embedded,
                        ..UpdateStats::default()
                    }
                }
            };
            index.with(|i| i.record_served(&model.served()))?;
            Ok(stats)
        })
        .await;
        self.indexing.fetch_sub(1, Ordering::Relaxed);
        if let Err(e) = &result
            && !matches!(e, EngineError::Index(IndexError::Cancelled))
        {
            self.set_error(&e.to_string());
        }
        drop(updating);
        if result.is_ok() {
            self.reapply_buffers(root).await;
        }
        result
    }

    /// The walk indexes what is on disk; files open in the editor are indexed as the editor
    /// shows them, so their buffers are applied again after an update. (Boxed: `sync_buffer`
    /// may come back to `index_root` through `claim_writer`.)
    async fn reapply_buffers(self: &Arc<Self>, root: &Arc<RootIndex>) {
        let open: Vec<(PathBuf, String)> = self
            .buffers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(path, _)| path.starts_with(&root.root))
            .map(|(path, text)| (path.clone(), text.clone()))
            .collect();
        for (path, text) in open {
            if let Err(e) = Box::pin(self.sync_buffer(&path, text)).await {
                tracing::debug!("re-applying the buffer of {}: {e}", path.display());
            }
        }
    }

    /// When another process held the write lock of `root` and has let go of it, takes it over.
    /// Returns whether this process now writes the root's index.
    pub async fn try_become_writer(&self, root: &Arc<RootIndex>) -> Result<bool, EngineError> {
        let root = Arc::clone(root);
        blocking(move || Ok(root.index.with(|i| i.try_become_writer())?)).await
    }

    /// Before writing to `root` on behalf of an editor: when this process only reads the index
    /// (another process held the write lock when the root was added) and that process has
    /// ended, takes the index over and catches up with the disk in the background, since
    /// changes seen while reading could not be written. Returns whether this process writes.
    async fn claim_writer(self: &Arc<Self>, root: &Arc<RootIndex>) -> Result<bool, EngineError> {
        if self.is_writer(root).await? {
            return Ok(true);
        }
        if !self.try_become_writer(root).await? {
            return Ok(false);
        }
        tracing::info!(
            "the process that wrote the index of {} has ended; this server keeps it up to date now",
            root.root.display()
        );
        if let Err(e) = self.index_root(root, |_| {}).await {
            tracing::warn!("catching up {}: {e}", root.root.display());
        }
        Ok(true)
    }

    fn root_of(&self, path: &Path) -> Result<(Arc<RootIndex>, String), EngineError> {
        self.roots()
            .into_iter()
            .filter(|r| path.starts_with(&r.root))
            .max_by_key(|r| r.root.as_os_str().len())
            .and_then(|r| {
                let rel = path.strip_prefix(&r.root).ok()?;
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                Some((r, rel))
            })
            .ok_or_else(|| EngineError::OutsideWorkspace(path.to_path_buf()))
    }

    /// Records the text of an open editor buffer and indexes it (unsaved content included).
    pub async fn sync_buffer(
        self: &Arc<Self>,
        path: &Path,
        text: String,
    ) -> Result<(), EngineError> {
        self.buffers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_path_buf(), text.clone());
        let (root, rel) = self.root_of(path)?;
        let Some(language) = Language::from_path(path) else {
            return Ok(());
        };
        self.claim_writer(&root).await?;
        let _updating = root.updating.lock().await;
        let model = self.model_for(&root)?;
        let task_root = Arc::clone(&root);
        blocking(move || {
            let chunker =
                crate::embed::chunker(model.handle.tokenizer(), model.handle.info().max_tokens);
            // Size/mtime are left unknown so the next walk compares the disk content again.
            task_root
                .index
                .with(|i| i.sync_text(&rel, language, &text, text.len() as u64, 0, &chunker))?;
            // Only this file's new texts: scanning the whole index for pending ones cost more
            // than the embedding on a large workspace (bench/scale.py).
            embed_pending_in_file(&task_root.index, &model.handle, &rel)?;
            task_root.index.with(|i| i.flush())?;
            Ok(())
        })
        .await
    }

    /// Forgets an editor buffer and indexes the file's disk content again.
    pub async fn close_buffer(self: &Arc<Self>, path: &Path) -> Result<(), EngineError> {
        self.buffers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path);
        self.sync_disk(path).await
    }

    /// Indexes a file's content on disk (created or changed), or removes it when it is gone
    /// or no longer indexable. Open buffers win: their file is left alone.
    pub async fn sync_disk(self: &Arc<Self>, path: &Path) -> Result<(), EngineError> {
        if self
            .buffers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(path)
        {
            return Ok(());
        }
        let (root, rel) = self.root_of(path)?;
        self.claim_writer(&root).await?;
        let _updating = root.updating.lock().await;
        let model = self.model_for(&root)?;
        let task_root = Arc::clone(&root);
        let path = path.to_path_buf();
        blocking(move || {
            let walked = workspace::walk_one(&task_root.root, &path, &walk_options(&task_root))
                .map_err(IndexError::from)?;
            match walked {
                Some(file) => {
                    let chunker = crate::embed::chunker(
                        model.handle.tokenizer(),
                        model.handle.info().max_tokens,
                    );
                    task_root.index.with(|i| i.sync_file(&file, &chunker))?;
                    embed_pending_in_file(&task_root.index, &model.handle, &file.rel_path)?;
                }
                None => {
                    task_root.index.with(|i| i.remove_path(&rel))?;
                }
            }
            task_root.index.with(|i| i.flush())?;
            Ok(())
        })
        .await
    }

    /// The text of a file as the user sees it: the open buffer, else the disk. Blocking (it may
    /// read the disk): call it from blocking code or through [`Engine::read_file`].
    pub fn file_text(&self, path: &Path) -> Option<String> {
        if let Some(text) = self
            .buffers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
        {
            return Some(text.clone());
        }
        self.disk_text(path)
    }

    /// The text of a file on disk, whatever buffer is open. Blocking.
    fn disk_text(&self, path: &Path) -> Option<String> {
        workspace::read_text(path, self.settings.max_file_size).ok()
    }

    /// [`Engine::file_text`] off the async runtime.
    pub async fn read_file(self: &Arc<Self>, path: &Path) -> Option<String> {
        self.read_off_runtime(path, Self::file_text).await
    }

    /// [`Engine::disk_text`] off the async runtime.
    pub async fn read_disk(self: &Arc<Self>, path: &Path) -> Option<String> {
        self.read_off_runtime(path, Self::disk_text).await
    }

    async fn read_off_runtime(
        self: &Arc<Self>,
        path: &Path,
        read: fn(&Self, &Path) -> Option<String>,
    ) -> Option<String> {
        let engine = Arc::clone(self);
        let path = path.to_path_buf();
        blocking(move || Ok(read(&engine, &path)))
            .await
            .ok()
            .flatten()
    }

    /// Natural-language search over every root, best first, with the configured priors.
    /// Without a model it is lexical.
    pub async fn search(
        self: &Arc<Self>,
        query: &str,
        top_k: usize,
        filter: SearchFilter,
        ranking: Ranking,
    ) -> Result<Vec<RootedHit>, EngineError> {
        let mut ranking = ranking;
        ranking.stack.priors = self.settings.priors.clone();
        let engine = Arc::clone(self);
        let query = query.to_string();
        let roots = self.roots();
        blocking(move || {
            let mut hits = Vec::new();
            for root in &roots {
                let found = engine.search_root(
                    root,
                    &query,
                    QueryTask::CodeSearch,
                    top_k,
                    &filter,
                    &ranking,
                )?;
                add_rooted(&mut hits, root, found);
            }
            Ok(best(hits, top_k))
        })
        .await
    }

    /// One root's answer to `query` of `task`, on its current view and with the model that
    /// serves it (lexical without one). Blocking.
    fn search_root(
        &self,
        root: &RootIndex,
        query: &str,
        task: QueryTask,
        top_k: usize,
        filter: &SearchFilter,
        ranking: &Ranking,
    ) -> Result<Vec<SearchHit>, EngineError> {
        Ok(root.index.with(|i| {
            i.refresh_view()?;
            // Read under the index: a model switch changes both together.
            let model = self.model_of(root);
            search_task(
                i,
                model.as_ref().map(|m| &m.handle),
                query,
                task,
                top_k,
                filter,
                ranking,
            )
        })?)
    }

    /// Symbols whose name fuzzily matches `pattern`, over every root.
    pub async fn symbols_by_name(
        self: &Arc<Self>,
        pattern: &str,
        limit: usize,
    ) -> Result<Vec<RootedHit>, EngineError> {
        let pattern = pattern.to_string();
        let roots = self.roots();
        blocking(move || {
            let mut hits = Vec::new();
            for root in roots {
                let found = root.index.with(|i| i.symbols_by_name(&pattern, limit))?;
                let count = found.len().max(1) as f32;
                hits.extend(
                    found
                        .into_iter()
                        .enumerate()
                        .map(|(rank, chunk)| RootedHit {
                            root: root.root.clone(),
                            hit: SearchHit::from_chunk(chunk, 1.0 - rank as f32 / count),
                        }),
                );
            }
            hits.truncate(limit);
            Ok(hits)
        })
        .await
    }

    /// Code similar to lines `start_line..=end_line` (1-based) of `path`, in every root.
    pub async fn similar(
        self: &Arc<Self>,
        path: &Path,
        start_line: u32,
        end_line: u32,
        top_k: usize,
    ) -> Result<Vec<RootedHit>, EngineError> {
        let (root, rel) = self.root_of(path)?;
        self.model_for(&root)?;
        let roots = self.roots();
        let engine = Arc::clone(self);
        let path = path.to_path_buf();
        blocking(move || {
            let text = engine
                .file_text(&path)
                .map(|t| {
                    t.lines()
                        .skip(start_line.saturating_sub(1) as usize)
                        .take((end_line + 1).saturating_sub(start_line) as usize)
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            // The stored vector of the code (or its text embedded) is searched in every root.
            let own = root.index.with(|i| {
                i.refresh_view()?;
                let model = engine.model_for(&root)?;
                similar(
                    i,
                    &model.handle,
                    &rel,
                    start_line,
                    end_line,
                    &text,
                    top_k,
                    &engine.settings.priors,
                )
                .map_err(EngineError::from)
            })?;
            let mut hits = Vec::new();
            add_rooted(&mut hits, &root, own);
            for other in roots.iter().filter(|r| r.root != root.root) {
                let found = engine.search_root(
                    other,
                    &text,
                    QueryTask::SimilarCode,
                    top_k,
                    &SearchFilter::default(),
                    // Code → code similarity is what embeddings are for.
                    &Ranking::mode(SearchMode::Dense),
                )?;
                add_rooted(&mut hits, other, found);
            }
            Ok(best(hits, top_k))
        })
        .await
    }

    /// The chunk that covers `line` (1-based) of `path` most tightly, if any.
    pub async fn symbol_at(
        self: &Arc<Self>,
        path: &Path,
        line: u32,
    ) -> Result<Option<(u32, u32, String)>, EngineError> {
        let (root, rel) = self.root_of(path)?;
        blocking(move || {
            let chunks = root.index.with(|i| i.chunks_in_file(&rel))?;
            Ok(chunks
                .into_iter()
                .filter(|c| c.start_line <= line && line <= c.end_line)
                .min_by_key(|c| c.end_line - c.start_line)
                .map(|c| (c.start_line, c.end_line, c.name)))
        })
        .await
    }

    /// The best code for `query`, packed into `token_budget` model tokens.
    pub async fn context(
        self: &Arc<Self>,
        query: &str,
        token_budget: usize,
    ) -> Result<Vec<(PathBuf, PackedContext)>, EngineError> {
        let model = self.require_model()?;
        let hits = self
            .search(query, 30, SearchFilter::default(), Ranking::default())
            .await?;
        let engine = Arc::clone(self);
        blocking(move || {
            // Group hits per root so every chunk can be read and labelled with its root.
            let mut per_root: Vec<(PathBuf, Vec<SearchHit>)> = Vec::new();
            for rooted in hits {
                match per_root.iter_mut().find(|(r, _)| *r == rooted.root) {
                    Some((_, list)) => list.push(rooted.hit),
                    None => per_root.push((rooted.root, vec![rooted.hit])),
                }
            }
            let tokenizer = model.handle.tokenizer();
            let mut left = token_budget;
            let mut out = Vec::new();
            for (root, hits) in per_root {
                let mut read = |rel: &str| engine.file_text(&root.join(rel));
                let packed = pack_context(&hits, &mut read, &tokenizer, left);
                left -= packed.tokens_used;
                out.push((root, packed));
            }
            Ok(out)
        })
        .await
    }

    /// Counts per root and overall.
    pub async fn status(self: &Arc<Self>) -> Result<EngineStatus, EngineError> {
        let roots = self.roots();
        let engine = Arc::clone(self);
        let per_root = blocking(move || {
            let mut out = Vec::new();
            for root in roots {
                let mut s = root.index.with(|i| i.status())?;
                let model = engine.model_of(&root);
                let adapter = model.as_ref().and_then(|m| m.adapter.clone());
                if let (Some(own), Some(base)) = (root.own_model(), engine.model())
                    && own.resolved.dir != base.resolved.dir
                {
                    s.notes.push(format!(
                        "{} serves this folder until {} has embedded it",
                        own.resolved.name, base.resolved.name
                    ));
                }
                out.push(RootStatus {
                    fingerprint: s.fingerprint.clone(),
                    adapter,
                    root: s.root,
                    index_dir: s.index_dir,
                    files: s.files,
                    chunks: s.chunks,
                    embedded: s.embedded_chunks,
                    pending: s.pending,
                    read_only: s.read_only,
                    notes: s.notes,
                });
            }
            Ok(out)
        })
        .await?;
        let (model_state, fingerprint, device) =
            match &*self.model.read().unwrap_or_else(|e| e.into_inner()) {
                ModelState::OneShot => ("one-shot".to_string(), None, String::new()),
                ModelState::Loading => ("loading".to_string(), None, String::new()),
                ModelState::Ready(m) => (
                    "ready".to_string(),
                    Some(m.resolved.fingerprint.clone()),
                    m.device.clone(),
                ),
                ModelState::Failed(why) => (format!("failed: {why}"), None, String::new()),
            };
        Ok(EngineStatus {
            indexing: self.is_indexing(),
            files: per_root.iter().map(|r| r.files).sum(),
            chunks: per_root.iter().map(|r| r.chunks).sum(),
            embedded: per_root.iter().map(|r| r.embedded).sum(),
            pending: per_root.iter().map(|r| r.pending).sum(),
            model: self.settings.model.clone(),
            model_state,
            device,
            fingerprint,
            roots: per_root,
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        })
    }

    /// Whether this process writes `root`'s index (another process may hold the write lock).
    pub async fn is_writer(&self, root: &Arc<RootIndex>) -> Result<bool, EngineError> {
        let root = Arc::clone(root);
        blocking(move || Ok(root.index.with(|i| i.is_writable()))).await
    }

    /// Saves what is in memory (called on shutdown).
    pub async fn flush(self: &Arc<Self>) {
        self.cancel_indexing();
        let roots = self.roots();
        let result = blocking(move || {
            for root in roots {
                root.index.with(|i| i.flush())?;
            }
            Ok(())
        })
        .await;
        if let Err(e) = result {
            tracing::warn!("flushing the index failed: {e}");
        }
    }

    /// The model's tokenizer counts tokens for `text` (for budgets reported to clients).
    pub fn count_tokens(&self, text: &str) -> Option<usize> {
        self.model()
            .and_then(|m| m.handle.tokenizer().count_tokens(text).ok())
    }
}

/// A fine-tuning run the engine accepted ([`Engine::start_fine_tune`]): what it trains, the
/// engine's one run slot and its index directory's lock, held until the run ends or is dropped.
#[derive(Debug)]
pub struct FineTuneRun {
    job: finetune::FineTuneJob,
    /// The index directory's lock, so no other process fine-tunes or resets it meanwhile.
    _lock: finetune::RunLock,
    _slot: RunSlot,
}

/// Frees the engine's fine-tuning slot when dropped.
#[derive(Debug)]
struct RunSlot(Arc<AtomicBool>);

impl Drop for RunSlot {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl FineTuneRun {
    /// What the run trains.
    pub fn job(&self) -> &finetune::FineTuneJob {
        &self.job
    }

    /// Runs the trainer (`coder-lsp train`, a child process) to its end: `on_progress` sees
    /// each step ([`finetune::Progress`]), `cancel` completing stops the child
    /// ([`finetune::FineTuneError::Cancelled`], the model in use unchanged). The outcome is the
    /// gate's decision with its figures; an accepted adapter is installed beside the index
    /// before this returns (a long-running engine serves it after [`Engine::follow_adapter`]).
    pub async fn run(
        self,
        on_progress: impl FnMut(finetune::Progress),
        cancel: impl std::future::Future<Output = ()>,
    ) -> Result<finetune::FineTuneOutcome, EngineError> {
        Ok(finetune::run(&self.job, on_progress, cancel).await?)
    }

    /// [`FineTuneRun::run`] for a front end that reports progress asynchronously (a protocol
    /// notification): each update arrives on the receiver, which ends with the run. Poll both
    /// together (`tokio::join!`).
    pub fn run_reporting(
        self,
        cancel: impl std::future::Future<Output = ()>,
    ) -> (
        tokio::sync::mpsc::UnboundedReceiver<finetune::Progress>,
        impl std::future::Future<Output = Result<finetune::FineTuneOutcome, EngineError>>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let run = async move {
            self.run(
                move |update| {
                    // The receiver is gone only when the front end stopped listening.
                    let _ = tx.send(update);
                },
                cancel,
            )
            .await
        };
        (rx, run)
    }
}

/// Which model serves a workspace, as [`workspace_model`] decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceModel {
    /// What the model is loaded with: the configured options, with the workspace's installed
    /// adapter when it serves.
    pub options: ModelOptions,
    /// The workspace's own fine-tuned adapter (installed beside its index), when it serves.
    pub installed: Option<PathBuf>,
}

/// Decides which model and adapter serve the workspace whose index lives in `index_dir`: the one
/// place that does, for the engine (language server, MCP) and the CLI alike. `options` are the
/// configured ones (settings, command line). An adapter chosen there serves every workspace, so
/// installed ones are then ignored; else the adapter installed beside the index serves when it
/// was trained for the base model (whose fingerprint `base_fingerprint` gives, asked only then);
/// one trained for another base model is passed over with a warning and the base model serves
/// ([`finetune::installed_adapter_for`]). Blocking (reads the adapter's metadata).
pub fn workspace_model<E: From<EmbedError>>(
    options: &ModelOptions,
    index_dir: &Path,
    base_fingerprint: impl FnOnce() -> Result<String, E>,
) -> Result<WorkspaceModel, E> {
    let configured = WorkspaceModel {
        options: options.clone(),
        installed: None,
    };
    if options.adapter.is_some() || finetune::installed_adapter(index_dir).is_none() {
        return Ok(configured);
    }
    let Some(dir) = finetune::installed_adapter_for(index_dir, &base_fingerprint()?)? else {
        return Ok(configured);
    };
    Ok(WorkspaceModel {
        options: ModelOptions {
            adapter: Some(dir.clone()),
            ..configured.options
        },
        installed: Some(dir),
    })
}

/// Labels one root's hits with the root.
fn add_rooted(into: &mut Vec<RootedHit>, root: &RootIndex, hits: Vec<SearchHit>) {
    into.extend(hits.into_iter().map(|hit| RootedHit {
        root: root.root.clone(),
        hit,
    }));
}

/// The `top_k` best hits across roots.
fn best(mut hits: Vec<RootedHit>, top_k: usize) -> Vec<RootedHit> {
    hits.sort_by(|a, b| b.hit.score.total_cmp(&a.hit.score));
    hits.truncate(top_k);
    hits
}

fn walk_options(root: &RootIndex) -> WalkOptions {
    root.index.with(|i| i.walk_options().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::lora::{AdapterMeta, LoraTarget};

    /// Installs adapter metadata for the base model `base` beside the index in `index_dir` (the
    /// decision reads only the metadata).
    fn install_adapter(index_dir: &Path, base: &str) -> PathBuf {
        let dir = index_dir.join(finetune::ADAPTER_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        let meta = AdapterMeta {
            rank: 8,
            alpha: 16.0,
            target_modules: LoraTarget::ALL.to_vec(),
            ..AdapterMeta::new(base, "bert")
        };
        std::fs::write(
            dir.join(crate::embed::lora::ADAPTER_META),
            serde_json::to_string(&meta).unwrap(),
        )
        .unwrap();
        dir
    }

    fn base_is(fingerprint: &str) -> impl FnOnce() -> Result<String, EmbedError> + '_ {
        move || Ok(fingerprint.to_string())
    }

    fn not_asked() -> Result<String, EmbedError> {
        panic!("the base model is resolved only when an adapter is installed")
    }

    /// What serves a workspace with `options` when no installed adapter does.
    fn as_configured(options: &ModelOptions) -> WorkspaceModel {
        WorkspaceModel {
            options: options.clone(),
            installed: None,
        }
    }

    /// A workspace of three Rust files, the settings of an engine on the tiny BERT and the
    /// workspace's index (in the same temporary directory).
    fn tiny_workspace() -> (tempfile::TempDir, EngineSettings, IndexConfig) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        for (file, name) in [
            ("a.rs", "parse_config"),
            ("b.rs", "retry_later"),
            ("c.rs", "open"),
        ] {
            std::fs::write(
                root.join(file),
                format!("/// Does {name}.\npub fn {name}(x: u32) -> u32 {{\n    x + 1\n}}\n"),
            )
            .unwrap();
        }
        let settings = EngineSettings {
            model: crate::embed::tiny_bert_dir().display().to_string(),
            model_options: ModelOptions::default(),
            index_dir: None,
            exclude: Vec::new(),
            max_file_size: crate::workspace::DEFAULT_MAX_FILE_SIZE,
            priors: Priors::default(),
        };
        let config = settings
            .root_config(&root, Some(&dir.path().join("index")))
            .unwrap();
        (dir, settings, config)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// The names of the vector files in an index directory.
    fn vector_files(index_dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(index_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("vectors-") && n.ends_with(".usearch"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_one_shot_run_embeds_a_root_once_with_its_installed_adapter() {
        use crate::embed::lora::{AdapterMeta, random_lora};
        let (_dir, settings, config) = tiny_workspace();
        let index_dir = config.dir.clone();
        let base = model::resolve(&settings.model).unwrap();
        let trainable =
            crate::embed::load_trainable(&base.dir, &candle_core::Device::Cpu, &Default::default())
                .unwrap();
        let installed = index_dir.join(finetune::ADAPTER_DIR);
        random_lora(&trainable.lora_modules(), 3)
            .save(&installed, &AdapterMeta::new(&base.fingerprint, "bert"))
            .unwrap();

        let engine = Engine::once(settings.clone());
        let model = engine.load_served(&config.dir).unwrap();
        assert_eq!(model.adapter.as_ref(), Some(&installed));
        let adapted = model.resolved.fingerprint.clone();
        assert_ne!(adapted, base.fingerprint);
        let root = engine
            .open_once(config.clone(), OneShot::Update, Some(model))
            .unwrap();
        // The adapted model is the root's own; the base model is never loaded on its own.
        assert!(engine.model().is_none());
        let stats = runtime()
            .block_on(engine.index_root(&root, |_| {}))
            .unwrap();
        assert_eq!(stats.pending, 0);
        assert_eq!(stats.embedded as u64, stats.chunks, "{stats:?}");
        // One embedding of the root, with the adapted model: no base model's vectors.
        assert_eq!(
            vector_files(&index_dir),
            [format!("vectors-{adapted}.usearch")]
        );
        drop((root, engine));

        // `status` reads the same without loading any weights.
        let engine = Engine::once(settings);
        let report = engine.inspect_once(config).unwrap();
        assert_eq!(report.adapter.as_ref(), Some(&installed));
        assert_eq!(report.model.fingerprint, adapted);
        assert_eq!(report.status.fingerprint, adapted);
        assert_eq!(report.status.embedded_chunks, stats.chunks);
        assert!(report.status.read_only);
        assert!(engine.model().is_none() && engine.roots().is_empty());
    }

    /// Asserts that `error` is what `is` accepts and that its message contains `says`.
    fn assert_error(error: &EngineError, is: fn(&EngineError) -> bool, says: &str) {
        assert!(is(error), "{error:?}");
        assert!(error.to_string().contains(says), "{error}");
    }

    #[test]
    fn every_front_end_gets_its_fine_tune_job_from_one_decision() {
        let (_dir, settings, config) = tiny_workspace();
        let defaults = finetune::FineTuneSettings {
            seed: Some(1),
            epochs: Some(2),
            ..Default::default()
        };
        let asked = finetune::FineTuneSettings {
            epochs: Some(3),
            ..Default::default()
        };
        let job_of =
            |engine: &Engine| engine.fine_tune_job(&config.root, &config.dir, &defaults, &asked);
        // The command line's engine resolves the base model without loading it.
        let job = job_of(&Engine::once(settings.clone())).unwrap();
        let base = model::resolve(&settings.model).unwrap();
        assert_eq!(job.model, base.dir.display().to_string());
        assert_eq!(
            (job.root.as_path(), job.index_dir.as_path()),
            (config.root.as_path(), config.dir.as_path())
        );
        assert_eq!((job.settings.seed, job.settings.epochs), (Some(1), Some(3)));
        assert_eq!(job.max_file_size, settings.max_file_size);
        // The language server's engine fine-tunes the model it loaded, the same one.
        let served = Engine::new(settings.clone());
        assert!(matches!(job_of(&served), Err(EngineError::NoModel(_))));
        runtime().block_on(served.load_model()).unwrap();
        assert_eq!(
            format!("{:?}", job_of(&served).unwrap()),
            format!("{job:?}")
        );

        // An adapter chosen explicitly is refused in one message, loaded model or not.
        let explicit = EngineSettings {
            model_options: ModelOptions {
                adapter: Some(PathBuf::from("/somewhere/adapter")),
                ..ModelOptions::default()
            },
            ..settings
        };
        for engine in [Engine::once(explicit.clone()), Engine::new(explicit)] {
            assert_error(
                &job_of(&engine).unwrap_err(),
                |e| matches!(e, EngineError::ExplicitAdapter(_)),
                "leave out --adapter",
            );
        }
    }

    #[test]
    fn retiring_an_adapter_keeps_it_aside_and_says_whether_there_was_one() {
        let (_dir, settings, config) = tiny_workspace();
        let installed = install_adapter(&config.dir, "base");
        let engine = Engine::once(settings);
        assert!(engine.retire_adapter(&config.dir).unwrap());
        assert!(!installed.exists());
        assert!(config.dir.join(finetune::PREVIOUS_ADAPTER_DIR).is_dir());
        assert!(!engine.retire_adapter(&config.dir).unwrap());

        // A failure to put it aside says where, as the fine-tuning module does, not as an
        // internal error (what the language server said before, unlike the command line).
        let previous = config.dir.join(finetune::PREVIOUS_ADAPTER_DIR);
        std::fs::remove_dir_all(&previous).unwrap();
        std::fs::write(&previous, "in the way").unwrap();
        install_adapter(&config.dir, "base");
        assert_error(
            &engine.retire_adapter(&config.dir).unwrap_err(),
            |e| matches!(e, EngineError::FineTune(_)),
            "installing the adapter in",
        );
    }

    #[test]
    fn one_fine_tuning_run_at_a_time_and_a_served_root_only_once_it_is_indexed() {
        let (dir, settings, config) = tiny_workspace();
        let none = finetune::FineTuneSettings::default();
        let engine = Engine::once(settings.clone());
        let start = || engine.start_fine_tune(&config.root, &config.dir, &none, &none);
        let run = start().unwrap();
        assert_eq!(run.job().root, config.root);
        assert_error(
            &start().unwrap_err(),
            |e| matches!(e, EngineError::FineTuneRunning),
            "already in progress",
        );
        // A reset meanwhile would be undone by the run installing its adapter.
        assert_error(
            &engine.retire_adapter(&config.dir).unwrap_err(),
            |e| matches!(e, EngineError::FineTuneRunning),
            "already in progress",
        );
        // Another process (here another engine: the lock is per opening) can neither
        // fine-tune the same index nor reset its adapter while the run holds its lock.
        let other = Engine::once(settings.clone());
        install_adapter(&config.dir, "base");
        for refused in [
            other
                .start_fine_tune(&config.root, &config.dir, &none, &none)
                .map(|_| ())
                .unwrap_err(),
            other.retire_adapter(&config.dir).map(|_| ()).unwrap_err(),
        ] {
            assert_error(
                &refused,
                |e| matches!(e, EngineError::FineTuneElsewhere(_)),
                "another coder-lsp process is fine-tuning",
            );
            assert!(
                refused
                    .to_string()
                    .contains(&config.dir.display().to_string())
            );
        }
        assert!(config.dir.join(finetune::ADAPTER_DIR).is_dir(), "kept");
        drop(run);
        assert!(
            other.retire_adapter(&config.dir).unwrap(),
            "free once the run ends"
        );
        assert!(
            !engine.retire_adapter(&config.dir).unwrap(),
            "no adapter any more"
        );
        let unindexed = dir.path().join("never-indexed");
        assert!(!engine.retire_adapter(&unindexed).unwrap());
        assert!(!unindexed.exists(), "a reset creates no index directory");
        assert!(start().is_ok(), "a run that ended frees the engine's slot");

        // A long-running engine (language server, MCP) fine-tunes a root it serves once its
        // index is complete: the trainer judges the adapter on a copy of it.
        let served = Engine::new(EngineSettings {
            index_dir: Some(dir.path().join("indexes")),
            ..settings
        });
        runtime().block_on(async {
            served.load_model().await.unwrap();
            let root = served.add_root(&config.root).await.unwrap();
            assert_error(
                &served
                    .start_fine_tune_root(&root, &none, &none)
                    .await
                    .unwrap_err(),
                |e| matches!(e, EngineError::NotIndexed { files: 0, .. }),
                "no complete index yet",
            );
            served.index_root(&root, |_| {}).await.unwrap();
            let run = served
                .start_fine_tune_root(&root, &none, &none)
                .await
                .unwrap();
            assert_eq!(run.job().index_dir, root.index_dir());
            assert!(matches!(
                served.start_fine_tune_root(&root, &none, &none).await,
                Err(EngineError::FineTuneRunning)
            ));
        });
    }

    #[test]
    fn a_one_shot_search_syncs_first_and_embeds_after_and_reads_without_a_model() {
        let (_dir, settings, config) = tiny_workspace();
        let engine = Engine::once(settings.clone());
        let model = engine.load_served(&config.dir).unwrap();
        assert!(model.adapter.is_none());
        let root = engine
            .open_once(config.clone(), OneShot::Search, Some(model))
            .unwrap();
        // Without an adapter the model is the engine's, as in a long-running one.
        assert!(engine.model().is_some() && root.own_model().is_none());
        let rt = runtime();
        assert!(rt.block_on(engine.is_writer(&root)).unwrap());
        let synced = rt
            .block_on(engine.update_root(&root, UpdatePart::Files, |_| {}))
            .unwrap();
        assert_eq!((synced.files, synced.embedded), (3, 0));
        assert_eq!(synced.pending, synced.chunks);
        let found = |engine: &Arc<Engine>| {
            rt.block_on(engine.search(
                "parse_config",
                3,
                SearchFilter::default(),
                Ranking::default(),
            ))
            .unwrap()
        };
        // Answered by words before anything is embedded.
        assert_eq!(found(&engine)[0].hit.name, "parse_config");
        let embedded = rt
            .block_on(engine.update_root(&root, UpdatePart::Vectors, |_| {}))
            .unwrap();
        assert_eq!(embedded.embedded as u64, synced.chunks);
        let served = root.index.with(|i| i.served_model()).unwrap().unwrap();
        assert_eq!(
            served.fingerprint,
            engine.model().unwrap().resolved.fingerprint
        );
        drop((root, engine));

        // Another run reads the index as it is: `--no-update`, or no model for lexical search.
        for (run, model) in [
            (
                OneShot::Read,
                Some(model::load(&settings.model, &ModelOptions::default()).unwrap()),
            ),
            (OneShot::Search, None),
        ] {
            let engine = Engine::once(settings.clone());
            let root = engine.open_once(config.clone(), run, model).unwrap();
            assert!(!rt.block_on(engine.is_writer(&root)).unwrap(), "{run:?}");
            assert_eq!(found(&engine)[0].hit.name, "parse_config", "{run:?}");
        }
    }

    /// Regression (issue 22, the CLI beside the engine): `search --no-update --stdin` (or a
    /// search while another process writes) read its vectors once, at opening, so dense ranking
    /// missed what the writer stored afterwards while lexical ranking saw it; the engine's
    /// search, which the language server and MCP use, refreshes a reader's view per query.
    #[test]
    fn regression_22_a_one_shot_reader_ranks_what_a_writer_stored_after_it_opened() {
        let (_dir, settings, config) = tiny_workspace();
        let rt = runtime();
        let index = || {
            let engine = Engine::once(settings.clone());
            let model = engine.load_served(&config.dir).unwrap();
            let root = engine
                .open_once(config.clone(), OneShot::Update, Some(model))
                .unwrap();
            rt.block_on(engine.index_root(&root, |_| {})).unwrap()
        };
        index();
        let reader = Engine::once(settings.clone());
        let model = reader.load_served(&config.dir).unwrap();
        reader
            .open_once(config.clone(), OneShot::Read, Some(model))
            .unwrap();
        std::fs::write(
            config.root.join("d.rs"),
            "pub fn fresh_function() -> u32 {\n    7\n}\n",
        )
        .unwrap();
        assert_eq!(index().changed, 1);
        let hits = rt
            .block_on(reader.search(
                "fresh function",
                50,
                SearchFilter::default(),
                Ranking::mode(SearchMode::Dense),
            ))
            .unwrap();
        assert!(
            hits.iter().any(|h| h.hit.name == "fresh_function"),
            "{hits:?}"
        );
    }

    #[test]
    fn without_an_installed_adapter_the_configured_model_serves() {
        let index = tempfile::tempdir().unwrap();
        let options = ModelOptions::default();
        let served = workspace_model(&options, index.path(), not_asked).unwrap();
        assert_eq!(served, as_configured(&options));
    }

    #[test]
    fn the_adapter_installed_for_the_base_model_serves() {
        let index = tempfile::tempdir().unwrap();
        let dir = install_adapter(index.path(), "base");
        let options = ModelOptions::default();
        let served = workspace_model(&options, index.path(), base_is("base")).unwrap();
        assert_eq!(served.installed.as_ref(), Some(&dir));
        assert_eq!(
            served.options,
            ModelOptions {
                adapter: Some(dir),
                ..options
            }
        );
    }

    #[test]
    fn an_adapter_installed_for_another_base_model_is_passed_over() {
        let index = tempfile::tempdir().unwrap();
        install_adapter(index.path(), "minilm");
        let options = ModelOptions::default();
        let served = workspace_model(&options, index.path(), base_is("qwen")).unwrap();
        assert_eq!(served, as_configured(&options));
    }

    #[test]
    fn an_adapter_chosen_explicitly_serves_instead_of_the_installed_one() {
        let index = tempfile::tempdir().unwrap();
        install_adapter(index.path(), "base");
        let options = ModelOptions {
            adapter: Some(PathBuf::from("/elsewhere/adapter")),
            ..ModelOptions::default()
        };
        let served = workspace_model(&options, index.path(), not_asked).unwrap();
        assert_eq!(served, as_configured(&options));
    }

    #[test]
    fn unreadable_adapter_metadata_and_an_unresolvable_base_are_errors() {
        let index = tempfile::tempdir().unwrap();
        let dir = install_adapter(index.path(), "base");
        let options = ModelOptions::default();
        let unresolvable = || {
            Err(EmbedError::Adapter {
                dir: PathBuf::from("model"),
                message: "not found".into(),
            })
        };
        let err = workspace_model(&options, index.path(), unresolvable).unwrap_err();
        assert!(err.to_string().contains("not found"), "{err}");
        std::fs::write(dir.join(crate::embed::lora::ADAPTER_META), "{").unwrap();
        let err = workspace_model(&options, index.path(), base_is("base")).unwrap_err();
        assert!(err.to_string().contains("invalid"), "{err}");
    }
}
