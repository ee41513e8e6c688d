//! int8 matmuls for the Linear layers whose inputs quantize well: by default on AMX tiles
//! (AMX-INT8), on CPUs with AVX512-VNNI and without AMX and on CPUs with AVX-VNNI but no
//! AVX-512, on request on CPUs with AVX2 alone (`CODER_LSP_INT8=off|on` decides otherwise, see
//! [`kernel`]).
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
//!
//! AMX tiles read the same operands: a tile row of A is one row's 64 bytes of a `k` block, and a
//! tile of B is a column block's 16 lines, so `TDPBUSD` ([`Kernel::Amx`]) multiplies a 32-row
//! strip by 32 columns in 4 instructions per `k` block, into the same i32 sums, which the same
//! AVX-512 code then scales: its output is the AVX512-VNNI kernel's bit for bit.
//!
//! CPUs without AVX-512 (AVX2 laptops, AMD Zen 2/3) run the same quantization (the same
//! smoothing, scales and calibration) on AVX2 ([`Kernel::Avx2`]): activations as signed 16-bit
//! values, weights sign-extended from bytes, multiplied with `VPMADDWD` (pairs of i16 products
//! summed into i32, exact). Its i32 sums are `VPDPBUSD`'s after the offset, so its products are
//! the AVX-512 kernel's bit for bit. `VPMADDUBSW` would multiply twice the pairs an instruction,
//! but it saturates its i16 sums (two u8 × i8 products reach 64,770), so it needs 7-bit
//! activations: twice the rounding step of every activation, where 8 bits already leave little
//! margin to the 0.999 bar. Its weights keep the bytes of the same lines, arranged so that 16
//! bytes are one operand ([`byte_in_line`]). Without a bf16 backend its attention sinks are
//! multiplied in f32 against those int8 weights ([`Exact::F32`]): a sink's trouble is its
//! activations' one coarse scale, not the weights, so it costs no copy of the weight.
//!
//! CPUs with AVX-VNNI but no AVX-512 (Intel Core since Alder Lake, Intel E-core Xeons) run
//! `VPDPBUSD` on 256-bit vectors, its VEX form ([`Kernel::AvxVnni`]): the AVX-512 kernel's
//! weight lines as they are (the first and second 32 bytes of a line are columns 0–7 and
//! 8–15), the same byte activations quantized with AVX2, the same i32 sums and the same
//! scaling, so its products too are the AVX-512 kernel's bit for bit; its sinks go to a bf16
//! backend or to f32 like the AVX2 kernel's. Only 16 vector registers: a pass keeps 6 rows × 16 columns of sums
//! (12 registers), the two weight vectors of a line and a broadcast. With the other matmuls in
//! f32 it gave 1.25–1.39× the f32 path (docs/performance.md), where the AVX2 kernel gave none.

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
/// multiplied in bf16 instead (`PackedLinear::x_wt`). Such rows are attention sinks: MiniLM's
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

/// What multiplies the int8 products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// `TDPBUSD` on AMX tiles: a 16×64 byte tile times a 64×16 one an instruction, the
    /// `VPDPBUSD` operands and sums, with the activations quantized and the sums scaled on
    /// AVX-512.
    Amx,
    /// `VPDPBUSD` on AVX-512 vectors: 64 byte products an instruction.
    Vnni,
    /// `VPDPBUSD` on 256-bit vectors (AVX-VNNI, VEX-encoded): 32 byte products an instruction,
    /// on the AVX-512 kernel's weight layout and with its sums.
    AvxVnni,
    /// `VPMADDWD` on AVX2 vectors, activations and weights widened to i16: 16 products an
    /// instruction, exact (no saturation), the same sums as `VPDPBUSD`.
    Avx2,
}

impl Kernel {
    /// How logs and the status line name it.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Amx => "AMX-INT8",
            Kernel::Vnni => "AVX512-VNNI",
            Kernel::AvxVnni => "AVX-VNNI",
            Kernel::Avx2 => "AVX2",
        }
    }

    /// Whether this CPU can run it, whatever the environment says.
    pub fn runs_here(self) -> bool {
        match self {
            Kernel::Amx => super::bf16::arch::int8_tiles() && vnni::supported(),
            Kernel::Vnni => vnni::supported(),
            Kernel::AvxVnni => avxvnni::supported(),
            Kernel::Avx2 => avx2::supported(),
        }
    }

    /// How many consecutive `k` of one column its weight lines keep together ([`byte_in_line`]):
    /// the four `VPDPBUSD` multiplies into one sum, or the pair `VPMADDWD` does.
    fn k_group(self) -> usize {
        match self {
            Kernel::Amx | Kernel::Vnni | Kernel::AvxVnni => 4,
            Kernel::Avx2 => 2,
        }
    }

    /// Every kernel this CPU can run, best first, whatever the environment says (for tests that
    /// compare them).
    #[cfg(test)]
    pub fn supported() -> Vec<Kernel> {
        [Kernel::Amx, Kernel::Vnni, Kernel::AvxVnni, Kernel::Avx2]
            .into_iter()
            .filter(|kernel| kernel.runs_here())
            .collect()
    }
}

