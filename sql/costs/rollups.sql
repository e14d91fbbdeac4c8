-- Keeping cost_rollups_hourly and cost_budget_periods equal to what
-- cost_events says, in the same transaction as every change to it.
--
-- Statement-level AFTER triggers with transition tables: a statement's rows
-- are grouped first, so a batch of 1,000 events in one hour costs one upsert,
-- not 1,000. Every change is a delta (INSERT adds, DELETE subtracts, UPDATE
-- subtracts the old row and adds the new one), applied with INSERT ... ON
-- CONFLICT DO UPDATE SET x = x + delta: concurrent writers to the same row
-- queue on its lock and each adds to the committed value, so none is lost.
--
-- Lock order, against deadlocks: a statement locks its budget-period rows
-- first, then its hourly rows, each in key order. An hourly row belongs to
-- one budget month of its tenant, so whoever waits for an hourly row already
-- holds that month; transactions of one INSERT statement (record_cost_event,
-- a batch INSERT) therefore never deadlock. (An UPDATE applies its old and new
-- rows in two passes, so two UPDATEs moving events in opposite directions can.)
--
-- The late-event window (platform.cost_late_event_window, default 35 days,
-- superuser-only) refuses INSERTs of events older than now() minus the window,
-- so closed months (and their cost_summaries) stay as reported. UPDATE and
-- DELETE are corrections and apply at any age. A restore or a superuser's
-- backfill (platform_replaying()) is not held to the window and fires no
-- budget alerts: it replays history, it does not happen now.
--
-- Per tenant only: every statement locks the rows of its events' tenants in
-- tenants FOR NO KEY UPDATE before anything else (in key order). The cost
-- writers of one tenant therefore take turns, as they did on the budget
-- month's row in 0.2.0, so each sees every period's spend (a day, a week
-- across two months, a month) final while it compares it with the
-- thresholds, and reserve_spend() sees it final while it checks a hard cap.
-- A change of a tenant's time zone (which holds that row while it
-- recomputes the tenant's budget months) waits for the tenant's writers in
-- flight and holds off new ones. Nobody else waits: foreign keys to tenants
-- take FOR KEY SHARE, which this lock leaves alone.

-- The deltas are platform_cost_delta values (schema/tables.sql).

-- A restore (pg_dump's scripts set row_security = off) or a superuser's
-- backfill: a superuser session with row_security off. The login role is
-- what a statement cannot change; row_security alone any session may set,
-- even from inside the statement that writes the events.
-- PL/pgSQL, not SQL: every cost statement asks, and a SQL function with a
-- sub-SELECT is planned again on every call; this one answers from the
-- setting alone unless row_security is off, and caches its one query.
CREATE OR REPLACE FUNCTION platform_replaying() RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('row_security') <> 'off' THEN
        RETURN false;
    END IF;
    RETURN coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user), false);
END
$$;

