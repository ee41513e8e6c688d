import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { findServer, type LookupInput } from "../src/serverPath";

function scratch(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "coder-lsp-ext-"));
}

function executable(file: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, "#!/bin/sh\n");
  fs.chmodSync(file, 0o755);
  return file;
}

function input(overrides: Partial<LookupInput>): LookupInput {
  return { setting: "", extensionDir: "/nonexistent", envPath: "", platform: "linux", home: "/home/u", ...overrides };
}

test("the serverPath setting wins over the bundled binary and PATH", () => {
  const dir = scratch();
  const configured = executable(path.join(dir, "custom", "coder-lsp"));
  executable(path.join(dir, "ext", "server", "coder-lsp"));
  executable(path.join(dir, "bin", "coder-lsp"));
  const found = findServer(input({ setting: configured, extensionDir: path.join(dir, "ext"), envPath: path.join(dir, "bin") }));
  assert.deepEqual(found, { ok: true, path: configured, source: "setting" });
});

test("a setting starting with ~/ is relative to the home folder", () => {
  const home = scratch();
  const bin = executable(path.join(home, "tools", "coder-lsp"));
  assert.deepEqual(findServer(input({ setting: "~/tools/coder-lsp", home })), { ok: true, path: bin, source: "setting" });
});

test("a wrong serverPath is an error naming it, with no fallback", () => {
  const dir = scratch();
  executable(path.join(dir, "bin", "coder-lsp"));
  const missing = findServer(input({ setting: path.join(dir, "nope"), envPath: path.join(dir, "bin") }));
  assert.equal(missing.ok, false);
  assert.match(!missing.ok ? missing.message : "", /coderLsp\.serverPath is set to .*nope.*does not exist/);

  const plain = path.join(dir, "not-executable");
  fs.writeFileSync(plain, "");
  fs.chmodSync(plain, 0o644);
  const notExecutable = findServer(input({ setting: plain }));
  assert.match(!notExecutable.ok ? notExecutable.message : "", /is not an executable file/);
});

test("the bundled binary comes before PATH", () => {
  const dir = scratch();
  const bundled = executable(path.join(dir, "ext", "server", "coder-lsp"));
  executable(path.join(dir, "bin", "coder-lsp"));
  assert.deepEqual(findServer(input({ extensionDir: path.join(dir, "ext"), envPath: path.join(dir, "bin") })), {
    ok: true,
    path: bundled,
    source: "bundled",
  });
});

test("PATH is searched in order, skipping empty and non-executable entries", () => {
  const dir = scratch();
  const shadow = path.join(dir, "a", "coder-lsp");
  fs.mkdirSync(path.dirname(shadow));
  fs.writeFileSync(shadow, "");
  const real = executable(path.join(dir, "b", "coder-lsp"));
  const envPath = ["", path.join(dir, "a"), path.join(dir, "b")].join(":");
  assert.deepEqual(findServer(input({ envPath })), { ok: true, path: real, source: "path" });
});

test("nothing found explains all three places and how to build the server", () => {
  const found = findServer(input({ envPath: scratch() }));
  assert.equal(found.ok, false);
  const message = !found.ok ? found.message : "";
  assert.match(message, /coderLsp\.serverPath/);
  assert.match(message, /bundled/);
  assert.match(message, /PATH/);
  assert.match(message, /cargo build --release -p coder-lsp/);
});
