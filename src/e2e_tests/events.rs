//! The record step end to end: every MCP request — each endpoint, both eras, refused ones too —
//! produces exactly one event with the right outcome, who, what and upstream exchanges; the
//! trace context reaches the upstream in the header and in `_meta`; no secret is ever in one.
use super::*;
use crate::gateway::record;
use crate::observe::CaptureMode;

const AGENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const AGENT_SPAN: &str = "00f067aa0ba902b7";

fn request(method: Method, path: &str, headers: Headers, body: &[u8]) -> HttpRequest {
    HttpRequest {
        method,
        path: path.into(),
        query: None,
        headers: headers
            .with("content-type", "application/json")
            .with("accept", "application/json, text/event-stream"),
        body: body.to_vec(),
    }
}

impl Fixture {
    /// A request to any MCP path, with the fixture's key unless `headers` has one.
    fn send(&self, method: Method, path: &str, headers: Headers, body: &[u8]) -> Routed {
        let headers = match headers.get("authorization") {
            Some(_) => headers,
            None => headers.with("authorization", format!("Bearer {}", self.key)),
        };
        let target = endpoint::Target::from_path(path).unwrap();
        block_on(endpoint::handle(
            &self.svc(),
            &request(method, path, headers, body),
            target,
        ))
    }

    fn modern_to(&self, path: &str, method: &str, params: Value) -> Vec<Value> {
        let (h, b) = modern(method, params);
        body_messages(respond(self.send(Method::Post, path, h, b.to_string().as_bytes())))
    }

    fn events(&self) -> Vec<Event> {
        self.events.mcp()
    }

    fn last(&self) -> Event {
        self.events.mcp().last().cloned().expect("an event")
    }
}

#[test]
fn each_outcome_is_recorded_once_per_request() {
    let f = Fixture::new();
    f.register();
    let call = |name: &str| {
        f.modern_to(
            "/mcp/fake",
            "tools/call",
            json!({"name": name, "arguments": {"message": "hi"}}),
        )
    };
    let cases: Vec<(Box<dyn Fn()>, Outcome)> = vec![
        (Box::new(|| drop(call("echo"))), Outcome::Ok),
        (Box::new(|| drop(call("fail"))), Outcome::ToolError),
        (Box::new(|| drop(call("nope"))), Outcome::Denied { code: -32602 }),
        (Box::new(|| drop(call("stall"))), Outcome::Timeout),
        // The deadline passes mid-stream: the client gets the gateway's error, the event says why.
        (Box::new(|| drop(call("cutoff"))), Outcome::Timeout),
        (
            Box::new(|| drop(f.modern_to("/mcp/fake", "nope/nope", json!({})))),
            Outcome::RpcError { code: -32601 },
        ),
        // The upstream's own JSON-RPC error.
        (
            Box::new(|| drop(f.modern_to("/mcp/fake", "prompts/list", json!({})))),
            Outcome::RpcError { code: -32601 },
        ),
        (
            Box::new(|| drop(respond(f.send(Method::Post, "/mcp/fake", Headers::new(), b"{not json")))),
            Outcome::RpcError { code: -32700 },
        ),
    ];
    for (n, (run, want)) in cases.iter().enumerate() {
        run();
        let events = f.events();
        assert_eq!(events.len(), n + 1, "exactly one event per request");
        assert_eq!(events[n].outcome.0, *want, "case {n}");
    }
    let events = f.events();
    assert_eq!(events[0].upstreams.len(), 1);
    assert_eq!(events[0].upstreams[0].error, None);
    assert_eq!(events[0].upstreams[0].address, "up.test");
    assert_eq!(events[0].upstreams[0].port, 80);
    assert!(
        events[2].upstreams.is_empty(),
        "a denied call never reaches the upstream"
    );
    assert_eq!(events[3].upstreams[0].error.as_deref(), Some("timeout"));
    assert_eq!(events[4].upstreams[0].error.as_deref(), Some("timeout"));
    // The upstream is down.
    *f.up.down.borrow_mut() = true;
    crate::gateway::pool::forget_server("fake");
    call("echo");
    assert_eq!(
        f.last().outcome.0,
        Outcome::UpstreamError {
            reason: "unreachable".into()
        }
    );
    assert_eq!(f.events().len(), cases.len() + 1);
}

