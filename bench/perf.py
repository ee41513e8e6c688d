#!/usr/bin/env python3
"""coder-lsp's performance benchmark: one run, one machine, ratios taken side by side.

Usage: bench/perf.py --binary PATH [--python VENV_PYTHON] [--out bench/RESULTS.md] [--skip-st]

1. Fetches the pinned codebase of perf-corpus.json from its registry (sha256-checked).
2. Language server session on it (bench/lsp_latency.py): cold index time and peak memory,
   semanticSearch/hover latency, 8 concurrent searches, edit → searchable.
3. No-op re-index with the CLI on the same index: time and embeddings computed (should be 0).
4. Index size on disk.
5. Embedding: 2,000 chunk texts from that index (what indexing really embeds), through
   `coder-lsp bench embed` (throughput, padding waste, FLOP share of the matmul peak measured in
   the same process) and through sentence-transformers on PyTorch (bench/embed_st.py), same
   model, same max length, each twice in turn (best of each); the ratio of their throughputs.
   Once more with every matmul in f32 (`CODER_LSP_BF16=off`), for CPUs without bf16 matmuls.
6. HNSW recall@10 against exact search over the index's vectors (`coder-lsp bench recall`).
Writes a markdown report with the goals of issue 9 beside each figure. Nothing is asserted.
"""
import argparse
import datetime
import json
import os
import sqlite3
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


def sample_snippets(index_dir, path, n=SNIPPETS):
    """n chunk texts spread evenly over the store (ordered by id, so the sample is stable)."""
    con = sqlite3.connect(f"file:{os.path.join(index_dir, 'store.sqlite')}?mode=ro", uri=True)
    texts = [row[0] for row in con.execute("SELECT text FROM chunks ORDER BY id")]
    con.close()
    step = max(1, len(texts) // n)
    chosen = texts[::step][:n]
    with open(path, "w", encoding="utf-8") as f:
        for t in chosen:
            f.write(json.dumps(t) + "\n")
    return len(chosen)


def verdict(ok):
    return "met" if ok else "**missed**"


def f32_peak(matmul):
    """The best f32 matmul of the microbenchmark (candle or the system BLAS), bf16 left out."""
    return max(g for *_, g in matmul["shapes"] + matmul.get("blas_shapes", []))


def report(corpus, lines, lsp, noop, size_mb, ours, st, recall, mkl=None, f32=None):
    ratio = ours["snippets_per_second"] / st["snippets_per_second"] if st else None
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
    ap.add_argument("--python", help="a Python with sentence-transformers and torch (bench/run makes one)")
    ap.add_argument("--out", help="also write the markdown report here")
    ap.add_argument("--json", help="write every raw measurement here as JSON")
    ap.add_argument("--skip-lsp", help="reuse the LSP measurements from this JSON file (a previous --json)")
    args = ap.parse_args()

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
    n = sample_snippets(index_dir, snippets)
    # Both sides twice, alternating, best of each: a shared machine's slow minutes then hit both.
    st = None
    mkl = None
    model_dir = os.path.join(os.environ.get("CODER_LSP_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "coder-lsp"),
        "models", "sentence-transformers--all-MiniLM-L6-v2")
    ours_runs, st_runs = [], []
    for attempt in range(2):
        log(f"embedding {n} snippets with coder-lsp ({attempt + 1}/2)")
        ours_runs.append(run_json([args.binary, "bench", "embed", "--snippets", snippets]
                                  + (["--no-matmul"] if attempt else [])))
        if args.python:
            log(f"embedding {n} snippets with sentence-transformers ({attempt + 1}/2)")
            st_runs.append(run_json([args.python, os.path.join(HERE, "embed_st.py"), model_dir, snippets]))
    ours = dict(max(ours_runs, key=lambda r: r["snippets_per_second"]))
    ours["matmul"] = ours_runs[0]["matmul"]
    ours["flop_share"] = ours["achieved_gflops"] / ours["matmul"]["peak_gflops"]
    if st_runs:
        st = max(st_runs, key=lambda r: r["snippets_per_second"])
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

    text = report(corpus, lines, lsp, noop, size_mb, ours, st, recall, mkl, f32)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"lsp": lsp, "noop": noop, "index_mb": size_mb, "ours": ours, "st": st,
                       "mkl": mkl, "f32": f32, "ours_runs": ours_runs, "st_runs": st_runs,
                       "recall": recall}, f, indent=1)


if __name__ == "__main__":
    main()
