"""A tiny random-weight Qwen2 embedding model and its reference vectors, for testing our own
Qwen2 forward pass (server/src/embed/qwen2.rs) without the real bge-code-v1 weights.

Usage:
    /tmp/stvenv/bin/python scripts/make_tiny_qwen2.py [OUTPUT_DIR]

OUTPUT_DIR defaults to server/testdata/tiny-qwen2. It receives config.json,
model.safetensors, tokenizer.json, tokenizer_config.json and reference.json. Needs torch,
transformers and tokenizers. Run once; the output is committed, so tests never need Python.

The reference follows bge-code-v1's recipe: queries are `<instruct>{instruction}\\n<query>{text}`,
documents are the text itself, an EOS token is appended to every input, batches are padded on
the LEFT with an attention mask, the vector is the last token's hidden state, L2-normalised.
"""

import json
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import Qwen2Config, Qwen2Model

REPO = Path(__file__).resolve().parent.parent
EOS = "<|endoftext|>"
SEED = 6

# Training text for the tiny byte-level BPE vocabulary: code and prose like what gets indexed.
CORPUS = [
    "pub fn parse_port(s: &str) -> Result<u16, ParseIntError> { s.trim().parse::<u16>() }",
    "def read_config(path):\n    with open(path) as f:\n        return yaml.safe_load(f) or {}",
    "export function debounce(fn, wait = 100) { let timer = null; return timer; }",
    "func (s *Server) Close() error { s.mu.Lock(); defer s.mu.Unlock(); return nil }",
    "public static int gcd(int a, int b) { return b == 0 ? a : gcd(b, a % b); }",
    "Retries are scheduled with exponential backoff after a timeout.",
    "Find the function that parses the configuration file and returns the settings.",
    "Given a question in text, retrieve relevant code that answers the question.",
    "<instruct> <query> struct impl trait enum match loop while for return self",
]

INSTRUCTION = "Given a question in text, retrieve relevant code that answers the question."

QUERIES = [
    "parse a port number",
    "where are retries scheduled after a timeout",
]

DOCUMENTS = [
    "pub fn parse_port(s: &str) -> Result<u16, ParseIntError> {\n    s.trim().parse::<u16>()\n}",
    "def read_config(path):\n    with open(path) as f:\n        return yaml.safe_load(f) or {}",
    "gcd",
    "func (s *Server) Close() error {\n\ts.mu.Lock()\n\tdefer s.mu.Unlock()\n\treturn nil\n}",
]


def make_tokenizer() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    # Like Qwen2: the post-processor adds no tokens; the embedder appends EOS itself.
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    return tokenizer


def make_model(vocab_size: int, eos_id: int) -> Qwen2Model:
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        rope_theta=1000000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        use_sliding_window=False,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        torch_dtype="float32",
    )
    config._attn_implementation = "eager"
    model = Qwen2Model(config)
    # The default init (std 0.02) leaves a 64-wide model almost linear and its attention almost
    # uniform, which would hide mistakes in the mask or RoPE; larger weights make them show.
    generator = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                param.copy_(1.0 + 0.2 * torch.randn(param.shape, generator=generator))
            else:
                param.copy_(0.25 * torch.randn(param.shape, generator=generator))
    return model.eval()


def token_ids(tokenizer: Tokenizer, text: str, eos_id: int) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=True).ids + [eos_id]


def embed(model: Qwen2Model, batch: list[list[int]], pad_id: int) -> list[list[float]]:
    """Left-padded batch → last-token vectors, L2-normalised."""
    longest = max(len(ids) for ids in batch)
    ids = torch.tensor([[pad_id] * (longest - len(x)) + x for x in batch])
    mask = torch.tensor([[0] * (longest - len(x)) + [1] * len(x) for x in batch])
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    vectors = torch.nn.functional.normalize(hidden[:, -1, :], p=2, dim=-1)
    return vectors.tolist()


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "server/testdata/tiny-qwen2"
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)

    tokenizer = make_tokenizer()
    eos_id = tokenizer.token_to_id(EOS)
    model = make_model(tokenizer.get_vocab_size(), eos_id)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(
        json.dumps({"eos_token": EOS, "pad_token": EOS, "padding_side": "left"}, indent=2) + "\n"
    )

    inputs = [
        {"kind": "query", "text": q, "formatted": f"<instruct>{INSTRUCTION}\n<query>{q}"}
        for q in QUERIES
    ] + [{"kind": "document", "text": d, "formatted": d} for d in DOCUMENTS]
    batch = [token_ids(tokenizer, i["formatted"], eos_id) for i in inputs]
    lengths = {len(ids) for ids in batch}
    assert len(lengths) > 2, "the batch must mix lengths so that left padding is exercised"

    alone = [embed(model, [ids], eos_id)[0] for ids in batch]
    together = embed(model, batch, eos_id)
    for a, b in zip(alone, together):
        cosine = sum(x * y for x, y in zip(a, b))
        assert cosine > 0.99999, f"transformers itself is not padding-invariant: {cosine}"

    reference = {
        "instruction": INSTRUCTION,
        "dim": model.config.hidden_size,
        "inputs": [
            dict(entry, ids=ids, vector=vector, batched_vector=batched)
            for entry, ids, vector, batched in zip(inputs, batch, alone, together)
        ],
    }
    (out / "reference.json").write_text(json.dumps(reference, indent=1) + "\n")
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out} ({size / 1024:.0f} KiB), token lengths {sorted(len(b) for b in batch)}")


if __name__ == "__main__":
    main()
