//! Native tests of the gateway core end to end: admin registration, the modern and legacy
//! paths, era translation and failure handling, against an in-process upstream.
//!
//! `FakeUpstream` is a hand-written stand-in used only here, because these tests run without a
//! network; the integration tests in `tests/` drive the built Worker against real MCP servers.

mod approvals;
mod events;
mod guardrails;
mod routes;
mod snapshot;

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use async_trait::async_trait;
use futures_executor::block_on;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::config::Config;
use crate::context::Services;
use crate::context::{Call, CallHooks};
use crate::gateway::endpoint::{self, Routed};
use crate::gateway::relay::EventLog;
use crate::gateway::session::{self, After, ReplayLog};
use crate::gateway::upstream::{HttpClient, OutboundRequest, UpstreamError};
use crate::http::{Body, Headers, HttpRequest, HttpResponse, Method};
use crate::mcp::error::RpcError;
use crate::mcp::sse;
use crate::observe::{Event, EventSink, Outcome};
use crate::store::limits_memory::{MemoryApprovals, MemoryCounters};
use crate::store::memory::MemoryStore;
use crate::store::{ApiKeyRecord, ApiKeys};

/// A legacy-era (2025-11-25) upstream with sessions: echo, a tool that streams progress, a tool
/// that fails (`isError`) and one whose exchange times out (the deadline's error, as the
/// platform's bounded client reports it).
#[derive(Default)]
struct FakeUpstream {
    sessions: RefCell<HashSet<String>>,
    seen_headers: RefCell<Vec<Headers>>,
    /// Every message received, as sent.
    seen_bodies: RefCell<Vec<Value>>,
    /// `method` (and `name`, for calls) of every message received.
    seen_calls: RefCell<Vec<String>>,
    down: RefCell<bool>,
    counter: RefCell<u32>,
}

impl FakeUpstream {
    fn drop_sessions(&self) {
        self.sessions.borrow_mut().clear();
    }
}

#[async_trait(?Send)]
impl HttpClient for FakeUpstream {
    async fn send(&self, req: OutboundRequest) -> Result<HttpResponse, UpstreamError> {
        if *self.down.borrow() {
            return Err(UpstreamError::Unreachable("connection refused".into()));
        }
        self.seen_headers.borrow_mut().push(req.headers.clone());
        let sid = req.headers.get("mcp-session-id").map(str::to_string);
        if req.method == Method::Delete {
            return Ok(HttpResponse::new(200));
        }
        let msg: Value = serde_json::from_slice(req.body.as_deref().unwrap_or(b"null")).unwrap();
        self.seen_bodies.borrow_mut().push(msg.clone());
        let method = msg["method"].as_str().unwrap_or("");
        let named = msg["params"]["name"]
            .as_str()
            .map(|n| format!(" {n}"))
            .unwrap_or_default();
        self.seen_calls.borrow_mut().push(format!("{method}{named}"));
        if method == "initialize" {
            *self.counter.borrow_mut() += 1;
            let id = format!("s{}", self.counter.borrow());
            self.sessions.borrow_mut().insert(id.clone());
            let version = msg["params"]["protocolVersion"].clone();
            let result = json!({"protocolVersion": version, "capabilities": {"tools": {}, "resources": {}}, "serverInfo": {"name": "fake", "version": "1"}});
            return Ok(
                HttpResponse::json(200, &json!({"jsonrpc":"2.0","id":msg["id"],"result":result}))
                    .with_header("mcp-session-id", id),
            );
        }
        // A legacy server refuses a modern probe (no session).
        let Some(sid) = sid else {
            return Ok(HttpResponse::json(
                400,
                &json!({"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Bad Request: Server not initialized"}}),
            ));
        };
        if !self.sessions.borrow().contains(&sid) {
            return Ok(HttpResponse::new(404));
        }
        if msg.get("id").is_none() {
            return Ok(HttpResponse::new(202));
        }
        let id = msg["id"].clone();
        match method {
            "tools/list" => Ok(HttpResponse::json(
                200,
                &json!({"jsonrpc":"2.0","id":id,"result":{"tools":[
                {"name":"echo","description":"Echo","inputSchema":{"type":"object","properties":{"message":{"type":"string"}}}},
                {"name":"slow","inputSchema":{"type":"object"}},
                {"name":"fail","inputSchema":{"type":"object"}},
                {"name":"stall","inputSchema":{"type":"object"}},
                {"name":"cutoff","inputSchema":{"type":"object"}}]}}),
            )),
            "resources/list" => Ok(HttpResponse::json(
                200,
                &json!({"jsonrpc":"2.0","id":id,"result":{"resources":[{"uri":"demo://a","name":"a"}]}}),
            )),
            "tools/call" if msg["params"]["name"] == "fail" => Ok(HttpResponse::json(
                200,
                &json!({"jsonrpc":"2.0","id":id,"result":{"content":[{"type":"text","text":"no"}],"isError":true}}),
            )),
            "tools/call" if msg["params"]["name"] == "stall" => Err(UpstreamError::Timeout(1000)),
            // A stream whose idle deadline passes after a progress event (as the bounded client
            // ends it).
            "tools/call" if msg["params"]["name"] == "cutoff" => {
                let token = msg["params"]["_meta"]["progressToken"].clone();
                let progress = json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":token,"progress":1}});
                let chunks: Vec<Result<Vec<u8>, String>> = vec![
                    Ok(sse::Event::message(progress.to_string()).encode().into_bytes()),
                    Err(format!("{}1000 ms", crate::outbound::deadline::TIMEOUT_PREFIX)),
                ];
                Ok(HttpResponse::sse(futures_util::stream::iter(chunks).boxed_local()))
            }
            "tools/call" if msg["params"]["name"] == "slow" => {
                let token = msg["params"]["_meta"]["progressToken"].clone();
                let events = vec![
                    sse::Event { id: Some("p".into()), ..Default::default() }.encode(),
                    sse::Event::message(json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":token,"progress":1}}).to_string()).encode(),
                    sse::Event::message(json!({"jsonrpc":"2.0","id":id,"result":{"content":[{"type":"text","text":"done"}]}}).to_string()).encode(),
                ];
                let chunks: Vec<Result<Vec<u8>, String>> = events.into_iter().map(|e| Ok(e.into_bytes())).collect();
                Ok(HttpResponse::sse(futures_util::stream::iter(chunks).boxed_local()))
            }
            "tools/call" => {
                let text = format!("echo: {}", msg["params"]["arguments"]["message"].as_str().unwrap_or(""));
                Ok(HttpResponse::json(
                    200,
                    &json!({"jsonrpc":"2.0","id":id,"result":{"content":[{"type":"text","text":text}]}}),
                ))
            }
            _ => Ok(HttpResponse::json(
                200,
                &json!({"jsonrpc":"2.0","id":id,"error":{"code":-32601,"message":"Method not found"}}),
            )),
        }
    }
}

