"""Unit tests of the benchmark's scorer: `python3 -m unittest discover -s bench/quality`."""
import json
import math
import os
import sqlite3
import tempfile
import unittest
import zipfile

import quality


def hit(path, name, start, end=None):
    return {"path": path, "name": name, "start_line": start, "end_line": end or start + 5}


class Metrics(unittest.TestCase):
    def test_perfect_ranking_scores_one(self):
        ranked = [0, 1, None]
        self.assertAlmostEqual(quality.ndcg_at(ranked, 2), 1.0)
        self.assertEqual(quality.mrr_at(ranked), 1.0)
        self.assertEqual(quality.recall_at(ranked, 2), 1.0)

    def test_ndcg_discounts_by_rank(self):
        # One relevant target found at rank 3: 1/log2(4) over an ideal of 1.
        self.assertAlmostEqual(quality.ndcg_at([None, None, 0], 1), 1 / math.log2(4))
        # Two targets, one found at rank 1: 1 / (1 + 1/log2(3)).
        self.assertAlmostEqual(quality.ndcg_at([0, None], 2), 1 / (1 + 1 / math.log2(3)))

    def test_a_target_counts_once(self):
        ranked = [0, 0, 0]
        self.assertAlmostEqual(quality.ndcg_at(ranked, 2), 1 / (1 + 1 / math.log2(3)))
        self.assertEqual(quality.recall_at(ranked, 2), 0.5)

    def test_cutoff_at_ten(self):
        ranked = [None] * 10 + [0]
        self.assertEqual(quality.ndcg_at(ranked, 1), 0.0)
        self.assertEqual(quality.mrr_at(ranked), 0.0)
        self.assertEqual(quality.recall_at(ranked, 1), 0.0)
        self.assertAlmostEqual(quality.mrr_at([None, None, None, 0]), 0.25)

    def test_nothing_found_scores_zero(self):
        self.assertEqual(quality.score_query([], [{"path": "a", "name": "f", "start": 1, "end": 9}]),
                         {"ndcg": 0.0, "mrr": 0.0, "recall": 0.0})


class Matching(unittest.TestCase):
    extents = [
        {"path": "src/a.rs", "name": "new", "start": 10, "end": 60},
        {"path": "src/a.rs", "name": "new", "start": 100, "end": 120},
    ]

    def test_path_name_and_lines_must_agree(self):
        hits = [
            hit("src/a.rs", "new", 10),  # the first target
            hit("src/a.rs", "new", 40),  # a later window of the first target
            hit("src/a.rs", "new", 100),  # the second target: same name, another impl
            hit("src/b.rs", "new", 10),  # another file
            hit("src/a.rs", "old", 10),  # another name
            hit("src/a.rs", "new", 70),  # between the two symbols
        ]
        self.assertEqual(quality.match_hits(hits, self.extents), [0, 0, 1, None, None, None])

    def test_a_window_matches_the_target_line_it_holds(self):
        extents = [{"path": "a.cs", "name": "Parse", "start": 50, "end": 50, "windows": True}]
        hits = [
            hit("a.cs", "a.cs", 41, 80),  # the window holding line 50: any name
            hit("a.cs", "a.cs", 1, 40),
            hit("b.cs", "b.cs", 41, 80),
        ]
        self.assertEqual(quality.match_hits(hits, extents), [0, None, None])


