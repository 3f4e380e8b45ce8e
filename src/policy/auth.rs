//! Bearer authentication of agents (gateway API keys) and admins (the bootstrap token), and the
//! permit types that prove it happened.
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::context::AuthCtx;
use crate::crypto;
use crate::http::Headers;
use crate::store::{ApiKeys, Directory, Entity, EntityKind, ServerRecord, StoreError, VirtualServer};

use super::oidc;

use super::access::Access;
pub use super::access::Identity;

/// An authenticated caller of the MCP endpoints: the key, who it acts as, and the grants that
/// apply — loaded on every request, so a change takes effect on the next one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Principal {
    pub key_id: String,
    pub key_name: String,
    pub identity: Identity,
    pub access: Access,
}

/// Proof that a caller may use one server. The function that opens an upstream exchange
/// (`gateway::upstream::Upstream::open`) takes one by type, so no path reaches an upstream
/// without it. Only `authorize_server` (an agent's request) and `catalog_permit` (the gateway
/// reading a catalog for itself) make one.
#[derive(Debug, Clone)]
pub struct Permit {
    subject: Subject,
    server: ServerRecord,
}

/// Whom a permit lets act on its server.
#[derive(Debug, Clone)]
pub enum Subject {
    /// An authenticated agent or user, authorized by the grants of its principal.
    Principal(Box<Principal>),
    /// The gateway itself reading a server's catalog (registration, refresh, re-sync after the
    /// upstream announced a change), as `as_user` for a per-user upstream. Such a permit cannot
    /// carry a client's message (`gateway::forward` refuses it).
    Catalog { as_user: Option<String> },
}

impl Permit {
    /// The agent this permit was issued to; `None` for the gateway's own catalog reads.
    pub fn principal(&self) -> Option<&Principal> {
        match &self.subject {
            Subject::Principal(p) => Some(p),
            Subject::Catalog { .. } => None,
        }
    }

    /// The user upstream credentials are chosen for (per-user upstream tokens).
    pub fn acting_user(&self) -> Option<&str> {
        match &self.subject {
            Subject::Principal(p) => Some(&p.identity.principal_id),
            Subject::Catalog { as_user } => as_user.as_deref(),
        }
    }

    pub fn server(&self) -> &ServerRecord {
        &self.server
    }

    /// The same permit for the server as another era's client sees it (`ServerRecord::for_client`).
    pub fn for_client(mut self, era: crate::mcp::version::Era) -> Self {
        self.server = self.server.for_client(era);
        self
    }
}

/// The gateway's permit to read `server`'s catalog for itself (never to relay a client's message).
pub fn catalog_permit(server: &ServerRecord, as_user: Option<&str>) -> Permit {
    Permit {
        subject: Subject::Catalog {
            as_user: as_user.map(str::to_string),
        },
        server: server.clone(),
    }
}

pub use super::roles::AdminPermit;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid credentials")]
    Invalid,
    #[error("credentials revoked")]
    Revoked,
    #[error("credentials expired")]
    Expired,
    /// The identity provider could not be reached or answered nonsense (detail for logs).
    #[error("identity provider failed: {0}")]
    Provider(String),
    #[error("admin API disabled: no ADMIN_TOKEN configured")]
    AdminDisabled,
    /// Authenticated, but holds no admin role.
    #[error("not an admin")]
    NotAdmin,
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
/// is compared in constant time; then the principal's identity and grants are loaded.
pub async fn authenticate_api_key(
    keys: &dyn ApiKeys,
    directory: &dyn Directory,
    headers: &Headers,
    now: &str,
) -> Result<Principal, AuthError> {
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
    // RFC 3339 UTC timestamps of one format order lexically.
    if rec.expires_at.as_deref().is_some_and(|e| e <= now) {
        return Err(AuthError::Expired);
    }
    // A key whose user or agent was removed no longer authenticates.
    let identity = directory.identity(&rec.principal_id).await?.ok_or(AuthError::Revoked)?;
    let grants = directory.grants_for(&identity.subject_ids()).await?;
    let access = Access::new(&identity, grants);
    Ok(Principal {
        key_id: rec.id,
        key_name: rec.name,
        identity,
        access,
    })
}

/// Verified JWTs per isolate: SHA-256(token) → (user id, exp). A token is verified (signature,
/// claims) and its user provisioned once; later requests with the same token skip both until it
/// expires. Only ids are kept, never the token.
const VERIFIED_CACHE_MAX: usize = 1024;

thread_local! {
    static VERIFIED: std::cell::RefCell<std::collections::HashMap<String, (String, u64)>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Authenticates a bearer: a gateway API key, or a JWT from a trusted OIDC issuer.
/// Where a bearer is presented: the gateway's origin and, on an MCP path, its canonical
/// resource (OAuth access tokens are only good for the resource they were issued for).
#[derive(Debug, Clone, Copy)]
pub struct Audience<'a> {
    pub origin: &'a str,
    pub resource: Option<&'a str>,
}

