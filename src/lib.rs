//! MCP Gateway: a Cloudflare Worker that fronts many MCP servers with one endpoint.
//!
//! The core (`mcp`, `gateway`, `policy`, `admin`, `store`) is plain Rust, tested natively;
//! only `platform` touches the Workers runtime.
#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod console;
pub mod context;
pub mod crypto;
pub mod gateway;
pub mod http;
pub mod mcp;
pub mod oauth_server;
pub mod observe;
pub mod outbound;
pub mod policy;
pub mod routes;
pub mod rules;
pub mod snapshot;
pub mod store;
pub mod upstream_auth;
pub mod url_rules;
pub mod vault;

#[cfg(target_arch = "wasm32")]
pub mod platform;

/// End-to-end tests of the core (admin API and gateway against an in-process upstream).
#[cfg(test)]
mod e2e_tests;
