//! Talking to one upstream MCP server over streamable HTTP, in whichever era it speaks:
//! era detection, the legacy handshake, single request/response exchanges and raw forwarding.
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::http::{Body, Headers, HttpResponse, Method};
use crate::mcp::jsonrpc::{self, RequestId};
use crate::mcp::sse;
use crate::mcp::transport::{self, HEADER_METHOD, HEADER_NAME, HEADER_PROTOCOL_VERSION, HEADER_SESSION};
use crate::mcp::version::{self, meta, Era};

use crate::config::{clamp_timeout, clamp_total};
use crate::context::{CallHooks, Services};
use crate::observe::{Probe, TraceContext};
use crate::outbound::deadline::{Bounds, Hold};
use crate::policy::Permit;

use super::GatewayError;
pub use crate::outbound::{is_connection_lost, HttpClient, OutboundRequest, UpstreamError};
use std::rc::Rc;

/// Largest upstream body the gateway reads whole (catalog pages, single responses).
pub const MAX_UPSTREAM_BODY_BYTES: usize = 8 * 1024 * 1024;
/// How the gateway introduces itself to upstreams.
pub const GATEWAY_NAME: &str = "mcp-gateway";
pub const GATEWAY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Marks every request the gateway sends upstream. A request that arrives carrying it has
/// already passed through a gateway: it is refused (see `endpoint`), so a server registered with
/// a URL that leads back to a gateway fails at once instead of recursing.
pub const HOP_HEADER: &str = "mcp-gateway-hop";

/// Methods that may be sent again when the connection dropped under them: they read, or (the
/// handshake) only open a session. A `tools/call` is repeatable only when its tool is declared
/// read-only (`readOnlyHint`) in the approved catalog.
pub const REPEATABLE_METHODS: &[&str] = &[
    "initialize",
    "notifications/initialized",
    "ping",
    "server/discover",
    "tools/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "subscriptions/listen",
];

/// Whether an exchange may be repeated after the connection dropped under it.
pub fn repeatable(method: Method, body: Option<&Value>, read_only_call: bool) -> bool {
    match (method, body.and_then(|b| b.get("method")).and_then(Value::as_str)) {
        (Method::Get | Method::Delete, _) => true,
        (_, Some("tools/call")) => read_only_call,
        (_, Some(m)) => REPEATABLE_METHODS.contains(&m),
        // Responses to server→client requests: repeating could answer twice.
        (_, None) => false,
    }
}

/// A legacy-era session the gateway holds with an upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamSession {
    /// `None` when the upstream runs without sessions.
    pub id: Option<String>,
    pub protocol_version: String,
}

/// What era detection learned about an upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    pub era: Era,
    pub protocol_version: String,
    pub capabilities: Value,
    pub server_info: Value,
    pub instructions: Option<String>,
    /// For a modern upstream, the newest legacy revision it also lists in `supportedVersions`.
    pub legacy_version: Option<String>,
    /// For a legacy upstream, the session opened while detecting (reuse it, then close it).
    pub session: Option<UpstreamSession>,
}

/// The identity and capabilities a request is made with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientContext {
    pub capabilities: Value,
    pub client_info: Value,
}

impl Default for ClientContext {
    fn default() -> Self {
        Self {
            capabilities: json!({}),
            client_info: json!({"name": GATEWAY_NAME, "version": GATEWAY_VERSION}),
        }
    }
}

impl ClientContext {
    /// What the gateway declares when it reads a catalog: every client capability it can relay
    /// (server→client requests, `s2c.rs`), so that tools offered only to capable clients are
    /// listed. Whether a given client can answer is decided per request.
    pub fn catalog() -> Self {
        Self {
            capabilities: json!({"sampling": {}, "elicitation": {"form": {}, "url": {}}, "roots": {"listChanged": true}}),
            ..Self::default()
        }
    }
}

