//! Deadlines on upstream response bodies: a total deadline and an idle deadline, where "idle"
//! means no progress. What counts as progress depends on the exchange: on a request's response
//! stream only a complete SSE event carrying data (a JSON-RPC message, progress notifications
//! included) — keep-alive comments and empty priming events do not, or an upstream could hold a
//! call open forever; on a long-lived listen stream any byte, keep-alives included. While the
//! upstream waits for the client to answer a request it sent (`Hold`), it cannot make progress:
//! the idle deadline is paused then, the total deadline still runs.
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use std::task::{Poll, Waker};

use futures_util::future::{select, Either, LocalBoxFuture};
use futures_util::{FutureExt, StreamExt};

use crate::http::ByteStream;
use crate::mcp::sse;

/// Error text a bounded stream ends with when a deadline passes (read back by
/// `UpstreamError::from_stream`, so the client sees reason `timeout`).
pub const TIMEOUT_PREFIX: &str = "deadline passed after ";

/// What keeps an upstream response alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// A complete SSE event with data (a JSON-RPC message); for a JSON body, any bytes.
    Messages,
    /// Any bytes, keep-alive comments included (long-lived listen / GET streams).
    Bytes,
}

/// Server→client requests (elicitation, sampling, roots) relayed from an exchange's response
/// stream and not yet answered by the client. While any is outstanding the upstream is waiting
/// for a person or a model, not stalled: the exchange's idle deadline is paused, and it starts
/// afresh when the last one is answered.
#[derive(Debug, Default)]
pub struct Hold {
    outstanding: Cell<u32>,
    /// Bumped on every change, so the guard waiting on the exchange notices it at once.
    changes: Cell<u64>,
    waker: RefCell<Option<Waker>>,
}

impl PartialEq for Hold {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Hold {}

impl Hold {
    /// A request went to the client.
    pub fn take(&self) {
        self.outstanding.set(self.outstanding.get() + 1);
        self.changed_now();
    }

    /// The client's answer went upstream (or will never come).
    pub fn release(&self) {
        self.outstanding.set(self.outstanding.get().saturating_sub(1));
        self.changed_now();
    }

    pub fn active(&self) -> bool {
        self.outstanding.get() > 0
    }

    fn changed_now(&self) {
        self.changes.set(self.changes.get() + 1);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Resolves at the next `take` or `release`.
    fn changed(self: &Rc<Self>) -> LocalBoxFuture<'static, ()> {
        let (hold, seen) = (self.clone(), self.changes.get());
        Box::pin(futures_util::future::poll_fn(move |cx| {
            if hold.changes.get() != seen {
                return Poll::Ready(());
            }
            *hold.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }))
    }
}

/// The bounds of one upstream exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    /// Longest wait without progress (response headers count as progress).
    pub idle_ms: u32,
    /// Longest the whole exchange may take, headers and body; `None` for long-lived streams.
    pub total_ms: Option<u32>,
    pub activity: Activity,
    /// Pauses the idle deadline while the upstream waits for the client (see `Hold`).
    pub hold: Option<Rc<Hold>>,
}

impl Bounds {
    /// One request/response exchange: idle and total deadlines, messages are progress.
    pub fn exchange(idle_ms: u32, total_ms: u32) -> Self {
        Self {
            idle_ms,
            total_ms: Some(total_ms),
            activity: Activity::Messages,
            hold: None,
        }
    }

    /// A long-lived notification stream: no total deadline, any byte is progress.
    pub fn listen(idle_ms: u32) -> Self {
        Self {
            idle_ms,
            total_ms: None,
            activity: Activity::Bytes,
            hold: None,
        }
    }

    /// A small fetch bounded as a whole by one timeout (token endpoints, discovery documents).
    pub fn whole(timeout_ms: u32) -> Self {
        Self {
            idle_ms: timeout_ms,
            total_ms: Some(timeout_ms),
            activity: Activity::Bytes,
            hold: None,
        }
    }
}

