//! Dump and restore. Its own test binary, hence its own database: no other
//! test writes while the source is dumped and compared.

use platform_client_tests::*;
use uuid::Uuid;

/// Every table's rows, the extension's whole catalog, and the counts of
/// policies and FORCE tables, of one database.
fn state_of(dbname: &str) -> Vec<String> {
    let mut client = admin_of(dbname);
    let mut columns = snapshot::table_columns(&mut client);
    // The password hashes, which only the owner reads, are dumped too.
    columns.insert(
        "user_credentials".into(),
        ["tenant_id", "user_id", "scheme", "hash", "updated_at"]
            .map(String::from)
            .to_vec(),
    );
    let mut facts = snapshot::table_contents(&mut client, &columns);
    facts.extend(snapshot::catalog(&mut client));
    let counts = client
        .query_one(
            "SELECT format('%s policies, %s FORCE tables',
                           (SELECT count(*) FROM pg_policies),
                           (SELECT count(*) FROM pg_class WHERE relforcerowsecurity))",
            &[],
        )
        .unwrap();
    facts.push(counts.get(0));
    facts
}

#[test]
fn plain_and_custom_dumps_restore_every_row_and_the_security_model() {
    let source = &db().dbname;
    let mut app = app();
    let dumped = populate_tenant(&mut app, "Dumped A");
    populate_tenant(&mut app, "Dumped B");
    admin()
        .execute(
            "INSERT INTO verification_tokens VALUES ('a@example.com', $1, now())",
            &[&Uuid::new_v4().to_string()],
        )
        .unwrap();
    let before = state_of(source);
    assert!(
        before
            .iter()
            .any(|f| f.starts_with("messages: ") && !f.starts_with("messages: 0 ")),
        "{before:?}"
    );
    assert_eq!(before.last().unwrap(), "56 policies, 14 FORCE tables");

    let dir = scratch_dir("dump");
    let plain = dir.join("dump.sql").display().to_string();
    let custom = dir.join("dump.custom").display().to_string();
    run_client_program("pg_dump", &["-f", &plain, source]);
    run_client_program("pg_dump", &["-Fc", "-f", &custom, source]);

    for (suffix, restore) in [
        (
            "plain",
            vec!["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", &plain],
        ),
        ("custom", vec!["pg_restore", "--exit-on-error", &custom]),
    ] {
        let target = format!("{source}_{suffix}");
        let mut server = admin_of(maintenance_db());
        server
            .batch_execute(&format!("DROP DATABASE IF EXISTS {target}"))
            .unwrap();
        server
            .batch_execute(&format!("CREATE DATABASE {target}"))
            .unwrap();
        let mut args: Vec<&str> = restore[1..].to_vec();
        args.extend(["-d", &target]);
        run_client_program(restore[0], &args);
        let after = state_of(&target);
        assert!(
            after == before,
            "{suffix} dump restored: {}",
            snapshot::differences(&before, &after)
        );
        // A user signs in to the restored database with the same password.
        let signed_in: Vec<Uuid> = connect(&target, &db().app_role)
            .query(
                "SELECT tenant_id FROM verify_password($1, $2)",
                &[
                    &format!("admin@{}.example", dumped.tenant.simple()),
                    &FIXTURE_PASSWORD,
                ],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            signed_in,
            vec![dumped.tenant],
            "{suffix}: a login after restore"
        );
        // The cost rollups are dumped without rows and rebuilt by the
        // triggers as cost_events is restored: equal to the events, once.
        let mut restored = admin_of(&target);
        assert_eq!(
            costs::rollup_differences(&mut restored),
            Vec::<String>::new()
        );
        let rollups = "SELECT count(*) FROM cost_rollups_hourly";
        let count = |client: &mut postgres::Client| -> i64 {
            client.query_one(rollups, &[]).unwrap().get(0)
        };
        assert_eq!(
            count(&mut restored),
            count(&mut admin()),
            "{suffix}: rollup rows"
        );
        // So are the keyword statistics, as the chunks and documents are.
        let words = "SELECT count(*) FROM knowledge_lexeme_counts";
        let statistics_wrong = "SELECT count(*) FROM platform_verify_keyword_statistics()";
        let restored_words: i64 = restored.query_one(words, &[]).unwrap().get(0);
        let dumped_words: i64 = admin().query_one(words, &[]).unwrap().get(0);
        assert!(restored_words > 0, "{suffix}: words counted");
        assert_eq!(restored_words, dumped_words, "{suffix}: word rows");
        let wrong: i64 = restored.query_one(statistics_wrong, &[]).unwrap().get(0);
        assert_eq!(wrong, 0, "{suffix}: keyword statistics after restore");
    }
}
