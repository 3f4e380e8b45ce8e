// measure.mjs — the bench's MCP callers and its timing loop. Every answer is checked (an HTTP 200
// JSON-RPC result with the expected content); a failed request is counted, never timed as a success.

import { performance } from "node:perf_hooks";
import { MODERN, modernMeta } from "../../tests/harness.mjs";
import { cpuMs } from "./procs.mjs";

export const LEGACY = "2025-11-25";
const MESSAGE = "hi";
// Bounds every request; generous, because a loaded soak queues calls for many seconds (a timeout is an error).
const REQUEST_TIMEOUT_MS = Number(process.env.BENCH_REQUEST_TIMEOUT_S || 60) * 1000;

// --- one MCP request ---------------------------------------------------------------------------
/** A reply body (JSON, or a whole SSE stream) as its JSON-RPC messages. */
function messages(contentType, text) {
  if (contentType.startsWith("text/event-stream")) {
    return text
      .split(/\r?\n\r?\n/)
      .map((ev) => ev.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n"))
      .filter((d) => d)
      .map((d) => JSON.parse(d));
  }
  return text ? [JSON.parse(text)] : [];
}

export async function post(url, headers, body) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text };
}

/** The `result` of the JSON-RPC response `id` in a reply; throws on HTTP / JSON-RPC errors. */
export function rpcResult(reply, id) {
  if (reply.status !== 200) throw new Error(`HTTP ${reply.status}: ${reply.text.slice(0, 200)}`);
  let msgs;
  try {
    msgs = messages(reply.headers.get("content-type") || "", reply.text);
  } catch (e) {
    throw new Error(`unparseable body (${e.message}): ${reply.text.slice(0, 200)}`);
  }
  const final = msgs.findLast((m) => m && m.id === id && ("result" in m || "error" in m));
  if (!final) throw new Error(`no JSON-RPC response with id ${id}: ${reply.text.slice(0, 200)}`);
  if (final.error) throw new Error(`JSON-RPC error ${final.error.code}: ${final.error.message}`);
  if (!final.result || typeof final.result !== "object") throw new Error(`no result object: ${reply.text.slice(0, 200)}`);
  return final.result;
}

function checkEcho(reply, id) {
  const result = rpcResult(reply, id);
  if (result.isError) throw new Error(`tool error: ${JSON.stringify(result.content).slice(0, 200)}`);
  const text = result.content?.[0]?.text;
  if (typeof text !== "string" || !text.includes(`echo: ${MESSAGE}`)) throw new Error(`unexpected result: ${JSON.stringify(result).slice(0, 200)}`);
}

let nextId = 1;
const meta = () => modernMeta({ "io.modelcontextprotocol/clientInfo": { name: "bench", version: "1" } });
const bearer = (key) => (key ? { authorization: `Bearer ${key}` } : {});

/** Modern (2026-07-28, stateless) `tools/call {tool} {message:"hi"}`. */
export function modernCall(url, key, tool = "echo") {
  const headers = { "mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": tool, ...bearer(key) };
  return async () => {
    const id = nextId++;
    const msg = { jsonrpc: "2.0", id, method: "tools/call", params: { name: tool, arguments: { message: MESSAGE }, _meta: meta() } };
    checkEcho(await post(url, headers, msg), id);
  };
}

/** A legacy (2025-11-25) session: initialize + notifications/initialized, then a caller of echo on it. */
export async function legacySession(url, key) {
  const init = await post(url, bearer(key), {
    jsonrpc: "2.0",
    id: 0,
    method: "initialize",
    params: { protocolVersion: LEGACY, capabilities: {}, clientInfo: { name: "bench", version: "1" } },
  });
  const sid = init.headers.get("mcp-session-id");
  if (init.status !== 200 || !sid) throw new Error(`initialize at ${url}: HTTP ${init.status}, session ${sid}: ${init.text.slice(0, 300)}`);
  const headers = { ...bearer(key), "mcp-session-id": sid, "mcp-protocol-version": LEGACY };
  const ack = await post(url, headers, { jsonrpc: "2.0", method: "notifications/initialized" });
  if (ack.status !== 202) throw new Error(`notifications/initialized at ${url}: HTTP ${ack.status}: ${ack.text.slice(0, 300)}`);
  return async () => {
    const id = nextId++;
    const msg = { jsonrpc: "2.0", id, method: "tools/call", params: { name: "echo", arguments: { message: MESSAGE } } };
    checkEcho(await post(url, headers, msg), id);
  };
}

/** One modern tools/list page; returns { tools, nextCursor }. */
async function listPage(url, key, cursor) {
  const headers = { "mcp-protocol-version": MODERN, "mcp-method": "tools/list", ...bearer(key) };
  const id = nextId++;
  const params = { ...(cursor ? { cursor } : {}), _meta: meta() };
  const result = rpcResult(await post(url, headers, { jsonrpc: "2.0", id, method: "tools/list", params }), id);
  if (!Array.isArray(result.tools)) throw new Error(`tools/list without a tools array: ${JSON.stringify(result).slice(0, 200)}`);
  const next = result.nextCursor;
  if (next !== undefined && next !== null && (typeof next !== "string" || !next)) throw new Error(`bad nextCursor ${JSON.stringify(next)}`);
  return { tools: result.tools, nextCursor: next ?? null };
}

/** Every tool of a listing (following nextCursor, at most `maxPages` pages). */
export async function listAll(url, key, maxPages = 100) {
  const tools = [];
  let cursor = null;
  for (let page = 0; page < maxPages; page++) {
    const p = await listPage(url, key, cursor);
    tools.push(...p.tools);
    if (!p.nextCursor) return tools;
    cursor = p.nextCursor;
  }
  throw new Error(`more than ${maxPages} tools/list pages`);
}

