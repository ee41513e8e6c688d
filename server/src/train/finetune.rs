//! The whole fine-tuning run as one call: hard negatives → evaluate the base model → train →
//! evaluate the adapter → export it (only if it beats the base model) beside a report.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::embed::lora::{ADAPTER_META, ADAPTER_WEIGHTS, AdapterMeta, LoraParams};
use crate::embed::{DeviceSpec, Instructions};
use crate::model::ModelOptions;
use crate::trainer_protocol::Phase;
use crate::workspace::WalkOptions;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::train::encode::Encoder;
use crate::train::eval::{RetrievalMetrics, evaluate, p_value_of_gain, rank_positives};
use crate::train::negatives::{NegativeSettings, merge_served, mine_hard_negatives};
use crate::train::pairs::Pair;
use crate::train::served::{ServedEval, ServedQuery, ServedReport, judge, mean};
use crate::train::training::{
    Event, StageReport, TrainConfig, TrainOutcome, family_counts, stage_adapter_dir, train,
};

/// Where the previous adapter of an output directory is kept when a new one replaces it.
pub const PREVIOUS_DIR: &str = "previous";
/// The run's report, written into the output directory whether or not the adapter is kept.
pub const REPORT_FILE: &str = "fine-tune-report.json";
/// Where checkpoints go by default (inside the output directory); removed after a full run.
pub const CHECKPOINT_DIR: &str = "checkpoint";
/// The default [`FineTuneConfig::adapter_weight`]. Measured with MiniLM on the quality
/// benchmark's hand-written queries, the three adapters a default run installed scored better
/// at half weight than at full weight on two codebases of three (globset nDCG@10 dense 0.493
/// → 0.510, hybrid 0.666 → 0.681; requests 0.852 → 0.876 and 0.899 → 0.910; immer 0.746 →
/// 0.739 and 0.775 → 0.774), and all three at least matched the base model in hybrid ranking.
pub const DEFAULT_ADAPTER_WEIGHT: f64 = 0.5;
/// The default [`FineTuneConfig::significance`]. On the quality benchmark, globset's and immer's
/// adapters (held-out gains of 0.4 to 2.3 points on 129 and 64 queries) changed dense nDCG@10
/// on the hand-written queries by −3.7 to +0.7 points; requests' (3.7 to 5.2 points on 140
/// queries, p ≤ 0.001 at the last) by +1.7 to +3.1 at half weight or lr 1e-4.
pub const DEFAULT_SIGNIFICANCE: f64 = 0.05;

/// What to fine-tune and where the adapter goes.
#[derive(Debug, Clone, PartialEq)]
pub struct FineTuneConfig {
    /// The base model's directory (a BERT model such as all-MiniLM-L6-v2, or a Qwen2 model
    /// such as bge-code-v1).
    pub model_dir: PathBuf,
    /// Where the model trains.
    pub device: DeviceSpec,
    /// The query instructions (Qwen2) the adapter will be used with.
    pub instructions: Instructions,
    /// Receives `adapter.safetensors`, `adapter.json` and the report.
    pub output_dir: PathBuf,
    /// Where checkpoints go (default: `<output_dir>/checkpoint`).
    pub checkpoint_dir: Option<PathBuf>,
    pub train: TrainConfig,
    pub negatives: NegativeSettings,
    /// The exported adapter's update is the trained one times this weight, in (0, 1]: 1 keeps
    /// the trained model, 0.5 lies halfway between it and the base model (see
    /// [`LoraParams::weighted`]). Stages are chosen and the adapter is accepted at this weight.
    pub adapter_weight: f64,
    /// The adapter is installed only when its held-out gain is this unlikely to be chance (the
    /// p-value of a paired sign-flip test over the held-out queries, [`p_value_of_gain`]);
    /// 1 installs any gain.
    pub significance: f64,
    /// The workspace whose served ranking judges the adapter ([`crate::train::served`]). Without it
    /// the adapter is judged on the held-out pairs alone (`coder-lsp train train`).
    pub served: Option<ServedSetup>,
}

/// Where the served-mode gate searches.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedSetup {
    pub root: PathBuf,
    pub walk: WalkOptions,
    /// The workspace's own index: its store (and base-model vectors) is copied for the
    /// evaluation; without it the copy is built from the files.
    pub workspace_index: Option<PathBuf>,
    /// The base model as the index uses it (a directory, hub id or alias).
    pub model: String,
}

