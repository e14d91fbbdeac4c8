#!/usr/bin/env bash
# Cost accounting, measured in one run on one data set:
#   1. the design document's "Cost Aggregation" query against cost_summary()
#      for one tenant-month and one tenant-year at day granularity (p50, p95,
#      and whether the results are equal);
#   2. ingest rate, single-row and batched, into cost_events (with the rollup
#      triggers) against an identical table without them;
#   3. budget_status() latency (p50, p99);
#   4. reserve_spend() and settle_spend() latency (p50, p99) on the largest
#      tenant with hard caps, each pair in a transaction of its own, with and
#      without a widget's cap, server-side (in rounds) and client-side with
#      set_tenant() and the commit; and ingest of single rows that name a
#      widget.
#
# Usage: bench/costs.sh [events] [tenants]
#   default 10000000 events over 100 tenants (Zipf, s = 1: the largest tenant
#   holds about a fifth) across the year before now; the measured tenant is
#   the largest. CI smoke size: bench/costs.sh 20000 10  (BENCH_SECONDS=1).
# Environment: BENCH_SECONDS (per ingest run, default 10), BENCH_RUNS (timed
# executions per query, default 50; budget_status 2000), BENCH_PAIR_ROUNDS
# (rounds of reserve/settle pairs, default 3), BENCH_PORT (29117),
# BENCH_BUILD (cargo pgrx install flags, default --release; "skip" to use the
# installed build). Needs scripts/install-deps.sh first; installs the
# extension into PostgreSQL 16 itself.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
source scripts/cluster.sh

EVENTS="${1:-10000000}"
TENANTS="${2:-100}"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
RUNS="${BENCH_RUNS:-50}"
PAIR_ROUNDS="${BENCH_PAIR_ROUNDS:-3}"
PORT="${BENCH_PORT:-29117}"
BUILD="${BENCH_BUILD:---release}"
DB=cost_bench
APP=cost_bench_app

[ "$BUILD" = skip ] || install_extension 16 $BUILD >/dev/null
# Durable defaults (fsync and synchronous_commit on), more memory for the load.
scratch_cluster 16 "$PORT" "-c shared_buffers=512MB -c max_wal_size=4GB -c work_mem=64MB"
bindir="$("$(pg_config_for 16)" --bindir)"
psql_as() { cluster_psql 16 "$PORT" "$@"; }
pgbench_as() { "$bindir/pgbench" -n -h 127.0.0.1 -p "$PORT" -U "$@"; }

# The machine's load (1, 5 and 15 minute averages) at the start, after the
# load and at the end: the figures depend on what else runs.
loads="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "== loading $EVENTS cost events over $TENANTS tenants (Zipf) across a year"
started=$SECONDS
psql_as postgres -d postgres -c "CREATE DATABASE $DB"
psql_as postgres -d "$DB" -q -v events="$EVENTS" -v tenants="$TENANTS" <<SQL
CREATE EXTENSION platform CASCADE;
CREATE ROLE $APP LOGIN NOSUPERUSER NOBYPASSRLS;
SELECT grant_app_access('$APP') \g /dev/null
-- Tenant k (1 = largest) has a stable id, so pgbench scripts can name it.
INSERT INTO tenants (id, name, api_key, settings)
SELECT md5('bench-tenant-' || k)::uuid, 'Tenant ' || k, 'pk_bench_' || md5(k::text),
       jsonb_build_object('maxMonthlySpend', 1000 + k, 'timezone', 'UTC')
FROM generate_series(1, :tenants) k;
-- One widget per tenant, for per-widget ingest and caps.
INSERT INTO widgets (id, tenant_id, name, domain_whitelist)
SELECT md5('bench-widget-' || k)::uuid, md5('bench-tenant-' || k)::uuid, 'Chat ' || k, '[]'
FROM generate_series(1, :tenants) k;
-- Zipf: tenant k gets a share proportional to 1/k. width_bucket() maps a
-- uniform random number onto the cumulative shares.
CREATE TEMP TABLE zipf AS
SELECT array_agg(c ORDER BY k) AS bounds FROM (
    SELECT k, sum(1.0 / k) OVER (ORDER BY k) / sum(1.0 / k) OVER () AS c
    FROM generate_series(1, :tenants) k) s;
