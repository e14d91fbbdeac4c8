#!/usr/bin/env bash
# Runs Auth.js's official adapter test suite (runBasicTests, vendored in
# ../shared/vendor/authjs-adapter-suite) through @auth/drizzle-adapter against
# the extension, as an application role under a tenant context
# (tests/authjs/).
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres scripts/authjs.sh
#
# DATABASE_URL is a superuser connection string (a postgres:// URL) to a
# server with the extension installed. The script creates a fresh database
# (CREATE EXTENSION platform CASCADE), an application role (LOGIN NOSUPERUSER
# NOBYPASSRLS, grant_app_access) and two tenants (create_tenant), runs the
# suite, and drops the database and the role again, whatever the outcome.
# It exits non-zero when any test fails.
#
# Environment:
#   AUTHJS_ADAPTER_SUITE  the vendored adapter.ts (default: the vendor
#                         directory of scripts/env.sh, i.e. PLATFORM_VENDOR,
#                         ../shared/vendor or /work/shared/vendor)
#   PSQL                  the psql to use (default: psql on PATH, else
#                         PostgreSQL 16's)
#
# npm dependencies are installed with `npm ci` only when node_modules is
# missing or was installed from another package.json/package-lock.json; a
# second run needs no network.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=env.sh
. "$root/scripts/env.sh"
project="$root/tests/authjs"

: "${DATABASE_URL:?set DATABASE_URL to a superuser connection string, e.g. postgres://postgres@127.0.0.1:5432/postgres}"
case "$DATABASE_URL" in
  postgres://* | postgresql://*) ;;
  *) echo "DATABASE_URL must be a postgres:// URL" >&2; exit 2 ;;
esac
command -v node >/dev/null || { echo "node not found (Node 20.19 or later is needed)" >&2; exit 1; }
PSQL="${PSQL:-$(command -v psql || echo "$("$(pg_config_16_path)" --bindir)/psql")}"
AUTHJS_ADAPTER_SUITE="${AUTHJS_ADAPTER_SUITE:-$(vendor_dir)/authjs-adapter-suite/adapter.ts}"
[ -f "$AUTHJS_ADAPTER_SUITE" ] || { echo "Auth.js adapter suite not found: $AUTHJS_ADAPTER_SUITE" >&2; exit 1; }
AUTHJS_ADAPTER_SUITE="$(realpath "$AUTHJS_ADAPTER_SUITE")"
export AUTHJS_ADAPTER_SUITE

# --- npm dependencies, idempotently -----------------------------------------
stamp="$project/node_modules/.platform-authjs-deps"
want="$(cat "$project/package.json" "$project/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== npm ci in tests/authjs"
  command -v npm >/dev/null || { echo "npm not found" >&2; exit 1; }
  # No install scripts: nothing here needs one (esbuild ships its binary as an
  # optional dependency), and none from the registry runs as root.
  (cd "$project" && npm ci --no-audit --no-fund --ignore-scripts --prefer-offline --loglevel=error)
  echo "$want" >"$stamp"
fi

psql_() { "$PSQL" -X -q -v ON_ERROR_STOP=1 "$@"; }
# with_url USER PASSWORD DBNAME: DATABASE_URL with those replaced (empty: kept).
with_url() {
  node -e '
    const [user, password, db] = process.argv.slice(1);
    const u = new URL(process.env.DATABASE_URL);
    if (user) u.username = user;
    if (password) u.password = password;
    if (db) u.pathname = "/" + db;
    console.log(u.href);' "$@"
}

# --- a fresh database, an application role, two tenants ---------------------
suffix="$(date +%s)_$$"
database="authjs_$suffix"
role="authjs_app_$suffix"
password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
admin_url="$(with_url "" "" "$database")"
export AUTHJS_APP_URL
AUTHJS_APP_URL="$(with_url "$role" "$password" "$database")"

tsc_pid=
cleanup() {
  if [ -n "$tsc_pid" ]; then kill "$tsc_pid" 2>/dev/null || true; fi
  psql_ "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" \
    -c "DROP ROLE IF EXISTS $role" || echo "authjs.sh: could not drop $database / $role" >&2
  rm -f "${report:-}"
}
trap cleanup EXIT

# The Drizzle mapping must satisfy the adapter's types (tests/authjs/schema.ts):
# type-checked in the background, while the suite runs.
(cd "$project" && node_modules/.bin/tsc --noEmit -p .) >"$project/node_modules/.tsc.log" 2>&1 &
tsc_pid=$!

psql_ "$DATABASE_URL" -c "CREATE DATABASE $database" \
  -c "CREATE ROLE $role LOGIN PASSWORD '$password' NOSUPERUSER NOBYPASSRLS"
psql_ "$admin_url" -c "CREATE EXTENSION platform CASCADE" \
  -c "SELECT grant_app_access('$role')" >/dev/null

new_tenant() {
  psql_ "$admin_url" -tA -c "BEGIN" -c "SELECT create_tenant('$1')" -c "COMMIT"
}
export AUTHJS_TENANT_ID AUTHJS_OTHER_TENANT_ID
AUTHJS_TENANT_ID="$(new_tenant 'Auth.js suite')"
AUTHJS_OTHER_TENANT_ID="$(new_tenant 'Auth.js other tenant')"

echo "== Auth.js adapter suite: node $(node --version), $(psql_ "$admin_url" -tA -c "SELECT 'PostgreSQL ' || current_setting('server_version') || ', platform ' || extversion FROM pg_extension WHERE extname = 'platform'"), $(cd "$project" && node -p '["@auth/core", "@auth/drizzle-adapter", "drizzle-orm", "postgres", "vitest"].map((p) => p + " " + require("./node_modules/" + p + "/package.json").version).join(", ")')"
echo "   suite: $AUTHJS_ADAPTER_SUITE"

# --- the suite ---------------------------------------------------------------
report="$(mktemp /tmp/authjs-report.XXXXXX.json)"
set +e
(cd "$project" && node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile.json="$report")
status=$?
set -e
if ! wait "$tsc_pid"; then
  echo "tests/authjs does not type-check (tsc):" >&2; cat "$project/node_modules/.tsc.log" >&2; status=1
fi
tsc_pid=

# One closing line per file and in all, "N passed, N failed, N skipped";
# no test run at all is a failure too.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const count = (tests, s) => tests.filter((t) => s.includes(t.status)).length;
  for (const f of r.testResults) {
    const t = f.assertionResults;
    console.log(`${require("path").basename(f.name)}: ${count(t, ["passed"])} passed, ${count(t, ["failed"])} failed, ${count(t, ["skipped", "pending", "todo"])} skipped`);
  }
  console.log(`authjs: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
  process.exit(r.numPassedTests > 0 && r.numFailedTests === 0 && r.success ? 0 : 1);
' "$report" || status=1
exit "$status"
