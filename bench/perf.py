#!/usr/bin/env python3
"""coder-lsp's performance benchmark: one run, one machine, ratios taken side by side.

Usage: bench/perf.py --binary PATH [--python VENV_PYTHON] [--out bench/RESULTS.md] [--skip-st]
                     [--snippets N]

1. Fetches the pinned codebase of perf-corpus.json from its registry (sha256-checked).
2. Language server session on it (bench/lsp_latency.py): cold index time and peak memory,
   semanticSearch/hover latency, 8 concurrent searches, edit → searchable.
3. No-op re-index with the CLI on the same index: time and embeddings computed (should be 0).
4. Index size on disk.
5. Embedding: 2,000 chunk texts from that index (what indexing really embeds), same model, same
   max length, through `coder-lsp bench embed` (its default: bf16 matmuls where the CPU runs them
   faster; throughput, padding waste, FLOP share of the matmul peak measured in the same process)
   and through the other engines a user could pick, all on the Python of --python:
   sentence-transformers on PyTorch f32 (bench/embed_st.py) and under PyTorch's bf16 autocast
   (`--bf16`), and ONNX Runtime on the model exported to ONNX, f32 and dynamically quantized int8
   (bench/embed_onnx.py). Every engine runs twice, in turn with the others (best of each). The
   f32 PyTorch vectors are the reference: every other engine reports the min cosine of its vectors
   against them, and coder-lsp's are the vectors its index stored (f16) for the same texts. The
   report's engine table gives each engine's throughput and coder-lsp's ratio to it, and names the
   fastest engine whose min cosine is ≥ 0.999 (the quality bar; int8 is reported but usually falls
   below it). Once more with every matmul in f32 (`CODER_LSP_BF16=off`), for CPUs without bf16
   matmuls, and with MKL for the Linear layers where the venv has it.
6. HNSW recall@10 against exact search over the index's vectors (`coder-lsp bench recall`).
Writes a markdown report with the goals of issue 9 beside each figure. Nothing is asserted.
--skip-st leaves out every Python engine (as does omitting --python).
"""
import argparse
import array
import datetime
import json
import math
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "quality"))
import lsp_latency  # noqa: E402
import quality  # noqa: E402

CORPORA_DIR = os.path.join(HERE, "corpora")
SNIPPETS = 2000
# The other engines a user could embed with, on the Python of --python: (key, name in the report,
# script, flags). The first is the reference the others' vectors are compared with.
ENGINES = [
    ("st_f32", "PyTorch f32 (sentence-transformers)", "embed_st.py", []),
    ("st_bf16", "PyTorch bf16 autocast (sentence-transformers)", "embed_st.py", ["--bf16"]),
    ("ort_f32", "ONNX Runtime f32", "embed_onnx.py", []),
    ("ort_int8", "ONNX Runtime int8 (dynamic quantization, per-channel weights)", "embed_onnx.py", ["--int8"]),
]
# The min cosine against the f32 reference an engine needs to count as the same model's output.
QUALITY_BAR = 0.999


def log(msg):
    print(f"perf: {msg}", file=sys.stderr, flush=True)


def fetch_corpus():
    with open(os.path.join(HERE, "perf-corpus.json")) as f:
        corpus = json.load(f)
    # quality.fetch unpacks into its CORPORA_DIR; point it at ours.
    quality.CORPORA_DIR = CORPORA_DIR
    quality.fetch([corpus])
    root = os.path.join(CORPORA_DIR, corpus["name"], corpus["root"])
    lines = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name.endswith(".rs"):
                with open(os.path.join(dirpath, name), "rb") as f:
                    lines += f.read().count(b"\n")
    return corpus, root, lines


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def dir_size_mb(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(dirpath, name))
    return total / 1e6


def open_store(index_dir):
    return sqlite3.connect(f"file:{os.path.join(index_dir, 'store.sqlite')}?mode=ro", uri=True)