impl ServedSetup {
    /// A served-ranking evaluation of `queries` on a leak-free copy of the workspace index in
    /// `dir`, with the base model as `config` runs it.
    fn prepare(
        &self,
        config: &FineTuneConfig,
        dir: &Path,
        queries: Vec<ServedQuery>,
    ) -> Result<ServedEval> {
        let options = ModelOptions {
            device: config.device,
            instructions: config.instructions.clone(),
            adapter: None,
        };
        ServedEval::prepare(
            &self.root,
            self.walk.clone(),
            self.workspace_index.as_deref(),
            dir,
            &self.model,
            options,
            queries,
        )
    }
}

impl FineTuneConfig {
    pub fn new(model_dir: &Path, output_dir: &Path) -> Self {
        Self {
            model_dir: model_dir.to_path_buf(),
            device: DeviceSpec::Cpu,
            instructions: Instructions::default(),
            output_dir: output_dir.to_path_buf(),
            checkpoint_dir: None,
            train: TrainConfig::default(),
            negatives: NegativeSettings::default(),
            adapter_weight: DEFAULT_ADAPTER_WEIGHT,
            significance: DEFAULT_SIGNIFICANCE,
            served: None,
        }
    }

    fn checkpoint_dir(&self) -> PathBuf {
        self.checkpoint_dir
            .clone()
            .unwrap_or_else(|| self.output_dir.join(CHECKPOINT_DIR))
    }
}

/// Seconds spent in each part of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub load_s: f64,
    pub negatives_s: f64,
    pub evaluate_base_s: f64,
    pub train_s: f64,
    pub evaluate_adapter_s: f64,
    pub total_s: f64,
    pub seconds_per_step: f64,
}

/// What a run did and found; serialised as the JSON report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FineTuneReport {
    /// Whether the adapter beat the base model on held-out pairs, beyond chance
    /// ([`FineTuneReport::p_value`] at most [`FineTuneReport::significance`]), and was exported.
    pub accepted: bool,
    /// The exported adapter's directory (when accepted).
    pub adapter_dir: Option<PathBuf>,
    pub base_fingerprint: String,
    pub train_pairs: BTreeMap<String, usize>,
    pub heldout_pairs: BTreeMap<String, usize>,
    /// Training pairs that got at least one hard negative.
    pub pairs_with_negatives: usize,
    /// Of those, the pairs with a negative from the served ranking (reports written before it
    /// existed read as 0).
    #[serde(default)]
    pub pairs_with_served_negatives: usize,
    pub stages: Vec<StageReport>,
    pub before: RetrievalMetrics,
    /// The chosen adapter's metrics (the best of [`FineTuneReport::after_stage`]).
    pub after: RetrievalMetrics,
    /// Held-out metrics of the adapter as it was after each curriculum stage (`null` for a
    /// stage whose factors were not kept).
    #[serde(default)]
    pub after_stage: Vec<Option<RetrievalMetrics>>,
    /// Which stage's adapter is the outcome (1-based): the one with the best held-out nDCG@10,
    /// since a later stage can overfit a small repository's pairs.
    #[serde(default)]
    pub chosen_stage: usize,
    /// The weight of the exported adapter's update (reports written before weights existed
    /// read as 1).
    #[serde(default = "one")]
    pub adapter_weight: f64,
    /// The chosen stage's adapter at full weight, for comparison (`null` when the weight is 1).
    #[serde(default)]
    pub after_full_weight: Option<RetrievalMetrics>,
    /// How likely the held-out gain of [`FineTuneReport::after`] over
    /// [`FineTuneReport::before`] is by chance (1 without a gain; reports written before the
    /// test existed read as 0).
    #[serde(default)]
    pub p_value: f64,
    /// The largest p-value at which the adapter is accepted (older reports: 1, any gain).
    #[serde(default = "one")]
    pub significance: f64,
    /// The served-mode gate's findings: held-out questions searched over the whole workspace
    /// with the served ranking, base model against each candidate (`null` when the adapter was
    /// judged on the held-out pairs alone).
    #[serde(default)]
    pub served: Option<ServedReport>,
    /// Why the adapter was installed or not, in a sentence.
    #[serde(default)]
    pub decision: String,
    pub settings: TrainConfig,
    pub negatives: NegativeSettings,
    pub timings: Timings,
}

