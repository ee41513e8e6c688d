//! The indexing pipeline: walking the root, cutting changed files into chunks, embedding the
//! texts that have no vector yet, and staging another model's chunks ahead of a switch. The
//! storage it writes to (the SQLite store, the vector file, the write lock) is [`super::Index`]
//! and its submodules; this module only decides what to store, taking the index for short steps
//! so that queries are answered in between.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::store::FileRecord;
use super::{Index, IndexError, ModelKey};
use crate::chunk::{Chunk, Chunker, chunks_for_file};
use crate::embed::{EmbedHandle, InputKind};
use crate::symbols::{Language, SymbolExtractor};
use crate::workspace::{self, SkipReason, WorkspaceFile};

/// How many chunk texts are sent to the model per request (progress is reported per request).
const EMBED_REQUEST_SIZE: usize = 256;

/// Files an update reads and cuts at once, in parallel and without the index, before storing
/// them under it; progress and cancellation are checked per batch.
const CUT_BATCH: usize = 32;

thread_local! {
    /// The parsers of each thread that cuts files (a grammar's query is compiled once per thread
    /// and language, on first use).
    static EXTRACTOR: RefCell<SymbolExtractor> = RefCell::new(SymbolExtractor::new());
}

/// A file cut by another model's chunker, ahead of a switch to that model.
#[derive(Debug)]
struct StagedFile {
    file: WorkspaceFile,
    hash: [u8; 32],
    chunks: Vec<Chunk>,
}

/// The root's files cut by the chunker of a model the index is about to switch to, with that
/// model's vectors already stored ([`stage_chunks`]); [`Index::adopt_staged`] installs them.
#[derive(Debug)]
pub struct StagedChunks {
    chunker: String,
    fingerprint: String,
    files: Vec<StagedFile>,
    /// Chunk texts embedded while staging.
    pub embedded: usize,
}

/// Progress of an update, for bars and `$/progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexEvent {
    Scanned { files: usize },
    Parsing { done: usize, total: usize },
    Embedding { done: usize, total: usize },
    Finished,
}

/// What one update did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct UpdateStats {
    /// Files in the index after the update.
    pub files: u64,
    /// Chunks in the index after the update.
    pub chunks: u64,
    /// Files whose content changed and were re-parsed.
    pub changed: usize,
    /// Files removed from the index.
    pub removed: usize,
    /// Files left out (binary, too large, minified, unreadable).
    pub skipped: usize,
    /// Chunk texts embedded by the model in this run.
    pub embedded: usize,
    /// Chunks of changed files whose vector came from the embedding cache.
    pub reused: usize,
    /// Chunk texts still without a vector.
    pub pending: u64,
    pub seconds: f64,
}

/// What [`Index::plan_update`] found.
#[derive(Debug, Clone, Default)]
pub struct UpdatePlan {
    /// Files that are new or whose size or mtime changed.
    pub to_check: Vec<WorkspaceFile>,
    /// Stored files that are no longer in the workspace.
    pub removed: Vec<String>,
    /// Files the walk left out (too large).
    pub skipped: usize,
    /// Files in the workspace.
    pub total_files: usize,
}

impl UpdateStats {
    /// Counts one file's outcome.
    fn count(&mut self, outcome: FileSync) {
        match outcome {
            FileSync::Unchanged => {}
            FileSync::Changed { reused } => {
                self.changed += 1;
                self.reused += reused;
            }
            FileSync::Skipped => self.skipped += 1,
        }
    }
}

/// Where syncing a file stands once its text is known: done, or to be cut and stored.
enum Settled {
    Done(FileSync),
    /// The content (hash `hash`) differs from the stored one (`stored`, when there is one).
    Cut {
        hash: [u8; 32],
        stored: Option<[u8; 32]>,
    },
}

/// A file's identity and stat, as stored beside its chunks.
struct FileFacts<'a> {
    rel_path: &'a str,
    language: Language,
    size: u64,
    mtime_ns: i64,
}

impl<'a> From<&'a WorkspaceFile> for FileFacts<'a> {
    fn from(file: &'a WorkspaceFile) -> Self {
        FileFacts {
            rel_path: &file.rel_path,
            language: file.language,
            size: file.size,
            mtime_ns: file.mtime_ns,
        }
    }
}