/// One upstream server as seen by one request. Made only by `Upstream::open` from a `Permit`
/// (or from another `Upstream`, see `s2c::Replier`), so every exchange is authorized.
#[derive(Clone)]
pub struct Upstream<'a> {
    /// The proof this exchange was authorized, and for whom.
    pub permit: &'a Permit,
    /// The request pipeline's hooks, called by `forward` around every client message.
    pub hooks: Rc<dyn CallHooks>,
    /// When the exchange was opened (ms since the epoch), the start of its calls.
    pub opened_ms: u64,
    pub http: &'a dyn HttpClient,
    /// The same client, owned: for answers sent after the request that opened a stream has
    /// returned (server→client requests). `None` where the platform offers none.
    pub shared_http: Option<std::rc::Rc<dyn HttpClient>>,
    pub url: &'a str,
    pub slug: &'a str,
    /// Idle deadline: longest wait for the response headers or the next message.
    pub timeout_ms: u32,
    /// Total deadline of one request/response exchange.
    pub total_ms: u32,
    /// Idle deadline of long-lived notification streams (GET, `subscriptions/listen`), where
    /// keep-alives count as activity.
    pub listen_idle_ms: u32,
    /// The `tools/call` sent through this handle names a tool the catalog declares read-only
    /// (so it may be repeated when the connection drops under it).
    pub read_only_call: bool,
    /// Extra headers the gateway presents upstream (its own credentials, trace context).
    pub extra_headers: Headers,
    /// Sends a request after the client has gone (the platform keeps it running); `None` where
    /// nothing can outlive the request (native tests).
    pub background: Option<Background>,
    /// The trace of the request this exchange serves (sent upstream, see `set_trace`).
    pub trace: Option<TraceContext>,
    /// The event of the request this exchange serves (`forward` records each exchange in it).
    pub probe: Option<Rc<Probe>>,
    /// Whether the answer to a message sent here is the answer the client gets (`false` for
    /// the legs of a fan-out, whose answers the gateway merges).
    pub answers_client: bool,
    /// See `Services::url_elicitation`.
    pub url_elicitation: bool,
}

/// Sends one request in the background, its outcome ignored.
pub use crate::outbound::Background;

impl<'a> Upstream<'a> {
    /// The handle for a permitted server, with its timeouts and the headers the gateway presents.
    /// The agent's own headers are never copied here: only what the gateway decides to send
    /// (its credentials for the upstream, chosen for the permit's user; the request's trace
    /// context, with the gateway's span as the parent).
    pub async fn open(svc: &Services<'a>, permit: &'a Permit) -> Result<Self, GatewayError> {
        let server = permit.server();
        let extra = crate::upstream_auth::headers_for(svc, server, permit.acting_user()).await?;
        let trace = svc.probe.as_ref().and_then(|p| p.read(|e| e.trace.clone()));
        let mut up = Upstream {
            permit,
            hooks: svc.hooks.clone(),
            opened_ms: svc.now_ms,
            http: svc.http,
            shared_http: svc.live.as_ref().map(|l| l.http.clone()),
            url: &server.url,
            slug: &server.slug,
            timeout_ms: server
                .timeout_ms
                .map(clamp_timeout)
                .unwrap_or(svc.config.upstream_timeout_ms),
            total_ms: server
                .total_timeout_ms
                .map(clamp_total)
                .unwrap_or(svc.config.upstream_total_ms),
            listen_idle_ms: svc.config.listen_idle_ms,
            read_only_call: false,
            extra_headers: extra,
            background: svc.live.as_ref().map(|d| d.background()),
            trace: None,
            probe: svc.probe.clone(),
            answers_client: true,
            url_elicitation: svc.url_elicitation,
        };
        if let Some(t) = &trace {
            up.set_trace(t.clone(), &t.span_id);
        }
        Ok(up)
    }

    /// Sends the trace context with every exchange made here, naming `parent` (a span of the
    /// trace: the gateway's own, or the CLIENT span of one exchange) as the parent.
    pub fn set_trace(&mut self, trace: TraceContext, parent: &str) {
        self.extra_headers.set("traceparent", trace.traceparent_for(parent));
        for (name, v) in [("tracestate", &trace.tracestate), ("baggage", &trace.baggage)] {
            match v {
                Some(v) => self.extra_headers.set(name, v.clone()),
                None => self.extra_headers.0.retain(|(k, _)| !k.eq_ignore_ascii_case(name)),
            }
        }
        self.trace = Some(trace);
    }

