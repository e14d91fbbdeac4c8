-- Loads the throw-away prototype from an absolute path (not installed) into a test database.
CREATE SCHEMA proto;
CREATE FUNCTION proto.set_tenant_token(text) RETURNS uuid AS '/tmp/ctxproto/ctxproto.so', 'proto_set_tenant_token_wrapper' LANGUAGE c VOLATILE PARALLEL UNSAFE STRICT;
CREATE FUNCTION proto.mint_app_token(uuid, bigint, text) RETURNS text AS '/tmp/ctxproto/ctxproto.so', 'proto_mint_app_token_wrapper' LANGUAGE c VOLATILE STRICT;
CREATE FUNCTION proto.current_tenant() RETURNS uuid AS '/tmp/ctxproto/ctxproto.so', 'proto_current_tenant_wrapper' LANGUAGE c STABLE PARALLEL SAFE;
CREATE FUNCTION proto.current_tenant_uncached() RETURNS uuid AS '/tmp/ctxproto/ctxproto.so', 'proto_current_tenant_uncached_wrapper' LANGUAGE c STABLE PARALLEL SAFE;
CREATE FUNCTION proto.where_am_i() RETURNS text AS '/tmp/ctxproto/ctxproto.so', 'proto_where_wrapper' LANGUAGE c VOLATILE PARALLEL SAFE;
CREATE FUNCTION proto.static_set(uuid) RETURNS uuid AS '/tmp/ctxproto/ctxproto.so', 'proto_static_set_wrapper' LANGUAGE c VOLATILE PARALLEL UNSAFE STRICT;
CREATE FUNCTION proto.static_get() RETURNS uuid AS '/tmp/ctxproto/ctxproto.so', 'proto_static_get_wrapper' LANGUAGE c STABLE PARALLEL SAFE;
CREATE FUNCTION proto.static_get_restricted() RETURNS uuid AS '/tmp/ctxproto/ctxproto.so', 'proto_static_get_restricted_wrapper' LANGUAGE c STABLE PARALLEL RESTRICTED;
REVOKE ALL ON FUNCTION proto.mint_app_token(uuid, bigint, text) FROM PUBLIC;

CREATE TABLE proto.messages (tenant_id uuid NOT NULL, body text);
INSERT INTO proto.messages
SELECT CASE WHEN g % 2 = 0 THEN 'aaaaaaaa-0000-4000-8000-000000000001'::uuid
            ELSE 'bbbbbbbb-0000-4000-8000-000000000002'::uuid END, 'message ' || g
FROM generate_series(1, 1000000) g;
CREATE INDEX ON proto.messages (tenant_id);
ALTER TABLE proto.messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE proto.messages FORCE ROW LEVEL SECURITY;
CREATE POLICY messages_select ON proto.messages FOR SELECT USING (tenant_id = (SELECT proto.current_tenant()));
CREATE ROLE app2 LOGIN PASSWORD 'app2' NOSUPERUSER NOBYPASSRLS;
GRANT USAGE ON SCHEMA proto TO app2;
GRANT SELECT ON proto.messages TO app2;
VACUUM ANALYZE proto.messages;
