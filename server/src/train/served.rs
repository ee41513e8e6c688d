//! The gate that decides whether an adapter is installed: held-out questions searched over the
//! whole workspace with the ranking users are served (hybrid: BM25, embeddings, the ranking
//! stack; the very `search_filtered` the CLI, the language server and MCP call), first with the
//! base model and then with each candidate adapter.
//!
//! Ranking a held-out query against the other held-out positives only, as [`crate::train::eval`]
//! does, says little about search: the workspace has many more chunks, and BM25 already finds
//! what shares words with the query. And a query cut from a doc comment finds its symbol by
//! copying while the doc sits in the symbol's chunk. So the evaluation runs on a copy of the
//! workspace's index in which the text each query was made from is removed from its answer's
//! chunk (the mined doc-free chunk replaces it, in the lexical index and the vectors alike).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::index::store::IndexStore;
use crate::index::{Access, Index, IndexConfig, IndexEvent};
use crate::model::{self, LoadedModel, ModelOptions};
use crate::search::{Ranking, SearchFilter, SearchHit, search_filtered};
use crate::workspace::{WalkOptions, canonical_root};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::train::eval::{CUTOFF, ndcg_of, p_value_of_differences};
use crate::train::pairs::{Pair, PairSource, TaskFamily};

/// One held-out question and the symbol that answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedQuery {
    pub query: String,
    pub source: PairSource,
    /// The answer's file, relative to the root.
    pub file: String,
    /// The answer's name.
    pub symbol: String,
    /// What the answer's (first) chunk says without the query's source text, when the query
    /// was cut out of it (a doc comment's summary): it replaces the chunk in the evaluation.
    pub leak_free: Option<String>,
}

impl ServedQuery {
    /// The held-out pairs that ask what users ask: natural language looking for code (doc
    /// summaries, README sections, commit messages, generated questions). Each question once
    /// per answer.
    pub fn from_heldout(pairs: &[Pair]) -> Vec<ServedQuery> {
        let mut seen = HashSet::new();
        pairs
            .iter()
            .filter(|p| p.family == TaskFamily::Text2Code && !p.query.trim().is_empty())
            .filter(|p| seen.insert((p.query.clone(), p.file.clone(), p.symbol.clone())))
            .map(|p| ServedQuery {
                query: p.query.clone(),
                source: p.source,
                file: p.file.clone(),
                symbol: p.symbol.clone(),
                leak_free: (p.source == PairSource::DocComment).then(|| p.positive.clone()),
            })
            .collect()
    }
}

/// What the served-mode evaluation found; part of the fine-tuning report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServedReport {
    /// The ranking the queries were searched with (the one users are served).
    pub mode: String,
    /// Held-out questions searched over the whole workspace.
    pub queries: usize,
    /// Questions per source (`doc_comment`, `readme`, `commit`, `generator`).
    pub by_source: BTreeMap<String, usize>,
    /// Mean nDCG@10 with the base model.
    pub before: f64,
    /// Mean nDCG@10 with the chosen stage's adapter (`None` when no adapter was measured).
    pub after: Option<f64>,
    /// Mean nDCG@10 of each stage's adapter (`None` for a stage that was not a candidate: not
    /// better on the held-out pairs).
    pub stages: Vec<Option<f64>>,
    /// Mean nDCG@10 per source, before and after.
    pub by_source_ndcg: BTreeMap<String, (f64, f64)>,
    /// How likely the chosen adapter's gain is by chance (paired sign-flip test; 1 without a
    /// gain).
    pub p_value: f64,
    /// Sources whose questions the adapter answers worse, beyond chance.
    pub losing_sources: Vec<String>,
    /// Chunks whose query source was cut out of them for the evaluation.
    pub leaks_removed: usize,
    pub seconds: f64,
}

