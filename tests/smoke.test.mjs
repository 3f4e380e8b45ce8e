// Smoke test: the built Worker starts in Miniflare and answers GET /healthz.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startGateway } from "./harness.mjs";

let gw;
before(async () => {
  gw = await startGateway();
});
after(() => gw?.stop());

test("GET /healthz → 200 ok", async () => {
  const res = await gw.fetch("/healthz");
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "ok");
});
