// Policies end to end (docs/policies.md): the built gateway under Miniflare in front of the real
// Python SDK upstream (variant `policy`: tools with declared annotations), driven by raw requests
// and by real SDK clients in both eras, on /mcp/{slug}, /mcp and a virtual server. Guardrails
// rewrite arguments before the upstream sees them (the upstream's answer says what it received)
// and results before the client does; block rules by annotation and argument; monitor mode;
// the dry run; human approval end to end; an exact rate limit under 50 concurrent calls; every
// decision in the call's audit event, never the matched text. Each test creates the policies it
// needs and deletes them, so tests do not depend on each other's order.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { final, mcpPost, runClientScript, startGateway, startPyServer, requestAs, expectStatus } from "./harness.mjs";

const POLL_MS = 60_000;
let gw, py, key, acme;
const ids = {};

const rpc = (id, method, params = {}) => ({ jsonrpc: "2.0", id, method, params });

const as = (token, method, path, body) => requestAs(gw, token, method, path, body);

const ok = expectStatus;

/** Creates a policy (as the bootstrap admin unless `token`), runs `fn(policy)`, deletes it. */
async function withPolicy(doc, fn, token = gw.adminToken) {
  const p = ok(await as(token, "POST", "/admin/v1/policies", doc));
  try {
    return await fn(p);
  } finally {
    ok(await as(token, "DELETE", `/admin/v1/policies/${p.id}`), 204);
  }
}

const call = async (path, tool, args, k = key) =>
  final(await mcpPost(gw, path, rpc(7, "tools/call", { name: tool, arguments: args }), { key: k, modern: true }));
const textOf = (r) => (r.result?.content ?? []).map((c) => c.text).join("");

