//! The signed tenant context (platform.tenant_context = 'signed', set for
//! this test database with ALTER DATABASE), tried the way an attacker would:
//! SQL run as the application role under tenant A, every row of the threat
//! table of docs/security.md. The context is then a token only a holder of a
//! key of platform.tenant_keys can mint, bound to one transaction.

use std::sync::OnceLock;

use platform_client_tests::signed::{self, mint, now, tenant_token, TEST_KEY_HEX, TEST_KID};
use platform_client_tests::*;
use postgres::error::SqlState;
use postgres::{Client, Transaction};
use uuid::Uuid;

const NIL: Uuid = Uuid::nil();

/// The test database in signed mode, with the test key loaded. Every test
/// calls it before connecting.
fn signed_db() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        signed::set_test_keys("");
        let mut admin = admin();
        admin
            .batch_execute(&format!(
                "SELECT platform_tenant_context();
                 ALTER DATABASE {} SET platform.tenant_context = 'signed'",
                db().dbname
            ))
            .expect("signed mode for the test database");
    });
}

fn app_signed() -> Client {
    signed_db();
    let mut app = app();
    let mode: String = app
        .query_one("SHOW platform.tenant_context", &[])
        .unwrap()
        .get(0);
    assert_eq!(mode, "signed");
    app
}

/// Two tenants with rows, made by the operator (a superuser may name a
/// tenant with set_tenant() in either mode).
fn two_tenants(name: &str) -> (TenantData, TenantData) {
    signed_db();
    let mut admin = admin();
    (
        populate_tenant(&mut admin, &format!("{name} A")),
        populate_tenant(&mut admin, &format!("{name} B")),
    )
}

/// BEGIN, then set_tenant_token() with a fresh token of `tenant`.
fn begin_signed(client: &mut Client, tenant: Uuid) -> Transaction<'_> {
    let mut tx = client.transaction().unwrap();
    tx.execute("SELECT set_tenant_token($1)", &[&tenant_token(tenant)])
        .unwrap();
    tx
}

fn count(tx: &mut Transaction, table: &str) -> i64 {
    tx.query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0)
}

fn context(client: &mut impl postgres::GenericClient) -> (Option<Uuid>, String) {
    let row = client
        .query_one("SELECT tenant, state FROM platform_tenant_context()", &[])
        .unwrap();
    (row.get(0), row.get(1))
}

fn current(client: &mut impl postgres::GenericClient) -> Uuid {
    client
        .query_one("SELECT get_current_tenant_id()", &[])
        .unwrap()
        .get(0)
}

/// Asserts a refusal's code, and that neither its message, detail nor hint
/// shows `secret`.
#[track_caller]
fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, postgres::Error>,
    expected: SqlState,
    secret: &str,
    what: &str,
) -> String {
    let err = result.expect_err(what);
    let db = err.as_db_error().unwrap_or_else(|| panic!("{what}: {err}"));
    assert_eq!(db.code(), &expected, "{what}: {}", db.message());
    for shown in [Some(db.message()), db.detail(), db.hint(), db.where_()]
        .into_iter()
        .flatten()
    {
        assert!(!shown.contains(secret), "{what} shows the value: {shown}");
        assert!(!shown.contains(TEST_KEY_HEX), "{what} shows the key");
    }
    db.message().to_owned()
}

#[test]
fn a_token_sets_the_tenant_for_its_transaction_only() {
    let (a, _b) = two_tenants("Token");
    let mut app = app_signed();
    for finish in ["COMMIT", "ROLLBACK"] {
        let mut tx = app.transaction().unwrap();
        let set: Uuid = tx
            .query_one("SELECT set_tenant_token($1)", &[&tenant_token(a.tenant)])
            .unwrap()
            .get(0);
        assert_eq!(set, a.tenant);
        assert_eq!(count(&mut tx, "widgets"), 1);
        assert_eq!(count(&mut tx, "users"), 1);
        assert_eq!(context(&mut tx), (Some(a.tenant), "verified".into()));
        // The same token again in the same transaction is fine.
        tx.execute("SELECT set_tenant_token($1)", &[&tenant_token(a.tenant)])
            .unwrap();
        if finish == "COMMIT" {
            tx.commit().unwrap();
        } else {
            tx.rollback().unwrap();
        }
        assert_eq!(current(&mut app), NIL, "the context outlived {finish}");
        assert_eq!(context(&mut app), (None, "none".into()));
    }
}

