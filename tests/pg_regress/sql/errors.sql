--
-- Every documented error of the public functions: each RAISE in sql/ and
-- each PlatformError of src/error.rs that a public function can reach, with
-- its SQLSTATE, message and hint. Each line after a statement reads
--     sqlstate | message | hint
-- (regress.error_of, setup.sql; an empty hint is a function that gives
-- none). Application functions are called as platform_regress_app, the
-- operators' as the superuser.
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
\pset format unaligned
\pset tuples_only on
\pset fieldsep ' | '
\pset null ''

-- ========== the tenant context (src/tenant_context.rs) ==========
SET ROLE platform_regress_app;
-- set_tenant(NULL): 22004.
SELECT * FROM regress.error_of($$SELECT set_tenant(NULL)$$);
-- set_tenant(nil UUID): 22023.
SELECT * FROM regress.error_of($$SELECT set_tenant('00000000-0000-0000-0000-000000000000')$$);
-- No context: require_current_tenant_id() is 42501 ...
SELECT * FROM regress.error_of($$SELECT require_current_tenant_id()$$);
-- ... and so is every INSERT that leaves tenant_id to its default.
SELECT * FROM regress.error_of($$INSERT INTO widgets (name, domain_whitelist) VALUES ('w', '[]')$$);
-- A setting that is not a UUID fails closed (22P02), for the functions and
-- for every query under the policies; a long value is cut in the message.
BEGIN;
SET LOCAL app.current_tenant_id = 'not-a-uuid';
SELECT * FROM regress.error_of($$SELECT get_current_tenant_id()$$);
SELECT * FROM regress.error_of($$SELECT require_current_tenant_id()$$);
SELECT * FROM regress.error_of($$SELECT count(*) FROM sessions$$);
SET LOCAL app.current_tenant_id = 'x123456789x123456789x123456789x123456789x123456789x123456789x123456789';
SELECT * FROM regress.error_of($$SELECT get_current_tenant_id()$$);
ROLLBACK;

-- ========== provisioning (sql/tenancy/provisioning.sql, sql/tenancy/lookups.sql) ==========
-- create_tenant(), as the application role (granted with provisioning).
SELECT * FROM regress.error_of($$SELECT create_tenant('  ')$$);
SELECT * FROM regress.error_of($$SELECT create_tenant(NULL)$$);
SELECT * FROM regress.error_of($$SELECT create_tenant('X', 'gold')$$);
SELECT * FROM regress.error_of($$SELECT create_tenant('X', NULL)$$);
SELECT * FROM regress.error_of($$SELECT create_tenant('X', 'starter', '[1, 2]')$$);
SELECT * FROM regress.error_of($$SELECT create_tenant('X', 'starter', '{}', '   ')$$);
-- A key shorter than 32 characters (the digest trigger).
SELECT * FROM regress.error_of($$SELECT create_tenant('X', 'starter', '{}', 'pk_short')$$);
-- A time zone PostgreSQL does not know (trigger on tenants.settings).
SELECT * FROM regress.error_of($$SELECT create_tenant('X', 'starter', '{"timezone": "Mars/Olympus"}')$$);
-- seed_demo_tenant() is the superuser's only.
SELECT * FROM regress.error_of($$SELECT seed_demo_tenant('X', 'x.example')$$);
RESET ROLE;
-- A domain that is not a lower-case domain name.
SELECT * FROM regress.error_of($$SELECT seed_demo_tenant('X', 'Not A Domain')$$);
SELECT * FROM regress.error_of($$SELECT seed_demo_tenant('X', NULL)$$);

-- ========== application access (sql/privileges.sql; superuser, rolled back) ==========
BEGIN;
CREATE ROLE platform_regress_super SUPERUSER NOLOGIN;
CREATE ROLE platform_regress_bypass BYPASSRLS NOLOGIN;
CREATE ROLE platform_regress_member NOLOGIN IN ROLE platform_regress_bypass;
CREATE ROLE platform_regress_owner NOLOGIN;
SELECT * FROM regress.error_of($$SELECT grant_app_access(NULL)$$);
SELECT * FROM regress.error_of($$SELECT grant_app_access('platform_regress_super')$$);
SELECT * FROM regress.error_of($$SELECT grant_app_access('platform_regress_bypass')$$);
SELECT * FROM regress.error_of($$SELECT grant_app_access('platform_regress_member')$$);
-- The tables' owner (here made a separate role for a moment: the
-- extension's owner is usually a superuser, refused above).
ALTER TABLE tenants OWNER TO platform_regress_owner;
SELECT * FROM regress.error_of($$SELECT grant_app_access('platform_regress_owner')$$);
SELECT * FROM regress.error_of($$SELECT revoke_app_access(NULL)$$);
-- A role that does not exist (the regrole argument).
SELECT * FROM regress.error_of($$SELECT grant_app_access('platform_regress_nobody')$$);
ROLLBACK;
-- Only a superuser (or the owner) hands out access.
SET ROLE platform_regress_app;
SELECT * FROM regress.error_of($$SELECT grant_app_access('platform_regress_app')$$);
SELECT * FROM regress.error_of($$SELECT revoke_app_access('platform_regress_app')$$);

