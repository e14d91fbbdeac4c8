//! Major-version upgrade with `pg_upgrade`: a cluster of the old PostgreSQL
//! (16) holding a populated database with the extension is moved to the new
//! one (18), whose install carries the same extension version; afterwards
//! every row, policy, index and function is there, and works as the
//! application role.
//!
//! Two phases, each its own process, run by scripts/pg-upgrade-test.sh with
//! DATABASE_URL naming the old cluster, then the new one:
//!   PLATFORM_PG_UPGRADE_PHASE=before  creates the database `platform_pg_upgrade`
//!       and the application role `platform_pg_upgrade_app` (fixed names: the
//!       harness's db() names them after the process), writes data in every
//!       table as the application role for three tenants, and writes what must
//!       survive to the file PLATFORM_PG_UPGRADE_SNAPSHOT;
//!   PLATFORM_PG_UPGRADE_PHASE=after   compares, then searches through the
//!       HNSW and GIN indexes, records costs, pages sessions, looks up API
//!       keys, checks isolation and writes as the application role, and
//!       finally runs ALTER EXTENSION vector UPDATE and ALTER EXTENSION
//!       platform UPDATE.
//! The role's password travels in the snapshot file (test_password() is new
//! in every process).
//! Both are #[ignore]d (they need the script's clusters) and do nothing
//! unless the phase variable names them.
//!
//! What is compared. Catalog details differ between major versions for
//! reasons that have nothing to do with the upgrade (PostgreSQL 18 lists NOT
//! NULL constraints in pg_constraint, OIDs of built-in objects move, the
//! deparser may print an expression differently), so the test compares what
//! must not change rather than snapshot::catalog() as a whole: every row of
//! every table of the extension, each table's row-security flags and
//! privileges, columns, constraints other than NOT NULL, indexes by name and
//! definition, policies with their roles and expressions, triggers,
//! functions (signature, properties, privileges, a digest of the body),
//! views, the tables registered for pg_dump, the application role and the
//! settings it may set, and what the application's own calls return. The
//! upgraded database's whole catalog snapshot must equal a fresh install's
//! on the new version; how it differs from the old version's is printed,
//! for information.
//!
//! The indexes: the HNSW indexes, as pg_upgrade carried their files over,
//! are in the plan of the vector branch's statement as the application role,
//! really scanned by vector_search, and return what they did before; the
//! GIN indexes answer keyword queries alone with a sequential scan's rows,
//! and keyword_search as the application role scans the chunks' one; amcheck
//! checks every B-tree and GIN index where the new install has it.
//!
//!
//! Rows store their text search configuration by name, not as regconfig:
//! pg_upgrade refuses tables with reg* columns whose OIDs it does not
//! preserve (the `english` configuration's OID differs between 16 and 18).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pgvector::Vector;
use platform_client_tests::search_fixture::*;
use platform_client_tests::*;
use postgres::error::SqlState;
use postgres::{Client, Config, GenericClient, NoTls};
use uuid::Uuid;

const DBNAME: &str = "platform_pg_upgrade";
const APP_ROLE: &str = "platform_pg_upgrade_app";

/// The phase the environment asks for, if it names `phase`.
fn selected(phase: &str) -> Option<String> {
    match std::env::var("PLATFORM_PG_UPGRADE_PHASE") {
        Ok(p) if p == phase => Some(
            std::env::var("PLATFORM_PG_UPGRADE_SNAPSHOT")
                .expect("PLATFORM_PG_UPGRADE_SNAPSHOT names the snapshot file"),
        ),
        _ => {
            eprintln!(
                "skipped: run through scripts/pg-upgrade-test.sh (PLATFORM_PG_UPGRADE_PHASE={phase})"
            );
            None
        }
    }
}

/// A connection to the test database as the application role, with the
/// password the before phase gave it (not test_password(): that one is new
/// in every process).
fn app_connection(password: &str) -> Client {
    let (host, port) = server_address();
    Config::new()
        .host(&host)
        .port(port)
        .dbname(DBNAME)
        .user(APP_ROLE)
        .password(password)
        .connect(NoTls)
        .unwrap_or_else(|e| panic!("connect to {DBNAME} as {APP_ROLE}: {e}"))
}

/// A failed statement's error with its SQLSTATE, detail and hint (the
/// driver's own Display says only "db error").
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{} {}: {}{}{}",
            db.severity(),
            db.code().code(),
            db.message(),
            db.detail()
                .map(|d| format!(" DETAIL: {d}"))
                .unwrap_or_default(),
            db.hint().map(|h| format!(" HINT: {h}")).unwrap_or_default()
        ),
        None => e.to_string(),
    }
}