/// Runs the pipeline on `train` and `heldout` pairs (split by file by the caller), reporting
/// progress to `on_event` (`Break` stops the run; a later run with the same settings resumes
/// from the last finished stage). The adapter is exported to `config.output_dir` only if it
/// improves nDCG@10 on the held-out pairs; an adapter already there moves to `previous/`.
pub fn fine_tune(
    config: &FineTuneConfig,
    mut train_pairs: Vec<Pair>,
    heldout: Vec<Pair>,
    mut on_event: impl FnMut(&Event) -> ControlFlow<()>,
) -> Result<FineTuneReport> {
    anyhow::ensure!(!train_pairs.is_empty(), "no training pairs");
    anyhow::ensure!(
        !heldout.is_empty(),
        "no held-out pairs to evaluate the adapter on"
    );
    for (name, value) in [
        ("adapter weight", config.adapter_weight),
        ("significance level", config.significance),
    ] {
        anyhow::ensure!(
            value > 0.0 && value <= 1.0,
            "the {name} must be in (0, 1], got {value}"
        );
    }
    let total = Instant::now();
    let phase = |phase: Phase, on_event: &mut dyn FnMut(&Event) -> ControlFlow<()>| match on_event(
        &Event::Phase { phase },
    ) {
        ControlFlow::Continue(()) => Ok(Instant::now()),
        ControlFlow::Break(()) => Err(anyhow::anyhow!(
            "fine-tuning stopped before {}",
            phase.describe()
        )),
    };

    let clock = phase(Phase::Load, &mut on_event)?;
    let base_fingerprint = crate::model::fingerprint(&config.model_dir)
        .with_context(|| format!("fingerprinting {}", config.model_dir.display()))?;
    let device = config.device.open()?;
    let encoder = Encoder::load(
        &config.model_dir,
        config.train.max_tokens,
        &device,
        &config.instructions,
    )?;
    let load_s = clock.elapsed().as_secs_f64();

    let clock = phase(Phase::Negatives, &mut on_event)?;
    let base_ranks = mine_hard_negatives(&encoder, None, &mut train_pairs, &config.negatives)?;
    let pairs_with_served_negatives = match &config.served {
        Some(setup) if config.negatives.served > 0 => {
            served_negatives(setup, config, &mut train_pairs)?
        }
        _ => 0,
    };
    let negatives_s = clock.elapsed().as_secs_f64();

    let clock = phase(Phase::EvaluateBase, &mut on_event)?;
    let (before_ranks, _) = rank_positives(&encoder, None, &heldout)?;
    let before = RetrievalMetrics::from_ranks(&before_ranks);
    let evaluate_base_s = clock.elapsed().as_secs_f64();

    let clock = phase(Phase::Train, &mut on_event)?;
    let checkpoint = config.checkpoint_dir();
    let outcome = train(
        &encoder,
        &train_pairs,
        &base_ranks,
        &config.train,
        Some(&checkpoint),
        &mut on_event,
    )?;
    let train_s = clock.elapsed().as_secs_f64();

    let clock = phase(Phase::EvaluateAdapter, &mut on_event)?;
    let (stage_ranks, chosen_stage) =
        evaluate_stages(&encoder, config, &outcome, &checkpoint, &heldout)?;
    let after_stage: Vec<Option<RetrievalMetrics>> = stage_ranks
        .iter()
        .map(|ranks| ranks.as_deref().map(RetrievalMetrics::from_ranks))
        .collect();
    // The last stage always has ranks, so the chosen one does.
    let after_ranks = stage_ranks[chosen_stage - 1]
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("stage {chosen_stage} has no held-out metrics"))?;
    let mut after = RetrievalMetrics::from_ranks(after_ranks);
    let mut p_value = p_value_of_gain(&before_ranks, after_ranks, config.train.seed);
    let mut chosen_stage = chosen_stage;
    let evaluate_adapter_pairs_s = clock.elapsed().as_secs_f64();

    // The served-mode gate: the candidates that beat the base model on the held-out pairs are
    // searched for with the workspace's own ranking; the best of them is the outcome.
    let served = match &config.served {
        None => None,
        Some(setup) => {
            let clock = phase(Phase::EvaluateServed, &mut on_event)?;
            let mut served = served_gate(
                setup,
                config,
                &encoder,
                &outcome,
                &checkpoint,
                &heldout,
                &after_stage,
                before.ndcg_at_10,
            )?;
            if let Some(gate) = &mut served {
                gate.report.seconds = clock.elapsed().as_secs_f64();
                if let Some(stage) = gate.chosen_stage {
                    chosen_stage = stage;
                    if let Some(ranks) = stage_ranks[stage - 1].as_deref() {
                        after = RetrievalMetrics::from_ranks(ranks);
                        p_value = p_value_of_gain(&before_ranks, ranks, config.train.seed);
                    }
                }
            }
            Some(served)
        }
    };
    let clock = Instant::now();
    let trained = if chosen_stage == after_stage.len() {
        outcome.lora
    } else {
        stage_lora(&encoder, config, &checkpoint, chosen_stage)?
    };
    let after_full_weight = if config.adapter_weight == 1.0 {
        None
    } else {
        Some(evaluate(&encoder, Some(&trained), &heldout)?)
    };
    let chosen = trained.weighted(config.adapter_weight)?;
    let evaluate_adapter_s = evaluate_adapter_pairs_s + clock.elapsed().as_secs_f64();

    let pairs_gain = after.ndcg_at_10 > before.ndcg_at_10;
    let (accepted, decision, served) = match served {
        // Judged on the held-out pairs alone.
        None => {
            let accepted = pairs_gain && p_value <= config.significance;
            let decision = if accepted {
                format!("a gain beyond chance on the held-out pairs (p = {p_value:.3})")
            } else if pairs_gain {
                format!("a gain this small on the held-out pairs is likely luck (p = {p_value:.2}, above {})", config.significance)
            } else {
                "not better than the current model on the held-out pairs".to_string()
            };
            (accepted, decision, None)
        }
        Some(None) => (
            false,
            "no held-out questions (doc comments, README sections, commit messages) to search for, so the adapter cannot be judged on the ranking you are served".to_string(),
            None,
        ),
        Some(Some(gate)) => (gate.accepted, gate.decision, Some(gate.report)),
    };
    let mut report = FineTuneReport {
        accepted,
        adapter_dir: accepted.then(|| config.output_dir.clone()),
        base_fingerprint: base_fingerprint.clone(),
        train_pairs: family_counts(&train_pairs),
        heldout_pairs: family_counts(&heldout),
        pairs_with_negatives: train_pairs
            .iter()
            .filter(|p| !p.negatives.is_empty())
            .count(),
        pairs_with_served_negatives,
        stages: outcome.stages.clone(),
        before,
        after,
        after_stage,
        chosen_stage,
        adapter_weight: config.adapter_weight,
        after_full_weight,
        p_value,
        significance: config.significance,
        served,
        decision,
        settings: config.train.clone(),
        negatives: config.negatives.clone(),
        timings: Timings {
            load_s,
            negatives_s,
            evaluate_base_s,
            train_s,
            evaluate_adapter_s,
            total_s: 0.0,
            seconds_per_step: outcome.seconds_per_step,
        },
    };

    // "export" only when there is an adapter to install; a rejected run just writes its report.
    phase(
        if accepted {
            Phase::Export
        } else {
            Phase::Report
        },
        &mut on_event,
    )?;
    std::fs::create_dir_all(&config.output_dir)
        .with_context(|| format!("creating {}", config.output_dir.display()))?;
    if accepted {
        keep_previous(&config.output_dir)?;
        let mut meta = AdapterMeta::new(&base_fingerprint, encoder.architecture());
        meta.training = serde_json::to_value(&config.train)?;
        meta.metrics = serde_json::json!({
            "before": before,
            "after": after,
            "stage": chosen_stage,
            "weight": config.adapter_weight,
            "p_value": p_value,
        });
        chosen.save(&config.output_dir, &meta)?;
    }
    // The run is complete: its checkpoint would only make a later run skip its stages.
    if checkpoint.exists() {
        std::fs::remove_dir_all(&checkpoint)
            .with_context(|| format!("removing the checkpoint {}", checkpoint.display()))?;
    }
    report.timings.total_s = total.elapsed().as_secs_f64();
    let path = config.output_dir.join(REPORT_FILE);
    std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(report)
}

