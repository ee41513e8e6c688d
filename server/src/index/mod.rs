//! The persistent, incremental index of one workspace root.
//!
//! An update walks the root, re-parses only files whose content changed (one store transaction
//! per file), embeds only chunk texts that have no vector for the current model, and keeps the
//! usearch file in step. The SQLite store is the source of truth; the vector file is rebuilt
//! from it whenever it is missing, stale or damaged. A lock file lets one process write;
//! others open the index read-only and serve what is stored.

mod pipeline;
pub mod store;
pub mod vectors;

pub use pipeline::{
    FileSync, IndexAccess, IndexEvent, StagedChunks, UpdatePlan, UpdateStats, chunker_for,
    embed_pending, embed_pending_for, embed_pending_in_file, stage_chunks, sync_files,
    update_shared,
};

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::cache::cache_root;
use crate::chunk::{CHUNK_FORMAT, Chunker};
use crate::embed::{EmbedError, EmbedHandle, InputKind, QueryTask};
pub use crate::model_key::{ModelKey, ServedModel};
use crate::symbols::{Language, SymbolExtractor, rust_doc_includes};
use crate::workspace::{WalkOptions, WorkspaceError};
use store::{IndexStore, StoredChunk};
use vectors::VectorIndex;

/// Errors of the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("index store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("index store {path}: {message}")]
    Store { path: PathBuf, message: String },
    #[error("vector index: {0}")]
    Vectors(String),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("indexing was cancelled")]
    Cancelled,
    #[error(
        "another coder-lsp process is updating the index in {dir}; wait for it to finish (or use the index read-only)"
    )]
    Locked { dir: PathBuf },
}

/// Where an index lives and what it covers.
#[derive(Debug, Clone)]
pub struct IndexConfig {
    /// Canonical workspace root.
    pub root: PathBuf,
    /// Directory holding `store.sqlite`, the vector files and the lock.
    pub dir: PathBuf,
    pub walk: WalkOptions,
}

impl IndexConfig {
    /// The default index location for `root` (canonical): `<cache>/<hash of root>/`.
    pub fn default_dir(root: &Path) -> PathBuf {
        cache_root().join("indexes").join(Self::dir_name(root))
    }

    /// The directory name of a root's index under a base directory: a hash of the canonical
    /// root, so each workspace folder has its own.
    pub fn dir_name(root: &Path) -> String {
        blake3::hash(root.to_string_lossy().as_bytes()).to_hex()[..16].to_string()
    }
}

/// Whether this process may write the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Take the write lock, waiting for another writer to finish.
    WriteWait,
    /// Take the write lock if free, otherwise fall back to read-only.
    WriteOrRead,
    /// Never write.
    ReadOnly,
}

/// Where the vector file of the model with `fingerprint` lives in an index directory (its
/// sidecar and journal beside it).
fn vector_path(dir: &Path, fingerprint: &str) -> PathBuf {
    dir.join(format!("vectors-{fingerprint}.usearch"))
}

/// Removes every model's vector file, sidecar and journal from an index directory.
fn remove_vector_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("vectors-")
            && let Err(e) = fs::remove_file(entry.path())
        {
            tracing::warn!("could not remove {} ({e})", entry.path().display());
        }
    }
}

/// Loads the saved vector index of `model`, or rebuilds it from the store; returns whether it
/// differs from what is saved.
fn open_vectors(
    dir: &Path,
    store: &IndexStore,
    model: &ModelKey,
) -> Result<(VectorIndex, bool), IndexError> {
    let path = vector_path(dir, &model.fingerprint);
    if let Some(v) = VectorIndex::load_if_current(&path, model.dimensions, store.generation()?)? {
        return Ok((v, false));
    }
    let mut v = VectorIndex::new(&path, model.dimensions)?;
    store.for_each_vector(&model.fingerprint, |id, vector| v.upsert(id, &vector))?;
    Ok((v, true))
}

/// A snapshot for `status`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IndexStatus {
    pub root: PathBuf,
    pub index_dir: PathBuf,
    pub files: u64,
    pub chunks: u64,
    /// Chunks that have a vector for the current model.
    pub embedded_chunks: u64,
    /// Distinct vectors stored for the current model.
    pub vectors: u64,
    /// Chunk texts waiting for a vector.
    pub pending: u64,
    pub fingerprint: String,
    /// Length of the current model's vectors (0 when no model was given).
    pub dimensions: usize,
    pub read_only: bool,
    pub store_bytes: u64,
    pub vector_bytes: u64,
    /// Set when this process has not updated the index (another process holds the lock).
    pub notes: Vec<String>,
}

