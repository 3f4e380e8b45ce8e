// Human approvals through the admin API, on the real `Approvals` Durable Object under Miniflare.
// Requests are raised through the test-only route of the store-conformance build
// (POST /__store_conformance/approvals, admin token only), as a policy will raise them on a
// tool call. Two organizations, each with an org admin, an approver and a viewer: who lists and
// decides (org admins and approvers of the organization), what others get (a viewer 403,
// another organization 404 exactly as an unknown id), one decision per request (409, also for
// an expired one), no self-approval, and an approver who writes nothing else.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ADMIN_TOKEN, CONFORMANCE_BUILD, ensureConformanceBuild, startGateway, requestAs, expectStatus } from "./harness.mjs";

let gw;
const orgs = {};

const as = (key, method, path, body) => requestAs(gw, key, method, path, body);

const ok = expectStatus;

/** A pending approval request, as a policy raises it. */
async function raise(org, principal, hash, extra = {}) {
  const r = await as(ADMIN_TOKEN, "POST", "/__store_conformance/approvals", {
    binding: { org_id: org, principal_id: principal, server: "files", tool: "delete", arguments_hash: hash },
    policy_id: "pol_test",
    rule: 0,
    arguments: { path: "/tmp/x" },
    ...extra,
  });
  return ok(r, 200);
}

const problem = (r, status) => {
  assert.equal(r.status, status, r.text);
  assert.equal(r.headers.get("content-type"), "application/problem+json");
  assert.equal(r.body.status, status);
  return r.body;
};

before(async () => {
  ensureConformanceBuild();
  gw = await startGateway({ build: CONFORMANCE_BUILD });
  for (const name of ["A", "B"]) {
    const o = (orgs[name] = {});
    o.id = ok(await gw.admin("POST", "/admin/v1/orgs", { name: `Org ${name}` })).id;
    o.ws = ok(await gw.admin("POST", "/admin/v1/workspaces", { name: "ws", parent_id: o.id })).id;
    for (const role of ["org_admin", "approver", "viewer", "workspace_admin"]) {
      const user = ok(await gw.admin("POST", "/admin/v1/users", { name: role, parent_id: o.id })).id;
      const scope = role === "workspace_admin" ? o.ws : o.id;
      const assigned = ok(await gw.admin("POST", "/admin/v1/roles", { principal_id: user, role, scope_id: scope }));
      assert.equal(assigned.role, role);
      o[role] = { id: user, key: ok(await gw.admin("POST", "/admin/v1/api-keys", { name: role, principal_id: user })).key };
    }
  }
});
after(() => gw?.stop());

test("an approver lists its organization's requests, newest first, by status and page", async () => {
  const { A } = orgs;
  const first = await raise(A.id, "agt_list", "l1");
  const second = await raise(A.id, "agt_list", "l2");
  assert.equal(first.status, "pending");
  assert.equal(first.org_id, A.id);
  assert.ok(first.expires_at_ms - first.created_at_ms === 3_600_000, "pending for an hour");
  // Idempotent: the same call asks once.
  assert.equal((await raise(A.id, "agt_list", "l1")).id, first.id);

  const all = ok(await as(A.approver.key, "GET", "/admin/v1/approvals?status=pending"), 200);
  const ids = all.approvals.map((r) => r.id);
  assert.ok(ids.indexOf(second.id) < ids.indexOf(first.id) && ids.indexOf(first.id) >= 0, "newest first");
  assert.deepEqual(all.approvals.find((r) => r.id === first.id).arguments, { path: "/tmp/x" });
  const page = ok(await as(A.org_admin.key, "GET", "/admin/v1/approvals?limit=1"), 200);
  assert.equal(page.approvals.length, 1);
  assert.ok(page.next_cursor);
  const rest = ok(await as(A.org_admin.key, "GET", `/admin/v1/approvals?limit=200&cursor=${encodeURIComponent(page.next_cursor)}`), 200);
  assert.ok(!rest.approvals.some((r) => r.id === page.approvals[0].id), "the next page starts after the cursor");
  assert.equal(rest.next_cursor, null);
  problem(await as(A.approver.key, "GET", "/admin/v1/approvals?status=maybe"), 422);
  // The bootstrap admin names the organization.
  problem(await as(ADMIN_TOKEN, "GET", "/admin/v1/approvals"), 422);
  const root = ok(await as(ADMIN_TOKEN, "GET", `/admin/v1/approvals?org=${A.id}`), 200);
  assert.ok(root.approvals.some((r) => r.id === first.id));
});

