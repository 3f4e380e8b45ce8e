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
//
// The aggregated endpoint `/mcp` is measured the same way:
//   (f) `tools/call py__echo` through `/mcp` (modern), compared with (a) direct and (b) /mcp/py;
//   `tools/list` on `/mcp` (modern) with 1, 5 and 20 registered servers (`everything` is
//   removed first; servers 2..20 are the same Python upstream URL under other slugs — listing
//   reads the catalog in D1 and never contacts an upstream), each with
//     warm: repeated tools/list on an unchanged catalog (warm-up, latency, throughput as above);
//     cold: the first tools/list after the catalog changed — BENCH_COLD (30) times, bump the
//       catalog generation (PATCH /admin/v1/servers/{slug} status disabled, then active) and
//       time the very next tools/list (latency); throughput from BENCH_COLD bursts of
//       BENCH_CONCURRENCY concurrent tools/list, each burst right after a bump (req/s =
//       listings / time inside the bursts; the admin calls are not counted).
//   Every tools/list answer must be a JSON-RPC result listing exactly (servers x the tools the
//   Python upstream lists directly) tools named {slug}__{tool} (nextCursor pages are followed).
// Authentication cost per request, `tools/list` on `/mcp` (modern) after py2..py20 are removed
// again (catalog: `py` only), every answer checked as above (1 server x its tools):
//   (k1) gateway API key of the default agent (the key every row above uses);
//   (k2) gateway API key of a user in an org / workspace / team, with grants at org, team and
//        user level that together show all of `py` (identity + grants path, same visible tools);
//   (j1) a JWT from a real OpenID provider (tests/idp, harness startOidcProvider) registered as
//        the org's identity provider (POST /admin/v1/identity-providers, group "platform" -> the
//        team), the same token reused: after its first use the per-isolate verified-token cache
//        skips signature verification and provisioning;
//   each with warm-up and latency like the other warm rows, but the latency samples interleaved
//   (rounds of one request per row, rotating order), then throughput per row;
//   (j0) cold verification: BENCH_JWT_FRESH (20) fresh tokens (op.token(), not timed), the first
//        use of each timed — token 1 also fetches discovery + JWKS (cached per isolate after it);
//        then a second use of each, for comparison.
// Upstream credentials (the vault), `tools/call echo` on `/mcp/{slug}` (modern): two fresh
// instances of the Python upstream, one plain, one started with --require-header X-API-Key=<random>,
// registered as
//   (v0) `vnone`: no credentials (kind none: nothing in KV — the per-request KV lookup misses);
//   (v1) `vkeyed`: `headers` credentials {"X-API-Key": …} sealed in KV (AES-256-GCM under
//        VAULT_KEYS, which the gateway gets for this run) — each request reads, decrypts and parses
//        the sealed value and adds the header (the upstream answers 401 without it: checked first);
//   warm-up and latency interleaved like the authentication rows, then throughput per row; the
//   difference v1 - v0 is the decrypt + header cost (also as the median of per-round differences).
// All child processes are stopped at the end, on error, on SIGINT/SIGTERM and on the
// overall time limit (BENCH_TIMEOUT_S, 300).

import diagnostics_channel from "node:diagnostics_channel";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { gzipSync } from "node:zlib";
import { randomBytes } from "node:crypto";
import { BUILD, MODERN, modernMeta, setupGateway, startOidcProvider, startPyServer } from "../tests/harness.mjs";

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
const COLD = int("BENCH_COLD", 30);
const TIMEOUT_S = int("BENCH_TIMEOUT_S", 300);
const JWT_FRESH = int("BENCH_JWT_FRESH", 20);
const JWT_AUDIENCE = "https://gateway.test/mcp";
const REQUEST_TIMEOUT_MS = 30_000;
const LEGACY = "2025-11-25";
const MESSAGE = "hi";
const LIST_SIZES = [1, 5, 20]; // registered servers for the /mcp tools/list measurement
const MAX_LIST_PAGES = 50; // bound on nextCursor pages followed per tools/list
const VAULT_KEYS = `k1:${randomBytes(32).toString("base64")}`; // the gateway's master key for this run
const UPSTREAM_API_KEY = `bench-upstream-key-${randomBytes(12).toString("hex")}`; // what (v1)'s upstream requires

