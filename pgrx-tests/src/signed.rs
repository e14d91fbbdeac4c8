//! The signed tenant context (docs/security.md) from the tests' side: the
//! test keys in the server's configuration, and app tokens minted the way an
//! application server mints them (HMAC-SHA-256, as the TypeScript and Python
//! snippets of the docs do).

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::{admin, admin_of, db};

/// The key every test signs with; it stays first in platform.tenant_keys.
pub const TEST_KID: &str = "t1";
pub const TEST_KEY_HEX: &str = "5c1e7a0f9b3d4c2e8a6f0b1d3e5c7a9f2b4d6e8f0a1c3e5d7b9f1a3c5e7d9b1f";

/// Serialises changes of platform.tenant_keys (a cluster-wide setting).
static KEYS: Mutex<()> = Mutex::new(());

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64
}

fn decode_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// `v1.<kid>.<purpose>.<subject>.<expires>.<hex HMAC-SHA-256>` over
/// `platform-v1.<kid>.<purpose>.<subject>.<expires>`.
pub fn mint(kid: &str, key_hex: &str, purpose: &str, subject: &str, expires: i64) -> String {
    let body = format!("platform-v1.{kid}.{purpose}.{subject}.{expires}");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&decode_hex(key_hex)).unwrap();
    mac.update(body.as_bytes());
    let mac: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v1.{kid}.{purpose}.{subject}.{expires}.{mac}")
}

/// A tenant token valid for a minute, signed with the test key.
pub fn tenant_token(tenant: Uuid) -> String {
    mint(
        TEST_KID,
        TEST_KEY_HEX,
        "tenant",
        &tenant.to_string(),
        now() + 60,
    )
}

/// Sets platform.tenant_keys to the test key followed by `extra`
/// (`,kid:hex...`), reloads, and waits until new sessions see it. Through
/// ALTER SYSTEM, which a real server must not use (the statement may be
/// logged): fine for a throw-away test cluster.
pub fn set_test_keys(extra: &str) {
    let _one_at_a_time = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    let keys = format!("{TEST_KID}:{TEST_KEY_HEX}{extra}");
    let mut admin = admin();
    admin
        .batch_execute("SELECT platform_tenant_context()")
        .expect("load the library");
    admin
        .batch_execute(&format!("ALTER SYSTEM SET platform.tenant_keys = '{keys}'"))
        .expect("ALTER SYSTEM SET platform.tenant_keys");
    admin
        .batch_execute("SELECT pg_reload_conf()")
        .expect("pg_reload_conf()");
    for _ in 0..100 {
        let mut fresh = admin_of(&db().dbname);
        fresh
            .batch_execute("SELECT platform_tenant_context()")
            .unwrap();
        let seen: String = fresh
            .query_one("SHOW platform.tenant_keys", &[])
            .unwrap()
            .get(0);
        if seen == keys {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the server did not reload platform.tenant_keys");
}
