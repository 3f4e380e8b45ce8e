//! The Model Context Protocol on the wire: JSON-RPC envelopes, both protocol eras, streamable
//! HTTP rules and SSE framing. Nothing here knows about servers, users or storage.
pub mod error;
pub mod jsonrpc;
pub mod methods;
pub mod sse;
pub mod transport;
pub mod version;