-- A month's spend per local day as cost_budget_periods keeps it: 31
-- entries, day d at index d, zero where nothing was spent (a day outside 1
-- to 31, or a NULL amount, adds nothing). PL/pgSQL loops, not a query over
-- the arguments: a SQL function with a sub-SELECT is planned again on every
-- call, and a widget's cost write calls this and the next one.
CREATE OR REPLACE FUNCTION platform_daily_spend(days integer[], amounts numeric[]) RETURNS numeric[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    spend numeric[] := array_fill(0::numeric, ARRAY[31]);
BEGIN
    FOR i IN 1 .. coalesce(cardinality(days), 0) LOOP
        IF days[i] BETWEEN 1 AND 31 AND amounts[i] IS NOT NULL THEN
            spend[days[i]] := spend[days[i]] + amounts[i];
        END IF;
    END LOOP;
    RETURN spend;
END
$$;

-- Two such arrays added day by day.
CREATE OR REPLACE FUNCTION platform_add_daily_spend(a numeric[], b numeric[]) RETURNS numeric[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    spend numeric[] := '{}';
BEGIN
    FOR i IN 1 .. 31 LOOP
        spend[i] := a[i] + b[i];
    END LOOP;
    RETURN spend;
END
$$;

-- Adds one widget's spend in one budget month (`costs` on the local `days`
-- of the month, `events` events; negative to take them away) to
-- cost_widget_budget_periods, deletes the row when no event is left, and
-- fires the alerts of the widget's budgets that added spend made cross a
-- threshold. Called by the cost triggers, which hold the tenant's row, so
-- every crossing is seen by one writer, as for the tenant's budgets. A
-- widget's week that spans two months is checked once per month the
-- statement touched, each time against the spend so far: every crossing is
-- still seen exactly once. Runs under the trigger's rights, like
-- platform_apply_cost_deltas().
CREATE OR REPLACE FUNCTION platform_apply_widget_spend(
    tenant uuid, widget uuid, month_start timestamptz, days integer[], costs numeric[], events bigint,
    tenant_settings jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    added constant numeric := (SELECT sum(c) FROM unnest(costs) c);
    zone constant text := platform_tenant_time_zone(tenant_settings);
    settings jsonb;
    row_id tid;
    spend numeric;
    left_events bigint;
BEGIN
    INSERT INTO cost_widget_budget_periods AS p (tenant_id, widget_id, period_start, spend, event_count, daily_spend)
    VALUES (tenant, widget, month_start, added, events, platform_daily_spend(days, costs))
    ON CONFLICT (tenant_id, widget_id, period_start) DO UPDATE
        SET spend = p.spend + excluded.spend,
            event_count = p.event_count + excluded.event_count,
            daily_spend = platform_add_daily_spend(p.daily_spend, excluded.daily_spend)
    RETURNING p.ctid, p.spend, p.event_count INTO row_id, spend, left_events;
    IF left_events = 0 THEN
        DELETE FROM cost_widget_budget_periods WHERE ctid = row_id;
        RETURN;
    END IF;
    IF added <= 0 OR platform_replaying() THEN
        RETURN;
    END IF;
    SELECT platform_widget_budget_settings(w.settings, tenant_settings) INTO settings
    FROM widgets w WHERE w.tenant_id = tenant AND w.id = widget;
    IF settings IS NULL THEN
        RETURN;  -- the widget is being deleted (its events lose it)
    END IF;
    IF platform_budget_crossed(spend - added, spend, settings, 'monthly') THEN
        PERFORM platform_fire_budget_alerts(tenant, widget, 'monthly', month_start, spend, settings);
    END IF;
    IF platform_has_short_budgets(settings) THEN
        PERFORM platform_check_short_budgets(
            tenant, widget, settings,
            ARRAY(SELECT (month_start AT TIME ZONE zone)::date + (d - 1) FROM unnest(days) d),
            costs);
    END IF;
END
$$;

-- Adds sign x deltas to both tables, then fires the budget alerts whose
-- threshold the new spend crossed. Called by the trigger function below,
-- whose owner rights and search_path it runs under (no SECURITY DEFINER or
-- SET of its own: both cost time on every statement); not executable by
-- PUBLIC, and useless to anyone without privileges on the two tables.
CREATE OR REPLACE FUNCTION platform_apply_cost_deltas(deltas platform_cost_delta[], sign integer)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    zeroed tid[];
    grown record;
    replaying constant boolean := platform_replaying();
BEGIN
    -- Budget months first (see the lock order above).
    FOR grown IN
        WITH per_day AS (
            SELECT d.tenant_id, d.month_start, d.day_of_month, sign * sum(d.cost) AS cost,
                   sign * sum(d.events) AS events
            FROM unnest(deltas) d
            GROUP BY d.tenant_id, d.month_start, d.day_of_month
        ), changed AS (
            SELECT c.tenant_id, c.month_start, sum(c.cost) AS cost, sum(c.events) AS events,
                   array_agg(c.day_of_month) AS days, array_agg(c.cost) AS day_costs
            FROM per_day c
            GROUP BY c.tenant_id, c.month_start
        ), upserted AS (
            INSERT INTO cost_budget_periods AS p (tenant_id, period_start, spend, event_count, daily_spend)
            SELECT c.tenant_id, c.month_start, c.cost, c.events, platform_daily_spend(c.days, c.day_costs)
            FROM changed c
            ORDER BY c.tenant_id, c.month_start
            ON CONFLICT (tenant_id, period_start) DO UPDATE
                SET spend = p.spend + excluded.spend,
                    event_count = p.event_count + excluded.event_count,
                    daily_spend = platform_add_daily_spend(p.daily_spend, excluded.daily_spend)
            RETURNING p.ctid AS row_id, p.tenant_id, p.period_start, p.spend, p.event_count
        )
        SELECT u.*, c.cost AS delta, t.settings
        FROM upserted u
        JOIN changed c ON c.tenant_id = u.tenant_id AND c.month_start = u.period_start
        JOIN tenants t ON t.id = u.tenant_id
        ORDER BY u.tenant_id, u.period_start
    LOOP
        IF grown.event_count = 0 THEN
            DELETE FROM cost_budget_periods WHERE ctid = grown.row_id;
        ELSIF NOT replaying AND sign > 0 THEN
            -- Under the tenant's lock: no other writer saw these crossings.
            IF platform_budget_crossed(grown.spend - grown.delta, grown.spend, grown.settings, 'monthly') THEN
                PERFORM platform_fire_budget_alerts(grown.tenant_id, NULL, 'monthly', grown.period_start,
                                                    grown.spend, grown.settings);
            END IF;
        END IF;
    END LOOP;
    -- Days and weeks, with the statement's days of each tenant together (a
    -- week can span two months).
    IF sign > 0 AND NOT replaying THEN
        FOR grown IN
            SELECT d.tenant_id, t.settings, array_agg(d.day) AS days, array_agg(d.cost) AS costs
            FROM (SELECT x.tenant_id, x.month_start, x.day_of_month, sum(x.cost) AS cost
                  FROM unnest(deltas) x GROUP BY 1, 2, 3) s
            JOIN tenants t ON t.id = s.tenant_id AND platform_has_short_budgets(t.settings)
            CROSS JOIN LATERAL (SELECT s.tenant_id,
                                       (s.month_start AT TIME ZONE platform_tenant_time_zone(t.settings))::date
                                           + (s.day_of_month - 1) AS day,
                                       s.cost) d
            GROUP BY d.tenant_id, t.settings
            ORDER BY d.tenant_id
        LOOP
            PERFORM platform_check_short_budgets(grown.tenant_id, NULL, grown.settings, grown.days, grown.costs);
        END LOOP;
    END IF;
    -- Widget budget months, after the tenant's (the lock order above), one
    -- call per widget and month; none for a statement without widgets.
    FOR grown IN
        SELECT d.tenant_id, d.widget_id, d.month_start, array_agg(d.day_of_month) AS days,
               array_agg(d.cost) AS costs, sum(d.events)::bigint AS events, t.settings
        FROM (SELECT x.tenant_id, x.widget_id, x.month_start, x.day_of_month,
                     sign * sum(x.cost) AS cost, sign * sum(x.events) AS events
              FROM unnest(deltas) x WHERE x.widget_id IS NOT NULL
              GROUP BY 1, 2, 3, 4) d
        JOIN tenants t ON t.id = d.tenant_id
        GROUP BY d.tenant_id, d.widget_id, d.month_start, t.settings
        ORDER BY d.tenant_id, d.widget_id, d.month_start
    LOOP
        PERFORM platform_apply_widget_spend(grown.tenant_id, grown.widget_id, grown.month_start,
                                            grown.days, grown.costs, grown.events, grown.settings);
    END LOOP;

    WITH changed AS (
        SELECT d.tenant_id, d.hour, d.service, d.provider, d.model,
               sign * sum(d.cost) AS cost, sign * sum(d.tokens) AS tokens,
               sign * sum(d.token_events) AS token_events, sign * sum(d.events) AS events
        FROM unnest(deltas) d
        GROUP BY d.tenant_id, d.hour, d.service, d.provider, d.model
    ), upserted AS (
        INSERT INTO cost_rollups_hourly AS r
            (tenant_id, hour, service, provider, model,
             total_cost_usd, total_tokens, token_events, event_count)
        SELECT * FROM changed c
        ORDER BY c.tenant_id, c.hour, c.service, c.provider, c.model
        ON CONFLICT (tenant_id, hour, service, provider, model) DO UPDATE
            SET total_cost_usd = r.total_cost_usd + excluded.total_cost_usd,
                total_tokens = r.total_tokens + excluded.total_tokens,
                token_events = r.token_events + excluded.token_events,
                event_count = r.event_count + excluded.event_count
        RETURNING r.ctid AS row_id, r.event_count
    )
    SELECT array_agg(row_id) FILTER (WHERE event_count = 0) INTO zeroed FROM upserted;
    IF zeroed IS NOT NULL THEN
        DELETE FROM cost_rollups_hourly WHERE ctid = ANY (zeroed);
    END IF;
END
$$;

-- The deltas join tenants (for the zone of the budget month), which also
-- leaves out the rows of a tenant being deleted: its cascade removes the
-- rollups, and a delta for it would resurrect them.
--
-- One trigger function for the three triggers below; each declares the
-- transition tables its command has (INSERT: new_rows, DELETE: old_rows,
-- UPDATE: both), and a branch only names the ones it is given. The grouping
-- query is written twice, once per transition table: a transition table is
-- visible only to queries of the trigger function itself, and passing whole
-- rows on to a shared function would hold a large statement's rows in memory.
CREATE OR REPLACE FUNCTION platform_cost_events_changed() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    late_window constant interval := platform_late_event_window();
    replaying constant boolean := platform_replaying();
    oldest timestamptz;
    inserted bigint;
    one record;
    spend numeric;
BEGIN
    -- The events' tenants, in key order (see the lock order above).
    IF TG_OP = 'DELETE' THEN
        PERFORM FROM tenants t WHERE t.id IN (SELECT e.tenant_id FROM old_rows e) ORDER BY t.id FOR NO KEY UPDATE;
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM FROM tenants t
        WHERE t.id IN (SELECT e.tenant_id FROM old_rows e UNION SELECT e.tenant_id FROM new_rows e)
        ORDER BY t.id FOR NO KEY UPDATE;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT min("timestamp"), count(*) INTO oldest, inserted FROM new_rows;
        IF late_window IS NOT NULL AND NOT replaying AND oldest < now() - late_window THEN
            RAISE EXCEPTION 'cost event at % is older than the late-event window of %',
                    oldest, late_window
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Closed periods stay as reported. To import history, an operator connects as a superuser and runs BEGIN; SET LOCAL row_security = off; INSERT INTO cost_events (tenant_id, service, cost_usd, "timestamp", ...) VALUES (...); COMMIT; budgets count the events, no alerts fire for them (docs/costs.md, Late events).';
        END IF;
        IF inserted = 1 THEN
            -- One event (record_cost_event, a single-row INSERT): the same two
            -- upserts as platform_apply_cost_deltas(), in the same order, without
            -- building and grouping a set, which halves the cost per statement.
            SELECT e.tenant_id, date_trunc('hour', e."timestamp", 'UTC') AS hour,
                   date_trunc('month', e."timestamp", platform_tenant_time_zone(t.settings)) AS month_start,
                   extract(day FROM e."timestamp" AT TIME ZONE platform_tenant_time_zone(t.settings))::int AS day,
                   platform_tenant_time_zone(t.settings) AS zone, e.service, e.provider, e.metadata->>'model' AS model, e.cost_usd,
                   e.tokens_used, t.settings, e.widget_id
            INTO one FROM new_rows e JOIN tenants t ON t.id = e.tenant_id FOR NO KEY UPDATE OF t;
            INSERT INTO cost_budget_periods AS p (tenant_id, period_start, spend, event_count, daily_spend)
            VALUES (one.tenant_id, one.month_start, one.cost_usd, 1,
                    array_fill(0::numeric, ARRAY[one.day - 1]) || one.cost_usd
                    || array_fill(0::numeric, ARRAY[31 - one.day]))
            ON CONFLICT (tenant_id, period_start) DO UPDATE
                SET spend = p.spend + excluded.spend, event_count = p.event_count + 1,
                    daily_spend[one.day] = p.daily_spend[one.day] + excluded.spend
            RETURNING p.spend INTO spend;
            IF NOT replaying THEN
                IF platform_budget_crossed(spend - one.cost_usd, spend, one.settings, 'monthly') THEN
                    PERFORM platform_fire_budget_alerts(one.tenant_id, NULL, 'monthly', one.month_start, spend,
                                                        one.settings);
                END IF;
                IF platform_has_short_budgets(one.settings) THEN
                    PERFORM platform_check_short_budgets(one.tenant_id, NULL, one.settings,
                                                         ARRAY[(one.month_start AT TIME ZONE one.zone)::date + (one.day - 1)],
                                                         ARRAY[one.cost_usd]);
                END IF;
            END IF;
            IF one.widget_id IS NOT NULL THEN
                PERFORM platform_apply_widget_spend(one.tenant_id, one.widget_id, one.month_start,
                                                    ARRAY[one.day], ARRAY[one.cost_usd], 1, one.settings);
            END IF;
            INSERT INTO cost_rollups_hourly AS r
                (tenant_id, hour, service, provider, model,
                 total_cost_usd, total_tokens, token_events, event_count)
            VALUES (one.tenant_id, one.hour, one.service, one.provider, one.model, one.cost_usd,
                    coalesce(one.tokens_used, 0), (one.tokens_used IS NOT NULL)::int, 1)
            ON CONFLICT (tenant_id, hour, service, provider, model) DO UPDATE
                SET total_cost_usd = r.total_cost_usd + excluded.total_cost_usd,
                    total_tokens = r.total_tokens + excluded.total_tokens,
                    token_events = r.token_events + excluded.token_events,
                    event_count = r.event_count + 1;
            RETURN NULL;
        END IF;
        PERFORM FROM tenants t WHERE t.id IN (SELECT e.tenant_id FROM new_rows e) ORDER BY t.id FOR NO KEY UPDATE;
    ELSE
        PERFORM platform_apply_cost_deltas(ARRAY(
            SELECT d::platform_cost_delta FROM (
                SELECT e.tenant_id, date_trunc('hour', e."timestamp", 'UTC'),
                       date_trunc('month', e."timestamp", platform_tenant_time_zone(t.settings)),
                       e.service, e.provider, e.metadata->>'model', sum(e.cost_usd),
                       coalesce(sum(e.tokens_used), 0), count(e.tokens_used), count(*),
                       extract(day FROM e."timestamp" AT TIME ZONE platform_tenant_time_zone(t.settings))::int,
                       e.widget_id
                FROM old_rows e JOIN tenants t ON t.id = e.tenant_id
                GROUP BY 1, 2, 3, 4, 5, 6, 11, 12) d), -1);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM platform_apply_cost_deltas(ARRAY(
            SELECT d::platform_cost_delta FROM (
                SELECT e.tenant_id, date_trunc('hour', e."timestamp", 'UTC'),
                       date_trunc('month', e."timestamp", platform_tenant_time_zone(t.settings)),
                       e.service, e.provider, e.metadata->>'model', sum(e.cost_usd),
                       coalesce(sum(e.tokens_used), 0), count(e.tokens_used), count(*),
                       extract(day FROM e."timestamp" AT TIME ZONE platform_tenant_time_zone(t.settings))::int,
                       e.widget_id
                FROM new_rows e JOIN tenants t ON t.id = e.tenant_id
                GROUP BY 1, 2, 3, 4, 5, 6, 11, 12) d), 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER cost_events_rollup_insert AFTER INSERT ON cost_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION platform_cost_events_changed();
CREATE OR REPLACE TRIGGER cost_events_rollup_update AFTER UPDATE ON cost_events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION platform_cost_events_changed();
CREATE OR REPLACE TRIGGER cost_events_rollup_delete AFTER DELETE ON cost_events
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION platform_cost_events_changed();

-- What both tables must hold, computed from cost_events alone: the reference
-- for platform_verify_cost_rollups() and the source of platform_rebuild_cost_rollups().
CREATE OR REPLACE FUNCTION platform_cost_rollups_expected(
    tenant uuid DEFAULT NULL, OUT tenant_id uuid, OUT hour timestamptz, OUT service text, OUT provider text,
    OUT model text, OUT total_cost_usd numeric, OUT total_tokens bigint,
    OUT token_events bigint, OUT event_count bigint)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT e.tenant_id, date_trunc('hour', e."timestamp", 'UTC'), e.service, e.provider,
           e.metadata->>'model', sum(e.cost_usd), coalesce(sum(e.tokens_used), 0),
           count(e.tokens_used), count(*)
    FROM cost_events e
    WHERE tenant IS NULL OR e.tenant_id = tenant
    GROUP BY 1, 2, 3, 4, 5
$$;

CREATE OR REPLACE FUNCTION platform_cost_budget_periods_expected(
    tenant uuid DEFAULT NULL, OUT tenant_id uuid, OUT period_start timestamptz, OUT spend numeric,
    OUT event_count bigint, OUT daily_spend numeric[])
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT d.tenant_id, d.month_start, sum(d.spend), sum(d.events)::bigint,
           platform_daily_spend(array_agg(d.day), array_agg(d.spend))
    FROM (SELECT e.tenant_id, date_trunc('month', e."timestamp", platform_tenant_time_zone(t.settings)) AS month_start,
                 extract(day FROM e."timestamp" AT TIME ZONE platform_tenant_time_zone(t.settings))::int AS day,
                 sum(e.cost_usd) AS spend, count(*) AS events
          FROM cost_events e JOIN tenants t ON t.id = e.tenant_id
          WHERE tenant IS NULL OR e.tenant_id = tenant
          GROUP BY 1, 2, 3) d
    GROUP BY 1, 2
$$;

-- The widget budget months cost_events imply: its events with a widget, per
-- tenant, widget and budget month (in the tenant's zone), with their days.
CREATE OR REPLACE FUNCTION platform_cost_widget_budget_periods_expected(
    tenant uuid DEFAULT NULL, OUT tenant_id uuid, OUT widget_id uuid, OUT period_start timestamptz,
    OUT spend numeric, OUT event_count bigint, OUT daily_spend numeric[])
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT d.tenant_id, d.widget_id, d.month_start, sum(d.spend), sum(d.events)::bigint,
           platform_daily_spend(array_agg(d.day), array_agg(d.spend))
    FROM (SELECT e.tenant_id, e.widget_id,
                 date_trunc('month', e."timestamp", platform_tenant_time_zone(t.settings)) AS month_start,
                 extract(day FROM e."timestamp" AT TIME ZONE platform_tenant_time_zone(t.settings))::int AS day,
                 sum(e.cost_usd) AS spend, count(*) AS events
          FROM cost_events e JOIN tenants t ON t.id = e.tenant_id
          WHERE (tenant IS NULL OR e.tenant_id = tenant) AND e.widget_id IS NOT NULL
          GROUP BY 1, 2, 3, 4) d
    GROUP BY 1, 2, 3
$$;

-- Every difference between the three derived tables and cost_events, across
-- all tenants (an operator's function: not executable by PUBLIC). No rows
-- means the rollups are exact. widget_id names the widget of a widget
-- budget month or day.
CREATE OR REPLACE FUNCTION platform_verify_cost_rollups()
RETURNS TABLE (kind text, tenant_id uuid, bucket timestamptz, service text,
               provider text, model text, expected_cost_usd numeric, actual_cost_usd numeric,
               expected_events bigint, actual_events bigint,
               expected_tokens bigint, actual_tokens bigint, widget_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT 'hourly rollup', coalesce(x.tenant_id, r.tenant_id), coalesce(x.hour, r.hour),
           coalesce(x.service, r.service), coalesce(x.provider, r.provider),
           coalesce(x.model, r.model), x.total_cost_usd, r.total_cost_usd,
           x.event_count, r.event_count, x.total_tokens, r.total_tokens, NULL::uuid
    FROM platform_cost_rollups_expected() x
    FULL JOIN cost_rollups_hourly r
      ON r.tenant_id = x.tenant_id AND r.hour = x.hour AND r.service = x.service
     AND r.provider IS NOT DISTINCT FROM x.provider AND r.model IS NOT DISTINCT FROM x.model
    WHERE (x.total_cost_usd, x.total_tokens, x.token_events, x.event_count)
          IS DISTINCT FROM (r.total_cost_usd, r.total_tokens, r.token_events, r.event_count)
    UNION ALL
    SELECT 'budget month', coalesce(x.tenant_id, p.tenant_id), coalesce(x.period_start, p.period_start),
           NULL, NULL, NULL, x.spend, p.spend, x.event_count, p.event_count, NULL, NULL, NULL
    FROM platform_cost_budget_periods_expected() x
    FULL JOIN cost_budget_periods p
      ON p.tenant_id = x.tenant_id AND p.period_start = x.period_start
    WHERE (x.spend, x.event_count) IS DISTINCT FROM (p.spend, p.event_count)
    UNION ALL
    -- A day of a month whose total is right but whose days are not.
    SELECT 'budget day', x.tenant_id, x.period_start + (i - 1) * interval '1 day',
           NULL, NULL, NULL, x.daily_spend[i], p.daily_spend[i], NULL, NULL, NULL, NULL, NULL
    FROM platform_cost_budget_periods_expected() x
    JOIN cost_budget_periods p ON p.tenant_id = x.tenant_id AND p.period_start = x.period_start
    CROSS JOIN generate_series(1, 31) AS i
    WHERE x.daily_spend[i] IS DISTINCT FROM p.daily_spend[i] OR cardinality(p.daily_spend) <> 31
    UNION ALL
    SELECT 'widget budget month', coalesce(x.tenant_id, p.tenant_id), coalesce(x.period_start, p.period_start),
           NULL, NULL, NULL, x.spend, p.spend, x.event_count, p.event_count, NULL, NULL,
           coalesce(x.widget_id, p.widget_id)
    FROM platform_cost_widget_budget_periods_expected() x
    FULL JOIN cost_widget_budget_periods p
      ON p.tenant_id = x.tenant_id AND p.widget_id = x.widget_id AND p.period_start = x.period_start
    WHERE (x.spend, x.event_count) IS DISTINCT FROM (p.spend, p.event_count)
    UNION ALL
    SELECT 'widget budget day', x.tenant_id, x.period_start + (i - 1) * interval '1 day',
           NULL, NULL, NULL, x.daily_spend[i], p.daily_spend[i], NULL, NULL, NULL, NULL, x.widget_id
    FROM platform_cost_widget_budget_periods_expected() x
    JOIN cost_widget_budget_periods p
      ON p.tenant_id = x.tenant_id AND p.widget_id = x.widget_id AND p.period_start = x.period_start
    CROSS JOIN generate_series(1, 31) AS i
    WHERE x.daily_spend[i] IS DISTINCT FROM p.daily_spend[i] OR cardinality(p.daily_spend) <> 31
$$;
COMMENT ON FUNCTION platform_verify_cost_rollups() IS
    'Every difference between the cost rollups and cost_events; none on a healthy database.';

-- Recomputes both tables from cost_events (after a load with triggers
-- disabled, or if platform_verify_cost_rollups() ever reports a difference),
-- for one tenant or for all. It waits for, and holds off until commit, the
-- writers of cost events of the tenants it recomputes: for one tenant by
-- locking its row (which the cost triggers lock too), so no other
-- tenant waits; for all by a lock on the whole table.
CREATE OR REPLACE FUNCTION platform_rebuild_cost_rollups(tenant uuid DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    IF tenant IS NULL THEN
        LOCK TABLE cost_events IN SHARE MODE;
    ELSE
        PERFORM FROM tenants t WHERE t.id = tenant FOR NO KEY UPDATE;
    END IF;
    DELETE FROM cost_rollups_hourly r WHERE tenant IS NULL OR r.tenant_id = tenant;
    DELETE FROM cost_budget_periods p WHERE tenant IS NULL OR p.tenant_id = tenant;
    DELETE FROM cost_widget_budget_periods p WHERE tenant IS NULL OR p.tenant_id = tenant;
    INSERT INTO cost_rollups_hourly SELECT * FROM platform_cost_rollups_expected(tenant);
    INSERT INTO cost_budget_periods SELECT * FROM platform_cost_budget_periods_expected(tenant);
    INSERT INTO cost_widget_budget_periods SELECT * FROM platform_cost_widget_budget_periods_expected(tenant);
END
$$;

-- Fires now the alerts that the current periods' spend of the tenant's
-- budgets (of its widget `widget`, when not NULL) already reached under
-- `settings`: after a new limit or new thresholds, which no event will
-- cross any more.
CREATE OR REPLACE FUNCTION platform_fire_due_budget_alerts(tenant uuid, widget uuid, settings jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    zone constant text := platform_tenant_time_zone(settings);
    period text;
    starts timestamptz;
    spend numeric;
BEGIN
    FOREACH period IN ARRAY platform_budget_periods() LOOP
        CONTINUE WHEN platform_budget_limit(settings, period) IS NULL;
        starts := (platform_budget_period_bounds(period, now(), zone)).starts;
        spend := platform_budget_spend(tenant, widget, period, starts, zone);
        IF spend > 0 THEN
            PERFORM platform_fire_budget_alerts(tenant, widget, period, starts, spend, settings);
        END IF;
    END LOOP;
END
$$;

-- Settings that change what has been counted or what is due. A new time
-- zone moves the budget months and days: that tenant's are recomputed in
-- the new zone. A new limit or new thresholds can put the current period's
-- spend above a threshold no event will cross any more: that alert fires
-- now, for the tenant and for its widgets with budgets (whose periods
-- follow the tenant's zone and whose thresholds default to the tenant's).
CREATE OR REPLACE FUNCTION platform_tenant_cost_settings_changed() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    widget record;
BEGIN
    IF platform_tenant_time_zone(NEW.settings) IS DISTINCT FROM platform_tenant_time_zone(OLD.settings) THEN
        PERFORM platform_rebuild_cost_rollups(NEW.id);
    END IF;
    IF platform_replaying() THEN
        RETURN NULL;
    END IF;
    PERFORM platform_fire_due_budget_alerts(NEW.id, NULL, NEW.settings);
    FOR widget IN
        SELECT w.id, platform_widget_budget_settings(w.settings, NEW.settings) AS settings
        FROM widgets w
        WHERE w.tenant_id = NEW.id AND w.settings ?| '{maxDailySpend,maxWeeklySpend,maxMonthlySpend}'
        ORDER BY w.id
    LOOP
        PERFORM platform_fire_due_budget_alerts(NEW.id, widget.id, widget.settings);
    END LOOP;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER tenants_cost_settings_changed AFTER UPDATE OF settings ON tenants
    FOR EACH ROW
    WHEN (platform_tenant_time_zone(OLD.settings) IS DISTINCT FROM platform_tenant_time_zone(NEW.settings)
          OR OLD.settings->'maxDailySpend' IS DISTINCT FROM NEW.settings->'maxDailySpend'
          OR OLD.settings->'maxWeeklySpend' IS DISTINCT FROM NEW.settings->'maxWeeklySpend'
          OR platform_budget_limit(OLD.settings) IS DISTINCT FROM platform_budget_limit(NEW.settings)
          OR OLD.settings->'budgetAlertThresholds' IS DISTINCT FROM NEW.settings->'budgetAlertThresholds')
    EXECUTE FUNCTION platform_tenant_cost_settings_changed();

-- Budget settings that would not mean what they say are refused when they
-- are written (platform_check_budget_settings).
CREATE OR REPLACE FUNCTION platform_budget_settings_checked() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM platform_check_budget_settings(NEW.settings,
                                           CASE WHEN TG_OP = 'UPDATE' THEN OLD.settings END);
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER tenants_budget_settings_checked BEFORE INSERT OR UPDATE OF settings ON tenants
    FOR EACH ROW
    WHEN (NEW.settings ?| '{maxDailySpend,maxWeeklySpend,maxMonthlySpend,hardSpendLimits}')
    EXECUTE FUNCTION platform_budget_settings_checked();
-- A widget's budgets are the same keys in widgets.settings.
CREATE OR REPLACE TRIGGER widgets_budget_settings_checked BEFORE INSERT OR UPDATE OF settings ON widgets
    FOR EACH ROW
    WHEN (NEW.settings ?| '{maxDailySpend,maxWeeklySpend,maxMonthlySpend,hardSpendLimits}')
    EXECUTE FUNCTION platform_budget_settings_checked();

-- A widget's new limit or thresholds fire now what its current periods'
-- spend already reached. It takes the tenant's turn first (as the cost
-- writers do), so a writer either finished before and its spend is read
-- here, or starts after and compares with the new settings.
CREATE OR REPLACE FUNCTION platform_widget_cost_settings_changed() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    tenant_settings jsonb;
BEGIN
    IF platform_replaying() THEN
        RETURN NULL;
    END IF;
    SELECT t.settings INTO tenant_settings FROM tenants t WHERE t.id = NEW.tenant_id FOR NO KEY UPDATE;
    PERFORM platform_fire_due_budget_alerts(NEW.tenant_id, NEW.id,
                                            platform_widget_budget_settings(NEW.settings, tenant_settings));
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER widgets_cost_settings_changed AFTER UPDATE OF settings ON widgets
    FOR EACH ROW
    WHEN (OLD.settings->'maxDailySpend' IS DISTINCT FROM NEW.settings->'maxDailySpend'
          OR OLD.settings->'maxWeeklySpend' IS DISTINCT FROM NEW.settings->'maxWeeklySpend'
          OR OLD.settings->'maxMonthlySpend' IS DISTINCT FROM NEW.settings->'maxMonthlySpend'
          OR OLD.settings->'budgetAlertThresholds' IS DISTINCT FROM NEW.settings->'budgetAlertThresholds')
    EXECUTE FUNCTION platform_widget_cost_settings_changed();

-- A zone PostgreSQL does not know would make every cost write of the tenant
-- fail later (budget months are computed in it): refuse it when it is set.
CREATE OR REPLACE FUNCTION platform_tenant_time_zone_checked() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM platform_checked_time_zone(platform_tenant_time_zone(NEW.settings));
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER tenants_time_zone_checked BEFORE INSERT OR UPDATE OF settings ON tenants
    FOR EACH ROW WHEN (NEW.settings ? 'timezone')
    EXECUTE FUNCTION platform_tenant_time_zone_checked();
