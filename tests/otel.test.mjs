// OpenTelemetry export: the built Worker sends each MCP request's spans to a real OTLP/HTTP
// receiver (tests/otlp_receiver.py, which decodes every export strictly with the official
// OpenTelemetry protocol classes), in front of the real Python SDK upstream, whose `whoami` tool
// answers the HTTP headers it received — so the CLIENT span can be matched with the
// `traceparent` the upstream actually saw.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ROOT, final, mcpPost, setupGateway, startProcess } from "./harness.mjs";

// The Worker's console warnings and errors (the harness copies them to stderr as
// `[worker:LEVEL] …`), collected to check that no Analytics Engine write failed.
const workerLogs = [];
const writeStderr = process.stderr.write.bind(process.stderr);
process.stderr.write = (chunk, ...rest) => {
  if (String(chunk).startsWith("[worker:")) workerLogs.push(String(chunk));
  return writeStderr(chunk, ...rest);
};

const OTLP_SECRET = "otlp-secret-" + randomBytes(8).toString("hex");
// Bounds the wait for an export: it is sent after the response, beside it.
const EXPORT_WAIT_MS = 20_000;

let env;
let receiver;

before(async () => {
  const p = await startProcess(join(ROOT, ".venv/bin/python"), ["tests/otlp_receiver.py", "0"], {
    readyLine: /listening on (\d+)/,
  });
  receiver = { url: `http://127.0.0.1:${p.match[1]}`, stop: p.stop };
  try {
    env = await setupGateway({
      py: true,
      vars: {
        // The base URL: the gateway appends v1/traces, as OpenTelemetry SDKs do.
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_HEADERS: `Authorization=Bearer%20${OTLP_SECRET},x-tenant=acme`,
      },
    });
  } catch (e) {
    await receiver.stop();
    throw e;
  }
});
after(async () => {
  await Promise.allSettled([env?.stop(), receiver?.stop()]);
});

const hex = (n) => randomBytes(n).toString("hex");

async function received() {
  const r = await fetch(receiver.url + "/received");
  return r.json();
}

