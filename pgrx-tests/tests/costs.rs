//! Cost accounting as the application sees it: cost_summary() equal to a raw
//! GROUP BY in every zone and unit (DST days, :30 and :45 zones), rollups
//! that stay exact through inserts, late events, updates, deletes and
//! concurrent writers with duplicate keys, budget alerts that fire exactly
//! once, and every function confined to the context's tenant.

use std::collections::BTreeSet;
use std::time::Duration;

use platform_client_tests::costs::*;
use platform_client_tests::*;
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use uuid::Uuid;

/// Zones with DST on different dates, a 30-minute DST shift (Lord Howe), and
/// offsets of :30 and :45 that cut UTC hours in two.
const ZONES: [&str; 6] = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
];

/// Ranges that are not aligned to anything, each around DST changes of 2026:
/// March (US 8th, EU 29th), April (Lord Howe 5th) and October/November (EU
/// 25th, US 1st, Lord Howe 4 October).
const RANGES: [(&str, &str); 3] = [
    ("2026-03-06 13:17:05.5+00", "2026-04-07 02:45:00+00"),
    ("2026-09-28 00:00:00+00", "2026-11-03 23:59:59.999999+00"),
    ("2026-10-24 22:30:00+00", "2026-10-26 01:15:00+00"),
];

/// Random events (fixed seed) over `from`..`to` for `tenant`, plus events on
/// the instants where buckets meet: local midnights and half hours, and one
/// microsecond either side.
fn load_random_events(tenant: Uuid, from: &str, to: &str, count: i32) {
    backfill(
        "INSERT INTO cost_events (tenant_id, service, provider, tokens_used, cost_usd, metadata, \"timestamp\")
         SELECT $1, s.service, s.provider,
                CASE WHEN random() < 0.8 THEN (random() * 5000)::int END,
                round((random() * 0.05)::numeric, 12),
                CASE WHEN random() < 0.7 THEN jsonb_build_object('model', s.model) END,
                $2::text::timestamptz + random() * ($3::text::timestamptz - $2::text::timestamptz)
         FROM (SELECT setseed(0.4242)) seed, generate_series(1, $4) g,
              LATERAL (SELECT * FROM (VALUES ('llm', 'openai', 'gpt-4o'), ('llm', 'anthropic', 'claude'),
                                              ('embedding', 'openai', 'text-embedding-3'),
                                              ('voice_stt', 'deepgram', 'nova'), ('livekit', NULL, NULL))
                              AS v(service, provider, model)
                       ORDER BY random() + g * 0 LIMIT 1) s",
        &[&tenant, &from, &to, &count],
    );
    backfill(
        "INSERT INTO cost_events (tenant_id, service, provider, tokens_used, cost_usd, \"timestamp\")
         SELECT $1, 'llm', 'openai', 7, 0.000000400000, b + d
         FROM generate_series($2::text::timestamptz, $3::text::timestamptz, interval '15 minutes') b,
              unnest(ARRAY[interval '-1 microsecond', interval '0', interval '1 microsecond']) d
         ",
        &[&tenant, &from, &to],
    );
}

fn summary_as_app(
    tenant: Uuid,
    range: (&str, &str),
    unit: &str,
    detail: &str,
    zone: Option<&str>,
) -> Vec<String> {
    let mut app = app();
    as_tenant(&mut app, tenant, |tx| {
        text_rows(
            tx,
            "SELECT * FROM cost_summary($1::text::timestamptz, $2::text::timestamptz, $3, $4, $5)",
            &[&range.0, &range.1, &unit, &detail, &zone],
        )
    })
}

fn raw_summary(tenant: Uuid, range: (&str, &str), unit: &str, zone: &str) -> Vec<String> {
    text_rows(
        &mut admin(),
        &RAW_SUMMARY
            .replace("$2", "$2::text::timestamptz")
            .replace("$3", "$3::text::timestamptz"),
        &[&tenant, &range.0, &range.1, &unit, &zone],
    )
}

#[test]
fn summaries_equal_a_raw_group_by_in_every_zone_and_unit() {
    let tenant = tenant_with_settings("Exact", "{}");
    load_random_events(tenant, "2026-03-01", "2026-04-15", 4000);
    load_random_events(tenant, "2026-09-25", "2026-11-10", 4000);
    let mut compared = 0;
    for zone in ZONES {
        for range in RANGES {
            for unit in ["hour", "day", "week", "month"] {
                let summary = summary_as_app(tenant, range, unit, "model", Some(zone));
                let raw = raw_summary(tenant, range, unit, zone);
                assert!(!raw.is_empty());
                assert_eq!(summary, raw, "{zone} {unit} {range:?}");
                compared += raw.len();
            }
            // The whole range in one bucket is the sum of its days.
            let total = summary_as_app(tenant, range, "range", "service", Some(zone));
            let by_day = text_rows(
                &mut admin(),
                "SELECT $2::text::timestamptz, service, NULL::text, NULL::text, sum(cost_usd),
                        sum(tokens_used), count(*)
                 FROM cost_events
                 WHERE tenant_id = $1 AND \"timestamp\" >= $2::text::timestamptz
                   AND \"timestamp\" < $3::text::timestamptz
                 GROUP BY service ORDER BY service",
                &[&tenant, &range.0, &range.1],
            );
            assert_eq!(total, by_day, "{zone} range {range:?}");
        }
    }
    assert!(compared > 5000, "only {compared} rows compared");
}

