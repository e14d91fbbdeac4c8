//! Harness for the client tests: a fresh database with the extension, an
//! application role prepared by `grant_app_access()` (LOGIN NOSUPERUSER
//! NOBYPASSRLS), and helpers to act as a tenant.
//!
//! Where they connect: `DATABASE_URL`, a superuser's connection string to any
//! server that has the extension installed (the tests create their own
//! databases and roles there), or else the cluster `scripts/test.sh` starts,
//! whose socket directory and port it passes in PLATFORM_TEST_HOST and
//! PLATFORM_TEST_PORT.

use std::sync::OnceLock;

use postgres::config::Host;
use postgres::error::SqlState;
use postgres::{Client, Config, NoTls, Transaction};
use uuid::Uuid;

pub mod costs;
pub mod fixture;
pub mod search_fixture;
pub mod signed;
pub mod snapshot;

pub use fixture::{fixture_password_hash, populate_tenant, TenantData, FIXTURE_PASSWORD};

/// The database and application role this test process works in.
pub struct TestDb {
    pub dbname: String,
    pub app_role: String,
}

/// The superuser connection everything starts from.
fn server_config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            let mut config: Config = url
                .parse()
                .unwrap_or_else(|e| panic!("DATABASE_URL is not a connection string: {e}"));
            if config.get_user().is_none() {
                config.user("postgres");
            }
            return config;
        }
        let host = std::env::var("PLATFORM_TEST_HOST").expect(
            "set DATABASE_URL to a superuser connection string, or run the tests through scripts/test.sh",
        );
        let port: u16 = std::env::var("PLATFORM_TEST_PORT")
            .expect("PLATFORM_TEST_PORT is not set: run the tests through scripts/test.sh")
            .parse()
            .expect("PLATFORM_TEST_PORT is a port number");
        let mut config = Config::new();
        config.host(&host).port(port).user("postgres");
        config
    })
}

/// The database to connect to when creating and dropping the test databases.
pub fn maintenance_db() -> &'static str {
    server_config().get_dbname().unwrap_or("postgres")
}

/// The superuser the tests connect as.
pub fn superuser() -> &'static str {
    server_config()
        .get_user()
        .expect("the server config names a user")
}

/// The password of every login role the tests create (random per process:
/// the roles may live on a server that is not a throw-away one).
pub fn test_password() -> &'static str {
    static PASSWORD: OnceLock<String> = OnceLock::new();
    PASSWORD.get_or_init(|| Uuid::new_v4().simple().to_string())
}

/// `CREATE ROLE <name> LOGIN PASSWORD ...` plus `options`, for a role the
/// tests connect as.
pub fn create_login_role(name: &str, options: &str) -> String {
    format!(
        "CREATE ROLE {name} LOGIN PASSWORD '{}' {options}",
        test_password()
    )
}

/// The server's host (a name, an address or a socket directory) and port, for
/// client programs and pgbouncer.
pub fn server_address() -> (String, u16) {
    let config = server_config();
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(dir)) => dir.display().to_string(),
        None => "localhost".to_owned(),
    };
    (host, config.get_ports().first().copied().unwrap_or(5432))
}

/// A connection to `dbname` as `user`: the superuser with its own
/// credentials, any other role with the tests' password.
pub fn connect(dbname: &str, user: &str) -> Client {
    let mut config = server_config().clone();
    config.dbname(dbname).user(user);
    if user != superuser() {
        config.password(test_password());
    }
    config
        .connect(NoTls)
        .unwrap_or_else(|e| panic!("connect to {dbname} as {user}: {e}"))
}

/// Creates, once per test process, a database with the extension and an
/// application role. Each test binary is its own process, so each gets its own.
pub fn db() -> &'static TestDb {
    static DB: OnceLock<TestDb> = OnceLock::new();
    DB.get_or_init(|| {
        let suffix = std::process::id();
        let db = TestDb {
            dbname: format!("platform_test_{suffix}"),
            app_role: format!("platform_app_{suffix}"),
        };
        let mut server = connect(maintenance_db(), superuser());
        // One statement at a time: DROP/CREATE DATABASE refuse to run inside
        // the implicit transaction of a multi-statement string.
        for statement in [
            format!("DROP DATABASE IF EXISTS {}", db.dbname),
            format!("CREATE DATABASE {}", db.dbname),
            format!("DROP ROLE IF EXISTS {}", db.app_role),
            create_login_role(&db.app_role, "NOSUPERUSER NOBYPASSRLS"),
        ] {
            server
                .batch_execute(&statement)
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        let mut admin = connect(&db.dbname, superuser());
        admin
            .batch_execute("CREATE EXTENSION platform CASCADE")
            .expect("CREATE EXTENSION platform CASCADE");
        admin
            .execute(
                "SELECT grant_app_access($1::text::regrole)",
                &[&db.app_role],
            )
            .expect("grant_app_access");
        // Timeouts, as docs/security.md recommends for every application
        // role (the audit reports a role without them).
        admin
            .batch_execute(&format!(
                "ALTER ROLE {0} SET statement_timeout = '120s';
                 ALTER ROLE {0} SET idle_in_transaction_session_timeout = '120s'",
                db.app_role
            ))
            .expect("timeouts for the application role");
        // The search settings are superuser-only; the tests that need the
        // other paths (HNSW on a small table, unbounded ranking) get them
        // the way an operator would delegate them.
        admin
            .batch_execute(&format!(
                "SELECT platform_exact_scan_limit();
                 GRANT SET ON PARAMETER platform.exact_scan_limit, platform.keyword_rank_limit,
                                        platform.common_word_share, platform.exact_match_word_share,
                                        platform.sketch_candidates TO {}",
                db.app_role
            ))
            .expect("GRANT SET ON PARAMETER");
        db
    })
}

