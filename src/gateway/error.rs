//! The gateway layer's error and its one mapping to what a client sees: a JSON-RPC error with its
//! HTTP status. Client-facing text is short and safe; causes go to the log.
use serde_json::json;

use crate::http::HttpResponse;
use crate::mcp::error::codes;
use crate::mcp::error::RpcError;
use crate::mcp::jsonrpc::{self, RequestId};
use crate::policy::AuthError;
use crate::store::StoreError;

use crate::outbound::UpstreamError;
use crate::upstream_auth::CredentialError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GatewayError {
    /// The client's message broke a protocol rule.
    #[error(transparent)]
    Protocol(#[from] RpcError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// No active server with this slug (or the caller may not see it).
    #[error("unknown server")]
    UnknownServer,
    /// Legacy era: the session does not exist, has ended, or belongs to another key.
    #[error("session not found")]
    SessionNotFound,
    #[error("upstream '{slug}': {cause}")]
    Upstream { slug: String, cause: UpstreamError },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The user has not connected their account to this upstream (or must reconnect).
    #[error("upstream '{slug}' needs the user to connect")]
    NeedsConnect { slug: String, url: String },
}

impl From<CredentialError> for GatewayError {
    fn from(e: CredentialError) -> Self {
        match e {
            CredentialError::NeedsConnect { slug, url } => GatewayError::NeedsConnect { slug, url },
            CredentialError::Failed { slug, detail } => {
                GatewayError::upstream(&slug, UpstreamError::Credentials(detail))
            }
            CredentialError::UnknownServer => GatewayError::UnknownServer,
            CredentialError::Store(s) => GatewayError::Store(s),
        }
    }
}

impl GatewayError {
    pub fn upstream(slug: &str, cause: UpstreamError) -> Self {
        GatewayError::Upstream {
            slug: slug.to_string(),
            cause,
        }
    }
}

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
            let reason = upstream_reason(cause);
            let text = match cause {
                UpstreamError::Unreachable(_) => "unreachable".to_string(),
                UpstreamError::Timeout(ms) => format!("timed out after {ms} ms"),
                UpstreamError::ConnectionLost(_) => {
                    "lost the connection during the request (it may or may not have run)".to_string()
                }
                UpstreamError::Status(s) => format!("answered HTTP {s}"),
                UpstreamError::SessionExpired => "dropped the session".to_string(),
                UpstreamError::Garbage(_) => "sent an invalid response".to_string(),
                UpstreamError::Credentials(_) => "could not be authenticated to by the gateway".to_string(),
            };
            // HTTP 200: the request was delivered and answered, by a JSON-RPC error that every
            // client surfaces as the failure of that call.
            RpcError::new(codes::UPSTREAM_ERROR, format!("upstream '{slug}' {text}"), 200)
                .with_data(json!({"upstream": slug, "reason": reason}))
        }
    }
}

/// The short name of an upstream failure (`data.reason` of the client's error, and the reason
/// of an `upstream_error` event).
pub fn upstream_reason(cause: &UpstreamError) -> &'static str {
    match cause {
        UpstreamError::Unreachable(_) => "unreachable",
        UpstreamError::Timeout(_) => "timeout",
        UpstreamError::ConnectionLost(_) => "connection_lost",
        UpstreamError::Status(_) => "status",
        UpstreamError::SessionExpired => "session_expired",
        UpstreamError::Garbage(_) => "invalid_response",
        UpstreamError::Credentials(_) => "credentials",
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