/// Time as the platform provides it.
pub trait Clock {
    fn now_ms(&self) -> u64;
    /// Resolves after `ms` milliseconds.
    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()>;
}

/// Tracks the deadlines of one exchange from its start.
pub struct Timer {
    bounds: Bounds,
    started: u64,
    last_progress: u64,
    /// The hold was active at the last check: its release restarts the idle deadline.
    was_held: bool,
}

impl Timer {
    pub fn start(bounds: Bounds, now: u64) -> Self {
        Self {
            bounds,
            started: now,
            last_progress: now,
            was_held: false,
        }
    }

    /// While the upstream waits for the client (and at the first check after the wait), time
    /// does not count as idle.
    pub fn check_hold(&mut self, now: u64) {
        let held = self.bounds.hold.as_ref().is_some_and(|h| h.active());
        if held || self.was_held {
            self.last_progress = now;
        }
        self.was_held = held;
    }

    pub fn progress(&mut self, now: u64) {
        self.last_progress = now;
    }

    /// Milliseconds left before a deadline passes (0 = passed), and which one it is.
    pub fn remaining(&self, now: u64) -> (u64, u32) {
        let idle_end = self.last_progress + u64::from(self.bounds.idle_ms);
        let (end, ms) = match self.bounds.total_ms {
            Some(t) if self.started + u64::from(t) < idle_end => (self.started + u64::from(t), t),
            _ => (idle_end, self.bounds.idle_ms),
        };
        (end.saturating_sub(now), ms)
    }
}

/// The error a stream ends with when the deadline of `ms` passes.
pub fn timeout_text(ms: u32) -> String {
    format!("{TIMEOUT_PREFIX}{ms} ms")
}

struct State {
    inner: Option<ByteStream>,
    timer: Timer,
    parser: Option<sse::Parser>,
    clock: Rc<dyn Clock>,
}

/// Runs `on_expire` (the platform's abort of the upstream request) once: on expiry, or when the
/// consumer drops the stream before it ended (nobody reads the rest, so the upstream may stop).
struct AbortOnDrop(Rc<RefCell<Option<Abort>>>);

/// The platform's abort of the upstream request.
type Abort = Box<dyn FnOnce()>;

impl AbortOnDrop {
    fn fire(&self) {
        if let Some(f) = self.0.borrow_mut().take() {
            f();
        }
    }
    fn disarm(&self) {
        self.0.borrow_mut().take();
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.fire();
    }
}