/// What the before phase hands to the after phase, as one line per entry:
/// `<kind> <text>`, newlines and backslashes escaped.
#[derive(Default, Debug)]
struct Snapshot {
    password: String,
    tenants: Vec<Uuid>,
    /// The cost_summary range, as text.
    range: (String, String),
    /// What must be equal after the upgrade.
    facts: Vec<String>,
    /// What the HNSW path of the searches returns, over the very index files
    /// pg_upgrade carries over.
    hnsw: Vec<String>,
    /// snapshot::catalog(), for the informational comparison.
    catalog: Vec<String>,
    /// Free-form lines printed by the after phase.
    info: Vec<String>,
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Snapshot {
    fn write(&self, path: &str) {
        let mut text = String::new();
        let mut line = |kind: &str, value: &str| {
            text.push_str(kind);
            text.push(' ');
            text.push_str(&escape(value));
            text.push('\n');
        };
        line("password", &self.password);
        for t in &self.tenants {
            line("tenant", &t.to_string());
        }
        line("range_start", &self.range.0);
        line("range_end", &self.range.1);
        for (kind, lines) in [
            ("fact", &self.facts),
            ("hnsw", &self.hnsw),
            ("catalog", &self.catalog),
            ("info", &self.info),
        ] {
            for l in lines {
                line(kind, l);
            }
        }
        std::fs::write(path, text).unwrap_or_else(|e| panic!("write {path}: {e}"));
    }

    fn read(path: &str) -> Snapshot {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let mut s = Snapshot::default();
        for raw in text.lines() {
            let (kind, value) = raw.split_once(' ').unwrap_or((raw, ""));
            let value = unescape(value);
            match kind {
                "password" => s.password = value,
                "tenant" => s.tenants.push(value.parse().expect("a tenant id")),
                "range_start" => s.range.0 = value,
                "range_end" => s.range.1 = value,
                "fact" => s.facts.push(value),
                "hnsw" => s.hnsw.push(value),
                "catalog" => s.catalog.push(value),
                "info" => s.info.push(value),
                other => panic!("{path}: unknown line kind {other:?}"),
            }
        }
        assert!(
            !s.password.is_empty() && s.tenants.len() == 3,
            "{path} is incomplete"
        );
        s
    }
}

/// Every row of a query as one line of text.
fn lines(
    client: &mut impl GenericClient,
    query: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Vec<String> {
    client
        .query(query, params)
        .unwrap_or_else(|e| panic!("{query}: {}", describe(&e)))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The catalog facts that must survive a major-version upgrade unchanged, one
/// line each. Left out or normalised, because they differ between major
/// versions by design: NOT NULL constraints (rows of pg_constraint from 18
/// on; attnotnull says it), the row types of tables and the array types
/// (members of the extension from 17 on), and a table's default privileges
/// (the owner's gain MAINTAIN in 17): a table's privileges are what was
/// granted beyond the default and revoked from it. Roles are named, never
/// given as OIDs.
const DURABLE_CATALOG: &str = r#"
WITH ext AS (
    SELECT oid, extconfig, extcondition FROM pg_extension WHERE extname = 'platform'
), members AS (
    SELECT d.classid, d.objid FROM pg_depend d, ext
    WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), relations AS (
    SELECT c.* FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
), functions AS (
    SELECT p.* FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
)
SELECT 'extension platform ' || extversion FROM pg_extension WHERE extname = 'platform'
UNION ALL
SELECT 'member ' || pg_describe_object(classid, objid, 0) FROM members m
WHERE NOT EXISTS (SELECT FROM pg_type t
                  WHERE m.classid = 'pg_type'::regclass AND t.oid = m.objid
                    AND (t.typcategory = 'A'
                         OR EXISTS (SELECT FROM pg_class r WHERE r.oid = t.typrelid AND r.relkind <> 'c')))
UNION ALL
SELECT format('relation %s kind=%s rls=%s force=%s options=%s granted=%s revoked=%s',
              c.oid::regclass, c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.reloptions,
              (SELECT array_agg(format('%s:%s:%s', e.grantee::regrole, e.privilege_type, e.is_grantable)
                                ORDER BY 1)
               FROM (SELECT * FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner)))
                     EXCEPT SELECT * FROM aclexplode(acldefault('r', c.relowner))) e),
              (SELECT array_agg(format('%s:%s:%s', e.grantee::regrole, e.privilege_type, e.is_grantable)
                                ORDER BY 1)
               FROM (SELECT * FROM aclexplode(acldefault('r', c.relowner))
                     EXCEPT SELECT * FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner)))) e))
FROM relations c
UNION ALL
SELECT format('column %s #%s %s %s notnull=%s default=%s generated=%s identity=%s acl=%s',
              a.attrelid::regclass,
              row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
              a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
              pg_get_expr(d.adbin, d.adrelid), a.attgenerated, a.attidentity,
              (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(a.attacl) x))
