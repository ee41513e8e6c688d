#!/usr/bin/env python3
"""The reference embedder: sentence-transformers (PyTorch, CPU) on the snippets coder-lsp embeds.

Usage: embed_st.py MODEL_DIR SNIPPETS.jsonl [--batch-size N] [--threads N]

Loads the same model directory coder-lsp uses, embeds every snippet as sentence-transformers does
by default (it sorts inputs by length and pads each batch to its longest input, max_seq_length
from the model's sentence_bert_config.json) after a short untimed warm-up, and prints one JSON
object: snippets/s, tokens/s (real tokens, special tokens included) and padding waste.
"""
import argparse
import json
import time


def read_snippets(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                value = json.loads(line)
                out.append(value if isinstance(value, str) else value["text"])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("snippets")
    ap.add_argument("--batch-size", type=int, default=32, help="sentence-transformers' default")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    args = ap.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    if args.threads:
        torch.set_num_threads(args.threads)
    snippets = read_snippets(args.snippets)
    model = SentenceTransformer(args.model_dir, device="cpu")
    tokenizer = model.tokenizer
    max_len = model.max_seq_length

    lengths = [len(tokenizer(s, truncation=True, max_length=max_len)["input_ids"]) for s in snippets]
    # The batches encode() forms: inputs sorted by length (longest first), cut every batch_size.
    order = sorted(range(len(snippets)), key=lambda i: -lengths[i])
    padded = 0
    for start in range(0, len(order), args.batch_size):
        batch = [lengths[i] for i in order[start:start + args.batch_size]]
        padded += len(batch) * max(batch)

    model.encode(snippets[:16], batch_size=args.batch_size)
    started = time.perf_counter()
    with torch.inference_mode():
        model.encode(snippets, batch_size=args.batch_size, normalize_embeddings=True)
    seconds = time.perf_counter() - started
    real = sum(lengths)
    print(json.dumps({
        "implementation": f"sentence-transformers (torch {torch.__version__}, CPU)",
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "snippets": len(snippets),
        "seconds": seconds,
        "snippets_per_second": len(snippets) / seconds,
        "tokens_per_second": real / seconds,
        "real_tokens": real,
        "padded_tokens": padded,
        "padding_waste": 1 - real / padded,
    }))


if __name__ == "__main__":
    main()
