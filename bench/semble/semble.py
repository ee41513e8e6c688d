#!/usr/bin/env python3
"""coder-lsp on the public benchmark of the semble project (github.com/MinishLab/semble, benchmarks/).

Subcommands (bench/semble/run calls them in order):
  fetch   download every repo of repos.json at its pinned registry version (crates.io tarball,
          PyPI sdist via `pip download`, `npm pack`, Debian source via `apt-get source` with a private
          apt configuration), verify the sha256, unpack under corpora/ (skips what is already there)
  check   count, per repo, the annotation targets whose file exists in the unpacked tree; queries
          whose targets are all missing are dropped from scoring
  run     index each repo with the real binary, answer all its queries in one `search --stdin`
          process, and score file-level nDCG@10 the way semble's benchmark does; print the tables
          beside semble's published numbers (published.json) and save everything as JSON
  finetune  (run on its own) per repo and seed: copy the repo's index, score the queries, run
          `coder-lsp fine-tune` on the copy, re-index and score again if an adapter was installed;
          record the trainer's figures, times and peak memory; resumable (--out)

Scoring, as semble's file-level baselines do it: the hits are taken in rank order, each hit path is
made relative to the semble repo root (the repo's prefix + the path), reduced to distinct files and
cut to the first 10; each target of `relevant` + `secondary` gets the 1-based rank of the first file
that matches it (equal paths, or either a suffix of the other after a "/"); nDCG@10 uses binary gains
at those ranks over an ideal of min(10, number of targets) hits.

Only the standard library is used. Only the unit tests (test_semble.py) run in CI.
"""
import argparse
import datetime
import hashlib
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPOS_PATH = os.path.join(HERE, "repos.json")
PUBLISHED_PATH = os.path.join(HERE, "published.json")
ANNOTATIONS_DIR = os.path.join(HERE, "annotations")
CORPORA_DIR = os.path.join(HERE, "corpora")
INDEXES_DIR = os.path.join(HERE, "indexes")
CACHE_DIR = os.path.join(HERE, ".cache")
DOWNLOADS_DIR = os.path.join(CACHE_DIR, "downloads")
APT_DIR = os.path.join(CACHE_DIR, "apt")
CUTOFF = 10
ROLES = ("tuning", "held-out", "fresh")
# The split rule alternates these two over the repos of the first split; repos added later are
# "fresh": never tuned on, run once after the choices they judge were fixed, reported apart.
SPLIT_ROLES = ("tuning", "held-out")
DEBIAN_SUITES = ("bookworm", "trixie", "sid")
MARKER = ".semble-fetched.json"
PUBLISHED_ORDER = ("semble", "cre_hybrid", "cre", "bm25", "ck")
PUBLISHED_SHORT = {"semble": "semble", "cre_hybrid": "CRE-H", "cre": "CRE", "bm25": "BM25", "ck": "ck"}


# ---------------------------------------------------------------- scoring


def path_matches(file_path, target_path):
    """Equal paths, or one a suffix of the other starting after a '/' (semble's rule)."""
    a = file_path.replace("\\", "/")
    b = target_path.replace("\\", "/")
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)


def distinct_files(paths, k=CUTOFF):
    """The paths in order with repeats removed, cut to the first k."""
    seen = []
    for p in paths:
        if p not in seen:
            seen.append(p)
            if len(seen) == k:
                break
    return seen


def first_rank(files, target):
    """1-based rank of the first file matching target, or None."""
    for rank, f in enumerate(files, 1):
        if path_matches(f, target):
            return rank
    return None


def dcg(gains):
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at(ranks, n_targets, k=CUTOFF):
    """Binary gains at the given 1-based ranks (repeats count once); the ideal puts
    min(k, n_targets) hits on top. Several targets found in one file so score below 1."""
    if n_targets == 0:
        return 0.0
    gains = [0] * k
    for r in ranks:
        if r is not None and 1 <= r <= k:
            gains[r - 1] = 1
    return dcg(gains) / dcg([1] * min(k, n_targets))


def score_files(files, targets, k=CUTOFF):
    """nDCG@k of a ranked list of repo-root-relative files against the target paths."""
    files = distinct_files(files, k)
    ranks = [first_rank(files, t) for t in targets]
    return ndcg_at(ranks, len(targets), k), ranks


def infer_category(query):
    """semble's fallback when an annotation has no category."""
    if " " not in query.strip():
        return "symbol"
    lowered = query.lower()
    if lowered.startswith("how "):
        return "architecture"
    return "semantic"


def to_repo_path(prefix, hit_path):
    """A hit path relative to the indexed folder, as a path relative to the semble repo root."""
    hit = hit_path.replace("\\", "/")
    while hit.startswith("./"):
        hit = hit[2:]
    return prefix + hit


TEST_DIRS = {"test", "tests", "spec", "specs", "__tests__", "testing", "testdata"}
TEST_FILE = re.compile(
    r"(^test_.*|.*_test\.[^.]+$|.*_tests\.[^.]+$|.*\.test\.[^.]+$|.*\.spec\.[^.]+$|"
    r".*_spec\.rb$|.*Tests?\.(java|kt|scala|cs|swift)$|^test\.[^.]+$|^conftest\.py$)"
)
DOC_SUFFIXES = (".md", ".rst", ".txt", ".markdown", ".adoc")


def is_test_or_doc(path):
    """A file under a test-like folder, with a test-like name, or a prose document."""
    parts = path.replace("\\", "/").split("/")
    name = parts[-1]
    if any(p.lower() in TEST_DIRS for p in parts[:-1]):
        return True
    if TEST_FILE.match(name):
        return True
    return name.lower().endswith(DOC_SUFFIXES)


