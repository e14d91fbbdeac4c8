//! Throw-away prototype for issue 12: a tenant context that SQL cannot forge.
//!
//! * `app.current_tenant_id` becomes a real GUC of the library with a check
//!   hook. In signed mode (`proto.signed = on`, superuser-only) the hook only
//!   lets in '' or an *internal token* minted by `proto_set_tenant_token()` in
//!   this very transaction: `i1.<kid>.<tenant>.<binding>.<hmac>`, where the
//!   binding is (backend slot of the leader, transaction start in µs). So a
//!   bare UUID, a forged token, or a token copied from another transaction
//!   (another backend, an earlier transaction, a session-level SET that
//!   outlived its transaction) is refused when set and ignored when read.
//! * The application proves the tenant with an *app token*
//!   `v1.<kid>.<tenant>.<expires unix s>.<hex hmac-sha256>` minted outside
//!   the database with a key only it and the server's config file hold
//!   (`proto.keys = 'kid:hex64,...'`, SIGHUP, superuser-only, not shown).
//! * `proto_current_tenant()` is what the policies call: a per-transaction
//!   cache makes it a string compare after the first verification.
//! * For comparison: a plain Rust static cleared by an XactCallback
//!   (`proto_static_set/get`), which parallel workers cannot see.

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};

use hmac::{Hmac, Mac};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{PgLogLevel, PgSqlErrorCode};
use sha2::Sha256;
use subtle::ConstantTimeEq;

::pgrx::pg_module_magic!();

static SIGNED: GucSetting<bool> = GucSetting::<bool>::new(false);
static KEYS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static CONTEXT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static MAX_TTL: GucSetting<i32> = GucSetting::<i32>::new(300);

const CONTEXT_NAME: &CStr = c"app.current_tenant_id";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Binding {
    slot: i32,
    xact_start: i64,
}

struct Cached {
    binding: Binding,
    token: String,
    tenant: uuid::Uuid,
}

thread_local! {
    /// The last internal token verified in this backend, and for which transaction.
    static CACHE: RefCell<Option<Cached>> = const { RefCell::new(None) };
    /// The tenant set_tenant_token() fixed for the current transaction.
    static FIXED: RefCell<Option<(Binding, uuid::Uuid)>> = const { RefCell::new(None) };
    /// The XactCallback variant: a tenant kept only in Rust memory.
    static STATIC_TENANT: RefCell<Option<uuid::Uuid>> = const { RefCell::new(None) };
}

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    GucRegistry::define_bool_guc(
        c"proto.signed",
        c"Signed tenant context (prototype).",
        c"",
        &SIGNED,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"proto.keys",
        c"kid:hex key pairs (prototype).",
        c"",
        &KEYS,
        GucContext::Sighup,
        GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
    );
    GucRegistry::define_int_guc(
        c"proto.max_token_ttl",
        c"Longest an app token may still be valid, in seconds.",
        c"",
        &MAX_TTL,
        1,
        86400,
        GucContext::Suset,
        GucFlags::default(),
    );
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            CONTEXT_NAME,
            c"The tenant context (prototype).",
            c"",
            &CONTEXT,
            GucContext::Userset,
            GucFlags::default(),
            Some(check_context),
            None,
            None,
        );
        pg_sys::RegisterXactCallback(Some(xact_callback), std::ptr::null_mut());
    }
}

// ---------------------------------------------------------------- keys, MACs