#[test]
fn bare_uuids_are_refused_by_every_route() {
    let (a, b) = two_tenants("Bare");
    let mut app = app_signed();
    let victim = b.tenant.to_string();
    for statement in [
        format!("SET app.current_tenant_id = '{victim}'"),
        format!("SET LOCAL app.current_tenant_id = '{victim}'"),
        format!("SELECT set_config('app.current_tenant_id', '{victim}', true)"),
        format!("SELECT set_config('app.current_tenant_id', '{victim}', false)"),
    ] {
        let mut tx = begin_signed(&mut app, a.tenant);
        let message = assert_refused(
            attempt(&mut tx, |tx| tx.batch_execute(&statement)),
            SqlState::INSUFFICIENT_PRIVILEGE,
            &victim,
            &statement,
        );
        assert!(message.contains("set_tenant_token"), "{message}");
        assert_eq!(current(&mut tx), a.tenant, "{statement}");
        tx.rollback().unwrap();
        // Without a context first, too.
        assert_refused(
            app.batch_execute(&statement),
            SqlState::INSUFFICIENT_PRIVILEGE,
            &victim,
            &statement,
        );
    }
    // Neither does the reported provisioning route create a tenant.
    let mut tx = app.transaction().unwrap();
    assert_refused(
        tx.execute(
            "SELECT set_config('app.current_tenant_id', gen_random_uuid()::text, true)",
            &[],
        ),
        SqlState::INSUFFICIENT_PRIVILEGE,
        "gen_random_uuid",
        "set_config of a fresh id",
    );
}

#[test]
fn one_statement_cannot_switch_tenants() {
    let (a, b) = two_tenants("Switch");
    let mut app = app_signed();
    let mut tx = begin_signed(&mut app, a.tenant);
    // The reported statement: count A's users, switch, read B's.
    assert_refused(
        attempt(&mut tx, |tx| {
            tx.query(
                "SELECT (SELECT count(*) FROM users),
                        set_config('app.current_tenant_id', $1, true),
                        (SELECT string_agg(email, ',') FROM users)",
                &[&b.tenant.to_string()],
            )
        }),
        SqlState::INSUFFICIENT_PRIVILEGE,
        &b.tenant.to_string(),
        "mid-statement set_config",
    );
    // Nor with a valid token of B: the transaction's tenant is pinned.
    let b_token = tenant_token(b.tenant);
    let message = assert_refused(
        attempt(&mut tx, |tx| {
            tx.query(
                "SELECT (SELECT count(*) FROM users), set_tenant_token($1),
                        (SELECT string_agg(email, ',') FROM users)",
                &[&b_token],
            )
        }),
        SqlState::INSUFFICIENT_PRIVILEGE,
        &b_token,
        "set_tenant_token(B) after A",
    );
    assert!(message.contains("already set"), "{message}");
    assert_eq!(current(&mut tx), a.tenant);
    assert_eq!(count(&mut tx, "users"), 1);
    tx.commit().unwrap();
    // A new transaction may be for B.
    let mut tx = app.transaction().unwrap();
    tx.execute("SELECT set_tenant_token($1)", &[&b_token])
        .unwrap();
    let emails: String = tx
        .query_one("SELECT string_agg(email, ',') FROM users", &[])
        .unwrap()
        .get(0);
    assert!(emails.contains(&b.tenant.simple().to_string()), "{emails}");
}

