//! Building blocks of the architectures: the Linear layer (its f32 weight, or the same weight
//! packed for bf16 matmuls; LoRA updates added in the autograd graph), the additive mask value
//! of attention, the norms (LayerNorm for BERT, RMSNorm for Qwen2), rotary position embeddings
//! and softmax, each in a fused form for inference and a differentiable one for training.
//!
//! A model file (`bert.rs`, `qwen2.rs`) keeps what is its own: its config, its checkpoint names,
//! its layer wiring and its attention.

use std::sync::Arc;

use candle_core::{D, DType, Device, Tensor};

use super::bf16::PackedWeight;
use super::int8::PackedInt8;
use super::strips::{LinearOp, PackedLinear, RowsTask};

/// Added to the attention score of a key a query must not see (padding, or a later token under a
/// causal mask): large enough that its softmax weight is exactly 0, small enough that adding it
/// to an f32 score (scores are f32 whatever the model's precision) never overflows to -inf, so a
/// row with nothing visible (a padding query) gets a finite, ignored softmax instead of NaN.
pub const MASK_VALUE: f32 = -1.0e30;

/// `y = x Wᵀ (+ b)` on 2-D input.
#[derive(Clone)]
pub struct Linear {
    weight: Weight,
    bias: Option<Tensor>,
}

/// A Linear weight `(out, in)`: as stored by PyTorch, or only packed for bf16 matmuls (CPU
/// inference, which then needs no other copy: the 1.5B Qwen2 model's Linear layers take about
/// 2.6 GB as bf16 tiles, against 5.2 GB in f32).
#[derive(Clone)]
enum Weight {
    Dense(Tensor),
    Packed(Arc<PackedWeight>),
    /// Smoothed and quantized for int8 matmuls ([`super::int8::enabled`]).
    Int8(Arc<PackedInt8>),
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self {
            weight: Weight::Dense(weight),
            bias,
        }
    }

    /// `x Wᵀ + b`: a matmul in the autograd graph for an f32 weight, the bf16 kernel for a packed
    /// one.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = match &self.weight {
            Weight::Dense(w) => x.matmul(&w.t()?)?,
            Weight::Packed(packed) => packed_product(x, packed)?,
            Weight::Int8(packed) => int8_product(x, packed)?,
        };
        match &self.bias {
            Some(bias) => y.broadcast_add(bias),
            None => Ok(y),
        }
    }

    /// `x Wᵀ` alone, for fused CPU kernels that add the bias in their own pass: the bf16 kernel
    /// for a packed weight, else the system BLAS or candle (inference only: no backward pass).
    pub fn forward_no_bias(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.weight {
            Weight::Dense(w) => super::blas::linear_no_bias(x, w),
            Weight::Packed(packed) => packed_product(x, packed),
            Weight::Int8(packed) => int8_product(x, packed),
        }
    }

    /// A packed weight's product task with its `(n, k)` ([`super::strips::RowsTask`]); `None`
    /// for an f32 weight.
    fn rows_task(&self) -> candle_core::Result<Option<(RowsTask<'_>, usize, usize)>> {
        Ok(match &self.weight {
            Weight::Dense(_) => None,
            Weight::Packed(packed) => {
                let (n, k) = packed.shape();
                Some((packed.rows_task()?, n, k))
            }
            Weight::Int8(packed) => {
                let (n, k) = packed.shape();
                Some((packed.rows_task()?, n, k))
            }
        })
    }

    /// The bias, which this Linear must have.
    pub fn bias(&self) -> candle_core::Result<&Tensor> {
        match &self.bias {
            Some(bias) => Ok(bias),
            None => candle_core::bail!("this Linear layer has no bias"),
        }
    }

    /// The f32 weight `(out, in)`; training loads those, never packed ones.
    pub fn dense(&self) -> candle_core::Result<&Tensor> {
        match &self.weight {
            Weight::Dense(w) => Ok(w),
            Weight::Packed(_) | Weight::Int8(_) => candle_core::bail!(
                "training needs f32 weights; this model was packed for bf16 or int8 matmuls"
            ),
        }
    }

    /// Whether the weight is packed for bf16 (or int8) matmuls.
    pub fn is_packed(&self) -> bool {
        matches!(self.weight, Weight::Packed(_) | Weight::Int8(_))
    }

    /// The same Linear with `delta` (in the autograd graph) added to its f32 weight.
    pub fn plus(&self, delta: Option<Tensor>) -> candle_core::Result<Self> {
        let w = self.dense()?;
        Ok(Self {
            weight: Weight::Dense(match delta {
                Some(delta) => (w + delta)?,
                None => w.clone(),
            }),
            bias: self.bias.clone(),
        })
    }

    /// The same Linear with a delta per block of rows added (a fused projection: `rows[i]` rows
    /// of block `i`, whose delta is `blocks[i]`; a missing one adds nothing).
    pub fn plus_blocks(
        &self,
        blocks: Vec<Option<Tensor>>,
        rows: &[usize],
    ) -> candle_core::Result<Self> {
        if blocks.len() != rows.len() {
            candle_core::bail!("{} deltas for {} row blocks", blocks.len(), rows.len());
        }
        if blocks.iter().all(Option::is_none) {
            return self.plus(None);
        }
        let w = self.dense()?;
        let inputs = w.dim(1)?;
        let parts = blocks
            .into_iter()
            .zip(rows)
            .map(|(block, &rows)| match block {
                Some(delta) => Ok(delta),
                None => Tensor::zeros((rows, inputs), w.dtype(), w.device()),
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        self.plus(Some(Tensor::cat(&parts, 0)?))
    }

    /// Packs the weight for bf16 matmuls and drops the f32 copy.
    pub fn pack(&mut self) -> candle_core::Result<()> {
        if let Weight::Dense(w) = &self.weight {
            self.weight = Weight::Packed(Arc::new(PackedWeight::from_tensor(w)?));
        }
        Ok(())
    }

    /// Packs the weight for int8 matmuls, smoothed for inputs whose channels reach
    /// `magnitudes` ([`PackedInt8::pack`]), and drops the f32 copy.
    pub fn pack_int8(&mut self, magnitudes: &[f32]) -> candle_core::Result<()> {
        if let Weight::Dense(w) = &self.weight {
            let (n, k) = w.dims2()?;
            let values = w.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            self.weight = Weight::Int8(Arc::new(PackedInt8::pack(&values, n, k, magnitudes)?));
        }
        Ok(())
    }
}

/// `x Wᵀ` on the int8 kernel.
fn int8_product(x: &Tensor, packed: &PackedInt8) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1_no_bwd(&LinearOp(packed))
}

