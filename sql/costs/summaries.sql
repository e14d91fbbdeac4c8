-- compute_cost_summary(): the cost_summaries row of the context's tenant for
-- [period_start, period_end), computed from cost_summary() (so it is as exact
-- as it) and written idempotently: running it again, or concurrently,
-- updates the one row it wrote instead of adding another. Writers of the same
-- tenant and period take turns on row locks of the tenant's own rows (no
-- unique constraint: the document lets an application write its own rows,
-- several per period if it likes, and those are left alone except the oldest,
-- which this function keeps current): on that oldest row when it exists, and
-- while the first one is created on the tenant's row, which also holds off
-- that tenant's cost writers for the rest of the transaction (and no one
-- else's). The breakdown names all six services, zero included, as the
-- document's type does.
CREATE OR REPLACE FUNCTION compute_cost_summary(period_start timestamptz, period_end timestamptz)
RETURNS cost_summaries
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    tenant constant uuid := platform_tenant_required_by('compute_cost_summary');
    total numeric;
    per_service jsonb;
    events bigint;
    existing uuid;
    result cost_summaries;
BEGIN
    IF period_start IS NULL OR period_end IS NULL OR period_start >= period_end THEN
        RAISE EXCEPTION 'period_start % is not before period_end %',
                coalesce(period_start::text, 'NULL'), coalesce(period_end::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A summary covers [period_start, period_end), a non-empty range.';
    END IF;
    SELECT o.id INTO existing FROM cost_summaries o
    WHERE o.tenant_id = tenant AND o.period_start = compute_cost_summary.period_start
      AND o.period_end = compute_cost_summary.period_end
    ORDER BY o.created_at, o.id LIMIT 1
    FOR UPDATE;
    IF existing IS NULL THEN
        -- No row yet: creators take turns on the tenant's row, then look again
        -- (a new statement sees what the one before them committed).
        PERFORM FROM tenants t WHERE t.id = tenant FOR NO KEY UPDATE;
        SELECT o.id INTO existing FROM cost_summaries o
        WHERE o.tenant_id = tenant AND o.period_start = compute_cost_summary.period_start
          AND o.period_end = compute_cost_summary.period_end
        ORDER BY o.created_at, o.id LIMIT 1
        FOR UPDATE;
    END IF;

    SELECT coalesce(sum(x.total_cost_usd), 0),
           jsonb_object_agg(k.service, coalesce(x.total_cost_usd, 0)),
           coalesce(sum(x.event_count), 0)
    INTO total, per_service, events
    FROM unnest(platform_cost_services()) AS k(service)
    LEFT JOIN cost_summary(period_start, period_end, 'range') x ON x.service = k.service;

    UPDATE cost_summaries s
    SET total_cost_usd = total, breakdown = per_service, event_count = events, created_at = now()
    WHERE s.tenant_id = tenant AND s.id = existing
    RETURNING s.* INTO result;
    IF existing IS NULL THEN
        INSERT INTO cost_summaries AS s (tenant_id, period_start, period_end, total_cost_usd,
                                         breakdown, event_count)
        VALUES (tenant, compute_cost_summary.period_start, compute_cost_summary.period_end,
                total, per_service, events)
        RETURNING s.* INTO result;
    END IF;
    RETURN result;
END
$$;
COMMENT ON FUNCTION compute_cost_summary(timestamptz, timestamptz) IS
    'Computes (or recomputes) the current tenant''s cost_summaries row for a period, idempotently.';
