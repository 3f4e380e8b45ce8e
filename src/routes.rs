//! The gateway's URL scheme for MCP endpoints: which server or view a path addresses. Plain data,
//! below every layer that needs to know whether a path is an MCP endpoint (the gateway, the OAuth
//! server's resource indicators, the platform's router).
use serde::{Deserialize, Serialize};

/// What an MCP request addresses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// `/mcp/{slug}`: one server, original names.
    Server(String),
    /// `/mcp` or `/mcp/v/{slug}`.
    View(View),
}

impl Target {
    /// The target of an MCP path, or `None` if the path is not an MCP endpoint.
    pub fn from_path(path: &str) -> Option<Self> {
        let rest = path.strip_prefix("/mcp")?;
        let valid = |s: &str| !s.is_empty() && !s.contains('/');
        match rest {
            "" | "/" => Some(Target::View(View::All)),
            r => match r.strip_prefix("/v/") {
                Some(v) if valid(v) => Some(Target::View(View::Virtual(v.to_string()))),
                Some(_) => None,
                None => r
                    .strip_prefix('/')
                    .filter(|s| valid(s))
                    .map(|s| Target::Server(s.to_string())),
            },
        }
    }
}

/// Which aggregated view a request addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "slug", rename_all = "lowercase")]
pub enum View {
    /// `/mcp`: every permitted server.
    All,
    /// `/mcp/v/{slug}`: a virtual server.
    Virtual(String),
}

impl View {
    /// A stable key for the view (cursors and caches are scoped by it).
    pub fn id(&self) -> String {
        match self {
            View::All => "all".into(),
            View::Virtual(s) => format!("v:{s}"),
        }
    }
}