#[test]
fn the_event_says_who_what_and_how_much() {
    let f = Fixture::new();
    f.register();
    let (h, b) = modern("tools/call", json!({"name": "echo", "arguments": {"message": "hi"}}));
    let mut b = b;
    b["params"]["_meta"]["io.modelcontextprotocol/clientInfo"] = json!({"name": "agent-x", "version": "2.1"});
    let body = b.to_string();
    let resp = respond(f.send(
        Method::Post,
        "/mcp/fake",
        h.with("cf-connecting-ip", "203.0.113.7"),
        body.as_bytes(),
    ));
    let out = resp.bytes().unwrap().len() as u64;
    let e = f.last();
    assert_eq!(e.principal_id, crate::store::DEFAULT_AGENT);
    assert_eq!(e.key_id, "key_a");
    assert_eq!(e.auth_kind, Some(crate::observe::AuthKind::ApiKey));
    assert!(!e.org_id.is_empty());
    assert_eq!(e.principal_kind, "agent");
    assert_eq!(e.client_name.as_deref(), Some("agent-x"));
    assert_eq!(e.client_version.as_deref(), Some("2.1"));
    assert_eq!(e.client_address.as_deref(), Some("203.0.113.7"));
    assert_eq!(e.era.as_deref(), Some("modern"));
    assert_eq!(e.protocol_version.as_deref(), Some("2026-07-28"));
    assert_eq!(e.endpoint, "server");
    assert_eq!(e.server.as_deref(), Some("fake"));
    assert_eq!(e.method.as_deref(), Some("tools/call"));
    assert_eq!(e.http_method, "POST");
    assert_eq!(e.jsonrpc_id.as_deref(), Some("9"));
    assert_eq!(e.tool.as_deref(), Some("echo"));
    assert_eq!(e.capture, CaptureMode::Keys);
    assert_eq!(e.arguments, Some(json!(["message"])));
    assert_eq!(e.bytes_in, body.len() as u64);
    assert_eq!(e.bytes_out, out);
    assert!(e.id.starts_with("ev_"));
}

#[test]
fn a_bad_key_is_recorded_with_no_principal() {
    let f = Fixture::new();
    f.register();
    let (h, b) = modern("tools/call", json!({"name": "echo"}));
    let h = h.with("authorization", "Bearer mcpgw_not-a-real-key-canary");
    let r = respond(f.send(Method::Post, "/mcp/fake", h, b.to_string().as_bytes()));
    assert_eq!(r.status, 401);
    let e = f.last();
    assert_eq!(e.outcome.0, Outcome::Denied { code: -32001 });
    assert_eq!(
        (e.principal_id.as_str(), e.org_id.as_str(), e.auth_kind),
        ("", "", None)
    );
    assert!(!serde_json::to_string(&e).unwrap().contains("not-a-real-key-canary"));
    assert_eq!(f.events().len(), 1);
}

#[test]
fn a_client_that_leaves_mid_stream_is_recorded_once_as_cancelled() {
    let f = Fixture::new();
    f.register();
    let (h, b) = modern("tools/call", json!({"name": "slow"}));
    let resp = respond(f.send(Method::Post, "/mcp/fake", h, b.to_string().as_bytes()));
    let Body::Stream(mut s) = resp.body else {
        panic!("a streamed answer")
    };
    let first = block_on(s.next()).unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("notifications/progress"));
    assert!(f.events().is_empty(), "nothing is recorded while the answer streams");
    drop(s);
    let events = f.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome.0, Outcome::Cancelled);
    assert_eq!(events[0].bytes_out, first.len() as u64);
    assert_eq!(events[0].upstreams[0].error.as_deref(), Some("cancelled"));
}