/// The outcome of syncing one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileSync {
    /// Same content as stored (only its size/mtime were refreshed).
    Unchanged,
    /// New content stored; `reused` chunks already had a vector.
    Changed { reused: usize },
    /// Not indexable now (binary, minified, unreadable, unparsable).
    Skipped,
}

/// Something that hands out exclusive access to an [`Index`] for a moment: a `Mutex` when
/// requests are served while indexing runs, a `RefCell` for a single-threaded CLI run.
pub trait IndexAccess {
    fn with<R>(&self, f: impl FnOnce(&mut Index) -> R) -> R;
}

impl IndexAccess for Mutex<Index> {
    fn with<R>(&self, f: impl FnOnce(&mut Index) -> R) -> R {
        // A panic in another holder leaves the index usable: every store change is a transaction.
        let mut guard = self
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}

impl IndexAccess for RefCell<&mut Index> {
    fn with<R>(&self, f: impl FnOnce(&mut Index) -> R) -> R {
        f(&mut self.borrow_mut())
    }
}

/// Brings an index up to date, taking the index only for short steps so that queries can be
/// answered in between; the model runs while the index is free. Stops early with
/// [`IndexError::Cancelled`] when `cancel` is set (what was done so far is kept).
pub fn update_shared(
    index: &impl IndexAccess,
    embedder: &EmbedHandle,
    progress: &mut dyn FnMut(IndexEvent),
    cancel: &AtomicBool,
) -> Result<UpdateStats, IndexError> {
    let started = Instant::now();
    let mut stats = sync_changed_files(index, embedder, progress, cancel)?;
    stats.embedded = embed_pending(index, embedder, progress, cancel)?;
    finish_counts(index, &mut stats)?;
    stats.seconds = started.elapsed().as_secs_f64();
    progress(IndexEvent::Finished);
    Ok(stats)
}

/// The first half of [`update_shared`]: the stored files follow the disk (changed files cut
/// again, removed ones dropped), without embedding anything. Lexical search is then complete;
/// `pending` says how many chunk texts still wait for the model ([`embed_pending`]).
pub fn sync_files(
    index: &impl IndexAccess,
    embedder: &EmbedHandle,
    progress: &mut dyn FnMut(IndexEvent),
    cancel: &AtomicBool,
) -> Result<UpdateStats, IndexError> {
    let started = Instant::now();
    let mut stats = sync_changed_files(index, embedder, progress, cancel)?;
    finish_counts(index, &mut stats)?;
    stats.seconds = started.elapsed().as_secs_f64();
    Ok(stats)
}

/// Cuts changed files and drops removed ones; the vectors are saved and the counts filled in
/// by the caller, once, after whatever follows (an update saves them after embedding).
fn sync_changed_files(
    index: &impl IndexAccess,
    embedder: &EmbedHandle,
    progress: &mut dyn FnMut(IndexEvent),
    cancel: &AtomicBool,
) -> Result<UpdateStats, IndexError> {
    let chunker = chunker_for(embedder);
    if index.with(|i| i.use_chunker(&chunker))? {
        tracing::info!(
            "the stored chunks were cut for another tokenizer or token limit: every file is chunked again"
        );
    }
    let plan = index.with(|i| i.plan_update())?;
    progress(IndexEvent::Scanned {
        files: plan.total_files,
    });
    let mut stats = UpdateStats {
        skipped: plan.skipped,
        ..UpdateStats::default()
    };
    let total = plan.to_check.len();
    let max_file_size = index.with(|i| i.config.walk.max_file_size);
    for (b, batch) in plan.to_check.chunks(CUT_BATCH).enumerate() {
        if cancel.load(Ordering::Relaxed) {
            index.with(|i| i.flush())?;
            return Err(IndexError::Cancelled);
        }
        progress(IndexEvent::Parsing {
            done: b * CUT_BATCH,
            total,
        });
        // Read on every core, decide under the index which files changed, cut those on every
        // core, and store them under the index: one file at a time on one core left the other
        // idle while a cold index was parsed.
        let reads: Vec<Result<String, SkipReason>> = batch
            .par_iter()
            .map(|file| workspace::read_text(&file.abs_path, max_file_size))
            .collect();
        let settled = index.with(|i| {
            i.require_writer()?;
            batch
                .iter()
                .zip(&reads)
                .map(|(file, read)| i.settle_read(file, read))
                .collect::<Result<Vec<_>, IndexError>>()
        })?;
        let cuts: Vec<Option<Vec<Chunk>>> = batch
            .par_iter()
            .zip(&reads)
            .zip(&settled)
            .map(|((file, read), settled)| match (settled, read) {
                (Settled::Cut { .. }, Ok(text)) => EXTRACTOR.with_borrow_mut(|extractor| {
                    cut_file(extractor, &file.rel_path, file.language, text, &chunker)
                }),
                _ => None,
            })
            .collect();
        index.with(|i| -> Result<(), IndexError> {
            for ((file, settled), chunks) in batch.iter().zip(settled).zip(cuts) {
                let outcome = match settled {
                    Settled::Done(outcome) => outcome,
                    Settled::Cut { hash, stored } => {
                        i.store_cut(&file.into(), hash, stored, chunks)?
                    }
                };
                stats.count(outcome);
            }
            Ok(())
        })?;
    }
    progress(IndexEvent::Parsing { done: total, total });
    for path in &plan.removed {
        if index.with(|i| i.remove_path(path))? {
            stats.removed += 1;
        }
    }
    Ok(stats)
}

/// Saves the vectors and fills in the counts after an update step.
fn finish_counts(index: &impl IndexAccess, stats: &mut UpdateStats) -> Result<(), IndexError> {
    index.with(|i| -> Result<(), IndexError> {
        i.flush()?;
        // Not `counts`: its embedding coverage reads every chunk, and is not reported here.
        (stats.files, stats.chunks) = i.store.file_and_chunk_counts()?;
        stats.pending = i.pending_count()?;
        Ok(())
    })
}

/// Embeds every chunk text without a vector for the index's current model, a request at a
/// time; the index is free while the model runs. Returns how many texts were embedded.
pub fn embed_pending(
    index: &impl IndexAccess,
    embedder: &EmbedHandle,
    progress: &mut dyn FnMut(IndexEvent),
    cancel: &AtomicBool,
) -> Result<usize, IndexError> {
    embed_pending_for(index, embedder, None, progress, cancel)
}

/// [`embed_pending`] for the model with fingerprint `target` (`None`: the index's current
/// model). Vectors for another model are only stored, not served, until the index switches
/// to that model ([`Index::switch_model`]): this is how a new model catches up in the
/// background while the current one keeps answering.
pub fn embed_pending_for(
    index: &impl IndexAccess,
    embedder: &EmbedHandle,
    target: Option<&str>,
    progress: &mut dyn FnMut(IndexEvent),
    cancel: &AtomicBool,
) -> Result<usize, IndexError> {
    let fingerprint =
        |i: &Index| target.map_or_else(|| i.fingerprint().to_string(), str::to_string);
    let fetch = |after: Option<&[u8; 32]>| {
        index.with(|i| {
            let fp = fingerprint(i);
            i.store
                .pending_texts_after(&fp, after, EMBED_REQUEST_SIZE)
                .map(|pending| (pending, fp))
        })
    };
    let mut next = Some(fetch(None)?);
    // Counting the pending texts (for progress) reads the whole index: only when there are some.
    let total = match &next {
        Some((pending, _)) if !pending.is_empty() => {
            index.with(|i| i.store.pending_count(&fingerprint(i)))? as usize
        }
        _ => 0,
    };
    let mut done = 0;
    progress(IndexEvent::Embedding { done, total });
    // Texts are taken in hash order from where the last request ended; when that reaches the
    // end, one more pass from the start picks up texts stored behind it meanwhile (an edit).
    let mut after: Option<[u8; 32]> = None;
    loop {
        if cancel.load(Ordering::Relaxed) {
            index.with(|i| i.flush())?;
            return Err(IndexError::Cancelled);
        }
        let (pending, fp) = match next.take() {
            Some(batch) => batch,
            None => fetch(after.as_ref())?,
        };
        let Some(&(last, _)) = pending.last() else {
            if after.take().is_some() {
                continue;
            }
            break;
        };
        after = Some(last);
        embed_and_store(
            index,
            embedder,
            &fp,
            pending.iter().map(|(h, t)| (*h, t.as_str())),
        )?;
        done += pending.len();
        progress(IndexEvent::Embedding {
            done,
            total: total.max(done),
        });
    }
    Ok(done)
}

/// Embeds the chunk texts of one file that have no vector for the index's current model: what
/// an edit of that file needs before it is searchable by meaning. Unlike [`embed_pending`] it
/// never looks at the rest of the index, so its cost does not grow with the workspace (texts
/// pending elsewhere are left to the next update). Returns how many texts were embedded.
pub fn embed_pending_in_file(
    index: &impl IndexAccess,
    embedder: &EmbedHandle,
    rel_path: &str,
) -> Result<usize, IndexError> {
    let (pending, fingerprint) = index.with(|i| {
        let fingerprint = i.fingerprint().to_string();
        i.store
            .pending_texts_in_file(&fingerprint, rel_path)
            .map(|pending| (pending, fingerprint))
    })?;
    for batch in pending.chunks(EMBED_REQUEST_SIZE) {
        embed_and_store(
            index,
            embedder,
            &fingerprint,
            batch.iter().map(|(h, t)| (*h, t.as_str())),
        )?;
    }
    Ok(pending.len())
}

/// Embeds chunk texts as documents and stores their vectors under `fingerprint`.
fn embed_and_store<'a>(
    index: &impl IndexAccess,
    embedder: &EmbedHandle,
    fingerprint: &str,
    texts: impl Iterator<Item = ([u8; 32], &'a str)>,
) -> Result<(), IndexError> {
    let (hashes, texts): (Vec<[u8; 32]>, Vec<String>) =
        texts.map(|(hash, text)| (hash, text.to_string())).unzip();
    let vectors = embedder.embed_blocking(texts, InputKind::Document)?;
    let pairs: Vec<([u8; 32], Vec<f32>)> = hashes.into_iter().zip(vectors).collect();
    index.with(|i| i.store_vectors_for(fingerprint, &pairs))
}

/// How `embedder`'s model cuts files into chunks.
pub fn chunker_for(embedder: &EmbedHandle) -> Chunker {
    crate::embed::chunker(embedder.tokenizer(), embedder.info().max_tokens)
}

/// Extracts the symbols of `text` and cuts them into chunks; `None` when the file cannot be
/// parsed (it is then skipped).
fn cut_file(
    extractor: &mut SymbolExtractor,
    rel_path: &str,
    language: Language,
    text: &str,
    chunker: &Chunker,
) -> Option<Vec<Chunk>> {
    match extractor.extract_file(language, rel_path, text) {
        Ok(symbols) => Some(chunks_for_file(
            rel_path,
            language,
            &symbols,
            chunker.tokenizer.as_ref(),
            chunker.max_tokens,
        )),
        Err(err) => {
            tracing::warn!("skipping {rel_path}: symbols could not be extracted ({err})");
            None
        }
    }
}

/// Prepares a switch to a model whose chunker differs from the one that cut the stored chunks
/// (another tokenizer or token limit): every file of the root is cut with `chunker`, and each
/// resulting text without a vector from `embedder` (fingerprint `target`) is embedded and
/// stored. The stored chunks and the vectors they are served with stay as they are, so the
/// current model keeps answering meanwhile; the index is taken only for short steps.
/// [`Index::adopt_staged`] then installs the new chunks at once.
pub fn stage_chunks(
    index: &impl IndexAccess,
    chunker: &Chunker,
    embedder: &EmbedHandle,
    target: &str,
    progress: &mut dyn FnMut(IndexEvent),
    cancel: &AtomicBool,
) -> Result<StagedChunks, IndexError> {
    let (root, walk) = index.with(|i| {
        i.require_writer()
            .map(|()| (i.config.root.clone(), i.config.walk.clone()))
    })?;
    let report = workspace::walk(&root, &walk)?;
    let total = report.files.len();
    progress(IndexEvent::Scanned { files: total });
    let mut extractor = SymbolExtractor::new();
    let mut files = Vec::with_capacity(total);
    for (done, file) in report.files.into_iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(IndexError::Cancelled);
        }
        if done % 16 == 0 {
            progress(IndexEvent::Parsing { done, total });
        }
        // What cannot be read or cut now is left to the update that follows the switch.
        let Ok(text) = workspace::read_text(&file.abs_path, walk.max_file_size) else {
            continue;
        };
        let Some(chunks) = cut_file(
            &mut extractor,
            &file.rel_path,
            file.language,
            &text,
            chunker,
        ) else {
            continue;
        };
        files.push(StagedFile {
            hash: workspace::content_hash(&text),
            file,
            chunks,
        });
    }
    progress(IndexEvent::Parsing { done: total, total });
    let mut texts: std::collections::HashMap<[u8; 32], &str> = std::collections::HashMap::new();
    let mut hashes = Vec::new();
    for chunk in files.iter().flat_map(|f| &f.chunks) {
        if texts.insert(chunk.text_hash, &chunk.text).is_none() {
            hashes.push(chunk.text_hash);
        }
    }
    let missing = index.with(|i| i.store.missing_vectors(target, &hashes))?;
    let total = missing.len();
    progress(IndexEvent::Embedding { done: 0, total });
    for (n, batch) in missing.chunks(EMBED_REQUEST_SIZE).enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(IndexError::Cancelled);
        }
        let with_texts = batch
            .iter()
            .map(|hash| (*hash, texts.get(hash).copied().unwrap_or_default()));
        embed_and_store(index, embedder, target, with_texts)?;
        progress(IndexEvent::Embedding {
            done: (n * EMBED_REQUEST_SIZE + batch.len()),
            total,
        });
    }
    Ok(StagedChunks {
        chunker: chunker.id(),
        fingerprint: target.to_string(),
        files,
        embedded: total,
    })
}