/// Pipeline hooks that refuse calls whose `message` argument is `forbidden` and mark every
/// answer: what a policy would do.
#[derive(Default)]
struct RecordingHooks;

/// Keeps every event emitted (what the platform's sinks would be given).
#[derive(Default)]
pub struct Recorded(pub RefCell<Vec<Event>>);
impl EventSink for Recorded {
    fn emit_shared(&self, e: &Rc<Event>) {
        self.0.borrow_mut().push(Event::clone(e));
    }
}

impl Recorded {
    /// The MCP requests' events (admin writes, such as a fixture's registration, left out).
    pub fn mcp(&self) -> Vec<Event> {
        let all = self.0.borrow();
        all.iter()
            .filter(|e| e.kind == crate::observe::EventKind::Mcp)
            .cloned()
            .collect()
    }
}

impl CallHooks for RecordingHooks {
    fn before_call<'a>(
        &'a self,
        call: &'a Call,
        _: Option<&'a Rc<crate::observe::Probe>>,
    ) -> futures_util::future::LocalBoxFuture<'a, Result<crate::context::Admitted, RpcError>> {
        Box::pin(async move {
            match call.params["arguments"]["message"].as_str() {
                Some("forbidden") => Err(RpcError::new(-32001, "blocked by policy", 200)),
                _ => Ok(crate::context::Admitted {
                    arguments: None,
                    answer: Some(Rc::new(|mut msg: Value| {
                        if let Some(r) = msg.get_mut("result").and_then(Value::as_object_mut) {
                            r.insert("hooked".into(), json!(true));
                        }
                        msg
                    })),
                }),
            }
        })
    }
}

struct Fixture {
    hooks: Rc<RecordingHooks>,
    events: Rc<Recorded>,
    store: MemoryStore,
    counters: MemoryCounters,
    approvals: MemoryApprovals,
    up: FakeUpstream,
    config: Config,
    key: String,
}

