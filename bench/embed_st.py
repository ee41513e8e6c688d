#!/usr/bin/env python3
"""The reference embedder: sentence-transformers (PyTorch, CPU) on the snippets coder-lsp embeds.

Usage: embed_st.py MODEL_DIR SNIPPETS.jsonl [--batch-size N] [--threads N] [--limit N] [--bf16]
                   [--save-vectors PATH] [--reference PATH]

Loads the same model directory coder-lsp uses, embeds every snippet as sentence-transformers does
by default (it sorts inputs by length in characters, longest first, and pads each batch to its
longest input, max_seq_length from the model's sentence_bert_config.json) after a short untimed
warm-up, and prints one JSON object: snippets/s, tokens/s (real tokens, special tokens included)
and padding waste.

--bf16 runs the same encode under `torch.autocast("cpu", dtype=torch.bfloat16)` (PyTorch's own
mixed precision: the Linear layers and other matmuls in bf16 on oneDNN, the rest in f32), and then, untimed,
compares its vectors with f32 ones of the same snippets: those of --reference if given, else
computed in the same process. `cosine_min`/`cosine_mean` in the output are that comparison.
--save-vectors writes this run's vectors (raw little-endian f32, one row of the model's dimension
per snippet, in input order), which other runs can take as --reference (bench/perf.py does: the f32
run's vectors are the reference for every other engine).
"""
import argparse
import json
import time

import numpy as np



def throughput(count, seconds, real, padded):
    """The timing fields every engine script reports: snippets and tokens per second, padding."""
    return {
        "snippets": count,
        "seconds": seconds,
        "snippets_per_second": count / seconds,
        "tokens_per_second": real / seconds,
        "real_tokens": real,
        "padded_tokens": padded,
        "padding_waste": 1 - real / padded,
    }

def read_snippets(path, limit=0):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                value = json.loads(line)
                out.append(value if isinstance(value, str) else value["text"])
    return out[:limit] if limit else out


def batch_order(snippets):
    """The order encode() embeds in: longest first, by characters (SentenceTransformer._text_length
    of a string), with numpy's argsort as it uses."""
    return [int(i) for i in np.argsort([-len(s) for s in snippets])]


def padding(order, lengths, batch_size):
    """Padded tokens of the batches encode() forms: `order` cut every batch_size, each batch padded
    to its longest input (in tokens)."""
    padded = 0
    for start in range(0, len(order), batch_size):
        batch = [lengths[i] for i in order[start:start + batch_size]]
        padded += len(batch) * max(batch)
    return padded


def save_vectors(path, vectors):
    np.ascontiguousarray(vectors, dtype="<f4").tofile(path)


def load_vectors(path, dim):
    return np.fromfile(path, dtype="<f4").reshape(-1, dim)


def cosines(vectors, reference):
    """min and mean cosine between matching rows (both sides normalised here)."""
    a = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    b = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    cos = np.sum(a.astype(np.float64) * b.astype(np.float64), axis=1)
    return float(cos.min()), float(cos.mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("snippets")
    ap.add_argument("--batch-size", type=int, default=32, help="sentence-transformers' default")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    ap.add_argument("--limit", type=int, default=0, help="embed only the first N snippets")
    ap.add_argument("--bf16", action="store_true", help="encode under torch.autocast(bfloat16)")
    ap.add_argument("--save-vectors", help="write this run's vectors here (raw f32)")
    ap.add_argument("--reference", help="f32 vectors of the same snippets (raw f32) to compare with")
    args = ap.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    if args.threads:
        torch.set_num_threads(args.threads)
    snippets = read_snippets(args.snippets, args.limit)
    model = SentenceTransformer(args.model_dir, device="cpu")
    tokenizer = model.tokenizer
    max_len = model.max_seq_length

    lengths = [len(tokenizer(s, truncation=True, max_length=max_len)["input_ids"]) for s in snippets]
    padded = padding(batch_order(snippets), lengths, args.batch_size)

    def encode(texts):
        with torch.inference_mode():
            if args.bf16:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    out = model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True,
                                       convert_to_tensor=True)
            else:
                out = model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True,
                                   convert_to_tensor=True)
        return out.float().numpy()

    encode(snippets[:16])
    started = time.perf_counter()
    vectors = encode(snippets)
    seconds = time.perf_counter() - started
    real = sum(lengths)
    if args.save_vectors:
        save_vectors(args.save_vectors, vectors)

    implementation = f"sentence-transformers (torch {torch.__version__}, CPU, " + (
        "bf16 autocast)" if args.bf16 else "f32)")
    result = {
        "implementation": implementation,
        "precision": "bf16 autocast" if args.bf16 else "f32",
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "max_length": max_len,
        **throughput(len(snippets), seconds, real, padded),
    }
    if args.bf16 or args.reference:
        if args.reference:
            reference = load_vectors(args.reference, vectors.shape[1])[:len(snippets)]
            result["reference"] = "f32 vectors from " + args.reference
        else:
            # Untimed: the same model in f32, same snippets, same batches.
            with torch.inference_mode():
                reference = model.encode(snippets, batch_size=args.batch_size,
                                         normalize_embeddings=True)
            result["reference"] = "sentence-transformers f32, same process"
        result["cosine_min"], result["cosine_mean"] = cosines(vectors, reference)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
