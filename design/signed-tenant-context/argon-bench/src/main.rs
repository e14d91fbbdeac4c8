//! How long Argon2id takes here at the parameters the design proposes, and
//! what HMAC-SHA-256 verification of a tenant token costs.
use std::time::Instant;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

fn argon(m_kib: u32, t: u32) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(m_kib, t, 1, Some(32)).unwrap())
}

fn main() {
    // A fixed salt only to keep the run reproducible; the extension uses 16 random bytes.
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    for (m, t) in [(19 * 1024, 2), (12 * 1024, 3), (47 * 1024, 1), (64 * 1024, 3)] {
        let a = argon(m, t);
        let phc = a.hash_password(b"password123", &salt).unwrap().to_string();
        let parsed = PasswordHash::new(&phc).unwrap();
        let n = 10;
        let start = Instant::now();
        for _ in 0..n {
            // verify_password reads m, t, p from the PHC string
            assert!(Argon2::default().verify_password(b"password123", &parsed).is_ok());
        }
        let ms = start.elapsed().as_secs_f64() * 1000.0 / n as f64;
        let start = Instant::now();
        for _ in 0..n {
            assert!(Argon2::default().verify_password(b"wrong", &parsed).is_err());
        }
        let ms_wrong = start.elapsed().as_secs_f64() * 1000.0 / n as f64;
        println!("argon2id m={m} KiB t={t} p=1: right {ms:.1} ms, wrong {ms_wrong:.1} ms  ({} chars: {})", phc.len(), &phc[..40]);
    }
    // The document's legacy hash, wrapped: argon2id(sha256_hex(password)).
    let legacy: String = Sha256::digest(b"password123").iter().map(|b| format!("{b:02x}")).collect();
    println!("legacy sha256 hex of password123: {legacy}");

    // Token verification: HMAC-SHA-256 over ~80 bytes, constant-time compare.
    let key = [7u8; 32];
    let body = "platform-tenant-v1.k1.29e141b6-0c42-42ea-990b-9a672240050e.1999999999";
    let n = 1_000_000;
    let start = Instant::now();
    let mut ok = 0u32;
    for i in 0..n {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        m.update(body.as_bytes());
        let tag: [u8; 32] = m.finalize().into_bytes().into();
        ok += (tag[0] as u32 + i as u32) & 1;
    }
    println!("hmac-sha256 of a token body: {:.2} us ({ok})", start.elapsed().as_secs_f64() * 1e6 / n as f64);
}
