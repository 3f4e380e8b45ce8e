//! An event as OpenTelemetry spans, in the OTLP/HTTP JSON encoding of an
//! `ExportTraceServiceRequest`: one SERVER span for the MCP request and one CLIENT span, its
//! child, per upstream exchange (with the span id the upstream saw as its parent). Names and
//! attributes follow the OpenTelemetry semantic conventions for MCP (docs/observability.md,
//! "OpenTelemetry"). Plain data: the platform POSTs it.
use serde_json::{json, Map, Value};

use super::event::{AuthKind, Event, EventKind, Outcome, UpstreamCall};
use super::{CaptureMode, TraceContext};

/// `Span.kind` values of the OTLP protobuf (JSON carries enums as integers).
const SPAN_KIND_SERVER: u8 = 2;
const SPAN_KIND_CLIENT: u8 = 3;
/// `Status.code` ERROR.
const STATUS_CODE_ERROR: u8 = 2;
const NANOS_PER_MS: u64 = 1_000_000;
/// String attribute values longer than this are cut (on a character boundary): a tool name or
/// resource URI is bounded by the request body, but a span need not carry all of it.
pub const MAX_ATTRIBUTE_BYTES: usize = 4096;
/// Prefix of the gateway's own attributes (who called, which server, how it ended), which no
/// convention names: they tie a span to the audit trail and the usage figures.
const OWN: &str = "mcp_gateway.";

/// The resource every span of this deployment belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// `service.name` (`mcp-gateway` unless `OTEL_SERVICE_NAME` says otherwise).
    pub service_name: String,
    pub service_version: String,
}

/// The export of one event, or `None` when it has no spans: an admin write (recorded in the
/// audit trail, not traced), or a request whose client asked for its trace not to be sampled
/// (`traceparent` flags without the sampled bit: parent-based sampling, the OTel default).
pub fn export_request(e: &Event, resource: &Resource) -> Option<Value> {
    if e.kind != EventKind::Mcp {
        return None;
    }
    let trace = e.trace.clone().unwrap_or_else(|| TraceContext::join(None, None, None));
    if !sampled(&trace.flags) {
        return None;
    }
    let mut spans = vec![server_span(e, &trace)];
    spans.extend(e.upstreams.iter().map(|u| client_span(e, &trace, u)));
    Some(json!({
        "resourceSpans": [{
            "resource": {"attributes": [
                kv("service.name", s(&resource.service_name)),
                kv("service.version", s(&resource.service_version)),
            ]},
            "scopeSpans": [{
                "scope": {"name": "mcp-gateway", "version": resource.service_version},
                "spans": spans,
            }],
        }],
    }))
}

fn sampled(flags: &str) -> bool {
    u8::from_str_radix(flags, 16).is_ok_and(|f| f & 1 == 1)
}

/// `{mcp.method.name} {target}`, the target being the tool or prompt (never the resource URI:
/// span names stay low-cardinality).
pub fn span_name(e: &Event) -> String {
    let method = e.method.as_deref().unwrap_or(if e.http_method.is_empty() {
        "mcp"
    } else {
        &e.http_method
    });
    match e.tool.as_deref().or(e.prompt.as_deref()) {
        Some(target) => format!("{method} {}", cut(target)),
        None => method.to_string(),
    }
}

/// `error.type` and the status message, when the request failed.
fn error_type(o: &Outcome) -> Option<(String, Option<String>)> {
    match o {
        Outcome::Ok => None,
        Outcome::ToolError => Some(("tool_error".into(), None)),
        Outcome::RpcError { code } | Outcome::Denied { code } => Some((code.to_string(), None)),
        Outcome::UpstreamError { reason } => Some(("upstream_error".into(), Some(reason.clone()))),
        Outcome::Timeout => Some(("timeout".into(), None)),
        Outcome::Cancelled => Some(("cancelled".into(), None)),
    }
}

