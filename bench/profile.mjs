// profile.mjs — where a gateway call spends its CPU: a V8 CPU profile of the Worker's isolate
// (through Miniflare's inspector) while one bench row runs, folded by function. Not a test and
// not part of bench.sh: a tool for finding hot spots (docs/benchmarks.md, "Profiling").
//
// Build a variant that keeps function names first (the release profile strips them):
//   CARGO_PROFILE_RELEASE_STRIP=debuginfo bash scripts/build.sh --out-dir build-prof --no-opt
// then: node bench/profile.mjs [row]   row: slug | legacy | agg | list | guard | guardplain
// (default slug; `guard` is bench/guard.mjs's guarded call — every detector, redact, a 4 KB
// argument and a 16 KB result — and `guardplain` the same call with no policy)
// Knobs: PROFILE_BUILD (build-prof), PROFILE_N (calls, 2000), PROFILE_SERVERS (list row, 100),
// PROFILE_TOP (rows printed, 40), PROFILE_OUT (where the .cpuprofile goes, for DevTools),
// PROFILE_VARS (extra Worker vars, `K=V,K2=V2`; e.g. BENCH_NO_EVENTS=1 on a build with the
// bench-storage-delay feature, to profile the same row without event sinks), PROFILE_TARGET (the
// isolate to profile, by inspector id: default the gateway, `core:user:`; Miniflare's own
// services are others, e.g. `queues:queue:mcp-gateway-audit`, the audit queue's entry).

import { existsSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { ROOT, startGateway, startProcess } from "../tests/harness.mjs";
import { GUARD_POLICY, guardedCall } from "./guard.mjs";
import { legacySession, listFirstPage, modernCall } from "./lib/measure.mjs";

const ROW = process.argv[2] || "slug";
const BUILD = join(ROOT, process.env.PROFILE_BUILD || "build-prof");
const N = Number(process.env.PROFILE_N || 2000);
const SERVERS = Number(process.env.PROFILE_SERVERS || 100);
const TOP = Number(process.env.PROFILE_TOP || 40);
const OUT = process.env.PROFILE_OUT || `/tmp/gateway-${ROW}.cpuprofile`;
const TARGET = process.env.PROFILE_TARGET || "";
const VARS = Object.fromEntries(
  (process.env.PROFILE_VARS || "")
    .split(",")
    .filter((kv) => kv.includes("="))
    .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
);

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });

/** A minimal DevTools-protocol client over one WebSocket. */
async function cdp(url) {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`inspector: cannot connect to ${url}`));
  });
  let next = 1;
  const waiting = new Map();
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    const w = m.id && waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    m.error ? w.reject(new Error(JSON.stringify(m.error))) : w.resolve(m.result);
  };
  return {
    send: (method, params = {}) =>
      new Promise((resolve, reject) => {
        const id = next++;
        waiting.set(id, { resolve, reject });
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

/** Rust symbol without its hash; anything else as V8 names it. */
const clean = (name) => (name || "(anonymous)").replace(/::h[0-9a-f]{16}$/, "").replace(/^\$/, "");

function fold(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
  const self = new Map();
  const incl = new Map();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] || 0;
    total += dt;
    const name = clean(byId.get(id).callFrame.functionName);
    self.set(name, (self.get(name) || 0) + dt);
    const seen = new Set();
    for (let n = id; n !== undefined; n = parent.get(n)) {
      const f = clean(byId.get(n).callFrame.functionName);
      if (seen.has(f)) continue;
      seen.add(f);
      incl.set(f, (incl.get(f) || 0) + dt);
    }
  });
  return { self, incl, total };
}

function print(title, map, total, perCall) {
  console.log(`\n== ${title} (µs per call, % of samples) ==`);
  const rows = [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, TOP);
  for (const [name, us] of rows) {
    console.log(`${(us / perCall).toFixed(1).padStart(8)}  ${((100 * us) / total).toFixed(1).padStart(5)}%  ${name.slice(0, 160)}`);
  }
}

