// Events and trace context under the built Worker, with a real upstream (the Python SDK server,
// variant `trace`, whose tool `trace_seen` returns the trace context it received): the agent's
// W3C trace reaches the upstream both as the `traceparent` header and in `params._meta`, with the
// gateway's own span as the parent, in both eras and on every endpoint; a trace is started when
// the agent sends none; capture modes are set per organization and per server through the admin
// API (problem+json on bad values).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { join } from "node:path";
import { final, freePort, mcpPost, MODERN, modernMeta, ROOT, startGateway, startProcess, startPyServer } from "./harness.mjs";

let gw, py, key;
const hex = (n) => randomBytes(n).toString("hex");

before(async () => {
  [gw, py] = await Promise.all([startGateway(), startPyServer({ variants: ["trace"] })]);
  const r = await gw.admin("POST", "/admin/v1/servers", { slug: "py", name: "py", url: py.url });
  assert.equal(r.status, 201, r.text);
  key = (await gw.admin("POST", "/admin/v1/api-keys", { name: "events" })).body.key;
});
after(() => Promise.all([gw?.stop(), py?.stop()]));

const seenIn = (reply) => {
  const f = final(reply);
  assert.ok(f?.result, JSON.stringify(reply.body));
  return JSON.parse(f.result.content[0].text);
};
const parse = (tp) => {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(tp ?? "");
  assert.ok(m, `a valid traceparent: ${tp}`);
  return { trace: m[1], parent: m[2], flags: m[3] };
};

/** The agent's trace, as an instrumented agent would send it. */
function agentTrace() {
  const trace = hex(16);
  const span = hex(8);
  return { trace, span, traceparent: `00-${trace}-${span}-01` };
}

/** What the upstream saw proves it joined the agent's trace under a span of the gateway. */
function assertJoined(seen, agent, { tracestate, baggage } = {}) {
  const h = parse(seen.headers.traceparent);
  assert.equal(h.trace, agent.trace, "the agent's trace id reaches the upstream");
  assert.notEqual(h.parent, agent.span, "the upstream's parent is the gateway's span, not the agent's");
  assert.equal(seen.meta.traceparent, seen.headers.traceparent, "the same context travels in params._meta");
  if (tracestate) {
    assert.equal(seen.headers.tracestate, tracestate);
    assert.equal(seen.meta.tracestate, tracestate);
  }
  if (baggage) {
    assert.equal(seen.headers.baggage, baggage);
    assert.equal(seen.meta.baggage, baggage);
  }
  return h;
}

const call = (id, name) => ({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: {} } });