/// A BERT layer's feed-forward block, `LayerNorm(x + gelu(x · upᵀ + up_bias) · downᵀ + bias)`
/// with `params` `(3, hidden)` the output's bias, gamma and beta, fused per piece of rows
/// ([`super::strips::FeedForward`]) when both weights are packed (bf16 or int8); `None` when one
/// is not, for the caller's unfused path. Inference only: no backward pass.
pub(crate) fn packed_feed_forward(
    x: &Tensor,
    up: &Linear,
    down: &Linear,
    params: &Tensor,
    eps: f64,
) -> candle_core::Result<Option<Tensor>> {
    let (Some((up_task, intermediate, hidden)), Some((down_task, down_n, down_k))) =
        (up.rows_task()?, down.rows_task()?)
    else {
        return Ok(None);
    };
    if (down_n, down_k) != (hidden, intermediate) {
        candle_core::bail!(
            "feed-forward: ({intermediate}×{hidden}) then ({down_n}×{down_k}) weights do not chain"
        );
    }
    let op = super::strips::FeedForward {
        up: up_task,
        down: down_task,
        shape: (hidden, intermediate),
        eps: eps as f32,
    };
    let x = x.contiguous()?;
    Ok(Some(x.apply_op3_no_bwd(up.bias()?, params, &op)?))
}

/// `x Wᵀ` on the bf16 kernel.
fn packed_product(x: &Tensor, packed: &PackedWeight) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1_no_bwd(&LinearOp(packed))
}

/// Layer normalisation over the last dimension of a 2-D input, from elementary ops so that a
/// backward pass can go through it.
#[derive(Clone)]
pub(crate) struct LayerNorm {
    pub(crate) gamma: Tensor,
    pub(crate) beta: Tensor,
    pub(crate) eps: f64,
}

impl LayerNorm {
    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let centered = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let variance = centered.sqr()?.mean_keepdim(D::Minus1)?;
        // Reciprocal on the small (rows, 1) tensor, then a multiply over the big one.
        let inv_std = (variance + self.eps)?.sqrt()?.recip()?;
        centered
            .broadcast_mul(&inv_std)?
            .broadcast_mul(&self.gamma)?
            .broadcast_add(&self.beta)
    }
}

/// RMSNorm, RoPE and softmax as one forward pass runs them: candle's fused kernels for inference,
/// or the same functions from elementary ops for training (the fused ones have no backward pass
/// and silently pass no gradient).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ops {
    pub(crate) differentiable: bool,
    pub(crate) eps: f32,
}

