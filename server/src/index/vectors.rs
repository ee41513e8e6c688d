//! The vector index: a usearch HNSW graph over chunk vectors, keyed by chunk id.
//!
//! It is a derived file. A sidecar JSON records the store generation it reflects and a blake3
//! digest of the file; when the file is missing, stale, truncated or corrupt it is rebuilt from
//! the store, which alone is the source of truth.
//!
//! Saving the whole file after every edit cost most of an edit's time in a large index (183 MB
//! at 200k chunks). Small changes are appended to a journal beside it instead (`.log`: one JSON
//! line per save, the store generations it goes from and to, the ids removed and the vectors
//! added); loading replays the lines that continue from the saved file's generation. The file is
//! saved whole again (and the journal dropped) when the journal grows past an eighth of it, or a
//! change is too large to journal. A torn or foreign line ends the replay, and anything short of
//! the store's generation is rebuilt from the store, as before.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use super::IndexError;

/// Below this many vectors, search is exact (brute force): fast enough and recall is 1.0.
pub const EXACT_SEARCH_LIMIT: usize = 20_000;
/// HNSW settings; `expansion_search` 256 measured recall@10 ≈ 0.998 on 100k 384-d vectors.
const CONNECTIVITY: usize = 16;
const EXPANSION_ADD: usize = 128;
const EXPANSION_SEARCH: usize = 256;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Sidecar {
    generation: u64,
    count: usize,
    dimensions: usize,
    blake3: String,
}

/// How [`VectorIndex::search_with`] finds neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMethod {
    /// Compare the query with every vector: recall 1.0, time linear in the index size.
    Exact,
    /// Walk the HNSW graph with the index's `expansion_search`.
    Hnsw,
}

/// Changes held for the journal beyond this many vectors make the next save a whole one.
const JOURNAL_MAX_VECTORS: usize = 4096;
/// The journal is folded into a whole save once it is larger than this share of the file ...
const JOURNAL_SHARE: u64 = 8;
/// ... or than this many bytes, whichever is more.
const JOURNAL_MIN_BYTES: u64 = 4 << 20;

/// One journal line: what changed between two store generations.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct JournalEntry {
    from: u64,
    to: u64,
    removed: Vec<i64>,
    added: Vec<(i64, Vec<f32>)>,
}

/// Changes since the index was last persisted (saved or journaled).
#[derive(Debug, Default)]
struct Unsaved {
    removed: Vec<i64>,
    added: Vec<(i64, Vec<f32>)>,
    /// Too many to journal: the next save is a whole one.
    overflow: bool,
}

/// An in-memory usearch index and where it is saved.
pub struct VectorIndex {
    index: Index,
    path: PathBuf,
    dimensions: usize,
    /// The store generation of what is on disk (file plus journal), when it matches memory
    /// except for `unsaved`; `None` until saved or loaded.
    persisted: Option<u64>,
    unsaved: Unsaved,
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("path", &self.path)
            .field("size", &self.index.size())
            .finish()
    }
}

impl VectorIndex {
    /// An empty index that will be saved at `path`.
    pub fn new(path: &Path, dimensions: usize) -> Result<Self, IndexError> {
        let options = IndexOptions {
            dimensions,
            metric: MetricKind::Cos,
            quantization: ScalarKind::F16,
            connectivity: CONNECTIVITY,
            expansion_add: EXPANSION_ADD,
            expansion_search: EXPANSION_SEARCH,
            multi: false,
        };
        let index = Index::new(&options).map_err(vector_error)?;
        index.reserve(1024).map_err(vector_error)?;
        Ok(Self {
            index,
            path: path.to_path_buf(),
            dimensions,
            persisted: None,
            unsaved: Unsaved::default(),
        })
    }

