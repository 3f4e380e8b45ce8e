// Federation: one endpoint (/mcp) over three real upstream processes — merged and namespaced
// lists, routed calls, resources and prompts, signed pagination, a dead upstream that does not
// take the others down, virtual servers, tool pinning (quarantine and approval), long names.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { final, mcpPost, runClient, setupGateway, startGateway, startPyServer } from "./harness.mjs";

let env;
let py2; // a second Python upstream this file restarts with other definitions
before(async () => {
  env = await setupGateway({ everything: true, py: true });
  py2 = await startPyServer();
  const r = await env.gw.admin("POST", "/admin/v1/servers", { slug: "py2", name: "py2", url: py2.url, new_tool_policy: "quarantine" });
  assert.equal(r.status, 201, r.text);
});
after(async () => {
  await py2?.stop();
  await env?.stop();
});

const rpc = (id, method, params = {}) => ({ jsonrpc: "2.0", id, method, params });
const modern = (path, msg) => mcpPost(env.gw, path, msg, { key: env.key, modern: true });

async function allTools(path = "/mcp", gw = env.gw, key = env.key) {
  const names = [];
  let cursor;
  for (let i = 0; i < 50; i++) {
    const r = final(await mcpPost(gw, path, rpc(i, "tools/list", cursor ? { cursor } : {}), { key, modern: true }));
    assert.ok(r.result, JSON.stringify(r));
    names.push(...r.result.tools.map((t) => t.name));
    cursor = r.result.nextCursor;
    if (!cursor) return names;
  }
  throw new Error("pagination did not end");
}

async function restartPy2(variants) {
  const port = py2.port;
  await py2.stop();
  py2 = await startPyServer({ port, variants });
}

