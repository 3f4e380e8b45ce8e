//! Input requests of a 2026-07-28 upstream (`resultType: "input_required"`, the multi
//! round-trip pattern) served to a legacy-era client, which knows only server→client requests:
//! each entry of `inputRequests` goes to the client as a request with a gateway id on the
//! POST's stream, the client's responses (separate POSTs to the same session) are collected,
//! and the original request is retried upstream with `inputResponses` and the echoed
//! `requestState` — until the upstream completes or `MAX_INPUT_ROUNDS` is reached.
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::task::{Poll, Waker};

use futures_util::future::{self, Either, LocalBoxFuture};
use futures_util::StreamExt;
use serde_json::{json, Map, Value};

use crate::http::{Body, ByteStream, HttpResponse};
use crate::mcp::error::{codes, RpcError};
use crate::mcp::jsonrpc::{self, RequestId};
use crate::mcp::sse;

use super::relay::{self, EventLog, RelayOptions, Transform};
use super::s2c::{self, Replier};
use super::upstream::{self, UpstreamError};

/// Requests that may answer `input_required` (2026-07-28, multi round-trip requests).
pub const INPUT_METHODS: &[&str] = &["tools/call", "prompts/get", "resources/read"];
/// Retries of one request before the gateway gives up on an upstream that keeps asking.
pub const MAX_INPUT_ROUNDS: u32 = 8;
/// How long the gateway waits for the client to answer one round of input requests (a person
/// may be filling in a form).
pub const INPUT_WAIT_MS: u64 = 10 * 60 * 1000;
/// Prefix of the gateway's ids for retried upstream requests.
const RETRY_ID_PREFIX: &str = "gw-input-";

struct Slot {
    value: Option<Value>,
    waker: Option<Waker>,
}

thread_local! {
    /// Input requests relayed to clients and not yet answered, by gateway id. A session's
    /// requests all run in its one Durable Object, so the answer arrives in this isolate.
    static WAITING: RefCell<HashMap<String, Rc<RefCell<Slot>>>> = RefCell::new(HashMap::new());
}

/// Hands a client's response to the stream waiting for it; `false` if none is.
pub fn fulfil(gateway_id: &str, response: Value) -> bool {
    let Some(slot) = WAITING.with(|w| w.borrow_mut().remove(gateway_id)) else {
        return false;
    };
    let mut s = slot.borrow_mut();
    s.value = Some(response);
    if let Some(w) = s.waker.take() {
        w.wake();
    }
    true
}

/// Registers a gateway id before its request goes out (so no answer can arrive unclaimed).
fn register(gateway_id: &str) -> Rc<RefCell<Slot>> {
    let slot = Rc::new(RefCell::new(Slot {
        value: None,
        waker: None,
    }));
    WAITING.with(|w| w.borrow_mut().insert(gateway_id.to_string(), slot.clone()));
    slot
}

