//! Enterprise identity: bearer JWTs from trusted OIDC issuers (Okta, Entra ID, Auth0, Keycloak,
//! Google, any conformant one). The issuer's discovery document and JWKS are fetched and cached;
//! the signature is checked with an allow-listed asymmetric algorithm (never `none`, never an
//! HMAC, so no RS/HS confusion), then `iss`, `aud`, `exp` and `nbf` with a small leeway.
use std::cell::RefCell;
use std::collections::HashMap;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::http::{Body, Headers, Method};
use crate::outbound::{HttpClient, OutboundRequest};
pub use crate::store::records::IdentityProvider;

use super::auth::AuthError;

/// Clock skew tolerated on `exp` and `nbf`, seconds.
pub const JWT_LEEWAY_SECS: u64 = 30;
/// How long a fetched JWKS is trusted before it is fetched again.
pub const JWKS_TTL_MS: u64 = 10 * 60 * 1000;
/// An unknown `kid` triggers a re-fetch (key rotation) at most this often per issuer.
pub const JWKS_MIN_REFETCH_MS: u64 = 30 * 1000;
/// Timeout of discovery and JWKS fetches.
pub const IDP_FETCH_TIMEOUT_MS: u32 = 5_000;
/// Signature algorithms accepted from identity providers: asymmetric only.
pub const ALLOWED_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// What a verified token says about its bearer.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims {
    /// `{org}|{issuer}|{subject}`, the user's `external_subject`.
    pub external_subject: String,
    pub email: Option<String>,
    pub name: String,
    pub groups: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
}

/// Whether a bearer token has the shape of a JWT (three base64url parts).
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3 && parts.iter().take(2).all(|p| !p.is_empty())
}

/// The `iss` of a token, read without verifying anything (to pick the issuer to verify with).
pub fn unverified_issuer(token: &str) -> Option<String> {
    unverified_claim(token, "iss")
}

/// Which organization's trust of a (possibly shared) issuer a token is for: the one whose
/// audiences include the token's `aud` (read unverified, only to choose; the chosen provider
/// then verifies everything). `None` if no organization, or more than one, accepts it.
pub fn provider_for(candidates: &[IdentityProvider], token: &str) -> Option<IdentityProvider> {
    let auds = unverified_audiences(token);
    let mut matching = candidates
        .iter()
        .filter(|p| p.audiences.iter().any(|a| auds.contains(a)));
    let first = matching.next()?;
    matching.next().is_none().then(|| first.clone())
}

/// The `aud` of a token (a string or an array), read without verifying.
pub fn unverified_audiences(token: &str) -> Vec<String> {
    use base64::Engine;
    let Some(v) = token
        .split('.')
        .nth(1)
        .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    else {
        return Vec::new();
    };
    match v.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// A claim of a token, read without verifying (only for a token verified separately).
pub fn unverified_claim(token: &str, name: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get(name)?.as_str().map(str::to_string)
}

struct CachedJwks {
    fetched_ms: u64,
    keys: JwkSet,
}

thread_local! {
    /// JWKS per issuer, per isolate.
    static JWKS: RefCell<HashMap<String, CachedJwks>> = RefCell::new(HashMap::new());
}

pub(crate) async fn get_json(http: &dyn HttpClient, url: &str) -> Result<Value, AuthError> {
    let resp = http
        .send(OutboundRequest {
            method: Method::Get,
            url: url.to_string(),
            headers: Headers::new().with("accept", "application/json"),
            body: None,
            timeout_ms: IDP_FETCH_TIMEOUT_MS,
        })
        .await
        .map_err(|e| AuthError::Provider(format!("fetching {url}: {e}")))?;
    let bytes = match (resp.status, resp.body) {
        (200, Body::Bytes(b)) => b,
        (s, _) => return Err(AuthError::Provider(format!("fetching {url}: HTTP {s}"))),
    };
    serde_json::from_slice(&bytes).map_err(|_| AuthError::Provider(format!("{url} is not JSON")))
}

/// The issuer's JWKS via its discovery document (RFC 8414 / OpenID Connect Discovery).
async fn fetch_jwks(http: &dyn HttpClient, issuer: &str) -> Result<JwkSet, AuthError> {
    let discovery = get_json(
        http,
        &format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')),
    )
    .await?;
    if discovery.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err(AuthError::Provider("discovery document names another issuer".into()));
    }
    let uri = discovery
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| AuthError::Provider("discovery document has no jwks_uri".into()))?;
    serde_json::from_value(get_json(http, uri).await?).map_err(|_| AuthError::Provider("invalid JWKS".into()))
}