/// The kernel a BERT model's projections after each LayerNorm run on in int8, or `None` (they
/// stay bf16 or f32), decided once per process:
/// - AMX-INT8 tiles where the other matmuls run on AMX (Intel Sapphire Rapids and later): the
///   tiles multiply bytes at twice the rate they multiply bf16 pairs; its attention sinks go
///   through the AMX bf16 kernel;
/// - AVX512-VNNI where the CPU has it and the other matmuls run on AVX512-BF16 (AMD Zen 4/5
///   and the like); its attention sinks go through the bf16 kernel;
/// - AVX-VNNI (`VPDPBUSD` on 256-bit vectors) where the CPU has it and neither AVX512-VNNI nor
///   a bf16 backend is in use (Intel since Alder Lake, without AVX-512; its attention sinks in
///   f32): with the other matmuls in f32 it measured 1.25–1.39× the f32 path's snippets/s at
///   min cosine 0.99943 to f32 (docs/performance.md); on other CPUs with AVX-VNNI (AVX512-VNNI
///   without a bf16 backend, or a bf16 backend without AVX512-VNNI) only when
///   `CODER_LSP_INT8=on` asks for int8, its sinks on the bf16 backend where one runs;
/// - AVX2 only when `CODER_LSP_INT8=on` asks for int8 and none of the above is there (AVX2
///   laptops, AMD Zen 2/3; its attention sinks in bf16 where a bf16 backend runs, else in
///   f32): on AMD Zen 4 with the other matmuls in f32 it measured no faster than f32
///   (docs/performance.md), so it is not a default;
/// - `CODER_LSP_INT8=off` keeps every matmul as it was; `CODER_LSP_VNNI=off` leaves AVX512-VNNI
///   unused and `CODER_LSP_AVXVNNI=off` AVX-VNNI, each as on a CPU without it (for measuring
///   and testing the kernels below it on one that has it); `CODER_LSP_AMX=off` leaves the tiles
///   unused, so an AMX CPU runs what AVX-512 CPUs run.
///
/// Its vectors hold cosine 0.999 to PyTorch f32 on every text measured (min 0.9994 over 1,428
/// tuning texts and 0.99955 over 720 held-out ones on AVX512-VNNI; the AMX-INT8 kernel's
/// products are that kernel's bit for bit), the bar `bench/perf.py` holds every engine to.
pub fn kernel() -> Option<Kernel> {
    static KERNEL: OnceLock<Option<Kernel>> = OnceLock::new();
    *KERNEL.get_or_init(|| {
        let wanted = super::bf16::switch("CODER_LSP_INT8");
        if wanted == Some(false) {
            tracing::info!("CODER_LSP_INT8 is off: no int8 matmuls");
            return None;
        }
        let bf16 = super::bf16::backend();
        if bf16 == Some(super::bf16::Backend::Amx) && Kernel::Amx.runs_here() {
            tracing::info!("the Linear layers after each LayerNorm run in int8 (AMX-INT8)");
            return Some(Kernel::Amx);
        }
        let vnni = vnni::supported() && super::bf16::switch("CODER_LSP_VNNI") != Some(false);
        if vnni && bf16.is_some() {
            if wanted != Some(true) && bf16 != Some(super::bf16::Backend::Avx512) {
                tracing::info!(
                    "int8 matmuls stay off: the bf16 matmuls run on AMX tiles without AMX-INT8 \
                     here (CODER_LSP_INT8=on asks for them)"
                );
                return None;
            }
            tracing::info!("the Linear layers after each LayerNorm run in int8 (AVX512-VNNI)");
            return Some(Kernel::Vnni);
        }
        if !avx2::supported() {
            if wanted == Some(true) {
                tracing::warn!(
                    "CODER_LSP_INT8=on, but this CPU has no AVX2: matmuls stay as they were"
                );
            }
            return None;
        }
        let avx_vnni =
            avxvnni::supported() && super::bf16::switch("CODER_LSP_AVXVNNI") != Some(false);
        let (chosen, by_default) = if avx_vnni {
            (Kernel::AvxVnni, !vnni && bf16.is_none())
        } else {
            (Kernel::Avx2, false)
        };
        if wanted != Some(true) && !by_default {
            tracing::info!(
                "int8 matmuls stay off: this CPU would run them on {} (CODER_LSP_INT8=on asks \
                 for them)",
                match chosen {
                    Kernel::Avx2 => "AVX2, which measured no faster than f32",
                    _ => "AVX-VNNI, measured only without AVX512-VNNI and bf16 matmuls",
                }
            );
            return None;
        }
        tracing::info!(
            "the Linear layers after each LayerNorm run in int8 ({}), their attention sinks in {}",
            chosen.name(),
            if bf16.is_some() { "bf16" } else { "f32" }
        );
        Some(chosen)
    })
}

