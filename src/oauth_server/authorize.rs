//! `/oauth/authorize` and `/oauth/callback`: PKCE S256, the resource's organization and its
//! identity provider, federated login, and the authorization code.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::clients::client_redirects;
use super::*;
use crate::context::Services;
use crate::crypto;
use crate::http::{Body, Headers, HttpRequest, HttpResponse, Method};
use crate::outbound::OutboundRequest;
use crate::policy::auth::provision;
use crate::policy::oidc;
use crate::policy::tokens::*;
use crate::policy::AuthError;
use crate::store::OAuthToken;

pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `/oauth/authorize`: checks the request, then sends the user to the organization's IdP.
pub(super) async fn authorize(svc: &Services<'_>, req: &HttpRequest, origin: &str) -> Result<HttpResponse, AuthError> {
    let q = query(req);
    let client_id = param(&q, "client_id").unwrap_or("");
    let redirect_uri = param(&q, "redirect_uri").unwrap_or("");
    // Until the redirect URI is known to be the client's, errors are shown, never redirected.
    let Some(redirects) = client_redirects(svc, client_id).await? else {
        return Ok(oauth_error(400, "invalid_client", "unknown client"));
    };
    // Checked again here: metadata documents are fetched, not registered, and clients registered
    // before the rule tightened may hold URIs it now refuses.
    if !valid_redirect(redirect_uri) || !redirects.iter().any(|r| r == redirect_uri) {
        return Ok(oauth_error(
            400,
            "invalid_request",
            "redirect_uri is not registered for this client",
        ));
    }
    let state = param(&q, "state").unwrap_or("");
    let back = |code: &str, desc: &str| {
        let mut u = url::Url::parse(redirect_uri).expect("registered redirect URIs parse");
        u.query_pairs_mut()
            .append_pair("error", code)
            .append_pair("error_description", desc)
            .append_pair("state", state)
            .append_pair("iss", origin);
        redirect(u.as_str())
    };
    if param(&q, "response_type") != Some("code") {
        return Ok(back("unsupported_response_type", "only code"));
    }
    let challenge = param(&q, "code_challenge").unwrap_or("");
    if param(&q, "code_challenge_method") != Some("S256") || challenge.len() < 43 {
        return Ok(back("invalid_request", "PKCE with S256 is required"));
    }
    let resource = param(&q, "resource")
        .map(|r| r.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("{origin}/mcp"));
    let resource_ok = resource
        .strip_prefix(origin)
        .is_some_and(|p| resource_of(origin, p).as_deref() == Some(resource.as_str()));
    if !resource_ok {
        return Ok(back(
            "invalid_target",
            "resource is not a protected resource of this gateway",
        ));
    }
    let path = resource.strip_prefix(origin).unwrap_or("");
    let idp = match login_provider(svc, param(&q, "org"), path).await? {
        Ok(idp) => idp,
        Err(why) => return Ok(back("invalid_request", why)),
    };
    let discovery = oidc::get_json(
        svc.http,
        &format!("{}/.well-known/openid-configuration", idp.issuer.trim_end_matches('/')),
    )
    .await?;
    let Some(idp_authorize) = discovery.get("authorization_endpoint").and_then(Value::as_str) else {
        return Ok(back(
            "server_error",
            "the identity provider has no authorization endpoint",
        ));
    };
    let pending_id = crypto::random_token::<32>();
    let verifier = crypto::random_token::<32>();
    let nonce = crypto::random_token::<16>();
    let pending = json!({
        "client_id": client_id, "redirect_uri": redirect_uri, "state": state, "code_challenge": challenge,
        "resource": resource, "idp": idp.id, "verifier": verifier, "nonce": nonce,
    });
    svc.oauth
        .put_pending(&pending_id, &pending, svc.now_ms + PENDING_TTL_MS)
        .await?;
    let u = idp_authorize_url(
        idp_authorize,
        idp.login_client_id.as_deref(),
        origin,
        &pending_id,
        &nonce,
        &verifier,
    )?;
    Ok(redirect(u.as_str()))
}

