--
-- Cost accounting, as the application role: record_cost_event (with a
-- repeated idempotency key), cost_summary in the tenant's time zone,
-- budget alerts, budget_status and compute_cost_summary. Tenant a has a
-- budget of 100 USD a month (alerts at 50, 80 and 100 percent) in
-- Europe/Berlin; tenant b has no budget and lives in Asia/Kolkata.
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
-- The events are dated January 2025, older than the late-event window (35
-- days by default, a superuser-only setting): lifted for this session by
-- the superuser. errors.sql shows the window refusing an old event.
SET platform.cost_late_event_window = 0;
SET ROLE platform_regress_app;

-- ========== record_cost_event ==========
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000');
-- An LLM call with an idempotency key; ids are random, so kept in variables.
SELECT event_id AS first_event, duplicate AS first_duplicate
FROM record_cost_event('llm', 30, provider => 'openai', model => 'gpt-4o', tokens_used => 1200,
                       idempotency_key => 'req-1', occurred_at => '2025-01-10 08:30:00+00') \gset
\echo first call, duplicate: :first_duplicate
-- The same key again (a retry): nothing inserted, the first event's id,
-- duplicate = true.
SELECT event_id = :'first_event' AS same_event, duplicate
FROM record_cost_event('llm', 30, provider => 'openai', model => 'gpt-4o', tokens_used => 1200,
                       idempotency_key => 'req-1', occurred_at => '2025-01-10 08:30:00+00');
SELECT count(*) AS events_with_key FROM cost_events WHERE idempotency_key = 'req-1';
-- An embedding call of 0.0000004 USD is stored exactly.
SELECT duplicate FROM record_cost_event('embedding', 0.0000004, provider => 'voyage',
                                        model => 'voyage-3', tokens_used => 20,
                                        occurred_at => '2025-01-10 08:45:00+00');
-- 23:30 UTC on the 15th is 00:30 on the 16th in Berlin: spend 55.0000004,
-- past 50 percent of the budget.
SELECT duplicate FROM record_cost_event('llm', 25, provider => 'anthropic', model => 'claude',
                                        tokens_used => 900, occurred_at => '2025-01-15 23:30:00+00');
-- 85.0000004: past 80 percent. No tokens (speech to text), some metadata.
SELECT duplicate FROM record_cost_event('voice_stt', 30, provider => 'deepgram',
                                        metadata => '{"operation": "transcribe"}',
                                        occurred_at => '2025-01-20 12:00:00+00');
-- 100.0000004: past 100 percent.
SELECT duplicate FROM record_cost_event('vision', 15, provider => 'openai',
                                        occurred_at => '2025-01-25 10:00:00+00');
-- 23:30 UTC on 31 January is 1 February in Berlin: February's budget.
SELECT duplicate FROM record_cost_event('livekit', 20, provider => 'livekit',
                                        occurred_at => '2025-01-31 23:30:00+00');
-- What was stored: the model goes into metadata.
SELECT service, provider, tokens_used, cost_usd, metadata, "timestamp", idempotency_key
FROM cost_events ORDER BY "timestamp";
COMMIT;

-- ========== budget alerts ==========
-- One alert per threshold crossed, for January in Berlin (which starts at
-- 23:00 UTC on 31 December), with the spend that crossed it.
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000');
SELECT threshold, severity, period, period_start, current_spend, metadata, resolved
FROM budget_alerts ORDER BY threshold;
COMMIT;
-- A notification carries only the alert's id; the alerts worker's role reads
-- the alert by it (budget_alert), which the application role may not.
RESET ROLE;
SELECT a.threshold, a.severity, a.current_spend, a.spend_limit, a.notifications_sent,
       a.tenant_id = 'a0000000-0000-4000-8000-000000000000' AS of_tenant_a,
       a.widget_id IS NULL AS of_the_tenants_own_budget
FROM budget_alerts b, budget_alert(b.id) a
WHERE b.tenant_id = 'a0000000-0000-4000-8000-000000000000' ORDER BY a.threshold;
SELECT count(*) AS forged FROM budget_alert(gen_random_uuid());
SET ROLE platform_regress_app;
SELECT * FROM regress.error_of($$SELECT * FROM budget_alert(gen_random_uuid())$$);