#[test]
fn an_internal_token_is_worth_nothing_outside_its_transaction() {
    let (a, _b) = two_tenants("Replay");
    let mut app = app_signed();
    let mut tx = begin_signed(&mut app, a.tenant);
    let internal: String = tx
        .query_one("SELECT current_setting('app.current_tenant_id')", &[])
        .unwrap()
        .get(0);
    assert!(internal.starts_with("i1."), "an internal token: {internal}");
    // A session-level SET of its own token is accepted in its transaction...
    tx.batch_execute(&format!("SET app.current_tenant_id = '{internal}'"))
        .unwrap();
    tx.commit().unwrap();
    // ... and is worth nothing after it: the pooled connection's next
    // client reads no tenant.
    assert_eq!(current(&mut app), NIL);
    assert_eq!(
        context(&mut app),
        (None, "refused: other transaction".into())
    );
    let mut tx = app.transaction().unwrap();
    assert_eq!(count(&mut tx, "users"), 0);
    tx.commit().unwrap();
    app.batch_execute("RESET app.current_tenant_id").unwrap();

    // In a backend that has not loaded the library yet the setting is a
    // mere placeholder and takes the value; the library refuses it when it
    // loads (the first policy does that), and the backend reads no tenant.
    // (With shared_preload_libraries = 'platform', as docs/security.md
    // requires for signed mode, the SET itself fails.)
    let mut fresh = app_signed();
    let mut tx = fresh.transaction().unwrap();
    let replay = "SELECT set_config('app.current_tenant_id', $1, true)";
    if attempt(&mut tx, |tx| tx.execute(replay, &[&internal])).is_ok() {
        tx.execute(replay, &[&internal]).unwrap();
    }
    assert_eq!(
        count(&mut tx, "users"),
        0,
        "a replay before the library loaded"
    );
    assert_eq!(context(&mut tx).0, None);
    drop(tx);

    // Replayed in a later transaction of the same backend, or in another
    // backend: refused when set.
    let mut other = app_signed();
    other
        .batch_execute("SELECT get_current_tenant_id()")
        .unwrap();
    for (client, what) in [
        (&mut app, "later transaction"),
        (&mut other, "other backend"),
    ] {
        let mut tx = client.transaction().unwrap();
        assert_refused(
            attempt(&mut tx, |tx| {
                tx.execute(
                    "SELECT set_config('app.current_tenant_id', $1, true)",
                    &[&internal],
                )
            }),
            SqlState::INSUFFICIENT_PRIVILEGE,
            &internal,
            what,
        );
        assert_refused(
            attempt(&mut tx, |tx| {
                tx.batch_execute(&format!("SET LOCAL app.current_tenant_id = '{internal}'"))
            }),
            SqlState::INSUFFICIENT_PRIVILEGE,
            &internal,
            what,
        );
        assert_eq!(count(&mut tx, "users"), 0, "{what}");
    }
}

#[test]
fn function_set_clauses_and_role_defaults_are_refused() {
    let (a, b) = two_tenants("Clauses");
    let victim = b.tenant.to_string();
    let mut app = app_signed();
    // A function's SET clause is checked when the function is created...
    assert_refused(
        app.batch_execute(&format!(
            "CREATE FUNCTION pg_temp.as_b() RETURNS bigint LANGUAGE sql
             SET app.current_tenant_id = '{victim}' AS 'SELECT count(*) FROM users'"
        )),
        SqlState::INSUFFICIENT_PRIVILEGE,
        &victim,
        "CREATE FUNCTION ... SET",
    );
    // ... and when it is called: one created with the transaction's own
    // token is refused in the next transaction.
    let mut tx = begin_signed(&mut app, a.tenant);
    let internal: String = tx
        .query_one("SELECT current_setting('app.current_tenant_id')", &[])
        .unwrap()
        .get(0);
    tx.batch_execute(&format!(
        "CREATE FUNCTION pg_temp.as_a() RETURNS bigint LANGUAGE sql
         SET app.current_tenant_id = '{internal}' AS 'SELECT count(*) FROM users'"
    ))
    .unwrap();
    tx.commit().unwrap();
    assert_refused(
        app.query("SELECT pg_temp.as_a()", &[]),
        SqlState::INSUFFICIENT_PRIVILEGE,
        &internal,
        "a SET clause from another transaction",
    );

    // ALTER ROLE ... SET, by the role itself or even by a superuser.
    assert_refused(
        app.batch_execute(&format!(
            "ALTER ROLE CURRENT_USER SET app.current_tenant_id = '{victim}'"
        )),
        SqlState::INSUFFICIENT_PRIVILEGE,
        &victim,
        "ALTER ROLE CURRENT_USER SET",
    );
    let mut admin = admin();
    assert_refused(
        admin.batch_execute(&format!(
            "SELECT platform_tenant_context();
             ALTER ROLE {} SET app.current_tenant_id = '{victim}'",
            db().app_role
        )),
        SqlState::INSUFFICIENT_PRIVILEGE,
        &victim,
        "ALTER ROLE SET as a superuser",
    );

    // One that got in while the library was not loaded (a role default
    // written from another database) is dropped when it loads.
    let role = format!("platform_signed_default_{}", std::process::id());
    let mut server = admin_of(maintenance_db());
    server
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; {};
             ALTER ROLE {role} SET app.current_tenant_id = '{victim}'",
            create_login_role(&role, "NOSUPERUSER NOBYPASSRLS")
        ))
        .unwrap();
    admin
        .execute("SELECT grant_app_access($1::text::regrole)", &[&role])
        .unwrap();
    let mut defaulted = connect_as(&role);
    let mut tx = defaulted.transaction().unwrap();
    assert_eq!(count(&mut tx, "users"), 0, "a role default names no tenant");
    assert_eq!(current(&mut tx), NIL);
    tx.commit().unwrap();
    drop(defaulted);
    admin
        .execute("SELECT revoke_app_access($1::text::regrole)", &[&role])
        .unwrap();
    server.batch_execute(&format!("DROP ROLE {role}")).unwrap();
}