FROM pg_attribute a
JOIN relations c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT format('constraint %s %s %s', k.conrelid::regclass, k.conname, pg_get_constraintdef(k.oid))
FROM pg_constraint k JOIN relations c ON c.oid = k.conrelid
WHERE k.contype <> 'n'
UNION ALL
SELECT format('index %s valid=%s ready=%s', pg_get_indexdef(i.indexrelid), i.indisvalid, i.indisready)
FROM pg_index i JOIN relations c ON c.oid = i.indrelid
UNION ALL
SELECT format('policy %s %s cmd=%s permissive=%s roles=%s using=%s check=%s',
              p.polrelid::regclass, p.polname, p.polcmd, p.polpermissive,
              (SELECT array_agg(CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END ORDER BY 1)
               FROM unnest(p.polroles) r),
              pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
FROM pg_policy p JOIN relations c ON c.oid = p.polrelid
UNION ALL
SELECT format('trigger %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
FROM pg_trigger t JOIN relations c ON c.oid = t.tgrelid
WHERE NOT t.tgisinternal
UNION ALL
SELECT format('function %s(%s) returns %s lang=%s volatile=%s parallel=%s strict=%s '
              'definer=%s leakproof=%s cost=%s rows=%s config=%s acl=%s body=%s bin=%s comment=%s',
              p.proname, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
              l.lanname, p.provolatile, p.proparallel, p.proisstrict, p.prosecdef,
              p.proleakproof, p.procost, p.prorows, p.proconfig,
              (SELECT array_agg(x::text ORDER BY x::text)
               FROM unnest(coalesce(p.proacl, acldefault('f', p.proowner))) x),
              md5(p.prosrc), p.probin, obj_description(p.oid, 'pg_proc'))
FROM functions p JOIN pg_language l ON l.oid = p.prolang
UNION ALL
SELECT format('view %s %s', c.oid::regclass, md5(pg_get_viewdef(c.oid)))
FROM relations c WHERE c.relkind IN ('v', 'm')
UNION ALL
SELECT format('dumped %s where %s', t::regclass, ext.extcondition[n])
FROM ext, unnest(ext.extconfig) WITH ORDINALITY AS u(t, n)
UNION ALL
SELECT format('tables %s policies, %s FORCE',
              (SELECT count(*) FROM pg_policies),
              (SELECT count(*) FROM pg_class WHERE relforcerowsecurity))
UNION ALL
SELECT format('role %s super=%s bypassrls=%s login=%s inherit=%s config=%s member_of=%s',
              r.rolname, r.rolsuper, r.rolbypassrls, r.rolcanlogin, r.rolinherit,
              (SELECT array_agg(s ORDER BY s) FROM unnest(r.rolconfig) s),
              (SELECT array_agg(g.rolname::text ORDER BY g.rolname)
               FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid))
FROM pg_roles r WHERE r.rolname = $1::name
UNION ALL
SELECT format('parameter %s acl=%s', parname,
              (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(paracl) x))
FROM pg_parameter_acl
UNION ALL
SELECT format('database connect=%s', has_database_privilege($1::name, current_database(), 'CONNECT'))
"#;

/// The columns of every table of the extension (the cost rollups and
/// verification_tokens included), by table name.
fn all_table_columns(admin: &mut Client) -> BTreeMap<String, Vec<String>> {
    let mut columns: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in admin
        .query(
            "SELECT c.oid::regclass::text, a.attname::text
             FROM pg_depend d
             JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
               AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'platform')
               AND c.relkind IN ('r', 'p')
             ORDER BY 1, a.attnum",
            &[],
        )
        .expect("the extension's tables")
    {
        columns.entry(row.get(0)).or_default().push(row.get(1));
    }
    assert!(columns.len() >= 17, "{columns:?}");
    columns
}

/// Query embeddings: near axis 0 leaning to 5 (tenant A's spread chunks) and
/// to 6 (tenant B's).
fn probes() -> Vec<(&'static str, Vector)> {
    vec![
        ("axis 0 towards 5", axis_vector(0, 5, 0.01)),
        ("axis 0 towards 6", axis_vector(0, 6, 0.05)),
        ("axis 1 towards 3", axis_vector(1, 3, 0.3)),
    ]
}

/// A tenant's rows of one table as the application role sees them, ids and
/// ranks exact, distances and scores rounded (two builds of pgvector may
/// differ in the last bits of a float sum).
fn search_facts(tx: &mut postgres::Transaction, label: &str) -> Vec<String> {
    const BY_PROBE: [(&str, &str); 3] = [
        (
            "vector_search",
            "SELECT format('%s %s', chunk_id, rank) || ' ' || round(distance::numeric, 6)
             FROM vector_search($1, 10)",
        ),
        (
            "hybrid_search",
            "SELECT format('%s %s %s', chunk_id, vector_rank, keyword_rank) || ' ' || round(score::numeric, 6)
             FROM hybrid_search('refund invoice muddy', $1, 10)",
        ),
        (
            "search_documents",
            "SELECT format('%s %s %s', document_id, vector_rank, keyword_rank) || ' ' || round(score::numeric, 6)
             FROM search_documents('invoices', $1, 10)",
        ),
    ];
    let mut facts = Vec::new();
    for (name, probe) in probes() {
        for (function, sql) in BY_PROBE {
            for line in lines(tx, sql, &[&probe]) {
                facts.push(format!("{label} {function}({name}) {line}"));
            }
        }
    }
    for words in ["muddy trails", "refunds invoice", "chunk", "welcome"] {
        for line in lines(
            tx,
            "SELECT format('%s %s', chunk_id, rank) || ' ' || round(keyword_score::numeric, 6)
             FROM keyword_search($1, 20)",
            &[&words],
        ) {
            facts.push(format!("{label} keyword_search({words}) {line}"));
        }
    }
    facts
}

/// What must be the same after the upgrade: the catalog facts, every row,
/// and what the application's calls return for each tenant (searches on
/// their exact path; the HNSW path is hnsw_facts()).
fn durable_facts(admin: &mut Client, app: &mut Client, snap: &Snapshot) -> Vec<String> {
    let mut facts = lines(admin, DURABLE_CATALOG, &[&APP_ROLE]);
    let columns = all_table_columns(admin);
    facts.extend(snapshot::table_contents(admin, &columns));
    for (i, &tenant) in snap.tenants.iter().enumerate() {
        let label = format!("tenant {i}");
        let key = format!("pk_test_{}", tenant.simple());
        let found: Option<Uuid> = app
            .query_one("SELECT tenant_for_api_key($1)", &[&key])
            .expect("tenant_for_api_key")
            .get(0);
        facts.push(format!("{label} api key finds {found:?}"));
        let mut tx = app.transaction().expect("BEGIN");
        tx.execute("SELECT set_tenant($1)", &[&tenant])
            .expect("set_tenant");
        for line in lines(&mut tx, "SELECT s::text FROM list_sessions(50) s", &[]) {
            facts.push(format!("{label} list_sessions {line}"));
        }
        for line in lines(
            &mut tx,
            "SELECT s::text FROM cost_summary($1::text::timestamptz, $2::text::timestamptz,
                                              'day', 'model', 'UTC') s",
            &[&snap.range.0, &snap.range.1],
        ) {
            facts.push(format!("{label} cost_summary {line}"));
        }
        // The scan (by sketch, then whole vectors), whatever the scope's size.
        tx.batch_execute("SET LOCAL platform.exact_scan_limit = 2147483647")
            .expect("SET platform.exact_scan_limit (granted to the application role)");
        facts.extend(search_facts(&mut tx, &format!("{label} exact")));
        tx.commit().expect("COMMIT");
    }
    facts.sort();
    facts
}

