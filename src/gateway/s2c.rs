//! Server→client requests (`sampling/createMessage`, `elicitation/create`, `roots/list`,
//! `ping`) that a legacy-era upstream sends on a stream the gateway relays.
//!
//! The gateway owns the id space the client sees: each relayed request gets a fresh gateway id,
//! remembered in the client's session together with the upstream session and the id the
//! upstream used; the client's response POST is routed back by that id alone. A request the
//! client has not declared the capability for — and every request meant for a stateless
//! (2026-07-28) client, which has no channel for them — is answered at once upstream with
//! -32601, as a client without the capability would.
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::http::{Headers, HttpResponse};
use crate::mcp::error::{codes, RpcError};
use crate::mcp::jsonrpc::{self, RequestId};

use super::relay::ServerRequests;
use super::upstream::{HttpClient, Upstream, UpstreamError, UpstreamSession};
use super::{mrtr, Services};
use crate::context::CallHooks;
use crate::outbound::deadline::Hold;
use crate::policy::{self, Permit, Principal};

/// Prefix of gateway-minted ids of relayed server→client requests.
const ID_PREFIX: &str = "s2c-";

/// One relayed request awaiting the client's response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outstanding {
    /// The server that asked.
    pub slug: String,
    /// The upstream session the request came on (the answer must go to the same one).
    pub session: UpstreamSession,
    /// The id the upstream gave the request.
    pub upstream_id: RequestId,
}

/// Where a session keeps its outstanding requests (the Durable Object's storage).
pub trait OutstandingBook {
    fn remember(&self, gateway_id: &str, o: &Outstanding);
    /// Removes and returns the entry: each request is answered once.
    fn take(&self, gateway_id: &str) -> Option<Outstanding>;
}

/// A fresh, unguessable gateway id for a request relayed to the client.
pub fn new_gateway_id() -> String {
    format!("{ID_PREFIX}{}", crate::crypto::random_token::<16>())
}

/// Whether a JSON-RPC message is a request (it has both a method and an id).
pub fn is_request(v: &Value) -> bool {
    v.get("method").is_some_and(Value::is_string) && v.get("id").is_some_and(|i| !i.is_null())
}

/// Whether a client that declared `caps` can serve `req`.
pub fn client_can_serve(caps: &Value, req: &Value) -> bool {
    let params = req.get("params").cloned().unwrap_or_default();
    match req.get("method").and_then(Value::as_str) {
        Some("ping") => true,
        Some("roots/list") => caps.get("roots").is_some(),
        Some("sampling/createMessage") => {
            let Some(s) = caps.get("sampling") else { return false };
            // Tool use in sampling needs its own sub-capability (2025-11-25).
            params.get("tools").is_none() || s.get("tools").is_some()
        }
        Some("elicitation/create") => {
            let Some(e) = caps.get("elicitation") else { return false };
            match params.get("mode").and_then(Value::as_str).unwrap_or("form") {
                "url" => e.get("url").is_some(),
                // An empty `elicitation` object means form mode (the 2025-06-18 shape).
                "form" => e.get("form").is_some() || e.get("url").is_none(),
                _ => false,
            }
        }
        _ => false,
    }
}

/// The answer a client without the capability gives.
pub fn refusal(req: &Value) -> Value {
    let method = req.get("method").and_then(Value::as_str).unwrap_or("");
    let mut e = RpcError::method_not_found(method);
    e.message = format!("the client does not support {method}");
    jsonrpc::error_response(req.get("id"), &e)
}

/// An upstream session the relay can answer on after the request that opened it has returned
/// (owned, unlike `Upstream`).
pub struct Replier {
    /// The permit of the exchange it answers on.
    pub permit: Permit,
    pub hooks: Rc<dyn CallHooks>,
    pub http: Rc<dyn HttpClient>,
    pub url: String,
    pub slug: String,
    pub timeout_ms: u32,
    /// The total and listen deadlines of the upstream it answers (see `deadline`).
    pub total_ms: u32,
    pub listen_idle_ms: u32,
    pub headers: Headers,
    pub session: Option<UpstreamSession>,
}

