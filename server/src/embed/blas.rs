//! An optional system BLAS for the CPU matmuls of inference.
//!
//! candle's CPU matmul (the `gemm` crate, with its AVX-512 kernels enabled) reaches a fraction of
//! what Intel MKL reaches on the same cores (bench/RESULTS.md has the figures). When MKL's
//! `libmkl_rt` is on the library path, coder-lsp loads its `cblas_sgemm` at run time — no
//! build-time dependency, nothing to configure — and uses it for the model's Linear layers;
//! otherwise candle's matmul serves. `CODER_LSP_BLAS` names another CBLAS library to load instead
//! (a path to `libmkl_rt.so.2` from `pip install mkl`, or OpenBLAS's `libopenblas.so.0`), or
//! `none` to never load one. OpenBLAS is not tried by default: Debian's 0.3.21 measured slower
//! than gemm's AVX-512 kernels here.
//!
//! This is the one module that calls foreign code: the CBLAS function is declared with its C
//! signature and called with buffers whose sizes are checked against the dimensions first.

#![allow(unsafe_code)]

use std::ffi::c_int;
use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `cblas_sgemm`: C = alpha·op(A)·op(B) + beta·C.
type Sgemm = unsafe extern "C" fn(
    layout: c_int,
    trans_a: c_int,
    trans_b: c_int,
    m: c_int,
    n: c_int,
    k: c_int,
    alpha: f32,
    a: *const f32,
    lda: c_int,
    b: *const f32,
    ldb: c_int,
    beta: f32,
    c: *mut f32,
    ldc: c_int,
);
/// `openblas_set_num_threads` / `MKL_Set_Threading_Layer`.
type SetInt = unsafe extern "C" fn(value: c_int) -> c_int;

/// `MKL_Set_Threading_Layer` argument: MKL runs on the calling thread only.
const MKL_THREADING_SEQUENTIAL: c_int = 1;
/// Rows each rayon task multiplies at least.
const MIN_ROWS_PER_TASK: usize = 64;

const CBLAS_ROW_MAJOR: c_int = 101;
const CBLAS_NO_TRANS: c_int = 111;
const CBLAS_TRANS: c_int = 112;

/// Libraries tried in order when `CODER_LSP_BLAS` is unset: MKL's single dynamic library.
const CANDIDATES: &[&str] = &["libmkl_rt.so.2", "libmkl_rt.so"];

/// A loaded BLAS library.
pub struct Blas {
    /// Kept so the function pointer stays valid.
    _library: libloading::Library,
    sgemm: Sgemm,
    /// The file it was loaded from, for display (`cpu f32 · libopenblas.so.0`).
    pub name: String,
}

impl std::fmt::Debug for Blas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blas").field("name", &self.name).finish()
    }
}

/// The system BLAS, loaded on first use; `None` when there is none (or `CODER_LSP_BLAS=none`).
pub fn system() -> Option<&'static Blas> {
    static BLAS: OnceLock<Option<Blas>> = OnceLock::new();
    BLAS.get_or_init(|| {
        let chosen = std::env::var("CODER_LSP_BLAS").ok();
        let names: Vec<String> = match chosen.as_deref() {
            Some("none") => return None,
            Some(path) if !path.is_empty() => vec![path.to_string()],
            _ => CANDIDATES.iter().map(|s| (*s).to_string()).collect(),
        };
        for name in &names {
            match open(name) {
                Ok(blas) => {
                    tracing::info!("matmuls run on {name}");
                    return Some(blas);
                }
                Err(e) if chosen.is_some() => {
                    tracing::warn!(
                        "CODER_LSP_BLAS={name} could not be used ({e}); using candle's matmul"
                    );
                }
                Err(e) => tracing::debug!("no BLAS from {name}: {e}"),
            }
        }
        None
    })
    .as_ref()
}

fn open(name: &str) -> std::result::Result<Blas, libloading::Error> {
    // SAFETY: loading a BLAS runs its initialisers, which set up its thread pool and nothing
    // else; the symbols are looked up with the C signatures the CBLAS standard gives them.
    unsafe {
        let library = libloading::Library::new(name)?;
        let sgemm: Sgemm = *library.get::<Sgemm>(b"cblas_sgemm\0")?;
        // The library computes on the calling thread only; rayon splits the rows (see `x_wt`).
        // A BLAS thread pool of its own would spin between calls and take the cores from the
        // rest of the model (measured: 18% of all time in MKL's OpenMP wait loop).
        if let Ok(set) = library.get::<SetInt>(b"MKL_Set_Threading_Layer\0") {
            set(MKL_THREADING_SEQUENTIAL);
        }
        if let Ok(set) = library.get::<SetInt>(b"openblas_set_num_threads\0") {
            set(1);
        }
        Ok(Blas {
            sgemm,
            name: name.rsplit('/').next().unwrap_or(name).to_string(),
            _library: library,
        })
    }
}