-- Eight service/provider/model combinations, as a real assistant would have.
CREATE TEMP TABLE combo (n, service, provider, model, tokens) AS VALUES
    (0, 'llm', 'openai', 'gpt-4o', true), (1, 'llm', 'anthropic', 'claude-sonnet', true),
    (2, 'embedding', 'openai', 'text-embedding-3-small', true), (3, 'vision', 'openai', 'gpt-4o', true),
    (4, 'voice_stt', 'deepgram', 'nova-2', false), (5, 'voice_tts', 'elevenlabs', 'turbo', false),
    (6, 'livekit', 'livekit', NULL, false), (7, 'llm', 'openai', 'gpt-4o-mini', true);
-- A bulk load the way a restore does it: the rows with the triggers off
-- (session_replication_role), then the indexes and unique constraints
-- built once from them (a sort beats inserting every row at a random place),
-- then platform_rebuild_cost_rollups() derives the rollups from the rows
-- in one pass, set-wise. Everything measured afterwards goes through the
-- real triggers. The definitions are read from the catalog, so the rebuilt
-- indexes are the extension's own, names included.
SET maintenance_work_mem = '1GB';
SET work_mem = '256MB';
-- Each as (name, constraint definition) or (name, NULL): an index.
CREATE TEMP TABLE event_indexes AS
SELECT c.conname::text AS name, pg_get_constraintdef(c.oid) AS constraint_definition
FROM pg_constraint c WHERE c.conrelid = 'cost_events'::regclass AND c.contype IN ('p', 'u')
UNION ALL
SELECT i.indexrelid::regclass::text, NULL
FROM pg_index i
WHERE i.indrelid = 'cost_events'::regclass
  AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid);
ALTER TABLE event_indexes ADD index_definition text;
UPDATE event_indexes SET index_definition = pg_get_indexdef(name::regclass) WHERE constraint_definition IS NULL;
DO \$\$
DECLARE i record;
BEGIN
    FOR i IN SELECT * FROM event_indexes LOOP
        EXECUTE CASE WHEN i.constraint_definition IS NOT NULL
                     THEN format('ALTER TABLE cost_events DROP CONSTRAINT %I', i.name)
                     ELSE format('DROP INDEX %s', i.name) END;
    END LOOP;
END
\$\$;
SET session_replication_role = replica;
INSERT INTO cost_events (tenant_id, service, provider, tokens_used, cost_usd, metadata, "timestamp")
SELECT md5('bench-tenant-' || least(width_bucket(r.t::numeric, z.bounds) + 1, :tenants))::uuid,
       c.service, c.provider, CASE WHEN c.tokens THEN (r.x * 4000)::int END,
       round((r.x * 0.02)::numeric, 12),
       CASE WHEN c.model IS NOT NULL THEN jsonb_build_object('model', c.model) END,
       now() - interval '365 days' + r.y * interval '365 days'
FROM generate_series(1, :events) g
CROSS JOIN zipf z
CROSS JOIN LATERAL (SELECT random() AS t, random() AS x, random() AS y, floor(random() * 8)::int AS n
                    WHERE g > 0) r
JOIN combo c ON c.n = r.n;
RESET session_replication_role;
DO \$\$
DECLARE i record;
BEGIN
    FOR i IN SELECT * FROM event_indexes LOOP
        EXECUTE coalesce('ALTER TABLE cost_events ADD CONSTRAINT ' || quote_ident(i.name) || ' '
                         || i.constraint_definition, i.index_definition);
    END LOOP;
