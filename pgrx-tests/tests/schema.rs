//! What the schema does beyond the document: behaviour on delete, exact
//! money, updated_at, enum checks, and deleting a whole tenant.

use platform_client_tests::*;
use postgres::error::SqlState;
use uuid::Uuid;

#[test]
fn deleting_a_user_keeps_their_meetings() {
    let tenant = populate_tenant(&mut app(), "Meetings");
    let mut app = app();
    let creator: Option<Uuid> = as_tenant(&mut app, tenant.tenant, |tx| {
        tx.execute("DELETE FROM users WHERE id = $1", &[&tenant.row("users")])
            .unwrap();
        tx.query_one(
            "SELECT created_by FROM meetings WHERE id = $1",
            &[&tenant.row("meetings")],
        )
        .unwrap()
        .get(0)
    });
    assert_eq!(creator, None, "the meeting stays, without its creator");
}

#[test]
fn deleting_a_widget_or_meeting_clears_only_that_reference() {
    let tenant = populate_tenant(&mut app(), "Set null");
    let mut app = app();
    let (widget, meeting, owner): (Option<Uuid>, Option<Uuid>, Uuid) =
        as_tenant(&mut app, tenant.tenant, |tx| {
            tx.execute("DELETE FROM widgets", &[]).unwrap();
            tx.execute("DELETE FROM meetings", &[]).unwrap();
            let row = tx
                .query_one(
                    "SELECT widget_id, meeting_id, tenant_id FROM sessions WHERE id = $1",
                    &[&tenant.row("sessions")],
                )
                .unwrap();
            (row.get(0), row.get(1), row.get(2))
        });
    assert_eq!((widget, meeting, owner), (None, None, tenant.tenant));
}

#[test]
fn a_single_embedding_call_costs_exactly_what_it_cost() {
    let tenant = populate_tenant(&mut app(), "Tiny costs");
    let mut app = app();
    let cost: String = as_tenant(&mut app, tenant.tenant, |tx| {
        tx.query_one(
            "SELECT cost_usd::text FROM cost_events WHERE id = $1",
            &[&tenant.row("cost_events")],
        )
        .unwrap()
        .get(0)
    });
    // 20 tokens at $0.02 per million.
    assert_eq!(cost, "0.000000400000");
    as_tenant(&mut app, tenant.tenant, |tx| {
        assert_sqlstate(
            attempt(tx, |tx| {
                tx.execute(
                    "INSERT INTO cost_events (service, cost_usd) VALUES ('llm', 'NaN')",
                    &[],
                )
            }),
            SqlState::CHECK_VIOLATION,
            "a NaN cost",
        );
    });
}

#[test]
fn updated_at_follows_every_update() {
    let tenant = populate_tenant(&mut app(), "Touch");
    let mut app = app();
    let (created, updated): (std::time::SystemTime, std::time::SystemTime) = {
        std::thread::sleep(std::time::Duration::from_millis(20));
        as_tenant(&mut app, tenant.tenant, |tx| {
            tx.execute("UPDATE widgets SET name = 'Renamed'", &[])
                .unwrap();
            let row = tx
                .query_one("SELECT created_at, updated_at FROM widgets", &[])
                .unwrap();
            (row.get(0), row.get(1))
        })
    };
    assert!(updated > created, "updated_at moved on UPDATE");
}

#[test]
fn every_enum_of_the_document_is_checked() {
    let tenant = populate_tenant(&mut app(), "Enums");
    let mut app = app();
    as_tenant(&mut app, tenant.tenant, |tx| {
        for statement in [
            "UPDATE tenants SET plan = 'platinum'",
            "UPDATE users SET role = 'root'",
            "UPDATE sessions SET mode = 'video'",
            "UPDATE messages SET role = 'tool'",
            "UPDATE cost_events SET service = 'gpu'",
            "UPDATE budget_alerts SET period = 'yearly'",
            "UPDATE budget_alerts SET severity = 'fatal'",
        ] {
            assert_sqlstate(
                attempt(tx, |tx| tx.execute(statement, &[])),
                SqlState::CHECK_VIOLATION,
                statement,
            );
        }
    });
}

#[test]
fn deleting_a_tenant_removes_all_of_its_rows_and_nothing_else() {
    let doomed = populate_tenant(&mut app(), "Doomed");
    let kept = populate_tenant(&mut app(), "Kept");
    // Deleting a tenant takes provisioning rights (context.rs shows the
    // application role's DELETE removing nothing).
    let mut provisioner = provisioner();
    let deleted = as_tenant(&mut provisioner, doomed.tenant, |tx| {
        tx.execute("DELETE FROM tenants", &[]).unwrap()
    });
    assert_eq!(deleted, 1);
    let mut admin = admin();
    let tables: Vec<String> = admin
        .query("SELECT table_name::text FROM platform_tenant_tables()", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for table in tables {
        let sql = format!("SELECT count(*) FROM {table} WHERE id = $1");
        let gone: i64 = admin
            .query_one(&sql, &[&doomed.row(&table)])
            .unwrap()
            .get(0);
        let still: i64 = admin.query_one(&sql, &[&kept.row(&table)]).unwrap().get(0);
        assert_eq!((gone, still), (0, 1), "{table}");
    }
}
