// Upstream credentials: sealed in KV (AES-256-GCM, name-bound, key ids), write-only through the
// admin API, presented to each upstream on every request — static headers (an API-key upstream)
// and OAuth client credentials (a real OpenID provider issuing the tokens, a real MCP server
// verifying them with its SDK's token verification) — rotated with one call, and master keys
// rotated with nothing lost.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { final, mcpPost, startGateway, startOidcProvider, startPyServer } from "./harness.mjs";

const k = () => randomBytes(32).toString("base64");
const K1 = `k1:${k()}`;
const API_KEY = `upstream-key-${randomBytes(8).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "mcpgw-vault-"));
let gw, keyed, op, secured, key;

before(async () => {
  [gw, keyed, op] = await Promise.all([
    startGateway({ persist: dir, vars: { VAULT_KEYS: K1 } }),
    startPyServer({ args: ["--require-header", `X-API-Key=${API_KEY}`] }),
    startOidcProvider(),
  ]);
  secured = await startPyServer({ args: ["--require-bearer", `${op.issuer},https://secured.test`] });
  key = (await gw.admin("POST", "/admin/v1/api-keys", { name: "creds" })).body.key;
});
after(async () => {
  await Promise.all([gw?.stop(), keyed?.stop(), op?.stop(), secured?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

const echo = (g, slug, id = 1) =>
  mcpPost(g, `/mcp/${slug}`, { jsonrpc: "2.0", id, method: "tools/call", params: { name: "echo", arguments: { message: "c" } } }, { key, modern: true });
const whoami = (g, slug) =>
  mcpPost(g, `/mcp/${slug}`, { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "whoami", arguments: {} } }, { key, modern: true });

describe("static headers", () => {
  test("without credentials the upstream refuses registration; with them it works", async () => {
    const refused = await gw.admin("POST", "/admin/v1/servers", { slug: "keyed", name: "keyed", url: keyed.url });
    assert.equal(refused.status, 502);
    const r = await gw.admin("POST", "/admin/v1/servers", {
      slug: "keyed",
      name: "keyed",
      url: keyed.url,
      credentials: { kind: "headers", headers: { "X-API-Key": API_KEY } },
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(final(await echo(gw, "keyed")).result.content[0].text, "echo: c");
    const seen = JSON.parse(final(await whoami(gw, "keyed")).result.content[0].text);
    assert.equal(seen["x-api-key"], API_KEY, "the upstream sees what the vault holds");
    assert.equal(seen.authorization, undefined, "and never the agent's key");
  });

  test("credentials are write-only, and nothing secret is in KV in plaintext", async () => {
    const meta = await gw.admin("GET", "/admin/v1/servers/keyed/credentials");
    assert.equal(meta.status, 200);
    assert.equal(meta.body.kind, "headers");
    assert.ok(!meta.text.includes(API_KEY), meta.text);
    const kv = await gw.mf.getKVNamespace("VAULT");
    const { keys } = await kv.list();
    assert.ok(keys.some((x) => x.name === "cred:server:keyed"), JSON.stringify(keys));
    for (const { name } of keys) {
      const v = await kv.get(name);
      assert.ok(!v.includes(API_KEY), `${name} holds the secret in plaintext`);
    }
    // A sealed value copied under another name does not decrypt.
    await kv.put("cred:server:copied", await kv.get("cred:server:keyed"));
  });

  test("rotating a credential is one call and reaches the next request", async () => {
    await gw.admin("PUT", "/admin/v1/servers/keyed/credentials", { kind: "headers", headers: { "X-API-Key": "wrong" } });
    assert.ok(final(await echo(gw, "keyed")).error, "the upstream refuses the wrong key");
    const r = await gw.admin("PUT", "/admin/v1/servers/keyed/credentials", { kind: "headers", headers: { "X-API-Key": API_KEY } });
    assert.ok(r.body.rotated_at);
    assert.equal(final(await echo(gw, "keyed")).result.content[0].text, "echo: c");
    const bad = await gw.admin("PUT", "/admin/v1/servers/keyed/credentials", { kind: "headers", headers: { Host: "x" } });
    assert.equal(bad.status, 422);
  });
});

describe("OAuth client credentials", () => {
  const spec = (secret) => ({
    kind: "client_credentials",
    token_url: `${op.issuer}/token`,
    client_id: "agent-a",
    client_secret: secret,
    scopes: ["mcp"],
    resource: "https://secured.test",
  });

  test("the gateway fetches a token from the real authorization server and the upstream verifies it", async () => {
    const r = await gw.admin("POST", "/admin/v1/servers", { slug: "secured", name: "secured", url: secured.url, credentials: spec("secret-a-secret-a-secret-a-secret-a") });
    assert.equal(r.status, 201, r.text);
    assert.equal(final(await echo(gw, "secured")).result.content[0].text, "echo: c");
    const meta = await gw.admin("GET", "/admin/v1/servers/secured/credentials");
    assert.equal(meta.body.status, "ok");
    assert.ok(meta.body.token_expires_at, meta.text);
    assert.ok(!meta.text.includes("secret-a"), "the client secret is never shown");
  });

  test("a failing token endpoint is reported clearly, never silently", async () => {
    await gw.admin("PUT", "/admin/v1/servers/secured/credentials", spec("not-the-secret"));
    const e = final(await echo(gw, "secured", 3)).error;
    assert.equal(e.data.reason, "credentials");
    assert.ok(!JSON.stringify(e).includes("not-the-secret"));
    const meta = await gw.admin("GET", "/admin/v1/servers/secured/credentials");
    assert.equal(meta.body.status, "failing");
    assert.match(meta.body.last_error, /token endpoint refused/);
    await gw.admin("PUT", "/admin/v1/servers/secured/credentials", spec("secret-a-secret-a-secret-a-secret-a"));
    assert.equal(final(await echo(gw, "secured", 4)).result.content[0].text, "echo: c");
  });
});

test("master-key rotation: add a key, re-seal, retire the old key — nothing lost", async () => {
  const K2 = `k2:${k()}`;
  await gw.stop();
  gw = await startGateway({ persist: dir, vars: { VAULT_KEYS: `${K2},${K1}` } });
  assert.equal(final(await echo(gw, "keyed", 5)).result.content[0].text, "echo: c", "old values still open");
  const rot = await gw.admin("POST", "/admin/v1/vault/rotate");
  assert.equal(rot.status, 200, rot.text);
  assert.equal(rot.body.key_id, "k2");
  assert.ok(rot.body.resealed >= 2, rot.text);
  assert.equal(rot.body.failed.length, 1, "the copied value is reported, not lost or overwritten");
  assert.equal(rot.body.failed[0].key, "cred:server:copied");
  await gw.stop();
  gw = await startGateway({ persist: dir, vars: { VAULT_KEYS: K2 } });
  assert.equal(final(await echo(gw, "keyed", 6)).result.content[0].text, "echo: c");
  assert.equal(final(await echo(gw, "secured", 7)).result.content[0].text, "echo: c");
});