END
\$\$;
SELECT platform_rebuild_cost_rollups() \g /dev/null
-- The same table without the triggers, for the ingest comparison: same
-- columns, defaults, constraints, indexes, foreign keys and rows (an empty
-- table's indexes would be faster to insert into than any real one's),
-- loaded the same way.
CREATE TABLE cost_events_plain (LIKE cost_events INCLUDING ALL EXCLUDING INDEXES);
INSERT INTO cost_events_plain SELECT * FROM cost_events;
DO \$\$
DECLARE i record;
BEGIN
    FOR i IN SELECT * FROM event_indexes LOOP
        EXECUTE coalesce('ALTER TABLE cost_events_plain ADD ' || i.constraint_definition,
                         regexp_replace(i.index_definition, '^(CREATE (UNIQUE )?INDEX) \\S+ ON \\S+ ',
                                        '\\1 ON cost_events_plain '));
    END LOOP;
END
\$\$;
ALTER TABLE cost_events_plain
    ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
    ADD FOREIGN KEY (tenant_id, session_id) REFERENCES sessions (tenant_id, id) ON DELETE SET NULL (session_id),
    ADD FOREIGN KEY (tenant_id, widget_id) REFERENCES widgets (tenant_id, id) ON DELETE SET NULL (widget_id);
RESET maintenance_work_mem;
RESET work_mem;
VACUUM ANALYZE;

-- Server-side timing of one query, run as the calling role, with the tenant,
-- start and end as its three parameters. Milliseconds per execution, after
-- three untimed runs.
CREATE SCHEMA bench;
CREATE FUNCTION bench.timings(query text, runs integer, tenant uuid, start_at timestamptz, end_at timestamptz)
RETURNS TABLE (p50 numeric, p95 numeric, p99 numeric)
LANGUAGE plpgsql AS \$\$
DECLARE
    started timestamptz;
    took float8[] := '{}';
BEGIN
    FOR i IN 1 .. runs + 3 LOOP
        started := clock_timestamp();
        EXECUTE 'SELECT count(*) FROM (' || query || ') q' USING tenant, start_at, end_at;
        IF i > 3 THEN
            took := took || extract(epoch FROM clock_timestamp() - started)::float8 * 1000;
        END IF;
    END LOOP;
    RETURN QUERY SELECT round(percentile_disc(0.5) WITHIN GROUP (ORDER BY t)::numeric, 3),
                        round(percentile_disc(0.95) WITHIN GROUP (ORDER BY t)::numeric, 3),
                        round(percentile_disc(0.99) WITHIN GROUP (ORDER BY t)::numeric, 3)
                 FROM unnest(took) t;