#[test]
fn every_endpoint_records_where_the_request_went() {
    let f = Fixture::new();
    f.register();
    let list = f.modern_to("/mcp", "tools/list", json!({}));
    assert!(list[0]["result"]["tools"].as_array().is_some());
    let e = f.last();
    assert_eq!((e.endpoint.as_str(), e.server.as_deref()), ("all", None));
    assert!(e.upstreams.is_empty(), "lists are served from the catalog");
    assert_eq!(e.outcome.0, Outcome::Ok);
    f.modern_to(
        "/mcp",
        "tools/call",
        json!({"name": "fake__echo", "arguments": {"message": "x"}}),
    );
    let e = f.last();
    assert_eq!(e.endpoint, "all");
    assert_eq!((e.server.as_deref(), e.tool.as_deref()), (Some("fake"), Some("echo")));
    assert_eq!(e.upstreams.len(), 1);
    assert_eq!(e.upstreams[0].server, "fake");
    f.modern_to("/mcp", "tools/call", json!({"name": "fake__nope"}));
    assert_eq!(f.last().outcome.0, Outcome::Denied { code: -32602 });
    let r = f.admin(
        Method::Post,
        "/admin/v1/virtual-servers",
        json!({"slug": "ops", "name": "Ops", "tools": [{"server": "fake", "tool": "echo", "name": "say"}]}),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(r.bytes().unwrap()));
    let out = f.modern_to(
        "/mcp/v/ops",
        "tools/call",
        json!({"name": "say", "arguments": {"message": "v"}}),
    );
    assert_eq!(out[0]["result"]["content"][0]["text"], "echo: v");
    let e = f.last();
    assert_eq!(e.endpoint, "virtual");
    assert_eq!(e.virtual_server.as_deref(), Some("ops"));
    assert_eq!((e.server.as_deref(), e.tool.as_deref()), (Some("fake"), Some("echo")));
    // Unknown and denied servers look alike, and are recorded as denied.
    f.modern_to("/mcp/v/nope", "tools/list", json!({}));
    assert_eq!(f.last().outcome.0, Outcome::Denied { code: -32602 });
    f.modern_to("/mcp/nope", "tools/list", json!({}));
    assert_eq!(f.last().outcome.0, Outcome::Denied { code: -32602 });
    assert_eq!(f.events().len(), 6);
}

