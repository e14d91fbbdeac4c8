-- Hard caps: an application reserves what an AI call may cost before making
-- it, and settles the reservation with what it did cost (or releases it).
-- The periods listed in tenants.settings.hardSpendLimits are hard: for each,
-- the period's committed spend plus the open reservations plus the new
-- estimate may not pass its limit, or reserve_spend() refuses with SQLSTATE
-- PB001 and says which limit and how much remains.
--
-- Why it holds under any concurrency: reserve_spend(), settle_spend() and
-- release_spend() first lock the tenant's row FOR NO KEY UPDATE, as every
-- cost write of the tenant does (rollups.sql). So all of them take turns per
-- tenant (nobody else waits), and each sees, with a statement started after
-- it got the lock, every reservation and every event the ones before it
-- committed: the check and the reservation are one step. Settling adds the
-- event and closes the reservation in one transaction, under the same lock,
-- so the amount moves from reserved to spent at once. In REPEATABLE READ a
-- transaction's snapshot is older than the lock, so reserve_spend() refuses
-- to run there (READ COMMITTED, the default, or SERIALIZABLE).
--
-- A reservation never settled stops counting after
-- platform.cost_reservation_timeout (expires_at); the next reservation of
-- the tenant marks such ones 'expired', which keeps the index of open ones
-- small. An expired reservation cannot be settled (PB002): the call's cost
-- is then recorded with record_cost_event().
--
-- With a widget, the widget's hard caps (widgets.settings.hardSpendLimits)
-- are checked too, against the widget's spend and the open reservations
-- made for it, and the settling event is attributed to the widget: a
-- public chat widget can be capped on its own, under the same turn.
--
-- The actual cost is recorded whatever it is: the call has happened. A
-- settlement above its estimate can therefore take spend past a cap, by at
-- most what the estimate was short; the next reservation is refused.

