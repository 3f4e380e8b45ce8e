//! The gateway layer's error. Its one mapping to JSON-RPC lives in `crate::error`.
use crate::mcp::error::RpcError;
use crate::policy::AuthError;
use crate::store::StoreError;

use super::upstream::UpstreamError;

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

impl GatewayError {
    pub fn upstream(slug: &str, cause: UpstreamError) -> Self {
        GatewayError::Upstream {
            slug: slug.to_string(),
            cause,
        }
    }
}
