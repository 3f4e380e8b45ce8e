// The audit trail under Miniflare: admin writes recorded with who, what, before and after and
// never a secret; filtered, paginated listings; one organization's admin sees nothing of
// another's; rows altered or deleted directly in D1 make verify name them; a queue redelivery
// stores once; retention keeps verify passing; MCP calls by two agents in two teams (allowed,
// denied, a tool error, an upstream that went down) are recorded and filter by team, principal
// and outcome. Events reach D1 through the real AUDIT queue and
// its consumer, asynchronously: tests poll the API until what they expect appears (bounded).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { final, mcpPost, startGateway, startPyServer, requestAs, expectStatus } from "./harness.mjs";

const CANARY_HEADER = `canary-header-${randomBytes(12).toString("hex")}`;
const CANARY_CRED = `canary-cred-${randomBytes(12).toString("hex")}`;
const POLL_MS = 60_000;
let gw, py;
const ids = {};

/** A call of the admin API with a principal's own key. */
const as = (key, method, path, body, g = gw) => requestAs(g, key, method, path, body);

const ok = expectStatus;

/** Polls `GET /admin/v1/audit?{query}` (as `key`, default the bootstrap token) until `done(events)`. */
async function waitFor(query, done, key = gw.adminToken, g = gw) {
  const deadline = Date.now() + POLL_MS;
  let last;
  while (Date.now() < deadline) {
    const res = await g.fetch(`/admin/v1/audit?${query}`, { headers: { authorization: `Bearer ${key}` } });
    last = await res.text();
    assert.equal(res.status, 200, last);
    const events = JSON.parse(last).events;
    if (done(events)) return events;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`audit ?${query} never reached the expected state; last answer: ${last}`);
}

/** Every page of a listing, following `next_cursor`. */
async function allPages(query, key = gw.adminToken, g = gw) {
  const out = [];
  let cursor = null;
  for (let i = 0; i < 100; i++) {
    const r = await as(key, "GET", `/admin/v1/audit?${query}${cursor ? `&cursor=${cursor}` : ""}`, undefined, g);
    ok(r, 200);
    out.push(...r.body.events);
    cursor = r.body.next_cursor;
    if (!cursor) return out;
  }
  assert.fail("pagination did not end");
}

before(async () => {
  [gw, py] = await Promise.all([
    startGateway({ vars: { VAULT_KEYS: `k1:${randomBytes(32).toString("base64")}` } }),
    startPyServer(),
  ]);
  for (const o of ["A", "B"]) {
    ids[`org${o}`] = ok(await gw.admin("POST", "/admin/v1/orgs", { name: `Org ${o}` })).id;
    ids[`user${o}`] = ok(await gw.admin("POST", "/admin/v1/users", { name: `admin ${o}`, parent_id: ids[`org${o}`] })).id;
    ok(await gw.admin("POST", "/admin/v1/roles", { principal_id: ids[`user${o}`], role: "org_admin", scope_id: ids[`org${o}`] }));
    const k = ok(await gw.admin("POST", "/admin/v1/api-keys", { name: "admin", principal_id: ids[`user${o}`] }));
    [ids[`admin${o}`], ids[`adminKey${o}`]] = [k.key, k.id];
  }
  ids.viewerA = ok(await gw.admin("POST", "/admin/v1/users", { name: "viewer", parent_id: ids.orgA })).id;
  ok(await gw.admin("POST", "/admin/v1/roles", { principal_id: ids.viewerA, role: "viewer", scope_id: ids.orgA }));
  ids.viewerKeyA = ok(await gw.admin("POST", "/admin/v1/api-keys", { name: "viewer", principal_id: ids.viewerA })).key;
});
after(() => Promise.all([gw?.stop(), py?.stop()]));

