"""Unit tests of the semble-benchmark scorer (no network, no binary)."""
import json
import math
import os
import unittest

import semble

HERE = os.path.dirname(os.path.abspath(__file__))


class PathMatching(unittest.TestCase):
    def test_equal_and_suffix_after_slash(self):
        self.assertTrue(semble.path_matches("tokio/src/sync/mutex.rs", "tokio/src/sync/mutex.rs"))
        self.assertTrue(semble.path_matches("/abs/checkout/tokio/src/sync/mutex.rs", "tokio/src/sync/mutex.rs"))
        self.assertTrue(semble.path_matches("src/sync/mutex.rs", "tokio/src/sync/mutex.rs"))

    def test_suffix_must_start_at_a_slash(self):
        self.assertFalse(semble.path_matches("tokio/src/sync/rwmutex.rs", "mutex.rs"))
        self.assertFalse(semble.path_matches("xmux.go", "mux.go"))
        self.assertTrue(semble.path_matches("middleware/mux.go", "mux.go"))

    def test_backslashes_are_slashes(self):
        self.assertTrue(semble.path_matches("lib\\rack\\request.rb", "lib/rack/request.rb"))

    def test_different_files(self):
        self.assertFalse(semble.path_matches("include/nlohmann/detail/json_pointer.hpp",
                                             "include/nlohmann/json_pointer.hpp"))


class DistinctFiles(unittest.TestCase):
    def test_keeps_first_occurrence_order_and_cuts(self):
        paths = ["a.py", "b.py", "a.py", "c.py", "b.py"] + [f"f{i}.py" for i in range(20)]
        files = semble.distinct_files(paths, 10)
        self.assertEqual(files[:3], ["a.py", "b.py", "c.py"])
        self.assertEqual(len(files), 10)
        self.assertEqual(len(set(files)), 10)

    def test_short_lists_stay_short(self):
        self.assertEqual(semble.distinct_files(["x", "x", "y"]), ["x", "y"])


class Ndcg(unittest.TestCase):
    def test_single_target_at_rank_one_and_three(self):
        self.assertAlmostEqual(semble.ndcg_at([1], 1), 1.0)
        self.assertAlmostEqual(semble.ndcg_at([3], 1), 1 / math.log2(4))
        self.assertEqual(semble.ndcg_at([None], 1), 0.0)
        self.assertEqual(semble.ndcg_at([11], 1), 0.0)

    def test_two_targets(self):
        ideal = 1 + 1 / math.log2(3)
        self.assertAlmostEqual(semble.ndcg_at([1, 2], 2), 1.0)
        self.assertAlmostEqual(semble.ndcg_at([2, None], 2), (1 / math.log2(3)) / ideal)

    def test_duplicate_targets_in_one_file_count_once(self):
        # Both targets are found in the same file (rank 1): one gain, but the ideal wants two.
        score, ranks = semble.score_files(["lib/sinatra/base.rb", "lib/sinatra/main.rb"],
                                          ["lib/sinatra/base.rb", "lib/sinatra/base.rb"])
        self.assertEqual(ranks, [1, 1])
        self.assertAlmostEqual(score, 1 / (1 + 1 / math.log2(3)))

    def test_ideal_is_capped_at_ten(self):
        ranks = list(range(1, 11))
        self.assertAlmostEqual(semble.ndcg_at(ranks, 15), 1.0)

    def test_score_files_reduces_to_distinct_files(self):
        hits = ["a.go", "a.go", "a.go", "b.go"]
        score, ranks = semble.score_files(hits, ["b.go"])
        self.assertEqual(ranks, [2])
        self.assertAlmostEqual(score, 1 / math.log2(3))

    def test_no_targets_scores_zero(self):
        self.assertEqual(semble.ndcg_at([], 0), 0.0)


