// The status-bar item: indexing progress while the server indexes, then the model in use.
// Clicking it runs Show Index Status.

import * as vscode from "vscode";
import { type IndexProgress, type IndexStatus, statusView } from "./present";

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;

  constructor() {
    this.item = vscode.window.createStatusBarItem("coderLsp.status", vscode.StatusBarAlignment.Left, 10);
    this.item.name = "coder-lsp";
    this.item.command = "coderLsp.indexStatus";
  }

  show(status: IndexStatus | undefined, progress: IndexProgress | undefined): void {
    const view = statusView(status, progress);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.accessibilityInformation = { label: view.label };
    this.item.backgroundColor = undefined;
    this.item.command = "coderLsp.indexStatus";
    this.item.show();
  }

  /** A problem the user has to act on (no server, server stopped). */
  showProblem(label: string, tooltip: string): void {
    this.item.text = "$(error) coder-lsp";
    this.item.tooltip = tooltip;
    this.item.accessibilityInformation = { label };
    this.item.backgroundColor = new vscode.ThemeColor("statusBarItem.errorBackground");
    this.item.command = "coderLsp.showLog";
    this.item.show();
  }

  dispose(): void {
    this.item.dispose();
  }
}