/// The write lock of an index directory, held for the life of the value.
#[derive(Debug)]
struct WriteLock {
    _file: File,
}

impl WriteLock {
    fn acquire(dir: &Path, wait: bool) -> Result<Option<Self>, IndexError> {
        let path = dir.join("lock");
        match crate::files::lock(&path, wait) {
            Ok(file) => Ok(file.map(|file| Self { _file: file })),
            Err(source) => Err(IndexError::Io { path, source }),
        }
    }
}

/// An open index.
pub struct Index {
    config: IndexConfig,
    /// The model whose vectors are served; `None` when no model could be loaded (the store
    /// still answers lexical and name queries).
    model: Option<ModelKey>,
    store: IndexStore,
    vectors: Option<VectorIndex>,
    /// Whether the in-memory vector index differs from the saved file.
    vectors_dirty: bool,
    /// The store generation the in-memory vectors were loaded at (what a reader compares).
    vectors_generation: u64,
    lock: Option<WriteLock>,
    extractor: SymbolExtractor,
    notes: Vec<String>,
    /// [`Index::included_docs`], with the store generation it was read at.
    included_docs: Mutex<Option<(u64, Arc<IncludedDocs>)>>,
}

/// Doc files that Rust items take their docs from (`#[doc = include_str!("…")]`): the file's
/// workspace-relative path → the chunks of the items (or module headers) that include it.
pub type IncludedDocs = std::collections::HashMap<String, Vec<i64>>;

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("root", &self.config.root)
            .field("dir", &self.config.dir)
            .field("read_only", &self.lock.is_none())
            .finish()
    }
}

impl Index {
    /// Opens (creating if needed) the index for `config.root` and the given model.
    pub fn open(
        config: IndexConfig,
        model: Option<ModelKey>,
        access: Access,
    ) -> Result<Self, IndexError> {
        fs::create_dir_all(&config.dir).map_err(|source| IndexError::Io {
            path: config.dir.clone(),
            source,
        })?;
        let lock = match access {
            Access::ReadOnly => None,
            Access::WriteWait => WriteLock::acquire(&config.dir, true)?,
            Access::WriteOrRead => WriteLock::acquire(&config.dir, false)?,
        };
        let mut notes = Vec::new();
        if lock.is_none() && access != Access::ReadOnly {
            notes.push(
                "another process is updating this index; results come from what it has stored so far"
                    .to_string(),
            );
        }
        // A reader never moves a store aside: it belongs to whoever holds the lock.
        let (store, note) = IndexStore::open_as(&config.dir.join("store.sqlite"), lock.is_some())?;
        if note.is_some() {
            // A fresh store counts its generations from the start again: vector files (and
            // their journals) of the old one must not pass for its own.
            remove_vector_files(&config.dir);
        }
        notes.extend(note);
        if lock.is_some() {
            store.set_meta("root", &config.root.to_string_lossy())?;
            if store.meta("chunk_format")?.as_deref() != Some(CHUNK_FORMAT) {
                // Chunks written in another format: every file is re-chunked on the next update.
                // Marked first, so an interrupted update still finishes the job later.
                store.forget_file_contents()?;
                store.set_meta("chunk_format", CHUNK_FORMAT)?;
            }
        }
        let vectors_generation = store.generation()?;
        let (vectors, vectors_dirty) = match &model {
            Some(model) => {
                let (v, dirty) = open_vectors(&config.dir, &store, model)?;
                (Some(v), dirty)
            }
            None => (None, false),
        };
        Ok(Self {
            config,
            model,
            store,
            vectors,
            vectors_dirty,
            vectors_generation,
            lock,
            extractor: SymbolExtractor::new(),
            notes,
            included_docs: Mutex::new(None),
        })
    }

    /// The fingerprint of the model whose vectors are served ("" without a model).
    pub fn fingerprint(&self) -> &str {
        self.model.as_ref().map_or("", |m| m.fingerprint.as_str())
    }

    /// Whether this process holds the write lock.
    pub fn is_writable(&self) -> bool {
        self.lock.is_some()
    }

