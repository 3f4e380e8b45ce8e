// Usage and idle servers, end to end through the built gateway: two agents in two teams call a
// real upstream (allowed, denied, a tool error, an upstream that went down); their events travel
// the audit queue into D1, and the admin API's usage (grouped every way), the registry's use
// figures and the idle listing show exactly those calls — scoped to the caller's organization.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { final, mcpPost, setupGateway, startPyServer } from "./harness.mjs";

let env;
let down;
const ids = {};
before(async () => {
  env = await setupGateway({ py: true });
  down = await startPyServer();
  const admin = async (method, path, body, status = 201) => {
    const r = await env.gw.admin(method, path, body);
    assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
    return r.body;
  };
  // The same upstream under a second slug that nobody calls (idle), and one that will go down.
  await admin("POST", "/admin/v1/servers", { slug: "spare", name: "spare", url: env.upstreams.py.url });
  await admin("POST", "/admin/v1/servers", { slug: "gone", name: "gone", url: down.url });
  ids.org = (await admin("POST", "/admin/v1/orgs", { name: "Acme" })).id;
  ids.ws = (await admin("POST", "/admin/v1/workspaces", { name: "Eng", parent_id: ids.org })).id;
  ids.teamA = (await admin("POST", "/admin/v1/teams", { name: "A", parent_id: ids.ws })).id;
  ids.teamB = (await admin("POST", "/admin/v1/teams", { name: "B", parent_id: ids.ws })).id;
  ids.a1 = (await admin("POST", "/admin/v1/agents", { name: "a1", parent_id: ids.org })).id;
  ids.a2 = (await admin("POST", "/admin/v1/agents", { name: "a2", parent_id: ids.org })).id;
  for (const [team, who] of [[ids.teamA, ids.a1], [ids.teamB, ids.a2]]) {
    await admin("POST", `/admin/v1/teams/${team}/members`, { principal_id: who }, 204);
  }
  for (const who of ["a1", "a2"]) {
    ids[`${who}Key`] = (await admin("POST", "/admin/v1/api-keys", { name: who, principal_id: ids[who] })).key;
  }
  // Team A may use all of py and gone; team B only py's echo.
  await admin("POST", "/admin/v1/grants", { subject_kind: "team", subject_id: ids.teamA, resource: "py", effect: "allow" });
  await admin("POST", "/admin/v1/grants", { subject_kind: "team", subject_id: ids.teamA, resource: "gone", effect: "allow" });
  await admin("POST", "/admin/v1/grants", {
    subject_kind: "team", subject_id: ids.teamB, resource: "py", tool: "echo", effect: "allow",
  });

  const call = (key, path, name, args) =>
    mcpPost(env.gw, path, { jsonrpc: "2.0", id: 7, method: "tools/call", params: { name, arguments: args } }, { key, modern: true });
  for (let i = 0; i < 3; i++) assert.equal(final(await call(ids.a1Key, "/mcp/py", "echo", { message: "hi" })).result.isError ?? false, false);
  // A tool error: the upstream answers with isError (missing argument).
  assert.equal(final(await call(ids.a1Key, "/mcp/py", "echo", {})).result.isError, true);
  assert.ok(final(await call(ids.a2Key, "/mcp", "py__echo", { message: "hi" })).result);
  // Denied: a tool team B was not granted (answered like an unknown tool).
  assert.ok(final(await call(ids.a2Key, "/mcp/py", "slow", {})).error);
  // The upstream went down.
  await down.stop();
  down = null;
  const r = await call(ids.a1Key, "/mcp/gone", "echo", { message: "hi" });
  assert.ok(r.status >= 400 || final(r).error, `the call to a stopped upstream fails: ${r.text}`);
});
after(async () => {
  await down?.stop();
  await env?.stop();
});

/** Polls the usage API until it accounts for `calls` calls (events reach D1 through a queue). */
async function usage(groupBy, calls = 7, query = "") {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await env.gw.admin("GET", `/admin/v1/usage?group_by=${groupBy}${query}`);
    assert.equal(r.status, 200, r.text);
    const total = groupBy === "server" ? r.body.groups.reduce((n, g) => n + g.calls, 0) : null;
    if (total === null || total >= calls || Date.now() > deadline) {
      if (total !== null) assert.equal(total, calls, `all calls recorded: ${r.text}`);
      return r.body.groups;
    }
    await new Promise((res) => setTimeout(res, 250));
  }
}
const pick = (groups, keys) => groups.map((g) => Object.fromEntries(keys.map((k) => [k, g[k]])));