/** The first accepted export holding a span of `traceId`, waiting for it (bounded). */
async function exportOf(traceId) {
  const deadline = Date.now() + EXPORT_WAIT_MS;
  while (Date.now() < deadline) {
    for (const x of await received()) {
      assert.equal(x.error, undefined, `the receiver refused an export: ${x.error}`);
      const spans = x.request.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
      if (spans.some((s) => s.traceId === traceId)) return { ...x, spans };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no export with trace ${traceId} within ${EXPORT_WAIT_MS} ms`);
}

const attrs = (span) => Object.fromEntries((span.attributes ?? []).map((a) => [a.key, a.value]));

/** A modern-era tools/call on /mcp/py carrying the agent's trace context in the header. */
async function call(name, args, traceparent) {
  const reply = await mcpPost(
    env.gw,
    "/mcp/py",
    { jsonrpc: "2.0", id: 41, method: "tools/call", params: { name, arguments: args } },
    { key: env.key, modern: true, headers: { traceparent } },
  );
  assert.equal(reply.status, 200, reply.text);
  return final(reply);
}

test("a tools/call yields a SERVER span in the agent's trace and a CLIENT span the upstream saw as its parent", async () => {
  const traceId = hex(16);
  const agentSpan = hex(8);
  const res = await call("whoami", {}, `00-${traceId}-${agentSpan}-01`);
  const seen = JSON.parse(res.result.content[0].text);
  const x = await exportOf(traceId);

  // One POST for the request, JSON, with the configured headers (the auth secret arrives).
  assert.equal(x.headers["content-type"], "application/json");
  assert.equal(x.headers.authorization, `Bearer ${OTLP_SECRET}`);
  assert.equal(x.headers["x-tenant"], "acme");
  const resource = Object.fromEntries(x.request.resourceSpans[0].resource.attributes.map((a) => [a.key, a.value]));
  assert.deepEqual(resource["service.name"], { stringValue: "mcp-gateway" });

  const server = x.spans.find((s) => s.kind === "SPAN_KIND_SERVER");
  const clients = x.spans.filter((s) => s.kind === "SPAN_KIND_CLIENT");
  assert.ok(server, JSON.stringify(x.spans));
  assert.equal(clients.length, 1, JSON.stringify(x.spans));
  const [client] = clients;
  assert.equal(server.traceId, traceId);
  assert.equal(server.parentSpanId, agentSpan, "the agent's span is the SERVER span's parent");
  assert.notEqual(server.spanId, agentSpan);
  assert.equal(server.name, "tools/call whoami");
  assert.equal(client.traceId, traceId);
  assert.equal(client.parentSpanId, server.spanId);
  assert.equal(client.name, "tools/call whoami");
  // The upstream received the CLIENT span's id as its parent.
  assert.equal(seen.traceparent, `00-${traceId}-${client.spanId}-01`);
  assert.ok(BigInt(server.endTimeUnixNano) >= BigInt(server.startTimeUnixNano));
  assert.ok(BigInt(client.startTimeUnixNano) >= BigInt(server.startTimeUnixNano));

  const s = attrs(server);
  assert.deepEqual(s["mcp.method.name"], { stringValue: "tools/call" });
  assert.deepEqual(s["gen_ai.tool.name"], { stringValue: "whoami" });
  assert.deepEqual(s["gen_ai.operation.name"], { stringValue: "execute_tool" });
  assert.deepEqual(s["jsonrpc.request.id"], { stringValue: "41" });
  assert.deepEqual(s["mcp.protocol.version"], { stringValue: "2026-07-28" });
  assert.equal(s["error.type"], undefined);
  assert.equal(server.status, undefined, "success leaves the status unset");
  const c = attrs(client);
  assert.deepEqual(c["server.address"], { stringValue: "127.0.0.1" });
  assert.deepEqual(c["server.port"], { intValue: String(env.upstreams.py.port) });
  assert.deepEqual(c["mcp.method.name"], { stringValue: "tools/call" });
  assert.deepEqual(c["http.response.status_code"], { intValue: "200" });

  // Nothing secret in any span: not the agent's key, not the export's own header.
  const body = JSON.stringify(x.request);
  assert.ok(!body.includes(env.key), "the agent's API key is in a span");
  assert.ok(!body.includes(OTLP_SECRET), "the OTLP header is in a span");
});

test("a tool error sets error.type tool_error and an ERROR status; arguments are exported only under full capture", async () => {
  const canary = "canary-" + hex(6);
  // echo without its required argument: the SDK answers a result with isError.
  const traceId = hex(16);
  const res = await call("echo", { unexpected: canary }, `00-${traceId}-${hex(8)}-01`);
  assert.equal(res.result?.isError, true, JSON.stringify(res));
  const x = await exportOf(traceId);
  const server = x.spans.find((s) => s.kind === "SPAN_KIND_SERVER");
  assert.deepEqual(attrs(server)["error.type"], { stringValue: "tool_error" });
  assert.equal(server.status?.code, "STATUS_CODE_ERROR");
  assert.equal(attrs(server)["gen_ai.tool.call.arguments"], undefined, "keys capture (the default) exports no arguments");
  assert.ok(!JSON.stringify(x.request).includes(canary));

  const r = await env.gw.admin("PATCH", "/admin/v1/servers/py", { capture: "full" });
  assert.equal(r.status, 200, r.text);
  const traceFull = hex(16);
  await call("echo", { message: canary }, `00-${traceFull}-${hex(8)}-01`);
  const full = await exportOf(traceFull);
  const args = attrs(full.spans.find((s) => s.kind === "SPAN_KIND_SERVER"))["gen_ai.tool.call.arguments"];
  assert.deepEqual(args, { kvlistValue: { values: [{ key: "message", value: { stringValue: canary } }] } });
});

test("a trace the agent did not sample is not exported; a request without trace context starts one", async () => {
  const unsampled = hex(16);
  await call("echo", { message: "quiet" }, `00-${unsampled}-${hex(8)}-00`);
  // A later sampled request's export arriving proves the earlier one had its chance.
  const later = hex(16);
  await call("echo", { message: "loud" }, `00-${later}-${hex(8)}-01`);
  await exportOf(later);
  const all = await received();
  assert.ok(!JSON.stringify(all).includes(unsampled), "an unsampled trace was exported");

  const before = (await received()).length;
  const reply = await mcpPost(
    env.gw,
    "/mcp/py",
    { jsonrpc: "2.0", id: 42, method: "tools/call", params: { name: "whoami", arguments: {} } },
    { key: env.key, modern: true },
  );
  const seen = JSON.parse(final(reply).result.content[0].text);
  const [, traceId, parent] = seen.traceparent.split("-");
  const x = await exportOf(traceId);
  assert.ok((await received()).length > before);
  const server = x.spans.find((s) => s.kind === "SPAN_KIND_SERVER");
  assert.equal(server.parentSpanId, undefined, "the gateway's span is the root");
  assert.equal(x.spans.find((s) => s.kind === "SPAN_KIND_CLIENT").spanId, parent);
});

test("every request also writes its Analytics Engine data point (USAGE) without error", async () => {
  // Miniflare's local USAGE binding accepts points and drops them, so what a point holds is
  // checked natively (observe::analytics); here, that writing one never fails a request or
  // logs a failure. The OTLP export arriving proves the event went through every sink (the
  // Analytics Engine sink runs first, synchronously).
  const traceId = hex(16);
  const res = await call("echo", { message: "counted" }, `00-${traceId}-${hex(8)}-01`);
  assert.equal(res.result?.content?.[0]?.text, "echo: counted");
  await exportOf(traceId);
  assert.deepEqual(
    workerLogs.filter((l) => /analytics engine/i.test(l)),
    [],
  );
});

test("a legacy session's tools/call is exported from the session's Durable Object, with its session id", async () => {
  const legacy = { "mcp-protocol-version": "2025-11-25" };
  const init = await mcpPost(
    env.gw,
    "/mcp/py",
    {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "otel-test", version: "1" } },
    },
    { key: env.key },
  );
  assert.equal(init.status, 200, init.text);
  const session = init.headers.get("mcp-session-id");
  assert.ok(session);
  const headers = { ...legacy, "mcp-session-id": session };
  const ack = await mcpPost(env.gw, "/mcp/py", { jsonrpc: "2.0", method: "notifications/initialized" }, { key: env.key, headers });
  assert.equal(ack.status, 202, ack.text);
  const traceId = hex(16);
  const agentSpan = hex(8);
  const reply = await mcpPost(
    env.gw,
    "/mcp/py",
    { jsonrpc: "2.0", id: "call-7", method: "tools/call", params: { name: "whoami", arguments: {} } },
    { key: env.key, headers: { ...headers, traceparent: `00-${traceId}-${agentSpan}-01` } },
  );
  assert.equal(reply.status, 200, reply.text);
  const seen = JSON.parse(final(reply).result.content[0].text);
  const x = await exportOf(traceId);
  const server = x.spans.find((s) => s.kind === "SPAN_KIND_SERVER");
  const client = x.spans.find((s) => s.kind === "SPAN_KIND_CLIENT" && s.parentSpanId === server.spanId);
  assert.equal(server.parentSpanId, agentSpan);
  const s = attrs(server);
  assert.deepEqual(s["mcp.session.id"], { stringValue: session });
  assert.deepEqual(s["mcp.protocol.version"], { stringValue: "2025-11-25" });
  assert.deepEqual(s["jsonrpc.request.id"], { stringValue: "call-7" });
  assert.ok(client, JSON.stringify(x.spans));
  assert.equal(seen.traceparent, `00-${traceId}-${client.spanId}-01`);
});
