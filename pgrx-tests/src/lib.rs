//! Harness for the client tests: a fresh database with the extension, an
//! application role prepared by `grant_app_access()` (LOGIN NOSUPERUSER
//! NOBYPASSRLS), and helpers to act as a tenant. `scripts/test.sh` starts the
//! cluster and passes its socket directory and port in PLATFORM_TEST_HOST and
//! PLATFORM_TEST_PORT.

use std::sync::OnceLock;

use postgres::error::SqlState;
use postgres::{Client, Config, NoTls, Transaction};
use uuid::Uuid;

pub mod costs;
pub mod fixture;
pub mod search_fixture;
pub mod snapshot;

pub use fixture::{populate_tenant, TenantData};

/// The database and application role this test process works in.
pub struct TestDb {
    pub dbname: String,
    pub app_role: String,
}

fn server_config() -> Config {
    let host = std::env::var("PLATFORM_TEST_HOST")
        .expect("PLATFORM_TEST_HOST is not set: run the tests through scripts/test.sh");
    let port: u16 = std::env::var("PLATFORM_TEST_PORT")
        .expect("PLATFORM_TEST_PORT is not set: run the tests through scripts/test.sh")
        .parse()
        .expect("PLATFORM_TEST_PORT is a port number");
    let mut config = Config::new();
    config.host(&host).port(port);
    config
}

/// A connection to `dbname` of the test cluster as `user`.
pub fn connect(dbname: &str, user: &str) -> Client {
    server_config()
        .dbname(dbname)
        .user(user)
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
        let mut server = connect("postgres", "postgres");
        // One statement at a time: DROP/CREATE DATABASE refuse to run inside
        // the implicit transaction of a multi-statement string.
        for statement in [
            format!("DROP DATABASE IF EXISTS {}", db.dbname),
            format!("CREATE DATABASE {}", db.dbname),
            format!("DROP ROLE IF EXISTS {}", db.app_role),
            format!("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS", db.app_role),
        ] {
            server
                .batch_execute(&statement)
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        let mut admin = connect(&db.dbname, "postgres");
        admin
            .batch_execute("CREATE EXTENSION platform CASCADE")
            .expect("CREATE EXTENSION platform CASCADE");
        admin
            .execute(
                "SELECT grant_app_access($1::text::regrole)",
                &[&db.app_role],
            )
            .expect("grant_app_access");
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

/// A superuser connection to another database of the test cluster.
pub fn admin_of(dbname: &str) -> Client {
    connect(dbname, "postgres")
}

/// Runs one of the cluster's client programs (pg_dump, psql, ...) against
/// it as the superuser, and panics with its output if it fails.
pub fn run_client_program(program: &str, args: &[&str]) -> Vec<u8> {
    let bindir = std::env::var("PLATFORM_TEST_BINDIR")
        .expect("PLATFORM_TEST_BINDIR is not set: run the tests through scripts/test.sh");
    let output = std::process::Command::new(format!("{bindir}/{program}"))
        .args(["-h", &std::env::var("PLATFORM_TEST_HOST").unwrap()])
        .args(["-p", &std::env::var("PLATFORM_TEST_PORT").unwrap()])
        .args(["-U", "postgres"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A superuser connection to the test database (for setup and for checking
/// what really happened behind the application's back).
pub fn admin() -> Client {
    connect(&db().dbname, "postgres")
}

/// A connection to the test database as `user`.
pub fn connect_as(user: &str) -> Client {
    connect(&db().dbname, user)
}

/// A connection as the application role.
pub fn app() -> Client {
    connect_as(&db().app_role)
}

/// A connection as the application role that records every notice's SQLSTATE.
pub fn app_with_notices() -> (Client, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let db = db();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let client = server_config()
        .dbname(&db.dbname)
        .user(&db.app_role)
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
