#!/usr/bin/env bash
# What row-level security costs: one tenant's aggregate over messages, timed
# three ways in the same run on the same data:
#   bypass    as the superuser with an explicit WHERE tenant_id = ... (no RLS)
#   platform  as the application role under this extension's policies
#   document  as the application role under the design document's policy for
#             messages (no tenant_id: EXISTS over the parent session)
#   signed    as an application role in signed mode (platform.tenant_context,
#             docs/security.md): set_tenant_token() with an HMAC-signed token,
#             verified reads under the same policies
# and printed as latency ratios against the bypass baseline; then what
# setting the context alone costs per transaction (set_tenant against
# set_tenant_token, each in BEGIN ... COMMIT).
#
# Usage: bench/rls_overhead.sh [messages]   (default 1000000; 10% belong to the
# measured tenant, the rest to 99 others). Needs scripts/install-deps.sh first
# and installs the extension into PostgreSQL 16 itself.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
source scripts/cluster.sh

MESSAGES="${1:-1000000}"
SECONDS_PER_RUN="${BENCH_SECONDS:-5}"
ROUNDS="${BENCH_ROUNDS:-3}"
PORT="${BENCH_PORT:-29116}"
DB=rls_bench
APP=rls_bench_app
SIGNED_APP=rls_bench_signed
# A key for this throw-away cluster only.
KEY_ID=bench
KEY_HEX="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"

install_extension 16 --release >/dev/null
scratch_cluster 16 "$PORT"
bindir="$("$(pg_config_for 16)" --bindir)"
psql_as() { cluster_psql 16 "$PORT" "$@"; }
# The key in the server's configuration, as docs/security.md describes.
echo "platform.tenant_keys = '$KEY_ID:$KEY_HEX'" >> "$work/pg/postgresql.conf"
psql_as postgres -d postgres -Atc "SELECT pg_reload_conf()" >/dev/null

sessions=$(( (MESSAGES + 49) / 50 ))
echo "== loading $((sessions * 50)) messages in $sessions sessions over 100 tenants"
psql_as postgres -d postgres -c "CREATE DATABASE $DB"
psql_as postgres -d "$DB" -v sessions="$sessions" <<SQL
CREATE EXTENSION platform CASCADE;
CREATE ROLE $APP LOGIN NOSUPERUSER NOBYPASSRLS;
SELECT grant_app_access('$APP') \g /dev/null
-- The signed variant's role: signed mode, and tokens valid long enough for
-- one token to serve the whole run (an application mints one per request).
CREATE ROLE $SIGNED_APP LOGIN NOSUPERUSER NOBYPASSRLS;
SELECT grant_app_access('$SIGNED_APP') \g /dev/null
ALTER ROLE $SIGNED_APP SET platform.tenant_context = 'signed';
ALTER ROLE $SIGNED_APP SET platform.tenant_token_max_ttl = '1d';
INSERT INTO tenants (name, api_key)
SELECT 'Tenant ' || i, 'pk_bench_' || md5(i::text) FROM generate_series(1, 100) i;
CREATE TEMP TABLE numbered AS SELECT row_number() OVER (ORDER BY name) AS n, id FROM tenants;
-- Tenant 1 gets every tenth session (10% of the rows), the others share the rest.
INSERT INTO sessions (tenant_id, created_at)
SELECT t.id, now() - g * interval '1 minute'
FROM generate_series(1, :sessions) g
JOIN numbered t ON t.n = CASE WHEN g % 10 = 0 THEN 1 ELSE 2 + g % 99 END;
INSERT INTO messages (tenant_id, session_id, role, content, "timestamp")
SELECT s.tenant_id, s.id, 'user', 'message ' || m, s.created_at + m * interval '1 second'
FROM sessions s, generate_series(1, 50) m;

-- The document's messages table: no tenant_id, isolated through its session.
CREATE SCHEMA document_baseline;
CREATE TABLE document_baseline.messages AS
    SELECT id, session_id, role, content, "timestamp" FROM messages;
CREATE INDEX ON document_baseline.messages (session_id);
CREATE INDEX ON document_baseline.messages ("timestamp");
ALTER TABLE document_baseline.messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE document_baseline.messages FORCE ROW LEVEL SECURITY;
CREATE POLICY messages_select ON document_baseline.messages FOR SELECT USING (
    EXISTS (SELECT 1 FROM sessions s
            WHERE s.id = messages.session_id AND s.tenant_id = get_current_tenant_id()));
GRANT USAGE ON SCHEMA document_baseline TO $APP;
GRANT SELECT ON document_baseline.messages TO $APP;
VACUUM ANALYZE;
SQL
tenant="$(psql_as postgres -d "$DB" -Atc "SELECT id FROM tenants WHERE name = 'Tenant 1'")"
rows="$(psql_as postgres -d "$DB" -Atc "SELECT count(*) FROM messages WHERE tenant_id = '$tenant'")"