impl Replier {
    /// Built from the upstream of the current request; `None` where no owned client exists.
    pub fn of(up: &Upstream<'_>, session: Option<&UpstreamSession>) -> Option<Rc<Self>> {
        Some(Rc::new(Self {
            permit: up.permit.clone(),
            hooks: up.hooks.clone(),
            http: up.shared_http.clone()?,
            url: up.url.to_string(),
            slug: up.slug.to_string(),
            timeout_ms: up.timeout_ms,
            total_ms: up.total_ms,
            listen_idle_ms: up.listen_idle_ms,
            headers: up.extra_headers.clone(),
            session: session.cloned(),
        }))
    }

    fn upstream(&self) -> Upstream<'_> {
        Upstream {
            permit: &self.permit,
            hooks: self.hooks.clone(),
            opened_ms: 0,
            http: &*self.http,
            shared_http: Some(self.http.clone()),
            url: &self.url,
            slug: &self.slug,
            timeout_ms: self.timeout_ms,
            total_ms: self.total_ms,
            listen_idle_ms: self.listen_idle_ms,
            // Answers and retries are never repeated after a dropped connection.
            read_only_call: false,
            extra_headers: self.headers.clone(),
            background: None,
            // The trace headers of the exchange it answers are among `headers` already.
            trace: None,
            probe: None,
            url_elicitation: false,
            answers_client: false,
        }
    }

    /// Sends an answer on the legacy session (failures are logged: the upstream times out).
    pub async fn send(&self, msg: &Value) {
        if let Err(e) = self.upstream().post_legacy(msg, self.session.as_ref()).await {
            tracing::warn!(upstream = %self.slug, error = %e, "answering a server→client request failed");
        }
    }

    /// Sends a 2026-07-28 request (a retry with input responses).
    pub async fn post_modern(&self, msg: &Value) -> Result<HttpResponse, UpstreamError> {
        self.upstream().post_modern(msg).await
    }
}

/// How one relayed upstream stream treats the requests on it.
pub struct Router {
    /// The client's declared capabilities; `None` for a stateless client (refuse everything).
    pub client_caps: Option<Value>,
    pub book: Option<Rc<dyn OutstandingBook>>,
    pub replier: Rc<Replier>,
    /// The stream's exchange, paused (its idle deadline) while a relayed request is unanswered.
    pub hold: Option<Rc<Hold>>,
}

thread_local! {
    /// Holds taken by relayed requests, by gateway id, until the client's answer is delivered
    /// (same isolate: the session's Durable Object). Weak: a finished exchange frees its hold.
    static HOLDS: RefCell<HashMap<String, Weak<Hold>>> = RefCell::new(HashMap::new());
}

/// Registers that the request relayed as `gateway_id` holds `hold` until answered.
fn hold_until_answered(gateway_id: &str, hold: &Rc<Hold>) {
    hold.take();
    HOLDS.with(|m| {
        let mut m = m.borrow_mut();
        m.retain(|_, h| h.strong_count() > 0);
        m.insert(gateway_id.to_string(), Rc::downgrade(hold));
    });
}

/// The client answered `gateway_id`: its exchange's idle deadline runs again.
fn answered(gateway_id: &str) {
    if let Some(h) = HOLDS
        .with(|m| m.borrow_mut().remove(gateway_id))
        .and_then(|w| w.upgrade())
    {
        h.release();
    }
}

impl ServerRequests for Router {
    fn route(&self, mut req: Value) -> Result<Value, Value> {
        let (Some(caps), Some(book), Some(session)) = (&self.client_caps, &self.book, &self.replier.session) else {
            return Err(refusal(&req));
        };
        if !client_can_serve(caps, &req) {
            return Err(refusal(&req));
        }
        let gateway_id = new_gateway_id();
        let entry = Outstanding {
            slug: self.replier.slug.clone(),
            session: session.clone(),
            upstream_id: req["id"].clone(),
        };
        book.remember(&gateway_id, &entry);
        if let Some(h) = &self.hold {
            hold_until_answered(&gateway_id, h);
        }
        req["id"] = json!(gateway_id);
        Ok(req)
    }

    fn answer(&self, reply: Value) -> LocalBoxFuture<'static, ()> {
        let r = self.replier.clone();
        Box::pin(async move { r.send(&reply).await })
    }
}

/// Releases the hold of an answered request when dropped (after its answer went upstream, or
/// on any way out).
struct Released(Option<String>);

