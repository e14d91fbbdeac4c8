//! The tenant context: which tenant the current transaction acts for.
//!
//! It lives in the setting `app.current_tenant_id`, which the library
//! defines (settings.rs) with the check hook below. Every policy compares
//! against `get_current_tenant_id()`. How far the setting is trusted is the
//! operator's choice, `platform.tenant_context` (docs/security.md):
//!
//! * `setting` (the default, 0.2.0's behaviour): whatever the setting holds
//!   is the tenant, so the document's `SET app.current_tenant_id = '...'`
//!   keeps working; applications call `set_tenant()` or `set_tenant_token()`.
//! * `signed`: the setting accepts only '' or an internal token the
//!   extension minted for this very transaction (token.rs), after
//!   `set_tenant_token()` verified an app token signed with a key of
//!   `platform.tenant_keys`. Reads verify it again (cached per transaction),
//!   so a value copied from another transaction, backend or database, a
//!   session-level SET that outlived its transaction, or a bare UUID reads
//!   as no tenant. The first tenant of a transaction is pinned.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_void, CStr, CString};
use std::rc::Rc;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{PgLogLevel, PgSqlErrorCode};

use crate::error::{PlatformError, CONTEXT_REFUSED_HINT, CONTEXT_REFUSED_MESSAGE};
use crate::settings::{self, TenantContextMode};
use crate::tenancy::setting::{parse_tenant_setting, TenantSetting};
use crate::tenancy::token::{self, Binding, KeyRing, TokenError};

const SETTING: &CStr = c"app.current_tenant_id";
/// 2000-01-01 (PostgreSQL's epoch) in unix seconds.
const POSTGRES_EPOCH_UNIX: i64 = 946_684_800;

/// An internal token this backend verified (or minted), for which transaction.
struct Verified {
    binding: Binding,
    token: String,
    tenant: uuid::Uuid,
}

