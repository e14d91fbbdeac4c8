"""Plots one run of bench/search.sh: latency (p50 and p95) and MRR@10 per
method, and vector_search with the exact scan or HNSW forced, by tenant size."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

source, target = sys.argv[1], sys.argv[2]
run = json.load(open(source))
methods = run["methods"]
names = [m["name"] for m in methods]
y = list(range(len(methods)))
fig, (latency, quality, sweep) = plt.subplots(
    1, 3, figsize=(20, 0.45 * len(methods) + 2.5), gridspec_kw={"width_ratios": [1.2, 1.2, 1]})

latency.barh([i - 0.2 for i in y], [m["p50"] for m in methods], 0.4, label="p50")
latency.barh([i + 0.2 for i in y], [m["p95"] for m in methods], 0.4, label="p95")
latency.set_xscale("log")
latency.set_xlabel("ms (log scale)")
latency.set_title(f"latency, size {run['size']}")
latency.set_yticks(y, names, fontsize=8)
latency.invert_yaxis()
latency.legend()

height = 0.2
for offset, key, label in [(-1.5, "mrr", "all queries"), (-0.5, "mrr_rare", "rare-term"),
                           (0.5, "mrr_paraphrase", "paraphrase"), (1.5, "mrr_mixed", "mixed")]:
    quality.barh([i + offset * height for i in y], [m[key] for m in methods], height, label=label)
quality.set_xlabel("MRR@10")
quality.set_title("known-item relevance")
quality.set_yticks(y, [""] * len(y))
quality.invert_yaxis()
quality.legend(fontsize=8)

chunks = [r["chunks"] for r in run["sweep"]]
sweep.plot(chunks, [r["exact"] for r in run["sweep"]], "o-", label="exact scan")
sweep.plot(chunks, [r["hnsw"] for r in run["sweep"]], "s-", label="HNSW, iterative scan")
sweep.set_xscale("log")
sweep.set_yscale("log")
sweep.set_xlabel("tenant's chunks")
sweep.set_ylabel("vector_search p50 ms")
sweep.set_title("exact scan or HNSW, by tenant size")
sweep.legend()

fig.tight_layout()
fig.savefig(target, dpi=100)
print(f"wrote {target}")
