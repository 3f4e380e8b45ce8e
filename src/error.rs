//! The one mapping from each layer's error to what a client sees: JSON-RPC errors (with their
//! HTTP status) on the MCP endpoints, RFC 9457 problem documents on the admin API. Client-facing
//! text is short and safe; causes go to the log.
use serde_json::json;

use crate::admin::ApiError;
use crate::gateway::upstream::UpstreamError;
use crate::gateway::GatewayError;
use crate::http::HttpResponse;
use crate::mcp::error::{codes, RpcError};
use crate::mcp::jsonrpc::{self, RequestId};
use crate::policy::AuthError;
use crate::store::StoreError;

/// Base of the `type` URIs of problem documents (documented in docs/admin-api.md).
pub const PROBLEM_TYPE_BASE: &str = "https://mcp-gateway.dev/problems/";

/// Maps a gateway error to a JSON-RPC error and its HTTP status.
pub fn to_rpc(e: &GatewayError) -> RpcError {
    match e {
        GatewayError::Protocol(r) => r.clone(),
        GatewayError::Auth(AuthError::Store(s)) | GatewayError::Store(s) => internal(s),
        GatewayError::Auth(AuthError::Provider(detail)) => {
            tracing::warn!(detail = %detail, "identity provider failed");
            RpcError::new(codes::INTERNAL_ERROR, "identity provider unavailable", 503)
        }
        GatewayError::Auth(_) => RpcError::new(
            codes::UNAUTHORIZED,
            "unauthorized: a valid gateway API key is required",
            401,
        ),
        GatewayError::UnknownServer => RpcError::new(codes::INVALID_PARAMS, "unknown server", 404),
        GatewayError::SessionNotFound => RpcError::new(codes::SESSION_NOT_FOUND, "session not found", 404),
        GatewayError::NeedsConnect { slug, url } => RpcError::new(
            codes::INTERNAL_ERROR,
            format!("connect your account to '{slug}' first: open {url}"),
            200,
        )
        .with_data(json!({"upstream": slug, "reason": "needs_connect", "connect_url": url})),
        GatewayError::Upstream { slug, cause } => {
            tracing::warn!(upstream = %slug, cause = %cause, "upstream failed");
            let (reason, text) = match cause {
                UpstreamError::Unreachable(_) => ("unreachable", "unreachable".to_string()),
                UpstreamError::Timeout(ms) => ("timeout", format!("timed out after {ms} ms")),
                UpstreamError::ConnectionLost(_) => (
                    "connection_lost",
                    "lost the connection during the request (it may or may not have run)".to_string(),
                ),
                UpstreamError::Status(s) => ("status", format!("answered HTTP {s}")),
                UpstreamError::SessionExpired => ("session_expired", "dropped the session".to_string()),
                UpstreamError::Garbage(_) => ("invalid_response", "sent an invalid response".to_string()),
                UpstreamError::Credentials(_) => (
                    "credentials",
                    "could not be authenticated to by the gateway".to_string(),
                ),
            };
            // HTTP 200: the request was delivered and answered, by a JSON-RPC error that every
            // client surfaces as the failure of that call.
            RpcError::new(codes::UPSTREAM_ERROR, format!("upstream '{slug}' {text}"), 200)
                .with_data(json!({"upstream": slug, "reason": reason}))
        }
    }
}

fn internal(e: &StoreError) -> RpcError {
    tracing::error!(error = %e, "storage failure");
    RpcError::internal("internal error")
}

/// The HTTP response for a gateway error on an MCP endpoint.
pub fn mcp_error_response(id: Option<&RequestId>, e: &GatewayError) -> HttpResponse {
    let rpc = to_rpc(e);
    let mut resp = HttpResponse::json(rpc.http_status, &jsonrpc::error_response(id, &rpc));
    if rpc.http_status == 401 {
        let challenge = match e {
            GatewayError::Auth(AuthError::Missing) => "Bearer".to_string(),
            _ => r#"Bearer error="invalid_token""#.to_string(),
        };
        resp.headers.set("www-authenticate", challenge);
    }
    resp
}

/// 2025-11-25 `URLElicitationRequiredError` (-32042): the client is asked to open `url` (to
/// connect the user's account to an upstream), then to retry.
pub fn url_elicitation_response(id: Option<&RequestId>, slug: &str, url: &str) -> HttpResponse {
    let message = format!("Connect your account to '{slug}' to continue.");
    let rpc = RpcError::new(codes::URL_ELICITATION_REQUIRED, message.clone(), 200).with_data(json!({
        "elicitations": [{
            "mode": "url",
            "elicitationId": crate::crypto::random_id("elicit_"),
            "url": url,
            "message": message,
        }]
    }));
    HttpResponse::json(200, &jsonrpc::error_response(id, &rpc))
}

/// Maps an admin API error to its problem document.
pub fn problem(e: &ApiError) -> HttpResponse {
    let (status, kind, title) = match e {
        ApiError::Unauthorized(_) => (401, "unauthorized", "Unauthorized"),
        ApiError::Forbidden(_) => (403, "forbidden", "Forbidden"),
        ApiError::NotFound(_) => (404, "not-found", "Not Found"),
        ApiError::MethodNotAllowed => (405, "method-not-allowed", "Method Not Allowed"),
        ApiError::Validation(_) => (422, "validation", "Invalid request"),
        ApiError::BadJson(_) => (400, "bad-json", "Malformed JSON"),
        ApiError::BadRequest(_) => (400, "bad-request", "Bad Request"),
        ApiError::TooLarge => (413, "too-large", "Request body too large"),
        ApiError::UnsupportedMediaType => (415, "unsupported-media-type", "Unsupported Media Type"),
        ApiError::Conflict(_) => (409, "conflict", "Conflict"),
        ApiError::Upstream { .. } => (502, "upstream-unavailable", "Upstream server unavailable"),
        ApiError::Store(_) => (500, "internal", "Internal error"),
    };
    let detail = match e {
        ApiError::Store(s) => {
            tracing::error!(error = %s, "storage failure");
            "an internal error occurred".to_string()
        }
        ApiError::Upstream { slug, cause } => {
            tracing::warn!(upstream = %slug, cause = %cause, "sync failed");
            format!("could not read the catalog of '{slug}': {}", safe_upstream_text(cause))
        }
        ApiError::Unauthorized(AuthError::AdminDisabled) => {
            "the admin API is disabled: set the ADMIN_TOKEN secret".into()
        }
        ApiError::Unauthorized(_) => "a valid admin bearer token is required".into(),
        other => other.to_string(),
    };
    let body = json!({
        "type": format!("{PROBLEM_TYPE_BASE}{kind}"),
        "title": title,
        "status": status,
        "detail": detail,
    });
    let mut resp = HttpResponse::typed(status, "application/problem+json", body.to_string().into_bytes());
    if status == 401 {
        resp.headers.set("www-authenticate", "Bearer");
    }
    resp
}

/// Upstream failure text for admins: the category and the upstream's own words about itself
/// (never our credentials, which are not part of these errors).
fn safe_upstream_text(e: &UpstreamError) -> String {
    e.to_string()
}
