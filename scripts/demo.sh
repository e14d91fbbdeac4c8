#!/usr/bin/env bash
# The main job, from a bare machine: install the dependencies, build and
# install the extension, start a local PostgreSQL 16 cluster in .demo/, create
# a demo database with two tenants of the design document's demo data, show
# that the same query returns different rows under each tenant, search a
# knowledge base and record costs as the application role, resolve an API key
# before any tenant is known, and print how to connect. Run it again at any
# time: it reuses the cluster and recreates the database.
#
# Usage: scripts/demo.sh          set up and run the demo (as above)
#        scripts/demo.sh stop     stop the demo cluster; its data stays
#        scripts/demo.sh start    start it again as it was (no build, no reset)
#        scripts/demo.sh status   whether it is running, and where
# The port is PLATFORM_DEMO_PORT if set, else the one the cluster last ran
# on, else 28816.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
source scripts/cluster.sh

DB=platform_demo
APP_ROLE=platform_app

# The cluster lives in the project (.demo/) when the postgres user can reach
# it there; a checkout under /root, say, is closed to it.
demo_datadir() {
  local inside="$root/.demo/pgdata" outside="/var/tmp/platform-demo/pgdata"
  if [ -f "$inside/PG_VERSION" ]; then echo "$inside"
  elif [ -f "$outside/PG_VERSION" ]; then echo "$outside"
  elif [ -d "$root/.demo" ] && as_postgres test -x "$root/.demo"; then echo "$inside"
  else echo "$outside"; fi
}

# PLATFORM_DEMO_PORT if given, else the port the cluster last ran on (pg_ctl
# keeps the options of the last start in postmaster.opts), else 28816.
demo_port() {
  local last
  last="$(sed -n 's/.*"-p" "\([0-9]*\)".*/\1/p' "$1/postmaster.opts" 2>/dev/null || true)"
  echo "${PLATFORM_DEMO_PORT:-${last:-28816}}"
}

# stop, start and status work on the cluster an earlier run created.
case "${1:-}" in
  stop | start | status)
    datadir="$(demo_datadir)"
    if [ ! -f "$datadir/PG_VERSION" ]; then
      echo "no demo cluster yet: run scripts/demo.sh first" >&2
      exit 1
    fi
    pg_ctl="$("$(pg_config_for 16)" --bindir)/pg_ctl"
    case "$1" in
      stop)
        if as_postgres "$pg_ctl" -D "$datadir" status >/dev/null 2>&1; then
          as_postgres "$pg_ctl" -D "$datadir" -m fast -w stop >/dev/null
          echo "demo cluster stopped ($datadir); scripts/demo.sh start brings it back"
        else
          echo "demo cluster is not running ($datadir)"
        fi ;;
      start)
        PORT="$(demo_port "$datadir")"
        cluster_start 16 "$datadir" "$PORT"
        echo "demo cluster running on 127.0.0.1:$PORT ($datadir), database $DB"
        echo "  $("$(pg_config_for 16)" --bindir)/psql \"postgresql://$APP_ROLE:$APP_ROLE@127.0.0.1:$PORT/$DB\"" ;;
      status)
        as_postgres "$pg_ctl" -D "$datadir" status ;;
    esac
    exit 0 ;;
  "" | setup) ;;
  *)
    echo "usage: scripts/demo.sh [stop | start | status]" >&2
    exit 2 ;;
esac

bash scripts/install-deps.sh
echo "== building and installing the extension into PostgreSQL 16"
install_extension 16 --release >/dev/null

mkdir -p "$root/.demo"
datadir="$(demo_datadir)"
if [ "$datadir" != "$root/.demo/pgdata" ]; then
  mkdir -p "$(dirname "$datadir")"
  echo "   (the postgres user cannot reach $root; the cluster goes to $datadir)"
fi
PORT="$(demo_port "$datadir")"
# Already running on another port (PLATFORM_DEMO_PORT changed): restart it.
if [ -f "$datadir/postmaster.opts" ] && ! grep -q "\"-p\" \"$PORT\"" "$datadir/postmaster.opts"; then
  cluster_stop 16 "$datadir"
fi
echo "== starting PostgreSQL 16 in $datadir on port $PORT"
cluster_start 16 "$datadir" "$PORT"

bindir="$("$(pg_config_for 16)" --bindir)"
psql_as() { cluster_psql 16 "$PORT" "$@"; }

