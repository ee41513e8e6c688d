//! `$/progress` for indexing: engine events (from a blocking thread) become begin/report/end
//! notifications with a percentage and "n/m files". Without client support, nothing is sent.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::{NumberOrString, ProgressToken};

use crate::index::IndexEvent;

const TOKEN_PREFIX: &str = "coder-lsp/index/";

/// Whether a progress token is one of ours.
pub fn is_ours(token: &ProgressToken) -> bool {
    matches!(token, NumberOrString::String(s) if s.starts_with(TOKEN_PREFIX))
}

/// Progress of one indexing run.
pub struct Reporter {
    events: Option<mpsc::UnboundedSender<Option<(IndexEvent, String)>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Begins progress for indexing `root` (token `coder-lsp/index/<number>`).
pub async fn start(client: &Client, supported: bool, number: u64, root: &Path) -> Reporter {
    if !supported {
        return Reporter {
            events: None,
            task: None,
        };
    }
    let token = NumberOrString::String(format!("{TOKEN_PREFIX}{number}"));
    if client
        .create_work_done_progress(token.clone())
        .await
        .is_err()
    {
        return Reporter {
            events: None,
            task: None,
        };
    }
    let name = root.file_name().map_or_else(
        || root.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let progress = client
        .progress(token, format!("Indexing {name}"))
        .with_percentage(0)
        .with_cancel_button()
        .begin()
        .await;
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<(IndexEvent, String)>>();
    let task = tokio::spawn(async move {
        while let Some(Some((event, done_message))) = rx.recv().await {
            match event {
                IndexEvent::Scanned { files } => {
                    progress
                        .report_with_message(format!("{files} files found"), 0, None)
                        .await;
                }
                IndexEvent::Parsing { done, total } => {
                    let pct = percent(done, total) / 2;
                    progress
                        .report_with_message(format!("{done}/{total} files"), pct, None)
                        .await;
                }
                IndexEvent::Embedding { done, total } => {
                    let pct = 50 + percent(done, total) / 2;
                    progress
                        .report_with_message(format!("embedding {done}/{total} chunks"), pct, None)
                        .await;
                }
                IndexEvent::Finished => {
                    progress.finish_with_message(done_message).await;
                    return;
                }
            }
        }
        progress.finish().await;
    });
    Reporter {
        events: Some(tx),
        task: Some(task),
    }
}

fn percent(done: usize, total: usize) -> u32 {
    (done * 100)
        .checked_div(total)
        .map_or(100, |p| p.min(100) as u32)
}

impl Reporter {
    /// A callback for the engine; cheap, callable from any thread.
    pub fn sink(&self) -> Arc<dyn Fn(IndexEvent) + Send + Sync> {
        let events = self.events.clone();
        Arc::new(move |event| {
            // `Finished` is sent by `finish` with the summary; the engine's own is dropped.
            if let (Some(tx), false) = (&events, event == IndexEvent::Finished) {
                let _ = tx.send(Some((event, String::new())));
            }
        })
    }

    /// Ends the progress with a summary.
    pub async fn finish(self, message: String) {
        if let Some(tx) = &self.events {
            let _ = tx.send(Some((IndexEvent::Finished, message)));
        }
        drop(self.events);
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }
}
