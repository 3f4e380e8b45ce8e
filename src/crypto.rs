//! Token generation and hashing: secrets are random, shown once, and stored only as SHA-256 hashes.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every gateway API key starts with this, so leaked keys are recognisable by secret scanners.
pub const API_KEY_PREFIX: &str = "mcpgw_";
/// Random bytes in an API key (256 bits: a fast hash is enough, no password stretching needed).
pub const API_KEY_BYTES: usize = 32;
/// How many leading characters of a key are kept in clear to help people tell keys apart.
pub const API_KEY_DISPLAY_CHARS: usize = 12;

/// Random bytes from the platform CSPRNG (Web Crypto in a Worker, the OS natively).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // getrandom only fails when the platform has no entropy source at all; there is no safe fallback.
    getrandom::getrandom(&mut buf).expect("platform CSPRNG unavailable");
    buf
}

/// A URL-safe random token of `N` bytes of entropy.
pub fn random_token<const N: usize>() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<N>())
}

/// A short random hex identifier (for ids that are not secrets).
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(random_bytes::<8>()))
}

/// A fresh API key: `mcpgw_` + 256 random bits.
pub fn new_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", random_token::<API_KEY_BYTES>())
}

/// The at-rest form of a secret: hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Hex SHA-256 of arbitrary bytes (tool-definition hashes).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// SHA-256 of arbitrary bytes (key derivation).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Compares two secrets without leaking where they differ. Hashing first makes the
/// comparison length-independent too.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    let ha = Sha256::digest(a.as_bytes());
    let hb = Sha256::digest(b.as_bytes());
    ha.ct_eq(&hb).into()
}

/// Constant-time equality of two stored hashes (hex strings of equal length).
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_prefixed_random_and_hash_stably() {
        let a = new_api_key();
        let b = new_api_key();
        assert!(a.starts_with(API_KEY_PREFIX));
        assert_ne!(a, b);
        assert_eq!(hash_secret(&a), hash_secret(&a));
        assert_ne!(hash_secret(&a), hash_secret(&b));
        assert_eq!(hash_secret(&a).len(), 64);
    }

    #[test]
    fn secret_comparison() {
        assert!(secrets_equal("s3cret", "s3cret"));
        assert!(!secrets_equal("s3cret", "s3cre"));
        assert!(!secrets_equal("", "x"));
        assert!(hashes_equal("ab", "ab"));
        assert!(!hashes_equal("ab", "ac"));
        assert!(!hashes_equal("ab", "abc"));
    }
}
