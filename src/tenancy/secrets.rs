//! Secrets the application presents before any tenant is known: widget API
//! keys and Auth.js session tokens.
//!
//! API keys are stored only as a SHA-256 digest, so a leaked database (or
//! dump, or replica) holds no usable key. Session tokens stay as Auth.js
//! writes them (its adapter reads them back), but are looked up through an
//! index on their digest. Either way the value a lookup compares is a digest:
//! an attacker who times the B-tree probe learns about digests, which tells
//! nothing about any key, and the final comparison below takes the same time
//! wherever two digests differ.

use pgrx::prelude::*;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// SHA-256 of the secret's UTF-8 bytes. Keys are generated with at least 128
/// random bits (see `platform_new_api_key()`), so a fast unsalted hash is
/// enough: there is nothing to guess that a slow hash would protect.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether two byte strings are equal, in time that depends only on their
/// lengths (a digest's length is public), never on the first differing byte.
pub fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The digest of a secret, for storage and for index lookups. IMMUTABLE, so
/// it can stand in an index expression (auth_sessions_token_digest_idx).
#[pg_extern(
    immutable,
    parallel_safe,
    create_or_replace,
    name = "platform_secret_digest"
)]
fn secret_digest(secret: &str) -> Vec<u8> {
    digest(secret).to_vec()
}

/// The last comparison of every lookup by secret.
#[pg_extern(
    immutable,
    parallel_safe,
    create_or_replace,
    name = "platform_secret_equal"
)]
fn secret_equal(stored: &[u8], presented: &[u8]) -> bool {
    equal_in_constant_time(stored, presented)
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn digest_is_sha256_of_the_utf8_bytes() {
        // FIPS 180-2 test vector.
        assert_eq!(
            hex(&digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(digest("clé"), digest("cle"));
    }

    #[test]
    fn equality_compares_every_byte() {
        let a = digest("pk_live_one");
        let mut b = a;
        assert!(equal_in_constant_time(&a, &b));
        b[31] ^= 1;
        assert!(!equal_in_constant_time(&a, &b));
        b = a;
        b[0] ^= 0x80;
        assert!(!equal_in_constant_time(&a, &b));
        assert!(!equal_in_constant_time(&a, &a[..31]));
        assert!(equal_in_constant_time(b"", b""));
    }
}