-- ========== lookups and API keys (sql/tenancy/lookups.sql) ==========
-- A NULL argument is a caller's bug (22004); a wrong value only matches nothing.
SELECT * FROM regress.error_of($$SELECT tenant_for_api_key(NULL)$$);
SELECT * FROM regress.error_of($$SELECT * FROM user_for_session_token(NULL)$$);
SELECT * FROM regress.error_of($$SELECT * FROM users_for_email(NULL)$$);
SELECT * FROM regress.error_of($$SELECT * FROM users_for_oauth_account(NULL, 'gh-42')$$);
SELECT * FROM regress.error_of($$SELECT * FROM users_for_oauth_account('github', NULL)$$);
-- Passwords (sql/tenancy/credentials.sql).
SELECT * FROM regress.error_of($$SELECT * FROM verify_password(NULL, 'x')$$);
SELECT * FROM regress.error_of($$SELECT * FROM verify_password('admin@a.example', NULL)$$);
SELECT * FROM regress.error_of($$SELECT * FROM verify_password('admin@a.example', repeat('x', 1025))$$);
SELECT * FROM regress.error_of($$SELECT set_password('a1000000-0000-4000-8000-000000000001', 'x')$$);
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000') IS NOT NULL AS context_set;
SELECT * FROM regress.error_of($$SELECT set_password('a1000000-0000-4000-8000-000000000001', '')$$);
SELECT * FROM regress.error_of($$SELECT set_password(NULL, 'x')$$);
SELECT * FROM regress.error_of($$SELECT set_password('a1000000-0000-4000-8000-000000000001', NULL)$$);
ROLLBACK;
-- rotate_api_key() without a context, and under a tenant that does not exist.
SELECT * FROM regress.error_of($$SELECT rotate_api_key()$$);
BEGIN;
SELECT set_tenant('f0000000-0000-4000-8000-000000000000') IS NOT NULL AS context_set;
SELECT * FROM regress.error_of($$SELECT rotate_api_key()$$);
ROLLBACK;

-- ========== list_sessions (sql/tenancy/pagination.sql) ==========
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000') IS NOT NULL AS context_set;
SELECT * FROM regress.error_of($$SELECT * FROM list_sessions(0)$$);
SELECT * FROM regress.error_of($$SELECT * FROM list_sessions(1001)$$);
SELECT * FROM regress.error_of($$SELECT * FROM list_sessions(NULL)$$);
SELECT * FROM regress.error_of($$SELECT * FROM list_sessions(10, 'not-a-cursor')$$);
SELECT * FROM regress.error_of($$SELECT * FROM list_sessions(10, '1735981200000000:a5000000')$$);
-- Reported even when the tenant has no sessions (no context here).
ROLLBACK;
SELECT * FROM regress.error_of($$SELECT * FROM list_sessions(10, 'not-a-cursor')$$);