describe("admin writes", () => {
  test("are recorded with who, what, before and after, and never a secret", async () => {
    const A = ids.adminA;
    ok(await as(A, "POST", "/admin/v1/servers", {
      slug: "aud-a", name: "A", url: py.url, credentials: { kind: "headers", headers: { "X-Canary": CANARY_HEADER } },
    }));
    ok(await as(A, "PUT", "/admin/v1/servers/aud-a/credentials", { kind: "headers", headers: { "X-Canary": CANARY_CRED } }), 200);
    ok(await as(A, "PATCH", "/admin/v1/servers/aud-a", { description: "after" }), 200);
    const agent = ok(await as(A, "POST", "/admin/v1/agents", { name: "bot", parent_id: ids.orgA }));
    const issued = ok(await as(A, "POST", "/admin/v1/api-keys", { name: "bot key", principal_id: agent.id }));
    assert.match(issued.key, /^mcpgw_/);
    ok(await as(A, "DELETE", `/admin/v1/api-keys/${issued.id}`), 204);
    // A write that fails changes nothing and is not recorded.
    assert.equal((await as(A, "PATCH", "/admin/v1/servers/aud-a", { no_such_field: 1 })).status, 422);

    const mine = `org=${ids.orgA}&kind=admin&principal=${ids.userA}`;
    const events = await waitFor(mine, (e) => e.length >= 6);
    assert.equal(events.length, 6, JSON.stringify(events.map((e) => e.admin.path)));
    for (const e of events) {
      assert.equal(e.org_id, ids.orgA);
      assert.equal(e.key_id, ids.adminKeyA);
      assert.equal(e.outcome, "ok");
      assert.ok(e.admin.status >= 200 && e.admin.status < 300);
    }
    const find = (m, p) => events.find((e) => e.admin.http_method === m && e.admin.path === p);
    const created = find("POST", "/admin/v1/servers");
    assert.equal(created.admin.before, null);
    assert.equal(created.admin.after.slug, "aud-a");
    const patched = find("PATCH", "/admin/v1/servers/aud-a");
    assert.notEqual(patched.admin.before.description, "after");
    assert.equal(patched.admin.after.description, "after");
    const keyCreated = find("POST", "/admin/v1/api-keys");
    assert.equal(keyCreated.admin.after.name, "bot key");
    const revoked = find("DELETE", `/admin/v1/api-keys/${issued.id}`);
    assert.equal(revoked.admin.after, null);
    assert.ok(find("PUT", "/admin/v1/servers/aud-a/credentials"), "the credential change is recorded");
    // Newest first.
    const times = events.map((e) => e.time_ms);
    assert.deepEqual(times, [...times].sort((a, b) => b - a));

    // Canary: no secret anywhere in the trail, through the API or in storage.
    const everything = JSON.stringify([
      await allPages(`org=${ids.orgA}`),
      await allPages("kind=admin"),
      (await gw.mf.getD1Database("DB").then((db) => db.prepare("SELECT * FROM audit_events").all())).results,
    ]);
    for (const secret of [CANARY_HEADER, CANARY_CRED, issued.key, ids.adminA, gw.adminToken]) {
      assert.ok(!everything.includes(secret), `a secret leaked into the audit trail: ${secret.slice(0, 14)}…`);
    }
  });

  test("by the bootstrap token are recorded as admin_token, in the written object's organization", async () => {
    const org = ok(await gw.admin("POST", "/admin/v1/orgs", { name: "Org boot" })).id;
    const team = ok(await gw.admin("POST", "/admin/v1/workspaces", { name: "ws", parent_id: org })).id;
    const events = await waitFor(`org=${org}`, (e) => e.length >= 2);
    assert.deepEqual(events.map((e) => [e.principal_id, e.auth_kind, e.admin.path]), [
      ["admin_token", "admin_token", "/admin/v1/workspaces"],
      ["admin_token", "admin_token", "/admin/v1/orgs"],
    ]);
    assert.equal(events[0].admin.after.id, team);
  });
});

