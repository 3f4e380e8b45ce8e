//! How the gateway authenticates to each upstream: credentials kept sealed in KV (see
//! `crate::vault`), presented as headers on every upstream request. Kinds: `none`, `headers`
//! (static headers such as an API key), and OAuth 2.0 `client_credentials` (a token fetched,
//! cached until shortly before it expires, and refreshed). Credentials are write-only: reads
//! return metadata.
pub mod connect;
mod error;

pub use error::CredentialError;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http::{Body, Headers, Method};
use crate::store::ServerRecord;

use crate::context::Services;
use crate::outbound::OutboundRequest;

/// A cached client-credentials token is renewed this long before it expires.
pub const TOKEN_RENEW_BEFORE_MS: u64 = 60 * 1000;
/// Used when a token endpoint does not say how long its token lives.
pub const DEFAULT_TOKEN_TTL_MS: u64 = 5 * 60 * 1000;
pub const TOKEN_FETCH_TIMEOUT_MS: u32 = 10_000;
/// Headers an operator may not set (they belong to the transport or to the gateway).
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
];

/// What `PUT /admin/v1/servers/{slug}/credentials` takes.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialSpec {
    /// An empty struct, not a unit variant: serde refuses unknown fields only in struct variants
    /// (`{"kind": "none", "x": 1}` was accepted).
    None {},
    Headers {
        headers: BTreeMap<String, String>,
    },
    ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: String,
        #[serde(default)]
        scopes: Vec<String>,
        audience: Option<String>,
        resource: Option<String>,
    },
    /// Each user connects their own account (`/connect/{slug}`); tokens are kept per user.
    OauthUser {
        /// The upstream's authorization server; discovered from its protected-resource metadata
        /// when absent.
        authorization_server: Option<String>,
        /// A client id registered at that server; registered dynamically when absent.
        client_id: Option<String>,
        #[serde(default)]
        scopes: Vec<String>,
    },
}

impl std::fmt::Debug for CredentialSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        write!(f, "CredentialSpec({})", self.kind())
    }
}

impl CredentialSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            CredentialSpec::None {} => "none",
            CredentialSpec::Headers { .. } => "headers",
            CredentialSpec::ClientCredentials { .. } => "client_credentials",
            CredentialSpec::OauthUser { .. } => "oauth_user",
        }
    }

    /// Checks what an admin sent; the message names the field, never its value.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            CredentialSpec::None {} => Ok(()),
            CredentialSpec::Headers { headers } => {
                if headers.is_empty() || headers.len() > 20 {
                    return Err("headers must hold 1 to 20 headers".into());
                }
                for (k, v) in headers {
                    let name_ok = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
                    if !name_ok || RESERVED_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                        return Err(format!("header name '{k}' is not allowed"));
                    }
                    if v.bytes().any(|b| b < 0x20 || b == 0x7f) || v.len() > 8192 {
                        return Err(format!("the value of header '{k}' is not a valid header value"));
                    }
                }
                Ok(())
            }
            CredentialSpec::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                ..
            } => {
                if !url::Url::parse(token_url).is_ok_and(|u| matches!(u.scheme(), "https" | "http")) {
                    return Err("token_url must be an absolute http(s) URL".into());
                }
                if client_id.is_empty() || client_secret.is_empty() {
                    return Err("client_id and client_secret are required".into());
                }
                Ok(())
            }
            CredentialSpec::OauthUser {
                authorization_server, ..
            } => match authorization_server {
                Some(a) if !url::Url::parse(a).is_ok_and(|u| matches!(u.scheme(), "https" | "http")) => {
                    Err("authorization_server must be an absolute http(s) URL".into())
                }
                _ => Ok(()),
            },
        }
    }
}

/// What the admin API shows of a credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialMeta {
    pub server: String,
    pub kind: String,
    pub created_at: String,
    pub rotated_at: Option<String>,
    /// `ok`, or `failing` with `last_error` (e.g. the token endpoint refused).
    pub status: String,
    pub last_error: Option<String>,
    /// Client credentials: when the cached token expires (RFC 3339).
    pub token_expires_at: Option<String>,
}

/// KV key of a server's sealed credential (bound into the ciphertext as associated data).
pub fn secret_key(slug: &str) -> String {
    format!("cred:server:{slug}")
}

/// KV key of its metadata (not secret).
pub fn meta_key(slug: &str) -> String {
    format!("credmeta:server:{slug}")
}

thread_local! {
    /// Client-credentials tokens per server, per isolate: (token, expires at ms, credential version).
    static TOKENS: RefCell<HashMap<String, (String, u64, String)>> = RefCell::new(HashMap::new());
}

fn cred_error(server: &ServerRecord, e: impl std::fmt::Display) -> CredentialError {
    tracing::warn!(upstream = %server.slug, error = %e, "upstream credentials failed");
    CredentialError::failed(&server.slug, e)
}

