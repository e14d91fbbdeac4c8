//! Passwords, hashed and checked inside the database, so that no hash ever
//! reaches an application role.
//!
//! `users.password_hash` keeps the design document's name and its Drizzle
//! column, but what a role reads there is a marker: a hash written into it
//! (the document's seed, a Drizzle insert) moves to `user_credentials`, a
//! table only the extension's owner reads (sql/tenancy/credentials.sql).
//! `verify_password()` checks a password against it and returns ids only.
//!
//! New hashes are Argon2id (memory-hard, RFC 9106) with the cost the
//! `platform.password_*` settings give. Hashes an application stored before,
//! the document's unsalted SHA-256 hex and bcrypt, are accepted as they are
//! and replaced by Argon2id at the user's next successful login.
//!
//! Every hash is checked against hard bounds on its own parameters before it
//! is stored: a hash is data a tenant writes, and one with a huge memory or
//! iteration count would make each login attempt a denial of service.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};

use crate::tenancy::secrets::equal_in_constant_time;

/// What `users.password_hash` holds once its hash has moved to
/// `user_credentials`. Writing it back (a whole row read and saved again)
/// changes nothing.
pub const STORED_MARKER: &str = "platform:stored";

/// Longest password accepted, in bytes: Argon2 takes any length in linear
/// time, this only keeps one call's work small.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Bounds on the parameters of any stored Argon2 hash and on the settings.
pub const MAX_MEMORY_KIB: u32 = 262_144;
pub const MIN_MEMORY_KIB: u32 = 1_024;
pub const MAX_ITERATIONS: u32 = 10;
const MAX_LANES: u32 = 4;
/// bcrypt's cost is a power of two: each step doubles the work.
const MAX_BCRYPT_COST: u32 = 15;

const SALT_BYTES: usize = 16;
const OUTPUT_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// A PHC string `$argon2id$v=19$m=...,t=...,p=...$salt$hash`.
    Argon2id,
    /// The design document's `sha256(password)` as 64 hex digits.
    LegacySha256,
    /// `$2a$`, `$2b$` or `$2y$`, 60 characters.
    Bcrypt,
    /// Kept by an upgrade from a value that is none of the above; never
    /// matches, so the user needs a new password.
    Unrecognized,
}

impl Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Self::Argon2id => "argon2id",
            Self::LegacySha256 => "sha256",
            Self::Bcrypt => "bcrypt",
            Self::Unrecognized => "unrecognized",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Argon2id,
            Self::LegacySha256,
            Self::Bcrypt,
            Self::Unrecognized,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// What a value written into `users.password_hash` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The marker: the hash is already stored.
    Marker,
    Hash(Scheme),
}

/// Classifies a written value. Anything that is not a hash in bounds (a
/// password in clear, most likely) is `Hash(Scheme::Unrecognized)`.
pub fn classify(value: &str) -> Written {
    if value == STORED_MARKER {
        return Written::Marker;
    }
    let scheme = if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Scheme::LegacySha256
    } else if argon2_params(value).is_some_and(|p| within_bounds(&p)) {
        Scheme::Argon2id
    } else if bcrypt_cost(value).is_some_and(|cost| cost <= MAX_BCRYPT_COST) {
        Scheme::Bcrypt
    } else {
        Scheme::Unrecognized
    };
    Written::Hash(scheme)
}

/// The cost of new hashes: memory in KiB and passes over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub memory_kib: u32,
    pub iterations: u32,
}

