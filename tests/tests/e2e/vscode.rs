//! End-to-end test of the VS Code extension in a real VS Code: the extension is packaged into a
//! .vsix (esbuild + vsce), installed into code-server (VS Code 1.100 served to a browser; installed
//! by `scripts/setup-editors`), and `extensions/vscode/e2e/code-server.e2e.mjs` drives it with
//! playwright-core in Debian's chromium: Coder: Search Code with a plain-language query, then
//! Enter on the expected symbol. The script reports what the editor showed as JSON; the
//! assertions are here. Screenshots go to `extensions/vscode/e2e-output/` (gitignored).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use coder_tests::Workspace;
use coder_tests::binary;
use coder_tests::editor::{Bounded, line_of, list, read_json, repo_root, run_bounded, tail};
use serde_json::Value;

/// The node script is killed after this long; its own watchdog is shorter.
const E2E_TIMEOUT: Duration = Duration::from_secs(300);
const PACKAGE_TIMEOUT: Duration = Duration::from_secs(180);

/// code-server: `$CODER_LSP_CODE_SERVER`, else where `scripts/setup-editors` installs it.
fn code_server() -> PathBuf {
    if let Some(path) = std::env::var_os("CODER_LSP_CODE_SERVER").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let tools = std::env::var_os("CODER_LSP_TOOLS_DIR")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("/var/tmp/coder-lsp-tools"), PathBuf::from);
    tools.join("code-server/node_modules/.bin/code-server")
}

fn extension_dir() -> PathBuf {
    repo_root().join("extensions/vscode")
}

/// Builds the extension and packages it as `<dir>/coder-lsp.vsix`, the way `npm run package`
/// does, so the test always installs the current source.
fn package_extension(dir: &Path) -> PathBuf {
    let ext = extension_dir();
    assert!(
        ext.join("node_modules/.bin/vsce").is_file(),
        "{} has no npm dependencies: run scripts/setup-tests (it runs scripts/setup-editors)",
        ext.display()
    );
    let vsix = dir.join("coder-lsp.vsix");
    let log = dir.join("package.txt");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"node esbuild.mjs --production && node_modules/.bin/vsce package --no-dependencies --out "$VSIX""#)
        .current_dir(&ext)
        .env("VSIX", &vsix)
        // Packaging must not bundle a server: the test gives its own through coderLsp.serverPath.
        .env_remove("CODER_LSP_BUNDLE_SERVER");
    let run = run_bounded(&mut cmd, &log, PACKAGE_TIMEOUT);
    assert!(
        run.success() && vsix.is_file(),
        "packaging the extension failed ({}):\n{}",
        run.describe(PACKAGE_TIMEOUT),
        run.output
    );
    vsix
}

