//! The tenant context: which tenant the current transaction acts for.
//!
//! It lives in the setting `app.current_tenant_id`, so the document's
//! `SET app.current_tenant_id = '...'` keeps working, but applications should
//! call `set_tenant()`, which scopes it to the transaction (safe under
//! PgBouncer transaction pooling) and takes the id as a typed argument (nothing
//! to inject). Every policy compares against `get_current_tenant_id()`.

use std::ffi::CStr;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{PgLogLevel, PgSqlErrorCode};

use crate::error::PlatformError;
use crate::tenancy::setting::{parse_tenant_setting, TenantSetting};

const SETTING: &CStr = c"app.current_tenant_id";

/// The raw text of the setting, or None if it was never set in this session.
fn read_setting() -> Option<String> {
    // SAFETY: with missing_ok = true GetConfigOption returns NULL for an
    // unknown setting, or a pointer into the GUC's own storage that stays valid
    // until the setting changes; it is copied out before anything else runs.
    unsafe {
        let value = pg_sys::GetConfigOption(SETTING.as_ptr(), true, false);
        (!value.is_null()).then(|| CStr::from_ptr(value).to_string_lossy().into_owned())
    }
}

/// The current context, raising if the setting holds something that is not a UUID.
fn current_tenant(function: &'static str) -> TenantSetting {
    parse_tenant_setting(read_setting().as_deref())
        .unwrap_or_else(|bad| PlatformError::InvalidTenantSetting { value: bad.0 }.raise(function))
}

fn to_pg(uuid: uuid::Uuid) -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*uuid.as_bytes())
}

/// The tenant this transaction acts for, or the nil UUID when there is none
/// (which matches no row: no tenant can have the nil id). STABLE, so a policy
/// that writes `(SELECT get_current_tenant_id())` evaluates it once per query.
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

/// Sets the tenant context until the end of the current transaction and
/// returns the tenant. Not STRICT: a NULL must fail, not leave an earlier
/// context silently in place.
#[pg_extern(volatile, parallel_unsafe, create_or_replace)]
fn set_tenant(tenant: Option<pgrx::Uuid>) -> pgrx::Uuid {
    const NAME: &str = "set_tenant";
    let tenant = tenant.unwrap_or_else(|| PlatformError::NullTenant.raise(NAME));
    let tenant_uuid = uuid::Uuid::from_bytes(*tenant.as_bytes());
    if tenant_uuid.is_nil() {
        PlatformError::NilTenant.raise(NAME);
    }
    // SAFETY: a plain read of the transaction state, no pointers involved.
    if !unsafe { pg_sys::IsTransactionBlock() } {
        // Same code and spirit as Postgres' own "SET LOCAL can only be used in
        // transaction blocks": the context would end with this statement.
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_NO_ACTIVE_SQL_TRANSACTION,
            "set_tenant() outside a transaction block only lasts until the end of this statement",
            NAME,
        )
        .set_hint("Run BEGIN first, then set_tenant(), then the queries, then COMMIT.")
        .report(PgLogLevel::WARNING);
    }
    set_setting_for_transaction(&tenant_uuid.hyphenated().to_string());
    tenant
}

/// `set_config(name, value, is_local => true)`: the value reaches it as an
/// argument, never as SQL text.
fn set_setting_for_transaction(value: &str) {
    let name = SETTING.to_str().expect("the setting name is ASCII");
    Spi::run_with_args(
        "SELECT pg_catalog.set_config($1, $2, true)",
        &[name.into(), value.into()],
    )
    .unwrap_or_else(|e| panic!("set_config failed: {e}"));
}