/// What the request was about, shared by its SERVER and CLIENT spans.
fn operation_attributes(e: &Event, out: &mut Vec<Value>) {
    if let Some(m) = &e.method {
        out.push(kv("mcp.method.name", s(m)));
        if m == "tools/call" {
            out.push(kv("gen_ai.operation.name", s("execute_tool")));
        }
    }
    opt(out, "gen_ai.tool.name", &e.tool);
    opt(out, "gen_ai.prompt.name", &e.prompt);
    opt(out, "mcp.resource.uri", &e.resource);
    out.push(kv("network.transport", s("tcp")));
    out.push(kv("network.protocol.name", s("http")));
}

fn server_span(e: &Event, trace: &TraceContext) -> Value {
    let mut attrs = Vec::new();
    operation_attributes(e, &mut attrs);
    opt(&mut attrs, "jsonrpc.request.id", &e.jsonrpc_id);
    opt(&mut attrs, "mcp.session.id", &e.session_id);
    opt(&mut attrs, "mcp.protocol.version", &e.protocol_version);
    opt(&mut attrs, "client.address", &e.client_address);
    let failed = error_type(&e.outcome.0);
    if let Some((t, _)) = &failed {
        attrs.push(kv("error.type", s(t)));
    }
    if let Outcome::RpcError { code } | Outcome::Denied { code } = &e.outcome.0 {
        attrs.push(kv("rpc.response.status_code", s(&code.to_string())));
    }
    // Arguments only when the organization or server captures them in full (never under `keys`).
    if e.capture == CaptureMode::Full {
        if let Some(args) = &e.arguments {
            let key = if e.method.as_deref() == Some("tools/call") {
                "gen_ai.tool.call.arguments".to_string()
            } else {
                format!("{OWN}request.arguments")
            };
            attrs.push(kv(&key, any(args)));
        }
    }
    own_attributes(e, &mut attrs);
    let mut span = span(
        trace,
        &trace.span_id,
        trace.parent_span_id.as_deref(),
        span_name(e),
        SPAN_KIND_SERVER,
        (e.time_ms, e.latency_ms),
        attrs,
    );
    if let Some(state) = &trace.tracestate {
        span.insert("traceState".into(), s_raw(state));
    }
    if let Some((_, message)) = failed {
        span.insert("status".into(), status(message));
    }
    Value::Object(span)
}

fn client_span(e: &Event, trace: &TraceContext, u: &UpstreamCall) -> Value {
    let mut attrs = Vec::new();
    operation_attributes(e, &mut attrs);
    if !u.address.is_empty() {
        attrs.push(kv("server.address", s(&u.address)));
        attrs.push(kv("server.port", int(i64::from(u.port))));
    }
    if let Some(st) = u.status {
        attrs.push(kv("http.response.status_code", int(i64::from(st))));
    }
    attrs.push(kv(&format!("{OWN}server"), s(&u.server)));
    if let Some(err) = &u.error {
        attrs.push(kv("error.type", s(err)));
    }
    let mut span = span(
        trace,
        &u.span_id,
        Some(&trace.span_id),
        span_name(e),
        SPAN_KIND_CLIENT,
        (u.started_ms, u.duration_ms),
        attrs,
    );
    if u.error.is_some() {
        span.insert("status".into(), status(u.error.clone()));
    }
    Value::Object(span)
}

/// Who called and how it ended, under the gateway's own prefix.
fn own_attributes(e: &Event, out: &mut Vec<Value>) {
    let own = |k: &str| format!("{OWN}{k}");
    out.push(kv(&own("event.id"), s(&e.id)));
    out.push(kv(&own("outcome"), s(e.outcome.0.name())));
    for (k, v) in [
        ("org.id", &e.org_id),
        ("principal.id", &e.principal_id),
        ("principal.kind", &e.principal_kind),
        ("key.id", &e.key_id),
        ("endpoint", &e.endpoint),
    ] {
        if !v.is_empty() {
            out.push(kv(&own(k), s(v)));
        }
    }
    if let Some(a) = e.auth_kind {
        let name = match a {
            AuthKind::ApiKey => "api_key",
            AuthKind::Oidc => "oidc",
            AuthKind::Oauth => "oauth",
            AuthKind::AdminToken => "admin_token",
        };
        out.push(kv(&own("auth.kind"), s(name)));
    }
    for (k, v) in [
        ("server", &e.server),
        ("virtual_server", &e.virtual_server),
        ("era", &e.era),
        ("client.name", &e.client_name),
        ("client.version", &e.client_version),
    ] {
        opt(out, &own(k), v);
    }
    for (k, v) in [("team.ids", &e.team_ids), ("workspace.ids", &e.workspace_ids)] {
        if !v.is_empty() {
            let values: Vec<Value> = v.iter().map(|x| s(x)).collect();
            out.push(kv(&own(k), json!({"arrayValue": {"values": values}})));
        }
    }
}

