// The bench-only knobs (Cargo feature bench-storage-delay, src/platform/delay.rs) are absent from
// the release build in build/: no /__bench/memory route, and STORAGE_DELAY_MS delays nothing.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startGateway } from "./harness.mjs";

// Ten minutes per storage call if the delay were compiled in: the storage-reading request below
// would then outlast the test's own timeout and fail it (a hang, not a timing assertion).
const HUGE_DELAY_MS = String(10 * 60 * 1000);
const TEST_TIMEOUT_MS = 60_000;

let gw;
before(async () => {
  gw = await startGateway({ vars: { STORAGE_DELAY_MS: HUGE_DELAY_MS } });
});
after(() => gw?.stop());

test("GET /__bench/memory is not a route of the release build", async () => {
  const res = await gw.fetch("/__bench/memory");
  assert.equal(res.status, 404);
  const body = await res.text();
  assert.ok(!body.includes("wasm_memory_bytes"), body);
});

test("STORAGE_DELAY_MS does not slow storage in the release build", { timeout: TEST_TIMEOUT_MS }, async () => {
  // Creating a key writes D1 and listing reads it (D1 and KV calls share the one delay function).
  const created = await gw.admin("POST", "/admin/v1/api-keys", { name: "knobs" });
  assert.equal(created.status, 201, created.text);
  const listed = await gw.admin("GET", "/admin/v1/api-keys");
  assert.equal(listed.status, 200, listed.text);
  assert.ok(listed.body.api_keys.some((k) => k.id === created.body.id), listed.text);
});
