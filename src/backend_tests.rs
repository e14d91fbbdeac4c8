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
        // (an InitPlan: evaluated once per query), on every side a command has;
        // creating and deleting a tenant also takes provisioning rights.
        assert_eq!(
            count(
                r"SELECT count(*) FROM pg_policies
                  WHERE (qual IS NULL) <> (cmd = 'INSERT')
                     OR (with_check IS NULL) <> (cmd IN ('SELECT', 'DELETE'))
                     OR coalesce(qual, with_check) !~ CASE
                        WHEN tablename = 'tenants' AND cmd IN ('INSERT', 'DELETE')
                        THEN $re$^\(\(id = \( SELECT get_current_tenant_id\(\) AS get_current_tenant_id\)\) AND \( SELECT platform_may_provision\(\) AS platform_may_provision\)\)$$re$
                        ELSE $re$^\((id|tenant_id) = \( SELECT get_current_tenant_id\(\) AS get_current_tenant_id\)\)$$re$
                        END
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
            // the 15 tables, the password hashes, the spend reservations,
            // and the three cost rollups and two keyword statistics tables
            // (registered without rows)
            22
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

    #[pg_test(
        error = "record_cost_event() acts for the current tenant, and this transaction has no tenant context"
    )]
    fn a_function_that_acts_for_a_tenant_names_itself_without_a_context() {
        Spi::run("SET LOCAL app.current_tenant_id = ''").unwrap();
        Spi::run("SELECT platform_tenant_required_by('record_cost_event')").unwrap();
    }

    #[pg_test]
    fn every_setting_is_registered_with_its_bounds_and_who_may_change_it() {
        let settings = Spi::get_one::<String>(
            "SELECT string_agg(format('%s %s %s %s..%s', name, vartype, context, min_val, max_val), '; ' ORDER BY name)
             FROM pg_settings WHERE name LIKE 'platform.%'",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            settings,
            "platform.bm25_b real superuser 0..1; \
             platform.bm25_k1 real superuser 0..10; \
             platform.common_word_share real superuser 0..1; \
             platform.cost_late_event_window integer superuser 0..2147483647; \
             platform.cost_reservation_timeout integer superuser 1..604800; \
             platform.exact_match_word_share real superuser 0..1; \
             platform.exact_scan_limit integer superuser -1..2147483647; \
             platform.keyword_rank_limit integer superuser 0..1000000; \
             platform.max_chunks_per_document integer superuser 1..10000000; \
             platform.max_query_terms integer superuser 1..10000; \
             platform.max_text_length integer superuser 1000..100000000; \
             platform.password_iterations integer superuser 1..10; \
             platform.password_memory_kib integer superuser 1024..262144; \
             platform.sketch_candidates integer superuser 0..1000000; \
             platform.tenant_context enum superuser ..; \
             platform.tenant_token_max_ttl integer superuser 1..604800"
        );
        // The keys are registered too, but never listed.
        assert_eq!(
            Spi::get_one::<String>("SELECT current_setting('platform.tenant_keys')").unwrap(),
            Some(String::new())
        );
    }

    #[pg_test(error = "app.current_tenant_id is set only by set_tenant_token() in signed mode")]
    fn signed_mode_refuses_a_bare_uuid() {
        Spi::run("SET LOCAL platform.tenant_context = 'signed'").unwrap();
        Spi::run("SET LOCAL app.current_tenant_id = '72cda7ac-9168-41a5-87ad-895ca68d2fd0'")
            .unwrap();
    }

    #[pg_test]
    fn signed_mode_reads_no_tenant_from_a_value_set_before_it() {
        Spi::run("SET LOCAL app.current_tenant_id = '72cda7ac-9168-41a5-87ad-895ca68d2fd0'")
            .unwrap();
        Spi::run("SET LOCAL platform.tenant_context = 'signed'").unwrap();
        assert_eq!(
            Spi::get_one::<String>(
                "SELECT format('%s %s %s', mode, tenant, state) FROM platform_tenant_context()"
            )
            .unwrap()
            .unwrap(),
            "signed  refused: malformed"
        );
        assert_eq!(
            Spi::get_one::<pgrx::Uuid>("SELECT get_current_tenant_id()")
                .unwrap()
                .unwrap(),
            pgrx::Uuid::from_bytes([0; 16])
        );
    }

    #[pg_test(error = "invalid configuration parameter name \"platform.exact_scan_limt\"")]
    fn a_misspelt_setting_is_an_error_when_set() {
        Spi::run("SET LOCAL platform.exact_scan_limt = 10").unwrap();
    }

    #[pg_test]
    fn the_sql_readers_follow_the_settings() {
        Spi::run("SET LOCAL platform.exact_scan_limit = 7").unwrap();
        Spi::run("SET LOCAL platform.keyword_rank_limit = 0").unwrap();
        Spi::run("SET LOCAL platform.common_word_share = 0.5").unwrap();
        Spi::run("SET LOCAL platform.sketch_candidates = 0").unwrap();
        assert_eq!(
            Spi::get_one::<String>(
                "SELECT format('%s %s %s %s', platform_exact_scan_limit(), platform_keyword_rank_limit(),
                               platform_common_word_share(), platform_sketch_candidates())"
            )
            .unwrap()
            .as_deref(),
            Some("7 0 0.5 0")
        );
    }

    /// Whatever characters a lexeme holds, the tsquery built from it matches
    /// exactly that lexeme and nothing else.
    #[pg_test]
    fn a_lexeme_query_matches_each_lexeme_as_it_is() {
        for lexeme in [
            "o'brien",
            r"c:\temp",
            r"\'",
            "a & !b:* | (c) <-> d",
            "''",
            "日本語",
            "tenant:72cda7ac916841a587ad895ca68d2fd0",
        ] {
            let (one, matches, other) = Spi::get_three_with_args::<i32, bool, bool>(
                "SELECT numnode(platform_lexemes_any(ARRAY[$1])),
                        array_to_tsvector(ARRAY[$1]) @@ platform_lexemes_all(ARRAY[$1, $1]),
                        array_to_tsvector(ARRAY[$1 || 'x', 'a', 'b', 'c', 'd']) @@ platform_lexemes_any(ARRAY[$1])",
                &[lexeme.into()],
            )
            .unwrap();
            assert_eq!(one, Some(1), "{lexeme}: one operand");
            assert_eq!(matches, Some(true), "{lexeme}: matches itself");
            assert_eq!(other, Some(false), "{lexeme}: matches nothing else");
        }
        assert_eq!(
            Spi::get_one::<bool>("SELECT platform_lexemes_any('{}') IS NULL").unwrap(),
            Some(true)
        );
    }

    #[pg_test]
    fn the_keyword_query_of_each_mode() {
        let any = Spi::get_two::<String, Vec<String>>(
            "SELECT query::text, lexemes FROM platform_keyword_query('The quick brown foxes!', 'english', 'any', false)",
        )
        .unwrap();
        assert_eq!(any.0.as_deref(), Some("'brown' | 'fox' | 'quick'"));
        assert_eq!(
            any.1,
            Some(vec!["brown".into(), "fox".into(), "quick".into()])
        );
        let all = Spi::get_two::<String, Vec<String>>(
            "SELECT query::text, lexemes FROM platform_keyword_query('\"quick fox\" -dog', 'english', 'all', false)",
        )
        .unwrap();
        assert_eq!(all.0.as_deref(), Some("'quick' <-> 'fox' & !'dog'"));
        // Every word, for scoring; the query is matched as a whole.
        assert_eq!(
            all.1,
            Some(vec!["dog".into(), "fox".into(), "quick".into()])
        );
        for mode in ["any", "all"] {
            let nothing = Spi::get_one_with_args::<bool>(
                "SELECT query IS NULL FROM platform_keyword_query('the and of', 'english', $1, false)",
                &[mode.into()],
            )
            .unwrap();
            assert_eq!(nothing, Some(true), "{mode}: stop words only");
        }
    }

    #[pg_test(error = "keyword_match must be one of any, all, got \"some\"")]
    fn an_unknown_keyword_mode_is_refused() {
        Spi::run("SELECT * FROM platform_keyword_query('x', 'english', 'some', false)").unwrap();
    }
}
