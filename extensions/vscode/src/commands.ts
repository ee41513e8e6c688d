// The extension's commands. Each one is a thin front for a server command: the server does the
// searching, the extension asks, shows and opens.

import * as vscode from "vscode";
import { type CoderClient, errorMessage } from "./client";
import { Debouncer } from "./debounce";
import { hitRow, type IndexStatus, type SearchHit, statusSummary } from "./present";
import { debounceMs } from "./settings";

interface HitItem extends vscode.QuickPickItem {
  hit: SearchHit;
}

function hitItem(hit: SearchHit): HitItem {
  // alwaysShow: the server already chose these; VS Code's own filter would hide every result
  // whose name does not contain the words of a plain-language query.
  return { ...hitRow(hit), hit, alwaysShow: true };
}

function isCancellation(error: unknown): boolean {
  return (
    error instanceof vscode.CancellationError ||
    (typeof error === "object" && error !== null && (error as { code?: unknown }).code === -32800)
  );
}

/** Opens a hit with the cursor at the start of its first line. */
async function openHit(coder: CoderClient, hit: SearchHit): Promise<void> {
  const convert = coder.running().protocol2CodeConverter;
  const uri = convert.asUri(hit.uri);
  const range = convert.asRange(hit.range);
  const start = new vscode.Position(range.start.line, 0);
  const editor = await vscode.window.showTextDocument(uri, {
    selection: new vscode.Range(start, start),
    preview: false,
  });
  editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
}

function showError(what: string, error: unknown): void {
  void vscode.window.showErrorMessage(`coder-lsp: ${what} failed: ${errorMessage(error)}`);
}

/** Search Code: a QuickPick that asks the server as you type (debounced). */
async function searchCode(coder: CoderClient): Promise<void> {
  try {
    coder.running();
  } catch (error) {
    void vscode.window.showErrorMessage(errorMessage(error));
    return;
  }
  const pick = vscode.window.createQuickPick<HitItem>();
  pick.title = "Coder: Search Code";
  pick.placeholder = "Describe the code you are looking for, e.g. “retry a request after a timeout”";
  pick.matchOnDescription = false;
  pick.matchOnDetail = false;
  const debouncer = new Debouncer(debounceMs((key) => vscode.workspace.getConfiguration("coderLsp").get(key)));
  let inFlight: vscode.CancellationTokenSource | undefined;
  let generation = 0;

  const ask = async (query: string) => {
    const mine = ++generation;
    inFlight?.cancel();
    const cancel = new vscode.CancellationTokenSource();
    inFlight = cancel;
    pick.busy = true;
    try {
      const hits = await coder.executeCommand<SearchHit[] | null>("semanticSearch", { query }, cancel.token);
      if (mine !== generation) {
        return;
      }
      pick.items = (hits ?? []).map(hitItem);
      pick.title = hits && hits.length > 0 ? "Coder: Search Code" : `Coder: Search Code (nothing found for “${query}”)`;
    } catch (error) {
      if (mine === generation && !isCancellation(error)) {
        pick.items = [];
        pick.title = `Coder: Search Code (error: ${errorMessage(error)})`;
        coder.output.appendLine(`semanticSearch ${JSON.stringify(query)}: ${errorMessage(error)}`);
      }
    } finally {
      if (mine === generation) {
        pick.busy = false;
      }
      cancel.dispose();
    }
  };

  const subscriptions: vscode.Disposable[] = [
    pick.onDidChangeValue((value) => {
      const query = value.trim();
      if (query === "") {
        debouncer.cancel();
        generation++;
        inFlight?.cancel();
        pick.items = [];
        pick.busy = false;
        return;
      }
      pick.busy = true;
      debouncer.schedule(() => void ask(query));
    }),
    pick.onDidAccept(() => {
      const item = pick.selectedItems[0] ?? pick.activeItems[0];
      if (item === undefined) {
        return;
      }
      pick.hide();
      openHit(coder, item.hit).catch((error) => showError("opening the result", error));
    }),
    pick.onDidHide(() => {
      debouncer.cancel();
      inFlight?.cancel();
      for (const subscription of subscriptions) {
        subscription.dispose();
      }
      pick.dispose();
    }),
  ];
  pick.show();
}

