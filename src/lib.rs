//! MCP Gateway: a Cloudflare Worker that fronts many MCP servers with one endpoint.
//!
//! The core (`mcp`, `gateway`, `policy`, `admin`, `store`) is plain Rust, tested natively;
//! only `platform` touches the Workers runtime.
#![forbid(unsafe_code)]

pub mod crypto;
pub mod http;
pub mod mcp;

#[cfg(target_arch = "wasm32")]
pub mod platform;
