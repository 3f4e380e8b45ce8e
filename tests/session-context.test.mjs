// The context the Worker hands a legacy session's Durable Object (caller, grants, server record,
// instructions) travels in an internal header, so it must be valid ASCII whatever the names and
// instructions hold. Against a real upstream (the PyPI `mcp` server, legacy era) registered under
// a non-ASCII name and description: the session initializes, lists and calls tools, and neither
// the Worker's console nor the runtime warns about a header's characters. The runtime's warnings
// (workerd's "... contains non-ASCII characters") go to the DevTools console, not to the Worker's
// log stream, so the test reads them where `wrangler dev` does: through the V8 inspector.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { final, freePort, mcpPost, startGateway, startPyServer } from "./harness.mjs";

const LEGACY = "2025-11-25";
const PATH = "/mcp/demo";
const NAME = "Démo — 服务器 ☃";
const DESCRIPTION = "Überprüft «tout»: naïve café, emoji 🚀";
let gw;
let up;
let key;
let inspector;
const logs = [];

/** Collects the console of the gateway's isolate over the DevTools protocol (runtime warnings too). */
async function watchConsole(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const target = targets.find((t) => t.id.startsWith("core:user:"));
  assert.ok(target, `an inspector target for the Worker; have ${targets.map((t) => t.id).join(", ")}`);
  const ws = new WebSocket(target.webSocketDebuggerUrl || `ws://127.0.0.1:${port}/${target.id}`);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("inspector: cannot connect"));
  });
  const enabled = new Promise((resolve) => {
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.id === 2) resolve();
      if (m.method === "Runtime.consoleAPICalled") {
        const text = m.params.args.map((a) => a.value ?? a.description ?? "").join(" ");
        logs.push({ level: `inspector:${m.params.type}`, message: text });
      } else if (m.method === "Log.entryAdded") {
        logs.push({ level: `inspector:${m.params.entry.level}`, message: m.params.entry.text });
      } else if (m.method === "Runtime.exceptionThrown") {
        logs.push({ level: "inspector:exception", message: JSON.stringify(m.params.exceptionDetails) });
      }
    };
  });
  ws.send(JSON.stringify({ id: 1, method: "Log.enable" }));
  ws.send(JSON.stringify({ id: 2, method: "Runtime.enable" }));
  await enabled;
  return ws;
}

before(async () => {
  const inspectorPort = await freePort();
  gw = await startGateway({ inspectorPort, onLog: (level, message) => logs.push({ level, message }) });
  inspector = await watchConsole(inspectorPort);
  up = await startPyServer();
  const r = await gw.admin("POST", "/admin/v1/servers", { slug: "demo", name: NAME, description: DESCRIPTION, url: up.url });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.name, NAME);
  const k = await gw.admin("POST", "/admin/v1/api-keys", { name: "clé de test ✓" });
  assert.equal(k.status, 201, k.text);
  key = k.body.key;
});
after(() => {
  inspector?.close();
  return Promise.all([gw?.stop(), up?.stop()]);
});

test("a legacy session whose server has a non-ASCII name works and draws no header warning", async () => {
  const init = {
    jsonrpc: "2.0",
    id: 0,
    method: "initialize",
    params: { protocolVersion: LEGACY, capabilities: {}, clientInfo: { name: "clïent", version: "1" } },
  };
  const r = await mcpPost(gw, PATH, init, { key });
  assert.equal(r.status, 200, r.text);
  const sid = r.headers.get("mcp-session-id");
  assert.ok(sid, "a session id");
  assert.equal(final(r).result.protocolVersion, LEGACY);
  const headers = { "mcp-session-id": sid, "mcp-protocol-version": LEGACY };
  const ack = await mcpPost(gw, PATH, { jsonrpc: "2.0", method: "notifications/initialized" }, { key, headers });
  assert.equal(ack.status, 202, ack.text);

  const list = await mcpPost(gw, PATH, { jsonrpc: "2.0", id: 1, method: "tools/list" }, { key, headers });
  assert.equal(list.status, 200, list.text);
  assert.ok(final(list).result.tools.some((t) => t.name === "echo"), list.text);
  const call = { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "echo", arguments: { message: "héllo" } } };
  const echoed = await mcpPost(gw, PATH, call, { key, headers });
  assert.equal(echoed.status, 200, echoed.text);
  assert.match(JSON.stringify(final(echoed).result.content), /héllo/);

  const warned = logs.filter(({ message }) => /non-ASCII/i.test(message)).map((l) => `${l.level}: ${l.message.slice(0, 100)}`);
  assert.deepEqual(warned, [], "no header warning from the Worker or the runtime");
});
