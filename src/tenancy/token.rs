//! The signed tenant context's tokens and keys, in plain Rust (no Postgres):
//! parsing, HMAC-SHA-256 and constant-time comparison, expiry, and the key
//! list of `platform.tenant_keys`. The pgrx layer is `context.rs`.
//!
//! Two kinds of token (design/signed-tenant-context §4.2, docs/security.md):
//!
//! * an **app token**, minted by the application server with a key it shares
//!   with the database, passed once per transaction to `set_tenant_token()`:
//!   `v1.<kid>.tenant.<tenant uuid>.<expires unix s>.<hex HMAC>` over
//!   `platform-v1.<kid>.tenant.<tenant uuid>.<expires>`;
//! * an **internal token**, minted only by the extension and the only value
//!   `app.current_tenant_id` accepts in signed mode:
//!   `i1.<kid>.<tenant uuid>.<database oid>.<slot>-<local xid>-<xact start µs>.<hex HMAC>`,
//!   keyed by a key derived from the app key (so neither kind passes for
//!   the other) and bound to one transaction of one backend in one database.
//!
//! Nothing here prints a key or a token: `Key`'s `Debug` shows its kid only,
//! and errors say what is wrong, never with what.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::tenancy::secrets::equal_in_constant_time;

/// Longest token looked at; anything longer is malformed.
pub const MAX_TOKEN_LEN: usize = 256;
/// Shortest key accepted: 32 bytes (64 hex digits), HMAC-SHA-256's own size.
pub const MIN_KEY_BYTES: usize = 32;
/// Longest key id.
pub const MAX_KID_LEN: usize = 32;
/// What the internal key is derived with: HMAC(app key, this).
const INTERNAL_KEY_LABEL: &str = "platform-internal-v1";

/// What an app token may prove. Only `tenant` is accepted by
/// `set_tenant_token()`; `email` and `oauth` are reserved for the lookups'
/// proofs (design §4.4), not built yet.
const PURPOSES: [&str; 3] = ["tenant", "email", "oauth"];

type HmacSha256 = Hmac<Sha256>;

/// One entry of `platform.tenant_keys`, kept as HMAC states already keyed
/// (cloned per MAC: two fewer SHA-256 blocks each time).
pub struct Key {
    pub kid: String,
    app: HmacSha256,
    internal: HmacSha256,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        write!(f, "Key({})", self.kid)
    }
}

impl Key {
    fn new(kid: &str, secret: Vec<u8>) -> Self {
        let internal = hmac_sha256(&secret, INTERNAL_KEY_LABEL.as_bytes());
        Key {
            kid: kid.to_owned(),
            app: keyed(&secret),
            internal: keyed(&internal),
        }
    }

    /// HMAC with the app key: what app tokens are signed with.
    fn app_mac(&self, message: &[u8]) -> [u8; 32] {
        finish(self.app.clone(), message)
    }

    /// HMAC with the derived internal key: what internal tokens are signed with.
    fn internal_mac(&self, message: &[u8]) -> [u8; 32] {
        finish(self.internal.clone(), message)
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length")
}

fn finish(mut mac: HmacSha256, message: &[u8]) -> [u8; 32] {
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// `platform.tenant_keys` parsed: `kid:hex[,kid:hex...]`. The first key
/// mints what the database signs itself; every key verifies (rotation).
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: Vec<Key>,
    /// Entries that were left out (bad kid, bad hex, too short, a repeated
    /// kid), counted but never shown.
    pub malformed: usize,
}

impl KeyRing {
    /// Parses the setting's text. A malformed entry is left out, never
    /// reported with its value (PostgreSQL's own "invalid value" error would
    /// print it, so nothing refuses the setting).
    pub fn parse(raw: &str) -> KeyRing {
        let mut ring = KeyRing::default();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parsed = entry.split_once(':').and_then(|(kid, hex)| {
                let secret = decode_hex(hex.trim())?;
                let kid = kid.trim();
                (valid_kid(kid) && secret.len() >= MIN_KEY_BYTES && ring.get(kid).is_none())
                    .then(|| Key::new(kid, secret))
            });
            match parsed {
                Some(key) => ring.keys.push(key),
                None => ring.malformed += 1,
            }
        }
        ring
    }

    /// The key that mints: the first of the list.
    pub fn signing_key(&self) -> Option<&Key> {
        self.keys.first()
    }