/// A copy of the workspace's index for evaluation, and the questions to ask it.
#[derive(Debug)]
pub struct ServedEval {
    config: IndexConfig,
    model: String,
    options: ModelOptions,
    pub queries: Vec<ServedQuery>,
    /// Chunks whose query source was cut out of them.
    pub leaks_removed: usize,
}

/// How deep the served ranking is searched for a training question's answer when its confusers
/// are mined: the results above the answer are its hard negatives.
const CONFUSER_DEPTH: usize = 20;

/// The least number of questions from one source for its loss to be judged on its own.
const MIN_SOURCE_QUERIES: usize = 5;

impl ServedEval {
    /// Prepares the evaluation index in `dir` (replaced if present): a copy of the store of
    /// `workspace_index` when given (its vectors save embedding the base model again), brought
    /// up to date with the files, then the query sources cut out of their answers.
    pub fn prepare(
        root: &Path,
        walk: WalkOptions,
        workspace_index: Option<&Path>,
        dir: &Path,
        model: &str,
        options: ModelOptions,
        queries: Vec<ServedQuery>,
    ) -> Result<Self> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let store_path = dir.join("store.sqlite");
        if let Some(source) = workspace_index.map(|d| d.join("store.sqlite"))
            && source.is_file()
        {
            let (store, _) = IndexStore::open_as(&source, false)
                .with_context(|| format!("opening {}", source.display()))?;
            store
                .copy_to(&store_path)
                .with_context(|| format!("copying {} for the evaluation", source.display()))?;
        }
        let root = canonical_root(root)?;
        let walk = WalkOptions {
            skip_dir: walk.skip_dir.or_else(|| std::fs::canonicalize(dir).ok()),
            ..walk
        };
        let mut eval = Self {
            config: IndexConfig {
                root,
                dir: dir.to_path_buf(),
                walk,
            },
            model: model.to_string(),
            options,
            queries,
            leaks_removed: 0,
        };
        // In step with the files first (a store copied from an index that was behind, or none),
        // so that no later parse puts a removed doc back.
        let base = eval.load(None)?;
        eval.open_updated(&base)?;
        drop(base);
        eval.leaks_removed = eval.remove_leaks()?;
        Ok(eval)
    }

    fn load(&self, adapter: Option<&Path>) -> Result<LoadedModel> {
        let options = ModelOptions {
            adapter: adapter.map(Path::to_path_buf),
            ..self.options.clone()
        };
        model::load(&self.model, &options).with_context(|| match adapter {
            Some(dir) => format!("loading {} with the adapter {}", self.model, dir.display()),
            None => format!("loading {}", self.model),
        })
    }

    /// The index for `model`, every chunk with a vector.
    fn open_updated(&self, model: &LoadedModel) -> Result<Index> {
        let mut index = Index::open(self.config.clone(), Some(model.key()), Access::WriteWait)?;
        index.update(&model.handle, &mut |_: IndexEvent| {})?;
        Ok(index)
    }

    /// Replaces the first chunk of each doc-comment question's answer with its doc-free text.
    fn remove_leaks(&self) -> Result<usize> {
        let (mut store, _) = IndexStore::open(&self.config.dir.join("store.sqlite"))?;
        let mut replaced = 0;
        let mut done = HashSet::new();
        for query in &self.queries {
            let Some(text) = &query.leak_free else {
                continue;
            };
            let first = store
                .chunks_in_file(&query.file)?
                .into_iter()
                .filter(|c| c.name == query.symbol)
                .min_by_key(|c| c.start_line);
            if let Some(chunk) = first
                && chunk.text != *text
                && done.insert(chunk.id)
            {
                store.replace_chunk_text(chunk.id, text)?;
                replaced += 1;
            }
        }
        Ok(replaced)
    }

    /// nDCG@10 of every question with the base model (`adapter` `None`) or an adapter: the
    /// evaluation index is brought up to date for that model (every chunk embedded by it), then
    /// each question is searched as `coder-lsp search` would.
    pub fn measure(&self, adapter: Option<&Path>) -> Result<Vec<f64>> {
        Ok(self
            .search_all(adapter, CUTOFF)?
            .into_iter()
            .map(|(_, rank)| rank.map_or(0.0, ndcg_of))
            .collect())
    }

    /// Every question searched as `coder-lsp search` would, with the base model (`adapter`
    /// `None`) or an adapter, after bringing the evaluation index up to date for that model: its
    /// first `depth` results, and the answer's rank among them.
    fn search_all(
        &self,
        adapter: Option<&Path>,
        depth: usize,
    ) -> Result<Vec<(Vec<SearchHit>, Option<usize>)>> {
        let model = self.load(adapter)?;
        let index = self.open_updated(&model)?;
        let (ranking, filter) = (Ranking::default(), SearchFilter::default());
        self.queries
            .iter()
            .map(|query| {
                let hits = search_filtered(
                    &index,
                    Some(&model.handle),
                    &query.query,
                    depth,
                    &filter,
                    &ranking,
                )?;
                let rank = hits
                    .iter()
                    .position(|h| h.path == query.file && h.name == query.symbol);
                Ok((hits, rank))
            })
            .collect()
    }

    /// For each question, up to `per_query` chunks that the served ranking (base model) puts
    /// before its answer, best first: the answers a user would be shown instead, lexical false
    /// friends included. Each is the text of the chunk the index stores for the hit (the window
    /// that matched, for a long symbol). A hit named like the answer is skipped (an overload or
    /// another implementation may be right too), and so is any hit when the answer is not found
    /// within the first results (nothing then says the hits are wrong rather than the label).
    pub fn confusers(&self, per_query: usize) -> Result<Vec<Vec<String>>> {
        if per_query == 0 {
            return Ok(vec![Vec::new(); self.queries.len()]);
        }
        let searched = self.search_all(None, CONFUSER_DEPTH)?;
        let (store, _) = IndexStore::open_as(&self.config.dir.join("store.sqlite"), false)?;
        let mut out = Vec::with_capacity(self.queries.len());
        for (query, (hits, answer)) in self.queries.iter().zip(searched) {
            let Some(answer) = answer else {
                out.push(Vec::new());
                continue;
            };
            let mut texts = Vec::new();
            for hit in hits[..answer].iter().filter(|h| h.name != query.symbol) {
                if texts.len() == per_query {
                    break;
                }
                let chunks = store.chunks_in_file(&hit.path)?;
                let text = chunks
                    .iter()
                    .filter(|c| c.name == hit.name && c.start_line <= hit.line)
                    .max_by_key(|c| c.start_line)
                    .map(|c| c.text.clone());
                if let Some(text) = text.filter(|t| !texts.contains(t)) {
                    texts.push(text);
                }
            }
            out.push(texts);
        }
        Ok(out)
    }

    /// Questions per source.
    pub fn by_source(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for query in &self.queries {
            *counts.entry(query.source.as_str().to_string()).or_insert(0) += 1;
        }
        counts
    }

    /// Mean scores per source, before and after.
    pub fn by_source_ndcg(&self, before: &[f64], after: &[f64]) -> BTreeMap<String, (f64, f64)> {
        let mut sums: BTreeMap<String, (f64, f64, usize)> = BTreeMap::new();
        for ((query, b), a) in self.queries.iter().zip(before).zip(after) {
            let entry = sums
                .entry(query.source.as_str().to_string())
                .or_insert((0.0, 0.0, 0));
            entry.0 += b;
            entry.1 += a;
            entry.2 += 1;
        }
        sums.into_iter()
            .map(|(k, (b, a, n))| (k, (b / n as f64, a / n as f64)))
            .collect()
    }

    /// The evaluation index's directory.
    pub fn dir(&self) -> &PathBuf {
        &self.config.dir
    }
}