describe("the audit API", () => {
  test("filters and paginates newest first", async () => {
    const B = ids.adminB;
    for (let i = 0; i < 5; i++) ok(await as(B, "POST", "/admin/v1/agents", { name: `agent ${i}`, parent_id: ids.orgB }));
    const all = await waitFor("kind=admin&limit=500", (e) => e.length >= 5, B);
    const pages = await allPages("kind=admin&limit=2", B);
    assert.deepEqual(pages.map((e) => e.id), all.map((e) => e.id), "pages of 2 walk the same list, nothing repeated or skipped");
    assert.ok(all.every((e) => e.org_id === ids.orgB));
    const first = (await as(B, "GET", "/admin/v1/audit?limit=2")).body;
    assert.equal(first.events.length, 2);
    assert.ok(first.next_cursor);
    // Filters.
    const oldest = all.at(-1);
    const at = (await as(B, "GET", `/admin/v1/audit?from=${oldest.time_ms}&to=${new Date(oldest.time_ms + 1).toISOString()}`)).body.events;
    assert.ok(at.length >= 1 && at.every((e) => e.time_ms === oldest.time_ms));
    assert.equal((await as(B, "GET", `/admin/v1/audit?principal=${ids.userB}`)).body.events.length, 5);
    assert.equal((await as(B, "GET", "/admin/v1/audit?principal=usr_nobody")).body.events.length, 0);
    assert.equal((await as(B, "GET", "/admin/v1/audit?outcome=denied")).body.events.length, 0);
    assert.equal((await as(B, "GET", `/admin/v1/audit?trace_id=${oldest.trace.trace_id}`)).body.events[0].id, oldest.id);
    // Bad parameters are problem documents.
    for (const q of ["limit=0", "limit=501", "cursor=%%%", "from=yesterday", "cursor=bm90LWEtY3Vyc29y"]) {
      const r = await as(B, "GET", `/admin/v1/audit?${q}`);
      assert.equal(r.status, 422, `${q}: ${r.text}`);
      assert.equal(r.headers.get("content-type"), "application/problem+json");
    }
  });

  test("one organization's admin sees nothing of another's, and a viewer may read", async () => {
    await waitFor(`org=${ids.orgA}`, (e) => e.length >= 1);
    const seenByB = JSON.stringify(await allPages("limit=500", ids.adminB));
    assert.ok(!seenByB.includes(ids.orgA), "org B's admin saw an org A record");
    for (const path of ["/admin/v1/audit", "/admin/v1/audit/verify"]) {
      const theirs = await as(ids.adminB, "GET", `${path}?org=${ids.orgA}`);
      const none = await as(ids.adminB, "GET", `${path}?org=org_missing000000`);
      assert.equal(theirs.status, 404);
      assert.equal(theirs.text.replaceAll(ids.orgA, "ID"), none.text.replaceAll("org_missing000000", "ID"));
    }
    const verifiedB = ok(await as(ids.adminB, "GET", "/admin/v1/audit/verify"), 200);
    assert.equal(verifiedB.ok, true);
    const viewed = ok(await as(ids.viewerKeyA, "GET", "/admin/v1/audit?limit=500"), 200);
    assert.ok(viewed.events.length >= 1 && viewed.events.every((e) => e.org_id === ids.orgA));
    assert.equal((await as(ids.viewerKeyA, "POST", "/admin/v1/audit", {})).status, 403);
  });
});

describe("verify", () => {
  test("names a record altered or deleted directly in storage", async () => {
    const org = ok(await gw.admin("POST", "/admin/v1/orgs", { name: "Org tamper" })).id;
    for (let i = 0; i < 4; i++) ok(await gw.admin("POST", "/admin/v1/users", { name: `user-${i}`, parent_id: org }));
    await waitFor(`org=${org}`, (e) => e.length >= 5);
    const check = async () => ok(await gw.admin("GET", `/admin/v1/audit/verify?org=${org}`), 200);
    assert.deepEqual(await check(), { ok: true, checked: 5, first_broken: null });

    const db = await gw.mf.getD1Database("DB");
    const row = async (seq) => db.prepare("SELECT * FROM audit_events WHERE org_id = ? AND seq = ?").bind(org, seq).first();
    const third = await row(3);
    await db.prepare("UPDATE audit_events SET body = replace(body, 'user-', 'USER-') WHERE org_id = ? AND seq = 3").bind(org).run();
    let v = await check();
    assert.equal(v.ok, false);
    assert.deepEqual([v.first_broken.seq, v.first_broken.id], [3, third.id]);
    await db.prepare("UPDATE audit_events SET body = ? WHERE org_id = ? AND seq = 3").bind(third.body, org).run();
    assert.equal((await check()).ok, true, "restored");

    const second = await row(2);
    const other = second.outcome === "ok" ? "denied" : "ok";
    await db.prepare("UPDATE audit_events SET outcome = ? WHERE org_id = ? AND seq = 2").bind(other, org).run();
    v = await check();
    assert.deepEqual([v.ok, v.first_broken.seq, v.first_broken.id], [false, 2, second.id]);
    await db.prepare("UPDATE audit_events SET outcome = ? WHERE org_id = ? AND seq = 2").bind(second.outcome, org).run();

    await db.prepare("DELETE FROM audit_events WHERE org_id = ? AND seq = 4").bind(org).run();
    v = await check();
    assert.deepEqual([v.ok, v.first_broken.seq, v.first_broken.id], [false, 4, null]);
  });
});

