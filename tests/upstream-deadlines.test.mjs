// Every upstream exchange is bounded: an idle deadline (no response headers or no JSON-RPC
// message for too long — SSE keep-alive comments are not progress) and a total deadline. On
// expiry the client gets a JSON-RPC error naming the upstream with reason "timeout", and the
// upstream request is aborted (its connection closed). Both upstream eras, both client eras.
//
// The stalling upstreams are hand-written HTTP servers: no real MCP server stalls mid-body or
// sends nothing but keep-alives on purpose, so a misbehaving stand-in is the only way to
// exercise that. The total deadline (gateway-wide and per server) is exercised with the real
// Python SDK server. So is nothing else: the retry after a dropped kept-alive connection needs
// an upstream that drops connections the gateway reuses, again a hand-written one.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { final, mcpPost, setupGateway } from "./harness.mjs";

const IDLE_MS = 600; // the stalling servers' per-server timeout (the idle deadline)
const HANG_MS = 20_000; // a test still waiting after this long has met a hang
let env;
const fakes = {};

/**
 * A misbehaving upstream of the given era. Its tools:
 *   stall_json  HTTP 200 application/json headers, half a JSON body, then silence;
 *   stall_sse   an SSE stream that only ever sends `: keep-alive` comments.
 * `closed` lists the tools whose upstream connection the gateway closed (aborted).
 */
