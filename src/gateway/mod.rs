//! The gateway core: routing MCP requests to upstream servers in either era, the legacy
//! sessions, catalog sync, and streaming relays. Platform access comes in through `Services`.
pub mod aggregate;
pub mod catalog;
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
pub mod pipeline;
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

pub use crate::context::Services;
use crate::http::Headers;

pub use error::GatewayError;

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
