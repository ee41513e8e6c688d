#!/usr/bin/env python3
"""How far int8 matmuls move a sentence-transformers model's vectors, simulated before any kernel
is written: which Linear layers can run in int8, with which scales, and still hold the 0.999
cosine bar of docs/performance.md.

Usage: int8_sim.py MODEL_DIR INDEX_DIR [INDEX_DIR ...] [--per-index N] [--threads N]

Chunk texts come from each coder-lsp index directory's store.sqlite (N spread evenly over the
chunks, ordered by id, so the sample is stable). Every scheme quantizes weights symmetrically per
output channel; activations are quantized symmetrically per tensor (what ONNX Runtime's dynamic
int8 does) or per token (one scale per row, computed at run time). SmoothQuant divides each input
channel of the activations by s_j and multiplies the weights' column j by it, with
s_j = a_j^alpha / max|W[:, j]|^(1 - alpha), where a_j is the channel's magnitude: measured on a
fifth as many other chunks of
the same indexes ("calibrated") or read from the LayerNorm that feeds the layer,
|gamma_j| + |beta_j| ("layernorm", needs no data). Quantization is simulated in f32 (round to the
int8 grid and back), so the figures are what an exact int8 kernel with f32 rescaling gives.
Two options of the schemes follow coder-lsp's kernel (`server/src/embed/int8.rs`): "one QKV
smoothing" takes the query, key and value projections' smoothing from their weights together (the
kernel multiplies them as one fused matrix, so one quantized input serves all three), and "sinks
exact" leaves unquantized each row whose smoothed activations peak above 16 times their root mean
square (BERT's [CLS], an attention sink). `--calibration-batch 1` measures magnitudes without
padding tokens, as the kernel does (padding inflates a few outlier channels).
Prints one line per scheme: the min and mean cosine of its vectors against the f32 ones.
"""
import argparse
import os
import sqlite3
import sys

import torch
from sentence_transformers import SentenceTransformer


