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

-- The budget periods, shortest first: a day, a week (Monday to Sunday, as
-- cost_summary's weeks) and a month, each on the tenant's calendar in its zone.
CREATE OR REPLACE FUNCTION platform_budget_periods() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT '{daily,weekly,monthly}'::text[] $$;

-- The settings key of each period's limit: maxMonthlySpend is the design
-- document's, the other two follow its name.
CREATE OR REPLACE FUNCTION platform_budget_limit_key(period text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE period WHEN 'daily' THEN 'maxDailySpend' WHEN 'weekly' THEN 'maxWeeklySpend'
                       WHEN 'monthly' THEN 'maxMonthlySpend' END
$$;

-- A period's limit in USD from settings (a tenant's); NULL (no budget for
-- that period) when absent or not a positive JSON number. Writes of
-- settings refuse anything else (platform_budget_settings_checked), but
-- rows written before 0.3.0 may still hold it, and must not fail every
-- cost write.
CREATE OR REPLACE FUNCTION platform_budget_limit(settings jsonb, period text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN jsonb_typeof(settings->platform_budget_limit_key(period)) = 'number'
                 AND (settings->>platform_budget_limit_key(period))::numeric > 0
                THEN (settings->>platform_budget_limit_key(period))::numeric END
$$;

-- The monthly limit (settings.maxMonthlySpend), as 0.2.0 read it.
CREATE OR REPLACE FUNCTION platform_budget_limit(settings jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT platform_budget_limit(settings, 'monthly') $$;

-- Whether a period's limit is a hard cap (settings.hardSpendLimits lists
-- it): reserve_spend() refuses what would pass it. Other limits only alert.
CREATE OR REPLACE FUNCTION platform_budget_is_hard(settings jsonb, period text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(jsonb_typeof(settings->'hardSpendLimits') = 'array'
                    AND settings->'hardSpendLimits' ? period, false)
$$;

-- Whether settings configure a daily or weekly limit: the cost triggers
-- look at those periods only then, so a tenant with a monthly budget alone
-- pays for nothing more than in 0.2.0.
CREATE OR REPLACE FUNCTION platform_has_short_budgets(settings jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT coalesce(settings ?| '{maxDailySpend,maxWeeklySpend}', false) $$;

-- The period of `period` that holds the instant `at`, in `zone`: its first
-- instant and the first instant of the next one (local midnights).
-- PL/pgSQL: a SQL function with OUT columns is never inlined, so it would
-- be parsed and planned on every call (reserve_spend() calls it per cap).
CREATE OR REPLACE FUNCTION platform_budget_period_bounds(
    period text, at timestamptz, zone text, OUT starts timestamptz, OUT ends timestamptz)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    unit constant text := CASE period WHEN 'daily' THEN 'day' WHEN 'weekly' THEN 'week' ELSE 'month' END;
BEGIN
    starts := date_trunc(unit, at, zone);
    ends := (date_trunc(unit, at AT TIME ZONE zone)
             + CASE period WHEN 'daily' THEN interval '1 day' WHEN 'weekly' THEN interval '1 week'
                           ELSE interval '1 month' END) AT TIME ZONE zone;
END
$$;

-- Refuses budget settings that would not mean what they say, on the keys a
-- write changes (a row written before 0.3.0 keeps working until its
-- budget is touched): a limit that is not a positive JSON number (JSON null
-- removes it), and hard limits that name no period.
CREATE OR REPLACE FUNCTION platform_check_budget_settings(new_settings jsonb, old_settings jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    period text;
    key text;
    value jsonb;
BEGIN
    FOREACH period IN ARRAY platform_budget_periods() LOOP
        key := platform_budget_limit_key(period);
        value := new_settings->key;
        IF value IS DISTINCT FROM old_settings->key AND value IS NOT NULL
           AND jsonb_typeof(value) <> 'null'
           AND (jsonb_typeof(value) <> 'number' OR (value #>> '{}')::numeric <= 0) THEN
            RAISE EXCEPTION 'settings.% must be a positive number of US dollars, got %', key, left(value::text, 64)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = format('For example {"%s": 25}; remove the key (or set it to null) for no %s budget.',
                                    key, period);
        END IF;
    END LOOP;
    value := new_settings->'hardSpendLimits';
    IF value IS DISTINCT FROM old_settings->'hardSpendLimits' AND value IS NOT NULL
       AND jsonb_typeof(value) <> 'null'
       AND (jsonb_typeof(value) <> 'array'
            OR EXISTS (SELECT FROM jsonb_array_elements(value) e
                       WHERE jsonb_typeof(e) <> 'string' OR NOT (e #>> '{}') = ANY (platform_budget_periods()))) THEN
        RAISE EXCEPTION 'settings.hardSpendLimits must be an array of budget periods, got %', left(value::text, 64)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The periods are daily, weekly and monthly, for example {"hardSpendLimits": ["daily", "monthly"]}; each needs its limit (maxDailySpend, maxWeeklySpend, maxMonthlySpend).';
    END IF;
END
$$;

-- tenants.settings.budgetAlertThresholds: percents of each period's limit at
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

-- A widget's budgets (widgets.settings: the same keys as a tenant's,
-- maxDailySpend, maxWeeklySpend, maxMonthlySpend, hardSpendLimits,
-- budgetAlertThresholds) as settings the budget functions read: its own
-- limits and hard caps, its thresholds or else the tenant's, and the
-- tenant's zone, since a widget's periods are its tenant's calendar.
-- PL/pgSQL: jsonb_build_object() is only stable, so a SQL function
-- declared immutable around it is never inlined and would be planned on
-- every call (reserve_spend() and a widget's cost writes call it).
CREATE OR REPLACE FUNCTION platform_widget_budget_settings(widget_settings jsonb, tenant_settings jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN jsonb_strip_nulls(jsonb_build_object(
               'timezone', tenant_settings->'timezone',
               'maxDailySpend', widget_settings->'maxDailySpend',
               'maxWeeklySpend', widget_settings->'maxWeeklySpend',
               'maxMonthlySpend', widget_settings->'maxMonthlySpend',
               'hardSpendLimits', widget_settings->'hardSpendLimits',
               'budgetAlertThresholds', coalesce(widget_settings->'budgetAlertThresholds',
                                                 tenant_settings->'budgetAlertThresholds')));
END
$$;

-- The budget settings (as above) of `widget`, one of `tenant`'s widgets named
-- by a caller of budget_status() or reserve_spend(); P0002 with `hint` when
-- the tenant has no such widget.
CREATE OR REPLACE FUNCTION platform_requested_widget_budget_settings(tenant uuid, widget uuid,
                                                                     tenant_settings jsonb, hint text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    settings jsonb;
BEGIN
    SELECT platform_widget_budget_settings(w.settings, tenant_settings) INTO settings
    FROM widgets w WHERE w.tenant_id = tenant AND w.id = widget;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no widget %', widget
            USING ERRCODE = 'no_data_found', HINT = coalesce(hint, 'Pass the id of one of the tenant''s widgets.');
    END IF;
    RETURN settings;
END
$$;
