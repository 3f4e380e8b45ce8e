//! Sending one client message to an upstream and shaping the upstream's answer for the client:
//! JSON or a relayed SSE stream, translated between eras where they differ; a modern upstream's
//! request for input is served to a legacy client in rounds (`mrtr`).
use std::rc::Rc;

use serde_json::Value;

use crate::http::{Body, ByteStream, HttpResponse};
use crate::mcp::error::{codes, RpcError};
use crate::mcp::jsonrpc::{self, RequestId};
use crate::mcp::version::Era;

use futures_util::stream::AbortRegistration;
use futures_util::StreamExt;

use super::ids::{InFlight, Mapped};
use super::mrtr::{self, InputCtx};
use super::pipeline;
use super::relay::{self, EventLog, RelayOptions, ServerRequests, Transform};
use super::s2c::Replier;
use super::translate;
use super::upstream::{self, Upstream, UpstreamError, UpstreamSession};
use crate::outbound::deadline::Hold;

/// One exchange: the message (already in the upstream's era) and what the client expects back.
pub struct Exchange<'m> {
    pub msg: &'m Value,
    /// The request id, `None` for notifications and responses.
    pub id: Option<RequestId>,
    pub method: &'m str,
    pub client_era: Era,
    pub upstream_era: Era,
    /// Event log for resumable legacy streams: `(stream number, log)`.
    pub log: Option<(u64, Rc<dyn EventLog>)>,
    /// Applied to every message after era translation (policy filters, e.g. pinned tools).
    pub post: Option<PostFilter>,
    /// The request's gateway id upstream (`id` is then that id): messages are mapped back to
    /// the client's id space first, and messages of other requests are dropped.
    pub mapped: Option<Mapped>,
    /// Keeps the request cancellable by its client id while its answer is relayed.
    pub in_flight: Option<InFlight>,
    /// How requests the upstream sends on the response stream are handled (legacy upstreams).
    pub server_requests: Option<Rc<dyn ServerRequests>>,
    /// A legacy client's channel for a modern upstream's input requests.
    pub input: Option<Rc<InputCtx>>,
    /// Run if the client abandons a streamed answer (see `RelayOptions::on_abandon`).
    pub on_abandon: Option<Box<dyn FnOnce()>>,
    /// Aborts a streamed answer (see `RelayOptions::abort`).
    pub abort: Option<AbortRegistration>,
    /// Pauses the exchange's idle deadline while a server→client request relayed from its
    /// stream awaits the client (the same hold is given to `server_requests`).
    pub hold: Option<Rc<Hold>>,
}

/// A filter over messages on their way to the client.
pub type PostFilter = Rc<dyn Fn(Value) -> Value>;

/// The per-message translation from the upstream's era to the client's.
fn transform(client: Era, upstream: Era, method: &str) -> Transform {
    let method = method.to_string();
    match (upstream, client) {
        (Era::Legacy, Era::Modern) => Box::new(move |m| Some(translate::response_to_modern(m, &method))),
        (Era::Modern, Era::Legacy) => Box::new(|m: Value| {
            let id = m.get("id").cloned();
            translate::response_to_legacy(m).or_else(|| {
                let err = RpcError::internal("the upstream asked for input, which this protocol version cannot relay");
                Some(jsonrpc::error_response(id.as_ref(), &err))
            })
        }),
        _ => Box::new(Some),
    }
}

/// Everything done to an upstream message on its way to the client: era translation, noting an
/// announced tools change (the next catalog watcher re-syncs; the notification still reaches
/// this client), then the policy filter.
fn client_transform(client: Era, upstream: Era, method: &str, slug: &str, post: Option<PostFilter>) -> Transform {
    let mut era_tf = transform(client, upstream, method);
    let slug = slug.to_string();
    let tf: Transform = Box::new(move |m| {
        if super::live::is_tools_changed(&m) {
            super::live::announce(&slug);
        }
        era_tf(m)
    });
    match post {
        Some(post) => {
            let mut inner = tf;
            Box::new(move |m| inner(m).map(|m| post(m)))
        }
        None => tf,
    }
}

