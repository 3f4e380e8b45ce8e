//! The Workers Analytics Engine data point of an event: one index, twenty blobs and a few
//! doubles, by position. The positions are a public contract (queries name `blob7`, `double2`):
//! `BLOBS` and `DOUBLES` are the one place they are defined, and docs/observability.md
//! ("Analytics Engine") lists them. New fields go at the end, never in between.
use super::event::{Event, EventKind, Outcome};

/// Analytics Engine's limits per data point: one index of at most 96 bytes, at most 20 blobs
/// whose sizes add up to at most 16 KB (5 KB before mid-2025), at most 20 doubles.
pub const MAX_INDEX_BYTES: usize = 96;
pub const MAX_BLOBS: usize = 20;
pub const MAX_DOUBLES: usize = 20;
/// Every blob is cut to this many bytes (on a character boundary), so the 20 blobs stay within
/// 5 KB — the older, stricter total — whatever an event holds.
pub const MAX_BLOB_BYTES: usize = 256;
/// The index of events that belong to no organization (a request refused before
/// authentication, a platform admin's write): Analytics Engine samples per index value.
pub const PLATFORM_INDEX: &str = "_platform";

/// A named position of the layout and how its value is read from an event.
pub type Field<T> = (&'static str, fn(&Event) -> T);

/// Blob positions (`blob1` is `BLOBS[0]`).
pub const BLOBS: [Field<String>; MAX_BLOBS] = [
    ("kind", |e| kind(e).into()),
    ("org", |e| e.org_id.clone()),
    ("workspace", |e| first(&e.workspace_ids)),
    ("team", |e| first(&e.team_ids)),
    ("teams", |e| e.team_ids.join(",")),
    ("principal", |e| e.principal_id.clone()),
    ("principal_kind", |e| e.principal_kind.clone()),
    ("key_id", |e| e.key_id.clone()),
    ("auth_kind", |e| auth_kind(e).into()),
    ("endpoint", |e| e.endpoint.clone()),
    ("server", |e| opt(&e.server)),
    ("virtual_server", |e| opt(&e.virtual_server)),
    ("method", method),
    ("target", target),
    ("outcome", |e| e.outcome.0.name().into()),
    ("error", error),
    ("era", |e| opt(&e.era)),
    ("protocol_version", |e| opt(&e.protocol_version)),
    ("client", client),
    ("trace_id", |e| {
        e.trace.as_ref().map(|t| t.trace_id.clone()).unwrap_or_default()
    }),
];

/// Double positions (`double1` is `DOUBLES[0]`).
pub const DOUBLES: &[Field<f64>] = &[
    ("count", |_| 1.0),
    ("latency_ms", |e| e.latency_ms),
    ("upstream_ms", |e| e.upstream_ms),
    ("bytes_in", |e| e.bytes_in as f64),
    ("bytes_out", |e| e.bytes_out as f64),
    ("error_code", |e| error_code(&e.outcome.0) as f64),
    ("is_error", |e| f64::from(u8::from(e.outcome.0.is_error()))),
    ("is_denied", |e| {
        f64::from(u8::from(matches!(e.outcome.0, Outcome::Denied { .. })))
    }),
    ("upstream_calls", |e| e.upstreams.len() as f64),
];

/// One Analytics Engine data point, as plain data (the platform writes it).
#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint {
    pub index: String,
    pub blobs: Vec<String>,
    pub doubles: Vec<f64>,
}

impl DataPoint {
    pub fn from_event(e: &Event) -> Self {
        let index = if e.org_id.is_empty() { PLATFORM_INDEX } else { &e.org_id };
        Self {
            index: cut(index, MAX_INDEX_BYTES).to_string(),
            blobs: BLOBS
                .iter()
                .map(|(_, f)| cut(&f(e), MAX_BLOB_BYTES).to_string())
                .collect(),
            doubles: DOUBLES.iter().map(|(_, f)| f(e)).collect(),
        }
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn first(v: &[String]) -> String {
    v.first().cloned().unwrap_or_default()
}

fn kind(e: &Event) -> &'static str {
    match e.kind {
        EventKind::Mcp => "mcp",
        EventKind::Admin => "admin",
    }
}

fn auth_kind(e: &Event) -> &'static str {
    use super::event::AuthKind::*;
    match e.auth_kind {
        Some(ApiKey) => "api_key",
        Some(Oidc) => "oidc",
        Some(Oauth) => "oauth",
        Some(AdminToken) => "admin_token",
        None => "",
    }
}

