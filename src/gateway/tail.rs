//! Following a legacy session's request streams past a dropped connection. The session's object
//! keeps relaying (and logging) a request's stream after its client has gone; the client's own
//! response, and any later GET with `Last-Event-ID`, read the log from where they stand and then
//! wait for what arrives, until the stream ends — so each event reaches a reader exactly once,
//! whenever it arrives.
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::task::{Poll, Waker};

use futures_util::StreamExt;

use crate::http::ByteStream;
use crate::mcp::sse;

use super::session::ReplayLog;

/// Request streams a session object remembers (oldest forgotten first); a stream it no longer
/// knows is read from the log only.
pub const MAX_TRACKED_STREAMS: usize = 256;

/// The request streams of one session object: which are still running, and who waits on them.
#[derive(Default)]
pub struct Tails {
    streams: RefCell<BTreeMap<u64, Tail>>,
}

#[derive(Default)]
struct Tail {
    ended: bool,
    waiting: Vec<Waker>,
}

impl Tails {
    /// A request stream starts.
    pub fn open(&self, stream: u64) {
        let mut s = self.streams.borrow_mut();
        s.insert(stream, Tail::default());
        while s.len() > MAX_TRACKED_STREAMS {
            s.pop_first();
        }
    }

    /// Something was logged on `stream`: wake its readers.
    pub fn notify(&self, stream: u64) {
        let wakers = match self.streams.borrow_mut().get_mut(&stream) {
            Some(t) => std::mem::take(&mut t.waiting),
            None => return,
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// The stream is over (its response went out, or it failed).
    pub fn end(&self, stream: u64) {
        if let Some(t) = self.streams.borrow_mut().get_mut(&stream) {
            t.ended = true;
        }
        self.notify(stream);
    }

    /// Whether `stream` is a request stream this object relays or relayed.
    pub fn knows(&self, stream: u64) -> bool {
        self.streams.borrow().contains_key(&stream)
    }

    /// Registers a reader of a running stream; `false` if the stream is over (or unknown).
    fn wait(&self, stream: u64, waker: &Waker) -> bool {
        match self.streams.borrow_mut().get_mut(&stream) {
            Some(t) if !t.ended => {
                t.waiting.push(waker.clone());
                true
            }
            _ => false,
        }
    }
}

/// The events of `stream` after `after_seq` as SSE (ids `{stream}-{seq}`): first what is logged,
/// then each event as it is logged, until the stream ends.
pub fn follow(log: Rc<dyn ReplayLog>, tails: Rc<Tails>, stream: u64, after_seq: u64) -> ByteStream {
    let mut last = after_seq;
    futures_util::stream::poll_fn(move |cx| {
        let events = log.replay(stream, last);
        if !events.is_empty() {
            let mut out = String::new();
            for (seq, data) in events {
                last = seq;
                let ev = sse::Event {
                    id: Some(format!("{stream}-{seq}")),
                    ..sse::Event::message(data)
                };
                out.push_str(&ev.encode());
            }
            return Poll::Ready(Some(Ok(out.into_bytes())));
        }
        if tails.wait(stream, cx.waker()) {
            Poll::Pending
        } else {
            Poll::Ready(None)
        }
    })
    .boxed_local()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::relay::EventLog;
    use futures_util::task::noop_waker;
    use std::task::Context;

    #[derive(Default)]
    struct Log(RefCell<Vec<(u64, u64, String)>>);
    impl EventLog for Log {
        fn append(&self, stream: u64, seq: u64, data: &str) {
            self.0.borrow_mut().push((stream, seq, data.into()));
        }
    }
    impl crate::gateway::s2c::OutstandingBook for Log {
        fn remember(&self, _: &str, _: &crate::gateway::s2c::Outstanding) {}
        fn take(&self, _: &str) -> Option<crate::gateway::s2c::Outstanding> {
            None
        }
    }
    impl crate::gateway::session::StateWrites for Log {
        fn set_log_level(&self, _: Option<&str>) {}
        fn set_upstream(&self, _: &str, _: Option<&crate::gateway::upstream::UpstreamSession>) {}
    }
    impl ReplayLog for Log {
        fn next_stream(&self) -> u64 {
            1
        }
        fn replay(&self, stream: u64, after: u64) -> Vec<(u64, String)> {
            let l = self.0.borrow();
            l.iter()
                .filter(|e| e.0 == stream && e.1 > after)
                .map(|e| (e.1, e.2.clone()))
                .collect()
        }
    }

    fn poll(s: &mut ByteStream) -> Poll<Option<String>> {
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        s.poll_next_unpin(&mut cx)
            .map(|o| o.map(|b| String::from_utf8(b.unwrap()).unwrap()))
    }

    #[test]
    fn resumed_reader_gets_the_rest_and_what_comes_later_exactly_once() {
        let log = Rc::new(Log::default());
        let tails = Rc::new(Tails::default());
        tails.open(4);
        for seq in 1..=3 {
            log.append(4, seq, &format!("{{\"n\":{seq}}}"));
        }
        log.append(5, 1, "{\"other\":true}");
        let mut r = follow(log.clone(), tails.clone(), 4, 1);
        let first = match poll(&mut r) {
            Poll::Ready(Some(s)) => s,
            other => panic!("{other:?}"),
        };
        assert!(first.contains("id: 4-2") && first.contains("id: 4-3") && !first.contains("4-1"));
        assert!(!first.contains("other"));
        assert!(poll(&mut r).is_pending(), "waits for more while the stream runs");
        log.append(4, 4, "{\"n\":4}");
        tails.notify(4);
        match poll(&mut r) {
            Poll::Ready(Some(s)) => assert!(s.contains("id: 4-4") && !s.contains("4-3")),
            other => panic!("{other:?}"),
        }
        tails.end(4);
        assert_eq!(poll(&mut r), Poll::Ready(None));
        // An unknown stream yields its log and ends.
        let mut old = follow(log, tails, 5, 0);
        assert!(matches!(poll(&mut old), Poll::Ready(Some(s)) if s.contains("5-1")));
        assert_eq!(poll(&mut old), Poll::Ready(None));
    }
}