    pub fn get(&self, kid: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

/// Why a token was refused. Says what, never with which value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token of the expected shape.
    Malformed,
    /// A well-formed app token for another purpose (`email`, `oauth`).
    WrongPurpose,
    /// Signed with a key id the server does not have (or no key at all).
    UnknownKey,
    /// The signature does not verify: tampered, or another key.
    BadMac,
    /// Past its expiry.
    Expired,
    /// Expires further ahead than `platform.tenant_token_max_ttl` allows.
    TooLong,
    /// An internal token read outside any transaction.
    NoTransaction,
    /// An internal token of another transaction, backend or database.
    OtherTransaction,
}

impl TokenError {
    /// Short reason for diagnostics (`platform_tenant_context()`).
    pub fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::WrongPurpose => "wrong purpose",
            Self::UnknownKey => "unknown key",
            Self::BadMac => "bad mac",
            Self::Expired => "expired",
            Self::TooLong => "valid for too long",
            Self::NoTransaction => "no transaction",
            Self::OtherTransaction => "other transaction",
        }
    }
}

/// Which transaction an internal token belongs to: the database, the
/// backend's slot and its local transaction id (a parallel worker's
/// leader's), and the transaction's start in µs (which workers inherit from
/// their leader). The local id tells apart transactions that share a start
/// time (several in one simple-query message); the start time, a slot's
/// transactions after the local id wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub database: u32,
    pub slot: i32,
    pub local_xid: u32,
    pub xact_start: i64,
}

impl Binding {
    fn text(self) -> String {
        format!(
            "{}.{}-{}-{}",
            self.database, self.slot, self.local_xid, self.xact_start
        )
    }
}

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    finish(keyed(key), message)
}

/// Lower-case hex, without an allocation per byte (it is on every
/// set_tenant_token() call, twice).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// Hex digits (either case) to bytes; None for anything else.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

/// Whether `presented` is the lower-case hex of `expected`, in time that does
/// not depend on where they differ.
fn mac_matches(expected: &[u8; 32], presented: &str) -> bool {
    equal_in_constant_time(hex(expected).as_bytes(), presented.as_bytes())
}

fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A tenant id as tokens carry it: canonical lower-case hyphenated, not nil.
fn canonical_tenant(text: &str) -> Option<Uuid> {
    let uuid = Uuid::try_parse(text).ok()?;
    (!uuid.is_nil() && uuid.hyphenated().to_string() == text).then_some(uuid)
}

fn lower_hex_64(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What the application signs (and the TypeScript and Python snippets of
/// docs/security.md build).
pub fn app_token_body(kid: &str, purpose: &str, subject: &str, expires: i64) -> String {
    format!("platform-v1.{kid}.{purpose}.{subject}.{expires}")
}

/// An app token, as the application server mints it (tests, and the shared
/// vectors of the docs).
#[cfg(test)]
pub fn mint_app_token(key: &Key, purpose: &str, subject: &str, expires: i64) -> String {
    let body = app_token_body(&key.kid, purpose, subject, expires);
    let mac = key.app_mac(body.as_bytes());
    format!("v1.{}.{purpose}.{subject}.{expires}.{}", key.kid, hex(&mac))
}

/// Verifies an app `tenant` token at `now` (unix seconds): shape, key, MAC,
/// then expiry and the TTL cap. Returns the tenant it is for.
pub fn verify_tenant_token(
    ring: &KeyRing,
    token: &str,
    now: i64,
    max_ttl: i64,
) -> Result<Uuid, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [version, kid, purpose, subject, expires, mac] = parts[..] else {
        return Err(TokenError::Malformed);
    };
    let well_formed = version == "v1"
        && valid_kid(kid)
        && PURPOSES.contains(&purpose)
        && !subject.is_empty()
        && (1..=12).contains(&expires.len())
        && expires.bytes().all(|b| b.is_ascii_digit())
        && lower_hex_64(mac);
    if !well_formed {
        return Err(TokenError::Malformed);
    }
    if purpose != "tenant" {
        return Err(TokenError::WrongPurpose);
    }
    let tenant = canonical_tenant(subject).ok_or(TokenError::Malformed)?;
    let expires: i64 = expires.parse().map_err(|_| TokenError::Malformed)?;
    let key = ring.get(kid).ok_or(TokenError::UnknownKey)?;
    let body = app_token_body(kid, purpose, subject, expires);
    if !mac_matches(&key.app_mac(body.as_bytes()), mac) {
        return Err(TokenError::BadMac);
    }
    if expires <= now {
        return Err(TokenError::Expired);
    }
    if expires - now > max_ttl {
        return Err(TokenError::TooLong);
    }
    Ok(tenant)
}

fn internal_body(kid: &str, tenant: Uuid, binding: &str) -> String {
    format!("i1.{kid}.{}.{binding}", tenant.hyphenated())
}

/// The internal token for `tenant` in the transaction `binding`.
pub fn mint_internal(key: &Key, tenant: Uuid, binding: Binding) -> String {
    let body = internal_body(&key.kid, tenant, &binding.text());
    let mac = key.internal_mac(body.as_bytes());
    format!("{body}.{}", hex(&mac))
}

/// Verifies an internal token: shape, key, MAC, then that it belongs to
/// `current` (None: outside a transaction).
pub fn verify_internal(
    ring: &KeyRing,
    token: &str,
    current: Option<Binding>,
) -> Result<Uuid, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [version, kid, tenant, database, slot_and_start, mac] = parts[..] else {
        return Err(TokenError::Malformed);
    };
    if version != "i1" || !valid_kid(kid) || !lower_hex_64(mac) {
        return Err(TokenError::Malformed);
    }
    let tenant = canonical_tenant(tenant).ok_or(TokenError::Malformed)?;
    let binding = format!("{database}.{slot_and_start}");
    let key = ring.get(kid).ok_or(TokenError::UnknownKey)?;
    let body = internal_body(kid, tenant, &binding);
    if !mac_matches(&key.internal_mac(body.as_bytes()), mac) {
        return Err(TokenError::BadMac);
    }
    let current = current.ok_or(TokenError::NoTransaction)?;
    if binding != current.text() {
        return Err(TokenError::OtherTransaction);
    }
    Ok(tenant)
}