/// Sends the exchange and builds the client's response. Every client message to any upstream
/// passes here, so here the pipeline's hooks run (`pipeline`): a request is refused by
/// `before_call` or sent, and its answer passes `after_result`; the exchange and the answer's
/// outcome are recorded in the request's event (`record`).
pub async fn forward(
    up: &Upstream<'_>,
    session: Option<&UpstreamSession>,
    ex: Exchange<'_>,
) -> Result<HttpResponse, UpstreamError> {
    // Only an agent's permit carries a client's message (the gateway's catalog permit never does).
    if up.permit.principal().is_none() {
        let e = RpcError::new(codes::INVALID_PARAMS, "unknown server", 404);
        return Ok(HttpResponse::json(404, &jsonrpc::error_response(None, &e)));
    }
    let call = up
        .hooks
        .active()
        .then(|| pipeline::call_of(up, ex.id.as_ref(), ex.method, ex.msg))
        .flatten();
    let mut tf = client_transform(ex.client_era, ex.upstream_era, ex.method, up.slug, ex.post.clone());
    if let Some(mapped) = ex.mapped {
        let mut era = tf;
        tf = Box::new(move |m| mapped.inbound(m).and_then(&mut era));
    }
    // The message as it leaves: the client's, unless a hook rewrote its arguments.
    let mut rewritten: Option<Value> = None;
    let mut answer_filter = None;
    if let Some(call) = &call {
        match up.hooks.before_call(call, up.probe.as_ref()).await {
            Err(refusal) => {
                if up.answers_client {
                    if let Some(p) = &up.probe {
                        p.outcome(crate::observe::Outcome::Denied { code: refusal.code });
                    }
                }
                // Answered in the client's id space and era, as any upstream error would be.
                let answer = tf(jsonrpc::error_response(ex.id.as_ref(), &refusal));
                return Ok(json_reply(200, answer));
            }
            Ok(admitted) => {
                if let Some(args) = admitted.arguments {
                    let mut m = ex.msg.clone();
                    if let Some(p) = m.get_mut("params").and_then(Value::as_object_mut) {
                        p.insert("arguments".into(), args);
                    }
                    rewritten = Some(m);
                }
                if let Some(f) = admitted.answer {
                    tf = pipeline::wrap(f.clone(), tf);
                    answer_filter = Some(f);
                }
            }
        }
    }
    let client_msg = rewritten.as_ref().unwrap_or(ex.msg);
    let (traced, wire, exchange) = super::record::exchange(up, client_msg);
    let (up, msg) = (&traced, wire.as_ref().unwrap_or(client_msg));
    tf = exchange.wrap(tf);
    let sent = match ex.upstream_era {
        Era::Legacy => up.post_legacy_held(msg, session, ex.hold.clone()).await,
        Era::Modern => up.post_modern(msg).await,
    };
    let resp = match sent {
        Ok(r) if r.status >= 500 => Err(UpstreamError::Status(r.status)),
        other => other,
    };
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            exchange.failed(&e);
            return Err(e);
        }
    };
    exchange.answered(&resp);
    // Keeps the request cancellable for as long as its answer is being relayed.
    let in_flight = Rc::new(ex.in_flight);
    let registered = in_flight.clone();
    let mut inner = tf;
    tf = Box::new(move |m| {
        let _registered = &registered;
        inner(m)
    });
    let Some(id) = ex.id else {
        exchange.done(Some(resp.status), None);
        // Notifications and client responses: the upstream's acceptance is all there is to say.
        return Ok(if (200..300).contains(&resp.status) {
            HttpResponse::new(202)
        } else {
            HttpResponse::new(resp.status)
        });
    };
    let is_sse = resp
        .headers
        .get("content-type")
        .is_some_and(|c| c.starts_with("text/event-stream"));
    if let Some(input) = ex.input.filter(|_| mrtr::INPUT_METHODS.contains(&ex.method)) {
        if let Some(replier) = Replier::of(up, None) {
            let (client_era, upstream_era, method, slug, post) = (
                ex.client_era,
                ex.upstream_era,
                ex.method.to_string(),
                up.slug.to_string(),
                ex.post.clone(),
            );
            let answer_filter = answer_filter.clone();
            let exchange = exchange.clone();
            let run = mrtr::Run {
                ctx: input,
                upstream: replier,
                wire: msg.clone(),
                client_id: id.clone(),
                make_transform: Rc::new(move || {
                    let tf = client_transform(client_era, upstream_era, &method, &slug, post.clone());
                    let tf = match &answer_filter {
                        Some(f) => pipeline::wrap(f.clone(), tf),
                        None => tf,
                    };
                    exchange.wrap(tf)
                }),
            };
            if is_sse && resp.status == 200 {
                return Ok(HttpResponse::sse(cancellable(
                    mrtr::stream(run, resp),
                    ex.abort,
                    in_flight,
                )));
            }
            let status = resp.status;
            let v = upstream::read_response(resp, &id).await?;
            if mrtr::is_input_required(&v) {
                let rounds = mrtr::stream(run, HttpResponse::json(200, &v));
                return Ok(HttpResponse::sse(cancellable(rounds, ex.abort, in_flight)));
            }
            let status = if (400..500).contains(&status) { status } else { 200 };
            return Ok(json_reply(status, tf(v)));
        }
    }
    if is_sse && resp.status == 200 {
        let Body::Stream(stream) = resp.body else {
            // A buffered SSE body (tests, small replies): parse it whole.
            let v = upstream::read_response(resp, &id).await?;
            return Ok(json_reply(200, tf(v)));
        };
        let opts = RelayOptions {
            log: ex.log,
            server_requests: ex.server_requests,
            on_abandon: ex.on_abandon,
            abort: ex.abort,
            ..RelayOptions::new(Some(id), up.slug, tf)
        };
        return Ok(HttpResponse::sse(relay::relay(stream, opts)));
    }
    let status = resp.status;
    let v = upstream::read_response(resp, &id).await?;
    // A JSON-RPC error the upstream sent with a 4xx keeps its status (e.g. 404 for an unknown
    // method in 2026-07-28); everything else is a plain 200 answer.
    let status = if (400..500).contains(&status) { status } else { 200 };
    Ok(json_reply(status, tf(v)))
}

/// A client-facing stream that ends (dropping the upstream exchanges under it) when `abort`
/// fires, keeping `in_flight` registered while it lives.
fn cancellable(body: ByteStream, abort: Option<AbortRegistration>, in_flight: Rc<Option<InFlight>>) -> ByteStream {
    let Some(abort) = abort else { return body };
    futures_util::stream::Abortable::new(body, abort)
        .map(move |chunk| {
            let _registered = &in_flight;
            chunk
        })
        .boxed_local()
}

fn json_reply(status: u16, v: Option<Value>) -> HttpResponse {
    match v {
        Some(v) => HttpResponse::json(status, &v),
        None => HttpResponse::json(
            200,
            &jsonrpc::error_response(
                None,
                &RpcError::new(codes::INTERNAL_ERROR, "untranslatable upstream reply", 200),
            ),
        ),
    }
}
