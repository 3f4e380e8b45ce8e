//! Per-user upstream OAuth (`oauth_user` credentials): a user connects their own account at
//! `/connect/{slug}` — the upstream's authorization server discovered from its protected-resource
//! metadata (or configured), a client registered dynamically where needed, authorization code +
//! PKCE with the `resource` parameter — and the tokens are kept per (server, user), sealed.
//! Tokens are refreshed before they expire (a Durable Object alarm per connection, and on demand
//! as a fallback); a failed refresh marks the connection `needs-reconnect`, visible to admins and
//! to the user on their next call, never silent.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::crypto;
use crate::http::{Body, Headers, HttpRequest, HttpResponse, Method};
use crate::policy::oidc::get_json;
use crate::store::ServerRecord;

use super::{secret_key, CredentialError, CredentialSpec};
use crate::context::Services;
use crate::outbound::OutboundRequest;

/// Refresh this long before an access token expires (or at half its life, if shorter).
pub const REFRESH_MARGIN_MS: u64 = 60 * 1000;
/// How long a connect link is valid.
pub const TICKET_TTL_MS: u64 = 10 * 60 * 1000;
pub const CONNECT_FETCH_TIMEOUT_MS: u32 = super::TOKEN_FETCH_TIMEOUT_MS;

/// A user's tokens for one server (sealed at `cred:user:{slug}:{user}`).
#[derive(Clone, Serialize, Deserialize)]
pub struct UserToken {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at_ms: u64,
    pub token_endpoint: String,
    pub client_id: String,
    pub resource: String,
}

/// What admins see of a connection (`credmeta:user:{slug}:{user}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionMeta {
    pub server: String,
    pub user: String,
    /// `connected` or `needs-reconnect`.
    pub status: String,
    pub connected_at: String,
    pub refreshed_at: Option<String>,
    pub expires_at: Option<String>,
    pub last_error: Option<String>,
}

pub fn user_key(slug: &str, user: &str) -> String {
    format!("cred:user:{slug}:{user}")
}

pub fn user_meta_key(slug: &str, user: &str) -> String {
    format!("credmeta:user:{slug}:{user}")
}

pub use crate::context::RefreshScheduler;

fn refresh_at(now_ms: u64, expires_at_ms: u64) -> u64 {
    let life = expires_at_ms.saturating_sub(now_ms);
    expires_at_ms.saturating_sub(REFRESH_MARGIN_MS.min(life / 2))
}

fn s256(v: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()))
}

async fn oauth_user_spec(svc: &Services<'_>, server: &ServerRecord) -> Result<CredentialSpec, CredentialError> {
    let vault = svc
        .config
        .vault
        .as_ref()
        .ok_or_else(|| needs(server, "the vault is not configured"))?;
    let sealed = svc
        .secrets
        .get_secret(&secret_key(&server.slug))
        .await?
        .ok_or_else(|| needs(server, "no credential"))?;
    let plain = vault
        .open(&secret_key(&server.slug), &sealed)
        .map_err(|e| needs(server, e))?;
    serde_json::from_slice(&plain).map_err(|_| needs(server, "unreadable credential"))
}

fn needs(server: &ServerRecord, e: impl std::fmt::Display) -> CredentialError {
    CredentialError::failed(&server.slug, e)
}

/// The user's access token for `server`, refreshed if it is about to expire; without one, an
/// error carrying a fresh link to connect.
pub async fn user_access_token(
    svc: &Services<'_>,
    server: &ServerRecord,
    user: Option<&str>,
) -> Result<String, CredentialError> {
    let user = user.ok_or_else(|| needs(server, "per-user credentials need a user"))?;
    let vault = svc
        .config
        .vault
        .as_ref()
        .ok_or_else(|| needs(server, "the vault is not configured"))?;
    let key = user_key(&server.slug, user);
    let meta = read_meta(svc, &server.slug, user).await;
    let sealed = svc.secrets.get_secret(&key).await?;
    let token = match (sealed, meta.as_ref().map(|m| m.status.as_str())) {
        (Some(s), Some("connected")) => {
            serde_json::from_slice::<UserToken>(&vault.open(&key, &s).map_err(|e| needs(server, e))?).ok()
        }
        _ => None,
    };
    let Some(mut t) = token else {
        return Err(connect_error(svc, server, user).await?);
    };
    if t.expires_at_ms <= svc.now_ms + 5_000 {
        match refresh(svc, server, user, &t).await {
            Ok(fresh) => t = fresh,
            Err(_) => return Err(connect_error(svc, server, user).await?),
        }
    }
    Ok(t.access_token)
}