async function main() {
  if (!existsSync(join(BUILD, "index_bg.wasm"))) throw new Error(`${BUILD} missing: CARGO_PROFILE_RELEASE_STRIP=debuginfo bash scripts/build.sh --out-dir build-prof --no-opt`);
  const guard = ROW === "guard" || ROW === "guardplain";
  const upArgs = ["bench/upstreams/ten_tools.py", "--port", "0", ...(guard ? ["--padded"] : [])];
  const upP = await startProcess(join(ROOT, ".venv/bin/python"), upArgs, { readyLine: /READY (\d+)/ });
  const upUrl = `http://127.0.0.1:${Number(upP.match[1])}/mcp`;
  const inspectorPort = await freePort();
  const gw = await startGateway({ build: BUILD, inspectorPort, vars: VARS });
  try {
    const k = await gw.admin("POST", "/admin/v1/api-keys", { name: "profile" });
    const key = k.body.key;
    const slugs = ROW === "list" ? ["tt", ...Array.from({ length: SERVERS - 1 }, (_, i) => `tt${i + 2}`)] : ["tt"];
    for (const slug of slugs) {
      const r = await gw.admin("POST", "/admin/v1/servers", { slug, name: slug, url: upUrl });
      if (r.status !== 201) throw new Error(`registering ${slug}: ${r.status} ${r.text}`);
    }
    if (ROW === "guard") {
      const p = await gw.admin("POST", "/admin/v1/policies", GUARD_POLICY);
      if (p.status !== 201) throw new Error(`policy: ${p.status} ${p.text}`);
    }
    const call = guard
      ? guardedCall(`${gw.url}/mcp/tt`, key, ROW === "guard")
      : ROW === "slug"
        ? modernCall(`${gw.url}/mcp/tt`, key)
        : ROW === "agg"
          ? modernCall(`${gw.url}/mcp`, key, "tt__echo")
          : ROW === "legacy"
            ? await legacySession(`${gw.url}/mcp/tt`, key)
            : listFirstPage(`${gw.url}/mcp`, key, slugs.length * 10, slugs);
    for (let i = 0; i < 100; i++) await call();

    const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json();
    // Miniflare names the user's Worker `core:user:{name}`; its own services (the queue broker,
    // D1, KV, …) are isolates of their own, selectable by id with PROFILE_TARGET.
    const target = targets.find((t) => (TARGET ? t.id === TARGET : t.id.startsWith("core:user:")));
    if (!target) throw new Error(`no inspector target ${TARGET || "core:user:*"}; have ${targets.map((t) => t.id).join(", ")}`);
    const c = await cdp(target.webSocketDebuggerUrl || `ws://127.0.0.1:${inspectorPort}/${target.id}`);
    await c.send("Profiler.enable");
    await c.send("Profiler.setSamplingInterval", { interval: 100 });
    await c.send("Profiler.start");
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await call();
    const wall = performance.now() - t0;
    const { profile } = await c.send("Profiler.stop");
    c.close();
    writeFileSync(OUT, JSON.stringify(profile));
    const { self, incl, total } = fold(profile);
    const idle = (self.get("(idle)") || 0) + (self.get("(program)") || 0);
    console.log(`isolate ${target.id}`);
    console.log(`row ${ROW}: ${N} sequential calls in ${(wall / 1000).toFixed(1)} s (${(wall / N).toFixed(2)} ms each); profile ${OUT}`);
    console.log(`isolate busy ${((total - (self.get("(idle)") || 0)) / N / 1000).toFixed(3)} ms per call (of which (program) ${((self.get("(program)") || 0) / N / 1000).toFixed(3)}, GC ${((self.get("(garbage collector)") || 0) / N / 1000).toFixed(3)}); idle ${((self.get("(idle)") || 0) / N / 1000).toFixed(3)} ms`);
    void idle;
    print("self time", self, total, N);
    print("inclusive time", incl, total, N);
  } finally {
    await gw.stop();
    await upP.stop();
  }
}

main().catch((e) => {
  console.error(e.stack || e);
  process.exit(1);
});
