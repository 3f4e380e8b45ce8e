// Server→client requests (sampling/createMessage, elicitation/create, roots/list) through the
// gateway, with real clients answering them from their own handlers and real upstreams asking:
// server-everything (2025-11-25: requests on the POST's stream or the GET stream) and the
// Python SDK server's `s2c` variant (2026-07-28: input_required rounds; 2025-11-25 requests).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { final, mcpPost, openStream, runClientScript, setupGateway, startPyServer } from "./harness.mjs";

let env;
before(async () => {
  env = await setupGateway({ everything: true });
  const py = await startPyServer({ variants: ["s2c"] });
  env.upstreams.py = py;
  const r = await env.gw.admin("POST", "/admin/v1/servers", { slug: "py", name: "py", url: py.url });
  assert.equal(r.status, 201, r.text);
});
after(async () => {
  await env?.upstreams.py?.stop();
  await env?.stop();
});

const LEGACY = "2025-11-25";
const rpc = (id, method, params = {}) => ({ jsonrpc: "2.0", id, method, params });

/** Runs tests/clients/{ts,py}_s2c_client with `calls` ({name: args}); returns its JSON line. */
function s2cClient(client, path, { era = "legacy", calls, caps = true }) {
  const argv = ["--url", env.gw.url + path, "--token", env.key, "--era", era, ...(caps ? [] : ["--no-caps"])];
  for (const [name, args] of Object.entries(calls)) argv.push("--call", `${name}=${JSON.stringify(args)}`);
  return runClientScript(client === "py" ? "py_s2c_client.py" : "ts_s2c_client.mjs", [...(client === "py" ? [] : ["--sdk", client === "ts-v1" ? "v1" : "v2"]), ...argv]);
}

function assertAnswered(out, expect) {
  assert.ok(!out.error, out.error);
  for (const [name, text] of Object.entries(expect)) {
    assert.ok(!out.results[name].startsWith("ERROR"), `${name}: ${out.results[name]}`);
    assert.ok(out.results[name].includes(text), `${name}: ${out.results[name]} should include ${text}`);
  }
}

const EVERYTHING = {
  "trigger-sampling-request": [{ prompt: "weather" }, "sunny"],
  "trigger-elicitation-request": [{}, "Ada"],
  "get-roots-list": [{}, "file:///work/alpha"],
};
const PY = { ask: [{}, "hello Ada"], sample: [{ topic: "weather" }, "model test-model said: sunny"], roots: [{}, "file:///work/beta"] };
const calls = (table, prefix = "") => Object.fromEntries(Object.entries(table).map(([n, [a]]) => [prefix + n, a]));
const expects = (table, prefix = "") => Object.fromEntries(Object.entries(table).map(([n, [, t]]) => [prefix + n, t]));

describe("legacy client, legacy upstream (server-everything on /mcp/everything)", () => {
  for (const client of ["ts-v1", "ts-v2", "py"]) {
    test(`${client}: the upstream's sampling, elicitation and roots requests reach the client's handlers and its answers come back`, async () => {
      const out = await s2cClient(client, "/mcp/everything", { calls: calls(EVERYTHING) });
      assertAnswered(out, expects(EVERYTHING));
      assert.deepEqual([...new Set(out.asked)].sort(), ["elicitation/create", "roots/list", "sampling/createMessage"]);
    });
  }
});

describe("legacy client, modern upstream (Python s2c on /mcp/py): input_required becomes requests on the client's stream", () => {
  for (const client of ["ts-v1", "py"]) {
    test(`${client}: each input request is asked, answered, and the upstream retried with inputResponses`, async () => {
      const out = await s2cClient(client, "/mcp/py", { calls: calls(PY) });
      assertAnswered(out, expects(PY));
      assert.deepEqual(out.asked, ["elicitation/create", "sampling/createMessage", "roots/list"]);
    });
  }
});

describe("modern client, modern upstream (Python s2c on /mcp/py): input_required passes through", () => {
  for (const client of ["py", "ts-v2"]) {
    test(`${client}: the client serves inputRequests and retries; the upstream completes`, async () => {
      const out = await s2cClient(client, "/mcp/py", { era: "modern", calls: calls(PY) });
      assertAnswered(out, expects(PY));
    });
  }
});

