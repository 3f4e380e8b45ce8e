//! Property-based tests of the parsers that read untrusted bytes: JSON-RPC envelopes, SSE
//! framing, the streamable-HTTP request checks, tool/resource (un)namespacing and the policy
//! engine (guardrails, the policy parser, the tool-poisoning scan) and YAML configuration documents.
//!
//! Each property runs `PROPTEST_CASES` cases (a small default keeps `cargo test` fast;
//! `scripts/fuzz.sh` runs ≥100,000 per property in release mode) and prints one line
//! `proptest <parser>/<property>: <cases> cases in <time>` so the long run can report them.
#![forbid(unsafe_code)]

mod jsonrpc;
mod names;
mod rules;
mod sse;
mod support;
mod transport;
mod yaml;
