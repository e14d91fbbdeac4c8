//! One tenant's worth of rows in all 14 tenant-scoped tables, written with
//! INSERTs shaped like the design document's: the document's columns only, so
//! the four child tables get tenant_id from the tenant context, and the tenant
//! itself is created the way the document's seed does it (under a context, no
//! id given). The tenant row is the operator's part, since creating a tenant
//! takes provisioning rights the application role does not have; every other
//! row is the application role's.

use std::collections::BTreeMap;

use pgvector::Vector;
use postgres::{Client, Transaction};
use uuid::Uuid;

/// The password of every fixture tenant's user.
pub const FIXTURE_PASSWORD: &str = "correct horse battery staple";

/// An Argon2id hash of FIXTURE_PASSWORD, as an application that hashes its
/// users' passwords itself writes it into users.password_hash (every release
/// takes it: the earlier ones as text). Cheap parameters: a login replaces it
/// with one at the extension's cost.
pub fn fixture_password_hash() -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(1024, 1, 1, None).expect("valid Argon2 parameters");
    let salt = SaltString::encode_b64(Uuid::new_v4().as_bytes()).expect("16 bytes of salt");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(FIXTURE_PASSWORD.as_bytes(), &salt)
        .expect("hash the fixture password")
        .to_string()
}

/// A tenant and the id of its row in each tenant-scoped table.
#[derive(Debug, Clone)]
pub struct TenantData {
    pub tenant: Uuid,
    pub rows: BTreeMap<&'static str, Uuid>,
}

impl TenantData {
    pub fn row(&self, table: &str) -> Uuid {
        *self
            .rows
            .get(table)
            .unwrap_or_else(|| panic!("no {table} row in the fixture"))
    }
}

