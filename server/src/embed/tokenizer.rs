//! The model's tokenizer, wrapped so that every part of the engine counts and cuts text the same
//! way the model will see it.
//!
//! Padding and truncation stored in tokenizer.json are switched off on load: the embedder cuts
//! inputs to the model's own limit and pads each batch to its longest input itself.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use tokenizers::{Encoding, Tokenizer, TruncationDirection};

use super::EmbedError;

/// A Hugging Face tokenizer with padding and truncation disabled. Cheap to clone (shared).
#[derive(Clone)]
pub struct ModelTokenizer {
    inner: Arc<Tokenizer>,
    /// Tokens added around one input's content: by the post-processor (`[CLS]` and `[SEP]`
    /// for BERT) or by the embedder (the EOS a decoder embedder appends).
    special_tokens: usize,
    /// [`ModelTokenizer::fingerprint`], computed on first use.
    fingerprint: Arc<OnceLock<String>>,
}

impl std::fmt::Debug for ModelTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelTokenizer")
            .field("vocab_size", &self.inner.get_vocab_size(true))
            .field("special_tokens", &self.special_tokens)
            .finish()
    }
}

impl ModelTokenizer {
    /// Loads `tokenizer.json`, switching off any padding or truncation it asks for.
    pub fn from_file(path: &Path) -> Result<Self, EmbedError> {
        let tokenizer = Tokenizer::from_file(path).map_err(|e| EmbedError::Load {
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            message: format!(
                "{}: cannot load tokenizer: {e}",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
        })?;
        Self::from_tokenizer(tokenizer)
    }

    /// Wraps an already built tokenizer, switching off its padding and truncation.
    pub fn from_tokenizer(mut tokenizer: Tokenizer) -> Result<Self, EmbedError> {
        tokenizer
            .with_truncation(None)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);
        let special_tokens = tokenizer
            .get_post_processor()
            .map_or(0, |p| tokenizers::PostProcessor::added_tokens(p, false));
        Ok(Self {
            inner: Arc::new(tokenizer),
            special_tokens,
            fingerprint: Arc::default(),
        })
    }

    /// Identifies how this tokenizer splits text: a hash of its whole definition (vocabulary,
    /// merges, normalizer, special tokens) and of the tokens the embedder adds. Two tokenizers
    /// with the same fingerprint count and cut every text alike.
    pub fn fingerprint(&self) -> &str {
        self.fingerprint.get_or_init(|| {
            let mut hasher = blake3::Hasher::new();
            // Serializing cannot fail for a tokenizer that was deserialized; an error still
            // gives a distinct (if less stable) identity instead of a panic.
            match self.inner.to_string(false) {
                Ok(json) => hasher.update(json.as_bytes()),
                Err(e) => hasher.update(e.to_string().as_bytes()),
            };
            hasher.update(&(self.special_tokens as u64).to_le_bytes());
            hasher.finalize().to_hex()[..16].to_string()
        })
    }

    /// The same tokenizer, for an embedder that appends one more token to every input after
    /// [`ModelTokenizer::encode_truncated`]; truncation and chunking leave room for it.
    pub fn with_appended_token(mut self) -> Self {
        self.special_tokens += 1;
        self.fingerprint = Arc::default();
        self
    }

    /// Token ids of `text`, with or without the model's special tokens; never truncated.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, EmbedError> {
        let encoding = self
            .inner
            .encode_fast(text, add_special_tokens)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Token ids ready for the model: special tokens included, content cut from the right so
    /// that the whole input has at most `max_tokens` tokens.
    pub fn encode_truncated(&self, text: &str, max_tokens: usize) -> Result<Vec<u32>, EmbedError> {
        let mut encoding = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let content_limit = max_tokens.saturating_sub(self.special_tokens);
        if encoding.len() > content_limit {
            encoding.truncate(content_limit, 0, TruncationDirection::Right);
            // The cut-off tail is kept as "overflowing" encodings, which the post-processor
            // would otherwise process too; nothing here wants them.
            drop(encoding.take_overflowing());
        }
        let encoding = self
            .inner
            .post_process(encoding, None, true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Number of content tokens in `text` (special tokens not counted). Without offsets, which
    /// counting does not need and which cost a good part of a tokenization.
    pub fn count_tokens(&self, text: &str) -> Result<usize, EmbedError> {
        let encoding = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(encoding.len())
    }

    /// The longest prefix of `text` that ends at a token boundary and has at most `max_tokens`
    /// content tokens; `text` itself when it already fits.
    pub fn truncate<'a>(&self, text: &'a str, max_tokens: usize) -> Result<&'a str, EmbedError> {
        let encoding = self.encode_with_offsets(text)?;
        if encoding.len() <= max_tokens {
            return Ok(text);
        }
        let offsets = encoding.get_offsets();
        // Normally the first cut fits; the loop guards against a tokenizer whose pieces change
        // when the text after them is removed, so the promise "at most max_tokens" always holds.
        let mut keep = max_tokens;
        while keep > 0 {
            let end = prefix_end(text, offsets[..keep].iter().map(|&(_, end)| end));
            let prefix = &text[..end];
            if self.count_tokens(prefix)? <= max_tokens {
                return Ok(prefix);
            }
            keep -= 1;
        }
        Ok(&text[..0])
    }