/// The JSON-RPC method; for an admin write (or a GET stream / DELETE), the HTTP method.
fn method(e: &Event) -> String {
    e.method.clone().unwrap_or_else(|| e.http_method.clone())
}

/// What the call was about: the tool, prompt or resource URI; for an admin write, its path.
fn target(e: &Event) -> String {
    e.subject()
        .cloned()
        .or_else(|| e.admin.as_ref().map(|a| a.path.clone()))
        .unwrap_or_default()
}

fn error(e: &Event) -> String {
    match &e.outcome.0 {
        Outcome::RpcError { code } | Outcome::Denied { code } => code.to_string(),
        Outcome::UpstreamError { reason } => reason.clone(),
        _ => String::new(),
    }
}

fn error_code(o: &Outcome) -> i64 {
    match o {
        Outcome::RpcError { code } | Outcome::Denied { code } => *code,
        _ => 0,
    }
}

/// `name/version` of the client, as it said in `initialize` (`name` alone without a version).
fn client(e: &Event) -> String {
    match (&e.client_name, &e.client_version) {
        (Some(n), Some(v)) => format!("{n}/{v}"),
        (Some(n), None) => n.clone(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::event::{AuthKind, OutcomeField, UpstreamCall};
    use crate::observe::TraceContext;

    fn blob<'a>(p: &'a DataPoint, name: &str) -> &'a str {
        let i = BLOBS.iter().position(|(n, _)| *n == name).expect(name);
        &p.blobs[i]
    }

    fn double(p: &DataPoint, name: &str) -> f64 {
        p.doubles[DOUBLES.iter().position(|(n, _)| *n == name).expect(name)]
    }

    fn call() -> Event {
        Event {
            org_id: "org_a".into(),
            workspace_ids: vec!["ws_1".into(), "ws_2".into()],
            team_ids: vec!["team_x".into(), "team_y".into()],
            principal_id: "agent_7".into(),
            principal_kind: "agent".into(),
            key_id: "key_1".into(),
            auth_kind: Some(AuthKind::ApiKey),
            client_name: Some("claude".into()),
            client_version: Some("1.2".into()),
            era: Some("modern".into()),
            protocol_version: Some("2026-07-28".into()),
            endpoint: "all".into(),
            server: Some("py".into()),
            method: Some("tools/call".into()),
            http_method: "POST".into(),
            tool: Some("echo".into()),
            trace: Some(TraceContext::join(None, None, None)),
            outcome: OutcomeField(Outcome::RpcError { code: -32602 }),
            latency_ms: 12.5,
            upstream_ms: 10.0,
            bytes_in: 120,
            bytes_out: 340,
            upstreams: vec![UpstreamCall {
                server: "py".into(),
                address: "127.0.0.1".into(),
                port: 8000,
                span_id: "0102030405060708".into(),
                started_ms: 0,
                duration_ms: 10.0,
                status: Some(200),
                error: None,
            }],
            ..Event::default()
        }
    }

    #[test]
    fn layout_is_within_the_limits_and_names_are_unique() {
        assert_eq!(BLOBS.len(), MAX_BLOBS);
        assert!(DOUBLES.len() <= MAX_DOUBLES);
        let mut names: Vec<&str> = BLOBS
            .iter()
            .map(|(n, _)| *n)
            .chain(DOUBLES.iter().map(|(n, _)| *n))
            .collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BLOBS.len() + DOUBLES.len());
        const { assert!(MAX_BLOBS * MAX_BLOB_BYTES <= 5 * 1024) };
    }

    #[test]
    fn a_call_fills_each_position() {
        let e = call();
        let p = DataPoint::from_event(&e);
        assert_eq!(p.index, "org_a");
        assert_eq!(p.blobs.len(), MAX_BLOBS);
        assert_eq!(p.blobs[0], "mcp", "blob1 is the kind");
        assert_eq!(blob(&p, "org"), "org_a");
        assert_eq!(blob(&p, "workspace"), "ws_1");
        assert_eq!(blob(&p, "team"), "team_x");
        assert_eq!(blob(&p, "teams"), "team_x,team_y");
        assert_eq!(blob(&p, "principal"), "agent_7");
        assert_eq!(blob(&p, "auth_kind"), "api_key");
        assert_eq!(blob(&p, "method"), "tools/call");
        assert_eq!(blob(&p, "target"), "echo");
        assert_eq!(blob(&p, "outcome"), "rpc_error");
        assert_eq!(blob(&p, "error"), "-32602");
        assert_eq!(blob(&p, "client"), "claude/1.2");
        assert_eq!(blob(&p, "trace_id"), e.trace.as_ref().unwrap().trace_id);
        assert_eq!(p.doubles[0], 1.0, "double1 is the count");
        assert_eq!(double(&p, "latency_ms"), 12.5);
        assert_eq!(double(&p, "upstream_ms"), 10.0);
        assert_eq!(double(&p, "bytes_in"), 120.0);
        assert_eq!(double(&p, "bytes_out"), 340.0);
        assert_eq!(double(&p, "error_code"), -32602.0);
        assert_eq!(double(&p, "is_error"), 1.0);
        assert_eq!(double(&p, "is_denied"), 0.0);
        assert_eq!(double(&p, "upstream_calls"), 1.0);
    }

    #[test]
    fn refusals_and_admin_writes_have_their_own_shape() {
        let denied = Event {
            outcome: OutcomeField(Outcome::Denied { code: -32001 }),
            method: Some("tools/call".into()),
            ..Event::default()
        };
        let p = DataPoint::from_event(&denied);
        assert_eq!(p.index, PLATFORM_INDEX, "no organization: the platform's index");
        assert_eq!(blob(&p, "outcome"), "denied");
        assert_eq!((double(&p, "is_denied"), double(&p, "is_error")), (1.0, 0.0));
        assert_eq!(blob(&p, "trace_id"), "");

        let admin = Event {
            kind: EventKind::Admin,
            org_id: "org_a".into(),
            http_method: "PATCH".into(),
            admin: Some(crate::observe::AdminChange {
                http_method: "PATCH".into(),
                path: "/admin/v1/servers/py".into(),
                status: 200,
                before: None,
                after: None,
            }),
            outcome: OutcomeField(Outcome::UpstreamError {
                reason: "status 502".into(),
            }),
            ..Event::default()
        };
        let p = DataPoint::from_event(&admin);
        assert_eq!(blob(&p, "kind"), "admin");
        assert_eq!(blob(&p, "method"), "PATCH");
        assert_eq!(blob(&p, "target"), "/admin/v1/servers/py");
        assert_eq!(blob(&p, "error"), "status 502");
    }

    #[test]
    fn long_values_are_cut_on_character_boundaries_within_the_limits() {
        let mut e = call();
        e.org_id = "o".repeat(200);
        e.tool = Some("é".repeat(1000));
        e.team_ids = (0..500).map(|i| format!("team_{i}")).collect();
        e.resource = Some("x".repeat(100_000));
        let p = DataPoint::from_event(&e);
        assert_eq!(p.index.len(), MAX_INDEX_BYTES);
        assert!(p.blobs.iter().all(|b| b.len() <= MAX_BLOB_BYTES));
        assert!(p.blobs.iter().map(String::len).sum::<usize>() <= 5 * 1024);
        assert_eq!(blob(&p, "target"), "é".repeat(MAX_BLOB_BYTES / 2));
        assert!(blob(&p, "teams").starts_with("team_0,team_1,"));
    }
}
