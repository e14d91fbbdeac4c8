//! Through PgBouncer in transaction pooling mode with a single server
//! connection: many clients of different tenants take turns on that one
//! connection, and set_tenant() must never let one see another's tenant.
//! The document's session-level SET is shown to leak, as a negative control.
//!
//! Debian's pgbouncer 1.18 does not track named prepared statements in
//! transaction mode, so the clients use the simple query protocol.

use std::io::Write;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use platform_client_tests::*;
use postgres::{Client, NoTls, SimpleQueryMessage};
use uuid::Uuid;

const CLIENTS: usize = 4;
const TRANSACTIONS_PER_CLIENT: usize = 600;

/// A pgbouncer process for the test cluster, stopped when dropped.
struct Bouncer {
    child: Child,
    port: u16,
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        // SIGTERM, which sudo passes on (a SIGKILL would orphan pgbouncer).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn start_bouncer() -> Bouncer {
    let db = db();
    let (server_host, server_port) = server_address();
    let port = 20000 + (std::process::id() % 10000) as u16;
    let dir = scratch_dir("pgbouncer").display().to_string();
    let config = format!("{dir}/pgbouncer.ini");
    let users = format!("{dir}/pgbouncer.users");
    // Clients are trusted on loopback; the password is what pgbouncer
    // presents to the server for the application role.
    std::fs::write(
        &users,
        format!("\"{}\" \"{}\"\n", db.app_role, test_password()),
    )
    .unwrap();
    let mut file = std::fs::File::create(&config).unwrap();
    write!(
        file,
        "[databases]\n{name} = host={server_host} port={server_port} dbname={name}\n\
         [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
         auth_type = trust\nauth_file = {users}\npool_mode = transaction\n\
         default_pool_size = 1\nmin_pool_size = 0\nreserve_pool_size = 0\nmax_client_conn = 50\n\
         logfile = {dir}/pgbouncer.log\n",
        name = db.dbname
    )
    .unwrap();
    let binary =
        std::env::var("PLATFORM_TEST_PGBOUNCER").unwrap_or_else(|_| "/usr/sbin/pgbouncer".into());
    let mut command = as_postgres_user(&binary);
    command.arg(&config);
    // It logs to its logfile; an inherited stdout would hold the test
    // runner's output pipe open if it ever outlived the test.
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pgbouncer");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "pgbouncer did not start listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Bouncer { child, port }
}

fn through(bouncer: &Bouncer) -> Client {
    let db = db();
    postgres::Config::new()
        .host("127.0.0.1")
        .port(bouncer.port)
        .dbname(&db.dbname)
        .user(&db.app_role)
        .connect(NoTls)
        .expect("connect through pgbouncer")
}

/// The first column of every row a simple-protocol query returns, in order.
fn values(client: &mut Client, sql: &str) -> Vec<String> {
    client
        .simple_query(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or_default().to_owned()),
            _ => None,
        })
        .collect()
}

/// One request as an application makes it: BEGIN, set_tenant, a query,
/// COMMIT, each its own round trip, so the pooled server connection is held
/// by this client for the transaction and handed to another right after.
fn tenant_request(client: &mut Client, tenant: Uuid) -> String {
    values(client, "BEGIN");
    // The tenant id comes from the test's own fixture, not from a user.
    values(client, &format!("SELECT set_tenant('{tenant}')"));
    let seen = values(
        client,
        "SELECT get_current_tenant_id()::text || ' ' || coalesce((SELECT string_agg(id::text, ',') FROM widgets), '-')",
    );
    values(client, "COMMIT");
    seen.join("")
}

#[test]
fn tenants_interleaved_through_one_pooled_connection_never_mix() {
    let tenants: Vec<TenantData> = (0..CLIENTS)
        .map(|i| populate_tenant(&mut app(), &format!("Pooled {i}")))
        .collect();
    let bouncer = start_bouncer();
    let nil = Uuid::nil().to_string();

    let done = std::sync::atomic::AtomicBool::new(false);
    let (mismatches, leaks, transactions) = std::thread::scope(|scope| {
        let done = &done;
        let bouncer = &bouncer;
        let workers: Vec<_> = tenants
            .iter()
            .map(|tenant| {
                scope.spawn(move || {
                    let mut client = through(bouncer);
                    let expected = format!("{} {}", tenant.tenant, tenant.row("widgets"));
                    (0..TRANSACTIONS_PER_CLIENT)
                        .filter(|_| tenant_request(&mut client, tenant.tenant) != expected)
                        .count()
                })
            })
            .collect();
        // A client that never sets a context, polling in between.
        let bystander = scope.spawn(move || {
            let mut client = through(bouncer);
            let mut leaks = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let seen = values(
                    &mut client,
                    "SELECT get_current_tenant_id()::text || ' ' || (SELECT count(*) FROM widgets)",
                );
                if seen != [format!("{nil} 0")] {
                    leaks += 1;
                }
            }
            leaks
        });
        let mismatches: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (
            mismatches,
            bystander.join().unwrap(),
            CLIENTS * TRANSACTIONS_PER_CLIENT,
        )
    });
    assert_eq!(transactions, 2400);
    assert_eq!(
        mismatches, 0,
        "transactions that saw another tenant's context or rows"
    );
    assert_eq!(leaks, 0, "times the client without a context saw a tenant");

    // Negative control: the document's session-level SET outlives the
    // transaction, stays on the pooled server connection, and the next client
    // of that connection inherits the tenant.
    let victim_tenant = tenants[0].tenant;
    let mut first = through(&bouncer);
    let mut second = through(&bouncer);
    values(
        &mut first,
        &format!("SET app.current_tenant_id = '{victim_tenant}'"),
    );
    let inherited = values(
        &mut second,
        "SELECT get_current_tenant_id()::text || ' ' || (SELECT count(*) FROM widgets)",
    );
    assert_eq!(
        inherited,
        [format!("{victim_tenant} 1")],
        "the session-level SET leaks to another client"
    );
    values(&mut second, "RESET app.current_tenant_id");
}
