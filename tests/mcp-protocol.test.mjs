// The MCP endpoint's protocol rules, driven with raw HTTP so every status code and JSON-RPC
// error can be checked exactly: both eras, sessions, bad input, and the agent's token never
// reaching the upstream.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { final, mcpPost, MODERN, setupGateway } from "./harness.mjs";

let env;
before(async () => {
  env = await setupGateway({ everything: true, py: true });
});
after(() => env?.stop());

const PY = "/mcp/py";
const call = (id, name, args = {}) => ({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } });
const init = (id = 0, version = "2025-11-25") => ({
  jsonrpc: "2.0",
  id,
  method: "initialize",
  params: { protocolVersion: version, capabilities: {}, clientInfo: { name: "raw", version: "1" } },
});

async function openSession(path, key = env.key) {
  const r = await mcpPost(env.gw, path, init(), { key });
  assert.equal(r.status, 200, r.text);
  const sid = r.headers.get("mcp-session-id");
  assert.ok(sid, "initialize returns Mcp-Session-Id");
  const ack = await mcpPost(env.gw, path, { jsonrpc: "2.0", method: "notifications/initialized" }, {
    key,
    headers: { "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25" },
  });
  assert.equal(ack.status, 202);
  return sid;
}

describe("authentication", () => {
  test("missing key → 401 with WWW-Authenticate: Bearer", async () => {
    const r = await mcpPost(env.gw, PY, call(1, "echo"), { modern: true });
    assert.equal(r.status, 401);
    assert.match(r.headers.get("www-authenticate"), /^Bearer/);
    assert.equal(r.body.error.code, -32001);
  });
  test("forged key → 401 invalid_token", async () => {
    const r = await mcpPost(env.gw, PY, call(1, "echo"), { modern: true, key: "mcpgw_forgedforgedforged" });
    assert.equal(r.status, 401);
    assert.match(r.headers.get("www-authenticate"), /invalid_token/);
  });
  test("the upstream never sees the agent's key (both eras)", async () => {
    const modern = await mcpPost(env.gw, PY, call(1, "whoami"), { modern: true, key: env.key });
    const seenModern = final(modern).result.content[0].text;
    assert.ok(!seenModern.includes(env.key), seenModern);
    assert.equal(JSON.parse(seenModern).authorization, undefined);
    const sid = await openSession(PY);
    const legacy = await mcpPost(env.gw, PY, call(2, "whoami"), { key: env.key, headers: { "mcp-session-id": sid } });
    const seenLegacy = final(legacy).result.content[0].text;
    assert.ok(!seenLegacy.includes(env.key), seenLegacy);
  });
  test("unknown server → 404", async () => {
    const r = await mcpPost(env.gw, "/mcp/nope", call(1, "echo"), { modern: true, key: env.key });
    assert.equal(r.status, 404);
  });
});

describe("bad input", () => {
  const key = () => env.key;
  test("unparseable JSON → 400 / -32700", async () => {
    const r = await mcpPost(env.gw, PY, null, { key: key(), raw: "{not json" });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, -32700);
  });
  test("not a JSON-RPC request → 400 / -32600", async () => {
    for (const raw of ['{"hello":1}', "[]", '{"jsonrpc":"2.0","id":1,"method":7}', '"x"']) {
      const r = await mcpPost(env.gw, PY, null, { key: key(), raw });
      assert.equal(r.status, 400, raw);
      assert.equal(r.body.error.code, -32600, raw);
    }
  });
  test("oversized body → 413", async () => {
    const big = JSON.stringify(call(1, "echo", { message: "x".repeat(2 * 1024 * 1024) }));
    // On a connection of its own: the gateway answers before reading the body and the
    // connection closes, which must not break the keep-alive pool the other requests share.
    const status = await new Promise((resolve, reject) => {
      const req = http.request(`${env.gw.url}${PY}`, {
        method: "POST",
        agent: false,
        headers: { authorization: `Bearer ${key()}`, "content-type": "application/json", accept: "application/json, text/event-stream", "content-length": Buffer.byteLength(big) },
      });
      req.on("response", (res) => (res.resume(), resolve(res.statusCode)));
      req.on("error", reject);
      req.end(big);
    });
    assert.equal(status, 413);
  });
  test("wrong Accept → 406, wrong Content-Type → 415", async () => {
    const a = await mcpPost(env.gw, PY, call(1, "echo"), { key: key(), modern: true, headers: { accept: "application/json" } });
    assert.equal(a.status, 406);
    const c = await mcpPost(env.gw, PY, call(1, "echo"), { key: key(), modern: true, headers: { "content-type": "text/plain" } });
    assert.equal(c.status, 415);
  });
  test("Origin not allowed → 403; an allowed one passes", async () => {
    const bad = await mcpPost(env.gw, PY, call(1, "echo", { message: "o" }), { key: key(), modern: true, headers: { origin: "http://evil.example" } });
    assert.equal(bad.status, 403);
    const ok = await mcpPost(env.gw, PY, call(1, "echo", { message: "o" }), { key: key(), modern: true, headers: { origin: "http://localhost:8787" } });
    assert.equal(ok.status, 200);
  });
});

