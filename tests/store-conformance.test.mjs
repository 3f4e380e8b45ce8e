// The store conformance suite (src/store/conformance/) against the real D1 and KV bindings and
// the counters and approvals Durable Objects: the same checks `cargo test` runs against the
// memory backends, run inside the Worker under Miniflare on fresh storage with every migration
// applied, so the backends cannot drift apart.
//
// The suite's route exists only in the `store-conformance` build, which this file builds into
// build-conformance/ (never build/) when it is missing or older than the sources;
// scripts/test.sh builds it before the integration tests. Each check is reported as a subtest.

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_TOKEN, BUILD, CONFORMANCE_BUILD, ensureConformanceBuild as ensureBuilt, startGateway } from "./harness.mjs";

const ROUTE = "/__store_conformance";

const post = (gw, path, token) =>
  gw.fetch(path, { method: "POST", headers: token ? { authorization: `Bearer ${token}` } : {} });

test("store conformance suite on D1, KV and Durable Objects", async (t) => {
  ensureBuilt();
  const gw = await startGateway({ build: CONFORMANCE_BUILD });
  t.after(() => gw.stop());

  const res = await post(gw, ROUTE, ADMIN_TOKEN);
  assert.equal(res.status, 200, await res.clone().text());
  const { checks } = await res.json();
  assert.ok(Array.isArray(checks) && checks.length > 0, "the route reports checks");
  assert.equal(new Set(checks.map((c) => c.name)).size, checks.length, "check names are unique");
  for (const c of checks) {
    await t.test(c.name, () => assert.ok(c.passed, c.detail));
  }
});

test("the suite's route is refused without the admin token and absent from normal builds", async () => {
  ensureBuilt();
  const gw = await startGateway({ build: CONFORMANCE_BUILD });
  try {
    for (const token of [undefined, "not-the-admin-token", `${ADMIN_TOKEN}x`]) {
      const r = await post(gw, ROUTE, token);
      assert.equal(r.status, 404, `token ${token}`);
      await r.body?.cancel();
    }
    const get = await gw.fetch(ROUTE, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(get.status, 404, "GET");
    await get.body?.cancel();
  } finally {
    await gw.stop();
  }
  if (!existsSync(join(BUILD, "index_bg.wasm"))) return; // no normal build here to look at
  const normal = await startGateway();
  try {
    const r = await post(normal, ROUTE, ADMIN_TOKEN);
    assert.equal(r.status, 404, "the normal build must not serve the suite");
    await r.body?.cancel();
  } finally {
    await normal.stop();
  }
});
