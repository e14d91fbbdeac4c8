//! Upgrades: a database created at an earlier release, holding data and an
//! application role, is upgraded with `ALTER EXTENSION platform UPDATE` and
//! must then have the catalog of a fresh install, every row, and working
//! application access. Every release in sql/released/ is an earlier release;
//! scripts/test.sh installs their scripts next to the current one.

use platform_client_tests::*;
use postgres::Client;

/// Where the earlier release stored a row's text search configuration
/// without checking it (0.2.0), a document and its chunk stored with a
/// session's temporary configuration, which is gone once the session ends:
/// the upgrade must repair them. Returns whether it stored one.
fn store_with_a_temporary_configuration(
    dbname: &str,
    admin: &mut Client,
    tenant: uuid::Uuid,
) -> bool {
    let has_configs: bool = admin
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'knowledge_documents'::regclass
                            AND attname = 'text_search_config')",
            &[],
        )
        .unwrap()
        .get(0);
    if !has_configs {
        return false;
    }
    let mut app = connect(dbname, &db().app_role);
    let mut tx = app.transaction().unwrap();
    tx.execute("SELECT set_tenant($1)", &[&tenant]).unwrap();
    tx.batch_execute(
        "CREATE TEXT SEARCH CONFIGURATION pg_temp.cfg (COPY = simple);
         SELECT ingest_document('Temporary', 'stemmed with a temporary configuration',
                                ARRAY['stemmed with a temporary configuration'],
                                ARRAY[array_fill(0.5::real, ARRAY[1024])::vector],
                                text_search_config => 'pg_temp.cfg')",
    )
    .expect("0.2.0 stores a temporary configuration");
    tx.commit().unwrap();
    drop(app); // the configuration goes with the session
               // Wait until the session has ended and dropped its temporary schema.
    for _ in 0..100 {
        let dangling: bool = admin
            .query_one(
                "SELECT EXISTS (SELECT FROM knowledge_documents d
                                WHERE NOT EXISTS (SELECT FROM pg_ts_config c WHERE c.oid = d.text_search_config))",
                &[],
            )
            .unwrap()
            .get(0);
        if dangling {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the temporary configuration outlived its session");
}

/// The versions of the install scripts kept in sql/released/.
fn earlier_releases() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../sql/released");
    let mut versions: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter_map(|name| {
            let version = name.strip_prefix("platform--")?.strip_suffix(".sql")?;
            (!version.contains("--")).then(|| version.to_owned())
        })
        .collect();
    versions.sort();
    assert!(!versions.is_empty(), "no release in {dir}");
    versions
}

/// A new database of the test cluster with the extension at `version` (the
/// current one when None) and the test's application role granted.
fn database_at(suffix: &str, version: Option<&str>) -> (String, Client) {
    let name = format!("{}_{suffix}", db().dbname);
    let mut server = admin_of(maintenance_db());
    for statement in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        server.batch_execute(&statement).unwrap();
    }
    let mut admin = admin_of(&name);
    let create = match version {
        Some(v) => format!("CREATE EXTENSION platform VERSION '{v}' CASCADE"),
        None => "CREATE EXTENSION platform CASCADE".to_owned(),
    };
    admin
        .batch_execute(&create)
        .unwrap_or_else(|e| panic!("{create}: {e}"));
    admin
        .execute(
            "SELECT grant_app_access($1::text::regrole)",
            &[&db().app_role],
        )
        .expect("grant_app_access");
    (name, admin)
}

fn installed_version(admin: &mut Client) -> String {
    admin
        .query_one(
            "SELECT extversion FROM pg_extension WHERE extname = 'platform'",
            &[],
        )
        .unwrap()
        .get(0)
}

#[test]
fn upgrading_every_earlier_release_gives_a_fresh_install_with_every_row() {
    for version in earlier_releases() {
        upgrade_from(&version);
    }
}