/// A command that runs `program` as the postgres user: through sudo when
/// the tests run as root (pgbouncer and pg_ctl refuse root), directly otherwise.
pub fn as_postgres_user(program: &str) -> std::process::Command {
    let as_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if as_root {
        let mut sudo = std::process::Command::new("sudo");
        sudo.args(["-n", "-u", "postgres", program]);
        sudo
    } else {
        std::process::Command::new(program)
    }
}

/// A superuser connection to another database of the test server.
pub fn admin_of(dbname: &str) -> Client {
    connect(dbname, superuser())
}

/// Runs one of the server's client programs (pg_dump, psql, ...) against it
/// as the superuser, and panics with its output if it fails. They come from
/// PLATFORM_TEST_BINDIR when set, else from PATH.
pub fn run_client_program(program: &str, args: &[&str]) -> Vec<u8> {
    let path = match std::env::var("PLATFORM_TEST_BINDIR") {
        Ok(bindir) => format!("{bindir}/{program}"),
        Err(_) => program.to_owned(),
    };
    let (host, port) = server_address();
    let mut command = std::process::Command::new(path);
    command
        .args(["-h", &host, "-p", &port.to_string(), "-U", superuser()])
        .args(args);
    if let Some(password) = server_config().get_password() {
        command.env("PGPASSWORD", String::from_utf8_lossy(password).as_ref());
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A directory for files a test writes and the postgres user (pgbouncer)
/// may write too; removed by the test's own cleanup or with /tmp.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("platform-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
        .expect("open the scratch directory to the postgres user");
    dir
}

/// A superuser connection to the test database (for setup and for checking
/// what really happened behind the application's back).
pub fn admin() -> Client {
    connect(&db().dbname, superuser())
}

/// A connection to the test database as `user`.
pub fn connect_as(user: &str) -> Client {
    connect(&db().dbname, user)
}

/// A connection as the application role.
pub fn app() -> Client {
    connect_as(&db().app_role)
}

/// A connection as a second application role, one given
/// `provisioning => true` (a sign-up service), made once per test process.
pub fn provisioner() -> Client {
    static ROLE: OnceLock<String> = OnceLock::new();
    let role = ROLE.get_or_init(|| {
        let role = format!("platform_signup_{}", std::process::id());
        let mut admin = admin();
        for statement in [
            format!("DROP ROLE IF EXISTS {role}"),
            create_login_role(&role, "NOSUPERUSER NOBYPASSRLS"),
            format!("ALTER ROLE {role} SET statement_timeout = '120s'"),
        ] {
            admin
                .batch_execute(&statement)
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        admin
            .execute(
                "SELECT grant_app_access($1::text::regrole, provisioning => true)",
                &[&role],
            )
            .expect("grant_app_access with provisioning");
        role
    });
    connect_as(role)
}

/// A connection as the application role that records every notice's SQLSTATE.
pub fn app_with_notices() -> (Client, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let db = db();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let client = server_config()
        .clone()
        .dbname(&db.dbname)
        .user(&db.app_role)
        .password(test_password())
        .notice_callback(move |notice| sink.lock().unwrap().push(notice.code().code().to_owned()))
        .connect(NoTls)
        .expect("connect as the application role");
    (client, seen)
}

/// A new, empty tenant made through the provisioning function.
pub fn provision_tenant(name: &str) -> Uuid {
    admin()
        .query_one("SELECT create_tenant($1)", &[&name])
        .expect("create_tenant")
        .get(0)
}

/// Runs `body` in a transaction acting for `tenant` and commits it.
pub fn as_tenant<T>(
    client: &mut Client,
    tenant: Uuid,
    body: impl FnOnce(&mut Transaction) -> T,
) -> T {
    let mut tx = client.transaction().expect("BEGIN");
    tx.execute("SELECT set_tenant($1)", &[&tenant])
        .expect("set_tenant");
    let result = body(&mut tx);
    tx.commit().expect("COMMIT");
    result
}

/// The SQLSTATE of a failed statement; panics, naming `what`, if it succeeded.
pub fn sqlstate_of<T: std::fmt::Debug>(result: Result<T, postgres::Error>, what: &str) -> SqlState {
    match result {
        Ok(value) => panic!("{what}: expected an error, but it succeeded with {value:?}"),
        Err(e) => e
            .code()
            .cloned()
            .unwrap_or_else(|| panic!("{what}: error without SQLSTATE: {e}")),
    }
}

/// Asserts that `result` failed with `expected`.
#[track_caller]
pub fn assert_sqlstate<T: std::fmt::Debug>(
    result: Result<T, postgres::Error>,
    expected: SqlState,
    what: &str,
) {
    let got = sqlstate_of(result, what);
    assert_eq!(
        got,
        expected,
        "{what}: expected SQLSTATE {}, got {}",
        expected.code(),
        got.code()
    );
}

/// Runs `statement` in a savepoint that is rolled back whatever happens, so a
/// failing statement does not abort the surrounding transaction.
pub fn attempt<T>(
    tx: &mut Transaction,
    statement: impl FnOnce(&mut Transaction) -> Result<T, postgres::Error>,
) -> Result<T, postgres::Error> {
    let mut savepoint = tx.transaction().expect("SAVEPOINT");
    let result = statement(&mut savepoint);
    savepoint.rollback().expect("ROLLBACK TO SAVEPOINT");
    result
}