/// What the HNSW path returns for each tenant (platform.exact_scan_limit 0:
/// always through the index), over the index files as they are.
fn hnsw_facts(app: &mut Client, snap: &Snapshot) -> Vec<String> {
    let mut facts = Vec::new();
    for (i, &tenant) in snap.tenants.iter().enumerate() {
        as_tenant(app, tenant, |tx| {
            tx.batch_execute("SET LOCAL platform.exact_scan_limit = 0")
                .unwrap();
            for (name, probe) in probes() {
                for line in lines(
                    tx,
                    "SELECT format('%s %s', chunk_id, rank) FROM vector_search($1, 10)",
                    &[&probe],
                ) {
                    facts.push(format!("tenant {i} hnsw vector_search({name}) {line}"));
                }
                for line in lines(
                    tx,
                    "SELECT format('%s %s', document_id, vector_rank) FROM search_documents(NULL, $1, 10)",
                    &[&probe],
                ) {
                    facts.push(format!("tenant {i} hnsw search_documents({name}) {line}"));
                }
            }
        });
    }
    facts
}

fn version_of(client: &mut Client, extension: &str) -> (String, String) {
    let row = client
        .query_one(
            "SELECT coalesce(e.extversion, '(not installed)'), a.default_version
             FROM pg_available_extensions a LEFT JOIN pg_extension e ON e.extname = a.name
             WHERE a.name = $1",
            &[&extension],
        )
        .unwrap_or_else(|e| panic!("{extension}: {}", describe(&e)));
    (row.get(0), row.get(1))
}

fn print_versions(client: &mut Client, when: &str) {
    let server: String = client.query_one("SHOW server_version", &[]).unwrap().get(0);
    let (platform, platform_default) = version_of(client, "platform");
    let (vector, vector_default) = version_of(client, "vector");
    println!(
        "{when}: PostgreSQL {server}; platform {platform} (install: {platform_default}); \
         vector {vector} (install: {vector_default})"
    );
}

#[test]
#[ignore = "needs the clusters of scripts/pg-upgrade-test.sh"]
fn before_pg_upgrade() {
    let Some(path) = selected("before") else {
        return;
    };
    let mut server = admin_of(maintenance_db());
    for statement in [
        format!("DROP DATABASE IF EXISTS {DBNAME}"),
        format!("CREATE DATABASE {DBNAME}"),
        format!("DROP ROLE IF EXISTS {APP_ROLE}"),
        create_login_role(APP_ROLE, "NOSUPERUSER NOBYPASSRLS"),
    ] {
        server
            .batch_execute(&statement)
            .unwrap_or_else(|e| panic!("{statement}: {}", describe(&e)));
    }
    // The application role as lib.rs's db() prepares it.
    let mut admin = admin_of(DBNAME);
    admin
        .batch_execute("CREATE EXTENSION platform CASCADE")
        .expect("CREATE EXTENSION platform CASCADE");
    admin
        .execute("SELECT grant_app_access($1::text::regrole)", &[&APP_ROLE])
        .expect("grant_app_access");
    admin
        .batch_execute(&format!(
            "ALTER ROLE {APP_ROLE} SET statement_timeout = '120s';
             ALTER ROLE {APP_ROLE} SET idle_in_transaction_session_timeout = '120s';
             SELECT platform_exact_scan_limit();
             GRANT SET ON PARAMETER platform.exact_scan_limit, platform.keyword_rank_limit,
                                    platform.common_word_share TO {APP_ROLE}"
        ))
        .expect("the application role's settings");
    print_versions(&mut admin, "before pg_upgrade");

    let password = test_password().to_owned();
    let mut app = app_connection(&password);
    // Every table, for three tenants, as the application role.
    let tenants: Vec<TenantData> = ["Upgrade A", "Upgrade B", "Upgrade C"]
        .iter()
        .map(|name| populate_tenant(&mut app, name))
        .collect();
    // Enough chunks that the HNSW and GIN indexes hold real graphs and
    // posting lists: 600 for A, 150 for B, documents with embeddings too.
    for (i, spread) in [(0, 600), (1, 150)] {
        as_tenant(&mut app, tenants[i].tenant, |tx| {
            let big = insert_spread_chunks(
                tx,
                &format!("spread {i}"),
                spread,
                5 + i as i32,
                0.0,
                0.0005,
            );
            let shoes = insert_document(tx, "Running shoes", "Trail runners", Some("sport"));
            insert_chunk(
                tx,
                shoes,
                0,
                "The runners were running on muddy trails",
                &axis_vector(1, 0, 0.0),
            );
            let billing = insert_document(tx, "Invoices", "Billing and refunds", Some("account"));
            insert_chunk(
                tx,
                billing,
                0,
                "Refunds appear on the next invoice",
                &axis_vector(3, 0, 0.0),
            );
            for (document, axis) in [(big, 5 + i), (shoes, 1), (billing, 3)] {
                tx.execute(
                    "UPDATE knowledge_documents SET embedding = $1 WHERE id = $2",
                    &[&axis_vector(0, axis, 0.02 * (axis as f32)), &document],
                )
                .unwrap();
            }
        });
    }
    // Cost events through record_cost_event, with idempotency keys.
    for (i, t) in tenants.iter().enumerate() {
        as_tenant(&mut app, t.tenant, |tx| {
            for n in 0..5 {
                tx.query_one(
                    "SELECT * FROM record_cost_event('llm', 0.000125 * $1::int, 'openai', 'gpt-4o', 42, $2,
                                                     idempotency_key => $3)",
                    &[&(n + 1), &t.row("sessions"), &format!("before-{i}-{n}")],
                )
                .expect("record_cost_event");
            }
        });
    }
    admin
        .execute(
            "INSERT INTO verification_tokens VALUES ('upgrade@example.com', $1, now() + interval '1 day')",
            &[&Uuid::new_v4().to_string()],
        )
        .unwrap();
    admin
        .batch_execute("VACUUM ANALYZE")
        .expect("VACUUM ANALYZE");
    let (start, end): (String, String) = {
        let row = admin
            .query_one(
                "SELECT (date_trunc('day', now(), 'UTC') - interval '1 day')::text,
                        (date_trunc('day', now(), 'UTC') + interval '2 days')::text",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };

    let mut snap = Snapshot {
        password,
        tenants: tenants.iter().map(|t| t.tenant).collect(),
        range: (start, end),
        ..Snapshot::default()
    };
    snap.facts = durable_facts(&mut admin, &mut app, &snap);
    snap.catalog = snapshot::catalog(&mut admin);
    let stats: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stats WHERE tablename IN ('knowledge_chunks', 'knowledge_documents')",
            &[],
        )
        .unwrap()
        .get(0);
    snap.info.push(format!(
        "{stats} pg_stats rows for knowledge_chunks and knowledge_documents before the upgrade"
    ));
    snap.hnsw = hnsw_facts(&mut app, &snap);
    assert!(
        snap.hnsw.len() > 40,
        "the HNSW path returns rows: {:?}",
        snap.hnsw
    );
    snap.write(&path);
    println!(
        "wrote {path}: {} facts, {} HNSW results, {} catalog lines",
        snap.facts.len(),
        snap.hnsw.len(),
        snap.catalog.len()
    );
}