#[test]
fn bad_tokens_are_each_refused_with_their_own_message() {
    let (a, _b) = two_tenants("Bad tokens");
    let mut app = app_signed();
    let tenant = a.tenant.to_string();
    let good = tenant_token(a.tenant);
    let mac = good.rsplit('.').next().unwrap();
    let flipped = format!(
        "{}{}",
        &good[..good.len() - 1],
        if good.ends_with('0') { '1' } else { '0' }
    );
    let other_key = "ab".repeat(32);
    let cases: Vec<(&str, String, SqlState, &str)> = vec![
        (
            "expired",
            mint(TEST_KID, TEST_KEY_HEX, "tenant", &tenant, now() - 1),
            SqlState::INSUFFICIENT_PRIVILEGE,
            "expired",
        ),
        (
            "over the TTL cap",
            mint(TEST_KID, TEST_KEY_HEX, "tenant", &tenant, now() + 3600),
            SqlState::INSUFFICIENT_PRIVILEGE,
            "tenant_token_max_ttl",
        ),
        (
            "tampered",
            flipped,
            SqlState::INSUFFICIENT_PRIVILEGE,
            "does not verify",
        ),
        (
            "signed with another key",
            mint(TEST_KID, &other_key, "tenant", &tenant, now() + 60),
            SqlState::INSUFFICIENT_PRIVILEGE,
            "does not verify",
        ),
        (
            "unknown key id",
            mint("nokey", &other_key, "tenant", &tenant, now() + 60),
            SqlState::INSUFFICIENT_PRIVILEGE,
            "key id",
        ),
        (
            "an e-mail proof",
            mint(
                TEST_KID,
                TEST_KEY_HEX,
                "email",
                &"cd".repeat(32),
                now() + 60,
            ),
            SqlState::INSUFFICIENT_PRIVILEGE,
            "not a tenant token",
        ),
        (
            "a bare uuid",
            tenant.clone(),
            SqlState::INVALID_PARAMETER_VALUE,
            "malformed",
        ),
        (
            "an upper-case mac",
            good.replace(mac, &mac.to_uppercase()),
            SqlState::INVALID_PARAMETER_VALUE,
            "malformed",
        ),
    ];
    for (what, token, code, says) in cases {
        let mut tx = app.transaction().unwrap();
        let message = assert_refused(
            tx.execute("SELECT set_tenant_token($1)", &[&token]),
            code,
            &token,
            what,
        );
        assert!(message.contains(says), "{what}: {message}");
    }
    assert_sqlstate(
        app.execute("SELECT set_tenant_token(NULL)", &[]),
        SqlState::NULL_VALUE_NOT_ALLOWED,
        "NULL",
    );
    // The good one still works.
    let mut tx = app.transaction().unwrap();
    tx.execute("SELECT set_tenant_token($1)", &[&good]).unwrap();
    assert_eq!(count(&mut tx, "users"), 1);
}

