// A legacy session's state while several of its requests run at once in its Durable Object:
// a change made by one request (logging/setLevel) is never written back to its old value by
// another that started earlier, and a request that runs while the session is deleted answers
// "session not found" cleanly. Against a real upstream: the PyPI `mcp` server restricted to
// 2026-07-28 (variant `modern`), so a legacy client's log level lives in the gateway session
// and reaches the upstream as `_meta`; the server answers a silent call as plain JSON, so the
// call holds its request open in the session object until the upstream is done.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { final, mcpPost, setupGateway, startPyServer } from "./harness.mjs";

const LEGACY = "2025-11-25";
const PATH = "/mcp/pymodern";
let env;
let up;
let requestLog;

before(async () => {
  env = await setupGateway();
  requestLog = join(mkdtempSync(join(tmpdir(), "session-state-")), "requests.jsonl");
  up = await startPyServer({ variants: ["modern"], args: ["--log-headers", requestLog] });
  const r = await env.gw.admin("POST", "/admin/v1/servers", { slug: "pymodern", name: "pymodern", url: up.url });
  assert.equal(r.status, 201, r.text);
  const s = await env.gw.admin("GET", "/admin/v1/servers/pymodern");
  assert.equal(s.body.era, "modern", s.text);
  assert.equal(s.body.legacy_version ?? null, null, "a 2026-07-28-only upstream");
});
after(() => Promise.all([env?.stop(), up?.stop()]));

const headers = (sid) => ({ authorization: `Bearer ${env.key}`, "mcp-session-id": sid, "mcp-protocol-version": LEGACY });
const call = (id, name, args) => ({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } });

async function openSession() {
  const init = { jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: LEGACY, capabilities: {}, clientInfo: { name: "raw", version: "1" } } };
  const r = await mcpPost(env.gw, PATH, init, { key: env.key });
  assert.equal(r.status, 200, r.text);
  const sid = r.headers.get("mcp-session-id");
  const ack = await mcpPost(env.gw, PATH, { jsonrpc: "2.0", method: "notifications/initialized" }, { key: env.key, headers: headers(sid) });
  assert.equal(ack.status, 202, ack.text);
  return sid;
}

/** How many `tools/call` of `wait` the upstream has received (its request log). */
function waitCalls() {
  if (!existsSync(requestLog)) return 0;
  return readFileSync(requestLog, "utf8").split("\n").filter((l) => l.includes(`"mcp-name": "wait"`)).length;
}

/** Sends a `wait` call on the session and resolves once the upstream holds it (not before). */
async function holdCall(sid, id, seconds) {
  const before = waitCalls();
  const pending = mcpPost(env.gw, PATH, call(id, "wait", { tag: `t${id}`, seconds }), { key: env.key, headers: headers(sid) });
  const deadline = Date.now() + 15_000;
  while (waitCalls() <= before) {
    if (Date.now() > deadline) throw new Error("the upstream never received the call");
    await new Promise((r) => setTimeout(r, 50));
  }
  return { pending };
}

test("a request in flight during logging/setLevel does not write the old level back", async () => {
  const sid = await openSession();
  // The long call loads the session (no level yet) and is held upstream.
  const { pending } = await holdCall(sid, 1, 2);
  const set = await mcpPost(env.gw, PATH, { jsonrpc: "2.0", id: 2, method: "logging/setLevel", params: { level: "info" } }, {
    key: env.key,
    headers: headers(sid),
  });
  assert.equal(set.status, 200, set.text);
  assert.deepEqual(set.body.result, {});
  const done = await pending;
  assert.equal(done.status, 200, done.text);
  assert.match(final(done).result.content[0].text, /waited/);
  // The level set meanwhile still holds: the upstream is asked for info logs and sends one.
  const noted = await mcpPost(env.gw, PATH, call(3, "note", { text: "level kept" }), { key: env.key, headers: headers(sid) });
  assert.equal(noted.status, 200, noted.text);
  const messages = Array.isArray(noted.body) ? noted.body : [noted.body];
  const logs = messages.filter((m) => m.method === "notifications/message");
  assert.equal(logs.length, 1, `one log message at the level set: ${noted.text}`);
  assert.equal(logs[0].params.level, "info");
  assert.equal(final(noted).result.content[0].text, "level kept");
});

test("a request running while its session is deleted answers session-not-found; the session stays gone", async () => {
  const sid = await openSession();
  const { pending } = await holdCall(sid, 1, 2);
  const del = await env.gw.fetch(PATH, { method: "DELETE", headers: headers(sid) });
  assert.equal(del.status, 200, await del.text());
  const r = await pending;
  assert.equal(r.status, 404, `the racing request: ${r.status} ${r.text}`);
  assert.equal(r.body?.jsonrpc, "2.0", r.text);
  assert.match(r.body?.error?.message ?? "", /session/i, r.text);
  assert.doesNotMatch(r.text, /table/i);
  // Nothing the racing request did brought the session back.
  const again = await mcpPost(env.gw, PATH, { jsonrpc: "2.0", id: 4, method: "ping" }, { key: env.key, headers: headers(sid) });
  assert.equal(again.status, 404, again.text);
  const set = await mcpPost(env.gw, PATH, { jsonrpc: "2.0", id: 5, method: "logging/setLevel", params: { level: "info" } }, {
    key: env.key,
    headers: headers(sid),
  });
  assert.equal(set.status, 404, set.text);
});
