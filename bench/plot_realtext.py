"""Plots runs of bench/search_realtext.sh: for each size, MRR@10 on the
held-out queries and latency (p50, p95) by tenant size, for the methods a
reader compares (the design document's SQL, a Supabase-style RRF, each
branch alone, and the extension's functions with their defaults).

Usage: plot_realtext.py OUT.png RUN.json [RUN.json ...]
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# The names bench/search/src/realtext.rs gives them; a run that lacks one
# (an older build) leaves it out.
COMPARED = [
    "design document's SQL (documents)",
    "design document's SQL over chunks",
    "Supabase-style RRF (k 50, ts_rank_cd, inner product)",
    "exact vector (cosine, every chunk of the tenant)",
    "keyword only (ts_rank, websearch_to_tsquery)",
    "keyword_search (defaults)",
    "vector_search (defaults)",
    "search_documents (defaults)",
    "hybrid_search (defaults)",
]
HEADLINE = "hybrid_search (defaults)"


def bands(split):
    """The tenant-size groups of a split, largest first, as the report orders them."""
    order = ("largest", "middle", "tail")
    return sorted((name for name in split if name.split(" ")[0] in order),
                  key=lambda name: order.index(name.split(" ")[0]))


def short(name):
    return name.replace(" (defaults)", "").replace(" (cosine, every chunk of the tenant)", "")


def main():
    target, sources = sys.argv[1], sys.argv[2:]
    runs = [json.load(open(source)) for source in sources]
    fig, axes = plt.subplots(len(runs), 2, figsize=(17, 5.2 * len(runs)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.6]})
    for run, (quality, latency) in zip(runs, axes):
        by_name = {m["name"]: m for m in run["methods"]}
        methods = [by_name[name] for name in COMPARED if name in by_name]
        names = [short(m["name"]) for m in methods]
        heldout = [m["splits"]["heldout"] for m in methods]
        manifest = run["manifest"]
        title = f"size {manifest['size']}: {manifest['chunks']:,} chunks, {manifest['tenants']} tenants"
        y = list(range(len(methods)))
        colours = ["tab:red" if m["name"] == HEADLINE else "tab:blue" for m in methods]

        quality.barh(y, [split["all"]["mrr"] for split in heldout], color=colours)
        for i, split in enumerate(heldout):
            quality.text(split["all"]["mrr"] + 0.005, i, f"{split['all']['mrr']:.3f}", va="center", fontsize=8)
        quality.set_xlim(0, 1.05)
        quality.set_xlabel("MRR@10, held-out queries")
        quality.set_title(title)
        quality.set_yticks(y, names, fontsize=8)
        quality.invert_yaxis()

        groups = bands(heldout[0])
        width = 0.8 / (2 * len(groups))
        for g, group in enumerate(groups):
            label = group.replace(" tenants", "")
            for k, (key, hatch) in enumerate((("p50_ms", ""), ("p95_ms", "//"))):
                offset = (2 * g + k) * width - 0.4 + width / 2
                latency.barh([i + offset for i in y], [split[group][key] for split in heldout], width,
                             color=f"C{g}", hatch=hatch, alpha=0.85,
                             label=f"{label}: {'p50' if k == 0 else 'p95'}")
        for target_ms, style in ((10, ":"), (25, "--")):
            latency.axvline(target_ms, color="black", linestyle=style, linewidth=1)
        latency.set_xscale("log")
        latency.set_xlabel("ms, log scale (dotted: 10 ms, dashed: 25 ms)")
        latency.set_title("latency by tenant size, held-out queries")
        latency.set_yticks(y, [""] * len(y))
        latency.invert_yaxis()
        latency.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)
    fig.tight_layout()
    fig.savefig(target, dpi=90)


if __name__ == "__main__":
    main()
