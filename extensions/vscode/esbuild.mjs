// Builds the extension with esbuild: `dist/extension.js` (one CommonJS file with
// vscode-languageclient inside; `vscode` is provided by the editor). `--production` minifies
// without source maps (what `npm run package` ships); `--tests` builds the unit tests in test/
// into out/test/ for `node --test`; `--watch` rebuilds on change.
//
// A production build also stages the other files the .vsix carries: the repository's LICENSE and,
// when CODER_LSP_BUNDLE_SERVER names a coder-lsp binary, that binary as server/coder-lsp (the
// extension starts a bundled server when coderLsp.serverPath is empty; the same binary is the
// trainer, `coder-lsp train`, which the server runs to fine-tune).
// `--stage DIR` (production only) puts all of it, with package.json, README.md and .vscodeignore,
// into DIR instead of this folder, so `vsce package` can run there (scripts/package-vscode)
// without touching the source tree.
import * as esbuild from "esbuild";
import { chmodSync, copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import * as path from "node:path";

const argv = process.argv.slice(2);
const args = new Set(argv);
const production = args.has("--production");
const stageAt = argv.indexOf("--stage");
const stage = stageAt >= 0 ? argv[stageAt + 1] : undefined;
if (stageAt >= 0 && (!stage || !production)) {
  console.error("esbuild.mjs: --stage DIR needs a directory and --production");
  process.exit(2);
}
/** Where the packaged files go: this folder, or the staging directory. */
const out = stage ?? ".";

/** @type {import("esbuild").BuildOptions} */
const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  external: ["vscode"],
  logLevel: "info",
};

if (args.has("--tests")) {
  const tests = readdirSync("test")
    .filter((name) => name.endsWith(".test.ts"))
    .map((name) => `test/${name}`);
  await esbuild.build({ ...common, entryPoints: tests, outdir: "out/test", sourcemap: "inline" });
} else {
  const options = {
    ...common,
    entryPoints: ["src/extension.ts"],
    outfile: path.join(out, "dist/extension.js"),
    minify: production,
    sourcemap: !production,
  };
  if (args.has("--watch")) {
    const context = await esbuild.context(options);
    await context.watch();
  } else {
    await esbuild.build(options);
  }
  if (production) {
    mkdirSync(out, { recursive: true });
    copyFileSync("../../LICENSE", path.join(out, "LICENSE"));
    if (stage) {
      for (const file of ["package.json", "README.md", ".vscodeignore"]) {
        copyFileSync(file, path.join(out, file));
      }
    }
    const serverDir = path.join(out, "server");
    rmSync(serverDir, { recursive: true, force: true });
    const server = process.env.CODER_LSP_BUNDLE_SERVER;
    if (server) {
      mkdirSync(serverDir);
      const name = `coder-lsp${process.platform === "win32" ? ".exe" : ""}`;
      copyFileSync(server, path.join(serverDir, name));
      chmodSync(path.join(serverDir, name), 0o755);
      console.log(`bundled ${server} as server/${name}`);
    }
  }
}
