//! Lookups before the tenant is known (sql/lookups.sql), called as the
//! application role with no tenant context, and API keys stored as digests.
//! The fixture derives each tenant's secrets from its id: API key
//! `pk_test_<id>`, session token and OAuth account id `<id>`, e-mail
//! `admin@<id>.example` (ids in simple form, no dashes).

use platform_client_tests::*;
use postgres::error::SqlState;
use postgres::Client;
use uuid::Uuid;

fn tenant_for_api_key(client: &mut Client, key: &str) -> Option<Uuid> {
    client
        .query_one("SELECT tenant_for_api_key($1)", &[&key])
        .expect("tenant_for_api_key")
        .get(0)
}

fn stored_api_key(tenant: Uuid) -> String {
    admin()
        .query_one("SELECT api_key FROM tenants WHERE id = $1", &[&tenant])
        .unwrap()
        .get(0)
}

#[test]
fn an_api_key_leads_to_its_tenant_and_is_stored_only_as_a_digest() {
    let mut app = app();
    let a = populate_tenant(&mut app, "Keyed A").tenant;
    let b = populate_tenant(&mut app, "Keyed B").tenant;
    let key_a = format!("pk_test_{}", a.simple());
    let key_b = format!("pk_test_{}", b.simple());

    assert_eq!(tenant_for_api_key(&mut app, &key_a), Some(a));
    assert_eq!(tenant_for_api_key(&mut app, &key_b), Some(b));
    for wrong in [
        String::new(),
        format!("pk_test_{}", Uuid::new_v4().simple()),
        key_a.to_uppercase(),
        format!("{key_a} "),
        key_a[..key_a.len() - 1].to_owned(),
        // The stored digest is not a key: a leaked database opens nothing.
        stored_api_key(a),
    ] {
        assert_eq!(tenant_for_api_key(&mut app, &wrong), None, "{wrong:?}");
    }
    let stored = stored_api_key(a);
    assert!(
        stored.starts_with("sha256:") && stored.len() == 7 + 64 && !stored.contains(&key_a[8..]),
        "{stored}"
    );
    assert_sqlstate(
        app.query_one("SELECT tenant_for_api_key(NULL)", &[]),
        SqlState::NULL_VALUE_NOT_ALLOWED,
        "tenant_for_api_key(NULL)",
    );
}

#[test]
fn short_api_keys_are_refused_and_digests_are_kept_as_they_are() {
    let mut app = app();
    let tenant = populate_tenant(&mut app, "Short key").tenant;
    let digest = stored_api_key(tenant);
    as_tenant(&mut app, tenant, |tx| {
        assert_sqlstate(
            attempt(tx, |tx| {
                tx.execute("UPDATE tenants SET api_key = 'pk_short'", &[])
            }),
            SqlState::INVALID_PARAMETER_VALUE,
            "a key of 8 characters",
        );
        // An UPDATE that writes the stored value back (an ORM saving the
        // whole row) must not hash the digest again.
        tx.execute(
            "UPDATE tenants SET api_key = api_key, name = 'Renamed'",
            &[],
        )
        .unwrap();
    });
    assert_eq!(stored_api_key(tenant), digest);
    assert_eq!(
        tenant_for_api_key(&mut app, &format!("pk_test_{}", tenant.simple())),
        Some(tenant)
    );
}

#[test]
fn rotating_a_key_retires_the_old_one_for_the_current_tenant_only() {
    let mut app = app();
    let a = populate_tenant(&mut app, "Rotating").tenant;
    let b = populate_tenant(&mut app, "Bystander").tenant;
    let old_key = format!("pk_test_{}", a.simple());
    let b_before = stored_api_key(b);

    let new_key: String = as_tenant(&mut app, a, |tx| {
        tx.query_one("SELECT rotate_api_key()", &[]).unwrap().get(0)
    });
    assert!(
        new_key.starts_with("pk_live_") && new_key.len() >= 32,
        "{new_key}"
    );
    assert_eq!(tenant_for_api_key(&mut app, &new_key), Some(a));
    assert_eq!(tenant_for_api_key(&mut app, &old_key), None);
    assert_eq!(
        stored_api_key(b),
        b_before,
        "another tenant's key is untouched"
    );

    let mut tx = app.transaction().unwrap();
    assert_sqlstate(
        tx.query_one("SELECT rotate_api_key()", &[]),
        SqlState::INSUFFICIENT_PRIVILEGE,
        "rotate_api_key() without a tenant context",
    );
}

