//! In-backend tests: the catalog the extension installs and the tenant-context
//! functions, run inside a transaction by `cargo pgrx test`. Multi-connection
//! behaviour (isolation as the application role, transaction scoping,
//! prepared statements) is tested through a client in `pgrx-tests/`.

use pgrx::prelude::*;

/// `cargo pgrx test` calls each test as a function in the schema `tests`.
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn count(query: &str) -> i64 {
        Spi::get_one::<i64>(query)
            .expect("query runs")
            .expect("count is not NULL")
    }

    #[pg_test]
    fn fourteen_tenant_tables_with_force_rls() {
        assert_eq!(count("SELECT count(*) FROM platform_tenant_tables()"), 14);
        assert_eq!(
            count(
                "SELECT count(*) FROM platform_tenant_tables() t JOIN pg_class c ON c.oid = t.table_name
                 WHERE c.relrowsecurity AND c.relforcerowsecurity"
            ),
            14
        );
    }

    #[pg_test]
    fn fifty_six_policies_one_per_command_each_an_initplan_equality() {
        assert_eq!(
            count(
                "SELECT count(*) FROM pg_policies p
                 JOIN platform_tenant_tables() t ON t.table_name = format('%I.%I', p.schemaname, p.tablename)::regclass"
            ),
            56
        );
        // One policy per command per table.
        assert_eq!(
            count(
                "SELECT count(*) FROM (SELECT tablename, cmd FROM pg_policies
                 GROUP BY 1, 2 HAVING count(*) = 1) one_each"
            ),
            56
        );
        // Every predicate is the one indexed equality against the sub-SELECT
        // (an InitPlan: evaluated once per query), on every side a command has.
        assert_eq!(
            count(
                r"SELECT count(*) FROM pg_policies
                  WHERE (qual IS NULL) <> (cmd = 'INSERT')
                     OR (with_check IS NULL) <> (cmd IN ('SELECT', 'DELETE'))
                     OR coalesce(qual, with_check) !~ $re$^\((id|tenant_id) = \( SELECT get_current_tenant_id\(\) AS get_current_tenant_id\)\)$$re$
                     OR coalesce(with_check, qual) <> coalesce(qual, with_check)"
            ),
            0
        );
    }

    #[pg_test]
    fn verification_tokens_is_global_and_every_table_is_dumped() {
        assert_eq!(
            count("SELECT count(*) FROM pg_class WHERE relname = 'verification_tokens' AND NOT relrowsecurity"),
            1
        );
        assert_eq!(
            count(
                "SELECT cardinality(extconfig)::bigint FROM pg_extension WHERE extname = 'platform'"
            ),
            // the 15 tables, and the two cost rollups (registered without rows)
            17
        );
    }

    #[pg_test]
    fn helper_is_stable_and_parallel_safe() {
        let (volatility, parallel) = Spi::get_two::<String, String>(
            "SELECT provolatile::text, proparallel::text FROM pg_proc WHERE proname = 'get_current_tenant_id'",
        )
        .expect("query runs");
        assert_eq!(volatility.as_deref(), Some("s"));
        assert_eq!(parallel.as_deref(), Some("s"));
    }

    #[pg_test]
    fn no_context_reads_as_the_nil_uuid() {
        Spi::run("SET LOCAL app.current_tenant_id = ''").unwrap();
        let tenant = Spi::get_one::<String>("SELECT get_current_tenant_id()::text").unwrap();
        assert_eq!(
            tenant.as_deref(),
            Some("00000000-0000-0000-0000-000000000000")
        );
    }

    #[pg_test]
    fn set_tenant_is_read_back() {
        let id = "72cda7ac-9168-41a5-87ad-895ca68d2fd0";
        Spi::run(&format!("SELECT set_tenant('{id}')")).unwrap();
        let tenant = Spi::get_one::<String>("SELECT get_current_tenant_id()::text").unwrap();
        assert_eq!(tenant.as_deref(), Some(id));
        let setting =
            Spi::get_one::<String>("SELECT current_setting('app.current_tenant_id')").unwrap();
        assert_eq!(setting.as_deref(), Some(id));
    }

    #[pg_test(error = "app.current_tenant_id is set to \"acme\", which is not a UUID")]
    fn a_setting_that_is_not_a_uuid_fails_closed() {
        Spi::run("SET LOCAL app.current_tenant_id = 'acme'").unwrap();
        Spi::run("SELECT get_current_tenant_id()").unwrap();
    }

    #[pg_test(error = "set_tenant() needs a tenant id, got NULL")]
    fn set_tenant_refuses_null() {
        Spi::run("SELECT set_tenant(NULL)").unwrap();
    }

    #[pg_test(
        error = "set_tenant() got the nil UUID, which means \"no tenant\" and is never a tenant's id"
    )]
    fn set_tenant_refuses_the_nil_uuid() {
        Spi::run("SELECT set_tenant('00000000-0000-0000-0000-000000000000')").unwrap();
    }

    #[pg_test(error = "no tenant context: app.current_tenant_id is not set in this transaction")]
    fn inserting_without_a_context_says_so() {
        Spi::run("SET LOCAL app.current_tenant_id = ''").unwrap();
        Spi::run("SELECT require_current_tenant_id()").unwrap();
    }
}
