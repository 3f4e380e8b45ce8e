// The admin API: bearer auth, server registration with catalog sync, API keys, and RFC 9457
// problem documents for every error.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { mcpPost, setupGateway } from "./harness.mjs";

let env;
before(async () => {
  env = await setupGateway({ everything: true });
});
after(() => env?.stop());

const isProblem = (r, status) => {
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get("content-type"), /application\/problem\+json/);
  assert.ok(r.body.type && r.body.title && r.body.detail, r.text);
};

describe("admin auth", () => {
  test("missing or wrong admin token → 401 problem", async () => {
    const none = await env.gw.fetch("/admin/v1/servers");
    assert.equal(none.status, 401);
    assert.match(none.headers.get("content-type"), /problem\+json/);
    const wrong = await env.gw.fetch("/admin/v1/servers", { headers: { authorization: "Bearer nope" } });
    assert.equal(wrong.status, 401);
  });
});

describe("servers", () => {
  test("registration synced the catalog, era detected and remembered", async () => {
    const s = await env.gw.admin("GET", "/admin/v1/servers/everything");
    assert.equal(s.status, 200);
    assert.equal(s.body.era, "legacy");
    assert.ok(s.body.last_synced_at);
    const tools = await env.gw.admin("GET", "/admin/v1/servers/everything/tools");
    const echo = tools.body.tools.find((t) => t.name === "echo");
    assert.ok(echo, tools.text);
    assert.equal(echo.input_schema.type, "object");
    assert.match(echo.definition_hash, /^[0-9a-f]{64}$/);
    const list = await env.gw.admin("GET", "/admin/v1/servers");
    assert.deepEqual(list.body.servers.map((x) => x.slug), ["everything"]);
  });
  test("duplicate slug → 409; invalid slug or URL → 422; bad JSON → 400; unknown field → 422", async () => {
    isProblem(await env.gw.admin("POST", "/admin/v1/servers", { slug: "everything", name: "x", url: env.upstreams.everything.url }), 409);
    isProblem(await env.gw.admin("POST", "/admin/v1/servers", { slug: "Bad_Slug", name: "x", url: "http://127.0.0.1:1/mcp" }), 422);
    isProblem(await env.gw.admin("POST", "/admin/v1/servers", { slug: "ok", name: "x", url: "ftp://x" }), 422);
    isProblem(await env.gw.admin("POST", "/admin/v1/servers", { slug: "ok", name: "x", url: "http://a/", bogus: 1 }), 422);
    const bad = await env.gw.fetch("/admin/v1/servers", {
      method: "POST",
      headers: { authorization: `Bearer ${env.gw.adminToken}`, "content-type": "application/json" },
      body: "{oops",
    });
    assert.equal(bad.status, 400);
  });
  test("an unreachable upstream → 502 problem and nothing stored", async () => {
    const r = await env.gw.admin("POST", "/admin/v1/servers", { slug: "ghost", name: "Ghost", url: "http://127.0.0.1:9/mcp" });
    isProblem(r, 502);
    isProblem(await env.gw.admin("GET", "/admin/v1/servers/ghost"), 404);
  });
  test("PATCH, sync, disable, DELETE", async () => {
    const p = await env.gw.admin("PATCH", "/admin/v1/servers/everything", { description: "reference server", owner: "platform" });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.body.owner, "platform");
    const s = await env.gw.admin("POST", "/admin/v1/servers/everything/sync");
    assert.equal(s.status, 200, s.text);
    const off = await env.gw.admin("PATCH", "/admin/v1/servers/everything", { status: "disabled" });
    assert.equal(off.body.status, "disabled");
    const r = await mcpPost(env.gw, "/mcp/everything", { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }, { key: env.key, modern: true });
    assert.equal(r.status, 404, "a disabled server is not served");
    await env.gw.admin("PATCH", "/admin/v1/servers/everything", { status: "active" });
    isProblem(await env.gw.admin("PATCH", "/admin/v1/servers/everything", { status: "sleepy" }), 422);
    isProblem(await env.gw.admin("DELETE", "/admin/v1/servers/nope"), 404);
  });
});

describe("api keys", () => {
  test("shown once, listed without the secret, revoked keys fail on the next request", async () => {
    const k = await env.gw.admin("POST", "/admin/v1/api-keys", { name: "ci" });
    assert.equal(k.status, 201);
    assert.match(k.body.key, /^mcpgw_/);
    assert.equal(k.body.prefix, k.body.key.slice(0, 12));
    const list = await env.gw.admin("GET", "/admin/v1/api-keys");
    const listed = list.body.api_keys.find((x) => x.id === k.body.id);
    assert.ok(listed);
    assert.ok(!list.text.includes(k.body.key), "the secret is never listed");
    assert.equal(listed.key_hash, undefined);
    const msg = { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} };
    assert.equal((await mcpPost(env.gw, "/mcp/everything", msg, { key: k.body.key, modern: true })).status, 200);
    assert.equal((await env.gw.admin("DELETE", `/admin/v1/api-keys/${k.body.id}`)).status, 204);
    assert.equal((await mcpPost(env.gw, "/mcp/everything", msg, { key: k.body.key, modern: true })).status, 401);
    isProblem(await env.gw.admin("DELETE", `/admin/v1/api-keys/${k.body.id}`), 404);
  });
});