describe("the queue consumer", () => {
  test("stores a redelivered event once", async () => {
    const org = `org_redeliver${randomBytes(4).toString("hex")}`;
    const event = (id) => ({
      id, kind: "mcp", time_ms: Date.now(), org_id: org, principal_id: "agt_x", principal_kind: "agent", key_id: "key_x",
      team_ids: [], workspace_ids: [], capture: "keys", endpoint: "server", server: "s", method: "tools/call", tool: "echo", http_method: "POST",
      outcome: "ok", latency_ms: 1.5, upstream_ms: 1, bytes_in: 1, bytes_out: 1, upstreams: [], decisions: [],
    });
    const queue = await gw.mf.getQueueProducer("AUDIT");
    const e1 = JSON.stringify(event("ev_redeliver_1"));
    await queue.send(e1);
    await queue.sendBatch([{ body: e1 }, { body: JSON.stringify(event("ev_redeliver_2")) }, { body: e1 }]);
    await queue.send(e1);
    // A last event: once it is stored, everything sent before it was consumed.
    await queue.send(JSON.stringify(event("ev_redeliver_3")));
    const got = await waitFor(`org=${org}&limit=500`, (e) => e.some((x) => x.id === "ev_redeliver_3") && e.some((x) => x.id === "ev_redeliver_2"));
    assert.deepEqual(got.map((e) => e.id).sort(), ["ev_redeliver_1", "ev_redeliver_2", "ev_redeliver_3"]);
    assert.deepEqual(ok(await gw.admin("GET", `/admin/v1/audit/verify?org=${org}`), 200), { ok: true, checked: 3, first_broken: null });
  });
});

describe("retention", () => {
  test("purges old records and keeps the chain verifiable", async () => {
    // A gateway of its own: the purge applies to every chain.
    const g = await startGateway({ vars: { AUDIT_RETENTION_DAYS: "30" } });
    try {
      const org = ok(await g.admin("POST", "/admin/v1/orgs", { name: "Org old" })).id;
      for (let i = 0; i < 2; i++) ok(await g.admin("POST", "/admin/v1/users", { name: `old-${i}`, parent_id: org }));
      const old = await waitFor(`org=${org}`, (e) => e.length >= 3, g.adminToken, g);
      for (let i = 0; i < 2; i++) ok(await g.admin("POST", "/admin/v1/users", { name: `new-${i}`, parent_id: org }));
      const all = await waitFor(`org=${org}`, (e) => e.length >= 5, g.adminToken, g);
      const newer = all.filter((e) => !old.some((o) => o.id === e.id));
      const cutoff = Math.min(...newer.map((e) => e.time_ms));
      // What goes: the chain's longest prefix older than the cutoff.
      const bySeq = [...all].sort((a, b) => a.seq - b.seq);
      const gone = [];
      for (const e of bySeq) {
        if (e.time_ms >= cutoff) break;
        gone.push(e.id);
      }
      assert.ok(gone.length >= 1);
      const worker = await g.mf.getWorker();
      await worker.scheduled({ scheduledTime: new Date(cutoff + 30 * 86_400_000), cron: "17 3 * * *" });
      const kept = (await allPages(`org=${org}&limit=2`, g.adminToken, g)).length;
      const left = await (async () => {
        const r = await g.admin("GET", `/admin/v1/audit?org=${org}&limit=500`);
        return r.body.events.map((e) => e.id);
      })();
      assert.deepEqual(left.sort(), all.map((e) => e.id).filter((id) => !gone.includes(id)).sort());
      assert.equal(kept, all.length - gone.length);
      const v = ok(await g.admin("GET", `/admin/v1/audit/verify?org=${org}`), 200);
      assert.deepEqual(v, { ok: true, checked: all.length - gone.length, first_broken: null });
      // The chain continues after a purge.
      ok(await g.admin("POST", "/admin/v1/users", { name: "later", parent_id: org }));
      await waitFor(`org=${org}`, (e) => e.length === all.length - gone.length + 1, g.adminToken, g);
      assert.equal((await g.admin("GET", `/admin/v1/audit/verify?org=${org}`)).body.ok, true);
    } finally {
      await g.stop();
    }
  });
});

