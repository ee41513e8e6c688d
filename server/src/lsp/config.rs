//! `initializationOptions`: what the client wrote (`RawConfig`), validated once into `Config`.

use std::path::PathBuf;

use serde::Deserialize;

use crate::engine::EngineSettings;
use crate::model::DEFAULT_MODEL;
use crate::search::DEFAULT_TOP_K;
use crate::workspace::DEFAULT_MAX_FILE_SIZE;

/// Largest `topK` a client may ask for.
const MAX_TOP_K: usize = 200;

/// The options as a client sends them; every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawConfig {
    pub model: Option<String>,
    pub device: Option<String>,
    pub index_dir: Option<PathBuf>,
    pub exclude: Option<Vec<String>>,
    pub top_k: Option<i64>,
    pub max_file_size: Option<i64>,
    pub hover: Option<bool>,
}

/// Validated settings of the language server.
#[derive(Debug, Clone)]
pub struct Config {
    pub engine: EngineSettings,
    pub top_k: usize,
    pub hover: bool,
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
        match self
            .device
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("cpu") => {}
            Some(other) => {
                return Err(format!(
                    "device {other:?} is not supported by this build of coder-lsp (it runs on the CPU); remove the `device` option"
                ));
            }
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
        let exclude = self.exclude.unwrap_or_default();
        for pattern in &exclude {
            globset::Glob::new(pattern.trim_start_matches('/'))
                .map_err(|e| format!("invalid exclude glob {pattern:?}: {e}"))?;
        }
        Ok(Config {
            engine: EngineSettings {
                model,
                index_dir: self.index_dir,
                exclude,
                max_file_size,
            },
            top_k,
            hover: self.hover.unwrap_or(true),
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
            "topK": 25, "maxFileSize": 2048, "hover": false, "device": "CPU"
        })))
        .unwrap();
        assert_eq!(config.top_k, 25);
        assert!(!config.hover);
        assert_eq!(config.engine.index_dir, Some(PathBuf::from("/tmp/idx")));
        assert_eq!(config.engine.exclude, vec!["vendor/"]);

        for (bad, needle) in [
            (json!({"topK": 0}), "topK"),
            (json!({"topK": "ten"}), "invalid initializationOptions"),
            (json!({"maxFileSize": -1}), "maxFileSize"),
            (json!({"device": "cuda"}), "not supported"),
            (json!({"model": " "}), "model"),
            (json!({"exclude": ["a/["]}), "exclude"),
            (
                json!(["not", "an", "object"]),
                "invalid initializationOptions",
            ),
        ] {
            let err = Config::from_options(Some(bad)).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }
}
