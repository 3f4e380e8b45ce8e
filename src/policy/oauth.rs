//! The MCP authorization flow (OAuth 2.1 as the MCP specification profiles it), with the gateway
//! as protected resource and authorization server: metadata (RFC 9728, RFC 8414), client
//! registration (RFC 7591, and Client ID Metadata Documents), authorization code with PKCE S256
//! only, `resource` indicators (RFC 8707), `iss` in the response (RFC 9207). User login is
//! federated to the organization's OIDC provider (code + PKCE upstream). Tokens are opaque,
//! stored only as hashes; refresh tokens rotate; a replayed code or refresh token revokes the
//! whole grant.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::crypto;
use crate::gateway::Services;
use crate::http::{Body, Headers, HttpRequest, HttpResponse, Method};
use crate::outbound::OutboundRequest;
use crate::store::{OAuthClient, OAuthStore, OAuthToken};

use super::auth::{provision, AuthError};
use super::oidc;

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

fn json_resp(status: u16, v: Value) -> HttpResponse {
    HttpResponse::json(status, &v).with_header("cache-control", "no-store")
}

fn oauth_error(status: u16, code: &str, description: &str) -> HttpResponse {
    json_resp(status, json!({"error": code, "error_description": description}))
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::new(302)
        .with_header("location", location)
        .with_header("cache-control", "no-store")
}

/// Serves the OAuth and metadata paths; `None` for any other path.
pub async fn handle(svc: &Services<'_>, req: &HttpRequest, origin: &str) -> Option<HttpResponse> {
    let path = req.path.as_str();
    let r = if let Some(rest) = path.strip_prefix("/.well-known/oauth-protected-resource") {
        let resource = if rest.is_empty() {
            Some(format!("{origin}/mcp"))
        } else {
            resource_of(origin, rest)
        };
        match resource {
            Some(resource) => Ok(json_resp(
                200,
                json!({
                    "resource": resource,
                    "authorization_servers": [origin],
                    "bearer_methods_supported": ["header"],
                    "scopes_supported": [SCOPE],
                }),
            )),
            None => Ok(HttpResponse::new(404)),
        }
    } else if path == "/.well-known/oauth-authorization-server" || path == "/.well-known/openid-configuration" {
        Ok(json_resp(200, metadata(origin, svc.config.client_metadata_documents)))
    } else {
        match (req.method, path) {
            (Method::Post, "/oauth/register") => register(svc, req).await,
            (Method::Get, "/oauth/authorize") => authorize(svc, req, origin).await,
            (Method::Get, "/oauth/callback") => callback(svc, req, origin).await,
            (Method::Post, "/oauth/token") => token(svc, req).await,
            (_, "/oauth/register" | "/oauth/authorize" | "/oauth/callback" | "/oauth/token") => {
                Ok(HttpResponse::new(405))
            }
            _ => return None,
        }
    };
    Some(r.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "oauth request failed");
        oauth_error(500, "server_error", "internal error")
    }))
}

