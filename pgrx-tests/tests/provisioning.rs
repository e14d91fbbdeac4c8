//! Provisioning and access management: create_tenant(), seed_demo_tenant(),
//! grant_app_access() and revoke_app_access().

use platform_client_tests::*;
use postgres::error::SqlState;
use uuid::Uuid;

#[test]
fn grant_app_access_refuses_roles_that_bypass_row_security() {
    let mut admin = admin();
    let suffix = std::process::id();
    let bypass = format!("platform_bypass_{suffix}");
    let member = format!("platform_member_{suffix}");
    for statement in [
        format!("DROP ROLE IF EXISTS {bypass}"),
        format!("DROP ROLE IF EXISTS {member}"),
        format!("CREATE ROLE {bypass} LOGIN BYPASSRLS"),
        format!("CREATE ROLE {member} LOGIN IN ROLE {}", superuser()),
    ] {
        admin.batch_execute(&statement).unwrap();
    }
    for (role, why) in [
        (superuser(), "a superuser"),
        (bypass.as_str(), "BYPASSRLS"),
        (member.as_str(), "a member of postgres"),
    ] {
        let err = admin
            .execute("SELECT grant_app_access($1::text::regrole)", &[&role])
            .expect_err("refused");
        let db = err.as_db_error().unwrap();
        assert_eq!(db.code(), &SqlState::INVALID_PARAMETER_VALUE, "{role}");
        assert!(
            db.message().contains("row-level security"),
            "{role} ({why}): {}",
            db.message()
        );
    }
    assert_sqlstate(
        admin.execute("SELECT grant_app_access(NULL)", &[]),
        SqlState::NULL_VALUE_NOT_ALLOWED,
        "grant_app_access(NULL)",
    );
    // Granting twice is harmless.
    admin
        .execute(
            "SELECT grant_app_access($1::text::regrole)",
            &[&db().app_role],
        )
        .unwrap();
}

