//! Passwords: stored where no application role reads them, checked inside
//! the database, and the design document's seed and Drizzle rows still work.

use platform_client_tests::*;
use postgres::error::SqlState;
use postgres::Transaction;
use uuid::Uuid;

/// The classic bcrypt test vector (OpenBSD's): the hash of "U*U" at cost 5.
const BCRYPT_OF_U_STAR_U: &str = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

fn email_of(tenant: &TenantData) -> String {
    format!("admin@{}.example", tenant.tenant.simple())
}

fn sign_in(client: &mut impl postgres::GenericClient, email: &str, password: &str) -> Vec<Uuid> {
    client
        .query(
            "SELECT tenant_id FROM verify_password($1, $2)",
            &[&email, &password],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// What the owner sees of a user's stored password: its scheme, or None.
fn stored_scheme(user: Uuid) -> Option<String> {
    admin()
        .query_opt(
            "SELECT scheme FROM user_credentials WHERE user_id = $1",
            &[&user],
        )
        .unwrap()
        .map(|r| r.get(0))
}

fn insert_user(tx: &mut Transaction, email: &str, password_hash: &str) -> Uuid {
    tx.query_one(
        "INSERT INTO users (email, password_hash) VALUES ($1, $2) RETURNING id",
        &[&email, &password_hash],
    )
    .unwrap()
    .get(0)
}

#[test]
fn the_document_seed_and_whole_row_writes_work_and_no_hash_is_readable() {
    let tenant = populate_tenant(&mut app(), "Seeded");
    let mut app = app();
    let email = format!("seed@{}.example", tenant.tenant.simple());
    let user = as_tenant(&mut app, tenant.tenant, |tx| {
        // The document's seed: sha256('password123') as hex.
        let (user, column): (Uuid, String) = tx
            .query_one(
                "INSERT INTO users (email, password_hash, role, name)
                 VALUES ($1, encode(sha256('password123'), 'hex'), 'owner', 'John Doe')
                 RETURNING id, password_hash",
                &[&email],
            )
            .map(|r| (r.get(0), r.get(1)))
            .unwrap();
        assert_eq!(column, "platform:stored");
        // Drizzle reads whole rows and writes them back.
        let columns: Vec<String> = tx
            .query("SELECT DISTINCT password_hash FROM users", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(columns, vec!["platform:stored".to_owned()]);
        tx.execute(
            "UPDATE users SET name = 'Jane Doe', password_hash = password_hash WHERE id = $1",
            &[&user],
        )
        .unwrap();
        user
    });
    assert_eq!(stored_scheme(user).as_deref(), Some("sha256"));
    // users_for_email gives what picks a tenant, never a hash.
    let columns: Vec<String> = app
        .query_one("SELECT * FROM users_for_email($1)", &[&email])
        .unwrap()
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    assert_eq!(columns, ["user_id", "tenant_id", "role"]);

    assert_eq!(
        sign_in(&mut app, &email, "password123"),
        vec![tenant.tenant]
    );
    assert_eq!(
        stored_scheme(user).as_deref(),
        Some("argon2id"),
        "the unsalted hash is replaced at the first login"
    );
    assert_eq!(
        sign_in(&mut app, &email, "password123"),
        vec![tenant.tenant]
    );
    assert!(sign_in(&mut app, &email, "password124").is_empty());
}

#[test]
fn set_password_and_verify_password_act_for_one_tenant_and_return_ids() {
    let a = populate_tenant(&mut app(), "Passwords A");
    let b = populate_tenant(&mut app(), "Passwords B");
    let mut app = app();
    let a_user = a.row("users");
    as_tenant(&mut app, a.tenant, |tx| {
        tx.execute("SELECT set_password($1, 'a new passphrase')", &[&a_user])
            .unwrap();
        // B's user is not one of A's: the same error as a user that does not exist.
        for user in [b.row("users"), Uuid::new_v4()] {
            assert_sqlstate(
                attempt(tx, |tx| {
                    tx.execute("SELECT set_password($1, 'taken over')", &[&user])
                }),
                SqlState::INVALID_PARAMETER_VALUE,
                "set_password for a user outside the tenant",
            );
        }
    });
    assert_eq!(stored_scheme(a_user).as_deref(), Some("argon2id"));
    assert_eq!(
        sign_in(&mut app, &email_of(&a), "a new passphrase"),
        vec![a.tenant]
    );
    assert!(sign_in(&mut app, &email_of(&a), FIXTURE_PASSWORD).is_empty());
    assert_eq!(
        sign_in(&mut app, &email_of(&b), FIXTURE_PASSWORD),
        vec![b.tenant]
    );
    assert!(sign_in(&mut app, "nobody@example.com", FIXTURE_PASSWORD).is_empty());
    // With a tenant given, only that tenant's user is checked.
    let in_other: i64 = app
        .query_one(
            "SELECT count(*) FROM verify_password($1, 'a new passphrase', $2)",
            &[&email_of(&a), &b.tenant],
        )
        .unwrap()
        .get(0);
    assert_eq!(in_other, 0);

    for (call, code) in [
        (
            "SELECT set_password(gen_random_uuid(), 'x')",
            SqlState::INSUFFICIENT_PRIVILEGE,
        ),
        (
            "SELECT * FROM verify_password(NULL, 'x')",
            SqlState::NULL_VALUE_NOT_ALLOWED,
        ),
        (
            "SELECT * FROM verify_password('a@example.com', NULL)",
            SqlState::NULL_VALUE_NOT_ALLOWED,
        ),
        (
            "SELECT * FROM verify_password('a@example.com', repeat('x', 1025))",
            SqlState::PROGRAM_LIMIT_EXCEEDED,
        ),
    ] {
        assert_sqlstate(app.query(call, &[]), code, call);
    }
    as_tenant(&mut app, a.tenant, |tx| {
        assert_sqlstate(
            attempt(tx, |tx| {
                tx.execute("SELECT set_password($1, '')", &[&a_user])
            }),
            SqlState::INVALID_PARAMETER_VALUE,
            "an empty password",
        );
    });
}

#[test]
fn passwords_in_clear_and_hashes_for_another_tenant_are_refused() {
    let a = populate_tenant(&mut app(), "Refusing A");
    let b = populate_tenant(&mut app(), "Refusing B");
    let mut app = app();
    as_tenant(&mut app, a.tenant, |tx| {
        for statement in [
            "INSERT INTO users (email, password_hash) VALUES ('clear@example.com', 'hunter2')",
            "UPDATE users SET password_hash = 'hunter2'",
            // An Argon2id hash whose cost would make every login a denial of service.
            "UPDATE users SET password_hash = '$argon2id$v=19$m=4194304,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'",
        ] {
            assert_sqlstate(
                attempt(tx, |tx| tx.execute(statement, &[])),
                SqlState::INVALID_PARAMETER_VALUE,
                statement,
            );
        }
        assert_sqlstate(
            attempt(tx, |tx| {
                tx.execute(
                    "INSERT INTO users (tenant_id, email, password_hash)
                     VALUES ($1, 'planted@example.com', encode(sha256('planted'), 'hex'))",
                    &[&b.tenant],
                )
            }),
            SqlState::INSUFFICIENT_PRIVILEGE,
            "a user with a password in another tenant",
        );
    });
    let planted: i64 = admin()
        .query_one(
            "SELECT count(*) FROM user_credentials WHERE tenant_id = $1",
            &[&b.tenant],
        )
        .unwrap()
        .get(0);
    assert_eq!(planted, 1, "B has its fixture user's password only");
}

#[test]
fn an_insert_that_finds_its_user_leaves_the_password_alone() {
    let tenant = populate_tenant(&mut app(), "Upserts");
    let user = tenant.row("users");
    let mut app = app();
    as_tenant(&mut app, tenant.tenant, |tx| {
        for conflict in [
            "DO NOTHING",
            "DO UPDATE SET password_hash = excluded.password_hash",
        ] {
            tx.execute(
                &format!(
                    "INSERT INTO users (id, email, password_hash)
                     VALUES ($1, 'other@example.com', encode(sha256('replaced'), 'hex'))
                     ON CONFLICT (id) {conflict}"
                ),
                &[&user],
            )
            .unwrap();
        }
    });
    assert_eq!(
        sign_in(&mut app, &email_of(&tenant), FIXTURE_PASSWORD),
        vec![tenant.tenant]
    );
}

#[test]
fn removing_a_password_a_user_or_a_tenant_removes_the_hash() {
    let tenant = populate_tenant(&mut app(), "Removals");
    let mut app = app();
    let (kept_null, deleted) = as_tenant(&mut app, tenant.tenant, |tx| {
        let kept_null = insert_user(tx, "no-password@example.com", &fixture_password_hash());
        let deleted = insert_user(tx, "deleted@example.com", &fixture_password_hash());
        tx.execute(
            "UPDATE users SET password_hash = NULL WHERE id = $1",
            &[&kept_null],
        )
        .unwrap();
        tx.execute("DELETE FROM users WHERE id = $1", &[&deleted])
            .unwrap();
        (kept_null, deleted)
    });
    assert_eq!(stored_scheme(kept_null), None);
    assert_eq!(stored_scheme(deleted), None);
    assert!(sign_in(&mut app, "no-password@example.com", FIXTURE_PASSWORD).is_empty());

    let owner = tenant.row("users");
    assert!(stored_scheme(owner).is_some());
    as_tenant(&mut provisioner(), tenant.tenant, |tx| {
        tx.execute("DELETE FROM tenants", &[]).unwrap()
    });
    assert_eq!(stored_scheme(owner), None);
}

#[test]
fn hashes_stay_with_the_owner() {
    let tenant = populate_tenant(&mut app(), "Owner only");
    let mut app = app();
    for call in [
        "SELECT * FROM user_credentials",
        "SELECT platform_password_hash('x')",
        "SELECT platform_password_matches('sha256', 'x', 'x')",
        "SELECT platform_password_scheme('x')",
    ] {
        assert_sqlstate(app.query(call, &[]), SqlState::INSUFFICIENT_PRIVILEGE, call);
    }
    as_tenant(&mut app, tenant.tenant, |tx| {
        let seen: String = tx
            .query_one("SELECT password_hash FROM users", &[])
            .unwrap()
            .get(0);
        assert_eq!(seen, "platform:stored");
    });
}

#[test]
fn bcrypt_hashes_from_before_sign_in_and_become_argon2id() {
    let tenant = populate_tenant(&mut app(), "Bcrypt");
    let mut app = app();
    let user = as_tenant(&mut app, tenant.tenant, |tx| {
        insert_user(tx, "bcrypt@example.com", BCRYPT_OF_U_STAR_U)
    });
    assert_eq!(stored_scheme(user).as_deref(), Some("bcrypt"));
    assert!(sign_in(&mut app, "bcrypt@example.com", "U*V").is_empty());
    assert_eq!(
        sign_in(&mut app, "bcrypt@example.com", "U*U"),
        vec![tenant.tenant]
    );
    assert_eq!(stored_scheme(user).as_deref(), Some("argon2id"));
}

#[test]
fn a_read_only_login_verifies_and_keeps_the_old_hash() {
    let tenant = populate_tenant(&mut app(), "Read only");
    let mut app = app();
    let user = as_tenant(&mut app, tenant.tenant, |tx| {
        tx.query_one(
            "INSERT INTO users (email, password_hash)
             VALUES ('standby@example.com', encode(sha256('on a replica'), 'hex')) RETURNING id",
            &[],
        )
        .unwrap()
        .get::<_, Uuid>(0)
    });
    let mut tx = app.build_transaction().read_only(true).start().unwrap();
    assert_eq!(
        sign_in(&mut tx, "standby@example.com", "on a replica"),
        vec![tenant.tenant]
    );
    tx.commit().unwrap();
    assert_eq!(stored_scheme(user).as_deref(), Some("sha256"));
}