class Extents(unittest.TestCase):
    def test_windows_of_one_symbol_extend_the_target(self):
        with tempfile.TemporaryDirectory() as tmp:
            store = os.path.join(tmp, "store.sqlite")
            db = sqlite3.connect(store)
            db.executescript(
                "CREATE TABLE files(id INTEGER PRIMARY KEY, path TEXT, language TEXT);"
                "CREATE TABLE chunks(id INTEGER PRIMARY KEY, file_id INTEGER, name TEXT, kind TEXT,"
                " start_line INTEGER, end_line INTEGER, signature TEXT, container TEXT);"
                "INSERT INTO files VALUES (1, 'a.py', 'python');"
                "INSERT INTO files VALUES (2, 'run.sh', 'text');"
                "INSERT INTO files VALUES (3, 'a.rb', 'ruby');"
                "INSERT INTO chunks VALUES (1, 1, 'run', 'method', 5, 30, 'def run(self)', 'A');"
                "INSERT INTO chunks VALUES (2, 1, 'run', 'method', 31, 50, 'def run(self)', 'A');"
                "INSERT INTO chunks VALUES (3, 1, 'run', 'method', 80, 90, 'def run(self)', 'B');"
                "INSERT INTO chunks VALUES (4, 3, 'a.rb', 'section', 1, 40, 'a.rb', NULL);"
                # A long doc filled the first window: the declaration is in the second.
                "INSERT INTO chunks VALUES (5, 1, 'parse', 'function', 100, 100, 'def parse(t)', NULL);"
                "INSERT INTO chunks VALUES (6, 1, 'parse', 'function', 101, 106, 'def parse(t)', NULL);"
            )
            db.commit()
            db.close()
            got = quality.target_extents(store, [{"path": "a.py", "name": "run", "line": 6},
                                                 {"path": "a.py", "name": "run", "line": 80}])
            self.assertEqual([(e["start"], e["end"]) for e in got], [(5, 50), (80, 90)])
            # The windows before the one holding the target line count too: a hit names the
            # symbol's first line.
            got = quality.target_extents(store, [{"path": "a.py", "name": "parse", "line": 102}])
            self.assertEqual([(e["start"], e["end"]) for e in got], [(100, 106)])
            self.assertEqual(quality.match_hits(
                [{"path": "a.py", "name": "parse", "start_line": 100, "end_line": 106}], got), [0])
            # A name the grammar does not make a symbol there: missed, never matched.
            got = quality.target_extents(store, [{"path": "a.py", "name": "run", "line": 60}])
            self.assertEqual(quality.match_hits(
                [{"path": "a.py", "name": "run", "start_line": 60, "end_line": 60}], got), [None])
            # A file indexed as text windows: the target is its line.
            got = quality.target_extents(store, [{"path": "run.sh", "name": "main", "line": 7}])
            self.assertEqual([(e["start"], e["end"], e["windows"]) for e in got], [(7, 7, True)])
            # A file the binary skipped (minified, too large): its target can match no hit.
            got = quality.target_extents(store, [{"path": "min.js", "name": "f", "line": 3}])
            self.assertEqual(quality.match_hits(
                [{"path": "min.js", "name": "f", "start_line": 3, "end_line": 3}], got), [None])
            # A build without the language's grammar: its name stays, its chunks are windows.
            got = quality.target_extents(store, [{"path": "a.rb", "name": "run", "line": 9}])
            self.assertEqual([(e["start"], e["end"], e["windows"]) for e in got], [(9, 9, True)])


class Queries(unittest.TestCase):
    def test_every_query_file_is_well_formed(self):
        for corpus in quality.load_corpora():
            queries = quality.load_queries(corpus["name"])
            self.assertGreaterEqual(len(queries), corpus.get("min_queries", 50), corpus["name"])
            for q in queries:
                self.assertIn(q["type"], quality.QUERY_TYPES, json.dumps(q))
                self.assertTrue(q["relevant"], q["query"])
                for t in q["relevant"]:
                    self.assertEqual(set(t), {"path", "name", "line"}, q["query"])

    def test_codebases_are_tuning_or_held_out(self):
        corpora = quality.load_corpora()
        roles = [c["role"] for c in corpora]
        self.assertTrue(set(roles) <= {"tuning", "held-out"}, roles)
        # One general held-out codebase; the language codebases (a dozen queries each, measuring
        # one language's symbols against its windows) are never tuned on either.
        general = [c["role"] for c in corpora if "min_queries" not in c]
        self.assertEqual(general.count("held-out"), 1, roles)


class Fetch(unittest.TestCase):
    def test_a_wheel_unpacks_only_its_root(self):
        with tempfile.TemporaryDirectory() as tmp:
            wheel = os.path.join(tmp, "ziglang-0.0.0-py3-none-any.whl")
            with zipfile.ZipFile(wheel, "w") as z:
                z.writestr("ziglang/lib/std/json/static.zig", "pub fn parse() void {}\n")
                z.writestr("ziglang/lib/std/json.zig", "outside the root\n")
                z.writestr("ziglang/zig", "a binary")
            corpus = {"name": "w", "package": "ziglang", "version": "0.0.0", "registry": "pypi",
                      "platform": "any", "sha256": quality.sha256_of(wheel),
                      "root": "ziglang/lib/std/json"}
            saved = quality.CORPORA_DIR, quality.download
            quality.CORPORA_DIR = os.path.join(tmp, "corpora")
            quality.download = lambda corpus, into: wheel
            try:
                quality.fetch([corpus])
                root = quality.corpus_root(corpus)
            finally:
                quality.CORPORA_DIR, quality.download = saved
            self.assertEqual(os.listdir(root), ["static.zig"])
            self.assertEqual(sorted(os.listdir(os.path.join(tmp, "corpora", "w"))), [".fetched", "ziglang"])
            self.assertEqual(os.listdir(os.path.join(tmp, "corpora", "w", "ziglang")), ["lib"])