END
\$\$;
-- reserve_spend() then settle_spend() of what it reserved, \$3 times,
-- each pair in a transaction of its own (as an application's calls are)
-- under the tenant's context: milliseconds of each call into a temporary
-- table, after three untimed pairs. widget NULL: the tenant's caps alone.
CREATE PROCEDURE bench.reserve_settle(tenant uuid, widget uuid, runs integer)
LANGUAGE plpgsql AS \$\$
DECLARE
    started timestamptz;
    reservation uuid;
    reserving float8;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS reserve_settle (widget boolean, reserve float8, settle float8);
    FOR i IN 1 .. runs + 3 LOOP
        PERFORM set_tenant(tenant);
        started := clock_timestamp();
        SELECT r.reservation_id INTO reservation FROM reserve_spend(0.05, widget) r;
        reserving := extract(epoch FROM clock_timestamp() - started)::float8 * 1000;
        started := clock_timestamp();
        PERFORM settle_spend(reservation, 'llm', 0.0021, 'openai', 'gpt-4o', 420);
        IF i > 3 THEN
            INSERT INTO reserve_settle
            VALUES (widget IS NOT NULL, reserving, extract(epoch FROM clock_timestamp() - started)::float8 * 1000);
        END IF;
        COMMIT;
    END LOOP;
END
\$\$;
GRANT USAGE ON SCHEMA bench TO $APP;
SQL
echo "   loaded in $((SECONDS - started)) s"
loads+=", $(cut -d' ' -f1-3 /proc/loadavg)"

tenant="$(psql_as postgres -d "$DB" -Atc "SELECT md5('bench-tenant-1')::uuid")"
month_start="$(psql_as postgres -d "$DB" -Atc "SELECT date_trunc('month', now(), 'UTC') - interval '1 month'")"
year_start="$(psql_as postgres -d "$DB" -Atc "SELECT date_trunc('month', now(), 'UTC') - interval '12 months'")"
month_end="$(psql_as postgres -d "$DB" -Atc "SELECT date_trunc('month', now(), 'UTC')")"
psql_as postgres -d "$DB" -Atc "SELECT 'measured tenant: ' || count(*) || ' events in the year, '
    || count(*) FILTER (WHERE \"timestamp\" >= '$month_start') || ' in the month'
    FROM cost_events WHERE tenant_id = '$tenant' AND \"timestamp\" >= '$year_start' AND \"timestamp\" < '$month_end'"

# The document's query as written (UTC day buckets, inclusive end), and
# cost_summary() for the same range with the zone set to UTC.
document='SELECT date_trunc($$day$$, "timestamp") AS date, service, SUM(cost_usd) AS total_cost, SUM(tokens_used) AS total_tokens
          FROM cost_events WHERE tenant_id = $1 AND "timestamp" >= $2 AND "timestamp" <= $3
          GROUP BY date_trunc($$day$$, "timestamp"), service ORDER BY date_trunc($$day$$, "timestamp")'
summary='SELECT bucket_start, service, total_cost_usd, total_tokens FROM cost_summary($2, $3, $$day$$, $$service$$, $$UTC$$)'

as_app() {  # SQL run as the application role in the measured tenant's context
  psql_as "$APP" -d "$DB" -At <<SQL
SET TimeZone = 'UTC';
BEGIN;
SELECT set_tenant('$tenant') \g /dev/null
$1
COMMIT;
SQL
}
compare() {  # start end -> rows and whether both queries return the same rows
  as_app "PREPARE doc(uuid, timestamptz, timestamptz) AS $document;
          PREPARE mine(uuid, timestamptz, timestamptz) AS $summary;
          CREATE TEMP TABLE a AS EXECUTE doc('$tenant', '$1', '$2');
          CREATE TEMP TABLE b AS EXECUTE mine('$tenant', '$1', '$2');
          SELECT (SELECT count(*) FROM a) || ' rows, '
                 || CASE WHEN NOT EXISTS (SELECT * FROM a EXCEPT ALL SELECT * FROM b)
                          AND NOT EXISTS (SELECT * FROM b EXCEPT ALL SELECT * FROM a)
                         THEN 'equal' ELSE 'DIFFERENT' END;"
}
timing() {  # query start end runs -> "p50 p95 p99"
  as_app "SELECT p50 || ' ' || p95 || ' ' || p99 FROM bench.timings(\$q\$$1\$q\$, $4, '$tenant', '$2', '$3');"
}

echo "== cost_summary() against the document's query (largest tenant, day buckets)"
declare -A result
for span in month year; do
  start="$month_start"; [ "$span" = year ] && start="$year_start"
  result[$span-equal]="$(compare "$start" "$month_end")"
  result[$span-document]="$(timing "$document" "$start" "$month_end" "$RUNS")"
  result[$span-summary]="$(timing "$summary" "$start" "$month_end" "$RUNS")"
done
# The same in a :30 zone: the document has no answer there, so the reference
# is the raw GROUP BY in that zone.
kolkata_raw='SELECT date_trunc($$day$$, "timestamp", $$Asia/Kolkata$$) AS day, service, SUM(cost_usd) AS cost, SUM(tokens_used) AS tokens
             FROM cost_events WHERE tenant_id = $1 AND "timestamp" >= $2 AND "timestamp" < $3 GROUP BY 1, 2'
kolkata_summary='SELECT bucket_start, service, total_cost_usd, total_tokens FROM cost_summary($2, $3, $$day$$, $$service$$, $$Asia/Kolkata$$)'
result[kolkata-equal]="$(as_app "PREPARE raw(uuid, timestamptz, timestamptz) AS $kolkata_raw;
    PREPARE mine(uuid, timestamptz, timestamptz) AS $kolkata_summary;
    CREATE TEMP TABLE a AS EXECUTE raw('$tenant', '$month_start', '$month_end');
    CREATE TEMP TABLE b AS EXECUTE mine('$tenant', '$month_start', '$month_end');
    SELECT CASE WHEN NOT EXISTS (SELECT * FROM a EXCEPT ALL SELECT * FROM b)
                 AND NOT EXISTS (SELECT * FROM b EXCEPT ALL SELECT * FROM a) THEN 'equal' ELSE 'DIFFERENT' END;")"
result[kolkata-raw]="$(timing "$kolkata_raw" "$month_start" "$month_end" "$RUNS")"
result[kolkata-summary]="$(timing "$kolkata_summary" "$month_start" "$month_end" "$RUNS")"
result[budget]="$(timing 'SELECT * FROM budget_status()' "$month_start" "$month_end" $((RUNS * 40)))"

echo "== reserve_spend() and settle_spend() (largest tenant, hard daily and monthly caps; its widget's daily cap)"
# Caps far above the spend, so every reservation is granted and checked.
psql_as postgres -d "$DB" -c "UPDATE tenants SET settings = settings
    || '{\"maxDailySpend\": 1e9, \"maxMonthlySpend\": 1e10, \"hardSpendLimits\": [\"daily\", \"monthly\"]}'
    WHERE id = '$tenant'" \
  -c "UPDATE widgets SET settings = '{\"maxDailySpend\": 1e8, \"hardSpendLimits\": [\"daily\"]}'
    WHERE id = md5('bench-widget-1')::uuid" >/dev/null
pairs=$((RUNS * 40))
# Rounds of $pairs pairs each, alternating tenant and widget, so that a p99
# is seen more than once: the table gives the median round and the range.
for round in $(seq 1 "$PAIR_ROUNDS"); do
  for w in tenant widget; do
    widget=NULL; [ "$w" = widget ] && widget="md5('bench-widget-1')::uuid"
    # set_tenant() warns outside a transaction block; inside a procedure
    # that commits, each of its transactions sets the context again.
    result[reserve-$w]+="$(psql_as "$APP" -d "$DB" -At -c "SET client_min_messages = error" \
      -c "CALL bench.reserve_settle('$tenant', $widget, $pairs)" \
      -c "SELECT round(percentile_disc(0.5) WITHIN GROUP (ORDER BY reserve)::numeric, 3) || ' '
                 || round(percentile_disc(0.99) WITHIN GROUP (ORDER BY reserve)::numeric, 3) || ' '
                 || round(percentile_disc(0.5) WITHIN GROUP (ORDER BY settle)::numeric, 3) || ' '
                 || round(percentile_disc(0.99) WITHIN GROUP (ORDER BY settle)::numeric, 3)
          FROM reserve_settle")
"
  done
done

# The same pair as an application makes it: client-side, over loopback, in
# its own transaction with set_tenant() and the commit, which waits for the
# WAL flush (synchronous_commit on): what a request waits for. Percentiles
# of pgbench's per-transaction log, one client for BENCH_SECONDS.
percentiles() {  # pgbench log files -> "p50 p99" in ms of their transactions
  cat "$@" | awk '{ print $3 / 1000 }' | sort -g \
    | awk '{ v[NR] = $1 } END { printf "%.3f %.3f", v[int((NR + 1) / 2)], v[int(NR * 0.99 + 0.999)] }'
}
for w in tenant widget; do
  widget=NULL; [ "$w" = widget ] && widget="'$(psql_as postgres -d "$DB" -Atc "SELECT md5('bench-widget-1')::uuid")'"
  cat > "$work/pair-$w.sql" <<SQL
BEGIN;
SELECT set_tenant('$tenant');
SELECT reservation_id FROM reserve_spend(0.05, $widget) \\gset
SELECT event_id FROM settle_spend(:reservation_id, 'llm', 0.0021, 'openai', 'gpt-4o', 420) \\gset
COMMIT;
SQL
  rm -f "$work"/pair_log*
  (cd "$work" && "$bindir/pgbench" -n -h 127.0.0.1 -p "$PORT" -U "$APP" -M prepared -T "$SECONDS_PER_RUN" \
      -l --log-prefix=pair_log -f "$work/pair-$w.sql" "$DB" >/dev/null 2>&1)
  result[pair-$w]="$(percentiles "$work"/pair_log*) $(cat "$work"/pair_log* | wc -l)"
done

echo "== ingest: cost_events (rollup triggers) against cost_events_plain (none)"
for table in cost_events cost_events_plain; do
  cat > "$work/single-$table.sql" <<SQL
\\set k random_zipfian(1, $TENANTS, 1.01)
INSERT INTO $table (tenant_id, service, provider, tokens_used, cost_usd, metadata, "timestamp")
VALUES (md5('bench-tenant-' || :k)::uuid, 'llm', 'openai', 420, 0.0021, '{"model": "gpt-4o"}', now());
SQL
  cat > "$work/widget-$table.sql" <<SQL
\\set k random_zipfian(1, $TENANTS, 1.01)
INSERT INTO $table (tenant_id, service, provider, tokens_used, cost_usd, metadata, "timestamp", widget_id)
VALUES (md5('bench-tenant-' || :k)::uuid, 'llm', 'openai', 420, 0.0021, '{"model": "gpt-4o"}', now(),
        md5('bench-widget-' || :k)::uuid);
SQL
  cat > "$work/batch-$table.sql" <<SQL
INSERT INTO $table (tenant_id, service, provider, tokens_used, cost_usd, metadata, "timestamp")
SELECT md5('bench-tenant-' || (1 + floor(random() * $TENANTS))::int)::uuid, 'llm', 'openai', 420,
       0.0021, '{"model": "gpt-4o"}', now() - random() * interval '1 hour'
FROM generate_series(1, 1000);
SQL
done
rate() {  # script [extra env] -> rows per second
  local rows_per_tx=1
  [[ "$1" == batch-* ]] && rows_per_tx=1000
  env ${2:-} "$bindir/pgbench" -n -h 127.0.0.1 -p "$PORT" -U postgres -T "$SECONDS_PER_RUN" \
      -f "$work/$1.sql" "$DB" 2>/dev/null \
    | awk -v n="$rows_per_tx" -F'= ' '/^tps/ { split($2, a, " "); printf "%.0f", a[1] * n }'
}
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# Alternating runs, the median of three of each.
declare -A runs
for round in 1 2 3; do
  for table in cost_events_plain cost_events; do
    runs[single-$table]+="$(rate "single-$table") "
    runs[batch-$table]+="$(rate "batch-$table") "
    runs[widget-$table]+="$(rate "widget-$table") "
    runs[async-$table]+="$(rate "single-$table" PGOPTIONS=-csynchronous_commit=off) "
  done
done
for key in "${!runs[@]}"; do result[$key]="$(median "${runs[$key]}")"; done
differences="$(psql_as postgres -d "$DB" -Atc "SELECT count(*) FROM platform_verify_cost_rollups()")"
echo "rollups after ingest: $differences differences from cost_events"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
field() { cut -d' ' -f"$2" <<<"$1"; }
echo
loads+=", $(cut -d' ' -f1-3 /proc/loadavg)"
echo "PostgreSQL 16, $(nproc) cores, $EVENTS events over $TENANTS tenants; server-side times in ms"
echo "load average at the start, after the load and at the end: $loads"
echo "over $RUNS executions (budget_status: $((RUNS * 40))); ingest: median of 3 alternating ${SECONDS_PER_RUN}s pgbench runs, one client"
printf '| %-58s | %9s | %9s | %s |\n' "measurement" "p50 (ms)" "p95 (ms)" "result"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..60})" "----------:" "----------:" "---"
for span in month year; do
  d="${result[$span-document]}"; s="${result[$span-summary]}"
  printf '| %-58s | %9s | %9s | %s |\n' "tenant-$span, the document's query" "$(field "$d" 1)" "$(field "$d" 2)" "baseline"
  printf '| %-58s | %9s | %9s | %s |\n' "tenant-$span, cost_summary(..., 'day')" "$(field "$s" 1)" "$(field "$s" 2)" \
    "$(ratio "$(field "$d" 1)" "$(field "$s" 1)")x faster (p50); ${result[$span-equal]}"
