//! The upstream-authentication layer's error. The gateway maps it into its own
//! (`GatewayError: From<CredentialError>`); admins see it through `ApiError`.
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CredentialError {
    /// The user has not connected their account to this upstream (or must reconnect).
    #[error("upstream '{slug}' needs the user to connect")]
    NeedsConnect { slug: String, url: String },
    /// The stored credential could not be opened or used (cause for logs, never for clients).
    #[error("upstream '{slug}': credentials: {detail}")]
    Failed { slug: String, detail: String },
    /// No such server (or the caller may not see it).
    #[error("unknown server")]
    UnknownServer,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CredentialError {
    pub fn failed(slug: &str, detail: impl std::fmt::Display) -> Self {
        CredentialError::Failed {
            slug: slug.to_string(),
            detail: detail.to_string(),
        }
    }
}
