//! int8 matmuls for the Linear layers whose inputs quantize well, on CPUs with AVX512-VNNI and
//! without AMX (by default; `CODER_LSP_INT8=off|on` decides otherwise, see [`enabled`]).
//!
//! `VPDPBUSD` multiplies 64 unsigned by signed byte pairs into sixteen i32 sums per instruction,
//! twice the multiply-adds of `VDPBF16PS` ([`super::bf16`]) and half the weight bytes to read.
//! What it costs is accuracy, and the activations, not the weights, decide it: a per-tensor
//! activation scale (what ONNX Runtime's dynamic int8 uses) moves MiniLM's vectors to cosine 0.947
//! of f32 on real chunks, far below the 0.999 bar. `bench/int8_sim.py` measured what holds it:
//! - weights quantized symmetrically per output column (one scale each);
//! - activations quantized per row (token), at run time, with one scale each;
//! - SmoothQuant's smoothing: input channel `j` of the activations is divided by
//!   `s_j = a_j^0.5 / max|W[:, j]|^0.5` and the weight's column `j` multiplied by it (the product
//!   is unchanged), which moves the activations' outlier channels into the weights; `a_j` is the
//!   channel's largest magnitude over a fixed set of calibration texts ([`CALIBRATION`]), measured
//!   through the f32 path at the first load of a model and kept in the cache under its
//!   fingerprint;
//! - only the projections whose inputs come out of a LayerNorm (query/key/value and the
//!   feed-forward input): the feed-forward output's GELU inputs keep outliers that smoothing does
//!   not tame, so it (and the attention output) stays in bf16;
//! - the few rows whose activations peak far above the rest (attention sinks, [`CREST_LIMIT`])
//!   multiplied in bf16 instead, from a bf16 copy of the weight.
//!
//! With those, MiniLM's vectors hold cosine 0.9994 of f32 on every text measured. Activations enter
//! `VPDPBUSD` as `q + 128` (unsigned); each output subtracts `128 · Σ_k w_q[k]` of its column,
//! which is exact. Weights are packed once at load time into the layout of [`super::bf16`]'s
//! tiles, four bytes a column instead of two values: for each block of 16 columns and each block
//! of 64 `k`, 16 lines of 64 bytes whose line `p` holds, for each column, its weights at
//! `k = 4p … 4p + 3` (one `VPDPBUSD` operand).

#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::sync::OnceLock;

use candle_core::Result;

use super::bf16::{Backend, PackedWeight};
use super::strips;

/// Output columns of one packed block (sixteen i32 lanes).
const COLS: usize = 16;
/// `k` values one block's 16 lines cover (four per column per line).
const K_BLOCK: usize = 64;
/// Rows of A per strip, and columns of B per kernel call (two blocks).
const BLOCK: usize = strips::STRIP;
/// SmoothQuant's migration strength: the share of an activation channel's magnitude moved into
/// the weights (0.5 measured best in `bench/int8_sim.py`, 0.3–0.6 within 0.0001).
const SMOOTHING: f32 = 0.5;

/// A row whose smoothed activations peak above this many times their root mean square is
/// multiplied in bf16 instead ([`PackedInt8::x_wt`]). Such rows are attention sinks: MiniLM's
/// `[CLS]` row peaks above 15 times its RMS in every layer, and after smoothing about 0.5% of
/// rows (one a text) peak above 13.5 times theirs, 4% above 12. One int8 scale per row quantizes
/// a sink's other channels coarsely, and every token attends to it: with the sinks in int8 the
/// worst of 1,428 texts reached cosine 0.9987 to f32, with them in bf16 0.9994 (`bench embed
/// --vectors`; `bench/int8_sim.py` models it). The bf16 copy of the weight this needs costs
/// 12 MB for MiniLM.
const CREST_LIMIT: f32 = 16.0;

