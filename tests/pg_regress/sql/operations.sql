--
-- Operations, as the superuser (the functions are granted to nobody else):
-- the security audit, monitoring, the list of tenant tables and the cost
-- rollups' check and rebuild.
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

-- ========== platform_audit ==========
-- A clean install: no findings.
SELECT * FROM platform_audit();
-- Findings appear when something is wrong (rolled back): FORCE switched
-- off on one table, and a definer lookup made executable by PUBLIC.
BEGIN;
ALTER TABLE messages NO FORCE ROW LEVEL SECURITY;
GRANT EXECUTE ON FUNCTION tenant_for_api_key(text) TO PUBLIC;
SELECT * FROM platform_audit() ORDER BY finding, object;
ROLLBACK;
SELECT count(*) AS findings_after_rollback FROM platform_audit();

-- ========== monitoring ==========
-- Without pg_stat_statements (not created in this database): a notice
-- saying how to enable it, and no rows.
SELECT * FROM platform_slow_queries();
SELECT count(*) AS slow_queries FROM platform_slow_queries(5);
-- The views read; their rows depend on the server, so only counted.
SELECT count(*) >= 0 AS readable FROM platform_active_queries;
SELECT count(*) > 0 AS lists_indexes FROM platform_index_usage
WHERE indexname = 'session_created_at_idx';

-- ========== platform_tenant_tables ==========
-- The 14 tenant-scoped tables. (WITH ORDINALITY keeps the planner from
-- inlining this SQL function, so that coverage.sql counts the call.)
SELECT n, table_name, tenant_column FROM platform_tenant_tables() WITH ORDINALITY AS t(table_name, tenant_column, n);

-- ========== cost rollups ==========
-- The rollups equal what cost_events says (costs.sql wrote events for
-- tenants a and b): no differences.
SELECT * FROM platform_verify_cost_rollups();
-- Rebuilt for one tenant, then for all: still no differences, and the
-- hourly rows are the same.
SELECT tenant_id, count(*) AS hourly_rows, sum(event_count) AS events, sum(total_cost_usd) AS cost
FROM cost_rollups_hourly GROUP BY tenant_id ORDER BY tenant_id;
SELECT platform_rebuild_cost_rollups('a0000000-0000-4000-8000-000000000000');
SELECT * FROM platform_verify_cost_rollups();
SELECT platform_rebuild_cost_rollups();
SELECT * FROM platform_verify_cost_rollups();
SELECT tenant_id, count(*) AS hourly_rows, sum(event_count) AS events, sum(total_cost_usd) AS cost
FROM cost_rollups_hourly GROUP BY tenant_id ORDER BY tenant_id;
-- A difference is reported (rolled back): one hourly row changed by hand.
BEGIN;
UPDATE cost_rollups_hourly SET total_cost_usd = total_cost_usd + 1
WHERE tenant_id = 'b0000000-0000-4000-8000-000000000000';
SELECT kind, tenant_id, bucket, service, expected_cost_usd, actual_cost_usd, expected_events, actual_events
FROM platform_verify_cost_rollups();
ROLLBACK;

-- ========== keyword statistics ==========
-- Each tenant's counts equal its chunks and documents (setup.sql and
-- search.sql wrote them): no differences, and rebuilding changes nothing.
SELECT * FROM platform_verify_keyword_statistics();
SELECT tenant_id, chunks, chunk_length, documents, document_length
FROM knowledge_keyword_totals WHERE tenant_id::text LIKE '_0000000-0000-4000-8000-000000000000'
ORDER BY tenant_id;
SELECT platform_rebuild_keyword_statistics('c0000000-0000-4000-8000-000000000000');
SELECT platform_rebuild_keyword_statistics();
SELECT * FROM platform_verify_keyword_statistics();
SELECT tenant_id, chunks, chunk_length, documents, document_length
FROM knowledge_keyword_totals WHERE tenant_id::text LIKE '_0000000-0000-4000-8000-000000000000'
ORDER BY tenant_id;
-- A count changed by hand is reported; TRUNCATE (an operator's) empties the
-- counts of every tenant (both rolled back).
BEGIN;
UPDATE knowledge_lexeme_counts SET chunks = chunks + 1
WHERE tenant_id = 'a0000000-0000-4000-8000-000000000000' AND lexeme = 'reset';
SELECT * FROM platform_verify_keyword_statistics();
ROLLBACK;
BEGIN;
TRUNCATE knowledge_documents CASCADE;
SELECT * FROM platform_verify_keyword_statistics();
SELECT count(*) AS words, coalesce(sum(chunks + documents), 0) AS counted FROM knowledge_lexeme_counts;
ROLLBACK;

-- ========== settings (src/settings.rs) ==========
-- Every platform.* setting is registered once the library is loaded (any
-- platform function loads it): listed with its bounds, superuser-only.
SELECT platform_exact_scan_limit() IS NOT NULL AS library_loaded;
SELECT name, vartype, context, unit, min_val, max_val, boot_val
FROM pg_settings WHERE name LIKE 'platform.%' ORDER BY name;
-- Out of bounds, and a misspelt name under the reserved prefix: errors at SET.
SELECT * FROM regress.error_of($$SET platform.keyword_rank_limit = -1$$);
SELECT * FROM regress.error_of($$SET platform.keyword_rank_limt = 10$$);
-- The application role may not loosen them, unless an operator delegates one.
SET ROLE platform_regress_app;
SELECT * FROM regress.error_of($$SET platform.exact_scan_limit = 1$$);
RESET ROLE;
GRANT SET ON PARAMETER platform.exact_scan_limit TO platform_regress_app;
SET ROLE platform_regress_app;
SELECT * FROM regress.error_of($$SET platform.exact_scan_limit = 1$$);
SELECT platform_exact_scan_limit();
RESET platform.exact_scan_limit;
RESET ROLE;
REVOKE SET ON PARAMETER platform.exact_scan_limit FROM platform_regress_app;