#[test]
fn legacy_requests_are_recorded_by_their_session_not_by_the_worker() {
    let f = Fixture::new();
    f.register();
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let Routed::Session { session_id, mut ctx } =
        f.send(Method::Post, "/mcp/fake", Headers::new(), init.to_string().as_bytes())
    else {
        panic!("initialize goes to a session")
    };
    assert!(f.events().is_empty(), "the Worker hands the event over");
    // What the session's Durable Object does with each request.
    let in_session = |ctx: &mut endpoint::SessionCtx,
                      run: &dyn Fn(&Services<'_>, &endpoint::SessionCtx) -> HttpResponse| {
        let svc = f.svc();
        let probe = session::probe(&svc, ctx);
        let svc = svc.with_probe(probe.clone());
        let resp = run(&svc, ctx);
        drop(svc);
        drop(body_messages(record::finish(probe, resp)));
    };
    let st = RefCell::new(None);
    let req = |m: Method, body: Value| request(m, "/mcp/fake", Headers::new(), body.to_string().as_bytes());
    in_session(&mut ctx, &|svc, ctx| {
        let (s, resp) = block_on(session::initialize(
            svc,
            ctx,
            &session_id,
            &req(Method::Post, init.clone()),
        ));
        *st.borrow_mut() = s;
        resp
    });
    let e = f.last();
    assert_eq!(e.method.as_deref(), Some("initialize"));
    assert_eq!(
        (e.client_name.as_deref(), e.client_version.as_deref()),
        (Some("t"), Some("1"))
    );
    assert_eq!(e.session_id.as_deref(), Some(session_id.as_str()));
    assert_eq!(e.era.as_deref(), Some("legacy"));
    assert_eq!(e.protocol_version.as_deref(), Some("2025-06-18"));
    assert_eq!(e.principal_id, crate::store::DEFAULT_AGENT);
    assert_eq!(e.outcome.0, Outcome::Ok);
    // The upstream handshake made for it is one of its exchanges, and joins its trace.
    assert_eq!(e.upstreams.len(), 1);
    let bodies = f.up.seen_bodies.borrow();
    let at = bodies.iter().rposition(|b| b["method"] == "initialize").unwrap();
    let want = format!(
        "00-{}-{}-01",
        e.trace.as_ref().unwrap().trace_id,
        e.upstreams[0].span_id
    );
    assert_eq!(bodies[at]["params"]["_meta"]["traceparent"], json!(want));
    drop(bodies);
    let mut st = st.into_inner().unwrap();
    let log = Rc::new(MemLog::default());
    let call = json!({"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"fail"}});
    let Routed::Session { mut ctx, .. } = f.send(
        Method::Post,
        "/mcp/fake",
        Headers::new().with("mcp-session-id", &session_id),
        call.to_string().as_bytes(),
    ) else {
        panic!("a session request goes to its session")
    };
    let st_cell = RefCell::new(&mut st);
    in_session(&mut ctx, &|svc, ctx| {
        let (resp, _) = block_on(session::handle(
            svc,
            ctx,
            &mut st_cell.borrow_mut(),
            &req(Method::Post, call.clone()),
            log.clone(),
        ));
        resp
    });
    let e = f.last();
    assert_eq!(e.outcome.0, Outcome::ToolError);
    assert_eq!((e.tool.as_deref(), e.jsonrpc_id.as_deref()), (Some("fail"), Some("c1")));
    assert_eq!(e.client_name.as_deref(), Some("t"), "kept in the session's state");
    assert_eq!(e.session_id.as_deref(), Some(session_id.as_str()));
    assert_eq!(e.upstreams.len(), 1);
    let Routed::Session { mut ctx, .. } = f.send(
        Method::Delete,
        "/mcp/fake",
        Headers::new().with("mcp-session-id", &session_id),
        b"",
    ) else {
        panic!("a DELETE goes to its session")
    };
    in_session(&mut ctx, &|svc, ctx| {
        let del = request(Method::Delete, "/mcp/fake", Headers::new(), b"");
        block_on(session::handle(svc, ctx, &mut st_cell.borrow_mut(), &del, log.clone())).0
    });
    let e = f.last();
    assert_eq!((e.method.as_deref(), e.http_method.as_str()), (None, "DELETE"));
    assert_eq!(e.outcome.0, Outcome::Ok);
    assert_eq!(f.events().len(), 3, "one event per request");
}

#[test]
fn the_trace_context_is_joined_and_sent_upstream_in_the_header_and_meta() {
    let f = Fixture::new();
    f.register();
    let agent = format!("00-{AGENT_TRACE}-{AGENT_SPAN}-01");
    let (h, b) = modern("tools/call", json!({"name": "echo", "arguments": {"message": "t"}}));
    let h = h.with("traceparent", &agent).with("tracestate", "vendor=1");
    respond(f.send(Method::Post, "/mcp/fake", h, b.to_string().as_bytes()));
    let e = f.last();
    let trace = e.trace.clone().unwrap();
    assert_eq!(trace.trace_id, AGENT_TRACE);
    assert_eq!(trace.parent_span_id.as_deref(), Some(AGENT_SPAN));
    let client_span = &e.upstreams[0].span_id;
    assert_ne!(client_span, AGENT_SPAN);
    assert_ne!(client_span, &trace.span_id);
    let want = format!("00-{AGENT_TRACE}-{client_span}-01");
    let sent_header =
        f.up.seen_headers
            .borrow()
            .last()
            .unwrap()
            .get("traceparent")
            .map(str::to_string);
    assert_eq!(sent_header.as_deref(), Some(want.as_str()));
    assert_eq!(
        f.up.seen_headers.borrow().last().unwrap().get("tracestate"),
        Some("vendor=1")
    );
    let sent = f.up.seen_bodies.borrow().last().cloned().unwrap();
    assert_eq!(sent["params"]["_meta"]["traceparent"], json!(want));
    assert_eq!(sent["params"]["_meta"]["tracestate"], "vendor=1");

    // Without a header, `params._meta.traceparent` is joined.
    let (h, mut b) = modern("tools/call", json!({"name": "echo", "arguments": {"message": "m"}}));
    b["params"]["_meta"]["traceparent"] = json!(agent);
    respond(f.send(Method::Post, "/mcp/fake", h, b.to_string().as_bytes()));
    let e = f.last();
    assert_eq!(e.trace.as_ref().unwrap().trace_id, AGENT_TRACE);
    let sent = f.up.seen_bodies.borrow().last().cloned().unwrap();
    let meta = sent["params"]["_meta"]["traceparent"].as_str().unwrap().to_string();
    assert!(
        meta.starts_with(&format!("00-{AGENT_TRACE}-")) && !meta.contains(AGENT_SPAN),
        "{meta}"
    );

    // Without either, the gateway starts a trace, and the upstream joins it.
    let (h, b) = modern("tools/call", json!({"name": "echo", "arguments": {"message": "n"}}));
    respond(f.send(Method::Post, "/mcp/fake", h, b.to_string().as_bytes()));
    let e = f.last();
    let trace = e.trace.unwrap();
    assert_eq!(trace.parent_span_id, None);
    assert_ne!(trace.trace_id, AGENT_TRACE);
    let want = format!("00-{}-{}-01", trace.trace_id, e.upstreams[0].span_id);
    assert_eq!(
        f.up.seen_headers.borrow().last().unwrap().get("traceparent"),
        Some(want.as_str())
    );
}

#[test]
fn each_leg_of_a_fan_out_is_an_exchange_of_the_request_and_joins_its_trace() {
    let f = Fixture::new();
    f.register();
    let (h, b) = modern("resources/list", json!({}));
    let h = h.with("traceparent", format!("00-{AGENT_TRACE}-{AGENT_SPAN}-01"));
    let out = body_messages(respond(f.send(Method::Post, "/mcp", h, b.to_string().as_bytes())));
    assert_eq!(out[0]["result"]["resources"][0]["uri"], "fake+demo://a");
    let e = f.last();
    assert_eq!((e.endpoint.as_str(), e.outcome.0.clone()), ("all", Outcome::Ok));
    assert_eq!(e.upstreams.len(), 1);
    assert_eq!(e.upstreams[0].server, "fake");
    let want = format!("00-{AGENT_TRACE}-{}-01", e.upstreams[0].span_id);
    let bodies = f.up.seen_bodies.borrow();
    let leg = bodies.iter().rfind(|b| b["method"] == "resources/list").unwrap();
    assert_eq!(leg["params"]["_meta"]["traceparent"], json!(want));
    drop(bodies);
    let headers = f.up.seen_headers.borrow();
    assert!(headers.iter().any(|h| h.get("traceparent") == Some(want.as_str())));
    drop(headers);
    // A leg that fails leaves its server out; the merged answer is still the client's outcome.
    // (The pooled upstream session stays: the leg's own request fails.)
    *f.up.down.borrow_mut() = true;
    let (h, b) = modern("resources/list", json!({}));
    respond(f.send(Method::Post, "/mcp", h, b.to_string().as_bytes()));
    let e = f.last();
    assert_eq!(e.outcome.0, Outcome::Ok);
    assert_eq!(e.upstreams[0].error.as_deref(), Some("unreachable"));
}

#[test]
fn capture_set_through_the_admin_api_takes_effect_server_over_organization() {
    let f = Fixture::new();
    f.register();
    let call = || {
        f.modern_to(
            "/mcp/fake",
            "tools/call",
            json!({"name": "echo", "arguments": {"message": "hi"}}),
        )
    };
    call();
    let org = f.last().org_id;
    let patch = |path: &str, body: Value| {
        let r = f.admin(Method::Patch, path, body);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(r.bytes().unwrap()));
        serde_json::from_slice::<Value>(r.bytes().unwrap()).unwrap()
    };
    let org_path = format!("/admin/v1/orgs/{org}");
    assert_eq!(patch(&org_path, json!({"capture": "full"}))["capture"], "full");
    call();
    assert_eq!(
        f.last().arguments,
        Some(json!({"message": "hi"})),
        "the organization's setting"
    );
    assert_eq!(
        patch("/admin/v1/servers/fake", json!({"capture": "none"}))["capture"],
        "none"
    );
    call();
    assert_eq!(
        (f.last().capture, f.last().arguments),
        (CaptureMode::None, None),
        "the server's wins"
    );
    patch("/admin/v1/servers/fake", json!({"capture": null}));
    call();
    assert_eq!(f.last().capture, CaptureMode::Full, "null inherits again");
    assert_eq!(patch(&org_path, json!({"capture": null}))["capture"], Value::Null);
    call();
    assert_eq!(f.last().capture, CaptureMode::Keys, "the default");
    for bad in [json!({"capture": "all"}), json!({"capture": 1})] {
        for path in [org_path.as_str(), "/admin/v1/servers/fake"] {
            let r = f.admin(Method::Patch, path, bad.clone());
            assert_eq!(r.status, 422, "{path} {bad}");
            assert_eq!(r.headers.get("content-type"), Some("application/problem+json"));
        }
    }
}

#[test]
fn capture_follows_the_server_setting() {
    let f = Fixture::new();
    f.register();
    let call = || {
        f.modern_to(
            "/mcp/fake",
            "tools/call",
            json!({"name": "echo", "arguments": {"message": "hi"}}),
        )
    };
    call();
    assert_eq!(f.last().arguments, Some(json!(["message"])));
    for (mode, want) in [
        (CaptureMode::Full, Some(json!({"message": "hi"}))),
        (CaptureMode::None, None),
    ] {
        let mut s = block_on(f.svc().registry.get_server("fake")).unwrap().unwrap();
        s.capture = Some(mode);
        block_on(f.svc().registry.update_server(&s)).unwrap();
        call();
        assert_eq!((f.last().capture, f.last().arguments), (mode, want));
        // On `/mcp` too, where the server is known only once the call is routed.
        f.modern_to(
            "/mcp",
            "tools/call",
            json!({"name": "fake__echo", "arguments": {"message": "hi"}}),
        );
        assert_eq!(f.last().capture, mode);
    }
}

#[test]
fn no_event_holds_the_agents_key_or_an_upstream_credential() {
    let f = Fixture::new();
    f.register();
    let r = f.admin(
        Method::Put,
        "/admin/v1/servers/fake/credentials",
        json!({"kind": "headers", "headers": {"x-upstream-key": "upstream-canary-7f3a"}}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(r.bytes().unwrap()));
    crate::gateway::pool::forget_server("fake");
    f.modern_to(
        "/mcp/fake",
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "c"}}),
    );
    f.modern_to(
        "/mcp",
        "tools/call",
        json!({"name": "fake__echo", "arguments": {"message": "c"}}),
    );
    f.modern_to("/mcp/fake", "tools/call", json!({"name": "fail"}));
    assert!(
        f.up.seen_headers
            .borrow()
            .iter()
            .any(|h| h.get("x-upstream-key") == Some("upstream-canary-7f3a")),
        "the credential is presented upstream"
    );
    let all = serde_json::to_string(&f.events()).unwrap();
    assert_eq!(f.events().len(), 3);
    assert!(!all.contains("upstream-canary-7f3a"));
    assert!(!all.contains(&f.key));
    assert!(!all.contains(&f.key[12..]));
}