/// The idx_scan counter of an index (reads a fresh statistics snapshot).
fn index_scans(admin: &mut Client, index: &str) -> i64 {
    admin
        .batch_execute("SELECT pg_stat_clear_snapshot()")
        .unwrap();
    admin
        .query_one(
            "SELECT coalesce(sum(idx_scan), 0)::bigint FROM pg_stat_all_indexes WHERE indexrelname = $1",
            &[&index],
        )
        .unwrap()
        .get(0)
}

/// Runs `work` on a new application connection, closes it (which flushes
/// its statistics) and returns by how much each index's idx_scan grew.
fn scans_during(
    admin: &mut Client,
    password: &str,
    indexes: &[&str],
    work: impl FnOnce(&mut Client),
) -> Vec<i64> {
    let before: Vec<i64> = indexes.iter().map(|i| index_scans(admin, i)).collect();
    let mut app = app_connection(password);
    work(&mut app);
    drop(app);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let grown: Vec<i64> = indexes
            .iter()
            .zip(&before)
            .map(|(i, b)| index_scans(admin, i) - b)
            .collect();
        if grown.iter().all(|&g| g > 0) || Instant::now() > deadline {
            return grown;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn plan(
    tx: &mut postgres::Transaction,
    query: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> String {
    lines(tx, &format!("EXPLAIN (COSTS OFF) {query}"), params).join("\n")
}

/// The HNSW indexes as pg_upgrade carried them over: the statement shape the
/// vector branch runs (ORDER BY distance under enable_sort = off, as its SET
/// clause has it) plans through them as the application role under a tenant
/// context; the search functions' HNSW path really scans them; and it returns
/// what it did before the upgrade.
fn check_hnsw(admin: &mut Client, snap: &Snapshot) {
    let mut app = app_connection(&snap.password);
    let tenant = snap.tenants[0];
    as_tenant(&mut app, tenant, |tx| {
        tx.batch_execute("SET LOCAL enable_sort = off").unwrap();
        for (table, index) in [
            ("knowledge_chunks", "knowledge_chunk_embedding_idx"),
            ("knowledge_documents", "knowledge_embedding_idx"),
        ] {
            let shape = plan(
                tx,
                &format!("SELECT t.id FROM {table} t ORDER BY t.embedding <=> $1 LIMIT 10"),
                &[&axis_vector(0, 5, 0.01)],
            );
            assert!(
                shape.contains(&format!("Index Scan using {index}")),
                "{table}: the vector shape does not use {index}:\n{shape}"
            );
        }
    });
    let grown = scans_during(
        admin,
        &snap.password,
        &["knowledge_chunk_embedding_idx"],
        |app| {
            as_tenant(app, tenant, |tx| {
                tx.batch_execute("SET LOCAL platform.exact_scan_limit = 0")
                    .unwrap();
                let rows = tx
                    .query(
                        "SELECT chunk_id FROM vector_search($1, 10)",
                        &[&axis_vector(0, 5, 0.01)],
                    )
                    .expect("vector_search");
                assert_eq!(rows.len(), 10);
            });
        },
    );
    assert!(
        grown[0] > 0,
        "vector_search's HNSW path did not scan knowledge_chunk_embedding_idx"
    );
    let after = hnsw_facts(&mut app, snap);
    assert!(
        after == snap.hnsw,
        "the HNSW path returns other rows after pg_upgrade:\n{}",
        snapshot::differences(&snap.hnsw, &after)
    );
    println!(
        "HNSW: both indexes in the plan as the application role, vector_search scanned the chunks' index, \
         {} results equal to before",
        after.len()
    );
}

/// The GIN indexes: a keyword query with only the index to answer it (as
/// the owner, which is what keyword search's definer helper runs as) plans
/// through each and returns the same rows as a sequential scan;
/// keyword_search as the application role really scans the chunks' index
/// (the documents' is too small to be chosen over the tenant's B-tree);
/// and amcheck (where the new install has it) finds every B-tree and GIN
/// index of the extension's tables intact.
fn check_gin_and_amcheck(admin: &mut Client, snap: &Snapshot) {
    let tenant = snap.tenants[0];
    for (table, index) in [
        ("knowledge_chunks", "knowledge_chunk_search_idx"),
        ("knowledge_documents", "knowledge_search_idx"),
    ] {
        for word in ["refund", "spread"] {
            let query = format!(
                "SELECT t.id FROM {table} t
                 WHERE t.search_vector @@ (to_tsquery('english', '{word}') && platform_tenant_tsquery($1))
                 ORDER BY t.id"
            );
            let mut tx = admin.transaction().unwrap();
            tx.batch_execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off")
                .unwrap();
            let shape = plan(&mut tx, &query, &[&tenant]);
            assert!(
                shape.contains(&format!("Bitmap Index Scan on {index}")),
                "{table}: the keyword query does not use {index}:\n{shape}"
            );
            let through_index = lines(
                &mut tx,
                &format!("SELECT id::text FROM ({query}) q"),
                &[&tenant],
            );
            tx.batch_execute("SET LOCAL enable_seqscan = on; SET LOCAL enable_bitmapscan = off")
                .unwrap();
            let scanned = lines(
                &mut tx,
                &format!("SELECT id::text FROM ({query}) q"),
                &[&tenant],
            );
            tx.rollback().unwrap();
            assert!(!scanned.is_empty(), "{table}: no row has {word}");
            assert_eq!(
                through_index, scanned,
                "{table}: {index} finds other rows for {word}"
            );
        }
    }
    let grown = scans_during(
        admin,
        &snap.password,
        &["knowledge_chunk_search_idx"],
        |app| {
            as_tenant(app, tenant, |tx| {
                let rows = tx
                    .query("SELECT chunk_id FROM keyword_search('muddy trails')", &[])
                    .expect("keyword_search");
                assert_eq!(rows.len(), 1);
                let rows = tx
                    .query(
                        "SELECT document_id FROM search_documents('invoices', NULL)",
                        &[],
                    )
                    .expect("search_documents");
                assert_eq!(rows.len(), 1);
            });
        },
    );
    assert!(
        grown[0] > 0,
        "keyword_search did not scan knowledge_chunk_search_idx"
    );
    println!(
        "GIN: both indexes answer keyword queries alone with a sequential scan's rows; \
         keyword_search as the application role scanned the chunks' index"
    );

    let has_amcheck: bool = admin
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'amcheck')",
            &[],
        )
        .unwrap()
        .get(0);
    if !has_amcheck {
        println!("amcheck: not in this install, skipped");
        return;
    }
    admin.batch_execute("CREATE EXTENSION amcheck").unwrap();
    let checked = lines(
        admin,
        "SELECT format('%s %s', i.indexrelid::regclass, am.amname)
         FROM pg_index i
         JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
         WHERE i.indrelid IN (SELECT table_name FROM platform_tenant_tables()
                              UNION ALL SELECT 'verification_tokens'::regclass)
           AND am.amname IN ('btree', 'gin')
         ORDER BY 1",
        &[],
    );
    let has_gin_check: bool = admin
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_proc WHERE proname = 'gin_index_check')",
            &[],
        )
        .unwrap()
        .get(0);
    for index in &checked {
        let (name, am) = index.split_once(' ').unwrap();
        let check = match am {
            "btree" => format!("SELECT bt_index_check('{name}'::regclass, heapallindexed => true)"),
            _ if has_gin_check => format!("SELECT gin_index_check('{name}'::regclass)"),
            _ => continue,
        };
        admin
            .batch_execute(&check)
            .unwrap_or_else(|e| panic!("{check}: {}", describe(&e)));
    }
    admin.batch_execute("DROP EXTENSION amcheck").unwrap();
    println!(
        "amcheck: {} B-tree{} indexes of the extension's tables intact",
        checked.iter().filter(|i| i.ends_with("btree")).count(),
        if has_gin_check { " and GIN" } else { "" }
    );
}

