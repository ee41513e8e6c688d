//! bf16 matmuls for the CPU's Linear layers and attention: on Intel AMX tiles, or with
//! AVX512-BF16 dot products where the CPU has no tiles (AMD Zen 4/5, Intel parts without AMX).
//!
//! Xeons since Sapphire Rapids carry AMX: eight 1 KiB tile registers and an instruction
//! (`TDPBF16PS`) that multiplies a 16×32 bf16 tile by a 32×16 one into a 16×16 f32 tile. One core
//! reaches about 1.1 TFLOP/s that way, against about 110 GFLOP/s with AVX-512 f32 FMAs (both
//! measured on the 2-core development machine). CPUs with AVX512-BF16 but no tiles have
//! `VDPBF16PS`: sixteen f32 lanes, each adding the dot product of a pair of bf16 values, twice
//! the multiplies of an f32 FMA per instruction and half the bytes of weights to read. The Linear
//! layers hold most of an encoder's FLOPs, so running them in bf16 is the largest single
//! speed-up a CPU offers.
//!
//! Inputs are rounded to bf16 (8 bits of mantissa) and products are summed in f32: a MiniLM
//! vector stays within cosine 1 − 1e-4 of the f32 one (the tests check it, on every backend the
//! CPU has), well inside what retrieval can tell apart. `CODER_LSP_BF16=off` keeps every matmul
//! in f32; `CODER_LSP_AMX=off` leaves the tiles unused (the AVX512-BF16 path runs where the CPU
//! has it: what CPUs without AMX run).
//!
//! Both backends read the same layouts: weights are packed once, at load time, into the layout
//! the tiles read (pairs of consecutive `k` side by side, "VNNI" order; one 64-byte line holds
//! the pairs of 16 columns, which is also one `VDPBF16PS` operand); activations are rounded into
//! bf16 rows per strip of 32 rows. The AMX instructions are emitted with inline assembly (Rust's
//! AMX intrinsics are not stable); Linux must be asked for the tile state once per process
//! (`arch_prctl`), which [`backend`] does.

#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::strips;

/// Output rows and columns one tile holds, and the bf16 values along `k` one tile row holds.
const TILE_ROWS: usize = 16;
const TILE_K: usize = 32;
/// The micro-kernel computes a 32×32 output block from two A tiles and two B tiles.
const BLOCK: usize = 2 * TILE_ROWS;
const _: () = assert!(BLOCK == strips::STRIP, "a strip is one 32-row block");

/// What runs the bf16 products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// AMX tiles (`TDPBF16PS`).
    Amx,
    /// AVX-512 vectors (`VDPBF16PS`).
    Avx512,
}

impl Backend {
    /// How logs and `--version`-like descriptions name it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Amx => "AMX",
            Backend::Avx512 => "AVX512-BF16",
        }
    }

    /// Every backend this CPU can run, best first, whatever the environment says (for tests and
    /// benchmarks that compare them).
    pub fn supported() -> Vec<Backend> {
        let mut backends = Vec::new();
        if arch::request_tiles() {
            backends.push(Backend::Amx);
        }
        if avx512::supported() {
            backends.push(Backend::Avx512);
        }
        backends
    }
}

/// What an environment variable says: `Some(false)` for `off`, `0`, `false`, `no`;
/// `Some(true)` for `on`, `1`, `true`, `yes`; `None` when unset or anything else.
pub(crate) fn switch(variable: &str) -> Option<bool> {
    match std::env::var(variable).ok().as_deref().map(str::trim) {
        Some("off" | "0" | "false" | "no") => Some(false),
        Some("on" | "1" | "true" | "yes") => Some(true),
        _ => None,
    }
}

/// How much faster than f32 FMAs the AVX512-BF16 dot products must run on this core before the
/// matmuls move to them: the bf16 path also rounds every activation and packs attention's
/// operands, which the f32 path does not.
const AVX512_MIN_SPEEDUP: f64 = 1.25;

/// The backend this process runs bf16 matmuls on, chosen once:
/// - AMX tiles when the CPU has them, Linux granted the tile state and `CODER_LSP_AMX` does not
///   turn them off (always several times faster than f32);
/// - else AVX512-BF16 when the CPU has it and its dot products outrun f32 FMAs on this core by
///   [`AVX512_MIN_SPEEDUP`] (measured here, in about a millisecond: AMD Zen 4/5 run them at
///   twice the FLOPs of an FMA; some Intel cores without AMX run them slower than FMAs), or
///   `CODER_LSP_BF16=on` asks for them regardless;
/// - else none: every matmul in f32, as also with `CODER_LSP_BF16=off`.
pub fn backend() -> Option<Backend> {
    static BACKEND: OnceLock<Option<Backend>> = OnceLock::new();
    *BACKEND.get_or_init(|| {
        let wanted = switch("CODER_LSP_BF16");
        if wanted == Some(false) {
            tracing::info!("CODER_LSP_BF16 is off: CPU matmuls run in f32");
            return None;
        }
        if switch("CODER_LSP_AMX") != Some(false) && arch::request_tiles() {
            tracing::info!("CPU matmuls run in bf16 on AMX tiles");
            return Some(Backend::Amx);
        }
        if !avx512::supported() {
            tracing::info!("no AMX or AVX512-BF16 on this CPU: CPU matmuls run in f32");
            return None;
        }
        // SAFETY: `supported` checked AVX512-BF16.
        let speedup = unsafe { avx512::speedup_over_f32() };
        if wanted == Some(true) || speedup >= AVX512_MIN_SPEEDUP {
            tracing::info!(
                "CPU matmuls run in bf16 on AVX512-BF16 ({speedup:.2}× the FLOP rate of f32 FMAs here)"
            );
            Some(Backend::Avx512)
        } else {
            tracing::info!(
                "AVX512-BF16 runs at {speedup:.2}× the FLOP rate of f32 FMAs on this CPU: CPU \
                 matmuls stay in f32 (CODER_LSP_BF16=on uses bf16 anyway)"
            );
            None
        }
    })
}

/// For tests of the bf16 model paths: asks [`backend`] for AVX512-BF16 even where it measured
/// slower than f32 (unless `CODER_LSP_BF16` is set), so that those paths run on every CPU that
/// has a backend. Takes effect only before the first [`backend`] call of the process (each test
/// is its own process under nextest).
#[cfg(test)]
pub fn prefer_bf16_in_tests() {
    if std::env::var_os("CODER_LSP_BF16").is_none() {
        // SAFETY: called at the start of a test, before it starts threads of its own.
        unsafe { std::env::set_var("CODER_LSP_BF16", "on") };
    }
}

/// Whether bf16 matmuls run in this process ([`backend`] chose one).
pub fn available() -> bool {
    backend().is_some()
}

/// The chosen backend, or an error saying there is none.
fn chosen() -> Result<Backend> {
    match backend() {
        Some(backend) => Ok(backend),
        None => candle_core::bail!("bf16: neither AMX tiles nor AVX512-BF16 are in use"),
    }
}

