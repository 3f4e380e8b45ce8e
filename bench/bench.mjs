// bench.mjs — latency / throughput benchmark of the gateway against direct upstream calls,
// plus the release wasm size. Not a test: run it with `bash scripts/bench.sh` (which builds
// first) or `node bench/bench.mjs` on an existing build/.
//
// Everything runs on 127.0.0.1: the built Worker in Miniflare/workerd (tests/harness.mjs
// setupGateway), the Python SDK upstream and server-everything as child processes. For each
// path it measures `tools/call echo {message:"hi"}`:
//   warm-up (BENCH_WARMUP, 30) sequential requests, then
//   latency: BENCH_N (300) sequential requests on one keep-alive connection -> p50 / p99,
//   throughput: BENCH_TOTAL (600) requests, BENCH_CONCURRENCY (8) in flight -> req/s.
// Every response must be HTTP 200 with a JSON-RPC result (no error, no isError) echoing the
// message; failures are counted and printed, and make the exit code 1.
// All child processes are stopped at the end, on error, on SIGINT/SIGTERM and on the
// overall time limit (BENCH_TIMEOUT_S, 300).

import diagnostics_channel from "node:diagnostics_channel";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { gzipSync } from "node:zlib";
import { BUILD, MODERN, modernMeta, setupGateway } from "../tests/harness.mjs";

