#!/usr/bin/env python3
"""Retrieval-quality benchmark for coder-lsp: fetch real codebases, check the queries, score rankings.

Subcommands (bench/quality/run calls them in order):
  fetch   download each codebase of corpora.json at its pinned version from its registry
          (crates.io tarball, `pip download` sdist or pinned-platform wheel, `npm pack`, Debian source via `apt-get source`), verify the sha256, unpack under corpora/
  check   verify every relevant target of queries/*.json: the file exists and the line names the symbol
  run     index each codebase with the real binary, search every query in each mode
          (dense, lexical, hybrid) plus a grep-like floor, and print a markdown table of
          nDCG@10, MRR@10 and Recall@10 per codebase and overall
  languages
          a language's symbols against the windows fallback (issue 25): build coder-lsp with
          every language and once without the language's `lang-*` feature (its files become
          40-line windows; for an opt-in language such as Haskell, the default build and one
          with its feature), run both on that language's codebases and print the difference

Only the standard library is used. Nothing here is part of the CI test run except the unit tests
of the scorer (test_quality.py).
"""
import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPORA_DIR = os.path.join(HERE, "corpora")
MODES = ["dense", "lexical", "hybrid"]
CUTOFF = 10
# What a query asks for: what a function does, a concept a type or module stands for, a name as
# written, or a thing described as a noun phrase ("a cache that forgets …", any kind of symbol).
QUERY_TYPES = ("behaviour", "concept", "identifier", "description")


# ---------------------------------------------------------------- metrics


def dcg(gains):
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at(ranked_targets, n_relevant, k=CUTOFF):
    """nDCG@k with binary gains. `ranked_targets[i]` is the index of the relevant target hit i
    matches, or None; a target counts once (its best-ranked hit), later duplicates gain nothing."""
    seen = set()
    gains = []
    for t in ranked_targets[:k]:
        if t is not None and t not in seen:
            seen.add(t)
            gains.append(1.0)
        else:
            gains.append(0.0)
    ideal = dcg([1.0] * min(n_relevant, k))
    return dcg(gains) / ideal if ideal > 0 else 0.0


def mrr_at(ranked_targets, k=CUTOFF):
    """Reciprocal rank of the first relevant hit within the first k, else 0."""
    for i, t in enumerate(ranked_targets[:k]):
        if t is not None:
            return 1.0 / (i + 1)
    return 0.0


def recall_at(ranked_targets, n_relevant, k=CUTOFF):
    """Share of the relevant targets found within the first k."""
    found = {t for t in ranked_targets[:k] if t is not None}
    return len(found) / n_relevant if n_relevant else 0.0


def match_hits(hits, extents):
    """For each hit ({path, name, start_line, end_line}), the index of the target extent
    ({path, name, start, end}) it falls in, or None. A hit matches when path and name agree and its
    first line lies within the target symbol (a later window of a long symbol still counts). A
    target in a file indexed as text windows (`windows` extent) is matched by the window that holds
    its line."""
    out = []
    for hit in hits:
        found = None
        for i, ext in enumerate(extents):
            if ext.get("windows"):
                matched = (hit["path"] == ext["path"]
                           and hit["start_line"] <= ext["start"] <= hit.get("end_line", hit["start_line"]))
            else:
                matched = (hit["path"] == ext["path"] and hit["name"] == ext["name"]
                           and ext["start"] <= hit["start_line"] <= ext["end"])
            if matched:
                found = i
                break
        out.append(found)
    return out


def score_query(hits, extents, k=CUTOFF):
    ranked = match_hits(hits, extents)
    n = len(extents)
    return {
        "ndcg": ndcg_at(ranked, n, k),
        "mrr": mrr_at(ranked, k),
        "recall": recall_at(ranked, n, k),
    }


def mean(rows, key):
    return sum(r[key] for r in rows) / len(rows) if rows else 0.0


# ---------------------------------------------------------------- corpora