    /// Loads the saved index if it exists, is intact and reflects `generation`; `Ok(None)`
    /// otherwise (the caller rebuilds). The reason it was not usable is logged.
    pub fn load_if_current(
        path: &Path,
        dimensions: usize,
        generation: u64,
    ) -> Result<Option<Self>, IndexError> {
        let stale = |why: &str| {
            tracing::info!("vector index {} will be rebuilt: {why}", path.display());
            Ok(None)
        };
        let Ok(sidecar_text) = fs::read_to_string(sidecar_path(path)) else {
            return stale("no sidecar");
        };
        let Ok(sidecar) = serde_json::from_str::<Sidecar>(&sidecar_text) else {
            return stale("unreadable sidecar");
        };
        // Behind the store is fine only when a journal may bring it up to date.
        if sidecar.generation > generation
            || (sidecar.generation < generation && !journal_path(path).exists())
        {
            return stale("the store changed since it was saved");
        }
        if sidecar.dimensions != dimensions {
            return stale("dimensions differ");
        }
        let Ok(bytes) = fs::read(path) else {
            return stale("file missing");
        };
        if blake3::hash(&bytes).to_hex().as_str() != sidecar.blake3 {
            return stale("file is damaged (digest mismatch)");
        }
        let loaded = Self::new(path, dimensions)?;
        if let Err(e) = loaded.index.load_from_buffer(&bytes) {
            return stale(&format!("usearch could not load it: {e}"));
        }
        if loaded.index.size() != sidecar.count || loaded.index.dimensions() != dimensions {
            return stale("contents differ from the sidecar");
        }
        loaded.index.change_expansion_search(EXPANSION_SEARCH);
        let mut loaded = loaded;
        let reached = loaded.replay_journal(sidecar.generation)?;
        if reached != generation {
            return stale("the store changed since it was saved");
        }
        loaded.persisted = Some(reached);
        Ok(Some(loaded))
    }

    /// Applies the journal's lines that continue from `generation`, in order; returns the
    /// generation reached. Lines from before the file was last saved whole are skipped; an
    /// unreadable line (a save cut short) ends the replay.
    fn replay_journal(&mut self, generation: u64) -> Result<u64, IndexError> {
        let Ok(text) = fs::read_to_string(journal_path(&self.path)) else {
            return Ok(generation);
        };
        let mut reached = generation;
        for line in text.lines() {
            let Ok(entry) = serde_json::from_str::<JournalEntry>(line) else {
                tracing::info!(
                    "vector journal of {} ends in an unreadable line",
                    self.path.display()
                );
                break;
            };
            if entry.from != reached {
                continue;
            }
            for id in entry.removed {
                self.remove(id)?;
            }
            for (id, vector) in entry.added {
                self.upsert(id, &vector)?;
            }
            reached = entry.to;
        }
        self.unsaved = Unsaved::default();
        Ok(reached)
    }

    /// Number of vectors held.
    pub fn len(&self) -> usize {
        self.index.size()
    }

    /// Whether the index holds no vectors.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a chunk has a vector here.
    pub fn contains(&self, key: i64) -> bool {
        self.index.contains(key as u64)
    }

    /// Adds (or replaces) the vector of a chunk.
    pub fn upsert(&mut self, key: i64, vector: &[f32]) -> Result<(), IndexError> {
        if vector.len() != self.dimensions {
            return Err(IndexError::Vectors(format!(
                "vector of length {} for an index of {} dimensions",
                vector.len(),
                self.dimensions
            )));
        }
        let slot = key as u64;
        if self.index.contains(slot) {
            self.index.remove(slot).map_err(vector_error)?;
        }
        if self.index.size() + 1 > self.index.capacity() {
            let grown = (self.index.capacity() * 2).max(1024);
            self.index.reserve(grown).map_err(vector_error)?;
        }
        self.index.add(slot, vector).map_err(vector_error)?;
        self.note_change(|unsaved| unsaved.added.push((key, vector.to_vec())));
        Ok(())
    }

    /// Removes a chunk's vector if present.
    pub fn remove(&mut self, key: i64) -> Result<(), IndexError> {
        if self.index.contains(key as u64) {
            self.index.remove(key as u64).map_err(vector_error)?;
            self.note_change(|unsaved| unsaved.removed.push(key));
        }
        Ok(())
    }

