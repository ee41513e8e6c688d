// The shapes coder-lsp returns from `workspace/executeCommand` and how the extension presents
// them: QuickPick rows for search hits, the status-bar text, the index-status summary. Kept free
// of the `vscode` module so it can be unit-tested in plain Node.

export interface LspPosition {
  line: number;
  character: number;
}

export interface LspRange {
  start: LspPosition;
  end: LspPosition;
}

/** One result of `semanticSearch` or `findSimilar`. */
export interface SearchHit {
  uri: string;
  range: LspRange;
  name: string;
  kind: string;
  containerName?: string | null;
  score: number;
  preview: string;
  /** Relative to the workspace folder, forward slashes. */
  path?: string;
}

/** The answer of `indexStatus`. */
export interface IndexStatus {
  indexing: boolean;
  files: number;
  chunks: number;
  embedded: number;
  pending: number;
  model: string;
  modelState: string;
  device: string;
  fingerprint?: string | null;
  indexDir?: string | null;
  lastError?: string | null;
}

/** An indexing run in progress, from `$/progress`. */
export interface IndexProgress {
  title: string;
  message?: string;
  percentage?: number;
}

/** The codicon for one of the server's symbol kinds. */
export function kindIcon(kind: string): string {
  switch (kind) {
    case "function":
    case "macro":
      return "symbol-function";
    case "method":
      return "symbol-method";
    case "class":
    case "impl":
      return "symbol-class";
    case "object":
      return "symbol-object";
    case "struct":
      return "symbol-structure";
    case "enum":
      return "symbol-enum";
    case "trait":
    case "interface":
      return "symbol-interface";
    case "module":
      return "symbol-namespace";
    case "type":
      return "symbol-type-parameter";
    case "constant":
      return "symbol-constant";
    case "section":
      return "symbol-key";
    default:
      return "symbol-file";
  }
}

/** The file part of a `file://` URI, for hits without `path`. */
function uriTail(uri: string): string {
  const slash = uri.lastIndexOf("/");
  return decodeURIComponent(slash >= 0 ? uri.slice(slash + 1) : uri);
}

/** A QuickPick row (label, description, detail) for a hit; lines shown 1-based. */
export interface HitRow {
  label: string;
  description: string;
  detail: string;
}

export function hitRow(hit: SearchHit): HitRow {
  const where = hit.path && hit.path !== "" ? hit.path : uriTail(hit.uri);
  const container = hit.containerName ? ` · ${hit.containerName}` : "";
  const preview = hit.preview.replace(/\s+/g, " ").trim();
  return {
    label: `$(${kindIcon(hit.kind)}) ${hit.name}`,
    description: `${where}:${hit.range.start.line + 1}${container}`,
    detail: preview === "" ? hit.kind : preview,
  };
}

/** The model's short name: the last segment of a Hugging Face id or a directory. */
export function modelName(model: string): string {
  const parts = model.split(/[\\/]/).filter((p) => p !== "");
  return parts.length > 0 ? parts[parts.length - 1] : model;
}

/** What the status-bar item shows. */
export interface StatusView {
  text: string;
  tooltip: string;
  /** Screen-reader label; also what the end-to-end test reads. */
  label: string;
}

export function statusView(status: IndexStatus | undefined, progress: IndexProgress | undefined): StatusView {
  if (progress !== undefined) {
    const pct = progress.percentage === undefined ? "" : ` ${Math.round(progress.percentage)}%`;
    const detail = progress.message ? `: ${progress.message}` : "";
    return {
      text: `$(sync~spin) coder-lsp${pct}`,
      tooltip: `${progress.title}${detail}`,
      label: `coder-lsp: indexing${pct}${detail}`,
    };
  }
  if (status === undefined) {
    return { text: "$(loading~spin) coder-lsp", tooltip: "Starting coder-lsp…", label: "coder-lsp: starting" };
  }
  const model = modelName(status.model);
  const counts = `${status.files} files, ${status.chunks} chunks (${status.embedded} embedded, ${status.pending} pending)`;
  if (status.modelState.startsWith("failed")) {
    return {
      text: "$(warning) coder-lsp: words only",
      tooltip: `The model ${status.model} could not be loaded (${status.modelState}); search matches words only.\n${counts}`,
      label: `coder-lsp: model failed, ${status.files} files`,
    };
  }
  if (status.indexing) {
    return {
      text: "$(sync~spin) coder-lsp",
      tooltip: `Indexing… ${counts}\nModel: ${status.model}`,
      label: `coder-lsp: indexing, ${status.files} files`,
    };
  }
  return {
    text: `$(search) ${model}`,
    tooltip: `coder-lsp: ${counts}\nModel: ${status.model} (${status.modelState}${status.device ? `, ${status.device}` : ""})\nClick for the index status.`,
    label: `coder-lsp: index ready, ${status.files} files, model ${model}`,
  };
}

/** The one-paragraph summary of Show Index Status. */
export function statusSummary(status: IndexStatus): string {
  const state = status.indexing ? "indexing" : "up to date";
  const lines = [
    `coder-lsp index ${state}: ${status.files} files, ${status.chunks} chunks, ${status.embedded} embedded, ${status.pending} pending.`,
    `Model ${status.model} (${status.modelState}${status.device ? ` on ${status.device}` : ""}).`,
  ];
  if (status.indexDir) {
    lines.push(`Index in ${status.indexDir}.`);
  }
  if (status.lastError) {
    lines.push(`Last error: ${status.lastError}`);
  }
  return lines.join(" ");
}
