//! Turning comments and docstrings into plain doc text.
//!
//! Pure string functions: the tree walk in `code.rs` decides which comments belong to a symbol,
//! this module only strips markers (`///`, `/** */`, leading `*`, quotes) and indentation.

/// Strips the markers of one comment: `//`, `///`, `//!`, `/* */`, `/** */`, `/*! */`, the
/// `*` gutter of block comments, `#` and `##` (Ruby, Python), Ruby's `=begin … =end`, and Lua's
/// `--`, `---` and `--[[ … ]]`. Returns the comment's lines.
pub(crate) fn comment_lines(comment: &str) -> Vec<String> {
    let comment = comment.trim();
    if let Some(rest) = comment.strip_prefix("--") {
        if let Some(body) = lua_long_bracket(rest) {
            let mut raw = body.lines();
            let first = raw.next().map(|line| line.trim().to_string());
            return first.into_iter().chain(dedent(raw)).collect();
        }
        // LuaLS and LDoc open doc lines with `---`; longer runs are decoration.
        let rest = rest.trim_start_matches('-');
        let rest = rest.strip_suffix('\r').unwrap_or(rest);
        return vec![strip_one_space(rest).trim_end().to_string()];
    }
    if let Some(rest) = comment.strip_prefix('#') {
        let rest = rest.trim_start_matches('#');
        let rest = rest.strip_suffix('\r').unwrap_or(rest);
        return vec![strip_one_space(rest).trim_end().to_string()];
    }
    if let Some(body) = comment.strip_prefix("=begin") {
        let body = body.trim_end();
        let body = body.strip_suffix("=end").unwrap_or(body);
        // The rest of the `=begin` line is not text (`=begin rdoc`).
        let body = body.split_once('\n').map_or("", |(_, rest)| rest);
        return dedent(body.lines());
    }
    if let Some(rest) = comment.strip_prefix("//") {
        let rest = rest.strip_prefix(['/', '!']).unwrap_or(rest);
        let rest = rest.strip_suffix('\r').unwrap_or(rest);
        return vec![strip_one_space(rest).trim_end().to_string()];
    }
    let Some(body) = comment.strip_prefix("/*") else {
        return vec![comment.to_string()];
    };
    let body = body.strip_suffix("*/").unwrap_or(body);
    // `/**` and `/*!` open doc blocks; the extra marker is not text. Runs like `/*****` are
    // decoration.
    let body = body.trim_start_matches(['*', '!']);
    let raw: Vec<&str> = body.lines().collect();
    let gutter = raw
        .iter()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .all(|line| line.trim_start().starts_with('*'));
    let lines: Vec<String> = if gutter {
        raw.iter()
            .enumerate()
            .map(|(i, line)| {
                let line = line.trim_end();
                if i == 0 {
                    return line.trim_start().to_string();
                }
                let line = line.trim_start();
                let line = line.strip_prefix('*').unwrap_or(line);
                strip_one_space(line).to_string()
            })
            .collect()
    } else {
        let first = raw.first().map(|line| line.trim().to_string());
        let rest = dedent(raw.iter().skip(1).copied());
        first.into_iter().chain(rest).collect()
    };
    // A closing `**/` or a trailing `*` gutter line leaves stray stars behind.
    lines
        .into_iter()
        .map(|line| {
            let trimmed = line.trim_end_matches('*').trim_end();
            if trimmed.is_empty() {
                String::new()
            } else {
                line
            }
        })
        .collect()
}

/// The text inside a Lua long bracket, `[[ … ]]` or `[==[ … ]==]` (the `--` already gone), and
/// without a closing `--` (`--[[ … --]]`); `None` when the comment is not a long one.
fn lua_long_bracket(comment: &str) -> Option<&str> {
    let after = comment.strip_prefix('[')?;
    let level = after.len() - after.trim_start_matches('=').len();
    let body = after.get(level..)?.strip_prefix('[')?;
    let close = format!("]{}]", "=".repeat(level));
    let body = body.trim_end();
    let body = body.strip_suffix(close.as_str()).unwrap_or(body);
    Some(body.strip_suffix("--").unwrap_or(body))
}

/// Joins doc lines, dropping blank lines at both ends; `None` when nothing is left.
pub(crate) fn join_doc(lines: Vec<String>) -> Option<String> {
    let first = lines.iter().position(|line| !line.trim().is_empty())?;
    let last = lines.iter().rposition(|line| !line.trim().is_empty())?;
    Some(lines[first..=last].join("\n"))
}

