#!/usr/bin/env bash
# The SQL-level regression tier (tests/pg_regress/): SQL in, expected output
# out, run by PostgreSQL's own pg_regress against a running server that has
# the extension installed.
#
#   scripts/regress.sh [--accept] [--keep] [--extension-version V] PG_CONFIG [TEST ...]
#
# The server is the one the usual libpq environment points at (PGHOST,
# PGPORT, PGUSER: a superuser; PGPASSWORD or ~/.pgpass if it needs one).
# The script (re)creates the database platform_regress with
# CREATE EXTENSION platform CASCADE and the application role
# platform_regress_app (LOGIN NOSUPERUSER NOBYPASSRLS, given app access with
# grant_app_access(..., provisioning => true)), runs the schedule
# tests/pg_regress/schedule (or only the TESTs named, setup first) with its
# output in a temporary directory, prints regression.diffs on failure and
# exits non-zero, and drops the database and the role at the end.
#
#   --accept   (or PLATFORM_REGRESS_ACCEPT=1) after a run with differences,
#              copy each differing result over the expected file it was
#              compared with (tests/pg_regress/expected/NAME.out, or the
#              NAME_N.out alternative pg_regress found closest), for review
#              with git diff; a test without an expected file gets one.
#   --keep     (or PLATFORM_REGRESS_KEEP=1) keep the database, the role and
#              the output directory for a look afterwards.
#   --extension-version V  (or PLATFORM_REGRESS_EXTENSION_VERSION=V)
#              CREATE EXTENSION platform VERSION 'V' instead of the default
#              version, for instance a released one kept in sql/released/.
#
# Example, against a throw-away cluster (scripts/cluster.sh):
#   source scripts/env.sh; source scripts/cluster.sh
#   cluster_start 16 /tmp/regress-pg16 29616 "-c fsync=off"
#   PGHOST=127.0.0.1 PGPORT=29616 PGUSER=postgres scripts/regress.sh "$(pg_config_for 16)"
#   cluster_stop 16 /tmp/regress-pg16
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

accept="${PLATFORM_REGRESS_ACCEPT:-0}"
keep="${PLATFORM_REGRESS_KEEP:-0}"
extension_version="${PLATFORM_REGRESS_EXTENSION_VERSION:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --accept) accept=1; shift ;;
    --keep) keep=1; shift ;;
    --extension-version) extension_version="${2:?--extension-version needs a version}"; shift 2 ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) echo "regress.sh: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || usage
pg_config="$1"; shift
tests=("$@")

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
suite="$repo/tests/pg_regress"
bindir="$("$pg_config" --bindir)"
pg_regress="$("$pg_config" --pkglibdir)/pgxs/src/test/regress/pg_regress"
[ -x "$pg_regress" ] || { echo "regress.sh: $pg_regress not found" >&2; exit 1; }

db=platform_regress
role=platform_regress_app

psql() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

outdir="$(mktemp -d "${TMPDIR:-/tmp}/platform-regress.XXXXXX")"

drop_all() {
  # DROP OWNED takes back what the role holds outside the database too (a
  # SET ON PARAMETER grant left by a failed run), which DROP ROLE refuses.
  psql -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
    -c "DO \$\$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '$role') THEN DROP OWNED BY $role; END IF; END \$\$" \
    -c "DROP ROLE IF EXISTS $role"
}
cleanup() {
  if [ "$keep" = 1 ]; then
    echo "kept: database $db, role $role, output in $outdir" >&2
  else
    drop_all || echo "regress.sh: could not drop $db / $role" >&2
    rm -rf "$outdir"
  fi
}

# A fresh database and role every run: earlier runs leave nothing behind.
drop_all
trap cleanup EXIT
psql -d postgres <<SQL
CREATE ROLE $role LOGIN NOSUPERUSER NOBYPASSRLS;
-- C collation and messages, so that output is the same on any server.
CREATE DATABASE $db TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER libc LOCALE 'C';
ALTER DATABASE $db SET lc_messages = 'C';
-- Counts the calls of every function, for the coverage test (coverage.sql).
ALTER DATABASE $db SET track_functions = 'all';
SQL
psql -d "$db" -o /dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION platform ${extension_version:+VERSION '$extension_version'} CASCADE;
SELECT grant_app_access('$role', provisioning => true);
SQL

echo "== regression tier: PostgreSQL $(psql -d "$db" -At -c "SELECT current_setting('server_version')")" \
  "at $(psql -d "$db" -At -c "SELECT coalesce(host(inet_server_addr()), 'socket') || ':' || inet_server_port()")," \
  "platform $(psql -d "$db" -At -c "SELECT extversion FROM pg_extension WHERE extname = 'platform'")," \
  "vector $(psql -d "$db" -At -c "SELECT extversion FROM pg_extension WHERE extname = 'vector'")"

if [ ${#tests[@]} -gt 0 ]; then
  selection=("${tests[@]}")
  names=("${tests[@]}")
else
  selection=(--schedule="$suite/schedule")
  read -r -a names <<< "$(sed -n 's/^test: *//p' "$suite/schedule" | tr '\n' ' ')"
fi

# A test without an expected file fails in pg_regress; with --accept it
# starts from an empty one and gets the result below.
if [ "$accept" = 1 ]; then
  for name in "${names[@]}"; do
    [ -e "$suite/expected/$name.out" ] || : > "$suite/expected/$name.out"
  done
fi

started=$SECONDS
status=0
"$pg_regress" --use-existing --bindir="$bindir" --dbname="$db" \
  --inputdir="$suite" --outputdir="$outdir" "${selection[@]}" || status=$?
echo "== $((SECONDS - started)) s"

if [ "$status" -ne 0 ]; then
  if [ -s "$outdir/regression.diffs" ]; then
    echo "== regression.diffs"
    cat "$outdir/regression.diffs"
  fi
  if [ "$accept" = 1 ] && [ -s "$outdir/regression.diffs" ]; then
    # pg_regress heads each test's diff with
    #   diff <options> <expected file it chose> <result file>
    grep -E '^diff ' "$outdir/regression.diffs" | while read -r line; do
      set -- $line
      result="${!#}"
      expected="${@: -2:1}"
      case "$expected" in
        "$suite"/expected/*.out) cp "$result" "$expected"; echo "accepted: ${expected#"$repo"/}" ;;
        *) echo "regress.sh: not accepting $result over $expected" >&2 ;;
      esac
    done
    echo "== review with: git diff -- tests/pg_regress/expected"
  fi
  exit "$status"
fi