async fn connect_error(
    svc: &Services<'_>,
    server: &ServerRecord,
    user: &str,
) -> Result<CredentialError, CredentialError> {
    let ticket = crypto::random_token::<32>();
    svc.oauth
        .put_pending(
            &format!("connect:{ticket}"),
            &json!({"user": user, "server": server.slug}),
            svc.now_ms + TICKET_TTL_MS,
        )
        .await?;
    Ok(CredentialError::NeedsConnect {
        slug: server.slug.clone(),
        url: format!("{}/connect/{}?ticket={ticket}", svc.origin, server.slug),
    })
}

async fn read_meta(svc: &Services<'_>, slug: &str, user: &str) -> Option<ConnectionMeta> {
    let raw = svc.secrets.get_secret(&user_meta_key(slug, user)).await.ok()??;
    serde_json::from_str(&raw).ok()
}

async fn write_meta(svc: &Services<'_>, m: &ConnectionMeta) {
    if let Ok(json) = serde_json::to_string(m) {
        let _ = svc.secrets.put_secret(&user_meta_key(&m.server, &m.user), &json).await;
    }
}

async fn store_token(svc: &Services<'_>, slug: &str, user: &str, t: &UserToken) -> Result<(), CredentialError> {
    let vault = svc.config.vault.as_ref().ok_or(CredentialError::UnknownServer)?;
    let key = user_key(slug, user);
    let plain = serde_json::to_vec(t).expect("serializable");
    svc.secrets.put_secret(&key, &vault.seal(&key, &plain)).await?;
    if let Some(live) = &svc.live {
        live.scheduler
            .schedule(slug, user, refresh_at(svc.now_ms, t.expires_at_ms))
            .await;
    }
    Ok(())
}

fn token_from(
    v: &Value,
    now_ms: u64,
    previous: Option<&UserToken>,
    endpoint: &str,
    client_id: &str,
    resource: &str,
) -> Option<UserToken> {
    Some(UserToken {
        access_token: v.get("access_token")?.as_str()?.to_string(),
        refresh_token: v
            .get("refresh_token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
        expires_at_ms: now_ms + v.get("expires_in").and_then(Value::as_u64).unwrap_or(300) * 1000,
        token_endpoint: endpoint.to_string(),
        client_id: client_id.to_string(),
        resource: resource.to_string(),
    })
}

/// Refreshes a connection; on failure it is marked `needs-reconnect` and the error returned.
pub async fn refresh(
    svc: &Services<'_>,
    server: &ServerRecord,
    user: &str,
    t: &UserToken,
) -> Result<UserToken, String> {
    let result = match &t.refresh_token {
        None => Err("no refresh token".to_string()),
        Some(rt) => {
            let form = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "refresh_token")
                .append_pair("refresh_token", rt)
                .append_pair("client_id", &t.client_id)
                .append_pair("resource", &t.resource)
                .finish();
            super::post_token_form(svc, &t.token_endpoint, form)
                .await
                .and_then(|v| {
                    token_from(&v, svc.now_ms, Some(t), &t.token_endpoint, &t.client_id, &t.resource)
                        .ok_or("no access_token".into())
                })
        }
    };
    let mut meta = read_meta(svc, &server.slug, user)
        .await
        .unwrap_or_else(|| ConnectionMeta {
            server: server.slug.clone(),
            user: user.to_string(),
            status: "connected".into(),
            connected_at: svc.now(),
            refreshed_at: None,
            expires_at: None,
            last_error: None,
        });
    match &result {
        Ok(fresh) => {
            store_token(svc, &server.slug, user, fresh)
                .await
                .map_err(|e| e.to_string())?;
            meta.status = "connected".into();
            meta.refreshed_at = Some(svc.now());
            meta.expires_at = Some(crate::store::timestamp(fresh.expires_at_ms));
            meta.last_error = None;
        }
        Err(e) => {
            tracing::warn!(upstream = %server.slug, user = %user, error = %e, "refresh failed: needs reconnect");
            meta.status = "needs-reconnect".into();
            meta.last_error = Some(e.clone());
        }
    }
    write_meta(svc, &meta).await;
    result
}

