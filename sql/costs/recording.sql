-- record_cost_event(): one cost event for the context's tenant, checked, with
-- an optional idempotency key. A retry with a key already recorded for this
-- tenant inserts nothing and returns the first event's id with
-- duplicate = true, also while the first is still being committed by another
-- session (ON CONFLICT waits for it). SECURITY INVOKER: the row goes through
-- the same policies and triggers as any INSERT of the application.
CREATE OR REPLACE FUNCTION record_cost_event(
    service text,
    cost_usd numeric,
    provider text DEFAULT NULL,
    model text DEFAULT NULL,
    tokens_used integer DEFAULT NULL,
    session_id uuid DEFAULT NULL,
    idempotency_key text DEFAULT NULL,
    occurred_at timestamptz DEFAULT NULL,
    metadata jsonb DEFAULT NULL,
    widget_id uuid DEFAULT NULL,
    OUT event_id uuid,
    OUT duplicate boolean
)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    tenant constant uuid := platform_tenant_required_by('record_cost_event');
    widget uuid := record_cost_event.widget_id;
    session_widget uuid;
BEGIN
    IF service IS NULL OR NOT service = ANY (platform_cost_services()) THEN
        RAISE EXCEPTION 'unknown service %', coalesce(quote_literal(service), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The services are ' || array_to_string(platform_cost_services(), ', ') || '.';
    END IF;
    IF cost_usd IS NULL OR cost_usd < 0 OR cost_usd IN ('NaN', 'Infinity') THEN
        RAISE EXCEPTION 'cost_usd must be a finite amount of at least 0, got %', coalesce(cost_usd::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the cost in US dollars as an exact numeric, for example 0.0000004.';
    END IF;
    IF tokens_used < 0 THEN
        RAISE EXCEPTION 'tokens_used must not be negative, got %', tokens_used
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass NULL when the service does not count tokens.';
    END IF;
    IF idempotency_key IS NOT NULL AND (btrim(idempotency_key) = '' OR length(idempotency_key) > 200) THEN
        RAISE EXCEPTION 'an idempotency key must be 1 to 200 characters and not blank'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use the id of the provider call (for example its request id), or NULL.';
    END IF;
    IF metadata IS NOT NULL AND jsonb_typeof(metadata) <> 'object' THEN
        RAISE EXCEPTION 'metadata must be a JSON object, got a JSON %', jsonb_typeof(metadata)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example: ''{"operation": "chat"}''::jsonb';
    END IF;
    -- The widget the event is spent for: the one named, else its session's.
    -- One index lookup, only for an event with a session; the composite
    -- foreign keys refuse another tenant's session or widget.
    IF record_cost_event.session_id IS NOT NULL THEN
        SELECT s.widget_id INTO session_widget FROM sessions s
        WHERE s.tenant_id = tenant AND s.id = record_cost_event.session_id;
        IF widget IS NULL THEN
            widget := session_widget;
        ELSIF session_widget IS DISTINCT FROM widget AND session_widget IS NOT NULL THEN
            RAISE EXCEPTION 'session % belongs to widget %, not to widget %',
                    record_cost_event.session_id, session_widget, widget
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Leave widget_id NULL to attribute the event to its session''s widget.';
        END IF;
    END IF;

    INSERT INTO cost_events AS e (tenant_id, session_id, service, provider, tokens_used,
                                  cost_usd, metadata, "timestamp", idempotency_key, widget_id)
    VALUES (tenant, record_cost_event.session_id, service, provider, tokens_used, cost_usd,
            CASE WHEN model IS NULL THEN metadata
                 ELSE coalesce(metadata, '{}') || jsonb_build_object('model', model) END,
            coalesce(occurred_at, now()), idempotency_key, widget)
    ON CONFLICT ON CONSTRAINT cost_events_idempotency_key_key DO NOTHING
    RETURNING e.id INTO event_id;
    IF event_id IS NOT NULL THEN
        duplicate := false;
        RETURN;
    END IF;
    SELECT e.id INTO event_id FROM cost_events e
    WHERE e.tenant_id = tenant AND e.idempotency_key = record_cost_event.idempotency_key;
    duplicate := true;
END
$$;
COMMENT ON FUNCTION record_cost_event(text, numeric, text, text, integer, uuid, text, timestamptz, jsonb, uuid) IS
    'Records a cost event for the current tenant; with an idempotency key, a repeat is a no-op that returns the first event with duplicate = true.';