/// What the served-mode gate decided.
struct ServedGate {
    accepted: bool,
    decision: String,
    /// The stage whose adapter won in served mode (`None` when none was measured).
    chosen_stage: Option<usize>,
    report: ServedReport,
}

/// Adds the served ranking's confusers to the training questions' negatives (see
/// [`ServedEval::confusers`]), searched over a copy of the workspace index from which each
/// question's source text is cut (so a doc summary does not find its answer by copying).
/// Returns how many pairs got one.
fn served_negatives(
    setup: &ServedSetup,
    config: &FineTuneConfig,
    train_pairs: &mut [Pair],
) -> Result<usize> {
    let queries = ServedQuery::from_heldout(train_pairs);
    if queries.is_empty() {
        return Ok(0);
    }
    let dir = config.checkpoint_dir().join("negatives-index");
    let eval = setup.prepare(config, &dir, queries)?;
    let confusers = eval.confusers(config.negatives.served)?;
    let by_question: HashMap<(String, String, String), Vec<String>> = eval
        .queries
        .iter()
        .zip(confusers)
        .map(|(q, c)| ((q.query.clone(), q.file.clone(), q.symbol.clone()), c))
        .collect();
    drop(eval);
    // The copy is only needed for the search; the gate makes its own later.
    if let Err(error) = std::fs::remove_dir_all(&dir) {
        tracing::warn!("could not remove {}: {error}", dir.display());
    }
    Ok(merge_served(train_pairs, &by_question, &config.negatives))
}

