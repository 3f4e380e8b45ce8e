//! Legacy-era (2025-11-25 and earlier) sessions: `initialize` mints one, later requests carry
//! its `Mcp-Session-Id`. A session lives in its own Durable Object; this is the logic it runs.
//! It holds the caller's identity, the negotiated version, the upstream session it opened and
//! the numbering of its resumable event log.
use std::rc::Rc;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::http::{HttpRequest, HttpResponse, Method};
use crate::mcp::error::RpcError;
use crate::mcp::jsonrpc::{self, Message};
use crate::mcp::sse;
use crate::mcp::transport;
use crate::mcp::version::{self, Era};

use super::endpoint::{SessionCtx, FORWARDED_METHODS};
use super::forward::{forward, Exchange};
use super::relay::{self, EventLog, RelayOptions};
use super::translate;
use super::upstream::{legacy_init_params, ClientContext, Upstream, UpstreamError, UpstreamSession};
use super::{traceparent, GatewayError, Services};

/// A session idle this long is deleted (the Durable Object's alarm).
pub const SESSION_IDLE_TTL_MS: u64 = 24 * 60 * 60 * 1000;
/// Events kept per session for `Last-Event-ID` resumption; older ones are pruned.
pub const MAX_LOGGED_EVENTS: u64 = 1000;

/// Durable state of one session (serialized into its Durable Object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    pub id: String,
    /// The API key that created the session; no other key may use it.
    pub key_id: String,
    pub server_slug: String,
    /// The version negotiated with the client.
    pub protocol_version: String,
    pub client: ClientContext,
    pub upstream_era: Era,
    /// The upstream's own session (legacy upstreams).
    pub upstream: Option<UpstreamSession>,
    /// `logging/setLevel`, replayed as `_meta` to modern upstreams.
    pub log_level: Option<String>,
    pub created_at: String,
}

/// The session's event log, readable for resumption. Event ids are `{stream}-{seq}`.
pub trait ReplayLog: EventLog {
    /// A fresh stream number (allocated atomically, so concurrent requests never share one).
    fn next_stream(&self) -> u64;
    /// Events of `stream` after `seq`, oldest first.
    fn replay(&self, stream: u64, after_seq: u64) -> Vec<(u64, String)>;
}

/// Handles `initialize`: opens the upstream side and returns the new session's state.
pub async fn initialize(
    svc: &Services<'_>,
    ctx: &SessionCtx,
    session_id: &str,
    req: &HttpRequest,
) -> (Option<SessionState>, HttpResponse) {
    let msg = match jsonrpc::parse_message(&req.body) {
        Ok(m) => m,
        Err(e) => return (None, crate::error::mcp_error_response(None, &e.into())),
    };
    let id = msg.id().cloned();
    match open(svc, ctx, session_id, req, &msg).await {
        Ok((state, result)) => {
            let body = jsonrpc::result(id.as_ref().unwrap_or(&Value::Null), result);
            let resp = HttpResponse::json(200, &body).with_header(transport::HEADER_SESSION, session_id);
            (Some(state), resp)
        }
        Err(e) => (None, crate::error::mcp_error_response(id.as_ref(), &e)),
    }
}

async fn open(
    svc: &Services<'_>,
    ctx: &SessionCtx,
    session_id: &str,
    req: &HttpRequest,
    msg: &Message,
) -> Result<(SessionState, Value), GatewayError> {
    let permit = ctx.permit()?;
    let server = permit.server();
    let params = msg.params().cloned().unwrap_or(json!({}));
    let requested = params.get("protocolVersion").and_then(Value::as_str);
    let client = ClientContext {
        capabilities: params.get("capabilities").cloned().unwrap_or(json!({})),
        client_info: params
            .get("clientInfo")
            .cloned()
            .unwrap_or(json!({"name": "unknown", "version": "0"})),
    };
    let up = svc.upstream(server, traceparent(&req.headers));
    let era = server.era.unwrap_or(Era::Legacy);
    let (upstream, result, negotiated) = match era {
        Era::Legacy => {
            // The upstream negotiates with the client's own parameters: a faithful proxy.
            let init = legacy_init_params(Some(version::negotiate_legacy(requested)), &client);
            let (us, result) = up
                .initialize(init)
                .await
                .map_err(|e| GatewayError::upstream(&server.slug, e))?;
            let negotiated = version::negotiate_legacy(Some(&us.protocol_version)).to_string();
            let mut result = result;
            result["protocolVersion"] = json!(negotiated);
            (Some(us), result, negotiated)
        }
        Era::Modern => {
            let negotiated = version::negotiate_legacy(requested).to_string();
            let result = translate::initialize_result(
                &negotiated,
                server.capabilities.as_ref().unwrap_or(&json!({})),
                server.server_info.as_ref().unwrap_or(&json!({})),
                server.instructions.as_deref(),
            );
            (None, result, negotiated)
        }
    };
    let state = SessionState {
        id: session_id.to_string(),
        key_id: permit.principal().key_id.clone(),
        server_slug: server.slug.clone(),
        protocol_version: negotiated,
        client,
        upstream_era: era,
        upstream,
        log_level: None,
        created_at: svc.now(),
    };
    Ok((state, result))
}

