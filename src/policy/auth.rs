//! Bearer authentication of agents (gateway API keys) and admins (the bootstrap token), and the
//! permit types that prove it happened.
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::crypto;
use crate::http::Headers;
use crate::store::{ApiKeys, ServerRecord, StoreError};

/// An authenticated caller of the MCP endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Principal {
    pub key_id: String,
    pub key_name: String,
}

/// Proof that a principal may use one server. Only `authorize_server` makes one, and every
/// upstream call path takes one, so no path reaches an upstream unauthorized.
#[derive(Debug, Clone)]
pub struct Permit {
    principal: Principal,
    server: ServerRecord,
}

impl Permit {
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    pub fn server(&self) -> &ServerRecord {
        &self.server
    }
}

/// Proof that the caller of the admin API is an admin. Roles arrive with the identity work;
/// this is the one place that decides.
#[derive(Debug)]
pub struct AdminPermit {
    _private: (),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid credentials")]
    Invalid,
    #[error("credentials revoked")]
    Revoked,
    #[error("admin API disabled: no ADMIN_TOKEN configured")]
    AdminDisabled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(headers: &Headers) -> Option<&str> {
    let v = headers.get("authorization")?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Authenticates an agent by gateway API key. Keys are looked up by hash, and the stored hash
/// is compared in constant time.
pub async fn authenticate_api_key(keys: &dyn ApiKeys, headers: &Headers) -> Result<Principal, AuthError> {
    let token = bearer(headers).ok_or(AuthError::Missing)?;
    if !token.starts_with(crypto::API_KEY_PREFIX) {
        return Err(AuthError::Invalid);
    }
    let hash = crypto::hash_secret(token);
    let rec = keys.find_key_by_hash(&hash).await?.ok_or(AuthError::Invalid)?;
    if !crypto::hashes_equal(&rec.key_hash, &hash) {
        return Err(AuthError::Invalid);
    }
    if rec.revoked_at.is_some() {
        return Err(AuthError::Revoked);
    }
    Ok(Principal {
        key_id: rec.id,
        key_name: rec.name,
    })
}

/// Every key may use every active server until grants arrive; a disabled server is refused
/// as if it did not exist.
pub fn authorize_server(principal: &Principal, server: &ServerRecord) -> Option<Permit> {
    (server.status == "active").then(|| Permit {
        principal: principal.clone(),
        server: server.clone(),
    })
}

pub fn authorize_admin(config: &Config, headers: &Headers) -> Result<AdminPermit, AuthError> {
    let expected = config.admin_token.as_deref().ok_or(AuthError::AdminDisabled)?;
    let token = bearer(headers).ok_or(AuthError::Missing)?;
    if crypto::secrets_equal(token, expected) {
        Ok(AdminPermit { _private: () })
    } else {
        Err(AuthError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::ApiKeyRecord;
    use futures_executor::block_on;

    #[test]
    fn api_key_lifecycle() {
        let store = MemoryStore::new();
        let key = crypto::new_api_key();
        let rec = ApiKeyRecord {
            id: "key_1".into(),
            name: "ci".into(),
            prefix: key[..12].into(),
            key_hash: crypto::hash_secret(&key),
            created_at: "now".into(),
            last_used_at: None,
            revoked_at: None,
        };
        block_on(store.create_key(&rec)).unwrap();
        let h = |t: &str| Headers::new().with("Authorization", format!("Bearer {t}"));
        assert_eq!(
            block_on(authenticate_api_key(&store, &h(&key))).unwrap().key_id,
            "key_1"
        );
        assert_eq!(
            block_on(authenticate_api_key(&store, &Headers::new())).unwrap_err(),
            AuthError::Missing
        );
        assert_eq!(
            block_on(authenticate_api_key(&store, &h("mcpgw_forged"))).unwrap_err(),
            AuthError::Invalid
        );
        assert_eq!(
            block_on(authenticate_api_key(&store, &h("other"))).unwrap_err(),
            AuthError::Invalid
        );
        block_on(store.revoke_key("key_1", "later")).unwrap();
        assert_eq!(
            block_on(authenticate_api_key(&store, &h(&key))).unwrap_err(),
            AuthError::Revoked
        );
    }

    #[test]
    fn admin_token() {
        let cfg = Config::from_lookup(|k| (k == "ADMIN_TOKEN").then(|| "root".to_string()));
        assert!(authorize_admin(&cfg, &Headers::new().with("authorization", "Bearer root")).is_ok());
        assert_eq!(
            authorize_admin(&cfg, &Headers::new().with("authorization", "Bearer roo")).unwrap_err(),
            AuthError::Invalid
        );
        assert_eq!(authorize_admin(&cfg, &Headers::new()).unwrap_err(), AuthError::Missing);
        let off = Config {
            admin_token: None,
            ..cfg
        };
        assert_eq!(
            authorize_admin(&off, &Headers::new()).unwrap_err(),
            AuthError::AdminDisabled
        );
    }
}