def texts_from(index_dirs, per_index, offset=0.0):
    """`per_index` chunk texts of each index, every len/per_index-th starting `offset` of a step in."""
    texts = []
    for index_dir in index_dirs:
        store = os.path.join(index_dir, "store.sqlite")
        con = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        rows = [r[0] for r in con.execute("SELECT text FROM chunks ORDER BY id")]
        step = max(1, len(rows) // per_index)
        texts += rows[int(step * offset)::step][:per_index]
    return texts


def quantize_weight(w):
    scale = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / 127
    return (w / scale).round().clamp(-127, 127) * scale


def quantize_activation(x, per_token):
    absmax = x.abs().amax(dim=-1, keepdim=True) if per_token else x.abs().amax()
    scale = absmax.clamp(min=1e-8) / 127
    return (x / scale).round().clamp(-127, 127) * scale


# Which Linear layers of a BERT encoder a scheme quantizes, by the end of their module name.
ROLES = {
    "qkv": lambda n: ".attention.self." in n,
    "attention_out": lambda n: n.endswith("attention.output.dense"),
    "ffn_up": lambda n: n.endswith("intermediate.dense"),
    "ffn_down": lambda n: n.endswith(".output.dense") and "attention" not in n,
}

SCHEMES = [
    # (label, roles, per_token, alpha, magnitudes[, options])
    ("every Linear, activations per tensor", ("qkv", "attention_out", "ffn_up", "ffn_down"), False, 0, None),
    ("every Linear, activations per token", ("qkv", "attention_out", "ffn_up", "ffn_down"), True, 0, None),
    ("every Linear, per token, SmoothQuant 0.5 calibrated", ("qkv", "attention_out", "ffn_up", "ffn_down"), True, 0.5, "calibrated"),
    ("all but the feed-forward output, per token, SmoothQuant 0.5 calibrated", ("qkv", "attention_out", "ffn_up"), True, 0.5, "calibrated"),
    ("QKV and feed-forward input, per token", ("qkv", "ffn_up"), True, 0, None),
    ("QKV and feed-forward input, per token, SmoothQuant 0.5 calibrated", ("qkv", "ffn_up"), True, 0.5, "calibrated"),
    ("QKV and feed-forward input, per token, SmoothQuant 0.5 from the LayerNorms", ("qkv", "ffn_up"), True, 0.5, "layernorm"),
    ("feed-forward input only, per token, SmoothQuant 0.5 from the LayerNorms", ("ffn_up",), True, 0.5, "layernorm"),
    ("QKV and feed-forward input, per token, SmoothQuant 0.5 calibrated, one QKV smoothing", ("qkv", "ffn_up"), True, 0.5, "calibrated", {"fused_qkv": True}),
    ("QKV and feed-forward input, per token, SmoothQuant 0.5 calibrated, one QKV smoothing, sinks exact", ("qkv", "ffn_up"), True, 0.5, "calibrated", {"fused_qkv": True, "crest": 16.0}),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("index_dirs", nargs="+")
    parser.add_argument("--per-index", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calibration-batch", type=int, default=16,
                        help="batch size of the calibration pass (1: no padding tokens)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    texts = texts_from(args.index_dirs, args.per_index)
    model = SentenceTransformer(args.model_dir, device="cpu")
    encode = lambda items: model.encode(items, batch_size=16, normalize_embeddings=True,
                                        convert_to_tensor=True)
    reference = encode(texts)
    modules = dict(model.named_modules())
    names = {id(m): n for n, m in modules.items()}
    linears = [m for m in modules.values() if isinstance(m, torch.nn.Linear)]
    weights = {id(m): m.weight.data.clone() for m in linears}

    # Calibration: each Linear's input channel magnitudes over other chunks of the same indexes
    # (half a step further in), a fifth as many as are measured.
    magnitude = {}

    def record(module, inputs, _output):
        x = inputs[0].detach()
        channel = x.abs().reshape(-1, x.shape[-1]).amax(0)
        previous = magnitude.get(id(module))
        magnitude[id(module)] = channel if previous is None else torch.maximum(previous, channel)

    hooks = [m.register_forward_hook(record) for m in linears]
    model.encode(texts_from(args.index_dirs, max(1, args.per_index // 5), offset=0.5),
                 batch_size=args.calibration_batch)
    for hook in hooks:
        hook.remove()

    encoder = next(n for n in modules if n.endswith("encoder.layer.0")).rsplit(".encoder", 1)[0]

    def feeding_layernorm(name):
        layer = int(name.split("encoder.layer.")[1].split(".")[0])
        if ROLES["qkv"](name):
            if layer == 0:
                return modules[f"{encoder}.embeddings.LayerNorm"]
            return modules[f"{encoder}.encoder.layer.{layer - 1}.output.LayerNorm"]
        if ROLES["ffn_up"](name):
            return modules[f"{encoder}.encoder.layer.{layer}.attention.output.LayerNorm"]
        raise SystemExit(f"no LayerNorm feeds {name}: calibrate it instead")

    print(f"{len(texts)} chunk texts; min / mean cosine against f32")
    for label, roles, per_token, alpha, magnitudes, *rest in SCHEMES:
        options = rest[0] if rest else {}
        hooks = []
        for module in linears:
            name = names[id(module)]
            if not any(ROLES[role](name) for role in roles):
                continue
            w = weights[id(module)]
            smooth = torch.ones(w.shape[1])
            if alpha > 0:
                if magnitudes == "calibrated":
                    a = magnitude[id(module)]
                else:
                    norm = feeding_layernorm(name)
                    a = norm.weight.data.abs() + norm.bias.data.abs()
                w_max = w.abs().amax(0)
                if options.get("fused_qkv") and ROLES["qkv"](name):
                    parent = name.rsplit(".", 1)[0]
                    w_max = torch.stack([weights[id(modules[f"{parent}.{part}"])].abs().amax(0)
                                         for part in ("query", "key", "value")]).amax(0)
                smooth = a.clamp(min=1e-5) ** alpha / w_max.clamp(min=1e-5) ** (1 - alpha)
            module.weight.data = quantize_weight(w * smooth)

            def quantize_input(_module, inputs, smooth=smooth, crest=options.get("crest")):
                x = inputs[0] / smooth
                q = quantize_activation(x, per_token)
                if crest is not None:
                    rms = x.pow(2).mean(-1, keepdim=True).sqrt()
                    q = torch.where(x.abs().amax(-1, keepdim=True) > crest * rms, x, q)
                return (q,)

            hooks.append(module.register_forward_pre_hook(quantize_input))
        cos = (encode(texts) * reference).sum(-1)
        for hook in hooks:
            hook.remove()
        for module in linears:
            module.weight.data = weights[id(module)].clone()
        print(f"{cos.min().item():.5f} / {cos.mean().item():.5f}  {label}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
