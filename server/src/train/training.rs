//! Training LoRA adapters: InfoNCE over in-batch and hard negatives, AdamW on the factors, and
//! CodeR's three-stage curriculum (text-heavy warm-up, everything, code-only cool-down on the
//! pairs the base model gets wrong). A checkpoint written after each stage lets an interrupted
//! run resume at the next one; the same seed gives the same losses.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use crate::embed::InputKind;
use crate::embed::lora::{AdapterMeta, LoraConfig, LoraParams, SeededRng};
use anyhow::{Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

use crate::train::encode::Encoder;
use crate::train::pairs::Pair;

/// The default cap on a run's steps (see [`TrainConfig::max_steps`]).
pub const DEFAULT_MAX_STEPS: usize = 200;

/// Pairs whose positive the base model already ranks above this (0-based) are left out of the
/// cool-down: CodeR's "drop the easy ones".
pub const EASY_RANK: usize = 3;

/// Added to the logits of documents that must not count as negatives (a duplicate of the
/// query's own positive): far below any real logit, so softmax gives them 0.
const EXCLUDED_LOGIT: f64 = -1.0e4;

/// Training settings (the defaults suit MiniLM on a CPU).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub lora: LoraConfig,
    pub seed: u64,
    /// Pairs per step.
    pub batch_size: usize,
    /// Sequences (queries, positives and hard negatives alike) embedded with an autograd graph
    /// at once. A step with more embeds its batch without a graph, takes the loss's gradient
    /// for each vector, then re-embeds sub-batches of this many with a graph and adds up their
    /// gradients (a gradient cache): the same gradients for a second forward pass, with only
    /// one sub-batch's activations alive instead of the whole batch's.
    pub sub_batch_size: usize,
    /// Every input is cut to this many tokens.
    pub max_tokens: usize,
    /// InfoNCE temperature τ.
    pub temperature: f64,
    /// Hard negatives of each pair used in its step (from [`Pair::negatives`]).
    pub negatives_per_pair: usize,
    /// Learning rate of the warm-up and mixed stages (and of the single stage without a
    /// curriculum).
    pub learning_rate: f64,
    /// Learning rate of the cool-down.
    pub cooldown_learning_rate: f64,
    pub weight_decay: f64,
    /// Passes over each stage's pairs.
    pub epochs: usize,
    /// Caps each stage's steps (for quick runs).
    pub max_steps_per_stage: Option<usize>,
    /// Caps the steps of the whole run: each stage keeps its share of the cap, in proportion
    /// to its steps (a seeded sample of its batches). The default keeps the training on a
    /// 20k-line repository within about 15 minutes on a 2-core CPU; `None` trains on every pair.
    #[serde(default)]
    pub max_steps: Option<usize>,
    /// CodeR's three stages; `false` trains one stage on all pairs, for comparison.
    pub curriculum: bool,
}

impl TrainConfig {
    /// The defaults for a model of `architecture` (`model_type`). Qwen2 (CodeR's bge-code-v1)
    /// gets CodeR's own settings, rank-32 LoRA at 1e-4 cooling down at 1e-5 and τ = 0.02; BERT
    /// the defaults measured for rank-8 LoRA on MiniLM.
    pub fn for_architecture(architecture: &str) -> Self {
        let mut config = Self {
            lora: LoraConfig::for_architecture(architecture),
            ..Self::default()
        };
        if architecture == "qwen2" {
            config.learning_rate = 1e-4;
            config.cooldown_learning_rate = 1e-5;
            config.temperature = 0.02;
        }
        config
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            lora: LoraConfig::default(),
            seed: 42,
            // With one graph per step, memory grew with the batch: on MiniLM at 128 tokens with 2
            // hard negatives per pair, batch 8 peaked at 3.4–3.8 GB and batch 16 at 6.6 GB (the
            // goal is 4 GB). The gradient cache bounds it by the sub-batch instead.
            batch_size: 8,
            // The whole trainer's peak and time per step, MiniLM at 128 tokens, batch 8 with 2
            // hard negatives per pair (32 sequences a step), 30 steps on model2vec's pairs on a
            // 2-core CPU: one graph 3.8 GB at 2.4 s; sub-batches of 16 sequences 2.1 GB, of 8
            // 1.19 GB at 3.0–3.1 s, of 4 0.74 GB at 3.0–3.1 s, of 2 0.51 GB at 3.3 s. The second
            // forward pass costs about a quarter more time; below 4 the matmuls get too small.
            // Batch 16 peaks at the same 0.74 GB.
            sub_batch_size: 4,
            max_tokens: 128,
            // CodeR trains at 0.02. MiniLM was trained at 0.05 (sentence-transformers' in-batch
            // loss at its default scale of 20), and on the quality benchmark 0.05 gained more on
            // held-out pairs (requests 0.396 → 0.448 against → 0.437 at 0.02, globset 0.383 →
            // 0.396 against → 0.393) and on the hand-written queries (dense nDCG@10 over all
            // 256: +0.4 points against −0.3).
            temperature: 0.05,
            negatives_per_pair: 2,
            // CodeR uses 1e-4 (and 1e-5 to cool down) for rank-32 LoRA on a 1.5B model. For
            // rank-8 LoRA on MiniLM, 200 steps on rusqlite (1,777 pairs) moved held-out nDCG@10
            // from 0.452 to 0.454 at 1e-4 and to 0.485 at 5e-4; the cool-down keeps CodeR's ratio.
            learning_rate: 5e-4,
            cooldown_learning_rate: 5e-5,
            weight_decay: 0.01,
            epochs: 1,
            max_steps_per_stage: None,
            // 3.5 s per step on a 2-core CPU (MiniLM, batch 8, 128 tokens) with one graph per step,
            // about 4.4 s with the gradient cache's second forward pass (a quarter more: 2.5 →
            // 3.1 s on model2vec's pairs): 200 steps are about 15 minutes, with hard negatives and
            // both evaluations about 16.5.
            max_steps: Some(DEFAULT_MAX_STEPS),
            curriculum: true,
        }
    }
}

