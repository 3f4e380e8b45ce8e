//! Upstream legacy sessions opened by the gateway on behalf of stateless (modern) clients, kept
//! per isolate and per server so that not every modern request pays for an `initialize`.
//!
//! They carry no client identity: the gateway opens them with its own (empty) capabilities, so
//! an upstream never sends server→client requests on them. A session the upstream has dropped is
//! replaced on the next request.
use std::cell::RefCell;
use std::collections::HashMap;

use super::upstream::UpstreamSession;

thread_local! {
    static POOL: RefCell<HashMap<String, UpstreamSession>> = RefCell::new(HashMap::new());
}

/// Pool key: a server's slug and URL (a changed URL must not reuse the old session).
fn key(slug: &str, url: &str) -> String {
    format!("{slug}\n{url}")
}

pub fn get(slug: &str, url: &str) -> Option<UpstreamSession> {
    POOL.with(|p| p.borrow().get(&key(slug, url)).cloned())
}

pub fn put(slug: &str, url: &str, session: UpstreamSession) {
    POOL.with(|p| p.borrow_mut().insert(key(slug, url), session));
}

pub fn forget(slug: &str, url: &str) {
    POOL.with(|p| p.borrow_mut().remove(&key(slug, url)));
}