#[test]
fn buckets_follow_the_tenants_zone_unless_overridden() {
    let tenant = tenant_with_settings("Kolkata", r#"{"timezone": "Asia/Kolkata"}"#);
    load_random_events(tenant, "2026-10-20", "2026-10-28", 500);
    let range = ("2026-10-21 00:00:00+00", "2026-10-27 00:00:00+00");
    assert_eq!(
        summary_as_app(tenant, range, "day", "model", None),
        raw_summary(tenant, range, "day", "Asia/Kolkata")
    );
    let first: Vec<String> = summary_as_app(tenant, range, "day", "service", None);
    assert!(
        first[0].starts_with("(\"2026-10-20 18:30:00+00\""),
        "{first:?}"
    );
    assert_eq!(
        summary_as_app(tenant, range, "day", "model", Some("UTC")),
        raw_summary(tenant, range, "day", "UTC")
    );
    // Per provider: the provider is there, the model is not.
    let per_provider = summary_as_app(tenant, range, "week", "provider", None);
    assert!(per_provider.iter().any(|r| r.contains(",openai,,")));
}

#[test]
fn record_cost_event_is_idempotent_per_tenant() {
    let a = tenant_with_settings("Idempotent A", "{}");
    let b = tenant_with_settings("Idempotent B", "{}");
    let mut app = app();
    let record = "SELECT event_id, duplicate FROM record_cost_event('llm', 0.25, 'openai', 'gpt-4o', 120, idempotency_key => $1)";
    let (first, dup): (Uuid, bool) = as_tenant(&mut app, a, |tx| {
        let r = tx.query_one(record, &[&"req-1"]).unwrap();
        (r.get(0), r.get(1))
    });
    assert!(!dup);
    let (again, dup): (Uuid, bool) = as_tenant(&mut app, a, |tx| {
        let r = tx.query_one(record, &[&"req-1"]).unwrap();
        (r.get(0), r.get(1))
    });
    assert_eq!(
        (again, dup),
        (first, true),
        "the retry is a no-op that says so"
    );
    // The same key is another tenant's own business.
    let (other, dup): (Uuid, bool) = as_tenant(&mut app, b, |tx| {
        let r = tx.query_one(record, &[&"req-1"]).unwrap();
        (r.get(0), r.get(1))
    });
    assert!(!dup && other != first);
    let counts: Vec<String> = text_rows(
        &mut admin(),
        "SELECT tenant_id = $1, count(*), sum(cost_usd), min(metadata->>'model')
         FROM cost_events WHERE tenant_id IN ($1, $2) GROUP BY 1 ORDER BY 1",
        &[&a, &b],
    );
    assert_eq!(
        counts,
        vec![
            "(f,1,0.250000000000,gpt-4o)".to_owned(),
            "(t,1,0.250000000000,gpt-4o)".to_owned()
        ]
    );
    // Without a key every call records.
    as_tenant(&mut app, a, |tx| {
        for _ in 0..2 {
            tx.execute("SELECT record_cost_event('vision', 1)", &[])
                .unwrap();
        }
    });
    assert_eq!(
        text_rows(
            &mut admin(),
            "SELECT count(*) FROM cost_events WHERE tenant_id = $1",
            &[&a]
        ),
        vec!["(3)".to_owned()]
    );
}

/// This tenant's rollup rows, as text.
fn rollup_rows(tenant: Uuid) -> BTreeSet<String> {
    text_rows(
        &mut admin(),
        "SELECT r FROM cost_rollups_hourly r WHERE tenant_id = $1",
        &[&tenant],
    )
    .into_iter()
    .collect()
}

#[test]
fn a_late_event_touches_only_its_hour_and_one_past_the_window_is_refused() {
    let tenant = tenant_with_settings("Late", "{}");
    let mut app = app();
    as_tenant(&mut app, tenant, |tx| {
        tx.execute(
            "SELECT record_cost_event('llm', 0.5, 'openai', occurred_at => now() - make_interval(days => d))
             FROM generate_series(0, 30, 3) d",
            &[],
        )
        .unwrap();
    });
    let before = rollup_rows(tenant);
    as_tenant(&mut app, tenant, |tx| {
        tx.execute(
            "SELECT record_cost_event('llm', 0.125, 'openai', occurred_at => now() - interval '10 days 2 hours')",
            &[],
        )
        .unwrap();
    });
    let after = rollup_rows(tenant);
    let changed: Vec<_> = after.symmetric_difference(&before).collect();
    assert_eq!(changed.len(), 1, "one new hour, nothing else: {changed:?}");
    as_tenant(&mut app, tenant, |tx| {
        tx.execute(
            "SELECT record_cost_event('llm', 0.125, 'openai', occurred_at => now() - interval '6 days')",
            &[],
        )
        .unwrap();
    });
    let changed = rollup_rows(tenant).symmetric_difference(&after).count();
    assert_eq!(changed, 2, "an existing hour's row replaced, nothing else");

    as_tenant(&mut app, tenant, |tx| {
        assert_sqlstate(
            attempt(tx, |tx| {
                tx.execute(
                    "SELECT record_cost_event('llm', 1, occurred_at => now() - interval '36 days')",
                    &[],
                )
            }),
            SqlState::INVALID_PARAMETER_VALUE,
            "an event older than the 35-day window",
        );
        assert_sqlstate(
            attempt(tx, |tx| {
                tx.execute(
                    "INSERT INTO cost_events (service, cost_usd, \"timestamp\") VALUES ('llm', 1, now() - interval '40 days')",
                    &[],
                )
            }),
            SqlState::INVALID_PARAMETER_VALUE,
            "a plain INSERT of an old event",
        );
    });
    assert_eq!(rollup_differences(&mut admin()), Vec::<String>::new());
}

#[test]
fn updates_and_deletes_apply_as_deltas() {
    let tenant = tenant_with_settings("Deltas", r#"{"timezone": "Asia/Kathmandu"}"#);
    load_random_events(tenant, "2026-10-01", "2026-10-05", 300);
    backfill(
        "UPDATE cost_events SET cost_usd = cost_usd * 3, tokens_used = NULL
         WHERE tenant_id = $1 AND service = 'llm'",
        &[&tenant],
    );
    backfill(
        "UPDATE cost_events SET \"timestamp\" = \"timestamp\" + interval '17 hours 45 minutes',
                                service = 'vision', provider = NULL
         WHERE tenant_id = $1 AND service = 'embedding'",
        &[&tenant],
    );
    backfill(
        "DELETE FROM cost_events WHERE tenant_id = $1 AND service = 'voice_stt'",
        &[&tenant],
    );
    let mut admin = admin();
    assert_eq!(rollup_differences(&mut admin), Vec::<String>::new());
    let range = ("2026-10-01 00:00:00+00", "2026-10-07 00:00:00+00");
    assert_eq!(
        summary_as_app(tenant, range, "day", "model", None),
        raw_summary(tenant, range, "day", "Asia/Kathmandu")
    );
    // Deleting everything leaves no rollup row behind.
    backfill("DELETE FROM cost_events WHERE tenant_id = $1", &[&tenant]);
    assert!(rollup_rows(tenant).is_empty());
    assert_eq!(
        text_rows(
            &mut admin,
            "SELECT count(*) FROM cost_budget_periods WHERE tenant_id = $1",
            &[&tenant]
        ),
        vec!["(0)".to_owned()]
    );
}

/// The budget alerts of `tenant` announced on `listener` within a second, as
/// the worker that sends alerts reads them: a notification carries only the
/// alert's id, which the worker looks up with budget_alert() under a role of
/// its own (the application role may not).
fn notifications_for(listener: &mut postgres::Client, tenant: Uuid) -> Vec<NotifiedAlert> {
    let mut ids = Vec::new();
    let mut notifications = listener.notifications();
    let mut pending = notifications.timeout_iter(Duration::from_secs(1));
    while let Some(n) = pending.next().unwrap() {
        assert_eq!(n.channel(), "platform_budget_alerts");
        let id = n
            .payload()
            .strip_prefix("{\"alert_id\" : \"")
            .and_then(|rest| rest.strip_suffix("\"}"))
            .unwrap_or_else(|| panic!("a payload of the alert id alone: {}", n.payload()));
        ids.push(Uuid::parse_str(id).expect("a UUID"));
    }
    let mut worker = alerts_worker();
    ids.iter()
        .flat_map(|id| {
            worker
                .query(
                    "SELECT threshold::text, severity, widget_id, spend_limit::text
                     FROM budget_alert($1) WHERE tenant_id = $2",
                    &[id, &tenant],
                )
                .unwrap()
        })
        .map(|row| NotifiedAlert {
            threshold: row.get(0),
            severity: row.get(1),
            widget: row.get(2),
            spend_limit: row.get(3),
        })
        .collect()
}

#[derive(Debug)]
struct NotifiedAlert {
    threshold: String,
    severity: String,
    /// The widget whose budget it is about; None for the tenant's own.
    widget: Option<Uuid>,
    /// The limit of the alert's own period.
    spend_limit: String,
}

/// A connection as the role of the worker that sends budget alerts: granted
/// budget_alert() and nothing else.
fn alerts_worker() -> postgres::Client {
    static ROLE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let role = ROLE.get_or_init(|| {
        let role = format!("platform_alerts_{}", std::process::id());
        admin()
            .batch_execute(&format!(
                "DROP ROLE IF EXISTS {role}; {}; GRANT USAGE ON SCHEMA public TO {role};
                 GRANT EXECUTE ON FUNCTION budget_alert(uuid) TO {role}",
                create_login_role(&role, "NOSUPERUSER NOBYPASSRLS")
            ))
            .unwrap();
        role
    });
    connect_as(role)
}

#[test]
fn alert_notifications_carry_only_an_id_that_only_the_alerts_worker_can_read() {
    let tenant = tenant_with_settings("Notified", r#"{"maxMonthlySpend": 10}"#);
    let mut listener = app();
    listener
        .batch_execute("LISTEN platform_budget_alerts")
        .unwrap();
    let mut app = app();
    as_tenant(&mut app, tenant, |tx| {
        tx.execute("SELECT record_cost_event('llm', 6)", &[])
            .unwrap();
    });
    let fired = notifications_for(&mut listener, tenant);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        (fired[0].threshold.as_str(), fired[0].severity.as_str()),
        ("50.00", "warning")
    );
    let alert: Uuid = admin()
        .query_one(
            "SELECT id FROM budget_alerts WHERE tenant_id = $1",
            &[&tenant],
        )
        .unwrap()
        .get(0);
    // The application role may not read an alert by id, under no context
    // or another tenant's.
    let other = provision_tenant("Curious");
    for context in [None, Some(other)] {
        let mut tx = app.transaction().unwrap();
        if let Some(other) = context {
            tx.execute("SELECT set_tenant($1)", &[&other]).unwrap();
        }
        assert_sqlstate(
            attempt(&mut tx, |tx| {
                tx.query("SELECT * FROM budget_alert($1)", &[&alert])
            }),
            SqlState::INSUFFICIENT_PRIVILEGE,
            "budget_alert as the application role",
        );
        let seen = tx
            .query("SELECT * FROM budget_alerts WHERE id = $1", &[&alert])
            .unwrap();
        assert!(seen.is_empty(), "another tenant's alert through the table");
        tx.rollback().unwrap();
    }
    // A forged notification names no alert, or one the worker reads as it is.
    app.execute(
        "SELECT pg_notify('platform_budget_alerts', json_build_object('alert_id', gen_random_uuid())::text)",
        &[],
    )
    .unwrap();
    let forged = notifications_for(&mut listener, tenant);
    assert!(forged.is_empty(), "{forged:?}");
}

#[test]
fn concurrent_writers_with_duplicates_fire_each_threshold_exactly_once() {
    const WRITERS: usize = 6;
    const KEYS: usize = 150;
    let tenant = tenant_with_settings(
        "Concurrent",
        r#"{"maxMonthlySpend": 100, "timezone": "Asia/Kolkata"}"#,
    );
    let mut listener = app();
    listener
        .batch_execute("LISTEN platform_budget_alerts")
        .unwrap();

    // Every writer records all keys, each in its own transaction, starting at
    // a different offset: every key is recorded once and attempted six times.
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            std::thread::spawn(move || {
                let mut client = app();
                let mut duplicates = 0;
                for i in 0..KEYS {
                    let key = format!("call-{}", (i + w * 25) % KEYS);
                    let duplicate: bool = as_tenant(&mut client, tenant, |tx| {
                        tx.query_one(
                            "SELECT duplicate FROM record_cost_event('llm', 1, 'openai', 'gpt-4o', 10, idempotency_key => $1)",
                            &[&key],
                        )
                        .unwrap()
                        .get(0)
                    });
                    duplicates += usize::from(duplicate);
                }
                duplicates
            })
        })
        .collect();
    let duplicates: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(duplicates, KEYS * (WRITERS - 1));

    let mut admin = admin();
    assert_eq!(rollup_differences(&mut admin), Vec::<String>::new());
    let alerts = text_rows(
        &mut admin,
        "SELECT threshold, severity, current_spend, period, period_start = date_trunc('month', now(), 'Asia/Kolkata')
         FROM budget_alerts WHERE tenant_id = $1 ORDER BY threshold",
        &[&tenant],
    );
    assert_eq!(
        alerts,
        vec![
            "(50.00,warning,50.000000000000,monthly,t)".to_owned(),
            "(80.00,warning,80.000000000000,monthly,t)".to_owned(),
            "(100.00,critical,100.000000000000,monthly,t)".to_owned(),
        ],
        "each threshold once, at the spend that reached it"
    );
    let mut fired: Vec<(String, String)> = notifications_for(&mut listener, tenant)
        .iter()
        .map(|p| (p.threshold.clone(), p.severity.clone()))
        .collect();
    fired.sort();
    assert_eq!(
        fired,
        vec![
            ("100.00".to_owned(), "critical".to_owned()),
            ("50.00".to_owned(), "warning".to_owned()),
            ("80.00".to_owned(), "warning".to_owned()),
        ]
    );
    let mut app = app();
    let status = as_tenant(&mut app, tenant, |tx| {
        text_rows(
            tx,
            "SELECT spend_limit, spend, event_count, percent_used, time_zone FROM budget_status()",
            &[],
        )
    });
    assert_eq!(
        status,
        vec!["(100,150.000000000000,150,150.00,Asia/Kolkata)".to_owned()]
    );
}

