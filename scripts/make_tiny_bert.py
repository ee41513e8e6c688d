"""A tiny random-weight BERT sentence model and its reference vectors, for testing our own BERT
forward pass (server/src/embed/bert.rs) and everything that only needs *a* BERT model
(tokenizer mechanics, batching, LoRA, indexes) without downloading all-MiniLM-L6-v2.

Usage:
    PYTHON scripts/make_tiny_bert.py [OUTPUT_DIR]

PYTHON is one with torch, transformers and tokenizers, such as the venv `bench/run` makes
(/var/tmp/coder-lsp-bench-venv/bin/python).

OUTPUT_DIR defaults to server/testdata/tiny-bert. It is laid out like all-MiniLM-L6-v2's
sentence-transformers directory: config.json, model.safetensors, tokenizer.json (a lower-casing
WordPiece vocabulary trained here), vocab.txt, tokenizer_config.json, special_tokens_map.json,
modules.json, sentence_bert_config.json (max_seq_length 256) and 1_Pooling/config.json (mean
pooling), plus reference.json. When sentence-transformers is installed too, the script also loads
the directory with it and checks that it gives the same vectors. Run once; the output is
committed, so tests never need Python. The WordPiece trainer breaks ties in hash order, so another
run may give a slightly different vocabulary and reference (the weights stay the same): commit
every file of one run together.

The reference follows MiniLM's recipe: [CLS] text [SEP], cut to 256 tokens, batches padded on the
RIGHT with an attention mask, the mean of the token vectors under the mask, L2-normalised.
"""

import json
import sys
from pathlib import Path

import torch
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import BertConfig, BertModel

REPO = Path(__file__).resolve().parent.parent
SEED = 22
MAX_SEQ_LENGTH = 256
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# Training text for the small WordPiece vocabulary: code and prose like what gets indexed, and
# the words the Rust tests count on being one token each (one two three, word, hello, …).
CORPUS = [
    "pub fn parse_port(s: &str) -> Result<u16, ParseIntError> { s.trim().parse::<u16>() }",
    "fn main() { let config = load_config(path)?; println!(\"{config:?}\"); }",
    "fn add(a: i32, b: i32) -> i32 { a + b }",
    "let embedding = model.forward(&input_ids)?;",
    "def read_config(path):\n    with open(path) as f:\n        return yaml.safe_load(f) or {}",
    "def add(a, b): return a + b",
    "export function debounce(fn, wait = 100) { let timer = null; return timer; }",
    "func (s *Server) Close() error { s.mu.Lock(); defer s.mu.Unlock(); return nil }",
    "public static int gcd(int a, int b) { return b == 0 ? a : gcd(b, a % b); }",
    "class User: def __init__(self, name, email): self.name = name; self.email = email",
    "SELECT name, email FROM users WHERE active = 1 ORDER BY created_at DESC",
    "Retries are scheduled with exponential backoff after a timeout.",
    "Find the function that parses the configuration file and returns the settings.",
    "Sends an email to every user. Adds two numbers. Multiplies two numbers.",
    "parse a configuration file and send mail to the users of the server",
    "hello world, one two three, alpha beta gamma, word after word",
    "The index stores chunks, vectors and files; a search ranks them by similarity.",
    "/// Returns the number of tokens in the text.",
    "// TODO: handle the error when the request fails",
    "# Install the model with the setup script before running the tests.",
]
CORPUS = CORPUS * 4

# Inputs of the reference: short and long, code and prose, words outside the vocabulary (split
# into ## pieces or [UNK]), and one longer than max_seq_length so that truncation is exercised.
TEXTS = [
    "fn add(a: i32, b: i32) -> i32 { a + b }",
    "Sends an email to every user.",
    "hello",
    "def tokenize_paragraph(text):\n    return [w.lower() for w in text.split()]",
    "Größe: 数据库 café 🚀",
    "SELECT name FROM users WHERE email = ?; -- unknown identifiers: zygomorphic_quux",
    " ".join(f"let value{i} = parse(config, {i});" for i in range(40)),
]


def make_tokenizer() -> Tokenizer:
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    # As MiniLM's tokenizer.json: lower-case, accents stripped, CJK characters apart.
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(
        vocab_size=700, special_tokens=SPECIALS, show_progress=False
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return tokenizer


def make_model(vocab_size: int, pad_id: int) -> BertModel:
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        hidden_act="gelu",
        max_position_embeddings=512,
        type_vocab_size=2,
        layer_norm_eps=1e-12,
        pad_token_id=pad_id,
        position_embedding_type="absolute",
        torch_dtype="float32",
    )
    config._attn_implementation = "eager"
    model = BertModel(config)
    # The default init (std 0.02) leaves a 32-wide model almost linear and its attention almost
    # uniform, which would hide mistakes in the mask or the pooling; larger weights show them.
    generator = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "LayerNorm.weight" in name:
                param.copy_(1.0 + 0.2 * torch.randn(param.shape, generator=generator))
            elif "LayerNorm.bias" in name or name.endswith(".bias"):
                param.copy_(0.1 * torch.randn(param.shape, generator=generator))
            else:
                param.copy_(0.3 * torch.randn(param.shape, generator=generator))
    return model.eval()


