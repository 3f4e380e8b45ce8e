//! Relaying an upstream SSE stream to the client as it arrives: each JSON-RPC message is
//! translated on the way, event ids are re-minted (and logged) for resumable legacy sessions,
//! and a stream that ends without the awaited response ends with a JSON-RPC error instead of
//! leaving the client hanging. Requests the upstream sends on the stream (server→client
//! requests) go through the stream's `ServerRequests` policy (`s2c.rs`). A request's relay
//! reports when its reader abandons it before the response (the client cancelled), and can be
//! aborted (the client asked to cancel).
use std::rc::Rc;

use futures_util::future::LocalBoxFuture;
use futures_util::stream::{AbortRegistration, Abortable};
use futures_util::StreamExt;
use serde_json::Value;

use crate::http::ByteStream;
use crate::mcp::jsonrpc::{self, RequestId};
use crate::mcp::sse;

use super::upstream::UpstreamError;
use super::GatewayError;

/// Receives every event the gateway sends on a resumable stream (the session's event log).
pub trait EventLog {
    fn append(&self, stream: u64, seq: u64, data: &str);
    /// Takes over a request's relayed stream so that it runs to its end whether or not its
    /// client stays connected, and returns what the client reads (see `tail`). By default the
    /// client's connection drives the relay.
    fn detach(&self, _stream: u64, relayed: ByteStream) -> ByteStream {
        relayed
    }
}

/// A message transformation; `None` drops the message.
pub type Transform = Box<dyn FnMut(Value) -> Option<Value>>;

/// What a relay does with a request the upstream sends on the stream.
pub trait ServerRequests {
    /// `Ok`: relay this (re-identified) request to the client; `Err`: answer the upstream with
    /// this response instead, on the client's behalf.
    fn route(&self, request: Value) -> Result<Value, Value>;
    /// Sends an answer to the upstream.
    fn answer(&self, reply: Value) -> LocalBoxFuture<'static, ()>;
}

/// Options of one relayed stream.
pub struct RelayOptions {
    /// The request whose response ends the stream (`None` for a GET stream).
    pub awaited: Option<RequestId>,
    pub upstream_slug: String,
    pub transform: Transform,
    /// `(stream number, log)`: event ids become `"{stream}-{seq}"` and each event is logged.
    pub log: Option<(u64, Rc<dyn EventLog>)>,
    /// How server→client requests are handled; `None` drops them (streams the gateway opened
    /// without client capabilities, where an upstream must not send any).
    pub server_requests: Option<Rc<dyn ServerRequests>>,
    /// Called if the relay is dropped while the upstream is still working on the awaited
    /// request (its client went away: a cancellation).
    pub on_abandon: Option<Box<dyn FnOnce()>>,
    /// Aborts the upstream exchange: the stream then ends without a response (the client
    /// cancelled the request, and a cancelled request gets none).
    pub abort: Option<AbortRegistration>,
    /// Whether a logged request stream is handed to the log to run on its own (`EventLog::detach`);
    /// off for streams that are one part of a larger exchange.
    pub detach: bool,
}

impl RelayOptions {
    /// A relay with no log and no cancellation handling.
    pub fn new(awaited: Option<RequestId>, upstream_slug: &str, transform: Transform) -> Self {
        Self {
            awaited,
            upstream_slug: upstream_slug.to_string(),
            transform,
            log: None,
            server_requests: None,
            on_abandon: None,
            abort: None,
            detach: true,
        }
    }
}

struct State {
    upstream: Option<Abortable<ByteStream>>,
    parser: sse::Parser,
    opts: RelayOptions,
    seq: u64,
    answered: bool,
    done: bool,
    /// Answers owed to the upstream, sent before the next read.
    replies: Vec<Value>,
}

impl State {
    fn emit(&mut self, msg: Value, out: &mut String) {
        let msg = if super::s2c::is_request(&msg) {
            match &self.opts.server_requests {
                Some(s) => match s.route(msg) {
                    Ok(m) => m,
                    Err(reply) => {
                        self.replies.push(reply);
                        return;
                    }
                },
                None => {
                    tracing::warn!(upstream = %self.opts.upstream_slug, "server→client request on a stream without a client");
                    return;
                }
            }
        } else {
            msg
        };
        if let Some(id) = &self.opts.awaited {
            if jsonrpc::is_response_to(&msg, id) {
                self.answered = true;
            }
        }
        let Some(msg) = (self.opts.transform)(msg) else { return };
        let data = msg.to_string();
        let mut ev = sse::Event::message(data);
        if let Some((stream, log)) = &self.opts.log {
            self.seq += 1;
            log.append(*stream, self.seq, &ev.data);
            ev.id = Some(format!("{stream}-{}", self.seq));
        }
        out.push_str(&ev.encode());
    }

    fn handle(&mut self, events: Vec<sse::Event>, out: &mut String) {
        for ev in events {
            if ev.data.trim().is_empty() {
                continue; // priming / keep-alive events carry nothing to relay
            }
            // Non-JSON data from an upstream is dropped: the client only ever sees JSON-RPC.
            if let Ok(v) = serde_json::from_str::<Value>(&ev.data) {
                self.emit(v, out);
            }
        }
    }

