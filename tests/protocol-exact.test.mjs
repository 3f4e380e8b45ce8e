// Spec-exact request handling on the client side of the gateway: method names matched byte for
// byte per era (anything else refused at the gateway, never forwarded), a modern `initialize`
// treated as the removed method it is, and the 2026-07-28 header checks in the spec's order.
//
// The real server-everything (a legacy-era upstream, where the gateway forwards a legacy
// session's messages as they are) sits behind a small recording pass-through proxy (below), so the
// tests can see exactly which JSON-RPC methods reached the upstream.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { final, mcpPost, modernMeta, setupGateway, MODERN } from "./harness.mjs";

let env;
let rec;
let key;

/** A transparent HTTP proxy to `target` that records the `method` of every JSON-RPC body. */
function recordingProxy(target) {
  const seen = [];
  const up = new URL(target);
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      try {
        const m = JSON.parse(body.toString("utf8"));
        seen.push({ method: m.method, name: m.params?.name });
      } catch {}
      const fwd = http.request(
        { host: up.hostname, port: up.port, path: up.pathname, method: req.method, headers: { ...req.headers, host: up.host } },
        (r) => {
          res.writeHead(r.statusCode, r.headers);
          r.pipe(res);
        },
      );
      fwd.on("error", () => res.destroy());
      res.on("close", () => fwd.destroy());
      fwd.end(body);
    });
  });
  return new Promise((resolve) =>
    srv.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${srv.address().port}/mcp`,
        seen,
        stop: () => new Promise((r) => (srv.closeAllConnections(), srv.close(r))),
      }),
    ),
  );
}

before(async () => {
  env = await setupGateway({ everything: true });
  rec = await recordingProxy(env.upstreams.everything.url);
  const r = await env.gw.admin("POST", "/admin/v1/servers", { slug: "rec", name: "rec", url: rec.url });
  assert.equal(r.status, 201, r.text);
  // A principal allowed the server but denied its `echo` tool (deny wins).
  const mk = async (path, body) => {
    const res = await env.gw.admin("POST", path, body);
    assert.equal(res.status, 201, `${path}: ${res.text}`);
    return res.body;
  };
  const org = await mk("/admin/v1/orgs", { name: "Exact" });
  const user = await mk("/admin/v1/users", { name: "Eve", parent_id: org.id, email: "eve@exact.test" });
  key = (await mk("/admin/v1/api-keys", { name: "eve", principal_id: user.id })).key;
  await mk("/admin/v1/grants", { subject_kind: "user", subject_id: user.id, resource: "rec", effect: "allow" });
  await mk("/admin/v1/grants", { subject_kind: "user", subject_id: user.id, resource: "rec", tool: "echo", effect: "deny" });
});
after(async () => {
  await rec?.stop();
  await env?.stop();
});

const SPELLINGS = ["tools/call ", "TOOLS/CALL", "tools.call", "tools/call\u0000", "Tools/Call", " tools/call"];
const reached = (pred) => rec.seen.filter(pred);
const callEcho = (id, method) => ({ jsonrpc: "2.0", id, method, params: { name: "echo", arguments: { message: "hi" } } });

async function legacySession(path) {
  const init = await mcpPost(env.gw, path, {
    jsonrpc: "2.0",
    id: 0,
    method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "exact", version: "1" } },
  }, { key });
  assert.equal(init.status, 200, init.text);
  const sid = init.headers.get("mcp-session-id");
  assert.ok(sid);
  const headers = { "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25" };
  const ack = await mcpPost(env.gw, path, { jsonrpc: "2.0", method: "notifications/initialized" }, { key, headers });
  assert.equal(ack.status, 202);
  return (msg) => mcpPost(env.gw, path, msg, { key, headers });
}

describe("method names are matched exactly", () => {
  test("legacy session: other spellings of tools/call naming a denied tool are refused, never forwarded", async () => {
    for (const path of ["/mcp/rec", "/mcp"]) {
      const send = await legacySession(path);
      for (const [i, m] of SPELLINGS.entries()) {
        const r = await send(callEcho(10 + i, m));
        const body = final(r);
        assert.equal(body.error?.code, -32601, `${JSON.stringify(m)} on ${path}: ${r.text}`);
        assert.equal(body.id, 10 + i);
      }
      // The exact name is matched and the denial applies.
      const denied = final(await send(callEcho(20, "tools/call")));
      assert.ok(denied.error, JSON.stringify(denied));
      // An allowed tool under its exact method does reach the upstream (the recorder works).
      const ok = final(await send({ jsonrpc: "2.0", id: 21, method: "tools/call", params: { name: path === "/mcp" ? "rec__get-sum" : "get-sum", arguments: { a: 1, b: 2 } } }));
      assert.match(ok.result?.content?.[0]?.text ?? "", /3/, JSON.stringify(ok));
    }
    assert.deepEqual(reached((s) => s.method !== "tools/call" && SPELLINGS.includes(s.method)), []);
    assert.deepEqual(reached((s) => s.name === "echo"), [], "the denied tool never reached the upstream");
    assert.ok(reached((s) => s.method === "tools/call" && s.name === "get-sum").length >= 2);
  });

  test("modern: other spellings are refused with 404 / -32601, never forwarded", async () => {
    for (const path of ["/mcp/rec", "/mcp"]) {
      for (const [i, m] of SPELLINGS.entries()) {
        const r = await mcpPost(env.gw, path, callEcho(30 + i, m), { key, modern: true, headers: { "mcp-method": /^[\x21-\x7e]+$/.test(m) ? m : "tools/call" } });
        const body = final(r);
        // A header that cannot carry the spelling is a mismatch (-32020); any other is -32601.
        assert.ok([-32601, -32020].includes(body.error?.code), `${JSON.stringify(m)} on ${path}: ${r.text}`);
        if (body.error.code === -32601) assert.equal(r.status, 404);
      }
      const r = await mcpPost(env.gw, path, callEcho(40, "TOOLS/CALL"), { key, modern: true });
      assert.equal(r.status, 404);
      assert.equal(final(r).error.code, -32601);
    }
    assert.deepEqual(reached((s) => s.name === "echo"), []);
  });

  test("unknown legacy notifications are refused with an HTTP error", async () => {
    const send = await legacySession("/mcp/rec");
    const r = await send({ jsonrpc: "2.0", method: "notifications/Initialized" });
    assert.equal(r.status, 400);
    assert.equal(final(r).error.code, -32601);
  });
});

describe("2026-07-28 removed methods and check order", () => {
  test("a modern initialize (and the other removed methods) get HTTP 404 / -32601, not a legacy result", async () => {
    for (const path of ["/mcp/rec", "/mcp"]) {
      for (const m of ["initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"]) {
        const params = m === "initialize" ? { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "x", version: "1" } } : {};
        const r = await mcpPost(env.gw, path, { jsonrpc: "2.0", id: 7, method: m, params }, { key, modern: true });
        assert.equal(r.status, 404, `${m} on ${path}: ${r.text}`);
        assert.equal(final(r).error?.code, -32601, `${m} on ${path}: ${r.text}`);
        assert.equal(final(r).id, 7);
        assert.equal(r.headers.get("mcp-session-id"), null, "no session is minted");
      }
    }
  });

  test("a header/body version mismatch is -32020 before the version is judged (-32022)", async () => {
    const body = { jsonrpc: "2.0", id: 3, method: "server/discover", params: { _meta: modernMeta({ "io.modelcontextprotocol/protocolVersion": "v999.0.0" }) } };
    const mismatch = await mcpPost(env.gw, "/mcp/rec", null, {
      key,
      raw: JSON.stringify(body),
      headers: { "mcp-protocol-version": MODERN, "mcp-method": "server/discover" },
    });
    assert.equal(mismatch.status, 400);
    assert.equal(final(mismatch).error.code, -32020, mismatch.text);
    const unsupported = await mcpPost(env.gw, "/mcp/rec", null, {
      key,
      raw: JSON.stringify(body),
      headers: { "mcp-protocol-version": "v999.0.0", "mcp-method": "server/discover" },
    });
    assert.equal(unsupported.status, 400);
    assert.equal(final(unsupported).error.code, -32022, unsupported.text);
    assert.equal(final(unsupported).error.data.requested, "v999.0.0");
  });
});

describe("Origin in local development (no PUBLIC_ORIGIN)", () => {
  const list = { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} };
  test("loopback origins on any port are accepted; look-alikes are not", async () => {
    for (const origin of ["http://localhost:1234", "http://127.0.0.1:9", "http://[::1]:5", "https://localhost"]) {
      const r = await mcpPost(env.gw, "/mcp/rec", list, { key, modern: true, headers: { origin } });
      assert.equal(r.status, 200, `${origin}: ${r.text}`);
      assert.equal(r.headers.get("access-control-allow-origin"), origin);
      const pre = await env.gw.fetch("/mcp/rec", { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST" } });
      assert.equal(pre.status, 204, origin);
    }
    for (const origin of ["http://localhost.evil.example", "http://127.0.0.1@evil.example", "http://evil.example", "null"]) {
      const r = await mcpPost(env.gw, "/mcp/rec", list, { key, modern: true, headers: { origin } });
      assert.equal(r.status, 403, `${origin}: ${r.text}`);
    }
  });
});
