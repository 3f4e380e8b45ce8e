//! The gateway core: routing MCP requests to upstream servers in either era, the legacy
//! sessions, catalog sync, and streaming relays. Platform access comes in through `Services`.
pub mod aggregate;
pub mod catalog;
pub mod connect;
pub mod credentials;
pub mod cursor;
pub mod endpoint;
pub mod error;
pub mod forward;
pub mod hub;
pub mod ids;
pub mod link;
pub mod live;
pub mod mrtr;
pub mod names;
pub mod pool;
pub mod relay;
pub mod s2c;
pub mod session;
pub mod sync;
pub mod tail;
pub mod translate;
pub mod upstream;

pub use crate::outbound::deadline;
pub use crate::store::timestamp;
pub mod uris;

#[cfg(test)]
mod e2e_tests;

use crate::config::{clamp_timeout, Config};
use crate::http::Headers;
use crate::store::{ApiKeys, Directory, OAuthStore, Registry, SecretStore, ServerRecord, VirtualServers};

pub use error::GatewayError;
use upstream::{HttpClient, Upstream};

/// What the core needs from the platform for one request.
pub struct Services<'a> {
    pub registry: &'a dyn Registry,
    pub keys: &'a dyn ApiKeys,
    pub virtuals: &'a dyn VirtualServers,
    pub directory: &'a dyn Directory,
    pub oauth: &'a dyn OAuthStore,
    pub secrets: &'a dyn SecretStore,
    /// The gateway's own origin (`https://host`), as clients reach it.
    pub origin: &'a str,
    pub http: &'a dyn HttpClient,
    pub config: &'a Config,
    /// Milliseconds since the Unix epoch, read once per request.
    pub now_ms: u64,
    /// What long-lived streams need (`None` where they are not offered, e.g. native tests).
    pub live: Option<std::rc::Rc<live::LiveDeps>>,
}

impl<'a> Services<'a> {
    /// RFC 3339 timestamp of `now_ms` (how D1 rows record time).
    pub fn now(&self) -> String {
        timestamp(self.now_ms)
    }

    /// The upstream handle for a server, with its timeout and the headers the gateway presents.
    /// The agent's own headers are never copied here: only what the gateway decides to send.
    /// `user`: the principal the request acts for (per-user upstream credentials need it).
    pub async fn upstream(
        &self,
        server: &'a ServerRecord,
        trace: Option<&str>,
        user: Option<&str>,
    ) -> Result<Upstream<'a>, GatewayError> {
        let mut extra = credentials::headers_for(self, server, user).await?;
        if let Some(t) = trace {
            extra.set("traceparent", t);
        }
        Ok(Upstream {
            http: self.http,
            shared_http: self.live.as_ref().map(|l| l.http.clone()),
            url: &server.url,
            slug: &server.slug,
            timeout_ms: server
                .timeout_ms
                .map(clamp_timeout)
                .unwrap_or(self.config.upstream_timeout_ms),
            total_ms: self.config.upstream_total_ms,
            listen_idle_ms: self.config.listen_idle_ms,
            read_only_call: false,
            extra_headers: extra,
            background: self.live.as_ref().map(|d| d.background()),
        })
    }
}

/// A valid W3C `traceparent` from the client, passed upstream so the call joins the agent's trace.
pub fn traceparent(headers: &Headers) -> Option<&str> {
    let t = headers.get("traceparent")?;
    let parts: Vec<&str> = t.split('-').collect();
    let ok = parts.len() == 4
        && parts[0].len() == 2
        && parts[1].len() == 32
        && parts[2].len() == 16
        && parts[3].len() == 2
        && t.chars().all(|c| c == '-' || c.is_ascii_hexdigit());
    ok.then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_traceparent() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        let good = Headers::new().with("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert!(traceparent(&good).is_some());
        assert!(traceparent(&Headers::new().with("traceparent", "00-xyz")).is_none());
    }
}