/// The headers the gateway presents to `server`, from its sealed credential.
pub async fn headers_for(
    svc: &Services<'_>,
    server: &ServerRecord,
    user: Option<&str>,
) -> Result<Headers, CredentialError> {
    let Some(sealed) = svc.secrets.get_secret(&secret_key(&server.slug)).await? else {
        return Ok(Headers::new());
    };
    let vault = svc
        .config
        .vault
        .as_ref()
        .ok_or_else(|| cred_error(server, "VAULT_KEYS is not configured"))?;
    let plain = vault
        .open(&secret_key(&server.slug), &sealed)
        .map_err(|e| cred_error(server, e))?;
    let spec: CredentialSpec =
        serde_json::from_slice(&plain).map_err(|_| cred_error(server, "unreadable credential"))?;
    let mut h = Headers::new();
    match spec {
        CredentialSpec::None {} => {}
        CredentialSpec::OauthUser { .. } => {
            let token = connect::user_access_token(svc, server, user).await?;
            h.set("authorization", format!("Bearer {token}"));
        }
        CredentialSpec::Headers { headers } => {
            for (k, v) in headers {
                h.set(&k, v);
            }
        }
        CredentialSpec::ClientCredentials {
            token_url,
            client_id,
            client_secret,
            scopes,
            audience,
            resource,
        } => {
            // The sealed value identifies the credential version: a rotation invalidates the cache.
            let version = crate::crypto::sha256_hex(sealed.as_bytes());
            let cached = TOKENS.with(|t| t.borrow().get(&server.slug).cloned());
            let token = match cached.filter(|(_, exp, v)| *v == version && svc.now_ms + TOKEN_RENEW_BEFORE_MS < *exp) {
                Some((tok, _, _)) => tok,
                None => {
                    let mut form = url::form_urlencoded::Serializer::new(String::new());
                    form.append_pair("grant_type", "client_credentials")
                        .append_pair("client_id", &client_id)
                        .append_pair("client_secret", &client_secret);
                    if !scopes.is_empty() {
                        form.append_pair("scope", &scopes.join(" "));
                    }
                    if let Some(a) = &audience {
                        form.append_pair("audience", a);
                    }
                    if let Some(r) = &resource {
                        form.append_pair("resource", r);
                    }
                    let (tok, exp) = match fetch_token(svc, &token_url, form.finish()).await {
                        Ok(t) => t,
                        Err(e) => {
                            record(svc, server, Some(&e), None).await;
                            return Err(cred_error(server, e));
                        }
                    };
                    TOKENS.with(|t| t.borrow_mut().insert(server.slug.clone(), (tok.clone(), exp, version)));
                    record(svc, server, None, Some(exp)).await;
                    tok
                }
            };
            h.set("authorization", format!("Bearer {token}"));
        }
    }
    Ok(h)
}

async fn fetch_token(svc: &Services<'_>, url: &str, form: String) -> Result<(String, u64), String> {
    let body = post_token_form(svc, url, form).await?;
    let token = body
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or("token endpoint sent no access_token")?;
    let ttl = body
        .get("expires_in")
        .and_then(Value::as_u64)
        .map(|s| s * 1000)
        .unwrap_or(DEFAULT_TOKEN_TTL_MS);
    Ok((token.to_string(), svc.now_ms + ttl))
}

/// POSTs a form to an OAuth token endpoint; its JSON answer, or a message naming the HTTP
/// status and the endpoint's error code (never the form's secrets).
pub async fn post_token_form(svc: &Services<'_>, url: &str, form: String) -> Result<Value, String> {
    let resp = svc
        .http
        .send(OutboundRequest {
            method: Method::Post,
            url: url.to_string(),
            headers: Headers::new()
                .with("content-type", "application/x-www-form-urlencoded")
                .with("accept", "application/json"),
            body: Some(form.into_bytes()),
            timeout_ms: TOKEN_FETCH_TIMEOUT_MS,
        })
        .await
        .map_err(|e| format!("token endpoint: {e}"))?;
    let body: Value = match resp.body {
        Body::Bytes(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    if resp.status != 200 {
        let err = body.get("error").and_then(Value::as_str).unwrap_or("no error code");
        return Err(format!("token endpoint refused: HTTP {} ({err})", resp.status));
    }
    Ok(body)
}

/// Records the outcome of a token fetch in the credential's metadata.
async fn record(svc: &Services<'_>, server: &ServerRecord, error: Option<&str>, expires_ms: Option<u64>) {
    let key = meta_key(&server.slug);
    let Ok(Some(raw)) = svc.secrets.get_secret(&key).await else {
        return;
    };
    let Ok(mut meta) = serde_json::from_str::<CredentialMeta>(&raw) else {
        return;
    };
    meta.status = if error.is_some() { "failing".into() } else { "ok".into() };
    meta.last_error = error.map(str::to_string);
    if let Some(ms) = expires_ms {
        meta.token_expires_at = Some(crate::store::timestamp(ms));
    }
    if let Ok(json) = serde_json::to_string(&meta) {
        let _ = svc.secrets.put_secret(&key, &json).await;
    }
}

/// Drops a server's cached token (after its credential changed or was deleted).
pub fn forget_token(slug: &str) {
    TOKENS.with(|t| t.borrow_mut().remove(slug));
}

#[cfg(test)]
mod tests {
    use super::CredentialSpec;

    #[test]
    fn every_kind_refuses_unknown_fields_and_none_keeps_its_form() {
        let none: CredentialSpec = serde_json::from_str(r#"{"kind":"none"}"#).unwrap();
        assert_eq!(serde_json::to_string(&none).unwrap(), r#"{"kind":"none"}"#);
        for extra in [
            r#"{"kind":"none","x":1}"#,
            r#"{"kind":"headers","headers":{"a":"b"},"x":1}"#,
            r#"{"kind":"oauth_user","x":1}"#,
        ] {
            assert!(serde_json::from_str::<CredentialSpec>(extra).is_err(), "{extra}");
        }
    }
}