function misbehaving(era) {
  const closed = [];
  const timers = new Set();
  const tools = [
    { name: "stall_json", inputSchema: { type: "object" } },
    { name: "stall_sse", inputSchema: { type: "object" } },
  ];
  const srv = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const msg = body ? JSON.parse(body) : {};
      const json = (status, v, headers = {}) => {
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(JSON.stringify(v));
      };
      const result = (r) => json(200, { jsonrpc: "2.0", id: msg.id, result: r });
      if (era === "legacy" && msg.method === "server/discover") return json(400, { jsonrpc: "2.0", id: msg.id, error: { code: -32600, message: "no session" } });
      if (msg.method === "server/discover") {
        return result({ supportedVersions: ["2026-07-28"], capabilities: { tools: {} }, serverInfo: { name: "stall", version: "0" } });
      }
      if (msg.method === "initialize") {
        const r = { protocolVersion: "2025-11-25", capabilities: { tools: {} }, serverInfo: { name: "stall", version: "0" } };
        return json(200, { jsonrpc: "2.0", id: msg.id, result: r }, { "mcp-session-id": "s-1" });
      }
      if (msg.id === undefined) return res.writeHead(202).end();
      if (msg.method === "tools/list") return result({ tools });
      if (msg.method !== "tools/call") return json(200, { jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: "nope" } });
      const name = msg.params.name;
      res.on("close", () => {
        if (!res.writableFinished) closed.push(name);
      });
      if (name === "stall_json") {
        res.writeHead(200, { "content-type": "application/json" });
        res.write(`{"jsonrpc":"2.0","id":${JSON.stringify(msg.id)},"result":{"content":[`);
        return; // and never finish
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.write(": keep-alive\n\n");
      const t = setInterval(() => res.write(": keep-alive\n\n"), 100);
      timers.add(t);
      res.on("close", () => (clearInterval(t), timers.delete(t)));
    });
  });
  return new Promise((resolve) =>
    srv.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${srv.address().port}/mcp`,
        closed,
        stop: () =>
          new Promise((r) => {
            for (const t of timers) clearInterval(t);
            srv.closeAllConnections();
            srv.close(r);
          }),
      }),
    ),
  );
}

before(async () => {
  env = await setupGateway({ py: true, vars: { UPSTREAM_TOTAL_TIMEOUT_MS: "3000" } });
  for (const era of ["legacy", "modern"]) {
    fakes[era] = await misbehaving(era);
    const r = await env.gw.admin("POST", "/admin/v1/servers", { slug: `stall-${era}`, name: era, url: fakes[era].url, timeout_ms: IDLE_MS });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.era, era);
  }
});
after(async () => {
  for (const f of Object.values(fakes)) await f.stop();
  await env?.stop();
});

async function legacySession(path) {
  const init = await mcpPost(env.gw, path, {
    jsonrpc: "2.0",
    id: 0,
    method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "deadlines", version: "1" } },
  }, { key: env.key });
  assert.equal(init.status, 200, init.text);
  const headers = { "mcp-session-id": init.headers.get("mcp-session-id"), "mcp-protocol-version": "2025-11-25" };
  await mcpPost(env.gw, path, { jsonrpc: "2.0", method: "notifications/initialized" }, { key: env.key, headers });
  return (msg) => mcpPost(env.gw, path, msg, { key: env.key, headers });
}

/** Resolves once `pred()` holds (polling), or fails after `ms`. */
async function eventually(pred, ms, what) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const call = (id, name, meta) => ({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: {}, ...(meta ? { _meta: meta } : {}) } });

describe("idle deadline: stalls end in a timeout error and an aborted upstream request", () => {
  for (const era of ["legacy", "modern"]) {
    for (const client of ["modern", "legacy"]) {
      for (const tool of ["stall_json", "stall_sse"]) {
        test(`${era} upstream, ${client} client, ${tool}`, { timeout: HANG_MS }, async () => {
          const slug = `stall-${era}`;
          const send = client === "modern" ? (m) => mcpPost(env.gw, `/mcp/${slug}`, m, { key: env.key, modern: true }) : await legacySession(`/mcp/${slug}`);
          const before = fakes[era].closed.filter((t) => t === tool).length;
          const r = await send(call(5, tool));
          const body = final(r);
          assert.equal(body.id, 5, r.text);
          assert.equal(body.error?.data?.reason, "timeout", r.text);
          assert.equal(body.error.data.upstream, slug);
          assert.match(body.error.message, new RegExp(slug));
          await eventually(() => fakes[era].closed.filter((t) => t === tool).length > before, 5000, "the upstream saw its request aborted");
        });
      }
    }
  }
});

describe("total deadline", () => {
  test("a call that keeps making progress is still ended by the total deadline (real server)", { timeout: 2 * HANG_MS }, async () => {
    // 40 steps of 150 ms with a progress notification each: never idle, but longer than the
    // 3 s total deadline this gateway runs with.
    for (const client of ["modern", "legacy"]) {
      const send = client === "modern" ? (m) => mcpPost(env.gw, "/mcp/py", m, { key: env.key, modern: true }) : await legacySession("/mcp/py");
      const msg = { jsonrpc: "2.0", id: 9, method: "tools/call", params: { name: "slow", arguments: { steps: 40, delay_ms: 150 }, _meta: { progressToken: "p1" } } };
      const r = await send(msg);
      const msgs = Array.isArray(r.body) ? r.body : [r.body];
      assert.ok(msgs.some((m) => m.method === "notifications/progress"), `${client}: progress was relayed: ${r.text}`);
      const last = msgs[msgs.length - 1];
      assert.equal(last.id, 9);
      assert.equal(last.error?.data?.reason, "timeout", r.text);
      assert.equal(last.error.data.upstream, "py");
    }
  });
});

describe("per-server total deadline (total_timeout_ms)", () => {
  test("admin API: validated, clamped, shown; the gateway-wide default applies without it", async () => {
    const py = env.upstreams.py.url;
    const zero = await env.gw.admin("POST", "/admin/v1/servers", { slug: "py-zero", name: "z", url: py, total_timeout_ms: 0 });
    assert.ok(zero.status >= 400 && zero.status < 500, zero.text);
    const text = await env.gw.admin("POST", "/admin/v1/servers", { slug: "py-text", name: "t", url: py, total_timeout_ms: "5s" });
    assert.ok(text.status >= 400 && text.status < 500, text.text);
    const big = await env.gw.admin("POST", "/admin/v1/servers", { slug: "py-big", name: "b", url: py, total_timeout_ms: 99_000_000 });
    assert.equal(big.status, 201, big.text);
    assert.equal(big.body.total_timeout_ms, 3_600_000, "clamped to one hour");
    const low = await env.gw.admin("PATCH", "/admin/v1/servers/py-big", { total_timeout_ms: 10 });
    assert.equal(low.status, 200, low.text);
    assert.equal(low.body.total_timeout_ms, 1_000, "clamped to one second");
    assert.equal((await env.gw.admin("GET", "/admin/v1/servers/py")).body.total_timeout_ms ?? null, null);
    await env.gw.admin("DELETE", "/admin/v1/servers/py-big");
  });

  test("a server's own total deadline ends a call that the gateway-wide one would let finish", { timeout: 2 * HANG_MS }, async () => {
    const r = await env.gw.admin("POST", "/admin/v1/servers", { slug: "py-short", name: "short", url: env.upstreams.py.url, total_timeout_ms: 1_000 });
    assert.equal(r.status, 201, r.text);
    // 8 steps of 200 ms with progress each: about 1.6 s, never idle; within this gateway's 3 s.
    const slow = { jsonrpc: "2.0", id: 4, method: "tools/call", params: { name: "slow", arguments: { steps: 8, delay_ms: 200 }, _meta: { progressToken: "p" } } };
    for (const client of ["modern", "legacy"]) {
      const on = async (path) =>
        client === "modern" ? mcpPost(env.gw, path, slow, { key: env.key, modern: true }) : (await legacySession(path))(slow);
      const short = final(await on("/mcp/py-short"));
      assert.equal(short.id, 4);
      assert.equal(short.error?.data?.reason, "timeout", `${client}: ${JSON.stringify(short)}`);
      assert.equal(short.error.data.upstream, "py-short");
      const normal = final(await on("/mcp/py"));
      assert.match(normal.result?.content?.[0]?.text ?? "", /done after 8 steps/, `${client}: ${JSON.stringify(normal)}`);
    }
  });
});

/**
 * A modern upstream that drops kept-alive connections: a request that arrives on a connection
 * which already served one is met by the connection closing, unanswered — as when an upstream
 * closes an idle keep-alive connection just as the gateway reuses it. The request right after
 * such a drop is always answered, so a single retry can succeed. `dropped` lists the methods
 * (and tool names) whose connection was dropped; `calls` the tool calls that ran.
 * Hand-written: the point is the misbehaving connection, which no real server offers on demand.
 */
function droppingUpstream() {
  const dropped = [];
  const calls = [];
  let justDropped = false;
  const tools = [
    { name: "look", inputSchema: { type: "object" }, annotations: { readOnlyHint: true } },
    { name: "write", inputSchema: { type: "object" } },
  ];
  const srv = http.createServer({ keepAlive: true }, (req, res) => {
    req.socket.served = (req.socket.served ?? 0) + 1;
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const msg = body ? JSON.parse(body) : {};
      const what = msg.method === "tools/call" ? `tools/call ${msg.params?.name}` : msg.method;
      if (req.socket.served > 1 && !justDropped) {
        justDropped = true;
        dropped.push(what);
        return req.socket.destroy();
      }
      justDropped = false;
      const result = (r) => {
        res.writeHead(200, { "content-type": "application/json", connection: "keep-alive" });
        res.end(JSON.stringify({ jsonrpc: "2.0", id: msg.id, result: r }));
      };
      if (msg.method === "server/discover") {
        return result({ supportedVersions: ["2026-07-28"], capabilities: { tools: {} }, serverInfo: { name: "dropping", version: "0" } });
      }
      if (msg.method === "tools/list") return result({ tools });
      if (msg.method === "tools/call") {
        calls.push(msg.params.name);
        return result({ content: [{ type: "text", text: `${msg.params.name} ran` }] });
      }
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ jsonrpc: "2.0", id: msg.id ?? null, error: { code: -32601, message: "not here" } }));
    });
  });
  return new Promise((resolve) =>
    srv.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${srv.address().port}/mcp`,
        dropped,
        calls,
        stop: () => new Promise((r) => (srv.closeAllConnections(), srv.close(r))),
      }),
    ),
  );
}