describe("trace context reaches the upstream", () => {
  test("2026-07-28 on /mcp/{slug}: header and _meta, the agent's trace id, a new parent per call", async () => {
    const agent = agentTrace();
    const headers = { traceparent: agent.traceparent, tracestate: "vendor=abc", baggage: "tenant=t1" };
    const a = assertJoined(seenIn(await mcpPost(gw, "/mcp/py", call(1, "trace_seen"), { key, modern: true, headers })), agent, {
      tracestate: "vendor=abc",
      baggage: "tenant=t1",
    });
    const b = assertJoined(seenIn(await mcpPost(gw, "/mcp/py", call(2, "trace_seen"), { key, modern: true, headers })), agent);
    assert.notEqual(a.parent, b.parent, "each upstream exchange is its own span");
  });

  test("2025-11-25 session (served by the session's Durable Object)", async () => {
    const agent = agentTrace();
    const init = await mcpPost(
      gw,
      "/mcp/py",
      { jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } } },
      { key },
    );
    const sid = init.headers.get("mcp-session-id");
    assert.ok(sid, init.text);
    const headers = { "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25", traceparent: agent.traceparent };
    assertJoined(seenIn(await mcpPost(gw, "/mcp/py", call(1, "trace_seen"), { key, headers })), agent);
  });

  test("on /mcp, from params._meta.traceparent when there is no header", async () => {
    const agent = agentTrace();
    const msg = { jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "py__trace_seen", arguments: {}, _meta: { traceparent: agent.traceparent } } };
    assertJoined(seenIn(await mcpPost(gw, "/mcp", msg, { key, modern: true })), agent);
  });

  test("an agent that sends no trace context gets one started by the gateway", async () => {
    const seen = seenIn(await mcpPost(gw, "/mcp/py", call(4, "trace_seen"), { key, modern: true }));
    const h = parse(seen.headers.traceparent);
    assert.notEqual(h.trace, "0".repeat(32));
    assert.equal(seen.meta.traceparent, seen.headers.traceparent);
    // A malformed one is not joined (nor relayed as it was).
    const bad = "00-zz-not-a-trace-01";
    const seen2 = seenIn(await mcpPost(gw, "/mcp/py", call(5, "trace_seen"), { key, modern: true, headers: { traceparent: bad } }));
    assert.notEqual(seen2.headers.traceparent, bad);
    parse(seen2.headers.traceparent);
  });
});
describe("capture modes through the admin API", () => {
  test("per server: set, shown, inherited with null, invalid values refused", async () => {
    const get = async () => (await gw.admin("GET", "/admin/v1/servers/py")).body;
    assert.equal((await get()).capture, null, "inherits by default");
    const r = await gw.admin("PATCH", "/admin/v1/servers/py", { capture: "full" });
    assert.equal(r.status, 200, r.text);
    assert.equal((await get()).capture, "full");
    const bad = await gw.admin("PATCH", "/admin/v1/servers/py", { capture: "everything" });
    assert.equal(bad.status, 422, bad.text);
    assert.match(bad.headers.get("content-type"), /application\/problem\+json/);
    assert.equal((await get()).capture, "full", "a refused change changes nothing");
    const back = await gw.admin("PATCH", "/admin/v1/servers/py", { capture: null });
    assert.equal(back.status, 200, back.text);
    assert.equal((await get()).capture, null);
    // Calls still work whatever the mode.
    assert.equal(final(await mcpPost(gw, "/mcp/py", { jsonrpc: "2.0", id: 9, method: "tools/call", params: { name: "echo", arguments: { message: "m" } } }, { key, modern: true })).result.content[0].text, "echo: m");
  });

  test("per organization: set, shown, reset, invalid values refused", async () => {
    const org = await gw.admin("POST", "/admin/v1/orgs", { name: `Org ${hex(3)}` });
    assert.equal(org.status, 201, org.text);
    const path = `/admin/v1/orgs/${org.body.id}`;
    assert.equal((await gw.admin("GET", path)).body.capture, null);
    const r = await gw.admin("PATCH", path, { capture: "none" });
    assert.equal(r.status, 200, r.text);
    assert.equal((await gw.admin("GET", path)).body.capture, "none");
    const bad = await gw.admin("PATCH", path, { capture: 3 });
    assert.equal(bad.status, 422, bad.text);
    assert.match(bad.headers.get("content-type"), /application\/problem\+json/);
    assert.equal((await gw.admin("PATCH", path, { capture: null })).status, 200);
    assert.equal((await gw.admin("GET", path)).body.capture, null);
  });
});

