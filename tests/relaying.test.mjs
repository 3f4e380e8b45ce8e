// Relaying beyond one request and its answer: what the gateway declares when it reads a
// catalog, resumption of a dropped stream, and cancellation in both directions — against real
// upstreams (npm server-everything, legacy era; the PyPI `mcp` server, both eras) and real clients.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { MODERN, final, mcpPost, modernMeta, setupGateway, startPyServer } from "./harness.mjs";

let env;
let pyLegacy;
let pyModern;
let requestLog;
before(async () => {
  env = await setupGateway({ everything: true, py: true });
  // The Python server again, refusing 2026-07-28: a legacy-only upstream that records cancellations.
  pyLegacy = await startPyServer({ variants: ["legacy"] });
  const r = await env.gw.admin("POST", "/admin/v1/servers", { slug: "pylegacy", name: "pylegacy", url: pyLegacy.url });
  assert.equal(r.status, 201, r.text);
  const s = await env.gw.admin("GET", "/admin/v1/servers/pylegacy");
  assert.equal(s.body.era, "legacy", s.text);
  // And refusing the handshake era: a 2026-07-28-only upstream, whose requests it logs.
  requestLog = join(mkdtempSync(join(tmpdir(), "relaying-")), "requests.jsonl");
  pyModern = await startPyServer({ variants: ["modern"], args: ["--log-headers", requestLog] });
  const m = await env.gw.admin("POST", "/admin/v1/servers", { slug: "pymodern", name: "pymodern", url: pyModern.url });
  assert.equal(m.status, 201, m.text);
});
after(() => Promise.all([env?.stop(), pyLegacy?.stop(), pyModern?.stop()]));

/** How many requests naming tool `name` the 2026-07-28-only upstream has received. */
function modernCalls(name) {
  if (!existsSync(requestLog)) return 0;
  return readFileSync(requestLog, "utf8").split("\n").filter((l) => l.includes(`"mcp-name": "${name}"`)).length;
}

const LEGACY = "2025-11-25";
const call = (id, name, args, meta) => ({
  jsonrpc: "2.0",
  id,
  method: "tools/call",
  params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) },
});

function headers({ sid, modern, name } = {}) {
  const h = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    authorization: `Bearer ${env.key}`,
  };
  if (sid) Object.assign(h, { "mcp-session-id": sid, "mcp-protocol-version": LEGACY });
  if (modern) Object.assign(h, { "mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": name });
  return h;
}

/** A legacy session on `path`, opened with raw requests. */
async function openSession(path) {
  const init = { jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: LEGACY, capabilities: {}, clientInfo: { name: "raw", version: "1" } } };
  const r = await mcpPost(env.gw, path, init, { key: env.key });
  assert.equal(r.status, 200, r.text);
  const sid = r.headers.get("mcp-session-id");
  const ack = await mcpPost(env.gw, path, { jsonrpc: "2.0", method: "notifications/initialized" }, { key: env.key, headers: headers({ sid }) });
  assert.equal(ack.status, 202);
  return sid;
}

/**
 * An SSE response read as it arrives: `next(pred, ms)` waits for a matching event ({id, data});
 * `ended(ms)` resolves with every event once the stream ends (rejects if it does not);
 * `close()` drops the connection.
 */