class FineTuneReport(unittest.TestCase):
    def test_comparison_shows_both_models_and_the_runs(self):
        row = lambda ndcg, mrr: {"ndcg": ndcg, "mrr": mrr, "recall": 1.0, "type": "concept", "query": "q"}
        base = {"a": ({"dense": [row(0.5, 0.5), row(1.0, 1.0)]}, 1.0)}
        tuned = {"a": ({"dense": [row(1.0, 1.0), row(1.0, 1.0)]}, 1.0)}
        outcomes = {"a": {"accepted": True, "heldout_queries": 9, "ndcg_before": 0.4, "ndcg_after": 0.45,
                          "served_queries": 7, "served_before": 0.6, "served_after": 0.65,
                          "message": "installed: served nDCG@10 0.600 -> 0.650",
                          "seconds": 12.3, "report": {"train_pairs": {"text2code": 3, "code2code": 2}}}}
        text = quality.comparison(base, tuned, outcomes, ["dense"])
        self.assertIn("| a | dense | 0.750 | 1.000 | +0.250 | 0.750 | 1.000 |", text)
        self.assertIn("| **all** | dense | **0.750** | **1.000** | **+0.250** |", text)
        self.assertIn("| a | 5 | 9 | 0.400 → 0.450 | 7 | 0.600 → 0.650 | installed | 12 |", text)
        self.assertIn("- a: installed: served nDCG@10 0.600 -> 0.650", text)
        outcomes["a"].update(accepted=False, served_before=None, message="")
        text = quality.comparison(base, tuned, outcomes, ["dense"])
        self.assertIn("| 7 | - | rejected (base model kept) |", text)
        self.assertNotIn("What each run said", text)


if __name__ == "__main__":
    unittest.main()


class Languages(unittest.TestCase):
    FEATURES = {
        "default": ["hub", "lsp", "all-languages"],
        "all-languages": ["lang-rust", "lang-ruby", "lang-php"],
        "lang-rust": [], "lang-ruby": [], "lang-php": [],
    }

    def test_the_windows_build_leaves_out_only_that_grammar(self):
        self.assertEqual(quality.windows_features(self.FEATURES, "ruby"),
                         ["hub", "lsp", "lang-rust", "lang-php"])

    def test_a_language_without_a_grammar_feature_is_refused(self):
        with self.assertRaises(SystemExit) as caught:
            quality.windows_features(self.FEATURES, "haskell")
        self.assertIn("lang-haskell", str(caught.exception))
        self.assertIn("rust, ruby, php", str(caught.exception))

    def test_an_opt_in_language_adds_its_grammar_to_the_default_build(self):
        features = dict(self.FEATURES, **{"lang-haskell": []})
        self.assertEqual(quality.language_builds(features, "haskell"),
                         (["hub", "lsp", "all-languages", "lang-haskell"], None))
        self.assertEqual(quality.language_builds(features, "ruby"),
                         (None, ["hub", "lsp", "lang-rust", "lang-php"]))

    def test_the_real_manifest_gives_a_build_without_one_grammar(self):
        import tomllib
        with open(quality.SERVER_MANIFEST, "rb") as f:
            features = tomllib.load(f)["features"]
        without = quality.windows_features(features, "ruby")
        self.assertNotIn("lang-ruby", without)
        self.assertIn("lang-php", without)
        self.assertNotIn("all-languages", without)
        # Haskell is opt-in: the default build reads it as text.
        with_haskell, windows = quality.language_builds(features, "haskell")
        self.assertIn("lang-haskell", with_haskell)
        self.assertIsNone(windows)

    def test_comparison_pools_queries_and_says_whether_the_goal_is_met(self):
        def rows(*scores):
            return [{"ndcg": s, "mrr": s, "recall": s, "type": "behaviour", "query": str(i)}
                    for i, s in enumerate(scores)]
        windows = {"a": {m: rows(0.5, 0.5) for m in ("hybrid", "dense", "lexical")},
                   "b": {m: rows(1.0) for m in ("hybrid", "dense", "lexical")}}
        symbols = {"a": {m: rows(0.6, 0.6) for m in ("hybrid", "dense", "lexical")},
                   "b": {m: rows(1.0) for m in ("hybrid", "dense", "lexical")}}
        text, gain = quality.language_comparison("ruby", windows, symbols)
        # Pooled over the three queries: (0.5 + 0.5 + 1.0) / 3 → (0.6 + 0.6 + 1.0) / 3.
        self.assertAlmostEqual(gain, 0.2 / 3)
        self.assertIn("| a | 2 | 0.500 → 0.600", text)
        self.assertIn("| **all** | 3 | **0.667 → 0.733**", text)
        self.assertIn("reaches the +0.05", text)
        _, gain = quality.language_comparison("ruby", symbols, windows)
        self.assertLess(gain, 0)
