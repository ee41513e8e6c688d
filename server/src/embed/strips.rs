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

/// One task's share of a packed product: `x` `(rows, k)` into `out` `(rows, n)`, every value of
/// which it writes, on the calling thread (rows in strips of 32, any number of them).
pub(super) type RowsTask<'a> = Box<dyn Fn(&[f32], &mut [MaybeUninit<f32>]) + Sync + 'a>;

/// A Linear weight `(n, k)` packed for one of the CPU products.
pub(super) trait PackedLinear: Sync {
    /// The op's name in errors and traces (`bf16-linear`).
    const NAME: &'static str;
    /// `(n, k)`: output columns and input channels.
    fn shape(&self) -> (usize, usize);
    /// What a task runs for its rows ([`RowsTask`]); an error where this CPU cannot run the
    /// product.
    fn rows_task(&self) -> Result<RowsTask<'_>>;
    /// `x · wᵀ` for row-major `x` `(m, k)`, row-major `(m, n)`, each share of rows on its
    /// thread ([`parallel_rows`]).
    fn x_wt(&self, x: &[f32], m: usize) -> Result<Vec<f32>> {
        let task = self.rows_task()?;
        product(Self::NAME, x, (m, self.shape()), |x, out| task(x, out))
    }
}

/// `x · wᵀ` for row-major `x` `(m, k)` and a weight `(n, k)`, `task` writing each share of rows
/// ([`parallel_rows`]); an input of the wrong length is an error named after `name`.
pub(super) fn product(
    name: &str,
    x: &[f32],
    (m, (n, k)): (usize, (usize, usize)),
    task: impl Fn(&[f32], &mut [MaybeUninit<f32>]) + Sync,
) -> Result<Vec<f32>> {
    if x.len() != m * k {
        candle_core::bail!("{name}: an input of {} values is not {m}×{k}", x.len());
    }
    Ok(parallel_rows(x, (m, n, k), task))
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
    let mut out = uninit(m * n);
    if m > 0 {
        let strips = m.div_ceil(STRIP);
        let per_task = strips.div_ceil(rayon::current_num_threads().max(1)).max(1);
        out.par_chunks_mut(per_task * STRIP * n)
            .zip(x.par_chunks(per_task * STRIP * k))
            .for_each(|(out, x)| task(x, out));
    }
    // SAFETY: `task` wrote all m·n values (its contract).
    unsafe { assume_init(out) }
}

/// `len` values not yet written, for an output whose every value is written before it is read.
fn uninit(len: usize) -> Vec<MaybeUninit<f32>> {
    let mut out = Vec::with_capacity(len);
    // SAFETY: MaybeUninit needs no initialisation; the capacity was reserved above.
    unsafe { out.set_len(len) };
    out
}

/// The values of `out`, every one of which has been written.
///
/// # Safety
/// Every value of `out` has been written.
unsafe fn assume_init(out: Vec<MaybeUninit<f32>>) -> Vec<f32> {
    let mut out = std::mem::ManuallyDrop::new(out);
    // SAFETY: every value was written (the caller's contract); MaybeUninit<f32> has f32's
    // layout, and the pointer, length and capacity come from a Vec of that layout.
    unsafe { Vec::from_raw_parts(out.as_mut_ptr().cast::<f32>(), out.len(), out.capacity()) }
}

/// A slice of values every one of which has been written, as f32s.
///
/// # Safety
/// Every value of `values` has been written.
unsafe fn written(values: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: every value was written (the caller's contract); MaybeUninit<f32> has f32's
    // layout.
    unsafe { &mut *(values as *mut [MaybeUninit<f32>] as *mut [f32]) }
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

/// Rows of a piece of [`FeedForward`]: two strips, so that its intermediate activations
/// (`64 × 1536` f32 for MiniLM, 384 KiB) stay in the core's L2 cache between the two products.
const PIECE: usize = 2 * STRIP;

/// A BERT layer's feed-forward block over packed weights, for inference: for rows `x` `(m,
/// hidden)`, `LayerNorm(x + gelu(x · upᵀ + up_bias) · downᵀ + bias)` with `params` `(3, hidden)`
/// the output's bias, gamma and beta. It runs piece by piece of [`PIECE`] rows, each task doing
/// both products and the steps around them while the `(rows, intermediate)` activations are in
/// cache, where the unfused layer writes them to memory whole and reads them back twice (the GELU,
/// then the second product's conversion). Row for row it is the same arithmetic as
/// [`super::kernels::bias_gelu`] and [`super::kernels::residual_layer_norm`] around the two
/// products, so the output is theirs bit for bit.
pub(super) struct FeedForward<'a> {
    /// The first product, `(intermediate, hidden)`.
    pub up: RowsTask<'a>,
    /// The second product, `(hidden, intermediate)`.
    pub down: RowsTask<'a>,
    /// `(hidden, intermediate)`: the width of the rows and of the activations between the
    /// products, which the tasks were made for (checked against the input before they run).
    pub shape: (usize, usize),
    pub eps: f32,
}

impl candle_core::CustomOp3 for FeedForward<'_> {
    fn name(&self) -> &'static str {
        "feed-forward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        use super::kernels::{bias_gelu_row, contiguous, residual_layer_norm_row, simd};
        let x = contiguous(s1, l1, self.name())?;
        let up_bias = contiguous(s2, l2, self.name())?;
        let params = contiguous(s3, l3, self.name())?;
        let (m, hidden) = l1.shape().dims2()?;
        let inner = self.shape.1;
        // The tasks write `(rows, width)` outputs through raw pointers: the widths must be theirs.
        if hidden != self.shape.0
            || up_bias.len() != inner
            || params.len() != 3 * hidden
            || hidden == 0
            || inner == 0
        {
            candle_core::bail!(
                "feed-forward: rows of {hidden} for weights of {:?}, bias {} for {inner} columns, params {}",
                self.shape,
                up_bias.len(),
                params.len()
            );
        }
        let (bias, rest) = params.split_at(hidden);
        let (gamma, beta) = rest.split_at(hidden);
        let mut out = uninit(m * hidden);
        out.par_chunks_mut(PIECE * hidden)
            .zip(x.par_chunks(PIECE * hidden))
            .for_each_init(Vec::new, |middle: &mut Vec<MaybeUninit<f32>>, (out, x)| {
                let rows = x.len() / hidden;
                middle.resize(rows * inner, MaybeUninit::uninit());
                let middle = &mut middle[..rows * inner];
                (self.up)(x, middle);
                // SAFETY: a `RowsTask` writes every value of its output.
                let middle = unsafe { written(middle) };
                for row in middle.chunks_exact_mut(inner) {
                    simd(
                        #[inline(always)]
                        || bias_gelu_row(row, up_bias),
                    );
                }
                (self.down)(middle, out);
                // SAFETY: as above, `down` wrote every value of `out`.
                let out = unsafe { written(out) };
                for (row, residual) in out.chunks_exact_mut(hidden).zip(x.chunks_exact(hidden)) {
                    simd(
                        #[inline(always)]
                        || residual_layer_norm_row(row, residual, bias, gamma, beta, self.eps),
                    );
                }
            });
        // SAFETY: every piece's rows were written above (`down` writes all of them).
        let out = unsafe { assume_init(out) };
        Ok((CpuStorage::F32(out), Shape::from((m, hidden))))
    }
}
