// The language client: finds and starts `coder-lsp serve` over stdio, passes the settings as
// initializationOptions, follows the server's indexing progress for the status bar, and sends
// `workspace/executeCommand` requests for the commands.

import * as os from "node:os";
import * as vscode from "vscode";
import {
  type CancellationToken,
  ExecuteCommandRequest,
  type FeatureState,
  LanguageClient,
  type LanguageClientOptions,
  type ProgressToken,
  type ServerOptions,
  State,
  type StaticFeature,
  WorkDoneProgress,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
} from "vscode-languageclient/node";
import type { IndexProgress, IndexStatus } from "./present";
import { findServer } from "./serverPath";
import { initializationOptions, serverEnvironment } from "./settings";
import type { StatusBar } from "./statusBar";

/** Progress reported by the server for one request (`workDoneToken`). */
export type ProgressSink = (value: { message?: string; percentage?: number }) => void;

export class CoderClient implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private readonly indexing = new Map<ProgressToken, IndexProgress>();
  private lastStatus: IndexStatus | undefined;
  private workDoneCounter = 0;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly output: vscode.OutputChannel,
    private readonly statusBar: StatusBar,
  ) {}

  /** Starts the server; on failure explains why (status bar, message, log) and returns false. */
  async start(): Promise<boolean> {
    const config = vscode.workspace.getConfiguration("coderLsp");
    const get = <T>(key: string) => config.get<T>(key);
    const found = findServer({
      setting: config.get<string>("serverPath") ?? "",
      extensionDir: this.context.extensionPath,
      envPath: process.env.PATH,
      platform: process.platform,
      home: os.homedir(),
    });
    if (!found.ok) {
      this.output.appendLine(found.message);
      this.statusBar.showProblem("coder-lsp: server not found", found.message);
      void this.explain(found.message);
      return false;
    }
    this.output.appendLine(`Starting ${found.path} serve (from ${found.source})`);

    const serverOptions: ServerOptions = {
      command: found.path,
      // No `transport`: languageclient would append `--stdio`; `serve` speaks stdio anyway.
      args: ["serve"],
      options: { env: { ...process.env, ...serverEnvironment(get) } },
    };
    const clientOptions: LanguageClientOptions = {
      // Every file: the server indexes unsaved buffers of any language it can split.
      documentSelector: [{ scheme: "file" }],
      initializationOptions: initializationOptions(get),
      outputChannel: this.output,
      // The first failure to start is reported once, by start(), not in a loop.
      initializationFailedHandler: () => false,
    };
    const client = new LanguageClient("coderLsp", "coder-lsp", serverOptions, clientOptions);
    client.registerFeature(new IndexProgressFeature(client, this));
    client.onDidChangeState((event) => {
      if (event.newState === State.Stopped && this.client === client) {
        this.indexing.clear();
        this.statusBar.showProblem(
          "coder-lsp: stopped",
          "The coder-lsp server stopped. See Coder: Show Server Log, then run Coder: Restart Server.",
        );
      }
    });
    this.client = client;
    this.statusBar.show(undefined, undefined);
    try {
      await client.start();
    } catch (error) {
      const message = `coder-lsp could not start: ${errorMessage(error)}`;
      this.output.appendLine(message);
      this.statusBar.showProblem("coder-lsp: failed to start", message);
      void this.explain(message);
      return false;
    }
    const info = client.initializeResult?.serverInfo;
    this.output.appendLine(`Connected to ${info?.name ?? "coder-lsp"} ${info?.version ?? ""}`.trim());
    await this.refreshStatus();
    return true;
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.indexing.clear();
    if (client !== undefined) {
      try {
        // Stops the server (shutdown + exit) if it runs, then releases the client.
        await client.dispose();
      } catch (error) {
        this.output.appendLine(`Stopping coder-lsp: ${errorMessage(error)}`);
      }
    }
  }

  async restart(): Promise<boolean> {
    await this.stop();
    return this.start();
  }

  dispose(): void {
    void this.stop();
  }

  /** The running client, or an error that says how to get one. */
  running(): LanguageClient {
    if (this.client === undefined || !this.client.isRunning()) {
      throw new Error(
        "coder-lsp is not running. See Coder: Show Server Log for why, then run Coder: Restart Server.",
      );
    }
    return this.client;
  }

  /** The commands the server lists in `executeCommandProvider`. */
  serverCommands(): string[] {
    return this.client?.initializeResult?.capabilities.executeCommandProvider?.commands ?? [];
  }

  /** `workspace/executeCommand` with one argument object (or none). */
  async executeCommand<T>(
    command: string,
    argument: unknown,
    token?: CancellationToken,
    onProgress?: ProgressSink,
  ): Promise<T> {
    const client = this.running();
    let workDoneToken: string | undefined;
    let progress: vscode.Disposable | undefined;
    if (onProgress !== undefined) {
      workDoneToken = `coder-lsp/vscode/${command}/${++this.workDoneCounter}`;
      progress = client.onProgress(WorkDoneProgress.type, workDoneToken, (value) => {
        if (value.kind !== "end") {
          onProgress({ message: value.message, percentage: value.percentage });
        }
      });
    }
    try {
      return (await client.sendRequest(
        ExecuteCommandRequest.type,
        {
          command,
          arguments: argument === undefined ? [] : [argument],
          workDoneToken,
        },
        token,
      )) as T;
    } finally {
      progress?.dispose();
    }
  }

  /** Asks the server for its index status and updates the status bar. */
  async refreshStatus(): Promise<IndexStatus | undefined> {
    try {
      this.lastStatus = await this.executeCommand<IndexStatus>("indexStatus", undefined);
    } catch (error) {
      this.output.appendLine(`indexStatus: ${errorMessage(error)}`);
    }
    this.showStatus();
    return this.lastStatus;
  }

  /** Indexing runs in progress. */
  indexingRuns(): IndexProgress[] {
    return [...this.indexing.values()];
  }

  /** Asks the server to cancel every indexing run in progress. */
  cancelIndexing(): void {
    for (const token of this.indexing.keys()) {
      void this.client?.sendNotification(WorkDoneProgressCancelNotification.type, { token });
    }
  }

  /** Called by the progress feature. */
  progressChanged(token: ProgressToken, progress: IndexProgress | undefined): void {
    if (progress === undefined) {
      this.indexing.delete(token);
      void this.refreshStatus();
    } else {
      this.indexing.set(token, progress);
      this.showStatus();
    }
  }

  private showStatus(): void {
    this.statusBar.show(this.lastStatus, this.indexingRuns()[0]);
  }

  private async explain(message: string): Promise<void> {
    const choice = await vscode.window.showErrorMessage(message, "Open Settings", "Show Log");
    if (choice === "Open Settings") {
      await vscode.commands.executeCommand("workbench.action.openSettings", "coderLsp.serverPath");
    } else if (choice === "Show Log") {
      this.output.show();
    }
  }
}