/// Whether a BERT model's projections after each LayerNorm run in int8 ([`kernel`] chose one).
pub fn enabled() -> bool {
    kernel().is_some()
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

/// For tests of what a CPU with AVX2 alone runs: int8 on AVX2, no AVX512-VNNI, no AVX-VNNI and
/// no bf16 (each unless its variable is set), before the first [`kernel`] call of the process.
#[cfg(test)]
pub fn prefer_avx2_alone_in_tests() {
    prefer_int8_without(&["CODER_LSP_VNNI", "CODER_LSP_AVXVNNI", "CODER_LSP_BF16"]);
}

/// For tests of what a CPU with AVX-VNNI but no AVX-512 runs (Intel since Alder Lake): int8 on
/// AVX-VNNI, no AVX512-VNNI and no bf16 (each unless its variable is set), before the first
/// [`kernel`] call of the process.
#[cfg(test)]
pub fn prefer_avx_vnni_alone_in_tests() {
    prefer_int8_without(&["CODER_LSP_VNNI", "CODER_LSP_BF16"]);
}

/// Asks for int8 with each of `switches` off (unless the variable is set).
#[cfg(test)]
fn prefer_int8_without(switches: &[&str]) {
    set_in_tests("on");
    for variable in switches {
        if std::env::var_os(variable).is_none() {
            // SAFETY: called at the start of a test, before it starts threads of its own.
            unsafe { std::env::set_var(variable, "off") };
        }
    }
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
    /// The kernel the weights are laid out for.
    kernel: Kernel,
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
    /// What multiplies the rows that int8 would quantize too coarsely ([`CREST_LIMIT`]).
    exact: Exact,
}

/// How [`PackedInt8`] multiplies its attention sinks.
enum Exact {
    /// The unsmoothed weight packed for bf16, on a bf16 backend (a second copy of the weight in
    /// 2 bytes a value: 12 MB for MiniLM).
    Bf16(PackedWeight, Backend),
    /// In f32 against the int8 weights themselves (no copy; the AVX-VNNI and AVX2 kernels, whose
    /// CPUs have AVX2 and FMA): the sink's activations stay unquantized, which is what a sink
    /// needs, and the weights carry the error every other row sees.
    F32,
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
    /// largest |activation| measured on channel `j`), for the process's [`kernel`], its sinks on
    /// its bf16 backend when it has one, else in f32.
    pub fn pack(w: &[f32], n: usize, k: usize, magnitudes: &[f32]) -> Result<Self> {
        let Some(kernel) = kernel() else {
            candle_core::bail!("int8: no int8 kernel is in use in this process");
        };
        Self::pack_for(kernel, super::bf16::backend(), w, n, k, magnitudes)
    }

    /// [`PackedInt8::pack`] for a given kernel, its sinks on a given bf16 backend (`None`: in
    /// f32, which [`Kernel::AvxVnni`] and [`Kernel::Avx2`] do); the CPU must support both.
    pub fn pack_for(
        kernel: Kernel,
        sinks_on: Option<Backend>,
        w: &[f32],
        n: usize,
        k: usize,
        magnitudes: &[f32],
    ) -> Result<Self> {
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
                line.0[byte_in_line(kernel.k_group(), c, within % 4)] = q.to_ne_bytes()[0];
            }
            column_offset[col] = 128 * sum;
        }
        let exact = match (sinks_on, kernel) {
            (Some(backend), _) => Exact::Bf16(PackedWeight::pack(w, n, k)?, backend),
            (None, Kernel::AvxVnni | Kernel::Avx2) => Exact::F32,
            (None, Kernel::Amx | Kernel::Vnni) => {
                candle_core::bail!(
                    "int8: the {} kernel's sinks need a bf16 backend",
                    kernel.name()
                )
            }
        };
        Ok(Self {
            kernel,
            n,
            k,
            k_padded: k_blocks * K_BLOCK,
            n_padded,
            lines,
            column_scale,
            column_offset,
            inverse_smoothing: smoothing.iter().map(|s| 1.0 / s).collect(),
            exact,
        })
    }

    /// What one task of `x · wᵀ` (`PackedLinear::x_wt`) runs for its rows: the int8 product,
    /// except the rows whose activations peak too far above the rest ([`CREST_LIMIT`]), which are
    /// then multiplied again in bf16 or f32 ([`Exact`]). An error where the CPU cannot run the
    /// kernel.
    fn rows_task(&self) -> Result<strips::RowsTask<'_>> {
        if !self.kernel.runs_here() {
            candle_core::bail!("int8: this CPU has no {}", self.kernel.name());
        }
        Ok(Box::new(|x, out| {
            let sinks = self.int8_rows(x, out);
            self.sink_rows(x, &sinks, out);
        }))
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
        let row_lines = self.row_lines();
        let mut strip = vec![ZERO_LINE; BLOCK * row_lines];
        let mut row_scale = [0f32; BLOCK];
        let mut sinks = Vec::new();
        let mut first = 0;
        let _tiles = (self.kernel == Kernel::Amx).then(super::bf16::arch::Tiles::configure);
        strips::by_strip(x, (self.n, k, self.n_padded), out, |x, c, ldc| {
            let strip_rows = x.len() / k;
            for (r, ((lines, scale), row)) in strip
                .chunks_mut(row_lines)
                .zip(row_scale.iter_mut())
                .zip(x.chunks_exact(k))
                .enumerate()
            {
                let (max, squares) = self.quantize_row(row, lines);
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
                // SAFETY: 32 A rows of `row_lines` lines (the kernel's activations), two column
                // blocks of `k_blocks · 16` lines in its layout, 32 scales and offsets from
                // `nb`; `by_strip` hands over 32 rows of `ldc ≥ n_padded` floats at `c`; the
                // CPU was checked in `x_wt`.
                unsafe {
                    match self.kernel {
                        Kernel::Amx => amx::block(operands, c.add(nb), ldc),
                        Kernel::Vnni => vnni::block(operands, c.add(nb), ldc),
                        Kernel::AvxVnni => avxvnni::block(operands, c.add(nb), ldc),
                        Kernel::Avx2 => avx2::block(operands, c.add(nb), ldc),
                    }
                }
            }
        });
        sinks
    }

    /// Lines of 64 bytes one quantized activation row takes: bytes for `VPDPBUSD` (AVX512-VNNI
    /// and AVX-VNNI), 16-bit values for AVX2.
    fn row_lines(&self) -> usize {
        let k_blocks = self.k_padded / K_BLOCK;
        match self.kernel {
            Kernel::Amx | Kernel::Vnni | Kernel::AvxVnni => k_blocks,
            Kernel::Avx2 => 2 * k_blocks,
        }
    }

    /// Quantizes one row of `k` activations into `lines` ([`PackedInt8::row_lines`] of them)
    /// for the kernel; returns `max |y|` and `Σ y²` of the smoothed row `y`.
    fn quantize_row(&self, row: &[f32], lines: &mut [Line]) -> (f32, f32) {
        assert!(row.len() == self.k && lines.len() == self.row_lines());
        let inverse = &self.inverse_smoothing;
        let (start, bytes) = (lines.as_mut_ptr(), lines.len() * K_BLOCK);
        // SAFETY: `x_wt` (and the tests) checked the CPU (AVX-VNNI's and AVX2's have AVX2 and
        // FMA); the row and the smoothing have `k` values, `lines` holds `k_padded ≥ k` bytes.
        // `Line` is 64 plain bytes, 64-byte aligned: the lines are `bytes` bytes, or
        // `bytes / 2` i16s, borrowed from `lines` for this call alone.
        unsafe {
            match self.kernel {
                Kernel::Amx | Kernel::Vnni => vnni::quantize_row(row, inverse, lines),
                Kernel::AvxVnni => {
                    let levels = std::slice::from_raw_parts_mut(start.cast::<u8>(), bytes);
                    avx2::quantize_row(row, inverse, Levels::Offset8(levels))
                }
                Kernel::Avx2 => {
                    let levels = std::slice::from_raw_parts_mut(start.cast::<i16>(), bytes / 2);
                    avx2::quantize_row(row, inverse, Levels::Signed16(levels))
                }
            }
        }
    }

    /// Writes the rows `sinks` of one task's `out` `(rows, n)` again with their exact product
    /// ([`Exact`]), in the task that multiplied them in int8, so the sinks of a batch are
    /// multiplied in parallel like the rest of it.
    fn sink_rows(&self, x: &[f32], sinks: &[usize], out: &mut [MaybeUninit<f32>]) {
        if sinks.is_empty() {
            return;
        }
        let (n, k) = (self.n, self.k);
        match &self.exact {
            Exact::Bf16(weight, backend) => {
                let gathered: Vec<f32> = sinks
                    .iter()
                    .flat_map(|&r| &x[r * k..][..k])
                    .copied()
                    .collect();
                let mut exact = vec![MaybeUninit::uninit(); sinks.len() * n];
                weight.rows(*backend, &gathered, &mut exact);
                for (&r, row) in sinks.iter().zip(exact.chunks_exact(n)) {
                    out[r * n..][..n].copy_from_slice(row);
                }
            }
            Exact::F32 => {
                let mut y = vec![0f32; self.k_padded];
                let mut row = vec![0f32; self.n_padded];
                for &r in sinks {
                    for ((y, value), inverse) in y
                        .iter_mut()
                        .zip(&x[r * k..][..k])
                        .zip(&self.inverse_smoothing)
                    {
                        *y = value * inverse;
                    }
                    // SAFETY: `Exact::F32` exists only with the AVX-VNNI and AVX2 kernels, whose
                    // CPU (AVX2 and FMA) `x_wt` checked; the lines are in the kernel's layout;
                    // `y` holds `k_padded` values (zeros past `k`), `row` and the scales
                    // `n_padded`.
                    unsafe {
                        let (lines, scales) = (&self.lines, &self.column_scale);
                        match self.kernel.k_group() {
                            4 => avx2::dequantized_row::<4>(&y, lines, scales, &mut row),
                            _ => avx2::dequantized_row::<2>(&y, lines, scales, &mut row),
                        }
                    };
                    for (to, value) in out[r * n..][..n].iter_mut().zip(&row) {
                        to.write(*value);
                    }
                }
            }
        }
    }

    /// Whether a row is an attention sink ([`PackedInt8::is_crest`]), as `PackedLinear::x_wt`
    /// decides it.
    #[cfg(test)]
    fn is_sink(&self, row: &[f32]) -> bool {
        let mut lines = vec![ZERO_LINE; self.row_lines()];
        let (max, squares) = self.quantize_row(row, &mut lines);
        Self::is_crest(max, squares, row.len())
    }
}

