--
-- Tenancy: the tenant context, row-level security, provisioning,
-- application access, the lookups before a tenant is known, API key
-- rotation and list_sessions. What an application calls runs as
-- platform_regress_app; seed_demo_tenant and grant/revoke_app_access run as
-- the superuser, who alone may call them.
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

-- ========== the tenant context ==========
SET ROLE platform_regress_app;

-- No context: the nil UUID, and every tenant table reads empty.
SELECT get_current_tenant_id();
SELECT count(*) AS sessions_visible FROM sessions;
SELECT count(*) AS tenants_visible FROM tenants;

-- set_tenant() outside a transaction block warns (SQLSTATE 25P01, not shown
-- by psql): the context ends with the statement.
SELECT set_tenant('a0000000-0000-4000-8000-000000000000');
SELECT get_current_tenant_id() AS after_the_statement;

-- Inside a transaction: the context holds until COMMIT or ROLLBACK.
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000');
SELECT get_current_tenant_id();
SELECT require_current_tenant_id();
-- It lives in app.current_tenant_id, set for this transaction only.
SELECT current_setting('app.current_tenant_id');
-- Row-level security: tenant a's rows only.
SELECT name FROM tenants;
SELECT count(*) AS sessions_visible FROM sessions;
-- A new row's tenant_id defaults to the context.
INSERT INTO widgets (id, name, domain_whitelist)
VALUES ('a4000000-0000-4000-8000-000000000009', 'Temporary widget', '[]')
RETURNING tenant_id;
-- Another tenant's row cannot be written (42501, from the INSERT policy).
SELECT * FROM regress.error_of($$
    INSERT INTO widgets (tenant_id, name, domain_whitelist)
    VALUES ('b0000000-0000-4000-8000-000000000000', 'Not mine', '[]')$$);
-- ... nor a row of this tenant pointed at another tenant's parent (the
-- composite foreign key, 23503).
SELECT * FROM regress.error_of($$
    INSERT INTO sessions (widget_id) VALUES ('b4000000-0000-4000-8000-000000000001')$$);
ROLLBACK;

-- After the transaction: no context again.
SELECT get_current_tenant_id() AS after_rollback;

-- The design document's SET LOCAL app.current_tenant_id works too (it is
-- what set_tenant() sets).
BEGIN;
SET LOCAL app.current_tenant_id = 'b0000000-0000-4000-8000-000000000000';
SELECT get_current_tenant_id();
SELECT name FROM tenants;
COMMIT;

-- ========== lookups before the tenant is known (no context) ==========
-- A widget's API key leads to its tenant.
SELECT tenant_for_api_key('pk_test_regress_tenant_a_0000000000000000001');
-- A wrong key, a near miss and the stored digest presented as a key find
-- nothing, without an error.
SELECT tenant_for_api_key('pk_test_regress_tenant_a_0000000000000000009') AS wrong_key;
SELECT tenant_for_api_key('pk_test_regress_tenant_a_000000000000000000') AS near_miss;
SELECT tenant_for_api_key(platform_api_key_digest('pk_test_regress_tenant_a_0000000000000000001'))
    AS digest_as_key;
-- An unexpired Auth.js session token: its user and tenant.
SELECT * FROM user_for_session_token('regress-session-token-a-valid');
-- An expired one, or a wrong one: no row.
SELECT * FROM user_for_session_token('regress-session-token-a-expired');
SELECT * FROM user_for_session_token('regress-session-token-a-wrong');
-- An e-mail address: one row per tenant that has it.
SELECT * FROM users_for_email('shared@example.com');
SELECT * FROM users_for_email('nobody@example.com');
-- An OAuth account: one row per tenant.
SELECT * FROM users_for_oauth_account('github', 'gh-42');
SELECT * FROM users_for_oauth_account('google', 'gh-42');
-- A request as an application makes it: key, then the context.
BEGIN;
SELECT set_tenant(tenant_for_api_key('pk_test_regress_tenant_b_0000000000000000002'));
SELECT name FROM tenants;
COMMIT;

-- ========== provisioning ==========
-- create_tenant() as the application role (granted with provisioning).
-- The id is random: kept in a psql variable, never printed.
SELECT create_tenant('Regress D', 'growth', '{"timezone": "America/New_York"}',
                     'pk_test_regress_tenant_d_0000000000000000004') AS tenant_d \gset
-- The key given finds it; only its digest is stored.
SELECT tenant_for_api_key('pk_test_regress_tenant_d_0000000000000000004') = :'tenant_d'
    AS found_by_key;
