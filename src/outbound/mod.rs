//! What every layer that talks HTTP outward shares: the request, the failure causes, and the
//! client trait the platform implements (the Workers Fetch API in a Worker), with the deadlines
//! that bound each exchange. Above protocol and HTTP types; below policy and the gateway.
pub mod deadline;

use async_trait::async_trait;

use crate::http::{Headers, HttpResponse, Method};

use deadline::Bounds;

/// An outbound HTTP request to an upstream.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub method: Method,
    pub url: String,
    pub headers: Headers,
    pub body: Option<Vec<u8>>,
    /// Time allowed for the whole exchange when sent with `HttpClient::send` (headers and
    /// body); `Upstream` sends with the finer `Bounds` of `send_bounded`.
    pub timeout_ms: u32,
}

/// Why an upstream exchange failed. Client-facing text comes from `error.rs`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpstreamError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("no response within {0} ms")]
    Timeout(u32),
    /// The connection dropped under the request (e.g. a reused keep-alive connection the
    /// upstream had just closed); whether the upstream ran the request is unknown.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    #[error("HTTP status {0}")]
    Status(u16),
    /// The upstream no longer knows our session (HTTP 404 with a session id).
    #[error("upstream session expired")]
    SessionExpired,
    #[error("invalid response: {0}")]
    Garbage(String),
    /// The gateway could not produce its credentials for this upstream.
    #[error("credentials: {0}")]
    Credentials(String),
}

impl UpstreamError {
    /// The cause behind the error text a response body stream ended with.
    pub fn from_stream(e: String) -> Self {
        match e.strip_prefix(deadline::TIMEOUT_PREFIX) {
            Some(rest) => UpstreamError::Timeout(rest.trim_end_matches(" ms").parse().unwrap_or(0)),
            None if is_connection_lost(&e) => UpstreamError::ConnectionLost(e),
            None => UpstreamError::Unreachable(e),
        }
    }
}

/// How the Workers runtime reports a connection that dropped under a request.
pub fn is_connection_lost(text: &str) -> bool {
    text.to_ascii_lowercase().contains("network connection lost")
}

/// The HTTP client the platform provides (the Workers Fetch API in a Worker).
#[async_trait(?Send)]
pub trait HttpClient {
    /// Sends a request bounded as a whole by `req.timeout_ms`.
    async fn send(&self, req: OutboundRequest) -> Result<HttpResponse, UpstreamError>;

    /// Sends a request bounded by `bounds`: response headers within the idle and total
    /// deadlines, a streamed body ended with a timeout error (and the request aborted) when
    /// either passes. Clients without finer control bound the exchange by `req.timeout_ms`.
    async fn send_bounded(&self, req: OutboundRequest, bounds: Bounds) -> Result<HttpResponse, UpstreamError> {
        let _ = bounds;
        self.send(req).await
    }
}

/// Sends an upstream request in the background, beyond the request that started it (where the
/// answer is not awaited: a cancellation, a session's DELETE).
pub type Background = std::rc::Rc<dyn Fn(OutboundRequest)>;