/// The extension's output channel ("coder-lsp") as VS Code logged it, if found.
fn output_channel_log(scratch: &Path) -> String {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with("-coder-lsp.log"))
            {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&scratch.join("user-data/logs"), &mut found);
    found
        .iter()
        .map(|p| {
            let text = fs::read_to_string(p).unwrap_or_default();
            format!("{}:\n{}", p.display(), tail(text.lines(), 80))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn diagnostics(run: &Bounded, result: Option<&Value>, scratch: &Path) -> String {
    let code_server_log = fs::read_to_string(scratch.join("code-server.log")).unwrap_or_default();
    format!(
        "node: {}\n--- script output ---\n{}\n--- code-server log ---\n{}\n\
         --- the extension's output channel ---\n{}\n--- result ---\n{}",
        run.describe(E2E_TIMEOUT),
        run.output,
        tail(code_server_log.lines(), 40),
        output_channel_log(scratch),
        result.map_or_else(|| "(none)".to_string(), |r| format!("{r:#}")),
    )
}

#[test]
fn vscode_search_code_finds_and_opens_a_symbol_by_meaning() {
    let code_server = code_server();
    assert!(
        code_server.is_file(),
        "code-server is not installed at {}: run scripts/setup-tests (it runs scripts/setup-editors), \
         or set CODER_LSP_CODE_SERVER",
        code_server.display()
    );
    let ws = Workspace::from_fixture("sample-repo");
    let scratch = ws.dir.path().join("vscode");
    fs::create_dir_all(&scratch).expect("create scratch dir");
    let vsix = package_extension(ws.dir.path());
    let screenshots = extension_dir().join("e2e-output");
    let out_path = scratch.join("result.json");

    let query = "how long to wait before retrying a failed request";
    let mut cmd = Command::new("node");
    cmd.arg(extension_dir().join("e2e/code-server.e2e.mjs"))
        .current_dir(extension_dir())
        .env("CODER_LSP_E2E_CODE_SERVER", &code_server)
        .env("CODER_LSP_E2E_VSIX", &vsix)
        .env("CODER_LSP_E2E_SCRATCH", &scratch)
        .env("CODER_LSP_E2E_SCREENSHOTS", &screenshots)
        .env("CODER_LSP_E2E_QUERY", query)
        .env("CODER_LSP_E2E_EXPECT", "backoff_delay")
        .env("CODER_LSP_TEST_BIN", binary())
        .env("CODER_LSP_TEST_ROOT", ws.root())
        .env("CODER_LSP_TEST_INDEX_DIR", ws.index_dir())
        .env("CODER_LSP_TEST_OUT", &out_path)
        // Inherited by the server: the model comes from the cache, never from a hub.
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("CODER_LSP_MODEL")
        .env_remove("CODER_LSP_INDEX_DIR");
    let run = run_bounded(&mut cmd, &scratch.join("output.txt"), E2E_TIMEOUT);
    let result = read_json(&out_path);
    let diagnostics = diagnostics(&run, result.as_ref(), &scratch);
    eprintln!("code-server e2e finished in {:.1?}", run.elapsed);
    let check = |ok: bool, what: &str| assert!(ok, "{what}\n{diagnostics}");

    check(run.success(), "the end-to-end script failed");
    let result = result
        .as_ref()
        .unwrap_or_else(|| panic!("the script wrote no JSON result\n{diagnostics}"));
    check(result["error"].is_null(), "the script reported an error");
    eprintln!("timings (ms since start): {}", result["timings"]);

    // The status bar went from progress to "index ready" with the whole fixture and the model.
    let labels: Vec<String> = list(&result["status_labels"])
        .iter()
        .filter_map(|l| l.as_str().map(str::to_string))
        .collect();
    check(
        labels.last().is_some_and(|l| {
            l.starts_with("coder-lsp: index ready") && l.ends_with("model all-MiniLM-L6-v2")
        }),
        "the status bar did not end at \"index ready\" with the default model",
    );

    // The expected symbol is listed with its relative path and 1-based line.
    let line = line_of(&ws.root().join("src/retry.rs"), "pub fn backoff_delay") + 1;
    let rows = list(&result["results"]);
    let row = rows
        .iter()
        .find(|r| r["label"] == "backoff_delay")
        .unwrap_or_else(|| panic!("backoff_delay is not listed\n{diagnostics}"));
    check(
        row["description"] == format!("src/retry.rs:{line}").as_str(),
        "the backoff_delay row does not show src/retry.rs and its line",
    );
    check(
        row["detail"]
            .as_str()
            .is_some_and(|d| d.contains("pub fn backoff_delay")),
        "the backoff_delay row does not preview its signature",
    );
    check(
        rows.len() <= 10,
        "more rows than the server's default topK of 10",
    );
    check(
        result["focused_row"] == "backoff_delay",
        "Enter was not pressed on the backoff_delay row",
    );

    // Enter opened src/retry.rs with the cursor on the symbol's first line.
    let opened = &result["opened"];
    check(
        opened["tab"] == "retry.rs",
        "the active tab is not retry.rs",
    );
    check(
        list(&opened["breadcrumbs"]) == vec![Value::from("src"), Value::from("retry.rs")],
        "the breadcrumbs do not show src › retry.rs",
    );
    check(
        opened["cursor"] == format!("Ln {line}, Col 1").as_str(),
        "the cursor is not at the start of backoff_delay",
    );

    // Show Index Status and Fine-tune answered with notifications: the counts and model, and
    // the outcome of a real (short) fine-tuning run.
    let status = result["index_status"].as_str().unwrap_or_default();
    check(
        status.starts_with("coder-lsp index up to date: 6 files")
            && status.contains("all-MiniLM-L6-v2 (ready"),
        "Show Index Status did not show the complete index and the model",
    );
    let fine_tune = result["fine_tune"].as_str().unwrap_or_default();
    check(
        fine_tune.starts_with("coder-lsp: fine-tuning finished: held-out nDCG@10"),
        "Fine-tune did not show the server's answer",
    );

    for shot in list(&result["screenshots"]) {
        let path = PathBuf::from(shot.as_str().expect("screenshot path"));
        let bytes = fs::read(&path).unwrap_or_default();
        check(
            bytes.starts_with(b"\x89PNG"),
            &format!("{} is not a PNG screenshot", path.display()),
        );
    }
}

/// `scripts/package-vscode` with the binary under test: one .vsix for this platform that holds
/// the extension and the server, which is also the trainer (`coder-lsp train`), runnable once
/// unpacked (as VS Code unpacks it); bad arguments are refused with a reason.
#[test]
fn package_vscode_bundles_a_runnable_server_and_trainer_for_the_platform() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin_dir = binary().parent().expect("binary dir").to_path_buf();
    let script = repo_root().join("scripts/package-vscode");
    let bundled_before = extension_dir().join("server").exists();
    let vsix = dir.path().join("coder-lsp-platform.vsix");
    let mut cmd = Command::new(&script);
    cmd.arg("--bin-dir").arg(&bin_dir).arg("--out").arg(&vsix);
    let run = run_bounded(&mut cmd, &dir.path().join("package.txt"), PACKAGE_TIMEOUT);
    assert!(
        run.success() && vsix.is_file(),
        "scripts/package-vscode failed ({}):\n{}",
        run.describe(PACKAGE_TIMEOUT),
        run.output
    );

    // Unpack with Python's zipfile, keeping the modes the .vsix records (as VS Code does).
    let unpacked = dir.path().join("unpacked");
    let unzip = Command::new("python3")
        .arg("-c")
        .arg(
            "import os, sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             for info in z.infolist():\n\
             \x20   path = z.extract(info, sys.argv[2])\n\
             \x20   os.chmod(path, (info.external_attr >> 16) & 0o777)\n",
        )
        .arg(&vsix)
        .arg(&unpacked)
        .output()
        .expect("run python3");
    assert!(
        unzip.status.success(),
        "unpacking the .vsix failed: {}",
        String::from_utf8_lossy(&unzip.stderr)
    );
    let manifest =
        fs::read_to_string(unpacked.join("extension.vsixmanifest")).expect("read the manifest");
    assert!(
        manifest.contains("TargetPlatform=\""),
        "the .vsix is not platform-specific:\n{manifest}"
    );
    let extension = unpacked.join("extension");
    assert!(extension.join("dist/extension.js").is_file());
    let bundled: Vec<String> = fs::read_dir(extension.join("server"))
        .expect("the bundled server directory")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(bundled, ["coder-lsp"], "one binary is bundled");
    // The server, and the trainer it runs to fine-tune.
    for args in [&["--version"][..], &["train", "fine-tune", "--help"]] {
        let out = Command::new(extension.join("server/coder-lsp"))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run the bundled coder-lsp: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("coder-lsp"),
            "the bundled coder-lsp {args:?} does not run: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The source tree is left as it was (the extension is staged elsewhere).
    assert_eq!(extension_dir().join("server").exists(), bundled_before);

    // Bad arguments: a reason and exit status 2, no .vsix.
    for (args, reason) in [
        (vec!["--target", "beos-x64"], "unknown --target beos-x64"),
        (vec!["--bin-dir", "/nonexistent/bin"], "no such directory"),
        (vec!["--frobnicate"], "unknown argument --frobnicate"),
    ] {
        let out = Command::new(&script)
            .args(&args)
            .arg("--out")
            .arg(dir.path().join("bad.vsix"))
            .output()
            .expect("run scripts/package-vscode");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() == Some(2) && stderr.contains(reason),
            "{args:?}: expected exit 2 and {reason:?}, got {:?}: {stderr}",
            out.status.code()
        );
    }
    assert!(!dir.path().join("bad.vsix").exists());
}
