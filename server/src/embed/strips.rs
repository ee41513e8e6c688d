//! What the packed CPU products ([`super::bf16`], [`super::int8`]) share: `x · wᵀ` computed in
//! strips of 32 input rows, spread over the thread pool, each strip written straight into the
//! output when it fills whole 32-column blocks and through a spill buffer otherwise; and the candle
//! op over a packed weight.

#![allow(unsafe_code)]

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape};
use rayon::prelude::*;

/// Input rows per strip (and output columns per kernel block).
pub(super) const STRIP: usize = 32;

/// A Linear weight `(n, k)` packed for one of the CPU products.
pub(super) trait PackedLinear: Sync {
    /// The op's name in errors and traces (`bf16-linear`).
    const NAME: &'static str;
    /// `(n, k)`: output columns and input channels.
    fn shape(&self) -> (usize, usize);
    /// `x · wᵀ` for row-major `x` `(m, k)`, row-major `(m, n)`.
    fn x_wt(&self, x: &[f32], m: usize) -> Result<Vec<f32>>;
}

/// `x · wᵀ` as a candle op over a packed weight (CPU inference only: no backward pass).
pub(super) struct LinearOp<'a, W>(pub &'a W);

impl<W: PackedLinear> CustomOp1 for LinearOp<'_, W> {
    fn name(&self) -> &'static str {
        W::NAME
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (m, k) = layout.shape().dims2()?;
        let (n, expected) = self.0.shape();
        if k != expected {
            candle_core::bail!("{}: ({m}×{k}) times ({n}×{expected})ᵀ", W::NAME);
        }
        let x = super::kernels::contiguous(storage, layout, W::NAME)?;
        let out = self.0.x_wt(x, m)?;
        Ok((CpuStorage::F32(out), Shape::from((m, n))))
    }
}

/// The `(m, n)` output of a product whose every value `task` writes: the rows are split into
/// whole strips, as evenly as the pool allows, and `task(x_rows, out_rows)` runs once per share.
/// `x` is `(m, k)`, row-major.
pub(super) fn parallel_rows(
    x: &[f32],
    (m, n, k): (usize, usize, usize),
    task: impl Fn(&[f32], &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    // Every element is written by `task` (kernel stores, or copies out of the spill buffer), so
    // the output is not zero-filled first: for big batches that pass costs more than the
    // conversion of the inputs.
    let mut out: Vec<MaybeUninit<f32>> = Vec::with_capacity(m * n);
    // SAFETY: MaybeUninit needs no initialisation; the capacity was reserved above.
    unsafe { out.set_len(m * n) };
    if m > 0 {
        let strips = m.div_ceil(STRIP);
        let per_task = strips.div_ceil(rayon::current_num_threads().max(1)).max(1);
        out.par_chunks_mut(per_task * STRIP * n)
            .zip(x.par_chunks(per_task * STRIP * k))
            .for_each(|(out, x)| task(x, out));
    }
    let mut out = std::mem::ManuallyDrop::new(out);
    // SAFETY: `task` wrote all m·n values (its contract); MaybeUninit<f32> has f32's layout, and
    // the pointer, length and capacity come from a Vec of that layout.
    unsafe { Vec::from_raw_parts(out.as_mut_ptr().cast::<f32>(), out.len(), out.capacity()) }
}

/// One task's rows, strip by strip: for each strip of up to 32 rows of `x` `(rows, k)`,
/// `strip(x_strip, c, ldc)` must write 32 rows of `n_padded` floats at `c` (row stride `ldc`),
/// of which the first `x_strip.len() / k` are kept. `c` is `out` itself when the strip fills 32
/// rows of whole 32-column blocks, else a spill buffer copied into `out` afterwards, so every
/// value of `out` `(rows, n)` is written.
pub(super) fn by_strip(
    x: &[f32],
    (n, k, n_padded): (usize, usize, usize),
    out: &mut [MaybeUninit<f32>],
    mut strip: impl FnMut(&[f32], *mut f32, usize),
) {
    let rows = x.len() / k;
    let mut spill: Vec<f32> = Vec::new();
    for s in (0..rows).step_by(STRIP) {
        let strip_rows = STRIP.min(rows - s);
        let direct = strip_rows == STRIP && n == n_padded;
        if !direct && spill.is_empty() {
            spill = vec![0f32; STRIP * n_padded];
        }
        let (c, ldc) = if direct {
            // SAFETY: `out` holds whole rows of `n` (= `n_padded`) floats: 32 of them from
            // row `s` when `direct`.
            (unsafe { out.as_mut_ptr().add(s * n).cast::<f32>() }, n)
        } else {
            (spill.as_mut_ptr(), n_padded)
        };
        strip(&x[s * k..][..strip_rows * k], c, ldc);
        if !direct {
            for r in 0..strip_rows {
                let from = &spill[r * n_padded..][..n];
                for (to, value) in out[(s + r) * n..][..n].iter_mut().zip(from) {
                    to.write(*value);
                }
            }
        }
    }
}
