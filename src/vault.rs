//! Envelope encryption of secrets at rest: AES-256-GCM under a master key from a Worker secret,
//! a fresh 96-bit nonce per write, the storage key name bound in as associated data (a value
//! copied under another name does not decrypt), and a key id so master keys can be rotated.
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Format version of sealed values.
const SEALED_VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VaultError {
    #[error("no vault key configured (VAULT_KEYS)")]
    NoKey,
    #[error("VAULT_KEYS is malformed: {0}")]
    BadConfig(String),
    #[error("sealed with key '{0}', which is not configured")]
    UnknownKey(String),
    #[error("value does not decrypt (tampered, moved, or wrong key)")]
    Corrupt,
}

/// The master keys: the first seals, all of them open.
#[derive(Clone, PartialEq)]
pub struct Vault {
    keys: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Vault")
            .field("key_ids", &self.keys.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    v: u8,
    kid: String,
    nonce: String,
    ct: String,
}

impl Vault {
    /// Parses `VAULT_KEYS`: `kid:base64key[,kid:base64key…]`, each key 32 bytes; the first seals.
    pub fn parse(spec: &str) -> Result<Self, VaultError> {
        let mut keys = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kid, b64) = part
                .split_once(':')
                .ok_or_else(|| VaultError::BadConfig("expected kid:base64key".into()))?;
            let raw = STANDARD
                .decode(b64.trim())
                .map_err(|_| VaultError::BadConfig(format!("key '{kid}' is not base64")))?;
            let key: [u8; 32] = raw
                .try_into()
                .map_err(|_| VaultError::BadConfig(format!("key '{kid}' is not 32 bytes")))?;
            keys.push((kid.trim().to_string(), key));
        }
        if keys.is_empty() {
            return Err(VaultError::NoKey);
        }
        Ok(Self { keys })
    }

    /// The id of the key new values are sealed with.
    pub fn current_kid(&self) -> &str {
        &self.keys[0].0
    }

    /// Encrypts `plaintext` for storage under `name`.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> String {
        let (kid, key) = &self.keys[0];
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
        let nonce = crate::crypto::random_bytes::<12>();
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: name.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        serde_json::to_string(&Sealed {
            v: SEALED_VERSION,
            kid: kid.clone(),
            nonce: STANDARD.encode(nonce),
            ct: STANDARD.encode(ct),
        })
        .expect("serializable")
    }

    /// Decrypts a value stored under `name`.
    pub fn open(&self, name: &str, sealed: &str) -> Result<Vec<u8>, VaultError> {
        let s: Sealed = serde_json::from_str(sealed).map_err(|_| VaultError::Corrupt)?;
        if s.v != SEALED_VERSION {
            return Err(VaultError::Corrupt);
        }
        let (_, key) = self
            .keys
            .iter()
            .find(|(k, _)| *k == s.kid)
            .ok_or_else(|| VaultError::UnknownKey(s.kid.clone()))?;
        let nonce = STANDARD.decode(&s.nonce).map_err(|_| VaultError::Corrupt)?;
        let ct = STANDARD.decode(&s.ct).map_err(|_| VaultError::Corrupt)?;
        if nonce.len() != 12 {
            return Err(VaultError::Corrupt);
        }
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Corrupt)
    }

    /// Whether a sealed value was sealed with the current key (else it needs re-encrypting).
    pub fn is_current(&self, sealed: &str) -> bool {
        serde_json::from_str::<Sealed>(sealed).is_ok_and(|s| s.kid == self.current_kid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> String {
        STANDARD.encode([b; 32])
    }

    #[test]
    fn seal_open_and_binding() {
        let v = Vault::parse(&format!("k1:{}", key(1))).unwrap();
        let a = v.seal("cred:server:github", b"s3cret");
        let b = v.seal("cred:server:github", b"s3cret");
        assert_ne!(a, b, "fresh nonce per write");
        assert!(!a.contains("s3cret"));
        assert_eq!(v.open("cred:server:github", &a).unwrap(), b"s3cret");
        assert_eq!(
            v.open("cred:server:jira", &a).unwrap_err(),
            VaultError::Corrupt,
            "bound to its name"
        );
        let mut tampered: serde_json::Value = serde_json::from_str(&a).unwrap();
        tampered["ct"] = serde_json::json!(STANDARD.encode(b"garbage-garbage-garbage"));
        assert_eq!(
            v.open("cred:server:github", &tampered.to_string()).unwrap_err(),
            VaultError::Corrupt
        );
    }

    #[test]
    fn rotation_keeps_old_values_readable_until_retired() {
        let old = Vault::parse(&format!("k1:{}", key(1))).unwrap();
        let sealed = old.seal("n", b"x");
        let both = Vault::parse(&format!("k2:{},k1:{}", key(2), key(1))).unwrap();
        assert_eq!(both.open("n", &sealed).unwrap(), b"x");
        assert!(!both.is_current(&sealed));
        let resealed = both.seal("n", &both.open("n", &sealed).unwrap());
        let new_only = Vault::parse(&format!("k2:{}", key(2))).unwrap();
        assert_eq!(new_only.open("n", &resealed).unwrap(), b"x");
        assert_eq!(
            new_only.open("n", &sealed).unwrap_err(),
            VaultError::UnknownKey("k1".into())
        );
    }

    #[test]
    fn config_errors() {
        assert_eq!(Vault::parse("").unwrap_err(), VaultError::NoKey);
        assert!(matches!(
            Vault::parse("k1:notbase64!").unwrap_err(),
            VaultError::BadConfig(_)
        ));
        assert!(matches!(
            Vault::parse(&format!("k1:{}", STANDARD.encode([0u8; 16]))).unwrap_err(),
            VaultError::BadConfig(_)
        ));
        assert!(!format!("{:?}", Vault::parse(&format!("k1:{}", key(7))).unwrap()).contains(&key(7)));
    }
}
