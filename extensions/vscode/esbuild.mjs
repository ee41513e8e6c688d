// Builds the extension with esbuild: `dist/extension.js` (one CommonJS file with
// vscode-languageclient inside; `vscode` is provided by the editor). `--production` minifies
// without source maps (what `npm run package` ships); `--tests` builds the unit tests in test/
// into out/test/ for `node --test`; `--watch` rebuilds on change.
//
// A production build also stages the other files the .vsix carries: the repository's LICENSE and,
// when CODER_LSP_BUNDLE_SERVER names a coder-lsp binary, that binary as server/coder-lsp (the
// extension starts a bundled server when coderLsp.serverPath is empty).
import * as esbuild from "esbuild";
import { chmodSync, copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";

const args = new Set(process.argv.slice(2));
const production = args.has("--production");

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
    outfile: "dist/extension.js",
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
    copyFileSync("../../LICENSE", "LICENSE");
    rmSync("server", { recursive: true, force: true });
    const server = process.env.CODER_LSP_BUNDLE_SERVER;
    if (server) {
      mkdirSync("server");
      const name = process.platform === "win32" ? "coder-lsp.exe" : "coder-lsp";
      copyFileSync(server, `server/${name}`);
      chmodSync(`server/${name}`, 0o755);
      console.log(`bundled ${server} as server/${name}`);
    }
  }
}