thread_local! {
    /// proto.keys as last parsed, with each key's internal (derived) key: parsed
    /// again only when the setting's text changes (a reload).
    static PARSED_KEYS: RefCell<(String, Vec<(String, Vec<u8>, [u8; 32])>)> = const { RefCell::new((String::new(), Vec::new())) };
    /// Set while set_tenant_token() writes a token it has just minted, so the
    /// check hook need not verify it again.
    static MINTING: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn with_key<T>(kid: &str, f: impl FnOnce(&[u8], &[u8; 32]) -> T) -> Option<T> {
    let raw = KEYS.get().map(|c| c.to_string_lossy().into_owned()).unwrap_or_default();
    PARSED_KEYS.with(|p| {
        let mut p = p.borrow_mut();
        if p.0 != raw {
            let parsed = parse_keys(&raw).into_iter().map(|(k, key)| { let ik = internal_key(&key); (k, key, ik) }).collect();
            *p = (raw, parsed);
        }
        p.1.iter().find(|(k, _, _)| k == kid).map(|(_, key, ik)| f(key, ik))
    })
}

fn parse_keys(raw: &str) -> Vec<(String, Vec<u8>)> {
    raw.split(',')
        .filter_map(|entry| {
            let (kid, hex) = entry.trim().split_once(':')?;
            let bytes = decode_hex(hex)?;
            (bytes.len() >= 32).then(|| (kid.to_owned(), bytes))
        })
        .collect()
}

fn key_for(kid: &str) -> Option<Vec<u8>> {
    with_key(kid, |key, _| key.to_vec())
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mac(key: &[u8], message: &str) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    m.update(message.as_bytes());
    m.finalize().into_bytes().into()
}

/// Internal tokens use a key derived from the app key, so an internal token
/// is never a valid app token and vice versa.
fn internal_key(key: &[u8]) -> [u8; 32] {
    mac(key, "platform-internal-context-v1")
}

fn mac_matches(expected: &[u8; 32], presented_hex: &str) -> bool {
    match decode_hex(presented_hex) {
        Some(p) if p.len() == 32 => expected.ct_eq(&p[..]).into(),
        _ => false,
    }
}

// ---------------------------------------------------------------- binding

fn is_parallel_worker() -> bool {
    unsafe { pg_sys::ParallelWorkerNumber >= 0 }
}

/// Which transaction a token belongs to: the leader's backend slot (a
/// parallel worker uses its leader's) and the transaction's start time, which
/// parallel workers inherit from the leader.
fn current_binding() -> Option<Binding> {
    unsafe {
        if !pg_sys::IsTransactionState() {
            return None;
        }
        let slot = if is_parallel_worker() {
            pg_sys::ParallelLeaderBackendId
        } else {
            pg_sys::MyBackendId
        };
        Some(Binding {
            slot,
            xact_start: pg_sys::GetCurrentTransactionStartTimestamp(),
        })
    }
}

fn binding_text(b: Binding) -> String {
    format!("{}-{}", b.slot, b.xact_start)
}

fn mint_internal(kid: &str, _key: &[u8], tenant: uuid::Uuid, b: Binding) -> String {
    let body = format!("i1.{kid}.{tenant}.{}", binding_text(b));
    let m = with_key(kid, |_, ik| mac(ik, &body)).expect("key present");
    format!("{body}.{}", hex(&m))
}

/// Why an internal token is refused (never echoes the token or a key).
#[derive(Debug)]
enum Refused {
    Malformed,
    UnknownKey,
    BadMac,
    OtherTransaction,
    NoTransaction,
}

fn verify_internal(token: &str) -> Result<uuid::Uuid, Refused> {
    if token.len() > 200 {
        return Err(Refused::Malformed);
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [tag, kid, tenant, binding, m] = parts[..] else { return Err(Refused::Malformed) };
    if tag != "i1" {
        return Err(Refused::Malformed);
    }
    let tenant = uuid::Uuid::try_parse(tenant).map_err(|_| Refused::Malformed)?;
    let body = format!("i1.{kid}.{tenant}.{binding}");
    let expected = with_key(kid, |_, ik| mac(ik, &body)).ok_or(Refused::UnknownKey)?;
    if !mac_matches(&expected, m) {
        return Err(Refused::BadMac);
    }
    let current = current_binding().ok_or(Refused::NoTransaction)?;
    if binding != binding_text(current) {
        return Err(Refused::OtherTransaction);
    }
    Ok(tenant)
}

// ---------------------------------------------------------------- the GUC gate

#[pg_guard]
unsafe extern "C-unwind" fn check_context(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    if !SIGNED.get() {
        return true; // legacy mode: anything, parsed (and refused if bad) when read
    }
    let value = if (*newval).is_null() {
        ""
    } else {
        CStr::from_ptr(*newval).to_str().unwrap_or("\u{fffd}")
    };
    if value.is_empty() {
        return true; // no tenant
    }
    if MINTING.with(|m| m.borrow().as_deref() == Some(value)) {
        return true;
    }
    if pg_sys::InitializingParallelWorker {
        // The leader's value, which passed the leader's gate; reads still verify.
        return true;
    }
    match verify_internal(value) {
        Ok(_) => true,
        Err(why) => {
            pg_sys::GUC_check_errcode(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE as i32);
            let msg = CString::new(format!(
                "app.current_tenant_id is set only by set_tenant_token() in signed mode ({why:?})"
            ))
            .unwrap();
            pg_sys::GUC_check_errmsg_string = pg_sys::pstrdup(msg.as_ptr());
            let hint = c"SELECT set_tenant_token($1) with a token minted by the application server.";
            pg_sys::GUC_check_errhint_string = pg_sys::pstrdup(hint.as_ptr());
            false
        }
    }
}

fn set_context_local(value: &str) {
    let v = CString::new(value).unwrap();
    unsafe {
        pg_sys::set_config_option(
            CONTEXT_NAME.as_ptr(),
            v.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_LOCAL,
            true,
            PgLogLevel::ERROR as i32,
            false,
        );
    }
}

// ---------------------------------------------------------------- SQL API

fn deny(msg: &str) -> ! {
    ErrorReport::new(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, msg.to_owned(), "ctxproto")
        .report(PgLogLevel::ERROR);
    unreachable!()
}

/// Verifies an app token and fixes the transaction's tenant.
#[pg_extern(volatile, parallel_unsafe)]
fn proto_set_tenant_token(token: &str) -> pgrx::Uuid {
    if !SIGNED.get() {
        deny("signed mode is off");
    }
    if token.len() > 200 {
        deny("malformed tenant token");
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [tag, kid, tenant, expires, m] = parts[..] else { deny("malformed tenant token") };
    if tag != "v1" {
        deny("malformed tenant token");
    }
    let Ok(tenant) = uuid::Uuid::try_parse(tenant) else { deny("malformed tenant token") };
    let Ok(expires) = expires.parse::<i64>() else { deny("malformed tenant token") };
    let Some(key) = key_for(kid) else { deny("tenant token signed with an unknown key") };
    // What the application signs: the canonical lower-case hyphenated id.
    let body = format!("platform-tenant-v1.{kid}.{}.{expires}", tenant.hyphenated());
    if !mac_matches(&mac(&key, &body), m) {
        deny("tenant token does not verify");
    }
    let now_s = unsafe { pg_sys::GetCurrentTimestamp() } / 1_000_000 + 946_684_800;
    if expires <= now_s {
        deny("tenant token expired");
    }
    if expires - now_s > MAX_TTL.get() as i64 {
        deny("tenant token valid for longer than proto.max_token_ttl");
    }
    let b = current_binding().expect("in a transaction");
    FIXED.with(|f| {
        let mut f = f.borrow_mut();
        match *f {
            Some((fb, ft)) if fb == b && ft != tenant => {
                deny("this transaction's tenant is already fixed")
            }
            _ => *f = Some((b, tenant)),
        }
    });
    let internal = mint_internal(kid, &key, tenant, b);
    MINTING.with(|m| *m.borrow_mut() = Some(internal.clone()));
    set_context_local(&internal);
    MINTING.with(|m| *m.borrow_mut() = None);
    CACHE.with(|c| *c.borrow_mut() = Some(Cached { binding: b, token: internal, tenant }));
    pgrx::Uuid::from_bytes(*tenant.as_bytes())
}

/// For tests only: mints an app token the way the application server would.
#[pg_extern(volatile, parallel_unsafe)]
fn proto_mint_app_token(tenant: pgrx::Uuid, ttl_seconds: i64, kid: &str) -> String {
    let tenant = uuid::Uuid::from_bytes(*tenant.as_bytes());
    let key = key_for(kid).unwrap_or_else(|| deny("unknown key"));
    let now_s = unsafe { pg_sys::GetCurrentTimestamp() } / 1_000_000 + 946_684_800;
    let expires = now_s + ttl_seconds;
    let body = format!("platform-tenant-v1.{kid}.{tenant}.{expires}");
    format!("v1.{kid}.{tenant}.{expires}.{}", hex(&mac(&key, &body)))
}

/// What the policies call. Legacy mode: the setting parsed as a UUID.
/// Signed mode: a verified internal token of this transaction, else nil.
#[pg_extern(stable, parallel_safe)]
fn proto_current_tenant() -> pgrx::Uuid {
    let nil = pgrx::Uuid::from_bytes([0; 16]);
    let raw = CONTEXT.get().map(|c| c.to_string_lossy().into_owned()).unwrap_or_default();
    if raw.is_empty() {
        return nil;
    }
    if !SIGNED.get() {
        return match uuid::Uuid::try_parse(&raw) {
            Ok(u) => pgrx::Uuid::from_bytes(*u.as_bytes()),
            Err(_) => {
                ErrorReport::new(PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION, "not a uuid", "ctxproto")
                    .report(PgLogLevel::ERROR);
                unreachable!()
            }
        };
    }
    let Some(b) = current_binding() else { return nil };
    let hit = CACHE.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|c| c.binding == b && c.token == raw)
            .map(|c| c.tenant)
    });
    let tenant = match hit {
        Some(t) => t,
        None => match verify_internal(&raw) {
            Ok(t) => {
                CACHE.with(|c| {
                    *c.borrow_mut() = Some(Cached { binding: b, token: raw, tenant: t })
                });
                t
            }
            Err(_) => return nil,
        },
    };
    pgrx::Uuid::from_bytes(*tenant.as_bytes())
}

