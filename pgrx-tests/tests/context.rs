//! The tenant context as an application sees it: transaction scoping,
//! prepared statements across tenants, the document's session-level SET,
//! failing closed, and what the application role cannot do.

use platform_client_tests::*;
use postgres::error::SqlState;
use uuid::Uuid;

const NIL: Uuid = Uuid::nil();

fn current(client: &mut postgres::Client) -> Uuid {
    client
        .query_one("SELECT get_current_tenant_id()", &[])
        .unwrap()
        .get(0)
}

#[test]
fn set_tenant_ends_with_its_transaction() {
    let tenant = populate_tenant(&mut app(), "Scoped");
    let mut app = app();
    for finish in ["COMMIT", "ROLLBACK"] {
        app.batch_execute("BEGIN").unwrap();
        app.execute("SELECT set_tenant($1)", &[&tenant.tenant])
            .unwrap();
        let inside: i64 = app
            .query_one("SELECT count(*) FROM widgets", &[])
            .unwrap()
            .get(0);
        assert_eq!(inside, 1, "the context applies inside the transaction");
        app.batch_execute(finish).unwrap();
        assert_eq!(current(&mut app), NIL, "the context outlived {finish}");
        let after: i64 = app
            .query_one("SELECT count(*) FROM widgets", &[])
            .unwrap()
            .get(0);
        assert_eq!(after, 0, "rows visible after {finish}");
    }
}

#[test]
fn set_tenant_outside_a_transaction_warns_and_does_not_stick() {
    let tenant = provision_tenant("Autocommit");
    let (mut app, notices) = app_with_notices();
    app.execute("SELECT set_tenant($1)", &[&tenant]).unwrap();
    assert_eq!(
        notices.lock().unwrap().as_slice(),
        ["25P01"],
        "a warning says the context ends with the statement"
    );
    assert_eq!(current(&mut app), NIL);
}

#[test]
fn a_prepared_statement_follows_the_tenant_switch() {
    let a = populate_tenant(&mut app(), "Prepared A");
    let b = populate_tenant(&mut app(), "Prepared B");
    let mut app = app();
    // Both plan-cache modes: the generic plan is the one that could go stale.
    for mode in ["auto", "force_generic_plan"] {
        app.batch_execute(&format!("SET plan_cache_mode = {mode}"))
            .unwrap();
        let statement = app.prepare("SELECT id FROM widgets").unwrap();
        for round in 0..8 {
            let tenant = if round % 2 == 0 { &a } else { &b };
            let ids: Vec<Uuid> = as_tenant(&mut app, tenant.tenant, |tx| {
                tx.query(&statement, &[])
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect()
            });
            assert_eq!(
                ids,
                vec![tenant.row("widgets")],
                "{mode}, execution {round}"
            );
        }
    }
}

#[test]
fn the_documents_session_set_still_works() {
    let tenant = populate_tenant(&mut app(), "Session SET");
    let mut app = app();
    app.batch_execute(&format!("SET app.current_tenant_id = '{}'", tenant.tenant))
        .unwrap();
    let seen: i64 = app
        .query_one("SELECT count(*) FROM sessions", &[])
        .unwrap()
        .get(0);
    assert_eq!(seen, 1);
    app.batch_execute("RESET app.current_tenant_id").unwrap();
    let seen: i64 = app
        .query_one("SELECT count(*) FROM sessions", &[])
        .unwrap()
        .get(0);
    assert_eq!(seen, 0);
}

/// set_tenant_token() works in setting mode too (it writes the bare id), so
/// an application can switch to tokens before the operator flips the mode
/// (the signed mode itself: signed_context.rs).
#[test]
fn set_tenant_token_works_in_setting_mode_too() {
    platform_client_tests::signed::set_test_keys("");
    let tenant = populate_tenant(&mut app(), "Token, setting mode");
    let mut app = app();
    let mut tx = app.transaction().unwrap();
    let token = platform_client_tests::signed::tenant_token(tenant.tenant);
    let set: Uuid = tx
        .query_one("SELECT set_tenant_token($1)", &[&token])
        .unwrap()
        .get(0);
    assert_eq!(set, tenant.tenant);
    let row = tx
        .query_one(
            "SELECT mode, state, current_setting('app.current_tenant_id')
             FROM platform_tenant_context()",
            &[],
        )
        .unwrap();
    let (mode, state, raw): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((mode.as_str(), state.as_str()), ("setting", "set"));
    assert_eq!(raw, tenant.tenant.to_string());
    let users: i64 = tx
        .query_one("SELECT count(*) FROM users", &[])
        .unwrap()
        .get(0);
    assert_eq!(users, 1);
}