def assign_roles(repos):
    """The fixed split: sort by (language, name), alternate tuning / held-out from the first.
    Repos marked `fresh` (added after the split) keep that role and do not shift the others."""
    ordered = sorted((r for r in repos if r.get("role") != "fresh"),
                     key=lambda r: (r["language"], r["name"]))
    roles = {r["name"]: SPLIT_ROLES[i % 2] for i, r in enumerate(ordered)}
    roles.update({r["name"]: "fresh" for r in repos if r.get("role") == "fresh"})
    return roles


def mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


# ---------------------------------------------------------------- data


def load_repos():
    with open(REPOS_PATH) as f:
        return json.load(f)


def load_published():
    with open(PUBLISHED_PATH) as f:
        return json.load(f)


def target_path(t):
    return t if isinstance(t, str) else str(t["path"])


def load_tasks(name):
    """The queries of one repo: text, all targets (relevant + secondary, in order) and category."""
    with open(os.path.join(ANNOTATIONS_DIR, f"{name}.json")) as f:
        raw = json.load(f)
    tasks = []
    for item in raw:
        if item.get("repo", name) != name:
            continue
        category = item.get("category")
        tasks.append({
            "query": item["query"],
            "targets": [target_path(t) for t in item.get("relevant", []) + item.get("secondary", [])],
            "category": category if isinstance(category, str) else infer_category(item["query"]),
        })
    return tasks


def tree_dir(repo):
    return os.path.join(CORPORA_DIR, repo["name"])


def index_root(repo):
    root = repo.get("root") or ""
    return os.path.join(tree_dir(repo), root) if root else tree_dir(repo)


def repo_files(repo):
    """Every file under the indexed folder, as repo-root-relative paths."""
    base = index_root(repo)
    out = set()
    for dirpath, _dirs, files in os.walk(base):
        for fn in files:
            rel = os.path.relpath(os.path.join(dirpath, fn), base).replace(os.sep, "/")
            out.add(to_repo_path(repo["prefix"], rel))
    return out


def target_exists(files, target):
    return target in files or any(path_matches(f, target) for f in files)


def coverage(repo, tasks, files):
    """(distinct targets, found, missing targets, scored tasks, dropped tasks)."""
    targets = sorted({t for task in tasks for t in task["targets"]})
    present = {t: target_exists(files, t) for t in targets}
    scored = [t for t in tasks if any(present[x] for x in t["targets"])]
    dropped = [t for t in tasks if not any(present[x] for x in t["targets"])]
    missing = [t for t in targets if not present[t]]
    return targets, len(targets) - len(missing), missing, scored, dropped


# ---------------------------------------------------------------- fetch


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def apt_options():
    return [
        "-o", f"Dir::Etc::SourceList={os.path.join(APT_DIR, 'sources.list')}",
        "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", f"Dir::State::Lists={os.path.join(APT_DIR, 'lists')}",
        "-o", f"Dir::Cache={APT_DIR}",
        "-o", f"Dir::Cache::archives={os.path.join(APT_DIR, 'archives')}",
        "-o", "APT::Sandbox::User=root",
        "-o", "Debug::NoLocking=1",
    ]


def apt_update(force=False):
    """A private apt configuration (deb-src lines only) under .cache/apt; /etc/apt is untouched."""
    lists = os.path.join(APT_DIR, "lists")
    os.makedirs(os.path.join(lists, "partial"), exist_ok=True)
    os.makedirs(os.path.join(APT_DIR, "archives", "partial"), exist_ok=True)
    with open(os.path.join(APT_DIR, "sources.list"), "w") as f:
        for suite in DEBIAN_SUITES:
            f.write(f"deb-src http://deb.debian.org/debian {suite} main\n")
    if force or not any("Sources" in n for n in os.listdir(lists)):
        subprocess.run(["apt-get", *apt_options(), "update", "-q"], check=True,
                       stdout=subprocess.DEVNULL)


def download(source, into):
    """Fetch one source archive into `into` with the registry's ordinary client; return its path."""
    os.makedirs(into, exist_ok=True)
    path = os.path.join(into, source["file"])
    if os.path.exists(path) and sha256_of(path) == source["sha256"]:
        return path
    reg, pkg, ver = source["registry"], source["package"], source["version"]
    if reg == "crates.io":
        url = f"https://static.crates.io/crates/{pkg}/{pkg}-{ver}.crate"
        urllib.request.urlretrieve(url, path)
    elif reg == "pypi":
        subprocess.run(["pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", into,
                        f"{pkg}=={ver}"], check=True)
    elif reg == "npm":
        subprocess.run(["npm", "pack", "--silent", f"{pkg}@{ver}"], cwd=into, check=True,
                       stdout=subprocess.DEVNULL)
    elif reg == "debian":
        apt_update()
        errors = ""
        for _attempt in range(2):
            # Some mirrors serve the tarballs but not the .dsc: apt-get then exits non-zero after
            # downloading them, so the result is judged by the file and its sha256 below.
            proc = subprocess.run(["apt-get", *apt_options(), "source", "--download-only", "-q",
                                   f"{pkg}={ver}"], cwd=into, capture_output=True, text=True)
            errors = proc.stderr
            if os.path.exists(path):
                break
            apt_update(force=True)
        if not os.path.exists(path):
            sys.stderr.write(errors)
    else:
        raise SystemExit(f"unknown registry {reg!r}")
    if not os.path.exists(path):
        raise SystemExit(f"{pkg} {ver}: {source['file']} did not arrive from {reg}")
    return path