test("a request is decided once: approve or deny, then 409; expired requests cannot be decided", async () => {
  const { A } = orgs;
  const r = await raise(A.id, "agt_decide", "d1");
  const approved = ok(await as(A.approver.key, "POST", `/admin/v1/approvals/${r.id}/approve`), 200);
  assert.equal(approved.status, "approved");
  assert.equal(approved.decided_by, A.approver.id);
  assert.equal(approved.expires_at_ms - approved.decided_at_ms, 15 * 60_000, "usable for 15 minutes");
  const again = problem(await as(A.org_admin.key, "POST", `/admin/v1/approvals/${r.id}/deny`), 409);
  assert.match(again.detail, /already approved/);
  problem(await as(A.approver.key, "POST", `/admin/v1/approvals/${r.id}/approve`), 409);
  assert.equal(ok(await as(A.approver.key, "GET", `/admin/v1/approvals/${r.id}`), 200).status, "approved");

  const d = await raise(A.id, "agt_decide", "d2");
  assert.equal(ok(await as(A.org_admin.key, "POST", `/admin/v1/approvals/${d.id}/deny`), 200).status, "denied");
  assert.match(problem(await as(A.approver.key, "POST", `/admin/v1/approvals/${d.id}/approve`), 409).detail, /already denied/);

  const e = await raise(A.id, "agt_decide", "d3", { ttl_ms: 1 });
  await new Promise((res) => setTimeout(res, 20));
  assert.equal(ok(await as(A.approver.key, "GET", `/admin/v1/approvals/${e.id}`), 200).status, "expired");
  assert.match(problem(await as(A.approver.key, "POST", `/admin/v1/approvals/${e.id}/approve`), 409).detail, /already expired/);
  const expired = ok(await as(A.approver.key, "GET", "/admin/v1/approvals?status=expired"), 200);
  assert.ok(expired.approvals.some((x) => x.id === e.id));

  // Two decisions at once: exactly one is taken.
  const race = await raise(A.id, "agt_decide", "d4");
  const both = await Promise.all([
    as(A.approver.key, "POST", `/admin/v1/approvals/${race.id}/approve`),
    as(A.org_admin.key, "POST", `/admin/v1/approvals/${race.id}/deny`),
  ]);
  assert.deepEqual(both.map((x) => x.status).sort(), [200, 409]);
});

test("another organization's request answers exactly as an unknown one", async () => {
  const { A, B } = orgs;
  const r = await raise(A.id, "agt_x", "x1");
  const unknown = `apr_000000000000ffffffffffffffff.${A.id}`;
  for (const key of [B.org_admin.key, B.approver.key]) {
    const theirs = problem(await as(key, "GET", `/admin/v1/approvals/${r.id}`), 404);
    const missing = problem(await as(A.approver.key, "GET", `/admin/v1/approvals/${unknown}`), 404);
    assert.equal(theirs.detail.replace(r.id, "X"), missing.detail.replace(unknown, "X"));
    problem(await as(key, "POST", `/admin/v1/approvals/${r.id}/approve`), 404);
    problem(await as(key, "POST", `/admin/v1/approvals/${r.id}/deny`), 404);
    problem(await as(key, "GET", `/admin/v1/approvals?org=${A.id}`), 404);
    const own = ok(await as(key, "GET", "/admin/v1/approvals"), 200);
    assert.ok(!own.approvals.some((x) => x.id === r.id), "B's listing holds none of A's");
  }
  problem(await as(A.approver.key, "GET", "/admin/v1/approvals/not-an-id"), 404);
  assert.equal(ok(await as(A.approver.key, "GET", `/admin/v1/approvals/${r.id}`), 200).status, "pending", "untouched");
});

test("roles: viewers and workspace admins may not; nobody approves their own request; approvers write nothing else", async () => {
  const { A } = orgs;
  const r = await raise(A.id, "agt_roles", "r1");
  for (const key of [A.viewer.key, A.workspace_admin.key]) {
    problem(await as(key, "GET", "/admin/v1/approvals"), 403);
    problem(await as(key, "GET", `/admin/v1/approvals/${r.id}`), 403);
    problem(await as(key, "POST", `/admin/v1/approvals/${r.id}/approve`), 403);
  }
  problem(await as(undefined, "GET", "/admin/v1/approvals"), 401);
  problem(await as("mcpgw_not-a-key", "POST", `/admin/v1/approvals/${r.id}/approve`), 401);
  assert.equal(ok(await as(A.approver.key, "GET", `/admin/v1/approvals/${r.id}`), 200).status, "pending");

  const own = await raise(A.id, A.approver.id, "r2");
  assert.match(problem(await as(A.approver.key, "POST", `/admin/v1/approvals/${own.id}/approve`), 403).detail, /own/);
  assert.equal(ok(await as(A.org_admin.key, "POST", `/admin/v1/approvals/${own.id}/approve`), 200).status, "approved");

  // An approver reads its organization as a viewer does, and changes nothing else.
  ok(await as(A.approver.key, "GET", `/admin/v1/users/${A.viewer.id}`), 200);
  problem(await as(A.approver.key, "POST", "/admin/v1/users", { name: "x", parent_id: A.id }), 403);
  problem(await as(A.approver.key, "POST", "/admin/v1/roles", { principal_id: A.approver.id, role: "org_admin", scope_id: A.id }), 403);
  problem(await as(A.approver.key, "DELETE", `/admin/v1/users/${A.viewer.id}`), 403);
  problem(await as(A.approver.key, "POST", "/admin/v1/servers", { slug: "nope", name: "n", url: "http://127.0.0.1:9/mcp" }), 403);
});

test("the test-only route refuses anyone but the admin token", async () => {
  const body = { binding: { org_id: orgs.A.id, principal_id: "p", server: "s", tool: "t", arguments_hash: "h" }, policy_id: "p", rule: 0 };
  for (const key of [undefined, orgs.A.org_admin.key]) {
    const r = await as(key, "POST", "/__store_conformance/approvals", body);
    assert.equal(r.status, 404);
  }
});