/// The pipeline steps that change the index, one file or one model switch at a time.
impl Index {
    /// Brings the index up to date with the files on disk and the model.
    pub fn update(
        &mut self,
        embedder: &EmbedHandle,
        progress: &mut dyn FnMut(IndexEvent),
    ) -> Result<UpdateStats, IndexError> {
        update_shared(
            &RefCell::new(self),
            embedder,
            progress,
            &AtomicBool::new(false),
        )
    }

    /// Walks the root and compares with the store: which files may have changed, which are gone.
    /// Cheap (no file is read); the caller then syncs each file with [`Index::sync_file`].
    pub fn plan_update(&self) -> Result<UpdatePlan, IndexError> {
        self.require_writer()?;
        let report = workspace::walk(&self.config.root, &self.config.walk)?;
        for skipped in &report.skipped {
            tracing::info!("skipping {}: {}", skipped.rel_path, skipped.reason);
        }
        let known = self.store.file_states()?;
        let walked: HashSet<String> = report.files.iter().map(|f| f.rel_path.clone()).collect();
        let removed = known
            .keys()
            .filter(|p| !walked.contains(p.as_str()))
            .cloned()
            .collect();
        let to_check = report
            .files
            .into_iter()
            .filter(|f| {
                known
                    .get(&f.rel_path)
                    .is_none_or(|p| p.size != f.size || p.mtime_ns != f.mtime_ns)
            })
            .collect();
        Ok(UpdatePlan {
            to_check,
            removed,
            skipped: report.skipped.len(),
            total_files: walked.len(),
        })
    }

