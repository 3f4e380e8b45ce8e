//! The event of one request under construction. Whoever learns a fact fills it in (the endpoint:
//! who and what; `forward`: each upstream exchange and the answer), and the event goes to the
//! sink exactly once: when `finish` is called, or when the last holder lets go of it (a streamed
//! answer ends or its client disconnects) — so no path can lose it and none can record it twice.
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::event::{Event, Outcome, OutcomeField, UpstreamCall};
use super::trace::new_span_id;

/// Where finished events go (the platform: Analytics Engine, the audit queue, OTLP). `emit` must
/// not block the response: sinks that do I/O schedule it beside the request.
pub trait EventSink {
    /// Takes a finished event. It is shared: every sink of a deployment is given the same one
    /// (`Fanout`), and one that needs it later keeps the `Rc`, never a copy.
    fn emit_shared(&self, event: &Rc<Event>);
    /// Emits an event built elsewhere (an admin write).
    fn emit(&self, event: Event) {
        self.emit_shared(&Rc::new(event));
    }
    /// Whether events go anywhere: `false` lets the request skip filling what nobody would read
    /// (captured arguments and their settings); the event is still built and emitted.
    fn active(&self) -> bool {
        true
    }
}

/// Drops every event (native tests that do not look at them, and builds without sinks).
pub struct NoSink;
impl EventSink for NoSink {
    fn emit_shared(&self, _: &Rc<Event>) {}
    fn active(&self) -> bool {
        false
    }
}

/// Every sink of the deployment, each given every event (the platform lists them): the one
/// event, shared.
pub struct Fanout(pub Vec<Rc<dyn EventSink>>);
impl EventSink for Fanout {
    fn emit_shared(&self, event: &Rc<Event>) {
        for s in &self.0 {
            s.emit_shared(event);
        }
    }
    fn active(&self) -> bool {
        self.0.iter().any(|s| s.active())
    }
}

/// Milliseconds since the Unix epoch, fractional where the platform can tell.
pub type Clock = Rc<dyn Fn() -> f64>;

pub struct Probe {
    event: RefCell<Event>,
    /// Set once, by the first party that learns how the request ended.
    outcome: RefCell<Option<Outcome>>,
    /// Start times of the upstream exchanges still open (by index into `event.upstreams`).
    open: RefCell<Vec<Option<f64>>>,
    started: f64,
    clock: Clock,
    sink: Rc<dyn EventSink>,
    done: Cell<bool>,
}

impl Probe {
    /// Starts the event of a request that arrived now. `base` carries what is known at arrival
    /// (id, kind, endpoint, trace, HTTP method); the probe stamps the time, unless `base` has
    /// one (an event handed over from where the request arrived, see `hand_off`).
    pub fn start(sink: Rc<dyn EventSink>, clock: Clock, mut base: Event) -> Rc<Self> {
        let started = if base.time_ms > 0 { base.time_ms as f64 } else { clock() };
        base.time_ms = started as u64;
        if base.id.is_empty() {
            base.id = crate::crypto::random_id("ev_");
        }
        Rc::new(Self {
            event: RefCell::new(base),
            outcome: RefCell::new(None),
            open: RefCell::new(Vec::new()),
            started,
            clock,
            sink,
            done: Cell::new(false),
        })
    }

    /// Fills in or changes facts of the event (no-op once it was emitted).
    pub fn update(&self, f: impl FnOnce(&mut Event)) {
        if !self.done.get() {
            f(&mut self.event.borrow_mut());
        }
    }

    /// Whether the event goes to any sink (see `EventSink::active`).
    pub fn active(&self) -> bool {
        self.sink.active()
    }

    /// Reads the event as built so far.
    pub fn read<R>(&self, f: impl FnOnce(&Event) -> R) -> R {
        f(&self.event.borrow())
    }

    /// Records how the request ended; the first outcome reported wins.
    pub fn outcome(&self, o: Outcome) {
        let mut slot = self.outcome.borrow_mut();
        if slot.is_none() {
            *slot = Some(o);
        }
    }

    pub fn has_outcome(&self) -> bool {
        self.outcome.borrow().is_some()
    }

    /// Opens an upstream exchange of this request; returns its span id (the parent the upstream
    /// sees in `traceparent`) and its index for `upstream_done`.
    pub fn upstream_start(&self, server: &str, address: &str, port: u16) -> (usize, String) {
        let span_id = new_span_id();
        let now = (self.clock)();
        let mut ev = self.event.borrow_mut();
        ev.upstreams.push(UpstreamCall {
            server: server.to_string(),
            address: address.to_string(),
            port,
            span_id: span_id.clone(),
            started_ms: now as u64,
            duration_ms: 0.0,
            status: None,
            error: None,
        });
        self.open.borrow_mut().push(Some(now));
        (ev.upstreams.len() - 1, span_id)
    }

