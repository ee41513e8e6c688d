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
            // LDoc opens a doc block with `--[[--`: the dashes are a marker, not text.
            let first = raw
                .next()
                .map(|line| line.trim().trim_start_matches('-').trim_start().to_string());
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

/// Strips the markers of one Haskell Haddock comment: a run of `--` lines whose first opens with
/// `|` or `^` (`-- | Parse …`), or a `{-| … -}` block. Returns its lines; later lines keep their
/// indentation beyond the marker's space (code examples: `-- >  manyTill anyChar …`).
pub(crate) fn haddock_lines(comment: &str) -> Vec<String> {
    let comment = comment.trim();
    if let Some(body) = comment.strip_prefix("{-") {
        let body = body.strip_suffix("-}").unwrap_or(body);
        let body = body.strip_prefix(['|', '^']).unwrap_or(body);
        let mut raw = body.lines();
        let first = raw.next().map(|line| line.trim().to_string());
        return first.into_iter().chain(dedent(raw)).collect();
    }
    comment
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let line = line.trim_start();
            let rest = line
                .strip_prefix("--")
                .map_or(line, |rest| rest.trim_start_matches('-'));
            let rest = rest.strip_suffix('\r').unwrap_or(rest);
            let rest = match rest.trim_start().strip_prefix(['|', '^']) {
                Some(after_marker) if i == 0 => after_marker,
                _ => rest,
            };
            strip_one_space(rest).trim_end().to_string()
        })
        .collect()
}

