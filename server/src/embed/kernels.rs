//! Fused CPU kernels for inference.
//!
//! candle runs each elementwise op as its own pass over memory, mostly on one thread; a BERT
//! layer built from them spends as long in LayerNorm, GELU and softmax as in its matmuls on a
//! small CPU. These kernels do each of those steps in one pass, split over rows on rayon's pool
//! (the one gemm uses). They have no backward pass and no GPU version: models use them only for
//! CPU inference and keep the elementary-op path for training and GPUs (see
//! [`Kernels`]).

use candle_core::backend::BackendStorage;
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, InplaceOp2, InplaceOp3, Layout, Result, Shape, Tensor,
};
use rayon::prelude::*;

/// Which implementation of the elementwise steps a forward pass uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// candle's elementary ops: differentiable, and run on any device.
    Elementary,
    /// This module's fused kernels: CPU inference only.
    FusedCpu,
}

/// Rows handed to one rayon task at least: enough work to pay for the scheduling.
const MIN_ROWS_PER_TASK: usize = 16;

pub(crate) fn contiguous<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{what}: fused kernels take f32, got {:?}", storage.dtype())
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{what}: fused kernels take contiguous tensors"),
    }
}

/// [`contiguous`] for an op that writes its result over its input.
fn contiguous_mut<'a>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
    what: &str,
) -> Result<&'a mut [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{what}: fused kernels take f32, got {:?}", storage.dtype())
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&mut data[start..end]),
        None => candle_core::bail!("{what}: fused kernels take contiguous tensors"),
    }
}

fn last_dim(layout: &Layout, what: &str) -> Result<usize> {
    match layout.dims().last() {
        Some(&n) if n > 0 => Ok(n),
        _ => candle_core::bail!("{what}: empty last dimension"),
    }
}

/// `erf(x)` as a rational function of `x²` (the minimax form fast math libraries use), clamped
/// to ±4 where erf is 1 to f32 precision. Branch-free, so the loops around it vectorise; within
/// a few 1e-7 of the exact value (checked against candle's f64 erf in the tests). Plain `a * x + b`
/// rather than `mul_add`: without FMA enabled at compile time, `mul_add` is a libm call.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = -2.726_142_3e-10_f32;
    let p = p * x2 + 2.770_681_4e-8;
    let p = p * x2 - 2.101_024e-6;
    let p = p * x2 - 5.692_506_4e-5;
    let p = p * x2 - 7.349_906_3e-4;
    let p = p * x2 - 2.954_600_1e-3;
    let p = p * x2 - 1.609_603_3e-2;
    let q = -1.456_607_2e-5_f32;
    let q = q * x2 - 2.133_740_6e-4;
    let q = q * x2 - 1.682_827e-3;
    let q = q * x2 - 7.373_329_2e-3;
    let q = q * x2 - 1.426_474e-2;
    x * p / q
}

/// `e^x` to about 2 ulp, branch-free so that loops around it vectorise (libm's `expf` is an opaque
/// call). Inputs below -87 give exactly 0, as the masked attention scores need.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding 1.5·2²³ rounds to the nearest integer n and leaves n in the low mantissa bits:
    // no float → int conversion, which compilers leave scalar (Rust's `as` saturates).
    const SHIFT: f32 = 12_582_912.0;
    let clamped = x.clamp(-87.0, 88.0);
    let shifted = clamped * std::f32::consts::LOG2_E + SHIFT;
    let n = shifted - SHIFT;
    // r = x - n·ln2 in two steps (Cody–Waite), |r| ≤ ln2/2.
    let r = (clamped - n * LN2_HI) - n * LN2_LO;
    // Taylor series to r⁶: relative error below 2e-7 on |r| ≤ 0.35.
    let p = 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    // 2ⁿ from the exponent bits: n + 127 is within [1, 254] after the clamp, and the shift
    // drops every bit of `shifted` above its low nine.
    let scale = f32::from_bits(shifted.to_bits().wrapping_add(127) << 23);
    if x < -87.0 { 0.0 } else { p * scale }
}

