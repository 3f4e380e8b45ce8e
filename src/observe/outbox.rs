//! The audit trail's outbox: events on their way to the queue, gathered per isolate so that the
//! events that end within one short window go out in one batch (`sendBatch`) instead of one queue
//! send each (docs/observability.md, *Audit trail*). Nothing is lost by waiting: every event's
//! own task (run by the platform beside its request, under `waitUntil`) lasts until the batch
//! holding it was sent, and sends the event alone if that batch does not go out in time. A batch
//! that is refused is retried as one event was before: `attempts` sends with doubling pauses,
//! then each event id (never its body) is logged as lost. Nothing here does I/O: the queue and the
//! timer are the platform's (`BatchQueue`).
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures_util::future::{select, Either, LocalBoxFuture};

use super::event::Event;

/// What the outbox needs of the platform: the queue's batch send and a timer.
pub trait BatchQueue {
    /// Sends `bodies` as one batch of text messages; `Err` carries the reason for the log.
    fn send_batch<'a>(&'a self, bodies: &'a [String]) -> LocalBoxFuture<'a, Result<(), String>>;
    /// Resolves after `ms` milliseconds.
    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()>;
}

/// The outbox's bounds; `LIMITS` are the deployment's.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long the first event of a batch waits for others before the batch is sent: what
    /// an event's request holds its `waitUntil` open for at most, beyond the send. Each send
    /// costs a round trip to the queue whatever it carries; an isolate serving 100 calls a
    /// second sends about 10 a batch.
    pub window_ms: u64,
    /// Messages per batch (a queue `sendBatch` takes at most 100).
    pub max_messages: usize,
    /// Bytes of message bodies per batch (a `sendBatch` takes at most 256 KB in all, with some
    /// overhead per message: 100 messages' worth is left free).
    pub max_batch_bytes: usize,
    /// Largest message body (a queue message holds at most 128 KB): an event over it loses its
    /// captured arguments, which are replaced by a note of their size.
    pub max_message_bytes: usize,
    /// Sends of one batch before its events are given up, and the first pause between them
    /// (doubled each time).
    pub attempts: u32,
    pub backoff_ms: u64,
    /// How long an event waits for the batch holding it to be sent (or given up) before it is
    /// sent alone: the batch's sender stalled. Far above a window and every retry.
    pub fallback_ms: u64,
}

pub const LIMITS: Limits = Limits {
    window_ms: 100,
    max_messages: 100,
    max_batch_bytes: 224 * 1024,
    max_message_bytes: 120 * 1024,
    attempts: 4,
    backoff_ms: 100,
    fallback_ms: 10_000,
};

/// Events that end within one window.
#[derive(Default)]
struct Batch {
    events: RefCell<Vec<Rc<Event>>>,
    /// No more events join it (its window ended, or it is full).
    closed: Cell<bool>,
    /// Sent, or given up after every attempt.
    settled: Cell<bool>,
    wakers: RefCell<Vec<Waker>>,
}

impl Batch {
    fn wake(&self) {
        for w in self.wakers.take() {
            w.wake();
        }
    }
}

/// Resolves once `done` holds for the batch.
struct Until(Rc<Batch>, fn(&Batch) -> bool);

impl Future for Until {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if (self.1)(&self.0) {
            return Poll::Ready(());
        }
        let mut wakers = self.0.wakers.borrow_mut();
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// One per isolate (the platform keeps it): the batch events join while its window is open.
pub struct Outbox {
    open: RefCell<Option<Rc<Batch>>>,
    queue: Rc<dyn BatchQueue>,
    limits: Limits,
}

impl Outbox {
    pub fn new(queue: Rc<dyn BatchQueue>, limits: Limits) -> Rc<Self> {
        Rc::new(Self {
            open: RefCell::new(None),
            queue,
            limits,
        })
    }

    /// Puts an event in the open batch (or opens one) and returns the event's task, which the
    /// caller runs beside its request: it ends when the event was sent (or given up). The first
    /// event's task sends the batch when the window ends or the batch is full; the others wait
    /// for it. Nothing is serialized here: that happens when the batch goes out.
    pub fn add(self: &Rc<Self>, event: Rc<Event>) -> LocalBoxFuture<'static, ()> {
        let (batch, first) = {
            let mut open = self.open.borrow_mut();
            match &*open {
                Some(b) => (b.clone(), false),
                None => {
                    let b = Rc::new(Batch::default());
                    *open = Some(b.clone());
                    (b, true)
                }
            }
        };
        let full = {
            let mut events = batch.events.borrow_mut();
            events.push(event.clone());
            events.len() >= self.limits.max_messages
        };
        if full {
            self.close(&batch);
        }
        let me = self.clone();
        if first {
            Box::pin(async move { me.lead(batch).await })
        } else {
            Box::pin(async move { me.follow(batch, event).await })
        }
    }

