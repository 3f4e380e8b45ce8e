// Access control through the built gateway: the directory, grants at every level (deny wins,
// default deny), enforcement on /mcp, /mcp/{slug} and virtual servers, changes effective on the
// next request, live sessions told when their view changes, and the admin access questions.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { final, mcpPost, openStream, setupGateway, MODERN, modernMeta } from "./harness.mjs";

let env;
const ids = {};
before(async () => {
  env = await setupGateway({ everything: true, py: true, vars: { CATALOG_POLL_MS: "200" } });
  const mk = async (path, body) => {
    const r = await env.gw.admin("POST", path, body);
    assert.equal(r.status, 201, `${path}: ${r.text}`);
    return r.body.id;
  };
  ids.org = await mk("/admin/v1/orgs", { name: "Acme" });
  ids.ws = await mk("/admin/v1/workspaces", { name: "Eng", parent_id: ids.org });
  ids.team = await mk("/admin/v1/teams", { name: "Platform", parent_id: ids.ws });
  ids.alice = await mk("/admin/v1/users", { name: "Alice", parent_id: ids.org, email: "alice@acme.test" });
  ids.bot = await mk("/admin/v1/agents", { name: "ci-bot", parent_id: ids.org });
  for (const p of [ids.alice, ids.bot]) {
    assert.equal((await env.gw.admin("POST", `/admin/v1/teams/${ids.team}/members`, { principal_id: p })).status, 204);
  }
  ids.aliceKey = (await env.gw.admin("POST", "/admin/v1/api-keys", { name: "alice", principal_id: ids.alice })).body.key;
  ids.botKey = (await env.gw.admin("POST", "/admin/v1/api-keys", { name: "bot", principal_id: ids.bot })).body.key;
});
after(() => env?.stop());

const rpc = (id, method, params = {}) => ({ jsonrpc: "2.0", id, method, params });
const tools = async (key, path = "/mcp") => {
  const r = final(await mcpPost(env.gw, path, rpc(1, "tools/list"), { key, modern: true }));
  return r.result ? r.result.tools.map((t) => t.name) : r;
};
const call = async (key, name, path = "/mcp") =>
  final(await mcpPost(env.gw, path, rpc(2, "tools/call", { name, arguments: { message: "x" } }), { key, modern: true }));
const grant = async (body) => {
  const r = await env.gw.admin("POST", "/admin/v1/grants", body);
  assert.equal(r.status, 201, r.text);
  return r.body.id;
};
const revoke = (id) => env.gw.admin("DELETE", `/admin/v1/grants/${id}`);

describe("deny by default, then grants", () => {
  test("a new principal sees nothing: empty lists, unknown tools, 404 servers", async () => {
    assert.deepEqual(await tools(ids.aliceKey), []);
    assert.equal((await call(ids.aliceKey, "py__echo")).error.code, -32602);
    const r = await mcpPost(env.gw, "/mcp/py", rpc(1, "tools/list"), { key: ids.aliceKey, modern: true });
    assert.equal(r.status, 404);
  });

  // Each level × allow/deny × server/tool, observed end to end.
  for (const level of ["org", "workspace", "team", "user"]) {
    test(`${level}: allow server, allow one tool, deny beats allow (server and tool)`, async () => {
      const subject = { org: ids.org, workspace: ids.ws, team: ids.team, user: ids.alice }[level];
      const g1 = await grant({ subject_kind: level, subject_id: subject, resource: "py", effect: "allow" });
      let names = await tools(ids.aliceKey);
      assert.ok(names.includes("py__echo") && !names.some((n) => n.startsWith("everything__")), names.join());
      assert.equal((await call(ids.aliceKey, "py__echo")).result.content[0].text, "echo: x");
      await revoke(g1);
      const g2 = await grant({ subject_kind: level, subject_id: subject, resource: "every*", tool: "echo", effect: "allow" });
      assert.deepEqual(await tools(ids.aliceKey), ["everything__echo"]);
      const single = await tools(ids.aliceKey, "/mcp/everything");
      assert.deepEqual(single, ["echo"], "the per-server endpoint filters the live list too");
      assert.equal((await call(ids.aliceKey, "get-sum", "/mcp/everything")).error.code, -32602);
      const wide = await grant({ subject_kind: "org", subject_id: ids.org, resource: "*", effect: "allow" });
      const d1 = await grant({ subject_kind: level, subject_id: subject, resource: "everything", tool: "echo", effect: "deny" });
      names = await tools(ids.aliceKey);
      assert.ok(!names.includes("everything__echo") && names.includes("everything__get-sum"), "tool deny wins");
      const d2 = await grant({ subject_kind: level, subject_id: subject, resource: "py", effect: "deny" });
      names = await tools(ids.aliceKey);
      assert.ok(!names.some((n) => n.startsWith("py__")), "server deny wins");
      assert.equal((await mcpPost(env.gw, "/mcp/py", rpc(1, "tools/list"), { key: ids.aliceKey, modern: true })).status, 404);
      for (const g of [g2, wide, d1, d2]) await revoke(g);
      assert.deepEqual(await tools(ids.aliceKey), [], "back to nothing");
    });
  }

  test("agents are subjects too; grants to one principal do not leak to another", async () => {
    const g = await grant({ subject_kind: "agent", subject_id: ids.bot, resource: "py", tool: "ech?", effect: "allow" });
    assert.deepEqual(await tools(ids.botKey), ["py__echo"]);
    assert.deepEqual(await tools(ids.aliceKey), []);
    await revoke(g);
  });
});