pub async fn authenticate(
    svc: &AuthCtx<'_>,
    headers: &Headers,
    audience: Audience<'_>,
) -> Result<Principal, AuthError> {
    let (keys, directory, now_ms) = (svc.keys, svc.directory, svc.now_ms);
    let Audience { origin, resource } = audience;
    let token = bearer(headers).ok_or(AuthError::Missing)?;
    if token.starts_with(crypto::API_KEY_PREFIX) {
        return authenticate_api_key(keys, directory, headers, &crate::store::timestamp(now_ms)).await;
    }
    if token.starts_with(super::tokens::ACCESS_TOKEN_PREFIX) {
        let user = super::tokens::access_token_user(svc.oauth, token, now_ms, origin, resource).await?;
        return principal_for(directory, &format!("oauth:{user}"), &user).await;
    }
    if !oidc::looks_like_jwt(token) {
        return Err(AuthError::Invalid);
    }
    let issuer = oidc::unverified_issuer(token).ok_or(AuthError::Invalid)?;
    let idp = oidc::provider_for(&directory.idps_by_issuer(&issuer).await?, token).ok_or(AuthError::Invalid)?;
    let hash = crypto::hash_secret(token);
    let now_s = now_ms / 1000;
    let cached = VERIFIED.with(|c| c.borrow().get(&hash).cloned());
    let user_id = match cached.filter(|(_, exp)| now_s <= exp + oidc::JWT_LEEWAY_SECS) {
        Some((user, _)) => user,
        None => {
            let claims = oidc::verify(svc.http, &idp, token, now_ms).await?;
            let user = provision(directory, &idp, &claims, &crate::store::timestamp(now_ms)).await?;
            VERIFIED.with(|c| {
                let mut c = c.borrow_mut();
                if c.len() >= VERIFIED_CACHE_MAX {
                    c.retain(|_, (_, exp)| *exp + oidc::JWT_LEEWAY_SECS >= now_s);
                    if c.len() >= VERIFIED_CACHE_MAX {
                        c.clear();
                    }
                }
                c.insert(hash, (user.clone(), claims.exp));
            });
            user
        }
    };
    principal_for(directory, &format!("oidc:{user_id}"), &user_id).await
}

/// A principal with its identity and grants, as of now.
async fn principal_for(directory: &dyn Directory, key_id: &str, principal_id: &str) -> Result<Principal, AuthError> {
    let identity = directory.identity(principal_id).await?.ok_or(AuthError::Revoked)?;
    let grants = directory.grants_for(&identity.subject_ids()).await?;
    let access = Access::new(&identity, grants);
    Ok(Principal {
        key_id: key_id.to_string(),
        key_name: principal_id.to_string(),
        identity,
        access,
    })
}

/// Just-in-time provisioning: the first token of a subject creates the user in the issuer's
/// organization; on every fresh verification the user's membership of mapped teams follows the
/// token's groups.
pub(crate) async fn provision(
    directory: &dyn Directory,
    idp: &oidc::IdentityProvider,
    claims: &oidc::VerifiedClaims,
    now: &str,
) -> Result<String, AuthError> {
    let user = match directory.find_by_external_subject(&claims.external_subject).await? {
        Some(u) => u,
        None => {
            let u = Entity {
                id: crypto::random_id(EntityKind::User.id_prefix()),
                kind: EntityKind::User,
                parent_id: Some(idp.org_id.clone()),
                name: claims.name.clone(),
                email: claims.email.clone(),
                external_subject: Some(claims.external_subject.clone()),
                created_at: now.to_string(),
            };
            match directory.create_entity(&u).await {
                // Provisioned concurrently by another request: use that one.
                Err(StoreError::Conflict) => directory
                    .find_by_external_subject(&claims.external_subject)
                    .await?
                    .ok_or(AuthError::Invalid)?,
                other => {
                    other?;
                    u
                }
            }
        }
    };
    for (group, team) in &idp.group_teams {
        if claims.groups.contains(group) {
            directory.add_member(&user.id, team, now).await?;
        } else {
            directory.remove_member(&user.id, team).await?;
        }
    }
    Ok(user.id)
}

/// Whether something owned by `owner` exists for a principal of organization `org`: what an
/// organization owns exists only for its own principals; platform-wide things (`None`) for all.
pub fn owner_visible(org: &str, owner: Option<&str>) -> bool {
    owner.is_none_or(|o| o == org)
}

/// The one rule for servers: a caller of organization `org` may use an active server of its
/// organization (or of the platform) that its grants reach; to anyone else it does not exist.
pub fn server_usable(org: &str, access: &Access, server: &ServerRecord) -> bool {
    server.status == "active" && owner_visible(org, server.org_id.as_deref()) && access.server_allowed(&server.slug)
}

