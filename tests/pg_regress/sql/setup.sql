--
-- Setup of the regression tier: test helpers in schema regress, and fixture
-- rows with fixed ids and fixed timestamps, written by the superuser (who is
-- not bound by row-level security). scripts/regress.sh has already run
-- CREATE EXTENSION platform CASCADE and made platform_regress_app an
-- application role with grant_app_access(..., provisioning => true).
--
-- Fixture ids read <tenant><kind>000000-0000-4000-8000-0000000000<nn>:
--   tenant a = "Regress A", b = "Regress B", c = "Regress Bulk" (sessions,
--   documents and chunks enough for the planner to choose the indexes
--   that plans.sql checks);
--   kind 0 tenant, 1 user, 2 account, 3 auth session, 4 widget, 5 session,
--   7 document, 8 chunk.
-- Embeddings are exact: chunk n of tenant a lies on axis n, so its cosine
-- distance to a query vector follows from the query's weight on that axis.
--
SET client_min_messages = warning;
-- Every file starts so: pg_regress's environment sets PGTZ and PGDATESTYLE.
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

-- The application role is what the suite calls the functions as, with the
-- timeouts docs/security.md recommends (the audit reports a role without).
SELECT rolname, rolsuper, rolbypassrls, rolcanlogin
FROM pg_roles WHERE rolname = 'platform_regress_app';
ALTER ROLE platform_regress_app SET statement_timeout = '60s';
ALTER ROLE platform_regress_app SET idle_in_transaction_session_timeout = '60s';

-- ========== helpers ==========
CREATE SCHEMA regress;
GRANT USAGE ON SCHEMA regress TO platform_regress_app;

-- Runs a statement and returns its error as one row: SQLSTATE, message,
-- hint; '00000' and 'no error' when it succeeds. Runs as the caller
-- (SECURITY INVOKER), so under SET ROLE it shows what the application sees.
-- psql's VERBOSITY verbose would print the same fields plus LOCATION lines
-- that differ between versions and builds.
CREATE TYPE regress.error AS (sqlstate text, message text, hint text);
CREATE FUNCTION regress.error_of(statement text) RETURNS regress.error
LANGUAGE plpgsql AS $$
DECLARE
    state text;
    message text;
    hint text;
BEGIN
    EXECUTE statement;
    RETURN ROW('00000', 'no error', NULL)::regress.error;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            hint = PG_EXCEPTION_HINT;
    RETURN ROW(state, message, nullif(hint, ''))::regress.error;
END
$$;

-- A unit vector along axis i (1..1024).
CREATE FUNCTION regress.axis(i integer) RETURNS vector
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY(SELECT CASE WHEN g = i THEN 1 ELSE 0 END::real
                 FROM generate_series(1, 1024) AS g)::vector
$$;

-- The vector with weights w[1], w[2], ... on axes 1, 2, ... and 0 elsewhere.
CREATE FUNCTION regress.weights(VARIADIC w real[]) RETURNS vector
LANGUAGE sql IMMUTABLE AS $$
    SELECT (w || array_fill(0::real, ARRAY[1024 - cardinality(w)]))::vector
$$;

-- Embeddings of tenant c's bulk chunks: spread over axes 10..1024, so
-- they never come near the axes the other tenants' rows lie on.
CREATE FUNCTION regress.spread(n integer) RETURNS vector
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY(SELECT CASE WHEN g < 10 THEN 0 ELSE sin(n * 0.7 + g * 1.3) END::real
                 FROM generate_series(1, 1024) AS g)::vector
$$;

