// A modern `subscriptions/listen` is acknowledged at once, whatever its upstreams do: each
// upstream's own stream joins the merged stream when it opens, so one that is slow to send its
// response headers, or answers with a chunked JSON body that never ends, delays nobody.
//
// The slow upstreams are hand-written stand-ins (misbehaviour no real server produces on
// purpose); next to them runs the real Python SDK server, whose change still comes through.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";
import { final, mcpPost, modernMeta, openStream, setupGateway, MODERN } from "./harness.mjs";

const HANG_MS = 20_000; // a test still waiting after this long has met a hang
let env;
const fakes = {};

/** A modern upstream whose `subscriptions/listen` answer is `mode`: "no-headers" or "chunked-json". */
function slowListener(mode) {
  const held = [];
  let listens = 0;
  const srv = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const msg = body ? JSON.parse(body) : {};
      const result = (r) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ jsonrpc: "2.0", id: msg.id, result: r }));
      };
      if (msg.method === "server/discover") {
        return result({ supportedVersions: [MODERN], capabilities: { tools: { listChanged: true } }, serverInfo: { name: mode, version: "0" } });
      }
      if (msg.method === "tools/list") return result({ tools: [] });
      if (msg.method !== "subscriptions/listen") return res.writeHead(404).end();
      listens++;
      held.push(res);
      if (mode === "chunked-json") {
        res.writeHead(200, { "content-type": "application/json" });
        res.write(`{"jsonrpc":"2.0","id":${JSON.stringify(msg.id)},`);
      }
      // "no-headers": nothing at all until the test ends.
    });
  });
  return new Promise((resolve) =>
    srv.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${srv.address().port}/mcp`,
        listens: () => listens,
        stop: () => new Promise((r) => (held.forEach((h) => h.destroy()), srv.closeAllConnections(), srv.close(r))),
      }),
    ),
  );
}

before(async () => {
  env = await setupGateway({ py: true, vars: { CATALOG_POLL_MS: "200" } });
  for (const mode of ["no-headers", "chunked-json"]) {
    fakes[mode] = await slowListener(mode);
    const r = await env.gw.admin("POST", "/admin/v1/servers", { slug: mode, name: mode, url: fakes[mode].url });
    assert.equal(r.status, 201, r.text);
  }
});
after(async () => {
  for (const f of Object.values(fakes)) await f.stop();
  await env?.stop();
});

function listen(path) {
  const msg = {
    jsonrpc: "2.0",
    id: "L1",
    method: "subscriptions/listen",
    params: { notifications: { toolsListChanged: true, promptsListChanged: true }, _meta: modernMeta() },
  };
  return openStream(env.gw, path, {
    method: "POST",
    headers: {
      authorization: `Bearer ${env.key}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": MODERN,
      "mcp-method": "subscriptions/listen",
    },
    body: JSON.stringify(msg),
  });
}

const acked = (m) => m.method === "notifications/subscriptions/acknowledged";

test("one server that streams its listen reply as never-ending chunked JSON: acknowledged at once", { timeout: HANG_MS }, async () => {
  const s = await listen("/mcp/chunked-json");
  assert.equal(s.status, 200);
  const ack = await s.next(acked);
  assert.equal(ack.data.params._meta["io.modelcontextprotocol/subscriptionId"], "L1");
  await s.close();
});

test("/mcp: acknowledged while an upstream still sends no headers; the others' changes still arrive", { timeout: HANG_MS }, async () => {
  const before = fakes["no-headers"].listens();
  const s = await listen("/mcp");
  assert.equal(s.status, 200);
  await s.next(acked);
  // The stalled upstream was asked (and has still answered nothing) — it held nobody up.
  const asked = Date.now() + 5000;
  while (fakes["no-headers"].listens() === before && Date.now() < asked) await new Promise((r) => setTimeout(r, 50));
  assert.ok(fakes["no-headers"].listens() > before, "the slow upstream's listen was opened");
  // A real server's tool list changes; the change reaches this listener.
  const grow = await mcpPost(env.gw, "/mcp", { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "py__grow", arguments: {} } }, { key: env.key, modern: true });
  assert.ok(final(grow).result, grow.text);
  const changed = await s.next((m) => m.method === "notifications/tools/list_changed");
  assert.equal(changed.data.params._meta["io.modelcontextprotocol/subscriptionId"], "L1");
  await s.close();
});
