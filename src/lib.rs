//! `platform`: the multi-tenant data layer of an AI-assistant SaaS as one
//! PostgreSQL extension. The schema, policies and provisioning are hand-written
//! SQL in `sql/`, loaded below in dependency order; Rust holds the tenant
//! context, whose parsing and errors are easiest to get right (and to test)
//! here.

use pgrx::prelude::*;

mod chunking;
mod cost_config;
mod error;
mod fusion;
mod search;
mod search_input;
mod secrets;
mod tenant_context;
mod tenant_setting;

#[cfg(any(test, feature = "pg_test"))]
mod backend_tests;

::pgrx::pg_module_magic!(name, version);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    cost_config::register_settings();
}

// Each file names what it needs; source order means nothing to pgrx.
extension_sql_file!(
    "../sql/tables.sql",
    name = "tables",
    requires = [
        tenant_context::get_current_tenant_id,
        tenant_context::require_current_tenant_id
    ]
);
extension_sql_file!(
    "../sql/tenant_tables.sql",
    name = "tenant_tables",
    requires = ["tables"]
);
extension_sql_file!(
    "../sql/rls.sql",
    name = "rls",
    requires = ["tenant_tables", tenant_context::get_current_tenant_id]
);
extension_sql_file!(
    "../sql/indexes.sql",
    name = "indexes",
    requires = ["tables"]
);
extension_sql_file!(
    "../sql/dump.sql",
    name = "dump",
    requires = ["tenant_tables"]
);
extension_sql_file!(
    "../sql/provisioning.sql",
    name = "provisioning",
    requires = ["rls"]
);
extension_sql_file!(
    "../sql/app_access.sql",
    name = "app_access",
    requires = [
        "tenant_tables",
        "provisioning",
        "pagination",
        "lookups",
        "search",
        "cost_summary",
        "budgets",
        "cost_recording",
        "cost_summaries",
        tenant_context::set_tenant
    ]
);
extension_sql_file!(
    "../sql/lookups.sql",
    name = "lookups",
    requires = [
        "tables",
        "provisioning",
        secrets::secret_digest,
        secrets::secret_equal,
        tenant_context::require_current_tenant_id
    ]
);
extension_sql_file!(
    "../sql/pagination.sql",
    name = "pagination",
    requires = ["tables"]
);
extension_sql_file!(
    "../sql/audit.sql",
    name = "audit",
    requires = ["tenant_tables", "rls"]
);
extension_sql_file!("../sql/monitoring.sql", name = "monitoring");
extension_sql_file!(
    "../sql/search_schema.sql",
    name = "search_schema",
    requires = ["tables", "indexes", "rls"]
);
extension_sql_file!(
    "../sql/search.sql",
    name = "search",
    requires = [
        "search_schema",
        search::platform_check_query_embedding,
        search::platform_checked_count,
        search::platform_fuse
    ]
);
// Cost accounting (docs/costs.md).
extension_sql_file!(
    "../sql/cost_settings.sql",
    name = "cost_settings",
    requires = ["tables"]
);
extension_sql_file!(
    "../sql/costs_schema.sql",
    name = "costs_schema",
    requires = ["tables", "indexes", "dump"]
);
extension_sql_file!(
    "../sql/budgets.sql",
    name = "budgets",
    requires = [
        "costs_schema",
        "cost_settings",
        tenant_context::require_current_tenant_id
    ]
);
extension_sql_file!(
    "../sql/cost_rollups.sql",
    name = "cost_rollups",
    requires = [
        "costs_schema",
        "budgets",
        cost_config::platform_late_event_window
    ]
);
extension_sql_file!(
    "../sql/cost_summary.sql",
    name = "cost_summary",
    requires = ["cost_rollups"]
);
extension_sql_file!(
    "../sql/cost_recording.sql",
    name = "cost_recording",
    requires = ["cost_rollups"]
);
extension_sql_file!(
    "../sql/cost_summaries.sql",
    name = "cost_summaries",
    requires = ["cost_summary"]
);
extension_sql_file!("../sql/finalize.sql", finalize);

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