fn span(
    trace: &TraceContext,
    span_id: &str,
    parent: Option<&str>,
    name: String,
    kind: u8,
    (start_ms, duration_ms): (u64, f64),
    attributes: Vec<Value>,
) -> Map<String, Value> {
    let start = start_ms.saturating_mul(NANOS_PER_MS);
    let end = start.saturating_add((duration_ms.max(0.0) * NANOS_PER_MS as f64).round() as u64);
    let mut m = Map::new();
    // Ids as hex strings: the OTLP JSON encoding's rule (not protobuf JSON's base64).
    m.insert("traceId".into(), s_raw(&trace.trace_id));
    m.insert("spanId".into(), s_raw(span_id));
    if let Some(p) = parent {
        m.insert("parentSpanId".into(), s_raw(p));
    }
    m.insert("name".into(), Value::String(name));
    m.insert("kind".into(), json!(kind));
    // 64-bit integers as decimal strings (protobuf JSON), exact beyond 2^53.
    m.insert("startTimeUnixNano".into(), Value::String(start.to_string()));
    m.insert("endTimeUnixNano".into(), Value::String(end.to_string()));
    m.insert("attributes".into(), Value::Array(attributes));
    m
}

fn status(message: Option<String>) -> Value {
    match message {
        Some(m) => json!({"code": STATUS_CODE_ERROR, "message": cut(&m)}),
        None => json!({"code": STATUS_CODE_ERROR}),
    }
}

fn cut(v: &str) -> &str {
    if v.len() <= MAX_ATTRIBUTE_BYTES {
        return v;
    }
    let mut end = MAX_ATTRIBUTE_BYTES;
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    &v[..end]
}

fn s_raw(v: &str) -> Value {
    Value::String(v.to_string())
}

fn kv(key: &str, value: Value) -> Value {
    json!({"key": key, "value": value})
}

fn s(v: &str) -> Value {
    json!({"stringValue": cut(v)})
}

fn int(v: i64) -> Value {
    json!({"intValue": v.to_string()})
}

fn opt(out: &mut Vec<Value>, key: &str, v: &Option<String>) {
    if let Some(v) = v {
        out.push(kv(key, s(v)));
    }
}