/// A Linear weight `(n, k)` rounded to bf16 and laid out in tiles: for each block of 16 output
/// columns and each block of 32 `k`, one 16×64-byte tile whose row `r` holds, for each of the 16
/// columns, the pair `w[col][2r], w[col][2r + 1]`. `n` and `k` are padded with zeros to whole
/// 32-wide blocks.
pub struct PackedWeight {
    n: usize,
    k: usize,
    /// `k` rounded up to a multiple of 32.
    k_padded: usize,
    /// `n` rounded up to a multiple of 32.
    n_padded: usize,
    tiles: Vec<Line>,
}

impl std::fmt::Debug for PackedWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedWeight")
            .field("n", &self.n)
            .field("k", &self.k)
            .finish()
    }
}

/// 32 bf16 values: one tile row, 64-byte aligned so tile loads never straddle cache lines.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u16; TILE_K]);

const ZERO_LINE: Line = Line([0; TILE_K]);

/// Round-to-nearest-even f32 → bf16 (inputs here are finite).
#[inline(always)]
fn bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    let rounding = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding) >> 16) as u16
}

/// The tiles of a `(n, k)` right-hand operand B: for each block of 16 columns and each block of
/// 32 `k`, 16 lines whose line `r` holds, for each of the 16 columns, the pair
/// `B[2r][col], B[2r + 1][col]` of that block ("VNNI" order). `n` and `k` are padded with zeros
/// to multiples of 32.
fn empty_tiles(n: usize, k: usize) -> Vec<Line> {
    let n_tiles = n.div_ceil(BLOCK) * BLOCK / TILE_ROWS;
    vec![ZERO_LINE; n_tiles * k.div_ceil(TILE_K) * TILE_ROWS]
}

/// [`empty_tiles`] filled column by column: `column(col, lines)` writes column `col`'s `k`
/// values as bf16 lines, the last one zero padded ([`to_bf16_lines`]; a Linear weight's row,
/// or one key of attention).
fn pack_columns(n: usize, k: usize, column: impl Fn(usize, &mut [Line])) -> Vec<Line> {
    let k_blocks = k.div_ceil(TILE_K);
    let mut tiles = empty_tiles(n, k);
    let mut lines = vec![ZERO_LINE; k_blocks];
    for col in 0..n {
        column(col, &mut lines);
        let c = col % TILE_ROWS;
        for (kb, line) in lines.iter().enumerate() {
            let tile = &mut tiles[((col / TILE_ROWS) * k_blocks + kb) * TILE_ROWS..][..TILE_ROWS];
            // Tile line `r` takes the column's pair r (k = 2r, 2r + 1) at the column's place.
            for (out, pair) in tile.iter_mut().zip(line.0.chunks_exact(2)) {
                out.0[2 * c..][..2].copy_from_slice(pair);
            }
        }
    }
    tiles
}

/// [`empty_tiles`] filled row by row: `row(kk, lines)` writes the `n` values of row `kk` along
/// `k` as bf16 lines, the last one zero padded ([`to_bf16_lines`]; one value vector of
/// attention).
fn pack_rows(n: usize, k: usize, row: impl Fn(usize, &mut [Line])) -> Vec<Line> {
    let k_blocks = k.div_ceil(TILE_K);
    let mut tiles = empty_tiles(n, k);
    let mut pair = [
        vec![ZERO_LINE; n.div_ceil(TILE_K)],
        vec![ZERO_LINE; n.div_ceil(TILE_K)],
    ];
    for kk in (0..k).step_by(2) {
        for (j, lines) in pair.iter_mut().enumerate() {
            if kk + j < k {
                row(kk + j, lines);
            } else {
                lines.fill(ZERO_LINE);
            }
        }
        let (kb, r) = (kk / TILE_K, (kk % TILE_K) / 2);
        // Line `l` of a row holds columns 32l … 32l + 31: the first 16 go to column tile 2l,
        // the others to tile 2l + 1 (zeros past `n` included, as the tiles start zeroed).
        for (l, (first, second)) in pair[0].iter().zip(&pair[1]).enumerate() {
            for half in 0..2 {
                let line = &mut tiles[((2 * l + half) * k_blocks + kb) * TILE_ROWS + r];
                let columns = first.0[half * TILE_ROWS..]
                    .iter()
                    .zip(&second.0[half * TILE_ROWS..]);
                for (out, (a, b)) in line.0.chunks_exact_mut(2).zip(columns) {
                    out.copy_from_slice(&[*a, *b]);
                }
            }
        }
    }
    tiles
}

/// One row of f32 values, plus `bias` (as long as the row) where there is one, rounded into
/// bf16 lines (the last one zero padded).
fn to_bf16_lines(row: &[f32], bias: Option<&[f32]>, lines: &mut [Line]) {
    static NO_BIAS: [f32; TILE_K] = [0.0; TILE_K];
    if let Some(bias) = bias {
        assert!(bias.len() == row.len(), "bf16: a bias of the wrong length");
    }
    let bias_at = |at: usize| bias.map_or(&NO_BIAS[..], |bias| &bias[at..][..TILE_K]);
    fill_lines(
        row,
        lines,
        // SAFETY: both backends need AVX512-BF16 (every AMX-BF16 CPU has it, and `backend`
        // checked it before any conversion runs); `fill_lines` hands over 32 floats and the bias
        // has as many at the same place.
        |at, values, line| unsafe { avx512::line_to_bf16(values, bias_at(at).as_ptr(), line) },
        |at, value| value + bias.map_or(0.0, |bias| bias[at]),
    );
}

/// One row of f32 values times `factor`, rounded into bf16 lines (the last one zero padded): the
/// same bf16 values as rounding the products computed first.
fn scaled_to_bf16_lines(row: &[f32], factor: f32, lines: &mut [Line]) {
    fill_lines(
        row,
        lines,
        // SAFETY: as in `to_bf16_lines`.
        |_, values, line| unsafe { avx512::line_to_bf16_times(values, factor, line) },
        |_, value| value * factor,
    );
}

/// Rounds `row` into `lines` 32 values a line: `whole(at, values, line)` converts the 32 values
/// from `at`, and the last, partial line is zero padded and gets `value(at, row[at])` rounded
/// for each value it holds.
#[inline(always)]
fn fill_lines(
    row: &[f32],
    lines: &mut [Line],
    whole: impl Fn(usize, *const f32, &mut Line),
    value: impl Fn(usize, f32) -> f32,
) {
    let full = row.len() / TILE_K;
    assert!(
        lines.len() >= row.len().div_ceil(TILE_K),
        "bf16: too few lines for a row"
    );
    for (i, (values, line)) in row.chunks_exact(TILE_K).zip(lines.iter_mut()).enumerate() {
        whole(i * TILE_K, values.as_ptr(), line);
    }
    let rest = &row[full * TILE_K..];
    if !rest.is_empty() {
        let line = &mut lines[full];
        *line = ZERO_LINE;
        for (j, (out, &x)) in line.0.iter_mut().zip(rest).enumerate() {
            *out = bf16(value(full * TILE_K + j, x));
        }
    }
}