fn metadata(origin: &str, client_metadata_documents: bool) -> Value {
    json!({
        "issuer": origin,
        "authorization_endpoint": format!("{origin}/oauth/authorize"),
        "token_endpoint": format!("{origin}/oauth/token"),
        "registration_endpoint": format!("{origin}/oauth/register"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": [SCOPE],
        "client_id_metadata_document_supported": client_metadata_documents,
        "authorization_response_iss_parameter_supported": true,
    })
}

fn query(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query.as_deref().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn form(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&req.body).into_owned().collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Redirect URIs a client may register and be sent to (RFC 8252, OAuth 2.1): `https`; `http`
/// only to a loopback host (a literal loopback address, or `localhost`), decided on the parsed
/// host; or a private-use scheme in reverse-domain form (`com.example.app:/cb` — a dot in the
/// scheme, which no browser-executable scheme such as `javascript:`, `vbscript:`, `data:`,
/// `file:` or `blob:` has). Never with userinfo or a fragment.
pub fn valid_redirect(uri: &str) -> bool {
    let Ok(u) = url::Url::parse(uri) else {
        return false;
    };
    if !u.username().is_empty() || u.password().is_some() || u.fragment().is_some() {
        return false;
    }
    match u.scheme() {
        "https" => u.host().is_some(),
        "http" => crate::url_rules::is_loopback_host(&u),
        scheme => private_use_scheme(scheme),
    }
}

/// A private-use URI scheme as RFC 8252 §7.1 asks for: a reversed domain name (letters, digits,
/// `-`, separated by dots; at least one dot).
fn private_use_scheme(scheme: &str) -> bool {
    scheme.contains('.')
        && scheme
            .split('.')
            .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// RFC 7591 dynamic registration (public clients: PKCE, no secret).
async fn register(svc: &Services<'_>, req: &HttpRequest) -> Result<HttpResponse, AuthError> {
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return Ok(oauth_error(400, "invalid_client_metadata", "body must be JSON"));
    };
    let uris: Vec<String> = body
        .get("redirect_uris")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if uris.is_empty() || uris.len() > 10 || !uris.iter().all(|u| valid_redirect(u)) {
        return Ok(oauth_error(
            400,
            "invalid_redirect_uri",
            "redirect_uris must be https, loopback http, or app schemes",
        ));
    }
    let client = OAuthClient {
        client_id: crypto::random_id("client_"),
        client_name: body
            .get("client_name")
            .and_then(Value::as_str)
            .map(|s| s.chars().take(200).collect()),
        redirect_uris: uris,
        created_at: svc.now(),
    };
    svc.oauth.put_client(&client).await?;
    Ok(json_resp(
        201,
        json!({
            "client_id": client.client_id,
            "client_name": client.client_name,
            "redirect_uris": client.redirect_uris,
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }),
    ))
}

/// The client's registered redirect URIs: a registered client, or — where the deployment
/// accepts them — a Client ID Metadata Document fetched from the `client_id` URL (which must
/// name itself). `None`: unknown client.
async fn client_redirects(svc: &Services<'_>, client_id: &str) -> Result<Option<Vec<String>>, AuthError> {
    // Registered ids are `client_…`; anything with a scheme is a metadata-document URL.
    if client_id.contains(':') {
        if !svc.config.client_metadata_documents {
            return Ok(None);
        }
        return Ok(metadata_document(svc, client_id).await);
    }
    Ok(svc.oauth.get_client(client_id).await?.map(|c| c.redirect_uris))
}

/// Time allowed for fetching a Client ID Metadata Document (the fetch needs no login, so it
/// must never hold a request for long).
pub const CIMD_FETCH_TIMEOUT_MS: u32 = 5_000;
/// Largest metadata document accepted.
pub const CIMD_MAX_BYTES: usize = 64 * 1024;
/// How long a fetched document's redirect URIs are reused (per isolate).
pub const CIMD_CACHE_TTL_MS: u64 = 5 * 60 * 1000;
/// Most documents remembered per isolate.
pub const CIMD_CACHE_MAX: usize = 256;

thread_local! {
    /// client_id URL → (fetched at, redirect URIs).
    static CIMD_CACHE: std::cell::RefCell<std::collections::HashMap<String, (u64, Vec<String>)>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Whether a `client_id` is a URL the gateway will fetch: `https` to a public host (any host
/// where private upstreams are allowed), or plain `http` only to a literal loopback address
/// (and only where private upstreams are allowed) — decided on the parsed host, so
/// `http://127.0.0.1@evil.example/` (userinfo) is refused; a path is required, and no
/// userinfo or fragment.
pub fn metadata_document_url(client_id: &str, allow_private: bool) -> Option<url::Url> {
    let u = url::Url::parse(client_id).ok()?;
    if !u.username().is_empty() || u.password().is_some() || u.fragment().is_some() || u.path() == "/" {
        return None;
    }
    let ok = match (u.scheme(), u.host()) {
        ("https", Some(_)) => allow_private || crate::url_rules::host_is_public(&u),
        ("http", Some(url::Host::Ipv4(a))) => allow_private && a.is_loopback(),
        ("http", Some(url::Host::Ipv6(a))) => allow_private && a.is_loopback(),
        _ => false,
    };
    ok.then_some(u)
}

/// Fetches (or recalls) a metadata document's redirect URIs: bounded in time and size, no
/// redirects followed, the document must name itself as `client_id`.
async fn metadata_document(svc: &Services<'_>, client_id: &str) -> Option<Vec<String>> {
    let url = metadata_document_url(client_id, svc.config.allow_private_upstreams)?;
    let now = svc.now_ms;
    let cached = CIMD_CACHE.with(|c| {
        c.borrow()
            .get(client_id)
            .filter(|(at, _)| now.saturating_sub(*at) < CIMD_CACHE_TTL_MS)
            .map(|(_, uris)| uris.clone())
    });
    if cached.is_some() {
        return cached;
    }
    let resp = svc
        .http
        .send(OutboundRequest {
            method: Method::Get,
            url: url.to_string(),
            headers: Headers::new().with("accept", "application/json"),
            body: None,
            timeout_ms: CIMD_FETCH_TIMEOUT_MS,
        })
        .await;
    let bytes = match resp {
        Ok(r) if r.status == 200 => match r.body {
            Body::Bytes(b) if b.len() <= CIMD_MAX_BYTES => b,
            _ => return None,
        },
        // Redirects (not followed: a 3xx lands here), errors, timeouts.
        Ok(r) => {
            tracing::warn!(status = r.status, "client metadata document refused");
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %e, "client metadata document unavailable");
            return None;
        }
    };
    let doc: Value = serde_json::from_slice(&bytes).ok()?;
    if doc.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return None;
    }
    let uris: Vec<String> = doc
        .get("redirect_uris")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    CIMD_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CIMD_CACHE_MAX {
            c.retain(|_, (at, _)| now.saturating_sub(*at) < CIMD_CACHE_TTL_MS);
            if c.len() >= CIMD_CACHE_MAX {
                c.clear();
            }
        }
        c.insert(client_id.to_string(), (now, uris.clone()));
    });
    Some(uris)
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `/oauth/authorize`: checks the request, then sends the user to the organization's IdP.
async fn authorize(svc: &Services<'_>, req: &HttpRequest, origin: &str) -> Result<HttpResponse, AuthError> {
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
    let mut u = url::Url::parse(idp_authorize).map_err(|_| AuthError::Provider("bad authorization endpoint".into()))?;
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", idp.login_client_id.as_deref().unwrap_or_default())
        .append_pair("redirect_uri", &format!("{origin}/oauth/callback"))
        .append_pair("scope", "openid email profile")
        .append_pair("state", &pending_id)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &s256(&verifier))
        .append_pair("code_challenge_method", "S256");
    Ok(redirect(u.as_str()))
}