    /// For a reader (another process holds the write lock): reloads the vector index when the
    /// writer has committed since it was loaded, so dense search sees what the writer stored.
    /// The store itself needs nothing (SQLite reads see every committed transaction). Returns
    /// whether it reloaded; a writer's in-memory view is always current.
    pub fn refresh_view(&mut self) -> Result<bool, IndexError> {
        if self.lock.is_some() {
            return Ok(false);
        }
        let Some(model) = &self.model else {
            return Ok(false);
        };
        let generation = self.store.generation()?;
        if generation == self.vectors_generation {
            return Ok(false);
        }
        // The saved file is current when the writer flushed after its last change; otherwise
        // the vectors are rebuilt in memory from the store (never saved by a reader).
        let (vectors, _) = open_vectors(&self.config.dir, &self.store, model)?;
        self.vectors = Some(vectors);
        self.vectors_dirty = false;
        self.vectors_generation = generation;
        Ok(true)
    }

    /// For a reader: takes the write lock when the process that held it has let go of it (it
    /// ended), so this process keeps the index up to date from now on. Returns whether this
    /// process now writes the index.
    pub fn try_become_writer(&mut self) -> Result<bool, IndexError> {
        if self.lock.is_some() {
            return Ok(true);
        }
        let Some(lock) = WriteLock::acquire(&self.config.dir, false)? else {
            return Ok(false);
        };
        // Catch up with the last writer's commits while still a reader, then write.
        self.refresh_view()?;
        self.lock = Some(lock);
        self.store
            .set_meta("root", &self.config.root.to_string_lossy())?;
        self.notes.retain(|n| !n.starts_with("another process"));
        Ok(true)
    }

    fn require_writer(&self) -> Result<(), IndexError> {
        if self.lock.is_none() {
            return Err(IndexError::Locked {
                dir: self.config.dir.clone(),
            });
        }
        Ok(())
    }

    /// Records that `chunker` cuts this index's files from now on. When the stored chunks were
    /// cut by another (a model with another tokenizer or token limit), every file is marked to
    /// be chunked again on this update, so no chunk is longer than the model reads (a model
    /// would silently drop what lies beyond its limit). Returns whether that happened.
    pub fn use_chunker(&mut self, chunker: &Chunker) -> Result<bool, IndexError> {
        self.require_writer()?;
        let id = chunker.id();
        let stored = self.store.meta("chunker")?;
        if stored.as_deref() == Some(id.as_str()) {
            return Ok(false);
        }
        // Marked first, so an interrupted update still finishes the job later.
        let had_files = self.store.counts(self.fingerprint())?.files > 0;
        if had_files {
            self.store.forget_file_contents()?;
        }
        self.store.set_meta("chunker", &id)?;
        Ok(had_files)
    }

    /// The id of the chunker that cut the stored chunks ([`Chunker::id`]), if recorded.
    pub fn chunker_id(&self) -> Result<Option<String>, IndexError> {
        self.store.meta("chunker")
    }

    /// The model recorded by [`Index::record_served`], if any.
    pub fn served_model(&self) -> Result<Option<ServedModel>, IndexError> {
        let Some(value) = self.store.meta("served_model")? else {
            return Ok(None);
        };
        Ok(serde_json::from_str(&value).ok())
    }

    /// Records `model` as the one to keep serving while another model catches up, when it is
    /// the current model and every chunk has its vector. Returns whether it was recorded.
    pub fn record_served(&self, model: &ServedModel) -> Result<bool, IndexError> {
        if self.lock.is_none()
            || model.fingerprint != self.fingerprint()
            || self.served_model()?.as_ref() == Some(model)
            || self.pending_count()? > 0
        {
            return Ok(false);
        }
        let value = serde_json::to_string(model)
            .map_err(|e| IndexError::Vectors(format!("recording the served model: {e}")))?;
        self.store.set_meta("served_model", &value)?;
        Ok(true)
    }

    /// Removes a file from the index; returns whether it was there.
    pub fn remove_path(&mut self, rel_path: &str) -> Result<bool, IndexError> {
        self.require_writer()?;
        let existed = self.store.file_hash(rel_path)?.is_some();
        let removed = self.store.remove_file(rel_path)?;
        self.apply_change(&removed, &[])?;
        Ok(existed)
    }

    /// How many chunk texts still need a vector.
    pub fn pending_count(&self) -> Result<u64, IndexError> {
        self.store.pending_count(self.fingerprint())
    }

