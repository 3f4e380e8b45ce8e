//! The protocol layer's error: a JSON-RPC error object, and the HTTP status it travels with.
use serde_json::Value;

/// JSON-RPC and MCP error codes used by the gateway.
pub mod codes {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// 2026-07-28: an `Mcp-Method` / `Mcp-Name` header disagrees with the body.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// 2026-07-28: the request needs a client capability that was not declared.
    pub const MISSING_CLIENT_CAPABILITY: i64 = -32021;
    /// 2026-07-28: the protocol version is not supported (`data.supported` lists what is).
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
    /// An upstream failed (unreachable, timed out, 5xx, garbage). -32603 rather than a code of
    /// the -32000 range, which 2026-07-28 asks new implementations not to use; `data` says more.
    pub const UPSTREAM_ERROR: i64 = INTERNAL_ERROR;
    /// Legacy era only: the session is unknown or has ended (sent with HTTP 404), as the
    /// reference SDKs answer it.
    pub const SESSION_NOT_FOUND: i64 = -32001;
    /// 2025-11-25 only: the client must open a URL (URL-mode elicitation) before retrying.
    pub const URL_ELICITATION_REQUIRED: i64 = -32042;
    /// Sent with HTTP 401 on the MCP endpoints.
    pub const UNAUTHORIZED: i64 = -32001;
    /// A policy refused the call or withheld its result (`data.policy_id`, `data.rule`).
    /// Application codes sit outside JSON-RPC's reserved -32768..-32000.
    pub const POLICY_DENIED: i64 = -31001;
    /// A rate limit or quota refused the call (`data.retry_after_ms`, `data.policy_id`).
    pub const RATE_LIMITED: i64 = -31002;
    /// A policy holds the call for a human (`data.approval_id`, `data.url`); retry once approved.
    pub const APPROVAL_REQUIRED: i64 = -31003;
}

/// A JSON-RPC error with the HTTP status that carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
    pub http_status: u16,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>, http_status: u16) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
            http_status,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn parse(message: impl Into<String>) -> Self {
        Self::new(codes::PARSE_ERROR, message, 400)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_REQUEST, message, 400)
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(codes::METHOD_NOT_FOUND, format!("method not found: {method}"), 404)
    }

    /// Invalid params travel with HTTP 200 in the legacy era: the request was delivered,
    /// the JSON-RPC layer refused it.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_PARAMS, message, 200)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(codes::INTERNAL_ERROR, message, 500)
    }

    pub fn header_mismatch(message: impl Into<String>) -> Self {
        Self::new(codes::HEADER_MISMATCH, message, 400)
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for RpcError {}