#[test]
fn savepoints_reset_and_discard_all() {
    let (a, b) = two_tenants("Savepoints");
    let mut app = app_signed();
    let mut tx = app.transaction().unwrap();
    {
        let mut savepoint = tx.transaction().unwrap();
        savepoint
            .execute("SELECT set_tenant_token($1)", &[&tenant_token(a.tenant)])
            .unwrap();
        assert_eq!(count(&mut savepoint, "users"), 1);
        savepoint.rollback().unwrap();
    }
    assert_eq!(
        current(&mut tx),
        NIL,
        "the context of a rolled-back savepoint"
    );
    // The pin outlives the savepoint: still no switching to B.
    assert_sqlstate(
        attempt(&mut tx, |tx| {
            tx.execute("SELECT set_tenant_token($1)", &[&tenant_token(b.tenant)])
        }),
        SqlState::INSUFFICIENT_PRIVILEGE,
        "B after A's savepoint rolled back",
    );
    tx.execute("SELECT set_tenant_token($1)", &[&tenant_token(a.tenant)])
        .unwrap();
    tx.batch_execute("RESET app.current_tenant_id").unwrap();
    assert_eq!(current(&mut tx), NIL, "RESET");
    assert_eq!(count(&mut tx, "users"), 0);
    tx.rollback().unwrap();

    let mut tx = begin_signed(&mut app, a.tenant);
    let internal: String = tx
        .query_one("SELECT current_setting('app.current_tenant_id')", &[])
        .unwrap()
        .get(0);
    tx.batch_execute(&format!("SET app.current_tenant_id = '{internal}'"))
        .unwrap();
    tx.commit().unwrap();
    app.batch_execute("DISCARD ALL").unwrap();
    assert_eq!(context(&mut app), (None, "none".into()), "DISCARD ALL");
}

#[test]
fn the_key_is_hidden_from_the_application_role() {
    signed_db();
    let mut app = app_signed();
    // Before the library is loaded, a key read from postgresql.conf is a
    // placeholder without the library's SUPERUSER_ONLY flag: signed mode
    // needs shared_preload_libraries = 'platform' (docs/security.md), and
    // then a fresh backend already hides it. Without it, load it first.
    let preloaded: String = admin()
        .query_one("SHOW shared_preload_libraries", &[])
        .unwrap()
        .get(0);
    if !preloaded.split(',').any(|l| l.trim() == "platform") {
        app.batch_execute("SELECT get_current_tenant_id()").unwrap();
    }
    for statement in [
        "SHOW platform.tenant_keys",
        "SELECT current_setting('platform.tenant_keys')",
        "SELECT current_setting('platform.tenant_keys', true)",
    ] {
        assert_refused(
            app.query(statement, &[]),
            SqlState::INSUFFICIENT_PRIVILEGE,
            TEST_KEY_HEX,
            statement,
        );
    }
    let listed: i64 = app
        .query_one(
            "SELECT count(*) FROM pg_settings WHERE name = 'platform.tenant_keys'
                OR setting LIKE $1",
            &[&format!("%{TEST_KEY_HEX}%")],
        )
        .unwrap()
        .get(0);
    assert_eq!(listed, 0, "pg_settings lists the key");
    let in_catalog: i64 = app
        .query_one(
            "SELECT count(*) FROM pg_db_role_setting WHERE array_to_string(setconfig, ',') LIKE $1",
            &[&format!("%{TEST_KEY_HEX}%")],
        )
        .unwrap()
        .get(0);
    assert_eq!(in_catalog, 0);
    assert_sqlstate(
        app.query("SELECT platform_new_tenant_key()", &[]),
        SqlState::INSUFFICIENT_PRIVILEGE,
        "platform_new_tenant_key() as the application role",
    );
    let entry: String = admin()
        .query_one("SELECT platform_new_tenant_key()", &[])
        .unwrap()
        .get(0);
    let (kid, key) = entry.split_once(':').unwrap();
    assert!(kid.len() > 1 && key.len() == 64, "{entry}");
}