describe("browsers (CORS)", () => {
  test("preflight from an allowed origin → 204; a foreign one → 403", async () => {
    const ok = await env.gw.fetch(PY, { method: "OPTIONS", headers: { origin: "http://localhost:8787", "access-control-request-method": "POST" } });
    assert.equal(ok.status, 204);
    assert.equal(ok.headers.get("access-control-allow-origin"), "http://localhost:8787");
    assert.match(ok.headers.get("access-control-allow-headers"), /mcp-session-id/);
    const bad = await env.gw.fetch(PY, { method: "OPTIONS", headers: { origin: "http://evil.example" } });
    assert.equal(bad.status, 403);
  });
  test("an allowed browser client can read its Mcp-Session-Id", async () => {
    const r = await mcpPost(env.gw, "/mcp/everything", init(), { key: env.key, headers: { origin: "http://localhost:8787" } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("access-control-allow-origin"), "http://localhost:8787");
    assert.match(r.headers.get("access-control-expose-headers"), /mcp-session-id/);
    assert.ok(r.headers.get("mcp-session-id"));
  });
});

describe("modern era (2026-07-28)", () => {
  test("server/discover names the supported versions", async () => {
    const r = await mcpPost(env.gw, PY, { jsonrpc: "2.0", id: 1, method: "server/discover", params: {} }, { key: env.key, modern: true });
    assert.equal(r.status, 200);
    assert.ok(r.body.result.supportedVersions.includes(MODERN));
    assert.ok(r.body.result.capabilities.tools);
  });
  test("Mcp-Name disagreeing with the body → 400 / -32020", async () => {
    const r = await mcpPost(env.gw, PY, call(1, "echo", { message: "x" }), { key: env.key, modern: true, headers: { "mcp-name": "add" } });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, -32020);
  });
  test("missing Mcp-Method → 400 / -32020", async () => {
    const r = await mcpPost(env.gw, PY, call(1, "echo"), { key: env.key, modern: true, headers: { "mcp-method": "" } });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, -32020);
  });
  test("unsupported version → 400 / -32022 with data.supported", async () => {
    const msg = { jsonrpc: "2.0", id: 1, method: "tools/list", params: { _meta: { "io.modelcontextprotocol/protocolVersion": "2099-01-01", "io.modelcontextprotocol/clientCapabilities": {} } } };
    const r = await mcpPost(env.gw, PY, msg, { key: env.key, headers: { "mcp-protocol-version": "2099-01-01", "mcp-method": "tools/list" } });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, -32022);
    assert.ok(r.body.error.data.supported.includes(MODERN));
  });
  test("unknown method → 404 / -32601", async () => {
    const r = await mcpPost(env.gw, PY, { jsonrpc: "2.0", id: 1, method: "nope/nothing", params: {} }, { key: env.key, modern: true });
    assert.equal(r.status, 404);
    assert.equal(r.body.error.code, -32601);
  });
  test("GET and DELETE → 405", async () => {
    for (const method of ["GET", "DELETE"]) {
      const r = await env.gw.fetch(PY, { method, headers: { authorization: `Bearer ${env.key}`, accept: "text/event-stream" } });
      assert.equal(r.status, 405, method);
    }
  });
  test("a legacy-shaped request without a session → 400 (what makes dual-era clients fall back)", async () => {
    const r = await mcpPost(env.gw, PY, { jsonrpc: "2.0", id: 1, method: "tools/list" }, { key: env.key });
    assert.equal(r.status, 400);
  });
  test("resources, prompts and completion pass through (modern upstream)", async () => {
    const read = await mcpPost(env.gw, PY, { jsonrpc: "2.0", id: 1, method: "resources/read", params: { uri: "demo://greeting" } }, { key: env.key, modern: true });
    assert.match(final(read).result.contents[0].text, /Hello/);
    const prompt = await mcpPost(env.gw, PY, { jsonrpc: "2.0", id: 2, method: "prompts/get", params: { name: "greet", arguments: { name: "Ada" } } }, { key: env.key, modern: true });
    assert.match(JSON.stringify(final(prompt).result.messages), /Ada/);
    const comp = await mcpPost(env.gw, PY, { jsonrpc: "2.0", id: 3, method: "completion/complete", params: { ref: { type: "ref/prompt", name: "greet" }, argument: { name: "name", value: "Al" } } }, { key: env.key, modern: true });
    assert.deepEqual(final(comp).result.completion.values.sort(), ["Alan", "Alice"]);
  });
  test("a modern client on a legacy upstream gets modern results (resultType, ttlMs)", async () => {
    const r = await mcpPost(env.gw, "/mcp/everything", { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }, { key: env.key, modern: true });
    const res = final(r).result;
    assert.equal(res.resultType, "complete");
    assert.equal(typeof res.ttlMs, "number");
    assert.ok(res.tools.some((t) => t.name === "echo"));
  });
});