    fn finish(&mut self, cause: Option<UpstreamError>, aborted: bool, out: &mut String) {
        self.done = true;
        if aborted {
            return;
        }
        if let Some(ev) = self.parser.finish() {
            self.handle(vec![ev], out);
        }
        if let (Some(id), false) = (self.opts.awaited.clone(), self.answered) {
            // The same error, `data: {upstream, reason}` included, as a failure before the stream.
            let cause = cause.unwrap_or_else(|| UpstreamError::Garbage("stream ended without a response".into()));
            let err = crate::gateway::error::to_rpc(&GatewayError::upstream(&self.opts.upstream_slug, cause));
            self.emit(jsonrpc::error_response(Some(&id), &err), out);
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        if !self.done && !self.answered {
            if let Some(hook) = self.opts.on_abandon.take() {
                hook();
            }
        }
    }
}

/// Turns an upstream SSE body into the client's SSE body.
pub fn relay(upstream: ByteStream, mut opts: RelayOptions) -> ByteStream {
    let abort = opts
        .abort
        .take()
        .unwrap_or_else(|| futures_util::stream::AbortHandle::new_pair().1);
    let detach = match (&opts.log, &opts.awaited) {
        (Some((stream, log)), Some(_)) if opts.detach => Some((*stream, log.clone())),
        _ => None,
    };
    let st = State {
        upstream: Some(Abortable::new(upstream, abort)),
        parser: sse::Parser::new(),
        opts,
        seq: 0,
        answered: false,
        done: false,
        replies: Vec::new(),
    };
    let relayed = futures_util::stream::unfold(st, |mut st| async move {
        loop {
            // Answers owed upstream go first, even when the stream is over.
            if let Some(s) = st.opts.server_requests.clone() {
                for reply in std::mem::take(&mut st.replies) {
                    s.answer(reply).await;
                }
            }
            if st.done {
                return None;
            }
            let mut out = String::new();
            let next = match st.upstream.as_mut() {
                Some(s) => s.next().await,
                None => None,
            };
            match next {
                Some(Ok(chunk)) => match st.parser.push(&chunk) {
                    Ok(events) => st.handle(events, &mut out),
                    Err(e) => {
                        st.upstream = None;
                        st.finish(Some(UpstreamError::Garbage(e)), false, &mut out);
                    }
                },
                Some(Err(e)) => {
                    st.upstream = None;
                    st.finish(Some(UpstreamError::from_stream(e)), false, &mut out);
                }
                None => {
                    let aborted = st.upstream.take().is_some_and(|u| u.is_aborted());
                    st.finish(None, aborted, &mut out);
                }
            }
            // Stop reading upstream once the awaited response went out: the exchange is over.
            if st.answered && st.opts.awaited.is_some() {
                st.upstream = None;
                st.done = true;
            }
            if !out.is_empty() {
                return Some((Ok(out.into_bytes()), st));
            }
        }
    })
    .boxed_local();
    match detach {
        Some((stream, log)) => primed(stream, log.detach(stream, relayed)),
        None => relayed,
    }
}

/// A resumable request stream starts with a priming event: an id and no data (2025-11-25,
/// transports: resumability), so a client that loses the stream before the first message can
/// still resume it. Its id names the position before the first logged event (`{stream}-0`).
fn primed(stream: u64, rest: ByteStream) -> ByteStream {
    let priming = sse::Event {
        id: Some(format!("{stream}-0")),
        ..sse::Event::message("")
    };
    futures_util::stream::once(async move { Ok(priming.encode().into_bytes()) })
        .chain(rest)
        .boxed_local()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use serde_json::json;
    use std::cell::RefCell;

    fn chunks(parts: &[&str]) -> ByteStream {
        let v: Vec<Result<Vec<u8>, String>> = parts.iter().map(|p| Ok(p.as_bytes().to_vec())).collect();
        stream::iter(v).boxed_local()
    }

    fn collect(s: ByteStream) -> Vec<Value> {
        sse::json_messages(&futures_executor::block_on(s.map(|c| c.unwrap()).concat()))
    }

    #[derive(Default)]
    struct Log(RefCell<Vec<(u64, u64, String)>>);
    impl EventLog for Log {
        fn append(&self, stream: u64, seq: u64, data: &str) {
            self.0.borrow_mut().push((stream, seq, data.into()));
        }
    }

    #[test]
    fn relays_progress_then_result_and_stops() {
        let up = chunks(&[
            "id: x\ndata:\n\n",
            "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n",
            "data: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"content\":[]}}\n\n",
            "data: {\"jsonrpc\":\"2.0\",\"method\":\"late\"}\n\n",
        ]);
        let log = Rc::new(Log::default());
        let out = relay(
            up,
            RelayOptions {
                log: Some((3, log.clone() as Rc<dyn EventLog>)),
                ..RelayOptions::new(
                    Some(json!(5)),
                    "demo",
                    Box::new(|mut v| {
                        v["seen"] = json!(true);
                        Some(v)
                    }),
                )
            },
        );
        let msgs = collect(out);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0]["method"], "notifications/progress");
        assert_eq!(msgs[1]["id"], 5);
        assert!(msgs.iter().all(|m| m["seen"] == true));
        let logged = log.0.borrow();
        assert_eq!(
            logged.iter().map(|l| (l.0, l.1)).collect::<Vec<_>>(),
            vec![(3, 1), (3, 2)]
        );
    }

    #[test]
    fn a_logged_request_stream_starts_with_a_priming_event() {
        let up = chunks(&["data: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}\n\n"]);
        let log = Rc::new(Log::default());
        let out = relay(
            up,
            RelayOptions {
                log: Some((9, log.clone() as Rc<dyn EventLog>)),
                ..RelayOptions::new(Some(json!(5)), "demo", Box::new(Some))
            },
        );
        let text = String::from_utf8(futures_executor::block_on(out.map(|c| c.unwrap()).concat())).unwrap();
        assert!(text.starts_with("id: 9-0\ndata: \n\n"), "{text}");
        assert!(text.contains("id: 9-1\n"), "{text}");
        assert_eq!(log.0.borrow().len(), 1, "the priming event is not logged");
        // Streams that are not resumable (no log) are not primed.
        let up = chunks(&["data: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}\n\n"]);
        let out = relay(up, RelayOptions::new(Some(json!(5)), "demo", Box::new(Some)));
        let text = String::from_utf8(futures_executor::block_on(out.map(|c| c.unwrap()).concat())).unwrap();
        assert!(text.starts_with("data: "), "{text}");
    }

    /// Relays requests re-identified, answers the rest upstream (recorded here).
    struct Policy(RefCell<Vec<Value>>);
    impl ServerRequests for Policy {
        fn route(&self, mut request: Value) -> Result<Value, Value> {
            if request["method"] == "roots/list" {
                return Err(json!({"id": request["id"], "error": {"code": -32601}}));
            }
            request["id"] = json!("gw-1");
            Ok(request)
        }
        fn answer(&self, reply: Value) -> LocalBoxFuture<'static, ()> {
            self.0.borrow_mut().push(reply);
            Box::pin(async {})
        }
    }

    #[test]
    fn server_requests_follow_the_stream_policy() {
        let up = chunks(&[
            "data: {\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"sampling/createMessage\",\"params\":{}}\n\n",
            "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"roots/list\"}\n\n",
            "data: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}\n\n",
        ]);
        let policy = Rc::new(Policy(RefCell::new(Vec::new())));
        let opts = RelayOptions {
            server_requests: Some(policy.clone() as Rc<dyn ServerRequests>),
            ..RelayOptions::new(Some(json!(5)), "up", Box::new(Some))
        };
        let msgs = collect(relay(up, opts));
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0]["id"], "gw-1");
        assert_eq!(msgs[0]["method"], "sampling/createMessage");
        assert_eq!(msgs[1]["id"], 5);
        assert_eq!(*policy.0.borrow(), vec![json!({"id": 1, "error": {"code": -32601}})]);
        // Without a policy, requests are dropped, never passed on with the upstream's id.
        let up = chunks(&["data: {\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"roots/list\"}\n\n"]);
        let opts = RelayOptions::new(None, "up", Box::new(Some));
        assert!(collect(relay(up, opts)).is_empty());
    }

    #[test]
    fn missing_response_becomes_an_error_naming_the_upstream() {
        let up = chunks(&["data: not json\n\n"]);
        let opts = RelayOptions::new(Some(json!("a")), "flaky", Box::new(Some));
        let msgs = collect(relay(up, opts));
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0]["id"], "a");
        assert!(msgs[0]["error"]["message"].as_str().unwrap().contains("flaky"));
    }

    #[test]
    fn abandoned_and_aborted_requests() {
        use futures_util::stream::AbortHandle;
        // Dropped before the response: the abandon hook runs (once).
        let hit = Rc::new(RefCell::new(0));
        let h = hit.clone();
        let pending = futures_util::stream::pending::<Result<Vec<u8>, String>>().boxed_local();
        let opts = RelayOptions {
            on_abandon: Some(Box::new(move || *h.borrow_mut() += 1)),
            ..RelayOptions::new(Some(json!(1)), "up", Box::new(Some))
        };
        drop(relay(pending, opts));
        assert_eq!(*hit.borrow(), 1);
        // Answered: no hook.
        let h = hit.clone();
        let up = chunks(&["data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n"]);
        let opts = RelayOptions {
            on_abandon: Some(Box::new(move || *h.borrow_mut() += 1)),
            ..RelayOptions::new(Some(json!(1)), "up", Box::new(Some))
        };
        assert_eq!(collect(relay(up, opts)).len(), 1);
        assert_eq!(*hit.borrow(), 1);
        // Aborted: the stream ends with no response and no error.
        let (handle, reg) = AbortHandle::new_pair();
        let pending = futures_util::stream::pending::<Result<Vec<u8>, String>>().boxed_local();
        let opts = RelayOptions {
            abort: Some(reg),
            ..RelayOptions::new(Some(json!(1)), "up", Box::new(Some))
        };
        handle.abort();
        assert!(collect(relay(pending, opts)).is_empty());
    }
}