/// The identity provider of the organization being logged into. The organization is, in order:
/// the owner of the requested `resource` (a server or virtual server that belongs to an
/// organization); the `org` parameter of the authorization request (an organization id); the
/// only organization that offers login. Its first provider with a `login_client_id` is used.
/// `Err`: why no provider could be chosen (shown to the client as `invalid_request`).
async fn login_provider(
    svc: &Services<'_>,
    org_param: Option<&str>,
    resource_path: &str,
) -> Result<Result<oidc::IdentityProvider, &'static str>, AuthError> {
    use crate::routes::View;
    use crate::routes::Target;
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
async fn callback(svc: &Services<'_>, req: &HttpRequest, origin: &str) -> Result<HttpResponse, AuthError> {
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
async fn login(svc: &Services<'_>, p: &Value, code: &str, origin: &str) -> Result<String, AuthError> {
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

/// `/oauth/token`: authorization code (with PKCE) or refresh token (rotating).
async fn token(svc: &Services<'_>, req: &HttpRequest) -> Result<HttpResponse, AuthError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_rule() {
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1:9/cb",
            "http://127.7.0.1/cb",
            "http://[::1]:8080/cb",
            "http://localhost:3030/callback",
            "com.example.app:/oauth2redirect",
            "com.example.app:/cb?x=1",
        ] {
            assert!(valid_redirect(ok), "{ok}");
        }
        for bad in [
            "vbscript:msgbox(1)",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "file:///etc/passwd",
            "blob:https://a.example/x",
            "about:blank",
            "myapp:/cb",
            "http://evil.example/cb",
            "http://127.0.0.1@evil.example/cb",
            "http://127.0.0.1.evil.example/cb",
            "http://localhost.evil.example/cb",
            "https://user:pw@app.example.com/cb",
            "https://app.example.com/cb#frag",
            "com..example:/cb",
            "not a uri",
            "",
        ] {
            assert!(!valid_redirect(bad), "{bad}");
        }
    }

    #[test]
    fn metadata_document_urls() {
        let allowed = |u: &str, private: bool| metadata_document_url(u, private).is_some();
        assert!(allowed("https://app.example.com/client.json", false));
        assert!(allowed("http://127.0.0.1:9/client.json", true));
        assert!(allowed("http://[::1]:9/client.json", true));
        // Plain http only to a literal loopback address, and only where private targets are allowed.
        assert!(!allowed("http://127.0.0.1:9/client.json", false));
        assert!(!allowed("http://localhost:9/client.json", true));
        assert!(!allowed("http://app.example.com/client.json", true));
        // Userinfo is not a host: `127.0.0.1@other` goes to `other`.
        assert!(!allowed("http://127.0.0.1@evil.example/client.json", true));
        assert!(!allowed("https://127.0.0.1@evil.example/client.json", true));
        assert!(!allowed("http://127.0.0.1:9@evil.example/client.json", true));
        // Private https targets only where allowed; a path is required; no fragment.
        assert!(!allowed("https://10.0.0.1/client.json", false));
        assert!(!allowed("https://169.254.169.254/latest", false));
        assert!(!allowed("https://app.example.com/", false));
        assert!(!allowed("https://app.example.com/c#x", false));
        assert!(!allowed("javascript:alert(1)//client", true));
    }
}