-- ========== cost_summary ==========
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000');
-- Days of January (UTC bounds) in the tenant's zone: bucket starts are
-- Berlin midnights, shown in UTC; the livekit event falls on 1 February.
SELECT * FROM cost_summary('2025-01-01 00:00:00+00', '2025-02-01 00:00:00+00');
-- Per model, by month.
SELECT * FROM cost_summary('2025-01-01 00:00:00+00', '2025-02-01 00:00:00+00', 'month', 'model');
-- One bucket for the whole range, per provider.
SELECT * FROM cost_summary('2025-01-01 00:00:00+00', '2025-02-01 00:00:00+00', 'range', 'provider');
-- Hours, with a half-open range: [08:00, 08:45) leaves out the 08:45 event.
SELECT * FROM cost_summary('2025-01-10 08:00:00+00', '2025-01-10 08:45:00+00', 'hour');
-- Weeks in another zone, given as an argument.
SELECT * FROM cost_summary('2025-01-01 00:00:00+00', '2025-02-01 00:00:00+00', 'week',
                           time_zone => 'Asia/Kolkata');
-- An empty range: no rows.
SELECT count(*) AS empty_range
FROM cost_summary('2025-01-10 08:00:00+00', '2025-01-10 08:00:00+00');

-- ========== compute_cost_summary ==========
-- January's row, with every service in the breakdown.
SELECT period_start, period_end, total_cost_usd, breakdown, event_count
FROM compute_cost_summary('2025-01-01 00:00:00+00', '2025-02-01 00:00:00+00');
-- Again: the same row is updated, not a second one written.
SELECT total_cost_usd, event_count
FROM compute_cost_summary('2025-01-01 00:00:00+00', '2025-02-01 00:00:00+00');
SELECT count(*) AS summaries FROM cost_summaries;
COMMIT;

-- ========== budget_status ==========
-- This month (in Berlin): one event of 12.5 USD recorded now.
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000');
SELECT duplicate FROM record_cost_event('llm', 12.5, provider => 'openai');
-- period_start and the projection depend on today: compared, not printed.
SELECT period_start = date_trunc('month', now(), 'Europe/Berlin') AS this_month,
       period_end = (date_trunc('month', now() AT TIME ZONE 'Europe/Berlin') + interval '1 month')
                    AT TIME ZONE 'Europe/Berlin' AS ends_next_month,
       period, time_zone, spend_limit, hard_limit, spend, event_count, percent_used,
       projected_spend >= spend AS projection_covers_spend
FROM budget_status();
COMMIT;

-- ========== daily and weekly budgets ==========
-- Tenant c (search's tenant until now), in New York: 10 USD a day, 30 a
-- week (Monday to Sunday), 100 a month, alerts at 50 and 100 percent.
-- March 2025: the clocks go forward on Sunday the 9th (a day of 23 hours).
BEGIN;
SELECT set_tenant('c0000000-0000-4000-8000-000000000000');
UPDATE tenants SET settings = coalesce(settings, '{}') ||
    '{"timezone": "America/New_York", "maxDailySpend": 10, "maxWeeklySpend": 30,
      "maxMonthlySpend": 100, "budgetAlertThresholds": [50, 100]}';
COMMIT;
BEGIN;
SELECT set_tenant('c0000000-0000-4000-8000-000000000000');
-- Saturday the 8th, 23:30 in New York (04:30 UTC on the 9th): that day's 6 USD.
SELECT duplicate FROM record_cost_event('llm', 6, occurred_at => '2025-03-09 04:30:00+00');
-- Sunday the 9th, 00:30 (EST) and 23:30 (EDT): 9 USD on one day of 23 hours.
SELECT duplicate FROM record_cost_event('llm', 4, occurred_at => '2025-03-09 05:30:00+00');
SELECT duplicate FROM record_cost_event('llm', 5, occurred_at => '2025-03-10 03:30:00+00');
-- Monday the 10th starts a new week and a new day: 12 USD in one statement.
INSERT INTO cost_events (service, cost_usd, "timestamp") VALUES
    ('llm', 7, '2025-03-10 04:30:00+00'), ('vision', 5, '2025-03-10 15:00:00+00');
-- Monday the 31st and Tuesday 1 April: a week across two months, 16 USD.
INSERT INTO cost_events (service, cost_usd, "timestamp") VALUES
    ('llm', 8, '2025-03-31 12:00:00+00'), ('llm', 8, '2025-04-01 12:00:00+00');
-- Each alert once, with the start of its own period in New York.
SELECT period, period_start, threshold, severity, current_spend, metadata
FROM budget_alerts ORDER BY period_start, period, threshold;
COMMIT;

