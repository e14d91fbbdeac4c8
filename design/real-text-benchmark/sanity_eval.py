#!/usr/bin/env python3
"""Sanity check of the query set outside PostgreSQL: per-tenant BM25 (own statistics) and exact
cosine over the cached MiniLM embeddings, document-level MRR@10 / Hit@10, by split and type.
usage: sanity_eval.py BENCHDIR CACHEDIR"""
import collections, glob, hashlib, json, math, re, sys
import numpy as np

bench, cache = sys.argv[1], sys.argv[2]
docs = [json.loads(l) for l in open(f"{bench}/docs.jsonl")]
qs = [json.loads(l) for l in open(f"{bench}/queries.jsonl")]
sys.argv = sys.argv[:3]
from embed_cache import key, chunks as all_chunks, queries as all_queries  # same texts, same key
C = np.load(f"{cache}/chunks-{key(all_chunks)}.npy")
Q = np.load(f"{cache}/queries-{key(all_queries)}.npy")

STOP = set("a an and are as at be by for from how i in is it of on or that the this to what when where which why with do does can my you your not no".split())
tok = lambda s: [w for w in re.findall(r"\w+", s.lower()) if w not in STOP]

rows = []  # (tenant, doc, chunk_index)
for d in docs:
    for c in d["chunks"]:
        rows.append((d["tenant"], d["doc"]))
by_tenant = collections.defaultdict(list)
for i, (t, _) in enumerate(rows):
    by_tenant[t].append(i)

# BM25 per tenant
bm = {}
for t, ids in by_tenant.items():
    tf = [collections.Counter(tok(all_chunks[i])) for i in ids]
    df = collections.Counter(w for c in tf for w in c)
    L = np.array([sum(c.values()) for c in tf], dtype=float)
    bm[t] = (tf, df, L, L.mean())


def bm25(t, q, k1=1.2, b=0.75):
    tf, df, L, avg = bm[t]
    N = len(tf)
    s = np.zeros(N)
    for w in set(tok(q)):
        if w not in df:
            continue
        idf = math.log(1 + (N - df[w] + 0.5) / (df[w] + 0.5))
        f = np.array([c.get(w, 0) for c in tf], dtype=float)
        s += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * L / avg))
    return s


def doc_rank(t, order, target):
    seen = []
    for j in order:
        d = rows[by_tenant[t][j]][1]
        if d not in seen:
            seen.append(d)
            if d == target:
                return len(seen)
            if len(seen) >= 10:
                return None
    return None


res = collections.defaultdict(list)
for qi, q in enumerate(qs):
    t = q["tenant"]
    ids = by_tenant[t]
    v = C[ids] @ Q[qi]
    k = bm25(t, q["query"])
    ov = np.argsort(-v, kind="stable")
    ok = np.argsort(-k, kind="stable") if k.any() else np.array([], dtype=int)
    rv = np.empty(len(ids)); rv[ov] = np.arange(1, len(ids) + 1)
    rk = np.full(len(ids), np.inf); rk[ok[k[ok] > 0]] = np.arange(1, (k > 0).sum() + 1)
    rrf = 1 / (60 + rv) + np.where(np.isfinite(rk), 1 / (60 + rk), 0)
    kn = k / k.max() if k.max() > 0 else k
    vn = (v - v.min()) / (v.max() - v.min())
    conv = 0.5 * vn + 0.5 * kn
    for name, order in (("vector", ov), ("bm25", ok), ("rrf60", np.argsort(-rrf, kind="stable")),
                        ("convex", np.argsort(-conv, kind="stable"))):
        r = doc_rank(t, order, q["target"])
        rr = 1 / r if r else 0.0
        rk_ = int(t[1:3]); size = "rank1-5" if rk_ <= 5 else "rank6-15" if rk_ <= 15 else "rank16-30"
        for g in ("all", q["split"], "type=" + q["type"], "verbatim" if q["verbatim"] else "not-verbatim", size,
                  q["split"] + "+" + ("verbatim" if q["verbatim"] else "not-verbatim")):
            res[(name, g)].append(rr)

groups = ["all", "tune", "heldout", "heldout+not-verbatim", "verbatim"] + sorted({"type=" + q["type"] for q in qs}) \
    + ["rank1-5", "rank6-15", "rank16-30"]
print("MRR@10 (n)".ljust(8) + "".join(g.replace("heldout+not-verbatim", "heldout,not-verb").replace("type=", "")[:16].rjust(16) for g in groups))
for name in ("vector", "bm25", "rrf60", "convex"):
    print(name.ljust(8) + "".join(("%.3f (%d)" % (np.mean(res[(name, g)]), len(res[(name, g)]))).rjust(16) for g in groups))
