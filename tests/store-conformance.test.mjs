// The store conformance suite (src/store/conformance/) against the real D1 and KV bindings:
// the same checks `cargo test` runs against MemoryStore, run inside the Worker under Miniflare
// on fresh storage with every migration applied, so the two backends cannot drift apart.
//
// The suite's route exists only in the `store-conformance` build, which this file builds into
// build-conformance/ (never build/) when it is missing or older than the sources;
// scripts/test.sh builds it before the integration tests. Each check is reported as a subtest.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_TOKEN, BUILD, ROOT, startGateway } from "./harness.mjs";

const CONFORMANCE_BUILD = join(ROOT, "build-conformance");
const ROUTE = "/__store_conformance";

/** Newest modification time of the files a build is made from. */
function newestSource() {
  let newest = 0;
  const visit = (p) => {
    const st = statSync(p);
    if (st.isDirectory()) for (const f of readdirSync(p)) visit(join(p, f));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of ["src", "Cargo.toml", "Cargo.lock"]) visit(join(ROOT, p));
  return newest;
}

function ensureBuilt() {
  const wasm = join(CONFORMANCE_BUILD, "index_bg.wasm");
  if (existsSync(wasm) && statSync(wasm).mtimeMs >= newestSource()) return;
  const r = spawnSync(
    "bash",
    ["scripts/build.sh", "--out-dir", "build-conformance", "--features", "store-conformance"],
    { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] },
  );
  if (r.status !== 0) throw new Error(`building the store-conformance Worker failed (${r.status ?? r.signal})`);
}

const post = (gw, path, token) =>
  gw.fetch(path, { method: "POST", headers: token ? { authorization: `Bearer ${token}` } : {} });

test("store conformance suite on D1 and KV", async (t) => {
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