-- ========== search (sql/search/, src/search/) ==========
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000') IS NOT NULL AS context_set;
-- vector_search: the query embedding.
SELECT * FROM regress.error_of($$SELECT * FROM vector_search(NULL)$$);
SELECT * FROM regress.error_of($$SELECT * FROM vector_search('[1,2,3]')$$);
SELECT * FROM regress.error_of($$SELECT * FROM vector_search(array_fill(0, ARRAY[1024])::vector)$$);
-- NaN and infinity never reach the check: pgvector refuses them in a vector
-- value; the check itself (internal) says so for a real[].
SELECT * FROM regress.error_of($$SELECT '[NaN,1]'::vector$$);
SELECT * FROM regress.error_of($$SELECT platform_check_query_embedding(array_fill(1, ARRAY[1023])::real[] || 'Infinity'::real)$$);
-- Counts: 1..1000, NULL refused.
SELECT * FROM regress.error_of($$SELECT * FROM vector_search(regress.axis(1), 0)$$);
SELECT * FROM regress.error_of($$SELECT * FROM vector_search(regress.axis(1), 1001)$$);
SELECT * FROM regress.error_of($$SELECT * FROM vector_search(regress.axis(1), NULL)$$);
-- keyword_search.
SELECT * FROM regress.error_of($$SELECT * FROM keyword_search('reset', 0)$$);
SELECT * FROM regress.error_of($$SELECT * FROM keyword_search('reset', keyword_match => 'some')$$);
SELECT * FROM regress.error_of($$SELECT * FROM keyword_search('reset', keyword_match => NULL)$$);
SELECT * FROM regress.error_of($$SELECT * FROM keyword_search('reset', text_search_config => 'klingon')$$);
-- hybrid_search.
SELECT * FROM regress.error_of($$SELECT * FROM hybrid_search('  ', NULL)$$);
SELECT * FROM regress.error_of($$SELECT * FROM hybrid_search(NULL, NULL)$$);
SELECT * FROM regress.error_of($$SELECT * FROM hybrid_search('reset', regress.axis(1), fusion => 'borda')$$);
SELECT * FROM regress.error_of($$SELECT * FROM hybrid_search('reset', regress.axis(1), fusion => NULL)$$);
SELECT * FROM regress.error_of($$SELECT * FROM hybrid_search('reset', regress.axis(1), match_count => 0)$$);
SELECT * FROM regress.error_of($$SELECT * FROM hybrid_search('reset', regress.axis(1), match_count => NULL)$$);
SELECT * FROM regress.error_of($$SELECT * FROM hybrid_search('reset', regress.axis(1), candidates => 1001)$$);
SELECT * FROM regress.error_of($$SELECT * FROM hybrid_search('reset', regress.axis(1), rrf_k => 0)$$);
SELECT * FROM regress.error_of($$SELECT * FROM hybrid_search('reset', regress.axis(1), vector_weight => -1)$$);
SELECT * FROM regress.error_of($$SELECT * FROM hybrid_search('reset', regress.axis(1), keyword_weight => 'NaN')$$);
SELECT * FROM regress.error_of($$SELECT * FROM hybrid_search('reset', regress.axis(1), keyword_weight => NULL)$$);
SELECT * FROM regress.error_of($$SELECT * FROM hybrid_search('reset', regress.axis(1), keyword_match => 'most')$$);
SELECT * FROM regress.error_of($$SELECT * FROM hybrid_search('reset', '[1,2,3]')$$);
-- search_documents.
SELECT * FROM regress.error_of($$SELECT * FROM search_documents(NULL, NULL)$$);
SELECT * FROM regress.error_of($$SELECT * FROM search_documents('reset', regress.axis(1), fusion => 'borda')$$);
SELECT * FROM regress.error_of($$SELECT * FROM search_documents('reset', array_fill(0, ARRAY[1024])::vector)$$);
SELECT * FROM regress.error_of($$SELECT * FROM search_documents('reset', NULL, text_search_config => 'klingon')$$);
-- Only a configuration rows can keep: not a bare oid, not a session's
-- temporary one.
SELECT * FROM regress.error_of($$SELECT * FROM keyword_search('reset', text_search_config => '12345')$$);
CREATE TEXT SEARCH CONFIGURATION pg_temp.passing (COPY = simple);
SELECT * FROM regress.error_of($$SELECT * FROM keyword_search('reset', text_search_config => 'pg_temp.passing')$$);
-- The tenant's own textSearchConfig is checked when it is written.
SELECT * FROM regress.error_of($$UPDATE tenants SET settings = settings || '{"textSearchConfig": "klingon"}'$$);
SELECT * FROM regress.error_of($$UPDATE tenants SET settings = settings || '{"textSearchConfig": "pg_temp.passing"}'$$);
-- Bounded work: the query's length and its distinct words.
SELECT * FROM regress.error_of($$SELECT * FROM keyword_search(repeat('x', 1000001))$$);
SELECT * FROM regress.error_of($$SELECT * FROM keyword_search((SELECT string_agg('w' || g, ' ') FROM generate_series(1, 65) g))$$);
SELECT * FROM regress.error_of($$SELECT * FROM hybrid_search('reset', NULL, document_ids => ARRAY(SELECT gen_random_uuid() FROM generate_series(1, 10001)))$$);
ROLLBACK;
-- ingest_document.
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000') IS NOT NULL AS context_set;
SELECT * FROM regress.error_of($$SELECT ingest_document('T', 'C', ARRAY['a', 'b'], ARRAY[regress.axis(1)])$$);
SELECT * FROM regress.error_of($$SELECT ingest_document('T', 'C', ARRAY['a', NULL], ARRAY[regress.axis(1), regress.axis(2)])$$);
SELECT * FROM regress.error_of($$SELECT ingest_document('T', 'C', ARRAY['a'], ARRAY['[1,2,3]'::vector])$$);
SELECT * FROM regress.error_of($$SELECT ingest_document('T', 'C', ARRAY['a'], ARRAY[array_fill(0, ARRAY[1024])::vector])$$);
SELECT * FROM regress.error_of($$SELECT ingest_document('T', 'C', '{}', '{}', document_embedding => '[1,2]')$$);
SELECT * FROM regress.error_of($$SELECT ingest_document('T', 'C', '{}', '{}', text_search_config => 'klingon')$$);
SELECT * FROM regress.error_of($$SELECT ingest_document('T', repeat('x', 1000001), '{}', '{}')$$);
SELECT * FROM regress.error_of($$SELECT ingest_document('T', 'C', array_fill('x'::text, ARRAY[10001]), array_fill(regress.axis(1), ARRAY[10001]))$$);
ROLLBACK;
-- Without a context.
SELECT * FROM regress.error_of($$SELECT ingest_document('T', 'C', '{}', '{}')$$);
-- chunk_text.
SELECT * FROM regress.error_of($$SELECT chunk_text('text', 0, 0)$$);
SELECT * FROM regress.error_of($$SELECT chunk_text('text', 10, 10)$$);
SELECT * FROM regress.error_of($$SELECT chunk_text('text', 10, -1)$$);
SELECT * FROM regress.error_of($$SELECT chunk_text('text', NULL, 0)$$);
SELECT * FROM regress.error_of($$SELECT chunk_text('text', 2000000, 0)$$);
SELECT * FROM regress.error_of($$SELECT chunk_text('text', 100, 0, unit => 'bytes')$$);
SELECT * FROM regress.error_of($$SELECT chunk_text('text', 100, 0, format => 'html')$$);
SELECT * FROM regress.error_of($$SELECT chunk_text('text', 100, 0, unit => NULL)$$);
SELECT * FROM regress.error_of($$SELECT chunk_text('text', 100, 0, format => NULL)$$);
SELECT * FROM regress.error_of($$SELECT chunk_text('text', 63, 0, unit => 'tokens')$$);
SELECT * FROM regress.error_of($$SELECT chunk_text('text', 64, 64, unit => 'tokens')$$);
-- Bounded work: the input, and the characters of all chunks together (a
-- large overlap on a text without boundaries advances a character a time).
SELECT * FROM regress.error_of($$SELECT chunk_text(repeat('x', 1000001), 1000, 0)$$);
SELECT * FROM regress.error_of($$SELECT chunk_text(repeat('x', 80000), 40000, 39999)$$);
SELECT * FROM regress.error_of($$SELECT chunk_text(repeat('x', 1000001), 1000, 0, unit => 'tokens', format => 'markdown')$$);
SELECT * FROM regress.error_of($$SELECT chunk_text(repeat('x ', 200000), 40000, 39999, unit => 'tokens')$$);
-- Internal helpers an application role may execute: specific errors, never
-- an internal one.
SELECT * FROM regress.error_of($$SELECT * FROM platform_fuse(ARRAY[gen_random_uuid()], '{}', NULL, NULL, NULL, 'rrf', 60, 1, 1, 10)$$);
SELECT * FROM regress.error_of($$SELECT * FROM platform_fuse(ARRAY[NULL::uuid], '{1}', NULL, NULL, NULL, 'rrf', 60, 1, 1, 10)$$);
SELECT * FROM regress.error_of($$SELECT platform_check_query_embedding(ARRAY[1, NULL]::real[])$$);
SELECT * FROM regress.error_of($$SELECT platform_checked_count(NULL, 5, 10)$$);
SELECT * FROM regress.error_of($$SELECT * FROM platform_keyword_query('x', NULL, 'any', false)$$);
SELECT * FROM regress.error_of($$SELECT platform_lexemes_any(ARRAY(SELECT 'w' || g FROM generate_series(1, 65) g))$$);