/** Polls the audit trail until an event matching `pred` appears. */
async function auditEvent(query, pred) {
  const deadline = Date.now() + POLL_MS;
  for (;;) {
    const r = await as(gw.adminToken, "GET", `/admin/v1/audit?${query}&limit=500`);
    const found = (r.body?.events ?? []).find(pred);
    if (found) return found;
    if (Date.now() > deadline) assert.fail(`no audit event for ${query} within ${POLL_MS} ms: ${r.text.slice(0, 2000)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

before(async () => {
  [gw, py] = await Promise.all([startGateway(), startPyServer({ variants: ["policy"] })]);
  ok(await gw.admin("POST", "/admin/v1/servers", { slug: "crm", name: "CRM", url: py.url }));
  ok(
    await gw.admin("POST", "/admin/v1/virtual-servers", {
      slug: "notes",
      name: "Notes",
      tools: [{ server: "crm", tool: "store_note", name: "note" }],
    }),
  );
  key = ok(await gw.admin("POST", "/admin/v1/api-keys", { name: "agent" })).key;
  // A second organization with a team, two users in and out of it, and its own admin.
  acme = ok(await gw.admin("POST", "/admin/v1/orgs", { name: "Acme" })).id;
  const ws = ok(await gw.admin("POST", "/admin/v1/workspaces", { name: "Ops", parent_id: acme })).id;
  ids.team = ok(await gw.admin("POST", "/admin/v1/teams", { name: "SRE", parent_id: ws })).id;
  ids.alice = ok(await gw.admin("POST", "/admin/v1/users", { name: "Alice", parent_id: acme })).id;
  ids.bob = ok(await gw.admin("POST", "/admin/v1/users", { name: "Bob", parent_id: acme })).id;
  ok(await gw.admin("POST", `/admin/v1/teams/${ids.team}/members`, { principal_id: ids.alice }), 204);
  ok(await gw.admin("POST", "/admin/v1/grants", { subject_kind: "org", subject_id: acme, resource: "crm", effect: "allow" }));
  ids.aliceKey = ok(await gw.admin("POST", "/admin/v1/api-keys", { name: "alice", principal_id: ids.alice })).key;
  ids.bobKey = ok(await gw.admin("POST", "/admin/v1/api-keys", { name: "bob", principal_id: ids.bob })).key;
  ids.acmeAdmin = ok(await gw.admin("POST", "/admin/v1/users", { name: "Acme admin", parent_id: acme })).id;
  ok(await gw.admin("POST", "/admin/v1/roles", { principal_id: ids.acmeAdmin, role: "org_admin", scope_id: acme }));
  ids.acmeAdminKey = ok(await gw.admin("POST", "/admin/v1/api-keys", { name: "acme-admin", principal_id: ids.acmeAdmin })).key;
});
after(() => Promise.all([gw?.stop(), py?.stop()]));

const NO_PII = {
  name: "no-pii",
  scope: { server: "crm" },
  mode: "enforce",
  rules: [{ kind: "guardrail", on: ["arguments", "results"], detect: ["email", "credit_card"], action: "redact" }],
};

describe("the admin contract", () => {
  test("the issue's four example documents are accepted exactly as written and read back", async () => {
    const docs = [
      NO_PII,
      { name: "no-open-world", scope: {}, mode: "enforce", rules: [{ kind: "block", when: { annotation: { openWorldHint: true } }, action: "deny" }] },
      {
        name: "careful-deletes",
        scope: { subject: { kind: "team", id: "team_x" } },
        mode: "enforce",
        rules: [{ kind: "block", when: { any: [{ tool: "delete_*" }, { arg: "/path", matches: "^/etc/" }] }, action: "require_approval" }],
      },
      { name: "slow-down", scope: { server: "github", tool: "create_*" }, mode: "enforce", rules: [{ kind: "rate_limit", per: "principal", limit: 10, window_s: 60 }] },
    ];
    for (const doc of docs) {
      await withPolicy(doc, async (p) => {
        assert.match(p.id, /^pol_/);
        assert.equal(p.org, "org_default");
        for (const k of ["name", "scope", "mode", "rules"]) assert.deepEqual(p[k], doc[k], `${doc.name}.${k}`);
        const read = ok(await as(gw.adminToken, "GET", `/admin/v1/policies/${p.id}`), 200);
        assert.deepEqual({ ...read }, { ...p });
        const listed = ok(await as(gw.adminToken, "GET", "/admin/v1/policies?org=org_default"), 200).policies;
        assert.ok(listed.some((x) => x.id === p.id));
      });
    }
  });

  test("bad documents are 422 problem documents naming the offending value; duplicates 409", async () => {
    const bad = [
      [{ ...NO_PII, rules: [{ ...NO_PII.rules[0], detect: ["email", "foo"] }] }, /rules\[0\]\.detect\[1\]/],
      [{ ...NO_PII, mode: "sometimes" }, /mode/],
      [{ ...NO_PII, rules: [{ kind: "guardrail", on: ["arguments"], patterns: ["(unclosed"], action: "redact" }] }, /rules\[0\]\.patterns\[0\]/],
      // Unicode property classes are not compiled into the Worker (docs/policies.md, *Regex dialect*).
      [{ ...NO_PII, rules: [{ kind: "guardrail", on: ["arguments"], patterns: ["\\p{Greek}+"], action: "redact" }] }, /rules\[0\]\.patterns\[0\]: invalid regex: Unicode property not found/],
      [{ ...NO_PII, rules: [{ kind: "rate_limit", per: "principal", limit: 0, window_s: 60 }] }, /rules\[0\]\.limit/],
      [{ ...NO_PII, surprise: true }, /surprise/],
    ];
    for (const [doc, path] of bad) {
      const r = await as(gw.adminToken, "POST", "/admin/v1/policies", doc);
      assert.equal(r.status, 422, r.text);
      assert.match(r.headers.get("content-type"), /application\/problem\+json/);
      assert.match(r.body.detail, path);
    }
    await withPolicy(NO_PII, async () => {
      assert.equal((await as(gw.adminToken, "POST", "/admin/v1/policies", NO_PII)).status, 409);
    });
  });

  test("an organization's admin sees and changes only its own policies", async () => {
    await withPolicy(NO_PII, async (mine) => {
      assert.equal(mine.org, "org_default");
      const r = await as(ids.acmeAdminKey, "GET", `/admin/v1/policies/${mine.id}`);
      assert.equal(r.status, 404, "another org's policy answers as missing");
      assert.equal((await as(ids.acmeAdminKey, "PATCH", `/admin/v1/policies/${mine.id}`, { mode: "monitor" })).status, 404);
      assert.equal((await as(ids.acmeAdminKey, "DELETE", `/admin/v1/policies/${mine.id}`)).status, 404);
      assert.ok(!ok(await as(ids.acmeAdminKey, "GET", "/admin/v1/policies"), 200).policies.some((p) => p.id === mine.id));
      // Naming another org is refused like a missing one.
      assert.equal((await as(ids.acmeAdminKey, "POST", "/admin/v1/policies", { ...NO_PII, org: "org_default" })).status, 422);
      await withPolicy(
        { ...NO_PII, name: "acme-pii" },
        async (theirs) => {
          assert.equal(theirs.org, acme, "an org admin's policy belongs to its org");
          const patched = ok(await as(ids.acmeAdminKey, "PATCH", `/admin/v1/policies/${theirs.id}`, { mode: "monitor" }), 200);
          assert.equal(patched.mode, "monitor");
          assert.equal(patched.created_at, theirs.created_at);
        },
        ids.acmeAdminKey,
      );
    });
  });
});

describe("guardrails", () => {
  test("PII is redacted in arguments before the upstream sees it and in results before the client does", async () => {
    await withPolicy(NO_PII, async (p) => {
      for (const [path, tool] of [
        ["/mcp/crm", "store_note"],
        ["/mcp", "crm__store_note"],
        ["/mcp/v/notes", "note"],
      ]) {
        const r = await call(path, tool, { text: "mail alice@example.com, card 4111-1111-1111-1111" });
        assert.equal(textOf(r), "stored: mail [EMAIL], card [CREDIT_CARD]", `${path}: ${JSON.stringify(r)}`);
      }
      const r = await call("/mcp/crm", "lookup_contact", { name: "Bob" });
      assert.equal(textOf(r), "Bob: [EMAIL], card [CREDIT_CARD]");
      assert.ok(!JSON.stringify(r).includes("example.com"), `structured content too: ${JSON.stringify(r)}`);
      // A card number that fails the Luhn check is no card number.
      assert.equal(textOf(await call("/mcp/crm", "store_note", { text: "order 4111 1111 1111 1112" })), "stored: order 4111 1111 1111 1112");
      // Recorded in the call's event: policy, rule, action, detector, count — never the text.
      const ev = await auditEvent("org=org_default&tool=lookup_contact", (e) => e.decisions?.some((d) => d.policy_id === p.id));
      const d = ev.decisions.find((x) => x.detector === "email");
      assert.equal(d.action, "redact");
      assert.equal(d.rule, "rules[0]");
      // Once in the text content, once in the structured content.
      assert.equal(d.count, 2);
      assert.ok(!JSON.stringify(ev).includes("bob.smith@example.com"), "the matched text is never recorded");
    });
  });

  test("real SDK clients in both eras get the redacted answers", async () => {
    await withPolicy(NO_PII, async () => {
      for (const [sdk, era] of [
        ["v1", "legacy"],
        ["v2", "legacy"],
        ["v2", "modern"],
      ]) {
        const out = await runClientScript("ts_call.mjs", [
          "--url", `${gw.url}/mcp/crm`, "--token", key, "--tool", "store_note",
          "--args", JSON.stringify({ text: "write to carol@example.org" }), "--sdk", sdk, "--era", era,
        ]);
        assert.equal(out.text, "stored: write to [EMAIL]", `${sdk} ${era}: ${JSON.stringify(out)}`);
      }
    });
  });

  test("hash gives a stable keyed token; block refuses; monitor mode changes nothing but records", async () => {
    const hashing = { ...NO_PII, name: "hash-pii", rules: [{ ...NO_PII.rules[0], detect: ["email"], action: "hash" }] };
    await withPolicy(hashing, async () => {
      const a = textOf(await call("/mcp/crm", "store_note", { text: "x@example.com" }));
      const b = textOf(await call("/mcp/crm", "store_note", { text: "x@example.com" }));
      const c = textOf(await call("/mcp/crm", "store_note", { text: "y@example.com" }));
      assert.match(a, /^stored: \[EMAIL:[0-9a-f]+\]$/);
      assert.equal(a, b, "same value, same token");
      assert.notEqual(a, c);
    });
    const blocking = { ...NO_PII, name: "block-secrets", rules: [{ kind: "guardrail", on: ["arguments"], detect: ["secret"], action: "block" }] };
    await withPolicy(blocking, async (p) => {
      const r = await call("/mcp/crm", "store_note", { text: "key AKIAIOSFODNN7EXAMPLE" });
      assert.equal(r.error?.code, -31001, JSON.stringify(r));
      assert.equal(r.error.data.policy_id, p.id);
      assert.equal(textOf(await call("/mcp/crm", "store_note", { text: "nothing secret" })), "stored: nothing secret");
    });
    await withPolicy({ ...NO_PII, name: "watch-pii", mode: "monitor" }, async (p) => {
      const r = await call("/mcp/crm", "lookup_contact", { name: "Mon" });
      assert.equal(textOf(r), "Mon: bob.smith@example.com, card 4111 1111 1111 1111", "monitor mode changes nothing");
      const ev = await auditEvent("org=org_default&tool=lookup_contact", (e) => e.decisions?.some((d) => d.policy_id === p.id));
      assert.ok(ev.decisions.every((d) => d.policy_id !== p.id || d.mode === "monitor"));
      assert.equal(ev.outcome, "ok");
    });
  });
});

describe("block rules", () => {
  test("by annotation: an open-world tool is refused, an absent hint takes the spec's default (open world)", async () => {
    const doc = { name: "no-open-world", scope: { server: "crm" }, mode: "enforce", rules: [{ kind: "block", when: { annotation: { openWorldHint: true } }, action: "deny" }] };
    await withPolicy(doc, async (p) => {
      const r = await call("/mcp/crm", "web_fetch", { url: "https://example.com" });
      assert.equal(r.error?.code, -31001, JSON.stringify(r));
      assert.deepEqual(r.error.data, { policy_id: p.id, rule: "rules[0]" });
      assert.equal((await call("/mcp", "crm__echo", { message: "hi" })).error?.code, -31001, "echo declares no hint: open world");
      assert.equal(textOf(await call("/mcp/crm", "lookup_contact", { name: "Zed" })).startsWith("Zed:"), true);
    });
  });

  test("by argument: a JSON-pointer condition", async () => {
    const doc = { name: "no-etc", scope: {}, mode: "enforce", rules: [{ kind: "block", when: { arg: "/path", matches: "^/etc/" }, action: "deny" }] };
    await withPolicy(doc, async () => {
      assert.equal((await call("/mcp/crm", "delete_file", { path: "/etc/passwd" })).error?.code, -31001);
      assert.equal(textOf(await call("/mcp/crm", "delete_file", { path: "/tmp/x" })), "deleted /tmp/x");
    });
  });

  test("policies of one organization never apply to another's callers; subject scopes pick callers", async () => {
    const doc = { name: "acme-no-deletes", scope: { subject: { kind: "team", id: ids.team } }, mode: "enforce", rules: [{ kind: "block", when: { tool: "delete_*" }, action: "deny" }] };
    await withPolicy(
      doc,
      async () => {
        assert.equal((await call("/mcp/crm", "delete_file", { path: "/a" }, ids.aliceKey)).error?.code, -31001, "alice is in the team");
        assert.equal(textOf(await call("/mcp/crm", "delete_file", { path: "/a" }, ids.bobKey)), "deleted /a", "bob is not");
        assert.equal(textOf(await call("/mcp/crm", "delete_file", { path: "/a" })), "deleted /a", "org_default is another org");
      },
      ids.acmeAdminKey,
    );
  });
});

describe("dry run", () => {
  test("answers every applicable policy's decisions without calling or counting", async () => {
    const limit = { name: "one-call", scope: { server: "crm" }, mode: "enforce", rules: [{ kind: "rate_limit", per: "principal", limit: 1, window_s: 60 }] };
    await withPolicy(NO_PII, async (pii) => {
      await withPolicy(limit, async (rl) => {
        const body = {
          principal: "agt_default",
          server: "crm",
          tool: "store_note",
          arguments: { text: "to dana@example.com" },
          result: { content: [{ type: "text", text: "card 4111 1111 1111 1111" }] },
        };
        for (let i = 0; i < 3; i++) {
          const r = ok(await as(gw.adminToken, "POST", "/admin/v1/policies/test", body), 200);
          assert.deepEqual(r.policies.sort(), [pii.id, rl.id].sort());
          assert.equal(r.call.outcome.outcome, "proceed");
          assert.equal(r.call.arguments.text, "to [EMAIL]");
          assert.equal(r.call.limits.length, 1);
          assert.equal(r.result.result.content[0].text, "card [CREDIT_CARD]");
          assert.ok(r.call.decisions.some((d) => d.policy_id === pii.id && d.detector === "email"));
        }
        // Nothing was counted: the one call the limit allows still goes through, the next not.
        assert.equal(textOf(await call("/mcp/crm", "store_note", { text: "first" })), "stored: first");
        assert.equal((await call("/mcp/crm", "store_note", { text: "second" })).error?.code, -31002);
        // A draft is evaluated beside the stored policies.
        const draft = { name: "draft", scope: {}, rules: [{ kind: "block", when: { tool: "store_*" }, action: "deny" }] };
        const r = ok(await as(gw.adminToken, "POST", "/admin/v1/policies/test", { ...body, policy: draft }), 200);
        assert.equal(r.call.outcome.outcome, "deny");
      });
    });
  });
});

describe("rate limits", () => {
  test("50 concurrent calls against a limit of 10: exactly 10 go through; counters visible", async () => {
    const doc = { name: "slow-down", scope: { server: "crm", tool: "store_*" }, mode: "enforce", rules: [{ kind: "rate_limit", per: "principal", limit: 10, window_s: 60 }] };
    await withPolicy(doc, async (p) => {
      const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => call("/mcp/crm", "store_note", { text: `n${i}` })));
      const passed = replies.filter((r) => r.result);
      const refused = replies.filter((r) => r.error?.code === -31002);
      assert.equal(passed.length, 10, JSON.stringify(replies.filter((r) => !r.result && r.error?.code !== -31002)));
      assert.equal(refused.length, 40);
      for (const r of refused) {
        assert.equal(r.error.data.policy_id, p.id);
        assert.ok(r.error.data.retry_after_ms > 0 && r.error.data.retry_after_ms <= 60_000, JSON.stringify(r.error));
      }
      // Another tool is outside the policy's scope.
      assert.ok(textOf(await call("/mcp/crm", "lookup_contact", { name: "Eve" })).startsWith("Eve:"));
      const counters = ok(await as(gw.adminToken, "GET", `/admin/v1/policies/${p.id}/counters`), 200).counters;
      assert.equal(counters.length, 1, JSON.stringify(counters));
      assert.equal(counters[0].used, 10);
      assert.equal(counters[0].remaining, 0);
    });
  });
});

describe("human approval", () => {
  test("a held call: pending, approved, proceeds once for exactly those arguments; denied stays refused", async () => {
    const doc = {
      name: "careful-deletes",
      scope: { subject: { kind: "team", id: ids.team } },
      mode: "enforce",
      rules: [{ kind: "block", when: { any: [{ tool: "delete_*" }, { arg: "/path", matches: "^/etc/" }] }, action: "require_approval" }],
    };
    await withPolicy(
      doc,
      async (p) => {
        const held = await call("/mcp/crm", "delete_file", { path: "/etc/hosts" }, ids.aliceKey);
        assert.equal(held.error?.code, -31003, JSON.stringify(held));
        const { approval_id: id, url } = held.error.data;
        assert.match(id, /^apr_/);
        assert.ok(url.endsWith(`/approvals/${id}`), url);
        // Retrying before a decision finds the same pending approval.
        assert.equal((await call("/mcp/crm", "delete_file", { path: "/etc/hosts" }, ids.aliceKey)).error.data.approval_id, id);
        const pending = ok(await as(ids.acmeAdminKey, "GET", "/admin/v1/approvals?status=pending"), 200);
        const listed = (pending.approvals ?? pending.items ?? []).find((a) => a.id === id);
        assert.ok(listed, JSON.stringify(pending));
        assert.equal(listed.policy_id, p.id);
        assert.equal(ok(await as(ids.acmeAdminKey, "GET", `/admin/v1/approvals/${id}`), 200).status, "pending");
        ok(await as(ids.acmeAdminKey, "POST", `/admin/v1/approvals/${id}/approve`), 200);
        // Other arguments are another call: held anew.
        assert.equal((await call("/mcp/crm", "delete_file", { path: "/etc/group" }, ids.aliceKey)).error?.code, -31003);
        assert.equal(textOf(await call("/mcp/crm", "delete_file", { path: "/etc/hosts" }, ids.aliceKey)), "deleted /etc/hosts");
        const again = await call("/mcp/crm", "delete_file", { path: "/etc/hosts" }, ids.aliceKey);
        assert.equal(again.error?.code, -31003, "an approval is single use");
        assert.notEqual(again.error.data.approval_id, id);
        ok(await as(ids.acmeAdminKey, "POST", `/admin/v1/approvals/${again.error.data.approval_id}/deny`), 200);
        assert.equal((await as(ids.acmeAdminKey, "POST", `/admin/v1/approvals/${again.error.data.approval_id}/approve`)).status, 409);
        const afterDeny = await call("/mcp/crm", "delete_file", { path: "/etc/hosts" }, ids.aliceKey);
        assert.equal(afterDeny.error?.code, -31003, "a denied call stays refused (held anew)");
        // Bob is not in the team: nothing held.
        assert.equal(textOf(await call("/mcp/crm", "delete_file", { path: "/etc/hosts" }, ids.bobKey)), "deleted /etc/hosts");
        const ev = await auditEvent(`org=${acme}&tool=delete_file`, (e) => e.decisions?.some((d) => d.action === "approved"));
        assert.ok(ev.decisions.some((d) => d.policy_id === p.id));
      },
      ids.acmeAdminKey,
    );
  });

  test("a legacy client that declared URL elicitation is sent to the approval page (-32042)", async () => {
    const doc = { name: "hold-all-deletes", scope: { server: "crm" }, mode: "enforce", rules: [{ kind: "block", when: { tool: "delete_*" }, action: "require_approval" }] };
    await withPolicy(doc, async () => {
      const init = await mcpPost(
        gw,
        "/mcp/crm",
        rpc(1, "initialize", {
          protocolVersion: "2025-11-25",
          capabilities: { elicitation: { url: {} } },
          clientInfo: { name: "raw", version: "1" },
        }),
        { key },
      );
      assert.equal(init.status, 200, init.text);
      const session = init.headers.get("mcp-session-id");
      const headers = { "mcp-session-id": session, "mcp-protocol-version": "2025-11-25" };
      await mcpPost(gw, "/mcp/crm", { jsonrpc: "2.0", method: "notifications/initialized" }, { key, headers });
      const r = final(await mcpPost(gw, "/mcp/crm", rpc(2, "tools/call", { name: "delete_file", arguments: { path: "/x" } }), { key, headers }));
      assert.equal(r.error?.code, -32042, JSON.stringify(r));
      const el = r.error.data.elicitations[0];
      assert.equal(el.mode, "url");
      assert.ok(el.url.includes(r.error.data.approval_id));
    });
  });
});