-- Refuses a transaction whose snapshot predates the tenant's lock.
CREATE OR REPLACE FUNCTION platform_check_reservation_isolation(function_name text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('transaction_isolation') = 'repeatable read' THEN
        RAISE EXCEPTION '%() cannot run in a REPEATABLE READ transaction', function_name
            USING ERRCODE = 'invalid_transaction_state',
                  HINT = 'Its snapshot would miss reservations committed while it waited for the tenant; call it in READ COMMITTED (the default) or SERIALIZABLE.';
    END IF;
END
$$;

-- reserve_spend(): grants a reservation of estimated_cost_usd for the
-- context's tenant (and its widget widget_id, when not NULL), or refuses
-- with PB001 when a hard cap of either would be passed. remaining_usd:
-- what the tightest hard cap leaves after this reservation (NULL without
-- hard caps).
CREATE OR REPLACE FUNCTION reserve_spend(
    estimated_cost_usd numeric,
    widget_id uuid DEFAULT NULL,
    OUT reservation_id uuid, OUT expires_at timestamptz, OUT remaining_usd numeric)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    tenant constant uuid := platform_tenant_required_by('reserve_spend');
    widget constant uuid := reserve_spend.widget_id;
    tenant_settings jsonb;
    widget_settings jsonb;
    zone text;
    reserved numeric;
    widget_reserved numeric;
    scope_settings jsonb;
    scoped integer := 0;
    period text;
    spend_limit numeric;
    starts timestamptz;
    room numeric;
    tightest_scope uuid;
    tightest_period text;
    tightest_limit numeric;
    tightest_starts timestamptz;
BEGIN
    IF estimated_cost_usd IS NULL OR estimated_cost_usd < 0 OR estimated_cost_usd IN ('NaN', 'Infinity') THEN
        RAISE EXCEPTION 'estimated_cost_usd must be a finite amount of at least 0, got %',
                coalesce(estimated_cost_usd::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the most the call may cost, in US dollars, as an exact numeric.';
    END IF;
    IF estimated_cost_usd >= 1e12 THEN
        RAISE EXCEPTION 'estimated_cost_usd % is beyond any budget', estimated_cost_usd
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Amounts are stored as numeric(24, 12): below 1e12 US dollars.';
    END IF;
    PERFORM platform_check_reservation_isolation('reserve_spend');
    -- The tenant's turn (see above).
    SELECT t.settings INTO tenant_settings FROM tenants t WHERE t.id = tenant FOR NO KEY UPDATE;
    zone := platform_tenant_time_zone(tenant_settings);
    IF widget IS NOT NULL THEN
        widget_settings := platform_requested_widget_budget_settings(tenant, widget, tenant_settings,
            'Pass the id of one of the tenant''s widgets, or NULL to check the tenant''s hard caps alone.');
    END IF;
    UPDATE cost_reservations r SET state = 'expired', closed_at = r.expires_at
    WHERE r.tenant_id = tenant AND r.state = 'open' AND r.expires_at <= now();
    SELECT coalesce(sum(r.estimated_cost_usd), 0),
           coalesce(sum(r.estimated_cost_usd) FILTER (WHERE r.widget_id = widget), 0)
    INTO reserved, widget_reserved
    FROM cost_reservations r WHERE r.tenant_id = tenant AND r.state = 'open';

    -- The tenant's hard caps, then the widget's (scope NULL: the tenant), in
    -- loops of assignments rather than queries, which would be planned or
    -- executed again on every call.
    FOREACH scope_settings IN ARRAY ARRAY[tenant_settings, widget_settings] LOOP
        scoped := scoped + 1;
        CONTINUE WHEN scope_settings IS NULL;
        FOREACH period IN ARRAY platform_budget_periods() LOOP
            spend_limit := platform_budget_limit(scope_settings, period);
            CONTINUE WHEN spend_limit IS NULL OR NOT platform_budget_is_hard(scope_settings, period);
            starts := (platform_budget_period_bounds(period, now(), zone)).starts;
            room := spend_limit
                    - platform_budget_spend(tenant, CASE WHEN scoped = 2 THEN widget END, period, starts, zone)
                    - CASE WHEN scoped = 1 THEN reserved ELSE widget_reserved END;
            IF remaining_usd IS NULL OR room < remaining_usd THEN
                remaining_usd := room;
                tightest_scope := CASE WHEN scoped = 2 THEN widget END;
                tightest_period := period;
                tightest_limit := spend_limit;
                tightest_starts := starts;
            END IF;
        END LOOP;
    END LOOP;
    IF remaining_usd < estimated_cost_usd THEN
        RAISE EXCEPTION 'the % hard spend limit of % USD leaves % USD, less than the % USD asked for',
                CASE WHEN tightest_scope IS NULL THEN tightest_period
                     ELSE 'widget''s ' || tightest_period END,
                tightest_limit, trim_scale(greatest(remaining_usd, 0)),
                trim_scale(estimated_cost_usd)
            USING ERRCODE = 'PB001',
                  DETAIL = format('%sPeriod %s to %s (%s); open reservations hold %s USD of it.',
                                  CASE WHEN tightest_scope IS NOT NULL THEN 'Widget ' || tightest_scope || '. ' ELSE '' END,
                                  tightest_starts, (platform_budget_period_bounds(tightest_period, now(), zone)).ends,
                                  zone,
                                  trim_scale(CASE WHEN tightest_scope IS NULL THEN reserved ELSE widget_reserved END)),
                  HINT = format('Skip or shrink the call, wait for the %s period to end, or raise %s.settings.%s.',
                                tightest_period, CASE WHEN tightest_scope IS NULL THEN 'tenants' ELSE 'widgets' END,
                                platform_budget_limit_key(tightest_period));
    END IF;

    INSERT INTO cost_reservations AS r (tenant_id, estimated_cost_usd, expires_at, widget_id)
    VALUES (tenant, estimated_cost_usd, now() + platform_cost_reservation_timeout(), widget)
    RETURNING r.id, r.expires_at INTO reservation_id, expires_at;
    remaining_usd := remaining_usd - estimated_cost_usd;
END
$$;
COMMENT ON FUNCTION reserve_spend(numeric, uuid) IS
    'Reserves an AI call''s estimated cost against the current tenant''s (and widget''s) hard spend limits, or refuses with SQLSTATE PB001.';

-- The context's tenant's reservation, locked, after the tenant's row (the
-- lock order of reserve_spend and of the cost triggers); P0002 when there
-- is none.
CREATE OR REPLACE FUNCTION platform_locked_reservation(tenant uuid, reservation uuid, function_name text)
RETURNS cost_reservations
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    locked cost_reservations;
BEGIN
    PERFORM platform_check_reservation_isolation(function_name);
    PERFORM FROM tenants t WHERE t.id = tenant FOR NO KEY UPDATE;
    SELECT * INTO locked FROM cost_reservations r
    WHERE r.tenant_id = tenant AND r.id = reservation FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no spend reservation %', coalesce(reservation::text, 'NULL')
            USING ERRCODE = 'no_data_found',
                  HINT = 'Pass the reservation_id that reserve_spend() returned, under the same tenant.';
    END IF;
    RETURN locked;
END
$$;

-- settle_spend(): records the call's actual cost as a cost event (the
-- arguments of record_cost_event) and closes the reservation with it.
-- Idempotent: the event's key is idempotency_key, or 'reservation:<id>'
-- when NULL, so a retry returns the same event with duplicate = true.
CREATE OR REPLACE FUNCTION settle_spend(
    reservation_id uuid,
    service text,
    cost_usd numeric,
    provider text DEFAULT NULL,
    model text DEFAULT NULL,
    tokens_used integer DEFAULT NULL,
    session_id uuid DEFAULT NULL,
    idempotency_key text DEFAULT NULL,
    metadata jsonb DEFAULT NULL,
    OUT event_id uuid,
    OUT duplicate boolean
)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    tenant constant uuid := platform_tenant_required_by('settle_spend');
    key constant text := coalesce(idempotency_key, 'reservation:' || reservation_id);
    reservation cost_reservations;