describe("MCP calls", () => {
  test("by two agents in two teams are recorded and filter by team, principal and outcome", async () => {
    let down = await startPyServer();
    try {
      const m = {};
      const admin = async (method, path, body, status = 201) => ok(await gw.admin(method, path, body), status);
      await admin("POST", "/admin/v1/servers", { slug: "aud-py", name: "py", url: py.url });
      await admin("POST", "/admin/v1/servers", { slug: "aud-gone", name: "gone", url: down.url });
      m.org = (await admin("POST", "/admin/v1/orgs", { name: "Org calls" })).id;
      m.ws = (await admin("POST", "/admin/v1/workspaces", { name: "ws", parent_id: m.org })).id;
      for (const t of ["A", "B"]) {
        m[`team${t}`] = (await admin("POST", "/admin/v1/teams", { name: t, parent_id: m.ws })).id;
        m[`agent${t}`] = (await admin("POST", "/admin/v1/agents", { name: `agent ${t}`, parent_id: m.org })).id;
        await admin("POST", `/admin/v1/teams/${m[`team${t}`]}/members`, { principal_id: m[`agent${t}`] }, 204);
        m[`key${t}`] = (await admin("POST", "/admin/v1/api-keys", { name: t, principal_id: m[`agent${t}`] })).key;
      }
      // Team A may use both servers; team B only aud-py's echo.
      for (const resource of ["aud-py", "aud-gone"]) {
        await admin("POST", "/admin/v1/grants", { subject_kind: "team", subject_id: m.teamA, resource, effect: "allow" });
      }
      await admin("POST", "/admin/v1/grants", { subject_kind: "team", subject_id: m.teamB, resource: "aud-py", tool: "echo", effect: "allow" });

      const call = (key, path, name, args) =>
        mcpPost(gw, path, { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name, arguments: args } }, { key, modern: true });
      assert.equal(final(await call(m.keyA, "/mcp/aud-py", "echo", { message: "hi" })).result.isError ?? false, false);
      assert.equal(final(await call(m.keyA, "/mcp/aud-py", "echo", {})).result.isError, true);
      assert.ok(final(await call(m.keyB, "/mcp", "aud-py__echo", { message: "hi" })).result);
      assert.ok(final(await call(m.keyB, "/mcp/aud-py", "slow", {})).error);
      await down.stop();
      down = null;
      const gone = await call(m.keyA, "/mcp/aud-gone", "echo", { message: "hi" });
      assert.ok(gone.status >= 400 || final(gone).error, gone.text);

      const q = `org=${m.org}&kind=mcp&limit=500`;
      const calls = await waitFor(q, (e) => e.filter((x) => x.method === "tools/call").length >= 5);
      const toolCalls = calls.filter((e) => e.method === "tools/call");
      assert.equal(toolCalls.length, 5, JSON.stringify(toolCalls.map((e) => [e.server, e.tool, e.outcome])));
      for (const e of toolCalls) {
        assert.equal(e.org_id, m.org);
        assert.match(e.trace.trace_id, /^[0-9a-f]{32}$/);
      }
      const ids = async (extra) => (await allPages(`${q}&${extra}`)).filter((e) => e.method === "tools/call").map((e) => e.id).sort();
      const where = (f) => toolCalls.filter(f).map((e) => e.id).sort();
      assert.deepEqual(await ids(`team=${m.teamA}`), where((e) => e.principal_id === m.agentA));
      assert.equal((await ids(`team=${m.teamA}`)).length, 3);
      assert.deepEqual(await ids(`team=${m.teamB}`), where((e) => e.principal_id === m.agentB));
      assert.deepEqual(await ids(`principal=${m.agentB}`), await ids(`team=${m.teamB}`));
      const outcome = async (o) => (await allPages(`${q}&outcome=${o}`)).filter((e) => e.method === "tools/call");
      assert.deepEqual((await outcome("denied")).map((e) => [e.principal_id, e.tool]), [[m.agentB, "slow"]]);
      assert.deepEqual((await outcome("tool_error")).map((e) => [e.principal_id, e.server]), [[m.agentA, "aud-py"]]);
      assert.deepEqual((await outcome("upstream_error")).map((e) => [e.principal_id, e.server]), [[m.agentA, "aud-gone"]]);
      assert.equal((await outcome("ok")).length, 2);
      assert.deepEqual(await ids("server=aud-gone"), where((e) => e.server === "aud-gone"));
      assert.equal((await ids("tool=slow")).length, 1);
      // The agents' keys are in no record; the chain verifies.
      const text = JSON.stringify(await allPages(q));
      for (const k of [m.keyA, m.keyB]) assert.ok(!text.includes(k), "an agent's key leaked into the audit trail");
      assert.equal(ok(await gw.admin("GET", `/admin/v1/audit/verify?org=${m.org}`), 200).ok, true);
    } finally {
      await down?.stop();
    }
  });
});
