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
# Embeddings come from the application's model; here a stand-in: a fixed
# pseudo-random 1024-dimensional vector per text, so similar calls agree.
psql_as "$APP_ROLE" -d "$DB" -v tenant="$acme" <<'SQL'
\pset footer off
BEGIN;
SELECT set_tenant(:'tenant') \g /dev/null
CREATE FUNCTION pg_temp.fake_embedding(t text) RETURNS vector LANGUAGE sql AS $$
    SELECT array_agg(sin(i * (1 + abs(hashtext(t)) % 97)))::real[]::vector
    FROM generate_series(1, 1024) i $$;
SELECT ingest_document(d.title, d.body, c.chunks,
                       ARRAY(SELECT pg_temp.fake_embedding(x) FROM unnest(c.chunks) x),
                       category => 'support') AS document_id
FROM (VALUES ('Resetting your password',
              'Open Settings, then Security. Choose "Reset password" and follow the e-mail link.' || E'\n\n' ||
              'The link expires after 30 minutes. Ask an owner to unlock an account after five failed attempts.'),
             ('Widget installation',
              'Paste the embed snippet before the closing body tag. Allowed domains are set per widget.'))
     AS d(title, body),
     LATERAL (SELECT chunk_text(d.body, 120, 20) AS chunks) c \g /dev/null
SELECT title, left(regexp_replace(content, '\s+', ' ', 'g'), 60) AS chunk, round(score::numeric, 3) AS score, vector_rank, keyword_rank
FROM hybrid_search('how do I reset my password', pg_temp.fake_embedding('password reset'), match_count => 3);

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
