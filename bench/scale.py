#!/usr/bin/env python3
"""Measures what grows with the size of a workspace, on synthetic workspaces (no timing is asserted).

Usage: bench/scale.py BINARY [--sizes FILESxFUNCTIONS,...] [--work DIR] [--reuse] [--queries N] [--json]

For each size, `BINARY bench scale` writes a workspace of code-like Rust and Python files (one
chunk per function) and builds its index with vectors made from each chunk's hash instead of the
model, so 200k chunks take minutes. Then the real binary is measured on it:
- no-op re-index: `index` with nothing changed (open, walk and stat every file, save nothing);
- edit → searchable from the command line: one file gains a function, `index` re-cuts and embeds
  it, and `search --no-update` finds it (two processes, so each opens the index);
- hybrid `search` p50/p99 over N queries answered by one process (`--stdin`), and its start
  (opening the index: the vector file is loaded);
- through the language server (`serve`, as editors run it): time to ready on the built index,
  `workspace/symbol` p50/p99 over N name patterns, `semanticSearch` p50/p99, didSave → searchable;
- peak resident memory of each process (getrusage of the child, VmHWM of the server) and the index
  size on disk.
Prints a markdown table, or with --json a list of one object per size.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lsp_latency import pct, search, start_indexed  # noqa: E402

# The generator's words (server/src/bench/scale.rs), for queries that find something.
VERBS = ["parse", "encode", "decode", "load", "store", "fetch", "resolve", "validate", "merge",
         "split", "render", "compute", "schedule", "retry", "flush", "compress", "hash", "index"]
ADJECTIVES = ["cached", "pending", "remote", "local", "stale", "active", "nested", "partial",
              "signed", "compressed", "raw", "default"]
NOUNS = ["token", "buffer", "request", "response", "session", "record", "header", "payload",
         "frame", "segment", "config", "manifest", "schema", "query", "cursor", "snapshot"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
# Edits are new to the index on every run (vectors are cached by text, across runs with --reuse).
NONCE = os.urandom(3).hex()


def queries(n):
    """Plain-language questions, a few with words the workspace does not use."""
    out = []
    for i in range(n):
        v, a, o = VERBS[i % len(VERBS)], ADJECTIVES[(i * 5) % len(ADJECTIVES)], NOUNS[(i * 7) % len(NOUNS)]
        if i % 5 == 4:
            out.append(f"where do we {v} a {o} that was not {a} before")
        else:
            out.append(f"{v} the {a} {o} before it is written to disk")
    return out


def name_patterns(n):
    """What a user types into a symbol picker: prefixes, whole words, scattered abbreviations."""
    out = []
    for i in range(n):
        v, a, o = VERBS[i % len(VERBS)], ADJECTIVES[(i * 5) % len(ADJECTIVES)], NOUNS[(i * 7) % len(NOUNS)]
        out.append([f"{v}_{a}", o, f"{v[0]}{a[0]}{o[0]}", f"{v}_{a}_{o}", v[:3]][i % 5])
    return out


def run(cmd, stdin=None):
    """Runs a command to the end; returns (seconds, peak RSS in MB, stdout)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    out, err = p.communicate(stdin.encode() if stdin else None)
    seconds = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{err.decode()[-2000:]}")
    return seconds, peak_of(p.pid), out.decode()


_peaks = {}


def peak_of(pid):
    return _peaks.get(pid, float("nan"))


# subprocess reaps its children with waitpid; wrap it with wait4 to keep each child's peak memory.
_original_waitpid = os.waitpid


def _waitpid_with_rusage(pid, options):
    got, status, usage = os.wait4(pid, options)
    if got:
        _peaks[got] = usage.ru_maxrss / 1024
    return got, status


os.waitpid = _waitpid_with_rusage


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def stdin_search(binary, root, index_dir, qs):
    """One `search --stdin` process: (seconds to its first answer minus that query, per-query ms, peak MB)."""
    cmd = [binary, "search", "--root", root, "--index-dir", index_dir, "--stdin", "--json", "--no-update"]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env=ENV, text=True, bufsize=1)
    ms, first = [], None
    for q in qs:
        t = time.perf_counter()
        p.stdin.write(q + "\n")
        p.stdin.flush()
        line = p.stdout.readline()
        if not line:
            raise SystemExit("search --stdin ended early")
        if first is None:
            first = time.perf_counter() - t0
        ms.append((time.perf_counter() - t) * 1000)
    p.stdin.close()
    p.wait()
    # The first query includes opening the index and loading the model; later ones are warm.
    return first, ms[1:], peak_of(p.pid)