describe("aggregated /mcp", () => {
  test("tools/list merges every server's catalog under {slug}__{tool}", async () => {
    const names = await allTools();
    for (const n of ["py__echo", "py__slow", "py2__echo", "everything__echo", "everything__trigger-long-running-operation"]) {
      assert.ok(names.includes(n), `${n} in ${names}`);
    }
    assert.equal(new Set(names).size, names.length, "no duplicates");
    const first = final(await modern("/mcp", rpc(1, "tools/list")));
    assert.equal(first.result.resultType, "complete");
  });
  test("pagination: small pages, signed cursors; a tampered or foreign cursor → -32602", async () => {
    // A second gateway with 7 items a page, over the same upstreams.
    const gw = await startGateway({ vars: { LIST_PAGE_SIZE: "7", GATEWAY_SECRET: "another-deployment" } });
    try {
      for (const slug of ["everything", "py"]) {
        const r = await gw.admin("POST", "/admin/v1/servers", { slug, name: slug, url: env.upstreams[slug].url });
        assert.equal(r.status, 201, r.text);
      }
      const key = (await gw.admin("POST", "/admin/v1/api-keys", { name: "pages" })).body.key;
      const names = await allTools("/mcp", gw, key);
      assert.ok(names.length > 14, `several pages: ${names.length}`);
      assert.equal(new Set(names).size, names.length, "no duplicates across pages");
      assert.deepEqual(names, [...names].sort(), "a stable order");
      const first = final(await mcpPost(gw, "/mcp", rpc(1, "tools/list"), { key, modern: true }));
      assert.equal(first.result.tools.length, 7);
      const c = first.result.nextCursor;
      const tampered = c.slice(0, -2) + (c.endsWith("AA") ? "BB" : "AA");
      for (const cursor of [tampered, "not-a-cursor"]) {
        const r = final(await mcpPost(gw, "/mcp", rpc(2, "tools/list", { cursor }), { key, modern: true }));
        assert.equal(r.error.code, -32602, cursor);
      }
      const other = final(await mcpPost(gw, "/mcp", rpc(3, "resources/list", { cursor: c }), { key, modern: true }));
      assert.equal(other.error.code, -32602, "a tools/list cursor is not a resources/list cursor");
      const fromOtherGateway = final(await modern("/mcp", rpc(4, "tools/list", { cursor: c })));
      assert.equal(fromOtherGateway.error.code, -32602, "cursors are signed per deployment");
    } finally {
      await gw.stop();
    }
  });
  test("calls are routed to the owning server under the original name", async () => {
    const a = final(await modern("/mcp", rpc(1, "tools/call", { name: "py__echo", arguments: { message: "hi" } })));
    assert.equal(a.result.content[0].text, "echo: hi");
    const b = final(await modern("/mcp", rpc(2, "tools/call", { name: "everything__echo", arguments: { message: "hi" } })));
    assert.equal(b.result.content[0].text, "Echo: hi");
    const u = final(await modern("/mcp", rpc(3, "tools/call", { name: "nobody__echo", arguments: {} })));
    assert.equal(u.error.code, -32602);
    assert.match(u.error.message, /unknown tool/);
  });
  test("resources and prompts aggregate with reversible names", async () => {
    const res = final(await modern("/mcp", rpc(1, "resources/list")));
    const uris = res.result.resources.map((r) => r.uri);
    assert.ok(uris.includes("py+demo://greeting"), uris.join(" "));
    assert.ok(uris.some((u) => u.startsWith("everything+")), "server-everything's resources too");
    const read = final(await modern("/mcp", rpc(2, "resources/read", { uri: "py+demo://greeting" })));
    assert.match(read.result.contents[0].text, /Hello/);
    const prompts = final(await modern("/mcp", rpc(3, "prompts/list")));
    assert.ok(prompts.result.prompts.some((p) => p.name === "py__greet"));
    const got = final(await modern("/mcp", rpc(4, "prompts/get", { name: "py__greet", arguments: { name: "Ada" } })));
    assert.match(JSON.stringify(got.result.messages), /Ada/);
    const comp = final(await modern("/mcp", rpc(5, "completion/complete", { ref: { type: "ref/prompt", name: "py__greet" }, argument: { name: "name", value: "Bo" } })));
    assert.deepEqual(comp.result.completion.values, ["Bob"]);
    const bad = final(await modern("/mcp", rpc(6, "resources/read", { uri: "nope+demo://x" })));
    assert.equal(bad.error.code, -32602);
  });
  for (const [client, era] of [["py", "legacy"], ["py", "modern"], ["ts-v1", "legacy"], ["ts-v2", "modern"]]) {
    test(`${client} (${era}) on /mcp: namespaced list, echo, progress before result`, async () => {
      const out = await runClient(client, { url: `${env.gw.url}/mcp`, token: env.key, era, toolPrefix: "py__" });
      assert.equal(out.error, undefined, out.error);
      assert.ok(out.tools.includes("everything__echo"), "the client saw other servers' tools too");
      assert.equal(out.echo, "echo: hi");
      assert.deepEqual(out.progress.map(Number), [1, 2, 3]);
      assert.equal(out.progressBeforeResult, true);
    });
  }
  test("a legacy session on /mcp reaches servers of both eras", async () => {
    const init = await mcpPost(env.gw, "/mcp", rpc(0, "initialize", { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } }), { key: env.key });
    const sid = init.headers.get("mcp-session-id");
    assert.ok(init.body.result.capabilities.tools);
    const h = { "mcp-session-id": sid };
    const a = final(await mcpPost(env.gw, "/mcp", rpc(1, "tools/call", { name: "everything__echo", arguments: { message: "L" } }), { key: env.key, headers: h }));
    assert.equal(a.result.content[0].text, "Echo: L");
    const b = final(await mcpPost(env.gw, "/mcp", rpc(2, "tools/call", { name: "py__echo", arguments: { message: "L" } }), { key: env.key, headers: h }));
    assert.equal(b.result.content[0].text, "echo: L");
    assert.equal(b.result.resultType, undefined);
  });
});

describe("one upstream down", () => {
  test("the rest keep working; the dead one answers with a clear error; it comes back", async () => {
    const port = py2.port;
    await py2.stop();
    const names = await allTools();
    assert.ok(names.includes("py__echo"), "the catalog still lists everyone");
    const ok = final(await modern("/mcp", rpc(1, "tools/call", { name: "py__echo", arguments: { message: "x" } })));
    assert.equal(ok.result.content[0].text, "echo: x");
    const dead = final(await modern("/mcp", rpc(2, "tools/call", { name: "py2__echo", arguments: { message: "x" } })));
    assert.equal(dead.error.data.upstream, "py2");
    const res = final(await modern("/mcp", rpc(3, "resources/list")));
    assert.ok(res.result.resources.some((r) => r.uri === "py+demo://greeting"), "fan-out leaves the dead server out");
    py2 = await startPyServer({ port });
    const back = final(await modern("/mcp", rpc(4, "tools/call", { name: "py2__echo", arguments: { message: "x" } })));
    assert.equal(back.result.content[0].text, "echo: x");
  });
});