fn hasher(cost: Cost) -> Argon2<'static> {
    let params = Params::new(cost.memory_kib, cost.iterations, 1, Some(OUTPUT_BYTES))
        .expect("the settings' bounds keep Argon2's parameters valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A new Argon2id PHC string for `password`.
pub fn hash(password: &[u8], salt: &[u8; SALT_BYTES], cost: Cost) -> String {
    let salt = SaltString::encode_b64(salt).expect("16 bytes are a valid salt");
    hasher(cost)
        .hash_password(password, &salt)
        .expect("a bounded password hashes")
        .to_string()
}

/// Whether `password` is the one `stored` (of `scheme`) was made from.
/// Argon2 and bcrypt compare in constant time themselves.
pub fn matches(scheme: Scheme, stored: &str, password: &[u8]) -> bool {
    match scheme {
        Scheme::Argon2id => match PasswordHash::new(stored) {
            Ok(parsed) if argon2_params(stored).is_some_and(|p| within_bounds(&p)) => {
                Argon2::default().verify_password(password, &parsed).is_ok()
            }
            _ => false,
        },
        Scheme::LegacySha256 => {
            let presented = hex(&Sha256::digest(password));
            equal_in_constant_time(presented.as_bytes(), stored.to_ascii_lowercase().as_bytes())
        }
        Scheme::Bcrypt => {
            bcrypt_cost(stored).is_some_and(|cost| cost <= MAX_BCRYPT_COST)
                && bcrypt::verify(password, stored).unwrap_or(false)
        }
        Scheme::Unrecognized => false,
    }
}

/// Whether a matching hash should be replaced by a new one: anything but
/// Argon2id, or Argon2id below the current cost.
pub fn needs_rehash(scheme: Scheme, stored: &str, cost: Cost) -> bool {
    match (scheme, argon2_params(stored)) {
        (Scheme::Argon2id, Some(p)) => p.m_cost() < cost.memory_kib || p.t_cost() < cost.iterations,
        _ => true,
    }
}

/// Whether the legacy and unknown-address paths should burn one Argon2id
/// computation so that they take as long as a real check.
pub fn costs_less_than_argon2(scheme: Option<Scheme>) -> bool {
    !matches!(scheme, Some(Scheme::Argon2id) | Some(Scheme::Bcrypt))
}

fn argon2_params(value: &str) -> Option<Params> {
    if !value.starts_with("$argon2id$") {
        return None;
    }
    let parsed = PasswordHash::new(value).ok()?;
    parsed.hash?;
    Params::try_from(&parsed).ok()
}

fn within_bounds(params: &Params) -> bool {
    params.m_cost() <= MAX_MEMORY_KIB
        && params.t_cost() <= MAX_ITERATIONS
        && params.p_cost() <= MAX_LANES
}

fn bcrypt_cost(value: &str) -> Option<u32> {
    let rest = value
        .strip_prefix("$2a$")
        .or_else(|| value.strip_prefix("$2b$"))
        .or_else(|| value.strip_prefix("$2y$"))?;
    if value.len() != 60 || rest.as_bytes().get(2) != Some(&b'$') {
        return None;
    }
    rest[..2].parse().ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    const CHEAP: Cost = Cost {
        memory_kib: MIN_MEMORY_KIB,
        iterations: 1,
    };
    const SALT: [u8; SALT_BYTES] = *b"0123456789abcdef";
    /// sha256("password123"), as the design document's seed stores it.
    const DOCUMENT_SEED: &str = "ef92b778bafe771e89245b89ecbc08a44a4e166c06659911881f383d4473e94f";

    #[test]
    fn the_marker_and_each_scheme_are_recognised() {
        assert_eq!(classify(STORED_MARKER), Written::Marker);
        assert_eq!(classify(DOCUMENT_SEED), Written::Hash(Scheme::LegacySha256));
        assert_eq!(
            classify(&DOCUMENT_SEED.to_ascii_uppercase()),
            Written::Hash(Scheme::LegacySha256)
        );
        assert_eq!(
            classify(&hash(b"pw", &SALT, CHEAP)),
            Written::Hash(Scheme::Argon2id)
        );
        let bcrypt = bcrypt::hash_with_salt("pw", 4, SALT).unwrap().to_string();
        assert_eq!(classify(&bcrypt), Written::Hash(Scheme::Bcrypt));
        for clear in ["password123", "", "$argon2id$", "$2b$04$short", "x"] {
            assert_eq!(
                classify(clear),
                Written::Hash(Scheme::Unrecognized),
                "{clear}"
            );
        }
    }

    #[test]
    fn hashes_with_a_cost_beyond_the_bounds_are_not_accepted() {
        let heavy = format!(
            "$argon2id$v=19$m={},t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            MAX_MEMORY_KIB * 2
        );
        assert_eq!(classify(&heavy), Written::Hash(Scheme::Unrecognized));
        assert!(!matches(Scheme::Argon2id, &heavy, b"pw"));
        let slow = bcrypt::hash_with_salt("pw", 4, SALT)
            .unwrap()
            .to_string()
            .replacen("$04$", "$31$", 1);
        assert_eq!(classify(&slow), Written::Hash(Scheme::Unrecognized));
        assert!(!matches(Scheme::Bcrypt, &slow, b"pw"));
    }

    #[test]
    fn each_scheme_matches_its_password_only() {
        let argon = hash(b"correct horse", &SALT, CHEAP);
        assert!(matches(Scheme::Argon2id, &argon, b"correct horse"));
        assert!(!matches(Scheme::Argon2id, &argon, b"correct horsE"));
        assert!(matches(Scheme::LegacySha256, DOCUMENT_SEED, b"password123"));
        assert!(matches(
            Scheme::LegacySha256,
            &DOCUMENT_SEED.to_ascii_uppercase(),
            b"password123"
        ));
        assert!(!matches(
            Scheme::LegacySha256,
            DOCUMENT_SEED,
            b"password124"
        ));
        let bcrypt = bcrypt::hash_with_salt("s3cret", 4, SALT)
            .unwrap()
            .to_string();
        assert!(matches(Scheme::Bcrypt, &bcrypt, b"s3cret"));
        assert!(!matches(Scheme::Bcrypt, &bcrypt, b"s3cre"));
        // OpenBSD's test vector, as another implementation made it.
        let vector = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
        assert_eq!(classify(vector), Written::Hash(Scheme::Bcrypt));
        assert!(matches(Scheme::Bcrypt, vector, b"U*U"));
        assert!(!matches(
            Scheme::Unrecognized,
            "password123",
            b"password123"
        ));
        assert!(!matches(Scheme::Argon2id, DOCUMENT_SEED, b"password123"));
    }

    #[test]
    fn salts_make_equal_passwords_hash_apart() {
        let other_salt = *b"fedcba9876543210";
        assert_ne!(hash(b"pw", &SALT, CHEAP), hash(b"pw", &other_salt, CHEAP));
    }

    #[test]
    fn only_argon2id_at_the_current_cost_is_kept() {
        let current = hash(b"pw", &SALT, CHEAP);
        assert!(!needs_rehash(Scheme::Argon2id, &current, CHEAP));
        let stronger = Cost {
            memory_kib: CHEAP.memory_kib * 2,
            iterations: 1,
        };
        assert!(needs_rehash(Scheme::Argon2id, &current, stronger));
        assert!(needs_rehash(Scheme::LegacySha256, DOCUMENT_SEED, CHEAP));
        assert!(needs_rehash(
            Scheme::Bcrypt,
            &bcrypt::hash_with_salt("pw", 4, SALT).unwrap().to_string(),
            CHEAP
        ));
    }

    #[test]
    fn scheme_names_round_trip() {
        for scheme in [
            Scheme::Argon2id,
            Scheme::LegacySha256,
            Scheme::Bcrypt,
            Scheme::Unrecognized,
        ] {
            assert_eq!(Scheme::from_name(scheme.name()), Some(scheme));
        }
        assert_eq!(Scheme::from_name("md5"), None);
    }
}
