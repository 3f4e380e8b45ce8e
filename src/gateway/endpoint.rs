//! The MCP endpoints — `/mcp/{slug}` (one server), `/mcp` (all of them) and `/mcp/v/{slug}` (a
//! virtual server): checks every request (origin, auth, size, headers, JSON-RPC), serves the
//! modern era statelessly, and hands legacy-era requests to their session.
use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::http::{HttpRequest, HttpResponse, Method};
use crate::mcp::error::{codes, RpcError};
use crate::mcp::jsonrpc::{self, Message};
use crate::mcp::methods;
use crate::mcp::methods::RELAYED_REQUESTS;
use crate::mcp::transport::{self, PostKind};
use crate::mcp::version::Era;
use crate::policy::{self, Permit, Principal};
use crate::store::ServerRecord;

use super::aggregate::{self, Aggregate};
use super::forward::PostFilter;
use super::link::{self, PoolLinks};
use super::live;
use super::upstream::Upstream;
use super::{catalog, record, translate, upstream, GatewayError, Services};
use crate::observe::{CaptureMode, Event, TraceContext};
pub use crate::routes::{Target, View};

/// What the platform does next with a request.
pub enum Routed {
    Respond(HttpResponse),
    /// A legacy-era request: run it in the session's Durable Object.
    Session {
        session_id: String,
        ctx: Box<SessionCtx>,
    },
}

/// What a session needs to know about the request's caller and target (set by the Worker).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionCtx {
    pub principal: Principal,
    pub target: Target,
    /// The server record, for a `Server` target.
    pub server: Option<ServerRecord>,
    /// Whether this request is the `initialize` that creates the session.
    pub initialize: bool,
    /// The request's event as far as the Worker built it (arrival, who, what): the session
    /// completes and emits it; the Worker does not.
    #[serde(default)]
    pub event: Event,
}

impl SessionCtx {
    /// The context as the value of the Worker → Durable Object header: base64url (unpadded) of
    /// its JSON. Header values must be ASCII, and names, descriptions and instructions need not
    /// be; this keeps the header valid whatever they hold (the raw JSON drew the runtime's
    /// non-ASCII header warning and is not guaranteed to pass through intact).
    pub fn to_header(&self) -> Result<String, serde_json::Error> {
        Ok(URL_SAFE_NO_PAD.encode(serde_json::to_vec(self)?))
    }