/// Bounds `stream` by `timer`'s deadlines. On expiry `on_expire` runs and the stream ends with
/// `timeout_text`; a stream that ends by itself is left alone; a stream dropped early runs
/// `on_expire` too. `sse`: whether the body is an SSE stream (progress = data events).
pub fn guard(
    stream: ByteStream,
    timer: Timer,
    sse: bool,
    clock: Rc<dyn Clock>,
    on_expire: Box<dyn FnOnce()>,
) -> ByteStream {
    let slot = Rc::new(RefCell::new(Some(on_expire)));
    let parser = (sse && timer.bounds.activity == Activity::Messages).then(sse::Parser::new);
    let st = State {
        inner: Some(stream),
        timer,
        parser,
        clock,
    };
    let abort = AbortOnDrop(slot);
    futures_util::stream::unfold((st, abort), |(mut st, abort)| async move {
        let mut s = st.inner.take()?;
        loop {
            let now = st.clock.now_ms();
            st.timer.check_hold(now);
            let (left, ms) = st.timer.remaining(now);
            if left == 0 {
                abort.fire();
                return Some((Err(timeout_text(ms)), (st, abort)));
            }
            let woken = match &st.timer.bounds.hold {
                Some(h) => Box::pin(select(st.clock.sleep(left), h.changed()).map(|_| ())),
                None => st.clock.sleep(left),
            };
            let item = match select(s.next(), woken).await {
                Either::Left((item, _)) => item,
                // A deadline may have passed, or a hold begun or ended: check again.
                Either::Right(_) => continue,
            };
            match item {
                None => {
                    abort.disarm();
                    return None;
                }
                Some(Err(e)) => {
                    abort.disarm();
                    return Some((Err(e), (st, abort)));
                }
                Some(Ok(chunk)) => {
                    let now = st.clock.now_ms();
                    let progressed = match st.parser.as_mut() {
                        // Only a complete event with data is a message; comments are dropped by
                        // the parser, empty (priming) events carry nothing.
                        Some(p) => p
                            .push(&chunk)
                            .map(|evs| evs.iter().any(|e| !e.data.trim().is_empty()))
                            .unwrap_or(true),
                        None => !chunk.is_empty(),
                    };
                    if progressed {
                        st.timer.progress(now);
                    } else if st.timer.remaining(now).0 == 0 {
                        // Chunks that arrive without progress must not postpone expiry.
                        continue;
                    }
                    st.inner = Some(s);
                    return Some((Ok(chunk), (st, abort)));
                }
            }
        }
    })
    .boxed_local()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A clock that advances `step` ms every time it is read; its sleeps never resolve, so
    /// expiry is found only by the clock check between chunks — deterministic, no real time.
    struct Steps {
        now: Cell<u64>,
        step: u64,
    }

    impl Clock for Steps {
        fn now_ms(&self) -> u64 {
            self.now.set(self.now.get() + self.step);
            self.now.get()
        }
        fn sleep(&self, _ms: u64) -> LocalBoxFuture<'static, ()> {
            Box::pin(futures_util::future::pending())
        }
    }

    fn run(chunks: Vec<&'static str>, bounds: Bounds, sse: bool) -> (Vec<Result<String, String>>, bool) {
        let clock = Rc::new(Steps {
            now: Cell::new(0),
            step: 1000,
        });
        let aborted = Rc::new(Cell::new(false));
        let a = aborted.clone();
        let s = futures_util::stream::iter(chunks.into_iter().map(|c| Ok(c.as_bytes().to_vec()))).boxed_local();
        let timer = Timer::start(bounds, 0);
        let out = guard(s, timer, sse, clock, Box::new(move || a.set(true)));
        let items = futures_executor::block_on(out.collect::<Vec<_>>())
            .into_iter()
            .map(|r| r.map(|b| String::from_utf8(b).unwrap()))
            .collect();
        (items, aborted.get())
    }

    #[test]
    fn keep_alive_comments_are_not_progress_on_a_call() {
        let keepalives = vec![": keep-alive\n\n"; 50];
        let (items, aborted) = run(keepalives, Bounds::exchange(5_000, 600_000), true);
        assert!(aborted, "the upstream request is aborted");
        let last = items.last().unwrap().as_ref().unwrap_err();
        assert!(last.starts_with(TIMEOUT_PREFIX), "{last}");
        assert!(
            items.len() < 10,
            "expired within the idle bound, not after all 50 chunks"
        );
    }

    #[test]
    fn messages_are_progress_and_the_total_deadline_still_holds() {
        let msgs = vec!["data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n"; 50];
        // Each message arrives within the idle bound, so only the total deadline ends it.
        let (items, aborted) = run(msgs.clone(), Bounds::exchange(5_000, 20_000), true);
        assert!(aborted);
        assert!(items.last().unwrap().is_err());
        assert!(items.len() > 5 && items.len() < 20);
        // Without a total deadline short enough, everything passes and nothing is aborted.
        let (items, aborted) = run(msgs, Bounds::exchange(5_000, 600_000), true);
        assert!(!aborted);
        assert_eq!(items.len(), 50);
        assert!(items.iter().all(Result::is_ok));
    }

    #[test]
    fn listen_streams_live_on_keep_alives() {
        let (items, aborted) = run(vec![": keep-alive\n\n"; 50], Bounds::listen(5_000), true);
        assert!(!aborted);
        assert_eq!(items.len(), 50);
    }

    #[test]
    fn dropping_the_stream_early_aborts_the_upstream() {
        let clock = Rc::new(Steps {
            now: Cell::new(0),
            step: 1,
        });
        let aborted = Rc::new(Cell::new(false));
        let a = aborted.clone();
        let s = futures_util::stream::iter(vec![Ok(b"data: 1\n\n".to_vec()); 3]).boxed_local();
        let mut out = guard(
            s,
            Timer::start(Bounds::exchange(5_000, 60_000), 0),
            true,
            clock,
            Box::new(move || a.set(true)),
        );
        assert!(futures_executor::block_on(out.next()).is_some());
        assert!(!aborted.get());
        drop(out);
        assert!(aborted.get());
    }

    /// A clock the test moves by hand; a sleep is over once the time set has reached its end.
    struct Manual {
        now: Rc<Cell<u64>>,
    }

    impl Clock for Manual {
        fn now_ms(&self) -> u64 {
            self.now.get()
        }
        fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
            let (now, end) = (self.now.clone(), self.now.get() + ms);
            Box::pin(futures_util::future::poll_fn(move |_| {
                if now.get() >= end {
                    std::task::Poll::Ready(())
                } else {
                    std::task::Poll::Pending
                }
            }))
        }
    }

    #[test]
    fn a_hold_pauses_the_idle_deadline_but_not_the_total() {
        // Silence (no chunks) for a long time: with a hold taken, only the total deadline ends it.
        let clock = Rc::new(Manual {
            now: Rc::new(Cell::new(0)),
        });
        let hold = Rc::new(Hold::default());
        hold.take();
        let bounds = Bounds {
            hold: Some(hold.clone()),
            ..Bounds::exchange(2_000, 30_000)
        };
        let silent = futures_util::stream::pending::<Result<Vec<u8>, String>>().boxed_local();
        let mut held = guard(silent, Timer::start(bounds, 0), true, clock.clone(), Box::new(|| ()));
        // The clock's sleeps never resolve: each poll checks the deadlines once at the time set.
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        clock.now.set(1_000);
        assert!(held.poll_next_unpin(&mut cx).is_pending(), "held: not idle after 1 s");
        clock.now.set(20_000);
        assert!(held.poll_next_unpin(&mut cx).is_pending(), "held: not idle after 20 s");
        hold.release();
        clock.now.set(21_000);
        assert!(
            held.poll_next_unpin(&mut cx).is_pending(),
            "released: the idle deadline restarts"
        );
        clock.now.set(27_000);
        match held.poll_next_unpin(&mut cx) {
            std::task::Poll::Ready(Some(Err(e))) => assert_eq!(e, timeout_text(2_000)),
            other => panic!("idle again after the release: {other:?}"),
        }
        // Held all along: the total deadline still ends it.
        let hold = Rc::new(Hold::default());
        hold.take();
        let bounds = Bounds {
            hold: Some(hold),
            ..Bounds::exchange(2_000, 30_000)
        };
        let silent = futures_util::stream::pending::<Result<Vec<u8>, String>>().boxed_local();
        let mut held = guard(silent, Timer::start(bounds, 0), true, clock.clone(), Box::new(|| ()));
        clock.now.set(0);
        assert!(held.poll_next_unpin(&mut cx).is_pending());
        clock.now.set(40_000);
        match held.poll_next_unpin(&mut cx) {
            std::task::Poll::Ready(Some(Err(e))) => assert_eq!(e, timeout_text(30_000)),
            other => panic!("total deadline: {other:?}"),
        }
    }

    #[test]
    fn remaining_picks_the_nearer_deadline() {
        let mut t = Timer::start(Bounds::exchange(1_000, 3_000), 0);
        assert_eq!(t.remaining(0), (1_000, 1_000));
        t.progress(2_500);
        assert_eq!(t.remaining(2_500), (500, 3_000));
        assert_eq!(t.remaining(4_000).0, 0);
    }
}