/**
 * Follows the server's `$/progress` for indexing. It takes over `window/workDoneProgress/create`
 * from the client's default feature (registered earlier, so this one's handler wins): the status
 * bar shows the progress instead of a second spinner.
 */
class IndexProgressFeature implements StaticFeature {
  private readonly subscriptions = new Map<ProgressToken, vscode.Disposable>();

  constructor(
    private readonly client: LanguageClient,
    private readonly owner: CoderClient,
  ) {}

  fillClientCapabilities(capabilities: { window?: { workDoneProgress?: boolean } }): void {
    capabilities.window = { ...capabilities.window, workDoneProgress: true };
  }

  initialize(): void {
    this.client.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => this.follow(token));
  }

  getState(): FeatureState {
    return { kind: "static" };
  }

  clear(): void {
    for (const subscription of this.subscriptions.values()) {
      subscription.dispose();
    }
    this.subscriptions.clear();
  }

  private follow(token: ProgressToken): void {
    if (this.subscriptions.has(token)) {
      return;
    }
    let current: IndexProgress = { title: "Indexing" };
    const subscription = this.client.onProgress(WorkDoneProgress.type, token, (value) => {
      switch (value.kind) {
        case "begin":
          current = { title: value.title, message: value.message, percentage: value.percentage };
          this.owner.progressChanged(token, current);
          break;
        case "report":
          current = {
            ...current,
            message: value.message ?? current.message,
            percentage: value.percentage ?? current.percentage,
          };
          this.owner.progressChanged(token, current);
          break;
        case "end":
          this.subscriptions.get(token)?.dispose();
          this.subscriptions.delete(token);
          if (value.message) {
            this.owner.output.appendLine(`${current.title}: ${value.message}`);
          }
          this.owner.progressChanged(token, undefined);
          break;
      }
    });
    this.subscriptions.set(token, subscription);
  }
}

/** The message of an error or a JSON-RPC error response. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  if (typeof error === "object" && error !== null && "message" in error) {
    return String((error as { message: unknown }).message);
  }
  return String(error);
}