    /// Keeps a change for the journal, until there are too many to journal.
    fn note_change(&mut self, note: impl FnOnce(&mut Unsaved)) {
        let unsaved = &mut self.unsaved;
        if unsaved.overflow {
            return;
        }
        if unsaved.added.len() + unsaved.removed.len() >= JOURNAL_MAX_VECTORS {
            *unsaved = Unsaved {
                overflow: true,
                ..Unsaved::default()
            };
            return;
        }
        note(unsaved);
    }

    /// The `k` nearest chunks as (chunk id, cosine similarity), best first: exact up to
    /// [`EXACT_SEARCH_LIMIT`] vectors, HNSW above.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<(i64, f32)>, IndexError> {
        let method = if self.len() <= EXACT_SEARCH_LIMIT {
            SearchMethod::Exact
        } else {
            SearchMethod::Hnsw
        };
        self.search_with(query, k, method)
    }

    /// Like [`VectorIndex::search`], with the method chosen by the caller (the recall benchmark
    /// compares both).
    pub fn search_with(
        &self,
        query: &[f32],
        k: usize,
        method: SearchMethod,
    ) -> Result<Vec<(i64, f32)>, IndexError> {
        if self.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let matches = match method {
            SearchMethod::Exact => self.index.exact_search(query, k),
            SearchMethod::Hnsw => self.index.search(query, k),
        }
        .map_err(vector_error)?;
        Ok(matches
            .keys
            .into_iter()
            .zip(matches.distances)
            .map(|(key, distance)| (key as i64, 1.0 - distance))
            .collect())
    }

    /// Makes what is on disk reflect store generation `generation`: appends the changes since
    /// the last save to the journal when they are few and the journal is small, else saves the
    /// whole index ([`VectorIndex::save`]).
    pub fn persist(&mut self, generation: u64) -> Result<(), IndexError> {
        if self.persisted == Some(generation) {
            return Ok(());
        }
        let (Some(from), false) = (self.persisted, self.unsaved.overflow) else {
            return self.save(generation);
        };
        let journal = journal_path(&self.path);
        let journal_bytes = fs::metadata(&journal).map(|m| m.len()).unwrap_or(0);
        let file_bytes = fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if journal_bytes > (file_bytes / JOURNAL_SHARE).max(JOURNAL_MIN_BYTES) {
            return self.save(generation);
        }
        let unsaved = std::mem::take(&mut self.unsaved);
        let entry = JournalEntry {
            from,
            to: generation,
            removed: unsaved.removed,
            added: unsaved.added,
        };
        let mut line =
            serde_json::to_string(&entry).map_err(|e| IndexError::Vectors(e.to_string()))?;
        line.push('\n');
        let appended = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal)
            .and_then(|mut file| std::io::Write::write_all(&mut file, line.as_bytes()));
        if let Err(e) = appended {
            // The whole file is still correct to write; the journal is only a shortcut.
            tracing::warn!(
                "appending to {} failed ({e}); saving whole",
                journal.display()
            );
            return self.save(generation);
        }
        self.persisted = Some(generation);
        Ok(())
    }

    /// Saves the index and its sidecar atomically (write to a temporary file, then rename),
    /// and drops the journal, which the saved file now includes.
    pub fn save(&mut self, generation: u64) -> Result<(), IndexError> {
        let tmp = self.path.with_extension("usearch.tmp");
        let tmp_str = tmp.to_str().ok_or_else(|| {
            IndexError::Vectors(format!("index path {} is not UTF-8", tmp.display()))
        })?;
        self.index.save(tmp_str).map_err(vector_error)?;
        let bytes = fs::read(&tmp).map_err(|source| IndexError::Io {
            path: tmp.clone(),
            source,
        })?;
        let sidecar = Sidecar {
            generation,
            count: self.index.size(),
            dimensions: self.dimensions,
            blake3: blake3::hash(&bytes).to_hex().to_string(),
        };
        rename(&tmp, &self.path)?;
        let side = sidecar_path(&self.path);
        let side_tmp = side.with_extension("json.tmp");
        let text =
            serde_json::to_string(&sidecar).map_err(|e| IndexError::Vectors(e.to_string()))?;
        fs::write(&side_tmp, text).map_err(|source| IndexError::Io {
            path: side_tmp.clone(),
            source,
        })?;
        rename(&side_tmp, &side)?;
        // Its lines start before this generation, so a journal left behind is skipped anyway.
        let journal = journal_path(&self.path);
        if let Err(e) = fs::remove_file(&journal)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("could not remove {} ({e})", journal.display());
        }
        self.persisted = Some(generation);
        self.unsaved = Unsaved::default();
        Ok(())
    }
}

