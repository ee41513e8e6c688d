//! The SQLite store: the source of truth of an index.
//!
//! Files, their chunks (with the FTS5 mirror used for lexical search) and the embedding cache,
//! keyed by (model fingerprint, chunk text hash) so unchanged text is never embedded twice.
//! Every change to a file is one transaction; every transaction bumps a generation number that
//! tells the vector index file whether it is stale.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params, params_from_iter};

use super::IndexError;
use crate::chunk::Chunk;
use crate::symbols::{Language, SymbolKind};
use crate::words::{code_tokens, query_terms};

/// Bumped when the schema changes incompatibly; an older store is moved aside and rebuilt.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    hash BLOB NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    language TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    container TEXT,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    signature TEXT NOT NULL,
    text TEXT NOT NULL,
    text_hash BLOB NOT NULL,
    declaration INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS chunks_by_file ON chunks(file_id);
CREATE INDEX IF NOT EXISTS chunks_by_text ON chunks(text_hash);
CREATE TABLE IF NOT EXISTS vectors(
    fingerprint TEXT NOT NULL,
    text_hash BLOB NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY(fingerprint, text_hash)
) WITHOUT ROWID;
"#;

/// The FTS5 mirror of `chunks`; identifiers are split before they reach FTS5 ([`code_tokens`]).
/// No stemming: Porter stemming was measured and lost on the quality benchmark (README, "How
/// ranking works").
const FTS_SCHEMA: &str = r#"
DROP TABLE IF EXISTS chunks_fts;
CREATE VIRTUAL TABLE chunks_fts USING fts5(name, path, body, tokenize = "unicode61 tokenchars '_'");
"#;

/// Bumped when what goes into `chunks_fts` changes (tokenizer, [`code_tokens`]): the table is
/// then rebuilt from `chunks` on open, which needs no embedding and keeps every vector.
const FTS_VERSION: &str = "1";

/// What the store knows about a file, to decide whether it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    pub id: i64,
    pub hash: [u8; 32],
    pub size: u64,
    pub mtime_ns: i64,
}

/// A file about to be (re)written, with its identity.
#[derive(Debug, Clone)]
pub struct FileRecord<'a> {
    pub path: &'a str,
    pub hash: [u8; 32],
    pub size: u64,
    pub mtime_ns: i64,
    pub language: &'a str,
}

/// Chunk ids that one file update removed and added.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub removed: Vec<i64>,
    pub added: Vec<i64>,
    /// Added chunks whose vector was already cached for the fingerprint.
    pub reused: usize,
}

/// A stored chunk with the file it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChunk {
    pub id: i64,
    pub path: String,
    pub language: Language,
    pub name: String,
    pub kind: SymbolKind,
    pub container: Option<String>,
    pub start_line: u32,
    pub end_line: u32,
    pub signature: String,
    pub text: String,
    /// A function or method declared without a body ([`crate::symbols::Symbol::declaration`]).
    pub declaration: bool,
}

/// Totals for `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreCounts {
    pub files: u64,
    pub chunks: u64,
    /// Chunks whose text has a vector for the fingerprint asked about.
    pub embedded_chunks: u64,
    /// Distinct vectors stored for that fingerprint.
    pub vectors: u64,
}

/// The SQLite store of one workspace index.
pub struct IndexStore {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for IndexStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexStore")
            .field("path", &self.path)
            .finish()
    }
}

impl IndexStore {
    /// Opens (or creates) the store. A file that is not a valid store — corrupt, or written by
    /// an incompatible version — is moved aside (never deleted) and a fresh store is created;
    /// the returned note says so.
    pub fn open(path: &Path) -> Result<(Self, Option<String>), IndexError> {
        Self::open_as(path, true)
    }

