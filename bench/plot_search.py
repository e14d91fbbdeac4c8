"""Plots one run of bench/search.sh: latency (p50 and p95) and MRR@10 per
method, and the exact-scan / HNSW crossover by tenant size."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

source, target = sys.argv[1], sys.argv[2]
run = json.load(open(source))
methods = run["methods"]
names = [m["name"].replace(" (", "\n(") for m in methods]
fig, (latency, quality, sweep) = plt.subplots(1, 3, figsize=(18, 5.5))

x = range(len(methods))
latency.bar([i - 0.2 for i in x], [m["p50"] for m in methods], 0.4, label="p50")
latency.bar([i + 0.2 for i in x], [m["p95"] for m in methods], 0.4, label="p95")
latency.set_yscale("log")
latency.set_ylabel("ms (log scale)")
latency.set_title(f"latency, size {run['size']}")
latency.set_xticks(list(x), names, rotation=60, ha="right", fontsize=8)
latency.legend()

width = 0.2
for offset, key, label in [(-1.5, "mrr", "all"), (-0.5, "mrr_rare", "rare-term"),
                           (0.5, "mrr_paraphrase", "paraphrase"), (1.5, "mrr_mixed", "mixed")]:
    quality.bar([i + offset * width for i in x], [m[key] for m in methods], width, label=label)
quality.set_ylabel("MRR@10")
quality.set_title("known-item relevance")
quality.set_xticks(list(x), names, rotation=60, ha="right", fontsize=8)
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
fig.savefig(target, dpi=110)
print(f"wrote {target}")
