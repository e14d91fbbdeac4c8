-- Budgets per period: a daily, weekly (Monday to Sunday) and monthly limit
-- per tenant, each on the tenant's calendar in its time zone, in
-- tenants.settings: maxDailySpend, maxWeeklySpend and maxMonthlySpend (USD;
-- the last is the design document's, read as in 0.2.0), alerts at
-- budgetAlertThresholds percent of each (default 50, 80, 100), and
-- hardSpendLimits naming the periods whose limit is a hard cap
-- (reservations.sql). A tenant without any of them has no budget.
--
-- Exactly once: the cost triggers add a statement's spend to the month's
-- cost_budget_periods row (its day among daily_spend) while holding the
-- tenant's row (FOR NO KEY UPDATE: every cost writer of a tenant takes
-- turns there, nobody else waits) and compare each period's spend before
-- and after: each crossing of a threshold is seen by exactly one writer,
-- which calls platform_fire_budget_alerts(). The alert's identity (tenant,
-- period, period start, threshold) is a unique index and the INSERT says ON
-- CONFLICT DO NOTHING, so a threshold reached again (after a delete) never
-- fires twice. A settings change (new limit or thresholds) fires what the
-- current spend already reached (cost_rollups.sql).
--
-- Every alert written is announced with pg_notify on the channel
-- 'platform_budget_alerts' (delivered at commit, never for a rollback). Any
-- role may LISTEN on a channel, and any role may NOTIFY on it, so the payload
-- is the alert's id and nothing else: {"alert_id": "<uuid>"}. A consumer reads
-- the alert under its own rights (budget_alert(), granted to the role of the
-- worker that sends alerts; or the tenant's own budget_alerts row under its
-- context), and a forged id reads nothing (docs/costs.md).