# Same transaction shape for all three: BEGIN, set the context, query, COMMIT.
# The tenant id is generated above, not user input.
query='SELECT count(*), max("timestamp") FROM'
cat > "$work/bypass.sql" <<SQL
BEGIN;
SELECT set_config('app.current_tenant_id', '$tenant', true);
$query messages WHERE tenant_id = '$tenant';
COMMIT;
SQL
cat > "$work/platform.sql" <<SQL
BEGIN;
SELECT set_tenant('$tenant');
$query messages;
COMMIT;
SQL
cat > "$work/document.sql" <<SQL
BEGIN;
SELECT set_tenant('$tenant');
$query document_baseline.messages;
COMMIT;
SQL
token="$(python3 - "$KEY_ID" "$KEY_HEX" "$tenant" <<'PY'
import hashlib, hmac, sys, time
kid, key, tenant = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3]
exp = int(time.time()) + 80000
body = f"platform-v1.{kid}.tenant.{tenant}.{exp}".encode()
print(f"v1.{kid}.tenant.{tenant}.{exp}.{hmac.new(key, body, hashlib.sha256).hexdigest()}")
PY
)"
cat > "$work/signed.sql" <<SQL
BEGIN;
SELECT set_tenant_token('$token');
$query messages;
COMMIT;
SQL
# The context alone, per transaction.
printf 'BEGIN;\nSELECT set_tenant(%s);\nCOMMIT;\n' "'$tenant'" > "$work/set_tenant.sql"
printf 'BEGIN;\nSELECT set_tenant_token(%s);\nCOMMIT;\n' "'$token'" > "$work/set_tenant_token.sql"

# The three must agree before their speed means anything.
answer() { psql_as "$1" -d "$DB" -At -f "$work/$2.sql" | tail -n 1; }
expected="$(answer postgres bypass)"
for variant in platform document; do
  got="$(answer "$APP" "$variant")"
  [ "$got" = "$expected" ] || { echo "$variant returned '$got', bypass '$expected'" >&2; exit 1; }
done
got="$(answer "$SIGNED_APP" signed)"
[ "$got" = "$expected" ] || { echo "signed returned '$got', bypass '$expected'" >&2; exit 1; }

latency() {  # user variant -> average latency in ms over one run
  "$bindir/pgbench" -n -T "$SECONDS_PER_RUN" -h 127.0.0.1 -p "$PORT" -U "$1" -f "$work/$2.sql" "$DB" 2>/dev/null \
    | awk -F'= ' '/latency average/ { split($2, a, " "); print a[1] }'
}
declare -A runs
# The two tenant_id variants next to each other, before the document's
# heavy one.
for round in $(seq "$ROUNDS"); do
  runs[bypass]+="$(latency postgres bypass) "
  runs[platform]+="$(latency "$APP" platform) "
  runs[signed]+="$(latency "$SIGNED_APP" signed) "
  runs[document]+="$(latency "$APP" document) "
  runs[set_tenant]+="$(latency "$APP" set_tenant) "
  runs[set_tenant_token]+="$(latency "$SIGNED_APP" set_tenant_token) "
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

base="$(median "${runs[bypass]}")"
echo
echo "query: count(*), max(\"timestamp\") over one tenant's messages ($rows of $((sessions * 50)) rows);"
echo "median of $ROUNDS runs of ${SECONDS_PER_RUN}s, one client, PostgreSQL 16, $(nproc) cores"
printf '%-44s %14s %8s\n' "variant" "latency (ms)" "ratio"
printf '%-44s %14s %8s\n' "bypass: superuser, WHERE tenant_id = ..." "$base" "1.00"
for variant in platform signed document; do
  value="$(median "${runs[$variant]}")"
  case "$variant" in
    platform) label="platform: app role, tenant_id policies" ;;
    signed) label="signed: same, signed mode, set_tenant_token" ;;
    document) label="document: app role, EXISTS policy" ;;
  esac
  printf '%-44s %14s %8.2f\n' "$label" "$value" "$(awk -v a="$value" -v b="$base" 'BEGIN { print a / b }')"
done
platform="$(median "${runs[platform]}")"
signed="$(median "${runs[signed]}")"
printf '%-44s %23.2f\n' "signed against platform" "$(awk -v a="$signed" -v b="$platform" 'BEGIN { print a / b }')"
echo
echo "the context alone, BEGIN; set it; COMMIT (same runs):"
printf '%-44s %14s\n' "set_tenant(uuid), setting mode" "$(median "${runs[set_tenant]}")"
printf '%-44s %14s\n' "set_tenant_token(token), signed mode" "$(median "${runs[set_tenant_token]}")"
