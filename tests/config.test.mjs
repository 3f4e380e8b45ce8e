// Configuration as code (docs/config-as-code.md): an organization built through the admin API —
// a server on a real upstream (tests/upstreams/py_server.py), a virtual server, workspaces, teams,
// users, agents, memberships, grants and a policy — is exported, applied to the same gateway
// (no change), applied to a second, empty gateway and exported there again (identical, byte for
// byte), and an agent of the applied organization calls the upstream through /mcp/{slug} on the
// new gateway with a key issued there. A dry run lists exactly the changes and changes nothing;
// an invalid document (its error late in it) changes nothing and names every error's path; an
// org admin can neither read nor touch another organization's configuration; an apply is one
// audit record. The same document written as YAML (by the `yaml` package, which node_modules holds
// for @modelcontextprotocol/conformance) dry-runs and applies exactly as the JSON one; YAML that
// JSON cannot say, or that does not parse, is refused with its line and column and changes nothing.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import YAML from "yaml";
import { expectStatus as ok, final, mcpPost, requestAs, startGateway, startPyServer } from "./harness.mjs";

/** How long the audit queue's consumer may take to store an event (the audit trail is async). */
const AUDIT_POLL_MS = 20_000;
const ORG = "org_default";

let gwA, gwB, gwC, py;
const ids = {};

const as = (gw, key, method, path, body, headers) => requestAs(gw, key, method, path, body, headers);
const exportOf = (gw, key = gw.adminToken, query = "") => as(gw, key, "GET", `/admin/v1/config${query}`);
const applyTo = (gw, doc, query = "", key = gw.adminToken) => as(gw, key, "POST", `/admin/v1/config${query}`, doc);
/** POSTs `text` as it is (a YAML document) with the Content-Type `type`. */
async function applyText(gw, text, query = "", type = "application/yaml") {
  const res = await gw.fetch(`/admin/v1/config${query}`, {
    method: "POST",
    headers: { authorization: `Bearer ${gw.adminToken}`, "content-type": type },
    body: text,
  });
  const body = await res.text();
  let parsed = null;
  try {
    parsed = JSON.parse(body);
  } catch {}
  return { status: res.status, headers: res.headers, text: body, body: parsed };
}

before(async () => {
  [gwA, gwB, gwC, py] = await Promise.all([startGateway(), startGateway(), startGateway(), startPyServer()]);
  const A = (method, path, body) => gwA.admin(method, path, body);
  ok(await A("POST", "/admin/v1/servers", { slug: "cfg-py", name: "Python upstream", url: py.url, org_id: ORG, timeout_ms: 5000, new_tool_policy: "quarantine", description: "the py test server" }));
  ok(await A("POST", "/admin/v1/virtual-servers", { slug: "cfg-v", name: "Chosen", org_id: ORG, tools: [{ server: "cfg-py", tool: "echo", name: "say" }] }));
  ids.ws = ok(await A("POST", "/admin/v1/workspaces", { name: "Engineering", parent_id: ORG })).id;
  ids.team = ok(await A("POST", "/admin/v1/teams", { name: "Platform", parent_id: ids.ws })).id;
  ids.user = ok(await A("POST", "/admin/v1/users", { name: "Ada", parent_id: ORG, email: "ada@example.com" })).id;
  ids.agent = ok(await A("POST", "/admin/v1/agents", { name: "builder", parent_id: ORG })).id;
  ok(await A("POST", `/admin/v1/teams/${ids.team}/members`, { principal_id: ids.agent }), 204);
  ok(await A("POST", `/admin/v1/workspaces/${ids.ws}/members`, { principal_id: ids.user }), 204);
  ok(await A("POST", "/admin/v1/grants", { subject_kind: "team", subject_id: ids.team, resource: "cfg-py", effect: "allow" }));
  ok(await A("POST", "/admin/v1/grants", { subject_kind: "agent", subject_id: ids.agent, resource_kind: "virtual", resource: "cfg-*", effect: "allow" }));
  ok(await A("POST", "/admin/v1/grants", { subject_kind: "agent", subject_id: ids.agent, resource: "cfg-py", tool: "add*", effect: "deny" }));
  ok(await A("POST", "/admin/v1/grants", { subject_kind: "user", subject_id: ids.user, resource_kind: "virtual", resource: "cfg-v", effect: "allow" }));
  ok(await A("POST", "/admin/v1/policies", { name: "no-etc", scope: { server: "cfg-py" }, rules: [{ kind: "block", when: { arg: "/path", matches: "^/etc/" }, action: "deny" }] }));
});
after(async () => {
  await Promise.all([gwA?.stop(), gwB?.stop(), gwC?.stop(), py?.stop()]);
});

