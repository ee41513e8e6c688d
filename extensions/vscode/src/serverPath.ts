// Finds the coder-lsp binary to start: the `coderLsp.serverPath` setting, else the binary
// bundled in the extension's `server/` folder, else `coder-lsp` on PATH. Kept free of the
// `vscode` module so it can be unit-tested in plain Node.

import * as fs from "node:fs";
import * as path from "node:path";

/** Where the server binary was found. */
export type ServerSource = "setting" | "bundled" | "path";

export type ServerLookup =
  | { ok: true; path: string; source: ServerSource }
  | { ok: false; message: string };

export interface LookupInput {
  /** The `coderLsp.serverPath` setting ("" when unset). */
  setting: string;
  /** The extension's install folder. */
  extensionDir: string;
  /** The PATH to search. */
  envPath: string | undefined;
  /** `process.platform`. */
  platform: NodeJS.Platform;
  /** The user's home folder, for a setting that starts with `~/`. */
  home: string;
}

/** The binary's file name on this platform. */
export function binaryName(platform: NodeJS.Platform): string {
  return platform === "win32" ? "coder-lsp.exe" : "coder-lsp";
}

function isExecutableFile(file: string, platform: NodeJS.Platform): boolean {
  try {
    if (!fs.statSync(file).isFile()) {
      return false;
    }
    // Windows has no execute bit; existing is enough there.
    fs.accessSync(file, platform === "win32" ? fs.constants.F_OK : fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const HOW_TO_GET_IT =
  "Build it with `cargo build --release -p coder-lsp` (the binary is target/release/coder-lsp) " +
  "and set `coderLsp.serverPath` to it, or put `coder-lsp` on PATH.";

/** Resolves the server binary, or explains what is wrong and how to fix it. */
export function findServer(input: LookupInput): ServerLookup {
  const setting = input.setting.trim();
  if (setting !== "") {
    let file = setting;
    if (file === "~" || file.startsWith("~/")) {
      file = path.join(input.home, file.slice(1));
    }
    file = path.resolve(file);
    if (isExecutableFile(file, input.platform)) {
      return { ok: true, path: file, source: "setting" };
    }
    const why = fs.existsSync(file) ? "is not an executable file" : "does not exist";
    return {
      ok: false,
      message: `coderLsp.serverPath is set to ${setting}, but ${file} ${why}. ${HOW_TO_GET_IT}`,
    };
  }

  const name = binaryName(input.platform);
  const bundled = path.join(input.extensionDir, "server", name);
  if (isExecutableFile(bundled, input.platform)) {
    return { ok: true, path: bundled, source: "bundled" };
  }

  const separator = input.platform === "win32" ? ";" : ":";
  for (const dir of (input.envPath ?? "").split(separator)) {
    if (dir === "") {
      continue;
    }
    const candidate = path.join(dir, name);
    if (isExecutableFile(candidate, input.platform)) {
      return { ok: true, path: candidate, source: "path" };
    }
  }

  return {
    ok: false,
    message:
      "The coder-lsp server was not found: `coderLsp.serverPath` is empty, the extension has no " +
      `bundled server, and there is no ${name} on PATH. ${HOW_TO_GET_IT}`,
  };
}