/// What the gate makes of the served scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub accepted: bool,
    /// Why, in a sentence.
    pub decision: String,
    /// The winning candidate (its stage), when there was one.
    pub chosen: Option<usize>,
    pub p_value: f64,
    pub losing_sources: Vec<String>,
}

/// Decides on the served scores: `before` (base model, per question) against each candidate's
/// (`(stage, per question)`). The best candidate (the later on a tie) is installed only when it
/// beats the base model, beyond chance (paired sign-flip test at `significance`), and no source
/// with enough questions to tell loses beyond chance.
pub fn judge(
    queries: &[ServedQuery],
    before: &[f64],
    candidates: &[(usize, Vec<f64>)],
    significance: f64,
    seed: u64,
) -> Judgement {
    let before_mean = mean(before);
    let Some((stage, after)) = candidates
        .iter()
        .fold(None::<&(usize, Vec<f64>)>, |best, c| match best {
            Some(b) if mean(&b.1) > mean(&c.1) => Some(b),
            _ => Some(c),
        })
    else {
        return Judgement {
            accepted: false,
            decision:
                "not better than the current model on the held-out pairs, so not searched with"
                    .to_string(),
            chosen: None,
            p_value: 1.0,
            losing_sources: Vec::new(),
        };
    };
    let after_mean = mean(after);
    let differences: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    let p_value = p_value_of_differences(&differences, seed);
    let mut losses: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for ((query, b), a) in queries.iter().zip(before).zip(after) {
        losses.entry(query.source.as_str()).or_default().push(b - a);
    }
    let losing_sources: Vec<String> = losses
        .into_iter()
        .filter(|(_, l)| l.len() >= MIN_SOURCE_QUERIES)
        // Only a family that lost can block: a test of "no loss" passes trivially at a
        // significance of 1, which would otherwise refuse every adapter.
        .filter(|(_, l)| l.iter().sum::<f64>() > 0.0)
        .filter(|(_, l)| p_value_of_differences(l, seed) <= significance)
        .map(|(source, _)| source.to_string())
        .collect();
    let measured = format!(
        "{} held-out questions searched over the whole workspace (hybrid): nDCG@10 {before_mean:.3} → {after_mean:.3}",
        queries.len()
    );
    let (accepted, decision) = if after_mean <= before_mean {
        (
            false,
            format!("{measured}: not better than the current model"),
        )
    } else if p_value > significance {
        (
            false,
            format!(
                "{measured}: a gain this small is likely luck (p = {p_value:.2}, above {significance})"
            ),
        )
    } else if !losing_sources.is_empty() {
        (
            false,
            format!(
                "{measured}, but questions from {} got worse beyond chance",
                losing_sources.join(", ")
            ),
        )
    } else {
        (true, format!("{measured} (p = {p_value:.3})"))
    };
    Judgement {
        accepted,
        decision,
        chosen: Some(*stage),
        p_value,
        losing_sources,
    }
}