class Categories(unittest.TestCase):
    def test_infer_category(self):
        self.assertEqual(semble.infer_category("JoinSet"), "symbol")
        self.assertEqual(semble.infer_category("  Semaphore  "), "symbol")
        self.assertEqual(semble.infer_category("how does routing work"), "architecture")
        self.assertEqual(semble.infer_category("How are routes registered"), "architecture")
        self.assertEqual(semble.infer_category("however this is semantic"), "semantic")
        self.assertEqual(semble.infer_category("radix tree path matching"), "semantic")

    def test_annotation_category_wins(self):
        tasks = semble.load_tasks("libuv")
        cats = {t["query"]: t["category"] for t in tasks}
        self.assertEqual(cats["shared library dlopen and dlsym wrapper"], "api")
        self.assertEqual(cats["IDNA internationalized domain name encoding"], "keyword")

    def test_targets_are_relevant_then_secondary_with_spans_as_paths(self):
        tasks = {t["query"]: t for t in semble.load_tasks("fastapi")}
        self.assertEqual(tasks["Depends"]["targets"], ["fastapi/params.py", "fastapi/param_functions.py"])


class PrefixMapping(unittest.TestCase):
    def test_prefix_plus_hit(self):
        self.assertEqual(semble.to_repo_path("tokio/src/", "sync/mutex.rs"), "tokio/src/sync/mutex.rs")
        self.assertEqual(semble.to_repo_path("", "./gin.go"), "gin.go")
        self.assertEqual(semble.to_repo_path("src/", "unix\\core.c"), "src/unix/core.c")

    def test_every_repo_prefix_matches_semble_root(self):
        for repo in semble.load_repos():
            root = repo["semble"]["benchmark_root"]
            prefix = repo["prefix"]
            self.assertTrue(prefix == "" or prefix.endswith("/"), repo["name"])
            if root:
                self.assertTrue(prefix.startswith(root.rstrip("/") + "/") or prefix == root + "/",
                                repo["name"])


class TestsAndDocs(unittest.TestCase):
    def test_classification(self):
        for p in ["tests/test_client.py", "tokio/tests/io.rs", "src/__tests__/a.ts",
                  "spec/rack/request_spec.rb", "mux_test.go", "a/b.test.ts", "x.spec.js",
                  "gson/src/test/java/FooTest.java", "README.md", "docs/index.rst", "NOTES.txt",
                  "lib/conftest.py"]:
            self.assertTrue(semble.is_test_or_doc(p), p)
        for p in ["tokio/src/sync/mutex.rs", "lib/rack/request.rb", "gin.go", "contest.py",
                  "latest.go", "src/testing_utils_not.rs"]:
            self.assertFalse(semble.is_test_or_doc(p), p)


class Split(unittest.TestCase):
    def test_alternates_over_sorted_language_name(self):
        repos = [{"name": n, "language": l} for n, l in
                 [("zod", "typescript"), ("gin", "go"), ("chi", "go"), ("libuv", "c"), ("trpc", "typescript")]]
        roles = semble.assign_roles(repos)
        # sorted: (c, libuv) (go, chi) (go, gin) (typescript, trpc) (typescript, zod)
        self.assertEqual(roles, {"libuv": "tuning", "chi": "held-out", "gin": "tuning",
                                 "trpc": "held-out", "zod": "tuning"})

    def test_fresh_repos_keep_their_role_and_do_not_shift_the_split(self):
        repos = [{"name": n, "language": l} for n, l in
                 [("zod", "typescript"), ("gin", "go"), ("chi", "go"), ("libuv", "c"), ("trpc", "typescript")]]
        before = semble.assign_roles(repos)
        repos.append({"name": "cobra", "language": "go", "role": "fresh"})
        after = semble.assign_roles(repos)
        self.assertEqual(after.pop("cobra"), "fresh")
        self.assertEqual(after, before)

    def test_repos_json_follows_the_rule(self):
        repos = semble.load_repos()
        roles = semble.assign_roles(repos)
        for r in repos:
            self.assertEqual(r["role"], roles[r["name"]], r["name"])
        self.assertLessEqual(abs(sum(r["role"] == "tuning" for r in repos)
                                 - sum(r["role"] == "held-out" for r in repos)), 1)