#[test]
fn set_tenant_is_only_for_trusted_sessions() {
    let (a, _b) = two_tenants("Trusted");
    let mut app = app_signed();
    let mut tx = app.transaction().unwrap();
    let err = tx
        .execute("SELECT set_tenant($1)", &[&a.tenant])
        .expect_err("set_tenant as the application role");
    let db_error = err.as_db_error().unwrap();
    assert_eq!(db_error.code(), &SqlState::INSUFFICIENT_PRIVILEGE);
    assert!(db_error
        .hint()
        .unwrap_or_default()
        .contains("set_tenant_token"));
    drop(tx);
    // Nor through a SECURITY DEFINER function of the role's own: the session
    // user is what counts.
    // A superuser may.
    let mut admin = admin();
    let mut tx = admin.transaction().unwrap();
    tx.execute("SELECT set_tenant($1)", &[&a.tenant]).unwrap();
    assert_eq!(current(&mut tx), a.tenant);
    tx.commit().unwrap();
    // And a role an operator trusted, until its access is revoked.
    let role = format!("platform_signed_job_{}", std::process::id());
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; {}",
            create_login_role(&role, "NOSUPERUSER NOBYPASSRLS")
        ))
        .unwrap();
    admin
        .execute("SELECT grant_app_access($1::text::regrole)", &[&role])
        .unwrap();
    admin
        .execute("SELECT grant_trusted_context($1::text::regrole)", &[&role])
        .unwrap();
    let mut job = connect_as(&role);
    let mut tx = job.transaction().unwrap();
    tx.execute("SELECT set_tenant($1)", &[&a.tenant]).unwrap();
    assert_eq!(count(&mut tx, "users"), 1);
    tx.commit().unwrap();
    assert_sqlstate(
        app.execute("SELECT grant_trusted_context(current_user::regrole)", &[]),
        SqlState::INSUFFICIENT_PRIVILEGE,
        "grant_trusted_context as the application role",
    );
    admin
        .execute("SELECT revoke_app_access($1::text::regrole)", &[&role])
        .unwrap();
    admin
        .execute("SELECT grant_app_access($1::text::regrole)", &[&role])
        .unwrap();
    let mut tx = job.transaction().unwrap();
    assert_sqlstate(
        tx.execute("SELECT set_tenant($1)", &[&a.tenant]),
        SqlState::INSUFFICIENT_PRIVILEGE,
        "set_tenant after revoke_app_access",
    );
    drop(tx);
    drop(job);
    admin
        .execute("SELECT revoke_app_access($1::text::regrole)", &[&role])
        .unwrap();
    admin.batch_execute(&format!("DROP ROLE {role}")).unwrap();
}

#[test]
fn provisioning_works_in_signed_mode() {
    let (a, _b) = two_tenants("Provisioning");
    signed_db();
    let mut provisioner = provisioner();
    // create_tenant keeps the caller's context.
    let mut tx = begin_signed(&mut provisioner, a.tenant);
    let created: Uuid = tx
        .query_one("SELECT create_tenant('Signed signup')", &[])
        .unwrap()
        .get(0);
    assert_ne!(created, a.tenant);
    assert_eq!(
        current(&mut tx),
        a.tenant,
        "create_tenant restored the context"
    );
    tx.commit().unwrap();
    // The document's seed, through begin_new_tenant.
    let mut tx = provisioner.transaction().unwrap();
    let fresh: Uuid = tx
        .query_one("SELECT begin_new_tenant()", &[])
        .unwrap()
        .get(0);
    let id: Uuid = tx
        .query_one(
            "INSERT INTO tenants (name, api_key, plan) VALUES ('Seeded', $1, 'starter') RETURNING id",
            &[&format!("pk_test_{}", fresh.simple())],
        )
        .unwrap()
        .get(0);
    assert_eq!(id, fresh);
    tx.execute(
        "INSERT INTO users (email, role, name) VALUES ('owner@seeded.example', 'owner', 'Owner')",
        &[],
    )
    .unwrap();
    tx.commit().unwrap();
    // An existing tenant is refused, and so is a second tenant.
    let mut tx = provisioner.transaction().unwrap();
    assert_sqlstate(
        attempt(&mut tx, |tx| {
            tx.query("SELECT begin_new_tenant($1)", &[&a.tenant])
        }),
        SqlState::UNIQUE_VIOLATION,
        "begin_new_tenant of an existing tenant",
    );
    drop(tx);
    let mut tx = begin_signed(&mut provisioner, a.tenant);
    assert_sqlstate(
        tx.query("SELECT begin_new_tenant()", &[]),
        SqlState::INSUFFICIENT_PRIVILEGE,
        "begin_new_tenant after set_tenant_token",
    );
    drop(tx);
    // The application role has no provisioning at all.
    let mut app = app_signed();
    assert_sqlstate(
        app.query("SELECT begin_new_tenant()", &[]),
        SqlState::INSUFFICIENT_PRIVILEGE,
        "begin_new_tenant as the application role",
    );
}

