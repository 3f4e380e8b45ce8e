// soak.mjs — many concurrent legacy sessions calling `echo` for a while: errors counted, latency,
// and memory at start and end — the Worker's own wasm memory (GET /__bench/memory, served only by
// the bench-feature build) and the RSS of its workerd process.

import { performance } from "node:perf_hooks";
import { legacySession, pct, recorder } from "./measure.mjs";
import { cpuMs, rssBytes } from "./procs.mjs";

/** Session initializations in flight at once while opening the soak's sessions. */
const OPEN_CONCURRENCY = 20;
/** Untimed calls per session before the start figures are read (the allocator's steady state). */
const WARM_CALLS = 3;
/** Memory samples taken during the soak (besides start and end). */
const MID_SAMPLES = 5;

/** The Worker's wasm memory in bytes (NaN when the build has no bench route). */
export async function wasmMemory(gwUrl) {
  try {
    const r = await fetch(`${gwUrl}/__bench/memory`, { signal: AbortSignal.timeout(10_000) });
    if (r.status !== 200) return Number.NaN;
    return (await r.json()).wasm_memory_bytes ?? Number.NaN;
  } catch {
    return Number.NaN;
  }
}

export async function soak({ url, gwUrl, key, pid, sessions, seconds }) {
  const memory = async () => ({ wasm: await wasmMemory(gwUrl), rss: rssBytes(pid), at: performance.now() });
  const fresh = await memory();

  const open = recorder();
  const calls = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(OPEN_CONCURRENCY, sessions) }, async () => {
      while (next < sessions) {
        next++;
        await open.once(async () => calls.push(await legacySession(url, key)));
      }
    }),
  );
  const warm = recorder();
  await Promise.all(calls.map(async (c) => { for (let i = 0; i < WARM_CALLS; i++) await warm.once(c); }));

  const start = await memory();
  const cpu0 = cpuMs(pid);
  const rec = recorder();
  const samples = [];
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const mid = [];
  const sampler = setInterval(async () => {
    if (mid.length < MID_SAMPLES) mid.push(await memory());
  }, (seconds * 1000) / (MID_SAMPLES + 1));
  await Promise.all(
    calls.map(async (c) => {
      while (performance.now() < deadline) {
        const t = performance.now();
        if (await rec.once(c)) samples.push(performance.now() - t);
      }
    }),
  );
  clearInterval(sampler);
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = cpuMs(pid) - cpu0;
  const end = await memory();
  samples.sort((a, b) => a - b);
  const requests = rec.okCount + rec.errorCount;
  return {
    sessions,
    opened: calls.length,
    openErrors: open.errors,
    warmErrors: warm.errorCount,
    seconds: elapsed,
    requests,
    // Every tools/call the soak sent (warm-up included): what the audit trail must hold.
    calls: warm.okCount + warm.errorCount + requests,
    errorCount: rec.errorCount,
    errors: rec.errors,
    rps: rec.okCount / elapsed,
    p50: pct(samples, 50),
    p99: pct(samples, 99),
    cpuPerReq: cpu / Math.max(1, requests),
    fresh,
    start,
    mid: mid.map((m) => ({ ...m, t: (m.at - t0) / 1000 })),
    end,
  };
}