/// The plain text of a Haddock doc (its comment markers already stripped): the inline markup
/// goes and its words stay. `@code@` and `/emphasis/` lose their delimiters, an identifier or
/// module link (`'Word8'`, `"Data.Text"`, `'T.Partial'`) becomes its name, `__bold__` its words,
/// and escaped characters (`\'`, `\"`) themselves. Code example lines (`> …`) are kept.
pub(crate) fn haddock_text(doc: &str) -> String {
    doc.lines()
        .map(|line| {
            if line.trim_start().starts_with('>') {
                return line.to_string();
            }
            let mut out = String::with_capacity(line.len());
            let mut chars = line.chars().peekable();
            let mut previous = ' ';
            while let Some(c) = chars.next() {
                let next = chars.peek().copied().unwrap_or(' ');
                let markup = match c {
                    '\\' if matches!(next, '\'' | '"' | '/' | '@' | '\\') => {
                        if let Some(escaped) = chars.next() {
                            out.push(escaped);
                            previous = escaped;
                        }
                        continue;
                    }
                    // Delimiters open at a word's start and close at its end.
                    '@' | '/' | '\'' | '"' => {
                        let opens = !previous.is_alphanumeric() && !next.is_whitespace();
                        let closes = !previous.is_whitespace() && !next.is_alphanumeric();
                        (opens || closes) && !(c == '/' && (previous == '/' || next == '/'))
                    }
                    '_' => next == '_' || previous == '_',
                    _ => false,
                };
                if !markup {
                    out.push(c);
                }
                previous = c;
            }
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
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

/// The plain text of a C# XML doc comment (its `///` markers already stripped): tags go, their
/// words stay. A reference (`<see cref="Owner"/>`, `<paramref name="x"/>`) becomes the name it
/// refers to, `<param name="x">` and `<typeparam name="T">` open with `x:`, `<exception
/// cref="E">` with `E:`, `<returns>` with `Returns:`; entities are decoded. Lines that held only
/// tags (`<summary>`) are dropped, blank lines kept.
pub(crate) fn xml_doc_text(doc: &str) -> Option<String> {
    markup_doc_text(doc, Markup::Xml)
}

/// The plain text of a `/** … */` doc block (Javadoc, Scaladoc, PHPDoc, JSDoc, KDoc, Doxygen;
/// its markers already stripped): HTML elements (`<p>`, `<code>`, `<a href="…">`, `<pre>`) go
/// and their words stay, entities are decoded, and inline tags become their text (`{@code x}`
/// is `x`, `{@link Foo#bar label}` is `label`, `{@link Foo#bar}` is `Foo.bar`, `{@inheritDoc}`
/// is nothing). Block tags (`@param`, `@return`) stay: they say what a value means. Anything
/// that only looks like a tag (`List<String>`, `a < b`) is text.
pub(crate) fn javadoc_text(doc: &str) -> Option<String> {
    markup_doc_text(doc, Markup::Html)
}

/// Which tags a doc comment's markup has.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Markup {
    /// C#'s XML doc elements: every tag is markup.
    Xml,
    /// HTML in a doc block, and Javadoc's `{@…}` inline tags: only HTML element names are markup.
    Html,
}

fn markup_doc_text(doc: &str, markup: Markup) -> Option<String> {
    let mut lines = Vec::new();
    for line in doc.lines() {
        let plain = match markup {
            Markup::Xml => markup_line_text(line, markup),
            Markup::Html => markup_line_text(&inline_tags_text(line), markup),
        };
        if plain.trim().is_empty() && !line.trim().is_empty() {
            continue;
        }
        lines.push(plain);
    }
    join_doc(dedent(lines.iter().map(String::as_str)))
}

/// One line of a doc comment without its markup (see [`xml_doc_text`], [`javadoc_text`]).
fn markup_line_text(line: &str, markup: Markup) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find(['<', '&']) {
        out.push_str(&rest[..open]);
        let at = &rest[open..];
        if let Some(entity) = at.strip_prefix('&') {
            let decoded = [
                ("lt;", '<'),
                ("gt;", '>'),
                ("amp;", '&'),
                ("quot;", '"'),
                ("apos;", '\''),
                ("#39;", '\''),
                ("nbsp;", ' '),
            ]
            .into_iter()
            .find(|(name, _)| entity.starts_with(name));
            match decoded {
                Some((name, c)) => {
                    out.push(c);
                    rest = &entity[name.len()..];
                }
                None => {
                    out.push('&');
                    rest = entity;
                }
            }
            continue;
        }
        // A tag starts with a letter or `/` and ends at the next `>`; anything else is text
        // (`a < b`). In HTML only the elements a doc comment uses are tags (`List<String>`
        // is a type).
        let tag_like = match markup {
            Markup::Xml => at[1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '/'),
            Markup::Html => is_html_tag(
                &at[1..],
                out.ends_with(|c: char| c.is_alphanumeric() || c == '_'),
            ),
        };
        let Some(close) = at.find('>').filter(|_| tag_like) else {
            out.push('<');
            rest = &at[1..];
            continue;
        };
        if markup == Markup::Xml {
            out.push_str(&xml_tag_text(&at[1..close]));
        }
        rest = &at[close + 1..];
    }
    out.push_str(rest);
    out.trim_end().to_string()
}

/// Whether `tag` (the text after a `<`) opens or closes an HTML element that doc comments use.
/// A one-letter element right after a name is a type parameter (`Builder<S>`, `Box<b>`), not a tag.
fn is_html_tag(tag: &str, after_name: bool) -> bool {
    const ELEMENTS: &str = "a abbr b big blockquote br caption center cite code dd del dfn div dl \
        dt em font h1 h2 h3 h4 h5 h6 hr i img ins kbd li ol p pre q s samp small span strike \
        strong sub sup table tbody td tfoot th thead tr tt u ul var";
    let closing = tag.starts_with('/');
    let tag = tag.strip_prefix('/').unwrap_or(tag);
    let end = tag
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(tag.len());
    let (element, after) = tag.split_at(end);
    let ends_element = after.starts_with(['>', '/', ' ', '\t']) || after.is_empty();
    let known = ELEMENTS
        .split_whitespace()
        .any(|known| known.eq_ignore_ascii_case(element));
    let type_parameter = after_name && !closing && element.len() == 1;
    ends_element && known && !type_parameter
}

/// A line with Javadoc's inline tags replaced by their text: `{@code x}` and `{@literal x}` by
/// `x`, `{@link Foo#bar(int) label}` by `label`, `{@link Foo#bar}` by `Foo.bar`, `{@inheritDoc}`
/// and `{@docRoot}` by nothing. An unclosed tag is left as it is.
fn inline_tags_text(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains("{@") {
        return line.into();
    }
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find("{@") {
        out.push_str(&rest[..open]);
        let inside = &rest[open + 2..];
        let Some(close) = closing_brace(inside) else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let tag = &inside[..close];
        let (name, body) = tag.split_once(char::is_whitespace).unwrap_or((tag, ""));
        let body = body.trim();
        match name.to_ascii_lowercase().as_str() {
            "link" | "linkplain" | "see" => {
                let (target, label) = split_reference(body);
                if label.is_empty() {
                    out.push_str(target.replace('#', ".").trim_start_matches('.'));
                } else {
                    out.push_str(label);
                }
            }
            "inheritdoc" | "docroot" => {}
            _ => out.push_str(body),
        }
        rest = &inside[close + 1..];
    }
    out.push_str(rest);
    out.into()
}

/// The offset of the `}` that closes an inline tag whose `{` came just before `text`, counting
/// nested braces (`{@code Map<K, {…}>}`).
fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (at, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(at),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// A `{@link}` body split into its reference and its label: the first space outside the
/// reference's parameter list ends the reference (`Foo#bar(int, int) the bar`).
fn split_reference(body: &str) -> (&str, &str) {
    let mut depth = 0usize;
    for (at, c) in body.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if c.is_whitespace() && depth == 0 => return (&body[..at], body[at..].trim()),
            _ => {}
        }
    }
    (body, "")
}