BEGIN
    reservation := platform_locked_reservation(tenant, reservation_id, 'settle_spend');
    IF reservation.state = 'settled' AND reservation.idempotency_key = key THEN
        event_id := reservation.event_id;  -- a retry
        duplicate := true;
        RETURN;
    ELSIF reservation.state IN ('settled', 'released') THEN
        RAISE EXCEPTION 'spend reservation % is already %', reservation_id, reservation.state
            USING ERRCODE = 'PB003',
                  HINT = CASE reservation.state
                      WHEN 'settled' THEN 'It was settled with another idempotency key; retry with the same key to get its event back.'
                      ELSE 'A released reservation holds nothing: record the call''s cost with record_cost_event().' END;
    ELSIF reservation.state = 'expired' OR reservation.expires_at <= now() THEN
        RAISE EXCEPTION 'spend reservation % expired at %', reservation_id, reservation.expires_at
            USING ERRCODE = 'PB002',
                  HINT = 'Record the call''s cost with record_cost_event() and an idempotency key; if calls outlast platform.cost_reservation_timeout, ask an operator to raise it.';
    END IF;
    SELECT e.event_id, e.duplicate INTO event_id, duplicate
    FROM record_cost_event(service, cost_usd, provider, model, tokens_used, session_id, key, NULL, metadata,
                           reservation.widget_id) e;
    UPDATE cost_reservations r
    SET state = 'settled', closed_at = now(), event_id = settle_spend.event_id, idempotency_key = key
    WHERE r.tenant_id = tenant AND r.id = reservation_id;
END
$$;
COMMENT ON FUNCTION settle_spend(uuid, text, numeric, text, text, integer, uuid, text, jsonb) IS
    'Records a reserved call''s actual cost (idempotently) and closes its reservation.';

-- release_spend(): gives a reservation's amount back (the call was not
-- made). True when this call released it; false when it was already
-- released or had expired (it held nothing any more).
CREATE OR REPLACE FUNCTION release_spend(reservation_id uuid, OUT released boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    tenant constant uuid := platform_tenant_required_by('release_spend');
    reservation cost_reservations;
BEGIN
    reservation := platform_locked_reservation(tenant, reservation_id, 'release_spend');
    IF reservation.state = 'settled' THEN
        RAISE EXCEPTION 'spend reservation % is already settled', reservation_id
            USING ERRCODE = 'PB003',
                  HINT = 'Its cost is recorded (event ' || reservation.event_id || '); correct the event instead.';
    END IF;
    released := reservation.state = 'open' AND reservation.expires_at > now();
    UPDATE cost_reservations r
    SET state = CASE WHEN released THEN 'released' WHEN r.state = 'open' THEN 'expired' ELSE r.state END,
        closed_at = coalesce(r.closed_at, now())
    WHERE r.tenant_id = tenant AND r.id = reservation_id;
END
$$;
COMMENT ON FUNCTION release_spend(uuid) IS
    'Releases a spend reservation whose call was not made.';