impl PackedWeight {
    /// Packs a row-major `(n, k)` f32 weight.
    pub fn pack(w: &[f32], n: usize, k: usize) -> Result<Self> {
        if w.len() != n * k || n == 0 || k == 0 {
            candle_core::bail!("bf16: a weight of {} values is not {n}×{k}", w.len());
        }
        Ok(Self {
            n,
            k,
            k_padded: k.div_ceil(TILE_K) * TILE_K,
            n_padded: n.div_ceil(BLOCK) * BLOCK,
            tiles: pack_columns(n, k, |col, lines| {
                to_bf16_lines(&w[col * k..][..k], None, lines);
            }),
        })
    }

    /// Packs a 2-D f32 tensor in PyTorch's Linear layout `(out, in)`.
    pub fn from_tensor(w: &Tensor) -> Result<Self> {
        let (n, k) = w.dims2()?;
        let values = w
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Self::pack(&values, n, k)
    }

    /// `x · wᵀ` for row-major `x` `(m, k)`, into a new row-major `(m, n)` buffer, on a given
    /// backend, which the CPU must support ([`Backend::supported`]); the process's own
    /// [`backend`] is `PackedLinear::x_wt`.
    pub fn x_wt_on(&self, backend: Backend, x: &[f32], m: usize) -> Result<Vec<f32>> {
        let shape = (self.n, self.k);
        strips::product("bf16", x, (m, shape), |x, out| self.rows(backend, x, out))
    }

    /// One task's rows: `x` `(rows, k)` into `out` `(rows, n)`, every value of which it writes
    /// ([`strips::by_strip`]).
    pub(super) fn rows(&self, backend: Backend, x: &[f32], out: &mut [MaybeUninit<f32>]) {
        let k = self.k;
        let k_blocks = self.k_padded / TILE_K;
        // A strip of 32 input rows in bf16, each row `k_blocks` lines long (zero padded).
        let mut strip = vec![ZERO_LINE; BLOCK * k_blocks];
        let _tiles = (backend == Backend::Amx).then(arch::Tiles::configure);
        strips::by_strip(x, (self.n, k, self.n_padded), out, |x, c, ldc| {
            let strip_rows = x.len() / k;
            for (r, lines) in strip.chunks_mut(k_blocks).enumerate() {
                if r < strip_rows {
                    to_bf16_lines(&x[r * k..][..k], None, lines);
                } else {
                    lines.fill(ZERO_LINE);
                }
            }
            let operands = Strip {
                a: &strip,
                rows: strip_rows,
                k_blocks,
            };
            // SAFETY: `by_strip` hands over 32 rows of `n_padded` floats at `c`, `ldc` apart.
            unsafe { strip_times(backend, operands, &self.tiles, self.n_padded, c, ldc) };
        });
    }
}

impl strips::PackedLinear for PackedWeight {
    const NAME: &'static str = "bf16-linear";

    fn shape(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    fn rows_task(&self) -> Result<strips::RowsTask<'_>> {
        let backend = chosen()?;
        Ok(Box::new(move |x, out| self.rows(backend, x, out)))
    }
}

/// Left-hand rows of a product: bf16 lines, `k_blocks` a row; only the first `rows` are real
/// (the rest are zero padding, whose products nothing reads, so a backend may skip them).
#[derive(Clone, Copy)]
struct Strip<'a> {
    a: &'a [Line],
    rows: usize,
    k_blocks: usize,
}

/// `c` `(a.len() / k_blocks, n_padded)` = A · B for A in bf16 lines (a multiple of 32 rows,
/// `k_blocks` lines a row, the first `rows` real) and B packed by [`pack_columns`] or
/// [`pack_rows`] (`n_padded` columns, `k_blocks` k blocks). On AMX, tiles must be configured on
/// this thread. The rows of `c` past `rows` may be left as they were.
fn multiply(backend: Backend, a: Strip<'_>, b: &[Line], n_padded: usize, c: &mut [f32]) {
    let total = a.a.len() / a.k_blocks;
    assert!(
        total.is_multiple_of(BLOCK) && c.len() >= total * n_padded,
        "bf16: operands of the wrong size"
    );
    for (s, (strip, c)) in
        a.a.chunks(BLOCK * a.k_blocks)
            .zip(c.chunks_mut(BLOCK * n_padded))
            .enumerate()
    {
        let operands = Strip {
            a: strip,
            rows: a.rows.saturating_sub(s * BLOCK).min(BLOCK),
            k_blocks: a.k_blocks,
        };
        if operands.rows == 0 {
            break;
        }
        // SAFETY: each chunk of `c` holds 32 rows of `n_padded` floats (checked above).
        unsafe { strip_times(backend, operands, b, n_padded, c.as_mut_ptr(), n_padded) };
    }
}

/// One strip of 32 A rows times every column block of B, into 32 rows of `n_padded` floats at
/// `c` with row stride `ldc` (rows past `strip.rows` may be left unwritten). On AMX, tiles must
/// be configured on this thread.
///
/// # Safety
/// `c` points at 32 rows of at least `n_padded` writable floats, `ldc` floats apart; the CPU
/// supports `backend`.
unsafe fn strip_times(
    backend: Backend,
    strip: Strip<'_>,
    b: &[Line],
    n_padded: usize,
    c: *mut f32,
    ldc: usize,
) {
    let k_blocks = strip.k_blocks;
    assert!(
        strip.a.len() == BLOCK * k_blocks
            && strip.rows <= BLOCK
            && n_padded.is_multiple_of(BLOCK)
            && b.len() >= n_padded / TILE_ROWS * k_blocks * TILE_ROWS,
        "bf16: operands of the wrong size"
    );
    for nb in (0..n_padded).step_by(BLOCK) {
        let b0 = &b[(nb / TILE_ROWS) * k_blocks * TILE_ROWS..];
        let b1 = &b[(nb / TILE_ROWS + 1) * k_blocks * TILE_ROWS..];
        let (a, b0, b1) = (
            strip.a.as_ptr().cast(),
            b0.as_ptr().cast(),
            b1.as_ptr().cast(),
        );
        // SAFETY: sizes checked above: 32 A rows of `k_blocks` lines, `k_blocks` tiles in each
        // B column block; the caller vouches for 32 rows of nb + 32 floats at `c` and for the
        // backend.
        unsafe {
            match backend {
                Backend::Amx => arch::block(a, k_blocks, b0, b1, c.add(nb), ldc),
                Backend::Avx512 => {
                    avx512::block(a, strip.rows, k_blocks, b0, b1, c.add(nb), ldc);
                }
            }
        }
    }
}

/// Multi-head self-attention of an encoder in bf16 products on the process's [`backend`], from
/// the fused QKV projection.
///
/// `qkv` is `(batch·seq, 3·hidden)` without its bias (`bias` is `(3·hidden)`), rows grouped by
/// sequence; `lengths[b]` real tokens open sequence `b` and the rest is padding. Returns the
/// attention context `(batch·seq, hidden)`: `softmax(q kᵀ · scale) v` per head over the real
/// tokens only (so padding costs nothing here), and zeros in padding rows, which nothing
/// downstream reads. Scores and softmax are f32; q, k, the probabilities and v are rounded to
/// bf16 for the two products.
pub fn attention(
    qkv: &Tensor,
    bias: &Tensor,
    lengths: &[usize],
    heads: usize,
    scale: f32,
) -> Result<Tensor> {
    attention_on(chosen()?, qkv, bias, lengths, heads, scale)
}

