// @ts-check
// End-to-end test of the extension in a real VS Code: code-server (VS Code 1.100 in a browser)
// with the packaged .vsix installed, on 127.0.0.1, driven by playwright-core in Debian's
// chromium. It waits until the status bar says the index is ready, runs Coder: Search Code,
// types a plain-language query, waits for the expected symbol in the list, opens it with Enter
// and records which file and line the editor shows, with screenshots. Run by
// tests/tests/e2e/vscode.rs, which prepares the workspace and asserts on the JSON this script writes.
//
// Environment (all required unless a default is given):
//   CODER_LSP_E2E_CODE_SERVER  the code-server executable (scripts/setup-editors installs it)
//   CODER_LSP_E2E_CHROMIUM     the browser (default /usr/bin/chromium)
//   CODER_LSP_E2E_VSIX         the packaged extension
//   CODER_LSP_E2E_SCRATCH      an empty folder for code-server's profile, logs and screenshots
//   CODER_LSP_TEST_BIN         the coder-lsp binary (given to the extension as coderLsp.serverPath)
//   CODER_LSP_TEST_ROOT        the workspace folder to open
//   CODER_LSP_TEST_INDEX_DIR   coderLsp.indexDir (never the user's cache)
//   CODER_LSP_E2E_QUERY        the query to type
//   CODER_LSP_E2E_EXPECT       the name of the symbol to open from the results
//   CODER_LSP_TEST_OUT         where the JSON result goes
//   CODER_LSP_E2E_SCREENSHOTS  where the screenshots go (default: $CODER_LSP_E2E_SCRATCH)
//   CODER_LSP_E2E_TIMEOUT_MS   the whole run's limit (default 240000)

import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { chromium } from "playwright-core";

/** @type {Record<string, unknown>} */
const result = { steps: [], timings: {} };
const started = Date.now();

/** @param {string} name */
function env(name) {
  const value = process.env[name];
  if (value === undefined || value === "") {
    throw new Error(`environment variable ${name} is not set`);
  }
  return value;
}

/** @param {string} step */
function log(step) {
  const line = `[${((Date.now() - started) / 1000).toFixed(1)}s] ${step}`;
  /** @type {string[]} */ (result.steps).push(line);
  process.stderr.write(`${line}\n`);
}

/** Records how long since the start a milestone took, in milliseconds. @param {string} name */
function mark(name) {
  /** @type {Record<string, number>} */ (result.timings)[name] = Date.now() - started;
}