/// The alarm's work: refresh one connection if it is still connected.
pub async fn refresh_connection(svc: &Services<'_>, slug: &str, user: &str) {
    let Ok(Some(server)) = svc.registry.get_server(slug).await else {
        return;
    };
    let Some(vault) = svc.config.vault.as_ref() else { return };
    let key = user_key(slug, user);
    let Ok(Some(sealed)) = svc.secrets.get_secret(&key).await else {
        return;
    };
    let Some(t) = vault
        .open(&key, &sealed)
        .ok()
        .and_then(|p| serde_json::from_slice::<UserToken>(&p).ok())
    else {
        return;
    };
    if read_meta(svc, slug, user)
        .await
        .is_some_and(|m| m.status == "connected")
    {
        let _ = refresh(svc, &server, user, &t).await;
    }
}

fn page(status: u16, title: &str, text: &str) -> HttpResponse {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let html = format!(
        "<!doctype html><title>{}</title><h1>{}</h1><p>{}</p>",
        esc(title),
        esc(title),
        esc(text)
    );
    HttpResponse::typed(status, "text/html; charset=utf-8", html.into_bytes()).with_header("cache-control", "no-store")
}

fn query(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query.as_deref().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A user connected their account to a server that has no catalog yet.
pub struct Connected {
    pub server: ServerRecord,
    pub user: String,
}

/// Serves `/connect/{slug}` and `/connect/callback`; `None` for other paths. A first connection to
/// a server without a catalog comes back as `Connected`, for the caller to sync it as that user.
pub async fn handle(svc: &Services<'_>, req: &HttpRequest) -> Option<(HttpResponse, Option<Connected>)> {
    let rest = req.path.strip_prefix("/connect/")?;
    if req.method != Method::Get {
        return Some((HttpResponse::new(405), None));
    }
    let r = match rest {
        "callback" => callback(svc, req).await,
        "client-metadata.json" => Ok((HttpResponse::json(200, &client_metadata(svc.origin)), None)),
        slug => start(svc, req, slug).await.map(|r| (r, None)),
    };
    Some(r.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "connect failed");
        let failed = page(
            502,
            "Could not connect",
            "The upstream's authorization server could not be reached or refused. Try again later.",
        );
        (failed, None)
    }))
}

/// The upstream's authorization-server metadata: configured, or via its protected-resource
/// metadata (RFC 9728).
async fn discover(
    svc: &Services<'_>,
    server: &ServerRecord,
    configured: Option<&str>,
) -> Result<Value, CredentialError> {
    let fail = |e: String| needs(server, e);
    let issuer = match configured {
        Some(a) => a.trim_end_matches('/').to_string(),
        None => {
            let u = url::Url::parse(&server.url).map_err(|e| fail(e.to_string()))?;
            let prm_url = format!(
                "{}/.well-known/oauth-protected-resource{}",
                u.origin().ascii_serialization(),
                u.path().trim_end_matches('/')
            );
            let prm = get_json(svc.http, &prm_url).await.map_err(|e| fail(e.to_string()))?;
            prm.pointer("/authorization_servers/0")
                .and_then(Value::as_str)
                .ok_or_else(|| fail("no authorization server".into()))?
                .trim_end_matches('/')
                .to_string()
        }
    };
    match get_json(svc.http, &format!("{issuer}/.well-known/oauth-authorization-server")).await {
        Ok(m) => Ok(m),
        Err(_) => get_json(svc.http, &format!("{issuer}/.well-known/openid-configuration"))
            .await
            .map_err(|e| fail(e.to_string())),
    }
}