def unpack(archive, dest):
    """Unpack a tarball with a single top folder into dest (that folder's contents)."""
    parent = os.path.dirname(dest) or "."
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent) as tmp:
        with tarfile.open(archive) as t:
            t.extractall(tmp, filter="data")
        tops = os.listdir(tmp)
        if len(tops) != 1 or not os.path.isdir(os.path.join(tmp, tops[0])):
            raise SystemExit(f"{archive}: expected one top folder, found {tops[:5]}")
        if os.path.exists(dest):
            shutil.rmtree(dest)
        shutil.move(os.path.join(tmp, tops[0]), dest)


def fetch(repos):
    for repo in repos:
        tree = tree_dir(repo)
        want = [s["sha256"] for s in repo["sources"]]
        marker = os.path.join(tree, MARKER)
        if os.path.exists(marker):
            with open(marker) as f:
                if json.load(f).get("sha256") == want:
                    print(f"{repo['name']}: present")
                    continue
        if os.path.exists(tree):
            shutil.rmtree(tree)
        for source in repo["sources"]:
            into = os.path.join(DOWNLOADS_DIR, source["registry"])
            archive = download(source, into)
            got = sha256_of(archive)
            if got != source["sha256"]:
                raise SystemExit(f"{repo['name']}: sha256 of {archive} is {got}, "
                                 f"expected {source['sha256']}")
            dest = os.path.join(tree, source["dest"]) if source.get("dest") else tree
            unpack(archive, dest)
        with open(marker, "w") as f:
            json.dump({"sha256": want}, f)
        versions = ", ".join(f"{s['package']} {s['version']}" for s in repo["sources"])
        print(f"{repo['name']}: fetched {versions}")


# ---------------------------------------------------------------- check


def check(repos, verbose=False):
    """Print target coverage per repo; return {name: (scored tasks, dropped tasks, coverage row)}."""
    out = {}
    rows = []
    for repo in repos:
        if not os.path.isdir(index_root(repo)):
            raise SystemExit(f"{repo['name']}: {index_root(repo)} is missing; run fetch first")
        tasks = load_tasks(repo["name"])
        files = repo_files(repo)
        targets, found, missing, scored, dropped = coverage(repo, tasks, files)
        out[repo["name"]] = (scored, dropped, {"targets": len(targets), "found": found,
                                               "missing": missing, "queries": len(tasks),
                                               "dropped": [t["query"] for t in dropped]})
        version = ", ".join(s["version"] for s in repo["sources"])
        rows.append([repo["name"], repo["language"], repo["role"], version, str(len(files)),
                     f"{found}/{len(targets)}", f"{100 * found / max(1, len(targets)):.0f}%",
                     f"{len(scored)}/{len(tasks)}", ", ".join(missing) or "-"])
    print_table(["repo", "language", "role", "version", "files", "targets found", "share",
                 "queries scored", "missing targets"], rows)
    dropped = [(n, q) for n, (_s, _d, c) in out.items() for q in c["dropped"]]
    if dropped:
        print(f"\n{len(dropped)} queries dropped (no target exists in the tree):")
        for n, q in dropped:
            print(f"  {n}: {q}")
    else:
        print("\nno query dropped: every query has at least one target in its tree")
    return out


# ---------------------------------------------------------------- run


def run_binary(binary, args, stdin=None):
    proc = subprocess.run([binary, *args], input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{binary} {' '.join(args[:1])} failed ({proc.returncode}):\n"
                         f"{proc.stderr[-2000:]}")
    return proc.stdout


def parse_search_output(text, expected):
    """One JSON object per query line, in order: {"query": ..., "results": [{"path": ...}, ...]}."""
    answers = [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]
    if len(answers) != expected:
        raise SystemExit(f"search answered {len(answers)} queries, expected {expected}")
    return [[hit["path"] for hit in a.get("results", [])] for a in answers]


def evaluate_repo(binary, repo, tasks, top_k, extra_args, verbose, index_dir=None):
    """Index (timed), answer every task in one `search --stdin` process, score. The index lives
    in `index_dir`, by default the benchmark's own `indexes/NAME`."""
    root = index_root(repo)
    index_dir = index_dir or os.path.join(INDEXES_DIR, repo["name"])
    os.makedirs(index_dir, exist_ok=True)
    common = ["--root", root, "--index-dir", index_dir]
    started = time.perf_counter()
    out = run_binary(binary, ["index", *common, "--json"])
    index_s = time.perf_counter() - started
    stats = {}
    for line in out.splitlines():
        if line.strip().startswith("{"):
            stats = json.loads(line)
    queries = "".join(t["query"].replace("\n", " ") + "\n" for t in tasks)
    started = time.perf_counter()
    out = run_binary(binary, ["search", *common, "--no-update", "--json", "--top-k", str(top_k),
                              "--stdin", *extra_args], stdin=queries)
    search_s = time.perf_counter() - started
    hits = parse_search_output(out, len(tasks))
    rows = []
    for task, paths in zip(tasks, hits):
        files = distinct_files([to_repo_path(repo["prefix"], p) for p in paths], CUTOFF)
        score, ranks = score_files(files, task["targets"])
        rows.append({
            "query": task["query"], "category": task["category"], "targets": task["targets"],
            "ranks": ranks, "ndcg10": score, "files": files,
            "test_or_doc": [is_test_or_doc(f) for f in files],
        })
        if verbose:
            print(f"  {score:.3f} ranks={ranks} [{task['category']}] {task['query']!r}")
            print(f"        targets: {', '.join(task['targets'])}")
            print(f"        top-5:   {', '.join(files[:5]) or '(nothing)'}")
    return {
        "index_seconds": round(index_s, 2), "search_seconds": round(search_s, 2),
        "index_stats": stats, "chunks": stats.get("chunks"), "files_indexed": stats.get("files"),
        "queries": rows,
    }