fn returning_id(
    tx: &mut Transaction,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Uuid {
    tx.query_one(sql, params)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// A 1024-dimensional embedding that is not all zeros.
pub fn embedding(seed: f32) -> Vector {
    Vector::from(
        (0..1024)
            .map(|i| ((i as f32 + seed) * 0.01).sin())
            .collect::<Vec<_>>(),
    )
}

/// Creates a tenant named `name` and one row in every tenant-scoped table.
pub fn populate_tenant(app: &mut Client, name: &str) -> TenantData {
    let tenant = Uuid::new_v4();
    let unique = tenant.simple().to_string();
    let mut rows = BTreeMap::new();
    let dbname: String = app
        .query_one("SELECT current_database()", &[])
        .expect("current_database()")
        .get(0);
    let mut operator = crate::admin_of(&dbname);
    let mut tx = operator.transaction().expect("BEGIN");
    tx.execute("SELECT set_tenant($1)", &[&tenant])
        .expect("set_tenant");
    let id = returning_id(
        &mut tx,
        "INSERT INTO tenants (name, api_key, plan, settings)
         VALUES ($1, $2, 'business', '{\"maxMonthlySpend\": 1000}') RETURNING id",
        &[&name, &format!("pk_test_{unique}")],
    );
    assert_eq!(
        id, tenant,
        "a tenant inserted under a context takes the context's id"
    );
    tx.commit().expect("COMMIT the tenant");
    rows.insert("tenants", tenant);

    let mut tx = app.transaction().expect("BEGIN");
    tx.execute("SELECT set_tenant($1)", &[&tenant])
        .expect("set_tenant");

    let user = returning_id(
        &mut tx,
        "INSERT INTO users (tenant_id, email, password_hash, role, name)
         VALUES ($1, $2, $3, 'owner', 'John Doe') RETURNING id",
        &[
            &tenant,
            &format!("admin@{unique}.example"),
            &fixture_password_hash(),
        ],
    );
    rows.insert("users", user);
    rows.insert(
        "accounts",
        returning_id(
            &mut tx,
            "INSERT INTO accounts (user_id, type, provider, provider_account_id)
             VALUES ($1, 'oauth', 'google', $2) RETURNING id",
            &[&user, &unique],
        ),
    );
    rows.insert(
        "auth_sessions",
        returning_id(
            &mut tx,
            "INSERT INTO auth_sessions (session_token, user_id, expires)
             VALUES ($1, $2, now() + interval '30 days') RETURNING id",
            &[&unique, &user],
        ),
    );
    let widget = returning_id(
        &mut tx,
        "INSERT INTO widgets (tenant_id, name, domain_whitelist, settings)
         VALUES ($1, 'Main Website Widget', '[\"https://acme.com\"]',
                 '{\"theme\": \"auto\", \"position\": \"bottom-right\"}') RETURNING id",
        &[&tenant],
    );
    rows.insert("widgets", widget);
    let meeting = returning_id(
        &mut tx,
        "INSERT INTO meetings (tenant_id, room_name, livekit_room_id, created_by)
         VALUES ($1, $2, $3, $4) RETURNING id",
        &[
            &tenant,
            &format!("room-{unique}"),
            &format!("lk-{unique}"),
            &user,
        ],
    );
    rows.insert("meetings", meeting);
    let session = returning_id(
        &mut tx,
        "INSERT INTO sessions (tenant_id, widget_id, meeting_id, mode)
         VALUES ($1, $2, $3, 'meeting') RETURNING id",
        &[&tenant, &widget, &meeting],
    );
    rows.insert("sessions", session);
    rows.insert(
        "messages",
        returning_id(
            &mut tx,
            "INSERT INTO messages (session_id, role, content)
             VALUES ($1, 'user', 'Hello, how do I get started?') RETURNING id",
            &[&session],
        ),
    );
    let document = returning_id(
        &mut tx,
        "INSERT INTO knowledge_documents (tenant_id, title, content, category, metadata)
         VALUES ($1, 'Getting Started Guide', 'Welcome to our platform!', 'onboarding',
                 '{\"source\": \"docs\"}') RETURNING id",
        &[&tenant],
    );
    rows.insert("knowledge_documents", document);
    rows.insert(
        "knowledge_chunks",
        returning_id(
            &mut tx,
            "INSERT INTO knowledge_chunks (document_id, content, embedding, position)
             VALUES ($1, 'Welcome to our platform!', $2, 0) RETURNING id",
            &[&document, &embedding(1.0)],
        ),
    );
    rows.insert(
        "cost_events",
        returning_id(
            &mut tx,
            "INSERT INTO cost_events (tenant_id, session_id, service, provider, tokens_used, cost_usd)
             VALUES ($1, $2, 'embedding', 'voyage', 20, '0.0000004') RETURNING id",
            &[&tenant, &session],
        ),
    );
    rows.insert(
        "cost_summaries",
        returning_id(
            &mut tx,
            "INSERT INTO cost_summaries (tenant_id, period_start, period_end, total_cost_usd, breakdown, event_count)
             VALUES ($1, '2026-11-01', '2026-12-01', '0.0000004', '{\"embedding\": 0.0000004}', 1)
             RETURNING id",
            &[&tenant],
        ),
    );
    rows.insert(
        "budget_alerts",
        returning_id(
            &mut tx,
            "INSERT INTO budget_alerts (tenant_id, threshold, current_spend, period, severity)
             VALUES ($1, '80', '812.5', 'monthly', 'warning') RETURNING id",
            &[&tenant],
        ),
    );
    rows.insert(
        "ai_personalities",
        returning_id(
            &mut tx,
            "INSERT INTO ai_personalities (tenant_id, name, description, system_prompt,
                                          temperature, max_tokens, is_default, is_active)
             VALUES ($1, 'Helpful Assistant', 'Friendly', 'You are a helpful AI assistant.',
                     '0.7', 2000, true, true) RETURNING id",
            &[&tenant],
        ),
    );
    tx.commit().expect("COMMIT");
    TenantData { tenant, rows }
}
