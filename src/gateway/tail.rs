//! Following a legacy session's request streams past a dropped connection. The session's object
//! keeps relaying (and logging) a request's stream after its client has gone; the client's own
//! response, and any later GET with `Last-Event-ID`, read the log from where they stand and then
//! wait for what arrives, until the stream ends — so each event reaches a reader exactly once,
//! whenever it arrives. While a stream runs, its events are also kept in memory (bounded by
//! `MAX_BUFFERED_BYTES` per session object), so its readers are served without reading the log
//! back; the log is read only to resume a stream the object no longer holds in memory.
use std::cell::{Cell, RefCell};
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
/// Event data kept in memory across the streams of one session object; beyond it, the oldest
/// buffers are dropped and their readers read the log instead.
pub const MAX_BUFFERED_BYTES: usize = 256 * 1024;

/// The request streams of one session object: which are still running, and who waits on them.
/// A stream that has ended and has no reader left is kept only as a number, in ranges (stream
/// numbers are allocated in order), so a long session's memory does not grow per request.
#[derive(Default)]
pub struct Tails {
    streams: RefCell<BTreeMap<u64, Tail>>,
    /// Ended streams without readers: first → last number of each run.
    ended: RefCell<BTreeMap<u64, u64>>,
    /// Bytes of event data held in the streams' buffers.
    buffered: Cell<usize>,
}

struct Tail {
    ended: bool,
    waiting: Vec<Waker>,
    /// Readers following the stream (`follow`).
    readers: usize,
    /// Every event of the stream since it opened (seq, data), while kept in memory; `None` once
    /// dropped (read the log).
    events: Option<Vec<(u64, String)>>,
}

impl Default for Tail {
    fn default() -> Self {
        Self {
            ended: false,
            waiting: Vec::new(),
            readers: 0,
            events: Some(Vec::new()),
        }
    }
}

fn weight(events: &[(u64, String)]) -> usize {
    events.iter().map(|(_, d)| d.len()).sum()
}

impl Tails {
    /// A request stream starts.
    pub fn open(&self, stream: u64) {
        self.streams.borrow_mut().insert(stream, Tail::default());
        // Ended streams are remembered for the last `MAX_TRACKED_STREAMS` stream numbers.
        let oldest = stream.saturating_sub(MAX_TRACKED_STREAMS as u64);
        {
            let mut ended = self.ended.borrow_mut();
            while let Some((first, last)) = ended.first_key_value().map(|(a, b)| (*a, *b)) {
                if first >= oldest {
                    break;
                }
                ended.pop_first();
                if last >= oldest {
                    ended.insert(oldest, last);
                    break;
                }
            }
        }
        // Forget the oldest beyond the bound, ended runs first.
        while self.streams.borrow().len() + self.ended.borrow().len() > MAX_TRACKED_STREAMS {
            if self.ended.borrow_mut().pop_first().is_some() {
                continue;
            }
            let oldest = self.streams.borrow_mut().pop_first();
            if let Some((_, t)) = oldest {
                self.forget(t.events.as_deref());
            }
        }
    }

    fn forget(&self, events: Option<&[(u64, String)]>) {
        if let Some(e) = events {
            self.buffered.set(self.buffered.get().saturating_sub(weight(e)));
        }
    }

    /// An ended stream nobody reads any more: keep only its number.
    fn settle(&self, stream: u64) {
        let done = self
            .streams
            .borrow()
            .get(&stream)
            .is_some_and(|t| t.ended && t.readers == 0 && t.waiting.is_empty());
        if !done {
            return;
        }
        if let Some(t) = self.streams.borrow_mut().remove(&stream) {
            self.forget(t.events.as_deref());
        }
        let mut ended = self.ended.borrow_mut();
        let before = ended.range(..=stream).next_back().map(|(a, b)| (*a, *b));
        let after = ended.get(&(stream + 1)).copied();
        let (first, last) = match before {
            Some((a, b)) if b + 1 >= stream => (a, b.max(stream)),
            _ => (stream, stream),
        };
        let last = match after {
            Some(b) => {
                ended.remove(&(stream + 1));
                b.max(last)
            }
            None => last,
        };
        ended.insert(first, last);
    }

    /// Keeps an event of `stream` (just logged as `seq`) in memory for its readers.
    pub fn record(&self, stream: u64, seq: u64, data: &str) {
        {
            let mut s = self.streams.borrow_mut();
            let Some(events) = s.get_mut(&stream).and_then(|t| t.events.as_mut()) else {
                return;
            };
            events.push((seq, data.to_string()));
        }
        self.buffered.set(self.buffered.get() + data.len());
        // Over the bound: drop whole buffers, ended streams first, then the oldest running ones.
        while self.buffered.get() > MAX_BUFFERED_BYTES {
            let mut s = self.streams.borrow_mut();
            let victim = s
                .iter()
                .filter(|(_, t)| t.events.is_some())
                .min_by_key(|(n, t)| (!t.ended, **n))
                .map(|(n, _)| *n);
            let Some(n) = victim else { break };
            let dropped = s.get_mut(&n).and_then(|t| t.events.take());
            drop(s);
            self.forget(dropped.as_deref());
        }
    }

    /// The events of `stream` after `after_seq`, from memory; `None` when not held there.
    fn buffered_after(&self, stream: u64, after_seq: u64) -> Option<Vec<(u64, String)>> {
        let s = self.streams.borrow();
        let events = s.get(&stream)?.events.as_ref()?;
        let from = events.partition_point(|(seq, _)| *seq <= after_seq);
        Some(events[from..].to_vec())
    }