/// Texts run through the model once at load time to measure each quantized layer's input
/// channels: code of several languages and the prose of questions and docs, like what gets
/// embedded. Their exact content matters little (the simulation calibrated on other chunks than
/// it measured); their variety does.
pub const CALIBRATION: &[&str] = &[
    "pub fn parse_duration(text: &str) -> Result<Duration, ParseError> {\n    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));\n    let n: u64 = number.parse()?;\n    match unit { \"ms\" => Ok(Duration::from_millis(n)), \"s\" | \"\" => Ok(Duration::from_secs(n)), _ => Err(ParseError::Unit(unit.into())) }\n}",
    "impl<T: Clone> Cache<T> {\n    /// Returns the cached value for `key`, computing it with `make` on a miss.\n    pub fn get_or_insert(&mut self, key: u64, make: impl FnOnce() -> T) -> T {\n        self.entries.entry(key).or_insert_with(make).clone()\n    }\n}",
    "def retry(func, attempts=3, backoff=0.5):\n    \"\"\"Call func until it succeeds, sleeping longer after each failure.\"\"\"\n    for attempt in range(attempts):\n        try:\n            return func()\n        except (ConnectionError, TimeoutError) as exc:\n            if attempt == attempts - 1:\n                raise\n            time.sleep(backoff * 2 ** attempt)",
    "class Session:\n    def __init__(self, base_url, headers=None):\n        self.base_url = base_url.rstrip('/')\n        self.headers = dict(headers or {})\n\n    def request(self, method, path, **kwargs):\n        url = f\"{self.base_url}/{path.lstrip('/')}\"\n        return self.adapter.send(method, url, headers=self.headers, **kwargs)",
    "export function debounce(fn, wait = 100) {\n  let timer = null;\n  return function (...args) {\n    clearTimeout(timer);\n    timer = setTimeout(() => fn.apply(this, args), wait);\n  };\n}",
    "app.get('/users/:id', async (req, res, next) => {\n  try {\n    const user = await db.users.findById(req.params.id);\n    if (!user) return res.status(404).json({ error: 'not found' });\n    res.json(user);\n  } catch (err) { next(err); }\n});",
    "interface RouteMatch<Params extends Record<string, string>> {\n  path: string;\n  params: Params;\n  score: number;\n}\n\nexport function matchRoute(pattern: string, url: string): RouteMatch<Record<string, string>> | null {\n  const keys: string[] = [];\n  return compile(pattern, keys).exec(url) ? { path: url, params: {}, score: keys.length } : null;\n}",
    "func (s *Server) Shutdown(ctx context.Context) error {\n\ts.mu.Lock()\n\tdefer s.mu.Unlock()\n\tfor conn := range s.conns {\n\t\tif err := conn.Close(); err != nil {\n\t\t\treturn fmt.Errorf(\"closing %v: %w\", conn.RemoteAddr(), err)\n\t\t}\n\t}\n\treturn ctx.Err()\n}",
    "public final class JsonWriter implements Closeable, Flushable {\n    /** Encodes {@code value} as a JSON string literal, escaping quotes and control characters. */\n    private void string(String value) throws IOException {\n        out.write('\"');\n        for (int i = 0; i < value.length(); i++) { char c = value.charAt(i); if (c < 0x20 || c == '\"' || c == '\\\\') { out.write(REPLACEMENTS[c]); } else { out.write(c); } }\n        out.write('\"');\n    }\n}",
    "static int hash_insert(struct table *t, const char *key, void *value) {\n    size_t slot = fnv1a(key, strlen(key)) & (t->capacity - 1);\n    while (t->entries[slot].key != NULL) {\n        if (strcmp(t->entries[slot].key, key) == 0) { t->entries[slot].value = value; return 0; }\n        slot = (slot + 1) & (t->capacity - 1);\n    }\n    t->entries[slot] = (struct entry){ strdup(key), value };\n    return ++t->count > t->capacity * 3 / 4 ? grow(t) : 0;\n}",
    "template <typename T>\nstd::optional<T> parse_number(std::string_view text) {\n    T value{};\n    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);\n    if (ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;\n    return value;\n}",
    "module Rack\n  # Middleware that logs every request with its status and duration.\n  class CommonLogger\n    def call(env)\n      began = Time.now\n      status, headers, body = @app.call(env)\n      log(env, status, headers, began)\n      [status, headers, body]\n    end\n  end\nend",
    "function M.setup(opts)\n  opts = vim.tbl_deep_extend('force', defaults, opts or {})\n  vim.api.nvim_create_autocmd('BufWritePost', { callback = function(ev) M.reindex(ev.buf) end })\nend",
    "SELECT c.id, c.path, c.name FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path LIKE ?1 ORDER BY c.start_line LIMIT 50;",
    "## Configuration\n\nSet `max_connections` to limit how many sockets the pool keeps open. Idle connections are closed after `idle_timeout` seconds; a value of 0 keeps them forever.",
    "where are retries scheduled after a request times out",
    "how does the router match a path with parameters to a handler",
    "parse the Range header into a list of byte ranges",
    "Returns the number of bytes written, or an error if the underlying writer failed. The buffer is flushed first when it holds more than the configured capacity.",
    "#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]\n#[serde(rename_all = \"camelCase\")]\npub struct WorkspaceSettings { pub exclude: Vec<String>, pub max_file_size: u64, pub index_dir: Option<PathBuf> }",
];