done
k="${result[kolkata-raw]}"; s="${result[kolkata-summary]}"
printf '| %-58s | %9s | %9s | %s |\n' "tenant-month, raw GROUP BY in Asia/Kolkata" "$(field "$k" 1)" "$(field "$k" 2)" "baseline"
printf '| %-58s | %9s | %9s | %s |\n' "tenant-month, cost_summary in Asia/Kolkata" "$(field "$s" 1)" "$(field "$s" 2)" \
  "$(ratio "$(field "$k" 1)" "$(field "$s" 1)")x faster (p50); ${result[kolkata-equal]}"
b="${result[budget]}"
printf '| %-58s | %9s | %9s | %s |\n' "budget_status()" "$(field "$b" 1)" "$(field "$b" 2)" "p99 $(field "$b" 3) ms"
echo
echo "reserve_spend() and settle_spend(): $PAIR_ROUNDS rounds of $pairs pairs each, one transaction per pair, largest tenant;"
echo "p50 and p99: the median over the rounds of each round's; then the lowest and highest p99 of a round"
printf '| %-58s | %9s | %9s | %s |\n' "call" "p50 (ms)" "p99 (ms)" "p99 over the rounds"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..60})" "----------:" "----------:" "---"
column() { cut -d' ' -f"$2" <<<"$1" | grep . | sort -g; }  # rounds, field -> its values, sorted
middle() { awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
span() { awk 'NR == 1 { a = $1 } { b = $1 } END { print a " to " b }'; }
for w in tenant widget; do
  r="${result[reserve-$w]}"
  label="tenant's caps"; [ "$w" = widget ] && label="tenant's and widget's caps"
  printf '| %-58s | %9s | %9s | %s |\n' "reserve_spend(), $label" "$(column "$r" 1 | middle)" \
    "$(column "$r" 2 | middle)" "$(column "$r" 2 | span)"
  printf '| %-58s | %9s | %9s | %s |\n' "settle_spend(), $label" "$(column "$r" 3 | middle)" \
    "$(column "$r" 4 | middle)" "$(column "$r" 4 | span)"
done
for w in tenant widget; do
  r="${result[pair-$w]}"
  label="tenant's caps"; [ "$w" = widget ] && label="tenant's and widget's caps"
  printf '| %-58s | %9s | %9s | %s |\n' "request + commit, client-side, $label" "$(field "$r" 1)" "$(field "$r" 2)" "(one run)"
done
echo "(client-side: $(field "${result[pair-tenant]}" 3) and $(field "${result[pair-widget]}" 3) transactions of pgbench, one client, ${SECONDS_PER_RUN}s each)"
echo
printf '| %-58s | %12s | %12s | %s |\n' "ingest (rows/s)" "plain" "triggers" "triggers / plain"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..60})" "-------------:" "-------------:" "---"
for kind in single widget batch async; do
  label="single-row INSERT, one per transaction"
  [ "$kind" = widget ] && label="single-row INSERT naming a widget, one per transaction"
  [ "$kind" = batch ] && label="INSERT ... SELECT of 1,000 rows per transaction"
  [ "$kind" = async ] && label="single-row INSERT, synchronous_commit = off"
  p="${result[$kind-cost_events_plain]}"; t="${result[$kind-cost_events]}"
  printf '| %-58s | %12s | %12s | %s |\n' "$label" "$p" "$t" "$(awk -v a="$t" -v b="$p" 'BEGIN { printf "%.0f%%", 100 * a / b }')"
done

# A smoke run in CI fails on any wrong answer, whatever the speed.
for check in "${result[month-equal]}" "${result[year-equal]}" "${result[kolkata-equal]}"; do
  [[ "$check" == *equal && "$check" != *DIFFERENT* ]] || { echo "cost_summary differs from the reference: $check" >&2; exit 1; }
done
[ "$differences" = 0 ] || { echo "the rollups differ from cost_events" >&2; exit 1; }