#[test]
fn a_setting_that_is_not_a_uuid_fails_closed() {
    populate_tenant(&mut app(), "Fail closed");
    let mut app = app();
    for bad in ["acme", "' OR true --", "72cda7ac-9168-41a5-87ad"] {
        let mut tx = app.transaction().unwrap();
        tx.execute(
            "SELECT set_config('app.current_tenant_id', $1, true)",
            &[&bad],
        )
        .unwrap();
        assert_sqlstate(
            tx.query("SELECT * FROM users", &[]),
            SqlState::INVALID_TEXT_REPRESENTATION,
            &format!("reading with app.current_tenant_id = {bad:?}"),
        );
    }
}

#[test]
fn set_tenant_rejects_null_and_the_nil_uuid() {
    let mut app = app();
    let mut tx = app.transaction().unwrap();
    assert_sqlstate(
        attempt(&mut tx, |tx| tx.execute("SELECT set_tenant(NULL)", &[])),
        SqlState::NULL_VALUE_NOT_ALLOWED,
        "set_tenant(NULL)",
    );
    assert_sqlstate(
        attempt(&mut tx, |tx| tx.execute("SELECT set_tenant($1)", &[&NIL])),
        SqlState::INVALID_PARAMETER_VALUE,
        "set_tenant(nil)",
    );
}

#[test]
fn the_nil_uuid_can_never_be_a_tenant() {
    let mut admin = admin();
    assert_sqlstate(
        admin.execute(
            "INSERT INTO tenants (id, name, api_key) VALUES ($1, 'Nobody', 'pk_nil_00000000000000000000000000000000')",
            &[&NIL],
        ),
        SqlState::CHECK_VIOLATION,
        "a tenant with the nil id, even as superuser",
    );
}

#[test]
fn inserting_without_a_context_names_the_fix() {
    let mut app = app();
    let err = app
        .execute(
            "INSERT INTO widgets (name, domain_whitelist) VALUES ('w', '[]')",
            &[],
        )
        .expect_err("an insert without a context fails");
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code(), &SqlState::INSUFFICIENT_PRIVILEGE);
    assert!(
        db.message().contains("no tenant context"),
        "{}",
        db.message()
    );
    assert!(
        db.hint().unwrap_or_default().contains("set_tenant"),
        "{:?}",
        db.hint()
    );
}

/// The rule without a tenant context: reading tenant data returns nothing
/// (as row-level security does for a plain SELECT); a function that acts for
/// a tenant refuses with 42501 and a hint naming that function.
#[test]
fn without_a_context_readers_return_nothing_and_writers_name_the_fix() {
    let tenant = populate_tenant(&mut app(), "Context rule");
    let mut app = app();
    let embedding = fixture::embedding(1.0);
    let reads: [(&str, &[&(dyn postgres::types::ToSql + Sync)]); 8] = [
        ("SELECT * FROM list_sessions()", &[]),
        ("SELECT * FROM vector_search($1)", &[&embedding]),
        ("SELECT * FROM keyword_search('welcome')", &[]),
        ("SELECT * FROM hybrid_search('welcome', $1)", &[&embedding]),
        (
            "SELECT * FROM search_documents('welcome', $1)",
            &[&embedding],
        ),
        (
            "SELECT * FROM cost_summary(now() - interval '1 day', now())",
            &[],
        ),
        ("SELECT * FROM budget_status()", &[]),
        ("SELECT * FROM knowledge_documents", &[]),
    ];
    for (read, params) in reads {
        let mut tx = app.transaction().unwrap();
        let rows = tx
            .query(read, params)
            .unwrap_or_else(|e| panic!("{read}: {e}"));
        assert_eq!(rows.len(), 0, "{read} without a context");
        tx.rollback().unwrap();
        // The same read under the tenant's context finds something: the
        // empty answer above is the missing context, not an empty table.
        let found = as_tenant(&mut app, tenant.tenant, |tx| {
            tx.query(read, params).unwrap().len()
        });
        assert!(found > 0, "{read} under a context");
    }
    let writes: [(&str, &str, &[&(dyn postgres::types::ToSql + Sync)]); 4] = [
        (
            "record_cost_event",
            "SELECT record_cost_event('llm', 1)",
            &[],
        ),
        (
            "compute_cost_summary",
            "SELECT compute_cost_summary(now() - interval '1 day', now())",
            &[],
        ),
        (
            "ingest_document",
            "SELECT ingest_document('t', 'c', '{}', '{}')",
            &[],
        ),
        ("rotate_api_key", "SELECT rotate_api_key()", &[]),
    ];
    for (function, statement, params) in writes {
        let err = app
            .execute(statement, params)
            .expect_err("a write without a context fails");
        let db = err.as_db_error().expect("a server error");
        assert_eq!(db.code(), &SqlState::INSUFFICIENT_PRIVILEGE, "{statement}");
        assert!(db.message().contains(function), "{}", db.message());
        let hint = db.hint().unwrap_or_default();
        assert!(
            hint.contains("set_tenant") && hint.contains(&format!("{function}()")),
            "{statement}: {hint}"
        );
    }
}