describe("retry after a dropped kept-alive connection", () => {
  test("safe requests are sent again and succeed; others get a clear connection_lost error, never a hang", { timeout: HANG_MS }, async () => {
    const up = await droppingUpstream();
    try {
      const r = await env.gw.admin("POST", "/admin/v1/servers", { slug: "dropping", name: "dropping", url: up.url });
      assert.equal(r.status, 201, r.text);
      const call = (id, name) => mcpPost(env.gw, "/mcp/dropping", { jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: {} } }, { key: env.key, modern: true });
      // Calls alternate between the two tools until each has met a dropped connection: which
      // request meets one depends on how the runtime pools connections, not on the test.
      let id = 10;
      const outcomes = { look: [], write: [] };
      while (!(up.dropped.includes("tools/call look") && up.dropped.includes("tools/call write"))) {
        assert.ok(id < 60, `no connection was dropped under each tool; dropped: ${JSON.stringify(up.dropped)}`);
        for (const name of ["look", "write"]) {
          const before = up.dropped.filter((d) => d === `tools/call ${name}`).length;
          const reply = final(await call(id++, name));
          const hit = up.dropped.filter((d) => d === `tools/call ${name}`).length > before;
          outcomes[name].push({ hit, reply });
        }
      }
      for (const { hit, reply } of outcomes.look) {
        // Read-only: sent again after the drop, and answered.
        assert.equal(reply.result?.content?.[0]?.text, "look ran", `${hit ? "dropped once" : "not dropped"}: ${JSON.stringify(reply)}`);
      }
      for (const { hit, reply } of outcomes.write) {
        if (!hit) {
          assert.equal(reply.result?.content?.[0]?.text, "write ran", JSON.stringify(reply));
          continue;
        }
        // Not safe to repeat: the error says so, and it was not sent again.
        assert.equal(reply.error?.data?.reason, "connection_lost", JSON.stringify(reply));
        assert.equal(reply.error.data.upstream, "dropping");
      }
      const writesSent = outcomes.write.length;
      const writesDropped = outcomes.write.filter((o) => o.hit).length;
      assert.equal(up.calls.filter((c) => c === "write").length, writesSent - writesDropped, "a dropped write is never resent");
    } finally {
      await env.gw.admin("DELETE", "/admin/v1/servers/dropping");
      await up.stop();
    }
  });
});
