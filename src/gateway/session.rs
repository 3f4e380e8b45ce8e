//! Legacy-era (2025-11-25 and earlier) sessions: `initialize` mints one, later requests carry
//! its `Mcp-Session-Id`. A session lives in its own Durable Object; this is the logic it runs.
//! It holds the caller's identity, the negotiated version, the upstream sessions it opened (one
//! per server, lazily on aggregated views) and the numbering of its resumable event log.
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::http::{Body, ByteStream, HttpRequest, HttpResponse, Method};
use crate::mcp::error::RpcError;
use crate::mcp::jsonrpc::{self, Message};
use crate::mcp::sse;
use crate::mcp::transport;
use crate::mcp::version::{self, Era};
use crate::store::ServerRecord;

use super::aggregate::{self, Aggregate, View};
use super::endpoint::{SessionCtx, Target};
use super::link::{self, SessionLinks};
use super::mrtr::InputCtx;
use super::relay::{self, EventLog, RelayOptions, ServerRequests};
use super::s2c::{self, OutstandingBook, Replier, Router};
use super::upstream::Upstream;
use super::upstream::{legacy_init_params, ClientContext, UpstreamSession};
use super::{hub, translate, uris};
use super::{live, record, GatewayError, Services};
use crate::mcp::methods::RELAYED_REQUESTS;
use crate::observe::Probe;
use crate::policy::{self, Principal};

/// A session idle this long is deleted (the Durable Object's alarm).
pub const SESSION_IDLE_TTL_MS: u64 = 24 * 60 * 60 * 1000;
/// Events kept per session for `Last-Event-ID` resumption; older ones are pruned.
pub const MAX_LOGGED_EVENTS: u64 = 1000;

/// Durable state of one session, kept in its Durable Object. Everything but `upstreams` and
/// `log_level` is fixed at `initialize`; those two change while the session runs and are written
/// one by one, when each change is made (`StateWrites`), never by saving the whole state back:
/// requests of one session run concurrently in its object, and a request that loaded the state
/// before another changed it must not write the old value back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    pub id: String,
    /// The API key that created the session; no other key may use it.
    pub key_id: String,
    pub target: Target,
    /// The version negotiated with the client.
    pub protocol_version: String,
    pub client: ClientContext,
    /// The upstream sessions opened so far, by server slug.
    pub upstreams: BTreeMap<String, UpstreamSession>,
    /// `logging/setLevel`, replayed as `_meta` to modern upstreams.
    pub log_level: Option<String>,
    pub created_at: String,
}

/// Where a session's changing state is written, each change by its own key when it is made.
/// Writes to a session that has ended (a DELETE ran meanwhile) are dropped.
pub trait StateWrites {
    /// `logging/setLevel` kept for modern upstreams.
    fn set_log_level(&self, level: Option<&str>);
    /// The upstream session with server `slug` opened (`Some`) or dropped (`None`).
    fn set_upstream(&self, slug: &str, session: Option<&UpstreamSession>);
}

/// The session's event log, readable for resumption (event ids are `{stream}-{seq}`), the
/// server→client requests relayed on its streams and not yet answered, and its state writes.
pub trait ReplayLog: EventLog + OutstandingBook + StateWrites {
    /// A fresh stream number (allocated atomically, so concurrent requests never share one).
    fn next_stream(&self) -> u64;
    /// Events of `stream` after `seq`, oldest first.
    fn replay(&self, stream: u64, after_seq: u64) -> Vec<(u64, String)>;
    /// The rest of a request's stream after `seq` — what is logged, then what arrives until it
    /// ends — if `stream` is a request stream this session relays or relayed (see `tail`).
    fn resume(&self, _stream: u64, _after_seq: u64) -> Option<ByteStream> {
        None
    }
}