#[test]
fn the_application_role_cannot_get_around_the_policies() {
    let tenant = populate_tenant(&mut app(), "Bypass attempts");
    let mut app = app();
    let mut tx = app.transaction().unwrap();
    tx.execute("SELECT set_tenant($1)", &[&tenant.tenant])
        .unwrap();
    for statement in [
        "TRUNCATE messages",
        "ALTER TABLE messages DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE messages NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY messages_select ON messages",
        "CREATE POLICY everything ON messages USING (true)",
        "SELECT grant_app_access(current_user::regrole)",
        "SELECT create_tenant('Sneaky')",
        "SELECT seed_demo_tenant('Sneaky', 'sneaky.example')",
    ] {
        let code = sqlstate_of(
            attempt(&mut tx, |tx| tx.batch_execute(statement)),
            statement,
        );
        assert!(
            code == SqlState::INSUFFICIENT_PRIVILEGE,
            "{statement}: expected 42501, got {}",
            code.code()
        );
    }
    // Turning row security off makes a query error out rather than skip it.
    tx.batch_execute("SET LOCAL row_security = off").unwrap();
    assert_sqlstate(
        attempt(&mut tx, |tx| tx.query("SELECT * FROM messages", &[])),
        SqlState::INSUFFICIENT_PRIVILEGE,
        "SELECT with row_security = off",
    );
}

#[test]
fn a_context_set_by_hand_neither_creates_nor_deletes_a_tenant() {
    let own = populate_tenant(&mut app(), "Own context");
    let mut app = app();

    // The reported route: a fresh id set by hand, then the document's
    // tenant INSERT, which used to create an enterprise tenant.
    let fresh = Uuid::new_v4();
    let mut tx = app.transaction().unwrap();
    tx.execute(
        "SELECT set_config('app.current_tenant_id', $1, true)",
        &[&fresh.to_string()],
    )
    .unwrap();
    assert_sqlstate(
        attempt(&mut tx, |tx| {
            tx.execute(
                "INSERT INTO tenants (name, api_key, plan) VALUES ('Forged', $1, 'enterprise')",
                &[&format!("pk_test_{}", fresh.simple())],
            )
        }),
        SqlState::INSUFFICIENT_PRIVILEGE,
        "INSERT INTO tenants under a context set by hand",
    );
    // Nor under the role's own, real tenant: set_tenant names a tenant, it
    // does not grant provisioning.
    tx.execute("SELECT set_tenant($1)", &[&own.tenant]).unwrap();
    let deleted = tx.execute("DELETE FROM tenants", &[]).unwrap();
    assert_eq!(deleted, 0, "the application role deleted its own tenant");
    let may: bool = tx
        .query_one("SELECT platform_may_provision()", &[])
        .unwrap()
        .get(0);
    assert!(!may, "the application role reports provisioning rights");
    tx.commit().unwrap();
    let mut admin = admin();
    let left: i64 = admin
        .query_one(
            "SELECT count(*) FROM tenants WHERE id = ANY($1)",
            &[&vec![own.tenant, fresh]],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 1, "only the real tenant exists");

    // A provisioning role may run the document's own seed INSERT for the
    // tenant it sets up.
    let mut provisioner = provisioner();
    let mut tx = provisioner.transaction().unwrap();
    tx.execute("SELECT set_tenant($1)", &[&fresh]).unwrap();
    let created: Uuid = tx
        .query_one(
            "INSERT INTO tenants (name, api_key) VALUES ('Signed up', $1) RETURNING id",
            &[&format!("pk_test_{}", fresh.simple())],
        )
        .unwrap()
        .get(0);
    assert_eq!(created, fresh);
    let may: bool = tx
        .query_one("SELECT platform_may_provision()", &[])
        .unwrap()
        .get(0);
    assert!(may, "a provisioning role reports its rights");
    tx.commit().unwrap();
}