#[test]
fn parallel_workers_verify_against_the_leader() {
    let (a, _b) = two_tenants("Parallel");
    let mut app = app_signed();
    let mut tx = begin_signed(&mut app, a.tenant);
    // debug_parallel_query was force_parallel_mode before PostgreSQL 16.
    let version: String = tx.query_one("SHOW server_version_num", &[]).unwrap().get(0);
    let force = if version.parse::<i32>().unwrap() < 160000 {
        "force_parallel_mode"
    } else {
        "debug_parallel_query"
    };
    tx.batch_execute(&format!(
        "SET LOCAL {force} = on; SET LOCAL parallel_setup_cost = 0;
         SET LOCAL parallel_tuple_cost = 0"
    ))
    .unwrap();
    let plan: Vec<String> = tx
        .query("EXPLAIN (COSTS OFF) SELECT get_current_tenant_id()", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(plan.iter().any(|l| l.contains("Gather")), "{plan:?}");
    assert_eq!(current(&mut tx), a.tenant, "evaluated in a worker");
    assert_eq!(count(&mut tx, "users"), 1);
}

#[test]
fn keys_roll_with_an_overlap() {
    let (a, _b) = two_tenants("Rotation");
    let old_key = "11".repeat(32);
    let new_key = "22".repeat(32);
    let with = |kid: &str, key: &str| mint(kid, key, "tenant", &a.tenant.to_string(), now() + 60);
    let works = |token: &str| -> bool {
        let mut app = app_signed();
        let mut tx = app.transaction().unwrap();
        tx.execute("SELECT set_tenant_token($1)", &[&token]).is_ok()
    };
    signed::set_test_keys(&format!(",r1:{old_key}"));
    assert!(works(&with("r1", &old_key)));
    assert!(!works(&with("r2", &new_key)));
    // Both during the overlap...
    signed::set_test_keys(&format!(",r2:{new_key},r1:{old_key}"));
    assert!(works(&with("r1", &old_key)));
    assert!(works(&with("r2", &new_key)));
    // ... and only the new one once the old is removed.
    signed::set_test_keys(&format!(",r2:{new_key}"));
    assert!(!works(&with("r1", &old_key)));
    assert!(works(&with("r2", &new_key)));
    // The test key never left.
    assert!(works(&tenant_token(a.tenant)));
    // A malformed entry is left out, and the audit counts it without
    // showing it.
    let audit = || -> Vec<(String, String)> {
        admin()
            .query("SELECT finding, detail FROM platform_audit()", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };
    assert!(!audit().iter().any(|(f, _)| f.contains("tenant_keys")));
    signed::set_test_keys(&format!(",r2:{new_key},broken:abcdef"));
    assert!(works(&with("r2", &new_key)));
    let findings = audit();
    let malformed: Vec<_> = findings
        .iter()
        .filter(|(f, _)| f == "malformed entries in platform.tenant_keys")
        .collect();
    assert_eq!(malformed.len(), 1, "{findings:?}");
    assert!(malformed[0].1.starts_with("1 left out"), "{findings:?}");
    assert!(!malformed[0].1.contains("abcdef"));
    signed::set_test_keys(&format!(",r2:{new_key}"));
}

#[test]
fn a_token_for_a_tenant_that_does_not_exist_reads_and_writes_nothing() {
    let mut app = app_signed();
    let mut tx = app.transaction().unwrap();
    tx.execute(
        "SELECT set_tenant_token($1)",
        &[&tenant_token(Uuid::new_v4())],
    )
    .unwrap();
    assert_eq!(count(&mut tx, "tenants"), 0);
    assert_sqlstate(
        attempt(&mut tx, |tx| {
            tx.execute(
                "INSERT INTO tenants (name, api_key) VALUES ('Ghost', 'pk_ghost_0123456789abcdef0123456789')",
                &[],
            )
        }),
        SqlState::INSUFFICIENT_PRIVILEGE,
        "INSERT INTO tenants under a token for a new id",
    );
    assert!(tx
        .execute(
            "INSERT INTO widgets (name, domain_whitelist) VALUES ('w', '[]')",
            &[]
        )
        .is_err());
}