// --- cleanup: stop every process we started, whatever happens ---------------------------------
let env = null;
let op = null; // the OpenID provider of the authentication section
const vaultUps = []; // the Python upstreams of the vault section
let stopping = null;
function stopAll() {
  stopping ??= (async () => {
    await Promise.all([
      env?.stop().catch((e) => console.error(`bench: stop failed: ${e.message}`)),
      op?.stop().catch((e) => console.error(`bench: stopping the OpenID provider failed: ${e.message}`)),
      ...vaultUps.map((u) => u.stop().catch((e) => console.error(`bench: stopping a Python upstream failed: ${e.message}`))),
    ]);
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

/** The `result` of the JSON-RPC response for `id` in a reply; throws on HTTP / JSON-RPC errors. */
function rpcResult(reply, id) {
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

/** Throws unless the reply is a successful JSON-RPC result for `id` echoing MESSAGE. */
function checkEcho(reply, id) {
  const result = rpcResult(reply, id);
  if (result.isError) throw new Error(`tool error: ${JSON.stringify(result.content).slice(0, 200)}`);
  const text = result.content?.[0]?.text;
  if (typeof text !== "string" || !text.toLowerCase().includes(`echo: ${MESSAGE}`)) {
    throw new Error(`unexpected result: ${JSON.stringify(result).slice(0, 200)}`);
  }
}

let nextId = 1;
const echoCall = (id, name = "echo") => ({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: { message: MESSAGE } } });

/** A modern-era (2026-07-28) caller: stateless, the protocol in headers and `_meta`. */
function modernTarget(url, key, tool = "echo") {
  const headers = {
    "mcp-protocol-version": MODERN,
    "mcp-method": "tools/call",
    "mcp-name": tool,
    ...(key ? { authorization: `Bearer ${key}` } : {}),
  };
  return async () => {
    const id = nextId++;
    const msg = echoCall(id, tool);
    msg.params._meta = modernMeta({ "io.modelcontextprotocol/clientInfo": { name: "bench", version: "1" } });
    checkEcho(await post(url, headers, msg), id);
  };
}

/**
 * A modern-era tools/list: follows nextCursor (at most MAX_LIST_PAGES pages) and returns the
 * tools of all pages. Throws on any HTTP / JSON-RPC error or a malformed page.
 */
async function listAll(url, key) {
  const headers = {
    "mcp-protocol-version": MODERN,
    "mcp-method": "tools/list",
    ...(key ? { authorization: `Bearer ${key}` } : {}),
  };
  const tools = [];
  let cursor;
  for (let page = 0; ; page++) {
    if (page >= MAX_LIST_PAGES) throw new Error(`more than ${MAX_LIST_PAGES} tools/list pages`);
    const id = nextId++;
    const params = { ...(cursor ? { cursor } : {}), _meta: modernMeta({ "io.modelcontextprotocol/clientInfo": { name: "bench", version: "1" } }) };
    const result = rpcResult(await post(url, headers, { jsonrpc: "2.0", id, method: "tools/list", params }), id);
    if (!Array.isArray(result.tools)) throw new Error(`tools/list result without a tools array: ${JSON.stringify(result).slice(0, 200)}`);
    tools.push(...result.tools);
    cursor = result.nextCursor;
    if (cursor === undefined || cursor === null) return { tools, pages: page + 1 };
    if (typeof cursor !== "string" || !cursor) throw new Error(`bad nextCursor ${JSON.stringify(cursor)}`);
  }
}

/** tools/list on `/mcp` that must list exactly `expected` tools, each named {slug}__{tool} of a registered slug. */
function listTarget(url, key, expected, slugs) {
  const known = new Set(slugs);
  return async () => {
    const { tools } = await listAll(url, key);
    if (tools.length !== expected) throw new Error(`expected ${expected} tools, got ${tools.length}`);
    for (const t of tools) {
      const i = typeof t?.name === "string" ? t.name.indexOf("__") : -1;
      if (i < 0 || !known.has(t.name.slice(0, i))) throw new Error(`unexpected tool name ${JSON.stringify(t?.name)}`);
    }
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

/** Runs `call`, counting a failure into `errors` (message -> count); true on success. */
function recorder() {
  const rec = { errorCount: 0, errors: new Map() };
  rec.once = async (call) => {
    try {
      await call();
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

async function measure(call) {
  const rec = recorder();
  const once = () => rec.once(call);

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
    errorCount: rec.errorCount,
    errors: rec.errors,
    requests: WARMUP + N + TOTAL,
  };
}

/**
 * Like `measure`, for several calls whose small differences matter: warm-up WARMUP of each, then
 * N rounds of one sequential request per call (the order rotating each round), so drift and
 * warm-up effects hit every call alike; then throughput as in `measure`, one call after another.
 * New connections during the interleaved latency phase are shared: every result reports them all.
 */
async function measureInterleaved(calls) {
  const recs = calls.map(() => recorder());
  for (let i = 0; i < WARMUP; i++) for (let k = 0; k < calls.length; k++) await recs[k].once(calls[k]);
  const conn0 = connections;
  const samples = calls.map(() => []);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < calls.length; j++) {
      const k = (i + j) % calls.length;
      const t = performance.now();
      await recs[k].once(calls[k]);
      samples[k].push(performance.now() - t);
    }
  }
  const latencyConns = connections - conn0;
  const out = [];
  for (let k = 0; k < calls.length; k++) {
    const sorted = [...samples[k]].sort((a, b) => a - b);
    const conn1 = connections;
    let issued = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: Math.min(CONCURRENCY, TOTAL) }, async () => {
        while (issued < TOTAL) {
          issued++;
          await recs[k].once(calls[k]);
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    out.push({
      p50: pct(sorted, 50),
      p99: pct(sorted, 99),
      mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
      rps: TOTAL / elapsed,
      elapsed,
      latencyConns,
      throughputConns: connections - conn1,
      errorCount: recs[k].errorCount,
      errors: recs[k].errors,
      requests: WARMUP + N + TOTAL,
      rounds: samples[k], // latency samples in round order (round i of every call is comparable)
    });
  }
  return out;
}

/**
 * Cold-catalog tools/list: `bump()` changes the catalog (an admin call); latency = the very
 * next tools/list, COLD times; throughput = COLD bursts of CONCURRENCY concurrent tools/list,
 * each right after a bump, over the time spent inside the bursts.
 */
async function measureCold(bump, call) {
  const rec = recorder();
  const samples = [];
  for (let i = 0; i < COLD; i++) {
    if (!(await rec.once(bump))) continue;
    const t = performance.now();
    await rec.once(call);
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  let busy = 0;
  let listed = 0;
  for (let i = 0; i < COLD; i++) {
    if (!(await rec.once(bump))) continue;
    const t = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, () => rec.once(call)));
    busy += performance.now() - t;
    listed += CONCURRENCY;
  }
  const nan = Number.NaN;
  return {
    p50: samples.length ? pct(samples, 50) : nan,
    p99: samples.length ? pct(samples, 99) : nan,
    mean: samples.length ? samples.reduce((a, b) => a + b, 0) / samples.length : nan,
    rps: busy > 0 ? listed / (busy / 1000) : nan,
    samples: samples.length,
    listed,
    errorCount: rec.errorCount,
    errors: rec.errors,
    requests: COLD * (1 + CONCURRENCY) + 2 * COLD, // listings + bumps (2 PATCHes each)
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

// --- authentication cost -------------------------------------------------------------------------
/**
 * Per-request cost of authentication on `/mcp` tools/list (modern), with the catalog reduced to
 * `py`: a default-agent API key, a user's API key (identity + grants), a reused JWT (verified-token
 * cache hit), and the first use of fresh JWTs (signature verification + JIT provisioning; the first
 * one also fetches discovery + JWKS).
 */
async function measureAuth(admin, py, directTools, slugs) {
  const gw = env.gw.url;
  // Back to one server: remove py2..pyN, so every row lists the same 1 x directTools tools.
  for (const slug of slugs.filter((x) => x !== "py")) await admin("DELETE", `/admin/v1/servers/${slug}`, undefined, 204);
  const left = (await admin("GET", "/admin/v1/servers", undefined, 200)).body.servers.map((x) => x.slug);
  if (left.length !== 1 || left[0] !== "py") throw new Error(`expected only py registered, the admin API lists ${left.join(", ")}`);

  process.stdout.write(`bench: (auth) starting the OpenID provider, creating org / workspace / team / user / grants ... `);
  op = await startOidcProvider();
  const mk = async (path, body) => (await admin("POST", path, body, 201)).body.id;
  const org = await mk("/admin/v1/orgs", { name: "Bench Org" });
  const ws = await mk("/admin/v1/workspaces", { name: "Bench WS", parent_id: org });
  const team = await mk("/admin/v1/teams", { name: "Platform", parent_id: ws });
  const user = await mk("/admin/v1/users", { name: "Bench User", parent_id: org, email: "bench@acme.test" });
  await admin("POST", `/admin/v1/teams/${team}/members`, { principal_id: user }, 204);
  const userKey = (await admin("POST", "/admin/v1/api-keys", { name: "bench-user", principal_id: user }, 201)).body.key;
  // Grants at three levels; together they show every tool of py (the same list the default agent sees).
  const grants = [
    { subject_kind: "team", subject_id: team, resource: "py", effect: "allow" },
    { subject_kind: "org", subject_id: org, resource: "py*", tool: "ech?", effect: "allow" },
    { subject_kind: "user", subject_id: user, resource: "py", tool: "no-such-tool", effect: "deny" },
  ];
  for (const g of grants) await admin("POST", "/admin/v1/grants", g, 201);
  await admin("POST", "/admin/v1/identity-providers", { org_id: org, issuer: op.issuer, audiences: [JWT_AUDIENCE], group_teams: { platform: team } }, 201);
  console.log(`issuer ${op.issuer}`);

  const url = `${gw}/mcp`;
  const check = (key) => listTarget(url, key, directTools, ["py"]);

  // (j0) cold verification first, so that token 1 is the isolate's first JWT (JWKS not cached yet).
  process.stdout.write(`bench: (j0) first use of ${JWT_FRESH} fresh JWTs, then a second use of each ... `);
  const rec = recorder();
  const first = [];
  const second = [];
  for (let i = 0; i < JWT_FRESH; i++) {
    const token = await op.token(JWT_AUDIENCE); // not timed
    const call = check(token);
    let t = performance.now();
    if (await rec.once(call)) first.push(performance.now() - t);
    t = performance.now();
    if (await rec.once(call)) second.push(performance.now() - t);
  }
  console.log(`${rec.errorCount} errors`);
  const provisioned = (await admin("GET", `/admin/v1/users?parent_id=${org}`, undefined, 200)).body.users.filter((u) => u.external_subject);

  const reused = await op.token(JWT_AUDIENCE);
  const rows = [
    { key: "k1", label: "API key mcpgw_…, default agent", what: "agt_default, its default grant (every row above uses it)", call: check(env.key) },
    { key: "k2", label: "API key mcpgw_…, user in org/ws/team", what: `user ${user}: ${grants.length} grants (team allow py, org allow py*/ech?, user deny py/no-such-tool)`, call: check(userKey) },
    { key: "j1", label: "JWT (RS256, oidc-provider), reused", what: "same token every request: verified-token cache hit, no signature check, no provisioning", call: check(reused) },
  ];
  process.stdout.write(`bench: (${rows.map((r) => r.key).join(", ")}) /mcp tools/list, latency interleaved, then throughput each ... `);
  const results = await measureInterleaved(rows.map((r) => r.call));
  rows.forEach((r, i) => (r.result = results[i]));
  console.log(rows.map((r) => `${r.key} ${r.result.errorCount} errors, ${r.result.rps.toFixed(0)} req/s`).join("; "));
  const stats = (v) => {
    const sorted = [...v].sort((a, b) => a - b);
    const nan = Number.NaN;
    return {
      n: v.length,
      p50: v.length ? pct(sorted, 50) : nan,
      p99: v.length ? pct(sorted, 99) : nan,
      mean: v.length ? v.reduce((a, b) => a + b, 0) / v.length : nan,
      min: v.length ? sorted[0] : nan,
      max: v.length ? sorted[sorted.length - 1] : nan,
    };
  };
  return {
    org,
    team,
    rows,
    provisioned: provisioned.length,
    cold: {
      errorCount: rec.errorCount,
      errors: rec.errors,
      // first[0] exists only if token 1 succeeded; then first[1..] are tokens 2..N.
      token1: first.length === JWT_FRESH ? first[0] : Number.NaN,
      rest: stats(first.length === JWT_FRESH ? first.slice(1) : first),
      second: stats(second),
    },
  };
}

function printAuth(auth, py, directTools) {
  console.log("\n== authentication cost per request: tools/list on the aggregated /mcp (modern), catalog = py only ==\n");
  console.log(
    [
      `py2..py20 were removed again: every row lists the same ${directTools} tools (py__*) — only the bearer differs. Each request`,
      `authenticates, loads the principal's identity and grants from D1 (grants_for(subject ids) + Access::new) and filters`,
      `the catalog. Warm-up ${WARMUP} each; latency ${N} sequential each, INTERLEAVED (rounds of k1, k2, j1 in rotating order, so`,
      `drift hits all three alike); then throughput ${TOTAL} requests at concurrency ${CONCURRENCY}, one row after the other.`,
      `(k1) the default agent's gateway API key (lookup by SHA-256 hash in D1); (k2) an API key bound to a user in`,
      `     org/workspace/team with grants at 3 levels; (j1) a JWT issued by the real oidc-provider for the org's registered`,
      `     identity provider (groups "platform" -> the team), reused for every request — after its first use the`,
      `     per-isolate verified-token cache (SHA-256(token) -> user) skips RS256 verification and JIT provisioning.`,
    ].join("\n") + "\n",
  );
  const k1 = auth.rows[0].result;
  console.log(
    table(
      ["row", "bearer", "p50 ms", "p99 ms", "mean ms", "req/s", "conc", "new conns (lat/thr)", "p50 vs k1", "errors"],
      auth.rows.map(({ key, label, result: r }) => [
        `(${key})`,
        label,
        ms(r.p50),
        ms(r.p99),
        ms(r.mean),
        r.rps.toFixed(0),
        CONCURRENCY,
        `${r.latencyConns}/${r.throughputConns}`,
        key === "k1" ? "" : `${r.p50 >= k1.p50 ? "+" : "-"}${ms(Math.abs(r.p50 - k1.p50))} ms`,
        `${r.errorCount}/${r.requests}`,
      ]),
      ["l", "l", "r", "r", "r", "r", "r", "r", "r", "r"],
    ),
  );
  console.log("");
  for (const { key, what } of auth.rows) console.log(`(${key}) ${what}`);
  console.log("new conns lat = during the whole interleaved latency phase (shared by the three rows).");

  const c = auth.cold;
  const j1 = auth.rows[2].result;
  console.log(
    "\n" +
      [
        `(j0) cold JWT verification: ${JWT_FRESH} fresh tokens from op.token() (issuing is not timed); the first request with`,
        `     each is timed (sequential, keep-alive connection to the gateway). A fresh token is not in the verified-token`,
        `     cache, so the gateway verifies it (RS256 signature, iss/aud/exp/nbf) and runs JIT provisioning (look up the`,
        `     user by external subject, sync its group->team membership in D1). Token 1 is the isolate's first JWT: it also`,
        `     fetches the issuer's discovery document and JWKS from the provider (cached per isolate afterwards) and creates`,
        `     the user. Then a second request with each token: a cache hit, like (j1). ${auth.provisioned} user(s) provisioned in the org.`,
      ].join("\n") + "\n",
  );
  const vsJ1 = (x) => (Number.isNaN(x) ? "" : `${x >= j1.p50 ? "+" : "-"}${ms(Math.abs(x - j1.p50))} ms`);
  const statRow = (label, s, vs) => [label, s.n, ms(s.p50), ms(s.p99), ms(s.mean), ms(s.min), ms(s.max), vs];
  console.log(
    table(
      ["request", "samples", "p50 ms", "p99 ms", "mean ms", "min ms", "max ms", "p50 vs j1"],
      [
        statRow("token 1, first use: discovery + JWKS fetch, verify, create user", { n: Number.isNaN(c.token1) ? 0 : 1, p50: c.token1, p99: c.token1, mean: c.token1, min: c.token1, max: c.token1 }, vsJ1(c.token1)),
        statRow(`tokens 2..${JWT_FRESH}, first use: JWKS cached, verify + provisioning`, c.rest, vsJ1(c.rest.p50)),
        statRow(`tokens 1..${JWT_FRESH}, second use: verified-token cache hit`, c.second, vsJ1(c.second.p50)),
      ],
      ["l", "r", "r", "r", "r", "r", "r", "r"],
    ),
  );
  console.log(`\n(with ${JWT_FRESH - 1} samples p99 is the maximum; j1 p50 = ${ms(j1.p50)} ms from ${N} samples)`);
}

// --- upstream credentials (vault) ---------------------------------------------------------------
/**
 * Added latency of the vault on `tools/call echo` through `/mcp/{slug}` (modern): the same Python
 * upstream twice, each its own fresh instance — `vnone` without credentials, `vkeyed` with sealed
 * `headers` credentials (its instance refuses requests without the header) — interleaved latency,
 * then throughput per row.
 */
async function measureVault(admin) {
  const gw = env.gw.url;
  process.stdout.write(`bench: (vault) starting 2 Python upstreams (plain, --require-header X-API-Key=…), registering vnone / vkeyed ... `);
  const [plain, keyed] = await Promise.all([
    startPyServer().then((u) => (vaultUps.push(u), u)),
    startPyServer({ args: ["--require-header", `X-API-Key=${UPSTREAM_API_KEY}`] }).then((u) => (vaultUps.push(u), u)),
  ]);
  // The keyed upstream must really refuse a request without the header (else v1 proves nothing).
  const bare = await post(keyed.url, { "mcp-protocol-version": MODERN, "mcp-method": "tools/list" }, {
    jsonrpc: "2.0",
    id: nextId++,
    method: "tools/list",
    params: { _meta: modernMeta() },
  });
  if (bare.status !== 401) throw new Error(`the --require-header upstream answered HTTP ${bare.status} without the header (want 401)`);
  await admin("POST", "/admin/v1/servers", { slug: "vnone", name: "vnone", url: plain.url }, 201);
  // Registration contacts the upstream, so the credential goes with it (a later PUT /credentials works the same).
  const headers = { "X-API-Key": UPSTREAM_API_KEY };
  await admin("POST", "/admin/v1/servers", { slug: "vkeyed", name: "vkeyed", url: keyed.url, credentials: { kind: "headers", headers } }, 201);
  // Re-seal it once through the documented endpoint, so (v1) reads a value written by PUT.
  await admin("PUT", "/admin/v1/servers/vkeyed/credentials", { kind: "headers", headers }, 200);
  const meta = (await admin("GET", "/admin/v1/servers/vkeyed/credentials", undefined, 200)).body;
  if (meta?.kind !== "headers") throw new Error(`vkeyed credentials: kind ${JSON.stringify(meta?.kind)} (want headers)`);
  await admin("GET", "/admin/v1/servers/vnone/credentials", undefined, 404); // nothing stored for vnone
  const sealed = await (await env.gw.mf.getKVNamespace("VAULT")).get("cred:server:vkeyed");
  if (!sealed || sealed.includes(UPSTREAM_API_KEY)) throw new Error("cred:server:vkeyed is missing from KV or holds the key in plaintext");
  console.log(`py ${plain.url} / ${keyed.url}`);

  const rows = [
    { key: "v0", slug: "vnone", label: "/mcp/vnone   none", what: "no credentials: the per-request KV lookup of cred:server:vnone misses, no headers added", call: modernTarget(`${gw}/mcp/vnone`, env.key) },
    {
      key: "v1",
      slug: "vkeyed",
      label: "/mcp/vkeyed  headers",
      what: `KV get of cred:server:vkeyed (${sealed.length} chars sealed) + AES-256-GCM open + JSON parse + X-API-Key header; the upstream checks it`,
      call: modernTarget(`${gw}/mcp/vkeyed`, env.key),
    },
  ];
  process.stdout.write(`bench: (${rows.map((r) => r.key).join(", ")}) /mcp/{vnone,vkeyed} tools/call echo, latency interleaved, then throughput each ... `);
  const results = await measureInterleaved(rows.map((r) => r.call));
  rows.forEach((r, i) => (r.result = results[i]));
  console.log(rows.map((r) => `${r.key} ${r.result.errorCount} errors, ${r.result.rps.toFixed(0)} req/s`).join("; "));
  return { rows, plain: plain.url, keyed: keyed.url };
}

function printVault(vault) {
  const [v0, v1] = vault.rows.map((r) => r.result);
  console.log("\n== upstream credentials (vault): tools/call echo on /mcp/{slug} (modern), no credentials vs sealed headers ==\n");
  console.log(
    [
      `The same Python upstream, two fresh instances: vnone ${vault.plain} (plain) and vkeyed ${vault.keyed}`,
      `(--require-header X-API-Key=…, answers 401 without it — checked). vkeyed's credential {"kind":"headers"} is sealed in KV`,
      `under VAULT_KEYS (k1, random per run). Warm-up ${WARMUP} each; latency ${N} sequential each, INTERLEAVED (rounds of v0, v1 in`,
      `rotating order, so drift hits both alike); then throughput ${TOTAL} requests at concurrency ${CONCURRENCY}, one row after the other.`,
    ].join("\n") + "\n",
  );
  console.log(
    table(
      ["row", "path  credentials", "p50 ms", "p99 ms", "mean ms", "req/s", "conc", "new conns (lat/thr)", "errors"],
      vault.rows.map(({ key, label, result: r }) => [
        `(${key})`,
        label,
        ms(r.p50),
        ms(r.p99),
        ms(r.mean),
        r.rps.toFixed(0),
        CONCURRENCY,
        `${r.latencyConns}/${r.throughputConns}`,
        `${r.errorCount}/${r.requests}`,
      ]),
      ["l", "l", "r", "r", "r", "r", "r", "r", "r"],
    ),
  );
  const signed = (x) => `${x >= 0 ? "+" : "-"}${ms(Math.abs(x))}`;
  const paired = v0.rounds.length === v1.rounds.length ? v1.rounds.map((x, i) => x - v0.rounds[i]).sort((a, b) => a - b) : [];
  console.log("");
  console.log(
    table(
      ["v1 - v0 (decrypt + header cost)", "p50 ms", "p99 ms", "mean ms", "median per-round ms", "req/s", "req/s ratio"],
      [[
        "headers vs none",
        signed(v1.p50 - v0.p50),
        signed(v1.p99 - v0.p99),
        signed(v1.mean - v0.mean),
        paired.length ? signed(pct(paired, 50)) : "n/a",
        `${v1.rps >= v0.rps ? "+" : "-"}${Math.abs(v1.rps - v0.rps).toFixed(0)}`,
        `${(v1.rps / v0.rps).toFixed(2)}x`,
      ]],
      ["l", "r", "r", "r", "r", "r", "r"],
    ),
  );
  console.log("");
  for (const { key, what } of vault.rows) console.log(`(${key}) ${what}`);
  console.log(`median per-round = median over the ${N} rounds of (v1 - v0) latency in the same round; new conns lat is shared by both rows.`);
}

// --- main ----------------------------------------------------------------------------------------
async function main() {
  const started = performance.now();
  console.log(`bench: starting gateway (Miniflare/workerd), Python upstream and server-everything on 127.0.0.1`);
  env = await setupGateway({ everything: true, py: true, vars: { VAULT_KEYS } });
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

  // --- /mcp (aggregated): tools/call py__echo, with the catalog setupGateway made ----------------
  const admin = async (method, path, body, want) => {
    const r = await env.gw.admin(method, path, body);
    if (r.status !== want) throw new Error(`${method} ${path}: HTTP ${r.status} (want ${want}): ${r.text.slice(0, 300)}`);
    return r;
  };
  const directTools = (await listAll(py)).tools.length; // what the Python upstream lists itself
  const slugsAtCall = (await admin("GET", "/admin/v1/servers", undefined, 200)).body.servers.map((s) => s.slug).sort();
  const toolsAtCall = (await listAll(`${gw}/mcp`, env.key)).tools.length;
  const callPath = { key: "f", label: "gateway  /mcp  py__echo modern", make: () => modernTarget(`${gw}/mcp`, env.key, "py__echo") };
  {
    process.stdout.write(`bench: (${callPath.key}) ${callPath.label.replace(/\s+/g, " ")} ... `);
    const r = await measure(await callPath.make());
    results[callPath.key] = r;
    console.log(`${r.errorCount} errors, ${r.rps.toFixed(0)} req/s`);
  }

  // --- /mcp (aggregated): tools/list with 1, 5, 20 servers, warm and cold catalog -----------------
  await admin("DELETE", "/admin/v1/servers/everything", undefined, 204);
  const slugs = ["py"];
  const listRows = [];
  for (const size of LIST_SIZES) {
    while (slugs.length < size) {
      const slug = `py${slugs.length + 1}`;
      await admin("POST", "/admin/v1/servers", { slug, name: slug, url: py }, 201);
      slugs.push(slug);
    }
    const registered = (await admin("GET", "/admin/v1/servers", undefined, 200)).body.servers.length;
    if (registered !== size) throw new Error(`expected ${size} registered servers, the admin API lists ${registered}`);
    const expected = size * directTools;
    const call = listTarget(`${gw}/mcp`, env.key, expected, slugs);
    const bumpSlug = slugs[slugs.length - 1];
    const bump = async () => {
      for (const status of ["disabled", "active"]) await admin("PATCH", `/admin/v1/servers/${bumpSlug}`, { status }, 200);
    };
    process.stdout.write(`bench: (l${size}) /mcp tools/list, ${size} server(s), ${expected} tools: warm ... `);
    const warm = await measure(call);
    process.stdout.write(`${warm.errorCount} errors, ${warm.rps.toFixed(0)} req/s; cold ... `);
    const cold = await measureCold(bump, call);
    console.log(`${cold.errorCount} errors, ${cold.rps.toFixed(0)} req/s`);
    listRows.push({ size, expected, bumpSlug, warm, cold });
  }

  // --- authentication cost: tools/list on /mcp with only `py` registered ---------------------------
  const auth = await measureAuth(admin, py, directTools, slugs);

  // --- upstream credentials (vault): /mcp/{slug} tools/call, no credentials vs sealed headers -----
  const vault = await measureVault(admin);

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

  const row = (label, r) => [
    label,
    ms(r.p50),
    ms(r.p99),
    ms(r.mean),
    r.rps.toFixed(0),
    CONCURRENCY,
    `${r.latencyConns}/${r.throughputConns}`,
    `${r.errorCount}/${r.requests}`,
  ];
  const ratioRow = (g, d, what) => {
    const G = results[g];
    const D = results[d];
    return [
      `${g} vs ${d}`,
      what,
      `${(G.p50 / D.p50).toFixed(2)}x`,
      `${(G.p99 / D.p99).toFixed(2)}x`,
      `${(G.rps / D.rps).toFixed(2)}x`,
      `${G.p50 >= D.p50 ? "+" : "-"}${ms(Math.abs(G.p50 - D.p50))}`,
    ];
  };

  console.log("\n== tools/call echo through the aggregated /mcp (name py__echo, modern) vs direct and /mcp/py ==\n");
  console.log(
    `/mcp catalog during (f): ${slugsAtCall.length} servers (${slugsAtCall.join(", ")}), ${toolsAtCall} tools; ` +
      `(a) and (b) are the rows above, same run\n`,
  );
  console.log(
    table(
      ["path", "p50 ms", "p99 ms", "mean ms", "req/s", "conc", "new conns (lat/thr)", "errors"],
      [["a", paths[0].label], ["b", paths[1].label], ["f", callPath.label]].map(([k, label]) => row(`(${k}) ${label}`, results[k])),
      ["l", "r", "r", "r", "r", "r", "r", "r"],
    ),
  );
  console.log("");
  console.log(
    table(
      ["pair", "what", "p50 ratio", "p99 ratio", "req/s ratio", "p50 overhead ms"],
      [
        ratioRow("f", "a", "/mcp (aggregated) vs direct upstream (py)"),
        ratioRow("f", "b", "/mcp (aggregated) vs /mcp/py (per-server)"),
      ],
      ["l", "l", "r", "r", "r", "r"],
    ),
  );

  console.log("\n== tools/list on the aggregated /mcp (modern 2026-07-28), by registered servers and catalog state ==\n");
  console.log(
    [
      `warm = repeated tools/list with an unchanged catalog: warm-up ${WARMUP}, latency ${N} sequential, throughput ${TOTAL} requests at concurrency ${CONCURRENCY}.`,
      `cold = the first tools/list after the catalog changed: ${COLD} times, bump the catalog generation with`,
      `       PATCH /admin/v1/servers/{slug} {"status":"disabled"} then {"status":"active"} and time the very next tools/list`,
      `       (latency; with ${COLD} samples p99 is about the maximum); req/s from ${COLD} bursts of ${CONCURRENCY} concurrent tools/list,`,
      `       each burst fired right after a bump, over the time inside the bursts (admin calls not counted).`,
      `servers: "py" plus py2..pyN — the SAME Python upstream URL (${py}) registered under other slugs;`,
      `       "everything" was removed first. Listing reads the catalog in D1 and never contacts an upstream, so this measures the gateway.`,
      `Each answer must be a JSON-RPC result with servers x ${directTools} tools (what the upstream lists directly), all {slug}__{tool};`,
      `       nextCursor pages are followed (default page size 500, so one page here).`,
    ].join("\n") + "\n",
  );
  console.log(
    table(
      ["servers", "tools", "catalog", "p50 ms", "p99 ms", "mean ms", "req/s", "conc", "samples (lat/thr)", "p50 cold/warm", "errors"],
      listRows.flatMap(({ size, expected, warm, cold }) => [
        [size, expected, "warm", ms(warm.p50), ms(warm.p99), ms(warm.mean), warm.rps.toFixed(0), CONCURRENCY, `${N}/${TOTAL}`, "", `${warm.errorCount}/${warm.requests}`],
        [
          size,
          expected,
          "cold",
          ms(cold.p50),
          ms(cold.p99),
          ms(cold.mean),
          cold.rps.toFixed(0),
          CONCURRENCY,
          `${cold.samples}/${cold.listed}`,
          `${(cold.p50 / warm.p50).toFixed(2)}x`,
          `${cold.errorCount}/${cold.requests}`,
        ],
      ]),
      ["r", "r", "l", "r", "r", "r", "r", "r", "r", "r", "r"],
    ),
  );
  const base = listRows[0];
  console.log(
    "\n" +
      listRows
        .slice(1)
        .map(
          ({ size, warm, cold }) =>
            `${size} vs ${base.size} server(s): warm p50 ${(warm.p50 / base.warm.p50).toFixed(2)}x, req/s ${(warm.rps / base.warm.rps).toFixed(2)}x; ` +
            `cold p50 ${(cold.p50 / base.cold.p50).toFixed(2)}x, req/s ${(cold.rps / base.cold.rps).toFixed(2)}x`,
        )
        .join("\n"),
  );

  printAuth(auth, py, directTools);
  printVault(vault);

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
  for (const p of [...paths, callPath]) {
    const r = results[p.key];
    totalErrors += r.errorCount;
    for (const [m, n] of r.errors) console.log(`error (${p.key}) x${n}: ${m}`);
  }
  for (const { size, warm, cold } of listRows) {
    for (const [what, r] of [["warm", warm], ["cold", cold]]) {
      totalErrors += r.errorCount;
      for (const [m, n] of r.errors) console.log(`error (l${size} ${what}) x${n}: ${m}`);
    }
  }
  for (const r of auth.rows) {
    totalErrors += r.result.errorCount;
    for (const [m, n] of r.result.errors) console.log(`error (${r.key}) x${n}: ${m}`);
  }
  totalErrors += auth.cold.errorCount;
  for (const [m, n] of auth.cold.errors) console.log(`error (j0) x${n}: ${m}`);
  for (const r of vault.rows) {
    totalErrors += r.result.errorCount;
    for (const [m, n] of r.result.errors) console.log(`error (${r.key}) x${n}: ${m}`);
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
