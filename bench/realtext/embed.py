#!/usr/bin/env python3
"""Embeds the chunks and queries of a benchmark data directory with MiniLM (minilm.py), through a
cache of one vector per text, so that only texts never seen before are embedded.

usage: embed.py --data DIR --cache DIR [--jobs N]

--jobs N embeds in N processes at once (default: the machine's cores), each on every N-th text
never seen before: one process runs the model on one core (one BLAS thread, see
search_realtext.sh), and a bare machine has tens of thousands of texts to embed.

The cache (CACHE/<model>/) holds shards, each a file of keys (sha256 of the model's name and the
text, one per line) and a file of the matching float32 rows. A shard's key file is renamed into
place last, so an interrupted run leaves whole shards only, and the next run goes on from there.

Writes into DIR, for the loader:
  chunk_vectors.f32   one row per chunk, in the order of documents.jsonl
  query_vectors.f32   one row per query, in the order of queries.jsonl (a query with
                      "embed_text" is embedded as that text instead of its own)
  vectors.json        the model, the dimensions and the row counts
Rows are little-endian float32 of the model's dimensions; the loader pads them to the column's.
"""
import argparse
import glob
import hashlib
import json
import multiprocessing
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import minilm  # noqa: E402

# Texts embedded between two shards written: what an interruption can lose, and how often
# progress is printed (on a busy 2-core machine 200 chunks take a few minutes).
SHARD_TEXTS = 200


def text_key(text):
    return hashlib.sha256(f"{minilm.MODEL_ID}\0{text}".encode()).hexdigest()


class VectorCache:
    def __init__(self, root):
        self.directory = os.path.join(root, hashlib.sha256(minilm.MODEL_ID.encode()).hexdigest()[:16])
        os.makedirs(self.directory, exist_ok=True)
        with open(os.path.join(self.directory, "model.txt"), "w") as f:
            f.write(minilm.MODEL_ID + "\n")
        self.reload()

    def reload(self):
        self.rows = {}
        for keys_path in sorted(glob.glob(os.path.join(self.directory, "*.keys"))):
            with open(keys_path) as f:
                keys = f.read().split()
            vectors = np.fromfile(keys_path[:-len(".keys")] + ".f32", dtype="<f4")
            vectors = vectors.reshape(len(keys), minilm.DIMENSIONS)
            self.rows.update(zip(keys, vectors))

    def __contains__(self, key):
        return key in self.rows

    def __getitem__(self, key):
        return self.rows[key]

    def add(self, keys, vectors):
        name = os.path.join(self.directory, f"{time.time_ns()}-{os.getpid()}")
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        vectors.tofile(name + ".f32.part")
        with open(name + ".keys.part", "w") as f:
            f.write("\n".join(keys) + "\n")
        os.replace(name + ".f32.part", name + ".f32")
        os.replace(name + ".keys.part", name + ".keys")
        self.rows.update(zip(keys, vectors))


def read_texts(data):
    with open(f"{data}/documents.jsonl") as f:
        chunks = [chunk for line in f for chunk in json.loads(line)["chunks"]]
    with open(f"{data}/queries.jsonl") as f:
        queries = [q.get("embed_text", q["text"]) for q in map(json.loads, f)]
    return chunks, queries


def embed_share(cache, texts, label):
    """Embeds `texts` into the cache in shards, printing progress as `label`."""
    model = minilm.MiniLM()
    started = time.monotonic()
    for begin in range(0, len(texts), SHARD_TEXTS):
        batch = texts[begin:begin + SHARD_TEXTS]
        cache.add([text_key(t) for t in batch], model.encode(batch))
        done = begin + len(batch)
        elapsed = time.monotonic() - started
        rate = done / elapsed
        print(f"  {label}{done}/{len(texts)} in {elapsed:.0f} s ({rate:.1f}/s, "
              f"{(len(texts) - done) / rate:.0f} s to go)", flush=True)


def embed_missing(cache, texts, label, jobs):
    distinct = {text_key(t): t for t in texts}
    missing = [text for key, text in distinct.items() if key not in cache]
    print(f"{label}: {len(distinct)} distinct texts, {len(distinct) - len(missing)} in the cache, "
          f"{len(missing)} to embed", flush=True)
    if not missing:
        return
    jobs = max(1, min(jobs, len(missing) // SHARD_TEXTS))
    if jobs == 1:
        embed_share(cache, missing, "")
        return
    # Each process writes shards of its own into the cache (a shard's name
    # holds its process id); this one reads them all back afterwards. The
    # processes are forked, so they inherit the cache instead of receiving
    # a copy of it.
    global _forked_cache
    _forked_cache = cache
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        pool.starmap(_embed_share_forked, [(missing[worker::jobs], f"[{worker + 1}/{jobs}] ")
                                           for worker in range(jobs)])
    cache.reload()


_forked_cache = None


def _embed_share_forked(texts, label):
    embed_share(_forked_cache, texts, label)


def write_rows(path, cache, texts):
    rows = np.stack([cache[text_key(t)] for t in texts]) if texts else np.zeros((0, minilm.DIMENSIONS))
    np.ascontiguousarray(rows, dtype="<f4").tofile(path + ".part")
    os.replace(path + ".part", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    cache = VectorCache(args.cache)
    chunks, queries = read_texts(args.data)
    started = time.monotonic()
    embed_missing(cache, queries, "queries", args.jobs)
    embed_missing(cache, chunks, "chunks", args.jobs)
    write_rows(f"{args.data}/chunk_vectors.f32", cache, chunks)
    write_rows(f"{args.data}/query_vectors.f32", cache, queries)
    with open(f"{args.data}/vectors.json", "w") as f:
        json.dump({"model": minilm.MODEL_ID, "dimensions": minilm.DIMENSIONS,
                   "chunks": len(chunks), "queries": len(queries)}, f, indent=1)
    print(f"vectors written in {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