/** Find Similar Code: code elsewhere like the selection (or the symbol at the cursor). */
async function findSimilar(coder: CoderClient): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (editor === undefined) {
    void vscode.window.showInformationMessage("coder-lsp: open a file and select some code first.");
    return;
  }
  let hits: SearchHit[] | null;
  try {
    const convert = coder.running().code2ProtocolConverter;
    const uri = convert.asUri(editor.document.uri);
    const selection = editor.selection;
    const argument = selection.isEmpty
      ? { uri, position: convert.asPosition(selection.active) }
      : { uri, range: convert.asRange(selection) };
    hits = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: "coder-lsp: finding similar code" },
      () => coder.executeCommand<SearchHit[] | null>("findSimilar", argument),
    );
  } catch (error) {
    showError("Find Similar Code", error);
    return;
  }
  if (!hits || hits.length === 0) {
    void vscode.window.showInformationMessage("coder-lsp: no similar code found elsewhere in the workspace.");
    return;
  }
  const chosen = await vscode.window.showQuickPick(hits.map(hitItem), {
    title: "Coder: Similar Code",
    placeHolder: "Code elsewhere that does something similar",
    matchOnDescription: true,
  });
  if (chosen !== undefined) {
    await openHit(coder, chosen.hit).catch((error) => showError("opening the result", error));
  }
}

/** Show Index Status: the server's counts, model and index folder. */
async function indexStatus(coder: CoderClient): Promise<void> {
  let status: IndexStatus | undefined;
  try {
    coder.running();
    status = await coder.refreshStatus();
  } catch (error) {
    showError("Show Index Status", error);
    return;
  }
  if (status === undefined) {
    showError("Show Index Status", "the server did not answer indexStatus (see Coder: Show Server Log)");
    return;
  }
  const actions = coder.indexingRuns().length > 0 ? ["Cancel Indexing", "Show Log"] : ["Reindex", "Show Log"];
  const choice = await vscode.window.showInformationMessage(statusSummary(status), ...actions);
  if (choice === "Reindex") {
    await reindex(coder);
  } else if (choice === "Cancel Indexing") {
    coder.cancelIndexing();
  } else if (choice === "Show Log") {
    coder.output.show();
  }
}

/** Reindex Workspace: the server walks every folder again in the background. */
async function reindex(coder: CoderClient): Promise<void> {
  try {
    await coder.executeCommand("reindex", undefined);
  } catch (error) {
    showError("Reindex Workspace", error);
    return;
  }
  void vscode.window.showInformationMessage("coder-lsp: reindexing the workspace in the background.");
}

/**
 * Fine-tune Model on This Repository: asks the server's `fineTune` command, with a cancellable
 * progress notification fed by the server's work-done progress. A failed run answers with an
 * error, which is shown as it is.
 */
async function fineTune(coder: CoderClient): Promise<void> {
  const folder =
    vscode.workspace.workspaceFolders?.length === 1
      ? vscode.workspace.workspaceFolders[0]
      : await vscode.window.showWorkspaceFolderPick({ placeHolder: "Fine-tune the model on which folder?" });
  if (folder === undefined) {
    return;
  }
  try {
    coder.running();
  } catch (error) {
    void vscode.window.showErrorMessage(errorMessage(error));
    return;
  }
  const advertised = coder.serverCommands().includes("fineTune");
  try {
    const result = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `coder-lsp: fine-tuning the model on ${folder.name}`,
        cancellable: true,
      },
      (progress, token) => {
        let reported = 0;
        return coder.executeCommand<unknown>(
          "fineTune",
          { root: folder.uri.toString() },
          token,
          ({ message, percentage }) => {
            const increment = percentage === undefined ? undefined : Math.max(0, percentage - reported);
            reported = percentage ?? reported;
            progress.report({ message, increment });
          },
        );
      },
    );
    const summary =
      typeof result === "object" && result !== null && "message" in result
        ? String((result as { message: unknown }).message)
        : "done";
    void vscode.window.showInformationMessage(`coder-lsp: fine-tuning finished: ${summary}`);
  } catch (error) {
    if (isCancellation(error)) {
      void vscode.window.showInformationMessage("coder-lsp: fine-tuning cancelled.");
      return;
    }
    const offered = advertised ? "" : " (this coder-lsp server does not list fineTune in executeCommandProvider)";
    void vscode.window.showErrorMessage(`coder-lsp: fine-tuning failed: ${errorMessage(error)}${offered}`);
  }
}

export function registerCommands(context: vscode.ExtensionContext, coder: CoderClient): void {
  const commands: [string, () => unknown][] = [
    ["coderLsp.search", () => searchCode(coder)],
    ["coderLsp.findSimilar", () => findSimilar(coder)],
    ["coderLsp.fineTune", () => fineTune(coder)],
    ["coderLsp.indexStatus", () => indexStatus(coder)],
    ["coderLsp.reindex", () => reindex(coder)],
    ["coderLsp.showLog", () => coder.output.show()],
    ["coderLsp.restart", () => coder.restart()],
  ];
  for (const [id, run] of commands) {
    context.subscriptions.push(vscode.commands.registerCommand(id, run));
  }
}