BEGIN;
SELECT set_tenant(:'tenant_d') = :'tenant_d' AS context_is_d;
SELECT name, plan, settings, api_key LIKE 'sha256:%' AS stored_as_digest FROM tenants;
-- rotate_api_key(): a new key, returned once; the old key stops working.
SELECT rotate_api_key() AS new_key \gset
SELECT left(:'new_key', 8) AS prefix, length(:'new_key') AS length;
COMMIT;
SELECT tenant_for_api_key('pk_test_regress_tenant_d_0000000000000000004') AS old_key;
SELECT tenant_for_api_key(:'new_key') = :'tenant_d' AS new_key_finds_d;
-- Defaults: plan starter, settings {}, a random key.
SELECT create_tenant('Regress E') AS tenant_e \gset
BEGIN;
SELECT set_tenant(:'tenant_e') = :'tenant_e' AS context_is_e;
SELECT name, plan, settings FROM tenants;
COMMIT;

-- begin_new_tenant(): the document's own seed INSERT INTO tenants, for a
-- provisioning role, under a context for a tenant about to be created (in
-- either mode of platform.tenant_context); an existing tenant is refused.
BEGIN;
SELECT begin_new_tenant('f7000000-0000-4000-8000-000000000000');
INSERT INTO tenants (name, api_key)
VALUES ('Regress F', 'pk_test_regress_tenant_g_0000000000000000007') RETURNING id, name;
COMMIT;
BEGIN;
SELECT * FROM regress.error_of($$SELECT begin_new_tenant('f7000000-0000-4000-8000-000000000000')$$);
ROLLBACK;
-- The context as platform_tenant_context() reports it (never a token).
BEGIN;
SELECT * FROM platform_tenant_context();
SELECT set_tenant(:'tenant_e') IS NOT NULL AS set;
SELECT mode, tenant = :'tenant_e' AS is_e, state FROM platform_tenant_context();
-- set_tenant_token() checks its token in setting mode too (signed mode and
-- valid tokens: pgrx-tests/tests/signed_context.rs, which has a key).
SELECT * FROM regress.error_of($$SELECT set_tenant_token('f7000000-0000-4000-8000-000000000000')$$);
ROLLBACK;

-- seed_demo_tenant(): the design document's demo data, as the superuser.
RESET ROLE;
SELECT seed_demo_tenant('Regress Demo', 'demo.example') AS demo \gset
SELECT t.name, t.plan, t.settings,
       (SELECT count(*) FROM users u WHERE u.tenant_id = t.id) AS users,
       (SELECT count(*) FROM auth_sessions s WHERE s.tenant_id = t.id) AS auth_sessions,
       (SELECT count(*) FROM widgets w WHERE w.tenant_id = t.id) AS widgets,
       (SELECT count(*) FROM knowledge_documents d WHERE d.tenant_id = t.id) AS documents,
       (SELECT count(*) FROM ai_personalities p WHERE p.tenant_id = t.id) AS personalities
FROM tenants t WHERE t.id = :'demo';
-- Its owner signs in like any user, with the document's password (stored as
-- the document stores it, unsalted SHA-256 hex, and Argon2id after this).
SET ROLE platform_regress_app;
SELECT tenant_id = :'demo' AS demo_tenant
FROM verify_password('admin@demo.example', 'password123');
RESET ROLE;
SELECT c.scheme AS demo_scheme_after_login
FROM user_credentials c JOIN users u ON u.tenant_id = c.tenant_id AND u.id = c.user_id
WHERE u.email = 'admin@demo.example';

-- ========== passwords ==========
SET ROLE platform_regress_app;
-- set_password() under the user's tenant; the column then reads a marker,
-- never a hash.
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000');
SELECT set_password('a1000000-0000-4000-8000-000000000001', 'Ada''s long passphrase');
SELECT email, password_hash FROM users ORDER BY email;
-- Another tenant's user is not found (22023, the same as a user that does
-- not exist).
SELECT * FROM regress.error_of($$
    SELECT set_password('b1000000-0000-4000-8000-000000000001', 'not yours')$$);