-- ========== costs (sql/costs/) ==========
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000') IS NOT NULL AS context_set;
-- record_cost_event.
SELECT * FROM regress.error_of($$SELECT * FROM record_cost_event('telepathy', 1)$$);
SELECT * FROM regress.error_of($$SELECT * FROM record_cost_event(NULL, 1)$$);
SELECT * FROM regress.error_of($$SELECT * FROM record_cost_event('llm', -0.01)$$);
SELECT * FROM regress.error_of($$SELECT * FROM record_cost_event('llm', 'NaN')$$);
SELECT * FROM regress.error_of($$SELECT * FROM record_cost_event('llm', NULL)$$);
SELECT * FROM regress.error_of($$SELECT * FROM record_cost_event('llm', 1, tokens_used => -1)$$);
SELECT * FROM regress.error_of($$SELECT * FROM record_cost_event('llm', 1, idempotency_key => ' ')$$);
SELECT * FROM regress.error_of($$SELECT * FROM record_cost_event('llm', 1, idempotency_key => repeat('k', 201))$$);
SELECT * FROM regress.error_of($$SELECT * FROM record_cost_event('llm', 1, metadata => '[]')$$);
-- An event older than platform.cost_late_event_window (35 days by default).
SELECT * FROM regress.error_of($$SELECT * FROM record_cost_event('llm', 1, occurred_at => '2000-01-01 00:00:00+00')$$);
-- cost_summary.
SELECT * FROM regress.error_of($$SELECT * FROM cost_summary('2025-01-01', '2025-02-01', 'fortnight')$$);
SELECT * FROM regress.error_of($$SELECT * FROM cost_summary('2025-01-01', '2025-02-01', NULL)$$);
SELECT * FROM regress.error_of($$SELECT * FROM cost_summary('2025-01-01', '2025-02-01', 'day', 'team')$$);
SELECT * FROM regress.error_of($$SELECT * FROM cost_summary(NULL, '2025-02-01')$$);
SELECT * FROM regress.error_of($$SELECT * FROM cost_summary('2025-01-01', 'infinity')$$);
SELECT * FROM regress.error_of($$SELECT * FROM cost_summary('2025-02-01', '2025-01-01')$$);
SELECT * FROM regress.error_of($$SELECT * FROM cost_summary('2025-01-01', '2025-02-01', time_zone => 'Mars/Olympus')$$);
SELECT * FROM regress.error_of($$SELECT * FROM cost_summary('2000-01-01', '2025-01-01', 'hour')$$);
-- compute_cost_summary.
SELECT * FROM regress.error_of($$SELECT * FROM compute_cost_summary('2025-02-01', '2025-01-01')$$);
SELECT * FROM regress.error_of($$SELECT * FROM compute_cost_summary('2025-01-01', '2025-01-01')$$);
SELECT * FROM regress.error_of($$SELECT * FROM compute_cost_summary(NULL, '2025-01-01')$$);
-- Spend reservations: bad estimates, a hard cap reached, unknown or closed
-- reservations.
SELECT * FROM regress.error_of($$SELECT * FROM reserve_spend(-1)$$);
SELECT * FROM regress.error_of($$SELECT * FROM reserve_spend('NaN')$$);
SELECT * FROM regress.error_of($$SELECT * FROM reserve_spend(NULL)$$);
SELECT * FROM regress.error_of($$SELECT * FROM reserve_spend(1e15)$$);
SELECT * FROM regress.error_of($$SELECT * FROM settle_spend('00000000-0000-4000-8000-00000000beef', 'llm', 1)$$);
SELECT * FROM regress.error_of($$SELECT * FROM release_spend(NULL)$$);
SAVEPOINT capped;
-- Tenant a spent 12.5 USD today (costs.sql); a hard cap of 14 a day.
UPDATE tenants SET settings = settings || '{"maxDailySpend": 14, "hardSpendLimits": ["daily"]}';
SELECT reservation_id AS capped_reservation FROM reserve_spend(1) \gset
SELECT * FROM regress.error_of($$SELECT * FROM reserve_spend(1)$$);
SELECT released FROM release_spend(:'capped_reservation');
SELECT sqlstate, replace(message, :'capped_reservation', '<id>') AS message, hint
FROM regress.error_of(format($$SELECT * FROM settle_spend(%L, 'llm', 1)$$, :'capped_reservation'));
ROLLBACK TO SAVEPOINT capped;
-- Per-widget budgets: a widget of no tenant of the context's, a widget's
-- hard cap reached, a session's event named for another widget, a
-- negative widget limit.
SAVEPOINT widgets;
SELECT * FROM regress.error_of($$SELECT * FROM reserve_spend(1, '00000000-0000-4000-8000-00000000beef')$$);
SELECT * FROM regress.error_of($$SELECT * FROM budget_status('00000000-0000-4000-8000-00000000beef')$$);
INSERT INTO widgets (id, name, domain_whitelist, settings)
VALUES ('a0000000-0000-4000-8000-0000000000a1', 'Public chat', '[]', '{"maxDailySpend": 2, "hardSpendLimits": ["daily"]}'),
       ('a0000000-0000-4000-8000-0000000000a2', 'Help centre', '[]', NULL);
