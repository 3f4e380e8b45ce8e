// Isolation between clients that share an upstream: modern (2026-07-28) clients of a legacy
// upstream (npm server-everything) reach it through sessions the gateway pools, so the gateway
// must own the id space upstream. Several clients — different principals and the same one —
// send requests with identical ids and progress tokens at the same time; each must receive
// exactly its own progress and result, on /mcp/{slug} and on /mcp.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MODERN, modernMeta, setupGateway } from "./harness.mjs";

const LONG = "trigger-long-running-operation";

let env;
const keys = {};
before(async () => {
  env = await setupGateway({ everything: true });
  const mk = async (path, body) => {
    const r = await env.gw.admin("POST", path, body);
    assert.equal(r.status, 201, `${path}: ${r.text}`);
    return r.body;
  };
  const org = (await mk("/admin/v1/orgs", { name: "Iso" })).id;
  await mk("/admin/v1/grants", { subject_kind: "org", subject_id: org, resource: "everything", effect: "allow" });
  for (const name of ["alpha", "beta"]) {
    const agent = (await mk("/admin/v1/agents", { name, parent_id: org })).id;
    keys[name] = (await mk("/admin/v1/api-keys", { name, principal_id: agent })).key;
  }
  keys.default = env.key;
});
after(() => env?.stop());

/** A modern POST that gives up after `ms` (a client whose answer went elsewhere never hears back). */
async function post(path, msg, key, ms = 20_000) {
  const body = { ...msg, params: { ...msg.params, _meta: { ...modernMeta(), ...msg.params?._meta } } };
  const headers = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    authorization: `Bearer ${key}`,
    "mcp-protocol-version": MODERN,
    "mcp-method": msg.method,
  };
  if (msg.params?.name) headers["mcp-name"] = msg.params.name;
  try {
    const res = await env.gw.fetch(path, { method: "POST", headers, body: JSON.stringify(body), signal: AbortSignal.timeout(ms) });
    const text = await res.text();
    const sse = (res.headers.get("content-type") || "").startsWith("text/event-stream");
    const parsed = sse
      ? text
          .split(/\r?\n\r?\n/)
          .map((ev) => ev.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n"))
          .filter(Boolean)
          .map((d) => JSON.parse(d))
      : JSON.parse(text);
    return { status: res.status, body: parsed, text };
  } catch (e) {
    return { status: 0, body: [], text: `no answer: ${e.message}` };
  }
}

/** One long-running call with id 1 and progress token 1; `steps` tells the callers apart. */
const longCall = (name, steps) => ({
  jsonrpc: "2.0",
  id: 1,
  method: "tools/call",
  params: { name, arguments: { duration: steps * 0.4, steps }, _meta: { progressToken: 1 } },
});

function assertOwn(reply, steps, who) {
  assert.equal(reply.status, 200, `${who}: ${reply.text}`);
  const msgs = Array.isArray(reply.body) ? reply.body : [reply.body];
  const responses = msgs.filter((m) => !m.method);
  assert.equal(responses.length, 1, `${who}: exactly one response: ${reply.text}`);
  assert.equal(responses[0].id, 1, who);
  assert.match(
    responses[0].result?.content?.[0]?.text ?? "",
    new RegExp(`Steps: ${steps}\\.`),
    `${who} got someone else's result: ${reply.text}`,
  );
  const progress = msgs.filter((m) => m.method === "notifications/progress").map((m) => m.params);
  assert.ok(progress.every((p) => p.progressToken === 1 && p.total === steps), `${who}: foreign progress: ${reply.text}`);
  assert.deepEqual(
    progress.map((p) => p.progress),
    Array.from({ length: steps }, (_, i) => i + 1),
    `${who}: own progress exactly once`,
  );
}

describe("concurrent modern clients with identical ids on a legacy upstream", () => {
  for (const [path, tool] of [
    ["/mcp/everything", LONG],
    ["/mcp", `everything__${LONG}`],
  ]) {
    test(`${path}: each client gets exactly its own progress and result`, async () => {
      const callers = [
        ["alpha", 2],
        ["beta", 3],
        ["default", 4],
        ["alpha", 5], // the same principal twice: one pooled session, still distinct requests
      ];
      // Warm the pooled sessions first, so that the calls really share them.
      for (const who of new Set(callers.map(([w]) => w))) {
        const r = await post(path, { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }, keys[who]);
        assert.equal(r.status, 200, r.text);
      }
      const replies = await Promise.all(
        callers.map(([who, steps]) => post(path, longCall(tool, steps), keys[who])),
      );
      callers.forEach(([who, steps], i) => assertOwn(replies[i], steps, `${who}/${steps}`));
    });
  }
});

test("real clients (TypeScript SDK v2, modern) with different keys: own progress and result", async () => {
  const { Client, StreamableHTTPClientTransport } = await import("@modelcontextprotocol/client");
  const run = async (key, path, name, steps) => {
    const client = new Client({ name: "iso-test", version: "1.0.0" }, { versionNegotiation: { mode: { pin: MODERN } } });
    const transport = new StreamableHTTPClientTransport(new URL(`${env.gw.url}${path}`), {
      requestInit: { headers: { Authorization: `Bearer ${key}` } },
    });
    await client.connect(transport);
    try {
      const progress = [];
      const r = await client.callTool(
        { name, arguments: { duration: steps * 0.4, steps } },
        { onprogress: (p) => progress.push(p), timeout: 30_000 },
      );
      return { text: r.content.map((c) => c.text).join(""), progress };
    } finally {
      await client.close();
    }
  };
  const runs = [
    ["alpha", "/mcp/everything", LONG, 2],
    ["beta", "/mcp/everything", LONG, 3],
    ["alpha", "/mcp", `everything__${LONG}`, 4],
    ["beta", "/mcp", `everything__${LONG}`, 5],
  ];
  const outs = await Promise.all(runs.map(([who, path, name, steps]) => run(keys[who], path, name, steps)));
  runs.forEach(([who, path, , steps], i) => {
    assert.match(outs[i].text, new RegExp(`Steps: ${steps}\\.`), `${who} on ${path}: ${outs[i].text}`);
    assert.deepEqual(
      outs[i].progress.map((p) => [p.progress, p.total]),
      Array.from({ length: steps }, (_, n) => [n + 1, steps]),
      `${who} on ${path}`,
    );
  });
});