/// Runs the served-mode gate (see [`crate::train::served`]); `None` when the held-out pairs hold no
/// natural-language question to search for.
#[allow(clippy::too_many_arguments)]
fn served_gate(
    setup: &ServedSetup,
    config: &FineTuneConfig,
    encoder: &Encoder,
    outcome: &TrainOutcome,
    checkpoint: &Path,
    heldout: &[Pair],
    after_stage: &[Option<RetrievalMetrics>],
    before_pairs: f64,
) -> Result<Option<ServedGate>> {
    let queries = ServedQuery::from_heldout(heldout);
    if queries.is_empty() {
        return Ok(None);
    }
    let work = checkpoint.join("served");
    let eval = setup.prepare(config, &work.join("index"), queries)?;
    let before = eval.measure(None)?;
    // Only the stages that beat the base model on the held-out pairs are worth embedding the
    // whole workspace for.
    let mut stages: Vec<Option<f64>> = vec![None; after_stage.len()];
    let mut best: Option<(usize, Vec<f64>)> = None;
    let base_fingerprint = crate::model::fingerprint(&config.model_dir)?;
    for (i, metrics) in after_stage.iter().enumerate() {
        if !metrics.is_some_and(|m| m.ndcg_at_10 > before_pairs) {
            continue;
        }
        // A stage that trained nothing is the stage before it.
        if i > 0 && outcome.stages.get(i).is_some_and(|s| s.steps == 0) && stages[i - 1].is_some() {
            stages[i] = stages[i - 1];
            continue;
        }
        let stage = i + 1;
        let lora = if stage == after_stage.len() {
            outcome.lora.weighted(config.adapter_weight)?
        } else {
            stage_lora(encoder, config, checkpoint, stage)?.weighted(config.adapter_weight)?
        };
        let dir = work.join(format!("stage-{stage}"));
        lora.save(
            &dir,
            &AdapterMeta::new(&base_fingerprint, encoder.architecture()),
        )?;
        let scores = eval.measure(Some(&dir))?;
        let score = mean(&scores);
        stages[i] = Some(score);
        // The later stage on a tie, as on the held-out pairs.
        if best.as_ref().is_none_or(|(_, b)| score >= mean(b)) {
            best = Some((stage, scores));
        }
    }
    let candidates: Vec<(usize, Vec<f64>)> = best.into_iter().collect();
    let judged = judge(
        &eval.queries,
        &before,
        &candidates,
        config.significance,
        config.train.seed,
    );
    let after = candidates.first().map(|(_, scores)| scores.as_slice());
    let report = ServedReport {
        mode: "hybrid".to_string(),
        queries: eval.queries.len(),
        by_source: eval.by_source(),
        before: mean(&before),
        after: after.map(mean),
        stages,
        by_source_ndcg: eval.by_source_ndcg(&before, after.unwrap_or(&before)),
        p_value: judged.p_value,
        losing_sources: judged.losing_sources,
        leaks_removed: eval.leaks_removed,
        seconds: 0.0,
    };
    Ok(Some(ServedGate {
        accepted: judged.accepted,
        decision: judged.decision,
        chosen_stage: judged.chosen,
        report,
    }))
}