def load_corpora():
    with open(os.path.join(HERE, "corpora.json")) as f:
        return json.load(f)


def load_queries(name):
    with open(os.path.join(HERE, "queries", f"{name}.json")) as f:
        return json.load(f)


def corpus_root(corpus):
    return os.path.join(CORPORA_DIR, corpus["name"], corpus["root"])


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def download(corpus, into):
    """The registry's archive of the pinned version, through the registry's own client where
    there is one."""
    reg = corpus["registry"]
    pkg, ver = corpus["package"], corpus["version"]
    if reg == "debian":
        # `apt-get source` with the semble benchmark's private apt configuration (deb-src lines).
        sys.path.insert(0, os.path.join(HERE, "..", "semble"))
        import semble
        return semble.download(corpus, into)
    if reg == "crates.io":
        path = os.path.join(into, f"{pkg}-{ver}.crate")
        urllib.request.urlretrieve(corpus["url"], path)
        return path
    if reg == "pypi" and "platform" in corpus:
        # A wheel of one platform (ziglang's carries the Zig standard library's source): the
        # platform is pinned so that every machine gets the same file and sha256.
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary", ":all:", "--platform", corpus["platform"],
             "--disable-pip-version-check", "-d", into, f"{pkg}=={ver}"],
            check=True,
        )
    elif reg == "pypi":
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", "--disable-pip-version-check", "-d", into, f"{pkg}=={ver}"],
            check=True,
        )
    elif reg == "npm":
        subprocess.run(["npm", "pack", "--silent", f"{pkg}@{ver}"], cwd=into, check=True,
                       stdout=subprocess.DEVNULL)
    else:
        raise SystemExit(f"unknown registry {reg!r} in corpora.json")
    archives = [f for f in os.listdir(into) if f.endswith((".tar.gz", ".tgz", ".whl"))]
    if len(archives) != 1:
        raise SystemExit(f"expected one archive from {reg} for {pkg} {ver}, got {archives}")
    return os.path.join(into, archives[0])


def fetch(corpora):
    for corpus in corpora:
        dest = os.path.join(CORPORA_DIR, corpus["name"])
        stamp = os.path.join(dest, ".fetched")
        if os.path.exists(stamp) and open(stamp).read().strip() == corpus["sha256"]:
            print(f"{corpus['name']}: present", file=sys.stderr)
            continue
        shutil.rmtree(dest, ignore_errors=True)
        with tempfile.TemporaryDirectory() as tmp:
            archive = download(corpus, tmp)
            got = sha256_of(archive)
            if got != corpus["sha256"]:
                raise SystemExit(
                    f"{corpus['name']}: sha256 {got} differs from the pinned {corpus['sha256']}")
            os.makedirs(dest)
            if archive.endswith(".whl"):
                # A wheel is a zip that may hold a whole toolchain: only the root is unpacked.
                with zipfile.ZipFile(archive) as wheel:
                    prefix = corpus["root"].rstrip("/") + "/"
                    wheel.extractall(dest, [n for n in wheel.namelist() if n.startswith(prefix)])
            else:
                with tarfile.open(archive) as tar:
                    tar.extractall(dest, filter="data")
        with open(stamp, "w") as f:
            f.write(corpus["sha256"])
        print(f"{corpus['name']}: {corpus['package']} {corpus['version']} from {corpus['registry']}",
              file=sys.stderr)


# ---------------------------------------------------------------- checking the queries