#[test]
fn thresholds_are_configurable_and_a_rollback_fires_nothing() {
    let tenant = tenant_with_settings(
        "Thresholds",
        r#"{"maxMonthlySpend": 10, "budgetAlertThresholds": [25, 90]}"#,
    );
    let mut listener = app();
    listener
        .batch_execute("LISTEN platform_budget_alerts")
        .unwrap();
    let mut app = app();
    // Rolled back: neither an alert nor a notification.
    {
        let mut tx = app.transaction().unwrap();
        tx.execute("SELECT set_tenant($1)", &[&tenant]).unwrap();
        tx.execute("SELECT record_cost_event('llm', 9.5)", &[])
            .unwrap();
        tx.rollback().unwrap();
    }
    assert!(notifications_for(&mut listener, tenant).is_empty());
    as_tenant(&mut app, tenant, |tx| {
        tx.execute("SELECT record_cost_event('llm', 3)", &[])
            .unwrap();
    });
    as_tenant(&mut app, tenant, |tx| {
        tx.execute("SELECT record_cost_event('llm', 6.5)", &[])
            .unwrap();
    });
    let fired: Vec<String> = notifications_for(&mut listener, tenant)
        .iter()
        .map(|p| p.threshold.clone())
        .collect();
    assert_eq!(fired, vec!["25.00".to_owned(), "90.00".to_owned()]);
    let status = as_tenant(&mut app, tenant, |tx| {
        text_rows(tx, "SELECT spend_limit, spend, percent_used, projected_spend >= spend FROM budget_status()", &[])
    });
    assert_eq!(status, vec!["(10,9.500000000000,95.00,t)".to_owned()]);
    // A new threshold the spend already passed fires at once, and only it.
    as_tenant(&mut app, tenant, |tx| {
        tx.execute(
            "UPDATE tenants SET settings = settings || '{\"budgetAlertThresholds\": [25, 90, 95]}'",
            &[],
        )
        .unwrap();
    });
    let fired: Vec<String> = notifications_for(&mut listener, tenant)
        .iter()
        .map(|p| p.threshold.clone())
        .collect();
    assert_eq!(fired, vec!["95.00".to_owned()]);
    // No budget: limit and percent are NULL, spend is still there.
    let free = tenant_with_settings("No budget", "{}");
    let status = as_tenant(&mut app, free, |tx| {
        tx.execute("SELECT record_cost_event('vision', 2)", &[])
            .unwrap();
        text_rows(
            tx,
            "SELECT spend_limit, spend, percent_used FROM budget_status()",
            &[],
        )
    });
    assert_eq!(status, vec!["(,2.000000000000,)".to_owned()]);
}