/// Whether a BERT model's projections after each LayerNorm run in int8, decided once per
/// process: by default where the CPU has AVX512-VNNI and the other matmuls run on AVX512-BF16
/// (AMD Zen 4/5 and the like; AMX tiles multiply bf16 faster than `VPDPBUSD` multiplies bytes,
/// so CPUs with AMX keep bf16); `CODER_LSP_INT8=off` keeps bf16 anywhere, `CODER_LSP_INT8=on`
/// asks for int8 on any CPU with AVX512-VNNI. Its vectors hold cosine 0.999 to PyTorch f32 on
/// every text measured (min 0.9994 over 1,428 tuning texts and 0.99955 over 720 held-out ones),
/// the bar `bench/perf.py` holds every engine to.
pub fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        let wanted = super::bf16::switch("CODER_LSP_INT8");
        if wanted == Some(false) {
            tracing::info!("CODER_LSP_INT8 is off: no int8 matmuls");
            return false;
        }
        if !vnni::supported() {
            if wanted == Some(true) {
                tracing::warn!(
                    "CODER_LSP_INT8=on, but this CPU has no AVX512-VNNI: matmuls stay as they were"
                );
            }
            return false;
        }
        if wanted != Some(true) && super::bf16::backend() != Some(super::bf16::Backend::Avx512) {
            tracing::info!(
                "int8 matmuls stay off: the bf16 matmuls run on AMX tiles or not at all here \
                 (CODER_LSP_INT8=on asks for them)"
            );
            return false;
        }
        tracing::info!("the Linear layers after each LayerNorm run in int8 (AVX512-VNNI)");
        true
    })
}

/// For tests of the int8 model path: asks for it (unless `CODER_LSP_INT8` is set), before the
/// first [`enabled`] call of the process (each test is its own process under nextest).
#[cfg(test)]
pub fn prefer_int8_in_tests() {
    set_in_tests("on");
}

/// For tests of the bf16 model paths: keeps int8 off (unless `CODER_LSP_INT8` is set), before
/// the first [`enabled`] call of the process.
#[cfg(test)]
pub fn keep_int8_off_in_tests() {
    set_in_tests("off");
}

#[cfg(test)]
fn set_in_tests(value: &str) {
    if std::env::var_os("CODER_LSP_INT8").is_none() {
        // SAFETY: called at the start of a test, before it starts threads of its own.
        unsafe { std::env::set_var("CODER_LSP_INT8", value) };
    }
}

/// 64 bytes: one `VPDPBUSD` operand, aligned so loads never straddle cache lines. Weights are
/// stored as the bytes of `i8`s, activations as `u8`s.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; K_BLOCK]);

const ZERO_LINE: Line = Line([0; K_BLOCK]);

/// A Linear weight `(n, k)`, smoothed and quantized to int8 per output column, packed for
/// `VPDPBUSD` (see the module docs).
pub struct PackedInt8 {
    n: usize,
    k: usize,
    /// `k` rounded up to a multiple of 64.
    k_padded: usize,
    /// `n` rounded up to a multiple of 32.
    n_padded: usize,
    lines: Vec<Line>,
    /// Per column (`n_padded`): the weight scale, and `128 · Σ_k w_q` (what the activations'
    /// offset of 128 added).
    column_scale: Vec<f32>,
    column_offset: Vec<i32>,
    /// Per input channel: `1 / s_j`, applied to activations before they are quantized.
    inverse_smoothing: Vec<f32>,
    /// The unsmoothed weight packed for bf16, for the rows that int8 would quantize too coarsely
    /// ([`CREST_LIMIT`]).
    exact: PackedWeight,
}

impl std::fmt::Debug for PackedInt8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedInt8")
            .field("n", &self.n)
            .field("k", &self.k)
            .finish()
    }
}

