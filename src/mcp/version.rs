//! Protocol revisions and the two eras: legacy (`initialize` + sessions) and modern (stateless).
use rmcp::model::ProtocolVersion;
use serde::{Deserialize, Serialize};

/// The stateless revision the gateway speaks in the modern era.
pub const MODERN: &str = "2026-07-28";
/// The newest revision that still has `initialize`.
pub const LATEST_LEGACY: &str = "2025-11-25";
/// Assumed when a legacy request has no `MCP-Protocol-Version` header (as the spec says).
pub const DEFAULT_LEGACY: &str = "2025-03-26";
/// Legacy revisions accepted from clients over streamable HTTP, oldest first.
pub const LEGACY_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// `_meta` keys of the modern era.
pub mod meta {
    pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
    pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
    pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
    pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
    pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Era {
    /// 2025-11-25 and earlier: `initialize`, `Mcp-Session-Id`, GET stream.
    Legacy,
    /// 2026-07-28 and later: stateless, `_meta` on every request.
    Modern,
}

impl Era {
    pub fn as_str(self) -> &'static str {
        match self {
            Era::Legacy => "legacy",
            Era::Modern => "modern",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "legacy" => Some(Era::Legacy),
            "modern" => Some(Era::Modern),
            _ => None,
        }
    }
}

/// Every revision the gateway serves, for `data.supported` in -32022 errors.
pub fn supported_versions() -> Vec<&'static str> {
    let mut v = vec![MODERN];
    v.extend(LEGACY_VERSIONS.iter().rev());
    v
}

pub fn is_legacy_version(v: &str) -> bool {
    LEGACY_VERSIONS.contains(&v)
}

/// The era a version string belongs to (dated strings order lexically).
pub fn era_of(version: &str) -> Era {
    // Revisions are dated YYYY-MM-DD, so lexical order is chronological.
    if version < ProtocolVersion::NO_INITIALIZE.as_str() {
        Era::Legacy
    } else {
        Era::Modern
    }
}

/// Legacy negotiation: echo the client's version when supported, else offer the latest legacy one.
pub fn negotiate_legacy(requested: Option<&str>) -> &'static str {
    requested
        .and_then(|r| LEGACY_VERSIONS.iter().find(|v| **v == r).copied())
        .unwrap_or(LATEST_LEGACY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eras_and_negotiation() {
        assert_eq!(era_of("2026-07-28"), Era::Modern);
        assert_eq!(era_of("2025-11-25"), Era::Legacy);
        assert_eq!(era_of("2024-11-05"), Era::Legacy);
        assert_eq!(negotiate_legacy(Some("2025-06-18")), "2025-06-18");
        assert_eq!(negotiate_legacy(Some("1999-01-01")), LATEST_LEGACY);
        assert_eq!(negotiate_legacy(None), LATEST_LEGACY);
        assert_eq!(supported_versions()[0], MODERN);
        assert!(supported_versions().contains(&"2024-11-05"));
    }
}