/// The same rule for virtual servers: of the caller's organization (or the platform), granted.
pub fn virtual_usable(org: &str, access: &Access, v: &VirtualServer) -> bool {
    owner_visible(org, v.org_id.as_deref()) && access.virtual_allowed(&v.slug)
}

/// A principal's permit for a server it may use (`server_usable`); `None` for any other.
pub fn authorize_server(principal: &Principal, server: &ServerRecord) -> Option<Permit> {
    let usable = server_usable(&principal.identity.org_id, &principal.access, server);
    usable.then(|| Permit {
        subject: Subject::Principal(Box::new(principal.clone())),
        server: server.clone(),
    })
}

/// Authenticates a caller of the admin API: the bootstrap `ADMIN_TOKEN` (super-admin), or a
/// principal's API key or OIDC token together with the admin roles it holds.
pub async fn authorize_admin(svc: &AuthCtx<'_>, headers: &Headers) -> Result<AdminPermit, AuthError> {
    let config = svc.config;
    let token = bearer(headers).ok_or(AuthError::Missing)?;
    if let Some(expected) = config.admin_token.as_deref() {
        if crypto::secrets_equal(token, expected) {
            return Ok(AdminPermit::super_admin());
        }
    }
    let audience = Audience {
        origin: "",
        resource: None,
    };
    let principal = authenticate(svc, headers, audience).await?;
    let roles = svc.directory.roles_of(&principal.identity.principal_id).await?;
    AdminPermit::with_roles(roles)
        .map(|p| p.acting_as(&principal.identity.principal_id, &principal.key_id))
        .ok_or(AuthError::NotAdmin)
}

/// Checks only the bootstrap token (native tests of the token itself).
pub fn is_bootstrap_token(config: &Config, headers: &Headers) -> Result<(), AuthError> {
    let expected = config.admin_token.as_deref().ok_or(AuthError::AdminDisabled)?;
    let token = bearer(headers).ok_or(AuthError::Missing)?;
    if crypto::secrets_equal(token, expected) {
        Ok(())
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
        let store = MemoryStore::with_defaults();
        let key = crypto::new_api_key();
        let mut rec = ApiKeyRecord {
            id: "key_1".into(),
            name: "ci".into(),
            prefix: key[..12].into(),
            key_hash: crypto::hash_secret(&key),
            created_at: "now".into(),
            last_used_at: None,
            revoked_at: None,
            principal_id: crate::store::DEFAULT_AGENT.into(),
            expires_at: Some("2030-01-01T00:00:00.000Z".into()),
        };
        block_on(store.create_key(&rec)).unwrap();
        let auth = |t: &str, now: &str| {
            let h = Headers::new().with("Authorization", format!("Bearer {t}"));
            block_on(authenticate_api_key(&store, &store, &h, now))
        };
        let now = "2026-11-24T00:00:00.000Z";
        let p = auth(&key, now).unwrap();
        assert_eq!(p.key_id, "key_1");
        assert!(
            p.access.server_allowed("anything"),
            "the default agent keeps its default grant"
        );
        assert_eq!(auth(&key, "2031-01-01T00:00:00.000Z").unwrap_err(), AuthError::Expired);
        let missing = block_on(authenticate_api_key(&store, &store, &Headers::new(), now));
        assert_eq!(missing.unwrap_err(), AuthError::Missing);
        assert_eq!(auth("mcpgw_forged", now).unwrap_err(), AuthError::Invalid);
        assert_eq!(auth("other", now).unwrap_err(), AuthError::Invalid);
        // A key whose principal is gone fails.
        let orphan = crypto::new_api_key();
        rec.id = "key_2".into();
        rec.key_hash = crypto::hash_secret(&orphan);
        rec.principal_id = "agt_gone".into();
        block_on(store.create_key(&rec)).unwrap();
        assert_eq!(auth(&orphan, now).unwrap_err(), AuthError::Revoked);
        block_on(store.revoke_key("key_1", "later")).unwrap();
        assert_eq!(auth(&key, now).unwrap_err(), AuthError::Revoked);
    }

    #[test]
    fn admin_token() {
        let cfg = Config::from_lookup(|k| (k == "ADMIN_TOKEN").then(|| "root".to_string()));
        assert!(is_bootstrap_token(&cfg, &Headers::new().with("authorization", "Bearer root")).is_ok());
        assert_eq!(
            is_bootstrap_token(&cfg, &Headers::new().with("authorization", "Bearer roo")).unwrap_err(),
            AuthError::Invalid
        );
        assert_eq!(
            is_bootstrap_token(&cfg, &Headers::new()).unwrap_err(),
            AuthError::Missing
        );
        let off = Config {
            admin_token: None,
            ..cfg
        };
        assert_eq!(
            is_bootstrap_token(&off, &Headers::new()).unwrap_err(),
            AuthError::AdminDisabled
        );
    }
}
