//! Crash recovery: the postmaster is killed with SIGKILL while four
//! connections commit messages and cost events; after a restart, every commit
//! the server acknowledged before the kill is there, and the cost rollups
//! still equal the raw events.
//!
//! It kills the server, so it is `#[ignore]`d in the ordinary run;
//! scripts/test.sh runs it with --ignored against a cluster of its own,
//! started with fsync on.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use platform_client_tests::*;
use uuid::Uuid;

const WRITERS: usize = 4;

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run this through scripts/test.sh"))
}

#[test]
#[ignore = "kills the server: scripts/test.sh runs it on a cluster of its own"]
fn every_acknowledged_commit_survives_a_postmaster_kill() {
    let datadir = env("PLATFORM_TEST_DATADIR");
    let tenant = populate_tenant(&mut app(), "Crash");
    let session = tenant.row("sessions");
    let acknowledged: Arc<Mutex<Vec<Uuid>>> = Arc::default();

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let acknowledged = acknowledged.clone();
            std::thread::spawn(move || {
                let mut client = app();
                for n in 0.. {
                    let mut commit = || -> Result<Uuid, postgres::Error> {
                        let mut tx = client.transaction()?;
                        tx.execute("SELECT set_tenant($1)", &[&tenant.tenant])?;
                        let id: Uuid = tx
                            .query_one(
                                "INSERT INTO messages (session_id, role, content) VALUES ($1, 'user', $2) RETURNING id",
                                &[&session, &format!("writer {w}, message {n}")],
                            )?
                            .get(0);
                        tx.execute(
                            "SELECT record_cost_event('llm', 0.000125, 'openai', 'gpt-4o', 42, $1)",
                            &[&session],
                        )?;
                        tx.commit()?;
                        Ok(id)
                    };
                    match commit() {
                        Ok(id) => acknowledged.lock().unwrap().push(id),
                        Err(_) => return, // the server is gone
                    }
                }
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(1500));
    let pid = std::fs::read_to_string(format!("{datadir}/postmaster.pid")).unwrap();
    let pid = pid.lines().next().unwrap().trim().to_owned();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    assert!(killed.success(), "kill -KILL {pid}");
    for writer in writers {
        writer.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 100,
        "only {} commits before the kill",
        acknowledged.len()
    );

    restart_server(&datadir);
    let mut admin = admin();
    let found: i64 = admin
        .query_one(
            "SELECT count(*) FROM messages WHERE id = ANY($1)",
            &[&acknowledged],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        found as usize,
        acknowledged.len(),
        "acknowledged commits lost in the crash"
    );
    // The security model came back with the data.
    let forced: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relforcerowsecurity",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(forced, 14);
    // The rollups were written in the same transactions, so they came back
    // equal to the events.
    let differences = costs::rollup_differences(&mut admin);
    assert!(
        differences.is_empty(),
        "rollups differ from cost_events after the crash: {differences:?}"
    );
    let events: i64 = admin
        .query_one(
            "SELECT count(*) FROM cost_events WHERE tenant_id = $1",
            &[&tenant.tenant],
        )
        .unwrap()
        .get(0);
    assert!(
        events as usize >= acknowledged.len(),
        "acknowledged cost events lost"
    );
}

/// Starts the killed cluster again (as the postgres user, like
/// scripts/cluster.sh). The killed postmaster's children notice its death and
/// exit on their own, but until the last has gone the new postmaster refuses
/// to start on their shared memory: so it is tried again for a while.
fn restart_server(datadir: &str) {
    let pg_ctl = format!("{}/pg_ctl", env("PLATFORM_TEST_BINDIR"));
    let options = env("PLATFORM_TEST_SERVER_OPTIONS");
    let log = format!("{datadir}/server.log");
    let args = ["-D", datadir, "-l", &log, "-w", "-o", &options, "start"];
    for _ in 0..40 {
        let status = as_postgres_user(&pg_ctl)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        if status.success() {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("pg_ctl start kept failing after the crash; see {log}");
}
