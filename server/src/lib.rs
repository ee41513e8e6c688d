//! coder-lsp: semantic code search over a workspace.
//!
//! The engine is plain Rust data in, plain Rust data out: `workspace` walks the files, `symbols`
//! turns source into symbols, `chunk` turns symbols into the text that is embedded, `embed` owns
//! the model on its own thread, `index` keeps the SQLite store and the vector index in step, and
//! `search` answers queries. The CLI (`cli`), the language server (`lsp`) and the MCP server
//! (`mcp`) drive the engine. `train` is the trainer, which `coder-lsp train` runs in a child
//! process of its own when a workspace is fine-tuned.

pub mod bench;
pub mod cache;
pub mod chunk;
pub mod cli;
pub mod context;
pub mod embed;
pub mod engine;
pub mod files;
pub mod finetune;
pub mod index;
#[cfg(feature = "lsp")]
pub mod lsp;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod memory;
pub mod model;
pub mod model_key;
pub mod search;
pub mod symbols;
pub mod train;
pub mod trainer_protocol;
pub mod words;
pub mod workspace;

/// The layer order of the modules (ARCHITECTURE.md): a module uses only modules of lower layers
/// (or of its own, without a cycle). Checked by `module_layers_hold`.
#[cfg(test)]
const LAYERS: &[&[&str]] = &[
    &[
        "words",
        "cache",
        "files",
        "model_key",
        "memory",
        "trainer_protocol",
    ],
    &["symbols"],
    &["chunk", "workspace"],
    &["embed"],
    &["index", "model", "finetune"],
    &["search"],
    &["context", "train"],
    &["engine", "bench"],
    &["lsp", "mcp"],
    &["cli"],
];

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// The top-level modules each module's non-test code names as `crate::…`.
    fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
        fn visit(dir: &Path, src: &Path, graph: &mut BTreeMap<String, BTreeSet<String>>) {
            for entry in std::fs::read_dir(dir).expect("read src") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    visit(&path, src, graph);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let rel = path.strip_prefix(src).expect("under src");
                let first = rel.components().next().expect("a component");
                let module = first
                    .as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string();
                let text = std::fs::read_to_string(&path).expect("read a module");
                // Unit tests sit at the bottom of their file and may use anything.
                let end = text
                    .match_indices("#[cfg(test)]")
                    .map(|(i, _)| i)
                    .find(|&i| {
                        text[i..]
                            .chars()
                            .take(120)
                            .collect::<String>()
                            .contains("mod tests")
                    })
                    .unwrap_or(text.len());
                let code = &text[..end];
                let uses = graph.entry(module.clone()).or_default();
                for (i, _) in code.match_indices("crate::") {
                    let name: String = code[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != module {
                        uses.insert(name);
                    }
                }
            }
        }
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut graph = BTreeMap::new();
        visit(&src, &src, &mut graph);
        graph.remove("lib");
        graph.remove("main");
        graph
    }

    #[test]
    fn module_layers_hold() {
        let layer_of = |module: &str| super::LAYERS.iter().position(|l| l.contains(&module));
        let graph = module_graph();
        for (module, uses) in &graph {
            let own = layer_of(module)
                .unwrap_or_else(|| panic!("module {module} has no layer in LAYERS (lib.rs)"));
            for used in uses {
                let Some(theirs) = layer_of(used) else {
                    continue; // a macro or a name that is not a module
                };
                assert!(
                    theirs < own,
                    "{module} (layer {own}) uses {used} (layer {theirs}): a module may use only lower layers; see ARCHITECTURE.md"
                );
            }
        }
        // Every layer module exists.
        for module in super::LAYERS.iter().flat_map(|l| l.iter()) {
            assert!(
                graph.contains_key(*module),
                "LAYERS names {module}, which is gone"
            );
        }
    }
}