/// The application's functions as the application role, after the upgrade:
/// costs, sessions, API keys, isolation, and writes into every table.
fn check_application(admin: &mut Client, snap: &Snapshot) {
    let mut app = app_connection(&snap.password);
    let (a, b) = (snap.tenants[0], snap.tenants[1]);
    // API keys: the fixture's key finds its tenant, an unknown one nothing.
    for &tenant in &snap.tenants {
        let found: Option<Uuid> = app
            .query_one(
                "SELECT tenant_for_api_key($1)",
                &[&format!("pk_test_{}", tenant.simple())],
            )
            .unwrap()
            .get(0);
        assert_eq!(found, Some(tenant));
    }
    let nobody: Option<Uuid> = app
        .query_one("SELECT tenant_for_api_key('pk_test_unknown')", &[])
        .unwrap()
        .get(0);
    assert_eq!(nobody, None);

    // Costs: a new event, its retry, and the summary that counts it once.
    as_tenant(&mut app, a, |tx| {
        let total = |tx: &mut postgres::Transaction| -> String {
            tx.query_one(
                "SELECT coalesce(sum(total_cost_usd), 0)::text || '/' || coalesce(sum(event_count), 0)
                 FROM cost_summary($1::text::timestamptz, $2::text::timestamptz, 'range')",
                &[&snap.range.0, &snap.range.1],
            )
            .expect("cost_summary")
            .get(0)
        };
        let before = total(tx);
        let first = tx
            .query_one(
                "SELECT event_id, duplicate FROM record_cost_event('embedding', 1.5, 'voyage', 'voyage-3', 10,
                                                                  idempotency_key => 'after-upgrade')",
                &[],
            )
            .expect("record_cost_event after the upgrade");
        let retry = tx
            .query_one(
                "SELECT event_id, duplicate FROM record_cost_event('embedding', 1.5, 'voyage', 'voyage-3', 10,
                                                                  idempotency_key => 'after-upgrade')",
                &[],
            )
            .unwrap();
        assert!(!first.get::<_, bool>(1) && retry.get::<_, bool>(1));
        assert_eq!(first.get::<_, Uuid>(0), retry.get::<_, Uuid>(0));
        let after = total(tx);
        let (cost_before, count_before) = before.split_once('/').unwrap();
        let (cost_after, count_after) = after.split_once('/').unwrap();
        let cost: f64 = cost_after.parse::<f64>().unwrap() - cost_before.parse::<f64>().unwrap();
        assert!((cost - 1.5).abs() < 1e-9, "{before} -> {after}");
        assert_eq!(
            count_after.parse::<i64>().unwrap(),
            count_before.parse::<i64>().unwrap() + 1
        );
    });
    assert_eq!(costs::rollup_differences(admin), Vec::<String>::new());

    // Sessions: a page of one, then the next page through its cursor.
    as_tenant(&mut app, a, |tx| {
        let all = tx
            .query("SELECT id, tenant_id FROM list_sessions(50)", &[])
            .expect("list_sessions");
        assert!(!all.is_empty());
        assert!(all.iter().all(|r| r.get::<_, Uuid>(1) == a));
        let first = tx
            .query_one("SELECT id, next_cursor FROM list_sessions(1)", &[])
            .unwrap();
        let next = tx
            .query(
                "SELECT id FROM list_sessions(50, $1)",
                &[&first.get::<_, String>(1)],
            )
            .unwrap();
        assert_eq!(next.len(), all.len() - 1);
    });

    // Isolation: under each tenant's context, every tenant-scoped table shows
    // exactly that tenant's rows; without a context, none; another tenant's
    // rows cannot be written.
    let tables: Vec<(String, String)> = admin
        .query(
            "SELECT table_name::text, tenant_column::text FROM platform_tenant_tables()",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(tables.len(), 14);
    for &tenant in &snap.tenants {
        as_tenant(&mut app, tenant, |tx| {
            for (table, column) in &tables {
                let row = tx
                    .query_one(
                        &format!(
                            "SELECT count(*) FILTER (WHERE {column} = $1), count(*) FILTER (WHERE {column} <> $1)
                             FROM {table}"
                        ),
                        &[&tenant],
                    )
                    .unwrap();
                let owned: i64 = admin
                    .query_one(
                        &format!("SELECT count(*) FROM {table} WHERE {column} = $1"),
                        &[&tenant],
                    )
                    .unwrap()
                    .get(0);
                assert_eq!(
                    row.get::<_, i64>(1),
                    0,
                    "{table}: another tenant's rows are visible"
                );
                assert_eq!(
                    row.get::<_, i64>(0),
                    owned,
                    "{table}: the tenant's own rows"
                );
                assert!(owned > 0, "{table}: the fixture wrote a row");
            }
        });
    }
    for (table, _) in &tables {
        let seen: i64 = app
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .unwrap()
            .get(0);
        assert_eq!(seen, 0, "{table}: rows visible without a tenant context");
    }
    as_tenant(&mut app, a, |tx| {
        assert_sqlstate(
            attempt(tx, |t| {
                t.execute(
                    "INSERT INTO widgets (tenant_id, name, domain_whitelist) VALUES ($1, 'x', '[]')",
                    &[&b],
                )
            }),
            SqlState::INSUFFICIENT_PRIVILEGE,
            "a widget for another tenant",
        );
        let updated = tx
            .execute(
                "UPDATE widgets SET name = 'taken' WHERE tenant_id = $1",
                &[&b],
            )
            .unwrap();
        assert_eq!(updated, 0, "another tenant's widgets cannot be updated");
        // The searches return only the tenant's own chunks.
        let foreign: i64 = tx
            .query_one(
                "SELECT count(*) FROM vector_search($1, 50) v
                 WHERE NOT EXISTS (SELECT FROM knowledge_chunks c WHERE c.id = v.chunk_id AND c.tenant_id = $2)",
                &[&axis_vector(0, 6, 0.05), &a],
            )
            .unwrap()
            .get(0);
        assert_eq!(foreign, 0);
    });
    let searched_as_b: Vec<Uuid> = as_tenant(&mut app, b, |tx| {
        tx.batch_execute("SET LOCAL platform.exact_scan_limit = 0")
            .unwrap();
        tx.query(
            "SELECT chunk_id FROM vector_search($1, 20)",
            &[&axis_vector(0, 5, 0.01)],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    });
    let owners: Vec<Uuid> = admin
        .query(
            "SELECT DISTINCT tenant_id FROM knowledge_chunks WHERE id = ANY ($1)",
            &[&searched_as_b],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(owners, vec![b], "B's HNSW search returns only B's chunks");

    // Writes into every table, a new tenant's, and ingestion through the new
    // server's index code: the new chunk is found on both search paths.
    let fresh = populate_tenant(&mut app, "After pg_upgrade");
    let probe = axis_vector(7, 0, 0.0);
    let chunk: Uuid = as_tenant(&mut app, a, |tx| {
        let document: Uuid = tx
            .query_one(
                "SELECT ingest_document('Kayaks', 'Paddles and kayaks', ARRAY['Kayak paddles after the upgrade'],
                                        ARRAY[$1::vector], document_embedding => $1)",
                &[&probe],
            )
            .expect("ingest_document")
            .get(0);
        tx.query_one(
            "SELECT id FROM knowledge_chunks WHERE document_id = $1",
            &[&document],
        )
        .unwrap()
        .get(0)
    });
    as_tenant(&mut app, a, |tx| {
        for limit in ["0", "DEFAULT"] {
            tx.batch_execute(&format!("SET LOCAL platform.exact_scan_limit = {limit}"))
                .unwrap();
            let nearest: Uuid = tx
                .query_one("SELECT chunk_id FROM vector_search($1, 1)", &[&probe])
                .unwrap()
                .get(0);
            assert_eq!(nearest, chunk, "exact_scan_limit {limit}");
        }
        let found = tx
            .query("SELECT chunk_id FROM keyword_search('kayak paddles')", &[])
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].get::<_, Uuid>(0), chunk);
    });
    let found: Option<Uuid> = app
        .query_one(
            "SELECT tenant_for_api_key($1)",
            &[&format!("pk_test_{}", fresh.tenant.simple())],
        )
        .unwrap()
        .get(0);
    assert_eq!(found, Some(fresh.tenant));
    assert_eq!(costs::rollup_differences(admin), Vec::<String>::new());
    println!("application: API keys, costs, sessions, isolation in all 14 tables, writes and ingestion work");
}