/// A JSON value as an OTLP `AnyValue`, structure kept (objects as key-value lists).
fn any(v: &Value) -> Value {
    match v {
        Value::Null => json!({}),
        Value::Bool(b) => json!({"boolValue": b}),
        Value::Number(n) => match n.as_i64() {
            Some(i) => int(i),
            None => json!({"doubleValue": n.as_f64().unwrap_or(0.0)}),
        },
        Value::String(x) => json!({"stringValue": x}),
        Value::Array(a) => json!({"arrayValue": {"values": a.iter().map(any).collect::<Vec<_>>()}}),
        Value::Object(o) => {
            json!({"kvlistValue": {"values": o.iter().map(|(k, v)| kv(k, any(v))).collect::<Vec<_>>()}})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::event::OutcomeField;

    const PARENT: &str = "00f067aa0ba902b7";
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn resource() -> Resource {
        Resource {
            service_name: "mcp-gateway".into(),
            service_version: "0.1.0".into(),
        }
    }

    fn tool_call(outcome: Outcome) -> Event {
        Event {
            id: "ev_1".into(),
            time_ms: 1_700_000_000_000,
            trace: Some(TraceContext::join(
                Some(&format!("00-{TRACE}-{PARENT}-01")),
                Some("k=v"),
                None,
            )),
            org_id: "org_a".into(),
            team_ids: vec!["team_x".into()],
            principal_id: "agent_7".into(),
            principal_kind: "agent".into(),
            auth_kind: Some(AuthKind::ApiKey),
            client_address: Some("203.0.113.9".into()),
            protocol_version: Some("2025-11-25".into()),
            session_id: Some("sess-1".into()),
            endpoint: "server".into(),
            server: Some("py".into()),
            method: Some("tools/call".into()),
            http_method: "POST".into(),
            jsonrpc_id: Some("7".into()),
            tool: Some("echo".into()),
            arguments: Some(json!(["message"])),
            capture: CaptureMode::Keys,
            outcome: OutcomeField(outcome),
            latency_ms: 12.5,
            upstreams: vec![UpstreamCall {
                server: "py".into(),
                address: "127.0.0.1".into(),
                port: 8000,
                span_id: "0102030405060708".into(),
                started_ms: 1_700_000_000_002,
                duration_ms: 8.25,
                status: Some(200),
                error: None,
            }],
            ..Event::default()
        }
    }

    fn spans(v: &Value) -> &Vec<Value> {
        v["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().unwrap()
    }

    fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
        span["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| &a["value"])
    }

    #[test]
    fn a_tool_call_is_a_server_span_with_one_client_child() {
        let e = tool_call(Outcome::Ok);
        let v = export_request(&e, &resource()).unwrap();
        let res = &v["resourceSpans"][0]["resource"]["attributes"];
        assert_eq!(
            res[0],
            json!({"key": "service.name", "value": {"stringValue": "mcp-gateway"}})
        );
        let [server, client] = spans(&v).as_slice() else {
            panic!("two spans")
        };
        let trace = e.trace.as_ref().unwrap();
        assert_eq!(server["traceId"], TRACE);
        assert_eq!(server["parentSpanId"], PARENT, "the agent's span is the parent");
        assert_eq!(server["spanId"], trace.span_id.as_str());
        assert_eq!(server["traceState"], "k=v");
        assert_eq!(server["kind"], 2);
        assert_eq!(server["name"], "tools/call echo");
        assert_eq!(server["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(server["endTimeUnixNano"], "1700000000012500000");
        assert!(server.get("status").is_none(), "ok leaves the status unset");
        for (k, want) in [
            ("mcp.method.name", json!({"stringValue": "tools/call"})),
            ("gen_ai.operation.name", json!({"stringValue": "execute_tool"})),
            ("gen_ai.tool.name", json!({"stringValue": "echo"})),
            ("jsonrpc.request.id", json!({"stringValue": "7"})),
            ("mcp.session.id", json!({"stringValue": "sess-1"})),
            ("mcp.protocol.version", json!({"stringValue": "2025-11-25"})),
            ("client.address", json!({"stringValue": "203.0.113.9"})),
            ("network.transport", json!({"stringValue": "tcp"})),
            ("mcp_gateway.principal.id", json!({"stringValue": "agent_7"})),
            (
                "mcp_gateway.team.ids",
                json!({"arrayValue": {"values": [{"stringValue": "team_x"}]}}),
            ),
        ] {
            assert_eq!(attr(server, k), Some(&want), "{k}");
        }
        for absent in ["error.type", "rpc.response.status_code", "gen_ai.tool.call.arguments"] {
            assert_eq!(attr(server, absent), None, "{absent}");
        }

        assert_eq!(client["traceId"], TRACE);
        assert_eq!(client["spanId"], "0102030405060708", "the span id the upstream saw");
        assert_eq!(client["parentSpanId"], trace.span_id.as_str());
        assert_eq!(client["kind"], 3);
        assert_eq!(client["name"], "tools/call echo");
        assert_eq!(client["startTimeUnixNano"], "1700000000002000000");
        assert_eq!(client["endTimeUnixNano"], "1700000000010250000");
        assert_eq!(
            attr(client, "server.address"),
            Some(&json!({"stringValue": "127.0.0.1"}))
        );
        assert_eq!(attr(client, "server.port"), Some(&json!({"intValue": "8000"})));
        assert_eq!(attr(client, "gen_ai.tool.name"), Some(&json!({"stringValue": "echo"})));
    }

    #[test]
    fn errors_set_error_type_and_status() {
        let tool_error = export_request(&tool_call(Outcome::ToolError), &resource()).unwrap();
        let server = &spans(&tool_error)[0];
        assert_eq!(attr(server, "error.type"), Some(&json!({"stringValue": "tool_error"})));
        assert_eq!(server["status"]["code"], 2);
        assert_eq!(attr(server, "rpc.response.status_code"), None);

        let rpc = export_request(&tool_call(Outcome::RpcError { code: -32602 }), &resource()).unwrap();
        let server = &spans(&rpc)[0];
        assert_eq!(attr(server, "error.type"), Some(&json!({"stringValue": "-32602"})));
        assert_eq!(
            attr(server, "rpc.response.status_code"),
            Some(&json!({"stringValue": "-32602"}))
        );

        let mut down = tool_call(Outcome::UpstreamError {
            reason: "status 502".into(),
        });
        down.upstreams[0].status = Some(502);
        down.upstreams[0].error = Some("status 502".into());
        let v = export_request(&down, &resource()).unwrap();
        let [server, client] = spans(&v).as_slice() else {
            panic!()
        };
        assert_eq!(
            attr(server, "error.type"),
            Some(&json!({"stringValue": "upstream_error"}))
        );
        assert_eq!(server["status"], json!({"code": 2, "message": "status 502"}));
        assert_eq!(attr(client, "error.type"), Some(&json!({"stringValue": "status 502"})));
        assert_eq!(
            attr(client, "http.response.status_code"),
            Some(&json!({"intValue": "502"}))
        );
        assert_eq!(client["status"]["code"], 2);
    }

    #[test]
    fn arguments_only_under_full_capture_and_structured() {
        let mut e = tool_call(Outcome::Ok);
        e.capture = CaptureMode::Full;
        e.arguments = Some(json!({"message": "hi", "n": 3, "x": 1.5, "ok": true, "list": [null]}));
        let v = export_request(&e, &resource()).unwrap();
        let args = attr(&spans(&v)[0], "gen_ai.tool.call.arguments").unwrap();
        let values = args["kvlistValue"]["values"].as_array().unwrap();
        let get = |k: &str| values.iter().find(|x| x["key"] == k).map(|x| x["value"].clone());
        assert_eq!(get("message"), Some(json!({"stringValue": "hi"})));
        assert_eq!(get("n"), Some(json!({"intValue": "3"})));
        assert_eq!(get("x"), Some(json!({"doubleValue": 1.5})));
        assert_eq!(get("ok"), Some(json!({"boolValue": true})));
        assert_eq!(get("list"), Some(json!({"arrayValue": {"values": [{}]}})));
        e.capture = CaptureMode::None;
        let v = export_request(&e, &resource()).unwrap();
        assert_eq!(attr(&spans(&v)[0], "gen_ai.tool.call.arguments"), None);
    }

    #[test]
    fn unsampled_traces_admin_writes_and_traceless_events() {
        let mut e = tool_call(Outcome::Ok);
        e.trace = Some(TraceContext::join(Some(&format!("00-{TRACE}-{PARENT}-00")), None, None));
        assert_eq!(export_request(&e, &resource()), None, "the client asked not to sample");
        e.kind = EventKind::Admin;
        e.trace = None;
        assert_eq!(export_request(&e, &resource()), None);
        e.kind = EventKind::Mcp;
        let v = export_request(&e, &resource()).expect("a trace is started when none was joined");
        let server = &spans(&v)[0];
        assert_eq!(server["traceId"].as_str().unwrap().len(), 32);
        assert!(server.get("parentSpanId").is_none());
    }

    #[test]
    fn span_names_stay_low_cardinality() {
        let mut e = tool_call(Outcome::Ok);
        e.method = Some("resources/read".into());
        e.tool = None;
        e.resource = Some("file:///a/b".into());
        assert_eq!(span_name(&e), "resources/read");
        e.method = Some("prompts/get".into());
        e.prompt = Some("review".into());
        assert_eq!(span_name(&e), "prompts/get review");
        e.method = None;
        e.prompt = None;
        e.http_method = "GET".into();
        assert_eq!(span_name(&e), "GET");
    }
}
