//! `/oauth/token`: code exchange and refresh-token rotation (a replayed code or refresh token
//! revokes the whole grant).
use serde_json::json;

use super::authorize::s256;
use super::*;
use crate::context::Services;
use crate::crypto;
use crate::http::{HttpRequest, HttpResponse};
use crate::policy::tokens::*;
use crate::policy::AuthError;
use crate::store::OAuthToken;

/// `/oauth/token`: authorization code (with PKCE) or refresh token (rotating).
pub(super) async fn token(svc: &Services<'_>, req: &HttpRequest) -> Result<HttpResponse, AuthError> {
    let f = form(req);
    let grant = |msg: &str| Ok(oauth_error(400, "invalid_grant", msg));
    let client_id = param(&f, "client_id").unwrap_or("");
    let (presented, kind) = match param(&f, "grant_type") {
        Some("authorization_code") => (param(&f, "code").unwrap_or(""), "code"),
        Some("refresh_token") => (param(&f, "refresh_token").unwrap_or(""), "refresh"),
        _ => {
            return Ok(oauth_error(
                400,
                "unsupported_grant_type",
                "authorization_code or refresh_token",
            ))
        }
    };
    let hash = crypto::hash_secret(presented);
    let Some(t) = svc.oauth.get_token(&hash).await?.filter(|t| t.kind == kind) else {
        return grant("unknown, revoked or expired grant");
    };
    // Single use: a second redemption is a replay — the whole grant is revoked.
    if !svc.oauth.consume_token(&hash, svc.now_ms).await? {
        svc.oauth.revoke_family(&t.family).await?;
        tracing::warn!(family = %t.family, "replayed {kind}: grant revoked");
        return grant("this grant was already used; it has been revoked");
    }
    if t.expires_at_ms <= svc.now_ms || t.client_id != client_id {
        return grant("expired, or issued to another client");
    }
    if kind == "code" {
        let verifier = param(&f, "code_verifier").unwrap_or("");
        let pkce_ok = t
            .code_challenge
            .as_deref()
            .is_some_and(|c| crypto::secrets_equal(&s256(verifier), c));
        if !pkce_ok || t.redirect_uri.as_deref() != param(&f, "redirect_uri") {
            svc.oauth.revoke_family(&t.family).await?;
            return grant("PKCE verification or redirect_uri mismatch");
        }
    }
    if let Some(r) = param(&f, "resource") {
        if r.trim_end_matches('/') != t.resource {
            return Ok(oauth_error(
                400,
                "invalid_target",
                "resource differs from the authorized one",
            ));
        }
    }
    let access = format!("{ACCESS_TOKEN_PREFIX}{}", crypto::random_token::<32>());
    let refresh = format!("{REFRESH_TOKEN_PREFIX}{}", crypto::random_token::<32>());
    let issue = |secret: &str, kind: &str, ttl: u64| OAuthToken {
        hash: crypto::hash_secret(secret),
        kind: kind.into(),
        redirect_uri: None,
        code_challenge: None,
        expires_at_ms: svc.now_ms + ttl,
        ..t.clone()
    };
    svc.oauth
        .put_token(&issue(&access, "access", ACCESS_TOKEN_TTL_MS))
        .await?;
    svc.oauth
        .put_token(&issue(&refresh, "refresh", REFRESH_TOKEN_TTL_MS))
        .await?;
    Ok(json_resp(
        200,
        json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_TTL_MS / 1000,
            "refresh_token": refresh,
            "scope": t.scope,
        }),
    ))
}
