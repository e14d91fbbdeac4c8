#!/usr/bin/env bash
# Replays the prototype's checks on a throw-away PostgreSQL 16 cluster (see ../DESIGN.md, "What was tried").
# Prerequisites, as root: the cluster from /work/main/scripts/cluster.sh on port 29816, with
#   include_if_exists = 'proto_keys.conf'  in postgresql.conf and  proto.keys = 'k1:<hex>,k2:<hex>'  in that file,
#   the prototype built (cargo build --release --lib) and copied to /tmp/ctxproto/ctxproto.so,
#   a database "proto" loaded with setup.sql, and  ALTER DATABASE proto SET proto.signed = on.
set -uo pipefail
source /work/main/scripts/env.sh
B=$("$(pg_config_for 16)" --bindir); export PGPASSWORD=app2
SU="$B/psql -X -h 127.0.0.1 -p 29816 -U postgres -d proto"; APP="$B/psql -X -h 127.0.0.1 -p 29816 -U app2 -d proto"
A=aaaaaaaa-0000-4000-8000-000000000001; BT=bbbbbbbb-0000-4000-8000-000000000002
TA=$($SU -Atc "SELECT proto.mint_app_token('$A', 120, 'k1')"); TB=$($SU -Atc "SELECT proto.mint_app_token('$BT', 120, 'k1')")
$APP -v ta="$TA" -v tb="$TB" <<SQL
\set VERBOSITY verbose
SELECT proto.current_tenant();                                   -- load the library first
SET app.current_tenant_id = '$A';                                -- refused: 42501
BEGIN;
SELECT proto.set_tenant_token(\$1) \bind $TA \g
SELECT count(*) AS tenant_a_rows FROM proto.messages;            -- 500000
SELECT (SELECT count(*) FROM proto.messages), set_config('app.current_tenant_id', '$BT', true);  -- aborted
ROLLBACK;
BEGIN; SELECT proto.set_tenant_token(:'ta'); SELECT proto.set_tenant_token(:'tb'); ROLLBACK;   -- fixed
BEGIN; SELECT proto.set_tenant_token(:'tb'); SELECT current_setting('app.current_tenant_id') AS internal_b \gset
COMMIT;
BEGIN; SELECT set_config('app.current_tenant_id', :'internal_b', true); ROLLBACK;              -- OtherTransaction
CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql SET app.current_tenant_id = '$BT' AS 'SELECT 1';  -- refused
SHOW proto.keys;                                                 -- permission denied
SQL