    /// Tokens the model adds around one input (2 for BERT: `[CLS]` and `[SEP]`).
    pub fn special_tokens_count(&self) -> usize {
        self.special_tokens
    }

    /// The id of a token in the vocabulary, if it is there.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    fn encode_with_offsets(&self, text: &str) -> Result<Encoding, EmbedError> {
        self.inner
            .encode(text, false)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))
    }
}

/// Byte index just past the last of the kept tokens, moved back onto a char boundary in case a
/// normalizer reported an offset inside a multibyte character.
fn prefix_end(text: &str, token_ends: impl Iterator<Item = usize>) -> usize {
    let mut end = token_ends.max().unwrap_or(0).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// What the chunker needs of a tokenizer.
impl crate::chunk::TokenCounter for ModelTokenizer {
    fn count(&self, text: &str) -> usize {
        self.count_tokens(text).unwrap_or_else(|e| {
            // Tokenizers do not fail on valid UTF-8; if one does, over-estimate to stay safe.
            tracing::warn!("token count failed ({e}); estimating");
            text.len() / 2 + 1
        })
    }

    fn truncate<'a>(&self, text: &'a str, max: usize) -> &'a str {
        ModelTokenizer::truncate(self, text, max).unwrap_or_else(|e| {
            tracing::warn!("token truncation failed ({e}); cutting by characters");
            let end = text
                .char_indices()
                .nth(max * 2)
                .map_or(text.len(), |(i, _)| i);
            &text[..end]
        })
    }

    fn fingerprint(&self) -> &str {
        ModelTokenizer::fingerprint(self)
    }

    fn special_tokens(&self) -> usize {
        self.special_tokens_count()
    }
}

/// The chunker for `tokenizer` and a model taking `model_max_tokens` tokens per input.
pub fn chunker(tokenizer: ModelTokenizer, model_max_tokens: usize) -> crate::chunk::Chunker {
    crate::chunk::Chunker::new(std::sync::Arc::new(tokenizer), model_max_tokens)
}