/// The key for `kid`, from the cache, or after a (rate-limited) re-fetch for rotated keys.
async fn key_for(
    http: &dyn HttpClient,
    issuer: &str,
    kid: Option<&str>,
    now_ms: u64,
) -> Result<jsonwebtoken::jwk::Jwk, AuthError> {
    let lookup = |now_ms: u64, fresh_only: bool| {
        JWKS.with(|c| {
            let c = c.borrow();
            let entry = c.get(issuer)?;
            if fresh_only && now_ms.saturating_sub(entry.fetched_ms) > JWKS_TTL_MS {
                return None;
            }
            match kid {
                Some(k) => entry.keys.find(k).cloned(),
                None if entry.keys.keys.len() == 1 => entry.keys.keys.first().cloned(),
                None => None,
            }
        })
    };
    if let Some(k) = lookup(now_ms, true) {
        return Ok(k);
    }
    let recently = JWKS.with(|c| {
        c.borrow()
            .get(issuer)
            .is_some_and(|e| now_ms.saturating_sub(e.fetched_ms) < JWKS_MIN_REFETCH_MS)
    });
    if !recently {
        let keys = fetch_jwks(http, issuer).await?;
        JWKS.with(|c| {
            c.borrow_mut().insert(
                issuer.to_string(),
                CachedJwks {
                    fetched_ms: now_ms,
                    keys,
                },
            )
        });
    }
    lookup(now_ms, false).ok_or(AuthError::Invalid)
}

/// Verifies a JWT from `provider`: signature, algorithm, issuer, audience, expiry, not-before.
pub async fn verify(
    http: &dyn HttpClient,
    provider: &IdentityProvider,
    token: &str,
    now_ms: u64,
) -> Result<VerifiedClaims, AuthError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
    if !ALLOWED_ALGORITHMS.contains(&header.alg) {
        return Err(AuthError::Invalid);
    }
    let jwk = key_for(http, &provider.issuer, header.kid.as_deref(), now_ms).await?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| AuthError::Invalid)?;
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[&provider.issuer]);
    v.set_audience(&provider.audiences);
    // Time is checked below against the gateway's clock, with our leeway.
    v.validate_exp = false;
    v.validate_nbf = false;
    v.required_spec_claims.clear();
    let claims: Value = jsonwebtoken::decode(token, &key, &v)
        .map_err(|_| AuthError::Invalid)?
        .claims;
    let now = now_ms / 1000;
    let exp = claims.get("exp").and_then(Value::as_u64).ok_or(AuthError::Invalid)?;
    if exp + JWT_LEEWAY_SECS < now {
        return Err(AuthError::Expired);
    }
    if claims
        .get("nbf")
        .and_then(Value::as_u64)
        .is_some_and(|nbf| nbf > now + JWT_LEEWAY_SECS)
    {
        return Err(AuthError::Invalid);
    }
    let text = |claim: &str| claims.get(claim).and_then(Value::as_str).map(str::to_string);
    let subject = text(&provider.subject_claim).ok_or(AuthError::Invalid)?;
    let groups = match claims.get(&provider.groups_claim) {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    Ok(VerifiedClaims {
        // Per organization: one person at a shared issuer is a separate user in each org.
        external_subject: format!("{}|{}|{subject}", provider.org_id, provider.issuer),
        email: text(&provider.email_claim),
        name: text("name").or_else(|| text(&provider.email_claim)).unwrap_or(subject),
        groups,
        exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn shapes() {
        assert!(looks_like_jwt("a.b.c"));
        assert!(looks_like_jwt("a.b."));
        assert!(!looks_like_jwt("mcpgw_abc"));
        assert!(!looks_like_jwt("a.b"));
        // {"iss":"https://idp"} → eyJpc3MiOiJodHRwczovL2lkcCJ9
        assert_eq!(
            unverified_issuer("x.eyJpc3MiOiJodHRwczovL2lkcCJ9.y").as_deref(),
            Some("https://idp")
        );
        assert_eq!(unverified_issuer("x.notbase64!.y"), None);
        assert!(!ALLOWED_ALGORITHMS.contains(&Algorithm::HS256));
    }

    #[test]
    fn shared_issuer_maps_by_audience() {
        use base64::Engine;
        let idp = |id: &str, org: &str, aud: &str| IdentityProvider {
            id: id.into(),
            org_id: org.into(),
            issuer: "https://idp".into(),
            audiences: vec![aud.into()],
            subject_claim: "sub".into(),
            email_claim: "email".into(),
            groups_claim: "groups".into(),
            group_teams: BTreeMap::new(),
            login_client_id: None,
            created_at: "t".into(),
        };
        let tok = |claims: &str| {
            format!(
                "x.{}.y",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims)
            )
        };
        let both = [idp("i1", "org_a", "aud-a"), idp("i2", "org_b", "aud-b")];
        let pick = |t: &str, c: &[IdentityProvider]| provider_for(c, t).map(|p| p.org_id);
        assert_eq!(pick(&tok(r#"{"aud":"aud-a"}"#), &both).as_deref(), Some("org_a"));
        assert_eq!(pick(&tok(r#"{"aud":["x","aud-b"]}"#), &both).as_deref(), Some("org_b"));
        assert_eq!(pick(&tok(r#"{"aud":"aud-c"}"#), &both), None);
        assert_eq!(pick(&tok(r#"{}"#), &both), None);
        // Two organizations accepting the same audience: ambiguous, refused.
        let clash = [idp("i1", "org_a", "aud-a"), idp("i2", "org_b", "aud-a")];
        assert_eq!(pick(&tok(r#"{"aud":"aud-a"}"#), &clash), None);
        assert_eq!(pick(&tok(r#"{"aud":["aud-a","aud-b"]}"#), &both), None);
    }
}