async function sse(path, init) {
  const ctrl = new AbortController();
  const res = await env.gw.fetch(path, { ...init, signal: ctrl.signal });
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
  const events = [];
  let taken = 0;
  const done = (async () => {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return true;
        buf += decoder.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const lines = buf.slice(0, i).split("\n");
          buf = buf.slice(i + 2);
          const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
          if (data) events.push({ id: lines.find((l) => l.startsWith("id:"))?.slice(3).trim(), data: JSON.parse(data) });
        }
      }
    } catch {
      return false;
    }
  })();
  const within = (p, ms, what) =>
    Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`${what} within ${ms} ms; got ${JSON.stringify(events.map((e) => e.data))}`)), ms))]);
  return {
    events,
    async next(pred, ms = 10_000) {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        const i = events.findIndex((e, n) => n >= taken && pred(e.data));
        if (i >= 0) return events[(taken = i + 1) - 1];
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no matching event within ${ms} ms; got ${JSON.stringify(events.map((e) => e.data))}`);
    },
    ended: (ms) => within(done, ms, "the stream did not end").then(() => events),
    close() {
      ctrl.abort();
      return done;
    },
  };
}

/** The tags of the `wait` calls an upstream saw cancelled. */
async function cancellations(slug) {
  const r = final(await mcpPost(env.gw, `/mcp/${slug}`, call(99, "cancellations", {}), { key: env.key, modern: true }));
  return JSON.parse(r.result.content[0].text);
}

async function eventually(check, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(what);
}

const isProgress = (m) => m.method === "notifications/progress";

/** Every client capability an upstream may make its tools depend on. */
const RICH_CLIENT = { sampling: {}, elicitation: { form: {}, url: {} }, roots: { listChanged: true } };

describe("catalog sync", () => {
  test("lists the tools an upstream offers to clients that can answer server→client requests", async () => {
    // What server-everything lists, directly, to a client declaring those capabilities.
    const direct = new Client({ name: "direct", version: "1.0.0" }, { capabilities: RICH_CLIENT });
    await direct.connect(new StreamableHTTPClientTransport(new URL(env.upstreams.everything.url)));
    const expected = (await direct.listTools()).tools.map((t) => t.name).sort();
    await direct.close();
    assert.ok(expected.includes("trigger-sampling-request") && expected.includes("get-roots-list"), expected.join());

    const r = final(await mcpPost(env.gw, "/mcp", { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }, { key: env.key, modern: true }));
    const listed = r.result.tools
      .map((t) => t.name)
      .filter((n) => n.startsWith("everything__"))
      .map((n) => n.slice("everything__".length))
      .sort();
    assert.deepEqual(listed, expected);
  });
});

describe("resumption with Last-Event-ID", () => {
  test("a request stream starts with a priming event (an id, no data); resuming from it yields everything", async () => {
    const sid = await openSession("/mcp/everything");
    const body = call(6, "trigger-long-running-operation", { duration: 1, steps: 2 }, { progressToken: "p6" });
    const ctrl = new AbortController();
    const res = await env.gw.fetch("/mcp/everything", { method: "POST", headers: headers({ sid }), body: JSON.stringify(body), signal: ctrl.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
    // Read exactly the first event, then drop the connection.
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    while (!/\r?\n\r?\n/.test(buf)) {
      const { value, done } = await reader.read();
      assert.ok(!done, `the stream ended before its first event: ${JSON.stringify(buf)}`);
      buf += decoder.decode(value, { stream: true });
    }
    ctrl.abort();
    const lines = buf.split(/\r?\n\r?\n/)[0].split(/\r?\n/);
    const id = lines.find((l) => l.startsWith("id:"))?.slice(3).trim();
    assert.ok(id, `the first event has an id: ${JSON.stringify(lines)}`);
    const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("");
    assert.equal(data, "", `the first event carries no data: ${JSON.stringify(lines)}`);

    const resumed = await sse("/mcp/everything", {
      method: "GET",
      headers: { ...headers({ sid }), accept: "text/event-stream", "last-event-id": id },
    });
    const rest = (await resumed.ended(15_000)).map((e) => e.data);
    assert.deepEqual(rest.filter(isProgress).map((m) => m.params.progress), [1, 2], JSON.stringify(rest));
    const responses = rest.filter((m) => !m.method);
    assert.equal(responses.length, 1, JSON.stringify(rest));
    assert.equal(responses[0].id, 6);
  });

  test("a dropped request stream resumes with every later event, including those still to come, once", async () => {
    const sid = await openSession("/mcp/everything");
    const steps = 6;
    const body = call(7, "trigger-long-running-operation", { duration: 3, steps }, { progressToken: "p7" });
    const first = await sse("/mcp/everything", { method: "POST", headers: headers({ sid }), body: JSON.stringify(body) });
    const one = await first.next(isProgress);
    assert.equal(one.data.params.progress, 1);
    assert.ok(one.id, "events carry ids");
    await first.close(); // the connection drops mid-request

    const resumed = await sse("/mcp/everything", {
      method: "GET",
      headers: { ...headers({ sid }), accept: "text/event-stream", "last-event-id": one.id },
    });
    const rest = (await resumed.ended(15_000)).map((e) => e.data);
    assert.deepEqual(
      rest.filter(isProgress).map((m) => [m.params.progress, m.params.progressToken]),
      Array.from({ length: steps - 1 }, (_, i) => [i + 2, "p7"]),
    );
    const responses = rest.filter((m) => !m.method);
    assert.equal(responses.length, 1, JSON.stringify(rest));
    assert.equal(responses[0].id, 7);
    assert.match(responses[0].result.content[0].text, /Steps: 6\./);
  });

  test("a real client (TypeScript SDK 1.x) whose stream drops reconnects and gets the result", async () => {
    // The connection of the first tools/call response is cut after its first progress event.
    let cut = 0;
    const cutting = async (url, init) => {
      const res = await fetch(url, init);
      const isCall = init?.method === "POST" && String(init.body).includes('"tools/call"');
      if (!isCall || cut++ > 0 || !res.body) return res;
      const reader = res.body.getReader();
      const body = new ReadableStream({
        async pull(ctrl) {
          const { value, done } = await reader.read();
          if (done) return ctrl.close();
          ctrl.enqueue(value);
          if (new TextDecoder().decode(value).includes("notifications/progress")) {
            await reader.cancel();
            ctrl.error(new Error("connection lost"));
          }
        },
      });
      return new Response(body, { status: res.status, headers: res.headers });
    };
    const client = new Client({ name: "resume-test", version: "1.0.0" });
    const transport = new StreamableHTTPClientTransport(new URL(`${env.gw.url}/mcp/everything`), {
      fetch: cutting,
      requestInit: { headers: { Authorization: `Bearer ${env.key}` } },
      reconnectionOptions: { initialReconnectionDelay: 100, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1.5, maxRetries: 3 },
    });
    await client.connect(transport);
    try {
      const progress = [];
      const r = await client.callTool(
        { name: "trigger-long-running-operation", arguments: { duration: 2, steps: 4 } },
        undefined,
        { onprogress: (p) => progress.push(p.progress), timeout: 20_000 },
      );
      assert.equal(cut, 1, "the stream was cut");
      assert.match(r.content[0].text, /Steps: 4\./);
      assert.deepEqual(progress, [1, 2, 3, 4]);
    } finally {
      await client.close();
    }
  });
});

describe("cancellation", () => {
  for (const [slug, era] of [
    ["pylegacy", "legacy"],
    ["py", "modern"],
  ]) {
    test(`a modern client closing its stream cancels the request on a ${era} upstream`, async () => {
      const tag = `m2${era[0]}-${Date.now()}`;
      const body = call(1, "wait", { tag, seconds: 8 }, { ...modernMeta(), progressToken: 1 });
      const s = await sse(`/mcp/${slug}`, { method: "POST", headers: headers({ modern: true, name: "wait" }), body: JSON.stringify(body) });
      await s.next(isProgress);
      await s.close();
      await eventually(async () => (await cancellations(slug)).includes(tag), "the upstream saw no cancellation");
    });
  }

  for (const [slug, era] of [
    ["py", "modern"],
    ["pylegacy", "legacy"],
  ]) {
    test(`a legacy client's notifications/cancelled stops the request on a ${era} upstream`, async () => {
      const sid = await openSession(`/mcp/${slug}`);
      const tag = `l2${era[0]}-${Date.now()}`;
      const body = call(5, "wait", { tag, seconds: 8 }, { progressToken: 5 });
      const s = await sse(`/mcp/${slug}`, { method: "POST", headers: headers({ sid }), body: JSON.stringify(body) });
      await s.next(isProgress);
      const c = await mcpPost(env.gw, `/mcp/${slug}`, { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 5, reason: "test" } }, {
        key: env.key,
        headers: headers({ sid }),
      });
      assert.equal(c.status, 202);
      await eventually(async () => (await cancellations(slug)).includes(tag), "the upstream saw no cancellation");
      const events = (await s.ended(6_000)).map((e) => e.data);
      assert.ok(!events.some((m) => m.result), `a cancelled request gets no result: ${JSON.stringify(events)}`);
    });
  }

  test("a legacy client's notifications/cancelled aborts a modern upstream's request answered as plain JSON", async () => {
    const sid = await openSession("/mcp/pymodern");
    const tag = `json-${Date.now()}`;
    const before = modernCalls("wait");
    // No progress token: the upstream stays silent and would answer with one JSON body.
    const body = call(7, "wait", { tag, seconds: 8 });
    const pending = env.gw.fetch("/mcp/pymodern", { method: "POST", headers: headers({ sid }), body: JSON.stringify(body) });
    for (const deadline = Date.now() + 10_000; modernCalls("wait") <= before; ) {
      assert.ok(Date.now() < deadline, "the upstream never received the call");
      await new Promise((r) => setTimeout(r, 50));
    }
    const c = await mcpPost(env.gw, "/mcp/pymodern", { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 7, reason: "test" } }, {
      key: env.key,
      headers: headers({ sid }),
    });
    assert.equal(c.status, 202);
    await eventually(async () => (await cancellations("pymodern")).includes(tag), "the upstream's request was not aborted", 6_000);
    const r = await pending;
    const text = await r.text();
    assert.equal(r.status, 200, text);
    assert.doesNotMatch(text, /"result"/, "a cancelled request gets no result");
  });
});