thread_local! {
    /// `platform.tenant_keys` as last parsed, parsed again only when its text
    /// changes (a reload).
    static KEYS: RefCell<Option<(String, Rc<KeyRing>)>> = const { RefCell::new(None) };
    /// The last internal token verified: a read that finds the same token in
    /// the same transaction is a string comparison. Keyed by the binding, so
    /// it goes stale with its transaction by itself (no callback to miss).
    static VERIFIED: RefCell<Option<Verified>> = const { RefCell::new(None) };
    /// The tenant fixed for a transaction by set_tenant_token() (and, in
    /// signed mode, set_tenant() and begin_new_tenant()).
    static PIN: Cell<Option<(Binding, uuid::Uuid)>> = const { Cell::new(None) };
    /// The token being written by this backend right now, so that the check
    /// hook lets it in without verifying it again.
    static MINTING: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn key_ring() -> Rc<KeyRing> {
    settings::with_tenant_keys_text(|raw| {
        KEYS.with(|keys| {
            let mut keys = keys.borrow_mut();
            match &*keys {
                Some((text, ring)) if text == raw => ring.clone(),
                _ => {
                    let ring = Rc::new(KeyRing::parse(raw));
                    *keys = Some((raw.to_owned(), ring.clone()));
                    ring
                }
            }
        })
    })
}

/// This backend's slot, or its leader's in a parallel worker.
#[cfg(any(feature = "pg15", feature = "pg16"))]
fn leader_slot() -> i32 {
    // SAFETY: plain reads of backend-global integers.
    unsafe {
        if pg_sys::ParallelWorkerNumber >= 0 {
            pg_sys::ParallelLeaderBackendId
        } else {
            pg_sys::MyBackendId
        }
    }
}

/// This backend's slot, or its leader's in a parallel worker.
#[cfg(not(any(feature = "pg15", feature = "pg16")))]
fn leader_slot() -> i32 {
    // SAFETY: plain reads of backend-global integers.
    unsafe {
        if pg_sys::ParallelWorkerNumber >= 0 {
            pg_sys::ParallelLeaderProcNumber
        } else {
            pg_sys::MyProcNumber
        }
    }
}

/// The local transaction id of a backend's PGPROC.
#[cfg(any(feature = "pg15", feature = "pg16"))]
unsafe fn local_xid(proc_: *const pg_sys::PGPROC) -> u32 {
    (*proc_).lxid
}

/// The local transaction id of a backend's PGPROC.
#[cfg(not(any(feature = "pg15", feature = "pg16")))]
unsafe fn local_xid(proc_: *const pg_sys::PGPROC) -> u32 {
    (*proc_).vxid.lxid
}

/// The current transaction of this backend (of the leader, in a worker,
/// which inherits the leader's transaction start and reads the leader's
/// local transaction id from its PGPROC), or None outside one.
fn current_binding() -> Option<Binding> {
    // SAFETY: reads of backend state and of PGPROCs in shared memory, which
    // live as long as the server; a worker's leader is in the transaction
    // the worker serves for as long as the worker runs.
    unsafe {
        if !pg_sys::IsTransactionState() || pg_sys::MyProc.is_null() {
            return None;
        }
        let owner = if pg_sys::ParallelWorkerNumber >= 0 {
            (*pg_sys::MyProc).lockGroupLeader
        } else {
            pg_sys::MyProc
        };
        if owner.is_null() {
            return None;
        }
        Some(Binding {
            database: pg_sys::MyDatabaseId.to_u32(),
            slot: leader_slot(),
            local_xid: local_xid(owner),
            xact_start: pg_sys::GetCurrentTransactionStartTimestamp(),
        })
    }
}

fn now_unix() -> i64 {
    // SAFETY: reads the clock.
    let since_2000 = unsafe { pg_sys::GetCurrentTimestamp() };
    since_2000.div_euclid(1_000_000) + POSTGRES_EPOCH_UNIX
}

fn signed_mode() -> bool {
    settings::tenant_context_mode() == TenantContextMode::Signed
}

/// In signed mode, what the setting holds: no tenant, a verified tenant of
/// this transaction, or why it is refused.
fn verified_context() -> Result<Option<uuid::Uuid>, TokenError> {
    settings::with_current_tenant_text(|raw| {
        if raw.is_empty() {
            return Ok(None);
        }
        let binding = current_binding();
        let cached = VERIFIED.with(|v| {
            v.borrow()
                .as_ref()
                .filter(|c| Some(c.binding) == binding && c.token == raw)
                .map(|c| c.tenant)
        });
        if cached.is_some() {
            return Ok(cached);
        }
        let tenant = token::verify_internal(&key_ring(), raw, binding)?;
        if let Some(binding) = binding {
            VERIFIED.with(|v| {
                *v.borrow_mut() = Some(Verified {
                    binding,
                    token: raw.to_owned(),
                    tenant,
                })
            });
        }
        Ok(Some(tenant))
    })
}

/// The current context. In setting mode a value that is not a UUID raises;
/// in signed mode anything that does not verify is no tenant.
fn current_tenant(function: &'static str) -> TenantSetting {
    if signed_mode() {
        return match verified_context() {
            Ok(Some(tenant)) => TenantSetting::Tenant(tenant),
            Ok(None) | Err(_) => TenantSetting::NoTenant,
        };
    }
    settings::with_current_tenant_text(|raw| parse_tenant_setting(Some(raw)))
        .unwrap_or_else(|bad| PlatformError::InvalidTenantSetting { value: bad.0 }.raise(function))
}

fn to_pg(uuid: uuid::Uuid) -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*uuid.as_bytes())
}

fn from_pg(uuid: pgrx::Uuid) -> uuid::Uuid {
    uuid::Uuid::from_bytes(*uuid.as_bytes())
}