    /// Reads one file from disk and stores its chunks if its content changed.
    pub fn sync_file(
        &mut self,
        file: &WorkspaceFile,
        chunker: &Chunker,
    ) -> Result<FileSync, IndexError> {
        self.require_writer()?;
        match workspace::read_text(&file.abs_path, self.config.walk.max_file_size) {
            Ok(text) => self.sync_text(
                &file.rel_path,
                file.language,
                &text,
                file.size,
                file.mtime_ns,
                chunker,
            ),
            Err(reason) => self.refuse(file, &reason),
        }
    }

    /// Stores the chunks of `text` as the content of `rel_path` (from disk or an editor buffer),
    /// unless the stored content is already identical.
    pub fn sync_text(
        &mut self,
        rel_path: &str,
        language: Language,
        text: &str,
        size: u64,
        mtime_ns: i64,
        chunker: &Chunker,
    ) -> Result<FileSync, IndexError> {
        self.require_writer()?;
        let facts = FileFacts {
            rel_path,
            language,
            size,
            mtime_ns,
        };
        match self.settle_text(&facts, text)? {
            Settled::Done(outcome) => Ok(outcome),
            Settled::Cut { hash, stored } => {
                let chunks = cut_file(&mut self.extractor, rel_path, language, text, chunker);
                self.store_cut(&facts, hash, stored, chunks)
            }
        }
    }