/// Where the browser goes to log in at the IdP: authorization code with PKCE (`S256`) and a
/// nonce, back to the gateway's one callback, the pending login's id as `state`.
pub(crate) fn idp_authorize_url(
    idp_authorize: &str,
    client_id: Option<&str>,
    origin: &str,
    pending_id: &str,
    nonce: &str,
    verifier: &str,
) -> Result<url::Url, AuthError> {
    let mut u = url::Url::parse(idp_authorize).map_err(|_| AuthError::Provider("bad authorization endpoint".into()))?;
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id.unwrap_or_default())
        .append_pair("redirect_uri", &format!("{origin}/oauth/callback"))
        .append_pair("scope", "openid email profile")
        .append_pair("state", pending_id)
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", &s256(verifier))
        .append_pair("code_challenge_method", "S256");
    Ok(u)
}

/// The identity provider of the organization being logged into. The organization is, in order:
/// the owner of the requested `resource` (a server or virtual server that belongs to an
/// organization); the `org` parameter of the authorization request (an organization id); the
/// only organization that offers login. Its first provider with a `login_client_id` is used.
/// `Err`: why no provider could be chosen (shown to the client as `invalid_request`).
pub(super) async fn login_provider(
    svc: &Services<'_>,
    org_param: Option<&str>,
    resource_path: &str,
) -> Result<Result<oidc::IdentityProvider, &'static str>, AuthError> {
    use crate::routes::Target;
    use crate::routes::View;
    let owner = match Target::from_path(resource_path) {
        Some(Target::Server(slug)) => svc.registry.get_server(&slug).await?.and_then(|s| s.org_id),
        Some(Target::View(View::Virtual(slug))) => svc.virtuals.get_virtual(&slug).await?.and_then(|v| v.org_id),
        _ => None,
    };
    if let (Some(o), Some(p)) = (&owner, org_param) {
        if o != p {
            return Ok(Err("the org parameter names another organization than the resource's"));
        }
    }
    let mut logins: Vec<_> = svc
        .directory
        .list_idps()
        .await?
        .into_iter()
        .filter(|i| i.login_client_id.is_some())
        .collect();
    let org = match owner.as_deref().or(org_param) {
        Some(o) => o.to_string(),
        None => {
            let mut orgs: Vec<&str> = logins.iter().map(|i| i.org_id.as_str()).collect();
            orgs.sort_unstable();
            orgs.dedup();
            match orgs.as_slice() {
                [one] => one.to_string(),
                [] => return Ok(Err("no identity provider is configured for login")),
                _ => {
                    return Ok(Err(
                        "several organizations offer login: name one with the org parameter",
                    ))
                }
            }
        }
    };
    logins.retain(|i| i.org_id == org);
    Ok(logins
        .into_iter()
        .next()
        .ok_or("no identity provider is configured for login to this organization"))
}