/// For information: how the whole catalog snapshot of the new version
/// differs from the old one's, counted by kind of line, with an example each.
fn print_catalog_changes(old: &[String], new: &[String]) {
    let mut kinds: BTreeMap<(String, &str), (usize, String)> = BTreeMap::new();
    for (side, from, to) in [("only in the old", old, new), ("only in the new", new, old)] {
        for line in from.iter().filter(|l| !to.contains(l)) {
            let kind = line.split(' ').next().unwrap_or("").to_owned();
            let entry = kinds.entry((kind, side)).or_insert((0, line.clone()));
            entry.0 += 1;
        }
    }
    if kinds.is_empty() {
        println!("the whole catalog snapshot is equal to the old version's");
        return;
    }
    println!(
        "the whole catalog snapshot against the old version's, for information (not compared):"
    );
    for ((kind, side), (count, example)) in kinds {
        println!("  {count} {kind} lines {side}, e.g. {example}");
    }
}

/// snapshot::catalog() of a new database of the new server with the
/// extension and the application role granted, as the upgraded one has.
fn fresh_install_catalog() -> Vec<String> {
    let fresh = format!("{DBNAME}_fresh");
    let mut server = admin_of(maintenance_db());
    for statement in [
        format!("DROP DATABASE IF EXISTS {fresh}"),
        format!("CREATE DATABASE {fresh}"),
    ] {
        server
            .batch_execute(&statement)
            .unwrap_or_else(|e| panic!("{statement}: {}", describe(&e)));
    }
    let mut admin = admin_of(&fresh);
    admin
        .batch_execute("CREATE EXTENSION platform CASCADE")
        .expect("CREATE EXTENSION platform CASCADE");
    admin
        .execute("SELECT grant_app_access($1::text::regrole)", &[&APP_ROLE])
        .expect("grant_app_access");
    let catalog = snapshot::catalog(&mut admin);
    drop(admin);
    server
        .batch_execute(&format!("DROP DATABASE {fresh}"))
        .unwrap();
    catalog
}

