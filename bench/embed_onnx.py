#!/usr/bin/env python3
"""The same model on ONNX Runtime (CPU), f32 or dynamically quantized int8, on coder-lsp's snippets.

Usage: embed_onnx.py MODEL_DIR SNIPPETS.jsonl [--batch-size N] [--threads N] [--limit N] [--int8]
                     [--per-tensor] [--no-fusion] [--cache-dir DIR] [--save-vectors PATH]
                     [--reference PATH]

Loads the model directory coder-lsp uses with transformers and exports it to ONNX in this process
(`torch.onnx.export`, the TorchScript exporter, opset 17): the BERT encoder, mean pooling over the
attention mask and L2 normalisation, with batch and sequence length dynamic. ONNX Runtime's
transformer optimizer (`onnxruntime.transformers.optimizer`, model type bert) then fuses attention,
LayerNorm and GELU into its own CPU kernels, as a user tuning ONNX Runtime would (--no-fusion
leaves only the optimizations the session applies when it loads). --int8 quantizes that model's
weights with `onnxruntime.quantization.quantize_dynamic` (int8 weights per output channel,
activations quantized to uint8 per batch at run time; --per-tensor for one scale per tensor).

Embedding is timed like bench/embed_st.py: inputs sorted by length longest first (characters, as
sentence-transformers sorts), cut every batch_size (32), each batch tokenized (in the timed loop,
as sentence-transformers does) and padded to its longest input, max length from the model's
sentence_bert_config.json; an untimed warm-up first. The session runs with intra_op_num_threads =
--threads (default: what PyTorch would use, all physical cores). Prints one JSON object with the
fields of embed_st.py, plus the cosine of every vector against f32 ones of the same snippets
(`cosine_min`, `cosine_mean`): those of --reference (bench/perf.py passes sentence-transformers'
f32 vectors), else sentence-transformers f32 computed here, untimed.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ beside the benchmark scripts
from embed_st import (batch_order, cosines, load_vectors, read_snippets, save_vectors,  # noqa: E402
                      throughput)


def max_length(model_dir, tokenizer):
    path = os.path.join(model_dir, "sentence_bert_config.json")
    if os.path.exists(path):
        with open(path) as f:
            return int(json.load(f)["max_seq_length"])
    return int(tokenizer.model_max_length)


def export(model_dir, path):
    """The encoder with mean pooling and L2 normalisation, as one ONNX graph."""
    import torch
    from transformers import AutoModel

    with open(os.path.join(model_dir, "1_Pooling", "config.json")) as f:
        pooling = json.load(f)
    if not pooling.get("pooling_mode_mean_tokens"):
        raise SystemExit("embed_onnx.py: the model does not use mean pooling")
    bert = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()

    class Embedder(torch.nn.Module):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    ids = torch.randint(1000, 2000, (2, 16), dtype=torch.int64)
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    with torch.no_grad():
        torch.onnx.export(
            Embedder(bert), (ids, mask), path, input_names=["input_ids", "attention_mask"],
            output_names=["embedding"], opset_version=17, dynamo=False,
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                          "attention_mask": {0: "batch", 1: "sequence"},
                          "embedding": {0: "batch"}})
    return bert.config


def fuse(path, out, config):
    from onnxruntime.transformers.optimizer import optimize_model

    opt = optimize_model(path, model_type="bert", num_heads=config.num_attention_heads,
                         hidden_size=config.hidden_size, opt_level=1, use_gpu=False)
    opt.save_model_to_file(out)
    return {k: v for k, v in opt.get_fused_operator_statistics().items() if v}


def build(model_dir, work, fusion, int8, per_channel):
    """The ONNX file to run (reused from `work` when an earlier run made it) and how it was made."""
    f32 = os.path.join(work, "model-f32.onnx")
    fused = os.path.join(work, "model-f32-fused.onnx")
    made = {}
    if not os.path.exists(f32):
        t = time.perf_counter()
        export(model_dir, f32)
        made["export_seconds"] = time.perf_counter() - t
    path = f32
    if fusion:
        stats = fused + ".json"
        if not os.path.exists(fused):
            from transformers import AutoConfig
            t = time.perf_counter()
            with open(stats, "w") as f:
                json.dump(fuse(f32, fused, AutoConfig.from_pretrained(model_dir)), f)
            made["fusion_seconds"] = time.perf_counter() - t
        with open(stats) as f:
            made["fused_operators"] = json.load(f)
        path = fused
    if int8:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
        q = path.replace(".onnx", "-int8" + ("-per-channel" if per_channel else "") + ".onnx")
        if not os.path.exists(q):
            t = time.perf_counter()
            # ONNX shape inference knows no types for the fused (com.microsoft) operators' outputs.
            quantize_dynamic(path, q, weight_type=QuantType.QInt8, per_channel=per_channel,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            made["quantize_seconds"] = time.perf_counter() - t
        path = q
    made["onnx_mb"] = os.path.getsize(path) / 1e6
    return path, made


def open_session(ort, path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("snippets")
    ap.add_argument("--batch-size", type=int, default=32, help="sentence-transformers' default")
    ap.add_argument("--threads", type=int, default=0,
                    help="intra-op threads (default: PyTorch's default, all physical cores)")
    ap.add_argument("--limit", type=int, default=0, help="embed only the first N snippets")
    ap.add_argument("--int8", action="store_true", help="dynamic int8 quantization of the weights")
    ap.add_argument("--per-tensor", action="store_true",
                    help="with --int8: one weight scale per tensor instead of per output channel")
    ap.add_argument("--no-fusion", action="store_true",
                    help="skip ONNX Runtime's transformer optimizer (fused attention, LayerNorm, GELU)")
    ap.add_argument("--cache-dir", help="keep the exported ONNX files here and reuse them")
    ap.add_argument("--save-vectors", help="write this run's vectors here (raw f32)")
    ap.add_argument("--reference", help="f32 vectors of the same snippets (raw f32) to compare with")
    args = ap.parse_args()

    import onnxruntime as ort
    import torch
    from transformers import AutoTokenizer

    threads = args.threads or torch.get_num_threads()
    snippets = read_snippets(args.snippets, args.limit)
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    max_len = max_length(args.model_dir, tokenizer)

    work = args.cache_dir or tempfile.mkdtemp(prefix="embed-onnx-")
    os.makedirs(work, exist_ok=True)
    try:
        path, made = build(args.model_dir, work, not args.no_fusion, args.int8, not args.per_tensor)
        session = open_session(ort, path, threads)
    finally:
        if not args.cache_dir:
            shutil.rmtree(work, ignore_errors=True)

    order = batch_order(snippets)  # sentence-transformers' batches

    def encode(indices):
        out = None
        real = padded = 0
        for start in range(0, len(indices), args.batch_size):
            batch = indices[start:start + args.batch_size]
            enc = tokenizer([snippets[i] for i in batch], padding=True, truncation=True,
                            max_length=max_len, return_tensors="np")
            mask = enc["attention_mask"].astype(np.int64)
            vectors = session.run(None, {"input_ids": enc["input_ids"].astype(np.int64),
                                         "attention_mask": mask})[0]
            if out is None:
                out = np.zeros((len(snippets), vectors.shape[1]), dtype=np.float32)
            out[batch] = vectors
            real += int(mask.sum())
            padded += mask.size
        return out, real, padded

    encode(order[:16])
    started = time.perf_counter()
    vectors, real, padded = encode(order)
    seconds = time.perf_counter() - started
    if args.save_vectors:
        save_vectors(args.save_vectors, vectors)

    if args.reference:
        reference = load_vectors(args.reference, vectors.shape[1])[:len(snippets)]
        source = "f32 vectors from " + args.reference
    else:
        from sentence_transformers import SentenceTransformer
        st = SentenceTransformer(args.model_dir, device="cpu")
        with torch.inference_mode():
            reference = st.encode(snippets, batch_size=args.batch_size, normalize_embeddings=True)
        source = "sentence-transformers f32, same process"
    cos_min, cos_mean = cosines(vectors, reference)

    if args.int8:
        precision = "int8 dynamic, " + ("per-tensor" if args.per_tensor else "per-channel") + " weights"
    else:
        precision = "f32"
    graph = "fused by its transformer optimizer" if not args.no_fusion else "session optimizations only"
    print(json.dumps({
        "implementation": f"ONNX Runtime {ort.__version__} (CPU, {precision}; exported by torch "
                          f"{torch.__version__}, {graph})",
        "precision": precision,
        "threads": threads,
        "batch_size": args.batch_size,
        "max_length": max_len,
        **throughput(len(snippets), seconds, real, padded),
        "cosine_min": cos_min,
        "cosine_mean": cos_mean,
        "reference": source,
        "onnx_file": path if args.cache_dir else os.path.basename(path),
        **made,
    }))


if __name__ == "__main__":
    main()