/// `/oauth/callback`: the IdP sent the user back; exchange its code, verify the ID token,
/// provision the user, and hand the client our own single-use code.
pub(super) async fn callback(svc: &Services<'_>, req: &HttpRequest, origin: &str) -> Result<HttpResponse, AuthError> {
    let q = query(req);
    let Some(p) = svc
        .oauth
        .take_pending(param(&q, "state").unwrap_or(""), svc.now_ms)
        .await?
    else {
        return Ok(oauth_error(
            400,
            "invalid_request",
            "unknown or expired authorization state",
        ));
    };
    if p.get("console").and_then(Value::as_bool) == Some(true) {
        return Ok(super::console_login::finish(svc, req, &p, origin).await);
    }
    let field = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut back = url::Url::parse(&field("redirect_uri")).map_err(|_| AuthError::Invalid)?;
    let Some(code) = param(&q, "code") else {
        back.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("state", &field("state"))
            .append_pair("iss", origin);
        return Ok(redirect(back.as_str()));
    };
    let user_id = match login(svc, &p, code, origin).await {
        Ok(u) => u,
        // A login that fails (a bad or mismatched ID token, a refused code exchange, an IdP that
        // cannot be reached) goes back to the client as an OAuth error, never as a 500 page.
        Err(e) => {
            tracing::warn!(error = %e, "login at the identity provider failed");
            let code = match e {
                AuthError::Store(_) => "server_error",
                _ => "access_denied",
            };
            back.query_pairs_mut()
                .append_pair("error", code)
                .append_pair("state", &field("state"))
                .append_pair("iss", origin);
            return Ok(redirect(back.as_str()));
        }
    };
    let our_code = crypto::random_token::<32>();
    let t = OAuthToken {
        hash: crypto::hash_secret(&our_code),
        kind: "code".into(),
        family: crypto::random_id("fam_"),
        client_id: field("client_id"),
        user_id,
        resource: field("resource"),
        scope: SCOPE.into(),
        redirect_uri: Some(field("redirect_uri")),
        code_challenge: Some(field("code_challenge")),
        expires_at_ms: svc.now_ms + CODE_TTL_MS,
    };
    svc.oauth.put_token(&t).await?;
    back.query_pairs_mut()
        .append_pair("code", &our_code)
        .append_pair("state", &field("state"))
        .append_pair("iss", origin);
    Ok(redirect(back.as_str()))
}

/// The IdP half of `/oauth/callback`: exchanges the IdP's code, verifies the ID token (issuer,
/// the gateway's login client as audience, signature, expiry, nonce) and provisions the user.
pub(super) async fn login(svc: &Services<'_>, p: &Value, code: &str, origin: &str) -> Result<String, AuthError> {
    let field = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let idp = svc
        .directory
        .list_idps()
        .await?
        .into_iter()
        .find(|i| i.id == field("idp"))
        .ok_or(AuthError::Invalid)?;
    let login_client = idp.login_client_id.clone().ok_or(AuthError::Invalid)?;
    let discovery = oidc::get_json(
        svc.http,
        &format!("{}/.well-known/openid-configuration", idp.issuer.trim_end_matches('/')),
    )
    .await?;
    let token_url = discovery
        .get("token_endpoint")
        .and_then(Value::as_str)
        .ok_or(AuthError::Invalid)?;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", &format!("{origin}/oauth/callback"))
        .append_pair("client_id", &login_client)
        .append_pair("code_verifier", &field("verifier"))
        .finish();
    let resp = svc
        .http
        .send(OutboundRequest {
            method: Method::Post,
            url: token_url.to_string(),
            headers: Headers::new()
                .with("content-type", "application/x-www-form-urlencoded")
                .with("accept", "application/json"),
            body: Some(body.into_bytes()),
            timeout_ms: oidc::IDP_FETCH_TIMEOUT_MS,
        })
        .await
        .map_err(|e| AuthError::Provider(e.to_string()))?;
    let tokens: Value = match resp.body {
        Body::Bytes(b) if resp.status == 200 => serde_json::from_slice(&b).map_err(|_| AuthError::Invalid)?,
        _ => return Err(AuthError::Provider(format!("token exchange: HTTP {}", resp.status))),
    };
    let id_token = tokens
        .get("id_token")
        .and_then(Value::as_str)
        .ok_or(AuthError::Invalid)?;
    // The ID token is for the gateway's login client, not for the MCP audiences.
    let mut login_idp = idp.clone();
    login_idp.audiences = vec![login_client];
    let claims = oidc::verify(svc.http, &login_idp, id_token, svc.now_ms).await?;
    let nonce_ok = oidc::unverified_claim(id_token, "nonce").as_deref() == Some(field("nonce").as_str());
    if !nonce_ok {
        return Err(AuthError::Invalid);
    }
    provision(svc.directory, &idp, &claims, &svc.now()).await
}
