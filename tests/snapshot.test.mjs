// The isolate snapshot across isolates: two gateways (two workerd processes, so two isolates
// with two snapshots) over one persisted D1/KV directory. A change made through one is
// refused there at once and by the other within the documented bound (docs/storage.md,
// "Isolate snapshot": SNAPSHOT HARD_MS after the write was acknowledged), never later.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { final, mcpPost, startGateway, startPyServer } from "./harness.mjs";

/** src/snapshot/mod.rs HARD_MS: the staleness bound of another isolate's snapshot. */
const HARD_MS = 4000;
/** How long past the bound the test keeps looking, so a failure says "served after the bound". */
const GRACE_MS = 3000;

let dir, a, b, py;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), "gw-snapshot-"));
  py = await startPyServer();
  a = await startGateway({ persist: dir });
  b = await startGateway({ persist: dir });
  const r = await a.admin("POST", "/admin/v1/servers", { slug: "py", name: "py", url: py.url });
  assert.equal(r.status, 201, r.text);
});
after(async () => {
  await Promise.all([a?.stop(), b?.stop(), py?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const call = (gw, key) =>
  mcpPost(gw, "/mcp/py", { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: { message: "x" } } }, { key, modern: true });
const served = (r) => r.status === 200 && final(r)?.result?.content?.[0]?.text === "echo: x";

/**
 * Calls through `gw` until a call is refused. Every call that starts more than HARD_MS after
 * `changedAt` must be refused; calls before that may still be served from the old snapshot.
 */
async function refusedWithinBound(t, gw, key, changedAt, refused) {
  let stale = 0;
  while (Date.now() < changedAt + HARD_MS + GRACE_MS) {
    const started = Date.now();
    const r = await call(gw, key);
    if (refused(r)) {
      t.diagnostic(`served ${stale} time(s) from the old snapshot, refused ${Date.now() - changedAt} ms after the change`);
      return r;
    }
    stale++;
    assert.ok(served(r), `neither served nor refused: ${r.status} ${r.text}`);
    assert.ok(started <= changedAt + HARD_MS, `served ${started - changedAt} ms after the change, past the ${HARD_MS} ms bound`);
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.fail("never refused");
}

describe("two isolates over one storage", () => {
  test("both isolates share the storage (a key issued through one works through the other)", async () => {
    const k = await a.admin("POST", "/admin/v1/api-keys", { name: "shared" });
    assert.equal(k.status, 201, k.text);
    assert.ok(served(await call(a, k.body.key)));
    assert.ok(served(await call(b, k.body.key)));
  });

  test("a revoked key: refused at once where revoked, within the bound elsewhere", async (t) => {
    const k = await a.admin("POST", "/admin/v1/api-keys", { name: "to-revoke" });
    // Both isolates have the key's principal in their snapshots.
    for (let i = 0; i < 3; i++) {
      assert.ok(served(await call(a, k.body.key)));
      assert.ok(served(await call(b, k.body.key)));
    }
    const del = await a.admin("DELETE", `/admin/v1/api-keys/${k.body.id}`);
    assert.ok(del.status < 300, del.text);
    const changedAt = Date.now();
    assert.equal((await call(a, k.body.key)).status, 401, "the isolate that wrote refuses at once");
    const r = await refusedWithinBound(t, b, k.body.key, changedAt, (r) => r.status === 401);
    assert.match(r.headers.get("www-authenticate") ?? "", /Bearer/);
    assert.equal((await call(b, k.body.key)).status, 401, "and stays refused");
  });

  test("a removed grant: refused at once where removed, within the bound elsewhere", async (t) => {
    const mk = async (path, body) => {
      const r = await a.admin("POST", path, body);
      assert.equal(r.status, 201, `${path}: ${r.text}`);
      return r.body;
    };
    const org = (await mk("/admin/v1/orgs", { name: "Snap" })).id;
    const agent = (await mk("/admin/v1/agents", { name: "snap-bot", parent_id: org })).id;
    const key = (await mk("/admin/v1/api-keys", { name: "snap-bot", principal_id: agent })).key;
    assert.equal((await call(b, key)).status, 404, "no grant yet: the server does not exist for it");
    const grant = (await mk("/admin/v1/grants", { subject_kind: "agent", subject_id: agent, resource: "py", effect: "allow" })).id;
    // A new grant is a change too: the other isolate serves it within the bound.
    const grantedAt = Date.now();
    while (!served(await call(b, key))) {
      assert.ok(Date.now() <= grantedAt + HARD_MS + GRACE_MS, "the grant never reached the other isolate");
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(served(await call(a, key)));
    const del = await a.admin("DELETE", `/admin/v1/grants/${grant}`);
    assert.ok(del.status < 300, del.text);
    const changedAt = Date.now();
    assert.equal((await call(a, key)).status, 404, "the isolate that wrote refuses at once");
    await refusedWithinBound(t, b, key, changedAt, (r) => r.status === 404);
  });
});
