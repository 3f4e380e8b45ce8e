// Server URL rules at registration and on PATCH: user information in the URL is refused (the
// password would be stored and shown), and — where the deployment does not allow private
// upstreams, the production default — every non-public target, however its address is spelled,
// and the gateway's own origin. The rules themselves are unit-tested in src/url_rules.rs.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { startGateway, startPyServer } from "./harness.mjs";

let dev, prod, py;
before(async () => {
  [dev, prod, py] = await Promise.all([
    startGateway(), // the harness allows private upstreams (they run on loopback)
    startGateway({ vars: { ALLOW_PRIVATE_UPSTREAMS: "false" } }),
    startPyServer(),
  ]);
});
after(async () => {
  await Promise.all([dev?.stop(), prod?.stop(), py?.stop()]);
});

const register = (gw, slug, url) => gw.admin("POST", "/admin/v1/servers", { slug, name: slug, url });

test("a URL with user information is refused, never stored or shown", async () => {
  const port = new URL(py.url).port;
  for (const [i, url] of [
    `http://admin:hunter2-secret@127.0.0.1:${port}/mcp`,
    `http://hunter2-secret@127.0.0.1:${port}/mcp`,
    `http://:hunter2-secret@127.0.0.1:${port}/mcp`,
  ].entries()) {
    const r = await register(dev, `ui${i}`, url);
    assert.equal(r.status, 400, r.text);
    assert.match(r.headers.get("content-type"), /application\/problem\+json/);
    assert.match(r.body.detail, /vault/);
    assert.ok(!r.text.includes("hunter2"), "the secret is not echoed");
  }
  assert.equal((await register(dev, "plain", py.url)).status, 201);
  const patch = await dev.admin("PATCH", "/admin/v1/servers/plain", { url: `http://u:hunter2-secret@127.0.0.1:${port}/mcp` });
  assert.equal(patch.status, 400, patch.text);
  const list = await dev.admin("GET", "/admin/v1/servers");
  assert.ok(!list.text.includes("hunter2"), list.text);
  assert.equal(list.body.servers.find((s) => s.slug === "plain").url, py.url);
});

test("without ALLOW_PRIVATE_UPSTREAMS, non-public targets are refused in every spelling", async () => {
  const port = new URL(py.url).port;
  const hosts = [
    "127.0.0.1",
    "2130706433", // decimal
    "0177.0.0.1", // octal
    "0x7f.1", // hex, short form
    "0x7f000001",
    "127.1",
    "0.0.0.0",
    "0",
    "localhost",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.0.1",
    "169.254.169.254",
    "100.64.0.1",
    "[fd00::1]",
    "[fe80::1]",
  ];
  for (const [i, host] of hosts.entries()) {
    const r = await register(prod, `p${i}`, `http://${host}:${port}/mcp`);
    assert.equal(r.status, 400, `${host}: ${r.text}`);
    assert.match(r.body.detail, /non-public|private/, host);
  }
  // The real upstream really is there: the same URL is accepted where private targets are allowed.
  assert.equal((await register(dev, "reachable", py.url)).status, 201);
  const none = await prod.admin("GET", "/admin/v1/servers");
  assert.deepEqual(none.body.servers, [], "nothing was stored");
});

test("PATCH applies the same rules to a server registered earlier", async () => {
  // Registered while private targets were allowed, then the deployment turns them off.
  const dir = mkdtempSync(join(tmpdir(), "mcpgw-urls-"));
  let gw = await startGateway({ persist: dir });
  try {
    assert.equal((await register(gw, "movable", py.url)).status, 201);
    await gw.stop();
    gw = await startGateway({ persist: dir, vars: { ALLOW_PRIVATE_UPSTREAMS: "false" } });
    const port = new URL(py.url).port;
    for (const host of ["2130706433", "[::1]", "0x7f.1", "169.254.169.254"]) {
      const p = await gw.admin("PATCH", "/admin/v1/servers/movable", { url: `http://${host}:${port}/mcp` });
      assert.equal(p.status, 400, `${host}: ${p.text}`);
    }
    const renamed = await gw.admin("PATCH", "/admin/v1/servers/movable", { name: "still editable" });
    assert.equal(renamed.status, 200, renamed.text);
    assert.equal(renamed.body.url, py.url);
  } finally {
    await gw.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the gateway's own origin is refused (a request loop)", async () => {
  for (const url of [`${dev.url}/mcp/x`, `${dev.url}/mcp`]) {
    const r = await register(dev, "loop", url);
    assert.equal(r.status, 400, r.text);
    assert.match(r.body.detail, /own origin/);
  }
});
