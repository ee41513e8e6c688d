//! The embedding worker: one OS thread that owns the model and serves requests from any number
//! of [`EmbedHandle`]s, sync or async.
//!
//! Requests queued together are pooled, sorted by token length and cut into batches whose
//! padded size stays under a token budget, so short chunks are not padded to long ones and
//! memory per batch stays bounded. Replies go back on oneshot channels in the caller's order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::{EmbedError, Embedder, InputKind, ModelInfo, ModelTokenizer};

/// Stop pooling queued requests once this many texts are collected, so a burst of indexing work
/// cannot delay a query behind it by more than about one round.
const MAX_TEXTS_PER_ROUND: usize = 512;

type Vectors = Result<Vec<Vec<f32>>, EmbedError>;
type Reply = oneshot::Sender<Vectors>;

struct Request {
    texts: Vec<String>,
    kind: InputKind,
    reply: Reply,
}

enum Message {
    Embed(Request),
    Shutdown,
}

/// Owns the worker thread. Dropping it stops the thread (after the round in progress) and waits
/// for it; handles then answer [`EmbedError::WorkerGone`].
pub struct EmbedWorker {
    sender: mpsc::Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EmbedWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedWorker")
            .field("running", &self.thread.is_some())
            .finish()
    }
}

/// A cheap, cloneable way to ask the worker for embeddings from any thread or task.
#[derive(Clone)]
pub struct EmbedHandle {
    sender: mpsc::Sender<Message>,
    info: Arc<ModelInfo>,
    tokenizer: ModelTokenizer,
    stats: Arc<Counters>,
}

impl std::fmt::Debug for EmbedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedHandle")
            .field("info", &self.info)
            .finish()
    }
}

/// What the worker has processed so far. Padding waste is `1 - real_tokens / padded_tokens`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmbedStats {
    /// Texts embedded successfully.
    pub inputs: u64,
    /// Model calls made.
    pub batches: u64,
    /// Tokens of the inputs themselves, special tokens included.
    pub real_tokens: u64,
    /// Tokens the model computed: for each batch, its size times its longest input.
    pub padded_tokens: u64,
    /// (query, key) token pairs attention computed: for each batch, its size times the square
    /// of its longest input.
    pub padded_token_pairs: u64,
}

impl EmbedStats {
    /// Fraction of computed tokens that were padding (0 when nothing ran yet).
    pub fn padding_waste(&self) -> f64 {
        if self.padded_tokens == 0 {
            0.0
        } else {
            1.0 - self.real_tokens as f64 / self.padded_tokens as f64
        }
    }

    /// What was processed after `earlier` was taken.
    pub fn since(&self, earlier: &EmbedStats) -> EmbedStats {
        EmbedStats {
            inputs: self.inputs - earlier.inputs,
            batches: self.batches - earlier.batches,
            real_tokens: self.real_tokens - earlier.real_tokens,
            padded_tokens: self.padded_tokens - earlier.padded_tokens,
            padded_token_pairs: self.padded_token_pairs - earlier.padded_token_pairs,
        }
    }
}

#[derive(Default)]
struct Counters {
    inputs: AtomicU64,
    batches: AtomicU64,
    real_tokens: AtomicU64,
    padded_tokens: AtomicU64,
    padded_token_pairs: AtomicU64,
}

