//! What identifies a model's vectors in an index: [`ModelKey`] (fingerprint and dimensions)
//! and [`ServedModel`] (how to load the model that last served an index again). A leaf module:
//! the index stores them, the model makes them, neither imports the other for it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The model an index's vectors belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelKey {
    pub fingerprint: String,
    pub dimensions: usize,
}

/// The last model that had a vector for every chunk of an index, and how to load it again:
/// when another model is asked for, this one keeps answering until the new one has caught up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedModel {
    pub fingerprint: String,
    /// The model's resolved directory.
    pub dir: PathBuf,
    /// The adapter merged into it, if any.
    pub adapter: Option<PathBuf>,
}