fn rename(from: &Path, to: &Path) -> Result<(), IndexError> {
    fs::rename(from, to).map_err(|source| IndexError::Io {
        path: to.to_path_buf(),
        source,
    })
}

fn sidecar_path(path: &Path) -> PathBuf {
    path.with_extension("json")
}

/// The journal of changes since `path` was last saved whole.
pub(crate) fn journal_path(path: &Path) -> PathBuf {
    path.with_extension("log")
}

fn vector_error(e: impl std::fmt::Display) -> IndexError {
    IndexError::Vectors(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(values: &[f32]) -> Vec<f32> {
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        values.iter().map(|v| v / norm).collect()
    }

    #[test]
    fn search_save_load_and_staleness() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vectors-x.usearch");
        let mut index = VectorIndex::new(&path, 3).unwrap();
        index.upsert(1, &unit(&[1.0, 0.0, 0.0])).unwrap();
        index.upsert(2, &unit(&[0.0, 1.0, 0.0])).unwrap();
        index.upsert(3, &unit(&[1.0, 1.0, 0.0])).unwrap();
        let hits = index.search(&unit(&[1.0, 0.1, 0.0]), 2).unwrap();
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![1, 3]);
        assert!((hits[0].1 - 0.995).abs() < 0.01);
        index.remove(1).unwrap();
        assert_eq!(index.search(&unit(&[1.0, 0.1, 0.0]), 1).unwrap()[0].0, 3);
        index.save(7).unwrap();

        let loaded = VectorIndex::load_if_current(&path, 3, 7).unwrap().unwrap();
        assert_eq!(loaded.len(), 2);
        assert!(
            VectorIndex::load_if_current(&path, 3, 8).unwrap().is_none(),
            "stale"
        );
        assert!(
            VectorIndex::load_if_current(&path, 4, 7).unwrap().is_none(),
            "dims"
        );

        // A damaged file is detected before usearch ever reads it.
        let mut bytes = fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xFF;
        fs::write(&path, &bytes).unwrap();
        assert!(VectorIndex::load_if_current(&path, 3, 7).unwrap().is_none());
        fs::write(&path, &bytes[..10]).unwrap();
        assert!(VectorIndex::load_if_current(&path, 3, 7).unwrap().is_none());
        fs::remove_file(&path).unwrap();
        assert!(VectorIndex::load_if_current(&path, 3, 7).unwrap().is_none());
    }

    #[test]
    fn small_changes_go_to_the_journal_and_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vectors-x.usearch");
        let mut index = VectorIndex::new(&path, 3).unwrap();
        index.upsert(1, &unit(&[1.0, 0.0, 0.0])).unwrap();
        index.upsert(2, &unit(&[0.0, 1.0, 0.0])).unwrap();
        // Never saved: the first persist writes the whole file.
        index.persist(5).unwrap();
        assert!(!journal_path(&path).exists());
        let saved = fs::read(&path).unwrap();

        // An edit: one vector replaced, one removed, one added; then a second edit.
        index.upsert(2, &unit(&[0.0, 1.0, 1.0])).unwrap();
        index.remove(1).unwrap();
        index.upsert(3, &unit(&[0.0, 0.0, 1.0])).unwrap();
        index.persist(6).unwrap();
        index.upsert(4, &unit(&[1.0, 1.0, 1.0])).unwrap();
        index.persist(7).unwrap();
        index.persist(7).unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            saved,
            "the file itself is not rewritten"
        );
        assert_eq!(
            fs::read_to_string(journal_path(&path))
                .unwrap()
                .lines()
                .count(),
            2
        );

        let loaded = VectorIndex::load_if_current(&path, 3, 7).unwrap().unwrap();
        assert_eq!(loaded.len(), 3);
        let top = |i: &VectorIndex, q: &[f32]| i.search(&unit(q), 1).unwrap()[0].0;
        assert_eq!(top(&loaded, &[0.0, 0.9, 1.0]), 2);
        assert_eq!(top(&loaded, &[0.0, 0.0, 1.0]), 3);
        assert_eq!(top(&loaded, &[1.0, 0.9, 1.0]), 4);
        // Neither behind nor ahead of the store's generation is used.
        assert!(VectorIndex::load_if_current(&path, 3, 8).unwrap().is_none());
        assert!(VectorIndex::load_if_current(&path, 3, 4).unwrap().is_none());

        // A save cut short leaves a torn last line: the replay stops before it.
        let mut journal = fs::OpenOptions::new()
            .append(true)
            .open(journal_path(&path))
            .unwrap();
        std::io::Write::write_all(&mut journal, b"{\"from\":7,\"to\":8,\"remo").unwrap();
        drop(journal);
        assert!(VectorIndex::load_if_current(&path, 3, 7).unwrap().is_some());
        assert!(VectorIndex::load_if_current(&path, 3, 8).unwrap().is_none());

        // A whole save folds the journal in and removes it.
        let mut loaded = VectorIndex::load_if_current(&path, 3, 7).unwrap().unwrap();
        loaded.remove(4).unwrap();
        loaded.save(9).unwrap();
        assert!(!journal_path(&path).exists());
        let again = VectorIndex::load_if_current(&path, 3, 9).unwrap().unwrap();
        assert_eq!(again.len(), 2);
    }

    #[test]
    fn large_changes_and_a_large_journal_make_a_whole_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.usearch");
        const DIMS: usize = 128;
        let mut index = VectorIndex::new(&path, DIMS).unwrap();
        let vector = |i: i64| {
            let values: Vec<f32> = (0..DIMS)
                .map(|d| (i as f32 * 0.37 + d as f32).sin())
                .collect();
            unit(&values)
        };
        index.upsert(0, &vector(0)).unwrap();
        index.save(1).unwrap();
        // More changes than a journal line takes: saved whole.
        for i in 1..=(JOURNAL_MAX_VECTORS as i64 + 1) {
            index.upsert(i, &vector(i)).unwrap();
        }
        index.persist(2).unwrap();
        assert!(!journal_path(&path).exists());
        // Small edits are journaled until the journal outgrows its bound, then folded in.
        let journal_len = || fs::metadata(journal_path(&path)).map_or(0, |m| m.len());
        let mut generation = 2;
        let mut folded = 0;
        let mut longest = 0;
        for round in 0..600 {
            for i in 0..8 {
                index.upsert(round * 8 + i, &vector(round + i + 7)).unwrap();
            }
            generation += 1;
            let before = journal_len();
            index.persist(generation).unwrap();
            if journal_len() < before {
                folded += 1;
            }
            longest = longest.max(journal_len());
        }
        assert!(folded >= 1, "the journal is folded in once it is large");
        assert!(longest <= JOURNAL_MIN_BYTES + (64 << 10), "{longest}");
        let loaded = VectorIndex::load_if_current(&path, DIMS, generation)
            .unwrap()
            .unwrap();
        assert_eq!(loaded.len(), index.len());
        // The last edit (id 599 × 8 + 7, vector 599 + 7 + 7) came back from the journal.
        assert_eq!(loaded.search(&vector(613), 1).unwrap()[0].0, 599 * 8 + 7);
    }

    #[test]
    fn grows_past_initial_capacity_and_rejects_wrong_dimensions() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = VectorIndex::new(&dir.path().join("v.usearch"), 4).unwrap();
        for i in 0..3000 {
            let x = i as f32;
            index
                .upsert(i, &unit(&[x.sin(), x.cos(), 1.0, (x * 0.1).sin()]))
                .unwrap();
        }
        assert_eq!(index.len(), 3000);
        index.upsert(5, &unit(&[0.0, 0.0, 1.0, 0.0])).unwrap();
        assert_eq!(index.len(), 3000, "upsert replaces");
        assert!(index.upsert(1, &[1.0, 0.0]).is_err());
    }
}
