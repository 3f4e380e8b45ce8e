// bench.mjs — the gateway's overhead, measured side by side in one run (not a test: it prints
// figures and asserts no timing). Run it with `bash scripts/bench.sh`, which builds build/ (release)
// and build-bench/ (the bench-storage-delay feature) first. docs/benchmarks.md explains every row.
//
// Everything runs on 127.0.0.1: a real MCP server on the Python SDK with exactly 10 tools
// (bench/upstreams/ten_tools.py) and the built Worker in Miniflare/workerd, one workerd process per
// gateway instance:
//   main  build/        `tt` registered once: the call rows and tools/list with 1 server;
//   delay build-bench/  STORAGE_DELAY_MS (30): every D1 and KV call that much slower; the call rows again;
//   l100, l1000 build/  the same upstream URL registered under 100 / 1,000 slugs: tools/list on /mcp;
//   floor  a plain JavaScript Worker passing each call through: what workerd itself costs.
// Each round runs every row once, in a freshly shuffled order; a row's block is a warm-up, then
// sequential calls (p50, p99), then calls with BENCH_CONCURRENCY in flight (req/s), each phase
// bounded by a count and a time. CPU per request = CPU time of the row's workerd process (and of
// the upstream) over the two timed phases / their requests. Figures are medians over the rounds.
// Then: a soak (many legacy sessions calling for a while, on build-bench/ without delay, for its
// /__bench/memory route), the first request after a fresh isolate, and the release wasm size.
// Every answer is checked; failures are counted and printed, and make the exit code 1.
// BENCH_ONLY=record runs only the rows of the record-cost comparison and the soak (its audit count).

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { gzipSync } from "node:zlib";
import { BUILD, ROOT, startGateway, startProcess } from "../tests/harness.mjs";
import { coldStart } from "./lib/cold.mjs";
import { startFloor } from "./lib/floor.mjs";
import { legacySession, listAll, listFirstPage, measureBlock, measurePaired, median, modernCall, shuffled } from "./lib/measure.mjs";
import { CLK_TCK, loadavg, withNewWorkerd } from "./lib/procs.mjs";
import { int, kib, mib, ms, ratio, signedMs, table } from "./lib/report.mjs";
import { soak } from "./lib/soak.mjs";

// --- knobs ---------------------------------------------------------------------------------------
const QUICK = process.env.BENCH_QUICK === "1";
const num = (name, full, quick) => {
  const v = process.env[name];
  if (v === undefined || v === "") return QUICK ? quick : full;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`bench: ${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return n;
};
const K = {
  ROUNDS: num("BENCH_ROUNDS", 3, 2),
  WARMUP: num("BENCH_WARMUP", 20, 5),
  N: num("BENCH_N", 200, 50),
  TOTAL: num("BENCH_TOTAL", 400, 100),
  CONCURRENCY: num("BENCH_CONCURRENCY", 8, 8),
  PHASE_S: num("BENCH_PHASE_S", 10, 3),
  DELAY_MS: num("BENCH_STORAGE_DELAY_MS", 30, 30),
  DELAY_N: num("BENCH_DELAY_N", 60, 20),
  DELAY_TOTAL: num("BENCH_DELAY_TOTAL", 120, 40),
  SOAK_SESSIONS: num("BENCH_SOAK_SESSIONS", 200, 50),
  SOAK_S: num("BENCH_SOAK_S", 60, 10),
  COLD: num("BENCH_COLD", 5, 2),
  RECORD_N: num("BENCH_RECORD_N", 2000, 1000),
  RECORD_S: num("BENCH_RECORD_S", 60, 30),
  REGISTER_CONCURRENCY: num("BENCH_REGISTER_CONCURRENCY", 8, 8),
  TIMEOUT_S: num("BENCH_TIMEOUT_S", 2400, 900),
};
const LIST_SIZES = (process.env.BENCH_LIST_SIZES || (QUICK ? "1,10,100" : "1,100,1000")).split(",").map(Number);
if (LIST_SIZES.some((n) => !Number.isInteger(n) || n < 1)) {
  console.error(`bench: BENCH_LIST_SIZES must be positive integers, got ${process.env.BENCH_LIST_SIZES}`);
  process.exit(2);
}
// BENCH_ONLY=record: only what the record-cost comparison needs (direct, floor, the bench build with
// its event sinks on and off, and the soak with its audit count): a few minutes instead of the run.
const ONLY = process.env.BENCH_ONLY || "";
if (ONLY !== "" && ONLY !== "record") {
  console.error(`bench: BENCH_ONLY must be "record" or unset, got ${JSON.stringify(ONLY)}`);
  process.exit(2);
}
const RECORD_ONLY = ONLY === "record";
const BENCH_BUILD = join(ROOT, "build-bench");
const TOOLS_PER_SERVER = 10; // bench/upstreams/ten_tools.py
const SLUG = "tt";

// --- cleanup: stop every process this bench started, whatever happens ----------------------------
const running = new Set();
const track = (x) => (running.add(x), x);
let stopping = null;
const stopAll = () =>
  (stopping ??= Promise.all([...running].map((x) => x.stop().catch(() => {}))));
async function die(code, msg) {
  if (msg) console.error(msg);
  await stopAll();
  process.exit(code);
}
for (const sig of ["SIGINT", "SIGTERM"]) process.once(sig, () => die(130, `bench: ${sig}, stopping`));
setTimeout(() => die(2, `bench: over the ${K.TIMEOUT_S} s limit (BENCH_TIMEOUT_S), stopping`), K.TIMEOUT_S * 1000).unref();

// --- setup helpers -------------------------------------------------------------------------------
async function startUpstream() {
  const p = await startProcess(join(ROOT, ".venv/bin/python"), ["bench/upstreams/ten_tools.py", "--port", "0"], { readyLine: /READY (\d+)/ });
  track(p);
  return { url: `http://127.0.0.1:${Number(p.match[1])}/mcp`, pid: p.proc.pid };
}