/// Starts the event of a request that reached the session from the Worker, which built it as
/// far as it could and handed it over (`SessionCtx::event`); the caller serves the request with
/// it (`Services::with_probe`) and completes it with the response (`record::finish`).
pub fn probe(svc: &Services<'_>, ctx: &mut SessionCtx) -> Rc<Probe> {
    let p = Probe::start(svc.events.clone(), svc.clock(), std::mem::take(&mut ctx.event));
    record::era(&p, Era::Legacy);
    p
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
        Err(e) => return (None, crate::gateway::error::mcp_error_response(None, &e.into())),
    };
    let id = msg.id().cloned();
    match open(svc, ctx, session_id, &msg).await {
        Ok((state, result)) => {
            svc.note(|p| {
                p.update(|e| {
                    e.session_id = Some(session_id.to_string());
                    e.protocol_version = Some(state.protocol_version.clone());
                })
            });
            let body = jsonrpc::result(id.as_ref().unwrap_or(&Value::Null), result);
            let resp = HttpResponse::json(200, &body).with_header(transport::HEADER_SESSION, session_id);
            (Some(state), resp)
        }
        Err(e) => {
            record::failed(svc, &e);
            (None, crate::gateway::error::mcp_error_response(id.as_ref(), &e))
        }
    }
}

