//! Files without a grammar: Markdown split into heading sections, everything else into windows
//! of about forty lines.
//!
//! Also home of [`Lines`], the line table every extractor uses to turn rows into the exact text
//! of whole lines. A file is split into lines once: `SymbolExtractor` builds the table of a code
//! file and hands the same one to the tree-sitter extraction (`code.rs`), the header scan
//! (`header.rs`) and, when the file has no definition, the text windows.

use super::{Symbol, SymbolKind};

/// Preferred window length for plain text, in lines.
const WINDOW_TARGET: usize = 40;
/// A window may end at a blank line anywhere in `WINDOW_MIN..=WINDOW_MAX` lines.
const WINDOW_MIN: usize = 30;
const WINDOW_MAX: usize = 50;
/// Window signatures are a hint of what the window holds, not a declaration.
const WINDOW_SIGNATURE_CHARS: usize = 120;

/// Byte offsets of the lines of a source, so that any range of rows can be sliced in O(1).
///
/// Rows are 0-based and split on `\n` only, the same convention as tree-sitter points; a `\r`
/// before the `\n` is not part of a line's content.
pub(crate) struct Lines<'a> {
    source: &'a str,
    /// Start offset of each line.
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(source: &'a str) -> Self {
        let mut starts = Vec::with_capacity(source.len() / 32 + 1);
        if !source.is_empty() {
            starts.push(0);
        }
        for (i, byte) in source.bytes().enumerate() {
            // A trailing newline ends the last line; it does not open an empty one.
            if byte == b'\n' && i + 1 < source.len() {
                starts.push(i + 1);
            }
        }
        Lines { source, starts }
    }

    /// The whole source the table was built from.
    pub(crate) fn source(&self) -> &'a str {
        self.source
    }

    /// Number of lines.
    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }

    /// Byte range of `row`'s content, without its line terminator.
    fn span(&self, row: usize) -> (usize, usize) {
        let Some(&start) = self.starts.get(row) else {
            return (self.source.len(), self.source.len());
        };
        let mut end = self
            .starts
            .get(row + 1)
            .map_or(self.source.len(), |&next| next - 1);
        let bytes = self.source.as_bytes();
        if end > start && bytes.get(end) != Some(&b'\n') && bytes.get(end - 1) == Some(&b'\n') {
            // Last line of a file that ends with a newline.
            end -= 1;
        }
        if end > start && bytes.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        (start, end)
    }

    /// The content of one line (0-based), without its terminator; empty past the end.
    pub(crate) fn line(&self, row: usize) -> &'a str {
        let (start, end) = self.span(row);
        self.source.get(start..end).unwrap_or("")
    }

    /// The exact text of rows `first..=last` (0-based), without the final line terminator.
    pub(crate) fn text(&self, first: usize, last: usize) -> &'a str {
        let (start, _) = self.span(first);
        let (_, end) = self.span(last.max(first));
        self.source.get(start..end).unwrap_or("")
    }

    /// Whether a line holds nothing but whitespace.
    pub(crate) fn is_blank(&self, row: usize) -> bool {
        self.line(row).trim().is_empty()
    }
}