-- ========== hard caps: reservations ==========
-- Tenant c's daily limit becomes a hard cap; today nothing is spent yet.
BEGIN;
SELECT set_tenant('c0000000-0000-4000-8000-000000000000');
UPDATE tenants SET settings = settings || '{"hardSpendLimits": ["daily"]}';
-- 10 USD a day: a call estimated at 4 USD is granted, 6 are left.
SELECT reservation_id AS first_reservation, remaining_usd,
       expires_at = now() + interval '15 minutes' AS expires_by_the_timeout
FROM reserve_spend(4) \gset
\echo remaining after the first reservation: :remaining_usd, expires after the timeout: :expires_by_the_timeout
SELECT remaining_usd FROM reserve_spend(5);
-- 4 + 5 reserved: 1.5 more is refused with PB001 (see errors.sql), 1 fits.
SELECT remaining_usd FROM reserve_spend(1);
SELECT period, spend_limit, hard_limit, spend, reserved, remaining
FROM budget_status() WHERE period = 'daily';
-- The first call cost 3.25: settled, recorded, its reservation closed.
SELECT duplicate FROM settle_spend(:'first_reservation', 'llm', 3.25, provider => 'openai',
                                   model => 'gpt-4o', tokens_used => 900);
-- A retry of the settlement: the same event, duplicate.
SELECT duplicate FROM settle_spend(:'first_reservation', 'llm', 3.25, provider => 'openai',
                                   model => 'gpt-4o', tokens_used => 900);
SELECT service, cost_usd, metadata, idempotency_key = 'reservation:' || :'first_reservation' AS keyed
FROM cost_events WHERE "timestamp" >= now() - interval '1 minute';
SELECT spend, reserved, remaining FROM budget_status() WHERE period = 'daily';
ROLLBACK;

-- ========== tenant a: a widget's budget ==========
-- The public chat widget has a daily hard cap of its own, on the tenant's
-- calendar; its events are those recorded for it (by name, or through a
-- session of the widget).
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000');
INSERT INTO widgets (id, name, domain_whitelist, settings)
VALUES ('a0000000-0000-4000-8000-0000000000a1', 'Public chat', '[]',
        '{"maxDailySpend": 2, "hardSpendLimits": ["daily"], "budgetAlertThresholds": [50]}');
INSERT INTO sessions (id, widget_id)
VALUES ('a0000000-0000-4000-8000-0000000000c1', 'a0000000-0000-4000-8000-0000000000a1');
SELECT duplicate FROM record_cost_event('llm', 0.75, session_id => 'a0000000-0000-4000-8000-0000000000c1');
SELECT duplicate FROM record_cost_event('llm', 0.25, widget_id => 'a0000000-0000-4000-8000-0000000000a1');
SELECT reservation_id AS widget_reservation, remaining_usd
FROM reserve_spend(0.5, widget_id => 'a0000000-0000-4000-8000-0000000000a1') \gset
SELECT :'remaining_usd' AS remaining_usd;
SELECT period, spend_limit, hard_limit, spend, reserved, remaining, event_count
FROM budget_status('a0000000-0000-4000-8000-0000000000a1');
-- Settled: the event is the widget's.
SELECT duplicate FROM settle_spend(:'widget_reservation', 'llm', 0.5);
SELECT widget_id, count(*), sum(cost_usd) FROM cost_events
WHERE "timestamp" >= now() - interval '1 minute' GROUP BY 1 ORDER BY 1;
SELECT widget_id, period, threshold, current_spend FROM budget_alerts
WHERE widget_id IS NOT NULL;
ROLLBACK;

-- ========== tenant b: its own events, no budget ==========
BEGIN;
SELECT set_tenant('b0000000-0000-4000-8000-000000000000');
SELECT duplicate FROM record_cost_event('llm', 1.25, provider => 'openai', model => 'gpt-4o-mini',
                                        tokens_used => 300, idempotency_key => 'req-1',
                                        occurred_at => '2025-01-10 20:00:00+00');
-- The same idempotency key as tenant a's is another tenant's: not a duplicate.
SELECT count(*) AS visible_events FROM cost_events;
-- 20:00 UTC is 01:30 the next day in Kolkata.
SELECT * FROM cost_summary('2025-01-01 00:00:00+00', '2025-02-01 00:00:00+00');
-- No maxMonthlySpend: no limit, no percentage.
SELECT period, time_zone, spend_limit, spend, event_count, percent_used FROM budget_status();
SELECT count(*) AS alerts FROM budget_alerts;
COMMIT;
RESET ROLE;