impl Fixture {
    fn new() -> Self {
        let store = MemoryStore::with_defaults();
        let key = crate::crypto::new_api_key();
        block_on(store.create_key(&ApiKeyRecord {
            id: "key_a".into(),
            name: "a".into(),
            prefix: key[..12].into(),
            key_hash: crate::crypto::hash_secret(&key),
            created_at: "t".into(),
            last_used_at: None,
            revoked_at: None,
            principal_id: crate::store::DEFAULT_AGENT.into(),
            expires_at: None,
        }))
        .unwrap();
        let config = Config::from_lookup(|k| match k {
            "ADMIN_TOKEN" => Some("root".into()),
            "UPSTREAM_TIMEOUT_MS" => Some("1000".into()),
            // The in-process upstream lives on a private address.
            "ALLOW_PRIVATE_UPSTREAMS" => Some("true".into()),
            "VAULT_KEYS" => Some("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into()),
            _ => None,
        });
        Self {
            hooks: Rc::new(RecordingHooks),
            events: Rc::new(Recorded::default()),
            store,
            counters: MemoryCounters::new(),
            approvals: MemoryApprovals::new(),
            up: FakeUpstream::default(),
            config,
            key,
        }
    }

    fn svc(&self) -> Services<'_> {
        Services {
            registry: &self.store,
            keys: &self.store,
            virtuals: &self.store,
            policies: &self.store,
            directory: &self.store,
            changes: &self.store,
            oauth: &self.store,
            secrets: &self.store,
            usage: &self.store,
            audit: &self.store,
            counters: &self.counters,
            approvals: &self.approvals,
            origin: "https://gateway.test",
            http: &self.up,
            config: &self.config,
            live: None,
            now_ms: 0,
            hooks: self.hooks.clone(),
            events: self.events.clone(),
            probe: None,
            url_elicitation: false,
        }
    }

    fn admin(&self, method: Method, path: &str, body: Value) -> HttpResponse {
        let req = HttpRequest {
            method,
            path: path.into(),
            query: None,
            headers: Headers::new()
                .with("authorization", "Bearer root")
                .with("content-type", "application/json"),
            body: body.to_string().into_bytes(),
        };
        block_on(crate::admin::handle(&self.svc(), &req))
    }

    fn register(&self) {
        let r = self.admin(
            Method::Post,
            "/admin/v1/servers",
            json!({"slug":"fake","name":"Fake","url":"http://up.test/mcp"}),
        );
        assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(r.bytes().unwrap()));
    }

    fn mcp(&self, headers: Headers, body: Value) -> Routed {
        let headers = headers
            .with("authorization", format!("Bearer {}", self.key))
            .with("content-type", "application/json")
            .with("accept", "application/json, text/event-stream");
        let req = HttpRequest {
            method: Method::Post,
            path: "/mcp/fake".into(),
            query: None,
            headers,
            body: body.to_string().into_bytes(),
        };
        block_on(endpoint::handle(
            &self.svc(),
            &req,
            endpoint::Target::Server("fake".into()),
        ))
    }
}

fn modern(method: &str, params: Value) -> (Headers, Value) {
    let mut p = params;
    p["_meta"] = json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"progressToken":"tok"});
    let mut h = Headers::new()
        .with("mcp-protocol-version", "2026-07-28")
        .with("mcp-method", method);
    if let Some(n) = p.get("name").and_then(Value::as_str) {
        h.set("mcp-name", n);
    }
    (h, json!({"jsonrpc":"2.0","id":9,"method":method,"params":p}))
}

fn respond(r: Routed) -> HttpResponse {
    match r {
        Routed::Respond(r) => r,
        Routed::Session { .. } => panic!("expected a direct response"),
    }
}

fn body_messages(resp: HttpResponse) -> Vec<Value> {
    match resp.body {
        Body::Bytes(b) => vec![serde_json::from_slice(&b).unwrap()],
        Body::Stream(s) => sse::json_messages(&block_on(s.map(|c| c.unwrap()).concat())),
        Body::Empty => vec![],
    }
}

#[test]
fn registration_detects_legacy_era_and_stores_catalog() {
    let f = Fixture::new();
    f.register();
    let s = block_on(f.svc().registry.get_server("fake")).unwrap().unwrap();
    assert_eq!(s.era, Some(crate::mcp::version::Era::Legacy));
    let tools = block_on(f.svc().registry.list_tools("fake")).unwrap();
    assert_eq!(
        tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        vec!["cutoff", "echo", "fail", "slow", "stall"]
    );
    let dup = f.admin(
        Method::Post,
        "/admin/v1/servers",
        json!({"slug":"fake","name":"Fake","url":"http://up.test/mcp"}),
    );
    assert_eq!(dup.status, 409);
}