impl strips::PackedLinear for PackedInt8 {
    const NAME: &'static str = "int8-linear";

    fn shape(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    fn rows_task(&self) -> Result<strips::RowsTask<'_>> {
        PackedInt8::rows_task(self)
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

/// Where, in a 16-column block's line for `k = 4p … 4p + 3`, the weight of column `c` at
/// `k = 4p + within` goes, for a kernel that keeps `group` consecutive `k` of a column together
/// ([`Kernel::k_group`]): the line holds `4 / group` runs of 16 columns × `group` bytes, one
/// after the other. With 4 (`VPDPBUSD`), column `c`'s four bytes are at `4c`, so the first and
/// second 32 bytes are columns 0–7 and 8–15; with 2 (AVX2), each 32-byte run is one `k` pair,
/// columns 0–7 then 8–15, so 16 bytes sign-extended to i16 are one `VPMADDWD` operand.
fn byte_in_line(group: usize, c: usize, within: usize) -> usize {
    within / group * COLS * group + c * group + within % group
}

/// Where a quantized activation row's levels `q = round(y / scale)` go.
enum Levels<'a> {
    /// As i16 `q` (`VPMADDWD`'s operands), zeros past the row.
    Signed16(&'a mut [i16]),
    /// As u8 `q + 128` (`VPDPBUSD`'s unsigned operands), 128s (zero) past the row.
    Offset8(&'a mut [u8]),
}

// Only the AVX2 quantization (x86-64) writes them.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
impl Levels<'_> {
    fn len(&self) -> usize {
        match self {
            Levels::Signed16(values) => values.len(),
            Levels::Offset8(bytes) => bytes.len(),
        }
    }

    /// Writes level `q` (|q| ≤ 127) at `i`.
    fn set(&mut self, i: usize, q: i32) {
        match self {
            Levels::Signed16(values) => values[i] = q as i16,
            Levels::Offset8(bytes) => bytes[i] = (q + 128) as u8,
        }
    }

    /// Writes level 0 from `from` to the end.
    fn clear_from(&mut self, from: usize) {
        match self {
            Levels::Signed16(values) => values[from..].fill(0),
            Levels::Offset8(bytes) => bytes[from..].fill(128),
        }
    }
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
            let (offsets, scales) = columns(column_offset, column_scale);
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
                    let out = c.add((r0 + i) * ldc);
                    store_row(*acc, (&offsets, &scales), row_scale[r0 + i], out);
                }
            }
        }
    }

    /// The 32 columns' offsets and scales of a block, as vectors ([`store_row`]'s operands).
    ///
    /// # Safety
    /// The CPU has AVX512-F; `column_offset` and `column_scale` point at 32 values each.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn columns(
        column_offset: *const i32,
        column_scale: *const f32,
    ) -> ([__m512i; 2], [__m512; 2]) {
        // SAFETY: 32 values at each pointer, by the caller's contract.
        unsafe {
            (
                [
                    _mm512_loadu_si512(column_offset.cast()),
                    _mm512_loadu_si512(column_offset.add(16).cast()),
                ],
                [
                    _mm512_loadu_ps(column_scale),
                    _mm512_loadu_ps(column_scale.add(16)),
                ],
            )
        }
    }

    /// Writes one output row of a block: its 32 i32 sums `acc` less the columns' offsets, as
    /// floats, times the column's scale times the row's.
    ///
    /// # Safety
    /// The CPU has AVX512-F; `out` points at 32 writable floats.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn store_row(
        acc: [__m512i; 2],
        (offsets, scales): (&[__m512i; 2], &[__m512; 2]),
        row_scale: f32,
        out: *mut f32,
    ) {
        let scale = _mm512_set1_ps(row_scale);
        for half in 0..2 {
            let sums = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[half], offsets[half]));
            let values = _mm512_mul_ps(sums, _mm512_mul_ps(scales[half], scale));
            // SAFETY: 32 floats at `out`, by the caller's contract.
            unsafe { _mm512_storeu_ps(out.add(16 * half), values) };
        }
    }
}

/// The AMX-INT8 kernel: the products on tiles (`super::bf16::arch::block_int8`), the sums
/// scaled like [`vnni::block`]'s, so its output is that kernel's bit for bit.
#[cfg(target_arch = "x86_64")]
mod amx {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    use super::{BLOCK, K_BLOCK, Operands, vnni};

