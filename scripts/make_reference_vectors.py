"""Reference embeddings from sentence-transformers, for checking our own BERT in Rust.

Usage:
    python scripts/make_reference_vectors.py [MODEL_DIR] [OUTPUT_JSON]

MODEL_DIR defaults to $CODER_LSP_CACHE_DIR (or ~/.cache/coder-lsp)
/models/sentence-transformers--all-MiniLM-L6-v2 and OUTPUT_JSON to
server/testdata/minilm_reference.json. Needs `pip install sentence-transformers`.
"""

import json
import os
import sys
from pathlib import Path

from sentence_transformers import SentenceTransformer

REPO = Path(__file__).resolve().parent.parent
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"

# Real-looking code of varied language and length. One snippet is longer than the model's
# 256-token limit (truncation), one is non-ASCII, one is a one-word query.
SNIPPETS = [
    # Rust
    """pub fn parse_port(s: &str) -> Result<u16, ParseIntError> {
    s.trim().parse::<u16>()
}""",
    # Python
    """def read_config(path):
    \"\"\"Load a YAML config file, returning an empty dict if it does not exist.\"\"\"
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return yaml.safe_load(f) or {}""",
    # JavaScript
    """export function debounce(fn, wait = 100) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn.apply(this, args), wait);
  };
}""",
    # Go
    """func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
}""",
    # Java
    """public class LruCache<K, V> extends LinkedHashMap<K, V> {
    private final int capacity;
    public LruCache(int capacity) { super(16, 0.75f, true); this.capacity = capacity; }
    @Override protected boolean removeEldestEntry(Map.Entry<K, V> eldest) {
        return size() > capacity;
    }
}""",
    # C
    """static size_t count_lines(const char *buf, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) if (buf[i] == '\\n') n++;
    return n;
}""",
    # A search query, as a user would type it
    "retry http request with exponential backoff",
    # Non-ASCII: German comments, CJK identifiers in strings, an emoji
    """// Berechnet die Größe des Puffers für Übertragungen (数据包大小)
fn puffer_größe(länge: usize) -> usize {
    let größe = länge.next_power_of_two();
    log::info!("Puffer: {größe} Bytes 🚀");
    größe
}""",
    # TypeScript
    """interface User { id: string; email: string; createdAt: Date }
async function fetchUser(id: string): Promise<User | undefined> {
  const res = await fetch(`/api/users/${encodeURIComponent(id)}`);
  return res.ok ? ((await res.json()) as User) : undefined;
}""",
    # Long Rust: more than 256 tokens, so the model's truncation is part of the check
    """impl<'a> Tokenizer<'a> {
    /// Splits the source into tokens, keeping byte offsets so errors can point at the text.
    pub fn tokenize(&mut self) -> Result<Vec<Token>, LexError> {
        let mut tokens = Vec::new();
        while let Some(&(start, ch)) = self.chars.peek() {
            match ch {
                ' ' | '\\t' | '\\r' | '\\n' => {
                    self.chars.next();
                }
                '0'..='9' => {
                    let mut end = start;
                    while let Some(&(i, c)) = self.chars.peek() {
                        if c.is_ascii_digit() || c == '_' {
                            end = i + c.len_utf8();
                            self.chars.next();
                        } else {
                            break;
                        }
                    }
                    let text = &self.source[start..end];
                    let value = text.replace('_', "").parse::<i64>().map_err(|e| LexError {
                        offset: start,
                        message: format!("bad integer literal {text:?}: {e}"),
                    })?;
                    tokens.push(Token { kind: TokenKind::Int(value), span: start..end });
                }
                'a'..='z' | 'A'..='Z' | '_' => {
                    let mut end = start;
                    while let Some(&(i, c)) = self.chars.peek() {
                        if c.is_alphanumeric() || c == '_' {
                            end = i + c.len_utf8();
                            self.chars.next();
                        } else {
                            break;
                        }
                    }
                    let word = &self.source[start..end];
                    let kind = match word {
                        "let" => TokenKind::Let,
                        "fn" => TokenKind::Fn,
                        "if" => TokenKind::If,
                        "else" => TokenKind::Else,
                        "return" => TokenKind::Return,
                        _ => TokenKind::Ident(word.to_string()),
                    };
                    tokens.push(Token { kind, span: start..end });
                }
                '(' | ')' | '{' | '}' | ',' | ';' | '+' | '-' | '*' | '/' | '=' => {
                    self.chars.next();
                    tokens.push(Token { kind: TokenKind::Punct(ch), span: start..start + 1 });
                }
                other => {
                    return Err(LexError { offset: start, message: format!("unexpected {other:?}") });
                }
            }
        }
        Ok(tokens)
    }
}""",
    # Shell
    """#!/usr/bin/env bash
set -euo pipefail
for f in "$@"; do
  gzip -9 --keep "$f" && echo "compressed $f"
done""",
]


def default_model_dir() -> Path:
    cache = os.environ.get("CODER_LSP_CACHE_DIR")
    base = Path(cache) if cache else Path.home() / ".cache" / "coder-lsp"
    return base / "models" / "sentence-transformers--all-MiniLM-L6-v2"


def round_sig(x: float, digits: int = 7) -> float:
    return float(f"{x:.{digits}g}")


def main() -> None:
    model_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else default_model_dir()
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "server/testdata/minilm_reference.json"
    model = SentenceTransformer(str(model_dir), device="cpu")
    assert model.max_seq_length == 256, model.max_seq_length

    lengths = [len(model.tokenizer(t)["input_ids"]) for t in SNIPPETS]
    print("token counts (untruncated, with specials):", lengths)
    assert max(lengths) > 256, "need one snippet over the 256-token limit"

    vectors = model.encode(SNIPPETS, normalize_embeddings=True, convert_to_numpy=True)
    data = {
        "model": MODEL_NAME,
        "max_seq_length": model.max_seq_length,
        "snippets": [
            {"text": text, "vector": [round_sig(float(v)) for v in vec]}
            for text, vec in zip(SNIPPETS, vectors)
        ],
    }
    out.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {len(SNIPPETS)} vectors of {vectors.shape[1]} to {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