describe("aggregated /mcp", () => {
  test("legacy: requests from two upstreams reach one client, each answer goes back to the server that asked", async () => {
    // get-roots-list asks on the upstream's GET stream, which joins the client's GET stream
    // opened before the upstream session existed.
    const table = {
      "everything__trigger-sampling-request": EVERYTHING["trigger-sampling-request"],
      "everything__trigger-elicitation-request": EVERYTHING["trigger-elicitation-request"],
      "everything__get-roots-list": EVERYTHING["get-roots-list"],
      py__ask: PY.ask,
      py__sample: PY.sample,
    };
    const out = await s2cClient("ts-v1", "/mcp", { calls: calls(table) });
    assertAnswered(out, expects(table));
  });
  test("modern: the Python upstream's input_required reaches the client through /mcp", async () => {
    const out = await s2cClient("py", "/mcp", { era: "modern", calls: calls(PY, "py__") });
    assertAnswered(out, expects(PY, "py__"));
  });
});

describe("the gateway owns the ids of relayed requests", () => {
  async function legacySession(path, capabilities) {
    const init = await mcpPost(env.gw, path, rpc(0, "initialize", { protocolVersion: LEGACY, capabilities, clientInfo: { name: "raw", version: "1" } }), { key: env.key });
    assert.equal(init.status, 200, init.text);
    const sid = init.headers.get("mcp-session-id");
    const headers = { "mcp-session-id": sid, "mcp-protocol-version": LEGACY };
    await mcpPost(env.gw, path, { jsonrpc: "2.0", method: "notifications/initialized" }, { key: env.key, headers });
    return headers;
  }
  const post = (path, msg, headers) => mcpPost(env.gw, path, msg, { key: env.key, headers });

  test("a relayed request carries a gateway id; the answer is routed once; unknown or replayed ids are refused", async () => {
    const headers = await legacySession("/mcp/everything", { sampling: {} });
    const s = await openStream(env.gw, "/mcp/everything", {
      method: "POST",
      headers: { authorization: `Bearer ${env.key}`, "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
      body: JSON.stringify(rpc(7, "tools/call", { name: "trigger-sampling-request", arguments: { prompt: "ids" } })),
    });
    try {
      const ask = await s.next((m) => m.method === "sampling/createMessage");
      // server-everything numbers its requests 0, 1, …: the client must see the gateway's ids instead.
      assert.equal(typeof ask.data.id, "string");
      assert.ok(ask.data.id.length >= 16, ask.data.id);
      // Forged ids and responses of another session answer nothing.
      const forged = await post("/mcp/everything", { jsonrpc: "2.0", id: 0, result: { role: "assistant", content: { type: "text", text: "x" }, model: "m" } }, headers);
      assert.equal(forged.status, 400);
      const other = await legacySession("/mcp/everything", { sampling: {} });
      const answer = { jsonrpc: "2.0", id: ask.data.id, result: { role: "assistant", content: { type: "text", text: "rainy" }, model: "raw-model" } };
      assert.equal((await post("/mcp/everything", answer, other)).status, 400);
      assert.equal((await post("/mcp/everything", answer, headers)).status, 202);
      assert.equal((await post("/mcp/everything", answer, headers)).status, 400, "answered once");
      const result = await s.next((m) => m.id === 7);
      assert.ok(result.data.result.content[0].text.includes("rainy"), JSON.stringify(result.data));
    } finally {
      await s.close();
    }
  });

  test("an elicitation answered after longer than the server's idle deadline still completes the call", async () => {
    // The same upstream under a 1 s idle deadline (timeout_ms): a person takes longer to answer.
    const r = await env.gw.admin("POST", "/admin/v1/servers", { slug: "everything-quick", name: "quick", url: env.upstreams.everything.url, timeout_ms: 1_000 });
    assert.equal(r.status, 201, r.text);
    const headers = await legacySession("/mcp/everything-quick", { elicitation: {} });
    const s = await openStream(env.gw, "/mcp/everything-quick", {
      method: "POST",
      headers: { authorization: `Bearer ${env.key}`, "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
      body: JSON.stringify(rpc(8, "tools/call", { name: "trigger-elicitation-request", arguments: {} })),
    });
    try {
      const ask = await s.next((m) => m.method === "elicitation/create");
      // The person thinks for three idle deadlines before answering.
      await new Promise((done) => setTimeout(done, 3_000));
      const answer = { jsonrpc: "2.0", id: ask.data.id, result: { action: "decline" } };
      assert.equal((await post("/mcp/everything-quick", answer, headers)).status, 202);
      const result = await s.next((m) => m.id === 8);
      assert.ok(result.data.result, `the call completed: ${JSON.stringify(result.data)}`);
      assert.match(JSON.stringify(result.data.result), /decline/);
    } finally {
      await s.close();
    }
  });
});
