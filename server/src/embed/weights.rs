//! The tensors of a checkpoint (`model.safetensors` or its shards), looked up by name and
//! checked against the shapes config.json implies, so a mismatched checkpoint fails at load time
//! with the tensor's name rather than deep inside a forward pass.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::EmbedError;
use super::lora::Adapter;

/// Named tensors, taken out one by one while a model is assembled.
pub(super) struct Weights {
    pub(super) dir: PathBuf,
    tensors: HashMap<String, Tensor>,
    /// Put before every name (`bert.`, `model.`): checkpoints saved from a task model carry the
    /// base model's attribute name, ones saved from the base model do not.
    prefix: &'static str,
    dtype: DType,
}

impl Weights {
    /// What error messages call the weights (one file or several shards alike).
    pub(super) const FILE: &'static str = "model.safetensors";

    /// Reads the checkpoint in `dir` onto `device`. The prefix is the first of `prefixes`
    /// under which `probe` (a tensor every such model has) exists, else the last one.
    pub(super) fn read(
        dir: &Path,
        device: &Device,
        dtype: DType,
        probe: &str,
        prefixes: &[&'static str],
    ) -> Result<Self, EmbedError> {
        let tensors = super::read_safetensors(dir, device)?;
        let prefix = prefixes
            .iter()
            .copied()
            .find(|p| tensors.contains_key(&format!("{p}{probe}")))
            .or_else(|| prefixes.last().copied())
            .unwrap_or("");
        Ok(Self {
            dir: dir.to_path_buf(),
            tensors,
            prefix,
            dtype,
        })
    }

    /// Takes tensor `name` (or the first of its `aliases` present), in the model's precision,
    /// of shape `shape`.
    pub(super) fn take(
        &mut self,
        name: &str,
        aliases: &[&str],
        shape: &[usize],
    ) -> Result<Tensor, EmbedError> {
        let file = Self::FILE;
        let found = std::iter::once(name)
            .chain(aliases.iter().copied())
            .find_map(|n| self.tensors.remove(&format!("{}{n}", self.prefix)));
        let Some(tensor) = found else {
            return Err(EmbedError::load(
                &self.dir,
                format!("{file}: tensor `{}{name}` not found", self.prefix),
            ));
        };
        if tensor.dims() != shape {
            return Err(EmbedError::load(
                &self.dir,
                format!(
                    "{file}: tensor `{}{name}` has shape {:?}, config.json implies {shape:?}",
                    self.prefix,
                    tensor.dims()
                ),
            ));
        }
        tensor
            .to_dtype(self.dtype)
            .map_err(|e| EmbedError::load(&self.dir, format!("{file}: tensor `{name}`: {e}")))
    }

    /// Like [`Weights::take`] for a tensor some checkpoints lack (a bias).
    pub(super) fn take_optional(
        &mut self,
        name: &str,
        shape: &[usize],
    ) -> Result<Option<Tensor>, EmbedError> {
        if self.tensors.contains_key(&format!("{}{name}", self.prefix)) {
            self.take(name, &[], shape).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Adds `adapter`'s low-rank updates to the weights they modify, before the model takes
    /// them (and fuses some). Every adapted matrix must exist in this checkpoint.
    pub(super) fn merge_adapter(&mut self, adapter: Option<&Adapter>) -> Result<(), EmbedError> {
        let Some(adapter) = adapter else {
            return Ok(());
        };
        for module in adapter.modules() {
            let key = format!("{}{module}.weight", self.prefix);
            let Some(weight) = self.tensors.get(&key) else {
                return Err(EmbedError::Adapter {
                    dir: adapter.dir.clone(),
                    message: format!(
                        "modifies `{module}`, which the model in {} does not have",
                        self.dir.display()
                    ),
                });
            };
            if let Some(merged) = adapter.merge_into(module, weight)? {
                self.tensors.insert(key, merged);
            }
        }
        Ok(())
    }
}