#[test]
fn unreachable_upstream_stores_nothing() {
    let f = Fixture::new();
    *f.up.down.borrow_mut() = true;
    let r = f.admin(
        Method::Post,
        "/admin/v1/servers",
        json!({"slug":"gone","name":"Gone","url":"http://127.0.0.1:9/mcp"}),
    );
    assert_eq!(r.status, 502);
    assert_eq!(r.headers.get("content-type"), Some("application/problem+json"));
    assert!(block_on(f.svc().registry.get_server("gone")).unwrap().is_none());
}

#[test]
fn modern_client_is_served_by_a_legacy_upstream_and_survives_a_dropped_session() {
    let f = Fixture::new();
    f.register();
    let (h, b) = modern("tools/call", json!({"name":"echo","arguments":{"message":"hi"}}));
    let msgs = body_messages(respond(f.mcp(h.clone(), b.clone())));
    assert_eq!(msgs[0]["result"]["content"][0]["text"], "echo: hi");
    assert_eq!(msgs[0]["result"]["resultType"], "complete");
    // The upstream restarts: the pooled session is gone, the gateway re-initializes once.
    f.up.drop_sessions();
    let msgs = body_messages(respond(f.mcp(h, b)));
    assert_eq!(msgs[0]["result"]["content"][0]["text"], "echo: hi");
    // The agent's key never travels upstream.
    assert!(f
        .up
        .seen_headers
        .borrow()
        .iter()
        .all(|h| h.get("authorization").is_none()));
}

#[test]
fn every_call_passes_the_pipeline_hooks() {
    let f = Fixture::new();
    f.register();
    let (h, b) = modern("tools/call", json!({"name":"echo","arguments":{"message":"forbidden"}}));
    let msgs = body_messages(respond(f.mcp(h, b)));
    // Refused before the upstream: the client gets the hook's error under its own id.
    assert_eq!(msgs[0]["id"], 9);
    assert_eq!(msgs[0]["error"]["code"], -32001);
    assert!(
        !f.up.seen_calls.borrow().iter().any(|c| c.starts_with("tools/call")),
        "a refused call reached the upstream: {:?}",
        f.up.seen_calls.borrow()
    );
    let (h, b) = modern("tools/call", json!({"name":"echo","arguments":{"message":"hi"}}));
    let msgs = body_messages(respond(f.mcp(h, b)));
    assert_eq!(msgs[0]["result"]["hooked"], true);
    let (h, b) = modern("tools/call", json!({"name":"slow"}));
    let msgs = body_messages(respond(f.mcp(h, b)));
    assert_eq!(msgs.last().unwrap()["result"]["hooked"], true);
    // The record step: each call's event is emitted once, with the refusal as `denied`.
    let events = f.events.mcp();
    let seen: Vec<(Option<&str>, Option<&str>, &Outcome)> = events
        .iter()
        .map(|e| (e.method.as_deref(), e.tool.as_deref(), &e.outcome.0))
        .collect();
    assert_eq!(
        seen,
        vec![
            (Some("tools/call"), Some("echo"), &Outcome::Denied { code: -32001 }),
            (Some("tools/call"), Some("echo"), &Outcome::Ok),
            (Some("tools/call"), Some("slow"), &Outcome::Ok),
        ]
    );
    assert!(events
        .iter()
        .all(|e| e.server.as_deref() == Some("fake") && e.principal_id == crate::store::DEFAULT_AGENT));
    assert!(
        events[0].upstreams.is_empty(),
        "a refused call has no upstream exchange"
    );
    assert_eq!(events[1].upstreams.len(), 1);
}

#[test]
fn progress_streams_before_the_result() {
    let f = Fixture::new();
    f.register();
    let (h, b) = modern("tools/call", json!({"name":"slow"}));
    let msgs = body_messages(respond(f.mcp(h, b)));
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["method"], "notifications/progress");
    assert_eq!(msgs[1]["result"]["content"][0]["text"], "done");
}

#[test]
fn modern_errors_and_discover() {
    let f = Fixture::new();
    f.register();
    let (h, b) = modern("server/discover", json!({}));
    let r = body_messages(respond(f.mcp(h, b)));
    assert_eq!(r[0]["result"]["capabilities"]["tools"], json!({}));
    let (h, b) = modern("nope/nope", json!({}));
    let r = respond(f.mcp(h, b));
    assert_eq!(r.status, 404);
    *f.up.down.borrow_mut() = true;
    crate::gateway::pool::forget_server("fake");
    let (h, b) = modern("tools/list", json!({}));
    let r = body_messages(respond(f.mcp(h, b)));
    assert_eq!(r[0]["error"]["data"]["upstream"], "fake");
    assert_eq!(r[0]["error"]["data"]["reason"], "unreachable");
}