/// GELU as BERT defines it: `x · Φ(x)` with the exact normal CDF.
#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// One row of [`bias_gelu`]: `gelu(x + bias)`, written over `x` (`bias` as long as the row).
/// Call it inside [`simd`], which vectorises it.
#[inline(always)]
pub(super) fn bias_gelu_row(x: &mut [f32], bias: &[f32]) {
    for (v, &b) in x.iter_mut().zip(bias) {
        *v = gelu(*v + b);
    }
}

struct BiasGelu;

impl InplaceOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "bias-gelu"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let bias = contiguous(s2, l2, self.name())?;
        let cols = last_dim(l1, self.name())?;
        if bias.len() != cols {
            candle_core::bail!("bias-gelu: bias of {} for rows of {cols}", bias.len());
        }
        let x = contiguous_mut(s1, l1, self.name())?;
        x.par_chunks_mut(cols)
            .with_min_len(MIN_ROWS_PER_TASK)
            .for_each(|x| {
                simd(
                    #[inline(always)]
                    || bias_gelu_row(x, bias),
                )
            });
        Ok(())
    }
}

/// `gelu(x + bias)` over rows of `x`, `bias` one value per column, written over `x` and
/// returned: the result reuses `x`'s buffer instead of a new (zero-filled) one, which for the
/// feed-forward block's wide rows cost more than the GELU. `x` must be a tensor nothing else
/// holds (a clone would see the change), such as the fresh output of the op before it.
pub fn bias_gelu(x: Tensor, bias: &Tensor) -> Result<Tensor> {
    x.inplace_op2(bias, &BiasGelu)?;
    Ok(x)
}

struct ResidualLayerNorm {
    eps: f32,
}

impl InplaceOp3 for ResidualLayerNorm {
    fn name(&self) -> &'static str {
        "residual-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let residual = contiguous(s2, l2, self.name())?;
        let params = contiguous(s3, l3, self.name())?;
        let cols = last_dim(l1, self.name())?;
        let x = contiguous_mut(s1, l1, self.name())?;
        if residual.len() != x.len() || params.len() != 3 * cols {
            candle_core::bail!(
                "residual-layer-norm: input {}, residual {}, params {} for rows of {cols}",
                x.len(),
                residual.len(),
                params.len()
            );
        }
        let (bias, rest) = params.split_at(cols);
        let (gamma, beta) = rest.split_at(cols);
        let eps = self.eps;
        x.par_chunks_mut(cols)
            .zip(residual.par_chunks(cols))
            .with_min_len(MIN_ROWS_PER_TASK)
            .for_each(|(x, residual)| {
                simd(
                    #[inline(always)]
                    || residual_layer_norm_row(x, residual, bias, gamma, beta, eps),
                )
            });
        Ok(())
    }
}

/// One row of [`residual_layer_norm`], written over `x`. Call it inside [`simd`].
#[inline(always)]
pub(super) fn residual_layer_norm_row(
    x: &mut [f32],
    residual: &[f32],
    bias: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let cols = x.len();
    for ((v, &r), &b) in x.iter_mut().zip(residual).zip(bias) {
        *v = *v + r + b;
    }
    let mean = lanes(x, 0.0, |a, b| a + b) / cols as f32;
    for v in x.iter_mut() {
        *v -= mean;
    }
    let squares = lanes_map(x, |v| v * v);
    let inv_std = 1.0 / (squares / cols as f32 + eps).sqrt();
    for ((v, &g), &b) in x.iter_mut().zip(gamma).zip(beta) {
        *v = *v * inv_std * g + b;
    }
}

/// Width of the partial reductions: 16 independent accumulators let the compiler keep a whole
/// vector register of them (a single `sum += x` chain cannot be vectorised: float addition is
/// not associative).
const LANES: usize = 16;

/// `xs` folded into [`LANES`] interleaved accumulators, each starting at `init`: value `i` goes
/// to accumulator `i % LANES` through `step(accumulator, value)`.
#[inline(always)]
fn accumulate(xs: &[f32], init: f32, step: impl Fn(f32, f32) -> f32) -> [f32; LANES] {
    let mut acc = [init; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = step(*a, x);
        }
    }
    for (a, &x) in acc.iter_mut().zip(chunks.remainder()) {
        *a = step(*a, x);
    }
    acc
}