/// What the Durable Object does with its state after a request.
#[derive(Debug, PartialEq)]
pub enum After {
    Keep,
    /// The session ended (DELETE): wipe it.
    End,
}

/// Handles a request on an existing session (POST, GET or DELETE).
pub async fn handle(
    svc: &Services<'_>,
    ctx: &SessionCtx,
    state: &mut SessionState,
    req: &HttpRequest,
    log: Rc<dyn ReplayLog>,
) -> (HttpResponse, After) {
    // A session is usable only by the key that created it; to anyone else it does not exist.
    if ctx.principal.key_id != state.key_id || ctx.server.slug != state.server_slug {
        return (
            crate::error::mcp_error_response(None, &GatewayError::SessionNotFound),
            After::Keep,
        );
    }
    let permit = match ctx.permit() {
        Ok(p) => p,
        Err(e) => return (crate::error::mcp_error_response(None, &e), After::Keep),
    };
    let up = svc.upstream(permit.server(), traceparent(&req.headers));
    match req.method {
        Method::Delete => {
            if let Some(us) = &state.upstream {
                up.close(us).await;
            }
            (HttpResponse::new(200), After::End)
        }
        Method::Get => (get_stream(&up, state, req, log).await, After::Keep),
        _ => {
            let msg = match jsonrpc::parse_message(&req.body) {
                Ok(m) => m,
                Err(e) => return (crate::error::mcp_error_response(None, &e.into()), After::Keep),
            };
            let id = msg.id().cloned();
            let resp = match post(&up, state, req, &msg, log).await {
                Ok(r) => r,
                Err(e) => crate::error::mcp_error_response(id.as_ref(), &e),
            };
            (resp, After::Keep)
        }
    }
}

async fn post(
    up: &Upstream<'_>,
    state: &mut SessionState,
    req: &HttpRequest,
    msg: &Message,
    log: Rc<dyn ReplayLog>,
) -> Result<HttpResponse, GatewayError> {
    transport::check_legacy_version(&req.headers, &state.protocol_version)?;
    let method = msg.method().unwrap_or("").to_string();
    match (&msg, method.as_str()) {
        (Message::Request { id, .. }, "ping") => return Ok(HttpResponse::json(200, &jsonrpc::result(id, json!({})))),
        (Message::Request { .. }, "initialize") => {
            return Err(RpcError::invalid_request("session already initialized").into())
        }
        // The gateway completed the upstream handshake itself at `initialize`.
        (Message::Notification { .. }, "notifications/initialized") => return Ok(HttpResponse::new(202)),
        _ => {}
    }
    match state.upstream_era {
        Era::Legacy => post_legacy_upstream(up, state, msg, &method, log).await,
        Era::Modern => post_modern_upstream(up, state, msg, &method, log).await,
    }
}