#[test]
fn a_provisioning_role_creates_tenants_without_turning_force_off() {
    let mut admin = admin();
    let role = format!("platform_provisioner_{}", std::process::id());
    admin
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
        .unwrap();
    admin
        .batch_execute(&create_login_role(&role, "NOSUPERUSER NOBYPASSRLS"))
        .unwrap();
    admin
        .execute(
            "SELECT grant_app_access($1::text::regrole, provisioning => true)",
            &[&role],
        )
        .unwrap();

    let mut provisioner = connect_as(&role);
    let tenant: Uuid = provisioner
        .query_one("SELECT create_tenant('Initech', 'growth')", &[])
        .unwrap()
        .get(0);
    // The new tenant is visible under its own context only, and FORCE is still on.
    let name: String = as_tenant(&mut provisioner, tenant, |tx| {
        tx.query_one("SELECT name FROM tenants", &[])
            .unwrap()
            .get(0)
    });
    assert_eq!(name, "Initech");
    let forced: bool = admin
        .query_one(
            "SELECT relforcerowsecurity FROM pg_class WHERE oid = 'tenants'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(forced);
    // The caller's own context is untouched by the call.
    let other = provision_tenant("Context keeper");
    let after: Uuid = as_tenant(&mut provisioner, other, |tx| {
        tx.execute("SELECT create_tenant('Inner')", &[]).unwrap();
        tx.query_one("SELECT get_current_tenant_id()", &[])
            .unwrap()
            .get(0)
    });
    assert_eq!(after, other);

    admin
        .execute("SELECT revoke_app_access($1::text::regrole)", &[&role])
        .unwrap();
    assert_sqlstate(
        provisioner.query("SELECT count(*) FROM tenants", &[]),
        SqlState::INSUFFICIENT_PRIVILEGE,
        "reading after revoke_app_access",
    );
}

#[test]
fn create_tenant_checks_its_arguments() {
    let mut admin = admin();
    for (call, code) in [
        (
            "SELECT create_tenant(NULL)",
            SqlState::INVALID_PARAMETER_VALUE,
        ),
        (
            "SELECT create_tenant('   ')",
            SqlState::INVALID_PARAMETER_VALUE,
        ),
        (
            "SELECT create_tenant('Acme', 'platinum')",
            SqlState::INVALID_PARAMETER_VALUE,
        ),
        (
            "SELECT create_tenant('Acme', 'starter', '[1, 2]')",
            SqlState::INVALID_PARAMETER_VALUE,
        ),
        (
            "SELECT create_tenant('Acme', 'starter', '{}', '')",
            SqlState::INVALID_PARAMETER_VALUE,
        ),
    ] {
        assert_sqlstate(admin.execute(call, &[]), code, call);
    }
    let key = format!("pk_test_{}", Uuid::new_v4().simple());
    admin
        .execute(
            "SELECT create_tenant('Keyed', 'starter', '{}', $1)",
            &[&key],
        )
        .unwrap();
    assert_sqlstate(
        admin.execute(
            "SELECT create_tenant('Keyed again', 'starter', '{}', $1)",
            &[&key],
        ),
        SqlState::UNIQUE_VIOLATION,
        "a duplicate API key",
    );
}

#[test]
fn seed_demo_tenant_loads_the_documents_demo_data_through_the_policies() {
    let mut admin = admin();
    let domain = format!("d{}.example", Uuid::new_v4().simple());
    let tenant: Uuid = admin
        .query_one(
            "SELECT seed_demo_tenant('Acme Corporation', $1)",
            &[&domain],
        )
        .unwrap()
        .get(0);
    let mut app = app();
    let counts: Vec<i64> = as_tenant(&mut app, tenant, |tx| {
        tx.query_one(
            "SELECT (SELECT count(*) FROM tenants WHERE name = 'Acme Corporation' AND plan = 'business'),
                    (SELECT count(*) FROM users WHERE role = 'owner'),
                    (SELECT count(*) FROM auth_sessions),
                    (SELECT count(*) FROM widgets),
                    (SELECT count(*) FROM knowledge_documents),
                    (SELECT count(*) FROM ai_personalities WHERE is_default)",
            &[],
        )
        .map(|row| (0..6).map(|i| row.get(i)).collect())
        .unwrap()
    });
    assert_eq!(counts, vec![1; 6]);
    // E-mail addresses are unique per tenant: the same domain seeds a second,
    // separate tenant whose owner has the same address.
    let again: Uuid = admin
        .query_one("SELECT seed_demo_tenant('Acme again', $1)", &[&domain])
        .unwrap()
        .get(0);
    let owners: i64 = admin
        .query_one(
            "SELECT count(DISTINCT tenant_id) FROM users_for_email('admin@' || $1)",
            &[&domain],
        )
        .unwrap()
        .get(0);
    assert!(again != tenant && owners == 2);
    assert_sqlstate(
        admin.execute("SELECT seed_demo_tenant('Bad', 'not a domain')", &[]),
        SqlState::INVALID_PARAMETER_VALUE,
        "a malformed domain",
    );
}

/// verification_tokens has no tenant: a role granted it may read and delete
/// every pending e-mail sign-in token. The role that runs what tenants send
/// it is granted app access without it; the Auth.js adapter's role (with it)
/// inserts a token and consumes it by identifier and token, as the stock
/// adapter does. Granting again without it takes it back, and
/// platform_app_roles() tells which role has it (which is what an upgrade
/// grants its additions by).
#[test]
fn an_application_role_may_be_kept_away_from_verification_tokens() {
    let suffix = std::process::id();
    let tenant_facing = format!("platform_no_tokens_{suffix}");
    let adapter = format!("platform_adapter_{suffix}");
    let mut admin = admin();
    for role in [&tenant_facing, &adapter] {
        admin
            .batch_execute(&format!(
                "DROP ROLE IF EXISTS {role}; {}",
                create_login_role(role, "NOSUPERUSER NOBYPASSRLS")
            ))
            .unwrap();
    }
    admin
        .execute(
            "SELECT grant_app_access($1::text::regrole, verification_tokens => false)",
            &[&tenant_facing],
        )
        .unwrap();
    admin
        .execute("SELECT grant_app_access($1::text::regrole)", &[&adapter])
        .unwrap();
    let token = Uuid::new_v4().to_string();
    let mut adapter_client = connect_as(&adapter);
    adapter_client
        .execute(
            "INSERT INTO verification_tokens (identifier, token, expires)
             VALUES ('a@example.com', $1, now() + interval '1 day')",
            &[&token],
        )
        .expect("the adapter's role creates a token");
    let mut tenant_client = connect_as(&tenant_facing);
    for statement in [
        "SELECT * FROM verification_tokens",
        "DELETE FROM verification_tokens",
        "INSERT INTO verification_tokens VALUES ('x', 'y', now())",
    ] {
        assert_sqlstate(
            tenant_client.execute(statement, &[]),
            SqlState::INSUFFICIENT_PRIVILEGE,
            statement,
        );
    }
    let used = adapter_client
        .query(
            "DELETE FROM verification_tokens WHERE identifier = 'a@example.com' AND token = $1 RETURNING token",
            &[&token],
        )
        .unwrap();
    assert_eq!(used.len(), 1, "the adapter's role consumes its token");
    let roles: Vec<(String, bool)> = admin
        .query(
            "SELECT role::text, verification_tokens FROM platform_app_roles() WHERE role::text IN ($1, $2) ORDER BY 1",
            &[&adapter, &tenant_facing],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        roles,
        vec![(adapter.clone(), true), (tenant_facing.clone(), false)]
    );
    // Granting the adapter's role again without tokens takes them back.
    admin
        .execute(
            "SELECT grant_app_access($1::text::regrole, verification_tokens => false)",
            &[&adapter],
        )
        .unwrap();
    assert_sqlstate(
        connect_as(&adapter).execute("SELECT * FROM verification_tokens", &[]),
        SqlState::INSUFFICIENT_PRIVILEGE,
        "tokens taken back",
    );
}