fn upgrade_from(previous: &str) {
    let (old_name, mut old) = database_at(
        &format!("from_{}", previous.replace('.', "_")),
        Some(previous),
    );
    assert_eq!(installed_version(&mut old), previous);

    // Data written the way an application of the previous release wrote it.
    let mut app = connect(&old_name, &db().app_role);
    let tenants: Vec<TenantData> = (0..3)
        .map(|i| populate_tenant(&mut app, &format!("Upgraded {i}")))
        .collect();
    drop(app);
    // Users with the design document's unsalted SHA-256, and with a value
    // that is no hash at all, as an earlier release stored them.
    for (email, stored) in [
        (
            "legacy@example.com",
            "encode(sha256('legacy password'), 'hex')",
        ),
        ("clear@example.com", "'stored in clear'"),
    ] {
        old.execute(
            &format!(
                "INSERT INTO users (tenant_id, email, password_hash) VALUES ($1, $2, {stored})"
            ),
            &[&tenants[1].tenant, &email],
        )
        .unwrap();
    }
    let stored_a_temporary_configuration =
        store_with_a_temporary_configuration(&old_name, &mut old, tenants[0].tenant);
    // The rows as they were, in the columns the earlier release had (API keys
    // are checked below: from 0.2.0 on only their digest is stored).
    let mut columns = snapshot::table_columns(&mut old);
    columns
        .get_mut("tenants")
        .unwrap()
        .retain(|c| c != "api_key");
    // Password hashes move out of users in 0.3.0 (checked below).
    columns
        .get_mut("users")
        .unwrap()
        .retain(|c| c != "password_hash");
    // Nor the text search configuration and its vector, which the upgrade
    // from 0.2.0 repairs where a row holds one it cannot keep (checked below;
    // everything else of those rows, updated_at included, must stay).
    for table in ["knowledge_documents", "knowledge_chunks"] {
        columns
            .get_mut(table)
            .unwrap()
            .retain(|c| c != "text_search_config" && c != "search_vector");
    }
    let rows_before = snapshot::table_contents(&mut old, &columns);

    old.batch_execute("ALTER EXTENSION platform UPDATE")
        .expect("ALTER EXTENSION platform UPDATE");
    let current = installed_version(&mut old);
    assert_ne!(current, previous, "the update moved to the current version");

    let (_, mut fresh) = database_at("fresh", None);
    assert_eq!(installed_version(&mut fresh), current);
    let upgraded_catalog = snapshot::catalog(&mut old);
    let fresh_catalog = snapshot::catalog(&mut fresh);
    assert!(
        upgraded_catalog == fresh_catalog,
        "{previous}: the upgraded catalog differs from a fresh install's:\n{}",
        snapshot::differences(&upgraded_catalog, &fresh_catalog)
    );

    if stored_a_temporary_configuration {
        // The upgrade gave the rows a configuration they can keep: they can
        // be updated again, and the audit finds nothing.
        let mut tx = old.transaction().unwrap();
        tx.batch_execute("UPDATE knowledge_documents SET title = title; UPDATE knowledge_chunks SET position = position")
            .expect("rows stored with a dropped configuration are repaired by the upgrade");
        tx.rollback().unwrap();
        let audit: i64 = old
            .query_one(
                "SELECT count(*) FROM platform_audit() WHERE finding LIKE 'stored text search%'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(audit, 0);
    }
    let rows_after = snapshot::table_contents(&mut old, &columns);
    assert_eq!(rows_after, rows_before, "every row survives the upgrade");
    // The keyword statistics count every chunk and document there was.
    let (wrong, counted): (i64, i64) = old
        .query_one(
            "SELECT (SELECT count(*) FROM platform_verify_keyword_statistics()),
                    (SELECT coalesce(sum(chunks), 0)::bigint FROM knowledge_keyword_totals)",
            &[],
        )
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    let chunks: i64 = old
        .query_one("SELECT count(*) FROM knowledge_chunks", &[])
        .unwrap()
        .get(0);
    assert_eq!(wrong, 0, "{previous}: keyword statistics after the upgrade");
    // The rewrite brought every embedding back into its row: the fixture's
    // texts are short, so nothing of these tables is left in TOAST.
    for table in ["knowledge_chunks", "knowledge_documents"] {
        let toast: String = old
            .query_one(
                "SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = $1::text::regclass",
                &[&table],
            )
            .unwrap()
            .get(0);
        let moved_out: i64 = old
            .query_one(&format!("SELECT count(*) FROM {toast}"), &[])
            .unwrap()
            .get(0);
        assert_eq!(moved_out, 0, "{previous}: {table} values in {toast}");
    }
    assert!(
        chunks > 0 && counted == chunks,
        "{counted} of {chunks} chunks counted"
    );
    // Cost events recorded before the upgrade are in the rollups after it.
    assert_eq!(costs::rollup_differences(&mut old), Vec::<String>::new());
    let rolled_up: i64 = old
        .query_one(
            "SELECT coalesce(sum(event_count), 0)::bigint FROM cost_rollups_hourly",
            &[],
        )
        .unwrap()
        .get(0);
    let events: i64 = old
        .query_one("SELECT count(*) FROM cost_events", &[])
        .unwrap()
        .get(0);
    assert!(
        events > 0 && rolled_up == events,
        "{rolled_up} of {events} events rolled up"
    );

    // Every stored password still signs its user in, and users.password_hash
    // no longer holds a hash; the value that was no hash never matches, and
    // the audit counts it.
    let mut app = connect(&old_name, &db().app_role);
    let sign_in = |app: &mut postgres::Client, email: &str, password: &str| -> Vec<uuid::Uuid> {
        app.query(
            "SELECT tenant_id FROM verify_password($1, $2)",
            &[&email, &password],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    for tenant in &tenants {
        let email = format!("admin@{}.example", tenant.tenant.simple());
        assert_eq!(
            sign_in(&mut app, &email, FIXTURE_PASSWORD),
            vec![tenant.tenant]
        );
    }
    assert_eq!(
        sign_in(&mut app, "legacy@example.com", "legacy password"),
        vec![tenants[1].tenant]
    );
    assert!(sign_in(&mut app, "clear@example.com", "stored in clear").is_empty());
    let columns_hold: Vec<Option<String>> = old
        .query("SELECT DISTINCT password_hash FROM users", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(columns_hold, vec![Some("platform:stored".to_owned())]);
    let password_findings: Vec<String> = old
        .query(
            "SELECT finding || ': ' || detail FROM platform_audit() WHERE object = 'user_credentials'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        password_findings,
        vec![
            "password hashes that never match: 1 user; give them new passwords with set_password()"
        ]
    );
    drop(app);

    // From 0.2.0 on, API keys are stored as digests: whatever form the
    // earlier release stored, the keys clients hold (the fixture's
    // pk_test_<tenant>) still work, through the role granted before.
    let mut app = connect(&old_name, &db().app_role);
    for tenant in tenants.iter().map(|t| t.tenant) {
        let key = format!("pk_test_{}", tenant.simple());
        let stored: String = old
            .query_one("SELECT api_key FROM tenants WHERE id = $1", &[&tenant])
            .unwrap()
            .get(0);
        assert!(stored.starts_with("sha256:") && !stored.contains(&key[8..]));
        let found: Option<uuid::Uuid> = app
            .query_one("SELECT tenant_for_api_key($1)", &[&key])
            .expect("the app role may call tenant_for_api_key after the upgrade")
            .get(0);
        assert_eq!(found, Some(tenant));
        // Functions the upgrade created again (keyword search's definer
        // helper among them) are granted to the roles that had app access.
        as_tenant(&mut app, tenant, |tx| {
            let found = tx
                .query("SELECT * FROM keyword_search('welcome')", &[])
                .expect("the app role may search after the upgrade");
            assert_eq!(found.len(), 1, "{previous}: the fixture's chunk");
        });
    }
}