async fn start(svc: &Services<'_>, req: &HttpRequest, slug: &str) -> Result<HttpResponse, CredentialError> {
    let q = query(req);
    let ticket = param(&q, "ticket").unwrap_or("");
    let Some(p) = svc.oauth.take_pending(&format!("connect:{ticket}"), svc.now_ms).await? else {
        return Ok(page(
            400,
            "Link expired",
            "This connect link is unknown or expired. Call the tool again to get a new one.",
        ));
    };
    let user = p.get("user").and_then(Value::as_str).unwrap_or("").to_string();
    if p.get("server").and_then(Value::as_str) != Some(slug) {
        return Ok(page(400, "Wrong link", "This link is for another server."));
    }
    let server = svc
        .registry
        .get_server(slug)
        .await?
        .ok_or(CredentialError::UnknownServer)?;
    let CredentialSpec::OauthUser {
        authorization_server,
        client_id,
        scopes,
    } = oauth_user_spec(svc, &server).await?
    else {
        return Ok(page(400, "Not needed", "This server does not use per-user accounts."));
    };
    let meta = discover(svc, &server, authorization_server.as_deref()).await?;
    let field = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(authorize), Some(token_endpoint)) = (field("authorization_endpoint"), field("token_endpoint")) else {
        return Err(needs(&server, "authorization server metadata is incomplete"));
    };
    let redirect = format!("{}/connect/callback", svc.origin);
    let client_id = match choose_client(client_id, &meta, svc.origin) {
        ClientChoice::Use(c) => c,
        ClientChoice::Register => register_client(svc, &server, field("registration_endpoint"), &redirect).await?,
    };
    let verifier = crypto::random_token::<32>();
    let state = crypto::random_token::<32>();
    let resource = server.url.trim_end_matches('/').to_string();
    let pending = json!({"user": user, "server": slug, "verifier": verifier, "client_id": client_id, "token_endpoint": token_endpoint, "resource": resource});
    svc.oauth
        .put_pending(&format!("connectcb:{state}"), &pending, svc.now_ms + TICKET_TTL_MS)
        .await?;
    let mut u = url::Url::parse(&authorize).map_err(|e| needs(&server, e))?;
    {
        let mut qp = u.query_pairs_mut();
        qp.append_pair("response_type", "code")
            .append_pair("client_id", &client_id)
            .append_pair("redirect_uri", &redirect)
            .append_pair("state", &state)
            .append_pair("code_challenge", &s256(&verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", &resource);
        if !scopes.is_empty() {
            qp.append_pair("scope", &scopes.join(" "));
        }
    }
    Ok(HttpResponse::new(302)
        .with_header("location", u.as_str())
        .with_header("cache-control", "no-store"))
}

/// The gateway's own Client ID Metadata Document: its URL is its client id.
pub fn client_metadata(origin: &str) -> Value {
    json!({
        "client_id": format!("{origin}/connect/client-metadata.json"),
        "client_name": "MCP Gateway",
        "redirect_uris": [format!("{origin}/connect/callback")],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

#[derive(Debug, PartialEq)]
pub enum ClientChoice {
    Use(String),
    Register,
}

/// Which client id to use at an upstream authorization server: the configured one; else the
/// gateway's metadata document, where the server accepts those (and the gateway has an https
/// origin the server can fetch); else dynamic registration.
pub fn choose_client(configured: Option<String>, as_meta: &Value, origin: &str) -> ClientChoice {
    if let Some(c) = configured {
        return ClientChoice::Use(c);
    }
    let cimd = as_meta
        .get("client_id_metadata_document_supported")
        .and_then(Value::as_bool)
        == Some(true);
    if cimd && origin.starts_with("https://") {
        return ClientChoice::Use(format!("{origin}/connect/client-metadata.json"));
    }
    ClientChoice::Register
}

/// A client id at the upstream's authorization server, registered once per server (RFC 7591).
async fn register_client(
    svc: &Services<'_>,
    server: &ServerRecord,
    endpoint: Option<String>,
    redirect: &str,
) -> Result<String, CredentialError> {
    let cache = format!("oauthclient:server:{}", server.slug);
    if let Some(id) = svc.secrets.get_secret(&cache).await? {
        return Ok(id);
    }
    let endpoint =
        endpoint.ok_or_else(|| needs(server, "no client_id configured and no dynamic registration offered"))?;
    let body = json!({
        "client_name": "MCP Gateway",
        "redirect_uris": [redirect],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    let resp = svc
        .http
        .send(OutboundRequest {
            method: Method::Post,
            url: endpoint,
            headers: Headers::new()
                .with("content-type", "application/json")
                .with("accept", "application/json"),
            body: Some(body.to_string().into_bytes()),
            timeout_ms: CONNECT_FETCH_TIMEOUT_MS,
        })
        .await
        .map_err(|e| needs(server, e))?;
    let v: Value = match resp.body {
        Body::Bytes(b) if resp.status == 201 || resp.status == 200 => serde_json::from_slice(&b).unwrap_or(Value::Null),
        _ => {
            return Err(needs(
                server,
                format!("client registration refused: HTTP {}", resp.status),
            ))
        }
    };
    let id = v
        .get("client_id")
        .and_then(Value::as_str)
        .ok_or_else(|| needs(server, "registration gave no client_id"))?;
    svc.secrets.put_secret(&cache, id).await?;
    Ok(id.to_string())
}

async fn callback(svc: &Services<'_>, req: &HttpRequest) -> Result<(HttpResponse, Option<Connected>), CredentialError> {
    let q = query(req);
    let Some(p) = svc
        .oauth
        .take_pending(&format!("connectcb:{}", param(&q, "state").unwrap_or("")), svc.now_ms)
        .await?
    else {
        return Ok((
            page(
                400,
                "Link expired",
                "This sign-in is unknown or expired. Call the tool again to get a new link.",
            ),
            None,
        ));
    };
    let f = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let server = svc
        .registry
        .get_server(&f("server"))
        .await?
        .ok_or(CredentialError::UnknownServer)?;
    let Some(code) = param(&q, "code") else {
        return Ok((
            page(400, "Not connected", "The authorization server did not grant access."),
            None,
        ));
    };
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", &format!("{}/connect/callback", svc.origin))
        .append_pair("client_id", &f("client_id"))
        .append_pair("code_verifier", &f("verifier"))
        .append_pair("resource", &f("resource"))
        .finish();
    let v = super::post_token_form(svc, &f("token_endpoint"), form)
        .await
        .map_err(|e| needs(&server, e))?;
    let t = token_from(
        &v,
        svc.now_ms,
        None,
        &f("token_endpoint"),
        &f("client_id"),
        &f("resource"),
    )
    .ok_or_else(|| needs(&server, "no access_token"))?;
    let user = f("user");
    store_token(svc, &server.slug, &user, &t).await?;
    write_meta(
        svc,
        &ConnectionMeta {
            server: server.slug.clone(),
            user: user.clone(),
            status: "connected".into(),
            connected_at: svc.now(),
            refreshed_at: None,
            expires_at: Some(crate::store::timestamp(t.expires_at_ms)),
            last_error: None,
        },
    )
    .await;
    // A per-user server registered before anyone connected has no catalog yet: the caller
    // (which may reach the gateway's sync) reads it now, as this user.
    let first = server.last_synced_at.is_none().then(|| Connected {
        server: server.clone(),
        user: user.clone(),
    });
    let page = page(
        200,
        "Connected",
        &format!(
            "Your account is connected to {}. You can close this window.",
            server.name
        ),
    );
    Ok((page, first))
}

/// Connections of a server, for `GET /admin/v1/servers/{slug}/connections`.
pub async fn connections(svc: &Services<'_>, slug: &str) -> Result<Vec<ConnectionMeta>, CredentialError> {
    let mut out = Vec::new();
    for key in svc.secrets.list_secrets(&format!("credmeta:user:{slug}:")).await? {
        if let Some(m) = svc
            .secrets
            .get_secret(&key)
            .await?
            .and_then(|r| serde_json::from_str(&r).ok())
        {
            out.push(m);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_choice() {
        let o = "https://gw.example";
        let cimd = json!({"client_id_metadata_document_supported": true});
        assert_eq!(
            choose_client(Some("pre".into()), &cimd, o),
            ClientChoice::Use("pre".into())
        );
        assert_eq!(
            choose_client(None, &cimd, o),
            ClientChoice::Use("https://gw.example/connect/client-metadata.json".into())
        );
        assert_eq!(choose_client(None, &json!({}), o), ClientChoice::Register);
        assert_eq!(
            choose_client(None, &cimd, "http://127.0.0.1:8787"),
            ClientChoice::Register
        );
        assert_eq!(
            client_metadata(o)["client_id"],
            "https://gw.example/connect/client-metadata.json"
        );
    }

    #[test]
    fn refresh_time() {
        assert_eq!(refresh_at(0, 3_600_000), 3_600_000 - REFRESH_MARGIN_MS);
        assert_eq!(refresh_at(0, 4_000), 2_000, "short-lived tokens refresh at half-life");
    }
}