/// Folds `xs` with `op` over [`LANES`] interleaved accumulators, then across them.
#[inline(always)]
fn lanes(xs: &[f32], init: f32, op: impl Fn(f32, f32) -> f32) -> f32 {
    accumulate(xs, init, &op).into_iter().fold(init, op)
}

/// The largest of `xs` (−∞ for none): [`LANES`] running maxima, then halved pairwise. The maximum
/// does not depend on the order it is taken in, so the tree gives `lanes`' value bit for bit
/// without its chain of 16 dependent steps at the end of every row.
#[inline(always)]
fn largest(xs: &[f32]) -> f32 {
    let mut acc = accumulate(xs, f32::NEG_INFINITY, f32::max);
    let mut width = LANES / 2;
    while width > 0 {
        let (low, high) = acc.split_at_mut(width);
        for (a, &b) in low.iter_mut().zip(&*high) {
            *a = a.max(b);
        }
        width /= 2;
    }
    acc[0]
}

/// The sum of `f(x)` over `xs`, with [`LANES`] accumulators.
#[inline(always)]
fn lanes_map(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    accumulate(xs, 0.0, |a, x| a + f(x)).iter().sum()
}

/// Runs `f` compiled for the best instruction set this CPU has (AVX-512, AVX2+FMA or the
/// baseline), chosen at run time: our crate is built for baseline x86-64, so without this the
/// loops in `f` would use SSE2 only.
#[inline(always)]
pub(crate) fn simd<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// `LayerNorm(x + bias + residual)` over rows; `params` is `(3, cols)`: bias, gamma, beta.
/// Written over `x` and returned, as [`bias_gelu`] is: `x` must be a tensor nothing else holds.
pub fn residual_layer_norm(
    x: Tensor,
    residual: &Tensor,
    params: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    x.inplace_op3(residual, params, &ResidualLayerNorm { eps: eps as f32 })?;
    Ok(x)
}

struct MaskedSoftmax {
    scale: f32,
    /// Rows of scores that share one row of the mask: heads × query positions.
    rows_per_mask: usize,
}

impl MaskedSoftmax {
    fn run(&self, scores: &[f32], cols: usize, mask: Option<&[f32]>) -> Vec<f32> {
        let mut out = vec![0f32; scores.len()];
        out.par_chunks_mut(cols)
            .zip(scores.par_chunks(cols))
            .enumerate()
            .with_min_len(MIN_ROWS_PER_TASK)
            .for_each(|(row, (out, scores))| {
                let bias = mask.map(|m| {
                    let start = row / self.rows_per_mask * cols;
                    &m[start..start + cols]
                });
                simd(
                    #[inline(always)]
                    || softmax_row(out, scores, bias, self.scale),
                )
            });
        out
    }
}

/// Softmax of `scores · scale (+ bias)` into `out`, shifted by the row maximum.
#[inline(always)]
pub(crate) fn softmax_row(out: &mut [f32], scores: &[f32], bias: Option<&[f32]>, scale: f32) {
    match bias {
        Some(bias) => {
            for ((o, &s), &b) in out.iter_mut().zip(scores).zip(bias) {
                *o = s * scale + b;
            }
        }
        None => {
            for (o, &s) in out.iter_mut().zip(scores) {
                *o = s * scale;
            }
        }
    }
    let max = largest(out);
    for o in out.iter_mut() {
        *o = exp(*o - max);
    }
    let sum = lanes(out, 0.0, |a, b| a + b);
    let inv = 1.0 / sum;
    for o in out.iter_mut() {
        *o *= inv;
    }
}

/// The softmax of one row of attention scores without its division: `out[j] =
/// exp(scale · (scores[j] − max))`, so the largest weight is 1, and their sum; the caller divides
/// as it rounds the weights. The same values as [`softmax_row`]'s before it divides, in two
/// passes over the scores instead of four. A score of −∞ (a key to leave out) gets the weight 0:
/// the caller can pad a row to whole vectors that way, which this loop runs much faster than the
/// scalar tail of a ragged row.
#[inline(always)]
pub(crate) fn softmax_weights(out: &mut [f32], scores: &[f32], scale: f32) -> f32 {
    assert!(
        out.len() == scores.len(),
        "softmax: rows of different lengths"
    );
    // `scale` is positive, so scaling commutes with the maximum, bit for bit.
    let shift = largest(scores) * scale;
    for (o, &s) in out.iter_mut().zip(scores) {
        *o = exp(s * scale - shift);
    }
    lanes(out, 0.0, |a, b| a + b)
}