-- Whether spend going from `before` to `after` crosses one of the
-- thresholds of the period's limit. PL/pgSQL without queries: it runs for
-- every statement.
CREATE OR REPLACE FUNCTION platform_budget_crossed(before numeric, after numeric, settings jsonb, period text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    spend_limit constant numeric := platform_budget_limit(settings, period);
    threshold numeric;
BEGIN
    IF spend_limit IS NULL OR after <= before THEN
        RETURN false;
    END IF;
    FOREACH threshold IN ARRAY platform_budget_thresholds(settings) LOOP
        IF before * 100 < spend_limit * threshold AND after * 100 >= spend_limit * threshold THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END
$$;

-- Writes (once) the alerts of every threshold of the period's limit that
-- `spend` has reached, and announces each one written: the tenant's own
-- budget when widget is NULL, else that widget's (settings are then
-- platform_widget_budget_settings()). metadata.limit is the period's limit;
-- a monthly alert of the tenant also carries it as monthlyLimit, as 0.2.0's
-- did.
CREATE OR REPLACE FUNCTION platform_fire_budget_alerts(
    tenant uuid, widget uuid, budget_period text, starts timestamptz, spend numeric, settings jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    spend_limit constant numeric := platform_budget_limit(settings, budget_period);
    alert_id uuid;
BEGIN
    IF spend_limit IS NULL THEN
        RETURN;  -- no budget for this period
    END IF;
    -- Two statements: each scope has its own identity index, and ON
    -- CONFLICT names the one it means.
    IF widget IS NULL THEN
        FOR alert_id IN
            INSERT INTO budget_alerts AS b
                (tenant_id, threshold, current_spend, period, period_start, severity, metadata)
            SELECT tenant, threshold, spend, budget_period, starts,
                   CASE WHEN threshold < 100 THEN 'warning' ELSE 'critical' END,
                   jsonb_build_object('limit', spend_limit)
                   || CASE WHEN budget_period = 'monthly' THEN jsonb_build_object('monthlyLimit', spend_limit)
                           ELSE '{}' END
            FROM unnest(platform_budget_thresholds(settings)) AS threshold
            WHERE spend * 100 >= spend_limit * threshold
            ORDER BY threshold
            ON CONFLICT (period_start, tenant_id, period, threshold) WHERE widget_id IS NULL DO NOTHING
            RETURNING b.id
        LOOP
            PERFORM pg_notify('platform_budget_alerts', json_build_object('alert_id', alert_id)::text);
        END LOOP;
    ELSE
        FOR alert_id IN
            INSERT INTO budget_alerts AS b
                (tenant_id, widget_id, threshold, current_spend, period, period_start, severity, metadata)
            SELECT tenant, widget, threshold, spend, budget_period, starts,
                   CASE WHEN threshold < 100 THEN 'warning' ELSE 'critical' END,
                   jsonb_build_object('limit', spend_limit)
            FROM unnest(platform_budget_thresholds(settings)) AS threshold
            WHERE spend * 100 >= spend_limit * threshold
            ORDER BY threshold
            ON CONFLICT (period_start, tenant_id, widget_id, period, threshold) WHERE widget_id IS NOT NULL
                DO NOTHING
            RETURNING b.id
        LOOP
            PERFORM pg_notify('platform_budget_alerts', json_build_object('alert_id', alert_id)::text);
        END LOOP;
    END IF;
END
$$;

-- The spend of `tenant` (of its widget `widget`, when not NULL) in the
-- budget period that starts at `starts` in `zone`, from
-- cost_budget_periods (cost_widget_budget_periods): the month's row, one
-- day of it, or the seven days of a week over the (at most two) months it
-- touches. Read by definer functions only (the tables are theirs).
-- PL/pgSQL so that each plan is cached. A day and a month are one row, read
-- by its key: a join with generate_series() over the arguments is planned
-- again on every call (a generic plan cannot know it is one day), and
-- reserve_spend() and every cost write with a daily budget call this.
CREATE OR REPLACE FUNCTION platform_budget_spend(
    tenant uuid, widget uuid, budget_period text, starts timestamptz, zone text)
RETURNS numeric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    first_day constant timestamp := starts AT TIME ZONE zone;
    month_start constant timestamptz := date_trunc('month', first_day) AT TIME ZONE zone;
    day constant integer := extract(day FROM first_day)::int;
    spend numeric;
BEGIN
    IF budget_period = 'weekly' THEN
        IF widget IS NULL THEN
            SELECT sum(p.daily_spend[extract(day FROM d.local_day)::int]) INTO spend
            FROM generate_series(first_day, first_day + interval '6 days', interval '1 day') AS d(local_day)
            JOIN cost_budget_periods p
              ON p.tenant_id = tenant AND p.period_start = date_trunc('month', d.local_day) AT TIME ZONE zone;
        ELSE
            SELECT sum(p.daily_spend[extract(day FROM d.local_day)::int]) INTO spend
            FROM generate_series(first_day, first_day + interval '6 days', interval '1 day') AS d(local_day)
            JOIN cost_widget_budget_periods p
              ON p.tenant_id = tenant AND p.widget_id = widget
             AND p.period_start = date_trunc('month', d.local_day) AT TIME ZONE zone;
        END IF;
    ELSIF widget IS NULL THEN
        SELECT CASE WHEN budget_period = 'monthly' THEN p.spend ELSE p.daily_spend[day] END INTO spend
        FROM cost_budget_periods p
        WHERE p.tenant_id = tenant AND p.period_start = month_start;
    ELSE
        SELECT CASE WHEN budget_period = 'monthly' THEN p.spend ELSE p.daily_spend[day] END INTO spend
        FROM cost_widget_budget_periods p
        WHERE p.tenant_id = tenant AND p.widget_id = widget AND p.period_start = month_start;
    END IF;
    RETURN coalesce(spend, 0);
END
$$;

-- Fires the alerts of the daily and weekly budgets of the tenant (of its
-- widget `widget`, when not NULL, with that widget's settings) that spend
-- added to the local days `days` (with what was added to each: a whole
-- statement's, across months, so that a week's two months count as one)
-- made cross a threshold. The caller holds the tenant's row, so the spend
-- read here is final until it commits. The monthly budget is checked by the
-- caller, from the row it has just updated.
-- Days are grouped into periods by loops, not by a query: a query over
-- unnest() of the arguments is planned again on every call, and every cost
-- write of a tenant with a daily or weekly budget calls this.
CREATE OR REPLACE FUNCTION platform_check_short_budgets(
    tenant uuid, widget uuid, settings jsonb, days date[], added numeric[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    zone constant text := platform_tenant_time_zone(settings);
    period text;
    starts timestamptz;
    period_starts timestamptz[];
    amounts numeric[];
    at integer;
    after numeric;
BEGIN
    FOREACH period IN ARRAY ARRAY['daily', 'weekly'] LOOP
        CONTINUE WHEN platform_budget_limit(settings, period) IS NULL;
        -- The amount added to each period, as sum() adds: NULLs are skipped.
        period_starts := '{}';
        amounts := '{}';
        FOR i IN 1 .. coalesce(cardinality(days), 0) LOOP
            starts := CASE period WHEN 'daily' THEN days[i]::timestamp
                                  ELSE date_trunc('week', days[i]::timestamp) END AT TIME ZONE zone;
            at := array_position(period_starts, starts);
            IF at IS NULL THEN
                period_starts := period_starts || starts;
                amounts := amounts || added[i];
            ELSIF added[i] IS NOT NULL THEN
                amounts[at] := coalesce(amounts[at] + added[i], added[i]);
            END IF;
        END LOOP;
        FOR i IN 1 .. cardinality(period_starts) LOOP
            CONTINUE WHEN NOT coalesce(amounts[i] > 0, false);
            after := platform_budget_spend(tenant, widget, period, period_starts[i], zone);
            IF platform_budget_crossed(after - amounts[i], after, settings, period) THEN
                PERFORM platform_fire_budget_alerts(tenant, widget, period, period_starts[i], after, settings);
            END IF;
        END LOOP;
    END LOOP;
END
$$;

-- The context's tenant's budgets now (no row without a context), or those
-- of its widget `widget_id`: one row per configured period (daily, weekly,
-- monthly; the month always, as in 0.2.0, with a NULL limit when there is
-- none), each with its limit, whether it is a hard cap, the spend so far,
-- what open reservations hold (reservations.sql; a widget's: those made
-- for it) and what the limit leaves after both, the percent of the limit
-- spent, and the spend projected for the whole period at the rate so far.
-- A widget the tenant does not have is P0002.
-- Index lookups in cost_budget_periods, never a sum over events. PL/pgSQL
-- so that its plans are cached per session.
CREATE OR REPLACE FUNCTION budget_status(
    widget_id uuid DEFAULT NULL,
    OUT period text, OUT period_start timestamptz, OUT period_end timestamptz, OUT time_zone text,
    OUT spend_limit numeric, OUT hard_limit boolean, OUT spend numeric, OUT reserved numeric,
    OUT remaining numeric, OUT event_count bigint, OUT percent_used numeric, OUT projected_spend numeric)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    tenant constant uuid := get_current_tenant_id();
    widget constant uuid := budget_status.widget_id;
    tenant_settings jsonb;
    settings jsonb;
BEGIN
    SELECT t.settings INTO tenant_settings FROM tenants t WHERE t.id = tenant;
    IF NOT FOUND THEN
        RETURN;  -- no tenant context: nothing to report
    END IF;
    time_zone := platform_tenant_time_zone(tenant_settings);
    settings := tenant_settings;
    IF widget IS NOT NULL THEN
        settings := platform_requested_widget_budget_settings(tenant, widget, tenant_settings,
            'Pass the id of one of the tenant''s widgets, or NULL for the tenant''s own budgets.');
    END IF;
    SELECT coalesce(sum(r.estimated_cost_usd), 0) INTO reserved FROM cost_reservations r
    WHERE r.tenant_id = tenant AND r.state = 'open' AND r.expires_at > now()
      AND (widget IS NULL OR r.widget_id = widget);
    FOREACH period IN ARRAY platform_budget_periods() LOOP
        spend_limit := platform_budget_limit(settings, period);
        CONTINUE WHEN spend_limit IS NULL AND period <> 'monthly';
        SELECT b.starts, b.ends INTO period_start, period_end
        FROM platform_budget_period_bounds(period, now(), time_zone) b;
        hard_limit := spend_limit IS NOT NULL AND platform_budget_is_hard(settings, period);
        spend := platform_budget_spend(tenant, widget, period, period_start, time_zone);
        -- greatest() ignores NULLs: without a limit nothing is "remaining".
        remaining := CASE WHEN spend_limit IS NOT NULL THEN greatest(spend_limit - spend - reserved, 0) END;
        event_count := NULL;
        IF period = 'monthly' AND widget IS NULL THEN
            SELECT coalesce(max(p.event_count), 0) INTO event_count FROM cost_budget_periods p
            WHERE p.tenant_id = tenant AND p.period_start = budget_status.period_start;
        ELSIF period = 'monthly' THEN
            SELECT coalesce(max(p.event_count), 0) INTO event_count FROM cost_widget_budget_periods p
            WHERE p.tenant_id = tenant AND p.widget_id = widget AND p.period_start = budget_status.period_start;
        END IF;
        percent_used := round(spend * 100 / spend_limit, 2);
        projected_spend := round(spend * extract(epoch FROM period_end - period_start)
                                 / greatest(extract(epoch FROM now() - period_start), 1), 6);
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION budget_status(uuid) IS
    'The budget periods of the current tenant (or of its widget) now: limit, hard or not, spend, reserved, remaining, percent used, projected spend.';

-- One budget alert by id, with its tenant, its widget (NULL for the
-- tenant's own budget) and what a notification about it needs: for the
-- worker that LISTENs on 'platform_budget_alerts' and sends the alerts. It
-- reads across tenants, so it is granted to nobody by default: GRANT EXECUTE
-- ON FUNCTION budget_alert(uuid) TO <that worker's role> (not to the
-- application role, which runs what tenants send it). An id that names no
-- alert reads nothing, so a forged notification is ignored;
-- notifications_sent tells a notification already handled (the worker
-- increments it under the tenant's context once it has sent the alert).
-- spend_limit is the limit of the alert's own period, as budget_status()
-- names it.
CREATE OR REPLACE FUNCTION budget_alert(alert_id uuid)
RETURNS TABLE (id uuid, tenant_id uuid, widget_id uuid, period text, period_start timestamptz,
               threshold numeric, severity text, current_spend numeric, spend_limit numeric,
               notifications_sent integer, triggered_at timestamptz, resolved boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT b.id, b.tenant_id, b.widget_id, b.period, b.period_start, b.threshold, b.severity,
           b.current_spend, coalesce(b.metadata->>'limit', b.metadata->>'monthlyLimit')::numeric,
           b.notifications_sent, b.triggered_at, b.resolved
    FROM budget_alerts b
    WHERE b.id = budget_alert.alert_id
$$;
COMMENT ON FUNCTION budget_alert(uuid) IS
    'A budget alert by the id a notification carries: for the role of the worker that sends alerts.';