    /// The context back from `to_header`'s value; `None` for anything else.
    pub fn from_header(value: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(value.trim()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Re-establishes the permit inside the session's Durable Object (same rule, same proof).
    pub fn permit(&self) -> Result<Permit, GatewayError> {
        let server = self.server.as_ref().ok_or(GatewayError::UnknownServer)?;
        policy::authorize_server(&self.principal, server).ok_or(GatewayError::UnknownServer)
    }
}

/// The server record a session request carries to its Durable Object: what the client sees,
/// less what only `initialize` answers with (the upstream's instructions and server info, which
/// can be long) on every later request.
fn session_server(server: &ServerRecord, initialize: bool) -> ServerRecord {
    let mut s = server.clone().for_client(Era::Legacy);
    if !initialize {
        s.instructions = None;
        s.server_info = None;
    }
    s
}

/// Entry point for every MCP endpoint. Every request gets one event: emitted here when the
/// answer is complete or its stream ends, or handed to the session that serves it.
pub async fn handle(svc: &Services<'_>, req: &HttpRequest, target: Target) -> Routed {
    let probe = record::start(svc, req, &target);
    let svc = &svc.with_probe(probe.clone());
    let routed = match route(svc, req, target).await {
        Ok(r) => r,
        Err(e) => {
            record::failed(svc, &e);
            Routed::Respond(crate::gateway::error::mcp_error_response(None, &e))
        }
    };
    match routed {
        Routed::Session { session_id, mut ctx } => {
            ctx.event = probe.hand_off();
            Routed::Session { session_id, ctx }
        }
        Routed::Respond(r) => Routed::Respond(record::finish(probe, r)),
    }
}

async fn route(svc: &Services<'_>, req: &HttpRequest, target: Target) -> Result<Routed, GatewayError> {
    transport::check_origin(&req.headers, svc.config.origins())?;
    check_hops(req)?;
    let resource = crate::policy::tokens::resource_of(svc.origin, &req.path);
    let audience = policy::auth::Audience {
        origin: svc.origin,
        resource: resource.as_deref(),
    };
    let principal = policy::authenticate(&svc.auth(), &req.headers, audience).await?;
    svc.note(|p| record::principal(p, &principal));
    let permit = match &target {
        Target::Server(slug) => {
            let server = svc
                .registry
                .get_server(slug)
                .await?
                .ok_or(GatewayError::UnknownServer)?;
            Some(policy::authorize_server(&principal, &server).ok_or(GatewayError::UnknownServer)?)
        }
        // Denied and missing are decided here, before the message is read, so both answer the
        // same bytes (no request id echoed for either).
        Target::View(View::Virtual(slug)) => {
            let usable = svc
                .virtuals
                .get_virtual(slug)
                .await?
                .is_some_and(|v| policy::auth::virtual_usable(&principal.identity.org_id, &principal.access, &v));
            if !usable {
                return Err(GatewayError::UnknownServer);
            }
            None
        }
        Target::View(View::All) => None,
    };
    let session_header = req.headers.get(transport::HEADER_SESSION).map(str::to_string);
    let to_session = |session_id: String, initialize: bool| Routed::Session {
        session_id,
        ctx: Box::new(SessionCtx {
            principal: principal.clone(),
            target: target.clone(),
            server: permit.as_ref().map(|p| session_server(p.server(), initialize)),
            initialize,
            event: Event::default(),
        }),
    };
    match req.method {
        Method::Get | Method::Delete => Ok(match session_header {
            Some(sid) => {
                svc.note(|p| record::era(p, Era::Legacy));
                to_session(sid, false)
            }
            None => Routed::Respond(method_not_allowed()),
        }),
        Method::Post => {
            if req.body.len() > transport::MAX_BODY_BYTES {
                return Err(RpcError::new(codes::INVALID_REQUEST, "request body too large", 413).into());
            }
            transport::check_content_type(&req.headers)?;
            transport::check_post_accept(&req.headers)?;
            let msg = jsonrpc::parse_message(&req.body)?;
            let capture = capture_mode(svc, &principal, permit.as_ref()).await;
            svc.note(|p| record::message(p, &req.headers, &msg, capture));
            // Only the exact method names of the request's era go further (never forwarded
            // otherwise); errors found after parsing keep the request id.
            let kind = transport::classify_post(&req.headers, &msg).and_then(|k| {
                let era = if matches!(k, PostKind::Modern(_)) {
                    Era::Modern
                } else {
                    Era::Legacy
                };
                svc.note(|p| record::era(p, era));
                methods::check(era, &msg).map(|()| k)
            });
            match kind {
                Ok(PostKind::Initialize) => Ok(to_session(new_session_id(), true)),
                Ok(PostKind::Session(sid)) => Ok(to_session(sid, false)),
                Ok(PostKind::Modern(_)) => {
                    let id = msg.id().cloned();
                    let r = match (&permit, &target) {
                        (Some(p), _) => modern_server(svc, p, req, &msg).await,
                        (None, Target::View(view)) => modern_view(svc, &principal, view, &msg).await,
                        (None, Target::Server(_)) => Err(GatewayError::UnknownServer),
                    };
                    Ok(Routed::Respond(r.unwrap_or_else(|e| {
                        record::failed(svc, &e);
                        crate::gateway::error::mcp_error_response(id.as_ref(), &e)
                    })))
                }
                // Errors found after parsing keep the request id, so clients can match them.
                Err(e) => {
                    let e = e.into();
                    record::failed(svc, &e);
                    Ok(Routed::Respond(crate::gateway::error::mcp_error_response(msg.id(), &e)))
                }
            }
        }
        _ => Ok(Routed::Respond(method_not_allowed())),
    }
}

/// The trace the request joined (see `record::start`).
pub fn trace_of(svc: &Services<'_>) -> Option<TraceContext> {
    svc.probe.as_ref().and_then(|p| p.read(|e| e.trace.clone()))
}

/// What events keep of this request's arguments: the server's setting, else the
/// organization's, else `keys` (both served from the snapshot; no storage read per call).
/// Nothing is looked up, nor kept, when no sink would read it.
pub async fn capture_mode(svc: &Services<'_>, principal: &Principal, permit: Option<&Permit>) -> CaptureMode {
    if !svc.probe.as_ref().is_some_and(|p| p.active()) {
        return CaptureMode::None;
    }
    let org = org_capture(svc, &principal.identity.org_id).await;
    CaptureMode::resolve(permit.and_then(|p| p.server().capture), org)
}

/// The organization's capture setting (`None`: not set, or it could not be read).
pub async fn org_capture(svc: &Services<'_>, org: &str) -> Option<CaptureMode> {
    if org.is_empty() {
        return None;
    }
    svc.directory.org_capture(org).await.ok().flatten()
}

/// Refuses a request that a gateway already forwarded (a request loop, or gateways chained)
/// with HTTP 508 Loop Detected, before any work is done for it.
fn check_hops(req: &HttpRequest) -> Result<(), RpcError> {
    match req.headers.get(upstream::HOP_HEADER) {
        None => Ok(()),
        Some(_) => Err(RpcError::new(
            codes::INVALID_REQUEST,
            "request loop: this request was already forwarded by an MCP gateway",
            508,
        )),
    }
}

fn method_not_allowed() -> HttpResponse {
    HttpResponse::new(405).with_header("allow", "POST")
}

/// Session ids: 256 random bits, visible ASCII as the spec demands.
pub fn new_session_id() -> String {
    crate::crypto::random_token::<32>()
}

/// One 2026-07-28 request on `/mcp/{slug}`, served statelessly.
async fn modern_server(
    svc: &Services<'_>,
    permit: &Permit,
    req: &HttpRequest,
    msg: &Message,
) -> Result<HttpResponse, GatewayError> {
    let server = permit.server();
    let Message::Request { id, method, .. } = msg else {
        // The only client notification of 2026-07-28 is `notifications/cancelled`, which over HTTP
        // is expressed by closing the stream: nothing to forward.
        return Ok(HttpResponse::new(202));
    };
    if method == "server/discover" {
        let r = translate::discover_result(
            server.capabilities.as_ref().unwrap_or(&json!({})),
            server.server_info.as_ref().unwrap_or(&json!({})),
            server.instructions.as_deref(),
        );
        return Ok(HttpResponse::json(200, &jsonrpc::result(id, r)));
    }
    if method == "subscriptions/listen" {
        let deps = svc.live.clone().ok_or_else(|| RpcError::method_not_found(method))?;
        let servers = vec![permit.clone()];
        return Ok(live::listen(
            deps,
            id.clone(),
            &msg.params().cloned().unwrap_or_default(),
            servers,
            false,
            trace_of(svc),
        )
        .await);
    }
    if !RELAYED_REQUESTS.contains(&method.as_str()) {
        return Err(RpcError::method_not_found(method).into());
    }
    let mut up = Upstream::open(svc, permit).await?;
    if server.era == Some(Era::Modern) {
        // Tool parameters mirrored into `Mcp-Param-*` headers travel with the request; the
        // upstream checks them against the body.
        for (k, v) in req.headers.iter() {
            if k.len() > 10 && k[..10].eq_ignore_ascii_case("mcp-param-") {
                up.extra_headers.set(k, v);
            }
        }
    }
    let pinned = pinning(svc, permit, msg).await?;
    up.read_only_call = pinned.read_only_call;
    // Only an agent's permit relays a client's message (never the gateway's catalog permit).
    let agent = permit.principal().ok_or(GatewayError::UnknownServer)?;
    let links = PoolLinks {
        principal: &agent.identity.principal_id,
    };
    link::send(&up, server, &links, msg, Era::Modern, None, pinned.post).await
}

/// What the catalog says about a message to `/mcp/{slug}`.
pub struct Pinned {
    /// Applied to the messages relayed back (e.g. a live tool list filtered to approved tools).
    pub post: Option<PostFilter>,
    /// A `tools/call` of a tool the approved catalog declares read-only (safe to repeat).
    pub read_only_call: bool,
}

/// Grants and pinning on `/mcp/{slug}`: a call must name a granted, active catalog tool, and a
/// live tool list keeps only granted tools with their approved definitions.
pub async fn pinning(svc: &Services<'_>, permit: &Permit, msg: &Message) -> Result<Pinned, GatewayError> {
    let server = permit.server();
    let access = permit.principal().ok_or(GatewayError::UnknownServer)?.access.clone();
    let slug = server.slug.clone();
    let mut pinned = Pinned {
        post: None,
        read_only_call: false,
    };
    match msg.method() {
        Some("tools/call") => {
            let tools = svc.registry.tools_of(&server.slug).await?;
            catalog::check_call(msg, &tools, |t| access.tool_allowed(&slug, t)).map_err(|e| record::denied(svc, e))?;
            let name = msg.params().and_then(|p| p.get("name")).and_then(|n| n.as_str());
            pinned.read_only_call = tools
                .iter()
                .any(|t| Some(t.name.as_str()) == name && catalog::is_read_only(t));
        }
        Some("tools/list") => {
            let tools = svc.registry.tools_of(&server.slug).await?;
            let filter = move |m| catalog::filter_tools_result(m, &tools, |t| access.tool_allowed(&slug, t));
            pinned.post = Some(Rc::new(filter));
        }
        _ => {}
    }
    Ok(pinned)
}

/// One 2026-07-28 request on `/mcp` or a virtual server, served statelessly.
async fn modern_view(
    svc: &Services<'_>,
    principal: &Principal,
    view: &View,
    msg: &Message,
) -> Result<HttpResponse, GatewayError> {
    let catalog = aggregate::load(svc, principal, view, Era::Modern).await?;
    let links = PoolLinks {
        principal: &principal.identity.principal_id,
    };
    let agg = Aggregate {
        svc,
        view,
        catalog: &catalog,
        links: &links,
        client_era: Era::Modern,
        log: None,
        principal,
    };
    aggregate::handle(&agg, msg).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_from_paths() {
        assert_eq!(Target::from_path("/mcp"), Some(Target::View(View::All)));
        assert_eq!(Target::from_path("/mcp/"), Some(Target::View(View::All)));
        assert_eq!(Target::from_path("/mcp/py"), Some(Target::Server("py".into())));
        assert_eq!(
            Target::from_path("/mcp/v/ops"),
            Some(Target::View(View::Virtual("ops".into())))
        );
        assert_eq!(Target::from_path("/mcp/v/"), None);
        assert_eq!(Target::from_path("/mcp/a/b"), None);
        assert_eq!(Target::from_path("/mcpx"), None);
        assert_eq!(Target::from_path("/admin"), None);
    }

    #[test]
    fn only_initialize_carries_instructions_and_server_info() {
        let mut server: ServerRecord = serde_json::from_value(json!({
            "slug": "démo", "name": "Démo", "url": "https://s.example/mcp", "description": null,
            "owner": null, "status": "active", "era": "legacy", "protocol_version": "2025-11-25",
            "timeout_ms": null, "server_info": null, "capabilities": null, "instructions": null,
            "last_synced_at": null, "last_sync_error": null, "new_tool_policy": "approve",
            "created_at": "", "updated_at": "",
        }))
        .unwrap_or_else(|e| panic!("server fixture: {e}"));
        server.instructions = Some("Lisez d'abord ☃".repeat(200));
        server.server_info = Some(json!({ "name": "up", "version": "1" }));
        let first = session_server(&server, true);
        assert_eq!(first.instructions, server.instructions);
        assert_eq!(first.server_info, server.server_info);
        let later = session_server(&server, false);
        assert_eq!((later.instructions, later.server_info), (None, None));
        assert_eq!((later.slug, later.url), (server.slug, server.url));
    }

    #[test]
    fn session_context_header_is_ascii_and_round_trips() {
        let principal: Principal = serde_json::from_value(json!({
            "key_id": "k1", "key_name": "clé ☃",
            "identity": { "principal_id": "Zoë", "kind": "user", "org_id": "o1",
                          "workspace_ids": ["w—1"], "team_ids": [] },
            "access": { "grants": [] }
        }))
        .unwrap_or_else(|e| panic!("principal fixture: {e}"));
        let ctx = SessionCtx {
            principal,
            target: Target::Server("démo".into()),
            server: None,
            initialize: true,
            event: Event::default(),
        };
        let h = ctx.to_header().unwrap();
        assert!(
            h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{h}"
        );
        let back = SessionCtx::from_header(&h).expect("decodes");
        assert_eq!(back.principal, ctx.principal);
        assert!(back.initialize);
        assert!(matches!(back.target, Target::Server(ref s) if s == "démo"));
        // Raw JSON (the old form) and garbage are refused, not half-read.
        assert!(SessionCtx::from_header(&serde_json::to_string(&ctx).unwrap()).is_none());
        assert!(SessionCtx::from_header("not base64!").is_none());
    }
}