    /// Handles a file read from disk up to its cut ([`Index::refuse`] when it was not read; one
    /// whose content is stored already only gets its size and mtime refreshed).
    fn settle_read(
        &mut self,
        file: &WorkspaceFile,
        read: &Result<String, SkipReason>,
    ) -> Result<Settled, IndexError> {
        match read {
            Ok(text) => self.settle_text(&file.into(), text),
            Err(reason) => self.refuse(file, reason).map(Settled::Done),
        }
    }

    /// A file that could not be read (it keeps its last indexed version) or was refused
    /// (binary, minified, too large: it leaves the index).
    fn refuse(
        &mut self,
        file: &WorkspaceFile,
        reason: &SkipReason,
    ) -> Result<FileSync, IndexError> {
        if let SkipReason::Unreadable(why) = reason {
            tracing::warn!("cannot read {}: {why}", file.rel_path);
        } else {
            tracing::info!("skipping {}: {reason}", file.rel_path);
            let removed = self.store.remove_file(&file.rel_path)?;
            self.apply_change(&removed, &[])?;
        }
        Ok(FileSync::Skipped)
    }

    /// [`Index::settle_read`] for a text in hand.
    fn settle_text(&mut self, facts: &FileFacts<'_>, text: &str) -> Result<Settled, IndexError> {
        let hash = workspace::content_hash(text);
        let stored = self.store.file_hash(facts.rel_path)?;
        if stored == Some(hash) {
            self.store
                .touch_file(facts.rel_path, facts.size, facts.mtime_ns)?;
            return Ok(Settled::Done(FileSync::Unchanged));
        }
        Ok(Settled::Cut { hash, stored })
    }

