//! The record step of the request pipeline: the gateway's side of a request's event
//! (`observe::Probe`). What is known on arrival starts it (`start`); authentication adds who
//! (`principal`), the parsed message what (`message`), routing the server (`routed`); the
//! outcome comes from where it is decided (a refusal, the upstream's answer in `forward`, a
//! `GatewayError`); `finish` completes it with the response — at once for a complete answer,
//! when the stream ends or its client drops it for a streamed one.
use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_util::{Stream, StreamExt};
use serde_json::Value;

use crate::http::{Body, ByteStream, Headers, HttpRequest, HttpResponse};
use crate::mcp::error::codes;
use crate::mcp::jsonrpc::Message;
use crate::mcp::transport;
use crate::mcp::version::{meta, Era};
use crate::observe::{trace::new_span_id, AuthKind, CaptureMode, Event, Outcome, Probe, TraceContext};
use crate::policy::Principal;
use crate::routes::{Target, View};
use crate::store::ServerRecord;

use super::upstream::{Upstream, UpstreamError};
use super::{pipeline, relay::Transform, GatewayError, Services};

/// Header the platform sets to the client's IP address (Cloudflare).
pub const CLIENT_ADDRESS_HEADER: &str = "cf-connecting-ip";

/// Starts the event of an MCP request that just arrived at the Worker.
pub fn start(svc: &Services<'_>, req: &HttpRequest, target: &Target) -> Rc<Probe> {
    let h = &req.headers;
    let (endpoint, server, virtual_server) = match target {
        Target::Server(slug) => ("server", Some(slug.clone()), None),
        Target::View(View::All) => ("all", None, None),
        Target::View(View::Virtual(slug)) => ("virtual", None, Some(slug.clone())),
    };
    let base = Event {
        trace: Some(TraceContext::join(
            h.get("traceparent"),
            h.get("tracestate"),
            h.get("baggage"),
        )),
        client_address: h.get(CLIENT_ADDRESS_HEADER).map(str::to_string),
        session_id: h.get(transport::HEADER_SESSION).map(str::to_string),
        protocol_version: h.get(transport::HEADER_PROTOCOL_VERSION).map(str::to_string),
        endpoint: endpoint.into(),
        server,
        virtual_server,
        http_method: req.method.as_str().to_string(),
        bytes_in: req.body.len() as u64,
        ..Event::default()
    };
    Probe::start(svc.events.clone(), svc.clock(), base)
}

/// How the principal authenticated (from the key id the authenticator gives it).
pub fn auth_kind(p: &Principal) -> AuthKind {
    if p.key_id.starts_with("oauth:") {
        AuthKind::Oauth
    } else if p.key_id.starts_with("oidc:") {
        AuthKind::Oidc
    } else {
        AuthKind::ApiKey
    }
}

/// Who is calling.
pub fn principal(probe: &Probe, p: &Principal) {
    let kind = auth_kind(p);
    probe.update(|e| {
        e.org_id = p.identity.org_id.clone();
        e.workspace_ids = p.identity.workspace_ids.clone();
        e.team_ids = p.identity.team_ids.clone();
        e.principal_id = p.identity.principal_id.clone();
        e.principal_kind = p.identity.kind.clone();
        // Only API keys have an id of their own; tokens are named by their user.
        e.key_id = if kind == AuthKind::ApiKey {
            p.key_id.clone()
        } else {
            String::new()
        };
        e.auth_kind = Some(kind);
    });
}

