//! Upstream legacy sessions opened by the gateway on behalf of stateless (modern) clients, kept
//! per isolate, per server and per principal so that not every modern request pays for an
//! `initialize`.
//!
//! A session carries per-session state upstream (capabilities, subscriptions, log level), so
//! one is never shared between principals; requests of one principal share it under
//! gateway-unique ids (see `ids`). The gateway opens them with its own (empty) capabilities, so
//! an upstream never sends server→client requests on them. A session the upstream has dropped
//! is replaced on the next request; beyond `MAX_POOLED_SESSIONS` the least recently used is
//! dropped (it expires upstream).
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::upstream::UpstreamSession;

/// Pooled upstream sessions kept per isolate.
pub const MAX_POOLED_SESSIONS: usize = 256;

/// Pool key: a server's slug and URL (a changed URL must not reuse the old session) and the
/// principal the session acts for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    slug: String,
    url: String,
    principal: String,
}

thread_local! {
    /// Sessions with the tick of their last use.
    static POOL: RefCell<HashMap<Key, (UpstreamSession, u64)>> = RefCell::new(HashMap::new());
    static TICK: Cell<u64> = const { Cell::new(0) };
}

fn key(slug: &str, url: &str, principal: &str) -> Key {
    Key {
        slug: slug.into(),
        url: url.into(),
        principal: principal.into(),
    }
}

fn tick() -> u64 {
    TICK.with(|t| {
        t.set(t.get() + 1);
        t.get()
    })
}

pub fn get(slug: &str, url: &str, principal: &str) -> Option<UpstreamSession> {
    let now = tick();
    POOL.with(|p| {
        p.borrow_mut().get_mut(&key(slug, url, principal)).map(|(s, used)| {
            *used = now;
            s.clone()
        })
    })
}

pub fn put(slug: &str, url: &str, principal: &str, session: UpstreamSession) {
    let now = tick();
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        p.insert(key(slug, url, principal), (session, now));
        while p.len() > MAX_POOLED_SESSIONS {
            let oldest = p.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => p.remove(&k),
                None => break,
            };
        }
    });
}

pub fn forget(slug: &str, url: &str, principal: &str) {
    POOL.with(|p| p.borrow_mut().remove(&key(slug, url, principal)));
}

/// Drops every pooled session with a server (its era or URL may have changed).
pub fn forget_server(slug: &str) {
    POOL.with(|p| p.borrow_mut().retain(|k, _| k.slug != slug));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str) -> UpstreamSession {
        UpstreamSession {
            id: Some(id.into()),
            protocol_version: "2025-11-25".into(),
        }
    }

    #[test]
    fn sessions_are_per_principal_and_bounded() {
        put("s", "http://u", "alice", session("a"));
        put("s", "http://u", "bob", session("b"));
        assert_eq!(get("s", "http://u", "alice").unwrap().id.as_deref(), Some("a"));
        assert_eq!(get("s", "http://u", "bob").unwrap().id.as_deref(), Some("b"));
        assert_eq!(get("s", "http://other", "alice"), None);
        forget("s", "http://u", "alice");
        assert_eq!(get("s", "http://u", "alice"), None);
        assert!(get("s", "http://u", "bob").is_some());
        forget_server("s");
        assert_eq!(get("s", "http://u", "bob"), None);
        for n in 0..MAX_POOLED_SESSIONS + 10 {
            put("t", "http://u", &format!("p{n}"), session("x"));
        }
        assert!(POOL.with(|p| p.borrow().len()) <= MAX_POOLED_SESSIONS);
        assert!(get("t", "http://u", &format!("p{}", MAX_POOLED_SESSIONS + 9)).is_some());
        assert_eq!(get("t", "http://u", "p0"), None);
    }
}