describe("round trip", () => {
  test("export → apply onto the same gateway changes nothing; onto an empty one, exports identically", async () => {
    const first = await exportOf(gwA);
    const doc = ok(first, 200);
    assert.equal(doc.version, 1);
    assert.equal(doc.org, ORG);
    assert.deepEqual(doc.servers.map((s) => s.slug), ["cfg-py"]);
    assert.equal(doc.servers[0].url, py.url);
    assert.equal(doc.servers[0].new_tool_policy, "quarantine");
    assert.equal(doc.servers[0].timeout_ms, 5000);
    assert.deepEqual(doc.virtual_servers, [{ slug: "cfg-v", name: "Chosen", tools: [{ server: "cfg-py", tool: "echo", name: "say" }] }]);
    assert.ok(doc.teams.some((t) => t.id === ids.team && t.workspace === ids.ws));
    assert.ok(doc.users.some((u) => u.id === ids.user && u.email === "ada@example.com"));
    assert.ok(doc.memberships.some((m) => m.group === ids.team && m.principal === ids.agent));
    assert.equal(doc.grants.filter((g) => [ids.team, ids.agent, ids.user].includes(g.subject_id)).length, 4);
    assert.deepEqual(doc.policies.map((p) => p.name), ["no-etc"]);
    assert.doesNotMatch(first.text, /created_at|"id":"grant_|"id":"pol_/, "no timestamps or gateway-made ids");

    assert.deepEqual(ok(await applyTo(gwA, doc, "?dry_run=true"), 200).changes, []);
    assert.deepEqual(ok(await applyTo(gwA, doc), 200).changes, []);

    const applied = ok(await applyTo(gwB, doc), 200);
    assert.ok(applied.changes.length > 0);
    assert.ok(applied.changes.every((c) => c.op === "create"), JSON.stringify(applied.changes));
    const again = await exportOf(gwB);
    assert.equal(again.status, 200);
    assert.equal(again.text, first.text, "the second gateway exports the same document byte for byte");
    assert.deepEqual(ok(await applyTo(gwB, doc, "?dry_run=true"), 200).changes, []);
  });

  test("an agent of the applied organization calls the upstream on the new gateway", async () => {
    const key = ok(await gwB.admin("POST", "/admin/v1/api-keys", { name: "builder", principal_id: ids.agent })).key;
    const call = final(await mcpPost(gwB, "/mcp/cfg-py", { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: { message: "from config" } } }, { key, modern: true }));
    assert.ok(call.result, JSON.stringify(call));
    assert.match(JSON.stringify(call.result.content), /from config/);
    const virtual = final(await mcpPost(gwB, "/mcp/v/cfg-v", { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "say", arguments: { message: "virtually" } } }, { key, modern: true }));
    assert.match(JSON.stringify(virtual.result?.content), /virtually/, JSON.stringify(virtual));
    // The agent's deny grant came along too: the denied tool is neither listed nor called.
    const listed = final(await mcpPost(gwB, "/mcp/cfg-py", { jsonrpc: "2.0", id: 3, method: "tools/list", params: {} }, { key, modern: true }));
    const names = listed.result.tools.map((t) => t.name);
    assert.ok(names.includes("echo") && !names.includes("add"), JSON.stringify(names));
    const denied = final(await mcpPost(gwB, "/mcp/cfg-py", { jsonrpc: "2.0", id: 4, method: "tools/call", params: { name: "add", arguments: { a: 1, b: 2 } } }, { key, modern: true }));
    assert.ok(denied.error, JSON.stringify(denied));
  });

  test("the apply is one audit record listing its changes", async () => {
    const deadline = Date.now() + AUDIT_POLL_MS;
    let found;
    while (!found && Date.now() < deadline) {
      const r = ok(await as(gwB, gwB.adminToken, "GET", `/admin/v1/audit?org=${ORG}&kind=admin&limit=500`), 200);
      found = r.events.filter((e) => e.admin?.path === "/admin/v1/config" && e.admin.after?.changes?.some((c) => c.op === "create" && c.kind === "server" && c.id === "cfg-py"));
      if (!found.length) {
        found = undefined;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    assert.ok(found, "an audit event for the apply");
    assert.equal(found.length, 1, "the apply is recorded once");
    assert.equal(found[0].org_id ?? ORG, ORG);
    const changes = found[0].admin.after.changes;
    assert.ok(changes.some((c) => c.op === "create" && c.kind === "server" && c.id === "cfg-py"), JSON.stringify(changes));
    assert.ok(changes.every((c) => c.before === undefined && c.after === undefined), "a summary, not the contents");
  });
});