    fn base_headers(&self) -> Headers {
        let mut h = self.extra_headers.clone();
        h.set("content-type", "application/json");
        h.set("accept", "application/json, text/event-stream");
        h
    }

    fn legacy_headers(&self, session: Option<&UpstreamSession>) -> Headers {
        let mut headers = self.base_headers();
        if let Some(s) = session {
            if let Some(id) = &s.id {
                headers.set(HEADER_SESSION, id.clone());
            }
            headers.set(HEADER_PROTOCOL_VERSION, s.protocol_version.clone());
        }
        headers
    }

    /// A hook that POSTs `msg` (a notification) on `session` in the background, for when the
    /// client is gone; `None` where the platform cannot run it.
    pub fn in_background(&self, msg: Value, session: &UpstreamSession) -> Option<Box<dyn FnOnce()>> {
        let background = self.background.clone()?;
        let req = OutboundRequest {
            method: Method::Post,
            url: self.url.to_string(),
            headers: self.legacy_headers(Some(session)),
            body: Some(msg.to_string().into_bytes()),
            timeout_ms: self.timeout_ms,
        };
        Some(Box::new(move || background(req)))
    }

    /// POSTs a legacy-era message; the raw response is returned for streaming.
    pub async fn post_legacy(
        &self,
        msg: &Value,
        session: Option<&UpstreamSession>,
    ) -> Result<HttpResponse, UpstreamError> {
        self.post_legacy_held(msg, session, None).await
    }

    /// `post_legacy` for a request whose response stream may carry server→client requests:
    /// `hold` pauses its idle deadline while the client has one to answer.
    pub async fn post_legacy_held(
        &self,
        msg: &Value,
        session: Option<&UpstreamSession>,
        hold: Option<Rc<Hold>>,
    ) -> Result<HttpResponse, UpstreamError> {
        let headers = self.legacy_headers(session);
        let resp = self.send(Method::Post, headers, Some(msg), hold).await?;
        if session.and_then(|s| s.id.as_ref()).is_some() && session_gone(&resp) {
            return Err(UpstreamError::SessionExpired);
        }
        Ok(resp)
    }

    /// POSTs a modern-era message, mirroring method and name into headers as 2026-07-28 requires.
    pub async fn post_modern(&self, msg: &Value) -> Result<HttpResponse, UpstreamError> {
        let mut headers = self.base_headers();
        headers.set(HEADER_PROTOCOL_VERSION, version::MODERN);
        if let Some(m) = msg.get("method").and_then(Value::as_str) {
            headers.set(HEADER_METHOD, m);
            let name = msg.pointer("/params/name").or_else(|| msg.pointer("/params/uri"));
            if let Some(n) = name.and_then(Value::as_str) {
                headers.set(HEADER_NAME, transport::encode_header_value(n));
            }
        }
        self.send(Method::Post, headers, Some(msg), None).await
    }

    /// Opens the legacy server→client stream.
    pub async fn get_stream(
        &self,
        session: &UpstreamSession,
        last_event_id: Option<&str>,
    ) -> Result<HttpResponse, UpstreamError> {
        let mut headers = self.extra_headers.clone();
        headers.set("accept", "text/event-stream");
        headers.set(HEADER_PROTOCOL_VERSION, session.protocol_version.clone());
        if let Some(id) = &session.id {
            headers.set(HEADER_SESSION, id.clone());
        }
        if let Some(l) = last_event_id {
            headers.set(transport::HEADER_LAST_EVENT_ID, l);
        }
        self.send(Method::Get, headers, None, None).await
    }

    /// Ends a legacy session upstream. Failures are ignored: the upstream may already be gone.
    /// Whether a modern upstream also completes a legacy `initialize` (SDK servers often serve
    /// both eras without listing the legacy revisions in `supportedVersions`): the revision it
    /// negotiated, with the probe session closed again. Only sync asks, once per sync.
    async fn accepts_legacy(&self) -> Option<String> {
        let (session, _) = self
            .initialize(legacy_init_params(None, &ClientContext::catalog()))
            .await
            .ok()?;
        self.close(&session).await;
        version::is_legacy_version(&session.protocol_version).then(|| session.protocol_version.clone())
    }