impl PackedInt8 {
    /// Packs a row-major `(n, k)` f32 weight whose input channels reach `magnitudes[j]` (the
    /// largest |activation| measured on channel `j`).
    pub fn pack(w: &[f32], n: usize, k: usize, magnitudes: &[f32]) -> Result<Self> {
        if w.len() != n * k || n == 0 || k == 0 || magnitudes.len() != k {
            candle_core::bail!(
                "int8: a weight of {} values is not {n}×{k}, or {} channel magnitudes for {k} inputs",
                w.len(),
                magnitudes.len()
            );
        }
        let mut weight_max = vec![0f32; k];
        for row in w.chunks_exact(k) {
            for (max, value) in weight_max.iter_mut().zip(row) {
                *max = max.max(value.abs());
            }
        }
        let smoothing: Vec<f32> = magnitudes
            .iter()
            .zip(&weight_max)
            .map(|(a, w)| a.max(1e-5).powf(SMOOTHING) / w.max(1e-5).powf(1.0 - SMOOTHING))
            .collect();
        let k_blocks = k.div_ceil(K_BLOCK);
        let n_padded = n.div_ceil(BLOCK) * BLOCK;
        let mut lines = vec![ZERO_LINE; n_padded / COLS * k_blocks * COLS];
        let mut column_scale = vec![0f32; n_padded];
        let mut column_offset = vec![0i32; n_padded];
        let mut smoothed = vec![0f32; k];
        for (col, row) in w.chunks_exact(k).enumerate() {
            for ((out, value), s) in smoothed.iter_mut().zip(row).zip(&smoothing) {
                *out = value * s;
            }
            let max = smoothed.iter().fold(0f32, |m, v| m.max(v.abs()));
            if max == 0.0 {
                continue;
            }
            let scale = max / 127.0;
            column_scale[col] = scale;
            let (block, c) = (col / COLS, col % COLS);
            let mut sum = 0i32;
            for (j, value) in smoothed.iter().enumerate() {
                let q = (value / scale).round_ties_even().clamp(-127.0, 127.0) as i8;
                sum += i32::from(q);
                let (kb, within) = (j / K_BLOCK, j % K_BLOCK);
                let line = &mut lines[(block * k_blocks + kb) * COLS + within / 4];
                line.0[c * 4 + within % 4] = q.to_ne_bytes()[0];
            }
            column_offset[col] = 128 * sum;
        }
        Ok(Self {
            n,
            k,
            k_padded: k_blocks * K_BLOCK,
            n_padded,
            lines,
            column_scale,
            column_offset,
            inverse_smoothing: smoothing.iter().map(|s| 1.0 / s).collect(),
            exact: PackedWeight::pack(w, n, k)?,
        })
    }

    /// `x · wᵀ` for row-major `x` `(m, k)`, into a new row-major `(m, n)` buffer: in int8, except
    /// the rows whose activations peak too far above the rest ([`CREST_LIMIT`]), which are
    /// multiplied in bf16. The CPU must support both ([`enabled`]; an error otherwise).
    pub fn x_wt(&self, x: &[f32], m: usize) -> Result<Vec<f32>> {
        let (n, k) = (self.n, self.k);
        if x.len() != m * k {
            candle_core::bail!("int8: an input of {} values is not {m}×{k}", x.len());
        }
        if !vnni::supported() {
            candle_core::bail!("int8: this CPU has no AVX512-VNNI");
        }
        let backend = self.exact_backend()?;
        Ok(strips::parallel_rows(x, (m, n, k), |x, out| {
            let sinks = self.int8_rows(x, out);
            self.sink_rows(backend, x, &sinks, out);
        }))
    }

    /// The backend the sink rows are multiplied on: the process's bf16 one.
    fn exact_backend(&self) -> Result<Backend> {
        match super::bf16::backend() {
            Some(backend) => Ok(backend),
            None => candle_core::bail!("int8: its attention sinks need a bf16 backend"),
        }
    }

    /// Whether a row whose smoothed activations peak at `max` with `squares` their sum of
    /// squares over `len` values is an attention sink: its peak above [`CREST_LIMIT`] times its
    /// root mean square (an all-zero row is not one).
    fn is_crest(max: f32, squares: f32, len: usize) -> bool {
        max > 0.0 && max * max > CREST_LIMIT * CREST_LIMIT * squares / len as f32
    }

    /// One task's rows in int8: `x` `(rows, k)` into `out` `(rows, n)`, every value of which it
    /// writes ([`strips::by_strip`]). Returns the rows (of this task) that are attention sinks,
    /// which [`PackedInt8::sink_rows`] then writes again.
    fn int8_rows(&self, x: &[f32], out: &mut [MaybeUninit<f32>]) -> Vec<usize> {
        let k = self.k;
        let k_blocks = self.k_padded / K_BLOCK;
        let mut strip = vec![ZERO_LINE; BLOCK * k_blocks];
        let mut row_scale = [0f32; BLOCK];
        let mut sinks = Vec::new();
        let mut first = 0;
        strips::by_strip(x, (self.n, k, self.n_padded), out, |x, c, ldc| {
            let strip_rows = x.len() / k;
            for (r, ((lines, scale), row)) in strip
                .chunks_mut(k_blocks)
                .zip(row_scale.iter_mut())
                .zip(x.chunks_exact(k))
                .enumerate()
            {
                // SAFETY: `x_wt` checked the CPU; the row has `k` values, `lines` holds
                // `k_padded` bytes and the smoothing `k` factors.
                let (max, squares) =
                    unsafe { vnni::quantize_row(row, &self.inverse_smoothing, lines) };
                *scale = max / 127.0;
                if Self::is_crest(max, squares, k) {
                    sinks.push(first + r);
                }
            }
            first += strip_rows;
            for nb in (0..self.n_padded).step_by(BLOCK) {
                let b = &self.lines[nb / COLS * k_blocks * COLS..][..2 * k_blocks * COLS];
                let operands = Operands {
                    a: strip.as_ptr().cast(),
                    rows: strip_rows,
                    k_blocks,
                    b: b.as_ptr().cast(),
                    row_scale: &row_scale,
                    column_scale: self.column_scale[nb..][..BLOCK].as_ptr(),
                    column_offset: self.column_offset[nb..][..BLOCK].as_ptr(),
                };
                // SAFETY: 32 A rows of `k_blocks` lines, two column blocks of `k_blocks · 16`
                // lines, 32 scales and offsets from `nb`; `by_strip` hands over 32 rows of
                // `ldc ≥ n_padded` floats at `c`; the CPU was checked in `x_wt`.
                unsafe { vnni::block(operands, c.add(nb), ldc) };
            }
        });
        sinks
    }