class Data(unittest.TestCase):
    def test_every_repo_has_annotations_sources_and_published_numbers(self):
        published = semble.load_published()
        for repo in semble.load_repos():
            self.assertTrue(os.path.exists(os.path.join(HERE, "annotations", repo["name"] + ".json")))
            self.assertTrue(repo["sources"])
            for s in repo["sources"]:
                self.assertRegex(s["sha256"], r"^[0-9a-f]{64}$")
            self.assertIn(repo["name"], published["methods"]["semble"]["ndcg10"])

    def test_search_output_parsing(self):
        out = "\n".join(json.dumps({"query": q, "results": [{"path": p} for p in ps]})
                        for q, ps in [("a", ["x.rs", "y.rs"]), ("b", [])]) + "\nnoise\n"
        self.assertEqual(semble.parse_search_output(out, 2), [["x.rs", "y.rs"], []])
        with self.assertRaises(SystemExit):
            semble.parse_search_output(out, 3)


def ft_run(repo, seed, before, after, accepted, args=(), served=(0.5, 0.5), heldout=(0.4, 0.4)):
    return {"repo": repo, "language": "go", "seed": seed, "fine_tune_args": list(args),
            "ndcg_before": before, "ndcg_after": after, "accepted": accepted,
            "served_before": served[0], "served_after": served[1],
            "heldout_ndcg_before": heldout[0], "heldout_ndcg_after": heldout[1],
            "run_seconds": 100, "fine_tune_seconds": 90}


def ft_seeds(table):
    """Runs from (repo, before, [(after, accepted) per seed, seeds counted from 1])."""
    return [ft_run(repo, seed, before, after, accepted)
            for repo, before, outcomes in table
            for seed, (after, accepted) in enumerate(outcomes, start=1)]