impl Blas {
    /// `x · wᵀ` for row-major `x` `(m, k)` and `w` `(n, k)`, into a new `(m, n)` buffer.
    fn x_wt(&self, x: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Result<Vec<f32>> {
        if x.len() != m * k || w.len() != n * k {
            candle_core::bail!(
                "blas: buffers of {} and {} for ({m}×{k})·({n}×{k})ᵀ",
                x.len(),
                w.len()
            );
        }
        let dim = |v: usize| {
            c_int::try_from(v).map_err(|_| candle_core::Error::Msg(format!("blas: {v} too large")))
        };
        let (ni, ki) = (dim(n)?, dim(k)?);
        dim(m)?;
        let mut out = vec![0f32; m * n];
        if m == 0 || n == 0 {
            return Ok(out);
        }
        let sgemm = self.sgemm;
        let rows_per_task = m
            .div_ceil(rayon::current_num_threads().max(1))
            .max(MIN_ROWS_PER_TASK);
        out.par_chunks_mut(rows_per_task * n)
            .zip(x.par_chunks(rows_per_task * k))
            .try_for_each(|(out, x)| -> Result<()> {
                let rows = dim(x.len() / k)?;
                // SAFETY: `x` holds rows·k floats with row stride k, `w` n·k floats with row
                // stride k and `out` rows·n floats with row stride n (the chunks are cut at row
                // boundaries of buffers checked above); beta = 0 so `out` is only written; the
                // library does not keep the pointers after returning.
                unsafe {
                    sgemm(
                        CBLAS_ROW_MAJOR,
                        CBLAS_NO_TRANS,
                        CBLAS_TRANS,
                        rows,
                        ni,
                        ki,
                        1.0,
                        x.as_ptr(),
                        ki,
                        w.as_ptr(),
                        ki,
                        0.0,
                        out.as_mut_ptr(),
                        ni,
                    );
                }
                Ok(())
            })?;
        Ok(out)
    }
}

struct LinearOp(&'static Blas);

impl CustomOp2 for LinearOp {
    fn name(&self) -> &'static str {
        "blas-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (m, k) = l1.shape().dims2()?;
        let (n, k2) = l2.shape().dims2()?;
        if k != k2 {
            candle_core::bail!("blas-linear: ({m}×{k}) times ({n}×{k2})ᵀ");
        }
        let x = super::kernels::contiguous(s1, l1, "blas-linear")?;
        let w = super::kernels::contiguous(s2, l2, "blas-linear")?;
        let out = self.0.x_wt(x, w, m, n, k)?;
        Ok((CpuStorage::F32(out), Shape::from((m, n))))
    }
}

/// `x · wᵀ` for 2-D `x` `(m, k)` and `w` `(n, k)` (PyTorch's Linear layout) with the system
/// BLAS when there is one and both are contiguous f32 on the CPU, else with candle.
pub fn linear_no_bias(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    match system() {
        Some(blas)
            if x.device().is_cpu()
                && x.dtype() == candle_core::DType::F32
                && x.is_contiguous()
                && w.is_contiguous() =>
        {
            x.apply_op2_no_bwd(w, &LinearOp(blas))
        }
        _ => x.matmul(&w.t()?),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The library `CODER_LSP_BLAS` names, MKL, or OpenBLAS (which `scripts/setup-tests` installs).
    fn test_library() -> Option<&'static Blas> {
        let mut names: Vec<String> = std::env::var("CODER_LSP_BLAS").into_iter().collect();
        names.extend(CANDIDATES.iter().map(|s| (*s).to_string()));
        names.push("libopenblas.so.0".into());
        let blas = names.iter().find_map(|name| open(name).ok())?;
        Some(Box::leak(Box::new(blas)))
    }

    #[test]
    fn blas_linear_matches_candle() {
        let Some(blas) = test_library() else {
            // CI installs OpenBLAS (scripts/setup-tests), so there this path must be tested.
            assert!(
                std::env::var_os("CI").is_none(),
                "no CBLAS library found in CI; scripts/setup-tests installs libopenblas0"
            );
            eprintln!("no CBLAS library here: only candle's matmul is in use");
            return;
        };
        let x = Tensor::randn(0f32, 1.0, (37, 24), &Device::Cpu).unwrap();
        let w = Tensor::randn(0f32, 1.0, (19, 24), &Device::Cpu).unwrap();
        let ours = x.apply_op2_no_bwd(&w, &LinearOp(blas)).unwrap();
        let candle = x.matmul(&w.t().unwrap()).unwrap();
        let diff = crate::embed::kernels::tests::max_diff(&ours, &candle);
        assert!(diff < 1e-4, "{} differs from candle by {diff}", blas.name);
        // Mismatched inner dimensions are an error, not a wild read.
        let bad = Tensor::randn(0f32, 1.0, (19, 23), &Device::Cpu).unwrap();
        assert!(x.apply_op2_no_bwd(&bad, &LinearOp(blas)).is_err());
    }
}
