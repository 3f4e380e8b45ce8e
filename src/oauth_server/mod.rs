//! The MCP authorization flow (OAuth 2.1 as the MCP specification profiles it), with the gateway
//! as protected resource and authorization server: metadata (RFC 9728, RFC 8414), client
//! registration (RFC 7591, and Client ID Metadata Documents), authorization code with PKCE S256
//! only, `resource` indicators (RFC 8707), `iss` in the response (RFC 9207). User login is
//! federated to the organization's OIDC provider (code + PKCE upstream). Tokens are opaque,
//! stored only as hashes; refresh tokens rotate; a replayed code or refresh token revokes the
//! whole grant.
mod authorize;
mod clients;
pub mod console_login;
mod token;

use serde_json::{json, Value};

use crate::context::Services;
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::policy::tokens::*;

use self::authorize::{authorize, callback};
use self::clients::register;
use self::token::token;

pub use clients::{
    metadata_document_url, valid_redirect, CIMD_CACHE_MAX, CIMD_CACHE_TTL_MS, CIMD_FETCH_TIMEOUT_MS, CIMD_MAX_BYTES,
};

pub(crate) fn json_resp(status: u16, v: Value) -> HttpResponse {
    HttpResponse::json(status, &v).with_header("cache-control", "no-store")
}

pub(crate) fn oauth_error(status: u16, code: &str, description: &str) -> HttpResponse {
    json_resp(status, json!({"error": code, "error_description": description}))
}

pub(crate) fn redirect(location: &str) -> HttpResponse {
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

pub(crate) fn query(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query.as_deref().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

pub(crate) fn form(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&req.body).into_owned().collect()
}

pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}