def edit_cli(binary, root, index_dir, n):
    """A function added to one file, until `search` finds it: `index` then `search --no-update`."""
    rel = next(os.path.join(d, f) for d, _, files in sorted(os.walk(root)) for f in sorted(files)
               if f.endswith(".rs"))
    original = open(rel, encoding="utf-8").read()
    name = f"zebra_quartz_checksum_{NONCE}_{n}"
    with open(rel, "a", encoding="utf-8") as f:
        f.write(f"\n/// Computes the zebra quartz checksum {NONCE} number {n} of a frame.\n"
                f"pub fn {name}(data: &[u8]) -> u32 {{ data.len() as u32 * {n + 3} }}\n")
    index_s, index_peak, out = run([binary, "index", "--root", root, "--index-dir", index_dir, "--json"])
    stats = json.loads(out)
    assert stats["changed"] == 1 and stats["embedded"] >= 1, stats
    search_s, search_peak, out = run([binary, "search", "--root", root, "--index-dir", index_dir,
                                      "--json", "--no-update", "-k", "5",
                                      f"zebra quartz checksum {NONCE} number {n}"])
    found = any(r["name"] == name for r in json.loads(out)["results"])
    assert found, out
    with open(rel, "w", encoding="utf-8") as f:
        f.write(original)
    run([binary, "index", "--root", root, "--index-dir", index_dir])
    return index_s, search_s, max(index_peak, search_peak)


def lsp_session(binary, root, index_base, qs, patterns):
    log = open(os.path.join(index_base, "..", "server.log"), "w")
    uri = lambda p: "file://" + p
    client, ready_s = start_indexed(binary, root, index_base, log, poll=0.1)
    symbol_ms, symbol_hits = [], 0
    for p in patterns:
        t = time.perf_counter()
        answer = client.request("workspace/symbol", {"query": p})
        symbol_ms.append((time.perf_counter() - t) * 1000)
        symbol_hits += len(answer.get("result") or [])
    search_ms = []
    for q in qs:
        t = time.perf_counter()
        search(client, q)
        search_ms.append((time.perf_counter() - t) * 1000)
    # didSave with the text, as lsp_latency.py does it (no typing debounce).
    path = next(os.path.join(d, f) for d, _, files in sorted(os.walk(root)) for f in sorted(files)
                if f.endswith(".rs"))
    text = open(path, encoding="utf-8").read()
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri(path), "languageId": "rust",
                                                            "version": 1, "text": text}})
    save_ms = []
    for n in range(5):
        name = f"zebra_quartz_saved_{NONCE}_{n}"
        new = text + (f"\n/// Computes the zebra quartz saved checksum {NONCE} number {n}.\n"
                      f"pub fn {name}(data: &[u8]) -> u32 {{ data.len() as u32 * {n + 3} }}\n")
        t = time.perf_counter()
        client.notify("textDocument/didChange", {"textDocument": {"uri": uri(path), "version": n + 2},
                                                 "contentChanges": [{"text": new}]})
        client.notify("textDocument/didSave", {"textDocument": {"uri": uri(path)}, "text": new})
        while not any(r["name"] == name for r in search(client, f"zebra quartz saved checksum {NONCE} number {n}", 3)):
            time.sleep(0.005)
        save_ms.append((time.perf_counter() - t) * 1000)
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri(path), "version": 99},
                                             "contentChanges": [{"text": text}]})
    client.notify("textDocument/didSave", {"textDocument": {"uri": uri(path)}, "text": text})
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri(path)}})
    while any(r["name"].startswith("zebra_quartz_saved") for r in search(client, "zebra quartz saved checksum", 5)):
        time.sleep(0.05)
    peak = client.peak_memory_mb()
    client.request("shutdown", None)
    client.notify("exit", None)
    client.proc.wait(120)
    return {
        "lsp_ready_s": ready_s,
        "symbol_ms_p50": pct(symbol_ms, 50), "symbol_ms_p99": pct(symbol_ms, 99),
        "symbol_results": symbol_hits / len(patterns),
        "lsp_search_ms_p50": pct(search_ms, 50), "lsp_search_ms_p99": pct(search_ms, 99),
        "lsp_save_ms_p50": statistics.median(save_ms), "lsp_save_ms_max": max(save_ms),
        "lsp_peak_mb": peak,
    }