impl Ops {
    pub(crate) fn rms_norm(self, x: &Tensor, weight: &Tensor) -> candle_core::Result<Tensor> {
        if self.differentiable {
            candle_nn::ops::rms_norm_slow(x, weight, self.eps)
        } else {
            candle_nn::ops::rms_norm(x, weight, self.eps)
        }
    }

    /// Softmax over the last dimension.
    pub(crate) fn softmax(self, scores: &Tensor) -> candle_core::Result<Tensor> {
        if self.differentiable {
            candle_nn::ops::softmax(scores, candle_core::D::Minus1)
        } else {
            candle_nn::ops::softmax_last_dim(scores)
        }
    }

    /// Rotary embeddings on `(b, heads, t, d)` with tables `(t, d/2)`.
    pub(crate) fn rope(
        self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
    ) -> candle_core::Result<Tensor> {
        if self.differentiable {
            candle_nn::rotary_emb::rope_slow(x, cos, sin)
        } else {
            candle_nn::rotary_emb::rope(x, cos, sin)
        }
    }
}

/// RoPE cos and sin tables `(positions, head_dim/2)` in f32, as transformers computes them.
pub(crate) fn rope_tables(
    theta: f64,
    head_dim: usize,
    positions: usize,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let inv_freq: Vec<f32> = (0..head_dim / 2)
        .map(|i| (1.0 / theta.powf(2.0 * i as f64 / head_dim as f64)) as f32)
        .collect();
    let inv_freq = Tensor::from_vec(inv_freq, (1, head_dim / 2), device)?;
    let positions = Tensor::arange(0u32, positions as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((positions, 1))?;
    let freqs = positions.broadcast_mul(&inv_freq)?;
    Ok((freqs.cos()?, freqs.sin()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn linear() -> (Linear, Tensor, Tensor) {
        let w = Tensor::randn(0f32, 1.0, (6, 4), &Device::Cpu).unwrap();
        let b = Tensor::randn(0f32, 1.0, 6, &Device::Cpu).unwrap();
        (Linear::new(w.clone(), Some(b.clone())), w, b)
    }

    /// The fused feed-forward block gives the unfused kernels' output bit for bit: ragged
    /// pieces (150 rows in pieces of 64), padded widths, an int8 or bf16 first product, and a
    /// row with an outlier channel (an attention sink, which int8 multiplies again in bf16).
    #[test]
    fn a_packed_feed_forward_is_the_unfused_one_bit_for_bit() {
        use crate::embed::kernels::{bias_gelu, residual_layer_norm};
        crate::embed::bf16::prefer_bf16_in_tests();
        let (m, hidden, inner, eps) = (150, 40, 100, 1e-12);
        let randn = |shape: &[usize]| Tensor::randn(0f32, 1.0, shape, &Device::Cpu).unwrap();
        let mut rows = randn(&[m, hidden]).to_vec2::<f32>().unwrap();
        rows[70][3] = 400.0;
        let x = Tensor::new(rows, &Device::Cpu).unwrap();
        let params = randn(&[3, hidden]);
        let dense_up = Linear::new(randn(&[inner, hidden]), Some(randn(&[inner])));
        let dense_down = Linear::new(randn(&[hidden, inner]), Some(randn(&[hidden])));
        let none = packed_feed_forward(&x, &dense_up, &dense_down, &params, eps).unwrap();
        assert!(none.is_none(), "f32 weights take the unfused path");
        if !crate::embed::bf16::available() {
            return;
        }
        let mut firsts = vec![false];
        if crate::embed::int8::kernel().is_some() {
            firsts.push(true);
        }
        for int8 in firsts {
            let (mut up, mut down) = (dense_up.clone(), dense_down.clone());
            if int8 {
                up.pack_int8(&vec![1.0; hidden]).unwrap();
            } else {
                up.pack().unwrap();
            }
            down.pack().unwrap();
            let fused = packed_feed_forward(&x, &up, &down, &params, eps)
                .unwrap()
                .expect("packed weights are fused");
            let middle = bias_gelu(up.forward_no_bias(&x).unwrap(), up.bias().unwrap()).unwrap();
            let unfused =
                residual_layer_norm(down.forward_no_bias(&middle).unwrap(), &x, &params, eps)
                    .unwrap();
            let bits = |t: &Tensor| {
                let values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            assert_eq!(bits(&fused), bits(&unfused), "int8 first product: {int8}");
        }
        // A bias of the wrong length, weights that do not chain and rows of the wrong width are
        // errors, not panics or writes past the output.
        let packed = |w: Tensor, b: Tensor| {
            let mut linear = Linear::new(w, Some(b));
            linear.pack().unwrap();
            linear
        };
        let up = packed(randn(&[inner, hidden]), randn(&[inner]));
        let down = packed(randn(&[hidden, inner]), randn(&[hidden]));
        let long_bias = packed(randn(&[inner, hidden]), randn(&[inner + 1]));
        let wide_down = packed(randn(&[hidden + 8, inner]), randn(&[hidden + 8]));
        // Rows narrower than the weights, with LayerNorm parameters of their own width.
        let (narrow_x, narrow_params) = (randn(&[m, hidden - 8]), randn(&[3, hidden - 8]));
        for (x, up, down, params) in [
            (&x, &long_bias, &down, &params),
            (&x, &up, &wide_down, &params),
            (&narrow_x, &up, &down, &narrow_params),
        ] {
            assert!(packed_feed_forward(x, up, down, params, eps).is_err());
        }
    }

    #[test]
    fn forward_is_x_wt_plus_b_with_or_without_the_bias_pass() {
        let (linear, w, b) = linear();
        let x = Tensor::randn(0f32, 1.0, (3, 4), &Device::Cpu).unwrap();
        let expected = x.matmul(&w.t().unwrap()).unwrap();
        let with_bias = expected.broadcast_add(&b).unwrap();
        let diff = crate::embed::kernels::tests::max_diff(&linear.forward(&x).unwrap(), &with_bias);
        assert!(diff < 1e-5, "{diff}");
        let no_bias = linear.forward_no_bias(&x).unwrap();
        let diff = crate::embed::kernels::tests::max_diff(&no_bias, &expected);
        assert!(diff < 1e-5, "{diff}");
        assert!(Linear::new(w, None).bias().is_err());
    }

    #[test]
    fn row_block_deltas_land_in_their_rows() {
        let (linear, w, _) = linear();
        let delta = Tensor::ones((2, 4), DType::F32, &Device::Cpu).unwrap();
        // Blocks of 2, 2 and 2 rows; only the middle one changes.
        let adapted = linear
            .plus_blocks(vec![None, Some(delta), None], &[2, 2, 2])
            .unwrap();
        let change = (adapted.dense().unwrap() - &w).unwrap();
        let rows: Vec<f32> = change.sum(1).unwrap().to_vec1().unwrap();
        // (w + 1) − w rounds: each row of ones adds up to 4 within a few ulps of the weights.
        let expected = [0.0, 0.0, 4.0, 4.0, 0.0, 0.0];
        for (row, (got, want)) in rows.iter().zip(expected).enumerate() {
            assert!((got - want).abs() < 1e-5, "row {row}: {rows:?}");
        }
        // No delta at all: the same weight.
        let same = linear.plus_blocks(vec![None, None], &[3, 3]).unwrap();
        let diff = crate::embed::kernels::tests::max_diff(same.dense().unwrap(), &w);
        assert_eq!(diff, 0.0);
        assert!(linear.plus_blocks(vec![None], &[3, 3]).is_err());
    }

    #[test]
    fn a_packed_weight_serves_inference_and_refuses_training() {
        let (mut linear, w, b) = linear();
        linear.pack().unwrap();
        assert!(linear.is_packed());
        assert!(linear.dense().is_err());
        assert!(linear.plus(None).is_err());
        if crate::embed::bf16::available() {
            let x = Tensor::randn(0f32, 1.0, (3, 4), &Device::Cpu).unwrap();
            let expected = x
                .matmul(&w.t().unwrap())
                .unwrap()
                .broadcast_add(&b)
                .unwrap();
            let diff =
                crate::embed::kernels::tests::max_diff(&linear.forward(&x).unwrap(), &expected);
            assert!(diff < 0.05, "bf16 product off by {diff}");
        }
    }

    #[test]
    fn layer_norm_matches_definition() {
        let x = Tensor::new(&[[1f32, 2., 3., 4.], [-1., 0., 0., 5.]], &Device::Cpu).unwrap();
        let norm = LayerNorm {
            gamma: Tensor::new(&[1f32, 2., 1., 1.], &Device::Cpu).unwrap(),
            beta: Tensor::new(&[0f32, 0., 0., 1.], &Device::Cpu).unwrap(),
            eps: 1e-12,
        };
        let got = norm.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        for (row, out) in [[1f32, 2., 3., 4.], [-1., 0., 0., 5.]].iter().zip(&got) {
            let mean = row.iter().sum::<f32>() / 4.0;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
            for (i, (v, o)) in row.iter().zip(out).enumerate() {
                let expected = (v - mean) / var.sqrt() * [1., 2., 1., 1.][i] + [0., 0., 0., 1.][i];
                assert!((expected - o).abs() < 1e-5, "{expected} vs {o}");
            }
        }
    }
}
