// The web console in a real browser: Debian's headless Chromium driven by playwright-core against
// the built Worker under Miniflare (pages from Workers Static Assets, the admin API with the
// session cookie), a real Python MCP upstream (variants `policy` and `poisoned`) and the real
// OpenID provider of tests/idp. Sign-in by pasted key and through the IdP (refused without an
// admin role), the registry with seeded servers and usage, approving a quarantined tool and a
// held call (the agent's retry then succeeds), revoking a key (the agent's next call fails), a
// viewer without write controls whose forged write is 403, CSRF refusals, an axe-core pass on
// every view, and a screenshot of each view in test-artifacts/console/.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { ROOT, ADMIN_TOKEN, browse, expectStatus, final, mcpPost, requestAs, startGateway, startOidcProvider, startPyServer } from "./harness.mjs";

const ok = expectStatus;
const ARTIFACTS = join(ROOT, "test-artifacts", "console");
const AXE = readFileSync(join(ROOT, "node_modules/axe-core/axe.min.js"), "utf8");
const CHROMIUM = "/usr/bin/chromium";
/** How long the audit trail may take to show calls (queue batch, consumer, D1). */
const AUDIT_WAIT_MS = 30_000;

let gw, py, op, browser;
const ids = {};

const as = (token, method, path, body, headers) => requestAs(gw, token, method, path, body, headers);
const rpc = (id, method, params) => ({ jsonrpc: "2.0", id, method, params });
const callTool = async (key, tool, args) =>
  final(await mcpPost(gw, "/mcp/crm", rpc(1, "tools/call", { name: tool, arguments: args }), { key, modern: true }));

/** A fresh browser context (own cookies), signed in with `key` through the key-paste form. */
async function signedIn(key) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => process.stderr.write(`[page error] ${e.message}\n`));
  await page.goto(`${gw.url}/console/`);
  await page.getByLabel("Admin key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Console views" }).waitFor();
  return { context, page };
}

/** axe-core on the page as it is: no serious or critical violation. */
async function axe(page, view) {
  // Evaluated through the DevTools protocol, which the page's CSP does not govern.
  await page.evaluate(AXE);
  const result = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`),
    [],
    `accessibility violations on ${view}`,
  );
}

async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Opens a view and waits for its heading. */
async function open(page, hash, heading) {
  await page.goto(`${gw.url}/console/${hash}`);
  await page.getByRole("heading", { level: 1, name: heading }).waitFor();
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  [gw, py] = await Promise.all([startGateway(), startPyServer({ variants: ["policy", "poisoned"] })]);
  op = await startOidcProvider({ loginRedirect: `${gw.url}/oauth/callback` });
  // Two servers on one upstream: `crm` is used, `archive` sits idle.
  ok(await gw.admin("POST", "/admin/v1/servers", { slug: "crm", name: "CRM", url: py.url }));
  ok(await gw.admin("POST", "/admin/v1/servers", { slug: "archive", name: "Archive", url: py.url }));
  ok(
    await gw.admin("POST", "/admin/v1/identity-providers", {
      org_id: "org_default",
      issuer: op.issuer,
      audiences: ["https://gateway.test/mcp"],
      login_client_id: "gateway-login",
    }),
  );
  ids.viewer = ok(await gw.admin("POST", "/admin/v1/users", { name: "Vera Viewer", parent_id: "org_default" })).id;
  ok(await gw.admin("POST", "/admin/v1/roles", { principal_id: ids.viewer, role: "viewer", scope_id: "org_default" }));
  ids.viewerKey = ok(await gw.admin("POST", "/admin/v1/api-keys", { name: "viewer", principal_id: ids.viewer })).key;
  ids.agentKey = ok(await gw.admin("POST", "/admin/v1/api-keys", { name: "seed-agent" })).key;
  // Seeded usage: calls that reach the audit trail, and so the registry's and usage's figures.
  for (let i = 0; i < 3; i++) assert.ok((await callTool(ids.agentKey, "lookup_contact", { name: "Ada" })).result);
  const deadline = Date.now() + AUDIT_WAIT_MS;
  for (;;) {
    const crm = ok(await gw.admin("GET", "/admin/v1/servers"), 200).servers.find((s) => s.slug === "crm");
    if (crm.calls_7d >= 3) break;
    if (Date.now() > deadline) assert.fail(`seeded calls not in the audit trail: ${JSON.stringify(crm)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  // launch() gives every run a fresh temporary profile (user-data-dir). Without the
  // background-networking flags Chromium's own connections are refused on a closed network.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
  await Promise.all([gw?.stop(), py?.stop(), op?.stop()]);
});