def summarize_repo(result):
    rows = result["queries"]
    files = [f for r in rows for f in r["files"]]
    flags = [x for r in rows for x in r["test_or_doc"]]
    by_cat = {}
    for r in rows:
        by_cat.setdefault(r["category"], []).append(r["ndcg10"])
    return {
        "ndcg10": mean([r["ndcg10"] for r in rows]),
        "queries": len(rows),
        "zero": sum(1 for r in rows if r["ndcg10"] == 0),
        "by_category": {c: mean(v) for c, v in sorted(by_cat.items())},
        "top10_files": len(files),
        "test_or_doc_share": (sum(flags) / len(flags)) if flags else None,
        "test_or_doc_first": sum(1 for r in rows if r["test_or_doc"] and r["test_or_doc"][0]),
    }


def fmt(x, digits=3):
    return "-" if x is None else f"{x:.{digits}f}"


def print_table(header, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")


def published_scores(published, names):
    """{method: {repo: ndcg10}} restricted to names (a method may lack a repo: ck lacks abseil-cpp)."""
    out = {}
    for key in PUBLISHED_ORDER:
        values = published["methods"][key]["ndcg10"]
        out[key] = {n: values.get(n) for n in names}
    return out


def report(results, repos_by_name, published, label):
    names = sorted(results, key=lambda n: (repos_by_name[n]["language"], n))
    pub = published_scores(published, names)
    summaries = {n: summarize_repo(results[n]) for n in names}

    print(f"\n## coder-lsp on the semble benchmark ({label})\n")
    header = ["repo", "lang", "role", "version", "chunks", "index s", "queries", "zero",
              "ours", *[PUBLISHED_SHORT[k] for k in PUBLISHED_ORDER], "test/doc@10", "t/d first"]
    rows = []
    for n in names:
        s, r, repo = summaries[n], results[n], repos_by_name[n]
        rows.append([n, repo["language"], repo["role"],
                     ", ".join(x["version"] for x in repo["sources"]), r["chunks"] or "-",
                     f"{r['index_seconds']:.0f}", s["queries"], s["zero"], fmt(s["ndcg10"]),
                     *[fmt(pub[k][n]) for k in PUBLISHED_ORDER],
                     f"{100 * s['test_or_doc_share']:.0f}%" if s["test_or_doc_share"] is not None else "-",
                     s["test_or_doc_first"]])
    print_table(header, rows)

    groups = [("all", names)] + [(role, [n for n in names if repos_by_name[n]["role"] == role])
                                 for role in ROLES]
    print("\nMeans over repos (each method over the same repos; n = repos with a published number):\n")
    header = ["half", "repos", "queries", "ours (repo mean)", "ours (query mean)",
              *[PUBLISHED_SHORT[k] for k in PUBLISHED_ORDER]]
    rows = []
    summary_means = {}
    for gname, members in groups:
        if not members:
            continue
        qs = [q["ndcg10"] for n in members for q in results[n]["queries"]]
        ours = mean([summaries[n]["ndcg10"] for n in members])
        cells = []
        gpub = {}
        for k in PUBLISHED_ORDER:
            vals = [pub[k][n] for n in members if pub[k][n] is not None]
            gpub[k] = mean(vals)
            note = "" if len(vals) == len(members) else f" (n={len(vals)})"
            cells.append(fmt(gpub[k]) + note)
        rows.append([gname, len(members), len(qs), fmt(ours), fmt(mean(qs)), *cells])
        summary_means[gname] = {"repos": len(members), "queries": len(qs), "ours_repo_mean": ours,
                                "ours_query_mean": mean(qs), "published": gpub}
    print_table(header, rows)

    cats = sorted({q["category"] for n in names for q in results[n]["queries"]})
    print("\nBy category (mean over queries):\n")
    rows = []
    by_category = {}
    for gname, members in groups:
        if not members:
            continue
        row = [gname]
        by_category[gname] = {}
        for c in cats:
            vals = [q["ndcg10"] for n in members for q in results[n]["queries"] if q["category"] == c]
            by_category[gname][c] = {"queries": len(vals), "ndcg10": mean(vals)}
            row.append(f"{fmt(mean(vals))} ({len(vals)})")
        rows.append(row)
    print_table(["half", *cats], rows)

    all_flags = [x for n in names for q in results[n]["queries"] for x in q["test_or_doc"]]
    first = sum(summaries[n]["test_or_doc_first"] for n in names)
    nq = sum(summaries[n]["queries"] for n in names)
    zero = sum(summaries[n]["zero"] for n in names)
    share = sum(all_flags) / len(all_flags) if all_flags else 0.0
    print(f"\nTest or doc files: {100 * share:.1f}% of our top-10 files; first for {first} of {nq} "
          f"queries. Queries scoring 0: {zero} of {nq}.")
    return {"per_repo": summaries, "means": summary_means, "by_category": by_category,
            "test_or_doc_share": share, "test_or_doc_first": first, "zero": zero, "queries": nq}


# ---------------------------------------------------------------- finetune

FINETUNE_DIR = os.path.join(INDEXES_DIR, ".finetune")


def spread(values):
    """max - min of the values (None when there are none)."""
    values = [v for v in values if v is not None]
    return max(values) - min(values) if values else None


def run_key(run):
    """What makes two runs the same experiment: repo, seed and the extra fine-tune arguments."""
    return (run["repo"], int(run["seed"]), tuple(run.get("fine_tune_args") or ()))


def pending_runs(repos, seeds, ft_args, done_runs):
    """The (repo, seed) pairs still to run, in order, skipping those recorded in done_runs."""
    done = {run_key(r) for r in done_runs}
    return [(repo, seed) for repo in repos for seed in seeds
            if (repo["name"], int(seed), tuple(ft_args)) not in done]


def finetune_summary(runs, eps=1e-9):
    """Per codebase over its seeds, then over codebases.

    Per codebase: the hand-written queries' nDCG@10 with the base model (`before`) and the
    served outcome per seed (`after`: the adapter's when one was installed, else the base
    model's), their difference per seed (`delta`), the spread of the deltas over the seeds
    (max - min; 0 with one seed), and whether the codebase is *worse*: its mean delta is a loss
    larger than that spread. `gain_installed` is the mean delta over the seeds whose adapter
    was installed (None when none was).

    Over codebases: how many are worse, the mean of `gain_installed` over the codebases where
    an adapter was installed at least once, and the mean delta over all codebases (what a user
    can expect from running fine-tune, rejections counting as no change)."""
    by_repo = {}
    for r in runs:
        by_repo.setdefault(r["repo"], []).append(r)
    per_repo = {}
    for name, rs in by_repo.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        deltas = [r["ndcg_after"] - r["ndcg_before"] for r in rs]
        installed = [d for r, d in zip(rs, deltas) if r["accepted"]]
        mean_delta = mean(deltas)
        sp = spread(deltas)
        served = [r["served_after"] - r["served_before"] for r in rs
                  if r.get("served_after") is not None and r.get("served_before") is not None]
        per_repo[name] = {
            "language": rs[0].get("language"),
            "seeds": [r["seed"] for r in rs],
            "before": mean([r["ndcg_before"] for r in rs]),
            "after": [r["ndcg_after"] for r in rs],
            "after_mean": mean([r["ndcg_after"] for r in rs]),
            "delta": deltas,
            "mean_delta": mean_delta,
            "spread": sp,
            "worse": mean_delta < 0 and -mean_delta > sp + eps,
            "accepted": sum(1 for r in rs if r["accepted"]),
            "runs": len(rs),
            "gain_installed": mean(installed),
            "served_delta_mean": mean(served),
            "heldout_delta_mean": mean([r["heldout_ndcg_after"] - r["heldout_ndcg_before"] for r in rs
                                        if r.get("heldout_ndcg_after") is not None
                                        and r.get("heldout_ndcg_before") is not None]),
        }
    with_adapter = [n for n, s in per_repo.items() if s["accepted"]]
    return {
        "per_repo": per_repo,
        "codebases": len(per_repo),
        "runs": len(runs),
        "accepted_runs": sum(1 for r in runs if r["accepted"]),
        "worse": sorted(n for n, s in per_repo.items() if s["worse"]),
        "codebases_with_adapter": sorted(with_adapter),
        "mean_gain_installed": mean([per_repo[n]["gain_installed"] for n in with_adapter]),
        "mean_gain_installed_runs": mean([r["ndcg_after"] - r["ndcg_before"] for r in runs if r["accepted"]]),
        "mean_delta_all": mean([s["mean_delta"] for s in per_repo.values()]),
        "mean_before": mean([s["before"] for s in per_repo.values()]),
        "mean_after": mean([s["after_mean"] for s in per_repo.values()]),
        "seconds": sum(r.get("run_seconds") or 0 for r in runs),
        "fine_tune_seconds": sum(r.get("fine_tune_seconds") or 0 for r in runs),
    }


def pair_total(counts):
    return sum(counts.values()) if isinstance(counts, dict) else counts


def arrow(before, after, digits=3):
    if before is None and after is None:
        return "-"
    return f"{fmt(before, digits)}→{fmt(after, digits)}"


def signed(x, digits=3):
    return "-" if x is None else f"{x:+.{digits}f}"


def print_finetune_report(runs, summary):
    runs = sorted(runs, key=lambda r: (r.get("language") or "", r["repo"], r["seed"]))
    print("\n## Per-repository fine-tuning: one row per run\n")
    print("nDCG@10 before→after. held-out: mined pairs held out by file (ranked among themselves); "
          "gate: held-out questions searched over the workspace with the served ranking (the "
          "install decision); queries: the benchmark's hand-written queries, served ranking, "
          "default search settings.\n")
    header = ["repo", "lang", "seed", "train", "held", "held-out", "gate (n)", "gate p", "losing",
              "installed", "queries", "Δ", "fine-tune s", "CPU s", "load", "re-index s", "peak MB"]
    rows = []
    for r in runs:
        rows.append([
            r["repo"], r.get("language") or "-", r["seed"], pair_total(r.get("train_pairs") or {}),
            pair_total(r.get("heldout_pairs") or {}),
            arrow(r.get("heldout_ndcg_before"), r.get("heldout_ndcg_after")),
            f"{arrow(r.get('served_before'), r.get('served_after'))} ({r.get('served_queries', '-')})",
            fmt(r.get("served_p_value"), 2), ", ".join(r.get("served_losing_sources") or []) or "-",
            "yes" if r["accepted"] else "no", arrow(r["ndcg_before"], r["ndcg_after"]),
            signed(r["ndcg_after"] - r["ndcg_before"]), f"{r['fine_tune_seconds']:.0f}",
            "-" if r.get("fine_tune_cpu_seconds") is None else f"{r['fine_tune_cpu_seconds']:.0f}",
            "/".join(f"{x:.1f}" for x in r.get("load_average") or []) or "-",
            "-" if r.get("reindex_seconds") is None else f"{r['reindex_seconds']:.0f}",
            "-" if r.get("peak_rss_mb") is None else f"{r['peak_rss_mb']:.0f}",
        ])
    print_table(header, rows)
    print("\nDecisions:\n")
    for r in runs:
        print(f"- {r['repo']} seed {r['seed']}: {r.get('decision') or r.get('message') or '-'}")

    print("\n## Per codebase over seeds (hand-written queries, nDCG@10)\n")
    header = ["repo", "lang", "seeds", "installed", "base", "outcome per seed", "Δ per seed",
              "spread", "mean Δ", "worse than base beyond spread", "gate Δ (mean)"]
    rows = []
    for name, s in sorted(summary["per_repo"].items(), key=lambda kv: (kv[1]["language"] or "", kv[0])):
        rows.append([name, s["language"] or "-", " ".join(str(x) for x in s["seeds"]),
                     f"{s['accepted']}/{s['runs']}", fmt(s["before"]),
                     " ".join(fmt(a) for a in s["after"]), " ".join(signed(d) for d in s["delta"]),
                     fmt(s["spread"]), signed(s["mean_delta"]), "yes" if s["worse"] else "no",
                     signed(s["served_delta_mean"])])
    print_table(header, rows)
    print(f"\nRuns: {summary['runs']}, adapters installed: {summary['accepted_runs']}; codebases: "
          f"{summary['codebases']}, with an adapter installed at least once: "
          f"{len(summary['codebases_with_adapter'])} ({', '.join(summary['codebases_with_adapter']) or '-'}).")
    print(f"Codebases worse than the base model by more than the seeds' spread: {len(summary['worse'])}"
          f" ({', '.join(summary['worse']) or '-'}).")
    print(f"Mean gain where an adapter was installed: {signed(summary['mean_gain_installed'])} over "
          f"codebases ({signed(summary['mean_gain_installed_runs'])} over runs); mean change over all "
          f"codebases: {signed(summary['mean_delta_all'])} ({fmt(summary['mean_before'])} → "
          f"{fmt(summary['mean_after'])}).")
    print(f"Time in runs: {summary['seconds']:.0f}s ({summary['fine_tune_seconds']:.0f}s fine-tuning).")


def process_tree(pid):
    """pid and its descendants, from /proc (Linux)."""
    pids, i = [pid], 0
    while i < len(pids):
        p = pids[i]
        i += 1
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    pids.extend(int(x) for x in f.read().split())
            except (OSError, ValueError):
                pass
    return pids


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class TreeRssSampler:
    """Samples the summed resident memory of a process and its descendants every `interval` s
    (coder-lsp and its trainer child are alive together); `peak_kb` is the largest sum."""

    def __init__(self, pid, interval=0.5):
        import threading
        self.pid, self.interval, self.peak_kb = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, sum(rss_kb(p) for p in process_tree(self.pid)))
            self._stop.wait(self.interval)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.peak_kb


