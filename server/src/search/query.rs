//! What a query looks like, read once before ranking: a bare identifier (`HTTPAdapter`,
//! `Sinatra::Base`) or a sentence, the identifiers a sentence mentions (`how does safeParse
//! report errors`), its content words, and which kinds of file it asks for.

use crate::words::{query_terms, split_identifier};

use super::priors::PathClass;

/// A query, analysed.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryProfile {
    /// The words BM25 matches ([`query_terms`]).
    pub terms: Vec<String>,
    /// The query is one identifier, possibly qualified (`a.b`, `A::B`, `A\B`, `a->b`, `A#b`).
    pub identifier: Option<Identifier>,
    /// Identifiers written inside a sentence: camelCase, PascalCase with two humps or more,
    /// snake_case, `call()` or `` `quoted` `` words.
    pub embedded: Vec<String>,
    /// The query's content words, lower case, split like identifiers and without stop words:
    /// what file and directory names are matched against.
    pub words: Vec<String>,
    /// Kinds of file the query names ("test", "example", …): their priors do not apply.
    pub asks_for: Vec<PathClass>,
    /// The query asks how something works ("how does the router match a route"): a mechanism,
    /// which a module as a whole answers more often than one function.
    pub asks_how: bool,
}

/// A queried identifier: its last segment, and the segment before it when qualified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    pub name: String,
    pub qualifier: Option<String>,
}

impl QueryProfile {
    pub fn new(query: &str) -> Self {
        let query = query.trim();
        let terms = query_terms(query);
        let identifier = bare_identifier(query);
        let embedded = if identifier.is_some() {
            Vec::new()
        } else {
            embedded_identifiers(query)
        };
        let words = content_words(&terms);
        let raw_words: Vec<String> = query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let asks_for = PathClass::ALL
            .into_iter()
            .filter(|class| class.asked_for(&raw_words))
            .collect();
        let asks_how = asks_how(&raw_words);
        Self {
            terms,
            identifier,
            embedded,
            words,
            asks_for,
            asks_how,
        }
    }

    /// Whether the query names this kind of file, so its prior is lifted.
    pub fn asks_for(&self, class: PathClass) -> bool {
        self.asks_for.contains(&class)
    }

    /// The identifiers whose definitions the query is after, with how strongly: a bare
    /// identifier fully, one embedded in a sentence by `embedded_share`.
    pub fn wanted_definitions(&self, embedded_share: f32) -> Vec<(&str, Option<&str>, f32)> {
        match &self.identifier {
            Some(id) => vec![(id.name.as_str(), id.qualifier.as_deref(), 1.0)],
            None => self
                .embedded
                .iter()
                .map(|name| (name.as_str(), None, embedded_share))
                .collect(),
        }
    }
}

/// "how does the router match a route", "how middleware is applied": a question about a
/// mechanism. "how long to wait before retrying" and "how many workers" ask for a value, which
/// one definition holds.
fn asks_how(words: &[String]) -> bool {
    const QUANTITY: [&str; 10] = [
        "long", "many", "much", "often", "far", "big", "large", "old", "fast", "soon",
    ];
    match words {
        [first, second, _, ..] => first == "how" && !QUANTITY.contains(&second.as_str()),
        _ => false,
    }
}

/// Characters an identifier may hold besides letters and digits (`$` in JS/PHP, `?`/`!` ending
/// Ruby methods).
fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

fn is_identifier(s: &str) -> bool {
    let s = s.strip_suffix(['?', '!']).unwrap_or(s);
    !s.is_empty()
        && s.chars().all(is_ident_char)
        && !s.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// The query as an identifier, if it is one: no spaces, and made of identifier segments joined
/// by `::`, `.`, `->`, `\` or `#`.
fn bare_identifier(query: &str) -> Option<Identifier> {
    if query.is_empty() || query.chars().any(char::is_whitespace) {
        return None;
    }
    let query = query.strip_suffix("()").unwrap_or(query);
    let normalised = query
        .replace("::", "\u{0}")
        .replace("->", "\u{0}")
        .replace(['.', '\\', '#'], "\u{0}");
    let segments: Vec<&str> = normalised.split('\u{0}').collect();
    if !segments.iter().all(|s| is_identifier(s)) {
        return None;
    }
    let name = segments.last()?.to_string();
    let qualifier = (segments.len() > 1).then(|| segments[segments.len() - 2].to_string());
    Some(Identifier { name, qualifier })
}

/// Identifiers written inside a sentence.
fn embedded_identifiers(query: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        let s = s.trim_matches(|c: char| !is_ident_char(c));
        if is_identifier(s) && s.chars().count() > 1 && !found.iter().any(|f| f == s) {
            found.push(s.to_string());
        }
    };
    // `quoted` words are identifiers whatever their shape.
    for (i, part) in query.split('`').enumerate() {
        if i % 2 == 1 && !part.trim().is_empty() && !part.contains(char::is_whitespace) {
            push(part.rsplit(['.', ':', '#']).next().unwrap_or(part));
        }
    }
    for raw in query.split_whitespace() {
        let called = raw.contains("()");
        let word = raw
            .trim_matches(|c: char| !is_ident_char(c) && c != '.' && c != ':')
            .trim_end_matches("()");
        // `Router.use` or `Base::call` inside a sentence: the last segment is the name.
        let last = word.rsplit(['.', ':']).next().unwrap_or(word);
        if called || looks_like_code(last) {
            push(last);
        }
    }
    found
}

/// camelCase, PascalCase with two humps or more (`StateManager`, not `Router` or `URL`),
/// snake_case with letters on both sides of an underscore.
fn looks_like_code(word: &str) -> bool {
    if !is_identifier(word) {
        return false;
    }
    let chars: Vec<char> = word.chars().collect();
    let inner_upper = chars
        .windows(2)
        .any(|w| w[0].is_lowercase() && w[1].is_uppercase());
    let snake = word.trim_matches('_').contains('_') && word.chars().any(char::is_alphabetic);
    inner_upper || snake
}

