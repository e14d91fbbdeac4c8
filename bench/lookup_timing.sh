#!/usr/bin/env bash
# Whether a lookup by secret is a timing oracle: tenant_for_api_key() and
# user_for_session_token() timed, call by call inside the server (no network
# noise), for right secrets, wrong ones, and near misses (a right secret with
# its last character changed), interleaved in one run on the same data.
# Prints the median and 95th percentile per kind and their ratio to the right
# secrets' median. Near misses must cost what wrong secrets cost: a lookup
# compares digests, so how close a guess is cannot show in the time.
# verify_password() likewise, for the right password, a wrong one and an
# address nobody has: all three must cost one Argon2id computation.
#
# Usage: bench/lookup_timing.sh [tenants] [calls per kind] [password calls per kind]
#        (default 10000 20000 300)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
source scripts/cluster.sh

TENANTS="${1:-10000}"
CALLS="${2:-20000}"
PASSWORD_CALLS="${3:-300}"
PORT=29118
DB=lookup_bench

install_extension 16 --release >/dev/null
scratch_cluster 16 "$PORT"
psql_as() { cluster_psql 16 "$PORT" "$@"; }

echo "== $TENANTS tenants, each with a key and a session; $CALLS calls per kind"
psql_as postgres -d postgres -c "CREATE DATABASE $DB"
PGOPTIONS="-c bench.tenants=$TENANTS -c bench.calls=$CALLS -c bench.password_calls=$PASSWORD_CALLS" psql_as postgres -d "$DB" <<'SQL'
CREATE EXTENSION platform CASCADE;
-- The keys and tokens are kept in plain text here only to present them.
CREATE TABLE issued AS
SELECT g AS n, gen_random_uuid() AS tenant, 'pk_live_' || md5(random()::text) || md5(random()::text) AS api_key,
       gen_random_uuid()::text AS token
FROM generate_series(1, current_setting('bench.tenants')::int) g;
INSERT INTO tenants (id, name, api_key) SELECT tenant, 'Tenant ' || n, api_key FROM issued;
INSERT INTO users (id, tenant_id, email)
SELECT tenant, tenant, 'u' || n || '@example.com' FROM issued;
-- Passwords for the first 100 users, at the extension's default cost.
DO $$
DECLARE
    u record;
BEGIN
    FOR u IN SELECT n, tenant FROM issued WHERE n <= 100 LOOP
        PERFORM set_config('app.current_tenant_id', u.tenant::text, true);
        PERFORM set_password(u.tenant, 'password of user ' || u.n);
    END LOOP;
END
$$;
INSERT INTO auth_sessions (tenant_id, session_token, user_id, expires)
SELECT tenant, token, tenant, now() + interval '1 day' FROM issued;
VACUUM ANALYZE;

CREATE TEMP TABLE timings (lookup text, kind text, micros double precision);
DO $$
DECLARE
    i int;
    pick int;
    kind text;
    secret_key text;
    secret_token text;
    started timestamptz;
    found boolean;
BEGIN
    FOR i IN 1 .. current_setting('bench.calls')::int * 3 LOOP
        kind := (ARRAY['right', 'wrong', 'near miss'])[1 + i % 3];
        pick := 1 + floor(random() * current_setting('bench.tenants')::int);
        SELECT CASE kind WHEN 'right' THEN api_key
                         WHEN 'wrong' THEN 'pk_live_' || md5(random()::text) || md5(random()::text)
                         ELSE left(api_key, -1) || CASE right(api_key, 1) WHEN 'a' THEN 'b' ELSE 'a' END END,
               CASE kind WHEN 'right' THEN token
                         WHEN 'wrong' THEN gen_random_uuid()::text
                         ELSE left(token, -1) || CASE right(token, 1) WHEN 'a' THEN 'b' ELSE 'a' END END
        INTO secret_key, secret_token
        FROM issued WHERE n = pick;

        started := clock_timestamp();
        found := tenant_for_api_key(secret_key) IS NOT NULL;
        INSERT INTO timings VALUES ('tenant_for_api_key', kind,
            extract(epoch FROM clock_timestamp() - started) * 1e6);
        IF found <> (kind = 'right') THEN RAISE EXCEPTION 'api key lookup of a % key: found = %', kind, found; END IF;

        started := clock_timestamp();
        found := EXISTS (SELECT FROM user_for_session_token(secret_token));
        INSERT INTO timings VALUES ('user_for_session_token', kind,
            extract(epoch FROM clock_timestamp() - started) * 1e6);
        IF found <> (kind = 'right') THEN RAISE EXCEPTION 'token lookup of a % token: found = %', kind, found; END IF;
    END LOOP;
END
$$;

DO $$
DECLARE
    i int;
    pick int;
    kind text;
    started timestamptz;
    found boolean;
BEGIN
    FOR i IN 1 .. current_setting('bench.password_calls')::int * 3 LOOP
        kind := (ARRAY['right', 'wrong', 'unknown address'])[1 + i % 3];
        pick := 1 + floor(random() * 100);
        started := clock_timestamp();
        found := EXISTS (SELECT FROM verify_password(
            CASE kind WHEN 'unknown address' THEN 'nobody' || pick || '@example.com'
                      ELSE 'u' || pick || '@example.com' END,
            CASE kind WHEN 'right' THEN 'password of user ' || pick
                      ELSE 'password of user ' || pick || '!' END));
        INSERT INTO timings VALUES ('verify_password', kind,
            extract(epoch FROM clock_timestamp() - started) * 1e6);
        IF found <> (kind = 'right') THEN RAISE EXCEPTION 'verify_password, %: found = %', kind, found; END IF;
    END LOOP;
END
$$;

\echo
\echo 'microseconds per call, measured inside the server, calls interleaved'
WITH stats AS (
    SELECT lookup, kind,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY micros) AS p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY micros) AS p95
    FROM timings GROUP BY lookup, kind
)
SELECT s.lookup, s.kind, round(s.p50::numeric, 1) AS p50_us, round(s.p95::numeric, 1) AS p95_us,
       round((s.p50 / r.p50)::numeric, 2) AS p50_vs_right
FROM stats s JOIN stats r ON r.lookup = s.lookup AND r.kind = 'right'
ORDER BY s.lookup, array_position(ARRAY['right', 'wrong', 'near miss', 'unknown address'], s.kind);
SQL