    /// Opens the store; only a writer (`repair`) may move an unusable store aside. A reader
    /// that cannot use the store reports why instead: the file belongs to the process that
    /// holds the write lock, which may be a newer version of coder-lsp.
    pub fn open_as(path: &Path, repair: bool) -> Result<(Self, Option<String>), IndexError> {
        match Self::open_checked(path) {
            Ok(store) => Ok((store, None)),
            Err(reason) if repair && path.exists() => {
                let aside = aside_path(path);
                std::fs::rename(path, &aside).map_err(|source| IndexError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                for suffix in ["-wal", "-shm"] {
                    let side = PathBuf::from(format!("{}{suffix}", path.display()));
                    if side.exists() {
                        let _ = std::fs::rename(&side, format!("{}{suffix}", aside.display()));
                    }
                }
                let note = format!(
                    "index store {} could not be used ({reason}); it was moved to {} and the index is rebuilt",
                    path.display(),
                    aside.display()
                );
                tracing::warn!("{note}");
                let store = Self::open_checked(path).map_err(|reason| IndexError::Store {
                    path: path.to_path_buf(),
                    message: reason,
                })?;
                Ok((store, Some(note)))
            }
            Err(message) if !repair => Err(IndexError::Store {
                path: path.to_path_buf(),
                message: format!(
                    "{message} (left as it is: only the process that updates the index rebuilds it, e.g. `coder-lsp index`)"
                ),
            }),
            Err(message) => Err(IndexError::Store {
                path: path.to_path_buf(),
                message,
            }),
        }
    }

    fn open_checked(path: &Path) -> Result<Self, String> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| e.to_string())?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| e.to_string())?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| e.to_string())?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| e.to_string())?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| e.to_string())?;
        if check != "ok" {
            return Err(format!("integrity check failed: {check}"));
        }
        conn.execute_batch(SCHEMA).map_err(|e| e.to_string())?;
        add_missing_columns(&conn).map_err(|e| e.to_string())?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| e.to_string())?;
        match version {
            None => {
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )
                .map_err(|e| e.to_string())?;
            }
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            Some(v) => {
                return Err(format!(
                    "schema version {v}, this build uses {SCHEMA_VERSION}"
                ));
            }
        }
        let fts: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'fts_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| e.to_string())?;
        if fts.as_deref() != Some(FTS_VERSION)
            && let Err(e) = rebuild_fts(&conn)
        {
            // Not a reason to move the store aside: its vectors are intact, the next open retries.
            tracing::warn!(
                "rebuilding the lexical index failed ({e}); lexical results may be stale"
            );
        }
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Where this store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of committed transactions that changed files, chunks or vectors.
    pub fn generation(&self) -> Result<u64, IndexError> {
        let value: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// Every stored file with the identity used to notice changes.
    pub fn file_states(&self) -> Result<HashMap<String, FileState>, IndexError> {
        let mut stmt = self
            .conn
            .prepare("SELECT path, id, hash, size, mtime_ns FROM files")?;
        let rows = stmt.query_map([], |r| {
            let hash: Vec<u8> = r.get(2)?;
            Ok((
                r.get::<_, String>(0)?,
                FileState {
                    id: r.get(1)?,
                    hash: hash.try_into().unwrap_or([0; 32]),
                    size: r.get::<_, i64>(3)? as u64,
                    mtime_ns: r.get(4)?,
                },
            ))
        })?;
        let mut states = HashMap::new();
        for row in rows {
            let (path, state) = row?;
            states.insert(path, state);
        }
        Ok(states)
    }

    /// The paths of every indexed file, in no particular order.
    pub fn file_paths(&self) -> Result<Vec<String>, IndexError> {
        let mut stmt = self.conn.prepare_cached("SELECT path FROM files")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The content hash stored for a file, if the file is indexed.
    pub fn file_hash(&self, path: &str) -> Result<Option<[u8; 32]>, IndexError> {
        let hash: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT hash FROM files WHERE path = ?1", [path], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(hash.map(|h| h.try_into().unwrap_or([0; 32])))
    }

    /// Forgets what every file held (hash and size), so the next update re-reads and re-chunks
    /// all of them; chunks and cached vectors stay until then.
    pub fn forget_file_contents(&self) -> Result<(), IndexError> {
        self.conn
            .execute("UPDATE files SET hash = zeroblob(32), size = -1", [])?;
        Ok(())
    }

    /// Records a new size/mtime for a file whose content did not change.
    pub fn touch_file(&self, path: &str, size: u64, mtime_ns: i64) -> Result<(), IndexError> {
        self.conn.execute(
            "UPDATE files SET size = ?2, mtime_ns = ?3 WHERE path = ?1",
            params![path, size as i64, mtime_ns],
        )?;
        Ok(())
    }

    /// Replaces a file and all its chunks in one transaction.
    pub fn replace_file(
        &mut self,
        file: &FileRecord<'_>,
        chunks: &[Chunk],
        fingerprint: &str,
    ) -> Result<FileChange, IndexError> {
        let tx = self.conn.transaction()?;
        let mut change = FileChange {
            removed: remove_file_rows(&tx, file.path)?,
            ..FileChange::default()
        };
        tx.execute(
            "INSERT INTO files(path, hash, size, mtime_ns, language) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                file.path,
                &file.hash[..],
                file.size as i64,
                file.mtime_ns,
                file.language
            ],
        )?;
        let file_id = tx.last_insert_rowid();
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO chunks(file_id, name, kind, container, start_line, end_line, signature, text, text_hash, declaration)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            let mut insert_fts = tx.prepare_cached(
                "INSERT INTO chunks_fts(rowid, name, path, body) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut cached = tx.prepare_cached(
                "SELECT 1 FROM vectors WHERE fingerprint = ?1 AND text_hash = ?2",
            )?;
            for chunk in chunks {
                insert.execute(params![
                    file_id,
                    chunk.name,
                    chunk.kind.as_str(),
                    chunk.container,
                    chunk.start_line,
                    chunk.end_line,
                    chunk.signature,
                    chunk.text,
                    &chunk.text_hash[..],
                    chunk.declaration,
                ])?;
                let id = tx.last_insert_rowid();
                insert_fts.execute(params![
                    id,
                    code_tokens(&chunk.name),
                    code_tokens(file.path),
                    code_tokens(&chunk.text)
                ])?;
                if cached.exists(params![fingerprint, &chunk.text_hash[..]])? {
                    change.reused += 1;
                }
                change.added.push(id);
            }
        }
        bump_generation(&tx)?;
        tx.commit()?;
        Ok(change)
    }

    /// Writes a consistent copy of the whole store to `path` (which must not exist), even while
    /// another connection writes: SQLite's `VACUUM INTO`.
    pub fn copy_to(&self, path: &Path) -> Result<(), IndexError> {
        let target = path.to_string_lossy().into_owned();
        self.conn.execute("VACUUM INTO ?1", [target])?;
        Ok(())
    }

    /// Gives one chunk another text (its lexical row too), in one transaction; the chunk then
    /// waits for a vector of the new text. For evaluation copies of an index, where a query's
    /// source (a doc comment) is cut out of its answer so that it cannot be found by copying;
    /// the next parse of the file restores the original.
    pub fn replace_chunk_text(&mut self, id: i64, text: &str) -> Result<(), IndexError> {
        let tx = self.conn.transaction()?;
        let (name, path): (String, String) = tx.query_row(
            "SELECT c.name, f.path FROM chunks c JOIN files f ON f.id = c.file_id WHERE c.id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let hash = blake3::hash(text.as_bytes());
        tx.execute(
            "UPDATE chunks SET text = ?2, text_hash = ?3 WHERE id = ?1",
            params![id, text, &hash.as_bytes()[..]],
        )?;
        tx.execute("DELETE FROM chunks_fts WHERE rowid = ?1", [id])?;
        tx.execute(
            "INSERT INTO chunks_fts(rowid, name, path, body) VALUES (?1, ?2, ?3, ?4)",
            params![
                id,
                code_tokens(&name),
                code_tokens(&path),
                code_tokens(text)
            ],
        )?;
        bump_generation(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Removes a file and its chunks in one transaction; returns the removed chunk ids.
    pub fn remove_file(&mut self, path: &str) -> Result<Vec<i64>, IndexError> {
        let tx = self.conn.transaction()?;
        let removed = remove_file_rows(&tx, path)?;
        bump_generation(&tx)?;
        tx.commit()?;
        Ok(removed)
    }

    /// Up to `limit` distinct chunk texts that have no vector for `fingerprint` yet.
    pub fn pending_texts(
        &self,
        fingerprint: &str,
        limit: usize,
    ) -> Result<Vec<([u8; 32], String)>, IndexError> {
        self.pending_texts_after(fingerprint, None, limit)
    }

    /// [`IndexStore::pending_texts`] in text hash order, starting after the hash `after`: a
    /// caller that embeds batch after batch passes the last hash of the previous batch, so each
    /// call reads on from there instead of passing over every text embedded so far again (which
    /// made embedding a cold index quadratic in its size).
    pub fn pending_texts_after(
        &self,
        fingerprint: &str,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<([u8; 32], String)>, IndexError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.text_hash, MIN(c.text) FROM chunks c
             WHERE c.text_hash > ?3 AND NOT EXISTS
                 (SELECT 1 FROM vectors v WHERE v.fingerprint = ?1 AND v.text_hash = c.text_hash)
             GROUP BY c.text_hash ORDER BY c.text_hash LIMIT ?2",
        )?;
        // Every hash is 32 bytes, so each one sorts after the empty blob.
        let after: &[u8] = after.map_or(&[], |h| &h[..]);
        let rows = stmt.query_map(params![fingerprint, limit as i64, after], pending_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The distinct chunk texts of one file that have no vector for `fingerprint` yet: what an
    /// edit of that file leaves to embed, found through the file's chunks alone (not a scan of
    /// every chunk like [`IndexStore::pending_texts`]).
    pub fn pending_texts_in_file(
        &self,
        fingerprint: &str,
        path: &str,
    ) -> Result<Vec<([u8; 32], String)>, IndexError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.text_hash, MIN(c.text) FROM files f JOIN chunks c ON c.file_id = f.id
             WHERE f.path = ?2 AND NOT EXISTS
                 (SELECT 1 FROM vectors v WHERE v.fingerprint = ?1 AND v.text_hash = c.text_hash)
             GROUP BY c.text_hash",
        )?;
        let rows = stmt.query_map(params![fingerprint, path], pending_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The number of distinct chunk texts still waiting for a vector.
    pub fn pending_count(&self, fingerprint: &str) -> Result<u64, IndexError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(DISTINCT c.text_hash) FROM chunks c
             WHERE NOT EXISTS (SELECT 1 FROM vectors v WHERE v.fingerprint = ?1 AND v.text_hash = c.text_hash)",
            [fingerprint],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Stores vectors for chunk texts in one transaction and returns the ids of the chunks
    /// that now have a vector.
    pub fn insert_vectors(
        &mut self,
        fingerprint: &str,
        vectors: &[([u8; 32], Vec<f32>)],
    ) -> Result<Vec<i64>, IndexError> {
        let tx = self.conn.transaction()?;
        let mut ids = Vec::new();
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO vectors(fingerprint, text_hash, vector) VALUES (?1, ?2, ?3)",
            )?;
            let mut chunk_ids = tx.prepare_cached("SELECT id FROM chunks WHERE text_hash = ?1")?;
            for (hash, vector) in vectors {
                insert.execute(params![fingerprint, &hash[..], encode_vector(vector)])?;
                let found = chunk_ids.query_map([&hash[..]], |r| r.get::<_, i64>(0))?;
                for id in found {
                    ids.push(id?);
                }
            }
        }
        bump_generation(&tx)?;
        tx.commit()?;
        Ok(ids)
    }

    /// Which of `hashes` have no vector for `fingerprint` yet, in the order given.
    pub fn missing_vectors(
        &self,
        fingerprint: &str,
        hashes: &[[u8; 32]],
    ) -> Result<Vec<[u8; 32]>, IndexError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM vectors WHERE fingerprint = ?1 AND text_hash = ?2")?;
        let mut missing = Vec::new();
        for hash in hashes {
            if !stmt.exists(params![fingerprint, &hash[..]])? {
                missing.push(*hash);
            }
        }
        Ok(missing)
    }

    /// Vectors of the given chunks (those that have one) for `fingerprint`.
    pub fn vectors_for_chunks(
        &self,
        fingerprint: &str,
        ids: &[i64],
    ) -> Result<Vec<(i64, Vec<f32>)>, IndexError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT v.vector FROM chunks c JOIN vectors v
             ON v.fingerprint = ?1 AND v.text_hash = c.text_hash WHERE c.id = ?2",
        )?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let blob: Option<Vec<u8>> = stmt
                .query_row(params![fingerprint, id], |r| r.get(0))
                .optional()?;
            if let Some(blob) = blob {
                out.push((id, decode_vector(&blob)));
            }
        }
        Ok(out)
    }

    /// The vectors for `fingerprint` of every chunk of one file.
    pub fn vectors_in_file(
        &self,
        fingerprint: &str,
        path: &str,
    ) -> Result<Vec<Vec<f32>>, IndexError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT v.vector FROM files f JOIN chunks c ON c.file_id = f.id
             JOIN vectors v ON v.fingerprint = ?1 AND v.text_hash = c.text_hash
             WHERE f.path = ?2",
        )?;
        let rows = stmt.query_map(params![fingerprint, path], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for blob in rows {
            out.push(decode_vector(&blob?));
        }
        Ok(out)
    }

    /// Calls `f` for every chunk that has a vector for `fingerprint` (to rebuild the ANN index).
    pub fn for_each_vector(
        &self,
        fingerprint: &str,
        mut f: impl FnMut(i64, Vec<f32>) -> Result<(), IndexError>,
    ) -> Result<(), IndexError> {
        let mut stmt = self.conn.prepare(
            "SELECT c.id, v.vector FROM chunks c JOIN vectors v
             ON v.fingerprint = ?1 AND v.text_hash = c.text_hash",
        )?;
        let mut rows = stmt.query([fingerprint])?;
        while let Some(row) = rows.next()? {
            let blob: Vec<u8> = row.get(1)?;
            f(row.get(0)?, decode_vector(&blob))?;
        }
        Ok(())
    }

    /// Chunks by id, in the order asked; unknown ids are left out.
    pub fn chunks_by_ids(&self, ids: &[i64]) -> Result<Vec<StoredChunk>, IndexError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = vec!["?"; ids.len()].join(",");
        let sql = format!("{CHUNK_SELECT} WHERE c.id IN ({placeholders})");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(ids.iter()), row_to_chunk)?;
        let mut by_id: HashMap<i64, StoredChunk> = HashMap::new();
        for row in rows {
            let chunk = row?;
            by_id.insert(chunk.id, chunk);
        }
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// Every chunk of a file, in line order.
    pub fn chunks_in_file(&self, path: &str) -> Result<Vec<StoredChunk>, IndexError> {
        let sql =
            format!("{CHUNK_SELECT} WHERE f.path = ?1 ORDER BY c.start_line, c.end_line DESC");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([path], row_to_chunk)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// BM25 ranking over the FTS5 table; `query` is normalised like indexed text (identifiers
    /// whole and split). Returns chunks with their BM25 relevance (FTS5's `bm25()` negated, so
    /// higher is better), best first. The magnitudes compare chunks of one query only.
    pub fn lexical_search(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<Vec<(StoredChunk, f32)>, IndexError> {
        let terms: Vec<String> = query_terms(query)
            .iter()
            .map(|t| format!("\"{}\"", t.replace('"', "")))
            .collect();
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let expression = terms.join(" OR ");
        // Name matches weigh most, then path, then body.
        let select = CHUNK_SELECT.replacen("c.declaration", "c.declaration, m.rank", 1);
        let sql = format!(
            "{select} JOIN (SELECT rowid AS id, bm25(chunks_fts, 10.0, 3.0, 1.0) AS rank
               FROM chunks_fts WHERE chunks_fts MATCH ?1 ORDER BY rank LIMIT ?2) m ON m.id = c.id
             ORDER BY m.rank"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![expression, limit as i64], |row| {
            Ok((
                row_to_chunk(row)?,
                -row.get::<_, f64>(CHUNK_COLUMNS)? as f32,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?);
        }
        Ok(out)
    }

    /// The id, file path and text of every chunk of a file in `language` whose text has the
    /// identifier `identifier` (e.g. `include_str`): looked up in the lexical index, so no chunk
    /// text is scanned.
    pub fn chunks_with_identifier(
        &self,
        language: &str,
        identifier: &str,
    ) -> Result<Vec<(i64, String, String)>, IndexError> {
        let expression = format!("body : \"{}\"", identifier.replace('"', ""));
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.id, f.path, c.text FROM chunks_fts
             JOIN chunks c ON c.id = chunks_fts.rowid JOIN files f ON f.id = c.file_id
             WHERE chunks_fts MATCH ?1 AND f.language = ?2 AND instr(c.text, ?3) > 0",
        )?;
        let rows = stmt.query_map(params![expression, language, identifier], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Chunks whose name contains the characters of `pattern` in order (case-insensitive),
    /// best matches first: exact, prefix, substring, then scattered.
    pub fn symbols_by_name(
        &self,
        pattern: &str,
        limit: usize,
    ) -> Result<Vec<StoredChunk>, IndexError> {
        let pattern: String = pattern.chars().filter(|c| !c.is_whitespace()).collect();
        if pattern.is_empty() {
            return Ok(Vec::new());
        }
        let mut like = String::from("%");
        for c in pattern.chars() {
            if matches!(c, '%' | '_' | '\\') {
                like.push('\\');
            }
            like.push(c);
            like.push('%');
        }
        let sql = format!(
            "{CHUNK_SELECT} WHERE c.name LIKE ?1 ESCAPE '\\' AND c.kind != 'section'
             ORDER BY (lower(c.name) = lower(?2)) DESC, (c.name LIKE ?2 || '%') DESC,
                      (instr(lower(c.name), lower(?2)) > 0) DESC, length(c.name), f.path, c.start_line
             LIMIT ?3"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![like, pattern, (limit * 4) as i64], row_to_chunk)?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for row in rows {
            let chunk = row?;
            // Windows of one long symbol share a name and a start: list the symbol once.
            if seen.insert((
                chunk.path.clone(),
                chunk.name.clone(),
                chunk.signature.clone(),
            )) {
                out.push(chunk);
            }
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    /// Chunks of the symbols named exactly `name` (ASCII case aside; a Ruby `?`/`!` ending is
    /// optional), found through the FTS5 name column; at most `limit`, in path and line order.
    /// Text windows and Markdown sections are not definitions and are left out.
    pub fn symbols_named(&self, name: &str, limit: usize) -> Result<Vec<StoredChunk>, IndexError> {
        let bare = name.trim_end_matches(['?', '!']);
        let Some(token) = code_tokens(bare)
            .split_whitespace()
            .next()
            .map(str::to_string)
        else {
            return Ok(Vec::new());
        };
        // Names that are exactly the token have the shortest name field, so BM25 puts them
        // first among the names that merely contain it as a part.
        let sql = format!(
            "{CHUNK_SELECT} JOIN (SELECT rowid AS id, bm25(chunks_fts, 1.0, 0.0, 0.0) AS rank
               FROM chunks_fts WHERE chunks_fts MATCH ?1 ORDER BY rank LIMIT ?2) m ON m.id = c.id
             WHERE c.kind != 'section'
             ORDER BY f.path, c.start_line"
        );
        let expression = format!("name : \"{}\"", token.replace('"', ""));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![expression, (limit * 8 + 64) as i64], row_to_chunk)?;
        let mut out = Vec::new();
        for row in rows {
            let chunk = row?;
            if chunk
                .name
                .trim_end_matches(['?', '!'])
                .eq_ignore_ascii_case(bare)
            {
                out.push(chunk);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The numbers of files and chunks (cheap, unlike [`IndexStore::counts`]).
    pub fn file_and_chunk_counts(&self) -> Result<(u64, u64), IndexError> {
        let files: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM files", [], |r| r.get(0))?;
        let chunks: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM chunks", [], |r| r.get(0))?;
        Ok((files as u64, chunks as u64))
    }

    /// Totals, with embedding coverage for `fingerprint`.
    pub fn counts(&self, fingerprint: &str) -> Result<StoreCounts, IndexError> {
        let count = |sql: &str| -> Result<u64, IndexError> {
            let n: i64 = self.conn.query_row(sql, [fingerprint], |r| r.get(0))?;
            Ok(n as u64)
        };
        let (files, chunks) = self.file_and_chunk_counts()?;
        Ok(StoreCounts {
            files,
            chunks,
            embedded_chunks: count(
                "SELECT COUNT(*) FROM chunks c WHERE EXISTS
                 (SELECT 1 FROM vectors v WHERE v.fingerprint = ?1 AND v.text_hash = c.text_hash)",
            )?,
            vectors: count("SELECT COUNT(*) FROM vectors WHERE fingerprint = ?1")?,
        })
    }

    /// Reads a value from the meta table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, IndexError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Writes a value to the meta table.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), IndexError> {
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
            params![key, value],
        )?;
        Ok(())
    }
}

/// Columns added to `chunks` after its first release, with their definitions: a store written
/// before gets them (with their defaults) when opened, and keeps its vectors. A column's
/// values come with the chunk format that introduced it (`chunk.rs`): files cut by an older
/// format are cut again on the next update, which fills them in.
const ADDED_CHUNK_COLUMNS: [(&str, &str); 1] = [("declaration", "INTEGER NOT NULL DEFAULT 0")];

fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('chunks')")?;
    let present: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, definition) in ADDED_CHUNK_COLUMNS {
        if !present.iter().any(|column| column == name) {
            conn.execute_batch(&format!(
                "ALTER TABLE chunks ADD COLUMN {name} {definition}"
            ))?;
        }
    }
    Ok(())
}

/// A pending text's row: its hash and text.
fn pending_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<([u8; 32], String)> {
    let hash: Vec<u8> = r.get(0)?;
    Ok((hash.try_into().unwrap_or([0; 32]), r.get(1)?))
}

const CHUNK_SELECT: &str = "SELECT c.id, f.path, f.language, c.name, c.kind, c.container, c.start_line, c.end_line, c.signature, c.text, c.declaration
     FROM chunks c JOIN files f ON f.id = c.file_id";

/// How many columns [`CHUNK_SELECT`] reads: a column selected after them is at this index.
const CHUNK_COLUMNS: usize = 11;

fn row_to_chunk(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredChunk> {
    let language: String = r.get(2)?;
    let kind: String = r.get(4)?;
    Ok(StoredChunk {
        id: r.get(0)?,
        path: r.get(1)?,
        // A name this build does not know (an index written by a newer one) reads as text.
        language: Language::parse_name(&language).unwrap_or(Language::Text),
        name: r.get(3)?,
        kind: SymbolKind::parse(&kind).unwrap_or(SymbolKind::Section),
        container: r.get(5)?,
        start_line: r.get(6)?,
        end_line: r.get(7)?,
        signature: r.get(8)?,
        text: r.get(9)?,
        declaration: r.get(10)?,
    })
}

/// Recreates `chunks_fts` from `chunks` in one transaction.
fn rebuild_fts(conn: &Connection) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    tx.execute_batch(FTS_SCHEMA)?;
    {
        let mut read = tx.prepare(
            "SELECT c.id, c.name, f.path, c.text FROM chunks c JOIN files f ON f.id = c.file_id",
        )?;
        let mut insert =
            tx.prepare("INSERT INTO chunks_fts(rowid, name, path, body) VALUES (?1, ?2, ?3, ?4)")?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let name: String = row.get(1)?;
            let path: String = row.get(2)?;
            let text: String = row.get(3)?;
            insert.execute(params![
                id,
                code_tokens(&name),
                code_tokens(&path),
                code_tokens(&text)
            ])?;
        }
    }
    tx.execute(
        "INSERT INTO meta(key, value) VALUES ('fts_version', ?1)
         ON CONFLICT(key) DO UPDATE SET value = ?1",
        [FTS_VERSION],
    )?;
    tx.commit()
}