#[derive(Default)]
struct MemLog(
    RefCell<Vec<(u64, u64, String)>>,
    RefCell<u64>,
    RefCell<std::collections::BTreeMap<String, crate::gateway::s2c::Outstanding>>,
);
impl crate::gateway::s2c::OutstandingBook for MemLog {
    fn remember(&self, gateway_id: &str, o: &crate::gateway::s2c::Outstanding) {
        self.2.borrow_mut().insert(gateway_id.into(), o.clone());
    }
    fn take(&self, gateway_id: &str) -> Option<crate::gateway::s2c::Outstanding> {
        self.2.borrow_mut().remove(gateway_id)
    }
}
impl EventLog for MemLog {
    fn append(&self, stream: u64, seq: u64, data: &str) {
        self.0.borrow_mut().push((stream, seq, data.into()));
    }
}
/// The test keeps the state in memory (`handle` updates it in place): nothing to write.
impl crate::gateway::session::StateWrites for MemLog {
    fn set_log_level(&self, _: Option<&str>) {}
    fn set_upstream(&self, _: &str, _: Option<&crate::gateway::upstream::UpstreamSession>) {}
}
impl ReplayLog for MemLog {
    fn next_stream(&self) -> u64 {
        *self.1.borrow_mut() += 1;
        *self.1.borrow()
    }
    fn replay(&self, stream: u64, after: u64) -> Vec<(u64, String)> {
        self.0
            .borrow()
            .iter()
            .filter(|e| e.0 == stream && e.1 > after)
            .map(|e| (e.1, e.2.clone()))
            .collect()
    }
}

#[test]
fn legacy_session_lifecycle_with_resumable_events() {
    let f = Fixture::new();
    f.register();
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let Routed::Session { session_id, ctx } = f.mcp(Headers::new(), init.clone()) else {
        panic!("initialize goes to a session")
    };
    let req = |h: Headers, body: Value| HttpRequest {
        method: Method::Post,
        path: "/mcp/fake".into(),
        query: None,
        headers: h,
        body: body.to_string().into_bytes(),
    };
    let (st, resp) = block_on(session::initialize(
        &f.svc(),
        &ctx,
        &session_id,
        &req(Headers::new(), init),
    ));
    let mut st = st.unwrap();
    assert_eq!(resp.headers.get("mcp-session-id"), Some(session_id.as_str()));
    assert_eq!(body_messages(resp)[0]["result"]["protocolVersion"], "2025-06-18");
    let log = Rc::new(MemLog::default());
    let call =
        json!({"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"slow","_meta":{"progressToken":1}}});
    let (resp, after) = block_on(session::handle(
        &f.svc(),
        &ctx,
        &mut st,
        &req(Headers::new(), call),
        log.clone(),
    ));
    assert_eq!(after, After::Keep);
    let msgs = body_messages(resp);
    assert_eq!(msgs.len(), 2);
    assert_eq!(log.0.borrow().len(), 2, "both events were logged for resumption");
    let replayed = log.replay(1, 1);
    assert!(replayed[0].1.contains("done"));
    // Wrong protocol version header on the session.
    let ping = json!({"jsonrpc":"2.0","id":2,"method":"ping"});
    let (resp, _) = block_on(session::handle(
        &f.svc(),
        &ctx,
        &mut st,
        &req(Headers::new().with("mcp-protocol-version", "2024-11-05"), ping.clone()),
        log.clone(),
    ));
    assert_eq!(resp.status, 400);
    // Another key cannot use the session.
    let mut other = ctx.clone();
    other.principal.key_id = "key_b".into();
    let (resp, _) = block_on(session::handle(
        &f.svc(),
        &other,
        &mut st,
        &req(Headers::new(), ping),
        log.clone(),
    ));
    assert_eq!(resp.status, 404);
    let del = HttpRequest {
        method: Method::Delete,
        path: "/mcp/fake".into(),
        query: None,
        headers: Headers::new(),
        body: vec![],
    };
    let (_, after) = block_on(session::handle(&f.svc(), &ctx, &mut st, &del, log));
    assert_eq!(after, After::End);
}