describe("dry run and validation", () => {
  test("a dry run of a modified document lists exactly its changes and changes nothing", async () => {
    const before = await exportOf(gwB);
    const doc = structuredClone(before.body);
    doc.agents.find((a) => a.id === ids.agent).name = "builder 2";
    doc.grants = doc.grants.filter((g) => !(g.subject_id === ids.agent && g.effect === "deny"));
    doc.workspaces.push({ id: "ws_cfg_new", name: "New" });
    doc.policies[0].mode = "monitor";
    const r = ok(await applyTo(gwB, doc, "?dry_run=true"), 200);
    const summary = r.changes.map((c) => `${c.op} ${c.kind} ${c.id}`).sort();
    assert.deepEqual(summary, [
      "create workspace ws_cfg_new",
      `delete grant agent:${ids.agent} deny server:cfg-py/add*`,
      `update agent ${ids.agent}`,
      "update policy no-etc",
    ]);
    const agent = r.changes.find((c) => c.kind === "agent");
    assert.deepEqual([agent.before.name, agent.after.name], ["builder", "builder 2"]);
    assert.equal((await exportOf(gwB)).text, before.text, "a dry run changes nothing");
  });

  test("an invalid document names every error's path and changes nothing", async () => {
    const before = await exportOf(gwB);
    const doc = structuredClone(before.body);
    doc.workspaces.push({ id: "ws_cfg_early", name: "created first, if anything were" });
    doc.servers[0].url = "ftp://nowhere";
    doc.memberships.push({ group: "team_nope", principal: ids.agent });
    doc.policies.push({ name: "late", rules: [{ kind: "guardrail", on: ["arguments"], detect: ["email", "foo"], action: "redact" }] });
    const r = await applyTo(gwB, doc);
    assert.equal(r.status, 422, r.text);
    assert.match(r.headers.get("content-type"), /application\/problem\+json/);
    const paths = r.body.errors.map((e) => e.split(":")[0]);
    assert.ok(paths.includes("memberships[2].group") || paths.some((p) => /^memberships\[\d+\]\.group$/.test(p)), r.text);
    assert.ok(paths.some((p) => /^policies\[\d+\]\.rules\[0\]\.detect\[1\]$/.test(p)), r.text);
    assert.equal((await exportOf(gwB)).text, before.text);
    // Valid on its own, refused by the gateway's rules (the URL): still nothing applied.
    const urlOnly = structuredClone(before.body);
    urlOnly.workspaces.push({ id: "ws_cfg_early", name: "x" });
    urlOnly.servers[0].url = "http://user:pw@127.0.0.1:1/mcp";
    const u = await applyTo(gwB, urlOnly);
    assert.equal(u.status, 422, u.text);
    assert.ok(u.body.errors.some((e) => e.startsWith("servers[0].url:")), u.text);
    assert.equal((await exportOf(gwB)).text, before.text);
  });

  test("an unreachable upstream in the document applies nothing", async () => {
    const before = await exportOf(gwB);
    const doc = structuredClone(before.body);
    doc.workspaces.push({ id: "ws_cfg_unreached", name: "x" });
    doc.servers.push({ slug: "cfg-dead", name: "dead", url: "http://127.0.0.1:9/mcp" });
    const r = await applyTo(gwB, doc);
    assert.equal(r.status, 502, r.text);
    assert.equal((await exportOf(gwB)).text, before.text);
  });

  test("a dry_run that is neither yes nor no is refused, not applied; an oversized body is a problem document", async () => {
    const before = await exportOf(gwB);
    const doc = structuredClone(before.body);
    doc.workspaces.push({ id: "ws_cfg_typo", name: "applied only if the typo were read as no" });
    for (const v of ["yes", "AAA", ""]) {
      const r = await applyTo(gwB, doc, `?dry_run=${v}`);
      assert.equal(r.status, 422, `${v}: ${r.text}`);
      assert.match(r.body.detail, /dry_run/);
    }
    assert.equal((await exportOf(gwB)).text, before.text);
    const big = await applyText(gwB, `version: 1\norg: ${ORG}\n# ${"x".repeat(300 * 1024)}\n`);
    assert.equal(big.status, 413, big.text);
    assert.match(big.headers.get("content-type"), /application\/problem\+json/);
    assert.equal((await exportOf(gwB)).text, before.text);
  });

  test("a document must be of the organization asked for", async () => {
    const doc = (await exportOf(gwB)).body;
    const wrong = await applyTo(gwB, { ...doc, org: "org_other" });
    assert.equal(wrong.status, 422, wrong.text);
    assert.match(wrong.text, /org: /);
    // JSON or YAML only (docs/config-as-code.md, *Formats*).
    for (const type of ["text/plain", "application/xml"]) {
      const other = await applyText(gwB, "version: 1", "", type);
      assert.equal(other.status, 415, other.text);
      assert.match(other.body.detail, /application\/json or application\/yaml/);
    }
  });
});