const int = (name, dflt) => {
  const v = process.env[name];
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`bench: ${name} must be a positive integer, got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return n;
};
const N = int("BENCH_N", 300);
const WARMUP = int("BENCH_WARMUP", 30);
const TOTAL = int("BENCH_TOTAL", 600);
const CONCURRENCY = int("BENCH_CONCURRENCY", 8);
const TIMEOUT_S = int("BENCH_TIMEOUT_S", 300);
const REQUEST_TIMEOUT_MS = 30_000;
const LEGACY = "2025-11-25";
const MESSAGE = "hi";

// --- cleanup: stop every process we started, whatever happens ---------------------------------
let env = null;
let stopping = null;
function stopAll() {
  stopping ??= (async () => {
    if (env) await env.stop().catch((e) => console.error(`bench: stop failed: ${e.message}`));
  })();
  return stopping;
}
async function die(code, msg) {
  if (msg) console.error(msg);
  await stopAll();
  process.exit(code);
}
for (const sig of ["SIGINT", "SIGTERM"]) process.once(sig, () => die(130, `bench: ${sig}, stopping`));
const watchdog = setTimeout(() => die(2, `bench: over the ${TIMEOUT_S} s limit, stopping`), TIMEOUT_S * 1000);
watchdog.unref();

// --- connection accounting (undici publishes one event per new TCP connection) ---------------
let connections = 0;
diagnostics_channel.subscribe("undici:client:connected", () => connections++);

// --- one MCP request ---------------------------------------------------------------------------
/** Parse a reply body (JSON, or SSE: the whole stream) into its JSON-RPC messages. */
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

async function post(url, headers, body) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text(); // the whole body, SSE included
  return { status: res.status, headers: res.headers, text };
}

/** Throws unless the reply is a successful JSON-RPC result for `id` echoing MESSAGE. */
function checkEcho(reply, id) {
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
  if (final.result?.isError) throw new Error(`tool error: ${JSON.stringify(final.result.content).slice(0, 200)}`);
  const text = final.result?.content?.[0]?.text;
  if (typeof text !== "string" || !text.toLowerCase().includes(`echo: ${MESSAGE}`)) {
    throw new Error(`unexpected result: ${JSON.stringify(final.result).slice(0, 200)}`);
  }
}

let nextId = 1;
const echoCall = (id) => ({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "echo", arguments: { message: MESSAGE } } });

/** A modern-era (2026-07-28) caller: stateless, the protocol in headers and `_meta`. */
function modernTarget(url, key) {
  const headers = {
    "mcp-protocol-version": MODERN,
    "mcp-method": "tools/call",
    "mcp-name": "echo",
    ...(key ? { authorization: `Bearer ${key}` } : {}),
  };
  return async () => {
    const id = nextId++;
    const msg = echoCall(id);
    msg.params._meta = modernMeta({ "io.modelcontextprotocol/clientInfo": { name: "bench", version: "1" } });
    checkEcho(await post(url, headers, msg), id);
  };
}

/** A legacy-era (2025-11-25) caller: initialize + notifications/initialized once, then calls on the session. */
async function legacyTarget(url, key) {
  const auth = key ? { authorization: `Bearer ${key}` } : {};
  const init = await post(url, auth, {
    jsonrpc: "2.0",
    id: 0,
    method: "initialize",
    params: { protocolVersion: LEGACY, capabilities: {}, clientInfo: { name: "bench", version: "1" } },
  });
  const sid = init.headers.get("mcp-session-id");
  if (init.status !== 200 || !sid) throw new Error(`initialize at ${url}: HTTP ${init.status}, session ${sid}: ${init.text.slice(0, 300)}`);
  const headers = { ...auth, "mcp-session-id": sid, "mcp-protocol-version": LEGACY };
  const ack = await post(url, headers, { jsonrpc: "2.0", method: "notifications/initialized" });
  if (ack.status !== 202) throw new Error(`notifications/initialized at ${url}: HTTP ${ack.status}: ${ack.text.slice(0, 300)}`);
  return async () => {
    const id = nextId++;
    checkEcho(await post(url, headers, echoCall(id)), id);
  };
}

// --- measurement -------------------------------------------------------------------------------
/** Nearest-rank percentile of sorted samples. */
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];

async function measure(call) {
  const errors = new Map(); // message -> count
  let errorCount = 0;
  const once = async () => {
    try {
      await call();
      return true;
    } catch (e) {
      errorCount++;
      const m = e.name === "TimeoutError" ? `timeout after ${REQUEST_TIMEOUT_MS} ms` : e.message;
      errors.set(m, (errors.get(m) ?? 0) + 1);
      return false;
    }
  };

  for (let i = 0; i < WARMUP; i++) await once();

  const conn0 = connections;
  const samples = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await once();
    samples.push(performance.now() - t);
  }
  const latencyConns = connections - conn0;
  samples.sort((a, b) => a - b);

  const conn1 = connections;
  let issued = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, TOTAL) }, async () => {
      while (issued < TOTAL) {
        issued++;
        await once();
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  return {
    p50: pct(samples, 50),
    p99: pct(samples, 99),
    mean: samples.reduce((a, b) => a + b, 0) / samples.length,
    rps: TOTAL / elapsed,
    elapsed,
    latencyConns,
    throughputConns: connections - conn1,
    errorCount,
    errors,
  };
}

// --- output --------------------------------------------------------------------------------------
function table(header, rows, align) {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const fmt = (r) => r.map((c, i) => (align[i] === "l" ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join("  ");
  return [fmt(header), w.map((n) => "-".repeat(n)).join("  "), ...rows.map(fmt)].join("\n");
}
const ms = (x) => x.toFixed(2);
const kib = (b) => `${(b / 1024).toFixed(1)} KiB`;
const mib = (b) => `${(b / 1024 / 1024).toFixed(2)} MiB`;

// --- main ----------------------------------------------------------------------------------------
async function main() {
  const started = performance.now();
  console.log(`bench: starting gateway (Miniflare/workerd), Python upstream and server-everything on 127.0.0.1`);
  env = await setupGateway({ everything: true, py: true });
  const gw = env.gw.url;
  const py = env.upstreams.py.url;
  const ev = env.upstreams.everything.url;
  console.log(`bench: gateway ${gw}   py ${py}   everything ${ev}`);
  console.log(
    `bench: tools/call echo {message:"${MESSAGE}"} — warm-up ${WARMUP}, latency ${N} sequential, ` +
      `throughput ${TOTAL} requests at concurrency ${CONCURRENCY}\n`,
  );

  const paths = [
    { key: "a", label: "direct   py          modern", make: () => modernTarget(py) },
    { key: "b", label: "gateway  /mcp/py     modern", make: () => modernTarget(`${gw}/mcp/py`, env.key) },
    { key: "c", label: "direct   everything  legacy", make: () => legacyTarget(ev) },
    { key: "d", label: "gateway  /mcp/everything legacy", make: () => legacyTarget(`${gw}/mcp/everything`, env.key) },
    { key: "e", label: "gateway  /mcp/everything modern", make: () => modernTarget(`${gw}/mcp/everything`, env.key) },
  ];
  const results = {};
  for (const p of paths) {
    process.stdout.write(`bench: (${p.key}) ${p.label.replace(/\s+/g, " ")} ... `);
    const call = await p.make();
    const r = await measure(call);
    results[p.key] = r;
    console.log(`${r.errorCount} errors, ${r.rps.toFixed(0)} req/s`);
  }

  console.log("\n== tools/call echo: latency (sequential, one keep-alive connection) and throughput ==\n");
  console.log(
    table(
      ["path", "p50 ms", "p99 ms", "mean ms", "req/s", `conc`, "new conns (lat/thr)", "errors"],
      paths.map((p) => {
        const r = results[p.key];
        return [
          `(${p.key}) ${p.label}`,
          ms(r.p50),
          ms(r.p99),
          ms(r.mean),
          r.rps.toFixed(0),
          CONCURRENCY,
          `${r.latencyConns}/${r.throughputConns}`,
          `${r.errorCount}/${WARMUP + N + TOTAL}`,
        ];
      }),
      ["l", "r", "r", "r", "r", "r", "r", "r"],
    ),
  );

  console.log("\n== gateway / direct (latency ratio > 1 = gateway slower; req/s ratio < 1 = gateway slower) ==\n");
  const pairs = [
    ["b", "a", "modern gateway -> modern upstream (py)"],
    ["d", "c", "legacy gateway -> legacy upstream (everything)"],
    ["e", "c", "modern gateway -> legacy upstream (everything, translated)"],
  ];
  console.log(
    table(
      ["pair", "what", "p50 ratio", "p99 ratio", "req/s ratio", "p50 overhead ms"],
      pairs.map(([g, d, what]) => {
        const G = results[g];
        const D = results[d];
        return [
          `${g} vs ${d}`,
          what,
          `${(G.p50 / D.p50).toFixed(2)}x`,
          `${(G.p99 / D.p99).toFixed(2)}x`,
          `${(G.rps / D.rps).toFixed(2)}x`,
          `+${ms(G.p50 - D.p50)}`,
        ];
      }),
      ["l", "l", "r", "r", "r", "r"],
    ),
  );

  const wasm = readFileSync(join(BUILD, "index_bg.wasm"));
  const gz = gzipSync(wasm, { level: 9 });
  console.log("\n== release wasm (build/index_bg.wasm) ==\n");
  console.log(
    table(
      ["", "bytes", "KiB", "MiB"],
      [
        ["raw", wasm.length, kib(wasm.length), mib(wasm.length)],
        ["gzip -9", gz.length, kib(gz.length), mib(gz.length)],
      ],
      ["l", "r", "r", "r"],
    ),
  );

  let totalErrors = 0;
  for (const p of paths) {
    const r = results[p.key];
    totalErrors += r.errorCount;
    for (const [m, n] of r.errors) console.log(`error (${p.key}) x${n}: ${m}`);
  }
  console.log(
    `\nbench: ${totalErrors === 0 ? "all responses were successful JSON-RPC results" : `${totalErrors} FAILED requests — numbers are not meaningful`}` +
      ` (${((performance.now() - started) / 1000).toFixed(1)} s)`,
  );
  return totalErrors === 0 ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (e) {
  console.error(`\nbench: failed: ${e.stack ?? e}`);
  code = 1;
} finally {
  await stopAll();
}
process.exit(code);
