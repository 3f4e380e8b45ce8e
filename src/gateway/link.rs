//! How one client message reaches one upstream in that upstream's era: translation, the legacy
//! upstream session to use (pooled for stateless clients, per client in a legacy session), the
//! gateway's own request ids on legacy upstream sessions (`ids`), and one transparent retry
//! when the upstream has dropped that session.
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use async_trait::async_trait;
use serde_json::Value;

use crate::http::HttpResponse;
use crate::mcp::jsonrpc::Message;
use crate::mcp::version::Era;
use crate::store::ServerRecord;

use super::forward::{forward, Exchange, PostFilter};
use futures_util::future::{Abortable, Aborted};
use futures_util::stream::AbortHandle;
use futures_util::StreamExt;

use super::ids::{self, InFlight, Route};
use super::mrtr::InputCtx;
use super::relay::{EventLog, ServerRequests};
use super::s2c::{OutstandingBook, Replier, Router};
use super::upstream::{legacy_init_params, ClientContext, Upstream, UpstreamError, UpstreamSession};
use super::{pool, translate, GatewayError};
use crate::outbound::deadline::Hold;

/// Where the legacy upstream sessions of a client come from, and who the client is.
#[async_trait(?Send)]
pub trait Links {
    /// The session to use with `server`, opened on first use.
    async fn session(&self, up: &Upstream<'_>, server: &ServerRecord) -> Result<UpstreamSession, UpstreamError>;
    /// Drops a session the upstream no longer knows.
    fn forget(&self, server: &ServerRecord);
    /// The client identity and capabilities presented to modern upstreams in `_meta`.
    fn client(&self) -> ClientContext;
    fn log_level(&self) -> Option<String> {
        None
    }
    /// Where this client's in-flight requests are registered, so that its
    /// `notifications/cancelled` can name them (a legacy session's id); `None` for clients
    /// that cancel by closing the stream.
    fn scope(&self) -> Option<&str> {
        None
    }
    /// How server→client requests arriving on `session` are treated for this client; those
    /// relayed to it take `hold` until answered.
    fn server_requests(
        &self,
        up: &Upstream<'_>,
        session: &UpstreamSession,
        hold: Option<Rc<Hold>>,
    ) -> Option<Rc<dyn ServerRequests>>;
    /// How a modern upstream's input requests reach this client (`None`: they cannot).
    fn input(&self) -> Option<Rc<InputCtx>> {
        None
    }
}

/// Writes one upstream session of a client (by server slug; `None`: dropped) to durable state.
pub type Persist = Rc<dyn Fn(&str, Option<&UpstreamSession>)>;

/// Stateless (modern) clients: upstream sessions the gateway owns, one per server and principal
/// in each isolate, opened with the gateway's own empty capabilities (see `pool`).
pub struct PoolLinks<'p> {
    /// The principal the requests act for (`Identity::principal_id`).
    pub principal: &'p str,
}

#[async_trait(?Send)]
impl Links for PoolLinks<'_> {
    async fn session(&self, up: &Upstream<'_>, server: &ServerRecord) -> Result<UpstreamSession, UpstreamError> {
        if let Some(s) = pool::get(&server.slug, &server.url, self.principal) {
            return Ok(s);
        }
        let params = legacy_init_params(server.protocol_version.as_deref(), &ClientContext::default());
        let (s, _) = up.initialize(params).await?;
        pool::put(&server.slug, &server.url, self.principal, s.clone());
        Ok(s)
    }

    fn forget(&self, server: &ServerRecord) {
        pool::forget(&server.slug, &server.url, self.principal);
    }

    fn client(&self) -> ClientContext {
        ClientContext::default()
    }

    /// A stateless client has no channel for server→client requests: each is refused.
    fn server_requests(
        &self,
        up: &Upstream<'_>,
        session: &UpstreamSession,
        _hold: Option<Rc<Hold>>,
    ) -> Option<Rc<dyn ServerRequests>> {
        let replier = Replier::of(up, Some(session))?;
        Some(Rc::new(Router {
            client_caps: None,
            book: None,
            replier,
            hold: None,
        }))
    }
}

