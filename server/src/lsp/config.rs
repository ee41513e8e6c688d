//! `initializationOptions`: what the client wrote (`RawConfig`), validated once into `Config`.

use std::path::PathBuf;

use serde::Deserialize;

use crate::embed::{DeviceSpec, Instructions, QueryTask};
use crate::engine::EngineSettings;
use crate::finetune::FineTuneSettings;
use crate::model::{DEFAULT_MODEL, ModelOptions};
use crate::search::{DEFAULT_TOP_K, Priors};
use crate::workspace::DEFAULT_MAX_FILE_SIZE;

/// Largest `topK` a client may ask for.
const MAX_TOP_K: usize = 200;

/// The options as a client sends them; every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawConfig {
    pub model: Option<String>,
    pub device: Option<String>,
    /// Query instructions by task (`search`, `similar`, `docs`) for instruction-tuned models.
    pub instructions: Option<std::collections::BTreeMap<String, String>>,
    pub index_dir: Option<PathBuf>,
    pub exclude: Option<Vec<String>>,
    pub top_k: Option<i64>,
    pub max_file_size: Option<i64>,
    pub hover: Option<bool>,
    /// Defaults of the `fineTune` command (`maxStepsPerStage`, `batchSize`, `epochs`, …).
    pub fine_tune: Option<FineTuneSettings>,
    /// Path priors of the ranking by class (`{"test": 1}` ranks tests like other code).
    pub priors: Option<Priors>,
}

/// Validated settings of the language server.
#[derive(Debug, Clone)]
pub struct Config {
    pub engine: EngineSettings,
    pub top_k: usize,
    pub hover: bool,
    pub fine_tune: FineTuneSettings,
}

impl Config {
    /// Parses and validates `initializationOptions` (absent or `null` means all defaults).
    pub fn from_options(options: Option<serde_json::Value>) -> Result<Self, String> {
        let raw: RawConfig = match options {
            None | Some(serde_json::Value::Null) => RawConfig::default(),
            Some(value) => serde_json::from_value(value)
                .map_err(|e| format!("invalid initializationOptions: {e}"))?,
        };
        raw.validate()
    }
}

impl RawConfig {
    fn validate(self) -> Result<Config, String> {
        let device = match self.device.as_deref() {
            None => DeviceSpec::Cpu,
            Some(text) => {
                let device: DeviceSpec = text.parse().map_err(|e| format!("device: {e}"))?;
                device.check_compiled().map_err(|e| e.to_string())?;
                device
            }
        };
        let mut instructions = Instructions::default();
        for (name, text) in self.instructions.iter().flatten() {
            let task = QueryTask::parse(name).ok_or_else(|| {
                format!(
                    "instructions: unknown task {name:?}; tasks: {}",
                    QueryTask::ALL.map(QueryTask::name).join(", ")
                )
            })?;
            instructions
                .set(task, text)
                .map_err(|e| format!("instructions: {e}"))?;
        }
        let top_k = match self.top_k {
            None => DEFAULT_TOP_K,
            Some(k) if (1..=MAX_TOP_K as i64).contains(&k) => k as usize,
            Some(k) => return Err(format!("topK must be between 1 and {MAX_TOP_K}, got {k}")),
        };
        let max_file_size = match self.max_file_size {
            None => DEFAULT_MAX_FILE_SIZE,
            Some(n) if n > 0 => n as u64,
            Some(n) => {
                return Err(format!(
                    "maxFileSize must be a positive number of bytes, got {n}"
                ));
            }
        };
        let model = match self.model {
            Some(m) if m.trim().is_empty() => return Err("model must not be empty".into()),
            Some(m) => m,
            None => DEFAULT_MODEL.to_string(),
        };
        let priors = self.priors.unwrap_or_default();
        priors.validate().map_err(|e| format!("priors: {e}"))?;
        let exclude = self.exclude.unwrap_or_default();
        for pattern in &exclude {
            globset::Glob::new(pattern.trim_start_matches('/'))
                .map_err(|e| format!("invalid exclude glob {pattern:?}: {e}"))?;
        }
        Ok(Config {
            engine: EngineSettings {
                model,
                model_options: ModelOptions {
                    device,
                    instructions,
                    adapter: None,
                },
                index_dir: self.index_dir,
                exclude,
                max_file_size,
                priors,
            },
            top_k,
            hover: self.hover.unwrap_or(true),
            fine_tune: self.fine_tune.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_when_absent() {
        let config = Config::from_options(None).unwrap();
        assert_eq!(config.top_k, DEFAULT_TOP_K);
        assert!(config.hover);
        assert_eq!(config.engine.model, DEFAULT_MODEL);
        assert_eq!(config.engine.max_file_size, DEFAULT_MAX_FILE_SIZE);
    }

    #[test]
    fn values_are_read_and_checked() {
        let config = Config::from_options(Some(json!({
            "model": "/models/mini", "indexDir": "/tmp/idx", "exclude": ["vendor/"],
            "topK": 25, "maxFileSize": 2048, "hover": false, "device": "CPU",
            "fineTune": {"maxStepsPerStage": 2, "batchSize": 4}
        })))
        .unwrap();
        assert_eq!(config.fine_tune.max_steps_per_stage, Some(2));
        assert_eq!(config.fine_tune.batch_size, Some(4));
        assert_eq!(config.top_k, 25);
        assert!(!config.hover);
        assert_eq!(config.engine.index_dir, Some(PathBuf::from("/tmp/idx")));
        assert_eq!(config.engine.exclude, vec!["vendor/"]);
        assert_eq!(config.engine.model_options.device, DeviceSpec::Cpu);

        for (bad, needle) in [
            (json!({"topK": 0}), "topK"),
            (json!({"topK": "ten"}), "invalid initializationOptions"),
            (json!({"maxFileSize": -1}), "maxFileSize"),
            (json!({"device": "tpu"}), "unknown device"),
            (json!({"device": "cuda:x"}), "unknown device"),
            (json!({"instructions": {"find": "x"}}), "unknown task"),
            (json!({"instructions": {"search": ""}}), "must not be empty"),
            (json!({"model": " "}), "model"),
            (json!({"exclude": ["a/["]}), "exclude"),
            (json!({"fineTune": {"steps": 3}}), "unknown field `steps`"),
            (
                json!(["not", "an", "object"]),
                "invalid initializationOptions",
            ),
        ] {
            let err = Config::from_options(Some(bad)).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn instructions_are_set_per_task() {
        let config = Config::from_options(Some(json!({
            "model": "bge-code-v1",
            "instructions": {"similar": "Find code like this."}
        })))
        .unwrap();
        let instructions = &config.engine.model_options.instructions;
        assert_eq!(
            instructions.get(QueryTask::SimilarCode),
            "Find code like this."
        );
        assert_eq!(
            instructions.get(QueryTask::CodeSearch),
            QueryTask::CodeSearch.default_instruction()
        );
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_gpu_this_build_lacks_is_refused_with_the_fix() {
        let err = Config::from_options(Some(json!({"device": "cuda:1"}))).unwrap_err();
        assert!(err.contains("`cuda` feature"), "{err}");
    }
}