/// Same era on both sides: the message goes through unchanged (ids included).
async fn post_legacy_upstream(
    up: &Upstream<'_>,
    state: &mut SessionState,
    msg: &Message,
    method: &str,
    log: Rc<dyn ReplayLog>,
) -> Result<HttpResponse, GatewayError> {
    let wire = msg.to_value();
    for attempt in 0..2 {
        let ex = Exchange {
            msg: &wire,
            id: request_id(msg),
            method,
            client_era: Era::Legacy,
            upstream_era: Era::Legacy,
            log: Some((log.next_stream(), log.clone() as Rc<dyn EventLog>)),
        };
        match forward(up, state.upstream.as_ref(), ex).await {
            Ok(r) => return Ok(r),
            // The upstream restarted or dropped our session: open a new one transparently and
            // resend once (the upstream refused the request unprocessed).
            Err(UpstreamError::SessionExpired) if attempt == 0 => {
                let init = legacy_init_params(Some(&state.protocol_version), &state.client);
                let (us, _) = up
                    .initialize(init)
                    .await
                    .map_err(|e| GatewayError::upstream(up.slug, e))?;
                state.upstream = Some(us);
            }
            Err(e) => return Err(GatewayError::upstream(up.slug, e)),
        }
    }
    Err(GatewayError::upstream(up.slug, UpstreamError::SessionExpired))
}

/// Legacy client, modern upstream: the session's knowledge travels in each request's `_meta`.
async fn post_modern_upstream(
    up: &Upstream<'_>,
    state: &mut SessionState,
    msg: &Message,
    method: &str,
    log: Rc<dyn ReplayLog>,
) -> Result<HttpResponse, GatewayError> {
    let Message::Request { id, params, .. } = msg else {
        // Client notifications (cancelled, roots changed) and responses have no modern-era
        // counterpart over HTTP; they are accepted and dropped.
        return Ok(HttpResponse::new(202));
    };
    if method == "logging/setLevel" {
        state.log_level = params
            .as_ref()
            .and_then(|p| p.get("level"))
            .and_then(Value::as_str)
            .map(str::to_string);
        return Ok(HttpResponse::json(200, &jsonrpc::result(id, json!({}))));
    }
    if !FORWARDED_METHODS.contains(&method) {
        let mut e = RpcError::method_not_found(method);
        e.http_status = 200;
        return Err(e.into());
    }
    let wire = translate::request_to_modern(msg.to_value(), &state.client, state.log_level.as_deref());
    let ex = Exchange {
        msg: &wire,
        id: Some(id.clone()),
        method,
        client_era: Era::Legacy,
        upstream_era: Era::Modern,
        log: Some((log.next_stream(), log as Rc<dyn EventLog>)),
    };
    forward(up, None, ex)
        .await
        .map_err(|e| GatewayError::upstream(up.slug, e))
}

fn request_id(msg: &Message) -> Option<Value> {
    match msg {
        Message::Request { id, .. } => Some(id.clone()),
        _ => None,
    }
}

/// GET: the server→client stream, resumed from the event log when `Last-Event-ID` is given.
async fn get_stream(
    up: &Upstream<'_>,
    state: &SessionState,
    req: &HttpRequest,
    log: Rc<dyn ReplayLog>,
) -> HttpResponse {
    if let Err(e) = transport::check_get_accept(&req.headers) {
        return crate::error::mcp_error_response(None, &e.into());
    }
    let replayed = req
        .headers
        .get(transport::HEADER_LAST_EVENT_ID)
        .and_then(parse_event_id)
        .map(|(stream, seq)| {
            log.replay(stream, seq)
                .into_iter()
                .map(|(n, data)| {
                    sse::Event {
                        id: Some(format!("{stream}-{n}")),
                        ..sse::Event::message(data)
                    }
                    .encode()
                })
                .collect::<String>()
        });
    let live = match (state.upstream_era, &state.upstream) {
        (Era::Legacy, Some(us)) => match up.get_stream(us, None).await {
            Ok(r) if r.status == 200 => match r.body {
                crate::http::Body::Stream(s) => Some(s),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    };
    let live = live.map(|s| {
        let stream_no = log.next_stream();
        relay::relay(
            s,
            RelayOptions {
                awaited: None,
                upstream_slug: up.slug.to_string(),
                transform: Box::new(Some),
                log: Some((stream_no, log as Rc<dyn EventLog>)),
            },
        )
    });
    match (replayed, live) {
        (None, None) => HttpResponse::new(405).with_header("allow", "POST, DELETE"),
        (r, l) => {
            let head = futures_util::stream::iter(r.map(|s| Ok(s.into_bytes())));
            let body = match l {
                Some(l) => head.chain(l).boxed_local(),
                None => head.boxed_local(),
            };
            HttpResponse::sse(body)
        }
    }
}

/// `"{stream}-{seq}"` → numbers.
pub fn parse_event_id(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}