#[test]
fn compute_cost_summary_is_idempotent() {
    let tenant = tenant_with_settings("Summaries", "{}");
    load_random_events(tenant, "2026-06-01", "2026-07-01", 200);
    let mut app = app();
    let compute = "SELECT id, total_cost_usd, breakdown, event_count
                   FROM compute_cost_summary('2026-06-01', '2026-07-01')";
    let first = as_tenant(&mut app, tenant, |tx| text_rows(tx, compute, &[]));
    let again = as_tenant(&mut app, tenant, |tx| text_rows(tx, compute, &[]));
    assert_eq!(first, again, "the same row, the same figures");
    let expected = text_rows(
        &mut admin(),
        "SELECT sum(cost_usd),
                (SELECT jsonb_object_agg(s, coalesce((SELECT sum(cost_usd) FROM cost_events
                                                       WHERE tenant_id = $1 AND service = s
                                                         AND \"timestamp\" >= '2026-06-01'
                                                         AND \"timestamp\" < '2026-07-01'), 0))
                 FROM unnest('{vision,voice_stt,voice_tts,llm,embedding,livekit}'::text[]) s),
                count(*)
         FROM cost_events
         WHERE tenant_id = $1 AND \"timestamp\" >= '2026-06-01' AND \"timestamp\" < '2026-07-01'",
        &[&tenant],
    );
    let computed = as_tenant(&mut app, tenant, |tx| {
        text_rows(
            tx,
            "SELECT total_cost_usd, breakdown, event_count FROM cost_summaries
             WHERE period_start = '2026-06-01' AND period_end = '2026-07-01'",
            &[],
        )
    });
    assert_eq!(
        computed, expected,
        "one row, equal to the raw sums per service"
    );
}

#[test]
fn bad_input_is_refused_with_a_sqlstate() {
    let tenant = tenant_with_settings("Bad input", "{}");
    let mut app = app();
    let invalid = SqlState::INVALID_PARAMETER_VALUE;
    let cases: [(&str, SqlState); 14] = [
        ("SELECT record_cost_event('telepathy', 1)", invalid.clone()),
        ("SELECT record_cost_event('llm', -0.01)", invalid.clone()),
        ("SELECT record_cost_event('llm', 'NaN')", invalid.clone()),
        ("SELECT record_cost_event('llm', 'Infinity')", invalid.clone()),
        ("SELECT record_cost_event('llm', NULL)", invalid.clone()),
        ("SELECT record_cost_event('llm', 1, tokens_used => -1)", invalid.clone()),
        ("SELECT record_cost_event('llm', 1, idempotency_key => ' ')", invalid.clone()),
        ("SELECT * FROM cost_summary(now(), now() - interval '1 day')", invalid.clone()),
        ("SELECT * FROM cost_summary(now() - interval '1 day', now(), 'fortnight')", invalid.clone()),
        ("SELECT * FROM cost_summary(now() - interval '1 day', now(), 'day', 'colour')", invalid.clone()),
        ("SELECT * FROM cost_summary(now() - interval '1 day', now(), 'day', 'service', 'Mars/Olympus')", invalid.clone()),
        ("SELECT * FROM cost_summary('-infinity', now())", invalid.clone()),
        ("SELECT * FROM cost_summary(now(), NULL)", invalid.clone()),
        ("SELECT * FROM cost_summary('1000-01-01', '2026-01-01', 'hour')", SqlState::PROGRAM_LIMIT_EXCEEDED),
    ];
    as_tenant(&mut app, tenant, |tx| {
        for (statement, expected) in cases {
            assert_sqlstate(
                attempt(tx, |tx| tx.execute(statement, &[])),
                expected,
                statement,
            );
        }
        assert_sqlstate(
            attempt(tx, |tx| {
                tx.execute("SELECT compute_cost_summary(now(), now())", &[])
            }),
            SqlState::INVALID_PARAMETER_VALUE,
            "an empty summary period",
        );
        // The table's own checks catch a direct INSERT.
        assert_sqlstate(
            attempt(tx, |tx| {
                tx.execute(
                    "INSERT INTO cost_events (service, cost_usd) VALUES ('llm', 'Infinity')",
                    &[],
                )
            }),
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            "an infinite cost",
        );
    });
    // Nothing of the above was recorded.
    assert_eq!(
        text_rows(
            &mut admin(),
            "SELECT count(*) FROM cost_events WHERE tenant_id = $1",
            &[&tenant]
        ),
        vec!["(0)".to_owned()]
    );
}

#[test]
fn every_cost_function_sees_only_the_contexts_tenant() {
    let a = tenant_with_settings("Isolated A", r#"{"maxMonthlySpend": 1}"#);
    let b = tenant_with_settings("Isolated B", r#"{"maxMonthlySpend": 1000}"#);
    let mut app = app();
    as_tenant(&mut app, a, |tx| {
        tx.execute(
            "SELECT record_cost_event('llm', 2, idempotency_key => 'shared')",
            &[],
        )
        .unwrap();
    });
    let range = "now() - interval '1 day', now() + interval '1 day'";
    let reads = [
        format!("SELECT * FROM cost_summary({range})"),
        format!("SELECT * FROM cost_summary({range}, 'range', 'model')"),
        "SELECT spend, event_count FROM budget_status() WHERE spend > 0".to_owned(),
        "SELECT * FROM cost_events".to_owned(),
        "SELECT * FROM budget_alerts".to_owned(),
    ];
    as_tenant(&mut app, b, |tx| {
        for read in &reads {
            assert_eq!(
                text_rows(tx, read, &[]),
                Vec::<String>::new(),
                "B reads A's costs: {read}"
            );
        }
        let summary = text_rows(tx, "SELECT total_cost_usd, event_count FROM compute_cost_summary(now() - interval '1 day', now() + interval '1 day')", &[]);
        assert_eq!(summary, vec!["(0.000000000000,0)".to_owned()]);
        let dup: bool = tx
            .query_one(
                "SELECT duplicate FROM record_cost_event('llm', 1, idempotency_key => 'shared')",
                &[],
            )
            .unwrap()
            .get(0);
        assert!(!dup, "A's key is not B's duplicate");
    });
    as_tenant(&mut app, a, |tx| {
        for read in &reads {
            assert!(
                !text_rows(tx, read, &[]).is_empty(),
                "A sees its own: {read}"
            );
        }
    });
    // Without a context the readers return nothing and the writers refuse;
    // the rollups and the operators' functions are out of the application's
    // reach.
    let mut tx = app.transaction().unwrap();
    for read in [
        format!("SELECT * FROM cost_summary({range})"),
        "SELECT * FROM budget_status()".to_owned(),
    ] {
        assert_eq!(
            attempt(&mut tx, |tx| tx.query(read.as_str(), &[]))
                .unwrap_or_else(|e| panic!("{read}: {e}"))
                .len(),
            0,
            "{read} without a context"
        );
    }
    for statement in [
        "SELECT record_cost_event('llm', 1)".to_owned(),
        "SELECT compute_cost_summary(now() - interval '1 day', now())".to_owned(),
        "SELECT * FROM cost_rollups_hourly".to_owned(),
        "SELECT * FROM cost_budget_periods".to_owned(),
        "SELECT * FROM cost_widget_budget_periods".to_owned(),
        "SELECT * FROM platform_verify_cost_rollups()".to_owned(),
        "SELECT platform_rebuild_cost_rollups()".to_owned(),
        "SELECT platform_fire_budget_alerts(gen_random_uuid(), NULL, 'monthly', now(), 1000, '{}')"
            .to_owned(),
        "SET platform.cost_late_event_window = 0".to_owned(),
    ] {
        assert_sqlstate(
            attempt(&mut tx, |tx| tx.execute(statement.as_str(), &[])),
            SqlState::INSUFFICIENT_PRIVILEGE,
            &statement,
        );
    }
    tx.rollback().unwrap();
}

#[test]
fn changing_the_time_zone_recomputes_budget_months() {
    let tenant = tenant_with_settings("Moving", r#"{"timezone": "Pacific/Kiritimati"}"#);
    load_random_events(tenant, "2026-05-30", "2026-06-03", 200);
    let months = || {
        text_rows(
            &mut admin(),
            "SELECT period_start, event_count FROM cost_budget_periods WHERE tenant_id = $1 ORDER BY 1",
            &[&tenant],
        )
    };
    let before = months();
    let mut app = app();
    as_tenant(&mut app, tenant, |tx| {
        tx.execute(
            "UPDATE tenants SET settings = settings || '{\"timezone\": \"Pacific/Pago_Pago\"}'",
            &[],
        )
        .unwrap();
        assert_sqlstate(
            attempt(tx, |tx| {
                tx.execute(
                    "UPDATE tenants SET settings = '{\"timezone\": \"Nowhere/Land\"}'",
                    &[],
                )
            }),
            SqlState::INVALID_PARAMETER_VALUE,
            "an unknown zone in the settings",
        );
    });
    assert_sqlstate(
        admin().query_one(
            "SELECT create_tenant('Nowhere', 'starter', '{\"timezone\": \"Mars/Olympus\"}')",
            &[],
        ),
        SqlState::INVALID_PARAMETER_VALUE,
        "a new tenant in an unknown zone",
    );
    assert_ne!(
        months(),
        before,
        "25 hours apart, the months split elsewhere"
    );
    assert_eq!(rollup_differences(&mut admin()), Vec::<String>::new());
}

/// Records events for `tenant` (spent for `widget`, when given) as a
/// superuser under its context, with the late-event window lifted for the
/// session: the triggers run as for the application (alerts fire), at any
/// date. Every third event in a batch INSERT of up to 40 rows, the others
/// one record_cost_event() each.
fn record_events_anywhen(
    tenant: Uuid,
    widget: Option<Uuid>,
    from: &str,
    to: &str,
    count: i32,
    seed: f64,
) {
    let mut admin = admin();
    let mut tx = admin.transaction().unwrap();
    tx.batch_execute("SET LOCAL platform.cost_late_event_window = 0")
        .unwrap();
    tx.execute("SELECT set_tenant($1)", &[&tenant]).unwrap();
    tx.execute("SELECT setseed($1)", &[&seed]).unwrap();
    tx.execute(
        "SELECT set_config('costs_test.widget', coalesce($1::uuid::text, ''), true)",
        &[&widget],
    )
    .unwrap();
    let events = "SELECT $1::text::timestamptz + random() * ($2::text::timestamptz - $1::text::timestamptz) AS at,
                         round((random() * 0.4)::numeric, 6) AS cost
                  FROM generate_series(1, $3)";
    tx.execute(
        &format!("CREATE TEMP TABLE planned ON COMMIT DROP AS SELECT row_number() OVER () AS n, * FROM ({events}) e"),
        &[&from, &to, &count],
    )
    .unwrap();
    tx.batch_execute(
        "DO $$
         BEGIN
             PERFORM record_cost_event('llm', p.cost, occurred_at => p.at,
                                       widget_id => nullif(current_setting('costs_test.widget'), '')::uuid)
             FROM planned p WHERE p.n % 3 <> 0;
             FOR batch IN 0 .. (SELECT max(n) / 120 FROM planned) LOOP
                 INSERT INTO cost_events (service, cost_usd, \"timestamp\", widget_id)
                 SELECT 'vision', p.cost, p.at, nullif(current_setting('costs_test.widget'), '')::uuid
                 FROM planned p WHERE p.n % 3 = 0 AND p.n / 120 = batch;
             END LOOP;
         END
         $$",
    )
    .unwrap();
    tx.commit().unwrap();
}

/// For each budget period of the tenant (of its widget, when given), the
/// spend the counters hold and the alerts written must be exactly what the
/// raw events say: every local day, week and month's sum (of the widget's
/// events only), and one alert per threshold that sum reached.
fn assert_periods_match_the_events(tenant: Uuid, widget: Option<Uuid>, zone: &str) {
    let mut admin = admin();
    let scope = if widget.is_some() { "widget" } else { "tenant" };
    for (period, unit) in [("daily", "day"), ("weekly", "week"), ("monthly", "month")] {
        let mismatches = text_rows(
            &mut admin,
            "SELECT r.starts, r.spend, platform_budget_spend($1, $5, $2, r.starts, $4)
             FROM (SELECT date_trunc($3, \"timestamp\", $4) AS starts, sum(cost_usd) AS spend
                   FROM cost_events WHERE tenant_id = $1 AND ($5::uuid IS NULL OR widget_id = $5)
                   GROUP BY 1) r
             WHERE r.spend <> platform_budget_spend($1, $5, $2, r.starts, $4)",
            &[&tenant, &period, &unit, &zone, &widget],
        );
        assert_eq!(
            mismatches,
            Vec::<String>::new(),
            "{zone} {scope} {period}: counters differ from the events"
        );
        let expected = text_rows(
            &mut admin,
            "SELECT r.starts, t.threshold
             FROM (SELECT date_trunc($3, \"timestamp\", $4) AS starts, sum(cost_usd) AS spend
                   FROM cost_events WHERE tenant_id = $1 AND ($5::uuid IS NULL OR widget_id = $5)
                   GROUP BY 1) r,
                  (SELECT CASE WHEN $5::uuid IS NULL THEN t.settings
                               ELSE platform_widget_budget_settings(w.settings, t.settings) END AS settings
                   FROM tenants t LEFT JOIN widgets w ON w.tenant_id = t.id AND w.id = $5
                   WHERE t.id = $1) s,
                  unnest(platform_budget_thresholds(s.settings)) AS t(threshold)
             WHERE r.spend * 100 >= platform_budget_limit(s.settings, $2) * t.threshold
             ORDER BY 1, 2",
            &[&tenant, &period, &unit, &zone, &widget],
        );
        let fired = text_rows(
            &mut admin,
            "SELECT period_start, threshold FROM budget_alerts
             WHERE tenant_id = $1 AND period = $2 AND widget_id IS NOT DISTINCT FROM $3 ORDER BY 1, 2",
            &[&tenant, &period, &widget],
        );
        assert_eq!(
            fired, expected,
            "{zone} {scope} {period}: one alert per threshold reached"
        );
        assert!(
            !fired.is_empty(),
            "{zone} {scope} {period}: the test reaches some threshold"
        );
    }
    assert_eq!(rollup_differences(&mut admin), Vec::<String>::new());
}

#[test]
fn daily_weekly_and_monthly_budgets_follow_the_tenants_calendar_across_dst() {
    for (i, zone) in [
        "America/New_York",
        "Europe/Berlin",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
    ]
    .into_iter()
    .enumerate()
    {
        let tenant = tenant_with_settings(
            &format!("Periods {zone}"),
            &format!(
                r#"{{"timezone": "{zone}", "maxDailySpend": 3, "maxWeeklySpend": 12, "maxMonthlySpend": 40,
                    "budgetAlertThresholds": [50, 100]}}"#
            ),
        );
        // A widget with budgets of its own, half the tenant's, and its
        // thresholds; its periods are the tenant's calendar.
        let widget = widget_with_settings(
            tenant,
            r#"{"maxDailySpend": 1.5, "maxWeeklySpend": 6, "maxMonthlySpend": 20,
                "budgetAlertThresholds": [80]}"#,
        );
        // Around the changes of March/April and September to November
        // 2026, for the tenant alone and for the widget.
        for (from, to, seed) in [
            ("2026-03-04", "2026-04-09", 0.1),
            ("2026-09-27", "2026-11-05", 0.5),
        ] {
            record_events_anywhen(tenant, None, from, to, 500, seed + i as f64 / 10.0);
            record_events_anywhen(
                tenant,
                Some(widget),
                from,
                to,
                300,
                seed + 0.05 + i as f64 / 10.0,
            );
        }
        assert_periods_match_the_events(tenant, None, zone);
        assert_periods_match_the_events(tenant, Some(widget), zone);
    }
}

#[test]
fn budget_status_reports_every_configured_period() {
    let tenant = tenant_with_settings(
        "Status",
        r#"{"timezone": "Asia/Kathmandu", "maxDailySpend": 4, "maxWeeklySpend": 10, "hardSpendLimits": ["weekly"]}"#,
    );
    let mut app = app();
    let rows = as_tenant(&mut app, tenant, |tx| {
        tx.execute("SELECT record_cost_event('llm', 3)", &[])
            .unwrap();
        text_rows(
            tx,
            "SELECT period, spend_limit, hard_limit, spend, percent_used,
                    period_start = (platform_budget_period_bounds(period, now(), 'Asia/Kathmandu')).starts,
                    period_end = (platform_budget_period_bounds(period, now(), 'Asia/Kathmandu')).ends
             FROM budget_status()",
            &[],
        )
    });
    assert_eq!(
        rows,
        vec![
            "(daily,4,f,3.000000000000,75.00,t,t)".to_owned(),
            "(weekly,10,t,3.000000000000,30.00,t,t)".to_owned(),
            "(monthly,,f,3.000000000000,,t,t)".to_owned(),
        ]
    );
    // A lower daily limit fires, at once, what today's spend already reached.
    as_tenant(&mut app, tenant, |tx| {
        tx.execute(
            "UPDATE tenants SET settings = settings || '{\"maxDailySpend\": 3}'",
            &[],
        )
        .unwrap();
    });
    assert_eq!(
        text_rows(
            &mut admin(),
            "SELECT period, threshold FROM budget_alerts WHERE tenant_id = $1 ORDER BY 1, 2",
            &[&tenant]
        ),
        vec![
            "(daily,50.00)".to_owned(),
            "(daily,80.00)".to_owned(),
            "(daily,100.00)".to_owned(),
        ]
    );
}

#[test]
fn concurrent_writers_fire_each_daily_and_weekly_threshold_exactly_once() {
    const WRITERS: usize = 8;
    const EVENTS: usize = 40;
    let tenant = tenant_with_settings(
        "Concurrent periods",
        r#"{"maxDailySpend": 100, "maxWeeklySpend": 200, "timezone": "America/Los_Angeles"}"#,
    );
    let mut listener = app();
    listener
        .batch_execute("LISTEN platform_budget_alerts")
        .unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut client = app();
                for _ in 0..EVENTS {
                    as_tenant(&mut client, tenant, |tx| {
                        tx.execute("SELECT record_cost_event('llm', 0.5)", &[])
                            .unwrap();
                    });
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    // 160 USD today, in a new tenant: the day's 50, 80 and 100 and the
    // week's 50 and 80 percent, each once, at the spend that reached it.
    let alerts = text_rows(
        &mut admin(),
        "SELECT period, threshold, current_spend FROM budget_alerts WHERE tenant_id = $1 ORDER BY 1, 2",
        &[&tenant],
    );
    assert_eq!(
        alerts,
        vec![
            "(daily,50.00,50.000000000000)".to_owned(),
            "(daily,80.00,80.000000000000)".to_owned(),
            "(daily,100.00,100.000000000000)".to_owned(),
            "(weekly,50.00,100.000000000000)".to_owned(),
            "(weekly,80.00,160.000000000000)".to_owned(),
        ]
    );
    let notified = notifications_for(&mut listener, tenant);
    assert_eq!(
        notified.len(),
        alerts.len(),
        "one notification per alert: {notified:?}"
    );
}

/// What one racer saw: each grant it settled, each refusal's SQLSTATE and
/// the amount its message says was left.
#[derive(Default)]
struct RaceOutcome {
    settled: usize,
    released: usize,
    refusals: Vec<(String, String)>,
}

/// The amount in "... leaves <x> USD, less than ...".
fn amount_left(message: &str) -> f64 {
    message
        .split(" leaves ")
        .nth(1)
        .and_then(|rest| rest.split(" USD").next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("no amount left in: {message}"))
}

/// `racers` connections reserve 0.25 USD `attempts` times each against a
/// daily hard cap of 10 USD of which 7 are spent, settling each grant at
/// its estimate (or releasing every third one when `release_some`), while
/// another connection watches spend plus open reservations. With
/// `widget_cap` the cap is a widget's (its tenant's own caps are far off,
/// and 5 USD the tenant spent elsewhere do not count against it): the
/// reservations name the widget, and the widget is returned too.
fn race_for_the_last_of_a_budget(
    name: &str,
    racers: usize,
    attempts: usize,
    release_some: bool,
    widget_cap: bool,
) -> (Uuid, Option<Uuid>, Vec<RaceOutcome>, f64) {
    let cap = r#"{"maxDailySpend": 10, "maxMonthlySpend": 1000, "hardSpendLimits": ["daily", "monthly"]}"#;
    let tenant = tenant_with_settings(
        name,
        if widget_cap {
            r#"{"maxDailySpend": 100, "hardSpendLimits": ["daily"]}"#
        } else {
            cap
        },
    );
    let widget = widget_cap.then(|| widget_with_settings(tenant, cap));
    let mut recorder = app();
    as_tenant(&mut recorder, tenant, |tx| {
        tx.execute(
            "SELECT record_cost_event('llm', 7, widget_id => $1)",
            &[&widget],
        )
        .unwrap();
        if widget_cap {
            tx.execute("SELECT record_cost_event('llm', 5)", &[])
                .unwrap();
        }
    });
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watching = done.clone();
    let watcher = std::thread::spawn(move || {
        let mut client = app();
        let mut highest = 0.0_f64;
        while !watching.load(std::sync::atomic::Ordering::Relaxed) {
            let held: f64 = as_tenant(&mut client, tenant, |tx| {
                tx.query_one(
                    "SELECT (spend + reserved)::float8 FROM budget_status($1) WHERE period = 'daily'",
                    &[&widget],
                )
                .unwrap()
                .get(0)
            });
            highest = highest.max(held);
        }
        highest
    });
    let start = std::sync::Arc::new(std::sync::Barrier::new(racers));
    let outcomes: Vec<RaceOutcome> = (0..racers)
        .map(|_| {
            let start = start.clone();
            std::thread::spawn(move || {
                let mut client = app();
                let mut outcome = RaceOutcome::default();
                start.wait();
                for attempt in 0..attempts {
                    let granted = {
                        let mut tx = client.transaction().unwrap();
                        tx.execute("SELECT set_tenant($1)", &[&tenant]).unwrap();
                        match tx.query_one(
                            "SELECT reservation_id FROM reserve_spend(0.25, $1)",
                            &[&widget],
                        ) {
                            Ok(row) => {
                                tx.commit().unwrap();
                                Some(row.get::<_, Uuid>(0))
                            }
                            Err(e) => {
                                let db = e.as_db_error().expect("a database error");
                                outcome
                                    .refusals
                                    .push((db.code().code().to_owned(), db.message().to_owned()));
                                None
                            }
                        }
                    };
                    let Some(reservation) = granted else { continue };
                    as_tenant(&mut client, tenant, |tx| {
                        if release_some && attempt % 3 == 2 {
                            let released: bool = tx
                                .query_one(
                                    "SELECT released FROM release_spend($1)",
                                    &[&reservation],
                                )
                                .unwrap()
                                .get(0);
                            assert!(released);
                            outcome.released += 1;
                        } else {
                            tx.execute(
                                "SELECT * FROM settle_spend($1, 'llm', 0.25)",
                                &[&reservation],
                            )
                            .unwrap();
                            outcome.settled += 1;
                        }
                    });
                }
                outcome
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|racer| racer.join().unwrap())
        .collect();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let highest = watcher.join().unwrap();
    (tenant, widget, outcomes, highest)
}

#[test]
fn racing_connections_never_pass_a_hard_cap() {
    const RACERS: usize = 10;
    for (release_some, widget_cap) in [(false, false), (true, false), (false, true), (true, true)] {
        let (tenant, widget, outcomes, highest) = race_for_the_last_of_a_budget(
            &format!("Race {release_some} {widget_cap}"),
            RACERS,
            6,
            release_some,
            widget_cap,
        );
        let limit = if widget_cap {
            "the widget's daily hard spend limit of 10 USD"
        } else {
            "the daily hard spend limit of 10 USD"
        };
        let settled: usize = outcomes.iter().map(|o| o.settled).sum();
        let released: usize = outcomes.iter().map(|o| o.released).sum();
        let refusals: Vec<&(String, String)> = outcomes.iter().flat_map(|o| &o.refusals).collect();
        assert_eq!(
            settled + released + refusals.len(),
            RACERS * 6,
            "every attempt answered"
        );
        // Every refusal is the cap's, and says truly that less than the
        // estimate was left.
        for (code, message) in &refusals {
            assert_eq!(code, "PB001", "{message}");
            assert!(message.starts_with(limit), "{message}");
            assert!(
                amount_left(message) < 0.25,
                "a refusal with room left: {message}"
            );
        }
        // No overshoot, at any moment the watcher looked, nor at the end;
        // no lost reservation: every settled one is an event, every
        // reservation is closed as its racer closed it.
        assert!(highest <= 10.0, "spend plus reservations reached {highest}");
        let mut admin = admin();
        let spend: String = admin
            .query_one(
                "SELECT sum(cost_usd)::text FROM cost_events
                 WHERE tenant_id = $1 AND ($2::uuid IS NULL OR widget_id = $2)",
                &[&tenant, &widget],
            )
            .unwrap()
            .get(0);
        assert_eq!(spend.parse::<f64>().unwrap(), 7.0 + 0.25 * settled as f64);
        assert!(7.0 + 0.25 * settled as f64 <= 10.0);
        if !release_some {
            assert_eq!(settled, 12, "exactly the 3 USD left were granted");
        }
        assert_eq!(
            text_rows(
                &mut admin,
                "SELECT state, count(*), count(e.id) FROM cost_reservations r
                 LEFT JOIN cost_events e ON e.tenant_id = r.tenant_id AND e.id = r.event_id
                  AND e.idempotency_key = 'reservation:' || r.id
                  AND e.widget_id IS NOT DISTINCT FROM r.widget_id
                 WHERE r.tenant_id = $1 AND r.widget_id IS NOT DISTINCT FROM $2 GROUP BY 1 ORDER BY 1",
                &[&tenant, &widget],
            ),
            [("released", released, 0), ("settled", settled, settled)]
                .iter()
                .filter(|(_, n, _)| *n > 0)
                .map(|(state, n, events)| format!("({state},{n},{events})"))
                .collect::<Vec<_>>()
        );
        assert_eq!(rollup_differences(&mut admin), Vec::<String>::new());
    }
}

#[test]
fn settling_is_idempotent_and_every_wrong_use_is_refused() {
    let tenant = tenant_with_settings(
        "Settling",
        r#"{"maxMonthlySpend": 5, "hardSpendLimits": ["monthly"]}"#,
    );
    let other = tenant_with_settings("Settling elsewhere", "{}");
    let mut app = app();
    let (reservation, remaining): (Uuid, String) = as_tenant(&mut app, tenant, |tx| {
        let row = tx
            .query_one(
                "SELECT reservation_id, remaining_usd::text FROM reserve_spend(2)",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    });
    assert_eq!(remaining, "3");
    let settle =
        "SELECT event_id, duplicate FROM settle_spend($1, 'llm', 1.5, 'openai', 'gpt-4o', 300)";
    as_tenant(&mut app, tenant, |tx| {
        // A settlement that fails its checks records nothing and leaves the
        // reservation open.
        assert_sqlstate(
            attempt(tx, |tx| {
                tx.execute("SELECT settle_spend($1, 'telepathy', 1)", &[&reservation])
            }),
            SqlState::INVALID_PARAMETER_VALUE,
            "an unknown service",
        );
        assert_sqlstate(
            attempt(tx, |tx| {
                tx.execute("SELECT settle_spend($1, 'llm', -1)", &[&reservation])
            }),
            SqlState::INVALID_PARAMETER_VALUE,
            "a negative cost",
        );
        let first = tx.query_one(settle, &[&reservation]).unwrap();
        let again = tx.query_one(settle, &[&reservation]).unwrap();
        assert_eq!(
            again.get::<_, Uuid>(0),
            first.get::<_, Uuid>(0),
            "a retry returns the same event"
        );
        assert!(!first.get::<_, bool>(1) && again.get::<_, bool>(1));
        for (statement, code) in [
            (
                "SELECT settle_spend($1, 'llm', 1.5, idempotency_key => 'another')",
                "PB003",
            ),
            ("SELECT release_spend($1)", "PB003"),
        ] {
            assert_sqlstate(
                attempt(tx, |tx| tx.execute(statement, &[&reservation])),
                SqlState::from_code(code),
                statement,
            );
        }
    });
    // Another tenant cannot see, settle or release it.
    as_tenant(&mut app, other, |tx| {
        for statement in [
            "SELECT settle_spend($1, 'llm', 1)",
            "SELECT release_spend($1)",
        ] {
            assert_sqlstate(
                attempt(tx, |tx| tx.execute(statement, &[&reservation])),
                SqlState::NO_DATA_FOUND,
                statement,
            );
        }
    });
    as_tenant(&mut app, tenant, |tx| {
        // Released: gives its amount back once, and cannot be settled.
        let released: Uuid = tx
            .query_one("SELECT reservation_id FROM reserve_spend(3)", &[])
            .unwrap()
            .get(0);
        assert_sqlstate(
            attempt(tx, |tx| tx.execute("SELECT reserve_spend(0.51)", &[])),
            SqlState::from_code("PB001"),
            "5 USD: 1.5 spent, 3 reserved, 0.5 left",
        );
        let firsts: Vec<bool> = (0..2)
            .map(|_| {
                tx.query_one("SELECT released FROM release_spend($1)", &[&released])
                    .unwrap()
                    .get(0)
            })
            .collect();
        assert_eq!(firsts, vec![true, false]);
        assert_sqlstate(
            attempt(tx, |tx| {
                tx.execute("SELECT settle_spend($1, 'llm', 1)", &[&released])
            }),
            SqlState::from_code("PB003"),
            "settling a released reservation",
        );
        tx.execute("SELECT reserve_spend(3.5)", &[])
            .expect("the released amount is free again");
        for (statement, code) in [
            (
                "SELECT reserve_spend(-0.01)",
                SqlState::INVALID_PARAMETER_VALUE,
            ),
            (
                "SELECT reserve_spend('NaN')",
                SqlState::INVALID_PARAMETER_VALUE,
            ),
            (
                "SELECT reserve_spend('Infinity')",
                SqlState::INVALID_PARAMETER_VALUE,
            ),
            (
                "SELECT reserve_spend(NULL)",
                SqlState::INVALID_PARAMETER_VALUE,
            ),
            (
                "SELECT settle_spend(gen_random_uuid(), 'llm', 1)",
                SqlState::NO_DATA_FOUND,
            ),
            ("SELECT release_spend(NULL)", SqlState::NO_DATA_FOUND),
        ] {
            assert_sqlstate(
                attempt(tx, |tx| tx.execute(statement, &[])),
                code,
                statement,
            );
        }
    });
    // REPEATABLE READ would read reservations from before the tenant's turn.
    {
        let mut tx = app.transaction().unwrap();
        tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .unwrap();
        tx.execute("SELECT set_tenant($1)", &[&tenant]).unwrap();
        assert_sqlstate(
            tx.execute("SELECT reserve_spend(0)", &[]),
            SqlState::INVALID_TRANSACTION_STATE,
            "reserve_spend in REPEATABLE READ",
        );
    }
    // Without a context.
    let mut tx = app.transaction().unwrap();
    assert_sqlstate(
        tx.execute("SELECT reserve_spend(1)", &[]),
        SqlState::INSUFFICIENT_PRIVILEGE,
        "reserve_spend without a tenant",
    );
}

#[test]
fn an_unsettled_reservation_expires_and_stops_counting() {
    let tenant = tenant_with_settings(
        "Expiring",
        r#"{"maxWeeklySpend": 1, "hardSpendLimits": ["weekly"], "timezone": "Asia/Kolkata"}"#,
    );
    // The timeout is a superuser's setting: a superuser session acting for
    // the tenant, as the application would.
    let mut operator = admin();
    let reservation: Uuid = as_tenant(&mut operator, tenant, |tx| {
        tx.batch_execute("SET LOCAL platform.cost_reservation_timeout = '1s'")
            .unwrap();
        let row = tx
            .query_one("SELECT reservation_id, expires_at - now() = interval '1 second' FROM reserve_spend(1)", &[])
            .unwrap();
        assert!(
            row.get::<_, bool>(1),
            "expires after platform.cost_reservation_timeout"
        );
        row.get(0)
    });
    let mut app = app();
    as_tenant(&mut app, tenant, |tx| {
        assert_sqlstate(
            attempt(tx, |tx| tx.execute("SELECT reserve_spend(0.01)", &[])),
            SqlState::from_code("PB001"),
            "the week's 1 USD is reserved",
        );
    });
    std::thread::sleep(Duration::from_millis(1300));
    as_tenant(&mut app, tenant, |tx| {
        assert_eq!(
            text_rows(
                tx,
                "SELECT reserved, remaining FROM budget_status() WHERE period = 'weekly'",
                &[]
            ),
            vec!["(0,1)".to_owned()],
            "an expired reservation holds nothing"
        );
        tx.execute("SELECT reserve_spend(0.75)", &[])
            .expect("room again");
        assert_sqlstate(
            attempt(tx, |tx| {
                tx.execute("SELECT settle_spend($1, 'llm', 1)", &[&reservation])
            }),
            SqlState::from_code("PB002"),
            "settling an expired reservation",
        );
    });
    assert_eq!(
        text_rows(
            &mut admin(),
            "SELECT state, count(*) FROM cost_reservations WHERE tenant_id = $1 GROUP BY 1 ORDER BY 1",
            &[&tenant]
        ),
        vec!["(expired,1)".to_owned(), "(open,1)".to_owned()]
    );
}

#[test]
fn widget_budgets_count_their_events_and_no_other_tenants_widget_can_be_named() {
    let tenant = tenant_with_settings(
        "Widgets",
        r#"{"maxDailySpend": 100, "budgetAlertThresholds": [50, 100]}"#,
    );
    let widget = widget_with_settings(tenant, r#"{"maxDailySpend": 4}"#);
    let quiet = widget_with_settings(tenant, "{}");
    let other = tenant_with_settings("Widgets elsewhere", "{}");
    let foreign = widget_with_settings(other, r#"{"maxDailySpend": 4}"#);
    let mut listener = app();
    listener
        .batch_execute("LISTEN platform_budget_alerts")
        .unwrap();
    let mut app = app();
    as_tenant(&mut app, tenant, |tx| {
        let session: Uuid = tx
            .query_one(
                "INSERT INTO sessions (widget_id) VALUES ($1) RETURNING id",
                &[&widget],
            )
            .unwrap()
            .get(0);
        // Attributed through the session, by name, in a batch INSERT that
        // names it, and not at all: 1 + 0.5 + 2 x 0.25 USD for the widget.
        tx.execute(
            "SELECT record_cost_event('llm', 1, session_id => $1)",
            &[&session],
        )
        .unwrap();
        tx.execute(
            "SELECT record_cost_event('llm', 0.5, widget_id => $1)",
            &[&widget],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO cost_events (service, cost_usd, widget_id)
             SELECT 'embedding', 0.25, $1 FROM generate_series(1, 2)",
            &[&widget],
        )
        .unwrap();
        tx.execute(
            "SELECT record_cost_event('llm', 3, widget_id => $1)",
            &[&quiet],
        )
        .unwrap();
        tx.execute("SELECT record_cost_event('llm', 10)", &[])
            .unwrap();
        // A session's event named for another widget is refused.
        assert_sqlstate(
            attempt(tx, |tx| {
                tx.execute(
                    "SELECT record_cost_event('llm', 1, session_id => $1, widget_id => $2)",
                    &[&session, &quiet],
                )
            }),
            SqlState::INVALID_PARAMETER_VALUE,
            "a session's event for another widget",
        );
        // Another tenant's widget is a foreign-key violation however it is
        // named, and unknown to the budget functions.
        for statement in [
            "SELECT record_cost_event('llm', 1, widget_id => $1)",
            "INSERT INTO cost_events (service, cost_usd, widget_id) VALUES ('llm', 1, $1)",
        ] {
            assert_sqlstate(
                attempt(tx, |tx| tx.execute(statement, &[&foreign])),
                SqlState::FOREIGN_KEY_VIOLATION,
                statement,
            );
        }
        for statement in [
            "SELECT * FROM reserve_spend(1, $1)",
            "SELECT * FROM budget_status($1)",
        ] {
            assert_sqlstate(
                attempt(tx, |tx| tx.execute(statement, &[&foreign])),
                SqlState::NO_DATA_FOUND,
                statement,
            );
        }
        let status = text_rows(
            tx,
            "SELECT period, spend_limit, spend, event_count, percent_used FROM budget_status($1)",
            &[&widget],
        );
        assert_eq!(
            status,
            [
                "(daily,4,2.000000000000,,50.00)",
                "(monthly,,2.000000000000,4,)"
            ]
        );
    });
    // The widget's 50 % fired once, with the tenant's thresholds; its
    // tenant's 17 USD of 100 fired nothing; a widget without a budget
    // nothing.
    let alerts = "SELECT widget_id, period, threshold, current_spend FROM budget_alerts
                  WHERE tenant_id = $1 ORDER BY 1, 2, 3";
    assert_eq!(
        text_rows(&mut admin(), alerts, &[&tenant]),
        [format!("({widget},daily,50.00,2.000000000000)")]
    );
    // The worker reading the notified alert learns whose budget it is.
    let notified = notifications_for(&mut listener, tenant);
    assert_eq!(notified.len(), 1);
    assert_eq!(notified[0].widget, Some(widget));
    assert_eq!(notified[0].spend_limit, "4");
    // Its limit lowered under today's spend: its 100 % fires at once.
    as_tenant(&mut app, tenant, |tx| {
        tx.execute(
            "UPDATE widgets SET settings = '{\"maxDailySpend\": 2}' WHERE id = $1",
            &[&widget],
        )
        .unwrap();
        assert_sqlstate(
            attempt(tx, |tx| {
                tx.execute(
                    "UPDATE widgets SET settings = '{\"maxDailySpend\": -2}' WHERE id = $1",
                    &[&widget],
                )
            }),
            SqlState::INVALID_PARAMETER_VALUE,
            "a negative widget limit",
        );
    });
    assert_eq!(
        text_rows(&mut admin(), alerts, &[&tenant]).len(),
        2,
        "the new limit's 100 % (its 50 % is the one already fired)"
    );
    let mut admin = admin();
    assert_eq!(rollup_differences(&mut admin), Vec::<String>::new());
    // Deleting the widget keeps its events, for the tenant only, and takes
    // its spend and alerts with it.
    as_tenant(&mut app, tenant, |tx| {
        tx.execute("DELETE FROM widgets WHERE id = $1", &[&widget])
            .unwrap();
    });
    assert_eq!(
        text_rows(
            &mut admin,
            "SELECT count(*), count(widget_id), sum(cost_usd) FROM cost_events WHERE tenant_id = $1",
            &[&tenant]
        ),
        ["(6,1,15.000000000000)"]
    );
    assert_eq!(
        text_rows(
            &mut admin,
            "SELECT widget_id, spend FROM cost_widget_budget_periods WHERE tenant_id = $1",
            &[&tenant]
        ),
        [format!("({quiet},3.000000000000)")]
    );
    assert_eq!(text_rows(&mut admin, alerts, &[&tenant]).len(), 0);
    assert_eq!(rollup_differences(&mut admin), Vec::<String>::new());
}

#[test]
fn a_late_event_alerts_for_its_own_past_period_and_history_imports_as_the_hint_says() {
    let tenant = tenant_with_settings(
        "Late periods",
        r#"{"timezone": "Europe/Berlin", "maxDailySpend": 2, "budgetAlertThresholds": [100]}"#,
    );
    let mut app = app();
    // Inside the window, ten days late: its own day crosses its limit, and
    // that day's alert fires (now); today's budget is untouched.
    let today: String = as_tenant(&mut app, tenant, |tx| {
        tx.execute(
            "SELECT record_cost_event('llm', 2.5, occurred_at => now() - interval '10 days')",
            &[],
        )
        .unwrap();
        tx.query_one(
            "SELECT spend::text FROM budget_status() WHERE period = 'daily'",
            &[],
        )
        .unwrap()
        .get(0)
    });
    assert_eq!(today.parse::<f64>().unwrap(), 0.0);
    let alerts =
        "SELECT period, period_start, threshold FROM budget_alerts WHERE tenant_id = $1 ORDER BY 2";
    let mut admin = admin();
    assert_eq!(
        text_rows(&mut admin, alerts, &[&tenant]),
        text_rows(
            &mut admin,
            "SELECT 'daily', date_trunc('day', now() - interval '10 days', 'Europe/Berlin'), 100.00",
            &[]
        )
    );
    // Past the window: refused, with a hint that says how to import it.
    let hint = as_tenant(&mut app, tenant, |tx| {
        let error = attempt(tx, |tx| {
            tx.execute(
                "SELECT record_cost_event('llm', 5, occurred_at => now() - interval '90 days')",
                &[],
            )
        })
        .unwrap_err();
        let db = error.as_db_error().unwrap();
        assert_eq!(db.code(), &SqlState::INVALID_PARAMETER_VALUE);
        db.hint().unwrap().to_owned()
    });
    assert!(
        hint.contains("BEGIN; SET LOCAL row_security = off; INSERT INTO cost_events (tenant_id,"),
        "{hint}"
    );
    // Doing what it says: counted in its period, no alert for it.
    let mut tx = admin.transaction().unwrap();
    tx.batch_execute("SET LOCAL row_security = off").unwrap();
    tx.execute(
        "INSERT INTO cost_events (tenant_id, service, cost_usd, \"timestamp\")
         VALUES ($1, 'llm', 5, now() - interval '90 days')",
        &[&tenant],
    )
    .unwrap();
    tx.commit().unwrap();
    assert_eq!(text_rows(&mut admin, alerts, &[&tenant]).len(), 1);
    let day_spend: String = admin
        .query_one(
            "SELECT platform_budget_spend($1, NULL, 'daily',
                    date_trunc('day', now() - interval '90 days', 'Europe/Berlin'), 'Europe/Berlin')::text",
            &[&tenant],
        )
        .unwrap()
        .get(0);
    assert_eq!(day_spend.parse::<f64>().unwrap(), 5.0);
    assert_eq!(rollup_differences(&mut admin), Vec::<String>::new());
}