def check(corpora):
    """Every target names an existing file and a line that contains the symbol's name; every
    codebase has at least 50 queries (or its `min_queries`: the codebases that measure one
    language's symbols against its windows have a dozen). Returns the list of problems."""
    problems = []
    for corpus in corpora:
        root = corpus_root(corpus)
        queries = load_queries(corpus["name"])
        least = corpus.get("min_queries", 50)
        if len(queries) < least:
            problems.append(f"{corpus['name']}: {len(queries)} queries, want at least {least}")
        seen = set()
        for q in queries:
            text = q.get("query", "").strip()
            if not text:
                problems.append(f"{corpus['name']}: a query without text")
            if text in seen:
                problems.append(f"{corpus['name']}: duplicate query {text!r}")
            seen.add(text)
            if q.get("type") not in QUERY_TYPES:
                problems.append(f"{corpus['name']}: {text!r}: type must be one of {', '.join(QUERY_TYPES)}")
            if not q.get("relevant"):
                problems.append(f"{corpus['name']}: {text!r} lists no relevant symbol")
            for t in q.get("relevant", []):
                path = os.path.join(root, t["path"])
                if not os.path.isfile(path):
                    problems.append(f"{corpus['name']}: {text!r}: no file {t['path']}")
                    continue
                with open(path, encoding="utf-8") as f:
                    lines = f.read().split("\n")
                line = t["line"]
                if not (1 <= line <= len(lines)) or not re.search(
                        rf"(?<![\w$]){re.escape(t['name'])}(?![\w$])", lines[line - 1]):
                    problems.append(
                        f"{corpus['name']}: {text!r}: {t['path']}:{line} does not name {t['name']}")
    return problems


# ---------------------------------------------------------------- running


def missed(target):
    """An extent no hit can match: the binary did not index that target."""
    return {"path": target["path"], "name": target["name"], "start": 0, "end": -1}


def target_extents(store_path, relevant):
    """Each target's symbol as indexed: the chunk whose lines hold the target line (the tightest),
    extended over the other windows of the same symbol. A target in a file indexed as text windows
    (a binary without that language's grammar: the windows fallback, measured against symbols) is
    its line. A target in a file the binary skipped, or that its grammar does not make a symbol,
    matches nothing (a warning says so): the binary missed it."""
    db = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    out = []
    for t in relevant:
        language = db.execute("SELECT language FROM files WHERE path = ?", (t["path"],)).fetchone()
        if language is None:
            # The binary skipped the whole file (minified by its long lines, too large): no hit
            # can match, and the query counts what it lost. `check` has seen the file exists.
            print(f"target {t['path']}:{t['line']} {t['name']}: the file is not indexed; "
                  "the target counts as missed", file=sys.stderr)
            out.append(missed(t))
            continue
        kinds = {k for (k,) in db.execute(
            "SELECT DISTINCT c.kind FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path = ?",
            (t["path"],))}
        # A build without the language's grammar (`--no-default-features`, one `lang-*` left out)
        # keeps the language's name but cuts the file into text windows (`section` chunks).
        if language == ("text",) or (kinds and kinds <= {"section"}):
            out.append({"path": t["path"], "name": t["name"], "start": t["line"], "end": t["line"],
                        "windows": True})
            continue
        rows = db.execute(
            "SELECT c.start_line, c.end_line, c.signature, coalesce(c.container, '') FROM chunks c"
            " JOIN files f ON f.id = c.file_id WHERE f.path = ? AND c.name = ?"
            " ORDER BY c.start_line",
            (t["path"], t["name"]),
        ).fetchall()
        holding = [r for r in rows if r[0] <= t["line"] <= r[1]]
        if not holding:
            # `check` has seen the name on that line: the binary's grammar does not make it a
            # symbol (a definition idiom it misses), and no hit can match it.
            print(f"target {t['path']}:{t['line']} {t['name']} is not an indexed symbol; "
                  "it counts as missed", file=sys.stderr)
            out.append(missed(t))
            continue
        first = min(holding, key=lambda r: r[1] - r[0])
        start, end = first[0], first[1]
        for r in rows:
            if r[0] > first[0] and r[2:] == first[2:] and r[0] <= end + 3:
                end = max(end, r[1])
        # The windows before it too: a long doc can fill a symbol's first window, so its
        # declaration line falls in the second, while a hit names the symbol's first line.
        for r in reversed(rows):
            if r[0] < start and r[2:] == first[2:] and r[1] >= start - 3:
                start = r[0]
        out.append({"path": t["path"], "name": t["name"], "start": start, "end": end})
    db.close()
    return out


