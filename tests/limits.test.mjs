// Rate-limit counters on the real `RateCounter` Durable Objects under Miniflare: 50 concurrent
// requests, each taking once from one counter with limit 10, get exactly 10 allowances — the
// key's object serializes them, whichever Worker invocation they arrive in — and other keys
// are not affected. Takes go through the test-only route of the store-conformance build
// (POST /__store_conformance/counters/take, admin token only).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ADMIN_TOKEN, CONFORMANCE_BUILD, ensureConformanceBuild, startGateway } from "./harness.mjs";

let gw;

before(async () => {
  ensureConformanceBuild();
  gw = await startGateway({ build: CONFORMANCE_BUILD });
});
after(() => gw?.stop());

async function take(key, limit, window = { kind: "fixed", seconds: 3600 }) {
  const r = await gw.fetch("/__store_conformance/counters/take", {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ key, limit, window }),
  });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  return JSON.parse(text);
}

test("50 concurrent takes with limit 10: exactly 10 allowed", async () => {
  for (const window of [{ kind: "fixed", seconds: 3600 }, { kind: "sliding", seconds: 3600 }, { kind: "day" }]) {
    const key = `org_lim:pol_1:0:principal:agt_${window.kind}`;
    const results = await Promise.all(Array.from({ length: 50 }, () => take(key, 10, window)));
    const allowed = results.filter((r) => r.outcome === "allowed");
    assert.equal(allowed.length, 10, `${window.kind}: ${JSON.stringify(results)}`);
    assert.deepEqual(
      allowed.map((r) => r.remaining).sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      "each allowance sees its own remainder",
    );
    for (const r of results.filter((r) => r.outcome === "refused")) {
      assert.ok(r.retry_after_ms > 0 && r.retry_after_ms <= 86_400_000, JSON.stringify(r));
    }
    // Still full afterwards; another key of the same organization is untouched.
    assert.equal((await take(key, 10, window)).outcome, "refused");
    assert.deepEqual(await take(`${key}_other`, 10, window), { outcome: "allowed", remaining: 9 });
  }
});

test("a take with a window the store refuses is an error, and counts nothing", async () => {
  const r = await gw.fetch("/__store_conformance/counters/take", {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ key: "org_lim:p:0:x:y", limit: 5000, window: { kind: "sliding", seconds: 10 } }),
  });
  assert.equal(r.status, 500);
  await r.body?.cancel();
  assert.deepEqual(await take("org_lim:p:0:x:y", 1, { kind: "sliding", seconds: 10 }), { outcome: "allowed", remaining: 0 });
});

test("the take route refuses anyone but the admin token", async () => {
  for (const auth of [{}, { authorization: "Bearer nope" }]) {
    const r = await gw.fetch("/__store_conformance/counters/take", {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ key: "k:1", limit: 1, window: { kind: "day" } }),
    });
    assert.equal(r.status, 404);
    await r.body?.cancel();
  }
});
