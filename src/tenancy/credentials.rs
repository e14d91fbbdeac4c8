//! The SQL face of `passwords.rs`, for sql/tenancy/credentials.sql. Every
//! function here is for the extension's own definer functions and triggers
//! (revoked from PUBLIC in privileges.sql): applications call
//! `set_password()` and `verify_password()`.

use std::cell::RefCell;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::PlatformError;
use crate::settings;
use crate::tenancy::passwords::{self, Cost, Scheme, Written, MAX_PASSWORD_BYTES};

fn password_bytes<'a>(password: Option<&'a str>, function: &'static str) -> &'a [u8] {
    let Some(password) = password else {
        PlatformError::NullArgument { name: "password" }.raise(function)
    };
    if password.len() > MAX_PASSWORD_BYTES {
        PlatformError::PasswordTooLong {
            bytes: password.len(),
        }
        .raise(function)
    }
    password.as_bytes()
}

fn random_salt() -> [u8; 16] {
    let mut salt = [0u8; 16];
    // SAFETY: pg_strong_random writes at most `len` bytes into the buffer.
    let filled = unsafe { pg_sys::pg_strong_random(salt.as_mut_ptr().cast(), salt.len()) };
    if !filled {
        PlatformError::NoRandomness.raise("platform_password_hash")
    }
    salt
}

thread_local! {
    /// A hash of nothing anyone knows, at the current cost: what a check runs
    /// when there is no Argon2id hash to run (an unknown address, a legacy
    /// hash), so that every outcome takes as long. One per backend and cost.
    static DECOY: RefCell<Option<(Cost, String)>> = const { RefCell::new(None) };
}

fn decoy_hash(cost: Cost) -> String {
    DECOY.with(|decoy| {
        let mut decoy = decoy.borrow_mut();
        match &*decoy {
            Some((made_at, hash)) if *made_at == cost => hash.clone(),
            _ => {
                let hash = passwords::hash(&random_salt(), &random_salt(), cost);
                *decoy = Some((cost, hash.clone()));
                hash
            }
        }
    })
}

/// The scheme of a value written into `users.password_hash`: NULL for the
/// marker, `'unrecognized'` for anything that is not a hash in bounds.
#[pg_extern(immutable, parallel_safe, strict, create_or_replace)]
fn platform_password_scheme(stored: &str) -> Option<&'static str> {
    match passwords::classify(stored) {
        Written::Marker => None,
        Written::Hash(scheme) => Some(scheme.name()),
    }
}

/// A new Argon2id hash of `password`, at the cost the settings give.
#[pg_extern(volatile, parallel_unsafe, create_or_replace)]
fn platform_password_hash(password: Option<&str>) -> String {
    let bytes = password_bytes(password, "platform_password_hash");
    if bytes.is_empty() {
        PlatformError::EmptyPassword.raise("platform_password_hash")
    }
    passwords::hash(bytes, &random_salt(), settings::password_cost())
}

/// Whether `password` matches the stored hash; with no hash (NULL scheme),
/// false after the same work as a real check.
#[pg_extern(volatile, parallel_unsafe, create_or_replace)]
fn platform_password_matches(
    scheme: Option<&str>,
    stored: Option<&str>,
    password: Option<&str>,
) -> bool {
    let bytes = password_bytes(password, "platform_password_matches");
    let scheme = scheme.map(|name| Scheme::from_name(name).unwrap_or(Scheme::Unrecognized));
    let matched = match (scheme, stored) {
        (Some(scheme), Some(stored)) => passwords::matches(scheme, stored, bytes),
        _ => false,
    };
    if passwords::costs_less_than_argon2(scheme) {
        let decoy = decoy_hash(settings::password_cost());
        // The result is known (false); the work is the point.
        std::hint::black_box(passwords::matches(Scheme::Argon2id, &decoy, bytes));
    }
    matched
}

/// Whether a hash that matched should be replaced by a new Argon2id one.
#[pg_extern(stable, parallel_safe, strict, create_or_replace)]
fn platform_password_needs_rehash(scheme: &str, stored: &str) -> bool {
    let scheme = Scheme::from_name(scheme).unwrap_or(Scheme::Unrecognized);
    passwords::needs_rehash(scheme, stored, settings::password_cost())
}
