//! Typed configuration, read once per request from Worker vars and secrets.

/// Upstream timeout when neither the server nor `UPSTREAM_TIMEOUT_MS` sets one.
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u32 = 30_000;
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
        Self {
            admin_token,
            allowed_origins,
            upstream_timeout_ms,
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
