//! Verifying the gateway's own OAuth access tokens on MCP requests (opaque, stored as hashes),
//! and the resource rules they are bound to (RFC 8707 audience, the 401 challenge). The
//! authorization server that issues them lives in `oauth_server`.
use crate::crypto;
use crate::store::OAuthStore;

use super::auth::AuthError;

pub const ACCESS_TOKEN_PREFIX: &str = "mcpat_";
pub const REFRESH_TOKEN_PREFIX: &str = "mcprt_";
pub const CODE_TTL_MS: u64 = 60 * 1000;
pub const ACCESS_TOKEN_TTL_MS: u64 = 60 * 60 * 1000;
pub const REFRESH_TOKEN_TTL_MS: u64 = 30 * 24 * 60 * 60 * 1000;
/// Time allowed between `/oauth/authorize` and the IdP sending the user back.
pub const PENDING_TTL_MS: u64 = 10 * 60 * 1000;
pub const SCOPE: &str = "mcp";

/// The canonical resource (RFC 8707) of an MCP path, or `None` for other paths.
pub fn resource_of(origin: &str, path: &str) -> Option<String> {
    crate::routes::Target::from_path(path).map(|_| format!("{origin}{}", path.trim_end_matches('/')))
}

/// Whether a token issued for `granted` may be used on `requested`: the same resource, or the
/// aggregated `/mcp` (which covers every MCP path of the gateway).
pub fn covers(origin: &str, granted: &str, requested: &str) -> bool {
    granted == requested || granted == format!("{origin}/mcp")
}

/// The 401 challenge on an MCP path: where to find the protected-resource metadata.
pub fn challenge(origin: &str, path: &str, invalid: bool) -> String {
    let meta = format!(
        "{origin}/.well-known/oauth-protected-resource{}",
        path.trim_end_matches('/')
    );
    let err = if invalid { r#", error="invalid_token""# } else { "" };
    format!(r#"Bearer resource_metadata="{meta}"{err}, scope="{SCOPE}""#)
}

/// The user an access token was issued to, if it is valid for `requested` (the canonical
/// resource of the MCP path being called).
pub async fn access_token_user(
    store: &dyn OAuthStore,
    token: &str,
    now_ms: u64,
    origin: &str,
    requested: Option<&str>,
) -> Result<String, AuthError> {
    let t = store
        .get_token(&crypto::hash_secret(token))
        .await?
        .filter(|t| t.kind == "access")
        .ok_or(AuthError::Invalid)?;
    if t.expires_at_ms <= now_ms {
        return Err(AuthError::Expired);
    }
    // Audience: a token for one resource is not accepted by another (RFC 8707).
    if !requested.is_some_and(|r| covers(origin, &t.resource, r)) {
        return Err(AuthError::Invalid);
    }
    Ok(t.user_id)
}
