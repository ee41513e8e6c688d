//! Conversions between LSP shapes and engine data: URIs and paths, ranges, command arguments,
//! result objects and hover text.

use std::path::{Path, PathBuf};

use tower_lsp_server::ls_types::{Position, Range, SymbolKind, Uri};

use crate::engine::RootedHit;

/// The local path of a `file://` URI.
pub fn path_of(uri: &Uri) -> Option<PathBuf> {
    uri.to_file_path().map(|p| p.into_owned())
}

/// The `file://` URI of a local path.
pub fn uri_of(path: &Path) -> Option<Uri> {
    Uri::from_file_path(path)
}

/// An LSP range covering 1-based inclusive lines `start..=end`.
pub fn lsp_range(start_line: u32, end_line: u32) -> Range {
    Range {
        start: Position {
            line: start_line.saturating_sub(1),
            character: 0,
        },
        end: Position {
            line: end_line,
            character: 0,
        },
    }
}

/// The LSP symbol kind for one of our kinds.
pub fn symbol_kind(kind: crate::symbols::SymbolKind) -> SymbolKind {
    use crate::symbols::SymbolKind as Kind;
    match kind {
        Kind::Function | Kind::Macro => SymbolKind::FUNCTION,
        Kind::Method => SymbolKind::METHOD,
        Kind::Class | Kind::Impl => SymbolKind::CLASS,
        Kind::Object => SymbolKind::OBJECT,
        Kind::Struct => SymbolKind::STRUCT,
        Kind::Enum => SymbolKind::ENUM,
        Kind::Trait | Kind::Interface => SymbolKind::INTERFACE,
        Kind::Module => SymbolKind::MODULE,
        Kind::Type => SymbolKind::TYPE_PARAMETER,
        Kind::Constant => SymbolKind::CONSTANT,
        Kind::Section => SymbolKind::NAMESPACE,
    }
}

/// Whether `position` sits on an identifier in code (not whitespace, not a comment line).
pub fn on_identifier(text: &str, position: Position) -> bool {
    let Some(line) = text.lines().nth(position.line as usize) else {
        return false;
    };
    let trimmed = line.trim_start();
    if ["//", "#", "/*", "*", "--", ";"]
        .iter()
        .any(|m| trimmed.starts_with(m))
    {
        return false;
    }
    // LSP characters are UTF-16 code units.
    let mut units = 0u32;
    for c in line.chars() {
        let width = c.len_utf16() as u32;
        if position.character < units + width {
            return c.is_alphanumeric() || c == '_';
        }
        units += width;
    }
    false
}

/// The "Related code" hover section, kept under `max_chars`.
pub fn related_markdown(name: &str, related: &[RootedHit], max_chars: usize) -> String {
    let mut out = format!("**Related code** (like `{name}`)\n");
    for hit in related {
        let Some(uri) = uri_of(&hit.abs_path()) else {
            continue;
        };
        let preview: String = hit.hit.signature.chars().take(100).collect();
        let line = format!(
            "\n- [`{}`]({}#L{}) — {}:{} — `{}`",
            hit.hit.name,
            uri.as_str(),
            hit.hit.start_line,
            hit.hit.path,
            hit.hit.start_line,
            preview.replace('`', "'")
        );
        if out.len() + line.len() > max_chars {
            break;
        }
        out.push_str(&line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_detection_skips_space_and_comments() {
        let text = "fn main() {\n    // a comment\n    let é = 1;\n\n}";
        let at = |line, character| on_identifier(text, Position { line, character });
        assert!(at(0, 3));
        assert!(!at(0, 2), "space");
        assert!(!at(1, 8), "comment");
        assert!(at(2, 8), "non-ASCII identifier");
        assert!(!at(3, 0), "empty line");
        assert!(!at(9, 0), "past the end");
    }

    #[test]
    fn ranges_are_zero_based_and_end_exclusive() {
        let range = lsp_range(6, 9);
        assert_eq!((range.start.line, range.end.line), (5, 9));
    }

    #[test]
    fn uris_round_trip() {
        let path = Path::new("/tmp/a b/ü.rs");
        let uri = uri_of(path).unwrap();
        assert_eq!(path_of(&uri).unwrap(), path);
    }
}
