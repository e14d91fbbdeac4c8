--
-- Coverage, last in the schedule: was every public function of the
-- extension called by the tests before this one? Public means every member
-- function not named platform_*, plus the platform_* functions documented
-- for operators. scripts/regress.sh sets track_functions = 'all' for this
-- database, so pg_stat_user_functions counts every call, by any role (the
-- tests call the application's functions as platform_regress_app). A new
-- public function shows up here as not called until a test calls it. (A
-- call counts only if it ends without an error, and a SQL function the
-- planner inlines is never counted: see platform_tenant_tables in
-- operations.sql.)
--

-- A backend's counts reach pg_stat_user_functions when it exits, before it
-- leaves pg_stat_activity: wait until the earlier tests' sessions are gone.
DO $$
BEGIN
    FOR attempt IN 1 .. 200 LOOP
        PERFORM pg_stat_clear_snapshot();
        EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity
                              WHERE datname = current_database() AND pid <> pg_backend_pid()
                                AND backend_type = 'client backend');
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;

SELECT p.oid::regprocedure AS function,
       p.prosecdef AS security_definer,
       has_function_privilege('platform_regress_app', p.oid, 'EXECUTE') AS app_may_call,
       coalesce(s.calls, 0) > 0 AS called
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'platform'
LEFT JOIN pg_stat_user_functions s ON s.funcid = p.oid
-- The extension's own schema: a pgrx test build also installs a schema
-- "tests" of its in-backend tests.
WHERE p.pronamespace = e.extnamespace
  AND (p.proname NOT LIKE 'platform\_%'
   OR p.proname IN ('platform_audit', 'platform_slow_queries', 'platform_tenant_tables',
                    'platform_verify_cost_rollups', 'platform_rebuild_cost_rollups'))
ORDER BY p.proname::text;

-- The extension's views and tables, for the same reason: a new one shows
-- up here.
SELECT c.relname, c.relkind, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
       has_table_privilege('platform_regress_app', c.oid, 'SELECT') AS app_may_read
FROM pg_class c
JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'platform'
WHERE c.relnamespace = e.extnamespace
ORDER BY c.relname::text;