class FineTuneSummary(unittest.TestCase):
    def test_spread(self):
        self.assertAlmostEqual(semble.spread([0.1, -0.2, 0.05]), 0.3)
        self.assertEqual(semble.spread([0.4]), 0)
        self.assertIsNone(semble.spread([]))

    def test_rejected_everywhere_is_no_change(self):
        s = semble.finetune_summary([ft_run("chi", 1, 0.8, 0.8, False), ft_run("chi", 2, 0.8, 0.8, False)])
        chi = s["per_repo"]["chi"]
        self.assertEqual(chi["spread"], 0)
        self.assertEqual(chi["mean_delta"], 0)
        self.assertFalse(chi["worse"])
        self.assertEqual(chi["accepted"], 0)
        self.assertIsNone(chi["gain_installed"])
        self.assertEqual(s["accepted_runs"], 0)
        self.assertEqual(s["codebases_with_adapter"], [])
        self.assertIsNone(s["mean_gain_installed"])
        self.assertEqual(s["mean_delta_all"], 0)

    def test_worse_only_beyond_the_seeds_spread(self):
        runs = ft_seeds([
            # Both seeds lose 0.1: mean loss 0.1, spread 0: worse.
            ("chi", 0.8, [(0.7, True), (0.7, True)]),
            # One seed loses 0.1, the other keeps the base: mean loss 0.05, spread 0.1: not worse.
            ("cobra", 0.6, [(0.5, True), (0.6, False)]),
            # Gains are never worse.
            ("gson", 0.5, [(0.6, True), (0.7, True)]),
        ])
        s = semble.finetune_summary(runs)
        self.assertTrue(s["per_repo"]["chi"]["worse"])
        self.assertFalse(s["per_repo"]["cobra"]["worse"])
        self.assertAlmostEqual(s["per_repo"]["cobra"]["spread"], 0.1)
        self.assertAlmostEqual(s["per_repo"]["cobra"]["mean_delta"], -0.05)
        self.assertFalse(s["per_repo"]["gson"]["worse"])
        self.assertEqual(s["worse"], ["chi"])

    def test_single_seed_any_loss_is_worse(self):
        s = semble.finetune_summary([ft_run("chi", 1, 0.8, 0.79, True)])
        self.assertTrue(s["per_repo"]["chi"]["worse"])
        s = semble.finetune_summary([ft_run("chi", 1, 0.8, 0.8 - 1e-12, True)])
        self.assertFalse(s["per_repo"]["chi"]["worse"])

    def test_gains_where_installed(self):
        runs = ft_seeds([
            ("chi", 0.8, [(0.9, True), (0.8, False)]),
            ("gson", 0.5, [(0.4, True), (0.6, True)]),
            ("cobra", 0.6, [(0.6, False), (0.6, False)]),
        ])
        s = semble.finetune_summary(runs)
        # chi: its one installed seed gained 0.1; gson: (-0.1 + 0.1) / 2 = 0; cobra has none.
        self.assertAlmostEqual(s["per_repo"]["chi"]["gain_installed"], 0.1)
        self.assertAlmostEqual(s["per_repo"]["gson"]["gain_installed"], 0.0)
        self.assertEqual(s["codebases_with_adapter"], ["chi", "gson"])
        self.assertAlmostEqual(s["mean_gain_installed"], 0.05)
        self.assertAlmostEqual(s["mean_gain_installed_runs"], 0.1 / 3)
        # Over all codebases, rejections count as no change: (0.05 + 0 + 0) / 3.
        self.assertAlmostEqual(s["mean_delta_all"], 0.05 / 3)
        self.assertEqual(s["accepted_runs"], 3)
        self.assertEqual(s["runs"], 6)
        self.assertEqual(s["seconds"], 600)

    def test_served_and_heldout_deltas(self):
        s = semble.finetune_summary([ft_run("chi", 1, 0.8, 0.8, False, served=(0.5, 0.6), heldout=(0.3, 0.5)),
                                     ft_run("chi", 2, 0.8, 0.8, False, served=(0.4, None))])
        self.assertAlmostEqual(s["per_repo"]["chi"]["served_delta_mean"], 0.1)
        self.assertAlmostEqual(s["per_repo"]["chi"]["heldout_delta_mean"], 0.1)


class FineTuneResume(unittest.TestCase):
    def test_skips_recorded_runs_with_the_same_arguments(self):
        repos = [{"name": "chi"}, {"name": "gson"}]
        done = [ft_run("chi", 1, 0.8, 0.8, False), ft_run("gson", 2, 0.5, 0.5, False, args=["--max-steps", "10"])]
        todo = semble.pending_runs(repos, [1, 2], [], done)
        self.assertEqual([(r["name"], s) for r, s in todo], [("chi", 2), ("gson", 1), ("gson", 2)])
        todo = semble.pending_runs(repos, [1, 2], ["--max-steps", "10"], done)
        self.assertEqual([(r["name"], s) for r, s in todo], [("chi", 1), ("chi", 2), ("gson", 1)])

    def test_last_json_line(self):
        out = 'noise\n{"accepted": true}\n{"accepted": false, "message": "m"}\n{broken\n'
        self.assertEqual(semble.last_json_line(out), {"accepted": False, "message": "m"})
        self.assertIsNone(semble.last_json_line("no json here\n"))

    @unittest.skipUnless(os.path.isdir("/proc/self/task"), "needs Linux /proc")
    def test_process_tree_rss_of_this_process(self):
        self.assertIn(os.getpid(), semble.process_tree(os.getpid()))
        self.assertGreater(semble.rss_kb(os.getpid()), 0)
        self.assertEqual(semble.rss_kb(-1), 0)


if __name__ == "__main__":
    unittest.main()
