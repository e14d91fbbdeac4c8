//! Operations: keyset pagination, the security audit and monitoring.

use std::collections::HashSet;

use platform_client_tests::*;
use postgres::error::SqlState;
use uuid::Uuid;

/// Pages through the current tenant's sessions; returns the ids in order.
fn page_through(
    tx: &mut postgres::Transaction,
    page_size: i32,
    widget: Option<Uuid>,
    between_pages: &mut dyn FnMut(&mut postgres::Transaction),
) -> Vec<Uuid> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let rows = tx
            .query(
                "SELECT id, next_cursor FROM list_sessions($1, $2, $3)",
                &[&page_size, &cursor, &widget],
            )
            .unwrap();
        seen.extend(rows.iter().map(|r| r.get::<_, Uuid>(0)));
        if rows.len() < page_size as usize {
            return seen;
        }
        cursor = rows.last().map(|r| r.get(1));
        between_pages(tx);
    }
}

#[test]
fn list_sessions_pages_newest_first_without_gaps_or_repeats() {
    let tenant = populate_tenant(&mut app(), "Pages");
    let other = populate_tenant(&mut app(), "Other pages");
    let mut app = app();
    as_tenant(&mut app, tenant.tenant, |tx| {
        // 45 sessions sharing 5 timestamps: the id has to break the ties.
        tx.execute(
            "INSERT INTO sessions (created_at)
             SELECT timestamptz '2026-11-01 12:00:00.123456+00' + (g % 5) * interval '1 microsecond'
             FROM generate_series(1, 45) g",
            &[],
        )
        .unwrap();
    });
    let expected: Vec<Uuid> = as_tenant(&mut app, tenant.tenant, |tx| {
        tx.query(
            "SELECT id FROM sessions ORDER BY created_at DESC, id DESC",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    });
    assert_eq!(expected.len(), 46);
    for page_size in [1, 7, 46, 100] {
        let got = as_tenant(&mut app, tenant.tenant, |tx| {
            page_through(tx, page_size, None, &mut |_| {})
        });
        assert_eq!(got, expected, "page size {page_size}");
    }
    // Filtered by widget: only the fixture's session has one.
    let by_widget = as_tenant(&mut app, tenant.tenant, |tx| {
        page_through(tx, 10, Some(tenant.row("widgets")), &mut |_| {})
    });
    assert_eq!(by_widget, vec![tenant.row("sessions")]);
    // Another tenant's widget finds nothing.
    let foreign = as_tenant(&mut app, tenant.tenant, |tx| {
        page_through(tx, 10, Some(other.row("widgets")), &mut |_| {})
    });
    assert!(foreign.is_empty());
}

#[test]
fn list_sessions_is_stable_under_concurrent_inserts() {
    let tenant = populate_tenant(&mut app(), "Busy");
    let mut writer = app();
    as_tenant(&mut writer, tenant.tenant, |tx| {
        tx.execute("INSERT INTO sessions (created_at) SELECT now() - g * interval '1 second' FROM generate_series(1, 30) g", &[]).unwrap();
    });
    let before: HashSet<Uuid> = as_tenant(&mut writer, tenant.tenant, |tx| {
        tx.query("SELECT id FROM sessions", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    });
    // Each page in its own transaction, as an API would serve them, with
    // another connection committing new sessions between pages.
    let mut reader = app();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let rows = as_tenant(&mut reader, tenant.tenant, |tx| {
            tx.query(
                "SELECT id, next_cursor FROM list_sessions(4, $1)",
                &[&cursor],
            )
            .unwrap()
        });
        seen.extend(rows.iter().map(|r| r.get::<_, Uuid>(0)));
        if rows.len() < 4 {
            break;
        }
        cursor = rows.last().map(|r| r.get(1));
        as_tenant(&mut writer, tenant.tenant, |tx| {
            tx.execute("INSERT INTO sessions (mode) VALUES ('text'), ('text')", &[])
                .unwrap();
        });
    }
    let unique: HashSet<Uuid> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a session was listed twice");
    assert_eq!(
        unique, before,
        "the traversal returns exactly the sessions that existed when it began"
    );
}

#[test]
fn list_sessions_rejects_bad_arguments() {
    let tenant = provision_tenant("Bad pages");
    let mut app = app();
    as_tenant(&mut app, tenant, |tx| {
        for (call, code) in [
            (
                "SELECT * FROM list_sessions(0)",
                SqlState::INVALID_PARAMETER_VALUE,
            ),
            (
                "SELECT * FROM list_sessions(-5)",
                SqlState::INVALID_PARAMETER_VALUE,
            ),
            (
                "SELECT * FROM list_sessions(100000)",
                SqlState::INVALID_PARAMETER_VALUE,
            ),
            (
                "SELECT * FROM list_sessions(NULL)",
                SqlState::INVALID_PARAMETER_VALUE,
            ),
            (
                "SELECT * FROM list_sessions(10, 'yesterday')",
                SqlState::INVALID_TEXT_REPRESENTATION,
            ),
            // The document's cursor: a bare session id.
            (
                "SELECT * FROM list_sessions(10, '72cda7ac-9168-41a5-87ad-895ca68d2fd0')",
                SqlState::INVALID_TEXT_REPRESENTATION,
            ),
        ] {
            assert_sqlstate(attempt(tx, |tx| tx.query(call, &[])), code, call);
        }
    });
}

fn findings(client: &mut impl postgres::GenericClient) -> Vec<(String, String)> {
    client
        .query(
            "SELECT finding, object FROM platform_audit() ORDER BY 1, 2",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
fn the_audit_is_clean_on_a_fresh_install_and_reports_each_problem() {
    let mut admin = admin();
    assert_eq!(
        findings(&mut admin),
        vec![],
        "a fresh install has no findings"
    );
    let role = format!("platform_audit_bypass_{}", std::process::id());
    let untimed = format!("platform_audit_untimed_{}", std::process::id());
    let cases: [(&str, String, &str); 9] = [
        (
            "row security not enabled and forced",
            "ALTER TABLE messages NO FORCE ROW LEVEL SECURITY".into(),
            "messages",
        ),
        (
            "policy count is not 4",
            "DROP POLICY widgets_delete ON widgets".into(),
            "widgets",
        ),
        (
            "login role with app access bypasses row security",
            format!("CREATE ROLE {role} LOGIN BYPASSRLS; GRANT SELECT ON tenants TO {role}"),
            role.as_str(),
        ),
        (
            "security definer function without a pinned search_path",
            "CREATE FUNCTION unpinned() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
             REVOKE EXECUTE ON FUNCTION unpinned() FROM PUBLIC"
                .into(),
            "unpinned()",
        ),
        (
            "security definer function executable by PUBLIC",
            "GRANT EXECUTE ON FUNCTION users_for_email(text) TO PUBLIC".into(),
            "users_for_email(text)",
        ),
        (
            "tenant data reachable without row security",
            "CREATE TABLE audit_probe (tenant_id uuid);
             ALTER EXTENSION platform ADD TABLE audit_probe;
             GRANT SELECT ON audit_probe TO PUBLIC"
                .into(),
            "audit_probe",
        ),
        (
            "no index leads with the tenant column",
            "DROP INDEX budget_alert_tenant_idx; DROP INDEX budget_alert_active_idx".into(),
            "budget_alerts",
        ),
        (
            "application role without a timeout",
            format!(
                "CREATE ROLE {untimed} LOGIN; SELECT grant_app_access('{untimed}');
                 ALTER ROLE {untimed} SET idle_in_transaction_session_timeout = '1min'"
            ),
            untimed.as_str(),
        ),
        (
            "stored text search configuration that rows cannot keep",
            format!(
                "CREATE ROLE {untimed};
                 CREATE TEXT SEARCH CONFIGURATION public.droppable (COPY = simple);
                 INSERT INTO knowledge_documents (tenant_id, title, content, text_search_config)
                 VALUES (create_tenant('Audit probe'), 't', 'c', 'public.droppable');
                 ALTER TEXT SEARCH CONFIGURATION public.droppable OWNER TO {untimed}"
            ),
            "knowledge_documents",
        ),
    ];
    for (finding, breakage, object) in cases {
        let mut tx = admin.transaction().unwrap();
        tx.batch_execute(&breakage).unwrap();
        assert_eq!(
            findings(&mut tx),
            vec![(finding.to_owned(), object.to_owned())],
            "after: {breakage}"
        );
        tx.rollback().unwrap();
    }
    // The application role may not run it.
    assert_sqlstate(
        app().query("SELECT * FROM platform_audit()", &[]),
        SqlState::INSUFFICIENT_PRIVILEGE,
        "audit as app",
    );
}

#[test]
fn monitoring_views_answer_and_slow_queries_degrade_gracefully() {
    let mut admin = admin();
    let indexes: i64 = admin
        .query_one("SELECT count(*) FROM platform_index_usage WHERE indexname = 'knowledge_chunk_embedding_idx'", &[])
        .unwrap()
        .get(0);
    assert_eq!(indexes, 1);
    admin
        .query("SELECT * FROM platform_active_queries", &[])
        .unwrap();
    // pg_stat_statements is not preloaded on the test cluster.
    let rows = admin
        .query("SELECT * FROM platform_slow_queries(5)", &[])
        .unwrap();
    assert!(rows.is_empty());
    assert_sqlstate(
        admin.query("SELECT * FROM platform_slow_queries(0)", &[]),
        SqlState::INVALID_PARAMETER_VALUE,
        "max_rows 0",
    );
}