/// The check hook of `app.current_tenant_id`. In setting mode it takes
/// anything (a bad value raises when read, as in 0.2.0). In signed mode only
/// '' (no tenant), a parallel worker's copy of its leader's value (verified
/// again when read), the token this backend is writing, or an internal token
/// of this transaction: so `SET`, `SET LOCAL`, `set_config()`, a function's
/// `SET` clause and `ALTER ROLE ... SET` cannot name a tenant. The refusal
/// never shows the value.
///
/// # Safety
/// Called by PostgreSQL's GUC machinery with a valid (possibly NULL) string.
#[pg_guard]
pub unsafe extern "C-unwind" fn check_current_tenant(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    if !signed_mode() || (*newval).is_null() {
        return true;
    }
    let accepted = match CStr::from_ptr(*newval).to_str() {
        Ok("") => true,
        Ok(_) if pg_sys::InitializingParallelWorker => true,
        Ok(value) => {
            MINTING.with(|m| m.borrow().as_deref() == Some(value))
                || token::verify_internal(&key_ring(), value, current_binding()).is_ok()
        }
        Err(_) => false,
    };
    if !accepted {
        pg_sys::GUC_check_errcode(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE as i32);
        pg_sys::GUC_check_errmsg_string = pg_sys::pstrdup(CONTEXT_REFUSED_MESSAGE.as_ptr());
        pg_sys::GUC_check_errhint_string = pg_sys::pstrdup(CONTEXT_REFUSED_HINT.as_ptr());
    }
    accepted
}

/// `set_config('app.current_tenant_id', value, true)` without SPI.
fn set_context_local(value: &str) {
    let value = CString::new(value).expect("a token or UUID has no NUL");
    // SAFETY: both strings outlive the call, which copies them; an error is
    // raised (elevel ERROR) rather than returned.
    unsafe {
        pg_sys::set_config_option(
            SETTING.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_LOCAL,
            true,
            PgLogLevel::ERROR as i32,
            false,
        );
    }
}

/// Clears the minting marker however the write ends (an error unwinds).
struct Minting;

impl Minting {
    fn start(token: &str) -> Minting {
        MINTING.with(|m| *m.borrow_mut() = Some(token.to_owned()));
        Minting
    }
}

impl Drop for Minting {
    fn drop(&mut self) {
        MINTING.with(|m| *m.borrow_mut() = None);
    }
}

/// Fixes `tenant` as the transaction's tenant, or raises if another one is.
fn pin(binding: Binding, tenant: uuid::Uuid, function: &'static str) {
    if let Some((pinned_in, pinned)) = PIN.with(Cell::get) {
        if pinned_in == binding && pinned != tenant {
            PlatformError::TenantContextPinned.raise(function)
        }
    }
    PIN.with(|p| p.set(Some((binding, tenant))));
}

/// Sets the context to `tenant` until the end of the transaction (or of the
/// calling function's SET clause): the bare id in setting mode, an internal
/// token bound to this transaction in signed mode.
fn enter(tenant: uuid::Uuid, pinned: bool, function: &'static str) {
    let binding = current_binding().expect("a function call runs in a transaction");
    if pinned {
        pin(binding, tenant, function);
    }
    if !signed_mode() {
        set_context_local(&tenant.hyphenated().to_string());
        return;
    }
    let ring = key_ring();
    let key = ring
        .signing_key()
        .unwrap_or_else(|| PlatformError::NoTenantKey.raise(function));
    let minted = token::mint_internal(key, tenant, binding);
    {
        let _minting = Minting::start(&minted);
        set_context_local(&minted);
    }
    VERIFIED.with(|v| {
        *v.borrow_mut() = Some(Verified {
            binding,
            token: minted,
            tenant,
        })
    });
}

/// The same warning (and code) as PostgreSQL's "SET LOCAL can only be used in
/// transaction blocks": outside one the context ends with the statement.
fn warn_outside_transaction_block(function: &'static str) {
    // SAFETY: a plain read of the transaction state.
    if !unsafe { pg_sys::IsTransactionBlock() } {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_NO_ACTIVE_SQL_TRANSACTION,
            format!("{function}() outside a transaction block only lasts until the end of this statement"),
            function,
        )
        .set_hint(format!(
            "Run BEGIN first, then {function}(), then the queries, then COMMIT."
        ))
        .report(PgLogLevel::WARNING);
    }
}