#[test]
#[ignore = "needs the clusters of scripts/pg-upgrade-test.sh"]
fn after_pg_upgrade() {
    let Some(path) = selected("after") else {
        return;
    };
    let snap = Snapshot::read(&path);
    let mut admin = admin_of(DBNAME);
    print_versions(&mut admin, "after pg_upgrade");
    for line in &snap.info {
        println!("{line}");
    }
    let stats: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stats WHERE tablename IN ('knowledge_chunks', 'knowledge_documents')",
            &[],
        )
        .unwrap()
        .get(0);
    println!("{stats} pg_stats rows for knowledge_chunks and knowledge_documents after the upgrade, before any ANALYZE");

    // The HNSW indexes as pg_upgrade left them.
    check_hnsw(&mut admin, &snap);

    let mut app = app_connection(&snap.password);
    let facts = durable_facts(&mut admin, &mut app, &snap);
    assert!(
        facts == snap.facts,
        "what must survive pg_upgrade differs:\n{}",
        snapshot::differences(&snap.facts, &facts)
    );
    println!(
        "{} facts equal: rows of every table, catalog, application results",
        facts.len()
    );
    // The whole catalog snapshot: what a fresh install on the new version
    // has (asserted), and how it differs from the old version's (printed,
    // for information).
    let catalog = snapshot::catalog(&mut admin);
    let fresh = fresh_install_catalog();
    assert!(
        catalog == fresh,
        "the upgraded catalog differs from a fresh install's on the new version:\n{}",
        snapshot::differences(&catalog, &fresh)
    );
    println!("the upgraded catalog equals a fresh install's on the new version");
    print_catalog_changes(&snap.catalog, &catalog);

    check_gin_and_amcheck(&mut admin, &snap);
    check_application(&mut admin, &snap);

    // Last, the extensions: pgvector to the new install's version, and the
    // platform extension (already at the install's version: nothing to do).
    let (vector_before, _) = version_of(&mut admin, "vector");
    let (platform_before, platform_default) = version_of(&mut admin, "platform");
    assert_eq!(
        platform_before, platform_default,
        "both installs carry the same platform version"
    );
    admin
        .batch_execute("ALTER EXTENSION vector UPDATE")
        .expect("ALTER EXTENSION vector UPDATE");
    admin
        .batch_execute("ALTER EXTENSION platform UPDATE")
        .expect("ALTER EXTENSION platform UPDATE");
    let (vector_after, vector_default) = version_of(&mut admin, "vector");
    let (platform_after, _) = version_of(&mut admin, "platform");
    println!("ALTER EXTENSION vector UPDATE: {vector_before} -> {vector_after}");
    println!("ALTER EXTENSION platform UPDATE: {platform_before} -> {platform_after}");
    assert_eq!(vector_after, vector_default);
    assert_eq!(platform_after, platform_before);
    // Still searching, through both indexes, after the update.
    let mut app = app_connection(&snap.password);
    as_tenant(&mut app, snap.tenants[0], |tx| {
        tx.batch_execute("SET LOCAL platform.exact_scan_limit = 0")
            .unwrap();
        assert_eq!(
            tx.query(
                "SELECT * FROM vector_search($1, 10)",
                &[&axis_vector(0, 5, 0.01)]
            )
            .unwrap()
            .len(),
            10
        );
        assert_eq!(
            tx.query(
                "SELECT * FROM hybrid_search('muddy trails', $1, 10)",
                &[&axis_vector(1, 0, 0.0)]
            )
            .unwrap()
            .len(),
            10
        );
    });
    let audit = lines(
        &mut admin,
        "SELECT format('%s | %s | %s', finding, object, detail) FROM platform_audit()",
        &[],
    );
    println!(
        "platform_audit() after the upgrade: {} findings",
        audit.len()
    );
    for finding in &audit {
        println!("  {finding}");
    }
    print_versions(&mut admin, "after ALTER EXTENSION ... UPDATE");
}
