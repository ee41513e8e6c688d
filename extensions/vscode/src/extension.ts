// Entry point of the coder-lsp extension: an output channel for the server's logs, the status
// bar, the language client and the commands. Settings the server reads at start-up offer a
// restart when they change.

import * as vscode from "vscode";
import { CoderClient } from "./client";
import { registerCommands } from "./commands";
import { RESTART_SETTINGS } from "./settings";
import { StatusBar } from "./statusBar";

let coder: CoderClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("coder-lsp");
  const statusBar = new StatusBar();
  coder = new CoderClient(context, output, statusBar);
  context.subscriptions.push(output, statusBar, coder);
  registerCommands(context, coder);

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (!RESTART_SETTINGS.some((key) => event.affectsConfiguration(`coderLsp.${key}`))) {
        return;
      }
      const choice = await vscode.window.showInformationMessage(
        "coder-lsp settings changed; the server reads them when it starts.",
        "Restart Server",
      );
      if (choice === "Restart Server") {
        await coder?.restart();
      }
    }),
  );

  await coder.start();
}

export async function deactivate(): Promise<void> {
  await coder?.stop();
  coder = undefined;
}