impl TrainConfig {
    fn validate(&self) -> Result<()> {
        self.lora.validate().map_err(anyhow::Error::msg)?;
        anyhow::ensure!(self.batch_size >= 1, "batch_size must be at least 1");
        anyhow::ensure!(
            self.sub_batch_size >= 1,
            "sub_batch_size must be at least 1"
        );
        anyhow::ensure!(self.epochs >= 1, "epochs must be at least 1");
        anyhow::ensure!(
            self.temperature > 0.0,
            "temperature must be positive, got {}",
            self.temperature
        );
        for lr in [self.learning_rate, self.cooldown_learning_rate] {
            anyhow::ensure!(lr > 0.0, "learning rates must be positive, got {lr}");
        }
        Ok(())
    }
}

/// A stage of the curriculum (shared with the server through the trainer protocol).
pub use crate::trainer_protocol::CurriculumStage as Stage;

/// One stage's pairs and learning rate.
#[derive(Debug, Clone, PartialEq)]
pub struct StagePlan {
    pub stage: Stage,
    /// Indices into the training pairs.
    pub pairs: Vec<usize>,
    pub learning_rate: f64,
}

/// The stages for `pairs`, given each pair's rank of its positive under the base model.
pub fn plan_stages(config: &TrainConfig, pairs: &[Pair], base_ranks: &[usize]) -> Vec<StagePlan> {
    let all: Vec<usize> = (0..pairs.len()).collect();
    if !config.curriculum {
        return vec![StagePlan {
            stage: Stage::All,
            pairs: all,
            learning_rate: config.learning_rate,
        }];
    }
    let select = |keep: &dyn Fn(usize) -> bool| all.iter().copied().filter(|&i| keep(i)).collect();
    vec![
        StagePlan {
            stage: Stage::TextWarmup,
            pairs: select(&|i| pairs[i].family.is_text_query()),
            learning_rate: config.learning_rate,
        },
        StagePlan {
            stage: Stage::Mixed,
            pairs: all.clone(),
            learning_rate: config.learning_rate,
        },
        StagePlan {
            stage: Stage::CodeCooldown,
            pairs: select(&|i| {
                !pairs[i].family.is_text_query()
                    && base_ranks.get(i).is_none_or(|&r| r >= EASY_RANK)
            }),
            learning_rate: config.cooldown_learning_rate,
        },
    ]
}

/// Progress, for a progress bar or JSON lines: the trainer protocol's events.
pub use crate::trainer_protocol::TrainerEvent as Event;

/// What one stage did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    pub stage: Stage,
    pub pairs: usize,
    pub steps: usize,
    pub learning_rate: f64,
    /// Loss of every step, in order.
    pub losses: Vec<f32>,
    pub mean_loss: f32,
    pub seconds: f64,
}

/// Trained adapters and how training went.
#[derive(Debug)]
pub struct TrainOutcome {
    pub lora: LoraParams,
    pub stages: Vec<StageReport>,
    /// Steps run by this call (a resumed run does not count the stages it skipped).
    pub steps_run: usize,
    pub seconds_per_step: f64,
}

/// Training stopped because the event callback asked it to; the checkpoint holds every stage
/// finished before.
#[derive(Debug, thiserror::Error)]
#[error("training stopped after {completed_stages} of {stages} stages; run it again to resume")]
pub struct Stopped {
    pub completed_stages: usize,
    pub stages: usize,
}

/// `checkpoint.json`: which stages are done, for which settings and pairs.
#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    config: TrainConfig,
    pairs_digest: String,
    completed_stages: usize,
    step: usize,
    stages: Vec<StageReport>,
}

const CHECKPOINT_FILE: &str = "checkpoint.json";