/// [`attention`] on a given backend, which the CPU must support ([`Backend::supported`]).
pub fn attention_on(
    backend: Backend,
    qkv: &Tensor,
    bias: &Tensor,
    lengths: &[usize],
    heads: usize,
    scale: f32,
) -> Result<Tensor> {
    qkv.apply_op2_no_bwd(
        bias,
        &Attention {
            backend,
            lengths,
            heads,
            scale,
        },
    )
}

struct Attention<'a> {
    backend: Backend,
    lengths: &'a [usize],
    heads: usize,
    scale: f32,
}

/// The f32 buffers of [`Attention::head`], kept by each thread from one head to the next (and
/// from one layer and batch to the next) so that they are allocated and zero-filled once per
/// thread instead of once per head. Values left by an earlier head are never read: the products
/// write every value of the rows that are read.
#[derive(Default)]
struct HeadScratch {
    scores: Vec<f32>,
    context: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<HeadScratch> = std::cell::RefCell::default();
}

/// The first `len` values of `buffer`, grown (zero-filled) where it is shorter; what an earlier
/// use left in them stays.
fn reuse(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
}

/// One sequence's queries, keys and values with their bias, rounded to bf16 in one pass over its
/// QKV rows (each row read once, in order, instead of a slice of it per head), laid out part by
/// part: part `p` is the queries of head `p`, then come the keys of each head, then the values.
/// A part is `rows` rows (the length rounded up to a 32-row strip) of `d_blocks` lines, each zero
/// padded; rows past the length are zeros.
struct SequenceLines {
    lines: Vec<Line>,
    rows: usize,
    /// The head dimension, and the lines a row of it takes.
    d: usize,
    d_blocks: usize,
}

impl SequenceLines {
    /// `qkv` holds the sequence's real rows, `bias.len()` values each (3 · heads · `d`).
    fn convert(qkv: &[f32], bias: &[f32], d: usize) -> Self {
        let width = bias.len();
        let len = qkv.len() / width;
        let parts = width / d;
        let rows = len.div_ceil(BLOCK) * BLOCK;
        let d_blocks = d.div_ceil(TILE_K);
        let mut lines = vec![ZERO_LINE; parts * rows * d_blocks];
        for (i, row) in qkv.chunks_exact(width).enumerate() {
            for (p, (values, bias)) in row.chunks_exact(d).zip(bias.chunks_exact(d)).enumerate() {
                let at = (p * rows + i) * d_blocks;
                to_bf16_lines(values, Some(bias), &mut lines[at..][..d_blocks]);
            }
        }
        Self {
            lines,
            rows,
            d,
            d_blocks,
        }
    }

    /// Part `p`'s rows.
    fn part(&self, p: usize) -> &[Line] {
        let size = self.rows * self.d_blocks;
        &self.lines[p * size..][..size]
    }

    /// Row `i` of part `p`.
    fn row(&self, p: usize, i: usize) -> &[Line] {
        &self.part(p)[i * self.d_blocks..][..self.d_blocks]
    }
}

impl Attention<'_> {
    /// One head `h` of a sequence of `len` real tokens: its context rows `(len, head_dim)`.
    fn head(
        &self,
        lines: &SequenceLines,
        len: usize,
        h: usize,
        scratch: &mut HeadScratch,
    ) -> Vec<f32> {
        if len == 0 {
            return Vec::new();
        }
        let (rows, d, d_blocks) = (lines.rows, lines.d, lines.d_blocks);
        let _tiles = (self.backend == Backend::Amx).then(arch::Tiles::configure);

        // Scores q·kᵀ, `(rows, rows)`: q rows as A, k rows as the packed right-hand side. Rows
        // of q past `len` give score rows that are never read; the first `len` rows are written
        // whole (all `rows` columns).
        let (queries, keys, values) = (h, self.heads + h, 2 * self.heads + h);
        let k = pack_columns(len, d, |col, out| {
            out.copy_from_slice(lines.row(keys, col));
        });
        let scores = reuse(&mut scratch.scores, rows * rows);
        let q = Strip {
            a: lines.part(queries),
            rows: len,
            k_blocks: d_blocks,
        };
        multiply(self.backend, q, &k, rows, scores);

        // Probabilities over the real keys, in bf16 lines: the weights are divided by their sum
        // as they are rounded. Each row runs over all `rows` columns, whole vectors and lines, with
        // the scores of padding keys set to −∞, so their weights are 0.
        let key_blocks = rows / TILE_K;
        let mut probs = vec![ZERO_LINE; rows * key_blocks];
        super::kernels::simd(
            #[inline(always)]
            || {
                let mut weights = vec![0f32; rows];
                let rows_of = scores
                    .chunks_exact_mut(rows)
                    .zip(probs.chunks_exact_mut(key_blocks));
                for (scores, probs) in rows_of.take(len) {
                    scores[len..].fill(f32::NEG_INFINITY);
                    let sum = super::kernels::softmax_weights(&mut weights, scores, self.scale);
                    scaled_to_bf16_lines(&weights, 1.0 / sum, probs);
                }
            },
        );

        // Context = probabilities · v: v is the right-hand side with columns = head dims.
        let v = pack_rows(d, len, |kk, out| out.copy_from_slice(lines.row(values, kk)));
        let d_padded = d.div_ceil(BLOCK) * BLOCK;
        // As with the scores, the first `len` rows are written whole and the rest not read.
        let context = reuse(&mut scratch.context, rows * d_padded);
        let probs = Strip {
            a: &probs,
            rows: len,
            k_blocks: key_blocks,
        };
        multiply(self.backend, probs, &v, d_padded, context);
        let mut out = Vec::with_capacity(len * d);
        for values in context.chunks_exact(d_padded).take(len) {
            out.extend_from_slice(&values[..d]);
        }
        out
    }
}

