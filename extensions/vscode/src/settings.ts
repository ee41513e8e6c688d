// The extension's settings (`coderLsp.*`) and how they become the server's
// initializationOptions and environment. Kept free of the `vscode` module for unit tests.

/** Reads one setting; `vscode.WorkspaceConfiguration.get` fits. */
export type SettingReader = <T>(key: string) => T | undefined;

/** The initializationOptions coder-lsp understands (see the README's language-server section). */
export interface InitializationOptions {
  model?: string;
  device?: string;
  indexDir?: string;
  exclude?: string[];
  topK?: number;
  maxFileSize?: number;
  hover?: boolean;
  /** Defaults of the fineTune command: heldout, maxStepsPerStage, batchSize, subBatchSize, epochs, maxTokens, seed, noCurriculum, temperature, adapterWeight, significance, generator. */
  fineTune?: Record<string, unknown>;
}

/** Settings whose change needs a server restart (they are read once, at `initialize`). */
export const RESTART_SETTINGS = [
  "serverPath",
  "model",
  "device",
  "indexDir",
  "exclude",
  "topK",
  "maxFileSize",
  "hover",
  "fineTune",
  "logLevel",
];

function nonEmpty(value: unknown): string | undefined {
  return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
}

function integer(value: unknown): number | undefined {
  return typeof value === "number" && Number.isInteger(value) ? value : undefined;
}

/**
 * Maps settings to initializationOptions. Unset settings are left out so the server's defaults
 * apply; values are passed as written, and the server refuses invalid ones with a message naming
 * the option (shown to the user when the server fails to start).
 */
export function initializationOptions(get: SettingReader): InitializationOptions {
  const options: InitializationOptions = {};
  const model = nonEmpty(get<string>("model"));
  if (model !== undefined) {
    options.model = model;
  }
  const device = nonEmpty(get<string>("device"));
  if (device !== undefined) {
    options.device = device;
  }
  const indexDir = nonEmpty(get<string>("indexDir"));
  if (indexDir !== undefined) {
    options.indexDir = indexDir;
  }
  const exclude = get<unknown>("exclude");
  if (Array.isArray(exclude)) {
    const globs = exclude.filter((g): g is string => typeof g === "string" && g.trim() !== "");
    if (globs.length > 0) {
      options.exclude = globs;
    }
  }
  const topK = integer(get<number>("topK"));
  if (topK !== undefined) {
    options.topK = topK;
  }
  const maxFileSize = integer(get<number>("maxFileSize"));
  if (maxFileSize !== undefined) {
    options.maxFileSize = maxFileSize;
  }
  const hover = get<boolean>("hover");
  if (typeof hover === "boolean") {
    options.hover = hover;
  }
  const fineTune = get<unknown>("fineTune");
  if (typeof fineTune === "object" && fineTune !== null && !Array.isArray(fineTune) && Object.keys(fineTune).length > 0) {
    options.fineTune = fineTune as Record<string, unknown>;
  }
  return options;
}

const LOG_LEVELS = new Set(["error", "warn", "info", "debug"]);

/** Extra environment for the server process: its log level (CODER_LSP_LOG). */
export function serverEnvironment(get: SettingReader): Record<string, string> {
  const level = get<string>("logLevel");
  return { CODER_LSP_LOG: typeof level === "string" && LOG_LEVELS.has(level) ? level : "info" };
}

/** How long Search Code waits after a keystroke, in milliseconds (0 to 5000). */
export function debounceMs(get: SettingReader): number {
  const value = integer(get<number>("search.debounceMs"));
  return value === undefined ? 250 : Math.min(Math.max(value, 0), 5000);
}