describe("legacy era sessions (2025-11-25)", () => {
  test("ping, tools/list and echo on a session (modern upstream behind it)", async () => {
    const sid = await openSession(PY);
    const h = { "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25" };
    const ping = await mcpPost(env.gw, PY, { jsonrpc: "2.0", id: 1, method: "ping" }, { key: env.key, headers: h });
    assert.deepEqual(ping.body.result, {});
    const list = await mcpPost(env.gw, PY, { jsonrpc: "2.0", id: 2, method: "tools/list" }, { key: env.key, headers: h });
    const res = final(list).result;
    assert.ok(res.tools.some((t) => t.name === "echo"));
    assert.equal(res.resultType, undefined, "modern-only fields are removed for legacy clients");
  });
  test("wrong MCP-Protocol-Version on a session → 400", async () => {
    const sid = await openSession("/mcp/everything");
    const r = await mcpPost(env.gw, "/mcp/everything", { jsonrpc: "2.0", id: 1, method: "ping" }, {
      key: env.key,
      headers: { "mcp-session-id": sid, "mcp-protocol-version": "2024-11-05" },
    });
    assert.equal(r.status, 400);
  });
  test("a session is usable only by the key that created it", async () => {
    const sid = await openSession("/mcp/everything");
    const other = await env.gw.admin("POST", "/admin/v1/api-keys", { name: "other" });
    const r = await mcpPost(env.gw, "/mcp/everything", { jsonrpc: "2.0", id: 1, method: "ping" }, { key: other.body.key, headers: { "mcp-session-id": sid } });
    assert.equal(r.status, 404);
  });
  test("unknown session → 404; DELETE ends a session, then 404", async () => {
    const unknown = await mcpPost(env.gw, "/mcp/everything", { jsonrpc: "2.0", id: 1, method: "ping" }, { key: env.key, headers: { "mcp-session-id": "no-such-session" } });
    assert.equal(unknown.status, 404);
    const sid = await openSession("/mcp/everything");
    const del = await env.gw.fetch("/mcp/everything", { method: "DELETE", headers: { authorization: `Bearer ${env.key}`, "mcp-session-id": sid } });
    assert.equal(del.status, 200);
    const after = await mcpPost(env.gw, "/mcp/everything", { jsonrpc: "2.0", id: 2, method: "ping" }, { key: env.key, headers: { "mcp-session-id": sid } });
    assert.equal(after.status, 404);
  });
  test("GET opens the server→client stream of a legacy upstream", async () => {
    const sid = await openSession("/mcp/everything");
    const ctrl = new AbortController();
    const r = await env.gw.fetch("/mcp/everything", {
      method: "GET",
      headers: { authorization: `Bearer ${env.key}`, "mcp-session-id": sid, accept: "text/event-stream", "mcp-protocol-version": "2025-11-25" },
      signal: ctrl.signal,
    });
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type"), /text\/event-stream/);
    ctrl.abort();
  });
  test("progress events carry resumable ids, and Last-Event-ID replays what followed", async () => {
    const sid = await openSession("/mcp/everything");
    const h = { "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25" };
    const msg = { jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "trigger-long-running-operation", arguments: { duration: 1, steps: 2 }, _meta: { progressToken: "p" } } };
    const r = await mcpPost(env.gw, "/mcp/everything", msg, { key: env.key, headers: h });
    // A resumable stream opens with a priming event (an id, no data), then two progress
    // notifications and the result, each with its own id.
    const ids = [...r.text.matchAll(/^id: (\S+)$/gm)].map((m) => m[1]);
    assert.equal(ids.length, 4, r.text);
    const replay = await env.gw.fetch("/mcp/everything", {
      method: "GET",
      headers: { authorization: `Bearer ${env.key}`, accept: "text/event-stream", "last-event-id": ids[1], ...h },
    });
    const reader = replay.body.getReader();
    let text = "";
    while (!/"id":7/.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    reader.cancel();
    assert.ok(text.includes(`id: ${ids[2]}`) && text.includes(`id: ${ids[3]}`), text);
    assert.ok(!text.includes(`id: ${ids[1]}\n`), "replay starts after the given id");
  });
});