    /// Closes a batch to new events: the next event opens another.
    fn close(&self, batch: &Rc<Batch>) {
        if batch.closed.replace(true) {
            return;
        }
        let mut open = self.open.borrow_mut();
        if open.as_ref().is_some_and(|b| Rc::ptr_eq(b, batch)) {
            *open = None;
        }
        drop(open);
        batch.wake();
    }

    /// The first event's task: waits out the window (or until the batch is full), sends it.
    async fn lead(&self, batch: Rc<Batch>) {
        if !batch.closed.get() {
            let window = self.queue.sleep(self.limits.window_ms);
            select(window, Until(batch.clone(), |b| b.closed.get())).await;
            self.close(&batch);
        }
        let events = batch.events.take();
        self.deliver(&events).await;
        batch.settled.set(true);
        batch.wake();
    }

    /// Any other event's task: waits for its batch; sends the event alone if the batch's sender
    /// stalled (appends are idempotent by event id, so a copy the batch also delivered is
    /// stored once).
    async fn follow(&self, batch: Rc<Batch>, event: Rc<Event>) {
        let settled = Until(batch.clone(), |b| b.settled.get());
        if let Either::Right(_) = select(settled, self.queue.sleep(self.limits.fallback_ms)).await {
            self.close(&batch);
            tracing::warn!(event_id = %event.id, "audit batch not sent in time: sending the event alone");
            self.deliver(std::slice::from_ref(&event)).await;
        }
    }

    /// Sends events as messages, in as few batches as the limits allow.
    async fn deliver(&self, events: &[Rc<Event>]) {
        let mut ids: Vec<&str> = Vec::new();
        let mut bodies: Vec<String> = Vec::new();
        let mut bytes = 0;
        for e in events {
            let body = message(e, self.limits.max_message_bytes);
            if !bodies.is_empty()
                && (bodies.len() >= self.limits.max_messages || bytes + body.len() > self.limits.max_batch_bytes)
            {
                self.send(&ids, &bodies).await;
                ids.clear();
                bodies.clear();
                bytes = 0;
            }
            bytes += body.len();
            ids.push(&e.id);
            bodies.push(body);
        }
        if !bodies.is_empty() {
            self.send(&ids, &bodies).await;
        }
    }

    /// One batch, retried with backoff; given up after `attempts`, its event ids logged as lost.
    async fn send(&self, ids: &[&str], bodies: &[String]) {
        let mut pause = self.limits.backoff_ms;
        for attempt in 1..=self.limits.attempts {
            match self.queue.send_batch(bodies).await {
                Ok(()) => return,
                Err(e) if attempt < self.limits.attempts => {
                    tracing::warn!(events = ids.len(), attempt, error = %e, "audit batch not queued, retrying");
                    self.queue.sleep(pause).await;
                    pause *= 2;
                }
                // Ids only: the bodies stay out of the log.
                Err(e) => {
                    for id in ids {
                        tracing::error!(event_id = %id, error = %e, "audit event lost: the queue refused it");
                    }
                }
            }
        }
    }
}