impl Counters {
    fn record(&self, lengths: &[usize]) {
        let longest = lengths.iter().copied().max().unwrap_or(0);
        let real: usize = lengths.iter().sum();
        self.inputs
            .fetch_add(lengths.len() as u64, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.real_tokens.fetch_add(real as u64, Ordering::Relaxed);
        self.padded_tokens
            .fetch_add((lengths.len() * longest) as u64, Ordering::Relaxed);
        self.padded_token_pairs.fetch_add(
            (lengths.len() * longest * longest) as u64,
            Ordering::Relaxed,
        );
    }

    fn snapshot(&self) -> EmbedStats {
        EmbedStats {
            inputs: self.inputs.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            real_tokens: self.real_tokens.load(Ordering::Relaxed),
            padded_tokens: self.padded_tokens.load(Ordering::Relaxed),
            padded_token_pairs: self.padded_token_pairs.load(Ordering::Relaxed),
        }
    }
}

impl EmbedWorker {
    /// Starts the worker thread, which takes ownership of `embedder`. Each model call gets at
    /// most `token_budget` padded tokens (batch size × longest input), except that an input
    /// longer than the budget still runs, alone.
    pub fn spawn(
        embedder: Box<dyn Embedder>,
        token_budget: usize,
    ) -> Result<(EmbedWorker, EmbedHandle), EmbedError> {
        let (sender, receiver) = mpsc::channel();
        let stats = Arc::new(Counters::default());
        let handle = EmbedHandle {
            sender: sender.clone(),
            info: Arc::new(embedder.info().clone()),
            tokenizer: embedder.tokenizer().clone(),
            stats: Arc::clone(&stats),
        };
        let thread = std::thread::Builder::new()
            .name("coder-lsp-embed".into())
            .spawn(move || serve(embedder, &receiver, token_budget, &stats))
            .map_err(EmbedError::Spawn)?;
        Ok((
            EmbedWorker {
                sender,
                thread: Some(thread),
            },
            handle,
        ))
    }
}

impl Drop for EmbedWorker {
    fn drop(&mut self) {
        // A failed send means the thread is already gone; joining is still right.
        let _ = self.sender.send(Message::Shutdown);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the embedding worker thread panicked");
        }
    }
}

impl EmbedHandle {
    /// The model's facts (dimension, input limit).
    pub fn info(&self) -> ModelInfo {
        (*self.info).clone()
    }

    /// The model's tokenizer, for fitting text into [`ModelInfo::max_tokens`] before embedding.
    pub fn tokenizer(&self) -> ModelTokenizer {
        self.tokenizer.clone()
    }

    /// Totals since the worker started.
    pub fn stats(&self) -> EmbedStats {
        self.stats.snapshot()
    }

    /// Embeds `texts`, blocking the calling thread until the vectors (in order) are ready.
    ///
    /// Must not be called from inside an async runtime (it would block an executor thread;
    /// tokio panics): use [`EmbedHandle::embed`] there.
    pub fn embed_blocking(
        &self,
        texts: Vec<String>,
        kind: InputKind,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.send(texts, kind)?
            .blocking_recv()
            .map_err(|_| EmbedError::WorkerGone)?
    }

    /// Embeds `texts` without blocking the async runtime; vectors come back in order.
    pub async fn embed(
        &self,
        texts: Vec<String>,
        kind: InputKind,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.send(texts, kind)?
            .await
            .map_err(|_| EmbedError::WorkerGone)?
    }

    fn send(
        &self,
        texts: Vec<String>,
        kind: InputKind,
    ) -> Result<oneshot::Receiver<Vectors>, EmbedError> {
        let (reply, receiver) = oneshot::channel();
        self.sender
            .send(Message::Embed(Request { texts, kind, reply }))
            .map_err(|_| EmbedError::WorkerGone)?;
        Ok(receiver)
    }
}