/// A new `kid:hex64` entry for `platform.tenant_keys` from 36 random bytes
/// (4 for the key id, 32 for the key).
pub fn new_key_entry(random: &[u8; 36]) -> String {
    format!("k{}:{}", hex(&random[..4]), hex(&random[4..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACME: &str = "72cda7ac-9168-41a5-87ad-895ca68d2fd0";
    /// The key of the docs' test vector (docs/security.md): 32 bytes 0x00..0x1f.
    const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const NOW: i64 = 1_800_000_000;

    fn ring() -> KeyRing {
        KeyRing::parse(&format!("k1:{KEY_HEX}"))
    }

    fn token(expires: i64) -> String {
        mint_app_token(ring().get("k1").unwrap(), "tenant", ACME, expires)
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
    }

    #[test]
    fn the_docs_vector() {
        // The same token the TypeScript and Python snippets of
        // docs/security.md print for KID=k1, this key, this tenant and expiry.
        assert_eq!(
            token(NOW + 60),
            "v1.k1.tenant.72cda7ac-9168-41a5-87ad-895ca68d2fd0.1800000060.\
             6c7e4e8143b9fef883bcafcea5db140b6448e3ec4deeed6552d8f8c62acc5e06"
        );
    }

    #[test]
    fn a_fresh_token_verifies_to_its_tenant() {
        assert_eq!(
            verify_tenant_token(&ring(), &token(NOW + 60), NOW, 300),
            Ok(Uuid::parse_str(ACME).unwrap())
        );
    }

    #[test]
    fn expiry_and_the_ttl_cap() {
        assert_eq!(
            verify_tenant_token(&ring(), &token(NOW), NOW, 300),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify_tenant_token(&ring(), &token(NOW - 1), NOW, 300),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify_tenant_token(&ring(), &token(NOW + 301), NOW, 300),
            Err(TokenError::TooLong)
        );
        assert!(verify_tenant_token(&ring(), &token(NOW + 300), NOW, 300).is_ok());
    }

    #[test]
    fn tampering_anywhere_breaks_the_mac() {
        let good = token(NOW + 60);
        let other_tenant = good.replace(ACME, "72cda7ac-9168-41a5-87ad-895ca68d2fd1");
        let later = good.replace("1800000060", "1800000061");
        let mut flipped = good.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        for bad in [other_tenant, later, flipped] {
            assert_eq!(
                verify_tenant_token(&ring(), &bad, NOW, 300),
                Err(TokenError::BadMac)
            );
        }
    }

    #[test]
    fn another_key_is_unknown_or_bad() {
        let other = KeyRing::parse(&format!("k2:{KEY_HEX}"));
        assert_eq!(
            verify_tenant_token(&other, &token(NOW + 60), NOW, 300),
            Err(TokenError::UnknownKey)
        );
        let same_kid_other_key = KeyRing::parse(&format!("k1:{}", "ab".repeat(32)));
        assert_eq!(
            verify_tenant_token(&same_kid_other_key, &token(NOW + 60), NOW, 300),
            Err(TokenError::BadMac)
        );
        assert_eq!(
            verify_tenant_token(&KeyRing::default(), &token(NOW + 60), NOW, 300),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn shapes_that_are_not_tokens() {
        let good = token(NOW + 60);
        let mac = good.rsplit('.').next().unwrap().to_owned();
        for bad in [
            String::new(),
            ACME.to_owned(),
            good.replacen("v1.", "v2.", 1),
            good.replace(ACME, &ACME.to_uppercase()),
            good.replace(ACME, &ACME.replace('-', "")),
            good.replace(ACME, "00000000-0000-0000-0000-000000000000"),
            good.replace(&mac, &mac.to_uppercase()),
            good.replace(&mac, &mac[..62]),
            format!("{good}.x"),
            good.replace("1800000060", "-1"),
            good.replace("k1", "k.1"),
            good.replace("tenant", "admin"),
            format!("{good}{}", "0".repeat(MAX_TOKEN_LEN)),
        ] {
            assert_eq!(
                verify_tenant_token(&ring(), &bad, NOW, 300),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_email_proof_is_not_a_tenant_token() {
        let key = ring();
        let email = mint_app_token(key.get("k1").unwrap(), "email", &"ab".repeat(32), NOW + 60);
        assert_eq!(
            verify_tenant_token(&key, &email, NOW, 300),
            Err(TokenError::WrongPurpose)
        );
    }

    #[test]
    fn key_lists_keep_good_entries_and_count_the_rest() {
        let long = "cd".repeat(40);
        let ring = KeyRing::parse(&format!(
            " k2:{KEY_HEX} , k1:{long},,short:abcd,bad kid:{KEY_HEX},k2:{long},odd:{}0",
            KEY_HEX
        ));
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.signing_key().unwrap().kid, "k2");
        assert!(ring.get("k1").is_some());
        assert_eq!(ring.malformed, 4);
        // Debug never shows a key.
        let shown = format!("{ring:?}");
        assert!(
            !shown.contains(KEY_HEX) && !shown.contains(&long),
            "{shown}"
        );
    }

    #[test]
    fn internal_tokens_are_bound_to_their_transaction() {
        let ring = ring();
        let tenant = Uuid::parse_str(ACME).unwrap();
        let here = Binding {
            database: 16384,
            slot: 7,
            local_xid: 42,
            xact_start: 123_456_789,
        };
        let token = mint_internal(ring.signing_key().unwrap(), tenant, here);
        assert!(token.starts_with("i1.k1.72cda7ac-"));
        assert_eq!(verify_internal(&ring, &token, Some(here)), Ok(tenant));
        for elsewhere in [
            Binding {
                xact_start: 123_456_790,
                ..here
            },
            Binding { slot: 8, ..here },
            Binding {
                local_xid: 43,
                ..here
            },
            Binding {
                database: 16385,
                ..here
            },
        ] {
            assert_eq!(
                verify_internal(&ring, &token, Some(elsewhere)),
                Err(TokenError::OtherTransaction)
            );
        }
        assert_eq!(
            verify_internal(&ring, &token, None),
            Err(TokenError::NoTransaction)
        );
        // Moving the binding breaks the MAC.
        let moved = token.replace(".7-42-123456789.", ".8-42-123456789.");
        assert_eq!(
            verify_internal(&ring, &moved, Some(Binding { slot: 8, ..here })),
            Err(TokenError::BadMac)
        );
    }

    #[test]
    fn an_app_token_is_never_an_internal_one_and_back() {
        let ring = ring();
        let here = Binding {
            database: 1,
            slot: 1,
            local_xid: 1,
            xact_start: 1,
        };
        assert_eq!(
            verify_internal(&ring, &token(NOW + 60), Some(here)),
            Err(TokenError::Malformed)
        );
        let internal = mint_internal(
            ring.signing_key().unwrap(),
            Uuid::parse_str(ACME).unwrap(),
            here,
        );
        assert_eq!(
            verify_tenant_token(&ring, &internal, NOW, 300),
            Err(TokenError::Malformed)
        );
        // An internal token re-labelled as one signed with the app key
        // itself does not verify: the internal key is derived.
        let body = internal.rsplit_once('.').unwrap().0;
        let with_app_key = format!(
            "{body}.{}",
            hex(&hmac_sha256(&decode_hex(KEY_HEX).unwrap(), body.as_bytes()))
        );
        assert_eq!(
            verify_internal(&ring, &with_app_key, Some(here)),
            Err(TokenError::BadMac)
        );
    }

    #[test]
    fn new_keys_parse_back() {
        let entry = new_key_entry(&[7u8; 36]);
        assert_eq!(entry.len(), 1 + 8 + 1 + 64);
        let ring = KeyRing::parse(&entry);
        assert_eq!((ring.len(), ring.malformed), (1, 0));
    }
}