/** A free TCP port on 127.0.0.1. @returns {Promise<number>} */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `url` until it answers, at most `timeoutMs`. @param {string} url @param {number} timeoutMs */
async function waitForHttp(url, timeoutMs, isAlive = () => true) {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (!isAlive()) {
      throw new Error(`code-server exited before ${url} answered`);
    }
    try {
      const response = await fetch(url);
      if (response.ok) {
        return;
      }
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = String(error);
    }
    await sleep(200);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms (${last})`);
}

/** @type {import("node:child_process").ChildProcess | undefined} */
let codeServer;
let codeServerExited = false;

/**
 * Stops code-server and everything it started: its own process group (it was spawned detached,
 * i.e. with setsid, so the group is exactly code-server and its children), SIGTERM first, SIGKILL
 * after 5 s.
 */
async function stopCodeServer() {
  const pid = codeServer?.pid;
  if (codeServer === undefined || pid === undefined || !Number.isInteger(pid) || pid <= 1) {
    return;
  }
  /** @param {NodeJS.Signals} signal */
  const signalGroup = (signal) => {
    try {
      process.kill(-pid, signal);
    } catch {
      // The group is gone.
    }
  };
  signalGroup("SIGTERM");
  const deadline = Date.now() + 5_000;
  while (!codeServerExited && Date.now() < deadline) {
    await sleep(100);
  }
  // Children (extension host, coder-lsp) may outlive code-server itself.
  await sleep(200);
  signalGroup("SIGKILL");
}

async function main() {
  const codeServerBin = env("CODER_LSP_E2E_CODE_SERVER");
  const browserBin = process.env.CODER_LSP_E2E_CHROMIUM || "/usr/bin/chromium";
  const vsix = env("CODER_LSP_E2E_VSIX");
  const scratch = env("CODER_LSP_E2E_SCRATCH");
  const serverBin = env("CODER_LSP_TEST_BIN");
  const root = fs.realpathSync(env("CODER_LSP_TEST_ROOT"));
  const indexDir = env("CODER_LSP_TEST_INDEX_DIR");
  const query = env("CODER_LSP_E2E_QUERY");
  const expect = env("CODER_LSP_E2E_EXPECT");
  const shots = process.env.CODER_LSP_E2E_SCREENSHOTS || scratch;
  fs.mkdirSync(shots, { recursive: true });
  result.root = root;

  const userData = path.join(scratch, "user-data");
  const extensions = path.join(scratch, "extensions");
  const config = path.join(scratch, "config.yaml");
  fs.mkdirSync(path.join(userData, "User"), { recursive: true });
  fs.writeFileSync(
    path.join(userData, "User", "settings.json"),
    JSON.stringify(
      {
        "coderLsp.serverPath": serverBin,
        "coderLsp.indexDir": indexDir,
        "coderLsp.logLevel": "info",
        // A few training steps: the fine-tuning run is real, only short.
        "coderLsp.fineTune": { heldout: 0.3, maxStepsPerStage: 1, batchSize: 4, maxTokens: 48 },
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": false,
        "workbench.enableExperiments": false,
        "workbench.welcomePage.walkthroughs.openOnInstall": false,
        "security.workspace.trust.enabled": false,
        "telemetry.telemetryLevel": "off",
        "extensions.autoCheckUpdates": false,
        "extensions.autoUpdate": false,
        "update.mode": "none",
        "chat.commandCenter.enabled": false,
      },
      null,
      2,
    ),
  );
  const common = ["--user-data-dir", userData, "--extensions-dir", extensions, "--config", config];
  // Nothing of code-server's own goes to the user's ~/.config or ~/.local.
  const childEnv = {
    ...process.env,
    XDG_CONFIG_HOME: path.join(scratch, "xdg-config"),
    XDG_DATA_HOME: path.join(scratch, "xdg-data"),
    HF_HUB_OFFLINE: "1",
  };

  log(`installing ${vsix}`);
  const install = spawnSync(codeServerBin, [...common, "--install-extension", vsix], {
    env: childEnv,
    encoding: "utf8",
    timeout: 120_000,
  });
  result.install_output = `${install.stdout ?? ""}${install.stderr ?? ""}`.trim();
  if (install.status !== 0) {
    throw new Error(`code-server --install-extension failed (${install.status ?? install.signal}): ${result.install_output}`);
  }
  mark("extension_installed_ms");

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const serverLog = fs.openSync(path.join(scratch, "code-server.log"), "w");
  log(`starting code-server on ${url}`);
  codeServer = spawn(
    codeServerBin,
    [
      ...common,
      "--bind-addr",
      `127.0.0.1:${port}`,
      "--auth",
      "none",
      "--disable-telemetry",
      "--disable-update-check",
      "--disable-workspace-trust",
      "--disable-getting-started-override",
      "--ignore-last-opened",
      root,
    ],
    { env: childEnv, detached: true, stdio: ["ignore", serverLog, serverLog] },
  );
  codeServer.on("exit", () => {
    codeServerExited = true;
  });
  await waitForHttp(`${url}/healthz`, 60_000, () => !codeServerExited);
  mark("code_server_up_ms");

  log(`starting ${browserBin}`);
  const browser = await chromium.launch({
    executablePath: browserBin,
    headless: true,
    chromiumSandbox: false,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    /** @type {string[]} */
    const consoleErrors = [];
    page.on("console", (message) => {
      if (message.type() === "error") {
        consoleErrors.push(message.text().slice(0, 500));
      }
    });
    result.console_errors = consoleErrors;
    await page.goto(`${url}/?folder=${encodeURIComponent(root)}`);
    await page.locator(".monaco-workbench").waitFor({ timeout: 60_000 });
    mark("workbench_ms");
    log("workbench loaded; waiting for the coder-lsp status item to say the index is ready");

    // The extension's status item: its accessible label reports progress, then readiness.
    const statusItem = page.locator('[aria-label^="coder-lsp:"]').first();
    /** @type {string[]} */
    const statusLabels = [];
    result.status_labels = statusLabels;
    const readyDeadline = Date.now() + 150_000;
    for (;;) {
      const label = (await statusItem.getAttribute("aria-label", { timeout: 1_000 }).catch(() => null)) ?? "";
      if (label !== "" && statusLabels[statusLabels.length - 1] !== label) {
        statusLabels.push(label);
        log(`status: ${label}`);
      }
      const ready = /^coder-lsp: index ready, (\d+) files/.exec(label);
      if (ready && Number(ready[1]) > 0) {
        break;
      }
      if (/server not found|failed to start|stopped/.test(label)) {
        throw new Error(`the extension reports a problem: ${label}`);
      }
      if (Date.now() > readyDeadline) {
        throw new Error(`the index was not ready within 150 s; status labels seen: ${JSON.stringify(statusLabels)}`);
      }
      await sleep(250);
    }
    mark("index_ready_ms");

    log("running Coder: Search Code from the command palette");
    const quickInput = page.locator(".quick-input-widget");
    const input = quickInput.locator("input.input");
    await page.locator(".monaco-workbench").click({ position: { x: 700, y: 400 } });
    /** Runs a command from the command palette. @param {string} title */
    const runCommand = async (title) => {
      await page.keyboard.press("F1");
      await input.waitFor({ state: "visible", timeout: 10_000 });
      await input.fill(`>${title}`);
      await quickInput.locator(".monaco-list-row", { hasText: title }).first().waitFor({ timeout: 15_000 });
      await page.keyboard.press("Enter");
    };
    await runCommand("Coder: Search Code");
    await quickInput.locator(".quick-input-title", { hasText: "Coder: Search Code" }).waitFor({ timeout: 10_000 });
    await quickInput.locator("input.input").waitFor({ state: "visible" });
    result.placeholder = await input.getAttribute("placeholder");

    log(`typing ${JSON.stringify(query)}`);
    const typed = Date.now();
    await page.keyboard.type(query, { delay: 15 });
    const expectedRow = quickInput.locator(".monaco-list-row", { hasText: expect }).first();
    await expectedRow.waitFor({ timeout: 30_000 });
    result.timings = { ...(/** @type {object} */ (result.timings)), results_after_typing_ms: Date.now() - typed };
    // Let the list settle (the last debounced answer replaces the items once).
    await sleep(600);

    const rows = quickInput.locator(".monaco-list-row");
    const count = await rows.count();
    /** @type {{label: string, description: string, detail: string}[]} */
    const listed = [];
    for (let i = 0; i < count; i++) {
      const row = rows.nth(i);
      const text = async (/** @type {string} */ selector) =>
        ((await row.locator(selector).first().textContent({ timeout: 1_000 }).catch(() => "")) ?? "").trim();
      listed.push({
        label: await text(".label-name"),
        description: await text(".label-description"),
        detail: await text(".quick-input-list-label-meta .label-name, .quick-input-list-detail"),
      });
    }
    result.results = listed;
    await page.screenshot({ path: path.join(shots, "vscode-search-results.png") });

    const index = listed.findIndex((row) => row.label === expect);
    if (index < 0) {
      throw new Error(`${expect} is not among the rows read back: ${JSON.stringify(listed)}`);
    }
    log(`opening row ${index} (${expect}) with Enter`);
    for (let i = 0; i < index; i++) {
      await page.keyboard.press("ArrowDown");
    }
    result.focused_row = ((await quickInput.locator(".monaco-list-row.focused .label-name").first().textContent()) ?? "").trim();
    await page.keyboard.press("Enter");
    await quickInput.waitFor({ state: "hidden", timeout: 10_000 });

    const activeTab = page.locator(".tabs-container .tab.active");
    await activeTab.waitFor({ timeout: 15_000 });
    const cursor = page.locator('[id="status.editor.selection"]');
    await cursor.waitFor({ timeout: 15_000 });
    await sleep(500);
    const breadcrumbs = await page.locator(".breadcrumbs-control .monaco-breadcrumb-item").allTextContents();
    result.opened = {
      tab: ((await activeTab.getAttribute("aria-label")) ?? "").trim(),
      breadcrumbs: breadcrumbs.map((b) => b.trim()).filter((b) => b !== ""),
      cursor: ((await cursor.textContent()) ?? "").trim(),
      title: await page.title(),
    };
    mark("opened_ms");
    await page.screenshot({ path: path.join(shots, "vscode-opened.png") });
    result.screenshots = [path.join(shots, "vscode-search-results.png"), path.join(shots, "vscode-opened.png")];
    log(`opened: ${JSON.stringify(result.opened)}`);

    // Two more commands whose answers arrive as notifications.
    const toasts = page.locator(".notifications-toasts .notification-list-item-message");
    /** Runs a command and returns the text of the first new notification containing `needle` (text or RegExp).
     * @param {string} title @param {string | RegExp} needle */
    const notification = async (title, needle, timeout = 30_000) => {
      log(`running ${title}`);
      await runCommand(title);
      const toast = toasts.filter({ hasText: needle }).first();
      await toast.waitFor({ timeout });
      return ((await toast.textContent()) ?? "").trim();
    };
    result.index_status = await notification("Coder: Show Index Status", "coder-lsp index");
    // The answer, not the progress notification ("fine-tuning the model on …") shown meanwhile.
    result.fine_tune = await notification(
      "Coder: Fine-tune Model on This Repository",
      /fine-tuning (failed|finished)/,
      180_000,
    );
    log(`fine-tune answered: ${result.fine_tune}`);
  } finally {
    await browser.close();
  }
}

const deadline = Number(process.env.CODER_LSP_E2E_TIMEOUT_MS || 240_000);
const watchdog = setTimeout(() => {
  result.error = `the end-to-end run took longer than ${deadline} ms`;
  void finish(1);
}, deadline);

/** @param {number} code */
async function finish(code) {
  clearTimeout(watchdog);
  mark("total_ms");
  await stopCodeServer();
  const out = process.env.CODER_LSP_TEST_OUT;
  if (out) {
    fs.writeFileSync(out, JSON.stringify(result, null, 2));
  }
  process.exit(code);
}

for (const signal of /** @type {const} */ (["SIGINT", "SIGTERM"])) {
  process.on(signal, () => {
    result.error = `stopped by ${signal}`;
    void finish(1);
  });
}

main().then(
  () => finish(0),
  (error) => {
    result.error = error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.stderr.write(`code-server.e2e: ${result.error}\n`);
    return finish(1);
  },
);