/// The event as a queue message: its JSON, serialized once, without the captured arguments if
/// over `max` bytes.
pub fn message(event: &Event, max: usize) -> String {
    let body = serde_json::to_string(event).unwrap_or_default();
    if body.len() <= max {
        return body;
    }
    let mut cut = event.clone();
    cut.arguments = Some(serde_json::json!({ "truncated_bytes": body.len() }));
    serde_json::to_string(&cut).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_executor::LocalPool;
    use futures_util::task::LocalSpawnExt;

    /// A queue that records each batch, fails the first `fail` sends (or never answers), and a
    /// timer the test moves by hand.
    #[derive(Default)]
    struct Fake {
        sent: RefCell<Vec<Vec<String>>>,
        attempts: Cell<u32>,
        fail: Cell<u32>,
        hang: Cell<bool>,
        now: Cell<u64>,
        timers: RefCell<Vec<(u64, Rc<Timer>)>>,
    }

    /// A timer of the fake clock: fired or not, and who waits for it.
    #[derive(Default)]
    struct Timer {
        fired: Cell<bool>,
        waker: RefCell<Option<Waker>>,
    }
    struct Wait(Rc<Timer>);
    impl Future for Wait {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0.fired.get() {
                return Poll::Ready(());
            }
            *self.0.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    impl BatchQueue for Fake {
        fn send_batch<'a>(&'a self, bodies: &'a [String]) -> LocalBoxFuture<'a, Result<(), String>> {
            self.attempts.set(self.attempts.get() + 1);
            if self.hang.get() {
                return Box::pin(futures_util::future::pending());
            }
            if self.fail.get() > 0 {
                self.fail.set(self.fail.get() - 1);
                return Box::pin(async { Err("refused".to_string()) });
            }
            self.sent.borrow_mut().push(bodies.to_vec());
            Box::pin(async { Ok(()) })
        }
        fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
            let timer = Rc::new(Timer::default());
            self.timers.borrow_mut().push((self.now.get() + ms, timer.clone()));
            Box::pin(Wait(timer))
        }
    }

    impl Fake {
        /// Moves the clock on by `ms`, firing the timers due.
        fn advance(&self, ms: u64) {
            self.now.set(self.now.get() + ms);
            for (at, timer) in self.timers.borrow().iter() {
                if *at <= self.now.get() && !timer.fired.replace(true) {
                    if let Some(w) = timer.waker.borrow_mut().take() {
                        w.wake();
                    }
                }
            }
        }
        fn ids(&self) -> Vec<Vec<String>> {
            let id = |b: &String| serde_json::from_str::<Event>(b).unwrap().id;
            self.sent
                .borrow()
                .iter()
                .map(|batch| batch.iter().map(id).collect())
                .collect()
        }
    }

    fn event(id: &str) -> Rc<Event> {
        Rc::new(Event {
            id: id.into(),
            ..Event::default()
        })
    }

    struct Run {
        fake: Rc<Fake>,
        outbox: Rc<Outbox>,
        pool: LocalPool,
        done: Rc<Cell<usize>>,
    }

    impl Run {
        fn new(limits: Limits) -> Self {
            let fake = Rc::new(Fake::default());
            Self {
                outbox: Outbox::new(fake.clone(), limits),
                fake,
                pool: LocalPool::new(),
                done: Rc::new(Cell::new(0)),
            }
        }
        /// Emits events and runs their tasks as the platform would, beside each request.
        fn emit(&mut self, ids: &[&str]) {
            for id in ids {
                let task = self.outbox.add(event(id));
                let done = self.done.clone();
                self.pool
                    .spawner()
                    .spawn_local(async move {
                        task.await;
                        done.set(done.get() + 1);
                    })
                    .unwrap();
            }
            self.pool.run_until_stalled();
        }
        fn advance(&mut self, ms: u64) {
            self.fake.advance(ms);
            self.pool.run_until_stalled();
        }
    }

    #[test]
    fn events_of_one_window_go_in_one_batch_and_each_task_lasts_until_it_is_sent() {
        let mut r = Run::new(LIMITS);
        r.emit(&["ev_1", "ev_2"]);
        r.advance(LIMITS.window_ms - 1);
        r.emit(&["ev_3"]);
        assert!(r.fake.sent.borrow().is_empty(), "the window is still open");
        assert_eq!(r.done.get(), 0, "no task ends before its event is sent");
        r.advance(1);
        assert_eq!(r.fake.ids(), vec![vec!["ev_1", "ev_2", "ev_3"]]);
        assert_eq!(r.done.get(), 3);
        // The next event opens the next window.
        r.emit(&["ev_4"]);
        r.advance(LIMITS.window_ms);
        assert_eq!(r.fake.ids()[1], vec!["ev_4"]);
        assert_eq!(r.done.get(), 4);
        // Each message is the event's JSON, whole.
        let first: Event = serde_json::from_str(&r.fake.sent.borrow()[0][0]).unwrap();
        assert_eq!(first, *event("ev_1"));
    }

    #[test]
    fn a_full_batch_goes_at_once_and_the_next_event_opens_another() {
        let limits = Limits {
            max_messages: 3,
            ..LIMITS
        };
        let mut r = Run::new(limits);
        r.emit(&["a", "b", "c", "d"]);
        assert_eq!(
            r.fake.ids(),
            vec![vec!["a", "b", "c"]],
            "sent without waiting for the window"
        );
        assert_eq!(r.done.get(), 3);
        r.advance(LIMITS.window_ms);
        assert_eq!(r.fake.ids()[1], vec!["d"]);
        assert_eq!(r.done.get(), 4);
    }

    #[test]
    fn a_batch_is_split_to_stay_within_the_queues_byte_limit() {
        let one = message(&event("ev_0"), LIMITS.max_message_bytes).len();
        let limits = Limits {
            max_batch_bytes: 2 * one + 1,
            ..LIMITS
        };
        let mut r = Run::new(limits);
        r.emit(&["ev_0", "ev_1", "ev_2", "ev_3", "ev_4"]);
        r.advance(LIMITS.window_ms);
        assert_eq!(
            r.fake.ids(),
            vec![vec!["ev_0", "ev_1"], vec!["ev_2", "ev_3"], vec!["ev_4"]]
        );
        assert_eq!(r.done.get(), 5);
    }

    #[test]
    fn a_refused_batch_is_retried_with_backoff_then_given_up() {
        let mut r = Run::new(LIMITS);
        r.fake.fail.set(2);
        r.emit(&["a", "b"]);
        r.advance(LIMITS.window_ms);
        assert_eq!(r.fake.attempts.get(), 1);
        r.advance(100);
        assert_eq!(r.fake.attempts.get(), 2);
        r.advance(199);
        assert_eq!(r.fake.attempts.get(), 2, "the second pause is doubled");
        r.advance(1);
        assert_eq!(r.fake.ids(), vec![vec!["a", "b"]]);
        assert_eq!(r.done.get(), 2);

        // Refused every time: `attempts` sends, then the events are given up (and logged).
        let mut r = Run::new(LIMITS);
        r.fake.fail.set(u32::MAX);
        r.emit(&["c"]);
        r.advance(LIMITS.window_ms);
        for _ in 0..10 {
            r.advance(1000);
        }
        assert_eq!(r.fake.attempts.get(), LIMITS.attempts);
        assert!(r.fake.sent.borrow().is_empty());
        assert_eq!(r.done.get(), 1, "its task ends");
    }

    #[test]
    fn events_whose_batch_stalls_are_sent_alone_and_the_next_event_opens_a_new_batch() {
        let mut r = Run::new(LIMITS);
        r.fake.hang.set(true);
        r.emit(&["lead", "x", "y"]);
        r.advance(LIMITS.window_ms);
        assert_eq!(r.fake.attempts.get(), 1, "the batch went out and never came back");
        r.fake.hang.set(false);
        r.advance(LIMITS.fallback_ms);
        // The stalled sender's own event is its task's to send; the others are sent alone.
        assert_eq!(r.fake.ids(), vec![vec!["x"], vec!["y"]]);
        assert_eq!(r.done.get(), 2);
        r.emit(&["z"]);
        r.advance(LIMITS.window_ms);
        assert_eq!(r.fake.ids()[2], vec!["z"]);
    }

    #[test]
    fn a_waiting_batch_whose_sender_stalled_is_closed_for_new_events() {
        // The first event's task never runs again (its request's context went away): the
        // others wait out the fallback, send themselves and close the batch.
        let fake = Rc::new(Fake::default());
        let outbox = Outbox::new(fake.clone(), LIMITS);
        let _stalled = outbox.add(event("lead")); // never polled
        let mut pool = LocalPool::new();
        pool.spawner().spawn_local(outbox.add(event("x"))).unwrap();
        pool.run_until_stalled();
        fake.advance(LIMITS.fallback_ms);
        pool.run_until_stalled();
        assert_eq!(fake.ids(), vec![vec!["x"]]);
        pool.spawner().spawn_local(outbox.add(event("y"))).unwrap();
        pool.run_until_stalled();
        fake.advance(LIMITS.window_ms);
        pool.run_until_stalled();
        assert_eq!(fake.ids()[1], vec!["y"], "a new batch, with a sender of its own");
    }

    #[test]
    fn nothing_is_kept_once_sent() {
        let mut r = Run::new(LIMITS);
        let kept = event("ev_1");
        let weak = Rc::downgrade(&kept);
        let task = r.outbox.add(kept);
        r.pool.spawner().spawn_local(task).unwrap();
        r.emit(&["ev_2"]);
        r.advance(LIMITS.window_ms);
        assert_eq!(r.fake.ids(), vec![vec!["ev_1", "ev_2"]]);
        assert!(weak.upgrade().is_none(), "the event is dropped once sent");
        assert!(r.outbox.open.borrow().is_none(), "no batch is left open");
    }

    #[test]
    fn an_event_over_a_message_keeps_everything_but_its_arguments() {
        let big = Event {
            id: "ev_big".into(),
            arguments: Some(serde_json::json!({ "blob": "x".repeat(130 * 1024) })),
            ..Event::default()
        };
        let body = message(&big, LIMITS.max_message_bytes);
        assert!(body.len() < 1024);
        let back: Event = serde_json::from_str(&body).unwrap();
        assert_eq!(back.id, "ev_big");
        assert!(back.arguments.unwrap()["truncated_bytes"].as_u64().unwrap() > 130 * 1024);
        let small = event("ev_small");
        assert_eq!(
            message(&small, LIMITS.max_message_bytes),
            serde_json::to_string(&*small).unwrap()
        );
    }
}