def last_json_line(text):
    """The last line of text that parses as a JSON object, or None."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def run_fine_tune(binary, root, index_dir, seed, ft_args, log_path, out_path):
    """`coder-lsp fine-tune --json` on index_dir; stderr to log_path, stdout to out_path. Returns
    (parsed JSON, seconds, peak RSS MB of the largest process in the tree from wait4, peak summed
    RSS MB of the tree sampled from /proc, CPU seconds of the tree, its mean load average)."""
    cmd = [binary, "fine-tune", "--root", root, "--index-dir", index_dir, "--json",
           "--seed", str(seed), *ft_args]
    with open(log_path, "w") as log:
        log.write("$ " + shlex.join(cmd) + "\n")
        log.flush()
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
        sampler = TreeRssSampler(proc.pid).start()
        load_before = os.getloadavg()[1]
        out = proc.stdout.read()
        proc.stdout.close()
        tree_peak_kb = sampler.stop()
        # wait4 gives this child's own usage, its waited-for descendants (the trainer) included:
        # ru_maxrss is the largest single process's peak (KiB on Linux).
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        load_after = os.getloadavg()[1]
    cpu_seconds = usage.ru_utime + usage.ru_stime
    with open(out_path, "w") as f:
        f.write(out)
    result = last_json_line(out)
    if proc.returncode != 0 or result is None:
        raise RuntimeError(f"fine-tune exited with {proc.returncode}"
                           f"{'' if result else ' without a JSON line'}; the end of {log_path}:\n"
                           f"{tail(log_path)}")
    return (result, seconds, usage.ru_maxrss / 1024, tree_peak_kb / 1024, cpu_seconds,
            (load_before, load_after))


def finetune_one(binary, repo, tasks, seed, ft_args, top_k):
    """One fine-tuning run on a scratch copy of the repo's index; returns its record."""
    name = repo["name"]
    root = index_root(repo)
    original = os.path.join(INDEXES_DIR, name)
    scratch = os.path.join(FINETUNE_DIR, f"{name}-seed{seed}")
    started = time.perf_counter()
    if os.path.exists(scratch):
        shutil.rmtree(scratch)
    os.makedirs(FINETUNE_DIR, exist_ok=True)
    shutil.copytree(original, scratch)

    print(f"    before: scoring {len(tasks)} queries with the base model", flush=True)
    before = evaluate_repo(binary, repo, tasks, top_k, [], False, index_dir=scratch)
    b = summarize_repo(before)
    print(f"    before: nDCG@10 {b['ndcg10']:.3f} (index {before['index_seconds']:.1f}s)", flush=True)

    log_path, out_path = scratch + ".log", scratch + ".out"
    print(f"    fine-tune: seed {seed} {shlex.join(ft_args)} (stderr: {os.path.relpath(log_path, HERE)})",
          flush=True)
    outcome, ft_seconds, peak_mb, tree_peak_mb, cpu_s, load = run_fine_tune(
        binary, root, scratch, seed, ft_args, log_path, out_path)
    accepted = bool(outcome.get("accepted"))
    has_adapter = os.path.isdir(os.path.join(scratch, "adapter"))
    if accepted != has_adapter:
        raise RuntimeError(f"fine-tune said accepted={accepted} but {scratch}/adapter "
                           f"{'exists' if has_adapter else 'is missing'}")
    print(f"    fine-tune: {ft_seconds:.0f}s ({cpu_s:.0f} CPU s; 5-min load {load[0]:.1f} → {load[1]:.1f}), "
          f"peak {peak_mb:.0f} MB (tree {tree_peak_mb:.0f} MB): "
          f"{outcome.get('message')}", flush=True)
    if accepted:
        after = evaluate_repo(binary, repo, tasks, top_k, [], False, index_dir=scratch)
        a = summarize_repo(after)
        reindex = after["index_seconds"]
        print(f"    after: nDCG@10 {a['ndcg10']:.3f} (re-index {reindex:.1f}s)", flush=True)
    else:
        after, a, reindex = None, b, None

    report_ = outcome.get("report") or {}
    served = report_.get("served") or {}
    train_pairs = report_.get("train_pairs") or {}
    heldout_pairs = report_.get("heldout_pairs") or {}
    return {
        "repo": name, "language": repo["language"], "role": repo["role"], "seed": seed,
        "fine_tune_args": list(ft_args), "top_k": top_k,
        "train_pairs": train_pairs, "heldout_pairs": heldout_pairs,
        "train_pairs_total": pair_total(train_pairs), "heldout_pairs_total": pair_total(heldout_pairs),
        "heldout_ndcg_before": outcome.get("ndcg_before"), "heldout_ndcg_after": outcome.get("ndcg_after"),
        "heldout_queries": outcome.get("heldout_queries"), "heldout_p_value": report_.get("p_value"),
        "served_before": outcome.get("served_before"), "served_after": outcome.get("served_after"),
        "served_queries": outcome.get("served_queries"), "served_p_value": served.get("p_value"),
        "served_losing_sources": served.get("losing_sources") or [],
        "served_stages": served.get("stages"), "served_by_source": served.get("by_source"),
        "served_by_source_ndcg": served.get("by_source_ndcg"),
        "chosen_stage": report_.get("chosen_stage"),
        "decision": report_.get("decision"), "message": outcome.get("message"), "accepted": accepted,
        "queries": b["queries"], "ndcg_before": b["ndcg10"], "ndcg_after": a["ndcg10"],
        "by_category_before": b["by_category"], "by_category_after": a["by_category"],
        "fine_tune_seconds": round(ft_seconds, 1), "fine_tune_cpu_seconds": round(cpu_s, 1),
        # Other work on the machine slows the run: the 5-minute load average at its start and end.
        "load_average": [round(x, 2) for x in load], "cpus": os.cpu_count(),
        "reindex_seconds": None if reindex is None else round(reindex, 1),
        "peak_rss_mb": round(peak_mb, 1), "peak_tree_rss_mb": round(tree_peak_mb, 1),
        "timings": report_.get("timings"),
        "run_seconds": round(time.perf_counter() - started, 1),
        "log": os.path.relpath(log_path, HERE), "scratch": os.path.relpath(scratch, HERE),
        "before": before, "after": after, "fine_tune_output": outcome,
    }