impl CustomOp1 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "scaled-softmax"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout) -> Result<(CpuStorage, Shape)> {
        let scores = contiguous(s1, l1, CustomOp1::name(self))?;
        let cols = last_dim(l1, CustomOp1::name(self))?;
        Ok((
            CpuStorage::F32(self.run(scores, cols, None)),
            l1.shape().clone(),
        ))
    }
}

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "scaled-masked-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let scores = contiguous(s1, l1, CustomOp2::name(self))?;
        let mask = contiguous(s2, l2, CustomOp2::name(self))?;
        let cols = last_dim(l1, CustomOp2::name(self))?;
        let rows = scores.len() / cols;
        if mask.len() * self.rows_per_mask != rows * cols {
            candle_core::bail!(
                "scaled-masked-softmax: a mask of {} for {rows} rows of {cols}, {} rows per mask row",
                mask.len(),
                self.rows_per_mask
            );
        }
        Ok((
            CpuStorage::F32(self.run(scores, cols, Some(mask))),
            l1.shape().clone(),
        ))
    }
}

/// Softmax over the last dimension of `scale · scores + mask`. `scores` is
/// `(batch, heads, queries, keys)`; `mask` is `(batch, keys)` of additive biases (0 for real
/// keys, a large negative number for padding), or `None`.
pub fn scaled_masked_softmax(scores: &Tensor, mask: Option<&Tensor>, scale: f64) -> Result<Tensor> {
    let (_, heads, queries, _) = scores.dims4()?;
    let op = MaskedSoftmax {
        scale: scale as f32,
        rows_per_mask: heads * queries,
    };
    match mask {
        Some(mask) => scores.apply_op2_no_bwd(mask, &op),
        None => scores.apply_op1_no_bwd(&op),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use candle_core::{D, Device};

    /// The largest absolute difference between two tensors of one shape.
    pub(crate) fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    fn random(shape: &[usize], seed: u64) -> Tensor {
        let mut state = seed;
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 6.0
            })
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn erf_is_within_a_few_ulps_everywhere() {
        let mut worst = (0f32, 0f64);
        for i in -8000..=8000 {
            let x = i as f32 * 0.001;
            let error = (f64::from(erf(x)) - candle_core::cpu::erf::erf_f64(f64::from(x))).abs();
            if error > worst.1 {
                worst = (x, error);
            }
        }
        assert!(worst.1 < 5e-7, "erf({}) is off by {}", worst.0, worst.1);
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(-2.0), -erf(2.0));
    }

    #[test]
    fn exp_is_within_a_few_ulps_and_zero_far_below() {
        let mut worst = (0f32, 0f64);
        for i in -86_900..=87_900 {
            let x = i as f32 * 0.001;
            let want = f64::from(x).exp();
            let error = ((f64::from(exp(x)) - want) / want).abs();
            if error > worst.1 {
                worst = (x, error);
            }
        }
        assert!(worst.1 < 5e-7, "relative error {} at {}", worst.1, worst.0);
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-1e30), 0.0);
        assert_eq!(exp(-88.0), 0.0);
    }

    #[test]
    fn bias_gelu_matches_candle() {
        let x = random(&[37, 24], 1);
        let bias = random(&[24], 2);
        let want = x.broadcast_add(&bias).unwrap().gelu_erf().unwrap();
        assert!(max_diff(&bias_gelu(x.copy().unwrap(), &bias).unwrap(), &want) < 1e-5);
        // A bias of the wrong length is an error, not a panic.
        assert!(bias_gelu(x, &random(&[5], 3)).is_err());
    }

    #[test]
    fn residual_layer_norm_matches_elementary_ops() {
        let x = random(&[21, 32], 4);
        let residual = random(&[21, 32], 5);
        let params = random(&[3, 32], 6);
        let (bias, gamma, beta) = (
            params.get(0).unwrap(),
            params.get(1).unwrap(),
            params.get(2).unwrap(),
        );
        let sum = x.broadcast_add(&bias).unwrap().add(&residual).unwrap();
        let centered = sum
            .broadcast_sub(&sum.mean_keepdim(D::Minus1).unwrap())
            .unwrap();
        let var = centered.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        let want = centered
            .broadcast_div(&(var + 1e-12).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(&gamma)
            .unwrap()
            .broadcast_add(&beta)
            .unwrap();
        let got = residual_layer_norm(x.copy().unwrap(), &residual, &params, 1e-12).unwrap();
        assert!(max_diff(&got, &want) < 1e-4);
        assert!(residual_layer_norm(x, &residual, &random(&[2, 32], 7), 1e-12).is_err());
    }

    #[test]
    fn largest_is_the_maximum_wherever_it_is() {
        assert_eq!(largest(&[]), f32::NEG_INFINITY);
        for len in [1, 7, 16, 17, 33, 70] {
            for at in 0..len {
                let mut xs: Vec<f32> = (0..len).map(|i| -((i * 7 % 13) as f32)).collect();
                xs[at] = 5.0;
                if len > 2 {
                    xs[(at + 1) % len] = f32::NEG_INFINITY;
                }
                assert_eq!(largest(&xs), 5.0, "length {len}, largest at {at}");
            }
        }
    }

    #[test]
    fn softmax_weights_divided_by_their_sum_are_the_softmax() {
        // Rows around the 16 lanes, scores far apart (so some weights underflow to zero).
        for len in [1, 15, 16, 17, 70] {
            let scores: Vec<f32> = (0..len).map(|i| (i as f32 * 1.3).cos() * 40.0).collect();
            let scale = 0.25;
            let (mut weights, mut softmax) = (vec![0f32; len], vec![0f32; len]);
            let sum = softmax_weights(&mut weights, &scores, scale);
            softmax_row(&mut softmax, &scores, None, scale);
            let largest = weights.iter().copied().fold(0.0, f32::max);
            assert_eq!(largest, 1.0, "length {len}");
            let inverse = 1.0 / sum;
            for (w, p) in weights.iter().zip(&softmax) {
                assert_eq!((w * inverse).to_bits(), p.to_bits(), "length {len}");
            }
        }
    }

    #[test]
    fn masked_softmax_matches_elementary_ops() {
        let (batch, heads, seq) = (3, 2, 5);
        let scores = random(&[batch, heads, seq, seq], 8);
        // The second sequence has two padding keys, the third one.
        let mut mask = vec![0f32; batch * seq];
        mask[seq + 3] = -1e30;
        mask[seq + 4] = -1e30;
        mask[2 * seq + 4] = -1e30;
        let mask = Tensor::from_vec(mask, (batch, seq), &Device::Cpu).unwrap();
        let scale = 0.125;
        let biased = (scores.clone() * scale)
            .unwrap()
            .broadcast_add(&mask.reshape((batch, 1, 1, seq)).unwrap())
            .unwrap();
        let want = candle_nn_free_softmax(&biased);
        let got = scaled_masked_softmax(&scores, Some(&mask), scale).unwrap();
        assert!(max_diff(&got, &want) < 1e-6);
        // Padding keys get exactly zero weight.
        let row: Vec<f32> = got
            .get(1)
            .unwrap()
            .get(0)
            .unwrap()
            .get(2)
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(&row[3..], &[0.0, 0.0]);
        let unmasked = scaled_masked_softmax(&scores, None, scale).unwrap();
        assert!(
            max_diff(
                &unmasked,
                &candle_nn_free_softmax(&(scores * scale).unwrap())
            ) < 1e-6
        );
    }

    fn candle_nn_free_softmax(x: &Tensor) -> Tensor {
        let shifted = x.broadcast_sub(&x.max_keepdim(D::Minus1).unwrap()).unwrap();
        let exp = shifted.exp().unwrap();
        exp.broadcast_div(&exp.sum_keepdim(D::Minus1).unwrap())
            .unwrap()
    }
}
