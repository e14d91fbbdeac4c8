//! `platform`: the multi-tenant data layer of an AI-assistant SaaS as one
//! PostgreSQL extension.
//!
//! The SQL in `sql/` is of two kinds. `sql/schema/` is state: the tables,
//! indexes, policies and dump registration a fresh install creates (an
//! upgrade reaches the same state through `sql/upgrades/`). Everything else is
//! code, written to be run again (`CREATE OR REPLACE`), grouped by capability
//! as the Rust is: tenancy, search, costs, operations, and the privileges last.
//! The upgrade scripts are generated from the code (scripts/upgrade-scripts.py).
//! Rust holds the settings, the tenant context, secrets, and the algorithms
//! of search (chunking, fusion, keyword queries), each plain Rust with unit
//! tests behind a thin pgrx layer.

use pgrx::prelude::*;

mod error;
mod search;
mod settings;
mod tenancy;

#[cfg(any(test, feature = "pg_test"))]
mod backend_tests;

::pgrx::pg_module_magic!(name, version);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    settings::register();
}

// Each file names what it needs; source order means nothing to pgrx.

// ---- State: what a fresh install creates.
extension_sql_file!(
    "../sql/schema/tables.sql",
    name = "tables",
    requires = [
        tenancy::context::get_current_tenant_id,
        tenancy::context::require_current_tenant_id,
        "search_vector"
    ]
);
extension_sql_file!(
    "../sql/schema/indexes.sql",
    name = "indexes",
    requires = ["tables", tenancy::secrets::secret_digest]
);
extension_sql_file!(
    "../sql/schema/row_security.sql",
    name = "row_security",
    requires = [
        "tenant_tables",
        "provisioning",
        tenancy::context::get_current_tenant_id
    ]
);
extension_sql_file!(
    "../sql/schema/dump.sql",
    name = "dump",
    requires = ["tables", "tenant_tables"]
);

// ---- Tenancy.
extension_sql_file!(
    "../sql/tenancy/tenant_tables.sql",
    name = "tenant_tables",
    requires = ["tables"]
);
extension_sql_file!(
    "../sql/tenancy/updated_at.sql",
    name = "updated_at",
    requires = ["tables"]
);
extension_sql_file!(
    "../sql/tenancy/provisioning.sql",
    name = "provisioning",
    requires = ["tables", tenancy::context::platform_enter_tenant]
);
extension_sql_file!(
    "../sql/tenancy/lookups.sql",
    name = "lookups",
    requires = [
        "tables",
        "provisioning",
        tenancy::secrets::secret_digest,
        tenancy::secrets::secret_equal,
        tenancy::context::platform_tenant_required_by
    ]
);
extension_sql_file!(
    "../sql/tenancy/credentials.sql",
    name = "credentials",
    requires = [
        "tables",
        "lookups",
        tenancy::context::get_current_tenant_id,
        tenancy::context::platform_tenant_required_by,
        tenancy::credentials::platform_password_scheme,
        tenancy::credentials::platform_password_hash,
        tenancy::credentials::platform_password_matches,
        tenancy::credentials::platform_password_needs_rehash
    ]
);
extension_sql_file!(
    "../sql/tenancy/pagination.sql",
    name = "pagination",
    requires = ["tables"]
);

// ---- Search (docs/search.md).
extension_sql_file!(
    "../sql/search/search_vector.sql",
    name = "search_vector",
    requires = [
        search::text_search::platform_lexemes_all,
        search::text_search::platform_tsvector
    ]
);
extension_sql_file!(
    "../sql/search/text_search.sql",
    name = "text_search",
    requires = ["tables"]
);
extension_sql_file!(
    "../sql/search/vector.sql",
    name = "vector_search",
    requires = [
        "tables",
        search::platform_check_query_embedding,
        search::platform_checked_count,
        settings::platform_exact_scan_limit
    ]
);
extension_sql_file!(
    "../sql/search/keyword_statistics.sql",
    name = "keyword_statistics",
    requires = [
        "tables",
        "search_vector",
        search::keyword_ranking::platform_keyword_length,
        search::keyword_ranking::platform_bm25_weights
    ]
);
extension_sql_file!(
    "../sql/search/keyword.sql",
    name = "keyword_search",
    requires = [
        "text_search",
        "vector_search",
        "keyword_statistics",
        search::keyword_ranking::platform_bm25,
        search::text_search::platform_keyword_query,
        search::text_search::platform_lexemes_any,
        search::text_search::platform_lexemes_all,
        settings::platform_common_word_share,
        settings::platform_keyword_rank_limit
    ]
);
extension_sql_file!(
    "../sql/search/hybrid.sql",
    name = "hybrid_search",
    requires = ["keyword_search", "vector_search", search::platform_fuse]
);
extension_sql_file!(
    "../sql/search/ingest.sql",
    name = "ingest",
    requires = [
        "text_search",
        search::platform_check_query_embedding,
        tenancy::context::platform_tenant_required_by
    ]
);

// ---- Cost accounting (docs/costs.md).
extension_sql_file!(
    "../sql/costs/settings.sql",
    name = "cost_settings",
    requires = ["tables"]
);
extension_sql_file!(
    "../sql/costs/budgets.sql",
    name = "budgets",
    requires = ["tables", "cost_settings"]
);
extension_sql_file!(
    "../sql/costs/rollups.sql",
    name = "cost_rollups",
    requires = ["budgets", settings::platform_late_event_window]
);
extension_sql_file!(
    "../sql/costs/summary.sql",
    name = "cost_summary",
    requires = ["cost_rollups"]
);
extension_sql_file!(
    "../sql/costs/recording.sql",
    name = "cost_recording",
    requires = [
        "cost_rollups",
        tenancy::context::platform_tenant_required_by
    ]
);
extension_sql_file!(
    "../sql/costs/reservations.sql",
    name = "cost_reservations",
    requires = [
        "cost_recording",
        "budgets",
        settings::platform_cost_reservation_timeout,
        tenancy::context::platform_tenant_required_by
    ]
);
extension_sql_file!(
    "../sql/costs/summaries.sql",
    name = "cost_summaries",
    requires = [
        "cost_summary",
        tenancy::context::platform_tenant_required_by
    ]
);

// ---- Operations.
extension_sql_file!(
    "../sql/operations/audit.sql",
    name = "audit",
    requires = [
        "tenant_tables",
        tenancy::context::platform_tenant_keys_status
    ]
);
extension_sql_file!("../sql/operations/monitoring.sql", name = "monitoring");
extension_sql_file!("../sql/operations/dependencies.sql", name = "dependencies");

// ---- Privileges, last: every function exists by then.
extension_sql_file!("../sql/privileges.sql", finalize);

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