    /// Up to `limit` distinct chunk texts that still need a vector from the current model, in
    /// text hash order after `after` (see [`store::IndexStore::pending_texts_after`]).
    pub fn pending_texts(
        &self,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<([u8; 32], String)>, IndexError> {
        self.store
            .pending_texts_after(self.fingerprint(), after, limit)
    }

    /// Stores freshly computed vectors and adds them to the vector index.
    pub fn store_vectors(&mut self, vectors: &[([u8; 32], Vec<f32>)]) -> Result<(), IndexError> {
        let fingerprint = self.fingerprint().to_string();
        self.store_vectors_for(&fingerprint, vectors)
    }

    /// Stores vectors computed by the model with `fingerprint`; they are served at once when
    /// that is the current model, else kept for when the index switches to it.
    pub fn store_vectors_for(
        &mut self,
        fingerprint: &str,
        vectors: &[([u8; 32], Vec<f32>)],
    ) -> Result<(), IndexError> {
        self.require_writer()?;
        let ids = self.store.insert_vectors(fingerprint, vectors)?;
        if fingerprint == self.fingerprint() {
            self.apply_change(&[], &ids)?;
        }
        Ok(())
    }

    /// Chunk texts still without a vector from the model with `fingerprint`.
    pub fn pending_count_for(&self, fingerprint: &str) -> Result<u64, IndexError> {
        self.store.pending_count(fingerprint)
    }

    /// Serves the vectors of another model from now on (saving the current vector index
    /// first). Chunks the new model has no vector for yet are pending until embedded.
    pub fn switch_model(&mut self, model: ModelKey) -> Result<(), IndexError> {
        if self.model.as_ref() == Some(&model) {
            return Ok(());
        }
        self.save_vectors()?;
        let (vectors, dirty) = open_vectors(&self.config.dir, &self.store, &model)?;
        self.vectors = Some(vectors);
        self.vectors_dirty = dirty;
        self.vectors_generation = self.store.generation()?;
        self.model = Some(model);
        Ok(())
    }

    /// Saves the vector index if it changed (also done when the index is dropped).
    pub fn flush(&mut self) -> Result<(), IndexError> {
        self.save_vectors()
    }

    /// Mirrors a store change into the in-memory vector index.
    fn apply_change(&mut self, removed: &[i64], added: &[i64]) -> Result<(), IndexError> {
        let fingerprint = self.fingerprint().to_string();
        let Some(vectors) = self.vectors.as_mut() else {
            return Ok(());
        };
        for &id in removed {
            vectors.remove(id)?;
        }
        for (id, vector) in self.store.vectors_for_chunks(&fingerprint, added)? {
            vectors.upsert(id, &vector)?;
        }
        if !removed.is_empty() || !added.is_empty() {
            self.vectors_dirty = true;
        }
        Ok(())
    }

    fn save_vectors(&mut self) -> Result<(), IndexError> {
        if let Some(vectors) = &mut self.vectors
            && self.vectors_dirty
            && self.lock.is_some()
        {
            vectors.persist(self.store.generation()?)?;
            self.vectors_dirty = false;
        }
        Ok(())
    }

    /// Whether a chunk has a vector from the current model (a chunk still waiting to be embedded
    /// has none).
    pub fn has_vector(&self, chunk_id: i64) -> bool {
        self.vectors.as_ref().is_some_and(|v| v.contains(chunk_id))
    }

    /// The `k` chunks nearest to `query` (an embedded query) with cosine similarities.
    pub fn nearest(&self, query: &[f32], k: usize) -> Result<Vec<(StoredChunk, f32)>, IndexError> {
        let Some(vectors) = &self.vectors else {
            return Ok(Vec::new());
        };
        let hits = vectors.search(query, k)?;
        let ids: Vec<i64> = hits.iter().map(|h| h.0).collect();
        let mut chunks = self.store.chunks_by_ids(&ids)?;
        let scores: std::collections::HashMap<i64, f32> = hits.into_iter().collect();
        chunks.retain(|c| scores.contains_key(&c.id));
        Ok(chunks
            .into_iter()
            .map(|c| {
                let score = scores.get(&c.id).copied().unwrap_or(0.0);
                (c, score)
            })
            .collect())
    }

    /// Embeds `query` as a query for `task` and returns the nearest chunks (see
    /// [`Index::nearest`]).
    pub fn query(
        &self,
        embedder: &EmbedHandle,
        query: &str,
        task: QueryTask,
        k: usize,
    ) -> Result<Vec<(StoredChunk, f32)>, IndexError> {
        let mut vectors =
            embedder.embed_blocking(vec![query.to_string()], InputKind::Query(task))?;
        let Some(vector) = vectors.pop() else {
            return Ok(Vec::new());
        };
        self.nearest(&vector, k)
    }

    /// The best lexical (BM25) matches for `query` with their BM25 relevance (higher is better;
    /// the magnitudes compare chunks of one query only), best first.
    pub fn lexical(&self, query: &str, k: usize) -> Result<Vec<(StoredChunk, f32)>, IndexError> {
        self.store.lexical_search(query, k)
    }

    /// Symbols whose name fuzzily matches `pattern`.
    pub fn symbols_by_name(&self, pattern: &str, k: usize) -> Result<Vec<StoredChunk>, IndexError> {
        self.store.symbols_by_name(pattern, k)
    }

    /// The workspace-relative paths of every indexed file.
    pub fn file_paths(&self) -> Result<Vec<String>, IndexError> {
        self.store.file_paths()
    }

    /// The current model's vectors of every chunk of one file.
    pub fn vectors_in_file(&self, rel_path: &str) -> Result<Vec<Vec<f32>>, IndexError> {
        self.store.vectors_in_file(self.fingerprint(), rel_path)
    }

    /// Which chunks take their docs from which files ([`IncludedDocs`]); read from the chunks
    /// once per store generation.
    pub fn included_docs(&self) -> Result<Arc<IncludedDocs>, IndexError> {
        let generation = self.store.generation()?;
        let mut cache = self
            .included_docs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((read_at, docs)) = cache.as_ref()
            && *read_at == generation
        {
            return Ok(Arc::clone(docs));
        }
        let mut docs = IncludedDocs::new();
        for (id, path, text) in self
            .store
            .chunks_with_identifier(Language::Rust.name(), "include_str")?
        {
            for target in rust_doc_includes(&path, &text) {
                docs.entry(target).or_default().push(id);
            }
        }
        let docs = Arc::new(docs);
        *cache = Some((generation, Arc::clone(&docs)));
        Ok(docs)
    }

    /// Chunks by id, in the order asked (ids not found are left out).
    pub fn chunks_by_ids(&self, ids: &[i64]) -> Result<Vec<StoredChunk>, IndexError> {
        self.store.chunks_by_ids(ids)
    }

    /// Symbols named exactly `name` (see [`store::IndexStore::symbols_named`]).
    pub fn symbols_named(&self, name: &str, k: usize) -> Result<Vec<StoredChunk>, IndexError> {
        self.store.symbols_named(name, k)
    }

    /// The chunks of one file, in line order.
    pub fn chunks_in_file(&self, rel_path: &str) -> Result<Vec<StoredChunk>, IndexError> {
        self.store.chunks_in_file(rel_path)
    }

    /// The stored vector of a chunk for the current model, if it has one.
    pub fn vector_of(&self, chunk_id: i64) -> Result<Option<Vec<f32>>, IndexError> {
        Ok(self
            .store
            .vectors_for_chunks(self.fingerprint(), &[chunk_id])?
            .pop()
            .map(|(_, v)| v))
    }

    /// How this index walks its root.
    pub fn walk_options(&self) -> &WalkOptions {
        &self.config.walk
    }

    /// The directory holding this index's files.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// The workspace root this index covers.
    pub fn root(&self) -> &Path {
        &self.config.root
    }

    /// Counts and locations for `status`.
    pub fn status(&self) -> Result<IndexStatus, IndexError> {
        let counts = self.store.counts(self.fingerprint())?;
        let size = |p: &Path| fs::metadata(p).map_or(0, |m| m.len());
        let store_path = self.store.path();
        let store_bytes =
            size(store_path) + size(&PathBuf::from(format!("{}-wal", store_path.display())));
        let vectors_file = vector_path(&self.config.dir, self.fingerprint());
        let vector_bytes = size(&vectors_file) + size(&vectors::journal_path(&vectors_file));
        Ok(IndexStatus {
            root: self.config.root.clone(),
            index_dir: self.config.dir.clone(),
            files: counts.files,
            chunks: counts.chunks,
            embedded_chunks: counts.embedded_chunks,
            vectors: counts.vectors,
            pending: self.store.pending_count(self.fingerprint())?,
            fingerprint: self.fingerprint().to_string(),
            dimensions: self.model.as_ref().map_or(0, |m| m.dimensions),
            read_only: self.lock.is_none(),
            store_bytes,
            vector_bytes,
            notes: self.notes.clone(),
        })
    }

    /// Warnings gathered while opening (a store moved aside, another writer active).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        if let Err(e) = self.save_vectors() {
            tracing::warn!("saving the vector index failed: {e}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::cell::RefCell;
    use std::sync::atomic::AtomicBool;

    use super::*;

    fn config(root: &Path, dir: &Path) -> IndexConfig {
        IndexConfig {
            root: root.to_path_buf(),
            dir: dir.to_path_buf(),
            walk: WalkOptions::default(),
        }
    }

    fn load(dir: &Path) -> crate::model::LoadedModel {
        crate::model::load(
            &dir.to_string_lossy(),
            &crate::model::ModelOptions::default(),
        )
        .unwrap()
    }

    /// The tiny random-weight checkpoint in `testdata/`: these tests need a model's tokenizer
    /// and vectors, not its judgement, so they run without the MiniLM download.
    fn test_model() -> crate::model::LoadedModel {
        load(&crate::embed::tiny_qwen2_dir())
    }

    fn names(hits: &[(StoredChunk, f32)]) -> Vec<String> {
        hits.iter().map(|(c, _)| c.name.clone()).collect()
    }

    /// A workspace `repo/` with one file `a.rs` holding `add`, indexed by a writer into `index/`.
    fn indexed_add() -> (
        crate::model::LoadedModel,
        tempfile::TempDir,
        PathBuf,
        PathBuf,
        Index,
    ) {
        let (model, tmp) = (test_model(), tempfile::tempdir().unwrap());
        let (root, dir) = (tmp.path().join("repo"), tmp.path().join("index"));
        fs::create_dir_all(&root).unwrap();
        fs::write(
            root.join("a.rs"),
            "fn add(a: i32, b: i32) -> i32 { a + b }\n",
        )
        .unwrap();
        let mut writer =
            Index::open(config(&root, &dir), Some(model.key()), Access::WriteWait).unwrap();
        writer.update(&model.handle, &mut |_| {}).unwrap();
        (model, tmp, root, dir, writer)
    }

    #[test]
    fn a_reader_sees_what_the_writer_commits_after_it_opened() {
        let (model, _tmp, root, dir, mut writer) = indexed_add();

        // Same directory, lock taken: this one falls back to reading.
        let mut reader =
            Index::open(config(&root, &dir), Some(model.key()), Access::WriteOrRead).unwrap();
        assert!(!reader.is_writable());
        assert!(!reader.refresh_view().unwrap(), "nothing committed since");

        fs::write(
            root.join("b.rs"),
            "/// Sends an email to every user.\nfn notify_users_by_email() {}\n",
        )
        .unwrap();
        writer.update(&model.handle, &mut |_| {}).unwrap();
        let before = reader
            .query(
                &model.handle,
                "send an email to the users",
                QueryTask::CodeSearch,
                5,
            )
            .unwrap();
        assert!(!names(&before).contains(&"notify_users_by_email".to_string()));
        assert!(reader.refresh_view().unwrap());
        // Every chunk is among 5 results: the new one is found once the view is refreshed.
        let after = reader
            .query(
                &model.handle,
                "send an email to the users",
                QueryTask::CodeSearch,
                5,
            )
            .unwrap();
        assert!(
            names(&after).contains(&"notify_users_by_email".to_string()),
            "{:?}",
            names(&after)
        );
        // The writer's refresh is a no-op: its view is always current.
        assert!(!writer.refresh_view().unwrap());

        // While the writer lives the reader stays a reader; once it is gone, it takes over.
        assert!(!reader.try_become_writer().unwrap());
        drop(writer);
        assert!(reader.try_become_writer().unwrap());
        assert!(reader.is_writable() && reader.notes().is_empty());
        fs::remove_file(root.join("a.rs")).unwrap();
        let stats = reader.update(&model.handle, &mut |_| {}).unwrap();
        assert_eq!((stats.removed, stats.files), (1, 1));
    }

    #[test]
    fn chunks_cut_for_another_tokenizer_or_limit_are_cut_again() {
        let (model, tmp) = (test_model(), tempfile::tempdir().unwrap());
        let (root, dir) = (tmp.path().join("repo"), tmp.path().join("index"));
        fs::create_dir_all(&root).unwrap();
        let body: String = (0..40)
            .map(|i| format!("    let value_{i} = compute_something({i}) + offset;\n"))
            .collect();
        fs::write(
            root.join("long.rs"),
            format!("fn long_one() {{\n{body}}}\n"),
        )
        .unwrap();
        let mut index =
            Index::open(config(&root, &dir), Some(model.key()), Access::WriteWait).unwrap();
        let first = index.update(&model.handle, &mut |_| {}).unwrap();
        assert_eq!(first.changed, 1);
        let again = index.update(&model.handle, &mut |_| {}).unwrap();
        assert_eq!(
            (again.changed, again.embedded),
            (0, 0),
            "same chunker: nothing to do"
        );

        // A model with a smaller limit (another tokenizer alike): every file is cut again,
        // though no file changed, and no chunk is longer than the new limit.
        let small = crate::embed::chunker(model.handle.tokenizer(), 40);
        assert_ne!(
            small.id(),
            crate::embed::chunker(model.handle.tokenizer(), 256).id()
        );
        assert!(index.use_chunker(&small).unwrap());
        assert!(!index.use_chunker(&small).unwrap(), "recorded");
        let plan = index.plan_update().unwrap();
        assert_eq!(plan.to_check.len(), 1);
        let synced = index.sync_file(&plan.to_check[0], &small).unwrap();
        assert!(matches!(synced, FileSync::Changed { .. }), "{synced:?}");
        let chunks = index.store.counts(index.fingerprint()).unwrap().chunks;
        assert!(
            chunks > first.chunks,
            "{chunks} chunks, before {}",
            first.chunks
        );

        // Back to the model's own chunker: cut again, to what it was.
        let back = index.update(&model.handle, &mut |_| {}).unwrap();
        assert_eq!((back.changed, back.chunks), (1, first.chunks));
    }

    #[test]
    fn a_model_with_other_chunks_is_staged_beside_the_served_one_then_adopted_at_once() {
        // Two real tokenizers that cut chunks differently.
        let (bert, tmp) = (
            load(&crate::embed::tiny_bert_dir()),
            tempfile::tempdir().unwrap(),
        );
        let qwen = test_model();
        let (root, dir) = (tmp.path().join("repo"), tmp.path().join("index"));
        fs::create_dir_all(&root).unwrap();
        fs::write(
            root.join("mail.rs"),
            "/// Sends an email to every user.\nfn notify_users_by_email() {}\n",
        )
        .unwrap();
        fs::write(
            root.join("math.rs"),
            "/// Adds two numbers.\nfn add(a: i32, b: i32) -> i32 { a + b }\n",
        )
        .unwrap();
        let mut index =
            Index::open(config(&root, &dir), Some(bert.key()), Access::WriteWait).unwrap();
        index.update(&bert.handle, &mut |_| {}).unwrap();
        assert!(index.record_served(&bert.served()).unwrap());
        assert_eq!(index.served_model().unwrap(), Some(bert.served()));
        let served_chunker = index.chunker_id().unwrap();
        let qwen_chunker = chunker_for(&qwen.handle);
        assert_ne!(served_chunker.as_deref(), Some(qwen_chunker.id().as_str()));

        // Staging cuts and embeds for the new model; the index still serves the old one.
        let fingerprint = qwen.resolved.fingerprint.clone();
        let mut events = Vec::new();
        let staged = stage_chunks(
            &RefCell::new(&mut index),
            &qwen_chunker,
            &qwen.handle,
            &fingerprint,
            &mut |e| events.push(e),
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(staged.embedded, 2, "{events:?}");
        assert_eq!(index.fingerprint(), bert.resolved.fingerprint);
        assert_eq!(index.chunker_id().unwrap(), served_chunker);
        assert_eq!(index.pending_count().unwrap(), 0);
        // Queries still run against BERT's vectors (32 dimensions, Qwen2 has 64).
        assert_eq!(index.status().unwrap().dimensions, 32);
        let hits = index
            .query(&bert.handle, "send mail to users", QueryTask::CodeSearch, 5)
            .unwrap();
        assert_eq!(hits.len(), 2);
        assert!(
            !index.record_served(&qwen.served()).unwrap(),
            "not serving it yet"
        );

        // A file edited after staging is left to the update that follows the switch.
        fs::write(
            root.join("math.rs"),
            "/// Multiplies two numbers.\nfn mul(a: i32, b: i32) -> i32 { a * b }\n",
        )
        .unwrap();
        assert_eq!(index.adopt_staged(qwen.key(), staged).unwrap(), 1);
        assert_eq!(index.fingerprint(), qwen.resolved.fingerprint);
        assert_eq!(index.chunker_id().unwrap(), Some(qwen_chunker.id()));
        assert_eq!(index.status().unwrap().dimensions, 64);
        let after = index.update(&qwen.handle, &mut |_| {}).unwrap();
        assert_eq!((after.changed, after.embedded, after.pending), (1, 1, 0));
        assert_eq!(index.chunks_in_file("math.rs").unwrap()[0].name, "mul");
        assert!(index.record_served(&qwen.served()).unwrap());

        // Back to BERT: its vectors are still cached, only the edited file is embedded.
        let staged = stage_chunks(
            &RefCell::new(&mut index),
            &chunker_for(&bert.handle),
            &bert.handle,
            &bert.resolved.fingerprint,
            &mut |_| {},
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(
            staged.embedded, 1,
            "only the edited file's chunk is new to BERT"
        );
        let err = index.adopt_staged(qwen.key(), staged).unwrap_err();
        assert!(err.to_string().contains("cannot be served with"), "{err}");
        assert_eq!(
            index.fingerprint(),
            qwen.resolved.fingerprint,
            "nothing changed"
        );
    }

    #[test]
    fn an_edit_is_journaled_and_a_store_moved_aside_takes_the_vector_files_along() {
        let (model, _tmp, root, dir, mut writer) = indexed_add();
        writer.flush().unwrap();
        let file = vector_path(&dir, &model.key().fingerprint);
        let journal = vectors::journal_path(&file);
        assert!(
            file.exists() && !journal.exists(),
            "the first save is whole"
        );
        let saved = fs::read(&file).unwrap();

        fs::write(
            root.join("a.rs"),
            "fn sub(a: i32, b: i32) -> i32 { a - b }\n",
        )
        .unwrap();
        writer.update(&model.handle, &mut |_| {}).unwrap();
        writer.flush().unwrap();
        assert_eq!(
            fs::read(&file).unwrap(),
            saved,
            "an edit is not a whole save"
        );
        assert!(journal.exists());
        // The file and its journal are the store's current state: nothing to rebuild.
        let (vectors, rebuilt) = open_vectors(&dir, &writer.store, &model.key()).unwrap();
        assert!(!rebuilt);
        assert_eq!(vectors.len(), 1);
        let found = writer
            .query(
                &model.handle,
                "subtract two numbers",
                QueryTask::CodeSearch,
                1,
            )
            .unwrap();
        assert_eq!(names(&found), vec!["sub"]);
        drop(writer);

        // A store that has to be moved aside starts its generations again: the old vector
        // files and journal go with it.
        for side in ["store.sqlite-wal", "store.sqlite-shm"] {
            let _ = fs::remove_file(dir.join(side));
        }
        fs::write(dir.join("store.sqlite"), b"not a sqlite file".repeat(100)).unwrap();
        let reopened =
            Index::open(config(&root, &dir), Some(model.key()), Access::WriteWait).unwrap();
        assert!(
            reopened.notes().iter().any(|n| n.contains("moved")),
            "{:?}",
            reopened.notes()
        );
        assert!(!journal.exists());
        assert_ne!(fs::read(&file).ok(), Some(saved));
    }

    #[test]
    fn a_reader_never_moves_the_store_aside() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, dir) = (tmp.path().join("repo"), tmp.path().join("index"));
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&dir).unwrap();
        let store = dir.join("store.sqlite");
        fs::write(&store, b"not a sqlite file".repeat(100)).unwrap();
        let err = Index::open(config(&root, &dir), None, Access::ReadOnly).unwrap_err();
        assert!(err.to_string().contains("coder-lsp index"), "{err}");
        assert_eq!(fs::read(&store).unwrap(), b"not a sqlite file".repeat(100));
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "nothing moved aside"
        );
    }
}
