// Live updates: list_changed reaches connected clients — on the legacy GET stream (with event
// ids, resumable) and on the modern `subscriptions/listen` — when a sync or an admin change
// alters what they may list, and when an upstream announces its tools changed (the gateway
// re-syncs that server first, so a client that re-lists sees the new tool).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { final, mcpPost, modernMeta, MODERN, openStream, setupGateway } from "./harness.mjs";

let env;
before(async () => {
  env = await setupGateway({ everything: true, py: true, vars: { CATALOG_POLL_MS: "200" } });
});
after(() => env?.stop());

const rpc = (id, method, params = {}) => ({ jsonrpc: "2.0", id, method, params });
const isToolsChanged = (m) => m.method === "notifications/tools/list_changed";

function listen(path, id, notifications) {
  return openStream(env.gw, path, {
    method: "POST",
    headers: {
      authorization: `Bearer ${env.key}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": MODERN,
      "mcp-method": "subscriptions/listen",
    },
    body: JSON.stringify({ jsonrpc: "2.0", id, method: "subscriptions/listen", params: { notifications, _meta: modernMeta() } }),
  });
}

test("modern: subscriptions/listen is acknowledged, then told when an upstream's tools change", async () => {
  const s = await listen("/mcp", "sub-1", { toolsListChanged: true, promptsListChanged: true });
  try {
    assert.equal(s.status, 200);
    const ack = await s.next((m) => m.method === "notifications/subscriptions/acknowledged");
    assert.equal(ack.data.params._meta["io.modelcontextprotocol/subscriptionId"], "sub-1");
    assert.deepEqual(ack.data.params.notifications, { toolsListChanged: true, promptsListChanged: true });
    // The Python upstream adds a tool and announces it to its own listeners (the gateway is one).
    const grow = final(await mcpPost(env.gw, "/mcp", rpc(1, "tools/call", { name: "py__grow", arguments: {} }), { key: env.key, modern: true }));
    assert.equal(grow.result.content[0].text, "grown");
    const changed = await s.next(isToolsChanged);
    assert.equal(changed.data.params._meta["io.modelcontextprotocol/subscriptionId"], "sub-1");
    const list = final(await mcpPost(env.gw, "/mcp", rpc(2, "tools/list"), { key: env.key, modern: true }));
    assert.ok(list.result.tools.some((t) => t.name === "py__grown"), "re-synced before announcing");
  } finally {
    await s.close();
  }
});

test("legacy: the GET stream of a /mcp session announces an admin change, with resumable event ids", async () => {
  const init = await mcpPost(env.gw, "/mcp", rpc(0, "initialize", { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } }), { key: env.key });
  const sid = init.headers.get("mcp-session-id");
  const headers = { authorization: `Bearer ${env.key}`, accept: "text/event-stream", "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25" };
  const s = await openStream(env.gw, "/mcp", { method: "GET", headers });
  try {
    assert.equal(s.status, 200);
    await new Promise((r) => setTimeout(r, 300)); // let the watcher take its first look
    assert.equal((await env.gw.admin("PATCH", "/admin/v1/servers/everything", { status: "disabled" })).status, 200);
    const ev = await s.next(isToolsChanged);
    assert.match(ev.id, /^\d+-\d+$/, "an event id for Last-Event-ID");
    const list = final(await mcpPost(env.gw, "/mcp", rpc(1, "tools/list"), { key: env.key, headers: { "mcp-session-id": sid } }));
    assert.ok(!list.result.tools.some((t) => t.name.startsWith("everything__")));
  } finally {
    await s.close();
    await env.gw.admin("PATCH", "/admin/v1/servers/everything", { status: "active" });
  }
});

test("a sync that finds a different catalog is announced; one that finds none is not", async () => {
  const s = await listen("/mcp/py", 7, { toolsListChanged: true });
  try {
    await s.next((m) => m.method === "notifications/subscriptions/acknowledged");
    // Nothing changed since the last sync: no announcement.
    await env.gw.admin("POST", "/admin/v1/servers/everything/sync");
    await assert.rejects(s.next(isToolsChanged, 800));
    // A new server changes what /mcp lists; the generation moves and listeners hear of it.
    const r = await env.gw.admin("POST", "/admin/v1/servers", { slug: "py-again", name: "again", url: env.upstreams.py.url });
    assert.equal(r.status, 201);
    const ev = await s.next(isToolsChanged);
    assert.equal(ev.data.params._meta["io.modelcontextprotocol/subscriptionId"], 7);
  } finally {
    await s.close();
  }
});