/// A legacy client's own upstream sessions, one per server, opened lazily with the client's
/// capabilities and negotiated version; each one opened or dropped is written at once (`persist`).
pub struct SessionLinks {
    /// The gateway session's id (scope of its in-flight requests).
    pub session_id: String,
    pub sessions: RefCell<BTreeMap<String, UpstreamSession>>,
    /// Writes a change of `sessions` to the session's durable state (by server slug).
    pub persist: Option<Persist>,
    pub version: String,
    pub client: ClientContext,
    pub log_level: Option<String>,
    /// Where relayed server→client requests are remembered until the client answers.
    pub book: Option<Rc<dyn OutstandingBook>>,
    /// What serving a modern upstream's input requests needs (`None` where it cannot be done).
    pub input: Option<Rc<InputCtx>>,
    /// Told of every upstream session opened here (it joins the client's open GET stream).
    pub opened: Option<Rc<dyn super::hub::Opened>>,
}

#[async_trait(?Send)]
impl Links for SessionLinks {
    async fn session(&self, up: &Upstream<'_>, server: &ServerRecord) -> Result<UpstreamSession, UpstreamError> {
        if let Some(s) = self.sessions.borrow().get(&server.slug) {
            return Ok(s.clone());
        }
        let (s, _) = up
            .initialize(legacy_init_params(Some(&self.version), &self.client))
            .await?;
        self.sessions.borrow_mut().insert(server.slug.clone(), s.clone());
        if let Some(p) = &self.persist {
            p(&server.slug, Some(&s));
        }
        if let Some(o) = &self.opened {
            o.opened(up, server, &s).await;
        }
        Ok(s)
    }

    fn forget(&self, server: &ServerRecord) {
        if self.sessions.borrow_mut().remove(&server.slug).is_some() {
            if let Some(p) = &self.persist {
                p(&server.slug, None);
            }
        }
    }

    fn client(&self) -> ClientContext {
        self.client.clone()
    }

    fn log_level(&self) -> Option<String> {
        self.log_level.clone()
    }

    fn scope(&self) -> Option<&str> {
        Some(&self.session_id)
    }

    fn server_requests(
        &self,
        up: &Upstream<'_>,
        session: &UpstreamSession,
        hold: Option<Rc<Hold>>,
    ) -> Option<Rc<dyn ServerRequests>> {
        let replier = Replier::of(up, Some(session))?;
        Some(Rc::new(Router {
            client_caps: Some(self.client.capabilities.clone()),
            book: self.book.clone(),
            replier,
            hold,
        }))
    }

    fn input(&self) -> Option<Rc<InputCtx>> {
        self.input.clone()
    }
}