/// Groups inputs into batches for the model: indices sorted by length (shortest first, ties in
/// input order), each batch as large as fits `len(batch) × longest ≤ token_budget`. An input
/// longer than the budget forms a batch of its own.
pub fn plan_batches(lengths: &[usize], token_budget: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        // Sorted ascending, so the newcomer is the longest in the batch.
        if !current.is_empty() && (current.len() + 1) * lengths[i] > token_budget {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// The worker loop: wait for a request, pool whatever else is queued, serve the round, repeat
/// until told to stop or every sender is gone.
fn serve(
    mut embedder: Box<dyn Embedder>,
    receiver: &mpsc::Receiver<Message>,
    token_budget: usize,
    stats: &Counters,
) {
    while let Ok(Message::Embed(first)) = receiver.recv() {
        let mut round = vec![first];
        let mut texts = round[0].texts.len();
        let mut stop = false;
        while texts < MAX_TEXTS_PER_ROUND {
            match receiver.try_recv() {
                Ok(Message::Embed(request)) => {
                    texts += request.texts.len();
                    round.push(request);
                }
                Ok(Message::Shutdown) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        serve_round(embedder.as_mut(), round, token_budget, stats);
        if stop {
            break;
        }
    }
}

/// One caller's part of a round: where its inputs sit in the pooled list, and how it fared.
struct Caller {
    reply: Reply,
    start: usize,
    len: usize,
    error: Option<EmbedError>,
}

fn serve_round(
    embedder: &mut dyn Embedder,
    round: Vec<Request>,
    token_budget: usize,
    stats: &Counters,
) {
    let mut callers = Vec::with_capacity(round.len());
    let mut tokens: Vec<Vec<u32>> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    for request in round {
        let start = tokens.len();
        let tokenized: Result<Vec<Vec<u32>>, EmbedError> = request
            .texts
            .iter()
            .map(|text| embedder.tokenize(text, request.kind))
            .collect();
        let (len, error) = match tokenized {
            Ok(ids) => {
                let len = ids.len();
                tokens.extend(ids);
                owner.extend(std::iter::repeat_n(callers.len(), len));
                (len, None)
            }
            Err(e) => (0, Some(e)),
        };
        callers.push(Caller {
            reply: request.reply,
            start,
            len,
            error,
        });
    }

    let lengths: Vec<usize> = tokens.iter().map(Vec::len).collect();
    let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); tokens.len()];
    for batch in plan_batches(&lengths, token_budget) {
        let owners = || batch.iter().map(|&i| owner[i]);
        if owners().all(|c| callers[c].error.is_some()) {
            continue;
        }
        let inputs: Vec<Vec<u32>> = batch
            .iter()
            .map(|&i| std::mem::take(&mut tokens[i]))
            .collect();
        match embedder.embed_tokens(&inputs) {
            Ok(outputs) if outputs.len() == batch.len() => {
                let batch_lengths: Vec<usize> = batch.iter().map(|&i| lengths[i]).collect();
                stats.record(&batch_lengths);
                for (&i, vector) in batch.iter().zip(outputs) {
                    vectors[i] = vector;
                }
            }
            outcome => {
                let error = match outcome {
                    Err(e) => e,
                    Ok(outputs) => EmbedError::Compute(candle_core::Error::Msg(format!(
                        "model returned {} vectors for {} inputs",
                        outputs.len(),
                        batch.len()
                    ))),
                };
                tracing::warn!(%error, inputs = batch.len(), "embedding batch failed");
                // Every caller with an input in the failed batch gets the error.
                for c in owners() {
                    if callers[c].error.is_none() {
                        callers[c].error = Some(error.duplicate());
                    }
                }
            }
        }
    }

    for caller in callers {
        let result = match caller.error {
            Some(e) => Err(e),
            None => Ok(vectors[caller.start..caller.start + caller.len]
                .iter_mut()
                .map(std::mem::take)
                .collect()),
        };
        // The caller may have given up waiting; nothing to do then.
        let _ = caller.reply.send(result);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::embed::{test_model_dir, tiny_bert_dir, tiny_qwen2_dir};

    #[test]
    fn handles_can_be_shared_across_threads() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        shareable::<EmbedHandle>();
        shareable::<ModelTokenizer>();
    }

    #[test]
    fn plan_respects_budget_and_sorts() {
        let lengths = [10, 3, 7, 3, 50, 12, 1, 7];
        let plan = plan_batches(&lengths, 24);
        // Every input exactly once.
        let mut all: Vec<usize> = plan.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..lengths.len()).collect::<Vec<_>>());
        // Sorted by length across batches, ties in input order.
        let flat: Vec<usize> = plan.iter().flatten().copied().collect();
        assert_eq!(flat, vec![6, 1, 3, 2, 7, 0, 5, 4]);
        for batch in &plan {
            let longest = batch.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(batch.len() * longest <= 24 || batch.len() == 1, "{batch:?}");
        }
        assert_eq!(plan, vec![vec![6, 1, 3], vec![2, 7], vec![0, 5], vec![4]]);
    }

    #[test]
    fn plan_fills_batches_greedily() {
        // 8 inputs of 4 tokens fit a budget of 32 exactly.
        assert_eq!(plan_batches(&[4; 8], 32), vec![(0..8).collect::<Vec<_>>()]);
        assert_eq!(plan_batches(&[4; 9], 32).len(), 2);
    }

    #[test]
    fn plan_edge_cases() {
        assert!(plan_batches(&[], 100).is_empty());
        // Longer than the budget: alone, but still run.
        assert_eq!(
            plan_batches(&[500, 2, 600], 100),
            vec![vec![1], vec![0], vec![2]]
        );
        // A zero budget degenerates to one input per batch.
        assert_eq!(plan_batches(&[1, 1], 0), vec![vec![0], vec![1]]);
    }

    #[test]
    fn stats_report_padding_waste() {
        let counters = Counters::default();
        counters.record(&[2, 4]);
        let stats = counters.snapshot();
        assert_eq!(
            stats,
            EmbedStats {
                inputs: 2,
                batches: 1,
                real_tokens: 6,
                padded_tokens: 8,
                padded_token_pairs: 32,
            }
        );
        assert!((stats.padding_waste() - 0.25).abs() < 1e-12);
        counters.record(&[3]);
        let later = counters.snapshot().since(&stats);
        assert_eq!(
            (
                later.inputs,
                later.batches,
                later.real_tokens,
                later.padded_tokens
            ),
            (1, 1, 3, 3)
        );
        assert_eq!(later.padded_token_pairs, 9);
        assert_eq!(EmbedStats::default().padding_waste(), 0.0);
    }

    /// A fake model: the vector of an input is `[len, first content id, kind flag]`; inputs
    /// containing "boom" make the whole batch fail.
    struct Fake {
        info: ModelInfo,
        tokenizer: ModelTokenizer,
        batch_sizes: Arc<std::sync::Mutex<Vec<usize>>>,
    }

    impl Embedder for Fake {
        fn info(&self) -> &ModelInfo {
            &self.info
        }
        fn tokenizer(&self) -> &ModelTokenizer {
            &self.tokenizer
        }
        fn tokenize(&self, text: &str, _kind: InputKind) -> Result<Vec<u32>, EmbedError> {
            if text == "boom" {
                return Ok(vec![u32::MAX]);
            }
            self.tokenizer.encode_truncated(text, self.info.max_tokens)
        }
        fn embed_tokens(&mut self, batch: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
            self.batch_sizes.lock().unwrap().push(batch.len());
            if batch.iter().any(|ids| ids == &[u32::MAX]) {
                return Err(EmbedError::Compute(candle_core::Error::Msg("boom".into())));
            }
            Ok(batch
                .iter()
                .map(|ids| vec![ids.len() as f32, ids[1] as f32])
                .collect())
        }
    }

    fn fake() -> (Box<dyn Embedder>, Arc<std::sync::Mutex<Vec<usize>>>) {
        let tokenizer = ModelTokenizer::from_file(&tiny_bert_dir().join("tokenizer.json")).unwrap();
        let batch_sizes = Arc::default();
        let fake = Fake {
            info: ModelInfo {
                architecture: "fake".into(),
                dim: 2,
                max_tokens: 16,
                query_instructions: false,
            },
            tokenizer,
            batch_sizes: Arc::clone(&batch_sizes),
        };
        (Box::new(fake), batch_sizes)
    }

    #[test]
    fn results_come_back_in_caller_order() {
        let (model, batch_sizes) = fake();
        let (worker, handle) = EmbedWorker::spawn(model, 12).unwrap();
        let texts: Vec<String> = ["a b c d e", "x", "p q", "one two three", "y"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let vectors = handle
            .embed_blocking(texts.clone(), InputKind::Document)
            .unwrap();
        let tokenizer = handle.tokenizer();
        for (text, vector) in texts.iter().zip(&vectors) {
            let ids = tokenizer.encode(text, true).unwrap();
            assert_eq!(vector, &vec![ids.len() as f32, ids[1] as f32], "{text}");
        }
        // Budget 12, lengths with specials 3,3,4 | 5 | 7: three batches, none over budget.
        assert_eq!(*batch_sizes.lock().unwrap(), vec![3, 1, 1]);
        let stats = handle.stats();
        assert_eq!(stats.inputs, 5);
        assert_eq!(stats.batches, 3);
        assert_eq!(stats.real_tokens, 3 + 3 + 4 + 5 + 7);
        assert_eq!(stats.padded_tokens, 3 * 4 + 5 + 7);
        assert!(
            handle
                .embed_blocking(
                    Vec::new(),
                    InputKind::Query(crate::embed::QueryTask::CodeSearch)
                )
                .unwrap()
                .is_empty()
        );
        drop(worker);
    }

    #[test]
    fn a_failing_request_does_not_stop_the_worker() {
        let (model, _) = fake();
        let (_worker, handle) = EmbedWorker::spawn(model, 1024).unwrap();
        let err = handle
            .embed_blocking(vec!["fine".into(), "boom".into()], InputKind::Document)
            .unwrap_err();
        assert!(matches!(err, EmbedError::Compute(_)), "{err}");
        let ok = handle
            .embed_blocking(vec!["fine".into()], InputKind::Document)
            .unwrap();
        assert_eq!(ok.len(), 1);
    }

    #[test]
    fn handle_after_shutdown_reports_worker_gone() {
        let (model, _) = fake();
        let (worker, handle) = EmbedWorker::spawn(model, 64).unwrap();
        let copy = handle.clone();
        drop(worker);
        let err = copy
            .embed_blocking(
                vec!["late".into()],
                InputKind::Query(crate::embed::QueryTask::CodeSearch),
            )
            .unwrap_err();
        assert!(matches!(err, EmbedError::WorkerGone), "{err}");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = runtime
            .block_on(handle.embed(
                vec!["late".into()],
                InputKind::Query(crate::embed::QueryTask::CodeSearch),
            ))
            .unwrap_err();
        assert!(matches!(err, EmbedError::WorkerGone), "{err}");
        // Facts about the model stay available.
        assert_eq!(handle.info().dim, 2);
    }

    /// End to end on the real model: two threads at once each get their own vectors, in order,
    /// identical to what the model gives for the same texts alone.
    #[test]
    fn concurrent_callers_get_their_own_results() {
        let mut model = crate::embed::load(&tiny_qwen2_dir(), &candle_core::Device::Cpu).unwrap();
        let texts_a: Vec<String> = (0..12)
            .map(|i| format!("fn handler_{i}(req: Request) -> Response {{ route(req, {i}) }}"))
            .collect();
        let texts_b: Vec<String> = (0..9)
            .map(|i| format!("def parse_{i}(line):\n    return line.split(',')[{i}]"))
            .collect();
        let alone = |model: &mut Box<dyn Embedder>, texts: &[String]| -> Vec<Vec<f32>> {
            texts
                .iter()
                .map(|t| {
                    let ids = model.tokenize(t, InputKind::Document).unwrap();
                    model.embed_tokens(&[ids]).unwrap().remove(0)
                })
                .collect()
        };
        let expected_a = alone(&mut model, &texts_a);
        let expected_b = alone(&mut model, &texts_b);

        let (worker, handle) = EmbedWorker::spawn(model, 256).unwrap();
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let spawn = |texts: Vec<String>| {
            let handle = handle.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                handle.embed_blocking(texts, InputKind::Document).unwrap()
            })
        };
        let a = spawn(texts_a);
        let b = spawn(texts_b);
        let (got_a, got_b) = (a.join().unwrap(), b.join().unwrap());
        for (expected, got) in [(expected_a, got_a), (expected_b, got_b)] {
            assert_eq!(expected.len(), got.len());
            for (e, g) in expected.iter().zip(&got) {
                let dot: f32 = e.iter().zip(g).map(|(x, y)| x * y).sum();
                assert!(dot > 0.99999, "dot {dot}");
            }
        }
        let stats = handle.stats();
        assert_eq!(stats.inputs, 21);
        assert!(
            stats.batches >= 2,
            "budget 256 cannot hold 21 inputs at once"
        );
        drop(worker);
        assert!(matches!(
            handle.embed_blocking(
                vec!["x".into()],
                InputKind::Query(crate::embed::QueryTask::CodeSearch)
            ),
            Err(EmbedError::WorkerGone)
        ));
    }

    #[test]
    fn async_embed_works_inside_a_runtime() {
        let (model, _) = fake();
        let (_worker, handle) = EmbedWorker::spawn(model, 64).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let vectors = runtime
            .block_on(handle.embed(
                vec!["x".into(), "a b".into()],
                InputKind::Query(crate::embed::QueryTask::CodeSearch),
            ))
            .unwrap();
        assert_eq!(
            vectors.iter().map(|v| v[0]).collect::<Vec<_>>(),
            vec![3.0, 4.0]
        );
    }

    /// Code-like texts of 8 to about 250 tokens, deterministic (a small LCG picks lines).
    fn bench_texts(count: usize, tokenizer: &ModelTokenizer) -> Vec<String> {
        const LINES: &[&str] = &[
            "fn parse_header(buf: &[u8]) -> Result<Header, Error> {",
            "    let len = u32::from_le_bytes(buf[0..4].try_into()?) as usize;",
            "    if len > MAX_FRAME { return Err(Error::TooLarge(len)); }",
            "def load_users(session, limit=100):",
            "    rows = session.query(User).order_by(User.created_at.desc()).limit(limit)",
            "    return [row.to_dict() for row in rows if row.active]",
            "export const fetchItems = async (page) => {",
            "  const res = await api.get(`/items?page=${page}`);",
            "  return res.data.items.map(normalizeItem);",
            "func (c *Cache) Get(key string) (interface{}, bool) {",
            "\tc.mu.RLock(); defer c.mu.RUnlock()",
            "\titem, ok := c.items[key]; return item.value, ok",
            "public List<Order> findOrders(Customer customer, LocalDate since) {",
            "    return orders.stream().filter(o -> o.date().isAfter(since)).toList();",
            "static int compare_entries(const void *a, const void *b) {",
            "    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);",
            "// Retry the request with exponential backoff until the deadline passes.",
            "    for attempt in 0..config.max_retries {",
            "        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;",
            "}",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ((state >> 33) as usize) % n
        };
        (0..count)
            .map(|_| {
                let target = 8 + next(245);
                let mut text = String::new();
                while tokenizer.count_tokens(&text).unwrap() < target {
                    text.push_str(LINES[next(LINES.len())]);
                    text.push('\n');
                }
                tokenizer.truncate(&text, target).unwrap().to_string()
            })
            .collect()
    }

    /// Throughput of the real model through the worker (run with `--ignored --nocapture`): MiniLM,
    /// the default model, whose speed is what users see.
    /// Writes the texts to `$CODER_LSP_BENCH_TEXTS` when set, so other tools can use them.
    #[test]
    #[ignore = "benchmark: run by hand"]
    fn throughput() {
        let dir = test_model_dir();
        let tokenizer = ModelTokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
        let texts = bench_texts(500, &tokenizer);
        if let Some(path) = std::env::var_os("CODER_LSP_BENCH_TEXTS") {
            std::fs::write(path, serde_json::to_string(&texts).unwrap()).unwrap();
        }
        for budget in [2048, 4096, 8192, 16384] {
            let model = crate::embed::load(&dir, &candle_core::Device::Cpu).unwrap();
            let (_worker, handle) = EmbedWorker::spawn(model, budget).unwrap();
            // Warm up allocator and thread pool.
            handle
                .embed_blocking(texts[..16].to_vec(), InputKind::Document)
                .unwrap();
            let before = handle.stats();
            let start = std::time::Instant::now();
            let vectors = handle
                .embed_blocking(texts.clone(), InputKind::Document)
                .unwrap();
            let seconds = start.elapsed().as_secs_f64();
            assert_eq!(vectors.len(), texts.len());
            let after = handle.stats();
            let real = after.real_tokens - before.real_tokens;
            let padded = after.padded_tokens - before.padded_tokens;
            eprintln!(
                "budget {budget:>5}: {:>6.1} snippets/s, {:>7.0} tokens/s, {} batches, \
                 padding waste {:.1}%",
                texts.len() as f64 / seconds,
                real as f64 / seconds,
                after.batches - before.batches,
                100.0 * (1.0 - real as f64 / padded as f64)
            );
        }
    }
}