    /// 32×32 i32 sums, aligned for the tile stores and the vector loads.
    #[repr(C, align(64))]
    struct Sums([[i32; BLOCK]; BLOCK]);

    /// A 32×32 f32 block at `c` (row stride `ldc` floats) = the dequantized product of the
    /// operands; only the real rows are written.
    ///
    /// # Safety
    /// Tiles are configured on this thread, and the CPU has AMX-INT8 and AVX512-F
    /// ([`super::Kernel::Amx`]'s `runs_here`); the pointers of `operands` hold what its fields
    /// say (B in the `VPDPBUSD` layout); `c` points at 32 rows of 32 writable floats with row
    /// stride `ldc`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn block(operands: Operands<'_>, c: *mut f32, ldc: usize) {
        let k_blocks = operands.k_blocks;
        // Not zeroed first: the four tile stores write all of it (4 KiB a call, on the hot path).
        let mut sums = MaybeUninit::<Sums>::uninit();
        // SAFETY (whole function): the caller's contract above; the tiles read 32 A rows of
        // `k_blocks · 64` bytes and `k_blocks` tiles of each column block, and write every sum
        // of `sums` (32 rows of 128 bytes) before it is read.
        unsafe {
            let (b0, b1) = (operands.b, operands.b.add(k_blocks * 16 * K_BLOCK));
            let sums_at = sums.as_mut_ptr().cast::<i32>();
            super::super::bf16::arch::block_int8(operands.a, k_blocks, b0, b1, sums_at, BLOCK);
            let sums = sums.assume_init_ref();
            let (offsets, scales) = vnni::columns(operands.column_offset, operands.column_scale);
            let rows = operands.rows.min(BLOCK);
            for (r, row) in sums.0.iter().enumerate().take(rows) {
                let acc = [
                    _mm512_loadu_si512(row.as_ptr().cast()),
                    _mm512_loadu_si512(row.as_ptr().add(16).cast()),
                ];
                let out = c.add(r * ldc);
                vnni::store_row(acc, (&offsets, &scales), operands.row_scale[r], out);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod amx {
    use super::Operands;

    /// Never called: `Kernel::Amx` never runs on these targets.
    pub unsafe fn block(_operands: Operands<'_>, _c: *mut f32, _ldc: usize) {
        unreachable!("AMX exists on x86-64 only")
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

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK, COLS, K_BLOCK, Levels, Line, Operands};

    /// Rows of output one pass of the kernel keeps in registers (two 8-column vectors each, of
    /// one 16-column block): 8 accumulators, two weight vectors and a broadcast of the 16 AVX2
    /// registers.
    const ROWS: usize = 4;

    /// Whether the CPU has AVX2 and FMA (the sink rows' f32 product uses FMAs).
    pub fn supported() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    /// Quantizes one row as [`super::vnni::quantize_row`] does (the same scale and the same
    /// rounded values), into `out`: as signed 16-bit values `round(y / scale)` for this
    /// kernel, or as `VPDPBUSD`'s bytes `round(y / scale) + 128` for AVX-VNNI's (level 0 past
    /// `x.len()`). Returns `max |y|` and `Σ y²`.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA ([`supported`]); `inverse_smoothing` is as long as `x`, and
    /// `out` is at least as long.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn quantize_row(
        x: &[f32],
        inverse_smoothing: &[f32],
        mut out: Levels<'_>,
    ) -> (f32, f32) {
        let k = x.len();
        assert!(inverse_smoothing.len() == k && out.len() >= k);
        let whole = k / 8 * 8;
        // SAFETY (whole block): every load reads `x`/`inverse_smoothing` below `whole`, every
        // store writes `out` below `whole` ≤ its length (checked above).
        unsafe {
            let sign = _mm256_set1_ps(-0.0);
            let (mut max, mut squares) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            for i in (0..whole).step_by(8) {
                let y = _mm256_mul_ps(
                    _mm256_loadu_ps(x.as_ptr().add(i)),
                    _mm256_loadu_ps(inverse_smoothing.as_ptr().add(i)),
                );
                max = _mm256_max_ps(max, _mm256_andnot_ps(sign, y));
                squares = _mm256_fmadd_ps(y, y, squares);
            }
            let (mut lanes, mut sums) = ([0f32; 8], [0f32; 8]);
            _mm256_storeu_ps(lanes.as_mut_ptr(), max);
            _mm256_storeu_ps(sums.as_mut_ptr(), squares);
            let mut max = lanes.iter().fold(0f32, |m, v| m.max(*v));
            let mut squares: f32 = sums.iter().sum();
            for i in whole..k {
                let y = x[i] * inverse_smoothing[i];
                max = max.max(y.abs());
                squares += y * y;
            }
            let inverse = if max > 0.0 { 127.0 / max } else { 0.0 };
            let factor = _mm256_set1_ps(inverse);
            for i in (0..whole).step_by(8) {
                let y = _mm256_mul_ps(
                    _mm256_mul_ps(
                        _mm256_loadu_ps(x.as_ptr().add(i)),
                        _mm256_loadu_ps(inverse_smoothing.as_ptr().add(i)),
                    ),
                    factor,
                );
                // Rounds to nearest even (the default rounding mode); |y| ≤ 127.
                let q = _mm256_cvtps_epi32(y);
                let packed =
                    _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256::<1>(q));
                match &mut out {
                    Levels::Signed16(values) => {
                        _mm_storeu_si128(values.as_mut_ptr().add(i).cast(), packed);
                    }
                    Levels::Offset8(bytes) => {
                        // 1 ≤ q + 128 ≤ 255: the unsigned saturation keeps every value.
                        let offset = _mm_add_epi16(packed, _mm_set1_epi16(128));
                        let eight = _mm_packus_epi16(offset, offset);
                        _mm_storel_epi64(bytes.as_mut_ptr().add(i).cast(), eight);
                    }
                }
            }
            for i in whole..k {
                let q = (x[i] * inverse_smoothing[i] * inverse).round_ties_even();
                out.set(i, q as i32);
            }
            out.clear_from(k);
            (max, squares)
        }
    }

    /// A 32×32 f32 block at `c` (row stride `ldc` floats) = the dequantized product of the
    /// operands, whose A rows are 16-bit (`a` points at i16s, `k_blocks · 64` a row); rows are
    /// computed (and written) in groups of 4 up to the last real one. Each i32 sum is the one
    /// `VPDPBUSD` reaches after subtracting its offset, and the same scaling follows, so the
    /// values are [`super::vnni::block`]'s, bit for bit.
    ///
    /// # Safety
    /// The CPU has AVX2 ([`supported`]); the pointers of `operands` hold what its fields say
    /// (B in this kernel's layout, [`byte_in_line`]); `c` points at 32 rows of 32 writable
    /// floats with row stride `ldc`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn block(operands: Operands<'_>, c: *mut f32, ldc: usize) {
        let Operands {
            a,
            rows,
            k_blocks,
            b,
            row_scale,
            column_scale,
            ..
        } = operands;
        let a = a.cast::<i16>();
        let a_stride = k_blocks * K_BLOCK;
        let block_bytes = k_blocks * COLS * K_BLOCK;
        // SAFETY (whole function): the caller's contract above; every offset stays inside the
        // 32 rows of A, the two column blocks of B, the 32 scales and C's 32 rows (rows are
        // taken 4 at a time from a multiple of 4 below 32).
        unsafe {
            for half in 0..2 {
                let t = b.add(half * block_bytes);
                let scales = [
                    _mm256_loadu_ps(column_scale.add(16 * half)),
                    _mm256_loadu_ps(column_scale.add(16 * half + 8)),
                ];
                for r0 in (0..rows.min(BLOCK)).step_by(ROWS) {
                    let mut acc = [[_mm256_setzero_si256(); 2]; ROWS];
                    for kb in 0..k_blocks {
                        let lines = t.add(kb * COLS * K_BLOCK);
                        let a_k = a.add(r0 * a_stride + kb * K_BLOCK);
                        // Line `p` holds the pairs k = 4p, 4p + 1 and then 4p + 2, 4p + 3;
                        // each A row's pair there is broadcast against 8 columns' pairs.
                        for pair in 0..K_BLOCK / 2 {
                            let line = lines.add(pair * 32);
                            let w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(line.cast()));
                            let w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(line.add(16).cast()));
                            for (i, acc) in acc.iter_mut().enumerate() {
                                let two = a_k.add(i * a_stride + pair * 2).cast::<i32>();
                                let x = _mm256_set1_epi32(two.read_unaligned());
                                acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(x, w0));
                                acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(x, w1));
                            }
                        }
                    }
                    for (i, acc) in acc.iter().enumerate() {
                        let row = c.add((r0 + i) * ldc + 16 * half);
                        let scale = _mm256_set1_ps(row_scale[r0 + i]);
                        for j in 0..2 {
                            let sums = _mm256_cvtepi32_ps(acc[j]);
                            let values = _mm256_mul_ps(sums, _mm256_mul_ps(scales[j], scale));
                            _mm256_storeu_ps(row.add(8 * j), values);
                        }
                    }
                }
            }
        }
    }

    /// One row's product in f32 against the int8 weights: `out[col] = Σ_j y[j] · w_q[col][j] ·
    /// column_scale[col]` for `y` the smoothed activations (`k_padded` values, zeros past `k`),
    /// over `n_padded` columns of `lines` laid out with `GROUP` consecutive `k` of a column
    /// together ([`super::byte_in_line`]: 2 for this kernel, 4 for AVX-VNNI's). What the sink
    /// rows use without a bf16 backend: their activations unquantized, the weights as every
    /// other row sees them.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA ([`supported`]); `lines` holds `n_padded / 16` column blocks of
    /// `y.len() / 64` k blocks; `column_scale` and `out` hold `n_padded` values.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dequantized_row<const GROUP: usize>(
        y: &[f32],
        lines: &[Line],
        column_scale: &[f32],
        out: &mut [f32],
    ) {
        const { assert!(GROUP == 2 || GROUP == 4) };
        let k_blocks = y.len() / K_BLOCK;
        let n_padded = out.len();
        assert!(
            y.len().is_multiple_of(K_BLOCK)
                && column_scale.len() == n_padded
                && lines.len() >= n_padded / COLS * k_blocks * COLS
        );
        // SAFETY (whole block): each column block reads its `k_blocks · 16` lines of 64 bytes,
        // and `y` below `k_blocks · 64`, as checked above.
        unsafe {
            for block in 0..n_padded / COLS {
                let base = lines.as_ptr().add(block * k_blocks * COLS).cast::<u8>();
                // `8 / GROUP` columns' `GROUP` partial sums (one per k of a group) a vector,
                // `2 · GROUP` vectors for the 16 columns.
                let mut acc = [_mm256_setzero_ps(); 8];
                for run in 0..k_blocks * K_BLOCK / GROUP {
                    let weights = base.add(run * COLS * GROUP);
                    // The run's `GROUP` values of `y`, repeated across the eight lanes.
                    let ys = y.as_ptr().add(run * GROUP);
                    let yy = if GROUP == 2 {
                        _mm256_castpd_ps(_mm256_set1_pd(ys.cast::<f64>().read_unaligned()))
                    } else {
                        let four = _mm_loadu_ps(ys);
                        _mm256_set_m128(four, four)
                    };
                    for (q, acc) in acc[..2 * GROUP].iter_mut().enumerate() {
                        let bytes = _mm_loadl_epi64(weights.add(8 * q).cast());
                        let w = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes));
                        *acc = _mm256_fmadd_ps(w, yy, *acc);
                    }
                }
                for (q, acc) in acc[..2 * GROUP].iter().enumerate() {
                    let mut lanes = [0f32; 8];
                    _mm256_storeu_ps(lanes.as_mut_ptr(), *acc);
                    for (c, sums) in lanes.chunks_exact(GROUP).enumerate() {
                        let col = block * COLS + q * (8 / GROUP) + c;
                        let sum = sums[1..].iter().fold(sums[0], |sum, v| sum + v);
                        out[col] = sum * column_scale[col];
                    }
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    use super::{Levels, Line, Operands};

    pub fn supported() -> bool {
        false
    }

    /// Never called: `supported` is false on these targets.
    pub unsafe fn quantize_row(
        _x: &[f32],
        _inverse_smoothing: &[f32],
        _out: Levels<'_>,
    ) -> (f32, f32) {
        unreachable!("AVX2 exists on x86-64 only")
    }

    /// Never called: `supported` is false on these targets.
    pub unsafe fn block(_operands: Operands<'_>, _c: *mut f32, _ldc: usize) {
        unreachable!("AVX2 exists on x86-64 only")
    }

    /// Never called: `supported` is false on these targets.
    pub unsafe fn dequantized_row<const GROUP: usize>(
        _y: &[f32],
        _lines: &[Line],
        _column_scale: &[f32],
        _out: &mut [f32],
    ) {
        unreachable!("AVX2 exists on x86-64 only")
    }
}

#[cfg(target_arch = "x86_64")]
mod avxvnni {
    use std::arch::x86_64::*;

    use super::{BLOCK, COLS, K_BLOCK, Operands};

    /// Rows of output one pass of the kernel keeps in registers, at most: two 8-column vectors
    /// each, of one 16-column block, so 12 accumulators, two weight vectors and a broadcast of
    /// the 16 AVX registers.
    const ROWS: usize = 6;

    /// Whether the CPU has AVX-VNNI, and AVX2 and FMA for the activations' quantization and
    /// the sink rows' f32 product ([`super::avx2`]).
    pub fn supported() -> bool {
        std::arch::is_x86_feature_detected!("avxvnni") && super::avx2::supported()
    }

    /// A 32×32 f32 block at `c` (row stride `ldc` floats) = the dequantized product of the
    /// operands, whose A rows are bytes `q + 128` and B lines in the AVX-512 kernel's layout:
    /// [`super::vnni::block`] on 256-bit vectors, the same i32 sums and the same scaling, so the
    /// same floats bit for bit. Rows are computed (and written) up to the last real one, in
    /// passes of 6 rows, or 4 or 2 for the last few.
    ///
    /// # Safety
    /// The CPU has AVX2 and AVX-VNNI ([`supported`]); the pointers of `operands` hold what its
    /// fields say; `c` points at 32 rows of 32 writable floats with row stride `ldc`.
    #[target_feature(enable = "avx2,avxvnni")]
    pub unsafe fn block(operands: Operands<'_>, c: *mut f32, ldc: usize) {
        let rows = operands.rows.min(BLOCK);
        for half in 0..2 {
            let mut r0 = 0;
            while r0 < rows {
                // SAFETY: the caller's contract; each pass stays below row 32 (a pass of 6
                // starts at most at row 24, one of 2 covers rows 30 and 31 at the end).
                unsafe {
                    r0 += match rows - r0 {
                        1..=2 => pass::<2>(&operands, half, r0, c, ldc),
                        3..=4 => pass::<4>(&operands, half, r0, c, ldc),
                        _ => pass::<ROWS>(&operands, half, r0, c, ldc),
                    };
                }
            }
        }
    }

    /// Rows `r0 … r0 + R` of column block `half` (16 columns) of [`block`]'s product; returns
    /// `R`.
    ///
    /// # Safety
    /// As [`block`]'s, and `r0 + R ≤ 32`.
    #[target_feature(enable = "avx2,avxvnni")]
    unsafe fn pass<const R: usize>(
        operands: &Operands<'_>,
        half: usize,
        r0: usize,
        c: *mut f32,
        ldc: usize,
    ) -> usize {
        let Operands { a, k_blocks, b, .. } = *operands;
        let a_stride = k_blocks * K_BLOCK;
        // SAFETY (whole function): the caller's contract above; every offset stays inside the
        // 32 rows of A, column block `half` of B, its 16 scales and offsets, and C's 32 rows.
        unsafe {
            let t = b.add(half * k_blocks * COLS * K_BLOCK);
            let mut acc = [[_mm256_setzero_si256(); 2]; R];
            for kb in 0..k_blocks {
                let lines = t.add(kb * COLS * K_BLOCK);
                let a_k = a.add(r0 * a_stride + kb * K_BLOCK);
                // Line `p` holds each column's weights at k = 4p … 4p + 3, columns 0–7 in its
                // first 32 bytes; each A row's four bytes there are broadcast against it.
                for p in 0..16 {
                    let w0 = _mm256_loadu_si256(lines.add(p * K_BLOCK).cast());
                    let w1 = _mm256_loadu_si256(lines.add(p * K_BLOCK + 32).cast());
                    for (i, acc) in acc.iter_mut().enumerate() {
                        let quad = a_k.add(i * a_stride + p * 4).cast::<i32>().read_unaligned();
                        let x = _mm256_set1_epi32(quad);
                        acc[0] = _mm256_dpbusd_avx_epi32(acc[0], x, w0);
                        acc[1] = _mm256_dpbusd_avx_epi32(acc[1], x, w1);
                    }
                }
            }
            let columns = 16 * half;
            for (i, acc) in acc.iter().enumerate() {
                let row = c.add((r0 + i) * ldc + columns);
                let scale = _mm256_set1_ps(operands.row_scale[r0 + i]);
                for (j, acc) in acc.iter().enumerate() {
                    let at = columns + 8 * j;
                    let offsets = _mm256_loadu_si256(operands.column_offset.add(at).cast());
                    let scales = _mm256_loadu_ps(operands.column_scale.add(at));
                    let sums = _mm256_cvtepi32_ps(_mm256_sub_epi32(*acc, offsets));
                    let values = _mm256_mul_ps(sums, _mm256_mul_ps(scales, scale));
                    _mm256_storeu_ps(row.add(8 * j), values);
                }
            }
        }
        R
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avxvnni {
    use super::Operands;

    pub fn supported() -> bool {
        false
    }

    /// Never called: `supported` is false on these targets.
    pub unsafe fn block(_operands: Operands<'_>, _c: *mut f32, _ldc: usize) {
        unreachable!("AVX-VNNI exists on x86-64 only")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::strips::PackedLinear;
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

    /// Every int8 kernel this CPU runs with every way it can multiply its sinks: on each bf16
    /// backend the CPU has, and in f32 (the AVX-VNNI and AVX2 kernels).
    fn variants() -> Vec<(Kernel, Option<Backend>)> {
        let backends = Backend::supported();
        let mut variants = Vec::new();
        for kernel in Kernel::supported() {
            variants.extend(backends.iter().map(|&b| (kernel, Some(b))));
            if !matches!(kernel, Kernel::Amx | Kernel::Vnni) {
                variants.push((kernel, None));
            }
        }
        if variants.is_empty() {
            eprintln!("no int8 kernel on this CPU: nothing to test");
        }
        variants
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
    fn every_kernel_computes_the_quantized_product_and_stays_near_f32() {
        for (kernel, sinks_on) in variants() {
            the_kernel_computes_the_quantized_product(kernel, sinks_on);
        }
    }

    fn the_kernel_computes_the_quantized_product(kernel: Kernel, sinks_on: Option<Backend>) {
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
            let packed = PackedInt8::pack_for(kernel, sinks_on, &w, n, k, &magnitudes).unwrap();
            assert!((0..m).all(|r| !packed.is_sink(&x[r * k..][..k])));
            let got = packed.x_wt(&x, m).unwrap();
            let want = reference(&packed, &w, &x, m);
            for (g, r) in got.iter().zip(&want) {
                assert!(
                    (g - r).abs() <= 1e-4 * (1.0 + r.abs()),
                    "{g} vs {r} at {m}×{n}×{k} on {kernel:?}"
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
    fn attention_sinks_are_multiplied_exactly_on_every_kernel() {
        for (kernel, sinks_on) in variants() {
            attention_sinks_are_multiplied_exactly(kernel, sinks_on);
        }
    }

    fn attention_sinks_are_multiplied_exactly(kernel: Kernel, sinks_on: Option<Backend>) {
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
        let packed = PackedInt8::pack_for(kernel, sinks_on, &w, n, k, &magnitudes).unwrap();
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
            // bf16 rounding (or the int8 weights' own error) only, where int8 activations would
            // have lost far more.
            let e = error(&got, r);
            assert!(
                e < 1e-4,
                "row {r}: {e} on {kernel:?}, sinks on {sinks_on:?}"
            );
            assert!(error(&int8, r) > 10.0 * e, "row {r} on {kernel:?}");
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
        for (kernel, sinks_on) in variants() {
            if let Some(backend) = sinks_on {
                sinks_in_parallel_tasks_are_bit_identical(kernel, backend);
            }
        }
    }

    fn sinks_in_parallel_tasks_are_bit_identical(kernel: Kernel, backend: Backend) {
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
        let packed = PackedInt8::pack_for(kernel, Some(backend), &w, n, k, &magnitudes).unwrap();
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
        let weight = PackedWeight::pack(&w, n, k).unwrap();
        let exact = weight.x_wt_on(backend, &gathered, sinks.len()).unwrap();
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
        for (kernel, sinks_on) in variants() {
            let (m, n, k) = (3, 20, 64);
            let mut w = values(n * k, 7);
            w[..k].fill(0.0);
            let mut x = values(m * k, 8);
            x[k..2 * k].fill(0.0);
            let packed = PackedInt8::pack_for(kernel, sinks_on, &w, n, k, &vec![1.0; k]).unwrap();
            let got = packed.x_wt(&x, m).unwrap();
            assert!(got[n..2 * n].iter().all(|v| *v == 0.0));
            assert!((0..m).all(|r| got[r * n] == 0.0));
            assert!(got.iter().all(|v| v.is_finite()));
        }
    }

    /// The AVX2 kernel sums what `VPDPBUSD` sums (16-bit products, no saturation), the AVX-VNNI
    /// kernel sums it on 256-bit vectors and the AMX-INT8 one on tiles, and all scale the same
    /// way: every kernel gives the same floats, sinks and all on a bf16 backend (without one,
    /// the sinks' f32 products add in each layout's order, and the other rows are compared).
    #[test]
    fn the_kernels_agree_bit_for_bit() {
        let backend = Backend::supported().first().copied();
        let kernels: Vec<Kernel> = Kernel::supported()
            .into_iter()
            .filter(|&kernel| backend.is_some() || !matches!(kernel, Kernel::Amx | Kernel::Vnni))
            .collect();
        if kernels.len() < 2 {
            eprintln!("only {kernels:?} on this CPU (bf16: {backend:?}): nothing to compare");
            return;
        }
        for (m, n, k) in [(37, 50, 70), (100, 96, 384), (5, 1, 130)] {
            let w = values(n * k, 31 + n as u64);
            let mut x = values(m * k, 32 + m as u64);
            for row in x.chunks_mut(k) {
                row[k / 3] *= 20.0;
            }
            let magnitudes: Vec<f32> = (0..k)
                .map(|j| (0..m).map(|r| x[r * k + j].abs()).fold(0.0, f32::max))
                .collect();
            x[k + 5] = 60.0;
            let packed: Vec<PackedInt8> = kernels
                .iter()
                .map(|&kernel| PackedInt8::pack_for(kernel, backend, &w, n, k, &magnitudes))
                .collect::<Result<_>>()
                .unwrap();
            let compared: Vec<usize> = (0..m)
                .filter(|&r| backend.is_some() || !packed[0].is_sink(&x[r * k..][..k]))
                .collect();
            assert!(compared.len() >= m - 1);
            let products: Vec<Vec<f32>> = packed.iter().map(|p| p.x_wt(&x, m).unwrap()).collect();
            for (kernel, product) in kernels.iter().zip(&products).skip(1) {
                let same = compared.iter().all(|&r| {
                    let rows = (&products[0][r * n..][..n], &product[r * n..][..n]);
                    rows.0
                        .iter()
                        .zip(rows.1)
                        .all(|(a, b)| a.to_bits() == b.to_bits())
                });
                assert!(
                    same,
                    "{kernel:?} differs from {:?} at {m}×{n}×{k}",
                    kernels[0]
                );
            }
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        for (kernel, sinks_on) in variants() {
            let pack = |w: &[f32], magnitudes: &[f32]| {
                PackedInt8::pack_for(kernel, sinks_on, w, 2, 4, magnitudes)
            };
            assert!(pack(&[0.0; 6], &[1.0; 4]).is_err());
            assert!(pack(&[0.0; 8], &[1.0; 3]).is_err());
            let packed = pack(&[0.5; 8], &[1.0; 4]).unwrap();
            assert!(packed.x_wt(&[0.0; 7], 2).is_err());
        }
    }
}