impl CustomOp2 for Attention<'_> {
    fn name(&self) -> &'static str {
        "bf16-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (total, width) = l1.shape().dims2()?;
        let batch = self.lengths.len();
        let hidden = width / 3;
        if batch == 0
            || total % batch != 0
            || width % 3 != 0
            || self.heads == 0
            || hidden % self.heads != 0
            || l2.shape().elem_count() != width
        {
            candle_core::bail!(
                "bf16-attention: ({total}×{width}) for {batch} sequences of {} heads",
                self.heads
            );
        }
        let seq = total / batch;
        if let Some(len) = self.lengths.iter().find(|&&len| len > seq) {
            candle_core::bail!("bf16-attention: a length of {len} in sequences of {seq}");
        }
        let qkv = super::kernels::contiguous(s1, l1, self.name())?;
        let bias = super::kernels::contiguous(s2, l2, self.name())?;
        let d = hidden / self.heads;
        // Sequences in parallel, and each sequence's heads in parallel once its rows are in
        // bf16 (nested, so that a batch of few sequences still fills every thread).
        let contexts: Vec<Vec<f32>> = (0..batch)
            .into_par_iter()
            .flat_map(|b| {
                let len = self.lengths[b];
                let lines = SequenceLines::convert(&qkv[b * seq * width..][..len * width], bias, d);
                (0..self.heads)
                    .into_par_iter()
                    .map(|h| SCRATCH.with_borrow_mut(|scratch| self.head(&lines, len, h, scratch)))
                    .collect::<Vec<_>>()
            })
            .collect();
        // Row by row, in order: each real row is its heads' contexts side by side, and padding
        // rows are zeros; so only those are zero-filled.
        let mut out = Vec::with_capacity(total * hidden);
        for (b, (&len, contexts)) in self
            .lengths
            .iter()
            .zip(contexts.chunks_exact(self.heads))
            .enumerate()
        {
            for i in 0..len {
                for context in contexts {
                    out.extend_from_slice(&context[i * d..][..d]);
                }
            }
            out.resize((b + 1) * seq * hidden, 0.0);
        }
        Ok((CpuStorage::F32(out), Shape::from((total, hidden))))
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(super) mod arch {
    use std::arch::asm;

    /// `ARCH_REQ_XCOMP_PERM` and the tile-data state component, from the Linux UAPI headers.
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    const SYS_ARCH_PRCTL: i64 = 158;

    /// Whether the CPU has AMX-TILE, AMX-BF16 and AVX512-BF16 and Linux lets this process use
    /// the tiles: asked once per process (the permission is the process's), then remembered,
    /// since the int8 kernel checks it on every product.
    pub fn request_tiles() -> bool {
        static GRANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *GRANTED.get_or_init(ask_for_tiles)
    }

    fn ask_for_tiles() -> bool {
        // CPUID leaf 7, sub-leaf 0: EDX bit 22 is AMX-BF16, bit 24 AMX-TILE.
        let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
        let has_amx = leaf7.edx & (1 << 22) != 0 && leaf7.edx & (1 << 24) != 0;
        // Activations are rounded to bf16 with AVX512-BF16, which every AMX-BF16 CPU has.
        if !has_amx || !std::arch::is_x86_feature_detected!("avx512bf16") {
            return false;
        }
        let result: i64;
        // SAFETY: arch_prctl(ARCH_REQ_XCOMP_PERM) only changes which register state the kernel
        // saves for this process; the syscall clobbers rcx and r11, declared below.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") SYS_ARCH_PRCTL => result,
                in("rdi") ARCH_REQ_XCOMP_PERM,
                in("rsi") XFEATURE_XTILEDATA,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        if result != 0 {
            tracing::debug!("the kernel refused the AMX tile state (arch_prctl: {result})");
        }
        result == 0
    }

    /// The 64-byte tile configuration `LDTILECFG` reads: palette 1, eight 16-row × 64-byte tiles.
    #[repr(C, align(64))]
    struct Config {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        bytes_per_row: [u16; 16],
        rows: [u8; 16],
    }

    /// Tiles configured on this thread until dropped (which releases them, so the kernel does
    /// not save 8 KiB of tile state at every context switch).
    pub struct Tiles(());

    impl Tiles {
        pub fn configure() -> Self {
            let mut config = Config {
                palette: 1,
                start_row: 0,
                reserved: [0; 14],
                bytes_per_row: [0; 16],
                rows: [0; 16],
            };
            for t in 0..8 {
                config.bytes_per_row[t] = 64;
                config.rows[t] = 16;
            }
            // SAFETY: only called after `request_tiles` succeeded (see `available`); the
            // configuration is a valid palette-1 layout.
            unsafe {
                asm!("ldtilecfg [{0}]", in(reg) &config, options(nostack, readonly));
            }
            Tiles(())
        }
    }

    impl Drop for Tiles {
        fn drop(&mut self) {
            // SAFETY: tiles were configured on this thread by `configure`.
            unsafe { asm!("tilerelease", options(nostack, nomem)) };
        }
    }

    /// Defines a function that computes a 32×32 block of sums `c` (row stride `ldc` values) =
    /// two A tiles of 16 rows (`k_blocks · 64` bytes a row, at `a`) times the two packed column
    /// blocks at `b0` and `b1` (`k_blocks` tiles of 1 KiB each), with the tile product `$op`.
    macro_rules! tile_block {
        ($(#[$doc:meta])* $name:ident, $op:literal, $sum:ty) => {
            $(#[$doc])*
            ///
            /// # Safety
            /// Tiles are configured on this thread; `a` points at 32 rows of `k_blocks · 64`
            /// bytes, `b0` and `b1` at `k_blocks` tiles of 1 KiB each, `c` at 32 rows of 32
            /// writable sums with row stride `ldc`.
            pub unsafe fn $name(
                a: *const u8,
                k_blocks: usize,
                b0: *const u8,
                b1: *const u8,
                c: *mut $sum,
                ldc: usize,
            ) {
                let a_stride = k_blocks * 64;
                let a1 = a.wrapping_add(16 * a_stride);
                // SAFETY (whole function): the caller's contract above.
                unsafe {
                    asm!(
                        "tilezero tmm0",
                        "tilezero tmm1",
                        "tilezero tmm2",
                        "tilezero tmm3",
                        options(nostack, nomem)
                    );
                    for kb in 0..k_blocks {
                        asm!(
                            "tileloadd tmm4, [{a0} + {sa}*1]",
                            "tileloadd tmm5, [{a1} + {sa}*1]",
                            "tileloadd tmm6, [{b0} + {sb}*1]",
                            "tileloadd tmm7, [{b1} + {sb}*1]",
                            concat!($op, " tmm0, tmm4, tmm6"),
                            concat!($op, " tmm1, tmm4, tmm7"),
                            concat!($op, " tmm2, tmm5, tmm6"),
                            concat!($op, " tmm3, tmm5, tmm7"),
                            a0 = in(reg) a.add(kb * 64),
                            a1 = in(reg) a1.add(kb * 64),
                            b0 = in(reg) b0.add(kb * 1024),
                            b1 = in(reg) b1.add(kb * 1024),
                            sa = in(reg) a_stride,
                            sb = in(reg) 64usize,
                            options(nostack, readonly),
                        );
                    }
                    let stride = ldc * 4;
                    asm!(
                        "tilestored [{c0} + {s}*1], tmm0",
                        "tilestored [{c1} + {s}*1], tmm1",
                        "tilestored [{c2} + {s}*1], tmm2",
                        "tilestored [{c3} + {s}*1], tmm3",
                        c0 = in(reg) c,
                        c1 = in(reg) c.add(16),
                        c2 = in(reg) c.add(16 * ldc),
                        c3 = in(reg) c.add(16 * ldc + 16),
                        s = in(reg) stride,
                        options(nostack),
                    );
                }
            }
        };
    }

    tile_block!(
        /// bf16 pairs (`TDPBF16PS`) into f32 sums: A holds 32 bf16 values a tile row, B the
        /// pairs of [`super::PackedWeight`]'s layout.
        block,
        "tdpbf16ps",
        f32
    );

    tile_block!(
        /// Unsigned by signed bytes (`TDPBUSD`) into i32 sums: A holds 64 unsigned bytes a tile
        /// row, B the quads of `int8::PackedInt8`'s layout (each column's four signed bytes at
        /// `k = 4p … 4p + 3` in tile row `p`), the operands of `VPDPBUSD`.
        block_int8,
        "tdpbusd",
        i32
    );

    /// Whether the CPU also multiplies bytes on its tiles (AMX-INT8) and Linux lets this
    /// process use them ([`request_tiles`]).
    pub fn int8_tiles() -> bool {
        // CPUID leaf 7, sub-leaf 0: EDX bit 25 is AMX-INT8.
        let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
        leaf7.edx & (1 << 25) != 0 && request_tiles()
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub(super) mod arch {
    pub fn request_tiles() -> bool {
        false
    }

    pub struct Tiles(());

    impl Tiles {
        pub fn configure() -> Self {
            Tiles(())
        }
    }

    pub fn int8_tiles() -> bool {
        false
    }

    /// Never called: `request_tiles` is false on these targets.
    pub unsafe fn block(
        _a: *const u8,
        _k_blocks: usize,
        _b0: *const u8,
        _b1: *const u8,
        _c: *mut f32,
        _ldc: usize,
    ) {
        unreachable!("AMX tiles exist on x86-64 Linux only")
    }

    /// Never called: `int8_tiles` is false on these targets.
    pub unsafe fn block_int8(
        _a: *const u8,
        _k_blocks: usize,
        _b0: *const u8,
        _b1: *const u8,
        _c: *mut i32,
        _ldc: usize,
    ) {
        unreachable!("AMX tiles exist on x86-64 Linux only")
    }
}

/// The AVX512-BF16 backend: `VDPBF16PS` on 512-bit vectors, reading the same packed layouts as
/// the tiles.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::asm;
    use std::arch::x86_64::{
        __m512, __m512bh, __m512i, _mm512_cvtne2ps_pbh, _mm512_dpbf16_ps, _mm512_fmadd_ps,
        _mm512_loadu_ps, _mm512_loadu_si512, _mm512_mul_ps, _mm512_set1_epi32, _mm512_set1_ps,
        _mm512_setzero_ps, _mm512_storeu_ps, _mm512_storeu_si512,
    };

    /// Output rows one pass keeps in registers: with two 16-column vectors each, 16 of the 32
    /// vector registers accumulate, two hold B and the rest broadcast A.
    const ROWS: usize = 8;

    /// Whether the CPU has AVX-512 and its bf16 dot products.
    pub fn supported() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }

    /// The FLOP rate of `VDPBF16PS` over that of f32 `VFMADD` on this core: each instruction
    /// repeated over 16 independent accumulators (so latency hides and only throughput counts),
    /// three rounds alternating, the fastest round of each kept. About a millisecond.
    ///
    /// # Safety
    /// The CPU has AVX512-BF16 ([`supported`]).
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn speedup_over_f32() -> f64 {
        let x = std::hint::black_box(_mm512_set1_ps(1.0));
        // SAFETY: `__m512i` and `__m512bh` are both 64 plain bytes.
        let pairs: __m512bh =
            unsafe { std::mem::transmute(std::hint::black_box(_mm512_set1_epi32(0x3f80_3f80))) };
        // SAFETY (both): the caller's contract (AVX512-BF16, so AVX-512 too).
        let fma = || unsafe { seconds_for(|acc| _mm512_fmadd_ps(acc, x, x)) };
        let dot = || unsafe { seconds_for(|acc| _mm512_dpbf16_ps(acc, pairs, pairs)) };
        let (mut fma_best, mut dot_best) = (f64::MAX, f64::MAX);
        for _ in 0..3 {
            fma_best = fma_best.min(fma());
            dot_best = dot_best.min(dot());
        }
        // Per instruction: an FMA does 16 multiply-adds, a bf16 dot product 32.
        2.0 * fma_best / dot_best.max(f64::MIN_POSITIVE)
    }

    /// Rounds 32 floats at `values` plus the 32 at `bias` to bf16 (to nearest even) into
    /// `line`, with one AVX512-BF16 instruction.
    ///
    /// # Safety
    /// The CPU has AVX512-BF16; `values` and `bias` point at 32 readable floats each.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn line_to_bf16(values: *const f32, bias: *const f32, line: &mut super::Line) {
        // SAFETY: the caller's contract; `line` is 64 writable bytes.
        unsafe {
            asm!(
                "vmovups {lo}, [{src}]",
                "vmovups {hi}, [{src} + 64]",
                "vaddps {lo}, {lo}, [{bias}]",
                "vaddps {hi}, {hi}, [{bias} + 64]",
                "vcvtne2ps2bf16 {lo}, {hi}, {lo}",
                "vmovups [{dst}], {lo}",
                src = in(reg) values,
                bias = in(reg) bias,
                dst = in(reg) line.0.as_mut_ptr(),
                lo = out(zmm_reg) _,
                hi = out(zmm_reg) _,
                options(nostack),
            );
        }
    }

    /// Rounds 32 floats at `values`, each times `factor`, to bf16 (to nearest even) into
    /// `line`: the products are the f32 ones, so the result is that of rounding them.
    ///
    /// # Safety
    /// The CPU has AVX512-BF16; `values` points at 32 readable floats.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn line_to_bf16_times(values: *const f32, factor: f32, line: &mut super::Line) {
        let factor = _mm512_set1_ps(factor);
        // SAFETY: the caller's contract; `line` is 64 writable bytes.
        unsafe {
            let lo = _mm512_mul_ps(_mm512_loadu_ps(values), factor);
            let hi = _mm512_mul_ps(_mm512_loadu_ps(values.add(16)), factor);
            // The first operand gives the upper 16 values, the second the lower.
            let pairs: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            _mm512_storeu_si512(line.0.as_mut_ptr().cast(), pairs);
        }
    }

    /// Seconds for 16 independent accumulators to take 16,384 `step`s each.
    ///
    /// # Safety
    /// The CPU has AVX512-BF16.
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn seconds_for(step: impl Fn(__m512) -> __m512) -> f64 {
        let mut acc = [_mm512_setzero_ps(); 16];
        let started = std::time::Instant::now();
        for _ in 0..16_384 {
            for acc in &mut acc {
                *acc = step(*acc);
            }
        }
        std::hint::black_box(acc);
        started.elapsed().as_secs_f64()
    }

    /// A 32×32 f32 block `c` (row stride `ldc` floats) = A `(32, 32·k_blocks)` bf16 rows at `a`
    /// times the two packed column blocks at `b0` and `b1` (`k_blocks` tiles each), as
    /// [`super::arch::block`] computes it; only rows that hold some of the first `rows` are
    /// computed and written (in groups of 8).
    ///
    /// # Safety
    /// The CPU has AVX512-BF16 ([`supported`]); `a` points at 32 rows of `k_blocks · 64` bytes,
    /// `b0` and `b1` at `k_blocks` packed tiles of 1 KiB each, `c` at 32 rows of 32 writable
    /// floats with row stride `ldc`; `rows` ≤ 32.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn block(
        a: *const u8,
        rows: usize,
        k_blocks: usize,
        b0: *const u8,
        b1: *const u8,
        c: *mut f32,
        ldc: usize,
    ) {
        let a_stride = k_blocks * 64;
        // SAFETY (whole function): the caller's contract above; every offset stays inside the
        // 32 rows of A, the `k_blocks` tiles of B and the 32 rows of C it describes.
        unsafe {
            for r0 in (0..rows.min(32)).step_by(ROWS) {
                let mut acc = [[_mm512_setzero_ps(); 2]; ROWS];
                for kb in 0..k_blocks {
                    let (t0, t1) = (b0.add(kb * 1024), b1.add(kb * 1024));
                    let a_k = a.add(r0 * a_stride + kb * 64);
                    // Line `p` of a tile holds, for each of its 16 columns, the pair of B at
                    // k = 2p, 2p + 1; each A row's pair at the same k is broadcast against it.
                    for p in 0..16 {
                        let w0: __m512bh =
                            std::mem::transmute(_mm512_loadu_si512(t0.add(p * 64).cast()));
                        let w1: __m512bh =
                            std::mem::transmute(_mm512_loadu_si512(t1.add(p * 64).cast()));
                        for (i, acc) in acc.iter_mut().enumerate() {
                            let pair = a_k.add(i * a_stride + p * 4).cast::<i32>().read_unaligned();
                            let x: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair));
                            acc[0] = _mm512_dpbf16_ps(acc[0], x, w0);
                            acc[1] = _mm512_dpbf16_ps(acc[1], x, w1);
                        }
                    }
                }
                for (i, acc) in acc.iter().enumerate() {
                    let row = c.add((r0 + i) * ldc);
                    _mm512_storeu_ps(row, acc[0]);
                    _mm512_storeu_ps(row.add(16), acc[1]);
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    pub fn supported() -> bool {
        false
    }

    /// Never called: `supported` is false on these targets.
    pub unsafe fn speedup_over_f32() -> f64 {
        0.0
    }

    /// Never called: no backend is chosen on these targets, so nothing is rounded to bf16.
    pub unsafe fn line_to_bf16(_values: *const f32, _bias: *const f32, _line: &mut super::Line) {
        unreachable!("bf16 matmuls run on x86-64 only")
    }

    /// Never called, as `line_to_bf16`.
    pub unsafe fn line_to_bf16_times(_values: *const f32, _factor: f32, _line: &mut super::Line) {
        unreachable!("bf16 matmuls run on x86-64 only")
    }

    /// Never called: `supported` is false on these targets.
    pub unsafe fn block(
        _a: *const u8,
        _rows: usize,
        _k_blocks: usize,
        _b0: *const u8,
        _b1: *const u8,
        _c: *mut f32,
        _ldc: usize,
    ) {
        unreachable!("AVX512-BF16 exists on x86-64 only")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Every backend this CPU has, each of which the tests run; says so when there is none (CI's
    /// machines have at least AVX512-BF16, so there they run).
    fn backends_here() -> Vec<Backend> {
        let backends = Backend::supported();
        if backends.is_empty() {
            eprintln!("neither AMX nor AVX512-BF16 on this CPU: only f32 matmuls in use");
        }
        backends
    }

    fn round_to_bf16(t: &Tensor) -> Tensor {
        t.to_dtype(candle_core::DType::BF16)
            .unwrap()
            .to_dtype(candle_core::DType::F32)
            .unwrap()
    }

    #[test]
    fn switches_read_on_and_off() {
        // SAFETY (set_var): this test alone uses these variable names.
        unsafe {
            std::env::set_var("CODER_LSP_TEST_SWITCH_A", " off ");
            std::env::set_var("CODER_LSP_TEST_SWITCH_B", "on");
            std::env::set_var("CODER_LSP_TEST_SWITCH_C", "sometimes");
        }
        assert_eq!(switch("CODER_LSP_TEST_SWITCH_A"), Some(false));
        assert_eq!(switch("CODER_LSP_TEST_SWITCH_B"), Some(true));
        assert_eq!(switch("CODER_LSP_TEST_SWITCH_C"), None);
        assert_eq!(switch("CODER_LSP_TEST_SWITCH_UNSET"), None);
    }

    #[test]
    fn avx512_speed_is_measured() {
        if !avx512::supported() {
            eprintln!("no AVX512-BF16 here: nothing to measure");
            return;
        }
        // SAFETY: checked above.
        let speedup = unsafe { avx512::speedup_over_f32() };
        eprintln!("AVX512-BF16 FLOP rate / f32 FMA FLOP rate: {speedup:.2}");
        // Per instruction a dot product does twice an FMA's work; no core runs it 4× slower or
        // 4× faster than an FMA (a broken timing would).
        assert!(
            speedup.is_finite() && (0.25..8.0).contains(&speedup),
            "{speedup}"
        );
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(bf16(1.0), 0x3f80);
        assert_eq!(bf16(-2.0), 0xc000);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
        assert_eq!(bf16(1.0 + 1.0 / 256.0), 0x3f80);
        // Just above halfway rounds up.
        assert_eq!(bf16(1.0 + 1.0 / 256.0 + 1.0 / 65536.0), 0x3f81);
        for x in [0.1f32, -3.75, 1e-20, 6.5e4, 123.456] {
            let ours = f32::from_bits(u32::from(bf16(x)) << 16);
            let half = half::bf16::from_f32(x).to_f32();
            assert_eq!(ours, half, "{x}");
        }
    }

    #[test]
    fn every_backend_matches_f32_matmul_on_bf16_inputs() {
        // Ragged shapes on purpose: rows not a multiple of 32 (nor of the AVX-512 kernel's 8), k
        // not of 32, n not of 16.
        let shapes = [
            (37, 40, 20),
            (64, 384, 1152),
            (1, 96, 32),
            (70, 1536, 384),
            (45, 64, 64),
        ];
        for (backend, (m, k, n)) in backends_here()
            .into_iter()
            .flat_map(|b| shapes.map(|shape| (b, shape)))
        {
            let x = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu).unwrap();
            let w = Tensor::randn(0f32, 0.1, (n, k), &Device::Cpu).unwrap();
            let packed = PackedWeight::from_tensor(&w).unwrap();
            let values = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let ours = packed.x_wt_on(backend, &values, m).unwrap();
            let ours = Tensor::from_vec(ours, (m, n), &Device::Cpu).unwrap();
            // Same bf16-rounded inputs multiplied in f32: only summation order differs.
            let exact = round_to_bf16(&x)
                .matmul(&round_to_bf16(&w).t().unwrap())
                .unwrap();
            let diff = crate::embed::kernels::tests::max_diff(&ours, &exact);
            assert!(
                diff < 1e-3,
                "{backend:?} {m}×{k}×{n}: differs from f32 by {diff}"
            );
            // Against the f32 inputs: bf16's relative error, no more.
            let f32_result = x.matmul(&w.t().unwrap()).unwrap();
            let scale = f32_result.abs().unwrap().max_all().unwrap();
            let scale = scale.to_scalar::<f32>().unwrap();
            let diff = crate::embed::kernels::tests::max_diff(&ours, &f32_result);
            assert!(
                diff < 0.02 * scale,
                "{backend:?} {m}×{k}×{n}: off by {diff} at scale {scale}"
            );
        }
    }

    /// Attention of one sequence and head in f32 from candle ops: softmax(q kᵀ · scale) v over
    /// the first `len` rows.
    fn reference_head(
        qkv: &Tensor,
        bias: &Tensor,
        rows: std::ops::Range<usize>,
        h: usize,
        d: usize,
        scale: f64,
    ) -> Tensor {
        let hidden = qkv.dim(1).unwrap() / 3;
        let x = qkv
            .narrow(0, rows.start, rows.len())
            .unwrap()
            .broadcast_add(bias)
            .unwrap();
        let part = |at: usize| x.narrow(1, at + h * d, d).unwrap();
        let (q, k, v) = (part(0), part(hidden), part(2 * hidden));
        let scores = (q.matmul(&k.t().unwrap()).unwrap() * scale).unwrap();
        candle_nn::ops::softmax_last_dim(&scores)
            .unwrap()
            .matmul(&v)
            .unwrap()
    }

    #[test]
    fn attention_matches_f32_over_real_tokens_only() {
        // Lengths around the 32-row strips, one empty and one full sequence; head dim 32 (one
        // k block) and 48 (a padded one).
        for (backend, (heads, d)) in backends_here()
            .into_iter()
            .flat_map(|b| [(4, 32), (2, 48)].map(|shape| (b, shape)))
        {
            let hidden = heads * d;
            let (seq, lengths) = (70, vec![70, 1, 33, 0, 64, 31]);
            let total = seq * lengths.len();
            let qkv = Tensor::randn(0f32, 1.0, (total, 3 * hidden), &Device::Cpu).unwrap();
            let bias = Tensor::randn(0f32, 0.5, 3 * hidden, &Device::Cpu).unwrap();
            let scale = 1.0 / (d as f64).sqrt();
            let ours = attention_on(backend, &qkv, &bias, &lengths, heads, scale as f32).unwrap();
            assert_eq!(ours.dims(), &[total, hidden]);
            for (b, &len) in lengths.iter().enumerate() {
                let start = b * seq;
                if len < seq {
                    // Padding rows are zeros, and nothing of them reached the real rows.
                    let padding = ours.narrow(0, start + len, seq - len).unwrap();
                    let largest = padding.abs().unwrap().max_all().unwrap();
                    assert_eq!(largest.to_scalar::<f32>().unwrap(), 0.0);
                }
                for h in 0..heads {
                    if len == 0 {
                        continue;
                    }
                    let expected = reference_head(&qkv, &bias, start..start + len, h, d, scale);
                    let got = ours
                        .narrow(0, start, len)
                        .unwrap()
                        .narrow(1, h * d, d)
                        .unwrap();
                    let diff = crate::embed::kernels::tests::max_diff(&got, &expected);
                    assert!(
                        diff < 0.03,
                        "{backend:?}: heads {heads}, sequence {b}, head {h}: off by {diff}"
                    );
                }
            }
        }
        // Inconsistent shapes are errors.
        let Some(&backend) = backends_here().first() else {
            return;
        };
        let attention = |qkv: &Tensor, bias: &Tensor, lengths: &[usize], heads: usize, scale| {
            attention_on(backend, qkv, bias, lengths, heads, scale)
        };
        let qkv = Tensor::zeros((10, 12), candle_core::DType::F32, &Device::Cpu).unwrap();
        let bias = Tensor::zeros(12, candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(
            attention(&qkv, &bias, &[5, 6], 2, 1.0).is_err(),
            "length over seq"
        );
        assert!(
            attention(&qkv, &bias, &[5, 5, 5], 2, 1.0).is_err(),
            "rows not split"
        );
        assert!(
            attention(&qkv, &bias, &[5, 5], 3, 1.0).is_err(),
            "heads do not divide"
        );
        let short = Tensor::zeros(9, candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(
            attention(&qkv, &short, &[5, 5], 2, 1.0).is_err(),
            "bias size"
        );
    }

    #[test]
    fn attention_heads_reusing_scratch_match_fresh_scratch() {
        // A head computed with buffers a longer head left full (of NaNs, so that any stale
        // value read would show) equals one computed with new buffers, bit for bit.
        for backend in backends_here() {
            let (heads, d, seq) = (2, 48, 70);
            let hidden = heads * d;
            let lengths = [70, 1, 33, 64, 31];
            let total = seq * lengths.len();
            let qkv = Tensor::randn(0f32, 1.0, (total, 3 * hidden), &Device::Cpu).unwrap();
            let qkv = qkv.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let bias = Tensor::randn(0f32, 0.5, 3 * hidden, &Device::Cpu).unwrap();
            let bias = bias.to_vec1::<f32>().unwrap();
            let attention = Attention {
                backend,
                lengths: &lengths,
                heads,
                scale: 0.2,
            };
            let mut used = HeadScratch {
                scores: vec![f32::NAN; 96 * 96],
                context: vec![f32::NAN; 96 * 64],
            };
            for (b, &len) in lengths.iter().enumerate() {
                let width = 3 * hidden;
                let lines =
                    SequenceLines::convert(&qkv[b * seq * width..][..len * width], &bias, d);
                for h in 0..heads {
                    let fresh = attention.head(&lines, len, h, &mut HeadScratch::default());
                    let reused = attention.head(&lines, len, h, &mut used);
                    assert_eq!(fresh.len(), len * d);
                    assert!(fresh.iter().all(|v| v.is_finite()));
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&fresh),
                        bits(&reused),
                        "{backend:?}: sequence {b}, head {h}"
                    );
                }
            }
        }
    }

    #[test]
    fn scaled_rows_round_like_their_products() {
        if backends_here().is_empty() {
            return;
        }
        // 70 values: two whole lines and a partial one, zero padded.
        let row: Vec<f32> = (0..70).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let factor = 0.123_456_7;
        let mut lines = vec![Line([0xffff; TILE_K]); 3];
        scaled_to_bf16_lines(&row, factor, &mut lines);
        let got: Vec<u16> = lines.iter().flat_map(|line| line.0).collect();
        for (i, &value) in got.iter().enumerate() {
            let want = row.get(i).map_or(0, |&x| bf16(x * factor));
            assert_eq!(value, want, "value {i}");
        }
        // With a bias, each value is rounded after the bias is added.
        let bias: Vec<f32> = (0..70).map(|i| i as f32 * 0.01).collect();
        to_bf16_lines(&row, Some(&bias), &mut lines);
        let got: Vec<u16> = lines.iter().flat_map(|line| line.0).collect();
        for (i, &value) in got.iter().enumerate() {
            let want = row.get(i).map_or(0, |&x| bf16(x + bias[i]));
            assert_eq!(value, want, "value {i} with a bias");
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(PackedWeight::pack(&[1.0; 6], 2, 4).is_err());
        assert!(PackedWeight::pack(&[], 0, 4).is_err());
        let packed = PackedWeight::pack(&[1.0; 8], 2, 4).unwrap();
        let x = Tensor::ones((3, 5), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(x.apply_op1_no_bwd(&strips::LinearOp(&packed)).is_err());
        for backend in backends_here() {
            assert!(packed.x_wt_on(backend, &[1.0; 5], 1).is_err());
            assert_eq!(packed.x_wt_on(backend, &[], 0).unwrap(), Vec::<f32>::new());
        }
    }
}
