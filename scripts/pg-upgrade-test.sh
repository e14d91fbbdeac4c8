#!/usr/bin/env bash
# The pg_upgrade test: a populated PostgreSQL 16 cluster with the extension is
# moved to PostgreSQL 18 with pg_upgrade (both installs carry the same
# extension version), and afterwards every row, policy, index and function
# works as the application role (pgrx-tests/tests/pg_upgrade.rs). Steps:
#   1. a fresh 16 cluster; the test's "before" phase writes the data and a
#      snapshot of what must survive (SCRATCH_DIR/snapshot);
#   2. the 16 cluster stopped; a fresh 18 cluster made by initdb with the
#      same encoding, locale and data checksum setting;
#   3. 18's pg_upgrade --check, then pg_upgrade (as the postgres user, from
#      a directory it may write);
#   4. the 18 cluster started; the "after" phase compares, searches through
#      the HNSW and GIN indexes, works as the application role, and runs
#      ALTER EXTENSION vector UPDATE and ALTER EXTENSION platform UPDATE;
#   5. vacuumdb --analyze-in-stages, as the procedure ends.
# Both clusters are stopped and removed on exit; it exits non-zero on any
# failure. It does not build or install the extension: both installs must
# already hold the same version (scripts/test.sh installs it).
#
# Usage: scripts/pg-upgrade-test.sh [SCRATCH_DIR]
#   SCRATCH_DIR keeps the snapshot and pg_upgrade's logs afterwards (default:
#   a temporary directory, removed on exit).
# Environment:
#   PLATFORM_PG_UPGRADE_FROM, PLATFORM_PG_UPGRADE_TO   versions (16, 18)
#   PLATFORM_PG_UPGRADE_PORTS   the two clusters' ports ("29516 29518")
#   PLATFORM_PG_UPGRADE_TRANSFER   pg_upgrade's transfer mode (--copy;
#       --link, --clone or, from 18 on, --swap)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
source scripts/cluster.sh

old_version="${PLATFORM_PG_UPGRADE_FROM:-16}"
new_version="${PLATFORM_PG_UPGRADE_TO:-18}"
read -r old_port new_port <<<"${PLATFORM_PG_UPGRADE_PORTS:-29516 29518}"
transfer="${PLATFORM_PG_UPGRADE_TRANSFER:---copy}"
old_bindir="$("$(pg_config_for "$old_version")" --bindir)"
new_bindir="$("$(pg_config_for "$new_version")" --bindir)"

if [ -n "${1:-}" ]; then
  scratch="$1"
  keep_scratch=1
  mkdir -p "$scratch"
else
  scratch="$(mktemp -d /tmp/platform-pg-upgrade.XXXXXX)"
  keep_scratch=0
fi
scratch="$(cd "$scratch" && pwd)"
chmod 755 "$scratch"
old_data="$scratch/pg$old_version"
new_data="$scratch/pg$new_version"
# pg_upgrade writes its logs, scripts and sockets in its current directory.
work="$scratch/work"
snapshot="$scratch/snapshot"
for dir in "$old_data" "$new_data" "$work"; do
  [ ! -e "$dir" ] || { echo "$dir exists: give an empty SCRATCH_DIR" >&2; exit 1; }
done
mkdir -p "$work"
chown postgres: "$work"