/// Sends `msg` (in the client's era) to `server` and shapes the reply for the client.
pub async fn send(
    up: &Upstream<'_>,
    server: &ServerRecord,
    links: &dyn Links,
    msg: &Message,
    client_era: Era,
    log: Option<(u64, Rc<dyn EventLog>)>,
    post: Option<PostFilter>,
) -> Result<HttpResponse, GatewayError> {
    let method = msg.method().unwrap_or("");
    let id = match msg {
        Message::Request { id, .. } => Some(id.clone()),
        _ => None,
    };
    let err = |e| GatewayError::upstream(&server.slug, e);
    let upstream_era = server.era.unwrap_or(Era::Legacy);
    if upstream_era == Era::Modern {
        // Cancelling on a modern upstream is closing the request's stream.
        if is_cancellation(msg) {
            if let Some(Route::Abort(handles)) = find_cancelled(links, msg).map(|(_, r)| r) {
                handles.iter().for_each(AbortHandle::abort);
            }
            return Ok(HttpResponse::new(202));
        }
        let (abort, wait, in_flight) = match (links.scope(), &id) {
            (Some(scope), Some(client_id)) => {
                let (stream, registration) = AbortHandle::new_pair();
                let (answer, waiting) = AbortHandle::new_pair();
                let route = Route::Abort(vec![stream, answer]);
                let guard = InFlight::register(scope, client_id, &server.slug, route);
                (Some(registration), Some(waiting), Some(guard))
            }
            _ => (None, None, None),
        };
        let wire: Value = match (client_era, msg) {
            (Era::Modern, _) => msg.to_value(),
            (Era::Legacy, Message::Request { .. }) => {
                translate::request_to_modern(msg.to_value(), &links.client(), links.log_level().as_deref())
            }
            // Client notifications and responses have no modern-era counterpart over HTTP.
            (Era::Legacy, _) => return Ok(HttpResponse::new(202)),
        };
        let input = match client_era {
            Era::Legacy => links.input(),
            Era::Modern => None,
        };
        let ex = Exchange {
            msg: &wire,
            id,
            method,
            client_era,
            upstream_era,
            log,
            post,
            mapped: None,
            in_flight,
            server_requests: None,
            input,
            on_abandon: None,
            abort,
            hold: None,
        };
        let Some(wait) = wait else {
            return forward(up, None, ex).await.map_err(err);
        };
        // Cancelled before the answer came (its headers, or all of a JSON answer): dropping the
        // exchange aborts the upstream fetch, which closes the upstream's request — the modern
        // era's cancellation. The client's stream ends without a response, as for a cancelled
        // streamed request.
        return match Abortable::new(forward(up, None, ex), wait).await {
            Ok(r) => r.map_err(err),
            Err(Aborted) => {
                if let Some(p) = &up.probe {
                    p.outcome(crate::observe::Outcome::Cancelled);
                }
                Ok(HttpResponse::sse(futures_util::stream::empty().boxed_local()))
            }
        };
    }
    let wire = match client_era {
        Era::Modern => translate::request_to_legacy(msg.to_value()),
        Era::Legacy => msg.to_value(),
    };
    // The upstream session may be shared (pooled, or with the gateway's own requests): the
    // request goes out under a gateway id, and a client's cancellation names that id.
    let wire = match cancelled_in_flight(links, server, msg) {
        Some(w) => w,
        None if is_cancellation(msg) => return Ok(HttpResponse::new(202)),
        None => wire,
    };
    let (wire, mapped) = ids::outbound(wire);
    let id = mapped.as_ref().map(|m| m.upstream_id.clone()).or(id);
    // One retry when the upstream session turns out to be gone: the upstream refused the
    // message without running it, so resending is safe.
    for attempt in 0..2 {
        let session = links.session(up, server).await.map_err(err)?;
        let hold = Rc::new(Hold::default());
        let ex = Exchange {
            msg: &wire,
            id: id.clone(),
            method,
            client_era,
            upstream_era,
            log: log.clone(),
            post: post.clone(),
            mapped: mapped.clone(),
            in_flight: match (links.scope(), &mapped) {
                (Some(scope), Some(m)) => Some(InFlight::register(
                    scope,
                    &m.client_id,
                    &server.slug,
                    Route::Upstream(m.clone()),
                )),
                _ => None,
            },
            server_requests: links.server_requests(up, &session, Some(hold.clone())),
            input: None,
            // A client without a session cancels by going away: tell the upstream.
            on_abandon: match (links.scope(), &mapped) {
                (None, Some(m)) => up.in_background(m.cancelled("the client closed the request's stream"), &session),
                _ => None,
            },
            abort: None,
            hold: Some(hold),
        };
        match forward(up, Some(&session), ex).await {
            Ok(r) => return Ok(r),
            Err(UpstreamError::SessionExpired) if attempt == 0 => links.forget(server),
            Err(e) => {
                if matches!(
                    e,
                    UpstreamError::SessionExpired | UpstreamError::Unreachable(_) | UpstreamError::ConnectionLost(_)
                ) {
                    links.forget(server);
                }
                return Err(err(e));
            }
        }
    }
    Err(err(UpstreamError::SessionExpired))
}

fn is_cancellation(msg: &Message) -> bool {
    matches!(msg, Message::Notification { method, .. } if method == "notifications/cancelled")
}

/// A client's `notifications/cancelled` for a request in flight on `server`, naming the
/// upstream's id for it; `None` if the message is something else or names no such request
/// (an unknown id is ignored, as the specification allows).
fn cancelled_in_flight(links: &dyn Links, server: &ServerRecord, msg: &Message) -> Option<Value> {
    let (slug, route) = find_cancelled(links, msg)?;
    let Route::Upstream(mapped) = route else { return None };
    let mut wire = msg.to_value();
    (slug == server.slug).then(|| {
        wire["params"]["requestId"] = mapped.upstream_id;
        wire
    })
}

/// The in-flight request a client's `notifications/cancelled` names, with its server's slug.
fn find_cancelled(links: &dyn Links, msg: &Message) -> Option<(String, Route)> {
    if !is_cancellation(msg) {
        return None;
    }
    InFlight::find(links.scope()?, msg.params()?.get("requestId")?)
}
