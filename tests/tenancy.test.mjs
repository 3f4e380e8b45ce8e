// Tenancy: servers, their credentials and virtual servers belong to an organization (or to the
// platform). A hostile org admin of organization B tries to read and change everything of
// organization A — servers, credentials, grants, keys, users, roles, identity providers, virtual
// servers — and gets exactly what a missing object gets; its agents cannot reach A's servers
// whatever their grants say. A URL change to another origin never carries the stored credentials
// there (a real credentialed upstream, and a real upstream that logs every header it receives).
// Two organizations can trust one OIDC issuer; /oauth/authorize logs into the right one.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { final, mcpPost, startGateway, startOidcProvider, startPyServer, requestAs, expectStatus } from "./harness.mjs";

const SECRET = `org-a-secret-${randomBytes(8).toString("hex")}`;
const SECRET2 = `org-a-second-${randomBytes(8).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "mcpgw-tenancy-"));
const attackerLog = join(dir, "attacker-headers.jsonl");
let gw, keyed, keyed2, attacker, op;
const ids = {};

const as = (key, method, path, body) => requestAs(gw, key, method, path, body);

const ok = expectStatus;

before(async () => {
  // The Python upstreams one after another: started together on a busy machine, each can
  // take longer than the harness waits.
  const started = Promise.all([startGateway({ vars: { VAULT_KEYS: `k1:${randomBytes(32).toString("base64")}` } }), startOidcProvider()]);
  keyed = await startPyServer({ args: ["--require-header", `X-API-Key=${SECRET}`] });
  keyed2 = await startPyServer({ args: ["--require-header", `X-API-Key=${SECRET2}`] });
  attacker = await startPyServer({ args: ["--log-headers", attackerLog] });
  [gw, op] = await started;
  for (const o of ["A", "B"]) {
    ids[`org${o}`] = ok(await gw.admin("POST", "/admin/v1/orgs", { name: `Org ${o}` })).id;
    ids[`ws${o}`] = ok(await gw.admin("POST", "/admin/v1/workspaces", { name: "ws", parent_id: ids[`org${o}`] })).id;
    const admin = ok(await gw.admin("POST", "/admin/v1/users", { name: `admin ${o}`, parent_id: ids[`org${o}`] })).id;
    ids[`role${o}`] = ok(await gw.admin("POST", "/admin/v1/roles", { principal_id: admin, role: "org_admin", scope_id: ids[`org${o}`] })).id;
    ids[`admin${o}`] = ok(await gw.admin("POST", "/admin/v1/api-keys", { name: "admin", principal_id: admin })).key;
  }
  const A = ids.adminA;
  // Organization A, built by its own admin.
  const srv = ok(await as(A, "POST", "/admin/v1/servers", { slug: "a-srv", name: "A", url: keyed.url, credentials: { kind: "headers", headers: { "X-API-Key": SECRET } } }));
  assert.equal(srv.org_id, ids.orgA, "owned by the registering admin's organization");
  ids.userA = ok(await as(A, "POST", "/admin/v1/users", { name: "alice", parent_id: ids.orgA })).id;
  ids.agentA = ok(await as(A, "POST", "/admin/v1/agents", { name: "bot", parent_id: ids.orgA })).id;
  const keyA = ok(await as(A, "POST", "/admin/v1/api-keys", { name: "alice", principal_id: ids.userA }));
  [ids.keyA, ids.keyAid] = [keyA.key, keyA.id];
  ids.grantA = ok(await as(A, "POST", "/admin/v1/grants", { subject_kind: "org", subject_id: ids.orgA, resource: "*", effect: "allow" })).id;
  ok(await as(A, "POST", "/admin/v1/grants", { subject_kind: "org", subject_id: ids.orgA, resource_kind: "virtual", resource: "*", effect: "allow" }));
  ok(await as(A, "POST", "/admin/v1/virtual-servers", { slug: "a-virtual", name: "A's", tools: [{ server: "a-srv", tool: "echo" }] }));
  ids.idpA = ok(await as(A, "POST", "/admin/v1/identity-providers", { org_id: ids.orgA, issuer: op.issuer, audiences: ["https://a.test/mcp"], login_client_id: "login-a" })).id;
  ids.roleA2 = ok(await as(A, "POST", "/admin/v1/roles", { principal_id: ids.userA, role: "viewer", scope_id: ids.orgA })).id;
  // Organization B's agent, granted everything its admin can grant.
  ids.agentB = ok(await as(ids.adminB, "POST", "/admin/v1/agents", { name: "b-bot", parent_id: ids.orgB })).id;
  ids.keyB = ok(await as(ids.adminB, "POST", "/admin/v1/api-keys", { name: "b", principal_id: ids.agentB })).key;
  ok(await as(ids.adminB, "POST", "/admin/v1/grants", { subject_kind: "org", subject_id: ids.orgB, resource: "*", effect: "allow" }));
  ok(await as(ids.adminB, "POST", "/admin/v1/grants", { subject_kind: "org", subject_id: ids.orgB, resource_kind: "virtual", resource: "*", effect: "allow" }));
  // A platform-wide server, registered by the bootstrap admin (on keyed2, with its own key).
  ok(await gw.admin("POST", "/admin/v1/servers", { slug: "shared", name: "shared", url: keyed2.url, credentials: { kind: "headers", headers: { "X-API-Key": SECRET2 } } }));
});
after(async () => {
  await Promise.all([gw?.stop(), keyed?.stop(), keyed2?.stop(), attacker?.stop(), op?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Org B's admin asks for org A's object and for a missing one: both answers must be identical
 * (status, content type, body — the id itself substituted, since each names what was asked).
 */
async function indistinguishable(method, path, missingPath, body, id, missingId) {
  const theirs = await as(ids.adminB, method, path, body);
  const none = await as(ids.adminB, method, missingPath, body && JSON.parse(JSON.stringify(body).replaceAll(id, missingId)));
  assert.ok([404, 422].includes(theirs.status), `${method} ${path}: ${theirs.status} ${theirs.text}`);
  assert.equal(theirs.status, none.status, `${method} ${path}`);
  assert.equal(theirs.headers.get("content-type"), none.headers.get("content-type"));
  assert.equal(theirs.text.replaceAll(id, "ID"), none.text.replaceAll(missingId, "ID"), `${method} ${path}`);
}

describe("a hostile org admin", () => {
  test("cannot see or touch another organization's servers, credentials or tools", async () => {
    const list = await as(ids.adminB, "GET", "/admin/v1/servers");
    assert.deepEqual(list.body.servers.map((s) => s.slug), ["shared"], "only platform-wide servers and its own");
    const cases = [
      ["GET", "/admin/v1/servers/a-srv"],
      ["PATCH", "/admin/v1/servers/a-srv", { description: "mine now" }],
      ["PATCH", "/admin/v1/servers/a-srv", { url: attacker.url }],
      ["DELETE", "/admin/v1/servers/a-srv"],
      ["POST", "/admin/v1/servers/a-srv/sync"],
      ["GET", "/admin/v1/servers/a-srv/tools"],
      ["POST", "/admin/v1/servers/a-srv/tools/echo/approve"],
      ["GET", "/admin/v1/servers/a-srv/connections"],
      ["GET", "/admin/v1/servers/a-srv/tools/echo/principals"],
      ["GET", "/admin/v1/servers/a-srv/credentials"],
      ["PUT", "/admin/v1/servers/a-srv/credentials", { kind: "headers", headers: { "X-API-Key": "stolen" } }],
      ["DELETE", "/admin/v1/servers/a-srv/credentials"],
    ];
    for (const [method, path, body] of cases) {
      await indistinguishable(method, path, path.replace("a-srv", "no-srv"), body, "a-srv", "no-srv");
    }
    assert.ok(!existsSync(attackerLog) || readFileSync(attackerLog, "utf8") === "", "the attacker's upstream was never contacted");
    // Still A's, unchanged, and still working with A's credential.
    const mine = await as(ids.adminA, "GET", "/admin/v1/servers/a-srv");
    assert.equal(mine.body.url, keyed.url);
    assert.equal(mine.body.description, null);
    const call = await mcpPost(gw, "/mcp/a-srv", { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: { message: "m" } } }, { key: ids.keyA, modern: true });
    assert.equal(final(call).result.content[0].text, "echo: m");
  });

  test("cannot see or touch another organization's directory, grants, keys, roles or identity providers", async () => {
    const B = ids.adminB;
    const miss = { user: "usr_0000000000000000", org: "org_0000000000000000", ws: "ws_0000000000000000" };
    for (const [method, path, body] of [
      ["GET", `/admin/v1/users/${ids.userA}`],
      ["PATCH", `/admin/v1/users/${ids.userA}`, { name: "pwned" }],
      ["DELETE", `/admin/v1/users/${ids.userA}`],
      ["GET", `/admin/v1/users/${ids.userA}/access`],
    ]) {
      await indistinguishable(method, path, path.replace(ids.userA, miss.user), body, ids.userA, miss.user);
    }
    await indistinguishable("GET", `/admin/v1/orgs/${ids.orgA}`, `/admin/v1/orgs/${miss.org}`, undefined, ids.orgA, miss.org);
    await indistinguishable("POST", `/admin/v1/workspaces/${ids.wsA}/members`, `/admin/v1/workspaces/${miss.ws}/members`, { principal_id: ids.agentB }, ids.wsA, miss.ws);
    // Naming A's objects in a body: the same answer as naming nothing that exists.
    await indistinguishable("POST", "/admin/v1/grants", "/admin/v1/grants", { subject_kind: "user", subject_id: ids.userA, resource: "*", effect: "allow" }, ids.userA, miss.user);
    await indistinguishable("POST", "/admin/v1/api-keys", "/admin/v1/api-keys", { name: "steal", principal_id: ids.userA }, ids.userA, miss.user);
    await indistinguishable("POST", "/admin/v1/roles", "/admin/v1/roles", { principal_id: ids.userA, role: "org_admin", scope_id: ids.orgA }, ids.userA, miss.user);
    await indistinguishable("POST", "/admin/v1/agents", "/admin/v1/agents", { name: "x", parent_id: ids.orgA }, ids.orgA, miss.org);
    await indistinguishable("POST", "/admin/v1/servers", "/admin/v1/servers", { slug: "b-in-a", name: "x", url: attacker.url, org_id: ids.orgA }, ids.orgA, miss.org);
    for (const [path, id, missing] of [
      ["/admin/v1/grants/", ids.grantA, "grant_0000000000000000"],
      ["/admin/v1/api-keys/", ids.keyAid, "key_0000000000000000"],
      ["/admin/v1/roles/", ids.roleA2, "role_0000000000000000"],
      ["/admin/v1/identity-providers/", ids.idpA, "idp_0000000000000000"],
    ]) {
      await indistinguishable("DELETE", path + id, path + missing, undefined, id, missing);
    }
    // Lists hold nothing of A's.
    const everything = [
      await as(B, "GET", "/admin/v1/users"),
      await as(B, "GET", "/admin/v1/orgs"),
      await as(B, "GET", "/admin/v1/agents"),
      await as(B, "GET", "/admin/v1/workspaces"),
      await as(B, "GET", "/admin/v1/grants"),
      await as(B, "GET", "/admin/v1/api-keys"),
      await as(B, "GET", "/admin/v1/roles"),
      await as(B, "GET", "/admin/v1/identity-providers"),
      await as(B, "GET", "/admin/v1/virtual-servers"),
      await as(B, "GET", "/admin/v1/servers/shared/tools/echo/principals"),
    ];
    for (const r of everything) {
      assert.equal(r.status, 200, r.text);
      for (const id of [ids.orgA, ids.userA, ids.agentA, ids.grantA, ids.keyAid, ids.roleA2, ids.idpA, "a-virtual", "a-srv"]) {
        assert.ok(!r.text.includes(id), `${id} leaked: ${r.text}`);
      }
    }
    // A's things are all still there.
    assert.equal((await as(ids.adminA, "GET", `/admin/v1/users/${ids.userA}`)).body.name, "alice");
    assert.ok((await as(ids.adminA, "GET", "/admin/v1/grants")).text.includes(ids.grantA));
    // Vault rotation is the bootstrap admin's alone.
    assert.equal((await as(B, "POST", "/admin/v1/vault/rotate")).status, 403);
    assert.equal((await as(ids.adminA, "POST", "/admin/v1/vault/rotate")).status, 403);
  });

  test("cannot see, change or build on another organization's virtual servers", async () => {
    for (const [method, path, body] of [
      ["GET", "/admin/v1/virtual-servers/a-virtual"],
      ["PATCH", "/admin/v1/virtual-servers/a-virtual", { name: "mine" }],
      ["DELETE", "/admin/v1/virtual-servers/a-virtual"],
    ]) {
      await indistinguishable(method, path, path.replace("a-virtual", "no-virtual"), body, "a-virtual", "no-virtual");
    }
    await indistinguishable("POST", "/admin/v1/virtual-servers", "/admin/v1/virtual-servers", { slug: "b-virtual", name: "x", tools: [{ server: "a-srv", tool: "echo" }] }, "a-srv", "no-srv");
    ok(await as(ids.adminB, "POST", "/admin/v1/virtual-servers", { slug: "b-virtual", name: "B's", tools: [{ server: "shared", tool: "echo" }] }));
  });

  test("its agents cannot reach another organization's servers, whatever their grants say", async () => {
    const list = final(await mcpPost(gw, "/mcp", { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }, { key: ids.keyB, modern: true }));
    const names = list.result.tools.map((t) => t.name);
    assert.ok(names.includes("shared__echo"), names.join());
    assert.ok(!names.some((n) => n.startsWith("a-srv__")), names.join());
    const call = (path, name) => mcpPost(gw, path, { jsonrpc: "2.0", id: 7, method: "tools/call", params: { name, arguments: { message: "x" } } }, { key: ids.keyB, modern: true });
    const theirs = await call("/mcp/a-srv", "echo");
    const none = await call("/mcp/no-srv", "echo");
    assert.equal(theirs.status, none.status);
    assert.equal(theirs.text, none.text, "A's server answers exactly as a missing one");
    const viaAll = final(await call("/mcp", "a-srv__echo"));
    assert.match(viaAll.error.message, /unknown tool/);
  });

  test("a virtual server of another organization answers exactly as a missing one", async () => {
    const send = async (path, key, modern) =>
      modern
        ? mcpPost(gw, path, { jsonrpc: "2.0", id: 42, method: "tools/list", params: {} }, { key, modern: true })
        : mcpPost(gw, path, { jsonrpc: "2.0", id: 42, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } } }, { key });
    for (const modern of [true, false]) {
      const theirs = await send("/mcp/v/a-virtual", ids.keyB, modern);
      const none = await send("/mcp/v/no-virtual", ids.keyB, modern);
      assert.equal(theirs.status, none.status, `modern=${modern}`);
      assert.equal(theirs.text, none.text, `modern=${modern}: ${theirs.text} vs ${none.text}`);
    }
    // The same holds inside one organization for a virtual server the caller has no grant for.
    const denyAll = ok(await as(ids.adminA, "POST", "/admin/v1/agents", { name: "no-grants", parent_id: ids.orgA })).id;
    ok(await as(ids.adminA, "POST", "/admin/v1/grants", { subject_kind: "agent", subject_id: denyAll, resource_kind: "virtual", resource: "a-virtual", effect: "deny" }));
    const k = ok(await as(ids.adminA, "POST", "/admin/v1/api-keys", { name: "d", principal_id: denyAll })).key;
    const denied = await send("/mcp/v/a-virtual", k, true);
    const none = await send("/mcp/v/no-virtual", k, true);
    assert.equal(denied.text, none.text);
    // And the owner's own users get it.
    const mine = final(await send("/mcp/v/a-virtual", ids.keyA, true));
    assert.deepEqual(mine.result.tools.map((t) => t.name), ["echo"]);
  });

  test("platform-wide servers are visible to org admins but changed only by the bootstrap admin", async () => {
    assert.equal((await as(ids.adminB, "GET", "/admin/v1/servers/shared")).status, 200);
    const r = await as(ids.adminB, "PATCH", "/admin/v1/servers/shared", { description: "mine" });
    assert.equal(r.status, 403, r.text);
    assert.equal((await as(ids.adminB, "PUT", "/admin/v1/servers/shared/credentials", { kind: "none" })).status, 403);
    assert.equal((await gw.admin("PATCH", "/admin/v1/servers/shared", { description: "platform" })).status, 200);
  });
});

describe("credentials never travel to a new origin", () => {
  const echo = async () =>
    final(await mcpPost(gw, "/mcp/a-srv", { jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "echo", arguments: { message: "e" } } }, { key: ids.keyA, modern: true }));

  test("a failed move changes nothing: the old URL keeps its credentials", async () => {
    // keyed2 wants another key; without new credentials the sync fails, and nothing is lost.
    const r = await as(ids.adminA, "PATCH", "/admin/v1/servers/a-srv", { url: keyed2.url });
    assert.equal(r.status, 502, r.text);
    assert.equal((await echo()).result.content[0].text, "echo: e");
  });

  test("credentials given with the move go to the new origin, the old ones nowhere", async () => {
    const r = await as(ids.adminA, "PATCH", "/admin/v1/servers/a-srv", { url: keyed2.url, credentials: { kind: "headers", headers: { "X-API-Key": SECRET2 } } });
    assert.equal(r.status, 200, r.text);
    assert.equal((await echo()).result.content[0].text, "echo: e");
    const whoami = final(await mcpPost(gw, "/mcp/a-srv", { jsonrpc: "2.0", id: 4, method: "tools/call", params: { name: "whoami", arguments: {} } }, { key: ids.keyA, modern: true }));
    assert.equal(JSON.parse(whoami.result.content[0].text)["x-api-key"], SECRET2);
  });

  test("a move without credentials drops them: the new origin never receives the secret", async () => {
    const r = await as(ids.adminA, "PATCH", "/admin/v1/servers/a-srv", { url: attacker.url });
    assert.equal(r.status, 200, r.text);
    assert.equal((await as(ids.adminA, "GET", "/admin/v1/servers/a-srv/credentials")).status, 404, "no credentials any more");
    await echo();
    const seen = readFileSync(attackerLog, "utf8");
    assert.ok(seen.length > 0, "the new upstream was contacted (sync, call)");
    assert.ok(!seen.includes(SECRET) && !seen.includes(SECRET2), `a secret reached the new origin: ${seen}`);
    for (const line of seen.trim().split("\n")) assert.equal(JSON.parse(line)["x-api-key"], undefined);
    const kv = await gw.mf.getKVNamespace("VAULT");
    const { keys } = await kv.list();
    assert.ok(!keys.some((k) => k.name.includes(":a-srv")), JSON.stringify(keys));
  });
});

describe("identity providers", () => {
  test("two organizations share one issuer; each token maps to its own organization by audience", async () => {
    // A second organization trusting the same issuer, for its own audience.
    const clash = await as(ids.adminB, "POST", "/admin/v1/identity-providers", { org_id: ids.orgB, issuer: op.issuer, audiences: ["https://a.test/mcp"] });
    assert.equal(clash.status, 409, "an audience maps to one organization only");
    ok(await as(ids.adminB, "POST", "/admin/v1/identity-providers", { org_id: ids.orgB, issuer: op.issuer, audiences: ["https://b.test/mcp"], login_client_id: "login-b" }));
    for (const [org, aud] of [
      [ids.orgA, "https://a.test/mcp"],
      [ids.orgB, "https://b.test/mcp"],
    ]) {
      const token = await op.token(aud);
      const r = await mcpPost(gw, "/mcp", { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }, { key: token, modern: true });
      assert.equal(r.status, 200, r.text);
      const users = (await gw.admin("GET", `/admin/v1/users?parent_id=${org}`)).body.users;
      assert.ok(users.some((u) => u.external_subject === `${org}|${op.issuer}|agent-a`), `${org}: ${JSON.stringify(users)}`);
      const tools = final(r).result.tools.map((t) => t.name);
      // Each organization's grants apply to its own user: A's include a-srv, B's cannot.
      assert.equal(tools.some((n) => n.startsWith("a-srv__")), org === ids.orgA, tools.join());
    }
  });

  test("/oauth/authorize logs into the organization asked for, not the first provider in the table", async () => {
    const reg = await (await gw.fetch("/oauth/register", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ client_name: "t", redirect_uris: ["http://127.0.0.1:9/cb"] }) })).json();
    const authorize = (extra) =>
      gw.fetch(`/oauth/authorize?${new URLSearchParams({ response_type: "code", client_id: reg.client_id, redirect_uri: "http://127.0.0.1:9/cb", code_challenge: "a".repeat(43), code_challenge_method: "S256", state: "s", ...extra })}`, { redirect: "manual" });
    const loginClient = async (extra) => new URL((await authorize(extra)).headers.get("location")).searchParams;
    const ambiguous = await loginClient({});
    assert.equal(ambiguous.get("error"), "invalid_request", "two organizations offer login: the client must say which");
    assert.equal((await loginClient({ org: ids.orgB })).get("client_id"), "login-b");
    assert.equal((await loginClient({ org: ids.orgA })).get("client_id"), "login-a");
    // A resource owned by an organization decides by itself.
    assert.equal((await loginClient({ resource: `${gw.url}/mcp/a-srv` })).get("client_id"), "login-a");
    assert.equal((await loginClient({ resource: `${gw.url}/mcp/v/b-virtual` })).get("client_id"), "login-b");
    assert.equal((await loginClient({ resource: `${gw.url}/mcp/a-srv`, org: ids.orgB })).get("error"), "invalid_request");
  });
});