cleanup() {
  local status=$?
  cluster_stop "$old_version" "$old_data"
  cluster_stop "$new_version" "$new_data"
  # pg_upgrade's logs of a failed run are inside the new data directory.
  if [ -d "$new_data/pg_upgrade_output.d" ]; then
    cp -r "$new_data/pg_upgrade_output.d" "$scratch/" 2>/dev/null || true
    if [ "$status" -ne 0 ]; then
      echo "--- pg_upgrade's logs"
      find "$scratch/pg_upgrade_output.d" -name '*.txt' -o -name 'pg_upgrade_internal.log' |
        while read -r f; do echo "== $f"; tail -n 40 "$f"; done
    fi
  fi
  rm -rf "$old_data" "$new_data"
  if [ "$keep_scratch" = 0 ]; then rm -rf "$scratch"; fi
  if [ "$status" -ne 0 ]; then echo "=== pg_upgrade test FAILED (exit $status)" >&2; fi
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
started="$(now)"
step_started=
# step TITLE: ends the step before (printing its wall time), starts the next.
step() {
  [ -z "$step_started" ] || echo "    ($(since "$step_started") s)"
  step_started="$(now)"
  echo "=== $*"
}

# The extension version each install carries: they must be the same.
installed_version() {
  sed -n "s/^default_version = '\(.*\)'/\1/p" \
    "$("$(pg_config_for "$1")" --sharedir)/extension/$2.control"
}
echo "=== PostgreSQL $("$old_bindir/postgres" --version | awk '{print $NF}') -> $("$new_bindir/postgres" --version | awk '{print $NF}')"
echo "    platform: $(installed_version "$old_version" platform) -> $(installed_version "$new_version" platform);" \
  "pgvector: $(installed_version "$old_version" vector) -> $(installed_version "$new_version" vector)"
if [ "$(installed_version "$old_version" platform)" != "$(installed_version "$new_version" platform)" ]; then
  echo "the two installs carry different platform versions: install the same build in both" >&2
  exit 1
fi

# The test binary, built once, run for each phase.
step "Building the test"
nice -n 10 cargo test -p platform-client-tests --test pg_upgrade --no-run >"$scratch/build.log" 2>&1 ||
  { cat "$scratch/build.log"; exit 1; }
tail -n 1 "$scratch/build.log"
run_phase() {
  local phase="$1" port="$2"
  PLATFORM_PG_UPGRADE_PHASE="$phase" PLATFORM_PG_UPGRADE_SNAPSHOT="$snapshot" \
    DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres" \
    cargo test -q -p platform-client-tests --test pg_upgrade -- --ignored --nocapture --test-threads 1 \
    "${phase}_pg_upgrade"
}

step "PostgreSQL $old_version: a fresh cluster, populated as the application role"
cluster_start "$old_version" "$old_data" "$old_port" "-c fsync=off"
run_phase before "$old_port"

step "PostgreSQL $old_version: stopped"
cluster_stop "$old_version" "$old_data"
# (Captured, not piped into grep -q: under pipefail its early exit can fail
# the pipeline.)
control="$(as_postgres "$old_bindir/pg_controldata" "$old_data")"
grep "^Database cluster state: *shut down$" <<<"$control" >/dev/null || {
  echo "the old cluster did not shut down cleanly" >&2
  exit 1
}

step "PostgreSQL $new_version: initdb with the old cluster's encoding, locale and checksum setting"
# cluster_start's initdb flags. PostgreSQL 18's initdb enables data checksums
# by default, and pg_upgrade refuses to move a cluster without them into one
# with them: follow the old cluster's setting.
checksums="$(sed -n 's/^Data page checksum version: *//p' <<<"$control")"
if [ "$checksums" = 0 ]; then
  case "$("$new_bindir/initdb" --help)" in
    *--no-data-checksums*) checksum_flag=--no-data-checksums ;;
    *) checksum_flag= ;;
  esac
else
  checksum_flag=--data-checksums
fi
mkdir -p "$new_data" && chown postgres: "$new_data" && chmod 700 "$new_data"
as_postgres "$new_bindir/initdb" -D "$new_data" -U postgres -A trust -E UTF8 \
  --locale=C.UTF-8 --no-sync $checksum_flag >/dev/null

upgrade_args=(-b "$old_bindir" -B "$new_bindir" -d "$old_data" -D "$new_data"
  -p "$old_port" -P "$new_port" -U postgres)
step "pg_upgrade --check"
(cd "$work" && as_postgres "$new_bindir/pg_upgrade" --check "${upgrade_args[@]}")

step "pg_upgrade $transfer"
(cd "$work" && as_postgres "$new_bindir/pg_upgrade" "$transfer" "${upgrade_args[@]}")
if [ -f "$work/update_extensions.sql" ]; then
  echo "--- pg_upgrade's update_extensions.sql:"
  cat "$work/update_extensions.sql"
fi

step "PostgreSQL $new_version: started; the application role's checks"
cluster_start "$new_version" "$new_data" "$new_port" "-c fsync=off"
run_phase after "$new_port"

step "vacuumdb --all --analyze-in-stages"
analyze_args=(--all --analyze-in-stages)
# From 18 on pg_upgrade carries the planner statistics over; what it does
# not carry (extended statistics) is what --missing-stats-only makes.
case "$("$new_bindir/vacuumdb" --help)" in
  *--missing-stats-only*) analyze_args+=(--missing-stats-only) ;;
esac
"$new_bindir/vacuumdb" -h 127.0.0.1 -p "$new_port" -U postgres "${analyze_args[@]}"

echo "    ($(since "$step_started") s)"
echo "=== pg_upgrade test passed in $(since "$started") s"
