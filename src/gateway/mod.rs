//! The gateway core: routing MCP requests to upstream servers in either era, the legacy
//! sessions, catalog sync, and streaming relays. Platform access comes in through `Services`.
pub mod aggregate;
pub mod catalog;
pub mod cursor;
pub mod endpoint;
pub mod error;
pub mod forward;
pub mod guardrail_api;
pub mod hub;
pub mod ids;
pub mod link;
pub mod live;
pub mod mrtr;
pub mod names;
pub mod pipeline;
pub mod policies;
pub mod pool;
pub mod record;
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

pub use error::GatewayError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
    }
}
