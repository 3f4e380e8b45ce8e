// Upstreams that die, stall or send garbage: every case ends in a JSON-RPC error that names the
// upstream and the cause — never a hang, a panic or a stack trace.
//
// The garbage and 5xx upstreams are tiny hand-written HTTP servers: no real MCP server produces
// such answers on purpose, so a stand-in is the only way to exercise them.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";
import { final, mcpPost, setupGateway, startPyServer } from "./harness.mjs";

let env;
const extra = [];
before(async () => {
  env = await setupGateway({ py: true });
});
after(async () => {
  for (const s of extra) await s.stop().catch?.(() => {});
  await env?.stop();
});

const echo = (id) => ({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "echo", arguments: { message: "x" } } });

async function register(slug, url, more = {}) {
  const r = await env.gw.admin("POST", "/admin/v1/servers", { slug, name: slug, url, ...more });
  assert.equal(r.status, 201, r.text);
}

test("an upstream that goes away → error naming it, reason unreachable; back after restart", async () => {
  const up = await startPyServer();
  await register("mortal", up.url);
  const ok = await mcpPost(env.gw, "/mcp/mortal", echo(1), { key: env.key, modern: true });
  assert.equal(final(ok).result.content[0].text, "echo: x");
  await up.stop();
  const r = await mcpPost(env.gw, "/mcp/mortal", echo(2), { key: env.key, modern: true });
  const err = final(r).error;
  assert.equal(err.data.upstream, "mortal");
  // A reused keep-alive connection to the dead server may report the drop itself.
  assert.ok(["unreachable", "connection_lost"].includes(err.data.reason), err.data.reason);
  assert.match(err.message, /mortal/);
});

test("a too-slow upstream hits the per-server timeout", async () => {
  await register("sluggish", env.upstreams.py.url, { timeout_ms: 400 });
  const slow = { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "slow", arguments: { steps: 2, delay_ms: 2000 } } };
  const started = Date.now();
  const r = await mcpPost(env.gw, "/mcp/sluggish", slow, { key: env.key, modern: true });
  const err = final(r).error;
  assert.ok(err, r.text);
  assert.match(err.message, /sluggish/);
  assert.ok(Date.now() - started < 3900, "answered before the tool would have finished");
});

function standIn(handler) {
  return new Promise((resolve) => {
    const srv = http.createServer(handler);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      resolve({ url: `http://127.0.0.1:${port}/mcp`, stop: () => new Promise((r) => srv.close(r)) });
    });
  });
}

test("garbage and 5xx answers become clear JSON-RPC errors", async () => {
  // Answers initialize properly (so it registers), then garbage or a 500 for everything else.
  let mode = "ok";
  const up = await standIn((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const msg = body ? JSON.parse(body) : {};
      if (msg.method === "initialize") {
        res.writeHead(200, { "content-type": "application/json", "mcp-session-id": "s1" });
        return res.end(JSON.stringify({ jsonrpc: "2.0", id: msg.id, result: { protocolVersion: "2025-11-25", capabilities: { tools: {} }, serverInfo: { name: "standin", version: "0" } } }));
      }
      if (!msg.id) return res.writeHead(202).end();
      if (msg.method === "tools/list" && mode === "ok") {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(JSON.stringify({ jsonrpc: "2.0", id: msg.id, result: { tools: [{ name: "echo", inputSchema: { type: "object" } }] } }));
      }
      if (mode === "500") return res.writeHead(500).end("internal stack trace here");
      res.writeHead(200, { "content-type": "application/json" });
      res.end("<html>definitely not json");
    });
  });
  extra.push(up);
  await register("junk", up.url);
  mode = "garbage";
  const g = await mcpPost(env.gw, "/mcp/junk", echo(1), { key: env.key, modern: true });
  assert.equal(final(g).error.data.reason, "invalid_response");
  assert.ok(!g.text.includes("<html>"));
  mode = "500";
  const f = await mcpPost(env.gw, "/mcp/junk", echo(2), { key: env.key, modern: true });
  assert.equal(final(f).error.data.reason, "status");
  assert.ok(!f.text.includes("stack trace"));
});

test("a request loop through the gateway is refused at the second hop (508), not recursed", async () => {
  // A pass-through proxy that can be re-pointed: first at the real Python server (so the server
  // registers), then back at the gateway's own endpoint for that server, with an API key — a
  // loop the gateway cannot see from the URL. It counts the requests it forwards.
  let target = env.upstreams.py.url;
  const auth = {};
  const statuses = [];
  const proxy = await standIn((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const up = new URL(target);
      const fwd = http.request(
        { host: up.hostname, port: up.port, path: up.pathname, method: req.method, headers: { ...req.headers, host: up.host, ...auth } },
        (r) => {
          statuses.push(r.statusCode);
          res.writeHead(r.statusCode, r.headers);
          r.pipe(res);
        },
      );
      fwd.on("error", () => res.destroy());
      fwd.end(Buffer.concat(chunks));
    });
  });
  extra.push(proxy);
  await register("hop", proxy.url);
  target = `${env.gw.url}/mcp/hop`;
  auth.authorization = `Bearer ${env.key}`;
  statuses.length = 0;
  const r = await mcpPost(env.gw, "/mcp/hop", { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }, { key: env.key, modern: true });
  const err = final(r).error;
  assert.ok(err, r.text);
  assert.equal(err.data.upstream, "hop");
  assert.deepEqual(statuses, [508], "one looped request, refused by the gateway as a loop");
  // Marked requests are refused directly too, with a JSON-RPC error.
  const direct = await mcpPost(env.gw, "/mcp/py", { jsonrpc: "2.0", id: 2, method: "tools/list", params: {} }, { key: env.key, modern: true, headers: { "mcp-gateway-hop": "1" } });
  assert.equal(direct.status, 508);
  assert.equal(direct.body.error.code, -32600);
  assert.match(direct.body.error.message, /loop/);
});