impl Drop for Released {
    fn drop(&mut self) {
        if let Some(gid) = &self.0 {
            answered(gid);
        }
    }
}

/// A client's response: the entry it answers, with the message rewritten to the upstream's id.
/// `None` for an id the gateway never issued or that was answered already.
pub fn claim(book: &dyn OutstandingBook, body: &Value) -> Option<(Outstanding, Value)> {
    let gid = body.get("id")?.as_str()?;
    if !gid.starts_with(ID_PREFIX) {
        return None;
    }
    let o = book.take(gid)?;
    let mut msg = body.clone();
    msg["id"] = o.upstream_id.clone();
    Some((o, msg))
}

/// A legacy client's response POST: handed to the exchange waiting for it in this session
/// (input rounds of a modern upstream, `mrtr`), or sent to the upstream session that asked,
/// under the upstream's own id. 202 once routed; 400 for an id the gateway never issued, or
/// one already answered.
pub async fn deliver(
    svc: &Services<'_>,
    principal: &Principal,
    book: &dyn OutstandingBook,
    body: &Value,
) -> HttpResponse {
    if let Some(gid) = body.get("id").and_then(Value::as_str) {
        if gid.starts_with(ID_PREFIX) && mrtr::fulfil(gid, body.clone()) {
            return HttpResponse::new(202);
        }
    }
    let Some((o, msg)) = claim(book, body) else {
        let e = RpcError::new(codes::INVALID_REQUEST, "no outstanding request has this id", 400);
        return crate::gateway::error::mcp_error_response(None, &super::GatewayError::from(e));
    };
    // Whatever happens next, the exchange that asked stops waiting for this client.
    let _release = Released(body.get("id").and_then(Value::as_str).map(str::to_string));
    // The server may have gone, or the caller lost access to it since: then nobody is asked.
    let server = match svc.registry.get_server(&o.slug).await {
        // Only legacy clients answer here: take the server as their era sees it.
        Ok(Some(s)) => s.for_client(crate::mcp::version::Era::Legacy),
        _ => return HttpResponse::new(202),
    };
    let Some(permit) = policy::authorize_server(principal, &server) else {
        return HttpResponse::new(202);
    };
    match Upstream::open(svc, &permit).await {
        Ok(up) => {
            if let Err(e) = up.post_legacy(&msg, Some(&o.session)).await {
                tracing::warn!(upstream = %o.slug, error = %e, "relaying a client's response failed");
            }
        }
        Err(e) => tracing::warn!(upstream = %o.slug, error = ?e, "relaying a client's response failed"),
    }
    HttpResponse::new(202)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Book(RefCell<BTreeMap<String, Outstanding>>);
    impl OutstandingBook for Book {
        fn remember(&self, gateway_id: &str, o: &Outstanding) {
            self.0.borrow_mut().insert(gateway_id.into(), o.clone());
        }
        fn take(&self, gateway_id: &str) -> Option<Outstanding> {
            self.0.borrow_mut().remove(gateway_id)
        }
    }

    struct NoHttp;
    #[async_trait::async_trait(?Send)]
    impl HttpClient for NoHttp {
        async fn send(&self, _: super::super::upstream::OutboundRequest) -> Result<HttpResponse, UpstreamError> {
            Err(UpstreamError::Unreachable("test".into()))
        }
    }

    fn router(caps: Option<Value>, book: Rc<Book>) -> Router {
        Router {
            client_caps: caps,
            book: Some(book as Rc<dyn OutstandingBook>),
            replier: Rc::new(Replier {
                permit: crate::policy::auth::catalog_permit(&crate::store::ServerRecord::default(), None),
                hooks: Rc::new(crate::context::NoHooks),
                http: Rc::new(NoHttp),
                url: "http://up.test/mcp".into(),
                slug: "up".into(),
                timeout_ms: 1000,
                total_ms: 1000,
                listen_idle_ms: 1000,
                headers: Headers::new(),
                session: Some(UpstreamSession {
                    id: Some("sess".into()),
                    protocol_version: "2025-11-25".into(),
                }),
            }),
            hold: None,
        }
    }

    fn req(id: Value, method: &str, params: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
    }

    #[test]
    fn capabilities_decide_what_a_client_is_asked() {
        let caps = json!({"sampling": {}, "elicitation": {}, "roots": {"listChanged": true}});
        assert!(client_can_serve(
            &caps,
            &req(json!(1), "sampling/createMessage", json!({}))
        ));
        assert!(!client_can_serve(
            &caps,
            &req(json!(1), "sampling/createMessage", json!({"tools": []}))
        ));
        assert!(client_can_serve(
            &caps,
            &req(json!(1), "elicitation/create", json!({"mode": "form"}))
        ));
        assert!(!client_can_serve(
            &caps,
            &req(json!(1), "elicitation/create", json!({"mode": "url"}))
        ));
        assert!(client_can_serve(
            &json!({"elicitation": {"url": {}}}),
            &req(json!(1), "elicitation/create", json!({"mode": "url"}))
        ));
        assert!(!client_can_serve(
            &json!({"elicitation": {"url": {}}}),
            &req(json!(1), "elicitation/create", json!({}))
        ));
        assert!(client_can_serve(&caps, &req(json!(1), "roots/list", json!({}))));
        assert!(client_can_serve(&json!({}), &req(json!(1), "ping", json!({}))));
        assert!(!client_can_serve(&json!({}), &req(json!(1), "roots/list", json!({}))));
        assert!(!client_can_serve(&caps, &req(json!(1), "tools/call", json!({}))));
    }

    #[test]
    fn relayed_requests_get_gateway_ids_answered_once() {
        let book = Rc::new(Book::default());
        let r = router(Some(json!({"sampling": {}})), book.clone());
        let out = r.route(req(json!(0), "sampling/createMessage", json!({}))).unwrap();
        let gid = out["id"].as_str().unwrap().to_string();
        assert!(gid.starts_with(ID_PREFIX) && gid.len() > 20);
        let again = r.route(req(json!(0), "sampling/createMessage", json!({}))).unwrap();
        assert_ne!(
            again["id"], out["id"],
            "the same upstream id twice still gets distinct ids"
        );
        let answer = json!({"jsonrpc": "2.0", "id": gid, "result": {"model": "m"}});
        let (o, msg) = claim(&*book, &answer).unwrap();
        assert_eq!(o.upstream_id, json!(0));
        assert_eq!(o.session.id.as_deref(), Some("sess"));
        assert_eq!(msg["id"], json!(0));
        assert_eq!(msg["result"], json!({"model": "m"}));
        assert!(claim(&*book, &answer).is_none(), "answered once");
        assert!(claim(&*book, &json!({"jsonrpc": "2.0", "id": 0, "result": {}})).is_none());
        assert!(claim(&*book, &json!({"jsonrpc": "2.0", "id": "s2c-forged", "result": {}})).is_none());
    }

    #[test]
    fn undeclared_or_stateless_clients_are_refused_on_their_behalf() {
        let book = Rc::new(Book::default());
        let refused = router(Some(json!({})), book.clone())
            .route(req(json!(3), "elicitation/create", json!({})))
            .unwrap_err();
        assert_eq!(refused["id"], json!(3));
        assert_eq!(refused["error"]["code"], json!(-32601));
        let stateless = router(None, book.clone())
            .route(req(json!("a"), "sampling/createMessage", json!({})))
            .unwrap_err();
        assert_eq!(stateless["id"], json!("a"));
        assert!(book.0.borrow().is_empty(), "nothing remembered for refused requests");
    }

    #[test]
    fn a_relayed_request_holds_its_exchange_until_answered() {
        let hold = Rc::new(Hold::default());
        let r = Router {
            hold: Some(hold.clone()),
            ..router(Some(json!({"elicitation": {}})), Rc::new(Book::default()))
        };
        let asked = r
            .route(json!({"jsonrpc": "2.0", "id": 3, "method": "elicitation/create", "params": {}}))
            .unwrap();
        assert!(hold.active(), "waiting for the client");
        // Refused requests (no capability) are answered at once: no hold.
        assert!(r
            .route(json!({"jsonrpc": "2.0", "id": 4, "method": "sampling/createMessage"}))
            .is_err());
        drop(Released(asked["id"].as_str().map(str::to_string)));
        assert!(!hold.active(), "answered");
    }
}
