#!/usr/bin/env bash
# Runs every test. First, once: the committed upgrade script is what the
# sources generate and no released file changed (scripts/upgrade-script.py
# --check), and that check catches a function edited without regenerating.
# Then on each PostgreSQL major version given (default: 16 15 18):
#   1. `cargo pgrx test`: plain Rust unit tests and in-backend #[pg_test]s;
#   2. the client tests in pgrx-tests/, against a fresh cluster with the
#      extension installed, connecting as an ordinary application role;
#   3. Auth.js's adapter test suite (tests/authjs) and the SQL regression
#      tier (tests/pg_regress) on the same cluster;
#   4. the crash-recovery test, which kills its own cluster (fsync on);
# then a pg_upgrade of a populated 16 cluster to 18, and on 16 the benchmarks
# at their smallest sizes as a smoke test.
# Usage: scripts/test.sh [16] [15] [18]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
source scripts/cluster.sh

bash scripts/install-deps.sh

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(16 15 18)

scratch="$(mktemp -d /tmp/platform-test.XXXXXX)"
chmod 755 "$scratch"
# Every runner's output also goes here, to add up the counts at the end.
transcript="$scratch/transcript"
running=()
cleanup() {
  for v in "${running[@]}"; do
    case "$v" in
      *:crash) cluster_stop "${v%:crash}" "$scratch/crash-pg${v%:crash}" ;;
      *) cluster_stop "$v" "$scratch/client-pg$v" ;;
    esac
  done
  rm -rf "$scratch"
}
trap cleanup EXIT

echo "=== The upgrade script is what the sources generate; released files unchanged"
cargo pgrx schema pg16 --out "$scratch/schema.sql" >/dev/null
python3 scripts/upgrade-script.py --check --schema "$scratch/schema.sql"
# The check itself, on a copy of the sources with one function body edited
# and the upgrade script not regenerated: it must fail, naming the script.
edited="$scratch/edited"
mkdir -p "$edited/scripts" "$edited/src"
cp -r sql Cargo.toml "$edited/" && cp src/lib.rs "$edited/src/" && cp scripts/upgrade-script.py "$edited/scripts/"
sed -i 's/NEW.updated_at := now();/NEW.updated_at := clock_timestamp();/' "$edited/sql/tenancy/updated_at.sql"
if python3 "$edited/scripts/upgrade-script.py" --check --schema "$scratch/schema.sql" 2>"$edited/check.err"; then
  echo "the upgrade-script check passed a function body edited without regenerating" >&2
  exit 1
fi
grep -q "differs from what the sources generate" "$edited/check.err"
echo "ok: an edited function body without a regenerated upgrade script fails the check"

for v in "${versions[@]}"; do
  pg_config_for "$v" >/dev/null
  echo "=== PostgreSQL $v: unit and in-backend tests"
  mkdir -p "$scratch/pgrx-pg$v" && chown postgres: "$scratch/pgrx-pg$v"
  cargo pgrx test "pg$v" --runas postgres --pgdata "$scratch/pgrx-pg$v/data" 2>&1 | tee -a "$transcript"

  echo "=== PostgreSQL $v: client tests as the application role"
  install_extension "$v" >/dev/null
  port=$((29000 + v))
  running+=("$v")
  bindir="$("$(pg_config_for "$v")" --bindir)"
  # No durability needed here: fsync off keeps the many small commits fast.
  cluster_start "$v" "$scratch/client-pg$v" "$port" "-c fsync=off"
  PLATFORM_TEST_HOST="$scratch/client-pg$v" PLATFORM_TEST_PORT="$port" PLATFORM_TEST_BINDIR="$bindir" \
    cargo test -p platform-client-tests -- --test-threads 4 2>&1 | tee -a "$transcript"

  echo "=== PostgreSQL $v: Auth.js's own adapter test suite, through @auth/drizzle-adapter"
  DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres" bash scripts/authjs.sh 2>&1 | tee -a "$transcript"

  echo "=== PostgreSQL $v: SQL regression tier"
  PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres bash scripts/regress.sh "$(pg_config_for "$v")" 2>&1 | tee -a "$transcript"
  cluster_stop "$v" "$scratch/client-pg$v"

  echo "=== PostgreSQL $v: crash recovery, on a cluster of its own with fsync on"
  crash="$scratch/crash-pg$v"
  running+=("$v:crash")
  cluster_start "$v" "$crash" "$((port + 100))"
  PLATFORM_TEST_HOST="$crash" PLATFORM_TEST_PORT="$((port + 100))" PLATFORM_TEST_BINDIR="$bindir" \
    PLATFORM_TEST_DATADIR="$crash" PLATFORM_TEST_SERVER_OPTIONS="$(server_options "$crash" "$((port + 100))")" \
    cargo test -p platform-client-tests --test crash_recovery -- --ignored 2>&1 | tee -a "$transcript"
  cluster_stop "$v" "$crash"
done
# A populated 16 cluster moved to 18 with pg_upgrade: every row, policy,
# index (HNSW and GIN in use) and function as the application role after it.
if [[ " ${versions[*]} " == *" 16 "* && " ${versions[*]} " == *" 18 "* ]]; then
  echo "=== pg_upgrade from PostgreSQL 16 to 18"
  bash scripts/pg-upgrade-test.sh 2>&1 | tee -a "$transcript"
fi
# The benchmarks at their smallest sizes, on PostgreSQL 16 with the build just
# installed: a smoke test that they run and get the right answers (each exits
# non-zero on a wrong result); their figures mean nothing at this size.
if [[ " ${versions[*]} " == *" 16 "* ]]; then
  echo "=== PostgreSQL 16: benchmark smoke runs"
  BENCH_SECONDS=1 BENCH_RUNS=5 BENCH_BUILD=skip bash bench/costs.sh 20000 10 2>&1 | tee -a "$transcript"
  BENCH_PROFILE=debug BENCH_OUT="$scratch/bench" bash bench/search.sh smoke 2>&1 | tee -a "$transcript"
fi
# One closing line for all runs together: "N passed, N failed" (cargo's
# tests and pg_regress's).
sed 's/\x1b\[[0-9;]*m//g' "$transcript" | awk '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  /All [0-9]+ tests passed/ { for (i = 1; i < NF; i++) if ($i == "All") p += $(i+1) }
  /^authjs: [0-9]+ passed/ { p += $2; f += $4 }
  END { printf "=== PostgreSQL '"${versions[*]}"': all test runs finished\n%d passed, %d failed\n", p, f }' 