/// Held-out ranks (each held-out query's rank of its positive) of the adapter after each stage
/// of `outcome` (read back from the checkpoint; the last is the outcome itself), at the
/// configured adapter weight, and the 1-based stage with the best nDCG@10
/// (then MRR@10; the later stage on a tie). A stage without steps repeats the one before; a
/// stage whose factors are not in the checkpoint (a run resumed from an older version, which
/// kept only the last) is not a candidate and has no ranks.
fn evaluate_stages(
    encoder: &Encoder,
    config: &FineTuneConfig,
    outcome: &TrainOutcome,
    checkpoint: &Path,
    heldout: &[Pair],
) -> Result<(Vec<Option<Vec<usize>>>, usize)> {
    let stages = outcome.stages.len();
    let weighted = |lora: &LoraParams| -> Result<Vec<usize>> {
        let lora = lora.weighted(config.adapter_weight)?;
        Ok(rank_positives(encoder, Some(&lora), heldout)?.0)
    };
    let mut ranks: Vec<Option<Vec<usize>>> = Vec::with_capacity(stages);
    for (index, stage) in outcome.stages.iter().enumerate() {
        let completed = index + 1;
        let unchanged = stage.steps == 0 && completed < stages;
        let measured = match ranks.last() {
            Some(previous) if unchanged => previous.clone(),
            _ if completed == stages => Some(weighted(&outcome.lora)?),
            _ if !stage_adapter_dir(checkpoint, completed).exists() => None,
            _ => Some(weighted(&stage_lora(
                encoder, config, checkpoint, completed,
            )?)?),
        };
        ranks.push(measured);
    }
    if ranks.is_empty() {
        // No stage at all: the outcome is the (fresh) adapter itself.
        ranks.push(Some(weighted(&outcome.lora)?));
    }
    let best = ranks
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_deref().map(|r| (i, RetrievalMetrics::from_ranks(r))))
        .max_by(|(_, a), (_, b)| {
            a.ndcg_at_10
                .total_cmp(&b.ndcg_at_10)
                .then(a.mrr_at_10.total_cmp(&b.mrr_at_10))
        })
        .map_or(ranks.len(), |(i, _)| i + 1);
    Ok((ranks, best))
}

/// The adapter as the checkpoint saved it after `completed` stages.
fn stage_lora(
    encoder: &Encoder,
    config: &FineTuneConfig,
    checkpoint: &Path,
    completed: usize,
) -> Result<LoraParams> {
    let lora = LoraParams::new(
        &encoder.lora_modules(),
        &config.train.lora,
        config.train.seed,
        encoder.device(),
    )?;
    lora.restore(&stage_adapter_dir(checkpoint, completed))?;
    Ok(lora)
}

/// The value older reports lack for the adapter weight (whole) and the significance level (any
/// gain was accepted).
fn one() -> f64 {
    1.0
}