fn remove_file_rows(tx: &rusqlite::Transaction<'_>, path: &str) -> Result<Vec<i64>, IndexError> {
    let mut ids = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path = ?1",
        )?;
        for id in stmt.query_map([path], |r| r.get::<_, i64>(0))? {
            ids.push(id?);
        }
        let mut delete_fts = tx.prepare_cached("DELETE FROM chunks_fts WHERE rowid = ?1")?;
        for id in &ids {
            delete_fts.execute([id])?;
        }
    }
    // Chunks go with their file (ON DELETE CASCADE).
    tx.execute("DELETE FROM files WHERE path = ?1", [path])?;
    Ok(ids)
}

fn bump_generation(tx: &rusqlite::Transaction<'_>) -> Result<(), IndexError> {
    tx.execute(
        "INSERT INTO meta(key, value) VALUES ('generation', '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        [],
    )?;
    Ok(())
}

fn aside_path(path: &Path) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    PathBuf::from(format!("{}.corrupt-{stamp}", path.display()))
}

/// Vectors are stored as little-endian f16: half the size, and ample precision for cosine.
pub fn encode_vector(vector: &[f32]) -> Vec<u8> {
    vector
        .iter()
        .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
        .collect()
}

/// The inverse of [`encode_vector`].
pub fn decode_vector(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(2)
        .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(name: &str, text: &str) -> Chunk {
        Chunk {
            name: name.into(),
            kind: SymbolKind::Function,
            container: None,
            start_line: 1,
            end_line: 3,
            signature: format!("fn {name}()"),
            text: text.into(),
            text_hash: *blake3::hash(text.as_bytes()).as_bytes(),
            declaration: false,
        }
    }

    fn record(path: &str, hash: u8) -> FileRecord<'_> {
        FileRecord {
            path,
            hash: [hash; 32],
            size: 10,
            mtime_ns: 5,
            language: "rust",
        }
    }

    #[test]
    fn round_trip_files_chunks_and_vectors() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, note) = IndexStore::open(&dir.path().join("store.sqlite")).unwrap();
        assert!(note.is_none());
        let change = store
            .replace_file(
                &record("src/a.rs", 1),
                &[chunk("a", "fn a() {}"), chunk("b", "fn b() {}")],
                "fp",
            )
            .unwrap();
        assert_eq!(change.added.len(), 2);
        assert_eq!(change.reused, 0);
        let states = store.file_states().unwrap();
        assert_eq!(states["src/a.rs"].hash, [1; 32]);
        let pending = store.pending_texts("fp", 10).unwrap();
        assert_eq!(pending.len(), 2);
        let vectors: Vec<_> = pending
            .iter()
            .map(|(h, _)| (*h, vec![0.5f32, -0.25, 1.0]))
            .collect();
        let ids = store.insert_vectors("fp", &vectors).unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(store.pending_count("fp").unwrap(), 0);
        assert_eq!(store.pending_count("other-model").unwrap(), 2);
        let got = store.vectors_for_chunks("fp", &change.added).unwrap();
        assert_eq!(got[0].1, vec![0.5, -0.25, 1.0]);
        let chunks = store
            .chunks_by_ids(&[change.added[1], change.added[0]])
            .unwrap();
        assert_eq!(chunks[0].name, "b");
        assert_eq!(chunks[1].path, "src/a.rs");
        let counts = store.counts("fp").unwrap();
        assert_eq!(
            counts,
            StoreCounts {
                files: 1,
                chunks: 2,
                embedded_chunks: 2,
                vectors: 2
            }
        );
    }

    #[test]
    fn replacing_a_file_swaps_all_chunks_and_reuses_cached_vectors() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = IndexStore::open(&dir.path().join("store.sqlite")).unwrap();
        let first = store
            .replace_file(
                &record("a.rs", 1),
                &[chunk("a", "fn a() {}"), chunk("b", "fn b() {}")],
                "fp",
            )
            .unwrap();
        let pending = store.pending_texts("fp", 10).unwrap();
        let vectors: Vec<_> = pending.iter().map(|(h, _)| (*h, vec![1.0f32])).collect();
        store.insert_vectors("fp", &vectors).unwrap();
        let generation = store.generation().unwrap();
        let second = store
            .replace_file(
                &record("a.rs", 2),
                &[chunk("a", "fn a() {}"), chunk("c", "fn c() {}")],
                "fp",
            )
            .unwrap();
        assert_eq!(second.removed, first.added);
        assert_eq!(second.reused, 1, "fn a() is unchanged and keeps its vector");
        assert_eq!(store.pending_count("fp").unwrap(), 1);
        assert!(store.generation().unwrap() > generation);
        let removed = store.remove_file("a.rs").unwrap();
        assert_eq!(removed, second.added);
        assert_eq!(store.counts("fp").unwrap().chunks, 0);
        // The embedding cache outlives the file: a revert re-embeds nothing.
        assert_eq!(store.counts("fp").unwrap().vectors, 2);
    }

    #[test]
    fn pending_texts_page_in_hash_order_and_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = IndexStore::open(&dir.path().join("store.sqlite")).unwrap();
        let texts: Vec<String> = (0..7).map(|i| format!("fn f{i}() {{}}")).collect();
        let chunks: Vec<Chunk> = texts.iter().map(|t| chunk("f", t)).collect();
        store
            .replace_file(&record("a.rs", 1), &chunks[..5], "fp")
            .unwrap();
        store
            .replace_file(&record("b.rs", 2), &chunks[4..], "fp")
            .unwrap();
        let all = store.pending_texts("fp", 100).unwrap();
        assert_eq!(all.len(), 7, "f4 is in both files, one text");
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "hash order");
        // Pages of 3 from the last hash seen cover every text once.
        let (mut paged, mut after) = (Vec::new(), None);
        loop {
            let page = store.pending_texts_after("fp", after.as_ref(), 3).unwrap();
            let Some(&(last, _)) = page.last() else {
                break;
            };
            after = Some(last);
            paged.extend(page);
        }
        assert_eq!(paged, all);
        // A file's own pending texts; once embedded, none.
        let in_b = store.pending_texts_in_file("fp", "b.rs").unwrap();
        let mut names: Vec<&str> = in_b.iter().map(|(_, t)| t.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["fn f4() {}", "fn f5() {}", "fn f6() {}"]);
        let vectors: Vec<_> = in_b.iter().map(|(h, _)| (*h, vec![1.0f32])).collect();
        store.insert_vectors("fp", &vectors).unwrap();
        assert!(
            store
                .pending_texts_in_file("fp", "b.rs")
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.pending_texts_in_file("fp", "a.rs").unwrap().len(), 4);
        assert!(
            store
                .pending_texts_in_file("fp", "gone.rs")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_failed_transaction_leaves_the_old_file_intact() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = IndexStore::open(&dir.path().join("store.sqlite")).unwrap();
        store
            .replace_file(&record("a.rs", 1), &[chunk("a", "fn a() {}")], "fp")
            .unwrap();
        // Make the chunk insert fail half-way through the replacement.
        store
            .conn
            .execute_batch(
                "CREATE TRIGGER fail_c BEFORE INSERT ON chunks WHEN NEW.name = 'c'
                 BEGIN SELECT RAISE(ABORT, 'simulated crash'); END;",
            )
            .unwrap();
        let result = store.replace_file(
            &record("a.rs", 2),
            &[chunk("b", "fn b() {}"), chunk("c", "fn c() {}")],
            "fp",
        );
        assert!(result.is_err());
        let states = store.file_states().unwrap();
        assert_eq!(states["a.rs"].hash, [1; 32], "file is fully old");
        let ids: Vec<i64> = (1..10).collect();
        let names: Vec<String> = store
            .chunks_by_ids(&ids)
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, vec!["a"]);
    }

    #[test]
    fn a_corrupt_store_is_moved_aside_and_recreated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        std::fs::write(
            &path,
            b"this is not a database, just garbage bytes".repeat(200),
        )
        .unwrap();
        let (store, note) = IndexStore::open(&path).unwrap();
        let note = note.unwrap();
        assert!(note.contains("moved to"), "{note}");
        assert_eq!(store.counts("fp").unwrap().files, 0);
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "the corrupt file is kept for inspection");
    }

    #[test]
    fn chunks_with_an_identifier_are_found_through_the_lexical_index() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = IndexStore::open(&dir.path().join("store.sqlite")).unwrap();
        let text = "#[doc = include_str!(\"docs/nest.md\")]\npub fn nest() {}";
        store
            .replace_file(&record("src/a.rs", 1), &[chunk("nest", text)], "fp")
            .unwrap();
        let python = FileRecord {
            language: "python",
            ..record("src/b.py", 2)
        };
        store
            .replace_file(&python, &[chunk("load", "def load(): include_str")], "fp")
            .unwrap();
        let found = store.chunks_with_identifier("rust", "include_str").unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].1.as_str(), found[0].2.as_str()),
            ("src/a.rs", text)
        );
        assert!(
            store
                .chunks_with_identifier("rust", "nothing_here")
                .unwrap()
                .is_empty()
        );
        // A quote in the identifier cannot break out of the FTS expression.
        assert!(store.chunks_with_identifier("rust", "a\" OR \"b").is_ok());
    }

    #[test]
    fn lexical_and_fuzzy_name_search() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = IndexStore::open(&dir.path().join("store.sqlite")).unwrap();
        store
            .replace_file(
                &record("src/http.rs", 1),
                &[
                    chunk(
                        "parseHttpRequest",
                        "fn parseHttpRequest() { read_headers(); }",
                    ),
                    chunk("send_response", "fn send_response() { write_body(); }"),
                    chunk("parse", "fn parse() {}"),
                ],
                "fp",
            )
            .unwrap();
        let hits = store.lexical_search("http request", 10).unwrap();
        assert_eq!(hits[0].0.name, "parseHttpRequest");
        let hits = store.lexical_search("read_headers", 10).unwrap();
        assert_eq!(hits.len(), 1);
        assert!(store.lexical_search("\"*(", 10).unwrap().is_empty());

        let names: Vec<String> = store
            .symbols_by_name("parse", 10)
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, vec!["parse", "parseHttpRequest"]);
        let names: Vec<String> = store
            .symbols_by_name("sndrsp", 10)
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, vec!["send_response"]);
        assert!(store.symbols_by_name("%", 10).unwrap().is_empty());
        // A replaced text is what lexical search and the vectors see from then on.
        let parse = store.symbols_named("parse", 1).unwrap().remove(0);
        store
            .replace_chunk_text(parse.id, "fn parse() { tokenize_everything(); }")
            .unwrap();
        assert_eq!(
            store.lexical_search("tokenize_everything", 5).unwrap()[0]
                .0
                .id,
            parse.id
        );
        assert_eq!(
            store.chunks_by_ids(&[parse.id]).unwrap()[0].text,
            "fn parse() { tokenize_everything(); }"
        );
        let pending = store.pending_texts("fp", 10).unwrap();
        assert!(
            pending
                .iter()
                .any(|(_, text)| text.contains("tokenize_everything")),
            "the new text waits for a vector"
        );
        // Exact names only: `parse` is not `parseHttpRequest`; case aside.
        let named = |n: &str| -> Vec<String> {
            store
                .symbols_named(n, 10)
                .unwrap()
                .into_iter()
                .map(|c| c.name)
                .collect()
        };
        assert_eq!(named("parse"), vec!["parse"]);
        assert_eq!(named("ParseHTTPRequest"), vec!["parseHttpRequest"]);
        assert_eq!(named("parse?"), vec!["parse"]);
        assert!(named("request").is_empty());
        assert!(named("\"").is_empty());
        let in_file = store.chunks_in_file("src/http.rs").unwrap();
        assert_eq!(in_file.len(), 3);
    }

    #[test]
    fn an_outdated_lexical_index_is_rebuilt_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        {
            let (mut store, _) = IndexStore::open(&path).unwrap();
            store
                .replace_file(
                    &record("src/retry.rs", 1),
                    &[chunk("backoffDelay", "fn backoffDelay() {}")],
                    "fp",
                )
                .unwrap();
            // As a store written by an older build: another FTS version, an empty table.
            store.set_meta("fts_version", "0").unwrap();
            store.conn.execute("DELETE FROM chunks_fts", []).unwrap();
            assert!(
                store
                    .lexical_search("backoff delay", 10)
                    .unwrap()
                    .is_empty()
            );
        }
        let (store, note) = IndexStore::open(&path).unwrap();
        assert!(
            note.is_none(),
            "a rebuild is not a reason to move the store aside"
        );
        let hits = store.lexical_search("backoff delay", 10).unwrap();
        assert_eq!(hits[0].0.name, "backoffDelay");
        assert_eq!(
            store.meta("fts_version").unwrap().as_deref(),
            Some(FTS_VERSION)
        );
    }

    #[test]
    fn a_store_without_the_newer_chunk_columns_gains_them_and_keeps_its_vectors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        let plain = chunk("run", "fn run() {}");
        {
            let (mut store, _) = IndexStore::open(&path).unwrap();
            store
                .replace_file(&record("src/run.rs", 1), std::slice::from_ref(&plain), "fp")
                .unwrap();
            store
                .insert_vectors("fp", &[(plain.text_hash, vec![1.0, 0.0])])
                .unwrap();
            // As a store written before the column existed.
            store
                .conn
                .execute_batch("ALTER TABLE chunks DROP COLUMN declaration")
                .unwrap();
        }
        let (mut store, note) = IndexStore::open(&path).unwrap();
        assert!(note.is_none(), "a new column is no reason to rebuild");
        let chunks = store.chunks_in_file("src/run.rs").unwrap();
        assert_eq!(chunks.len(), 1);
        assert!(!chunks[0].declaration);
        assert_eq!(store.counts("fp").unwrap().embedded_chunks, 1);
        let mut declared = chunk("visit", "fn visit(&mut self);");
        declared.declaration = true;
        store
            .replace_file(&record("src/visit.rs", 2), &[declared], "fp")
            .unwrap();
        assert!(store.chunks_in_file("src/visit.rs").unwrap()[0].declaration);
        let hits = store.lexical_search("visit", 10).unwrap();
        assert!(hits[0].0.declaration && hits[0].1 > 0.0, "{hits:?}");
    }

    #[test]
    fn forgotten_files_look_changed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = IndexStore::open(&dir.path().join("store.sqlite")).unwrap();
        store
            .replace_file(&record("a.rs", 7), &[chunk("a", "fn a() {}")], "fp")
            .unwrap();
        store.forget_file_contents().unwrap();
        assert_eq!(store.file_hash("a.rs").unwrap(), Some([0; 32]));
        let states = store.file_states().unwrap();
        assert_ne!(
            states["a.rs"].size, 10,
            "the size no longer matches the file"
        );
        assert_eq!(store.chunks_in_file("a.rs").unwrap().len(), 1);
    }

    #[test]
    fn stop_words_do_not_rank() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = IndexStore::open(&dir.path().join("store.sqlite")).unwrap();
        store
            .replace_file(
                &record("src/a.rs", 1),
                &[
                    chunk("noise", "fn noise() { the the the is is where how }"),
                    chunk("retry_request", "fn retry_request() {}"),
                ],
                "fp",
            )
            .unwrap();
        let hits = store
            .lexical_search("where is the request retried", 10)
            .unwrap();
        let names: Vec<&str> = hits.iter().map(|h| h.0.name.as_str()).collect();
        assert_eq!(names, vec!["retry_request"]);
    }

    #[test]
    fn vectors_encode_as_f16() {
        let v = vec![0.1f32, -0.7, 0.333];
        let back = decode_vector(&encode_vector(&v));
        assert_eq!(encode_vector(&v).len(), 6);
        for (a, b) in v.iter().zip(back) {
            assert!((a - b).abs() < 1e-3);
        }
    }
}
