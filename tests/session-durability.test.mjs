// Legacy sessions on /mcp: one upstream session per server, opened lazily and re-opened
// transparently when the upstream forgets it (restart); and the gateway session itself survives
// a restart of the gateway, because its state lives in a Durable Object.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { final, mcpPost, startEverythingServer, startGateway, startPyServer } from "./harness.mjs";

const dir = mkdtempSync(join(tmpdir(), "mcpgw-persist-"));
let gw, everything, py, key;
before(async () => {
  [gw, everything, py] = await Promise.all([startGateway({ persist: dir }), startEverythingServer(), startPyServer()]);
  for (const [slug, up] of [["everything", everything], ["py", py]]) {
    const r = await gw.admin("POST", "/admin/v1/servers", { slug, name: slug, url: up.url });
    assert.equal(r.status, 201, r.text);
  }
  key = (await gw.admin("POST", "/admin/v1/api-keys", { name: "durable" })).body.key;
});
after(async () => {
  await Promise.all([gw?.stop(), everything?.stop(), py?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

const rpc = (id, method, params = {}) => ({ jsonrpc: "2.0", id, method, params });
const echo = (id, name) => rpc(id, "tools/call", { name, arguments: { message: `m${id}` } });

test("an upstream restart is survived; so is a gateway restart", async () => {
  const init = await mcpPost(gw, "/mcp", rpc(0, "initialize", { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } }), { key });
  const sid = init.headers.get("mcp-session-id");
  const call = async (g, id, name) => final(await mcpPost(g, "/mcp", echo(id, name), { key, headers: { "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25" } }));

  assert.equal((await call(gw, 1, "everything__echo")).result.content[0].text, "Echo: m1");
  assert.equal((await call(gw, 2, "py__echo")).result.content[0].text, "echo: m2");

  // The legacy upstream restarts and forgets every session: the gateway re-opens one, once.
  const port = everything.port;
  await everything.stop();
  everything = await startEverythingServer({ port });
  assert.equal((await call(gw, 3, "everything__echo")).result.content[0].text, "Echo: m3");

  // The gateway restarts (same storage): the session and its upstream session are still there.
  await gw.stop();
  gw = await startGateway({ persist: dir });
  assert.equal((await call(gw, 4, "everything__echo")).result.content[0].text, "Echo: m4");
  assert.equal((await call(gw, 5, "py__echo")).result.content[0].text, "echo: m5");
});