fn answer(slot: Rc<RefCell<Slot>>) -> impl std::future::Future<Output = Value> {
    future::poll_fn(move |cx| {
        let mut s = slot.borrow_mut();
        match s.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
}

/// What one legacy client's input rounds need.
pub struct InputCtx {
    /// The client's declared capabilities (only requests it can serve are relayed).
    pub client_caps: Value,
    pub sleep: Rc<dyn Fn(u64) -> LocalBoxFuture<'static, ()>>,
    pub log: Option<Rc<dyn EventLog>>,
    pub next_stream: Option<Rc<dyn Fn() -> u64>>,
}

/// One exchange that may need input rounds.
pub struct Run {
    pub ctx: Rc<InputCtx>,
    pub upstream: Rc<Replier>,
    /// The request as sent upstream (modern shape), with the client's id.
    pub wire: Value,
    pub client_id: RequestId,
    /// Era translation and policy filters for messages bound to the client.
    pub make_transform: Rc<dyn Fn() -> Transform>,
}

/// One relayed input request: the upstream's key, the gateway id, the answer's slot.
struct Asked {
    key: String,
    gateway_id: String,
    slot: Rc<RefCell<Slot>>,
}

impl Drop for Asked {
    /// Answered, timed out, or the client went away: the id is no longer awaited.
    fn drop(&mut self) {
        WAITING.with(|w| w.borrow_mut().remove(&self.gateway_id));
    }
}

enum Phase {
    Relay(ByteStream),
    Ask(Value),
    Wait(Vec<Asked>, Value),
    Done,
}

struct State {
    run: Rc<Run>,
    phase: Phase,
    captured: Rc<RefCell<Option<Value>>>,
    round: u32,
}

/// Whether a reply is an `input_required` result.
pub fn is_input_required(v: &Value) -> bool {
    v.pointer("/result/resultType").and_then(Value::as_str) == Some("input_required")
}

/// The client's response stream for an upstream reply that may ask for input.
pub fn stream(run: Run, first: HttpResponse) -> ByteStream {
    let run = Rc::new(run);
    let captured = Rc::new(RefCell::new(None));
    let phase = Phase::Relay(relayed(&run, &captured, to_sse(first), run.wire["id"].clone()));
    let st = State {
        run,
        phase,
        captured,
        round: 0,
    };
    futures_util::stream::unfold(st, |mut st| async move {
        loop {
            match std::mem::replace(&mut st.phase, Phase::Done) {
                Phase::Done => return None,
                Phase::Relay(mut s) => match s.next().await {
                    Some(chunk) => {
                        st.phase = Phase::Relay(s);
                        return Some((chunk, st));
                    }
                    None => match st.captured.borrow_mut().take() {
                        Some(ir) => st.phase = Phase::Ask(ir),
                        None => return None,
                    },
                },
                Phase::Ask(ir) => {
                    st.round += 1;
                    let (out, next) = ask(&st.run, ir, st.round);
                    st.phase = next;
                    return Some((Ok(out.into_bytes()), st));
                }
                Phase::Wait(asked, ir) => {
                    st.phase = match collect(&st.run, asked).await {
                        Ok(answers) => retry(&st, &ir, answers).await,
                        Err(e) => Phase::Relay(error_stream(&st.run, e)),
                    };
                }
            }
        }
    })
    .boxed_local()
}

/// Emits the input requests of one `input_required` result to the client.
fn ask(run: &Run, ir: Value, round: u32) -> (String, Phase) {
    let fail = |e: RpcError| {
        let msg = jsonrpc::error_response(Some(&run.client_id), &e);
        (event(run, &msg), Phase::Done)
    };
    if round > MAX_INPUT_ROUNDS {
        return fail(RpcError::new(
            codes::INTERNAL_ERROR,
            "the upstream kept asking for input",
            200,
        ));
    }
    let requests = ir
        .pointer("/result/inputRequests")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = String::new();
    let mut asked: Vec<Asked> = Vec::new();
    for (key, req) in requests {
        let method = req.get("method").and_then(Value::as_str).unwrap_or("").to_string();
        let mut msg = json!({"jsonrpc": "2.0", "id": 0, "method": method, "params": req.get("params").cloned().unwrap_or(json!({}))});
        if !s2c::client_can_serve(&run.ctx.client_caps, &msg) {
            return fail(RpcError::new(
                codes::INTERNAL_ERROR,
                format!("the upstream asked for {method}, which this client did not declare"),
                200,
            ));
        }
        let gid = s2c::new_gateway_id();
        msg["id"] = json!(gid);
        let slot = register(&gid);
        asked.push(Asked {
            key,
            gateway_id: gid,
            slot,
        });
        out.push_str(&event(run, &msg));
    }
    (out, Phase::Wait(asked, ir))
}

/// Waits (bounded) for the client's answers to one round, keyed as the upstream asked.
async fn collect(run: &Run, asked: Vec<Asked>) -> Result<Map<String, Value>, RpcError> {
    let waits = future::join_all(asked.iter().map(|a| answer(a.slot.clone())));
    let timer = (run.ctx.sleep)(INPUT_WAIT_MS);
    let answers = match future::select(Box::pin(waits), timer).await {
        Either::Left((answers, _)) => answers,
        Either::Right(_) => {
            return Err(RpcError::new(
                codes::INTERNAL_ERROR,
                "the client did not answer the input requests in time",
                200,
            ));
        }
    };
    let mut out = Map::new();
    for (asked, a) in asked.iter().zip(answers) {
        match a.get("result") {
            Some(r) => {
                out.insert(asked.key.clone(), r.clone());
            }
            None => {
                let detail = a.pointer("/error/message").and_then(Value::as_str).unwrap_or("refused");
                return Err(RpcError::new(
                    codes::INTERNAL_ERROR,
                    format!("the client refused an input request: {detail}"),
                    200,
                ));
            }
        }
    }
    Ok(out)
}

/// Retries the original request with the client's answers.
async fn retry(st: &State, ir: &Value, answers: Map<String, Value>) -> Phase {
    let run = &st.run;
    let mut wire = run.wire.clone();
    let retry_id = json!(format!(
        "{RETRY_ID_PREFIX}{}-{}",
        st.round,
        crate::crypto::random_token::<8>()
    ));
    wire["id"] = retry_id.clone();
    if !wire.get("params").is_some_and(Value::is_object) {
        wire["params"] = json!({});
    }
    let p = wire["params"].as_object_mut().expect("params is an object");
    p.insert("inputResponses".into(), Value::Object(answers));
    match ir.pointer("/result/requestState") {
        Some(s) => {
            p.insert("requestState".into(), s.clone());
        }
        None => {
            p.remove("requestState");
        }
    }
    match run.upstream.post_modern(&wire).await {
        Ok(resp) if resp.status < 500 => Phase::Relay(relayed(run, &st.captured, to_sse(resp), retry_id)),
        Ok(resp) => Phase::Relay(error_stream(
            run,
            upstream_error(run, UpstreamError::Status(resp.status)),
        )),
        Err(e) => Phase::Relay(error_stream(run, upstream_error(run, e))),
    }
}

fn upstream_error(run: &Run, e: UpstreamError) -> RpcError {
    crate::gateway::error::to_rpc(&super::GatewayError::upstream(&run.upstream.slug, e))
}

/// Relays one upstream reply: notifications pass (translated), an `input_required` answer is
/// captured for the next round, the final answer goes out under the client's id.
fn relayed(run: &Rc<Run>, captured: &Rc<RefCell<Option<Value>>>, body: ByteStream, wire_id: RequestId) -> ByteStream {
    let mut tf = (run.make_transform)();
    let cap = captured.clone();
    let client_id = run.client_id.clone();
    let awaited = wire_id.clone();
    let transform: Transform = Box::new(move |mut m: Value| {
        if jsonrpc::is_response_to(&m, &awaited) {
            if is_input_required(&m) {
                *cap.borrow_mut() = Some(m);
                return None;
            }
            m["id"] = client_id.clone();
        }
        tf(m)
    });
    let log = match (&run.ctx.log, &run.ctx.next_stream) {
        (Some(l), Some(n)) => Some((n(), l.clone())),
        _ => None,
    };
    relay::relay(
        body,
        RelayOptions {
            log,
            // One round of the client's request: the whole exchange is what the client reads.
            detach: false,
            ..RelayOptions::new(Some(wire_id), &run.upstream.slug, transform)
        },
    )
}

fn error_stream(run: &Run, e: RpcError) -> ByteStream {
    let msg = jsonrpc::error_response(Some(&run.client_id), &e);
    futures_util::stream::iter([Ok(event(run, &msg).into_bytes())]).boxed_local()
}

/// One gateway-made event on the client's stream (logged for resumption when the session logs).
fn event(run: &Run, msg: &Value) -> String {
    let data = msg.to_string();
    let mut ev = sse::Event::message(data);
    if let (Some(log), Some(next)) = (&run.ctx.log, &run.ctx.next_stream) {
        let stream = next();
        log.append(stream, 1, &ev.data);
        ev.id = Some(format!("{stream}-1"));
    }
    ev.encode()
}

/// An upstream reply as an SSE byte stream (a JSON body becomes one event).
fn to_sse(resp: HttpResponse) -> ByteStream {
    let is_sse = resp
        .headers
        .get("content-type")
        .is_some_and(|c| c.starts_with("text/event-stream"));
    match resp.body {
        Body::Stream(s) if is_sse => s,
        body => futures_util::stream::once(async move {
            let bytes = upstream::collect(body).await.map_err(|e| e.to_string())?;
            if is_sse {
                return Ok(bytes);
            }
            let mut out = b"data: ".to_vec();
            out.extend(bytes.iter().filter(|b| **b != b'\n' && **b != b'\r'));
            out.extend(b"\n\n");
            Ok(out)
        })
        .boxed_local(),
    }
}