    /// Closes exchange `index` (once; later calls are ignored).
    pub fn upstream_done(&self, index: usize, status: Option<u16>, error: Option<String>) {
        let now = (self.clock)();
        let Some(start) = self.open.borrow_mut().get_mut(index).and_then(Option::take) else {
            return;
        };
        if let Some(u) = self.event.borrow_mut().upstreams.get_mut(index) {
            u.duration_ms = (now - start).max(0.0);
            u.status = status;
            u.error = error;
        }
    }

    /// Gives the event up to be completed elsewhere (a legacy-era request goes on to its
    /// session's Durable Object, which starts a probe from it): this probe emits nothing.
    pub fn hand_off(&self) -> Event {
        self.done.set(true);
        let mut ev = std::mem::take(&mut *self.event.borrow_mut());
        ev.time_ms = self.started as u64;
        ev
    }

    /// Completes the event and emits it (once). Called explicitly for answers that are complete
    /// when returned; streamed answers rely on `Drop`.
    pub fn finish(&self) {
        if self.done.replace(true) {
            return;
        }
        let now = (self.clock)();
        let mut ev = std::mem::take(&mut *self.event.borrow_mut());
        ev.latency_ms = (now - self.started).max(0.0);
        for (u, open) in ev.upstreams.iter_mut().zip(self.open.borrow_mut().drain(..)) {
            if let Some(start) = open {
                // Still open: the client left while the upstream was answering.
                u.duration_ms = (now - start).max(0.0);
                u.error.get_or_insert_with(|| "cancelled".into());
            }
        }
        ev.upstream_ms = ev.upstreams.iter().map(|u| u.duration_ms).sum();
        ev.outcome = OutcomeField(self.outcome.borrow_mut().take().unwrap_or(Outcome::Cancelled));
        self.sink.emit(ev);
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Keep(RefCell<Vec<Rc<Event>>>);
    impl EventSink for Keep {
        fn emit_shared(&self, e: &Rc<Event>) {
            self.0.borrow_mut().push(e.clone());
        }
    }

    fn clock(t: Rc<Cell<f64>>) -> Clock {
        Rc::new(move || t.get())
    }

    #[test]
    fn emits_once_with_the_first_outcome_and_timings() {
        let sink = Rc::new(Keep::default());
        let t = Rc::new(Cell::new(1000.0));
        let p = Probe::start(sink.clone(), clock(t.clone()), Event::default());
        let (i, span) = p.upstream_start("py", "127.0.0.1", 8000);
        assert_eq!(span.len(), 16);
        t.set(1004.5);
        p.upstream_done(i, Some(200), None);
        p.outcome(Outcome::ToolError);
        p.outcome(Outcome::Ok);
        t.set(1006.0);
        p.finish();
        p.finish();
        drop(p);
        let got = sink.0.borrow();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].outcome.0, Outcome::ToolError);
        assert_eq!(got[0].latency_ms, 6.0);
        assert_eq!(got[0].upstream_ms, 4.5);
        assert_eq!(got[0].time_ms, 1000);
        assert!(got[0].id.starts_with("ev_"));
    }

    #[test]
    fn a_fanout_gives_every_sink_the_same_event() {
        let (a, b) = (Rc::new(Keep::default()), Rc::new(Keep::default()));
        let fan = Fanout(vec![a.clone(), b.clone()]);
        fan.emit(Event {
            id: "ev_1".into(),
            ..Event::default()
        });
        let (a, b) = (a.0.borrow(), b.0.borrow());
        assert_eq!((a.len(), b.len()), (1, 1));
        assert!(Rc::ptr_eq(&a[0], &b[0]), "shared, not copied");
        assert_eq!(a[0].id, "ev_1");
    }

    #[test]
    fn an_abandoned_request_is_emitted_as_cancelled_when_dropped() {
        let sink = Rc::new(Keep::default());
        let t = Rc::new(Cell::new(0.0));
        let p = Probe::start(sink.clone(), clock(t.clone()), Event::default());
        p.upstream_start("py", "h", 1);
        t.set(3.0);
        drop(p);
        let got = sink.0.borrow();
        assert_eq!(got[0].outcome.0, Outcome::Cancelled);
        assert_eq!(got[0].upstreams[0].error.as_deref(), Some("cancelled"));
        assert_eq!(got[0].upstreams[0].duration_ms, 3.0);
    }
}