/// Cuts `text` to at most `max_chars` characters (on a char boundary).
pub(crate) fn truncate_chars(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// Builds a section symbol over rows `first..=last` (0-based).
fn section(
    lines: &Lines<'_>,
    name: &str,
    container: Option<String>,
    signature: String,
    first: usize,
    last: usize,
) -> Symbol {
    Symbol {
        name: name.to_string(),
        kind: SymbolKind::Section,
        container,
        start_line: row_to_line(first),
        end_line: row_to_line(last),
        signature,
        doc: None,
        text: lines.text(first, last).to_string(),
        declaration: false,
    }
}

/// 0-based row to 1-based line number, saturating rather than wrapping on absurd inputs.
pub(crate) fn row_to_line(row: usize) -> u32 {
    u32::try_from(row).map_or(u32::MAX, |row| row.saturating_add(1))
}

/// Shrinks `first..=last` to its non-blank lines; `None` when all of them are blank.
fn trim_blank(lines: &Lines<'_>, first: usize, last: usize) -> Option<(usize, usize)> {
    let first = (first..=last).find(|&row| !lines.is_blank(row))?;
    let last = (first..=last).rev().find(|&row| !lines.is_blank(row))?;
    Some((first, last))
}

/// The first non-blank line of a range, trimmed and shortened: the signature of a window.
fn first_line_signature(lines: &Lines<'_>, first: usize, last: usize) -> String {
    (first..=last)
        .map(|row| lines.line(row).trim())
        .find(|line| !line.is_empty())
        .map(|line| truncate_chars(line, WINDOW_SIGNATURE_CHARS).to_string())
        .unwrap_or_default()
}

/// Splits a text file into windows of about [`WINDOW_TARGET`] lines, preferring to break at a
/// blank line so that paragraphs and config blocks stay whole.
pub(crate) fn text_windows(file_name: &str, source: &str) -> Vec<Symbol> {
    windows(file_name, &Lines::new(source))
}

/// [`text_windows`] of a file whose line table is already built.
pub(crate) fn windows(file_name: &str, lines: &Lines<'_>) -> Vec<Symbol> {
    let total = lines.len();
    let mut symbols = Vec::new();
    let mut start = 0;
    while start < total {
        let end = if total - start <= WINDOW_MAX {
            total
        } else {
            let target = start + WINDOW_TARGET;
            (start + WINDOW_MIN..=start + WINDOW_MAX)
                .filter(|&row| lines.is_blank(row))
                .min_by_key(|&row| row.abs_diff(target))
                .unwrap_or(target)
        };
        if let Some((first, last)) = trim_blank(lines, start, end - 1) {
            let signature = first_line_signature(lines, first, last);
            symbols.push(section(lines, file_name, None, signature, first, last));
        }
        start = end;
    }
    symbols
}

/// An ATX heading: `(level, text)`.
fn atx_heading(line: &str) -> Option<(usize, &str)> {
    let rest = strip_indent(line)?;
    let level = rest.bytes().take_while(|&b| b == b'#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &rest[level..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let mut text = rest.trim();
    // An optional closing sequence of `#`s, when separated by a space, is not part of the text.
    let without_closing = text.trim_end_matches('#');
    if without_closing.is_empty() {
        text = "";
    } else if without_closing.ends_with([' ', '\t']) {
        text = without_closing.trim_end();
    }
    Some((level, text))
}

/// Strips up to three spaces of indentation; `None` for four or more (an indented code block).
fn strip_indent(line: &str) -> Option<&str> {
    let spaces = line.bytes().take_while(|&b| b == b' ').count();
    if spaces > 3 {
        None
    } else {
        Some(&line[spaces..])
    }
}

/// A code fence opener or closer: the fence character and the run length.
fn fence(line: &str) -> Option<(u8, usize)> {
    let rest = strip_indent(line)?;
    let first = *rest.as_bytes().first()?;
    if first != b'`' && first != b'~' {
        return None;
    }
    let run = rest.bytes().take_while(|&b| b == first).count();
    (run >= 3).then_some((first, run))
}

/// Splits Markdown into one section per ATX heading; text before the first heading becomes a
/// section named after the file.
pub(crate) fn markdown_sections(file_name: &str, source: &str) -> Vec<Symbol> {
    let lines = Lines::new(source);
    let mut headings: Vec<(usize, usize, &str)> = Vec::new();
    let mut open_fence: Option<(u8, usize)> = None;
    for row in 0..lines.len() {
        let line = lines.line(row);
        if let Some((fence_char, fence_len)) = open_fence {
            if let Some((c, len)) = fence(line)
                && c == fence_char
                && len >= fence_len
                && line.trim().bytes().all(|b| b == c)
            {
                open_fence = None;
            }
            continue;
        }
        if let Some(opener) = fence(line) {
            open_fence = Some(opener);
        } else if let Some((level, text)) = atx_heading(line) {
            headings.push((row, level, text));
        }
    }

    let mut symbols = Vec::new();
    let preamble_end = headings.first().map_or(lines.len(), |&(row, _, _)| row);
    if preamble_end > 0
        && let Some((first, last)) = trim_blank(&lines, 0, preamble_end - 1)
    {
        let signature = first_line_signature(&lines, first, last);
        symbols.push(section(&lines, file_name, None, signature, first, last));
    }

    // Open headings, outermost first: the nearest one of a lower level is the parent.
    let mut parents: Vec<(usize, &str)> = Vec::new();
    for (i, &(row, level, text)) in headings.iter().enumerate() {
        let next = headings
            .get(i + 1)
            .map_or(lines.len(), |&(next, _, _)| next);
        let last = trim_blank(&lines, row, next - 1).map_or(row, |(_, last)| last);
        while parents.last().is_some_and(|&(parent, _)| parent >= level) {
            parents.pop();
        }
        let container = parents.last().map(|&(_, parent)| parent.to_string());
        let name = if text.is_empty() { file_name } else { text };
        let signature = lines.line(row).trim().to_string();
        symbols.push(section(&lines, name, container, signature, row, last));
        parents.push((level, name));
    }
    symbols
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, container, start, end, signature) of each symbol, for compact assertions.
    fn outline(symbols: &[Symbol]) -> Vec<(&str, Option<&str>, u32, u32, &str)> {
        symbols
            .iter()
            .map(|s| {
                assert_eq!(s.kind, SymbolKind::Section);
                assert_eq!(s.doc, None);
                (
                    s.name.as_str(),
                    s.container.as_deref(),
                    s.start_line,
                    s.end_line,
                    s.signature.as_str(),
                )
            })
            .collect()
    }

    #[test]
    fn lines_handle_terminators() {
        let lines = Lines::new("a\r\nbé\n\nlast");
        assert_eq!(lines.len(), 4);
        assert_eq!(lines.line(0), "a");
        assert_eq!(lines.line(1), "bé");
        assert_eq!(lines.line(2), "");
        assert_eq!(lines.line(3), "last");
        assert_eq!(lines.line(9), "");
        assert_eq!(lines.text(0, 1), "a\r\nbé");
        assert_eq!(lines.text(1, 3), "bé\n\nlast");

        let trailing = Lines::new("x\ny\n");
        assert_eq!(trailing.len(), 2);
        assert_eq!(trailing.line(1), "y");
        assert_eq!(trailing.text(0, 1), "x\ny");
        let crlf = Lines::new("x\r\ny\r\n");
        assert_eq!(crlf.text(0, 1), "x\r\ny");
        assert_eq!(Lines::new("").len(), 0);
        assert_eq!(Lines::new("\n").len(), 1);
        assert_eq!(Lines::new("\n").line(0), "");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("日本語", 5), "日本語");
        assert_eq!(truncate_chars("", 3), "");
    }

    #[test]
    fn markdown_headings_nest_and_skip_fences() {
        let source = "\
Intro paragraph
before any heading.

# Guide

Welcome.

## Install

```sh
# not a heading
cargo install coder-lsp
```

### From source ###

Build it.
## Usage
#hashtag is not a heading
~~~
## still code
~~~

# API
";
        let symbols = markdown_sections("README.md", source);
        assert_eq!(
            outline(&symbols),
            vec![
                ("README.md", None, 1, 2, "Intro paragraph"),
                ("Guide", None, 4, 6, "# Guide"),
                ("Install", Some("Guide"), 8, 13, "## Install"),
                (
                    "From source",
                    Some("Install"),
                    15,
                    17,
                    "### From source ###"
                ),
                ("Usage", Some("Guide"), 18, 22, "## Usage"),
                ("API", None, 24, 24, "# API"),
            ]
        );
        assert_eq!(
            symbols[2].text,
            "## Install\n\n```sh\n# not a heading\ncargo install coder-lsp\n```"
        );
        assert_eq!(symbols[5].text, "# API");
    }

    #[test]
    fn markdown_edge_cases() {
        assert!(markdown_sections("empty.md", "").is_empty());
        assert!(markdown_sections("blank.md", "\n\n  \n").is_empty());
        // A skipped level still finds the nearest lower-level heading as parent, and an empty
        // heading is named after the file.
        let source = "# Top\r\n### Deep\r\ntext é\r\n#\r\n    # indented code\r\n";
        let symbols = markdown_sections("notes.md", source);
        assert_eq!(
            outline(&symbols),
            vec![
                ("Top", None, 1, 1, "# Top"),
                ("Deep", Some("Top"), 2, 3, "### Deep"),
                ("notes.md", None, 4, 5, "#"),
            ]
        );
        assert_eq!(symbols[1].text, "### Deep\r\ntext é");
    }

    #[test]
    fn text_windows_break_at_blank_lines() {
        // 100 lines with blank rows 34 and 44: the first window ends before the blank closest to
        // row 40 (44 is 4 away, 34 is 6 away); the rest has no blank line and is cut at 40 lines.
        let mut source = String::new();
        for row in 0..100 {
            if row == 34 || row == 44 {
                source.push('\n');
            } else {
                source.push_str(&format!("line {row}\n"));
            }
        }
        let symbols = text_windows("notes.txt", &source);
        assert_eq!(
            outline(&symbols),
            vec![
                ("notes.txt", None, 1, 44, "line 0"),
                ("notes.txt", None, 46, 84, "line 45"),
                ("notes.txt", None, 85, 100, "line 84"),
            ]
        );
        assert!(symbols[0].text.starts_with("line 0\nline 1\n"));
        assert!(symbols[0].text.ends_with("\nline 43"));
    }

    #[test]
    fn text_windows_without_blank_lines_cut_at_target() {
        let source: String = (1..=130).map(|i| format!("  value_{i} = {i}\n")).collect();
        let symbols = text_windows("conf.ini", &source);
        assert_eq!(
            outline(&symbols),
            vec![
                ("conf.ini", None, 1, 40, "value_1 = 1"),
                ("conf.ini", None, 41, 80, "value_41 = 41"),
                ("conf.ini", None, 81, 130, "value_81 = 81"),
            ]
        );
    }

    #[test]
    fn text_windows_drop_blank_windows_and_shorten_signatures() {
        assert!(text_windows("empty.txt", "").is_empty());
        let mut source = "\n".repeat(60);
        source.push_str(&"é".repeat(200));
        source.push('\n');
        let symbols = text_windows("wide.txt", &source);
        assert_eq!(symbols.len(), 1);
        assert_eq!(symbols[0].start_line, 61);
        assert_eq!(symbols[0].end_line, 61);
        assert_eq!(symbols[0].signature, "é".repeat(120));
        assert_eq!(symbols[0].text, "é".repeat(200));
    }
}