def grep_floor(store_path, root, query, k=CUTOFF):
    """A plain grep-like floor: every symbol's source lines are searched case-insensitively for
    each query word of four letters or more; symbols are ranked by how many distinct words they
    contain, then by total occurrences, then by shortness."""
    words = sorted({w for w in re.findall(r"[a-z0-9_]+", query.lower()) if len(w) >= 4})
    if not words:
        return []
    db = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    rows = db.execute(
        "SELECT f.path, c.name, c.start_line, c.end_line FROM chunks c JOIN files f ON f.id = c.file_id"
    ).fetchall()
    db.close()
    files = {}
    scored = []
    for path, name, start, end in rows:
        if path not in files:
            with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
                files[path] = f.read().split("\n")
        text = "\n".join(files[path][start - 1:end]).lower()
        counts = [text.count(w) for w in words]
        distinct = sum(1 for c in counts if c)
        if distinct:
            scored.append(((-distinct, -sum(counts), end - start), path, name, start, end))
    scored.sort()
    return [{"path": p, "name": n, "start_line": s, "end_line": e} for _, p, n, s, e in scored[:k]]


def run_binary(binary, args, stdin=None):
    proc = subprocess.run([binary, *args], input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{binary} {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def evaluate(binary, corpus, model, index_root, modes, ranking_args, adapter=None):
    name = corpus["name"]
    root = corpus_root(corpus)
    queries = load_queries(name)
    index_dir = os.path.join(index_root, name)
    common = ["--root", root, "--index-dir", index_dir]
    if model:
        common += ["--model", model]
    if adapter:
        common += ["--adapter", adapter]
    started = time.time()
    run_binary(binary, ["index", *common, "--json"])
    seconds = time.time() - started
    store = os.path.join(index_dir, "store.sqlite")
    extents = [target_extents(store, q["relevant"]) for q in queries]
    results = {}
    for mode in modes:
        if mode == "grep":
            hits = [grep_floor(store, root, q["query"]) for q in queries]
        else:
            args = ["search", *common, "--no-update", "--json", "--stdin", "-k", str(CUTOFF),
                    "--mode", mode]
            args += ranking_args
            out = run_binary(binary, args, stdin="\n".join(q["query"] for q in queries) + "\n")
            answers = [json.loads(line) for line in out.splitlines() if line.strip()]
            if len(answers) != len(queries):
                raise SystemExit(f"{name}/{mode}: {len(answers)} answers for {len(queries)} queries")
            hits = [a["results"] for a in answers]
        results[mode] = [
            dict(score_query(h, e), type=q["type"], query=q["query"])
            for h, e, q in zip(hits, extents, queries)
        ]
    return results, seconds


def fine_tune(binary, corpus, model, index_root, extra_args):
    """Runs `coder-lsp fine-tune` on the codebase (the adapter is installed beside its index when
    it beats the base model on held-out pairs mined from the codebase) and returns the outcome."""
    common = ["--root", corpus_root(corpus), "--index-dir", os.path.join(index_root, corpus["name"])]
    if model:
        common += ["--model", model]
    started = time.time()
    out = run_binary(binary, ["fine-tune", *common, "--json", *extra_args])
    outcome = json.loads(out.strip().splitlines()[-1])
    outcome["seconds"] = time.time() - started
    return outcome


def comparison(base, tuned, outcomes, modes):
    """Markdown: nDCG@10 and MRR@10 of the base model and the fine-tuned one, per codebase and
    mode, with each fine-tune's own held-out figures."""
    lines = ["| codebase | ranking | nDCG@10 base | nDCG@10 fine-tuned | Δ | MRR@10 base | MRR@10 fine-tuned |",
             "|---|---|---:|---:|---:|---:|---:|"]
    pooled = {m: ([], []) for m in modes}
    for name in base:
        for m in modes:
            b, t = base[name][0][m], tuned[name][0][m]
            pooled[m][0].extend(b)
            pooled[m][1].extend(t)
            delta = mean(t, "ndcg") - mean(b, "ndcg")
            lines.append(f"| {name} | {m} | {mean(b, 'ndcg'):.3f} | {mean(t, 'ndcg'):.3f} | {delta:+.3f} | "
                         f"{mean(b, 'mrr'):.3f} | {mean(t, 'mrr'):.3f} |")
    for m in modes:
        b, t = pooled[m]
        delta = mean(t, "ndcg") - mean(b, "ndcg")
        lines.append(f"| **all** | {m} | **{mean(b, 'ndcg'):.3f}** | **{mean(t, 'ndcg'):.3f}** | **{delta:+.3f}** | "
                     f"{mean(b, 'mrr'):.3f} | {mean(t, 'mrr'):.3f} |")
    lines += ["", "Fine-tuning runs (held-out pairs mined from each codebase, split by file):", "",
              "| codebase | training pairs | held-out queries | held-out nDCG@10 before → after | "
              "served-mode questions | served nDCG@10 before → after | adapter | seconds |",
              "|---|---:|---:|---|---:|---|---|---:|"]
    reasons = []
    for name, o in outcomes.items():
        report = o.get("report") or {}
        pairs = sum((report.get("train_pairs") or {}).values())
        served = (f"{o['served_before']:.3f} → {o['served_after']:.3f}"
                  if o.get("served_before") is not None and o.get("served_after") is not None else "-")
        lines.append(f"| {name} | {pairs} | {o['heldout_queries']} | {o['ndcg_before']:.3f} → {o['ndcg_after']:.3f} | "
                     f"{o.get('served_queries', 0)} | {served} | "
                     f"{'installed' if o['accepted'] else 'rejected (base model kept)'} | {o['seconds']:.0f} |")
        if o.get("message"):
            reasons.append(f"- {name}: {o['message']}")
    if reasons:
        lines += ["", "What each run said:", "", *reasons]
    return "\n".join(lines)


def table(rows_by_corpus, modes):
    lines = ["| codebase | queries | ranking | nDCG@10 | MRR@10 | Recall@10 |", "|---|---:|---|---:|---:|---:|"]
    everything = {m: [] for m in modes}
    for name, (results, _) in rows_by_corpus.items():
        for m in modes:
            rows = results[m]
            everything[m].extend(rows)
            lines.append(f"| {name} | {len(rows)} | {m} | {mean(rows, 'ndcg'):.3f} | "
                         f"{mean(rows, 'mrr'):.3f} | {mean(rows, 'recall'):.3f} |")
    for m in modes:
        rows = everything[m]
        lines.append(f"| **all** | {len(rows)} | {m} | **{mean(rows, 'ndcg'):.3f}** | "
                     f"**{mean(rows, 'mrr'):.3f}** | **{mean(rows, 'recall'):.3f}** |")
    lines += ["", "nDCG@10 by query type (all codebases):", "",
              "| type | queries | " + " | ".join(modes) + " |", "|---|---:|" + "---:|" * len(modes)]
    for kind in QUERY_TYPES:
        cells = []
        count = 0
        for m in modes:
            rows = [r for r in everything[m] if r["type"] == kind]
            count = len(rows)
            cells.append(f"{mean(rows, 'ndcg'):.3f}")
        lines.append(f"| {kind} | {count} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


SERVER_MANIFEST = os.path.join(HERE, "..", "..", "server", "Cargo.toml")


def windows_features(features, language):
    """The `--features` of a build like the default one less `lang-<language>`: the default
    features with `all-languages` spelled out and that language's grammar left out. Raises
    SystemExit when the crate has no such feature (the language is not parsed at all)."""
    grammar = f"lang-{language}"
    every = features.get("all-languages", [])
    if grammar not in every:
        raise SystemExit(f"{language}: the crate has no feature {grammar!r}, so both builds would "
                         "read its files as text (languages parsed: "
                         + ", ".join(f[len("lang-"):] for f in every) + ")")
    out = []
    for feature in features.get("default", []):
        if feature == "all-languages":
            out += [f for f in every if f != grammar]
        else:
            out.append(feature)
    return out


def language_builds(features, language):
    """The `--features` of the two builds compared for a language, (symbols, windows), each a
    list or None for the default features. The symbols build of a language in `all-languages` is
    the default one, and its windows build leaves that grammar out (`windows_features`); an
    opt-in language (its `lang-*` feature outside `all-languages`: Haskell) is read as text by the
    default build, which is then its windows build, and its symbols build adds the feature."""
    grammar = f"lang-{language}"
    if grammar in features and grammar not in features.get("all-languages", []):
        return features.get("default", []) + [grammar], None
    return None, windows_features(features, language)


def build_binary(features, dest):
    """A release build of coder-lsp (the default features, or exactly `features`), copied to
    `dest` (cargo writes every feature set to the same path)."""
    args = ["cargo", "build", "--release", "--quiet", "--locked", "-p", "coder-lsp"]
    if features is not None:
        args += ["--no-default-features", "--features", ",".join(features)]
    if subprocess.run(args, cwd=os.path.join(HERE, "..", "..")).returncode != 0:
        raise SystemExit(f"cargo could not build coder-lsp ({' '.join(args[2:])}); see its errors above")
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(HERE, "..", "..", "target")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    shutil.copy2(os.path.join(target, "release", "coder-lsp"), dest)
    return dest


def language_comparison(language, windows, symbols, goal=0.05):
    """Markdown rows comparing one language's codebases as windows and as symbols. `windows` and
    `symbols` map codebase -> {mode: [per-query rows]}; means over queries, hybrid first."""
    modes = ["hybrid", "dense", "lexical"]
    lines = [f"### {language}", "",
             "| codebase | queries | " + " | ".join(f"{m} windows → symbols" for m in modes)
             + " | hybrid difference |",
             "|---|---:|" + "---|" * len(modes) + "---:|"]
    pooled = {m: ([], []) for m in modes}
    for name in windows:
        cells = []
        for m in modes:
            w, s = windows[name][m], symbols[name][m]
            pooled[m][0].extend(w)
            pooled[m][1].extend(s)
            cells.append(f"{mean(w, 'ndcg'):.3f} → {mean(s, 'ndcg'):.3f}")
        gain = mean(symbols[name]["hybrid"], "ndcg") - mean(windows[name]["hybrid"], "ndcg")
        lines.append(f"| {name} | {len(windows[name]['hybrid'])} | " + " | ".join(cells)
                     + f" | {gain:+.3f} |")
    cells = [f"**{mean(pooled[m][0], 'ndcg'):.3f} → {mean(pooled[m][1], 'ndcg'):.3f}**" for m in modes]
    gain = mean(pooled["hybrid"][1], "ndcg") - mean(pooled["hybrid"][0], "ndcg")
    lines.append(f"| **all** | {len(pooled['hybrid'][0])} | " + " | ".join(cells) + f" | **{gain:+.3f}** |")
    verdict = "reaches" if gain >= goal - 1e-9 else "falls short of"
    lines += ["", f"{language}: symbols {gain:+.3f} hybrid nDCG@10 over the windows fallback, which "
                  f"{verdict} the +{goal:.2f} of issue 25."]
    return "\n".join(lines), gain


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def languages(corpora, args):
    """`quality.py languages`: both builds of each language on its codebases (see
    `windows_features`), each run once, and the comparison table."""
    import tomllib
    with open(SERVER_MANIFEST, "rb") as f:
        features = tomllib.load(f)["features"]
    plans = []
    for language in args.lang:
        chosen = [c for c in corpora if c["language"] == language]
        if not chosen:
            raise SystemExit(f"no codebase in corpora.json is written in {language!r}")
        plans.append((language, language_builds(features, language), chosen))
    fetch([c for _, _, chosen in plans for c in chosen])
    root = os.path.abspath(args.index_root)
    built = {}

    def binary_for(feature_list, name):
        """One build per feature set (the default one serves several languages)."""
        key = tuple(feature_list) if feature_list is not None else None
        if key not in built:
            print(f"building coder-lsp: {name}", file=sys.stderr)
            built[key] = build_binary(feature_list, os.path.join(root, "bin", f"coder-lsp-{name}"))
        return built[key]

    modes = ["dense", "lexical", "hybrid"]
    sections, per_query = [], []
    for language, (with_grammar, without), chosen in plans:
        symbols_binary = binary_for(with_grammar, "default" if with_grammar is None
                                    else f"with-{language}")
        windows_binary = binary_for(without, "default" if without is None
                                    else f"without-{language}")
        runs = {}
        for build, binary in (("windows", windows_binary), ("symbols", symbols_binary)):
            runs[build] = {}
            for corpus in chosen:
                print(f"{corpus['name']}: {build}", file=sys.stderr)
                results, _ = evaluate(binary, corpus, None, os.path.join(root, build, language),
                                      modes, [])
                runs[build][corpus["name"]] = results
                for mode, rows in results.items():
                    per_query += [dict(r, build=build, codebase=corpus["name"], mode=mode) for r in rows]
        text, _ = language_comparison(language, runs["windows"], runs["symbols"])
        sections.append(text)
    report = "\n".join([
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC  ",
        f"Machine: {machine()}  ",
        "Model: default (all-MiniLM-L6-v2); nDCG@10 means over queries, each build run once",
        "",
    ] + [s + "\n" for s in sections])
    emit(report, args.out, args.per_query, per_query)


def emit(report, out, per_query_path, rows):
    """Prints the report, and writes it to `out` and the per-query rows to `per_query_path` (JSON
    lines) where given."""
    print(report)
    if out:
        with open(out, "w") as f:
            f.write(report + "\n")
    if per_query_path:
        with open(per_query_path, "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch")
    sub.add_parser("check")
    run = sub.add_parser("run")
    run.add_argument("--binary", required=True, help="the coder-lsp binary to measure")
    run.add_argument("--model", help="model directory (or id) passed to coder-lsp --model; "
                                     "a fine-tuned model is evaluated the same way")
    run.add_argument("--adapter", help="a LoRA adapter directory (coder-lsp train train --out) passed to "
                                       "coder-lsp --adapter, on top of --model")
    run.add_argument("--fine-tune", action="store_true",
                     help="also fine-tune the model on each codebase (`coder-lsp fine-tune`, which runs "
                          "`coder-lsp train` as a child) and compare base and fine-tuned rankings")
    run.add_argument("--fine-tune-args", default="",
                     help="extra arguments for `coder-lsp fine-tune`, e.g. '--max-steps 100'")
    run.add_argument("--only", action="append", help="codebase name (repeatable); default all")
    run.add_argument("--role", choices=["tuning", "held-out"],
                     help="only the codebases of this role in corpora.json: tune with `--role tuning`, "
                          "so the held-out codebase is looked at once, after every choice is fixed")
    run.add_argument("--modes", default="grep,dense,lexical,hybrid")
    run.add_argument("--rrf-k", type=float, help="passed to coder-lsp search --rrf-k")
    run.add_argument("--dense-weight", type=float, help="passed to coder-lsp search --dense-weight")
    run.add_argument("--search-args", default="",
                     help="more arguments for every coder-lsp search, e.g. "
                          "'--ranking-params @params.json --prior test=1'")
    run.add_argument("--index-root", default=os.path.join(CORPORA_DIR, ".index"),
                     help="where the indexes go (one directory per codebase and model)")
    run.add_argument("--out", help="also write the markdown report here")
    run.add_argument("--per-query", help="write every query's scores as JSON lines here")
    langs = sub.add_parser("languages", help="a language's symbols against its windows fallback")
    langs.add_argument("--lang", action="append", required=True,
                       help="a language as corpora.json names it (ruby, php, scala, …); repeatable")
    langs.add_argument("--index-root", default=os.path.join(CORPORA_DIR, ".index-languages"),
                       help="where the two builds and their indexes go")
    langs.add_argument("--out", help="also write the markdown report here")
    langs.add_argument("--per-query", help="write every query's scores, both builds, as JSON lines here")
    args = parser.parse_args()

    corpora = load_corpora()
    if args.command == "languages":
        languages(corpora, args)
        return
    if args.command == "fetch":
        fetch(corpora)
    elif args.command == "check":
        problems = check(corpora)
        for p in problems:
            print(p, file=sys.stderr)
        total = sum(len(load_queries(c["name"])) for c in corpora)
        if problems:
            raise SystemExit(f"{len(problems)} problem(s) in the queries")
        print(f"{total} queries over {len(corpora)} codebases: every target found", file=sys.stderr)
    else:
        chosen = [c for c in corpora if (not args.only or c["name"] in args.only)
                  and (not args.role or c["role"] == args.role)]
        if not chosen:
            raise SystemExit("no codebase in corpora.json matches --only/--role")
        modes = args.modes.split(",")
        model_tag = hashlib.sha256(
            f"{args.model or 'default'}|{os.path.realpath(args.adapter) if args.adapter else ''}".encode()
        ).hexdigest()[:8]
        index_root = os.path.join(args.index_root, model_tag)
        ranking_args = []
        if args.rrf_k is not None:
            ranking_args += ["--rrf-k", str(args.rrf_k)]
        if args.dense_weight is not None:
            ranking_args += ["--dense-weight", str(args.dense_weight)]
        ranking_args += shlex.split(args.search_args)
        by_corpus = {}
        for corpus in chosen:
            print(f"{corpus['name']}: indexing and searching", file=sys.stderr)
            by_corpus[corpus["name"]] = evaluate(args.binary, corpus, args.model, index_root, modes,
                                                 ranking_args, args.adapter)
        if args.fine_tune:
            if args.adapter:
                raise SystemExit("--fine-tune trains its own adapters; leave out --adapter")
            tuned_root = os.path.join(args.index_root, model_tag + "-fine-tuned")
            tuned, outcomes = {}, {}
            for corpus in chosen:
                name = corpus["name"]
                print(f"{name}: fine-tuning", file=sys.stderr)
                outcomes[name] = fine_tune(args.binary, corpus, args.model, tuned_root,
                                           args.fine_tune_args.split())
                print(f"{name}: {outcomes[name]['message']}", file=sys.stderr)
                tuned[name] = evaluate(args.binary, corpus, args.model, tuned_root,
                                       [m for m in modes if m != "grep"], ranking_args)
        report = [
            f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC  ",
            f"Machine: {machine()}  ",
            f"Model: {args.model or 'default (all-MiniLM-L6-v2)'}"
            + (f" with adapter {args.adapter}" if args.adapter else "") + "  ",
            "Codebases: " + ", ".join(
                f"{c['package']} {c['version']} ({c['language']}, {c['registry']}, {c['role']})" for c in chosen),
            "",
            table(by_corpus, modes),
        ]
        if args.fine_tune:
            report += ["", "Base model against the model fine-tuned on each codebase (`--fine-tune`"
                       + (f", `{args.fine_tune_args}`" if args.fine_tune_args else "") + "):", "",
                       comparison(by_corpus, tuned, outcomes, [m for m in modes if m != "grep"])]
        rows = [dict(r, codebase=name, mode=m)
                for name, (results, _) in by_corpus.items()
                for m, found in results.items() for r in found]
        emit("\n".join(report), args.out, args.per_query, rows)


if __name__ == "__main__":
    main()