    pub async fn close(&self, session: &UpstreamSession) {
        let Some(id) = &session.id else { return };
        let mut headers = self.extra_headers.clone();
        headers.set(HEADER_SESSION, id.clone());
        headers.set(HEADER_PROTOCOL_VERSION, session.protocol_version.clone());
        let _ = self.send(Method::Delete, headers, None, None).await;
    }

    async fn send(
        &self,
        method: Method,
        mut headers: Headers,
        body: Option<&Value>,
        hold: Option<Rc<Hold>>,
    ) -> Result<HttpResponse, UpstreamError> {
        headers.set(HOP_HEADER, "1");
        let listen = method == Method::Get
            || body.and_then(|b| b.get("method")).and_then(Value::as_str) == Some("subscriptions/listen");
        let bounds = if listen {
            Bounds::listen(self.listen_idle_ms)
        } else {
            Bounds {
                hold,
                ..Bounds::exchange(self.timeout_ms, self.total_ms)
            }
        };
        let req = OutboundRequest {
            method,
            url: self.url.to_string(),
            headers,
            body: body.map(|b| b.to_string().into_bytes()),
            timeout_ms: self.timeout_ms,
        };
        match self.http.send_bounded(req.clone(), bounds.clone()).await {
            // A dropped connection (typically a pooled keep-alive connection the upstream had
            // just closed) is retried once, only where running the request twice is harmless.
            Err(UpstreamError::ConnectionLost(e)) if repeatable(method, body, self.read_only_call) => {
                tracing::info!(upstream = %self.slug, error = %e, "connection lost; sending again");
                self.http.send_bounded(req, bounds).await
            }
            other => other,
        }
    }

    /// Sends a request and waits for its one response (from JSON or an SSE stream).
    pub async fn request(
        &self,
        era: Era,
        msg: &Value,
        session: Option<&UpstreamSession>,
    ) -> Result<Value, UpstreamError> {
        let id = msg.get("id").cloned().unwrap_or(Value::Null);
        let resp = match era {
            Era::Legacy => self.post_legacy(msg, session).await?,
            Era::Modern => self.post_modern(msg).await?,
        };
        read_response(resp, &id).await
    }

    /// Legacy handshake: `initialize` then `notifications/initialized`.
    pub async fn initialize(&self, params: Value) -> Result<(UpstreamSession, Value), UpstreamError> {
        let msg = json!({"jsonrpc": "2.0", "id": "gw-init", "method": "initialize", "params": params});
        let resp = self.post_legacy(&msg, None).await?;
        let sid = resp.headers.get(HEADER_SESSION).map(str::to_string);
        let reply = read_response(resp, &json!("gw-init")).await?;
        let result = reply.get("result").cloned().ok_or_else(|| {
            UpstreamError::Garbage(format!(
                "initialize failed: {}",
                reply.get("error").cloned().unwrap_or_default()
            ))
        })?;
        let pv = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| UpstreamError::Garbage("initialize result has no protocolVersion".into()))?;
        let session = UpstreamSession {
            id: sid,
            protocol_version: pv.to_string(),
        };
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let ack = self.post_legacy(&note, Some(&session)).await?;
        if !(200..300).contains(&ack.status) {
            return Err(UpstreamError::Status(ack.status));
        }
        Ok((session, result))
    }

    /// Detects the upstream's era: a modern `server/discover` first, `initialize` on refusal;
    /// both declare the capabilities of `ClientContext::catalog`.
    pub async fn detect(&self) -> Result<Detected, UpstreamError> {
        let probe = modern_request(
            json!("gw-discover"),
            "server/discover",
            json!({}),
            &ClientContext::catalog(),
        );
        let resp = self.post_modern(&probe).await?;
        if resp.status == 200 {
            if let Ok(reply) = read_response(resp, &json!("gw-discover")).await {
                let result = reply.get("result").cloned().unwrap_or(Value::Null);
                let modern = result
                    .get("supportedVersions")
                    .and_then(Value::as_array)
                    .is_some_and(|v| v.iter().any(|s| s == version::MODERN));
                if modern {
                    // Dated revisions order lexically: the newest legacy one it also lists.
                    let listed = result
                        .get("supportedVersions")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .filter(|v| version::is_legacy_version(v))
                        .max()
                        .map(str::to_string);
                    let legacy_version = match listed {
                        Some(v) => Some(v),
                        None => self.accepts_legacy().await,
                    };
                    let server_info = result
                        .pointer(&format!("/_meta/{}", meta::SERVER_INFO.replace('/', "~1")))
                        .or_else(|| result.get("serverInfo"))
                        .cloned()
                        .unwrap_or(json!({}));
                    return Ok(Detected {
                        era: Era::Modern,
                        protocol_version: version::MODERN.to_string(),
                        capabilities: result.get("capabilities").cloned().unwrap_or(json!({})),
                        server_info,
                        instructions: result.get("instructions").and_then(Value::as_str).map(str::to_string),
                        legacy_version,
                        session: None,
                    });
                }
            }
        } else if resp.status >= 500 {
            return Err(UpstreamError::Status(resp.status));
        }
        let (session, result) = self
            .initialize(legacy_init_params(None, &ClientContext::catalog()))
            .await?;
        Ok(Detected {
            era: Era::Legacy,
            protocol_version: session.protocol_version.clone(),
            capabilities: result.get("capabilities").cloned().unwrap_or(json!({})),
            server_info: result.get("serverInfo").cloned().unwrap_or(json!({})),
            instructions: result.get("instructions").and_then(Value::as_str).map(str::to_string),
            legacy_version: None,
            session: Some(session),
        })
    }
}