#[test]
fn an_admin_write_is_recorded_with_who_and_the_resource_before_and_after() {
    let f = Fixture::new();
    f.register();
    let r = f.admin(
        Method::Patch,
        "/admin/v1/servers/fake",
        json!({"description": "changed"}),
    );
    assert_eq!(r.status, 200);
    let all = f.events.0.borrow();
    let writes: Vec<&Event> = all
        .iter()
        .filter(|e| e.kind == crate::observe::EventKind::Admin)
        .collect();
    assert_eq!(writes.len(), 2, "one event per write");
    let (created, patched) = (writes[0].admin.as_ref().unwrap(), writes[1].admin.as_ref().unwrap());
    assert_eq!(writes[1].principal_id, crate::policy::roles::SUPER_ADMIN_PRINCIPAL);
    assert_eq!(
        (created.http_method.as_str(), created.path.as_str(), created.status),
        ("POST", "/admin/v1/servers", 201)
    );
    assert_eq!(
        (
            created.before.as_ref(),
            created.after.as_ref().unwrap()["slug"].as_str()
        ),
        (None, Some("fake"))
    );
    assert_ne!(patched.before.as_ref().unwrap()["description"], "changed");
    assert_eq!(patched.after.as_ref().unwrap()["description"], "changed");
    // A refused write changes nothing and is not recorded.
    drop(all);
    assert_eq!(
        f.admin(Method::Patch, "/admin/v1/servers/fake", json!({"nope": 1}))
            .status,
        422
    );
    assert_eq!(f.events.0.borrow().len(), 2);
}
