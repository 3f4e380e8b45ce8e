//! Typed configuration, read once per request from Worker vars and secrets.

/// Upstream timeout when neither the server nor `UPSTREAM_TIMEOUT_MS` sets one.
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u32 = 30_000;
/// Items per page of lists the gateway builds itself (aggregated tools, resources, prompts).
pub const DEFAULT_LIST_PAGE_SIZE: usize = 500;
/// How often live streams check whether the catalog changed.
pub const DEFAULT_CATALOG_POLL_MS: u64 = 5_000;
/// Bounds on any configured upstream timeout.
pub const MIN_UPSTREAM_TIMEOUT_MS: u32 = 100;
pub const MAX_UPSTREAM_TIMEOUT_MS: u32 = 300_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Bootstrap admin bearer token (`ADMIN_TOKEN` secret). `None` disables the admin API.
    pub admin_token: Option<String>,
    /// Browser origins allowed on the MCP endpoints (`ALLOWED_ORIGINS`, comma-separated; `*` = any).
    pub allowed_origins: Vec<String>,
    pub upstream_timeout_ms: u32,
    /// Key for signing pagination cursors: `GATEWAY_SECRET`, else derived from `ADMIN_TOKEN`.
    pub cursor_key: Vec<u8>,
    /// `LIST_PAGE_SIZE`: items per page on `/mcp` and virtual servers.
    pub list_page_size: usize,
    /// `CATALOG_POLL_MS`: how often live streams look for catalog changes.
    pub catalog_poll_ms: u64,
    /// `VAULT_KEYS`: master keys for upstream credentials (`None`: credentials cannot be stored).
    pub vault: Option<crate::vault::Vault>,
}

impl Config {
    /// Builds the configuration from a lookup of vars/secrets by name.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let admin_token = get("ADMIN_TOKEN").filter(|t| !t.trim().is_empty());
        let allowed_origins = get("ALLOWED_ORIGINS")
            .map(|s| {
                s.split(',')
                    .map(|o| o.trim().to_string())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let upstream_timeout_ms = get("UPSTREAM_TIMEOUT_MS")
            .and_then(|s| s.trim().parse().ok())
            .map(clamp_timeout)
            .unwrap_or(DEFAULT_UPSTREAM_TIMEOUT_MS);
        let secret = get("GATEWAY_SECRET").filter(|t| !t.trim().is_empty());
        // Domain-separated, so the admin token itself is never the signing key.
        let seed = secret.or(admin_token.clone()).unwrap_or_default();
        let cursor_key = crate::crypto::sha256_hex(format!("mcp-gateway cursor key\n{seed}").as_bytes()).into_bytes();
        let list_page_size = get("LIST_PAGE_SIZE")
            .and_then(|s| s.trim().parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_LIST_PAGE_SIZE);
        let catalog_poll_ms = get("CATALOG_POLL_MS")
            .and_then(|s| s.trim().parse().ok())
            .map(|ms: u64| ms.max(100))
            .unwrap_or(DEFAULT_CATALOG_POLL_MS);
        let vault = get("VAULT_KEYS").and_then(|spec| match crate::vault::Vault::parse(&spec) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(error = %e, "VAULT_KEYS ignored");
                None
            }
        });
        Self {
            admin_token,
            allowed_origins,
            upstream_timeout_ms,
            cursor_key,
            list_page_size,
            catalog_poll_ms,
            vault,
        }
    }
}

pub fn clamp_timeout(ms: u32) -> u32 {
    ms.clamp(MIN_UPSTREAM_TIMEOUT_MS, MAX_UPSTREAM_TIMEOUT_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_defaults() {
        let c = Config::from_lookup(|k| match k {
            "ADMIN_TOKEN" => Some("t".into()),
            "ALLOWED_ORIGINS" => Some("http://a, http://b,".into()),
            "UPSTREAM_TIMEOUT_MS" => Some("5".into()),
            _ => None,
        });
        assert_eq!(c.admin_token.as_deref(), Some("t"));
        assert_eq!(c.allowed_origins, vec!["http://a", "http://b"]);
        assert_eq!(c.upstream_timeout_ms, MIN_UPSTREAM_TIMEOUT_MS);
        let d = Config::from_lookup(|_| None);
        assert_eq!(
            (d.admin_token, d.upstream_timeout_ms),
            (None, DEFAULT_UPSTREAM_TIMEOUT_MS)
        );
    }
}
