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
    /// What kind of answer the query's wording asks for.
    pub shape: QueryShape,
    /// Every word of the query as written, lower case, split at anything not alphanumeric.
    raw_words: Vec<String>,
}

/// What kind of answer a query's wording asks for: one definition or a module. Read from the
/// first words, so it costs nothing and needs no model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryShape {
    /// One identifier, no sentence (`HTTPAdapter`, `Sinatra::Base`).
    Identifier,
    /// A question about how something works ("how does the router match a route"): a
    /// mechanism, which a module as a whole answers more often than one function.
    Mechanism,
    /// A command ("parse the Range header", "percent-encode a url"): what one function does.
    Action,
    /// A subject ("multipart form and file upload handling", "timer scheduling"): what a
    /// module covers.
    Topic,
    /// A description of one thing, opened by an article ("a channel that keeps only the latest
    /// value", "the state kept for a proxied draft"): most often a type.
    Description,
    /// Anything else: other questions ("where is …", "which …"), sentences that name an
    /// identifier.
    Other,
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
        let shape = if identifier.is_some() {
            QueryShape::Identifier
        } else {
            sentence_shape(query, &raw_words, !embedded.is_empty())
        };
        Self {
            terms,
            identifier,
            embedded,
            words,
            asks_for,
            shape,
            raw_words,
        }
    }

    /// Whether the query has this word as written (lower case, e.g. `v3`).
    pub fn names_word(&self, word: &str) -> bool {
        self.raw_words.iter().any(|w| w.eq_ignore_ascii_case(word))
    }

    /// Whether every word of the identifier `name` is a word of the query (`DRAFT_STATE` in
    /// "DRAFT_STATE symbol" or "the draft state"): the query names it.
    pub fn names_identifier(&self, name: &str) -> bool {
        let mut parts = split_identifier(name).into_iter().peekable();
        parts.peek().is_some() && parts.all(|part| self.names_word(part))
    }

    /// The query's words that ask for this kind of file ("test" in "the test for the router").
    pub fn asking_words(&self, class: PathClass) -> Vec<&str> {
        self.raw_words
            .iter()
            .filter(|w| class.asked_for(std::slice::from_ref(*w)))
            .map(String::as_str)
            .collect()
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

/// The shape of a query that is a sentence, not an identifier. One that names an identifier
/// (`names_code`) is after that definition unless it asks how something works.
fn sentence_shape(query: &str, words: &[String], names_code: bool) -> QueryShape {
    if asks_how(words) {
        return QueryShape::Mechanism;
    }
    if names_code {
        return QueryShape::Other;
    }
    // Whitespace-separated, so `percent-encode` stays one token.
    let tokens: Vec<String> = query
        .split_whitespace()
        .map(|t| {
            t.trim_matches(|c: char| !c.is_alphanumeric() && c != '-')
                .to_lowercase()
        })
        .filter(|t| !t.is_empty())
        .collect();
    // "recursively turn …", "lazily load …": the adverb qualifies the command ("only",
    // "apply" and "reply" are not adverbs).
    let adverb = |t: &String| t.len() > 5 && t.ends_with("ly") && !listed(COMMAND_VERBS, t);
    let start = tokens.iter().position(|t| !adverb(t)).unwrap_or(0);
    let [first, second, ..] = &tokens[start..] else {
        return QueryShape::Other;
    };
    // `url-decode`, `pretty-print`: the verb comes last.
    let head = first.rsplit('-').next().unwrap_or(first);
    // "recompute …", "unregister …": a listed verb behind a prefix. "work out …", "set up …",
    // "fall back to …": a phrasal verb, whatever its first word, when the query goes on. A
    // word the lists do not know is still a verb when a determiner follows it: "estimate the
    // memory cost", "prefix an error message" (a subject does not go on with "the" or "a").
    let opens_question = listed(ARTICLES, first) || listed(QUESTIONS, first);
    let commands = listed(COMMAND_VERBS, head)
        || prefixed_verb(head)
        || (!opens_question && listed(PARTICLES, second) && tokens.len() > start + 2)
        || (listed(NOUN_OR_VERB, head) && listed(OBJECT_STARTS, second))
        || (!opens_question && listed(DETERMINERS, second));
    if commands {
        QueryShape::Action
    } else if listed(ARTICLES, first) || (!opens_question && describes_a_thing(&tokens[start..])) {
        QueryShape::Description
    } else if listed(QUESTIONS, first) {
        QueryShape::Other
    } else {
        QueryShape::Topic
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

/// Whether a sentence no verb rule took describes one thing rather than naming a subject: a
/// noun phrase of up to four words that goes on with a relative clause ("converter that
/// builds …", "empty set that matches nothing"), or an agent noun before "for" ("position
/// tracker for scanning …"). Such a description, like one opening with an article, is most
/// often answered by a type.
fn describes_a_thing(tokens: &[String]) -> bool {
    let relative = tokens.iter().take(5).skip(1).any(|t| listed(RELATIVES, t));
    let agent = tokens.windows(2).take(4).any(|pair| {
        let noun = &pair[0];
        noun.len() > 4 && (noun.ends_with("er") || noun.ends_with("or")) && pair[1] == "for"
    });
    relative || agent
}

/// Whether `word` is a listed verb behind a prefix that keeps it a verb: "recompute",
/// "unregister", "preload". Not a word that is as often a noun ("return", "prefix"): those
/// open a command only before an object ([`NOUN_OR_VERB`]).
fn prefixed_verb(word: &str) -> bool {
    if listed(NOUN_OR_VERB, word) || listed(PREFIXED_NOUNS, word) {
        return false;
    }
    ["re", "un", "pre"].iter().any(|prefix| {
        word.strip_prefix(prefix)
            .is_some_and(|rest| rest.len() > 2 && listed(COMMAND_VERBS, rest))
    })
}

/// Whether `word` is one of the space-separated `words`.
fn listed(words: &str, word: &str) -> bool {
    words.split_whitespace().any(|w| w == word)
}

/// Verbs that open a command when they open a query: "parse …", "retry …". Base forms only
/// ("parsing …" names a subject). Words as often nouns are in [`NOUN_OR_VERB`].
const COMMAND_VERBS: &str = "\
    abort accept accumulate add adjust aggregate allocate allow annotate append apply archive \
    ask assert assign attach authenticate authorize await batch bind bootstrap break build bump \
    calculate call cancel capture cast change check choose chunk clean clear clone close \
    coalesce coerce collapse collect combine commit compact compare compile complete compose \
    compress compute concat concatenate configure confirm connect construct consume convert copy \
    count create debounce decide declare decode decompress decrypt dedupe deduplicate defer \
    define deflate delay delegate delete deliver deny dereference describe deserialize destroy \
    destructure detach detect determine diff disable discard disconnect dispatch display dispose \
    distribute divide download drain draw drop dump embed emit enable encode encrypt enforce \
    enqueue ensure enumerate erase escape evaluate exclude execute exit expand expire export \
    expose extend extract fail fetch fill finalize find finish fire fix flatten flush fold force \
    forward free freeze generate get give guard guess handle hide hold hydrate identify ignore \
    implement import include increment infer inflate inherit initialize inject inline insert \
    inspect install instantiate intercept intern interpolate interpret intersect invalidate \
    invert invoke isolate iterate join keep kill launch let lex limit lint listen load locate \
    look lowercase make manage mask measure memoize merge migrate mock modify mount move \
    multiply mutate negate negotiate nest normalize notify obtain omit open override pack pad \
    paginate parse partition pass pause peek perform persist pick pipe place pluralize poll pop \
    populate post prefer prefetch preload prepare prepend preserve prevent print process produce \
    promote prompt propagate protect provide prune publish pull push put qualify queue quote \
    raise rank read rebase rebuild receive recover recurse redact redirect reduce refresh refuse \
    register reject release reload relocate remap remember remove rename render reorder repeat \
    replace reply require rescue reset resize resolve respond restart restore resume retain \
    retrieve retry reuse reverse revert revoke rewind rewrite rotate round run sample sanitize \
    save scale scan schedule search seed seek select send serialize serve setup share shift \
    shorten show shuffle shut sign simplify singularize skip sleep slice slugify snapshot spawn \
    splice split start stash stop store stringify strip stub submit subscribe substitute \
    subtract summarize suspend swap sync take tell terminate throttle throw toggle tokenize \
    track transform translate transpose traverse trigger trim truncate try turn uncompress \
    unescape unlock unmarshal unmount unpack unquote unregister unset unsubscribe unwrap update \
    upgrade upload uppercase use validate verify visit wait wake walk warn watch wrap write \
    yield zip";

/// Words that open noun phrases as often as commands ("request parsing", "set the status"): a
/// command only when an object follows ([`OBJECT_STARTS`]).
const NOUN_OR_VERB: &str = "\
    block cache end error filter format group hash link list lock log lookup map mark match \
    order output patch query record report request return route set sort stream switch test time";

/// Words that start the object of a command: "set *the* status", "test *whether* …".
const OBJECT_STARTS: &str = "\
    the a an each every all one two its their this that these those some any no multiple several \
    many another both my your our whether if";

/// Words that open a noun phrase and only follow a verb in a query's first two words ("grow *the*
/// buffer"); unlike [`OBJECT_STARTS`], not "that" or "this", which also follow a noun ("options
/// that control …").
const DETERMINERS: &str = "the a an each every all its their some any several both";

/// Words that look like a prefix before a listed verb but are as often nouns or adjectives
/// ("prefix" is not "pre" + "fix"; "recall" and "research" name things).
const PREFIXED_NOUNS: &str = "prefix recall research unclear";

/// The second words of phrasal verbs: "work *out*", "set *up*", "fall *back*".
const PARTICLES: &str = "up out back down off over away";

/// Words that open a relative clause after a noun phrase ("converter *that* builds …").
const RELATIVES: &str = "that which whose";

/// Openings of a description of one thing ([`QueryShape::Description`]).
const ARTICLES: &str = "a an the";

/// Openings of questions other than "how".
const QUESTIONS: &str = "\
    what where which when who why whose does do is are can should could would will how";

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

/// A word's singular for matching ("tests" → "test", "dependencies" → "dependenc"): a plural
/// "s" or "ies" dropped where at least three letters stay; "ss" is kept.
pub(crate) fn singular(word: &str) -> &str {
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
    fn a_query_names_an_identifier_by_all_its_words() {
        let profile = QueryProfile::new("what is the DRAFT_STATE symbol for");
        assert!(profile.names_identifier("DRAFT_STATE"));
        assert!(QueryProfile::new("the draft state of a value").names_identifier("DRAFT_STATE"));
        assert!(!QueryProfile::new("an exact decimal number").names_identifier("DECIMAL_REGEX"));
        assert!(!profile.names_identifier(""));
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

    fn shape(query: &str) -> QueryShape {
        QueryProfile::new(query).shape
    }

    #[test]
    fn how_questions_are_told_apart() {
        use QueryShape::*;
        assert_eq!(shape("How does the router match a route?"), Mechanism);
        assert_eq!(shape("how ZodType parses its input"), Mechanism);
        assert_eq!(shape("how middleware chains are composed"), Mechanism);
        assert_eq!(shape("how?"), Identifier);
        assert_eq!(shape("parse how the config says"), Action);
        assert_eq!(shape("showHowTo"), Identifier);
        assert_eq!(
            shape("how long to wait before retrying a failed request"),
            Other
        );
        assert_eq!(shape("how many workers does the pool start"), Other);
    }

    #[test]
    fn commands_and_subjects_are_told_apart() {
        use QueryShape::*;
        assert_eq!(shape("parse the Range header"), Action);
        assert_eq!(shape("Retry failed requests"), Action);
        assert_eq!(shape("percent-encode a url without double quoting"), Action);
        assert_eq!(shape("recursively turn drafts into plain objects"), Action);
        assert_eq!(shape("apply a list of patches"), Action);
        assert_eq!(shape("set the status of the response"), Action);
        assert_eq!(shape("test whether a glob matches a path"), Action);
        // Verbs no list holds, known by the determiner after them.
        assert_eq!(shape("estimate the memory cost of a value"), Action);
        assert_eq!(shape("prefix an error message with its file"), Action);
        // "that" follows a noun, not a verb: not a command, but a description of a thing.
        assert_eq!(
            shape("options that control how a glob is matched"),
            Description
        );
        assert_eq!(shape("the memory cost of a value"), Description);
        assert_eq!(shape("multipart form and file upload handling"), Topic);
        assert_eq!(shape("request context and parameter binding"), Topic);
        assert_eq!(shape("saving and loading models from disk"), Topic);
        assert_eq!(shape("null-safe string utilities"), Topic);
        assert_eq!(shape("only numeric indices may be deleted"), Topic);
        assert_eq!(shape("where is the config file read"), Other);
        assert_eq!(
            shape("a channel that keeps only the latest value"),
            Description
        );
        assert_eq!(
            shape("error types raised by parseArgs"),
            Other,
            "names an identifier"
        );
        assert_eq!(shape("Router"), Identifier);
    }

    /// Each query's shape is the one listed beside it.
    fn assert_shapes(cases: &[(&str, QueryShape)]) {
        for (query, want) in cases {
            assert_eq!(shape(query), *want, "{query}");
        }
    }

    #[test]
    fn prefixed_and_phrasal_verbs_open_commands() {
        use QueryShape::*;
        assert_shapes(&[
            ("recompute proxies when a request is redirected", Action),
            ("unregister every handler of a logger", Action),
            ("work out which line the scanner is on", Action),
            ("set up the connection pool manager", Action),
            ("fall back to a regex set", Action),
            ("collapse line breaks into spaces", Action),
            // "re" before a word the list lacks is no verb; a particle needs more words.
            ("regex set for many globs", Topic),
            // Nouns that only look prefixed: "re" + "turn", "pre" + "fix".
            ("return value of a route handler", Topic),
            ("prefix tree of route segments", Topic),
            ("return the connection to the pool", Action),
            ("roll out", Topic),
            ("where do we back off", Other),
        ]);
    }

    #[test]
    fn a_noun_phrase_with_a_relative_clause_describes_a_thing() {
        use QueryShape::*;
        assert_shapes(&[
            ("converter that builds an outline", Description),
            ("empty set that matches nothing", Description),
            ("position tracker for scanning a line", Description),
            // Past the first words a "that" belongs to the subject's detail.
            (
                "timeout errors for connect and read that the adapter raises",
                Topic,
            ),
            ("multipart form and file upload handling", Topic),
            // A question stays a question.
            ("which handler that logs is used", Other),
        ]);
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
