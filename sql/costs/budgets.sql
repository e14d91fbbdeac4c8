-- Monthly budgets: tenants.settings.maxMonthlySpend (USD) per month in the
-- tenant's time zone, alerts at tenants.settings.budgetAlertThresholds
-- percent (default 50, 80, 100).
--
-- Exactly once: the cost triggers add a statement's spend to the month's
-- cost_budget_periods row and, while holding that row's lock, compare the
-- spend before and after it: writers of one tenant-month take turns, so each
-- crossing of a threshold is seen by exactly one of them, which calls
-- platform_fire_budget_alerts(). The alert's identity (tenant, period, period
-- start, threshold) is a unique index and the INSERT says ON CONFLICT DO
-- NOTHING, so a threshold reached again (after a delete) never fires twice.
-- A settings change (new limit or thresholds) fires what the current spend
-- already reached (cost_rollups.sql).
--
-- Every alert written is announced with pg_notify on the channel
-- 'platform_budget_alerts' (delivered at commit, never for a rollback). Any
-- role may LISTEN on a channel, and any role may NOTIFY on it, so the payload
-- is the alert's id and nothing else: {"alert_id": "<uuid>"}. A consumer reads
-- the alert under its own rights (budget_alert(), granted to the role of the
-- worker that sends alerts; or the tenant's own budget_alerts row under its
-- context), and a forged id reads nothing (docs/costs.md).

CREATE OR REPLACE FUNCTION platform_fire_budget_alerts(tenant uuid, month_start timestamptz, spend numeric)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    settings jsonb;
    monthly_limit numeric;
    alert record;
BEGIN
    SELECT t.settings INTO settings FROM tenants t WHERE t.id = tenant;
    monthly_limit := platform_budget_limit(settings);
    IF monthly_limit IS NULL THEN
        RETURN;  -- no budget
    END IF;
    FOR alert IN
        INSERT INTO budget_alerts AS b
            (tenant_id, threshold, current_spend, period, period_start, severity, metadata)
        SELECT tenant, threshold, spend, 'monthly', month_start,
               CASE WHEN threshold < 100 THEN 'warning' ELSE 'critical' END,
               jsonb_build_object('monthlyLimit', monthly_limit)
        FROM unnest(platform_budget_thresholds(settings)) AS threshold
        WHERE spend * 100 >= monthly_limit * threshold
        ORDER BY threshold
        ON CONFLICT (tenant_id, period, period_start, threshold) DO NOTHING
        RETURNING b.id, b.threshold, b.severity
    LOOP
        PERFORM pg_notify('platform_budget_alerts', json_build_object('alert_id', alert.id)::text);
    END LOOP;
END
$$;

-- The current month of the context's tenant (no row without a context): its
-- limit (NULL without a budget), spend so far, percent of the limit used, and the spend projected
-- for the whole month at the rate so far. One index lookup in
-- cost_budget_periods, never a sum over events. PL/pgSQL so that its plan
-- is cached per session (a SECURITY DEFINER SQL function is planned on
-- every call).
CREATE OR REPLACE FUNCTION budget_status(
    OUT period_start timestamptz, OUT period_end timestamptz, OUT time_zone text,
    OUT monthly_limit numeric, OUT spend numeric, OUT event_count bigint,
    OUT percent_used numeric, OUT projected_spend numeric)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH tenant AS (
        SELECT t.id, platform_budget_limit(t.settings) AS monthly_limit,
               platform_tenant_time_zone(t.settings) AS zone
        FROM tenants t WHERE t.id = get_current_tenant_id()
    ), month AS (
        SELECT tenant.*, date_trunc('month', now(), tenant.zone) AS starts,
               (date_trunc('month', now() AT TIME ZONE tenant.zone) + interval '1 month')
                   AT TIME ZONE tenant.zone AS ends
        FROM tenant
    )
    SELECT m.starts, m.ends, m.zone, m.monthly_limit, coalesce(p.spend, 0),
           coalesce(p.event_count, 0),
           round(coalesce(p.spend, 0) * 100 / m.monthly_limit, 2),
           round(coalesce(p.spend, 0) * extract(epoch FROM m.ends - m.starts)
                 / greatest(extract(epoch FROM now() - m.starts), 1), 6)
    FROM month m
    LEFT JOIN cost_budget_periods p ON p.tenant_id = m.id AND p.period_start = m.starts;
END
$$;
COMMENT ON FUNCTION budget_status() IS
    'The current tenant''s budget month: limit, spend, percent used, projected month-end spend.';

-- One budget alert by id, with its tenant and what a notification about it
-- needs: for the worker that LISTENs on 'platform_budget_alerts' and sends
-- the alerts. It reads across tenants, so it is granted to nobody by
-- default: GRANT EXECUTE ON FUNCTION budget_alert(uuid) TO <that worker's
-- role> (not to the application role, which runs what tenants send it). An
-- id that names no alert reads nothing, so a forged notification is ignored;
-- notifications_sent tells a notification already handled (the worker
-- increments it under the tenant's context once it has sent the alert).
CREATE OR REPLACE FUNCTION budget_alert(alert_id uuid)
RETURNS TABLE (id uuid, tenant_id uuid, period text, period_start timestamptz, threshold numeric,
               severity text, current_spend numeric, monthly_limit numeric,
               notifications_sent integer, triggered_at timestamptz, resolved boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT b.id, b.tenant_id, b.period, b.period_start, b.threshold, b.severity, b.current_spend,
           (b.metadata->>'monthlyLimit')::numeric, b.notifications_sent, b.triggered_at, b.resolved
    FROM budget_alerts b
    WHERE b.id = budget_alert.alert_id
$$;
COMMENT ON FUNCTION budget_alert(uuid) IS
    'A budget alert by the id a notification carries: for the role of the worker that sends alerts.';