    /// Writes the rows `sinks` of one task's `out` `(rows, n)` again with their exact product
    /// (on `backend`), in the task that multiplied them in int8, so the sinks of a batch are
    /// multiplied in parallel like the rest of it.
    fn sink_rows(
        &self,
        backend: Backend,
        x: &[f32],
        sinks: &[usize],
        out: &mut [MaybeUninit<f32>],
    ) {
        if sinks.is_empty() {
            return;
        }
        let (n, k) = (self.n, self.k);
        let gathered: Vec<f32> = sinks
            .iter()
            .flat_map(|&r| &x[r * k..][..k])
            .copied()
            .collect();
        let mut exact = vec![MaybeUninit::uninit(); sinks.len() * n];
        self.exact.rows(backend, &gathered, &mut exact);
        for (&r, row) in sinks.iter().zip(exact.chunks_exact(n)) {
            out[r * n..][..n].copy_from_slice(row);
        }
    }

    /// Whether a row is an attention sink ([`PackedInt8::is_crest`]), as [`PackedInt8::x_wt`]
    /// decides it.
    #[cfg(test)]
    fn is_sink(&self, row: &[f32]) -> bool {
        let mut lines = vec![ZERO_LINE; self.k_padded / K_BLOCK];
        // SAFETY: the tests call this only where `vnni::supported()`; the row and the smoothing
        // have `k` values, `lines` holds `k_padded` bytes.
        let (max, squares) =
            unsafe { vnni::quantize_row(row, &self.inverse_smoothing, &mut lines) };
        Self::is_crest(max, squares, row.len())
    }
}

impl strips::PackedLinear for PackedInt8 {
    const NAME: &'static str = "int8-linear";

    fn shape(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    fn x_wt(&self, x: &[f32], m: usize) -> Result<Vec<f32>> {
        PackedInt8::x_wt(self, x, m)
    }
}

/// The operands of one kernel call: 32 rows of quantized activations times two packed column
/// blocks.
struct Operands<'a> {
    /// 32 rows of `k_blocks` lines; only the first `rows` are real.
    a: *const u8,
    rows: usize,
    k_blocks: usize,
    /// Two column blocks of `k_blocks · 16` lines, one after the other.
    b: *const u8,
    row_scale: &'a [f32; BLOCK],
    /// 32 columns' scales and offsets.
    column_scale: *const f32,
    column_offset: *const i32,
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    use super::{BLOCK, K_BLOCK, Line, Operands};

    /// Rows of output one pass of the kernel keeps in registers (two column blocks each).
    const ROWS: usize = 8;

