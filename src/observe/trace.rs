//! W3C Trace Context (`traceparent`, version 00): parsing what a client sends, starting a trace
//! when it sends none, and the child span ids the gateway's own spans and upstream calls use.
use serde::{Deserialize, Serialize};

/// The trace a request joins and the gateway's span in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    /// 32 lowercase hex digits, never all zero.
    pub trace_id: String,
    /// The gateway's SERVER span for this request: 16 lowercase hex digits.
    pub span_id: String,
    /// The client's span (from its `traceparent`), `None` when the gateway started the trace.
    pub parent_span_id: Option<String>,
    /// The trace flags byte of the incoming context (`01` = sampled); `01` for a new trace.
    pub flags: String,
    /// `tracestate` and `baggage` as received, relayed unchanged (bounded, see `MAX_STATE_LEN`).
    pub tracestate: Option<String>,
    pub baggage: Option<String>,
}

/// Longest `tracestate`/`baggage` relayed (W3C: tracestate has at most 32 members; 512 bytes is
/// what propagators must accept). Longer values are dropped, not truncated.
pub const MAX_STATE_LEN: usize = 512;

/// `(trace_id, parent_span_id, flags)` of a valid version-00 `traceparent`.
pub fn parse_traceparent(v: &str) -> Option<(String, String, String)> {
    let parts: Vec<&str> = v.trim().split('-').collect();
    let [version, trace, span, flags] = parts.as_slice() else {
        return None;
    };
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    (*version == "00" && hex(trace, 32) && nonzero(trace) && hex(span, 16) && nonzero(span) && hex(flags, 2))
        .then(|| (trace.to_string(), span.to_string(), flags.to_string()))
}

/// A new span id (random, never zero).
pub fn new_span_id() -> String {
    loop {
        let b = crate::crypto::random_bytes::<8>();
        if b.iter().any(|x| *x != 0) {
            return hex::encode(b);
        }
    }
}

fn new_trace_id() -> String {
    loop {
        let b = crate::crypto::random_bytes::<16>();
        if b.iter().any(|x| *x != 0) {
            return hex::encode(b);
        }
    }
}

fn bounded(v: Option<&str>) -> Option<String> {
    v.map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= MAX_STATE_LEN && s.bytes().all(|b| (0x20..0x7f).contains(&b)))
        .map(str::to_string)
}

impl TraceContext {
    /// Joins the client's trace when `traceparent` is valid (the header wins over
    /// `params._meta.traceparent`, which callers pass when there is no header), else starts one.
    pub fn join(traceparent: Option<&str>, tracestate: Option<&str>, baggage: Option<&str>) -> Self {
        match traceparent.and_then(parse_traceparent) {
            Some((trace_id, parent, flags)) => Self {
                trace_id,
                span_id: new_span_id(),
                parent_span_id: Some(parent),
                flags,
                tracestate: bounded(tracestate),
                baggage: bounded(baggage),
            },
            None => Self {
                trace_id: new_trace_id(),
                span_id: new_span_id(),
                parent_span_id: None,
                flags: "01".into(),
                tracestate: None,
                baggage: bounded(baggage),
            },
        }
    }

    /// The `traceparent` naming `span_id` (a span of this trace) as the parent.
    pub fn traceparent_for(&self, span_id: &str) -> String {
        format!("00-{}-{}-{}", self.trace_id, span_id, self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_a_valid_traceparent_and_starts_one_otherwise() {
        let t = TraceContext::join(
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("k=v"),
            None,
        );
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_ne!(t.span_id, "00f067aa0ba902b7");
        assert_eq!(t.tracestate.as_deref(), Some("k=v"));
        assert_eq!(
            t.traceparent_for("0102030405060708"),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01"
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "garbage",
        ] {
            let t = TraceContext::join(Some(bad), Some("k=v"), None);
            assert!(t.parent_span_id.is_none(), "{bad}");
            assert_eq!(t.trace_id.len(), 32);
            assert_eq!(t.tracestate, None, "tracestate without a valid parent is dropped");
        }
    }
}