/// Whether the session's login role may name a tenant in signed mode: a
/// superuser, or a role an operator trusted (grant_trusted_context). The
/// session user, not the current one: a SECURITY DEFINER function is no way
/// round it.
fn session_is_trusted() -> bool {
    // SAFETY: catalog lookups by oid, inside a transaction.
    if unsafe { pg_sys::superuser_arg(pg_sys::GetSessionUserId()) } {
        return true;
    }
    // The extension's own marker function, found through pg_depend (not the
    // search_path, which the caller controls).
    Spi::get_one::<bool>(
        "SELECT pg_catalog.has_function_privilege(session_user, p.oid, 'EXECUTE')
         FROM pg_catalog.pg_proc p
         JOIN pg_catalog.pg_depend d
           ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid
          AND d.deptype = 'e'
         JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'platform'
         WHERE p.proname = 'platform_trusted_context'",
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// The tenant this transaction acts for, or the nil UUID when there is none
/// (which matches no row: no tenant can have the nil id). STABLE, so a policy
/// that writes `(SELECT get_current_tenant_id())` evaluates it once per query.
/// In signed mode a parallel worker verifies against its leader's transaction.
#[pg_extern(stable, parallel_safe, create_or_replace)]
pub(crate) fn get_current_tenant_id() -> pgrx::Uuid {
    match current_tenant("get_current_tenant_id") {
        TenantSetting::Tenant(tenant) => to_pg(tenant),
        TenantSetting::NoTenant => to_pg(uuid::Uuid::nil()),
    }
}

/// The default of every tenant_id column: the context's tenant, or an error
/// that says to set one (instead of a foreign-key error about the nil UUID).
#[pg_extern(stable, parallel_safe, create_or_replace)]
fn require_current_tenant_id() -> pgrx::Uuid {
    match current_tenant("require_current_tenant_id") {
        TenantSetting::Tenant(tenant) => to_pg(tenant),
        TenantSetting::NoTenant => {
            PlatformError::NoTenantContext.raise("require_current_tenant_id")
        }
    }
}

/// The context's tenant for a function that acts for one (records, stores,
/// rotates): without a context it raises 42501 with a hint naming that
/// function. Functions that only read return no rows instead, as row-level
/// security does.
#[pg_extern(stable, parallel_safe, create_or_replace)]
fn platform_tenant_required_by(function_name: &str) -> pgrx::Uuid {
    const NAME: &str = "platform_tenant_required_by";
    match current_tenant(NAME) {
        TenantSetting::Tenant(tenant) => to_pg(tenant),
        TenantSetting::NoTenant => PlatformError::NoTenantContextFor {
            function: function_name.to_owned(),
        }
        .raise(NAME),
    }
}

fn checked_tenant(tenant: Option<pgrx::Uuid>, function: &'static str) -> uuid::Uuid {
    let tenant = tenant.unwrap_or_else(|| PlatformError::NullTenant.raise(function));
    let tenant = from_pg(tenant);
    if tenant.is_nil() {
        PlatformError::NilTenant.raise(function);
    }
    tenant
}

/// Sets the tenant context until the end of the current transaction and
/// returns the tenant. Not STRICT: a NULL must fail, not leave an earlier
/// context silently in place. In signed mode only for a trusted session
/// (a superuser, or grant_trusted_context): applications call
/// set_tenant_token().
#[pg_extern(volatile, parallel_unsafe, create_or_replace)]
fn set_tenant(tenant: Option<pgrx::Uuid>) -> pgrx::Uuid {
    const NAME: &str = "set_tenant";
    let tenant = checked_tenant(tenant, NAME);
    let signed = signed_mode();
    if signed && !session_is_trusted() {
        PlatformError::SetTenantNotTrusted.raise(NAME);
    }
    warn_outside_transaction_block(NAME);
    enter(tenant, signed, NAME);
    to_pg(tenant)
}

/// Verifies an application's tenant token (its key id, signature, expiry and
/// platform.tenant_token_max_ttl) and sets the context to its tenant until
/// the end of the transaction; a second, different tenant in the same
/// transaction is refused. Works in both modes (in setting mode it sets the
/// bare id), so applications can switch before the operator flips the mode.
/// No error ever shows the token.
#[pg_extern(volatile, parallel_unsafe, create_or_replace)]
fn set_tenant_token(token: Option<&str>) -> pgrx::Uuid {
    const NAME: &str = "set_tenant_token";
    let token = token.unwrap_or_else(|| PlatformError::NullArgument { name: "token" }.raise(NAME));
    let ring = key_ring();
    let max_ttl = settings::tenant_token_max_ttl();
    let tenant = token::verify_tenant_token(&ring, token, now_unix(), max_ttl).unwrap_or_else(
        |why| match why {
            // Say so when the server has no key at all (an operator's fix).
            TokenError::UnknownKey if ring.len() == 0 => PlatformError::NoTenantKey.raise(NAME),
            _ => PlatformError::TenantTokenRefused(why).raise(NAME),
        },
    );
    warn_outside_transaction_block(NAME);
    enter(tenant, true, NAME);
    to_pg(tenant)
}

/// For the extension's own provisioning functions (create_tenant,
/// seed_demo_tenant, begin_new_tenant; EXECUTE for the owner only): sets the
/// context to a tenant being created, in either mode, optionally pinned.
#[pg_extern(volatile, parallel_unsafe, create_or_replace)]
fn platform_enter_tenant(tenant: Option<pgrx::Uuid>, pinned: Option<bool>) -> pgrx::Uuid {
    const NAME: &str = "platform_enter_tenant";
    let tenant = checked_tenant(tenant, NAME);
    enter(tenant, pinned.unwrap_or(true), NAME);
    to_pg(tenant)
}

/// What this backend's tenant context is, for diagnostics: the mode, the
/// tenant (NULL without one) and its state: 'none', 'set' (setting mode),
/// 'not a uuid' (setting mode), 'verified' or 'refused: <why>' (signed
/// mode). Never the token.
#[pg_extern(volatile, parallel_unsafe, create_or_replace)]
fn platform_tenant_context() -> TableIterator<
    'static,
    (
        name!(mode, String),
        name!(tenant, Option<pgrx::Uuid>),
        name!(state, String),
    ),
> {
    let (mode, tenant, state) = if signed_mode() {
        match verified_context() {
            Ok(None) => ("signed", None, "none".to_owned()),
            Ok(Some(tenant)) => ("signed", Some(to_pg(tenant)), "verified".to_owned()),
            Err(why) => ("signed", None, format!("refused: {}", why.reason())),
        }
    } else {
        match settings::with_current_tenant_text(|raw| parse_tenant_setting(Some(raw))) {
            Ok(TenantSetting::NoTenant) => ("setting", None, "none".to_owned()),
            Ok(TenantSetting::Tenant(tenant)) => ("setting", Some(to_pg(tenant)), "set".to_owned()),
            Err(_) => ("setting", None, "not a uuid".to_owned()),
        }
    };
    TableIterator::once((mode.to_owned(), tenant, state))
}

/// A new `kid:hex` entry for platform.tenant_keys from the server's strong
/// random source. Nothing is stored: the operator puts it into a file that
/// postgresql.conf includes, and the application gets the same kid and key.
#[pg_extern(volatile, parallel_unsafe, create_or_replace)]
fn platform_new_tenant_key() -> String {
    let mut random = [0u8; 36];
    // SAFETY: pg_strong_random writes at most `len` bytes into the buffer.
    if !unsafe { pg_sys::pg_strong_random(random.as_mut_ptr().cast(), random.len()) } {
        PlatformError::NoRandomness.raise("platform_new_tenant_key")
    }
    token::new_key_entry(&random)
}

/// How many entries of platform.tenant_keys are usable and how many are left
/// out as malformed (never which, nor their values): for platform_audit().
#[pg_extern(volatile, parallel_unsafe, create_or_replace)]
fn platform_tenant_keys_status(
) -> TableIterator<'static, (name!(usable, i32), name!(malformed, i32))> {
    let ring = key_ring();
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    TableIterator::once((count(ring.len()), count(ring.malformed)))
}