/// Trains adapters on `pairs` (`base_ranks` from hard-negative mining decides the cool-down).
/// With a `checkpoint` directory, each finished stage is saved there and a run with the same
/// settings and pairs resumes after the last one. `on_event` may return `Break` to stop: the
/// run then fails with [`Stopped`].
pub fn train(
    encoder: &Encoder,
    pairs: &[Pair],
    base_ranks: &[usize],
    config: &TrainConfig,
    checkpoint: Option<&Path>,
    on_event: &mut dyn FnMut(&Event) -> ControlFlow<()>,
) -> Result<TrainOutcome> {
    config.validate()?;
    anyhow::ensure!(!pairs.is_empty(), "no training pairs");
    let plans = plan_stages(config, pairs, base_ranks);
    let tokens = PairTokens::new(encoder, pairs, config.negatives_per_pair)?;
    let lora = LoraParams::new(
        &encoder.lora_modules(),
        &config.lora,
        config.seed,
        encoder.device(),
    )?;
    let schedules: Vec<Vec<Vec<usize>>> = plans
        .iter()
        .enumerate()
        .map(|(i, plan)| schedule(config, plan, &tokens, i))
        .collect();
    let mut schedules = schedules;
    if let Some(cap) = config.max_steps {
        fit_budget(&mut schedules, cap);
    }
    let total_steps: usize = schedules.iter().map(Vec::len).sum();

    let digest = pairs_digest(pairs)?;
    let mut reports = Vec::new();
    let mut step = 0;
    if let Some(dir) = checkpoint
        && let Some(saved) = read_checkpoint(dir, config, &digest)?
    {
        lora.restore(&dir.join(stage_dir(saved.completed_stages)))?;
        reports = saved.stages;
        step = saved.step;
        if let ControlFlow::Break(()) = on_event(&Event::Resumed {
            completed_stages: saved.completed_stages,
            step,
        }) {
            return Err(stopped(reports.len(), plans.len()));
        }
    }

    let started = Instant::now();
    let first_step = step;
    for (index, (plan, batches)) in plans.iter().zip(&schedules).enumerate().skip(reports.len()) {
        let stage_started = Instant::now();
        if let ControlFlow::Break(()) = on_event(&Event::StageStarted {
            stage: plan.stage,
            index: index + 1,
            stages: plans.len(),
            pairs: plan.pairs.len(),
            steps: batches.len(),
        }) {
            return Err(stopped(index, plans.len()));
        }
        // A fresh optimiser per stage: each stage has its own learning rate, as in CodeR's
        // annealing, and the checkpoint needs only the factors.
        let mut optimiser = AdamW::new(
            lora.vars(),
            ParamsAdamW {
                lr: plan.learning_rate,
                weight_decay: config.weight_decay,
                ..ParamsAdamW::default()
            },
        )?;
        let mut losses = Vec::with_capacity(batches.len());
        for batch in batches {
            let inputs = StepInputs::new(pairs, &tokens, batch);
            let (loss, grads) = step_gradients(encoder, &lora, &inputs, config)?;
            optimiser.step(&grads)?;
            anyhow::ensure!(loss.is_finite(), "the loss became {loss} at step {step}");
            losses.push(loss);
            step += 1;
            let per_step = started.elapsed().as_secs_f64() / (step - first_step) as f64;
            if let ControlFlow::Break(()) = on_event(&Event::Step {
                stage: plan.stage,
                step,
                total_steps,
                loss,
                eta_seconds: per_step * (total_steps - step) as f64,
            }) {
                return Err(stopped(index, plans.len()));
            }
        }
        let report = StageReport {
            stage: plan.stage,
            pairs: plan.pairs.len(),
            steps: losses.len(),
            learning_rate: plan.learning_rate,
            mean_loss: mean(&losses),
            losses,
            seconds: stage_started.elapsed().as_secs_f64(),
        };
        reports.push(report);
        if let Some(dir) = checkpoint {
            let saved = Saved {
                lora: &lora,
                architecture: encoder.architecture(),
                config,
                digest: &digest,
            };
            write_checkpoint(dir, &saved, step, &reports)?;
        }
        let finished = Event::StageFinished {
            stage: plan.stage,
            mean_loss: reports[index].mean_loss,
            seconds: reports[index].seconds,
        };
        if let (ControlFlow::Break(()), true) = (on_event(&finished), index + 1 < plans.len()) {
            return Err(stopped(index + 1, plans.len()));
        }
    }
    let steps_run = step - first_step;
    Ok(TrainOutcome {
        lora,
        stages: reports,
        steps_run,
        seconds_per_step: if steps_run == 0 {
            0.0
        } else {
            started.elapsed().as_secs_f64() / steps_run as f64
        },
    })
}

fn stopped(completed_stages: usize, stages: usize) -> anyhow::Error {
    Stopped {
        completed_stages,
        stages,
    }
    .into()
}

fn mean(values: &[f32]) -> f32 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f32>() / values.len() as f32
    }
}

/// Token ids of every pair's query, positive and the hard negatives a step uses.
struct PairTokens {
    query: Vec<Vec<u32>>,
    positive: Vec<Vec<u32>>,
    negatives: Vec<Vec<Vec<u32>>>,
}

impl PairTokens {
    fn new(encoder: &Encoder, pairs: &[Pair], negatives_per_pair: usize) -> Result<Self> {
        let mut tokens = Self {
            query: Vec::with_capacity(pairs.len()),
            positive: Vec::with_capacity(pairs.len()),
            negatives: Vec::with_capacity(pairs.len()),
        };
        for pair in pairs {
            tokens
                .query
                .push(encoder.tokens(&pair.query, pair.family.query_kind())?);
            tokens
                .positive
                .push(encoder.tokens(&pair.positive, InputKind::Document)?);
            tokens.negatives.push(
                pair.negatives
                    .iter()
                    .take(negatives_per_pair)
                    .map(|n| encoder.tokens(n, InputKind::Document))
                    .collect::<Result<_>>()?,
            );
        }
        Ok(tokens)
    }

    fn length(&self, pair: usize) -> usize {
        self.query[pair].len() + self.positive[pair].len()
    }
}