/**
 * The first page of `/mcp` tools/list, checked: every name is {slug}__{tool} of a registered
 * slug; a page without nextCursor holds all `expected` tools, one with it fewer.
 */
export function listFirstPage(url, key, expected, slugs) {
  const known = new Set(slugs);
  return async () => {
    const { tools, nextCursor } = await listPage(url, key, null);
    if (nextCursor ? !(tools.length > 0 && tools.length < expected) : tools.length !== expected) {
      throw new Error(`first page: ${tools.length} tools, nextCursor ${nextCursor ? "set" : "absent"}, ${expected} registered`);
    }
    for (const t of tools) {
      const i = typeof t?.name === "string" ? t.name.indexOf("__") : -1;
      if (i < 0 || !known.has(t.name.slice(0, i))) throw new Error(`unexpected tool name ${JSON.stringify(t?.name)}`);
    }
    return tools.length;
  };
}

// --- timing --------------------------------------------------------------------------------------
/** Nearest-rank percentile of sorted samples. */
export const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] : Number.NaN);
export const median = (xs) => pct([...xs].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b), 50);

/** Counts failures by message instead of throwing. */
export function recorder() {
  const rec = { errorCount: 0, okCount: 0, errors: new Map() };
  rec.once = async (call) => {
    try {
      await call();
      rec.okCount++;
      return true;
    } catch (e) {
      rec.errorCount++;
      const m = e.name === "TimeoutError" ? `timeout after ${REQUEST_TIMEOUT_MS} ms` : e.message;
      rec.errors.set(m, (rec.errors.get(m) ?? 0) + 1);
      return false;
    }
  };
  return rec;
}

/**
 * One measurement block of a row: `warmup` sequential calls (not timed), then up to `n`
 * sequential calls (latency), then up to `total` calls with `concurrency` in flight (req/s); each
 * of the two phases also stops issuing after `maxS` seconds. CPU of `pids` is read around the two
 * timed phases and divided by the requests they made (per pid); so is `counter` (an async read of
 * a count, e.g. the gateway's storage calls), if given.
 */
export async function measureBlock(call, { warmup, n, total, concurrency, maxS, pids = [], counter }) {
  const rec = recorder();
  for (let i = 0; i < warmup; i++) await rec.once(call);
  const count0 = counter ? await counter() : Number.NaN;
  const cpu0 = pids.map(cpuMs);
  const samples = [];
  let stopAt = performance.now() + maxS * 1000;
  for (let i = 0; i < n && performance.now() < stopAt; i++) {
    const t = performance.now();
    if (await rec.once(call)) samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  let issued = 0;
  let done = 0;
  const t0 = performance.now();
  stopAt = t0 + maxS * 1000;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (issued < total && performance.now() < stopAt) {
        issued++;
        if (await rec.once(call)) done++;
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const requests = samples.length + issued;
  const cpu1 = pids.map(cpuMs);
  const count1 = counter ? await counter() : Number.NaN;
  return {
    perReq: (count1 - count0) / Math.max(1, requests),
    p50: pct(samples, 50),
    p99: pct(samples, 99),
    seq: samples.length,
    rps: done / elapsed,
    conc: issued,
    cpuPerReq: pids.map((_, i) => (cpu1[i] - cpu0[i]) / Math.max(1, requests)),
    errorCount: rec.errorCount,
    errors: rec.errors,
  };
}

/**
 * Two calls measured side by side: `n` rounds, each one call of `a` and one of `b` (in turns
 * first), so that load and drift reach both alike: p50 and p99 of each, and the CPU of each
 * side's processes (`pidsA`, `pidsB`) per call, read from before the calls until `settleMs`
 * after them (work a call leaves behind, such as a queue's consumer, is counted).
 */
export async function measurePaired(a, b, { warmup, n, maxS, pidsA = [], pidsB = [], settleMs = 0 }) {
  const rec = recorder();
  for (let i = 0; i < warmup; i++) {
    await rec.once(a);
    await rec.once(b);
  }
  if (settleMs) await new Promise((r) => setTimeout(r, settleMs));
  const cpu0 = [pidsA.map(cpuMs), pidsB.map(cpuMs)];
  const sides = [
    { call: a, samples: [] },
    { call: b, samples: [] },
  ];
  const stopAt = performance.now() + maxS * 1000;
  let rounds = 0;
  for (; rounds < n && performance.now() < stopAt; rounds++) {
    for (const side of rounds % 2 ? sides : [...sides].reverse()) {
      const t = performance.now();
      if (await rec.once(side.call)) side.samples.push(performance.now() - t);
    }
  }
  if (settleMs) await new Promise((r) => setTimeout(r, settleMs));
  const cpu1 = [pidsA.map(cpuMs), pidsB.map(cpuMs)];
  return {
    rounds,
    sides: sides.map(({ samples }, i) => {
      samples.sort((x, y) => x - y);
      const pids = i ? pidsB : pidsA;
      return {
        p50: pct(samples, 50),
        p99: pct(samples, 99),
        cpuPerReq: pids.map((_, j) => (cpu1[i][j] - cpu0[i][j]) / Math.max(1, rounds)),
      };
    }),
    errorCount: rec.errorCount,
    errors: rec.errors,
  };
}

/** A fresh random order (Fisher–Yates). */
export function shuffled(xs) {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