/// The text of a Python string literal used as a docstring, without prefix, quotes and common
/// indentation (the same clean-up as `inspect.cleandoc`).
pub(crate) fn python_docstring(literal: &str) -> Option<String> {
    let literal = literal.trim();
    let unprefixed = literal.trim_start_matches(|c: char| "rRuUbBfF".contains(c));
    // Only plain and raw strings are docstrings; bytes and f-strings are not, but keeping their
    // text is more useful than dropping it.
    let body = ["\"\"\"", "'''", "\"", "'"].iter().find_map(|quote| {
        let inner = unprefixed.strip_prefix(quote)?;
        Some(inner.strip_suffix(quote).unwrap_or(inner))
    })?;
    let mut raw = body.lines();
    let first = raw.next().map(|line| line.trim().to_string());
    let lines: Vec<String> = first.into_iter().chain(dedent(raw)).collect();
    join_doc(lines)
}

/// Removes the indentation common to all non-blank lines and trailing whitespace.
fn dedent<'a>(lines: impl Iterator<Item = &'a str> + Clone) -> Vec<String> {
    let indent = lines
        .clone()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .map(|line| {
            let line = line.trim_end();
            // Indentation is ASCII whitespace, but a line may be shorter or start with other
            // whitespace; never slice inside a character.
            line.get(indent..)
                .unwrap_or_else(|| line.trim_start())
                .to_string()
        })
        .collect()
}

fn strip_one_space(text: &str) -> &str {
    text.strip_prefix(' ').unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(comments: &[&str]) -> Option<String> {
        join_doc(comments.iter().flat_map(|c| comment_lines(c)).collect())
    }

    #[test]
    fn line_comments() {
        assert_eq!(
            doc(&["/// Parses input.", "///", "///   Indented."]).as_deref(),
            Some("Parses input.\n\n  Indented.")
        );
        assert_eq!(
            doc(&["// plain", "//no space"]).as_deref(),
            Some("plain\nno space")
        );
        assert_eq!(doc(&["//! inner\n"]).as_deref(), Some("inner"));
        assert_eq!(doc(&["//\r", "//"]), None);
        assert_eq!(
            doc(&["# Returns the body.", "#", "#   @return [String]"]).as_deref(),
            Some("Returns the body.\n\n  @return [String]")
        );
        assert_eq!(
            doc(&["## RDoc opener", "#no space"]).as_deref(),
            Some("RDoc opener\nno space")
        );
        assert_eq!(
            doc(&["=begin rdoc\n  Parses a header.\n    Indented.\n=end\n"]).as_deref(),
            Some("Parses a header.\n  Indented.")
        );
    }

    #[test]
    fn lua_comments() {
        assert_eq!(
            doc(&[
                "--- Creates an account.",
                "---@param owner string",
                "-- plain"
            ])
            .as_deref(),
            Some("Creates an account.\n@param owner string\nplain")
        );
        assert_eq!(doc(&["-------------", "--\r"]), None);
        assert_eq!(
            doc(&["--[[\n  Deposits money.\n    Indented.\n]]"]).as_deref(),
            Some("Deposits money.\n  Indented.")
        );
        assert_eq!(
            doc(&["--[==[ One line ]] still inside ]==]"]).as_deref(),
            Some("One line ]] still inside")
        );
        assert_eq!(doc(&["--[[ Old style --]]"]).as_deref(), Some("Old style"));
        assert_eq!(doc(&["--[ not long"]).as_deref(), Some("[ not long"));
        assert_eq!(doc(&["--[=x"]).as_deref(), Some("[=x"));
    }

    #[test]
    fn block_comments() {
        let javadoc = "/**\n     * Returns the user.\n     *\n     * @param id the id\n     */";
        assert_eq!(
            doc(&[javadoc]).as_deref(),
            Some("Returns the user.\n\n@param id the id")
        );
        assert_eq!(doc(&["/** One line. */"]).as_deref(), Some("One line."));
        assert_eq!(doc(&["/* plain */"]).as_deref(), Some("plain"));
        assert_eq!(
            doc(&["/*\n    Free form\n      indented\n  */"]).as_deref(),
            Some("Free form\n  indented")
        );
        assert_eq!(doc(&["/*****************/"]), None);
        assert_eq!(doc(&["/**\n * Ünïcödé\n **/"]).as_deref(), Some("Ünïcödé"));
    }

    #[test]
    fn docstrings() {
        assert_eq!(
            python_docstring("\"\"\"Fetch rows.\"\"\"").as_deref(),
            Some("Fetch rows.")
        );
        let multi =
            "'''Summary line.\n\n        Details here,\n          more indented.\n        '''";
        assert_eq!(
            python_docstring(multi).as_deref(),
            Some("Summary line.\n\nDetails here,\n  more indented.")
        );
        assert_eq!(python_docstring("r\"raw \\d\"").as_deref(), Some("raw \\d"));
        assert_eq!(
            python_docstring("\"\"\"\n    Starts on line two.\n    \"\"\"").as_deref(),
            Some("Starts on line two.")
        );
        assert_eq!(python_docstring("\"\"\"   \"\"\""), None);
        assert_eq!(python_docstring("42"), None);
    }
}