    fn reader(&self, stream: u64, delta: isize) {
        if let Some(t) = self.streams.borrow_mut().get_mut(&stream) {
            t.readers = t.readers.saturating_add_signed(delta);
        }
        if delta < 0 {
            self.settle(stream);
        }
    }

    /// Bytes of event data held in memory.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered.get()
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
        self.settle(stream);
    }

    /// Whether `stream` is a request stream this object relays or relayed.
    pub fn knows(&self, stream: u64) -> bool {
        self.streams.borrow().contains_key(&stream)
            || self
                .ended
                .borrow()
                .range(..=stream)
                .next_back()
                .is_some_and(|(_, last)| *last >= stream)
    }

    /// Streams held in full (running, or ended and still read) and runs of ended ones.
    pub fn held(&self) -> (usize, usize) {
        (self.streams.borrow().len(), self.ended.borrow().len())
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

/// A reader counted on its stream while it lives.
struct Reader {
    tails: Rc<Tails>,
    stream: u64,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.tails.reader(self.stream, -1);
    }
}

/// The events of `stream` after `after_seq` as SSE (ids `{stream}-{seq}`): first what is logged,
/// then each event as it is logged, until the stream ends. Events are read from memory while the
/// object holds them (`Tails::record`), from the log otherwise.
pub fn follow(log: Rc<dyn ReplayLog>, tails: Rc<Tails>, stream: u64, after_seq: u64) -> ByteStream {
    let mut last = after_seq;
    tails.reader(stream, 1);
    let mut reader = Some(Reader {
        tails: tails.clone(),
        stream,
    });
    futures_util::stream::poll_fn(move |cx| {
        let events = tails
            .buffered_after(stream, last)
            .unwrap_or_else(|| log.replay(stream, last));
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
            // At the end: this reader no longer holds the stream in memory.
            reader.take();
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

    /// A log in memory that counts how often it is read back.
    #[derive(Default)]
    struct Log(RefCell<Vec<(u64, u64, String)>>, Cell<usize>);
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
            self.1.set(self.1.get() + 1);
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
            let data = format!("{{\"n\":{seq}}}");
            log.append(4, seq, &data);
            tails.record(4, seq, &data);
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
        tails.record(4, 4, "{\"n\":4}");
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

    /// The live reader of a running stream is served from memory: the log is written, never read
    /// back; a stream whose buffer was dropped (over the bound) reads the same events from the log.
    #[test]
    fn running_streams_are_read_from_memory_and_the_log_only_when_dropped() {
        let log = Rc::new(Log::default());
        let tails = Rc::new(Tails::default());
        tails.open(7);
        let mut r = follow(log.clone(), tails.clone(), 7, 0);
        assert!(poll(&mut r).is_pending());
        for seq in 1..=3 {
            let data = format!("{{\"n\":{seq}}}");
            log.append(7, seq, &data);
            tails.record(7, seq, &data);
            tails.notify(7);
            match poll(&mut r) {
                Poll::Ready(Some(s)) => assert!(s.contains(&format!("id: 7-{seq}")) && s.contains(&data)),
                other => panic!("{other:?}"),
            }
        }
        tails.end(7);
        assert_eq!(poll(&mut r), Poll::Ready(None));
        assert_eq!(
            log.1.get(),
            0,
            "the log is never read back while the stream is held in memory"
        );
        assert_eq!(tails.buffered_bytes(), 0, "a stream read to its end frees its buffer");

        // Another stream, pushed over the bound: its buffer goes, its readers read the log.
        tails.open(8);
        let big = "x".repeat(MAX_BUFFERED_BYTES / 2 + 1);
        for seq in 1..=3 {
            log.append(8, seq, &big);
            tails.record(8, seq, &big);
            assert!(tails.buffered_bytes() <= MAX_BUFFERED_BYTES);
        }
        let mut late = follow(log.clone(), tails.clone(), 8, 1);
        match poll(&mut late) {
            Poll::Ready(Some(s)) => assert!(s.contains("id: 8-2") && s.contains("id: 8-3") && !s.contains("8-1")),
            other => panic!("{other:?}"),
        }
        assert!(log.1.get() > 0, "a dropped buffer is read from the log");
    }

    /// A long session does not grow per request: a stream that ended and has no reader is kept
    /// as a number in a run, and is still known (a resumption of it ends after its log).
    #[test]
    fn ended_streams_read_to_their_end_are_kept_as_runs_of_numbers() {
        let log = Rc::new(Log::default());
        let tails = Rc::new(Tails::default());
        for stream in 1..=1000u64 {
            tails.open(stream);
            let mut r = follow(log.clone(), tails.clone(), stream, 0);
            let data = format!("{{\"n\":{stream}}}");
            log.append(stream, 1, &data);
            tails.record(stream, 1, &data);
            tails.notify(stream);
            tails.end(stream);
            assert!(matches!(poll(&mut r), Poll::Ready(Some(_))));
            assert_eq!(poll(&mut r), Poll::Ready(None));
        }
        assert_eq!(tails.held(), (0, 1), "one run of ended streams, nothing held in full");
        assert_eq!(tails.buffered_bytes(), 0);
        assert!(tails.knows(1000) && tails.knows(990) && !tails.knows(1001));
        assert!(
            !tails.knows(1000 - MAX_TRACKED_STREAMS as u64 - 1),
            "old numbers are forgotten"
        );
        // A stream still read when it ends stays whole until its reader is gone.
        tails.open(1002);
        let r = follow(log.clone(), tails.clone(), 1002, 0);
        tails.end(1002);
        assert_eq!(tails.held(), (1, 1));
        drop(r);
        assert_eq!(tails.held(), (0, 2), "a gap (1001) keeps runs apart");
        assert!(tails.knows(1002) && !tails.knows(1001));
    }
}
