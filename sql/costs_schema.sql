-- Cost accounting: what the cost tables need beyond the document's columns,
-- and the two derived tables the triggers keep current (cost_rollups.sql).
-- ALTERs rather than edits of tables.sql, so the same text upgrades 0.1.0.

-- Idempotent recording (record_cost_event): a client-chosen key, unique per
-- tenant. NULL keys never conflict, so the document's INSERTs are unaffected.
ALTER TABLE cost_events ADD COLUMN idempotency_key text;
ALTER TABLE cost_events
    ADD CONSTRAINT cost_events_idempotency_key_check
        CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    ADD CONSTRAINT cost_events_idempotency_key_key UNIQUE (tenant_id, idempotency_key);

-- An alert's identity is (tenant, period, period start, threshold): the
-- unique index is what makes concurrent writers fire it exactly once
-- (INSERT ... ON CONFLICT DO NOTHING). Alerts written by hand, without a
-- period_start, never conflict. period_start leads: the index exists for
-- uniqueness, and the planned tenant-leading indexes serve the tenant's reads.
ALTER TABLE budget_alerts ADD COLUMN period_start timestamptz;
CREATE UNIQUE INDEX budget_alert_identity_idx
    ON budget_alerts (period_start, tenant_id, period, threshold);

-- Spend per tenant, UTC hour, service, provider and model: what cost_summary()
-- reads for whole hours. Sums, never floats: the totals are exact. A row with
-- no events left is deleted, so every row stands for at least one event.
-- token_events counts the events that carried tokens_used, so a sum over rows
-- can be NULL exactly when SUM(tokens_used) over the raw rows would be.
-- (No CHECK on the counts: ON CONFLICT checks the proposed row, which for a
-- delete is a negative delta; platform_verify_cost_rollups() is the check.)
CREATE TABLE cost_rollups_hourly (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    hour timestamptz NOT NULL,
    service text NOT NULL,
    provider text,
    model text,
    total_cost_usd numeric NOT NULL,
    total_tokens bigint NOT NULL,
    token_events bigint NOT NULL,
    event_count bigint NOT NULL,
    CONSTRAINT cost_rollups_hourly_key
        UNIQUE NULLS NOT DISTINCT (tenant_id, hour, service, provider, model),
    CONSTRAINT cost_rollups_hourly_hour_check CHECK (hour = date_trunc('hour', hour, 'UTC'))
) WITH (fillfactor = 80);  -- room for HOT updates: every event rewrites its row

-- Spend per tenant and budget month (in the tenant's time zone): one row to
-- lock and read, so budget checks and budget_status() never sum a month.
CREATE TABLE cost_budget_periods (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    period_start timestamptz NOT NULL,
    spend numeric NOT NULL,
    event_count bigint NOT NULL,
    PRIMARY KEY (tenant_id, period_start)
) WITH (fillfactor = 80);

-- Both hold sums across tenants and are reached only through SECURITY DEFINER
-- functions: no privileges for anyone but the owner (the application role is
-- never granted them). Registered for pg_dump so the tables are known, with a
-- filter that dumps no rows: the rows are derived, and the triggers rebuild
-- them from cost_events as a restore loads it (dumping them too would count
-- every event twice).
REVOKE ALL ON cost_rollups_hourly, cost_budget_periods FROM PUBLIC;
SELECT pg_extension_config_dump('cost_rollups_hourly', 'WHERE false');
SELECT pg_extension_config_dump('cost_budget_periods', 'WHERE false');