def finetune(binary, repos, seeds, ft_args, top_k, out_path):
    """Every (repo, seed) not yet recorded in out_path: fine-tune on a scratch copy of the index,
    score the hand-written queries before and after. Saves after each run; prints the report."""
    if os.environ.get("CODER_LSP_ADAPTER"):
        raise SystemExit("CODER_LSP_ADAPTER is set: the base model would not be the base model")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    payload = {"kind": "finetune", "runs": [], "failed": [], "invocations": []}
    if out_path and os.path.exists(out_path):
        with open(out_path) as f:
            payload = json.load(f)
        payload.setdefault("failed", [])
        payload.setdefault("invocations", [])
    done = payload["runs"]
    repos = sorted(repos, key=lambda r: (r["language"], r["name"]))
    todo = pending_runs(repos, seeds, ft_args, done)
    skipped = len(repos) * len(seeds) - len(todo)
    print(f"\n{len(todo)} runs to do" + (f", {skipped} already in {out_path}" if skipped else ""),
          flush=True)

    def save():
        if not out_path:
            return
        payload.update({"binary": binary, "date": datetime.datetime.now(datetime.timezone.utc)
                        .isoformat(timespec="seconds"), "summary": finetune_summary(payload["runs"])})
        tmp = out_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(payload, f, indent=1)
        os.replace(tmp, out_path)

    started = time.perf_counter()
    coverage_by_repo = check(repos) if todo else {}
    indexed = set()
    failures = []
    for repo, seed in todo:
        name = repo["name"]
        scored = coverage_by_repo[name][0]
        if name not in indexed:
            if os.path.isdir(os.path.join(INDEXES_DIR, name, "adapter")):
                raise SystemExit(f"{name}: indexes/{name} has an adapter installed; the base would not "
                                 f"be the base model")
            print(f"\n--- {name}: bringing indexes/{name} up to date", flush=True)
            os.makedirs(os.path.join(INDEXES_DIR, name), exist_ok=True)
            run_binary(binary, ["index", "--root", index_root(repo), "--index-dir",
                                os.path.join(INDEXES_DIR, name), "--json"])
            indexed.add(name)
        print(f"\n--- {name} seed {seed}: {len(scored)} queries", flush=True)
        try:
            run = finetune_one(binary, repo, scored, seed, ft_args, top_k)
        except (RuntimeError, OSError, SystemExit, json.JSONDecodeError) as e:
            print(f"    FAILED: {e}", flush=True)
            failure = {"repo": name, "seed": seed, "fine_tune_args": list(ft_args), "error": str(e),
                       "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
            failures.append(failure)
            payload["failed"].append(failure)
            save()
            continue
        payload["runs"] = [r for r in payload["runs"] if run_key(r) != run_key(run)] + [run]
        # A run that succeeds now supersedes its earlier failures.
        payload["failed"] = [f for f in payload["failed"] if run_key(f) != run_key(run)]
        print(f"    done in {run['run_seconds']:.0f}s: queries {run['ndcg_before']:.3f} → "
              f"{run['ndcg_after']:.3f} ({'installed' if run['accepted'] else 'not installed'})",
              flush=True)
        save()
    seconds = time.perf_counter() - started
    payload["invocations"].append({"seconds": round(seconds, 1), "runs": len(todo) - len(failures),
                                   "failed": len(failures), "fine_tune_args": list(ft_args)})
    save()
    wanted = {(r["name"], int(s), tuple(ft_args)) for r in repos for s in seeds}
    runs = [r for r in payload["runs"] if run_key(r) in wanted]
    if runs:
        print_finetune_report(runs, finetune_summary(runs))
    print(f"\nThis invocation: {seconds:.0f}s, {len(todo) - len(failures)} runs done, "
          f"{len(failures)} failed.")
    if out_path:
        print(f"saved {out_path}")
    if failures:
        raise SystemExit(f"{len(failures)} runs failed: "
                         + ", ".join(f"{f['repo']} seed {f['seed']}" for f in failures))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch", help="download, verify and unpack the pinned sources")
    p_check = sub.add_parser("check", help="count annotation targets present in each tree")
    p_check.add_argument("--only", nargs="+", metavar="REPO")
    p_run = sub.add_parser("run", help="index, search and score")
    p_run.add_argument("--binary", required=True, help="the coder-lsp binary")
    p_run.add_argument("--only", nargs="+", metavar="REPO")
    p_run.add_argument("--role", choices=[*ROLES, "all"], default="all")
    p_run.add_argument("--top-k", type=int, default=CUTOFF,
                       help="results asked of `search` per query (reduced to distinct files, cut to 10)")
    p_run.add_argument("--out", help="write everything to this JSON file")
    p_run.add_argument("--extra-args", default="", help='extra `search` arguments, e.g. "--mode lexical"')
    p_run.add_argument("--verbose", action="store_true")
    p_ft = sub.add_parser("finetune", help="per-repository fine-tuning: hand-written queries before and after")
    p_ft.add_argument("--binary", required=True, help="the coder-lsp binary (it trains as `coder-lsp train`)")
    p_ft.add_argument("--only", nargs="+", metavar="REPO")
    p_ft.add_argument("--seeds", nargs="+", type=int, default=[1, 2], metavar="N")
    p_ft.add_argument("--top-k", type=int, default=CUTOFF)
    p_ft.add_argument("--out", help="JSON file: every run is saved there as it ends, and runs already "
                                    "recorded there (same repo, seed and fine-tune arguments) are skipped")
    p_ft.add_argument("--fine-tune-args", default="",
                      help='extra `coder-lsp fine-tune` arguments, e.g. "--max-steps 10"')
    args = parser.parse_args()

    repos = load_repos()
    roles = assign_roles(repos)
    for r in repos:
        if r.get("role") != roles[r["name"]]:
            raise SystemExit(f"{r['name']}: role {r.get('role')!r} in repos.json, the split rule says "
                             f"{roles[r['name']]!r}")
    if getattr(args, "only", None):
        unknown = set(args.only) - {r["name"] for r in repos}
        if unknown:
            raise SystemExit(f"unknown repos: {', '.join(sorted(unknown))}")
        repos = [r for r in repos if r["name"] in args.only]
    if args.cmd == "fetch":
        fetch(repos)
        return
    if args.cmd == "check":
        check(repos)
        return

    if args.cmd == "finetune":
        finetune(os.path.abspath(args.binary), repos, args.seeds, shlex.split(args.fine_tune_args),
                 args.top_k, args.out)
        return

    if args.role != "all":
        repos = [r for r in repos if r["role"] == args.role]
    binary = os.path.abspath(args.binary)
    extra = shlex.split(args.extra_args)
    label = "search " + (" ".join(extra) if extra else "defaults") + f", top-k {args.top_k}"
    coverage_by_repo = check(repos)
    published = load_published()
    results = {}
    started = time.perf_counter()
    for repo in sorted(repos, key=lambda r: (r["language"], r["name"])):
        scored, _dropped, cov = coverage_by_repo[repo["name"]]
        print(f"\n--- {repo['name']}: indexing {os.path.relpath(index_root(repo), HERE)}, "
              f"{len(scored)} queries", flush=True)
        result = evaluate_repo(binary, repo, scored, args.top_k, extra, args.verbose)
        result["coverage"] = cov
        s = summarize_repo(result)
        print(f"    {result['chunks']} chunks, index {result['index_seconds']:.1f}s, search "
              f"{result['search_seconds']:.1f}s, nDCG@10 {s['ndcg10']:.3f}, zero {s['zero']}",
              flush=True)
        results[repo["name"]] = result
    total_s = time.perf_counter() - started
    summary = report(results, {r["name"]: r for r in repos}, published, label)
    print(f"\nTotal time: {total_s:.0f}s")
    if args.out:
        payload = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "binary": binary, "search_args": extra, "top_k": args.top_k, "role": args.role,
            "seconds": round(total_s, 1), "summary": summary, "repos": results,
            "published": {k: {"file": published["methods"][k]["file"],
                              "label": published["methods"][k]["label"]} for k in PUBLISHED_ORDER},
        }
        with open(args.out, "w") as f:
            json.dump(payload, f, indent=1)
        print(f"saved {args.out}")


if __name__ == "__main__":
    main()