async function startOne(name, { build = BUILD, vars = {} } = {}) {
  const [gw, pid] = await withNewWorkerd(() => startGateway({ build, vars }));
  track(gw);
  const k = await gw.admin("POST", "/admin/v1/api-keys", { name: "bench" });
  if (k.status !== 201) throw new Error(`${name}: issuing a key: HTTP ${k.status} ${k.text.slice(0, 200)}`);
  return { name, gw, url: gw.url, pid, key: k.body.key };
}

/** Registers `slugs` for `url`, REGISTER_CONCURRENCY at a time; returns the seconds it took. */
async function register(g, slugs, url) {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(K.REGISTER_CONCURRENCY, slugs.length) }, async () => {
      while (next < slugs.length) {
        const slug = slugs[next++];
        const r = await g.gw.admin("POST", "/admin/v1/servers", { slug, name: slug, url });
        if (r.status !== 201) throw new Error(`${g.name}: registering ${slug}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
      }
    }),
  );
  return (performance.now() - t0) / 1000;
}

/**
 * The tools/call records the gateway's audit trail holds, once the queue has delivered them: polls
 * D1 until the count reaches `expected` or stops growing for 15 s (at most 120 s).
 */
async function auditedCalls(g, expected) {
  const db = await g.gw.mf.getD1Database("DB");
  const t0 = performance.now();
  let last = -1;
  let since = t0;
  for (;;) {
    const row = await db.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE method = 'tools/call'").first();
    const n = Number(row.n);
    const now = performance.now();
    if (n !== last) [last, since] = [n, now];
    if (n >= expected || now - since > 15_000 || now - t0 > 120_000) return { records: n, waitedS: (now - t0) / 1000 };
    await new Promise((r) => setTimeout(r, 500));
  }
}

const slugsFor = (n) => [SLUG, ...Array.from({ length: n - 1 }, (_, i) => `${SLUG}${String(i + 2).padStart(4, "0")}`)];

function gitHead() {
  try {
    return execFileSync("git", ["log", "-1", "--format=%h %cI %s"], { cwd: ROOT }).toString().trim();
  } catch {
    return "unknown";
  }
}

// --- main ----------------------------------------------------------------------------------------
async function main() {
  const started = performance.now();
  for (const b of RECORD_ONLY ? [BENCH_BUILD] : [BUILD, BENCH_BUILD]) {
    if (!existsSync(join(b, "index_bg.wasm"))) throw new Error(`${b}/index_bg.wasm missing — run scripts/bench.sh (it builds both)`);
  }
  const load0 = loadavg();
  console.log(`== MCP gateway bench ${new Date().toISOString()} ==`);
  console.log(`commit ${gitHead()}`);
  console.log(`machine: ${cpus().length} CPU(s); load average at start ${load0} (1/5/15 min).`);
  console.log(
    `NOTE: the cores are shared with whatever else runs (other builds and tests): the figures are noisy when the load is high.`,
  );
  console.log(`knobs: ${Object.entries(K).map(([k, v]) => `${k}=${v}`).join(" ")} LIST_SIZES=${LIST_SIZES.join(",")}${QUICK ? " (BENCH_QUICK)" : ""}${RECORD_ONLY ? " BENCH_ONLY=record" : ""}\n`);

  const up = await startUpstream();
  console.log(`bench: upstream ${up.url} (Python SDK, ${TOOLS_PER_SERVER} tools, pid ${up.pid})`);
  const direct = await listAll(up.url, null);
  if (direct.length !== TOOLS_PER_SERVER) throw new Error(`the upstream lists ${direct.length} tools, want ${TOOLS_PER_SERVER}`);

  const main = RECORD_ONLY ? null : await startOne("main");
  if (main) await register(main, [SLUG], up.url);
  const delay = RECORD_ONLY ? null : await startOne("delay", { build: BENCH_BUILD, vars: { STORAGE_DELAY_MS: String(K.DELAY_MS) } });
  // What recording events costs a call: the same bench build with its sinks on and off.
  const evOn = await startOne("events", { build: BENCH_BUILD });
  await register(evOn, [SLUG], up.url);
  const evOff = await startOne("noevents", { build: BENCH_BUILD, vars: { BENCH_NO_EVENTS: "1" } });
  await register(evOff, [SLUG], up.url);
  const [floorGw, floorPid] = await withNewWorkerd(() => startFloor(up.url));
  running.add(floorGw);
  const floor = { name: "floor", url: floorGw.url, pid: floorPid };
  if (delay) {
    // The delay gateway's D1 and KV calls so far (its bench route counts them).
    delay.counter = async () => (await (await fetch(`${delay.url}/__bench/memory`)).json()).storage_calls;
    const tDelayReg = await register(delay, [SLUG], up.url);
    console.log(`bench: gateway main ${main.url} (workerd ${main.pid}); delay ${delay.url} (workerd ${delay.pid}, registering 1 server took ${ms(tDelayReg, 1)} s)`);
  }
  const lists = [];
  for (const size of RECORD_ONLY ? [] : LIST_SIZES) {
    const g = size === 1 ? main : await startOne(`l${size}`);
    const slugs = slugsFor(size);
    const took = size === 1 ? 0 : await register(g, slugs, up.url);
    const all = await listAll(`${g.url}/mcp`, g.key);
    if (all.length !== size * TOOLS_PER_SERVER) throw new Error(`${g.name}: /mcp lists ${all.length} tools, want ${size * TOOLS_PER_SERVER}`);
    const first = await listFirstPage(`${g.url}/mcp`, g.key, size * TOOLS_PER_SERVER, slugs)();
    lists.push({ size, g, slugs, firstPage: first });
    if (size !== 1) console.log(`bench: gateway l${size} ${g.url} (workerd ${g.pid}): registered ${size} servers in ${ms(took, 1)} s (${int(size / took)}/s)`);
  }

  const call = { warmup: K.WARMUP, n: K.N, total: K.TOTAL, concurrency: K.CONCURRENCY, maxS: K.PHASE_S };
  const slow = { ...call, n: K.DELAY_N, total: K.DELAY_TOTAL };
  const callRows = (g, sfx, opts) => [
    { key: `slug${sfx}`, g, opts, label: "gateway /mcp/{slug}, modern", prepare: () => modernCall(`${g.url}/mcp/${SLUG}`, g.key) },
    { key: `legacy${sfx}`, g, opts, label: "gateway /mcp/{slug}, legacy session", prepare: () => legacySession(`${g.url}/mcp/${SLUG}`, g.key) },
    { key: `agg${sfx}`, g, opts, label: `gateway /mcp (${SLUG}__echo), modern`, prepare: () => modernCall(`${g.url}/mcp`, g.key, `${SLUG}__echo`) },
  ];
  const rows = [
    { key: "direct", g: null, opts: call, label: "direct, modern 2026-07-28", prepare: () => modernCall(up.url) },
    { key: "floor", g: floor, opts: call, label: "workerd floor: plain JS Worker, pass-through", prepare: () => modernCall(`${floor.url}/mcp`) },
    { key: "floor-do", g: floor, opts: call, label: "workerd floor through a Durable Object", prepare: () => modernCall(`${floor.url}/do/mcp`) },
    ...(main ? callRows(main, "", call) : []),
    ...(delay ? callRows(delay, "+delay", slow) : []),
    { key: "slug+events", g: evOn, opts: call, label: "gateway /mcp/{slug}, modern, events recorded (bench build)", prepare: () => modernCall(`${evOn.url}/mcp/${SLUG}`, evOn.key) },
    { key: "slug-events", g: evOff, opts: call, label: "gateway /mcp/{slug}, modern, no event sinks (bench build)", prepare: () => modernCall(`${evOff.url}/mcp/${SLUG}`, evOff.key) },
    ...lists.map(({ size, g, slugs }) => ({
      key: `list${size}`,
      g,
      opts: call,
      size,
      label: `/mcp tools/list, ${size} server(s)`,
      prepare: () => listFirstPage(`${g.url}/mcp`, g.key, size * TOOLS_PER_SERVER, slugs),
    })),
  ];
  for (const r of rows) r.results = [];

  console.log(`\nbench: ${K.ROUNDS} round(s) of ${rows.length} rows, each round in a fresh random order`);
  for (let round = 1; round <= K.ROUNDS; round++) {
    const order = shuffled(rows);
    console.log(`round ${round}: ${order.map((r) => r.key).join(" ")}`);
    for (const r of order) {
      const pids = r.g ? [r.g.pid, up.pid] : [up.pid];
      let res;
      try {
        res = await measureBlock(await r.prepare(), { ...r.opts, pids, counter: r.g?.counter });
      } catch (e) {
        res = { p50: NaN, p99: NaN, rps: NaN, seq: 0, conc: 0, cpuPerReq: [NaN, NaN], errorCount: 1, errors: new Map([[`setup: ${e.message}`, 1]]) };
      }
      r.results.push(res);
      const cpu = r.g ? `workerd ${ms(res.cpuPerReq[0])} upstream ${ms(res.cpuPerReq[1])}` : `upstream ${ms(res.cpuPerReq[0])}`;
      console.log(
        `  ${r.key.padEnd(13)} p50 ${ms(res.p50).padStart(7)}  p99 ${ms(res.p99).padStart(7)}  req/s ${int(res.rps).padStart(5)}  ` +
          `CPU ms/req ${cpu}${r.g?.counter ? `  storage calls/req ${res.perReq.toFixed(3)}` : ""}  (${res.seq} seq, ${res.conc} conc, ${res.errorCount} errors)`,
      );
    }
  }

  // --- the record cost, paired ------------------------------------------------------------------
  // The rows above measure the two event gateways in separate blocks, so load that changes
  // between blocks shows in their difference. Here their calls alternate one by one instead;
  // CPU is read until the audit queue's consumer has had the calls' events (its batch timeout
  // is 2 s), since locally it runs in the same workerd process.
  console.log(`\nbench: record cost, paired — ${K.RECORD_N} calls each, alternating between the event gateways ...`);
  const paired = await measurePaired(modernCall(`${evOn.url}/mcp/${SLUG}`, evOn.key), modernCall(`${evOff.url}/mcp/${SLUG}`, evOff.key), {
    warmup: K.WARMUP,
    n: K.RECORD_N,
    maxS: K.RECORD_S,
    pidsA: [evOn.pid],
    pidsB: [evOff.pid],
    settleMs: 2500,
  });

  // --- soak, cold start --------------------------------------------------------------------------
  console.log(`\nbench: soak — ${K.SOAK_SESSIONS} legacy sessions calling for ${K.SOAK_S} s (build-bench/, no delay) ...`);
  const soakGw = await startOne("soak", { build: BENCH_BUILD });
  await register(soakGw, [SLUG], up.url);
  const sk = await soak({ url: `${soakGw.url}/mcp/${SLUG}`, gwUrl: soakGw.url, key: soakGw.key, pid: soakGw.pid, sessions: K.SOAK_SESSIONS, seconds: K.SOAK_S });
  sk.audit = await auditedCalls(soakGw, sk.calls);
  await soakGw.gw.stop();
  running.delete(soakGw.gw);
  let cold = null;
  if (!RECORD_ONLY) {
    console.log(`bench: cold start — ${K.COLD} fresh gateways on persisted state ...`);
    cold = await coldStart({ samples: K.COLD, upstreamUrl: up.url, slug: SLUG, track });
  }

  // --- report ------------------------------------------------------------------------------------
  const load1 = loadavg();
  const byKey = Object.fromEntries(rows.map((r) => [r.key, r]));
  const med = (r, f) => median(r.results.map(f));
  const d = byKey.direct;
  // Per-round differences and ratios against the direct row of the same round.
  const added = (r) => median(r.results.map((x, i) => x.p50 - d.results[i].p50));
  const xDirect = (r) => median(r.results.map((x, i) => x.rps / d.results[i].rps));
  const errs = (r) => r.results.reduce((a, x) => a + x.errorCount, 0);
  const reqs = (r) => r.results.reduce((a, x) => a + x.seq + x.conc, 0);
  const cpuW = (r) => (r.g ? med(r, (x) => x.cpuPerReq[0]) : NaN);
  const cpuU = (r) => med(r, (x) => x.cpuPerReq[r.g ? 1 : 0]);

  // The same against the floor row of the same round: what the gateway's own code adds (legacy
  // sessions against the floor that also passes through a Durable Object).
  const overFloor = (r) => {
    const f = byKey[r.key.startsWith("legacy") ? "floor-do" : "floor"];
    return median(r.results.map((x, i) => x.p50 - f.results[i].p50));
  };
  const callTable = (keys, calls = false) =>
    table(
      [
        "path",
        "p50 ms",
        "p99 ms",
        "added p50",
        "over floor",
        "req/s",
        "x direct",
        "workerd CPU/req",
        "upstream CPU/req",
        ...(calls ? ["D1+KV calls/req"] : []),
        "errors/requests",
      ],
      keys.map((k) => {
        const r = byKey[k];
        const gateway = k !== "direct" && !k.startsWith("floor");
        return [
          r.label,
          ms(med(r, (x) => x.p50)),
          ms(med(r, (x) => x.p99)),
          k === "direct" ? "—" : signedMs(added(r)),
          gateway ? signedMs(overFloor(r)) : "—",
          int(med(r, (x) => x.rps)),
          k === "direct" ? "1.00" : ratio(xDirect(r)),
          k === "direct" ? "—" : ms(cpuW(r)),
          ms(cpuU(r)),
          ...(calls ? [r.g?.counter ? med(r, (x) => x.perReq).toFixed(3) : "—"] : []),
          `${errs(r)}/${reqs(r)}`,
        ];
      }),
    );
  if (!RECORD_ONLY) {
    console.log(`\n== tools/call echo (medians of ${K.ROUNDS} rounds; CPU in ms per request, /proc, ${1000 / CLK_TCK} ms ticks) ==\n`);
    console.log(callTable(["direct", "floor", "floor-do", "slug", "legacy", "agg"]));
    console.log(`\n== the same with every D1 and KV call ${K.DELAY_MS} ms slower (build-bench/, STORAGE_DELAY_MS=${K.DELAY_MS}; fewer samples: BENCH_DELAY_N/TOTAL) ==\n`);
    console.log(callTable(["direct", "floor", "floor-do", "slug+delay", "legacy+delay", "agg+delay"], true));
  }
  const evRec = byKey["slug+events"];
  const evNo = byKey["slug-events"];
  const recordP50 = median(evRec.results.map((x, i) => x.p50 - evNo.results[i].p50));
  console.log(`\n== recording events (the bench build with its event sinks on and off, /mcp/{slug} modern) ==\n`);
  console.log(callTable(["direct", "slug-events", "slug+events"]));
  console.log(
    `\nrecord cost p50 = median over rounds of (events p50 - no-events p50 of the same round): ${signedMs(recordP50)} ms;` +
      ` CPU per call ${ms(cpuW(evRec))} vs ${ms(cpuW(evNo))} ms (Analytics Engine data point and audit queue send; no OTLP endpoint configured).`,
  );
  const [pOn, pOff] = paired.sides;
  console.log(
    `record cost p50, paired (${paired.rounds} calls each, alternating): ${signedMs(pOn.p50 - pOff.p50)} ms` +
      ` (p50 ${ms(pOn.p50)} vs ${ms(pOff.p50)}, p99 ${ms(pOn.p99)} vs ${ms(pOff.p99)});` +
      ` workerd CPU per call ${ms(pOn.cpuPerReq[0])} vs ${ms(pOff.cpuPerReq[0])} ms (${signedMs(pOn.cpuPerReq[0] - pOff.cpuPerReq[0])}), the audit consumer's work included.`,
  );
  console.log(
    `\nadded p50 = median over rounds of (row p50 - direct p50 of the same round); over floor = the same against the floor row` +
      ` (legacy: the floor through a Durable Object; what the gateway adds beyond workerd's own pass-through); x direct = the same as added p50 for req/s (at ${K.CONCURRENCY} in flight);` +
      ` D1+KV calls/req = the delay gateway's storage calls over the timed phases / their requests (background revalidation included).`,
  );

  if (lists.length) {
    console.log(`\n== tools/list on /mcp (modern), first page, by registered servers (${TOOLS_PER_SERVER} tools each; the same upstream URL under many slugs) ==\n`);
    console.log(
      table(
        ["servers", "tools", "first page", "p50 ms", "p99 ms", "req/s", "workerd CPU/req", "errors/requests"],
        lists.map(({ size, firstPage }) => {
          const r = byKey[`list${size}`];
          return [size, size * TOOLS_PER_SERVER, firstPage, ms(med(r, (x) => x.p50)), ms(med(r, (x) => x.p99)), int(med(r, (x) => x.rps)), ms(cpuW(r)), `${errs(r)}/${reqs(r)}`];
        }),
      ),
    );
  }

  console.log(`\n== soak: ${sk.sessions} concurrent legacy sessions on /mcp/${SLUG}, tools/call echo for ${ms(sk.seconds, 1)} s ==\n`);
  console.log(
    table(
      ["sessions opened", "requests", "errors", "req/s", "p50 ms", "p99 ms", "workerd CPU/req"],
      [[`${sk.opened}/${sk.sessions}`, sk.requests, sk.errorCount, int(sk.rps), ms(sk.p50), ms(sk.p99), ms(sk.cpuPerReq)]],
    ),
  );
  console.log(
    `\naudit trail: ${sk.audit.records} tools/call records for ${sk.calls} tools/call sent (warm-up included)` +
      ` — ${sk.audit.records === sk.calls ? "equal" : "NOT EQUAL"}; the queue had drained ${ms(sk.audit.waitedS, 1)} s after the soak.`,
  );
  console.log("");
  const memRow = (what, m) => [what, kib(m.wasm), mib(m.rss)];
  console.log(
    table(
      ["when", "Worker wasm memory", "workerd RSS"],
      [
        memRow("fresh gateway, before the sessions", sk.fresh),
        memRow("start (sessions open, warmed)", sk.start),
        ...sk.mid.map((m) => memRow(`after ${ms(m.t, 0)} s`, m)),
        memRow("end", sk.end),
        ["end - start", kib(sk.end.wasm - sk.start.wasm), mib(sk.end.rss - sk.start.rss)],
      ],
    ),
  );

  if (cold) {
    console.log(`\n== first request after a fresh isolate (median of ${cold.samples} new gateways on persisted state) ==\n`);
    console.log(
      table(
        ["start to ready ms", "first tools/call ms", "second ms", "warm p50 ms", "first - warm ms"],
        [[ms(cold.ready, 0), ms(cold.first), ms(cold.second), ms(cold.warm), signedMs(cold.first - cold.warm)]],
      ),
    );
    console.log(`(first calls: ${cold.firsts.map((x) => ms(x, 1)).join(", ")} ms)`);

    const wasm = readFileSync(join(BUILD, "index_bg.wasm"));
    const gz = gzipSync(wasm, { level: 9 });
    console.log("\n== release wasm (build/index_bg.wasm) ==\n");
    console.log(table(["", "bytes", "size"], [["raw", wasm.length, mib(wasm.length)], ["gzip -9", gz.length, mib(gz.length)]]));
  }

  let total = 0;
  for (const r of rows) {
    for (const x of r.results) {
      total += x.errorCount;
      for (const [m, n] of x.errors) console.log(`error (${r.key}) x${n}: ${m}`);
    }
  }
  total += paired.errorCount;
  for (const [m, n] of paired.errors) console.log(`error (record, paired) x${n}: ${m}`);
  for (const [what, n, map] of [["soak open", sk.openErrors.size, sk.openErrors], ["soak", sk.errorCount, sk.errors]]) {
    if (!n) continue;
    for (const [m, c] of map) console.log(`error (${what}) x${c}: ${m}`);
  }
  total += sk.errorCount + (sk.sessions - sk.opened) + sk.warmErrors;
  if (sk.audit.records !== sk.calls) {
    console.error(`bench: the audit trail holds ${sk.audit.records} tools/call records for ${sk.calls} calls`);
    total += Math.abs(sk.calls - sk.audit.records);
  }
  console.log(`\nload average at end ${load1} (at start ${load0}).`);
  console.log(
    `bench: ${total === 0 ? "every response was a successful JSON-RPC result" : `${total} FAILED requests — the figures are not meaningful`}` +
      ` (${ms((performance.now() - started) / 1000, 0)} s)`,
  );
  return total === 0 ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (e) {
  console.error(`\nbench: failed: ${e.stack ?? e}`);
} finally {
  await stopAll();
}
process.exit(code);