/// What the message asks: method, id, the tool, prompt or resource it names, its arguments as
/// the capture mode allows, the client's `_meta` facts (2026-07-28: client info, protocol
/// version, trace context when no header carried it) and, for `initialize`, the client info.
pub fn message(probe: &Probe, headers: &Headers, msg: &Message, capture: CaptureMode) {
    let params = msg.params();
    let str_at = |k: &str| {
        params
            .and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let meta_of = params.and_then(|p| p.get("_meta"));
    let meta_str = |k: &str| meta_of.and_then(|m| m.get(k)).and_then(Value::as_str);
    probe.update(|e| {
        e.method = msg.method().map(str::to_string);
        e.jsonrpc_id = msg.id().map(|id| match id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        match msg.method() {
            Some("tools/call") => e.tool = str_at("name"),
            Some("prompts/get") => e.prompt = str_at("name"),
            Some("resources/read" | "resources/subscribe" | "resources/unsubscribe") => e.resource = str_at("uri"),
            _ => {}
        }
        e.capture = capture;
        e.arguments = capture.capture(params.and_then(|p| p.get("arguments")));
        let info = match msg.method() {
            Some("initialize") => params.and_then(|p| p.get("clientInfo")),
            _ => meta_of.and_then(|m| m.get(meta::CLIENT_INFO)),
        };
        client_info(e, info);
        if let Some(v) = meta_str(meta::PROTOCOL_VERSION) {
            e.protocol_version = Some(v.to_string());
        }
        if msg.method() == Some("initialize") {
            e.protocol_version = str_at("protocolVersion");
        }
        // The header wins; `_meta` carries the context when the transport could not.
        if headers.get("traceparent").is_none() && meta_str("traceparent").is_some() {
            e.trace = Some(TraceContext::join(
                meta_str("traceparent"),
                meta_str("tracestate"),
                meta_str("baggage"),
            ));
        }
    });
}

/// The client's `clientInfo` (`name`, `version`), as far as it is given.
pub fn client_info(e: &mut Event, info: Option<&Value>) {
    let Some(info) = info else { return };
    let s = |k: &str| info.get(k).and_then(Value::as_str).map(str::to_string);
    e.client_name = s("name");
    e.client_version = s("version");
}

/// The era the request was served in.
pub fn era(probe: &Probe, era: Era) {
    probe.update(|e| e.era = Some(era.as_str().to_string()));
}

/// The server an aggregated request was routed to, and the original name of what it names
/// (`/mcp` and virtual servers expose them under other names). The arguments are captured
/// again if the server's own mode differs from the one applied on arrival.
pub fn routed(probe: &Probe, server: &ServerRecord, original: &str, org_capture: Option<CaptureMode>, msg: &Message) {
    let mode = CaptureMode::resolve(server.capture, org_capture);
    probe.update(|e| {
        e.server = Some(server.slug.clone());
        if e.tool.is_some() {
            e.tool = Some(original.to_string());
        } else if e.prompt.is_some() {
            e.prompt = Some(original.to_string());
        } else if e.resource.is_some() {
            e.resource = Some(original.to_string());
        }
        if mode != e.capture {
            e.capture = mode;
            e.arguments = mode.capture(msg.params().and_then(|p| p.get("arguments")));
        }
    });
}

/// The outcome a gateway error answers with: refusals (authentication, an unknown or denied
/// server) are `denied`, upstream failures `timeout` or `upstream_error`, the rest `rpc_error`.
pub fn outcome_of(e: &GatewayError) -> Outcome {
    use crate::policy::AuthError;
    match e {
        GatewayError::Auth(AuthError::Store(_) | AuthError::Provider(_)) | GatewayError::Store(_) => {
            Outcome::RpcError {
                code: codes::INTERNAL_ERROR,
            }
        }
        GatewayError::Auth(_) => Outcome::Denied {
            code: codes::UNAUTHORIZED,
        },
        GatewayError::UnknownServer => Outcome::Denied {
            code: codes::INVALID_PARAMS,
        },
        GatewayError::Protocol(r) => Outcome::RpcError { code: r.code },
        GatewayError::SessionNotFound => Outcome::RpcError {
            code: codes::SESSION_NOT_FOUND,
        },
        GatewayError::NeedsConnect { .. } => Outcome::RpcError {
            code: codes::INTERNAL_ERROR,
        },
        GatewayError::Upstream {
            cause: crate::outbound::UpstreamError::Timeout(_),
            ..
        } => Outcome::Timeout,
        GatewayError::Upstream { cause, .. } => Outcome::UpstreamError {
            reason: super::error::upstream_reason(cause).to_string(),
        },
    }
}

/// Notes the outcome of a gateway error (the first outcome reported wins).
pub fn failed(svc: &Services<'_>, e: &GatewayError) {
    svc.note(|p| p.outcome(outcome_of(e)));
}

/// A refusal decided by the gateway's access rules (an unknown or withheld tool, prompt or
/// resource): noted as `denied`, then answered as the error it is.
pub fn denied(svc: &Services<'_>, e: crate::mcp::error::RpcError) -> GatewayError {
    svc.note(|p| p.outcome(Outcome::Denied { code: e.code }));
    e.into()
}

/// The outcome an answer to the client carries: a JSON-RPC error, a tool's error result, or a
/// result.
pub fn answer_outcome(m: &Value) -> Outcome {
    if let Some(code) = m
        .get("error")
        .map(|e| e.get("code").and_then(Value::as_i64).unwrap_or(0))
    {
        return Outcome::RpcError { code };
    }
    if m.pointer("/result/isError") == Some(&Value::Bool(true)) {
        return Outcome::ToolError;
    }
    Outcome::Ok
}

/// Completes the event with the response: a complete body is counted and the event emitted now;
/// a stream is counted as it is relayed and the event emitted when it ends (or, `cancelled` if
/// nothing decided otherwise, when its client drops it).
pub fn finish(probe: Rc<Probe>, mut resp: HttpResponse) -> HttpResponse {
    match std::mem::replace(&mut resp.body, Body::Empty) {
        Body::Stream(s) => {
            // A notification stream (a GET stream, `subscriptions/listen`) has no answer: it is
            // served as soon as it opens.
            let listen = probe.read(|e| e.method.is_none() || e.method.as_deref() == Some("subscriptions/listen"));
            if listen && resp.status == 200 {
                probe.outcome(Outcome::Ok);
            }
            resp.body = Body::Stream(Counted { inner: s, probe }.boxed_local());
        }
        body => {
            let bytes: &[u8] = match &body {
                Body::Bytes(b) => b,
                _ => &[],
            };
            if !probe.has_outcome() {
                probe.outcome(response_outcome(resp.status, bytes));
            }
            probe.update(|e| e.bytes_out = bytes.len() as u64);
            probe.finish();
            resp.body = body;
        }
    }
    resp
}

/// The outcome of a complete response no one has described (answers the gateway built itself).
fn response_outcome(status: u16, body: &[u8]) -> Outcome {
    #[derive(serde::Deserialize)]
    struct Head {
        error: Option<ErrorHead>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorHead {
        code: Option<i64>,
    }
    match serde_json::from_slice::<Head>(body) {
        Ok(Head { error: Some(e) }) => Outcome::RpcError {
            code: e.code.unwrap_or(0),
        },
        _ if status < 400 => Outcome::Ok,
        _ if status < 500 => Outcome::RpcError {
            code: codes::INVALID_REQUEST,
        },
        _ => Outcome::RpcError {
            code: codes::INTERNAL_ERROR,
        },
    }
}

/// A streamed answer on its way to the client: counts the bytes relayed, and completes the
/// event when the stream ends; dropping it (the client left) drops the probe with it.
struct Counted {
    inner: ByteStream,
    probe: Rc<Probe>,
}

impl Stream for Counted {
    type Item = Result<Vec<u8>, String>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.inner.poll_next_unpin(cx);
        match &next {
            Poll::Ready(Some(Ok(chunk))) => {
                let n = chunk.len() as u64;
                self.probe.update(|e| e.bytes_out += n);
            }
            Poll::Ready(Some(Err(e))) => self.probe.outcome(Outcome::UpstreamError { reason: e.clone() }),
            Poll::Ready(None) => {
                self.probe.outcome(Outcome::UpstreamError {
                    reason: "the stream ended without an answer".into(),
                });
                self.probe.finish();
            }
            Poll::Pending => {}
        }
        next
    }
}

/// One upstream exchange of the request, as its event records it (a CLIENT span): opened when
/// the message leaves, closed when the answer arrives (or the exchange fails); the answer's
/// outcome becomes the request's when it is the client's answer (not a fan-out leg's).
#[derive(Clone)]
pub struct Exchanged {
    probe: Option<Rc<Probe>>,
    index: Option<usize>,
    slug: Rc<str>,
    answers_client: bool,
    status: Rc<Cell<Option<u16>>>,
}

impl Exchanged {
    /// Opens the exchange; returns it with its span id (`None`: no trace to join).
    pub fn open(up: &Upstream<'_>) -> (Self, Option<String>) {
        let (index, span) = match &up.probe {
            Some(p) => {
                let (host, port) = address(up.url);
                let (i, span) = p.upstream_start(up.slug, &host, port);
                (Some(i), Some(span))
            }
            None => (None, up.trace.as_ref().map(|_| new_span_id())),
        };
        let me = Self {
            probe: up.probe.clone(),
            index,
            slug: up.slug.into(),
            answers_client: up.answers_client,
            status: Rc::new(Cell::new(None)),
        };
        (me, span)
    }

    /// The upstream's response headers arrived.
    pub fn answered(&self, resp: &HttpResponse) {
        self.status.set(Some(resp.status));
    }

    /// The exchange ended (`error`: why it failed).
    pub fn done(&self, status: Option<u16>, error: Option<String>) {
        if let (Some(p), Some(i)) = (&self.probe, self.index) {
            p.upstream_done(i, status.or(self.status.get()), error);
        }
    }

    /// The exchange failed before an answer reached the client.
    pub fn failed(&self, e: &UpstreamError) {
        let status = match e {
            UpstreamError::Status(s) => Some(*s),
            _ => None,
        };
        self.done(status, Some(super::error::upstream_reason(e).to_string()));
    }

    /// Wraps the transform of the messages relayed to the client: the answer closes the
    /// exchange and, when it is the client's, gives the request its outcome.
    pub fn wrap(&self, mut inner: Transform) -> Transform {
        if self.probe.is_none() {
            return inner;
        }
        let me = self.clone();
        Box::new(move |m| {
            let m = inner(m)?;
            if pipeline::is_response(&m) {
                // The relay answers for an upstream that failed mid-stream (a deadline, a
                // broken stream) with the gateway's error naming it: that is how it ended.
                let failure = upstream_failure(&m, &me.slug);
                me.done(None, failure.as_ref().map(|(reason, _)| reason.clone()));
                if me.answers_client {
                    if let Some(p) = &me.probe {
                        p.outcome(failure.map_or_else(|| answer_outcome(&m), |(_, o)| o));
                    }
                }
            }
            Some(m)
        })
    }
}

/// Opens an exchange of the request on `up` for `msg`: the exchange as the event records it, the
/// upstream handle and the message carrying its trace context — the exchange's own span as the
/// parent, in the `traceparent` header and in `params._meta` (so the upstream's spans join the
/// agent's trace). The message is `None` when it is sent as it was (no trace, or no place for it).
pub fn exchange<'a>(up: &Upstream<'a>, msg: &Value) -> (Upstream<'a>, Option<Value>, Exchanged) {
    let (exchange, span) = Exchanged::open(up);
    let mut traced = up.clone();
    let mut wire = None;
    if let (Some(trace), Some(span)) = (up.trace.clone(), span) {
        wire = with_trace_meta(msg, &trace, &span);
        traced.set_trace(trace, &span);
    }
    (traced, wire, exchange)
}

/// The failure of upstream `slug` an answer reports, if the gateway wrote it (its error's
/// `data` names the upstream and the reason, see `error::to_rpc`): the reason and the outcome.
fn upstream_failure(m: &Value, slug: &str) -> Option<(String, Outcome)> {
    let data = m.get("error")?.get("data")?;
    if data.get("upstream").and_then(Value::as_str) != Some(slug) {
        return None;
    }
    let reason = data.get("reason").and_then(Value::as_str)?.to_string();
    let outcome = match reason.as_str() {
        "timeout" => Outcome::Timeout,
        "needs_connect" => return None,
        _ => Outcome::UpstreamError { reason: reason.clone() },
    };
    Some((reason, outcome))
}

/// `host` and port of an upstream URL (never its path or query, which may carry secrets).
fn address(url: &str) -> (String, u16) {
    match url::Url::parse(url) {
        Ok(u) => (
            u.host_str().unwrap_or("").to_string(),
            u.port_or_known_default().unwrap_or(0),
        ),
        Err(_) => (String::new(), 0),
    }
}

/// A copy of a request or notification carrying the trace context in `params._meta`
/// (`traceparent` naming `span` as the parent, `tracestate`, `baggage`); `None` for a message
/// that has no place for it (a response, or params that are not an object).
pub fn with_trace_meta(msg: &Value, trace: &TraceContext, span: &str) -> Option<Value> {
    msg.get("method")?;
    let mut m = msg.clone();
    let obj = m.as_object_mut()?;
    let params = obj.entry("params").or_insert_with(|| Value::Object(Default::default()));
    let meta = params
        .as_object_mut()?
        .entry("_meta")
        .or_insert_with(|| Value::Object(Default::default()))
        .as_object_mut()?;
    meta.insert("traceparent".into(), Value::String(trace.traceparent_for(span)));
    for (k, v) in [("tracestate", &trace.tracestate), ("baggage", &trace.baggage)] {
        match v {
            Some(v) => meta.insert(k.into(), Value::String(v.clone())),
            None => meta.remove(k),
        };
    }
    Some(m)
}
