#!/usr/bin/env bash
# Hybrid search benchmark: generates a corpus (1,000 tenants with Zipf sizes,
# topic-clustered text and 1024-dimensional embeddings, known-item queries of
# three kinds), loads it into a fresh PostgreSQL 16 cluster and measures the
# design document's SQL, vector_search, keyword_search, hybrid_search (RRF and
# convex) and search_documents in one run on the same data.
#
# Usage: bench/search.sh [smoke|small|large]   (default small)
#   smoke  3k chunks, 18 queries, a minute: the CI smoke test
#   small  20k chunks, 180 queries
#   large  250k chunks, 180 queries (the document's SQL on 36 of them); about
#          half an hour on 2 cores, mostly the HNSW build
# Environment: BENCH_PORT (default 29126), BENCH_OUT (default bench/results),
# BENCH_PROFILE=debug to skip the optimised builds (smoke in CI),
# PG16_PREFIX as in scripts/env.sh. Writes BENCH_OUT/search-SIZE.md and .json,
# and search-SIZE.png when Python can import matplotlib.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
source scripts/cluster.sh

SIZE="${1:-small}"
PORT="${BENCH_PORT:-29126}"
OUT="${BENCH_OUT:-bench/results}"
case "$SIZE" in
  smoke) memory="-c shared_buffers=256MB" ;;
  small) memory="-c shared_buffers=1GB" ;;
  large) memory="-c shared_buffers=4GB" ;;
  *) echo "size must be smoke, small or large" >&2; exit 2 ;;
esac

if [ "${BENCH_PROFILE:-release}" = debug ]; then
  install_extension 16 >/dev/null
  cargo build -q -p platform-search-bench
  bench=target/debug/search_bench
else
  install_extension 16 --release >/dev/null
  cargo build -q --release -p platform-search-bench
  bench=target/release/search_bench
fi

scratch_cluster 16 "$PORT" "-c fsync=off -c synchronous_commit=off -c max_wal_size=8GB $memory"

BENCH_HOST=127.0.0.1 BENCH_PORT="$PORT" "$bench" "$SIZE" "$OUT"

if python3 -c 'import matplotlib' 2>/dev/null; then
  python3 bench/plot_search.py "$OUT/search-$SIZE.json" "$OUT/search-$SIZE.png"
else
  echo "matplotlib not found: no plot (pip install --target DIR matplotlib; PYTHONPATH=DIR)" >&2
fi