describe("YAML", () => {
  test("the exported document as YAML dry-runs to no change, and applies to an empty gateway as JSON does", async () => {
    const exported = await exportOf(gwA);
    const doc = ok(exported, 200);
    const yaml = YAML.stringify(doc);
    assert.doesNotMatch(yaml.trimStart(), /^\{/, "block-style YAML, not JSON");
    for (const type of ["application/yaml", "application/x-yaml", "text/yaml; charset=utf-8"]) {
      assert.deepEqual(ok(await applyText(gwA, yaml, "?dry_run=true", type), 200).changes, [], type);
    }
    // What the JSON document would do to the empty gateway, then the YAML one doing it.
    const asJson = ok(await applyTo(gwC, doc, "?dry_run=true"), 200).changes;
    assert.ok(asJson.length > 0 && asJson.every((c) => c.op === "create"), JSON.stringify(asJson));
    assert.deepEqual(ok(await applyText(gwC, yaml, "?dry_run=true"), 200).changes, asJson, "the YAML dry run");
    assert.deepEqual(ok(await applyText(gwC, yaml), 200).changes, asJson, "the YAML apply");
    const there = await exportOf(gwC);
    assert.equal(there.text, exported.text, "the YAML-applied gateway exports the same document byte for byte");
    assert.deepEqual(ok(await applyTo(gwC, doc, "?dry_run=true"), 200).changes, []);
  });

  test("YAML of its own: comments, anchors, quoted look-alike strings", async () => {
    const base = ok(await exportOf(gwA), 200);
    const id = "ws_yaml_007";
    const yaml = [
      "# written by hand",
      YAML.stringify({ ...base, workspaces: undefined, users: undefined }).trimEnd(),
      "workspaces:",
      ...base.workspaces.map((w) => `  - ${JSON.stringify(w)}`),
      `  - id: ${id}`,
      "    name: &n '0123'   # a string, though it looks like a number",
      "  - id: ws_yaml_008",
      "    name: *n",
      "users:",
      ...base.users.map((u) => `  - ${JSON.stringify(u)}`),
      "",
    ].join("\n");
    const r = ok(await applyText(gwA, yaml, "?dry_run=true"), 200);
    assert.deepEqual(r.changes.map((c) => `${c.op} ${c.kind} ${c.id}`).sort(), [`create workspace ${id}`, "create workspace ws_yaml_008"]);
    assert.deepEqual(r.changes.map((c) => c.after).sort((a, b) => a.id.localeCompare(b.id)), [{ id, name: "0123" }, { id: "ws_yaml_008", name: "0123" }]);
  });

  test("YAML that does not parse, or that JSON cannot say, is refused with its place and changes nothing", async () => {
    const before = await exportOf(gwA);
    const yaml = YAML.stringify({ ...before.body, workspaces: [...before.body.workspaces, { id: "ws_yaml_bad", name: "x" }] });
    const refused = async (text, status, detail) => {
      const r = await applyText(gwA, text);
      assert.equal(r.status, status, r.text);
      assert.match(r.headers.get("content-type"), /application\/problem\+json/);
      assert.match(r.body.detail ?? r.text, detail, r.text);
      return r;
    };
    const broken = await refused(`${yaml}servers: [ {slug: a\n`, 400, /^request body is not valid YAML: line \d+, column \d+: /);
    assert.equal(broken.body.type, "https://mcp-gateway.dev/problems/bad-yaml");
    const lines = yaml.split("\n").length;
    await refused(`${yaml}extra: .nan\n`, 400, new RegExp(`line ${lines}, column 8: \\.nan has no JSON form`));
    await refused(`${yaml}7: seven\n`, 400, new RegExp(`line ${lines}, column 1: a key must be a string`));
    await refused(`${yaml}note: !secret x\n`, 400, /tag !secret is not accepted/);
    await refused(`${yaml}---\nversion: 1\n`, 400, /only one YAML document/);
    await refused(`${yaml}version: 2\n`, 400, /duplicate key 'version'/);
    await refused("", 400, /no YAML document/);
    assert.equal((await applyText(gwA, `# ${"x".repeat(256 * 1024)}\n${yaml}`)).status, 413, "the 256 KiB cap holds");
    // Valid YAML, invalid document: the JSON path's own errors, each naming its path.
    const invalid = await refused(yaml.replace(`url: ${before.body.servers[0].url}`, "url: ftp://nowhere"), 422, /servers\[0\]\.url/);
    assert.ok(invalid.body.errors.some((e) => e.startsWith("servers[0].url:")), invalid.text);
    assert.equal((await exportOf(gwA)).text, before.text, "nothing applied");
  });
});

describe("tenancy", () => {
  test("an org admin neither reads nor changes another organization's configuration", async () => {
    const A = (m, p, b) => gwA.admin(m, p, b);
    for (const o of ["X", "Y"]) {
      ids[`org${o}`] = ok(await A("POST", "/admin/v1/orgs", { name: `Org ${o}` })).id;
      const admin = ok(await A("POST", "/admin/v1/users", { name: `admin ${o}`, parent_id: ids[`org${o}`] })).id;
      ok(await A("POST", "/admin/v1/roles", { principal_id: admin, role: "org_admin", scope_id: ids[`org${o}`] }));
      ids[`key${o}`] = ok(await A("POST", "/admin/v1/api-keys", { name: "admin", principal_id: admin })).key;
    }
    const X = ids.keyX;
    ok(await as(gwA, X, "POST", "/admin/v1/servers", { slug: "x-srv", name: "X", url: py.url }));
    ids.agentX = ok(await as(gwA, X, "POST", "/admin/v1/agents", { name: "x-bot", parent_id: ids.orgX })).id;
    const xDoc = ok(await exportOf(gwA, X), 200);
    assert.equal(xDoc.org, ids.orgX, "an org admin's own organization by default");
    assert.deepEqual(xDoc.servers.map((s) => s.slug), ["x-srv"]);

    const Y = ids.keyY;
    // Reading or applying X's configuration answers as for an organization that does not exist.
    const theirs = await exportOf(gwA, Y, `?org=${ids.orgX}`);
    const none = await exportOf(gwA, Y, "?org=org_missing");
    assert.equal(theirs.status, 404);
    assert.equal(theirs.text.replaceAll(ids.orgX, "ID"), none.text.replaceAll("org_missing", "ID"));
    const applied = await applyTo(gwA, { ...xDoc, servers: [] }, `?org=${ids.orgX}`, Y);
    assert.equal(applied.status, 404, applied.text);
    const dry = await applyTo(gwA, xDoc, `?org=${ids.orgX}&dry_run=true`, Y);
    assert.equal(dry.status, 404, dry.text);

    // Y's own document cannot take X's things: slugs and ids that exist elsewhere are refused,
    // and a grant to X's agent names nothing of Y's.
    const yDoc = ok(await exportOf(gwA, Y), 200);
    assert.equal(yDoc.org, ids.orgY);
    assert.deepEqual(yDoc.servers, [], "nothing of X's in Y's export");
    assert.ok(!JSON.stringify(yDoc).includes(ids.orgX) && !JSON.stringify(yDoc).includes(ids.agentX));
    const grab = await applyTo(gwA, {
      ...yDoc,
      servers: [{ slug: "x-srv", name: "mine now", url: py.url }],
      agents: [...yDoc.agents, { id: ids.agentX, name: "mine too" }],
    }, "", Y);
    assert.equal(grab.status, 422, grab.text);
    assert.ok(grab.body.errors.some((e) => e.startsWith("servers[0].slug:")), grab.text);
    assert.ok(grab.body.errors.some((e) => /^agents\[\d+\]\.id:/.test(e)), grab.text);
    const grant = await applyTo(gwA, { ...yDoc, grants: [{ subject_kind: "org", subject_id: ids.orgX, resource: "*", effect: "allow" }] }, "", Y);
    assert.equal(grant.status, 422, grant.text);
    assert.ok(grant.body.errors.some((e) => e.startsWith("grants[0].subject_id:")), grant.text);
    const stillX = ok(await exportOf(gwA, X), 200);
    assert.deepEqual(stillX, xDoc, "X's configuration is untouched");
    // Y's admin cannot delete itself by leaving itself out.
    const self = await applyTo(gwA, { version: 1, org: ids.orgY }, "", Y);
    assert.equal(self.status, 422, self.text);
    assert.match(self.text, /the principal applying it/);
    // A document that deletes everything of Y's leaves X's alone.
    ok(await applyTo(gwA, { version: 1, org: ids.orgY, users: yDoc.users }, "", Y), 200);
    assert.deepEqual(ok(await exportOf(gwA, X), 200), xDoc);
  });
});