/// The batches of one stage, in the order they are trained: pairs sorted by length (ties in a
/// seeded random order) and cut into batches, whose order is then shuffled, per epoch.
fn schedule(
    config: &TrainConfig,
    plan: &StagePlan,
    tokens: &PairTokens,
    stage_index: usize,
) -> Vec<Vec<usize>> {
    // Each stage has its own stream, so a resumed run trains the same batches.
    let mut rng = SeededRng::new(config.seed ^ (0x5EED_0000 + stage_index as u64));
    let mut out = Vec::new();
    for _ in 0..config.epochs {
        let mut keyed: Vec<(usize, u64, usize)> = plan
            .pairs
            .iter()
            .map(|&p| (tokens.length(p), rng.next_u64(), p))
            .collect();
        keyed.sort_unstable();
        let sorted: Vec<usize> = keyed.into_iter().map(|(_, _, p)| p).collect();
        let mut batches: Vec<Vec<usize>> = sorted
            .chunks(config.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        // A lone pair has no in-batch negatives: it joins the batch before it.
        if batches.len() > 1 && batches.last().is_some_and(|b| b.len() == 1) {
            let last = batches.pop().unwrap_or_default();
            if let Some(previous) = batches.last_mut() {
                previous.extend(last);
            }
        }
        rng.shuffle(&mut batches);
        out.extend(batches);
    }
    if let Some(cap) = config.max_steps_per_stage {
        out.truncate(cap);
    }
    out
}

/// Shrinks the stages' batch lists so that together they hold at most `cap` steps, each stage
/// keeping its share (at least one step while it has any). The batches are already in a seeded
/// random order, so keeping the first ones samples the stage.
fn fit_budget(schedules: &mut [Vec<Vec<usize>>], cap: usize) {
    let total: usize = schedules.iter().map(Vec::len).sum();
    if total <= cap || cap == 0 {
        return;
    }
    for batches in schedules.iter_mut() {
        let share = (batches.len() * cap).div_ceil(total).max(1);
        batches.truncate(share);
    }
    // Rounding up may overshoot by a step per stage: take those from the largest stages.
    while schedules.iter().map(Vec::len).sum::<usize>() > cap {
        let Some(largest) = schedules.iter_mut().max_by_key(|b| b.len()) else {
            break;
        };
        if largest.len() <= 1 {
            break;
        }
        largest.pop();
    }
}

/// One step's inputs: the batch's queries, then its documents (every positive, then the hard
/// negatives), and the mask added to the logits `(queries, documents)`, row-major.
struct StepInputs {
    queries: usize,
    sequences: Vec<Vec<u32>>,
    mask: Vec<f32>,
}

impl StepInputs {
    fn new(pairs: &[Pair], tokens: &PairTokens, batch: &[usize]) -> Self {
        let mut sequences: Vec<Vec<u32>> = batch.iter().map(|&p| tokens.query[p].clone()).collect();
        sequences.extend(batch.iter().map(|&p| tokens.positive[p].clone()));
        let mut doc_texts: Vec<&str> = batch.iter().map(|&p| pairs[p].positive.as_str()).collect();
        for &p in batch {
            for (ids, text) in tokens.negatives[p].iter().zip(&pairs[p].negatives) {
                sequences.push(ids.clone());
                doc_texts.push(text);
            }
        }
        // A document equal to a query's own positive is no negative for it (two pairs sharing
        // a positive, or a negative mined from another pair that is this one's positive).
        let mut mask = Vec::with_capacity(batch.len() * doc_texts.len());
        for (row, &p) in batch.iter().enumerate() {
            for (column, text) in doc_texts.iter().enumerate() {
                let excluded = column != row && *text == pairs[p].positive;
                mask.push(if excluded { EXCLUDED_LOGIT as f32 } else { 0.0 });
            }
        }
        Self {
            queries: batch.len(),
            sequences,
            mask,
        }
    }

    fn documents(&self) -> usize {
        self.sequences.len() - self.queries
    }

    /// InfoNCE over the vectors of every sequence `(sequences, dim)`, in order: each query
    /// against every positive of the batch (its own is the target) and the batch's hard
    /// negatives, at temperature τ.
    fn loss(&self, vectors: &Tensor, temperature: f64) -> Result<Tensor> {
        let q = vectors.narrow(0, 0, self.queries)?;
        let d = vectors.narrow(0, self.queries, self.documents())?;
        let device = vectors.device();
        let mask = Tensor::from_slice(&self.mask, (self.queries, self.documents()), device)?;
        let logits = ((q.matmul(&d.t()?)? / temperature)? + mask)?;
        let targets = Tensor::arange(0u32, self.queries as u32, device)?;
        Ok(candle_nn::loss::cross_entropy(&logits, &targets)?)
    }
}

/// The loss of one step and its gradients for the adapters: with a gradient cache when the
/// step has more sequences than `config.sub_batch_size`, else in one graph.
fn step_gradients(
    encoder: &Encoder,
    lora: &LoraParams,
    inputs: &StepInputs,
    config: &TrainConfig,
) -> Result<(f32, GradStore)> {
    if inputs.sequences.len() > config.sub_batch_size {
        cached_gradients(encoder, lora, inputs, config)
    } else {
        full_graph_gradients(encoder, lora, inputs, config)
    }
}

/// The plain step: queries and documents embedded with the autograd graph alive, so the
/// backward pass holds the activations of every sequence of the batch at once.
fn full_graph_gradients(
    encoder: &Encoder,
    lora: &LoraParams,
    inputs: &StepInputs,
    config: &TrainConfig,
) -> Result<(f32, GradStore)> {
    let (queries, documents) = inputs.sequences.split_at(inputs.queries);
    let q = encoder.forward(Some(lora), queries)?;
    let d = encoder.forward(Some(lora), documents)?;
    let loss = inputs.loss(&Tensor::cat(&[q, d], 0)?, config.temperature)?;
    let grads = loss.backward()?;
    Ok((loss.to_scalar::<f32>()?, grads))
}

/// The gradient-cache step (GradCache: Gao et al., "Scaling Deep Contrastive Learning Batch
/// Size under Memory Limited Setup", 2021). InfoNCE couples every vector of the batch, but its
/// gradient for the adapters is `Σᵢ (∂L/∂vᵢ)·(∂vᵢ/∂θ)`: so embed every sequence without a
/// graph, take `∂L/∂vᵢ` from the loss over those vectors as leaves, then re-embed sub-batches of
/// `config.sub_batch_size` sequences with a graph and backpropagate `Σᵢ vᵢ·(∂L/∂vᵢ)` through
/// each, adding up the adapters' gradients. Only one sub-batch's activations are alive at a
/// time, for a second forward pass. The encoders have no dropout or other randomness in
/// training, and both passes embed the same sub-batches with the same ops, so the re-embedded
/// vectors are the ones the loss saw and the gradients are the full-graph step's.
fn cached_gradients(
    encoder: &Encoder,
    lora: &LoraParams,
    inputs: &StepInputs,
    config: &TrainConfig,
) -> Result<(f32, GradStore)> {
    let sequences = &inputs.sequences;
    // Sub-batches of similar lengths pad little.
    let mut order: Vec<usize> = (0..sequences.len()).collect();
    order.sort_by_key(|&i| sequences[i].len());
    let sub_batches: Vec<&[usize]> = order.chunks(config.sub_batch_size.max(1)).collect();
    let embed = |lora: &LoraParams, sub_batch: &[usize]| -> Result<Tensor> {
        let batch: Vec<Vec<u32>> = sub_batch.iter().map(|&i| sequences[i].clone()).collect();
        encoder.forward(Some(lora), &batch)
    };

    // 1. Every vector, without a graph, in the sorted order.
    let frozen = lora.detached();
    let vectors = sub_batches
        .iter()
        .map(|sub_batch| embed(&frozen, sub_batch))
        .collect::<Result<Vec<_>>>()?;
    let sorted = Var::from_tensor(&Tensor::cat(&vectors, 0)?)?;
    drop(vectors);

    // 2. The loss over them as leaves, and its gradient for each vector.
    let mut position = vec![0u32; sequences.len()];
    for (rank, &i) in order.iter().enumerate() {
        position[i] = rank as u32;
    }
    let position = Tensor::from_vec(position, sequences.len(), encoder.device())?;
    let loss = inputs.loss(
        &sorted.as_tensor().index_select(&position, 0)?,
        config.temperature,
    )?;
    let cached = loss
        .backward()?
        .remove(sorted.as_tensor())
        .context("the loss has no gradient for the vectors")?;

    // 3. Each sub-batch again with a graph, its surrogate Σ v·∂L/∂v backpropagated.
    let factors = lora.vars();
    let mut grads = GradStore::default();
    let mut start = 0;
    for sub_batch in &sub_batches {
        let vectors = embed(lora, sub_batch)?;
        let gradient = cached.narrow(0, start, sub_batch.len())?;
        start += sub_batch.len();
        let surrogate = (vectors * gradient)?.sum_all()?;
        add_factor_gradients(&mut grads, &surrogate.backward()?, &factors)?;
    }
    Ok((loss.to_scalar::<f32>()?, grads))
}

/// Adds the gradients `sub` holds for the adapters' `factors` to `sum`, detached. The rest of
/// `sub` is dropped with it: candle's backward pass also leaves gradients for the frozen
/// weights and inputs there, built from the forward pass's activations without being detached,
/// so keeping them would keep the sub-batch's whole graph alive.
fn add_factor_gradients(sum: &mut GradStore, sub: &GradStore, factors: &[Var]) -> Result<()> {
    for factor in factors {
        let Some(gradient) = sub.get(factor.as_tensor()) else {
            continue;
        };
        let gradient = gradient.detach();
        let total = match sum.remove(factor.as_tensor()) {
            Some(earlier) => (earlier + gradient)?,
            None => gradient,
        };
        sum.insert(factor.as_tensor(), total);
    }
    Ok(())
}

/// A digest of the training pairs, so a checkpoint is only resumed on the same data.
fn pairs_digest(pairs: &[Pair]) -> Result<String> {
    let bytes = serde_json::to_vec(pairs)?;
    Ok(blake3::hash(&bytes).to_hex()[..16].to_string())
}

/// Where a checkpoint in `checkpoint` keeps the adapter as it was after `completed_stages`
/// stages (1-based); [`LoraParams::restore`] reads it.
pub fn stage_adapter_dir(checkpoint: &Path, completed_stages: usize) -> std::path::PathBuf {
    checkpoint.join(stage_dir(completed_stages))
}

fn stage_dir(completed_stages: usize) -> String {
    format!("stage-{completed_stages}")
}

/// The checkpoint in `dir`, if there is one for these settings and pairs.
fn read_checkpoint(dir: &Path, config: &TrainConfig, digest: &str) -> Result<Option<Checkpoint>> {
    let path = dir.join(CHECKPOINT_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let saved: Checkpoint = match serde_json::from_str(&text) {
        Ok(saved) => saved,
        // Unreadable (another version wrote it): start over rather than fail.
        Err(_) => return Ok(None),
    };
    let fits = saved.config == *config
        && saved.pairs_digest == digest
        && saved.stages.len() == saved.completed_stages;
    Ok(fits.then_some(saved))
}

/// What a checkpoint saves besides the progress.
struct Saved<'a> {
    lora: &'a LoraParams,
    architecture: &'a str,
    config: &'a TrainConfig,
    digest: &'a str,
}

/// Saves the factors after `reports.len()` stages, then `checkpoint.json` naming them (written
/// last and renamed into place, so it never names a half-written adapter).
fn write_checkpoint(
    dir: &Path,
    saved: &Saved<'_>,
    step: usize,
    reports: &[StageReport],
) -> Result<()> {
    let Saved {
        lora,
        architecture,
        config,
        digest,
    } = *saved;
    let completed_stages = reports.len();
    let mut meta = AdapterMeta::new("checkpoint", architecture);
    meta.training = serde_json::to_value(config)?;
    lora.save(&dir.join(stage_dir(completed_stages)), &meta)?;
    let checkpoint = Checkpoint {
        config: config.clone(),
        pairs_digest: digest.to_string(),
        completed_stages,
        step,
        stages: reports.to_vec(),
    };
    crate::files::replace(
        &dir.join(CHECKPOINT_FILE),
        &serde_json::to_vec_pretty(&checkpoint)?,
    )
    .with_context(|| format!("writing the checkpoint in {}", dir.display()))?;
    // Every stage's factors stay until the run ends: the fine-tune keeps the best stage.
    Ok(())
}

/// Pairs per task family, for reports.
pub fn family_counts(pairs: &[Pair]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for pair in pairs {
        *counts.entry(pair.family.as_str().to_string()).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::embed::EmbedOptions;
    use crate::embed::lora::Adapter;
    use crate::train::testing::{pairs, tiny_bert_dir, tiny_qwen2_dir};

    fn tiny_config() -> TrainConfig {
        TrainConfig {
            batch_size: 6,
            max_tokens: 32,
            learning_rate: 1e-3,
            cooldown_learning_rate: 1e-3,
            epochs: 3,
            curriculum: false,
            ..TrainConfig::default()
        }
    }

    fn run(encoder: &Encoder, config: &TrainConfig, checkpoint: Option<&Path>) -> Vec<Vec<f32>> {
        let pairs = pairs();
        let outcome = train(encoder, &pairs, &[9; 6], config, checkpoint, &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        outcome.stages.into_iter().map(|s| s.losses).collect()
    }

    #[test]
    fn the_step_budget_keeps_each_stages_share() {
        let stages = |lengths: &[usize]| -> Vec<Vec<Vec<usize>>> {
            lengths
                .iter()
                .map(|&n| (0..n).map(|i| vec![i]).collect())
                .collect()
        };
        let lengths = |s: &[Vec<Vec<usize>>]| s.iter().map(Vec::len).collect::<Vec<_>>();
        // 124 + 222 + 51 steps (a 20k-line repository at batch 8) into 200.
        let mut run = stages(&[124, 222, 51]);
        fit_budget(&mut run, 200);
        assert_eq!(lengths(&run), [63, 111, 26]);
        // The first batches are kept (the schedule is already shuffled).
        assert_eq!(run[1][..3], [vec![0], vec![1], vec![2]]);
        // A small stage keeps a step; under the cap nothing changes; 0 means no cap.
        let mut run = stages(&[300, 1, 0]);
        fit_budget(&mut run, 10);
        assert_eq!(lengths(&run), [9, 1, 0]);
        for cap in [0, 500] {
            let mut run = stages(&[124, 222, 51]);
            fit_budget(&mut run, cap);
            assert_eq!(lengths(&run), [124, 222, 51]);
        }
    }

    #[test]
    fn a_few_steps_lower_the_loss_and_the_same_seed_repeats_them() {
        let encoder = crate::train::testing::encoder(&tiny_bert_dir(), 32);
        let config = tiny_config();
        // One batch of all six pairs, three times: the loss on it must fall.
        let losses = run(&encoder, &config, None).remove(0);
        assert_eq!(losses.len(), 3);
        assert!(
            losses[2] < losses[0] && losses[1] < losses[0],
            "loss did not fall: {losses:?}"
        );
        assert_eq!(run(&encoder, &config, None).remove(0), losses, "same seed");
        let other = TrainConfig { seed: 7, ..config };
        let other = run(&encoder, &other, None).remove(0);
        // A fresh adapter does not change the model, so only later steps can differ.
        assert_eq!(other[0], losses[0]);
        assert_ne!(other[1..], losses[1..], "another seed, other adapters");
    }

    /// The six pairs, each with two hard negatives: the next pair's positive (so a row of the
    /// mask excludes it) and a text of its own.
    fn pairs_with_negatives() -> Vec<Pair> {
        let mut pairs = pairs();
        let positives: Vec<String> = pairs.iter().map(|p| p.positive.clone()).collect();
        for (i, pair) in pairs.iter_mut().enumerate() {
            pair.negatives = vec![
                positives[(i + 1) % positives.len()].clone(),
                format!("fn unrelated_{i}(x: u{}) {{ todo!() }}", 8 << i),
            ];
        }
        pairs
    }

    /// Adapters whose `B` moved off zero, as after some training, so that every factor has a
    /// gradient; the same `seed`, the same adapters.
    fn moved_lora(encoder: &Encoder, config: &TrainConfig, seed: u64) -> LoraParams {
        let lora = LoraParams::new(
            &encoder.lora_modules(),
            &config.lora,
            seed,
            encoder.device(),
        )
        .unwrap();
        let mut rng = SeededRng::new(seed);
        // The factors come as A, B, A, B, ….
        for b in lora.vars().iter().skip(1).step_by(2) {
            let values: Vec<f32> = (0..b.elem_count())
                .map(|_| (rng.next_f64() as f32 - 0.5) * 0.05)
                .collect();
            b.set(&Tensor::from_vec(values, b.dims(), encoder.device()).unwrap())
                .unwrap();
        }
        lora
    }

    fn max_abs(t: &Tensor) -> f32 {
        t.abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn the_gradient_cache_computes_the_full_graph_steps_loss_gradients_and_update() {
        for dir in [tiny_bert_dir(), tiny_qwen2_dir()] {
            let encoder = crate::train::testing::encoder(&dir, 32);
            let architecture = encoder.architecture().to_string();
            let config = TrainConfig {
                lora: LoraConfig::for_architecture(&architecture),
                // 24 sequences in sub-batches of 5, the last one short.
                sub_batch_size: 5,
                ..tiny_config()
            };
            let pairs = pairs_with_negatives();
            let tokens = PairTokens::new(&encoder, &pairs, config.negatives_per_pair).unwrap();
            let inputs = StepInputs::new(&pairs, &tokens, &[0, 1, 2, 3, 4, 5]);
            assert_eq!(inputs.sequences.len(), 24);
            assert_eq!(
                inputs.mask.iter().filter(|&&m| m != 0.0).count(),
                6,
                "each query has one other pair's positive masked as a negative"
            );

            let full_lora = moved_lora(&encoder, &config, 3);
            let cached_lora = moved_lora(&encoder, &config, 3);
            let (full_loss, full) =
                full_graph_gradients(&encoder, &full_lora, &inputs, &config).unwrap();
            let (cached_loss, cached) =
                cached_gradients(&encoder, &cached_lora, &inputs, &config).unwrap();
            assert!(
                (full_loss - cached_loss).abs() <= 1e-5 * full_loss.abs(),
                "{architecture}: loss {full_loss} (full graph) against {cached_loss} (cached)"
            );
            for (f, c) in full_lora.vars().iter().zip(cached_lora.vars()) {
                let f = full.get(f.as_tensor()).unwrap();
                let c = cached.get(c.as_tensor()).unwrap();
                let scale = max_abs(f);
                let diff = max_abs(&(f - c).unwrap());
                assert!(scale > 0.0, "{architecture}: a factor has no gradient");
                assert!(
                    diff <= 1e-4 * scale,
                    "{architecture}: gradients differ by {diff} (largest {scale})"
                );
            }

            // One AdamW step from each: the same adapters. A first step moves each weight by
            // about lr·g/(|g| + 1e-8), so the few weights whose gradient is within float noise
            // of zero may move either way: only those with a clear gradient are compared.
            let lr = config.learning_rate as f32;
            for (lora, grads) in [(&full_lora, &full), (&cached_lora, &cached)] {
                let params = ParamsAdamW {
                    lr: config.learning_rate,
                    weight_decay: config.weight_decay,
                    ..ParamsAdamW::default()
                };
                let mut optimiser = AdamW::new(lora.vars(), params).unwrap();
                optimiser.step(grads).unwrap();
            }
            let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let (mut compared, mut weights) = (0, 0);
            let before = moved_lora(&encoder, &config, 3).vars();
            let vars = before.iter().zip(full_lora.vars()).zip(cached_lora.vars());
            for ((initial, f), c) in vars {
                let gradient = values(full.get(f.as_tensor()).unwrap());
                let initial = values(initial.as_tensor());
                let (f, c) = (values(f.as_tensor()), values(c.as_tensor()));
                for k in 0..gradient.len() {
                    weights += 1;
                    if gradient[k].abs() < 1e-5 {
                        continue;
                    }
                    compared += 1;
                    let step = (f[k] - initial[k]).abs();
                    assert!(step > 0.5 * lr, "{architecture}: a step of {step}");
                    let diff = (f[k] - c[k]).abs();
                    assert!(
                        diff <= 1e-3 * lr,
                        "{architecture}: a weight differs by {diff} after a step of {step}"
                    );
                }
            }
            assert!(
                compared * 10 >= weights * 9,
                "{architecture}: only {compared} of {weights} weights have a clear gradient"
            );
        }
    }

    #[test]
    fn training_with_the_gradient_cache_repeats_the_full_graph_runs_losses() {
        let encoder = crate::train::testing::encoder(&tiny_bert_dir(), 32);
        let pairs = pairs_with_negatives();
        let losses = |sub_batch_size: usize| {
            let config = TrainConfig {
                sub_batch_size,
                ..tiny_config()
            };
            let mut run = train(&encoder, &pairs, &[9; 6], &config, None, &mut |_| {
                ControlFlow::Continue(())
            })
            .unwrap();
            run.stages.remove(0).losses
        };
        // 24 sequences a step: one graph, then sub-batches of 7. The first loss is the same
        // function of the same weights; the later ones follow the same steps.
        let (full_losses, cached_losses) = (losses(24), losses(7));
        assert_eq!(full_losses.len(), 3);
        for (f, c) in full_losses.iter().zip(&cached_losses) {
            assert!(
                (f - c).abs() <= 1e-4 * f.abs(),
                "losses {full_losses:?} (full graph) against {cached_losses:?} (cached)"
            );
        }
    }

    #[test]
    fn qwen2_trains_and_its_adapter_loads_as_the_server_loads_it() {
        let dir = tiny_qwen2_dir();
        let encoder = crate::train::testing::encoder(&dir, 32);
        let config = TrainConfig {
            lora: LoraConfig::for_architecture("qwen2"),
            learning_rate: 1e-2,
            ..tiny_config()
        };
        let pairs = pairs();
        let outcome = train(&encoder, &pairs, &[9; 6], &config, None, &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        let losses = &outcome.stages[0].losses;
        assert!(
            losses[2] < losses[0] && losses[1] < losses[0],
            "loss did not fall: {losses:?}"
        );

        // Exported as fine-tune exports it, then merged at load as the server does.
        let out = tempfile::tempdir().unwrap();
        let meta = AdapterMeta::new("fp", encoder.architecture());
        outcome.lora.save(out.path(), &meta).unwrap();
        let mut options = EmbedOptions::exact(&candle_core::Device::Cpu);
        options.adapter = Some(Adapter::read(out.path()).unwrap());
        let mut served = crate::embed::load_with(&dir, &options).unwrap();
        let texts = ["fn add(a: i32, b: i32) -> i32 { a + b }", "read a file"];
        let batch: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| served.tokenize(t, InputKind::Document).unwrap())
            .collect();
        let merged = served.embed_tokens(&batch).unwrap();
        let trained = encoder
            .embed(
                Some(&outcome.lora),
                &texts.map(|t| (t, InputKind::Document)),
            )
            .unwrap();
        let base = encoder
            .embed(None, &texts.map(|t| (t, InputKind::Document)))
            .unwrap();
        let differ = |a: &[Vec<f32>], b: &[Vec<f32>]| {
            a.iter()
                .flatten()
                .zip(b.iter().flatten())
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max)
        };
        assert!(differ(&merged, &trained) < 1e-5, "merged = trained");
        assert!(differ(&merged, &base) > 1e-3, "training changed the model");
    }

    #[test]
    fn curriculum_stages_select_their_pairs() {
        let pairs = pairs();
        let config = TrainConfig::default();
        // Pair 3 (code2code) is already ranked first by the base model: an easy one.
        let ranks = [5, 5, 5, 0, 5, 5];
        let plans = plan_stages(&config, &pairs, &ranks);
        let stages: Vec<(Stage, Vec<usize>, f64)> = plans
            .into_iter()
            .map(|p| (p.stage, p.pairs, p.learning_rate))
            .collect();
        assert_eq!(
            stages,
            [
                (Stage::TextWarmup, vec![0, 1, 2], 5e-4),
                (Stage::Mixed, vec![0, 1, 2, 3, 4, 5], 5e-4),
                (Stage::CodeCooldown, vec![4, 5], 5e-5),
            ]
        );
        let flat = plan_stages(
            &TrainConfig {
                curriculum: false,
                ..config
            },
            &pairs,
            &ranks,
        );
        assert_eq!(flat.len(), 1);
        assert_eq!(flat[0].stage, Stage::All);
        assert_eq!(flat[0].pairs.len(), 6);
    }

    #[test]
    fn a_run_stopped_after_stage_one_resumes_at_stage_two() {
        let encoder = crate::train::testing::encoder(&tiny_bert_dir(), 32);
        let config = TrainConfig {
            batch_size: 3,
            curriculum: true,
            epochs: 1,
            ..tiny_config()
        };
        let uninterrupted = run(&encoder, &config, None);
        assert_eq!(uninterrupted.len(), 3);

        let dir = tempfile::tempdir().unwrap();
        let pairs = pairs();
        let err = train(
            &encoder,
            &pairs,
            &[9; 6],
            &config,
            Some(dir.path()),
            &mut |e| match e {
                Event::StageFinished { .. } => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            },
        )
        .unwrap_err();
        let stopped = err.downcast_ref::<Stopped>().unwrap();
        assert_eq!(stopped.completed_stages, 1);

        let mut events = Vec::new();
        let resumed = train(
            &encoder,
            &pairs,
            &[9; 6],
            &config,
            Some(dir.path()),
            &mut |e| {
                events.push(e.clone());
                ControlFlow::Continue(())
            },
        )
        .unwrap();
        assert!(
            matches!(
                events[0],
                Event::Resumed {
                    completed_stages: 1,
                    step: 1
                }
            ),
            "{:?}",
            events[0]
        );
        assert!(
            matches!(
                events[1],
                Event::StageStarted {
                    stage: Stage::Mixed,
                    index: 2,
                    ..
                }
            ),
            "{:?}",
            events[1]
        );
        let resumed: Vec<Vec<f32>> = resumed.stages.into_iter().map(|s| s.losses).collect();
        assert_eq!(
            resumed, uninterrupted,
            "a resumed run trains as an uninterrupted one"
        );

        // Other settings do not pick up this checkpoint.
        let mut first = None;
        let other = TrainConfig { seed: 1, ..config };
        train(
            &encoder,
            &pairs,
            &[9; 6],
            &other,
            Some(dir.path()),
            &mut |e| {
                first.get_or_insert_with(|| e.clone());
                ControlFlow::Break(())
            },
        )
        .unwrap_err();
        assert!(
            matches!(first, Some(Event::StageStarted { index: 1, .. })),
            "{first:?}"
        );
    }
}
