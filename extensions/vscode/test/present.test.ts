import assert from "node:assert/strict";
import { test } from "node:test";
import { hitRow, type IndexStatus, kindIcon, modelName, statusSummary, statusView } from "../src/present";

const hit = {
  uri: "file:///work/repo/src/retry.rs",
  range: { start: { line: 5, character: 0 }, end: { line: 9, character: 0 } },
  name: "backoff_delay",
  kind: "function",
  containerName: null,
  score: 0.61,
  preview: "pub fn backoff_delay(attempt: u32,\n    base: Duration) -> Duration",
  path: "src/retry.rs",
};

test("a hit shows its name, relative path with a 1-based line, and a one-line preview", () => {
  assert.deepEqual(hitRow(hit), {
    label: "$(symbol-function) backoff_delay",
    description: "src/retry.rs:6",
    detail: "pub fn backoff_delay(attempt: u32, base: Duration) -> Duration",
  });
  const method = hitRow({ ...hit, kind: "method", name: "run", containerName: "RetryPolicy", path: undefined });
  assert.equal(method.label, "$(symbol-method) run");
  assert.equal(method.description, "retry.rs:6 · RetryPolicy");
  assert.equal(hitRow({ ...hit, preview: "  " }).detail, "function");
});

test("unknown kinds get a generic icon", () => {
  assert.equal(kindIcon("struct"), "symbol-structure");
  assert.equal(kindIcon("window"), "symbol-file");
});

test("model names are shortened to their last segment", () => {
  assert.equal(modelName("sentence-transformers/all-MiniLM-L6-v2"), "all-MiniLM-L6-v2");
  assert.equal(modelName("/models/mini/"), "mini");
});

const ready: IndexStatus = {
  indexing: false,
  files: 7,
  chunks: 21,
  embedded: 21,
  pending: 0,
  model: "sentence-transformers/all-MiniLM-L6-v2",
  modelState: "ready",
  device: "cpu",
  indexDir: "/cache/idx",
};

test("the status bar shows progress, then the model", () => {
  assert.equal(statusView(undefined, undefined).label, "coder-lsp: starting");
  const indexing = statusView(ready, { title: "Indexing repo", message: "3/7 files", percentage: 21.4 });
  assert.equal(indexing.text, "$(sync~spin) coder-lsp 21%");
  assert.equal(indexing.tooltip, "Indexing repo: 3/7 files");
  const done = statusView(ready, undefined);
  assert.equal(done.text, "$(search) all-MiniLM-L6-v2");
  assert.equal(done.label, "coder-lsp: index ready, 7 files, model all-MiniLM-L6-v2");
  assert.match(done.tooltip, /7 files, 21 chunks \(21 embedded, 0 pending\)/);
  assert.match(statusView({ ...ready, indexing: true }, undefined).label, /indexing/);
  const failed = statusView({ ...ready, modelState: "failed: no model" }, undefined);
  assert.match(failed.text, /words only/);
  assert.match(failed.tooltip, /failed: no model/);
});

test("the status summary names counts, model, folder and the last error", () => {
  const summary = statusSummary({ ...ready, lastError: "disk full" });
  assert.match(summary, /up to date: 7 files, 21 chunks, 21 embedded, 0 pending/);
  assert.match(summary, /all-MiniLM-L6-v2 \(ready on cpu\)/);
  assert.match(summary, /Index in \/cache\/idx/);
  assert.match(summary, /Last error: disk full/);
});