def embed(model: BertModel, batch: list[list[int]], pad_id: int) -> list[list[float]]:
    """Right-padded batch → mean of the token vectors under the mask, L2-normalised."""
    longest = max(len(ids) for ids in batch)
    ids = torch.tensor([x + [pad_id] * (longest - len(x)) for x in batch])
    mask = torch.tensor([[1] * len(x) + [0] * (longest - len(x)) for x in batch])
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * weights).sum(1) / weights.sum(1)
    return torch.nn.functional.normalize(mean, p=2, dim=-1).tolist()


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")


def write_sentence_transformers_files(out: Path, tokenizer: Tokenizer, dim: int) -> None:
    """The files beside the weights that make `out` a sentence-transformers model like MiniLM."""
    # As in MiniLM's tokenizer.json, which pads and truncates to 128: our loader must undo it.
    tokenizer.enable_truncation(max_length=128)
    tokenizer.enable_padding(length=128, pad_id=tokenizer.token_to_id("[PAD]"), pad_token="[PAD]")
    tokenizer.save(str(out / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    (out / "vocab.txt").write_text("".join(token + "\n" for token, _ in vocab))
    specials = {
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    }
    write_json(out / "special_tokens_map.json", specials)
    write_json(
        out / "tokenizer_config.json",
        dict(
            specials,
            do_lower_case=True,
            tokenize_chinese_chars=True,
            strip_accents=None,
            tokenizer_class="BertTokenizer",
            model_max_length=512,
        ),
    )
    write_json(
        out / "sentence_bert_config.json",
        {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False},
    )
    modules = [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")]
    write_json(
        out / "modules.json",
        [
            {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
            for i, (path, kind) in enumerate(modules)
        ],
    )
    write_json(
        out / "1_Pooling/config.json",
        {
            "word_embedding_dimension": dim,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    )


def check_with_sentence_transformers(
    out: Path, texts: list[str], expected: list[list[float]]
) -> None:
    """Loads `out` as sentence-transformers would load MiniLM; its vectors must be ours."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        print("sentence-transformers is not installed: the directory layout is not cross-checked")
        return
    model = SentenceTransformer(str(out), device="cpu")
    got = model.encode(texts, convert_to_tensor=True, batch_size=len(texts))
    worst = torch.nn.functional.cosine_similarity(got, torch.tensor(expected), dim=-1).min().item()
    assert worst > 0.99999, f"sentence-transformers disagrees: cosine {worst}"
    print(f"sentence-transformers agrees (worst cosine 1 - {1 - worst:.1e})")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "server/testdata/tiny-bert"
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)

    tokenizer = make_tokenizer()
    pad_id = tokenizer.token_to_id("[PAD]")
    for word in ["word", "hello", "one", "two", "three", "alpha", "beta", "gamma"]:
        assert tokenizer.token_to_id(word) is not None, f"the Rust tests need {word!r} as one token"
    model = make_model(tokenizer.get_vocab_size(), pad_id)
    model.save_pretrained(out, safe_serialization=True)
    write_sentence_transformers_files(out, tokenizer, model.config.hidden_size)

    tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
    batch = [tokenizer.encode(text).ids for text in TEXTS]
    lengths = [len(ids) for ids in batch]
    assert MAX_SEQ_LENGTH in lengths, f"no input is truncated: {lengths}"
    assert len(set(lengths)) == len(lengths), f"the batch must mix lengths: {lengths}"
    assert tokenizer.token_to_id("[UNK]") in sum(batch, []), "no input has an unknown word"

    alone = [embed(model, [ids], pad_id)[0] for ids in batch]
    together = embed(model, batch, pad_id)
    for a, b in zip(alone, together):
        cosine = sum(x * y for x, y in zip(a, b))
        assert cosine > 0.99999, f"transformers itself is not padding-invariant: {cosine}"
    check_with_sentence_transformers(out, TEXTS, alone)

    reference = {
        "dim": model.config.hidden_size,
        "max_tokens": MAX_SEQ_LENGTH,
        "inputs": [
            {"text": text, "ids": ids, "vector": vector, "batched_vector": batched}
            for text, ids, vector, batched in zip(TEXTS, batch, alone, together)
        ],
    }
    (out / "reference.json").write_text(json.dumps(reference, indent=1) + "\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(
        f"wrote {out} ({size / 1024:.0f} KiB), vocabulary {tokenizer.get_vocab_size()}, "
        f"token lengths {sorted(lengths)}"
    )


if __name__ == "__main__":
    main()
