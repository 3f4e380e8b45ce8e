// Resources through the gateway: subscriptions and their update notifications (legacy
// `resources/subscribe`), and on /mcp every resource URI a client receives — read results,
// resource links and embedded resources in tool results, update notifications — in the
// aggregated namespace `{slug}+{uri}`, usable there again. Also: a legacy client never sees the
// 2026-07-28-only `_meta` of a modern upstream.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MODERN, final, mcpPost, modernMeta, openStream, setupGateway, startPyServer } from "./harness.mjs";

let env;
const subs = {};
before(async () => {
  env = await setupGateway({ everything: true, py: true });
  // The Python server with resource subscriptions in both eras (`touch` announces a change):
  // once serving both eras (modern for modern clients), once refusing 2026-07-28 (legacy).
  [subs.pysub, subs.pysubold] = await Promise.all([
    startPyServer({ variants: ["subscriptions"] }),
    startPyServer({ variants: ["subscriptions", "legacy"] }),
  ]);
  for (const [slug, up] of Object.entries(subs)) {
    const r = await env.gw.admin("POST", "/admin/v1/servers", { slug, name: slug, url: up.url });
    assert.equal(r.status, 201, r.text);
  }
  assert.equal((await env.gw.admin("GET", "/admin/v1/servers/pysubold")).body.era, "legacy");
});
after(() => Promise.all([env?.stop(), ...Object.values(subs).map((s) => s.stop())]));

const LEGACY = "2025-11-25";
const rpc = (id, method, params = {}) => ({ jsonrpc: "2.0", id, method, params });

async function legacySession(path) {
  const init = await mcpPost(env.gw, path, rpc(0, "initialize", { protocolVersion: LEGACY, capabilities: {}, clientInfo: { name: "raw", version: "1" } }), { key: env.key });
  assert.equal(init.status, 200, init.text);
  const headers = { "mcp-session-id": init.headers.get("mcp-session-id"), "mcp-protocol-version": LEGACY };
  await mcpPost(env.gw, path, { jsonrpc: "2.0", method: "notifications/initialized" }, { key: env.key, headers });
  const call = async (msg) => final(await mcpPost(env.gw, path, msg, { key: env.key, headers }));
  const get = () => openStream(env.gw, path, { method: "GET", headers: { authorization: `Bearer ${env.key}`, accept: "text/event-stream", ...headers } });
  return { headers, call, get };
}

const isUpdate = (uri) => (m) => m.method === "notifications/resources/updated" && m.params?.uri === uri;