#[test]
fn a_session_token_leads_to_its_user_while_unexpired() {
    let mut app = app();
    let data = populate_tenant(&mut app, "Signed in");
    let token = data.tenant.simple().to_string();
    let lookup = "SELECT user_id, tenant_id FROM user_for_session_token($1)";

    let rows = app.query(lookup, &[&token]).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, Uuid>(0), data.row("users"));
    assert_eq!(rows[0].get::<_, Uuid>(1), data.tenant);
    // Without a context the table itself shows nothing to the same role.
    let visible: i64 = app
        .query_one("SELECT count(*) FROM auth_sessions", &[])
        .unwrap()
        .get(0);
    assert_eq!(visible, 0);

    for wrong in [
        Uuid::new_v4().simple().to_string(),
        token.to_uppercase(),
        token[1..].to_owned(),
        String::new(),
    ] {
        assert!(
            app.query(lookup, &[&wrong]).unwrap().is_empty(),
            "{wrong:?}"
        );
    }
    // The same token copied into a second tenant (tokens are unique per
    // tenant only) is ambiguous: it finds nobody, rather than either.
    let copier = populate_tenant(&mut app, "Token copier");
    as_tenant(&mut app, copier.tenant, |tx| {
        tx.execute(
            "INSERT INTO auth_sessions (session_token, user_id, expires) VALUES ($1, $2, now() + interval '1 day')",
            &[&token, &copier.row("users")],
        )
        .unwrap();
    });
    assert!(
        app.query(lookup, &[&token]).unwrap().is_empty(),
        "an ambiguous token"
    );
    admin()
        .execute(
            "DELETE FROM auth_sessions WHERE tenant_id = $1 AND session_token = $2",
            &[&copier.tenant, &token],
        )
        .unwrap();
    assert_eq!(app.query(lookup, &[&token]).unwrap().len(), 1);
    admin()
        .execute(
            "UPDATE auth_sessions SET expires = now() - interval '1 second' WHERE id = $1",
            &[&data.row("auth_sessions")],
        )
        .unwrap();
    assert!(
        app.query(lookup, &[&token]).unwrap().is_empty(),
        "an expired session"
    );
    assert_sqlstate(
        app.query(lookup, &[&None::<String>]),
        SqlState::NULL_VALUE_NOT_ALLOWED,
        "user_for_session_token(NULL)",
    );
}

#[test]
fn an_address_or_oauth_account_in_two_tenants_is_neither_an_error_nor_a_leak() {
    let mut app = app();
    let a = populate_tenant(&mut app, "First employer");
    let b = populate_tenant(&mut app, "Second employer");
    let email = format!("admin@{}.example", a.tenant.simple());
    let account = a.tenant.simple().to_string();

    // Tenant B signs up the same person: no unique violation tells B that
    // the address or the Google account exists elsewhere.
    let (b_user, b_account) = as_tenant(&mut app, b.tenant, |tx| {
        let user: Uuid = tx
            .query_one(
                "INSERT INTO users (email, role) VALUES ($1, 'member') RETURNING id",
                &[&email],
            )
            .unwrap()
            .get(0);
        tx.execute(
            "INSERT INTO accounts (user_id, type, provider, provider_account_id)
             VALUES ($1, 'oauth', 'google', $2)",
            &[&user, &account],
        )
        .unwrap();
        // Within one tenant an address is still unique.
        assert_sqlstate(
            attempt(tx, |tx| {
                tx.execute("INSERT INTO users (email) VALUES ($1)", &[&email])
            }),
            SqlState::UNIQUE_VIOLATION,
            "the same address twice in one tenant",
        );
        (user, account.clone())
    });

    let mut expected = vec![(a.row("users"), a.tenant), (b_user, b.tenant)];
    expected.sort_by_key(|(_, tenant)| *tenant);
    let by_email: Vec<(Uuid, Uuid)> = app
        .query(
            "SELECT user_id, tenant_id FROM users_for_email($1)",
            &[&email],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(by_email, expected);
    let by_account: Vec<(Uuid, Uuid)> = app
        .query(
            "SELECT user_id, tenant_id FROM users_for_oauth_account('google', $1)",
            &[&b_account],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(by_account, expected);
    assert!(app
        .query("SELECT * FROM users_for_email('nobody@example.com')", &[])
        .unwrap()
        .is_empty());
    assert_sqlstate(
        app.query("SELECT * FROM users_for_oauth_account('google', NULL)", &[]),
        SqlState::NULL_VALUE_NOT_ALLOWED,
        "users_for_oauth_account(provider, NULL)",
    );
}

#[test]
fn only_application_roles_may_look_up_across_tenants() {
    let outsider = format!("platform_outsider_{}", std::process::id());
    let mut admin = admin();
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {outsider}; {};
             GRANT USAGE ON SCHEMA public TO {outsider}",
            create_login_role(&outsider, "")
        ))
        .unwrap();
    let mut client = connect_as(&outsider);
    for call in [
        "SELECT tenant_for_api_key('x')",
        "SELECT * FROM user_for_session_token('x')",
        "SELECT * FROM users_for_email('x')",
        "SELECT * FROM users_for_oauth_account('google', 'x')",
    ] {
        assert_sqlstate(
            client.query(call, &[]),
            SqlState::INSUFFICIENT_PRIVILEGE,
            call,
        );
    }
    drop(client);
    admin
        .batch_execute(&format!(
            "REVOKE USAGE ON SCHEMA public FROM {outsider}; DROP ROLE {outsider}"
        ))
        .unwrap();
}