/// Verification without the cache, to measure what the cache saves.
#[pg_extern(stable, parallel_safe)]
fn proto_current_tenant_uncached() -> Option<pgrx::Uuid> {
    let raw = CONTEXT.get()?.to_string_lossy().into_owned();
    verify_internal(&raw).ok().map(|t| pgrx::Uuid::from_bytes(*t.as_bytes()))
}

/// Which process evaluated it, to see where a function ran.
#[pg_extern(volatile, parallel_safe)]
fn proto_where() -> String {
    format!(
        "worker={} pid={} binding={:?}",
        is_parallel_worker(),
        unsafe { pg_sys::MyProcPid },
        current_binding()
    )
}

// ---------------------------------------------------------------- the XactCallback variant

#[pg_guard]
unsafe extern "C-unwind" fn xact_callback(event: pg_sys::XactEvent::Type, _arg: *mut c_void) {
    use pg_sys::XactEvent::*;
    if matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_ABORT | XACT_EVENT_PREPARE) {
        STATIC_TENANT.with(|s| *s.borrow_mut() = None);
    }
}

#[pg_extern(volatile, parallel_unsafe)]
fn proto_static_set(tenant: pgrx::Uuid) -> pgrx::Uuid {
    STATIC_TENANT.with(|s| *s.borrow_mut() = Some(uuid::Uuid::from_bytes(*tenant.as_bytes())));
    tenant
}

/// PARALLEL SAFE on purpose, to show that a worker does not see the static.
#[pg_extern(stable, parallel_safe)]
fn proto_static_get() -> Option<pgrx::Uuid> {
    STATIC_TENANT.with(|s| s.borrow().map(|u| pgrx::Uuid::from_bytes(*u.as_bytes())))
}

/// The same, PARALLEL RESTRICTED: the planner keeps it in the leader.
#[pg_extern(stable, parallel_restricted)]
fn proto_static_get_restricted() -> Option<pgrx::Uuid> {
    proto_static_get()
}
