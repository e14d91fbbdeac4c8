-- cost_summary(): the tenant's spend per time bucket (hour, day, week, month,
-- or the whole range) and service, optionally per provider and model, with
-- buckets aligned in the tenant's time zone. Exact: the same sums as a GROUP
-- BY date_trunc(group_by, "timestamp", zone) over the raw rows of the range.
--
-- How it stays exact and fast: each bucket [lo, hi) (clipped to the range)
-- is split into the whole UTC hours inside it, read from cost_rollups_hourly,
-- and the at most two partial hours at its ends, read from cost_events. In a
-- whole-hour zone (UTC, Europe/Berlin, America/New_York, across DST too) day
-- boundaries are whole UTC hours, so only the range's own ends read raw rows.
-- In a :30 or :45 zone (Asia/Kolkata, Asia/Kathmandu) each bucket boundary
-- cuts one UTC hour in two, and that hour is read raw on both sides: one
-- hour of raw rows per day bucket, never a day's worth.
--
-- The range is half-open, [start_at, end_at): adjacent ranges never count an
-- event twice (the document's BETWEEN-like gte/lte did at the shared instant).

CREATE OR REPLACE FUNCTION cost_summary(
    start_at timestamptz,
    end_at timestamptz,
    group_by text DEFAULT 'day',
    detail text DEFAULT 'service',
    time_zone text DEFAULT NULL
) RETURNS TABLE (
    bucket_start timestamptz, service text, provider text, model text,
    total_cost_usd numeric, total_tokens bigint, event_count bigint
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    tenant constant uuid := get_current_tenant_id();
    zone text := cost_summary.time_zone;
    unit text := group_by;   -- the date_trunc unit ('range' has none)
    step interval;
    buckets bigint;
BEGIN
    IF group_by IS NULL OR group_by NOT IN ('hour', 'day', 'week', 'month', 'range') THEN
        RAISE EXCEPTION 'unknown group_by %', coalesce(quote_literal(group_by), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'group_by is one of hour, day, week, month, or range (one bucket for the whole range).';
    END IF;
    IF detail IS NULL OR detail NOT IN ('service', 'provider', 'model') THEN
        RAISE EXCEPTION 'unknown detail %', coalesce(quote_literal(detail), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'detail is service (per service), provider (per service and provider) or model (per service, provider and model).';
    END IF;
    IF start_at IS NULL OR end_at IS NULL OR NOT isfinite(start_at) OR NOT isfinite(end_at) THEN
        RAISE EXCEPTION 'cost_summary() needs a bounded range, got [%, %)',
                coalesce(start_at::text, 'NULL'), coalesce(end_at::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass finite start_at and end_at, for example the first instants of two months.';
    END IF;
    IF start_at > end_at THEN
        RAISE EXCEPTION 'start_at % is after end_at %', start_at, end_at
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The range is [start_at, end_at): pass the earlier instant first.';
    END IF;
    IF tenant = '00000000-0000-0000-0000-000000000000' THEN
        RETURN;  -- no tenant context: nothing to read, as row-level security would say
    END IF;
    IF zone IS NULL THEN
        SELECT platform_tenant_time_zone(t.settings) INTO zone FROM tenants t WHERE t.id = tenant;
        zone := coalesce(zone, 'UTC');
    END IF;
    zone := platform_checked_time_zone(zone);
    IF group_by = 'range' THEN
        unit := 'day';  -- unused: the series below is switched off
        step := interval '1 day';
    ELSE
        step := ('1 ' || group_by)::interval;
        buckets := (extract(epoch FROM end_at - start_at)
                    / extract(epoch FROM least(step, interval '28 days')))::bigint + 2;
        IF buckets > 100000 THEN
            RAISE EXCEPTION 'a range of % at % granularity makes about % buckets, more than 100000',
                    end_at - start_at, group_by, buckets
                USING ERRCODE = 'program_limit_exceeded',
                      HINT = 'Use a coarser group_by or a shorter range.';
        END IF;
    END IF;

    RETURN QUERY
    WITH hour_cell AS (
        -- An hour keeps the offset of its instants, so where the clock goes
        -- back by an hour the local hour that happens twice is two buckets,
        -- and where it goes back by 30 minutes (Lord Howe) a bucket starts
        -- before the previous one ends. Hour buckets are therefore read off
        -- a 15-minute grid of instants (every offset in use is a multiple of
        -- 15 minutes, so no cell straddles two buckets).
        SELECT instant, date_trunc('hour', instant, zone) AS starts
        FROM generate_series(date_trunc('hour', start_at, 'UTC'), end_at, interval '15 minutes') AS instant
        WHERE group_by = 'hour'
    ), run AS (
        -- (nominal bucket start, first instant of a stretch of it). From day
        -- up, local midnights (Mondays, first days) converted back to
        -- instants: what date_trunc(unit, ts, zone) returns, DST days included.
        SELECT local_start AT TIME ZONE zone AS nominal, local_start AT TIME ZONE zone AS first_instant
        FROM generate_series(date_trunc(unit, start_at AT TIME ZONE zone),
                             end_at AT TIME ZONE zone, step) AS local_start
        WHERE group_by NOT IN ('hour', 'range')
        UNION ALL
        SELECT c.starts, c.instant
        FROM (SELECT h.*, lag(h.starts) OVER (ORDER BY h.instant) AS previous FROM hour_cell h) c
        WHERE c.previous IS DISTINCT FROM c.starts
        UNION ALL
        SELECT start_at, start_at WHERE group_by = 'range'
    ), bucket AS (
        SELECT r.nominal, greatest(r.first_instant, start_at) AS lo,
               least(coalesce(lead(r.first_instant) OVER (ORDER BY r.first_instant), end_at), end_at) AS hi
        FROM run r
    ), span AS (
        -- [first_hour, last_hour): the whole UTC hours inside [lo, hi).
        SELECT b.*,
               date_trunc('hour', b.lo, 'UTC')
                 + CASE WHEN date_trunc('hour', b.lo, 'UTC') < b.lo
                        THEN interval '1 hour' ELSE interval '0' END AS first_hour,
               date_trunc('hour', b.hi, 'UTC') AS last_hour
        FROM bucket b WHERE b.lo < b.hi
    ), edge AS (
        -- The raw parts: before the first and after the last whole hour, or
        -- the whole bucket when it holds no whole hour.
        SELECT s.nominal, e.lo, e.hi
        FROM span s,
             LATERAL (VALUES (s.lo, CASE WHEN s.first_hour < s.last_hour THEN s.first_hour ELSE s.hi END),
                             (CASE WHEN s.first_hour < s.last_hour THEN s.last_hour ELSE s.hi END, s.hi)) AS e(lo, hi)
        WHERE e.lo < e.hi
    ), piece AS (
        SELECT s.nominal, r.service, r.provider, r.model, r.total_cost_usd AS cost,
               CASE WHEN r.token_events > 0 THEN r.total_tokens END AS tokens, r.event_count AS events
        FROM span s
        JOIN cost_rollups_hourly r
          ON r.tenant_id = tenant AND r.hour >= s.first_hour AND r.hour < s.last_hour
        UNION ALL
        SELECT g.nominal, c.service, c.provider, c.metadata->>'model', c.cost_usd,
               c.tokens_used::bigint, 1::bigint
        FROM edge g
        JOIN cost_events c
          ON c.tenant_id = tenant AND c."timestamp" >= g.lo AND c."timestamp" < g.hi
    )
    SELECT p.nominal, p.service,
           CASE WHEN detail <> 'service' THEN p.provider END,
           CASE WHEN detail = 'model' THEN p.model END,
           sum(p.cost), sum(p.tokens)::bigint, sum(p.events)::bigint
    FROM piece p
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4;
END
$$;
COMMENT ON FUNCTION cost_summary(timestamptz, timestamptz, text, text, text) IS
    'The current tenant''s exact spend per bucket (in its time zone) and service; see docs/costs.md.';