echo "== creating database $DB with two tenants"
psql_as postgres -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql_as postgres -d "$DB" <<SQL
CREATE EXTENSION platform CASCADE;
-- Load the library at the start of every session of this database, as
-- docs/operations.md recommends: the platform.* settings are then in
-- pg_settings from the first statement, and a misspelt one is refused.
ALTER DATABASE $DB SET session_preload_libraries = 'platform';
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP_ROLE') THEN
    CREATE ROLE $APP_ROLE LOGIN PASSWORD '$APP_ROLE' NOSUPERUSER NOBYPASSRLS;
  END IF;
END \$\$;
SELECT grant_app_access('$APP_ROLE') \g /dev/null
-- The timeouts docs/security.md recommends for an application role.
ALTER ROLE $APP_ROLE SET statement_timeout = '30s';
ALTER ROLE $APP_ROLE SET idle_in_transaction_session_timeout = '60s';
SELECT seed_demo_tenant('Acme Corporation', 'acme.com');
SELECT seed_demo_tenant('Globex Corporation', 'globex.com');
SQL

acme="$(psql_as postgres -d "$DB" -Atc "SELECT id FROM tenants WHERE name = 'Acme Corporation'")"
globex="$(psql_as postgres -d "$DB" -Atc "SELECT id FROM tenants WHERE name = 'Globex Corporation'")"

# A chat session with two messages for each tenant, written by the
# application role the way an application would: inside a transaction,
# after set_tenant(), with INSERTs shaped like the document's.
for tenant in "$acme" "$globex"; do
  psql_as "$APP_ROLE" -d "$DB" -v tenant="$tenant" <<'SQL'
BEGIN;
SELECT set_tenant(:'tenant') \gset
WITH s AS (
  INSERT INTO sessions (tenant_id, widget_id, mode)
  SELECT :'tenant', id, 'text' FROM widgets LIMIT 1
  RETURNING id
)
INSERT INTO messages (session_id, role, content)
SELECT s.id, m.role, m.content FROM s,
  (VALUES ('user', 'How do I get started?'),
          ('assistant', 'Open the Getting Started Guide in your dashboard.')) AS m(role, content);
COMMIT;
SQL
done

show() {
  local label="$1" tenant="$2"
  echo
  echo "-- as $APP_ROLE, tenant context: $label"
  psql_as "$APP_ROLE" -d "$DB" -v tenant="$tenant" <<'SQL'
BEGIN;
SELECT set_tenant(NULLIF(:'tenant', '')::uuid) \gset
\pset footer off
SELECT t.name AS tenant, u.email AS owner, w.name AS widget,
       w.domain_whitelist ->> 0 AS domain,
       (SELECT count(*) FROM messages) AS messages
FROM tenants t, users u, widgets w;
COMMIT;
SQL
}

echo
echo "== isolation: the same query under each tenant"
show "Acme Corporation ($acme)" "$acme"
show "Globex Corporation ($globex)" "$globex"
echo
echo "-- as $APP_ROLE, no tenant context: every table reads empty"
psql_as "$APP_ROLE" -d "$DB" -Atc "SELECT 'users visible: ' || count(*) FROM users"

echo
echo "== inside the database, as the application role for Acme: search and costs"
# Acme's knowledge base: 32 sections of PostgreSQL's manual, chunked by
# chunk_text and embedded with all-MiniLM-L6-v2 (384 dimensions, zero-padded
# to the columns' 1024, which leaves cosine unchanged). The vectors ship in
# demo/knowledge/ (built by demo/knowledge/build.py), keyed by each chunk's
# md5, so the demo needs neither the model nor the network; an application
# embeds with the same model (docs/search.md#embeddings-computing-them-in-the-application).
psql_as "$APP_ROLE" -d "$DB" -v tenant="$acme" <<'SQL'
\pset footer off
BEGIN;
SELECT set_tenant(:'tenant') \g /dev/null
CREATE TEMP TABLE demo_documents (line jsonb) ON COMMIT DROP;
CREATE TEMP TABLE demo_chunk_vectors (digest text PRIMARY KEY, vector real[]) ON COMMIT DROP;
CREATE TEMP TABLE demo_questions (question text, vector real[]) ON COMMIT DROP;
-- One JSON document per line: read whole lines, with no quoting or escapes.
\copy demo_documents FROM 'demo/knowledge/documents.jsonl' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')
\copy demo_chunk_vectors FROM 'demo/knowledge/chunks.tsv'
\copy demo_questions FROM 'demo/knowledge/questions.tsv'
CREATE FUNCTION pg_temp.padded(v real[]) RETURNS vector LANGUAGE sql IMMUTABLE
AS $$ SELECT (v || array_fill(0::real, ARRAY[1024 - cardinality(v)]))::vector $$;
CREATE TEMP TABLE demo_chunked ON COMMIT DROP AS
SELECT d.line->>'title' AS title, d.line->>'content' AS content, d.line->>'section' AS section,
       chunk_text(d.line->>'content', 1000, 100) AS chunks
