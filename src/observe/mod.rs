//! Observability's plain data and rules: the one event every MCP request and admin write
//! produces (`event`), W3C trace context (`trace`), argument capture (`capture`), the probe
//! that builds a request's event and hands it to the platform's sinks exactly once (`probe`),
//! and the audit trail's outbox, which gathers an isolate's events into queue batches (`outbox`).
//! Nothing here does I/O: the sinks (Analytics Engine, the audit queue, OTLP) are the platform's.
pub mod analytics;
pub mod capture;
pub mod event;
pub mod otlp;
pub mod outbox;
pub mod probe;
pub mod trace;

pub use capture::CaptureMode;
pub use event::{AdminChange, AuthKind, Decision, Event, EventKind, Outcome, UpstreamCall};
pub use probe::{Clock, EventSink, Fanout, NoSink, Probe};
pub use trace::TraceContext;