    /// Stores the chunks cut from a changed file (`None`: it could not be parsed, and is
    /// skipped). `stored` is the content hash the file had when it was found changed: when
    /// another writer stored something else meanwhile (an editor's buffer), that stays.
    fn store_cut(
        &mut self,
        facts: &FileFacts<'_>,
        hash: [u8; 32],
        stored: Option<[u8; 32]>,
        chunks: Option<Vec<Chunk>>,
    ) -> Result<FileSync, IndexError> {
        let Some(chunks) = chunks else {
            return Ok(FileSync::Skipped);
        };
        if self.store.file_hash(facts.rel_path)? != stored {
            return Ok(FileSync::Unchanged);
        }
        let record = FileRecord {
            path: facts.rel_path,
            hash,
            size: facts.size,
            mtime_ns: facts.mtime_ns,
            language: facts.language.name(),
        };
        let fingerprint = self.fingerprint().to_string();
        let change = self.store.replace_file(&record, &chunks, &fingerprint)?;
        self.apply_change(&change.removed, &change.added)?;
        Ok(FileSync::Changed {
            reused: change.reused,
        })
    }

    /// Switches to the model of `staged` ([`stage_chunks`]) in one step: its chunks replace
    /// the stored ones of every file unchanged since it was staged, and its vectors are served
    /// from now on. Files that changed meanwhile are left marked for the next update, which
    /// cuts and embeds them with the new model. Returns how many files were installed.
    pub fn adopt_staged(
        &mut self,
        model: ModelKey,
        staged: StagedChunks,
    ) -> Result<usize, IndexError> {
        self.require_writer()?;
        if staged.fingerprint != model.fingerprint {
            return Err(IndexError::Vectors(format!(
                "chunks staged for model {} cannot be served with model {}",
                staged.fingerprint, model.fingerprint
            )));
        }
        // The vectors of the model serving until now are saved as they are; the store
        // changes below make that file out of date, so it is rebuilt if that model serves
        // again.
        self.save_vectors()?;
        self.store.forget_file_contents()?;
        self.store.set_meta("chunker", &staged.chunker)?;
        let mut adopted = 0;
        for staged_file in &staged.files {
            let file = &staged_file.file;
            if !workspace::is_unchanged(file) {
                continue;
            }
            let record = FileRecord {
                path: &file.rel_path,
                hash: staged_file.hash,
                size: file.size,
                mtime_ns: file.mtime_ns,
                language: file.language.name(),
            };
            self.store
                .replace_file(&record, &staged_file.chunks, &model.fingerprint)?;
            adopted += 1;
        }
        self.vectors_dirty = false;
        self.switch_model(model)?;
        Ok(adopted)
    }
}