/// Whether an upstream refused a request because it no longer knows the session: 404 as the
/// spec says, or — as servers built on the TypeScript SDK 1.x examples answer — a 400 whose
/// error names the session.
fn session_gone(resp: &HttpResponse) -> bool {
    match resp.status {
        404 => true,
        400 => resp
            .bytes()
            .map(|b| String::from_utf8_lossy(b).to_ascii_lowercase())
            .is_some_and(|t| t.contains("session")),
        _ => false,
    }
}

/// `initialize` params for an upstream, in the client's name.
pub fn legacy_init_params(version: Option<&str>, client: &ClientContext) -> Value {
    json!({
        "protocolVersion": version.unwrap_or(version::LATEST_LEGACY),
        "capabilities": client.capabilities,
        "clientInfo": client.client_info,
    })
}

/// A modern request with the `_meta` every 2026-07-28 request carries.
pub fn modern_request(id: RequestId, method: &str, mut params: Value, client: &ClientContext) -> Value {
    let meta = params
        .as_object_mut()
        .map(|p| p.entry("_meta").or_insert_with(|| json!({})));
    if let Some(Value::Object(m)) = meta {
        m.insert(meta::PROTOCOL_VERSION.into(), json!(version::MODERN));
        m.insert(meta::CLIENT_CAPABILITIES.into(), client.capabilities.clone());
        m.insert(meta::CLIENT_INFO.into(), client.client_info.clone());
    }
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// Reads the single JSON-RPC response to `id` from a JSON body or an SSE stream.
/// Notifications met on the way are skipped (callers that need them stream instead).
pub async fn read_response(resp: HttpResponse, id: &RequestId) -> Result<Value, UpstreamError> {
    if !(200..300).contains(&resp.status) {
        // A JSON-RPC error body on a 4xx is still an answer worth relaying.
        if let Some(v) = body_json(&resp).filter(|v| jsonrpc::is_response_to(v, id) || v.get("error").is_some()) {
            if resp.status < 500 {
                return Ok(with_id(v, id));
            }
        }
        return Err(UpstreamError::Status(resp.status));
    }
    let is_sse = resp
        .headers
        .get("content-type")
        .is_some_and(|c| c.starts_with("text/event-stream"));
    match resp.body {
        Body::Stream(mut stream) if is_sse => {
            let mut parser = sse::Parser::new();
            let mut total = 0usize;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(UpstreamError::from_stream)?;
                total += chunk.len();
                if total > MAX_UPSTREAM_BODY_BYTES {
                    return Err(UpstreamError::Garbage("response too large".into()));
                }
                for ev in parser.push(&chunk).map_err(UpstreamError::Garbage)? {
                    if let Some(v) = response_in_event(&ev, id) {
                        return Ok(v);
                    }
                }
            }
            if let Some(v) = parser.finish().and_then(|ev| response_in_event(&ev, id)) {
                return Ok(v);
            }
            Err(UpstreamError::Garbage("stream ended without a response".into()))
        }
        body => {
            let bytes = collect(body).await?;
            if is_sse {
                let mut parser = sse::Parser::new();
                let mut events = parser.push(&bytes).map_err(UpstreamError::Garbage)?;
                events.extend(parser.finish());
                return events
                    .iter()
                    .find_map(|ev| response_in_event(ev, id))
                    .ok_or_else(|| UpstreamError::Garbage("stream ended without a response".into()));
            }
            let v: Value =
                serde_json::from_slice(&bytes).map_err(|_| UpstreamError::Garbage("response is not JSON".into()))?;
            if jsonrpc::is_response_to(&v, id) {
                Ok(v)
            } else {
                Err(UpstreamError::Garbage(
                    "response is not a JSON-RPC response to the request".into(),
                ))
            }
        }
    }
}