FROM demo_documents d;
DO $$
DECLARE
    missing bigint;
BEGIN
    SELECT count(*) INTO missing
    FROM demo_chunked c, unnest(c.chunks) AS u(chunk)
    WHERE NOT EXISTS (SELECT FROM demo_chunk_vectors v WHERE v.digest = md5(u.chunk));
    IF missing > 0 THEN
        RAISE EXCEPTION '% chunks of the demo knowledge base have no shipped vector', missing
            USING HINT = 'chunk_text changed since demo/knowledge was built: run demo/knowledge/build.py.';
    END IF;
END $$;
SELECT count(ingest_document(c.title, c.content, c.chunks,
           ARRAY(SELECT pg_temp.padded(v.vector)
                 FROM unnest(c.chunks) WITH ORDINALITY AS u(chunk, n)
                 JOIN demo_chunk_vectors v ON v.digest = md5(u.chunk) ORDER BY u.n),
           category => 'postgresql-manual', metadata => jsonb_build_object('section', c.section)))
       AS documents_ingested,
       sum(cardinality(c.chunks)) AS chunks
FROM demo_chunked c;
-- Questions asked in other words than the manual's, with their embeddings:
-- the best chunk for each (hybrid_search, defaults).
SELECT q.question, r.title, left(regexp_replace(r.content, '\s+', ' ', 'g'), 60) || '...' AS chunk,
       round(r.score::numeric, 3) AS score, r.vector_rank, r.keyword_rank
FROM demo_questions q, LATERAL hybrid_search(q.question, pg_temp.padded(q.vector), match_count => 1) r;
-- An identifier the embedding knows nothing of: the chunk that holds it.
SELECT r.title, left(regexp_replace(r.content, '\s+', ' ', 'g'), 60) || '...' AS chunk, r.keyword_rank
FROM demo_questions q, LATERAL hybrid_search('scram-sha-256', pg_temp.padded(q.vector), match_count => 1) r
LIMIT 1;

SELECT duplicate FROM record_cost_event('llm', 0.0021, provider => 'openai', model => 'gpt-4o',
                                        tokens_used => 420, idempotency_key => 'demo-request-1');
SELECT duplicate AS "same key again: duplicate"
FROM record_cost_event('llm', 0.0021, provider => 'openai', model => 'gpt-4o',
                       tokens_used => 420, idempotency_key => 'demo-request-1');
SELECT bucket_start, service, total_cost_usd, total_tokens, event_count
FROM cost_summary(date_trunc('day', now()), date_trunc('day', now()) + interval '1 day', 'day');
SELECT period, spend_limit, spend, percent_used, projected_spend FROM budget_status();
COMMIT;
SQL

echo
echo "== before the tenant is known: a widget's API key leads to its tenant"
# The key is shown once, at rotation; the table keeps only its digest.
key="$(psql_as "$APP_ROLE" -d "$DB" -At <<SQL | grep '^pk_'
BEGIN;
SELECT set_tenant('$acme');
SELECT rotate_api_key();
COMMIT;
SQL
)"
psql_as "$APP_ROLE" -d "$DB" -v key="$key" <<'SQL'
\pset footer off
SELECT :'key' AS api_key_shown_once, tenant_for_api_key(:'key') AS tenant,
       tenant_for_api_key(:'key' || 'x') AS wrong_key_tenant;
SQL
psql_as postgres -d "$DB" -Atc "SELECT 'stored in tenants.api_key: ' || api_key FROM tenants WHERE id = '$acme'"

cat <<EOF2

== ready. Connect with:
   application role (row-level security applies):
     $bindir/psql "postgresql://$APP_ROLE:$APP_ROLE@127.0.0.1:$PORT/$DB"
     then: BEGIN; SELECT set_tenant('$acme'); SELECT * FROM widgets; COMMIT;
   superuser (bypasses row-level security, for administration only):
     $bindir/psql -h 127.0.0.1 -p $PORT -U postgres $DB
   stop the cluster (its data stays), and start it again later:
     scripts/demo.sh stop
     scripts/demo.sh start
EOF2