// The events themselves, seen through a sink: the OTLP exporter (one SERVER span per event) and a
// real OTLP receiver decoding with the official protocol definitions. Each request joins its own
// agent trace, so the spans of one request are told apart by trace id.
describe("one event per request, whatever path serves it", () => {
  let gw2, receiver, key2;
  before(async () => {
    const port = await freePort();
    receiver = await startProcess(join(ROOT, ".venv/bin/python"), ["tests/otlp_receiver.py", String(port)], {
      readyLine: /listening on (\d+)/,
    });
    gw2 = await startGateway({ vars: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` } });
    receiver.url = `http://127.0.0.1:${port}`;
    const r = await gw2.admin("POST", "/admin/v1/servers", { slug: "py", name: "py", url: py.url });
    assert.equal(r.status, 201, r.text);
    key2 = (await gw2.admin("POST", "/admin/v1/api-keys", { name: "events" })).body.key;
  });
  after(() => Promise.all([gw2?.stop(), receiver?.stop()]));

  const attr = (span, k) => {
    const v = span.attributes?.find((a) => a.key === k)?.value;
    return v && (v.stringValue ?? v.intValue ?? v.boolValue);
  };
  /** The SERVER spans of one trace, once `n` of them arrived (or after a bounded wait). */
  async function serverSpans(trace, n = 1) {
    let spans = [];
    for (let i = 0; i < 50; i++) {
      const all = await (await fetch(`${receiver.url}/received`)).json();
      assert.ok(!all.some((r) => r.error), JSON.stringify(all.filter((r) => r.error)));
      spans = all
        .flatMap((r) => r.request.resourceSpans ?? [])
        .flatMap((rs) => rs.scopeSpans ?? [])
        .flatMap((ss) => ss.spans ?? [])
        .filter((s) => s.traceId === trace && s.kind === "SPAN_KIND_SERVER");
      if (spans.length >= n) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // A little longer: a second event for the same request would show up now.
    await new Promise((r) => setTimeout(r, 300));
    const all = await (await fetch(`${receiver.url}/received`)).json();
    return all
      .flatMap((r) => r.request?.resourceSpans ?? [])
      .flatMap((rs) => rs.scopeSpans ?? [])
      .flatMap((ss) => ss.spans ?? [])
      .filter((s) => s.traceId === trace && s.kind === "SPAN_KIND_SERVER");
  }

  test("2026-07-28: one event per call, with its outcome; capture set by the admin API", async () => {
    const a = agentTrace();
    await mcpPost(gw2, "/mcp/py", { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: { message: "secret-arg" } } }, { key: key2, modern: true, headers: { traceparent: a.traceparent } });
    const [s, extra] = await serverSpans(a.trace);
    assert.equal(extra, undefined, "exactly one event");
    assert.equal(attr(s, "mcp_gateway.outcome"), "ok");
    assert.equal(attr(s, "gen_ai.tool.call.arguments"), undefined, "keys (the default) keeps no values");
    assert.equal((await gw2.admin("PATCH", "/admin/v1/servers/py", { capture: "full" })).status, 200);
    const b = agentTrace();
    await mcpPost(gw2, "/mcp/py", { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "echo", arguments: { message: "kept" } } }, { key: key2, modern: true, headers: { traceparent: b.traceparent } });
    const [full] = await serverSpans(b.trace);
    const args = full.attributes?.find((x) => x.key === "gen_ai.tool.call.arguments")?.value;
    assert.match(JSON.stringify(args ?? null), /kept/, "full keeps the arguments");
    assert.equal((await gw2.admin("PATCH", "/admin/v1/servers/py", { capture: null })).status, 200);
  });

  test("a bad key: one event, denied, with no principal", async () => {
    const a = agentTrace();
    const r = await mcpPost(gw2, "/mcp/py", { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: {} } }, { key: "mcpgw_canary-bad-key", modern: true, headers: { traceparent: a.traceparent } });
    assert.equal(r.status, 401);
    const spans = await serverSpans(a.trace);
    assert.equal(spans.length, 1);
    assert.equal(attr(spans[0], "mcp_gateway.outcome"), "denied");
    assert.equal(attr(spans[0], "mcp_gateway.principal.id"), undefined);
    assert.ok(!JSON.stringify(spans).includes("canary-bad-key"));
  });

  test("2025-11-25: each request recorded once, by the session's Durable Object", async () => {
    const a = agentTrace();
    const init = await mcpPost(
      gw2,
      "/mcp/py",
      { jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } } },
      { key: key2, headers: { traceparent: a.traceparent } },
    );
    const sid = init.headers.get("mcp-session-id");
    assert.ok(sid, init.text);
    const [i, extra] = await serverSpans(a.trace);
    assert.equal(extra, undefined, "the Worker hands the event over; only the session emits it");
    assert.equal(attr(i, "mcp.method.name"), "initialize");
    assert.equal(attr(i, "mcp.session.id"), sid);
    const b = agentTrace();
    const headers = { "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25", traceparent: b.traceparent };
    await mcpPost(gw2, "/mcp/py", { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: { message: "s" } } }, { key: key2, headers });
    const spans = await serverSpans(b.trace);
    assert.equal(spans.length, 1);
    assert.equal(attr(spans[0], "mcp_gateway.outcome"), "ok");
    assert.equal(attr(spans[0], "mcp.session.id"), sid);
  });

  test("a client that leaves mid-stream: one event, cancelled", async () => {
    const a = agentTrace();
    const ctl = new AbortController();
    const msg = { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "slow", arguments: { steps: 20 }, _meta: modernMeta({ progressToken: "p1" }) } };
    const res = await gw2.fetch("/mcp/py", {
      method: "POST",
      signal: ctl.signal,
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        authorization: `Bearer ${key2}`,
        "mcp-protocol-version": MODERN,
        "mcp-method": "tools/call",
        "mcp-name": "slow",
        traceparent: a.traceparent,
      },
      body: JSON.stringify(msg),
    });
    const reader = res.body.getReader();
    await reader.read();
    ctl.abort();
    await reader.cancel().catch(() => {});
    const spans = await serverSpans(a.trace);
    assert.equal(spans.length, 1, JSON.stringify(spans));
    assert.equal(attr(spans[0], "mcp_gateway.outcome"), "cancelled");
  });
});
