//! The vector index: a usearch HNSW graph over chunk vectors, keyed by chunk id.
//!
//! It is a derived file. A sidecar JSON records the store generation it reflects and a blake3
//! digest of the file; when the file is missing, stale, truncated or corrupt it is rebuilt from
//! the store, which alone is the source of truth.

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

/// An in-memory usearch index and where it is saved.
pub struct VectorIndex {
    index: Index,
    path: PathBuf,
    dimensions: usize,
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
        if sidecar.generation != generation {
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
        Ok(Some(loaded))
    }

    /// Number of vectors held.
    pub fn len(&self) -> usize {
        self.index.size()
    }

    /// Whether the index holds no vectors.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        let key = key as u64;
        if self.index.contains(key) {
            self.index.remove(key).map_err(vector_error)?;
        }
        if self.index.size() + 1 > self.index.capacity() {
            let grown = (self.index.capacity() * 2).max(1024);
            self.index.reserve(grown).map_err(vector_error)?;
        }
        self.index.add(key, vector).map_err(vector_error)
    }

    /// Removes a chunk's vector if present.
    pub fn remove(&mut self, key: i64) -> Result<(), IndexError> {
        if self.index.contains(key as u64) {
            self.index.remove(key as u64).map_err(vector_error)?;
        }
        Ok(())
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

    /// Saves the index and its sidecar atomically (write to a temporary file, then rename).
    pub fn save(&self, generation: u64) -> Result<(), IndexError> {
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
        rename(&side_tmp, &side)
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