def measure(binary, work, files, functions, n_queries, reuse=False):
    dir_ = os.path.join(work, f"{files}x{functions}")
    report = os.path.join(dir_, "build.json")
    if reuse and os.path.exists(report):
        # Measure another build of coder-lsp on the workspace and index built before.
        built = json.load(open(report))
        build_s, build_peak = built["build_s"], built["build_peak_mb"]
    else:
        build_s, build_peak, out = run([binary, "bench", "scale", "--dir", dir_, "--files", str(files),
                                        "--functions-per-file", str(functions)])
        built = {**json.loads(out), "build_s": build_s, "build_peak_mb": build_peak}
        json.dump(built, open(report, "w"))
    root, index_dir, index_base = built["root"], built["index_dir"], built["index_base"]
    r = {"files": built["files"], "chunks": built["chunks"], "build_s": build_s,
         "build_cut_s": built["cut_seconds"], "build_vector_s": built["vector_seconds"],
         "build_peak_mb": build_peak}

    # One run first: it warms the page cache like the runs after it, and catches up with whatever
    # a previous run's language server left (an index reused with --reuse).
    run([binary, "index", "--root", root, "--index-dir", index_dir])
    noop = [run([binary, "index", "--root", root, "--index-dir", index_dir, "--json"]) for _ in range(3)]
    for _, _, out in noop:
        assert json.loads(out)["changed"] == 0, out
    r["noop_s"] = statistics.median(s for s, _, _ in noop)
    r["noop_peak_mb"] = max(p for _, p, _ in noop)

    edits = [edit_cli(binary, root, index_dir, n) for n in range(3)]
    r["edit_index_s"] = statistics.median(e[0] for e in edits)
    r["edit_search_s"] = statistics.median(e[1] for e in edits)
    r["edit_peak_mb"] = max(e[2] for e in edits)

    qs = queries(n_queries + 1)
    first, ms, peak = stdin_search(binary, root, index_dir, qs)
    r.update({"search_first_s": first, "search_ms_p50": pct(ms, 50), "search_ms_p99": pct(ms, 99),
              "search_peak_mb": peak})

    r.update(lsp_session(binary, root, index_base, qs[1:], name_patterns(n_queries)))
    r["index_bytes"] = dir_bytes(index_dir)
    r["source_bytes"] = built["source_bytes"]
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--sizes", default="2000x10,10000x10,20000x10",
                    help="FILESxFUNCTIONS per size, comma-separated (default: 20k, 100k, 200k chunks)")
    ap.add_argument("--work", help="where the workspaces and indexes go (default: a fresh temporary directory)")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--reuse", action="store_true",
                    help="measure on the workspaces and indexes a previous run left in --work")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="coder-lsp-scale-")
    os.makedirs(work, exist_ok=True)
    results = []
    for size in args.sizes.split(","):
        files, functions = (int(x) for x in size.lower().split("x"))
        print(f"scale: {files} files x {functions} functions in {work}", file=sys.stderr)
        r = measure(os.path.abspath(args.binary), os.path.abspath(work), files, functions, args.queries,
                    args.reuse)
        print(json.dumps(r), file=sys.stderr)
        results.append(r)
    if args.json:
        print(json.dumps(results))
        return
    cols = [("chunks", lambda r: f"{r['chunks']:,}"),
            ("files", lambda r: f"{r['files']:,}"),
            ("build (generated vectors)", lambda r: f"{r['build_s']:.0f} s"),
            ("no-op `index`", lambda r: f"{r['noop_s']:.2f} s"),
            ("edit → searchable (`index` + `search`)",
             lambda r: f"{r['edit_index_s']:.2f} + {r['edit_search_s']:.2f} s"),
            ("didSave → searchable (server)", lambda r: f"{r['lsp_save_ms_p50']:.0f} ms"),
            ("`search` p50 / p99", lambda r: f"{r['search_ms_p50']:.0f} / {r['search_ms_p99']:.0f} ms"),
            ("`workspace/symbol` p50 / p99", lambda r: f"{r['symbol_ms_p50']:.0f} / {r['symbol_ms_p99']:.0f} ms"),
            ("server ready", lambda r: f"{r['lsp_ready_s']:.1f} s"),
            ("peak memory: `index` / `search` / server",
             lambda r: f"{r['noop_peak_mb']:.0f} / {r['search_peak_mb']:.0f} / {r['lsp_peak_mb']:.0f} MB"),
            ("index on disk", lambda r: f"{r['index_bytes'] / 1e6:.0f} MB")]
    print("| measure | " + " | ".join(f"{r['chunks']:,} chunks" for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for title, fmt in cols[1:]:
        print(f"| {title} | " + " | ".join(fmt(r) for r in results) + " |")


if __name__ == "__main__":
    main()