describe("serving", () => {
  test("pages come from static assets with CSP and anti-framing headers; /mcp and the admin API still reach the Worker", async () => {
    for (const path of ["/console/", "/console/app.js", "/console/console.css"]) {
      const res = await gw.fetch(path);
      assert.equal(res.status, 200, path);
      const csp = res.headers.get("content-security-policy") ?? "";
      assert.match(csp, /script-src 'self'/, path);
      assert.match(csp, /frame-ancestors 'none'/, path);
      assert.equal(res.headers.get("x-frame-options"), "DENY", path);
      await res.text();
    }
    const session = await gw.fetch("/console/api/session");
    assert.equal(session.status, 401);
    assert.deepEqual(
      { signed_in: false, key_paste: true },
      (({ signed_in, key_paste }) => ({ signed_in, key_paste }))(await session.json()),
    );
    assert.match(session.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
    assert.equal((await as(ADMIN_TOKEN, "GET", "/admin/v1/servers")).status, 200);
    assert.equal((await callTool(ids.agentKey, "lookup_contact", { name: "Bo" })).result.isError, false);
  });
});

describe("as an admin", () => {
  test("signs in with the bootstrap key; the registry shows the seeded servers, their use and the idle one", async () => {
    const { context, page } = await signedIn(ADMIN_TOKEN);
    try {
      const cookies = await context.cookies();
      const c = cookies.find((x) => x.name === "__Host-mcpgw_console");
      assert.ok(c, "session cookie set");
      assert.equal(c.httpOnly, true);
      assert.equal(c.secure, true);
      assert.equal(c.sameSite, "Strict");
      assert.equal(c.path, "/");
      await page.getByRole("heading", { level: 1, name: "Registry" }).waitFor();
      const crm = page.getByRole("row").filter({ hasText: "crm" }).first();
      await crm.waitFor();
      assert.match(await crm.innerText(), /quarantined/, "the poisoned tools are counted");
      assert.doesNotMatch(await crm.innerText(), /idle/);
      const archive = page.getByRole("row").filter({ hasText: "archive" });
      assert.match(await archive.innerText(), /idle/);
      assert.ok(await page.getByRole("button", { name: "Sync crm" }).isVisible(), "writers see Sync");
      await axe(page, "registry");
      await shot(page, "registry");
    } finally {
      await context.close();
    }
  });

  test("approves a quarantined tool from its diff beside the approved definition", async () => {
    // A rug pull: `echo` is approved at registration, then its description changes upstream.
    let up = await startPyServer();
    const { context, page } = await signedIn(ADMIN_TOKEN);
    try {
      ok(await gw.admin("POST", "/admin/v1/servers", { slug: "files", name: "Files", url: up.url }));
      const port = up.port;
      await up.stop();
      up = await startPyServer({ port, variants: ["changed"] });
      ok(await gw.admin("POST", "/admin/v1/servers/files/sync"), 200);
      await open(page, "#/servers/files", "Files");
      const card = page.getByRole("region", { name: "Quarantined tool echo" });
      await card.waitFor();
      const text = await card.innerText();
      // (The changed description is itself a poisoning, which the reason names first.)
      assert.match(text, /Why it is held: (tool poisoning|definition changed)/);
      assert.match(text, /Approved definition/);
      assert.match(text, /New definition \(quarantined\)/);
      assert.ok((await card.locator(".line.del").count()) > 0 && (await card.locator(".line.add").count()) > 0, "the changed lines are marked");
      await axe(page, "server detail");
      await shot(page, "server-detail");
      await card.getByRole("button", { name: "Approve echo" }).click();
      await page.getByText("echo approved").waitFor();
      const tools = ok(await gw.admin("GET", "/admin/v1/servers/files/tools"), 200).tools;
      assert.equal(tools.find((t) => t.name === "echo").status, "active");
      // The poisoned tools of another server are shown with their reason, never approved before.
      await open(page, "#/servers/crm", "CRM");
      const poisoned = page.getByRole("region", { name: "Quarantined tool add_notes" });
      assert.match(await poisoned.innerText(), /tool poisoning/);
      assert.match(await poisoned.innerText(), /Never approved/);
    } finally {
      await context.close();
      await up.stop();
      ok(await gw.admin("DELETE", "/admin/v1/servers/files"), 204);
    }
  });

  test("approves a held call: the agent's retry goes through", async () => {
    const policy = ok(
      await gw.admin("POST", "/admin/v1/policies", {
        name: "hold-deletes",
        scope: { server: "crm" },
        mode: "enforce",
        rules: [{ kind: "block", when: { tool: "delete_*" }, action: "require_approval" }],
      }),
    );
    const { context, page } = await signedIn(ADMIN_TOKEN);
    try {
      const held = await callTool(ids.agentKey, "delete_file", { path: "/tmp/old" });
      assert.equal(held.error?.code, -31003, JSON.stringify(held));
      const id = held.error.data.approval_id;
      await open(page, "#/approvals", "Approvals");
      const row = page.getByRole("row").filter({ hasText: "delete_file" }).first();
      await row.waitFor();
      await axe(page, "approvals");
      await shot(page, "approvals");
      await row.getByRole("button", { name: /^Approve the call of delete_file/ }).click();
      await page.getByText("approved: the agent's retry will go through").waitFor();
      assert.equal(ok(await gw.admin("GET", `/admin/v1/approvals/${id}`), 200).status, "approved");
      const retry = await callTool(ids.agentKey, "delete_file", { path: "/tmp/old" });
      assert.ok(retry.result && !retry.result.isError, JSON.stringify(retry));
    } finally {
      await context.close();
      ok(await gw.admin("DELETE", `/admin/v1/policies/${policy.id}`), 204);
    }
  });

  test("issues a key (shown once) and revokes another: the agent's next call fails", async () => {
    const victim = ok(await gw.admin("POST", "/admin/v1/api-keys", { name: "to-revoke" }));
    assert.ok((await callTool(victim.key, "lookup_contact", { name: "Cy" })).result);
    const { context, page } = await signedIn(ADMIN_TOKEN);
    try {
      await open(page, "#/keys", "API keys");
      await page.getByLabel("New key name").fill("from-the-console");
      await page.getByRole("button", { name: "Issue key" }).click();
      const shown = await page.locator("#new-key").innerText();
      assert.match(shown, /^mcpgw_/);
      assert.ok((await callTool(shown.trim(), "lookup_contact", { name: "Di" })).result, "the issued key works");
      await axe(page, "keys");
      await shot(page, "keys");
      await page.getByRole("button", { name: "Revoke key to-revoke" }).click();
      await page.getByText("Key to-revoke revoked").waitFor();
      const refused = await mcpPost(gw, "/mcp/crm", rpc(1, "tools/call", { name: "lookup_contact", arguments: { name: "Ed" } }), {
        key: victim.key,
        modern: true,
      });
      assert.equal(refused.status, 401, refused.text);
      await page.reload();
      await page.getByRole("heading", { level: 1, name: "API keys" }).waitFor();
      assert.equal(await page.locator("#new-key").count(), 0, "a key is shown only once");
    } finally {
      await context.close();
    }
  });

  test("usage, audit, access and policies views render their data", async () => {
    const { context, page } = await signedIn(ADMIN_TOKEN);
    try {
      await open(page, "#/usage", "Usage");
      await page.getByRole("figure", { name: "Calls per day" }).waitFor();
      assert.match(await page.getByRole("table").innerText(), /crm/);
      await axe(page, "usage");
      await shot(page, "usage");

      await open(page, "#/audit", "Audit trail");
      await page.getByText(/Chain verified/).waitFor();
      const traceLink = page.getByRole("link", { name: /…$/ }).first();
      await traceLink.waitFor();
      await axe(page, "audit");
      await shot(page, "audit");
      await traceLink.click();
      await page.waitForFunction(() => document.getElementById("f-trace_id")?.value.length === 32);
      const rows = await page.getByRole("row").count();
      assert.ok(rows >= 2, "the trace's own records are listed");

      await open(page, "#/access", "Access");
      await page.getByLabel("Server and tool").selectOption({ label: "crm / lookup_contact" });
      await page.getByRole("button", { name: "Show who" }).click();
      await page.getByRole("heading", { name: "Who can use crm / lookup_contact" }).waitFor();
      assert.ok(await page.getByRole("link", { name: "agt_default" }).isVisible(), "the default agent's grant reaches it");
      await page.getByLabel("Agent or user").selectOption("agt_default");
      await page.getByRole("button", { name: "Show access" }).click();
      await page.getByRole("heading", { name: "What agt_default can use" }).waitFor();
      assert.match(await page.getByRole("table").innerText(), /crm[\s\S]*lookup_contact/);
      await axe(page, "access");
      await shot(page, "access");

      const p = ok(
        await gw.admin("POST", "/admin/v1/policies", {
          name: "watch-notes",
          scope: { server: "crm" },
          mode: "monitor",
          rules: [{ kind: "guardrail", on: ["arguments"], detect: ["email"], action: "redact" }],
        }),
      );
      try {
        await open(page, "#/policies", "Policies");
        await page.getByRole("button", { name: "Switch to enforce: watch-notes" }).click();
        await page.getByText("watch-notes now in enforce mode").waitFor();
        assert.equal(ok(await gw.admin("GET", `/admin/v1/policies/${p.id}`), 200).mode, "enforce");
        // The dry run: evaluated, not called.
        await page.getByLabel("Principal id").fill("agt_default");
        await page.getByLabel("Server").fill("crm");
        await page.getByLabel("Tool").fill("store_note");
        await page.getByLabel("Arguments (JSON)").fill('{"text": "mail ada@example.com"}');
        await page.getByRole("button", { name: "Evaluate" }).click();
        await page.getByRole("heading", { name: "Outcome: proceed" }).waitFor();
        assert.doesNotMatch(await page.locator("pre.json").innerText(), /ada@example\.com/, "the guardrail's redaction is shown");
        await axe(page, "policies");
        await shot(page, "policies");
      } finally {
        ok(await gw.admin("DELETE", `/admin/v1/policies/${p.id}`), 204);
      }
    } finally {
      await context.close();
    }
  });

  test("CSRF: a write with the cookie but without the token, or from another origin, is refused", async () => {
    const { context, page } = await signedIn(ADMIN_TOKEN);
    try {
      const noToken = await page.evaluate(async () => {
        const r = await fetch("/admin/v1/api-keys", { method: "POST", headers: { "content-type": "application/json" }, body: '{"name":"csrf"}' });
        return r.status;
      });
      assert.equal(noToken, 403);
      const withToken = await page.evaluate(async () => {
        const { csrf_token } = await (await fetch("/console/api/session")).json();
        const r = await fetch("/admin/v1/api-keys", {
          method: "POST",
          headers: { "content-type": "application/json", "x-csrf-token": csrf_token },
          body: '{"name":"csrf-ok"}',
        });
        return r.status;
      });
      assert.equal(withToken, 201, "the same write with the token passes");
      // Another site replaying the cookie and even the token: its Origin gives it away.
      const cookie = (await context.cookies()).find((c) => c.name === "__Host-mcpgw_console");
      const token = await page.evaluate(async () => (await (await fetch("/console/api/session")).json()).csrf_token);
      const cross = await as("", "POST", "/admin/v1/api-keys", { name: "x" }, {
        cookie: `${cookie.name}=${cookie.value}`,
        "x-csrf-token": token,
        origin: "https://evil.example",
      });
      assert.equal(cross.status, 403, cross.text);
      // Reads need no token; a bearer caller is unaffected.
      assert.equal((await as("", "GET", "/admin/v1/servers", undefined, { cookie: `${cookie.name}=${cookie.value}` })).status, 200);
      // Signing out ends the session server-side: the old cookie no longer reads.
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.getByRole("heading", { name: "Sign in to the console" }).waitFor();
      await axe(page, "sign-in");
      await shot(page, "sign-in");
      assert.equal((await as("", "GET", "/admin/v1/servers", undefined, { cookie: `${cookie.name}=${cookie.value}` })).status, 401);
    } finally {
      await context.close();
    }
  });
});

describe("as a viewer", () => {
  test("sees no write controls, and a forged write is 403", async () => {
    const { context, page } = await signedIn(ids.viewerKey);
    try {
      await page.getByRole("row").filter({ hasText: "crm" }).first().waitFor();
      assert.equal(await page.getByRole("button", { name: /^Sync/ }).count(), 0);
      await open(page, "#/servers/archive", "Archive");
      await page.getByRole("heading", { name: /^Quarantined tools/ }).waitFor();
      assert.equal(await page.getByRole("button", { name: /^Approve/ }).count(), 0);
      await axe(page, "server detail as a viewer");
      await shot(page, "viewer-server-detail");
      await open(page, "#/keys", "API keys");
      assert.equal(await page.getByRole("button", { name: /Issue key|Revoke/ }).count(), 0);
      await open(page, "#/policies", "Policies");
      assert.equal(await page.getByRole("button", { name: /Switch|Evaluate/ }).count(), 0);
      const forged = await page.evaluate(async () => {
        const { csrf_token } = await (await fetch("/console/api/session")).json();
        const r = await fetch("/admin/v1/servers/archive/tools/weather/approve", { method: "POST", headers: { "x-csrf-token": csrf_token } });
        return r.status;
      });
      assert.equal(forged, 403);
    } finally {
      await context.close();
    }
  });
});

describe("sign-in through the organization's identity provider", () => {
  test("a user without an admin role is refused; with one, signed in", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    /** Through the console's form to the IdP, its login and consent pages, and back. */
    const done = page.getByRole("heading", { name: "No admin role" }).or(page.getByRole("navigation", { name: "Console views" }));
    const login = async () => {
      await page.goto(`${gw.url}/console/`);
      await page.getByLabel("Organization id").fill("org_default");
      await page.getByRole("button", { name: "Continue" }).click();
      // The IdP may answer at once (a second sign-in, consent given): poll for where we are.
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        const u = page.url();
        if (u.startsWith(op.issuer) && u.includes("/interaction/")) {
          const form = page.locator('input[name="login"]');
          if (await form.count()) {
            await form.fill("olga");
            await page.locator('input[name="password"]').fill("x");
          }
          await page.locator('button[type="submit"]').first().click();
          await page.waitForURL((x) => x.toString() !== u, { timeout: 10_000 }).catch(() => {});
          continue;
        }
        if (await done.isVisible().catch(() => false)) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.fail(`the sign-in did not come back to the console: ${page.url()}`);
    };
    try {
      await login();
      await page.getByRole("heading", { name: "No admin role" }).waitFor();
      const users = ok(await gw.admin("GET", "/admin/v1/users?parent_id=org_default"), 200);
      const olga = (users.users ?? users.entities ?? users.items).find((u) => u.email === "olga@acme.test");
      assert.ok(olga, "the user was provisioned at login");
      ok(await gw.admin("POST", "/admin/v1/roles", { principal_id: olga.id, role: "org_admin", scope_id: "org_default" }));
      await login();
      await page.getByRole("navigation", { name: "Console views" }).waitFor();
      assert.match(await page.locator("#who").innerText(), /olga@acme\.test/);
      assert.match(await page.locator("#who").innerText(), /org admin of org_default/);
      await page.getByRole("row").filter({ hasText: "crm" }).first().waitFor();
    } finally {
      await context.close();
    }
  });

  test("a sign-in finished in another browser than the one that started it is refused (login CSRF)", async () => {
    const start = await gw.fetch("/console/login?org=org_default", { redirect: "manual" });
    assert.equal(start.status, 302);
    const binding = start.headers.getSetCookie().find((c) => c.startsWith("__Host-mcpgw_login="));
    assert.match(binding, /HttpOnly; Secure; SameSite=Lax; Path=\//);
    // The IdP's login, up to the redirect back to the gateway (not followed).
    const callback = await browse(start.headers.get("location"), `${gw.url}/oauth/callback`, "mallory");
    const res = await gw.fetch(callback.slice(gw.url.length), { redirect: "manual" });
    assert.equal(res.status, 403);
    assert.match(await res.text(), /not started in this browser/);
    assert.ok(!res.headers.getSetCookie().some((c) => c.startsWith("__Host-mcpgw_console=")), "no session");
  });
});