/// The chunker for the model in `model_dir`, read from its tokenizer and configuration alone
/// (no weights), so text is chunked exactly as an index built with that model.
pub fn chunker_for_model_dir(
    model_dir: &std::path::Path,
) -> Result<crate::chunk::Chunker, EmbedError> {
    let limits = super::read_text_limits(model_dir)?;
    Ok(chunker(limits.tokenizer, limits.max_tokens))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::embed::tiny_bert_dir;

    /// The tiny BERT's WordPiece tokenizer: MiniLM's kind (lower-casing, [CLS] … [SEP], a
    /// tokenizer.json that pads and truncates to 128) with a vocabulary of a few hundred words.
    fn tokenizer() -> ModelTokenizer {
        ModelTokenizer::from_file(&tiny_bert_dir().join("tokenizer.json"))
            .expect("tokenizer.json loads")
    }

    #[test]
    fn padding_and_truncation_from_file_are_disabled() {
        let tok = tokenizer();
        // The stored tokenizer.json pads and truncates to 128; neither may happen here.
        let long = "word ".repeat(300);
        assert_eq!(tok.count_tokens(&long).unwrap(), 300);
        assert_eq!(tok.encode(&long, true).unwrap().len(), 302);
        assert_eq!(tok.encode("hello", true).unwrap().len(), 3);
    }

    #[test]
    fn the_fingerprint_tells_tokenizers_apart() {
        let bert = tokenizer();
        assert_eq!(bert.fingerprint(), tokenizer().fingerprint(), "stable");
        assert_eq!(bert.fingerprint(), bert.clone().fingerprint());
        let qwen2 =
            ModelTokenizer::from_file(&crate::embed::tiny_qwen2_dir().join("tokenizer.json"))
                .unwrap();
        assert_ne!(bert.fingerprint(), qwen2.fingerprint());
        // One more token added by the embedder changes how much content fits.
        assert_ne!(
            qwen2.fingerprint(),
            qwen2.clone().with_appended_token().fingerprint()
        );
    }

    #[test]
    fn special_tokens_wrap_the_content() {
        let tok = tokenizer();
        assert_eq!(tok.special_tokens_count(), 2);
        let cls = tok.token_to_id("[CLS]").unwrap();
        let sep = tok.token_to_id("[SEP]").unwrap();
        let ids = tok.encode("fn main() {}", true).unwrap();
        assert_eq!(ids.first(), Some(&cls));
        assert_eq!(ids.last(), Some(&sep));
        assert_eq!(
            &ids[1..ids.len() - 1],
            tok.encode("fn main() {}", false).unwrap()
        );
    }

    #[test]
    fn encode_truncated_keeps_specials_within_the_limit() {
        let tok = tokenizer();
        let sep = tok.token_to_id("[SEP]").unwrap();
        let long = "alpha beta gamma ".repeat(100);
        let ids = tok.encode_truncated(&long, 16).unwrap();
        assert_eq!(ids.len(), 16);
        assert_eq!(ids.last(), Some(&sep));
        let full = tok.encode(&long, false).unwrap();
        assert_eq!(&ids[1..15], &full[..14]);
        // Short text is untouched.
        assert_eq!(
            tok.encode_truncated("alpha", 16).unwrap(),
            tok.encode("alpha", true).unwrap()
        );
        // A limit below the special tokens still yields a well-formed (empty) input.
        assert_eq!(tok.encode_truncated("alpha", 0).unwrap().len(), 2);
    }

    #[test]
    fn count_and_truncate_empty_text() {
        let tok = tokenizer();
        assert_eq!(tok.count_tokens("").unwrap(), 0);
        assert_eq!(tok.truncate("", 0).unwrap(), "");
        assert_eq!(tok.truncate("", 10).unwrap(), "");
        assert_eq!(tok.truncate("   ", 0).unwrap(), "   ");
    }

    #[test]
    fn truncate_returns_fitting_text_unchanged() {
        let tok = tokenizer();
        let text = "def add(a, b):\n    return a + b\n";
        let n = tok.count_tokens(text).unwrap();
        assert_eq!(tok.truncate(text, n).unwrap(), text);
        assert_eq!(tok.truncate(text, n + 5).unwrap(), text);
        // Trailing whitespace is not a token: still the whole text.
        let padded = format!("{text}   \n\n");
        assert_eq!(tok.truncate(&padded, n).unwrap(), padded);
    }

    #[test]
    fn truncate_cuts_at_token_boundaries() {
        let tok = tokenizer();
        let text = "let embedding = model.forward(&input_ids)?;";
        let n = tok.count_tokens(text).unwrap();
        assert!(n > 6);
        let mut previous = "";
        for max in 0..n {
            let cut = tok.truncate(text, max).unwrap();
            assert!(text.starts_with(cut));
            assert_eq!(tok.count_tokens(cut).unwrap(), max, "max {max}: {cut:?}");
            // Prefixes grow with the limit and never end in whitespace.
            assert!(cut.len() >= previous.len());
            assert_eq!(cut, cut.trim_end());
            previous = cut;
        }
        assert_eq!(tok.truncate(text, 0).unwrap(), "");
    }

    #[test]
    fn truncate_handles_multibyte_text() {
        let tok = tokenizer();
        // Accents, CJK (one token per character), emoji ([UNK]) and a combining mark.
        let text = "// Größe: 数据库连接 🚀 café e\u{301}tude naïve";
        let n = tok.count_tokens(text).unwrap();
        for max in 0..=n + 1 {
            let cut = tok.truncate(text, max).unwrap();
            assert!(text.starts_with(cut));
            assert!(tok.count_tokens(cut).unwrap() <= max, "max {max}: {cut:?}");
            if max >= n {
                assert_eq!(cut, text);
            } else {
                assert_eq!(tok.count_tokens(cut).unwrap(), max, "max {max}: {cut:?}");
            }
        }
        let cjk = "数据库连接";
        assert_eq!(tok.count_tokens(cjk).unwrap(), 5);
        assert_eq!(tok.truncate(cjk, 2).unwrap(), "数据");
    }

    #[test]
    fn missing_tokenizer_file_is_a_load_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = ModelTokenizer::from_file(&dir.path().join("tokenizer.json")).unwrap_err();
        assert!(
            matches!(&err, EmbedError::Load { message, .. } if message.contains("tokenizer.json")),
            "{err}"
        );
    }
}