fn with_id(mut v: Value, id: &RequestId) -> Value {
    v["id"] = id.clone();
    v
}

fn response_in_event(ev: &sse::Event, id: &RequestId) -> Option<Value> {
    let v: Value = serde_json::from_str(&ev.data).ok()?;
    jsonrpc::is_response_to(&v, id).then_some(v)
}

fn body_json(resp: &HttpResponse) -> Option<Value> {
    resp.bytes().and_then(|b| serde_json::from_slice(b).ok())
}

/// Reads a whole body, bounded by `MAX_UPSTREAM_BODY_BYTES`.
pub async fn collect(body: Body) -> Result<Vec<u8>, UpstreamError> {
    match body {
        Body::Empty => Ok(Vec::new()),
        Body::Bytes(b) if b.len() > MAX_UPSTREAM_BODY_BYTES => Err(UpstreamError::Garbage("response too large".into())),
        Body::Bytes(b) => Ok(b),
        Body::Stream(mut s) => {
            let mut out = Vec::new();
            while let Some(chunk) = s.next().await {
                out.extend(chunk.map_err(UpstreamError::from_stream)?);
                if out.len() > MAX_UPSTREAM_BODY_BYTES {
                    return Err(UpstreamError::Garbage("response too large".into()));
                }
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod retry_tests {
    use super::*;

    #[test]
    fn only_repeatable_exchanges_are_sent_again() {
        let msg = |m: &str| json!({"jsonrpc": "2.0", "id": 1, "method": m, "params": {}});
        for m in [
            "tools/list",
            "resources/read",
            "prompts/get",
            "initialize",
            "server/discover",
        ] {
            assert!(repeatable(Method::Post, Some(&msg(m)), false), "{m}");
        }
        assert!(!repeatable(Method::Post, Some(&msg("tools/call")), false));
        assert!(
            repeatable(Method::Post, Some(&msg("tools/call")), true),
            "a readOnlyHint tool"
        );
        assert!(!repeatable(Method::Post, Some(&msg("resources/subscribe")), false));
        assert!(
            !repeatable(Method::Post, Some(&msg("TOOLS/LIST")), false),
            "exact names only"
        );
        let response = json!({"jsonrpc": "2.0", "id": "s1", "result": {}});
        assert!(!repeatable(Method::Post, Some(&response), false), "never answer twice");
        assert!(repeatable(Method::Get, None, false));
    }

    #[test]
    fn stream_errors_keep_their_cause() {
        let t = UpstreamError::from_stream(crate::outbound::deadline::timeout_text(1500));
        assert_eq!(t, UpstreamError::Timeout(1500));
        let lost = UpstreamError::from_stream("Error: Network connection lost.".into());
        assert!(matches!(lost, UpstreamError::ConnectionLost(_)));
        assert!(matches!(
            UpstreamError::from_stream("reset".into()),
            UpstreamError::Unreachable(_)
        ));
    }
}