describe("changes apply on the next request", () => {
  test("removing a user from a team, and revoking a key", async () => {
    const g = await grant({ subject_kind: "team", subject_id: ids.team, resource: "py", effect: "allow" });
    assert.ok((await tools(ids.aliceKey)).includes("py__echo"));
    assert.equal((await env.gw.admin("DELETE", `/admin/v1/teams/${ids.team}/members/${ids.alice}`)).status, 204);
    assert.deepEqual(await tools(ids.aliceKey), []);
    await env.gw.admin("POST", `/admin/v1/teams/${ids.team}/members`, { principal_id: ids.alice });
    assert.ok((await tools(ids.aliceKey)).includes("py__echo"));
    const k = await env.gw.admin("POST", "/admin/v1/api-keys", { name: "tmp", principal_id: ids.alice, expires_at: "2020-01-01T00:00:00Z" });
    assert.equal((await mcpPost(env.gw, "/mcp", rpc(1, "tools/list"), { key: k.body.key, modern: true })).status, 401, "expired");
    await revoke(g);
  });

  test("a live session is told when its view changes", async () => {
    const s = await openStream(env.gw, "/mcp", {
      method: "POST",
      headers: {
        authorization: `Bearer ${ids.aliceKey}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": MODERN,
        "mcp-method": "subscriptions/listen",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: "s", method: "subscriptions/listen", params: { notifications: { toolsListChanged: true }, _meta: modernMeta() } }),
    });
    try {
      await s.next((m) => m.method === "notifications/subscriptions/acknowledged");
      const g = await grant({ subject_kind: "user", subject_id: ids.alice, resource: "py", effect: "allow" });
      await s.next((m) => m.method === "notifications/tools/list_changed");
      await revoke(g);
    } finally {
      await s.close();
    }
  });
});

describe("virtual servers and the admin's questions", () => {
  test("a virtual-server grant opens its tools only; an explicit deny still wins", async () => {
    await env.gw.admin("POST", "/admin/v1/virtual-servers", { slug: "helper", name: "Helper", tools: [{ server: "py", tool: "echo" }, { server: "py", tool: "add" }] });
    assert.equal((await mcpPost(env.gw, "/mcp/v/helper", rpc(1, "tools/list"), { key: ids.aliceKey, modern: true })).status, 404);
    const v = await grant({ subject_kind: "user", subject_id: ids.alice, resource_kind: "virtual", resource: "helper", effect: "allow" });
    assert.deepEqual(await tools(ids.aliceKey, "/mcp/v/helper"), ["add", "echo"]);
    assert.deepEqual(await tools(ids.aliceKey), [], "the virtual grant does not open /mcp");
    const d = await grant({ subject_kind: "user", subject_id: ids.alice, resource: "py", tool: "add", effect: "deny" });
    assert.deepEqual(await tools(ids.aliceKey, "/mcp/v/helper"), ["echo"]);
    for (const g of [v, d]) await revoke(g);
  });

  test("what can X use? who can use tool Y?", async () => {
    const g = await grant({ subject_kind: "team", subject_id: ids.team, resource: "py", tool: "echo", effect: "allow" });
    const a = await env.gw.admin("GET", `/admin/v1/users/${ids.alice}/access`);
    assert.deepEqual(a.body.servers, [{ server: "py", tools: ["echo"] }]);
    const who = await env.gw.admin("GET", "/admin/v1/servers/py/tools/echo/principals");
    const whoIds = who.body.principals.map((p) => p.id);
    assert.ok(whoIds.includes(ids.alice) && whoIds.includes(ids.bot), who.text);
    assert.ok(whoIds.includes("agt_default"), "the default agent keeps its access");
    const nobody = await env.gw.admin("GET", "/admin/v1/servers/py/tools/add/principals");
    assert.ok(!nobody.body.principals.some((p) => p.id === ids.alice));
    await revoke(g);
  });

  test("directory rules: parents must exist, non-empty groups cannot be deleted, pagination", async () => {
    const bad = await env.gw.admin("POST", "/admin/v1/teams", { name: "x", parent_id: ids.org });
    assert.equal(bad.status, 422, "a team hangs under a workspace");
    assert.equal((await env.gw.admin("DELETE", `/admin/v1/teams/${ids.team}`)).status, 409);
    for (let i = 0; i < 3; i++) await env.gw.admin("POST", "/admin/v1/agents", { name: `a${i}`, parent_id: ids.org });
    const p1 = await env.gw.admin("GET", `/admin/v1/agents?parent_id=${ids.org}&limit=2`);
    assert.equal(p1.body.agents.length, 2);
    const p2 = await env.gw.admin("GET", `/admin/v1/agents?parent_id=${ids.org}&limit=2&after=${p1.body.next_after}`);
    assert.ok(p2.body.agents.length >= 1);
    assert.ok(!p2.body.agents.some((a) => p1.body.agents.some((b) => b.id === a.id)));
  });
});

describe("admin roles", () => {
  async function as(key, method, path, body) {
    const res = await env.gw.fetch(path, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: await res.json().catch(() => null) };
  }
  async function principalWithRole(role, scope_id) {
    const u = (await env.gw.admin("POST", "/admin/v1/users", { name: role, parent_id: ids.org })).body.id;
    if (role) {
      const r = await env.gw.admin("POST", "/admin/v1/roles", { principal_id: u, role, scope_id });
      assert.equal(r.status, 201, r.text);
    }
    return (await env.gw.admin("POST", "/admin/v1/api-keys", { name: role ?? "none", principal_id: u })).body.key;
  }

  test("viewer reads; org admin writes inside its org only; workspace admin manages its workspace", async () => {
    const other = (await env.gw.admin("POST", "/admin/v1/orgs", { name: "Other" })).body.id;
    const viewer = await principalWithRole("viewer", ids.org);
    const orgAdmin = await principalWithRole("org_admin", ids.org);
    const wsAdmin = await principalWithRole("workspace_admin", ids.ws);
    const nobody = await principalWithRole(null);

    assert.equal((await as(viewer, "GET", "/admin/v1/servers")).status, 200);
    assert.equal((await as(viewer, "POST", "/admin/v1/agents", { name: "x", parent_id: ids.org })).status, 403);

    assert.equal((await as(orgAdmin, "POST", "/admin/v1/agents", { name: "by-admin", parent_id: ids.org })).status, 201);
    // Another organization is as missing to it as a nonexistent one (tenancy.test.mjs goes further).
    assert.equal((await as(orgAdmin, "POST", "/admin/v1/agents", { name: "elsewhere", parent_id: other })).status, 422);
    assert.equal((await as(orgAdmin, "POST", "/admin/v1/orgs", { name: "New" })).status, 403);
    // `py` was registered by the bootstrap admin: platform-wide, visible to org admins, changed only by it.
    assert.equal((await as(orgAdmin, "GET", "/admin/v1/servers/py")).status, 200);
    assert.equal((await as(orgAdmin, "PATCH", "/admin/v1/servers/py", { description: "by org admin" })).status, 403);

    const t = await as(wsAdmin, "POST", "/admin/v1/teams", { name: "Infra", parent_id: ids.ws });
    assert.equal(t.status, 201);
    assert.equal((await as(wsAdmin, "POST", `/admin/v1/teams/${t.body.id}/members`, { principal_id: ids.bot })).status, 204);
    assert.equal((await as(wsAdmin, "POST", "/admin/v1/users", { name: "x", parent_id: ids.org })).status, 403);
    assert.equal((await as(wsAdmin, "POST", "/admin/v1/grants", { subject_kind: "team", subject_id: t.body.id, resource: "py", effect: "allow" })).status, 201);
    assert.equal((await as(wsAdmin, "POST", "/admin/v1/grants", { subject_kind: "org", subject_id: ids.org, resource: "py", effect: "allow" })).status, 403);

    const none = await as(nobody, "GET", "/admin/v1/servers");
    assert.equal(none.status, 403);
    assert.match(none.body.type, /forbidden/);
    assert.equal((await as("mcpgw_not-a-key", "GET", "/admin/v1/servers")).status, 401);
  });
});