/// Moves an adapter in `dir` to `dir/previous/` (replacing an older one there).
fn keep_previous(dir: &Path) -> Result<()> {
    if !dir.join(ADAPTER_WEIGHTS).is_file() {
        return Ok(());
    }
    let previous = dir.join(PREVIOUS_DIR);
    if previous.exists() {
        std::fs::remove_dir_all(&previous)
            .with_context(|| format!("removing {}", previous.display()))?;
    }
    std::fs::create_dir_all(&previous)
        .with_context(|| format!("creating {}", previous.display()))?;
    for file in [ADAPTER_WEIGHTS, ADAPTER_META] {
        let from = dir.join(file);
        if from.is_file() {
            std::fs::rename(&from, previous.join(file))
                .with_context(|| format!("moving {} to {}", from.display(), previous.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::train::pairs::TaskFamily;
    use crate::train::testing::{pair, pairs, tiny_bert_dir};

    #[test]
    fn keep_previous_moves_the_old_adapter_aside() {
        let dir = tempfile::tempdir().unwrap();
        keep_previous(dir.path()).unwrap();
        assert!(!dir.path().join(PREVIOUS_DIR).exists(), "nothing to keep");
        for round in ["1", "2"] {
            std::fs::write(dir.path().join(ADAPTER_WEIGHTS), round).unwrap();
            std::fs::write(dir.path().join(ADAPTER_META), round).unwrap();
            keep_previous(dir.path()).unwrap();
            assert!(!dir.path().join(ADAPTER_WEIGHTS).exists());
            let kept = dir.path().join(PREVIOUS_DIR);
            assert_eq!(
                std::fs::read_to_string(kept.join(ADAPTER_WEIGHTS)).unwrap(),
                round
            );
            assert_eq!(
                std::fs::read_to_string(kept.join(ADAPTER_META)).unwrap(),
                round
            );
        }
    }

    #[test]
    fn weights_and_significance_outside_zero_to_one_are_refused_before_any_work() {
        let out = tempfile::tempdir().unwrap();
        for value in [0.0, -0.5, 1.5, f64::NAN] {
            for (name, set) in [
                (
                    "adapter weight",
                    (|c, v| c.adapter_weight = v) as fn(&mut FineTuneConfig, f64),
                ),
                ("significance", |c, v| c.significance = v),
            ] {
                let mut config = FineTuneConfig::new(&tiny_bert_dir(), out.path());
                set(&mut config, value);
                let mut events = 0;
                let error = fine_tune(&config, pairs(), pairs(), |_| {
                    events += 1;
                    ControlFlow::Continue(())
                })
                .unwrap_err();
                assert!(error.to_string().contains(name), "{error}");
                assert_eq!(events, 0);
            }
        }
    }

    #[test]
    fn stages_whose_factors_are_missing_are_no_candidates() {
        let checkpoint = tempfile::tempdir().unwrap();
        let mut config = FineTuneConfig::new(&tiny_bert_dir(), checkpoint.path());
        config.train.batch_size = 3;
        config.train.max_tokens = 32;
        config.train.max_steps_per_stage = Some(1);
        let encoder = crate::train::testing::encoder(&tiny_bert_dir(), 32);
        let outcome = train(
            &encoder,
            &pairs(),
            &[9; 6],
            &config.train,
            Some(checkpoint.path()),
            &mut |_| ControlFlow::Continue(()),
        )
        .unwrap();
        let heldout = pairs();
        let (all, _) =
            evaluate_stages(&encoder, &config, &outcome, checkpoint.path(), &heldout).unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.iter().all(Option::is_some), "{all:?}");
        // An older version kept only the last stage's factors.
        std::fs::remove_dir_all(stage_adapter_dir(checkpoint.path(), 1)).unwrap();
        let (kept, chosen) =
            evaluate_stages(&encoder, &config, &outcome, checkpoint.path(), &heldout).unwrap();
        assert_eq!(kept[0], None);
        assert_eq!(kept[1..], all[1..]);
        assert!(chosen > 1, "stage 1 cannot be chosen");
    }

    #[test]
    fn a_tiny_fine_tune_reports_and_exports_only_a_better_adapter() {
        let out = tempfile::tempdir().unwrap();
        std::fs::write(out.path().join(ADAPTER_WEIGHTS), "old").unwrap();
        let mut config = FineTuneConfig::new(&tiny_bert_dir(), out.path());
        config.train.batch_size = 3;
        config.train.max_tokens = 32;
        config.train.learning_rate = 1e-3;
        config.train.max_steps_per_stage = Some(1);
        // Three held-out queries can never show a gain beyond chance: install any gain.
        config.significance = 1.0;
        // The tiny random model scores all texts alike (cosines 0.8 to 0.99), so the filter
        // against false negatives would leave none: keep every neighbour.
        config.negatives.max_ratio = 10.0;
        let heldout = vec![
            pair(
                TaskFamily::Text2Code,
                "split text into words",
                "fn words(s: &str) -> Vec<&str> { s.split_whitespace().collect() }",
            ),
            pair(
                TaskFamily::Text2Code,
                "largest value in a list",
                "fn max_of(v: &[i32]) -> i32 { *v.iter().max().unwrap() }",
            ),
            pair(
                TaskFamily::Code2Code,
                "assert!(is_even(4));",
                "fn is_even(n: u32) -> bool { n % 2 == 0 }",
            ),
        ];
        let mut phases = Vec::new();
        let mut steps = 0;
        let report = fine_tune(&config, pairs(), heldout.clone(), |e| {
            match e {
                Event::Phase { phase } => phases.push(*phase),
                Event::Step { .. } => steps += 1,
                _ => {}
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        // The server reads the report through the protocol's head: it must keep fitting.
        let head: crate::trainer_protocol::ReportHead =
            serde_json::from_value(serde_json::to_value(&report).unwrap()).unwrap();
        assert_eq!(head.accepted, report.accepted);
        assert_eq!(head.after.ndcg_at_10, report.after.ndcg_at_10);
        assert_eq!(head.after.queries, report.after.queries);
        assert_eq!(head.decision, report.decision);
        assert!(!head.decision.is_empty());
        let last = if report.accepted {
            Phase::Export
        } else {
            Phase::Report
        };
        assert_eq!(
            phases,
            [
                Phase::Load,
                Phase::Negatives,
                Phase::EvaluateBase,
                Phase::Train,
                Phase::EvaluateAdapter,
                last
            ]
        );
        assert_eq!(report.stages.len(), 3);
        // One step in the warm-up and the mixed stage; the cool-down keeps only code pairs the
        // base model ranks below its top 3, which among six positives may be none.
        assert_eq!((report.stages[0].steps, report.stages[1].steps), (1, 1));
        assert!(report.stages[2].steps <= 1);
        assert_eq!(steps, report.stages.iter().map(|s| s.steps).sum::<usize>());
        assert_eq!(report.train_pairs["text2code"], 2);
        assert_eq!(report.train_pairs["code2code"], 2);
        assert_eq!(report.heldout_pairs["text2code"], 2);
        assert!(report.pairs_with_negatives > 0);
        assert_eq!(report.before.queries, 3);
        assert!(
            !out.path().join(CHECKPOINT_DIR).exists(),
            "checkpoint left behind"
        );
        let written: FineTuneReport =
            serde_json::from_slice(&std::fs::read(out.path().join(REPORT_FILE)).unwrap()).unwrap();
        assert_eq!(written, report);

        // One evaluation per stage; the outcome is the best of them.
        assert_eq!(report.after_stage.len(), report.stages.len());
        assert!((1..=report.stages.len()).contains(&report.chosen_stage));
        assert_eq!(
            Some(report.after),
            report.after_stage[report.chosen_stage - 1]
        );
        for stage in &report.after_stage {
            let stage = stage.expect("every stage was kept");
            assert!(stage.ndcg_at_10 <= report.after.ndcg_at_10, "{report:?}");
        }
        assert_eq!(report.significance, 1.0);
        assert!((0.0..=1.0).contains(&report.p_value), "{report:?}");
        assert_eq!(
            report.accepted,
            report.after.ndcg_at_10 > report.before.ndcg_at_10
        );
        let full = report
            .after_full_weight
            .expect("measured at full weight too");
        assert_eq!(full.queries, report.after.queries);
        let current = std::fs::read(out.path().join(ADAPTER_WEIGHTS)).unwrap();
        if report.accepted {
            let kept = out.path().join(PREVIOUS_DIR).join(ADAPTER_WEIGHTS);
            assert_eq!(std::fs::read_to_string(kept).unwrap(), "old");
            let meta = AdapterMeta::read(out.path()).unwrap();
            assert_eq!(meta.base_fingerprint, report.base_fingerprint);
            assert_eq!(meta.metrics["stage"], report.chosen_stage);
            // What was exported is the chosen stage's adapter at half weight: read with the
            // rank and alpha its metadata gives, it scores what the report says.
            assert_eq!(report.adapter_weight, DEFAULT_ADAPTER_WEIGHT);
            assert_eq!(meta.metrics["weight"], DEFAULT_ADAPTER_WEIGHT);
            assert_eq!(meta.alpha, config.train.lora.alpha * DEFAULT_ADAPTER_WEIGHT);
            let encoder = crate::train::testing::encoder(&tiny_bert_dir(), 32);
            let exported = LoraParams::new(
                &encoder.lora_modules(),
                &crate::embed::lora::LoraConfig {
                    rank: meta.rank,
                    alpha: meta.alpha,
                    targets: meta.target_modules.clone(),
                },
                config.train.seed,
                encoder.device(),
            )
            .unwrap();
            exported.restore(out.path()).unwrap();
            let metrics =
                crate::train::eval::evaluate(&encoder, Some(&exported), &heldout).unwrap();
            assert_eq!(metrics, report.after);
        } else {
            assert_eq!(
                current, b"old",
                "a rejected adapter must not replace the current one"
            );
        }
    }
}
