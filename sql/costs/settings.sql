-- What the cost functions read from a tenant's settings and from their
-- arguments, checked in one place.

-- The services cost_events accepts (its CHECK constraint in tables.sql).
CREATE OR REPLACE FUNCTION platform_cost_services() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT '{vision,voice_stt,voice_tts,llm,embedding,livekit}'::text[] $$;

-- tenants.settings->>'timezone', UTC when absent or empty. Budget months and
-- cost_summary() buckets are aligned in this zone.
CREATE OR REPLACE FUNCTION platform_tenant_time_zone(settings jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT coalesce(nullif(settings->>'timezone', ''), 'UTC') $$;

-- The zone itself when PostgreSQL knows it; 22023 with a hint otherwise.
CREATE OR REPLACE FUNCTION platform_checked_time_zone(zone text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM now() AT TIME ZONE zone;
    RETURN zone;
EXCEPTION WHEN invalid_parameter_value OR null_value_not_allowed THEN
    RAISE EXCEPTION 'unknown time zone %', coalesce(quote_literal(zone), 'NULL')
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Use an IANA zone name such as ''Europe/Berlin'' or ''Asia/Kolkata'' (see pg_timezone_names).';
END
$$;

-- tenants.settings.maxMonthlySpend in USD; NULL (no budget) when absent or
-- not a positive JSON number.
CREATE OR REPLACE FUNCTION platform_budget_limit(settings jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN jsonb_typeof(settings->'maxMonthlySpend') = 'number'
                 AND (settings->>'maxMonthlySpend')::numeric > 0
                THEN (settings->>'maxMonthlySpend')::numeric END
$$;

-- tenants.settings.budgetAlertThresholds: percents of the monthly limit at
-- which an alert fires, default 50, 80 and 100. Entries that are not numbers
-- between 0 (exclusive) and 1000 are ignored rather than failing every write.
-- PL/pgSQL, not SQL: a SQL function with a sub-SELECT is not inlined and
-- would be planned again on every call, and the cost triggers call it often.
CREATE OR REPLACE FUNCTION platform_budget_thresholds(settings jsonb) RETURNS numeric[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(settings->'budgetAlertThresholds') IS DISTINCT FROM 'array' THEN
        RETURN '{50,80,100}';
    END IF;
    RETURN ARRAY(SELECT DISTINCT round(t::text::numeric, 2)
                 FROM jsonb_array_elements(settings->'budgetAlertThresholds') t
                 WHERE jsonb_typeof(t) = 'number'
                   AND t::text::numeric > 0 AND t::text::numeric <= 1000
                 ORDER BY 1);
END
$$;