-- EXPLAIN (COSTS OFF) of a statement, run as the caller, one line per row,
-- with vector and bit string literals shortened to '[...]' and '...' (1024
-- numbers or bits would bury the plan).
CREATE FUNCTION regress.plan(statement text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || statement LOOP
        RETURN NEXT regexp_replace(regexp_replace(line, '''\[[^]]*\]''::vector', '''[...]''::vector', 'g'),
                                   '''[01]+''::bit', '''...''::bit', 'g');
    END LOOP;
END
$$;

-- Whether a role may execute every function of the extension with one of
-- these names (by name, so a changed signature does not break the test).
CREATE FUNCTION regress.may_execute(role name, names text[]) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT bool_and(has_function_privilege(role, p.oid, 'EXECUTE'))
    FROM pg_proc p
    JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'platform'
    WHERE p.proname = ANY (names)
$$;

-- What a role was given by grant_app_access(): DML on the 15 tables without
-- TRUNCATE, and EXECUTE on the functions revoked from PUBLIC that an
-- application needs (lookups, costs, search's definer helpers), plus
-- create_tenant() with provisioning.
CREATE FUNCTION regress.app_privileges(role name)
RETURNS TABLE (dml boolean, truncate boolean, lookups boolean,
               costs boolean, search_helpers boolean, provisioning boolean)
LANGUAGE sql STABLE AS $$
    SELECT (SELECT bool_and(has_table_privilege(role, t.t, p.p))
            FROM (SELECT table_name FROM platform_tenant_tables()
                  UNION ALL SELECT 'verification_tokens'::regclass) AS t(t),
                 unnest('{SELECT,INSERT,UPDATE,DELETE}'::text[]) AS p(p)),
           (SELECT bool_or(has_table_privilege(role, t.table_name, 'TRUNCATE'))
            FROM platform_tenant_tables() AS t),
           regress.may_execute(role, '{tenant_for_api_key,user_for_session_token,users_for_email,users_for_oauth_account}'),
           regress.may_execute(role, '{cost_summary,budget_status}'),
           regress.may_execute(role, '{platform_keyword_candidates,platform_common_lexemes}'),
           regress.may_execute(role, '{create_tenant}')
$$;

-- What scripts/regress.sh gave the application role.
SELECT * FROM regress.app_privileges('platform_regress_app');

-- ========== tenants ==========
INSERT INTO tenants (id, name, plan, settings, api_key) VALUES
    ('a0000000-0000-4000-8000-000000000000', 'Regress A', 'business',
     '{"maxMonthlySpend": 100, "timezone": "Europe/Berlin"}',
     'pk_test_regress_tenant_a_0000000000000000001'),
    ('b0000000-0000-4000-8000-000000000000', 'Regress B', 'starter',
     '{"textSearchConfig": "simple", "timezone": "Asia/Kolkata"}',
     'pk_test_regress_tenant_b_0000000000000000002'),
    ('c0000000-0000-4000-8000-000000000000', 'Regress Bulk', 'enterprise', '{}',
     'pk_test_regress_tenant_c_0000000000000000003');
-- Only digests are stored.
SELECT name, api_key ~ '^sha256:[0-9a-f]{64}$' AS stored_as_digest FROM tenants ORDER BY name;

-- ========== users and Auth.js ==========
-- shared@example.com belongs to tenants a and b, and so does the GitHub
-- account gh-42: the lookups return one row per tenant. No passwords yet
-- (tenancy.sql sets them).
INSERT INTO users (id, tenant_id, email, password_hash, role, name) VALUES
    ('a1000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000000',
     'admin@a.example', NULL, 'owner', 'Ada Admin'),
    ('a1000000-0000-4000-8000-000000000002', 'a0000000-0000-4000-8000-000000000000',
     'shared@example.com', NULL, 'member', 'Sam Shared'),
    ('b1000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000000',
     'shared@example.com', NULL, 'owner', 'Sam Shared');
INSERT INTO accounts (id, tenant_id, user_id, type, provider, provider_account_id) VALUES
    ('a2000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000000',
     'a1000000-0000-4000-8000-000000000002', 'oauth', 'github', 'gh-42'),
    ('b2000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000000',
     'b1000000-0000-4000-8000-000000000001', 'oauth', 'github', 'gh-42');
INSERT INTO auth_sessions (id, tenant_id, session_token, user_id, expires) VALUES
    ('a3000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000000',
     'regress-session-token-a-valid', 'a1000000-0000-4000-8000-000000000001',
     '2099-01-01 00:00:00+00'),
    ('a3000000-0000-4000-8000-000000000002', 'a0000000-0000-4000-8000-000000000000',
     'regress-session-token-a-expired', 'a1000000-0000-4000-8000-000000000001',
     '2000-01-01 00:00:00+00');

-- ========== widgets and sessions ==========
INSERT INTO widgets (id, tenant_id, name, domain_whitelist) VALUES
    ('a4000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000000',
     'Website widget', '["https://a.example"]'),
    ('a4000000-0000-4000-8000-000000000002', 'a0000000-0000-4000-8000-000000000000',
     'Docs widget', '["https://docs.a.example"]'),
    ('b4000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000000',
     'Website widget', '["https://b.example"]');
-- Tenant a: five sessions, two of them created in the same microsecond (the
-- id breaks the tie), one with a fractional second (the cursor keeps it).
INSERT INTO sessions (id, tenant_id, widget_id, mode, created_at) VALUES
    ('a5000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000000',
     'a4000000-0000-4000-8000-000000000001', 'text', '2025-01-01 09:00:00+00'),
    ('a5000000-0000-4000-8000-000000000002', 'a0000000-0000-4000-8000-000000000000',
     'a4000000-0000-4000-8000-000000000001', 'text', '2025-01-02 09:00:00.123456+00'),
    ('a5000000-0000-4000-8000-000000000003', 'a0000000-0000-4000-8000-000000000000',
     'a4000000-0000-4000-8000-000000000002', 'text', '2025-01-03 09:00:00+00'),
    ('a5000000-0000-4000-8000-000000000004', 'a0000000-0000-4000-8000-000000000000',
     NULL, 'text', '2025-01-03 09:00:00+00'),
    ('a5000000-0000-4000-8000-000000000005', 'a0000000-0000-4000-8000-000000000000',
     'a4000000-0000-4000-8000-000000000001', 'text', '2025-01-04 09:00:00+00'),
    ('b5000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000000',
     'b4000000-0000-4000-8000-000000000001', 'text', '2025-01-05 09:00:00+00');
-- Tenant c: 3,000 sessions, one a minute.
INSERT INTO sessions (id, tenant_id, created_at)
SELECT ('c5000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid,
       'c0000000-0000-4000-8000-000000000000',
       timestamptz '2025-01-01 00:00:00+00' + n * interval '1 minute'
FROM generate_series(1, 3000) AS n;

-- ========== knowledge base ==========
-- Tenant a (English stemming, the default): three documents, six chunks on
-- axes 1 to 6. Tenant b (settings.textSearchConfig = simple) has a chunk on
-- axis 1 too: it would be the nearest to tenant a's queries if row-level
-- security let it through.
INSERT INTO knowledge_documents (id, tenant_id, title, content, category, embedding) VALUES
    ('a7000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000000',
     'Resetting your password', 'How to reset a forgotten password.', 'account', regress.axis(1)),
    ('a7000000-0000-4000-8000-000000000002', 'a0000000-0000-4000-8000-000000000000',
     'Invoices and billing', 'When invoices arrive and how to pay them.', 'billing', regress.axis(3)),
    ('a7000000-0000-4000-8000-000000000003', 'a0000000-0000-4000-8000-000000000000',
     'Video meetings', 'Meetings with customers in the browser.', 'meetings', regress.axis(5)),
    ('b7000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000000',
     'Password policy', 'Rules for passwords.', 'account', regress.axis(1));
INSERT INTO knowledge_chunks (id, tenant_id, document_id, position, content, embedding) VALUES
    ('a8000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000000',
     'a7000000-0000-4000-8000-000000000001', 0,
     'To reset your password, open Settings and choose Security.', regress.axis(1)),
    ('a8000000-0000-4000-8000-000000000002', 'a0000000-0000-4000-8000-000000000000',
     'a7000000-0000-4000-8000-000000000001', 1,
     'The reset link is sent by e-mail and expires after one hour.', regress.axis(2)),
    ('a8000000-0000-4000-8000-000000000003', 'a0000000-0000-4000-8000-000000000000',
     'a7000000-0000-4000-8000-000000000002', 0,
     'Invoices are sent by e-mail on the first day of each month.', regress.axis(3)),
    ('a8000000-0000-4000-8000-000000000004', 'a0000000-0000-4000-8000-000000000000',
     'a7000000-0000-4000-8000-000000000002', 1,
     'Update the credit card used for billing under Settings.', regress.axis(4)),
    ('a8000000-0000-4000-8000-000000000005', 'a0000000-0000-4000-8000-000000000000',
     'a7000000-0000-4000-8000-000000000003', 0,
     'Start a video meeting from the widget; guests join with a link.', regress.axis(5)),
    ('a8000000-0000-4000-8000-000000000006', 'a0000000-0000-4000-8000-000000000000',
     'a7000000-0000-4000-8000-000000000003', 1,
     'Meeting recordings are kept for thirty days.', regress.axis(6)),
    ('b8000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000000',
     'b7000000-0000-4000-8000-000000000001', 0,
     'Passwords need twelve characters; reset them every year.', regress.axis(1));
-- Tenant c: 1,000 documents without embeddings and one chunk each, all
-- about "settings" (a word in every row) and every 100th about a warranty
-- (a rare word). Enough rows for a tenant index to
-- cost clearly more than the GIN index (plans.sql). The chunks' embeddings
-- repeat every 50 rows: HNSW stores a repeated vector once, which keeps
-- this insert short.
INSERT INTO knowledge_documents (id, tenant_id, title, content)
SELECT ('c7000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid,
       'c0000000-0000-4000-8000-000000000000', 'Bulk note ' || n,
       'Settings for ' || (ARRAY['shipping', 'returns', 'pricing', 'accounts'])[n % 4 + 1]
       || CASE WHEN n % 100 = 0 THEN ' under warranty' ELSE '' END
FROM generate_series(1, 1000) AS n;
INSERT INTO knowledge_chunks (id, tenant_id, document_id, position, content, embedding)
SELECT ('c8000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid,
       'c0000000-0000-4000-8000-000000000000',
       ('c7000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid, 0,
       'Note ' || n || ': settings for '
       || (ARRAY['shipping', 'returns', 'pricing', 'accounts'])[n % 4 + 1]
       || CASE WHEN n % 100 = 0 THEN ' under warranty' ELSE '' END,
       regress.spread(n % 50)
FROM generate_series(1, 1000) AS n;
-- Each row got its tenant's text search configuration.
SELECT t.name AS tenant, c.position, d.title, c.text_search_config
FROM knowledge_chunks c
JOIN knowledge_documents d ON d.id = c.document_id
JOIN tenants t ON t.id = c.tenant_id
WHERE t.name <> 'Regress Bulk'
ORDER BY t.name, d.title, c.position;
SELECT text_search_config, count(*) AS bulk_chunks FROM knowledge_chunks
WHERE tenant_id = 'c0000000-0000-4000-8000-000000000000' GROUP BY 1;

-- ========== statistics ==========
-- Fixed statistics for the planner and for keyword search's word
-- frequencies (pg_stats). The tests change fewer rows than autovacuum waits
-- for (50), so these stay as they are for the whole run.
VACUUM (ANALYZE) tenants, users, accounts, auth_sessions, widgets, sessions,
    knowledge_documents, knowledge_chunks;

-- Row counts per tenant, as the superuser.
SELECT t.name AS tenant,
       (SELECT count(*) FROM users u WHERE u.tenant_id = t.id) AS users,
       (SELECT count(*) FROM widgets w WHERE w.tenant_id = t.id) AS widgets,
       (SELECT count(*) FROM sessions s WHERE s.tenant_id = t.id) AS sessions,
       (SELECT count(*) FROM knowledge_documents d WHERE d.tenant_id = t.id) AS documents,
       (SELECT count(*) FROM knowledge_chunks c WHERE c.tenant_id = t.id) AS chunks
FROM tenants t ORDER BY t.name;
