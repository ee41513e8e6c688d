//! The trainer's JSON-lines protocol: what `coder-lsp train fine-tune --json` writes on stdout
//! and the server (`finetune`) reads, one event per line. One typed definition for both sides: the
//! trainer serialises these types, the server deserialises them, so a renamed field is a
//! compile error or a failing round-trip test, never a progress bar silently stuck at 0.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A stage of the training curriculum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CurriculumStage {
    /// Pairs with a natural-language query (Text2Code, Hybrid).
    TextWarmup,
    /// Every pair.
    Mixed,
    /// Code-side pairs (Code2Code, Code2Text) the base model does not rank in its top 3, at a
    /// low learning rate.
    CodeCooldown,
    /// Every pair in one stage (no curriculum).
    All,
}

/// A part of a fine-tuning run, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Mine,
    Load,
    Negatives,
    EvaluateBase,
    Train,
    EvaluateAdapter,
    EvaluateServed,
    /// The adapter is kept: it is written out.
    Export,
    /// The adapter is not kept: only the report is written.
    Report,
}

impl Phase {
    /// What the phase does, for a progress line.
    pub fn describe(self) -> &'static str {
        match self {
            Phase::Mine => "mining training pairs from the repository",
            Phase::Load => "loading the model",
            Phase::Negatives => "finding hard negatives",
            Phase::EvaluateBase => "evaluating the current model on held-out pairs",
            Phase::Train => "training",
            Phase::EvaluateAdapter => "evaluating the fine-tuned model on held-out pairs",
            Phase::EvaluateServed => {
                "searching the workspace with the current and the fine-tuned model"
            }
            Phase::Export => "saving the fine-tuned adapter",
            Phase::Report => "the adapter is not kept; writing the report",
        }
    }
}

/// How many pairs mining found, and how they were split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinedCounts {
    pub pairs: usize,
    /// Pairs per task family (`text2code`, …).
    pub by_family: BTreeMap<String, usize>,
    /// Pairs per source (`doc_comment`, `commit`, …).
    pub by_source: BTreeMap<String, usize>,
    pub train: SetCounts,
    pub heldout: SetCounts,
}

/// One side of the split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetCounts {
    pub pairs: usize,
    /// Files the pairs' positives come from (no file is on both sides).
    pub files: usize,
}

/// One line of `coder-lsp train fine-tune --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainerEvent {
    /// A part of the pipeline begins.
    Phase { phase: Phase },
    /// Mining is done.
    Mined { summary: MinedCounts },
    /// A checkpoint was found: its stages are skipped.
    Resumed {
        completed_stages: usize,
        step: usize,
    },
    StageStarted {
        stage: CurriculumStage,
        /// 1-based.
        index: usize,
        stages: usize,
        pairs: usize,
        steps: usize,
    },
    Step {
        stage: CurriculumStage,
        /// 1-based, over all stages.
        step: usize,
        total_steps: usize,
        loss: f32,
        eta_seconds: f64,
    },
    StageFinished {
        stage: CurriculumStage,
        mean_loss: f32,
        seconds: f64,
    },
    /// The last line: the whole report (the trainer's `FineTuneReport`), whose head
    /// [`ReportHead`] the server reads.
    Report { report: serde_json::Value },
}

/// Held-out metrics as the report carries them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub ndcg_at_10: f64,
    #[serde(default)]
    pub queries: usize,
}

/// The served-mode figures of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServedFigures {
    pub queries: usize,
    pub before: f64,
    pub after: Option<f64>,
}

/// The fields of the trainer's report the server acts on; the trainer's report type serialises
/// into it (a round-trip test in the trainer checks that it keeps doing so).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportHead {
    pub accepted: bool,
    pub before: Metrics,
    pub after: Metrics,
    #[serde(default)]
    pub p_value: Option<f64>,
    #[serde(default)]
    pub significance: Option<f64>,
    #[serde(default)]
    pub served: Option<ServedFigures>,
    #[serde(default)]
    pub decision: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_in_the_wire_shape() {
        let events = [
            TrainerEvent::Phase {
                phase: Phase::EvaluateServed,
            },
            TrainerEvent::Step {
                stage: CurriculumStage::TextWarmup,
                step: 3,
                total_steps: 10,
                loss: 0.5,
                eta_seconds: 12.0,
            },
            TrainerEvent::Resumed {
                completed_stages: 1,
                step: 4,
            },
        ];
        for event in events {
            let line = serde_json::to_string(&event).unwrap();
            assert_eq!(serde_json::from_str::<TrainerEvent>(&line).unwrap(), event);
        }
        let line = serde_json::to_string(&TrainerEvent::Phase {
            phase: Phase::EvaluateServed,
        })
        .unwrap();
        assert_eq!(line, r#"{"event":"phase","phase":"evaluate_served"}"#);
        let step: serde_json::Value = serde_json::from_str(
            &serde_json::to_string(&TrainerEvent::Step {
                stage: CurriculumStage::CodeCooldown,
                step: 1,
                total_steps: 2,
                loss: 1.0,
                eta_seconds: 0.0,
            })
            .unwrap(),
        )
        .unwrap();
        assert_eq!(step["event"], "step");
        assert_eq!(step["stage"], "code_cooldown");
    }
}