/// What a tag (the text between `<` and `>`) leaves in the plain text.
fn xml_tag_text(tag: &str) -> String {
    if tag.starts_with('/') {
        return String::new();
    }
    let self_closing = tag.ends_with('/');
    let tag = tag.trim_end_matches('/');
    let (element, attributes) = tag.split_once(char::is_whitespace).unwrap_or((tag, ""));
    let attribute = |name: &str| {
        let mut rest = attributes;
        while let Some(at) = rest.find(name) {
            let after = rest[at + name.len()..].trim_start();
            let boundary = rest[..at].ends_with(char::is_whitespace) || at == 0;
            if boundary && let Some(value) = after.strip_prefix('=') {
                let value = value.trim_start();
                let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
                let value = &value[1..];
                return Some(value.split(quote).next().unwrap_or(value).to_string());
            }
            rest = &rest[at + name.len()..];
        }
        None
    };
    // `cref="T:System.String"`: documentation IDs name what they refer to after a prefix.
    let reference = ["cref", "name", "langword", "href"]
        .into_iter()
        .find_map(attribute)
        .map(|value| match value.split_once(':') {
            Some((prefix, name)) if prefix.len() == 1 => name.to_string(),
            _ => value,
        });
    match (element, reference) {
        (_, Some(reference)) if self_closing => reference,
        ("param" | "typeparam" | "exception", Some(reference)) => format!("{reference}: "),
        ("returns", _) => "Returns: ".to_string(),
        ("value", _) => "Value: ".to_string(),
        _ => String::new(),
    }
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

/// The text of an Elixir `@doc`/`@moduledoc` value: a string or heredoc (`"…"`, `"""…"""`), or
/// a sigil (`~S"""…"""`, `~s(…)`); anything else (`false`, a variable) is no doc.
pub(crate) fn elixir_doc_string(value: &str) -> Option<String> {
    let value = value.trim();
    let body = match value.strip_prefix('~') {
        Some(sigil) => {
            // A sigil letter (`~S`, `~s`), then a delimiter that the last character closes, and
            // modifiers after it.
            let rest = sigil.get(1..)?.trim_end_matches(char::is_alphabetic);
            match ["\"\"\"", "'''"]
                .into_iter()
                .find_map(|quote| rest.strip_prefix(quote)?.strip_suffix(quote))
            {
                Some(body) => body,
                None => {
                    let mut chars = rest.chars();
                    chars.next()?;
                    chars.next_back()?;
                    chars.as_str()
                }
            }
        }
        None => ["\"\"\"", "\""].into_iter().find_map(|quote| {
            let inner = value.strip_prefix(quote)?;
            Some(inner.strip_suffix(quote).unwrap_or(inner))
        })?,
    };
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

/// The files that Rust code at `path` (workspace-relative, `/`-separated) takes docs from with
/// `#[doc = include_str!("…")]` or `#![doc = include_str!("…")]` (rustdoc reads the file as the
/// item's or module's doc), as workspace-relative paths: `../docs/extract.md` in
/// `src/extract/mod.rs` is `src/docs/extract.md`. Only a plain string literal is read (not
/// `concat!(env!("CARGO_MANIFEST_DIR"), …)`), and a path that leaves the workspace is dropped.
pub fn rust_doc_includes(path: &str, code: &str) -> Vec<String> {
    let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("include_str!") {
        let before = rest[..at].trim_end();
        rest = &rest[at + "include_str!".len()..];
        // The macro must be the value of a `doc` attribute: `#[doc = include_str!(…)]`.
        let Some(before) = before.strip_suffix('=') else {
            continue;
        };
        let Some(before) = before.trim_end().strip_suffix("doc") else {
            continue;
        };
        let before = before.trim_end();
        if !(before.ends_with("#[") || before.ends_with("#![")) {
            continue;
        }
        let Some(literal) = rest
            .trim_start()
            .strip_prefix('(')
            .map(str::trim_start)
            .and_then(|r| r.strip_prefix('"'))
        else {
            continue;
        };
        let Some(end) = literal.find(['"', '\\']) else {
            continue;
        };
        if literal[end..].starts_with('\\') {
            continue;
        }
        if let Some(target) = join_relative(dir, &literal[..end])
            && !found.contains(&target)
        {
            found.push(target);
        }
    }
    found
}

/// `relative` resolved against the directory `dir`, both `/`-separated and inside the
/// workspace; `None` when it climbs out of it or is absolute.
fn join_relative(dir: &str, relative: &str) -> Option<String> {
    if relative.is_empty() || relative.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haddock_comments_lose_their_markers_and_markup() {
        assert_eq!(
            haddock_lines("-- | Parse a number.\n-- It may be signed.\n--\n-- >  signed decimal"),
            vec![
                "Parse a number.",
                "It may be signed.",
                "",
                ">  signed decimal"
            ]
        );
        assert_eq!(
            haddock_lines("{-| Leaves the input\n    as it was. -}"),
            vec!["Leaves the input", "as it was."]
        );
        assert_eq!(haddock_lines("-- ^ the new bytes"), vec!["the new bytes"]);
        assert_eq!(
            haddock_text(
                "@manyTill p end@ applies action @p@ /zero/ or more times;\n\
                 a 'T.Partial' result from \"Data.Text\", __never__ with \\'-\\'.\n\
                 > simpleComment = string \"<!--\" *> manyTill anyChar (string \"-->\")"
            ),
            "manyTill p end applies action p zero or more times;\n\
             a T.Partial result from Data.Text, never with '-'.\n\
             > simpleComment = string \"<!--\" *> manyTill anyChar (string \"-->\")"
        );
        // Words that only contain the delimiters keep them.
        assert_eq!(
            haddock_text("it's input/output at http://example.com, not_a_marker"),
            "it's input/output at http://example.com, not_a_marker"
        );
    }

    #[test]
    fn elixir_doc_strings() {
        assert_eq!(
            elixir_doc_string("\"One line.\"").as_deref(),
            Some("One line.")
        );
        assert_eq!(
            elixir_doc_string("\"\"\"\n  Heredoc.\n\n    indented\n  \"\"\"").as_deref(),
            Some("Heredoc.\n\n  indented")
        );
        assert_eq!(
            elixir_doc_string("~S\"\"\"\n  Raw \\n.\n  \"\"\"").as_deref(),
            Some("Raw \\n.")
        );
        assert_eq!(elixir_doc_string("~s(Parens.)").as_deref(), Some("Parens."));
        assert_eq!(elixir_doc_string("false"), None);
        assert_eq!(elixir_doc_string("@other"), None);
        assert_eq!(elixir_doc_string("\"\""), None);
    }

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
        assert_eq!(
            doc(&["--[[-- LDoc's block.\n  More. ]]"]).as_deref(),
            Some("LDoc's block.\nMore.")
        );
        assert_eq!(doc(&["--[ not long"]).as_deref(), Some("[ not long"));
        assert_eq!(doc(&["--[=x"]).as_deref(), Some("[=x"));
    }

    #[test]
    fn javadoc_markup() {
        let javadoc = |comments: &[&str]| doc(comments).and_then(|doc| javadoc_text(&doc));
        assert_eq!(
            javadoc(&[concat!(
                "/**\n",
                " * Returns the {@code Class} of a <b>field</b>, see {@link Gson#toJson(Object, Type)}.\n",
                " *\n",
                " * <p>For example:\n",
                " * <pre class=\"code\">\n",
                " * List&lt;String&gt; red;\n",
                " * </pre>\n",
                " *\n",
                " * <P>Like {@linkplain #getType() its type}; {@inheritDoc}\n",
                " * @param f the <a href=\"https://example.com\">field</a>\n",
                " * @return a {@code Map<String, List<Integer>>}, never {@literal null}\n",
                " */"
            )])
            .as_deref(),
            Some(
                "Returns the Class of a field, see Gson.toJson(Object, Type).\n\n\
                 For example:\n\
                 List<String> red;\n\n\
                 Like its type;\n\
                 @param f the field\n\
                 @return a Map<String, List<Integer>>, never null"
            )
        );
        // Types, comparisons and unknown elements are text; an unclosed inline tag stays.
        assert_eq!(
            javadoc(&["/** a List<T> where a < b and <custom> {@code open */"]).as_deref(),
            Some("a List<T> where a < b and <custom> {@code open")
        );
        // A one-letter element right after a name is a type parameter, whatever its case.
        assert_eq!(
            javadoc(&["/** <B>Note:</B> a {@code Builder<S>}, Pair<S, B> or Box<b> */"]).as_deref(),
            Some("Note: a Builder<S>, Pair<S, B> or Box<b>")
        );
        assert_eq!(
            javadoc(&["/** {@link #size} of <ul><li>each</li></ul> &amp; more&nbsp;words */"])
                .as_deref(),
            Some("size of each & more words")
        );
        // A block of markup alone says nothing.
        assert_eq!(javadoc(&["/**\n * <p>\n * {@inheritDoc}\n */"]), None);
    }

    #[test]
    fn csharp_xml_doc_comments() {
        let xml = |comments: &[&str]| doc(comments).and_then(|doc| xml_doc_text(&doc));
        assert_eq!(
            xml(&[
                "/// <summary>",
                "/// Deposits <paramref name=\"amount\"/> into a <see cref=\"T:Bank.Account\"/>.",
                "/// </summary>",
                "/// <param name=\"amount\">How much.</param>",
                "/// <returns>The new balance, or <see langword=\"null\"/>.</returns>",
                "/// <exception cref=\"ArgumentException\">When negative.</exception>",
            ])
            .as_deref(),
            Some(
                "Deposits amount into a Bank.Account.\n\
                 amount: How much.\n\
                 Returns: The new balance, or null.\n\
                 ArgumentException: When negative."
            )
        );
        // Blank lines stay, tag-only lines go, indentation is relative, entities are decoded.
        assert_eq!(
            xml(&[
                "/// <summary>Parses.</summary>",
                "///",
                "/// <remarks>",
                "///   <code>",
                "///   if (a &lt; b &amp;&amp; c) { }",
                "///   </code>",
                "///   <para>Never &#1; throws</para>",
                "/// </remarks>",
            ])
            .as_deref(),
            Some("Parses.\n\n  if (a < b && c) { }\n  Never &#1; throws")
        );
        assert_eq!(xml(&["/// <summary></summary>", "/// <br/>"]), None);
        // Text that only looks like a tag is text.
        assert_eq!(
            xml(&["/// a < b, c <= d, unclosed <see cref=\"X\""]).as_deref(),
            Some("a < b, c <= d, unclosed <see cref=\"X\"")
        );
        assert_eq!(
            xml(&["/// <see href='https://example.com/x'>the spec</see>"]).as_deref(),
            Some("the spec")
        );
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

    #[test]
    fn rust_doc_includes_resolve_against_the_file() {
        let code = r#"#![doc = include_str!("../docs/extract.md")]
pub use x::FromRequest;

    #[doc = include_str!( "../docs/routing/nest.md" )]
    pub fn nest() {}
    #[doc=include_str!("./local.md")]
    fn local() {}
    // Not docs, or not a plain literal:
    const T: &str = include_str!("template.html");
    #![doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))]
    #[doc = include_str!("../../../../outside.md")]
    #[doc = include_str!("/etc/passwd")]
    #[doc = include_str!("../docs/extract.md")]
"#;
        assert_eq!(
            rust_doc_includes("src/extract/mod.rs", code),
            vec![
                "src/docs/extract.md",
                "src/docs/routing/nest.md",
                "src/extract/local.md"
            ]
        );
        assert_eq!(
            rust_doc_includes("lib.rs", "#![doc = include_str!(\"../README.md\")]"),
            Vec::<String>::new()
        );
        assert_eq!(
            rust_doc_includes("src/lib.rs", "#![doc = include_str!(\"../README.md\")]"),
            vec!["README.md"]
        );
        assert!(rust_doc_includes("a.rs", "#[doc = include_str!(\"unterminated").is_empty());
    }
}
