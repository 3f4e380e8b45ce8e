// Tool poisoning (docs/policies.md, *Tool poisoning*): the built gateway under Miniflare in front
// of the real Python SDK upstream with variant `poisoned` (add_notes: hidden <IMPORTANT>
// instructions to read ~/.ssh/id_rsa; weather: a zero-width character and an exfiltration URL in
// a parameter's description). Poisoned tools are quarantined at registration — where the rest of
// the catalog is approved — with the reason in the admin API, hidden from every list and refused
// on call, in both eras, on /mcp and /mcp/{slug}, until an admin approves them; benign tools are
// untouched. A poisoned tool that appears later is quarantined even under `new_tool_policy:
// approve`.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { final, mcpPost, startGateway, startPyServer } from "./harness.mjs";

let gw, py, key;

const rpc = (id, method, params = {}) => ({ jsonrpc: "2.0", id, method, params });
const ok = (r, status = 201) => {
  assert.equal(r.status, status, r.text);
  return r.body;
};

before(async () => {
  [gw, py] = await Promise.all([startGateway(), startPyServer({ variants: ["poisoned"] })]);
  ok(await gw.admin("POST", "/admin/v1/servers", { slug: "py", name: "py", url: py.url }));
  key = ok(await gw.admin("POST", "/admin/v1/api-keys", { name: "agent" })).key;
});
after(() => Promise.all([gw?.stop(), py?.stop()]));

const modern = async (path, msg) => final(await mcpPost(gw, path, msg, { key, modern: true }));

/** A tools/list in the 2025-11-25 era: initialize, initialized, then the list. */
async function legacyList(path) {
  const init = await mcpPost(gw, path, rpc(1, "initialize", { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } }), { key });
  const sid = init.headers.get("mcp-session-id");
  assert.ok(sid, init.text);
  const h = { "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25" };
  await mcpPost(gw, path, { jsonrpc: "2.0", method: "notifications/initialized" }, { key, headers: h });
  const r = final(await mcpPost(gw, path, rpc(2, "tools/list"), { key, headers: h }));
  await gw.fetch(path, { method: "DELETE", headers: { authorization: `Bearer ${key}`, ...h } });
  return r.result.tools.map((t) => t.name);
}

async function catalog(slug) {
  const tools = ok(await gw.admin("GET", `/admin/v1/servers/${slug}/tools`), 200).tools;
  return Object.fromEntries(tools.map((t) => [t.name, t]));
}

describe("tool poisoning at registration", () => {
  test("poisoned tools are quarantined with the reason; benign ones are approved as before", async () => {
    const tools = await catalog("py");
    assert.equal(tools.add_notes.status, "quarantined");
    assert.match(tools.add_notes.quarantine_reason, /^tool poisoning: description: /);
    assert.equal(tools.add_notes.approved_hash, null);
    assert.equal(tools.weather.status, "quarantined");
    assert.match(tools.weather.quarantine_reason, /^tool poisoning: inputSchema\.properties\.city\.description: /);
    for (const benign of ["echo", "add", "slow"]) {
      assert.equal(tools[benign].status, "active", benign);
      assert.equal(tools[benign].quarantine_reason, null, benign);
    }
    const listed = ok(await gw.admin("GET", "/admin/v1/servers/py/tools?status=quarantined"), 200).tools.map((t) => t.name);
    assert.deepEqual(listed.sort(), ["add_notes", "weather"]);
  });

  test("they are invisible and refused on /mcp and /mcp/{slug}, in both eras", async () => {
    const all = (await modern("/mcp", rpc(1, "tools/list"))).result.tools.map((t) => t.name);
    assert.ok(all.includes("py__echo") && !all.includes("py__add_notes") && !all.includes("py__weather"), all.join());
    const one = (await modern("/mcp/py", rpc(2, "tools/list"))).result.tools.map((t) => t.name);
    assert.ok(one.includes("echo") && !one.includes("add_notes") && !one.includes("weather"), one.join());
    for (const path of ["/mcp", "/mcp/py"]) {
      const names = await legacyList(path);
      assert.ok(names.some((n) => n.endsWith("echo")), names.join());
      assert.ok(!names.some((n) => n.endsWith("add_notes") || n.endsWith("weather")), `${path}: ${names.join()}`);
    }
    const refused = await modern("/mcp", rpc(3, "tools/call", { name: "py__add_notes", arguments: { a: 1, b: 2 } }));
    assert.equal(refused.error?.code, -32602, JSON.stringify(refused));
    const direct = await modern("/mcp/py", rpc(4, "tools/call", { name: "weather", arguments: { city: "Oslo" } }));
    assert.equal(direct.error?.code, -32602, JSON.stringify(direct));
  });

  test("an admin's approval releases one, and later syncs keep it; the other stays held", async () => {
    const approved = ok(await gw.admin("POST", "/admin/v1/servers/py/tools/add_notes/approve"), 200);
    assert.equal(approved.status, "active");
    assert.equal(approved.quarantine_reason, null);
    const r = await modern("/mcp", rpc(5, "tools/call", { name: "py__add_notes", arguments: { a: 1, b: 2 } }));
    assert.equal(r.result?.content?.[0]?.text, "sum: 3", JSON.stringify(r));
    const direct = await modern("/mcp/py", rpc(6, "tools/call", { name: "add_notes", arguments: { a: 2, b: 2 } }));
    assert.equal(direct.result?.content?.[0]?.text, "sum: 4", JSON.stringify(direct));
    ok(await gw.admin("POST", "/admin/v1/servers/py/sync"), 200);
    const tools = await catalog("py");
    assert.equal(tools.add_notes.status, "active", "an approval of that exact definition stands");
    assert.equal(tools.weather.status, "quarantined");
    assert.match(tools.weather.quarantine_reason, /^tool poisoning: /);
    const all = (await modern("/mcp", rpc(7, "tools/list"))).result.tools.map((t) => t.name);
    assert.ok(all.includes("py__add_notes") && !all.includes("py__weather"), all.join());
  });
});

describe("tool poisoning after registration", () => {
  test("a poisoned tool that appears later is quarantined even under new_tool_policy: approve", async () => {
    let up = await startPyServer();
    try {
      const s = ok(await gw.admin("POST", "/admin/v1/servers", { slug: "later", name: "later", url: up.url }));
      assert.equal(s.new_tool_policy, "approve");
      assert.equal((await catalog("later")).add_notes, undefined);
      const port = up.port;
      await up.stop();
      up = await startPyServer({ port, variants: ["poisoned", "extra"] });
      ok(await gw.admin("POST", "/admin/v1/servers/later/sync"), 200);
      const tools = await catalog("later");
      assert.equal(tools.extra_tool.status, "active", "a benign new tool is approved by the policy");
      for (const name of ["add_notes", "weather"]) {
        assert.equal(tools[name].status, "quarantined", name);
        assert.match(tools[name].quarantine_reason, /^tool poisoning: /, name);
      }
      const all = (await modern("/mcp", rpc(8, "tools/list"))).result.tools.map((t) => t.name);
      assert.ok(all.includes("later__extra_tool") && !all.includes("later__add_notes"), all.join());
    } finally {
      await up.stop();
    }
  });
});
