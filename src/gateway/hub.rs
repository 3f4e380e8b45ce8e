//! A legacy session's GET stream as a hub: the upstream sessions of an aggregated view are
//! opened lazily, usually after the client opened its GET stream, so each one opened later
//! joins the GET stream that is already open (its server→client requests and notifications
//! would otherwise reach nobody). Both run in the session's Durable Object, so an in-isolate
//! registry by session id finds the open stream.
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};

use async_trait::async_trait;
use futures_util::stream::SelectAll;
use futures_util::StreamExt;

use crate::http::ByteStream;
use crate::store::ServerRecord;

use super::upstream::{Upstream, UpstreamSession};

#[derive(Default)]
struct Hub {
    joining: RefCell<Vec<ByteStream>>,
    waker: RefCell<Option<Waker>>,
}

thread_local! {
    /// The open GET stream of each session in this isolate (at most one is fed: the latest).
    static HUBS: RefCell<HashMap<String, Weak<Hub>>> = RefCell::new(HashMap::new());
}

/// Unregisters the hub when its GET stream is dropped (the client went away).
struct Registration {
    session_id: String,
    hub: Rc<Hub>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        HUBS.with(|h| {
            let mut h = h.borrow_mut();
            if h.get(&self.session_id)
                .is_some_and(|w| w.ptr_eq(&Rc::downgrade(&self.hub)))
            {
                h.remove(&self.session_id);
            }
        });
    }
}

/// The session's GET stream: `streams` merged, and every stream that joins later. It stays
/// open while the client holds it, even when every stream so far has ended.
pub fn merged(session_id: &str, streams: Vec<ByteStream>) -> ByteStream {
    let hub = Rc::new(Hub::default());
    HUBS.with(|h| h.borrow_mut().insert(session_id.to_string(), Rc::downgrade(&hub)));
    let reg = Registration {
        session_id: session_id.to_string(),
        hub,
    };
    let mut all: SelectAll<ByteStream> = streams.into_iter().collect();
    futures_util::stream::poll_fn(move |cx| {
        for s in reg.hub.joining.borrow_mut().drain(..) {
            all.push(s);
        }
        *reg.hub.waker.borrow_mut() = Some(cx.waker().clone());
        match all.poll_next_unpin(cx) {
            Poll::Ready(None) => Poll::Pending,
            other => other,
        }
    })
    .boxed_local()
}

/// Whether the session has an open GET stream in this isolate.
pub fn is_open(session_id: &str) -> bool {
    HUBS.with(|h| h.borrow().get(session_id).is_some_and(|w| w.strong_count() > 0))
}

/// Adds a stream to the session's open GET stream; `false` (and the stream dropped) if none.
pub fn join(session_id: &str, s: ByteStream) -> bool {
    let Some(hub) = HUBS.with(|h| h.borrow().get(session_id).and_then(Weak::upgrade)) else {
        return false;
    };
    hub.joining.borrow_mut().push(s);
    if let Some(w) = hub.waker.borrow_mut().take() {
        w.wake();
    }
    true
}

/// Told when a client's session opens an upstream session (so its stream can join).
#[async_trait(?Send)]
pub trait Opened {
    async fn opened(&self, up: &Upstream<'_>, server: &ServerRecord, session: &UpstreamSession);
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    #[test]
    fn streams_join_an_open_hub_and_leave_with_it() {
        let first: ByteStream = stream::iter(vec![Ok(b"a".to_vec())]).boxed_local();
        let mut merged = merged("sess-1", vec![first]);
        assert!(is_open("sess-1"));
        let next = |m: &mut ByteStream| {
            futures_executor::block_on(futures_util::future::poll_fn(|cx| Poll::Ready(m.poll_next_unpin(cx))))
        };
        assert!(matches!(next(&mut merged), Poll::Ready(Some(Ok(b))) if b == b"a"));
        assert!(next(&mut merged).is_pending(), "stays open when all streams ended");
        assert!(join("sess-1", stream::iter(vec![Ok(b"b".to_vec())]).boxed_local()));
        assert!(matches!(next(&mut merged), Poll::Ready(Some(Ok(b))) if b == b"b"));
        drop(merged);
        assert!(!is_open("sess-1"));
        assert!(!join("sess-1", stream::iter(vec![Ok(b"c".to_vec())]).boxed_local()));
    }
}