/// Mean of `values` (0 when empty).
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::train::testing::pair;

    fn questions(sources: &[PairSource]) -> Vec<ServedQuery> {
        sources
            .iter()
            .enumerate()
            .map(|(i, &source)| ServedQuery {
                query: format!("question {i}"),
                source,
                file: "src/lib.rs".into(),
                symbol: format!("f{i}"),
                leak_free: None,
            })
            .collect()
    }

    #[test]
    fn an_adapter_better_on_pairs_but_worse_served_is_refused() {
        // The cheap gate let the stages through (they beat the base model on held-out pairs);
        // searched as users search, they lose.
        let queries = questions(&[PairSource::DocComment; 20]);
        let before = vec![0.8; 20];
        let worse: Vec<f64> = (0..20)
            .map(|i| if i % 4 == 0 { 1.0 } else { 0.5 })
            .collect();
        let judged = judge(
            &queries,
            &before,
            &[(1, worse.clone()), (3, worse)],
            0.05,
            1,
        );
        assert!(!judged.accepted);
        assert!(
            judged.decision.contains("not better"),
            "{}",
            judged.decision
        );
        assert!(
            judged.decision.contains("0.800 → 0.625"),
            "{}",
            judged.decision
        );
    }

    #[test]
    fn a_clear_served_gain_is_installed_and_the_best_stage_chosen() {
        let queries = questions(&[PairSource::DocComment; 20]);
        let before = vec![0.5; 20];
        let good = vec![0.9; 20];
        let better = vec![1.0; 20];
        let judged = judge(
            &queries,
            &before,
            &[(1, good), (2, better.clone()), (3, better)],
            0.05,
            1,
        );
        assert!(judged.accepted, "{}", judged.decision);
        assert_eq!(judged.chosen, Some(3), "the later stage on a tie");
        assert!(judged.p_value <= 0.05);
        // No candidate at all: nothing to install.
        let none = judge(&queries, &before, &[], 0.05, 1);
        assert!(!none.accepted && none.chosen.is_none());
    }

    #[test]
    fn a_lucky_gain_or_a_losing_source_keeps_the_base_model() {
        let queries = questions(&[PairSource::DocComment; 10]);
        let before = vec![0.5; 10];
        let mut slightly = before.clone();
        slightly[0] = 0.6;
        let judged = judge(&queries, &before, &[(1, slightly)], 0.05, 1);
        assert!(!judged.accepted);
        assert!(
            judged.decision.contains("likely luck"),
            "{}",
            judged.decision
        );

        // Doc questions gain a lot, commit questions all lose: the total gains, one family
        // pays for it.
        let mut sources = vec![PairSource::DocComment; 30];
        sources.extend([PairSource::Commit; 8]);
        let queries = questions(&sources);
        let before: Vec<f64> = vec![0.3; 38];
        let mut after = vec![1.0; 30];
        after.extend([0.1; 8]);
        let judged = judge(&queries, &before, &[(2, after)], 0.05, 1);
        assert!(!judged.accepted);
        assert_eq!(judged.losing_sources, vec!["commit"]);
        assert!(
            judged.decision.contains("commit got worse"),
            "{}",
            judged.decision
        );

        // At a significance of 1 any gain is installed: families that gained or held never
        // count as losing, one that lost still does.
        let mut sources = vec![PairSource::DocComment; 6];
        sources.extend([PairSource::Readme; 6]);
        let queries = questions(&sources);
        let before = vec![0.5; 12];
        let mut after = vec![0.6; 6];
        after.extend([0.5; 6]);
        let judged = judge(&queries, &before, &[(1, after.clone())], 1.0, 1);
        assert!(judged.accepted, "{}", judged.decision);
        assert!(judged.losing_sources.is_empty());
        after[6] = 0.4;
        let judged = judge(&queries, &before, &[(1, after)], 1.0, 1);
        assert!(!judged.accepted);
        assert_eq!(judged.losing_sources, vec!["readme"]);
    }

    #[test]
    fn only_natural_language_questions_are_asked_each_once() {
        let mut doc = pair(
            TaskFamily::Text2Code,
            "parse a duration",
            "fn parse_duration() {}",
        );
        doc.source = PairSource::DocComment;
        doc.file = "src/time.rs".into();
        doc.symbol = "parse_duration".into();
        let mut commit = doc.clone();
        commit.source = PairSource::Commit;
        commit.query = "Cap the backoff exponent".into();
        let mut code = doc.clone();
        code.family = TaskFamily::Code2Code;
        code.source = PairSource::Test;
        let queries = ServedQuery::from_heldout(&[doc.clone(), doc.clone(), commit, code]);
        assert_eq!(queries.len(), 2);
        assert_eq!(
            queries[0].leak_free.as_deref(),
            Some("fn parse_duration() {}")
        );
        assert_eq!(queries[1].source, PairSource::Commit);
        assert_eq!(
            queries[1].leak_free, None,
            "a commit message is not in the code"
        );
    }
}