describe("virtual servers", () => {
  test("only the chosen tools, renamed and re-described, at /mcp/v/{slug}", async () => {
    const v = await env.gw.admin("POST", "/admin/v1/virtual-servers", {
      slug: "support",
      name: "Support agent",
      tools: [
        { server: "py", tool: "echo", name: "say", description: "Say something back" },
        { server: "everything", tool: "echo" },
      ],
    });
    assert.equal(v.status, 201, v.text);
    const list = final(await modern("/mcp/v/support", rpc(1, "tools/list")));
    assert.deepEqual(list.result.tools.map((t) => t.name), ["echo", "say"]);
    assert.equal(list.result.tools.find((t) => t.name === "say").description, "Say something back");
    const r = final(await modern("/mcp/v/support", rpc(2, "tools/call", { name: "say", arguments: { message: "v" } })));
    assert.equal(r.result.content[0].text, "echo: v");
    const hidden = final(await modern("/mcp/v/support", rpc(3, "tools/call", { name: "add", arguments: { a: 1, b: 2 } })));
    assert.equal(hidden.error.code, -32602);
    const bad = await env.gw.admin("POST", "/admin/v1/virtual-servers", { slug: "bad", name: "x", tools: [{ server: "py", tool: "nope" }] });
    assert.equal(bad.status, 422);
    assert.equal((await modern("/mcp/v/nope", rpc(4, "tools/list"))).status, 404);
    assert.equal((await env.gw.admin("DELETE", "/admin/v1/virtual-servers/support")).status, 204);
  });
});

describe("tool pinning", () => {
  test("a changed definition is quarantined until approved; new tools follow the server's policy", async () => {
    await restartPy2(["changed", "extra"]);
    // Before any sync: the live list on /mcp/py2 already hides the swapped definition.
    const live = final(await modern("/mcp/py2", rpc(1, "tools/list")));
    assert.ok(!live.result.tools.some((t) => t.name === "echo"), "swapped echo hidden live");
    const s = await env.gw.admin("POST", "/admin/v1/servers/py2/sync");
    assert.equal(s.status, 200, s.text);
    const q = await env.gw.admin("GET", "/admin/v1/servers/py2/tools?status=quarantined");
    const byName = Object.fromEntries(q.body.tools.map((t) => [t.name, t]));
    assert.ok(byName.echo && byName.extra_tool, q.text);
    assert.match(byName.echo.description, /id_rsa/, "the new definition");
    assert.doesNotMatch(byName.echo.approved_definition.description, /id_rsa/, "beside the approved one");
    const names = await allTools();
    assert.ok(!names.includes("py2__echo") && !names.includes("py2__extra_tool"));
    const refused = final(await modern("/mcp", rpc(2, "tools/call", { name: "py2__echo", arguments: { message: "x" } })));
    assert.equal(refused.error.code, -32602);
    const direct = final(await modern("/mcp/py2", rpc(3, "tools/call", { name: "echo", arguments: { message: "x" } })));
    assert.equal(direct.error.code, -32602, "refused on the single-server endpoint too");
    const ok = await env.gw.admin("POST", "/admin/v1/servers/py2/tools/echo/approve");
    assert.equal(ok.status, 200, ok.text);
    const after = final(await modern("/mcp", rpc(4, "tools/call", { name: "py2__echo", arguments: { message: "x" } })));
    assert.equal(after.result.content[0].text, "echo: x");
    assert.ok(!(await allTools()).includes("py2__extra_tool"), "the other one is still quarantined");
  });
  test("over-long names get a deterministic short form that calls resolve", async () => {
    await restartPy2(["long"]);
    await env.gw.admin("PATCH", "/admin/v1/servers/py2", { new_tool_policy: "approve" });
    await env.gw.admin("POST", "/admin/v1/servers/py2/sync");
    const names = await allTools();
    const short = names.find((n) => n.startsWith("py2__summarize"));
    assert.ok(short, names.join(" "));
    assert.ok(short.length <= 64, short);
    assert.match(short, /_[0-9a-f]{8}$/);
    assert.deepEqual(await allTools(), names, "deterministic");
    const r = final(await modern("/mcp", rpc(1, "tools/call", { name: short, arguments: {} })));
    assert.equal(r.result.content[0].text, "long");
  });
});
