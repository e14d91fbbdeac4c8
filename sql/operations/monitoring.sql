-- The document's monitoring queries, as views and a function. They show
-- every session's queries, so they are not granted to anybody: grant them to
-- an operations role (pg_monitor members see other users' query texts).

CREATE OR REPLACE VIEW platform_active_queries AS
SELECT pid, usename, datname, now() - query_start AS duration, state, wait_event_type, query
FROM pg_stat_activity
WHERE state = 'active' AND pid <> pg_backend_pid()
ORDER BY duration DESC;

CREATE OR REPLACE VIEW platform_index_usage AS
SELECT schemaname, relname AS tablename, indexrelname AS indexname,
       idx_scan, idx_tup_read, idx_tup_fetch,
       pg_relation_size(indexrelid) AS size_bytes
FROM pg_stat_user_indexes
ORDER BY idx_scan ASC, size_bytes DESC;

-- Slowest statements by mean time, from pg_stat_statements when it is
-- installed (it needs shared_preload_libraries); otherwise a notice that
-- says so and no rows, never an error.
CREATE OR REPLACE FUNCTION platform_slow_queries(max_rows integer DEFAULT 10)
RETURNS TABLE (calls bigint, mean_exec_time double precision, max_exec_time double precision, query text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    view_name regclass := to_regclass('pg_stat_statements');
BEGIN
    IF max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'max_rows must be at least 1, got %', coalesce(max_rows::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example: SELECT * FROM platform_slow_queries(10);';
    END IF;
    IF view_name IS NULL THEN
        -- to_regclass looks along search_path; the extension may live anywhere.
        SELECT format('%I.pg_stat_statements', n.nspname)::regclass INTO view_name
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'pg_stat_statements';
    END IF;
    IF view_name IS NULL THEN
        RAISE NOTICE 'pg_stat_statements is not installed: no statement statistics'
            USING HINT = 'Add pg_stat_statements to shared_preload_libraries, restart, then CREATE EXTENSION pg_stat_statements.';
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT calls, mean_exec_time, max_exec_time, query FROM %s
         ORDER BY mean_exec_time DESC LIMIT $1', view_name)
    USING max_rows;
END
$$;