/// Content words for matching file and directory names: the query terms split like identifiers,
/// lower case, at least three characters, each once.
fn content_words(terms: &[String]) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for term in terms {
        let parts = split_identifier(term);
        for part in std::iter::once(term.as_str()).chain(parts) {
            let part = part.to_lowercase();
            if part.chars().count() >= 3
                && !part.chars().all(|c| c.is_ascii_digit())
                && !words.contains(&part)
            {
                words.push(part);
            }
        }
    }
    words
}

/// Whether a query word and a word of a file name are the same word: equal, a plural, or one a
/// prefix of the other of at least four characters covering most of the shorter (`config` and
/// `configuration`, `depend` and `dependencies`).
pub fn same_word(query_word: &str, name_word: &str) -> bool {
    if query_word == name_word {
        return true;
    }
    let (a, b) = (singular(query_word), singular(name_word));
    if a == b {
        return true;
    }
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let shorter = a.chars().count().min(b.chars().count());
    common >= 4 && common + 1 >= shorter
}

fn singular(word: &str) -> &str {
    if let Some(stem) = word.strip_suffix("ies")
        && stem.len() >= 3
    {
        return stem;
    }
    if word.ends_with("ss") {
        return word;
    }
    word.strip_suffix('s')
        .filter(|s| s.len() >= 3)
        .unwrap_or(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(query: &str) -> Option<(String, Option<String>)> {
        QueryProfile::new(query)
            .identifier
            .map(|i| (i.name, i.qualifier))
    }

    #[test]
    fn bare_identifiers_are_recognised_with_their_qualifier() {
        assert_eq!(id("HTTPAdapter"), Some(("HTTPAdapter".into(), None)));
        assert_eq!(
            id("field_validator"),
            Some(("field_validator".into(), None))
        );
        assert_eq!(id("session"), Some(("session".into(), None)));
        assert_eq!(
            id("Sinatra::Base"),
            Some(("Base".into(), Some("Sinatra".into())))
        );
        assert_eq!(id("req.ip"), Some(("ip".into(), Some("req".into()))));
        assert_eq!(
            id("$this->render"),
            Some(("render".into(), Some("$this".into())))
        );
        assert_eq!(
            id("App\\Http\\Kernel"),
            Some(("Kernel".into(), Some("Http".into())))
        );
        assert_eq!(id("valid?"), Some(("valid?".into(), None)));
        assert_eq!(id("parse()"), Some(("parse".into(), None)));
        assert_eq!(id("how routing works"), None);
        assert_eq!(id("a+b"), None);
        assert_eq!(id("2fa"), None);
        assert_eq!(id(""), None);
    }

    #[test]
    fn identifiers_inside_sentences_are_found() {
        let p = QueryProfile::new("how does safeParse report errors to the ZodError class");
        assert_eq!(p.embedded, vec!["safeParse", "ZodError"]);
        let p = QueryProfile::new("where is parse_args() called, and `Router`");
        assert_eq!(p.embedded, vec!["Router", "parse_args"]);
        let p = QueryProfile::new("what does Router.use do");
        assert_eq!(
            p.embedded,
            Vec::<String>::new(),
            "Router and use are plain words"
        );
        let p = QueryProfile::new("what does app.handleRequest do");
        assert_eq!(p.embedded, vec!["handleRequest"]);
        let p = QueryProfile::new("how are URL and HTTP handled");
        assert!(p.embedded.is_empty());
    }

    #[test]
    fn content_words_and_asked_for_classes() {
        let p = QueryProfile::new("Where are the tests for the HTTPAdapter retries?");
        assert!(p.words.contains(&"httpadapter".to_string()));
        assert!(p.words.contains(&"adapter".to_string()));
        assert!(p.words.contains(&"retries".to_string()));
        assert!(!p.words.contains(&"the".to_string()));
        assert!(p.asks_for(PathClass::Test));
        assert!(!p.asks_for(PathClass::Docs));
    }

    #[test]
    fn how_questions_are_told_apart() {
        assert!(QueryProfile::new("How does the router match a route?").asks_how);
        assert!(QueryProfile::new("how middleware chains are composed").asks_how);
        assert!(!QueryProfile::new("how?").asks_how);
        assert!(!QueryProfile::new("parse how the config says").asks_how);
        assert!(!QueryProfile::new("showHowTo").asks_how);
        assert!(!QueryProfile::new("how long to wait before retrying a failed request").asks_how);
        assert!(!QueryProfile::new("how many workers does the pool start").asks_how);
    }

    #[test]
    fn wanted_definitions_weigh_bare_above_embedded() {
        let bare = QueryProfile::new("Sinatra::Base");
        assert_eq!(
            bare.wanted_definitions(0.5),
            vec![("Base", Some("Sinatra"), 1.0)]
        );
        let sentence = QueryProfile::new("how is safeParse used");
        assert_eq!(
            sentence.wanted_definitions(0.5),
            vec![("safeParse", None, 0.5)]
        );
    }

    #[test]
    fn words_match_across_plurals_and_prefixes() {
        assert!(same_word("router", "router"));
        assert!(same_word("routers", "router"));
        assert!(same_word("dependencies", "dependency"));
        assert!(same_word("config", "configs"));
        assert!(same_word("middleware", "middlewares"));
        assert!(same_word("configuration", "config"));
        assert!(!same_word("configuration", "confirm"));
        assert!(same_word("session", "sessions"));
        assert!(!same_word("class", "clas"));
        assert!(!same_word("request", "response"));
        assert!(!same_word("app", "application"));
    }
}