SELECT * FROM regress.error_of($$SELECT * FROM reserve_spend(2.5, 'a0000000-0000-4000-8000-0000000000a1')$$);
INSERT INTO sessions (id, widget_id) VALUES ('a0000000-0000-4000-8000-0000000000c1', 'a0000000-0000-4000-8000-0000000000a1');
SELECT * FROM regress.error_of($$SELECT * FROM record_cost_event('llm', 1, session_id => 'a0000000-0000-4000-8000-0000000000c1',
                                                                 widget_id => 'a0000000-0000-4000-8000-0000000000a2')$$);
SELECT * FROM regress.error_of($$UPDATE widgets SET settings = '{"maxWeeklySpend": 0}' WHERE id = 'a0000000-0000-4000-8000-0000000000a2'$$);
ROLLBACK TO SAVEPOINT widgets;
-- A tenant's time zone must exist (trigger on tenants.settings).
SELECT * FROM regress.error_of($$UPDATE tenants SET settings = settings || '{"timezone": "Europe/Atlantis"}'$$);
-- Budget limits are positive numbers; hard limits name periods.
SELECT * FROM regress.error_of($$UPDATE tenants SET settings = settings || '{"maxDailySpend": -5}'$$);
SELECT * FROM regress.error_of($$UPDATE tenants SET settings = settings || '{"maxWeeklySpend": "20"}'$$);
SELECT * FROM regress.error_of($$UPDATE tenants SET settings = settings || '{"maxMonthlySpend": 0}'$$);
SELECT * FROM regress.error_of($$UPDATE tenants SET settings = settings || '{"hardSpendLimits": ["yearly"]}'$$);
SELECT * FROM regress.error_of($$UPDATE tenants SET settings = settings || '{"hardSpendLimits": "daily"}'$$);
ROLLBACK;
-- Without a context, the cost functions are 42501.
SELECT * FROM regress.error_of($$SELECT * FROM record_cost_event('llm', 1)$$);
SELECT * FROM regress.error_of($$SELECT * FROM cost_summary('2025-01-01', '2025-02-01')$$);
SELECT * FROM regress.error_of($$SELECT * FROM budget_status()$$);
SELECT * FROM regress.error_of($$SELECT * FROM compute_cost_summary('2025-01-01', '2025-02-01')$$);

-- ========== operators only (sql/operations/, sql/costs/rollups.sql) ==========
-- The application role may not call them (42501) ...
SELECT * FROM regress.error_of($$SELECT * FROM platform_audit()$$);
SELECT * FROM regress.error_of($$SELECT * FROM platform_slow_queries()$$);
SELECT * FROM regress.error_of($$SELECT * FROM platform_active_queries$$);
SELECT * FROM regress.error_of($$SELECT * FROM platform_index_usage$$);
SELECT * FROM regress.error_of($$SELECT * FROM platform_verify_cost_rollups()$$);
SELECT * FROM regress.error_of($$SELECT platform_rebuild_cost_rollups()$$);
-- ... nor reach the rollup tables.
SELECT * FROM regress.error_of($$SELECT * FROM cost_rollups_hourly$$);
RESET ROLE;
-- platform_slow_queries' argument.
SELECT * FROM regress.error_of($$SELECT * FROM platform_slow_queries(0)$$);
SELECT * FROM regress.error_of($$SELECT * FROM platform_slow_queries(NULL)$$);