    /// Whether the CPU has AVX-512 with byte operations and VNNI dot products.
    pub fn supported() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
    }

    /// Quantizes one row: `y = x · inverse_smoothing`, scale `max|y| / 127`, bytes
    /// `round(y / scale) + 128` into `lines` (zero-valued 128s past `x.len()`). Returns
    /// `max |y|` (0 for a row of zeros) and `Σ y²`, for the sink test
    /// ([`super::PackedInt8::is_crest`]).
    ///
    /// # Safety
    /// The CPU has AVX512-F and AVX512-BW; `inverse_smoothing` is as long as `x`, and `lines`
    /// holds at least `x.len()` bytes.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub unsafe fn quantize_row(
        x: &[f32],
        inverse_smoothing: &[f32],
        lines: &mut [Line],
    ) -> (f32, f32) {
        let k = x.len();
        assert!(inverse_smoothing.len() == k && lines.len() * K_BLOCK >= k);
        let whole = k / 16 * 16;
        let bytes = lines.as_mut_ptr().cast::<u8>();
        // SAFETY (whole block): every load reads `x`/`inverse_smoothing` below `whole`, every
        // store writes `lines` below `lines.len() · 64` (checked above).
        unsafe {
            let (mut max, mut squares) = (_mm512_setzero_ps(), _mm512_setzero_ps());
            for i in (0..whole).step_by(16) {
                let y = _mm512_mul_ps(
                    _mm512_loadu_ps(x.as_ptr().add(i)),
                    _mm512_loadu_ps(inverse_smoothing.as_ptr().add(i)),
                );
                max = _mm512_max_ps(max, _mm512_abs_ps(y));
                squares = _mm512_fmadd_ps(y, y, squares);
            }
            let (mut max, mut squares) = (_mm512_reduce_max_ps(max), _mm512_reduce_add_ps(squares));
            for i in whole..k {
                let y = x[i] * inverse_smoothing[i];
                max = max.max(y.abs());
                squares += y * y;
            }
            let inverse = if max > 0.0 { 127.0 / max } else { 0.0 };
            let factor = _mm512_set1_ps(inverse);
            let offset = _mm512_set1_epi32(128);
            for i in (0..whole).step_by(16) {
                let y = _mm512_mul_ps(
                    _mm512_mul_ps(
                        _mm512_loadu_ps(x.as_ptr().add(i)),
                        _mm512_loadu_ps(inverse_smoothing.as_ptr().add(i)),
                    ),
                    factor,
                );
                // Rounds to nearest even (the default rounding mode); |y| ≤ 127.
                let q = _mm512_add_epi32(_mm512_cvtps_epi32(y), offset);
                _mm_storeu_si128(bytes.add(i).cast(), _mm512_cvtusepi32_epi8(q));
            }
            for i in whole..k {
                let q = (x[i] * inverse_smoothing[i] * inverse).round_ties_even();
                *bytes.add(i) = (q as i32 + 128) as u8;
            }
            std::ptr::write_bytes(bytes.add(k), 128, lines.len() * K_BLOCK - k);
            (max, squares)
        }
    }

    /// A 32×32 f32 block at `c` (row stride `ldc` floats) = the dequantized product of the
    /// operands; rows are computed (and written) in groups of 8 up to the last real one.
    ///
    /// # Safety
    /// The CPU has AVX512-F, AVX512-BW and AVX512-VNNI ([`supported`]); the pointers of
    /// `operands` hold what its fields say; `c` points at 32 rows of 32 writable floats with
    /// row stride `ldc`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn block(operands: Operands<'_>, c: *mut f32, ldc: usize) {
        let Operands {
            a,
            rows,
            k_blocks,
            b,
            row_scale,
            column_scale,
            column_offset,
        } = operands;
        let a_stride = k_blocks * K_BLOCK;
        let block_bytes = k_blocks * 16 * K_BLOCK;
        // SAFETY (whole function): the caller's contract above; every offset stays inside the
        // 32 rows of A, the two column blocks of B, the 32 scales and offsets, and C's 32 rows.
        unsafe {
            let (b0, b1) = (b, b.add(block_bytes));
            let offsets = [
                _mm512_loadu_si512(column_offset.cast()),
                _mm512_loadu_si512(column_offset.add(16).cast()),
            ];
            let scales = [
                _mm512_loadu_ps(column_scale),
                _mm512_loadu_ps(column_scale.add(16)),
            ];
            for r0 in (0..rows.min(BLOCK)).step_by(ROWS) {
                let mut acc = [[_mm512_setzero_si512(); 2]; ROWS];
                for kb in 0..k_blocks {
                    let (t0, t1) = (b0.add(kb * 16 * K_BLOCK), b1.add(kb * 16 * K_BLOCK));
                    let a_k = a.add(r0 * a_stride + kb * K_BLOCK);
                    // Line `p` holds each column's weights at k = 4p … 4p + 3; each A row's
                    // four bytes there are broadcast against it.
                    for p in 0..16 {
                        let w0 = _mm512_loadu_si512(t0.add(p * K_BLOCK).cast());
                        let w1 = _mm512_loadu_si512(t1.add(p * K_BLOCK).cast());
                        for (i, acc) in acc.iter_mut().enumerate() {
                            let quad = a_k.add(i * a_stride + p * 4).cast::<i32>().read_unaligned();
                            let x = _mm512_set1_epi32(quad);
                            acc[0] = _mm512_dpbusd_epi32(acc[0], x, w0);
                            acc[1] = _mm512_dpbusd_epi32(acc[1], x, w1);
                        }
                    }
                }
                for (i, acc) in acc.iter().enumerate() {
                    let row = c.add((r0 + i) * ldc);
                    let scale = _mm512_set1_ps(row_scale[r0 + i]);
                    for half in 0..2 {
                        let sums = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[half], offsets[half]));
                        let values = _mm512_mul_ps(sums, _mm512_mul_ps(scales[half], scale));
                        _mm512_storeu_ps(row.add(16 * half), values);
                    }
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod vnni {
    use super::{Line, Operands};

    pub fn supported() -> bool {
        false
    }

    /// Never called: `supported` is false on these targets.
    pub unsafe fn quantize_row(
        _x: &[f32],
        _inverse_smoothing: &[f32],
        _lines: &mut [Line],
    ) -> (f32, f32) {
        unreachable!("AVX512-VNNI exists on x86-64 only")
    }

    /// Never called: `supported` is false on these targets.
    pub unsafe fn block(_operands: Operands<'_>, _c: *mut f32, _ldc: usize) {
        unreachable!("AVX512-VNNI exists on x86-64 only")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1) (a linear congruential sequence).
    fn values(count: usize, seed: u64) -> Vec<f32> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..count)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Whether the int8 kernel and the bf16 one for its sink rows can run here.
    fn runnable() -> bool {
        let ok = vnni::supported() && crate::embed::bf16::available();
        if !ok {
            eprintln!(
                "no AVX512-VNNI or no bf16 backend on this CPU: the int8 kernel cannot run here"
            );
        }
        ok
    }

    /// The exact f32 product `x · wᵀ`.
    fn exact(w: &[f32], x: &[f32], (m, n, k): (usize, usize, usize)) -> Vec<f32> {
        (0..m * n)
            .map(|i| (0..k).map(|j| x[i / n * k + j] * w[i % n * k + j]).sum())
            .collect()
    }

    /// The product the kernel must compute, from the same quantization done in scalar code
    /// (rows that are sinks included: the caller compares those with the exact product).
    fn reference(packed: &PackedInt8, w: &[f32], x: &[f32], m: usize) -> Vec<f32> {
        let (n, k) = (packed.n, packed.k);
        let smoothing: Vec<f32> = packed.inverse_smoothing.iter().map(|s| 1.0 / s).collect();
        let mut out = vec![0f32; m * n];
        for r in 0..m {
            let y: Vec<f32> = (0..k)
                .map(|j| x[r * k + j] * packed.inverse_smoothing[j])
                .collect();
            let max = y.iter().fold(0f32, |a, v| a.max(v.abs()));
            let row_scale = max / 127.0;
            let qx: Vec<i32> = y
                .iter()
                .map(|v| {
                    if max > 0.0 {
                        (v * (127.0 / max)).round_ties_even() as i32
                    } else {
                        0
                    }
                })
                .collect();
            for col in 0..n {
                let scale = packed.column_scale[col];
                let mut sum = 0i64;
                for j in 0..k {
                    let qw = if scale > 0.0 {
                        (w[col * k + j] * smoothing[j] / scale).round_ties_even() as i64
                    } else {
                        0
                    };
                    sum += qw * i64::from(qx[j]);
                }
                out[r * n + col] = sum as f32 * scale * row_scale;
            }
        }
        out
    }

    #[test]
    fn the_kernel_computes_the_quantized_product_and_stays_near_f32() {
        if !runnable() {
            return;
        }
        // Ragged sizes: rows past one strip, columns not a multiple of 32, k not of 64.
        for (m, n, k) in [(1, 16, 8), (37, 50, 70), (64, 96, 384), (5, 1, 130)] {
            let w = values(n * k, 1 + n as u64);
            let mut x = values(m * k, 2 + m as u64);
            // An outlier channel, as activations have.
            for row in x.chunks_mut(k) {
                row[k / 2] *= 20.0;
            }
            let magnitudes: Vec<f32> = (0..k)
                .map(|j| (0..m).map(|r| x[r * k + j].abs()).fold(0.0, f32::max))
                .collect();
            let packed = PackedInt8::pack(&w, n, k, &magnitudes).unwrap();
            assert!((0..m).all(|r| !packed.is_sink(&x[r * k..][..k])));
            let got = packed.x_wt(&x, m).unwrap();
            let want = reference(&packed, &w, &x, m);
            for (g, r) in got.iter().zip(&want) {
                assert!(
                    (g - r).abs() <= 1e-4 * (1.0 + r.abs()),
                    "{g} vs {r} at {m}×{n}×{k}"
                );
            }
            // Against the exact f32 product: int8 error, well below the values' spread.
            let exact = exact(&w, &x, (m, n, k));
            let mut error = 0f64;
            let mut norm = 0f64;
            for (g, e) in got.iter().zip(&exact) {
                error += f64::from(g - e).powi(2);
                norm += f64::from(*e).powi(2);
            }
            assert!(
                error / norm < 1e-3,
                "relative squared error {} at {m}×{n}×{k}",
                error / norm
            );
        }
    }

    #[test]
    fn attention_sinks_are_multiplied_in_bf16() {
        if !runnable() {
            return;
        }
        let (m, n, k) = (40, 48, 384);
        let w = values(n * k, 11);
        let mut x = values(m * k, 12);
        // Calibration saw ordinary rows only; rows 3 and 33 then peak on two channels far above
        // the rest, as BERT's [CLS] does.
        let magnitudes: Vec<f32> = (0..k)
            .map(|j| (0..m).map(|r| x[r * k + j].abs()).fold(0.0, f32::max))
            .collect();
        for r in [3, 33] {
            x[r * k + 62] = 40.0;
            x[r * k + 249] = -25.0;
        }
        let packed = PackedInt8::pack(&w, n, k, &magnitudes).unwrap();
        let sinks: Vec<usize> = (0..m)
            .filter(|&r| packed.is_sink(&x[r * k..][..k]))
            .collect();
        assert_eq!(sinks, [3, 33]);
        let got = packed.x_wt(&x, m).unwrap();
        let exact = exact(&w, &x, (m, n, k));
        let int8 = reference(&packed, &w, &x, m);
        let error = |values: &[f32], r: usize| -> f64 {
            let range = r * n..(r + 1) * n;
            let (mut error, mut norm) = (0f64, 0f64);
            for (v, e) in values[range.clone()].iter().zip(&exact[range]) {
                error += f64::from(v - e).powi(2);
                norm += f64::from(*e).powi(2);
            }
            error / norm
        };
        for r in [3, 33] {
            // bf16 rounding only, where int8 would have lost far more.
            assert!(error(&got, r) < 1e-4, "row {r}: {}", error(&got, r));
            assert!(error(&int8, r) > 10.0 * error(&got, r), "row {r}");
        }
        // The other rows stay int8's, exactly.
        for r in (0..m).filter(|r| !sinks.contains(r)) {
            for (g, q) in got[r * n..][..n].iter().zip(&int8[r * n..][..n]) {
                assert!(
                    (g - q).abs() <= 1e-4 * (1.0 + q.abs()),
                    "row {r}: {g} vs {q}"
                );
            }
        }
    }

    /// Regression (issue 24): the sinks are found and multiplied inside each parallel task now,
    /// not on one thread around them; the product is bit for bit what the whole-batch pass
    /// gave (every sink row multiplied in one bf16 product after the int8 one).
    #[test]
    fn regression_24_sinks_in_parallel_tasks_are_bit_identical() {
        if !runnable() {
            return;
        }
        // Several strips per task, sinks in different tasks and strips, one in a ragged tail.
        let (m, n, k) = (230, 72, 384);
        let w = values(n * k, 21);
        let mut x = values(m * k, 22);
        let magnitudes: Vec<f32> = (0..k)
            .map(|j| (0..m).map(|r| x[r * k + j].abs()).fold(0.0, f32::max))
            .collect();
        let planted = [0, 31, 32, 120, 200, 229];
        for r in planted {
            x[r * k + 7] = 50.0;
            x[r * k + 300] = -30.0;
        }
        let packed = PackedInt8::pack(&w, n, k, &magnitudes).unwrap();
        let got = packed.x_wt(&x, m).unwrap();

        let mut before = strips::parallel_rows(&x, (m, n, k), |x, out| {
            packed.int8_rows(x, out);
        });
        let sinks: Vec<usize> = (0..m)
            .filter(|&r| packed.is_sink(&x[r * k..][..k]))
            .collect();
        assert_eq!(sinks, planted);
        let gathered: Vec<f32> = sinks
            .iter()
            .flat_map(|&r| &x[r * k..][..k])
            .copied()
            .collect();
        let exact = packed.exact.x_wt(&gathered, sinks.len()).unwrap();
        for (&r, row) in sinks.iter().zip(exact.chunks_exact(n)) {
            before[r * n..][..n].copy_from_slice(row);
        }
        assert!(
            got.iter()
                .zip(&before)
                .all(|(g, b)| g.to_bits() == b.to_bits())
        );
    }

    #[test]
    fn zero_rows_and_columns_give_zeros() {
        if !runnable() {
            return;
        }
        let (m, n, k) = (3, 20, 64);
        let mut w = values(n * k, 7);
        w[..k].fill(0.0);
        let mut x = values(m * k, 8);
        x[k..2 * k].fill(0.0);
        let packed = PackedInt8::pack(&w, n, k, &vec![1.0; k]).unwrap();
        let got = packed.x_wt(&x, m).unwrap();
        assert!(got[n..2 * n].iter().all(|v| *v == 0.0));
        assert!((0..m).all(|r| got[r * n] == 0.0));
        assert!(got.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(PackedInt8::pack(&[0.0; 6], 2, 4, &[1.0; 4]).is_err());
        assert!(PackedInt8::pack(&[0.0; 8], 2, 4, &[1.0; 3]).is_err());
        let packed = PackedInt8::pack(&[0.5; 8], 2, 4, &[1.0; 4]).unwrap();
        assert!(packed.x_wt(&[0.0; 7], 2).is_err());
    }
}