def sample_snippets(index_dir, path, n=SNIPPETS):
    """n chunk texts spread evenly over the store (ordered by id, so the sample is stable); returns
    their text hashes."""
    con = open_store(index_dir)
    rows = con.execute("SELECT text, text_hash FROM chunks ORDER BY id").fetchall()
    con.close()
    step = max(1, len(rows) // n)
    chosen = rows[::step][:n]
    with open(path, "w", encoding="utf-8") as f:
        for text, _ in chosen:
            f.write(json.dumps(text) + "\n")
    return [h for _, h in chosen]


def index_vectors(index_dir, hashes):
    """The vectors the index stored (little-endian f16) for these texts, in order, under the model
    fingerprint with the most vectors; None for a text without one."""
    con = open_store(index_dir)
    row = con.execute("SELECT fingerprint FROM vectors GROUP BY fingerprint "
                      "ORDER BY COUNT(*) DESC LIMIT 1").fetchone()
    out = []
    for h in hashes if row else []:
        v = con.execute("SELECT vector FROM vectors WHERE fingerprint = ? AND text_hash = ?",
                        (row[0], h)).fetchone()
        out.append(struct.unpack(f"<{len(v[0]) // 2}e", v[0]) if v else None)
    con.close()
    return out


def cosine_stats(vectors, reference_path):
    """min and mean cosine of each vector (None skipped) against the same row of the reference file
    (raw little-endian f32, as embed_st.py --save-vectors writes), and how many were compared."""
    ref = array.array("f")
    with open(reference_path, "rb") as f:
        ref.frombytes(f.read())
    if sys.byteorder == "big":
        ref.byteswap()
    cos = []
    for i, v in enumerate(vectors):
        if v is None:
            continue
        r = ref[i * len(v):(i + 1) * len(v)]
        if len(r) != len(v):
            return None
        dot = sum(a * b for a, b in zip(v, r))
        cos.append(dot / math.sqrt(sum(a * a for a in v) * sum(b * b for b in r)))
    return {"cosine_min": min(cos), "cosine_mean": sum(cos) / len(cos), "compared": len(cos)} if cos else None


def verdict(ok):
    return "met" if ok else "**missed**"


def f32_peak(matmul):
    """The best f32 matmul of the microbenchmark (candle or the system BLAS), bf16 left out."""
    return max(g for *_, g in matmul["shapes"] + matmul.get("blas_shapes", []))


def engine_cosine(key, run):
    """An engine's min cosine against the f32 reference; the reference itself is 1."""
    return 1.0 if key == ENGINES[0][0] else run.get("cosine_min")


def fastest_competitor(engines):
    """The fastest engine whose min cosine meets QUALITY_BAR: (key, name, run), or None."""
    names = {key: name for key, name, *_ in ENGINES}
    fit = [(key, run) for key, run in engines.items()
           if run and (engine_cosine(key, run) or 0) >= QUALITY_BAR]
    if not fit:
        return None
    key, run = max(fit, key=lambda kr: kr[1]["snippets_per_second"])
    return key, names[key], run


def engine_table(ours, f32, mkl, engines, ours_cosine):
    """The markdown lines comparing coder-lsp with every engine: throughput, ratio, min cosine."""
    base = ours["snippets_per_second"]
    cos = (f"{ours_cosine['cosine_min']:.5f} (the vectors its index stored, f16)" if ours_cosine else "—")
    rows = [(f"coder-lsp, default ({ours['device']})", ours, cos)]
    if f32:
        rows.append(("coder-lsp, every matmul in f32 (`CODER_LSP_BF16=off`)", f32, "—"))
    if mkl:
        rows.append(("coder-lsp, f32 with MKL for the Linear layers", mkl, "—"))
    for key, name, *_ in ENGINES:
        run = engines.get(key)
        if not run:
            continue
        c = engine_cosine(key, run)
        if key == ENGINES[0][0]:
            text = "1 (the reference)"
        elif c is None:
            text = "—"
        else:
            text = f"{c:.5f}" + ("" if c >= QUALITY_BAR else f" (below {QUALITY_BAR})")
        rows.append((f"{name}, {run['threads']} threads", run, text))
    out = [
        "| engine | snippets/s | tokens/s | coder-lsp ÷ engine | min cosine vs PyTorch f32 |",
        "|---|---|---|---|---|",
    ]
    out += [f"| {name} | {run['snippets_per_second']:.1f} | {run['tokens_per_second']:.0f} | "
            f"{base / run['snippets_per_second']:.2f}× | {cos} |" for name, run, cos in rows]
    best = fastest_competitor(engines)
    out.append("")
    if best:
        key, name, run = best
        line = (f"Fastest engine at min cosine ≥ {QUALITY_BAR} against PyTorch f32: {name}, "
                f"{run['snippets_per_second']:.1f} snippets/s; coder-lsp's default is "
                f"**{base / run['snippets_per_second']:.2f}×** its throughput")
        if f32:
            line += f", its f32 path {f32['snippets_per_second'] / run['snippets_per_second']:.2f}×"
        out.append(line + ".")
    below = [(name, engines[key]) for key, name, *_ in ENGINES if engines.get(key)
             and engine_cosine(key, engines[key]) is not None and engine_cosine(key, engines[key]) < QUALITY_BAR]
    for name, run in below:
        out.append(f"Below the bar, not counted: {name}, {run['snippets_per_second']:.1f} snippets/s "
                   f"(coder-lsp {base / run['snippets_per_second']:.2f}×), min / mean cosine "
                   f"{run['cosine_min']:.4f} / {run['cosine_mean']:.4f}.")
    out.append(f"Each Python engine ran twice on the same {ours['snippets']} texts, in turn with the "
               "others and coder-lsp (best of each), same model, batches of "
               f"{next(iter(r for r in engines.values() if r))['batch_size']} sorted by length as "
               "sentence-transformers forms them; tokenization is in every engine's time.")
    return out


def report(corpus, lines, lsp, noop, size_mb, ours, st, recall, mkl=None, f32=None, engines=None,
           ours_cosine=None):
    ratio = ours["snippets_per_second"] / st["snippets_per_second"] if st else None
    best = fastest_competitor(engines) if engines else None
    rows = [
        (f"Embedding: coder-lsp ({ours['device']})", f"{ours['snippets_per_second']:.1f} snippets/s, "
         f"{ours['tokens_per_second']:.0f} tokens/s, {ours['achieved_gflops']:.0f} GFLOP/s", ""),
    ]
    if f32:
        rows.append(("Embedding: coder-lsp, every matmul in f32 (`CODER_LSP_BF16=off`)",
                     f"{f32['snippets_per_second']:.1f} snippets/s ({f32['achieved_gflops']:.0f} GFLOP/s)"
                     + (f", {f32['snippets_per_second'] / st['snippets_per_second']:.2f}× PyTorch" if st else ""), ""))
    if mkl:
        rows.append(("Embedding: coder-lsp, f32 with MKL for the Linear layers",
                     f"{mkl['snippets_per_second']:.1f} snippets/s ({mkl['achieved_gflops']:.0f} GFLOP/s)", ""))
    if st:
        rows += [
            ("Embedding: sentence-transformers (PyTorch)", f"{st['snippets_per_second']:.1f} snippets/s, "
             f"{st['tokens_per_second']:.0f} tokens/s ({st['threads']} threads, batch {st['batch_size']})", ""),
            ("Embedding: ratio coder-lsp / PyTorch", f"{ratio:.2f}×", f"≥ 1.3× — {verdict(ratio >= 1.3)}"),
        ]
    if best:
        rows.append((f"Embedding: ratio coder-lsp / fastest engine at min cosine ≥ {QUALITY_BAR} ({best[1]})",
                     f"{ours['snippets_per_second'] / best[2]['snippets_per_second']:.2f}×", ""))
    share = ours.get("flop_share")
    rows += [
        ("Padding waste (ours / PyTorch)", f"{ours['padding_waste'] * 100:.1f}%"
         + (f" / {st['padding_waste'] * 100:.1f}%" if st else ""), f"≤ 10% — {verdict(ours['padding_waste'] <= 0.10)}"),
        ("Achieved FLOP/s / matmul peak", f"{ours['achieved_gflops']:.1f} / {ours['matmul']['peak_gflops']:.1f} GFLOP/s"
         f" = {share * 100:.0f}%" + (f"; f32 path {f32['achieved_gflops']:.1f} / {f32_peak(ours['matmul']):.1f} = "
                                     f"{f32['achieved_gflops'] / f32_peak(ours['matmul']) * 100:.0f}%" if f32 else ""),
         f"≥ 50% — {verdict(share >= 0.5)}"),
        (f"Cold index ({lsp['files']} files, {lsp['chunks']} chunks)", f"{lsp['cold_index_s']:.0f} s",
         f"≤ 180 s — {verdict(lsp['cold_index_s'] <= 180)}"),
        ("No-op re-index (CLI)", f"{noop['wall_s']:.2f} s, {noop['embedded']} embedded",
         f"≤ 2 s, 0 — {verdict(noop['wall_s'] <= 2 and noop['embedded'] == 0)}"),
        ("Edit → searchable p50, didSave", f"{lsp['edit_save_ms_p50']:.0f} ms", f"≤ 300 ms — {verdict(lsp['edit_save_ms_p50'] <= 300)}"),
        ("Edit → searchable p50, didChange (300 ms debounce included)", f"{lsp['edit_change_ms_p50']:.0f} ms", ""),
        ("Peak memory (cold index / whole session)", f"{lsp['cold_peak_mb']:.0f} / {lsp['session_peak_mb']:.0f} MB",
         f"≤ 400 MB — {verdict(lsp['session_peak_mb'] <= 400)}"),
        ("Index size on disk", f"{size_mb:.1f} MB", ""),
        ("semanticSearch p50 / p99 (warm)", f"{lsp['search_ms_p50']:.1f} / {lsp['search_ms_p99']:.1f} ms",
         f"≤ 30 / 100 ms — {verdict(lsp['search_ms_p50'] <= 30 and lsp['search_ms_p99'] <= 100)}"),
        ("Hover p50 / p99", f"{lsp['hover_ms_p50']:.1f} / {lsp['hover_ms_p99']:.1f} ms", ""),
        (f"{lsp_latency.CONCURRENCY} concurrent searches", f"{lsp['concurrent_per_s']:.1f} requests/s, "
         f"p50 / p99 {lsp['concurrent_ms_p50']:.0f} / {lsp['concurrent_ms_p99']:.0f} ms", ""),
        (f"HNSW recall@{recall['k']} vs exact ({recall['vectors']} vectors, {recall['queries']} queries)",
         f"{recall['recall']:.4f}; p50 {recall['hnsw_ms_p50']:.2f} ms vs exact {recall['exact_ms_p50']:.2f} ms",
         f"≥ 0.99 — {verdict(recall['recall'] >= 0.99)}"),
    ]
    out = [
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC  ",
        f"Machine: {quality.machine()}  ",
        f"Codebase: {corpus['package']} {corpus['version']} ({corpus['registry']}), {lines} lines of Rust  ",
        f"Model: all-MiniLM-L6-v2 (384-d, max 256 tokens), CPU, {ours['matmul']['threads']} threads  ",
        "",
        "| measure | result | goal |",
        "|---|---|---|",
    ]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    if engines and any(engines.values()):
        out += ["", "Embedding engines (the same texts and model; the ratio is coder-lsp's default "
                "over the engine's throughput):", ""]
        out += engine_table(ours, f32, mkl, engines, ours_cosine)
    out += ["", "Matmul shapes (m × k × n → GFLOP/s), candle: " + ", ".join(
        f"{m}×{k}×{n} → {g:.1f}" for m, k, n, g in ours["matmul"]["shapes"])]
    for bf16 in ours["matmul"].get("bf16", []):
        use = "in use" if bf16["in_use"] else "not in use"
        out += ["", f"Same shapes in bf16 on {bf16['backend']} ({use}): " + ", ".join(
            f"{m}×{k}×{n} → {g:.1f}" for m, k, n, g in bf16["shapes"])]
    if ours["matmul"].get("blas_shapes"):
        out += ["", f"Same shapes with {ours['matmul']['blas']}: " + ", ".join(
            f"{m}×{k}×{n} → {g:.1f}" for m, k, n, g in ours["matmul"]["blas_shapes"])]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--python", help="a Python with sentence-transformers, torch and onnxruntime "
                    "(bench/run makes one)")
    ap.add_argument("--skip-st", action="store_true",
                    help="leave out the Python engines (sentence-transformers, ONNX Runtime)")
    ap.add_argument("--snippets", type=int, default=SNIPPETS,
                    help=f"chunk texts to embed in the comparison (default {SNIPPETS})")
    ap.add_argument("--out", help="also write the markdown report here")
    ap.add_argument("--json", help="write every raw measurement here as JSON")
    ap.add_argument("--skip-lsp", help="reuse the LSP measurements from this JSON file (a previous --json)")
    args = ap.parse_args()
    if args.skip_st:
        args.python = None

    corpus, root, lines = fetch_corpus()
    log(f"{corpus['package']} {corpus['version']}: {lines} lines of Rust in {root}")
    work = tempfile.mkdtemp(prefix="coder-lsp-perf-")
    if args.skip_lsp:
        with open(args.skip_lsp) as f:
            lsp = json.load(f)["lsp"]
    else:
        log("language server session: cold index, latencies, edits (minutes)")
        lsp = lsp_latency.measure(args.binary, root, work)
    index_dir = lsp["index_dir"]

    log("no-op re-index with the CLI")
    t = time.perf_counter()
    noop = run_json([args.binary, "index", "--root", root, "--index-dir", index_dir, "--json"])
    noop["wall_s"] = time.perf_counter() - t
    size_mb = dir_size_mb(index_dir)

    snippets = os.path.join(work, "snippets.jsonl")
    hashes = sample_snippets(index_dir, snippets, args.snippets)
    n = len(hashes)
    mkl = None
    model_dir = os.path.join(os.environ.get("CODER_LSP_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "coder-lsp"),
        "models", "sentence-transformers--all-MiniLM-L6-v2")
    reference = os.path.join(work, "reference-f32.bin")  # PyTorch f32 vectors, raw f32
    # Every engine twice, in turn, best of each: a shared machine's slow minutes then hit all.
    ours_runs = []
    engine_runs = {key: [] for key, *_ in ENGINES} if args.python else {}
    for attempt in range(2):
        log(f"embedding {n} snippets with coder-lsp ({attempt + 1}/2)")
        ours_runs.append(run_json([args.binary, "bench", "embed", "--snippets", snippets]
                                  + (["--no-matmul"] if attempt else [])))
        for key, name, script, flags in ENGINES:
            if key not in engine_runs:
                continue  # failed before
            cmd = [args.python, os.path.join(HERE, script), model_dir, snippets, *flags]
            if script == "embed_onnx.py":
                cmd += ["--cache-dir", os.path.join(work, "onnx")]  # exported once, untimed
            if os.path.exists(reference):
                cmd += ["--reference", reference]
            elif key == ENGINES[0][0]:
                cmd += ["--save-vectors", reference]
            log(f"embedding {n} snippets with {name} ({attempt + 1}/2)")
            try:
                engine_runs[key].append(run_json(cmd))
            except (subprocess.CalledProcessError, ValueError, IndexError) as e:
                err = getattr(e, "stderr", "") or str(e)
                log(f"{name} failed, left out: {err.strip().splitlines()[-1] if err.strip() else e}")
                del engine_runs[key]
    ours = dict(max(ours_runs, key=lambda r: r["snippets_per_second"]))
    ours["matmul"] = ours_runs[0]["matmul"]
    ours["flop_share"] = ours["achieved_gflops"] / ours["matmul"]["peak_gflops"]
    engines = {key: max(runs, key=lambda r: r["snippets_per_second"])
               for key, runs in engine_runs.items() if runs}
    shutil.rmtree(os.path.join(work, "onnx"), ignore_errors=True)  # 200 MB of exported models
    st = engines.get(ENGINES[0][0])
    st_runs = engine_runs.get(ENGINES[0][0], [])
    # coder-lsp's own vectors: those its index stored for the same texts (made by the cold index).
    ours_cosine = cosine_stats(index_vectors(index_dir, hashes), reference) if os.path.exists(reference) else None
    log("embedding again with every matmul in f32")
    os.environ["CODER_LSP_BF16"] = "off"
    f32 = run_json([args.binary, "bench", "embed", "--snippets", snippets, "--no-matmul"])
    if args.python:
        # The venv's MKL (`pip install mkl`), through coder-lsp's optional BLAS path.
        lib = os.path.join(os.path.dirname(os.path.dirname(args.python)), "lib", "libmkl_rt.so.2")
        if os.path.exists(lib):
            log("embedding again with MKL for the Linear layers")
            os.environ["CODER_LSP_BLAS"] = lib
            mkl = run_json([args.binary, "bench", "embed", "--snippets", snippets, "--no-matmul"])
            del os.environ["CODER_LSP_BLAS"]
    del os.environ["CODER_LSP_BF16"]
    log("HNSW recall")
    recall = run_json([args.binary, "bench", "recall", "--index-dir", index_dir])

    text = report(corpus, lines, lsp, noop, size_mb, ours, st, recall, mkl, f32, engines, ours_cosine)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"lsp": lsp, "noop": noop, "index_mb": size_mb, "ours": ours, "st": st,
                       "mkl": mkl, "f32": f32, "ours_runs": ours_runs, "st_runs": st_runs,
                       "engines": engines, "engine_runs": engine_runs, "ours_cosine": ours_cosine,
                       "recall": recall}, f, indent=1)


if __name__ == "__main__":
    main()