describe("usage", () => {
  test("by server: calls, errors, denials, percentiles and last call", async () => {
    const groups = await usage("server");
    assert.deepEqual(pick(groups, ["server", "calls", "errors", "denied"]), [
      { server: "py", calls: 6, errors: 1, denied: 1 },
      { server: "gone", calls: 1, errors: 1, denied: 0 },
    ]);
    for (const g of groups) {
      assert.ok(g.p50_ms >= 0 && g.p95_ms >= g.p50_ms, JSON.stringify(g));
      assert.ok(Date.parse(g.last_call_at) > Date.now() - 600_000, g.last_call_at);
    }
  });

  test("by tool, agent, team and workspace", async () => {
    await usage("server");
    assert.deepEqual(pick(await usage("tool"), ["server", "tool", "calls", "errors", "denied"]), [
      { server: "py", tool: "echo", calls: 5, errors: 1, denied: 0 },
      { server: "gone", tool: "echo", calls: 1, errors: 1, denied: 0 },
      { server: "py", tool: "slow", calls: 1, errors: 0, denied: 1 },
    ]);
    assert.deepEqual(pick(await usage("agent"), ["agent", "calls", "errors", "denied"]), [
      { agent: ids.a1, calls: 5, errors: 2, denied: 0 },
      { agent: ids.a2, calls: 2, errors: 0, denied: 1 },
    ]);
    assert.deepEqual(pick(await usage("team"), ["team", "calls"]), [
      { team: ids.teamA, calls: 5 },
      { team: ids.teamB, calls: 2 },
    ]);
    assert.deepEqual(pick(await usage("workspace"), ["workspace", "calls"]), [{ workspace: ids.ws, calls: 7 }]);
    assert.deepEqual(await usage("user"), [], "no user called");
  });

  test("windows and scope: an empty window, another organization, bad parameters", async () => {
    await usage("server");
    assert.deepEqual(await usage("server", 0, "&from=0&to=1000"), []);
    assert.deepEqual(await usage("server", 0, "&org=org_nobody"), []);
    assert.equal((await usage("server", 7, `&org=${ids.org}`)).length, 2);
    for (const q of ["group_by=color", "from=yesterday", "from=2000&to=1000", "from=0&to=99999999999999"]) {
      const r = await env.gw.admin("GET", `/admin/v1/usage?${q}`);
      assert.equal(r.status, 422, q);
      assert.match(r.headers.get("content-type"), /application\/problem\+json/);
    }
  });
});

describe("the registry shows use", () => {
  test("servers and tools carry last_used_at and 7/30-day counts (denials are not use)", async () => {
    await usage("server");
    const servers = Object.fromEntries((await env.gw.admin("GET", "/admin/v1/servers")).body.servers.map((s) => [s.slug, s]));
    assert.equal(servers.py.calls_7d, 5);
    assert.equal(servers.py.calls_30d, 5);
    assert.ok(servers.py.last_used_at);
    assert.equal(servers.gone.calls_7d, 1);
    assert.equal(servers.spare.last_used_at, null);
    assert.equal(servers.spare.calls_30d, 0);
    assert.equal((await env.gw.admin("GET", "/admin/v1/servers/py")).body.calls_7d, 5);
    const tools = Object.fromEntries((await env.gw.admin("GET", "/admin/v1/servers/py/tools")).body.tools.map((t) => [t.name, t]));
    assert.equal(tools.echo.calls_7d, 5);
    assert.equal(tools.slow.calls_7d, 0, "the denied call is not use");
    assert.equal(tools.slow.last_used_at, null);
  });

  test("?idle_days lists servers and tools with no call (never-used included)", async () => {
    await usage("server");
    const r = await env.gw.admin("GET", "/admin/v1/servers?idle_days=1");
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.servers.map((s) => s.slug), ["spare"]);
    const idle = r.body.idle_tools.map((t) => `${t.server}/${t.tool}`);
    assert.ok(idle.includes("py/slow") && idle.includes("spare/echo"), idle.join());
    assert.ok(!idle.includes("py/echo"), "a called tool is not idle");
    for (const bad of ["0", "x", "99999"]) {
      assert.equal((await env.gw.admin("GET", `/admin/v1/servers?idle_days=${bad}`)).status, 422, bad);
    }
  });
});
