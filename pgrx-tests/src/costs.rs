//! Helpers for the cost-accounting tests: tenants with budget settings, events
//! written behind the application's back (a superuser's backfill, which the
//! late-event window lets through), and the raw GROUP BY that cost_summary()
//! must equal.

use postgres::types::ToSql;
use postgres::Client;
use uuid::Uuid;

use crate::admin;

/// A tenant with `settings` (a JSON object), made through create_tenant().
pub fn tenant_with_settings(name: &str, settings: &str) -> Uuid {
    admin()
        .query_one(
            "SELECT create_tenant($1, 'business', $2::text::jsonb)",
            &[&name, &settings],
        )
        .expect("create_tenant")
        .get(0)
}

/// Runs `statement` as a superuser with row_security = off (a backfill: any
/// timestamp is accepted, budget alerts do not fire), in one transaction.
pub fn backfill(statement: &str, params: &[&(dyn ToSql + Sync)]) -> u64 {
    let mut admin = admin();
    let mut tx = admin.transaction().expect("BEGIN");
    tx.batch_execute("SET LOCAL row_security = off").unwrap();
    let n = tx
        .execute(statement, params)
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    tx.commit().expect("COMMIT");
    n
}

/// Every difference platform_verify_cost_rollups() reports, as text.
pub fn rollup_differences(client: &mut Client) -> Vec<String> {
    client
        .query("SELECT v::text FROM platform_verify_cost_rollups() v", &[])
        .expect("platform_verify_cost_rollups")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The rows of a query, each as one text line (numbers at full scale).
pub fn text_rows(
    client: &mut impl postgres::GenericClient,
    query: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Vec<String> {
    client
        .query(&format!("SELECT q::text FROM ({query}) q"), params)
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The raw GROUP BY that cost_summary($2, $3, $4, 'model', $5) must equal, for
/// tenant $1, in the same column order.
pub const RAW_SUMMARY: &str = "
    SELECT date_trunc($4, \"timestamp\", $5) AS bucket_start, service, provider,
           metadata->>'model' AS model, sum(cost_usd) AS total_cost_usd,
           sum(tokens_used) AS total_tokens, count(*) AS event_count
    FROM cost_events
    WHERE tenant_id = $1 AND \"timestamp\" >= $2 AND \"timestamp\" < $3
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4";

/// A widget of `tenant` with `settings` (a JSON object: its budgets), made
/// by a superuser.
pub fn widget_with_settings(tenant: Uuid, settings: &str) -> Uuid {
    admin()
        .query_one(
            "INSERT INTO widgets (tenant_id, name, domain_whitelist, settings)
             VALUES ($1, 'Public chat', '[]', $2::text::jsonb) RETURNING id",
            &[&tenant, &settings],
        )
        .expect("INSERT INTO widgets")
        .get(0)
}
