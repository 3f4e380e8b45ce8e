// Per-user upstream OAuth: a user who has not connected gets a clear error carrying the link;
// /connect/{slug} registers a client at the upstream's authorization server (a real OpenID
// provider, dynamic registration), runs code + PKCE with the resource parameter, and keeps the
// user's tokens sealed; a Durable Object alarm refreshes them before they expire; a failing
// refresh is visible to admins and to the user — never silent.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import { browse, final, freePort, mcpPost, startGateway, startOidcProvider, startPyServer } from "./harness.mjs";

let gw, op, up, key, user;
before(async () => {
  gw = await startGateway({ vars: { VAULT_KEYS: `k1:${randomBytes(32).toString("base64")}` } });
  op = await startOidcProvider({ accessTokenTtl: 4 });
  const port = await freePort();
  up = await startPyServer({ port, args: ["--require-bearer", `${op.issuer},http://127.0.0.1:${port}/mcp`] });
  const org = (await gw.admin("POST", "/admin/v1/orgs", { name: "Acme" })).body.id;
  user = (await gw.admin("POST", "/admin/v1/users", { name: "Alice", parent_id: org })).body.id;
  key = (await gw.admin("POST", "/admin/v1/api-keys", { name: "alice", principal_id: user })).body.key;
  await gw.admin("POST", "/admin/v1/grants", { subject_kind: "user", subject_id: user, resource: "personal", effect: "allow" });
});
after(async () => {
  await Promise.all([gw?.stop(), op?.stop(), up?.stop()]);
});

const list = () => mcpPost(gw, "/mcp/personal", { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }, { key, modern: true });
const echo = () => mcpPost(gw, "/mcp/personal", { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "echo", arguments: { message: "mine" } } }, { key, modern: true });
const connections = async () => (await gw.admin("GET", "/admin/v1/servers/personal/connections")).body.connections;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("connect, use, refresh before expiry, and a failed refresh made visible", async () => {
  const reg = await gw.admin("POST", "/admin/v1/servers", {
    slug: "personal",
    name: "Personal",
    url: up.url,
    // No authorization_server: the gateway discovers it from the upstream's metadata.
    credentials: { kind: "oauth_user", scopes: ["openid"] },
  });
  assert.equal(reg.status, 201, reg.text);

  const before = final(await list()).error;
  assert.equal(before.data.reason, "needs_connect", JSON.stringify(before));
  assert.match(before.message, /connect your account/);
  const link = before.data.connect_url;
  assert.ok(link.startsWith(`${gw.url}/connect/personal?ticket=`), link);

  const cb = await browse(link, `${gw.url}/connect/callback`, "alice-at-upstream");
  const done = await fetch(cb);
  assert.equal(done.status, 200, await done.clone().text());
  assert.match(await done.text(), /Connected/);
  const [c1] = await connections();
  assert.equal(c1.user, user);
  assert.equal(c1.status, "connected");

  assert.equal(final(await echo()).result.content[0].text, "echo: mine", "the upstream accepted the user's token");
  const kv = await gw.mf.getKVNamespace("VAULT");
  const sealed = await kv.get(`cred:user:personal:${user}`);
  assert.ok(sealed && !sealed.includes("eyJ"), "the user's tokens are sealed");

  // Tokens live 4 s; the alarm refreshes at half-life, with no request needed.
  await sleep(3500);
  const [c2] = await connections();
  assert.ok(c2.refreshed_at, `refreshed by the alarm: ${JSON.stringify(c2)}`);
  assert.equal(final(await echo()).result.content[0].text, "echo: mine");

  const doc = await (await gw.fetch("/connect/client-metadata.json")).json();
  assert.equal(doc.client_id, `${gw.url}/connect/client-metadata.json`, "the gateway's own client metadata document names itself");
  assert.deepEqual(doc.redirect_uris, [`${gw.url}/connect/callback`]);

  // A legacy client that can open URLs is asked to, with a URL elicitation (-32042).
  const other = (await gw.admin("POST", "/admin/v1/users", { name: "Bob", parent_id: (await gw.admin("GET", `/admin/v1/users/${user}`)).body.parent_id })).body.id;
  await gw.admin("POST", "/admin/v1/grants", { subject_kind: "user", subject_id: other, resource: "personal", effect: "allow" });
  const bobKey = (await gw.admin("POST", "/admin/v1/api-keys", { name: "bob", principal_id: other })).body.key;
  const init = await mcpPost(gw, "/mcp/personal", { jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: { elicitation: { url: {} } }, clientInfo: { name: "t", version: "1" } } }, { key: bobKey });
  assert.equal(init.status, 200, init.text);
  const sid = init.headers.get("mcp-session-id");
  const asked = final(await mcpPost(gw, "/mcp/personal", { jsonrpc: "2.0", id: 9, method: "tools/call", params: { name: "echo", arguments: {} } }, { key: bobKey, headers: { "mcp-session-id": sid } })).error;
  assert.equal(asked.code, -32042, JSON.stringify(asked));
  assert.equal(asked.data.elicitations[0].mode, "url");
  assert.match(asked.data.elicitations[0].url, /\/connect\/personal\?ticket=/);

  // The authorization server goes away: the next refresh fails and the connection says so.
  await op.stop();
  let c3;
  for (let i = 0; i < 40; i++) {
    [c3] = await connections();
    if (c3.status === "needs-reconnect") break;
    await sleep(250);
  }
  assert.equal(c3.status, "needs-reconnect", JSON.stringify(c3));
  assert.ok(c3.last_error);
  const after = final(await echo()).error;
  assert.equal(after.data.reason, "needs_connect", "the user is told to reconnect");
});