COMMIT;
-- A login returns ids only: the right password finds the user, a wrong one
-- and an unknown address find nobody.
SELECT * FROM verify_password('admin@a.example', 'Ada''s long passphrase');
SELECT count(*) AS wrong_password FROM verify_password('admin@a.example', 'Ada''s long passphrasE');
SELECT count(*) AS unknown_address FROM verify_password('nobody@example.com', 'anything');
-- The document's way, a SHA-256 hex written into password_hash, works too.
BEGIN;
SELECT set_tenant('b0000000-0000-4000-8000-000000000000');
UPDATE users SET password_hash = encode(sha256('Sam''s password'), 'hex')
WHERE email = 'shared@example.com'
RETURNING email, password_hash;
COMMIT;
-- The address is in two tenants; only b's user has this password. With a
-- tenant given, only that tenant's user is checked.
SELECT * FROM verify_password('shared@example.com', 'Sam''s password');
SELECT count(*) AS in_tenant_a
FROM verify_password('shared@example.com', 'Sam''s password', 'a0000000-0000-4000-8000-000000000000');
-- A password in clear is refused, and the hashes are the owner's alone.
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000');
SELECT * FROM regress.error_of($$
    UPDATE users SET password_hash = 'hunter2' WHERE email = 'admin@a.example'$$);
ROLLBACK;
SELECT * FROM regress.error_of($$SELECT * FROM user_credentials$$);
RESET ROLE;
-- What is stored: Argon2id for both, the SHA-256 replaced at the login.
SELECT user_id, scheme, hash LIKE '$argon2id$v=19$m=19456,t=2,p=1$%' AS current_cost
FROM user_credentials
WHERE user_id IN ('a1000000-0000-4000-8000-000000000001', 'b1000000-0000-4000-8000-000000000001')
ORDER BY user_id;

-- ========== application access (superuser; rolled back) ==========
BEGIN;
CREATE ROLE platform_regress_tmp NOLOGIN NOSUPERUSER NOBYPASSRLS;
SELECT * FROM regress.app_privileges('platform_regress_tmp') AS before_grant;
SELECT grant_app_access('platform_regress_tmp');
SELECT * FROM regress.app_privileges('platform_regress_tmp') AS granted;
-- Without provisioning, a context set by hand is not enough to create a
-- tenant (42501, from the INSERT policy).
GRANT USAGE ON SCHEMA regress TO platform_regress_tmp;
SET LOCAL ROLE platform_regress_tmp;
SELECT set_config('app.current_tenant_id', 'e0000000-0000-4000-8000-000000000000', true)
    IS NOT NULL AS context_set_by_hand;
SELECT platform_may_provision() AS may_provision;
SELECT * FROM regress.error_of($$
    INSERT INTO tenants (name, api_key) VALUES ('Forged', 'pk_test_regress_forged_0000000000000000000')$$);
RESET ROLE;
SELECT grant_app_access('platform_regress_tmp', provisioning => true);
SELECT * FROM regress.app_privileges('platform_regress_tmp') AS granted_with_provisioning;
-- Trusted to name a tenant with set_tenant() in signed mode (a job's role).
SELECT grant_trusted_context('platform_regress_tmp');
SELECT has_function_privilege('platform_regress_tmp', 'platform_trusted_context()', 'EXECUTE')
    AS trusted;
SET LOCAL ROLE platform_regress_tmp;
SELECT platform_may_provision() AS may_provision;
RESET ROLE;
SELECT revoke_app_access('platform_regress_tmp');
SELECT * FROM regress.app_privileges('platform_regress_tmp') AS revoked;
SELECT has_function_privilege('platform_regress_tmp', 'platform_trusted_context()', 'EXECUTE')
    AS still_trusted;
ROLLBACK;

-- ========== list_sessions: keyset pagination ==========
SET ROLE platform_regress_app;
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000');
-- First page of 2, newest first; sessions 3 and 4 share created_at, the
-- larger id comes first. next_cursor is '<microseconds>:<id>'.
SELECT id, widget_id, created_at, next_cursor FROM list_sessions(2);
-- The next page starts after the last row's cursor.
SELECT next_cursor AS cursor FROM list_sessions(2) OFFSET 1 LIMIT 1 \gset
SELECT id, created_at, next_cursor FROM list_sessions(2, :'cursor');
-- The cursor keeps microseconds (session 2 was created at .123456).
SELECT next_cursor AS cursor FROM list_sessions(2, :'cursor') OFFSET 1 LIMIT 1 \gset
SELECT id, created_at, next_cursor FROM list_sessions(2, :'cursor');
-- One widget's sessions.
SELECT id, created_at FROM list_sessions(50, NULL, 'a4000000-0000-4000-8000-000000000001');
-- Defaults: page_size 50; fewer rows than that means the last page.
SELECT count(*) FROM list_sessions();
COMMIT;
-- Another tenant sees its own sessions only.
BEGIN;
SELECT set_tenant('b0000000-0000-4000-8000-000000000000');
SELECT id, tenant_id, created_at FROM list_sessions();
COMMIT;
-- No context: no sessions.
SELECT count(*) FROM list_sessions();
RESET ROLE;