async fn open(
    svc: &Services<'_>,
    ctx: &SessionCtx,
    session_id: &str,
    msg: &Message,
) -> Result<(SessionState, Value), GatewayError> {
    let params = msg.params().cloned().unwrap_or(json!({}));
    let requested = params.get("protocolVersion").and_then(Value::as_str);
    let client = ClientContext {
        capabilities: params.get("capabilities").cloned().unwrap_or(json!({})),
        client_info: params
            .get("clientInfo")
            .cloned()
            .unwrap_or(json!({"name": "unknown", "version": "0"})),
    };
    let mut negotiated = version::negotiate_legacy(requested).to_string();
    let mut upstreams = BTreeMap::new();
    let result = match &ctx.target {
        Target::Server(_) => {
            let permit = ctx.permit()?;
            let server = permit.server();
            let up = match server.era.unwrap_or(Era::Legacy) {
                Era::Legacy => match Upstream::open(svc, &permit).await {
                    Ok(up) => Some(up),
                    // Per-user credentials not connected yet: the session opens on what sync
                    // learned, and its upstream session at first use, where the user is asked
                    // to connect (a URL elicitation or the connect link).
                    Err(GatewayError::NeedsConnect { .. }) => None,
                    Err(e) => return Err(e),
                },
                Era::Modern => None,
            };
            match up {
                Some(up) => {
                    // The upstream negotiates with the client's own parameters: a faithful proxy.
                    let init = legacy_init_params(Some(&negotiated), &client);
                    // The client's handshake is an exchange of its request (a span of its trace).
                    let probe = json!({"method": "initialize", "params": init});
                    let (up, traced, exchange) = record::exchange(&up, &probe);
                    let init = traced.map_or(init, |m| m["params"].clone());
                    let opened = up.initialize(init).await;
                    match &opened {
                        Ok(_) => exchange.done(None, None),
                        Err(e) => exchange.failed(e),
                    }
                    let (us, mut result) = opened.map_err(|e| GatewayError::upstream(&server.slug, e))?;
                    negotiated = version::negotiate_legacy(Some(&us.protocol_version)).to_string();
                    result["protocolVersion"] = json!(negotiated);
                    upstreams.insert(server.slug.clone(), us);
                    result
                }
                None => translate::initialize_result(
                    &negotiated,
                    server.capabilities.as_ref().unwrap_or(&json!({})),
                    server.server_info.as_ref().unwrap_or(&json!({})),
                    server.instructions.as_deref(),
                ),
            }
        }
        // Aggregated views open upstream sessions lazily, on first use of each server.
        Target::View(view) => {
            let catalog = aggregate::load(svc, &ctx.principal, view, Era::Legacy).await?;
            translate::initialize_result(
                &negotiated,
                &aggregate::capabilities(&catalog),
                &aggregate::server_info(),
                None,
            )
        }
    };
    let state = SessionState {
        id: session_id.to_string(),
        key_id: ctx.principal.key_id.clone(),
        target: ctx.target.clone(),
        protocol_version: negotiated,
        client,
        upstreams,
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
    svc.note(|p| {
        p.update(|e| {
            e.session_id = Some(state.id.clone());
            e.protocol_version = Some(state.protocol_version.clone());
            if e.client_name.is_none() {
                record::client_info(e, Some(&state.client.client_info));
            }
        })
    });
    let caps_svc;
    let svc = if state.client.capabilities.pointer("/elicitation/url").is_some() {
        caps_svc = Services {
            url_elicitation: true,
            ..svc.clone()
        };
        &caps_svc
    } else {
        svc
    };
    // A session is usable only by the key that created it, on the endpoint that created it;
    // to anyone else it does not exist.
    if ctx.principal.key_id != state.key_id || ctx.target != state.target {
        return (
            crate::gateway::error::mcp_error_response(None, &GatewayError::SessionNotFound),
            After::Keep,
        );
    }
    let input = svc.live.as_ref().map(|deps| {
        let l = log.clone();
        Rc::new(InputCtx {
            client_caps: state.client.capabilities.clone(),
            sleep: deps.sleep.clone(),
            log: Some(log.clone() as Rc<dyn EventLog>),
            next_stream: Some(Rc::new(move || l.next_stream())),
        })
    });
    let links = SessionLinks {
        session_id: state.id.clone(),
        sessions: RefCell::new(state.upstreams.clone()),
        persist: Some({
            let l = log.clone();
            Rc::new(move |slug: &str, s: Option<&UpstreamSession>| l.set_upstream(slug, s))
        }),
        version: state.protocol_version.clone(),
        client: state.client.clone(),
        log_level: state.log_level.clone(),
        book: Some(log.clone() as Rc<dyn OutstandingBook>),
        input,
        opened: Some(Rc::new(JoinGet {
            session_id: state.id.clone(),
            get: UpstreamGet {
                client_caps: state.client.capabilities.clone(),
                namespaced: state.target == Target::View(View::All),
                log: log.clone(),
            },
        })),
    };
    let out = match req.method {
        Method::Delete => {
            close_all(svc, state, &ctx.principal).await;
            return (HttpResponse::new(200), After::End);
        }
        Method::Get => get_stream(svc, state, req, log, &ctx.principal).await,
        _ => match jsonrpc::parse_message(&req.body) {
            Err(e) => crate::gateway::error::mcp_error_response(None, &e.into()),
            Ok(msg) => {
                let id = msg.id().cloned();
                let url_elicitation = state.client.capabilities.pointer("/elicitation/url").is_some();
                post(svc, ctx, state, req, &msg, &links, log)
                    .await
                    .inspect_err(|e| record::failed(svc, e))
                    .unwrap_or_else(|e| match e {
                        // Clients that can open URLs are asked to, the 2025-11-25 way.
                        GatewayError::NeedsConnect { slug, url } if url_elicitation => {
                            crate::gateway::error::url_elicitation_response(id.as_ref(), &slug, &url)
                        }
                        e => crate::gateway::error::mcp_error_response(id.as_ref(), &e),
                    })
            }
        },
    };
    state.upstreams = links.sessions.into_inner();
    (out, After::Keep)
}

async fn post(
    svc: &Services<'_>,
    ctx: &SessionCtx,
    state: &mut SessionState,
    req: &HttpRequest,
    msg: &Message,
    links: &SessionLinks,
    log: Rc<dyn ReplayLog>,
) -> Result<HttpResponse, GatewayError> {
    transport::check_legacy_version(&req.headers, &state.protocol_version)?;
    // The client's answer to a server→client request the gateway relayed.
    if let Message::Response { body, .. } = msg {
        return Ok(s2c::deliver(svc, &ctx.principal, &*log, body).await);
    }
    let method = msg.method().unwrap_or("").to_string();
    match (msg, method.as_str()) {
        (Message::Request { id, .. }, "ping") => return Ok(HttpResponse::json(200, &jsonrpc::result(id, json!({})))),
        (Message::Request { .. }, "initialize") => {
            return Err(RpcError::invalid_request("session already initialized").into())
        }
        // The gateway completed the upstream handshakes itself.
        (Message::Notification { .. }, "notifications/initialized") => return Ok(HttpResponse::new(202)),
        _ => {}
    }
    match &ctx.target {
        Target::Server(_) => {
            let permit = ctx.permit()?;
            let server = permit.server();
            if server.era == Some(Era::Modern) {
                if let Some(r) = modern_only(state, &*log, msg, &method) {
                    return r;
                }
            }
            let pinned = super::endpoint::pinning(svc, &permit, msg).await?;
            let mut up = Upstream::open(svc, &permit).await?;
            up.read_only_call = pinned.read_only_call;
            let stream = Some((log.next_stream(), log as Rc<dyn EventLog>));
            link::send(&up, server, links, msg, Era::Legacy, stream, pinned.post).await
        }
        Target::View(view) => {
            if let (Message::Request { id, params, .. }, "logging/setLevel") = (msg, method.as_str()) {
                state.log_level = level(params);
                log.set_log_level(state.log_level.as_deref());
                return Ok(HttpResponse::json(200, &jsonrpc::result(id, json!({}))));
            }
            let catalog = aggregate::load(svc, &ctx.principal, view, Era::Legacy).await?;
            let agg = Aggregate {
                svc,
                view,
                catalog: &catalog,
                links,
                client_era: Era::Legacy,
                log: Some(log),
                principal: &ctx.principal,
            };
            aggregate::handle(&agg, msg).await
        }
    }
}

/// Legacy methods a modern upstream lacks, answered by the session itself.
fn modern_only(
    state: &mut SessionState,
    writes: &dyn StateWrites,
    msg: &Message,
    method: &str,
) -> Option<Result<HttpResponse, GatewayError>> {
    let Message::Request { id, params, .. } = msg else {
        return None;
    };
    if method == "logging/setLevel" {
        state.log_level = level(params);
        writes.set_log_level(state.log_level.as_deref());
        return Some(Ok(HttpResponse::json(200, &jsonrpc::result(id, json!({})))));
    }
    if !RELAYED_REQUESTS.contains(&method) {
        let mut e = RpcError::method_not_found(method);
        e.http_status = 200;
        return Some(Err(e.into()));
    }
    None
}

fn level(params: &Option<Value>) -> Option<String> {
    params
        .as_ref()
        .and_then(|p| p.get("level"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Ends every upstream session the gateway session opened.
async fn close_all(svc: &Services<'_>, state: &SessionState, principal: &Principal) {
    for (slug, us) in &state.upstreams {
        if let Ok(Some(server)) = svc.registry.get_server(slug).await {
            let server = server.for_client(Era::Legacy);
            // A caller who lost access to the server since leaves its upstream session to expire.
            let Some(permit) = policy::authorize_server(principal, &server) else {
                continue;
            };
            if let Ok(up) = Upstream::open(svc, &permit).await {
                up.close(us).await;
            }
        }
    }
}

/// GET: the server→client stream — resumed from the event log when `Last-Event-ID` is given,
/// then the upstream sessions' own streams (legacy upstreams) merged with the catalog watcher.
async fn get_stream(
    svc: &Services<'_>,
    state: &SessionState,
    req: &HttpRequest,
    log: Rc<dyn ReplayLog>,
    principal: &Principal,
) -> HttpResponse {
    if let Err(e) = transport::check_get_accept(&req.headers) {
        return crate::gateway::error::mcp_error_response(None, &e.into());
    }
    let last_event = req
        .headers
        .get(transport::HEADER_LAST_EVENT_ID)
        .and_then(parse_event_id);
    // A request's stream resumes as itself: its remaining events, including those still to
    // come, and it ends after the response.
    if let Some(rest) = last_event.and_then(|(stream, seq)| log.resume(stream, seq)) {
        return HttpResponse::sse(rest);
    }
    let replayed = last_event.map(|(stream, seq)| {
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
    let mut streams: Vec<ByteStream> = Vec::new();
    for (slug, us) in &state.upstreams {
        let Ok(Some(server)) = svc.registry.get_server(slug).await else {
            continue;
        };
        let server = server.for_client(Era::Legacy);
        if server.era != Some(Era::Legacy) {
            continue;
        }
        let Some(permit) = policy::authorize_server(principal, &server) else {
            continue;
        };
        let Ok(up) = Upstream::open(svc, &permit).await else {
            continue;
        };
        let relay = UpstreamGet {
            client_caps: state.client.capabilities.clone(),
            namespaced: state.target == Target::View(View::All),
            log: log.clone(),
        };
        if let Some(s) = relay.open(&up, us).await {
            streams.push(s);
        }
    }
    if let Some(deps) = &svc.live {
        let start = svc.registry.catalog_generation().await.unwrap_or(0);
        streams.push(live::watcher(deps.clone(), start, live::logged(log.clone())));
    }
    if replayed.is_none() && streams.is_empty() {
        return HttpResponse::new(405).with_header("allow", "POST, DELETE");
    }
    let head = futures_util::stream::iter(replayed.map(|s| Ok(s.into_bytes())));
    HttpResponse::sse(head.chain(hub::merged(&state.id, streams)).boxed_local())
}

/// An upstream session's own GET stream, relayed on the client's: server→client requests under
/// gateway ids, notifications (namespaced on `/mcp`), every event logged for resumption.
struct UpstreamGet {
    client_caps: Value,
    namespaced: bool,
    log: Rc<dyn ReplayLog>,
}

impl UpstreamGet {
    async fn open(&self, up: &Upstream<'_>, us: &UpstreamSession) -> Option<ByteStream> {
        let server_requests = Replier::of(up, Some(us)).map(|replier| {
            Rc::new(Router {
                client_caps: Some(self.client_caps.clone()),
                book: Some(self.log.clone() as Rc<dyn OutstandingBook>),
                replier,
                // The GET stream has no idle deadline a wait could trip (it lives on keep-alives).
                hold: None,
            }) as Rc<dyn ServerRequests>
        });
        let (namespaced, slug) = (self.namespaced, up.slug.to_string());
        let then = move |m: Value| Some(if namespaced { uris::namespace(&slug, m) } else { m });
        let r = up.get_stream(us, None).await.ok()?;
        let (200, Body::Stream(s)) = (r.status, r.body) else {
            return None;
        };
        let opts = RelayOptions {
            log: Some((self.log.next_stream(), self.log.clone() as Rc<dyn EventLog>)),
            server_requests,
            ..RelayOptions::new(None, up.slug, live::intercept(up.slug, then))
        };
        Some(relay::relay(s, opts))
    }
}

/// Upstream sessions opened after the client's GET stream join it (`hub`).
struct JoinGet {
    session_id: String,
    get: UpstreamGet,
}

#[async_trait::async_trait(?Send)]
impl hub::Opened for JoinGet {
    async fn opened(&self, up: &Upstream<'_>, server: &ServerRecord, session: &UpstreamSession) {
        if server.era != Some(Era::Legacy) || !hub::is_open(&self.session_id) {
            return;
        }
        if let Some(s) = self.get.open(up, session).await {
            hub::join(&self.session_id, s);
        }
    }
}

/// `"{stream}-{seq}"` → numbers.
pub fn parse_event_id(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}