describe("resource subscriptions (legacy era)", () => {
  test("/mcp/everything: subscribe, receive notifications/resources/updated on the GET stream, unsubscribe", async () => {
    const s = await legacySession("/mcp/everything");
    const list = await s.call(rpc(1, "resources/list"));
    const uri = list.result.resources[0].uri;
    const sub = await s.call(rpc(2, "resources/subscribe", { uri }));
    assert.deepEqual(sub.result, {}, JSON.stringify(sub));
    const stream = await s.get();
    try {
      // server-everything sends updates for subscribed resources every 5 s once toggled on.
      const on = await s.call(rpc(3, "tools/call", { name: "toggle-subscriber-updates", arguments: {} }));
      assert.ok(on.result, JSON.stringify(on));
      await stream.next(isUpdate(uri), 15_000);
      const unsub = await s.call(rpc(4, "resources/unsubscribe", { uri }));
      assert.deepEqual(unsub.result, {}, JSON.stringify(unsub));
    } finally {
      await s.call(rpc(5, "tools/call", { name: "toggle-subscriber-updates", arguments: {} }));
      await stream.close();
    }
  });

  test("/mcp: subscribe by the namespaced URI; the update names the namespaced URI", async () => {
    const s = await legacySession("/mcp");
    const init = await mcpPost(env.gw, "/mcp", rpc(0, "initialize", { protocolVersion: LEGACY, capabilities: {}, clientInfo: { name: "raw", version: "1" } }), { key: env.key });
    assert.equal(init.body.result.capabilities.resources.subscribe, true, "the view offers subscriptions");
    const list = await s.call(rpc(1, "resources/list"));
    const uri = list.result.resources.find((r) => r.uri.startsWith("everything+")).uri;
    const sub = await s.call(rpc(2, "resources/subscribe", { uri }));
    assert.deepEqual(sub.result, {}, JSON.stringify(sub));
    const on = await s.call(rpc(3, "tools/call", { name: "everything__toggle-subscriber-updates", arguments: {} }));
    assert.ok(on.result, JSON.stringify(on));
    const stream = await s.get();
    try {
      await stream.next(isUpdate(uri), 15_000);
    } finally {
      await s.call(rpc(4, "tools/call", { name: "everything__toggle-subscriber-updates", arguments: {} }));
      await stream.close();
    }
    const unknown = await s.call(rpc(5, "resources/subscribe", { uri: "nosuch+demo://x" }));
    assert.equal(unknown.error.code, -32602);
  });

  test("/mcp: an upstream session opened after the GET stream joins it (subscribe after GET)", async () => {
    const s = await legacySession("/mcp");
    const stream = await s.get(); // no upstream session yet: they open lazily, on first use
    try {
      const list = await s.call(rpc(1, "resources/list"));
      const uri = list.result.resources.find((r) => r.uri.startsWith("everything+")).uri;
      const sub = await s.call(rpc(2, "resources/subscribe", { uri }));
      assert.deepEqual(sub.result, {}, JSON.stringify(sub));
      const on = await s.call(rpc(3, "tools/call", { name: "everything__toggle-subscriber-updates", arguments: {} }));
      assert.ok(on.result, JSON.stringify(on));
      await stream.next(isUpdate(uri), 15_000);
    } finally {
      await s.call(rpc(4, "tools/call", { name: "everything__toggle-subscriber-updates", arguments: {} }));
      await stream.close();
    }
  });

  test("modern clients have no resources/subscribe (2026-07-28 subscribes in subscriptions/listen)", async () => {
    const r = final(await mcpPost(env.gw, "/mcp", rpc(1, "resources/subscribe", { uri: "py+demo://greeting" }), { key: env.key, modern: true }));
    assert.equal(r.error.code, -32601);
  });
});

describe("resource subscriptions (2026-07-28 subscriptions/listen)", () => {
  /** Opens a modern `subscriptions/listen` on `path` asking for updates of `uris`. */
  async function listen(path, id, uris) {
    const body = { jsonrpc: "2.0", id, method: "subscriptions/listen", params: { _meta: modernMeta(), notifications: { resourceSubscriptions: uris } } };
    const headers = {
      authorization: `Bearer ${env.key}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": MODERN,
      "mcp-method": "subscriptions/listen",
    };
    const s = await openStream(env.gw, path, { method: "POST", headers, body: JSON.stringify(body) });
    assert.equal(s.status, 200);
    const ack = await s.next((m) => m.method === "notifications/subscriptions/acknowledged");
    return { s, ack: ack.data };
  }
  const touch = async (path, name, uri) => {
    const r = final(await mcpPost(env.gw, path, rpc(9, "tools/call", { name, arguments: { uri } }), { key: env.key, modern: true }));
    assert.match(r.result?.content?.[0]?.text ?? "", /touched/, JSON.stringify(r));
  };

  for (const [slug, era] of [
    ["pysub", "modern"],
    ["pysubold", "legacy"],
  ]) {
    test(`/mcp/${slug} (${era} upstream): acknowledged, and updates of the subscribed resource arrive tagged with the listen`, async () => {
      const { s, ack } = await listen(`/mcp/${slug}`, 41, ["demo://greeting"]);
      try {
        assert.deepEqual(ack.params.notifications.resourceSubscriptions, ["demo://greeting"], JSON.stringify(ack));
        assert.equal(ack.params._meta["io.modelcontextprotocol/subscriptionId"], 41);
        // The upstream may take a moment to open its side: touch until the update comes.
        let update;
        for (let i = 0; i < 20 && !update; i++) {
          await touch(`/mcp/${slug}`, "touch", "demo://greeting");
          update = await s.next(isUpdate("demo://greeting"), 1_000).catch(() => null);
        }
        assert.ok(update, "an update of the subscribed resource arrived");
        assert.equal(update.data.params._meta["io.modelcontextprotocol/subscriptionId"], 41);
      } finally {
        await s.close();
      }
    });
  }

  test("/mcp: namespaced URIs are routed to their servers, updates come back namespaced; unknown ones are not acknowledged", async () => {
    const wanted = ["pysub+demo://greeting", "pysubold+demo://greeting", "nosuch+demo://greeting", "demo://greeting"];
    const { s, ack } = await listen("/mcp", "l2", wanted);
    try {
      assert.deepEqual(ack.params.notifications.resourceSubscriptions, ["pysub+demo://greeting", "pysubold+demo://greeting"], JSON.stringify(ack));
      for (const slug of ["pysub", "pysubold"]) {
        let update;
        for (let i = 0; i < 20 && !update; i++) {
          await touch("/mcp", `${slug}__touch`, "demo://greeting");
          update = await s.next(isUpdate(`${slug}+demo://greeting`), 1_000).catch(() => null);
        }
        assert.ok(update, `an update from ${slug}, namespaced`);
        assert.equal(update.data.params._meta["io.modelcontextprotocol/subscriptionId"], "l2");
      }
    } finally {
      await s.close();
    }
  });
});

