//! Where a model runs: `cpu`, `cuda[:N]` or `metal`, as users write it, and what follows from
//! the choice (the tensor precision and how many tokens one batch may hold).
//!
//! GPUs need the matching cargo feature (`cuda`, `metal`); asking for one in a build without it
//! is a clear error, not a silent fall back to the CPU.

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device};

/// A device as the user asked for it (parsed, not yet opened).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    #[default]
    Cpu,
    /// A CUDA GPU by ordinal (`cuda` = `cuda:0`).
    Cuda(usize),
    /// The Apple GPU.
    Metal,
}

/// Tokens per model batch on the CPU: large enough to keep the cores busy, small enough that
/// padding stays low once inputs are sorted by length.
pub const CPU_TOKEN_BUDGET: usize = 4096;
/// Tokens per batch on a CUDA GPU. A 1.5B decoder in bf16 needs about 60 KB of activations per
/// token per layer in flight (plus f32 attention scores), so 16k tokens stay within a few GB
/// next to the 3 GB of weights: safe on an 8 GB card, enough to keep a large one busy.
pub const CUDA_TOKEN_BUDGET: usize = 16384;
/// Tokens per batch on Metal, whose memory is shared with the rest of the machine.
pub const METAL_TOKEN_BUDGET: usize = 8192;

/// Errors choosing or opening a device.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device {0:?}: use cpu, cuda, cuda:N (N = GPU number) or metal")]
    Unknown(String),
    #[error(
        "device {device} needs a build of coder-lsp with the `{feature}` feature (cargo build --release --features {feature}); this build runs on the CPU only, so use --device cpu"
    )]
    NotCompiled {
        device: DeviceSpec,
        feature: &'static str,
    },
    #[error("cannot open device {device}: {message}")]
    Open { device: DeviceSpec, message: String },
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            "metal" | "mps" => Ok(Self::Metal),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<usize>().ok())
                .map(Self::Cuda)
                .ok_or_else(|| DeviceError::Unknown(s.to_string())),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
            Self::Metal => f.write_str("metal"),
        }
    }
}

impl DeviceSpec {
    /// The cargo feature this device needs, if any.
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Self::Cpu => None,
            Self::Cuda(_) => Some("cuda"),
            Self::Metal => Some("metal"),
        }
    }

    /// Whether this build can run on the device at all.
    pub fn is_compiled(self) -> bool {
        match self {
            Self::Cpu => true,
            Self::Cuda(_) => cfg!(feature = "cuda"),
            Self::Metal => cfg!(feature = "metal"),
        }
    }

    /// Checks that this build supports the device (before any model is read).
    pub fn check_compiled(self) -> Result<(), DeviceError> {
        match self.feature() {
            Some(feature) if !self.is_compiled() => Err(DeviceError::NotCompiled {
                device: self,
                feature,
            }),
            _ => Ok(()),
        }
    }

    /// Opens the device.
    pub fn open(self) -> Result<Device, DeviceError> {
        self.check_compiled()?;
        let opened = match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(n) => Device::new_cuda(n),
            Self::Metal => Device::new_metal(0),
        };
        opened.map_err(|e| DeviceError::Open {
            device: self,
            message: e.to_string(),
        })
    }

    /// The precision weights and activations use here: f32 on the CPU (half-precision matmuls
    /// are slow there), bf16 on CUDA (f16's range is too small for Qwen2's activations), f16 on
    /// Metal (the type its kernels cover best).
    pub fn dtype(self) -> DType {
        match self {
            Self::Cpu => DType::F32,
            Self::Cuda(_) => DType::BF16,
            Self::Metal => DType::F16,
        }
    }

    /// Most padded tokens in one model batch on this device.
    pub fn token_budget(self) -> usize {
        match self {
            Self::Cpu => CPU_TOKEN_BUDGET,
            Self::Cuda(_) => CUDA_TOKEN_BUDGET,
            Self::Metal => METAL_TOKEN_BUDGET,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_users_write() {
        for (text, spec) in [
            ("cpu", DeviceSpec::Cpu),
            (" CPU ", DeviceSpec::Cpu),
            ("cuda", DeviceSpec::Cuda(0)),
            ("cuda:1", DeviceSpec::Cuda(1)),
            ("CUDA:3", DeviceSpec::Cuda(3)),
            ("metal", DeviceSpec::Metal),
        ] {
            assert_eq!(text.parse::<DeviceSpec>().unwrap(), spec, "{text}");
        }
        for bad in ["", "tpu", "cuda:", "cuda:x", "cuda:-1", "cuda1", "metal:0"] {
            let err = bad.parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(err.contains("unknown device"), "{bad}: {err}");
            assert!(err.contains("cuda:N"), "{err}");
        }
        assert_eq!(DeviceSpec::Cuda(2).to_string(), "cuda:2");
        assert_eq!(
            DeviceSpec::Cuda(2)
                .to_string()
                .parse::<DeviceSpec>()
                .unwrap(),
            DeviceSpec::Cuda(2)
        );
    }

    #[test]
    fn precision_and_budget_follow_the_device() {
        assert_eq!(DeviceSpec::Cpu.dtype(), DType::F32);
        assert!(DeviceSpec::Cuda(0).dtype() != DType::F32);
        assert!(DeviceSpec::Metal.dtype() != DType::F32);
        assert!(DeviceSpec::Cuda(0).token_budget() > DeviceSpec::Cpu.token_budget());
        assert!(matches!(DeviceSpec::Cpu.open().unwrap(), Device::Cpu));
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_a_clear_error() {
        let err = DeviceSpec::Cuda(0).open().unwrap_err().to_string();
        assert!(err.contains("`cuda` feature"), "{err}");
        assert!(err.contains("--device cpu"), "{err}");
    }

    #[cfg(not(feature = "metal"))]
    #[test]
    fn metal_without_the_feature_is_a_clear_error() {
        let err = DeviceSpec::Metal.check_compiled().unwrap_err().to_string();
        assert!(err.contains("`metal` feature"), "{err}");
    }
}
