//! The MCP endpoint `/mcp/{slug}`: checks every request (origin, auth, size, headers, JSON-RPC),
//! serves the modern era statelessly, and hands legacy-era requests to their session.
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::http::{HttpRequest, HttpResponse, Method};
use crate::mcp::error::RpcError;
use crate::mcp::jsonrpc::{self, Message};
use crate::mcp::transport::{self, PostKind};
use crate::mcp::version::Era;
use crate::policy::{self, Permit, Principal};
use crate::store::ServerRecord;

use super::forward::{forward, Exchange};
use super::upstream::{legacy_init_params, ClientContext, UpstreamError};
use super::{pool, traceparent, translate, GatewayError, Services};

/// Client requests the gateway relays to an upstream (both eras).
pub const FORWARDED_METHODS: &[&str] = &[
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "completion/complete",
];

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
    pub server: ServerRecord,
    /// Whether this request is the `initialize` that creates the session.
    pub initialize: bool,
}

impl SessionCtx {
    /// Re-establishes the permit inside the session's Durable Object (same rule, same proof).
    pub fn permit(&self) -> Result<Permit, GatewayError> {
        policy::authorize_server(&self.principal, &self.server).ok_or(GatewayError::UnknownServer)
    }
}

/// Entry point for `/mcp/{slug}`.
pub async fn handle(svc: &Services<'_>, req: &HttpRequest, slug: &str) -> Routed {
    match route(svc, req, slug).await {
        Ok(r) => r,
        Err(e) => Routed::Respond(crate::error::mcp_error_response(None, &e)),
    }
}

async fn route(svc: &Services<'_>, req: &HttpRequest, slug: &str) -> Result<Routed, GatewayError> {
    transport::check_origin(&req.headers, &svc.config.allowed_origins)?;
    let principal = policy::authenticate_api_key(svc.keys, &req.headers).await?;
    let server = svc
        .registry
        .get_server(slug)
        .await?
        .ok_or(GatewayError::UnknownServer)?;
    let permit = policy::authorize_server(&principal, &server).ok_or(GatewayError::UnknownServer)?;
    let session_header = req.headers.get(transport::HEADER_SESSION).map(str::to_string);
    let to_session = |session_id: String, initialize: bool| Routed::Session {
        session_id,
        ctx: Box::new(SessionCtx {
            principal: principal.clone(),
            server: server.clone(),
            initialize,
        }),
    };
    match req.method {
        Method::Get | Method::Delete => Ok(match session_header {
            Some(sid) => to_session(sid, false),
            None => Routed::Respond(method_not_allowed()),
        }),
        Method::Post => {
            if req.body.len() > transport::MAX_BODY_BYTES {
                return Err(
                    RpcError::new(crate::mcp::error::codes::INVALID_REQUEST, "request body too large", 413).into(),
                );
            }
            transport::check_content_type(&req.headers)?;
            transport::check_post_accept(&req.headers)?;
            let msg = jsonrpc::parse_message(&req.body)?;
            match transport::classify_post(&req.headers, &msg) {
                Ok(PostKind::Initialize) => Ok(to_session(new_session_id(), true)),
                Ok(PostKind::Session(sid)) => Ok(to_session(sid, false)),
                Ok(PostKind::Modern(_)) => Ok(Routed::Respond(serve_modern(svc, &permit, req, &msg).await)),
                // Errors found after parsing keep the request id, so clients can match them.
                Err(e) => Ok(Routed::Respond(crate::error::mcp_error_response(msg.id(), &e.into()))),
            }
        }
        _ => Ok(Routed::Respond(method_not_allowed())),
    }
}

fn method_not_allowed() -> HttpResponse {
    HttpResponse::new(405).with_header("allow", "POST")
}

/// Session ids: 256 random bits, visible ASCII as the spec demands.
pub fn new_session_id() -> String {
    crate::crypto::random_token::<32>()
}

/// Serves one 2026-07-28 request statelessly.
async fn serve_modern(svc: &Services<'_>, permit: &Permit, req: &HttpRequest, msg: &Message) -> HttpResponse {
    let id = msg.id().cloned();
    match modern(svc, permit, req, msg).await {
        Ok(r) => r,
        Err(e) => crate::error::mcp_error_response(id.as_ref(), &e),
    }
}

async fn modern(
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
    if !FORWARDED_METHODS.contains(&method.as_str()) {
        return Err(RpcError::method_not_found(method).into());
    }
    let mut up = svc.upstream(server, traceparent(&req.headers));
    let wire = msg.to_value();
    match server.era.unwrap_or(Era::Legacy) {
        Era::Modern => {
            // Tool parameters mirrored into `Mcp-Param-*` headers travel with the request; the
            // upstream checks them against the body.
            for (k, v) in req.headers.iter() {
                if k.len() > 10 && k[..10].eq_ignore_ascii_case("mcp-param-") {
                    up.extra_headers.set(k, v);
                }
            }
            let ex = Exchange {
                msg: &wire,
                id: Some(id.clone()),
                method,
                client_era: Era::Modern,
                upstream_era: Era::Modern,
                log: None,
            };
            forward(&up, None, ex)
                .await
                .map_err(|e| GatewayError::upstream(&server.slug, e))
        }
        Era::Legacy => {
            let legacy_msg = translate::request_to_legacy(wire);
            // One retry when the pooled upstream session turns out to be gone: the upstream
            // refused the request without running it, so resending is safe.
            for attempt in 0..2 {
                let session = match pool::get(&server.slug, &server.url) {
                    Some(s) => s,
                    None => {
                        let params = legacy_init_params(server.protocol_version.as_deref(), &ClientContext::default());
                        let (s, _) = up
                            .initialize(params)
                            .await
                            .map_err(|e| GatewayError::upstream(&server.slug, e))?;
                        pool::put(&server.slug, &server.url, s.clone());
                        s
                    }
                };
                let ex = Exchange {
                    msg: &legacy_msg,
                    id: Some(id.clone()),
                    method,
                    client_era: Era::Modern,
                    upstream_era: Era::Legacy,
                    log: None,
                };
                match forward(&up, Some(&session), ex).await {
                    Err(UpstreamError::SessionExpired) if attempt == 0 => pool::forget(&server.slug, &server.url),
                    Err(e) => {
                        pool::forget(&server.slug, &server.url);
                        return Err(GatewayError::upstream(&server.slug, e));
                    }
                    Ok(r) => return Ok(r),
                }
            }
            Err(GatewayError::upstream(&server.slug, UpstreamError::SessionExpired))
        }
    }
}