describe("URIs in the aggregated namespace on /mcp", () => {
  for (const era of ["legacy", "modern"]) {
    test(`${era}: resources/read answers with the URI the client asked for`, async () => {
      const call =
        era === "legacy"
          ? (await legacySession("/mcp")).call
          : async (msg) => final(await mcpPost(env.gw, "/mcp", msg, { key: env.key, modern: true }));
      const py = await call(rpc(1, "resources/read", { uri: "py+demo://greeting" }));
      assert.equal(py.result.contents[0].uri, "py+demo://greeting", JSON.stringify(py));
      const list = await call(rpc(2, "resources/list"));
      const ev = list.result.resources.find((r) => r.uri.startsWith("everything+"));
      const read = await call(rpc(3, "resources/read", { uri: ev.uri }));
      assert.equal(read.result.contents[0].uri, ev.uri);
    });
  }

  test("resource links and embedded resources in tool results are namespaced, and readable through /mcp", async () => {
    const modern = async (msg) => final(await mcpPost(env.gw, "/mcp", msg, { key: env.key, modern: true }));
    const links = await modern(rpc(1, "tools/call", { name: "everything__get-resource-links", arguments: { count: 2 } }));
    const linked = links.result.content.filter((c) => c.type === "resource_link");
    assert.equal(linked.length, 2, JSON.stringify(links));
    for (const l of linked) {
      assert.ok(l.uri.startsWith("everything+"), l.uri);
      const read = await modern(rpc(2, "resources/read", { uri: l.uri }));
      assert.equal(read.result.contents[0].uri, l.uri, JSON.stringify(read));
    }
    const embedded = await modern(rpc(3, "tools/call", { name: "everything__get-resource-reference", arguments: {} }));
    const res = embedded.result.content.find((c) => c.type === "resource");
    assert.ok(res, JSON.stringify(embedded));
    assert.ok(res.resource.uri.startsWith("everything+"), res.resource.uri);
  });

  test("/mcp/{slug} keeps the upstream's own URIs", async () => {
    const r = final(await mcpPost(env.gw, "/mcp/py", rpc(1, "resources/read", { uri: "demo://greeting" }), { key: env.key, modern: true }));
    assert.equal(r.result.contents[0].uri, "demo://greeting");
  });
});

describe("legacy clients of a modern upstream see no 2026-07-28-only fields", () => {
  test("no io.modelcontextprotocol/serverInfo (or other modern _meta) in results", async () => {
    const s = await legacySession("/mcp/py");
    for (const [i, msg] of [
      rpc(1, "tools/call", { name: "echo", arguments: { message: "x" } }),
      rpc(2, "resources/read", { uri: "demo://greeting" }),
      rpc(3, "tools/list"),
    ].entries()) {
      const r = await s.call(msg);
      assert.ok(r.result, `${i}: ${JSON.stringify(r)}`);
      const meta = r.result._meta ?? {};
      assert.deepEqual(Object.keys(meta).filter((k) => k.startsWith("io.modelcontextprotocol/")), [], JSON.stringify(r.result));
      for (const f of ["resultType", "ttlMs", "cacheScope"]) assert.ok(!(f in r.result), f);
    }
  });
});
